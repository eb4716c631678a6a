//! Webhooks (`[[webhooks]]`, `brightrun webhooks`): what the engine POSTs to a team's own
//! endpoints when a record changes, and the log of each delivery.

use super::Timestamp;
use serde::{Deserialize, Serialize};

/// Every event type a webhook may subscribe to (`events = [...]`; empty: all of them).
pub const WEBHOOK_EVENTS: [&str; 9] = [
    "job.queued",
    "job.started",
    "job.completed",
    "job.failed",
    "job.cancelled",
    "dataset.ready",
    "dataset.error",
    "model.ready",
    "budget.alert",
];

/// A configured webhook and how its deliveries stand.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WebhookInfo {
    pub name: String,
    /// The endpoint, without its query string or credentials (they may hold a token).
    pub url: String,
    /// The event types it receives.
    pub events: Vec<String>,
    /// `standard` (the record as JSON) or `slack` (a Slack-compatible `{"text": …}`).
    pub format: String,
    /// The name of the secret holding its signing key; never the key.
    pub secret: String,
    /// Whether that secret is set (a webhook without its key sends nothing).
    pub secret_present: bool,
    pub pending: u64,
    pub delivered: u64,
    pub failed: u64,
    pub last_attempt_at: Option<Timestamp>,
    /// The last answer's HTTP status, or why there was none.
    pub last_result: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not yet answered with a 2xx; tried again with backoff.
    Pending,
    /// Answered with a 2xx.
    Delivered,
    /// Not delivered within the webhook's retry window; no further tries.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }
}

/// One event to one webhook: the delivery log's line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WebhookDelivery {
    /// The `webhook-id`: the same on every try, so a receiver can drop duplicates.
    pub id: String,
    pub webhook: String,
    pub event_type: String,
    pub state: DeliveryState,
    pub attempts: u32,
    /// The HTTP status of the last try, when the endpoint answered.
    pub last_status: Option<u16>,
    /// Why the last try failed, when it did.
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub last_attempt_at: Option<Timestamp>,
    pub next_attempt_at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
}

impl WebhookDelivery {
    /// The last try's result in a few words: `HTTP 204`, or why there was no answer.
    pub fn result(&self) -> String {
        match (self.last_status, &self.last_error) {
            (Some(s), None) => format!("HTTP {s}"),
            (Some(s), Some(e)) => format!("HTTP {s}: {e}"),
            (None, Some(e)) => e.clone(),
            (None, None) => "not tried yet".into(),
        }
    }
}

/// How one durable consumer of the change log (MLflow, TensorBoard, the webhooks) is doing:
/// `brightrun tracking status`, `GET /api/tracking`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConsumerStatus {
    /// `mlflow`, `tensorboard` or `webhooks`.
    pub name: String,
    /// Where it sends: the server, the folder, the number of webhooks.
    pub target: String,
    /// The last change it has applied.
    pub position: u64,
    /// Changes committed and not yet applied.
    pub behind: u64,
    /// Why the last try failed, until one succeeds.
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
}
