//! Which webhook events a change makes, and their bodies. An event's key is the record and
//! the state it reached (a job's `completed`, a model's id), so the many versions of a
//! running job's record make one `job.started`, and a replayed change makes the same
//! delivery id again (enqueued once).

use crate::domain::*;
use crate::events::{EngineEvent, Sequenced};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// One event, before it is addressed to a webhook.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub kind: &'static str,
    /// What makes it this event and no other (the record and its state).
    pub key: String,
    /// When the change was committed: the body's `timestamp`, the same on every try.
    pub at: Timestamp,
    /// The record, as the API shows it.
    pub data: Value,
    /// One line for a chat (`format = "slack"`).
    pub summary: String,
}

/// The events a change makes (none for most versions of a record).
pub fn of_change(c: &Sequenced) -> Option<Event> {
    let event = |kind, key: String, data: Value, summary: String| Event {
        kind,
        key,
        at: c.at,
        data,
        summary,
    };
    match &c.event {
        EngineEvent::Job(j) => {
            let kind = match j.status {
                JobStatus::Queued => "job.queued",
                JobStatus::Running => "job.started",
                JobStatus::Completed => "job.completed",
                JobStatus::Failed => "job.failed",
                JobStatus::Cancelled => "job.cancelled",
                JobStatus::Initializing => return None,
            };
            Some(event(
                kind,
                format!("job:{}:{kind}", j.id),
                json!(j),
                job_line(j),
            ))
        }
        EngineEvent::Dataset(d) => {
            let kind = match d.status {
                DatasetStatus::Ready => "dataset.ready",
                DatasetStatus::Error => "dataset.error",
                _ => return None,
            };
            // A dataset validated again is a new event: the key carries when it was.
            let key = format!(
                "dataset:{}:{kind}:{}",
                d.id,
                d.updated_at.timestamp_millis()
            );
            let summary = format!("dataset {} is {}", d.name, d.status.as_str());
            Some(event(kind, key, json!(d), summary))
        }
        EngineEvent::Artifact(a) => Some(event(
            "model.ready",
            format!("model:{}", a.id),
            json!(a),
            format!("model {} is ready (job {})", a.name, a.job_id.short()),
        )),
        EngineEvent::Notification(n)
            if matches!(
                n.kind,
                NotificationType::BudgetWarning | NotificationType::BudgetExceeded
            ) =>
        {
            Some(event(
                "budget.alert",
                format!("notification:{}", n.id),
                json!(n),
                format!("{}: {}", n.title, n.message),
            ))
        }
        _ => None,
    }
}

fn job_line(j: &TrainingJob) -> String {
    let mut line = format!("job {} {}", j.id.short(), j.status.as_str());
    if let Some(cost) = j.final_cost {
        line.push_str(&format!(" (${cost:.2})"));
    }
    if let Some(e) = &j.error_message {
        line.push_str(&format!(": {e}"));
    }
    line
}

/// The delivery id of an event to a webhook: stable across replays and tries.
pub fn delivery_id(webhook: &str, event: &Event) -> String {
    let h = Sha256::digest(format!("{webhook}\n{}", event.key));
    format!("msg_{}", hex::encode(&h[..16]))
}

/// The body sent: `{"type", "timestamp", "data"}` (the Standard Webhooks convention), or a
/// Slack-compatible `{"text"}`.
pub fn body(format: &str, event: &Event) -> String {
    let v = if format == "slack" {
        json!({"text": format!("BrightRun: {}", event.summary)})
    } else {
        json!({
            "type": event.kind,
            "timestamp": event.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": event.data,
        })
    };
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn job(status: JobStatus) -> Sequenced {
        let mut j = crate::store::fixture::samples().jobs[0].clone();
        j.status = status;
        Sequenced {
            seq: 1,
            at: now(),
            event: EngineEvent::Job(Arc::new(j)),
        }
    }

    #[test]
    fn each_job_state_is_one_event_with_a_stable_id() {
        assert!(of_change(&job(JobStatus::Initializing)).is_none());
        let done = of_change(&job(JobStatus::Completed)).unwrap();
        assert_eq!(done.kind, "job.completed");
        let again = of_change(&job(JobStatus::Completed)).unwrap();
        assert_eq!(delivery_id("ops", &done), delivery_id("ops", &again));
        assert_ne!(delivery_id("ops", &done), delivery_id("chat", &done));
        let started = of_change(&job(JobStatus::Running)).unwrap();
        assert_ne!(delivery_id("ops", &done), delivery_id("ops", &started));
        let b: Value = serde_json::from_str(&body("standard", &done)).unwrap();
        assert_eq!(b["type"], "job.completed");
        assert_eq!(b["data"]["status"], "completed");
        let s: Value = serde_json::from_str(&body("slack", &done)).unwrap();
        assert!(s["text"].as_str().unwrap().contains("completed"), "{s}");
    }
}
