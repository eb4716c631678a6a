"""The ``run`` command: the phases of one job and the protocol's error and stop handling.

Phases and their ``stage`` events: ``initializing`` (spec, dataset, model), ``training``,
``validating`` (only with a validation split), ``saving`` (adapter written and delivered),
``completed``, then ``done``. Any failure becomes exactly one ``error`` event and exit
status 1; a stop request becomes a ``log`` event (after a ``checkpoint`` event once training
has started) and exit status 143.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import traceback
from pathlib import Path

from .data import LoadedDataset, load_dataset, skipped_warning
from .devices import pin_one_gpu
from .errors import StopRequested, classify, one_line_reason, traceback_tail
from .events import EventEmitter
from .output import publish
from .signals import StopSignal
from .spec import JobSpec, load_spec
from .transfer import download

EXIT_OK = 0
EXIT_FAILED = 1


def run(spec_path: str, emitter: EventEmitter, stop: StopSignal | None = None) -> int:
    """Run one job; returns the process exit status."""
    stop = stop or StopSignal().install()
    scratch = Path(tempfile.mkdtemp(prefix="brightrun-trainer-"))
    try:
        emitter.stage("initializing", "reading the job spec")
        spec = load_spec(spec_path)
        _report_unknown_fields(spec, emitter)
        dataset = _read_dataset(spec, scratch, emitter)
        pinned = pin_one_gpu()  # before torch initialises CUDA
        if pinned:
            emitter.info(pinned)
        training = _import_training()
        outcome = training.train(spec, dataset, emitter, stop)
        if outcome.stopped:
            emitter.info(
                f"stopped by signal {stop.signum} at step {outcome.global_step}; "
                f"resume with resume_from {outcome.checkpoint}"
            )
            return stop.exit_status
        emitter.stage("saving", "writing the adapter")
        artifact = publish(outcome.model, outcome.tokenizer, spec.base_model, spec.output, emitter, scratch)
        emitter.artifact(directory=artifact.directory, files=artifact.files)
        emitter.stage("completed", f"trained {outcome.global_step} steps")
        emitter.done(outcome.summary())
        return EXIT_OK
    except StopRequested as stopped:
        emitter.info(f"stopped by signal {stopped.signum} before training started; nothing to checkpoint")
        return 128 + stopped.signum
    except Exception as exc:  # every failure must reach the engine as one error event
        traceback.print_exc(file=sys.stderr)
        emitter.error(kind=classify(exc), reason=one_line_reason(exc), detail=traceback_tail(exc))
        return EXIT_FAILED
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


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
    dataset = load_dataset(
        path, seed=hp.seed, validation_split=hp.validation_split, use_validation=hp.use_validation
    )
    emitter.info(
        f"dataset: {dataset.format.value}, {dataset.total_records} records, "
        f"{len(dataset.train)} training and {len(dataset.validation)} validation examples"
    )
    if dataset.skipped_count:
        emitter.warning(skipped_warning(dataset.skipped_count, dataset.skipped))
    if dataset.split_dropped:
        emitter.warning(dataset.split_dropped)
    return dataset


def _import_training():
    """Import the torch-heavy module late, so that a broken environment is reported cleanly."""
    from . import train

    return train
