#!/usr/bin/env bash
# The whole test suite: builds the trainer environment, the test tools' environment
# (schemathesis, the AWS CLI, the runpod SDK), the tracking peers' environment (an MLflow server,
# TensorBoard's reader, standardwebhooks), the S3 test server (s3s-fs) and a Ray head node
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
# The tracking peers' venv: the MLflow, TensorBoard and webhook tests' fixtures run from it.
BRIGHTRUN_TRACKING_BIN="$(scripts/tracking-env.sh | tail -n 1)"
export BRIGHTRUN_TRACKING_BIN
BRIGHTRUN_S3S_FS="$(scripts/s3-server.sh | tail -n 1)"
export BRIGHTRUN_S3S_FS
# A Ray head on loopback (GCS 26379, dashboard 28265: Redis holds 6379), started once per
# machine and reused, for the Ray backend's end-to-end tests.
BRIGHTRUN_RAY_ADDRESS="$(scripts/ray-head.sh | tail -n 1)"
export BRIGHTRUN_RAY_ADDRESS
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
command -v tmux >/dev/null || { apt-get update -qq && apt-get install -y -qq tmux; } >/dev/null 2>&1 || true
# Go's text/template renders the exported Modelfile's TEMPLATE as Ollama does (trainer/tests/test_export.py).
command -v go >/dev/null || { apt-get update -qq && apt-get install -y -qq golang-go; } >/dev/null 2>&1 || true
# Every store transaction opened on an async worker (outside store::off_runtime) by any engine
# the tests run (the binary, the daemon, in-process engines) is written here; the suite fails
# on any (engine/src/store/blocking.rs).
BRIGHTRUN_STORE_VIOLATIONS="$(mktemp -t brightrun-store-violations.XXXXXX)"
export BRIGHTRUN_STORE_VIOLATIONS
echo "== trainer tests (pytest)"
"$python" -m pytest trainer/tests -q
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
echo "== Rust tests (cargo nextest run --profile ci: each test its own process, binaries side by side)"
cargo nextest run --workspace --lib --bins --tests --profile ci
# The benches once each in test mode (a quick run of each, so none rots); nextest cannot list
# the benches that print figures instead of using a harness.
echo "== Rust benches in test mode (cargo test --benches)"
cargo test --workspace --benches
# The preference benchmark against TRL's DPOTrainer, quick (the tiny model, 3 steps), so it
# keeps running against both trainers (its figures are BENCHMARKS.md's, from a full run).
echo "== bench/preference.sh --quick"
BRIGHTRUN_TRAINER_PYTHON="$python" bash bench/preference.sh --quick
# The disk-full tests mount tmpfs file systems: root only (CI runs as root).
if [ "$(id -u)" = 0 ]; then
  echo "== Rust tests that need root (--run-ignored: the disk-full tests)"
  cargo nextest run --workspace --test e2e_disk_full --profile ci --run-ignored only
else
  echo "== skipped the disk-full tests (tests/e2e_disk_full.rs): mounting a tmpfs needs root"
fi
if [ -s "$BRIGHTRUN_STORE_VIOLATIONS" ]; then
  echo "== store transactions on async workers (each must go through store::off_runtime):"
  sort -u "$BRIGHTRUN_STORE_VIOLATIONS"
  exit 1
fi
rm -f "$BRIGHTRUN_STORE_VIOLATIONS"
