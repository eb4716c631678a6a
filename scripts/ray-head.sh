#!/usr/bin/env bash
# Starts (once per machine) a Ray head node on loopback for the Ray backend's end-to-end
# tests, and prints its dashboard URL (where the Jobs API answers) on the last line.
# Redis holds 6379, so the head's GCS listens on 26379 and its dashboard on 28265. A head that
# already answers is reused. Its jobs run the trainer with the trainer environment's Python
# (the job names it by absolute path), so only Ray itself is installed here.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$("$root/scripts/ray-env.sh" | tail -n 1)"
gcs_port="${BRIGHTRUN_RAY_GCS_PORT:-26379}"
dash_port="${BRIGHTRUN_RAY_DASHBOARD_PORT:-28265}"
url="http://127.0.0.1:$dash_port"
answers() { curl -fsS --max-time 3 "$url/api/version" >/dev/null 2>&1; }
if ! answers; then
  echo "starting a Ray head on 127.0.0.1:$gcs_port (dashboard $url)" >&2
  # The head and its workers inherit this environment (HF offline for the tiny model).
  HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 RAY_USAGE_STATS_ENABLED=0 \
    "$bin/ray" start --head --node-ip-address=127.0.0.1 --port="$gcs_port" \
    --dashboard-host=127.0.0.1 --dashboard-port="$dash_port" --include-dashboard=true \
    --num-cpus="${BRIGHTRUN_RAY_CPUS:-4}" --num-gpus=0 --disable-usage-stats \
    --temp-dir="${BRIGHTRUN_RAY_TEMP:-/tmp/brightrun-ray}" >&2
  for _ in $(seq 1 60); do answers && break; sleep 1; done
  answers || { echo "the Ray dashboard did not answer at $url" >&2; exit 1; }
fi
echo "$url"
