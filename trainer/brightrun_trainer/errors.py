"""Failures the trainer reports, and how an arbitrary exception maps onto the protocol.

The protocol knows two kinds of error. ``training`` means the job itself is wrong (its data,
its hyperparameters, a diverging loss, not enough memory): running it again unchanged fails
again. ``infrastructure`` means the environment let the job down (a missing package, a
download that failed, a broken GPU): a retry elsewhere may succeed. The engine decides about
retries from this kind, so classification errs towards ``training`` for anything unknown.
"""

from __future__ import annotations

import traceback

TRAINING = "training"
INFRASTRUCTURE = "infrastructure"

#: How much of a traceback an ``error`` event carries.
DETAIL_MAX_LINES = 25
DETAIL_MAX_CHARS = 4000
REASON_MAX_CHARS = 500


class TrainerError(Exception):
    """An expected failure with a one-line, user-facing reason."""

    kind = TRAINING

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class TrainingError(TrainerError):
    """The job cannot succeed as specified (bad data, hyperparameters, NaN loss, OOM)."""

    kind = TRAINING


class SpecError(TrainingError):
    """The job spec is malformed; the reason names the offending field."""


class DatasetError(TrainingError):
    """The dataset holds nothing the trainer can learn from."""


class InfrastructureError(TrainerError):
    """The environment failed the job (packages, network, storage, hardware)."""

    kind = INFRASTRUCTURE


class StopRequested(BaseException):
    """Raised by the signal handler while nothing is worth checkpointing yet.

    A ``BaseException`` so that library code catching ``Exception`` cannot swallow it.
    """

    def __init__(self, signum: int):
        super().__init__(f"stopped by signal {signum}")
        self.signum = signum


_INFRASTRUCTURE_MARKERS = ("CUDA error", "CUDA driver", "NCCL", "cuDNN error", "CUBLAS_STATUS")


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA/MPS/CPU allocator failures, whatever class the torch build raises."""
    if type(exc).__name__ == "OutOfMemoryError" or isinstance(exc, MemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def classify(exc: BaseException) -> str:
    """The protocol ``kind`` for any exception that ends a run."""
    if isinstance(exc, TrainerError):
        return exc.kind
    if is_out_of_memory(exc):
        return TRAINING
    # OSError covers the network (URLError, ConnectionError, TimeoutError) and the disk.
    if isinstance(exc, (ImportError, OSError)):
        return INFRASTRUCTURE
    if isinstance(exc, RuntimeError) and any(m in str(exc) for m in _INFRASTRUCTURE_MARKERS):
        return INFRASTRUCTURE
    return TRAINING


def one_line_reason(exc: BaseException) -> str:
    """A single line saying what went wrong, suitable for a job's error message."""
    if isinstance(exc, TrainerError):
        text = exc.reason
    elif is_out_of_memory(exc):
        text = (
            "out of memory: lower batch_size or max_seq_length, or use quantization \"4bit\" "
            f"({_first_line(exc)})"
        )
    elif isinstance(exc, ImportError):
        text = f"a required Python package is missing or broken: {_first_line(exc)}"
    else:
        text = f"{type(exc).__name__}: {_first_line(exc)}"
    text = " ".join(text.split())
    if len(text) > REASON_MAX_CHARS:
        text = text[: REASON_MAX_CHARS - 1] + "…"
    return text


def traceback_tail(exc: BaseException) -> str:
    """The end of the traceback, where the cause usually is, bounded in size."""
    lines = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).splitlines()
    tail = "\n".join(lines[-DETAIL_MAX_LINES:])
    return tail[-DETAIL_MAX_CHARS:]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
