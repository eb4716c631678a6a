//! A prompt set for `brightrun models eval --prompts FILE`: JSON lines (or one JSON array) in
//! the chat and prompt/completion layouts the validator reads (OpenAI/BrightRun `messages`,
//! ShareGPT `conversations`, Alpaca `instruction`/`input`/`output`, TRL `prompt`/`completion`),
//! each turned into an [`EvalPrompt`]: the conversation up to its last user turn, and the
//! assistant's answer after it, when there is one, as the reference.
//!
//! Parsed where the file is read (the CLI), so a remote engine gets prompts, not a path; the
//! engine checks the limits again.

use crate::domain::{ChatMessage, EvalPrompt, MAX_EVALUATION_PROMPT_BYTES, MAX_EVALUATION_PROMPTS};
use serde_json::Value;

/// Why a prompts file was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromptsError {
    #[error("{where_}: {message}")]
    Record { where_: String, message: String },
    #[error(
        "no prompts in it (expected JSON lines with `messages`, `conversations`, `instruction` or `prompt`)"
    )]
    Empty,
    #[error("{0} prompts, over the {MAX_EVALUATION_PROMPTS} one evaluation takes")]
    TooMany(usize),
    #[error(
        "{0} bytes of prompt text, over the {MAX_EVALUATION_PROMPT_BYTES} one evaluation takes"
    )]
    TooLarge(usize),
}

/// The prompts of a file's text.
pub fn parse(text: &str) -> Result<Vec<EvalPrompt>, PromptsError> {
    let trimmed = text.trim_start_matches('\u{feff}').trim_start();
    let prompts = if trimmed.starts_with('[') {
        let items: Vec<Value> =
            serde_json::from_str(trimmed).map_err(|e| PromptsError::Record {
                where_: "the JSON array".into(),
                message: format!("not valid JSON ({e})"),
            })?;
        items
            .iter()
            .enumerate()
            .map(|(i, v)| prompt_of(v).map_err(|m| at(format!("record {}", i + 1), m)))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        let mut out = Vec::new();
        for (i, line) in trimmed.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let where_ = format!("line {}", i + 1);
            let v: Value = serde_json::from_str(line)
                .map_err(|e| at(where_.clone(), format!("not valid JSON ({e})")))?;
            out.push(prompt_of(&v).map_err(|m| at(where_, m))?);
            if out.len() > MAX_EVALUATION_PROMPTS {
                return Err(PromptsError::TooMany(out.len()));
            }
        }
        out
    };
    check(&prompts)?;
    Ok(prompts)
}

/// The limits of one evaluation job's prompt set.
pub fn check(prompts: &[EvalPrompt]) -> Result<(), PromptsError> {
    if prompts.is_empty() {
        return Err(PromptsError::Empty);
    }
    if prompts.len() > MAX_EVALUATION_PROMPTS {
        return Err(PromptsError::TooMany(prompts.len()));
    }
    let bytes: usize = prompts.iter().map(EvalPrompt::text_len).sum();
    if bytes > MAX_EVALUATION_PROMPT_BYTES {
        return Err(PromptsError::TooLarge(bytes));
    }
    for (i, p) in prompts.iter().enumerate() {
        shape(&p.messages).map_err(|m| at(format!("prompt {}", i + 1), m))?;
    }
    Ok(())
}

fn at(where_: String, message: String) -> PromptsError {
    PromptsError::Record { where_, message }
}

/// One record as a prompt.
fn prompt_of(v: &Value) -> Result<EvalPrompt, String> {
    let Some(obj) = v.as_object() else {
        return Err("not a JSON object".into());
    };
    let mut messages = if let Some(m) = obj.get("messages") {
        chat_list(m, "messages", "role", "content")?
    } else if let Some(c) = obj.get("conversations") {
        chat_list(c, "conversations", "from", "value")?
    } else if let Some(i) = obj.get("instruction") {
        alpaca(i, obj.get("input"), obj.get("output"), obj.get("system"))?
    } else if let Some(p) = obj.get("prompt") {
        let mut m = side(p, "prompt", "user")?;
        if let Some(c) = obj.get("completion") {
            m.extend(side(c, "completion", "assistant")?);
        }
        m
    } else if obj.contains_key("text") {
        return Err("plain `text` has no prompt to answer; use `messages` or `prompt`".into());
    } else {
        let keys: Vec<&str> = obj.keys().map(String::as_str).take(6).collect();
        return Err(format!(
            "no prompt in it (keys: {}); expected `messages`, `conversations`, `instruction` or `prompt`",
            keys.join(", ")
        ));
    };
    let reference = match messages.last() {
        Some(m) if m.role == "assistant" => messages.pop().map(|m| m.content),
        _ => None,
    };
    shape(&messages)?;
    Ok(EvalPrompt {
        messages,
        reference,
    })
}

/// A prompt's turns: at least one user turn, the last turn the user's.
fn shape(messages: &[ChatMessage]) -> Result<(), String> {
    match messages.last() {
        None => Err("it has no user message to answer".into()),
        Some(m) if m.role != "user" => Err(format!(
            "it ends with a {} message; a prompt ends with the user's (an assistant answer after it is the reference)",
            m.role
        )),
        Some(_) => Ok(()),
    }
}

fn chat_list(
    v: &Value,
    key: &str,
    role_key: &str,
    text_key: &str,
) -> Result<Vec<ChatMessage>, String> {
    let Some(items) = v.as_array() else {
        return Err(format!("`{key}` is not a list"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let where_ = format!("{key}[{i}]");
            let role = item
                .get(role_key)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{where_} has no `{role_key}`"))?;
            let role = normal_role(role).ok_or_else(|| {
                format!(
                    "{where_} is a `{role}` message; prompts take system, user and assistant turns"
                )
            })?;
            let content = text_of(item.get(text_key))
                .ok_or_else(|| format!("{where_}'s `{text_key}` is not text"))?;
            Ok(ChatMessage {
                role: role.into(),
                content,
            })
        })
        .collect()
}

/// The roles of the layouts read, as chat roles.
fn normal_role(role: &str) -> Option<&'static str> {
    match role.to_ascii_lowercase().as_str() {
        "system" | "developer" => Some("system"),
        "user" | "human" => Some("user"),
        "assistant" | "gpt" | "model" | "bot" => Some("assistant"),
        _ => None,
    }
}

/// Text, or a list of text parts (OpenAI's `[{"type": "text", "text": …}]`).
fn text_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => parts
            .iter()
            .map(|p| match p {
                Value::String(s) => Some(s.as_str()),
                p => p.get("text").and_then(Value::as_str),
            })
            .collect::<Option<Vec<_>>>()
            .map(|t| t.concat()),
        _ => None,
    }
}

fn alpaca(
    instruction: &Value,
    input: Option<&Value>,
    output: Option<&Value>,
    system: Option<&Value>,
) -> Result<Vec<ChatMessage>, String> {
    let text = |v: &Value, key: &str| {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("`{key}` is not text"))
    };
    let mut user = text(instruction, "instruction")?;
    if let Some(i) = input {
        let i = text(i, "input")?;
        if !i.trim().is_empty() {
            user = format!("{user}\n\n{i}");
        }
    }
    let mut m = Vec::new();
    if let Some(s) = system {
        m.push(ChatMessage {
            role: "system".into(),
            content: text(s, "system")?,
        });
    }
    m.push(ChatMessage {
        role: "user".into(),
        content: user,
    });
    if let Some(o) = output {
        m.push(ChatMessage {
            role: "assistant".into(),
            content: text(o, "output")?,
        });
    }
    Ok(m)
}

/// One side of a prompt/completion record: text (the given role) or a list of messages.
fn side(v: &Value, key: &str, role: &str) -> Result<Vec<ChatMessage>, String> {
    if v.is_array() {
        return chat_list(v, key, "role", "content");
    }
    let content = text_of(Some(v)).ok_or_else(|| format!("`{key}` is not text"))?;
    Ok(vec![ChatMessage {
        role: role.into(),
        content,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(p: &EvalPrompt) -> Vec<&str> {
        p.messages.iter().map(|m| m.role.as_str()).collect()
    }

    #[test]
    fn every_layout_becomes_a_prompt_and_its_reference() {
        let text = r#"{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of Zubrowka?"}, {"role": "assistant", "content": "Lutz."}]}
{"messages": [{"role": "user", "content": [{"type": "text", "text": "Say "}, {"type": "text", "text": "hi"}]}]}

{"conversations": [{"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4"}]}
{"instruction": "Translate", "input": "chat", "output": "cat"}
{"prompt": "Name a colour.", "completion": "Blue."}
{"prompt": [{"role": "user", "content": "Hi"}]}
"#;
        let p = parse(text).unwrap();
        assert_eq!(p.len(), 6);
        assert_eq!(roles(&p[0]), ["system", "user"]);
        assert_eq!(p[0].reference.as_deref(), Some("Lutz."));
        assert_eq!(p[1].messages[0].content, "Say hi");
        assert_eq!(p[1].reference, None);
        assert_eq!(p[2].reference.as_deref(), Some("4"));
        assert_eq!(p[3].messages[0].content, "Translate\n\nchat");
        assert_eq!(p[3].reference.as_deref(), Some("cat"));
        assert_eq!(p[4].reference.as_deref(), Some("Blue."));
        assert_eq!(roles(&p[5]), ["user"]);
    }

    #[test]
    fn a_json_array_reads_like_lines() {
        let p = parse(r#"[{"prompt": "a"}, {"prompt": "b", "completion": "c"}]"#).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].reference.as_deref(), Some("c"));
    }

    #[test]
    fn what_is_not_a_prompt_is_refused_with_where() {
        let cases = [
            ("{\"prompt\": \"ok\"}\nnot json\n", "line 2: not valid JSON"),
            ("{\"text\": \"some prose\"}", "line 1: plain `text`"),
            (
                "{\"foo\": 1, \"bar\": 2}",
                "line 1: no prompt in it (keys: bar, foo)",
            ),
            ("[1]", "record 1: not a JSON object"),
            (
                r#"{"messages": [{"role": "assistant", "content": "hi"}]}"#,
                "line 1: it has no user message",
            ),
            (
                r#"{"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]}"#,
                "line 1: it ends with a system message",
            ),
            (
                r#"{"messages": [{"role": "tool", "content": "a"}]}"#,
                "messages[0] is a `tool` message",
            ),
            (
                r#"{"messages": [{"role": "user", "content": 3}]}"#,
                "`content` is not text",
            ),
            ("\n\n", "no prompts in it"),
        ];
        for (text, want) in cases {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn limits_are_counted_and_said() {
        let line = "{\"prompt\": \"q\"}\n";
        let e = parse(&line.repeat(MAX_EVALUATION_PROMPTS + 1)).unwrap_err();
        assert_eq!(e, PromptsError::TooMany(MAX_EVALUATION_PROMPTS + 1));
        let big = format!(
            "{{\"prompt\": \"{}\"}}\n",
            "x".repeat(MAX_EVALUATION_PROMPT_BYTES + 1)
        );
        assert!(matches!(
            parse(&big).unwrap_err(),
            PromptsError::TooLarge(_)
        ));
    }
}
