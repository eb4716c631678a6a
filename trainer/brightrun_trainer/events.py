"""The JSON-lines event stream on stdout (PROTOCOL.md, "Events").

Stdout belongs to the protocol: the engine parses every line of it. :func:`claim_stdout`
therefore takes the real stdout for events and points file descriptor 1 and ``sys.stdout``
at stderr, so that nothing a library prints (``print``, C extensions, progress bars) can
corrupt the stream.
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from .failure import FailureMarker

STAGES = ("initializing", "training", "validating", "evaluating", "saving", "completed")
LOG_LEVELS = ("info", "warning", "error")


def claim_stdout() -> TextIO:
    """Reserve the process's stdout for events and send everything else to stderr.

    Returns a line-buffered text stream on a duplicate of the original stdout.
    """
    sys.stdout.flush()
    events_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return io.TextIOWrapper(
        io.FileIO(events_fd, mode="w", closefd=True), encoding="utf-8", line_buffering=True
    )


class EventEmitter:
    """Writes protocol events, one JSON object per line, numbered and flushed at once.

    Thread-safe: the sequence number and the write happen under one lock, so lines never
    interleave and ``seq`` is strictly increasing in file order. If the reader goes away
    (a broken pipe) or the stream cannot be written (a full disk), the emitter stops writing
    instead of failing the training run: the adapter still lands in its output location.
    That is said on stderr for people and, when the launcher asked for one, in the failure
    marker for the engine (PROTOCOL.md, "Failure marker").
    """

    def __init__(
        self,
        stream: TextIO,
        clock=time.time,
        start_seq: int = 0,
        marker: FailureMarker | None = None,
    ):
        self._stream = stream
        self._clock = clock
        self._lock = threading.Lock()
        self._seq = start_seq
        self._broken = False
        self._marker = marker

    @property
    def marker(self) -> FailureMarker | None:
        """The failure marker the launcher asked for, if any."""
        return self._marker

    @property
    def broken(self) -> bool:
        """Whether the event stream failed (nothing is written to it any more)."""
        return self._broken

    @property
    def next_seq(self) -> int:
        """The ``seq`` the next event gets (a re-executed trainer continues from it)."""
        return self._seq

    @property
    def stream(self) -> TextIO:
        return self._stream

    def emit(self, event_type: str, **fields: Any) -> dict[str, Any]:
        """Write one event and return it as written (non-finite floats become null)."""
        with self._lock:
            event = {"type": event_type, "seq": self._seq, "ts": self._clock()}
            event.update(_json_safe(fields))
            self._seq += 1
            self._write(json.dumps(event, allow_nan=False, separators=(",", ":")))
        return event

    def stage(self, stage: str, message: str) -> None:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}")
        self.emit("stage", stage=stage, message=message)

    def log(self, level: str, message: str) -> None:
        if level not in LOG_LEVELS:
            raise ValueError(f"unknown log level {level!r}")
        self.emit("log", level=level, message=message)

    def info(self, message: str) -> None:
        self.log("info", message)

    def warning(self, message: str) -> None:
        self.log("warning", message)

    def metric(
        self,
        *,
        step: int,
        total_steps: int,
        epoch: float,
        training_loss: float | None,
        learning_rate: float | None,
        gradient_norm: float | None,
        throughput: float | None,
        gpu_utilization: float | None,
        validation_loss: float | None,
        peak_memory_gb: float | None = None,
        preference: dict[str, float | None] | None = None,
    ) -> None:
        """``preference`` (the preference methods' rewards and log-probs) is written only when
        given: an sft run's metric events do not carry the key."""
        extra = {} if preference is None else {"preference": preference}
        self.emit(
            "metric",
            step=step,
            total_steps=total_steps,
            epoch=epoch,
            training_loss=training_loss,
            learning_rate=learning_rate,
            gradient_norm=gradient_norm,
            throughput=throughput,
            gpu_utilization=gpu_utilization,
            validation_loss=validation_loss,
            peak_memory_gb=peak_memory_gb,
            **extra,
        )

    def checkpoint(
        self,
        *,
        step: int,
        epoch: float,
        loss: float | None,
        path: str,
        stored: dict[str, Any] | None = None,
        archive: str | None = None,
    ) -> None:
        """``stored`` is the archive's ``object`` (absent when it was not stored); ``archive`` its
        file when ``checkpoint_upload`` is a folder (PROTOCOL.md, "Checkpoint storage")."""
        fields: dict[str, Any] = {"step": step, "epoch": epoch, "loss": loss, "path": path}
        if stored is not None:
            fields["object"] = stored
        if archive is not None:
            fields["archive"] = archive
        self.emit("checkpoint", **fields)

    def artifact(self, *, directory: str, files: list[dict[str, Any]]) -> None:
        self.emit("artifact", dir=directory, files=files)

    def done(self, summary: dict[str, Any]) -> None:
        self.emit("done", summary=summary)

    def error(self, *, kind: str, reason: str, detail: str) -> None:
        self.emit("error", kind=kind, reason=reason, detail=detail)

    def _write(self, line: str) -> None:
        if self._broken:
            return
        try:
            self._stream.write(line + "\n")
            self._stream.flush()
        except (BrokenPipeError, ValueError, OSError) as exc:
            self._broken = True
            print(f"brightrun-trainer: event stream closed ({exc}); continuing", file=sys.stderr)
            if self._marker is not None:
                self._marker.record_stream_broken(exc, self._stream)

    def record_failure(self, exc: BaseException) -> None:
        """After the run's ``error`` event: a full disk also goes into the failure marker,
        since the event itself was most likely lost on the same disk."""
        if self._marker is not None:
            self._marker.record_if_disk_full(exc)


def _json_safe(value: Any) -> Any:
    """Replace NaN and infinities (not JSON) with null, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value
