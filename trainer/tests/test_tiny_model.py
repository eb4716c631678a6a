"""The tiny model is built locally, reproducibly, and cached."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

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


def test_concurrent_builders_leave_one_complete_folder(tmp_path):
    """Two runs that need the same model at once: each gets the complete folder, never a
    half-written one, and no staging folder is left behind."""
    import threading
    import time

    from brightrun_trainer.tiny_model import ensure_built

    target = tmp_path / "model-v1"
    seen: list[Path] = []
    builds: list[Path] = []

    def slow_build(staging: Path) -> None:
        builds.append(staging)
        (staging / "model.safetensors").write_text("weights")
        time.sleep(0.2)  # both builders are inside their build at once
        (staging / "config.json").write_text("{}")

    def needs_it() -> None:
        folder = ensure_built(target, slow_build)
        assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors"}
        seen.append(folder)

    threads = [threading.Thread(target=needs_it) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [target, target] and len(builds) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model-v1"]
    assert ensure_built(target, lambda _: pytest.fail("built again")) == target
