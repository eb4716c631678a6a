"""BrightRun's RunPod Serverless worker: the trainer behind a generator handler.

``job["input"]`` is the trainer's job spec (trainer/PROTOCOL.md), with the dataset as
``{"url": presigned GET}`` and the output as ``{"presigned_put": {...}}``. The handler writes
the spec to a temporary file, runs ``python -m brightrun_trainer run --spec FILE`` as a child
process (``$BRIGHTRUN_TRAINER_PYTHON``, else this interpreter) and yields every event line of
its stdout as a dict, unchanged (``type``, ``seq``, ``ts``, ...). The trainer's stderr is
echoed to ours (the worker's log) and its last lines are kept: when the trainer exits without
a ``done`` or ``error`` event the handler yields one synthetic ``error`` event of kind
``infrastructure`` whose reason names the exit status and whose detail is that stderr tail.

``return_aggregate_stream`` makes the job's final output the list of every event, so the
engine can fill in, by ``seq``, any streamed event it missed.

Stopping: a SIGTERM to this process while a trainer runs is forwarded to the trainer, which
checkpoints at the next step boundary and exits 143; its last events are still yielded, then
the signal is handed to whatever handled SIGTERM before (the SDK's worker shutdown, or the
default action). A job the SDK stops (RunPod's cancel or execution timeout: the job's task is
cancelled) or a generator closed early stops the trainer the same way, waiting up to
``$BRIGHTRUN_RUNPOD_STOP_GRACE`` seconds (default 120) before killing it.

Run locally: ``python handler.py --test_input '{"input": SPEC}'`` (the SDK's local test mode)
prints each event as a JSON line on stdout among the SDK's own log lines and exits 1 when the
run ends in an ``error`` event; ``python handler.py --rp_serve_api`` serves the SDK's local
test API (``/runsync`` answers the aggregated events).
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import runpod

# Where the trainer package sits beside this file (trainer/runpod/ → trainer/), in the
# repository and in the worker image alike; it goes on the trainer's PYTHONPATH.
TRAINER_DIR = Path(__file__).resolve().parents[1]
STDERR_TAIL_LINES = 25
STDERR_TAIL_CHARS = 4000
TERMINAL_EVENTS = ("done", "error")
# Events are small JSON lines; an artifact event listing many files can still exceed
# asyncio's 64 KiB default line limit.
LINE_LIMIT_BYTES = 16 * 1024 * 1024


def _stop_grace_seconds() -> float:
    try:
        return float(os.environ.get("BRIGHTRUN_RUNPOD_STOP_GRACE", "120"))
    except ValueError:
        return 120.0


def trainer_command(spec_path: str) -> list[str]:
    python = os.environ.get("BRIGHTRUN_TRAINER_PYTHON") or sys.executable
    return [python, "-m", "brightrun_trainer", "run", "--spec", spec_path]


def trainer_env() -> dict[str, str]:
    env = dict(os.environ)
    if (TRAINER_DIR / "brightrun_trainer").is_dir():
        parts = [str(TRAINER_DIR), env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in parts if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def exit_description(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name} (exit status {returncode})"
    if returncode > 128:
        try:
            name = signal.Signals(returncode - 128).name
            return f"exited with status {returncode} ({name})"
        except ValueError:
            pass
    return f"exited with status {returncode}"


class _SigtermForwarder:
    """While a trainer runs, SIGTERM to this process goes to the trainer instead.

    Only possible in the main thread (Python's rule); elsewhere the forwarder does nothing
    and a stop reaches the trainer through the generator's cleanup instead.
    """

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.received: int | None = None
        self.previous: Any = None
        self.installed = False

    def __enter__(self) -> _SigtermForwarder:
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, self._forward)
            # None: a handler not installed from Python; the default action is the safe guess.
            self.previous = signal.SIG_DFL if previous is None else previous
            self.installed = True
        return self

    def _forward(self, signum: int, frame) -> None:
        self.received = signum
        if self.process.returncode is None:
            try:
                self.process.send_signal(signum)
            except ProcessLookupError:
                pass

    def restore(self) -> None:
        """Put the previous handler back and hand it the signal this job deferred."""
        if not self.installed:
            return
        self.installed = False
        signal.signal(signal.SIGTERM, self.previous)
        if self.received is None:
            return
        if callable(self.previous):
            self.previous(self.received, None)
        elif self.previous == signal.SIG_DFL:
            os.kill(os.getpid(), self.received)

    def __exit__(self, *exc) -> None:
        self.restore()


async def _drain_stderr(stream: asyncio.StreamReader, tail: collections.deque) -> None:
    while True:
        line = await stream.readline()
        if not line:
            return
        text = line.decode("utf-8", "replace")
        tail.append(text.rstrip("\n"))
        sys.stderr.write(text)
        sys.stderr.flush()


async def _stop(process: asyncio.subprocess.Process, grace: float) -> None:
    """SIGTERM (the trainer checkpoints), then SIGKILL after ``grace`` seconds."""
    if process.returncode is not None:
        return
    try:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), timeout=grace)
    except ProcessLookupError:
        pass
    except asyncio.TimeoutError:  # (TimeoutError itself only from 3.11)
        process.kill()
        await process.wait()


def _stderr_detail(tail: collections.deque) -> str:
    return "\n".join(tail)[-STDERR_TAIL_CHARS:]


async def handler(job: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    """The RunPod job handler: yields the trainer's events as they come."""
    workdir = tempfile.mkdtemp(prefix="brightrun-runpod-")
    spec_path = os.path.join(workdir, "spec.json")
    with open(spec_path, "w", encoding="utf-8") as spec_file:
        json.dump(job.get("input"), spec_file)

    process = await asyncio.create_subprocess_exec(
        *trainer_command(spec_path),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=trainer_env(),
        cwd=workdir,
        limit=LINE_LIMIT_BYTES,
    )
    tail: collections.deque = collections.deque(maxlen=STDERR_TAIL_LINES)
    stderr_task = asyncio.ensure_future(_drain_stderr(process.stderr, tail))
    forwarder = _SigtermForwarder(process).__enter__()
    last_seq = -1
    terminal = False
    try:
        while True:
            line = await process.stdout.readline()
            if not line:
                break
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                event = None
            if not isinstance(event, dict):
                # The trainer keeps stdout for events; anything else is kept as a log line.
                tail.append(line.decode("utf-8", "replace").rstrip("\n"))
                continue
            if isinstance(event.get("seq"), int):
                last_seq = max(last_seq, event["seq"])
            if event.get("type") in TERMINAL_EVENTS:
                terminal = True
            yield event
        returncode = await process.wait()
        await stderr_task
        if not terminal:
            yield {
                "type": "error",
                "seq": last_seq + 1,
                "ts": time.time(),
                "kind": "infrastructure",
                "reason": f"the trainer {exit_description(returncode)} "
                "without a done or error event",
                "detail": _stderr_detail(tail),
            }
    finally:
        # Reached early when the SDK cancels the job or the generator is closed: stop the
        # trainer as a cancel would (checkpoint first), never leave it running.
        try:
            await _stop(process, _stop_grace_seconds())
        finally:
            if not stderr_task.done():
                stderr_task.cancel()
            shutil.rmtree(workdir, ignore_errors=True)
            forwarder.restore()


async def run_local_test(job: dict[str, Any]) -> dict[str, Any]:
    """The SDK's ``--test_input`` mode calls the handler once without iterating a generator:
    this plain coroutine iterates it, prints each event as a JSON line and returns them all
    (with ``error`` set when the run failed, so the local run exits 1)."""
    events = []
    async for event in handler(job):
        print(json.dumps(event), flush=True)
        events.append(event)
    result: dict[str, Any] = {"events": events}
    if events and events[-1].get("type") == "error":
        result["error"] = events[-1].get("reason") or "the trainer failed"
    return result


# What the worker starts with; the hosted-API stand-in (tests/fixtures/runpod_standin.py)
# reads it to drive the handler the way the SDK's worker does.
CONFIG: dict[str, Any] = {"handler": handler, "return_aggregate_stream": True}


def _sdk_runs_one_local_job(argv: list[str]) -> bool:
    """True where ``runpod.serverless.start`` would run one local job through ``run_job``
    (which calls a handler but never iterates a generator): ``--test_input`` or
    ``test_input.json``, outside RunPod and the SDK's local API server."""
    if "--rp_serve_api" in argv or os.environ.get("RUNPOD_REALTIME_PORT"):
        return False
    return any(a == "--test_input" or a.startswith("--test_input=") for a in argv) or (
        os.environ.get("RUNPOD_WEBHOOK_GET_JOB") is None
    )


if __name__ == "__main__":
    if _sdk_runs_one_local_job(sys.argv[1:]):
        runpod.serverless.start({"handler": run_local_test})
    else:
        runpod.serverless.start(CONFIG)
