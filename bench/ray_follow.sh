#!/usr/bin/env bash
# The engine's CPU while it follows running jobs whose logs are idle: N jobs on a real Ray head
# (scripts/ray-head.sh; each followed through its log-tail WebSocket plus a status GET per poll)
# against N local jobs (a file read per poll) in the same run. The stand-in trainers print one
# event and then sleep, so only the following costs. The store is s3s-fs on loopback (Ray
# needs presigned URLs). We read `brightrun engine`'s CPU time from /proc over a fixed window.
# Usage: bench/ray_follow.sh [SECONDS] [JOBS]   (builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
jobs="${2:-20}"
cargo build --release --quiet
bin="$PWD/target/release/brightrun"
ray="$(bash scripts/ray-head.sh | tail -n 1)"
s3s="$(bash scripts/s3-server.sh | tail -n 1)"
tick=$(getconf CLK_TCK)
work="$(mktemp -d)"
mkdir -p "$work/s3/lora-datasets" "$work/s3/lora-models"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export BRIGHTRUN_SECRET_S3_ACCESS_KEY_ID=bench BRIGHTRUN_SECRET_S3_SECRET_ACCESS_KEY=bench-secret-0123456789
"$s3s" --host 127.0.0.1 --port "$port" --access-key bench --secret-key bench-secret-0123456789 "$work/s3" >/dev/null 2>&1 &
s3pid=$!
trap 'kill $s3pid 2>/dev/null; rm -rf "$work"' EXIT
until (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null; do sleep 0.1; done
cat > "$work/fake-python" <<'PY'
#!/bin/sh
echo '{"type":"stage","seq":0,"ts":0,"stage":"training","message":"idle stand-in"}'
exec sleep 3600
PY
chmod +x "$work/fake-python"

measure() { # KIND: ray or local
  local kind="$1" home="$work/home-$1" d i
  mkdir -p "$home/config"
  {
    printf '[trainer]\npython = "%s"\n[engine]\npoll_interval_millis = 500\nstall_after_secs = 100000\ndispatch_batch = %s\n' "$work/fake-python" "$jobs"
    printf '[storage]\nbackend = "s3"\n[storage.s3]\nendpoint = "http://127.0.0.1:%s"\nforce_path_style = true\n' "$port"
    printf '[backends.ray]\nkind = "ray"\naddress = "%s"\nrequest_gpus = false\npython = "%s"\n' "$ray" "$work/fake-python"
  } > "$home/config/config.toml"
  export BRIGHTRUN_HOME="$home"
  for i in $(seq 1 50); do echo "{\"prompt\":\"p$i\",\"completion\":\"c$i\"}"; done > "$home/d.jsonl"
  "$bin" datasets add "$home/d.jsonl" --wait --json > /dev/null
  d=$("$bin" datasets list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
  for _ in $(seq 1 "$jobs"); do
    "$bin" jobs create --dataset "$d" --backend "$kind" --set base_model=brightrun/tiny-random-llama --gpu A10G --yes --json > /dev/null
  done
  "$bin" engine 2> /dev/null &
  local pid=$!
  # Every job running (its stand-in's first event seen) before the window opens.
  local running=0
  for _ in $(seq 1 180); do
    running=$("$bin" jobs list --json 2>/dev/null | python3 -c 'import json,sys; print(sum(j["status"]=="running" for j in json.load(sys.stdin)))' 2>/dev/null || echo 0)
    [ "$running" -ge "$jobs" ] && break
    sleep 1
  done
  sleep 3
  local t0 t1
  t0=$(awk '{print $14+$15}' /proc/$pid/stat)
  sleep "$secs"
  t1=$(awk '{print $14+$15}' /proc/$pid/stat)
  # Stop the jobs (Ray's too) before the engine goes.
  for id in $("$bin" jobs list --json 2>/dev/null | python3 -c 'import json,sys; [print(j["id"]) for j in json.load(sys.stdin)]' 2>/dev/null); do
    "$bin" jobs cancel "$id" --json >/dev/null 2>&1 || true
  done
  kill -INT $pid; wait $pid 2>/dev/null || true
  pkill -f "$work/fake-python" 2>/dev/null || true
  python3 -c "
cpu = ($t1 - $t0) / $tick
print(f'{\"$kind\":<6} jobs={$jobs} running={$running} window={$secs}s engine_cpu={cpu:.3f}s share_of_one_core={100*cpu/$secs:.2f}% per_job={1000*cpu/$secs/$jobs:.3f} ms/s')
"
}

echo "# engine CPU following $jobs running jobs with idle logs ($(nproc) cores, $(date -u +%F))"
measure local
measure ray
