"""Compare mode (``models eval``): the spec's ``compare`` object, the pure scoring of a
comparison, and in-process runs on the tiny model with adapters made here (a zero adapter,
which answers as its base does, a random one, and one trained by a short run whose
``evaluation.json`` the comparison must reproduce)."""

from __future__ import annotations

import hashlib
import json
import math
import signal
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import TINY_MODEL_ID, chat_records, make_spec, run_in_process, write_jsonl, write_spec

from brightrun_trainer.compare import (
    Item,
    base_indices,
    batches,
    best_counts,
    columns_of,
    dataset_items,
    empty_comparison,
    finish,
    given_items,
    mean_scores,
    model_line,
    score_answers,
)
from brightrun_trainer.data import load_dataset
from brightrun_trainer.errors import SpecError
from brightrun_trainer.evaluation import BUILTIN_PROBES
from brightrun_trainer.spec import AdapterSource, Compare, CompareModel, ComparePrompt, Evaluation, Probe, parse_spec

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
EVALUATION = {"samples": 3, "max_new_tokens": 4, "builtin_probes": True, "probes": [{"prompt": "Say hi.", "reference": "hi"}]}
MODEL_FIELDS = {"id", "label", "base_model", "adapter", "loss", "perplexity", "tokens_scored", "mean_score", "best", "seconds"}
PROMPT_FIELDS = {"prompt", "context_turns", "reference", "probe", "builtin", "answers"}
TOP_FIELDS = {"version", "similarity", "prompts_from", "decoding", "models", "prompts", "tokens_scored", "seconds", "error"}


def model(id: str, label: str | None = None, base: str = TINY_MODEL_ID, **adapter) -> dict:
    return {"id": id, "label": label or id, "base_model": base, "adapter": adapter or {"dir": "/adapters/" + id}}


def user(text: str, reference: str | None = None, *before: tuple[str, str]) -> dict:
    messages = [{"role": role, "content": content} for role, content in before] + [{"role": "user", "content": text}]
    return {"messages": messages, "reference": reference}


# ------------------------------------------------------------------------ spec


@pytest.fixture
def spec(tmp_path):
    return make_spec(tmp_path, {"path": "/data/train.jsonl"})


def test_compare_spec_parses(spec):
    spec["compare"] = {
        "models": [
            model("m1", "zubrowka-v2"),
            model("m2", "zubrowka-v1", urls={"adapter_config.json": "https://s3/a?sig=1", "adapter_model.safetensors": "https://s3/b"}),
        ],
        "prompts": [user("Capital of Zubrowka?", "Lutz.", ("system", "Be brief.")), user("Hi", "  ")],
    }
    spec["output"] = {"presigned_put": {"comparison.json": "https://s3/c?sig=2"}}  # no adapter files needed
    parsed = parse_spec(spec)
    assert parsed.compare == Compare(
        models=(
            CompareModel("m1", "zubrowka-v2", TINY_MODEL_ID, AdapterSource(dir="/adapters/m1")),
            CompareModel(
                "m2", "zubrowka-v1", TINY_MODEL_ID,
                AdapterSource(urls={"adapter_config.json": "https://s3/a?sig=1", "adapter_model.safetensors": "https://s3/b"}),
            ),
        ),
        prompts=(
            ComparePrompt(({"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of Zubrowka?"}), "Lutz."),
            ComparePrompt(({"role": "user", "content": "Hi"},), None),  # a blank reference is none
        ),
    )
    assert parsed.unknown_fields == ()


def test_compare_absent_or_null_is_a_training_job_and_null_prompts_ask_the_dataset(spec):
    assert parse_spec(spec).compare is None
    spec["compare"] = None
    assert parse_spec(spec).compare is None
    spec["compare"] = {"models": [model("m1")], "prompts": None}
    assert parse_spec(spec).compare.prompts is None
    spec["compare"] = {"models": [model("m1")]}
    assert parse_spec(spec).compare.prompts is None


def test_only_a_comparison_of_given_prompts_may_leave_the_dataset_out(spec):
    del spec["dataset"]
    with pytest.raises(SpecError, match="`dataset` is missing"):
        parse_spec(spec)
    spec["compare"] = {"models": [model("m1")], "prompts": None}
    with pytest.raises(SpecError, match="`dataset` is missing"):
        parse_spec(spec)
    spec["compare"]["prompts"] = [user("Hi")]
    spec["output"] = {"dir": "/out"}
    parsed = parse_spec(spec)
    assert (parsed.dataset.path, parsed.dataset.url) == (None, None)


def test_compare_unknown_keys_are_reported(spec):
    spec["compare"] = {
        "models": [{**model("m1"), "colour": "red"}],
        "prompts": [{**user("Hi"), "weight": 1}],
        "temperature": 0.7,
    }
    spec["compare"]["prompts"][0]["messages"][0]["name"] = "bob"
    assert parse_spec(spec).unknown_fields == (
        "compare.temperature", "compare.models[0].colour", "compare.prompts[0].weight", "compare.prompts[0].messages[0].name",
    )


URLS = {"adapter_config.json": "https://s3/a", "adapter_model.safetensors": "https://s3/b"}


@pytest.mark.parametrize(
    "compare, field, expectation",
    [
        ([], "compare", "expected a JSON object"),
        ({}, "compare.models", "is missing"),
        ({"models": {}}, "compare.models", "expected a list"),
        ({"models": []}, "compare.models", "expected at least 1 elements, got 0"),
        ({"models": [model(f"m{i}") for i in range(17)]}, "compare.models", "at most 16 elements, got 17"),
        ({"models": ["m1"]}, "compare.models[0]", "expected a JSON object"),
        ({"models": [{"label": "x", "base_model": "b", "adapter": {"dir": "/a"}}]}, "compare.models[0].id", "is missing"),
        ({"models": [model("m1"), model("m1")]}, "compare.models[1].id", "'m1' is given twice"),
        ({"models": [{**model("m1"), "label": ""}]}, "compare.models[0].label", "non-empty string"),
        ({"models": [{**model("m1"), "base_model": 3}]}, "compare.models[0].base_model", "non-empty string"),
        ({"models": [{**model("m1"), "adapter": "/a"}]}, "compare.models[0].adapter", "expected a JSON object"),
        ({"models": [model("m1", dir="/a", urls=URLS)]}, "compare.models[0].adapter", 'exactly one of "dir" or "urls"'),
        ({"models": [{**model("m1"), "adapter": {}}]}, "compare.models[0].adapter", 'exactly one of "dir" or "urls"'),
        ({"models": [model("m1", urls={"adapter_config.json": "https://s3/a"})]}, "compare.models[0].adapter.urls",
         "needs a URL for 'adapter_model.safetensors'"),
        ({"models": [model("m1", urls={**URLS, "tokenizer.json": "ftp://x"})]},
         "compare.models[0].adapter.urls.tokenizer.json", "http(s) URL"),
        ({"models": [model("m1", urls={**URLS, "../evil": "https://s3/x"})]},
         "compare.models[0].adapter.urls.../evil", "a file name without a folder"),
        ({"models": [model("m1")], "prompts": "hi"}, "compare.prompts", "expected a list"),
        ({"models": [model("m1")], "prompts": []}, "compare.prompts", "at least 1 elements, got 0"),
        ({"models": [model("m1")], "prompts": [{"reference": "x"}]}, "compare.prompts[0].messages", "is missing"),
        ({"models": [model("m1")], "prompts": [{"messages": []}]}, "compare.prompts[0].messages", "at least 1"),
        ({"models": [model("m1")], "prompts": [{"messages": [{"role": "tool", "content": "x"}]}]},
         "compare.prompts[0].messages[0].role", "expected one of 'system', 'user', 'assistant'"),
        ({"models": [model("m1")], "prompts": [{"messages": [{"role": "user", "content": 4}]}]},
         "compare.prompts[0].messages[0].content", "expected a string"),
        ({"models": [model("m1")], "prompts": [user("Hi"), {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}]},
         "compare.prompts[1].messages", "last message to be from the user"),
        ({"models": [model("m1")], "prompts": [user("Hi", 4)]}, "compare.prompts[0].reference", "a string or null"),
    ],
)
def test_a_bad_compare_field_is_named(spec, compare, field, expectation):
    spec["compare"] = compare
    with pytest.raises(SpecError) as raised:
        parse_spec(spec)
    message = str(raised.value)
    assert message.startswith(f"spec field `{field}`") and expectation in message, message


def test_a_presigned_comparison_needs_a_url_for_comparison_json(spec):
    spec["compare"] = {"models": [model("m1")]}
    spec["output"] = {"presigned_put": dict(URLS)}
    with pytest.raises(SpecError, match="`output.presigned_put`: needs a URL for 'comparison.json'"):
        parse_spec(spec)


# ------------------------------------------------------------------------ pure parts


def _models(*pairs: tuple[str, str]) -> tuple[CompareModel, ...]:
    return tuple(CompareModel(id, id.upper(), base, AdapterSource(dir="/" + id)) for id, base in pairs)


def test_models_are_grouped_by_base_each_after_its_base_column():
    groups = columns_of(_models(("a", "b1"), ("b", "b2"), ("c", "b1")))
    assert [[(c.id, c.adapter) for c in group] for group in groups] == [
        [("base:b1", None), ("a", "adapter_0"), ("c", "adapter_2")],
        [("base:b2", None), ("b", "adapter_1")],
    ]
    assert groups[0][0].label == "b1 (base)" and groups[0][1].label == "A"
    columns = [c for group in groups for c in group]
    assert base_indices(columns) == [None, 0, 0, None, 3]


def _rows(reference_scores: list[tuple[str | None, list[float | None]]]) -> list[dict]:
    return [
        {"reference": ref, "probe": False, "answers": [{"text": "x", "score": s} for s in scores]}
        for ref, scores in reference_scores
    ]


def test_mean_score_and_best_arithmetic():
    rows = _rows([
        ("r", [0.2, 0.9, 0.5]),    # model 1 best
        ("r", [0.6, 0.6, 0.1]),    # a tie for first: nobody
        ("r", [0.7, 0.3, None]),   # model 2 failed to answer: model 0 best of the others
        (None, [None, None, None]),  # no reference: counts for nothing
        ("r", [0.0, 0.0, 0.8]),
    ])
    assert mean_scores(rows, 3) == pytest.approx([(0.2 + 0.6 + 0.7 + 0.0) / 4, (0.9 + 0.6 + 0.3 + 0.0) / 4, (0.5 + 0.1 + 0.8) / 3])
    assert best_counts(rows, 3) == [1, 1, 1]
    assert mean_scores(_rows([(None, [None, None])]), 2) == [None, None]
    assert best_counts(_rows([(None, [None, None])]), 2) == [0, 0]


def test_scores_and_changed_probes():
    rows = [
        {"reference": "Paris", "probe": True, "answers": [{"text": "Paris."}, {"text": "It is Lutz."}, {"text": " Paris. "}]},
        {"reference": None, "probe": True, "answers": [{"text": "No."}, {"text": "No."}, {"text": None}]},
        {"reference": "4", "probe": False, "answers": [{"text": "4"}, {"text": "5"}, {"text": "four"}]},
    ]
    score_answers(rows, [None, 0, 0])
    assert [a["score"] for a in rows[0]["answers"]] == [1.0, 0.0, 1.0]
    assert [a.get("changed") for a in rows[0]["answers"]] == [None, True, False]  # whitespace only: unchanged
    assert [a["score"] for a in rows[1]["answers"]] == [None, None, None]
    assert [a.get("changed") for a in rows[1]["answers"]] == [None, False, None]  # no answer: unknown
    assert "changed" not in rows[2]["answers"][1]  # only probes say what changed


def test_finish_fills_the_models_and_the_log_line():
    columns = [c for group in columns_of(_models(("a", "b1"))) for c in group]
    items = [Item([{"role": "user", "content": "q"}], (), "q", 0, "four two"), Item([], (), "p", 0, None, probe=True)]
    result = empty_comparison("prompts", 8, columns, items)
    assert set(result) == TOP_FIELDS and all(set(m) == MODEL_FIELDS for m in result["models"])
    assert all(set(p) == PROMPT_FIELDS for p in result["prompts"])
    for answer, text in zip(result["prompts"][0]["answers"], ["four", "four two"]):
        answer["text"] = text
    result["models"][1].update(loss=0.25, tokens_scored=10, seconds=1.04)
    finish(result, columns)
    base, adapter = result["models"]
    assert (base["mean_score"], adapter["mean_score"]) == (pytest.approx(2 / 3), 1.0)
    assert (base["best"], adapter["best"]) == (0, 1) and result["tokens_scored"] == 10
    assert model_line(adapter, 1) == "A: mean ROUGE-L 1.00, best on 1 of 1, held-out loss 0.25, 1.0 s"
    assert model_line({**base, "mean_score": None}, 0) == "b1 (base): no answer scored (no reference)"


def test_given_prompts_keep_their_context():
    items = given_items((
        ComparePrompt(({"role": "system", "content": "S"}, {"role": "user", "content": "U1"},
                       {"role": "assistant", "content": "A1"}, {"role": "user", "content": "U2"}), "R"),
    ))
    assert (items[0].prompt, items[0].context_turns, items[0].reference, items[0].probe) == ("U2", 3, "R", False)
    assert [m["role"] for m in items[0].chat] == ["system", "user", "assistant", "user"]


def test_batches_never_mix_samples_and_probes():
    kinds = [False] * 5 + [True] * 3
    items = [Item([], (), "", 0, None, probe=probe) for probe in kinds]
    assert batches(items, 4) == [(0, 4), (4, 5), (5, 8)]
    assert batches(items, 16) == [(0, 5), (5, 8)] and batches([], 4) == []


def test_held_out_prompts_follow_the_training_split(tmp_path):
    """The split rule computed here by hand: record i is held out when (i × 2654435761 + 42)
    mod 10000 < 1000; the prompts are the first held-out records, then the probes."""
    path = write_jsonl(tmp_path / "train.jsonl", chat_records(40))
    dataset = load_dataset(path, seed=42, validation_split=0.1, use_validation=True)
    held_out = [i for i in range(40) if (i * 2654435761 + 42) % 10000 < 1000]
    settings = Evaluation(samples=3, builtin_probes=True, probes=(Probe("Say hi.", "hi"),))
    prompts_from, items = dataset_items(dataset, settings)
    assert prompts_from == "validation"
    assert [item.prompt for item in items[:3]] == [f"What is {i} plus {i}?" for i in held_out[:3]]
    assert [item.reference for item in items[:3]] == [str(2 * i) for i in held_out[:3]]
    assert [item.context_turns for item in items[:3]] == [1, 1, 1]
    assert [(item.prompt, item.probe, item.builtin) for item in items[3:]] == (
        [(p.prompt, True, True) for p in BUILTIN_PROBES] + [("Say hi.", True, False)]
    )
    small = load_dataset(write_jsonl(tmp_path / "small.jsonl", chat_records(3)), seed=3000, validation_split=0.1,
                         use_validation=True)
    prompts_from, items = dataset_items(small, Evaluation(samples=8, builtin_probes=False))
    assert prompts_from == "training" and [item.reference for item in items] == ["0", "2", "4"]


# ------------------------------------------------------------------------ runs on the tiny model


@pytest.fixture(scope="module")
def adapters(tmp_path_factory, tiny_model_dir):
    """``zero``: LoRA B = 0, so it answers exactly as its base; ``random``: both matrices random."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("adapters")
    folders = {}
    for name, init in (("zero", True), ("random", False)):
        base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=init, task_type="CAUSAL_LM")
        get_peft_model(base, config).save_pretrained(root / name)
        folders[name] = root / name
    return folders


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A short training run with an evaluating stage: its adapter and its evaluation.json."""
    root = tmp_path_factory.mktemp("trained")
    dataset = write_jsonl(root / "train.jsonl", chat_records(40))
    spec = make_spec(root, {"path": str(dataset)}, max_steps=2, evaluation=EVALUATION)
    run = run_in_process(write_spec(root / "spec.json", spec))
    assert run.returncode == 0, run.describe()
    folder = Path(spec["output"]["dir"])
    return dataset, folder, json.loads((folder / "evaluation.json").read_text())


def compare_spec(tmp_path: Path, dataset: dict, models: list[dict], prompts=None, **overrides) -> Path:
    spec = make_spec(tmp_path, dataset, evaluation=EVALUATION, compare={"models": models, "prompts": prompts}, **overrides)
    spec["output"] = overrides.get("output", {"dir": str(tmp_path / "eval")})
    return write_spec(tmp_path / "compare.json", spec)


def comparison_of(run, folder: Path) -> dict:
    assert run.returncode == 0, run.describe()
    assert run.stages == ["initializing", "evaluating", "saving", "completed"]
    assert run.events[-1]["type"] == "done" and not run.of_type("error")
    (artifact,) = run.of_type("artifact")
    (entry,) = artifact["files"]
    path = folder / "comparison.json"
    assert entry["path"] == "comparison.json" and entry["size"] == path.stat().st_size
    assert entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert sorted(p.name for p in folder.iterdir()) == ["comparison.json"]  # the only output
    return json.loads(path.read_text())


def test_given_prompts_are_answered_without_reading_the_dataset(tmp_path, adapters):
    prompts = [user("What is 2 plus 2?", "4"), user("Say hi.", None, ("system", "Be brief.")), user("Name a colour.", "red")]
    models = [model("z-id", "zero", dir=str(adapters["zero"])), model("r-id", "random", dir=str(adapters["random"]))]
    run = run_in_process(compare_spec(tmp_path, {"path": str(tmp_path / "missing.jsonl")}, models, prompts))
    result = comparison_of(run, tmp_path / "eval")
    assert set(result) == TOP_FIELDS and result["error"] is None
    assert (result["version"], result["similarity"], result["prompts_from"]) == (1, "rouge_l_f1", "prompts")
    assert result["decoding"] == {"do_sample": False, "max_new_tokens": 4}
    assert [(m["id"], m["label"], m["adapter"]) for m in result["models"]] == [
        (f"base:{TINY_MODEL_ID}", f"{TINY_MODEL_ID} (base)", False), ("z-id", "zero", True), ("r-id", "random", True),
    ]
    for entry in result["models"]:
        assert set(entry) == MODEL_FIELDS and entry["base_model"] == TINY_MODEL_ID
        assert entry["loss"] is entry["perplexity"] is entry["tokens_scored"] is None  # no losses for given prompts
        assert entry["seconds"] > 0 and 0.0 <= entry["mean_score"] <= 1.0
    assert result["tokens_scored"] is None and result["seconds"] > 0
    rows = result["prompts"]
    assert [(r["prompt"], r["context_turns"], r["reference"], r["probe"]) for r in rows] == [
        ("What is 2 plus 2?", 0, "4", False), ("Say hi.", 1, None, False), ("Name a colour.", 0, "red", False),
    ]
    for row in rows:
        assert len(row["answers"]) == 3 and all(isinstance(a["text"], str) for a in row["answers"])
        assert all("changed" not in a for a in row["answers"])
    # Alignment: the zero adapter answers as its base, column for column.
    assert [r["answers"][1]["text"] for r in rows] == [r["answers"][0]["text"] for r in rows]
    assert [a["score"] for a in rows[1]["answers"]] == [None, None, None]
    logs = [e["message"] for e in run.of_type("log")]
    assert not any(m.startswith("dataset:") for m in logs)
    assert any(m.startswith("zero: mean ROUGE-L ") and ", best on " in m and m.endswith(" s") for m in logs), logs
    stage = next(e for e in run.of_type("stage") if e["stage"] == "evaluating")
    assert stage["message"] == "answering 3 prompts with 3 models"


def test_held_out_prompts_and_losses_reproduce_the_evaluating_stage(tmp_path, adapters, trained):
    """The trained adapter (from its folder) and the random one (from presigned URLs), the
    comparison uploaded by PUT: held-out samples, probes and losses are exactly what the
    training run's evaluation.json holds for the base and the trained adapter."""
    from test_end_to_end import _ObjectStore

    dataset, trained_dir, evaluation = trained
    _ObjectStore.objects = {f"/adapters/r/{n}": (adapters["random"] / n).read_bytes() for n in ADAPTER_FILES}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ObjectStore)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = f"http://127.0.0.1:{server.server_port}"
    try:
        models = [
            model("t-id", "trained", dir=str(trained_dir)),
            model("r-id", "random", urls={n: f"{host}/adapters/r/{n}?X-Amz-Signature=secret" for n in ADAPTER_FILES}),
        ]
        output = {"presigned_put": {"comparison.json": f"{host}/out/comparison.json?X-Amz-Signature=secret"}}
        run = run_in_process(compare_spec(tmp_path, {"path": str(dataset)}, models, None, output=output))
    finally:
        server.shutdown()
    assert run.returncode == 0, run.describe()
    assert run.stages == ["initializing", "evaluating", "saving", "completed"]
    (artifact,) = run.of_type("artifact")
    (entry,) = artifact["files"]
    body = _ObjectStore.objects["/out/comparison.json"]
    assert entry["path"] == "comparison.json" and entry["size"] == len(body)
    assert entry["sha256"] == hashlib.sha256(body).hexdigest()
    assert all("secret" not in json.dumps(event) for event in run.events)
    result = json.loads(body)

    assert result["prompts_from"] == "validation" and result["error"] is None
    base, trained_model, random_model = result["models"]
    assert (base["id"], trained_model["id"], random_model["id"]) == (f"base:{TINY_MODEL_ID}", "t-id", "r-id")
    assert base["loss"] == pytest.approx(evaluation["base_loss"], rel=1e-5)
    assert trained_model["loss"] == pytest.approx(evaluation["adapter_loss"], rel=1e-5)
    assert random_model["loss"] != pytest.approx(base["loss"])
    for entry in result["models"]:
        assert entry["perplexity"] == pytest.approx(math.exp(entry["loss"]))
        assert entry["tokens_scored"] == evaluation["tokens_scored"] > 0
    assert result["tokens_scored"] == evaluation["tokens_scored"]

    rows = result["prompts"]
    samples, probes = rows[:3], rows[3:]
    assert len(rows) == len(evaluation["samples"]) + len(evaluation["probes"]) == 3 + len(BUILTIN_PROBES) + 1
    for row, sample in zip(samples, evaluation["samples"]):
        assert (row["prompt"], row["context_turns"], row["reference"], row["probe"]) == (
            sample["prompt"], sample["context_turns"], sample["reference"], False,
        )
        assert [a["text"] for a in row["answers"][:2]] == [sample["base"], sample["adapter"]]
        assert [a["score"] for a in row["answers"][:2]] == pytest.approx([sample["base_score"], sample["adapter_score"]])
    for row, probe in zip(probes, evaluation["probes"]):
        assert (row["prompt"], row["reference"], row["builtin"], row["probe"]) == (
            probe["prompt"], probe["reference"], probe["builtin"], True,
        )
        assert [a["text"] for a in row["answers"][:2]] == [probe["base"], probe["adapter"]]
        assert "changed" not in row["answers"][0]
        assert row["answers"][1]["changed"] == probe["changed"]
        assert isinstance(row["answers"][2]["changed"], bool)
    scored = [r for r in rows if r["reference"] is not None]
    assert sum(m["best"] for m in result["models"]) <= len(scored)
    logs = [e["message"] for e in run.of_type("log")]
    assert any(m.startswith("random: mean ROUGE-L") and "held-out loss" in m for m in logs), logs
    stage = next(e for e in run.of_type("stage") if e["stage"] == "evaluating")
    assert stage["message"].startswith(f"answering {len(rows)} prompts with 3 models; held-out loss on ")


def test_each_base_is_loaded_once_and_answers_first(tmp_path, adapters, tiny_model_dir):
    """Two bases (the tiny model by id, and the same model as a folder): each with its adapters."""
    folder_base = str(tiny_model_dir)
    models = [
        model("a", "zero-by-id", dir=str(adapters["zero"])),
        model("b", "zero-by-folder", base=folder_base, dir=str(adapters["zero"])),
        model("c", "random-by-id", dir=str(adapters["random"])),
    ]
    run = run_in_process(compare_spec(tmp_path, {"path": "/missing.jsonl"}, models, [user("Hi", "hello")]))
    result = comparison_of(run, tmp_path / "eval")
    assert [m["id"] for m in result["models"]] == [f"base:{TINY_MODEL_ID}", "a", "c", f"base:{folder_base}", "b"]
    loads = [e["message"] for e in run.of_type("log") if e["message"].startswith("loading base model")]
    assert loads == [f"loading base model {TINY_MODEL_ID} and 2 adapters", f"loading base model {folder_base} and 1 adapter"]
    (row,) = result["prompts"]
    texts = [a["text"] for a in row["answers"]]
    assert texts[0] == texts[1] == texts[3] == texts[4]  # zero adapters and the same base weights


def test_an_adapter_url_that_404s_fails_naming_the_model(tmp_path, adapters):
    from test_end_to_end import _ObjectStore

    _ObjectStore.objects = {"/adapters/r/adapter_config.json": (adapters["random"] / "adapter_config.json").read_bytes()}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ObjectStore)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = f"http://127.0.0.1:{server.server_port}"
    try:
        models = [
            model("z-id", "zero", dir=str(adapters["zero"])),
            model("r-id", "random", urls={n: f"{host}/adapters/r/{n}?X-Amz-Signature=secret" for n in ADAPTER_FILES}),
        ]
        run = run_in_process(compare_spec(tmp_path, {"path": "/missing.jsonl"}, models, [user("Hi")]))
    finally:
        server.shutdown()
    assert run.returncode == 1, run.describe()
    error = run.events[-1]
    assert error["type"] == "error" and error["kind"] == "training"
    assert error["reason"].startswith("model random (id r-id): download of the adapter file adapter_model.safetensors")
    assert "HTTP 404" in error["reason"] and "secret" not in json.dumps(run.events)
    assert "evaluating" not in run.stages and not run.of_type("artifact")
    assert not (tmp_path / "eval").exists()


@pytest.mark.parametrize("problem", ["missing", "corrupt"])
def test_a_missing_or_corrupt_adapter_folder_fails_naming_the_model(tmp_path, adapters, problem):
    folder = tmp_path / "broken"
    if problem == "corrupt":
        folder.mkdir()
        (folder / "adapter_config.json").write_bytes((adapters["zero"] / "adapter_config.json").read_bytes())
        (folder / "adapter_model.safetensors").write_bytes(b"not safetensors")
    models = [model("b-id", "broken", dir=str(folder))]
    run = run_in_process(compare_spec(tmp_path, {"path": "/missing.jsonl"}, models, [user("Hi")]))
    assert run.returncode == 1, run.describe()
    error = run.events[-1]
    assert error["type"] == "error" and error["kind"] == "training", error
    expected = "does not exist" if problem == "missing" else "could not load its adapter"
    assert error["reason"].startswith("model broken (id b-id): ") and expected in error["reason"], error
    assert not run.of_type("artifact")


def test_a_failed_part_is_recorded_and_the_rest_written(tmp_path, adapters, monkeypatch):
    from brightrun_trainer import evaluation as module

    generate = module._Generator._generate

    def failing(self, prompts):
        if self.model.active_adapter == "adapter_1" and not _disabled(self.model):  # the random adapter's turn
            raise RuntimeError("CUDA out of memory (simulated)")
        return generate(self, prompts)

    monkeypatch.setattr(module._Generator, "_generate", failing)
    models = [model("z-id", "zero", dir=str(adapters["zero"])), model("r-id", "random", dir=str(adapters["random"]))]
    run = run_in_process(compare_spec(tmp_path, {"path": "/missing.jsonl"}, models, [user("Hi", "hello"), user("Yo", "yo")]))
    result = comparison_of(run, tmp_path / "eval")
    assert result["error"] == "answers of random: RuntimeError: CUDA out of memory (simulated)"
    assert all(row["answers"][2] == {"text": None, "score": None} for row in result["prompts"])
    assert all(isinstance(row["answers"][1]["text"], str) for row in result["prompts"])
    assert result["models"][2]["mean_score"] is None and result["models"][2]["best"] == 0
    warnings = [e["message"] for e in run.of_type("log") if e["level"] == "warning"]
    assert any(m.startswith("comparison failed (answers of random: ") and "comparison.json" in m for m in warnings)


def _disabled(model) -> bool:
    """Whether the PEFT model's adapters are disabled (inside ``disable_adapter()``)."""
    from peft.tuners.lora import LoraLayer

    return any(m.disable_adapters for m in model.modules() if isinstance(m, LoraLayer))


def test_a_stop_during_the_comparison_writes_nothing_and_exits_143(tmp_path, adapters, monkeypatch):
    from brightrun_trainer import evaluation as module
    from brightrun_trainer.signals import StopSignal

    stop = StopSignal()
    generate = module._Generator._generate

    def stop_then_generate(self, prompts):
        stop.request(signal.SIGTERM)
        return generate(self, prompts)

    monkeypatch.setattr(module._Generator, "_generate", stop_then_generate)
    models = [model("z-id", "zero", dir=str(adapters["zero"]))]
    run = run_in_process(compare_spec(tmp_path, {"path": "/missing.jsonl"}, models, [user("Hi")]), stop=stop)
    assert run.returncode == 143, run.describe()
    assert run.stages == ["initializing", "evaluating"]
    last = run.events[-1]
    assert last["type"] == "log" and last["message"].startswith("stopped by signal 15 during the comparison")
    assert not run.of_type("artifact") and not run.of_type("error") and not (tmp_path / "eval").exists()

