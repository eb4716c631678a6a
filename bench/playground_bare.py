"""The bare loop `bench/playground.sh` compares the playground's worker with: transformers'
``model.generate`` on the same model (PEFT adapter loaded, or disabled for the base), the same
chat turns, greedy, the same ``max_new_tokens``, with a ``TextIteratorStreamer`` in a thread
to time the first token (when generate hands it to the streamer, as the worker times it). What a person would write to chat with the model without BrightRun.

    python bench/playground_bare.py MODEL_DIR ADAPTER_DIR MAX_NEW_TOKENS adapter|base PROMPT...

Loads once, then answers each PROMPT as the next user turn of one conversation (each reply is
kept in the history, as `models chat` does), and prints one JSON line per turn:
``{"turn", "tokens", "seconds", "first_token_seconds", "reply"}`` after a first line
``{"load_seconds"}``. ``seconds`` runs from the turn's start (before its prompt is rendered)
to the last token, as the worker's ``done`` counts it.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time

# As the worker runs (brightrun_trainer/__main__.py): passive OpenMP waiting, quiet tokenizers.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> int:
    model_dir, adapter_dir, max_new_tokens, which, *prompts = sys.argv[1:]
    max_new_tokens = int(max_new_tokens)
    started = time.monotonic()
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, TextIteratorStreamer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(model, adapter_dir)
    model.eval()
    print(json.dumps({"load_seconds": round(time.monotonic() - started, 3)}), flush=True)
    eos = model.generation_config.eos_token_id
    eos = list(eos) if isinstance(eos, (list, tuple)) else [eos] if eos is not None else []
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos:
        eos.append(tokenizer.eos_token_id)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    class FirstTokenStreamer(TextIteratorStreamer):
        """Times the first generated token when generate hands it over (the worker's
        definition), not when its text is released at a word boundary."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.first_token_at = None
            self._prompt_seen = False

        def put(self, value):
            if self._prompt_seen and self.first_token_at is None:
                self.first_token_at = time.monotonic()
            self._prompt_seen = True
            super().put(value)

    history: list[dict[str, str]] = []
    for turn, prompt in enumerate(prompts, 1):
        history.append({"role": "user", "content": prompt})
        start = time.monotonic()
        text = tokenizer.apply_chat_template(history, tokenize=False, add_generation_prompt=True)
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        streamer = FirstTokenStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        out: list = []

        def generate() -> None:
            with torch.no_grad():
                kwargs = dict(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    num_beams=1,
                    pad_token_id=pad,
                    eos_token_id=eos or None,
                    streamer=streamer,
                )
                if which == "base":
                    with model.disable_adapter():
                        out.append(model.generate(**kwargs))
                else:
                    out.append(model.generate(**kwargs))

        thread = threading.Thread(target=generate)
        thread.start()
        reply = ""
        for piece in streamer:
            reply += piece
        thread.join()
        first = streamer.first_token_at
        end = time.monotonic()
        tokens = int(out[0].shape[1] - ids.shape[1])
        history.append({"role": "assistant", "content": reply})
        print(
            json.dumps(
                {
                    "turn": turn,
                    "tokens": tokens,
                    "seconds": round(end - start, 4),
                    "first_token_seconds": round(first - start, 4) if first is not None else None,
                    "reply": reply,
                }
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
