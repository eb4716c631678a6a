"""The job spec (PROTOCOL.md, "Job spec"): loading and validation.

Validation is strict on purpose. The engine generates the spec, so a missing or misspelt
field is a bug on one side of the contract, and silently falling back to a default would
hide it. Every failure names the field (``hyperparameters.batch_size``) and what was wrong.
Unknown fields are tolerated (forward compatibility) and reported back as warnings.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import SpecError

SPEC_VERSION = 1
SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")
QUANTIZATIONS = ("none", "4bit")
GRADIENT_CHECKPOINTING = ("auto", "on", "off")
#: Files every adapter has; a presigned output must say where each goes.
REQUIRED_ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
MIN_SEQ_LENGTH = 16
#: The engine stores seeds as u64; the split rule uses the whole value.
MAX_SEED = 2**64 - 1

_TOP_LEVEL = {
    "version", "job_id", "base_model", "dataset", "hyperparameters", "output",
    "checkpoint_dir", "resume_from", "logging_steps", "max_steps", "efficiency", "evaluation",
    "compare", "init_adapter", "checkpoint_steps", "checkpoint_upload", "export",
}
_CHECKPOINT_UPLOAD = {"dir", "presigned_put"}
_RESUME_ARCHIVE = {"archive", "url", "sha256", "size", "step"}
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_EVALUATION = {"samples", "max_new_tokens", "builtin_probes", "probes"}
_PROBE = {"prompt", "reference"}
#: Ranges of the ``evaluation`` object's fields (PROTOCOL.md, "Evaluation").
MAX_EVALUATION_SAMPLES = 64
MAX_NEW_TOKENS = 4096
MAX_PROBES = 200
_COMPARE = {"models", "prompts"}
_COMPARE_MODEL = {"id", "label", "base_model", "adapter"}
_COMPARE_ADAPTER = {"dir", "urls"}
_COMPARE_PROMPT = {"messages", "reference"}
_COMPARE_MESSAGE = {"role", "content"}
COMPARE_ROLES = ("system", "user", "assistant")
#: Compare mode's only output file (the ``presigned_put`` entry it needs).
COMPARISON_FILE = "comparison.json"
#: Bounds of the ``compare`` object (PROTOCOL.md, "Compare mode").
MAX_COMPARE_MODELS = 16
MAX_COMPARE_PROMPTS = 1000
_EXPORT = {
    "model", "format", "dtype", "quantize", "ollama", "name", "system_prompt", "max_shard_bytes", "max_shards",
    "verify",
}  # fmt: skip
_VERIFY = {"prompts", "tokens"}
#: What export mode writes (PROTOCOL.md, "Export mode").
EXPORT_FORMATS = ("merged", "gguf", "gguf-lora")
EXPORT_DTYPES = ("f16", "bf16", "f32")
#: llama.cpp's quantizations a ``gguf`` export may ask for (``llama_model_quantize``'s types;
#: ``q8_0`` straight from the converter).
GGUF_QUANTIZATIONS = (
    "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k_s", "q3_k_m", "q3_k_l", "q4_k_s", "q4_k_m",
    "q5_k_s", "q5_k_m", "q6_k",
)  # fmt: skip
#: Export mode's record of the check, written last (the ``presigned_put`` entry it needs).
EXPORT_FILE = "export.json"
#: Bounds of the ``export`` object.
MIN_SHARD_BYTES = 1_048_576
MAX_EXPORT_SHARDS = 64
MAX_VERIFY_PROMPTS = 16
MAX_VERIFY_TOKENS = 64
DEFAULT_VERIFY_TOKENS = 8
_EXPORT_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_EFFICIENCY = {
    "padding_free", "packing", "gradient_checkpointing", "chunked_loss", "torch_compile", "liger",
    "gpu_count",
}
_HYPERPARAMETERS = {
    "learning_rate", "batch_size", "gradient_accumulation_steps", "epochs", "lora_rank",
    "lora_alpha", "lora_dropout", "target_modules", "warmup_ratio", "warmup_steps",
    "weight_decay", "scheduler", "max_seq_length", "seed", "validation_split",
    "use_validation", "quantization", "method",
}
#: ``hyperparameters.method`` (PROTOCOL.md, "Job spec"): the training objective and its fields.
METHODS = ("sft", "dpo", "orpo", "simpo", "kto")
PREFERENCE_METHODS = ("dpo", "orpo", "simpo")
DPO_LOSS_TYPES = ("sigmoid", "ipo")
_METHOD_FIELDS = {
    "sft": (),
    "dpo": ("beta", "loss_type"),
    "orpo": ("lambda",),
    "simpo": ("beta", "gamma"),
    "kto": ("beta", "desirable_weight", "undesirable_weight"),
}


@dataclass(frozen=True)
class Method:
    """``hyperparameters.method``: what the adapter is trained to do.

    ``sft`` (supervised fine-tuning, the default: absent or null in older specs) or one of the
    preference methods, each with its own fields (the others stay at their defaults):
    ``dpo`` (``beta``, ``loss_type`` ``sigmoid`` or ``ipo``; for ipo ``beta`` is τ),
    ``orpo`` (``lambda``: the weight of the odds-ratio term), ``simpo`` (``beta``, ``gamma``: the
    target reward margin) and ``kto`` (``beta``, ``desirable_weight``, ``undesirable_weight``).
    """

    name: str = "sft"
    beta: float | None = None
    loss_type: str | None = None
    #: ORPO's λ (``lambda`` in JSON, a Python keyword).
    lambda_: float | None = None
    gamma: float | None = None
    desirable_weight: float | None = None
    undesirable_weight: float | None = None

    @property
    def is_preference(self) -> bool:
        """Whether the method trains on preference data or KTO data (anything but sft)."""
        return self.name != "sft"

    @property
    def has_reference(self) -> bool:
        """Whether the loss compares the policy with a reference model (dpo, kto): the base, or
        the starting adapter when the run trains on from one (``init_adapter``)."""
        return self.name in ("dpo", "kto")

    @property
    def data_format(self) -> str:
        """The dataset layout the method reads: ``sft``, ``preference`` or ``kto``."""
        if self.name == "kto":
            return "kto"
        return "preference" if self.name in PREFERENCE_METHODS else "sft"

    @property
    def reward_beta(self) -> float:
        """The β of the DPO implicit reward reported by the evaluation (ORPO's is 0.1)."""
        return self.beta if self.beta is not None else 0.1


@dataclass(frozen=True)
class Hyperparameters:
    learning_rate: float
    batch_size: int
    gradient_accumulation_steps: int
    epochs: int
    lora_rank: int
    lora_alpha: float
    lora_dropout: float
    #: A list of module names, or the string ``"all-linear"``.
    target_modules: tuple[str, ...] | str
    warmup_ratio: float
    warmup_steps: int | None
    weight_decay: float
    scheduler: str
    max_seq_length: int
    seed: int
    validation_split: float
    use_validation: bool
    quantization: str
    #: The training objective (``sft`` when the spec has no ``method``).
    method: Method = Method()

    @property
    def library_seed(self) -> int:
        """The seed for torch/numpy/random, which accept 32 bits (numpy's limit)."""
        return self.seed % 2**32

    @property
    def holds_out_validation(self) -> bool:
        return self.use_validation and self.validation_split > 0


@dataclass(frozen=True)
class Efficiency:
    """How the trainer spends the GPU (the optional ``efficiency`` object; PROTOCOL.md).

    None of these change what is learnt, only how fast and in how much memory: every default
    is the faster choice that is safe on any machine, so an old spec without the object gets
    them too.
    """

    #: Concatenate each batch's examples into one row with per-example position ids (no
    #: padding tokens computed) where a varlen attention kernel runs; else length-grouped batches.
    padding_free: bool = True
    #: Pack several examples into each ``max_seq_length`` row (fewer, fuller rows per batch).
    packing: bool = False
    #: ``"auto"``: only when the activations would not fit in free GPU memory.
    gradient_checkpointing: str = "auto"
    #: LM head and cross-entropy over chunks of the trained tokens: the full logits never exist.
    chunked_loss: bool = True
    torch_compile: bool = False
    #: Liger kernels (fused linear cross-entropy, RMSNorm, RoPE, SwiGLU) when installed.
    liger: bool = False
    #: GPUs on this machine for data parallelism (one process per GPU under torchrun).
    gpu_count: int = 1


@dataclass(frozen=True)
class Probe:
    """A prompt asked of the base model and of the adapter after training."""

    prompt: str
    #: The expected answer, or ``None`` (a blank reference is read as none).
    reference: str | None = None


@dataclass(frozen=True)
class Evaluation:
    """The optional ``evaluation`` object: the ``evaluating`` stage after training."""

    #: Held-out examples answered by base and adapter (0 to 64).
    samples: int = 8
    #: The generation limit for samples and probes (1 to 4096), greedy decoding.
    max_new_tokens: int = 256
    #: Whether the trainer's built-in general probes are asked besides ``probes``.
    builtin_probes: bool = True
    probes: tuple[Probe, ...] = ()


@dataclass(frozen=True)
class AdapterSource:
    """Where a compared adapter's files are: a local folder, or presigned GET URLs by file name."""

    dir: str | None = None
    urls: dict[str, str] | None = None


@dataclass(frozen=True)
class CompareModel:
    """One adapter of the ``compare`` object (its base model is compared too, implicitly)."""

    id: str
    label: str
    base_model: str
    adapter: AdapterSource


@dataclass(frozen=True)
class ComparePrompt:
    """A prompt of the user's file: chat messages ending with a user turn, and a reference."""

    #: ``{"role", "content"}`` dicts, the last one a user turn.
    messages: tuple[dict[str, str], ...]
    #: The expected answer, or ``None`` (a blank reference is read as none).
    reference: str | None = None


@dataclass(frozen=True)
class Compare:
    """The optional ``compare`` object: answer prompts with several models instead of training."""

    models: tuple[CompareModel, ...]
    #: ``None``: held-out examples of the dataset and the probes, as the ``evaluating`` stage chooses.
    prompts: tuple[ComparePrompt, ...] | None = None


@dataclass(frozen=True)
class Verify:
    """How an export is checked: the prompts (``None``: the built-in ones) and the greedy
    tokens compared per prompt."""

    #: Conversations of ``{"role", "content"}`` dicts, each ending with a user turn.
    prompts: tuple[tuple[dict[str, str], ...], ...] | None = None
    tokens: int = DEFAULT_VERIFY_TOKENS


@dataclass(frozen=True)
class Export:
    """The optional ``export`` object: write an adapter as a merged model, a GGUF or a GGUF
    LoRA, checked against base + adapter, instead of training."""

    model: CompareModel
    #: One of :data:`EXPORT_FORMATS`.
    format: str
    #: One of :data:`EXPORT_DTYPES`.
    dtype: str
    #: The model's name for people (the GGUF's ``general.name``, ``ollama create NAME``).
    name: str
    #: The largest file written; bigger exports are sharded.
    max_shard_bytes: int
    #: The most shards the output may have (the engine presigned that many names).
    max_shards: int
    #: A name of :data:`GGUF_QUANTIZATIONS` (``gguf`` only), or ``None``.
    quantize: str | None = None
    #: Also write an Ollama ``Modelfile`` (``gguf`` only).
    ollama: bool = False
    #: The Modelfile's ``SYSTEM`` line.
    system_prompt: str | None = None
    verify: Verify = Verify()


@dataclass(frozen=True)
class DatasetSource:
    path: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class OutputTarget:
    dir: str | None = None
    presigned_put: dict[str, str] | None = None


@dataclass(frozen=True)
class CheckpointUpload:
    """Where every checkpoint's archive goes (the optional ``checkpoint_upload`` object;
    PROTOCOL.md, "Checkpoint storage"): exactly one of the two is set."""

    #: A folder: ``checkpoint-<step>.tar`` is written into it (the local backend).
    dir: str | None = None
    #: Presigned PUT URLs, one slot per checkpoint, used in order (remote backends).
    presigned_put: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ResumeArchive:
    """A checkpoint archive to resume from (``resume_from`` as an object): fetched, checked
    against its recorded size and sha256, then extracted."""

    step: int
    size: int
    #: Lowercase hex.
    sha256: str
    #: A local file, or ...
    archive: str | None = None
    #: ... a presigned GET URL.
    url: str | None = None


@dataclass(frozen=True)
class JobSpec:
    version: int
    job_id: str
    base_model: str
    dataset: DatasetSource
    hyperparameters: Hyperparameters
    output: OutputTarget
    checkpoint_dir: str
    #: The checkpoint folder to resume from (a string ``resume_from``, or the folder an
    #: archive was extracted to, once the runner has fetched it).
    resume_from: str | None
    logging_steps: int
    max_steps: int | None
    efficiency: Efficiency = Efficiency()
    #: ``None``: no ``evaluating`` stage (the field is absent or null).
    evaluation: Evaluation | None = None
    #: ``None``: a training job; else compare mode (no training, ``comparison.json`` only).
    compare: Compare | None = None
    #: ``None``: not an export; else export mode (no training: the adapter exported and checked).
    export: Export | None = None
    #: The adapter training starts from instead of fresh LoRA weights (``--from-model``).
    init_adapter: CompareModel | None = None
    #: Also checkpoint every N optimizer steps (``None``: epoch ends and stops only).
    checkpoint_steps: int | None = None
    #: Where checkpoint archives go; ``None``: checkpoints stay in ``checkpoint_dir`` only.
    checkpoint_upload: CheckpointUpload | None = None
    #: ``resume_from`` given as an archive object; the runner fetches and extracts it and
    #: sets ``resume_from`` to the folder.
    resume_archive: ResumeArchive | None = None
    #: Dotted names of fields this trainer does not know (reported, not fatal).
    unknown_fields: tuple[str, ...] = ()


def load_spec(path: str | os.PathLike[str]) -> JobSpec:
    """Read and validate a spec file; ``env:NAME`` reads it from the environment variable NAME."""
    if isinstance(path, str) and path.startswith("env:"):
        name = path[4:]
        text = os.environ.get(name)
        if text is None:
            raise SpecError(f"the job spec's environment variable {name} is not set")
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(f"the job spec in ${name} is not valid JSON: {exc}") from exc
        return parse_spec(document)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"cannot read the job spec {path}: {exc.strerror or exc}") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"the job spec {path} is not valid JSON: {exc}") from exc
    return parse_spec(document)


def parse_spec(document: Any) -> JobSpec:
    """Validate a decoded spec document and build a :class:`JobSpec`."""
    top = _Fields(document, "")
    version = top.integer("version", minimum=1)
    if version != SPEC_VERSION:
        raise SpecError(f"spec field `version`: this trainer reads version {SPEC_VERSION}, got {version}")
    job_id = top.string("job_id")
    hyperparameters = top.object("hyperparameters")
    efficiency = top.optional_object("efficiency")
    evaluation = top.optional_object("evaluation")
    compare_fields = top.optional_object("compare")
    export_fields = top.optional_object("export")
    if compare_fields is not None and export_fields is not None:
        raise SpecError("spec fields `compare` and `export`: a job compares or exports, not both")
    unknown = top.unknown(_TOP_LEVEL) + hyperparameters.unknown(_HYPERPARAMETERS)
    if efficiency is not None:
        unknown += efficiency.unknown(_EFFICIENCY)
    if evaluation is not None:
        unknown += evaluation.unknown(_EVALUATION)
    compare = _parse_compare(compare_fields, unknown)
    export = _parse_export(export_fields, unknown)
    resume_from, resume_archive = _parse_resume_from(top, unknown)
    return JobSpec(
        version=version,
        job_id=job_id,
        base_model=top.string("base_model"),
        dataset=_dataset_of(top.optional_object("dataset"), compare, export),
        hyperparameters=_parse_hyperparameters(hyperparameters, unknown),
        output=_parse_output(top.object("output"), _required_outputs(compare, export)),
        checkpoint_dir=top.optional_string("checkpoint_dir") or _default_checkpoint_dir(job_id),
        resume_from=resume_from,
        logging_steps=top.integer("logging_steps", minimum=1, default=1),
        max_steps=top.optional_integer("max_steps", minimum=1),
        efficiency=_parse_efficiency(efficiency),
        evaluation=_parse_evaluation(evaluation, unknown),
        compare=compare,
        export=export,
        init_adapter=_parse_init_adapter(top.optional_object("init_adapter"), unknown),
        checkpoint_steps=top.optional_integer("checkpoint_steps", minimum=1),
        checkpoint_upload=_parse_checkpoint_upload(top.optional_object("checkpoint_upload"), unknown),
        resume_archive=resume_archive,
        unknown_fields=tuple(unknown),
    )


def _required_outputs(compare: Compare | None, export: Export | None) -> tuple[str, ...]:
    """The files a presigned output must name: the adapter's, or the other modes' record."""
    if compare is not None:
        return (COMPARISON_FILE,)
    if export is not None:
        return (EXPORT_FILE,)
    return REQUIRED_ADAPTER_FILES


def _parse_checkpoint_upload(fields: _Fields | None, unknown: list[str]) -> CheckpointUpload | None:
    """The optional ``checkpoint_upload`` object: ``{"dir": FOLDER}`` or ``{"presigned_put": [URL, …]}``."""
    if fields is None:
        return None
    unknown += fields.unknown(_CHECKPOINT_UPLOAD)
    directory = fields.optional_string("dir")
    urls = fields.require("presigned_put", default=None)
    if (directory is None) == (urls is None):
        raise fields.error_at('expected exactly one of "dir" or "presigned_put"')
    if directory is not None:
        return CheckpointUpload(dir=directory)
    if not isinstance(urls, list) or not urls:
        raise fields.error("presigned_put", "expected a non-empty list of http(s) URLs", urls)
    for i, url in enumerate(urls):
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise SpecError(
                f"spec field `checkpoint_upload.presigned_put[{i}]`: expected an http(s) URL, got {_describe(url)}"
            )
    return CheckpointUpload(presigned_put=tuple(urls))


def _parse_resume_from(top: _Fields, unknown: list[str]) -> tuple[str | None, ResumeArchive | None]:
    """``resume_from``: null, a checkpoint folder (a string), or an archive object
    ``{"archive": PATH} | {"url": URL}`` with ``sha256``, ``size`` and ``step``."""
    name = "resume_from"
    value = top.require(name, default=None)
    if value is None:
        return None, None
    if isinstance(value, str):
        return top.string(name), None
    if not isinstance(value, dict):
        expected = "expected a checkpoint folder (a string) or an archive object {archive or url, sha256, size, step}"
        raise top.error(name, expected, value)
    fields = top.object(name)
    unknown += fields.unknown(_RESUME_ARCHIVE)
    archive = fields.optional_string("archive")
    url = fields.optional_string("url")
    if (archive is None) == (url is None):
        raise fields.error_at('expected exactly one of "archive" or "url"')
    if url is not None and not url.startswith(("http://", "https://")):
        raise fields.error("url", "expected an http(s) URL", url)
    sha256 = fields.string("sha256")
    if not _SHA256.fullmatch(sha256):
        raise fields.error("sha256", "expected 64 hexadecimal digits", sha256)
    archive_spec = ResumeArchive(
        step=fields.integer("step", minimum=1),
        size=fields.integer("size", minimum=1),
        sha256=sha256.lower(),
        archive=archive,
        url=url,
    )
    return None, archive_spec


def _parse_hyperparameters(fields: _Fields, unknown: list[str] | None = None) -> Hyperparameters:
    warmup_steps = fields.optional_integer("warmup_steps", minimum=0)
    return Hyperparameters(
        learning_rate=fields.number("learning_rate", above=0.0),
        batch_size=fields.integer("batch_size", minimum=1),
        gradient_accumulation_steps=fields.integer("gradient_accumulation_steps", minimum=1),
        epochs=fields.integer("epochs", minimum=1),
        lora_rank=fields.integer("lora_rank", minimum=1),
        lora_alpha=fields.number("lora_alpha", above=0.0),
        lora_dropout=fields.number("lora_dropout", minimum=0.0, below=1.0),
        target_modules=_parse_target_modules(fields),
        warmup_ratio=fields.number("warmup_ratio", minimum=0.0, below=1.0),
        warmup_steps=warmup_steps,
        weight_decay=fields.number("weight_decay", minimum=0.0),
        scheduler=fields.choice("scheduler", SCHEDULERS),
        max_seq_length=fields.integer("max_seq_length", minimum=MIN_SEQ_LENGTH),
        seed=fields.integer("seed", minimum=0, maximum=MAX_SEED),
        validation_split=fields.number("validation_split", minimum=0.0, below=1.0),
        use_validation=fields.boolean("use_validation"),
        quantization=fields.choice("quantization", QUANTIZATIONS, default="none"),
        method=_parse_method(fields, unknown if unknown is not None else []),
    )


def _parse_efficiency(fields: _Fields | None) -> Efficiency:
    """The optional ``efficiency`` object; absent (or null) fields take the defaults."""
    if fields is None:
        return Efficiency()
    default = Efficiency()
    return Efficiency(
        padding_free=fields.boolean("padding_free", default=default.padding_free),
        packing=fields.boolean("packing", default=default.packing),
        gradient_checkpointing=fields.choice(
            "gradient_checkpointing", GRADIENT_CHECKPOINTING, default=default.gradient_checkpointing
        ),
        chunked_loss=fields.boolean("chunked_loss", default=default.chunked_loss),
        torch_compile=fields.boolean("torch_compile", default=default.torch_compile),
        liger=fields.boolean("liger", default=default.liger),
        gpu_count=fields.integer("gpu_count", minimum=1, default=default.gpu_count),
    )


def _parse_evaluation(fields: _Fields | None, unknown: list[str]) -> Evaluation | None:
    """The optional ``evaluation`` object; absent (or null) fields take the defaults.

    Unknown keys of the probes are appended to ``unknown``."""
    if fields is None:
        return None
    default = Evaluation()
    return Evaluation(
        samples=fields.integer("samples", minimum=0, maximum=MAX_EVALUATION_SAMPLES, default=default.samples),
        max_new_tokens=fields.integer(
            "max_new_tokens", minimum=1, maximum=MAX_NEW_TOKENS, default=default.max_new_tokens
        ),
        builtin_probes=fields.boolean("builtin_probes", default=default.builtin_probes),
        probes=_parse_probes(fields, unknown),
    )


def _parse_probes(fields: _Fields, unknown: list[str]) -> tuple[Probe, ...]:
    name = "probes"
    value = fields.require(name, default=[])
    if not isinstance(value, list):
        raise fields.error(name, "expected a list of {prompt, reference} objects", value)
    if len(value) > MAX_PROBES:
        raise SpecError(f"spec field `evaluation.{name}`: expected at most {MAX_PROBES} probes, got {len(value)}")
    probes = []
    for i, item in enumerate(value):
        probe = fields.item(name, i)
        unknown += probe.unknown(_PROBE)
        reference = probe.require("reference", default=None)
        if reference is not None and not isinstance(reference, str):
            raise probe.error("reference", "expected a string or null", reference)
        probes.append(Probe(prompt=probe.string("prompt"), reference=reference if reference and reference.strip() else None))
    return tuple(probes)


def _parse_compare(fields: _Fields | None, unknown: list[str]) -> Compare | None:
    """The optional ``compare`` object (compare mode); unknown keys inside are appended to ``unknown``."""
    if fields is None:
        return None
    unknown += fields.unknown(_COMPARE)
    models = fields.items("models", "a list of {id, label, base_model, adapter} objects", minimum=1,
                         maximum=MAX_COMPARE_MODELS)
    parsed = tuple(_parse_compare_model(model, unknown) for model in models)
    seen: set[str] = set()
    for i, model in enumerate(parsed):
        if model.id in seen:
            raise SpecError(f"spec field `compare.models[{i}].id`: {model.id!r} is given twice")
        seen.add(model.id)
    prompts = None
    if fields.require("prompts", default=None) is not None:
        items = fields.items("prompts", "a list of {messages, reference} objects or null", minimum=1,
                            maximum=MAX_COMPARE_PROMPTS)
        prompts = tuple(_parse_compare_prompt(prompt, unknown) for prompt in items)
    return Compare(models=parsed, prompts=prompts)


def _parse_init_adapter(fields: _Fields | None, unknown: list[str]) -> CompareModel | None:
    """The optional ``init_adapter`` object: a model as ``compare.models`` lists one."""
    return None if fields is None else _parse_compare_model(fields, unknown)


def _parse_compare_model(fields: _Fields, unknown: list[str]) -> CompareModel:
    unknown += fields.unknown(_COMPARE_MODEL)
    adapter = fields.object("adapter")
    unknown += adapter.unknown(_COMPARE_ADAPTER)
    directory = adapter.optional_string("dir")
    urls = adapter.optional_object("urls")
    if (directory is None) == (urls is None):
        raise adapter.error_at('expected exactly one of "dir" or "urls"')
    source = AdapterSource(dir=directory)
    if urls is not None:
        presigned = {}
        for name in urls.keys():
            url = urls.string(name)
            if not _plain_file_name(name):
                raise urls.error(name, "expected a file name without a folder", name)
            if not url.startswith(("http://", "https://")):
                raise urls.error(name, "expected an http(s) URL", url)
            presigned[name] = url
        for name in REQUIRED_ADAPTER_FILES:
            if name not in presigned:
                raise urls.error_at(f"needs a URL for {name!r}")
        source = AdapterSource(urls=presigned)
    return CompareModel(
        id=fields.string("id"), label=fields.string("label"), base_model=fields.string("base_model"), adapter=source
    )


def _plain_file_name(name: str) -> bool:
    """A name that stays inside the folder it is downloaded to (no separators, not ``..``)."""
    return bool(name.strip()) and "/" not in name and "\\" not in name and name not in (".", "..")


def _parse_compare_prompt(fields: _Fields, unknown: list[str]) -> ComparePrompt:
    unknown += fields.unknown(_COMPARE_PROMPT)
    items = fields.items("messages", "a list of {role, content} objects ending with a user message", minimum=1)
    messages = [_parse_message(message, unknown) for message in items]
    if messages[-1]["role"] != "user":
        raise fields.error("messages", "expected the last message to be from the user", messages[-1]["role"])
    reference = fields.require("reference", default=None)
    if reference is not None and not isinstance(reference, str):
        raise fields.error("reference", "expected a string or null", reference)
    return ComparePrompt(tuple(messages), reference if reference and reference.strip() else None)


def _parse_message(fields: _Fields, unknown: list[str]) -> dict[str, str]:
    """One ``{role, content}`` chat message (``system``, ``user`` or ``assistant``)."""
    unknown += fields.unknown(_COMPARE_MESSAGE)
    role = fields.choice("role", COMPARE_ROLES)
    content = fields.require("content")
    if not isinstance(content, str):
        raise fields.error("content", "expected a string", content)
    return {"role": role, "content": content}


def _parse_export(fields: _Fields | None, unknown: list[str]) -> Export | None:
    """The optional ``export`` object (export mode); unknown keys inside are appended to ``unknown``.

    ``quantize`` and ``ollama`` ask for things only a ``gguf`` export has, so another format
    with them is an error rather than a request silently ignored."""
    if fields is None:
        return None
    unknown += fields.unknown(_EXPORT)
    model = _parse_compare_model(fields.object("model"), unknown)
    export_format = fields.choice("format", EXPORT_FORMATS)
    quantize = None if fields.require("quantize", default=None) is None else fields.choice("quantize", GGUF_QUANTIZATIONS)
    if quantize is not None and export_format != "gguf":
        raise fields.error("quantize", f'expected null: only a "gguf" export is quantized (format is "{export_format}")', quantize)
    ollama = fields.boolean("ollama", default=False)
    if ollama and export_format != "gguf":
        raise fields.error("ollama", f'expected false: only a "gguf" export has a Modelfile (format is "{export_format}")', ollama)
    name = fields.string("name")
    if not _EXPORT_NAME.fullmatch(name):
        raise fields.error("name", "expected at most 64 of the characters A-Z a-z 0-9 . _ -", name)
    system_prompt = fields.require("system_prompt", default=None)
    if system_prompt is not None and not isinstance(system_prompt, str):
        raise fields.error("system_prompt", "expected a string or null", system_prompt)
    if system_prompt is not None and '"""' in system_prompt:
        raise fields.error("system_prompt", 'expected no """ (a Modelfile cannot hold it)', system_prompt)
    return Export(
        model=model,
        format=export_format,
        dtype=fields.choice("dtype", EXPORT_DTYPES),
        name=name,
        max_shard_bytes=fields.integer("max_shard_bytes", minimum=MIN_SHARD_BYTES),
        max_shards=fields.integer("max_shards", minimum=1, maximum=MAX_EXPORT_SHARDS),
        quantize=quantize,
        ollama=ollama,
        system_prompt=system_prompt,
        verify=_parse_verify(fields.optional_object("verify"), unknown),
    )


def _parse_verify(fields: _Fields | None, unknown: list[str]) -> Verify:
    """``export.verify``; absent or null fields take the defaults (the built-in prompts, 8 tokens)."""
    if fields is None:
        return Verify()
    unknown += fields.unknown(_VERIFY)
    tokens = fields.integer("tokens", minimum=1, maximum=MAX_VERIFY_TOKENS, default=DEFAULT_VERIFY_TOKENS)
    if fields.require("prompts", default=None) is None:
        return Verify(tokens=tokens)
    where = "export.verify.prompts"
    value = fields.require("prompts")
    if not isinstance(value, list):
        raise fields.error("prompts", "expected a list of conversations (lists of {role, content} objects) or null", value)
    if not 1 <= len(value) <= MAX_VERIFY_PROMPTS:
        raise SpecError(f"spec field `{where}`: expected 1 to {MAX_VERIFY_PROMPTS} conversations, got {len(value)}")
    prompts = []
    for i, conversation in enumerate(value):
        if not isinstance(conversation, list) or not conversation:
            raise SpecError(
                f"spec field `{where}[{i}]`: expected a non-empty list of {{role, content}} objects, got {_describe(conversation)}"
            )
        messages = tuple(_parse_message(_Fields(m, f"{where}[{i}][{j}]."), unknown) for j, m in enumerate(conversation))
        if messages[-1]["role"] != "user":
            last = json.dumps(messages[-1]["role"])
            raise SpecError(f"spec field `{where}[{i}]`: expected the last message to be from the user, got {last}")
        prompts.append(messages)
    return Verify(prompts=tuple(prompts), tokens=tokens)


def _parse_method(hyperparameters: _Fields, unknown: list[str]) -> Method:
    """``hyperparameters.method``: absent or null is ``{"name": "sft"}`` (older specs).

    Every field the named method has is required; β and λ are finite numbers > 0, γ ≥ 0, the
    KTO weights > 0. Keys the method does not have are reported as unknown fields.
    """
    if hyperparameters.require("method", default=None) is None:
        return Method()
    fields = hyperparameters.object("method")
    name = fields.choice("name", METHODS)
    wanted = _METHOD_FIELDS[name]
    unknown += fields.unknown({"name", *wanted})
    values: dict[str, Any] = {}
    for key in wanted:
        if key == "loss_type":
            values[key] = fields.choice(key, DPO_LOSS_TYPES)
        elif key == "gamma":
            values[key] = fields.number(key, minimum=0.0)
        else:
            values["lambda_" if key == "lambda" else key] = fields.number(key, above=0.0)
    return Method(name=name, **values)


def _parse_target_modules(fields: _Fields) -> tuple[str, ...] | str:
    name = "target_modules"
    value = fields.require(name)
    if value == "all-linear":
        return value
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(item, str) and item.strip() for item in value)
    ):
        raise fields.error(name, 'expected a non-empty list of module names or "all-linear"', value)
    return tuple(value)


def _dataset_of(fields: _Fields | None, compare: Compare | None, export: Export | None) -> DatasetSource:
    """The ``dataset`` object; only a comparison of given prompts and an export read none (and
    may omit it)."""
    if fields is not None:
        return _parse_dataset(fields)
    if export is not None or (compare is not None and compare.prompts is not None):
        return DatasetSource()
    raise SpecError("spec field `dataset` is missing (only a comparison of given prompts or an export reads none)")


def _parse_dataset(fields: _Fields) -> DatasetSource:
    path = fields.optional_string("path")
    url = fields.optional_string("url")
    if (path is None) == (url is None):
        raise SpecError('spec field `dataset`: expected exactly one of "path" or "url"')
    if url is not None and not url.startswith(("http://", "https://")):
        raise fields.error("url", "expected an http(s) URL", url)
    return DatasetSource(path=path, url=url)


def _parse_output(fields: _Fields, required: tuple[str, ...] = REQUIRED_ADAPTER_FILES) -> OutputTarget:
    directory = fields.optional_string("dir")
    urls = fields.optional_object("presigned_put")
    if (directory is None) == (urls is None):
        raise SpecError('spec field `output`: expected exactly one of "dir" or "presigned_put"')
    if urls is None:
        return OutputTarget(dir=directory)
    presigned = {}
    for name in urls.keys():
        url = urls.string(name)
        if not url.startswith(("http://", "https://")):
            raise urls.error(name, "expected an http(s) URL", url)
        presigned[name] = url
    for name in required:
        if name not in presigned:
            raise SpecError(f"spec field `output.presigned_put`: needs a URL for {name!r}")
    return OutputTarget(presigned_put=presigned)


def _default_checkpoint_dir(job_id: str) -> str:
    """A stable per-job folder, so that a retry on the same worker finds earlier checkpoints."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in job_id)
    return str(Path(tempfile.gettempdir()) / "brightrun-checkpoints" / safe)


_MISSING = object()


class _Fields:
    """Typed access to one JSON object of the spec, with errors that name the field."""

    def __init__(self, value: Any, prefix: str):
        if not isinstance(value, dict):
            where = f"`{prefix.rstrip('.')}`" if prefix else "the spec"
            raise SpecError(f"spec field {where}: expected a JSON object, got {_describe(value)}")
        self._value = value
        self._prefix = prefix

    def keys(self):
        return self._value.keys()

    def unknown(self, known: set[str]) -> list[str]:
        return [self._prefix + key for key in self._value if key not in known]

    def error(self, name: str, expectation: str, got: Any) -> SpecError:
        return SpecError(f"spec field `{self._prefix}{name}`: {expectation}, got {_describe(got)}")

    def require(self, name: str, default: Any = _MISSING) -> Any:
        if name not in self._value or (default is not _MISSING and self._value[name] is None):
            if default is not _MISSING:
                return default
            raise SpecError(f"spec field `{self._prefix}{name}` is missing")
        return self._value[name]

    def object(self, name: str) -> _Fields:
        return _Fields(self.require(name), f"{self._prefix}{name}.")

    def item(self, name: str, index: int) -> _Fields:
        """Element ``index`` of the list field ``name``, which must be an object."""
        return _Fields(self._value[name][index], f"{self._prefix}{name}[{index}].")

    def items(self, name: str, expectation: str, *, minimum: int = 0, maximum: int | None = None) -> list[_Fields]:
        """The list field ``name``, each element an object, with ``minimum``..``maximum`` of them."""
        value = self.require(name)
        if not isinstance(value, list):
            raise self.error(name, f"expected {expectation}", value)
        if len(value) < minimum or (maximum is not None and len(value) > maximum):
            bound = f"at least {minimum}" if len(value) < minimum else f"at most {maximum}"
            raise SpecError(f"spec field `{self._prefix}{name}`: expected {bound} elements, got {len(value)}")
        return [self.item(name, i) for i in range(len(value))]

    def error_at(self, expectation: str) -> SpecError:
        """An error about this object as a whole (``spec field `compare.models[0].adapter`: …``)."""
        return SpecError(f"spec field `{self._prefix.rstrip('.')}`: {expectation}")

    def optional_object(self, name: str) -> _Fields | None:
        value = self._value.get(name)
        return None if value is None else _Fields(value, f"{self._prefix}{name}.")

    def string(self, name: str) -> str:
        value = self.require(name)
        if not isinstance(value, str) or not value.strip():
            raise self.error(name, "expected a non-empty string", value)
        return value

    def optional_string(self, name: str) -> str | None:
        return None if self._value.get(name) is None else self.string(name)

    def boolean(self, name: str, default: Any = _MISSING) -> bool:
        value = self.require(name, default)
        if not isinstance(value, bool):
            raise self.error(name, "expected true or false", value)
        return value

    def choice(self, name: str, allowed: tuple[str, ...], default: Any = _MISSING) -> str:
        value = self.require(name, default)
        if value not in allowed:
            raise self.error(name, "expected one of " + ", ".join(map(repr, allowed)), value)
        return value

    def integer(
        self, name: str, *, minimum: int | None = None, maximum: int | None = None, default: Any = _MISSING
    ) -> int:
        value = self.require(name, default)
        # JSON writers may print whole numbers as 4.0; bools are never numbers here.
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.error(name, "expected an integer", value)
        if minimum is not None and value < minimum:
            raise self.error(name, f"expected an integer ≥ {minimum}", value)
        if maximum is not None and value > maximum:
            raise self.error(name, f"expected an integer ≤ {maximum}", value)
        return value

    def optional_integer(self, name: str, *, minimum: int | None = None) -> int | None:
        return None if self._value.get(name) is None else self.integer(name, minimum=minimum)

    def number(
        self,
        name: str,
        *,
        minimum: float | None = None,
        above: float | None = None,
        below: float | None = None,
    ) -> float:
        value = self.require(name)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise self.error(name, "expected a finite number", value)
        if minimum is not None and value < minimum:
            raise self.error(name, f"expected a number ≥ {minimum}", value)
        if above is not None and value <= above:
            raise self.error(name, f"expected a number > {above}", value)
        if below is not None and value >= below:
            raise self.error(name, f"expected a number < {below}", value)
        return float(value)


def _describe(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."
