"""Preference training end to end through the runner on the tiny model (every method), a
resume from a checkpoint, a run from ``init_adapter`` (its reference), ``evaluation.json``'s
``preference`` section and the spec's ``method`` field (DPO on SmolLM2 is in tests/e2e_smollm2.rs)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from brightrun_trainer.errors import SpecError
from brightrun_trainer.spec import Method, parse_spec

from conftest import make_spec, run_in_process, write_jsonl, write_spec

FIXTURES = Path(__file__).parent / "fixtures" / "preference"
METHODS = {
    "dpo": {"name": "dpo", "beta": 0.1, "loss_type": "sigmoid"},
    "dpo-ipo": {"name": "dpo", "beta": 0.1, "loss_type": "ipo"},
    "orpo": {"name": "orpo", "lambda": 0.1},
    "simpo": {"name": "simpo", "beta": 2.0, "gamma": 1.0},
    "kto": {"name": "kto", "beta": 0.1, "desirable_weight": 1.0, "undesirable_weight": 1.0},
}
PREFERENCE_KEYS = {"rewards_chosen", "rewards_rejected", "reward_margin", "reward_accuracy", "logps_chosen", "logps_rejected", "kl"}
EVALUATION_KEYS = {"pairs", "base_accuracy", "base_margin", "adapter_accuracy", "adapter_margin", "reward_accuracy", "reward_margin"}


def _pairs(count):
    return [
        {
            "prompt": [{"role": "user", "content": f"What is {i} plus {i}?"}],
            "chosen": [{"role": "assistant", "content": str(2 * i)}],
            "rejected": [{"role": "assistant", "content": "I do not know."}],
        }
        for i in range(count)
    ]


def _kto(count):
    return [
        {"prompt": f"What is {i} plus {i}?", "completion": str(2 * i) if i % 2 else "I do not know.", "label": bool(i % 2)}
        for i in range(count)
    ]


def _spec(tmp_path, method, records, **overrides):
    dataset = write_jsonl(tmp_path / "data.jsonl", records)
    hyperparameters = {"method": method, "epochs": 2, "validation_split": 0.2, **overrides.pop("hyperparameters", {})}
    return make_spec(tmp_path, {"path": str(dataset)}, hyperparameters=hyperparameters, **overrides)


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_trains_end_to_end(tmp_path, name):
    method = METHODS[name]
    records = _kto(24) if name == "kto" else _pairs(24)
    evaluation = {"samples": 2, "max_new_tokens": 4, "builtin_probes": False} if name in ("dpo", "kto") else None
    spec = _spec(tmp_path, method, records, evaluation=evaluation)
    run = run_in_process(write_spec(tmp_path / "spec.json", spec))
    assert run.returncode == 0, run.describe()
    metrics = run.of_type("metric")
    assert metrics and run.events[-1]["type"] == "done"
    for metric in metrics:
        assert math.isfinite(metric["training_loss"])
        assert set(metric["preference"]) == PREFERENCE_KEYS
        assert metric["throughput"] is None or metric["throughput"] > 0
    last = metrics[-1]["preference"]
    for key in ("rewards_chosen", "logps_chosen"):
        assert math.isfinite(last[key])
    if name == "kto":
        assert last["reward_accuracy"] is None and math.isfinite(last["kl"]) and last["kl"] >= 0
    else:
        assert last["kl"] is None and 0 <= last["reward_accuracy"] <= 1
        assert last["reward_margin"] == pytest.approx(last["rewards_chosen"] - last["rewards_rejected"], abs=1e-6)
    assert metrics[-1]["validation_loss"] is not None and math.isfinite(metrics[-1]["validation_loss"])
    adapter = tmp_path / "adapter"
    assert (adapter / "adapter_model.safetensors").is_file() and (adapter / "adapter_config.json").is_file()
    if evaluation is not None:
        result = json.loads((adapter / "evaluation.json").read_text())
        preference = result["preference"]
        assert set(preference) == EVALUATION_KEYS and "error" not in result
        assert preference["pairs"] > 0
        for key in EVALUATION_KEYS - {"pairs"}:
            assert preference[key] is not None and math.isfinite(preference[key])
        assert result["samples_from"] == "validation" and len(result["samples"]) == 2
        assert result["adapter_loss"] is not None and result["tokens_scored"] > 0


def test_sft_metrics_have_no_preference(tmp_path):
    from conftest import chat_records

    dataset = write_jsonl(tmp_path / "data.jsonl", chat_records(8))
    spec = make_spec(tmp_path, {"path": str(dataset)}, max_steps=2)
    run = run_in_process(write_spec(tmp_path / "spec.json", spec))
    assert run.returncode == 0, run.describe()
    assert all("preference" not in metric for metric in run.of_type("metric"))


def test_dpo_resumes_from_a_checkpoint_exactly(tmp_path):
    full_dir, resumed_dir = tmp_path / "full", tmp_path / "resumed"
    full_dir.mkdir(), resumed_dir.mkdir()
    records = _pairs(24)
    full = run_in_process(
        write_spec(full_dir / "spec.json", _spec(full_dir, METHODS["dpo"], records, checkpoint_steps=3))
    )
    assert full.returncode == 0, full.describe()
    checkpoint = next(event for event in full.of_type("checkpoint") if event["step"] == 3)
    spec = _spec(resumed_dir, METHODS["dpo"], records, resume_from=checkpoint["path"])
    resumed = run_in_process(write_spec(resumed_dir / "spec.json", spec))
    assert resumed.returncode == 0, resumed.describe()
    reference = {metric["step"]: metric for metric in full.of_type("metric")}
    steps = resumed.metric_steps
    assert steps and steps[0] == 4 and steps[-1] == full.metric_steps[-1]
    for metric in resumed.of_type("metric"):
        expected = reference[metric["step"]]
        assert metric["training_loss"] == pytest.approx(expected["training_loss"], rel=1e-5)
        assert metric["preference"]["reward_margin"] == pytest.approx(expected["preference"]["reward_margin"], rel=1e-4, abs=1e-7)


def test_evaluation_without_a_split_uses_the_training_pairs(tmp_path):
    spec = _spec(
        tmp_path, METHODS["simpo"], _pairs(8), hyperparameters={"use_validation": False, "epochs": 1},
        evaluation={"samples": 1, "max_new_tokens": 2, "builtin_probes": False},
    )  # fmt: skip
    run = run_in_process(write_spec(tmp_path / "spec.json", spec))
    assert run.returncode == 0, run.describe()
    result = json.loads((tmp_path / "adapter" / "evaluation.json").read_text())
    assert result["samples_from"] == "training" and result["preference"]["pairs"] == 8
    assert result["adapter_loss"] is None and result["base_loss"] is None  # no held-out split


def test_sft_data_with_a_preference_method_is_a_training_error(tmp_path):
    from conftest import chat_records

    dataset = write_jsonl(tmp_path / "data.jsonl", chat_records(4))
    spec = make_spec(tmp_path, {"path": str(dataset)}, hyperparameters={"method": METHODS["dpo"]})
    run = run_in_process(write_spec(tmp_path / "spec.json", spec))
    assert run.returncode == 1
    error = run.events[-1]
    assert error["type"] == "error" and error["kind"] == "training" and "method sft" in error["reason"]


# ------------------------------------------------------------------------ spec


def _hp_spec(tmp_path, method):
    spec = make_spec(tmp_path, {"path": "/data.jsonl"})
    if method is not ...:
        spec["hyperparameters"]["method"] = method
    return spec


def test_method_absent_or_null_is_sft(tmp_path):
    assert parse_spec(_hp_spec(tmp_path, ...)).hyperparameters.method == Method()
    assert parse_spec(_hp_spec(tmp_path, None)).hyperparameters.method.name == "sft"


def test_every_method_parses(tmp_path):
    for name, fields in METHODS.items():
        method = parse_spec(_hp_spec(tmp_path, fields)).hyperparameters.method
        assert method.name == fields["name"]
    orpo = parse_spec(_hp_spec(tmp_path, METHODS["orpo"])).hyperparameters.method
    assert orpo.lambda_ == 0.1 and orpo.reward_beta == 0.1
    kto = parse_spec(_hp_spec(tmp_path, METHODS["kto"])).hyperparameters.method
    assert (kto.beta, kto.desirable_weight, kto.undesirable_weight) == (0.1, 1.0, 1.0)


def test_unknown_keys_in_the_method_are_reported(tmp_path):
    spec = parse_spec(_hp_spec(tmp_path, {**METHODS["simpo"], "cpo_alpha": 1.0}))
    assert "hyperparameters.method.cpo_alpha" in spec.unknown_fields


@pytest.mark.parametrize(
    ("method", "field", "message"),
    [
        ("dpo", "method", "expected a JSON object"),
        ({"name": "ppo"}, "method.name", "expected one of"),
        ({"beta": 0.1}, "method.name", "is missing"),
        ({"name": "dpo", "beta": 0.1}, "method.loss_type", "is missing"),
        ({"name": "dpo", "beta": 0.1, "loss_type": "hinge"}, "method.loss_type", "expected one of"),
        ({"name": "dpo", "beta": 0, "loss_type": "sigmoid"}, "method.beta", "> 0"),
        ({"name": "dpo", "beta": "0.1", "loss_type": "sigmoid"}, "method.beta", "finite number"),
        ({"name": "orpo", "lambda": -1}, "method.lambda", "> 0"),
        ({"name": "orpo"}, "method.lambda", "is missing"),
        ({"name": "simpo", "beta": 2.0, "gamma": -0.5}, "method.gamma", "≥ 0"),
        ({"name": "simpo", "beta": True, "gamma": 1}, "method.beta", "finite number"),
        ({"name": "kto", "beta": 0.1, "desirable_weight": 0, "undesirable_weight": 1}, "method.desirable_weight", "> 0"),
        ({"name": "kto", "beta": 0.1, "desirable_weight": 1}, "method.undesirable_weight", "is missing"),
    ],
)
def test_bad_methods_are_spec_errors(tmp_path, method, field, message):
    with pytest.raises(SpecError, match=message) as error:
        parse_spec(_hp_spec(tmp_path, method))
    assert str(error.value).startswith(f"spec field `hyperparameters.{field}`")


def test_non_finite_beta_is_a_spec_error(tmp_path):
    spec = _hp_spec(tmp_path, {"name": "kto", "beta": math.inf, "desirable_weight": 1, "undesirable_weight": 1})
    with pytest.raises(SpecError, match="hyperparameters.method.beta"):
        parse_spec(spec)


# ------------------------------------------------------------------------ SmolLM2
# DPO on SmolLM2-135M-Instruct with the pairs of fixtures/preference/smollm2_dpo.jsonl runs
# through the engine in tests/e2e_smollm2.rs (`dpo_on_smollm2_…`): one real run in the suite.


# ------------------------------------------------------------------------ training on from an adapter

#: The LoRA shape of ``make_spec``'s hyperparameters (an ``init_adapter`` must match it).
LORA = {"r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"]}


def _starting_adapter(tiny_model_dir, folder: Path) -> Path:
    """A LoRA adapter as a previous run would leave it: the spec's shape, its B matrices
    perturbed (a fresh one equals the base), saved by PEFT."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(7)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model = get_peft_model(base, LoraConfig(lora_dropout=0.0, task_type="CAUSAL_LM", **LORA))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.2)
    model.save_pretrained(folder)
    return folder


def _init_adapter(folder: Path) -> dict:
    from conftest import TINY_MODEL_ID

    return {"id": "5e7d0c1a-0000-4000-8000-000000000042", "label": "tiny sft v1", "base_model": TINY_MODEL_ID,
            "adapter": {"dir": str(folder)}}  # fmt: skip


def _tensors(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def _pair_batch(tiny_model_dir, method_name="dpo"):
    from transformers import AutoTokenizer

    from brightrun_trainer.data import Message
    from brightrun_trainer.encoding import prepare_tokenizer
    from brightrun_trainer.preference import PreferenceCollator, encode_preference
    from brightrun_trainer.preference_data import KTOExample, PreferencePair

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    prepare_tokenizer(tokenizer)
    user = lambda text: (Message("user", text),)  # noqa: E731
    reply = lambda text: (Message("assistant", text, trainable=True),)  # noqa: E731
    if method_name == "kto":
        examples = [KTOExample(i + 1, i, user(f"What is {i} plus {i}?"), reply(str(2 * i) if i % 2 else "No idea."), bool(i % 2))
                    for i in range(4)]  # fmt: skip
    else:
        examples = [PreferencePair(i + 1, i, user(f"What is {i} plus {i}?"), reply(str(2 * i)), reply("I do not know."))
                    for i in range(3)]  # fmt: skip
    rows, _ = encode_preference(tokenizer, examples, 256)
    return PreferenceCollator(tokenizer.pad_token_id, flatten=False, max_seq_length=256)(rows)


@pytest.mark.parametrize("method_name", ["dpo", "kto"])
def test_the_reference_of_a_run_from_an_adapter_is_that_adapter(tmp_path, tiny_model_dir, method_name):
    """Loaded as a second, frozen adapter, the starting adapter is the reference: before any
    step the rewards (and KTO's KL) are exactly 0, where the base as reference (adapter
    disabled, the behaviour before) gives rewards far from 0. The reference pass leaves the
    trained adapter active and trainable, the reference frozen, and the gradient reaching the
    trained adapter alone."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from brightrun_trainer.preference import (
        REFERENCE_ADAPTER, drop_reference_adapter, has_reference_adapter, load_reference_adapter, preference_loss,
    )  # fmt: skip

    folder = _starting_adapter(tiny_model_dir, tmp_path / "start")
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(folder), is_trainable=True)
    model.train()
    trainable = {name for name, param in model.named_parameters() if param.requires_grad}
    load_reference_adapter(model, folder)
    assert has_reference_adapter(model) and model.training and model.active_adapter == "default"
    reference = {name for name in dict(model.named_parameters()) if f".{REFERENCE_ADAPTER}." in name}
    assert reference and trainable == {name for name, param in model.named_parameters() if param.requires_grad}
    method = METHODS[method_name]
    method = Method(**{("lambda_" if k == "lambda" else k): v for k, v in method.items()})
    batch = _pair_batch(tiny_model_dir, method_name)
    for causal_lm in (model.get_base_model(), None):  # chunked LM head, full logits
        model.zero_grad(set_to_none=True)
        loss, stats = preference_loss(model, batch, method, causal_lm=causal_lm)
        assert model.active_adapter == "default"
        assert trainable == {name for name, param in model.named_parameters() if param.requires_grad}
        for rewards in (stats.rewards_chosen, stats.rewards_rejected):
            assert rewards.numel() and torch.equal(rewards, torch.zeros_like(rewards)), rewards
        if method_name == "kto":
            assert float(stats.kl) == 0.0
        else:
            assert float(loss) == pytest.approx(math.log(2), abs=1e-6)
        loss.backward()
        grads = {name for name, param in model.named_parameters() if param.grad is not None}
        assert grads == trainable and any(float(model.get_parameter(n).grad.abs().max()) > 0 for n in grads)
    # The base as reference, for contrast: this adapter is far from it.
    drop_reference_adapter(model)
    assert not has_reference_adapter(model)
    _, base_stats = preference_loss(model, batch, method, causal_lm=model.get_base_model())
    assert float(torch.cat([base_stats.rewards_chosen, base_stats.rewards_rejected]).abs().max()) > 1e-2


def test_dpo_from_an_adapter_starts_at_it_saves_one_adapter_and_resumes(tmp_path, tiny_model_dir):
    """SFT-then-DPO: a DPO run from ``init_adapter`` starts with rewards 0 (its reference is the
    starting adapter), checkpoints and writes the trained adapter alone (the keys of an
    ordinary run's adapter), and a run resumed from its checkpoint rebuilds the reference from
    ``init_adapter`` and continues exactly."""
    folder = _starting_adapter(tiny_model_dir, tmp_path / "start")
    full_dir, resumed_dir = tmp_path / "full", tmp_path / "resumed"
    full_dir.mkdir(), resumed_dir.mkdir()
    records = _pairs(24)
    evaluation = {"samples": 0, "builtin_probes": False}

    def spec(where, **overrides):
        return _spec(where, METHODS["dpo"], records, init_adapter=_init_adapter(folder), evaluation=evaluation,
                     hyperparameters={"lora_dropout": 0.0}, **overrides)  # fmt: skip

    full = run_in_process(write_spec(full_dir / "spec.json", spec(full_dir, checkpoint_steps=3)))
    assert full.returncode == 0, full.describe()
    logs = [event["message"] for event in full.of_type("log")]
    assert any("reference: the starting adapter (init_adapter)" in line for line in logs), logs
    assert any("the reference model is that adapter, frozen" in line for line in logs), logs

    # (1) Step 1's batch is scored before any optimizer step: policy == reference.
    first = full.of_type("metric")[0]
    assert first["step"] == 1
    assert first["preference"]["rewards_chosen"] == pytest.approx(0.0, abs=1e-6)
    assert first["preference"]["rewards_rejected"] == pytest.approx(0.0, abs=1e-6)
    assert first["training_loss"] == pytest.approx(math.log(2), abs=1e-5)
    last = full.of_type("metric")[-1]["preference"]
    assert abs(last["rewards_chosen"]) > 1e-4  # and then it trains away from it

    # (2) The artifact and the checkpoints hold the trained adapter alone, keyed as an ordinary run's.
    adapter = full_dir / "adapter"
    (artifact,) = full.of_type("artifact")
    paths = {entry["path"] for entry in artifact["files"]}
    assert "adapter_model.safetensors" in paths and not any("/" in path for path in paths), paths
    assert not any(path.startswith("reference") for path in paths)
    ordinary = _tensors(folder)  # what PEFT saves of one LoRA adapter of this shape
    trained = _tensors(adapter)
    assert set(trained) == set(ordinary) and all(".reference." not in key for key in trained)
    assert any(not (trained[key] == ordinary[key]).all() for key in trained)  # trained on from it
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["r"] == LORA["r"] and config["base_model_name_or_path"] == "brightrun/tiny-random-llama"
    checkpoint = next(event for event in full.of_type("checkpoint") if event["step"] == 3)
    checkpoint_dir = Path(checkpoint["path"])
    assert not [p for p in checkpoint_dir.iterdir() if p.is_dir()], list(checkpoint_dir.iterdir())
    assert set(_tensors(checkpoint_dir)) == set(ordinary)

    # The evaluation's implicit reward is against the same reference; base_* stay the base's.
    result = json.loads((adapter / "evaluation.json").read_text())
    preference = result["preference"]
    assert "error" not in result and preference["pairs"] > 0
    for key in EVALUATION_KEYS - {"pairs"}:
        assert preference[key] is not None and math.isfinite(preference[key])
    assert any("log-probs of base, reference and adapter" in line for line in logs), logs

    # (3) Resumed from step 3 with the same spec: the same steps, losses and rewards.
    resumed = run_in_process(write_spec(resumed_dir / "spec.json", spec(resumed_dir, resume_from=checkpoint["path"])))
    assert resumed.returncode == 0, resumed.describe()
    expected = {metric["step"]: metric for metric in full.of_type("metric")}
    steps = resumed.metric_steps
    assert steps and steps[0] == 4 and steps[-1] == full.metric_steps[-1]
    for metric in resumed.of_type("metric"):
        reference = expected[metric["step"]]
        assert metric["training_loss"] == pytest.approx(reference["training_loss"], rel=1e-5)
        for key in ("rewards_chosen", "rewards_rejected", "reward_margin"):
            assert metric["preference"][key] == pytest.approx(reference["preference"][key], rel=1e-4, abs=1e-7), key
    resumed_tensors = _tensors(resumed_dir / "adapter")
    assert set(resumed_tensors) == set(ordinary)
    for key, value in resumed_tensors.items():
        assert float((value - trained[key]).abs().max()) <= 1e-5, key


def test_evaluation_rewards_use_the_reference_adapter_when_scored():
    """``preference_summary``: the implicit reward is against ``reference_*`` where scored,
    else against the base; ``base_*`` are always the base's."""
    import torch

    from brightrun_trainer.preference import preference_summary

    scores = {
        "adapter_chosen": torch.tensor([-2.0, -3.0]), "adapter_rejected": torch.tensor([-4.0, -4.0]),
        "base_chosen": torch.tensor([-5.0, -3.0]), "base_rejected": torch.tensor([-4.0, -6.0]),
        "chosen_tokens": torch.tensor([2.0, 2.0]), "rejected_tokens": torch.tensor([2.0, 2.0]),
    }  # fmt: skip
    against_base = preference_summary(scores, 0.5)
    # base reward: 0.5·((−2+5) − (−4+4)) = 1.5 and 0.5·((−3+3) − (−4+6)) = −1
    assert against_base["reward_margin"] == pytest.approx(0.25) and against_base["reward_accuracy"] == 0.5
    with_reference = dict(scores, reference_chosen=torch.tensor([-2.0, -3.0]), reference_rejected=torch.tensor([-4.0, -4.0]))
    summary = preference_summary(with_reference, 0.5)
    assert summary["reward_margin"] == 0.0 and summary["reward_accuracy"] == 0.0  # policy == reference
    for key in ("base_accuracy", "base_margin", "adapter_accuracy", "adapter_margin", "pairs"):
        assert summary[key] == against_base[key]
    kto = {"adapter": torch.tensor([-1.0, -3.0]), "base": torch.tensor([-2.0, -2.0]), "reference": torch.tensor([-1.0, -3.0]),
           "tokens": torch.tensor([1.0, 1.0]), "labels": torch.tensor([True, False])}  # fmt: skip
    assert preference_summary(kto, 1.0)["reward_margin"] == 0.0
    assert preference_summary({k: v for k, v in kto.items() if k != "reference"}, 1.0)["reward_margin"] == 2.0
