"""How loading failures are classified: a missing model is the job's fault (not retried)."""

from __future__ import annotations

import pytest

from brightrun_trainer.errors import INFRASTRUCTURE, TRAINING, model_load_error


def _chained(outer: BaseException, inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as e:
            raise outer from e
    except BaseException as e:
        return e


class RepositoryNotFoundError(OSError):
    pass


class LocalEntryNotFoundError(FileNotFoundError):
    pass


class GatedRepoError(OSError):
    pass


def test_a_model_missing_from_the_hub_is_a_training_error(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    exc = _chained(OSError("nobody/nothing is not a local folder and is not a valid model identifier"), RepositoryNotFoundError("404"))
    err = model_load_error(exc, "nobody/nothing", "tokenizer")
    assert err.kind == TRAINING
    assert "nobody/nothing was not found" in err.reason


def test_offline_and_not_cached_is_a_training_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    exc = _chained(
        OSError("We couldn't connect to 'https://huggingface.co' to load the files, and couldn't find them in the cached files."),
        LocalEntryNotFoundError("offline"),
    )
    err = model_load_error(exc, "Qwen/Qwen2.5-0.5B", "tokenizer")
    assert err.kind == TRAINING
    assert "not in the offline cache (HF_HUB_OFFLINE is set)" in err.reason
    assert "huggingface-cli download Qwen/Qwen2.5-0.5B" in err.reason


@pytest.mark.parametrize("offline", ["", "1"])
def test_gated_models_and_broken_disks_stay_infrastructure(monkeypatch, offline):
    monkeypatch.setenv("HF_HUB_OFFLINE", offline)
    assert model_load_error(_chained(OSError("401"), GatedRepoError("gated")), "m", "model").kind == INFRASTRUCTURE
    assert model_load_error(OSError("No space left on device"), "m", "model").kind == INFRASTRUCTURE


# ------------------------------------------------------------------------ QLoRA


def test_4bit_on_a_gpu_without_bitsandbytes_is_refused(monkeypatch):
    import importlib.util
    from types import SimpleNamespace

    import torch

    from brightrun_trainer import train
    from brightrun_trainer.errors import InfrastructureError

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real_find_spec(name, *a))
    with pytest.raises(InfrastructureError, match="lacks the bitsandbytes package") as raised:
        train.check_quantization(SimpleNamespace(quantization="4bit"))
    assert raised.value.kind == INFRASTRUCTURE and "CUDA GPU and" not in raised.value.reason
    assert train.check_quantization(SimpleNamespace(quantization="none")) is False


def test_out_of_memory_advises_4bit_only_where_4bit_can_run(monkeypatch):
    import importlib.util

    import torch

    from brightrun_trainer import errors

    oom = RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real_find_spec(name, *a))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert errors.classify(oom) == TRAINING
    reason = errors.one_line_reason(oom)
    assert reason.startswith("out of memory: lower batch_size or max_seq_length (") and "4bit" not in reason

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "bitsandbytes" else real_find_spec(name, *a))
    assert 'quantization "4bit"' in errors.one_line_reason(oom)
