"""Turning chat examples into token ids and loss labels with the model's chat template.

The loss covers assistant turns only (``trainable`` messages: every assistant turn, tool-call
turns included, except OpenAI turns with ``weight: 0`` or LLaMA-Factory ``loss_weight: 0``), including the template's end-of-turn
marker so the model learns to stop. Labels are ``-100`` everywhere else: system, user and
tool-result turns, and the tool definitions the template renders (passed as ``tools=``).
A plain-text example is the text and the end-of-sequence token, trained on every token.

Finding the assistant tokens without knowing the template: the template is rendered for
each prefix of the conversation. The text rendered up to message ``k`` with a generation
prompt ends where assistant message ``k`` begins; the text rendered through message ``k``
ends where it ends. These character spans become token labels through the fast
tokenizer's offset mapping.

Templates that mark assistant output with ``{% generation %}`` blocks are asked for their own
mask instead (``return_assistant_tokens_mask``). Templates that rewrite earlier turns (so
prefixes are not string prefixes, e.g. Qwen3 dropping earlier ``<think>`` reasoning) fall back
to locating each message's text in the rendering, in order; each located assistant turn is
trained through the template's end-of-turn marker (found by rendering a probe conversation).
A turn that cannot be located is counted (:attr:`EncodingReport.turns_not_located`) and
reported, never silently skipped.
"""

from __future__ import annotations

import bisect
import re
from array import array
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from .data import SKIPPED_KEPT, Example, Message, SkippedRecord

IGNORE_INDEX = -100

#: Used when a tokenizer has no chat template of its own (base models). ``eos_token`` ends
#: each turn, so generation stops where the fine-tuned model finishes its answer.
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + eos_token + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@dataclass(frozen=True)
class EncodedExample:
    """One training sequence. Stored as 32-bit arrays: a dataset of long conversations held
    as Python int lists would cost several times the memory."""

    input_ids: array
    labels: array

    @classmethod
    def of(cls, input_ids: Sequence[int], labels: Sequence[int]) -> EncodedExample:
        return cls(array("i", input_ids), array("i", labels))

    @property
    def trained_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE_INDEX)


@dataclass
class EncodingReport:
    """What encoding dropped or approximated, for the run's log events."""

    kept: int = 0
    dropped_no_trainable_tokens: int = 0
    truncated: int = 0
    located_by_search: int = 0
    #: Trainable assistant turns (or their end-of-turn marker) the text search could not
    #: find in the rendering: not trained.
    turns_not_located: int = 0
    examples_with_turns_not_located: int = 0
    #: Records the chat template refuses to render (e.g. a strict template's "roles must
    #: alternate"): skipped like the dataset's unusable records; the first few kept by line.
    rejected_by_template: int = 0
    rejections: list[SkippedRecord] = field(default_factory=list)


def prepare_tokenizer(tokenizer) -> list[str]:
    """Give the tokenizer what training needs (pad token, chat template); return notes."""
    notes = []
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
        notes.append("the tokenizer has no pad token; padding with its end-of-sequence token")
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
        notes.append("the tokenizer has no chat template; using a ChatML-style template")
    return notes


def encode_examples(
    tokenizer, examples: Iterable[Example], max_seq_length: int
) -> tuple[list[EncodedExample], EncodingReport]:
    """Encode many examples, dropping those left without any trained token."""
    encoded, report = [], EncodingReport()
    for example in examples:
        if example.is_text:
            text_item = encode_text(tokenizer, example.messages[0].content, max_seq_length)
            item = text_item.encoded if text_item is not None else None
            truncated, searched = bool(text_item and text_item.truncated), False
        else:
            missed_before = report.turns_not_located
            try:
                item, truncated, searched = encode_conversation(
                    tokenizer, example.messages, max_seq_length, tools=example.tools, report=report
                )
            except TEMPLATE_REJECTIONS as exc:
                report.turns_not_located = missed_before
                report.rejected_by_template += 1
                if len(report.rejections) < SKIPPED_KEPT:
                    report.rejections.append(SkippedRecord(example.line, template_rejection_reason(exc)))
                continue
            report.examples_with_turns_not_located += report.turns_not_located > missed_before
        report.truncated += truncated
        report.located_by_search += searched
        if item is None:
            report.dropped_no_trainable_tokens += 1
        else:
            encoded.append(item)
    report.kept = len(encoded)
    return encoded, report


def _template_rejections() -> tuple[type[BaseException], ...]:
    try:
        from jinja2 import TemplateError
    except ImportError:  # transformers renders templates with jinja2; be safe anyway
        return (ValueError, TypeError)
    return (TemplateError, ValueError, TypeError)


#: What a chat template raises for a conversation it will not render: ``raise_exception``
#: ("Conversation roles must alternate user/assistant/…") and template runtime errors.
TEMPLATE_REJECTIONS = _template_rejections()


def template_rejection_reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"the chat template rejects this conversation: {text[:200]}"


@dataclass(frozen=True)
class EncodedText:
    encoded: EncodedExample
    truncated: bool


def encode_text(tokenizer, text: str, max_seq_length: int) -> EncodedText | None:
    """A plain-text example: its tokens (BOS when the tokenizer adds one) and EOS, all trained."""
    (ids,) = text_token_ids(tokenizer, [text])
    encoded, truncated = cut(ids, ids, max_seq_length)
    if encoded is None:
        return None
    return EncodedText(encoded, truncated)


def text_token_ids(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Plain-text examples' tokens, untruncated, tokenized in one batch: each text's tokens
    (BOS when the tokenizer adds one) and EOS (every one of them trained)."""
    if not texts:
        return []
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    return [list(ids) + eos for ids in tokenizer(list(texts), add_special_tokens=True)["input_ids"]]


def cut(input_ids: Sequence[int], labels: Sequence[int], max_seq_length: int) -> tuple[EncodedExample | None, bool]:
    """What training keeps of an encoded sequence: its first ``max_seq_length`` tokens, or
    ``None`` when no trained token is left. Returns ``(encoded or None, truncated)``."""
    truncated = len(input_ids) > max_seq_length
    input_ids, labels = input_ids[:max_seq_length], labels[:max_seq_length]
    if all(label == IGNORE_INDEX for label in labels):
        return None, truncated
    return EncodedExample.of(input_ids, labels), truncated


@dataclass
class RenderedConversation:
    """A conversation through the chat template, before tokenization.

    Either ``text`` with the character ``spans`` of its trained turns (the text route), or
    ``input_ids`` and ``labels`` already (the template's own ``{% generation %}`` mask)."""

    #: The messages as rendered (a system message may be folded into the first user turn).
    chat: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None
    text: str | None = None
    spans: list[tuple[int, int]] = field(default_factory=list)
    #: Whether the turns were located by searching for their text (the template rewrites turns).
    searched: bool = False
    #: Trainable turns that could not be located (not trained).
    missed: int = 0
    input_ids: list[int] | None = None
    labels: list[int] | None = None


def render_conversation(
    tokenizer, messages: Sequence[Message], tools: Sequence[dict] = ()
) -> RenderedConversation:
    """Render a conversation and locate its trainable assistant turns (raises what the
    template raises for a conversation it rejects: :data:`TEMPLATE_REJECTIONS`)."""
    tools = list(tools) or None
    chat = adapt_to_template(tokenizer, [m.as_chat() for m in messages], tools)
    masked = _encode_with_template_mask(tokenizer, chat, messages, tools)
    if masked is not None:
        return RenderedConversation(chat, tools, input_ids=masked[0], labels=masked[1])
    text = render(tokenizer, chat, tools=tools)
    spans, searched, missed = assistant_spans(tokenizer, chat, messages, text, tools)
    return RenderedConversation(chat, tools, text=text, spans=spans, searched=searched, missed=missed)


def tokenize_conversations(
    tokenizer, rendered: Sequence[RenderedConversation]
) -> list[tuple[list[int], list[int]]]:
    """Untruncated ids and labels of rendered conversations; the text route's renderings are
    tokenized in one batch (the fast tokenizer's offsets map the spans to tokens)."""
    texts = [item.text for item in rendered if item.input_ids is None]
    encodings = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True) if texts else None
    results, at = [], 0
    for item in rendered:
        if item.input_ids is not None:
            results.append((list(item.input_ids), list(item.labels)))
            continue
        input_ids = list(encodings["input_ids"][at])
        offsets = encodings["offset_mapping"][at]
        at += 1
        results.append((input_ids, _span_labels(input_ids, offsets, item.spans)))
    return results


def _span_labels(input_ids: Sequence[int], offsets: Sequence[Sequence[int]], spans: list[tuple[int, int]]) -> list[int]:
    """Each token's label: itself when its characters overlap a trained span, else
    ``IGNORE_INDEX`` (a token without characters, ``end <= start``, is never trained). Written
    out without helper calls: this loop runs once per token of the dataset."""
    labels = []
    for token, (start, end) in zip(input_ids, offsets):
        trained = False
        if end > start:
            for span_start, span_end in spans:
                if start < span_end and end > span_start:
                    trained = True
                    break
        labels.append(token if trained else IGNORE_INDEX)
    return labels


def encode_conversation(
    tokenizer,
    messages: Sequence[Message],
    max_seq_length: int,
    tools: Sequence[dict] = (),
    report: EncodingReport | None = None,
) -> tuple[EncodedExample | None, bool, bool]:
    """Token ids and labels for one conversation, its tools rendered by the template.

    Returns ``(encoded or None, truncated, spans_located_by_search)``; ``None`` when no
    assistant token survives truncation to ``max_seq_length``. Turns the text search cannot
    locate are added to ``report.turns_not_located``.
    """
    rendered = render_conversation(tokenizer, messages, tools)
    if report is not None:
        report.turns_not_located += rendered.missed
    ((input_ids, labels),) = tokenize_conversations(tokenizer, [rendered])
    encoded, truncated = cut(input_ids, labels, max_seq_length)
    return encoded, truncated, rendered.searched


def render(tokenizer, chat: list[dict[str, Any]], add_generation_prompt: bool = False, tools=None) -> str:
    return tokenizer.apply_chat_template(
        chat, tools=tools, tokenize=False, add_generation_prompt=add_generation_prompt
    )


def adapt_to_template(tokenizer, chat: list[dict[str, Any]], tools=None) -> list[dict[str, Any]]:
    """Fold a system message into the first user turn for templates that reject the role."""
    try:
        render(tokenizer, chat, tools=tools)
        return chat
    except Exception:
        if not chat or chat[0]["role"] != "system" or len(chat) < 2:
            raise
    system, first, rest = chat[0], chat[1], chat[2:]
    merged = {"role": first["role"], "content": f"{system['content']}\n\n{first['content']}"}
    return [merged, *rest]


def assistant_spans(
    tokenizer, chat: list[dict[str, Any]], messages: Sequence[Message], text: str, tools=None
) -> tuple[list[tuple[int, int]], bool, int]:
    """Character spans of ``text`` that belong to trainable assistant turns.

    Returns ``(spans, located_by_search, turns_not_located)``.
    """
    trainable = _trainable_chat_indices(chat, messages)
    spans = []
    for k in trainable:
        start_text = render(tokenizer, chat[:k], add_generation_prompt=True, tools=tools)
        end_text = render(tokenizer, chat[: k + 1], tools=tools)
        if not (text.startswith(start_text) and text.startswith(end_text) and len(end_text) > len(start_text)):
            spans, missed = _spans_by_search(chat, trainable, text, end_of_turn_marker(tokenizer))
            return spans, True, missed
        spans.append((len(start_text), len(end_text)))
    return spans, False, 0


def _trainable_chat_indices(chat: list[dict[str, Any]], messages: Sequence[Message]) -> list[int]:
    offset = len(messages) - len(chat)  # 1 when a system message was folded away
    return [k - offset for k, m in enumerate(messages) if m.trainable and k - offset >= 0]


_PROBE_USER = "brightrun probe question 7f3a"
_PROBE_ANSWER = "brightrun probe answer 9c1e"


def end_of_turn_marker(tokenizer) -> str | None:
    """What the template writes right after an assistant message's text (e.g. ``<|im_end|>`` and a newline,
    ``<|eot_id|>``, ``</s>``), found by rendering a probe conversation; the tokenizer's
    end-of-sequence token when the template writes nothing there."""
    marker = None
    try:
        probe = render(tokenizer, [{"role": "user", "content": _PROBE_USER}, {"role": "assistant", "content": _PROBE_ANSWER}])
        at = probe.rfind(_PROBE_ANSWER)
        if at >= 0:
            marker = probe[at + len(_PROBE_ANSWER):]
    except Exception:  # a template that rejects the probe: fall back to the EOS token
        marker = None
    if marker is not None and marker.strip():
        return marker
    return tokenizer.eos_token or None


def _search_candidates(content: str) -> list[str]:
    """The message's text as the template may render it: whole, or without the reasoning
    block that reasoning-model templates drop from earlier turns."""
    candidates = [content] if content else []
    if "</think>" in content:
        answer = content.split("</think>")[-1].strip()
        if answer:
            candidates.append(answer)
    return candidates


def _spans_by_search(
    chat: list[dict[str, Any]], trainable: list[int], text: str, marker: str | None
) -> tuple[list[tuple[int, int]], int]:
    """Locate every message's content in order (used when prefixes do not nest).

    Each trainable turn's span runs from its text through the next end-of-turn ``marker``
    (tool calls rendered after the text included). Returns the spans and how many trainable
    turns could not be located (their text, or the marker after it, is missing).
    """
    spans, cursor, missed = [], 0, 0
    wanted = set(trainable)
    for k, message in enumerate(chat):
        content = message.get("content") or ""
        start = -1
        for candidate in _search_candidates(content):
            start = text.find(candidate, cursor)
            if start >= 0:
                end = start + len(candidate)
                break
        if k not in wanted:
            if start >= 0:
                cursor = end
            continue
        if start < 0:
            missed += 1
            continue
        marker_at = text.find(marker, end) if marker else -1
        if marker_at < 0:
            missed += 1
            spans.append((start, end))
            cursor = end
            continue
        spans.append((start, marker_at + len(marker)))
        cursor = marker_at + len(marker)
    return spans, missed


# --------------------------------------------------------------------------- template masks

_GENERATION_TAG = re.compile(r"\{%-?\s*generation\s*-?%\}")


def has_generation_markers(tokenizer) -> bool:
    template = getattr(tokenizer, "chat_template", None)
    return isinstance(template, str) and bool(_GENERATION_TAG.search(template))


def _encode_with_template_mask(
    tokenizer, chat: list[dict[str, Any]], messages: Sequence[Message], tools=None
) -> tuple[list[int], list[int]] | None:
    """Ids and labels from the template's own assistant mask (``{% generation %}`` blocks).

    ``None`` when the template has no such blocks, or when its mask cannot be matched to the
    assistant turns (then the text route decides). Each contiguous run of masked tokens is one
    assistant turn; the runs of untrained turns (``weight: 0``) are dropped.
    """
    if not has_generation_markers(tokenizer):
        return None
    out = tokenizer.apply_chat_template(
        chat, tools=tools, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    input_ids, mask = list(out["input_ids"]), list(out["assistant_masks"])
    runs, start = [], None
    for i, flag in enumerate([*mask, 0]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            runs.append((start, i))
            start = None
    assistant = [k for k, m in enumerate(chat) if m["role"] == "assistant"]
    trainable = set(_trainable_chat_indices(chat, messages))
    if len(runs) == len(assistant):
        kept = [run for run, k in zip(runs, assistant) if k in trainable]
    elif all(k in trainable for k in assistant) and runs:
        kept = runs
    else:
        return None
    labels = [IGNORE_INDEX] * len(input_ids)
    for run_start, run_end in kept:
        labels[run_start:run_end] = input_ids[run_start:run_end]
    return input_ids, labels


class PaddingCollator:
    """Right-pads a batch; labels are padded with ``-100`` so padding never counts."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, rows: list[EncodedExample]) -> dict[str, Any]:
        import torch

        width = max(len(row.input_ids) for row in rows)
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row.input_ids)
            input_ids[i, :n] = torch.frombuffer(row.input_ids, dtype=torch.int32)
            labels[i, :n] = torch.frombuffer(row.labels, dtype=torch.int32)
            attention_mask[i, :n] = 1
        return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}


class FlatteningCollator:
    """Concatenates a batch into one row without padding (transformers'
    ``DataCollatorWithFlattening``): ``position_ids`` restart at 0 for every example, so
    varlen attention keeps the examples apart, and each example's first label is ``-100`` so
    no token is trained to predict the next example's start. The loss equals the padded
    batch's. Rows may be :class:`PackedRow` (several examples each)."""

    def __init__(self, flash_kwargs: bool = False):
        from transformers import DataCollatorWithFlattening

        self._collate = DataCollatorWithFlattening(
            return_position_ids=True, separator_id=IGNORE_INDEX, return_flash_attn_kwargs=flash_kwargs
        )

    def __call__(self, rows: list) -> dict[str, Any]:
        features = [
            {"input_ids": example.input_ids.tolist(), "labels": example.labels.tolist()}
            for row in rows
            for example in (row.examples if isinstance(row, PackedRow) else (row,))
        ]
        return self._collate(features, return_tensors="pt")


@dataclass(frozen=True)
class PackedRow:
    """Several examples trained as one ``max_seq_length`` row (``efficiency.packing``)."""

    examples: tuple[EncodedExample, ...]

    @property
    def input_ids(self) -> array:
        """The row's tokens (its length is what length-aware samplers and logs read)."""
        return array("i", [token for example in self.examples for token in example.input_ids])

    @property
    def trained_tokens(self) -> int:
        return sum(example.trained_tokens for example in self.examples)


def pack_examples(examples: Sequence[EncodedExample], max_seq_length: int) -> list[PackedRow]:
    """Best-fit decreasing: fewer, fuller rows, deterministic for the same data.

    Longest first, each example goes to the open row with the least room that still fits it
    (a sorted list of ``(room, row)`` searched with bisect: O(n log n) searches, so a
    100 000-example dataset packs in seconds). Examples keep their own positions and
    attention (the collator flattens each row), so packing changes only how many examples
    one forward pass sees, not the loss per token.
    """
    order = sorted(range(len(examples)), key=lambda i: (-len(examples[i].input_ids), i))
    rows: list[list[int]] = []
    open_rows: list[tuple[int, int]] = []  # (room left, row index), sorted
    for i in order:
        length = len(examples[i].input_ids)
        at = bisect.bisect_left(open_rows, (length, -1))
        if at < len(open_rows):
            room, row = open_rows.pop(at)
        else:
            room, row = max_seq_length, len(rows)
            rows.append([])
        rows[row].append(i)
        if room - length > 0:
            bisect.insort(open_rows, (room - length, row))
    return [PackedRow(tuple(examples[i] for i in sorted(members))) for members in rows]
