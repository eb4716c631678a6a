#!/usr/bin/env bash
# The engine's CPU cost per running job while it idle-polls: `brightrun engine` follows N jobs
# whose stand-in trainers have started and then stay silent, and we read the engine process's
# CPU time from /proc over a fixed window. Compared in the same run with 0 jobs (the baseline:
# an engine with nothing to do).
# Usage: bench/engine_idle.sh [SECONDS] [JOBS]   (builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-20}"
jobs="${2:-5}"
cargo build --release --quiet
bin="$PWD/target/release/brightrun"
tick=$(getconf CLK_TCK)
# shellcheck source=bench/idle_jobs.sh
source bench/idle_jobs.sh

measure() { # $1 = number of jobs
  local n="$1" home
  make_idle_home "$n"
  "$bin" engine 2> /dev/null &
  local pid=$!
  sleep 5 # dispatch, first polls, housekeeping
  local running
  running=$(find "$home/data/jobs" -name pid 2>/dev/null | wc -l)
  local t0 t1
  t0=$(awk '{print $14+$15}' /proc/$pid/stat)
  sleep "$secs"
  t1=$(awk '{print $14+$15}' /proc/$pid/stat)
  kill -INT $pid; wait $pid 2>/dev/null || true
  kill_trainers "$home"
  rm -rf "$home"
  python3 -c "
cpu = ($t1 - $t0) / $tick
print(f'jobs={$n} running={$running} window={$secs}s engine_cpu={cpu:.3f}s share_of_one_core={100*cpu/$secs:.3f}%')
"
}

echo "# brightrun engine idle-polling CPU ($(nproc) cores, $(date -u +%F))"
measure 0
measure "$jobs"
