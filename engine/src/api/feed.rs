//! The change feed: "everything after seq N, then live". It subscribes before it reads the
//! log, replays from the log, then follows the broadcast, skipping seqs it has already sent
//! and going back to the log whenever it falls behind (a lagged channel, a gap). So a
//! subscriber sees every change once, in order, however slow it is. Only the caller's own
//! records pass (the seed's RLS promise).

use super::{ApiError, ChangeStream, ErrorCode, LiveStream};
use crate::Engine;
use crate::events::{EngineEvent, ProgressTask, Sequenced};
use crate::ids::*;
use crate::store::Store;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};

/// Log entries read per replay step.
const REPLAY_BATCH: usize = 1000;
/// Changes buffered per subscriber before the feed waits for it.
const FEED_BUFFER: usize = 1024;

/// Decides which events a user may see, remembering the answer per record.
pub(crate) struct Visibility {
    engine: Engine,
    jobs: HashMap<JobId, bool>,
    datasets: HashMap<DatasetId, bool>,
    models: HashMap<ArtifactId, bool>,
}

impl Visibility {
    pub fn new(engine: Engine) -> Self {
        Self {
            engine,
            jobs: HashMap::new(),
            datasets: HashMap::new(),
            models: HashMap::new(),
        }
    }

    fn user(&self) -> UserId {
        self.engine.user_id()
    }

    async fn job(&mut self, id: JobId) -> bool {
        let lookup = |s: &Store, id| s.job(id).ok().flatten().map(|j| j.user_id);
        owned(&mut self.jobs, &self.engine, id, lookup).await
    }

    pub async fn allows(&mut self, event: &EngineEvent) -> bool {
        if let Some(owner) = event.user() {
            let mine = owner == self.user();
            if let EngineEvent::Job(j) = event {
                self.jobs.insert(j.id, mine);
            }
            return mine;
        }
        match event {
            EngineEvent::Metrics { job_id, .. } | EngineEvent::JobLog { job_id, .. } => {
                self.job(*job_id).await
            }
            EngineEvent::Checkpoint(c) => self.job(c.job_id).await,
            EngineEvent::Progress(p) => match &p.task {
                ProgressTask::Upload(id)
                | ProgressTask::Validation(id)
                | ProgressTask::Inspection(id) => {
                    let lookup = |s: &Store, id| s.dataset(id).ok().flatten().map(|d| d.user_id);
                    owned(&mut self.datasets, &self.engine, *id, lookup).await
                }
                ProgressTask::Download(id) => {
                    let lookup = |s: &Store, id| s.artifact(id).ok().flatten().map(|a| a.user_id);
                    owned(&mut self.models, &self.engine, *id, lookup).await
                }
                ProgressTask::TrainerEnvironment => true,
            },
            EngineEvent::BackendHealth { .. } => true,
            _ => false,
        }
    }
}

/// Whether record `id` is the engine's user's: remembered in `seen`, else looked up (off the
/// async workers) with `owner`, which answers `None` for a record not there or unreadable.
async fn owned<K>(
    seen: &mut HashMap<K, bool>,
    engine: &Engine,
    id: K,
    owner: fn(&Store, K) -> Option<UserId>,
) -> bool
where
    K: std::hash::Hash + Eq + Copy + Send + 'static,
{
    if let Some(mine) = seen.get(&id) {
        return *mine;
    }
    let store = engine.store().clone();
    let found = crate::store::off_runtime(move || owner(&store, id)).await;
    let mine = matches!(found, Ok(Some(u)) if u == engine.user_id());
    seen.insert(id, mine);
    mine
}

/// The caller's changes with seq > `after`, then live. Fails at once with `conflict` when the
/// log no longer holds seq `after + 1` (it was compacted): the client must reload.
pub async fn change_feed(engine: Engine, after: u64) -> Result<ChangeStream, ApiError> {
    // Subscribe first: whatever commits from here on is either in the log or in the channel.
    let rx = engine.subscribe_changes();
    let store = engine.store().clone();
    let bounds = crate::store::off_runtime(move || store.change_bounds())
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    if bounds.first > 0 && after + 1 < bounds.first {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "changes after seq {after} are no longer kept (the log starts at {}); reload",
                bounds.first
            ),
        )
        .with_details(format!("oldest_seq={}", bounds.first)));
    }
    if after > bounds.last {
        return Err(ApiError::invalid(
            "after",
            format!(
                "seq {after} is ahead of the change log (last {}); is this another engine?",
                bounds.last
            ),
        ));
    }
    let (tx, out) = mpsc::channel(FEED_BUFFER);
    tokio::spawn(pump(engine, after, rx, tx));
    Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(out)))
}

type Tx = mpsc::Sender<Result<Arc<Sequenced>, ApiError>>;

async fn pump(engine: Engine, mut last: u64, mut rx: broadcast::Receiver<Arc<Sequenced>>, tx: Tx) {
    let mut vis = Visibility::new(engine.clone());
    loop {
        // Replay whatever the log has past `last`.
        loop {
            let store = engine.store().clone();
            let from = last;
            let batch =
                crate::store::off_runtime(move || store.changes_after(from, REPLAY_BATCH)).await;
            let batch = match batch {
                Ok(Ok(b)) => b,
                Ok(Err(e)) => {
                    let _ = tx.send(Err(e.into())).await;
                    return;
                }
                Err(e) => {
                    let _ = tx.send(Err(ApiError::internal(e.to_string()))).await;
                    return;
                }
            };
            if batch.is_empty() {
                break;
            }
            for c in batch {
                last = c.seq;
                if vis.allows(&c.event).await && tx.send(Ok(c)).await.is_err() {
                    return;
                }
            }
        }
        // Follow live until we fall behind (or the engine stops: the stream then ends, so a
        // daemon's graceful shutdown is not held up by its subscribers).
        loop {
            let next = tokio::select! {
                r = rx.recv() => r,
                _ = tx.closed() => return,
                _ = engine.inner.shutdown.cancelled() => return,
            };
            match next {
                Ok(c) if c.seq <= last => continue,
                Ok(c) if c.seq == last + 1 => {
                    last = c.seq;
                    if vis.allows(&c.event).await && tx.send(Ok(c)).await.is_err() {
                        return;
                    }
                }
                // A gap (or a lagged channel): the log has what we missed.
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => break,
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

/// The caller's live events (logs, progress) and everyone's backend health, from now on.
pub fn live_feed(engine: Engine) -> LiveStream {
    let mut rx = engine.subscribe_live();
    let (tx, out) = mpsc::channel(FEED_BUFFER);
    tokio::spawn(async move {
        let stopping = engine.inner.shutdown.clone();
        let mut vis = Visibility::new(engine);
        loop {
            let next = tokio::select! {
                r = rx.recv() => r,
                _ = tx.closed() => return,
                _ = stopping.cancelled() => return,
            };
            match next {
                Ok(e) => {
                    // Live events may be dropped: never wait on a slow subscriber.
                    if vis.allows(&e).await
                        && let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(e)
                    {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(out))
}
