"""The libraries' FutureWarnings stay out of job logs (issue 23 #18); other warnings do not."""

from __future__ import annotations

import os
import warnings

from conftest import chat_records, make_spec, run_trainer, trainer_env, write_jsonl, write_spec

from brightrun_trainer.__main__ import quiet_library_warnings


def test_a_real_run_writes_no_future_warning(tmp_path):
    # PEFT calls transformers' deprecated is_gradient_checkpointing on every run.
    dataset = write_jsonl(tmp_path / "train.jsonl", chat_records(12))
    spec = make_spec(tmp_path, {"path": str(dataset)}, max_steps=2)
    env = trainer_env()
    env.pop("PYTHONWARNINGS", None)
    run = run_trainer(write_spec(tmp_path / "spec.json", spec), env=env)
    assert run.returncode == 0, run.describe()
    assert "FutureWarning" not in run.stderr, run.stderr
    logged = [e["message"] for e in run.of_type("log")]
    assert not any("FutureWarning" in m for m in logged), logged


def test_only_the_libraries_future_warnings_are_quieted(monkeypatch):
    monkeypatch.delenv("PYTHONWARNINGS", raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_library_warnings()
        for module in ("transformers.modeling_utils", "peft.peft_model", "torch", "trl.trainer"):
            warnings.warn_explicit("old call", FutureWarning, "lib.py", 1, module=module)
        warnings.warn_explicit("ours", FutureWarning, "spec.py", 1, module="brightrun_trainer.spec")
        warnings.warn_explicit("a real problem", UserWarning, "lib.py", 2, module="transformers.trainer")
        warnings.warn_explicit("not torch", FutureWarning, "lib.py", 3, module="torchvision.io")
    assert sorted(str(w.message) for w in caught) == ["a real problem", "not torch", "ours"]


def test_a_developer_who_sets_pythonwarnings_sees_them(monkeypatch):
    monkeypatch.setenv("PYTHONWARNINGS", "default")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_library_warnings()
        warnings.warn_explicit("old call", FutureWarning, "lib.py", 1, module="peft.peft_model")
    assert [str(w.message) for w in caught] == ["old call"]


def test_openmp_threads_wait_passively_unless_told_otherwise(monkeypatch):
    """Spinning OpenMP threads made CPU runs 13-20× slower on a shared machine (issue 23 #4)."""
    from brightrun_trainer.__main__ import configure_environment

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setenv("PYTHONWARNINGS", "default")  # leave this process's warning filters alone
    configure_environment()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    configure_environment()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
