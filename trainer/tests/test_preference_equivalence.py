"""Our preference losses equal TRL 1.16's, value and gradient, on the same batch.

For each method the same tiny Llama with the same LoRA adapter (its B matrices perturbed, so
that every LoRA weight gets a gradient) scores the same pairs. Our side runs
:func:`brightrun_trainer.preference.preference_loss` on our collated batch; TRL's side runs
the trainer TRL itself builds around that PEFT model (``DPOTrainer._compute_loss``,
``KTOTrainer._compute_loss``, ``ORPOTrainer.get_batch_loss_metrics``,
``CPOTrainer.get_batch_loss_metrics`` with SimPO's loss), on a batch built by TRL's own
collators (DPO, KTO) or in the layout its ``concatenated_forward`` reads (ORPO, CPO), from the
same token ids. The model runs in float64 so that the comparison can be tight.

TRL copies a PEFT model's existing adapter into a frozen ``ref`` adapter to serve as the
reference; most tests delete it so that TRL's reference is the base with the adapter disabled,
which is BrightRun's reference for a fresh adapter. ``test_dpo_from_an_adapter_matches_trl_ref_adapter``
keeps it: a run from ``init_adapter`` has that adapter, frozen, as its reference, as TRL does.
"""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")
trl = pytest.importorskip("trl")

from brightrun_trainer.data import Message  # noqa: E402
from brightrun_trainer.encoding import IGNORE_INDEX, prepare_tokenizer  # noqa: E402
from brightrun_trainer.preference import (  # noqa: E402
    PreferenceCollator,
    encode_preference,
    preference_loss,
    sequence_logps,
)
from brightrun_trainer.preference_data import KTOExample, PreferencePair  # noqa: E402
from brightrun_trainer.spec import Method  # noqa: E402

#: TRL's fused LM head (DPO, KTO) computes log-probs in float32 whatever the model's dtype
#: (``trl/kernels``: ``out_dtype=torch.float32``), so its numbers carry float32 rounding against
#: our float64 ones: agreement to ~1e-6 relative. ORPO and CPO take the model's own float64
#: logits and agree to ~1e-12.
TOLERANCE = {"fused": 1e-5, "float64": 1e-10}

PAIRS = [
    ("What is two plus two?", "Four.", "It is five, I believe."),
    ("Name a colour of the sky.", "Blue, on a clear day.", "Green."),
    ("Say hello in French.", "Bonjour !", "Hola."),
]
KTO = [
    ("What is two plus two?", "Four.", True),
    ("Name a colour of the sky.", "Green.", False),
    ("Say hello in French.", "Bonjour !", True),
    ("What is the capital of Italy?", "Paris, probably.", False),
]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    prepare_tokenizer(tokenizer)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float64)
    model.config.use_cache = False
    return tokenizer, model


def _peft(base):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    torch.manual_seed(0)
    model = get_peft_model(copy.deepcopy(base), config)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.05)  # a trained-looking adapter: every LoRA weight gets a gradient
    model.train()
    return model


def _user(text):
    return (Message("user", text),)


def _assistant(text):
    return (Message("assistant", text, trainable=True),)


def _pair_rows(tokenizer):
    pairs = [PreferencePair(i + 1, i, _user(p), _assistant(c), _assistant(r)) for i, (p, c, r) in enumerate(PAIRS)]
    rows, report = encode_preference(tokenizer, pairs, 256)
    assert report.kept == len(PAIRS) and not report.truncated
    return rows


def _split(encoded):
    """(prompt ids, reply ids): every token from the first trained one is the reply."""
    labels = list(encoded.labels)
    start = next(i for i, label in enumerate(labels) if label != IGNORE_INDEX)
    assert all(label != IGNORE_INDEX for label in labels[start:])
    ids = list(encoded.input_ids)
    return ids[:start], ids[start:]


def _grads(model):
    return {name: param.grad.detach().clone() for name, param in model.named_parameters() if param.requires_grad}


def _ours(model, batch, method, chunked):
    model.zero_grad(set_to_none=True)
    causal_lm = model.get_base_model() if chunked else None
    loss, stats = preference_loss(model, batch, method, causal_lm=causal_lm)
    loss.backward()
    return loss.detach(), _grads(model), stats


def _drop_ref_adapter(model):
    if "ref" in model.peft_config:
        model.delete_adapter("ref")
    model.set_adapter("default")


def _assert_same(ours, theirs, precision="fused"):
    loss, grads = ours
    their_loss, their_grads = theirs
    their_loss = their_loss.detach().to(loss.dtype)
    assert grads.keys() == their_grads.keys() and grads
    worst = max(float((grads[n] - their_grads[n]).abs().max() / their_grads[n].abs().max().clamp(min=1e-30)) for n in grads)
    print(f"loss {float(loss):.12f} vs TRL {float(their_loss):.12f}; worst gradient difference {worst:.2e} of its max")
    tolerance = TOLERANCE[precision]
    torch.testing.assert_close(loss, their_loss, rtol=tolerance, atol=tolerance * 1e-3)
    for name in grads:
        # Each gradient tensor equals TRL's to ``tolerance`` of its largest element.
        scale = float(their_grads[name].abs().max())
        torch.testing.assert_close(grads[name], their_grads[name], rtol=0, atol=tolerance * scale, msg=name)
    assert any(float(g.abs().max()) > 0 for g in grads.values())


def _trl_args(config_class, tmp_path, **kwargs):
    return config_class(
        output_dir=str(tmp_path / "trl"), report_to=[], use_cpu=True, bf16=False, fp16=False,
        per_device_train_batch_size=len(kwargs.pop("rows")), **kwargs,
    )  # fmt: skip


def _pair_dataset():
    from datasets import Dataset

    return Dataset.from_list([{"prompt": p, "chosen": c, "rejected": r} for p, c, r in PAIRS])


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "full-logits"])
@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo"])
def test_dpo_matches_trl(tiny, tmp_path, loss_type, chunked):
    from trl import DPOConfig, DPOTrainer
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    tokenizer, base = tiny
    rows = _pair_rows(tokenizer)
    method = Method("dpo", beta=0.3, loss_type=loss_type)
    model = _peft(base)
    ours = _ours(model, PreferenceCollator(tokenizer.pad_token_id, flatten=False, max_seq_length=256)(rows), method, chunked)

    args = _trl_args(DPOConfig, tmp_path, rows=rows, beta=0.3, loss_type=loss_type, max_length=None,
                     precompute_ref_log_probs=False)  # fmt: skip
    trainer = DPOTrainer(model=model, args=args, train_dataset=_pair_dataset(), processing_class=tokenizer)
    _drop_ref_adapter(trainer.model)
    examples = []
    for row in rows:
        prompt, chosen = _split(row.chosen)
        prompt_r, rejected = _split(row.rejected)
        assert prompt == prompt_r
        examples.append({"prompt_ids": prompt, "chosen_ids": chosen, "rejected_ids": rejected})
    inputs = DataCollatorForPreference(pad_token_id=tokenizer.pad_token_id)(examples)
    trainer.model.zero_grad(set_to_none=True)
    their_loss = trainer._compute_loss(trainer.model, inputs, return_outputs=False)
    their_loss.backward()
    _assert_same(ours[:2], (their_loss, _grads(trainer.model)))
    # TRL's logged rewards are ours too.
    metrics = trainer._metrics["train"]
    assert metrics["rewards/chosen"][-1] == pytest.approx(float(ours[2].rewards_chosen.mean()), rel=1e-4, abs=1e-5)
    assert metrics["rewards/rejected"][-1] == pytest.approx(float(ours[2].rewards_rejected.mean()), rel=1e-4, abs=1e-5)


def _concatenated_batch(rows, pad_token_id):
    """ORPO's and CPO's batch layout: ``chosen_*``/``rejected_*`` padded ids, masks and labels
    (prompt tokens −100), from the same token ids as ours."""
    batch = {}
    for side in ("chosen", "rejected"):
        encoded = [getattr(row, side) for row in rows]
        width = max(len(e.input_ids) for e in encoded)
        ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        for i, e in enumerate(encoded):
            n = len(e.input_ids)
            ids[i, :n] = torch.tensor(list(e.input_ids))
            mask[i, :n] = 1
            labels[i, :n] = torch.tensor(list(e.labels))
        batch.update({f"{side}_input_ids": ids, f"{side}_attention_mask": mask, f"{side}_labels": labels})
    return batch


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "full-logits"])
def test_orpo_matches_trl(tiny, tmp_path, chunked):
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    tokenizer, base = tiny
    rows = _pair_rows(tokenizer)
    method = Method("orpo", lambda_=0.25)
    model = _peft(base)
    ours = _ours(model, PreferenceCollator(tokenizer.pad_token_id, flatten=False, max_seq_length=256)(rows), method, chunked)

    args = _trl_args(ORPOConfig, tmp_path, rows=rows, beta=0.25, max_length=256)
    trainer = ORPOTrainer(model=model, args=args, train_dataset=_pair_dataset(), processing_class=tokenizer)
    trainer.model.zero_grad(set_to_none=True)
    their_loss, metrics = trainer.get_batch_loss_metrics(trainer.model, _concatenated_batch(rows, tokenizer.pad_token_id))
    their_loss.backward()
    _assert_same(ours[:2], (their_loss, _grads(trainer.model)), "float64")
    assert metrics["rewards/chosen"] == pytest.approx(float(ours[2].rewards_chosen.mean()), rel=1e-6)
    assert metrics["logps/rejected"] == pytest.approx(float(ours[2].logps_rejected.mean()), rel=1e-6)


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "full-logits"])
def test_simpo_matches_trl_cpo(tiny, tmp_path, chunked):
    from trl.experimental.cpo import CPOConfig, CPOTrainer

    tokenizer, base = tiny
    rows = _pair_rows(tokenizer)
    method = Method("simpo", beta=2.0, gamma=0.7)
    model = _peft(base)
    ours = _ours(model, PreferenceCollator(tokenizer.pad_token_id, flatten=False, max_seq_length=256)(rows), method, chunked)

    args = _trl_args(CPOConfig, tmp_path, rows=rows, loss_type="simpo", cpo_alpha=0.0, beta=2.0, simpo_gamma=0.7,
                     max_length=256)  # fmt: skip
    trainer = CPOTrainer(model=model, args=args, train_dataset=_pair_dataset(), processing_class=tokenizer)
    trainer.model.zero_grad(set_to_none=True)
    their_loss, metrics = trainer.get_batch_loss_metrics(trainer.model, _concatenated_batch(rows, tokenizer.pad_token_id))
    their_loss.backward()
    _assert_same(ours[:2], (their_loss, _grads(trainer.model)), "float64")
    assert metrics["rewards/margins"] == pytest.approx(
        float((ours[2].rewards_chosen - ours[2].rewards_rejected).mean()), rel=1e-6
    )


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "full-logits"])
def test_kto_matches_trl(tiny, tmp_path, chunked):
    from datasets import Dataset
    from trl import KTOConfig, KTOTrainer
    from trl.trainer.kto_trainer import DataCollatorForUnpairedPreference

    tokenizer, base = tiny
    examples = [KTOExample(i + 1, i, _user(p), _assistant(c), label) for i, (p, c, label) in enumerate(KTO)]
    rows, _ = encode_preference(tokenizer, examples, 256)
    method = Method("kto", beta=0.2, desirable_weight=1.0, undesirable_weight=1.5)
    model = _peft(base)
    ours = _ours(model, PreferenceCollator(tokenizer.pad_token_id, flatten=False, max_seq_length=256)(rows), method, chunked)

    args = _trl_args(KTOConfig, tmp_path, rows=rows, beta=0.2, desirable_weight=1.0, undesirable_weight=1.5,
                     max_length=None, precompute_ref_log_probs=False, train_sampling_strategy="sequential")  # fmt: skip
    dataset = Dataset.from_list([{"prompt": p, "completion": c, "label": label} for p, c, label in KTO])
    trainer = KTOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    _drop_ref_adapter(trainer.model)
    split = [_split(row.example) for row in rows]
    features = [
        {"prompt_ids": prompt, "completion_ids": completion, "KL_completion_ids": split[i - 1][1], "label": row.label}
        for i, (row, (prompt, completion)) in enumerate(zip(rows, split))
    ]  # TRL's rotation: each prompt with the previous example's completion
    inputs = DataCollatorForUnpairedPreference(pad_token_id=tokenizer.pad_token_id)(features)
    trainer.model.zero_grad(set_to_none=True)
    their_loss = trainer._compute_loss(trainer.model, inputs, return_outputs=False)
    their_loss.backward()
    _assert_same(ours[:2], (their_loss, _grads(trainer.model)))
    metrics = trainer._metrics["train"]
    assert metrics["kl"][-1] == pytest.approx(float(ours[2].kl), rel=1e-4, abs=1e-5)
    assert metrics["rewards/chosen"][-1] == pytest.approx(float(ours[2].rewards_chosen.mean()), rel=1e-4, abs=1e-5)


def test_flattened_batch_scores_like_the_padded_one(tiny):
    """The padding-free layout (one row, per-sequence position ids) gives the padded batch's
    log-probs; the chunked LM head gives the full logits' ones."""
    tokenizer, base = tiny
    rows = _pair_rows(tokenizer)
    model = _peft(base).eval()
    padded = PreferenceCollator(tokenizer.pad_token_id, flatten=False, max_seq_length=256)(rows)
    flat = PreferenceCollator(tokenizer.pad_token_id, flatten=True, max_seq_length=256)(rows)
    assert flat["input_ids"].size(0) == 1 and "attention_mask" not in flat
    with torch.no_grad():
        reference = sequence_logps(model, padded)
        for batch in (padded, flat):
            for causal_lm in (None, model.get_base_model()):
                scored = sequence_logps(model, batch, causal_lm=causal_lm, nll_rows=len(rows))
                torch.testing.assert_close(scored.sums, reference.sums, rtol=1e-9, atol=1e-10)
                torch.testing.assert_close(scored.counts, reference.counts)
    assert reference.sums.shape == (2 * len(rows),) and bool((reference.counts > 0).all())


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "full-logits"])
def test_dpo_from_an_adapter_matches_trl_ref_adapter(tiny, tmp_path, chunked):
    """Training on from an adapter: our reference is that adapter loaded again, frozen
    (``load_reference_adapter``); TRL's is its ``ref`` copy of the PEFT model's adapter. With the
    trained adapter then moved away from its start (as after some steps), loss, gradients and
    rewards agree: switching to the reference adapter for the reference pass leaves the
    gradient of the trained adapter intact."""
    from peft import PeftModel
    from trl import DPOConfig, DPOTrainer
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    from brightrun_trainer.preference import load_reference_adapter

    tokenizer, base = tiny
    rows = _pair_rows(tokenizer)
    method = Method("dpo", beta=0.3, loss_type="sigmoid")
    start = _peft(base)
    start.save_pretrained(tmp_path / "start")
    generator = torch.Generator().manual_seed(3)
    steps = {
        name: torch.randn(param.shape, generator=generator, dtype=param.dtype) * 0.05
        for name, param in start.named_parameters()
        if ".default." in name
    }

    def move(model):
        with torch.no_grad():
            for name, step in steps.items():
                model.get_parameter(name).add_(step)

    model = PeftModel.from_pretrained(copy.deepcopy(base), str(tmp_path / "start"), is_trainable=True)
    load_reference_adapter(model, tmp_path / "start")
    move(model)
    model.train()
    ours = _ours(model, PreferenceCollator(tokenizer.pad_token_id, flatten=False, max_seq_length=256)(rows), method, chunked)
    assert float(ours[2].rewards_chosen.abs().max()) > 1e-4  # policy and reference differ

    args = _trl_args(DPOConfig, tmp_path, rows=rows, beta=0.3, loss_type="sigmoid", max_length=None,
                     precompute_ref_log_probs=False)  # fmt: skip
    trainer = DPOTrainer(model=start, args=args, train_dataset=_pair_dataset(), processing_class=tokenizer)
    assert "ref" in trainer.model.peft_config
    move(trainer.model)
    examples = []
    for row in rows:
        prompt, chosen = _split(row.chosen)
        _, rejected = _split(row.rejected)
        examples.append({"prompt_ids": prompt, "chosen_ids": chosen, "rejected_ids": rejected})
    inputs = DataCollatorForPreference(pad_token_id=tokenizer.pad_token_id)(examples)
    trainer.model.zero_grad(set_to_none=True)
    their_loss = trainer._compute_loss(trainer.model, inputs, return_outputs=False)
    their_loss.backward()
    _assert_same(ours[:2], (their_loss, _grads(trainer.model)))
    metrics = trainer._metrics["train"]
    assert metrics["rewards/chosen"][-1] == pytest.approx(float(ours[2].rewards_chosen.mean()), rel=1e-4, abs=1e-5)
    assert metrics["rewards/rejected"][-1] == pytest.approx(float(ours[2].rewards_rejected.mean()), rel=1e-4, abs=1e-5)
