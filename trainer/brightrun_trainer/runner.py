"""The ``run`` command: the phases of one job and the protocol's error and stop handling.

Phases and their ``stage`` events: ``initializing`` (spec, dataset, model), ``training``,
``validating`` (only with a validation split), ``evaluating`` (only when the spec has an
``evaluation`` object: the adapter against its base model, :mod:`.evaluation`), ``saving``
(adapter and ``evaluation.json`` written and delivered),
``completed``, then ``done``. Any failure becomes exactly one ``error`` event and exit
status 1; a stop request becomes a ``log`` event (after a ``checkpoint`` event once training
has started) and exit status 143.

A spec with a ``compare`` object runs compare mode instead (:mod:`.compare`): no training,
``initializing`` (adapters fetched, the dataset read only when the prompts come from it, the
first base loaded), ``evaluating`` (every model answers), ``saving`` (``comparison.json``),
``completed``, ``done``; the same error and stop handling.

A spec with an ``export`` object runs export mode (:mod:`.export`): no training,
``initializing`` (llama.cpp's tools, the adapter, base + adapter loaded and answering the
check's prompts), ``saving`` (the export written), ``evaluating`` (the export checked, then
delivered), ``completed``, ``done``. A stop at any point removes what was written.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import tempfile
import threading
import traceback
from pathlib import Path

from .data import LoadedDataset, load_dataset, skipped_warning
from .devices import (
    RELAUNCH_SEQ_VARIABLE,
    LaunchPlan,
    is_rank_zero,
    pin_one_gpu,
    plan_data_parallel,
    relaunch_command,
)
from .errors import StopRequested, classify, one_line_reason, traceback_tail
from .events import EventEmitter
from .output import publish, publish_files
from .signals import StopSignal
from .spec import JobSpec, load_spec
from .transfer import download

EXIT_OK = 0
EXIT_FAILED = 1
#: Compare and export modes' ``done`` summary: they train nothing, so every figure is null.
COMPARE_SUMMARY = dict.fromkeys(
    (
        "total_steps", "epochs", "final_training_loss", "final_validation_loss", "train_runtime_seconds",
        "train_tokens", "trainable_parameters", "total_parameters",
    )
)  # fmt: skip


def run(spec_path: str, emitter: EventEmitter, stop: StopSignal | None = None) -> int:
    """Run one job; returns the process exit status."""
    stop = stop or StopSignal().install()
    scratch = Path(tempfile.mkdtemp(prefix="brightrun-trainer-"))
    relaunched = RELAUNCH_SEQ_VARIABLE in os.environ  # the initializing events came before the exec
    comparing = False
    try:
        if not relaunched:
            emitter.stage("initializing", "reading the job spec")
        spec = load_spec(spec_path)
        if not relaunched:
            _report_unknown_fields(spec, emitter)
        if spec.compare is not None:
            comparing = True
            return _compare(spec, emitter, stop, scratch)
        if spec.export is not None:
            return _export(spec, emitter, scratch)
        if spec.resume_archive is not None:
            spec = _resume_from_archive(spec, emitter)
        plan = plan_data_parallel(spec.efficiency.gpu_count)
        if isinstance(plan, LaunchPlan):
            shutil.rmtree(scratch, ignore_errors=True)  # exec skips the finally below
            relaunch(plan, spec_path, emitter)
        elif plan:
            emitter.info(plan)
        pinned = pin_one_gpu()  # before torch initialises CUDA (the import below may)
        if pinned:
            emitter.info(pinned)
        importing = _prefetch_training() if spec.dataset.url else None
        dataset = _read_dataset(spec, scratch, emitter)
        if importing is not None:
            importing.join()
        training = _import_training()
        init = _init_adapter(spec, scratch, emitter)
        outcome = training.train(spec, dataset, emitter, stop, init_adapter=init)
        if outcome.stopped:
            emitter.info(stopped_line(spec, stop.signum, outcome.global_step, stored=outcome.checkpoint_stored))
            return stop.exit_status
        if not is_rank_zero():
            return EXIT_OK  # rank 0 writes the adapter and reports it
        emitter.stage("saving", "writing the adapter")
        artifact = publish(
            outcome.model, outcome.tokenizer, spec.base_model, spec.output, emitter, scratch, _extra_files(outcome)
        )
        emitter.artifact(directory=artifact.directory, files=artifact.files)
        emitter.stage("completed", f"trained {outcome.global_step} steps")
        emitter.done(outcome.summary())
        return EXIT_OK
    except StopRequested as stopped:
        if comparing:
            emitter.info(f"stopped by signal {stopped.signum} before the comparison started; nothing was written")
        else:
            emitter.info(f"stopped by signal {stopped.signum} before training started; nothing to checkpoint")
        return 128 + stopped.signum
    except Exception as exc:  # every failure must reach the engine as one error event
        traceback.print_exc(file=sys.stderr)
        emitter.error(kind=classify(exc), reason=one_line_reason(exc), detail=traceback_tail(exc))
        emitter.record_failure(exc)
        return EXIT_FAILED
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if emitter.marker is not None:
            emitter.marker.discard_reserve()


def _compare(spec: JobSpec, emitter: EventEmitter, stop: StopSignal, scratch: Path) -> int:
    """Compare mode: one process on one GPU (never the data-parallel relaunch), the dataset read
    only when the prompts come from it, ``comparison.json`` the only output."""
    from .compare import COMPARISON_FILE, run_comparison, to_json

    pinned = pin_one_gpu()
    if pinned:
        emitter.info(pinned)
    dataset = _read_dataset(spec, scratch, emitter) if spec.compare.prompts is None else None
    result = run_comparison(spec, dataset, emitter, stop, scratch)
    if result is None:
        emitter.info(f"stopped by signal {stop.signum} during the comparison; no {COMPARISON_FILE} was written")
        return stop.exit_status
    emitter.stage("saving", f"writing {COMPARISON_FILE}")
    artifact = publish_files({COMPARISON_FILE: to_json(result)}, spec.output, emitter, scratch)
    emitter.artifact(directory=artifact.directory, files=artifact.files)
    emitter.stage("completed", f"compared {len(result['models'])} models on {len(result['prompts'])} prompts")
    emitter.done(dict(COMPARE_SUMMARY))
    return EXIT_OK


def _export(spec: JobSpec, emitter: EventEmitter, scratch: Path) -> int:
    """Export mode: one process, the dataset never read; a stop (raised by the signal handler
    at any point: nothing is worth keeping half-written) removes the partial output."""
    from .export import run_export

    try:
        exported = run_export(spec, emitter, scratch)
    except StopRequested as stopped:
        emitter.info(f"stopped by signal {stopped.signum} during the export; nothing was kept")
        return 128 + stopped.signum
    emitter.artifact(directory=exported.directory, files=exported.files)
    emitter.stage("completed", exported.summary)
    emitter.done(dict(COMPARE_SUMMARY))
    return EXIT_OK


def relaunch(plan: LaunchPlan, spec_path: str, emitter: EventEmitter) -> None:
    """Replace this process with ``torch.distributed.run`` running ``plan.processes`` ranks.

    The process id stays the engine's child; the event stream (restored on file descriptor
    1) carries on with the next ``seq``, written by rank 0 only (see ``__main__``).
    """
    emitter.info(plan.note)
    environ = dict(os.environ)
    environ[RELAUNCH_SEQ_VARIABLE] = str(emitter.next_seq)
    stream = emitter.stream
    stream.flush()
    sys.stderr.flush()
    os.dup2(stream.fileno(), 1)
    command = relaunch_command(plan.processes, spec_path, sys.executable)
    os.execve(sys.executable, command, environ)


def _extra_files(outcome) -> dict[str, bytes]:
    """Files written beside the adapter: ``evaluation.json`` after an ``evaluating`` stage."""
    if outcome.evaluation is None:
        return {}
    from .evaluation import EVALUATION_FILE, to_json

    return {EVALUATION_FILE: to_json(outcome.evaluation)}


def _report_unknown_fields(spec: JobSpec, emitter: EventEmitter) -> None:
    if spec.unknown_fields:
        emitter.warning("ignoring unknown spec fields: " + ", ".join(spec.unknown_fields))


def _read_dataset(spec: JobSpec, scratch: Path, emitter: EventEmitter) -> LoadedDataset:
    if spec.dataset.url is not None:
        emitter.info("downloading the dataset")
        path = download(spec.dataset.url, scratch / "dataset")
    else:
        path = Path(spec.dataset.path)
    hp = spec.hyperparameters
    if hp.method.is_preference and spec.compare is None:
        from .preference_data import load_preference_dataset

        dataset = load_preference_dataset(
            path, method=hp.method.name, seed=hp.seed, validation_split=hp.validation_split,
            use_validation=hp.use_validation,
        )  # fmt: skip
        unit = "examples" if dataset.is_kto else "pairs"
    else:
        dataset = load_dataset(
            path, seed=hp.seed, validation_split=hp.validation_split, use_validation=hp.use_validation
        )
        unit = "examples"
    emitter.info(
        f"dataset: {dataset.format.value}, {dataset.total_records} records, "
        f"{len(dataset.train)} training and {len(dataset.validation)} validation {unit}"
    )
    if dataset.skipped_count:
        emitter.warning(skipped_warning(dataset.skipped_count, dataset.skipped))
    if dataset.split_dropped:
        emitter.warning(dataset.split_dropped)
    return dataset


def _prefetch_training() -> threading.Thread:
    """Start importing torch, transformers and peft (3 s or more) while the dataset downloads.

    Only for a URL: the download waits on the network and leaves the GIL to the import, while
    reading a local file competes with it for the GIL and gains nothing (measured: a 40 000-record
    file read in 0.7 s alone took 1.4 s beside the import). A failed import is not reported here: :func:`_import_training` imports
    again in the main thread and raises it there, as before."""

    def load() -> None:
        try:
            from . import train  # noqa: F401
        except BaseException:  # reported by the main thread's import
            pass

    thread = threading.Thread(target=load, name="brightrun-import", daemon=True)
    thread.start()
    return thread


def _import_training():
    """Import the torch-heavy module late, so that a broken environment is reported cleanly."""
    from . import train

    return train


def stopped_line(spec, signum: int, step: int, *, stored: bool = False) -> str:
    """What a stopped run says: where it stopped and how to go on. A run whose checkpoints are
    on the engine's machine (its output is a folder there) continues with ``jobs retry``; a
    remote worker's stay on the worker, so its retry starts over, unless the checkpoint was
    uploaded (``stored``: ``checkpoint_upload``)."""
    short = spec.job_id[:8]
    if spec.output.dir is None and stored:
        return f"stopped by signal {signum} at step {step}; its checkpoint was uploaded to storage"
    if spec.output.dir is not None:
        return (
            f"stopped by signal {signum} at step {step}, its checkpoint saved; "
            f"`brightrun jobs retry {short}` continues from it"
        )
    return (
        f"stopped by signal {signum} at step {step}; its checkpoint stays on this worker, "
        f"so `brightrun jobs retry {short}` starts over"
    )


def _resume_from_archive(spec: JobSpec, emitter: EventEmitter) -> JobSpec:
    """The spec with ``resume_from`` set to the folder extracted from its archive (fetched and
    checked first; a bad archive ends the run before anything trains)."""
    from .checkpoints import fetch_resume_checkpoint

    folder = fetch_resume_checkpoint(spec.resume_archive, spec.checkpoint_dir, emitter)
    return dataclasses.replace(spec, resume_from=folder)


def _init_adapter(spec, scratch: Path, emitter) -> Path | None:
    """The folder of the adapter a run starts from (``init_adapter``), downloaded first when
    it comes as URLs; ``None`` for fresh LoRA weights."""
    if spec.init_adapter is None:
        return None
    from .compare import fetch_adapters

    return fetch_adapters((spec.init_adapter,), scratch, emitter)[spec.init_adapter.id]
