#!/usr/bin/env bash
# The evaluation's time against the run's (issue 24): SmolLM2-135M-Instruct taught the README's
# made-up fact (docs/examples/zubrowka.jsonl, 4 epochs) on this machine, `[evaluation]` at its
# defaults (8 samples, 256 new tokens, the built-in probes), through the real binary. Prints
# the run's duration, the evaluation's seconds (from its evaluation.json) and its share of the
# rest of the run.
#
#   bench/evaluation.sh            (needs `cargo build --release --bin brightrun`, or set BIN)
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${BIN:-${CARGO_TARGET_DIR:-target}/release/brightrun}"
home=$(mktemp -d /tmp/brightrun-eval-bench.XXXXXX)
trap 'rm -rf "$home"' EXIT
export BRIGHTRUN_HOME="$home" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
"$bin" datasets add docs/examples/zubrowka.jsonl --name zubrowka --wait --json > /dev/null
job=$("$bin" jobs create --dataset zubrowka --set base_model=brightrun/smollm2-135m-instruct \
  --set learning_rate=5e-4 --set epochs=4 --yes --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
start=$(date +%s.%N)
"$bin" jobs watch "$job" --json > /dev/null
end=$(date +%s.%N)
model=$("$bin" models list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
"$bin" models show "$model" --json > "$home/model.json"
python3 - "$home/model.json" "$(echo "$end - $start" | bc)" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))["evaluation"]
run = float(sys.argv[2])
ev = e["seconds"]
rest = run - ev
base, adapter, closer = e["base_loss"], e["adapter_loss"], e["adapter_closer"]
print(f"run {run:.1f} s (create to end of watch), evaluation {ev:.1f} s: {100 * ev / rest:.1f}% of the rest of the run")
print(f"held-out loss {base:.3f} -> {adapter:.3f}; {len(e['samples'])} samples, {len(e['probes'])} probes; adapter closer in {closer}")
PY
