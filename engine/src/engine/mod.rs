//! [`Engine`]: the one owner of the store, the object store and the background tasks. UIs and
//! CLI commands call its methods and subscribe to its events; nothing else touches storage.

mod artifacts;
mod backends;
mod checkpoints;
mod clean;
pub(crate) mod compare;
mod costs;
mod datasets;
mod doctor;
pub(crate) mod evaluation;
pub(crate) mod export;
mod inspect;
mod jobs;
mod lifecycle;
pub(crate) mod lineage;
mod method_fit;
mod notify;
mod playground;
pub mod profile;
mod resolve;
pub(crate) mod resume;
mod runner;
pub(crate) mod runs;
mod storage_ops;
mod sweep;
mod sweeps;
mod tasks;
mod uploads;

pub use backends::BackendInfo;
pub use clean::{CleanOptions, CleanReport, DroppedRecord};
pub use compare::EvaluationRequest;
pub use costs::{BudgetStatus, CostSummary, JobCost, Period};
pub use datasets::NewDataset;
pub use doctor::{DoctorReport, DoctorStep};
pub use export::ExportRequest;
pub use inspect::{InspectRequest, Inspected};
pub use jobs::JobRequest;
pub use resolve::IdKind;
pub(crate) use resolve::pick;
pub use resume::RetryFrom;

use crate::backend::{ClusterBackend, TrainerSource};
use crate::config::{Config, ConfigError};
use crate::events::EngineEvent;
use crate::ids::*;
use crate::paths::Paths;
use crate::secrets::{Secrets, SecretsError};
use crate::storage::{LocalStore, ObjectStore, S3Store, StorageError};
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
    #[error(transparent)]
    Mirror(#[from] crate::mirror::MirrorError),
    #[error("no {kind} matches `{query}`")]
    NotFound { kind: IdKind, query: String },
    #[error(
        "model {model} has no evaluation: it was trained before BrightRun evaluated every run, or with `[evaluation] enabled = false`"
    )]
    NotEvaluated { model: String },
    #[error("`{query}` matches several {kind}s: {candidates}; give more characters")]
    Ambiguous {
        kind: IdKind,
        query: String,
        candidates: String,
    },
    #[error("{0}")]
    Invalid(String),
    /// A request field is wrong: `field` names it for API clients.
    #[error("{message}")]
    InvalidField { field: String, message: String },
    /// The request is valid but the state refuses it; `reason` says why, for clients.
    #[error("{message}")]
    Conflict {
        reason: crate::api::Reason,
        message: String,
    },
    /// The store was made under another profile user id than config.toml names: opening it
    /// would hide every record and give new ones a stranger's id.
    #[error(
        "the store {} belongs to profile user {store_user}, but {} says [profile] user_id = \"{config_user}\"; its records would be invisible. Put user_id = \"{store_user}\" back under [profile] in config.toml, or run once with {}=1 to write the store's id into config.toml",
        store_path.display(), config_path.display(), profile::ADOPT_STORE_ENV
    )]
    ProfileMismatch {
        store_path: std::path::PathBuf,
        store_user: UserId,
        config_path: std::path::PathBuf,
        config_user: UserId,
    },
    /// Neither config.toml nor an older store says whose records these are.
    #[error(
        "{} has no [profile] user_id and the store {} does not record one, but it holds records of {owners}; put yours under [profile] user_id in config.toml",
        config_path.display(), store_path.display()
    )]
    ProfileUnknown {
        store_path: std::path::PathBuf,
        config_path: std::path::PathBuf,
        owners: String,
    },
    /// The store is missing or empty though the data dir holds what a store described.
    #[error(
        "the store {} {state}, but the data dir still holds {found}; a fresh store would orphan them. Restore the store from a backup (`brightrun backup list`, `brightrun backup restore`), or move the data dir aside to start afresh",
        path.display()
    )]
    StoreMissing {
        path: std::path::PathBuf,
        state: &'static str,
        found: profile::Leftovers,
    },
    #[error("{action} {}: {}", path.display(), crate::space::io_detail(path, source))]
    Io {
        action: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl EngineError {
    pub fn conflict(reason: crate::api::Reason, message: impl Into<String>) -> Self {
        Self::Conflict {
            reason,
            message: message.into(),
        }
    }

    /// Errors about what the user asked (as opposed to the machine failing): exit status 2.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Self::NotFound { .. }
                | Self::Ambiguous { .. }
                | Self::ProfileMismatch { .. }
                | Self::ProfileUnknown { .. }
                | Self::StoreMissing { .. }
                | Self::Invalid(_)
                | Self::InvalidField { .. }
                | Self::Conflict { .. }
                | Self::Mirror(crate::mirror::MirrorError::NotConfigured)
                | Self::Mirror(crate::mirror::MirrorError::BadUrl(_))
        )
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// Builds an [`Engine`]; see [`Engine::builder`].
pub struct EngineBuilder {
    paths: Paths,
    config: Option<Config>,
    objects: Option<Arc<dyn ObjectStore>>,
    backends: BTreeMap<String, Arc<dyn ClusterBackend>>,
}

impl EngineBuilder {
    /// Uses this config instead of reading (or creating) `config.toml`.
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// Uses this object store instead of the one `[storage]` names.
    pub fn objects(mut self, objects: Arc<dyn ObjectStore>) -> Self {
        self.objects = Some(objects);
        self
    }

    /// Adds (or replaces) a cluster backend under `name`.
    pub fn backend(mut self, name: impl Into<String>, backend: Arc<dyn ClusterBackend>) -> Self {
        self.backends.insert(name.into(), backend);
        self
    }

    pub fn open(self) -> Result<Engine> {
        let paths = self.paths;
        paths.ensure().map_err(|source| EngineError::Io {
            action: "creating",
            path: paths.data_dir.clone(),
            source,
        })?;
        let config_on_disk = self.config.is_none();
        let mut config = match self.config {
            Some(c) => c,
            None => Config::load(&paths)?,
        };
        let secrets = Secrets::load(&paths)?;
        profile::check_store_present(&paths, &config)?;
        let store = Store::open(&paths.database_file())?;
        let user = profile::settle_user(
            &paths,
            &mut config,
            config_on_disk,
            &store,
            profile::adopt_from_env(),
        )?;
        let swept = sweep::sweep(&paths, &config, &store)?;
        datasets::note_interrupted_uploads(&store)?;
        let objects: Arc<dyn ObjectStore> = match self.objects {
            Some(o) => o,
            None => match config.storage.backend.as_str() {
                "local" => Arc::new(LocalStore::new(profile::objects_root(&paths, &config))),
                "s3" => Arc::new(S3Store::new(
                    config.storage.s3.clone(),
                    &secrets,
                    Arc::new(store.clone()),
                )),
                other => {
                    return Err(EngineError::Invalid(format!(
                        "storage.backend = `{other}` is not a store (use `local` or `s3`)"
                    )));
                }
            },
        };
        // The local trainer's environment build reports into the job's log and the progress
        // feed (it is the job's `initializing` stage).
        let progress: crate::backend::BuildProgress = {
            let store = store.clone();
            Arc::new(move |job: &str, line: String| {
                let line = crate::text::clean_line(&line);
                store.publish(EngineEvent::Progress(crate::events::Progress {
                    task: crate::events::ProgressTask::TrainerEnvironment,
                    done: 0,
                    total: None,
                    message: line.clone(),
                }));
                if let Ok(job_id) = job.parse::<JobId>() {
                    store.publish(EngineEvent::JobLog { job_id, line });
                }
            })
        };
        let trainer = TrainerSource::Managed {
            paths: paths.clone(),
            config: Box::new(config.clone()),
            progress,
        };
        let mut backends =
            crate::backend::from_config(&config, &secrets, paths.jobs_dir(), trainer);
        backends.extend(self.backends);
        let shutdown = CancellationToken::new();
        Ok(Engine {
            user,
            inner: Arc::new(Inner {
                paths,
                config,
                secrets,
                store,
                objects,
                profile_user: user,
                backends,
                backend_health: Default::default(),
                wake_validation: Notify::new(),
                wake_dispatch: Notify::new(),
                playground: playground::Playground::new(&shutdown),
                shutdown,
                in_flight: std::sync::Mutex::new(HashSet::new()),
                uploads: std::sync::Mutex::new(HashSet::new()),
                validating: Default::default(),
                unrecorded_said: Default::default(),
                polling: std::sync::Mutex::new(HashSet::new()),
                poll_slots: Arc::new(tokio::sync::Semaphore::new(runner::POLL_CONCURRENCY)),
                job_tasks: tokio_util::task::TaskTracker::new(),
                fresh_verdicts: Default::default(),
                tokenizers: Default::default(),
                model_stats: Default::default(),
                local_hardware: Default::default(),
                mirror: Default::default(),
                webhooks: Default::default(),
                tracking: Default::default(),
                swept,
            }),
        })
    }
}

pub(crate) struct Inner {
    pub paths: Paths,
    pub config: Config,
    pub secrets: Secrets,
    pub store: Store,
    pub objects: Arc<dyn ObjectStore>,
    /// The profile's user: the owner of the data dir, the user of the embedded engine.
    pub profile_user: UserId,
    pub backends: BTreeMap<String, Arc<dyn ClusterBackend>>,
    /// Each backend's latest health verdict (from the housekeeping loop or a check).
    pub backend_health: std::sync::Mutex<BTreeMap<String, crate::backend::BackendHealth>>,
    pub wake_validation: Notify,
    pub wake_dispatch: Notify,
    pub shutdown: CancellationToken,
    /// The chat workers (`models chat`), one per model chatted with.
    pub playground: playground::Playground,
    /// Jobs being started right now, so a dispatch cycle never starts one twice.
    pub in_flight: std::sync::Mutex<HashSet<JobId>>,
    /// Datasets whose bytes are being received right now.
    pub uploads: std::sync::Mutex<HashSet<DatasetId>>,
    /// When each job was last told its news cannot be recorded (a full store).
    pub unrecorded_said: std::sync::Mutex<std::collections::HashMap<JobId, std::time::Instant>>,
    /// One gate per dataset being validated, so two requests never validate one file at once.
    pub validating:
        std::sync::Mutex<std::collections::HashMap<DatasetId, Arc<tokio::sync::Mutex<()>>>>,
    /// Jobs whose poll is in flight, so a slow one is not polled twice at once.
    pub polling: std::sync::Mutex<HashSet<JobId>>,
    /// Bounds the polls in flight.
    pub poll_slots: Arc<tokio::sync::Semaphore>,
    /// Every per-job task (a start, a poll), so shutdown waits for them instead of dropping
    /// them mid-write.
    pub job_tasks: tokio_util::task::TaskTracker,
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
    /// This machine's hardware, detected on first use (for the local backend's estimates).
    pub local_hardware: std::sync::OnceLock<crate::hardware::LocalHardware>,
    /// The Postgres mirror's status and wake-ups, shared by its task and the API.
    pub mirror: Arc<crate::mirror::Shared>,
    /// The webhooks' wake-ups and consumer status, shared by their tasks and the API.
    pub webhooks: Arc<crate::webhooks::Shared>,
    /// The experiment trackers' consumer status.
    pub tracking: Arc<crate::tracking::Shared>,
    /// What the sweep removed when this engine opened, for `doctor` to report.
    pub swept: sweep::Swept,
}

/// A one-pass import's verdict not yet used: the stored file's (size, mtime) and the
/// validation options' fingerprint it was given with.
pub(crate) type FreshVerdict = ((u64, std::time::SystemTime), String);

/// Cheap to clone; every clone is the same engine. A handle acts for one user (the profile's,
/// or a token's through [`Engine::as_user`]): every query and command sees only that user's
/// records, as the seed's row-level security promises.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
    pub(crate) user: UserId,
}

impl Engine {
    /// Opens the engine on its embedded defaults: config from `paths`, the redb store and the
    /// local object store in the data dir. Starts no background work; see [`Engine::start`].
    pub fn open(paths: Paths) -> Result<Self> {
        Self::builder(paths).open()
    }

    /// An engine with some parts given instead of made from config: another object store,
    /// extra or replacement cluster backends, a config not read from disk. Lifecycle tests
    /// use it to drive jobs through scripted backends without trainers or sleeps.
    pub fn builder(paths: Paths) -> EngineBuilder {
        EngineBuilder {
            paths,
            config: None,
            objects: None,
            backends: BTreeMap::new(),
        }
    }

    /// Starts the background tasks (validation, dispatch, monitoring, cost accrual). They run
    /// until [`Engine::shutdown`].
    pub fn start(&self) -> tokio::task::JoinHandle<()> {
        tasks::spawn_all(self.clone())
    }

    /// Has the validator look for new work now (after an upload is confirmed).
    pub fn wake_validation(&self) {
        self.inner.wake_validation.notify_one();
    }

    /// Asks every background task to stop at its next safe point.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
    }

    /// The same engine, acting for `user`.
    pub fn as_user(&self, user: UserId) -> Engine {
        Engine {
            inner: self.inner.clone(),
            user,
        }
    }

    /// This engine acting for each user it serves (the profile's and every token's), for the
    /// background work done per user.
    pub(crate) fn every_user(&self) -> Vec<Engine> {
        let mut users = self.inner.store.token_users().unwrap_or_default();
        users.push(self.inner.profile_user);
        users.sort();
        users.dedup();
        users.into_iter().map(|u| self.as_user(u)).collect()
    }

    /// The profile's user (the owner of this data dir).
    pub fn profile_user(&self) -> UserId {
        self.inner.profile_user
    }

    /// The store, for the API layer and the daemon (its change log, tokens).
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Runs `f` (engine work that reads or commits to the store) on the blocking pool, with
    /// the engine at hand: how the engine's async methods reach the store, so no redb
    /// transaction (a commit fsyncs) runs on an async worker ([`crate::store::off_runtime`]).
    pub(crate) async fn on_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let engine = self.clone();
        crate::store::off_runtime(move || f(&engine))
            .await
            .map_err(|e| EngineError::Store(StoreError::Worker(e.to_string())))?
    }

    /// Every record change committed from now on, with its seq.
    pub fn subscribe_changes(&self) -> broadcast::Receiver<Arc<crate::events::Sequenced>> {
        self.inner.store.subscribe_changes()
    }

    /// Live events (logs, progress, backend health) from now on; may drop under load.
    pub fn subscribe_live(&self) -> broadcast::Receiver<EngineEvent> {
        self.inner.store.subscribe_live()
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
        self.user
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
