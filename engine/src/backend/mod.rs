//! Cluster backends. The engine owns job state; a backend only submits, reports and cancels
//! (DESIGN.md, "Cluster protocol"). Submission is idempotent: the engine's job id is the
//! submission id, so a retried submit after a crash never starts a second run.
//!
//! Backends are named entries of `[backends.NAME]` (`kind = "local" | "ray" | "runpod"`), so a
//! user can have two Ray clusters; [`from_config`] builds them.

pub(crate) mod local;
pub mod protocol;
mod ray;
mod runpod;

pub use local::{BuildProgress, LocalBackend, TrainerSource};
pub use protocol::*;
pub use ray::RayBackend;
pub use runpod::RunPodBackend;

pub use crate::trainer_env::TrainerCommand;
use async_trait::async_trait;
pub use brightrun_api::reports::BackendHealth;
use std::path::PathBuf;
use std::time::Duration;

/// Why a backend call failed. Callers match on the variant (see [`BackendError::code`]),
/// never on the text.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Could not reach or start the cluster: worth retrying.
    #[error("{0}")]
    Unavailable(String),
    /// The cluster asked us to slow down (HTTP 429): worth retrying later.
    #[error("{0}")]
    RateLimited(String),
    /// The cluster refused our credentials (HTTP 401/403): retrying will not help until the
    /// secret is fixed.
    #[error("{0}")]
    Unauthorized(String),
    /// The cluster refused the job: retrying will not help.
    #[error("{0}")]
    Rejected(String),
    #[error("{action} {}: {}", path.display(), crate::space::io_detail(path, source))]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl BackendError {
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Unavailable(_) | Self::RateLimited(_) | Self::Io { .. }
        )
    }

    /// A stable name for the failure, for `backends check --json` and the API.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "unreachable",
            Self::RateLimited(_) => "rate_limited",
            Self::Unauthorized(_) => "unauthorized",
            Self::Rejected(_) => "rejected",
            Self::Io { .. } => "io",
        }
    }
}

/// What the cluster says about a submission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteState {
    /// Accepted, waiting for a worker.
    Pending,
    Running,
    /// The trainer ended well (exit status 0).
    Succeeded,
    /// The trainer ended badly; the cluster's own words (an exit status, Ray's message).
    Failed(String),
    /// Stopped on the cluster (by a cancel, or by someone else).
    Stopped,
    /// The cluster's execution timeout ran out.
    TimedOut,
    /// The cluster has no record of it (rebuilt, or the job expired there).
    Lost,
}

impl RemoteState {
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::Pending | Self::Running)
    }
}

/// When the cluster says the run started and ended, for its compute cost (a remote cluster
/// bills its own clock, not the time the engine happened to notice).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RemoteTimes {
    pub started_at: Option<crate::domain::Timestamp>,
    pub ended_at: Option<crate::domain::Timestamp>,
}

#[derive(Clone, Debug)]
pub struct PollResult {
    pub state: RemoteState,
    /// Events after the cursor, in order.
    pub events: Vec<Envelope>,
    /// Pass this back to the next poll. Opaque to the engine: a byte offset into a log for
    /// the local and Ray backends, the next event's sequence number for RunPod.
    pub cursor: u64,
    pub times: RemoteTimes,
    /// What the cluster says beside the state (RunPod's queue depth while the job waits).
    pub note: Option<String>,
}

impl PollResult {
    pub fn new(state: RemoteState, events: Vec<Envelope>, cursor: u64) -> Self {
        Self {
            state,
            events,
            cursor,
            times: RemoteTimes::default(),
            note: None,
        }
    }
}

/// How a backend's trainer reaches the job's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataAccess {
    /// Paths on this machine's disk (the local backend, or a filesystem the user says the
    /// cluster shares: `[backends.NAME] shared_filesystem = true`).
    Paths,
    /// Presigned URLs: the dataset by GET, the adapter by PUT (needs the S3 store).
    Urls,
}

/// One run to start: the trainer's spec and what the cluster needs to place it.
#[derive(Clone, Debug)]
pub struct Submission<'a> {
    pub spec: &'a TrainerSpec,
    pub gpu_type: &'a str,
    pub gpu_count: u32,
    /// How long the cluster may let it run (from the estimate, with a margin).
    pub timeout: Option<Duration>,
    /// 0 for the first run, N for the Nth retry: each attempt is its own submission.
    pub attempt: u32,
}

/// A backend's failed health verdict from its error (the type is the API's).
pub trait BackendHealthExt {
    fn failed(err: &BackendError) -> Self;
}

impl BackendHealthExt for BackendHealth {
    fn failed(err: &BackendError) -> Self {
        Self {
            reachable: false,
            failure: Some(err.code().into()),
            detail: err.to_string(),
        }
    }
}

#[async_trait]
pub trait ClusterBackend: Send + Sync {
    /// `local`, `ray` or `runpod`.
    fn kind(&self) -> &'static str;
    /// Whether the trainer runs on this machine (the local backend): its estimates are then
    /// for this machine's hardware, at `[backends.local] price_per_hour`.
    fn runs_here(&self) -> bool {
        false
    }
    /// Whether the trainer reads paths on this machine or needs presigned URLs.
    fn data_access(&self) -> DataAccess {
        DataAccess::Paths
    }
    /// Starts the trainer (idempotent per job id); returns the external id.
    async fn submit(&self, job: &Submission<'_>) -> Result<String, BackendError>;
    async fn poll(&self, external_id: &str, cursor: u64) -> Result<PollResult, BackendError>;
    /// Asks the trainer to stop (it checkpoints first); forces it after a grace period.
    async fn cancel(&self, external_id: &str) -> Result<(), BackendError>;
    /// The last lines of the trainer's own log (stderr), for failure details.
    async fn log_tail(&self, external_id: &str, lines: usize) -> Result<Vec<String>, BackendError>;
    /// Whether the backend can take work now, and what answered.
    async fn check(&self) -> BackendHealth;
}

/// Builds every configured backend by name (`[backends.NAME]`), plus `local` when the config
/// does not name it. `local` gets `trainer` to find (or build) its Python.
pub fn from_config(
    config: &crate::config::Config,
    secrets: &crate::secrets::Secrets,
    jobs_dir: PathBuf,
    trainer: TrainerSource,
) -> std::collections::BTreeMap<String, std::sync::Arc<dyn ClusterBackend>> {
    use std::sync::Arc;
    let mut out: std::collections::BTreeMap<String, Arc<dyn ClusterBackend>> =
        std::collections::BTreeMap::new();
    let local: Arc<dyn ClusterBackend> =
        Arc::new(LocalBackend::new(jobs_dir, trainer).with_cancel_grace(
            std::time::Duration::from_secs(config.engine.cancel_grace_secs),
        ));
    out.insert("local".into(), local.clone());
    let source = crate::trainer_env::source_dir(config).map_err(|e| e.to_string());
    for (name, entry) in &config.backends {
        let backend: Arc<dyn ClusterBackend> = match entry.kind_for(name) {
            "ray" => Arc::new(RayBackend::new(name, entry, secrets, source.clone())),
            "runpod" => Arc::new(RunPodBackend::new(name, entry, secrets)),
            // `Config::validate` refuses other kinds.
            _ => local.clone(),
        };
        out.insert(name.clone(), backend);
    }
    out
}

/// Calls to a cluster after a transient failure wait, doubling from 1 s up to a minute, so an
/// unreachable cluster is not hammered and a poll fails fast meanwhile. Shared by the remote
/// backends; one per backend.
#[derive(Default)]
pub(crate) struct Backoff(std::sync::Mutex<BackoffState>);

#[derive(Default)]
struct BackoffState {
    failures: u32,
    until: Option<std::time::Instant>,
    last_error: String,
}

impl Backoff {
    /// The error to fail with while backing off, if backing off.
    pub(crate) fn waiting(&self) -> Option<BackendError> {
        let b = self.0.lock().expect("not poisoned");
        let left = b.until?.checked_duration_since(std::time::Instant::now())?;
        Some(BackendError::Unavailable(format!(
            "{} (next try in {} s)",
            b.last_error,
            left.as_secs().max(1)
        )))
    }

    /// Records a call's outcome: a transient failure lengthens the wait, anything else ends it.
    pub(crate) fn record<T>(&self, result: &Result<T, BackendError>) {
        let mut b = self.0.lock().expect("not poisoned");
        match result {
            Err(e) if e.is_transient() => {
                b.failures += 1;
                let secs = (1u64 << b.failures.min(6)).min(60);
                b.until = Some(std::time::Instant::now() + Duration::from_secs(secs));
                b.last_error = e.to_string();
            }
            _ => *b = BackoffState::default(),
        }
    }
}

/// A reqwest client for a cluster's API: bounded connect and request times, so an
/// unreachable cluster fails a poll quickly instead of holding it.
pub(crate) fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(60))
        .build()
        .expect("a reqwest client builds")
}

/// Turns a reqwest error into a backend error that names the cluster but carries no URL
/// query (presigned URLs and tokens never reach a message).
pub(crate) fn http_error(what: &str, e: reqwest::Error) -> BackendError {
    let e = e.without_url();
    if e.is_timeout() || e.is_connect() || e.is_request() {
        BackendError::Unavailable(format!("{what} is unreachable: {e}"))
    } else {
        BackendError::Unavailable(format!("{what}: {e}"))
    }
}

/// Maps a non-success HTTP status to a backend error; `body` is a short excerpt of the answer,
/// cleaned of terminal escapes.
pub(crate) fn status_error(what: &str, status: reqwest::StatusCode, body: &str) -> BackendError {
    let excerpt: String = crate::text::clean_line(body).chars().take(300).collect();
    let msg = format!("{what} answered {status}: {excerpt}");
    match status.as_u16() {
        401 | 403 => BackendError::Unauthorized(format!(
            "{msg} (check the backend's secret: `brightrun config show` lists the secrets set)"
        )),
        429 => BackendError::RateLimited(msg),
        s if s >= 500 => BackendError::Unavailable(msg),
        _ => BackendError::Rejected(msg),
    }
}
