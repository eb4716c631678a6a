"""Reading preference data (DPO, ORPO, SimPO) and KTO data; :mod:`.data` keeps SFT data.

Every usable record becomes a :class:`PreferencePair` (prompt messages, chosen reply messages,
rejected reply messages) or a :class:`KTOExample` (prompt messages, completion messages, a
desirable/undesirable label), with the record's tool definitions. The layouts, detected per
record and never mixed in one file (format names ``preference`` and ``kto``, as the SFT
reader's refusal names them):

Preference (``preference``)
  a. TRL standard, explicit prompt: ``{"prompt": str, "chosen": str, "rejected": str}``: the
     prompt is one user message, each reply one assistant message.
  b. TRL conversational, explicit prompt: ``{"prompt": [messages], "chosen": [assistant
     messages], "rejected": [assistant messages]}``.
  c. TRL conversational, implicit prompt: ``{"chosen": [conversation], "rejected":
     [conversation]}`` (also ``chosen_messages``/``rejected_messages`` with optional
     ``tools``): the prompt is the shared prefix (the messages before the first one that
     differs), which must end where the last assistant reply (or replies) start; the replies
     are the rest.
  d. OpenAI preference fine-tuning: ``{"input": {"messages": [...], "tools"?: [...]},
     "preferred_output": [assistant messages], "non_preferred_output": [assistant messages]}``.
  e. LLaMA-Factory Alpaca preference: ``{"instruction", "input"?, "system"?, "history"?,
     "chosen": str, "rejected": str}``; the prompt is ``instruction + "\\n" + input`` when
     ``input`` is not empty (as LLaMA-Factory joins them).
  f. LLaMA-Factory ShareGPT preference (``data/dpo_en_demo.json``): ``{"conversations":
     [{"from", "value"}...], "system"?, "tools"?, "chosen": {"from": "gpt", "value"},
     "rejected": {"from": "gpt", "value"}}``.

KTO (``kto``)
  g. TRL unpaired preference: ``{"prompt": str | [messages], "completion": str | [messages],
     "label": bool}``.
  h. LLaMA-Factory KTO (``data/kto_en_demo.json``): ``{"messages": [{"role", "content"}...],
     "label": bool}`` (or ``kto_tag``; or ShareGPT ``conversations`` with ``from``/``value``):
     the prompt is every message before the last assistant message, the completion that message.

A record that cannot be used (identical chosen and rejected replies, an empty side, implicit
pairs whose prompts differ, missing or mistyped fields) is skipped and counted with its line,
as :mod:`.data` does; a file with nothing usable fails with a :class:`DatasetError`, and so
does a KTO file whose usable records all carry the same label (KTO needs both). The hold-out
split is PROTOCOL.md's, by record index (usable or not).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any, Iterator

from .data import (
    SKIPPED_KEPT,
    DatasetFormat,
    Example,
    InvalidRecord,
    Message,
    SkippedRecord,
    _check_conversation,
    _from_openai_chat,
    _from_sharegpt,
    _holds_media,
    _MEDIA_KEYS,
    _pc_side,
    _text,
    detect_format,
    is_validation,
    read_records,
    tools_of,
    validation_threshold,
)
from .errors import DatasetError


class PreferenceFormat(str, Enum):
    """The two kinds of data the preference methods read (the engine's format names)."""

    PREFERENCE = "preference"
    KTO = "kto"


@dataclass(frozen=True)
class PreferencePair:
    line: int
    index: int
    #: The conversation before the replies (never trained).
    prompt: tuple[Message, ...]
    #: The replies' messages, assistant messages trainable.
    chosen: tuple[Message, ...]
    rejected: tuple[Message, ...]
    tools: tuple[dict[str, Any], ...] = ()

    def as_example(self) -> Example:
        """The prompt and the chosen reply as an SFT example (the evaluation's samples)."""
        return Example(self.line, self.index, self.prompt + self.chosen, self.tools)


@dataclass(frozen=True)
class KTOExample:
    line: int
    index: int
    prompt: tuple[Message, ...]
    completion: tuple[Message, ...]
    #: ``True``: a desirable completion; ``False``: an undesirable one.
    label: bool
    tools: tuple[dict[str, Any], ...] = ()

    def as_example(self) -> Example:
        return Example(self.line, self.index, self.prompt + self.completion, self.tools)


@dataclass
class PreferenceDataset:
    """What :func:`load_preference_dataset` read; shaped like :class:`.data.LoadedDataset`."""

    format: PreferenceFormat
    train: list
    validation: list
    total_records: int
    skipped_count: int = 0
    skipped: list[SkippedRecord] = field(default_factory=list)
    split_dropped: str | None = None

    @property
    def is_kto(self) -> bool:
        return self.format is PreferenceFormat.KTO


# --------------------------------------------------------------------------- detection


_PREFERENCE_LAYOUTS = ("openai_preference", "implicit_messages", "sharegpt_preference", "alpaca_preference",
                       "explicit", "implicit")  # fmt: skip


def detect_layout(record: Any) -> tuple[PreferenceFormat, str] | None:
    """``(format, layout)`` of a record, or ``None`` when it is neither preference nor KTO data."""
    if not isinstance(record, dict):
        return None
    if "preferred_output" in record or "non_preferred_output" in record:
        return PreferenceFormat.PREFERENCE, "openai_preference"
    if "chosen_messages" in record or "rejected_messages" in record:
        return PreferenceFormat.PREFERENCE, "implicit_messages"
    if "chosen" in record and "rejected" in record:
        if "conversations" in record:
            return PreferenceFormat.PREFERENCE, "sharegpt_preference"
        if "instruction" in record:
            return PreferenceFormat.PREFERENCE, "alpaca_preference"
        if "prompt" in record:
            return PreferenceFormat.PREFERENCE, "explicit"
        return PreferenceFormat.PREFERENCE, "implicit"
    if "kto_tag" in record or "label" in record:
        if "messages" in record or "conversations" in record:
            return PreferenceFormat.KTO, "llamafactory_kto"
        if "prompt" in record and "completion" in record:
            return PreferenceFormat.KTO, "unpaired"
    return None


def _media_refusal(record: Any) -> str | None:
    if not isinstance(record, dict):
        return None
    for key in _MEDIA_KEYS:
        if record.get(key) not in (None, [], ""):
            return f"this is multimodal data (a {key!r} key); BrightRun trains text LoRA adapters"
    if _holds_media(record):
        return "this is multimodal data (media content parts or <image> tags); BrightRun trains text LoRA adapters"
    return None


# --------------------------------------------------------------------------- normalising


def _as_prompt(messages: list[Message]) -> tuple[Message, ...]:
    return tuple(replace(m, trainable=False) for m in messages)


def _as_reply(messages: list[Message], side: str) -> tuple[Message, ...]:
    """Reply messages: assistant messages (tool results between them allowed), all trained;
    at least one with text or tool calls."""
    if not messages:
        raise InvalidRecord(f"the {side} reply is empty")
    if messages[0].role != "assistant" or messages[-1].role != "assistant":
        raise InvalidRecord(f"the {side} reply must start and end with an assistant message")
    for m in messages:
        if m.role not in ("assistant", "tool"):
            raise InvalidRecord(f"the {side} reply holds a {m.role} message; replies are assistant messages")
    reply = tuple(replace(m, trainable=m.role == "assistant") for m in messages)
    if not any(m.trainable and (m.content.strip() or m.tool_calls) for m in reply):
        raise InvalidRecord(f"the {side} reply is empty")
    return reply


def _check_prompt(prompt: tuple[Message, ...]) -> None:
    if not prompt:
        raise InvalidRecord("the prompt is empty")
    if any(m.role == "system" for m in prompt[1:]):
        raise InvalidRecord("a system message may only come first")
    first = next((m for m in prompt if m.role != "system"), None)
    if first is None or first.role not in ("user", "assistant"):
        raise InvalidRecord("the prompt must start with a user message")


def _messages(value: Any, key: str) -> list[Message]:
    """A list of ``{role, content}`` messages (OpenAI roles, tool calls, text parts)."""
    if not isinstance(value, list) or not value:
        raise InvalidRecord(f"`{key}` must be a non-empty list of messages")
    try:
        return _from_openai_chat({"messages": value})
    except InvalidRecord as exc:
        raise InvalidRecord(str(exc).replace("`messages", f"`{key}", 1)) from exc


def _split_messages(prompt_value: Any, reply_value: Any, prompt_key: str, reply_key: str):
    """A prompt list and a reply list parsed together (tool results may answer the prompt's calls)."""
    prompt = _messages(prompt_value, prompt_key)
    if not isinstance(reply_value, list) or not reply_value:
        raise InvalidRecord(f"`{reply_key}` must be a non-empty list of assistant messages")
    whole = _messages(prompt_value + reply_value, f"{prompt_key} + {reply_key}")
    return whole[: len(prompt)], whole[len(prompt) :]


def _pair(prompt, chosen, rejected) -> tuple[tuple[Message, ...], tuple[Message, ...], tuple[Message, ...]]:
    prompt = _as_prompt(list(prompt))
    _check_prompt(prompt)
    chosen = _as_reply(list(chosen), "chosen")
    rejected = _as_reply(list(rejected), "rejected")
    if [m.as_chat() for m in chosen] == [m.as_chat() for m in rejected]:
        raise InvalidRecord("the chosen and rejected replies are identical")
    return prompt, chosen, rejected


def _string_side(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str):
        raise InvalidRecord(f"`{key}` must be a string")
    return value


def _explicit(record: dict[str, Any]):
    """TRL's explicit-prompt layouts: standard (strings) or conversational (message lists)."""
    prompt, chosen, rejected = record.get("prompt"), record.get("chosen"), record.get("rejected")
    if isinstance(prompt, str):
        if not isinstance(chosen, str) or not isinstance(rejected, str):
            raise InvalidRecord("`chosen` and `rejected` must be strings when `prompt` is a string")
        if not prompt.strip():
            raise InvalidRecord("the prompt is empty")
        return _pair(
            [Message("user", prompt)], [Message("assistant", chosen, True)], [Message("assistant", rejected, True)]
        )
    if not isinstance(prompt, list):
        raise InvalidRecord("`prompt` must be a string or a list of messages")
    if not isinstance(chosen, list) or not isinstance(rejected, list):
        raise InvalidRecord("`chosen` and `rejected` must be lists of assistant messages when `prompt` is a list")
    prompt_messages, chosen_messages = _split_messages(prompt, chosen, "prompt", "chosen")
    _, rejected_messages = _split_messages(prompt, rejected, "prompt", "rejected")
    return _pair(prompt_messages, chosen_messages, rejected_messages)


def _implicit(record: dict[str, Any], chosen_key: str = "chosen", rejected_key: str = "rejected"):
    """Whole conversations; the prompt is their shared prefix."""
    chosen_value, rejected_value = record.get(chosen_key), record.get(rejected_key)
    if isinstance(chosen_value, str) or isinstance(rejected_value, str):
        raise InvalidRecord(
            f"`{chosen_key}` and `{rejected_key}` are plain text with no prompt; write them as conversations "
            "(lists of messages) or add a `prompt`"
        )
    chosen = _messages(chosen_value, chosen_key)
    rejected = _messages(rejected_value, rejected_key)
    shared = 0
    while shared < min(len(chosen), len(rejected)) and chosen[shared].as_chat() == rejected[shared].as_chat():
        shared += 1
    if shared == len(chosen) and shared == len(rejected):
        raise InvalidRecord("the chosen and rejected replies are identical")
    if shared == 0:
        raise InvalidRecord(f"`{chosen_key}` and `{rejected_key}` have different prompts (their first messages differ)")
    for side, messages in (("chosen", chosen), ("rejected", rejected)):
        rest = messages[shared:]
        if not rest or any(m.role not in ("assistant", "tool") for m in rest) or rest[0].role != "assistant":
            raise InvalidRecord(
                f"`{chosen_key}` and `{rejected_key}` have different prompts: they must share every message "
                f"before the last assistant reply (the {side} conversation differs before it)"
            )
    return _pair(chosen[:shared], chosen[shared:], rejected[shared:])


def _openai_preference(record: dict[str, Any]):
    source = record.get("input")
    if not isinstance(source, dict):
        raise InvalidRecord("`input` must be an object with `messages`")
    prompt = source.get("messages")
    prompt_messages, chosen = _split_messages(prompt, record.get("preferred_output"), "input.messages", "preferred_output")
    _, rejected = _split_messages(prompt, record.get("non_preferred_output"), "input.messages", "non_preferred_output")
    return _pair(prompt_messages, chosen, rejected)


def _alpaca_preference(record: dict[str, Any]):
    instruction = _text(record, "instruction")
    extra = record.get("input")
    if extra is not None and not isinstance(extra, str):
        raise InvalidRecord("`input` must be a string")
    query = f"{instruction}\n{extra}" if extra else instruction
    if not query.strip():
        raise InvalidRecord("the prompt is empty")
    prompt: list[Message] = []
    system = record.get("system")
    if system is not None and not isinstance(system, str):
        raise InvalidRecord("`system` must be a string")
    if system and system.strip():
        prompt.append(Message("system", system))
    history = record.get("history")
    if history is not None:
        if not isinstance(history, list):
            raise InvalidRecord("`history` must be a list of [instruction, output] pairs")
        for i, turn in enumerate(history):
            if not (isinstance(turn, list) and len(turn) == 2 and all(isinstance(t, str) for t in turn)):
                raise InvalidRecord(f"`history[{i}]` must be an [instruction, output] pair of strings")
            prompt += [Message("user", turn[0]), Message("assistant", turn[1])]
    prompt.append(Message("user", query))
    chosen = Message("assistant", _string_side(record, "chosen"), True)
    rejected = Message("assistant", _string_side(record, "rejected"), True)
    return _pair(prompt, [chosen], [rejected])


def _sharegpt_reply(record: dict[str, Any], key: str) -> Message:
    value = record.get(key)
    if isinstance(value, str):
        return Message("assistant", value, True)
    if not isinstance(value, dict) or not isinstance(value.get("value"), str):
        raise InvalidRecord(f'`{key}` must be {{"from": "gpt", "value": TEXT}}')
    if value.get("from", "gpt") not in ("gpt", "assistant"):
        raise InvalidRecord(f"`{key}.from` must be gpt, got {json.dumps(value.get('from'))}")
    return Message("assistant", value["value"], True)


def _sharegpt_preference(record: dict[str, Any]):
    prompt = _from_sharegpt({"conversations": record.get("conversations"), "system": record.get("system")})
    return _pair(prompt, [_sharegpt_reply(record, "chosen")], [_sharegpt_reply(record, "rejected")])


_PAIR_NORMALISERS = {
    "explicit": _explicit,
    "implicit": _implicit,
    "implicit_messages": lambda record: _implicit(record, "chosen_messages", "rejected_messages"),
    "openai_preference": _openai_preference,
    "alpaca_preference": _alpaca_preference,
    "sharegpt_preference": _sharegpt_preference,
}


def _label(record: dict[str, Any]) -> bool:
    for key in ("label", "kto_tag"):
        if key in record:
            value = record[key]
            if not isinstance(value, bool):
                raise InvalidRecord(f"`{key}` must be true or false")
            return value
    raise InvalidRecord("`label` is missing")


def _unpaired(record: dict[str, Any]):
    prompt, completion = record.get("prompt"), record.get("completion")
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], dict) and "role" in prompt[0]:
        if not isinstance(completion, list):
            raise InvalidRecord("`completion` must be a list of assistant messages when `prompt` is a list of messages")
        prompt_messages, completion_messages = _split_messages(prompt, completion, "prompt", "completion")
    else:
        prompt_messages = _pc_side(record, "prompt")
        completion_messages = _pc_side(record, "completion")
    prompt_messages = _as_prompt(prompt_messages)
    _check_prompt(prompt_messages)
    return prompt_messages, _as_reply(completion_messages, "completion")


def _llamafactory_kto(record: dict[str, Any]):
    if "messages" in record:
        messages = _messages(record.get("messages"), "messages")
    else:
        messages = _from_sharegpt({"conversations": record.get("conversations"), "system": record.get("system")})
    while messages and messages[-1].role == "user":
        messages.pop()  # a last user message with no reply teaches nothing
    last = next((k for k in range(len(messages) - 1, -1, -1) if messages[k].role == "assistant"), None)
    if last is None:
        raise InvalidRecord("there is no assistant message to label")
    _check_conversation([*messages[:last], replace(messages[last], trainable=True)])
    prompt = _as_prompt(messages[:last])
    _check_prompt(prompt)
    return prompt, _as_reply(messages[last:], "completion")


def _tools(record: dict[str, Any], layout: str) -> tuple[dict[str, Any], ...]:
    if layout == "openai_preference":
        source = record.get("input")
        return tools_of(source, DatasetFormat.OPENAI_CHAT) if isinstance(source, dict) else ()
    if layout in ("sharegpt_preference",) or (layout == "llamafactory_kto" and "conversations" in record):
        return tools_of(record, DatasetFormat.SHAREGPT)
    if record.get("tools") not in (None, "", []):
        return tools_of({"tools": record["tools"]}, DatasetFormat.OPENAI_CHAT)
    return ()


def normalise_record(record: dict[str, Any], layout: str, line: int, index: int):
    """One record of ``layout`` as a :class:`PreferencePair` or :class:`KTOExample`, or raise
    :class:`InvalidRecord`."""
    tools = _tools(record, layout)
    if layout in _PAIR_NORMALISERS:
        prompt, chosen, rejected = _PAIR_NORMALISERS[layout](record)
        return PreferencePair(line, index, prompt, chosen, rejected, tools)
    label = _label(record)
    prompt, completion = (_unpaired if layout == "unpaired" else _llamafactory_kto)(record)
    return KTOExample(line, index, prompt, completion, label, tools)


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class PreferenceVerdict:
    index: int
    line: int
    format: PreferenceFormat | None
    example: PreferencePair | KTOExample | None = None
    reason: str | None = None


def read_preference_examples(path: str | Path, method: str) -> Iterator[PreferenceVerdict]:
    """Every record of a file, normalised for ``method``; raises :class:`DatasetError` at the
    first record whose kind of data the method cannot train on."""
    wanted = PreferenceFormat.KTO if method == "kto" else PreferenceFormat.PREFERENCE
    fmt: PreferenceFormat | None = None
    index = 0
    for record in read_records(Path(path)):
        if index == 0 and isinstance(record.value, dict) and "_meta" in record.value:
            continue
        reason, example = record.error, None
        if reason is None:
            media = _media_refusal(record.value)
            if media is not None:
                raise DatasetError(f"line {record.line}: {media}")
            detected = detect_layout(record.value)
            if detected is None:
                _refuse_other_kind(record.value, record.line, method, wanted)
                reason = _shape_reason(record.value, wanted)
            else:
                kind, layout = detected
                if kind is not wanted:
                    if fmt is None:
                        raise DatasetError(_wrong_kind(method, wanted, kind, record.line))
                    reason = f"this record is {kind.value} data but the file is {fmt.value} data; formats cannot be mixed"
                else:
                    fmt = fmt or kind
                    try:
                        example = normalise_record(record.value, layout, record.line, index)
                    except InvalidRecord as exc:
                        reason = str(exc)
        if example is None:
            reason = reason or "unusable record"
        yield PreferenceVerdict(index, record.line, fmt, example, reason)
        index += 1


def _wrong_kind(method: str, wanted: PreferenceFormat, got: PreferenceFormat, line: int) -> str:
    if wanted is PreferenceFormat.KTO:
        return (
            f"line {line}: method kto trains on KTO data (a prompt, a completion and a desirable/undesirable "
            "label); this file holds preference pairs (chosen and rejected): train it with dpo, orpo or simpo"
        )
    return (
        f"line {line}: method {method} trains on preference pairs (chosen and rejected replies); this file "
        "holds KTO data (completions labelled desirable or not): train it with kto"
    )


def _refuse_other_kind(value: Any, line: int, method: str, wanted: PreferenceFormat) -> None:
    """A record of SFT data: the method cannot train on it at all (as SFT refuses pairs)."""
    fmt = detect_format(value)
    if fmt is None:
        return
    what = "KTO data" if wanted is PreferenceFormat.KTO else "preference pairs (chosen and rejected replies)"
    raise DatasetError(
        f"line {line}: method {method} trains on {what}; this file holds supervised fine-tuning data "
        f"({fmt.value}): train it with method sft"
    )


def _shape_reason(value: Any, wanted: PreferenceFormat) -> str:
    if not isinstance(value, dict):
        return f"expected a JSON object, got {type(value).__name__}"
    keys = ", ".join(sorted(value)[:6]) or "no keys"
    return f"the keys ({keys}) match none of the {wanted.value} formats"


def load_preference_dataset(
    path: str | Path, *, method: str, seed: int, validation_split: float, use_validation: bool
) -> PreferenceDataset:
    """Read, normalise and split a preference or KTO file (PROTOCOL.md's split rule)."""
    threshold = validation_threshold(validation_split) if use_validation else 0
    fmt: PreferenceFormat | None = None
    train: list = []
    validation: list = []
    skipped: list[SkippedRecord] = []
    skipped_count = 0
    index = 0
    for verdict in read_preference_examples(path, method):
        fmt, index = verdict.format, verdict.index + 1
        if verdict.example is not None:
            (validation if is_validation(verdict.index, seed, threshold) else train).append(verdict.example)
        else:
            skipped_count += 1
            if len(skipped) < SKIPPED_KEPT:
                skipped.append(SkippedRecord(verdict.line, verdict.reason))
    if fmt is None or not (train or validation):
        wanted = "KTO examples" if method == "kto" else "preference pairs"
        if index == 0:
            raise DatasetError("the dataset holds no examples")
        first = f"; line {skipped[0].line}: {skipped[0].reason}" if skipped else ""
        raise DatasetError(f"none of the dataset's {index} records is usable for {method} (it needs {wanted}){first}")
    if fmt is PreferenceFormat.KTO:
        labels = {example.label for example in train + validation}
        if len(labels) < 2:
            only = "desirable (label true)" if labels == {True} else "undesirable (label false)"
            raise DatasetError(
                f"every usable KTO example is {only}: KTO needs both desirable and undesirable completions"
            )
    split_dropped = None
    if threshold > 0 and (not train or not validation):
        count = len(train) + len(validation)
        split_dropped = (
            f"the file is too small for a validation split ({count} usable example{'s' if count != 1 else ''}): "
            "no validation split is used, and no validation loss will be reported"
        )
        train = sorted(train + validation, key=lambda e: e.index)
        validation = []
    if fmt is PreferenceFormat.KTO and len({example.label for example in train}) < 2:
        raise DatasetError(
            "the training split holds only "
            + ("desirable" if train[0].label else "undesirable")
            + " KTO examples: KTO needs both (lower validation_split or add examples)"
        )
    return PreferenceDataset(fmt, train, validation, index, skipped_count, skipped, split_dropped)
