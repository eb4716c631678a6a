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

mbs() { grep -o '= [0-9.]* MB/s' | tr -d '= MB/s'; }
rust_runs=() py_runs=()
for _ in 1 2 3; do
  rust_out=$("${pin[@]}" "$bin/validate" "$file")
  rust_runs+=("$(mbs <<<"$rust_out")")
done
for _ in 1 2 3; do
  py_out=$("${pin[@]}" python3 bench/python_validator.py "$file")
  py_runs+=("$(mbs <<<"$py_out")")
done
echo "$rust_out" | head -1 | sed 's/^/rust:   /'
echo "$py_out" | head -1 | sed 's/^/python: /'
rust_mbs=$(printf '%s\n' "${rust_runs[@]}" | sort -g | tail -1)
py_mbs=$(printf '%s\n' "${py_runs[@]}" | sort -g | tail -1)
echo "rust runs (MB/s):   ${rust_runs[*]}"
echo "python runs (MB/s): ${py_runs[*]}"
echo "rust   (best of 3): ${rust_mbs} MB/s"
echo "python (best of 3): ${py_mbs} MB/s"
awk -v r="$rust_mbs" -v p="$py_mbs" 'BEGIN { printf "ratio:              %.1fx\n", r / p }'
