#!/usr/bin/env bash
# Import cost: `brightrun datasets add FILE --wait` (copy into the store, sha256, validation,
# the verdict recorded) against the validator alone and the straightforward Python validator
# (bench/python_validator.py) on the same generated ~200 MB OpenAI-chat file, and against
# `cp` + `sync` of the file into a fresh folder (the least a durable copy costs), in the same run.
# Each import gets a fresh BRIGHTRUN_HOME on the same file system as /tmp. Best of N each.
#
#   bench/import.sh [SIZE_MB] [RUNS]      (defaults 200 and 3; needs `cargo build --release`)
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb="${1:-200}" runs="${2:-3}"
file="/tmp/brightrun-bench-${size_mb}mb.jsonl"
release="${CARGO_TARGET_DIR:-target}/release"
cargo build --release -q -p brightrun-engine --example validate --example gen_dataset
cargo build --release -q --bin brightrun
[ -s "$file" ] || $release/examples/gen_dataset "$file" --size-mb "$size_mb"
cat "$file" > /dev/null  # warm the page cache
echo "file: $file ($(du -m "$file" | cut -f1) MB)"
t() { /usr/bin/time -f "%e %U %S" "$@" 2>&1 >/dev/null | tail -1; }
best() { sort -g -k1 | head -1; }
v=() a=() p=() c=()
for _ in $(seq "$runs"); do
  dir=$(mktemp -d /tmp/brightrun-cp-bench.XXXXXX)
  c+=("$(t sh -c "cp '$file' '$dir/copy' && sync '$dir/copy'")")
  rm -rf "$dir"
done
for _ in $(seq "$runs"); do v+=("$(t $release/examples/validate "$file")"); done
for _ in $(seq "$runs"); do
  home=$(mktemp -d /tmp/brightrun-import-bench.XXXXXX)
  a+=("$(BRIGHTRUN_HOME="$home" t $release/brightrun datasets add "$file" --wait)")
  rm -rf "$home"
done
for _ in $(seq "$runs"); do p+=("$(t python3 bench/python_validator.py "$file")"); done
echo "validator alone   (wall user sys): ${v[*]}"
echo "datasets add --wait (wall user sys): ${a[*]}"
echo "python validator  (wall user sys): ${p[*]}"
echo "cp + sync         (wall user sys): ${c[*]}"
bv=$(printf '%s\n' "${v[@]}" | best) ba=$(printf '%s\n' "${a[@]}" | best) bp=$(printf '%s\n' "${p[@]}" | best)
bc=$(printf '%s\n' "${c[@]}" | best)
awk -v v="${bv%% *}" -v a="${ba%% *}" -v p="${bp%% *}" -v c="${bc%% *}" 'BEGIN {
  printf "best wall: validator %.2f s, import %.2f s (%.2fx the validator), python %.2f s (import %.1fx faster), cp + sync %.2f s (import %.2fx it)\n", v, a, a / v, p, p / a, c, a / c
}'
