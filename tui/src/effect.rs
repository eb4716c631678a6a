//! Effects: what the app wants done outside itself, returned as values from
//! [`crate::App::handle`]. The runtime executes them against the engine in spawned tasks and
//! reports back with [`Outcome`]s, so the app never waits on disk or network and tests can
//! drive it with no engine at all.

use crate::action::Period;
use brightrun_api::chat::{ChatEvent, ChatMessage};
use brightrun_api::domain::*;
use brightrun_api::ids::*;
use brightrun_api::{ApiError, InspectAt};
use std::path::PathBuf;

/// A job as the Configure form asks for it; the runtime turns it into the engine's
/// `JobRequest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobDraft {
    pub dataset_id: DatasetId,
    pub preset: String,
    /// `key=value` settings over the preset, as `--set` takes them.
    pub sets: Vec<(String, String)>,
    pub gpu_type: Option<String>,
    pub gpu_count: Option<u32>,
    pub backend: Option<String>,
    /// Train on from this model's adapter (its base model and LoRA shape kept).
    pub from_model: Option<ArtifactId>,
}

impl JobDraft {
    /// The engine's job spec for this draft (the runtime sends it; a sweep's base job is one).
    pub fn to_spec(&self) -> brightrun_api::JobSpec {
        brightrun_api::JobSpec {
            dataset: self.dataset_id.to_string(),
            preset: self.preset.clone(),
            sets: self.sets.clone(),
            gpu_type: self.gpu_type.clone(),
            gpu_count: self.gpu_count,
            backend: self.backend.clone(),
            // The full id: a prefix could match another model later.
            from_model: self.from_model.map(|m| m.to_string()),
        }
    }
}

/// Where a retried job starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryFrom {
    /// The latest checkpoint the engine can continue from (step 0 without one).
    Latest,
    /// The checkpoint at this step.
    Step(u64),
    /// Step 0.
    Scratch,
}

/// Identifies a long-running piece of work the status bar shows.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaskKey {
    /// An upload started from this UI (request number).
    Upload(u64),
    /// A download started from this UI (request number).
    Download(u64),
    /// Engine-reported work: validation of a dataset.
    Validation(DatasetId),
    /// Engine-reported work: an upload or download it runs.
    EngineUpload(DatasetId),
    EngineDownload(ArtifactId),
    /// The trainer's environment being built.
    TrainerEnvironment,
    /// A dataset counted for `datasets inspect --stats`.
    Inspection(DatasetId),
}

/// Something for the runtime to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Leave the app (the runtime restores the terminal).
    Quit,
    /// Reload every list from the engine (after `ctrl-r` or a lagged event stream).
    Reload,
    /// Resolve a theme that is not built in (a file).
    LoadTheme(String),
    /// Open the desktop's own file dialog (rfd), when there is a desktop session.
    NativeFileDialog {
        request: u64,
    },
    /// List a folder for the file browser (path as typed).
    ListDir {
        request: u64,
        dir: PathBuf,
    },
    /// `add_dataset` with progress; `request` keys the progress reports.
    AddDataset {
        request: u64,
        path: PathBuf,
        name: Option<String>,
    },
    ValidateDataset(DatasetId),
    RenameDataset(DatasetId, String),
    DescribeDataset(DatasetId, String),
    DeleteDataset(DatasetId),
    /// `datasets clean` with duplicates dropped: a new dataset of the valid examples.
    CleanDataset(DatasetId),
    /// Load a job's stored metrics and the tail of its log (when the monitor opens it).
    LoadJobDetail(JobId),
    /// Estimate a draft (debounced by `seq`: only the latest answer is used).
    Estimate {
        seq: u64,
        draft: JobDraft,
    },
    CreateJob {
        draft: JobDraft,
        confirm_over_budget: bool,
    },
    CancelJob(JobId),
    /// What a sweep would run and cost (the Configure tab's confirmation of a sweep); the
    /// answer comes back as [`Outcome::SweepPlanned`] under `request`.
    PlanSweep {
        request: u64,
        spec: SweepSpec,
    },
    /// Starts a sweep the user confirmed from its plan.
    CreateSweep {
        spec: SweepSpec,
        confirm_over_budget: bool,
    },
    /// Stops a sweep: no further run starts, its queued and running jobs are cancelled.
    CancelSweep(SweepId),
    /// What a retry of the job can start from: its checkpoints, and dry runs of a retry
    /// from the latest one and from scratch (the retry dialog, keyed by `request`).
    LoadRetryChoices {
        request: u64,
        id: JobId,
    },
    RetryJob {
        id: JobId,
        from: RetryFrom,
    },
    DownloadArtifact {
        request: u64,
        id: ArtifactId,
        to: PathBuf,
        force: bool,
    },
    LoadCosts(Period),
    /// Load a model's evaluation (the Models tab's Evaluation view and its quality line).
    LoadEvaluation(ArtifactId),
    /// `None` marks every notification read.
    MarkRead(Option<NotificationId>),
    /// A chat turn with a model (the Chat view): the whole conversation, answered by the
    /// adapter or, with `base`, by the base model; its events come back as
    /// [`Outcome::Chat`] under `request` as they stream.
    Chat {
        request: u64,
        model: ArtifactId,
        messages: Vec<ChatMessage>,
        base: bool,
    },
    /// Stop following a chat reply: its stream is dropped, which ends the generation on the
    /// engine's side.
    StopChat(u64),
    /// One example of a dataset as `model` trains on it, token by token (the Inspect view);
    /// the answer comes back as [`Outcome::InspectExample`] under `request`.
    InspectExample {
        request: u64,
        dataset: DatasetId,
        model: String,
        at: InspectAt,
        /// Where the cut is marked (none: the engine's default preset's).
        max_seq_length: Option<u32>,
    },
    /// Exact counts over a whole dataset with `model` (the Inspect view's `s`); the answer
    /// comes back as [`Outcome::InspectStats`].
    InspectStats {
        request: u64,
        dataset: DatasetId,
        model: String,
        max_seq_length: Option<u32>,
    },
    /// The engine's comparison of 2 to 6 training jobs (the Jobs tab's Compare view); the
    /// answer comes back as [`Outcome::RunsCompared`] under `request`.
    CompareRuns {
        request: u64,
        ids: Vec<JobId>,
    },
    /// What an export of the adapter `model` would queue, without queueing it (the export
    /// dialog's estimate: `options` is sent as a dry run); the answer comes back as
    /// [`Outcome::ExportPlanned`] under `request`.
    PlanExport {
        request: u64,
        model: ArtifactId,
        options: ExportOptions,
    },
    /// Queues the export the user confirmed from its estimate; the answer comes back as
    /// [`Outcome::ExportQueued`].
    ExportModel {
        model: ArtifactId,
        options: ExportOptions,
    },
    /// One compared run's stored metrics (asked once per run when the Compare view opens;
    /// live points come with the engine's events); the answer comes back as
    /// [`Outcome::RunMetrics`] under `request`.
    LoadRunMetrics {
        request: u64,
        id: JobId,
    },
}

/// The costs tab's data for one period, whatever the engine's own summary type looks like.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CostsView {
    pub period: crate::action::Period,
    /// Label of the period, e.g. `2026-11-19 → 2026-11-25`.
    pub label: String,
    pub total: f64,
    pub by_type: Vec<(CostType, f64)>,
    /// Per day (or per month for a year), oldest first: (label, amount).
    pub by_day: Vec<(String, f64)>,
    /// Most expensive jobs first: (job, label, amount).
    pub by_job: Vec<(Option<JobId>, String, f64)>,
    /// Monthly budget and this month's spend.
    pub budget: Option<f64>,
    pub month_spent: f64,
}

/// The Configure tab's estimate, whatever the engine's own type looks like.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EstimateView {
    pub estimated_cost: f64,
    pub compute_cost: f64,
    pub storage_cost: f64,
    pub estimated_duration_hours: f64,
    pub hourly_rate: f64,
    pub total_steps: u64,
    pub steps_per_epoch: u64,
    pub throughput_tokens_per_sec: f64,
    /// `fits`, `tight`, `will not fit`, with the figures.
    pub fit: String,
    /// Whether the fit verdict is a problem (tight: warning, does not fit: error).
    pub fit_level: Level,
    /// What would make it fit.
    pub fit_advice: Vec<String>,
    /// How the run leaves the month's spend, if there is a budget.
    pub budget: Option<String>,
    pub over_budget: bool,
    /// What the throughput rests on: `calibrated from 3 runs`, or the catalog's (or this
    /// machine's) figure scaled to the model.
    pub throughput_note: String,
    /// The `local` GPU type: this machine, at `[backends.local] price_per_hour`.
    pub local: bool,
}

/// What the retry dialog asked the engine: the job's checkpoints, and the jobs a retry
/// from the latest checkpoint and from scratch would queue (dry runs).
#[derive(Clone, Debug)]
pub struct RetryAnswer {
    /// The dialog's request.
    pub request: u64,
    pub checkpoints: Result<Vec<Checkpoint>, ApiError>,
    pub latest: Result<TrainingJob, ApiError>,
    pub scratch: Result<TrainingJob, ApiError>,
}

/// How loud a message is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Level {
    #[default]
    Info,
    Success,
    Warning,
    Error,
}

/// One entry of a folder listing for the file browser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The name as shown: cleaned of control characters, so never a path to open.
    pub name: String,
    /// The name as the file system has it: what a chosen entry opens.
    pub raw: std::ffi::OsString,
    pub is_dir: bool,
    pub size: u64,
}

/// The answer to an effect (or a progress report while it runs). Engine answers carry the
/// [`ApiError`] itself, so the dashboard acts on its code and reason, never on its text.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// A fresh copy of everything (answer to [`Effect::Reload`]).
    Snapshot(Box<crate::Snapshot>),
    Theme(Result<crate::theme::Theme, String>),
    DirListing {
        request: u64,
        dir: PathBuf,
        entries: Result<Vec<DirEntry>, String>,
    },
    /// What the desktop file dialog returned (None: cancelled or unavailable).
    NativeFile {
        request: u64,
        path: Option<PathBuf>,
    },
    /// Bytes done of a UI-started upload or download.
    Progress {
        task: TaskKey,
        label: String,
        done: u64,
        total: u64,
    },
    DatasetAdded {
        request: u64,
        result: Result<Dataset, ApiError>,
    },
    /// Rename, describe, validate, delete.
    DatasetChanged {
        what: &'static str,
        result: Result<Dataset, ApiError>,
    },
    JobDetail {
        job_id: JobId,
        metrics: Result<Vec<MetricsPoint>, ApiError>,
        log: Result<Vec<String>, ApiError>,
        /// Oldest first.
        checkpoints: Result<Vec<Checkpoint>, ApiError>,
    },
    /// The answer to [`Effect::LoadRetryChoices`].
    RetryChoices(Box<RetryAnswer>),
    Estimate {
        seq: u64,
        result: Result<EstimateView, ApiError>,
    },
    JobCreated(Result<TrainingJob, ApiError>),
    /// The answer to [`Effect::PlanSweep`], with the spec it plans (what a confirmation
    /// creates).
    SweepPlanned {
        request: u64,
        spec: Box<SweepSpec>,
        result: Result<Box<SweepPlan>, ApiError>,
    },
    SweepCreated(Result<Box<Sweep>, ApiError>),
    SweepCancelled(Result<Box<Sweep>, ApiError>),
    /// Cancel or retry.
    JobChanged {
        what: &'static str,
        result: Result<TrainingJob, ApiError>,
    },
    Downloaded {
        request: u64,
        id: ArtifactId,
        to: PathBuf,
        result: Result<Vec<PathBuf>, ApiError>,
    },
    Costs(Result<CostsView, ApiError>),
    /// A model's evaluation; `Reason::NotEvaluated` when it has none.
    Evaluation {
        id: ArtifactId,
        result: Result<Evaluation, ApiError>,
    },
    MarkedRead(Result<usize, ApiError>),
    /// One event of a chat reply, in order (`started`, `delta`s, then `done` or `error`). A
    /// request the engine refused, or a stream cut short, ends with an `error`.
    Chat {
        request: u64,
        event: ChatEvent,
    },
    /// The answer to [`Effect::InspectExample`].
    InspectExample {
        request: u64,
        result: Result<Box<ExampleInspection>, ApiError>,
    },
    /// The answer to [`Effect::InspectStats`], with what was asked (exact counts are kept
    /// for the dataset's detail even when the view has moved on).
    InspectStats {
        request: u64,
        dataset: DatasetId,
        result: Result<Box<DatasetInspection>, ApiError>,
    },
    /// The answer to [`Effect::CompareRuns`].
    RunsCompared {
        request: u64,
        result: Result<Box<RunComparison>, ApiError>,
    },
    /// The answer to [`Effect::PlanExport`]: the job the export would queue (its estimate).
    ExportPlanned {
        request: u64,
        result: Result<Box<TrainingJob>, ApiError>,
    },
    /// The answer to [`Effect::ExportModel`], with what was asked (an export over the
    /// budget is asked again with `confirm_over_budget`).
    ExportQueued {
        model: ArtifactId,
        options: Box<ExportOptions>,
        result: Result<Box<TrainingJob>, ApiError>,
    },
    /// The answer to [`Effect::LoadRunMetrics`].
    RunMetrics {
        request: u64,
        id: JobId,
        result: Result<Vec<MetricsPoint>, ApiError>,
    },
}
