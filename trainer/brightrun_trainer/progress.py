"""Turning the Hugging Face training loop into protocol events.

:class:`ProgressReporter` is a ``TrainerCallback``. It emits one ``metric`` event per
logged optimizer step, merging the evaluation result into the event of the step it was
computed at (so metric steps are unique), a ``checkpoint`` event whenever the Trainer saves,
and it turns a pending stop request into "save a checkpoint now and end training".

Event timing: the Trainer logs, evaluates and saves *after* a step's ``on_step_end``, so the
metric for step ``S`` is held until that is over and written when step ``S + 1`` begins, a
checkpoint is saved, or the runner calls :meth:`ProgressReporter.flush`. The metric of the
last step is therefore written after the final evaluation and carries its loss.

Throughput is the number of real (non-padding) tokens in the training batches of the logged
window divided by the time spent inside those optimizer steps (forward, backward, optimizer),
so evaluation and checkpoint time do not dilute it. On CUDA each step's clock is read after
``torch.cuda.synchronize()``: kernels are queued asynchronously, and an unsynchronised clock
measures how fast work was queued, not done. Peak memory is ``torch.cuda.max_memory_allocated``
since the trainer started (null on CPU).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from .errors import TrainingError
from .events import EventEmitter
from .signals import StopSignal

if TYPE_CHECKING:
    from .checkpoints import CheckpointStore


class TokenMeter:
    """Counts non-padding training tokens without forcing a device sync on every batch."""

    def __init__(self) -> None:
        self._pending = None
        self.total = 0

    def add(self, attention_mask) -> None:
        count = attention_mask.detach().sum()
        self._pending = count if self._pending is None else self._pending + count

    def add_count(self, count: int) -> None:
        """A batch whose every token is real (a flattened batch: no padding, no mask)."""
        self._pending = count if self._pending is None else self._pending + count

    def take(self) -> int:
        """Tokens added since the previous call (this is where the sync happens)."""
        taken = int(self._pending) if self._pending is not None else 0  # a tensor syncs here
        self._pending = None
        self.total += taken
        return taken


def _cuda_in_use() -> bool:
    """Whether this process trains on CUDA (CUDA available and initialised)."""
    try:
        import torch

        return bool(torch.cuda.is_available() and torch.cuda.is_initialized())
    except Exception:
        return False


def synchronize_device() -> None:
    """Wait for the queued GPU work, so that a clock read next covers it (no-op on CPU)."""
    if _cuda_in_use():
        import torch

        torch.cuda.synchronize()


def peak_memory_gb() -> float | None:
    """The most GPU memory torch has allocated in this process, in GiB; ``None`` on CPU."""
    if not _cuda_in_use():
        return None
    try:
        import torch

        return torch.cuda.max_memory_allocated() / 2**30
    except Exception:
        return None


def gpu_utilization() -> float | None:
    """Current GPU use in percent, or ``None`` without a GPU or NVML."""
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        return float(torch.cuda.utilization())
    except Exception:  # NVML missing or not permitted: the metric is optional
        return None


class LossWatch:
    """The training loss of the current optimizer step, summed on the device.

    ``_MeteredTrainer.training_step`` adds each micro-batch's loss; the reporter reads the sum
    once per optimizer step (one device sync), so a NaN is caught at the step it appears,
    not at the next logging step.
    """

    def __init__(self) -> None:
        self._sum = None

    def add(self, loss) -> None:
        loss = loss.detach().float().sum()
        self._sum = loss if self._sum is None else self._sum + loss

    def take(self) -> float | None:
        """The summed loss since the previous call (``None`` if nothing was added)."""
        total, self._sum = self._sum, None
        return None if total is None else float(total.item())


@dataclass
class _PendingMetric:
    step: int
    total_steps: int
    epoch: float
    training_loss: float
    learning_rate: float | None
    gradient_norm: float | None
    throughput: float | None
    gpu_utilization: float | None
    validation_loss: float | None = None
    peak_memory_gb: float | None = None
    #: The preference methods' ``preference`` object (absent from the event when ``None``).
    preference: dict[str, float | None] | None = None


class ProgressReporter(TrainerCallback):
    """Emits ``metric`` and ``checkpoint`` events and enforces the stop and evaluation policy.

    Policy, on top of the Trainer's own logging every ``logging_steps``:
    - the last step is always logged;
    - at each epoch end except the last, the model is evaluated (when there is a validation
      split) and a checkpoint is saved; the final evaluation is the runner's, in the
      ``validating`` stage;
    - with ``checkpoint_steps``, a checkpoint every that many steps, except the last step (the
      adapter is written then anyway); one that falls on an epoch end is that epoch's, saved
      after its evaluation so that the step's metric carries the validation loss;
    - on a stop request, the current step is logged and checkpointed and training ends.

    With ``archives`` every checkpoint folder is also packed and stored (PROTOCOL.md,
    "Checkpoint storage") before its ``checkpoint`` event, which then carries ``object``.
    """

    def __init__(
        self,
        emitter: EventEmitter,
        stop: StopSignal,
        tokens: TokenMeter,
        *,
        has_validation: bool,
        losses: LossWatch | None = None,
        last_checkpoint: str | None = None,
        checkpoint_steps: int | None = None,
        archives: CheckpointStore | None = None,
        preference=None,
    ):
        self._emitter = emitter
        #: The preference methods' window of rewards and log-probs (``take()`` → dict), or None.
        self._preference = preference
        self._stop = stop
        self._tokens = tokens
        self._losses = losses
        self._has_validation = has_validation
        self._checkpoint_steps = checkpoint_steps
        #: Where each checkpoint is stored (none: checkpoints stay in their folders).
        self.archives = archives
        self._saved_step: int | None = None
        #: The newest checkpoint folder (the one resumed from, until this process saves one):
        #: named in the error when the loss diverges.
        self.last_checkpoint = last_checkpoint
        self._pending: _PendingMetric | None = None
        self._step_started: float | None = None
        self._cuda: bool | None = None  # decided at the first step
        self._window_seconds = 0.0
        self.last_training_loss: float | None = None
        self.last_validation_loss: float | None = None
        self.stop_checkpoint: str | None = None
        #: Whether the newest checkpoint of this process was stored (``checkpoint_upload``).
        self.last_checkpoint_stored = False

    # ----------------------------------------------------------------- Trainer hooks

    def on_step_begin(self, args, state, control, **kwargs):
        self.flush()
        if self._cuda is None:
            self._cuda = _cuda_in_use()
        if self._cuda:
            synchronize_device()  # work queued by logging or evaluation is not this step's
        self._step_started = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if self._step_started is not None:
            if self._cuda:
                synchronize_device()  # the step is over when the GPU is done with it
            self._window_seconds += time.monotonic() - self._step_started
            self._step_started = None
        step_loss = self._losses.take() if self._losses is not None else None
        if step_loss is not None and not math.isfinite(step_loss):
            raise self._diverged("training", step_loss, state.global_step)
        if self._stop.requested:
            control.should_log = True
            control.should_save = True
            control.should_training_stop = True
        elif state.global_step >= state.max_steps:
            control.should_log = True
        elif self._checkpoint_due(state) and not _at_epoch_end(state):
            control.should_save = True  # at an epoch end on_epoch_end saves, after the evaluation

    def on_epoch_end(self, args, state, control, **kwargs):
        if self._stop.requested or control.should_training_stop or state.global_step >= state.max_steps:
            return
        if self._saved_step != state.global_step:
            control.should_save = True
        if self._has_validation:
            control.should_evaluate = True
            control.should_log = True

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs:
            return
        loss = float(logs["loss"])
        if not math.isfinite(loss):
            raise self._diverged("training", loss, state.global_step)
        self._start_metric(state, training_loss=loss, logs=logs)
        self.last_training_loss = loss

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        loss = (metrics or {}).get("eval_loss")
        if loss is None:
            return
        loss = float(loss)
        if not math.isfinite(loss):
            raise self._diverged("validation", loss, state.global_step)
        self.last_validation_loss = loss
        # Evaluation steps are always logged first (see on_step_end/on_epoch_end). The one
        # exception is a run resumed at its last step: that step's metric belongs to the
        # earlier process, so the loss only reaches the ``done`` summary.
        if self._pending is not None and self._pending.step == state.global_step:
            self._pending.validation_loss = loss

    def on_save(self, args, state, control, **kwargs):
        self.report_checkpoint(args, state)

    # ----------------------------------------------------------------- runner API

    def flush(self) -> None:
        """Write the held metric event, if any."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._emitter.metric(**pending.__dict__)

    def report_checkpoint(self, args, state) -> str:
        """Emit the ``checkpoint`` event for the folder the Trainer just wrote."""
        self.flush()
        self._saved_step = state.global_step
        path = os.path.abspath(os.path.join(args.output_dir, f"checkpoint-{state.global_step}"))
        stored = self.archives.store(path, state.global_step) if self.archives is not None else {}
        self.last_checkpoint_stored = "object" in stored
        self._emitter.checkpoint(
            step=state.global_step,
            epoch=float(state.epoch or 0.0),
            loss=self.last_training_loss,
            path=path,
            stored=stored.get("object"),
            archive=stored.get("archive"),
        )
        if self._stop.requested:
            self.stop_checkpoint = path
        self.last_checkpoint = path
        return path

    # ----------------------------------------------------------------- helpers

    def _checkpoint_due(self, state) -> bool:
        every = self._checkpoint_steps
        return bool(every) and state.global_step % every == 0 and state.global_step != self._saved_step

    def _diverged(self, which: str, loss: float, step: int) -> TrainingError:
        advice = "lower learning_rate" + (", or check the data for empty or corrupt examples" if which == "training" else "")
        kept = (
            f"; the last good checkpoint is {self.last_checkpoint} (resume_from it with a lower learning_rate)"
            if self.last_checkpoint
            else "; no checkpoint was saved before it"
        )
        return TrainingError(f"the {which} loss became {loss} at step {step}: {advice}{kept}")

    def _start_metric(self, state, *, training_loss: float, logs: dict[str, Any]) -> None:
        self.flush()
        tokens = self._tokens.take()
        seconds, self._window_seconds = self._window_seconds, 0.0
        self._pending = _PendingMetric(
            step=state.global_step,
            total_steps=state.max_steps,
            epoch=float(state.epoch or 0.0),
            training_loss=training_loss,
            learning_rate=_float_or_none(logs.get("learning_rate")),
            gradient_norm=_float_or_none(logs.get("grad_norm")),
            throughput=tokens / seconds if seconds > 0 and tokens else None,
            gpu_utilization=gpu_utilization(),
            peak_memory_gb=peak_memory_gb(),
            preference=self._preference.take() if self._preference is not None else None,
        )


def _at_epoch_end(state) -> bool:
    """Whether the step just taken ends an epoch: the Trainer sets ``epoch`` to
    ``epoch + (batch + 1) / batches_in_epoch``, exactly a whole number at an epoch's last step."""
    return state.epoch is not None and float(state.epoch).is_integer()


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)
