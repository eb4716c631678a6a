//! `GET /metrics`: Prometheus text. Request counts and latencies per operation, and the
//! durations of validations and training runs that finished while the daemon ran (followed
//! on the change log), are kept in memory; job counts come from the store's indexes at
//! scrape time (keys only, no decoding) and storage bytes from the records.
//!
//! Engine-wide figures are for callers who see the engine (`LocalApi::sees_engine`: the owner,
//! or the profile's user with its own token). Any other token holder gets its own user's job
//! counts, queue depth, success ratio and storage bytes, and nothing else: no other user's
//! numbers, no request rates, no change-log seq.

use super::{Caller, Shared};
use crate::domain::JobStatus;
use crate::events::EngineEvent;
use axum::extract::State;
use axum::response::IntoResponse;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Request latency buckets, in seconds.
const BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];
/// From a dataset's creation to its verdict (upload and validation), in seconds.
const VALIDATION_BUCKETS: [f64; 10] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];
/// A training run from start to end, in seconds.
const TRAINING_BUCKETS: [f64; 10] = [
    30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0, 86400.0,
];

struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
    errors: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
            errors: 0,
        }
    }

    fn observe(&mut self, v: f64) {
        for (i, b) in self.bounds.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in self.bounds.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {}",
                self.counts[i]
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

pub(crate) struct Metrics {
    calls: Mutex<BTreeMap<&'static str, Histogram>>,
    validations: Mutex<Histogram>,
    /// By final status (completed, failed, cancelled).
    training: Mutex<BTreeMap<&'static str, Histogram>>,
    subscribers: Arc<AtomicI64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            calls: Mutex::new(BTreeMap::new()),
            validations: Mutex::new(Histogram::new(&VALIDATION_BUCKETS)),
            training: Mutex::new(BTreeMap::new()),
            subscribers: Default::default(),
        }
    }
}

/// Counts an open event stream while it lives.
pub(crate) struct SubscriberGuard(Arc<AtomicI64>);

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn observe_call(&self, op: &'static str, took: Duration, ok: bool) {
        let mut calls = self.calls.lock().expect("metrics lock");
        let h = calls.entry(op).or_insert_with(|| Histogram::new(&BUCKETS));
        h.observe(took.as_secs_f64());
        if !ok {
            h.errors += 1;
        }
    }

    pub fn subscriber(&self) -> SubscriberGuard {
        self.subscribers.fetch_add(1, Ordering::Relaxed);
        SubscriberGuard(self.subscribers.clone())
    }

    /// Follows the change log and times what finishes: datasets reaching a verdict, jobs
    /// reaching a terminal status (each once). Ends with the engine or the metrics.
    pub fn follow(self: &Arc<Self>, engine: crate::Engine) {
        let me = Arc::downgrade(self);
        let mut rx = engine.subscribe_changes();
        tokio::spawn(async move {
            let mut seen = HashSet::new();
            loop {
                let c = match rx.recv().await {
                    Ok(c) => c,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                };
                let Some(m) = me.upgrade() else { return };
                let secs = |a: crate::domain::Timestamp, b: crate::domain::Timestamp| {
                    (b - a).num_milliseconds().max(0) as f64 / 1e3
                };
                match &c.event {
                    EngineEvent::Dataset(d) => {
                        if let Some(v) = d.validated_at
                            && seen.insert(d.id.0)
                        {
                            m.validations
                                .lock()
                                .expect("metrics lock")
                                .observe(secs(d.created_at, v));
                        }
                    }
                    EngineEvent::Job(j) if j.status.is_terminal() => {
                        if let (Some(a), Some(b)) = (j.started_at, j.completed_at)
                            && seen.insert(j.id.0)
                        {
                            m.training
                                .lock()
                                .expect("metrics lock")
                                .entry(j.status.as_str())
                                .or_insert_with(|| Histogram::new(&TRAINING_BUCKETS))
                                .observe(secs(a, b));
                        }
                    }
                    _ => {}
                }
            }
        });
    }
}

fn gauge(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

pub(crate) async fn prometheus(State(state): State<Shared>, caller: Caller) -> impl IntoResponse {
    let mut out = String::new();
    let everyone = caller.api.sees_engine();
    let engine = if everyone {
        state.api.engine().clone()
    } else {
        caller.api.engine().clone()
    };
    let (counts, bytes, seq) = crate::store::off_runtime(move || {
        let user = engine.user_id();
        let counts = JobStatus::ALL
            .iter()
            .map(|s| {
                let n = if everyone {
                    engine.store().count_jobs_in_status(*s)
                } else {
                    engine.store().count_jobs(user, Some(*s))
                };
                (*s, n.unwrap_or(0))
            })
            .collect::<Vec<_>>();
        let (mut datasets, mut models) = (0u64, 0u64);
        let users = if everyone {
            engine.every_user()
        } else {
            vec![engine.clone()]
        };
        for e in users {
            datasets += e
                .datasets(None, crate::Page::ALL)
                .map(|v| v.iter().map(|d| d.file_size).sum::<u64>())
                .unwrap_or(0);
            models += e
                .artifacts(crate::Page::ALL)
                .map(|v| v.iter().flat_map(|a| &a.files).map(|f| f.size).sum::<u64>())
                .unwrap_or(0);
        }
        let seq = engine.store().last_seq().unwrap_or(0);
        (
            counts,
            [("lora-datasets", datasets), ("lora-models", models)],
            seq,
        )
    })
    .await
    .unwrap_or_default();
    gauge(
        &mut out,
        "brightrun_jobs",
        "Training jobs by status (the caller's own, unless it sees the engine).",
        "gauge",
    );
    for (s, n) in &counts {
        let _ = writeln!(out, "brightrun_jobs{{status=\"{}\"}} {n}", s.as_str());
    }
    let get = |s: JobStatus| {
        counts
            .iter()
            .find(|(x, _)| *x == s)
            .map(|c| c.1)
            .unwrap_or(0)
    };
    gauge(
        &mut out,
        "brightrun_queue_depth",
        "Jobs waiting to start.",
        "gauge",
    );
    let _ = writeln!(out, "brightrun_queue_depth {}", get(JobStatus::Queued));
    let finished = get(JobStatus::Completed) + get(JobStatus::Failed) + get(JobStatus::Cancelled);
    let ratio = if finished == 0 {
        0.0
    } else {
        get(JobStatus::Completed) as f64 / finished as f64
    };
    gauge(
        &mut out,
        "brightrun_job_success_ratio",
        "Completed jobs over finished ones.",
        "gauge",
    );
    let _ = writeln!(out, "brightrun_job_success_ratio {ratio}");
    gauge(
        &mut out,
        "brightrun_storage_bytes",
        "Bytes stored, by bucket.",
        "gauge",
    );
    for (bucket, n) in bytes {
        let _ = writeln!(out, "brightrun_storage_bytes{{bucket=\"{bucket}\"}} {n}");
    }
    if !everyone {
        return (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4",
            )],
            out,
        );
    }
    gauge(
        &mut out,
        "brightrun_validation_seconds",
        "From a dataset's creation to its verdict, for verdicts since the daemon started.",
        "histogram",
    );
    state
        .metrics
        .validations
        .lock()
        .expect("metrics lock")
        .write(&mut out, "brightrun_validation_seconds", "");
    gauge(
        &mut out,
        "brightrun_training_seconds",
        "Training runs from start to end, by final status, since the daemon started.",
        "histogram",
    );
    for (status, h) in state.metrics.training.lock().expect("metrics lock").iter() {
        h.write(
            &mut out,
            "brightrun_training_seconds",
            &format!("status=\"{status}\""),
        );
    }
    gauge(
        &mut out,
        "brightrun_change_log_seq",
        "The change log's last seq.",
        "counter",
    );
    let _ = writeln!(out, "brightrun_change_log_seq {seq}");
    gauge(
        &mut out,
        "brightrun_event_subscribers",
        "Open change streams.",
        "gauge",
    );
    let _ = writeln!(
        out,
        "brightrun_event_subscribers {}",
        state.metrics.subscribers.load(Ordering::Relaxed)
    );
    gauge(
        &mut out,
        "brightrun_api_request_seconds",
        "Engine API request latency by operation.",
        "histogram",
    );
    {
        let calls = state.metrics.calls.lock().expect("metrics lock");
        for (op, h) in calls.iter() {
            h.write(
                &mut out,
                "brightrun_api_request_seconds",
                &format!("op=\"{op}\""),
            );
        }
        gauge(
            &mut out,
            "brightrun_api_request_errors_total",
            "Engine API requests that failed, by operation.",
            "counter",
        );
        for (op, h) in calls.iter() {
            let _ = writeln!(
                out,
                "brightrun_api_request_errors_total{{op=\"{op}\"}} {}",
                h.errors
            );
        }
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    )
}
