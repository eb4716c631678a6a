#!/usr/bin/env bash
# Dataset validation throughput: BrightRun's validator against a straightforward Python one,
# on the same generated ~200 MB OpenAI-chat JSONL file, in the same run, both pinned to one
# core. Prints both figures and the ratio (the figures in BENCHMARKS.md come from here).
#
#   bench/validation.sh [SIZE_MB]      (default 200; the file is kept in /tmp for reruns)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb="${1:-200}"
file="/tmp/brightrun-bench-${size_mb}mb.jsonl"
pin=()
command -v taskset >/dev/null && pin=(taskset -c 0)

cargo build --release -q -p brightrun-engine --example validate --example gen_dataset
bin=target/release/examples
if [ ! -s "$file" ]; then
  "$bin/gen_dataset" "$file" --size-mb "$size_mb"
fi
echo "file: $file ($(du -m "$file" | cut -f1) MB)"
# Warm the page cache so both read from memory.
cat "$file" > /dev/null

# "NAME: … = X MB/s" (wall clock) and "NAME cpu: … = Y MB/s of CPU time" from each run.
wall() { grep -E "^$1: " | grep -o '= [0-9.]* MB/s' | tr -d '= MB/s'; }
cpu() { grep -E "^$1 cpu: " | grep -o '= [0-9.]* MB/s' | tr -d '= MB/s'; }
best() { printf '%s\n' "$@" | sort -g | tail -1; }
rust_wall=() rust_cpu=() py_wall=() py_cpu=()
for _ in 1 2 3; do
  out=$("${pin[@]}" "$bin/validate" "$file")
  rust_wall+=("$(wall rust <<<"$out")") rust_cpu+=("$(cpu rust <<<"$out")")
  rust_stats=$(head -1 <<<"$out")
done
for _ in 1 2 3; do
  out=$("${pin[@]}" python3 bench/python_validator.py "$file")
  py_wall+=("$(wall python <<<"$out")") py_cpu+=("$(cpu python <<<"$out")")
  py_stats=$(head -1 <<<"$out")
done
echo "rust stats:   $rust_stats"
echo "python stats: $py_stats"
echo "rust   MB/s, wall clock: ${rust_wall[*]}   CPU time: ${rust_cpu[*]}"
echo "python MB/s, wall clock: ${py_wall[*]}   CPU time: ${py_cpu[*]}"
rw=$(best "${rust_wall[@]}") rc=$(best "${rust_cpu[@]}")
pw=$(best "${py_wall[@]}") pc=$(best "${py_cpu[@]}")
awk -v rw="$rw" -v rc="$rc" -v pw="$pw" -v pc="$pc" 'BEGIN {
  printf "best of 3, wall clock: rust %.0f MB/s, python %.1f MB/s, ratio %.1fx\n", rw, pw, rw / pw
  printf "best of 3, CPU time:   rust %.0f MB/s, python %.1f MB/s, ratio %.1fx\n", rc, pc, rc / pc
}'
