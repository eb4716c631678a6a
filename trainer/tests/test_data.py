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
        (DatasetFormat.OPENAI_CHAT, {"messages": [{"role": "tool", "content": "x"}]}, "role"),
        (DatasetFormat.SHAREGPT, {"conversations": [{"from": "gpt", "value": "I start"}]}, "start with a user"),
        (DatasetFormat.BRIGHTRUN_V4, {"turns": []}, "non-empty list"),
        (DatasetFormat.BRIGHTRUN_V4, {"turns": [{"role": "user", "content": "Q"}, {"role": "system", "content": "late"}, {"role": "assistant", "content": "A"}]}, "system message"),
        (DatasetFormat.ALPACA, {"instruction": 3, "output": "x"}, "instruction"),
    ],
)
def test_unusable_records_are_rejected_with_a_reason(fmt, record, reason):
    with pytest.raises(InvalidRecord, match=reason):
        normalise(record, fmt)


def test_unknown_shapes_are_not_detected():
    assert detect_format({"text": "raw"}) is None
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


def test_everything_in_validation_fails(tmp_path):
    # seed 0, split 0.1: record 0 hashes to bucket 0 < 1000, so it is held out.
    path = write_jsonl(tmp_path / "one.jsonl", [{"prompt": "Q", "completion": "A"}])
    with pytest.raises(DatasetError, match="validation split"):
        _load(path, seed=0, split=0.1)


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
