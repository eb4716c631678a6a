use super::Timestamp;
use crate::ids::{ArtifactId, DatasetId, JobId, UserId};
use serde::{Deserialize, Serialize};

/// The lifecycle of DESIGN.md: `queued → initializing → running → completed | failed | cancelled`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Initializing,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 6] = [
        Self::Queued,
        Self::Initializing,
        Self::Running,
        Self::Completed,
        Self::Failed,
        Self::Cancelled,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Initializing => "initializing",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// A job in a terminal state never changes status again.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }

    /// Active jobs hold a dataset and cost money.
    pub fn is_active(&self) -> bool {
        !self.is_terminal()
    }
}

impl std::str::FromStr for JobStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown job status `{s}` (expected one of queued, initializing, running, completed, failed, cancelled)"))
    }
}

/// Finer-grained than the status: what the trainer is doing now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStage {
    Queued,
    Initializing,
    Training,
    Validating,
    Saving,
    Completed,
    /// The base model and the adapter side by side on held-out examples and probes, after
    /// training and before saving (`[evaluation]`). Last, so earlier stages keep their
    /// stored numbers.
    Evaluating,
}

impl JobStage {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Initializing => "initializing",
            Self::Training => "training",
            Self::Validating => "validating",
            Self::Saving => "saving",
            Self::Completed => "completed",
            Self::Evaluating => "evaluating",
        }
    }
}

/// The named hyperparameter sets of DESIGN.md; `Custom` means the user changed values.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PresetId {
    Fast,
    Balanced,
    Quality,
    Custom,
    /// A preset defined in the user's config.
    User(String),
}

impl PresetId {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Fast => "fast",
            Self::Balanced => "balanced",
            Self::Quality => "quality",
            Self::Custom => "custom",
            Self::User(s) => s,
        }
    }
}

/// Learning-rate schedule shapes the trainer supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scheduler {
    Linear,
    Cosine,
    Constant,
    ConstantWithWarmup,
}

impl Scheduler {
    pub const ALL: [Scheduler; 4] = [
        Self::Linear,
        Self::Cosine,
        Self::Constant,
        Self::ConstantWithWarmup,
    ];
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Linear => "linear",
            Self::Cosine => "cosine",
            Self::Constant => "constant",
            Self::ConstantWithWarmup => "constant_with_warmup",
        }
    }
}

/// How the base model's weights are loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Quantization {
    /// 16-bit weights (bf16/fp16).
    None,
    /// QLoRA: 4-bit NF4 weights.
    #[serde(rename = "4bit")]
    FourBit,
}

/// Everything the trainer needs to know about how to train. Ranges live in `training::ranges`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Hyperparameters {
    pub base_model: String,
    pub learning_rate: f64,
    pub batch_size: u32,
    pub gradient_accumulation_steps: u32,
    pub epochs: u32,
    pub lora_rank: u32,
    pub lora_alpha: u32,
    pub lora_dropout: f64,
    pub target_modules: Vec<String>,
    pub warmup_ratio: f64,
    pub warmup_steps: Option<u32>,
    pub weight_decay: f64,
    pub scheduler: Scheduler,
    pub max_seq_length: u32,
    pub seed: u64,
    pub use_validation: bool,
    pub quantization: Quantization,
    /// How the run learns: `sft` (the default) or a preference method with its own
    /// hyperparameters.
    #[serde(default)]
    pub method: super::TrainingMethod,
}

/// Which GPUs, how many, and on which backend.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GpuConfig {
    /// Catalog id, e.g. `A100-80GB`.
    pub gpu_type: String,
    pub gpu_count: u32,
    /// Price per GPU-hour at the time the job was created (the catalog may change later).
    pub price_per_gpu_hour: f64,
    pub backend: String,
}

/// The latest figures reported by the trainer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CurrentMetrics {
    pub training_loss: Option<f64>,
    pub validation_loss: Option<f64>,
    pub learning_rate: Option<f64>,
    pub gradient_norm: Option<f64>,
    pub throughput: Option<f64>,
    pub gpu_utilization: Option<f64>,
}

/// A checkpoint of an earlier job that a job continues from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResumePoint {
    pub job_id: JobId,
    pub step: u64,
}

/// A training job record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TrainingJob {
    pub id: JobId,
    pub user_id: UserId,
    pub dataset_id: DatasetId,
    pub preset_id: PresetId,
    pub hyperparameters: Hyperparameters,
    pub gpu_config: GpuConfig,
    pub status: JobStatus,
    pub current_stage: JobStage,
    /// 0..=100.
    pub progress: f64,
    pub current_epoch: u32,
    pub total_epochs: u32,
    pub current_step: u64,
    pub total_steps: u64,
    pub current_metrics: CurrentMetrics,
    pub queued_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
    pub estimated_completion_at: Option<Timestamp>,
    pub estimated_cost: f64,
    pub current_cost: f64,
    pub final_cost: Option<f64>,
    pub error_message: Option<String>,
    pub error_detail: Option<String>,
    pub retry_count: u32,
    /// The backend's id for the submission (unique); equal to the job id for idempotent backends.
    pub external_job_id: Option<String>,
    /// Where the engine has read the backend's event stream up to.
    pub event_cursor: u64,
    pub artifact_id: Option<ArtifactId>,
    /// The job this one retries, if any.
    pub retry_of: Option<JobId>,
    pub last_event_at: Option<Timestamp>,
    /// A retried infrastructure failure waits until then (backoff).
    pub next_attempt_at: Option<Timestamp>,
    /// The first training loss seen, for the exploding-loss warning and the quality score.
    pub first_training_loss: Option<f64>,
    /// Warnings already raised, so each is raised once per job.
    pub stall_notified: bool,
    pub loss_warned: bool,
    /// The adapter files the trainer reported, kept until the artifact is stored.
    pub output_files: Vec<super::ArtifactFile>,
    pub output_dir: Option<String>,
    /// The base model's size when given by hand (unknown to the built-in table).
    pub parameters_billions: Option<f64>,
    /// Training, or an evaluation of trained models (`brightrun models eval`).
    #[serde(default)]
    pub task: super::JobTask,
    /// The checkpoint of an earlier job this one continues from (`jobs retry`, `jobs
    /// resume`); none: it started at step 0.
    #[serde(default)]
    pub resumed_from: Option<ResumePoint>,
    /// The model whose adapter this run starts from (`--from-model`); its model's
    /// `parent_model_id`.
    #[serde(default)]
    pub init_model: Option<ArtifactId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl TrainingJob {
    /// A new job waiting in the queue, with no run state yet.
    #[allow(clippy::too_many_arguments)]
    pub fn new_queued(
        user_id: UserId,
        dataset_id: DatasetId,
        preset_id: PresetId,
        hyperparameters: Hyperparameters,
        gpu_config: GpuConfig,
        total_steps: u64,
        estimated_cost: f64,
        parameters_billions: Option<f64>,
    ) -> Self {
        let t = super::now();
        Self {
            id: JobId::new(),
            user_id,
            dataset_id,
            preset_id,
            total_epochs: hyperparameters.epochs,
            hyperparameters,
            gpu_config,
            status: JobStatus::Queued,
            current_stage: JobStage::Queued,
            progress: 0.0,
            current_epoch: 0,
            current_step: 0,
            total_steps,
            current_metrics: CurrentMetrics::default(),
            queued_at: t,
            started_at: None,
            completed_at: None,
            estimated_completion_at: None,
            estimated_cost,
            current_cost: 0.0,
            final_cost: None,
            error_message: None,
            error_detail: None,
            retry_count: 0,
            external_job_id: None,
            event_cursor: 0,
            artifact_id: None,
            retry_of: None,
            last_event_at: None,
            next_attempt_at: None,
            first_training_loss: None,
            stall_notified: false,
            loss_warned: false,
            output_files: Vec::new(),
            output_dir: None,
            parameters_billions,
            task: super::JobTask::Training,
            resumed_from: None,
            init_model: None,
            created_at: t,
            updated_at: t,
        }
    }
}
