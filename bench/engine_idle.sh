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

measure() { # $1 = number of jobs
  local n="$1" home
  home="$(mktemp -d)"
  mkdir -p "$home/config"
  cat > "$home/fake-python" <<'PY'
#!/bin/sh
echo '{"type":"stage","seq":0,"ts":0,"stage":"training","message":"idle stand-in"}'
exec sleep 3600
PY
  chmod +x "$home/fake-python"
  printf '[trainer]\npython = "%s"\n[engine]\npoll_interval_millis = 500\nstall_after_secs = 100000\n' "$home/fake-python" > "$home/config/config.toml"
  export BRIGHTRUN_HOME="$home"
  for i in $(seq 1 50); do echo "{\"prompt\":\"p$i\",\"completion\":\"c$i\"}"; done > "$home/d.jsonl"
  "$bin" datasets add "$home/d.jsonl" --wait --json > /dev/null
  local d
  d=$("$bin" datasets list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
  for _ in $(seq 1 "$n"); do
    "$bin" jobs create --dataset "$d" --set base_model=brightrun/tiny-random-llama --gpu A10G --yes --json > /dev/null
  done
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
  pkill -f "brightrun-trainer-" 2>/dev/null || true
  rm -rf "$home"
  python3 -c "
cpu = ($t1 - $t0) / $tick
print(f'jobs={$n} running={$running} window={$secs}s engine_cpu={cpu:.3f}s share_of_one_core={100*cpu/$secs:.3f}%')
"
}

echo "# brightrun engine idle-polling CPU ($(nproc) cores, $(date -u +%F))"
measure 0
measure "$jobs"
