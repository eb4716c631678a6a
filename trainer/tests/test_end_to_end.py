"""The trainer as the engine runs it: a child process, events on stdout, an adapter on disk.

One reference run (40 examples, 3 epochs, validation split) is shared by several tests; the
stop/resume test compares its resumed losses with the reference, step for step.
"""

from __future__ import annotations

import hashlib
import json
import math
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import (
    TINY_MODEL_ID,
    chat_records,
    make_spec,
    run_in_process,
    run_trainer,
    trainer_env,
    write_jsonl,
    write_spec,
)

EXAMPLES = 40
# 40 records, split 0.1 with seed 42 → 36 training examples → 9 steps of 4 per epoch.
STEPS_PER_EPOCH = 9
EPOCHS = 3
TOTAL_STEPS = STEPS_PER_EPOCH * EPOCHS
EXPECTED_STAGES = ["initializing", "training", "validating", "saving", "completed"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="module")
def dataset(workdir) -> Path:
    return write_jsonl(workdir / "train.jsonl", chat_records(EXAMPLES))


@pytest.fixture(scope="module")
def reference(workdir, dataset):
    root = workdir / "reference"
    root.mkdir()
    spec = make_spec(root, {"path": str(dataset)})
    result = run_trainer(write_spec(root / "spec.json", spec))
    assert result.returncode == 0, result.describe()
    return root, spec, result


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------------ successful run


def test_events_are_well_formed(reference):
    _, _, run = reference
    assert [e["seq"] for e in run.events] == list(range(len(run.events)))
    assert all(isinstance(e["ts"], float) for e in run.events)
    assert all(a["ts"] <= b["ts"] for a, b in zip(run.events, run.events[1:]))
    assert run.stages == EXPECTED_STAGES
    assert run.events[-1]["type"] == "done"
    assert not run.of_type("error")


def test_metrics_cover_every_step_once(reference):
    _, _, run = reference
    metrics = run.of_type("metric")
    assert run.metric_steps == list(range(1, TOTAL_STEPS + 1))
    for metric in metrics:
        assert metric["total_steps"] == TOTAL_STEPS
        assert math.isfinite(metric["training_loss"])
        assert metric["learning_rate"] >= 0 and metric["gradient_norm"] >= 0
        assert metric["throughput"] > 0
        assert metric["gpu_utilization"] is None and metric["peak_memory_gb"] is None  # CPU run
    evaluated = {m["step"]: m["validation_loss"] for m in metrics if m["validation_loss"] is not None}
    assert sorted(evaluated) == [STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH, TOTAL_STEPS]
    assert metrics[-1]["epoch"] == pytest.approx(EPOCHS)
    # The final evaluation runs in the validating stage and lands on the last step's metric.
    validating = next(e for e in run.of_type("stage") if e["stage"] == "validating")
    assert validating["seq"] < metrics[-1]["seq"]


def test_epoch_checkpoints_are_trainer_folders(reference):
    _, _, run = reference
    checkpoints = run.of_type("checkpoint")
    assert [c["step"] for c in checkpoints] == [STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH]
    for checkpoint in checkpoints:
        folder = Path(checkpoint["path"])
        assert folder.name == f"checkpoint-{checkpoint['step']}"
        assert (folder / "trainer_state.json").is_file() and (folder / "adapter_model.safetensors").is_file()
        assert checkpoint["loss"] == next(m["training_loss"] for m in run.of_type("metric") if m["step"] == checkpoint["step"])


def test_artifact_lists_the_files_on_disk(reference):
    root, spec, run = reference
    (artifact,) = run.of_type("artifact")
    out_dir = Path(spec["output"]["dir"])
    assert Path(artifact["dir"]) == out_dir.resolve()
    names = [f["path"] for f in artifact["files"]]
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= set(names)
    assert names == sorted(names) == sorted(p.name for p in out_dir.iterdir())
    for entry in artifact["files"]:
        path = out_dir / entry["path"]
        assert entry["size"] == path.stat().st_size and entry["sha256"] == sha256(path)
    adapter_config = json.loads((out_dir / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == TINY_MODEL_ID
    assert adapter_config["r"] == 8 and adapter_config["lora_alpha"] == 16
    assert sorted(adapter_config["target_modules"]) == ["q_proj", "v_proj"]


def test_done_summary(reference):
    _, _, run = reference
    summary = run.events[-1]["summary"]
    metrics = run.of_type("metric")
    assert summary["total_steps"] == TOTAL_STEPS and summary["epochs"] == pytest.approx(EPOCHS)
    assert summary["final_training_loss"] == metrics[-1]["training_loss"]
    assert summary["final_validation_loss"] == metrics[-1]["validation_loss"]
    assert summary["final_training_loss"] < metrics[0]["training_loss"]
    assert summary["train_runtime_seconds"] > 0 and summary["train_tokens"] > 0
    assert 0 < summary["trainable_parameters"] < summary["total_parameters"]


def test_adapter_loads_on_the_tiny_base_and_generates(reference, tiny_model_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, spec, _ = reference
    out_dir = spec["output"]["dir"]
    tokenizer = AutoTokenizer.from_pretrained(out_dir)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), out_dir)
    lora_b = [p for name, p in model.named_parameters() if "lora_B" in name]
    assert lora_b and any(p.abs().sum() > 0 for p in lora_b)  # trained, not the zero init
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 3 plus 3?"}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        generated = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    assert generated.shape[1] > prompt["input_ids"].shape[1]


# ------------------------------------------------------------------------ stop and resume


def test_sigterm_checkpoints_and_resume_continues_exactly(reference, workdir, dataset):
    _, _, reference_run = reference
    reference_losses = {m["step"]: m["training_loss"] for m in reference_run.of_type("metric")}
    root = workdir / "stopped"
    root.mkdir()
    spec = make_spec(root, {"path": str(dataset)})

    def stop_after_first_metric(event, process, events):
        if event["type"] == "metric" and len([e for e in events if e["type"] == "metric"]) == 1:
            process.send_signal(signal.SIGTERM)

    stopped = run_trainer(write_spec(root / "spec.json", spec), on_event=stop_after_first_metric)
    assert stopped.returncode == 143, stopped.describe()
    assert stopped.events[-2]["type"] == "checkpoint" and stopped.events[-1]["type"] == "log"
    assert "stopped by signal 15" in stopped.events[-1]["message"]
    assert not stopped.of_type("done") and not stopped.of_type("error")
    checkpoint = stopped.events[-2]
    step = checkpoint["step"]
    assert 1 <= step < TOTAL_STEPS and stopped.metric_steps == list(range(1, step + 1))
    assert (Path(checkpoint["path"]) / "trainer_state.json").is_file()

    spec["resume_from"] = checkpoint["path"]
    resumed = run_trainer(write_spec(root / "resume.json", spec))
    assert resumed.returncode == 0, resumed.describe()
    assert resumed.metric_steps == list(range(step + 1, TOTAL_STEPS + 1))
    for metric in resumed.of_type("metric"):
        assert metric["training_loss"] == pytest.approx(reference_losses[metric["step"]], rel=1e-5)
    assert resumed.events[-1]["summary"]["total_steps"] == TOTAL_STEPS


def test_sigterm_before_training_exits_143_without_checkpoint(tmp_path, dataset):
    spec = make_spec(tmp_path, {"path": str(dataset)})

    def stop_at_once(event, process, events):
        if len(events) == 1:
            process.send_signal(signal.SIGTERM)

    run = run_trainer(write_spec(tmp_path / "spec.json", spec), on_event=stop_at_once)
    assert run.returncode == 143, run.describe()
    assert run.events[-1]["type"] == "log" and "before training started" in run.events[-1]["message"]
    assert not run.of_type("checkpoint") and not run.of_type("error") and not run.of_type("metric")


def test_stop_during_final_validation_then_resume_adds_no_step(tmp_path, dataset, monkeypatch):
    """In-process: a stop that lands after the last step checkpoints that step; resuming
    from it evaluates and saves without training a step past the end."""
    import transformers

    from brightrun_trainer.signals import StopSignal

    spec = make_spec(tmp_path, {"path": str(dataset)}, max_steps=4)
    stop = StopSignal()
    evaluate = transformers.Trainer.evaluate

    def evaluate_then_stop(self, *args, **kwargs):
        stop.request(signal.SIGTERM)
        return evaluate(self, *args, **kwargs)

    monkeypatch.setattr(transformers.Trainer, "evaluate", evaluate_then_stop)
    stopped = run_in_process(write_spec(tmp_path / "spec.json", spec), stop=stop)
    assert stopped.returncode == 143, stopped.describe()
    checkpoint, last_metric = stopped.events[-2], stopped.of_type("metric")[-1]
    assert checkpoint["type"] == "checkpoint" and checkpoint["step"] == last_metric["step"] == 4
    assert last_metric["validation_loss"] is not None
    monkeypatch.undo()

    spec["resume_from"] = checkpoint["path"]
    resumed = run_in_process(write_spec(tmp_path / "resume.json", spec))
    assert resumed.returncode == 0, resumed.describe()
    assert resumed.stages == EXPECTED_STAGES and not resumed.of_type("metric")
    summary = resumed.events[-1]["summary"]
    assert summary["total_steps"] == 4
    assert summary["final_validation_loss"] == pytest.approx(last_metric["validation_loss"], rel=1e-6)


# ------------------------------------------------------------------------ presigned URLs


class _ObjectStore(BaseHTTPRequestHandler):
    """A presigned-URL stand-in: GET serves ``objects``, PUT stores into it."""

    objects: dict[str, bytes] = {}

    def do_GET(self):
        body = self.objects.get(self.path.split("?")[0])
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def do_PUT(self):
        self.objects[self.path.split("?")[0]] = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_dataset_url_and_presigned_put_output(tmp_path, dataset):
    """In-process (stdout purity is covered by the subprocess runs)."""
    _ObjectStore.objects = {"/datasets/train.jsonl": dataset.read_bytes()}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ObjectStore)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        names = ["adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "unused.bin"]
        urls = {name: f"{base}/models/{name}?X-Amz-Signature=secret" for name in names}
        spec = make_spec(
            tmp_path,
            {"url": f"{base}/datasets/train.jsonl?X-Amz-Signature=secret"},
            output={"presigned_put": urls},
            max_steps=3,
            logging_steps=2,
            hyperparameters={"use_validation": False},
        )
        run = run_in_process(write_spec(tmp_path / "spec.json", spec))
    finally:
        server.shutdown()
    assert run.returncode == 0, run.describe()
    assert run.metric_steps == [2, 3]  # every logging_steps, and always the last step
    assert run.stages == ["initializing", "training", "saving", "completed"]  # no validation split
    (artifact,) = run.of_type("artifact")
    delivered = {entry["path"]: entry for entry in artifact["files"]}
    assert set(delivered) == {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json"}
    for name, entry in delivered.items():
        body = _ObjectStore.objects[f"/models/{name}"]
        assert len(body) == entry["size"] and hashlib.sha256(body).hexdigest() == entry["sha256"]
    warnings = [e["message"] for e in run.of_type("log") if e["level"] == "warning"]
    assert any("tokenizer_config.json" in message and "not uploaded" in message for message in warnings)
    assert all("secret" not in json.dumps(event) for event in run.events if event["type"] == "log")


# ------------------------------------------------------------------------ failures


def assert_failed(run, kind: str, reason_part: str) -> dict:
    assert run.returncode == 1, run.describe()
    assert run.events[0]["type"] == "stage" and run.events[0]["stage"] == "initializing"
    assert run.events[-1]["type"] == "error" and len(run.of_type("error")) == 1
    error = run.events[-1]
    assert error["kind"] == kind and reason_part in error["reason"], error
    assert "\n" not in error["reason"] and "Traceback" in error["detail"]
    assert not run.of_type("done")
    return error


def test_spec_missing_a_field(tmp_path, dataset):
    spec = make_spec(tmp_path, {"path": str(dataset)})
    del spec["hyperparameters"]["learning_rate"]
    run = run_trainer(write_spec(tmp_path / "spec.json", spec))
    assert_failed(run, "training", "`hyperparameters.learning_rate` is missing")


def test_dataset_that_is_not_json(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("this is a text file\nnot a dataset\n")
    run = run_trainer(write_spec(tmp_path / "spec.json", make_spec(tmp_path, {"path": str(path)})))
    assert_failed(run, "training", "none of the dataset's 2 records is a usable example")


def test_dataset_with_only_empty_examples(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", [{"prompt": f"Q{i}", "completion": ""} for i in range(10)])
    run = run_trainer(write_spec(tmp_path / "spec.json", make_spec(tmp_path, {"path": str(path)})))
    assert_failed(run, "training", "no non-empty assistant response")


def test_missing_package_is_an_infrastructure_error(tmp_path, dataset):
    blocker = tmp_path / "site" / "peft"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('No module named peft (hidden by the test)')\n")
    env = trainer_env()
    env["PYTHONPATH"] = f"{tmp_path / 'site'}:{env['PYTHONPATH']}"
    spec = make_spec(tmp_path, {"path": str(dataset)})
    run = run_trainer(write_spec(tmp_path / "spec.json", spec), env=env)
    assert_failed(run, "infrastructure", "peft")


def test_4bit_without_cuda_or_bitsandbytes_fails_fast_as_infrastructure(tmp_path, dataset):
    """In-process: this CPU machine has neither; the job is refused before the model loads."""
    spec = make_spec(tmp_path, {"path": str(dataset)}, hyperparameters={"quantization": "4bit"})
    run = run_in_process(write_spec(tmp_path / "spec.json", spec))
    assert run.returncode == 1, run.describe()
    (error,) = run.of_type("error")
    assert error["kind"] == "infrastructure"
    assert 'quantization "4bit"' in error["reason"] and "lacks a CUDA GPU" in error["reason"]
    assert "install" in error["reason"] and "bitsandbytes" in error["reason"] and 'quantization = "none"' in error["reason"]
    assert run.stages == ["initializing"] and not run.of_type("metric")
    assert not any("loading base model" in e.get("message", "") for e in run.of_type("log"))


# ------------------------------------------------------------------------ tool calling


def tool_records(count: int) -> list[dict]:
    tools = [{"type": "function", "function": {"name": "add", "description": "Adds two numbers",
              "parameters": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}}}]
    return [
        {
            "tools": tools,
            "messages": [
                {"role": "user", "content": f"What is {i} plus {i}?"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": f"call_{i}", "type": "function", "function": {"name": "add", "arguments": json.dumps({"a": i, "b": i})}}]},
                {"role": "tool", "tool_call_id": f"call_{i}", "content": str(2 * i)},
                {"role": "assistant", "content": f"It is {2 * i}."},
            ],
        }
        for i in range(count)
    ]


def test_a_tool_calling_dataset_trains_with_the_loss_on_assistant_turns_only(tmp_path, tiny_model_dir):
    from transformers import AutoTokenizer

    from brightrun_trainer.data import DatasetFormat, load_dataset
    from brightrun_trainer.encoding import IGNORE_INDEX, encode_examples, prepare_tokenizer

    dataset = write_jsonl(tmp_path / "tools.jsonl", tool_records(12))
    # The mask the trainer will use, with the base model's own tokenizer and chat template.
    loaded = load_dataset(dataset, seed=42, validation_split=0.1, use_validation=True)
    assert loaded.format is DatasetFormat.OPENAI_CHAT and loaded.train[0].tools
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    prepare_tokenizer(tokenizer)
    encoded, report = encode_examples(tokenizer, loaded.train, 512)
    assert report.kept == len(loaded.train) and not report.located_by_search
    example, first = encoded[0], loaded.train[0]
    i = first.index
    trained = tokenizer.decode([t for t in example.labels if t != IGNORE_INDEX])
    assert trained == (
        f'<tool_call>{{"name": "add", "arguments": {{"a": {i}, "b": {i}}}}}</tool_call><|im_end|>\n'
        f"It is {2 * i}.<|im_end|>\n"
    )
    masked = tokenizer.decode([t for t, label in zip(example.input_ids, example.labels) if label == IGNORE_INDEX])
    assert f"What is {i} plus {i}?" in masked and "Adds two numbers" in masked and f"tool\n{2 * i}" in masked

    spec = make_spec(tmp_path, {"path": str(dataset)}, hyperparameters={"epochs": 1, "batch_size": 2, "max_seq_length": 1024})
    run = run_trainer(write_spec(tmp_path / "spec.json", spec))
    assert run.returncode == 0, run.describe()
    assert run.stages[-1] == "completed"
    (done,) = run.of_type("done")
    assert done["summary"]["total_steps"] > 0
    assert all(math.isfinite(m["training_loss"]) for m in run.of_type("metric"))
    assert any("openai_chat" in e.get("message", "") for e in run.of_type("log"))


# ------------------------------------------------------------------------ strict chat templates


def test_one_record_a_strict_template_rejects_does_not_end_the_run(tmp_path, tiny_model_dir):
    """In-process: a base model whose template demands alternating roles, one record that
    does not alternate: skipped and counted, the rest trains."""
    import shutil

    from transformers import AutoTokenizer

    from test_encoding import STRICT_TEMPLATE

    model_dir = tmp_path / "strict-model"
    shutil.copytree(tiny_model_dir, model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.chat_template = STRICT_TEMPLATE
    tokenizer.save_pretrained(model_dir)
    records = chat_records(8)
    records[2] = {"messages": [{"role": "user", "content": "Hi"}, {"role": "user", "content": "Hello?"},
                               {"role": "assistant", "content": "Hello."}]}
    dataset = write_jsonl(tmp_path / "train.jsonl", records)
    spec = make_spec(tmp_path, {"path": str(dataset)}, base_model=str(model_dir), max_steps=2,
                     hyperparameters={"use_validation": False})
    run = run_in_process(write_spec(tmp_path / "spec.json", spec))
    assert run.returncode == 0, run.describe()
    warnings = [e["message"] for e in run.of_type("log") if e["level"] == "warning"]
    assert any(m.startswith("skipped 1 unusable records (line 3: the chat template rejects") for m in warnings), warnings


# ------------------------------------------------------------------------ divergence


def test_nan_at_a_step_that_is_not_logged_ends_the_run_at_that_step_and_names_the_last_checkpoint(tmp_path, monkeypatch):
    """In-process: logging every 5 steps, an epoch-end checkpoint at step 10, a NaN loss
    injected at step 12 (not a logging step): the run ends at step 12, not at the next
    logging step, and the error names checkpoint-10 to resume from."""
    import transformers

    original = transformers.Trainer.training_step

    def poisoned(self, model, inputs, *args, **kwargs):
        loss = original(self, model, inputs, *args, **kwargs)
        return loss * float("nan") if self.state.global_step == 11 else loss  # during step 12

    monkeypatch.setattr(transformers.Trainer, "training_step", poisoned)
    dataset = write_jsonl(tmp_path / "train.jsonl", chat_records(40))  # 10 steps of 4 per epoch
    spec = make_spec(tmp_path, {"path": str(dataset)}, max_steps=14, logging_steps=5,
                     hyperparameters={"use_validation": False})
    run = run_in_process(write_spec(tmp_path / "spec.json", spec))
    assert run.returncode == 1, run.describe()
    (checkpoint,) = run.of_type("checkpoint")
    assert checkpoint["step"] == 10 and Path(checkpoint["path"]).is_dir()
    assert run.metric_steps == [5, 10]
    error = run.events[-1]
    assert error["type"] == "error" and error["kind"] == "training"
    assert "the training loss became nan at step 12" in error["reason"]
    assert f"the last good checkpoint is {checkpoint['path']}" in error["reason"]
    assert checkpoint["path"] in error["detail"]
    assert (Path(checkpoint["path"]) / "trainer_state.json").is_file()  # kept, resumable
