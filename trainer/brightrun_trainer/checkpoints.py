"""Checkpoint archives (PROTOCOL.md, "Checkpoint storage").

A checkpoint folder (``<checkpoint_dir>/checkpoint-<step>``, the Hugging Face Trainer's) is
packed into one uncompressed POSIX tar whose bytes depend only on the folder's file names and
contents (sorted members, mtime 0, uid/gid 0, mode 0600), so the same folder always gives the
same archive and the same sha256. :class:`CheckpointStore` writes each archive where the spec's
``checkpoint_upload`` says (a folder, or the next presigned PUT URL); a failure there is a
warning, never the run's end.

The other way, :func:`fetch_resume_checkpoint` fetches an archive named by ``resume_from``,
checks its size and sha256 before reading a single member, and extracts it member by member
(regular files and folders under ``checkpoint-<step>/`` only: no links, devices, absolute paths
or ``..``) into ``<checkpoint_dir>/resumed-<step>/checkpoint-<step>``, which the run then
resumes from as from any checkpoint folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import CheckpointError, InfrastructureError, one_line_reason
from .events import EventEmitter
from .spec import CheckpointUpload, ResumeArchive
from .transfer import download, http_status, redact_url, upload

#: Files in the archive; the folder entry is ``0700``.
FILE_MODE = 0o600
DIRECTORY_MODE = 0o700
ARCHIVE_FORMAT = tarfile.PAX_FORMAT  # POSIX.1-2001: plain ustar headers unless a name needs more
#: The file the Trainer writes last into a checkpoint; an archive without it is no checkpoint.
TRAINER_STATE = "trainer_state.json"
#: Written beside an extracted folder once it is complete: the archive's sha256.
EXTRACTED_MARKER = ".extracted-sha256"
_CHUNK = 1 << 20
_ADVICE = "resume from an earlier checkpoint or from scratch"


@dataclass(frozen=True)
class PackedArchive:
    size: int
    sha256: str


# --------------------------------------------------------------------------- packing


class _HashingWriter:
    """A write-only file that hashes and counts what passes through it."""

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self._digest = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        self._raw.write(data)
        self._digest.update(data)
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self._raw.flush()

    def result(self) -> PackedArchive:
        return PackedArchive(self.size, self._digest.hexdigest())


def checkpoint_files(folder: Path) -> list[str]:
    """The relative POSIX paths of every regular file under ``folder`` (symbolic links are not
    followed nor packed), sorted."""
    found = []
    for directory, subfolders, files in os.walk(folder):
        subfolders.sort()
        for name in files:
            path = Path(directory) / name
            if stat.S_ISREG(os.lstat(path).st_mode):
                found.append(path.relative_to(folder).as_posix())
    return sorted(found)


def pack_checkpoint(folder: Path, out: BinaryIO, root: str | None = None) -> PackedArchive:
    """Write the archive of ``folder`` to ``out``; returns its size and sha256.

    Members: ``ROOT/`` then ``ROOT/<relative path>`` for every regular file, sorted by name;
    ROOT is the folder's name (``checkpoint-<step>``)."""
    folder = Path(folder)
    root = root or folder.name
    writer = _HashingWriter(out)
    with tarfile.open(fileobj=writer, mode="w", format=ARCHIVE_FORMAT) as tar:
        tar.addfile(_entry(root, tarfile.DIRTYPE, DIRECTORY_MODE))
        for relative in checkpoint_files(folder):
            with open(folder / relative, "rb") as handle:
                entry = _entry(f"{root}/{relative}", tarfile.REGTYPE, FILE_MODE)
                entry.size = os.fstat(handle.fileno()).st_size
                tar.addfile(entry, handle)
    writer.flush()
    return writer.result()


def _entry(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    entry = tarfile.TarInfo(name)
    entry.type = kind
    entry.mode = mode
    entry.mtime = 0
    entry.uid = entry.gid = 0
    entry.uname = entry.gname = ""
    return entry


def write_archive(folder: Path, destination: Path, *, durable: bool = True) -> PackedArchive:
    """Pack ``folder`` into ``destination`` through a temporary name and a rename, mode 0600
    whatever the umask (fsynced first when ``durable``)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".partial", dir=destination.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as raw:
            packed = pack_checkpoint(folder, raw)
            raw.flush()
            if durable:
                os.fsync(raw.fileno())
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return packed


class CheckpointStore:
    """Stores each checkpoint of this process where ``checkpoint_upload`` says.

    The n-th checkpoint (counting from 0) is slot n: with ``presigned_put`` it goes to URL n
    (a failed upload does not pass its URL on: the engine maps slots to steps from the
    events), with ``dir`` to ``DIR/checkpoint-<step>.tar``."""

    def __init__(self, target: CheckpointUpload, emitter: EventEmitter):
        self._target = target
        self._emitter = emitter
        self._next = 0
        self._said_exhausted = False
        #: Folders whose archive went to storage (presigned): the worker keeps only the newest.
        self._uploaded: list[Path] = []

    def store(self, folder: str | os.PathLike[str], step: int) -> dict:
        """Pack (and upload) the complete checkpoint ``folder``; returns the ``checkpoint``
        event's extra fields (``object``, and ``archive`` for a folder), empty when it was not
        stored (a ``warning`` log says why)."""
        folder = Path(folder)
        index, self._next = self._next, self._next + 1
        started = time.monotonic()
        extra: dict = {}
        try:
            if self._target.dir is not None:
                destination = Path(os.path.abspath(self._target.dir)) / f"checkpoint-{step}.tar"
                packed = write_archive(folder, destination)
                extra["archive"] = str(destination)
            else:
                urls = self._target.presigned_put or ()
                if index >= len(urls):
                    if not self._said_exhausted:
                        self._said_exhausted = True
                        self._emitter.warning(
                            f"the {len(urls)} presigned checkpoint URLs are used up: the checkpoint at step {step} "
                            "and later ones stay on this worker only"
                        )
                    return {}
                packed = self._upload(folder, step, urls[index])
                self._forget_uploaded(folder)
        except Exception as exc:  # training goes on: the checkpoint folder is still on the worker
            self._emitter.warning(
                f"the checkpoint at step {step} was not stored: {one_line_reason(exc)}; it stays on this worker only"
            )
            return {}
        seconds = round(time.monotonic() - started, 3)
        obj = {"index": index, "size": packed.size, "sha256": packed.sha256, "seconds": seconds}
        return {"object": obj, **extra}

    def _forget_uploaded(self, newest: Path) -> None:
        """A remote worker's disk is not where checkpoints live: once one is in storage, the
        folders of the earlier stored ones (and an archive extracted to resume from) go, so a
        long-lived worker does not fill its disk. The newest stays until the run ends."""
        for old in self._uploaded:
            shutil.rmtree(old, ignore_errors=True)
        self._uploaded = [newest]
        for extracted in newest.parent.glob("resumed-*"):
            shutil.rmtree(extracted, ignore_errors=True)

    def finish(self) -> None:
        """The run completed (its adapter is written): its stored checkpoints' folders go too."""
        for old in self._uploaded:
            shutil.rmtree(old, ignore_errors=True)
        self._uploaded = []

    @staticmethod
    def _upload(folder: Path, step: int, url: str) -> PackedArchive:
        staging = Path(tempfile.mkdtemp(prefix=".upload-", dir=folder.parent))
        try:
            archive = staging / f"checkpoint-{step}.tar"
            packed = write_archive(folder, archive, durable=False)
            upload(archive, url)  # retried as adapter uploads are; logs carry no query string
            return packed
        finally:
            shutil.rmtree(staging, ignore_errors=True)


# --------------------------------------------------------------------------- resuming


def fetch_resume_checkpoint(source: ResumeArchive, checkpoint_dir: str, emitter: EventEmitter) -> str:
    """The folder to resume from for an archive ``resume_from``: fetched, verified, extracted.

    An extraction already completed from the same archive (a marker holds its sha256) is used
    as is: the ranks of a data-parallel run, re-executed after the first process extracted it,
    and a retry on the same worker."""
    step = source.step
    home = Path(os.path.abspath(checkpoint_dir)) / f"resumed-{step}"
    folder = home / f"checkpoint-{step}"
    marker = home / EXTRACTED_MARKER
    if (folder / TRAINER_STATE).is_file() and _read_marker(marker) == source.sha256:
        emitter.info(f"the checkpoint at step {step} was already fetched and checked: resuming from {folder}")
        return str(folder)
    home.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    downloaded = None
    try:
        if source.url is not None:
            emitter.info(f"downloading the checkpoint at step {step} from {redact_url(source.url)}")
            fd, name = tempfile.mkstemp(prefix=".download-", suffix=".tar", dir=home)
            os.close(fd)
            downloaded = archive = Path(name)
            _download(source, archive)
        else:
            archive = Path(source.archive)
            if not archive.is_file():
                raise CheckpointError(
                    f"the archive of the checkpoint at step {step} does not exist: {archive}; {_ADVICE}"
                )
        with open(archive, "rb") as handle:
            verify_archive(handle, source)
            handle.seek(0)
            staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=home))
            try:
                extract_checkpoint(handle, step, staging)
                if folder.exists() or folder.is_symlink():
                    _remove(folder)
                os.replace(staging / f"checkpoint-{step}", folder)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        marker.write_text(source.sha256 + "\n")
    finally:
        if downloaded is not None:
            downloaded.unlink(missing_ok=True)
            downloaded.with_name(downloaded.name + ".partial").unlink(missing_ok=True)
    emitter.info(f"checkpoint at step {step} checked (sha256 {source.sha256[:12]}…) and extracted to {folder}")
    return str(folder)


def _download(source: ResumeArchive, destination: Path) -> None:
    try:
        download(source.url, destination, what=f"the checkpoint at step {source.step}")
    except InfrastructureError as exc:
        status = http_status(exc)
        if status in (404, 410):  # not in storage: trying again will not bring it back
            raise CheckpointError(
                f"the checkpoint at step {source.step} is missing from storage "
                f"({redact_url(source.url)} answered HTTP {status}); {_ADVICE}"
            ) from exc
        raise


def verify_archive(handle: BinaryIO, source: ResumeArchive) -> None:
    """Raise :class:`CheckpointError` unless the open archive has the recorded size and sha256."""
    size = os.fstat(handle.fileno()).st_size
    if size != source.size:
        raise CheckpointError(
            f"the checkpoint at step {source.step} does not match its recorded size "
            f"(expected {source.size} bytes, got {size}); {_ADVICE}"
        )
    digest = hashlib.sha256()
    for chunk in iter(lambda: handle.read(_CHUNK), b""):
        digest.update(chunk)
    got = digest.hexdigest()
    if got != source.sha256:
        raise CheckpointError(
            f"the checkpoint at step {source.step} does not match its recorded sha256 "
            f"(expected {source.sha256}, got {got}); {_ADVICE}"
        )


def extract_checkpoint(handle: BinaryIO, step: int, destination: Path) -> Path:
    """Extract a checkpoint archive into ``destination/checkpoint-<step>``; returns that folder.

    Every member is checked before anything is written: only folders and regular files, all
    under ``checkpoint-<step>/``, no absolute path, no ``.`` or ``..`` part, no name twice, and
    a ``trainer_state.json``. Files are created fresh (mode 0600) with their contents only."""
    root = f"checkpoint-{step}"
    try:
        with tarfile.open(fileobj=handle, mode="r:") as tar:
            members = tar.getmembers()
            _check_members(members, root, step)
            (destination / root).mkdir(mode=DIRECTORY_MODE)
            for member in members:
                target = destination.joinpath(*member.name.split("/"))
                if member.isdir():
                    target.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
                source = tar.extractfile(member)
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(source, out, _CHUNK)
    except tarfile.TarError as exc:
        raise _not_an_archive(step, f"it cannot be read as a tar file ({exc})") from exc
    return destination / root


def _check_members(members: list[tarfile.TarInfo], root: str, step: int) -> None:
    files: set[str] = set()
    seen: set[str] = set()
    for member in members:
        name = member.name
        shown = repr(name[:200])
        if name.startswith("/"):
            raise _not_an_archive(step, f"member {shown} is an absolute path")
        parts = name.split("/")
        if ".." in parts:
            raise _not_an_archive(step, f"member {shown} contains '..'")
        if parts[0] != root or any(part in ("", ".") for part in parts):
            raise _not_an_archive(step, f"member {shown} is not inside {root}/")
        if not (member.isdir() or member.type in (tarfile.REGTYPE, tarfile.AREGTYPE)):
            raise _not_an_archive(step, f"member {shown} is {_kind(member)}, not a file or folder")
        if name == root and not member.isdir():
            raise _not_an_archive(step, f"member {shown} is a file, not the folder {root}/")
        if name in seen:
            raise _not_an_archive(step, f"member {shown} appears twice")
        seen.add(name)
        if not member.isdir():
            files.add(name)
    for name in seen:
        parts = name.split("/")
        for depth in range(2, len(parts)):
            if "/".join(parts[:depth]) in files:
                raise _not_an_archive(step, f"member {name[:200]!r} lies inside a file")
    if f"{root}/{TRAINER_STATE}" not in files:
        raise _not_an_archive(step, f"it has no {root}/{TRAINER_STATE}")


def _kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return "a symbolic link"
    if member.islnk():
        return "a hard link"
    if member.ischr() or member.isblk():
        return "a device"
    if member.isfifo():
        return "a FIFO"
    return f"an entry of tar type {member.type!r}"


def _not_an_archive(step: int, problem: str) -> CheckpointError:
    return CheckpointError(f"the checkpoint at step {step} is not a checkpoint archive: {problem}; {_ADVICE}")


def _read_marker(marker: Path) -> str | None:
    try:
        return marker.read_text().strip()
    except OSError:
        return None


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink()
    else:
        shutil.rmtree(path)
