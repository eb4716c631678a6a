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
