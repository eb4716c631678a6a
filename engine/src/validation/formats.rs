//! The six example layouts: recognising one from its keys, checking an example against it,
//! and turning it into chat messages.
//!
//! The rules agree with the trainer's reader (`trainer/brightrun_trainer/data.py`): an example
//! this module accepts is one the trainer can use, in the same normal form. The validator is
//! stricter where a person would want to know (empty messages, alternation, a conversation
//! that does not end with the assistant's reply, unknown keys).

use super::issues::Rep;
use super::tape::{Doc, Node, Text};
use crate::domain::DatasetFormat;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// A normalised message: its content is `pieces[first..first + count]` joined.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Msg {
    pub role: Role,
    pub first: u32,
    pub count: u32,
    pub trainable: bool,
}

/// One example in normal form. The vectors are reused from one example to the next.
pub(crate) struct Conversation<'t> {
    pub msgs: Vec<Msg>,
    pub pieces: Vec<Text<'t>>,
}

impl<'t> Conversation<'t> {
    fn push(&mut self, role: Role, parts: &[Text<'t>], trainable: bool) {
        self.msgs.push(Msg {
            role,
            first: self.pieces.len() as u32,
            count: parts.len() as u32,
            trainable: trainable && role == Role::Assistant,
        });
        self.pieces.extend_from_slice(parts);
    }

    /// Adds a message whose pieces were pushed since `first`.
    fn push_since(&mut self, role: Role, first: usize, trainable: bool) {
        self.msgs.push(Msg {
            role,
            first: first as u32,
            count: (self.pieces.len() - first) as u32,
            trainable: trainable && role == Role::Assistant,
        });
    }

    pub fn content(&self, m: &Msg) -> &[Text<'t>] {
        &self.pieces[m.first as usize..(m.first + m.count) as usize]
    }
}

/// A readable name for messages.
pub(crate) fn label(f: DatasetFormat) -> &'static str {
    match f {
        DatasetFormat::BrightrunV4 => "BrightRun v4",
        DatasetFormat::BrightrunFlat => "BrightRun flat",
        DatasetFormat::OpenaiChat => "OpenAI chat",
        DatasetFormat::Alpaca => "Alpaca",
        DatasetFormat::Sharegpt => "ShareGPT",
        DatasetFormat::PromptCompletion => "prompt/completion",
    }
}

/// The format an example's keys announce, in the trainer's order of precedence.
pub(crate) fn detect(doc: &Doc, root: usize) -> Option<DatasetFormat> {
    let (mut turns, mut messages, mut conversations) = (false, false, false);
    let (mut user_input, mut target, mut instruction, mut output, mut prompt, mut completion) =
        (false, false, false, false, false, false);
    for (k, _) in doc.entries(root) {
        match k {
            "turns" => turns = true,
            "messages" => messages = true,
            "conversations" => conversations = true,
            "current_user_input" => user_input = true,
            "target_response" => target = true,
            "instruction" => instruction = true,
            "output" => output = true,
            "prompt" => prompt = true,
            "completion" => completion = true,
            _ => {}
        }
    }
    if turns {
        Some(DatasetFormat::BrightrunV4)
    } else if messages {
        Some(DatasetFormat::OpenaiChat)
    } else if conversations {
        Some(DatasetFormat::Sharegpt)
    } else if user_input && target {
        Some(DatasetFormat::BrightrunFlat)
    } else if instruction && output {
        Some(DatasetFormat::Alpaca)
    } else if prompt && completion {
        Some(DatasetFormat::PromptCompletion)
    } else {
        None
    }
}

/// Why an object is no example of any format, and what to do about it.
pub(crate) fn unknown_shape(
    doc: &Doc,
    root: usize,
    file: Option<DatasetFormat>,
) -> (String, String) {
    let keys: Vec<&str> = doc.entries(root).map(|(k, _)| k).collect();
    let has = |k: &str| keys.contains(&k);
    let near = if has("instruction") {
        Some((DatasetFormat::Alpaca, "output"))
    } else if has("output") && has("input") {
        Some((DatasetFormat::Alpaca, "instruction"))
    } else if has("prompt") {
        Some((DatasetFormat::PromptCompletion, "completion"))
    } else if has("completion") {
        Some((DatasetFormat::PromptCompletion, "prompt"))
    } else if has("current_user_input") {
        Some((DatasetFormat::BrightrunFlat, "target_response"))
    } else if has("target_response") || has("system_prompt") {
        Some((DatasetFormat::BrightrunFlat, "current_user_input"))
    } else {
        None
    };
    let shown = if keys.is_empty() {
        "an empty object".to_string()
    } else {
        let mut s = keys
            .iter()
            .take(6)
            .map(|k| format!("\"{k}\""))
            .collect::<Vec<_>>()
            .join(", ");
        if keys.len() > 6 {
            s.push_str(", …");
        }
        format!("keys {s}")
    };
    if let Some((f, missing)) = near {
        return (
            format!(
                "the example has {shown} but no \"{missing}\": it looks like {} but is incomplete",
                label(f)
            ),
            format!("add \"{missing}\"; a {} example is {}", label(f), f.shape()),
        );
    }
    let error = format!("the example has {shown}, which match none of the supported formats");
    let suggestion = match file {
        Some(f) => format!("write it like the rest of the file, as {}: {}", label(f), f.shape()),
        None if has("text") => "plain text is not supported: write each example as a conversation, e.g. {\"messages\": [{\"role\": \"user\", …}, {\"role\": \"assistant\", …}]} or {\"prompt\": …, \"completion\": …}".into(),
        None => supported_formats(),
    };
    (error, suggestion)
}

/// A one-line list of the accepted layouts.
pub(crate) fn supported_formats() -> String {
    let list: Vec<String> = DatasetFormat::ALL
        .iter()
        .map(|f| format!("{} {}", label(*f), f.shape()))
        .collect();
    format!("use one of: {}", list.join("; "))
}

/// Checks the example at `root` (an object) as `fmt` and fills `conv` with its messages.
/// It is valid when no error was reported on `rep`.
pub(crate) fn check<'t>(
    doc: &Doc<'t, '_>,
    root: usize,
    fmt: DatasetFormat,
    rep: &mut Rep,
    conv: &mut Conversation<'t>,
) {
    match fmt {
        DatasetFormat::OpenaiChat => check_list_format(doc, root, &OPENAI, rep, conv),
        DatasetFormat::BrightrunV4 => check_list_format(doc, root, &V4, rep, conv),
        DatasetFormat::Sharegpt => check_list_format(doc, root, &SHAREGPT, rep, conv),
        DatasetFormat::BrightrunFlat => check_flat(doc, root, rep, conv),
        DatasetFormat::Alpaca => check_alpaca(doc, root, rep, conv),
        DatasetFormat::PromptCompletion => check_prompt_completion(doc, root, rep, conv),
    }
}

/// How a format that holds a list of messages names things.
struct ListSpec {
    format: DatasetFormat,
    /// The key of the message list.
    list: &'static str,
    /// Other top-level keys it knows (`system` is read as a system prompt when listed).
    top_keys: &'static [&'static str],
    role_key: &'static str,
    content_key: &'static str,
    /// Allowed role names, for messages.
    role_names: &'static str,
    /// `weight` (0 or 1) on assistant messages, content as a list of text parts.
    openai: bool,
}

const OPENAI: ListSpec = ListSpec {
    format: DatasetFormat::OpenaiChat,
    list: "messages",
    top_keys: &[],
    role_key: "role",
    content_key: "content",
    role_names: "system, user or assistant (developer is read as system)",
    openai: true,
};

const V4: ListSpec = ListSpec {
    format: DatasetFormat::BrightrunV4,
    list: "turns",
    top_keys: &["conversation_id"],
    role_key: "role",
    content_key: "content",
    role_names: "system, user or assistant",
    openai: false,
};

const SHAREGPT: ListSpec = ListSpec {
    format: DatasetFormat::Sharegpt,
    list: "conversations",
    top_keys: &["system"],
    role_key: "from",
    content_key: "value",
    role_names: "human, gpt or system",
    openai: false,
};

fn unknown_key(rep: &mut Rep, fmt: DatasetFormat, place: &str, key: &str, known: &str) {
    rep.warn(|| {
        (
            format!("unknown key \"{key}\"{place}; it is ignored"),
            format!(
                "remove it or check its spelling; a {} {} has {known}",
                label(fmt),
                if place.is_empty() {
                    "example"
                } else {
                    "message"
                }
            ),
        )
    });
}

/// What a key of a message means in a list format (matched against constants, which
/// compiles to a few integer comparisons).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Key {
    Role,
    Content,
    Weight,
    Other,
}

#[inline(always)]
fn message_key(format: DatasetFormat, k: &str) -> Key {
    match format {
        DatasetFormat::OpenaiChat => match k {
            "role" => Key::Role,
            "content" => Key::Content,
            "weight" => Key::Weight,
            _ => Key::Other,
        },
        DatasetFormat::Sharegpt => match k {
            "from" => Key::Role,
            "value" => Key::Content,
            _ => Key::Other,
        },
        _ => match k {
            "role" => Key::Role,
            "content" => Key::Content,
            _ => Key::Other,
        },
    }
}

#[inline(always)]
fn role_named(format: DatasetFormat, text: Text) -> Option<Role> {
    let (Text::Raw(s) | Text::Decoded(s)) = text else {
        return None;
    };
    match (format, s) {
        (_, "user") => Some(Role::User),
        (_, "assistant") => Some(Role::Assistant),
        (_, "system") => Some(Role::System),
        (DatasetFormat::OpenaiChat, "developer") => Some(Role::System),
        (DatasetFormat::Sharegpt, "human") => Some(Role::User),
        (DatasetFormat::Sharegpt, "gpt") => Some(Role::Assistant),
        _ => None,
    }
}

fn is_blank(parts: &[Text]) -> bool {
    parts.iter().all(|p| p.is_blank())
}

/// Gives back a vector's allocation with another lifetime parameter (emptied; the in-place
/// `collect` keeps the allocation).
pub(crate) fn recycle<'b>(mut v: Vec<Text<'_>>) -> Vec<Text<'b>> {
    v.clear();
    v.into_iter().map(|_| unreachable!()).collect()
}

fn check_list_format<'t>(
    doc: &Doc<'t, '_>,
    root: usize,
    spec: &ListSpec,
    rep: &mut Rep,
    conv: &mut Conversation<'t>,
) {
    let mut list = None;
    let mut system = None;
    for (k, v) in doc.entries(root) {
        if k == spec.list {
            list = Some(v);
        } else if k == "system" && spec.top_keys.contains(&"system") {
            system = Some(v);
        } else if !spec.top_keys.contains(&k) {
            let known = match spec.format {
                DatasetFormat::BrightrunV4 => "\"conversation_id\" and \"turns\"",
                DatasetFormat::Sharegpt => "\"conversations\" and an optional \"system\"",
                _ => "\"messages\"",
            };
            unknown_key(rep, spec.format, "", k, known);
        }
    }
    if let Some(s) = system {
        match doc.nodes[s] {
            Node::Null => {}
            _ => match doc.text_at(s) {
                Some(text) if !text.is_blank() => conv.push(Role::System, &[text], false),
                Some(_) => {}
                None => rep.error(|| {
                    (
                        format!("\"system\" is {}, not a string", doc.kind(s)),
                        "write the system prompt as a string, or leave \"system\" out".into(),
                    )
                }),
            },
        }
    }
    let Some(list) = list else { return };
    let name = spec.list;
    let Node::Arr { len, .. } = doc.nodes[list] else {
        rep.error(|| {
            (
                format!("\"{name}\" is {}, not an array", doc.kind(list)),
                format!(
                    "a {} example is {}",
                    label(spec.format),
                    spec.format.shape()
                ),
            )
        });
        return;
    };
    if len == 0 {
        rep.error(|| {
            (
                format!("\"{name}\" is an empty list"),
                "add at least a user message and the assistant's reply".into(),
            )
        });
        return;
    }
    let before = rep.errors;
    let offset = conv.msgs.len();
    let mut complete = true;
    for (n, item) in doc.elements(list).enumerate() {
        if !doc.is_obj(item) {
            rep.error(|| {
                (
                    format!("{name}[{n}] is {}, not an object", doc.kind(item)),
                    format!(
                        "write each message as {{\"{}\": …, \"{}\": …}}",
                        spec.role_key, spec.content_key
                    ),
                )
            });
            complete = false;
            continue;
        }
        let (mut role_at, mut content_at, mut weight_at) = (None, None, None);
        for (k, v) in doc.entries(item) {
            let key = message_key(spec.format, k);
            if key == Key::Role {
                role_at = Some(v);
            } else if key == Key::Content {
                content_at = Some(v);
            } else if key == Key::Weight {
                weight_at = Some(v);
            } else {
                let place = format!(" in {name}[{n}]");
                let known = if spec.openai {
                    "\"role\", \"content\" and an optional \"weight\"".to_string()
                } else {
                    format!("\"{}\" and \"{}\"", spec.role_key, spec.content_key)
                };
                unknown_key(rep, spec.format, &place, k, &known);
            }
        }
        let role = role_of(doc, rep, spec, n, role_at);
        let first = conv.pieces.len();
        let content_ok = content_of(doc, rep, spec, n, content_at, &mut conv.pieces);
        let Some(role) = role else {
            conv.pieces.truncate(first);
            complete = false;
            continue;
        };
        let mut trainable = true;
        if let Some(w) = weight_at {
            let value = match doc.nodes[w] {
                Node::Num(x) if x == 0.0 || x == 1.0 => Some(x == 1.0),
                _ => None,
            };
            match (role, value) {
                (Role::Assistant, Some(v)) => trainable = v,
                (Role::Assistant, None) => rep.error(|| {
                    (
                        format!("{name}[{n}].weight is {}; it must be 0 or 1", doc.show(w)),
                        "use 1 to train on this reply and 0 to skip it".into(),
                    )
                }),
                (_, _) => rep.warn(|| {
                    (
                        format!(
                            "{name}[{n}].weight is set on a {} message; only assistant messages are weighted, so it is ignored",
                            role.as_str()
                        ),
                        "remove \"weight\" from this message".into(),
                    )
                }),
            }
        }
        if !content_ok {
            conv.pieces.truncate(first);
            complete = false;
            continue;
        }
        if is_blank(&conv.pieces[first..]) {
            if role == Role::System {
                rep.warn(|| {
                    (
                        format!("{name}[{n}] is an empty system message"),
                        "write the system prompt, or remove the message".into(),
                    )
                });
            } else {
                rep.error(|| {
                    (
                        format!(
                            "{name}[{n}].{} is empty ({} message)",
                            spec.content_key,
                            role.as_str()
                        ),
                        "write the message, or remove the example".into(),
                    )
                });
            }
        }
        conv.push_since(role, first, trainable);
    }
    if complete && rep.errors == before {
        check_order(conv, spec.list, offset, rep);
    }
}

fn role_of(doc: &Doc, rep: &mut Rep, spec: &ListSpec, n: usize, at: Option<usize>) -> Option<Role> {
    let name = spec.list;
    let key = spec.role_key;
    let Some(at) = at else {
        rep.error(|| {
            (
                format!("{name}[{n}] has no \"{key}\""),
                format!("give every message a \"{key}\": {}", spec.role_names),
            )
        });
        return None;
    };
    let Some(text) = doc.text_at(at) else {
        rep.error(|| {
            (
                format!("{name}[{n}].{key} is {}, not a string", doc.kind(at)),
                format!("use {}", spec.role_names),
            )
        });
        return None;
    };
    if let Some(r) = role_named(spec.format, text) {
        return Some(r);
    }
    rep.error(|| {
        let tool = ["tool", "function", "ipython", "observation", "function_call"];
        let suggestion = if tool.iter().any(|t| text.is(t)) {
            "BrightRun trains on system, user and assistant messages only: remove tool calls and tool results, or fold them into the assistant's text".to_string()
        } else {
            format!("use {}", spec.role_names)
        };
        (
            format!("{name}[{n}].{key} is {}, which is not a known role", doc.show(at)),
            suggestion,
        )
    });
    None
}

fn content_of<'t>(
    doc: &Doc<'t, '_>,
    rep: &mut Rep,
    spec: &ListSpec,
    n: usize,
    at: Option<usize>,
    parts: &mut Vec<Text<'t>>,
) -> bool {
    let name = spec.list;
    let key = spec.content_key;
    let Some(at) = at else {
        rep.error(|| {
            (
                format!("{name}[{n}] has no \"{key}\""),
                format!("give every message its text in \"{key}\""),
            )
        });
        return false;
    };
    if let Some(text) = doc.text_at(at) {
        parts.push(text);
        return true;
    }
    if spec.openai
        && let Node::Arr { .. } = doc.nodes[at]
    {
        for (p, part) in doc.elements(at).enumerate() {
            let mut text = None;
            let mut is_text = false;
            for (k, v) in doc.entries(part) {
                match k {
                    "type" => is_text = doc.text_at(v).is_some_and(|t| t.is("text")),
                    "text" => text = doc.text_at(v),
                    _ => {}
                }
            }
            match (is_text, text) {
                (true, Some(t)) => parts.push(t),
                _ => {
                    rep.error(|| {
                        (
                            format!("{name}[{n}].content[{p}] is not a text part"),
                            "only text can be trained on: use {\"type\": \"text\", \"text\": …} parts, or a plain string".into(),
                        )
                    });
                    return false;
                }
            }
        }
        return true;
    }
    rep.error(|| {
        let what = if spec.openai {
            "a string or a list of text parts"
        } else {
            "a string"
        };
        (
            format!("{name}[{n}].{key} is {}, not {what}", doc.kind(at)),
            "write the message's text as a string".into(),
        )
    });
    false
}

/// The conversation rules: an optional leading system message, then user and assistant
/// alternating, starting with the user and ending with the assistant; something to learn.
///
/// `offset` messages (a top-level ShareGPT `system`) come before the list's own.
fn check_order(conv: &Conversation, list: &str, offset: usize, rep: &mut Rep) {
    let msgs = &conv.msgs;
    let at = |i: usize| -> String {
        match i.checked_sub(offset) {
            Some(j) => format!("{list}[{j}]"),
            None => "\"system\"".to_string(),
        }
    };
    if let Some(i) = msgs.iter().skip(1).position(|m| m.role == Role::System) {
        let i = i + 1;
        rep.error(|| {
            (
                format!(
                    "{} is a system message; only the first message may be one",
                    at(i)
                ),
                "move the system prompt to the start, or merge it into the first system message"
                    .into(),
            )
        });
        return;
    }
    let start = usize::from(msgs.first().is_some_and(|m| m.role == Role::System));
    let body = &msgs[start..];
    let Some(first) = body.first() else {
        rep.error(|| {
            (
                "the conversation has only a system message".into(),
                "add a user message and the assistant's reply".into(),
            )
        });
        return;
    };
    if first.role != Role::User {
        rep.error(|| {
            (
                format!("the conversation starts with an assistant message ({}); it must start with a user message", at(start)),
                "add the user message that the reply answers".into(),
            )
        });
        return;
    }
    if let Some(k) = body.windows(2).position(|w| w[0].role == w[1].role) {
        let (i, role) = (start + k, body[k].role);
        let other = if role == Role::User {
            "assistant"
        } else {
            "user"
        };
        rep.error(|| {
            (
                format!("{} and {} are both {} messages; user and assistant must alternate", at(i), at(i + 1), role.as_str()),
                format!("merge the two into one message, or add the missing {other} message between them"),
            )
        });
        return;
    }
    let last = body[body.len() - 1];
    if last.role != Role::Assistant {
        rep.error(|| {
            (
                format!("the conversation ends with a user message ({}); it must end with the assistant's reply", at(msgs.len() - 1)),
                "add the assistant's reply, or remove the last user message".into(),
            )
        });
        return;
    }
    if !body.iter().any(|m| m.trainable) {
        rep.error(|| {
            (
                "every assistant message has weight 0, so there is nothing to learn".into(),
                "set \"weight\": 1 on at least one assistant reply".into(),
            )
        });
    }
}

fn string_field<'t>(
    doc: &Doc<'t, '_>,
    rep: &mut Rep,
    fmt: DatasetFormat,
    key: &str,
    at: Option<usize>,
    required: bool,
) -> Option<Text<'t>> {
    let Some(at) = at else {
        if required {
            rep.error(|| {
                (
                    format!("the example has no \"{key}\""),
                    format!("a {} example is {}", label(fmt), fmt.shape()),
                )
            });
        }
        return None;
    };
    if let Some(s) = doc.text_at(at) {
        return Some(s);
    }
    if !required && matches!(doc.nodes[at], Node::Null) {
        return None;
    }
    rep.error(|| {
        (
            format!("\"{key}\" is {}, not a string", doc.kind(at)),
            format!("write \"{key}\" as a string"),
        )
    });
    None
}

fn empty_error(rep: &mut Rep, key: &str) {
    rep.error(|| {
        (
            format!("\"{key}\" is empty"),
            "write the text, or remove the example".into(),
        )
    });
}

fn check_flat<'t>(doc: &Doc<'t, '_>, root: usize, rep: &mut Rep, conv: &mut Conversation<'t>) {
    let fmt = DatasetFormat::BrightrunFlat;
    let (mut system, mut user, mut target) = (None, None, None);
    for (k, v) in doc.entries(root) {
        match k {
            "system_prompt" => system = Some(v),
            "current_user_input" => user = Some(v),
            "target_response" => target = Some(v),
            _ => unknown_key(
                rep,
                fmt,
                "",
                k,
                "\"system_prompt\", \"current_user_input\" and \"target_response\"",
            ),
        }
    }
    let system = string_field(doc, rep, fmt, "system_prompt", system, false);
    let user = string_field(doc, rep, fmt, "current_user_input", user, true);
    let target = string_field(doc, rep, fmt, "target_response", target, true);
    if let Some(s) = system
        && !s.is_blank()
    {
        conv.push(Role::System, &[s], false);
    }
    if let Some(u) = user {
        if u.is_blank() {
            empty_error(rep, "current_user_input");
        }
        conv.push(Role::User, &[u], false);
    }
    if let Some(t) = target {
        if t.is_blank() {
            empty_error(rep, "target_response");
        }
        conv.push(Role::Assistant, &[t], true);
    }
}

fn check_alpaca<'t>(doc: &Doc<'t, '_>, root: usize, rep: &mut Rep, conv: &mut Conversation<'t>) {
    let fmt = DatasetFormat::Alpaca;
    let (mut instruction, mut input, mut output, mut system) = (None, None, None, None);
    for (k, v) in doc.entries(root) {
        match k {
            "instruction" => instruction = Some(v),
            "input" => input = Some(v),
            "output" => output = Some(v),
            "system" => system = Some(v),
            "history" => rep.warn(|| {
                (
                    "\"history\" (earlier turns) is not used: BrightRun trains on instruction, input and output only".into(),
                    "to train on whole conversations, convert the file to OpenAI chat: {\"messages\": [{\"role\", \"content\"}, …]}".into(),
                )
            }),
            _ => unknown_key(
                rep,
                fmt,
                "",
                k,
                "\"instruction\", \"input\", \"output\" and an optional \"system\"",
            ),
        }
    }
    let instruction = string_field(doc, rep, fmt, "instruction", instruction, true);
    let input = string_field(doc, rep, fmt, "input", input, false);
    let output = string_field(doc, rep, fmt, "output", output, true);
    let system = string_field(doc, rep, fmt, "system", system, false);
    if let Some(s) = system
        && !s.is_blank()
    {
        conv.push(Role::System, &[s], false);
    }
    if let Some(i) = instruction {
        match input {
            Some(x) if !x.is_blank() => {
                conv.push(Role::User, &[i, Text::Decoded("\n\n"), x], false)
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
    if let Some(o) = output {
        if o.is_blank() {
            empty_error(rep, "output");
        }
        conv.push(Role::Assistant, &[o], true);
    }
}

fn check_prompt_completion<'t>(
    doc: &Doc<'t, '_>,
    root: usize,
    rep: &mut Rep,
    conv: &mut Conversation<'t>,
) {
    let fmt = DatasetFormat::PromptCompletion;
    let (mut prompt, mut completion) = (None, None);
    for (k, v) in doc.entries(root) {
        match k {
            "prompt" => prompt = Some(v),
            "completion" => completion = Some(v),
            _ => unknown_key(rep, fmt, "", k, "\"prompt\" and \"completion\""),
        }
    }
    if let Some(p) = string_field(doc, rep, fmt, "prompt", prompt, true) {
        if p.is_blank() {
            empty_error(rep, "prompt");
        }
        conv.push(Role::User, &[p], false);
    }
    if let Some(c) = string_field(doc, rep, fmt, "completion", completion, true) {
        if c.is_blank() {
            empty_error(rep, "completion");
        }
        conv.push(Role::Assistant, &[c], true);
    }
}
