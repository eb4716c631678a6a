//! Background tasks. Each is a loop woken by a `Notify` or its interval, restartable and
//! idempotent: it reads what is pending from the store, so a crash at any point replays safely.

use super::Engine;
use crate::events::EngineEvent;
use std::time::Duration;

pub(crate) fn spawn_all(engine: Engine) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let tasks = [
            tokio::spawn(validation_loop(engine.clone())),
            tokio::spawn(dispatch_loop(engine.clone())),
            tokio::spawn(monitor_loop(engine.clone())),
            tokio::spawn(housekeeping_loop(engine.clone())),
        ];
        for t in tasks {
            let _ = t.await;
        }
    })
}

async fn validation_loop(engine: Engine) {
    let interval = Duration::from_secs(engine.inner.config.validation.interval_secs.max(1));
    loop {
        if let Err(e) = engine.resume_pending_datasets().await {
            tracing::error!("validation task: {e}");
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

/// Storage cost accrual, budget alerts and backend health, every minute.
async fn housekeeping_loop(engine: Engine) {
    loop {
        if let Err(e) = engine.accrue_storage() {
            tracing::error!("storage accrual: {e}");
        }
        if let Err(e) = engine.check_budget() {
            tracing::error!("budget check: {e}");
        }
        for (name, backend) in &engine.inner.backends {
            let reachable = backend.healthy().await;
            engine.inner.store.publish(EngineEvent::BackendHealth {
                backend: name.clone(),
                reachable,
            });
        }
        tokio::select! {
            _ = engine.inner.shutdown.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
    }
}
