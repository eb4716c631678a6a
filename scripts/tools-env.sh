#!/usr/bin/env bash
# Builds (once per machine) the Python environment of the test tools that act as interop
# peers of the daemon (schemathesis against its OpenAPI document, the AWS CLI) and the runpod
# SDK the RunPod worker's tests run the handler with, in the cache as
# tools-<hash of scripts/requirements-tools.txt>. Prints the environment's bin folder on the
# last line.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=scripts/lib-venv.sh
source "$root/scripts/lib-venv.sh"
build_venv tools "$root/scripts/requirements-tools.txt" "the test tools' environment (schemathesis, awscli, runpod)"
echo "$venv/bin"
