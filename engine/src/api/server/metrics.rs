//! `GET /metrics`: Prometheus text. Request counts and latencies per operation are kept in
//! memory; job counts come from the store's indexes at scrape time (keys only, no decoding).

use super::Shared;
use crate::domain::JobStatus;
use axum::extract::State;
use axum::response::IntoResponse;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Latency buckets, in seconds.
const BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
    errors: u64,
}

#[derive(Default)]
pub(crate) struct Metrics {
    calls: Mutex<BTreeMap<&'static str, Histogram>>,
    subscribers: std::sync::Arc<AtomicI64>,
}

/// Counts an open event stream while it lives.
pub(crate) struct SubscriberGuard(std::sync::Arc<AtomicI64>);

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn observe_call(&self, op: &'static str, took: Duration, ok: bool) {
        let secs = took.as_secs_f64();
        let mut calls = self.calls.lock().expect("metrics lock");
        let h = calls.entry(op).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
        if !ok {
            h.errors += 1;
        }
    }

    pub fn subscriber(&self) -> SubscriberGuard {
        self.subscribers.fetch_add(1, Ordering::Relaxed);
        SubscriberGuard(self.subscribers.clone())
    }
}

pub(crate) async fn prometheus(State(state): State<Shared>) -> impl IntoResponse {
    let mut out = String::new();
    let store = state.api.engine().store().clone();
    let counts = tokio::task::spawn_blocking(move || {
        JobStatus::ALL
            .iter()
            .map(|s| (*s, store.count_jobs_in_status(*s).unwrap_or(0)))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    let _ = writeln!(out, "# HELP brightrun_jobs Training jobs by status.");
    let _ = writeln!(out, "# TYPE brightrun_jobs gauge");
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
    let _ = writeln!(out, "# HELP brightrun_queue_depth Jobs waiting to start.");
    let _ = writeln!(out, "# TYPE brightrun_queue_depth gauge");
    let _ = writeln!(out, "brightrun_queue_depth {}", get(JobStatus::Queued));
    let finished = get(JobStatus::Completed) + get(JobStatus::Failed) + get(JobStatus::Cancelled);
    let _ = writeln!(
        out,
        "# HELP brightrun_job_success_ratio Completed jobs over finished ones."
    );
    let _ = writeln!(out, "# TYPE brightrun_job_success_ratio gauge");
    let ratio = if finished == 0 {
        0.0
    } else {
        get(JobStatus::Completed) as f64 / finished as f64
    };
    let _ = writeln!(out, "brightrun_job_success_ratio {ratio}");
    let seq = state.api.engine().store().last_seq().unwrap_or(0);
    let _ = writeln!(
        out,
        "# HELP brightrun_change_log_seq The change log's last seq."
    );
    let _ = writeln!(out, "# TYPE brightrun_change_log_seq counter");
    let _ = writeln!(out, "brightrun_change_log_seq {seq}");
    let _ = writeln!(
        out,
        "# HELP brightrun_event_subscribers Open change streams."
    );
    let _ = writeln!(out, "# TYPE brightrun_event_subscribers gauge");
    let _ = writeln!(
        out,
        "brightrun_event_subscribers {}",
        state.metrics.subscribers.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP brightrun_api_request_seconds Engine API request latency by operation."
    );
    let _ = writeln!(out, "# TYPE brightrun_api_request_seconds histogram");
    let calls = state.metrics.calls.lock().expect("metrics lock");
    for (op, h) in calls.iter() {
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "brightrun_api_request_seconds_bucket{{op=\"{op}\",le=\"{b}\"}} {}",
                h.counts[i]
            );
        }
        let _ = writeln!(
            out,
            "brightrun_api_request_seconds_bucket{{op=\"{op}\",le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(
            out,
            "brightrun_api_request_seconds_sum{{op=\"{op}\"}} {}",
            h.sum
        );
        let _ = writeln!(
            out,
            "brightrun_api_request_seconds_count{{op=\"{op}\"}} {}",
            h.count
        );
        let _ = writeln!(
            out,
            "brightrun_api_request_errors_total{{op=\"{op}\"}} {}",
            h.errors
        );
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    )
}
