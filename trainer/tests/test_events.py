"""The event stream: numbering, JSON validity under threads, and a stdout nobody else writes to."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
import threading

import pytest
from conftest import trainer_env

from brightrun_trainer.errors import (
    INFRASTRUCTURE,
    TRAINING,
    InfrastructureError,
    SpecError,
    classify,
    one_line_reason,
    traceback_tail,
)
from brightrun_trainer.events import EventEmitter


def parse(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_events_are_numbered_stamped_and_typed():
    out = io.StringIO()
    emitter = EventEmitter(out, clock=iter([10.0, 11.5, 12.0]).__next__)
    emitter.stage("initializing", "reading the job spec")
    emitter.info("hello")
    emitter.done({"total_steps": 3})
    events = parse(out)
    assert [(e["type"], e["seq"], e["ts"]) for e in events] == [("stage", 0, 10.0), ("log", 1, 11.5), ("done", 2, 12.0)]
    assert events[0]["stage"] == "initializing" and events[1]["level"] == "info"


def test_non_finite_numbers_become_null():
    out = io.StringIO()
    EventEmitter(out).emit("metric", step=1, training_loss=float("nan"), gradient_norm=float("inf"), extra=[float("-inf")])
    (event,) = parse(out)
    assert event["training_loss"] is None and event["gradient_norm"] is None and event["extra"] == [None]


def test_unknown_stage_or_level_is_a_programming_error():
    emitter = EventEmitter(io.StringIO())
    with pytest.raises(ValueError):
        emitter.stage("finished", "")
    with pytest.raises(ValueError):
        emitter.log("debug", "")


def test_concurrent_emitters_never_interleave_and_seq_follows_file_order():
    out = io.StringIO()
    emitter = EventEmitter(out)

    def burst(worker: int) -> None:
        for i in range(200):
            emitter.info(f"worker {worker} message {i} " + "x" * 200)

    threads = [threading.Thread(target=burst, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    events = parse(out)
    assert [e["seq"] for e in events] == list(range(1600))


def test_stdout_carries_only_events_even_when_libraries_print():
    script = textwrap.dedent(
        """
        import os, sys
        from brightrun_trainer.events import EventEmitter, claim_stdout
        emitter = EventEmitter(claim_stdout())
        print("chatter from print")
        os.write(1, b"chatter from C code\\n")
        emitter.info("only me")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=trainer_env())
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["message"] == "only me"
    assert "chatter from print" in result.stderr and "chatter from C code" in result.stderr


def test_error_classification():
    assert classify(SpecError("bad")) == TRAINING
    assert classify(InfrastructureError("down")) == INFRASTRUCTURE
    assert classify(ImportError("No module named 'peft'")) == INFRASTRUCTURE
    assert classify(ConnectionResetError()) == INFRASTRUCTURE
    assert classify(OSError(28, "No space left on device")) == INFRASTRUCTURE
    assert classify(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")) == TRAINING
    assert classify(RuntimeError("CUDA error: an illegal memory access was encountered")) == INFRASTRUCTURE
    assert classify(ValueError("shapes do not match")) == TRAINING


def test_reason_is_one_line_and_detail_holds_the_traceback():
    try:
        raise RuntimeError("CUDA out of memory.\nTried to allocate 20.00 GiB")
    except RuntimeError as exc:
        reason, detail = one_line_reason(exc), traceback_tail(exc)
    assert "\n" not in reason and reason.startswith("out of memory: lower batch_size")
    assert "Traceback" in detail and "RuntimeError" in detail
