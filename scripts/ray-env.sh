#!/usr/bin/env bash
# Builds (once per machine) the Python environment holding Ray (`ray[default]`), in the cache
# as ray-<hash of scripts/requirements-ray.txt>. Prints the environment's bin folder on the
# last line.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/lib-venv.sh
source "$root/scripts/lib-venv.sh"
build_venv ray "$root/scripts/requirements-ray.txt" "Ray's environment (ray[default], for a test head node)"
echo "$venv/bin"
