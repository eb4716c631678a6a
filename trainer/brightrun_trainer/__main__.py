"""Command line: ``python -m brightrun_trainer run --spec SPEC``, ``serve``, ``inspect`` and ``make-tiny-model``.

``inspect --request-json JSON`` (or ``--request FILE``) prints one JSON object: how a dataset
example renders through the base model's chat template and which tokens carry loss, or the
whole dataset's token statistics, decided by the trainer's own encoding (see
:mod:`.inspection` and PROTOCOL.md, "Inspect mode").
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from . import SMOLLM2_MODEL_ID, TINY_MODEL_ID, __version__


def configure_environment() -> None:
    """Quiet the Hugging Face libraries before they are imported (they read these once)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "warning")
    # torch's OpenMP threads spin while they wait for work by default. On a CPU that other
    # processes share (a build, a second job) the spinning threads steal the cores the working
    # ones need: measured here on 2 busy cores, SmolLM2-135M trained 13× slower (175 s against
    # 13 s for 4 steps) and the tiny model 15× slower (BENCHMARKS.md, "CPU estimates").
    # Passive waiting only adds a wake-up to each parallel region. Read when torch loads OpenMP.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    quiet_library_warnings()


#: Libraries whose ``FutureWarning``s are notices to the developers who call them (PEFT calls
#: transformers' deprecated ``is_gradient_checkpointing`` on every run), not news for the person
#: reading a job's log, where each arrives as stderr lines. Other warnings, and FutureWarnings
#: raised by BrightRun's own code, stay visible.
QUIET_FUTURE_WARNINGS_FROM = (
    "accelerate", "gguf", "huggingface_hub", "peft", "tokenizers", "torch", "transformers", "trl",
)  # fmt: skip


def quiet_library_warnings() -> None:
    """Ignore the libraries' FutureWarnings, unless ``PYTHONWARNINGS`` asks for its own filters
    (a developer who sets it wants to see them)."""
    if os.environ.get("PYTHONWARNINGS"):
        return
    for package in QUIET_FUTURE_WARNINGS_FROM:
        warnings.filterwarnings("ignore", category=FutureWarning, module=rf"{package}(\.|$)")


def event_emitter():
    """The protocol's emitter on the real stdout; a rank other than 0 of a data-parallel job
    writes none (rank 0 speaks for the job), and a re-executed trainer continues the numbering.
    Rank 0 also gets the failure marker, when the launcher asked for one."""
    from .devices import RELAUNCH_SEQ_VARIABLE, is_rank_zero
    from .events import EventEmitter, claim_stdout
    from .failure import FailureMarker

    stream = claim_stdout()
    marker = None
    if is_rank_zero():
        marker = FailureMarker.from_env()  # reserves its space now, while there is some
    else:
        stream.close()
        stream = open(os.devnull, "w", encoding="utf-8")
    start = int(os.environ.get(RELAUNCH_SEQ_VARIABLE, "0") or 0)
    return EventEmitter(stream, start_seq=start, marker=marker)


def exit_now(code: int, *streams) -> None:
    """Flush and leave without the interpreter's teardown.

    After ``done`` (or ``error``) nothing is left to do, but a normal exit garbage-collects
    torch, CUDA contexts and thousands of modules and runs their atexit hooks: seconds during
    which the engine waits for the exit status. The events are already written; flush them
    and the standard streams, then ``os._exit``.
    """
    for stream in (*streams, sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(code)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="brightrun_trainer", description="BrightRun's LoRA trainer (see PROTOCOL.md)."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run one training job; events are JSON lines on stdout")
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("--spec", help="path to the job spec (JSON)")
    source.add_argument(
        "--spec-env",
        metavar="NAME",
        help="read the job spec (JSON) from this environment variable (Ray jobs carry it there)",
    )
    serve = commands.add_parser(
        "serve", help="answer chat requests (JSON lines on stdin) with streamed replies on stdout"
    )
    serve.add_argument("--base", required=True, help="base model id or folder")
    serve.add_argument("--adapter", help="folder of the PEFT adapter to load over the base")
    inspect = commands.add_parser(
        "inspect", help="show how the trainer encodes a dataset example, or the dataset's token statistics (one JSON object)"
    )
    request = inspect.add_mutually_exclusive_group(required=True)
    request.add_argument("--request-json", metavar="JSON", help="the request (PROTOCOL.md, \"Inspect mode\")")
    request.add_argument("--request", metavar="FILE", help="read the request from this file")
    tiny = commands.add_parser("make-tiny-model", help=f"materialise {TINY_MODEL_ID} and print its folder")
    tiny.add_argument("--out", help="folder to write it to (default: the cache folder the trainer uses)")
    smol = commands.add_parser("make-smollm2-model", help=f"materialise {SMOLLM2_MODEL_ID} and print its folder")
    smol.add_argument("--out", help="folder to write it to (default: the cache folder the trainer uses)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_environment()
    if args.command == "run":
        from .runner import run

        spec = args.spec if args.spec is not None else f"env:{args.spec_env}"
        emitter = event_emitter()
        exit_now(run(spec, emitter), emitter.stream)
    if args.command == "make-smollm2-model":
        from .smollm2 import build_smollm2, ensure_smollm2

        folder = build_smollm2(args.out) if args.out else ensure_smollm2()
        print(folder)
        return 0
    if args.command == "inspect":
        from .events import claim_stdout
        from .inspection import main as inspect

        out = claim_stdout()  # the reply alone on stdout; library noise goes to stderr
        exit_now(inspect(args.request_json, args.request, out), out)
    if args.command == "serve":
        from .serve import main as serve

        exit_now(serve(args.base, args.adapter))
    from .tiny_model import build_tiny_model, ensure_tiny_model

    folder = build_tiny_model(args.out) if args.out else ensure_tiny_model()
    print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
