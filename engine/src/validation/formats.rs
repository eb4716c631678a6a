//! The example layouts: recognising one from its keys, checking an example against it, and
//! turning it into chat messages. Tool calls (OpenAI `tools`/`tool_calls`/`tool` messages,
//! the older `functions`/`function_call`/`function` role, ShareGPT's `function_call` and
//! `observation` turns with a `tools` field) are part of the OpenAI chat and ShareGPT
//! formats; plain text is a format of its own. Preference pairs and KTO examples are formats
//! of their own, checked in `preference.rs`. Data BrightRun does not train on (media,
//! process-reward steps) is recognised and refused ([`refusal`]).
//!
//! The rules agree with the trainer's reader (`trainer/brightrun_trainer/data.py`): an example
//! this module accepts is one the trainer can use, in the same normal form. The validator is
//! stricter where a person would want to know (empty messages, alternation, unknown keys).
//! Two departures both sides train, the validator with a warning: no user message before
//! the first reply (trained as written) and a last user message (dropped by both).
//!
//! Peers' layouts read here: TRL's conversational prompt/completion (lists of messages),
//! LLaMA-Factory's v1 `loss_weight` per message and Alpaca `history`; TRL's stepwise
//! supervision and LLaMA-Factory's `reasoning`/`tool_call` parts are refused with one
//! file-level finding.

use super::issues::{Refusal, Rep, group_key};
use super::tape::{Doc, Node, Text};
use crate::domain::DatasetFormat;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    System,
    User,
    Assistant,
    /// A tool's (or function's) result, answering an earlier call.
    Tool,
    /// The whole of a plain-text example, trained on every token.
    Text,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
            Role::Text => "text",
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
    /// How many tool calls an assistant message makes (its content then shows them).
    pub calls: u32,
}

/// One example in normal form. The vectors are reused from one example to the next.
pub(crate) struct Conversation<'t> {
    pub msgs: Vec<Msg>,
    pub pieces: Vec<Text<'t>>,
    /// Bytes of text the model also reads besides the messages (tool definitions), for the
    /// token count.
    pub extra_bytes: u64,
    /// For a preference or KTO example, where its prompt ends and its replies are.
    pub sides: Option<Sides>,
}

/// The parts of a preference or KTO example in [`Conversation::msgs`]: the prompt is
/// `msgs[..prompt]`; a preference pair's chosen reply `msgs[prompt..chosen_end]` and its
/// rejected reply `msgs[chosen_end..]`; a KTO example's reply `msgs[prompt..]` (then
/// `chosen_end` is the end) and its `label` (true: desirable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sides {
    pub prompt: usize,
    pub chosen_end: usize,
    pub label: Option<bool>,
}

impl<'t> Conversation<'t> {
    pub(super) fn push(&mut self, role: Role, parts: &[Text<'t>], trainable: bool) {
        self.msgs.push(Msg {
            role,
            first: self.pieces.len() as u32,
            count: parts.len() as u32,
            trainable: trainable && matches!(role, Role::Assistant | Role::Text),
            calls: 0,
        });
        self.pieces.extend_from_slice(parts);
    }

    /// Adds a message whose pieces were pushed since `first`.
    pub(super) fn push_since(&mut self, role: Role, first: usize, trainable: bool) {
        self.msgs.push(Msg {
            role,
            first: first as u32,
            count: (self.pieces.len() - first) as u32,
            trainable: trainable && role == Role::Assistant,
            calls: 0,
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
        DatasetFormat::Text => "plain text",
        DatasetFormat::Preference => "preference",
        DatasetFormat::Kto => "KTO",
    }
}

/// "a" or "an" before a format's label ("an OpenAI chat example", "an Alpaca example").
pub(crate) fn a_label(f: DatasetFormat) -> String {
    let l = label(f);
    let article = if l.starts_with(['A', 'E', 'I', 'O', 'U', 'a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {l}")
}

/// The format an example's keys announce, in the trainer's order of precedence: preference
/// pairs (any of `chosen`, `rejected`, `chosen_messages`, `rejected_messages`,
/// `preferred_output`, `non_preferred_output`) and KTO labels (`kto_tag`, or a boolean
/// `label`) first, since their other keys (`prompt`, `messages`, `conversations`, …) would
/// read as a supervised format.
pub(crate) fn detect(doc: &Doc, root: usize) -> Option<DatasetFormat> {
    let (mut turns, mut messages, mut conversations, mut text) = (false, false, false, false);
    let (mut user_input, mut target, mut instruction, mut output, mut prompt, mut completion) =
        (false, false, false, false, false, false);
    let (mut pair, mut kto) = (false, false);
    for (k, v) in doc.entries(root) {
        match k {
            "chosen"
            | "rejected"
            | "chosen_messages"
            | "rejected_messages"
            | "preferred_output"
            | "non_preferred_output" => pair = true,
            "kto_tag" => kto = true,
            "label" => kto |= matches!(doc.nodes[v], Node::Bool(_)),
            "turns" => turns = true,
            "messages" => messages = true,
            "conversations" => conversations = true,
            "current_user_input" => user_input = true,
            "target_response" => target = true,
            "instruction" => instruction = true,
            "output" => output = true,
            "prompt" => prompt = true,
            "completion" => completion = true,
            "text" => text = true,
            _ => {}
        }
    }
    if pair {
        Some(DatasetFormat::Preference)
    } else if kto {
        Some(DatasetFormat::Kto)
    } else if turns {
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
    } else if text {
        Some(DatasetFormat::Text)
    } else {
        None
    }
}

/// Data for another kind of training, recognised from the example's top-level keys: media
/// and process-reward data. Looked at before [`detect`], so that such a file is refused as a
/// whole with the right reason instead of being trained on what happens to fit a format.
/// (Preference pairs and KTO labels are formats of their own, [`detect`]ed and checked.)
pub(crate) fn refusal(doc: &Doc, root: usize) -> Option<(Refusal, DatasetFormat)> {
    let mut media = None;
    let (mut steps, mut step_labels) = (false, false);
    for (k, v) in doc.entries(root) {
        match k {
            "completions" => steps = matches!(doc.nodes[v], Node::Arr { .. }),
            "labels" => step_labels = matches!(doc.nodes[v], Node::Arr { .. }),
            "images" | "videos" | "audios" | "image" | "audio" | "video" => {
                let present = match doc.nodes[v] {
                    Node::Null => false,
                    Node::Arr { len, .. } => len > 0,
                    Node::Str(s) => !s.is_empty(),
                    _ => true,
                };
                if present && media.is_none() {
                    media = Some(match k {
                        "images" | "image" => "an \"images\" key",
                        "videos" | "video" => "a \"videos\" key",
                        _ => "an \"audios\" key",
                    });
                }
            }
            _ => {}
        }
    }
    if steps && step_labels {
        return Some((Refusal::ProcessReward, DatasetFormat::PromptCompletion));
    }
    let media = media?;
    let fmt = detect(doc, root).unwrap_or(DatasetFormat::Sharegpt);
    Some((Refusal::Multimodal(media), fmt))
}

/// Whether a text holds a LLaMA-Factory media placeholder (`<image>`, `<video>`, `<audio>`):
/// the media it stands for would be dropped and the model would learn the bare tag.
pub(crate) fn media_tag(text: &Text) -> Option<&'static str> {
    let raw = match *text {
        Text::Raw(s) | Text::Esc { raw: s, .. } | Text::Decoded(s) => s.as_bytes(),
    };
    for at in memchr::memchr_iter(b'<', raw) {
        let rest = &raw[at + 1..];
        for tag in ["image>", "video>", "audio>"] {
            if rest.starts_with(tag.as_bytes()) {
                return Some(match tag {
                    "image>" => "an <image> tag",
                    "video>" => "a <video> tag",
                    _ => "an <audio> tag",
                });
            }
        }
    }
    None
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
            format!("add \"{missing}\"; {} example is {}", a_label(f), f.shape()),
        );
    }
    let error = format!("the example has {shown}, which match none of the supported formats");
    let suggestion = match file {
        Some(f) => format!(
            "write it like the rest of the file, as {}: {}",
            label(f),
            f.shape()
        ),
        None => supported_formats(),
    };
    (error, suggestion)
}

/// A one-line list of the accepted layouts.
pub(crate) fn supported_formats() -> String {
    let list: Vec<String> = DatasetFormat::TRAINABLE
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
        DatasetFormat::OpenaiChat => {
            check_list_format(doc, root, &OPENAI, rep, conv);
        }
        DatasetFormat::BrightrunV4 => {
            check_list_format(doc, root, &V4, rep, conv);
        }
        DatasetFormat::Sharegpt => {
            check_list_format(doc, root, &SHAREGPT, rep, conv);
        }
        DatasetFormat::BrightrunFlat => check_flat(doc, root, rep, conv),
        DatasetFormat::Alpaca => check_alpaca(doc, root, rep, conv),
        DatasetFormat::PromptCompletion => check_prompt_completion(doc, root, rep, conv),
        DatasetFormat::Text => check_text(doc, root, rep, conv),
        DatasetFormat::Preference => super::preference::check_preference(doc, root, rep, conv),
        DatasetFormat::Kto => super::preference::check_kto(doc, root, rep, conv),
    }
}

/// What a list of messages is: a whole conversation (SFT), the prompt of a preference
/// pair (its replies are elsewhere, so it is not checked for a final reply here), or a KTO
/// conversation (its last message is the labelled reply, so it must be the assistant's).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Whole,
    Prompt,
    Labelled,
}

/// How a format that holds a list of messages names things.
pub(super) struct ListSpec {
    /// The file's format, for the wording of findings.
    pub format: DatasetFormat,
    /// The format whose rules read the messages (roles, message keys): the same as
    /// `format`, except in preference and KTO files, whose messages follow OpenAI's,
    /// ShareGPT's or TRL's rules.
    pub dialect: DatasetFormat,
    pub mode: Mode,
    /// The key of the message list.
    pub list: &'static str,
    /// Other top-level keys it knows (`system` is read as a system prompt when listed,
    /// `tools`/`functions` as tool definitions).
    pub top_keys: &'static [&'static str],
    pub role_key: &'static str,
    pub content_key: &'static str,
    /// Allowed role names, for messages.
    pub role_names: &'static str,
    /// The known keys of a message, for the unknown-key warning.
    pub message_keys: &'static str,
    /// The known keys of an example, for the unknown-key warning.
    pub example_keys: &'static str,
}

pub(super) const OPENAI: ListSpec = ListSpec {
    format: DatasetFormat::OpenaiChat,
    dialect: DatasetFormat::OpenaiChat,
    mode: Mode::Whole,
    list: "messages",
    top_keys: &["tools", "functions", "parallel_tool_calls"],
    role_key: "role",
    content_key: "content",
    role_names: "system, user, assistant or tool (developer is read as system, function as tool)",
    message_keys: "\"role\", \"content\", an optional \"weight\", and for tool calls \"tool_calls\", \"tool_call_id\", \"name\" or \"function_call\"",
    example_keys: "\"messages\" and optional \"tools\" or \"functions\"",
};

const V4: ListSpec = ListSpec {
    format: DatasetFormat::BrightrunV4,
    dialect: DatasetFormat::BrightrunV4,
    mode: Mode::Whole,
    list: "turns",
    top_keys: &["conversation_id"],
    role_key: "role",
    content_key: "content",
    role_names: "system, user or assistant",
    message_keys: "\"role\" and \"content\"",
    example_keys: "\"conversation_id\" and \"turns\"",
};

pub(super) const SHAREGPT: ListSpec = ListSpec {
    format: DatasetFormat::Sharegpt,
    dialect: DatasetFormat::Sharegpt,
    mode: Mode::Whole,
    list: "conversations",
    top_keys: &["system", "tools"],
    role_key: "from",
    content_key: "value",
    role_names: "human, gpt, system, function_call or observation",
    message_keys: "\"from\" and \"value\"",
    example_keys: "\"conversations\" and optional \"system\" and \"tools\"",
};

pub(super) fn unknown_key(rep: &mut Rep, fmt: DatasetFormat, place: &str, key: &str, known: &str) {
    let kind = if place.is_empty() {
        "unknown example key"
    } else {
        "unknown message key"
    };
    rep.warn(group_key(kind, key), || {
        (
            format!("unknown key \"{key}\"{place}; it is ignored"),
            format!(
                "remove it or check its spelling; {} {} has {known}",
                a_label(fmt),
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
    ToolCalls,
    ToolCallId,
    Name,
    FunctionCall,
    /// LLaMA-Factory's per-message `loss_weight`.
    LossWeight,
    Other,
}

#[inline(always)]
fn message_key(format: DatasetFormat, k: &str) -> Key {
    match format {
        DatasetFormat::OpenaiChat => match k {
            "role" => Key::Role,
            "content" => Key::Content,
            "weight" => Key::Weight,
            "tool_calls" => Key::ToolCalls,
            "tool_call_id" => Key::ToolCallId,
            "name" => Key::Name,
            "function_call" => Key::FunctionCall,
            "loss_weight" => Key::LossWeight,
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

/// A role as written, before it is mapped: ShareGPT's `function_call` turn is an assistant
/// message that is one tool call.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Named {
    Role(Role),
    /// ShareGPT `function_call`: the value is the call, as JSON.
    CallTurn,
}

#[inline(always)]
fn role_named(format: DatasetFormat, text: Text) -> Option<Named> {
    let (Text::Raw(s) | Text::Decoded(s)) = text else {
        return None;
    };
    let role = match (format, s) {
        (_, "user") => Role::User,
        (_, "assistant") => Role::Assistant,
        (_, "system") => Role::System,
        (DatasetFormat::OpenaiChat, "developer") => Role::System,
        (DatasetFormat::OpenaiChat, "tool" | "function") => Role::Tool,
        (DatasetFormat::Sharegpt, "human") => Role::User,
        (DatasetFormat::Sharegpt, "gpt") => Role::Assistant,
        (DatasetFormat::Sharegpt, "observation") => Role::Tool,
        (DatasetFormat::Sharegpt, "function_call") => return Some(Named::CallTurn),
        _ => return None,
    };
    Some(Named::Role(role))
}

pub(super) fn is_blank(parts: &[Text]) -> bool {
    parts.iter().all(|p| p.is_blank())
}

/// Gives back a vector's allocation with another lifetime parameter (emptied; the in-place
/// `collect` keeps the allocation).
pub(crate) fn recycle<'b>(mut v: Vec<Text<'_>>) -> Vec<Text<'b>> {
    v.clear();
    v.into_iter().map(|_| unreachable!()).collect()
}

/// Parses a JSON text held in a string (tool-call arguments, ShareGPT's `tools` and
/// `function_call` values) into its own small tape and runs `f` on it; `Err` is the
/// parser's reason. These texts are small, so a fresh tape each time costs little.
fn with_parsed<R>(text: &Text, f: impl FnOnce(&Doc<'_, '_>) -> R) -> Result<R, String> {
    let decoded = text.decoded();
    let mut nodes = Vec::new();
    let mut arena = String::new();
    match super::tape::parse(decoded.as_bytes(), &mut nodes, &mut arena) {
        Ok(()) => Ok(f(&Doc {
            nodes: &nodes,
            arena: &arena,
        })),
        Err(e) => Err(match e.kind {
            super::tape::ErrorKind::Eof(m) | super::tape::ErrorKind::Syntax(m) => m.to_string(),
            super::tape::ErrorKind::Utf8(_) => "not UTF-8".to_string(),
        }),
    }
}

/// Checks a list of tool definitions at `at` (OpenAI `tools`, `{"type": "function",
/// "function": {…}}`, or bare `{"name", "description", "parameters"}` as in `functions` and
/// ShareGPT's `tools`): each names its function and its parameters are a JSON schema object.
/// Returns the first problem, and counts the definitions' text bytes.
fn check_tool_defs(doc: &Doc, at: usize, bytes: &mut u64) -> Result<(), String> {
    let Node::Arr { .. } = doc.nodes[at] else {
        return Err(format!(
            "is {}, not a list of tool definitions",
            doc.kind(at)
        ));
    };
    for (i, def) in doc.elements(at).enumerate() {
        if !doc.is_obj(def) {
            return Err(format!("[{i}] is {}, not an object", doc.kind(def)));
        }
        let f = match doc.get(def, "function") {
            Some(f) if doc.is_obj(f) => f,
            Some(f) => return Err(format!("[{i}].function is {}, not an object", doc.kind(f))),
            None => def,
        };
        match doc.get(f, "name").and_then(|n| doc.text_at(n)) {
            Some(n) if !n.is_blank() => {}
            _ => return Err(format!("[{i}] has no function \"name\" (a string)")),
        }
        if let Some(p) = doc.get(f, "parameters") {
            check_schema(doc, p).map_err(|e| format!("[{i}].parameters {e}"))?;
        }
        *bytes += text_bytes(doc, def);
    }
    Ok(())
}

/// The JSON-schema shape a function's parameters must have: an object schema (`type`
/// "object" when given), `properties` an object of schema objects, `required` a list of
/// strings naming properties.
fn check_schema(doc: &Doc, p: usize) -> Result<(), String> {
    if matches!(doc.nodes[p], Node::Null) {
        return Ok(());
    }
    if !doc.is_obj(p) {
        return Err(format!("is {}, not a JSON schema object", doc.kind(p)));
    }
    if let Some(t) = doc.get(p, "type")
        && !doc.text_at(t).is_some_and(|t| t.is("object"))
    {
        return Err(format!(
            "has \"type\" {}; a function's parameters are \"object\"",
            doc.show(t)
        ));
    }
    let props = doc.get(p, "properties");
    if let Some(props) = props {
        if !doc.is_obj(props) {
            return Err(format!(
                "\"properties\" is {}, not an object",
                doc.kind(props)
            ));
        }
        for (k, v) in doc.entries(props) {
            if !doc.is_obj(v) {
                return Err(format!(
                    "\"properties\".\"{k}\" is {}, not a schema object",
                    doc.kind(v)
                ));
            }
        }
    }
    if let Some(r) = doc.get(p, "required") {
        let Node::Arr { .. } = doc.nodes[r] else {
            return Err(format!(
                "\"required\" is {}, not a list of names",
                doc.kind(r)
            ));
        };
        for n in doc.elements(r) {
            let Some(name) = doc.str_at(n) else {
                return Err("\"required\" holds something other than a property name".into());
            };
            if let Some(props) = props
                && doc.get(props, name).is_none()
            {
                return Err(format!(
                    "\"required\" names \"{name}\", which is not in \"properties\""
                ));
            }
        }
    }
    Ok(())
}

/// Bytes of the strings in a subtree (keys and values), for the token count.
fn text_bytes(doc: &Doc, at: usize) -> u64 {
    let end = doc.skip(at);
    (at..end)
        .map(|i| doc.text_at(i).map_or(1, |t| t.len() as u64 + 2))
        .sum()
}

/// The calls an assistant message has made that no tool message has answered yet.
#[derive(Default)]
struct Pending<'t> {
    ids: Vec<Text<'t>>,
    /// Calls without an id (the legacy `function_call`, ShareGPT), answered in order.
    anonymous: u32,
}

fn same_text(a: &Text, b: &Text) -> bool {
    a.decoded() == b.decoded()
}

/// Checks one OpenAI tool call (`{"id", "type": "function", "function": {"name",
/// "arguments"}}`) or a legacy `function_call` (`{"name", "arguments"}`), and adds it to the
/// message's content as `name(arguments)`.
fn tool_call<'t>(
    doc: &Doc<'t, '_>,
    at: usize,
    legacy: bool,
    pieces: &mut Vec<Text<'t>>,
    pending: &mut Pending<'t>,
) -> Result<(), String> {
    if !doc.is_obj(at) {
        return Err(format!("is {}, not an object", doc.kind(at)));
    }
    let f = if legacy {
        at
    } else {
        match doc.get(at, "function") {
            Some(f) if doc.is_obj(f) => f,
            Some(f) => return Err(format!(".function is {}, not an object", doc.kind(f))),
            None => return Err("has no \"function\": {\"name\": …, \"arguments\": …}".into()),
        }
    };
    // The call is registered even when it is broken, so that its result is not blamed too.
    match doc.get(at, "id").and_then(|i| doc.text_at(i)) {
        Some(id) if !legacy => pending.ids.push(id),
        _ => pending.anonymous += 1,
    }
    let name = match doc.get(f, "name").and_then(|n| doc.text_at(n)) {
        Some(n) if !n.is_blank() => n,
        _ => return Err("has no function \"name\" (a string)".into()),
    };
    let args = match doc.get(f, "arguments") {
        None => None,
        Some(a) => match doc.nodes[a] {
            Node::Obj { .. } => Some(Text::Decoded("{…}")),
            _ => match doc.text_at(a) {
                Some(t) => {
                    let is_obj = with_parsed(&t, |d| d.is_obj(0)).map_err(|e| {
                        format!(".arguments is not valid JSON ({e}): {}", doc.show(a))
                    })?;
                    if !is_obj {
                        return Err(".arguments must be a JSON object (as a string)".into());
                    }
                    Some(t)
                }
                None => {
                    return Err(format!(
                        ".arguments is {}, not a JSON object in a string",
                        doc.kind(a)
                    ));
                }
            },
        },
    };
    if !pieces.is_empty() {
        pieces.push(Text::Decoded("\n"));
    }
    pieces.push(name);
    pieces.push(Text::Decoded("("));
    if let Some(a) = args {
        pieces.push(a);
    }
    pieces.push(Text::Decoded(")"));
    Ok(())
}

/// ShareGPT's `function_call` turn: its value is `{"name": …, "arguments": …}` as JSON text.
fn sharegpt_call<'t>(
    value: Text<'t>,
    pieces: &mut Vec<Text<'t>>,
    pending: &mut Pending<'t>,
) -> Result<(), String> {
    let problem = with_parsed(&value, |d| {
        let calls: Vec<usize> = match d.nodes[0] {
            Node::Arr { .. } => d.elements(0).collect(),
            _ => vec![0],
        };
        for c in calls {
            if !d.is_obj(c) {
                return Some(format!("holds {}, not a call object", d.kind(c)));
            }
            if d.get(c, "name")
                .and_then(|n| d.text_at(n))
                .is_none_or(|n| n.is_blank())
            {
                return Some("has no function \"name\"".to_string());
            }
            match d.get(c, "arguments") {
                None => {}
                Some(a) if d.is_obj(a) => {}
                Some(a) => match d.text_at(a).map(|t| with_parsed(&t, |x| x.is_obj(0))) {
                    Some(Ok(true)) => {}
                    _ => return Some("has \"arguments\" that are not a JSON object".to_string()),
                },
            }
        }
        None
    })
    .map_err(|e| format!("is not valid JSON ({e})"))?;
    if let Some(p) = problem {
        return Err(p);
    }
    pending.anonymous += 1;
    pieces.push(value);
    Ok(())
}

/// Checks a format that holds a list of messages (and, per `spec.mode`, the conversation's
/// order). Returns how many messages came before the list's (a `system` key), and whether
/// the list was read whole without errors.
pub(super) fn check_list_format<'t>(
    doc: &Doc<'t, '_>,
    root: usize,
    spec: &ListSpec,
    rep: &mut Rep,
    conv: &mut Conversation<'t>,
) -> (usize, bool) {
    let mut list = None;
    let mut system = None;
    for (k, v) in doc.entries(root) {
        if k == spec.list {
            list = Some(v);
        } else if k == "system" && spec.top_keys.contains(&"system") {
            system = Some(v);
        } else if (k == "tools" || k == "functions") && spec.top_keys.contains(&k) {
            tool_defs(doc, k, v, rep, conv);
        } else if !spec.top_keys.contains(&k) {
            unknown_key(rep, spec.format, "", k, spec.example_keys);
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
    let offset = conv.msgs.len();
    let Some(list) = list else {
        return (offset, false);
    };
    let before = rep.errors;
    let complete = list_messages(doc, list, spec, rep, conv);
    let ok = complete && rep.errors == before;
    if ok && spec.mode != Mode::Prompt {
        let name = spec.list;
        let at = |i: usize| -> String {
            match i.checked_sub(offset) {
                Some(j) => format!("{name}[{j}]"),
                None => "\"system\"".to_string(),
            }
        };
        check_order(conv, &at, rep, spec.mode == Mode::Labelled);
    }
    (offset, ok)
}

/// Reads the list of messages at `list` into `conv`; returns whether every message was read
/// (its errors, if any, are on `rep`).
pub(super) fn list_messages<'t>(
    doc: &Doc<'t, '_>,
    list: usize,
    spec: &ListSpec,
    rep: &mut Rep,
    conv: &mut Conversation<'t>,
) -> bool {
    let name = spec.list;
    let Node::Arr { len, .. } = doc.nodes[list] else {
        rep.error(|| {
            (
                format!("\"{name}\" is {}, not an array", doc.kind(list)),
                format!(
                    "{} example is {}",
                    a_label(spec.format),
                    spec.format.shape()
                ),
            )
        });
        return false;
    };
    if len == 0 {
        rep.error(|| {
            (
                format!("\"{name}\" is an empty list"),
                "add at least a user message and the assistant's reply".into(),
            )
        });
        return false;
    }
    let openai = spec.dialect == DatasetFormat::OpenaiChat;
    let mut complete = true;
    let mut pending = Pending::default();
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
        let (mut role_at, mut content_at, mut weight_at, mut loss_weight_at) =
            (None, None, None, None);
        let (mut calls_at, mut call_id_at, mut function_call_at) = (None, None, None);
        for (k, v) in doc.entries(item) {
            match message_key(spec.dialect, k) {
                Key::Role => role_at = Some(v),
                Key::Content => content_at = Some(v),
                Key::Weight => weight_at = Some(v),
                Key::LossWeight => loss_weight_at = Some(v),
                Key::ToolCalls => calls_at = Some(v),
                Key::ToolCallId => call_id_at = Some(v),
                Key::FunctionCall => function_call_at = Some(v),
                Key::Name => {}
                Key::Other => {
                    let place = format!(" in {name}[{n}]");
                    unknown_key(rep, spec.format, &place, k, spec.message_keys);
                }
            }
        }
        let named = role_of(doc, rep, spec, n, role_at);
        let first = conv.pieces.len();
        let Some(named) = named else {
            complete = false;
            continue;
        };
        let role = match named {
            Named::Role(r) => r,
            Named::CallTurn => Role::Assistant,
        };
        // Tool calls of an assistant message (OpenAI `tool_calls`, legacy `function_call`).
        let mut calls = 0u32;
        let mut call_problem = None;
        if openai && (calls_at.is_some() || function_call_at.is_some()) && role != Role::Assistant {
            {
                rep.error(|| {
                    (
                        format!("{name}[{n}] is a {} message with tool calls; only assistant messages make calls", role.as_str()),
                        "move the calls to the assistant message that makes them".into(),
                    )
                });
            }
        }
        let mut call_pieces: Vec<Text<'t>> = Vec::new();
        if openai && role == Role::Assistant {
            if let Some(c) = calls_at {
                match doc.nodes[c] {
                    Node::Null => {}
                    Node::Arr { .. } => {
                        for (j, call) in doc.elements(c).enumerate() {
                            match tool_call(doc, call, false, &mut call_pieces, &mut pending) {
                                Ok(()) => calls += 1,
                                Err(e) => {
                                    call_problem.get_or_insert(format!(
                                        "{name}[{n}].tool_calls[{j}]{}",
                                        sep(&e)
                                    ));
                                }
                            }
                        }
                    }
                    _ => {
                        call_problem = Some(format!(
                            "{name}[{n}].tool_calls is {}, not a list",
                            doc.kind(c)
                        ))
                    }
                }
            }
            if let Some(c) = function_call_at
                && !matches!(doc.nodes[c], Node::Null)
            {
                match tool_call(doc, c, true, &mut call_pieces, &mut pending) {
                    Ok(()) => calls += 1,
                    Err(e) => {
                        call_problem.get_or_insert(format!("{name}[{n}].function_call{}", sep(&e)));
                    }
                }
            }
        }
        if let Some(p) = call_problem {
            rep.error(|| {
                (
                    p,
                    "write each call as {\"id\": …, \"type\": \"function\", \"function\": {\"name\": …, \"arguments\": \"{…}\"}}, the arguments a JSON object serialised as a string".into(),
                )
            });
        }
        // A tool message answers an earlier call.
        if role == Role::Tool {
            let id = call_id_at.and_then(|i| doc.text_at(i));
            let answered = match id {
                Some(id) => {
                    if let Some(p) = pending.ids.iter().position(|x| same_text(x, &id)) {
                        pending.ids.remove(p);
                        true
                    } else {
                        false
                    }
                }
                None if pending.anonymous > 0 => {
                    pending.anonymous -= 1;
                    true
                }
                None if !pending.ids.is_empty() => {
                    pending.ids.remove(0);
                    true
                }
                None => false,
            };
            if !answered {
                let shown = call_id_at.map(|i| doc.show(i));
                rep.error(|| {
                    (
                        match shown {
                            Some(id) => format!("{name}[{n}] is a tool result for call {id}, which no earlier assistant message made"),
                            None => format!("{name}[{n}] is a tool result, but no earlier assistant message made a call it could answer"),
                        },
                        "give the assistant message before it the matching tool call (\"tool_calls\" with the same \"id\"), or remove the tool message".into(),
                    )
                });
            }
        }
        let attempted = [calls_at, function_call_at]
            .iter()
            .flatten()
            .any(|&c| !matches!(doc.nodes[c], Node::Null));
        let may_be_empty = calls > 0 || (openai && attempted) || role == Role::Tool;
        let content_ok = match named {
            Named::CallTurn => match content_at.and_then(|c| doc.text_at(c)) {
                Some(v) => match sharegpt_call(v, &mut conv.pieces, &mut pending) {
                    Ok(()) => {
                        calls += 1;
                        true
                    }
                    Err(e) => {
                        rep.error(|| {
                                (
                                    format!("{name}[{n}].value (a function_call) {e}"),
                                    "write the call as JSON text: \"{\\\"name\\\": …, \\\"arguments\\\": {…}}\"".into(),
                                )
                            });
                        false
                    }
                },
                None => content_of(doc, rep, spec, n, content_at, &mut conv.pieces),
            },
            Named::Role(_)
                if may_be_empty
                    && content_at.is_none_or(|c| matches!(doc.nodes[c], Node::Null)) =>
            {
                true
            }
            Named::Role(_) => content_of(doc, rep, spec, n, content_at, &mut conv.pieces),
        };
        conv.pieces.extend(call_pieces);
        let mut trainable = true;
        if let Some(w) = weight_at {
            trainable &= message_weight(doc, rep, name, n, role, w, false);
        }
        if let Some(w) = loss_weight_at {
            trainable &= message_weight(doc, rep, name, n, role, w, true);
        }
        if !content_ok {
            conv.pieces.truncate(first);
            complete = false;
            continue;
        }
        if is_blank(&conv.pieces[first..]) && !may_be_empty {
            if role == Role::System {
                rep.warn(group_key("empty system message", ""), || {
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
        if let Some(m) = conv.msgs.last_mut() {
            m.calls = calls;
        }
    }
    complete
}

/// OpenAI's `weight` (`loss_weight: false`) or LLaMA-Factory's `loss_weight` on a message:
/// whether the message is trained. OpenAI's rule: the number 0 or 1, on assistant messages
/// only. LLaMA-Factory writes `loss_weight` on every message (0.0 on the prompt side), so a 0
/// there is fine and a 1 is a warning (only assistant messages are trained).
fn message_weight(
    doc: &Doc,
    rep: &mut Rep,
    name: &str,
    n: usize,
    role: Role,
    w: usize,
    loss_weight: bool,
) -> bool {
    let key = if loss_weight { "loss_weight" } else { "weight" };
    let value = match doc.nodes[w] {
        Node::Num(x) if x == 0.0 || x == 1.0 => Some(x == 1.0),
        _ => None,
    };
    let Some(value) = value else {
        rep.error(|| {
            let shown = doc.show(w);
            let error = match doc.nodes[w] {
                Node::Num(_) if loss_weight => format!(
                    "{name}[{n}].loss_weight is {shown}; BrightRun reads loss_weight as 0 (not trained) or 1 (trained), not as a scale"
                ),
                Node::Num(_) => format!(
                    "{name}[{n}].weight is {shown}; OpenAI's weight is 0 (do not train on this reply) or 1 (train on it), not a scale"
                ),
                _ if doc.text_at(w).is_some() => format!(
                    "{name}[{n}].{key} is the string {shown}; it must be the number 0 or 1, without quotes"
                ),
                _ => format!("{name}[{n}].{key} is {shown}, not the number 0 or 1"),
            };
            (
                error,
                format!("write \"{key}\": 1 to train on this reply and \"{key}\": 0 to skip it; to make an example count more, repeat it"),
            )
        });
        return true;
    };
    match role {
        Role::Assistant => value,
        _ if loss_weight && !value => true,
        _ if loss_weight => {
            rep.warn(group_key("loss_weight 1 not on assistant", role.as_str()), || {
                (
                    format!(
                        "{name}[{n}].loss_weight is 1 on a {} message; BrightRun trains assistant messages only, so it is not trained",
                        role.as_str()
                    ),
                    "set loss_weight 0 on prompt-side messages, or leave it out".into(),
                )
            });
            true
        }
        _ => {
            rep.error(|| {
                (
                    format!(
                        "{name}[{n}].weight is set on a {} message; OpenAI allows \"weight\" on assistant messages only (the others are never trained)",
                        role.as_str()
                    ),
                    "remove \"weight\" from this message".into(),
                )
            });
            true
        }
    }
}

/// `": reason"` or `"reason"` when it starts with a field (`.arguments …`, `[0] …`).
fn sep(e: &str) -> String {
    if e.starts_with(['.', '[']) {
        e.to_string()
    } else {
        format!(" {e}")
    }
}

/// The example's tool definitions (`tools`, `functions`): a list, or (ShareGPT, as
/// LLaMA-Factory writes it) a JSON text holding the list.
pub(super) fn tool_defs(doc: &Doc, key: &str, v: usize, rep: &mut Rep, conv: &mut Conversation) {
    let mut bytes = 0u64;
    let result = match doc.nodes[v] {
        Node::Null => Ok(()),
        Node::Arr { .. } => check_tool_defs(doc, v, &mut bytes),
        _ => match doc.text_at(v) {
            Some(t) if t.is_blank() => Ok(()),
            Some(t) => match with_parsed(&t, |d| check_tool_defs(d, 0, &mut bytes)) {
                Ok(r) => r,
                Err(e) => Err(format!("is a string that is not valid JSON ({e})")),
            },
            None => Err(format!(
                "is {}, not a list of tool definitions",
                doc.kind(v)
            )),
        },
    };
    conv.extra_bytes += bytes;
    if let Err(e) = result {
        rep.error(|| {
            (
                format!("\"{key}\"{}", sep(&e)),
                "write the tools as a list of {\"type\": \"function\", \"function\": {\"name\": …, \"description\": …, \"parameters\": {\"type\": \"object\", \"properties\": {…}, \"required\": […]}}}".into(),
            )
        });
    }
}

fn role_of(
    doc: &Doc,
    rep: &mut Rep,
    spec: &ListSpec,
    n: usize,
    at: Option<usize>,
) -> Option<Named> {
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
    if let Some(r) = role_named(spec.dialect, text) {
        return Some(r);
    }
    rep.error(|| {
        let tool = ["tool", "function", "ipython", "observation", "function_call"];
        let suggestion = if tool.iter().any(|t| text.is(t)) {
            "tool calls are read from OpenAI chat (\"tool_calls\" and \"tool\" messages) and ShareGPT (\"function_call\" and \"observation\" turns): convert the file to one of those".to_string()
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

/// The part types that carry media rather than text.
const MEDIA_PARTS: [&str; 9] = [
    "image",
    "image_url",
    "input_image",
    "audio",
    "input_audio",
    "audio_url",
    "video",
    "video_url",
    "file",
];

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
    if let Node::Arr { .. } = doc.nodes[at] {
        for (p, part) in doc.elements(at).enumerate() {
            let mut text = None;
            let mut kind = None;
            for (k, v) in doc.entries(part) {
                match k {
                    "type" => kind = doc.text_at(v),
                    "text" | "value" => text = doc.text_at(v),
                    _ => {}
                }
            }
            if let Some(k) = kind
                && (k.is("reasoning") || k.is("tool_call"))
            {
                rep.refuse(Refusal::Parts(if k.is("reasoning") {
                    "\"reasoning\" content parts"
                } else {
                    "\"tool_call\" content parts"
                }));
                return false;
            }
            let media = kind.and_then(|k| MEDIA_PARTS.iter().find(|m| k.is(m)));
            if let Some(m) = media {
                rep.refuse(Refusal::Multimodal(match *m {
                    "image" | "image_url" | "input_image" => "image content parts",
                    "audio" | "input_audio" | "audio_url" => "audio content parts",
                    "video" | "video_url" => "video content parts",
                    _ => "file content parts",
                }));
                return false;
            }
            match (kind.is_none_or(|k| k.is("text")) && doc.is_obj(part), text) {
                (true, Some(t)) => parts.push(t),
                _ => {
                    rep.error(|| {
                        (
                            format!("{name}[{n}].{key}[{p}] is not a text part"),
                            "write text parts as {\"type\": \"text\", \"text\": …}, or the message as a plain string".into(),
                        )
                    });
                    return false;
                }
            }
        }
        return true;
    }
    rep.error(|| {
        (
            format!(
                "{name}[{n}].{key} is {}, not a string or a list of text parts",
                doc.kind(at)
            ),
            "write the message's text as a string".into(),
        )
    });
    false
}

/// The conversation rules: an optional leading system message, then user and assistant
/// alternating, starting with the user and ending with the assistant; an assistant message
/// that makes tool calls is followed by the tool results, then by the assistant again;
/// something to learn. Two departures are trainable and only warned about, as OpenAI's
/// cookbook does: no user message before the first reply (trained as written), and a last
/// user message with no reply (the trainer drops it and trains the replies before it).
///
/// `at(i)` names message `i` (`messages[2]`, `"system"`, `completion[0]`).
///
/// `reply_last`: the last message is the reply that matters (a KTO example's labelled reply,
/// an implicit-prompt preference conversation), so a last user message is an error.
pub(super) fn check_order(
    conv: &mut Conversation,
    at: &dyn Fn(usize) -> String,
    rep: &mut Rep,
    reply_last: bool,
) {
    let msgs = &conv.msgs;
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
    if !body.iter().any(|m| m.role == Role::Assistant) {
        let last = body[body.len() - 1].role.as_str();
        rep.error(|| {
            (
                format!("the conversation has no assistant message and ends with a {last} message ({}); it must end with the assistant's reply", at(msgs.len() - 1)),
                "add the assistant's reply: it is what the model learns".into(),
            )
        });
        return;
    }
    match first.role {
        Role::User => {}
        Role::Assistant => {
            let context = if start == 1 {
                "only the system prompt"
            } else {
                "nothing"
            };
            rep.warn(group_key("no user message", ""), || {
                (
                    format!(
                        "{} is an assistant message with no user message before it; it is trained as written, the reply learned from {context} before it",
                        at(start)
                    ),
                    "add the user message the reply answers, if there is one. Chat templates that require strict user/assistant alternation (Llama 2, Mistral and Mixtral, Gemma) refuse such a conversation: with those base models the trainer skips it and names it in its log".into(),
                )
            });
        }
        role => {
            let role = role.as_str();
            rep.error(|| {
                (
                    format!("the conversation starts with a {role} message ({}); it must start with a user message", at(start)),
                    "add the user message that the reply answers".into(),
                )
            });
            return;
        }
    }
    for (k, w) in body.windows(2).enumerate() {
        let (a, b) = (w[0], w[1]);
        let ok = match (a.role, b.role) {
            (Role::User, Role::Assistant) => true,
            (Role::Assistant, Role::User) => a.calls == 0,
            (Role::Assistant, Role::Tool) => a.calls > 0,
            (Role::Tool, Role::Tool | Role::Assistant) => true,
            // A tool turn whose results were not written down (ShareGPT datasets do this).
            (Role::Assistant, Role::Assistant) => a.calls > 0,
            _ => false,
        };
        if ok {
            continue;
        }
        let i = start + k;
        rep.error(|| match (a.role, b.role) {
            (Role::Assistant, Role::User) => (
                format!("{} makes a tool call, but {} is a user message, not the tool's result", at(i), at(i + 1)),
                "put the tool result (a \"tool\" message, or an \"observation\" turn) after the call".into(),
            ),
            (_, Role::Tool) => (
                format!("{} is a tool result, but {} before it makes no tool call", at(i + 1), at(i)),
                "a tool result must follow the assistant message that made the call".into(),
            ),
            (Role::Tool, Role::User) => (
                format!("{} is a user message right after the tool result {}; the assistant must answer first", at(i + 1), at(i)),
                "add the assistant's reply that uses the tool result".into(),
            ),
            (x, _) => {
                let other = if x == Role::User { "assistant" } else { "user" };
                (
                    format!("{} and {} are both {} messages; user and assistant must alternate", at(i), at(i + 1), x.as_str()),
                    format!("merge the two into one message, or add the missing {other} message between them"),
                )
            }
        });
        return;
    }
    let last = body[body.len() - 1];
    let trainable = body.iter().any(|m| m.trainable);
    match last.role {
        Role::Assistant => {}
        Role::User if reply_last => {
            rep.error(|| {
                (
                    format!(
                        "the conversation ends with a user message ({}); it must end with the assistant's reply, the one that is judged",
                        at(msgs.len() - 1)
                    ),
                    "add the assistant's reply, or remove the last user message".into(),
                )
            });
            return;
        }
        Role::User => {
            rep.warn(group_key("ends with user", ""), || {
                (
                    format!(
                        "the conversation ends with a user message ({}) that has no reply; the trainer drops it and trains the assistant replies before it",
                        at(msgs.len() - 1)
                    ),
                    "add the assistant's reply to train on it too, or remove the last user message".into(),
                )
            });
            // As the trainer reads it (the statistics and the sample follow).
            conv.msgs.pop();
        }
        role => {
            let role = role.as_str();
            rep.error(|| {
                (
                    format!("the conversation ends with a {role} message ({}); it must end with the assistant's reply", at(msgs.len() - 1)),
                    format!("add the assistant's reply, or remove the last {role} message"),
                )
            });
            return;
        }
    }
    if !trainable {
        rep.error(|| {
            (
                "every assistant message has weight 0 (or loss_weight 0), so there is nothing to learn".into(),
                "set \"weight\": 1 on at least one assistant reply".into(),
            )
        });
    }
}

pub(super) fn string_field<'t>(
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
                    format!("{} example is {}", a_label(fmt), fmt.shape()),
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

pub(super) fn empty_error(rep: &mut Rep, key: &str) {
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
    let mut history = None;
    for (k, v) in doc.entries(root) {
        match k {
            "instruction" => instruction = Some(v),
            "input" => input = Some(v),
            "output" => output = Some(v),
            "system" => system = Some(v),
            "history" => history = Some(v),
            _ => unknown_key(
                rep,
                fmt,
                "",
                k,
                "\"instruction\", \"input\", \"output\" and optional \"system\" and \"history\"",
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
    if let Some(h) = history {
        alpaca_history(doc, h, rep, conv);
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

/// Alpaca's `history`, `[[instruction, output], …]`: earlier turns, before the instruction,
/// their outputs trained like the last one (as LLaMA-Factory does by default).
pub(super) fn alpaca_history<'t>(
    doc: &Doc<'t, '_>,
    h: usize,
    rep: &mut Rep,
    conv: &mut Conversation<'t>,
) {
    let Node::Arr { .. } = doc.nodes[h] else {
        if !matches!(doc.nodes[h], Node::Null) {
            rep.error(|| {
                (
                    format!("\"history\" is {}, not a list of [instruction, output] pairs", doc.kind(h)),
                    "write earlier turns as \"history\": [[\"instruction\", \"output\"], …], or leave it out".into(),
                )
            });
        }
        return;
    };
    for (i, pair) in doc.elements(h).enumerate() {
        let mut texts = doc.elements(pair).map(|e| doc.text_at(e));
        let pair_ok = matches!(doc.nodes[pair], Node::Arr { len: 2, .. });
        match (pair_ok, texts.next().flatten(), texts.next().flatten()) {
            (true, Some(q), Some(a)) if !q.is_blank() && !a.is_blank() => {
                conv.push(Role::User, &[q], false);
                conv.push(Role::Assistant, &[a], true);
            }
            (true, Some(_), Some(_)) => {
                rep.error(|| {
                    (
                        format!("history[{i}] has an empty instruction or output"),
                        "write both texts of the earlier turn, or remove the pair".into(),
                    )
                });
                return;
            }
            _ => {
                rep.error(|| {
                    (
                        format!("history[{i}] is not an [instruction, output] pair of strings"),
                        "write earlier turns as \"history\": [[\"instruction\", \"output\"], …]"
                            .into(),
                    )
                });
                return;
            }
        }
    }
}

pub(super) const PROMPT: ListSpec = ListSpec {
    format: DatasetFormat::PromptCompletion,
    dialect: DatasetFormat::PromptCompletion,
    mode: Mode::Whole,
    list: "prompt",
    top_keys: &[],
    role_key: "role",
    content_key: "content",
    role_names: "system, user or assistant",
    message_keys: "\"role\" and \"content\"",
    example_keys: "\"prompt\" and \"completion\"",
};

pub(super) const COMPLETION: ListSpec = ListSpec {
    list: "completion",
    role_names: "assistant",
    ..PROMPT
};

/// One side of a prompt/completion example (or of a preference pair): a string, a list of
/// text parts, or (TRL's conversational layout) a list of messages. The prompt's messages
/// are context; a reply's (`reply`: the completion, a chosen or rejected reply) are
/// assistant messages, trained. Returns false when it is broken.
pub(super) fn pc_side<'t>(
    doc: &Doc<'t, '_>,
    at: usize,
    spec: &ListSpec,
    reply: bool,
    rep: &mut Rep,
    conv: &mut Conversation<'t>,
) -> bool {
    let key = spec.list;
    let completion = reply;
    let default_role = if completion {
        Role::Assistant
    } else {
        Role::User
    };
    let first = conv.pieces.len();
    let Node::Arr { len, .. } = doc.nodes[at] else {
        let Some(t) = doc.text_at(at) else {
            rep.error(|| {
                (
                    format!("\"{key}\" is {}, not a string or a list of messages", doc.kind(at)),
                    format!("write \"{key}\" as a string, or as TRL's conversational layout does, a list of {{\"role\", \"content\"}} messages"),
                )
            });
            return false;
        };
        if t.is_blank() {
            empty_error(rep, key);
        }
        conv.push(default_role, &[t], completion);
        return true;
    };
    if len == 0 {
        rep.error(|| {
            (
                format!("\"{key}\" is an empty list"),
                format!("write the {key}'s messages"),
            )
        });
        return false;
    }
    let messages = doc
        .elements(at)
        .next()
        .is_some_and(|m| doc.get(m, "role").is_some());
    if let Some(x) = doc.elements(at).find(|&x| !doc.is_obj(x)) {
        rep.error(|| {
            (
                format!("\"{key}\" is a list holding {}, not messages or text parts", doc.kind(x)),
                format!("write \"{key}\" as a string, or as TRL's conversational layout does, a list of {{\"role\", \"content\"}} messages"),
            )
        });
        return false;
    }
    if !messages {
        // A list of text parts: one message.
        let ok = content_of(doc, rep, spec, 0, Some(at), &mut conv.pieces) && {
            if is_blank(&conv.pieces[first..]) {
                empty_error(rep, key);
            }
            true
        };
        conv.push_since(default_role, first, completion);
        return ok;
    }
    let mut ok = true;
    for (n, item) in doc.elements(at).enumerate() {
        if !doc.is_obj(item) {
            rep.error(|| {
                (
                    format!("{key}[{n}] is {}, not an object", doc.kind(item)),
                    "write each message as {\"role\": …, \"content\": …}".into(),
                )
            });
            ok = false;
            continue;
        }
        let (mut role_at, mut content_at) = (None, None);
        for (k, v) in doc.entries(item) {
            match k {
                "role" => role_at = Some(v),
                "content" => content_at = Some(v),
                _ => {
                    let place = format!(" in {key}[{n}]");
                    unknown_key(rep, spec.format, &place, k, spec.message_keys);
                }
            }
        }
        let Some(Named::Role(role)) = role_of(doc, rep, spec, n, role_at) else {
            ok = false;
            continue;
        };
        if completion && role != Role::Assistant {
            rep.error(|| {
                (
                    format!("{key}[{n}] is a {} message; {} holds the assistant's reply", role.as_str(), if key == "completion" { "a completion".to_string() } else { format!("\"{key}\"") }),
                    "move it to the end of \"prompt\", which holds the conversation before the reply".into(),
                )
            });
            ok = false;
            continue;
        }
        let start = conv.pieces.len();
        if !content_of(doc, rep, spec, n, content_at, &mut conv.pieces) {
            conv.pieces.truncate(start);
            ok = false;
            continue;
        }
        if is_blank(&conv.pieces[start..]) && role != Role::System {
            rep.error(|| {
                (
                    format!("{key}[{n}].content is empty ({} message)", role.as_str()),
                    "write the message, or remove the example".into(),
                )
            });
        }
        conv.push_since(role, start, completion);
    }
    ok
}

fn check_prompt_completion<'t>(
    doc: &Doc<'t, '_>,
    root: usize,
    rep: &mut Rep,
    conv: &mut Conversation<'t>,
) {
    prompt_completion(
        doc,
        root,
        DatasetFormat::PromptCompletion,
        &[],
        "\"prompt\" and \"completion\"",
        rep,
        conv,
    );
}

/// A prompt/completion example as `fmt` (`PromptCompletion`, or KTO's unpaired layout whose
/// `extra` keys are its label); returns how many messages the prompt has.
pub(super) fn prompt_completion<'t>(
    doc: &Doc<'t, '_>,
    root: usize,
    fmt: DatasetFormat,
    extra: &[&str],
    known: &str,
    rep: &mut Rep,
    conv: &mut Conversation<'t>,
) -> usize {
    let (mut prompt, mut completion) = (None, None);
    for (k, v) in doc.entries(root) {
        match k {
            "prompt" => prompt = Some(v),
            "completion" => completion = Some(v),
            _ if extra.contains(&k) => {}
            _ => unknown_key(rep, fmt, "", k, known),
        }
    }
    let (Some(p), Some(c)) = (prompt, completion) else {
        // Not reached for prompt/completion: `detect` needs both keys.
        for (key, at) in [("prompt", prompt), ("completion", completion)] {
            string_field(doc, rep, fmt, key, at, true);
        }
        return conv.msgs.len();
    };
    let conversational = [p, c]
        .iter()
        .any(|&x| matches!(doc.nodes[x], Node::Arr { .. }));
    if !conversational {
        if let Some(p) = string_field(doc, rep, fmt, "prompt", Some(p), true) {
            if p.is_blank() {
                empty_error(rep, "prompt");
            }
            conv.push(Role::User, &[p], false);
        }
        let split = conv.msgs.len();
        if let Some(c) = string_field(doc, rep, fmt, "completion", Some(c), true) {
            if c.is_blank() {
                empty_error(rep, "completion");
            }
            conv.push(Role::Assistant, &[c], true);
        }
        return split;
    }
    let before = rep.errors;
    let (prompt_spec, completion_spec) = (
        ListSpec {
            format: fmt,
            ..PROMPT
        },
        ListSpec {
            format: fmt,
            ..COMPLETION
        },
    );
    let prompt_ok = pc_side(doc, p, &prompt_spec, false, rep, conv);
    let split = conv.msgs.len();
    let completion_ok = pc_side(doc, c, &completion_spec, true, rep, conv);
    if prompt_ok && completion_ok && rep.errors == before {
        let at = |i: usize| -> String {
            if i < split {
                format!("prompt[{i}]")
            } else {
                format!("completion[{}]", i - split)
            }
        };
        check_order(conv, &at, rep, false);
    }
    split
}

fn check_text<'t>(doc: &Doc<'t, '_>, root: usize, rep: &mut Rep, conv: &mut Conversation<'t>) {
    let fmt = DatasetFormat::Text;
    let mut text = None;
    for (k, v) in doc.entries(root) {
        match k {
            "text" => text = Some(v),
            // Common provenance fields of pretraining corpora.
            "id" | "source" | "meta" | "metadata" | "url" => {}
            _ => unknown_key(rep, fmt, "", k, "\"text\""),
        }
    }
    if let Some(t) = string_field(doc, rep, fmt, "text", text, true) {
        if t.is_blank() {
            empty_error(rep, "text");
        }
        conv.push(Role::Text, &[t], true);
    }
}
