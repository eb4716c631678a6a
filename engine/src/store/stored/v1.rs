//! Version 1 of every stored record: the layout schema v5 wrote (bincode, standard config;
//! fields in this order, enums by variant index). Frozen: a change of layout is a `v2` module
//! with an upgrade step in `store::schema`, never an edit here. The golden tests in
//! `super::golden` fail on any change of these bytes.

use super::convert::{Convert, stored_enum, stored_struct};
use crate::domain::*;
use crate::ids::*;
use crate::storage::Bucket;
use crate::storage::journal::{DonePart, PendingUpload, SourceStamp};
use crate::training::Calibration;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// JSON kept as its text (bincode has no self-describing values).
#[derive(Clone, Debug, PartialEq)]
pub struct JsonV1(pub serde_json::Value);

impl Serialize for JsonV1 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for JsonV1 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        serde_json::from_str(&text)
            .map(JsonV1)
            .map_err(serde::de::Error::custom)
    }
}

impl Convert<JsonValue> for JsonV1 {
    fn convert(self) -> JsonValue {
        JsonValue(self.0)
    }
}

impl Convert<JsonV1> for JsonValue {
    fn convert(self) -> JsonV1 {
        JsonV1(self.0)
    }
}

// ---- datasets ----

stored_enum!(DatasetStatusV1 <=> DatasetStatus {
    Uploading,
    Validating,
    Ready,
    Error
});

stored_enum!(DatasetFormatV1 <=> DatasetFormat {
    BrightrunV4,
    BrightrunFlat,
    OpenaiChat,
    Alpaca,
    Sharegpt,
    PromptCompletion,
    Text,
    Preference,
    Kto,
});

stored_enum!(SeverityV1 <=> Severity { Error, Warning });

stored_struct!(ValidationIssueV1 <=> ValidationIssue {
    line: u64,
    error: String,
    suggestion: String,
    severity: SeverityV1,
});

/// A dataset's statistics as schemas up to v10 stored them (see `DatasetV1`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetStatisticsV1 {
    pub total_examples: u64,
    pub total_training_pairs: u64,
    pub total_validation_pairs: u64,
    pub total_tokens: u64,
    pub tokens_exact: bool,
    pub avg_turns_per_conversation: f64,
    pub avg_tokens_per_turn: f64,
    pub tokens_p50: u64,
    pub tokens_p95: u64,
    pub tokens_max: u64,
    pub duplicate_examples: u64,
    pub examples_over_max_seq_length: u64,
    pub max_seq_length: u32,
    pub error_count: u64,
    pub warning_count: u64,
}

stored_struct!(ChatMessageV1 <=> ChatMessage {
    role: String,
    content: String
});

/// A dataset as schemas up to v10 stored it. Schema v11's are `v5::DatasetV5` (with a
/// preference file's statistics); this type stays for the upgrade and the change log's entries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetV1 {
    pub id: DatasetId,
    pub user_id: UserId,
    pub name: String,
    pub description: Option<String>,
    pub file_name: String,
    pub file_size: u64,
    pub format: Option<DatasetFormatV1>,
    pub status: DatasetStatusV1,
    pub storage_bucket: String,
    pub storage_path: String,
    pub sha256: Option<String>,
    pub statistics: Option<DatasetStatisticsV1>,
    pub total_training_pairs: Option<u64>,
    pub total_validation_pairs: Option<u64>,
    pub total_tokens: Option<u64>,
    pub training_ready: bool,
    pub validated_at: Option<Timestamp>,
    pub validation_errors: Vec<ValidationIssueV1>,
    pub sample_data: Vec<Vec<ChatMessageV1>>,
    pub error_message: Option<String>,
    pub source_path: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

// ---- training jobs ----

stored_enum!(JobStatusV1 <=> JobStatus {
    Queued,
    Initializing,
    Running,
    Completed,
    Failed,
    Cancelled,
});

stored_enum!(JobStageV1 <=> JobStage {
    Queued,
    Initializing,
    Training,
    Validating,
    Saving,
    Completed,
    // Schema v7: appended, so the stages before it keep their numbers (older BrightRuns,
    // which could not decode it, are refused from v7 on).
    Evaluating,
});

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PresetIdV1 {
    Fast,
    Balanced,
    Quality,
    Custom,
    User(String),
}

impl Convert<PresetId> for PresetIdV1 {
    fn convert(self) -> PresetId {
        match self {
            Self::Fast => PresetId::Fast,
            Self::Balanced => PresetId::Balanced,
            Self::Quality => PresetId::Quality,
            Self::Custom => PresetId::Custom,
            Self::User(s) => PresetId::User(s),
        }
    }
}

impl Convert<PresetIdV1> for PresetId {
    fn convert(self) -> PresetIdV1 {
        match self {
            Self::Fast => PresetIdV1::Fast,
            Self::Balanced => PresetIdV1::Balanced,
            Self::Quality => PresetIdV1::Quality,
            Self::Custom => PresetIdV1::Custom,
            Self::User(s) => PresetIdV1::User(s),
        }
    }
}

stored_enum!(SchedulerV1 <=> Scheduler {
    Linear,
    Cosine,
    Constant,
    ConstantWithWarmup,
});

stored_enum!(QuantizationV1 <=> Quantization { None, FourBit });

/// A run's hyperparameters as schemas up to v10 stored them. Schema v11's are
/// `v5::HyperparametersV5` (with the method); this type stays for the upgrade.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HyperparametersV1 {
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
    pub scheduler: SchedulerV1,
    pub max_seq_length: u32,
    pub seed: u64,
    pub use_validation: bool,
    pub quantization: QuantizationV1,
}

stored_struct!(GpuConfigV1 <=> GpuConfig {
    gpu_type: String,
    gpu_count: u32,
    price_per_gpu_hour: f64,
    backend: String,
});

stored_struct!(CurrentMetricsV1 <=> CurrentMetrics {
    training_loss: Option<f64>,
    validation_loss: Option<f64>,
    learning_rate: Option<f64>,
    gradient_norm: Option<f64>,
    throughput: Option<f64>,
    gpu_utilization: Option<f64>,
});

/// A training job as schemas v5 to v7 stored it. Schema v8's jobs are `v3::TrainingJobV3`
/// (this layout plus the job's task); this type stays for the upgrade, the change log's
/// older entries and its golden file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingJobV1 {
    pub id: JobId,
    pub user_id: UserId,
    pub dataset_id: DatasetId,
    pub preset_id: PresetIdV1,
    pub hyperparameters: HyperparametersV1,
    pub gpu_config: GpuConfigV1,
    pub status: JobStatusV1,
    pub current_stage: JobStageV1,
    pub progress: f64,
    pub current_epoch: u32,
    pub total_epochs: u32,
    pub current_step: u64,
    pub total_steps: u64,
    pub current_metrics: CurrentMetricsV1,
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
    pub external_job_id: Option<String>,
    pub event_cursor: u64,
    pub artifact_id: Option<ArtifactId>,
    pub retry_of: Option<JobId>,
    pub last_event_at: Option<Timestamp>,
    pub next_attempt_at: Option<Timestamp>,
    pub first_training_loss: Option<f64>,
    pub stall_notified: bool,
    pub loss_warned: bool,
    pub output_files: Vec<ArtifactFileV1>,
    pub output_dir: Option<String>,
    pub parameters_billions: Option<f64>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

// ---- metrics points ----

/// A logged step as schemas up to v10 stored it. Schema v11's are `v5::MetricsPointV5`
/// (with preference figures); this type stays for the upgrade and the change log's entries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricsPointV1 {
    pub job_id: JobId,
    pub timestamp: Timestamp,
    pub epoch: f64,
    pub step: u64,
    pub training_loss: Option<f64>,
    pub validation_loss: Option<f64>,
    pub learning_rate: Option<f64>,
    pub gradient_norm: Option<f64>,
    pub throughput: Option<f64>,
    pub gpu_utilization: Option<f64>,
}

// ---- model artifacts ----

stored_enum!(ArtifactStatusV1 <=> ArtifactStatus {
    Stored,
    Deployed,
    Archived
});

stored_enum!(ConvergenceV1 <=> Convergence {
    Good,
    Overfit,
    Unknown
});

stored_struct!(QualityMetricsV1 <=> QualityMetrics {
    final_training_loss: Option<f64>,
    final_validation_loss: Option<f64>,
    initial_training_loss: Option<f64>,
    loss_reduction_percent: Option<f64>,
    perplexity: Option<f64>,
    convergence: ConvergenceV1,
    quality_score: u8,
});

stored_struct!(TrainingSummaryV1 <=> TrainingSummary {
    total_steps: u64,
    epochs: u32,
    duration_seconds: f64,
    train_tokens: Option<u64>,
    trainable_parameters: Option<u64>,
    total_parameters: Option<u64>,
    final_cost: f64,
    gpu_type: String,
    gpu_count: u32,
});

stored_struct!(ArtifactFileV1 <=> ArtifactFile {
    path: String,
    size: u64,
    sha256: String,
});

/// A model as schemas v5 to v9 stored it. Schema v10's models are `v4::ModelArtifactV4`
/// (this layout plus its kind and an export's check); this type stays for the upgrade, the
/// change log's older entries and its golden file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelArtifactV1 {
    pub id: ArtifactId,
    pub user_id: UserId,
    pub job_id: JobId,
    pub dataset_id: DatasetId,
    pub name: String,
    pub version: u32,
    pub status: ArtifactStatusV1,
    pub base_model: String,
    pub quality_metrics: QualityMetricsV1,
    pub training_summary: TrainingSummaryV1,
    pub configuration: JsonV1,
    pub storage_bucket: String,
    pub storage_path: String,
    pub files: Vec<ArtifactFileV1>,
    pub parent_model_id: Option<ArtifactId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}

// ---- costs ----

stored_enum!(CostTypeV1 <=> CostType {
    Compute,
    Storage,
    DataTransfer
});

stored_struct!(CostDetailsV1 <=> CostDetails {
    gpu_type: Option<String>,
    gpu_count: Option<u32>,
    hours: Option<f64>,
    gigabytes: Option<f64>,
    description: Option<String>,
});

stored_struct!(CostRecordV1 <=> CostRecord {
    id: CostRecordId,
    user_id: UserId,
    job_id: Option<JobId>,
    cost_type: CostTypeV1,
    amount: f64,
    details: CostDetailsV1,
    billing_period: String,
    created_at: Timestamp,
});

// ---- notifications ----

stored_enum!(PriorityV1 <=> Priority {
    Low,
    Medium,
    High,
    Critical
});

stored_enum!(NotificationTypeV1 <=> NotificationType {
    DatasetReady,
    DatasetError,
    JobQueued,
    JobStarted,
    JobCompleted,
    JobFailed,
    JobCancelled,
    JobStalled,
    TrainingWarning,
    ArtifactReady,
    BudgetWarning,
    BudgetExceeded,
});

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkV1 {
    Dataset(DatasetId),
    Job(JobId),
    Artifact(ArtifactId),
    Costs,
}

impl Convert<Link> for LinkV1 {
    fn convert(self) -> Link {
        match self {
            Self::Dataset(id) => Link::Dataset(id),
            Self::Job(id) => Link::Job(id),
            Self::Artifact(id) => Link::Artifact(id),
            Self::Costs => Link::Costs,
        }
    }
}

impl Convert<LinkV1> for Link {
    fn convert(self) -> LinkV1 {
        match self {
            Self::Dataset(id) => LinkV1::Dataset(id),
            Self::Job(id) => LinkV1::Job(id),
            Self::Artifact(id) => LinkV1::Artifact(id),
            Self::Costs => LinkV1::Costs,
        }
    }
}

stored_struct!(NotificationV1 <=> Notification {
    id: NotificationId,
    user_id: UserId,
    kind: NotificationTypeV1,
    title: String,
    message: String,
    priority: PriorityV1,
    read: bool,
    link: Option<LinkV1>,
    metadata: JsonV1,
    created_at: Timestamp,
});

// ---- checkpoints ----

/// A checkpoint as schemas v5 to v7 stored it (the trainer's folder). Schema v8's checkpoints
/// are `v3::CheckpointV3` (this layout plus the stored archive's size and sha256 and the
/// folder); this type stays for the upgrade, the change log's older entries and its golden
/// file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointV1 {
    pub id: CheckpointId,
    pub job_id: JobId,
    pub step: u64,
    pub epoch: f64,
    pub loss: Option<f64>,
    pub storage_path: String,
    pub created_at: Timestamp,
}

// ---- engine-private tables: tokens, the upload journal, calibration ----

/// A bearer token as schema v5 stored it. Since schema v6 tokens are `v2::TokenRecordV2`
/// (this layout plus an expiry and a last use); this type stays for the upgrade and its
/// golden file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenRecordV1 {
    pub id: String,
    pub hash: [u8; 32],
    pub user_id: UserId,
    pub user_name: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

stored_enum!(BucketV1 <=> Bucket { Datasets, Models });

stored_struct!(SourceStampV1 <=> SourceStamp {
    path: String,
    size: u64,
    modified_ns: i128,
});

stored_struct!(DonePartV1 <=> DonePart {
    number: i32,
    size: u64,
    etag: String,
    checksum_sha256: Option<String>,
});

stored_struct!(PendingUploadV1 <=> PendingUpload {
    bucket: BucketV1,
    path: String,
    upload_id: String,
    source: SourceStampV1,
    part_size: u64,
    checksums: bool,
    parts: Vec<DonePartV1>,
    started_at: Timestamp,
});

stored_struct!(CalibrationV1 <=> Calibration {
    runs: u32,
    tokens_per_sec: f64,
});

// ---- the quarantine ----

/// A damaged record moved out of its table: its raw value, when, and why. Store-only: no
/// domain type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuarantinedV1 {
    pub raw: Vec<u8>,
    pub at: Timestamp,
    pub problem: String,
}

// ---- the change log ----

/// A change as the log keeps it (with the time it was committed): the record variants of
/// `EngineEvent`. bincode writes the variant index: the order is the layout.
// Encoded and decoded one at a time and converted at once: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ChangeV1 {
    Dataset(DatasetV1),
    Job(TrainingJobV1),
    Metrics(JobId, Vec<MetricsPointV1>),
    Artifact(ModelArtifactV1),
    Cost(CostRecordV1),
    Notification(NotificationV1),
    Checkpoint(CheckpointV1),
}
