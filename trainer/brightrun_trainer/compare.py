"""Compare mode: adapters and their base models answer one prompt set (PROTOCOL.md, "Compare
mode (`models eval`)").

A spec with a ``compare`` object trains nothing. Its models are grouped by base model; each
base is loaded once, every adapter of that base is added to the same ``PeftModel`` under its
own adapter name, and the base (adapters disabled) and then each adapter answer the same
prompts. The base is always a column of its own, so every comparison includes what the
adapters started from. One base is freed before the next is loaded: only one is ever in memory.

Answers are produced and scored exactly as the ``evaluating`` stage does (:mod:`.evaluation`:
chat template with the generation prompt, greedy decoding, ROUGE-L F1 against the
reference), so a comparison and an adapter's ``evaluation.json`` agree on the same prompts.
Without prompts of its own the comparison asks what the ``evaluating`` stage would ask (the
held-out examples of the dataset, split as training split them, then the probes) and measures
each model's held-out loss on the validation split.

The result is ``comparison.json``, the run's only output. As in the ``evaluating`` stage, a
part that fails (a model's losses or answers) is recorded in its ``error`` and the rest is
still written; an adapter that cannot be fetched or loaded fails the run, naming the model.

The helpers before "Running" need no torch.
"""

from __future__ import annotations

import contextlib
import gc
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from . import evaluation
from .errors import InfrastructureError, TrainingError, is_out_of_memory
from .evaluation import (
    SIMILARITY,
    EvaluationStopped,
    changed,
    perplexity,
    probes_of,
    rouge_l_f1,
    sample_prompts,
)
from .failure import disk_full_cause
from .spec import COMPARISON_FILE, CompareModel, ComparePrompt, Evaluation, JobSpec
from .transfer import download, http_status

COMPARISON_VERSION = 1
#: HTTP statuses that mean an adapter file is not in storage: the input's fault, not the network's.
MISSING_STATUSES = (404, 410)


# --------------------------------------------------------------------------- prompts


@dataclass(frozen=True)
class Item:
    """One prompt of the comparison, whatever its origin."""

    #: The messages to answer (chat-template dicts), ending where the answer starts.
    chat: list[dict[str, Any]]
    tools: tuple[dict[str, Any], ...]
    #: The last user message's text, for display.
    prompt: str
    #: How many messages come before that user message.
    context_turns: int
    reference: str | None
    probe: bool = False
    builtin: bool = False


def given_items(prompts: tuple[ComparePrompt, ...]) -> list[Item]:
    """The spec's own prompts, in order (each ends with a user turn, checked by the spec)."""
    return [
        Item(
            chat=[dict(message) for message in prompt.messages],
            tools=(),
            prompt=prompt.messages[-1]["content"],
            context_turns=len(prompt.messages) - 1,
            reference=prompt.reference,
        )
        for prompt in prompts
    ]


def dataset_items(dataset, settings: Evaluation) -> tuple[str, list[Item]]:
    """``(prompts_from, items)``: what the ``evaluating`` stage asks, in its order: up to
    ``samples`` held-out examples (training examples when there is no validation split),
    then the built-in probes when on, then the spec's probes."""
    prompts_from = "validation" if dataset.validation else "training"
    samples = sample_prompts(dataset.validation or dataset.train, settings.samples)
    items = [
        Item(chat=s.chat, tools=s.tools, prompt=s.prompt, context_turns=s.context_turns, reference=s.reference)
        for s in samples
    ]
    for probe, builtin in probes_of(settings):
        chat = [{"role": "user", "content": probe.prompt}]
        items.append(Item(chat, (), probe.prompt, 0, probe.reference, probe=True, builtin=builtin))
    return prompts_from, items


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class Column:
    """One answering model: a base (its adapters disabled) or one adapter over it."""

    id: str
    label: str
    base_model: str
    #: The adapter's name inside its base's ``PeftModel``; ``None`` for the base itself.
    adapter: str | None = None
    #: The spec's entry (``None`` for a base).
    model: CompareModel | None = None


def base_column(base_model: str) -> Column:
    return Column(id=f"base:{base_model}", label=f"{base_model} (base)", base_model=base_model)


def columns_of(models: tuple[CompareModel, ...] | list[CompareModel]) -> list[list[Column]]:
    """The models grouped by base model, bases in order of first mention, each group its base
    column then its adapters in spec order. Adapter names are positional (``adapter_0`` …):
    ids may hold characters PEFT does not accept in a module name."""
    groups: dict[str, list[Column]] = {}
    for index, model in enumerate(models):
        group = groups.setdefault(model.base_model, [base_column(model.base_model)])
        group.append(Column(model.id, model.label, model.base_model, adapter=f"adapter_{index}", model=model))
    return list(groups.values())


def describe(model: CompareModel) -> str:
    """How errors name a model: its label and id."""
    return f"model {model.label} (id {model.id})"


# --------------------------------------------------------------------------- result


def empty_comparison(
    prompts_from: str, max_new_tokens: int, columns: list[Column], items: list[Item]
) -> dict[str, Any]:
    """The document before anything is answered: every answer and number null."""
    return {
        "version": COMPARISON_VERSION,
        "similarity": SIMILARITY,
        "prompts_from": prompts_from,
        "decoding": {"do_sample": False, "max_new_tokens": max_new_tokens},
        "models": [model_entry(column) for column in columns],
        "prompts": [prompt_entry(item, len(columns)) for item in items],
        "tokens_scored": None,
        "seconds": None,
        "error": None,
    }


def model_entry(column: Column) -> dict[str, Any]:
    return {
        "id": column.id,
        "label": column.label,
        "base_model": column.base_model,
        "adapter": column.adapter is not None,
        "loss": None,
        "perplexity": None,
        "tokens_scored": None,
        "mean_score": None,
        "best": 0,
        "seconds": None,
    }


def prompt_entry(item: Item, models: int) -> dict[str, Any]:
    return {
        "prompt": item.prompt,
        "context_turns": item.context_turns,
        "reference": item.reference,
        "probe": item.probe,
        "builtin": item.builtin,
        "answers": [{"text": None, "score": None} for _ in range(models)],
    }


def base_indices(columns: list[Column]) -> list[int | None]:
    """For each column, the index of its base's column (``None`` for a base column)."""
    where = {column.base_model: i for i, column in enumerate(columns) if column.adapter is None}
    return [None if column.adapter is None else where[column.base_model] for column in columns]


def score_answers(prompts: list[dict[str, Any]], bases: list[int | None]) -> None:
    """Each answer's ``score`` (ROUGE-L F1 against the reference; null without a reference or
    an answer) and, for probes, each adapter answer's ``changed`` against its base's answer."""
    for row in prompts:
        answers = row["answers"]
        for index, answer in enumerate(answers):
            text = answer["text"]
            scored = text is not None and row["reference"] is not None
            answer["score"] = rouge_l_f1(text, row["reference"]) if scored else None
            if row["probe"] and bases[index] is not None:
                base = answers[bases[index]]["text"]
                answer["changed"] = changed(base, text) if base is not None and text is not None else None


def mean_scores(prompts: list[dict[str, Any]], models: int) -> list[float | None]:
    """Per model, the mean score over the prompts with a reference it answered (null if none)."""
    means = []
    for index in range(models):
        scores = [row["answers"][index]["score"] for row in prompts if row["reference"] is not None]
        scores = [score for score in scores if score is not None]
        means.append(sum(scores) / len(scores) if scores else None)
    return means


def best_counts(prompts: list[dict[str, Any]], models: int) -> list[int]:
    """Per model, the prompts with a reference where its score is strictly the highest of all
    (a tie for first place counts for nobody)."""
    counts = [0] * models
    for row in prompts:
        if row["reference"] is None:
            continue
        scores = [(a["score"], index) for index, a in enumerate(row["answers"]) if a["score"] is not None]
        if not scores:
            continue
        top = max(score for score, _ in scores)
        leaders = [index for score, index in scores if score == top]
        if len(leaders) == 1:
            counts[leaders[0]] += 1
    return counts


def finish(result: dict[str, Any], columns: list[Column]) -> None:
    """Scores, ``changed``, ``mean_score`` and ``best`` from the answers, and the top-level
    ``tokens_scored`` (the first model's: the models of one base score the same tokens)."""
    prompts, models = result["prompts"], result["models"]
    score_answers(prompts, base_indices(columns))
    for entry, mean, best in zip(models, mean_scores(prompts, len(models)), best_counts(prompts, len(models))):
        entry["mean_score"], entry["best"] = mean, best
    result["tokens_scored"] = next((m["tokens_scored"] for m in models if m["tokens_scored"] is not None), None)


def model_line(entry: dict[str, Any], scored: int) -> str:
    """The ``log`` line of one model: "zubrowka-v2: mean ROUGE-L 0.80, best on 6 of 8, 11.0 s"."""
    parts = []
    if entry["mean_score"] is not None:
        parts.append(f"mean ROUGE-L {entry['mean_score']:.2f}, best on {entry['best']} of {scored}")
    else:
        parts.append("no answer scored (no reference)" if not scored else "no answer scored")
    if entry["loss"] is not None:
        parts.append(f"held-out loss {entry['loss']:.2f}")
    if entry["seconds"] is not None:
        parts.append(f"{entry['seconds']:.1f} s")
    return f"{entry['label']}: " + ", ".join(parts)


def to_json(result: dict[str, Any]) -> bytes:
    return evaluation.to_json(result)


# --------------------------------------------------------------------------- adapter files


def fetch_adapters(models: tuple[CompareModel, ...], scratch: Path, emitter) -> dict[str, Path]:
    """The adapter folder of every model, by id: a ``dir`` as given (checked), ``urls``
    downloaded into ``scratch``. Everything is fetched before any model loads, so a missing
    adapter fails the run at once."""
    folders: dict[str, Path] = {}
    for index, model in enumerate(models):
        if model.adapter.dir is not None:
            folders[model.id] = _checked_folder(model)
            continue
        folder = scratch / "adapters" / str(index)
        folder.mkdir(parents=True, exist_ok=True)
        emitter.info(f"downloading the adapter of {model.label} ({len(model.adapter.urls)} files)")
        for name, url in sorted(model.adapter.urls.items()):
            _download_adapter_file(model, name, url, folder / name)
        folders[model.id] = folder
    return folders


def _checked_folder(model: CompareModel) -> Path:
    folder = Path(model.adapter.dir)
    if not folder.is_dir():
        raise TrainingError(f"{describe(model)}: its adapter folder {folder} does not exist")
    if not (folder / "adapter_config.json").is_file():
        raise TrainingError(f"{describe(model)}: its adapter folder {folder} has no adapter_config.json")
    return folder


def _download_adapter_file(model: CompareModel, name: str, url: str, destination: Path) -> None:
    """A 404/410 means the file is not in storage (the input's fault: ``training``, not
    retried); any other failure is the network's (``infrastructure``)."""
    try:
        download(url, destination, what=f"the adapter file {name}")
    except InfrastructureError as exc:
        if http_status(exc) in MISSING_STATUSES:
            missing = f"{describe(model)}: {exc.reason} (the adapter's files are missing from storage)"
            raise TrainingError(missing) from exc
        raise InfrastructureError(f"{describe(model)}: {exc.reason}") from exc


# --------------------------------------------------------------------------- running


def run_comparison(spec: JobSpec, dataset, emitter, stop, scratch: Path) -> dict[str, Any] | None:
    """Answer and score with every model; the ``comparison.json`` document, or ``None`` after a
    stop request. ``dataset`` is the :class:`~.data.LoadedDataset` (``None`` when the spec
    gives the prompts). Emits the ``evaluating`` stage; loading happens in ``initializing``."""
    started = time.monotonic()
    settings = spec.evaluation or Evaluation()
    if spec.compare.prompts is not None:
        prompts_from, items = "prompts", given_items(spec.compare.prompts)
    else:
        prompts_from, items = dataset_items(dataset, settings)
    groups = columns_of(spec.compare.models)
    columns = [column for group in groups for column in group]
    result = empty_comparison(prompts_from, settings.max_new_tokens, columns, items)
    run = _Run(spec, settings, items, result, [], emitter, stop)
    folders = fetch_adapters(spec.compare.models, scratch, emitter)
    validation = dataset.validation if dataset is not None else []

    loaded = _load_group(groups[0], folders, spec, validation, emitter)
    what = [f"answering {len(items)} prompts with {len(columns)} models"]
    if validation:
        what.append(f"held-out loss on {len(validation)} validation examples")
    emitter.stage("evaluating", "; ".join(what))
    stop.defer()  # from here on a stop ends the comparison at the next batch or token
    offset = 0
    try:
        for number, group in enumerate(groups):
            if number:
                _stop_if_requested(stop)
                loaded = _load_group(group, folders, spec, validation, emitter)
            _answer_group(run, loaded, group, offset)
            offset += len(group)
            loaded = None
            _free_memory()
    except EvaluationStopped:
        emitter.info("comparison interrupted by a stop request")
        return None
    finish(result, columns)
    result["seconds"] = time.monotonic() - started
    result["error"] = "; ".join(run.errors) or None
    scored = sum(row["reference"] is not None for row in result["prompts"])
    for entry in result["models"]:
        emitter.info(model_line(entry, scored))
    return result


def _stop_if_requested(stop) -> None:
    if stop.requested:
        raise EvaluationStopped()


@dataclass
class _Run:
    """What every group of one comparison shares: the prompts, the document being filled,
    the failures recorded so far, and where events and stop requests go."""

    spec: JobSpec
    settings: Evaluation
    items: list[Item]
    result: dict[str, Any]
    errors: list[str]
    emitter: Any
    stop: Any


@dataclass
class _Loaded:
    """One base model in memory with its adapters, and what answering with it needs."""

    model: Any
    tokenizer: Any
    harness: evaluation.Harness
    #: The validation examples encoded with this base's tokenizer (empty: no losses).
    eval_set: list


def _load_group(group: list[Column], folders: dict[str, Path], spec: JobSpec, validation, emitter) -> _Loaded:
    """Load a base once and add each of its adapters under its own name."""
    import transformers

    from .encoding import encode_examples, prepare_tokenizer
    from .train import load_base_model, load_tokenizer, resolve_base_model, select_precision

    transformers.utils.logging.set_verbosity_warning()
    transformers.utils.logging.disable_progress_bar()
    base = group[0].base_model
    path = resolve_base_model(base, emitter)
    adapters = len(group) - 1
    emitter.info(f"loading base model {base} and {adapters} adapter{'s' if adapters != 1 else ''}")
    tokenizer = load_tokenizer(path, base)
    for note in prepare_tokenizer(tokenizer):
        emitter.info(note)
    precision = select_precision()
    model = _attach_adapters(load_base_model(path, base, precision, quantize=False), group[1:], folders)
    model.eval()
    eval_set = encode_examples(tokenizer, validation, spec.hyperparameters.max_seq_length)[0] if validation else []
    harness = _harness(model, tokenizer, precision, spec.hyperparameters.batch_size)
    return _Loaded(model, tokenizer, harness, eval_set)


def _attach_adapters(model, columns: list[Column], folders: dict[str, Path]):
    """One ``PeftModel`` holding every adapter of ``columns``, each under its column's name."""
    from peft import PeftModel

    peft_model = None
    for column in columns:
        folder = str(folders[column.id])
        try:
            if peft_model is None:
                peft_model = PeftModel.from_pretrained(model, folder, adapter_name=column.adapter)
            else:
                peft_model.load_adapter(folder, adapter_name=column.adapter)
        except Exception as exc:
            error = _adapter_error(column.model, exc)
            if error is exc:
                raise
            raise error from exc
    return peft_model


def _adapter_error(model: CompareModel, exc: Exception) -> Exception:
    """An adapter that does not load is the input's fault (missing or corrupt files, another
    base's adapter), named with its model; a full disk or memory keeps its own meaning."""
    if disk_full_cause(exc) is not None or is_out_of_memory(exc):
        return exc
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return TrainingError(f"{describe(model)}: could not load its adapter ({type(exc).__name__}: {first})")


def _harness(model, tokenizer, precision, batch_size: int) -> evaluation.Harness:
    """The :class:`~.evaluation.Harness` of a model loaded here: padded batches of the
    validation rows and the chunked loss (the model's own where it cannot stand in), under
    the autocast training would use, so the losses match the ``evaluating`` stage's."""
    import torch

    from .efficiency import chunked_lm_loss, chunked_loss_supported
    from .encoding import PaddingCollator

    causal_lm = model.get_base_model()
    device = causal_lm.device
    chunked = chunked_loss_supported(causal_lm) is None

    def autocast():
        if precision.on_cuda:
            return torch.autocast(device_type=device.type, dtype=precision.dtype)
        return contextlib.nullcontext()

    def loss(model, batch):
        inputs = {key: value.to(device) for key, value in batch.items()}
        with autocast():
            if chunked:
                return chunked_lm_loss(model, causal_lm, inputs)
            return model(**inputs, use_cache=False).loss

    return evaluation.Harness(device, batch_size, PaddingCollator(tokenizer.pad_token_id), autocast, loss)


def _answer_group(run: _Run, loaded: _Loaded, group: list[Column], offset: int) -> None:
    """Losses and answers of each column of one base, the base first (``offset``: the index
    of the base's column in ``models``)."""
    max_seq_length = run.spec.hyperparameters.max_seq_length
    generator = evaluation._Generator(
        loaded.harness, loaded.model, loaded.tokenizer, run.settings.max_new_tokens, max_seq_length, run.stop
    )
    models = run.result["models"]
    for number, column in enumerate(group):
        index = offset + number
        entry = models[index]
        run.emitter.info(f"answering with {column.label} (model {index + 1} of {len(models)})")
        started = time.monotonic()
        with _active(loaded.model, column):
            if loaded.eval_set:
                _guarded(run, f"held-out loss of {column.label}", lambda: _column_loss(loaded, entry, run.stop))
            if run.items:
                _guarded(run, f"answers of {column.label}", lambda: _column_answers(generator, run, index))
        entry["seconds"] = time.monotonic() - started


def _guarded(run: _Run, part: str, work) -> None:
    evaluation._guarded(run.errors, run.emitter, part, work, name="comparison", keeps=COMPARISON_FILE)


@contextlib.contextmanager
def _active(model, column: Column) -> Iterator[None]:
    """The base with every adapter disabled, or just this column's adapter."""
    if column.adapter is None:
        with model.disable_adapter():
            yield
    else:
        model.set_adapter(column.adapter)
        yield


def _column_loss(loaded: _Loaded, entry: dict[str, Any], stop) -> None:
    total, tokens = evaluation._loss_sum(loaded.harness, loaded.model, loaded.eval_set, stop)
    entry["tokens_scored"] = tokens
    if tokens:
        entry["loss"] = total / tokens
        entry["perplexity"] = perplexity(entry["loss"])


def _column_answers(generator, run: _Run, index: int) -> None:
    """Column ``index``'s answer to every item, in batches; answers land as they come, so a
    failure keeps the earlier ones."""
    items, rows = run.items, run.result["prompts"]
    for start, end in batches(items, generator.batch_size):
        batch = items[start:end]
        texts = generator.answers([generator.prompt_ids(item.chat, item.tools) for item in batch])
        for row, text in zip(rows[start:end], texts):
            row["answers"][index]["text"] = text


def batches(items: list[Item], size: int) -> list[tuple[int, int]]:
    """``(start, end)`` of each generation batch: at most ``size`` items, never mixing samples
    and probes. The ``evaluating`` stage batches them apart, and a prompt's left padding depends
    on its batch, so the same batches give the same answers as its ``evaluation.json``."""
    spans: list[tuple[int, int]] = []
    start = 0
    while start < len(items):
        end = start + 1
        while end < len(items) and end - start < size and items[end].probe == items[start].probe:
            end += 1
        spans.append((start, end))
        start = end
    return spans


def _free_memory() -> None:
    """Let a base model go before the next one loads (its GPU memory included)."""
    gc.collect()
    evaluation.release_cuda_memory()
