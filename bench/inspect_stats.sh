#!/usr/bin/env bash
# Exact pre-flight counts (issue 29): `brightrun datasets inspect DATASET --model
# brightrun/smollm2-135m-instruct --stats --json` on a generated ~200 MB OpenAI-chat JSONL file,
# against, in the same run, the trainer tokenizing the same file for training (a driver run with
# the trainer's Python: the run's `load_dataset`, `resolve_base_model` + `load_tokenizer` +
# `prepare_tokenizer`, and `train._encode`, i.e. `encode_examples` over the training and the
# validation examples, at the same max_seq_length), timed from start to end.
#
# - the dataset: written by bench/inspect_stats.py, deterministic (SEED): multi-turn
#   conversations (1-5 exchanges), every one with a system prompt, log-normal message lengths with
#   a long tail, lists, code blocks, ~2 % non-ASCII words, 10 % of the lines `\uXXXX`-escaped;
# - warm-up first, not measured: `make-smollm2-model` (builds SmolLM2 from its GGUF the first
#   time on a machine: 25-60 s) and a `datasets inspect --stats` of a 3-record dataset;
# - `datasets add --wait` of the file (the validator; context only), wall and peak RSS;
# - `datasets inspect --stats`: wall, records/s, MB/s (10^6 bytes), peak RSS of brightrun and of
#   the trainer's Python (BRIGHTRUN_TRAINER_PYTHON names a wrapper that runs it under
#   `/usr/bin/time -v`), then three more calls served from the engine's cache;
# - the baseline under `/usr/bin/time -v`: wall, peak RSS, its phases;
# - whether stats.tokens (and examples, trained tokens, truncated, skipped) equal the baseline's.
#
#   bench/inspect_stats.sh      (BIN=target/debug/brightrun; SIZE_MB=200 SEED=29)
#
# Needs the trainer's Python (BRIGHTRUN_TRAINER_PYTHON, or scripts/trainer-env.sh builds it) and
# /usr/bin/time. Prints one JSON line per measure on stdout, progress on stderr. About 7 minutes
# on 2 cores; the temp folder (the dataset, ~400 MB with the store's copy) is deleted at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export BIN="${BIN:-${CARGO_TARGET_DIR:-target}/debug/brightrun}"
[ -x "$BIN" ] || { echo "no brightrun binary at $BIN (cargo build first)" >&2; exit 2; }
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
export PY="${BRIGHTRUN_TRAINER_PYTHON:-$(scripts/trainer-env.sh | tail -1)}"
export BRIGHTRUN_TRAINER_PYTHON="$PY"
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (GNU time)" >&2; exit 2; }
work=$(mktemp -d /tmp/brightrun-inspect-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/home/config"
: > "$work/home/config/config.toml"
export WORK="$work" BRIGHTRUN_HOME="$work/home" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export SIZE_MB="${SIZE_MB:-200}" SEED="${SEED:-29}"
python3 bench/inspect_stats.py
