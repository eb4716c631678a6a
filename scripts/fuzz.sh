#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time and fails if any finds a crash (a
# panic, a failed property, an input slower than FUZZ_TIMEOUT seconds, or one using more than
# FUZZ_RSS_MB of memory). A documented check to run by hand, not part of CI.
#
#   scripts/fuzz.sh                       # each target 60 s
#   FUZZ_SECONDS=600 scripts/fuzz.sh call_body trainer_event
#
# Environment:
#   FUZZ_SECONDS    seconds per target (default 60)
#   FUZZ_TIMEOUT    seconds one input may take before it counts as a crash (default 10)
#   FUZZ_RSS_MB     memory limit of a run, in MB (default 2048)
#   FUZZ_MAX_LEN    longest input libFuzzer makes, in bytes (default 8192)
#   FUZZ_SANITIZER  none (default: the fuzzed code is safe Rust; panics, properties, timeouts
#                   and memory) or address (AddressSanitizer too: slower to build and run)
#   FUZZ_JOBS       cargo build jobs (default: cargo's)
#   CARGO_TARGET_DIR  where the instrumented build goes (default fuzz/target)
#
# cargo-fuzz is installed once into ${BRIGHTRUN_CACHE_DIR:-~/.cache/brightrun}/cargo-fuzz.
# It passes `-Z` flags to rustc; on a stable toolchain RUSTC_BOOTSTRAP=1 lets them through
# (set here, for the fuzz build only). Seeds are fuzz/corpus/<target>/ (committed); what a run
# adds is kept in $CARGO_TARGET_DIR/fuzz-corpus/<target>/ for the next run; a crashing input
# is written to fuzz/artifacts/<target>/ (ignored by git) and the script prints how to replay
# it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${BRIGHTRUN_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/brightrun}"
cargo_fuzz_version="0.13.2"
seconds="${FUZZ_SECONDS:-60}"
timeout_s="${FUZZ_TIMEOUT:-10}"
rss_mb="${FUZZ_RSS_MB:-2048}"
max_len="${FUZZ_MAX_LEN:-8192}"
sanitizer="${FUZZ_SANITIZER:-none}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/fuzz/target}"
export RUSTC_BOOTSTRAP=1

fuzz_root="$cache/cargo-fuzz"
if ! "$fuzz_root/bin/cargo-fuzz" --version 2>/dev/null | grep -q "$cargo_fuzz_version"; then
  echo "installing cargo-fuzz $cargo_fuzz_version into $fuzz_root (once)" >&2
  mkdir -p "$fuzz_root"
  CARGO_TARGET_DIR="$fuzz_root/build" cargo install cargo-fuzz --version "$cargo_fuzz_version" \
    --locked --root "$fuzz_root" --force >&2
  rm -rf "$fuzz_root/build"
fi
export PATH="$fuzz_root/bin:$PATH"

cd "$root/fuzz"
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

jobs=()
[ -n "${FUZZ_JOBS:-}" ] && jobs=(--jobs "$FUZZ_JOBS")
echo "building ${targets[*]} (sanitizer: $sanitizer) into $CARGO_TARGET_DIR" >&2
# `cargo fuzz build` takes one target or none (all of them).
one=()
[ "${#targets[@]}" -eq 1 ] && one=("${targets[0]}")
cargo fuzz build --sanitizer "$sanitizer" "${jobs[@]}" "${one[@]}" >&2

logs="$CARGO_TARGET_DIR/fuzz-logs"
mkdir -p "$logs"
failed=()
summary=()
for t in "${targets[@]}"; do
  work="$CARGO_TARGET_DIR/fuzz-corpus/$t"
  seeds="$root/fuzz/corpus/$t"
  mkdir -p "$work" "$seeds"
  log="$logs/$t.log"
  echo "fuzzing $t for ${seconds}s (log: $log)" >&2
  rc=0
  cargo fuzz run --sanitizer "$sanitizer" "$t" "$work" "$seeds" -- \
    -max_total_time="$seconds" -timeout="$timeout_s" -rss_limit_mb="$rss_mb" \
    -max_len="$max_len" -print_final_stats=1 > "$log" 2>&1 || rc=$?
  # libFuzzer's last status line: "#RUNS DONE cov: N ft: N corp: N/SIZE ... exec/s: N".
  runs="$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -n 1 | awk '{print $2}')"
  rate="$(grep -o 'stat::average_exec_per_sec: [0-9]*' "$log" | tail -n 1 | awk '{print $2}')"
  last="$(grep -E '^#[0-9]+' "$log" | tail -n 1)"
  cov="$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<< "$last")"
  ft="$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<< "$last")"
  corp="$(sed -nE 's/.* corp: ([0-9]+).*/\1/p' <<< "$last")"
  if [ "$rc" -eq 0 ]; then
    verdict=ok
  else
    verdict="FAILED (exit $rc)"
    failed+=("$t")
    echo "--- $t failed; the end of its log:" >&2
    tail -n 40 "$log" >&2
    artifact="$(grep -oE "Test unit written to [^ ]+" "$log" | tail -n 1 | awk '{print $5}')"
    if [ -n "$artifact" ]; then
      echo "--- replay: (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer $sanitizer $t $artifact)" >&2
    fi
  fi
  summary+=("$(printf '%-14s %-18s %12s %9s %7s %7s %7s' "$t" "$verdict" "${runs:--}" "${rate:--}" "${cov:--}" "${ft:--}" "${corp:--}")")
done

printf '\n%-14s %-18s %12s %9s %7s %7s %7s\n' target result runs exec/s cov ft corpus
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "crashes found in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
  exit 1
fi
