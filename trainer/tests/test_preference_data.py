"""Reading preference and KTO data (brightrun_trainer/preference_data.py): every layout from its
project's own example shapes, and the broken variants that are skipped or refused."""

from __future__ import annotations

import json

import pytest

from brightrun_trainer.errors import DatasetError
from brightrun_trainer.preference_data import PreferenceFormat, load_preference_dataset


def _load(tmp_path, records, method="dpo", **split):
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    options = {"seed": 42, "validation_split": 0.0, "use_validation": False, **split}
    return load_preference_dataset(path, method=method, **options)


def _chat(messages):
    return [m.as_chat() for m in messages]


# --- a. TRL standard preference, explicit prompt (TRL docs, "Dataset formats")
def test_trl_standard_explicit_prompt(tmp_path):
    data = _load(tmp_path, [{"prompt": "The sky is", "chosen": " blue.", "rejected": " green."}])
    assert data.format is PreferenceFormat.PREFERENCE
    (pair,) = data.train
    assert _chat(pair.prompt) == [{"role": "user", "content": "The sky is"}]
    assert _chat(pair.chosen) == [{"role": "assistant", "content": " blue."}]
    assert _chat(pair.rejected) == [{"role": "assistant", "content": " green."}]
    assert all(m.trainable for m in pair.chosen + pair.rejected) and not any(m.trainable for m in pair.prompt)


# --- b. TRL conversational, explicit prompt
def test_trl_conversational_explicit_prompt(tmp_path):
    record = {
        "prompt": [{"role": "user", "content": "What color is the sky?"}],
        "chosen": [{"role": "assistant", "content": "It is blue."}],
        "rejected": [{"role": "assistant", "content": "It is green."}],
    }
    (pair,) = _load(tmp_path, [record]).train
    assert _chat(pair.prompt) == record["prompt"]
    assert _chat(pair.chosen) == record["chosen"] and _chat(pair.rejected) == record["rejected"]


# --- c. TRL conversational, implicit prompt (and chosen_messages/rejected_messages)
def test_trl_implicit_prompt_is_the_shared_prefix(tmp_path):
    system = {"role": "system", "content": "Be brief."}
    user = {"role": "user", "content": "What color is the sky?"}
    record = {
        "chosen": [system, user, {"role": "assistant", "content": "It is blue."}],
        "rejected": [system, user, {"role": "assistant", "content": "It is green."}],
    }
    messages = {
        "chosen_messages": record["chosen"],
        "rejected_messages": record["rejected"],
        "tools": [{"type": "function", "function": {"name": "look_up", "parameters": {"type": "object"}}}],
    }
    for loaded in (_load(tmp_path, [record]).train[0], _load(tmp_path, [messages]).train[0]):
        assert _chat(loaded.prompt) == [system, user]
        assert _chat(loaded.chosen) == [{"role": "assistant", "content": "It is blue."}]
        assert _chat(loaded.rejected) == [{"role": "assistant", "content": "It is green."}]
    assert _load(tmp_path, [messages]).train[0].tools[0]["function"]["name"] == "look_up"


def test_implicit_multi_turn_keeps_earlier_turns_as_prompt(tmp_path):
    turns = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Capital of France?"},
    ]
    record = {"chosen": turns + [{"role": "assistant", "content": "Paris."}], "rejected": turns + [{"role": "assistant", "content": "Rome."}]}
    (pair,) = _load(tmp_path, [record]).train
    assert _chat(pair.prompt) == turns


# --- d. OpenAI preference fine-tuning (platform.openai.com, "Direct preference optimization")
def test_openai_preference(tmp_path):
    record = {
        "input": {
            "messages": [{"role": "user", "content": "Hello, can you tell me how cold San Francisco is today?"}],
            "tools": [],
            "parallel_tool_calls": True,
        },
        "preferred_output": [
            {
                "role": "assistant",
                "content": "Today in San Francisco, it is not quite cold as expected. Morning clouds will give away "
                "to sunshine, with a high near 68°F (20°C) and a low around 57°F (14°C).",
            }
        ],
        "non_preferred_output": [
            {"role": "assistant", "content": "It is not particularly cold in San Francisco today."}
        ],
    }
    (pair,) = _load(tmp_path, [record]).train
    assert _chat(pair.prompt) == record["input"]["messages"]
    assert pair.chosen[0].content.startswith("Today in San Francisco")
    assert pair.rejected[0].content == "It is not particularly cold in San Francisco today."


# --- e. LLaMA-Factory Alpaca preference
def test_llamafactory_alpaca_preference(tmp_path):
    record = {
        "instruction": "Translate into English.",
        "input": "Bonjour",
        "system": "You are a translator.",
        "chosen": "Hello",
        "rejected": "Goodbye",
    }
    (pair,) = _load(tmp_path, [record]).train
    assert _chat(pair.prompt) == [
        {"role": "system", "content": "You are a translator."},
        {"role": "user", "content": "Translate into English.\nBonjour"},
    ]
    no_input = dict(record, input="")
    assert _load(tmp_path, [no_input]).train[0].prompt[-1].content == "Translate into English."


# --- f. LLaMA-Factory ShareGPT preference (data/dpo_en_demo.json)
def test_llamafactory_sharegpt_preference(tmp_path):
    record = {
        "conversations": [
            {"from": "human", "value": "Hi! I'd like to create a new language game simulation. Can you help?"}
        ],
        "chosen": {"from": "gpt", "value": "Of course! Tell me about the game you have in mind."},
        "rejected": {"from": "gpt", "value": "No."},
    }
    with_system = dict(record, system="You are helpful.")
    (pair,) = _load(tmp_path, [record]).train
    assert _chat(pair.prompt) == [{"role": "user", "content": record["conversations"][0]["value"]}]
    assert pair.chosen[0].content.startswith("Of course!") and pair.rejected[0].content == "No."
    assert _load(tmp_path, [with_system]).train[0].prompt[0].role == "system"


# --- g. TRL unpaired preference (KTO)
def test_trl_unpaired_preference(tmp_path):
    records = [
        {"prompt": "The sky is", "completion": " blue.", "label": True},
        {
            "prompt": [{"role": "user", "content": "What color is the sky?"}],
            "completion": [{"role": "assistant", "content": "It is green."}],
            "label": False,
        },
    ]
    data = _load(tmp_path, records, method="kto")
    assert data.format is PreferenceFormat.KTO
    first, second = data.train
    assert (first.label, _chat(first.completion)) == (True, [{"role": "assistant", "content": " blue."}])
    assert (second.label, _chat(second.prompt)) == (False, [{"role": "user", "content": "What color is the sky?"}])


# --- h. LLaMA-Factory KTO (data/kto_en_demo.json), kto_tag, ShareGPT conversations
def test_llamafactory_kto(tmp_path):
    records = [
        {
            "messages": [
                {"content": "The Federal Reserve raised rates. Summarize.", "role": "user"},
                {"content": "The Fed raised interest rates.", "role": "assistant"},
            ],
            "label": True,
        },
        {
            "messages": [
                {"content": "Hi", "role": "user"},
                {"content": "Hello.", "role": "assistant"},
                {"content": "Tell me a joke", "role": "user"},
                {"content": "No.", "role": "assistant"},
            ],
            "kto_tag": False,
        },
        {"conversations": [{"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4"}], "kto_tag": True},
    ]
    first, second, third = _load(tmp_path, records, method="kto").train
    assert first.label and _chat(first.completion) == [{"role": "assistant", "content": "The Fed raised interest rates."}]
    assert not second.label and len(second.prompt) == 3 and second.completion[0].content == "No."
    assert third.label and _chat(third.prompt) == [{"role": "user", "content": "2+2?"}]


# --- broken variants


def test_unusable_pairs_are_skipped_with_their_lines(tmp_path):
    good = {"prompt": "Q", "chosen": "good", "rejected": "bad"}
    records = [
        good,
        {"prompt": "Q", "chosen": "same", "rejected": "same"},
        {"prompt": "Q", "chosen": "", "rejected": "bad"},
        {
            "chosen": [{"role": "user", "content": "A?"}, {"role": "assistant", "content": "1"}],
            "rejected": [{"role": "user", "content": "B?"}, {"role": "assistant", "content": "2"}],
        },
        {"prompt": "Q", "chosen": 3, "rejected": "bad"},
        {"prompt": "Q", "chosen": "good"},
        "not an object",
    ]
    data = _load(tmp_path, records)
    assert len(data.train) == 1 and data.skipped_count == 6 and data.total_records == 7
    reasons = {s.line: s.reason for s in data.skipped}
    assert "identical" in reasons[2]
    assert "empty" in reasons[3]
    assert "different prompts" in reasons[4]
    assert "must be strings" in reasons[5]
    assert "match none" in reasons[6]
    assert "expected a JSON object" in reasons[7]


def test_nothing_usable_fails(tmp_path):
    with pytest.raises(DatasetError, match="none of the dataset's 1 records is usable"):
        _load(tmp_path, [{"prompt": "Q", "chosen": "same", "rejected": "same"}])


def test_kto_with_one_label_fails(tmp_path):
    records = [{"prompt": "Q", "completion": "A", "label": True}] * 3
    with pytest.raises(DatasetError, match="KTO needs both"):
        _load(tmp_path, records, method="kto")


def test_kto_label_must_be_a_boolean(tmp_path):
    records = [
        {"prompt": "Q", "completion": "A", "label": True},
        {"prompt": "Q", "completion": "B", "label": False},
        {"prompt": "Q", "completion": "C", "label": "yes"},
    ]
    data = _load(tmp_path, records, method="kto")
    assert data.skipped_count == 1 and "true or false" in data.skipped[0].reason


@pytest.mark.parametrize(
    ("method", "record", "message"),
    [
        ("dpo", {"prompt": "Q", "completion": "A", "label": True}, "train it with kto"),
        ("kto", {"prompt": "Q", "chosen": "A", "rejected": "B"}, "train it with dpo"),
        ("dpo", {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}, "method sft"),
        ("simpo", {"prompt": "Q", "chosen": "A", "rejected": "B", "images": ["x.png"]}, "multimodal"),
    ],
)
def test_data_of_another_kind_is_refused(tmp_path, method, record, message):
    with pytest.raises(DatasetError, match=message):
        _load(tmp_path, [record], method=method)


def test_split_is_by_record_index(tmp_path):
    from brightrun_trainer.data import is_validation, validation_threshold

    records = [{"prompt": f"Q{i}", "chosen": "good", "rejected": "bad"} for i in range(40)]
    records[3] = {"prompt": "Q", "chosen": "same", "rejected": "same"}  # unusable, still takes index 3
    data = _load(tmp_path, records, validation_split=0.25, use_validation=True)
    threshold = validation_threshold(0.25)
    expected = [i for i in range(40) if i != 3 and is_validation(i, 42, threshold)]
    assert [pair.index for pair in data.validation] == expected
    assert len(data.train) + len(data.validation) == 39


def test_truncation_keeps_the_reply():
    from brightrun_trainer.encoding import IGNORE_INDEX
    from brightrun_trainer.preference import cut_keeping_reply

    prompt, reply = list(range(100, 140)), list(range(1, 11))
    ids, labels = prompt + reply, [IGNORE_INDEX] * 40 + reply
    kept, truncated = cut_keeping_reply(ids, labels, 32)
    assert truncated and list(kept.input_ids) == prompt[-22:] + reply  # the prompt's start goes first
    kept, _ = cut_keeping_reply(ids, labels, 16)
    assert list(kept.input_ids) == prompt[-6:] + reply  # the whole reply still fits
    long_reply = list(range(1, 41))
    kept, _ = cut_keeping_reply(prompt + long_reply, [IGNORE_INDEX] * 40 + long_reply, 32)
    assert list(kept.input_ids) == prompt[-8:] + long_reply[:24]  # max_seq_length // 4 of prompt, reply cut at its end
    assert cut_keeping_reply(ids, labels, 64) == (cut_keeping_reply(ids, labels, 64)[0], False)
    assert cut_keeping_reply(prompt, [IGNORE_INDEX] * 40, 16) == (None, False)
