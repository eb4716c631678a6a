#!/usr/bin/env bash
# The whole test suite: builds the trainer environment, the test tools' environment
# (schemathesis, the AWS CLI, the runpod SDK) and the S3 test server (s3s-fs) once per machine,
# then runs the trainer's own Python tests (the RunPod worker's and its hosted-API stand-in's
# among them) and the Rust tests
# (unit, property, CLI, and end-to-end against the real binary, the real trainer, a real daemon
# with dashboards in tmux, schemathesis against the daemon's OpenAPI document, and s3s-fs
# on loopback with the AWS CLI as interop peer).
set -euo pipefail
cd "$(dirname "$0")/.."
python="$(scripts/trainer-env.sh | tail -n 1)"
export BRIGHTRUN_TRAINER_PYTHON="$python"
BRIGHTRUN_TOOLS_BIN="$(scripts/tools-env.sh | tail -n 1)"
export BRIGHTRUN_TOOLS_BIN
# The runpod SDK is in the tools venv: the RunPod worker's tests and the hosted-API stand-in
# (tests/fixtures/runpod_standin.py) run the handler with this python.
export BRIGHTRUN_RUNPOD_PYTHON="$BRIGHTRUN_TOOLS_BIN/python"
BRIGHTRUN_S3S_FS="$(scripts/s3-server.sh | tail -n 1)"
export BRIGHTRUN_S3S_FS
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
command -v tmux >/dev/null || { apt-get update -qq && apt-get install -y -qq tmux; } >/dev/null 2>&1 || true
echo "== trainer tests (pytest)"
"$python" -m pytest trainer/tests -q
echo "== Rust tests (cargo test)"
cargo test --workspace --all-targets --no-fail-fast
