#!/usr/bin/env bash
# Builds (once per machine) the trainer's Python environment where the engine looks for it:
# ${BRIGHTRUN_CACHE_DIR:-$XDG_CACHE_HOME/brightrun}/trainer-<first 12 hex of sha256(requirements.txt)>.
# Prints the environment's python path on the last line.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
req="$root/trainer/requirements.txt"
hash="$(sha256sum "$req" | cut -c1-12)"
cache="${BRIGHTRUN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/brightrun}"
venv="$cache/trainer-$hash"
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  echo "building the trainer environment in $venv (torch, PEFT, TRL: a few minutes, once)" >&2
  rm -rf "$venv"
  mkdir -p "$cache"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
  "$venv/bin/python" -m pip install --quiet -r "$req" >&2
  # Written last: an interrupted build is redone from scratch next time.
  touch "$venv/.complete"
fi
# The engine builds the same folder without the test tools; add them when they are missing.
if ! "$venv/bin/python" -c "import pytest" 2>/dev/null; then
  "$venv/bin/python" -m pip install --quiet -r "$root/trainer/requirements-dev.txt" >&2
fi
echo "$venv/bin/python"
