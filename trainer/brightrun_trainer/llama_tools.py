"""llama.cpp's tools for GGUF exports: the converter scripts and ``llama_cpp`` (llama-cpp-python).

A GGUF export (PROTOCOL.md, "Export mode") is written by llama.cpp's own
``convert_hf_to_gguf.py`` / ``convert_lora_to_gguf.py``, quantized by its
``llama_model_quantize`` and checked by loading it in llama-cpp-python. None of that is on PyPI
as a library except inside llama-cpp-python's sdist, which vendors llama.cpp: its
``vendor/llama.cpp`` holds the scripts with the ``conversion`` package and the ``gguf-py``
they import, of the same llama.cpp revision the compiled ``llama_cpp`` runs. So the sdist is
the one pinned source (``requirements-export.txt``): fetched once by URL with its sha256
checked (``pip download`` cannot fetch it: it compiles llama.cpp just to read its metadata),
the converter extracted into the environment's ``share/brightrun``, and the sdist
``pip install``-ed when ``llama_cpp`` is missing (a compile of several minutes, once per
environment). The converter reads Llama-style tokenizers with ``sentencepiece``.

Two processes installing at once (two first exports, or the environment script beside a
job) take turns on a lock file; the second finds the work done.

``python -m brightrun_trainer.llama_tools`` installs (``scripts/trainer-env.sh`` runs it) and
prints the converter's folder; ``python -m brightrun_trainer.llama_tools quantize SRC DST TYPE``
quantizes a GGUF in a child process, so that a stop request can end it (a C call holds the
main thread until it returns).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import ctypes
import fcntl
import hashlib
import importlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from .errors import InfrastructureError
from .transfer import TIMEOUT_SECONDS, _with_retries, download, redact_url

LLAMA_CPP_VERSION = "0.3.36"
SDIST_NAME = f"llama_cpp_python-{LLAMA_CPP_VERSION}.tar.gz"
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
#: The converter's tokenizer dependency for Llama-style (SentencePiece) vocabularies.
SENTENCEPIECE = "sentencepiece==0.2.1"
DEFAULT_INDEX = "https://pypi.org/simple"
#: What the export needs from the sdist's ``vendor/llama.cpp``: the scripts and the packages
#: they import from beside themselves.
CONVERTER_FILES = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py")
CONVERTER_PACKAGES = ("conversion/", "gguf-py/")
_SDIST_ROOT = f"llama_cpp_python-{LLAMA_CPP_VERSION}/vendor/llama.cpp/"
#: Written last into the converter's folder: a folder without it is an interrupted extraction.
_COMPLETE = ".complete"
#: Lines of a child's output kept for an error's reason.
TAIL_LINES = 40


def tools_folder() -> Path:
    """Where the converter scripts live: inside the running environment, beside its packages."""
    return Path(sys.prefix) / "share" / "brightrun" / f"llama.cpp-{LLAMA_CPP_VERSION}"


def ensure_llama_cpp(emitter=None) -> Path:
    """The converter's folder, with ``llama_cpp`` and ``sentencepiece`` importable: installed on
    first use (network: the pinned sdist; an ``infrastructure`` error names what failed)."""
    folder = tools_folder()
    if _ready(folder):
        return folder
    say = emitter.info if emitter is not None else _to_stderr
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _locked(folder.parent / f".{folder.name}.lock", say):
        if not (folder / _COMPLETE).is_file() or installed_version() != LLAMA_CPP_VERSION:
            with tempfile.TemporaryDirectory(prefix=".sdist-", dir=folder.parent) as scratch:
                sdist = fetch_sdist(Path(scratch), say)
                if not (folder / _COMPLETE).is_file():
                    extract_converter(sdist, folder)
                if installed_version() != LLAMA_CPP_VERSION:
                    say(f"installing llama-cpp-python {LLAMA_CPP_VERSION}: it compiles llama.cpp, several minutes (once per environment)")
                    _pip_install(str(sdist), what=f"llama-cpp-python {LLAMA_CPP_VERSION}")
        if importlib.util.find_spec("sentencepiece") is None:
            say(f"installing {SENTENCEPIECE} (the converter reads Llama-style tokenizers with it)")
            _pip_install(SENTENCEPIECE, what=SENTENCEPIECE)
    importlib.invalidate_caches()
    return folder


def installed_version() -> str | None:
    """The installed llama-cpp-python's version (``None``: not installed), without loading llama.cpp."""
    try:
        return importlib.metadata.version("llama_cpp_python")
    except importlib.metadata.PackageNotFoundError:
        return None


def _ready(folder: Path) -> bool:
    return (
        (folder / _COMPLETE).is_file()
        and installed_version() == LLAMA_CPP_VERSION
        and importlib.util.find_spec("sentencepiece") is not None
    )


@contextlib.contextmanager
def _locked(path: Path, say: Callable[[str], None]) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (released when the process dies, whatever the way)."""
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("waiting for another process installing llama.cpp's tools")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- the sdist


def index_url() -> str:
    """The package index pip would use: ``PIP_INDEX_URL``, else PyPI."""
    return (os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX).rstrip("/")


def fetch_sdist(scratch: Path, say: Callable[[str], None]) -> Path:
    """The pinned sdist in ``scratch``, found through the index's project page and checked
    against its sha256."""
    page = f"{index_url()}/llama-cpp-python/"
    say(f"fetching llama-cpp-python {LLAMA_CPP_VERSION}'s sdist (llama.cpp's converter) from {redact_url(page)}")
    url = sdist_url(page, _read_index(page))
    destination = download(url, scratch / SDIST_NAME, what=f"llama-cpp-python {LLAMA_CPP_VERSION}'s sdist")
    digest = _sha256(destination)
    if digest != SDIST_SHA256:
        raise InfrastructureError(
            f"llama-cpp-python {LLAMA_CPP_VERSION}'s sdist from {redact_url(url)} has sha256 {digest}, expected {SDIST_SHA256}"
        )
    return destination


def _read_index(page: str) -> tuple[str, bytes]:
    """``(content type, body)`` of the index's project page (JSON where the index speaks it)."""
    found: dict[str, tuple[str, bytes]] = {}

    def fetch() -> None:
        accept = "application/vnd.pypi.simple.v1+json, text/html;q=0.5"
        request = urllib.request.Request(page, headers={"Accept": accept})
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            found["page"] = (response.headers.get("Content-Type", ""), response.read())

    _with_retries(f"reading the package index's page of llama-cpp-python ({redact_url(page)})", fetch)
    return found["page"]


def sdist_url(page: str, answer: tuple[str, bytes]) -> str:
    """The sdist's URL on a project page: PEP 691 JSON, or PEP 503 HTML links."""
    content_type, body = answer
    if "json" in content_type:
        files = json.loads(body).get("files", [])
        urls = [entry.get("url", "") for entry in files if entry.get("filename") == SDIST_NAME]
    else:
        links = re.findall(r'href="([^"]+)"', body.decode("utf-8", "replace"))
        links = [link.replace("&amp;", "&") for link in links]
        urls = [link for link in links if urllib.parse.urlsplit(link).path.endswith("/" + SDIST_NAME)]
    if not urls:
        raise InfrastructureError(f"the package index {redact_url(page)} does not list {SDIST_NAME}")
    return urllib.parse.urljoin(page, urls[0])


def extract_converter(sdist: Path, folder: Path) -> None:
    """The converter scripts and their packages from the sdist into ``folder``, renamed into
    place once complete (an interrupted extraction is redone)."""
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        with tarfile.open(sdist) as archive:
            for member in archive:
                relative = member.name[len(_SDIST_ROOT) :] if member.name.startswith(_SDIST_ROOT) else None
                if member.isfile() and relative is not None and _wanted(relative):
                    target = staging / relative
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with archive.extractfile(member) as source, open(target, "wb") as out:
                        shutil.copyfileobj(source, out)
        missing = [name for name in CONVERTER_FILES if not (staging / name).is_file()]
        if missing:
            raise InfrastructureError(f"{SDIST_NAME} has no {', '.join(missing)} under vendor/llama.cpp")
        (staging / _COMPLETE).write_text(LLAMA_CPP_VERSION + "\n")
        shutil.rmtree(folder, ignore_errors=True)
        os.rename(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _wanted(relative: str) -> bool:
    """Whether a file of ``vendor/llama.cpp`` belongs to the converter (no ``..`` escapes)."""
    if ".." in Path(relative).parts:
        return False
    return relative in CONVERTER_FILES or relative.startswith(CONVERTER_PACKAGES)


def _pip_install(requirement: str, *, what: str) -> None:
    command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--quiet", requirement]
    done = run_child(command)
    if done.returncode != 0:
        raise InfrastructureError(f"pip could not install {what} (exit {done.returncode}): {done.last_line()}")


# --------------------------------------------------------------------------- child processes


@dataclass(frozen=True)
class ChildResult:
    returncode: int
    #: The last lines the child wrote (stdout and stderr together).
    tail: tuple[str, ...]

    def last_line(self, pattern: str | None = None) -> str:
        """The last non-empty output line (matching ``pattern`` when one does), for a reason."""
        lines = [line.strip() for line in self.tail if line.strip()]
        if pattern is not None:
            matching = [line for line in lines if re.search(pattern, line)]
            lines = matching or lines
        return lines[-1] if lines else "no output"


def run_child(command: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> ChildResult:
    """Run ``command`` with its output passed on to stderr (for people) and its tail kept.

    The child is killed if this process is interrupted meanwhile (a stop request raises in the
    main thread while it reads the child's output), so nothing goes on writing after a stop."""
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    )
    try:
        for line in process.stdout:
            tail.append(line.rstrip("\n"))
            sys.stderr.write(line)
        returncode = process.wait()
    except BaseException:
        process.kill()
        process.wait()
        raise
    finally:
        process.stdout.close()
    return ChildResult(returncode, tuple(tail))


# --------------------------------------------------------------------------- quantizing


def quantize(source: Path, destination: Path, kind: str, *, keep_split: bool = False) -> None:
    """``llama_model_quantize`` of ``source`` into ``destination`` as ``kind`` (``q4_k_m`` …).
    With ``keep_split`` the source's shards are kept and ``destination`` is the shards' prefix
    (llama.cpp names them ``PREFIX-0000i-of-0000N.gguf``)."""
    import llama_cpp

    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{kind.upper()}")
    params.nthread = os.cpu_count() or 1
    params.keep_split = keep_split
    status = llama_cpp.llama_model_quantize(str(source).encode(), str(destination).encode(), ctypes.byref(params))
    if status != 0:
        raise RuntimeError(f"llama_model_quantize returned {status}")


# --------------------------------------------------------------------------- helpers


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _to_stderr(message: str) -> None:
    print(f"brightrun-trainer: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="brightrun_trainer.llama_tools", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    quantizer = commands.add_parser("quantize", help="quantize a GGUF file with llama.cpp")
    quantizer.add_argument("source", type=Path)
    quantizer.add_argument("destination", type=Path)
    quantizer.add_argument("kind")
    quantizer.add_argument("--keep-split", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "quantize":
        quantize(args.source, args.destination, args.kind, keep_split=args.keep_split)
        return 0
    try:
        print(ensure_llama_cpp())
    except InfrastructureError as exc:
        print(f"brightrun-trainer: {exc.reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
