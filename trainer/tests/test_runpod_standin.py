"""The stand-in of RunPod Serverless's hosted API (tests/fixtures/runpod_standin.py).

The Rust backend's tests run against it, so it is tested here: its states, the stream read
once, the aggregated output, cancel reaching the real trainer (a checkpoint, then a stop),
execution timeouts, a worker crash, and the 401 / 404 / 429 answers. Every job runs the real
handler and the real trainer on the tiny model, through presigned URLs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from runpod_support import (  # noqa: F401  (object_store is a fixture)
    STANDIN,
    object_store,
    presigned_spec,
    runpod_python,
    worker_env,
)

KEY = "standin-test-key"
ENDPOINT = "brightrun-ep"
POLL = 0.1


class Api:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def call(self, method: str, path: str, body: Any = None, key: str | None = KEY):
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if key is not None:
            request.add_header("Authorization", f"Bearer {key}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def ok(self, method: str, path: str, body: Any = None):
        status, answer = self.call(method, path, body)
        assert status == 200, (status, answer)
        return answer

    def v2(self, method: str, action: str, body: Any = None):
        return self.ok(method, f"/v2/{ENDPOINT}/{action}", body)

    def record(self, job_id: str) -> dict:
        return self.ok("GET", f"/_standin/jobs/{job_id}")

    def wait(self, job_id: str, predicate, timeout: float = 240, what: str = "") -> dict:
        deadline = time.monotonic() + timeout
        while True:
            record = self.record(job_id)
            if predicate(record):
                return record
            assert time.monotonic() < deadline, f"timed out waiting for {what}: {record}"
            time.sleep(POLL)


@pytest.fixture(scope="module")
def api(tmp_path_factory, isolated_cache):
    from brightrun_trainer.tiny_model import ensure_tiny_model

    ensure_tiny_model()  # in the shared cache, before the first job needs it
    process = subprocess.Popen(
        [
            runpod_python(),
            str(STANDIN),
            "--port",
            "0",
            "--api-key",
            KEY,
            "--endpoint",
            ENDPOINT,
            "--workers",
            "1",
            "--kill-grace",
            "3",
            "--cancel-grace",
            "60",
            "--min-execution-timeout-ms",
            "1000",
            "--exit-on-stdin-eof",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=open(tmp_path_factory.mktemp("standin") / "stderr.log", "w"),
        text=True,
        env=worker_env(),
    )
    port = int(process.stdout.readline())
    yield Api(port)
    process.stdin.close()  # --exit-on-stdin-eof: it stops and kills its workers
    process.wait(timeout=30)


def run_body(spec: dict, **policy: Any) -> dict:
    body: dict[str, Any] = {"input": spec}
    if policy:
        body["policy"] = policy
    return body


# ------------------------------------------------------------------ auth, ids, rate limits


def test_auth_unknown_ids_and_bad_requests(api):
    assert api.call("GET", f"/v2/{ENDPOINT}/health", key=None)[0] == 401
    assert api.call("GET", f"/v2/{ENDPOINT}/health", key="wrong")[0] == 401
    assert api.call("POST", f"/v2/{ENDPOINT}/run", {"input": {}}, key=None)[0] == 401
    assert api.call("GET", "/v2/no-such-endpoint/health")[0] == 404
    for method, action in [("GET", "status"), ("GET", "stream"), ("POST", "cancel")]:
        status, answer = api.call(method, f"/v2/{ENDPOINT}/{action}/no-such-job")
        assert status == 404, (action, answer)
    assert api.call("POST", f"/v2/{ENDPOINT}/run", {"policy": {}})[0] == 400
    assert api.call("POST", f"/v2/{ENDPOINT}/run", b"{not json")[0] == 400
    assert api.call("POST", f"/v2/{ENDPOINT}/run", b"{not json", key=None)[0] == 401
    too_short = {"input": {}, "policy": {"executionTimeout": 999}}
    assert api.call("POST", f"/v2/{ENDPOINT}/run", too_short)[0] == 400
    health = api.v2("GET", "health")
    assert set(health["jobs"]) == {"completed", "failed", "inProgress", "inQueue", "retried"}
    assert {"idle", "running"} <= set(health["workers"])


def test_rate_limit_answers_429(api):
    api.ok("POST", "/_standin/fail-next", {"status": 429, "count": 2})
    assert api.call("GET", f"/v2/{ENDPOINT}/health")[0] == 429
    assert api.call("GET", f"/v2/{ENDPOINT}/health")[0] == 429
    assert api.call("GET", f"/v2/{ENDPOINT}/health")[0] == 200
    api.ok("POST", "/_standin/rate-limit", {"per_second": 3})
    try:
        statuses = [api.call("GET", f"/v2/{ENDPOINT}/health")[0] for _ in range(6)]
    finally:
        api.ok("POST", "/_standin/rate-limit", {"per_second": 0})
    assert statuses[:3] == [200, 200, 200] and 429 in statuses[3:], statuses
    assert api.ok("GET", "/_standin/stats")["rateLimited"] >= 3


# ------------------------------------------------------------------ a job, start to end


def test_states_stream_and_aggregated_output(api, tmp_path, object_store):
    spec = presigned_spec(tmp_path, object_store, "lifecycle", max_steps=4)
    api.ok("POST", "/_standin/pause")
    try:
        submitted = api.v2("POST", "run", run_body(spec, executionTimeout=300_000))
        assert submitted["status"] == "IN_QUEUE" and set(submitted) == {"id", "status"}
        job_id = submitted["id"]
        time.sleep(0.3)
        assert api.v2("GET", f"status/{job_id}") == {"id": job_id, "status": "IN_QUEUE"}
        assert api.v2("GET", "health")["jobs"]["inQueue"] == 1
        # Nothing to stream before the job starts.
        assert api.v2("GET", f"stream/{job_id}") == {"status": "IN_QUEUE", "stream": []}
    finally:
        api.ok("POST", "/_standin/resume")

    seen_states, streamed, dropped_asked = [], [], False
    deadline = time.monotonic() + 240
    while True:
        status = api.v2("GET", f"status/{job_id}")
        if not seen_states or seen_states[-1] != status["status"]:
            seen_states.append(status["status"])
        chunk = api.v2("GET", f"stream/{job_id}")
        streamed += [item["output"] for item in chunk["stream"]]
        if status["status"] == "IN_PROGRESS" and not dropped_asked:
            assert api.v2("GET", "health")["jobs"]["inProgress"] == 1
            # Simulate a crash between reading the stream and storing it: two items lost.
            api.ok("POST", f"/_standin/jobs/{job_id}/drop-stream", {"count": 2})
            dropped_asked = True
        if chunk["status"] == "COMPLETED" and not chunk["stream"]:
            if seen_states[-1] != "COMPLETED":  # it finished between the two reads
                seen_states.append("COMPLETED")
            break
        assert time.monotonic() < deadline, status
        time.sleep(POLL)

    assert seen_states[0] in ("IN_QUEUE", "IN_PROGRESS") and "IN_PROGRESS" in seen_states
    assert seen_states[-1] == "COMPLETED"
    final = api.v2("GET", f"status/{job_id}")
    output = final["output"]
    assert [e["seq"] for e in output] == list(range(len(output)))
    assert output[-1]["type"] == "done"
    assert [e["step"] for e in output if e["type"] == "metric"] == [1, 2, 3, 4]
    assert final["executionTime"] > 0 and final["delayTime"] >= 300
    assert final["workerId"]
    # The stream is consumed on read: everything was delivered once, nothing is left.
    assert api.v2("GET", f"stream/{job_id}") == {"status": "COMPLETED", "stream": []}
    record = api.record(job_id)
    assert len(record["dropped"]) == 2
    # What the engine does after a crash: the aggregated output fills the gap, by seq.
    by_seq = {e["seq"]: e for e in streamed}
    assert len(by_seq) == len(streamed) == len(output) - 2
    missing = [e for e in output if e["seq"] not in by_seq]
    assert missing == record["dropped"]
    assert record["workerExitStatus"] == 0
    assert {
        "/models/lifecycle/adapter_config.json",
        "/models/lifecycle/adapter_model.safetensors",
    } <= set(object_store.objects)
    health = api.v2("GET", "health")
    assert health["jobs"]["completed"] >= 1 and health["jobs"]["inProgress"] == 0


# ------------------------------------------------------------------ stopping a job


def test_cancel_reaches_the_trainer_checkpoint_then_stop(api, tmp_path, object_store):
    spec = presigned_spec(
        tmp_path, object_store, "cancel", examples=32, hyperparameters={"epochs": 200}
    )
    job_id = api.v2("POST", "run", run_body(spec))["id"]
    streamed = []
    deadline = time.monotonic() + 240
    while not any(e["type"] == "metric" for e in streamed):
        chunk = api.v2("GET", f"stream/{job_id}")
        assert chunk["status"] in ("IN_QUEUE", "IN_PROGRESS"), chunk
        streamed += [item["output"] for item in chunk["stream"]]
        assert time.monotonic() < deadline
        time.sleep(POLL)
    assert api.v2("POST", f"cancel/{job_id}") == {"id": job_id, "status": "CANCELLED"}
    assert api.v2("GET", f"status/{job_id}")["status"] == "CANCELLED"
    record = api.wait(job_id, lambda r: r["workerExitStatus"] is not None, what="the worker's exit")
    assert record["status"] == "CANCELLED" and "output" not in api.v2("GET", f"status/{job_id}")
    # The worker (the handler) passed the SIGTERM to the trainer and then took it itself.
    assert record["workerExitStatus"] == 128 + signal.SIGTERM, record["workerStderrTail"]
    events = record["streamed"] + record["late"]
    assert [e["seq"] for e in events] == list(range(len(events)))
    tail = [e["type"] for e in events[-3:]]
    assert tail == ["checkpoint", "log", "error"], events[-4:]
    checkpoint, stopped, synthetic = events[-3:]
    assert "stopped by signal 15" in stopped["message"]
    assert "143" in synthetic["reason"] and synthetic["kind"] == "infrastructure"
    assert os.path.isfile(os.path.join(checkpoint["path"], "adapter_model.safetensors"))
    assert not any(e["type"] == "done" for e in events)
    # Nothing more is delivered on the stream of a cancelled job.
    assert api.v2("GET", f"stream/{job_id}")["status"] == "CANCELLED"


def test_cancel_while_queued_never_runs(api, tmp_path, object_store):
    spec = presigned_spec(tmp_path, object_store, "queued")
    api.ok("POST", "/_standin/pause")
    try:
        job_id = api.v2("POST", "run", run_body(spec))["id"]
        assert api.v2("POST", f"cancel/{job_id}")["status"] == "CANCELLED"
    finally:
        api.ok("POST", "/_standin/resume")
    time.sleep(0.5)
    record = api.record(job_id)
    assert record["status"] == "CANCELLED" and record["workerPid"] is None


def test_execution_timeout_is_timed_out_and_killed(api, tmp_path, object_store):
    spec = presigned_spec(
        tmp_path, object_store, "timeout", examples=32, hyperparameters={"epochs": 200}
    )
    job_id = api.v2("POST", "run", run_body(spec, executionTimeout=1500))["id"]
    record = api.wait(
        job_id, lambda r: r["status"] not in ("IN_QUEUE", "IN_PROGRESS"), what="timeout"
    )
    assert record["status"] == "TIMED_OUT"
    status = api.v2("GET", f"status/{job_id}")
    assert status["status"] == "TIMED_OUT" and "output" not in status
    assert 1500 <= status["executionTime"] < 10_000
    record = api.wait(job_id, lambda r: r["workerExitStatus"] is not None, timeout=30, what="kill")
    assert api.v2("GET", "health")["jobs"]["failed"] >= 1


def test_worker_crash_is_failed(api, tmp_path, object_store):
    spec = presigned_spec(
        tmp_path, object_store, "crash", examples=32, hyperparameters={"epochs": 200}
    )
    job_id = api.v2("POST", "run", run_body(spec))["id"]
    record = api.wait(job_id, lambda r: r["workerPid"] is not None, what="the worker")
    os.killpg(record["workerPid"], signal.SIGKILL)
    record = api.wait(job_id, lambda r: r["status"] == "FAILED", timeout=30, what="FAILED")
    status = api.v2("GET", f"status/{job_id}")
    assert status["status"] == "FAILED" and "-9" in status["error"]
    # /retry requeues it under the same id; cancel it again.
    assert api.v2("POST", f"retry/{job_id}") == {"id": job_id, "status": "IN_QUEUE"}
    assert api.v2("GET", "health")["jobs"]["retried"] == 1
    api.wait(job_id, lambda r: r["workerPid"] is not None, what="the retried worker")
    assert api.v2("POST", f"cancel/{job_id}")["status"] == "CANCELLED"
    record = api.wait(job_id, lambda r: r["workerExitStatus"] is not None, what="its exit")
    assert record["status"] == "CANCELLED"
