"""Preference training of LoRA adapters: DPO (sigmoid and IPO losses), ORPO, SimPO and KTO.

Why our own losses rather than TRL's trainers. TRL's ``DPOTrainer``/``KTOTrainer`` (and
``ORPOTrainer``/``CPOTrainer``, which live in ``trl.experimental``) tokenise the data
themselves with their own chat-template handling, patch the model's forward with their
fused LM head, and bring their own collators (DPO's padding-free path is disabled in TRL
1.16). Using them would bypass everything :mod:`.train` does for SFT: the assistant-only
masks of :mod:`.encoding` (``{% generation %}`` blocks, templates that rewrite turns, tools),
the padding-free batches and the chunked LM head of :mod:`.efficiency`, the length-grouped
and epoch-seeded sampler that makes resumes exact, the events, checkpoints, stop handling and
evaluation. So the losses are small pure torch functions below (:func:`dpo_losses`,
:func:`orpo_loss`, :func:`simpo_losses`, :func:`kto_losses`) written after TRL 1.16's code
(``trl/trainer/dpo_trainer.py`` ``_compute_loss``, ``trl/trainer/kto_trainer.py``
``_compute_loss``, ``trl/experimental/orpo/orpo_trainer.py`` ``odds_ratio_loss``,
``trl/experimental/cpo/cpo_trainer.py`` ``cpo_loss``), rewards included, inside a Hugging
Face ``Trainer`` subclass of :class:`.train._MeteredTrainer`.
``tests/test_preference_equivalence.py`` checks on one batch that each loss, and its gradient
with respect to the LoRA weights, equals what TRL's own trainer computes. TRL is a test and
benchmark dependency only; nothing here imports it.

What a batch is. Each pair is encoded twice through the chat template (:mod:`.encoding`):
prompt + chosen reply and prompt + rejected reply, the loss mask covering the reply's
assistant tokens (and the end-of-turn marker) only. A batch of B pairs is one forward pass
over 2B sequences, chosen first: one flattened row with per-sequence position ids where a
varlen kernel runs (``efficiency.padding_free``), else right-padded (length-grouped batches).
Packing does not apply (a pair's two sequences are scored against each other); it falls back
to those. Per-sequence log-probabilities are the sum of the reply tokens' log-probs, computed
through the chunked LM head (only the reply positions are projected, in chunks of 1024,
recomputed in backward) unless ``chunked_loss`` is off or the model post-processes its logits.
ORPO's NLL term covers every token of the chosen sequence, prompt included, as TRL's
``ORPOTrainer`` computes it; those positions are then projected too.

The reference model (DPO, KTO) is the policy's starting point, run on the same PEFT model under
``torch.no_grad()`` (one copy of the base weights in memory):

- a fresh adapter: the model with its adapter disabled (the base; the fresh LoRA's B matrices
  are 0, so policy and reference agree at step 0);
- training on from an adapter (``init_adapter``): that adapter, loaded a second time as the
  frozen adapter :data:`REFERENCE_ADAPTER` (:func:`load_reference_adapter`; only its LoRA
  weights are a second copy), made active for the reference pass only
  (:func:`reference_adapter`). TRL's ``DPOTrainer`` does the same with its ``ref`` adapter.
  The trained adapter stays PEFT's ``default``; checkpoints and the saved adapter hold it alone
  (:func:`saving_trained_adapter_only`, ``output.save_adapter``), and a resumed run rebuilds the
  reference from ``init_adapter`` again, the checkpoint restoring only ``default``.

LoRA dropout applies to the policy pass only (the reference adapter's dropout is replaced by
the identity), so policy and reference agree exactly at step 0 when ``lora_dropout`` is 0 (with
dropout, up to the dropout noise of the policy pass).

KTO's KL estimate is TRL's: the completions of the batch rotated by one against the prompts,
(x₁, y_B), (x₂, y₁), …, scored by the policy and the reference without gradient, its mean
log-ratio clamped at 0. (TRL rotates within consecutive dataset chunks before shuffling; here
within the batch actually trained, which is what the KTO paper describes.)

Truncation to ``max_seq_length`` keeps the reply: a sequence that is too long loses the start
of its prompt (at most all but ``max_seq_length // 4`` prompt tokens), and only a reply longer
than the rest of the window is cut at its end. A sequence left with no reply token drops its pair.
"""

from __future__ import annotations

import math
import time
from array import array
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from .efficiency import Batching, choose_batching, hidden_states, varlen_attention_available
from .encoding import (
    IGNORE_INDEX,
    TEMPLATE_REJECTIONS,
    EncodedExample,
    FlatteningCollator,
    PaddingCollator,
    prepare_tokenizer,
    render_conversation,
    template_rejection_reason,
    tokenize_conversations,
)
from .data import SKIPPED_KEPT, SkippedRecord, skipped_warning
from .errors import DatasetError, TrainingError
from .spec import JobSpec, Method
from .train import _MeteredTrainer

#: Reply positions projected through the LM head at once (as the SFT chunked loss).
LOGP_CHUNK_TOKENS = 1024


# --------------------------------------------------------------------------- losses (pure torch)


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 − eˣ) for x < 0, stable on both sides of −ln 2 (TRL's ``log1mexp``)."""
    t = -0.6931471805599453
    return torch.where(x < t, torch.log1p(-torch.exp(x)), torch.log(-torch.expm1(x)))


def dpo_losses(
    chosen_logps: torch.Tensor,
    rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    *,
    beta: float,
    loss_type: str = "sigmoid",
    chosen_tokens: torch.Tensor | None = None,
    rejected_tokens: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-pair DPO losses and the implicit rewards β·(log π − log π_ref), from summed reply
    log-probs. ``ipo``: ((Δ_chosen/n_chosen − Δ_rejected/n_rejected) − 1/(2β))², the
    log-ratios averaged per reply token as TRL does (β is IPO's τ)."""
    chosen_logratios = chosen_logps - ref_chosen_logps
    rejected_logratios = rejected_logps - ref_rejected_logps
    if loss_type == "sigmoid":
        losses = -F.logsigmoid(beta * (chosen_logratios - rejected_logratios))
    elif loss_type == "ipo":
        delta = chosen_logratios / chosen_tokens.clamp(min=1.0) - rejected_logratios / rejected_tokens.clamp(min=1.0)
        losses = (delta - 1 / (2 * beta)) ** 2
    else:
        raise ValueError(f"unknown DPO loss_type {loss_type!r}")
    return losses, beta * chosen_logratios.detach(), beta * rejected_logratios.detach()


def orpo_loss(
    chosen_avg_logps: torch.Tensor, rejected_avg_logps: torch.Tensor, chosen_nll: torch.Tensor, *, lambda_: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ORPO: NLL of the chosen sequences − λ·mean(log σ(log odds ratio)), from the replies'
    mean per-token log-probs; rewards λ·(mean log-prob), as TRL logs them."""
    chosen_avg_logps, rejected_avg_logps = chosen_avg_logps.float(), rejected_avg_logps.float()
    log_odds = (chosen_avg_logps - rejected_avg_logps) - (log1mexp(chosen_avg_logps) - log1mexp(rejected_avg_logps))
    loss = chosen_nll - (lambda_ * F.logsigmoid(log_odds)).mean()
    return loss, lambda_ * chosen_avg_logps.detach(), lambda_ * rejected_avg_logps.detach()


def simpo_losses(
    chosen_avg_logps: torch.Tensor, rejected_avg_logps: torch.Tensor, *, beta: float, gamma: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SimPO (TRL's CPO loss ``simpo`` with ``cpo_alpha`` 0): −log σ(β·(r̄_c − r̄_r) − γ) over
    mean per-token log-probs; rewards β·(mean log-prob)."""
    logits = (chosen_avg_logps - rejected_avg_logps) - gamma / beta
    losses = -F.logsigmoid(beta * logits)
    return losses, beta * chosen_avg_logps.detach(), beta * rejected_avg_logps.detach()


def kto_losses(
    logps: torch.Tensor,
    ref_logps: torch.Tensor,
    desirable: torch.Tensor,
    kl: torch.Tensor,
    *,
    beta: float,
    desirable_weight: float,
    undesirable_weight: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """KTO: desirable 1 − σ(β(Δ − KL)), undesirable 1 − σ(β(KL − Δ)), weighted, the batch's
    mean (TRL's order: desirable first); rewards β·Δ of each side."""
    logratios = logps - ref_logps
    chosen, rejected = logratios[desirable], logratios[~desirable]
    chosen_losses = 1 - torch.sigmoid(beta * (chosen - kl))
    rejected_losses = 1 - torch.sigmoid(beta * (kl - rejected))
    losses = torch.cat((desirable_weight * chosen_losses, undesirable_weight * rejected_losses), 0)
    return losses.nanmean(), beta * chosen.detach(), beta * rejected.detach()


# --------------------------------------------------------------------------- log-probs


@dataclass
class SequenceLogps:
    """Per-sequence sums over the reply tokens, and the NLL term ORPO adds."""

    sums: torch.Tensor
    counts: torch.Tensor
    #: Mean −log p over every token of the first ``nll_rows`` sequences (ORPO), else None.
    nll: torch.Tensor | None = None

    @property
    def means(self) -> torch.Tensor:
        return self.sums / self.counts.clamp(min=1)


def _upcast(logits: torch.Tensor) -> torch.Tensor:
    """Log-softmax in at least float32 (bf16/fp16 logits are upcast, float64 kept)."""
    return logits.to(torch.promote_types(logits.dtype, torch.float32))


def _chunk_logps(head, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    logits = _upcast(head(hidden))
    return logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def sequence_logps(model, inputs: dict[str, Any], *, causal_lm=None, nll_rows: int = 0) -> SequenceLogps:
    """Reply log-probs of every sequence of a batch (padded rows, or one flattened row with
    per-sequence ``position_ids``); ``labels`` mark the reply tokens.

    ``causal_lm`` (the ``…ForCausalLM`` inside ``model``) selects the chunked LM head: only the
    scored positions are projected, chunk by chunk, recomputed in backward; without it the
    model computes its full logits. ``nll_rows``: ORPO's NLL over all tokens of the first that
    many sequences.
    """
    labels = inputs["labels"]
    input_ids = inputs["input_ids"]
    model_inputs = {k: v for k, v in inputs.items() if k != "labels"}
    position_ids = inputs.get("position_ids")
    flat = "attention_mask" not in inputs and position_ids is not None
    if flat:
        starts = position_ids == 0
        seq_ids = starts.long().cumsum(-1) - 1
        count = int(starts.sum())
        next_is_real = F.pad(~starts, (0, 1), value=False)[..., 1:]
    else:
        count = input_ids.size(0)
        seq_ids = torch.arange(count, device=input_ids.device).unsqueeze(1).expand_as(input_ids)
        next_is_real = F.pad(inputs["attention_mask"].bool(), (0, 1), value=False)[..., 1:]
    shift_labels = F.pad(labels, (0, 1), value=IGNORE_INDEX)[..., 1:]
    reply = shift_labels != IGNORE_INDEX
    select = reply
    nll_mask = None
    if nll_rows:
        nll_mask = next_is_real & (seq_ids < nll_rows)
        select = reply | nll_mask
    targets = F.pad(input_ids, (0, 1), value=0)[..., 1:][select]
    if causal_lm is not None:
        head = causal_lm.get_output_embeddings()
        hidden = hidden_states(model, causal_lm, model_inputs)[select]
        pieces = []
        for start in range(0, targets.numel(), LOGP_CHUNK_TOKENS):
            part = slice(start, start + LOGP_CHUNK_TOKENS)
            if torch.is_grad_enabled():
                pieces.append(checkpoint(_chunk_logps, head, hidden[part], targets[part], use_reentrant=False))
            else:
                pieces.append(_chunk_logps(head, hidden[part], targets[part]))
        logps = torch.cat(pieces) if pieces else _upcast(hidden.new_zeros((0,)))
    else:
        logits = model(**model_inputs, use_cache=False).logits
        logps = _upcast(logits[select]).log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    selected_seq = seq_ids[select]
    in_reply = reply[select]
    sums = logps.new_zeros(count).index_add(0, selected_seq[in_reply], logps[in_reply])
    counts = logps.new_zeros(count).index_add(0, selected_seq[in_reply], torch.ones_like(logps[in_reply]))
    nll = None
    if nll_mask is not None:
        in_nll = nll_mask[select]
        nll = -logps[in_nll].sum() / in_nll.sum().clamp(min=1)
    return SequenceLogps(sums, counts, nll)


def _unwrap_peft(model):
    """The ``PeftModel`` inside whatever wraps it (DDP, accelerate)."""
    while not hasattr(model, "disable_adapter") and hasattr(model, "module"):
        model = model.module
    return model


#: The frozen copy of the starting adapter (``init_adapter``) that is DPO's and KTO's reference.
REFERENCE_ADAPTER = "reference"
#: The adapter being trained: PEFT's default name, the one checkpoints and the artifact hold.
TRAINED_ADAPTER = "default"


def has_reference_adapter(model) -> bool:
    return REFERENCE_ADAPTER in getattr(_unwrap_peft(model), "peft_config", {})


def load_reference_adapter(model, folder: Path) -> None:
    """Load the adapter in ``folder`` (the run's starting point) a second time, frozen, as
    :data:`REFERENCE_ADAPTER`, sharing the base weights. The trained adapter stays active, and
    which parameters require gradients, and the train/eval mode, are unchanged. Its LoRA dropout
    is the identity: the reference pass is deterministic."""
    from peft.tuners.lora import LoraLayer

    peft = _unwrap_peft(model)
    training = peft.training
    trainable = [name for name, param in peft.named_parameters() if param.requires_grad]
    peft.load_adapter(str(folder), adapter_name=REFERENCE_ADAPTER, is_trainable=False)
    peft.train(training)  # load_adapter(is_trainable=False) switches the whole model to eval mode
    for module in peft.modules():
        if isinstance(module, LoraLayer) and REFERENCE_ADAPTER in module.lora_dropout:
            module.lora_dropout[REFERENCE_ADAPTER] = torch.nn.Identity()
    peft.peft_config[REFERENCE_ADAPTER].lora_dropout = 0.0
    still = [name for name, param in peft.named_parameters() if param.requires_grad]
    if peft.active_adapter != TRAINED_ADAPTER or still != trainable:
        raise RuntimeError("loading the reference adapter changed the trained adapter's state")


def drop_reference_adapter(model) -> None:
    """Delete :data:`REFERENCE_ADAPTER` (after training and evaluation): the model is then what a
    run without it leaves."""
    if has_reference_adapter(model):
        _unwrap_peft(model).delete_adapter(REFERENCE_ADAPTER)


@contextmanager
def reference_adapter(model):
    """Run the reference: :data:`REFERENCE_ADAPTER` active where the model has one, else the
    adapter disabled. Callers hold ``torch.no_grad()``.

    PEFT's ``set_adapter`` sets ``requires_grad`` of every adapter (True for the one it
    activates, False for the others): each parameter's flag is put back as it was afterwards,
    so the optimizer's parameters stay trainable and the reference's stay frozen. The trained
    adapter is active again before the caller's backward (activation checkpointing recomputes
    the policy's forward then, with whatever adapter is active)."""
    peft = _unwrap_peft(model)
    if REFERENCE_ADAPTER not in peft.peft_config:
        with peft.disable_adapter():
            yield
        return
    trained = peft.active_adapter
    flags = [(param, param.requires_grad) for param in peft.parameters()]
    peft.set_adapter(REFERENCE_ADAPTER, inference_mode=True)
    try:
        yield
    finally:
        peft.set_adapter(trained)
        for param, flag in flags:
            if param.requires_grad != flag:
                param.requires_grad_(flag)


@contextmanager
def saving_trained_adapter_only(model):
    """Within: ``save_pretrained`` of the model writes :data:`TRAINED_ADAPTER` alone (PEFT would
    write every adapter, the others in sub-folders named after them)."""
    peft = _unwrap_peft(model)
    if REFERENCE_ADAPTER not in getattr(peft, "peft_config", {}):
        yield
        return
    save = peft.save_pretrained

    def save_trained(*args, **kwargs):
        kwargs["selected_adapters"] = [TRAINED_ADAPTER]
        return save(*args, **kwargs)

    peft.save_pretrained = save_trained
    try:
        yield
    finally:
        del peft.save_pretrained


def reference_logps(model, inputs: dict[str, Any], *, causal_lm=None) -> SequenceLogps:
    """The reference model's log-probs (:func:`reference_adapter`), no gradient."""
    with torch.no_grad(), reference_adapter(model):
        return sequence_logps(model, inputs, causal_lm=causal_lm)


# --------------------------------------------------------------------------- one batch


@dataclass
class BatchStats:
    """What one batch adds to the ``preference`` object of the metric events (detached)."""

    rewards_chosen: torch.Tensor
    rewards_rejected: torch.Tensor
    logps_chosen: torch.Tensor
    logps_rejected: torch.Tensor
    #: Whether rows of the two sides pair up (DPO, ORPO, SimPO); KTO's sides do not.
    paired: bool = True
    kl: torch.Tensor | None = None


def preference_loss(model, inputs: dict[str, Any], method: Method, *, causal_lm=None) -> tuple[torch.Tensor, BatchStats]:
    """The method's loss on one batch and its statistics. Pairs: ``inputs`` holds 2B sequences,
    the chosen replies first; KTO: B sequences, ``kto_labels`` and the rotated ``kl`` batch."""
    if method.name == "kto":
        return _kto_loss(model, inputs, method, causal_lm=causal_lm)
    scoring = {k: v for k, v in inputs.items() if k in _MODEL_KEYS}
    nll_rows = policy_count(scoring) // 2 if method.name == "orpo" else 0  # ORPO: NLL of the chosen half
    policy = sequence_logps(model, scoring, causal_lm=causal_lm, nll_rows=nll_rows)
    pairs = policy.sums.size(0) // 2
    chosen, rejected = slice(0, pairs), slice(pairs, 2 * pairs)
    if method.name == "dpo":
        ref = reference_logps(model, scoring, causal_lm=causal_lm)
        losses, rewards_c, rewards_r = dpo_losses(
            policy.sums[chosen], policy.sums[rejected], ref.sums[chosen], ref.sums[rejected],
            beta=method.beta, loss_type=method.loss_type,
            chosen_tokens=policy.counts[chosen], rejected_tokens=policy.counts[rejected],
        )  # fmt: skip
        loss, logps = losses.mean(), policy.sums
    elif method.name == "orpo":
        loss, rewards_c, rewards_r = orpo_loss(
            policy.means[chosen], policy.means[rejected], policy.nll, lambda_=method.lambda_
        )
        logps = policy.means
    elif method.name == "simpo":
        losses, rewards_c, rewards_r = simpo_losses(
            policy.means[chosen], policy.means[rejected], beta=method.beta, gamma=method.gamma
        )
        loss, logps = losses.mean(), policy.means
    else:
        raise ValueError(f"not a preference method: {method.name}")
    logps = logps.detach()
    return loss, BatchStats(rewards_c, rewards_r, logps[chosen], logps[rejected])


_MODEL_KEYS = ("input_ids", "attention_mask", "position_ids", "labels", "cu_seq_lens_q", "cu_seq_lens_k",
               "max_length_q", "max_length_k")  # fmt: skip


def policy_count(inputs: dict[str, Any]) -> int:
    """How many sequences a batch holds (padded rows, or restarts of the flat position ids)."""
    if "attention_mask" not in inputs and inputs.get("position_ids") is not None:
        return int((inputs["position_ids"] == 0).sum())
    return inputs["input_ids"].size(0)


def _kto_loss(model, inputs: dict[str, Any], method: Method, *, causal_lm=None) -> tuple[torch.Tensor, BatchStats]:
    scoring = {k: v for k, v in inputs.items() if k in _MODEL_KEYS}
    kl_batch = inputs["kl"]
    desirable = inputs["kto_labels"].bool()
    with torch.no_grad():
        kl_policy = sequence_logps(model, kl_batch, causal_lm=causal_lm)
    policy = sequence_logps(model, scoring, causal_lm=causal_lm)
    with torch.no_grad(), reference_adapter(model):
        ref = sequence_logps(model, scoring, causal_lm=causal_lm)
        kl_ref = sequence_logps(model, kl_batch, causal_lm=causal_lm)
    kl = (kl_policy.sums - kl_ref.sums).mean().detach().clamp(min=0)
    loss, rewards_c, rewards_r = kto_losses(
        policy.sums, ref.sums, desirable, kl, beta=method.beta,
        desirable_weight=method.desirable_weight, undesirable_weight=method.undesirable_weight,
    )  # fmt: skip
    logps = policy.sums.detach()
    return loss, BatchStats(rewards_c, rewards_r, logps[desirable], logps[~desirable], paired=False, kl=kl)


class PreferenceStats:
    """The ``preference`` object of a metric event: means over the examples of the steps since
    the previous metric event."""

    def __init__(self, method: Method):
        self.method = method
        self._batches: list[BatchStats] = []

    def add(self, stats: BatchStats) -> None:
        self._batches.append(stats)

    def take(self) -> dict[str, float | None]:
        batches, self._batches = self._batches, []
        result: dict[str, float | None] = dict.fromkeys(PREFERENCE_METRIC_FIELDS)
        if not batches:
            return result

        def cat(name):
            values = [getattr(b, name).float().cpu() for b in batches]
            return torch.cat(values) if values else torch.zeros(0)

        rc, rr, lc, lr = cat("rewards_chosen"), cat("rewards_rejected"), cat("logps_chosen"), cat("logps_rejected")
        mean = lambda t: float(t.mean()) if t.numel() else None  # noqa: E731
        result.update(rewards_chosen=mean(rc), rewards_rejected=mean(rr), logps_chosen=mean(lc), logps_rejected=mean(lr))
        if self.method.name == "kto":
            if rc.numel() and rr.numel():
                result["reward_margin"] = result["rewards_chosen"] - result["rewards_rejected"]
            result["kl"] = float(torch.stack([b.kl.float().cpu() for b in batches]).mean())
        else:
            result["reward_margin"] = mean(rc - rr)
            result["reward_accuracy"] = mean((rc > rr).float())
        return {key: (value if value is None or math.isfinite(value) else None) for key, value in result.items()}


PREFERENCE_METRIC_FIELDS = (
    "rewards_chosen", "rewards_rejected", "reward_margin", "reward_accuracy", "logps_chosen", "logps_rejected", "kl",
)  # fmt: skip


# --------------------------------------------------------------------------- encoding


@dataclass(frozen=True)
class PairRow:
    """One pair as token ids: prompt + chosen and prompt + rejected."""

    chosen: EncodedExample
    rejected: EncodedExample

    @property
    def input_ids(self) -> array:
        """Both sequences' tokens (what one pair costs a forward pass; samplers read its length)."""
        return self.chosen.input_ids + self.rejected.input_ids


@dataclass(frozen=True)
class KTORow:
    example: EncodedExample
    #: Tokens before the completion (the KL pairs join one row's prompt to another's completion).
    prompt_length: int
    label: bool

    @property
    def input_ids(self) -> array:
        return self.example.input_ids


def cut_keeping_reply(
    input_ids: list[int], labels: list[int], max_seq_length: int
) -> tuple[EncodedExample | None, bool]:
    """Truncate to ``max_seq_length`` keeping the reply: the prompt loses its first tokens (it
    keeps at least ``max_seq_length // 4`` of its last ones, or all it has), then the reply its
    last. ``None`` when no reply token is left."""
    start = next((i for i, label in enumerate(labels) if label != IGNORE_INDEX), None)
    if start is None:
        return None, False
    if len(input_ids) <= max_seq_length:
        return EncodedExample.of(input_ids, labels), False
    reply = len(input_ids) - start
    prompt_keep = min(start, max(max_seq_length - reply, max_seq_length // 4))
    window = slice(start - prompt_keep, start - prompt_keep + max_seq_length)
    ids, kept = input_ids[window], labels[window]
    if all(label == IGNORE_INDEX for label in kept):
        return None, True
    return EncodedExample.of(ids, kept), True


@dataclass
class PreferenceEncodingReport:
    kept: int = 0
    truncated: int = 0
    dropped: int = 0
    rejected_by_template: int = 0
    rejections: list[SkippedRecord] | None = None


def _encode_side(tokenizer, prompt, reply, tools, max_seq_length: int):
    rendered = render_conversation(tokenizer, [*prompt, *reply], tools)
    ((input_ids, labels),) = tokenize_conversations(tokenizer, [rendered])
    return cut_keeping_reply(input_ids, labels, max_seq_length)


def encode_preference(tokenizer, examples, max_seq_length: int) -> tuple[list, PreferenceEncodingReport]:
    """Encode pairs (:class:`PairRow`) or KTO examples (:class:`KTORow`)."""
    from .preference_data import KTOExample

    rows: list = []
    report = PreferenceEncodingReport(rejections=[])
    for example in examples:
        try:
            if isinstance(example, KTOExample):
                encoded, truncated = _encode_side(tokenizer, example.prompt, example.completion, example.tools, max_seq_length)
                row = None
                if encoded is not None:
                    start = next(i for i, label in enumerate(encoded.labels) if label != IGNORE_INDEX)
                    row = KTORow(encoded, start, example.label)
            else:
                chosen, cut_c = _encode_side(tokenizer, example.prompt, example.chosen, example.tools, max_seq_length)
                rejected, cut_r = _encode_side(tokenizer, example.prompt, example.rejected, example.tools, max_seq_length)
                truncated = cut_c or cut_r
                row = PairRow(chosen, rejected) if chosen is not None and rejected is not None else None
        except TEMPLATE_REJECTIONS as exc:
            report.rejected_by_template += 1
            if len(report.rejections) < SKIPPED_KEPT:
                report.rejections.append(SkippedRecord(example.line, template_rejection_reason(exc)))
            continue
        report.truncated += truncated
        if row is None:
            report.dropped += 1
        else:
            rows.append(row)
    report.kept = len(rows)
    return rows, report


# --------------------------------------------------------------------------- collation


class PreferenceCollator:
    """Pairs → 2B sequences (chosen first), KTO rows → B sequences with their ``kto_labels``
    and the rotated ``kl`` batch; flattened into one row or right-padded."""

    def __init__(self, pad_token_id: int, *, flatten: bool, flash_kwargs: bool = False, max_seq_length: int, kl: bool = True):
        self._inner = FlatteningCollator(flash_kwargs=flash_kwargs) if flatten else PaddingCollator(pad_token_id)
        self.max_seq_length = max_seq_length
        self.kl = kl

    def __call__(self, rows: list) -> dict[str, Any]:
        if isinstance(rows[0], PairRow):
            return self._inner([row.chosen for row in rows] + [row.rejected for row in rows])
        batch = self._inner([row.example for row in rows])
        batch["kto_labels"] = torch.tensor([row.label for row in rows], dtype=torch.bool)
        if self.kl:
            batch["kl"] = self._inner(kl_rows(rows, self.max_seq_length))
        return batch


def kl_rows(rows: list[KTORow], max_seq_length: int) -> list[EncodedExample]:
    """KTO's mismatched pairs: row i's prompt with row i−1's completion (row 0 with the last)."""
    mismatched = []
    for i, row in enumerate(rows):
        other = rows[i - 1]
        ids = list(row.example.input_ids[: row.prompt_length]) + list(other.example.input_ids[other.prompt_length :])
        labels = [IGNORE_INDEX] * row.prompt_length + list(other.example.labels[other.prompt_length :])
        encoded, _ = cut_keeping_reply(ids, labels, max_seq_length)
        mismatched.append(encoded if encoded is not None else EncodedExample.of(ids[:max_seq_length], labels[:max_seq_length]))
    return mismatched


def preference_batching(spec: JobSpec, on_cuda: bool) -> Batching:
    """The SFT batching rule, packing excepted (pairs are never packed)."""
    efficiency = spec.efficiency
    varlen = varlen_attention_available(on_cuda)
    if efficiency.packing:
        from dataclasses import replace

        batching = choose_batching(replace(efficiency, packing=False), varlen)
        return Batching(batching.mode, batching.attention, batching.reason + "; packing does not apply to preference training")
    return choose_batching(efficiency, varlen)


# --------------------------------------------------------------------------- the run


def train_preference(spec: JobSpec, dataset, emitter, stop, *, init_adapter: Path | None = None):
    """:func:`.train.train` for the preference methods: the same model loading, LoRA, arguments,
    callbacks, checkpoints, resume and stop handling; pairs (or KTO rows) for examples and
    :class:`PreferenceTrainer` for the loss."""
    import transformers
    from transformers import PrinterCallback

    from . import train as sft
    from .devices import forbid_data_parallel, is_rank_zero
    from .efficiency import enable_tf32
    from .progress import LossWatch, ProgressReporter, TokenMeter

    hp = spec.hyperparameters
    method = hp.method
    transformers.utils.logging.set_verbosity_warning()
    transformers.utils.logging.disable_progress_bar()
    precision = sft.select_precision()
    quantize = sft.check_quantization(hp)
    sft._check_resume_folder(spec.resume_from)
    if precision.on_cuda and enable_tf32():
        emitter.info("TF32 matmuls on (Ampere or later GPU)")
    batching = preference_batching(spec, precision.on_cuda)
    emitter.info(batching.reason)
    emitter.info(method_note(method, hp.batch_size, from_adapter=init_adapter is not None))

    model_path = sft.resolve_base_model(spec.base_model, emitter)
    emitter.info(f"loading base model {spec.base_model}")
    tokenizer = sft.load_tokenizer(model_path, spec.base_model)
    for note in prepare_tokenizer(tokenizer):
        emitter.info(note)
    train_set, validation_set = _encode_sets(tokenizer, dataset, hp.max_seq_length, emitter, method)
    attention = batching.attention if batching.attention.startswith("flash") else None
    model = sft.load_base_model(model_path, spec.base_model, precision, quantize=quantize, attention=attention)
    if spec.efficiency.liger:
        emitter.info("liger: not used for preference training (its fused cross-entropy gives no per-sequence log-probs)")
    chunked = sft._use_chunked_loss(spec.efficiency, model, False, emitter)
    checkpointing, why = sft._decide_checkpointing(spec.efficiency, model, hp, precision, train_set, logits=not chunked)
    emitter.info(why)
    if quantize:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=checkpointing, gradient_checkpointing_kwargs={"use_reentrant": False}
        )
    if init_adapter is not None:
        model = sft.continue_adapter(model, hp, init_adapter, spec)
        emitter.info(
            f"starting from the adapter of {spec.init_adapter.label} ({spec.init_adapter.id[:8]})"
            + ("; the reference model is that adapter, frozen" if method.has_reference else "")
        )
    else:
        model = sft.attach_lora(model, hp, spec.base_model)
    trainable, total = model.get_nb_trainable_parameters()  # the trained adapter's, as for SFT
    if init_adapter is not None and method.has_reference:
        try:
            load_reference_adapter(model, init_adapter)
        except (ValueError, OSError, RuntimeError) as exc:
            raise TrainingError(
                f"cannot load the adapter of {spec.init_adapter.label} as the reference: {str(exc).splitlines()[0]}"
            ) from exc
    emitter.info(f"LoRA adapter: {trainable:,} trainable of {total:,} parameters")
    if spec.efficiency.torch_compile:
        model.get_base_model().get_decoder().compile()
        emitter.info("torch.compile: the decoder is compiled (the first steps include compilation)")

    args = sft.training_arguments(spec, precision, checkpointing=checkpointing, liger=False)
    if forbid_data_parallel(args):
        emitter.warning("several GPUs are visible to one trainer process: training on the first only (no DataParallel)")
    unit = "examples" if method.name == "kto" else "pairs"
    emitter.info(sft.global_batch_note(hp, args.world_size).replace("examples per", f"{unit} per", 1))
    tokens, losses, stats = TokenMeter(), LossWatch(), PreferenceStats(method)
    reporter = ProgressReporter(
        emitter,
        stop,
        tokens,
        has_validation=bool(validation_set),
        losses=losses,
        last_checkpoint=spec.resume_from,
        checkpoint_steps=spec.checkpoint_steps,
        archives=sft._checkpoint_store(spec, emitter),
        preference=stats,
    )
    collator = PreferenceCollator(
        tokenizer.pad_token_id,
        flatten=batching.flattens,
        flash_kwargs=batching.attention.startswith("flash"),
        max_seq_length=hp.max_seq_length,
    )
    trainer = PreferenceTrainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=validation_set or None,
        data_collator=collator,
        callbacks=[reporter],
        token_meter=tokens,
        loss_watch=losses,
        chunked_loss=chunked,
        lengths=[len(row.input_ids) for row in train_set] if batching.mode == "grouped" else None,
        method=method,
        stats=stats,
    )
    trainer.remove_callback(PrinterCallback)

    runtime = sft._train_and_evaluate(trainer, reporter, spec, emitter, stop, len(train_set), len(validation_set))
    evaluation = None
    if not stop.requested and spec.evaluation is not None and is_rank_zero():
        from .evaluation import evaluate

        evaluation = evaluate(
            trainer, model, tokenizer, spec.evaluation, _SampleSource(dataset), emitter, stop,
            max_seq_length=hp.max_seq_length,
            held_out=lambda result, source_stop: evaluate_preference(
                trainer, model, train_set, validation_set, method, result, emitter, source_stop
            ),
        )  # fmt: skip
    checkpoint = None
    if stop.requested:
        checkpoint = reporter.stop_checkpoint or sft._save_checkpoint_now(trainer, reporter)
    elif reporter.archives is not None:
        reporter.archives.finish()
    drop_reference_adapter(model)  # the outcome's model is the trained adapter alone
    tokens.take()
    return sft.TrainingOutcome(
        stopped=stop.requested,
        model=model,
        tokenizer=tokenizer,
        global_step=trainer.state.global_step,
        epoch=float(trainer.state.epoch or 0.0),
        final_training_loss=sft._first_not_none(
            reporter.last_training_loss, sft._last_logged(trainer.state.log_history, "loss")
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


def method_note(method: Method, batch_size: int, *, from_adapter: bool = False) -> str:
    """The log line that says what is optimised (``from_adapter``: the run starts from
    ``init_adapter``, which is then the reference)."""
    reference = "the starting adapter (init_adapter), frozen" if from_adapter else "the base model (adapter disabled)"
    if method.name == "dpo":
        text = f"method dpo ({method.loss_type} loss, beta {method.beta:g}); reference: {reference}"
    elif method.name == "orpo":
        text = f"method orpo (lambda {method.lambda_:g}); no reference model"
    elif method.name == "simpo":
        text = f"method simpo (beta {method.beta:g}, gamma {method.gamma:g}); no reference model"
    else:
        text = (
            f"method kto (beta {method.beta:g}, desirable_weight {method.desirable_weight:g}, undesirable_weight "
            f"{method.undesirable_weight:g}); reference: {reference}"
        )
        if batch_size < 2:
            text += "; with batch_size 1 the KL estimate pairs each prompt with its own completion (use 2 or more)"
    return text


class _SampleSource:
    """The evaluation's samples: each pair's prompt with its chosen reply (KTO: the desirable
    completions), as SFT examples."""

    def __init__(self, dataset):
        keep = (lambda e: e.label) if dataset.is_kto else (lambda e: True)
        self.validation = [e.as_example() for e in dataset.validation if keep(e)]
        self.train = [e.as_example() for e in dataset.train if keep(e)]


def _encode_sets(tokenizer, dataset, max_seq_length: int, emitter, method: Method):
    train_set, train_report = encode_preference(tokenizer, dataset.train, max_seq_length)
    validation_set, validation_report = encode_preference(tokenizer, dataset.validation, max_seq_length)
    reports = (train_report, validation_report)
    rejected = sum(r.rejected_by_template for r in reports)
    unit = "examples" if method.name == "kto" else "pairs"
    if rejected:
        rejections = sorted((s for r in reports for s in r.rejections), key=lambda s: s.line)
        emitter.warning(skipped_warning(rejected, rejections))
    truncated = sum(r.truncated for r in reports)
    dropped = sum(r.dropped for r in reports)
    if truncated:
        emitter.warning(
            f"{truncated} {unit} are longer than max_seq_length {max_seq_length} and were truncated "
            "(the prompt's start first, keeping the reply)"
        )
    if dropped:
        emitter.warning(f"{dropped} {unit} were dropped: no reply token within max_seq_length {max_seq_length}")
    if not train_set:
        raise DatasetError(
            f"no training {unit[:-1]} is usable: "
            + (
                f"the chat template rejects them (line {train_report.rejections[0].line}: {train_report.rejections[0].reason})"
                if train_report.rejected_by_template
                else f"none keeps a reply token within max_seq_length {max_seq_length}"
            )
        )
    if method.name == "kto" and len({row.label for row in train_set}) < 2:
        raise DatasetError("the encoded KTO training examples are all desirable or all undesirable: KTO needs both")
    return train_set, validation_set


class PreferenceTrainer(_MeteredTrainer):
    """The Trainer with the preference method's loss (:func:`preference_loss`) in place of
    the LM loss; the rewards and log-probs of training batches go to ``stats``."""

    def __init__(self, *args, method: Method, stats: PreferenceStats | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.method = method
        self.preference_stats = stats
        # The loss is a mean over the batch's pairs: the Trainer divides it by the
        # accumulation steps itself (no token count to normalise by).
        self.model_accepts_loss_kwargs = False

    def causal_lm(self, model):
        return self.accelerator.unwrap_model(model).get_base_model() if self.chunked_loss else None

    def _save(self, output_dir=None, state_dict=None):
        """Checkpoints hold the trained adapter alone, never the frozen reference."""
        with saving_trained_adapter_only(self.model):
            super()._save(output_dir, state_dict)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, stats = preference_loss(model, inputs, self.method, causal_lm=self.causal_lm(model))
        if model.training and self.preference_stats is not None:
            self.preference_stats.add(stats)
        return (loss, {"loss": loss}) if return_outputs else loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """The method's loss on a held-out batch (the batch has no LM labels to compare)."""
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None



# --------------------------------------------------------------------------- evaluation


def score_rows(trainer, model, rows: list, stop) -> dict[str, torch.Tensor]:
    """Reply log-prob sums and token counts of every row, for the adapter and the base, and for
    the reference adapter where the run has one (:data:`REFERENCE_ADAPTER`).

    Pairs: ``{"adapter_chosen", "adapter_rejected", "base_chosen", "base_rejected"}`` sums
    (``"reference_chosen"``, ``"reference_rejected"`` too with a reference adapter) and
    ``"chosen_tokens"``, ``"rejected_tokens"``; KTO: ``"adapter"``, ``"base"`` (``"reference"``),
    ``"tokens"``, ``"labels"``."""
    from torch.utils.data import DataLoader

    from .evaluation import EvaluationStopped

    inner = trainer.data_collator
    collator = PreferenceCollator(0, flatten=False, max_seq_length=inner.max_seq_length, kl=False)
    collator._inner = inner._inner  # the run's batching (flattened or padded)
    loader = DataLoader(rows, batch_size=int(trainer.args.per_device_eval_batch_size), collate_fn=collator, shuffle=False)
    causal_lm = trainer.causal_lm(model)
    with_reference = has_reference_adapter(model)
    parts: dict[str, list[torch.Tensor]] = {}

    def keep(name, value):
        parts.setdefault(name, []).append(value.detach().float().cpu())

    with torch.no_grad():
        for batch in loader:
            if stop.requested:
                raise EvaluationStopped()
            inputs = trainer._prepare_inputs({k: v for k, v in batch.items() if k in _MODEL_KEYS})
            with trainer.accelerator.autocast():
                adapter = sequence_logps(model, inputs, causal_lm=causal_lm)
                with _unwrap_peft(model).disable_adapter():
                    base = sequence_logps(model, inputs, causal_lm=causal_lm)
                scored = {"adapter": adapter, "base": base}
                if with_reference:
                    with reference_adapter(model):
                        scored["reference"] = sequence_logps(model, inputs, causal_lm=causal_lm)
            if "kto_labels" in batch:
                for name, logps in scored.items():
                    keep(name, logps.sums)
                keep("tokens", adapter.counts), keep("labels", batch["kto_labels"])
            else:
                half = adapter.sums.size(0) // 2
                for name, logps in scored.items():
                    keep(f"{name}_chosen", logps.sums[:half]), keep(f"{name}_rejected", logps.sums[half:])
                keep("chosen_tokens", adapter.counts[:half]), keep("rejected_tokens", adapter.counts[half:])
    return {name: torch.cat(values) for name, values in parts.items()}


PREFERENCE_EVALUATION_FIELDS = (
    "pairs", "base_accuracy", "base_margin", "adapter_accuracy", "adapter_margin", "reward_accuracy", "reward_margin",
)  # fmt: skip


def preference_summary(scores: dict[str, torch.Tensor], beta: float) -> dict[str, Any]:
    """``evaluation.json``'s ``preference`` object from :func:`score_rows`' numbers.

    Accuracy: the share of pairs whose chosen reply has the higher mean per-token log-prob;
    margin: the mean of (mean log-prob chosen − mean log-prob rejected); reward: DPO's implicit
    reward β·(log π − log π_ref) of summed log-probs, the reference being the reference adapter
    where scored (a run of dpo or kto from ``init_adapter``), else the base. KTO compares every
    desirable with every undesirable completion (null when a side is empty)."""
    result: dict[str, Any] = dict.fromkeys(PREFERENCE_EVALUATION_FIELDS)
    ref = "reference" if "reference" in scores or "reference_chosen" in scores else "base"
    if "labels" in scores:
        desirable = scores["labels"].bool()
        if not desirable.any() or desirable.all():
            result["pairs"] = 0
            return result
        tokens = scores["tokens"].clamp(min=1)
        means = {side: scores[side] / tokens for side in ("base", "adapter")}
        reward = beta * (scores["adapter"] - scores[ref])
        result["pairs"] = int(desirable.sum()) * int((~desirable).sum())
        for name, values in (("base", means["base"]), ("adapter", means["adapter"]), ("reward", reward)):
            good, bad = values[desirable], values[~desirable]
            result[f"{name}_accuracy"] = float((good.unsqueeze(1) > bad.unsqueeze(0)).float().mean())
            result[f"{name}_margin"] = float(good.mean() - bad.mean())
        return result
    if "adapter_chosen" not in scores or scores["adapter_chosen"].numel() == 0:
        result["pairs"] = 0
        return result
    chosen_tokens = scores["chosen_tokens"].clamp(min=1)
    rejected_tokens = scores["rejected_tokens"].clamp(min=1)
    result["pairs"] = int(scores["adapter_chosen"].numel())
    for side in ("base", "adapter"):
        delta = scores[f"{side}_chosen"] / chosen_tokens - scores[f"{side}_rejected"] / rejected_tokens
        result[f"{side}_accuracy"] = float((delta > 0).float().mean())
        result[f"{side}_margin"] = float(delta.mean())
    reward = beta * (
        (scores["adapter_chosen"] - scores[f"{ref}_chosen"]) - (scores["adapter_rejected"] - scores[f"{ref}_rejected"])
    )
    result["reward_accuracy"] = float((reward > 0).float().mean())
    result["reward_margin"] = float(reward.mean())
    return result


def evaluate_preference(trainer, model, train_rows, validation_rows, method: Method, result: dict, emitter, stop) -> None:
    """The preference part of the ``evaluating`` stage: ``result["preference"]`` over the held-out
    rows (the training rows without a split), and, with a split, the held-out loss fields as the
    LM loss of the chosen replies (KTO: the desirable completions) for adapter and base."""
    from .evaluation import perplexity

    rows = validation_rows or train_rows
    unit = "examples" if method.name == "kto" else "pairs"
    source = "held-out" if validation_rows else "training"
    scored = "base, reference and adapter" if has_reference_adapter(model) else "base and adapter"
    emitter.info(f"evaluating: log-probs of {scored} on {len(rows)} {source} {unit}")
    started = time.monotonic()
    scores = score_rows(trainer, model, rows, stop)
    result["preference"] = preference_summary(scores, method.reward_beta)
    if validation_rows:
        if "labels" in scores:
            keep = scores["labels"].bool()
            adapter, base, tokens = scores["adapter"][keep], scores["base"][keep], scores["tokens"][keep]
        else:
            adapter, base, tokens = scores["adapter_chosen"], scores["base_chosen"], scores["chosen_tokens"]
        count = int(tokens.sum())
        result["tokens_scored"] = count
        if count:
            result["adapter_loss"] = float(-adapter.sum() / count)
            result["base_loss"] = float(-base.sum() / count)
            result["adapter_perplexity"] = perplexity(result["adapter_loss"])
            result["base_perplexity"] = perplexity(result["base_loss"])
    summary = result["preference"]
    if summary["adapter_accuracy"] is not None:
        emitter.info(
            f"evaluating: preferred reply more likely in {summary['base_accuracy']:.0%} → "
            f"{summary['adapter_accuracy']:.0%} of {summary['pairs']} {source} pairs (base → adapter), "
            f"reward accuracy {summary['reward_accuracy']:.0%} ({time.monotonic() - started:.1f} s)"
        )
