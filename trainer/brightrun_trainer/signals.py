"""Graceful stop on SIGTERM (and SIGINT), as PROTOCOL.md requires.

How a stop is honoured depends on the phase. While the job is starting (reading data,
loading the model) there is nothing worth saving, so the handler raises
:class:`~brightrun_trainer.errors.StopRequested` at once and the run ends. Once training
has begun the handler only sets a flag: the training callback sees it at the next step
boundary, writes a resumable checkpoint and ends training; the runner then exits with 143.
A second signal while a graceful stop is pending ends the process immediately.
"""

from __future__ import annotations

import os
import signal
import threading

from .errors import StopRequested

HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignal:
    """The process-wide stop request, shared by the runner and the training callback."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._deferred = False
        self.signum: int | None = None

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    @property
    def exit_status(self) -> int:
        """The conventional ``128 + signal`` status: 143 for SIGTERM."""
        return 128 + (self.signum or signal.SIGTERM)

    def install(self) -> StopSignal:
        """Handle SIGTERM/SIGINT in the main thread from now on."""
        for signum in HANDLED_SIGNALS:
            signal.signal(signum, self._handle)
        return self

    def defer(self) -> None:
        """From now on a signal only sets the flag (training checkpoints at a step boundary)."""
        self._deferred = True

    def request(self, signum: int = signal.SIGTERM) -> None:
        """Record a stop request (what the handler does; tests call it directly)."""
        self.signum = int(signum)
        self._event.set()

    def raise_if_requested(self) -> None:
        if self.requested:
            raise StopRequested(self.signum or signal.SIGTERM)

    def _handle(self, signum: int, frame) -> None:
        if self.requested:
            os._exit(128 + signum)
        self.request(signum)
        if not self._deferred:
            raise StopRequested(signum)
