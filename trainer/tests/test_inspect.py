"""``inspect``: what a run will learn, shown with the trainer's own encoding (PROTOCOL.md,
"Inspect mode").

Most tests call the inspector in this process with the tiny model (its tokenizer is loaded
once, by the run's own functions); the command itself runs as a child process twice. The
equality tests hold the inspector to the trainer: its ``trained`` flags against the labels
the collators leave unmasked, and its dataset totals against a real training run's counts.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY_MODEL_ID, chat_records, make_spec, run_in_process, trainer_env, write_jsonl, write_spec

from brightrun_trainer import SMOLLM2_MODEL_ID
from brightrun_trainer import inspection
from brightrun_trainer.data import load_dataset
from brightrun_trainer.encoding import IGNORE_INDEX, FlatteningCollator, PaddingCollator, encode_examples, pack_examples
from brightrun_trainer.inspection import InspectError, Progress, inspect, parse_request

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
TOOL_RECORD = {
    "tools": [WEATHER_TOOL],
    "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "21 degrees"},
        {"role": "assistant", "content": "It is 21 degrees."},
    ],
}
CHAT_RECORD = {
    "messages": [
        {"role": "system", "content": "Answer with a number."},
        {"role": "user", "content": "What is 2 plus 2?"},
        {"role": "assistant", "content": "4"},
    ]
}
#: One record of each layout the trainer reads (data.py), for the collator equality test.
FORMAT_RECORDS = {
    "openai_chat": {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Q1"},
            {"role": "assistant", "content": "Draft", "weight": 0},
            {"role": "user", "content": "Q2"},
            {"role": "assistant", "content": "Final answer."},
        ]
    },
    "tool_calling": TOOL_RECORD,
    "alpaca": {
        "system": "You translate.",
        "history": [["Say hi", "Hi!"]],
        "instruction": "Translate to French",
        "input": "Good morning",
        "output": "Bonjour",
    },
    "prompt_completion": {"prompt": "The capital of France is", "completion": " Paris."},
    "prompt_completion_conversational": {
        "prompt": [{"role": "system", "content": "Geography."}, {"role": "user", "content": "Capital of Italy?"}],
        "completion": [{"role": "assistant", "content": "Rome."}],
    },
    "sharegpt": {
        "system": "Be kind.",
        "conversations": [{"from": "human", "value": "Hello"}, {"from": "gpt", "value": "Hi, how can I help?"}],
    },
    "brightrun_flat": {"system_prompt": "Short.", "current_user_input": "Help?", "target_response": "Sure."},
    "text": {"text": "Once upon a time there was a small model."},
}


@pytest.fixture(scope="module")
def tiny_tokenizer(isolated_cache):
    """The tiny model's tokenizer as a run loads it (also warms the import of the training code)."""
    tokenizer, own_template = inspection.load_run_tokenizer(TINY_MODEL_ID)
    assert own_template
    return tokenizer


def request(path: Path, base_model: str = TINY_MODEL_ID, **fields) -> dict:
    return {"version": 1, "dataset": str(path), "base_model": base_model, "max_seq_length": 512, **fields}


def ask(document: dict) -> dict:
    return inspect(parse_request(document))


def ask_error(document: dict) -> InspectError:
    with pytest.raises(InspectError) as caught:
        ask(document)
    return caught.value


def trained_text(reply: dict) -> str:
    return "".join(token["text"] for token in reply["tokens"] if token["trained"])


def rendered_text(reply: dict) -> str:
    return "".join(token["text"] for token in reply["tokens"])


def codes(reply: dict) -> list[str]:
    return [warning["code"] for warning in reply["warnings"]]


def model_with_template(tmp_path: Path, source: Path, template: str) -> Path:
    """A copy of a model's tokenizer files with another chat template (inspect loads no weights)."""
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(source / name, folder / name)
    (folder / "chat_template.jinja").write_text(template)
    return folder


# --------------------------------------------------------------------------- mode example


def test_an_example_is_shown_token_by_token_with_its_mask(tmp_path, tiny_tokenizer):
    path = write_jsonl(tmp_path / "d.jsonl", [CHAT_RECORD, {"bad": 1}, CHAT_RECORD])
    reply = ask(request(path))
    assert set(reply) == {"version", "format", "examples", "example", "tokenizer", "tokens", "cut", "summary", "warnings"}
    assert reply["version"] == 1 and reply["format"] == "openai_chat"
    assert reply["examples"] == 3 and reply["example"] == {"index": 0, "line": 1}
    tokenizer = reply["tokenizer"]
    assert re.fullmatch(r"[0-9a-f]{64}", tokenizer.pop("hash"))
    assert tokenizer == {
        "chat_template": True, "generation_markers": False, "bos": "<s>", "eos": "<|im_end|>", "end_of_turn": "<|im_end|>\n",
    }  # fmt: skip
    assert rendered_text(reply) == (
        "<|im_start|>system\nAnswer with a number.<|im_end|>\n<|im_start|>user\nWhat is 2 plus 2?<|im_end|>\n"
        "<|im_start|>assistant\n4<|im_end|>\n"
    )
    assert trained_text(reply) == "4<|im_end|>\n"
    assert {t["text"] for t in reply["tokens"] if t["special"]} == {"<|im_start|>", "<|im_end|>"}
    assert reply["cut"] is None and reply["warnings"] == []
    trained = sum(t["trained"] for t in reply["tokens"])
    assert reply["summary"] == {
        "tokens": len(reply["tokens"]), "trained_tokens": trained, "trained_share": trained / len(reply["tokens"]),
        "truncated": False, "tokens_lost": 0, "dropped": False, "max_seq_length": 512,
    }  # fmt: skip


def test_a_record_is_chosen_by_index_or_by_line(tmp_path, tiny_tokenizer):
    records = [{"prompt": f"Q{i}", "completion": f"A{i}"} for i in range(4)]
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records[:2]) + "\n\n" + "\n".join(json.dumps(r) for r in records[2:]) + "\n")
    by_index = ask(request(path, example=2))
    assert by_index["example"] == {"index": 2, "line": 4} and trained_text(by_index) == "A2<|im_end|>\n"
    assert ask(request(path, line=4))["tokens"] == by_index["tokens"]
    assert ask(request(path))["example"] == {"index": 0, "line": 1}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"example": 9}, "example 9 is out of range: the dataset has 3 records (0 to 2)"),
        ({"line": 7}, "line 7 holds no record: the dataset has 3 records, on lines 1 to 3"),
        ({"example": 1}, "record 1 (line 2) is not an example a run trains on: the keys (bad) match none"),
        ({"example": 0, "line": 1}, "give one of `example`"),
        ({"example": -1}, "request field `example`: expected an integer ≥ 0, got -1"),
        ({"mode": "stats", "line": 2}, 'request field `line` applies to mode "example" only'),
        ({"mode": "all"}, "request field `mode`"),
        ({"version": 2}, "this trainer reads version 1, got 2"),
        ({"max_seq_length": 8}, "request field `max_seq_length`: expected an integer ≥ 16, got 8"),
        ({"max_seq_length": 64, "hyperparameters": {"max_seq_length": 128}}, "differs from `hyperparameters.max_seq_length`"),
        ({"dataset": "/nonexistent/d.jsonl"}, "the dataset file /nonexistent/d.jsonl does not exist"),
    ],
)
def test_bad_requests_are_input_errors(tmp_path, tiny_tokenizer, fields, reason):
    path = write_jsonl(tmp_path / "d.jsonl", [CHAT_RECORD, {"bad": 1}, CHAT_RECORD])
    error = ask_error({**request(path), **fields})
    assert error.kind == "input" and reason in error.reason, error.reason


def test_a_file_of_another_kind_of_training_is_an_input_error(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [CHAT_RECORD, {"prompt": "Q", "chosen": "a", "rejected": "b"}])
    error = ask_error(request(path))
    assert error.kind == "input" and "line 2: this is preference data" in error.reason


def test_max_seq_length_may_come_from_the_hyperparameters_and_unknown_fields_are_named(tmp_path, tiny_tokenizer):
    path = write_jsonl(tmp_path / "d.jsonl", [CHAT_RECORD])
    document = request(path, hyperparameters={"max_seq_length": 64, "learning_rate": 1e-4, "train_on_prompts": True})
    del document["max_seq_length"]
    document["colour"] = "blue"
    reply = ask(document)
    assert reply["summary"]["max_seq_length"] == 64 and reply["cut"] == 64
    (unknown,) = [w for w in reply["warnings"] if w["code"] == "unknown_fields"]
    assert "colour" in unknown["message"] and "hyperparameters.train_on_prompts" in unknown["message"]
    assert "learning_rate" not in unknown["message"]


def test_truncation_marks_the_cut_and_lists_the_tokens_past_it(tmp_path, tiny_tokenizer):
    record = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "a" * 60}]}
    path = write_jsonl(tmp_path / "d.jsonl", [record])
    full = ask(request(path))
    reply = ask(request(path, max_seq_length=48))
    assert [t["id"] for t in reply["tokens"]] == [t["id"] for t in full["tokens"]]
    assert reply["cut"] == 48 and len(reply["tokens"]) == len(full["tokens"]) > 48
    assert not any(t["trained"] for t in reply["tokens"][48:])
    assert [t["trained"] for t in reply["tokens"][:48]] == [t["trained"] for t in full["tokens"][:48]]
    lost = len(full["tokens"]) - 48
    summary = reply["summary"]
    assert summary["tokens"] == 48 and summary["truncated"] and summary["tokens_lost"] == lost
    assert summary["trained_tokens"] == sum(t["trained"] for t in reply["tokens"]) > 0
    (warning,) = reply["warnings"]
    assert warning["code"] == "truncated" and f"the last {lost} are cut off" in warning["message"]


def test_an_example_left_without_a_trained_token_is_dropped(tmp_path, tiny_tokenizer):
    record = {"messages": [{"role": "user", "content": "x" * 80}, {"role": "assistant", "content": "ok"}]}
    reply = ask(request(write_jsonl(tmp_path / "d.jsonl", [record]), max_seq_length=32))
    assert reply["summary"]["dropped"] and reply["summary"]["tokens"] == 0 and reply["summary"]["trained_tokens"] == 0
    assert not any(t["trained"] for t in reply["tokens"])
    assert codes(reply) == ["no_trained_tokens", "truncated"]


# --------------------------------------------------------------------------- the trainer's own mask


def run_encoding(path: Path, tokenizer, max_seq_length: int):
    """The trainer's encoding of the file's first record, as a run encodes its training set."""
    loaded = load_dataset(path, seed=0, validation_split=0.0, use_validation=False)
    encoded, report = encode_examples(tokenizer, loaded.train, max_seq_length)
    assert report.kept == 1
    return encoded[0]


def assert_flags_match_the_collators(reply: dict, encoded, tokenizer) -> None:
    """``trained`` is exactly what the collators leave for the loss: the flattening collator's
    unmasked labels, and the padded batch's labels from position 1 on (labels are shifted: the
    Trainer counts ``labels[..., 1:]``, the first position is never a target)."""
    kept = reply["tokens"][: reply["summary"]["tokens"]]
    flags = [t["trained"] for t in kept]
    assert [t["id"] for t in kept] == list(encoded.input_ids)
    assert not any(t["trained"] for t in reply["tokens"][len(kept):])
    flat = FlatteningCollator()([encoded])
    assert flat["input_ids"][0].tolist() == list(encoded.input_ids)
    assert flags == [label != IGNORE_INDEX for label in flat["labels"][0].tolist()]
    longer = type(encoded).of([7] * (len(encoded.input_ids) + 3), [7] * (len(encoded.input_ids) + 3))
    padded = PaddingCollator(tokenizer.pad_token_id)([encoded, longer])
    labels = padded["labels"][0].tolist()
    assert labels[len(kept):] == [IGNORE_INDEX] * 3  # padding never counts
    assert flags[0] is False and flags[1:] == [label != IGNORE_INDEX for label in labels[1 : len(kept)]]
    assert reply["summary"]["trained_tokens"] == sum(flags) == int((padded["labels"][:1, 1:] != IGNORE_INDEX).sum())


@pytest.mark.parametrize("truncated", [False, True], ids=["whole", "truncated"])
@pytest.mark.parametrize("layout", sorted(FORMAT_RECORDS))
def test_tokens_trained_equal_collator(tmp_path, tiny_tokenizer, layout, truncated):
    path = write_jsonl(tmp_path / "d.jsonl", [FORMAT_RECORDS[layout]])
    whole = ask(request(path))
    assert trained_text(whole) and whole["warnings"] == []  # every layout trains something
    max_seq_length = len(whole["tokens"]) - 3 if truncated else 512  # cut inside the last reply
    reply = ask(request(path, max_seq_length=max_seq_length))
    assert reply["summary"]["truncated"] is truncated and reply["cut"] == (max_seq_length if truncated else None)
    assert_flags_match_the_collators(reply, run_encoding(path, tiny_tokenizer, max_seq_length), tiny_tokenizer)


def test_tool_calls_are_trained_and_their_results_are_not(tmp_path, tiny_tokenizer):
    reply = ask(request(write_jsonl(tmp_path / "d.jsonl", [TOOL_RECORD])))
    assert trained_text(reply) == (
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call><|im_end|>\n'
        "It is 21 degrees.<|im_end|>\n"
    )
    assert "<tools>" in rendered_text(reply) and "tool\n21 degrees" in rendered_text(reply)
    assert reply["warnings"] == []


# --------------------------------------------------------------------------- warnings


def test_a_template_that_drops_the_system_message_is_named(tmp_path, tiny_model_dir):
    template = (
        "{% for m in messages %}{% if m['role'] != 'system' %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    model = model_with_template(tmp_path, tiny_model_dir, template)
    reply = ask(request(write_jsonl(tmp_path / "d.jsonl", [CHAT_RECORD]), base_model=str(model)))
    assert "Answer with a number." not in rendered_text(reply)
    assert codes(reply) == ["system_prompt_dropped"]


def test_a_template_without_a_system_role_folds_it_as_a_run_does(tmp_path, tiny_model_dir):
    template = (
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system role') }}{% endif %}"
        "<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    model = model_with_template(tmp_path, tiny_model_dir, template)
    reply = ask(request(write_jsonl(tmp_path / "d.jsonl", [CHAT_RECORD]), base_model=str(model)))
    assert "<|im_start|>user\nAnswer with a number.\n\nWhat is 2 plus 2?" in rendered_text(reply)
    assert codes(reply) == ["system_prompt_folded"] and trained_text(reply) == "4<|im_end|>\n"


def test_a_template_that_writes_no_end_of_turn_is_named(tmp_path, tiny_model_dir):
    template = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}"
    model = model_with_template(tmp_path, tiny_model_dir, template)
    reply = ask(request(write_jsonl(tmp_path / "d.jsonl", [CHAT_RECORD]), base_model=str(model)))
    assert reply["tokenizer"]["end_of_turn"] == "<|im_end|>"  # nothing after the reply: the EOS token
    assert trained_text(reply) == "4\n"
    (warning,) = reply["warnings"]
    assert warning["code"] == "no_end_of_turn_trained" and "will not learn to stop" in warning["message"]


def test_a_template_that_rewrites_turns_falls_back_to_search(tmp_path, tiny_model_dir):
    template = (
        "{% for m in messages %}<{{ m['role'] }}{% if loop.last %}!{% endif %}>{{ m['content'] }}<|im_end|>{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    model = model_with_template(tmp_path, tiny_model_dir, template)
    reply = ask(request(write_jsonl(tmp_path / "d.jsonl", [CHAT_RECORD]), base_model=str(model)))
    assert trained_text(reply) == "4<|im_end|>"
    assert codes(reply) == ["no_generation_markers"]


def test_a_template_with_generation_markers_supplies_the_mask(tmp_path, tiny_tokenizer, tiny_model_dir):
    template = (
        "{% for m in messages %}{% if m['role'] == 'assistant' %}<|im_start|>assistant\n"
        "{% generation %}{{ m['content'] }}<|im_end|>{% endgeneration %}\n"
        "{% else %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    model = model_with_template(tmp_path, tiny_model_dir, template)
    path = write_jsonl(tmp_path / "d.jsonl", [FORMAT_RECORDS["openai_chat"]])
    reply = ask(request(path, base_model=str(model)))
    assert reply["tokenizer"]["generation_markers"] is True and reply["warnings"] == []
    assert trained_text(reply) == "Final answer.<|im_end|>"  # the weight-0 draft is not trained
    tokenizer, _ = inspection.load_run_tokenizer(str(model))
    assert_flags_match_the_collators(reply, run_encoding(path, tokenizer, 512), tokenizer)


def test_a_template_rejection_is_a_template_error(tmp_path, tiny_model_dir):
    template = (
        "{% if messages[0]['role'] == 'assistant' %}{{ raise_exception('Conversation must start with a user') }}{% endif %}"
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    )
    model = model_with_template(tmp_path, tiny_model_dir, template)
    record = {"messages": [{"role": "assistant", "content": "Hello, I start."}]}
    error = ask_error(request(write_jsonl(tmp_path / "d.jsonl", [record]), base_model=str(model)))
    assert error.kind == "template"
    assert error.reason == "line 1: the chat template rejects this conversation: Conversation must start with a user"


def test_a_tokenizer_without_a_chat_template_gets_the_runs_default(tmp_path, tiny_model_dir):
    folder = tmp_path / "bare"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_model_dir / name, folder / name)
    reply = ask(request(write_jsonl(tmp_path / "d.jsonl", [CHAT_RECORD]), base_model=str(folder)))
    assert reply["tokenizer"]["chat_template"] is False
    assert codes(reply) == ["no_chat_template"]
    assert trained_text(reply) == "4<|im_end|>\n"  # DEFAULT_CHAT_TEMPLATE ends a turn with EOS and a newline


def test_the_tokenizer_hash_is_stable_and_follows_the_template(tmp_path, tiny_model_dir):
    path = write_jsonl(tmp_path / "d.jsonl", [CHAT_RECORD])
    first = ask(request(path))["tokenizer"]["hash"]
    assert ask(request(path, max_seq_length=64))["tokenizer"]["hash"] == first
    same = model_with_template(tmp_path, tiny_model_dir, (tiny_model_dir / "chat_template.jinja").read_text())
    assert ask(request(path, base_model=str(same)))["tokenizer"]["hash"] == first
    other = tmp_path / "other"
    shutil.copytree(same, other)
    (other / "chat_template.jinja").write_text((same / "chat_template.jinja").read_text() + " ")
    assert ask(request(path, base_model=str(other)))["tokenizer"]["hash"] != first


def test_a_model_missing_from_the_offline_cache_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = write_jsonl(tmp_path / "d.jsonl", [CHAT_RECORD])
    error = ask_error(request(path, base_model="brightrun-tests/no-such-model"))
    assert error.kind == "model"
    assert error.reason == (
        "base model brightrun-tests/no-such-model is not in the local Hugging Face cache and HF_HUB_OFFLINE is set: "
        "download it once with `huggingface-cli download brightrun-tests/no-such-model` or name a local folder"
    )


# --------------------------------------------------------------------------- mode stats


def mixed_records() -> list:
    """Chat records the tiny model encodes in about 70 tokens, some longer ones (truncated at
    80 but kept), prompts too long to keep a reply (dropped), and unusable records."""
    records: list = chat_records(10)
    records += [{"messages": [{"role": "user", "content": "Spell it"}, {"role": "assistant", "content": "y" * (60 + i)}]} for i in range(3)]
    records += [{"messages": [{"role": "user", "content": "x" * 100}, {"role": "assistant", "content": "ok"}]}] * 2
    records.insert(4, {"bad": 1})
    records.insert(9, {"messages": [{"role": "user", "content": "no reply"}]})
    return records


def test_stats_equal_the_counts_of_a_training_run(tmp_path, tiny_tokenizer, monkeypatch):
    """``tokens`` is the run's ``train_tokens`` (non-padding tokens trained, one epoch, no
    validation split so that every record trains) and ``trained_tokens`` the Trainer's own count
    of loss targets (``num_items_in_batch``, summed over the batches it trained)."""
    from brightrun_trainer import train

    path = write_jsonl(tmp_path / "mixed.jsonl", mixed_records())
    stats = ask(request(path, mode="stats", max_seq_length=80))["stats"]

    counted = []
    original = train._MeteredTrainer._get_num_items_in_batch

    def count(self, batch_samples, device):
        items = original(self, batch_samples, device)
        counted.append(int(items))
        return items

    monkeypatch.setattr(train._MeteredTrainer, "_get_num_items_in_batch", count)
    hyperparameters = {"epochs": 1, "use_validation": False, "max_seq_length": 80, "batch_size": 4}
    spec = make_spec(tmp_path, {"path": str(path)}, hyperparameters=hyperparameters)
    run = run_in_process(write_spec(tmp_path / "spec.json", spec))
    assert run.returncode == 0, run.describe()
    (done,) = run.of_type("done")
    assert stats["tokens"] == done["summary"]["train_tokens"]
    assert stats["trained_tokens"] == sum(counted)
    messages = [e["message"] for e in run.events if e["type"] in ("log", "stage")]
    assert f"training on {stats['examples']} examples" in messages
    assert f"{stats['over_max_seq_length']} examples are longer than max_seq_length 80 and were truncated" in messages
    assert any(m.startswith("2 examples were dropped: no assistant token within max_seq_length 80") for m in messages)
    assert any(m.startswith("skipped 2 unusable records") for m in messages)
    assert stats["skipped"] == 2 + 2 and stats["examples"] == 13


def test_stats_cover_every_record_with_one_warning_per_code(tmp_path, tiny_tokenizer):
    path = write_jsonl(tmp_path / "mixed.jsonl", mixed_records())
    reply = ask(request(path, mode="stats", max_seq_length=80))
    assert set(reply) == {"version", "format", "tokenizer", "stats", "warnings"}
    assert reply["format"] == "openai_chat"
    stats = reply["stats"]
    loaded = load_dataset(path, seed=0, validation_split=0.0, use_validation=False)
    encoded, report = encode_examples(tiny_tokenizer, loaded.train, 80)
    lengths = [len(e.input_ids) for e in encoded]
    rows = pack_examples(encoded, 80)
    assert stats == {
        "examples": report.kept,
        "skipped": loaded.skipped_count + report.dropped_no_trainable_tokens,
        "tokens": sum(lengths),
        "trained_tokens": sum(sum(1 for label in e.labels[1:] if label != IGNORE_INDEX) for e in encoded),
        "over_max_seq_length": report.truncated,
        "tokens_lost": stats["tokens_lost"],
        "packing_efficiency": sum(lengths) / (len(rows) * 80),
        "longest": stats["longest"],
        "max_seq_length": 80,
    }
    assert 0 < stats["packing_efficiency"] <= 1 and stats["longest"] > 80 and stats["tokens_lost"] > 0
    by_code = {w["code"]: w for w in reply["warnings"]}
    assert list(by_code) == ["records_skipped", "no_trained_tokens", "truncated"]
    assert by_code["records_skipped"]["count"] == 2 and by_code["records_skipped"]["lines"] == [5, 10]
    assert by_code["records_skipped"]["message"].startswith("skipped 2 unusable records (line 5:")
    assert by_code["no_trained_tokens"]["count"] == 2 and by_code["truncated"]["count"] == report.truncated == 5
    assert f"{stats['tokens_lost']} tokens are cut off" in by_code["truncated"]["message"]


def test_stats_skip_what_the_template_rejects(tmp_path, tiny_model_dir):
    template = (
        "{% if messages[0]['role'] == 'assistant' %}{{ raise_exception('Conversation must start with a user') }}{% endif %}"
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    model = model_with_template(tmp_path, tiny_model_dir, template)
    records = [CHAT_RECORD, {"messages": [{"role": "assistant", "content": "Hello"}]}, CHAT_RECORD]
    reply = ask(request(write_jsonl(tmp_path / "d.jsonl", records), base_model=str(model), mode="stats"))
    assert reply["stats"]["examples"] == 2 and reply["stats"]["skipped"] == 1
    (warning,) = reply["warnings"]
    assert warning["code"] == "rejected_by_template" and warning["lines"] == [2]
    assert warning["message"] == "skipped 1 unusable records (line 2: the chat template rejects this conversation: Conversation must start with a user)"


def test_stats_stream_in_batches_and_report_progress_at_most_once_a_second(tmp_path, tiny_tokenizer, monkeypatch):
    monkeypatch.setattr(inspection, "BATCH_EXAMPLES", 7)
    calls = []
    original = inspection.encode_batch

    def spy(tokenizer, examples, max_seq_length):
        calls.append(len(examples))
        return original(tokenizer, examples, max_seq_length)

    monkeypatch.setattr(inspection, "encode_batch", spy)
    path = write_jsonl(tmp_path / "d.jsonl", chat_records(30))
    clock = iter(range(0, 1000, 1)).__next__  # each reading is half a second later
    stream = io.StringIO()
    progress = Progress(stream, interval=1.0, clock=lambda: clock() / 2)
    reply = inspect(parse_request(request(path, mode="stats")), progress)
    assert calls == [7, 7, 7, 7, 2]
    lines = stream.getvalue().splitlines()
    assert 1 <= len(lines) <= 4 and lines[-1].startswith("inspect: 30 records read, 30 examples encoded")
    assert reply["stats"]["examples"] == 30


# --------------------------------------------------------------------------- the command


def run_command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "brightrun_trainer", "inspect", *args],
        capture_output=True, text=True, env=trainer_env(), timeout=300,
    )  # fmt: skip


def test_the_command_prints_one_object_and_exits_0(tmp_path, tiny_model_dir):
    path = write_jsonl(tmp_path / "d.jsonl", [CHAT_RECORD])
    request_file = tmp_path / "request.json"
    request_file.write_text(json.dumps(request(path, mode="stats")))
    done = run_command("--request", str(request_file))
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    assert json.loads(line)["stats"]["examples"] == 1
    assert "inspect: 1 records read" in done.stderr


def test_the_command_reports_a_problem_as_one_error_object_and_exits_1(tmp_path):
    done = run_command("--request-json", json.dumps({"version": 1, "dataset": str(tmp_path / "none.jsonl")}))
    assert done.returncode == 1, done.stderr
    (line,) = done.stdout.splitlines()
    assert json.loads(line) == {
        "version": 1, "error": {"kind": "input", "reason": "request field `base_model`: expected a non-empty string, got null"},
    }  # fmt: skip
    done = run_command("--request-json", "{not json")
    assert done.returncode == 1 and json.loads(done.stdout)["error"]["kind"] == "input"


# --------------------------------------------------------------------------- SmolLM2: a real tokenizer and template


@pytest.fixture(scope="module")
def smollm2(isolated_cache):
    from brightrun_trainer.smollm2 import ensure_smollm2

    ensure_smollm2()
    tokenizer, _ = inspection.load_run_tokenizer(SMOLLM2_MODEL_ID)
    return tokenizer


def test_smollm2_chat_with_a_system_prompt(tmp_path, smollm2):
    path = write_jsonl(tmp_path / "d.jsonl", [CHAT_RECORD])
    reply = ask(request(path, base_model=SMOLLM2_MODEL_ID))
    assert reply["tokenizer"]["chat_template"] and reply["tokenizer"]["end_of_turn"] == "<|im_end|>\n"
    assert reply["tokenizer"]["eos"] == "<|im_end|>"
    assert rendered_text(reply) == (
        "<|im_start|>system\nAnswer with a number.<|im_end|>\n<|im_start|>user\nWhat is 2 plus 2?<|im_end|>\n"
        "<|im_start|>assistant\n4<|im_end|>\n"
    )
    assert trained_text(reply) == "4<|im_end|>\n" and reply["warnings"] == []
    assert any(t["text"] == " plus" for t in reply["tokens"])  # a token's leading space is kept
    assert_flags_match_the_collators(reply, run_encoding(path, smollm2, 512), smollm2)
    # Without a system message SmolLM2's template writes its own: the inspector shows it.
    record = {"messages": CHAT_RECORD["messages"][1:]}
    bare = ask(request(write_jsonl(tmp_path / "bare.jsonl", [record]), base_model=SMOLLM2_MODEL_ID))
    assert rendered_text(bare).startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")


def test_smollm2_drops_tool_calls_and_the_inspector_says_so(tmp_path, smollm2):
    path = write_jsonl(tmp_path / "d.jsonl", [TOOL_RECORD])
    reply = ask(request(path, base_model=SMOLLM2_MODEL_ID))
    assert "get_weather" not in rendered_text(reply)  # its template renders neither tools nor calls
    assert trained_text(reply) == "<|im_end|>\nIt is 21 degrees.<|im_end|>\n"
    assert codes(reply) == ["tool_calls_dropped"]
    assert_flags_match_the_collators(reply, run_encoding(path, smollm2, 512), smollm2)
