//! Cluster backends. The engine owns job state; a backend only submits, reports and cancels
//! (DESIGN.md, "Cluster protocol"). Submission is idempotent: the engine's job id is the
//! submission id, so a retried submit after a crash never starts a second run.

mod local;
pub mod protocol;

pub use local::LocalBackend;
pub use protocol::*;

use async_trait::async_trait;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Could not reach or start the cluster: worth retrying.
    #[error("{0}")]
    Unavailable(String),
    /// The cluster refused the job: retrying will not help.
    #[error("{0}")]
    Rejected(String),
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl BackendError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Io { .. })
    }
}

/// What the cluster says about a submission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteState {
    Pending,
    Running,
    /// The trainer process ended; its exit status when known.
    Exited(Option<i32>),
    /// The cluster has no record of it.
    Lost,
}

#[derive(Clone, Debug)]
pub struct PollResult {
    pub state: RemoteState,
    /// Events after the cursor, in order.
    pub events: Vec<Envelope>,
    /// Pass this back to the next poll.
    pub cursor: u64,
}

/// How to run the trainer: its Python and its source folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrainerCommand {
    pub python: PathBuf,
    pub source_dir: PathBuf,
}

#[async_trait]
pub trait ClusterBackend: Send + Sync {
    fn name(&self) -> &'static str;
    /// Whether the trainer runs on this machine (the local backend): its estimates are then
    /// for this machine's hardware, at `[backends.local] price_per_hour`.
    fn runs_here(&self) -> bool {
        false
    }
    /// Starts the trainer on `spec` (idempotent per job id); returns the external id.
    async fn submit(
        &self,
        spec: &TrainerSpec,
        trainer: &TrainerCommand,
    ) -> Result<String, BackendError>;
    async fn poll(&self, external_id: &str, cursor: u64) -> Result<PollResult, BackendError>;
    /// Asks the trainer to stop (it checkpoints first); forces it after a grace period.
    async fn cancel(&self, external_id: &str) -> Result<(), BackendError>;
    /// The last lines of the trainer's own log (stderr), for failure details.
    async fn log_tail(&self, external_id: &str, lines: usize) -> Result<Vec<String>, BackendError>;
    /// Whether the backend can take work now.
    async fn healthy(&self) -> bool;
}
