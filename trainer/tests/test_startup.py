"""Start-up and exit: the trainer leaves at once after its last event, with everything flushed."""

from __future__ import annotations

from conftest import chat_records, make_spec, run_trainer, trainer_env, write_jsonl, write_spec


def test_the_trainer_exits_without_interpreter_teardown_after_done(tmp_path):
    """A ``sitecustomize`` registers an atexit hook; a normal interpreter exit would run it
    (after garbage-collecting torch), ``os._exit`` after the flush does not."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    marker = tmp_path / "teardown-ran"
    (hooks / "sitecustomize.py").write_text(
        f"import atexit, pathlib\natexit.register(lambda: pathlib.Path({str(marker)!r}).write_text('ran'))\n"
    )
    dataset = write_jsonl(tmp_path / "train.jsonl", chat_records(8))
    spec = make_spec(tmp_path, {"path": str(dataset)}, max_steps=2, hyperparameters={"use_validation": False})
    env = trainer_env()
    env["PYTHONPATH"] = f"{hooks}:{env['PYTHONPATH']}"
    run = run_trainer(write_spec(tmp_path / "spec.json", spec), env=env)
    assert run.returncode == 0, run.describe()
    assert run.events[-1]["type"] == "done" and run.stages[-1] == "completed"
    assert [e["seq"] for e in run.events] == list(range(len(run.events)))  # nothing lost in the flush
    assert not marker.exists()


def test_a_failed_run_also_exits_fast_with_its_error(tmp_path):
    spec = make_spec(tmp_path, {"path": str(tmp_path / "missing.jsonl")})
    run = run_trainer(write_spec(tmp_path / "spec.json", spec))
    assert run.returncode == 1 and run.events[-1]["type"] == "error"
