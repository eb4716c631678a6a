"""The failure marker (PROTOCOL.md, "Failure marker"): a broken event stream and a run that
died of a full disk are written where the engine reads them, even when the disk is full."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import make_spec, trainer_env, write_spec

from brightrun_trainer import runner
from brightrun_trainer.events import EventEmitter
from brightrun_trainer.failure import (
    DISK_FULL,
    EVENT_STREAM_BROKEN,
    MARKER_VARIABLE,
    RESERVED_BYTES,
    FailureMarker,
    disk_full_cause,
)
from brightrun_trainer.signals import StopSignal


class FullDisk(io.TextIOBase):
    """A stream whose writes fail as a file on a full file system does."""

    def __init__(self) -> None:
        self.attempts = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.attempts += 1
        raise OSError(errno.ENOSPC, "No space left on device")


def read_marker(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_a_stream_that_hits_a_full_disk_writes_the_marker_once_and_training_goes_on(tmp_path, capsys):
    marker = FailureMarker(tmp_path / "trainer-failure.json", clock=lambda: 5.0)
    marker.reserve()
    assert (tmp_path / "trainer-failure.json.tmp").stat().st_size == RESERVED_BYTES
    stream = FullDisk()
    emitter = EventEmitter(stream, marker=marker)
    emitter.info("first")
    emitter.info("second")  # the emitter stopped writing: no second attempt, no second marker
    assert stream.attempts == 1 and emitter.broken
    written = read_marker(tmp_path / "trainer-failure.json")
    assert written == {
        "version": 1,
        "kind": EVENT_STREAM_BROKEN,
        "errno": errno.ENOSPC,
        "path": None,  # a fake stream has no file
        "message": "event stream closed ([Errno 28] No space left on device)",
        "ts": 5.0,
    }
    assert not (tmp_path / "trainer-failure.json.tmp").exists(), "the reserve became the marker"
    assert "event stream closed" in capsys.readouterr().err  # still said for people


def test_without_the_variable_there_is_no_marker(tmp_path):
    assert FailureMarker.from_env({}) is None
    assert FailureMarker.from_env({MARKER_VARIABLE: "  "}) is None
    emitter = EventEmitter(FullDisk())
    emitter.info("lost")
    emitter.record_failure(OSError(errno.ENOSPC, "No space left on device"))
    assert list(tmp_path.iterdir()) == []


def test_a_run_that_dies_of_a_full_disk_says_so_after_its_lost_error_event(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "checkpoints" / "x"))

    monkeypatch.setattr(runner, "load_dataset", full)
    spec = make_spec(tmp_path, {"path": str(tmp_path / "train.jsonl")})
    marker = FailureMarker.from_env({MARKER_VARIABLE: str(tmp_path / "trainer-failure.json")})
    emitter = EventEmitter(FullDisk(), marker=marker)
    assert runner.run(str(write_spec(tmp_path / "spec.json", spec)), emitter, stop=StopSignal()) == 1
    written = read_marker(tmp_path / "trainer-failure.json")
    # The stream broke first; the run's death replaced that marker, in the same space.
    assert written["kind"] == DISK_FULL and written["errno"] == errno.ENOSPC
    assert written["path"] == str(tmp_path / "checkpoints" / "x")
    assert written["message"].startswith("OSError: [Errno 28] No space left on device")
    assert os.path.getsize(tmp_path / "trainer-failure.json") == RESERVED_BYTES
    assert not (tmp_path / "trainer-failure.json.tmp").exists()


def test_a_run_that_fails_otherwise_leaves_no_marker_and_no_reserve(tmp_path):
    spec = make_spec(tmp_path, {"path": str(tmp_path / "missing.jsonl")})
    marker = FailureMarker.from_env({MARKER_VARIABLE: str(tmp_path / "trainer-failure.json")})
    out = io.StringIO()
    assert runner.run(str(write_spec(tmp_path / "spec.json", spec)), EventEmitter(out, marker=marker), stop=StopSignal()) == 1
    assert json.loads(out.getvalue().splitlines()[-1])["type"] == "error"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.json"]


def test_full_disks_are_recognised_in_the_exception_chain():
    def chained() -> BaseException:
        try:
            try:
                raise OSError(errno.EDQUOT, "Disk quota exceeded", "/data/ckpt/optimizer.pt")
            except OSError as inner:
                raise RuntimeError("saving the checkpoint failed") from inner
        except RuntimeError as outer:
            return outer

    code, filename, cause = disk_full_cause(chained())
    assert (code, filename, type(cause)) == (errno.EDQUOT, "/data/ckpt/optimizer.pt", OSError)
    # torch's and safetensors' writers raise no OSError; their own wording is recognised.
    assert disk_full_cause(RuntimeError("[enforce fail] file write failed: No space left on device"))[0] == errno.ENOSPC
    assert disk_full_cause(Exception('IoError(Os { code: 28, kind: StorageFull, message: "…" })'))[0] == errno.ENOSPC
    assert disk_full_cause(OSError(errno.EACCES, "Permission denied")) is None
    assert disk_full_cause(ValueError("loss is nan")) is None


def test_a_marker_that_cannot_be_written_is_said_on_stderr_and_nothing_raises(tmp_path, capsys):
    marker = FailureMarker(tmp_path / "missing-folder" / "trainer-failure.json")
    marker.reserve()  # cannot: the folder does not exist
    assert marker.write(DISK_FULL, errno=28, path=None, message="x") is False
    err = capsys.readouterr().err
    assert "could not reserve space" in err and "could not write the failure marker" in err
    with pytest.raises(ValueError):
        marker.write("exploded", errno=None, path=None, message="")


def test_a_long_message_is_bounded_and_one_line(tmp_path):
    marker = FailureMarker(tmp_path / "m.json")
    marker.write(EVENT_STREAM_BROKEN, errno=None, path="/p" * 2000, message="a\nb " + "x" * 5000)
    written = read_marker(tmp_path / "m.json")
    assert "\n" not in written["message"] and len(written["message"]) <= 500
    assert len(written["path"]) <= 1024 and written["errno"] is None


def test_the_trainer_with_its_stdout_on_a_full_device_writes_the_marker(tmp_path):
    """The real program, its event stream on ``/dev/full`` (every write fails with ENOSPC)."""
    if not os.path.exists("/dev/full"):
        # Why it may skip: /dev/full is a Linux device that some containers leave out. CI's
        # machine has it, so there the test fails instead of passing unrun.
        if os.environ.get("CI"):
            pytest.fail("CI must have /dev/full for the full-device test")
        pytest.skip("no /dev/full here")
    spec = make_spec(tmp_path, {"path": str(tmp_path / "missing.jsonl")})
    marker = tmp_path / "trainer-failure.json"
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "brightrun_trainer", "run", "--spec", str(write_spec(tmp_path / "spec.json", spec))],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env=trainer_env(**{MARKER_VARIABLE: str(marker)}),
            cwd=tmp_path,
            timeout=120,
        )
    assert done.returncode == 1, done.stderr
    written = read_marker(marker)
    assert written["kind"] == EVENT_STREAM_BROKEN, written
    assert written["errno"] == errno.ENOSPC and written["path"] == "/dev/full"
    assert not (tmp_path / "trainer-failure.json.tmp").exists()


@pytest.fixture
def tiny_tmpfs():
    """A 64 KiB tmpfs (needs root, as CI has); skipped where it cannot be mounted."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        # Why it may skip: mounting needs root (CAP_SYS_ADMIN). CI runs as root, so there a
        # test that cannot mount fails instead of passing unrun.
        if os.environ.get("CI"):
            pytest.fail("CI must be able to mount a tmpfs (root and mount(8))")
        pytest.skip("mounting a tmpfs needs root")
    folder = Path(tempfile.mkdtemp(prefix="brightrun-full-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        folder.rmdir()
        if os.environ.get("CI"):
            pytest.fail(f"CI must be able to mount a tmpfs: {mounted.stderr}")
        # Why it may skip: a sandbox that refuses mounts even to root.
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
        shutil.rmtree(folder, ignore_errors=True)


def fill(folder: Path) -> None:
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 12, 1 << 9, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


def test_on_a_really_full_disk_the_reserved_marker_is_still_written(tiny_tmpfs):
    marker = FailureMarker(tiny_tmpfs / "trainer-failure.json")
    marker.reserve()
    events = open(tiny_tmpfs / "events.jsonl", "w", encoding="utf-8", buffering=1)
    emitter = EventEmitter(events, marker=marker)
    fill(tiny_tmpfs)
    for i in range(1000):  # until the events file's last page is full too
        emitter.info(f"event {i} " + "x" * 100)
        if emitter.broken:
            break
    assert emitter.broken
    written = read_marker(tiny_tmpfs / "trainer-failure.json")
    assert written["kind"] == EVENT_STREAM_BROKEN and written["errno"] == errno.ENOSPC
    assert written["path"] == str(tiny_tmpfs / "events.jsonl")
    # The run then dies of the full disk: the marker is rewritten in its own space.
    emitter.record_failure(OSError(errno.ENOSPC, "No space left on device", str(tiny_tmpfs / "ckpt")))
    assert read_marker(tiny_tmpfs / "trainer-failure.json")["kind"] == DISK_FULL
    # Without a reserve nothing can be written on a full disk, and nothing raises.
    other = FailureMarker(tiny_tmpfs / "other.json")
    assert other.write(DISK_FULL, errno=28, path=None, message="full") is False
    try:
        events.close()
    except OSError:
        pass


def test_a_full_disk_is_an_infrastructure_error_whatever_raised_it():
    from brightrun_trainer.errors import INFRASTRUCTURE, TRAINING, classify

    assert classify(OSError(errno.ENOSPC, "No space left on device")) == INFRASTRUCTURE
    # safetensors' writer raises its own error class, not an OSError.
    safetensors_error = type("SafetensorError", (Exception,), {})
    full = safetensors_error('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })')
    assert classify(full) == INFRASTRUCTURE
    assert classify(ValueError("bad data")) == TRAINING
