"""Checkpoint storage (PROTOCOL.md, "Checkpoint storage"): the deterministic archive, its safe
extraction, the spec fields, and runs of the real trainer on the tiny model that store their
checkpoints in a folder or through presigned URLs and resume from an archive."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import stat
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import chat_records, make_spec, run_in_process, write_jsonl, write_spec

from brightrun_trainer.checkpoints import (
    CheckpointStore,
    extract_checkpoint,
    fetch_resume_checkpoint,
    pack_checkpoint,
    write_archive,
)
from brightrun_trainer.errors import CheckpointError, SpecError
from brightrun_trainer.events import EventEmitter
from brightrun_trainer.spec import CheckpointUpload, ResumeArchive, parse_spec

SECRET = "X-Amz-Signature=secret"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_folder(root: Path, step: int = 7) -> Path:
    folder = root / f"checkpoint-{step}"
    (folder / "sub").mkdir(parents=True)
    (folder / "trainer_state.json").write_text('{"global_step": 7}')
    (folder / "adapter_model.safetensors").write_bytes(os.urandom(5000))
    (folder / "sub" / "nested.bin").write_bytes(b"nested")
    os.symlink("trainer_state.json", folder / "a-link")  # not a regular file: not packed
    return folder


def pack_bytes(folder: Path) -> tuple[bytes, object]:
    out = io.BytesIO()
    packed = pack_checkpoint(folder, out)
    return out.getvalue(), packed


class Events:
    def __init__(self):
        self.out = io.StringIO()
        self.emitter = EventEmitter(self.out)

    def all(self) -> list[dict]:
        return [json.loads(line) for line in self.out.getvalue().splitlines()]

    def warnings(self) -> list[str]:
        return [e["message"] for e in self.all() if e["type"] == "log" and e["level"] == "warning"]


# ------------------------------------------------------------------------ the archive


def test_the_archive_is_deterministic_and_laid_out_as_documented(tmp_path):
    folder = make_folder(tmp_path)
    first, packed = pack_bytes(folder)
    assert packed.size == len(first) and packed.sha256 == sha256(first)
    # Other times, modes and umask: the same bytes.
    for path in folder.rglob("*"):
        if not path.is_symlink():
            os.utime(path, (1_700_000_000, 1_700_000_000))
    os.chmod(folder / "trainer_state.json", 0o644)
    second, again = pack_bytes(folder)
    assert second == first and again == packed

    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [
        "checkpoint-7",
        "checkpoint-7/adapter_model.safetensors",
        "checkpoint-7/sub/nested.bin",
        "checkpoint-7/trainer_state.json",
    ]
    assert members[0].isdir()
    for member in members:
        assert (member.mtime, member.uid, member.gid, member.uname, member.gname) == (0, 0, 0, "", "")
    for member in members[1:]:
        assert member.isreg() and member.mode == 0o600
    assert first[257:263] == b"ustar\x00"  # POSIX headers, no compression


def test_write_archive_is_0600_whatever_the_umask_and_leaves_no_temporary(tmp_path):
    folder = make_folder(tmp_path)
    expected, packed = pack_bytes(folder)
    for umask in (0o000, 0o277):
        old = os.umask(umask)
        try:
            destination = tmp_path / f"out-{umask:o}" / "checkpoint-7.tar"
            assert write_archive(folder, destination) == packed
        finally:
            os.umask(old)
        assert stat.S_IMODE(destination.stat().st_mode) == 0o600
        assert destination.read_bytes() == expected
        assert [p.name for p in destination.parent.iterdir()] == ["checkpoint-7.tar"]


def test_extraction_gives_back_the_folder(tmp_path):
    folder = make_folder(tmp_path / "src")
    data, packed = pack_bytes(folder)
    archive = tmp_path / "c.tar"
    archive.write_bytes(data)
    events = Events()
    source = ResumeArchive(step=7, size=packed.size, sha256=packed.sha256, archive=str(archive))
    resumed = Path(fetch_resume_checkpoint(source, str(tmp_path / "ckpts"), events.emitter))
    assert resumed == tmp_path / "ckpts" / "resumed-7" / "checkpoint-7"
    files = sorted(p.relative_to(resumed).as_posix() for p in resumed.rglob("*") if p.is_file())
    assert files == ["adapter_model.safetensors", "sub/nested.bin", "trainer_state.json"]
    for name in files:
        assert (resumed / name).read_bytes() == (folder / name).read_bytes()
    # The same archive again (a re-executed rank, a retry): the extracted folder is reused.
    (resumed / "trainer_state.json").touch()
    assert fetch_resume_checkpoint(source, str(tmp_path / "ckpts"), events.emitter) == str(resumed)
    assert "already fetched" in events.all()[-1]["message"]


# ------------------------------------------------------------------------ hostile archives


def build_tar(path: Path, members: list[tuple]) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, *payload in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind == tarfile.REGTYPE:
                body = payload[0] if payload else b"{}"
                info.size = len(body)
                tar.addfile(info, io.BytesIO(body))
            else:
                if payload:
                    info.linkname = payload[0]
                tar.addfile(info)
    return path


ROOT = ("checkpoint-5", tarfile.DIRTYPE)
STATE = ("checkpoint-5/trainer_state.json", tarfile.REGTYPE)


@pytest.mark.parametrize(
    "members, says",
    [
        ([ROOT, STATE, ("/tmp/evil", tarfile.REGTYPE)], "member '/tmp/evil' is an absolute path"),
        ([ROOT, STATE, ("checkpoint-5/../evil", tarfile.REGTYPE)], "member 'checkpoint-5/../evil' contains '..'"),
        ([ROOT, STATE, ("checkpoint-6/x", tarfile.REGTYPE)], "member 'checkpoint-6/x' is not inside checkpoint-5/"),
        ([ROOT, STATE, ("evil", tarfile.REGTYPE)], "member 'evil' is not inside checkpoint-5/"),
        ([ROOT, STATE, ("checkpoint-5/l", tarfile.SYMTYPE, "/etc/passwd")], "is a symbolic link"),
        ([ROOT, STATE, ("checkpoint-5/l", tarfile.LNKTYPE, "checkpoint-5/trainer_state.json")], "is a hard link"),
        ([ROOT, STATE, ("checkpoint-5/dev", tarfile.CHRTYPE)], "is a device"),
        ([ROOT, STATE, ("checkpoint-5/fifo", tarfile.FIFOTYPE)], "is a FIFO"),
        ([ROOT, ("checkpoint-5/adapter_model.safetensors", tarfile.REGTYPE)], "has no checkpoint-5/trainer_state.json"),
        ([ROOT, STATE, STATE], "appears twice"),
        ([ROOT, STATE, ("checkpoint-5/a", tarfile.REGTYPE), ("checkpoint-5/a/b", tarfile.REGTYPE)], "lies inside a file"),
        ([("checkpoint-5", tarfile.REGTYPE), STATE], "is a file, not the folder checkpoint-5/"),
    ],
)
def test_hostile_archives_are_refused_before_anything_is_written(tmp_path, members, says):
    archive = build_tar(tmp_path / "hostile.tar", members)
    data = archive.read_bytes()
    source = ResumeArchive(step=5, size=len(data), sha256=sha256(data), archive=str(archive))
    with pytest.raises(CheckpointError) as raised:
        fetch_resume_checkpoint(source, str(tmp_path / "ckpts"), Events().emitter)
    reason = raised.value.reason
    assert reason.startswith("the checkpoint at step 5 is not a checkpoint archive: ") and says in reason, reason
    assert reason.endswith("resume from an earlier checkpoint or from scratch")
    resumed = tmp_path / "ckpts" / "resumed-5"
    assert not (resumed / "checkpoint-5").exists() and not (resumed / ".extracted-sha256").exists()
    assert [p.name for p in resumed.iterdir()] == []  # no staging left behind
    assert not (tmp_path / "evil").exists() and not Path("/tmp/evil").exists()


def test_a_file_that_is_no_tar_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="step 5 is not a checkpoint archive: it cannot be read as a tar file"):
        extract_checkpoint(io.BytesIO(b"this is not a tar file " * 40), 5, tmp_path)


def test_size_and_sha256_are_checked_before_extracting(tmp_path):
    data, packed = pack_bytes(make_folder(tmp_path / "src", step=24))
    archive = tmp_path / "c.tar"
    archive.write_bytes(data)
    checkpoints = str(tmp_path / "ckpts")
    wrong_sha = ResumeArchive(step=24, size=packed.size, sha256="0" * 64, archive=str(archive))
    with pytest.raises(CheckpointError) as raised:
        fetch_resume_checkpoint(wrong_sha, checkpoints, Events().emitter)
    assert raised.value.reason == (
        f"the checkpoint at step 24 does not match its recorded sha256 (expected {'0' * 64}, got {packed.sha256}); "
        "resume from an earlier checkpoint or from scratch"
    )
    wrong_size = ResumeArchive(step=24, size=packed.size + 1, sha256=packed.sha256, archive=str(archive))
    with pytest.raises(CheckpointError, match=rf"step 24 does not match its recorded size \(expected {packed.size + 1} bytes, got {packed.size}\)"):
        fetch_resume_checkpoint(wrong_size, checkpoints, Events().emitter)
    missing = ResumeArchive(step=24, size=1, sha256="0" * 64, archive=str(tmp_path / "gone.tar"))
    with pytest.raises(CheckpointError, match="archive of the checkpoint at step 24 does not exist"):
        fetch_resume_checkpoint(missing, checkpoints, Events().emitter)
    assert not (Path(checkpoints) / "resumed-24" / "checkpoint-24").exists()


# ------------------------------------------------------------------------ the spec


@pytest.fixture
def spec(tmp_path):
    return make_spec(tmp_path, {"path": "/data/train.jsonl"})


def test_the_new_fields_default_to_none_and_parse(spec):
    parsed = parse_spec(spec)
    assert (parsed.checkpoint_steps, parsed.checkpoint_upload, parsed.resume_archive) == (None, None, None)
    spec.update(
        checkpoint_steps=5.0,
        checkpoint_upload={"presigned_put": ["https://s3/a?sig=1", "http://s3/b"]},
        resume_from={"url": "https://s3/c?sig=2", "sha256": "AB" * 32, "size": 1024, "step": 24, "extra": 1},
    )
    parsed = parse_spec(spec)
    assert parsed.checkpoint_steps == 5
    assert parsed.checkpoint_upload == CheckpointUpload(presigned_put=("https://s3/a?sig=1", "http://s3/b"))
    assert parsed.resume_from is None
    assert parsed.resume_archive == ResumeArchive(step=24, size=1024, sha256="ab" * 32, url="https://s3/c?sig=2")
    assert parsed.unknown_fields == ("resume_from.extra",)
    spec["checkpoint_upload"] = {"dir": "/jobs/x/archives"}
    spec["resume_from"] = "/ckpt/checkpoint-3"
    parsed = parse_spec(spec)
    assert parsed.checkpoint_upload == CheckpointUpload(dir="/jobs/x/archives")
    assert parsed.resume_from == "/ckpt/checkpoint-3" and parsed.resume_archive is None


GOOD_ARCHIVE = {"archive": "/a/checkpoint-3.tar", "sha256": "a" * 64, "size": 10240, "step": 3}


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("checkpoint_steps", 0, "spec field `checkpoint_steps`: expected an integer ≥ 1, got 0"),
        ("checkpoint_steps", "5", "spec field `checkpoint_steps`: expected an integer"),
        ("checkpoint_steps", True, "spec field `checkpoint_steps`: expected an integer"),
        ("checkpoint_upload", "/dir", "spec field `checkpoint_upload`: expected a JSON object"),
        ("checkpoint_upload", {}, 'spec field `checkpoint_upload`: expected exactly one of "dir" or "presigned_put"'),
        ("checkpoint_upload", {"dir": "/d", "presigned_put": ["https://s3/a"]}, "exactly one of"),
        ("checkpoint_upload", {"presigned_put": []}, "spec field `checkpoint_upload.presigned_put`: expected a non-empty list"),
        ("checkpoint_upload", {"presigned_put": "https://s3/a"}, "`checkpoint_upload.presigned_put`: expected a non-empty list"),
        ("checkpoint_upload", {"presigned_put": ["https://s3/a", "ftp://s3/b"]}, "spec field `checkpoint_upload.presigned_put[1]`: expected an http(s) URL"),
        ("checkpoint_upload", {"dir": ""}, "spec field `checkpoint_upload.dir`: expected a non-empty string"),
        ("resume_from", 3, "spec field `resume_from`: expected a checkpoint folder (a string) or an archive object"),
        ("resume_from", "", "spec field `resume_from`: expected a non-empty string"),
        ("resume_from", {**GOOD_ARCHIVE, "url": "https://s3/x"}, 'spec field `resume_from`: expected exactly one of "archive" or "url"'),
        ("resume_from", {k: v for k, v in GOOD_ARCHIVE.items() if k != "archive"}, "exactly one of"),
        ("resume_from", {k: v for k, v in GOOD_ARCHIVE.items() if k != "sha256"}, "spec field `resume_from.sha256` is missing"),
        ("resume_from", {**GOOD_ARCHIVE, "sha256": "xyz"}, "spec field `resume_from.sha256`: expected 64 hexadecimal digits"),
        ("resume_from", {**GOOD_ARCHIVE, "size": 0}, "spec field `resume_from.size`: expected an integer ≥ 1"),
        ("resume_from", {k: v for k, v in GOOD_ARCHIVE.items() if k != "step"}, "spec field `resume_from.step` is missing"),
        ("resume_from", {**GOOD_ARCHIVE, "step": "3"}, "spec field `resume_from.step`: expected an integer"),
        ("resume_from", {"url": "s3://b/k", **{k: v for k, v in GOOD_ARCHIVE.items() if k != "archive"}}, "spec field `resume_from.url`: expected an http(s) URL"),
    ],
)
def test_bad_checkpoint_fields_name_the_field(spec, field, value, message):
    spec[field] = value
    with pytest.raises(SpecError) as raised:
        parse_spec(spec)
    assert message in str(raised.value)


# ------------------------------------------------------------------------ a presigned-URL stand-in


class _Store(BaseHTTPRequestHandler):
    """PUT stores the body under the path, GET serves it; paths in ``failing`` answer 500."""

    objects: dict[str, bytes] = {}
    failing: set[str] = set()
    puts: list[str] = []

    def do_PUT(self):
        path = self.path.split("?")[0]
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.puts.append(path)
        if path in self.failing:
            self._answer(500)
            return
        self.objects[path] = body
        self._answer(200)

    def do_GET(self):
        body = self.objects.get(self.path.split("?")[0])
        self._answer(200 if body is not None else 404, body or b"")

    def _answer(self, status: int, body: bytes = b""):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def store(monkeypatch):
    monkeypatch.setattr("brightrun_trainer.transfer.FIRST_BACKOFF_SECONDS", 0.01)
    _Store.objects, _Store.failing, _Store.puts = {}, set(), []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Store)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_slots_are_used_in_order_and_their_end_is_said_once(tmp_path, store):
    folders = [make_folder(tmp_path / f"c{step}", step) for step in (2, 4, 6)]
    events = Events()
    archives = CheckpointStore(CheckpointUpload(presigned_put=(f"{store}/ckpt/0?{SECRET}",)), events.emitter)
    first, second, third = (archives.store(folder, step) for folder, step in zip(folders, (2, 4, 6)))
    assert first["object"]["index"] == 0 and "archive" not in first
    assert _Store.objects["/ckpt/0"] == pack_bytes(folders[0])[0]
    assert first["object"]["sha256"] == sha256(_Store.objects["/ckpt/0"])
    assert second == third == {}
    (warning,) = events.warnings()
    assert "presigned checkpoint URLs are used up" in warning and "step 4" in warning
    assert not list((tmp_path / "c2").glob(".upload-*"))  # the temporary archive is removed


def test_a_folder_that_cannot_be_packed_is_a_warning(tmp_path):
    events = Events()
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")
    archives = CheckpointStore(CheckpointUpload(dir=str(blocked)), events.emitter)
    assert archives.store(make_folder(tmp_path, 3), 3) == {}
    (warning,) = events.warnings()
    assert warning.startswith("the checkpoint at step 3 was not stored: ") and "stays on this worker" in warning
    assert archives.store(make_folder(tmp_path / "b", 6), 6) == {}  # slot 1 was still counted


# ------------------------------------------------------------------------ the trainer, end to end
#
# 18 records, split 0.1 with seed 42: 15 training examples, 4 steps of 4 per epoch, 2 epochs:
# 8 steps. checkpoint_steps 3 checkpoints steps 3 and 6, the epoch end step 4; not step 8.

STEPS = 8
CHECKPOINT_STEPS = [3, 4, 6]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("ckpt-data") / "train.jsonl", chat_records(18))


def checkpoint_spec(root: Path, dataset: Path, **overrides):
    return make_spec(root, {"path": str(dataset)}, hyperparameters={"epochs": 2}, **overrides)


@pytest.fixture(scope="module")
def stored_in_a_folder(tmp_path_factory, dataset):
    root = tmp_path_factory.mktemp("ckpt-dir")
    spec = checkpoint_spec(root, dataset, checkpoint_steps=3, checkpoint_upload={"dir": str(root / "archives")})
    run = run_in_process(write_spec(root / "spec.json", spec))
    assert run.returncode == 0, run.describe()
    return root, spec, run


def test_a_folder_receives_every_checkpoint_as_an_archive(stored_in_a_folder):
    root, _, run = stored_in_a_folder
    assert run.metric_steps == list(range(1, STEPS + 1))
    checkpoints = run.of_type("checkpoint")
    assert [c["step"] for c in checkpoints] == CHECKPOINT_STEPS
    metric_seq = {m["step"]: m["seq"] for m in run.of_type("metric")}
    for index, checkpoint in enumerate(checkpoints):
        step = checkpoint["step"]
        assert metric_seq[step] < checkpoint["seq"]
        archive = Path(checkpoint["archive"])
        assert archive == root / "archives" / f"checkpoint-{step}.tar" and archive.is_absolute()
        data = archive.read_bytes()
        stored = checkpoint["object"]
        assert stored["index"] == index and stored["size"] == len(data) and stored["sha256"] == sha256(data)
        assert stored["seconds"] >= 0
        assert stat.S_IMODE(archive.stat().st_mode) == 0o600
        assert data == pack_bytes(Path(checkpoint["path"]))[0]  # the folder, packed again: the same bytes
        with tarfile.open(archive) as tar:
            assert f"checkpoint-{step}/trainer_state.json" in tar.getnames()
    assert sorted(p.name for p in (root / "archives").iterdir()) == [f"checkpoint-{s}.tar" for s in CHECKPOINT_STEPS]
    # The epoch-end checkpoint is saved after the evaluation: its metric keeps the validation loss.
    assert next(m for m in run.of_type("metric") if m["step"] == 4)["validation_loss"] is not None


def test_resuming_from_an_archive_continues_exactly(stored_in_a_folder, tmp_path, dataset):
    _, _, reference = stored_in_a_folder
    losses = {m["step"]: m["training_loss"] for m in reference.of_type("metric")}
    checkpoint = next(c for c in reference.of_type("checkpoint") if c["step"] == 3)  # mid-epoch
    stored = checkpoint["object"]
    spec = checkpoint_spec(tmp_path, dataset, resume_from={
        "archive": checkpoint["archive"], "sha256": stored["sha256"], "size": stored["size"], "step": 3})
    resumed = run_in_process(write_spec(tmp_path / "resume.json", spec))
    assert resumed.returncode == 0, resumed.describe()
    folder = tmp_path / "checkpoints" / "resumed-3" / "checkpoint-3"
    assert (folder / "trainer_state.json").is_file()
    training = next(e for e in resumed.of_type("stage") if e["stage"] == "training")
    assert str(folder) in training["message"]
    assert resumed.metric_steps == list(range(4, STEPS + 1))
    for metric in resumed.of_type("metric"):
        assert metric["training_loss"] == pytest.approx(losses[metric["step"]], abs=1e-4)
    assert resumed.events[-1]["summary"]["total_steps"] == STEPS


@pytest.mark.parametrize("damage", ["flipped byte", "wrong size"])
def test_a_damaged_archive_ends_the_run_before_training(stored_in_a_folder, tmp_path, dataset, damage):
    _, _, reference = stored_in_a_folder
    checkpoint = next(c for c in reference.of_type("checkpoint") if c["step"] == 3)
    stored = checkpoint["object"]
    archive = tmp_path / "checkpoint-3.tar"
    shutil.copyfile(checkpoint["archive"], archive)
    recorded = {"archive": str(archive), "sha256": stored["sha256"], "size": stored["size"], "step": 3}
    if damage == "flipped byte":
        data = bytearray(archive.read_bytes())
        data[len(data) // 3] ^= 0x01
        archive.write_bytes(bytes(data))
    else:
        recorded["size"] += 1
    spec = checkpoint_spec(tmp_path, dataset, resume_from=recorded)
    run = run_in_process(write_spec(tmp_path / "spec.json", spec))
    assert run.returncode == 1, run.describe()
    error = run.events[-1]
    assert error["type"] == "error" and error["kind"] == "training"
    what = "sha256" if damage == "flipped byte" else "size"
    assert f"the checkpoint at step 3 does not match its recorded {what}" in error["reason"], error
    assert not run.of_type("metric") and run.stages == ["initializing"]
    assert not (tmp_path / "checkpoints" / "resumed-3" / "checkpoint-3").exists()


def test_presigned_urls_receive_the_archives_and_a_failing_one_is_a_warning(tmp_path, dataset, store):
    urls = [f"{store}/ckpt/{i}?{SECRET}" for i in range(4)]
    _Store.failing = {"/ckpt/1"}
    spec = checkpoint_spec(tmp_path, dataset, checkpoint_steps=3, checkpoint_upload={"presigned_put": urls})
    run = run_in_process(write_spec(tmp_path / "spec.json", spec))
    assert run.returncode == 0, run.describe()
    assert run.events[-1]["type"] == "done"
    checkpoints = run.of_type("checkpoint")
    assert [c["step"] for c in checkpoints] == CHECKPOINT_STEPS
    ok3, failed4, ok6 = checkpoints
    for checkpoint, slot in ((ok3, 0), (ok6, 2)):
        body = _Store.objects[f"/ckpt/{slot}"]
        assert checkpoint["object"]["index"] == slot and "archive" not in checkpoint
        assert checkpoint["object"]["size"] == len(body) and checkpoint["object"]["sha256"] == sha256(body)
        assert tarfile.open(fileobj=io.BytesIO(body)).getnames()[0] == f"checkpoint-{checkpoint['step']}"
        # Stored, and the run completed: the worker keeps no copy (a long-lived worker's disk
        # would fill up).
        assert not Path(checkpoint["path"]).exists()
    # Not stored: the worker's folder is its only copy, and it stays.
    assert "object" not in failed4 and "archive" not in failed4 and Path(failed4["path"]).is_dir()
    assert _Store.puts.count("/ckpt/1") == 4  # retried as adapter uploads are
    assert "/ckpt/3" not in _Store.puts  # the spare slot stays unused
    (warning,) = [m for m in (e["message"] for e in run.of_type("log") if e["level"] == "warning") if "checkpoint" in m]
    assert "the checkpoint at step 4 was not stored" in warning and "HTTP 500" in warning
    assert warning_seq(run, warning) < failed4["seq"]
    assert all("secret" not in json.dumps(event) for event in run.events)
    assert not list((tmp_path / "checkpoints").glob(".upload-*"))

    # The uploaded step-6 archive, fetched back by a presigned GET, resumes the run.
    resume = {"url": f"{store}/ckpt/2?{SECRET}", "sha256": ok6["object"]["sha256"], "size": ok6["object"]["size"], "step": 6}
    again = checkpoint_spec(tmp_path / "r", dataset, resume_from=resume)
    (tmp_path / "r").mkdir()
    resumed = run_in_process(write_spec(tmp_path / "r" / "spec.json", again))
    assert resumed.returncode == 0, resumed.describe()
    losses = {m["step"]: m["training_loss"] for m in run.of_type("metric")}
    assert resumed.metric_steps == [7, 8]
    for metric in resumed.of_type("metric"):
        assert metric["training_loss"] == pytest.approx(losses[metric["step"]], abs=1e-4)
    assert all("secret" not in json.dumps(event) for event in resumed.events)
    assert not list((tmp_path / "r" / "checkpoints" / "resumed-6").glob(".download-*"))


def warning_seq(run, message: str) -> int:
    return next(e["seq"] for e in run.of_type("log") if e["message"] == message)


def test_an_archive_url_gone_from_storage_is_a_training_error(tmp_path, dataset, store):
    resume = {"url": f"{store}/ckpt/missing?{SECRET}", "sha256": "a" * 64, "size": 10240, "step": 6}
    run = run_in_process(write_spec(tmp_path / "spec.json", checkpoint_spec(tmp_path, dataset, resume_from=resume)))
    assert run.returncode == 1, run.describe()
    error = run.events[-1]
    assert error["kind"] == "training" and "the checkpoint at step 6 is missing from storage" in error["reason"]
    assert "HTTP 404" in error["reason"] and "secret" not in json.dumps(run.events)
    assert not run.of_type("metric")


def test_the_stop_checkpoint_is_uploaded_before_the_exit(tmp_path, dataset, store, monkeypatch):
    """In-process: a stop requested during step 2 checkpoints step 2, uploads it, exits 143."""
    import transformers

    from brightrun_trainer.signals import StopSignal

    stop = StopSignal()
    original = transformers.Trainer.training_step

    def stop_in_step_two(self, model, inputs, *args, **kwargs):
        if self.state.global_step == 1:
            stop.request(signal.SIGTERM)
        return original(self, model, inputs, *args, **kwargs)

    monkeypatch.setattr(transformers.Trainer, "training_step", stop_in_step_two)
    urls = [f"{store}/ckpt/{i}?{SECRET}" for i in range(2)]
    adapter = {name: f"{store}/adapter/{name}?{SECRET}" for name in ("adapter_config.json", "adapter_model.safetensors")}
    spec = checkpoint_spec(
        tmp_path, dataset, checkpoint_upload={"presigned_put": urls}, output={"presigned_put": adapter}
    )  # a remote worker's spec
    run = run_in_process(write_spec(tmp_path / "spec.json", spec), stop=stop)
    assert run.returncode == 143, run.describe()
    checkpoint, stopped = run.events[-2:]
    assert checkpoint["type"] == "checkpoint" and checkpoint["step"] == 2
    body = _Store.objects["/ckpt/0"]
    assert checkpoint["object"] == {**checkpoint["object"], "index": 0, "size": len(body), "sha256": sha256(body)}
    assert stopped["type"] == "log" and "stopped by signal 15 at step 2" in stopped["message"]
    assert "uploaded to storage" in stopped["message"]
    assert not run.of_type("error") and not run.of_type("done")


def test_the_length_grouped_order_depends_on_the_seed_and_the_epoch_only():
    """What makes a resume in the middle of a later epoch exact on padded batching: the order
    does not come from the global RNG, which a resumed process has in another state."""
    import torch

    from brightrun_trainer.train import EpochSeededLengthGroupedSampler

    lengths = [10 + (i * 7) % 40 for i in range(40)]
    sampler = EpochSeededLengthGroupedSampler(4, lengths, seed=42)
    first = list(sampler)
    torch.manual_seed(1234)
    torch.rand(100)
    assert list(sampler) == first and sorted(first) == list(range(40))
    sampler.set_epoch(1)
    second = list(sampler)
    assert second != first and sorted(second) == list(range(40))
    fresh = EpochSeededLengthGroupedSampler(4, lengths, seed=42)
    fresh.set_epoch(1)
    assert list(fresh) == second
