#!/usr/bin/env bash
# Builds (once per machine) the trainer's Python environment where the engine looks for it:
# ${BRIGHTRUN_CACHE_DIR:-$XDG_CACHE_HOME/brightrun}/trainer-<first 12 hex of sha256(requirements.txt)>.
# Prints the environment's python path on the last line.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/lib-venv.sh
source "$root/scripts/lib-venv.sh"
build_venv trainer "$root/trainer/requirements.txt" "the trainer environment (torch, PEFT, TRL: a few minutes)" \
  "$root/trainer/requirements-nodeps.txt"
# The engine builds the same folder without the test tools; add them when they are missing.
if ! "$venv/bin/python" -c "import pytest, trl" 2>/dev/null; then
  "$venv/bin/python" -m pip install --quiet -r "$root/trainer/requirements-dev.txt" >&2
fi
# Export mode's tools (trainer/requirements-export.txt): llama.cpp's converter beside the venv and
# llama-cpp-python in it (a compile of several minutes the first time), so tests and the first
# export find them ready. Without the network the export installs them on first use instead.
PYTHONPATH="$root/trainer" "$venv/bin/python" -m brightrun_trainer.llama_tools >/dev/null \
  || echo "warning: llama.cpp's tools for GGUF exports are not installed (see above)" >&2
echo "$venv/bin/python"
