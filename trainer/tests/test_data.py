"""Dataset reading: each format normalises to the right chat, and the split rule is exact."""

from __future__ import annotations

import json

import pytest
from conftest import write_jsonl

from brightrun_trainer.data import (
    DatasetFormat,
    InvalidRecord,
    Message,
    detect_format,
    is_validation,
    load_dataset,
    normalise,
    validation_threshold,
)
from brightrun_trainer.errors import DatasetError, InfrastructureError

U, A, S = "user", "assistant", "system"

FORMAT_CASES = [
    (
        DatasetFormat.BRIGHTRUN_V4,
        {
            "conversation_id": "c1",
            "turns": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"},
                {"role": "user", "content": "Bye"},
                {"role": "assistant", "content": "Goodbye"},
            ],
        },
        [(S, "Be brief.", False), (U, "Hi", False), (A, "Hello", True), (U, "Bye", False), (A, "Goodbye", True)],
    ),
    (
        DatasetFormat.BRIGHTRUN_FLAT,
        {"system_prompt": "You are kind.", "current_user_input": "Help?", "target_response": "Sure."},
        [(S, "You are kind.", False), (U, "Help?", False), (A, "Sure.", True)],
    ),
    (
        DatasetFormat.BRIGHTRUN_FLAT,
        {"system_prompt": "", "current_user_input": "Help?", "target_response": "Sure."},
        [(U, "Help?", False), (A, "Sure.", True)],
    ),
    (
        DatasetFormat.OPENAI_CHAT,
        {
            "messages": [
                {"role": "system", "content": "Sys"},
                {"role": "user", "content": "Q1"},
                {"role": "assistant", "content": "Draft", "weight": 0},
                {"role": "user", "content": "Q2"},
                {"role": "assistant", "content": [{"type": "text", "text": "Fi"}, {"type": "text", "text": "nal"}], "weight": 1},
            ]
        },
        [(S, "Sys", False), (U, "Q1", False), (A, "Draft", False), (U, "Q2", False), (A, "Final", True)],
    ),
    (
        DatasetFormat.OPENAI_CHAT,
        {"messages": [{"role": "developer", "content": "Rules"}, {"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]},
        [(S, "Rules", False), (U, "Q", False), (A, "A", True)],
    ),
    (
        DatasetFormat.ALPACA,
        {"instruction": "Translate to French.", "input": "cat", "output": "chat"},
        [(U, "Translate to French.\n\ncat", False), (A, "chat", True)],
    ),
    (
        DatasetFormat.ALPACA,
        {"instruction": "Name a colour.", "input": "", "output": "Blue"},
        [(U, "Name a colour.", False), (A, "Blue", True)],
    ),
    (
        DatasetFormat.SHAREGPT,
        {
            "conversations": [
                {"from": "system", "value": "Sys"},
                {"from": "human", "value": "Hi"},
                {"from": "gpt", "value": "Hey"},
            ]
        },
        [(S, "Sys", False), (U, "Hi", False), (A, "Hey", True)],
    ),
    (
        DatasetFormat.PROMPT_COMPLETION,
        {"prompt": "2+2=", "completion": "4"},
        [(U, "2+2=", False), (A, "4", True)],
    ),
]


@pytest.mark.parametrize("fmt, record, expected", FORMAT_CASES)
def test_each_format_is_detected_and_normalised(fmt, record, expected):
    assert detect_format(record) is fmt
    assert normalise(record, fmt) == tuple(Message(role, content, trainable) for role, content, trainable in expected)


@pytest.mark.parametrize(
    "fmt, record, reason",
    [
        (DatasetFormat.PROMPT_COMPLETION, {"prompt": "Q", "completion": ""}, "no non-empty assistant"),
        (DatasetFormat.OPENAI_CHAT, {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A", "weight": 0}]}, "no non-empty assistant"),
        (DatasetFormat.OPENAI_CHAT, {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A", "weight": 2}]}, "weight"),
        (DatasetFormat.OPENAI_CHAT, {"messages": [{"role": "tool", "content": "x"}]}, "answers no earlier tool call"),
        (DatasetFormat.OPENAI_CHAT, {"messages": [{"role": "bot", "content": "x"}]}, "role"),
        (DatasetFormat.SHAREGPT, {"conversations": [{"from": "human", "value": "Only a question"}]}, "no non-empty assistant"),
        (DatasetFormat.BRIGHTRUN_V4, {"turns": []}, "non-empty list"),
        (DatasetFormat.BRIGHTRUN_V4, {"turns": [{"role": "user", "content": "Q"}, {"role": "system", "content": "late"}, {"role": "assistant", "content": "A"}]}, "system message"),
        (DatasetFormat.ALPACA, {"instruction": 3, "output": "x"}, "instruction"),
    ],
)
def test_unusable_records_are_rejected_with_a_reason(fmt, record, reason):
    with pytest.raises(InvalidRecord, match=reason):
        normalise(record, fmt)


def test_unknown_shapes_are_not_detected():
    assert detect_format({"body": "raw"}) is None
    assert detect_format(["not", "an", "object"]) is None


def _load(path, *, seed=0, split=0.0, use_validation=True):
    return load_dataset(path, seed=seed, validation_split=split, use_validation=use_validation)


def test_flat_meta_line_is_skipped_and_not_counted(tmp_path):
    path = write_jsonl(
        tmp_path / "flat.jsonl",
        [{"_meta": {"version": 4}}]
        + [{"system_prompt": "S", "current_user_input": f"Q{i}", "target_response": f"A{i}"} for i in range(3)],
    )
    dataset = _load(path)
    assert dataset.format is DatasetFormat.BRIGHTRUN_FLAT
    assert dataset.total_records == 3 and dataset.skipped_count == 0
    assert [(e.index, e.line) for e in dataset.train] == [(0, 2), (1, 3), (2, 4)]


def test_json_array_file_keeps_element_lines(tmp_path):
    path = tmp_path / "data.json"
    path.write_text('[\n  {"prompt": "a", "completion": "b"},\n  {"prompt": "c",\n   "completion": "d"}\n]\n')
    dataset = _load(path)
    assert dataset.format is DatasetFormat.PROMPT_COMPLETION
    assert [e.messages[1].content for e in dataset.train] == ["b", "d"]
    assert [e.line for e in dataset.train] == [2, 4]


def test_bad_records_are_skipped_but_keep_their_index(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        '{"prompt": "a", "completion": "b"}\n'
        "\n"
        "{broken\n"
        '{"instruction": "i", "output": "o"}\n'
        '{"prompt": "c", "completion": "d"}\n'
    )
    dataset = _load(path)
    assert dataset.total_records == 4  # the blank line is not a record
    assert [e.index for e in dataset.train] == [0, 3]
    assert dataset.skipped_count == 2
    assert dataset.skipped[0].line == 3 and "not valid JSON" in dataset.skipped[0].reason
    assert dataset.skipped[1].line == 4 and "cannot be mixed" in dataset.skipped[1].reason


def test_a_file_that_is_not_json_fails(tmp_path):
    path = tmp_path / "notes.jsonl"
    path.write_text("hello world\nthis is not json\n")
    with pytest.raises(DatasetError, match="none of the dataset's 2 records"):
        _load(path)


def test_all_examples_empty_after_normalisation_fails(tmp_path):
    path = write_jsonl(tmp_path / "empty.jsonl", [{"prompt": "Q", "completion": "  "}] * 5)
    with pytest.raises(DatasetError, match="no non-empty assistant"):
        _load(path)


def test_missing_file_is_an_infrastructure_error(tmp_path):
    with pytest.raises(InfrastructureError, match="does not exist"):
        _load(tmp_path / "absent.jsonl")


def test_a_one_example_file_trains_without_a_split(tmp_path):
    # seed 0, split 0.1: record 0 hashes to bucket 0 < 1000, so it would be held out.
    path = write_jsonl(tmp_path / "one.jsonl", [{"prompt": "Q", "completion": "A"}])
    loaded = _load(path, seed=0, split=0.1)
    assert [e.index for e in loaded.train] == [0] and loaded.validation == []
    assert "too small for a validation split" in loaded.split_dropped


def test_a_split_that_selects_no_validation_example_is_dropped(tmp_path):
    # seed 1000, split 0.1: records 0, 1, 2 land in buckets 1000, 3761, 6522: none held out.
    path = write_jsonl(tmp_path / "three.jsonl", [{"prompt": f"Q{i}", "completion": "A"} for i in range(3)])
    loaded = _load(path, seed=1000, split=0.1)
    assert len(loaded.train) == 3 and loaded.split_dropped
    assert _load(path, seed=1000, split=0.0).split_dropped is None


# ------------------------------------------------------------------------ split rule


@pytest.mark.parametrize("seed", [0, 42, 9_999, 123_456_789, 2**32 - 1, 2**64 - 1])
@pytest.mark.parametrize("split, expected", [(0.1, 1_000), (0.25, 2_500), (0.05, 500), (0.12345, 1_235)])
def test_split_holds_out_exactly_the_share_of_every_10000_block(seed, split, expected):
    threshold = validation_threshold(split)
    for start in (0, 10_000, 1_234_567):
        held_out = sum(is_validation(i, seed, threshold) for i in range(start, start + 10_000))
        assert held_out == expected


def test_split_matches_the_protocol_formula_literally():
    seed, threshold = 42, validation_threshold(0.1)
    expected = [i for i in range(200) if (i * 2654435761 + seed) % 10000 < round(0.1 * 10000)]
    assert [i for i in range(200) if is_validation(i, seed, threshold)] == expected
    # Known values: i=0 → 42 (held out); i=1 → 2654435803 % 10000 = 5803 (trains).
    assert is_validation(0, seed, threshold) and not is_validation(1, seed, threshold)


@pytest.mark.parametrize(
    "split, threshold",
    [(0.0, 0), (0.1, 1000), (0.00125, 13), (0.00025, 3), (0.00005, 1), (0.00015, 1), (0.12345, 1235)],
)
def test_threshold_rounds_halves_away_from_zero_like_rust(split, threshold):
    assert validation_threshold(split) == threshold


def test_loaded_split_follows_the_rule_by_record_index(tmp_path):
    records = [{"prompt": f"Q{i}", "completion": f"A{i}"} for i in range(500)]
    records[7] = {"prompt": "Q7", "completion": ""}  # unusable, but still record 7
    path = write_jsonl(tmp_path / "d.jsonl", records)
    dataset = _load(path, seed=7, split=0.2)
    threshold = validation_threshold(0.2)
    assert all(is_validation(e.index, 7, threshold) for e in dataset.validation)
    assert not any(is_validation(e.index, 7, threshold) for e in dataset.train)
    assert len(dataset.train) + len(dataset.validation) == 499
    assert 7 not in {e.index for e in dataset.train + dataset.validation}


def test_validation_can_be_switched_off(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"prompt": f"Q{i}", "completion": "A"} for i in range(50)])
    dataset = _load(path, seed=1, split=0.5, use_validation=False)
    assert len(dataset.train) == 50 and dataset.validation == []


def test_utf8_and_bom_are_handled(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"prompt": "caf\u00e9", "completion": "\u2615"}).encode() + b"\n\xff\xfe\n")
    dataset = _load(path)
    assert dataset.train[0].messages[0].content == "café"
    assert dataset.skipped[0].reason == "the line is not valid UTF-8"


# ------------------------------------------------------------------------ tools, text, refusals

WEATHER_TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


def test_openai_tool_calls_are_normalised():
    from brightrun_trainer.data import ToolCall, tools_of

    record = {
        "tools": [WEATHER_TOOL],
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "21"},
            {"role": "assistant", "content": "21 C"},
        ],
    }
    messages = normalise(record, DatasetFormat.OPENAI_CHAT)
    assert [m.role for m in messages] == [U, A, "tool", A]
    assert [m.trainable for m in messages] == [False, True, False, True]
    assert messages[1].tool_calls == (ToolCall("get_weather", {"city": "Paris"}, "c1"),)
    assert messages[2].as_chat() == {"role": "tool", "content": "21", "tool_call_id": "c1"}
    assert tools_of(record, DatasetFormat.OPENAI_CHAT) == (WEATHER_TOOL,)
    bad = json.loads(json.dumps(record))
    bad["messages"][1]["tool_calls"][0]["function"]["arguments"] = "{city"
    with pytest.raises(InvalidRecord, match="not valid JSON"):
        normalise(bad, DatasetFormat.OPENAI_CHAT)


def test_legacy_function_call_and_function_role():
    record = {
        "functions": [{"name": "add", "parameters": {"type": "object", "properties": {}}}],
        "messages": [
            {"role": "user", "content": "1+1?"},
            {"role": "assistant", "content": None, "function_call": {"name": "add", "arguments": "{}"}},
            {"role": "function", "name": "add", "content": "2"},
            {"role": "assistant", "content": "2"},
        ],
    }
    messages = normalise(record, DatasetFormat.OPENAI_CHAT)
    assert [m.role for m in messages] == [U, A, "tool", A]
    assert messages[1].tool_calls[0].name == "add"


def test_sharegpt_glaive_layout():
    from brightrun_trainer.data import tools_of

    record = {
        "conversations": [
            {"from": "human", "value": "Weather?"},
            {"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {"city": "Oslo"}})},
            {"from": "observation", "value": "-3"},
            {"from": "gpt", "value": "-3 C"},
        ],
        "tools": json.dumps([WEATHER_TOOL["function"]]),
    }
    messages = normalise(record, DatasetFormat.SHAREGPT)
    assert [m.role for m in messages] == [U, A, "tool", A]
    assert messages[1].trainable and messages[1].tool_calls[0].arguments == {"city": "Oslo"}
    assert tools_of(record, DatasetFormat.SHAREGPT) == (WEATHER_TOOL,)
    record["conversations"][2:3] = []
    record["conversations"].insert(1, {"from": "observation", "value": "x"})
    with pytest.raises(InvalidRecord, match="answers no earlier function_call"):
        normalise(record, DatasetFormat.SHAREGPT)


def test_plain_text_is_a_format_of_its_own():
    assert detect_format({"text": "raw"}) is DatasetFormat.TEXT
    assert normalise({"text": "raw"}, DatasetFormat.TEXT) == (Message("text", "raw", True),)
    with pytest.raises(InvalidRecord, match="empty"):
        normalise({"text": " "}, DatasetFormat.TEXT)


def test_text_parts_with_text_or_value_are_joined():
    record = {"messages": [{"role": "user", "content": [{"type": "text", "text": "Hel"}, {"type": "text", "value": "lo"}]}, {"role": "assistant", "content": "Hi"}]}
    assert normalise(record, DatasetFormat.OPENAI_CHAT)[0].content == "Hello"
    record = {"conversations": [{"from": "human", "value": [{"value": "q"}]}, {"from": "gpt", "value": "a"}]}
    assert normalise(record, DatasetFormat.SHAREGPT)[0].content == "q"


@pytest.mark.parametrize(
    "record, reason",
    [
        ({"conversations": [{"from": "human", "value": "<image>What?"}, {"from": "gpt", "value": "Cat"}], "images": ["a.png"]}, "multimodal"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}, {"role": "assistant", "content": "Cat"}]}, "multimodal"),
        ({"instruction": "<audio>Transcribe", "output": "hello"}, "multimodal"),
        ({"prompt": "Q", "chosen": "A", "rejected": "B"}, "preference data"),
        ({"input": {"messages": []}, "preferred_output": [], "non_preferred_output": []}, "preference data"),
        ({"prompt": "Q", "completion": "A", "label": False}, "KTO data"),
    ],
)
def test_data_for_other_training_fails_the_whole_file(tmp_path, record, reason):
    good = {"prompt": "Q", "completion": "A"}
    path = write_jsonl(tmp_path / "d.jsonl", [good, record, good])
    with pytest.raises(DatasetError, match=f"line 2: this is {reason}"):
        _load(path)


# ------------------------------------------------------------------ peers' own layouts (issue 23)


def _chat(messages):
    return [(m.role, m.content, m.trainable) for m in messages]


def test_trl_conversational_prompt_completion_trains_the_completion():
    record = {
        "prompt": [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": [{"type": "text", "text": "Sky "}, {"type": "text", "text": "colour?"}]},
        ],
        "completion": [{"role": "assistant", "content": [{"type": "text", "text": "Blue."}]}],
    }
    assert detect_format(record) is DatasetFormat.PROMPT_COMPLETION
    assert _chat(normalise(record, DatasetFormat.PROMPT_COMPLETION)) == [
        (S, "Answer briefly.", False), (U, "Hi", False), (A, "Hello", False), (U, "Sky colour?", False), (A, "Blue.", True)
    ]
    parts = {"prompt": [{"type": "text", "text": "The capital of France is"}], "completion": " Paris."}
    assert _chat(normalise(parts, DatasetFormat.PROMPT_COMPLETION)) == [(U, "The capital of France is", False), (A, " Paris.", True)]
    with pytest.raises(InvalidRecord, match="completion"):
        normalise({"prompt": [{"role": "user", "content": "Hi"}], "completion": [{"role": "user", "content": "x"}]}, DatasetFormat.PROMPT_COMPLETION)


def test_a_reply_with_no_user_message_before_it_is_trained_as_written():
    # OpenAI's toy_chat_fine_tuning.jsonl, its 4th example.
    record = {"messages": [{"role": "system", "content": "Be positive."}, {"role": "assistant", "content": "You're great!"}]}
    assert _chat(normalise(record, DatasetFormat.OPENAI_CHAT)) == [(S, "Be positive.", False), (A, "You're great!", True)]


def test_a_last_user_message_with_no_reply_is_dropped():
    record = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye"}]}
    assert _chat(normalise(record, DatasetFormat.OPENAI_CHAT)) == [(U, "Hi", False), (A, "Hello", True)]


def test_llama_factory_loss_weight_is_honoured_like_openai_weight():
    def message(role, text, weight):
        return {"role": role, "content": [{"type": "text", "value": text}], "loss_weight": weight}

    record = {"messages": [message("system", "S", 0.0), message(U, "Q1", 0.0), message(A, "draft", 0.0), message(U, "Q2", 0.0), message(A, "final", 1.0)]}
    assert _chat(normalise(record, DatasetFormat.OPENAI_CHAT)) == [
        (S, "S", False), (U, "Q1", False), (A, "draft", False), (U, "Q2", False), (A, "final", True)
    ]
    with pytest.raises(InvalidRecord, match="must be the number 0 or 1"):
        normalise({"messages": [message(U, "Q", 0), message(A, "A", 0.5)]}, DatasetFormat.OPENAI_CHAT)


@pytest.mark.parametrize(
    "message, reason",
    [
        ({"role": "user", "content": "Q", "weight": 1}, "weight is allowed on assistant messages only"),
        ({"role": "user", "content": "Q", "weight": 0}, "weight is allowed on assistant messages only"),
        ({"role": "assistant", "content": "A", "weight": "1"}, "must be the number 0 or 1"),
        ({"role": "assistant", "content": "A", "weight": 2}, "must be the number 0 or 1"),
    ],
)
def test_openai_weight_follows_openai_rule(message, reason):
    messages = [message, {"role": "assistant", "content": "A"}] if message["role"] == "user" else [{"role": "user", "content": "Q"}, message]
    with pytest.raises(InvalidRecord, match=reason):
        normalise({"messages": messages}, DatasetFormat.OPENAI_CHAT)


def test_alpaca_history_is_earlier_turns():
    record = {"instruction": "And then?", "output": "The end.", "system": "S", "history": [["Tell a story", "Once upon a time"]]}
    assert _chat(normalise(record, DatasetFormat.ALPACA)) == [
        (S, "S", False), (U, "Tell a story", False), (A, "Once upon a time", True), (U, "And then?", False), (A, "The end.", True)
    ]
    with pytest.raises(InvalidRecord, match=r"history\[0\]"):
        normalise({"instruction": "a", "output": "b", "history": [["only one"]]}, DatasetFormat.ALPACA)


def test_stepwise_supervision_fails_the_file_as_process_reward_data(tmp_path):
    path = write_jsonl(tmp_path / "prm.jsonl", [{"prompt": "Which is larger, 9.8 or 9.11?", "completions": ["9.8 has 0.8.", "So 9.11 is larger."], "labels": [True, False]}])
    with pytest.raises(DatasetError, match="process-reward data, not SFT data"):
        load_dataset(path, seed=0, validation_split=0.0, use_validation=False)


def test_reasoning_and_tool_call_parts_are_named():
    record = {"messages": [{"role": U, "content": "Q"}, {"role": A, "content": [{"type": "reasoning", "value": "hmm"}, {"type": "text", "value": "A"}]}]}
    with pytest.raises(InvalidRecord, match="'reasoning' content part, which BrightRun does not read"):
        normalise(record, DatasetFormat.OPENAI_CHAT)
