"""Command line: ``python -m brightrun_trainer run --spec SPEC`` and ``make-tiny-model``."""

from __future__ import annotations

import argparse
import os
import sys

from . import TINY_MODEL_ID, __version__


def configure_environment() -> None:
    """Quiet the Hugging Face libraries before they are imported (they read these once)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "warning")


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
    tiny = commands.add_parser("make-tiny-model", help=f"materialise {TINY_MODEL_ID} and print its folder")
    tiny.add_argument("--out", help="folder to write it to (default: the cache folder the trainer uses)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_environment()
    if args.command == "run":
        from .events import EventEmitter, claim_stdout
        from .runner import run

        spec = args.spec if args.spec is not None else f"env:{args.spec_env}"
        return run(spec, EventEmitter(claim_stdout()))
    from .tiny_model import build_tiny_model, ensure_tiny_model

    folder = build_tiny_model(args.out) if args.out else ensure_tiny_model()
    print(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
