"""One meaning of batch size: one process trains on one GPU unless a launcher says otherwise.

With several visible GPUs and no distributed launcher (``torchrun``/``accelerate launch`` set
``LOCAL_RANK`` and ``WORLD_SIZE``), the Hugging Face ``Trainer`` wraps the model in
``torch.nn.DataParallel`` and multiplies the batch by the number of GPUs, so ``batch_size``
would silently mean something else on every machine. :func:`pin_one_gpu` keeps only the first
GPU visible, before torch initialises CUDA (it counts GPUs through NVML, which does not);
:func:`forbid_data_parallel` is the guard for a process where CUDA was already initialised.

This module imports no torch, so the runner can call it before the training stack loads.
"""

from __future__ import annotations

import os
from typing import Callable, MutableMapping

LAUNCHER_VARIABLES = ("LOCAL_RANK", "WORLD_SIZE")


def launched_distributed(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Whether a distributed launcher (torchrun, accelerate) started this process."""
    return any(environ.get(name) not in (None, "") for name in LAUNCHER_VARIABLES)


def world_size(environ: MutableMapping[str, str] = os.environ) -> int:
    try:
        return max(1, int(environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def visible_gpu_count() -> int | None:
    """The number of NVIDIA GPUs NVML sees, without initialising CUDA; ``None`` if unknown."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return int(pynvml.nvmlDeviceGetCount())
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no driver, no NVML, not permitted: nothing to restrict
        return None


def pin_one_gpu(
    environ: MutableMapping[str, str] = os.environ,
    count_gpus: Callable[[], int | None] | None = None,
) -> str | None:
    """Keep only the first GPU visible when several are and no launcher runs; a note or None."""
    if launched_distributed(environ):
        return None
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [part.strip() for part in visible.split(",") if part.strip()]
        count = len(ids)
        first = ids[0] if ids else None
    else:
        count = (count_gpus or visible_gpu_count)() or 0
        first = "0"
    if count <= 1 or first is None:
        return None
    environ["CUDA_VISIBLE_DEVICES"] = first
    return (
        f"{count} GPUs are visible and no distributed launcher (torchrun) started the trainer: "
        f"training on one GPU (CUDA_VISIBLE_DEVICES={first}), so batch_size is per optimizer step"
    )


def forbid_data_parallel(args) -> bool:
    """Make a ``TrainingArguments`` use one GPU where it would use ``DataParallel``; True if it had to."""
    if launched_distributed() or args.n_gpu <= 1:
        return False
    args._n_gpu = 1  # read by Trainer for DataParallel wrapping and train_batch_size
    return True
