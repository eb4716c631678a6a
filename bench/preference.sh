#!/usr/bin/env bash
# DPO through BrightRun's trainer against TRL 1.16's DPOTrainer (PEFT, reference = adapter
# disabled) on SmolLM2-135M-Instruct, same data and settings, fp32 on the CPU; tokens/s and peak
# RSS of each (its own child process) and their ratio. See bench/preference_bench.py.
#
#   bash bench/preference.sh [--steps 12] [--batch 4] [--max-length 128]
#   bash bench/preference.sh --quick     # the tiny model, 3 steps: under a minute (CI test mode)
#
# Uses the trainer's Python (BRIGHTRUN_TRAINER_PYTHON, or scripts/trainer-env.sh builds it; TRL
# comes from trainer/requirements-dev.txt, which that script installs).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
PY="${BRIGHTRUN_TRAINER_PYTHON:-$("$root/scripts/trainer-env.sh" | tail -1)}"
"$PY" -c "import trl" 2>/dev/null || { echo "TRL is missing from $PY (pip install -r trainer/requirements-dev.txt)" >&2; exit 2; }
export PYTHONPATH="$root/trainer${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's trainer
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec "$PY" "$root/bench/preference_bench.py" "$@"
