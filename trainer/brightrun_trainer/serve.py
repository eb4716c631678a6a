"""``python -m brightrun_trainer serve --base MODEL [--adapter DIR]``: the playground's worker.

Loads the base model (and the PEFT adapter) once, then answers chat requests read as JSON
lines on stdin with JSON lines on stdout (PROTOCOL.md, "Serve mode"):

- ``{"type": "ready", "device": "cpu", "seconds": 1.2, "adapter": true, "backend": "transformers"}``
  once loaded (``backend`` is ``vllm`` where vLLM answers: ``serve_vllm``);
- per request ``{"id", "messages", "max_new_tokens", "temperature", "adapter"}``: ``delta``
  lines as tokens come, then ``done`` (or ``error``);
- ``{"type": "cancel", "id": …}`` ends that request's generation at the next token.

One request runs at a time, in arrival order. A bad request is answered with an ``error``
line and the worker goes on; end of input ends the worker.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, TextIO

ROLES = ("system", "user", "assistant")
DEFAULT_MAX_NEW_TOKENS = 256
#: Requests may not ask for more than this many new tokens (the engine applies its own limit).
MAX_NEW_TOKENS_CAP = 32_768
#: Context for models whose config says nothing about it.
FALLBACK_CONTEXT = 2048


class RequestError(Exception):
    """A request the worker cannot answer; the reason goes back in an ``error`` line."""


@dataclass
class ChatRequest:
    id: str
    messages: list[dict[str, str]]
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    temperature: float = 0.0
    adapter: bool = True


def parse_request(line: str) -> ChatRequest | dict[str, Any]:
    """A chat request, or a control line (``{"type": "cancel", "id": …}``) as a dict.

    Raises :class:`RequestError` with the id it could read (``error.args[1]``) for bad input.
    """
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise RequestError(f"the request is not JSON: {exc.msg}", "") from exc
    if not isinstance(data, dict):
        raise RequestError("the request is not a JSON object", "")
    request_id = data.get("id")
    request_id = request_id if isinstance(request_id, str) else ""
    if data.get("type") == "cancel":
        return {"type": "cancel", "id": request_id}
    if not request_id:
        raise RequestError('the request has no "id" (a string)', "")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError('the request has no "messages" (a non-empty list)', request_id)
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise RequestError(f"message {index}: role must be one of {', '.join(ROLES)}", request_id)
        if not isinstance(message.get("content"), str):
            raise RequestError(f"message {index}: content must be a string", request_id)
    max_new_tokens = data.get("max_new_tokens", DEFAULT_MAX_NEW_TOKENS)
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise RequestError('"max_new_tokens" must be a positive integer', request_id)
    if max_new_tokens > MAX_NEW_TOKENS_CAP:
        raise RequestError(f'"max_new_tokens" must be at most {MAX_NEW_TOKENS_CAP}', request_id)
    temperature = data.get("temperature", 0.0)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 10:
        raise RequestError('"temperature" must be a number from 0 to 10', request_id)
    adapter = data.get("adapter", True)
    if not isinstance(adapter, bool):
        raise RequestError('"adapter" must be true or false', request_id)
    return ChatRequest(
        id=request_id,
        messages=[{"role": m["role"], "content": m["content"]} for m in messages],
        max_new_tokens=max_new_tokens,
        temperature=float(temperature),
        adapter=adapter,
    )


class Replies:
    """Protocol lines on the reserved stdout, one JSON object per line, flushed at once."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.lock = threading.Lock()

    def send(self, **fields: Any) -> None:
        line = json.dumps(fields, ensure_ascii=False) + "\n"
        with self.lock:
            try:
                self.stream.write(line)
                self.stream.flush()
            except (BrokenPipeError, OSError):
                pass  # the engine went away; end of input follows


class Worker:
    """The loaded model and the generation of one reply at a time (transformers + PEFT)."""

    backend = "transformers"

    def __init__(self, base: str, adapter: str | None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from .errors import model_load_error
        from .train import resolve_base_model, select_precision

        precision = select_precision()
        path = resolve_base_model(base)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
        except Exception as exc:
            raise model_load_error(exc, base, "tokenizer") from exc
        kwargs: dict[str, Any] = {"dtype": precision.dtype}
        if precision.on_cuda:
            kwargs["device_map"] = {"": torch.cuda.current_device()}
        try:
            model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
        except Exception as exc:
            raise model_load_error(exc, base, "weights") from exc
        self.has_adapter = adapter is not None
        if adapter is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter)
        model.eval()
        self.model = model
        self.device = "cuda" if precision.on_cuda else "cpu"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        eos = model.generation_config.eos_token_id
        eos = list(eos) if isinstance(eos, (list, tuple)) else [eos] if eos is not None else []
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in eos:
            eos.append(self.tokenizer.eos_token_id)
        self.eos_token_id = eos or None
        config = getattr(model, "config", None)
        self.context = int(getattr(config, "max_position_embeddings", 0) or FALLBACK_CONTEXT)

    def prompt_ids(self, request: ChatRequest) -> list[int]:
        return prompt_ids(self.tokenizer, request, self.context)

    def answer(self, request: ChatRequest, replies: Replies, cancelled: threading.Event) -> None:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        started = time.monotonic()
        ids = self.prompt_ids(request)
        max_new_tokens = min(request.max_new_tokens, max(1, self.context - len(ids)))
        streamer = counting_streamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)

        class _OnCancel(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return torch.full((input_ids.shape[0],), cancelled.is_set(), dtype=torch.bool, device=input_ids.device)

        sampling: dict[str, Any]
        if request.temperature > 0:
            sampling = {"do_sample": True, "temperature": request.temperature, "top_p": 1.0, "top_k": 0}
        else:
            sampling = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        input_ids = torch.tensor([ids], dtype=torch.long, device=self.model.device)
        kwargs = dict(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=max_new_tokens,
            num_beams=1,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.eos_token_id,
            use_cache=True,
            streamer=streamer,
            stopping_criteria=StoppingCriteriaList([_OnCancel()]),
            **sampling,
        )
        failure: list[BaseException] = []

        def generate() -> None:
            try:
                with torch.no_grad():
                    if self.has_adapter and not request.adapter:
                        with self.model.disable_adapter():
                            self.model.generate(**kwargs)
                    else:
                        self.model.generate(**kwargs)
            except BaseException as exc:  # reported on the reading side
                failure.append(exc)
                streamer.end()

        thread = threading.Thread(target=generate, name=f"generate-{request.id}", daemon=True)
        thread.start()
        for text in streamer:
            if text:
                replies.send(id=request.id, type="delta", text=text)
        thread.join()
        if failure:
            raise failure[0]
        first = streamer.first_token_at
        replies.send(
            id=request.id,
            type="done",
            tokens=streamer.tokens,
            seconds=round(time.monotonic() - started, 4),
            first_token_seconds=round(first - started, 4) if first is not None else None,
            cancelled=cancelled.is_set(),
        )


def prompt_ids(tokenizer, request: ChatRequest, context: int) -> list[int]:
    """The chat rendered with a generation prompt, cut from the left to fit the context."""
    from .encoding import adapt_to_template, render

    chat = adapt_to_template(tokenizer, request.messages)
    text = render(tokenizer, chat, add_generation_prompt=True)
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    room = max(1, context - request.max_new_tokens)
    return ids[-room:]


def make_worker(base: str, adapter: str | None):
    """vLLM where it is installed and a CUDA GPU is present (``serve_vllm``), else (or when
    ``BRIGHTRUN_SERVE_BACKEND=transformers``) transformers + PEFT."""
    from .errors import TrainerError
    from .serve_vllm import VllmWorker, backend_choice, vllm_usable

    choice = backend_choice()
    if choice != "transformers":
        usable, why = vllm_usable()
        if usable or choice == "vllm":
            try:
                return VllmWorker(base, adapter)
            except TrainerError:
                raise  # the model itself: transformers would fail the same way
            except Exception as exc:
                if choice == "vllm":
                    raise
                reason = f"{type(exc).__name__}: {exc}"
                print(f"vLLM could not start ({reason}); answering with transformers", file=sys.stderr)
        else:
            print(f"answering with transformers: {why}", file=sys.stderr)
    return Worker(base, adapter)


def counting_streamer(tokenizer, **kwargs):
    """A ``TextIteratorStreamer`` that also counts the generated tokens and times the first."""
    from transformers import TextIteratorStreamer

    class CountingStreamer(TextIteratorStreamer):
        def __init__(self):
            super().__init__(tokenizer, **kwargs)
            self.tokens = 0
            self.first_token_at: float | None = None
            self._prompt_seen = False

        def put(self, value):
            if self._prompt_seen:
                self.tokens += int(value.numel())
                if self.first_token_at is None:
                    self.first_token_at = time.monotonic()
            self._prompt_seen = True
            super().put(value)

    return CountingStreamer()


def read_requests(stdin: TextIO, inbox: queue.Queue, cancelled: dict[str, threading.Event]) -> None:
    """Reads stdin: cancels act at once, everything else queues; ``None`` marks end of input."""
    for line in stdin:
        if not line.strip():
            continue
        try:
            item = parse_request(line)
        except RequestError as exc:
            inbox.put(exc)
            continue
        if isinstance(item, dict):
            event = cancelled.get(item["id"])
            if event is not None:
                event.set()
            continue
        cancelled.setdefault(item.id, threading.Event())
        inbox.put(item)
    inbox.put(None)


def serve(base: str, adapter: str | None, stdin: TextIO, replies: Replies) -> int:
    started = time.monotonic()
    from .errors import TrainerError

    try:
        worker = make_worker(base, adapter)
    except TrainerError as exc:
        # Already a sentence naming the base model and what to do (a base gone from the
        # offline cache names HF_HUB_OFFLINE).
        replies.send(type="fatal", reason=exc.reason)
        return 1
    except Exception as exc:
        replies.send(type="fatal", reason=f"could not load {base}{' with the adapter' if adapter else ''}: {exc}")
        return 1
    replies.send(
        type="ready",
        device=worker.device,
        seconds=round(time.monotonic() - started, 3),
        adapter=worker.has_adapter,
        backend=worker.backend,
    )
    inbox: queue.Queue = queue.Queue()
    cancelled: dict[str, threading.Event] = {}
    reader = threading.Thread(target=read_requests, args=(stdin, inbox, cancelled), name="stdin", daemon=True)
    reader.start()
    while True:
        item = inbox.get()
        if item is None:
            return 0
        if isinstance(item, RequestError):
            reason, request_id = item.args
            replies.send(id=request_id, type="error", reason=reason)
            continue
        event = cancelled.get(item.id, threading.Event())
        try:
            worker.answer(item, replies, event)
        except Exception as exc:
            replies.send(id=item.id, type="error", reason=f"{type(exc).__name__}: {exc}")
        finally:
            cancelled.pop(item.id, None)


def main(base: str, adapter: str | None) -> int:
    from .events import claim_stdout

    stream = claim_stdout()  # stray prints from libraries go to stderr, not into the protocol
    return serve(base, adapter, sys.stdin, Replies(stream))
