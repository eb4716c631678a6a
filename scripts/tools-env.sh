#!/usr/bin/env bash
# Builds (once per machine) the Python environment of the test tools that act as interop
# peers of the daemon (schemathesis against its OpenAPI document), in
# ${BRIGHTRUN_CACHE_DIR:-$XDG_CACHE_HOME/brightrun}/tools-<first 12 hex of sha256(requirements)>.
# Prints the environment's bin folder on the last line.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
req="$root/scripts/requirements-tools.txt"
hash="$(sha256sum "$req" | cut -c1-12)"
cache="${BRIGHTRUN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/brightrun}"
venv="$cache/tools-$hash"
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  echo "building the test tools' environment in $venv (schemathesis; once)" >&2
  rm -rf "$venv"
  mkdir -p "$cache"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
  "$venv/bin/python" -m pip install --quiet -r "$req" >&2
  touch "$venv/.complete"
fi
echo "$venv/bin"
