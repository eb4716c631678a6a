//! Exact token counts: the base model's own tokenizer and chat template, found in the local
//! Hugging Face cache (or named in config), so that a dataset's token count is what the
//! trainer will feed the model, not an estimate.
//!
//! The chat template's overhead (turn markers, a BOS, a default system preamble) is measured
//! once per tokenizer by rendering probe conversations with the template (minijinja, with
//! Python string methods as Hugging Face templates use them) and counting the tokens the
//! template adds around the messages: a fixed part per conversation and a part per message
//! of each role ([`ChatOverhead`]).

use crate::validation::ChatOverhead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a tokenizer could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    #[error("cannot load the tokenizer {path}: {reason}")]
    Load { path: PathBuf, reason: String },
    #[error("cannot render the chat template of {path}: {reason}")]
    Template { path: PathBuf, reason: String },
}

/// A model's tokenizer, with the overhead of its chat template when it has one.
#[derive(Clone)]
pub struct ModelTokenizer {
    pub tokenizer: Arc<tokenizers::Tokenizer>,
    pub overhead: Option<ChatOverhead>,
    /// The `tokenizer.json` it was loaded from.
    pub path: PathBuf,
}

impl std::fmt::Debug for ModelTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelTokenizer")
            .field("path", &self.path)
            .field("overhead", &self.overhead)
            .finish()
    }
}

/// Where Hugging Face keeps downloaded models, in its own order of precedence:
/// `HF_HUB_CACHE`, `HUGGINGFACE_HUB_CACHE`, `HF_HOME/hub`, `XDG_CACHE_HOME/huggingface/hub`,
/// `~/.cache/huggingface/hub`.
pub fn hf_cache_roots() -> Vec<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let mut roots = Vec::new();
    roots.extend(env("HF_HUB_CACHE"));
    roots.extend(env("HUGGINGFACE_HUB_CACHE"));
    roots.extend(env("HF_HOME").map(|h| h.join("hub")));
    roots.extend(env("XDG_CACHE_HOME").map(|c| c.join("huggingface/hub")));
    roots.extend(dirs::home_dir().map(|h| h.join(".cache/huggingface/hub")));
    roots
}

/// The folder holding `tokenizer.json` for `model`: the model itself when it is a local
/// folder, else its snapshot in one of `roots` (the one `refs/main` names, else any).
pub fn find_model_dir(model: &str, roots: &[PathBuf]) -> Option<PathBuf> {
    let local = Path::new(model);
    if local.join("tokenizer.json").is_file() {
        return Some(local.to_path_buf());
    }
    let folder = format!("models--{}", model.replace('/', "--"));
    for root in roots {
        let repo = root.join(&folder);
        let snapshots = repo.join("snapshots");
        if let Ok(main) = std::fs::read_to_string(repo.join("refs/main")) {
            let dir = snapshots.join(main.trim());
            if dir.join("tokenizer.json").is_file() {
                return Some(dir);
            }
        }
        let Ok(entries) = std::fs::read_dir(&snapshots) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|d| d.join("tokenizer.json").is_file())
            .collect();
        dirs.sort();
        if let Some(d) = dirs.pop() {
            return Some(d);
        }
    }
    None
}

/// Loads `tokenizer.json` (the file, or the one in a folder) and, when a
/// `tokenizer_config.json` (or `chat_template.jinja`) beside it holds a chat template, its
/// overhead. A template that cannot be rendered is an error, not a silent estimate.
pub fn load(path: &Path) -> Result<ModelTokenizer, TokensError> {
    let file = if path.is_dir() {
        path.join("tokenizer.json")
    } else {
        path.to_path_buf()
    };
    let tokenizer =
        crate::validation::load_tokenizer(&file).map_err(|reason| TokensError::Load {
            path: file.clone(),
            reason,
        })?;
    let dir = file.parent().unwrap_or(Path::new("."));
    let config: serde_json::Value = std::fs::read(dir.join("tokenizer_config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let template = std::fs::read_to_string(dir.join("chat_template.jinja"))
        .ok()
        .or_else(|| match &config["chat_template"] {
            serde_json::Value::String(s) => Some(s.clone()),
            // A list of named templates: the default one.
            serde_json::Value::Array(list) => list
                .iter()
                .find(|t| t["name"] == "default")
                .or(list.first())
                .and_then(|t| t["template"].as_str().map(String::from)),
            _ => None,
        });
    let token = |k: &str| match &config[k] {
        serde_json::Value::String(s) => s.clone(),
        v => v["content"].as_str().unwrap_or_default().to_string(),
    };
    let overhead = match template {
        Some(t) => Some(
            chat_overhead(&tokenizer, &t, &token("bos_token"), &token("eos_token")).map_err(
                |reason| TokensError::Template {
                    path: dir.to_path_buf(),
                    reason,
                },
            )?,
        ),
        None => None,
    };
    Ok(ModelTokenizer {
        tokenizer: Arc::new(tokenizer),
        overhead,
        path: file,
    })
}

/// The tokens `template` adds around messages, measured with probe conversations:
/// `[u, a]`, `[u, a, u, a]`, `[u, a, u]`, `[s, u, a]`, `[u, a(call), t, a]` give the fixed
/// part and the part per user, assistant, system and tool message. A template that refuses
/// a probe (no system role, no tool role) gets 0 for that role.
pub fn chat_overhead(
    tokenizer: &tokenizers::Tokenizer,
    template: &str,
    bos: &str,
    eos: &str,
) -> Result<ChatOverhead, String> {
    let mut env = minijinja::Environment::new();
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |msg: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(
                minijinja::ErrorKind::InvalidOperation,
                msg,
            ))
        },
    );
    env.add_function("strftime_now", |_fmt: String| "26 Nov 2026".to_string());
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.add_template("chat", template)
        .map_err(|e| e.to_string())?;
    let tmpl = env.get_template("chat").map_err(|e| e.to_string())?;
    let count = |text: &str| -> usize {
        tokenizer
            .encode_fast(text, false)
            .map(|e| e.len())
            .unwrap_or(0)
    };
    let render = |msgs: serde_json::Value| -> Result<i64, String> {
        let contents: usize = msgs
            .as_array()
            .map(|m| {
                m.iter()
                    .filter_map(|x| x["content"].as_str())
                    .map(count)
                    .sum()
            })
            .unwrap_or(0);
        let text = tmpl
            .render(minijinja::context! {
                messages => msgs,
                bos_token => bos,
                eos_token => eos,
                add_generation_prompt => false,
            })
            .map_err(|e| e.to_string())?;
        Ok(count(&text) as i64 - contents as i64)
    };
    use serde_json::json;
    let u = |c: &str| json!({"role": "user", "content": c});
    let a = |c: &str| json!({"role": "assistant", "content": c});
    let t1 = render(json!([u("a"), a("b")]))?;
    let t2 = render(json!([u("a"), a("b"), u("c"), a("d")]))?;
    let t4 = render(json!([u("a"), a("b"), u("c")])).unwrap_or(t1 + (t2 - t1) / 2);
    let user = (t4 - t1).max(0);
    let assistant = (t2 - t4).max(0);
    let fixed = (t1 - user - assistant).max(0);
    let system = render(json!([{"role": "system", "content": "e"}, u("a"), a("b")]))
        .map(|t3| (t3 - t1).max(0))
        .unwrap_or(0);
    let tool = render(json!([
        u("a"),
        {"role": "assistant", "content": "", "tool_calls": [{"id": "x", "type": "function", "function": {"name": "f", "arguments": {}}}]},
        {"role": "tool", "tool_call_id": "x", "content": "c"},
        a("d"),
    ]))
    .map(|t| (t - t1 - assistant).max(0))
    .unwrap_or(user);
    let clamp = |x: i64| x.clamp(0, u32::MAX as i64) as u32;
    Ok(ChatOverhead {
        fixed: clamp(fixed),
        per_role: [clamp(system), clamp(user), clamp(assistant), clamp(tool)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A word-level tokenizer built here (no download): every whitespace-separated word and
    /// every special marker is one token.
    pub(crate) fn tiny_tokenizer() -> tokenizers::Tokenizer {
        let json = r#"{"version":"1.0","truncation":null,"padding":null,
            "added_tokens":[{"id":0,"content":"<s>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},
                            {"id":1,"content":"<|im_start|>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true},
                            {"id":2,"content":"<|im_end|>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}],
            "normalizer":null,"pre_tokenizer":{"type":"Whitespace"},"post_processor":null,"decoder":null,
            "model":{"type":"WordLevel","vocab":{"<s>":0,"<|im_start|>":1,"<|im_end|>":2,"[UNK]":3,"a":4,"b":5,"c":6,"d":7,"e":8,"user":9,"assistant":10,"system":11,"tool":12},"unk_token":"[UNK]"}}"#;
        tokenizers::Tokenizer::from_bytes(json.as_bytes()).unwrap()
    }

    #[test]
    fn chatml_overhead_is_measured() {
        let t = tiny_tokenizer();
        let chatml = "{{ bos_token }}{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}";
        let o = chat_overhead(&t, chatml, "<s>", "<|im_end|>").unwrap();
        // <|im_start|> role … <|im_end|>: 3 tokens per message, <s> once.
        assert_eq!(
            o,
            ChatOverhead {
                fixed: 1,
                per_role: [3, 3, 3, 3]
            }
        );
        // A template that refuses the system role still gives the rest.
        let strict = "{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('no') }}{% endif %}[{{ m.role }}] {{ m.content.strip() }}{% endfor %}";
        let o = chat_overhead(&t, strict, "", "").unwrap();
        assert_eq!(o.per_role[0], 0);
        assert_eq!(o.per_role[1], 3); // "[", "user", "]" (unknown words are one token each)
        assert!(chat_overhead(&t, "{% for %}", "", "").is_err());
    }

    #[test]
    fn models_are_found_in_the_hub_cache_layout() {
        let dir = tempfile::tempdir().unwrap();
        let snap = dir.path().join("models--org--tiny/snapshots/abc123");
        std::fs::create_dir_all(&snap).unwrap();
        std::fs::write(
            dir.path().join("models--org--tiny/refs").join("main"),
            "abc123",
        )
        .ok();
        std::fs::create_dir_all(dir.path().join("models--org--tiny/refs")).unwrap();
        std::fs::write(dir.path().join("models--org--tiny/refs/main"), "abc123\n").unwrap();
        tiny_tokenizer()
            .save(snap.join("tokenizer.json"), false)
            .unwrap();
        std::fs::write(
            snap.join("tokenizer_config.json"),
            r#"{"bos_token": "<s>", "eos_token": {"content": "<|im_end|>"}, "chat_template": "{{ bos_token }}{% for m in messages %}<|im_start|>{{ m['role'] }} {{ m['content'] }}<|im_end|>{% endfor %}"}"#,
        )
        .unwrap();
        let roots = vec![dir.path().join("nowhere"), dir.path().to_path_buf()];
        let found = find_model_dir("org/tiny", &roots).unwrap();
        assert_eq!(found, snap);
        assert!(find_model_dir("org/other", &roots).is_none());
        let m = load(&found).unwrap();
        assert_eq!(m.overhead.unwrap().per_role[1], 3);
        assert_eq!(m.overhead.unwrap().fixed, 1);
        // A local folder is used as is.
        assert_eq!(find_model_dir(snap.to_str().unwrap(), &[]), Some(snap));
    }
}
