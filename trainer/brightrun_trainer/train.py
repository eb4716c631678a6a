"""LoRA fine-tuning with PEFT and the Hugging Face ``Trainer``.

The plain ``Trainer`` (rather than TRL's ``SFTTrainer``) is used on purpose: tokenisation,
assistant-only loss masking and padding are done here (see :mod:`.encoding`), so the only
library surface this module relies on is the long-stable ``Trainer`` loop, callbacks and
checkpoint format. Checkpoints are the Trainer's own folders, which is what makes
``resume_from`` a plain ``trainer.train(resume_from_checkpoint=…)``.

Importing this module imports torch, transformers and peft; the runner imports it only
after the spec and the dataset have been checked, and reports an ``ImportError`` as an
infrastructure error.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training
import torch
import transformers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PrinterCallback,
    Trainer,
    TrainerState,
    TrainingArguments,
)
from transformers.trainer_pt_utils import LengthGroupedSampler, get_length_grouped_indices

from . import SMOLLM2_MODEL_ID, TINY_MODEL_ID
from .data import LoadedDataset, skipped_warning
from .devices import forbid_data_parallel, is_rank_zero, local_rank
from .efficiency import (
    Batching,
    activation_bytes,
    choose_batching,
    chunked_lm_loss,
    chunked_loss_supported,
    decide_checkpointing,
    enable_tf32,
    logits_bytes,
    free_gpu_memory,
    varlen_attention_available,
)
from .encoding import (
    EncodingReport,
    FlatteningCollator,
    PaddingCollator,
    encode_examples,
    pack_examples,
    prepare_tokenizer,
)
from .errors import DatasetError, InfrastructureError, TrainingError, model_load_error
from .events import EventEmitter
from .progress import LossWatch, ProgressReporter, TokenMeter
from .signals import StopSignal
from .spec import Efficiency, Hyperparameters, JobSpec
from .smollm2 import SmolLM2Unavailable, ensure_smollm2, smollm2_folder
from .tiny_model import ensure_tiny_model


@dataclass
class TrainingOutcome:
    """What the runner needs after training: the model to save and the numbers to report."""

    stopped: bool
    model: PeftModel
    tokenizer: Any
    global_step: int
    epoch: float
    final_training_loss: float | None
    final_validation_loss: float | None
    train_runtime_seconds: float
    train_tokens: int
    trainable_parameters: int
    total_parameters: int
    checkpoint: str | None = None
    #: Whether that checkpoint was also stored as an archive (``checkpoint_upload``).
    checkpoint_stored: bool = False
    #: The ``evaluating`` stage's result (``evaluation.json``), when the spec asked for one.
    evaluation: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        """The ``done`` event's summary (PROTOCOL.md)."""
        return {
            "total_steps": self.global_step,
            "epochs": self.epoch,
            "final_training_loss": self.final_training_loss,
            "final_validation_loss": self.final_validation_loss,
            "train_runtime_seconds": self.train_runtime_seconds,
            "train_tokens": self.train_tokens,
            "trainable_parameters": self.trainable_parameters,
            "total_parameters": self.total_parameters,
        }


@dataclass(frozen=True)
class Precision:
    """How the base model is held and how the Trainer mixes precision on this machine."""

    dtype: torch.dtype
    bf16: bool = False
    fp16: bool = False

    @property
    def on_cuda(self) -> bool:
        return self.bf16 or self.fp16


def select_precision() -> Precision:
    if torch.cuda.is_available():
        if torch.cuda.is_bf16_supported():
            return Precision(torch.bfloat16, bf16=True)
        return Precision(torch.float16, fp16=True)
    return Precision(torch.float32)


def train(
    spec: JobSpec, dataset: LoadedDataset, emitter: EventEmitter, stop: StopSignal, *, init_adapter: Path | None = None
) -> TrainingOutcome:
    """Train the adapter described by ``spec``; returns with ``stopped`` set after a stop request.
    ``init_adapter`` is the folder of an adapter to start from instead of fresh LoRA weights.
    The preference methods (``hyperparameters.method`` other than sft) train in :mod:`.preference`."""
    hp = spec.hyperparameters
    if hp.method.is_preference:
        from .preference import train_preference

        return train_preference(spec, dataset, emitter, stop, init_adapter=init_adapter)
    transformers.utils.logging.set_verbosity_warning()
    transformers.utils.logging.disable_progress_bar()
    precision = select_precision()
    quantize = check_quantization(hp)  # before any download or load: fail fast
    _check_resume_folder(spec.resume_from)
    if precision.on_cuda and enable_tf32():
        emitter.info("TF32 matmuls on (Ampere or later GPU)")
    batching = choose_batching(spec.efficiency, varlen_attention_available(precision.on_cuda))
    emitter.info(batching.reason)

    model_path = resolve_base_model(spec.base_model, emitter)
    emitter.info(f"loading base model {spec.base_model}")
    tokenizer = load_tokenizer(model_path, spec.base_model)
    for note in prepare_tokenizer(tokenizer):
        emitter.info(note)
    train_set, validation_set = _encode(tokenizer, dataset, hp, emitter)
    if batching.mode == "packed":
        train_set, validation_set = _pack(train_set, validation_set, hp.max_seq_length, emitter)
    attention = batching.attention if batching.attention.startswith("flash") else None
    model = load_base_model(model_path, spec.base_model, precision, quantize=quantize, attention=attention)
    liger = _liger_available(spec.efficiency, emitter)
    chunked = _use_chunked_loss(spec.efficiency, model, liger, emitter)
    checkpointing, why = _decide_checkpointing(
        spec.efficiency, model, hp, precision, train_set, logits=not (chunked or liger)
    )
    emitter.info(why)
    if quantize:
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    if init_adapter is not None:
        model = continue_adapter(model, hp, init_adapter, spec)
        emitter.info(f"starting from the adapter of {spec.init_adapter.label} ({spec.init_adapter.id[:8]})")
    else:
        model = attach_lora(model, hp, spec.base_model)
    trainable, total = model.get_nb_trainable_parameters()
    emitter.info(f"LoRA adapter: {trainable:,} trainable of {total:,} parameters")
    if spec.efficiency.torch_compile:
        model.get_base_model().get_decoder().compile()  # in place: both loss paths run the compiled decoder
        emitter.info("torch.compile: the decoder is compiled (the first steps include compilation)")

    args = training_arguments(spec, precision, checkpointing=checkpointing, liger=liger)
    if forbid_data_parallel(args):
        emitter.warning("several GPUs are visible to one trainer process: training on the first only (no DataParallel)")
    emitter.info(global_batch_note(hp, args.world_size))
    tokens, losses = TokenMeter(), LossWatch()
    reporter = ProgressReporter(
        emitter,
        stop,
        tokens,
        has_validation=bool(validation_set),
        losses=losses,
        last_checkpoint=spec.resume_from,
        checkpoint_steps=spec.checkpoint_steps,
        archives=_checkpoint_store(spec, emitter),
    )
    trainer = _MeteredTrainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=validation_set or None,
        data_collator=_collator(batching, tokenizer),
        callbacks=[reporter],
        token_meter=tokens,
        loss_watch=losses,
        chunked_loss=chunked,
        lengths=[len(row.input_ids) for row in train_set] if batching.mode == "grouped" else None,
    )
    trainer.remove_callback(PrinterCallback)  # it prints every log dict to stdout

    runtime = _train_and_evaluate(trainer, reporter, spec, emitter, stop, len(train_set), len(validation_set))
    evaluation = None
    if not stop.requested and spec.evaluation is not None and is_rank_zero():
        # Rank 0 alone: the other ranks of a data-parallel run have nothing left to do.
        from .evaluation import evaluate

        evaluation = evaluate(
            trainer, model, tokenizer, spec.evaluation, dataset, emitter, stop, max_seq_length=hp.max_seq_length
        )
    checkpoint = None
    if stop.requested:
        checkpoint = reporter.stop_checkpoint or _save_checkpoint_now(trainer, reporter)
    elif reporter.archives is not None:
        reporter.archives.finish()  # completed: the stored checkpoints' folders are not needed here
    tokens.take()  # fold the last window into the total
    return TrainingOutcome(
        stopped=stop.requested,
        model=model,
        tokenizer=tokenizer,
        global_step=trainer.state.global_step,
        epoch=float(trainer.state.epoch or 0.0),
        final_training_loss=_first_not_none(
            reporter.last_training_loss, _last_logged(trainer.state.log_history, "loss")
        ),
        final_validation_loss=reporter.last_validation_loss,
        train_runtime_seconds=runtime,
        train_tokens=tokens.total,
        trainable_parameters=trainable,
        total_parameters=total,
        checkpoint=checkpoint,
        checkpoint_stored=checkpoint is not None and reporter.last_checkpoint_stored,
        evaluation=evaluation,
    )


def _train_and_evaluate(
    trainer: Trainer,
    reporter: ProgressReporter,
    spec: JobSpec,
    emitter: EventEmitter,
    stop: StopSignal,
    train_count: int,
    validation_count: int,
):
    """The ``training`` and ``validating`` stages; returns the training time in seconds.

    A stop request ends either stage early (the caller checkpoints).
    """
    stop.defer()  # from here on a signal means "checkpoint at the next step boundary"
    stop.raise_if_requested()  # a signal that arrived just before still counts as early
    resumed = f" from checkpoint {spec.resume_from}" if spec.resume_from else ""
    emitter.stage("training", f"training on {train_count} examples{resumed}")
    finished = _finished_checkpoint_state(spec.resume_from)
    if finished is None:
        runtime = float(trainer.train(resume_from_checkpoint=spec.resume_from).metrics.get("train_runtime", 0.0))
    else:
        _adopt_finished_checkpoint(trainer, spec.resume_from, finished)
        runtime = 0.0
    if not stop.requested and validation_count:
        emitter.stage("validating", f"evaluating on {validation_count} held-out examples")
        trainer.evaluate()
    reporter.flush()
    return runtime


def _finished_checkpoint_state(path: str | None) -> TrainerState | None:
    """The saved state of a checkpoint taken after its last step (a stop during validation).

    ``Trainer.train`` would run one step too many from such a checkpoint, so it is not
    resumed but adopted as is.
    """
    if path is None:
        return None
    state = TrainerState.load_from_json(str(Path(path) / "trainer_state.json"))
    return state if state.max_steps and state.global_step >= state.max_steps else None


def _adopt_finished_checkpoint(trainer: Trainer, path: str, state: TrainerState) -> None:
    trainer.model.load_adapter(path, adapter_name="default", is_trainable=False)
    trainer.state = state


# --------------------------------------------------------------------------- model


def resolve_base_model(base_model: str, emitter: EventEmitter | None = None) -> str:
    """A local folder or hub id for ``from_pretrained``; BrightRun's own models are built on
    demand (once per machine, then read from the cache)."""
    if base_model == TINY_MODEL_ID:
        return str(ensure_tiny_model())
    if base_model == SMOLLM2_MODEL_ID:
        if emitter is not None and not (smollm2_folder() / "config.json").is_file():
            emitter.info(f"preparing {SMOLLM2_MODEL_ID} (built from its GGUF once per machine: ~30 s on a CPU)")
        try:
            return str(ensure_smollm2())
        except SmolLM2Unavailable as exc:
            raise InfrastructureError(str(exc)) from exc
    return base_model


def load_tokenizer(model_path: str, model_id: str):
    try:
        return AutoTokenizer.from_pretrained(model_path)
    except Exception as exc:
        raise model_load_error(exc, model_id, "tokenizer") from exc


def check_quantization(hp: Hyperparameters) -> bool:
    """Whether to load the base model in 4 bits (QLoRA); raises when asked for and impossible.

    A 4-bit job was sized for a 4-bit model: loading the 16-bit one instead would run out of
    memory or silently train something else, so a worker without a CUDA GPU or without
    bitsandbytes refuses the job (``infrastructure``: another worker can run it).
    """
    if hp.quantization != "4bit":
        return False
    missing = []
    if not torch.cuda.is_available():
        missing.append("a CUDA GPU")
    if importlib.util.find_spec("bitsandbytes") is None:
        missing.append("the bitsandbytes package")
    if missing:
        raise InfrastructureError(
            f'quantization "4bit" (QLoRA) needs a CUDA GPU with the bitsandbytes package, and this worker '
            f'lacks {" and ".join(missing)}: run the job on a CUDA worker with bitsandbytes installed '
            '(pip install bitsandbytes; the BrightRun CUDA worker image has it), or set quantization = "none"'
        )
    return True


def load_base_model(
    model_path: str, model_id: str, precision: Precision, *, quantize: bool, attention: str | None = None
):
    """Load the base model straight onto its GPU (``device_map``): no full CPU copy first."""
    kwargs: dict[str, Any] = {"dtype": precision.dtype}
    if attention is not None:
        kwargs["attn_implementation"] = attention
    if precision.on_cuda:
        kwargs["device_map"] = {"": local_rank() if local_rank() is not None else torch.cuda.current_device()}
    if quantize:
        kwargs["quantization_config"] = transformers.BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=precision.dtype,
        )
    try:
        model = AutoModelForCausalLM.from_pretrained(model_path, **kwargs)
    except Exception as exc:
        raise model_load_error(exc, model_id, "model") from exc
    model.config.use_cache = False  # the KV cache only costs memory while training
    return model


def _decide_checkpointing(
    efficiency: Efficiency, model, hp: Hyperparameters, precision: Precision, train_set, *, logits: bool
):
    """Activation checkpointing from the estimated activations of the largest micro-batch
    (``batch_size`` × the longest row: an upper bound for padded and flat batches alike),
    plus the full logits when the model's own loss computes them."""
    longest = max(len(row.input_ids) for row in train_set)
    targets = 7 if isinstance(hp.target_modules, str) else len(hp.target_modules)
    tokens = hp.batch_size * longest
    needed = activation_bytes(model.config, tokens, torch.finfo(precision.dtype).bits // 8, lora_modules=targets)
    if logits:
        needed += logits_bytes(model.config, tokens)
    free = free_gpu_memory() if precision.on_cuda else None
    return decide_checkpointing(efficiency.gradient_checkpointing, on_cuda=precision.on_cuda, needed=needed, free=free)


def _liger_available(efficiency: Efficiency, emitter: EventEmitter) -> bool:
    if not efficiency.liger:
        return False
    if importlib.util.find_spec("liger_kernel") is None:
        emitter.warning("liger is on but the liger-kernel package is not installed: training without Liger kernels")
        return False
    emitter.info("Liger kernels on (fused linear cross-entropy, RMSNorm, RoPE, SwiGLU)")
    return True


def _use_chunked_loss(efficiency: Efficiency, model, liger: bool, emitter: EventEmitter) -> bool:
    if not efficiency.chunked_loss or liger:
        return False  # Liger's fused linear cross-entropy never materialises the logits either
    unsupported = chunked_loss_supported(model)
    if unsupported:
        emitter.info(f"chunked loss off: {unsupported}; the model computes its own loss")
        return False
    return True


def _collator(batching: Batching, tokenizer):
    if batching.flattens:
        return FlatteningCollator(flash_kwargs=batching.attention.startswith("flash"))
    return PaddingCollator(tokenizer.pad_token_id)


def _pack(train_set, validation_set, max_seq_length: int, emitter: EventEmitter):
    packed = pack_examples(train_set, max_seq_length)
    emitter.info(
        f"packing: {len(train_set)} training examples in {len(packed)} rows of at most {max_seq_length} "
        "tokens; batch_size counts rows"
    )
    return packed, pack_examples(validation_set, max_seq_length) if validation_set else validation_set


def attach_lora(model, hp: Hyperparameters, model_id: str) -> PeftModel:
    target_modules = hp.target_modules if isinstance(hp.target_modules, str) else list(hp.target_modules)
    config = LoraConfig(
        r=hp.lora_rank,
        lora_alpha=hp.lora_alpha,
        lora_dropout=hp.lora_dropout,
        target_modules=target_modules,
        bias="none",
        task_type="CAUSAL_LM",
    )
    # LoRA's A matrices start random: seed here so the spec's seed fixes the whole run.
    transformers.set_seed(hp.library_seed)
    try:
        peft_model = get_peft_model(model, config)
    except ValueError as exc:  # e.g. target modules that the model does not have
        raise TrainingError(f"cannot attach LoRA to {model_id}: {str(exc).splitlines()[0]}") from exc
    return peft_model


def continue_adapter(model, hp: Hyperparameters, folder: Path, spec: JobSpec) -> PeftModel:
    """The base with a trained adapter loaded trainable, to train on from it. Its shape must be
    the spec's (the engine checks first; a hand-written spec is checked here)."""
    import json as _json

    saved = _json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    wanted = {"r": hp.lora_rank, "lora_alpha": hp.lora_alpha}
    for key, value in wanted.items():
        if saved.get(key) != value:
            raise TrainingError(
                f"the adapter of {spec.init_adapter.label} has {key} {saved.get(key)}, the run asks for {value}: "
                "training on from a model keeps its LoRA shape"
            )
    transformers.set_seed(hp.library_seed)
    try:
        return PeftModel.from_pretrained(model, str(folder), is_trainable=True)
    except (ValueError, OSError, RuntimeError) as exc:
        raise TrainingError(f"cannot load the adapter of {spec.init_adapter.label}: {str(exc).splitlines()[0]}") from exc


# --------------------------------------------------------------------------- data


def _encode(tokenizer, dataset: LoadedDataset, hp: Hyperparameters, emitter: EventEmitter):
    train_set, train_report = encode_examples(tokenizer, dataset.train, hp.max_seq_length)
    validation_set, validation_report = encode_examples(tokenizer, dataset.validation, hp.max_seq_length)
    _report_encoding(emitter, hp.max_seq_length, train_report, validation_report)
    if not train_set and train_report.rejected_by_template:
        first = train_report.rejections[0]
        raise DatasetError(
            f"no training example is usable: the chat template rejects {train_report.rejected_by_template} "
            f"of them (line {first.line}: {first.reason})"
        )
    if not train_set:
        raise DatasetError(
            f"no training example keeps any assistant token within max_seq_length {hp.max_seq_length}; "
            "raise max_seq_length or shorten the prompts"
        )
    return train_set, validation_set


def _report_encoding(emitter: EventEmitter, max_seq_length: int, *reports: EncodingReport) -> None:
    rejected = sum(r.rejected_by_template for r in reports)
    if rejected:
        rejections = sorted((s for r in reports for s in r.rejections), key=lambda s: s.line)
        emitter.warning(skipped_warning(rejected, rejections))
    truncated = sum(r.truncated for r in reports)
    dropped = sum(r.dropped_no_trainable_tokens for r in reports)
    searched = sum(r.located_by_search for r in reports)
    if truncated:
        emitter.warning(f"{truncated} examples are longer than max_seq_length {max_seq_length} and were truncated")
    if dropped:
        emitter.warning(f"{dropped} examples were dropped: no assistant token within max_seq_length {max_seq_length}")
    if searched:
        emitter.info(f"{searched} examples: assistant turns located by text search (the chat template rewrites turns)")
    missed = sum(r.turns_not_located for r in reports)
    if missed:
        examples = sum(r.examples_with_turns_not_located for r in reports)
        emitter.warning(
            f"{missed} assistant turns in {examples} examples could not be located in the chat template's "
            "rendering (the template rewrites them) and are not trained"
        )


# --------------------------------------------------------------------------- trainer


class _MeteredTrainer(Trainer):
    """A ``Trainer`` that counts the non-padding tokens it trains on (for throughput) and hands
    every micro-batch loss to the reporter's per-step NaN check."""

    def __init__(
        self,
        *args,
        token_meter: TokenMeter,
        loss_watch: LossWatch,
        chunked_loss: bool = False,
        lengths: list[int] | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.token_meter = token_meter
        self.loss_watch = loss_watch
        self.chunked_loss = chunked_loss
        self._lengths = lengths

    def training_step(self, model, inputs, *args, **kwargs):
        mask = inputs.get("attention_mask")
        if mask is not None:
            self.token_meter.add(mask)
        else:
            self.token_meter.add_count(inputs["input_ids"].numel())  # a flat batch is all real tokens
        loss = super().training_step(model, inputs, *args, **kwargs)
        self.loss_watch.add(loss)
        return loss

    def _get_train_sampler(self, train_dataset=None):
        """Length-grouped batches (padded batching) from the encoded lengths: the Trainer's own
        grouping only reads lengths from dict rows."""
        if self._lengths is None:
            return super()._get_train_sampler(train_dataset)
        return EpochSeededLengthGroupedSampler(
            self.args.train_batch_size * self.args.gradient_accumulation_steps,
            lengths=self._lengths,
            seed=self.args.data_seed if self.args.data_seed is not None else self.args.seed,
        )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The chunked LM-head loss (:func:`.efficiency.chunked_lm_loss`) in place of the model's:
        the same number, without the logits in memory."""
        if not self.chunked_loss:
            return super().compute_loss(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
        causal_lm = self.accelerator.unwrap_model(model).get_base_model()
        loss = chunked_lm_loss(model, causal_lm, inputs, num_items_in_batch)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes  # as Trainer.compute_loss: DDP averages gradients
        return (loss, {"loss": loss}) if return_outputs else loss


class EpochSeededLengthGroupedSampler(LengthGroupedSampler):
    """Length-grouped order drawn from ``(seed, epoch)`` instead of the global RNG.

    The plain sampler draws each epoch's order from torch's global RNG when the epoch starts.
    An uninterrupted run draws epoch 2's order after epoch 1 has used that RNG (dropout), while
    a run resumed in the middle of epoch 2 draws it before restoring the checkpoint's RNG state:
    another order, other losses. Seeded by the epoch (the Trainer calls ``set_epoch`` through
    accelerate's data loader, skipped batches included), every process and every resume sees
    the same order."""

    def __init__(self, batch_size: int, lengths: list[int], seed: int):
        super().__init__(batch_size, lengths=lengths)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        generator = torch.Generator()
        generator.manual_seed(self.seed + self.epoch)
        return iter(get_length_grouped_indices(self.lengths, self.batch_size, generator=generator))


def training_arguments(
    spec: JobSpec, precision: Precision, *, checkpointing: bool | None = None, liger: bool = False
) -> TrainingArguments:
    """``checkpointing`` None keeps the old rule (on with CUDA), for callers without a decision."""
    hp = spec.hyperparameters
    if checkpointing is None:
        checkpointing = precision.on_cuda
    # transformers reads a warmup_steps below 1 as a ratio of the total steps.
    warmup = hp.warmup_steps if hp.warmup_steps is not None else hp.warmup_ratio
    return TrainingArguments(
        output_dir=spec.checkpoint_dir,
        per_device_train_batch_size=hp.batch_size,
        per_device_eval_batch_size=hp.batch_size,
        gradient_accumulation_steps=hp.gradient_accumulation_steps,
        num_train_epochs=hp.epochs,
        max_steps=spec.max_steps or -1,
        learning_rate=hp.learning_rate,
        weight_decay=hp.weight_decay,
        lr_scheduler_type=hp.scheduler,
        warmup_steps=warmup,
        seed=hp.library_seed,
        data_seed=hp.library_seed,
        bf16=precision.bf16,
        fp16=precision.fp16,
        activation_checkpointing=checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if checkpointing else None,
        use_liger_kernel=liger,
        logging_strategy="steps",
        logging_steps=spec.logging_steps,
        logging_nan_inf_filter=False,  # a NaN loss must reach the callback, not be papered over
        eval_strategy="no",  # evaluation and saving are scheduled by ProgressReporter
        save_strategy="no",
        prediction_loss_only=True,
        label_names=["labels"],
        remove_unused_columns=False,
        dataloader_num_workers=0,
        dataloader_pin_memory=precision.on_cuda,
        report_to=[],
        disable_tqdm=True,
        log_level="warning",
    )


def global_batch_note(hp: Hyperparameters, world_size: int) -> str:
    total = hp.batch_size * hp.gradient_accumulation_steps * world_size
    return (
        f"global batch: {total} examples per optimizer step (batch_size {hp.batch_size} × "
        f"gradient_accumulation_steps {hp.gradient_accumulation_steps} × {world_size} "
        f"{'process' if world_size == 1 else 'processes'})"
    )


def _check_resume_folder(path: str | None) -> None:
    if path is None:
        return
    folder = Path(path)
    if not (folder / "trainer_state.json").is_file():
        raise TrainingError(f"resume_from {path} is not a checkpoint folder written by this trainer")


def _checkpoint_store(spec: JobSpec, emitter: EventEmitter):
    """Where checkpoint archives go; rank 0 alone writes checkpoints, so it alone stores them."""
    if spec.checkpoint_upload is None or not is_rank_zero():
        return None
    from .checkpoints import CheckpointStore

    return CheckpointStore(spec.checkpoint_upload, emitter)


def _save_checkpoint_now(trainer: Trainer, reporter: ProgressReporter) -> str:
    """Checkpoint outside the step loop (a stop that arrived after the last step)."""
    trainer._save_checkpoint(trainer.model, trial=None)
    return reporter.report_checkpoint(trainer.args, trainer.state)


def _last_logged(history: list[dict[str, Any]], key: str) -> float | None:
    for entry in reversed(history):
        if key in entry:
            return float(entry[key])
    return None


def _first_not_none(*values):
    return next((value for value in values if value is not None), None)
