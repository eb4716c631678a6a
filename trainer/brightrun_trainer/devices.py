"""One meaning of batch size: one process trains on one GPU unless a launcher says otherwise.

With several visible GPUs and no distributed launcher (``torchrun``/``accelerate launch`` set
``LOCAL_RANK`` and ``WORLD_SIZE``), the Hugging Face ``Trainer`` wraps the model in
``torch.nn.DataParallel`` and multiplies the batch by the number of GPUs, so ``batch_size``
would silently mean something else on every machine. :func:`pin_one_gpu` keeps only the first
GPU visible, before torch initialises CUDA (it counts GPUs through NVML, which does not);
:func:`forbid_data_parallel` is the guard for a process where CUDA was already initialised.

With ``efficiency.gpu_count`` above 1 and several GPUs visible, :func:`plan_data_parallel`
asks the runner to re-execute the trainer under ``torch.distributed.run`` (one process per
GPU, real DistributedDataParallel); only rank 0 writes events and the adapter.

This module imports no torch, so the runner can call it before the training stack loads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
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


def local_rank(environ: MutableMapping[str, str] = os.environ) -> int | None:
    """This process's GPU index under a launcher (``LOCAL_RANK``), else None."""
    try:
        return int(environ["LOCAL_RANK"])
    except (KeyError, ValueError):
        return None


# --------------------------------------------------------------------------- data parallelism

#: Set in the environment of a trainer re-executed under torchrun: the event ``seq`` to
#: continue from, so the engine sees one numbered stream from one process id.
RELAUNCH_SEQ_VARIABLE = "BRIGHTRUN_RELAUNCH_SEQ"


@dataclass(frozen=True)
class LaunchPlan:
    """Run the job as ``processes`` data-parallel ranks, one per GPU, under torchrun."""

    processes: int
    note: str


def plan_data_parallel(
    requested: int,
    environ: MutableMapping[str, str] = os.environ,
    count_gpus: Callable[[], int | None] | None = None,
) -> LaunchPlan | str | None:
    """What to do with ``efficiency.gpu_count``: a :class:`LaunchPlan` to re-execute under
    ``torch.distributed.run``, a note when fewer GPUs are visible than asked for (then one GPU
    trains, as without the setting), or None when there is nothing to decide (one GPU asked
    for, or already running under a launcher)."""
    if requested <= 1 or launched_distributed(environ):
        return None
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        count = len([part for part in visible.split(",") if part.strip()])
    else:
        count = (count_gpus or visible_gpu_count)() or 0
    if count <= 1:
        return f"gpu_count {requested} asked for, {count} GPU visible: training in one process"
    processes = min(requested, count)
    fewer = f" (only {count} visible)" if count < requested else ""
    return LaunchPlan(
        processes,
        f"data parallel: {processes} processes, one per GPU, under torch.distributed.run{fewer}; "
        "rank 0 reports events",
    )


def relaunch_command(processes: int, spec_path: str, python: str) -> list[str]:
    """The torchrun command line that runs this same job as ``processes`` ranks."""
    source = ["--spec-env", spec_path[4:]] if spec_path.startswith("env:") else ["--spec", spec_path]
    return [
        python, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
        "-m", "brightrun_trainer", "run", *source,
    ]


def is_rank_zero(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Only rank 0 of a data-parallel job writes events and the adapter."""
    return environ.get("RANK", "0") in ("", "0")
