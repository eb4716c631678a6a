"""Export mode: an adapter written as a merged model, a GGUF or a GGUF LoRA, and checked
(PROTOCOL.md, "Export mode (`models export`)").

A spec with an ``export`` object trains nothing. The base model and the adapter are loaded in
fp32 on the CPU (an export is written once and its check compares against fp32; host memory is
the larger pool) and base + adapter, unmerged, answers the check's prompts first: that is the
reference every export is held to. Then the export is written:

- ``merged``: PEFT's ``merge_and_unload``, cast to ``dtype``, saved as safetensors (sharded by
  ``max_shard_bytes``) with the config and the tokenizer (its chat template included): a plain
  transformers folder;
- ``gguf``: the same merged folder in the scratch folder, converted by llama.cpp's own
  ``convert_hf_to_gguf.py`` at ``dtype`` (or straight to ``q8_0``), quantized by
  ``llama_model_quantize`` for the other types, with an Ollama ``Modelfile`` (:mod:`.ollama`);
- ``gguf-lora``: the adapter converted by ``convert_lora_to_gguf.py`` for llama.cpp's ``--lora``.

The check (stage ``evaluating``) loads what was written as its users will: the merged folder
back in transformers without PEFT (next-token logits compared, ``TOLERANCES``), the GGUF in
llama.cpp (the prompt's tokens and the GGUF's own chat template compared, then greedy
continuations compared token by token with the reference, ``TIE_MARGIN`` and
``AGREEMENT_FLOOR``). An export that fails it is never offered: the run ends with a
``training`` error and no ``artifact``.

Everything is written into a staging folder first (inside the output folder, so that
delivering is a rename; in the scratch folder when the output is presigned URLs) and
delivered only once checked, ``export.json`` last. A failure or a stop at any point removes
whatever was written.

The constants and the helpers before "Running" need no torch.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import InfrastructureError, StopRequested, TrainingError, model_load_error
from .evaluation import to_json
from .failure import disk_full_cause
from .output import describe_files
from .spec import EXPORT_FILE, CompareModel, Export, JobSpec, OutputTarget
from .transfer import upload

EXPORT_VERSION = 1
#: The check's prompts when the spec gives none: a fact, a system turn with a list, free text.
VERIFY_PROMPTS: tuple[tuple[dict[str, str], ...], ...] = (
    ({"role": "user", "content": "What is the capital of France?"},),
    ({"role": "system", "content": "You are a concise assistant."}, {"role": "user", "content": "Name three primary colours."}),
    ({"role": "user", "content": "Write one sentence about the sea."},),
)
#: The largest next-token logit difference a merged export may show against base + adapter
#: (fp32, unmerged), per dtype. Measured on SmolLM2-135M-Instruct with a random rank-8 adapter
#: on the built-in prompts (logits of magnitude ~20): f32 3.1e-5, f16 0.026, bf16 0.13; the
#: tolerances leave about 4× that for larger models' longer sums (f32's is the contract's).
TOLERANCES = {"f32": 1e-3, "f16": 0.125, "bf16": 0.5}
#: An unquantized GGUF may continue a prompt differently from transformers only where
#: transformers' two best next tokens are this close in logit (and llama.cpp chose the second):
#: a near tie that another kernel's rounding decides either way. llama.cpp's next-token logits
#: differ from transformers' fp32 ones by up to 0.035 at f16 and 0.18 at bf16 on SmolLM2 (and
#: more a few tokens on); there a bf16 GGUF took the second of two tokens 0.03 apart.
TIE_MARGIN = 0.5
#: The share of prompts a quantized GGUF must continue as transformers does, token for token
#: or parting only at a near tie (the unquantized rule), per type. Measured on SmolLM2-135M-
#: Instruct with a random adapter over the 3 built-in prompts (exactly / with near ties): q8_0
#: 3/3 from f16 and 1/3 / 2/3 from bf16, q6_k and q5_k_m 1/3 / 2/3, q4_k_m 1/3 / 3/3, q4_0
#: 0/3 / 1/3, q3_k_m 1/3 / 2/3, q2_k 0/3 / 1/3. Small models lose the most to quantization; a
#: broken export (garbage weights, another template) agrees on none. Recorded either way.
AGREEMENT_FLOOR = {
    "q8_0": 0.6, "q6_k": 0.3, "q5_k_m": 0.3, "q5_k_s": 0.3, "q5_0": 0.3, "q5_1": 0.3,
    "q4_k_m": 0.3, "q4_k_s": 0.3, "q4_0": 0.3, "q4_1": 0.3, "q3_k_l": 0.0, "q3_k_m": 0.0,
    "q3_k_s": 0.0, "q2_k": 0.0,
}  # fmt: skip
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
    "chat_template.json", "vocab.json", "merges.txt", "tokenizer.model", "added_tokens.json",
)  # fmt: skip
MERGED_FILES = ("config.json", "generation_config.json", *TOKENIZER_FILES)
GGUF_FILE = "model.gguf"
LORA_FILE = "adapter.gguf"
MODELFILE = "Modelfile"
_SHARD = re.compile(r"model-(\d{5})-of-(\d{5})\.(safetensors|gguf)")
#: Bytes per weight of a 2-D tensor in a GGUF written by the converter (1-D tensors stay f32).
_GGUF_WEIGHT_BYTES = {"f32": 4.0, "f16": 2.0, "bf16": 2.0, "q8_0": 34 / 32}
_TORCH_DTYPES = {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}
#: Room left in each GGUF shard for its header (tensor names, shapes, offsets, alignment).
_GGUF_HEADER_BYTES = 1 << 20


# --------------------------------------------------------------------------- files


def allowed_name(name: str, export_format: str, max_shards: int) -> bool:
    """Whether the protocol lets an export of ``export_format`` write ``name`` (so that a remote
    worker's presigned URLs name it in advance)."""
    shard = _SHARD.fullmatch(name)
    if shard is not None:
        index, count, kind = int(shard[1]), int(shard[2]), shard[3]
        wanted = "safetensors" if export_format == "merged" else "gguf"
        return export_format != "gguf-lora" and kind == wanted and 1 <= index <= count <= max_shards
    if export_format == "merged":
        return name in (*MERGED_FILES, "model.safetensors", "model.safetensors.index.json")
    if export_format == "gguf":
        return name in (GGUF_FILE, MODELFILE)
    return name == LORA_FILE


def count_shards(sizes: list[int], limit: int) -> int:
    """How many files of at most ``limit`` bytes hold tensors of ``sizes`` filled in order
    (how transformers and llama.cpp split). A tensor over the limit needs a file of its own."""
    shards, current = 0, None
    for size in sizes:
        if current is None or current + size > limit:
            shards, current = shards + 1, size
        else:
            current += size
    return shards


def gguf_tensor_bytes(shapes: list[tuple[int, ...]], outtype: str) -> list[int]:
    """Each tensor's size in a GGUF of ``outtype`` as llama.cpp's converter writes it."""
    per_weight = _GGUF_WEIGHT_BYTES[outtype]
    return [int(_numel(shape) * (4.0 if len(shape) == 1 else per_weight)) for shape in shapes]


def _numel(shape: tuple[int, ...]) -> int:
    count = 1
    for size in shape:
        count *= size
    return count


def first_difference(expected: list[int], got: list[int]) -> int | None:
    """The index where two continuations first differ (``None``: identical)."""
    for index, (a, b) in enumerate(zip(expected, got)):
        if a != b:
            return index
    return None if len(expected) == len(got) else min(len(expected), len(got))


def describe_export(settings: Export) -> str:
    """What is written, for people: "GGUF (f16, quantized to q4_k_m)"."""
    kind = {"merged": "merged model", "gguf": "GGUF", "gguf-lora": "GGUF LoRA adapter"}[settings.format]
    detail = settings.dtype if settings.quantize is None else f"{settings.dtype}, quantized to {settings.quantize}"
    return f"{kind} ({detail})"


@contextlib.contextmanager
def writing(name: str) -> Iterator[None]:
    """A full disk while writing ``name`` is the environment's failure, named with the file."""
    try:
        yield
    except Exception as exc:
        if disk_full_cause(exc) is not None:
            raise InfrastructureError(f"no space left on device while writing {name}") from exc
        raise


# --------------------------------------------------------------------------- staging and delivery


class Staging:
    """The folder an export is written to before it is checked and delivered; on any failure
    or stop, everything written (delivered files included) is removed."""

    def __init__(self, output: OutputTarget, scratch: Path, emitter):
        self._output = output
        self._emitter = emitter
        self._delivered: list[Path] = []
        self._created: Path | None = None
        if output.dir is not None:
            out_dir = Path(output.dir)
            if not out_dir.exists():
                self._created = out_dir
            out_dir.mkdir(parents=True, exist_ok=True)
            self.folder = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
        else:
            self.folder = scratch / "export"
            self.folder.mkdir(parents=True)

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, kind, error, trace) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        if error is None:
            return
        for path in self._delivered:
            path.unlink(missing_ok=True)
        if self._created is not None:
            with contextlib.suppress(OSError):
                self._created.rmdir()  # only when empty: never someone else's files
        if isinstance(error, StopRequested):
            self._emitter.info("export interrupted by a stop request; its partial output was removed")

    def write(self, name: str, data: bytes) -> dict[str, Any]:
        """Stage one more file; its ``{path, size, sha256}``."""
        with writing(name):
            (self.folder / name).write_bytes(data)
        return {"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}

    def deliver(self, files: list[dict[str, Any]]) -> str:
        """Move (or upload) the staged ``files`` to the output in their order (``export.json``
        last); the ``artifact`` event's ``dir``."""
        if self._output.dir is not None:
            out_dir = Path(self._output.dir)
            for entry in files:
                destination = out_dir / entry["path"]
                os.replace(self.folder / entry["path"], destination)
                self._delivered.append(destination)
            return str(out_dir.resolve())
        urls = self._output.presigned_put or {}
        missing = [entry["path"] for entry in files if entry["path"] not in urls]
        if missing:
            raise InfrastructureError(f"no presigned URL for {', '.join(missing)}: the export cannot be delivered")
        self._emitter.info(f"uploading {len(files)} files")
        for entry in files:
            upload(self.folder / entry["path"], urls[entry["path"]])
        unused = sorted(set(urls) - {entry["path"] for entry in files})
        if unused:
            self._emitter.info("this export has no " + ", ".join(unused) + "; those URLs were left unused")
        return str(self.folder)


# --------------------------------------------------------------------------- running


@dataclass(frozen=True)
class Exported:
    """What the runner reports once the export is delivered."""

    directory: str
    files: list[dict[str, Any]]
    #: The ``completed`` stage's message.
    summary: str


@dataclass
class _Prompt:
    chat: list[dict[str, str]]
    #: The last user message's text, for ``export.json``.
    label: str
    #: The chat rendered by the tokenizer's template with the generation prompt.
    text: str
    ids: list[int]


@dataclass
class _Answer:
    """A greedy continuation and what the check needs of the logits behind it."""

    tokens: list[int]
    #: Next-token logits at the end of the prompt (an fp32 numpy array).
    first_logits: Any
    #: Per generated token: the two best token ids and their logit gap (transformers only).
    top_two: list[tuple[int, int, float]]


@dataclass
class _Loaded:
    model: Any
    tokenizer: Any
    eos: list[int]


def run_export(spec: JobSpec, emitter, scratch: Path) -> Exported:
    """Write, check and deliver the export; raises a ``TrainingError`` when the check fails.
    Emits ``saving`` and ``evaluating``; fetching and loading happen in ``initializing``."""
    from .compare import fetch_adapters
    from .llama_tools import ensure_llama_cpp

    settings = spec.export
    seconds: dict[str, float | None] = dict.fromkeys(("merge", "convert", "quantize", "check"))
    tools = ensure_llama_cpp(emitter) if settings.format != "merged" else None
    adapter = fetch_adapters((settings.model,), scratch, emitter)[settings.model.id]
    loaded = _load(settings.model, adapter, emitter)
    prompts = _prompts(loaded.tokenizer, settings.verify.prompts or VERIFY_PROMPTS)
    started = time.monotonic()
    emitter.info(f"base + adapter answers the check's {len(prompts)} prompts (transformers, fp32): the reference")
    reference = [_greedy(loaded, prompt.ids, settings.verify.tokens) for prompt in prompts]
    seconds["check"] = time.monotonic() - started
    with Staging(spec.output, scratch, emitter) as staging:
        emitter.stage("saving", f"writing the {describe_export(settings)} of {settings.model.label}")
        if settings.format == "merged":
            target = _write_merged(loaded, settings, staging.folder, emitter, seconds)
        elif settings.format == "gguf":
            target = _write_gguf(loaded, settings, staging.folder, scratch, tools, emitter, seconds)
        else:
            target = _write_gguf_lora(loaded, settings, staging.folder, scratch, tools, adapter, emitter, seconds)
        loaded.model = None  # merged or unloaded: nothing of it is needed again
        gc.collect()
        files = describe_files(staging.folder)
        _check_files(files, settings)
        emitter.stage("evaluating", _check_line(settings, len(prompts)))
        started = time.monotonic()
        if settings.format == "merged":
            result = _check_merged(staging.folder, loaded, prompts, reference, settings)
        else:
            lora = staging.folder / LORA_FILE if settings.format == "gguf-lora" else None
            result = _check_gguf(target, loaded, prompts, reference, settings, lora)
        seconds["check"] += time.monotonic() - started
        document = _document(settings, result, prompts, reference, loaded.tokenizer, files, seconds)
        if not document["passed"]:
            raise TrainingError(failure_reason(settings, document))
        emitter.info(passed_line(document))
        files.append(staging.write(EXPORT_FILE, to_json(document)))
        directory = staging.deliver(files)
    return Exported(directory, files, f"exported {settings.model.label} as a {describe_export(settings)}")


def _check_line(settings: Export, prompts: int) -> str:
    if settings.format == "merged":
        return f"checking the merged model's next-token logits against base + adapter on {prompts} prompts"
    return f"checking the export in llama.cpp against base + adapter on {prompts} prompts ({settings.verify.tokens} greedy tokens each)"


def _load(model: CompareModel, adapter: Path, emitter) -> _Loaded:
    """Base + adapter (PEFT, unmerged) in fp32 on the CPU, and the tokenizer the adapter was
    trained with (its folder's, which carries the chat template training used; else the base's)."""
    import torch
    import transformers
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from .compare import _adapter_error
    from .encoding import prepare_tokenizer
    from .train import load_tokenizer, resolve_base_model

    transformers.utils.logging.set_verbosity_warning()
    transformers.utils.logging.disable_progress_bar()
    path = resolve_base_model(model.base_model, emitter)
    emitter.info(f"loading base model {model.base_model} (fp32, on the CPU) and the adapter of {model.label}")
    has_tokenizer = (adapter / "tokenizer_config.json").is_file()
    tokenizer = load_tokenizer(str(adapter) if has_tokenizer else path, model.base_model)
    for note in prepare_tokenizer(tokenizer):
        emitter.info(note)
    try:
        base = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    except Exception as exc:
        raise model_load_error(exc, model.base_model, "model") from exc
    try:
        peft_model = PeftModel.from_pretrained(base, str(adapter))
    except Exception as exc:
        error = _adapter_error(model, exc)
        if error is exc:
            raise
        raise error from exc
    peft_model.eval()
    eos = base.generation_config.eos_token_id
    eos = list(eos) if isinstance(eos, (list, tuple)) else [eos] if eos is not None else []
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos:
        eos.append(tokenizer.eos_token_id)
    return _Loaded(peft_model, tokenizer, eos)


def _prompts(tokenizer, conversations) -> list[_Prompt]:
    """Each conversation rendered as serve mode renders it (a system turn folded into the first
    user turn for templates that refuse the role) and tokenized without added special tokens."""
    from .encoding import adapt_to_template, render

    prompts = []
    for conversation in conversations:
        chat = adapt_to_template(tokenizer, [dict(message) for message in conversation])
        text = render(tokenizer, chat, add_generation_prompt=True)
        ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        prompts.append(_Prompt(chat, conversation[-1]["content"], text, ids))
    return prompts


def _greedy(loaded: _Loaded, ids: list[int], tokens: int, model=None) -> _Answer:
    """Transformers' greedy continuation: plain argmax (no penalty or processor from the
    model's generation config), ending after an end-of-sequence token."""
    import torch
    from transformers import GenerationConfig

    model = model if model is not None else loaded.model
    config = GenerationConfig(
        do_sample=False, num_beams=1, max_new_tokens=tokens, eos_token_id=loaded.eos,
        pad_token_id=loaded.tokenizer.pad_token_id, output_logits=True, return_dict_in_generate=True,
    )  # fmt: skip
    with torch.no_grad():
        output = model.generate(
            input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long), generation_config=config
        )
    logits = torch.stack(output.logits)[:, 0].float()
    best = logits.topk(2, dim=-1)
    top_two = [
        (int(i[0]), int(i[1]), float(v[0] - v[1])) for v, i in zip(best.values, best.indices)
    ]
    return _Answer(output.sequences[0, len(ids) :].tolist(), logits[0].numpy(), top_two)


# --------------------------------------------------------------------------- writing


def _write_merged(loaded: _Loaded, settings: Export, folder: Path, emitter, seconds) -> Path:
    """The merged model as a plain transformers folder, sharded by ``max_shard_bytes``."""
    model = _merge(loaded, emitter, seconds)
    _save_model(model, loaded.tokenizer, folder, settings.dtype, settings.max_shard_bytes, settings.max_shards, emitter)
    return folder


def _write_gguf(loaded: _Loaded, settings: Export, folder: Path, scratch: Path, tools: Path, emitter, seconds) -> Path:
    """The merged model converted by llama.cpp (and quantized); the path llama.cpp loads."""
    model = _merge(loaded, emitter, seconds)
    merged = scratch / "merged"
    shapes = [tuple(tensor.shape) for tensor in _saved_tensors(model)]
    _save_model(model, loaded.tokenizer, merged, settings.dtype, None, None, emitter)
    del model
    gc.collect()
    requantize = settings.quantize not in (None, "q8_0")
    outtype = "q8_0" if settings.quantize == "q8_0" else settings.dtype
    split = _gguf_split(shapes, outtype, settings)
    converted_folder = scratch / "converted" if requantize else folder
    converted_folder.mkdir(exist_ok=True)
    started = time.monotonic()
    converted = _convert(tools, merged, converted_folder / GGUF_FILE, outtype, settings.name, split, emitter)
    seconds["convert"] = time.monotonic() - started
    target = converted
    if requantize:
        started = time.monotonic()
        target = _quantize(converted, folder, settings.quantize, split is not None, emitter)
        seconds["quantize"] = time.monotonic() - started
    if settings.ollama:
        _write_modelfile(loaded, target.name, settings, folder, emitter)
    return target


def _write_gguf_lora(loaded: _Loaded, settings: Export, folder: Path, scratch: Path, tools: Path, adapter: Path, emitter, seconds) -> Path:
    """The adapter as a GGUF LoRA; the base, converted into the scratch folder, for the check."""
    base = loaded.model.unload()  # the base's own layers back, no merge
    base_folder = scratch / "base"
    _save_model(base, loaded.tokenizer, base_folder, settings.dtype, None, None, emitter)
    del base
    gc.collect()
    started = time.monotonic()
    emitter.info(f"converting the adapter with llama.cpp's convert_lora_to_gguf.py ({settings.dtype})")
    command = [
        sys.executable, str(tools / "convert_lora_to_gguf.py"), "--outtype", settings.dtype,
        "--outfile", str(folder / LORA_FILE), "--base", str(base_folder), str(adapter),
    ]  # fmt: skip
    _run_converter(command, LORA_FILE, scratch)
    emitter.info(f"converted the adapter in {time.monotonic() - started:.1f} s: {LORA_FILE}, {_megabytes(folder / LORA_FILE)}")
    base_gguf = _convert(tools, base_folder, scratch / "base-gguf" / GGUF_FILE, settings.dtype, settings.name, None, emitter, what="the base model (for the check)")
    seconds["convert"] = time.monotonic() - started
    return base_gguf


def _merge(loaded: _Loaded, emitter, seconds) -> Any:
    started = time.monotonic()
    emitter.info("merging the adapter into the base model")
    model = loaded.model.merge_and_unload()
    seconds["merge"] = time.monotonic() - started
    return model


def _saved_tensors(model) -> list[Any]:
    """The model's tensors as they are saved, in order: a tied tensor once."""
    seen, tensors = set(), []
    for tensor in model.state_dict().values():
        if tensor.data_ptr() not in seen:
            seen.add(tensor.data_ptr())
            tensors.append(tensor)
    return tensors


def _save_model(model, tokenizer, folder: Path, dtype: str, max_shard_bytes: int | None, max_shards: int | None, emitter) -> None:
    """``model`` cast to ``dtype`` and saved as safetensors with its config and the tokenizer.
    With a shard limit, an export that needs more shards than the engine presigned fails
    before anything is written."""
    import torch

    model.to(dtype=getattr(torch, _TORCH_DTYPES[dtype]))
    model.config.use_cache = True  # a model for inference, whatever the training left there
    if max_shard_bytes is not None:
        sizes = [tensor.numel() * tensor.element_size() for tensor in _saved_tensors(model)]
        needed = count_shards(sizes, _fitting(sizes, max_shard_bytes, "safetensors"))
        if needed > max_shards:
            raise TrainingError(
                f"the export needs {needed} safetensors shards of at most {max_shard_bytes:,} bytes, more than max_shards ({max_shards})"
            )
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with writing("model.safetensors"):
        model.save_pretrained(folder, max_shard_size=max_shard_bytes or sys.maxsize)
    with writing("the tokenizer's files"):
        tokenizer.save_pretrained(folder)
    written = sum(path.stat().st_size for path in folder.glob("*.safetensors"))
    emitter.info(f"wrote the {dtype} weights in {time.monotonic() - started:.1f} s ({written / 1e6:.1f} MB)")


def _fitting(sizes: list[int], limit: int, kind: str) -> int:
    """``limit``, once every tensor fits in a file of that size."""
    largest = max(sizes, default=0)
    if largest > limit:
        raise TrainingError(f"a tensor of the model takes {largest:,} bytes as {kind}, more than a file may hold ({limit:,}): raise max_shard_bytes")
    return limit


def _gguf_split(shapes: list[tuple[int, ...]], outtype: str, settings: Export) -> int | None:
    """The converter's ``--split-max-size`` (``None``: one file). Split GGUFs carry the metadata
    (vocabulary, template) in a first file of their own, so each tensor file's size is bounded
    by its tensors plus a header. A quantized GGUF keeps the split of its ``dtype`` conversion."""
    sizes = gguf_tensor_bytes(shapes, outtype)
    if sum(sizes) + _GGUF_HEADER_BYTES <= settings.max_shard_bytes:
        return None
    limit = settings.max_shard_bytes - _GGUF_HEADER_BYTES
    if limit <= 0:
        raise TrainingError(f"max_shard_bytes ({settings.max_shard_bytes:,}) leaves no room for a GGUF shard's header")
    shards = 1 + count_shards(sizes, _fitting(sizes, limit, f"GGUF ({outtype})"))
    if shards > settings.max_shards:
        raise TrainingError(
            f"the export needs {shards} GGUF files (the metadata and {shards - 1} of tensors), more than max_shards ({settings.max_shards})"
        )
    return limit


def _convert(tools: Path, source: Path, outfile: Path, outtype: str, name: str, split: int | None, emitter, what: str = "the merged model") -> Path:
    """llama.cpp's ``convert_hf_to_gguf.py`` on a transformers folder; the first (or only) file."""
    outfile.parent.mkdir(parents=True, exist_ok=True)
    emitter.info(f"converting {what} to GGUF ({outtype}) with llama.cpp's convert_hf_to_gguf.py")
    started = time.monotonic()
    command = [
        sys.executable, str(tools / "convert_hf_to_gguf.py"), str(source), "--outtype", outtype,
        "--outfile", str(outfile), "--model-name", name,
    ]  # fmt: skip
    if split is not None:
        command += ["--split-max-size", str(split), "--no-tensor-first-split"]
    _run_converter(command, outfile.name, outfile.parent)
    files = sorted(outfile.parent.glob("*.gguf"))
    first = outfile if split is None else files[0]
    size = sum(path.stat().st_size for path in files)
    emitter.info(f"converted in {time.monotonic() - started:.1f} s: {len(files)} file{'s' if len(files) != 1 else ''}, {size / 1e6:.1f} MB")
    return first


def _run_converter(command: list[str], name: str, cwd: Path) -> None:
    """Run one of llama.cpp's converters; its refusal is the model's fault (``training``), a
    missing module, a kill or a full disk the environment's."""
    from .llama_tools import run_child

    done = run_child(command, cwd=cwd)
    if done.returncode == 0:
        return
    if any("No space left on device" in line or "Errno 28" in line for line in done.tail):
        raise InfrastructureError(f"no space left on device while writing {name}")
    if done.returncode < 0:
        raise InfrastructureError(f"llama.cpp's converter was killed by signal {-done.returncode} while writing {name}")
    reason = done.last_line(r"Error\b|Exception\b|^ERROR:")
    reason = re.sub(r"^ERROR:[\w-]+:", "", reason)
    if re.search(r"ModuleNotFoundError|ImportError", reason):
        raise InfrastructureError(f"llama.cpp's converter is missing a package: {reason}")
    raise TrainingError(f"llama.cpp cannot convert this model: {reason}")


def _quantize(converted: Path, folder: Path, kind: str, split: bool, emitter) -> Path:
    """``llama_model_quantize`` in a child process (a stop request can end it); split sources
    keep their shards (llama.cpp names them after the ``model`` prefix)."""
    from .llama_tools import run_child

    emitter.info(f"quantizing to {kind} with llama.cpp")
    destination = folder / ("model" if split else GGUF_FILE)
    command = [sys.executable, "-m", "brightrun_trainer.llama_tools", "quantize", str(converted), str(destination), kind]
    if split:
        command.append("--keep-split")
    paths = [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]
    environ = dict(os.environ, PYTHONPATH=os.pathsep.join(path for path in paths if path))
    started = time.monotonic()
    done = run_child(command, env=environ)
    if done.returncode != 0:
        if any("No space left on device" in line for line in done.tail):
            raise InfrastructureError(f"no space left on device while writing {destination.name}")
        raise InfrastructureError(f"llama.cpp could not quantize the GGUF to {kind}: {done.last_line()}")
    files = sorted(folder.glob("*.gguf"))
    size = sum(path.stat().st_size for path in files)
    emitter.info(f"quantized in {time.monotonic() - started:.1f} s: {size / 1e6:.1f} MB")
    return files[0]


def _write_modelfile(loaded: _Loaded, gguf: str, settings: Export, folder: Path, emitter) -> None:
    """The Modelfile, its ``TEMPLATE`` derived from the chat template (:mod:`.ollama`)."""
    from .encoding import render
    from .ollama import TemplateNotDerivable, derive_pieces, modelfile

    tokenizer = loaded.tokenizer
    try:
        pieces = derive_pieces(lambda messages, prompt: render(tokenizer, messages, add_generation_prompt=prompt))
    except TemplateNotDerivable as exc:
        emitter.warning(f"the Modelfile has no TEMPLATE (Ollama picks one from the GGUF): {exc}")
        pieces = None
    if gguf != GGUF_FILE:
        emitter.warning(f"the GGUF is split: the Modelfile names its first file, {gguf}; Ollama may need it merged first")
    with writing(MODELFILE):
        text = modelfile(gguf, pieces, stop_tokens(tokenizer, loaded.eos, pieces), settings.system_prompt, settings.name)
        (folder / MODELFILE).write_text(text, encoding="utf-8")


def stop_tokens(tokenizer, eos: list[int], pieces) -> list[str]:
    """The end-of-turn tokens generation must stop at: the end-of-sequence tokens (the
    generation config's and the tokenizer's) and the special token that closes an assistant
    turn (``<|im_end|>``, ``<|eot_id|>``)."""
    stops = [tokenizer.convert_ids_to_tokens(token) for token in eos]
    if pieces is not None:
        closing = pieces.after["assistant"].strip()
        if closing and closing in tokenizer.all_special_tokens + list(tokenizer.get_added_vocab()):
            stops.append(closing)
    return [stop for index, stop in enumerate(stops) if stop not in stops[:index] and '"' not in stop]


def _megabytes(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.1f} MB"


def _check_files(files: list[dict[str, Any]], settings: Export) -> None:
    """Only the protocol's names (a remote worker's URLs were presigned for them), every file
    within ``max_shard_bytes`` and no more shards than presigned (the estimate before writing
    is close, not exact: the files decide)."""
    outside = [entry["path"] for entry in files if not allowed_name(entry["path"], settings.format, settings.max_shards)]
    if outside:
        raise InfrastructureError(f"the export needs files the protocol does not name: {', '.join(outside)}")
    for entry in files:
        if entry["size"] > settings.max_shard_bytes:
            raise TrainingError(f"{entry['path']} is {entry['size']:,} bytes, more than max_shard_bytes ({settings.max_shard_bytes:,})")
    for entry in files:
        shard = _SHARD.fullmatch(entry["path"])
        if shard is not None and int(shard[2]) > settings.max_shards:
            raise TrainingError(f"the export was written as {int(shard[2])} shards, more than max_shards ({settings.max_shards})")


# --------------------------------------------------------------------------- the check


@dataclass
class _Check:
    """The check's figures before they become ``export.json``."""

    checked: str
    answers: list[_Answer]
    #: Per prompt: the largest difference of the next-token logits from the reference's.
    diffs: list[float]
    template_matches: bool | None = None
    tokens_match: bool | None = None


def _check_merged(folder: Path, loaded: _Loaded, prompts: list[_Prompt], reference: list[_Answer], settings: Export) -> _Check:
    """The merged folder loaded back as a plain model (no PEFT), upcast to fp32."""
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model.eval()
    answers = [_greedy(loaded, prompt.ids, settings.verify.tokens, model=model) for prompt in prompts]
    diffs = [float(np.abs(a.first_logits - r.first_logits).max()) for a, r in zip(answers, reference)]
    return _Check("logits", answers, diffs)


def _check_gguf(
    path: Path, loaded: _Loaded, prompts: list[_Prompt], reference: list[_Answer], settings: Export, lora: Path | None
) -> _Check:
    """llama.cpp loads the GGUF (over which the LoRA, for ``gguf-lora``), renders each prompt
    with the GGUF's own chat template, tokenizes it, and continues transformers' tokens greedily."""
    import numpy as np
    from llama_cpp import Llama

    longest = max(len(prompt.ids) for prompt in prompts)
    try:
        with _plain_cpu_kernels():
            llm = Llama(
                model_path=str(path), lora_path=str(lora) if lora is not None else None,
                n_ctx=longest + settings.verify.tokens + 8, n_threads=os.cpu_count() or 1, logits_all=True,
                verbose=False,
            )  # fmt: skip
    except Exception as exc:
        raise TrainingError(f"the {describe_export(settings)} export failed its check: llama.cpp cannot load it ({exc})") from exc
    try:
        template = _gguf_template(llm)
        template_matches = all(template(prompt.chat) == prompt.text for prompt in prompts)
        tokens_match = all(llm.tokenize(p.text.encode("utf-8"), add_bos=False, special=True) == p.ids for p in prompts)
        answers = [_llama_greedy(llm, prompt.ids, settings.verify.tokens, loaded.eos) for prompt in prompts]
    finally:
        llm.close()
    diffs = [float(np.abs(a.first_logits - r.first_logits).max()) for a, r in zip(answers, reference)]
    return _Check("greedy", answers, diffs, template_matches, tokens_match)


@contextlib.contextmanager
def _plain_cpu_kernels() -> Iterator[None]:
    """Load models without llama.cpp's extra CPU buffer types (weights repacked for AMX or
    other kernels) while inside. The check is about the file, and those kernels are where a
    machine that advertises a CPU feature it does not grant dies: on an AMX Xeon under
    Firecracker every quantized GGUF killed the process with SIGILL at its first token.
    ``Llama`` takes no such argument, so its default model parameters are wrapped meanwhile."""
    import llama_cpp.llama_cpp as native

    default = native.llama_model_default_params

    def parameters():
        chosen = default()
        chosen.use_extra_bufts = False
        return chosen

    native.llama_model_default_params = parameters
    try:
        yield
    finally:
        native.llama_model_default_params = default


def _gguf_template(llm) -> Callable[[list[dict[str, str]]], str | None]:
    """The GGUF's own ``tokenizer.chat_template`` as llama-cpp-python renders it (``None`` for a
    GGUF without one, or a conversation it refuses)."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    source = llm.metadata.get("tokenizer.chat_template")
    if not source:
        return lambda chat: None

    def text_of(token: int) -> str:
        return llm.detokenize([token], special=True).decode("utf-8", "replace") if token >= 0 else ""

    formatter = Jinja2ChatFormatter(source, eos_token=text_of(llm.token_eos()), bos_token=text_of(llm.token_bos()))

    def render(chat: list[dict[str, str]]) -> str | None:
        try:
            return formatter(messages=chat).prompt
        except Exception:
            return None

    return render


def _llama_greedy(llm, ids: list[int], tokens: int, eos: list[int]) -> _Answer:
    """llama.cpp's greedy continuation of ``ids``: argmax of its logits, ending after an
    end-of-sequence token, as :func:`_greedy` does in transformers."""
    import numpy as np

    llm.reset()
    llm.eval(ids)
    first = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
    continuation: list[int] = []
    while len(continuation) < tokens:
        token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        continuation.append(token)
        if token in eos:
            break
        llm.eval([token])
    return _Answer(continuation, first, [])


def _agrees(expected: _Answer, got: _Answer) -> bool:
    """Whether a continuation passes: identical, or first different where transformers' two
    best tokens were a near tie and llama.cpp took the second."""
    index = first_difference(expected.tokens, got.tokens)
    if index is None:
        return True
    if index >= len(expected.top_two) or index >= len(got.tokens):
        return False
    _, second, gap = expected.top_two[index]
    return got.tokens[index] == second and gap <= TIE_MARGIN


def _document(
    settings: Export, check: _Check, prompts: list[_Prompt], reference: list[_Answer], tokenizer,
    files: list[dict[str, Any]], seconds: dict[str, float | None],
) -> dict[str, Any]:
    """``export.json``: the check's figures and whether it passed."""
    from .llama_tools import LLAMA_CPP_VERSION

    quantized = settings.quantize is not None
    if settings.format == "merged":
        tolerance = TOLERANCES[settings.dtype]
    else:
        tolerance = AGREEMENT_FLOOR[settings.quantize] if quantized else TIE_MARGIN
    entries = []
    for prompt, expected, got, diff in zip(prompts, reference, check.answers, check.diffs):
        index = first_difference(expected.tokens, got.tokens)
        entries.append({
            "prompt": prompt.label,
            "expected": tokenizer.decode(expected.tokens),
            "got": tokenizer.decode(got.tokens),
            "agreed_tokens": len(expected.tokens) if index is None else index,
            "of": len(expected.tokens),
            "max_abs_diff": diff,
            "passed": diff <= tolerance if check.checked == "logits" else _agrees(expected, got),
        })  # fmt: skip
    agreement = sum(expected.tokens == got.tokens for expected, got in zip(reference, check.answers)) / len(entries)
    share = sum(entry["passed"] for entry in entries) / len(entries)
    if settings.format == "merged":
        passed = share == 1
    else:
        judged = share >= tolerance if quantized else share == 1
        passed = bool(check.template_matches and check.tokens_match and judged)
    return {
        "version": EXPORT_VERSION,
        "format": settings.format,
        "dtype": settings.dtype,
        "quantize": settings.quantize,
        "passed": passed,
        "checked": check.checked,
        "tolerance": tolerance,
        "max_abs_diff": max(check.diffs),
        "agreement": agreement,
        "template_matches": check.template_matches,
        "tokens_match": check.tokens_match,
        "prompts": entries,
        "files": files,
        "seconds": seconds,
        "llama_cpp": None if settings.format == "merged" else LLAMA_CPP_VERSION,
        "ollama": {"command": f"ollama create {settings.name} -f {MODELFILE}"} if settings.ollama else None,
    }


def failure_reason(settings: Export, document: dict[str, Any]) -> str:
    """The ``error`` reason of a failed check, naming its figures."""
    if document["checked"] == "logits":
        return (
            f"the merged export failed its check: its next-token logits differ from base + adapter's by up to "
            f"{document['max_abs_diff']:.3g}, more than the {settings.dtype} tolerance {document['tolerance']:g}"
        )
    entries = document["prompts"]
    agreed = round(document["agreement"] * len(entries))
    why = []
    if not document["template_matches"]:
        why.append("the GGUF's own chat template renders the prompts differently")
    if not document["tokens_match"]:
        why.append("llama.cpp tokenizes the rendered prompts differently")
    held = sum(entry["passed"] for entry in entries)
    if settings.quantize is not None and held / len(entries) < document["tolerance"]:
        why.append(
            f"{held} of {len(entries)} agreed or parted at a near tie, below the {settings.quantize} floor {document['tolerance']:.2f}"
        )
    elif settings.quantize is None:
        for number, entry in enumerate(entries, 1):
            if not entry["passed"]:
                why.append(f"prompt {number} differs at token {entry['agreed_tokens'] + 1} of {entry['of']}, not at a near tie")
    kind = {"gguf": "GGUF", "gguf-lora": "GGUF LoRA"}[settings.format]
    return f"the {kind} export failed its check: {agreed} of {len(entries)} prompts agreed with transformers ({'; '.join(why)})"


def passed_line(document: dict[str, Any]) -> str:
    """The ``log`` line of a passed check."""
    if document["checked"] == "logits":
        return f"check passed: next-token logits within {document['max_abs_diff']:.3g} of base + adapter's (tolerance {document['tolerance']:g})"
    entries = document["prompts"]
    agreed = round(document["agreement"] * len(entries))
    return (
        f"check passed: {agreed} of {len(entries)} prompts agreed with transformers token for token; "
        f"next-token logits within {document['max_abs_diff']:.3g}"
    )
