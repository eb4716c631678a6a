#!/usr/bin/env bash
# The whole test suite: builds the trainer environment, the test tools' environment
# (schemathesis, the AWS CLI, the runpod SDK), the S3 test server (s3s-fs) and a Ray head node
# (its own venv, on loopback) once per machine,
# then runs the trainer's own Python tests (the RunPod worker's and its hosted-API stand-in's
# among them) and the Rust tests
# (unit, property, CLI, and end-to-end against the real binary, the real trainer, a real daemon
# with dashboards in tmux, schemathesis against the daemon's OpenAPI document, and s3s-fs
# on loopback with the AWS CLI as interop peer, the Ray backend on the Ray head, the RunPod
# backend on the hosted-API stand-in running the real worker).
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
# A Ray head on loopback (GCS 26379, dashboard 28265: Redis holds 6379), started once per
# machine and reused, for the Ray backend's end-to-end tests.
BRIGHTRUN_RAY_ADDRESS="$(scripts/ray-head.sh | tail -n 1)"
export BRIGHTRUN_RAY_ADDRESS
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
command -v tmux >/dev/null || { apt-get update -qq && apt-get install -y -qq tmux; } >/dev/null 2>&1 || true
echo "== trainer tests (pytest)"
"$python" -m pytest trainer/tests -q
echo "== Rust tests (cargo test)"
cargo test --workspace --all-targets --no-fail-fast
# The disk-full tests mount tmpfs file systems: root only (CI runs as root).
if [ "$(id -u)" = 0 ]; then
  echo "== Rust tests that need root (cargo test -- --ignored: the disk-full tests)"
  cargo test --workspace --test e2e_disk_full -- --ignored
else
  echo "== skipped the disk-full tests (tests/e2e_disk_full.rs): mounting a tmpfs needs root"
fi
