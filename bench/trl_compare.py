#!/usr/bin/env python3
"""BrightRun's trainer against TRL's SFTTrainer on the same data, model, LoRA and masking.

    bash bench/trl_compare.sh [--model tiny|qwen2.5-0.5b-shape] [--examples 300] …
    bash bench/trl_compare.sh --startup          # spawn-to-first-step and exit times

Every variant runs in its own child process (so peak memory is its own) and prints one JSON
line; the parent prints a table. Variants:

- ``brightrun``: the trainer as the engine runs it (``runner.run`` on a spec), defaults.
- ``brightrun-packing``: the same with ``efficiency.packing``.
- ``brightrun-plain``: ``padding_free``/``chunked_loss`` off (padded, length-grouped, full logits).
- ``trl-padded`` / ``trl-padding-free``: ``SFTTrainer`` with ``padding_free`` off / on.

Same tokens and labels for all: the chat dataset is encoded once with BrightRun's encoder
(assistant-only labels through the end-of-turn marker) and given to TRL pre-tokenised
(``input_ids`` + ``labels``), so the comparison is of the training loops, not of two
maskings. Real tokens/s = the non-padding tokens of the training set × epochs / the
Trainer's ``train_runtime``. Peak memory: ``torch.cuda.max_memory_allocated`` on a GPU, the
process's peak RSS (``ru_maxrss``) on CPU.

``--model qwen2.5-0.5b-shape`` builds a randomly initialised model with Qwen2.5-0.5B's shape
and 151,936-token vocabulary from a config written here (no hub); its tokenizer is the tiny
model's byte-level one (ids < 261), which leaves the LM head and logits full width, the part
of the cost the chunked loss addresses.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "trainer"))

VARIANTS = ("brightrun", "brightrun-packing", "brightrun-plain", "trl-padded", "trl-padding-free")
QWEN_05B_SHAPE = {
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "vocab_size": 151936,
    "max_position_embeddings": 32768,
    "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
}
WORDS = (
    "the model learns to answer questions about data pipelines gradients memory kernels tokens batches "
    "adapters attention layers schedules checkpoints throughput latency padding sequences loss"
).split()


# --------------------------------------------------------------------------- data and model


def chat_dataset(count: int, seed: int) -> list[dict]:
    """Conversations of very different lengths (short questions, long answers, a few
    multi-turn), as chat data in the wild: most of a padded batch would be padding."""
    rng = random.Random(seed)

    def text(low: int, high: int) -> str:
        words = int(round(2 ** rng.uniform(low, high)))
        return " ".join(rng.choice(WORDS) for _ in range(max(1, words)))

    records = []
    for _ in range(count):
        messages = [{"role": "system", "content": "You are a helpful assistant."}]
        for _turn in range(rng.choice((1, 1, 1, 2, 3))):
            messages.append({"role": "user", "content": text(1, 5)})
            messages.append({"role": "assistant", "content": text(1, 7)})
        records.append({"messages": messages})
    return records


def model_folder(name: str, work: Path) -> Path:
    from brightrun_trainer.tiny_model import build_tokenizer, ensure_tiny_model

    if name == "tiny":
        return ensure_tiny_model()
    folder = work / "qwen2.5-0.5b-shape"
    if (folder / "config.json").is_file():
        return folder
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = build_tokenizer()
    config = Qwen2Config(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, **QWEN_05B_SHAPE,
    )
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def encoded(dataset: Path, tokenizer, max_seq_length: int, seed: int):
    """The rows the trainer itself trains on (its loader, its chat-template encoder)."""
    from brightrun_trainer.data import load_dataset
    from brightrun_trainer.encoding import encode_examples, prepare_tokenizer

    prepare_tokenizer(tokenizer)
    loaded = load_dataset(dataset, seed=seed, validation_split=0.0, use_validation=False)
    rows, _report = encode_examples(tokenizer, loaded.train, max_seq_length)
    return rows


# --------------------------------------------------------------------------- workers


def peak_memory_gb(on_cuda: bool) -> float:
    if on_cuda:
        import torch

        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def run_brightrun(cfg: dict, variant: str) -> dict:
    from brightrun_trainer.events import EventEmitter
    from brightrun_trainer.runner import run
    from brightrun_trainer.signals import StopSignal

    import torch

    work = Path(cfg["work"]) / variant
    work.mkdir(parents=True, exist_ok=True)
    efficiency = {
        "brightrun": {},
        "brightrun-packing": {"packing": True},
        "brightrun-plain": {"padding_free": False, "chunked_loss": False},
    }[variant]
    spec = {
        "version": 1, "job_id": f"bench-{variant}", "base_model": cfg["model_path"],
        "dataset": {"path": cfg["dataset"]},
        "hyperparameters": {
            "learning_rate": cfg["learning_rate"], "batch_size": cfg["batch_size"], "gradient_accumulation_steps": 1,
            "epochs": cfg["epochs"], "lora_rank": 16, "lora_alpha": 32, "lora_dropout": 0.05,
            "target_modules": cfg["target_modules"], "warmup_ratio": 0.0, "warmup_steps": 0, "weight_decay": 0.0,
            "scheduler": "linear", "max_seq_length": cfg["max_seq_length"], "seed": cfg["seed"],
            "validation_split": 0.0, "use_validation": False,
        },
        "output": {"dir": str(work / "adapter")}, "checkpoint_dir": str(work / "checkpoints"),
        "logging_steps": 1, "efficiency": efficiency,
    }
    spec_path = work / "spec.json"
    spec_path.write_text(json.dumps(spec))
    out = io.StringIO()
    code = run(str(spec_path), EventEmitter(out), stop=StopSignal())
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    if code != 0:
        raise SystemExit(f"{variant} failed: {events[-1]}")
    done = events[-1]["summary"]
    losses = [e["training_loss"] for e in events if e["type"] == "metric"]
    logs = [e["message"] for e in events if e["type"] == "log"]
    return {
        "tokens": cfg["real_tokens"] * cfg["epochs"],
        "counted_tokens": done["train_tokens"],
        "runtime": done["train_runtime_seconds"],
        "steps": done["total_steps"],
        "mean_loss": statistics.fmean(losses),
        "final_loss": statistics.fmean(losses[-10:]),
        "peak_memory_gb": peak_memory_gb(torch.cuda.is_available()),
        "notes": [m for m in logs if m.startswith(("activation checkpointing", "padded", "padding-free", "packing"))],
    }


def run_trl(cfg: dict, variant: str) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    on_cuda = torch.cuda.is_available()
    bf16 = on_cuda and torch.cuda.is_bf16_supported()
    padding_free = variant == "trl-padding-free"
    tokenizer = AutoTokenizer.from_pretrained(cfg["model_path"])
    rows = [json.loads(line) for line in Path(cfg["encoded"]).read_text().splitlines()]
    train = Dataset.from_list(rows)
    kwargs = {"dtype": torch.bfloat16 if bf16 else torch.float32}
    if on_cuda:
        kwargs["device_map"] = {"": 0}
        if padding_free:
            from brightrun_trainer.efficiency import varlen_attention_available

            kwargs["attn_implementation"] = varlen_attention_available(True) or "sdpa"
    model = AutoModelForCausalLM.from_pretrained(cfg["model_path"], **kwargs)
    model.config.use_cache = False
    args = SFTConfig(
        output_dir=str(Path(cfg["work"]) / variant), per_device_train_batch_size=cfg["batch_size"],
        num_train_epochs=cfg["epochs"], learning_rate=cfg["learning_rate"], lr_scheduler_type="linear",
        warmup_steps=0, weight_decay=0.0, seed=cfg["seed"], data_seed=cfg["seed"], logging_steps=1,
        save_strategy="no", report_to=[], disable_tqdm=True, bf16=bf16, fp16=False,
        gradient_checkpointing=cfg["checkpointing"], padding_free=padding_free,
        max_length=None if padding_free else cfg["max_seq_length"],  # rows are already truncated
        dataloader_num_workers=0, max_grad_norm=1.0,
    )
    peft = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=cfg["target_modules"],
                      bias="none", task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer, peft_config=peft)
    result = trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {
        "tokens": cfg["real_tokens"] * cfg["epochs"],
        "counted_tokens": None,
        "runtime": float(result.metrics["train_runtime"]),
        "steps": trainer.state.global_step,
        "mean_loss": statistics.fmean(losses),
        "final_loss": statistics.fmean(losses[-10:]),
        "peak_memory_gb": peak_memory_gb(on_cuda),
        "notes": [f"gradient_checkpointing={cfg['checkpointing']}, bf16={bf16}"],
    }


def worker(variant: str, cfg_path: str) -> None:
    cfg = json.loads(Path(cfg_path).read_text())
    result = run_trl(cfg, variant) if variant.startswith("trl") else run_brightrun(cfg, variant)
    result["variant"] = variant
    print("RESULT " + json.dumps(result), flush=True)


# --------------------------------------------------------------------------- parent


def prepare(args) -> dict:
    from transformers import AutoTokenizer

    work = Path(args.work or tempfile.mkdtemp(prefix="brightrun-trl-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    records = chat_dataset(args.examples, args.seed)
    dataset = work / "chat.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in records))
    model_path = model_folder(args.model, work)
    rows = encoded(dataset, AutoTokenizer.from_pretrained(model_path), args.max_seq_length, args.seed)
    (work / "encoded.jsonl").write_text(
        "".join(json.dumps({"input_ids": r.input_ids.tolist(), "labels": r.labels.tolist()}) + "\n" for r in rows)
    )
    lengths = [len(r.input_ids) for r in rows]
    batches = [lengths[i:i + args.batch_size] for i in range(0, len(lengths), args.batch_size)]
    padded = sum(max(b) * len(b) for b in batches)
    print(
        f"data: {len(rows)} examples, {sum(lengths)} real tokens, lengths {min(lengths)}–{max(lengths)} "
        f"(median {statistics.median(lengths):.0f}); random padded batches of {args.batch_size} would be "
        f"{1 - sum(lengths) / padded:.0%} padding",
        flush=True,
    )
    return {
        "work": str(work), "dataset": str(dataset), "encoded": str(work / "encoded.jsonl"),
        "model_path": str(model_path), "real_tokens": sum(lengths), "batch_size": args.batch_size,
        "epochs": args.epochs, "learning_rate": args.learning_rate, "max_seq_length": args.max_seq_length,
        "seed": args.seed, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"], "checkpointing": False,
    }


def spawn(variant: str, cfg: dict) -> dict:
    cfg_path = Path(cfg["work"]) / f"{variant}.json"
    cfg_path.write_text(json.dumps(cfg))
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", variant, "--config", str(cfg_path)],
        capture_output=True, text=True, env=env,
    )
    lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"variant {variant} failed (exit {proc.returncode})")
    return json.loads(lines[-1][len("RESULT "):])


def compare(args) -> None:
    cfg = prepare(args)
    results = []
    for variant in args.variants:
        if variant.startswith("trl") and results and results[0]["variant"] == "brightrun":
            notes = " ".join(results[0]["notes"])
            cfg["checkpointing"] = "activation checkpointing: on" in notes  # the same choice as BrightRun's
        print(f"running {variant} …", flush=True)
        result = spawn(variant, cfg)
        results.append(result)
        print(f"  {json.dumps(result)}", flush=True)
    print()
    print(f"| variant | real tokens/s | train time (s) | steps | peak memory (GiB) | mean loss | loss, last 10 steps |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['variant']} | {r['tokens'] / r['runtime']:,.0f} | {r['runtime']:.1f} | {r['steps']} | "
            f"{r['peak_memory_gb']:.2f} | {r['mean_loss']:.4f} | {r['final_loss']:.4f} |"
        )
    for r in results:
        print(f"- {r['variant']}: {'; '.join(r['notes'])}")


def startup(args) -> None:
    """Spawn the trainer on a 16-example job (2 steps) several times; median seconds from
    spawn to the ``training`` stage, to the first metric, to ``done`` and to the exit."""
    work = Path(args.work or tempfile.mkdtemp(prefix="brightrun-startup-"))
    work.mkdir(parents=True, exist_ok=True)
    records = chat_dataset(16, args.seed)
    (work / "chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    spec = {
        "version": 1, "job_id": "startup", "base_model": "brightrun/tiny-random-llama",
        "dataset": {"path": str(work / "chat.jsonl")},
        "hyperparameters": {
            "learning_rate": 1e-3, "batch_size": 4, "gradient_accumulation_steps": 1, "epochs": 1, "lora_rank": 8,
            "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"], "warmup_ratio": 0.0,
            "weight_decay": 0.0, "scheduler": "constant", "max_seq_length": 256, "seed": 1, "validation_split": 0.0,
            "use_validation": False,
        },
        "output": {"dir": str(work / "out")}, "checkpoint_dir": str(work / "ck"), "max_steps": 2,
    }
    (work / "spec.json").write_text(json.dumps(spec))
    trainers = [Path(d) for d in (args.trainer_dir or [ROOT / "trainer"])]
    marks = {t: {"training stage": [], "first metric": [], "done": [], "exit": []} for t in trainers}
    for _ in range(args.repeats):
        for trainer_dir in trainers:  # interleaved, so a change in the machine's load hits both alike
            env = dict(os.environ, PYTHONPATH=str(trainer_dir), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
            for key, value in time_one_run(work / "spec.json", env).items():
                marks[trainer_dir][key].append(value)
    for trainer_dir, by_mark in marks.items():
        print(f"trainer {trainer_dir}, {args.repeats} runs, median seconds from spawn:")
        for key, values in by_mark.items():
            print(f"  {key:15} {statistics.median(values):6.2f}   (runs: {', '.join(f'{v:.2f}' for v in values)})")


def time_one_run(spec: Path, env: dict) -> dict[str, float]:
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "brightrun_trainer", "run", "--spec", str(spec)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
    )
    seen: dict[str, float] = {}
    for line in proc.stdout:
        event = json.loads(line)
        now = time.monotonic() - start
        if event["type"] == "stage" and event["stage"] == "training":
            seen.setdefault("training stage", now)
        elif event["type"] == "metric":
            seen.setdefault("first metric", now)
        elif event["type"] == "done":
            seen["done"] = now
    proc.wait()
    seen["exit"] = time.monotonic() - start
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=("tiny", "qwen2.5-0.5b-shape"), default="tiny")
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--max-seq-length", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--work", help="working folder (default: a new temporary one)")
    parser.add_argument("--startup", action="store_true", help="measure start-up and exit times instead")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--trainer-dir", nargs="+", help="with --startup: trainer folders to time, interleaved (default: this checkout's)"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.config)
    elif args.startup:
        startup(args)
    else:
        compare(args)


if __name__ == "__main__":
    main()
