//! The engine's event stream. Two kinds travel separately:
//!
//! - **changes**: every committed record change, numbered by the change log ([`Sequenced`]).
//!   A subscriber asks for "everything after seq N" and gets each change exactly once, in
//!   order, across restarts and reconnects.
//! - **live** events: logs, progress and backend health. They may be dropped under load and
//!   are never replayed; nothing durable depends on them.
//!
//! Records travel behind `Arc` so a broadcast to many subscribers is cheap.

use crate::domain::*;
use crate::ids::*;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Progress of long work that is not a record change (uploads, downloads, environment builds).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Progress {
    pub task: ProgressTask,
    pub done: u64,
    /// None when the total is unknown.
    pub total: Option<u64>,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum ProgressTask {
    Upload(DatasetId),
    Validation(DatasetId),
    Download(ArtifactId),
    TrainerEnvironment,
    /// `datasets inspect --stats` counting a dataset (the trainer's progress lines).
    Inspection(DatasetId),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum EngineEvent {
    Dataset(Arc<Dataset>),
    Job(Arc<TrainingJob>),
    Metrics {
        job_id: JobId,
        points: Arc<Vec<MetricsPoint>>,
    },
    Artifact(Arc<ModelArtifact>),
    Cost(Arc<CostRecord>),
    Notification(Arc<Notification>),
    Checkpoint(Arc<Checkpoint>),
    /// A sweep was created, started a run, finished or was cancelled.
    Sweep(Arc<Sweep>),
    /// A line from a job's trainer log (stderr or `log` events), already stripped of controls.
    JobLog {
        job_id: JobId,
        line: String,
    },
    Progress(Progress),
    /// Whether a cluster backend answers.
    BackendHealth {
        backend: String,
        reachable: bool,
    },
}

/// The name `BackendHealth` carries for the object store, beside the backends' names.
pub const STORAGE_HEALTH: &str = "storage";

impl EngineEvent {
    /// Whether this is a durable record change (goes in the change log) rather than a live
    /// notice that may be dropped.
    pub fn is_change(&self) -> bool {
        !matches!(
            self,
            Self::JobLog { .. } | Self::Progress(_) | Self::BackendHealth { .. }
        )
    }

    /// The user whose records this event is about; `None` for events every user may see
    /// (backend health, the trainer environment).
    pub fn user(&self) -> Option<UserId> {
        match self {
            Self::Dataset(d) => Some(d.user_id),
            Self::Job(j) => Some(j.user_id),
            Self::Artifact(a) => Some(a.user_id),
            Self::Cost(c) => Some(c.user_id),
            Self::Notification(n) => Some(n.user_id),
            Self::Sweep(s) => Some(s.user_id),
            // Metrics, checkpoints and logs name only their job; the caller checks the job.
            Self::Metrics { .. } | Self::Checkpoint(_) | Self::JobLog { .. } => None,
            Self::Progress(_) | Self::BackendHealth { .. } => None,
        }
    }

    /// The job an event belongs to, for events that carry only a job id.
    pub fn job(&self) -> Option<JobId> {
        match self {
            Self::Metrics { job_id, .. } | Self::JobLog { job_id, .. } => Some(*job_id),
            Self::Checkpoint(c) => Some(c.job_id),
            Self::Job(j) => Some(j.id),
            _ => None,
        }
    }
}

/// A change with its place in the change log. Seqs start at 1 and have no gaps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Sequenced {
    pub seq: u64,
    /// When the change was committed.
    pub at: Timestamp,
    pub event: EngineEvent,
}
