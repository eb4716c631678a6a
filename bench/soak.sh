#!/usr/bin/env bash
# A bounded soak of the daemon over TCP: `brightrun serve --listen 127.0.0.1:PORT` on a
# temporary home with a bearer token, and for SOAK_SECONDS (default 1800):
#   - 64 clients looping on the list routes (GET /api/jobs, GET /api/datasets,
#     POST /api/v1/call {"op":"list_jobs"}), keep-alive, no pause between requests;
#   - 50 subscribers following GET /api/events;
#   - one job whose stand-in trainer prints 1,000 metric points a second;
#   - 200 idle TCP connections and 20 slowloris ones (a header byte every 5 s), opened and
#     left; one the server closes is counted as cut and opened again.
# The load is bench/soak_driver.py (Python standard library, no venv). It prints the p99 of the
# list routes, the daemon's RSS and open files (/proc/PID/status, /proc/PID/fd) at the start,
# every minute and at the end, and fails (exit 1) on growth without bound: open files at the
# end over SOAK_GROWTH (2) times their figure at one minute, or RSS still growing by more than
# 10% over the run's last third (bounded caches fill first: judge a run of 15 minutes or more).
#
# Usage: bench/soak.sh                    (builds the release binary first)
#        SOAK_SECONDS=300 bench/soak.sh   (a shortened run)
# Environment: SOAK_SECONDS, SOAK_PORT (default: a free one), SOAK_CLIENTS (64),
# SOAK_SUBSCRIBERS (50), SOAK_POINTS_PER_SEC (1000), SOAK_IDLE (200), SOAK_SLOWLORIS (20),
# SOAK_SLOWLORIS_EVERY (5 s), SOAK_INTERVAL (60 s), SOAK_GROWTH (2), SOAK_JSON (where to
# write every sample as JSON; default the run's folder, which is kept only with SOAK_KEEP=1),
# BRIGHTRUN_BIN (a built binary: no build).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
seconds="${SOAK_SECONDS:-1800}"
rate="${SOAK_POINTS_PER_SEC:-1000}"
if [ -n "${BRIGHTRUN_BIN:-}" ]; then
  bin="$BRIGHTRUN_BIN"
else
  cargo build --release --quiet --bin brightrun
  bin="${CARGO_TARGET_DIR:-$root/target}/release/brightrun"
fi
port="${SOAK_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
# The driver holds ~350 connections, the daemon as many.
ulimit -n "$(ulimit -Hn)" 2> /dev/null || true

home="$(mktemp -d)"
export BRIGHTRUN_HOME="$home"
daemon=""
job=""
cleanup() {
  if [ -n "$job" ] && [ -n "$daemon" ] && kill -0 "$daemon" 2> /dev/null; then
    timeout 30 "$bin" jobs cancel "$job" > /dev/null 2>&1 || true
  fi
  if [ -n "$daemon" ]; then
    kill -TERM "$daemon" 2> /dev/null || true
    for _ in $(seq 1 100); do kill -0 "$daemon" 2> /dev/null || break; sleep 0.1; done
    kill -KILL "$daemon" 2> /dev/null || true
    wait "$daemon" 2> /dev/null || true
  fi
  # The stand-in trainer (its pid is in its counter file), if the cancel did not end it.
  if [ -f "$home/standin.count" ]; then
    pid="$(awk '{print $2}' "$home/standin.count")"
    if [ -n "$pid" ] && grep -q standin.py "/proc/$pid/cmdline" 2> /dev/null; then
      kill -TERM "$pid" 2> /dev/null || true
    fi
  fi
  if [ "${SOAK_KEEP:-0}" = 1 ]; then
    echo "kept the run's home: $home" >&2
  else
    rm -rf "$home"
  fi
}
trap cleanup EXIT

# The stand-in trainer: a stage, then `rate` metric points a second, in batches every 20 ms,
# until it is stopped; it writes how many it printed (and its pid) to standin.count.
mkdir -p "$home/config"
cat > "$home/standin.py" <<PY
import os, sys, time
rate = $rate
# A run this long at this rate, and some: the engine ignores steps past twice a run's total.
total = ($seconds + 300) * rate
count = "$home/standin.count"
out = sys.stdout
out.write('{"type":"stage","seq":0,"ts":%.3f,"stage":"training","message":"soak stand-in"}\n' % time.time())
out.flush()
n, t0, last = 0, time.monotonic(), 0.0
while True:
    now = time.monotonic()
    due = int((now - t0) * rate)
    if due > n:
        ts = time.time()
        out.write("".join(
            '{"type":"metric","seq":%d,"ts":%.3f,"step":%d,"total_steps":%d,"epoch":0.0,'
            '"training_loss":%.4f,"learning_rate":0.0001,"throughput":900.0}\n'
            % (i, ts, i, total, 2.0 / (1 + i * 1e-4)) for i in range(n + 1, due + 1)))
        out.flush()
        n = due
    if now - last >= 0.5:
        with open(count + ".tmp", "w") as f:
            f.write("%d %d\n" % (n, os.getpid()))
        os.replace(count + ".tmp", count)
        last = now
    time.sleep(0.02)
PY
printf '#!/bin/sh\nexec python3 %s\n' "$home/standin.py" > "$home/fake-python"
chmod +x "$home/fake-python"
printf '[trainer]\npython = "%s"\n[engine]\nstall_after_secs = 1000000\n' "$home/fake-python" > "$home/config/config.toml"

for i in $(seq 1 50); do echo "{\"prompt\":\"p$i\",\"completion\":\"c$i\"}"; done > "$home/d.jsonl"
"$bin" datasets add "$home/d.jsonl" --wait --json > /dev/null
dataset=$("$bin" datasets list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
token="$("$bin" tokens create 2> /dev/null)"

"$bin" serve --listen "127.0.0.1:$port" 2> "$home/serve.log" &
daemon=$!
for _ in $(seq 1 200); do
  [ -S "$home/state/engine.sock" ] && python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2> /dev/null && break
  kill -0 "$daemon" 2> /dev/null || break
  sleep 0.1
done
python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2> /dev/null \
  || { echo "the daemon did not start: $(cat "$home/serve.log")" >&2; exit 2; }

job=$("$bin" jobs create --dataset "$dataset" --set base_model=brightrun/tiny-random-llama --gpu A10G --yes --json \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
for _ in $(seq 1 600); do
  [ -s "$home/standin.count" ] && break
  sleep 0.1
done
[ -s "$home/standin.count" ] || { echo "the job's stand-in trainer did not start: $(tail -n 20 "$home/serve.log")" >&2; exit 2; }

echo "soak: ${seconds}s on 127.0.0.1:$port, daemon pid $daemon, job $job ($rate points/s), $(nproc) CPUs" >&2
rc=0
python3 bench/soak_driver.py --port "$port" --token "$token" --pid "$daemon" --seconds "$seconds" \
  --interval "${SOAK_INTERVAL:-60}" --clients "${SOAK_CLIENTS:-64}" \
  --subscribers "${SOAK_SUBSCRIBERS:-50}" --idle "${SOAK_IDLE:-200}" \
  --slowloris "${SOAK_SLOWLORIS:-20}" --slowloris-every "${SOAK_SLOWLORIS_EVERY:-5}" \
  --job "$job" --counter "$home/standin.count" --store "$home/data/brightrun.redb" --growth "${SOAK_GROWTH:-2}" \
  --json "${SOAK_JSON:-$home/soak.json}" || rc=$?
kill -0 "$daemon" 2> /dev/null || { echo "the daemon died during the soak: $(tail -n 20 "$home/serve.log")" >&2; rc=2; }
echo "home after the run: $(du -sh "$home" | cut -f1) (events.jsonl $(du -ch "$home"/data/jobs/*/events.jsonl 2> /dev/null | tail -n 1 | cut -f1))" >&2
exit "$rc"
