"""``brightrun/tiny-random-llama``: a small random Llama built locally, never downloaded.

Tests, CI and smoke runs need a real causal LM that trains on a CPU in seconds without
network access. This module builds one deterministically (fixed seed, fixed vocabulary) and
caches it in a folder that ``from_pretrained`` reads like any hub snapshot.

The tokenizer is byte-level: 256 byte tokens plus a few special tokens, no merges. It needs
no training corpus, can encode any text, and is identical on every machine. Its chat
template is ChatML, with ``<|im_end|>`` as the end-of-sequence token so that a fine-tuned
adapter learns where to stop.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

#: Bump when the construction changes, so stale caches are rebuilt rather than reused.
#: 2: the chat template renders tools and tool calls.
BUILD_VERSION = 2
SEED = 1_234_567
SPECIAL_TOKENS = ("<unk>", "<s>", "<|im_end|>", "<pad>", "<|im_start|>")
#: ChatML with tools in the Hermes style (as Qwen's templates write them): the definitions in
#: a system block, calls as ``<tool_call>`` JSON inside the assistant turn, results in
#: ``tool`` turns.
CHAT_TEMPLATE = (
    "{% if tools %}{{ '<|im_start|>system\\n# Tools\\n<tools>\\n' }}"
    "{% for tool in tools %}{{ (tool | tojson) + '\\n' }}{% endfor %}"
    "{{ '</tools><|im_end|>\\n' }}{% endif %}"
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + (message['content'] or '') }}"
    "{% if message.tool_calls is defined and message.tool_calls %}{% for call in message.tool_calls %}"
    "{{ '<tool_call>' + (call['function'] | tojson) + '</tool_call>' }}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
MODEL_SHAPE = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "intermediate_size": 128,
    "max_position_embeddings": 4096,
}


def cache_root() -> Path:
    """``$BRIGHTRUN_CACHE_DIR``, else ``$XDG_CACHE_HOME/brightrun``, else ``~/.cache/brightrun``."""
    explicit = os.environ.get("BRIGHTRUN_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "brightrun"


def ensure_tiny_model(root: Path | None = None) -> Path:
    """The cached model folder, built on first use (safe against concurrent builders)."""
    return ensure_built((root or cache_root()) / f"tiny-random-llama-v{BUILD_VERSION}", build_tiny_model)


def ensure_built(target: Path, build: Callable[[Path], object]) -> Path:
    """``target``, built by ``build(staging)`` in a temporary sibling folder and renamed into
    place, so that concurrent builders and readers see a complete folder or none."""
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        build(staging)
        try:
            os.rename(staging, target)  # atomic: readers see a complete folder or none
        except OSError:
            if not (target / "config.json").is_file():
                raise  # not a lost race with another builder
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def build_tiny_model(out_dir: Path) -> Path:
    """Write the tiny model and its tokenizer to ``out_dir`` (same bytes for the same versions)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        **MODEL_SHAPE,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def build_tokenizer():
    """A byte-level tokenizer with a ChatML template, built without any download."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    byte_symbols = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {token: i for i, token in enumerate([*SPECIAL_TOKENS, *byte_symbols])}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(list(SPECIAL_TOKENS))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="<|im_end|>",
        pad_token="<pad>",
        additional_special_tokens=["<|im_start|>"],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer
