#!/usr/bin/env bash
# The playground's speed (issue 24): SmolLM2-135M-Instruct with a short adapter on this machine's
# CPU, through the real binary, against a bare transformers `model.generate` loop in the same run
# (bench/playground_bare.py: same model and adapter, same two chat turns, greedy, same
# max_new_tokens, a TextIteratorStreamer for the first token).
#
# - first token and tokens/s of turn 1 (the worker just loaded: cold) and turn 2 (warm) of a
#   `models chat --json` conversation, embedded, against the bare loop's, adapter and --base;
# - cold start: loading the model, and the command's wall time;
# - the first byte of a one-shot `models chat --prompt` reply embedded (cold), and attached to a
#   daemon with a warm worker over its Unix socket and over TCP with a token.
#
#   bench/playground.sh            (BIN=target/debug/brightrun by default; REPS=3, MAX_NEW_TOKENS=128)
#
# Needs the trainer's Python (BRIGHTRUN_TRAINER_PYTHON, or scripts/trainer-env.sh builds it) and
# SmolLM2 (built from its GGUF once per machine). Trains a 1-epoch run first (~1 min).
set -euo pipefail
cd "$(dirname "$0")/.."
export BIN="${BIN:-${CARGO_TARGET_DIR:-target}/debug/brightrun}"
export PY="${BRIGHTRUN_TRAINER_PYTHON:-$(scripts/trainer-env.sh | tail -1)}"
export BRIGHTRUN_TRAINER_PYTHON="$PY"
home=$(mktemp -d /tmp/brightrun-playground-bench.XXXXXX)
trap 'rm -rf "$home"' EXIT
export BRIGHTRUN_HOME="$home" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export REPS="${REPS:-3}" MAX_NEW_TOKENS="${MAX_NEW_TOKENS:-128}"
python3 bench/playground.py
