#!/usr/bin/env bash
# The whole test suite: builds the trainer environment once per machine, then runs the Rust
# tests (unit, property, CLI and end-to-end against the real binary and the real trainer) and
# the trainer's own Python tests.
set -euo pipefail
cd "$(dirname "$0")/.."
python="$(scripts/trainer-env.sh | tail -n 1)"
export BRIGHTRUN_TRAINER_PYTHON="$python"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
command -v tmux >/dev/null || { apt-get update -qq && apt-get install -y -qq tmux; } >/dev/null 2>&1 || true
echo "== trainer tests (pytest)"
"$python" -m pytest trainer/tests -q
echo "== Rust tests (cargo test)"
cargo test --workspace --all-targets --no-fail-fast
