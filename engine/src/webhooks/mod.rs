//! Webhooks (`[[webhooks]]`): a durable consumer of the change log turns record changes into
//! events (`job.completed`, `model.ready`, …; see [`events`]) and enqueues one delivery per
//! subscribed webhook in the same store transaction as its position, so each event is
//! enqueued once whatever crashes. The sender ([`send`]) POSTs due deliveries, signed the
//! Standard Webhooks way, and retries with backoff until a 2xx or the webhook's retry window
//! ends: at least once, with a stable `webhook-id` receivers drop duplicates by.

mod events;
mod send;
mod sign;

use crate::config::{Config, WebhookConfig};
use crate::domain::*;
use crate::events::Sequenced;
use crate::follow::{Consumer, SharedStatus, on_store};
use crate::secrets::Secrets;
use crate::store::{LogBounds, Store, StoredDelivery};
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use sign::SigningKey;

/// The change-log consumer name the webhooks acknowledge under.
pub const CONSUMER: &str = "webhooks";

/// The webhooks' state shared by their tasks and the API.
#[derive(Default)]
pub struct Shared {
    /// Wakes the sender (a delivery enqueued).
    pub wake: Notify,
    pub follow: SharedStatus,
}

/// What the webhook tasks need of the engine.
#[derive(Clone)]
pub(crate) struct WebhookContext {
    pub store: Store,
    pub config: Config,
    pub secrets: Secrets,
    pub shared: Arc<Shared>,
    pub shutdown: CancellationToken,
}

/// Runs the consumer and the sender until shutdown. Started when `[[webhooks]]` has entries.
pub(crate) async fn run(ctx: WebhookContext) {
    let consumer = Enqueuer {
        webhooks: ctx.config.webhooks.clone(),
        pending: Vec::new(),
        shared: ctx.shared.clone(),
    };
    let follow = crate::follow::follow(
        ctx.store.clone(),
        consumer,
        ctx.shared.follow.clone(),
        ctx.shutdown.clone(),
    );
    tokio::join!(follow, send::run(ctx.clone()));
}

/// The consumer: changes → deliveries.
struct Enqueuer {
    webhooks: Vec<WebhookConfig>,
    /// The deliveries of the batch being applied, written with the position.
    pending: Vec<StoredDelivery>,
    shared: Arc<Shared>,
}

#[async_trait::async_trait]
impl Consumer for Enqueuer {
    fn name(&self) -> &str {
        CONSUMER
    }

    /// Webhooks are told of what happens from when they are configured, not of the past.
    fn start_at(&self, bounds: LogBounds) -> u64 {
        bounds.last
    }

    async fn apply(&mut self, changes: &[Arc<Sequenced>]) -> Result<(), String> {
        self.pending = changes
            .iter()
            .filter_map(|c| events::of_change(c))
            .flat_map(|e| {
                self.webhooks
                    .iter()
                    .filter(move |w| w.events.is_empty() || w.events.iter().any(|k| k == e.kind))
                    .map(move |w| delivery(w, &e))
            })
            .collect();
        Ok(())
    }

    async fn commit(&mut self, store: &Store, seq: u64) -> Result<(), String> {
        let (store, pending) = (store.clone(), std::mem::take(&mut self.pending));
        let any = !pending.is_empty();
        on_store(move || {
            store.write(|w| {
                for d in &pending {
                    w.enqueue_delivery(d)?;
                }
                w.ack_changes(CONSUMER, seq)
            })
        })
        .await?;
        if any {
            self.shared.wake.notify_one();
        }
        Ok(())
    }
}

/// A new delivery of `event` to `webhook`, due now.
fn delivery(webhook: &WebhookConfig, event: &events::Event) -> StoredDelivery {
    let t = now();
    StoredDelivery::new(
        WebhookDelivery {
            id: events::delivery_id(&webhook.name, event),
            webhook: webhook.name.clone(),
            event_type: event.kind.into(),
            state: DeliveryState::Pending,
            attempts: 0,
            last_status: None,
            last_error: None,
            created_at: t,
            last_attempt_at: None,
            next_attempt_at: Some(t),
            delivered_at: None,
        },
        events::body(&webhook.format, event),
    )
}

/// The endpoint as shown: scheme, host and path, never a query string (it may hold a token).
pub fn display_url(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or("").to_string()
}

/// A webhook's signing key from its secret; the error names the secret, never its value.
pub(crate) fn key_of(secrets: &Secrets, w: &WebhookConfig) -> Result<SigningKey, String> {
    let name = w.secret.to_ascii_lowercase();
    let value = secrets.get(&name).ok_or_else(|| {
        format!(
            "the secret `{name}` is not set (BRIGHTRUN_SECRET_{} or secrets.toml)",
            name.to_ascii_uppercase()
        )
    })?;
    SigningKey::parse(value.expose()).map_err(|e| format!("the secret `{name}`: {e}"))
}

/// `webhooks list`: each webhook and how its deliveries stand.
pub(crate) fn list(
    store: &Store,
    config: &Config,
    secrets: &Secrets,
) -> Result<Vec<WebhookInfo>, crate::store::StoreError> {
    let all = store.deliveries(|_| true)?;
    Ok(config
        .webhooks
        .iter()
        .map(|w| {
            let mine: Vec<&WebhookDelivery> = all
                .iter()
                .map(|d| &d.delivery)
                .filter(|d| d.webhook == w.name)
                .collect();
            let count = |s: DeliveryState| mine.iter().filter(|d| d.state == s).count() as u64;
            let last = mine
                .iter()
                .filter(|d| d.last_attempt_at.is_some())
                .max_by_key(|d| d.last_attempt_at);
            WebhookInfo {
                name: w.name.clone(),
                url: display_url(&w.url),
                events: if w.events.is_empty() {
                    WEBHOOK_EVENTS.iter().map(|e| e.to_string()).collect()
                } else {
                    w.events.clone()
                },
                format: w.format.clone(),
                secret: w.secret.clone(),
                secret_present: key_of(secrets, w).is_ok(),
                pending: count(DeliveryState::Pending),
                delivered: count(DeliveryState::Delivered),
                failed: count(DeliveryState::Failed),
                last_attempt_at: last.and_then(|d| d.last_attempt_at),
                last_result: last.map(|d| d.result()),
            }
        })
        .collect())
}

/// `webhooks test NAME`: a signed `webhook.test` event sent now, once, and logged.
pub(crate) async fn test(
    store: &Store,
    config: &Config,
    secrets: &Secrets,
    name: &str,
) -> Result<WebhookDelivery, String> {
    let w = config
        .webhooks
        .iter()
        .find(|w| w.name == name)
        .ok_or_else(|| format!("no webhook is named `{name}` (`brightrun webhooks list`)"))?;
    let event = events::Event {
        kind: "webhook.test",
        key: format!("test:{}", uuid::Uuid::new_v4()),
        at: now(),
        data: serde_json::json!({"webhook": w.name, "message": "a test event from BrightRun"}),
        summary: format!("a test event for webhook {}", w.name),
    };
    let mut d = delivery(w, &event);
    send::attempt(&send::client(), secrets, w, &mut d).await;
    // A test is sent once: it is never tried again.
    if d.delivery.state == DeliveryState::Pending {
        d.delivery.state = DeliveryState::Failed;
        d.delivery.next_attempt_at = None;
    }
    let (store, logged) = (store.clone(), d.clone());
    on_store(move || store.put_delivery(&logged)).await?;
    Ok(d.delivery)
}
