"""Chat-template encoding: the loss covers exactly the trainable assistant turns."""

from __future__ import annotations

import pytest

from brightrun_trainer.data import Message
from brightrun_trainer.encoding import (
    DEFAULT_CHAT_TEMPLATE,
    IGNORE_INDEX,
    EncodedExample,
    PaddingCollator,
    encode_conversation,
    prepare_tokenizer,
)
from brightrun_trainer.tiny_model import build_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def trained_text(tokenizer, encoded: EncodedExample) -> str:
    ids = [label for label in encoded.labels if label != IGNORE_INDEX]
    return tokenizer.decode(ids)


def conversation(*turns: tuple[str, str, bool]) -> list[Message]:
    return [Message(role, content, trainable) for role, content, trainable in turns]


def test_only_assistant_turns_and_their_end_marker_are_trained(tokenizer):
    messages = conversation(("system", "Be brief.", False), ("user", "Hi there", False), ("assistant", "Hello!", True))
    encoded, truncated, searched = encode_conversation(tokenizer, messages, 512)
    assert not truncated and not searched
    assert trained_text(tokenizer, encoded) == "Hello!<|im_end|>\n"
    full = tokenizer.decode(list(encoded.input_ids))
    assert full == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
    assert len(encoded.labels) == len(encoded.input_ids)


def test_weight_zero_turns_are_masked_and_later_turns_trained(tokenizer):
    messages = conversation(
        ("user", "Q1", False), ("assistant", "draft", False), ("user", "Q2", False), ("assistant", "final", True)
    )
    encoded, _, _ = encode_conversation(tokenizer, messages, 512)
    assert trained_text(tokenizer, encoded) == "final<|im_end|>\n"


def test_every_trainable_turn_of_a_multi_turn_chat_is_trained(tokenizer):
    messages = conversation(("user", "a", False), ("assistant", "b", True), ("user", "c", False), ("assistant", "d", True))
    encoded, _, _ = encode_conversation(tokenizer, messages, 512)
    assert trained_text(tokenizer, encoded) == "b<|im_end|>\nd<|im_end|>\n"


def test_truncation_that_removes_every_assistant_token_drops_the_example(tokenizer):
    messages = conversation(("user", "x" * 100, False), ("assistant", "answer", True))
    encoded, truncated, _ = encode_conversation(tokenizer, messages, 32)
    assert encoded is None and truncated
    encoded, truncated, _ = encode_conversation(tokenizer, messages, 120)
    assert truncated and len(encoded.input_ids) == 120 and encoded.trained_tokens > 0


def test_templates_without_a_system_role_get_it_folded_into_the_first_user_turn():
    strict = build_tokenizer()
    strict.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('no system role') }}{% endif %}"
        "[{{ m['role'] }}]{{ m['content'] }}</s>{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}"
    )
    messages = conversation(("system", "Rules", False), ("user", "Q", False), ("assistant", "A", True))
    encoded, _, _ = encode_conversation(strict, messages, 512)
    assert strict.decode(list(encoded.input_ids)) == "[user]Rules\n\nQ</s>[assistant]A</s>"
    assert strict.decode([t for t in encoded.labels if t != IGNORE_INDEX]) == "A</s>"


def test_templates_that_rewrite_history_fall_back_to_text_search():
    rewriting = build_tokenizer()
    # Renders a different header when the conversation ends on a user turn.
    rewriting.chat_template = (
        "{% for m in messages %}<{{ m['role'] }}{% if loop.last %}!{% endif %}>{{ m['content'] }}{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    messages = conversation(("user", "Q", False), ("assistant", "Answer", True))
    encoded, _, searched = encode_conversation(rewriting, messages, 512)
    assert searched
    assert rewriting.decode([t for t in encoded.labels if t != IGNORE_INDEX]) == "Answer"


def test_prepare_tokenizer_fills_in_pad_token_and_template():
    bare = build_tokenizer()
    bare.chat_template = None
    bare.pad_token = None
    notes = prepare_tokenizer(bare)
    assert bare.pad_token == bare.eos_token and bare.chat_template == DEFAULT_CHAT_TEMPLATE
    assert len(notes) == 2


def test_collator_pads_right_and_masks_padding():
    batch = PaddingCollator(pad_token_id=3)([EncodedExample.of([5, 6, 7], [-100, 6, 7]), EncodedExample.of([8], [8])])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 3, 3]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


# ------------------------------------------------------------------------ tools and plain text

TOOLS = ({"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},)


def tool_conversation() -> list[Message]:
    from brightrun_trainer.data import ToolCall

    return [
        Message("user", "Weather in Paris?"),
        Message("assistant", "", True, (ToolCall("get_weather", {"city": "Paris"}, "c1"),)),
        Message("tool", "21", tool_call_id="c1"),
        Message("assistant", "It is 21.", True),
    ]


def test_tool_calls_render_with_tools_and_train_only_assistant_turns(tokenizer):
    encoded, truncated, searched = encode_conversation(tokenizer, tool_conversation(), 1024, tools=TOOLS)
    assert not truncated and not searched
    full = tokenizer.decode(list(encoded.input_ids))
    assert full.startswith('<|im_start|>system\n# Tools\n<tools>\n{"type": "function"')
    assert "<|im_start|>tool\n21<|im_end|>" in full
    # The mask, token by token: exactly the two assistant turns (the call and the answer).
    labels = list(encoded.labels)
    trained = [i for i, label in enumerate(labels) if label != IGNORE_INDEX]
    assert all(labels[i] == encoded.input_ids[i] for i in trained)
    assert trained_text(tokenizer, encoded) == (
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call><|im_end|>\n'
        "It is 21.<|im_end|>\n"
    )
    masked = tokenizer.decode([t for t, label in zip(encoded.input_ids, labels) if label == IGNORE_INDEX])
    assert "Weather in Paris?" in masked and "<tools>" in masked and "tool\n21" in masked


def test_plain_text_is_trained_on_every_token(tokenizer):
    from brightrun_trainer.data import Example
    from brightrun_trainer.encoding import encode_examples

    example = Example(1, 0, (Message("text", "Once upon a time.", True),))
    (encoded,), report = encode_examples(tokenizer, [example], 512)
    assert list(encoded.labels) == list(encoded.input_ids)
    assert tokenizer.decode(list(encoded.input_ids)) == "Once upon a time.<|im_end|>"
    assert report.kept == 1


# ------------------------------------------------------------------------ templates that rewrite history

#: Qwen3's rule, reduced: the reasoning (``<think>…</think>``) of assistant turns before the
#: last user message is dropped, so earlier renderings are not prefixes of later ones.
QWEN3_LIKE_TEMPLATE = (
    "{%- set ns = namespace(last_user=-1) %}"
    "{%- for m in messages %}{%- if m['role'] == 'user' %}{%- set ns.last_user = loop.index0 %}{%- endif %}{%- endfor %}"
    "{%- for m in messages %}"
    "{%- if m['role'] == 'assistant' %}"
    "{%- set content = m['content'] %}{%- set reasoning = '' %}"
    "{%- if '</think>' in content %}"
    "{%- set reasoning = content.split('</think>')[0].split('<think>')[-1].strip('\\n') %}"
    "{%- set content = content.split('</think>')[-1].lstrip('\\n') %}"
    "{%- endif %}"
    "{%- if loop.index0 > ns.last_user %}"
    "{{- '<|im_start|>assistant\\n<think>\\n' + reasoning + '\\n</think>\\n\\n' + content + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>assistant\\n' + content + '<|im_end|>\\n' }}{%- endif %}"
    "{%- else %}{{- '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def reasoning_chat() -> list[Message]:
    return conversation(
        ("user", "Q1", False),
        ("assistant", "<think>\nfirst thoughts\n</think>\n\nA1", True),
        ("user", "Q2", False),
        ("assistant", "<think>\nsecond thoughts\n</think>\n\nA2", True),
    )


def test_a_template_that_drops_earlier_reasoning_trains_every_turn_and_its_end_marker():
    from brightrun_trainer.encoding import EncodingReport

    qwen3 = build_tokenizer()
    qwen3.chat_template = QWEN3_LIKE_TEMPLATE
    report = EncodingReport()
    encoded, _, searched = encode_conversation(qwen3, reasoning_chat(), 1024, report=report)
    assert searched and report.turns_not_located == 0
    full = qwen3.decode(list(encoded.input_ids))
    assert "first thoughts" not in full  # the template rewrote the earlier turn
    # The earlier turn as rendered (its answer) and the last one with its reasoning, each
    # through its end-of-turn marker, so the model learns to stop.
    assert qwen3.decode([t for t in encoded.labels if t != IGNORE_INDEX]) == (
        "A1<|im_end|>\n<think>\nsecond thoughts\n</think>\n\nA2<|im_end|>\n"
    )


def test_a_turn_the_search_cannot_locate_is_counted_and_reported():
    import io
    import json

    from brightrun_trainer.data import Example
    from brightrun_trainer.encoding import encode_examples
    from brightrun_trainer.events import EventEmitter
    from brightrun_trainer.train import _report_encoding

    shouting = build_tokenizer()
    # Earlier assistant turns are rewritten beyond recognition (upper-cased); the last is not.
    shouting.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
        "{% if m['role'] == 'assistant' and not loop.last %}{{ m['content'] | upper }}{% else %}{{ m['content'] }}{% endif %}"
        "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    messages = conversation(("user", "q1", False), ("assistant", "first", True), ("user", "q2", False), ("assistant", "second", True))
    (encoded,), report = encode_examples(shouting, [Example(1, 0, tuple(messages))], 512)
    assert report.turns_not_located == 1 and report.examples_with_turns_not_located == 1
    assert shouting.decode([t for t in encoded.labels if t != IGNORE_INDEX]) == "second<|im_end|>\n"
    out = io.StringIO()
    _report_encoding(EventEmitter(out), 512, report)
    warnings = [json.loads(line)["message"] for line in out.getvalue().splitlines() if '"warning"' in line]
    assert len(warnings) == 1 and warnings[0].startswith("1 assistant turns in 1 examples could not be located")


def test_a_template_with_generation_markers_supplies_its_own_mask():
    marked = build_tokenizer()
    marked.chat_template = QWEN3_LIKE_TEMPLATE.replace(
        "{{- '<|im_start|>assistant\\n<think>\\n' + reasoning + '\\n</think>\\n\\n' + content + '<|im_end|>\\n' }}",
        "{{- '<|im_start|>assistant\\n' }}{% generation %}{{- '<think>\\n' + reasoning + '\\n</think>\\n\\n' + content + '<|im_end|>' }}{% endgeneration %}{{- '\\n' }}",
    ).replace(
        "{%- else %}{{- '<|im_start|>assistant\\n' + content + '<|im_end|>\\n' }}{%- endif %}",
        "{%- else %}{{- '<|im_start|>assistant\\n' }}{% generation %}{{- content + '<|im_end|>' }}{% endgeneration %}{{- '\\n' }}{%- endif %}",
    )
    assert "{% generation %}" in marked.chat_template
    encoded, _, searched = encode_conversation(marked, reasoning_chat(), 1024)
    assert not searched
    assert marked.decode([t for t in encoded.labels if t != IGNORE_INDEX]) == (
        "A1<|im_end|><think>\nsecond thoughts\n</think>\n\nA2<|im_end|>"
    )
    # A turn with weight 0 keeps its tokens out of the loss, mask or not.
    messages = reasoning_chat()
    messages[1] = Message("assistant", messages[1].content, False)
    encoded, _, _ = encode_conversation(marked, messages, 1024)
    assert marked.decode([t for t in encoded.labels if t != IGNORE_INDEX]) == "<think>\nsecond thoughts\n</think>\n\nA2<|im_end|>"


# ------------------------------------------------------------------------ strict templates

#: Mistral/Gemma style: anything but user/assistant alternation is refused.
STRICT_TEMPLATE = (
    "{%- for m in messages %}"
    "{%- if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{%- endif %}"
    "{{- '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def strict_examples(bad_lines=(3,), count=4):
    from brightrun_trainer.data import Example

    examples = []
    for i in range(count):
        line = i + 1
        if line in bad_lines:  # two user turns in a row
            turns = [("user", f"q{i}", False), ("user", "again", False), ("assistant", f"a{i}", True)]
        else:
            turns = [("system", "Be brief.", False), ("user", f"q{i}", False), ("assistant", f"a{i}", True)]
        examples.append(Example(line, i, tuple(conversation(*turns))))
    return examples


def test_a_record_a_strict_template_rejects_is_skipped_and_counted():
    import io
    import json

    from brightrun_trainer.data import DatasetFormat, LoadedDataset
    from brightrun_trainer.encoding import encode_examples
    from brightrun_trainer.events import EventEmitter
    from brightrun_trainer.train import _encode

    strict = build_tokenizer()
    strict.chat_template = STRICT_TEMPLATE
    encoded, report = encode_examples(strict, strict_examples(), 512)
    assert report.kept == 3 and report.rejected_by_template == 1
    assert report.rejections[0].line == 3 and "roles must alternate" in report.rejections[0].reason

    dataset = LoadedDataset(DatasetFormat.OPENAI_CHAT, strict_examples(), [], total_records=4)
    out = io.StringIO()
    hp = _hyperparameters()
    train_set, _ = _encode(strict, dataset, hp, EventEmitter(out))
    assert len(train_set) == 3
    warnings = [json.loads(line)["message"] for line in out.getvalue().splitlines() if '"warning"' in line]
    assert warnings == [
        "skipped 1 unusable records (line 3: the chat template rejects this conversation: "
        "Conversation roles must alternate user/assistant/user/assistant/...)"
    ]


def test_only_when_the_template_rejects_every_record_does_encoding_fail():
    import io

    from brightrun_trainer.data import DatasetFormat, LoadedDataset
    from brightrun_trainer.errors import DatasetError
    from brightrun_trainer.events import EventEmitter
    from brightrun_trainer.train import _encode

    strict = build_tokenizer()
    strict.chat_template = STRICT_TEMPLATE
    dataset = LoadedDataset(DatasetFormat.OPENAI_CHAT, strict_examples(bad_lines=(1, 2)), [], total_records=2)
    dataset.train = dataset.train[:2]
    with pytest.raises(DatasetError, match=r"the chat template rejects 2 of them \(line 1: .*roles must alternate"):
        _encode(strict, dataset, _hyperparameters(), EventEmitter(io.StringIO()))


def _hyperparameters():
    from types import SimpleNamespace

    return SimpleNamespace(max_seq_length=512)  # all that encoding reads


def test_a_reply_with_no_user_message_is_trained_and_a_strict_template_skips_it():
    # OpenAI's toy_chat_fine_tuning.jsonl has system → assistant (issue 23).
    from brightrun_trainer.data import Example
    from brightrun_trainer.encoding import encode_examples

    messages = conversation(("system", "Be positive.", False), ("assistant", "You're great!", True))
    encoded, _, _ = encode_conversation(build_tokenizer(), messages, 512)
    assert trained_text(build_tokenizer(), encoded) == "You're great!<|im_end|>\n"
    strict = build_tokenizer()
    strict.chat_template = STRICT_TEMPLATE
    _, report = encode_examples(strict, [Example(4, 3, tuple(messages))], 512)
    assert report.rejected_by_template == 1 and report.rejections[0].line == 4
