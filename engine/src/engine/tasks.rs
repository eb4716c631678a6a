//! Background tasks. Each is a loop woken by a `Notify` or its interval, restartable and
//! idempotent: it reads what is pending from the store, so a crash at any point replays safely.

use super::Engine;
use crate::events::EngineEvent;
use std::time::Duration;

/// How long shutdown waits for per-job tasks (a start, a poll) to finish.
const JOB_TASKS_GRACE: Duration = Duration::from_secs(20);

pub(crate) fn spawn_all(engine: Engine) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tasks = vec![
            tokio::spawn(validation_loop(engine.clone())),
            tokio::spawn(dispatch_loop(engine.clone())),
            tokio::spawn(monitor_loop(engine.clone())),
            tokio::spawn(housekeeping_loop(engine.clone())),
            tokio::spawn(sweep_loop(engine.clone())),
        ];
        // The Postgres mirror, when `[mirror] url` is set: its own task, reading the log.
        if engine.mirror_configured() {
            tasks.push(tokio::spawn(crate::mirror::run(engine.mirror_context())));
        } else {
            // A mirror turned off must not hold the change log back for ever.
            let store = engine.inner.store.clone();
            let forgot =
                crate::store::off_runtime(move || store.forget_consumer(crate::mirror::CONSUMER))
                    .await;
            if let Ok(Ok(true)) = forgot {
                tracing::info!("mirror: off; the change log no longer waits for it");
            }
        }
        tasks.extend(consumers(&engine).await);
        for t in tasks {
            let _ = t.await;
        }
        // The loops have stopped: no new per-job task starts; let those running finish their
        // write (bounded, so a hung backend call cannot hold shutdown).
        engine.drain_job_tasks().await;
    })
}

/// The webhooks and the experiment trackers: each a durable consumer of the change log,
/// started when configured and forgotten (so compaction no longer waits) when not.
async fn consumers(engine: &Engine) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    let mut off = Vec::new();
    if engine.inner.config.webhooks.is_empty() {
        off.push(crate::webhooks::CONSUMER);
    } else {
        tasks.push(tokio::spawn(crate::webhooks::run(engine.webhook_context())));
    }
    let (started, stopped) = crate::tracking::start(engine.tracking_context());
    tasks.extend(started);
    off.extend(stopped);
    for name in off {
        let store = engine.inner.store.clone();
        let forgot = crate::store::off_runtime(move || store.forget_consumer(name)).await;
        if let Ok(Ok(true)) = forgot {
            tracing::info!("{name}: off; the change log no longer waits for it");
        }
    }
    tasks
}

impl Engine {
    pub(crate) fn webhook_context(&self) -> crate::webhooks::WebhookContext {
        crate::webhooks::WebhookContext {
            store: self.inner.store.clone(),
            config: self.inner.config.clone(),
            secrets: self.inner.secrets.clone(),
            shared: self.inner.webhooks.clone(),
            shutdown: self.inner.shutdown.clone(),
        }
    }

    pub(crate) fn tracking_context(&self) -> crate::tracking::TrackingContext {
        crate::tracking::TrackingContext {
            store: self.inner.store.clone(),
            config: self.inner.config.clone(),
            secrets: self.inner.secrets.clone(),
            paths: self.inner.paths.clone(),
            shared: self.inner.tracking.clone(),
            shutdown: self.inner.shutdown.clone(),
        }
    }

    /// The configured webhooks and how their deliveries stand.
    pub async fn webhooks(&self) -> super::Result<Vec<crate::domain::WebhookInfo>> {
        self.on_store(|e| {
            Ok(crate::webhooks::list(
                &e.inner.store,
                &e.inner.config,
                &e.inner.secrets,
            )?)
        })
        .await
    }

    /// Sends a signed test event to one webhook now.
    pub async fn test_webhook(&self, name: &str) -> super::Result<crate::domain::WebhookDelivery> {
        if !self.inner.config.webhooks.iter().any(|w| w.name == name) {
            return Err(super::EngineError::NotFound {
                kind: super::IdKind::Webhook,
                query: name.to_string(),
            });
        }
        let i = &self.inner;
        crate::webhooks::test(&i.store, &i.config, &i.secrets, name)
            .await
            .map_err(super::EngineError::Invalid)
    }

    /// The delivery log, newest first (of one webhook; only the failed).
    pub async fn webhook_deliveries(
        &self,
        webhook: Option<String>,
        failed: bool,
        page: crate::store::Page,
    ) -> super::Result<Vec<crate::domain::WebhookDelivery>> {
        if let Some(w) = &webhook
            && !self.inner.config.webhooks.iter().any(|c| &c.name == w)
        {
            return Err(super::EngineError::NotFound {
                kind: super::IdKind::Webhook,
                query: w.clone(),
            });
        }
        self.on_store(move |e| {
            let all = e.inner.store.deliveries(|d| {
                webhook.as_ref().is_none_or(|w| &d.webhook == w)
                    && (!failed || d.state == crate::domain::DeliveryState::Failed)
            })?;
            Ok(all
                .into_iter()
                .map(|d| d.delivery)
                .skip(page.offset)
                .take(page.limit)
                .collect())
        })
        .await
    }

    /// Waits (at most [`JOB_TASKS_GRACE`], or a cancel's grace period and a little) for the per-job tasks in flight: at shutdown, and
    /// when a one-shot command's embedded engine is done.
    pub async fn drain_job_tasks(&self) {
        // Chat workers are not work to finish: they stop (a reply in flight ends with an error).
        self.stop_playground().await;
        let tasks = &self.inner.job_tasks;
        tasks.close();
        // A cancel's stop needs its grace period and a moment for the SIGKILL.
        let cancel = Duration::from_secs(self.inner.config.engine.cancel_grace_secs + 2);
        let grace = JOB_TASKS_GRACE.max(cancel);
        if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
            tracing::warn!(
                "shutdown: {} job task(s) still running after {}s; left to the restart's reconciliation",
                tasks.len(),
                grace.as_secs()
            );
        }
    }
}

/// Moves running sweeps on when a job changes or a metrics point arrives (at most every
/// second), and every 10 s regardless (a run refused for the budget may fit after a cost
/// settles).
async fn sweep_loop(engine: Engine) {
    let mut changes = engine.subscribe_changes();
    loop {
        engine.advance_sweeps().await;
        let deadline = tokio::time::sleep(Duration::from_secs(10));
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = engine.inner.shutdown.cancelled() => return,
                _ = &mut deadline => break,
                c = changes.recv() => match c {
                    Ok(c) if matches!(c.event, EngineEvent::Job(_) | EngineEvent::Metrics { .. }) => {
                        // Let a burst of changes settle into one look.
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        break;
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }
}

async fn validation_loop(engine: Engine) {
    let interval = Duration::from_secs(engine.inner.config.validation.interval_secs.max(1));
    // Multipart uploads nobody resumed for too long are aborted, so their parts stop costing.
    match engine.inner.objects.resume_uploads().await {
        Ok(0) => {}
        Ok(n) => tracing::info!("aborted {n} unfinished multipart uploads"),
        Err(e) => tracing::warn!("cleaning up unfinished uploads: {e}"),
    }
    loop {
        // Datasets of every user: the profile's and each token's.
        let users = engine.on_store(|e| Ok(e.every_user())).await;
        for e in users.unwrap_or_else(|_| vec![engine.clone()]) {
            if let Err(err) = e.resume_pending_datasets().await {
                tracing::error!("validation task: {err}");
            }
        }
        tokio::select! {
            _ = engine.inner.shutdown.cancelled() => break,
            _ = engine.inner.wake_validation.notified() => {}
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

async fn dispatch_loop(engine: Engine) {
    let interval = Duration::from_secs(engine.inner.config.engine.dispatch_interval_secs.max(1));
    // Retries with backoff are due between cycles: look again at least every 5 s.
    let interval = interval.min(Duration::from_secs(5));
    loop {
        if let Err(e) = engine.dispatch_cycle().await {
            tracing::error!("dispatch task: {e}");
        }
        tokio::select! {
            _ = engine.inner.shutdown.cancelled() => break,
            _ = engine.inner.wake_dispatch.notified() => {}
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

async fn monitor_loop(engine: Engine) {
    let interval = Duration::from_millis(engine.inner.config.engine.poll_interval_millis.max(50));
    loop {
        if let Err(e) = engine.monitor_cycle().await {
            tracing::error!("monitor task: {e}");
        }
        tokio::select! {
            _ = engine.inner.shutdown.cancelled() => break,
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// Storage cost accrual and budget alerts for every user, backend health, and compaction of
/// the change log, every minute.
async fn housekeeping_loop(engine: Engine) {
    loop {
        // Both scan every dataset and artifact of every user: off the async workers.
        let accrued = engine
            .on_store(|engine| {
                for e in engine.every_user() {
                    if let Err(err) = e.accrue_storage() {
                        tracing::error!("storage accrual: {err}");
                    }
                    if let Err(err) = e.check_budget() {
                        tracing::error!("budget check: {err}");
                    }
                }
                Ok(())
            })
            .await;
        if let Err(e) = accrued {
            tracing::error!("storage accrual and budget checks: {e}");
        }
        let keep = chrono::Duration::hours(
            engine
                .inner
                .config
                .engine
                .change_log_retention_hours
                .min(1 << 30) as i64,
        );
        let store = engine.inner.store.clone();
        match crate::store::off_runtime(move || store.compact_changes(crate::domain::now() - keep))
            .await
        {
            Ok(Ok(n)) if n > 0 => tracing::info!("change log: compacted {n} entries"),
            Ok(Err(e)) => tracing::error!("change log compaction: {e}"),
            _ => {}
        }
        // The object store answers (the dashboard's status bar shows it beside the backend).
        let reachable = engine.inner.objects.reachable().await;
        engine.inner.store.publish(EngineEvent::BackendHealth {
            backend: crate::events::STORAGE_HEALTH.into(),
            reachable,
        });
        // Every backend at once: one slow cluster does not delay the others' verdicts.
        engine.check_backends().await;
        tokio::select! {
            _ = engine.inner.shutdown.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
    }
}
