//! The engine API's vocabulary: every request a client may make and every reply it may get,
//! as serde types. The in-process engine and the daemon speak exactly these; the wire form is
//! JSON (`{"op": "list_jobs", …}` in, `{"kind": "jobs", "data": …}` out). Records keep the
//! field names of the domain tables, so scripts read the same names everywhere.
//!
//! Ids in requests are strings: a full id or a unique prefix, resolved by the engine, which
//! answers `not_found` or `ambiguous`.

use crate::domain::*;
use crate::ids::*;
use crate::reports::{CostSummary, Period};
use crate::training::{Estimate, GpuSpec, ModelSize, PresetInfo};
use serde::{Deserialize, Serialize};

/// Bumped when a request or reply changes incompatibly; a client refuses a daemon of another
/// version rather than misreading it.
pub const API_VERSION: u32 = 1;

/// The longest string a request field may hold (names, descriptions, ids).
pub const MAX_FIELD_LEN: usize = 4096;

/// A slice of a newest-first list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Paging {
    #[serde(default)]
    pub offset: usize,
    #[serde(default = "default_limit")]
    pub limit: usize,
}

fn default_limit() -> usize {
    50
}

impl Default for Paging {
    fn default() -> Self {
        Self {
            offset: 0,
            limit: default_limit(),
        }
    }
}

impl Paging {
    /// Everything (the dashboard's first load).
    pub const ALL: Paging = Paging {
        offset: 0,
        limit: usize::MAX,
    };
}

/// A run as a user asks for it; unset fields take the engine's defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// A dataset id or unique prefix.
    pub dataset: String,
    /// `fast`, `balanced`, `quality`, `custom` or a preset from config; empty: the default.
    #[serde(default)]
    pub preset: String,
    /// `key=value` overrides over the preset, in order (as `--set` takes them).
    #[serde(default)]
    pub sets: Vec<(String, String)>,
    #[serde(default)]
    pub gpu_type: Option<String>,
    #[serde(default)]
    pub gpu_count: Option<u32>,
    #[serde(default)]
    pub backend: Option<String>,
    /// Train on from this model's adapter (an id, prefix or name of the caller's): its base
    /// model and LoRA shape are kept, its weights are the start.
    #[serde(default)]
    pub from_model: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Who am I talking to: versions, user, store, the change log's last seq.
    Hello,
    /// Presets, GPUs, backends and defaults: what this engine will do with a job.
    Catalog,
    /// The effective config (secrets masked) and the paths in use.
    Config,

    ListDatasets {
        #[serde(default)]
        status: Option<DatasetStatus>,
        /// Case-insensitive match on name, file name or description.
        #[serde(default)]
        search: Option<String>,
        #[serde(default)]
        page: Paging,
    },
    GetDataset {
        id: String,
    },
    /// Creates a dataset record (`uploading`) and says where to send the bytes.
    CreateDataset {
        file_name: String,
        file_size: u64,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        description: Option<String>,
    },
    /// Imports a file the engine can read itself (client and engine share a filesystem).
    ImportDataset {
        path: String,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        description: Option<String>,
    },
    /// Hands an uploaded dataset to the validator (the seed's `confirm`).
    ConfirmDataset {
        id: String,
    },
    /// Validates now and answers with the verdict.
    ValidateDataset {
        id: String,
    },
    UpdateDataset {
        id: String,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        description: Option<String>,
    },
    /// Soft-deletes a dataset; with `purge` its stored object is deleted too.
    DeleteDataset {
        id: String,
        #[serde(default)]
        purge: bool,
    },
    /// Continues an upload that broke off (a killed `datasets add`), from its source file;
    /// with S3 the parts already stored are not sent again.
    ResumeDataset {
        id: String,
    },
    /// A new dataset from the valid examples of one with a few bad ones, with a report of
    /// what was dropped (lines and reasons).
    CleanDataset {
        id: String,
        /// Also drop exact duplicates.
        #[serde(default)]
        drop_duplicates: bool,
        /// The new dataset's name (default: the old one with " (clean)").
        #[serde(default)]
        name: Option<String>,
    },

    Estimate {
        spec: JobSpec,
    },
    CreateJob {
        spec: JobSpec,
        /// The user has seen that the run exceeds the monthly budget and wants it anyway.
        #[serde(default)]
        confirm_over_budget: bool,
    },
    ListJobs {
        #[serde(default)]
        status: Option<JobStatus>,
        #[serde(default)]
        page: Paging,
    },
    GetJob {
        id: String,
    },
    CancelJob {
        id: String,
    },
    /// A new job with a failed or cancelled job's configuration, continuing from its latest
    /// checkpoint on this machine (or one named by `checkpoint`); `from_scratch` starts at
    /// step 0.
    RetryJob {
        id: String,
        #[serde(default)]
        from_scratch: bool,
        /// The step of the checkpoint to continue from.
        #[serde(default)]
        checkpoint: Option<u64>,
        /// Run it on this backend instead of the old job's (its GPU type kept where offered).
        #[serde(default)]
        backend: Option<String>,
        /// Reply with the job it would queue (its resume point and estimate), queueing none.
        #[serde(default)]
        dry_run: bool,
    },
    JobMetrics {
        id: String,
        #[serde(default)]
        from_step: u64,
        #[serde(default)]
        limit: Option<usize>,
    },
    JobLogs {
        id: String,
        #[serde(default = "default_log_lines")]
        lines: usize,
    },

    ListModels {
        #[serde(default)]
        page: Paging,
    },
    GetModel {
        id: String,
    },
    /// What the run's `evaluating` stage measured of a model (`not_found` with the reason
    /// `not_evaluated` when it made no evaluation).
    ModelEvaluation {
        id: String,
    },
    /// Queues an evaluation job (`brightrun models eval`): each model, and its base, answers
    /// the prompts (or, without them, the first model's held-out examples and the probes) on
    /// a backend, like a training job; it makes no model, its result is a comparison.
    EvaluateModels {
        /// Model ids, unique prefixes or names (the caller's own), at most 8.
        models: Vec<String>,
        /// The prompt set (see `prompts::parse` for the file layouts it is read from).
        #[serde(default)]
        prompts: Option<Vec<EvalPrompt>>,
        /// The longest answer, in tokens (default `[evaluation] max_new_tokens`).
        #[serde(default)]
        max_new_tokens: Option<u32>,
        #[serde(default)]
        backend: Option<String>,
        #[serde(default)]
        gpu_type: Option<String>,
        /// The user has seen that the run exceeds the monthly budget and wants it anyway.
        #[serde(default)]
        confirm_over_budget: bool,
    },
    /// Queues an export job (`brightrun models export`): the adapter merged into its base,
    /// converted to GGUF (maybe quantized, maybe with an Ollama Modelfile) or to a GGUF LoRA,
    /// on a backend like a training job, and checked against base + adapter before it is
    /// stored as a model of its own kind (`parent_model_id` the adapter).
    ExportModel {
        /// The adapter: a model id, unique prefix or name (the caller's own).
        model: String,
        format: ExportFormat,
        /// Default `f16`.
        #[serde(default)]
        dtype: Option<ExportDtype>,
        /// A llama.cpp quantization (`gguf` only; `GGUF_QUANTIZATIONS`).
        #[serde(default)]
        quantize: Option<String>,
        /// Also an Ollama Modelfile (`gguf` only).
        #[serde(default)]
        ollama: bool,
        /// The exported model's name (default: the adapter's name and version, and the format).
        #[serde(default)]
        name: Option<String>,
        /// The Modelfile's `SYSTEM` prompt (with `ollama`).
        #[serde(default)]
        system_prompt: Option<String>,
        #[serde(default)]
        backend: Option<String>,
        #[serde(default)]
        gpu_type: Option<String>,
        /// The user has seen that the export exceeds the monthly budget and wants it anyway.
        #[serde(default)]
        confirm_over_budget: bool,
        /// Answer the job it would queue (its estimate) without queueing it.
        #[serde(default)]
        dry_run: bool,
    },
    /// Training runs side by side (2 to 6): the hyperparameters that differ, best and final
    /// losses, evaluation, cost and duration, and the best run.
    CompareRuns {
        ids: Vec<String>,
    },
    /// What a sweep would run and cost, before anything starts.
    PlanSweep {
        spec: SweepSpec,
    },
    /// Starts a sweep (after the same checks as its plan).
    CreateSweep {
        spec: SweepSpec,
        /// The user has seen that the sweep may take the month over its budget.
        #[serde(default)]
        confirm_over_budget: bool,
    },
    ListSweeps,
    GetSweep {
        id: String,
    },
    /// Stops a sweep: no further run starts, and its queued and running jobs are cancelled.
    CancelSweep {
        id: String,
    },
    /// The configured webhooks and how their deliveries stand.
    ListWebhooks,
    /// How the change log's consumers (MLflow, TensorBoard, the webhooks) are doing.
    TrackingStatus,
    /// Sends a signed `webhook.test` event to one webhook now and says what it answered.
    TestWebhook {
        name: String,
    },
    /// The delivery log, newest first.
    WebhookDeliveries {
        #[serde(default)]
        webhook: Option<String>,
        /// Only those that were not delivered within their retry window.
        #[serde(default)]
        failed: bool,
        #[serde(default)]
        page: Paging,
    },
    /// A job's checkpoints a run can continue from, oldest first: the stored ones and, for a
    /// run on the engine's machine, the folders still there (reported or not).
    JobCheckpoints {
        id: String,
    },
    /// A model of a job's checkpoint (an early step that was better than the end): its adapter
    /// files are stored like a finished run's.
    ModelFromCheckpoint {
        job: String,
        step: u64,
    },
    /// One example of a dataset rendered through a base model's chat template as the trainer
    /// will train it (`stats: false`; `example` or `line` picks it, else the first), or exact
    /// token counts over the whole dataset (`stats: true`). Runs the trainer's own code on the
    /// engine's machine; cached per dataset, model and length.
    InspectDataset {
        dataset: String,
        /// The base model (a Hub id or a local folder); the config's default when none.
        #[serde(default)]
        model: Option<String>,
        #[serde(default)]
        example: Option<u64>,
        #[serde(default)]
        line: Option<u64>,
        /// The run's `max_seq_length` (the default preset's when none).
        #[serde(default)]
        max_seq_length: Option<u32>,
        #[serde(default)]
        stats: bool,
    },
    /// What an evaluation job measured (`not_found` with the reason `not_evaluated` while it
    /// has not finished, or for a training job).
    JobComparison {
        id: String,
    },
    /// A presigned download URL for one file of a model (the weights by default), to share.
    ModelUrl {
        id: String,
        #[serde(default)]
        file: Option<String>,
        /// How long the URL lasts; default 24 h, at most 7 days.
        #[serde(default)]
        expires_secs: Option<u64>,
    },
    /// Soft-deletes a model; with `purge` its stored files are deleted too.
    DeleteModel {
        id: String,
        #[serde(default)]
        purge: bool,
    },
    /// Checks the object store: reachable, buckets present (created with `create_buckets`,
    /// owner only), and a put/get/delete probe.
    StorageCheck {
        #[serde(default)]
        create_buckets: bool,
    },
    /// The cluster backends (`[backends.NAME]`) and their health: the latest verdicts, or
    /// fresh ones (each backend asked at once) with `check`.
    Backends {
        #[serde(default)]
        check: bool,
    },
    /// A consistent copy of the store in the data dir's `backups/` (owner only: it holds
    /// every user's records). Listing and restoring need no engine: see `brightrun backup`.
    CreateBackup,
    /// Checks the store, the config, the object store against the records, the job folders
    /// and what interrupted writes left; with `repair`, removes stale temporary files and
    /// moves orphaned objects and job folders into `quarantine/` (owner only: the report
    /// names every user's records, and a repair moves files).
    Doctor {
        #[serde(default)]
        repair: bool,
    },

    Costs {
        period: Period,
    },
    ListNotifications {
        #[serde(default)]
        unread_only: bool,
        #[serde(default)]
        page: Paging,
    },
    /// Marks one notification read, or all of them when `id` is absent.
    MarkRead {
        #[serde(default)]
        id: Option<String>,
    },

    /// A new bearer token for TCP clients; only the owner (on the Unix socket or embedded)
    /// may manage tokens.
    CreateToken {
        /// A user name; a new name becomes a new user. Absent: the profile's user.
        #[serde(default)]
        user: Option<String>,
        /// When the token stops being accepted (in the future). Absent: never.
        #[serde(default)]
        expires_at: Option<Timestamp>,
    },
    ListTokens,
    RevokeToken {
        id: String,
    },

    /// The Postgres mirror's state: in sync, how far behind, unreachable and why.
    MirrorStatus,
    /// Pushes to the mirror now; answers once PostgreSQL holds every change committed before
    /// the request, or fails (`unavailable`) after `timeout_secs` (default 60).
    MirrorSync {
        #[serde(default)]
        #[schemars(range(min = 1, max = 3600))]
        timeout_secs: Option<u64>,
    },
    /// Compares this engine's records with their PostgreSQL rows: counts and checksums per
    /// table, and the ids that differ.
    MirrorVerify,
    /// Applies the mirror's schema migrations the database lacks, now rather than when the
    /// mirror starts; `dry_run` applies nothing and answers the pending migrations' SQL.
    MirrorMigrate {
        #[serde(default)]
        dry_run: bool,
    },
}

fn default_log_lines() -> usize {
    200
}

impl Request {
    /// The operation's name, as the wire spells it (for metrics and logs).
    pub fn op(&self) -> &'static str {
        match self {
            Self::Hello => "hello",
            Self::Catalog => "catalog",
            Self::Config => "config",
            Self::ListDatasets { .. } => "list_datasets",
            Self::GetDataset { .. } => "get_dataset",
            Self::CreateDataset { .. } => "create_dataset",
            Self::ImportDataset { .. } => "import_dataset",
            Self::ConfirmDataset { .. } => "confirm_dataset",
            Self::ValidateDataset { .. } => "validate_dataset",
            Self::UpdateDataset { .. } => "update_dataset",
            Self::DeleteDataset { .. } => "delete_dataset",
            Self::ResumeDataset { .. } => "resume_dataset",
            Self::ModelUrl { .. } => "model_url",
            Self::DeleteModel { .. } => "delete_model",
            Self::StorageCheck { .. } => "storage_check",
            Self::Backends { .. } => "backends",
            Self::CreateBackup => "create_backup",
            Self::Doctor { .. } => "doctor",
            Self::CleanDataset { .. } => "clean_dataset",
            Self::Estimate { .. } => "estimate",
            Self::CreateJob { .. } => "create_job",
            Self::ListJobs { .. } => "list_jobs",
            Self::GetJob { .. } => "get_job",
            Self::CancelJob { .. } => "cancel_job",
            Self::RetryJob { .. } => "retry_job",
            Self::JobMetrics { .. } => "job_metrics",
            Self::JobLogs { .. } => "job_logs",
            Self::ListModels { .. } => "list_models",
            Self::GetModel { .. } => "get_model",
            Self::ModelEvaluation { .. } => "model_evaluation",
            Self::EvaluateModels { .. } => "evaluate_models",
            Self::ExportModel { .. } => "export_model",
            Self::JobComparison { .. } => "job_comparison",
            Self::JobCheckpoints { .. } => "job_checkpoints",
            Self::InspectDataset { .. } => "inspect_dataset",
            Self::CompareRuns { .. } => "compare_runs",
            Self::PlanSweep { .. } => "plan_sweep",
            Self::CreateSweep { .. } => "create_sweep",
            Self::ListSweeps => "list_sweeps",
            Self::GetSweep { .. } => "get_sweep",
            Self::CancelSweep { .. } => "cancel_sweep",
            Self::ListWebhooks => "list_webhooks",
            Self::TrackingStatus => "tracking_status",
            Self::TestWebhook { .. } => "test_webhook",
            Self::WebhookDeliveries { .. } => "webhook_deliveries",
            Self::ModelFromCheckpoint { .. } => "model_from_checkpoint",
            Self::Costs { .. } => "costs",
            Self::ListNotifications { .. } => "list_notifications",
            Self::MarkRead { .. } => "mark_read",
            Self::CreateToken { .. } => "create_token",
            Self::ListTokens => "list_tokens",
            Self::RevokeToken { .. } => "revoke_token",
            Self::MirrorStatus => "mirror_status",
            Self::MirrorSync { .. } => "mirror_sync",
            Self::MirrorVerify => "mirror_verify",
            Self::MirrorMigrate { .. } => "mirror_migrate",
        }
    }

    /// Whether only the owner of the engine may make it: token management, importing a file
    /// by path (the engine would read any file it can; only the owner, on the Unix socket or
    /// embedded, shares its filesystem), and the engine-wide maintenance requests (doctor,
    /// backups, creating buckets, verifying the mirror). Refused to others as `unauthorized`
    /// with the reason `owner_only`.
    pub fn owner_only(&self) -> bool {
        matches!(
            self,
            Self::CreateToken { .. }
                | Self::ListTokens
                | Self::RevokeToken { .. }
                | Self::ImportDataset { .. }
                | Self::StorageCheck {
                    create_buckets: true
                }
                | Self::MirrorVerify
                | Self::MirrorMigrate { .. }
                | Self::CreateBackup
                | Self::Doctor { .. }
        )
    }
}

/// One page of a list and how many there are in all.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
}

/// Where an engine is and what it runs on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EngineInfo {
    pub api_version: u32,
    /// BrightRun's version (the crate's).
    pub version: String,
    pub pid: u32,
    /// The caller's user.
    pub user_id: UserId,
    pub profile: String,
    /// `local` or `s3`.
    pub storage: String,
    pub store_path: String,
    pub schema_version: u64,
    /// The change log's last seq when this was answered.
    pub last_seq: u64,
}

/// What the engine would do with a job: the Configure tab and `--help` texts come from here,
/// so a dashboard attached to a daemon shows the daemon's presets and GPUs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Catalog {
    pub presets: Vec<PresetInfo>,
    pub default_preset: String,
    pub gpus: Vec<GpuSpec>,
    /// Set when the config's GPU overrides are invalid (the built-in catalog is then listed).
    pub gpu_error: Option<String>,
    pub default_gpu: String,
    pub default_gpu_count: u32,
    pub backends: Vec<String>,
    pub default_backend: String,
    pub profile: String,
    pub storage: String,
    /// The base models whose size the estimate knows (built-in, then config entries): any
    /// other Hugging Face id needs `parameters_billions`.
    #[serde(default)]
    pub base_models: Vec<ModelSize>,
}

/// The effective configuration as `config show` prints it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConfigInfo {
    /// The effective config as JSON (secrets never live in it).
    pub config: serde_json::Value,
    /// The same, as TOML, for people.
    pub config_toml: String,
    /// What → where: config_file, secrets_file, data_dir, database, objects, logs, trainer_cache.
    pub paths: std::collections::BTreeMap<String, String>,
    /// Secrets that are set, masked.
    pub secrets: Vec<SecretInfo>,
    pub schema_version: u64,
    pub storage: String,
}

/// A secret that is set: its name, a masked value and where it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SecretInfo {
    pub name: String,
    pub value: String,
    pub source: String,
}

/// Where to send a new dataset's bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UploadTarget {
    /// Straight to storage (S3): large files never pass through the engine.
    Presigned { method: String, url: String },
    /// To the engine's own upload route (relative to its address).
    Engine { method: String, path: String },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct UploadTicket {
    pub dataset: Dataset,
    pub upload: UploadTarget,
}

/// A cleaned dataset and what was left out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Cleaned {
    pub dataset: Dataset,
    pub report: crate::reports::CleanReport,
}

/// A token as listed (never the secret itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TokenInfo {
    pub id: String,
    pub user_id: UserId,
    pub user_name: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    /// When it stops being accepted; none: never.
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
    /// Its last successful use (recorded at most once a minute); none: never used.
    #[serde(default)]
    pub last_used_at: Option<Timestamp>,
}

/// A new token: the secret is shown this once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NewToken {
    pub token: String,
    #[serde(flatten)]
    pub info: TokenInfo,
}

/// A cost summary with this month's spend (for the budget gauge).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CostsReport {
    pub summary: CostSummary,
    pub month_spent: Option<f64>,
}

// One reply per request, built once and moved once: a job (the largest, and the most common)
// inline costs less than a box for every reply.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum Reply {
    Hello(EngineInfo),
    Catalog(Catalog),
    Config(ConfigInfo),
    Dataset(Dataset),
    Datasets(Listing<Dataset>),
    Upload(UploadTicket),
    Cleaned(Cleaned),
    Estimate(Box<Estimate>),
    Job(TrainingJob),
    Jobs(Listing<TrainingJob>),
    Metrics(Vec<MetricsPoint>),
    Checkpoints(Vec<Checkpoint>),
    ExampleInspection(Box<ExampleInspection>),
    RunComparison(Box<RunComparison>),
    SweepPlan(Box<SweepPlan>),
    Sweep(Box<Sweep>),
    Sweeps(Vec<Sweep>),
    Webhooks(Vec<WebhookInfo>),
    Consumers(Vec<ConsumerStatus>),
    WebhookDelivery(Box<WebhookDelivery>),
    WebhookDeliveries(Vec<WebhookDelivery>),
    DatasetInspection(Box<DatasetInspection>),
    Logs(Vec<String>),
    Model(ModelArtifact),
    Evaluation(Evaluation),
    Comparison(Comparison),
    Models(Listing<ModelArtifact>),
    Costs(Box<CostsReport>),
    Notifications(Listing<Notification>),
    Count(usize),
    Token(NewToken),
    Tokens(Vec<TokenInfo>),
    TokenRevoked(TokenInfo),
    Url(crate::reports::SharedUrl),
    StorageCheck(crate::reports::StorageReport),
    Backends(Vec<crate::reports::BackendInfo>),
    Backup(crate::reports::BackupInfo),
    Doctor(crate::reports::DoctorReport),
    Mirror(crate::mirror::MirrorStatus),
    MirrorVerify(crate::mirror::VerifyReport),
    MirrorMigrate(crate::mirror::MigrationReport),
}

impl Reply {
    /// The variant's wire name, for error messages about unexpected replies.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Hello(_) => "hello",
            Self::Catalog(_) => "catalog",
            Self::Config(_) => "config",
            Self::Dataset(_) => "dataset",
            Self::Datasets(_) => "datasets",
            Self::Upload(_) => "upload",
            Self::Cleaned(_) => "cleaned",
            Self::Estimate(_) => "estimate",
            Self::Job(_) => "job",
            Self::Jobs(_) => "jobs",
            Self::Metrics(_) => "metrics",
            Self::Checkpoints(_) => "checkpoints",
            Self::ExampleInspection(_) => "example_inspection",
            Self::RunComparison(_) => "run_comparison",
            Self::SweepPlan(_) => "sweep_plan",
            Self::Sweep(_) => "sweep",
            Self::Sweeps(_) => "sweeps",
            Self::Webhooks(_) => "webhooks",
            Self::Consumers(_) => "consumers",
            Self::WebhookDelivery(_) => "webhook_delivery",
            Self::WebhookDeliveries(_) => "webhook_deliveries",
            Self::DatasetInspection(_) => "dataset_inspection",
            Self::Logs(_) => "logs",
            Self::Model(_) => "model",
            Self::Evaluation(_) => "evaluation",
            Self::Comparison(_) => "comparison",
            Self::Models(_) => "models",
            Self::Costs(_) => "costs",
            Self::Notifications(_) => "notifications",
            Self::Count(_) => "count",
            Self::Token(_) => "token",
            Self::Tokens(_) => "tokens",
            Self::TokenRevoked(_) => "token_revoked",
            Self::Url(_) => "url",
            Self::StorageCheck(_) => "storage_check",
            Self::Backends(_) => "backends",
            Self::Backup(_) => "backup",
            Self::Doctor(_) => "doctor",
            Self::Mirror(_) => "mirror",
            Self::MirrorVerify(_) => "mirror_verify",
            Self::MirrorMigrate(_) => "mirror_migrate",
        }
    }
}
