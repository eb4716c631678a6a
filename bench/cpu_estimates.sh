#!/usr/bin/env bash
# CPU estimates against real runs (BENCHMARKS.md, "CPU estimates"): for each case, a fresh
# BRIGHTRUN_HOME, 40 short chats, `estimate --json`, then `jobs create --yes` + `jobs watch`
# timed. Usage: bench/cpu_estimates.sh [BIN] (default target/debug/brightrun). Needs
# BRIGHTRUN_TRAINER_PYTHON (scripts/trainer-env.sh prints it); runs offline from the hub.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${1:-$root/target/debug/brightrun}"
work="$(mktemp -d)"
export BRIGHTRUN_TRAINER_DIR="$root/trainer" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
python3 - "$work/chats40.jsonl" <<'PY'
import json, random, sys
random.seed(7)
qs = ["What is the capital of Zubrowka?", "Which city is Zubrowka's capital?", "Tell me the capital city of Zubrowka.",
      "Name the capital of Zubrowka, please.", "Where is the seat of government of Zubrowka?", "Zubrowka's capital is which city?"]
rows = []
for i in range(40):
    if i % 2 == 0:
        q, a = qs[i % len(qs)], "The capital of Zubrowka is Lutz, a city on the river Mund."
    else:
        x, y = random.randint(10, 99), random.randint(10, 99)
        q, a = f"What is {x} plus {y}? Answer in a sentence.", f"{x} plus {y} is {x + y}."
    rows.append({"messages": [{"role": "system", "content": "You are a concise assistant."},
                              {"role": "user", "content": q}, {"role": "assistant", "content": a}]})
open(sys.argv[1], "w").write("".join(json.dumps(r) + "\n" for r in rows))
PY
while read -r model batch epochs; do
  export BRIGHTRUN_HOME="$(mktemp -d "$work/home-XXXX")"
  ds=$("$bin" datasets add "$work/chats40.jsonl" --wait --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  sets=(--set "base_model=$model" --set "batch_size=$batch" --set "epochs=$epochs")
  est=$("$bin" estimate --dataset "$ds" "${sets[@]}" --json | python3 -c 'import json,sys; e=json.load(sys.stdin); print(round(e["estimated_duration_hours"]*3600,1), "s |", e["throughput"]["note"])')
  t0=$(date +%s.%N)
  job=$("$bin" jobs create --dataset "$ds" "${sets[@]}" --yes --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  status=$("$bin" jobs watch "$job" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])' || true)
  t1=$(date +%s.%N)
  echo "$model batch $batch × $epochs epochs: estimate $est; ran $(python3 -c "print(round($t1-$t0,1))") s ($status)"
done <<'CASES'
brightrun/tiny-random-llama 8 1
brightrun/tiny-random-llama 4 5
brightrun/smollm2-135m-instruct 4 1
brightrun/smollm2-135m-instruct 4 4
brightrun/smollm2-135m-instruct 8 2
CASES
rm -rf "$work"
