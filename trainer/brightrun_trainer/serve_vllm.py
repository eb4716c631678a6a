"""vLLM for the playground's worker, where it is installed and a CUDA GPU is present.

``serve`` answers with transformers + PEFT everywhere; on a machine where ``import vllm``
works and torch sees a CUDA GPU it answers with vLLM instead, the adapter served with vLLM's
LoRA support (``enable_lora`` and a ``LoRARequest`` per request; ``"adapter": false`` sends
none, so the base model answers). ``BRIGHTRUN_SERVE_BACKEND`` overrides the choice:
``auto`` (the default), ``transformers`` (never vLLM) or ``vllm`` (vLLM or a ``fatal``).
In ``auto``, a vLLM that fails to start is reported on stderr and transformers answers.

The protocol is the same whichever answers (PROTOCOL.md, "Serve mode"); ``ready`` names the
backend. vLLM streams the reply's text as it grows (each output holds the text so far; the
new part goes out as a ``delta``); a ``cancel`` aborts the request at the next output.

Not run against a real vLLM in BrightRun's own tests (no GPU there): the tests drive this
module through a stand-in ``vllm`` package with the same names (``AsyncEngineArgs``,
``AsyncLLMEngine``, ``SamplingParams``, ``vllm.lora.request.LoRARequest``), as vLLM 0.6 to
0.11 export them.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

BACKEND_ENV = "BRIGHTRUN_SERVE_BACKEND"
#: Share of the GPU's memory vLLM may take (weights, KV cache, activations); vLLM's own default
#: is 0.9. ``BRIGHTRUN_VLLM_GPU_MEMORY_UTILIZATION`` overrides it.
GPU_MEMORY_UTILIZATION = 0.85
#: The LoRA ranks vLLM's kernels accept; ``max_lora_rank`` must be one of them.
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


def backend_choice() -> str:
    choice = os.environ.get(BACKEND_ENV, "auto").strip().lower() or "auto"
    if choice not in ("auto", "transformers", "vllm"):
        raise ValueError(f"{BACKEND_ENV} must be auto, transformers or vllm, not {choice!r}")
    return choice


def vllm_usable() -> tuple[bool, str]:
    """Whether vLLM can answer here (installed, and a CUDA GPU), and why not."""
    if importlib.util.find_spec("vllm") is None:
        return False, "vllm is not installed"
    import torch

    if not torch.cuda.is_available():
        return False, "no CUDA GPU"
    return True, "vllm is installed and a CUDA GPU is present"


def lora_rank_limit(adapter: str | None) -> int:
    """The smallest rank vLLM accepts that holds the adapter's (``r`` in adapter_config.json)."""
    rank = 16
    if adapter is not None:
        try:
            config = json.loads((Path(adapter) / "adapter_config.json").read_text())
            rank = int(config.get("r") or rank)
            patterns = config.get("rank_pattern") or {}
            rank = max([rank, *(int(v) for v in patterns.values())])
        except (OSError, ValueError, TypeError):
            pass
    return next((r for r in VLLM_LORA_RANKS if r >= rank), VLLM_LORA_RANKS[-1])


class VllmWorker:
    """The loaded model in vLLM's async engine, on an event loop of its own thread; one reply
    at a time, as :class:`serve.Worker`."""

    backend = "vllm"
    device = "cuda"

    def __init__(self, base: str, adapter: str | None):
        from transformers import AutoConfig, AutoTokenizer
        from vllm import AsyncEngineArgs, AsyncLLMEngine

        from .errors import model_load_error
        from .serve import FALLBACK_CONTEXT
        from .train import resolve_base_model

        path = resolve_base_model(base)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            config = AutoConfig.from_pretrained(path)
        except Exception as exc:
            raise model_load_error(exc, base, "tokenizer") from exc
        self.context = int(getattr(config, "max_position_embeddings", 0) or FALLBACK_CONTEXT)
        self.has_adapter = adapter is not None
        utilization = float(os.environ.get("BRIGHTRUN_VLLM_GPU_MEMORY_UTILIZATION", GPU_MEMORY_UTILIZATION))
        args: dict[str, Any] = dict(
            model=path,
            tokenizer=path,
            gpu_memory_utilization=utilization,
            max_model_len=self.context,
            disable_log_stats=True,
        )
        if adapter is not None:
            args.update(enable_lora=True, max_loras=1, max_lora_rank=lora_rank_limit(adapter))
        self.lora = None
        if adapter is not None:
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest("adapter", 1, str(adapter))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="vllm-loop", daemon=True)
        self.thread.start()

        async def start():
            return AsyncLLMEngine.from_engine_args(AsyncEngineArgs(**args))

        self.engine = self._run(start())

    def _run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def prompt_ids(self, request) -> list[int]:
        from .serve import prompt_ids

        return prompt_ids(self.tokenizer, request, self.context)

    def answer(self, request, replies, cancelled: threading.Event) -> None:
        from vllm import SamplingParams

        started = time.monotonic()
        ids = self.prompt_ids(request)
        max_new_tokens = min(request.max_new_tokens, max(1, self.context - len(ids)))
        if request.temperature > 0:
            params = SamplingParams(
                max_tokens=max_new_tokens, temperature=request.temperature, top_p=1.0, top_k=-1,
                skip_special_tokens=True,
            )  # fmt: skip
        else:
            params = SamplingParams(max_tokens=max_new_tokens, temperature=0.0, skip_special_tokens=True)
        lora = self.lora if request.adapter else None
        request_id = f"{request.id}-{uuid.uuid4().hex[:8]}"

        async def generate() -> tuple[int, float | None, bool]:
            text, tokens, first, stopped = "", 0, None, False
            outputs = self.engine.generate({"prompt_token_ids": ids}, params, request_id, lora_request=lora)
            async for output in outputs:
                if cancelled.is_set():
                    stopped = True
                    await self.engine.abort(request_id)
                    break
                completion = output.outputs[0]
                if len(completion.token_ids) > tokens and first is None:
                    first = time.monotonic()
                tokens = len(completion.token_ids)
                delta, text = completion.text[len(text) :], completion.text
                if delta:
                    replies.send(id=request.id, type="delta", text=delta)
            return tokens, first, stopped

        tokens, first, stopped = self._run(generate())
        replies.send(
            id=request.id,
            type="done",
            tokens=tokens,
            seconds=round(time.monotonic() - started, 4),
            first_token_seconds=round(first - started, 4) if first is not None else None,
            cancelled=stopped or cancelled.is_set(),
        )
