"""The RunPod worker (trainer/runpod/handler.py) run through the runpod SDK's local modes.

``handler.py --test_input`` is the SDK's local test mode: one job, run in this machine's
process, on the tiny model, the dataset and the adapter going through presigned URLs served
by a loopback object store. The SDK's local API server (``--rp_serve_api``) is the other
local mode: its ``/runsync`` iterates the generator handler itself, unchanged. Fake trainers
(scripts standing in for ``python -m brightrun_trainer``) pin the exit and signal rules
without the cost of torch.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from runpod_support import (  # noqa: F401  (object_store is a fixture)
    HANDLER,
    ObjectStore,
    object_store,
    presigned_spec,
    runpod_python,
    sha256,
    worker_env,
)

TIMEOUT = 300


def events_of(stdout: str) -> list[dict]:
    """The event lines among the SDK's log lines on the handler's stdout."""
    events = []
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict) and "type" in event and "seq" in event:
            events.append(event)
    return events


def run_local(job_input, env=None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [runpod_python(), str(HANDLER), "--test_input", json.dumps({"input": job_input})],
        capture_output=True,
        text=True,
        env=env or worker_env(),
        cwd=cwd,
        timeout=TIMEOUT,
    )


def fake_trainer(tmp_path: Path, body: str) -> str:
    """An executable standing in for the trainer's python: ``FAKE -m brightrun_trainer run
    --spec F`` runs ``body`` (Python) with the spec path as ``sys.argv[-1]``."""
    script = tmp_path / "fake_trainer.py"
    script.write_text("import json, os, signal, sys, time\n" + body)
    launcher = tmp_path / "fake-python"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{script}" "$@"\n')
    launcher.chmod(0o755)
    return str(launcher)


# ------------------------------------------------------------------ the real trainer


def test_local_test_mode_trains_through_presigned_urls(tmp_path, object_store, tiny_model_dir):
    spec = presigned_spec(tmp_path, object_store, "local", max_steps=3)
    result = run_local(spec, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    events = events_of(result.stdout)
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert [e["stage"] for e in events if e["type"] == "stage"] == [
        "initializing",
        "training",
        "saving",
        "completed",
    ]
    assert [e["step"] for e in events if e["type"] == "metric"] == [1, 2, 3]
    assert events[-1]["type"] == "done" and not [e for e in events if e["type"] == "error"]
    (artifact,) = [e for e in events if e["type"] == "artifact"]
    delivered = {entry["path"]: entry for entry in artifact["files"]}
    assert {"adapter_config.json", "adapter_model.safetensors"} <= set(delivered)
    adapter = tmp_path / "adapter-from-urls"
    adapter.mkdir()
    for name, entry in delivered.items():
        body = object_store.objects[f"/models/local/{name}"]
        assert len(body) == entry["size"] and sha256(body) == entry["sha256"]
        (adapter / name).write_bytes(body)
    assert object_store.puts and all(p.startswith("/models/local/") for p in object_store.puts)
    # The SDK's summary line says the local job passed.
    assert "Job local_test completed successfully." in result.stdout

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "brightrun/tiny-random-llama"
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model = PeftModel.from_pretrained(base, adapter)
    lora = [name for name, _ in model.named_parameters() if "lora_" in name]
    assert lora and all(("q_proj" in n or "v_proj" in n) for n in lora)


def test_sdk_local_api_runsync_iterates_the_generator(tmp_path):
    """``--rp_serve_api``: the SDK drives the async generator itself; a dataset URL that
    answers 404 ends the trainer with an infrastructure error, which is the job's last
    event (the job itself completes: the handler does not raise)."""
    store = ObjectStore()
    try:
        spec = presigned_spec(tmp_path, store, "gone")
        del store.objects["/datasets/gone.jsonl"]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = subprocess.Popen(
            [runpod_python(), str(HANDLER), "--rp_serve_api", "--rp_api_port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=worker_env(),
            cwd=tmp_path,
        )
        try:
            body = json.dumps({"input": spec}).encode()
            deadline = time.monotonic() + 60
            while True:
                try:
                    request = urllib.request.Request(
                        f"http://localhost:{port}/runsync",
                        body,
                        {"Content-Type": "application/json"},
                    )
                    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                        answer = json.loads(response.read())
                    break
                except (ConnectionError, urllib.error.URLError):
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise
                    time.sleep(0.3)
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        store.close()
    assert answer["status"] == "COMPLETED", answer
    events = answer["output"]
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert events[-1]["type"] == "error" and events[-1]["kind"] == "infrastructure", events[-1]
    assert "secret" not in json.dumps(events)  # presigned query strings are never logged


# ------------------------------------------------------------------ exit and signal rules


def test_trainer_exit_without_done_or_error_is_an_infrastructure_error(tmp_path):
    python = fake_trainer(
        tmp_path,
        'print(json.dumps({"type": "stage", "seq": 0, "ts": time.time(), "stage": "initializing",'
        ' "message": "x"}), flush=True)\n'
        'print("Traceback: boom at the end", file=sys.stderr, flush=True)\n'
        "sys.exit(3)\n",
    )
    result = run_local({"version": 1}, env=worker_env(BRIGHTRUN_TRAINER_PYTHON=python))
    assert result.returncode == 1, result.stdout  # the SDK's local mode: the job failed
    events = events_of(result.stdout)
    assert [e["type"] for e in events] == ["stage", "error"]
    error = events[1]
    assert error["seq"] == 1 and error["kind"] == "infrastructure"
    assert "exited with status 3" in error["reason"]
    assert "boom at the end" in error["detail"]
    assert isinstance(error["ts"], float)


def test_trainer_error_event_is_passed_through_without_a_synthetic_one(tmp_path):
    python = fake_trainer(
        tmp_path,
        'print(json.dumps({"type": "error", "seq": 0, "ts": time.time(), "kind": "training",'
        ' "reason": "spec field `x`: bad", "detail": ""}), flush=True)\n'
        "sys.exit(1)\n",
    )
    result = run_local({"version": 1}, env=worker_env(BRIGHTRUN_TRAINER_PYTHON=python))
    assert result.returncode == 1
    events = events_of(result.stdout)
    assert [(e["type"], e["seq"], e.get("kind")) for e in events] == [("error", 0, "training")]


def test_sigterm_to_the_handler_reaches_the_trainer(tmp_path):
    """The trainer gets the SIGTERM, checkpoints and exits 143; its last events are still
    yielded, then a synthetic error naming status 143; then the handler process takes the
    signal itself (local mode: the default action)."""
    marker = tmp_path / "got-signal"
    python = fake_trainer(
        tmp_path,
        "def stop(signum, frame):\n"
        f"    open({str(marker)!r}, 'w').write(str(signum))\n"
        '    print(json.dumps({"type": "checkpoint", "seq": 2, "ts": time.time(), "step": 1,'
        ' "epoch": 0.1, "loss": 1.0, "path": "/tmp/checkpoint-1"}), flush=True)\n'
        '    print(json.dumps({"type": "log", "seq": 3, "ts": time.time(), "level": "info",'
        ' "message": "stopped by signal 15 at step 1"}), flush=True)\n'
        "    os._exit(143)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        'print(json.dumps({"type": "stage", "seq": 0, "ts": time.time(), "stage": "training",'
        ' "message": "x"}), flush=True)\n'
        'print(json.dumps({"type": "metric", "seq": 1, "ts": time.time(), "step": 1}), flush=True)\n'
        "time.sleep(120)\n",
    )
    process = subprocess.Popen(
        [runpod_python(), str(HANDLER), "--test_input", json.dumps({"input": {"version": 1}})],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=worker_env(BRIGHTRUN_TRAINER_PYTHON=python),
    )
    lines = []
    try:
        for line in process.stdout:
            lines.append(line)
            if '"type": "metric"' in line:
                process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    events = events_of("".join(lines))
    assert marker.read_text() == str(int(signal.SIGTERM))
    assert [e["type"] for e in events] == ["stage", "metric", "checkpoint", "log", "error"]
    assert [e["seq"] for e in events] == [0, 1, 2, 3, 4]
    assert "143" in events[-1]["reason"] and events[-1]["kind"] == "infrastructure"
    assert returncode == -signal.SIGTERM


def test_the_worker_and_the_tests_pin_the_same_sdk():
    from runpod_support import REPO_ROOT

    def pin(path):
        lines = (REPO_ROOT / path).read_text().splitlines()
        return [line.strip() for line in lines if line.strip().startswith("runpod==")]

    assert pin("trainer/runpod/requirements.txt") == pin("scripts/requirements-tools.txt")
    assert len(pin("trainer/runpod/requirements.txt")) == 1
