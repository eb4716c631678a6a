//! `config.toml`: everything a user can set, with defaults so an empty file works. Secrets never
//! live here; see the engine's `secrets` module (its TOML errors are described
//! without quoting values by [`describe_toml_error`], here so the config shares it).

use crate::ids::UserId;
use crate::paths::Paths;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid config: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid setting `{key}`: {message}")]
    Invalid { key: String, message: String },
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub profile: ProfileConfig,
    pub storage: StorageConfig,
    pub validation: ValidationConfig,
    pub training: TrainingConfig,
    pub engine: EngineConfig,
    pub trainer: TrainerConfig,
    pub budget: BudgetConfig,
    pub tui: TuiConfig,
    /// `[backends.NAME]`: per-backend settings (`[backends.local] price_per_hour`).
    pub backends: BTreeMap<String, BackendConfig>,
    pub mirror: MirrorConfig,
    pub evaluation: EvaluationConfig,
    pub playground: PlaygroundConfig,
    /// `[tracking.mlflow]`, `[tracking.tensorboard]`: every job as an experiment-tracking run.
    pub tracking: TrackingConfig,
    /// `[[webhooks]]`: endpoints told when records change.
    pub webhooks: Vec<WebhookConfig>,
}

/// `[tracking]`: experiment trackers fed from the change log (see the engine's `tracking`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackingConfig {
    pub mlflow: Option<MlflowConfig>,
    pub tensorboard: Option<TensorboardConfig>,
}

/// `[tracking.mlflow]`: an MLflow tracking server; its token (when it needs one) comes from
/// the `mlflow_token` secret (`BRIGHTRUN_SECRET_MLFLOW_TOKEN` or secrets.toml).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlflowConfig {
    /// `http://host:port` of the tracking server.
    pub uri: String,
    /// The experiment every job's run goes in (created when missing).
    #[serde(default = "default_experiment")]
    pub experiment: String,
}

fn default_experiment() -> String {
    "brightrun".into()
}

/// `[tracking.tensorboard]`: a folder of TensorBoard event files, one subfolder per job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorboardConfig {
    pub dir: PathBuf,
}

/// One `[[webhooks]]` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// How `brightrun webhooks` names it (letters, digits, `-`, `_`).
    pub name: String,
    /// Where events are POSTed (http or https).
    pub url: String,
    /// The event types it receives (see `domain::WEBHOOK_EVENTS`); empty: all.
    #[serde(default)]
    pub events: Vec<String>,
    /// The name of the secret (`BRIGHTRUN_SECRET_<NAME>` or secrets.toml) holding its
    /// Standard Webhooks signing key, `whsec_…`. Never the key itself.
    pub secret: String,
    /// `standard` (default: the record as JSON) or `slack` (`{"text": …}` for a Slack
    /// incoming webhook or a compatible chat).
    #[serde(default = "default_webhook_format")]
    pub format: String,
    /// How long an event is retried (with backoff) before it counts as failed.
    #[serde(default = "default_retry_minutes")]
    pub retry_minutes: u64,
    /// The longest one try may take.
    #[serde(default = "default_webhook_timeout")]
    pub timeout_secs: u64,
}

fn default_webhook_format() -> String {
    "standard".into()
}
fn default_retry_minutes() -> u64 {
    24 * 60
}
fn default_webhook_timeout() -> u64 {
    10
}

/// `[playground]`: `brightrun models chat` and `POST /api/models/{id}/chat`. Each model
/// chatted with gets a worker on the engine's machine (the trainer's `serve` mode), kept
/// loaded between turns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlaygroundConfig {
    /// Minutes a model's worker stays loaded with no chat before it is stopped (1 to 1440).
    pub idle_minutes: u64,
    /// The most new tokens one reply may ask for (1 to 32768).
    pub max_new_tokens_limit: u32,
}

impl Default for PlaygroundConfig {
    fn default() -> Self {
        Self {
            idle_minutes: 10,
            max_new_tokens_limit: 2048,
        }
    }
}

/// `[evaluation]`: what the trainer checks after every run, on the cluster that trained it,
/// before the adapter is saved: held-out loss of the base model and of the adapter, greedy
/// answers of both to held-out examples and to probe prompts (see `domain::Evaluation`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvaluationConfig {
    pub enabled: bool,
    /// Held-out examples answered by both models (0 to 64).
    pub samples: u32,
    /// The longest answer generated, in tokens (1 to 4096).
    pub max_new_tokens: u32,
    /// The built-in general prompts (a fact, arithmetic, an instruction, a refusal, …), which
    /// show what the adapter forgot.
    pub builtin_probes: bool,
    /// A JSONL file of the team's own probes, `{"prompt": "…", "reference": "…"}` per line
    /// (`reference` optional), asked after every run.
    pub probes: Option<PathBuf>,
}

impl Default for EvaluationConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            samples: 8,
            max_new_tokens: 256,
            builtin_probes: true,
            probes: None,
        }
    }
}

/// The most probes one evaluation asks (the built-in ones and the file's together).
pub const MAX_PROBES: usize = 200;

/// `[mirror]`: the optional Postgres mirror (see `brightrun_engine::mirror`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MirrorConfig {
    /// `postgres://user@host:port/db`: turns the mirror on. No password here (the config is
    /// shown by `config show`): it comes from the `mirror_password` secret
    /// (`BRIGHTRUN_SECRET_MIRROR_PASSWORD` or secrets.toml).
    pub url: Option<String>,
}

/// One cluster backend's settings: `[backends.NAME]`. A user may have several of one kind
/// (two Ray clusters); jobs name the entry, `[training] default_backend` the default one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackendConfig {
    /// `local`, `ray` or `runpod`; default: the backend's name.
    pub kind: Option<String>,
    /// What an hour of this backend's machine costs, US dollars, for the whole machine. For
    /// `local` (this machine) the default is 0: estimates and costs say "your machine". Remote
    /// backends are priced by the GPU catalog (`[training.gpus]`), per GPU.
    pub price_per_hour: Option<f64>,
    /// Ray: the dashboard's URL (`http://127.0.0.1:8265`), where the Jobs API answers.
    pub address: Option<String>,
    /// Ray: whether jobs ask for GPUs (`entrypoint_num_gpus`, the accelerator type). `false`
    /// lets a CPU-only cluster run jobs.
    pub request_gpus: Option<bool>,
    /// Ray: the trainer's Python on the cluster, for clusters with a ready environment (an
    /// absolute path: the entrypoint inherits `ray start`'s PATH). Unset: Ray installs
    /// trainer/requirements.txt through the job's `runtime_env` `pip`.
    pub python: Option<String>,
    /// The name of the secret holding the cluster's credential: for Ray an `Authorization`
    /// header value (default secret `ray_auth_token`, optional), for RunPod the API key
    /// (default `runpod_api_key`, else the seed's `GPU_CLUSTER_API_KEY`).
    pub secret: Option<String>,
    /// The backend reads this machine's paths (a filesystem the user vouches the cluster
    /// shares), so it needs no presigned URLs and no S3 store.
    pub shared_filesystem: Option<bool>,
    /// RunPod: the Serverless endpoint's id.
    pub endpoint_id: Option<String>,
    /// RunPod: the API's base URL (default `https://api.runpod.ai/v2`, else the seed's
    /// `GPU_CLUSTER_API_URL`).
    pub api_url: Option<String>,
}

/// The backend kinds BrightRun can drive.
pub const BACKEND_KINDS: [&str; 3] = ["local", "ray", "runpod"];

impl BackendConfig {
    /// The entry's kind: its `kind`, else its name.
    pub fn kind_for<'a>(&'a self, name: &'a str) -> &'a str {
        self.kind.as_deref().unwrap_or(name)
    }
}

impl Config {
    /// `[backends.local] price_per_hour`, 0 when unset.
    pub fn local_price_per_hour(&self) -> f64 {
        self.backends
            .get("local")
            .and_then(|b| b.price_per_hour)
            .unwrap_or(0.0)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProfileConfig {
    pub name: String,
    /// Created on first run and written back, so every record keeps one owner.
    pub user_id: Option<UserId>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `local` (the embedded default) or `s3`.
    pub backend: String,
    /// Root of the local object store; default `DATA_DIR/objects`.
    pub local_root: Option<PathBuf>,
    /// The S3-compatible store, used when `backend = "s3"`.
    pub s3: S3Config,
}

/// An S3-compatible store: AWS S3, Cloudflare R2, MinIO, Backblaze B2, Supabase Storage.
/// Credentials never live here: they come from BrightRun's secrets
/// (`s3_access_key_id`, `s3_secret_access_key`, optionally `s3_session_token`) or else from
/// the usual AWS chain (environment, shared credentials file and `profile`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// The endpoint URL (`http://127.0.0.1:9000`, `https://ACCOUNT.r2.cloudflarestorage.com`);
    /// none for AWS itself.
    pub endpoint: Option<String>,
    pub region: String,
    /// Bucket in the path (`endpoint/bucket/key`) rather than the host name; most
    /// self-hosted servers need it.
    pub force_path_style: bool,
    pub datasets_bucket: String,
    pub models_bucket: String,
    /// Put every object under this prefix (`team-a/`), for users with one shared bucket.
    pub prefix: Option<String>,
    /// Multipart part size in MiB (5..=5120, S3's limits).
    pub part_size_mb: u64,
    /// Parts uploaded or downloaded at once.
    pub concurrency: usize,
    /// The AWS shared-config profile to take credentials from, when not from secrets.
    pub profile: Option<String>,
    /// Multipart uploads left unfinished this long are aborted, so no parts are billed forever.
    pub abort_unfinished_after_hours: u64,
    /// How long an upload or download keeps retrying while the server does not answer before
    /// it gives up (it resumes from where it stopped when run again).
    pub retry_for_secs: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationConfig {
    /// Share of examples held out for evaluation, 0.0..=0.5.
    pub holdout_fraction: f64,
    /// Examples longer than this (in tokens) are counted and warned about.
    pub max_seq_length: u32,
    /// A Hugging Face `tokenizer.json` for exact token counts; without one tokens are estimated.
    pub tokenizer: Option<PathBuf>,
    /// Seed of the deterministic hold-out split (the trainer uses the job's seed, default 42).
    pub split_seed: u64,
    /// How often the validation task looks for datasets left in `validating`.
    pub interval_secs: u64,
}

/// Overrides for one hyperparameter preset; unset fields keep the base preset's value.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PresetOverride {
    /// The preset this one starts from (`fast`, `balanced`, `quality`); default `balanced`.
    pub base: Option<String>,
    pub description: Option<String>,
    pub base_model: Option<String>,
    pub learning_rate: Option<f64>,
    pub batch_size: Option<u32>,
    pub gradient_accumulation_steps: Option<u32>,
    pub epochs: Option<u32>,
    pub lora_rank: Option<u32>,
    pub lora_alpha: Option<u32>,
    pub lora_dropout: Option<f64>,
    pub target_modules: Option<Vec<String>>,
    pub warmup_ratio: Option<f64>,
    pub warmup_steps: Option<u32>,
    pub weight_decay: Option<f64>,
    pub scheduler: Option<String>,
    pub max_seq_length: Option<u32>,
    pub seed: Option<u64>,
    pub use_validation: Option<bool>,
    pub quantization: Option<String>,
}

/// Overrides for (or a new entry in) the GPU catalog.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GpuOverride {
    pub name: Option<String>,
    pub price_per_hour: Option<f64>,
    pub tokens_per_sec: Option<f64>,
    pub memory_gb: Option<f64>,
    pub bf16: Option<bool>,
}

/// A base model's size, for models the built-in table does not know.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelOverride {
    /// Parameters, in billions.
    pub parameters_billions: f64,
    pub hidden_size: Option<u32>,
    pub num_layers: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainingConfig {
    pub default_base_model: String,
    pub default_preset: String,
    pub default_gpu: String,
    pub default_gpu_count: u32,
    pub default_backend: String,
    pub presets: BTreeMap<String, PresetOverride>,
    pub gpus: BTreeMap<String, GpuOverride>,
    pub models: BTreeMap<String, ModelOverride>,
    /// Flat storage cost added to every estimate (the seed's $0.50).
    pub storage_cost_per_job: f64,
    /// Storage price per GB-month for datasets and models.
    pub storage_price_per_gb_month: f64,
    /// How many stored checkpoints a run keeps (the newest ones), besides the one with the
    /// best validation loss; older archives are deleted as new ones land. At least 1.
    pub keep_checkpoints: u32,
    /// Also checkpoint every N optimizer steps (0: at the end of every epoch but the last,
    /// and on a stop), so a long single-epoch run can be continued.
    pub checkpoint_steps: u64,
    /// How the trainer spends the GPU (`[training.efficiency]`), passed to every run.
    pub efficiency: EfficiencyConfig,
}

/// The trainer's efficiency settings (PROTOCOL.md's `efficiency` object, less `gpu_count`,
/// which comes from each job). The defaults are what most runs want; these are here for the
/// runs that need otherwise (a model torch.compile breaks, a kernel to try).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EfficiencyConfig {
    /// Flattened batches without padding where a varlen attention kernel runs.
    pub padding_free: bool,
    /// Several short examples packed into one row.
    pub packing: bool,
    /// Activation checkpointing: when memory needs it, always, or never.
    pub gradient_checkpointing: Checkpointing,
    /// The LM head and its loss in chunks, so full logits never exist.
    pub chunked_loss: bool,
    pub torch_compile: bool,
    /// Liger kernels, where the package is installed on the worker.
    pub liger: bool,
}

impl Default for EfficiencyConfig {
    fn default() -> Self {
        Self {
            padding_free: true,
            packing: false,
            gradient_checkpointing: Checkpointing::Auto,
            chunked_loss: true,
            torch_compile: false,
            liger: false,
        }
    }
}

/// When the trainer recomputes activations instead of keeping them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Checkpointing {
    /// When the estimated activations would not fit in free GPU memory.
    #[default]
    Auto,
    On,
    Off,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// How often the dispatch task looks for queued jobs (it is also woken by new jobs).
    pub dispatch_interval_secs: u64,
    /// Jobs dispatched per cycle (the seed's batch of 5).
    pub dispatch_batch: usize,
    /// How often running jobs are polled for new events.
    pub poll_interval_millis: u64,
    /// Retries of infrastructure failures before a job fails.
    pub retry_count: u32,
    /// A running job with no event for this long gets a "stalled" warning.
    pub stall_after_secs: u64,
    /// Changes older than this are dropped from the change log (never one a durable
    /// consumer such as the Postgres mirror has not acknowledged). A client that was away
    /// longer reloads instead of resuming.
    pub change_log_retention_hours: u64,
    /// Failed authentications one address may make per minute before its further failures
    /// are slowed down (a second each) and answered 429 for the rest of the minute. A valid
    /// token is always accepted, whatever its address's failures. 0 turns the limit off.
    pub auth_failures_per_minute: u32,
    /// Seconds a cancelled trainer gets between SIGTERM (it saves a checkpoint) and SIGKILL.
    pub cancel_grace_secs: u64,
    /// A connection's request headers must arrive within this many seconds of its opening (or
    /// of the first byte of a later request): a slow or silent client is cut off.
    pub header_read_timeout_secs: u64,
    /// A connection with no request and no bytes either way for this long is closed (clients
    /// keep a pooled connection for 30 s, so this must be longer).
    pub idle_timeout_secs: u64,
    /// TCP connections that have not yet presented a valid token, at most; beyond it the
    /// oldest of them is closed. The TCP connections in all stay a reserve of file
    /// descriptors below the process's limit, so the Unix socket, the store and the
    /// trainers always have theirs.
    pub max_unauthenticated_connections: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainerConfig {
    /// An existing Python with the trainer's requirements; otherwise a venv is built in the cache.
    pub python: Option<PathBuf>,
    /// The trainer's source folder (`trainer/`); default: found beside the binary or in the repo.
    pub source_dir: Option<PathBuf>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetConfig {
    /// US dollars per calendar month; none means no budget.
    pub monthly_usd: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TuiConfig {
    pub theme: String,
    /// Action name → key, e.g. `quit = "ctrl-q"`.
    pub keys: BTreeMap<String, String>,
    pub tick_millis: u64,
}

impl Default for ProfileConfig {
    fn default() -> Self {
        Self {
            name: "default".into(),
            user_id: None,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: "local".into(),
            local_root: None,
            s3: S3Config::default(),
        }
    }
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            endpoint: None,
            region: "us-east-1".into(),
            force_path_style: false,
            datasets_bucket: "lora-datasets".into(),
            models_bucket: "lora-models".into(),
            prefix: None,
            part_size_mb: 16,
            concurrency: 8,
            profile: None,
            abort_unfinished_after_hours: 24,
            retry_for_secs: 300,
        }
    }
}

impl Default for ValidationConfig {
    fn default() -> Self {
        Self {
            holdout_fraction: 0.1,
            max_seq_length: 2048,
            tokenizer: None,
            split_seed: 42,
            interval_secs: 60,
        }
    }
}

impl Default for TrainingConfig {
    fn default() -> Self {
        Self {
            default_base_model: "mistralai/Mistral-7B-v0.1".into(),
            default_preset: "balanced".into(),
            default_gpu: "A100-80GB".into(),
            default_gpu_count: 1,
            default_backend: "local".into(),
            presets: BTreeMap::new(),
            gpus: BTreeMap::new(),
            models: BTreeMap::new(),
            storage_cost_per_job: 0.50,
            storage_price_per_gb_month: 0.021,
            keep_checkpoints: 3,
            checkpoint_steps: 0,
            efficiency: EfficiencyConfig::default(),
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            dispatch_interval_secs: 30,
            dispatch_batch: 5,
            poll_interval_millis: 500,
            retry_count: 3,
            stall_after_secs: 600,
            change_log_retention_hours: 168,
            auth_failures_per_minute: 10,
            cancel_grace_secs: 20,
            header_read_timeout_secs: 10,
            idle_timeout_secs: 60,
            max_unauthenticated_connections: 64,
        }
    }
}

impl Default for TuiConfig {
    fn default() -> Self {
        Self {
            theme: "dark".into(),
            keys: BTreeMap::new(),
            tick_millis: 1000,
        }
    }
}

impl Config {
    /// Reads `config.toml` (defaults when it is missing) and writes nothing. The profile user
    /// id may be unset: the engine settles it against the store's own record of it (see
    /// `engine::profile`), so a lost config never mints an id that hides every record.
    pub fn load(paths: &Paths) -> Result<Self, ConfigError> {
        let path = paths.config_file();
        let config = match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text).map_err(|message| ConfigError::Parse {
                path: path.clone(),
                message,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::default(),
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        config.check()?;
        Ok(config)
    }

    /// Parses `config.toml`. The error names the line and key but never quotes the text: a
    /// token put here by mistake would otherwise be echoed to stderr and the log.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| describe_toml_error(text, &e))
    }

    /// Writes atomically, so a crash never leaves half a config.
    pub fn save(&self, paths: &Paths) -> Result<(), ConfigError> {
        let path = paths.config_file();
        let write = |source| ConfigError::Write {
            path: path.clone(),
            source,
        };
        crate::private::create_dir_all(&paths.config_dir).map_err(write)?;
        let text = toml::to_string_pretty(self).expect("config always serialises");
        let tmp = path.with_extension("toml.tmp");
        // 0600: a token pasted into the config by mistake is not for other users.
        crate::private::write(&tmp, text).map_err(write)?;
        std::fs::rename(&tmp, &path).map_err(write)
    }

    /// The active profile's user id (always set in an open engine's config).
    pub fn user_id(&self) -> UserId {
        self.profile
            .user_id
            .expect("the engine sets the user id when it opens")
    }

    /// Range checks that serde cannot express.
    pub fn check(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            key: key.into(),
            message,
        };
        let f = self.validation.holdout_fraction;
        if !(0.0..=0.5).contains(&f) {
            return Err(invalid(
                "validation.holdout_fraction",
                format!("{f} is outside 0.0 to 0.5"),
            ));
        }
        if self.validation.max_seq_length == 0 {
            return Err(invalid("validation.max_seq_length", "must be > 0".into()));
        }
        match self.storage.backend.as_str() {
            "local" | "s3" => {}
            other => {
                return Err(invalid(
                    "storage.backend",
                    format!("`{other}` is not a store; use `local` or `s3`"),
                ));
            }
        }
        let s3 = &self.storage.s3;
        if !(5..=5120).contains(&s3.part_size_mb) {
            return Err(invalid(
                "storage.s3.part_size_mb",
                format!("{} is outside S3's 5 to 5120 MiB", s3.part_size_mb),
            ));
        }
        if !(1..=64).contains(&s3.concurrency) {
            return Err(invalid(
                "storage.s3.concurrency",
                format!("{} is outside 1 to 64", s3.concurrency),
            ));
        }
        if let Some(e) = &s3.endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(invalid(
                "storage.s3.endpoint",
                "must be an http:// or https:// URL".into(),
            ));
        }
        if let Some(url) = &self.mirror.url
            && url_has_password(url)
        {
            return Err(invalid(
                "mirror.url",
                "holds a password; put it in secrets.toml as `mirror_password` (or BRIGHTRUN_SECRET_MIRROR_PASSWORD) instead".into(),
            ));
        }
        let e = &self.evaluation;
        if e.samples > 64 {
            return Err(invalid(
                "evaluation.samples",
                format!("{} is outside 0 to 64", e.samples),
            ));
        }
        if !(1..=4096).contains(&e.max_new_tokens) {
            return Err(invalid(
                "evaluation.max_new_tokens",
                format!("{} is outside 1 to 4096", e.max_new_tokens),
            ));
        }
        let p = &self.playground;
        if !(1..=1440).contains(&p.idle_minutes) {
            return Err(invalid(
                "playground.idle_minutes",
                format!("{} is outside 1 to 1440", p.idle_minutes),
            ));
        }
        if !(1..=32768).contains(&p.max_new_tokens_limit) {
            return Err(invalid(
                "playground.max_new_tokens_limit",
                format!("{} is outside 1 to 32768", p.max_new_tokens_limit),
            ));
        }
        if self.engine.dispatch_batch == 0 {
            return Err(invalid("engine.dispatch_batch", "must be > 0".into()));
        }
        for (name, b) in &self.backends {
            let kind = b.kind_for(name);
            if !BACKEND_KINDS.contains(&kind) {
                return Err(invalid(
                    &format!("backends.{name}.kind"),
                    format!("`{kind}` is not a backend kind; use `local`, `ray` or `runpod`"),
                ));
            }
            match kind {
                "ray" => match b.address.as_deref() {
                    None => {
                        return Err(invalid(
                            &format!("backends.{name}.address"),
                            "a Ray backend needs its dashboard URL, e.g. `http://127.0.0.1:8265`"
                                .into(),
                        ));
                    }
                    Some(a) if !(a.starts_with("http://") || a.starts_with("https://")) => {
                        return Err(invalid(
                            &format!("backends.{name}.address"),
                            "must be an http:// or https:// URL (the Ray dashboard)".into(),
                        ));
                    }
                    Some(_) => {}
                },
                "runpod" => {
                    if b.endpoint_id.as_deref().is_none_or(|e| e.trim().is_empty()) {
                        return Err(invalid(
                            &format!("backends.{name}.endpoint_id"),
                            "a RunPod backend needs its Serverless endpoint's id".into(),
                        ));
                    }
                    if let Some(u) = &b.api_url
                        && !(u.starts_with("http://") || u.starts_with("https://"))
                    {
                        return Err(invalid(
                            &format!("backends.{name}.api_url"),
                            "must be an http:// or https:// URL".into(),
                        ));
                    }
                }
                _ => {}
            }
            if let Some(p) = b.price_per_hour
                && !(p.is_finite() && p >= 0.0)
            {
                return Err(invalid(
                    &format!("backends.{name}.price_per_hour"),
                    format!("{p} is not a non-negative amount"),
                ));
            }
        }
        if let Some(b) = self.budget.monthly_usd
            && !(b.is_finite() && b >= 0.0)
        {
            return Err(invalid(
                "budget.monthly_usd",
                format!("{b} is not a non-negative amount"),
            ));
        }
        self.check_tracking()?;
        self.check_webhooks()
    }

    fn check_tracking(&self) -> Result<(), ConfigError> {
        if let Some(m) = &self.tracking.mlflow {
            check_http_url("tracking.mlflow.uri", &m.uri)?;
            if m.experiment.trim().is_empty() {
                return Err(ConfigError::Invalid {
                    key: "tracking.mlflow.experiment".into(),
                    message: "is empty".into(),
                });
            }
        }
        if let Some(t) = &self.tracking.tensorboard
            && t.dir.as_os_str().is_empty()
        {
            return Err(ConfigError::Invalid {
                key: "tracking.tensorboard.dir".into(),
                message: "is empty".into(),
            });
        }
        Ok(())
    }

    fn check_webhooks(&self) -> Result<(), ConfigError> {
        let mut names = std::collections::BTreeSet::new();
        for (i, w) in self.webhooks.iter().enumerate() {
            let key = |field: &str| format!("webhooks[{i}].{field}");
            let invalid = |field: &str, message: String| ConfigError::Invalid {
                key: key(field),
                message,
            };
            let named = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
            if w.name.is_empty() || w.name.len() > 64 || !w.name.chars().all(named) {
                return Err(invalid(
                    "name",
                    "1 to 64 letters, digits, `-` or `_`".into(),
                ));
            }
            if !names.insert(w.name.as_str()) {
                return Err(invalid("name", format!("`{}` is used twice", w.name)));
            }
            check_http_url(&key("url"), &w.url)?;
            for e in &w.events {
                if !crate::domain::WEBHOOK_EVENTS.contains(&e.as_str()) {
                    return Err(invalid(
                        "events",
                        format!(
                            "`{e}` is not an event; one of {}",
                            crate::domain::WEBHOOK_EVENTS.join(", ")
                        ),
                    ));
                }
            }
            if w.secret.is_empty() || !w.secret.chars().all(named) {
                return Err(invalid(
                    "secret",
                    "the name of a secret (letters, digits, `-` or `_`), not the key itself".into(),
                ));
            }
            if !matches!(w.format.as_str(), "standard" | "slack") {
                return Err(invalid(
                    "format",
                    format!("`{}` is not `standard` or `slack`", w.format),
                ));
            }
            if !(1..=7 * 24 * 60).contains(&w.retry_minutes) {
                return Err(invalid("retry_minutes", "1 to 10080 (a week)".into()));
            }
            if !(1..=120).contains(&w.timeout_secs) {
                return Err(invalid("timeout_secs", "1 to 120".into()));
            }
        }
        Ok(())
    }
}

/// An `http://` or `https://` URL with a host and no credentials in it (they would be shown
/// by `config show`; secrets hold them).
fn check_http_url(key: &str, url: &str) -> Result<(), ConfigError> {
    let invalid = |message: &str| ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    };
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| invalid("must start with http:// or https://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() {
        return Err(invalid("has no host"));
    }
    if authority.contains('@') {
        return Err(invalid(
            "holds credentials; put a token in secrets.toml instead",
        ));
    }
    Ok(())
}

/// Whether a Postgres connection string carries a password (`postgres://u:p@h` or
/// `password=…`), which must live in secrets, never in config.toml.
pub fn url_has_password(url: &str) -> bool {
    if let Some((_, rest)) = url.split_once("://") {
        let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
        let authority = before_query.split('/').next().unwrap_or("");
        let in_userinfo = authority
            .rsplit_once('@')
            .is_some_and(|(userinfo, _)| userinfo.contains(':'));
        // `?password=…` anywhere among the parameters, its key percent-encoded or not.
        let in_query = query.split('&').any(|kv| {
            let key = kv.split('=').next().unwrap_or("");
            percent_decoded(key).trim().eq_ignore_ascii_case("password")
        });
        return in_userinfo || in_query;
    }
    // libpq's key/value form allows spaces around `=` (`password = x`).
    let lower = url.to_ascii_lowercase();
    lower.match_indices("password").any(|(i, _)| {
        let before = lower[..i].chars().next_back();
        let after = lower[i + "password".len()..].trim_start();
        before.is_none_or(char::is_whitespace) && after.starts_with('=')
    })
}

/// `%XX` escapes decoded (what a URL's parameter names may use); others left as they are.
fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A TOML parse error of a file that holds (or may hold, by mistake) secrets, as "line N, key
/// `k`: what is wrong": never the excerpt `toml` quotes, nor any quoted value, since the
/// offending value is often the secret itself (an unterminated string runs to the end of the
/// line) and the text goes to stderr and into the log.
pub fn describe_toml_error(text: &str, err: &toml::de::Error) -> String {
    let Some(span) = err.span() else {
        return format!("not valid TOML: {}", without_quoted(err.message()));
    };
    let start = span.start.min(text.len());
    let start = (0..=start)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    let line = text[..start].matches('\n').count() + 1;
    let key = text[..start]
        .lines()
        .chain(text[start..].lines().take(1))
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .find_map(key_of_line);
    let what = without_quoted(err.message());
    match key {
        Some(key) => format!("line {line}, key `{key}`: {what}"),
        None => format!("line {line}: {what}"),
    }
}

/// The key of a `key = value` line, when it looks like one.
fn key_of_line(line: &str) -> Option<String> {
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    let plain = !key.is_empty()
        && key.len() <= 64
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    plain.then(|| key.to_string())
}

/// The first line of a `toml`/serde message with anything in quotes (a value serde echoes,
/// as in `invalid type: string "…"`) replaced by `…`. Backticks hold tokens, field names and
/// numbers (``expected `"` ``, ``unknown field `x` ``): kept when short, elided when long.
fn without_quoted(message: &str) -> String {
    let first = message.lines().next().unwrap_or("").trim();
    let mut out = String::with_capacity(first.len());
    let mut rest = first;
    while let Some(c) = rest.chars().next() {
        if matches!(c, '"' | '\'' | '`') {
            let body = &rest[1..];
            let (inner, after) = match body.find(c) {
                Some(end) => (&body[..end], &body[end + 1..]),
                None => (body, ""),
            };
            out.push(c);
            if c == '`' && inner.chars().count() <= 24 {
                out.push_str(inner);
            } else {
                out.push('…');
            }
            out.push(c);
            rest = after;
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    if out.is_empty() {
        "not valid TOML".into()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(toml_text: &str) -> Result<(), ConfigError> {
        let c: Config = toml::from_str(toml_text).map_err(|e| ConfigError::Parse {
            path: "config.toml".into(),
            message: e.to_string(),
        })?;
        c.check()
    }

    fn refused(toml_text: &str, key: &str, needle: &str) {
        match parsed(toml_text) {
            Err(ConfigError::Invalid { key: k, message }) => {
                assert_eq!(k, key, "{message}");
                assert!(message.contains(needle), "{message}");
            }
            other => panic!("{toml_text}: {other:?}"),
        }
    }

    #[test]
    fn webhooks_and_trackers_are_checked_naming_the_entry() {
        let hook = |extra: &str| {
            format!(
                "[[webhooks]]\nname = \"ops\"\nurl = \"https://h.example/x?t=1\"\nsecret = \"ops_hook\"\n{extra}"
            )
        };
        parsed(&hook("events = [\"job.completed\"]\nformat = \"slack\"")).unwrap();
        refused(
            &hook("events = [\"job.done\"]"),
            "webhooks[0].events",
            "`job.done` is not an event",
        );
        refused(&hook("format = \"xml\""), "webhooks[0].format", "`xml`");
        refused(
            &hook("retry_minutes = 0"),
            "webhooks[0].retry_minutes",
            "1 to 10080",
        );
        refused(
            &format!("{}{}", hook(""), hook("")),
            "webhooks[1].name",
            "used twice",
        );
        refused(
            "[[webhooks]]\nname = \"a\"\nurl = \"https://user:pw@h.example/\"\nsecret = \"s\"\n",
            "webhooks[0].url",
            "credentials",
        );
        refused(
            "[[webhooks]]\nname = \"a\"\nurl = \"ftp://h.example/\"\nsecret = \"s\"\n",
            "webhooks[0].url",
            "http",
        );
        refused(
            "[[webhooks]]\nname = \"a\"\nurl = \"https://h.example/\"\nsecret = \"whsec_abc+/=\"\n",
            "webhooks[0].secret",
            "not the key itself",
        );
        parsed("[tracking.mlflow]\nuri = \"http://127.0.0.1:5000\"\n[tracking.tensorboard]\ndir = \"tb\"\n").unwrap();
        refused(
            "[tracking.mlflow]\nuri = \"127.0.0.1:5000\"\n",
            "tracking.mlflow.uri",
            "http",
        );
    }
}
