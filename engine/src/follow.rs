//! Following the change log as a durable consumer: the loop the webhooks and the experiment
//! trackers share. A consumer reads batches of changes after its stored position, applies
//! them, then commits the new position; a failure backs off (1 s doubling to 30 s) and tries
//! the same batch again, so an outage or a restart loses nothing. What a consumer does
//! twice (a batch applied but not yet committed when the engine died) it must make harmless:
//! each one says how.

use crate::domain::{Timestamp, now};
use crate::events::Sequenced;
use crate::store::{LogBounds, Store, StoreError};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Changes read per batch.
const BATCH: usize = 500;
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A durable consumer of the change log.
#[async_trait::async_trait]
pub(crate) trait Consumer: Send {
    /// The name its position is stored under.
    fn name(&self) -> &str;
    /// Where it starts when it has no stored position (first start).
    fn start_at(&self, bounds: LogBounds) -> u64 {
        bounds.first.saturating_sub(1)
    }
    /// Applies a batch of consecutive changes. An error leaves the position where it was.
    async fn apply(&mut self, changes: &[Arc<Sequenced>]) -> Result<(), String>;
    /// Stores the position after a batch was applied (by default on its own; a consumer whose
    /// effect is in the store commits both in one transaction).
    async fn commit(&mut self, store: &Store, seq: u64) -> Result<(), String> {
        let (store, name) = (store.clone(), self.name().to_string());
        on_store(move || store.ack_changes(&name, seq)).await
    }
}

/// How a consumer is doing, for `status` lines and `webhooks list`.
#[derive(Clone, Debug, Default)]
pub struct FollowStatus {
    pub position: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
}

/// A consumer's status shared with the API (a short lock, never held across I/O).
pub type SharedStatus = Arc<Mutex<FollowStatus>>;

pub(crate) async fn on_store<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, String> {
    match crate::store::off_runtime(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the engine is shutting down".into()),
    }
}

/// Runs `consumer` until `shutdown`.
pub(crate) async fn follow(
    store: Store,
    mut consumer: impl Consumer,
    status: SharedStatus,
    shutdown: CancellationToken,
) {
    let mut failures = 0u32;
    loop {
        let step = tokio::select! {
            r = step(&store, &mut consumer, &status) => r,
            _ = shutdown.cancelled() => return,
        };
        match step {
            Ok(true) => failures = 0,
            Ok(false) => {
                failures = 0;
                tokio::select! {
                    _ = wait_for_change(&store, &status) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::warn!("{}: {e}", consumer.name());
                set(&status, |s| {
                    s.last_error = Some(e);
                    s.last_error_at = Some(now());
                });
                let backoff = Duration::from_millis(
                    (500u64 << failures.min(6)).min(MAX_BACKOFF.as_millis() as u64),
                );
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        }
    }
}

fn set(status: &SharedStatus, f: impl FnOnce(&mut FollowStatus)) {
    f(&mut status.lock().unwrap_or_else(|p| p.into_inner()));
}

/// One batch: `Ok(true)` when it applied something (look again at once).
async fn step(
    store: &Store,
    consumer: &mut impl Consumer,
    status: &SharedStatus,
) -> Result<bool, String> {
    let name = consumer.name().to_string();
    let (acked, bounds) = {
        let store = store.clone();
        on_store(move || Ok((store.acked_changes(&name)?, store.change_bounds()?))).await?
    };
    let pos = match acked {
        Some(p) => p,
        None => {
            let p = consumer.start_at(bounds);
            consumer.commit(store, p).await?;
            p
        }
    };
    set(status, |s| s.position = pos);
    if pos >= bounds.last {
        return Ok(false);
    }
    let changes = {
        let store = store.clone();
        on_store(move || store.changes_after(pos, BATCH)).await?
    };
    let Some(last) = changes.last().map(|c| c.seq) else {
        return Ok(false);
    };
    if changes[0].seq > pos + 1 {
        tracing::warn!(
            "{}: the change log no longer holds seqs {} to {} (compacted); going on from {}",
            consumer.name(),
            pos + 1,
            changes[0].seq - 1,
            changes[0].seq
        );
    }
    consumer.apply(&changes).await?;
    consumer.commit(store, last).await?;
    set(status, |s| {
        s.position = last;
        s.last_error = None;
    });
    Ok(true)
}

/// Waits for a change after the consumer's position (or 5 s).
async fn wait_for_change(store: &Store, status: &SharedStatus) {
    let mut rx = store.subscribe_changes();
    let pos = status.lock().map(|s| s.position).unwrap_or(0);
    let s = store.clone();
    if on_store(move || s.last_seq()).await.unwrap_or(0) > pos {
        return;
    }
    tokio::select! {
        _ = rx.recv() => {}
        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
    }
}
