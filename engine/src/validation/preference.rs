//! Preference pairs and KTO examples: their layouts, checked and turned into a prompt and its
//! replies ([`Sides`]), as the trainer's reader normalises them (prompt messages + chosen
//! reply + rejected reply, or prompt + completion + label).
//!
//! Preference (`dpo`, `orpo`, `simpo`), a prompt with a chosen and a rejected reply:
//! - TRL, explicit prompt: `{"prompt", "chosen", "rejected"}`, each a string or (TRL's
//!   conversational layout) a list of messages, the replies assistant messages;
//! - TRL, implicit prompt: `{"chosen": [conversation], "rejected": [conversation]}`, or
//!   `{"chosen_messages", "rejected_messages", "tools"?}`: the prompt is the messages before
//!   the final assistant message(s), which must be the same in both;
//! - OpenAI preference fine-tuning: `{"input": {"messages", "tools"?}, "preferred_output":
//!   [assistant messages], "non_preferred_output": [assistant messages]}`;
//! - LLaMA-Factory, Alpaca: `{"instruction", "input"?, "system"?, "history"?, "chosen",
//!   "rejected"}`, the replies strings;
//! - LLaMA-Factory, ShareGPT (`dpo_en_demo.json`): `{"conversations": [{"from", "value"}],
//!   "system"?, "tools"?, "chosen": {"from": "gpt", "value"}, "rejected": {…}}`.
//!
//! KTO (`kto`), one reply labelled desirable (`true`) or not, with `label` or `kto_tag`:
//! - TRL, unpaired: `{"prompt", "completion", "label"}`, strings or lists of messages;
//! - LLaMA-Factory (`kto_en_demo.json`): `{"messages": [{"role", "content"}], "label"}`, or
//!   ShareGPT's `conversations` with `kto_tag`: the last message is the labelled reply (it
//!   must be the assistant's), the messages before it the prompt.
//!
//! Errors (the example is skipped): a missing side, an empty side, a field of the wrong
//! type, identical chosen and rejected replies, an implicit-prompt pair whose prompts differ
//! (naming the first message that differs), a label that is not a boolean. The
//! conversation rules of the SFT formats apply to the prompt followed by a reply. File-level
//! findings (a KTO file with one label only, a length bias) are in `mod.rs`.

use super::formats::{
    self, Conversation, ListSpec, Mode, Msg, Role, Sides, alpaca_history, check_list_format,
    check_order, empty_error, list_messages, pc_side, string_field, unknown_key,
};
use super::issues::Rep;
use super::tape::{Doc, Node, Text};
use crate::domain::DatasetFormat;

const FMT: DatasetFormat = DatasetFormat::Preference;

/// Checks a preference example (its layout told by its keys) and fills `conv` with the
/// prompt, the chosen reply and the rejected reply, in that order ([`Sides`]).
pub(super) fn check_preference<'t>(
    doc: &Doc<'t, '_>,
    root: usize,
    rep: &mut Rep,
    conv: &mut Conversation<'t>,
) {
    let before = rep.errors;
    let has = |k: &str| doc.get(root, k).is_some();
    if has("preferred_output") || has("non_preferred_output") {
        openai(doc, root, rep, conv);
    } else if has("chosen_messages") || has("rejected_messages") {
        implicit(
            doc,
            root,
            ("chosen_messages", "rejected_messages"),
            rep,
            conv,
        );
    } else if has("conversations") {
        sharegpt(doc, root, rep, conv);
    } else if has("instruction") {
        alpaca(doc, root, rep, conv);
    } else if has("prompt") {
        explicit(doc, root, rep, conv);
    } else {
        implicit(doc, root, ("chosen", "rejected"), rep, conv);
    }
    if rep.errors == before {
        prompt_has_text(rep, conv);
    }
}

/// A prompt needs more than a system message (the trainer's reader skips such a pair).
fn prompt_has_text(rep: &mut Rep, conv: &Conversation) {
    let Some(s) = conv.sides else { return };
    if !conv.msgs[..s.prompt].iter().any(|m| m.role != Role::System) {
        rep.error(|| {
            (
                "the prompt is empty: there is no user message before the reply".into(),
                "add the user message (and any messages before it) that the reply answers".into(),
            )
        });
    }
}

/// Checks a KTO example and fills `conv` with its prompt and its labelled reply.
pub(super) fn check_kto<'t>(
    doc: &Doc<'t, '_>,
    root: usize,
    rep: &mut Rep,
    conv: &mut Conversation<'t>,
) {
    let before = rep.errors;
    let label = label_of(doc, root, rep);
    let has = |k: &str| doc.get(root, k).is_some();
    let prompt = if has("messages") {
        const SPEC: ListSpec = ListSpec {
            format: DatasetFormat::Kto,
            mode: Mode::Labelled,
            top_keys: &[
                "tools",
                "functions",
                "parallel_tool_calls",
                "label",
                "kto_tag",
            ],
            example_keys: "\"messages\", \"label\" (or \"kto_tag\") and optional \"tools\"",
            ..formats::OPENAI
        };
        check_list_format(doc, root, &SPEC, rep, conv);
        conv.msgs.len().saturating_sub(1)
    } else if has("conversations") {
        const SPEC: ListSpec = ListSpec {
            format: DatasetFormat::Kto,
            mode: Mode::Labelled,
            top_keys: &["system", "tools", "label", "kto_tag"],
            example_keys: "\"conversations\", \"kto_tag\" (or \"label\") and optional \"system\" and \"tools\"",
            ..formats::SHAREGPT
        };
        check_list_format(doc, root, &SPEC, rep, conv);
        conv.msgs.len().saturating_sub(1)
    } else if has("prompt") || has("completion") {
        formats::prompt_completion(
            doc,
            root,
            DatasetFormat::Kto,
            &["label", "kto_tag"],
            "\"prompt\", \"completion\" and \"label\"",
            rep,
            conv,
        )
    } else {
        let keys: Vec<String> = doc.entries(root).map(|(k, _)| format!("\"{k}\"")).collect();
        rep.error(|| {
            (
                format!(
                    "the example has a KTO label but no prompt and reply (keys {})",
                    keys.join(", ")
                ),
                format!(
                    "a KTO example is {}, or {{\"messages\": [{{\"role\": …, \"content\": …}}, …], \"label\": true}} whose last message is the labelled reply",
                    DatasetFormat::Kto.shape()
                ),
            )
        });
        return;
    };
    conv.sides = Some(Sides {
        prompt,
        chosen_end: conv.msgs.len(),
        label,
    });
    if rep.errors == before {
        prompt_has_text(rep, conv);
    }
}

/// `label` and `kto_tag`: booleans, and the same when both are given.
fn label_of(doc: &Doc, root: usize, rep: &mut Rep) -> Option<bool> {
    let mut found: Option<bool> = None;
    for key in ["label", "kto_tag"] {
        let Some(v) = doc.get(root, key) else {
            continue;
        };
        match doc.nodes[v] {
            Node::Bool(b) => {
                if found.is_some_and(|f| f != b) {
                    rep.error(|| {
                        (
                            "\"label\" and \"kto_tag\" disagree".into(),
                            "keep one of them: true for a desirable reply, false for an undesirable one".into(),
                        )
                    });
                    return None;
                }
                found = Some(b);
            }
            _ => {
                rep.error(|| {
                    (
                        format!(
                            "\"{key}\" is {} ({}), not true or false",
                            doc.kind(v),
                            doc.show(v)
                        ),
                        format!("write \"{key}\": true for a desirable reply and \"{key}\": false for an undesirable one, without quotes"),
                    )
                });
                return None;
            }
        }
    }
    found
}

/// A side read as TRL's prompt/completion sides are (a string, or a list of messages).
fn side(key: &'static str, reply: bool) -> ListSpec {
    let base = if reply {
        formats::COMPLETION
    } else {
        formats::PROMPT
    };
    ListSpec {
        format: FMT,
        list: key,
        example_keys: "\"prompt\", \"chosen\" and \"rejected\"",
        ..base
    }
}

fn missing(rep: &mut Rep, key: &str, shape: &str) {
    rep.error(|| {
        (
            format!("the example has no \"{key}\""),
            format!("a preference example of this layout is {shape}"),
        )
    });
}

/// Checks the conversation order of `msgs[..end]` (the prompt and the chosen reply).
fn order(conv: &mut Conversation, end: usize, at: &dyn Fn(usize) -> String, rep: &mut Rep) {
    let tail = conv.msgs.split_off(end);
    check_order(conv, at, rep, true);
    conv.msgs.extend(tail);
}

fn text_of(conv: &Conversation, m: &Msg) -> String {
    conv.content(m).iter().map(|p| p.decoded()).collect()
}

fn same_msg(conv: &Conversation, a: &Msg, b: &Msg) -> bool {
    a.role == b.role && a.calls == b.calls && text_of(conv, a) == text_of(conv, b)
}

/// Records where the sides are, and refuses a pair whose two replies are the same.
fn pair(
    rep: &mut Rep,
    conv: &mut Conversation,
    prompt: usize,
    chosen_end: usize,
    (ck, rk): (&str, &str),
) {
    conv.sides = Some(Sides {
        prompt,
        chosen_end,
        label: None,
    });
    let (c, r) = (&conv.msgs[prompt..chosen_end], &conv.msgs[chosen_end..]);
    if c.is_empty() || c.len() != r.len() {
        return;
    }
    if c.iter().zip(r).all(|(a, b)| same_msg(conv, a, b)) {
        rep.error(|| {
            (
                format!("\"{ck}\" and \"{rk}\" are the same reply: the pair teaches nothing"),
                format!("write a worse reply in \"{rk}\" (or a better one in \"{ck}\"), or remove the example"),
            )
        });
    }
}

/// TRL's explicit prompt: `{"prompt", "chosen", "rejected"}`, strings or lists of messages.
fn explicit<'t>(doc: &Doc<'t, '_>, root: usize, rep: &mut Rep, conv: &mut Conversation<'t>) {
    let (mut p, mut c, mut r) = (None, None, None);
    for (k, v) in doc.entries(root) {
        match k {
            "prompt" => p = Some(v),
            "chosen" => c = Some(v),
            "rejected" => r = Some(v),
            _ => unknown_key(rep, FMT, "", k, "\"prompt\", \"chosen\" and \"rejected\""),
        }
    }
    let (Some(p), Some(c), Some(r)) = (p, c, r) else {
        for (key, at) in [("chosen", c), ("rejected", r)] {
            if at.is_none() {
                missing(rep, key, FMT.shape());
            }
        }
        return;
    };
    // TRL's two layouts: all strings (standard) or all lists of messages (conversational).
    let text = doc.text_at(p).is_some();
    if let Some((key, at)) = [("chosen", c), ("rejected", r)]
        .into_iter()
        .find(|&(_, at)| {
            let list = matches!(doc.nodes[at], Node::Arr { .. });
            (text && list) || (!text && doc.text_at(at).is_some())
        })
    {
        let (prompt_is, side_is) = if text {
            ("a string", "strings")
        } else {
            ("a list of messages", "lists of assistant messages")
        };
        rep.error(|| {
            (
                format!("\"prompt\" is {prompt_is} but \"{key}\" is {}: when \"prompt\" is {prompt_is}, \"chosen\" and \"rejected\" are {side_is}", doc.kind(at)),
                format!("write all three as strings, {}, or all as lists of messages, {{\"prompt\": [{{\"role\": \"user\", …}}], \"chosen\": [{{\"role\": \"assistant\", …}}], \"rejected\": [{{\"role\": \"assistant\", …}}]}}", FMT.shape()),
            )
        });
        return;
    }
    let before = rep.errors;
    let prompt_ok = pc_side(doc, p, &side("prompt", false), false, rep, conv);
    let prompt_end = conv.msgs.len();
    let chosen_ok = pc_side(doc, c, &side("chosen", true), true, rep, conv);
    let chosen_end = conv.msgs.len();
    if prompt_ok && chosen_ok && rep.errors == before {
        let at = |i: usize| {
            if i < prompt_end {
                format!("prompt[{i}]")
            } else {
                format!("chosen[{}]", i - prompt_end)
            }
        };
        order(conv, chosen_end, &at, rep);
    }
    pc_side(doc, r, &side("rejected", true), true, rep, conv);
    pair(rep, conv, prompt_end, chosen_end, ("chosen", "rejected"));
}

/// Where the final run of assistant messages (the reply) starts.
fn reply_start(msgs: &[Msg]) -> usize {
    msgs.len()
        - msgs
            .iter()
            .rev()
            .take_while(|m| m.role == Role::Assistant)
            .count()
}

/// TRL's implicit prompt: each side is the whole conversation; the prompt is what they share.
fn implicit<'t>(
    doc: &Doc<'t, '_>,
    root: usize,
    (ck, rk): (&'static str, &'static str),
    rep: &mut Rep,
    conv: &mut Conversation<'t>,
) {
    let known = if ck == "chosen" {
        "\"chosen\" and \"rejected\" (each the whole conversation), and optional \"tools\""
    } else {
        "\"chosen_messages\" and \"rejected_messages\" (each the whole conversation), and optional \"tools\""
    };
    let shape = if ck == "chosen" {
        r#"{"chosen": [{"role": "user", …}, {"role": "assistant", …}], "rejected": [{"role": "user", …}, {"role": "assistant", …}]}"#
    } else {
        r#"{"chosen_messages": [{"role": "user", …}, {"role": "assistant", …}], "rejected_messages": [{"role": "user", …}, {"role": "assistant", …}]}"#
    };
    let (mut c, mut r) = (None, None);
    for (k, v) in doc.entries(root) {
        if k == ck {
            c = Some(v);
        } else if k == rk {
            r = Some(v);
        } else if k == "tools" || k == "functions" {
            formats::tool_defs(doc, k, v, rep, conv);
        } else {
            unknown_key(rep, FMT, "", k, known);
        }
    }
    let (Some(c), Some(r)) = (c, r) else {
        for (key, at) in [(ck, c), (rk, r)] {
            if at.is_none() {
                missing(rep, key, shape);
            }
        }
        return;
    };
    if doc.text_at(c).is_some() && doc.text_at(r).is_some() {
        rep.error(|| {
            (
                format!("\"{ck}\" and \"{rk}\" are text and there is no \"prompt\": the prompt they answer cannot be told apart from the replies"),
                format!("add the prompt: {}, or write both as the whole conversation, {shape}", FMT.shape()),
            )
        });
        return;
    }
    const SPEC: ListSpec = ListSpec {
        format: FMT,
        mode: Mode::Prompt,
        top_keys: &[],
        ..formats::OPENAI
    };
    let (spec_c, spec_r) = (
        ListSpec {
            list: ck,
            example_keys: known,
            ..SPEC
        },
        ListSpec {
            list: rk,
            example_keys: known,
            ..SPEC
        },
    );
    let before = rep.errors;
    let ok_c = list_messages(doc, c, &spec_c, rep, conv);
    let c_end = conv.msgs.len();
    let ok_r = list_messages(doc, r, &spec_r, rep, conv);
    if !(ok_c && ok_r && rep.errors == before) {
        return;
    }
    order(conv, c_end, &|i| format!("{ck}[{i}]"), rep);
    if rep.errors != before {
        return;
    }
    let rejected = &conv.msgs[c_end..];
    if let Some(last) = rejected.last().filter(|m| m.role != Role::Assistant) {
        let (role, n) = (last.role.as_str(), rejected.len() - 1);
        rep.error(|| {
            (
                format!("\"{rk}\" ends with a {role} message ({rk}[{n}]); it must end with the rejected assistant reply"),
                format!("end \"{rk}\" with the assistant's rejected reply, after the same messages as \"{ck}\""),
            )
        });
        return;
    }
    let pc = reply_start(&conv.msgs[..c_end]);
    let pr = reply_start(rejected);
    if pc == 0 {
        rep.error(|| {
            (
                format!(
                    "\"{ck}\" holds only assistant messages: there is no prompt before the reply"
                ),
                format!(
                    "begin both conversations with the user message the replies answer: {shape}"
                ),
            )
        });
        return;
    }
    let n = pc.min(pr);
    let differ = (0..n)
        .find(|&i| !same_msg(conv, &conv.msgs[i], &conv.msgs[c_end + i]))
        .or((pc != pr).then_some(n));
    if let Some(i) = differ {
        let why = if i < n {
            format!("{ck}[{i}] and {rk}[{i}] differ")
        } else {
            format!(
                "the prompt of \"{ck}\" has {pc} messages and that of \"{rk}\" {pr} (the prompt is every message before the final assistant reply)"
            )
        };
        rep.error(|| {
            (
                format!("\"{ck}\" and \"{rk}\" do not share their prompt: they differ at message {i} ({why})"),
                "an implicit-prompt pair holds the same conversation twice, differing only in the final assistant reply: make the messages before it the same, or write the prompt apart, {\"prompt\": [messages], \"chosen\": [reply], \"rejected\": [reply]}".into(),
            )
        });
        return;
    }
    // One prompt: the rejected conversation keeps its reply only.
    conv.msgs.drain(c_end..c_end + pr);
    pair(rep, conv, pc, c_end, (ck, rk));
}

/// OpenAI's preference fine-tuning layout.
fn openai<'t>(doc: &Doc<'t, '_>, root: usize, rep: &mut Rep, conv: &mut Conversation<'t>) {
    const SHAPE: &str = r#"{"input": {"messages": [{"role": "user", "content": …}]}, "preferred_output": [{"role": "assistant", "content": …}], "non_preferred_output": [{"role": "assistant", "content": …}]}"#;
    let (mut input, mut c, mut r) = (None, None, None);
    for (k, v) in doc.entries(root) {
        match k {
            "input" => input = Some(v),
            "preferred_output" => c = Some(v),
            "non_preferred_output" => r = Some(v),
            _ => unknown_key(
                rep,
                FMT,
                "",
                k,
                "\"input\", \"preferred_output\" and \"non_preferred_output\"",
            ),
        }
    }
    let (Some(input), Some(c), Some(r)) = (input, c, r) else {
        for (key, at) in [
            ("input", input),
            ("preferred_output", c),
            ("non_preferred_output", r),
        ] {
            if at.is_none() {
                missing(rep, key, SHAPE);
            }
        }
        return;
    };
    if !doc.is_obj(input) || doc.get(input, "messages").is_none() {
        let what = if doc.is_obj(input) {
            "an object without \"messages\"".to_string()
        } else {
            doc.kind(input).to_string()
        };
        rep.error(|| {
            (
                format!("\"input\" is {what}, not {{\"messages\": [...]}}"),
                format!("write the prompt as \"input\": {{\"messages\": [...], \"tools\": [...]}} (tools optional): {SHAPE}"),
            )
        });
        return;
    }
    const INPUT: ListSpec = ListSpec {
        format: FMT,
        mode: Mode::Prompt,
        example_keys: "\"messages\" and optional \"tools\" (in \"input\")",
        ..formats::OPENAI
    };
    let before = rep.errors;
    let (_, prompt_ok) = check_list_format(doc, input, &INPUT, rep, conv);
    let prompt_end = conv.msgs.len();
    let chosen_ok = pc_side(doc, c, &side("preferred_output", true), true, rep, conv);
    let chosen_end = conv.msgs.len();
    if prompt_ok && chosen_ok && rep.errors == before {
        let at = |i: usize| {
            if i < prompt_end {
                format!("input.messages[{i}]")
            } else {
                format!("preferred_output[{}]", i - prompt_end)
            }
        };
        order(conv, chosen_end, &at, rep);
    }
    pc_side(doc, r, &side("non_preferred_output", true), true, rep, conv);
    pair(
        rep,
        conv,
        prompt_end,
        chosen_end,
        ("preferred_output", "non_preferred_output"),
    );
}

/// LLaMA-Factory's ShareGPT preference layout: the prompt in `conversations`, each reply one
/// `{"from": "gpt", "value"}` turn.
fn sharegpt<'t>(doc: &Doc<'t, '_>, root: usize, rep: &mut Rep, conv: &mut Conversation<'t>) {
    const SPEC: ListSpec = ListSpec {
        format: FMT,
        mode: Mode::Prompt,
        top_keys: &["system", "tools", "chosen", "rejected"],
        example_keys: "\"conversations\", \"chosen\" and \"rejected\", and optional \"system\" and \"tools\"",
        ..formats::SHAREGPT
    };
    const SHAPE: &str = r#"{"conversations": [{"from": "human", "value": …}], "chosen": {"from": "gpt", "value": …}, "rejected": {"from": "gpt", "value": …}}"#;
    let before = rep.errors;
    let (offset, prompt_ok) = check_list_format(doc, root, &SPEC, rep, conv);
    let prompt_end = conv.msgs.len();
    let (Some(c), Some(r)) = (doc.get(root, "chosen"), doc.get(root, "rejected")) else {
        for key in ["chosen", "rejected"] {
            if doc.get(root, key).is_none() {
                missing(rep, key, SHAPE);
            }
        }
        return;
    };
    let chosen_ok = turn(doc, c, "chosen", rep, conv);
    let chosen_end = conv.msgs.len();
    if prompt_ok && chosen_ok && rep.errors == before {
        let at = |i: usize| {
            if i < offset {
                "\"system\"".to_string()
            } else if i < prompt_end {
                format!("conversations[{}]", i - offset)
            } else {
                "\"chosen\"".to_string()
            }
        };
        order(conv, chosen_end, &at, rep);
    }
    turn(doc, r, "rejected", rep, conv);
    pair(rep, conv, prompt_end, chosen_end, ("chosen", "rejected"));
}

/// One ShareGPT reply turn, `{"from": "gpt", "value": …}`.
fn turn<'t>(
    doc: &Doc<'t, '_>,
    at: usize,
    key: &str,
    rep: &mut Rep,
    conv: &mut Conversation<'t>,
) -> bool {
    if !doc.is_obj(at) {
        rep.error(|| {
            (
                format!(
                    "\"{key}\" is {}, not a turn {{\"from\": \"gpt\", \"value\": …}}",
                    doc.kind(at)
                ),
                format!("write the reply as \"{key}\": {{\"from\": \"gpt\", \"value\": \"…\"}}"),
            )
        });
        return false;
    }
    let (mut from, mut value) = (None, None);
    for (k, v) in doc.entries(at) {
        match k {
            "from" => from = Some(v),
            "value" => value = Some(v),
            _ => unknown_key(rep, FMT, &format!(" in {key}"), k, "\"from\" and \"value\""),
        }
    }
    let assistant = from
        .and_then(|f| doc.text_at(f))
        .is_some_and(|f| f.is("gpt") || f.is("assistant"));
    if !assistant {
        let shown = from.map_or("missing".to_string(), |f| doc.show(f));
        rep.error(|| {
            (
                format!("\"{key}\".from is {shown}; a reply is the assistant's turn"),
                format!("write \"{key}\": {{\"from\": \"gpt\", \"value\": \"…\"}}"),
            )
        });
        return false;
    }
    let Some(text) = value.and_then(|v| doc.text_at(v)) else {
        let what = value.map_or("missing", |v| doc.kind(v));
        rep.error(|| {
            (
                format!("\"{key}\".value is {what}, not a string"),
                "write the reply's text as a string".into(),
            )
        });
        return false;
    };
    if text.is_blank() {
        rep.error(|| {
            (
                format!("\"{key}\".value is empty"),
                "write the reply, or remove the example".into(),
            )
        });
    }
    conv.push(Role::Assistant, &[text], true);
    true
}

/// LLaMA-Factory's Alpaca preference layout: the prompt as Alpaca's, the replies strings.
fn alpaca<'t>(doc: &Doc<'t, '_>, root: usize, rep: &mut Rep, conv: &mut Conversation<'t>) {
    let (mut instruction, mut input, mut system, mut history) = (None, None, None, None);
    let (mut chosen, mut rejected) = (None, None);
    for (k, v) in doc.entries(root) {
        match k {
            "instruction" => instruction = Some(v),
            "input" => input = Some(v),
            "system" => system = Some(v),
            "history" => history = Some(v),
            "chosen" => chosen = Some(v),
            "rejected" => rejected = Some(v),
            _ => unknown_key(
                rep,
                FMT,
                "",
                k,
                "\"instruction\", \"chosen\", \"rejected\" and optional \"input\", \"system\" and \"history\"",
            ),
        }
    }
    let instruction = string_field(doc, rep, FMT, "instruction", instruction, true);
    let input = string_field(doc, rep, FMT, "input", input, false);
    let system = string_field(doc, rep, FMT, "system", system, false);
    let chosen = string_field(doc, rep, FMT, "chosen", chosen, true);
    let rejected = string_field(doc, rep, FMT, "rejected", rejected, true);
    if let Some(s) = system
        && !s.is_blank()
    {
        conv.push(Role::System, &[s], false);
    }
    if let Some(h) = history {
        alpaca_history(doc, h, rep, conv);
    }
    if let Some(i) = instruction {
        match input {
            Some(x) if !x.is_blank() => {
                // Joined as LLaMA-Factory (and the trainer's reader) join them.
                conv.push(Role::User, &[i, Text::Decoded("\n"), x], false)
            }
            _ => {
                if i.is_blank() {
                    rep.error(|| {
                        (
                            "\"instruction\" is empty and there is no \"input\"".into(),
                            "write the instruction, or remove the example".into(),
                        )
                    });
                }
                conv.push(Role::User, &[i], false)
            }
        }
    }
    let prompt_end = conv.msgs.len();
    let mut chosen_end = prompt_end;
    for (key, reply) in [("chosen", chosen), ("rejected", rejected)] {
        if let Some(t) = reply {
            if t.is_blank() {
                empty_error(rep, key);
            }
            conv.push(Role::Assistant, &[t], true);
        }
        if key == "chosen" {
            chosen_end = conv.msgs.len();
        }
    }
    pair(rep, conv, prompt_end, chosen_end, ("chosen", "rejected"));
}
