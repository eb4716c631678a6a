"""Export mode's spec (``models export``): the ``export`` object, its defaults, the errors that
name its fields, and how it changes the rest of the spec (no dataset, ``export.json`` presigned)."""

from __future__ import annotations

import pytest
from conftest import TINY_MODEL_ID, make_spec

from brightrun_trainer.errors import SpecError
from brightrun_trainer.spec import (
    GGUF_QUANTIZATIONS,
    AdapterSource,
    CompareModel,
    Export,
    Verify,
    parse_spec,
)

MODEL = {"id": "m1", "label": "zubrowka-v2", "base_model": TINY_MODEL_ID, "adapter": {"dir": "/adapters/m1"}}
URLS = {"adapter_config.json": "https://s3/a", "adapter_model.safetensors": "https://s3/b"}


def export(**fields) -> dict:
    """A complete ``export`` object (the protocol's example), with ``fields`` replaced."""
    document = {
        "model": dict(MODEL), "format": "gguf", "dtype": "f16", "quantize": None, "ollama": True,
        "name": "zubrowka-v2", "system_prompt": None, "max_shard_bytes": 4_000_000_000, "max_shards": 2,
        "verify": {"prompts": None, "tokens": 8},
    }  # fmt: skip
    document.update(fields)
    return document


@pytest.fixture
def spec(tmp_path):
    return make_spec(tmp_path, {"path": "/data/train.jsonl"})


def test_the_protocols_example_parses(spec):
    spec["export"] = export()
    parsed = parse_spec(spec)
    assert parsed.export == Export(
        model=CompareModel("m1", "zubrowka-v2", TINY_MODEL_ID, AdapterSource(dir="/adapters/m1")),
        format="gguf", dtype="f16", name="zubrowka-v2", max_shard_bytes=4_000_000_000, max_shards=2,
        quantize=None, ollama=True, system_prompt=None, verify=Verify(prompts=None, tokens=8),
    )  # fmt: skip
    assert parsed.compare is None and parsed.unknown_fields == ()


def test_optional_fields_take_their_defaults_and_export_absent_or_null_is_a_training_job(spec):
    assert parse_spec(spec).export is None
    spec["export"] = None
    assert parse_spec(spec).export is None
    spec["export"] = {key: value for key, value in export(format="merged").items() if key not in ("quantize", "ollama", "system_prompt", "verify")}
    parsed = parse_spec(spec).export
    assert (parsed.quantize, parsed.ollama, parsed.system_prompt, parsed.verify) == (None, False, None, Verify())
    assert parsed.verify.tokens == 8
    spec["export"]["verify"] = {"tokens": 3}
    assert parse_spec(spec).export.verify == Verify(prompts=None, tokens=3)


def test_every_quantization_and_given_prompts_parse(spec):
    for name in GGUF_QUANTIZATIONS:
        spec["export"] = export(quantize=name)
        assert parse_spec(spec).export.quantize == name
    conversation = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    spec["export"] = export(verify={"prompts": [conversation, [{"role": "user", "content": "Yo"}]], "tokens": 64})
    verify = parse_spec(spec).export.verify
    assert verify.tokens == 64
    assert verify.prompts == (tuple(conversation), ({"role": "user", "content": "Yo"},))


def test_an_export_reads_no_dataset_and_its_presigned_output_names_export_json(spec):
    del spec["dataset"]
    spec["export"] = export()
    spec["output"] = {"presigned_put": {"export.json": "https://s3/e?sig=1", "model.gguf": "https://s3/m"}}
    parsed = parse_spec(spec)
    assert (parsed.dataset.path, parsed.dataset.url) == (None, None)
    assert parsed.output.presigned_put["export.json"] == "https://s3/e?sig=1"
    spec["output"] = {"presigned_put": dict(URLS)}  # the adapter's files are not what an export writes
    with pytest.raises(SpecError, match="`output.presigned_put`: needs a URL for 'export.json'"):
        parse_spec(spec)


def test_export_unknown_keys_are_reported(spec):
    spec["export"] = export(colour="red", verify={"tokens": 4, "temperature": 0.1})
    spec["export"]["model"]["size"] = 3
    spec["export"]["verify"]["prompts"] = [[{"role": "user", "content": "Hi", "name": "bob"}]]
    assert parse_spec(spec).unknown_fields == (
        "export.colour", "export.model.size", "export.verify.temperature", "export.verify.prompts[0][0].name",
    )  # fmt: skip


def test_compare_and_export_together_are_an_error(spec):
    spec["export"] = export()
    spec["compare"] = {"models": [dict(MODEL)], "prompts": None}
    with pytest.raises(SpecError, match="spec fields `compare` and `export`: a job compares or exports, not both"):
        parse_spec(spec)


@pytest.mark.parametrize(
    "fields, field, expectation",
    [
        ({"quantize": "q4_k_xl"}, "export.quantize", "expected one of 'q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q2_k', 'q3_k_s', 'q3_k_m', 'q3_k_l', 'q4_k_s', 'q4_k_m', 'q5_k_s', 'q5_k_m', 'q6_k', got \"q4_k_xl\""),
        ({"format": "merged", "quantize": "q8_0"}, "export.quantize", 'only a "gguf" export is quantized'),
        ({"format": "gguf-lora", "ollama": True}, "export.ollama", 'only a "gguf" export has a Modelfile'),
        ({"format": "onnx"}, "export.format", "expected one of 'merged', 'gguf', 'gguf-lora'"),
        ({"dtype": "fp16"}, "export.dtype", "expected one of 'f16', 'bf16', 'f32'"),
        ({"ollama": "yes"}, "export.ollama", "expected true or false"),
        ({"name": "my model"}, "export.name", "at most 64 of the characters"),
        ({"name": "x" * 65}, "export.name", "at most 64 of the characters"),
        ({"name": ""}, "export.name", "non-empty string"),
        ({"system_prompt": 3}, "export.system_prompt", "expected a string or null"),
        ({"system_prompt": 'say """hi"""'}, "export.system_prompt", 'expected no """'),
        ({"max_shard_bytes": 1_048_575}, "export.max_shard_bytes", "expected an integer ≥ 1048576"),
        ({"max_shards": 0}, "export.max_shards", "expected an integer ≥ 1"),
        ({"max_shards": 65}, "export.max_shards", "expected an integer ≤ 64"),
        ({"model": {**MODEL, "adapter": {"dir": "/a", "urls": URLS}}}, "export.model.adapter", 'exactly one of "dir" or "urls"'),
        ({"model": {**MODEL, "adapter": {"urls": {"adapter_config.json": "https://s3/a"}}}}, "export.model.adapter.urls", "needs a URL for 'adapter_model.safetensors'"),
        ({"verify": {"tokens": 65}}, "export.verify.tokens", "expected an integer ≤ 64"),
        ({"verify": {"tokens": 0}}, "export.verify.tokens", "expected an integer ≥ 1"),
        ({"verify": {"prompts": []}}, "export.verify.prompts", "expected 1 to 16 conversations, got 0"),
        ({"verify": {"prompts": [[{"role": "user", "content": "a"}]] * 17}}, "export.verify.prompts", "expected 1 to 16 conversations, got 17"),
        ({"verify": {"prompts": [[]]}}, "export.verify.prompts[0]", "expected a non-empty list of {role, content} objects"),
        ({"verify": {"prompts": [[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]]}}, "export.verify.prompts[0]", 'the last message to be from the user, got "assistant"'),
        ({"verify": {"prompts": [[{"role": "tool", "content": "a"}]]}}, "export.verify.prompts[0][0].role", "expected one of 'system', 'user', 'assistant'"),
    ],
)  # fmt: skip
def test_a_bad_export_field_is_named(spec, fields, field, expectation):
    spec["export"] = export(**fields)
    with pytest.raises(SpecError) as error:
        parse_spec(spec)
    assert str(error.value).startswith(f"spec field `{field}`"), str(error.value)
    assert expectation in str(error.value)


@pytest.mark.parametrize("missing", ["model", "format", "dtype", "name", "max_shard_bytes", "max_shards"])
def test_required_export_fields_are_named_when_missing(spec, missing):
    spec["export"] = export()
    del spec["export"][missing]
    with pytest.raises(SpecError, match=f"spec field `export.{missing}` is missing"):
        parse_spec(spec)
