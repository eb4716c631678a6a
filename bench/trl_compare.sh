#!/usr/bin/env bash
# Builds (once) a separate venv with the trainer's pins plus TRL, then runs the comparison:
#   bash bench/trl_compare.sh [trl_compare.py arguments…]
# The trainer's own venv is left untouched (its name is a hash of trainer/requirements.txt).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
TRL_VERSION="${TRL_VERSION:-1.16.0}"  # newest TRL on PyPI whose requirements accept transformers 5.24
venv="${BRIGHTRUN_BENCH_VENV:-$HOME/.cache/brightrun/bench-trl}"
if ! "$venv/bin/python" -c "import trl" 2>/dev/null; then
  echo "building $venv (torch, transformers, TRL $TRL_VERSION: a few minutes, once)" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
  "$venv/bin/python" -m pip install --quiet -r "$root/trainer/requirements.txt" "trl==$TRL_VERSION" >&2
fi
export PYTHONPATH="$root/trainer${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's trainer, not an installed copy
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec nice "$venv/bin/python" "$root/bench/trl_compare.py" "$@"
