"""Serve mode: ``python -m brightrun_trainer serve`` answers JSON-line chat requests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from brightrun_trainer.serve import ChatRequest, RequestError, parse_request

from conftest import TINY_MODEL_ID, trainer_env

REPLY_TIMEOUT_SECONDS = 120


# ------------------------------------------------------------------------------ parsing


def test_parse_request_reads_a_full_request():
    request = parse_request(
        json.dumps(
            {
                "id": "r1",
                "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
                "max_new_tokens": 12,
                "temperature": 0.5,
                "adapter": False,
            }
        )
    )
    assert request == ChatRequest(
        id="r1",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        max_new_tokens=12,
        temperature=0.5,
        adapter=False,
    )


def test_parse_request_defaults():
    request = parse_request('{"id": "r2", "messages": [{"role": "user", "content": "hi"}]}')
    assert (request.max_new_tokens, request.temperature, request.adapter) == (256, 0.0, True)


def test_parse_request_reads_a_cancel():
    assert parse_request('{"type": "cancel", "id": "r1"}') == {"type": "cancel", "id": "r1"}


@pytest.mark.parametrize(
    "line, reason, request_id",
    [
        ("not json", "not JSON", ""),
        ("[1]", "not a JSON object", ""),
        ('{"messages": [{"role": "user", "content": "hi"}]}', '"id"', ""),
        ('{"id": "a"}', '"messages"', "a"),
        ('{"id": "a", "messages": []}', '"messages"', "a"),
        ('{"id": "a", "messages": [{"role": "tool", "content": "x"}]}', "role", "a"),
        ('{"id": "a", "messages": [{"role": "user", "content": 3}]}', "content", "a"),
        ('{"id": "a", "messages": [{"role": "user", "content": "x"}], "max_new_tokens": 0}', "max_new_tokens", "a"),
        ('{"id": "a", "messages": [{"role": "user", "content": "x"}], "temperature": -1}', "temperature", "a"),
        ('{"id": "a", "messages": [{"role": "user", "content": "x"}], "adapter": "yes"}', "adapter", "a"),
    ],
)
def test_parse_request_refuses_bad_requests(line, reason, request_id):
    with pytest.raises(RequestError) as caught:
        parse_request(line)
    assert reason in caught.value.args[0]
    assert caught.value.args[1] == request_id


# ------------------------------------------------------------------------------ the worker


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """A LoRA adapter over the tiny model (its B matrices nudged so it differs from the base)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    peft_model = get_peft_model(
        model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    )
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)
    out = tmp_path_factory.mktemp("adapter")
    peft_model.save_pretrained(out)
    return out


class ServeProcess:
    def __init__(self, *args: str):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "brightrun_trainer", "serve", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=trainer_env(),
        )

    def read(self) -> dict:
        line = self.process.stdout.readline()
        assert line, f"the worker ended: {self.process.stderr.read()[-3000:]}"
        return json.loads(line)

    def send(self, request: dict) -> None:
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()

    def reply(self, request_id: str) -> list[dict]:
        """Every line for ``request_id`` up to its ``done`` or ``error``."""
        lines = []
        while True:
            line = self.read()
            assert line.get("id") == request_id, line
            lines.append(line)
            if line["type"] in ("done", "error"):
                return lines

    def close(self) -> int:
        self.process.stdin.close()
        try:
            return self.process.wait(timeout=REPLY_TIMEOUT_SECONDS)
        finally:
            if self.process.poll() is None:
                self.process.kill()


@pytest.fixture(scope="module")
def worker(adapter_dir):
    serve = ServeProcess("--base", TINY_MODEL_ID, "--adapter", str(adapter_dir))
    try:
        ready = serve.read()
        assert ready["type"] == "ready", ready
        assert ready["device"] in ("cpu", "cuda")
        assert ready["adapter"] is True
        yield serve
    finally:
        if serve.process.poll() is None:
            serve.process.kill()


def chat(request_id: str, **extra) -> dict:
    return {"id": request_id, "messages": [{"role": "user", "content": "hi"}], "max_new_tokens": 8, **extra}


def test_a_request_streams_deltas_then_done(worker):
    worker.send(chat("r1"))
    lines = worker.reply("r1")
    deltas, done = lines[:-1], lines[-1]
    assert done["type"] == "done", lines
    assert all(line["type"] == "delta" and isinstance(line["text"], str) for line in deltas)
    assert deltas, "a random model says something within 8 tokens"
    assert 0 < done["tokens"] <= 8
    assert done["seconds"] >= done["first_token_seconds"] >= 0


def test_adapter_false_and_true_both_answer(worker):
    answers = {}
    for flag in (False, True):
        worker.send(chat(f"a-{flag}", adapter=flag))
        lines = worker.reply(f"a-{flag}")
        assert lines[-1]["type"] == "done", lines
        answers[flag] = "".join(line["text"] for line in lines[:-1])
    assert answers[False] != answers[True], "the nudged adapter changes the greedy answer"


def test_a_bad_request_is_an_error_and_the_next_one_works(worker):
    worker.send({"id": "bad"})
    (error,) = worker.reply("bad")
    assert error["type"] == "error" and "messages" in error["reason"]
    worker.send(chat("after", temperature=0.7))
    assert worker.reply("after")[-1]["type"] == "done"


def test_requests_queue_and_end_of_input_ends_the_worker(adapter_dir):
    serve = ServeProcess("--base", TINY_MODEL_ID)
    try:
        assert serve.read()["type"] == "ready"
        serve.send(chat("q1"))
        serve.send(chat("q2", messages=[{"role": "system", "content": "x"}, {"role": "user", "content": "y" * 9000}]))
        assert serve.reply("q1")[-1]["type"] == "done"
        assert serve.reply("q2")[-1]["type"] == "done", "a long prompt is cut to the context"
        assert serve.close() == 0
    finally:
        if serve.process.poll() is None:
            serve.process.kill()


def test_a_base_missing_from_the_offline_cache_is_a_fatal_naming_it_and_hf_hub_offline(tmp_path):
    process = subprocess.run(
        [sys.executable, "-m", "brightrun_trainer", "serve", "--base", "brightrun-test/not-cached"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=trainer_env(HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1"),
        timeout=REPLY_TIMEOUT_SECONDS,
    )
    assert process.returncode == 1, process.stderr[-3000:]
    (fatal,) = [json.loads(line) for line in process.stdout.splitlines()]
    assert fatal["type"] == "fatal", fatal
    assert "brightrun-test/not-cached" in fatal["reason"], fatal
    assert "HF_HUB_OFFLINE" in fatal["reason"], fatal
    assert "offline cache" in fatal["reason"], fatal
