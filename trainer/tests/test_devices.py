"""One meaning of batch size: several visible GPUs and no launcher mean one GPU, not DataParallel."""

from __future__ import annotations

import pytest
from conftest import chat_records, make_spec, run_in_process, write_jsonl, write_spec

from brightrun_trainer.devices import pin_one_gpu


def test_several_gpus_without_a_launcher_keep_only_the_first():
    environ: dict[str, str] = {}
    note = pin_one_gpu(environ, count_gpus=lambda: 4)
    assert environ["CUDA_VISIBLE_DEVICES"] == "0" and note.startswith("4 GPUs are visible")
    environ = {"CUDA_VISIBLE_DEVICES": "2,3"}  # e.g. chosen by Ray for this task
    assert pin_one_gpu(environ, count_gpus=lambda: 8)
    assert environ["CUDA_VISIBLE_DEVICES"] == "2"


def test_one_gpu_no_gpu_or_a_launcher_change_nothing():
    for environ, count in [({}, 1), ({}, None), ({"CUDA_VISIBLE_DEVICES": "1"}, 4),
                           ({"LOCAL_RANK": "0", "WORLD_SIZE": "2"}, 4),
                           ({"WORLD_SIZE": "2", "CUDA_VISIBLE_DEVICES": "0,1"}, 2)]:
        before = dict(environ)
        assert pin_one_gpu(environ, count_gpus=lambda: count) is None
        assert environ == before


def test_training_arguments_never_use_data_parallel(monkeypatch, tmp_path):
    """A mocked count of 4 GPUs: the Trainer would wrap the model in DataParallel and make
    every step 4 × batch_size examples."""
    import torch

    from brightrun_trainer.devices import forbid_data_parallel
    from brightrun_trainer.spec import parse_spec
    from brightrun_trainer.train import Precision, training_arguments

    for name in ("LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    spec = parse_spec(make_spec(tmp_path, {"path": str(tmp_path / "train.jsonl")}))
    args = training_arguments(spec, Precision(torch.float32))
    assert args.n_gpu == 4  # what the Trainer would do: DataParallel over 4 GPUs
    assert forbid_data_parallel(args)
    assert args.n_gpu == 1 and args.train_batch_size == spec.hyperparameters.batch_size
    assert not forbid_data_parallel(args)


def test_the_global_batch_is_stated_and_a_run_with_several_gpus_uses_one(monkeypatch, tmp_path):
    import torch

    from brightrun_trainer import devices

    for name in ("LOCAL_RANK", "WORLD_SIZE", "CUDA_VISIBLE_DEVICES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(devices, "visible_gpu_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)  # CUDA was initialised before the pin
    from brightrun_trainer.encoding import PaddingCollator

    batch_sizes = []
    collate = PaddingCollator.__call__
    monkeypatch.setattr(PaddingCollator, "__call__", lambda self, rows: batch_sizes.append(len(rows)) or collate(self, rows))
    dataset = write_jsonl(tmp_path / "train.jsonl", chat_records(12))
    spec = make_spec(tmp_path, {"path": str(dataset)}, max_steps=2,
                     hyperparameters={"use_validation": False, "batch_size": 2, "gradient_accumulation_steps": 3})
    run = run_in_process(write_spec(tmp_path / "spec.json", spec))
    assert run.returncode == 0, run.describe()
    messages = [e["message"] for e in run.of_type("log")]
    assert any(m.startswith("4 GPUs are visible") for m in messages), messages
    assert devices.os.environ["CUDA_VISIBLE_DEVICES"] == "0"
    assert "global batch: 6 examples per optimizer step (batch_size 2 × gradient_accumulation_steps 3 × 1 process)" in messages
    assert batch_sizes and set(batch_sizes) == {2}  # batch_size rows per forward pass, not 4 × 2


# ------------------------------------------------------------------------ data parallelism


def test_several_gpus_asked_for_and_visible_mean_torchrun():
    from brightrun_trainer.devices import LaunchPlan, plan_data_parallel

    plan = plan_data_parallel(4, {}, count_gpus=lambda: 8)
    assert plan == LaunchPlan(4, plan.note) and "4 processes" in plan.note
    plan = plan_data_parallel(4, {"CUDA_VISIBLE_DEVICES": "3,5"}, count_gpus=lambda: 8)
    assert plan.processes == 2 and "only 2 visible" in plan.note


def test_no_relaunch_for_one_gpu_none_visible_or_under_a_launcher():
    from brightrun_trainer.devices import plan_data_parallel

    assert plan_data_parallel(1, {}, count_gpus=lambda: 8) is None
    assert plan_data_parallel(4, {"LOCAL_RANK": "0", "WORLD_SIZE": "4"}, count_gpus=lambda: 4) is None
    for environ, count in [({}, None), ({}, 1), ({"CUDA_VISIBLE_DEVICES": "0"}, 8)]:
        note = plan_data_parallel(2, environ, count_gpus=lambda: count)
        assert isinstance(note, str) and note.startswith("gpu_count 2 asked for")


def test_relaunch_command_and_rank_zero():
    from brightrun_trainer.devices import is_rank_zero, relaunch_command

    assert relaunch_command(2, "/jobs/spec.json", "/venv/bin/python") == [
        "/venv/bin/python", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "brightrun_trainer", "run", "--spec", "/jobs/spec.json",
    ]
    assert relaunch_command(3, "env:SPEC", "py")[-2:] == ["--spec-env", "SPEC"]
    assert is_rank_zero({}) and is_rank_zero({"RANK": "0"}) and not is_rank_zero({"RANK": "1"})


def test_a_job_asking_for_several_gpus_reexecs_under_torchrun(monkeypatch, tmp_path):
    """A mocked count of 4 GPUs: the runner execs torchrun with the next event seq (the exec
    itself is mocked: there is no multi-GPU machine here)."""
    from brightrun_trainer import devices, runner

    for name in ("LOCAL_RANK", "WORLD_SIZE", "CUDA_VISIBLE_DEVICES", devices.RELAUNCH_SEQ_VARIABLE):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(devices, "visible_gpu_count", lambda: 4)
    calls = []

    def fake_exec(path, argv, environ):
        calls.append((path, argv, environ))
        raise SystemExit(0)

    monkeypatch.setattr(runner.os, "execve", fake_exec)
    monkeypatch.setattr(runner.os, "dup2", lambda *args: None)
    stream = open(tmp_path / "events.jsonl", "w")
    dataset = write_jsonl(tmp_path / "train.jsonl", chat_records(4))
    spec_path = write_spec(tmp_path / "spec.json", make_spec(tmp_path, {"path": str(dataset)}, efficiency={"gpu_count": 2}))
    from brightrun_trainer.events import EventEmitter
    from brightrun_trainer.signals import StopSignal

    with pytest.raises(SystemExit):
        runner.run(str(spec_path), EventEmitter(stream), stop=StopSignal())
    stream.close()
    (path, argv, environ), = calls
    assert argv[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    assert argv[-2:] == ["--spec", str(spec_path)]
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert environ[devices.RELAUNCH_SEQ_VARIABLE] == str(len(lines))
    assert "data parallel: 2 processes" in lines[-1]
