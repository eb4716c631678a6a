"""GPU-efficiency paths compute the same loss and gradients as the plain ones (on the tiny
model, CPU), and the decisions between them follow the numbers they are given."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest
from conftest import chat_records, make_spec, run_in_process, run_trainer, write_jsonl, write_spec

import torch  # noqa: E402  (the trainer environment always has it)

from brightrun_trainer.efficiency import (  # noqa: E402
    activation_bytes,
    choose_batching,
    chunked_lm_loss,
    chunked_loss_supported,
    decide_checkpointing,
    logits_bytes,
)
from brightrun_trainer.encoding import (  # noqa: E402
    IGNORE_INDEX,
    EncodedExample,
    FlatteningCollator,
    PackedRow,
    PaddingCollator,
    pack_examples,
)
from brightrun_trainer.spec import Efficiency  # noqa: E402

GIB = 2**30


@pytest.fixture(scope="module")
def lora_model(tiny_model_dir):
    """The tiny model with a LoRA adapter whose B matrices are non-zero (so LoRA gradients
    flow through every layer), no dropout, no KV cache (as training loads it)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model.config.use_cache = False
    config = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    model = get_peft_model(model, config)
    torch.manual_seed(0)
    for name, parameter in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(parameter, std=0.05)
    model.train()
    return model


def examples(lengths=(7, 30, 12, 19, 3), seed=0) -> list[EncodedExample]:
    """Random token rows of varied lengths, trained on their second half (as an assistant reply)."""
    rng = random.Random(seed)
    rows = []
    for n in lengths:
        ids = [rng.randrange(5, 261) for _ in range(n)]
        labels = [token if i >= n // 2 else IGNORE_INDEX for i, token in enumerate(ids)]
        rows.append(EncodedExample.of(ids, labels))
    return rows


def loss_and_grads(model, loss_fn):
    model.zero_grad()
    loss = loss_fn()
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad()
    return loss.detach(), grads


def assert_same(a, b):
    (loss_a, grads_a), (loss_b, grads_b) = a, b
    torch.testing.assert_close(loss_a, loss_b, rtol=1e-5, atol=1e-6)
    assert grads_a.keys() == grads_b.keys() and grads_a
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=1e-4, atol=1e-6, msg=name)


def chunked(model, batch, **kwargs):
    return chunked_lm_loss(model, model.get_base_model(), batch, **kwargs)


# ------------------------------------------------------------------------ padding-free


def test_flattened_batch_gives_the_padded_loss_and_gradients(lora_model):
    rows = examples()
    padded = PaddingCollator(pad_token_id=3)(rows)
    flat = FlatteningCollator()(rows)
    assert flat["input_ids"].shape == (1, sum(len(r.input_ids) for r in rows))  # no padding token
    assert "attention_mask" not in flat and flat["position_ids"][0, 7].item() == 0  # positions restart
    assert_same(
        loss_and_grads(lora_model, lambda: lora_model(**padded).loss),
        loss_and_grads(lora_model, lambda: lora_model(**flat).loss),
    )


def test_packing_fills_rows_keeps_every_example_and_the_loss(lora_model):
    rows = examples((7, 30, 12, 19, 3, 25, 9))
    packed = pack_examples(rows, max_seq_length=32)
    assert all(len(row.input_ids) <= 32 for row in packed)
    assert sorted(id(e) for row in packed for e in row.examples) == sorted(id(e) for e in rows)
    assert len(packed) < len(rows)
    assert isinstance(packed[0], PackedRow) and packed[0].trained_tokens > 0
    flat = FlatteningCollator()(packed)
    padded = PaddingCollator(pad_token_id=3)(rows)
    # Same tokens, same targets (the order within the flat row changes nothing in a mean).
    assert_same(
        loss_and_grads(lora_model, lambda: lora_model(**padded).loss),
        loss_and_grads(lora_model, lambda: lora_model(**flat).loss),
    )


# ------------------------------------------------------------------------ chunked loss


@pytest.mark.parametrize("collate", ["padded", "flat"])
def test_chunked_loss_equals_the_models_loss_and_gradients(lora_model, collate):
    rows = examples()
    batch = PaddingCollator(pad_token_id=3)(rows) if collate == "padded" else FlatteningCollator()(rows)
    assert_same(
        loss_and_grads(lora_model, lambda: lora_model(**batch).loss),
        loss_and_grads(lora_model, lambda: chunked(lora_model, batch, chunk_tokens=5)),  # many chunks, one ragged
    )


def test_chunked_loss_divides_by_the_accumulated_token_count(lora_model):
    """Under gradient accumulation the Trainer passes ``num_items_in_batch`` (trained tokens
    over all micro-batches); the model's loss and the chunked one divide by it alike."""
    batch = PaddingCollator(pad_token_id=3)(examples())
    items = torch.tensor(1000)
    assert_same(
        loss_and_grads(lora_model, lambda: lora_model(**batch, num_items_in_batch=items).loss),
        loss_and_grads(lora_model, lambda: chunked(lora_model, batch, num_items_in_batch=items, chunk_tokens=16)),
    )


def test_chunked_loss_leaves_the_lm_head_in_place(lora_model):
    head = lora_model.get_base_model().get_output_embeddings()
    chunked(lora_model, PaddingCollator(pad_token_id=3)(examples()))
    assert lora_model.get_base_model().get_output_embeddings() is head


def test_chunked_loss_keeps_models_that_reshape_their_logits(lora_model):
    assert chunked_loss_supported(lora_model.get_base_model()) is None
    capped = SimpleNamespace(config=SimpleNamespace(final_logit_softcapping=30.0))
    assert "final_logit_softcapping" in chunked_loss_supported(capped)


@pytest.mark.parametrize("accumulation", [1, 3])
def test_chunked_loss_in_a_training_run_matches_the_plain_loss(tmp_path, accumulation):
    """The whole trainer, chunked loss on and off: the same losses (and so the same updates)
    step by step, with gradient accumulation too (the loss divides by the accumulated
    batch's token count, as the model's does)."""
    dataset = write_jsonl(tmp_path / "train.jsonl", chat_records(16))
    losses = {}
    for chunked_loss in (True, False):
        root = tmp_path / f"chunked-{chunked_loss}"
        root.mkdir()
        spec = make_spec(root, {"path": str(dataset)}, max_steps=3, efficiency={"chunked_loss": chunked_loss},
                         hyperparameters={"use_validation": False, "lora_dropout": 0.0, "batch_size": 2,
                                          "gradient_accumulation_steps": accumulation})
        run = run_in_process(write_spec(root / "spec.json", spec))
        assert run.returncode == 0, run.describe()
        losses[chunked_loss] = [m["training_loss"] for m in run.of_type("metric")]
    assert losses[True] == pytest.approx(losses[False], rel=1e-5)


# ------------------------------------------------------------------------ decisions


def test_batching_is_padding_free_only_with_a_varlen_kernel():
    assert choose_batching(Efficiency(), "flash_attention_2").mode == "flat"
    grouped = choose_batching(Efficiency(), None)
    assert grouped.mode == "grouped" and "no flash-attn varlen kernel" in grouped.reason
    assert choose_batching(Efficiency(padding_free=False), "flash_attention_2").mode == "grouped"
    assert choose_batching(Efficiency(packing=True), None).mode == "packed"
    assert choose_batching(Efficiency(packing=True), "flash_attention_2").attention == "flash_attention_2"


LLAMA_3_8B = SimpleNamespace(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32)


def test_activation_estimate_is_in_the_right_range():
    # Llama-3-8B, batch 8 × 2048 in bf16, q/v LoRA: well over an 80 GB GPU without checkpointing.
    needed = activation_bytes(LLAMA_3_8B, 8 * 2048, 2, lora_modules=2)
    assert 80 * GIB < needed < 200 * GIB
    # Batch 1 × 512 of the same model: a few GiB.
    assert activation_bytes(LLAMA_3_8B, 512, 2, lora_modules=2) < 5 * GIB
    # The figure: the fp32 logits of Llama-3 (vocabulary 128,256) at 8 × 2048 are 8.4 GB;
    # the model's own loss also keeps the bf16 logits and the fp32 gradient.
    assert logits_bytes(SimpleNamespace(vocab_size=128256), 8 * 2048) == 8 * 2048 * 128256 * 10
    assert round(8 * 2048 * 128256 * 4 / 1e9, 1) == 8.4


@pytest.mark.parametrize(
    "setting, on_cuda, needed, free, expected, says",
    [
        ("auto", True, 100 * GIB, 60 * GIB, True, "activation checkpointing: on (auto: estimated activations 100.0 GiB"),
        ("auto", True, 10 * GIB, 60 * GIB, False, "activation checkpointing: off (auto: estimated activations 10.0 GiB"),
        ("auto", True, 45 * GIB, 60 * GIB, True, "more than 70%"),  # fits, but without headroom
        ("auto", True, 10 * GIB, None, True, "free GPU memory unknown"),
        ("auto", False, 100 * GIB, None, False, "on CPU"),
        ("on", True, 1, 60 * GIB, True, 'gradient_checkpointing "on"'),
        ("on", False, 1, None, True, 'gradient_checkpointing "on"'),
        ("off", True, 100 * GIB, 60 * GIB, False, 'gradient_checkpointing "off"'),
    ],
)
def test_checkpointing_decision(setting, on_cuda, needed, free, expected, says):
    chosen, reason = decide_checkpointing(setting, on_cuda=on_cuda, needed=needed, free=free)
    assert chosen is expected and says in reason


def test_the_run_logs_its_batching_and_checkpointing_choice(tmp_path):
    dataset = write_jsonl(tmp_path / "train.jsonl", chat_records(8))
    spec = make_spec(tmp_path, {"path": str(dataset)}, max_steps=1, efficiency={"gradient_checkpointing": "on"},
                     hyperparameters={"use_validation": False})
    run = run_in_process(write_spec(tmp_path / "spec.json", spec))
    assert run.returncode == 0, run.describe()
    messages = [e["message"] for e in run.of_type("log")]
    assert any(m.startswith("padded batches grouped by length (no flash-attn varlen kernel") for m in messages), messages
    assert 'activation checkpointing: on (gradient_checkpointing "on" in the spec)' in messages


def test_a_packed_run_trains_and_counts_the_same_real_tokens(tmp_path):
    """Throughput counts real tokens: a packed (flat, maskless) run trains the same tokens as
    a padded one, and the meter must count them, not sum their ids."""
    dataset = write_jsonl(tmp_path / "train.jsonl", chat_records(24))
    summaries = {}
    for packing in (True, False):
        root = tmp_path / f"packing-{packing}"
        root.mkdir()
        spec = make_spec(root, {"path": str(dataset)}, efficiency={"packing": packing},
                         hyperparameters={"use_validation": True, "epochs": 1})
        run = run_in_process(write_spec(root / "spec.json", spec))
        assert run.returncode == 0, run.describe()
        messages = [e["message"] for e in run.of_type("log")]
        assert any(m.startswith("packing: 21 training examples in ") for m in messages) is packing, messages
        (done,) = run.of_type("done")
        summaries[packing] = done["summary"]
    assert summaries[True]["final_validation_loss"] is not None
    assert summaries[True]["train_tokens"] == summaries[False]["train_tokens"] > 0
    assert summaries[True]["total_steps"] < summaries[False]["total_steps"]  # fewer, fuller rows


def test_liger_without_the_package_warns_and_trains(tmp_path, monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "liger_kernel" else real_find_spec(name, *a))
    dataset = write_jsonl(tmp_path / "train.jsonl", chat_records(8))
    spec = make_spec(tmp_path, {"path": str(dataset)}, max_steps=1, efficiency={"liger": True},
                     hyperparameters={"use_validation": False})
    run = run_in_process(write_spec(tmp_path / "spec.json", spec))
    assert run.returncode == 0, run.describe()
    warnings = [e["message"] for e in run.of_type("log") if e["level"] == "warning"]
    assert "liger is on but the liger-kernel package is not installed: training without Liger kernels" in warnings


# torch.compile takes 30–40 s on two cores (inductor builds C++ kernels): the slowest test here.
def test_torch_compile_trains_the_same_losses(tmp_path):
    dataset = write_jsonl(tmp_path / "train.jsonl", chat_records(8))
    losses = {}
    for compiled in (True, False):
        root = tmp_path / f"compile-{compiled}"
        root.mkdir()
        spec = make_spec(root, {"path": str(dataset)}, max_steps=2, efficiency={"torch_compile": compiled},
                         hyperparameters={"use_validation": False, "lora_dropout": 0.0})
        run = run_trainer(write_spec(root / "spec.json", spec))
        assert run.returncode == 0, run.describe()
        losses[compiled] = [m["training_loss"] for m in run.of_type("metric")]
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)


def test_a_padding_free_run_wires_the_flattening_collator(tmp_path, monkeypatch):
    """The flat path as a GPU with flash-attn takes it, with the varlen check mocked to
    answer "sdpa" (no flash-attn here; sdpa gets the block-diagonal mask, exact on CPU).
    It trains the same real tokens as the padded run, counted without a mask."""
    from brightrun_trainer import encoding, train

    dataset = write_jsonl(tmp_path / "train.jsonl", chat_records(12))
    spec = make_spec(tmp_path, {"path": str(dataset)}, hyperparameters={"use_validation": False, "epochs": 1})
    padded = run_in_process(write_spec(tmp_path / "padded.json", spec))
    assert padded.returncode == 0, padded.describe()

    monkeypatch.setattr(train, "varlen_attention_available", lambda on_cuda: "sdpa")
    sizes = []
    collate = encoding.FlatteningCollator.__call__
    monkeypatch.setattr(
        encoding.FlatteningCollator, "__call__", lambda self, rows: sizes.append(len(rows)) or collate(self, rows)
    )
    flat = run_in_process(write_spec(tmp_path / "flat.json", spec))
    assert flat.returncode == 0, flat.describe()
    assert "padding-free batches (varlen sdpa, sequence bounds from position ids)" in [
        e["message"] for e in flat.of_type("log")
    ]
    assert sizes and set(sizes) == {4}  # batch_size examples per flattened row
    (done_flat,), (done_padded,) = flat.of_type("done"), padded.of_type("done")
    assert done_flat["summary"]["train_tokens"] == done_padded["summary"]["train_tokens"] > 0
    assert all(m["throughput"] > 0 for m in flat.of_type("metric"))
