"""Serve mode with vLLM (``serve_vllm``): the choice of backend, and the worker's plumbing
driven through a stand-in ``vllm`` package (no real vLLM here: it needs a CUDA GPU). The
stand-in has the names vLLM exports and streams each output as the text so far, as vLLM does."""

from __future__ import annotations

import io
import json
import sys
import textwrap
import threading

import pytest

from brightrun_trainer import serve, serve_vllm
from brightrun_trainer.serve import ChatRequest, Replies

from conftest import TINY_MODEL_ID

FAKE_VLLM = textwrap.dedent(
    '''
    """A stand-in for vLLM's async engine: replies "Hello there!" a word at a time."""
    import asyncio

    CALLS = []

    class AsyncEngineArgs:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    class SamplingParams:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    class _Completion:
        def __init__(self, text, token_ids):
            self.text, self.token_ids = text, token_ids

    class _Output:
        def __init__(self, text, token_ids):
            self.outputs = [_Completion(text, token_ids)]

    class AsyncLLMEngine:
        def __init__(self, args):
            self.args = args
            self.aborted = []

        @classmethod
        def from_engine_args(cls, args):
            asyncio.get_running_loop()  # vLLM's engine is made on the loop it runs on
            engine = cls(args)
            CALLS.append(("engine", args.kwargs))
            return engine

        async def generate(self, prompt, params, request_id, lora_request=None):
            CALLS.append(("generate", prompt, params.kwargs, request_id, lora_request))
            words = ["Hello", " there", "!"]
            for n in range(1, min(len(words), params.kwargs["max_tokens"]) + 1):
                await asyncio.sleep(0)
                yield _Output("".join(words[:n]), list(range(n)))

        async def abort(self, request_id):
            self.aborted.append(request_id)
    '''
)

FAKE_LORA = textwrap.dedent(
    """
    class LoRARequest:
        def __init__(self, name, id, path):
            self.lora_name, self.lora_int_id, self.lora_path = name, id, path
    """
)


@pytest.fixture
def fake_vllm(tmp_path, monkeypatch):
    package = tmp_path / "vllm"
    (package / "lora").mkdir(parents=True)
    (package / "__init__.py").write_text(FAKE_VLLM)
    (package / "lora" / "__init__.py").write_text("")
    (package / "lora" / "request.py").write_text(FAKE_LORA)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m == "vllm" or m.startswith("vllm.")]:
        monkeypatch.delitem(sys.modules, name)
    import vllm

    vllm.CALLS.clear()
    return vllm


@pytest.fixture
def adapter_dir(tmp_path):
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"r": 12, "rank_pattern": {}}))
    return folder


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_the_backend_choice_reads_the_environment(monkeypatch):
    monkeypatch.delenv(serve_vllm.BACKEND_ENV, raising=False)
    assert serve_vllm.backend_choice() == "auto"
    monkeypatch.setenv(serve_vllm.BACKEND_ENV, " Transformers ")
    assert serve_vllm.backend_choice() == "transformers"
    monkeypatch.setenv(serve_vllm.BACKEND_ENV, "llama.cpp")
    with pytest.raises(ValueError, match="auto, transformers or vllm"):
        serve_vllm.backend_choice()


def test_vllm_is_used_only_when_installed_and_a_gpu_is_present(monkeypatch, fake_vllm):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert serve_vllm.vllm_usable() == (False, "no CUDA GPU")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert serve_vllm.vllm_usable()[0]
    monkeypatch.setattr(serve_vllm.importlib.util, "find_spec", lambda name: None)
    assert serve_vllm.vllm_usable() == (False, "vllm is not installed")


def test_without_vllm_transformers_answers(monkeypatch):
    monkeypatch.delenv(serve_vllm.BACKEND_ENV, raising=False)
    monkeypatch.setattr(serve_vllm, "vllm_usable", lambda: (False, "vllm is not installed"))
    worker = serve.make_worker(TINY_MODEL_ID, None)
    assert (worker.backend, worker.device) == ("transformers", "cpu")


def test_a_vllm_that_fails_to_start_falls_back_to_transformers_unless_asked_for(monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(serve_vllm, "vllm_usable", lambda: (True, "test"))
    monkeypatch.setattr(serve_vllm, "VllmWorker", broken)
    monkeypatch.delenv(serve_vllm.BACKEND_ENV, raising=False)
    assert serve.make_worker(TINY_MODEL_ID, None).backend == "transformers"
    assert "vLLM could not start (RuntimeError: CUDA out of memory)" in capsys.readouterr().err
    monkeypatch.setenv(serve_vllm.BACKEND_ENV, "vllm")
    with pytest.raises(RuntimeError, match="out of memory"):
        serve.make_worker(TINY_MODEL_ID, None)


def test_lora_ranks_round_up_to_what_vllm_accepts(tmp_path, adapter_dir):
    assert serve_vllm.lora_rank_limit(str(adapter_dir)) == 16
    (adapter_dir / "adapter_config.json").write_text(json.dumps({"r": 8, "rank_pattern": {"q_proj": 40}}))
    assert serve_vllm.lora_rank_limit(str(adapter_dir)) == 64
    assert serve_vllm.lora_rank_limit(str(tmp_path / "missing")) == 16
    assert serve_vllm.lora_rank_limit(None) == 16


def test_the_vllm_worker_streams_deltas_with_the_adapter_or_without(fake_vllm, adapter_dir, monkeypatch):
    monkeypatch.setattr(serve_vllm, "vllm_usable", lambda: (True, "test"))
    monkeypatch.delenv(serve_vllm.BACKEND_ENV, raising=False)
    worker = serve.make_worker(TINY_MODEL_ID, str(adapter_dir))
    assert isinstance(worker, serve_vllm.VllmWorker)
    assert (worker.backend, worker.device, worker.has_adapter) == ("vllm", "cuda", True)
    (kind, engine_args), *_ = fake_vllm.CALLS
    assert kind == "engine"
    assert engine_args["enable_lora"] is True and engine_args["max_lora_rank"] == 16
    assert engine_args["max_model_len"] == worker.context

    out = io.StringIO()
    request = ChatRequest(id="r1", messages=[{"role": "user", "content": "hi"}], max_new_tokens=8)
    worker.answer(request, Replies(out), threading.Event())
    got = lines(out)
    assert [g["text"] for g in got[:-1]] == ["Hello", " there", "!"]
    assert all(g["id"] == "r1" and g["type"] == "delta" for g in got[:-1])
    done = got[-1]
    assert done["type"] == "done" and done["tokens"] == 3 and not done["cancelled"], done
    assert done["seconds"] >= done["first_token_seconds"] >= 0
    _, prompt, params, request_id, lora = fake_vllm.CALLS[-1]
    assert prompt["prompt_token_ids"] == worker.prompt_ids(request)
    assert params == {"max_tokens": 8, "temperature": 0.0, "skip_special_tokens": True}
    assert request_id.startswith("r1-")
    assert lora.lora_path == str(adapter_dir)

    # The base model: no LoRA request; sampling with a temperature.
    out = io.StringIO()
    base = ChatRequest(
        id="r2", messages=[{"role": "user", "content": "hi"}], max_new_tokens=2, temperature=0.7, adapter=False
    )
    worker.answer(base, Replies(out), threading.Event())
    _, _, params, _, lora = fake_vllm.CALLS[-1]
    assert lora is None
    assert params["temperature"] == 0.7 and params["max_tokens"] == 2
    assert "".join(g.get("text", "") for g in lines(out)) == "Hello there"


def test_a_cancelled_vllm_request_is_aborted(fake_vllm, monkeypatch):
    monkeypatch.setattr(serve_vllm, "vllm_usable", lambda: (True, "test"))
    worker = serve.make_worker(TINY_MODEL_ID, None)
    cancelled = threading.Event()
    cancelled.set()
    out = io.StringIO()
    request = ChatRequest(id="c1", messages=[{"role": "user", "content": "hi"}])
    worker.answer(request, Replies(out), cancelled)
    (done,) = lines(out)
    assert done["type"] == "done" and done["cancelled"] is True and done["tokens"] == 0
    assert worker.engine.aborted and worker.engine.aborted[0].startswith("c1-")
