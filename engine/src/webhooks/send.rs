//! The sender: POSTs due deliveries, several at once (a slow endpoint holds up only its own
//! tries, each bounded by the webhook's `timeout_secs`), and records each try in the delivery
//! log. A 2xx delivers; anything else is tried again after a backoff (1 s, 5 s, 15 s, 30 s,
//! 1 min, 2 min, 5 min, 10 min, 30 min, then hourly) until the webhook's retry window ends.

use super::{WebhookContext, key_of};
use crate::config::WebhookConfig;
use crate::domain::*;
use crate::follow::on_store;
use crate::secrets::Secrets;
use crate::store::StoredDelivery;
use futures::StreamExt;
use std::time::Duration;

/// Tries in flight at once.
const CONCURRENCY: usize = 8;
/// Finished deliveries are kept this long in the log.
const KEEP_DAYS: i64 = 30;
const BACKOFF_SECS: [i64; 10] = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600];

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .user_agent(concat!("BrightRun-Webhooks/", env!("CARGO_PKG_VERSION")))
        // A redirect could carry the signed body somewhere else.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .build()
        .expect("the HTTP client builds")
}

pub(crate) async fn run(ctx: WebhookContext) {
    let client = client();
    let mut pruned_at: Option<std::time::Instant> = None;
    loop {
        if pruned_at.is_none_or(|t| t.elapsed() > Duration::from_secs(3600)) {
            let store = ctx.store.clone();
            let before = now() - chrono::Duration::days(KEEP_DAYS);
            if let Err(e) = on_store(move || store.prune_deliveries(before)).await {
                tracing::warn!("webhooks: pruning the delivery log: {e}");
            }
            pruned_at = Some(std::time::Instant::now());
        }
        let next = match send_due(&ctx, &client).await {
            Ok(next) => next,
            Err(e) => {
                tracing::warn!("webhooks: {e}");
                Some(now() + chrono::Duration::seconds(5))
            }
        };
        let wait = next
            .map(|t| (t - now()).to_std().unwrap_or_default())
            .unwrap_or(Duration::from_secs(60))
            .min(Duration::from_secs(60));
        tokio::select! {
            _ = ctx.shared.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = ctx.shutdown.cancelled() => return,
        }
    }
}

/// Sends every due delivery; returns when the next pending one is due.
async fn send_due(
    ctx: &WebhookContext,
    client: &reqwest::Client,
) -> Result<Option<Timestamp>, String> {
    let store = ctx.store.clone();
    let pending = on_store(move || store.deliveries(|d| d.state == DeliveryState::Pending)).await?;
    let t = now();
    let (due, later): (Vec<_>, Vec<_>) = pending
        .into_iter()
        .partition(|d| d.delivery.next_attempt_at.is_none_or(|n| n <= t));
    let mut next = later
        .iter()
        .filter_map(|d| d.delivery.next_attempt_at)
        .min();
    let mut tries = futures::stream::iter(due.into_iter().map(|mut d| async move {
        match ctx
            .config
            .webhooks
            .iter()
            .find(|w| w.name == d.delivery.webhook)
        {
            Some(w) => attempt(client, &ctx.secrets, w, &mut d).await,
            None => give_up(&mut d, "the webhook is no longer configured".into()),
        }
        d
    }))
    .buffer_unordered(CONCURRENCY);
    while let Some(d) = tries.next().await {
        if let Some(n) = d.delivery.next_attempt_at {
            next = Some(next.map_or(n, |m| m.min(n)));
        }
        let store = ctx.store.clone();
        on_store(move || store.put_delivery(&d)).await?;
    }
    Ok(next)
}

/// One try of `d`, recorded in it.
pub(crate) async fn attempt(
    client: &reqwest::Client,
    secrets: &Secrets,
    w: &WebhookConfig,
    d: &mut StoredDelivery,
) {
    let t = now();
    d.delivery.attempts += 1;
    d.delivery.last_attempt_at = Some(t);
    let key = match key_of(secrets, w) {
        Ok(k) => k,
        Err(e) => return retry_or_fail(w, d, None, e),
    };
    let signature = key.sign(&d.delivery.id, t.timestamp(), d.body.as_bytes());
    let sent = client
        .post(&w.url)
        .timeout(Duration::from_secs(w.timeout_secs))
        .header("content-type", "application/json")
        .header("webhook-id", &d.delivery.id)
        .header("webhook-timestamp", t.timestamp().to_string())
        .header("webhook-signature", signature)
        .body(d.body.clone())
        .send()
        .await;
    match sent {
        Ok(r) if r.status().is_success() => {
            let d = &mut d.delivery;
            (d.state, d.last_status, d.last_error) =
                (DeliveryState::Delivered, Some(r.status().as_u16()), None);
            (d.delivered_at, d.next_attempt_at) = (Some(now()), None);
        }
        Ok(r) => {
            let status = r.status();
            retry_or_fail(
                w,
                d,
                Some(status.as_u16()),
                format!("the endpoint answered {status}"),
            )
        }
        // The error's own text names the URL, query string (a token) and all: left out.
        Err(e) => {
            let why = describe(&e.without_url());
            retry_or_fail(w, d, None, format!("{}: {why}", super::display_url(&w.url)))
        }
    }
}

/// The error and its causes, without the URL.
fn describe(e: &reqwest::Error) -> String {
    let mut m = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        m.push_str(": ");
        m.push_str(&s.to_string());
        src = s.source();
    }
    m
}

fn retry_or_fail(w: &WebhookConfig, d: &mut StoredDelivery, status: Option<u16>, error: String) {
    d.delivery.last_status = status;
    let window = chrono::Duration::minutes(w.retry_minutes as i64);
    if now() - d.delivery.created_at >= window {
        give_up(d, error);
        return;
    }
    let i = (d.delivery.attempts as usize)
        .saturating_sub(1)
        .min(BACKOFF_SECS.len() - 1);
    d.delivery.last_error = Some(error);
    d.delivery.next_attempt_at = Some(now() + chrono::Duration::seconds(BACKOFF_SECS[i]));
}

fn give_up(d: &mut StoredDelivery, error: String) {
    tracing::warn!(
        "webhook {}: delivery {} ({}) failed for good: {error}",
        d.delivery.webhook,
        d.delivery.id,
        d.delivery.event_type
    );
    d.delivery.state = DeliveryState::Failed;
    d.delivery.last_error = Some(error);
    d.delivery.next_attempt_at = None;
}
