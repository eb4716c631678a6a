"""``python -m brightrun_trainer inspect``: see what a training run will learn, before it runs.

One request in (``--request-json JSON`` or ``--request FILE``), one JSON object out on stdout,
exit status 0; a problem is ``{"version": 1, "error": {"kind", "reason"}}`` and exit status 1
(PROTOCOL.md, "Inspect mode", is the contract). Two modes:

- ``example``: one record of the dataset as a run encodes it, token by token: its id, its text
  (decoded alone), whether the loss covers it, whether it is a special token, and where
  ``max_seq_length`` cuts the sequence (the tokens past the cut are listed too);
- ``stats``: the whole dataset as a run with this ``max_seq_length`` would encode it (every
  record, whatever the train/validation split): examples, skipped records, tokens, trained
  tokens, what truncation costs and how well packing would fill rows.

Nothing here re-implements the trainer: the dataset is read by :func:`.data.read_examples`
(what :func:`.data.load_dataset` reads), the base model's tokenizer is resolved and loaded by
the run's own :func:`.train.resolve_base_model`, :func:`.train.load_tokenizer` and
:func:`.encoding.prepare_tokenizer`, and every example goes through the steps of
:func:`.encoding.encode_examples` (:func:`.encoding.render_conversation`,
:func:`.encoding.tokenize_conversations`, :func:`.encoding.text_token_ids`, then
:func:`.encoding.cut`), so the tokens and the mask shown are the run's.

A token is ``trained`` when the loss predicts it: its label is not ``-100`` and it is not the
first token of the sequence. Causal-LM labels are shifted (position ``i`` predicts the label
of ``i + 1``), so the first token's label is never a target: the flattening collator masks it
explicitly and the padded batch's loss never reads it (the Trainer counts ``labels[..., 1:]``).
Tokens past the cut are never trained.

Stats mode streams: records are read one at a time, examples are rendered and tokenized in
batches of :data:`BATCH_EXAMPLES` (one fast-tokenizer call per batch), and only each example's
length is kept (for the packing estimate); progress goes to stderr at most once a second.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import traceback
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .data import (
    SKIPPED_KEPT,
    SKIPPED_LISTED,
    DatasetFormat,
    Example,
    RecordVerdict,
    SkippedRecord,
    _nothing_usable_reason,
    read_examples,
    skipped_warning,
)
from .encoding import (
    IGNORE_INDEX,
    TEMPLATE_REJECTIONS,
    EncodedExample,
    RenderedConversation,
    cut,
    end_of_turn_marker,
    has_generation_markers,
    pack_examples,
    prepare_tokenizer,
    render,
    render_conversation,
    template_rejection_reason,
    text_token_ids,
    tokenize_conversations,
)
from .errors import DatasetError, TrainerError, hub_offline, one_line_reason
from .spec import _HYPERPARAMETERS, MIN_SEQ_LENGTH

REPLY_VERSION = 1
MODES = ("example", "stats")
#: Examples rendered and tokenized together in stats mode.
BATCH_EXAMPLES = 256
PROGRESS_INTERVAL_SECONDS = 1.0

#: Error kinds (``error.kind``).
INPUT = "input"  # a bad request, dataset, index or line
MODEL = "model"  # the base model's tokenizer cannot be loaded
TEMPLATE = "template"  # the chat template rejects the conversation (mode example)
INTERNAL = "internal"  # anything else (a bug, a broken installation)

#: Warning codes, in the order replies list them (PROTOCOL.md, "Inspect mode").
WARNING_CODES = (
    "unknown_fields",
    "no_chat_template",
    "records_skipped",
    "rejected_by_template",
    "no_trained_tokens",
    "truncated",
    "no_generation_markers",
    "turns_not_located",
    "system_prompt_dropped",
    "system_prompt_folded",
    "tool_calls_dropped",
    "no_end_of_turn_trained",
)

_REQUEST_FIELDS = {"version", "dataset", "base_model", "max_seq_length", "mode", "example", "line", "hyperparameters"}


class InspectError(Exception):
    """A problem the reply reports as ``{"error": {"kind", "reason"}}`` (exit status 1)."""

    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


# --------------------------------------------------------------------------- request


@dataclass(frozen=True)
class Request:
    dataset: Path
    base_model: str
    max_seq_length: int
    mode: str = "example"
    #: Mode example: the 0-based record index, or the 1-based line (exactly one is set).
    example: int | None = 0
    line: int | None = None
    #: Dotted names of request fields this trainer does not know (reported in a warning).
    unknown_fields: tuple[str, ...] = ()


def read_request(request_json: str | None, request_path: str | None) -> Any:
    """The request document, from the command line's JSON or from a file."""
    if request_path is not None:
        try:
            request_json = Path(request_path).read_text(encoding="utf-8")
        except OSError as exc:
            raise InspectError(INPUT, f"cannot read the request {request_path}: {exc.strerror or exc}") from exc
    try:
        return json.loads(request_json or "")
    except json.JSONDecodeError as exc:
        raise InspectError(INPUT, f"the request is not valid JSON: {exc}") from exc


def parse_request(document: Any) -> Request:
    """Validate a request document (strictly: every failure names the field)."""
    if not isinstance(document, dict):
        raise InspectError(INPUT, f"the request must be a JSON object, got {_describe(document)}")
    version = document.get("version")
    if version != REPLY_VERSION or isinstance(version, bool):
        raise InspectError(INPUT, f"request field `version`: this trainer reads version {REPLY_VERSION}, got {_describe(version)}")
    hyperparameters = document.get("hyperparameters")
    if hyperparameters is None:
        hyperparameters = {}
    if not isinstance(hyperparameters, dict):
        raise _field_error("hyperparameters", "expected a JSON object", hyperparameters)
    mode = document.get("mode", "example")
    if mode not in MODES:
        raise _field_error("mode", 'expected "example" or "stats"', mode)
    example, line = _position(document, mode)
    unknown = [key for key in document if key not in _REQUEST_FIELDS]
    unknown += [f"hyperparameters.{key}" for key in hyperparameters if key not in _HYPERPARAMETERS]
    return Request(
        dataset=Path(_string(document, "dataset")),
        base_model=_string(document, "base_model"),
        max_seq_length=_max_seq_length(document, hyperparameters),
        mode=mode,
        example=example,
        line=line,
        unknown_fields=tuple(unknown),
    )


def _position(document: dict[str, Any], mode: str) -> tuple[int | None, int | None]:
    """``(example, line)``: exactly one set in mode example (neither given means example 0)."""
    given = [name for name in ("example", "line") if document.get(name) is not None]
    if mode == "stats":
        if given:
            raise InspectError(INPUT, f'request field `{given[0]}` applies to mode "example" only')
        return None, None
    if len(given) == 2:
        raise InspectError(INPUT, "give one of `example` (a 0-based record index) or `line` (a 1-based line), not both")
    if given == ["line"]:
        return None, _integer(document, "line", minimum=1)
    if given == ["example"]:
        return _integer(document, "example", minimum=0), None
    return 0, None


def _max_seq_length(document: dict[str, Any], hyperparameters: dict[str, Any]) -> int:
    """The request's ``max_seq_length``, else the hyperparameters'; both given must agree."""
    top = _integer(document, "max_seq_length", minimum=MIN_SEQ_LENGTH) if document.get("max_seq_length") is not None else None
    hp = None
    if hyperparameters.get("max_seq_length") is not None:
        hp = _integer(hyperparameters, "max_seq_length", minimum=MIN_SEQ_LENGTH, prefix="hyperparameters.")
    if top is None and hp is None:
        raise InspectError(INPUT, "request field `max_seq_length` is missing (the run's max_seq_length)")
    if top is not None and hp is not None and top != hp:
        raise InspectError(
            INPUT, f"request field `max_seq_length` ({top}) differs from `hyperparameters.max_seq_length` ({hp})"
        )
    return top if top is not None else hp


def _string(document: dict[str, Any], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _field_error(name, "expected a non-empty string", value)
    return value


def _integer(document: dict[str, Any], name: str, *, minimum: int, prefix: str = "") -> int:
    value = document.get(name)
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON writers may print whole numbers as 4.0, as the spec allows
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise _field_error(prefix + name, f"expected an integer ≥ {minimum}", value)
    return value


def _field_error(name: str, expectation: str, got: Any) -> InspectError:
    return InspectError(INPUT, f"request field `{name}`: {expectation}, got {_describe(got)}")


def _describe(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


# --------------------------------------------------------------------------- tokenizer


def load_run_tokenizer(base_model: str):
    """The tokenizer a run uses, loaded by the run's own functions; returns it and whether the
    base model has a chat template of its own (else a run renders with the default one)."""
    from .train import load_tokenizer, resolve_base_model  # imports torch and transformers

    try:
        tokenizer = load_tokenizer(resolve_base_model(base_model), base_model)
    except TrainerError as exc:
        raise InspectError(MODEL, model_reason(exc, base_model)) from exc
    if not getattr(tokenizer, "is_fast", False):
        raise InspectError(
            MODEL,
            f"the tokenizer of {base_model} is not a fast tokenizer (no tokenizer.json): the trainer needs "
            "one to map the assistant turns to tokens",
        )
    own_template = bool(getattr(tokenizer, "chat_template", None))
    prepare_tokenizer(tokenizer)
    return tokenizer, own_template


def model_reason(exc: TrainerError, base_model: str) -> str:
    """The run's reason for a base model that does not load, with the way on when it is only
    missing from the local cache of an offline machine."""
    if "not in the offline cache" not in exc.reason:
        return exc.reason
    set_flags = [name for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE") if _truthy(os.environ.get(name))]
    why = f"{set_flags[0]} is set" if set_flags and hub_offline() else "the Hugging Face Hub may not be used"
    return (
        f"base model {base_model} is not in the local Hugging Face cache and {why}: download it once with "
        f"`huggingface-cli download {base_model}` or name a local folder"
    )


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "on", "yes", "true"}  # as errors.hub_offline reads them


def describe_tokenizer(tokenizer, own_template: bool) -> dict[str, Any]:
    """The reply's ``tokenizer`` object (compute it before encoding anything: see
    :func:`tokenizer_hash`)."""
    return {
        "hash": tokenizer_hash(tokenizer),
        "chat_template": own_template,
        "generation_markers": has_generation_markers(tokenizer),
        "bos": _token_name(tokenizer.bos_token),
        "eos": _token_name(tokenizer.eos_token),
        "end_of_turn": end_of_turn_marker(tokenizer),
    }


def tokenizer_hash(tokenizer) -> str:
    """SHA-256 of what decides the tokens: the fast tokenizer's whole definition (vocabulary,
    merges, normaliser, pre-tokenizer, post-processor, added tokens: its ``tokenizer.json``
    as the ``tokenizers`` library writes it, without the per-call truncation and padding
    state), the special tokens, and the chat template a run renders with (the default one
    when the model has none). Canonical JSON (sorted keys), so the same files give the same
    hash on any machine with the same ``tokenizers`` version."""
    definition = json.loads(tokenizer.backend_tokenizer.to_str())
    definition.pop("truncation", None)
    definition.pop("padding", None)
    special = {name: _token_name(value) for name, value in sorted(tokenizer.special_tokens_map.items())}
    document = {"tokenizer": definition, "special_tokens": special, "chat_template": tokenizer.chat_template}
    canonical = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _token_name(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return [_token_name(item) for item in value]
    return str(value)


# --------------------------------------------------------------------------- encoding


@dataclass
class EncodedRecord:
    """One example as a run encodes it: the whole sequence, and what training keeps of it."""

    example: Example
    #: Untruncated ids and labels (labels ``-100`` where the loss does not reach).
    input_ids: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    #: What training keeps (:func:`.encoding.cut`); ``None``: dropped, no trained token left.
    kept: EncodedExample | None = None
    truncated: bool = False
    #: The chat template's rendering (``None`` for a plain-text example).
    rendered: RenderedConversation | None = None
    #: Why the chat template rejects the conversation (then nothing else is set).
    rejection: str | None = None

    @property
    def kept_length(self) -> int:
        return len(self.kept.input_ids) if self.kept is not None else 0


def encode_batch(tokenizer, examples: Sequence[Example], max_seq_length: int) -> list[EncodedRecord]:
    """Encode examples exactly as :func:`.encoding.encode_examples` does, keeping the whole
    sequence too; the template's renderings and the plain texts are tokenized in one call each."""
    records = [EncodedRecord(example) for example in examples]
    conversations = []
    for record in records:
        if record.example.is_text:
            continue
        try:
            record.rendered = render_conversation(tokenizer, record.example.messages, record.example.tools)
            conversations.append(record)
        except TEMPLATE_REJECTIONS as exc:
            record.rejection = template_rejection_reason(exc)
    for record, (ids, labels) in zip(conversations, tokenize_conversations(tokenizer, [r.rendered for r in conversations])):
        record.input_ids, record.labels = ids, labels
    texts = [record for record in records if record.example.is_text]
    for record, ids in zip(texts, text_token_ids(tokenizer, [r.example.messages[0].content for r in texts])):
        record.input_ids, record.labels = ids, list(ids)
    for record in records:
        if record.rejection is None:
            record.kept, record.truncated = cut(record.input_ids, record.labels, max_seq_length)
    return records


def trained_flags(record: EncodedRecord) -> list[bool]:
    """Per token of the whole sequence: whether the loss predicts it (a label, not the first
    token: labels are shifted; nothing past the cut, nothing of a dropped example)."""
    flags = [False] * len(record.input_ids)
    if record.kept is not None:
        for i, label in enumerate(record.kept.labels):
            flags[i] = i > 0 and label != IGNORE_INDEX
    return flags


def trained_count(record: EncodedRecord) -> int:
    if record.kept is None:
        return 0
    labels = record.kept.labels
    return sum(1 for i in range(1, len(labels)) if labels[i] != IGNORE_INDEX)


# --------------------------------------------------------------------------- findings


@dataclass(frozen=True)
class Finding:
    """Something about one example that a person should know (a warning code)."""

    code: str
    message: str
    #: Tokens lost (``truncated``), turns (``turns_not_located``), items (``tool_calls_dropped``).
    amount: int = 0


class FindingRules:
    """The checks run on every encoded example, with what they need of the tokenizer computed once."""

    def __init__(self, tokenizer, max_seq_length: int):
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        marker = end_of_turn_marker(tokenizer)
        self.marker = marker
        self.marker_text = (marker.strip() or marker) if marker else None

    def findings(self, record: EncodedRecord) -> list[Finding]:
        found = [self.dropped(record), self.truncation(record), self.search(record), self.not_located(record)]
        found += [self.system_prompt(record), self.tools(record), self.end_of_turn(record)]
        return [f for f in found if f is not None]

    def dropped(self, record: EncodedRecord) -> Finding | None:
        if record.kept is not None:
            return None
        return Finding(
            "no_trained_tokens",
            f"no trained token is left within max_seq_length {self.max_seq_length}: a run drops this example; "
            "raise max_seq_length or shorten the prompt",
        )

    def truncation(self, record: EncodedRecord) -> Finding | None:
        if not record.truncated:
            return None
        lost = len(record.input_ids) - self.max_seq_length
        return Finding(
            "truncated",
            f"the example has {len(record.input_ids)} tokens, more than max_seq_length {self.max_seq_length}: "
            f"the last {lost} are cut off and not trained; raise max_seq_length or shorten the example",
            lost,
        )

    def search(self, record: EncodedRecord) -> Finding | None:
        if record.rendered is None or not record.rendered.searched:
            return None
        return Finding(
            "no_generation_markers",
            "the chat template has no {% generation %} markers and rewrites earlier turns, so the trainer "
            "located the assistant turns by searching for their text in the rendering: it works, but check "
            "the trained tokens",
        )

    def not_located(self, record: EncodedRecord) -> Finding | None:
        if record.rendered is None or not record.rendered.missed:
            return None
        missed = record.rendered.missed
        return Finding(
            "turns_not_located",
            f"{missed} assistant turn{'s' if missed != 1 else ''} could not be located in the chat template's "
            "rendering (the template rewrites them) and are not trained",
            missed,
        )

    def system_prompt(self, record: EncodedRecord) -> Finding | None:
        messages = record.example.messages
        if record.rendered is None or messages[0].role != "system" or not messages[0].content.strip():
            return None
        if record.rendered.chat[0]["role"] != "system":
            return Finding(
                "system_prompt_folded",
                "the chat template has no system role: the system message is put at the start of the first "
                "user message, as a run does",
            )
        if messages[0].content.strip() in self.text(record):
            return None
        return Finding(
            "system_prompt_dropped",
            "the chat template drops the system message: the rendered text lacks it, so the model never sees "
            "it; move the instructions into the first user message or use a base model whose template renders it",
        )

    def tools(self, record: EncodedRecord) -> Finding | None:
        example = record.example
        names = [tool.get("function", {}).get("name", "") for tool in example.tools]
        names += [call.name for message in example.messages for call in message.tool_calls]
        results = [m.content.strip() for m in example.messages if m.role == "tool" and m.content.strip()]
        if record.rendered is None or not (names or results):
            return None
        text = self.text(record)
        missing = [n for n in names if n and n not in text] + [r for r in results if r not in text]
        if not missing:
            return None
        shown = ", ".join(sorted({n for n in names if n and n not in text})) or "tool results"
        return Finding(
            "tool_calls_dropped",
            f"the chat template does not render {len(missing)} of this example's tool definitions, calls or "
            f"results ({shown}): the model will not learn to call tools; use a base model whose chat template "
            "supports tools",
            len(missing),
        )

    def end_of_turn(self, record: EncodedRecord) -> Finding | None:
        if record.rejection is not None:
            return None
        runs = _trained_runs(record.input_ids, record.labels)
        without = [run for run in runs if not self.ends_turn(run, plain=record.rendered is None)]
        if not without:
            return None
        what = "the end-of-sequence token" if record.rendered is None else f"the end-of-turn marker {self.marker!r}"
        return Finding(
            "no_end_of_turn_trained",
            f"{len(without)} trained span{'s' if len(without) != 1 else ''} of this example do not include "
            f"{what}: the model will not learn to stop there",
            len(without),
        )

    def ends_turn(self, run: list[int], *, plain: bool) -> bool:
        eos = self.tokenizer.eos_token_id
        if eos is not None and eos in run:
            return True
        if plain or not self.marker_text:
            return False
        decoded = self.tokenizer.decode(run, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        return self.marker_text in decoded

    def text(self, record: EncodedRecord) -> str:
        """The chat template's rendering of the example (the template-mask route renders it again)."""
        rendered = record.rendered
        if rendered.text is None:
            rendered.text = render(self.tokenizer, rendered.chat, tools=rendered.tools)
        return rendered.text


def _trained_runs(input_ids: Sequence[int], labels: Sequence[int]) -> list[list[int]]:
    """The ids of each contiguous run of labelled tokens (one per trained turn)."""
    runs, current = [], []
    for token, label in zip(input_ids, labels):
        if label != IGNORE_INDEX:
            current.append(token)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return runs


# --------------------------------------------------------------------------- mode example


def inspect_example(request: Request, load_tokenizer=load_run_tokenizer) -> dict[str, Any]:
    """The reply of mode ``example``."""
    target, total, fmt = find_record(request)
    tokenizer, own_template = load_tokenizer(request.base_model)
    tokenizer_info = describe_tokenizer(tokenizer, own_template)
    (record,) = encode_batch(tokenizer, [target.example], request.max_seq_length)
    if record.rejection is not None:
        raise InspectError(TEMPLATE, f"line {target.line}: {record.rejection}")
    findings = FindingRules(tokenizer, request.max_seq_length).findings(record)
    warnings = _request_warnings(request, own_template) + [{"code": f.code, "message": f.message} for f in findings]
    return {
        "version": REPLY_VERSION,
        "format": fmt.value,
        "examples": total,
        "example": {"index": target.index, "line": target.line},
        "tokenizer": tokenizer_info,
        "tokens": token_rows(tokenizer, record.input_ids, trained_flags(record)),
        "cut": request.max_seq_length if record.truncated else None,
        "summary": example_summary(record, request.max_seq_length),
        "warnings": _ordered(warnings),
    }


def find_record(request: Request) -> tuple[RecordVerdict, int, DatasetFormat]:
    """The requested record (by index or line), the file's record count and its format. The
    whole file is read, as a run reads it (a record of another kind of training fails it)."""
    target, total, fmt, lines = None, 0, None, []
    for verdict in read_examples(request.dataset):
        total, fmt = total + 1, verdict.format
        lines = [lines[0] if lines else verdict.line, verdict.line]
        wanted = verdict.index == request.example if request.line is None else verdict.line == request.line
        if target is None and wanted:
            target = verdict
    if target is None:
        span = f", on lines {lines[0]} to {lines[1]}" if lines else ""
        if request.line is not None:
            raise InspectError(INPUT, f"line {request.line} holds no record: the dataset has {total} records{span}")
        last = f" (0 to {total - 1})" if total else ""
        raise InspectError(INPUT, f"example {request.example} is out of range: the dataset has {total} records{last}")
    if target.example is None:
        raise InspectError(
            INPUT, f"record {target.index} (line {target.line}) is not an example a run trains on: {target.reason}"
        )
    return target, total, fmt


def token_rows(tokenizer, input_ids: Sequence[int], flags: Sequence[bool]) -> list[dict[str, Any]]:
    special = special_token_ids(tokenizer)
    texts = token_texts(tokenizer, input_ids)
    return [
        {"id": token, "text": text, "trained": trained, "special": token in special}
        for token, text, trained in zip(input_ids, texts, flags)
    ]


def token_texts(tokenizer, input_ids: Sequence[int]) -> list[str]:
    """Each token's text, decoded alone (special tokens kept, no clean-up, spaces as they are)."""
    return tokenizer.batch_decode(
        [[token] for token in input_ids], skip_special_tokens=False, clean_up_tokenization_spaces=False
    )


def special_token_ids(tokenizer) -> set[int]:
    ids = set(tokenizer.all_special_ids)
    ids.update(i for i, token in getattr(tokenizer, "added_tokens_decoder", {}).items() if getattr(token, "special", False))
    return ids


def example_summary(record: EncodedRecord, max_seq_length: int) -> dict[str, Any]:
    tokens, trained = record.kept_length, trained_count(record)
    return {
        "tokens": tokens,
        "trained_tokens": trained,
        "trained_share": trained / tokens if tokens else 0.0,
        "truncated": record.truncated,
        "tokens_lost": max(0, len(record.input_ids) - max_seq_length),
        "dropped": record.kept is None,
        "max_seq_length": max_seq_length,
    }


# --------------------------------------------------------------------------- mode stats


@dataclass
class StatsTotals:
    """What stats mode adds up while it streams (lengths only, never token ids)."""

    records: int = 0
    examples: int = 0
    skipped: int = 0
    tokens: int = 0
    trained_tokens: int = 0
    over_max_seq_length: int = 0
    tokens_lost: int = 0
    longest: int = 0
    lengths: array = field(default_factory=lambda: array("i"))
    format: DatasetFormat | None = None
    unusable: int = 0
    unusable_kept: list[SkippedRecord] = field(default_factory=list)

    def add_unusable(self, verdict: RecordVerdict) -> None:
        self.unusable += 1
        self.skipped += 1
        if len(self.unusable_kept) < SKIPPED_KEPT:
            self.unusable_kept.append(SkippedRecord(verdict.line, verdict.reason))

    def add_encoded(self, record: EncodedRecord, max_seq_length: int) -> None:
        if record.rejection is not None or record.kept is None:
            self.skipped += 1
        if record.rejection is not None:
            return
        self.longest = max(self.longest, len(record.input_ids))
        if record.truncated:
            self.over_max_seq_length += 1
            self.tokens_lost += len(record.input_ids) - max_seq_length
        if record.kept is not None:
            self.examples += 1
            self.tokens += record.kept_length
            self.trained_tokens += trained_count(record)
            self.lengths.append(record.kept_length)


class WarningTally:
    """Findings counted per code over the dataset: one warning per code."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.amounts: dict[str, int] = {}
        self.lines: dict[str, list[int]] = {}
        self.rejections: list[SkippedRecord] = []

    def add(self, finding: Finding, line: int) -> None:
        self.counts[finding.code] = self.counts.get(finding.code, 0) + 1
        self.amounts[finding.code] = self.amounts.get(finding.code, 0) + finding.amount
        listed = self.lines.setdefault(finding.code, [])
        if len(listed) < SKIPPED_LISTED:
            listed.append(line)

    def add_rejection(self, record: EncodedRecord) -> None:
        self.add(Finding("rejected_by_template", record.rejection), record.example.line)
        if len(self.rejections) < SKIPPED_KEPT:
            self.rejections.append(SkippedRecord(record.example.line, record.rejection))

    def warnings(self, totals: StatsTotals, rules: FindingRules) -> list[dict[str, Any]]:
        out = []
        if totals.unusable:
            lines = [s.line for s in totals.unusable_kept[:SKIPPED_LISTED]]
            message = skipped_warning(totals.unusable, totals.unusable_kept)
            out.append({"code": "records_skipped", "message": message, "count": totals.unusable, "lines": lines})
        for code, count in self.counts.items():
            message = self.message(code, count, self.amounts[code], rules)
            out.append({"code": code, "message": message, "count": count, "lines": self.lines[code]})
        return out

    def message(self, code: str, count: int, amount: int, rules: FindingRules) -> str:
        n = f"{count} example{'s' if count != 1 else ''}"
        limit = rules.max_seq_length
        messages = {
            "rejected_by_template": lambda: skipped_warning(count, self.rejections),
            "no_trained_tokens": lambda: (
                f"{n} keep no trained token within max_seq_length {limit}: a run drops them; raise "
                "max_seq_length or shorten their prompts"
            ),
            "truncated": lambda: (
                f"{n} are longer than max_seq_length {limit}: {amount} tokens are cut off their ends and not "
                "trained; raise max_seq_length or shorten them"
            ),
            "no_generation_markers": lambda: (
                f"in {n} the chat template (no {{% generation %}} markers) rewrites earlier turns, so the trainer "
                "located the assistant turns by searching for their text: it works, but check the trained tokens "
                "of one of them (mode example)"
            ),
            "turns_not_located": lambda: (
                f"{amount} assistant turns in {n} could not be located in the chat template's rendering (the "
                "template rewrites them) and are not trained"
            ),
            "system_prompt_dropped": lambda: (
                f"the chat template drops the system message of {n}: the model never sees it; move the "
                "instructions into the first user message or use a base model whose template renders it"
            ),
            "system_prompt_folded": lambda: (
                f"the chat template has no system role: the system message of {n} is put at the start of the "
                "first user message, as a run does"
            ),
            "tool_calls_dropped": lambda: (
                f"the chat template does not render the tool definitions, calls or results of {n} ({amount} "
                "items): the model will not learn to call tools; use a base model whose chat template supports tools"
            ),
            "no_end_of_turn_trained": lambda: (
                f"{n} have {amount} trained spans that do not include the end-of-turn marker {rules.marker!r} (or "
                "the end-of-sequence token): the model will not learn to stop there"
            ),
        }
        return messages[code]()


class Progress:
    """Progress lines on stderr, at most one per interval."""

    def __init__(self, stream=None, interval: float = PROGRESS_INTERVAL_SECONDS, clock=time.monotonic):
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.clock = clock
        self.started = clock()
        self.last = self.started
        self.shown = -1  # the record count of the last line

    def update(self, totals: StatsTotals, *, final: bool = False) -> None:
        """A line when ``interval`` has passed since the last one; ``final``: a last line
        unless the last one already said the same."""
        now = self.clock()
        if (now - self.last < self.interval and not final) or totals.records == self.shown:
            return
        self.last, self.shown = now, totals.records
        elapsed = max(now - self.started, 1e-9)
        print(
            f"inspect: {totals.records:,} records read, {totals.examples:,} examples encoded, "
            f"{totals.tokens:,} tokens ({totals.records / elapsed:,.0f} records/s)",
            file=self.stream,
            flush=True,
        )


def inspect_stats(request: Request, load_tokenizer=load_run_tokenizer, progress: Progress | None = None) -> dict[str, Any]:
    """The reply of mode ``stats``."""
    verdicts = read_examples(request.dataset)
    first = next(verdicts, None)  # a missing or unreadable file fails here, before the model loads
    tokenizer, own_template = load_tokenizer(request.base_model)
    tokenizer_info = describe_tokenizer(tokenizer, own_template)
    rules = FindingRules(tokenizer, request.max_seq_length)
    totals, tally = StatsTotals(), WarningTally()
    for batch in _example_batches(first, verdicts, totals):
        for record in encode_batch(tokenizer, batch, request.max_seq_length):
            _tally_record(record, rules, totals, tally)
        if progress is not None:
            progress.update(totals)
    if progress is not None:
        progress.update(totals, final=True)
    if totals.format is None or totals.unusable == totals.records:
        raise DatasetError(_nothing_usable_reason(totals.records, totals.unusable_kept))
    warnings = _request_warnings(request, own_template) + tally.warnings(totals, rules)
    return {
        "version": REPLY_VERSION,
        "format": totals.format.value,
        "tokenizer": tokenizer_info,
        "stats": stats_object(totals, request.max_seq_length),
        "warnings": _ordered(warnings),
    }


def _example_batches(first: RecordVerdict | None, verdicts: Iterator[RecordVerdict], totals: StatsTotals):
    """Batches of usable examples, counting every record (and the unusable ones) on the way."""
    batch: list[Example] = []
    for verdict in _chain(first, verdicts):
        totals.records += 1
        totals.format = verdict.format
        if verdict.example is None:
            totals.add_unusable(verdict)
            continue
        batch.append(verdict.example)
        if len(batch) >= BATCH_EXAMPLES:
            yield batch
            batch = []
    if batch:
        yield batch


def _chain(first: RecordVerdict | None, rest: Iterator[RecordVerdict]) -> Iterator[RecordVerdict]:
    if first is not None:
        yield first
    yield from rest


def _tally_record(record: EncodedRecord, rules: FindingRules, totals: StatsTotals, tally: WarningTally) -> None:
    totals.add_encoded(record, rules.max_seq_length)
    if record.rejection is not None:
        tally.add_rejection(record)
        return
    for finding in rules.findings(record):
        tally.add(finding, record.example.line)


def stats_object(totals: StatsTotals, max_seq_length: int) -> dict[str, Any]:
    return {
        "examples": totals.examples,
        "skipped": totals.skipped,
        "tokens": totals.tokens,
        "trained_tokens": totals.trained_tokens,
        "over_max_seq_length": totals.over_max_seq_length,
        "tokens_lost": totals.tokens_lost,
        "packing_efficiency": packing_efficiency(totals.lengths, max_seq_length),
        "longest": totals.longest,
        "max_seq_length": max_seq_length,
    }


class _Length:
    """Stands in for an encoded example where only its length matters (:func:`pack_examples`)."""

    __slots__ = ("input_ids",)

    def __init__(self, length: int):
        self.input_ids = range(length)


class _Lengths(Sequence):
    def __init__(self, lengths: array):
        self.lengths = lengths

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i):
        return _Length(self.lengths[i])


def packing_efficiency(lengths: array, max_seq_length: int) -> float:
    """Real tokens over the room of the rows the trainer's own :func:`pack_examples` would fill."""
    if not lengths:
        return 0.0
    rows = pack_examples(_Lengths(lengths), max_seq_length)
    return sum(lengths) / (len(rows) * max_seq_length)


# --------------------------------------------------------------------------- reply


def _request_warnings(request: Request, own_template: bool) -> list[dict[str, Any]]:
    warnings = []
    if request.unknown_fields:
        warnings.append({
            "code": "unknown_fields",
            "message": "ignoring unknown request fields (a run ignores unknown hyperparameters too): "
            + ", ".join(request.unknown_fields),
        })  # fmt: skip
    if not own_template:
        warnings.append({
            "code": "no_chat_template",
            "message": "the base model's tokenizer has no chat template: a run renders every conversation with a "
            "ChatML-style template (<|im_start|>role … end-of-sequence token); a base model that was not "
            "chat-tuned learns that format from scratch",
        })  # fmt: skip
    return warnings


def _ordered(warnings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(warnings, key=lambda w: WARNING_CODES.index(w["code"]))


def error_reply(kind: str, reason: str) -> dict[str, Any]:
    return {"version": REPLY_VERSION, "error": {"kind": kind, "reason": reason}}


def inspect(request: Request, progress: Progress | None = None, load_tokenizer=load_run_tokenizer) -> dict[str, Any]:
    """The reply to a request; raises :class:`InspectError` for a problem."""
    try:
        if request.mode == "stats":
            return inspect_stats(request, load_tokenizer, progress)
        return inspect_example(request, load_tokenizer)
    except InspectError:
        raise
    except TrainerError as exc:  # the dataset: missing, unreadable, nothing usable, another kind of data
        raise InspectError(INPUT, exc.reason) from exc


def main(request_json: str | None, request_path: str | None, out) -> int:
    """The command: one reply on ``out`` (the real stdout); returns the exit status."""
    try:
        reply = inspect(parse_request(read_request(request_json, request_path)), Progress())
        status = 0
    except InspectError as exc:
        reply, status = error_reply(exc.kind, exc.reason), 1
    except Exception as exc:  # a bug or a broken installation: still one reply
        traceback.print_exc(file=sys.stderr)
        reply, status = error_reply(INTERNAL, one_line_reason(exc)), 1
    out.write(json.dumps(reply, ensure_ascii=False, allow_nan=False) + "\n")
    out.flush()
    return status
