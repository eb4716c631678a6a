#!/usr/bin/env bash
# Checkpoints in storage (issue 25): what storing them in S3 costs a Ray run, and how soon
# `jobs retry` trains again from one, against starting over, in one run.
#
# - SmolLM2-135M-Instruct on the Ray backend (CPU: request_gpus = false; the trainer's Python),
#   storage S3 on a private s3s-fs on loopback; the same 1-epoch job with
#   `[training] checkpoint_steps = CKPT_STEPS` and, the baseline, unset, RUNS times each
#   alternating (the daemon restarted with the other config): each checkpoint's
#   archive size and seconds (packing + PUT, the `checkpoint` event's `object`), the step time
#   and the training time from the trainer's events in Ray's job log;
# - a third such job cancelled once two checkpoints are stored, then REPS times, one after the
#   other: `jobs retry ID --yes --json` (resumes from the latest stored checkpoint) and
#   `jobs retry ID --from-scratch --yes --json`, each timed from the command's start to the new
#   job's first `metric` event (its `ts`, read from Ray's job log), then cancelled.
#
#   bench/checkpoints.sh  (BIN=target/debug/brightrun; RUNS=2 REPS=2 CKPT_STEPS=4 EXAMPLES=140 BATCH=4)
#
# Needs a Ray head (BRIGHTRUN_RAY_ADDRESS, or scripts/ray-head.sh starts one), s3s-fs
# (BRIGHTRUN_S3S_FS, or scripts/s3-server.sh installs it), the trainer's Python
# (BRIGHTRUN_TRAINER_PYTHON, or scripts/trainer-env.sh builds it) and SmolLM2 (built from its
# GGUF once per machine). About 10 minutes on 2 cores. The trainer's checkpoint folders of these
# runs on the Ray worker (/tmp/brightrun-checkpoints/<job>, when the worker is this machine) are
# measured and removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export BIN="${BIN:-${CARGO_TARGET_DIR:-target}/debug/brightrun}"
export PY="${BRIGHTRUN_TRAINER_PYTHON:-$(scripts/trainer-env.sh | tail -1)}"
export BRIGHTRUN_TRAINER_PYTHON="$PY"
export RAY="${BRIGHTRUN_RAY_ADDRESS:-$(scripts/ray-head.sh | tail -1)}"
export S3S_FS="${BRIGHTRUN_S3S_FS:-$(scripts/s3-server.sh | tail -1)}"
home=$(mktemp -d /tmp/brightrun-checkpoints-bench.XXXXXX)
trap 'rm -rf "$home"' EXIT
export BRIGHTRUN_HOME="$home" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export RUNS="${RUNS:-2}" REPS="${REPS:-2}" CKPT_STEPS="${CKPT_STEPS:-4}" EXAMPLES="${EXAMPLES:-140}" BATCH="${BATCH:-4}"
python3 bench/checkpoints.py
