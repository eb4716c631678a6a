"""The shared corpus of dataset lines (tests/fixtures/validation_corpus.jsonl, described in
validation_corpus.md beside it), read by the trainer's own reader.

The engine's validator reads the same corpus (engine/tests/validation_corpus.rs), so the two
cannot drift apart unnoticed: a line the validator accepts as trainable gives the trainer a
usable example with the same roles and texts, and a line it refuses is refused or skipped by
the trainer, except for the cases marked ``known_difference``, where the trainer is asserted
to differ (so that a change on either side updates the corpus).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from brightrun_trainer.data import load_dataset
from brightrun_trainer.errors import DatasetError
from brightrun_trainer.preference_data import load_preference_dataset

CORPUS = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "validation_corpus.jsonl"
FIELDS = {"case", "records", "raw", "format", "trainable", "messages", "error", "warning", "trainer", "known_difference"}


def load_corpus() -> list[dict[str, Any]]:
    cases = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    names = [case["case"] for case in cases]
    assert len(names) == len(set(names)), "case names are unique"
    return cases


CASES = load_corpus()


def write_case(case: dict[str, Any], folder: Path) -> tuple[Path, int]:
    """The case's file, and the line of the record under test (the last one)."""
    lines = [json.dumps(record, ensure_ascii=False) for record in case["records"]]
    if "raw" in case:
        lines.append(case["raw"])
    path = folder / "data.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path, len(lines)


def trainer_verdict(path: Path, line: int, format_: str) -> tuple[bool, str | None, Any]:
    """(usable, why not, the loaded dataset or None) for the record on ``line``, read as the
    method that trains on its format reads it (preference pairs by DPO, KTO data by KTO)."""
    try:
        if format_ in ("preference", "kto"):
            method = "kto" if format_ == "kto" else "dpo"
            dataset = load_preference_dataset(
                path, method=method, seed=0, validation_split=0.0, use_validation=False
            )
        else:
            dataset = load_dataset(path, seed=0, validation_split=0.0, use_validation=False)
    except DatasetError as exc:
        return False, str(exc), None
    for example in dataset.train + dataset.validation:
        if example.line == line:
            return True, None, dataset
    reason = next((s.reason for s in dataset.skipped if s.line == line), None)
    assert reason is not None, f"line {line} is neither an example nor skipped"
    return False, reason, dataset


def test_the_corpus_is_well_formed():
    assert len(CASES) >= 50
    for case in CASES:
        assert set(case) <= FIELDS, f"{case['case']}: unknown fields {set(case) - FIELDS}"
        assert isinstance(case["trainable"], bool), case["case"]
        if case["trainable"]:
            assert case.get("messages"), f"{case['case']}: a trainable case gives its messages"
            assert "error" not in case, case["case"]
        else:
            assert case.get("error"), f"{case['case']}: a refused case names its error"
        if "known_difference" in case:
            assert len(case["known_difference"]) > 20, f"{case['case']}: say why"
    formats = {case["format"] for case in CASES if case["trainable"]}
    assert formats == {
        "brightrun_v4", "brightrun_flat", "openai_chat", "alpaca", "sharegpt", "prompt_completion", "text",
        "preference", "kto",
    }, "every trainable format has an accepted case"


@pytest.mark.parametrize("case", CASES, ids=[case["case"] for case in CASES])
def test_the_trainer_agrees_with_the_validator(case, tmp_path):
    path, line = write_case(case, tmp_path)
    usable, why, dataset = trainer_verdict(path, line, case["format"])
    expected = case["trainable"]
    if "known_difference" in case:
        assert usable != expected, (
            f"{case['case']} is marked as a known difference, but the trainer now agrees with the "
            f"validator ({'usable' if usable else why}): remove known_difference from the corpus"
        )
        return
    if not expected:
        assert not usable, f"{case['case']}: the validator refuses it ({case['error']}), the trainer used it"
        if "trainer" in case:
            assert case["trainer"] in why, f"{case['case']}: {why!r}"
        return
    assert usable, f"{case['case']}: the validator accepts it, the trainer skipped it: {why}"
    assert dataset.format.value == case["format"]
    (example,) = [e for e in dataset.train if e.line == line]
    if hasattr(example, "as_example"):  # a pair, or a KTO reply: its prompt and (chosen) reply
        example = example.as_example()
    got = [[m.role, m.content] for m in example.messages]
    want = case["messages"]
    assert [role for role, _ in got] == [role for role, _ in want], case["case"]
    for (role, content), (_, expected_content) in zip(got, want):
        if expected_content is not None:  # null: a tool call, shown differently by each side
            assert content == expected_content, f"{case['case']}: {role} message"
    trained = [m.role for m in example.messages if m.trainable]
    assert trained and set(trained) <= {"assistant", "text"}
