"""Reading a dataset file, recognising its format and normalising it to chat messages.

DESIGN.md ("Dataset formats") lists the layouts, detected per file and never mixed. Every
chat example becomes a list of :class:`Message` (``system`` / ``user`` / ``assistant`` /
``tool``), the one shape the tokenizer's chat template understands, with the example's tool
definitions beside it; a plain-text example (``{"text": …}``) is one ``text`` message,
trained on every token.

Data for other kinds of training is refused as a whole, as the engine's validator refuses
it: multimodal examples (``images``/``videos``/``audios``, media content parts, ``<image>``
tags: the media would be dropped), preference pairs (``chosen``/``rejected`` …) and KTO
(``label``/``kto_tag``: the undesirable replies would become targets).

The trainer is the second reader of a file the engine has already validated, so it is
forgiving the same way: a record it cannot use is skipped and counted (the first few are
reported with their line numbers), never fatal. Only a file with nothing usable fails.

The hold-out split is by *record index*, the 0-based position of a record among the file's
records (non-blank lines, or elements of a JSON array, not counting a leading ``_meta``
line), whether or not that record turns out usable. That keeps the split independent of
how strictly each side judges a record, so the engine's counts and the trainer's agree.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Iterator

from .errors import DatasetError, InfrastructureError

#: The multiplier of the split hash (Knuth's multiplicative constant, 2^32 / golden ratio).
SPLIT_MULTIPLIER = 2654435761
SPLIT_BUCKETS = 10_000
#: How many skipped records are kept with their reasons (all are counted).
SKIPPED_KEPT = 100


class DatasetFormat(str, Enum):
    """The accepted layouts; the values match the engine's ``DatasetFormat`` names."""

    BRIGHTRUN_V4 = "brightrun_v4"
    BRIGHTRUN_FLAT = "brightrun_flat"
    OPENAI_CHAT = "openai_chat"
    ALPACA = "alpaca"
    SHAREGPT = "sharegpt"
    PROMPT_COMPLETION = "prompt_completion"
    TEXT = "text"


@dataclass(frozen=True)
class ToolCall:
    name: str
    #: The arguments, parsed (chat templates render them with ``tojson``).
    arguments: dict[str, Any]
    id: str | None = None

    def as_chat(self) -> dict[str, Any]:
        call: dict[str, Any] = {"type": "function", "function": {"name": self.name, "arguments": self.arguments}}
        if self.id is not None:
            call["id"] = self.id
        return call


@dataclass(frozen=True)
class Message:
    role: str
    content: str
    #: Whether the loss covers this message; only assistant messages (tool-call turns
    #: included) and plain text are ever trained.
    trainable: bool = False
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None

    def as_chat(self) -> dict[str, Any]:
        chat: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            chat["tool_calls"] = [call.as_chat() for call in self.tool_calls]
        if self.tool_call_id is not None:
            chat["tool_call_id"] = self.tool_call_id
        return chat


@dataclass(frozen=True)
class Example:
    #: 1-based line of the record in the file.
    line: int
    #: 0-based record index, the input of the split rule.
    index: int
    messages: tuple[Message, ...]
    #: Tool definitions (OpenAI ``{"type": "function", "function": {…}}``), for the template.
    tools: tuple[dict[str, Any], ...] = ()

    @property
    def is_text(self) -> bool:
        return len(self.messages) == 1 and self.messages[0].role == "text"


@dataclass(frozen=True)
class SkippedRecord:
    line: int
    reason: str


@dataclass
class LoadedDataset:
    format: DatasetFormat
    train: list[Example]
    validation: list[Example]
    total_records: int
    skipped_count: int = 0
    skipped: list[SkippedRecord] = field(default_factory=list)
    #: Why the hold-out split was not used although asked for (a file too small for one).
    split_dropped: str | None = None


#: How many skipped records a warning lists by line (all are counted).
SKIPPED_LISTED = 5


def skipped_warning(count: int, skipped: list[SkippedRecord]) -> str:
    """The one ``log`` warning that counts skipped records and lists the first few by line."""
    listed = "; ".join(f"line {s.line}: {s.reason}" for s in skipped[:SKIPPED_LISTED])
    return f"skipped {count} unusable records ({listed})"


# --------------------------------------------------------------------------- split rule


def validation_threshold(validation_split: float) -> int:
    """``round(validation_split × 10000)``, rounding halves away from zero like Rust's ``f64::round``."""
    scaled = validation_split * SPLIT_BUCKETS
    floor = math.floor(scaled)
    return int(floor + 1 if scaled - floor >= 0.5 else floor)


def is_validation(index: int, seed: int, threshold: int) -> bool:
    """PROTOCOL.md's split rule for the record at ``index`` (exact integer arithmetic)."""
    return (index * SPLIT_MULTIPLIER + seed) % SPLIT_BUCKETS < threshold


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class _Record:
    line: int
    value: Any = None
    error: str | None = None


def read_records(path: Path) -> Iterator[_Record]:
    """Yield every record of a JSONL file (streamed) or a JSON-array file, with its line."""
    try:
        with open(path, "rb") as handle:
            is_array = _starts_with_array(handle)
            handle.seek(0)
            if is_array:
                yield from _array_records(handle.read())
            else:
                yield from _jsonl_records(handle)
    except FileNotFoundError as exc:
        raise InfrastructureError(f"the dataset file {path} does not exist") from exc
    except IsADirectoryError as exc:
        raise InfrastructureError(f"the dataset path {path} is a folder, not a file") from exc
    except PermissionError as exc:
        raise InfrastructureError(f"the dataset file {path} cannot be read: permission denied") from exc


def _starts_with_array(handle) -> bool:
    head = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"[")


def _jsonl_records(handle) -> Iterator[_Record]:
    for line_number, raw in enumerate(handle, start=1):
        if line_number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            yield _Record(line_number, error="the line is not valid UTF-8")
            continue
        try:
            yield _Record(line_number, value=json.loads(text, parse_constant=_not_json))
        except json.JSONDecodeError as exc:
            yield _Record(line_number, error=f"not valid JSON ({exc.msg} at column {exc.colno})")
        except ValueError as exc:
            yield _Record(line_number, error=f"not valid JSON ({exc})")


def _not_json(name: str) -> Any:
    """``NaN`` and ``Infinity``, which Python's ``json`` reads by default, are not JSON: the
    engine's validator refuses them, so the trainer does too."""
    raise ValueError(f"{name} is not a JSON value; write null or a number")


def _array_records(data: bytes) -> Iterator[_Record]:
    """Decode a top-level JSON array element by element, so each keeps its line number."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"the dataset is not valid UTF-8 (byte {exc.start})") from exc
    decoder = json.JSONDecoder(parse_constant=_not_json)
    position = _skip_space(text, text.index("[") + 1)
    if position < len(text) and text[position] == "]":
        return
    while True:
        try:
            value, position = decoder.raw_decode(text, position)
        except ValueError as exc:  # json.JSONDecodeError, and NaN/Infinity
            raise DatasetError(f"the dataset is not a valid JSON array: {exc}") from exc
        yield _Record(text.count("\n", 0, position) + 1, value=value)
        position = _skip_space(text, position)
        if position < len(text) and text[position] == ",":
            position = _skip_space(text, position + 1)
            continue
        if position < len(text) and text[position] == "]":
            return
        line = text.count("\n", 0, position) + 1
        raise DatasetError(f"the dataset is not a valid JSON array: expected ',' or ']' on line {line}")


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


# --------------------------------------------------------------------------- formats


class InvalidRecord(ValueError):
    """A record that cannot be used, with the reason a person would need to fix it."""


def detect_format(record: Any) -> DatasetFormat | None:
    """The format a record's keys announce, or ``None``."""
    if not isinstance(record, dict):
        return None
    if "turns" in record:
        return DatasetFormat.BRIGHTRUN_V4
    if "messages" in record:
        return DatasetFormat.OPENAI_CHAT
    if "conversations" in record:
        return DatasetFormat.SHAREGPT
    if "current_user_input" in record and "target_response" in record:
        return DatasetFormat.BRIGHTRUN_FLAT
    if "instruction" in record and "output" in record:
        return DatasetFormat.ALPACA
    if "prompt" in record and "completion" in record:
        return DatasetFormat.PROMPT_COMPLETION
    if "text" in record:
        return DatasetFormat.TEXT
    return None


_MEDIA_KEYS = ("images", "videos", "audios", "image", "video", "audio")
_MEDIA_PARTS = {"image", "image_url", "input_image", "audio", "input_audio", "audio_url", "video", "video_url", "file"}
_MEDIA_TAGS = ("<image>", "<video>", "<audio>")


def refusal(record: Any) -> str | None:
    """Why a record is data for another kind of training, or ``None`` (the engine's rule)."""
    if not isinstance(record, dict):
        return None
    if "chosen" in record and "rejected" in record:
        return "this is preference data (chosen and rejected replies); for supervised fine-tuning keep the chosen reply"
    if "preferred_output" in record or "non_preferred_output" in record:
        return "this is preference data (OpenAI preference fine-tuning); for supervised fine-tuning keep the preferred output"
    if "chosen_messages" in record or "rejected_messages" in record:
        return "this is preference data (chosen_messages and rejected_messages); for supervised fine-tuning keep the chosen messages"
    if "kto_tag" in record or isinstance(record.get("label"), bool):
        return "this is KTO data (replies labelled desirable or not); for supervised fine-tuning keep the examples labelled true"
    if isinstance(record.get("completions"), list) and isinstance(record.get("labels"), list):
        return (
            "this is process-reward data, not SFT data (stepwise supervision: prompt, completions, labels); "
            "for supervised fine-tuning keep the examples whose steps are all correct"
        )
    for key in _MEDIA_KEYS:
        if record.get(key) not in (None, [], ""):
            return f"this is multimodal data (a {key!r} key); BrightRun trains text LoRA adapters"
    if _holds_media(record):
        return "this is multimodal data (media content parts or <image> tags); BrightRun trains text LoRA adapters"
    return None


def _holds_media(value: Any) -> bool:
    if isinstance(value, str):
        return any(tag in value for tag in _MEDIA_TAGS)
    if isinstance(value, list):
        return any(_holds_media(v) for v in value)
    if isinstance(value, dict):
        if value.get("type") in _MEDIA_PARTS:
            return True
        return any(_holds_media(v) for k, v in value.items() if k not in ("tools", "functions"))
    return False


def normalise(record: dict[str, Any], fmt: DatasetFormat) -> tuple[Message, ...]:
    """Turn one record of ``fmt`` into chat messages, or raise :class:`InvalidRecord`.

    A last user message with no reply is dropped (it teaches nothing; the replies before it
    are trained), as the validator's warning says."""
    messages = _NORMALISERS[fmt](record)
    if fmt is not DatasetFormat.TEXT:
        while len(messages) > 1 and messages[-1].role == "user" and any(m.role == "assistant" for m in messages):
            messages.pop()
        _check_conversation(messages)
    return tuple(messages)


def tools_of(record: dict[str, Any], fmt: DatasetFormat) -> tuple[dict[str, Any], ...]:
    """The example's tool definitions in OpenAI's shape, or raise :class:`InvalidRecord`."""
    if fmt not in (DatasetFormat.OPENAI_CHAT, DatasetFormat.SHAREGPT):
        return ()
    raw = record.get("tools")
    if raw is None and fmt is DatasetFormat.OPENAI_CHAT:
        raw = record.get("functions")
    if raw is None or raw == "":
        return ()
    raw = _json_text(raw, "`tools`")
    if not isinstance(raw, list):
        raise InvalidRecord("`tools` must be a list of tool definitions")
    tools = []
    for i, tool in enumerate(raw):
        if not isinstance(tool, dict):
            raise InvalidRecord(f"`tools[{i}]` must be an object")
        function = tool.get("function", tool)
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise InvalidRecord(f"`tools[{i}]` has no function name")
        parameters = function.get("parameters")
        if parameters is not None and not (isinstance(parameters, dict) and parameters.get("type", "object") == "object"):
            raise InvalidRecord(f"`tools[{i}].parameters` must be a JSON schema object")
        tools.append({"type": "function", "function": function})
    return tuple(tools)


def _from_brightrun_v4(record: dict[str, Any]) -> list[Message]:
    turns = _list_field(record, "turns")
    return [
        _message(_role(turn, "role", _CHAT_ROLES, f"turns[{i}]"), _parts_text(turn, "content", f"turns[{i}]"))
        for i, turn in enumerate(turns)
    ]


def _from_brightrun_flat(record: dict[str, Any]) -> list[Message]:
    messages = []
    system = record.get("system_prompt")
    if system is not None and not isinstance(system, str):
        raise InvalidRecord("`system_prompt` must be a string")
    if system and system.strip():
        messages.append(Message("system", system))
    messages.append(Message("user", _text(record, "current_user_input")))
    messages.append(_message("assistant", _text(record, "target_response")))
    return messages


def _from_openai_chat(record: dict[str, Any]) -> list[Message]:
    messages = []
    pending: list[str | None] = []
    for i, item in enumerate(_list_field(record, "messages")):
        where = f"messages[{i}]"
        role = _role(item, "role", _OPENAI_ROLES, where)
        trainable = True
        if "weight" in item:
            trainable = _weight(item["weight"], role, f"{where}.weight", strict=True)
        if "loss_weight" in item:
            trainable = _weight(item["loss_weight"], role, f"{where}.loss_weight", strict=False) and trainable
        calls: list[ToolCall] = []
        if role == "assistant":
            for j, call in enumerate(item.get("tool_calls") or []):
                function = call.get("function") if isinstance(call, dict) else None
                calls.append(_tool_call(function, f"{where}.tool_calls[{j}]", call.get("id") if isinstance(call, dict) else None))
            if item.get("function_call") is not None:
                calls.append(_tool_call(item["function_call"], f"{where}.function_call", None))
            pending.extend(call.id for call in calls)
        call_id = None
        if role == "tool":
            call_id = item.get("tool_call_id")
            if call_id is not None and call_id in pending:
                pending.remove(call_id)
            elif call_id is None and pending:
                call_id = pending.pop(0)
            else:
                raise InvalidRecord(f"`{where}` is a tool result that answers no earlier tool call")
        content = item.get("content")
        if calls and content in (None, ""):
            content = ""
        elif role == "tool" and isinstance(content, str):
            pass
        else:
            content = _openai_content(item, where)
        messages.append(Message(role, content, trainable and role == "assistant", tuple(calls), call_id))
    return messages


def _weight(value: Any, role: str, where: str, *, strict: bool) -> bool:
    """OpenAI's ``weight`` (``strict``: 0 or 1, assistant messages only) or LLaMA-Factory's
    ``loss_weight`` (0 or 1; on other messages it is ignored): whether the message is trained."""
    if value not in (0, 1) or isinstance(value, bool):
        raise InvalidRecord(f"`{where}` must be the number 0 or 1")
    if role != "assistant" and strict:
        raise InvalidRecord(f"`{where}` is set on a {role} message; weight is allowed on assistant messages only")
    return value == 1


def _json_text(value: Any, what: str) -> Any:
    """A value that may be JSON written as a string (tool arguments, ShareGPT's ``tools``)."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise InvalidRecord(f"{what} is not valid JSON ({exc.msg})") from exc


def _tool_call(function: Any, where: str, call_id: Any) -> ToolCall:
    if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
        raise InvalidRecord(f"`{where}` has no function name")
    arguments = _json_text(function.get("arguments", {}), f"`{where}.arguments`")
    if not isinstance(arguments, dict):
        raise InvalidRecord(f"`{where}.arguments` must be a JSON object")
    return ToolCall(function["name"], arguments, call_id if isinstance(call_id, str) else None)


def _from_alpaca(record: dict[str, Any]) -> list[Message]:
    instruction = _text(record, "instruction")
    extra = record.get("input")
    if extra is not None and not isinstance(extra, str):
        raise InvalidRecord("`input` must be a string")
    prompt = f"{instruction}\n\n{extra}" if extra and extra.strip() else instruction
    messages = []
    system = record.get("system")
    if isinstance(system, str) and system.strip():
        messages.append(Message("system", system))
    history = record.get("history")
    if history is not None:
        # Earlier turns, [[instruction, output], …], trained like the last (as LLaMA-Factory does).
        if not isinstance(history, list):
            raise InvalidRecord("`history` must be a list of [instruction, output] pairs")
        for i, pair in enumerate(history):
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
                raise InvalidRecord(f"`history[{i}]` must be an [instruction, output] pair of strings")
            messages.append(Message("user", pair[0]))
            messages.append(_message("assistant", pair[1]))
    messages.append(Message("user", prompt))
    messages.append(_message("assistant", _text(record, "output")))
    return messages


def _from_sharegpt(record: dict[str, Any]) -> list[Message]:
    messages = []
    system = record.get("system")
    if isinstance(system, str) and system.strip():
        messages.append(Message("system", system))
    pending = 0
    for i, item in enumerate(_list_field(record, "conversations")):
        where = f"conversations[{i}]"
        role = _role(item, "from", _SHAREGPT_ROLES, where)
        if role == "function_call":
            value = _text(item, "value", where)
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError as exc:
                raise InvalidRecord(f"`{where}.value` (a function_call) is not valid JSON ({exc.msg})") from exc
            calls = [_tool_call(call, where, None) for call in (parsed if isinstance(parsed, list) else [parsed])]
            pending += len(calls)
            messages.append(Message("assistant", "", True, tuple(calls)))
            continue
        if role == "tool":
            if pending == 0:
                raise InvalidRecord(f"`{where}` is an observation that answers no earlier function_call")
            pending -= 1
        messages.append(_message(role, _parts_text(item, "value", where)))
    return messages


def _from_prompt_completion(record: dict[str, Any]) -> list[Message]:
    """A prompt and its completion: strings, lists of text parts, or (TRL's conversational
    layout) lists of messages, the prompt's as context and the completion's assistant
    messages trained."""
    return [*_pc_side(record, "prompt"), *_pc_side(record, "completion")]


def _pc_side(record: dict[str, Any], key: str) -> list[Message]:
    completion = key == "completion"
    default = "assistant" if completion else "user"
    value = record.get(key)
    if isinstance(value, str):
        return [_message(default, value, trainable=completion)]
    if not isinstance(value, list) or not value:
        raise InvalidRecord(f"`{key}` must be a string or a non-empty list of messages")
    if not (isinstance(value[0], dict) and "role" in value[0]):
        return [_message(default, _parts_text(record, key, key), trainable=completion)]
    roles = {"assistant": "assistant"} if completion else _CHAT_ROLES
    messages = []
    for i, item in enumerate(value):
        role = _role(item, "role", roles, f"{key}[{i}]")
        messages.append(_message(role, _parts_text(item, "content", f"{key}[{i}]"), trainable=completion))
    return messages


def _from_text(record: dict[str, Any]) -> list[Message]:
    text = _text(record, "text")
    if not text.strip():
        raise InvalidRecord("`text` is empty")
    return [Message("text", text, trainable=True)]


_NORMALISERS = {
    DatasetFormat.BRIGHTRUN_V4: _from_brightrun_v4,
    DatasetFormat.BRIGHTRUN_FLAT: _from_brightrun_flat,
    DatasetFormat.OPENAI_CHAT: _from_openai_chat,
    DatasetFormat.ALPACA: _from_alpaca,
    DatasetFormat.SHAREGPT: _from_sharegpt,
    DatasetFormat.PROMPT_COMPLETION: _from_prompt_completion,
    DatasetFormat.TEXT: _from_text,
}
_CHAT_ROLES = {"system": "system", "user": "user", "assistant": "assistant"}
_OPENAI_ROLES = {**_CHAT_ROLES, "developer": "system", "tool": "tool", "function": "tool"}
_SHAREGPT_ROLES = {
    "system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
    "observation": "tool", "function_call": "function_call",
}


def _message(role: str, content: str, trainable: bool = True) -> Message:
    return Message(role, content, trainable=trainable and role == "assistant")


def _list_field(record: dict[str, Any], name: str) -> list[Any]:
    value = record.get(name)
    if not isinstance(value, list) or not value:
        raise InvalidRecord(f"`{name}` must be a non-empty list")
    return value


def _role(item: Any, key: str, allowed: dict[str, str], where: str) -> str:
    if not isinstance(item, dict):
        raise InvalidRecord(f"`{where}` must be an object")
    role = item.get(key)
    if role not in allowed:
        names = ", ".join(sorted(allowed))
        raise InvalidRecord(f"`{where}.{key}` must be one of {names}, got {json.dumps(role)}")
    return allowed[role]


def _text(item: dict[str, Any], key: str, where: str | None = None) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        name = f"{where}.{key}" if where else key
        raise InvalidRecord(f"`{name}` must be a string")
    return value


def _openai_content(item: dict[str, Any], where: str) -> str:
    return _parts_text(item, "content", where)


def _parts_text(item: dict[str, Any], key: str, where: str) -> str:
    """Content is a string or a list of text parts (``text``, or ``value`` as LLaMA-Factory
    writes it), joined; only text can be trained on."""
    if not isinstance(item, dict):
        raise InvalidRecord(f"`{where}` must be an object")
    content = item.get(key)
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            text = part.get("text", part.get("value")) if isinstance(part, dict) else None
            kind = part.get("type", "text") if isinstance(part, dict) else None
            if kind in ("reasoning", "tool_call"):
                raise InvalidRecord(f"`{where}.{key}` holds a {kind!r} content part, which BrightRun does not read")
            if kind != "text" or not isinstance(text, str):
                break
            texts.append(text)
        else:
            return "".join(texts)
    raise InvalidRecord(f"`{where}.{key}` must be a string or a list of text parts")


def _check_conversation(messages: list[Message]) -> None:
    """Reject conversations a chat template cannot render or the loss cannot learn from."""
    if any(m.role == "system" for m in messages[1:]):
        raise InvalidRecord("a system message may only come first")
    first = next((m for m in messages if m.role != "system"), None)
    # An assistant reply with no user message before it (OpenAI's cookbook accepts it) is
    # trained as written; a strict chat template's refusal then skips it at encoding.
    if first is None or first.role not in ("user", "assistant"):
        raise InvalidRecord("the conversation must start with a user message (or the assistant's reply)")
    if not any(m.trainable and (m.content.strip() or m.tool_calls) for m in messages):
        raise InvalidRecord("there is no non-empty assistant response to learn from")


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class RecordVerdict:
    """One record of the file as a run judges it: a usable example, or why it is skipped."""

    #: 0-based record index (the split rule's input) and 1-based line.
    index: int
    line: int
    #: The file's format as fixed so far (``None`` until a record matches a format).
    format: DatasetFormat | None
    example: Example | None = None
    #: Why the record is unusable (``example`` is then ``None``).
    reason: str | None = None


def read_examples(path: str | Path) -> Iterator[RecordVerdict]:
    """Every record of a dataset file, streamed, normalised as a run reads it (format detection
    included). Raises :class:`DatasetError` at a record that is data for another kind of training."""
    fmt: DatasetFormat | None = None
    index = 0
    for record in read_records(Path(path)):
        if index == 0 and _is_meta(record):
            continue
        reason = record.error
        example = None
        if reason is None:
            refused = refusal(record.value)
            if refused is not None:
                raise DatasetError(f"line {record.line}: {refused}")
            record_format = detect_format(record.value)
            if fmt is None and record_format is not None:
                fmt = record_format
            if record_format is None:
                reason = _unknown_shape_reason(record.value)
            elif record_format is not fmt:
                reason = f"this record is {record_format.value} but the file is {fmt.value}; formats cannot be mixed"
            else:
                try:
                    example = Example(
                        record.line, index, normalise(record.value, fmt), tools_of(record.value, fmt)
                    )
                except InvalidRecord as exc:
                    reason = str(exc)
        if example is None:
            reason = reason or "unusable record"
        yield RecordVerdict(index, record.line, fmt, example, reason)
        index += 1


def load_dataset(
    path: str | Path, *, seed: int, validation_split: float, use_validation: bool
) -> LoadedDataset:
    """Read, detect, normalise and split a dataset file in one streaming pass."""
    threshold = validation_threshold(validation_split) if use_validation else 0
    fmt: DatasetFormat | None = None
    train: list[Example] = []
    validation: list[Example] = []
    skipped: list[SkippedRecord] = []
    skipped_count = 0
    index = 0

    for verdict in read_examples(path):
        fmt, index = verdict.format, verdict.index + 1
        if verdict.example is not None:
            (validation if is_validation(verdict.index, seed, threshold) else train).append(verdict.example)
        else:
            skipped_count += 1
            if len(skipped) < SKIPPED_KEPT:
                skipped.append(SkippedRecord(verdict.line, verdict.reason))

    if fmt is None or not (train or validation):
        raise DatasetError(_nothing_usable_reason(index, skipped))
    split_dropped = None
    if threshold > 0 and (not train or not validation):
        # PROTOCOL.md's small-file rule, as the engine's validator applies it: a split that
        # would leave training empty, or select no validation example, is not used.
        count = len(train) + len(validation)
        split_dropped = (
            f"the file is too small for a validation split ({count} usable example{'s' if count != 1 else ''}): "
            "no validation split is used, and no validation loss will be reported"
        )
        train = sorted(train + validation, key=lambda e: e.index)
        validation = []
    return LoadedDataset(fmt, train, validation, index, skipped_count, skipped, split_dropped)


def _is_meta(record: _Record) -> bool:
    return isinstance(record.value, dict) and "_meta" in record.value


def _unknown_shape_reason(value: Any) -> str:
    if not isinstance(value, dict):
        return f"expected a JSON object, got {type(value).__name__}"
    keys = ", ".join(sorted(value)[:6]) or "no keys"
    return f"the keys ({keys}) match none of the supported formats"


def _nothing_usable_reason(total: int, skipped: list[SkippedRecord]) -> str:
    if total == 0:
        return "the dataset holds no examples"
    first = skipped[0] if skipped else None
    detail = f"; line {first.line}: {first.reason}" if first else ""
    return f"none of the dataset's {total} records is a usable example{detail}"
