//! The `runpod` backend: RunPod Serverless (the seed's own cluster) through its HTTP API,
//! `{api_url}/{endpoint_id}/…` with `Authorization: Bearer <key>`.
//!
//! The worker (`trainer/runpod/`) is a generator handler that yields the trainer's events and
//! returns them all as its aggregated output. So:
//! - live events come from `GET /stream/{id}`, which hands out each yielded item once;
//! - a crash of the engine between reading a stream and committing it would lose those
//!   items, so when the job completes its aggregated output is read too, and every event the
//!   stream did not deliver is applied then (the cursor is the next sequence number; metrics
//!   and checkpoints below it are re-applied, which is idempotent: they are keyed by step).
//!
//! States: IN_QUEUE (with the endpoint's queue depth from `/health`), IN_PROGRESS, COMPLETED,
//! FAILED, CANCELLED, TIMED_OUT. 401 is a credentials problem, 404 a job RunPod no longer
//! knows, 429 a request to slow down (polls back off).

use super::*;
use crate::backend::BackendHealthExt;
use crate::secrets::{Secret, Secrets};
use serde::Deserialize;

const DEFAULT_API: &str = "https://api.runpod.ai/v2";

pub struct RunPodBackend {
    name: String,
    base: String,
    key: Option<Secret>,
    key_name: String,
    http: reqwest::Client,
    backoff: Backoff,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    #[serde(default)]
    status: String,
    #[serde(default)]
    output: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<serde_json::Value>,
    /// Milliseconds the job ran on a worker.
    #[serde(default)]
    execution_time: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
struct Stream {
    #[serde(default)]
    stream: Vec<StreamItem>,
}

#[derive(Debug, Deserialize)]
struct StreamItem {
    output: serde_json::Value,
}

impl RunPodBackend {
    pub fn new(name: &str, cfg: &crate::config::BackendConfig, secrets: &Secrets) -> Self {
        let key_name = cfg
            .secret
            .clone()
            .unwrap_or_else(|| "runpod_api_key".into());
        // The seed's variables are the fallback: GPU_CLUSTER_API_KEY / GPU_CLUSTER_API_URL.
        let key = secrets.get(&key_name).cloned().or_else(|| {
            std::env::var("GPU_CLUSTER_API_KEY")
                .ok()
                .filter(|k| !k.is_empty())
                .map(Secret::new)
        });
        let api = cfg
            .api_url
            .clone()
            .or_else(|| {
                std::env::var("GPU_CLUSTER_API_URL")
                    .ok()
                    .filter(|u| !u.is_empty())
            })
            .unwrap_or_else(|| DEFAULT_API.into());
        let endpoint = cfg.endpoint_id.clone().unwrap_or_default();
        Self {
            name: name.into(),
            base: format!("{}/{}", api.trim_end_matches('/'), endpoint.trim()),
            key,
            key_name,
            http: http_client(),
            backoff: Backoff::default(),
        }
    }

    fn what(&self) -> String {
        format!("RunPod endpoint of backend `{}` ({})", self.name, self.base)
    }

    fn missing_key(&self) -> BackendError {
        BackendError::Unauthorized(format!(
            "backend `{}` has no RunPod API key: set BRIGHTRUN_SECRET_{} (or `{}` in secrets.toml, or GPU_CLUSTER_API_KEY)",
            self.name,
            self.key_name.to_ascii_uppercase(),
            self.key_name
        ))
    }

    /// One API call: fails fast while backing off after a 429 or a transport failure.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Option<String>, BackendError> {
        if let Some(e) = self.backoff.waiting() {
            return Err(e);
        }
        let key = self.key.as_ref().ok_or_else(|| self.missing_key())?;
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key.expose());
        if let Some(b) = body {
            req = req.json(b);
        }
        let result = async {
            let resp = req.send().await.map_err(|e| http_error(&self.what(), e))?;
            let status = resp.status();
            let text = resp.text().await.map_err(|e| http_error(&self.what(), e))?;
            if status == reqwest::StatusCode::NOT_FOUND {
                return Ok(None);
            }
            if !status.is_success() {
                return Err(status_error(&self.what(), status, &text));
            }
            Ok(Some(text))
        }
        .await;
        self.backoff.record(&result);
        result
    }

    fn parse<T: serde::de::DeserializeOwned>(&self, text: &str) -> Result<T, BackendError> {
        serde_json::from_str(text).map_err(|e| {
            BackendError::Unavailable(format!("{} sent an unreadable answer: {e}", self.what()))
        })
    }

    /// The endpoint's queue and workers, one line.
    async fn queue_note(&self) -> Option<String> {
        let text = self
            .call(reqwest::Method::GET, "/health", None)
            .await
            .ok()??;
        let h: serde_json::Value = serde_json::from_str(&text).ok()?;
        let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
        Some(format!(
            "in RunPod's queue: {} job(s) waiting, {} running; workers {} idle, {} running",
            n(&h["jobs"]["inQueue"]),
            n(&h["jobs"]["inProgress"]),
            n(&h["workers"]["idle"]),
            n(&h["workers"]["running"]),
        ))
    }
}

/// Events in a stream's or an output's items: each item is one event, or a list of them.
fn events_in(values: impl IntoIterator<Item = serde_json::Value>) -> Vec<Envelope> {
    let mut out = Vec::new();
    for v in values {
        match v {
            serde_json::Value::Array(items) => out.extend(events_in(items)),
            other => match serde_json::from_value::<Envelope>(other.clone()) {
                Ok(e) => out.push(e),
                Err(_) => out.push(Envelope::parse_line(&other.to_string())),
            },
        }
    }
    out
}

/// The events a poll applies and the new cursor (the next sequence number): from a stream,
/// those at or after the cursor; from the final output, also the metrics and checkpoints
/// before it (the stream may have handed them to an engine that crashed before storing them;
/// applying them again is idempotent).
fn select(events: Vec<Envelope>, cursor: u64, final_output: bool) -> (Vec<Envelope>, u64) {
    let mut next = cursor;
    let mut out = Vec::new();
    for e in events {
        let refill = final_output
            && matches!(
                e.event,
                TrainerEvent::Metric { .. } | TrainerEvent::Checkpoint { .. }
            );
        if e.seq >= cursor || refill {
            next = next.max(e.seq + 1);
            out.push(e);
        }
    }
    out.sort_by_key(|e| e.seq);
    (out, next)
}

fn error_text(v: &Option<serde_json::Value>) -> String {
    match v {
        Some(serde_json::Value::String(s)) => crate::text::clean_line(s),
        Some(other) => crate::text::clean_line(&other.to_string()),
        None => "no reason given".into(),
    }
}

#[async_trait]
impl ClusterBackend for RunPodBackend {
    fn kind(&self) -> &'static str {
        "runpod"
    }

    fn data_access(&self) -> DataAccess {
        DataAccess::Urls
    }

    async fn submit(&self, job: &Submission<'_>) -> Result<String, BackendError> {
        let mut body = serde_json::json!({ "input": job.spec });
        if let Some(t) = job.timeout {
            body["policy"] = serde_json::json!({
                "executionTimeout": t.as_millis().min(u64::MAX as u128) as u64
            });
        }
        let text = self
            .call(reqwest::Method::POST, "/run", Some(&body))
            .await?
            .ok_or_else(|| {
                BackendError::Rejected(format!(
                    "{} does not exist (check `endpoint_id`)",
                    self.what()
                ))
            })?;
        #[derive(Deserialize)]
        struct Run {
            id: String,
        }
        Ok(self.parse::<Run>(&text)?.id)
    }

    async fn poll(&self, external_id: &str, cursor: u64) -> Result<PollResult, BackendError> {
        let path = format!("/status/{external_id}");
        let Some(text) = self.call(reqwest::Method::GET, &path, None).await? else {
            let mut r = PollResult::new(RemoteState::Lost, Vec::new(), cursor);
            r.note = Some(format!("{} no longer knows job {external_id}", self.what()));
            return Ok(r);
        };
        let status: Status = self.parse(&text)?;
        let ended = |status: &Status| {
            let now = crate::domain::now();
            let ran = chrono::Duration::milliseconds(status.execution_time.unwrap_or(0) as i64);
            RemoteTimes {
                started_at: status.execution_time.map(|_| now - ran),
                ended_at: Some(now),
            }
        };
        match status.status.as_str() {
            "IN_QUEUE" => {
                let mut r = PollResult::new(RemoteState::Pending, Vec::new(), cursor);
                r.note = self.queue_note().await;
                Ok(r)
            }
            "IN_PROGRESS" => {
                let path = format!("/stream/{external_id}");
                let stream: Stream = match self.call(reqwest::Method::GET, &path, None).await? {
                    Some(t) => self.parse(&t)?,
                    None => Stream::default(),
                };
                let items = stream.stream.into_iter().map(|i| i.output);
                let (mut events, mut next) = select(events_in(items), cursor, false);
                // The run's last word (`done` or `error`) waits for the final output: that is
                // where events a crashed engine read but never stored come back, and a job
                // finished from the stream would never read it.
                if let Some(i) = events.iter().position(|e| {
                    matches!(
                        e.event,
                        TrainerEvent::Done { .. } | TrainerEvent::Error { .. }
                    )
                }) {
                    next = events[i].seq;
                    events.truncate(i);
                }
                let mut r = PollResult::new(RemoteState::Running, events, next);
                r.times.started_at = status
                    .execution_time
                    .map(|ms| crate::domain::now() - chrono::Duration::milliseconds(ms as i64));
                Ok(r)
            }
            "COMPLETED" => {
                let output = match status.output.clone() {
                    Some(serde_json::Value::Array(items)) => items,
                    Some(other) => vec![other],
                    None => Vec::new(),
                };
                let (events, next) = select(events_in(output), cursor, true);
                let mut r = PollResult::new(RemoteState::Succeeded, events, next);
                r.times = ended(&status);
                Ok(r)
            }
            "FAILED" => {
                let mut r = PollResult::new(
                    RemoteState::Failed(format!("RunPod: {}", error_text(&status.error))),
                    Vec::new(),
                    cursor,
                );
                r.times = ended(&status);
                Ok(r)
            }
            "CANCELLED" => {
                let mut r = PollResult::new(RemoteState::Stopped, Vec::new(), cursor);
                r.times = ended(&status);
                Ok(r)
            }
            "TIMED_OUT" => {
                let mut r = PollResult::new(RemoteState::TimedOut, Vec::new(), cursor);
                r.times = ended(&status);
                Ok(r)
            }
            other => Err(BackendError::Unavailable(format!(
                "{} reports an unknown status `{}`",
                self.what(),
                crate::text::clean_line(other)
            ))),
        }
    }

    async fn cancel(&self, external_id: &str) -> Result<(), BackendError> {
        self.call(
            reqwest::Method::POST,
            &format!("/cancel/{external_id}"),
            None,
        )
        .await?;
        Ok(())
    }

    async fn log_tail(&self, external_id: &str, lines: usize) -> Result<Vec<String>, BackendError> {
        // The worker's stderr tail travels in its final `error` event's detail; the status's
        // error is all RunPod itself keeps.
        let path = format!("/status/{external_id}");
        let Some(text) = self.call(reqwest::Method::GET, &path, None).await? else {
            return Ok(Vec::new());
        };
        let status: Status = self.parse(&text)?;
        let all: Vec<String> = match &status.error {
            Some(_) => error_text(&status.error)
                .lines()
                .map(String::from)
                .collect(),
            None => Vec::new(),
        };
        let skip = all.len().saturating_sub(lines);
        Ok(all.into_iter().skip(skip).collect())
    }

    async fn check(&self) -> BackendHealth {
        match self.call(reqwest::Method::GET, "/health", None).await {
            Ok(Some(text)) => {
                let h: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
                BackendHealth::ok(format!(
                    "RunPod endpoint {}: {} job(s) queued, workers {} idle, {} running",
                    self.base,
                    n(&h["jobs"]["inQueue"]),
                    n(&h["workers"]["idle"]),
                    n(&h["workers"]["running"]),
                ))
            }
            Ok(None) => BackendHealth::failed(&BackendError::Rejected(format!(
                "{} does not exist (check `endpoint_id`)",
                self.what()
            ))),
            Err(e) => BackendHealth::failed(&e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: u64, kind: &str) -> serde_json::Value {
        match kind {
            "metric" => serde_json::json!({"type": "metric", "seq": seq, "ts": 1.0, "step": seq}),
            _ => serde_json::json!({"type": "log", "seq": seq, "ts": 1.0, "message": "m"}),
        }
    }

    #[test]
    fn the_stream_gives_new_events_and_the_output_fills_what_a_crash_lost() {
        // The stream handed out 0..=4 to an engine that stored only 0..=1 (cursor 2) and
        // crashed; a fresh stream read gives 5..=6.
        let (events, next) = select(events_in([ev(5, "metric"), ev(6, "log")]), 2, false);
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [5, 6]);
        assert_eq!(next, 7);
        // At the end, the aggregated output holds everything: metrics lost in the gap come
        // back (idempotent), logs already passed are not shown twice.
        let output: Vec<_> = (0..9)
            .map(|s| ev(s, if s % 2 == 0 { "metric" } else { "log" }))
            .collect();
        let (events, next) = select(events_in(output), 7, true);
        assert_eq!(
            events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [0, 2, 4, 6, 7, 8]
        );
        assert_eq!(next, 9);
    }

    #[test]
    fn nested_lists_and_odd_items_are_read() {
        let got = events_in([
            serde_json::json!([ev(0, "log"), ev(1, "log")]),
            serde_json::json!("text"),
        ]);
        assert_eq!(got.len(), 3);
        assert!(matches!(got[2].event, TrainerEvent::Log { .. }));
    }

    #[test]
    fn a_missing_key_says_which_secret_to_set() {
        let cfg = crate::config::BackendConfig {
            endpoint_id: Some("abc".into()),
            ..Default::default()
        };
        let b = RunPodBackend {
            key: None,
            ..RunPodBackend::new("rp", &cfg, &Secrets::from_pairs([]))
        };
        let msg = b.missing_key().to_string();
        assert!(msg.contains("BRIGHTRUN_SECRET_RUNPOD_API_KEY"), "{msg}");
        assert!(
            b.base.ends_with("/v2/abc") || b.base.ends_with("/abc"),
            "{}",
            b.base
        );
    }
}
