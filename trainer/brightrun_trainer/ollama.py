"""An Ollama ``Modelfile`` for a GGUF export (PROTOCOL.md, "Export mode", "Modelfile").

Ollama renders prompts with a Go ``text/template`` over ``.Messages`` (each with ``.Role`` and
``.Content``) and ``.System`` (the system messages' text), not with the model's Jinja chat
template. A template that renders differently from the one the model was trained with costs
quality silently (a missing default system turn, a newline), so the Go template is not
written by hand per model family: it is derived from the chat template itself, by rendering
marker conversations and cutting the text around the markers into what comes before and
after each role's content, the generation prompt, and what the template writes before the
first message when there is no system message (a default system turn, say).

The derivation only holds for templates that render every message the same way wherever it
is and that grow a conversation by appending (ChatML, Llama 3, Gemma …): it is checked by
rendering the pieces back here, exactly as the Go template does, against the chat template on
conversations with and without a system message. A template that fails that check gets no
``TEMPLATE`` line (Ollama then picks one from the GGUF's chat template itself), with a warning.

No torch here: the chat template comes in as a ``render(messages, add_generation_prompt)``
callable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

Render = Callable[[list[dict[str, str]], bool], str]
ROLES = ("system", "user", "assistant")
#: Marker contents: plain words that no template rewrites (no whitespace to trim, no case to change).
_MARKS = {
    "system": "BRIGHTRUNxSYSTEMx7f3a",
    "user": "BRIGHTRUNxUSERx9c1e",
    "assistant": "BRIGHTRUNxASSISTANTx4b2d",
    "user2": "BRIGHTRUNxUSERTWOx0e5f",
}
#: Conversations the derived pieces must render exactly as the chat template does.
_CHECKS = (
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Name a colour."}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
     {"role": "user", "content": "Name a colour."}],
    [{"role": "user", "content": "What is 2 + 2?"}],
)  # fmt: skip


class TemplateNotDerivable(Exception):
    """The chat template cannot be expressed as per-role pieces (the reason says where it broke)."""


@dataclass(frozen=True)
class ChatPieces:
    """A chat template cut at the messages' content."""

    #: Written first when the conversation has no system message (a default system turn, a BOS).
    no_system: str
    #: Per role: the text before the content (the system role's includes any text the template
    #: writes before the first message) and after it.
    before: dict[str, str]
    after: dict[str, str]
    #: The generation prompt, after the last user message.
    generation: str


def derive_pieces(render: Render) -> ChatPieces:
    """The pieces of the chat template behind ``render``, checked to render :data:`_CHECKS` as it does."""
    s, u, a, u2 = (_MARKS[key] for key in ("system", "user", "assistant", "user2"))
    conversation = [_message("system", s), _message("user", u), _message("assistant", a), _message("user", u2)]
    segments = _segments(render, conversation)
    cuts = [_cut(segment, marker) for segment, marker in zip(segments, (s, u, a, u2))]
    if cuts[1] != cuts[3]:
        raise TemplateNotDerivable("the first and the second user message are rendered differently")
    full = render(conversation, False)
    prompted = render(conversation, True)
    if not prompted.startswith(full):
        raise TemplateNotDerivable("the generation prompt is not appended to the conversation")
    alone = render([_message("user", u)], False)
    user_text = cuts[1][0] + u + cuts[1][1]
    if not alone.endswith(user_text):
        raise TemplateNotDerivable("a conversation without a system message does not end with its user message")
    pieces = ChatPieces(
        no_system=alone[: len(alone) - len(user_text)],
        before={role: cut[0] for role, cut in zip(ROLES, cuts)},
        after={role: cut[1] for role, cut in zip(ROLES, cuts)},
        generation=prompted[len(full) :],
    )
    for check in _CHECKS:
        if render_pieces(pieces, check) != render(check, True):
            raise TemplateNotDerivable(f"the pieces render a {len(check)}-message conversation differently")
    return pieces


def _message(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


def _segments(render: Render, conversation: list[dict[str, str]]) -> list[str]:
    """What each message adds to the rendered text (the conversation rendered as it grows)."""
    segments, previous = [], ""
    for end in range(1, len(conversation) + 1):
        try:
            text = render(conversation[:end], False)
        except Exception as exc:
            raise TemplateNotDerivable(f"the template refuses a {end}-message conversation ({exc})") from exc
        if not text.startswith(previous):
            raise TemplateNotDerivable("the template renders earlier messages differently as the conversation grows")
        segments.append(text[len(previous) :])
        previous = text
    return segments


def _cut(segment: str, marker: str) -> tuple[str, str]:
    if segment.count(marker) != 1:
        raise TemplateNotDerivable("a message's content is not rendered exactly once, as given")
    before, after = segment.split(marker)
    return before, after


def render_pieces(pieces: ChatPieces, messages: list[dict[str, str]]) -> str:
    """The conversation as :func:`go_template`'s template renders it in Ollama (with the
    generation prompt after a last user message), computed here."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")  # Ollama's .System
    parts = [] if system else [pieces.no_system]
    for index, message in enumerate(messages):
        role, last = message["role"], index == len(messages) - 1
        parts.append(pieces.before[role] + message["content"])
        if role != "assistant" or not last:
            parts.append(pieces.after[role])
        if role == "user" and last:
            parts.append(pieces.generation)
    return "".join(parts)


def go_template(pieces: ChatPieces) -> str:
    """The pieces as an Ollama (Go ``text/template``) template over ``.Messages`` and ``.System``.

    No trim markers (``{{-``): they would eat the newlines the pieces end with. Literal text
    goes in as written, except text holding ``{{`` or the Modelfile's ``\"\"\"`` delimiter,
    which goes in as a Go string constant."""
    text = _go_text
    return "".join(
        [
            f"{{{{ if not .System }}}}{text(pieces.no_system)}{{{{ end }}}}" if pieces.no_system else "",
            "{{ range $i, $m := .Messages }}{{ $last := eq (len (slice $.Messages $i)) 1 }}",
            f'{{{{ if eq .Role "system" }}}}{text(pieces.before["system"])}{{{{ .Content }}}}{text(pieces.after["system"])}',
            f'{{{{ else if eq .Role "user" }}}}{text(pieces.before["user"])}{{{{ .Content }}}}{text(pieces.after["user"])}',
            f"{{{{ if $last }}}}{text(pieces.generation)}{{{{ end }}}}",
            f'{{{{ else if eq .Role "assistant" }}}}{text(pieces.before["assistant"])}{{{{ .Content }}}}',
            f"{{{{ if not $last }}}}{text(pieces.after['assistant'])}{{{{ end }}}}",
            "{{ end }}{{ end }}",
        ]
    )


def _go_text(text: str) -> str:
    if "{{" in text or '"""' in text:
        return "{{ " + json.dumps(text, ensure_ascii=False) + " }}"
    return text


def modelfile(
    gguf: str, pieces: ChatPieces | None, stops: list[str], system_prompt: str | None, name: str
) -> str:
    """The Modelfile's text: ``FROM``, ``TEMPLATE`` (when derived), ``PARAMETER stop`` lines and
    ``SYSTEM``."""
    lines = [f"# ollama create {name} -f Modelfile", f"FROM ./{gguf}"]
    if pieces is not None:
        lines.append(f'TEMPLATE """{go_template(pieces)}"""')
    lines.extend(f"PARAMETER stop {json.dumps(stop, ensure_ascii=False)}" for stop in stops)
    if system_prompt is not None:
        lines.append(f'SYSTEM """{system_prompt}"""')
    return "\n".join(lines) + "\n"
