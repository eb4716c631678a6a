"""The failure marker (PROTOCOL.md, "Failure marker"): a small JSON file saying that the
event stream broke, or that the run died of a full disk, in a form the engine reads
without parsing log text.

A launcher that can read the worker's files asks for it by naming the file in
``BRIGHTRUN_FAILURE_MARKER`` (the local backend does); without that variable nothing is
written. The signals it carries are exactly the ones the event stream cannot: when stdout
breaks (its file system is full, its reader went away) the trainer trains on without
reporting, and when the disk fills up its ``error`` event is usually lost with the rest.

Written so that a full disk does not stop it: the file's space is reserved when the trainer
starts (``<marker>.tmp``, 4 KiB of spaces), and a marker is written *into* that space, which
needs no new block on the usual file systems, then renamed into place. A later marker
overwrites the first in place, padded to the same size (JSON allows trailing whitespace).
Anything that still fails is said on stderr and otherwise ignored: the engine then falls
back on what it can see for itself (free space, a missing exit status).
"""

from __future__ import annotations

import errno as errno_codes
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Mapping

#: The environment variable naming the marker file (an absolute path).
MARKER_VARIABLE = "BRIGHTRUN_FAILURE_MARKER"
MARKER_VERSION = 1
EVENT_STREAM_BROKEN = "event_stream_broken"
DISK_FULL = "disk_full"
KINDS = (EVENT_STREAM_BROKEN, DISK_FULL)
#: Bytes reserved for the marker when the trainer starts.
RESERVED_BYTES = 4096
MESSAGE_MAX_CHARS = 500
PATH_MAX_CHARS = 1024
#: The errnos of a full file system: no space left, and an exhausted quota.
FULL_ERRNOS = frozenset({errno_codes.ENOSPC, errno_codes.EDQUOT})
#: How libraries that do not raise an ``OSError`` (torch's and safetensors' writers) word a
#: full disk in their exceptions. Only the trainer's own exceptions are looked at, never
#: log text.
_FULL_TEXTS = {
    "No space left on device": errno_codes.ENOSPC,
    "Disk quota exceeded": errno_codes.EDQUOT,
    "StorageFull": errno_codes.ENOSPC,
}


class FailureMarker:
    """Writes the marker file at ``path``; thread-safe, never raises."""

    def __init__(self, path: str | os.PathLike[str], clock=time.time):
        self.path = Path(os.path.abspath(path))
        self.reserve_path = self.path.with_name(self.path.name + ".tmp")
        self._clock = clock
        self._lock = threading.Lock()
        #: The file holding reserved space: the reserve, then the marker once written.
        self._holder: Path | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> FailureMarker | None:
        """The marker the launcher asked for, its space reserved; ``None`` when none was."""
        path = environ.get(MARKER_VARIABLE, "").strip()
        if not path:
            return None
        marker = cls(path)
        marker.reserve()
        return marker

    def reserve(self) -> None:
        """Set the marker's space aside now, while the disk still has some (best effort)."""
        with self._lock:
            try:
                with open(self.reserve_path, "ab") as handle:
                    missing = RESERVED_BYTES - handle.tell()
                    if missing > 0:
                        handle.write(b" " * missing)
                self._holder = self.reserve_path
            except OSError as exc:
                _say(f"could not reserve space for the failure marker {self.reserve_path}: {exc}")

    def discard_reserve(self) -> None:
        """Remove the reserve when no marker was written (the run ended without one)."""
        with self._lock:
            if self._holder == self.reserve_path:
                try:
                    self.reserve_path.unlink()
                except OSError:
                    pass
                self._holder = None

    def write(self, kind: str, *, errno: int | None, path: str | None, message: str) -> bool:
        """Write (or replace) the marker; ``False`` when even that failed."""
        if kind not in KINDS:
            raise ValueError(f"unknown failure marker kind {kind!r}")
        record: dict[str, Any] = {
            "version": MARKER_VERSION,
            "kind": kind,
            "errno": errno if isinstance(errno, int) else None,
            "path": _bounded(path, PATH_MAX_CHARS) if path else None,
            "message": _bounded(" ".join(str(message).split()), MESSAGE_MAX_CHARS),
            "ts": self._clock(),
        }
        text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            try:
                self._write_locked(text.encode("utf-8"))
                return True
            except OSError as exc:
                _say(f"could not write the failure marker {self.path}: {exc}")
                return False

    def _write_locked(self, data: bytes) -> None:
        holder = self._holder if self._holder is not None and self._holder.exists() else None
        if holder is None:
            holder = self.reserve_path
            with open(holder, "wb") as handle:
                handle.write(data + b"\n")
        else:
            # Into the space already held: padded, never shrunk, so no block is freed and
            # none is needed.
            size = holder.stat().st_size
            padded = data.ljust(size - 1, b" ") + b"\n" if size > len(data) else data + b"\n"
            with open(holder, "r+b") as handle:
                handle.write(padded)
        if holder != self.path:
            os.replace(holder, self.path)
        self._holder = self.path

    def record_stream_broken(self, exc: BaseException, stream: Any = None) -> bool:
        """The event stream failed with ``exc``; the trainer goes on without events."""
        return self.write(
            EVENT_STREAM_BROKEN,
            errno=getattr(exc, "errno", None),
            path=_stream_path(stream),
            message=f"event stream closed ({exc or type(exc).__name__})",
        )

    def record_if_disk_full(self, exc: BaseException) -> bool:
        """Write a ``disk_full`` marker when ``exc`` (or its cause) is a full disk."""
        found = disk_full_cause(exc)
        if found is None:
            return False
        code, filename, cause = found
        return self.write(DISK_FULL, errno=code, path=filename, message=f"{type(cause).__name__}: {cause}")


def disk_full_cause(exc: BaseException) -> tuple[int | None, str | None, BaseException] | None:
    """``(errno, file name, exception)`` when ``exc`` or an exception in its chain is a full
    file system or an exhausted quota; else ``None``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 20:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in FULL_ERRNOS:
            filename = current.filename if isinstance(current.filename, str) else None
            return current.errno, filename, current
        text = str(current)
        for needle, code in _FULL_TEXTS.items():
            if needle in text:
                return code, None, current
        current = current.__cause__ or current.__context__
    return None


def _stream_path(stream: Any) -> str | None:
    """The file a stream writes to, when it is a file (not a pipe or a socket)."""
    try:
        target = os.readlink(f"/proc/self/fd/{stream.fileno()}")
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return None
    return target if target.startswith("/") else None


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _say(message: str) -> None:
    try:
        print(f"brightrun-trainer: {message}", file=sys.stderr, flush=True)
    except Exception:
        pass
