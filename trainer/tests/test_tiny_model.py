"""The tiny model is built locally, reproducibly, and cached."""

from __future__ import annotations

import hashlib
from pathlib import Path

from brightrun_trainer.tiny_model import build_tiny_model, ensure_tiny_model


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_two_builds_are_byte_identical(tmp_path):
    first = digests(build_tiny_model(tmp_path / "a"))
    second = digests(build_tiny_model(tmp_path / "b"))
    assert first == second
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= set(first)


def test_cache_is_reused(tiny_model_dir):
    stamp = (tiny_model_dir / "model.safetensors").stat().st_mtime_ns
    assert ensure_tiny_model() == tiny_model_dir
    assert (tiny_model_dir / "model.safetensors").stat().st_mtime_ns == stamp


def test_it_loads_as_a_llama_with_a_chat_template(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert model.config.model_type == "llama"
    assert (model.config.hidden_size, model.config.num_hidden_layers, model.config.num_attention_heads) == (64, 2, 4)
    assert model.config.vocab_size == len(tokenizer) < 300
    text = tokenizer.apply_chat_template([{"role": "user", "content": "héllo ☕"}], tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\nhéllo ☕<|im_end|>\n<|im_start|>assistant\n"
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text
