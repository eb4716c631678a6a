#!/usr/bin/env bash
# Export mode's cost (trainer/PROTOCOL.md, "Export mode"): SmolLM2-135M-Instruct with a random
# rank-8 LoRA adapter (q_proj, v_proj), exported by the trainer as the engine runs it
# (`python -m brightrun_trainer run --spec SPEC`, end to end: start-up, load, reference,
# merge, write, convert, check) as a merged f32 folder and as an f16 GGUF, against llama.cpp's
# converter run by hand on the base model's folder (`convert_hf_to_gguf.py --outtype f16`: the
# least a GGUF costs), in the same run. Prints each one's wall seconds, RUNS repeats, and the median.
#
#   bench/export.sh [RUNS]      (default 3; builds the trainer environment with scripts/trainer-env.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
python="$(scripts/trainer-env.sh | tail -n 1)"
work=$(mktemp -d /tmp/brightrun-export-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONPATH="$PWD/trainer"
tools=$("$python" -m brightrun_trainer.llama_tools)
base=$("$python" -m brightrun_trainer make-smollm2-model 2>/dev/null | tail -n 1)
"$python" - "$base" "$work/adapter" <<'PY' 2>/dev/null
import sys, torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM
torch.manual_seed(7)
config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False, task_type="CAUSAL_LM")
get_peft_model(AutoModelForCausalLM.from_pretrained(sys.argv[1]), config).save_pretrained(sys.argv[2])
PY
spec() { # FORMAT DTYPE OUT: an export spec on stdout
  "$python" - "$@" "$work/adapter" <<'PY'
import json, sys
fmt, dtype, out, adapter = sys.argv[1:]
hp = {"learning_rate": 1e-3, "batch_size": 4, "gradient_accumulation_steps": 1, "epochs": 1, "lora_rank": 8,
      "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"], "warmup_ratio": 0.0,
      "warmup_steps": None, "weight_decay": 0.0, "scheduler": "cosine", "max_seq_length": 256, "seed": 1,
      "validation_split": 0.0, "use_validation": False, "quantization": "none"}
model = {"id": "bench", "label": "random", "base_model": "brightrun/smollm2-135m-instruct", "adapter": {"dir": adapter}}
export = {"model": model, "format": fmt, "dtype": dtype, "name": "bench", "max_shard_bytes": 4_000_000_000, "max_shards": 2}
print(json.dumps({"version": 1, "job_id": "bench-export", "base_model": model["base_model"], "hyperparameters": hp,
                  "output": {"dir": out}, "export": export}))
PY
}
wall() { /usr/bin/time -f "%e" "$@" 2>&1 >/dev/null | tail -1; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
merged=() gguf=() converter=() phases=()
for i in $(seq "$runs"); do
  spec merged f32 "$work/merged-$i" > "$work/merged.json"
  merged+=("$(wall "$python" -m brightrun_trainer run --spec "$work/merged.json")")
  grep -q '"passed": true' "$work/merged-$i/export.json"
  rm -rf "$work/merged-$i"
  spec gguf f16 "$work/gguf-$i" > "$work/gguf.json"
  gguf+=("$(wall "$python" -m brightrun_trainer run --spec "$work/gguf.json")")
  grep -q '"passed": true' "$work/gguf-$i/export.json"
  phases+=("$("$python" -c 'import json, sys; s = json.load(open(sys.argv[1]))["seconds"]; print(" ".join(f"{k}={v:.2f}" for k, v in s.items() if v is not None))' "$work/gguf-$i/export.json")")
  rm -rf "$work/gguf-$i"
  converter+=("$(wall "$python" "$tools/convert_hf_to_gguf.py" "$base" --outtype f16 --outfile "$work/by-hand.gguf")")
  rm -f "$work/by-hand.gguf"
done
echo "merged f32 export (trainer, end to end): ${merged[*]} s; median $(printf '%s\n' "${merged[@]}" | median) s"
echo "GGUF f16 export (trainer, end to end):   ${gguf[*]} s; median $(printf '%s\n' "${gguf[@]}" | median) s"
echo "convert_hf_to_gguf.py --outtype f16:     ${converter[*]} s; median $(printf '%s\n' "${converter[@]}" | median) s"
echo "GGUF f16 export's own phases (export.json seconds), each run:"
printf '  %s\n' "${phases[@]}"
