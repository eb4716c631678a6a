//! The playground: a chat with a trained model (or its base), answered as a stream of
//! [`ChatEvent`]s. The engine runs the model in a worker on its own machine (the trainer's
//! `serve` mode); embedded, the stream comes from that worker; attached, it arrives as
//! server-sent events from `POST /api/models/{id}/chat`.

use crate::error::ApiError;
use futures::Stream;
use serde::{Deserialize, Serialize};
use std::pin::Pin;

/// The most messages one chat request may carry.
pub const MAX_CHAT_MESSAGES: usize = 1000;
/// The most bytes of message text one chat request may carry (the whole history).
pub const MAX_CHAT_BYTES: usize = 1024 * 1024;

/// Who said a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChatRole {
    System,
    User,
    Assistant,
}

/// One turn of the conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatMessage {
    pub role: ChatRole,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: ChatRole, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// A chat turn: the conversation so far (ending with the user's message), answered by the
/// model's adapter, or by its base model with `base`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatRequest {
    /// A model id or unique prefix (only the caller's own models).
    pub model: String,
    pub messages: Vec<ChatMessage>,
    /// Answer with the base model (the adapter disabled) instead of the adapter.
    #[serde(default)]
    pub base: bool,
    /// The longest reply, in tokens (default 256; at most `[playground] max_new_tokens_limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_new_tokens: Option<u32>,
    /// 0 (the default) answers greedily; above 0 samples at that temperature (at most 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
}

/// The body of `POST /api/models/{id}/chat`: a [`ChatRequest`] without the model (the path
/// names it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatBody {
    pub messages: Vec<ChatMessage>,
    #[serde(default)]
    pub base: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_new_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
}

impl ChatBody {
    pub fn into_request(self, model: String) -> ChatRequest {
        ChatRequest {
            model,
            messages: self.messages,
            base: self.base,
            max_new_tokens: self.max_new_tokens,
            temperature: self.temperature,
        }
    }
}

impl From<&ChatRequest> for ChatBody {
    fn from(r: &ChatRequest) -> Self {
        Self {
            messages: r.messages.clone(),
            base: r.base,
            max_new_tokens: r.max_new_tokens,
            temperature: r.temperature,
        }
    }
}

/// What a chat's stream carries, in order: `started`, `delta`s, then one `done` or `error`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChatEvent {
    /// The worker took the request (after any earlier chat to the same model, and after
    /// loading the model on first use).
    Started {
        /// The full model id.
        model: String,
        base_model: String,
        /// `cpu` or `cuda`.
        device: String,
        /// Seconds spent loading the model for this request (0 when it was loaded).
        load_seconds: f64,
        /// Something the person chatting should know once, in a sentence: set when the
        /// worker runs on the engine's CPU ([`cpu_note`]). Absent from older engines.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// More of the reply's text.
    Delta { text: String },
    /// The reply is complete.
    Done {
        /// Tokens generated.
        tokens: u64,
        /// Seconds from the worker taking the request to the last token.
        seconds: f64,
        /// Seconds to the first token (none when no token came).
        first_token_seconds: Option<f64>,
    },
    /// The reply ended early: the worker failed or died (`unavailable`, reason
    /// `worker_failed`), or the request was refused (`invalid`).
    Error { error: ApiError },
}

impl ChatEvent {
    /// Whether the stream ends with this event.
    pub fn is_last(&self) -> bool {
        matches!(self, Self::Done { .. } | Self::Error { .. })
    }
}

/// The command that judges model `model` (an id or prefix) on a cluster instead of the
/// engine's machine, quoted.
pub fn eval_hint(model: &str) -> String {
    format!("`brightrun models eval {model} --backend NAME`")
}

/// The note a chat answered on the engine's CPU carries ([`ChatEvent::Started`]'s `note`):
/// chat runs on the engine's machine, which has no GPU, and judging on a cluster is
/// [`eval_hint`].
pub fn cpu_note(model: &str) -> String {
    format!(
        "chat runs on the engine's machine, on its CPU (no GPU there): fine for small models, slow for large ones; to judge this model on a cluster's GPU: {}",
        eval_hint(model)
    )
}

/// A chat's reply as it comes; ends after `done` or `error`.
pub type ChatStream = Pin<Box<dyn Stream<Item = ChatEvent> + Send>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorCode, Reason};

    #[test]
    fn every_event_round_trips_with_its_type_tag() {
        let mut error = ApiError::unavailable("the worker died");
        error.reason = Some(Reason::WorkerFailed);
        for (event, tag) in [
            (
                ChatEvent::Started {
                    model: "m".into(),
                    base_model: "b".into(),
                    device: "cpu".into(),
                    load_seconds: 1.5,
                    note: Some(cpu_note("1a2b3c4d")),
                },
                "started",
            ),
            (
                ChatEvent::Started {
                    model: "m".into(),
                    base_model: "b".into(),
                    device: "cuda".into(),
                    load_seconds: 0.0,
                    note: None,
                },
                "started",
            ),
            (ChatEvent::Delta { text: "Hel".into() }, "delta"),
            (
                ChatEvent::Done {
                    tokens: 3,
                    seconds: 0.5,
                    first_token_seconds: Some(0.1),
                },
                "done",
            ),
            (ChatEvent::Error { error }, "error"),
        ] {
            let json = serde_json::to_value(&event).unwrap();
            assert_eq!(json["type"], tag);
            let back: ChatEvent = serde_json::from_value(json).unwrap();
            assert_eq!(back, event);
        }
    }

    #[test]
    fn an_older_engines_started_event_reads_without_a_note() {
        let e: ChatEvent = serde_json::from_str(
            r#"{"type": "started", "model": "m", "base_model": "b", "device": "cpu", "load_seconds": 0}"#,
        )
        .unwrap();
        assert!(matches!(e, ChatEvent::Started { note: None, .. }));
        let note = cpu_note("1a2b3c4d");
        assert!(note.contains("its CPU"), "{note}");
        assert!(note.contains("`brightrun models eval 1a2b3c4d --backend NAME`"));
    }

    #[test]
    fn a_body_reads_with_defaults_and_refuses_unknown_fields() {
        let body: ChatBody =
            serde_json::from_str(r#"{"messages": [{"role": "user", "content": "hi"}]}"#).unwrap();
        let request = body.into_request("abc".into());
        assert!(!request.base);
        assert_eq!(request.max_new_tokens, None);
        assert_eq!(request.messages[0].role, ChatRole::User);
        assert!(
            serde_json::from_str::<ChatBody>(r#"{"messages": [], "model": "x"}"#).is_err(),
            "the path names the model"
        );
        assert!(
            serde_json::from_str::<ChatBody>(r#"{"messages": [{"role": "tool", "content": ""}]}"#)
                .is_err()
        );
        let _ = ErrorCode::Unavailable;
    }
}
