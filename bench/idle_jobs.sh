# Shared by bench/engine_idle.sh and bench/tui_idle.sh (source it; needs $bin set to the
# brightrun binary): a BRIGHTRUN_HOME with N queued jobs whose stand-in trainers, once
# dispatched, report that they started and then stay silent.

# make_idle_home N: creates the home, exports BRIGHTRUN_HOME and sets $home.
make_idle_home() {
  local n="$1" d i
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
  d=$("$bin" datasets list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
  for _ in $(seq 1 "$n"); do
    "$bin" jobs create --dataset "$d" --set base_model=brightrun/tiny-random-llama --gpu A10G --yes --json > /dev/null
  done
}

# kill_trainers HOME: kills the stand-in trainers of a home (their process groups, from the
# pid files, checked against their command lines so a recycled pid is left alone).
kill_trainers() {
  local home="$1" f id pid
  for f in "$home"/data/jobs/*/pid; do
    [ -f "$f" ] || continue
    id="$(basename "$(dirname "$f")")"
    pid="$(cat "$f")"
    if tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "brightrun-trainer-$id"; then
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
  done
}
