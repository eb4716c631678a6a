"""Moving files over presigned HTTP URLs with the standard library only.

Datasets may arrive as a presigned GET URL and adapters may leave through presigned PUT
URLs (PROTOCOL.md). Both are plain HTTP, so ``urllib`` is enough and the trainer's
environment needs no extra client. Transient failures (connection errors, HTTP 5xx and
429) are retried with backoff; anything else fails at once as an infrastructure error.
"""

from __future__ import annotations

import http.client
import os
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from .errors import InfrastructureError

ATTEMPTS = 4
FIRST_BACKOFF_SECONDS = 1.0
TIMEOUT_SECONDS = 60
CHUNK_BYTES = 1 << 20


def download(url: str, destination: Path, what: str = "the dataset") -> Path:
    """Stream ``url`` into ``destination`` (written atomically), retrying transient failures.

    ``what`` names the file in the failure's reason ("download of WHAT from URL failed")."""
    partial = destination.with_name(destination.name + ".partial")

    def fetch() -> None:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out, CHUNK_BYTES)

    _with_retries(f"download of {what} from {_redact(url)}", fetch)
    os.replace(partial, destination)
    return destination


def upload(path: Path, url: str) -> None:
    """PUT one file to a presigned URL, streaming it from disk."""
    size = path.stat().st_size

    def put() -> None:
        with open(path, "rb") as body:
            request = urllib.request.Request(
                url,
                data=body,
                method="PUT",
                headers={"Content-Length": str(size), "Content-Type": "application/octet-stream"},
            )
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
                response.read()

    _with_retries(f"upload of {path.name} to {_redact(url)}", put)


def _with_retries(what: str, action: Callable[[], None]) -> None:
    backoff = FIRST_BACKOFF_SECONDS
    for attempt in range(1, ATTEMPTS + 1):
        try:
            action()
            return
        # urllib's URLError and HTTPError are OSErrors too; a body cut short (IncompleteRead) is not.
        except (OSError, http.client.HTTPException) as exc:
            if attempt == ATTEMPTS or not _retryable(exc):
                raise InfrastructureError(f"{what} failed: {_describe(exc)}") from exc
        time.sleep(backoff)
        backoff *= 2


def redact_url(url: str) -> str:
    """A URL without its query string: presigned signatures are credentials."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


_redact = redact_url


def http_status(exc: BaseException) -> int | None:
    """The HTTP status behind a failed transfer (an :class:`InfrastructureError` raised here
    keeps the ``HTTPError`` as its cause), or ``None`` when it was not an HTTP answer."""
    cause = exc if isinstance(exc, urllib.error.HTTPError) else exc.__cause__
    return cause.code if isinstance(cause, urllib.error.HTTPError) else None


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code >= 500 or exc.code == 429
    return isinstance(exc, (urllib.error.URLError, ConnectionError, TimeoutError, http.client.IncompleteRead))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__
