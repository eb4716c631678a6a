#!/usr/bin/env python3
"""DPO through BrightRun's trainer against TRL 1.16's DPOTrainer, same data and settings.

    bash bench/preference.sh [--steps 12] [--batch 4] [--max-length 128] [--quick]

Both variants train a LoRA adapter (rank 8, alpha 16, dropout 0, q_proj/v_proj) on SmolLM2-135M-
Instruct in fp32 on the CPU, DPO sigmoid loss, β 0.1, learning rate 5e-4 constant, no warmup,
the same pairs (trainer/tests/fixtures/preference/smollm2_dpo.jsonl), batch size and maximum
length, no validation, no gradient checkpointing, the reference model the base with the adapter
disabled (TRL: a PEFT model, ``precompute_ref_log_probs=False``):

- ``brightrun``: the trainer as the engine runs it (``runner.run`` on a spec with
  ``hyperparameters.method`` dpo); its batches are padded and length-grouped on a CPU, the LM
  head chunked.
- ``trl``: ``DPOTrainer`` (it tokenises the conversational pairs with the chat template itself,
  padded batches, its fused LM head).

Each runs in its own child process, so its peak RSS (``ru_maxrss``) is its own, and prints one
JSON line; the parent prints a table and the ratio. Tokens/s = real tokens of both sequences of
every pair trained (BrightRun: the ``done`` summary's ``train_tokens``; TRL: its ``num_tokens``,
the attention-mask sum) / the Trainer's ``train_runtime``. ``--quick``: the tiny random model and
3 steps (well under a minute: a smoke test that both paths run, for CI's test mode).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "trainer"))
DATA = ROOT / "trainer" / "tests" / "fixtures" / "preference" / "smollm2_dpo.jsonl"
VARIANTS = ("brightrun", "trl")


def _model_id(quick: bool) -> str:
    return "brightrun/tiny-random-llama" if quick else "brightrun/smollm2-135m-instruct"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_brightrun(args) -> dict:
    from brightrun_trainer.events import EventEmitter
    from brightrun_trainer.runner import run
    from brightrun_trainer.signals import StopSignal

    work = Path(tempfile.mkdtemp(prefix="bench-pref-"))
    spec = {
        "version": 1,
        "job_id": "00000000-0000-4000-8000-00000000bead",
        "base_model": _model_id(args.quick),
        "dataset": {"path": str(DATA)},
        "hyperparameters": {
            "learning_rate": 5e-4, "batch_size": args.batch, "gradient_accumulation_steps": 1, "epochs": 100,
            "lora_rank": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"],
            "warmup_ratio": 0.0, "warmup_steps": None, "weight_decay": 0.0, "scheduler": "constant",
            "max_seq_length": args.max_length, "seed": 42, "validation_split": 0.0, "use_validation": False,
            "quantization": "none", "method": {"name": "dpo", "beta": 0.1, "loss_type": "sigmoid"},
        },
        "output": {"dir": str(work / "adapter")},
        "checkpoint_dir": str(work / "checkpoints"),
        "resume_from": None,
        "logging_steps": 1,
        "max_steps": args.steps,
        "efficiency": {"gradient_checkpointing": "off"},
    }  # fmt: skip
    (work / "spec.json").write_text(json.dumps(spec))
    out = io.StringIO()
    status = run(str(work / "spec.json"), EventEmitter(out), stop=StopSignal())
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    if status != 0:
        raise SystemExit(f"brightrun failed: {events[-1]}")
    summary = events[-1]["summary"]
    losses = [e["training_loss"] for e in events if e["type"] == "metric"]
    return {
        "tokens": summary["train_tokens"],
        "seconds": summary["train_runtime_seconds"],
        "first_loss": losses[0],
        "last_loss": losses[-1],
    }


def run_trl(args) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from brightrun_trainer.encoding import prepare_tokenizer
    from brightrun_trainer.train import resolve_base_model

    path = resolve_base_model(_model_id(args.quick))
    tokenizer = AutoTokenizer.from_pretrained(path)
    prepare_tokenizer(tokenizer)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.config.use_cache = False
    torch.manual_seed(42)
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    records = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    dataset = Dataset.from_list(records)
    config = DPOConfig(
        output_dir=tempfile.mkdtemp(prefix="bench-pref-trl-"), report_to=[], use_cpu=True, bf16=False, fp16=False,
        per_device_train_batch_size=args.batch, max_steps=args.steps, learning_rate=5e-4, lr_scheduler_type="constant",
        warmup_steps=0, beta=0.1, loss_type="sigmoid", max_length=args.max_length, precompute_ref_log_probs=False,
        gradient_checkpointing=False, logging_steps=1, save_strategy="no", seed=42, disable_tqdm=True,
        dataloader_num_workers=0,
    )  # fmt: skip
    trainer = DPOTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)
    result = trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {
        "tokens": int(trainer._total_train_tokens),
        "seconds": float(result.metrics["train_runtime"]),
        "first_loss": losses[0],
        "last_loss": losses[-1],
    }


def child(args) -> None:
    import transformers

    transformers.utils.logging.set_verbosity_error()
    started = time.monotonic()
    result = (run_brightrun if args.variant == "brightrun" else run_trl)(args)
    result.update(variant=args.variant, tokens_per_s=result["tokens"] / result["seconds"],
                  peak_rss_mb=_peak_rss_mb(), wall_s=time.monotonic() - started)  # fmt: skip
    print("RESULT " + json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--quick", action="store_true", help="the tiny model, 3 steps (CI smoke test)")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.steps = min(args.steps, 3)
    if args.variant:
        return child(args)
    if not args.quick:
        from brightrun_trainer.smollm2 import ensure_smollm2

        ensure_smollm2()  # built once, outside the timed children
    rows = []
    for variant in VARIANTS:
        command = [sys.executable, __file__, "--variant", variant, "--steps", str(args.steps), "--batch",
                   str(args.batch), "--max-length", str(args.max_length)] + (["--quick"] if args.quick else [])  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, env=os.environ)
        line = next((l for l in done.stdout.splitlines() if l.startswith("RESULT ")), None)
        if done.returncode != 0 or line is None:
            sys.stderr.write(done.stderr[-4000:])
            raise SystemExit(f"{variant} failed (exit {done.returncode})")
        rows.append(json.loads(line[len("RESULT "):]))
    model = _model_id(args.quick)
    print(f"DPO, {model}, fp32 CPU ({os.cpu_count()} cores), batch {args.batch} pairs, max length "
          f"{args.max_length}, LoRA r8 q/v, {args.steps} steps")  # fmt: skip
    print(f"{'variant':<10} {'tokens/s':>9} {'tokens':>7} {'train s':>8} {'peak RSS MiB':>13} {'loss first→last':>18}")
    for row in rows:
        print(f"{row['variant']:<10} {row['tokens_per_s']:>9.1f} {row['tokens']:>7} {row['seconds']:>8.1f} "
              f"{row['peak_rss_mb']:>13.0f} {row['first_loss']:>8.4f}→{row['last_loss']:.4f}")  # fmt: skip
    ours, trl = rows
    print(f"ratio brightrun/trl: tokens/s ×{ours['tokens_per_s'] / trl['tokens_per_s']:.2f}, "
          f"peak RSS ×{ours['peak_rss_mb'] / trl['peak_rss_mb']:.2f}")
    print("JSON " + json.dumps(rows))


if __name__ == "__main__":
    main()
