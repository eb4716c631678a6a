#!/usr/bin/env bash
# Builds (once per machine) the Python environment of the tracking peers the engine's tracking
# consumers and webhook deliveries are tested against (an MLflow tracking server and client,
# TensorBoard's event-file reader, the standardwebhooks verifier), in the cache as
# tracking-<hash of scripts/requirements-tracking.txt>. Prints the environment's bin folder on
# the last line.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/lib-venv.sh
source "$root/scripts/lib-venv.sh"
build_venv tracking "$root/scripts/requirements-tracking.txt" "the tracking peers' environment (mlflow, tensorboard, standardwebhooks)" \
  "$root/scripts/requirements-tracking-nodeps.txt"
echo "$venv/bin"
