"""Writing the adapter (or a comparison's ``comparison.json``) and delivering it: to a
folder, or to presigned PUT URLs.

Files are first written to a staging folder, so that the ``artifact`` event lists exactly
what this run produced (never leftovers of an earlier attempt in the same output folder)
and a half-written adapter is never visible under its final name.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .events import EventEmitter
from .spec import OutputTarget
from .transfer import upload

#: Boilerplate model card written by PEFT; not part of BrightRun's artifact.
_DISCARDED = ("README.md",)


@dataclass(frozen=True)
class PublishedArtifact:
    directory: str
    files: list[dict]


def save_adapter(
    model, tokenizer, directory: Path, base_model: str, extra_files: dict[str, bytes] | None = None
) -> None:
    """Adapter weights and config, plus the tokenizer (with its chat template), plus
    ``extra_files`` (name → bytes: ``evaluation.json``).

    The config names ``base_model`` as the spec gave it rather than the local folder the
    model was loaded from, so the adapter stays usable on another machine. Embedding layers
    are never saved: the trainer does not resize the vocabulary.
    """
    config = model.peft_config["default"]
    loaded_from, config.base_model_name_or_path = config.base_model_name_or_path, base_model
    try:
        # The trained adapter alone (a preference run may also hold a frozen reference adapter).
        model.save_pretrained(directory, selected_adapters=["default"], save_embedding_layers=False)
    finally:
        config.base_model_name_or_path = loaded_from
    tokenizer.save_pretrained(directory)
    for name in _DISCARDED:
        (directory / name).unlink(missing_ok=True)
    for name, data in (extra_files or {}).items():
        (directory / name).write_bytes(data)


def describe_files(directory: Path) -> list[dict]:
    """``{path, size, sha256}`` for every file under ``directory``, sorted by path."""
    files = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        files.append(
            {"path": path.relative_to(directory).as_posix(), "size": path.stat().st_size, "sha256": sha256_of(path)}
        )
    return files


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def publish(
    model,
    tokenizer,
    base_model: str,
    target: OutputTarget,
    emitter: EventEmitter,
    scratch: Path,
    extra_files: dict[str, bytes] | None = None,
) -> PublishedArtifact:
    """Write the adapter (and ``extra_files``) where the spec says and describe what was delivered."""
    save = functools.partial(save_adapter, model, tokenizer, base_model=base_model, extra_files=extra_files)
    if target.dir is not None:
        return _publish_to_folder(save, Path(target.dir))
    return _publish_to_urls(save, target.presigned_put or {}, emitter, scratch)


def publish_files(
    files: dict[str, bytes], target: OutputTarget, emitter: EventEmitter, scratch: Path
) -> PublishedArtifact:
    """Deliver ``files`` (name → bytes) where the spec says, as :func:`publish` delivers an
    adapter: the same staging, the same ``artifact`` description, the same uploads. Compare
    mode's only output, ``comparison.json``, goes this way."""

    def save(directory: Path) -> None:
        for name, data in files.items():
            (directory / name).write_bytes(data)

    if target.dir is not None:
        return _publish_to_folder(save, Path(target.dir))
    urls = target.presigned_put or {}
    return _publish_to_urls(save, urls, emitter, scratch, what="this comparison", folder="comparison")


def _publish_to_folder(save: Callable[[Path], None], out_dir: Path) -> PublishedArtifact:
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
    try:
        save(staging)
        files = describe_files(staging)
        for entry in files:
            destination = out_dir / entry["path"]
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / entry["path"], destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return PublishedArtifact(str(out_dir.resolve()), files)


def _publish_to_urls(
    save: Callable[[Path], None],
    urls: dict[str, str],
    emitter: EventEmitter,
    scratch: Path,
    what: str = "this adapter",
    folder: str = "adapter",
) -> PublishedArtifact:
    staging = scratch / folder
    staging.mkdir(parents=True, exist_ok=True)
    save(staging)
    produced = describe_files(staging)
    delivered = []
    for entry in produced:
        url = urls.get(entry["path"])
        if url is not None:
            upload(staging / entry["path"], url)
            delivered.append(entry)
    unsent = [entry["path"] for entry in produced if entry["path"] not in urls]
    if unsent:
        emitter.warning("no presigned URL for " + ", ".join(unsent) + "; these files were not uploaded")
    unused = sorted(set(urls) - {entry["path"] for entry in produced})
    if unused:
        emitter.info(f"{what} has no " + ", ".join(unused) + "; those URLs were left unused")
    return PublishedArtifact(str(staging), delivered)
