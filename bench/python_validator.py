#!/usr/bin/env python3
"""A straightforward Python dataset validator: the baseline BrightRun's validator is compared to.

It does the same checks as `brightrun_engine::validation`, the obvious way: read the file line
by line, `json.loads` each line, check the object against its format (the six formats of
DESIGN.md), the roles, the role order, non-empty content, `weight`, unknown keys; estimate
tokens as ceil(UTF-8 bytes / 4) per message; find exact duplicates by hashing the normalised
example; count the PROTOCOL.md hold-out split; compute p50/p95/max tokens per example.

    python3 bench/python_validator.py FILE [--max-seq-length 2048] [--holdout 0.1] [--seed 42]
"""

import argparse
import json
import math
import sys
import time

SPLIT_MULTIPLIER = 2654435761
CHAT_ROLES = {"system": "system", "user": "user", "assistant": "assistant"}
OPENAI_ROLES = {**CHAT_ROLES, "developer": "system"}
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant",
                  "assistant": "assistant"}


class Invalid(Exception):
    pass


def detect(obj):
    if "turns" in obj:
        return "brightrun_v4"
    if "messages" in obj:
        return "openai_chat"
    if "conversations" in obj:
        return "sharegpt"
    if "current_user_input" in obj and "target_response" in obj:
        return "brightrun_flat"
    if "instruction" in obj and "output" in obj:
        return "alpaca"
    if "prompt" in obj and "completion" in obj:
        return "prompt_completion"
    return None


def text(obj, key, required=True):
    value = obj.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise Invalid(f"{key} must be a string")
    return value


def message_list(obj, list_key, role_key, content_key, roles, known, warnings, openai=False):
    items = obj.get(list_key)
    if not isinstance(items, list):
        raise Invalid(f"{list_key} must be an array")
    if not items:
        raise Invalid(f"{list_key} is empty")
    out = []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise Invalid(f"{list_key}[{n}] must be an object")
        for k in item:
            if k not in known:
                warnings.append(f"unknown key {k} in {list_key}[{n}]")
        role = item.get(role_key)
        if not isinstance(role, str) or role not in roles:
            raise Invalid(f"{list_key}[{n}].{role_key} is not a known role")
        role = roles[role]
        content = item.get(content_key)
        if openai and isinstance(content, list):
            parts = []
            for part in content:
                if not (isinstance(part, dict) and part.get("type") == "text"
                        and isinstance(part.get("text"), str)):
                    raise Invalid(f"{list_key}[{n}].content is not text")
                parts.append(part["text"])
            content = "".join(parts)
        if not isinstance(content, str):
            raise Invalid(f"{list_key}[{n}].{content_key} must be a string")
        if not content.strip() and role != "system":
            raise Invalid(f"{list_key}[{n}].{content_key} is empty")
        trainable = True
        if openai and "weight" in item:
            weight = item["weight"]
            if role == "assistant":
                if isinstance(weight, bool) or weight not in (0, 1):
                    raise Invalid(f"{list_key}[{n}].weight must be 0 or 1")
                trainable = weight == 1
            else:
                warnings.append("weight on a non-assistant message")
        out.append((role, content, trainable and role == "assistant"))
    return out


def normalise(obj, fmt, warnings):
    if fmt == "openai_chat":
        for k in obj:
            if k != "messages":
                warnings.append(f"unknown key {k}")
        return message_list(obj, "messages", "role", "content", OPENAI_ROLES,
                            ("role", "content", "weight"), warnings, openai=True)
    if fmt == "brightrun_v4":
        for k in obj:
            if k not in ("turns", "conversation_id"):
                warnings.append(f"unknown key {k}")
        return message_list(obj, "turns", "role", "content", CHAT_ROLES, ("role", "content"), warnings)
    if fmt == "sharegpt":
        msgs = []
        system = obj.get("system")
        if system is not None and not isinstance(system, str):
            raise Invalid("system must be a string")
        if system and system.strip():
            msgs.append(("system", system, False))
        for k in obj:
            if k not in ("conversations", "system"):
                warnings.append(f"unknown key {k}")
        return msgs + message_list(obj, "conversations", "from", "value", SHAREGPT_ROLES,
                                   ("from", "value"), warnings)
    msgs = []
    if fmt == "brightrun_flat":
        known = ("system_prompt", "current_user_input", "target_response")
        system = text(obj, "system_prompt", required=False)
        user, answer = text(obj, "current_user_input"), text(obj, "target_response")
    elif fmt == "alpaca":
        known = ("instruction", "input", "output", "system", "history")
        system = text(obj, "system", required=False)
        instruction, extra = text(obj, "instruction"), text(obj, "input", required=False)
        user = f"{instruction}\n\n{extra}" if extra and extra.strip() else instruction
        answer = text(obj, "output")
    else:
        known = ("prompt", "completion")
        system, user, answer = None, text(obj, "prompt"), text(obj, "completion")
    for k in obj:
        if k not in known:
            warnings.append(f"unknown key {k}")
    if not user.strip() or not answer.strip():
        raise Invalid("empty content")
    if system and system.strip():
        msgs.append(("system", system, False))
    msgs.append(("user", user, False))
    msgs.append(("assistant", answer, True))
    return msgs


def check_order(msgs):
    if any(role == "system" for role, _, _ in msgs[1:]):
        raise Invalid("a system message may only come first")
    body = msgs[1:] if msgs[0][0] == "system" else msgs
    if not body:
        raise Invalid("only a system message")
    if body[0][0] != "user":
        raise Invalid("must start with a user message")
    for a, b in zip(body, body[1:]):
        if a[0] == b[0]:
            raise Invalid("user and assistant must alternate")
    if body[-1][0] != "assistant":
        raise Invalid("must end with an assistant message")
    if not any(t for _, _, t in body):
        raise Invalid("nothing to learn")


def validate(path, max_seq_length, holdout, seed):
    threshold = round(holdout * 10000)
    errors, warnings = [], []
    fmt = None
    index = examples = training = validation = total_tokens = turns = 0
    lengths, seen = [], set()
    duplicates = over = 0
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue
            record = index
            index += 1
            try:
                obj = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                errors.append((line_no, str(exc)))
                continue
            if not isinstance(obj, dict):
                errors.append((line_no, "not an object"))
                continue
            if record == 0 and "_meta" in obj:
                index = 0
                continue
            this = detect(obj)
            if this is None:
                errors.append((line_no, "unknown format"))
                continue
            if fmt is not None and this != fmt:
                errors.append((line_no, f"{this} in a {fmt} file"))
                continue
            try:
                msgs = normalise(obj, this, warnings)
                check_order(msgs)
            except Invalid as exc:
                errors.append((line_no, str(exc)))
                continue
            fmt = fmt or this
            examples += 1
            if (record * SPLIT_MULTIPLIER + seed) % 10000 < threshold:
                validation += 1
            else:
                training += 1
            tokens = sum(math.ceil(len(content.encode("utf-8")) / 4) for _, content, _ in msgs)
            total_tokens += tokens
            turns += len(msgs)
            lengths.append(tokens)
            if tokens > max_seq_length:
                over += 1
            key = hash(tuple((role, content) for role, content, _ in msgs))
            if key in seen:
                duplicates += 1
            else:
                seen.add(key)
    lengths.sort()

    def rank(p):
        return lengths[max(1, math.ceil(p * len(lengths))) - 1] if lengths else 0

    return {
        "format": fmt, "examples": examples, "training": training, "validation": validation,
        "tokens": total_tokens, "p50": rank(0.5), "p95": rank(0.95),
        "max": lengths[-1] if lengths else 0, "duplicates": duplicates, "over_max": over,
        "errors": len(errors), "warnings": len(warnings),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--max-seq-length", type=int, default=2048)
    parser.add_argument("--holdout", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    size = __import__("os").path.getsize(args.file)
    start, cpu_start = time.perf_counter(), time.process_time()
    result = validate(args.file, args.max_seq_length, args.holdout, args.seed)
    secs, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    print(" ".join(f"{k}={v}" for k, v in result.items()))
    print(f"python: {size / 1e6:.1f} MB in {secs:.3f} s = {size / 1e6 / secs:.1f} MB/s")
    print(f"python cpu: {cpu:.3f} s = {size / 1e6 / cpu:.1f} MB/s of CPU time")


if __name__ == "__main__":
    sys.exit(main())
