#!/usr/bin/env bash
# Idle CPU of the dashboard attached to a daemon, against the embedded dashboard, in the same
# run. Embedded: `brightrun` (dashboard + engine in one process) in a 200x50 tmux terminal on
# the Jobs tab, as bench/tui_idle.sh runs it. Attached: `brightrun serve` owns the same kind of
# home and `brightrun` in tmux attaches to it over the home's Unix socket; the dashboard
# process and the daemon are measured separately. N jobs run with stand-in trainers that start
# and stay silent (bench/idle_jobs.sh, poll interval 500 ms). After every job has started and
# 5 s of warm-up, CPU time is read from /proc/PID/stat over the window; nobody presses a key.
# Usage: bench/attach_idle.sh [SECONDS] [JOBS]   (builds the release binary first; needs tmux)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-15}"
jobs="${2:-5}"
command -v tmux > /dev/null || { echo "tmux is needed (scripts/test.sh installs it)" >&2; exit 2; }
cargo build --release --quiet --bin brightrun
bin="$PWD/target/release/brightrun"
tick=$(getconf CLK_TCK)
# shellcheck source=bench/idle_jobs.sh
source bench/idle_jobs.sh

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

measure() { # $1 = embedded|attached, $2 = number of jobs
  local mode="$1" n="$2"
  # Not local: the EXIT trap may need them after a failure.
  sock="brightrun-attach-idle-$$-$mode-$n"
  daemon=""
  make_idle_home "$n"
  if [ "$mode" = attached ]; then
    "$bin" serve 2> "$home/serve.log" &
    daemon=$!
    for _ in $(seq 1 100); do [ -S "$home/state/engine.sock" ] && break; sleep 0.1; done
    [ -S "$home/state/engine.sock" ] || { echo "the daemon did not start: $(cat "$home/serve.log")" >&2; exit 1; }
  fi
  env -u TMUX tmux -f /dev/null -L "$sock" new-session -d -x 200 -y 50 -c "$home" \
    "exec env BRIGHTRUN_HOME='$home' '$bin'"
  socket_path="$(tmux -L "$sock" display -p '#{socket_path}')"
  pid="$(tmux -L "$sock" display -p '#{pane_pid}')"
  server="$(tmux -L "$sock" display -p '#{pid}')"
  cleanup() {
    tmux -L "$sock" kill-server 2> /dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
    if [ -n "$daemon" ]; then
      kill -TERM "$daemon" 2> /dev/null || true
      wait "$daemon" 2> /dev/null || true
    fi
    kill_trainers "$home"
    rm -f "$socket_path"
    rm -rf "$home"
  }
  trap cleanup EXIT
  sleep 2
  tmux -L "$sock" send-keys 3 # the Jobs tab
  local running=0
  for _ in $(seq 1 300); do
    running=$(find "$home/data/jobs" -name pid 2> /dev/null | wc -l)
    [ "$running" -ge "$n" ] && break
    sleep 0.1
  done
  sleep 5
  local attached_shown
  attached_shown=$(tmux -L "$sock" capture-pane -p | grep -c "attached" || true)
  local t0 t1 s0 s1 d0=0 d1=0
  t0=$(cpu_ticks "$pid"); s0=$(cpu_ticks "$server")
  [ -n "$daemon" ] && d0=$(cpu_ticks "$daemon")
  sleep "$secs"
  t1=$(cpu_ticks "$pid"); s1=$(cpu_ticks "$server")
  [ -n "$daemon" ] && d1=$(cpu_ticks "$daemon")
  running=$(tmux -L "$sock" capture-pane -p | grep -c " running " || true)
  cleanup
  trap - EXIT
  python3 -c "
cpu = ($t1 - $t0) / $tick
srv = ($s1 - $s0) / $tick
dmn = ($d1 - $d0) / $tick
mode = '$mode'
d = f'daemon_cpu={dmn:.3f}s ({100*dmn/$secs:.3f}%) total={cpu+dmn:.3f}s ({100*(cpu+dmn)/$secs:.3f}%)' if mode == 'attached' else 'daemon_cpu=- (engine in the dashboard process)'
print(f'mode={mode} jobs={$n} running_rows_on_screen={$running} status_bar_says_attached={$attached_shown > 0} window={$secs}s '
      f'dashboard_cpu={cpu:.3f}s ({100*cpu/$secs:.3f}%) {d} tmux_server_cpu={srv:.3f}s ({100*srv/$secs:.3f}%)')
"
}

echo "# brightrun dashboard idle CPU, embedded vs attached, 200x50 in tmux ($(nproc) cores, $(date -u +%F))"
measure embedded 0
measure attached 0
measure embedded "$jobs"
measure attached "$jobs"
