"""How the trainer spends the GPU: attention kernel, batching, activation checkpointing, the loss.

Each choice here changes speed and memory, never what is learnt (the loss of a batch is the
same number whichever path computes it; ``tests/test_efficiency.py`` checks that on the tiny
model). The decisions are plain functions of numbers the caller measures, so they can be
tested with mocked GPUs; every decision comes with a sentence the runner logs, so a job's
log says which path ran and why.

What transformers 5.24 does with a flattened batch (read in its source): with
``position_ids`` given, no ``attention_mask`` and no KV cache (hence ``use_cache = False``),
``masking_utils.find_packed_sequence_indices`` detects the restarts of the position ids and
sdpa/eager attention get a block-diagonal causal mask over the whole row, which is exact but
computes every block of it; the flash-attention implementations instead take the sequence
bounds (``cu_seq_lens_*`` from the collator, or derived from ``position_ids``) and run the
varlen kernel, which computes no cross-example and no padding work at all.

Importing this module imports torch (the training stack is loaded by then).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from .encoding import IGNORE_INDEX
from .spec import Efficiency

#: Trained tokens per chunk of the chunked loss. 1024 × a 152k vocabulary in fp32 is 0.6 GB,
#: against 8.4 GB for the whole logits of Llama-3 at batch 8 × 2048.
LOSS_CHUNK_TOKENS = 1024
#: Share of the free GPU memory that the activations may take before checkpointing is
#: switched on (the rest covers the allocator's fragmentation, the optimizer's first step,
#: the loss chunks and cuBLAS workspaces).
ACTIVATION_MEMORY_SHARE = 0.7


# --------------------------------------------------------------------------- attention


def varlen_attention_available(on_cuda: bool) -> str | None:
    """The flash-attention implementation that runs packed (varlen) sequences here, if any.

    flash-attn kernels need an Ampere or later GPU (compute capability ≥ 8.0) and the
    package; transformers then reads the sequence boundaries from ``position_ids``.
    """
    if not on_cuda:
        return None
    try:
        major, _ = torch.cuda.get_device_capability()
    except Exception:
        return None
    if major < 8:
        return None
    if major >= 9 and importlib.util.find_spec("flash_attn_interface") is not None:
        return "flash_attention_3"
    if importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return None


@dataclass(frozen=True)
class Batching:
    """How examples become batches: ``flat`` (one row, per-example position ids), ``packed``
    (several examples per ``max_seq_length`` row, then flat) or ``grouped`` (padded, with
    batches of similar lengths)."""

    mode: str
    attention: str
    reason: str

    @property
    def flattens(self) -> bool:
        return self.mode in ("flat", "packed")


def choose_batching(efficiency: Efficiency, varlen: str | None) -> Batching:
    """Padding-free only where a varlen kernel runs: elsewhere (CPU, older GPUs, no flash-attn)
    a flattened batch is attended through a block-diagonal mask over all its tokens, which
    costs more than the padding it saves; length-grouped batches keep padding low instead.
    Packing is honoured everywhere because it was asked for explicitly (it is exact either way)."""
    attention = varlen or "sdpa"
    if efficiency.packing:
        how = f"varlen {varlen}" if varlen else "sdpa with a block-diagonal mask (no varlen kernel here)"
        return Batching("packed", attention, f"packing examples into max_seq_length rows, attention: {how}")
    if efficiency.padding_free and varlen:
        return Batching("flat", attention, f"padding-free batches (varlen {varlen}, sequence bounds from position ids)")
    if efficiency.padding_free:
        why = "no flash-attn varlen kernel on this machine"
    else:
        why = "padding_free is off"
    return Batching("grouped", attention, f"padded batches grouped by length ({why}), attention: sdpa")


# --------------------------------------------------------------------------- checkpointing


def activation_bytes(config, tokens: int, dtype_bytes: int, lora_modules: int = 0) -> int:
    """A conservative estimate of the activations a decoder keeps for backward, in bytes.

    Per layer and token a Llama-style block keeps about ten hidden-sized tensors (norm inputs
    and outputs, q/k/v, attention output, o_proj input, residuals) and four of the MLP's width
    (gate, up, activation, product); memory-efficient attention keeps no score matrix. Each
    LoRA-wrapped module adds its dropout's input copy. The chunked loss keeps no logits.
    """
    hidden = int(getattr(config, "hidden_size", 0) or 0)
    width = int(getattr(config, "intermediate_size", 0) or 4 * hidden)
    layers = int(getattr(config, "num_hidden_layers", 0) or 0)
    per_token_layer = (10 + lora_modules) * hidden + 4 * width
    return tokens * layers * per_token_layer * dtype_bytes


def logits_bytes(config, tokens: int) -> int:
    """The model's own loss: the logits, their fp32 upcast and its gradient."""
    vocab = int(getattr(config, "vocab_size", 0) or 0)
    return tokens * vocab * (2 + 4 + 4)


def decide_checkpointing(setting: str, *, on_cuda: bool, needed: int, free: int | None) -> tuple[bool, str]:
    """Whether to recompute activations in backward (≈20–30 % more compute), and why.

    ``auto`` turns it on only when the estimated activations exceed
    ``ACTIVATION_MEMORY_SHARE`` of the free GPU memory measured after the model loaded.
    """
    gib = 2**30
    if setting == "on":
        return True, "activation checkpointing: on (gradient_checkpointing \"on\" in the spec)"
    if setting == "off":
        return False, "activation checkpointing: off (gradient_checkpointing \"off\" in the spec)"
    if not on_cuda:
        return False, "activation checkpointing: off (auto: training on CPU, memory is not the limit)"
    if free is None:
        return True, "activation checkpointing: on (auto: free GPU memory unknown, erring on the safe side)"
    budget = ACTIVATION_MEMORY_SHARE * free
    numbers = f"estimated activations {needed / gib:.1f} GiB, free GPU memory {free / gib:.1f} GiB"
    if needed > budget:
        return True, f"activation checkpointing: on (auto: {numbers}; more than {ACTIVATION_MEMORY_SHARE:.0%} of it)"
    return False, f"activation checkpointing: off (auto: {numbers}; it fits, saving the recomputation)"


def free_gpu_memory() -> int | None:
    """Free bytes on the current CUDA device, as the driver reports them."""
    try:
        free, _total = torch.cuda.mem_get_info()
        return int(free)
    except Exception:
        return None


def enable_tf32() -> bool:
    """TF32 matmuls and convolutions on Ampere and later (fp32 work such as the loss upcast);
    no effect on bf16/fp16 kernels. True if enabled."""
    try:
        if not torch.cuda.is_available() or torch.cuda.get_device_capability()[0] < 8:
            return False
    except Exception:
        return False
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    return True


# --------------------------------------------------------------------------- chunked loss


def chunked_loss_supported(causal_lm) -> str | None:
    """Why the chunked loss cannot stand in for this model's own loss, or None if it can.

    It reproduces ``ForCausalLMLoss`` on ``lm_head(hidden)``: models that post-process
    their logits (soft-capping, scaling) or lack the decoder/LM-head split keep their own.
    """
    config = getattr(causal_lm, "config", None)
    for attribute in ("final_logit_softcapping", "logit_scale", "logits_scaling"):
        value = getattr(config, attribute, None)
        if value not in (None, 1, 1.0):
            return f"the model scales its logits ({attribute})"
    if getattr(config, "is_encoder_decoder", False):
        return "an encoder-decoder model"
    try:
        head = causal_lm.get_output_embeddings()
    except Exception:
        head = None
    if head is None or not hasattr(causal_lm, "set_output_embeddings"):
        return "no separate LM head"
    return None


def _chunk_loss_sum(head, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    logits = head(hidden).float()
    return F.cross_entropy(logits, targets, reduction="sum")


def hidden_states(model, causal_lm, inputs: dict) -> torch.Tensor:
    """The last hidden states, from a forward pass through ``model`` itself with the LM head
    swapped for an identity.

    Going through the outermost module (PEFT, DistributedDataParallel, a compiled wrapper)
    rather than calling the decoder directly keeps their forward hooks: DDP prepares its
    gradient all-reduce there. The model's forward then returns the hidden states as its
    "logits" (no labels are passed, so it computes no loss).
    """
    head = causal_lm.get_output_embeddings()
    causal_lm.set_output_embeddings(torch.nn.Identity())
    try:
        return model(**inputs, use_cache=False).logits
    finally:
        causal_lm.set_output_embeddings(head)


def chunked_lm_loss(
    model,
    causal_lm,
    inputs: dict,
    num_items_in_batch=None,
    chunk_tokens: int = LOSS_CHUNK_TOKENS,
) -> torch.Tensor:
    """The causal-LM loss without materialising the logits.

    ``model`` is what the Trainer calls (possibly wrapped), ``causal_lm`` the
    ``…ForCausalLM`` inside it. The hidden states are shifted against the labels as
    ``ForCausalLMLoss`` does, only positions with a label are kept, and the LM head and
    cross-entropy run over chunks of them under ``torch.utils.checkpoint``: backward
    recomputes each chunk's logits instead of keeping them. Reduction: the sum over trained
    tokens divided by ``num_items_in_batch`` (the Trainer's count over the accumulated batch)
    or, without it, by this batch's trained tokens — the model's own loss, exactly.
    """
    labels = inputs["labels"]
    head = causal_lm.get_output_embeddings()
    hidden = hidden_states(model, causal_lm, {k: v for k, v in inputs.items() if k != "labels"})
    shift_labels = F.pad(labels, (0, 1), value=IGNORE_INDEX)[..., 1:]
    keep = shift_labels != IGNORE_INDEX
    selected, targets = hidden[keep], shift_labels[keep]
    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, targets.numel(), chunk_tokens):
        piece = slice(start, start + chunk_tokens)
        if torch.is_grad_enabled():
            total = total + checkpoint(_chunk_loss_sum, head, selected[piece], targets[piece], use_reentrant=False)
        else:
            total = total + _chunk_loss_sum(head, selected[piece], targets[piece])
    if num_items_in_batch is None:
        divisor = keep.sum()
    elif torch.is_tensor(num_items_in_batch):
        divisor = num_items_in_batch.to(total.device)
    else:
        divisor = num_items_in_batch
    return total / divisor
