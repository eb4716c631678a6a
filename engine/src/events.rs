//! The engine's event stream: every stored change and every progress report, pushed to whoever
//! subscribes (the TUI, `jobs watch`). Records travel behind `Arc` so a broadcast is cheap.

use crate::domain::*;
use crate::ids::*;
use std::sync::Arc;

/// Progress of long work that is not a record change (uploads, downloads, environment builds).
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    pub task: ProgressTask,
    pub done: u64,
    /// None when the total is unknown.
    pub total: Option<u64>,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ProgressTask {
    Upload(DatasetId),
    Validation(DatasetId),
    Download(ArtifactId),
    TrainerEnvironment,
}

#[derive(Clone, Debug)]
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
