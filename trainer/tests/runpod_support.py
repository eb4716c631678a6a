"""Shared by the RunPod tests: the worker's python, a presigned-URL object store, specs.

The runpod SDK lives in the test tools' venv (scripts/requirements-tools.txt), not in the
trainer's: ``$BRIGHTRUN_RUNPOD_PYTHON`` names its python (scripts/test.sh exports it). The
handler starts the trainer with ``$BRIGHTRUN_TRAINER_PYTHON``, which the tests set to the
python running pytest (the trainer venv).
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import chat_records, make_spec, trainer_env

REPO_ROOT = Path(__file__).resolve().parents[2]
HANDLER = REPO_ROOT / "trainer" / "runpod" / "handler.py"
STANDIN = REPO_ROOT / "tests" / "fixtures" / "runpod_standin.py"
# Every name PROTOCOL.md says an adapter folder may hold: presign them all.
ADAPTER_FILES = [
    "adapter_config.json",
    "adapter_model.safetensors",
    "tokenizer_config.json",
    "tokenizer.json",
    "chat_template.jinja",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
]


def runpod_python() -> str:
    python = os.environ.get("BRIGHTRUN_RUNPOD_PYTHON")
    if not python:
        # Why a skip: the runpod SDK lives in the tools venv, not in the trainer venv this
        # pytest runs in, so a bare `pytest trainer/tests` cannot run the worker. The suite
        # (scripts/test.sh) always sets the variable, and under CI a missing one is a failure.
        if os.environ.get("CI"):
            pytest.fail("BRIGHTRUN_RUNPOD_PYTHON is not set under CI (scripts/test.sh sets it)")
        pytest.skip("BRIGHTRUN_RUNPOD_PYTHON is not set (scripts/test.sh sets it: the tools venv)")
    return python


def worker_env(**extra: str) -> dict[str, str]:
    """The environment the handler (and the trainer it starts) runs with in the tests."""
    settings = {"BRIGHTRUN_TRAINER_PYTHON": sys.executable, "TOKENIZERS_PARALLELISM": "false"}
    settings.update(extra)
    return trainer_env(**settings)


class ObjectStore:
    """A presigned-URL stand-in on loopback: GET serves ``objects``, PUT stores into it."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.puts: list[str] = []
        store = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = store.objects.get(self.path.split("?")[0])
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def do_PUT(self):
                path = self.path.split("?")[0]
                store.objects[path] = self.rfile.read(int(self.headers["Content-Length"]))
                store.puts.append(path)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"{self.base}{path}?X-Amz-Signature=secret"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def object_store():
    store = ObjectStore()
    yield store
    store.close()


def presigned_spec(
    tmp_path: Path, store: ObjectStore, name: str, examples: int = 16, **overrides: Any
) -> dict[str, Any]:
    """A spec whose dataset and adapter go through ``store``'s presigned URLs."""
    import json

    dataset = "".join(json.dumps(r) + "\n" for r in chat_records(examples)).encode()
    store.objects[f"/datasets/{name}.jsonl"] = dataset
    urls = {file: store.url(f"/models/{name}/{file}") for file in ADAPTER_FILES}
    defaults: dict[str, Any] = dict(
        output={"presigned_put": urls},
        job_id=f"00000000-0000-4000-8000-{abs(hash(name)) % 10**12:012d}",
        hyperparameters={"epochs": 1, "use_validation": False, "max_seq_length": 128},
        checkpoint_dir=str(tmp_path / f"checkpoints-{name}"),
    )
    hyperparameters = defaults.pop("hyperparameters")
    hyperparameters.update(overrides.pop("hyperparameters", {}))
    defaults.update(overrides)
    return make_spec(
        tmp_path,
        {"url": store.url(f"/datasets/{name}.jsonl")},
        hyperparameters=hyperparameters,
        **defaults,
    )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
