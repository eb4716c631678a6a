//! [`Engine`]: the one owner of the store, the object store and the background tasks. UIs and
//! CLI commands call its methods and subscribe to its events; nothing else touches storage.

mod artifacts;
mod clean;
mod costs;
mod datasets;
mod jobs;
mod notify;
mod resolve;
mod runner;
mod tasks;

pub use clean::{CleanOptions, CleanReport, DroppedRecord};
pub use costs::{BudgetStatus, CostSummary, JobCost, Period};
pub use datasets::NewDataset;
pub use jobs::JobRequest;
pub use resolve::IdKind;

use crate::backend::{ClusterBackend, LocalBackend};
use crate::config::{Config, ConfigError};
use crate::events::EngineEvent;
use crate::ids::*;
use crate::paths::Paths;
use crate::secrets::{Secrets, SecretsError};
use crate::storage::{LocalStore, ObjectStore, StorageError};
use crate::store::{Store, StoreError};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("no {kind} matches `{query}`")]
    NotFound { kind: IdKind, query: String },
    #[error("`{query}` matches several {kind}s: {candidates}; give more characters")]
    Ambiguous {
        kind: IdKind,
        query: String,
        candidates: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl EngineError {
    /// Errors about what the user asked (as opposed to the machine failing): exit status 2.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Self::NotFound { .. } | Self::Ambiguous { .. } | Self::Invalid(_) | Self::Conflict(_)
        )
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

pub(crate) struct Inner {
    pub paths: Paths,
    pub config: Config,
    pub secrets: Secrets,
    pub store: Store,
    pub objects: Arc<dyn ObjectStore>,
    pub user: UserId,
    pub backends: BTreeMap<String, Arc<dyn ClusterBackend>>,
    pub wake_validation: Notify,
    pub wake_dispatch: Notify,
    pub shutdown: CancellationToken,
    /// Serialises read-modify-write of job records between the tasks and user actions.
    pub job_lock: tokio::sync::Mutex<()>,
    /// One trainer-environment build at a time.
    pub env_lock: tokio::sync::Mutex<()>,
    /// Jobs being started right now, so a dispatch cycle never starts one twice.
    pub in_flight: std::sync::Mutex<HashSet<JobId>>,
    /// Verdicts of one-pass imports not yet asked for by `validate_dataset`, with the stored
    /// file's (size, mtime) and the options they were given with.
    pub fresh_verdicts: std::sync::Mutex<std::collections::HashMap<DatasetId, FreshVerdict>>,
    /// Base models' tokenizers from the local Hugging Face cache, by model id (`None`: not
    /// there).
    pub tokenizers:
        std::sync::Mutex<std::collections::HashMap<String, Option<crate::tokens::ModelTokenizer>>>,
    /// Datasets' statistics counted with another base model's tokenizer, for estimates.
    pub model_stats: std::sync::Mutex<
        std::collections::HashMap<(DatasetId, String), crate::domain::DatasetStatistics>,
    >,
}

/// A one-pass import's verdict not yet used: the stored file's (size, mtime) and the
/// validation options' fingerprint it was given with.
pub(crate) type FreshVerdict = ((u64, std::time::SystemTime), String);

/// Cheap to clone; every clone is the same engine.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

impl Engine {
    /// Opens the engine on its embedded defaults: config from `paths`, the redb store and the
    /// local object store in the data dir. Starts no background work; see [`Engine::start`].
    pub fn open(paths: Paths) -> Result<Self> {
        paths.ensure().map_err(|source| EngineError::Io {
            action: "creating",
            path: paths.data_dir.clone(),
            source,
        })?;
        let config = Config::load_or_init(&paths)?;
        let secrets = Secrets::load(&paths)?;
        let (tx, _) = broadcast::channel(4096);
        let store = Store::open(&paths.database_file(), tx)?;
        let objects: Arc<dyn ObjectStore> = match config.storage.backend.as_str() {
            "local" => Arc::new(LocalStore::new(
                config
                    .storage
                    .local_root
                    .clone()
                    .unwrap_or_else(|| paths.objects_dir()),
            )),
            other => {
                return Err(EngineError::Invalid(format!(
                    "storage.backend = `{other}` is not supported by this build (use `local`)"
                )));
            }
        };
        let user = config.user_id();
        let mut backends: BTreeMap<String, Arc<dyn ClusterBackend>> = BTreeMap::new();
        backends.insert(
            "local".into(),
            Arc::new(LocalBackend::new(paths.jobs_dir())),
        );
        Ok(Self {
            inner: Arc::new(Inner {
                paths,
                config,
                secrets,
                store,
                objects,
                user,
                backends,
                wake_validation: Notify::new(),
                wake_dispatch: Notify::new(),
                shutdown: CancellationToken::new(),
                job_lock: tokio::sync::Mutex::new(()),
                env_lock: tokio::sync::Mutex::new(()),
                in_flight: std::sync::Mutex::new(HashSet::new()),
                fresh_verdicts: Default::default(),
                tokenizers: Default::default(),
                model_stats: Default::default(),
            }),
        })
    }

    /// Starts the background tasks (validation, dispatch, monitoring, cost accrual). They run
    /// until [`Engine::shutdown`].
    pub fn start(&self) -> tokio::task::JoinHandle<()> {
        tasks::spawn_all(self.clone())
    }

    /// Asks every background task to stop at its next safe point.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
    }

    /// Every change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.inner.store.subscribe()
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }
    pub fn paths(&self) -> &Paths {
        &self.inner.paths
    }
    pub fn secrets(&self) -> &Secrets {
        &self.inner.secrets
    }
    pub fn user_id(&self) -> UserId {
        self.inner.user
    }
    /// `local` or `s3`.
    pub fn storage_kind(&self) -> &'static str {
        self.inner.objects.kind()
    }
    /// The store's schema version (for `config show`).
    pub fn schema_version(&self) -> Result<u64> {
        Ok(self.inner.store.schema_version()?)
    }
}
