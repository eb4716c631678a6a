"""The job spec: a valid spec parses to the right values; every defect names its field."""

from __future__ import annotations

import copy
import json

import pytest
from conftest import make_spec

from brightrun_trainer.errors import SpecError
from brightrun_trainer.spec import load_spec, parse_spec


@pytest.fixture
def spec(tmp_path):
    return make_spec(tmp_path, {"path": "/data/train.jsonl"})


def test_valid_spec_parses_every_field(spec):
    parsed = parse_spec(spec)
    hp = parsed.hyperparameters
    assert parsed.job_id == spec["job_id"]
    assert parsed.base_model == "brightrun/tiny-random-llama"
    assert parsed.dataset.path == "/data/train.jsonl" and parsed.dataset.url is None
    assert parsed.output.dir == spec["output"]["dir"] and parsed.output.presigned_put is None
    assert (hp.learning_rate, hp.batch_size, hp.epochs, hp.lora_rank, hp.lora_alpha) == (1e-3, 4, 3, 8, 16.0)
    assert hp.target_modules == ("q_proj", "v_proj")
    assert hp.scheduler == "cosine" and hp.quantization == "none" and hp.warmup_steps is None
    assert hp.holds_out_validation
    assert parsed.logging_steps == 1 and parsed.max_steps is None and parsed.resume_from is None
    assert parsed.unknown_fields == ()


def test_optional_fields_take_documented_defaults(spec):
    for name in ("checkpoint_dir", "resume_from", "logging_steps", "max_steps"):
        del spec[name]
    del spec["hyperparameters"]["warmup_steps"]
    del spec["hyperparameters"]["quantization"]
    parsed = parse_spec(spec)
    assert parsed.logging_steps == 1
    assert parsed.max_steps is None and parsed.resume_from is None
    assert parsed.hyperparameters.quantization == "none"
    assert parsed.hyperparameters.warmup_steps is None
    assert parsed.checkpoint_dir.endswith("00000000-0000-4000-8000-000000000001")


@pytest.mark.parametrize("name", ["version", "job_id", "base_model", "dataset", "hyperparameters", "output"])
def test_missing_top_level_field_is_named(spec, name):
    del spec[name]
    with pytest.raises(SpecError, match=f"`{name}` is missing"):
        parse_spec(spec)


@pytest.mark.parametrize(
    "name", ["learning_rate", "batch_size", "epochs", "lora_rank", "target_modules", "seed", "use_validation"]
)
def test_missing_hyperparameter_is_named(spec, name):
    del spec["hyperparameters"][name]
    with pytest.raises(SpecError, match=f"`hyperparameters.{name}` is missing"):
        parse_spec(spec)


@pytest.mark.parametrize(
    "name, value",
    [
        ("batch_size", "4"),
        ("batch_size", 0),
        ("batch_size", True),  # a JSON bool is not a number
        ("epochs", 1.5),
        ("learning_rate", 0),
        ("learning_rate", "fast"),
        ("lora_dropout", 1.0),
        ("warmup_ratio", -0.1),
        ("warmup_steps", -1),
        ("scheduler", "exponential"),
        ("quantization", "8bit"),
        ("validation_split", 1.0),
        ("seed", -1),
        ("seed", 2**64),
        ("max_seq_length", 4),
        ("target_modules", []),
        ("target_modules", "q_proj"),
        ("use_validation", "yes"),
    ],
)
def test_bad_hyperparameter_is_named(spec, name, value):
    spec["hyperparameters"][name] = value
    with pytest.raises(SpecError, match=f"`hyperparameters.{name}`"):
        parse_spec(spec)


def test_whole_floats_are_accepted_as_integers(spec):
    spec["hyperparameters"]["batch_size"] = 8.0
    assert parse_spec(spec).hyperparameters.batch_size == 8


def test_all_linear_target_modules(spec):
    spec["hyperparameters"]["target_modules"] = "all-linear"
    assert parse_spec(spec).hyperparameters.target_modules == "all-linear"


def test_unsupported_version_is_rejected(spec):
    spec["version"] = 2
    with pytest.raises(SpecError, match="`version`"):
        parse_spec(spec)


@pytest.mark.parametrize(
    "dataset, message",
    [
        ({}, "exactly one of"),
        ({"path": "/a", "url": "https://b"}, "exactly one of"),
        ({"url": "ftp://host/file"}, "`dataset.url`"),
    ],
)
def test_dataset_source_must_be_one_path_or_url(spec, dataset, message):
    spec["dataset"] = dataset
    with pytest.raises(SpecError, match=message):
        parse_spec(spec)


def test_presigned_output_needs_the_adapter_files(spec):
    spec["output"] = {"presigned_put": {"adapter_config.json": "https://s3/a"}}
    with pytest.raises(SpecError, match="adapter_model.safetensors"):
        parse_spec(spec)
    spec["output"]["presigned_put"]["adapter_model.safetensors"] = "https://s3/b"
    assert parse_spec(spec).output.presigned_put == {
        "adapter_config.json": "https://s3/a",
        "adapter_model.safetensors": "https://s3/b",
    }


def test_output_must_be_one_target(spec):
    spec["output"] = {"dir": "/out", "presigned_put": {}}
    with pytest.raises(SpecError, match="`output`"):
        parse_spec(spec)


def test_unknown_fields_are_reported_not_fatal(spec):
    changed = copy.deepcopy(spec)
    changed["priority"] = "high"
    changed["hyperparameters"]["lora_r"] = 8
    assert parse_spec(changed).unknown_fields == ("priority", "hyperparameters.lora_r")


def test_load_spec_reports_invalid_json(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text("{not json")
    with pytest.raises(SpecError, match="not valid JSON"):
        load_spec(path)


def test_load_spec_round_trip(tmp_path, spec):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    assert load_spec(path) == parse_spec(spec)


def test_any_u64_seed_is_accepted_and_folded_for_the_libraries(spec):
    spec["hyperparameters"]["seed"] = 2**64 - 1
    hp = parse_spec(spec).hyperparameters
    assert hp.seed == 2**64 - 1 and hp.library_seed == 2**32 - 1


def test_load_spec_from_the_environment(monkeypatch, spec):
    monkeypatch.setenv("BRIGHTRUN_SPEC_TEST", json.dumps(spec))
    assert load_spec("env:BRIGHTRUN_SPEC_TEST") == parse_spec(spec)
    monkeypatch.delenv("BRIGHTRUN_SPEC_TEST")
    with pytest.raises(SpecError, match="BRIGHTRUN_SPEC_TEST is not set"):
        load_spec("env:BRIGHTRUN_SPEC_TEST")
    monkeypatch.setenv("BRIGHTRUN_SPEC_TEST", "{not json")
    with pytest.raises(SpecError, match=r"\$BRIGHTRUN_SPEC_TEST is not valid JSON"):
        load_spec("env:BRIGHTRUN_SPEC_TEST")


# ------------------------------------------------------------------------ efficiency (optional)


def test_efficiency_defaults_without_the_object_or_with_nulls(spec):
    from brightrun_trainer.spec import Efficiency

    expected = Efficiency(
        padding_free=True, packing=False, gradient_checkpointing="auto", chunked_loss=True,
        torch_compile=False, liger=False, gpu_count=1,
    )
    assert "efficiency" not in spec and parse_spec(spec).efficiency == expected
    spec["efficiency"] = None
    assert parse_spec(spec).efficiency == expected
    spec["efficiency"] = {}
    assert parse_spec(spec).efficiency == expected
    spec["efficiency"] = {name: None for name in ("padding_free", "packing", "gradient_checkpointing",
                                                  "chunked_loss", "torch_compile", "liger", "gpu_count")}
    assert parse_spec(spec).efficiency == expected


def test_efficiency_fields_parse(spec):
    spec["efficiency"] = {
        "padding_free": False, "packing": True, "gradient_checkpointing": "off", "chunked_loss": False,
        "torch_compile": True, "liger": True, "gpu_count": 4.0,
    }
    parsed = parse_spec(spec).efficiency
    assert (parsed.padding_free, parsed.packing, parsed.gradient_checkpointing) == (False, True, "off")
    assert (parsed.chunked_loss, parsed.torch_compile, parsed.liger, parsed.gpu_count) == (False, True, True, 4)
    assert parse_spec(spec).unknown_fields == ()


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("padding_free", "yes", "expected true or false"),
        ("packing", 1, "expected true or false"),
        ("gradient_checkpointing", True, "expected one of 'auto', 'on', 'off'"),
        ("gradient_checkpointing", "sometimes", "expected one of"),
        ("chunked_loss", 0, "expected true or false"),
        ("torch_compile", "false", "expected true or false"),
        ("liger", [], "expected true or false"),
        ("gpu_count", 0, "expected an integer ≥ 1"),
        ("gpu_count", 1.5, "expected an integer"),
        ("gpu_count", True, "expected an integer"),
    ],
)
def test_bad_efficiency_field_is_named(spec, name, value, message):
    spec["efficiency"] = {name: value}
    with pytest.raises(SpecError, match=f"spec field `efficiency.{name}`: {message}"):
        parse_spec(spec)


def test_efficiency_must_be_an_object_and_unknown_keys_are_reported(spec):
    spec["efficiency"] = "fast"
    with pytest.raises(SpecError, match="spec field `efficiency`: expected a JSON object"):
        parse_spec(spec)
    spec["efficiency"] = {"flash": True}
    assert parse_spec(spec).unknown_fields == ("efficiency.flash",)


def test_a_stopped_run_names_the_command_that_continues_it(spec):
    from brightrun_trainer.runner import stopped_line

    here = stopped_line(parse_spec(spec), 15, 24)
    assert f"`brightrun jobs retry {spec['job_id'][:8]}` continues from it" in here
    assert "step 24" in here and "/" not in here.split("`")[0], "no server path"
    spec["output"] = {"presigned_put": {"adapter_model.safetensors": "https://s3/a", "adapter_config.json": "https://s3/b"}}
    remote = stopped_line(parse_spec(spec), 15, 24)
    assert "stays on this worker" in remote and "starts over" in remote


def test_init_adapter_is_a_model_as_compare_lists_one(spec):
    assert parse_spec(spec).init_adapter is None
    spec["init_adapter"] = {"id": "m1", "label": "zubrowka v1", "base_model": spec["base_model"], "adapter": {"dir": "/models/m1"}}
    init = parse_spec(spec).init_adapter
    assert (init.id, init.label, init.adapter.dir) == ("m1", "zubrowka v1", "/models/m1")
    spec["init_adapter"] = {"id": "m1", "label": "x", "base_model": spec["base_model"], "adapter": {}}
    with pytest.raises(SpecError, match="init_adapter"):
        parse_spec(spec)
