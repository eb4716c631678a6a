#!/usr/bin/env bash
# The MLflow consumer's throughput (metric points per second into a real tracking server)
# against MLflow's own Python client logging the same number of points in batches, same
# server, same run: bash bench/tracking.sh [N] (default 20000).
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-20000}"
BRIGHTRUN_TRACKING_BIN="$(scripts/tracking-env.sh | tail -n 1)"
export BRIGHTRUN_TRACKING_BIN
dir="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
bash tests/fixtures/mlflow_server.sh "$dir" "$port" >/dev/null 2>&1 &
pid=$!
trap 'kill -TERM -- -$pid 2>/dev/null || kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 120); do
  curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 1
done
uri="http://127.0.0.1:$port"
echo "== MLflow at $uri, $n points each"
"$BRIGHTRUN_TRACKING_BIN/python" bench/tracking_baseline.py "$uri" "$n"
BRIGHTRUN_BENCH_MLFLOW_URI="$uri" BRIGHTRUN_BENCH_POINTS="$n" \
  cargo test -q -p brightrun-engine --lib tracking::mlflow::bench -- --ignored --nocapture 2>&1 \
  | grep -E 'points/s|panicked|error' || true
"$BRIGHTRUN_TRACKING_BIN/python" bench/tracking_baseline.py "$uri" "$n"
