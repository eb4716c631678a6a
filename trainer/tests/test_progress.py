"""The training callback's event policy, driven directly with Trainer-like state."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace

import pytest
from transformers import TrainerControl

from brightrun_trainer.errors import TrainingError
from brightrun_trainer.events import EventEmitter
from brightrun_trainer.progress import ProgressReporter, TokenMeter
from brightrun_trainer.signals import StopSignal


class Harness:
    def __init__(self, *, has_validation=True, max_steps=10):
        self.out = io.StringIO()
        self.stop = StopSignal()
        self.tokens = TokenMeter()
        self.reporter = ProgressReporter(EventEmitter(self.out), self.stop, self.tokens, has_validation=has_validation)
        self.args = SimpleNamespace(output_dir="/ckpt")
        self.state = SimpleNamespace(global_step=0, max_steps=max_steps, epoch=0.0)
        self.control = TrainerControl()

    def step(self, loss: float, tokens: int = 100) -> None:
        import torch

        self.reporter.on_step_begin(self.args, self.state, self.control)
        self.tokens.add(torch.ones(tokens))
        self.state.global_step += 1
        self.state.epoch = self.state.global_step / 5
        self.reporter.on_step_end(self.args, self.state, self.control)
        self.reporter.on_log(self.args, self.state, self.control, logs={"loss": loss, "learning_rate": 1e-4, "grad_norm": 0.5})

    def events(self) -> list[dict]:
        return [json.loads(line) for line in self.out.getvalue().splitlines()]


def test_metric_is_written_once_per_step_with_throughput():
    h = Harness()
    h.step(2.0)
    h.step(1.5)
    h.reporter.flush()
    metrics = [e for e in h.events() if e["type"] == "metric"]
    assert [m["step"] for m in metrics] == [1, 2]
    assert metrics[0]["training_loss"] == 2.0 and metrics[0]["learning_rate"] == 1e-4
    assert metrics[0]["gradient_norm"] == 0.5 and metrics[0]["total_steps"] == 10
    assert metrics[0]["throughput"] > 0 and metrics[0]["validation_loss"] is None
    assert h.tokens.total == 200


def test_evaluation_merges_into_the_metric_of_its_step():
    h = Harness()
    h.step(2.0)
    h.reporter.on_evaluate(h.args, h.state, h.control, metrics={"eval_loss": 1.75})
    h.step(1.5)
    h.reporter.flush()
    metrics = [e for e in h.events() if e["type"] == "metric"]
    assert [(m["step"], m["validation_loss"]) for m in metrics] == [(1, 1.75), (2, None)]
    assert h.reporter.last_validation_loss == 1.75


def test_nan_loss_is_a_training_error():
    h = Harness()
    with pytest.raises(TrainingError, match="became nan at step 1"):
        h.step(float("nan"))


def test_epoch_end_evaluates_and_saves_except_after_the_last_step():
    h = Harness(max_steps=10)
    h.state.global_step = 5
    h.reporter.on_epoch_end(h.args, h.state, h.control)
    assert h.control.should_evaluate and h.control.should_save and h.control.should_log
    last = Harness(max_steps=10)
    last.state.global_step = 10
    last.reporter.on_epoch_end(last.args, last.state, last.control)
    assert not (last.control.should_evaluate or last.control.should_save)


def test_stop_request_checkpoints_at_the_step_boundary():
    h = Harness()
    h.step(2.0)
    h.stop.request()  # what the signal handler does once training runs
    h.step(1.9)
    assert h.control.should_save and h.control.should_training_stop and h.control.should_log
    h.reporter.on_save(h.args, h.state, h.control)
    events = h.events()
    assert [e["type"] for e in events] == ["metric", "metric", "checkpoint"]
    assert events[-1] == {**events[-1], "step": 2, "loss": 1.9, "path": "/ckpt/checkpoint-2"}
    assert h.reporter.stop_checkpoint == "/ckpt/checkpoint-2"


def test_last_step_is_always_logged():
    h = Harness(max_steps=3)
    h.state.global_step = 2
    h.reporter.on_step_end(h.args, h.state, h.control)
    assert not h.control.should_log
    h.state.global_step = 3
    h.reporter.on_step_end(h.args, h.state, h.control)
    assert h.control.should_log and not h.control.should_save


# ------------------------------------------------------------------------ throughput and memory


def test_on_cpu_the_peak_memory_field_is_there_and_null():
    h = Harness()
    h.step(2.0)
    h.reporter.flush()
    (metric,) = [e for e in h.events() if e["type"] == "metric"]
    assert "peak_memory_gb" in metric and metric["peak_memory_gb"] is None


def test_on_cuda_steps_are_timed_after_a_synchronize_and_peak_memory_is_reported(monkeypatch):
    """CUDA mocked: queued kernels would make an unsynchronised step look instantaneous."""
    import torch

    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: calls.append("sync"))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *a: 3 * 2**30)
    monkeypatch.setattr(torch.cuda, "utilization", lambda *a: 87)
    clock = iter(range(100))
    monkeypatch.setattr("brightrun_trainer.progress.time.monotonic", lambda: calls.append("clock") or float(next(clock)))
    h = Harness()
    h.step(2.0, tokens=500)
    h.reporter.flush()
    # Each clock read comes right after a synchronize.
    assert calls == ["sync", "clock", "sync", "clock"]
    (metric,) = [e for e in h.events() if e["type"] == "metric"]
    assert metric["peak_memory_gb"] == 3.0 and metric["gpu_utilization"] == 87.0
    assert metric["throughput"] == 500.0  # 500 real tokens in the 1 s between the two reads
