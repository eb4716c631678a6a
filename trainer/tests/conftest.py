"""Shared fixtures: an isolated model cache, dataset writers, specs, and a trainer runner.

End-to-end tests run the trainer exactly as the engine does, ``python -m brightrun_trainer
run --spec SPEC`` in a child process, and parse its stdout strictly: every line must be a
JSON event.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

TRAINER_DIR = Path(__file__).resolve().parents[1]
TINY_MODEL_ID = "brightrun/tiny-random-llama"
SUBPROCESS_TIMEOUT_SECONDS = 300


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory) -> Path:
    """Build the tiny model into a throwaway cache shared by the whole session."""
    cache = tmp_path_factory.mktemp("brightrun-cache")
    os.environ["BRIGHTRUN_CACHE_DIR"] = str(cache)
    os.environ["HF_HUB_OFFLINE"] = "1"
    return cache


@pytest.fixture(scope="session")
def tiny_model_dir(isolated_cache) -> Path:
    from brightrun_trainer.tiny_model import ensure_tiny_model

    return ensure_tiny_model()


def trainer_env(**extra: str) -> dict[str, str]:
    python_path = [str(TRAINER_DIR), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join(p for p in python_path if p),
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@dataclass
class TrainerRun:
    returncode: int
    events: list[dict[str, Any]]
    stderr: str

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["type"] == event_type]

    @property
    def stages(self) -> list[str]:
        return [event["stage"] for event in self.of_type("stage")]

    @property
    def metric_steps(self) -> list[int]:
        return [event["step"] for event in self.of_type("metric")]

    def describe(self) -> str:
        lines = [json.dumps(event)[:300] for event in self.events]
        return "\n".join(lines) + "\n--- stderr (tail) ---\n" + self.stderr[-3000:]


def run_trainer(
    spec_path: Path,
    *,
    on_event: Callable[[dict[str, Any], subprocess.Popen, list[dict[str, Any]]], None] | None = None,
    env: dict[str, str] | None = None,
) -> TrainerRun:
    """Run the trainer to completion, parsing stdout line by line as it arrives."""
    stderr_path = spec_path.with_suffix(".stderr")
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "brightrun_trainer", "run", "--spec", str(spec_path)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env or trainer_env(),
            cwd=spec_path.parent,
        )
        events: list[dict[str, Any]] = []
        try:
            for line in process.stdout:
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    pytest.fail(f"stdout carried a non-event line: {line!r}")
                events.append(event)
                if on_event is not None:
                    on_event(event, process, events)
            returncode = process.wait(timeout=SUBPROCESS_TIMEOUT_SECONDS)
        finally:
            if process.poll() is None:
                process.kill()
    return TrainerRun(returncode, events, stderr_path.read_text())


def run_in_process(spec_path: Path, stop=None) -> TrainerRun:
    """Run the trainer inside the test process: no torch import per run, no real signals."""
    import io

    from brightrun_trainer.events import EventEmitter
    from brightrun_trainer.runner import run
    from brightrun_trainer.signals import StopSignal

    out = io.StringIO()
    returncode = run(str(spec_path), EventEmitter(out), stop=stop or StopSignal())
    return TrainerRun(returncode, [json.loads(line) for line in out.getvalue().splitlines()], "")


def chat_records(count: int) -> list[dict[str, Any]]:
    """Small OpenAI-format conversations the tiny model can learn something from."""
    return [
        {
            "messages": [
                {"role": "system", "content": "Answer with a number."},
                {"role": "user", "content": f"What is {i} plus {i}?"},
                {"role": "assistant", "content": str(2 * i)},
            ]
        }
        for i in range(count)
    ]


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def make_spec(tmp_path: Path, dataset: dict[str, str], **overrides: Any) -> dict[str, Any]:
    """A complete, valid spec; ``hyperparameters`` overrides are merged key by key."""
    hyperparameters = {
        "learning_rate": 1e-3,
        "batch_size": 4,
        "gradient_accumulation_steps": 1,
        "epochs": 3,
        "lora_rank": 8,
        "lora_alpha": 16,
        "lora_dropout": 0.1,
        "target_modules": ["q_proj", "v_proj"],
        "warmup_ratio": 0.1,
        "warmup_steps": None,
        "weight_decay": 0.0,
        "scheduler": "cosine",
        "max_seq_length": 256,
        "seed": 42,
        "validation_split": 0.1,
        "use_validation": True,
        "quantization": "none",
    }
    hyperparameters.update(overrides.pop("hyperparameters", {}))
    spec = {
        "version": 1,
        "job_id": "00000000-0000-4000-8000-000000000001",
        "base_model": TINY_MODEL_ID,
        "dataset": dataset,
        "hyperparameters": hyperparameters,
        "output": {"dir": str(tmp_path / "adapter")},
        "checkpoint_dir": str(tmp_path / "checkpoints"),
        "resume_from": None,
        "logging_steps": 1,
        "max_steps": None,
    }
    spec.update(overrides)
    return spec


def write_spec(path: Path, spec: dict[str, Any]) -> Path:
    path.write_text(json.dumps(spec, indent=2))
    return path
