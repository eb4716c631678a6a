#!/usr/bin/env bash
# The dashboard's CPU use while idle: `brightrun` (no arguments: the dashboard with the engine's
# background tasks) runs in a 200x50 tmux terminal on the Jobs tab, following N jobs whose
# stand-in trainers have started and then stay silent (as in bench/engine_idle.sh). Nobody
# presses a key; we read the brightrun process's CPU time from /proc over a fixed window after
# a warm-up. Compared in the same run with 0 jobs (the baseline: the dashboard idle, nothing
# running). The tmux server's own CPU (it parses what the dashboard writes) is shown beside.
# Usage: bench/tui_idle.sh [SECONDS] [JOBS]   (builds the release binary first; needs tmux)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-20}"
jobs="${2:-5}"
command -v tmux > /dev/null || { echo "tmux is needed (scripts/test.sh installs it)" >&2; exit 2; }
cargo build --release --quiet --bin brightrun
bin="$PWD/target/release/brightrun"
tick=$(getconf CLK_TCK)
# shellcheck source=bench/idle_jobs.sh
source bench/idle_jobs.sh

cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

measure() { # $1 = number of jobs
  local n="$1"
  # Not local: the EXIT trap may need them after a failure.
  sock="brightrun-tui-idle-$$-$n"
  make_idle_home "$n"
  # `exec` so the pane's process is brightrun itself.
  env -u TMUX tmux -f /dev/null -L "$sock" new-session -d -x 200 -y 50 -c "$home" \
    "exec env BRIGHTRUN_HOME='$home' '$bin'"
  socket_path="$(tmux -L "$sock" display -p '#{socket_path}')"
  pid="$(tmux -L "$sock" display -p '#{pane_pid}')"
  server="$(tmux -L "$sock" display -p '#{pid}')"
  cleanup() {
    tmux -L "$sock" kill-server 2> /dev/null || true
    # brightrun exits on the hang-up; wait for it so its store is closed.
    for _ in $(seq 1 100); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
    kill_trainers "$home"
    rm -f "$socket_path"
    rm -rf "$home"
  }
  trap cleanup EXIT
  sleep 2
  tmux -L "$sock" send-keys 3 # the Jobs tab: the list and the monitor of the selected job
  # Warm-up: every job dispatched and its trainer started, then a few quiet seconds.
  local running=0
  for _ in $(seq 1 300); do
    running=$(find "$home/data/jobs" -name pid 2> /dev/null | wc -l)
    [ "$running" -ge "$n" ] && break
    sleep 0.1
  done
  sleep 5
  local screen_ok
  screen_ok=$(tmux -L "$sock" capture-pane -p | grep -c "Jobs $n" || true)
  local t0 t1 s0 s1
  t0=$(cpu_ticks "$pid"); s0=$(cpu_ticks "$server")
  sleep "$secs"
  t1=$(cpu_ticks "$pid"); s1=$(cpu_ticks "$server")
  running=$(tmux -L "$sock" capture-pane -p | grep -c " running " || true)
  cleanup
  trap - EXIT
  python3 -c "
cpu = ($t1 - $t0) / $tick
srv = ($s1 - $s0) / $tick
print(f'jobs={$n} running_rows_on_screen={$running} jobs_tab_shown={$screen_ok > 0} window={$secs}s '
      f'dashboard_cpu={cpu:.3f}s share_of_one_core={100*cpu/$secs:.3f}% tmux_server_cpu={srv:.3f}s ({100*srv/$secs:.3f}%)')
"
}

echo "# brightrun dashboard idle CPU at 200x50 in tmux ($(nproc) cores, $(date -u +%F))"
measure 0
measure "$jobs"
