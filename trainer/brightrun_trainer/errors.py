"""Failures the trainer reports, and how an arbitrary exception maps onto the protocol.

The protocol knows two kinds of error. ``training`` means the job itself is wrong (its data,
its hyperparameters, a diverging loss, not enough memory): running it again unchanged fails
again. ``infrastructure`` means the environment let the job down (a missing package, a
download that failed, a broken GPU): a retry elsewhere may succeed. The engine decides about
retries from this kind, so classification errs towards ``training`` for anything unknown.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import traceback

from .failure import disk_full_cause

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


class CheckpointError(TrainingError):
    """The checkpoint archive to resume from is unusable: missing from storage, not matching its
    recorded size or sha256, or not a checkpoint archive. Running the job again unchanged fails
    again; the engine resumes from an earlier checkpoint or starts over instead."""


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
    if disk_full_cause(exc) is not None:  # also the writers that raise no OSError (safetensors)
        return INFRASTRUCTURE
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
        advice = ', or use quantization "4bit"' if four_bit_available() else ""
        text = f"out of memory: lower batch_size or max_seq_length{advice} ({_first_line(exc)})"
    elif isinstance(exc, ImportError):
        text = f"a required Python package is missing or broken: {_first_line(exc)}"
    else:
        text = f"{type(exc).__name__}: {_first_line(exc)}"
    text = " ".join(text.split())
    if len(text) > REASON_MAX_CHARS:
        text = text[: REASON_MAX_CHARS - 1] + "…"
    return text


def four_bit_available() -> bool:
    """Whether QLoRA could run here (bitsandbytes installed, a CUDA GPU), so advice may name it."""
    if importlib.util.find_spec("bitsandbytes") is None:
        return False
    torch = sys.modules.get("torch")  # never import torch just to word an error
    try:
        return bool(torch is not None and torch.cuda.is_available())
    except Exception:
        return False


def traceback_tail(exc: BaseException) -> str:
    """The end of the traceback, where the cause usually is, bounded in size."""
    lines = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).splitlines()
    tail = "\n".join(lines[-DETAIL_MAX_LINES:])
    return tail[-DETAIL_MAX_CHARS:]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


#: Exception class names (anywhere in the cause chain) that mean the id names no model.
_NOT_FOUND = ("RepositoryNotFoundError", "HFValidationError", "RevisionNotFoundError")
#: Class names that mean "not in the local cache" (raised when the hub may not be asked).
_NOT_CACHED = ("LocalEntryNotFoundError", "OfflineModeIsEnabled")


def hub_offline() -> bool:
    """Whether the Hugging Face libraries are told not to use the network."""
    truthy = {"1", "on", "yes", "true"}
    return any(os.environ.get(v, "").strip().lower() in truthy for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def model_load_error(exc: BaseException, model_id: str, what: str) -> TrainerError:
    """Map a failure to load a base model's tokenizer or weights.

    A model that does not exist, and one that is not in the cache while the hub is offline
    (``HF_HUB_OFFLINE``), are the job's fault: running it again unchanged fails again, so they
    are ``training`` errors and the engine does not retry them. A gated model, an unreachable
    hub and disk or package failures are the environment's (``infrastructure``).
    """
    chain, cause = [], exc
    while cause is not None and len(chain) < 10:
        chain.append(type(cause).__name__)
        cause = cause.__cause__ or cause.__context__
    text = str(exc)
    first_line = (text.strip().splitlines() or [type(exc).__name__])[0]
    if "GatedRepoError" in chain:
        return InfrastructureError(f"base model {model_id} is gated: the worker needs a Hugging Face token with access")
    if any(n in chain for n in _NOT_FOUND) or "not a valid model identifier" in text:
        return TrainingError(
            f"base model {model_id} was not found: it is not a local folder and not a model on the "
            "Hugging Face Hub; check the id (e.g. mistralai/Mistral-7B-v0.1)"
        )
    offline = hub_offline()
    not_cached = any(n in chain for n in _NOT_CACHED) or (
        offline and ("cached files" in text or "offline mode" in text or isinstance(exc, FileNotFoundError))
    )
    if not_cached:
        how = "HF_HUB_OFFLINE is set" if offline else "the hub may not be used"
        return TrainingError(
            f"base model {model_id} is not in the offline cache ({how}): download it first "
            f"(huggingface-cli download {model_id}) or let the trainer reach the Hugging Face Hub"
        )
    if isinstance(exc, (OSError, ImportError)):
        return InfrastructureError(f"could not load the {what} of {model_id}: {first_line}")
    return TrainingError(f"could not load the {what} of {model_id}: {first_line}")
