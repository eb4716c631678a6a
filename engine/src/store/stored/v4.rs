//! Version 4 of the stored records whose layout changed after v3 (schema v10): a job's task may
//! be an export (`brightrun models export`), and a model has a kind (an adapter, or an
//! export of its parent) and the check an export passed. The change log gains variants for
//! both. Every other type is still `v1`'s, `v2`'s or `v3`'s. Frozen like them: a change of
//! layout is a `v5` module, never an edit here.

use super::Convert;
use super::convert::{stored_enum, stored_struct};
use super::v1::*;
use super::v3::*;
use crate::domain::*;
use crate::ids::*;
use serde::{Deserialize, Serialize};

stored_enum!(
    /// What a stored model is.
    ModelKindV4 <=> ModelKind {
        Adapter,
        Merged,
        Gguf,
        GgufLora,
    }
);

stored_enum!(
    /// What an export writes.
    ExportFormatV4 <=> ExportFormat {
        Merged,
        Gguf,
        GgufLora,
    }
);

stored_enum!(
    /// An export's tensor type.
    ExportDtypeV4 <=> ExportDtype {
        F16,
        Bf16,
        F32,
    }
);

stored_struct!(
    /// What an export job does.
    ExportTaskV4 <=> ExportTask {
        model: ArtifactId,
        format: ExportFormatV4,
        dtype: ExportDtypeV4,
        quantize: Option<String>,
        ollama: bool,
        name: String,
        system_prompt: Option<String>,
    }
);

stored_struct!(
    /// The check an export passed.
    ExportCheckV4 <=> ExportCheck {
        passed: bool,
        checked: String,
        max_abs_diff: Option<f64>,
        tolerance: Option<f64>,
        agreement: Option<f64>,
        held: Option<f64>,
        template_matches: Option<bool>,
        prompts: u32,
        tokens: Option<u32>,
        ollama_command: Option<String>,
        seconds: Option<f64>,
    }
);

/// What a job is for. bincode writes the variant index: the order is the layout (v3's, then
/// exports).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum JobTaskV4 {
    Training,
    Evaluation(EvaluationTaskV3),
    Export(ExportTaskV4),
}

impl Convert<JobTask> for JobTaskV4 {
    fn convert(self) -> JobTask {
        match self {
            Self::Training => JobTask::Training,
            Self::Evaluation(t) => JobTask::Evaluation(Box::new(t.convert())),
            Self::Export(t) => JobTask::Export(Box::new(t.convert())),
        }
    }
}

impl Convert<JobTaskV4> for JobTask {
    fn convert(self) -> JobTaskV4 {
        match self {
            Self::Training => JobTaskV4::Training,
            Self::Evaluation(t) => JobTaskV4::Evaluation((*t).convert()),
            Self::Export(t) => JobTaskV4::Export((*t).convert()),
        }
    }
}

/// The schema v9 → v10 upgrade of a job's task: v3's tasks are v4's first two.
impl Convert<JobTaskV4> for JobTaskV3 {
    fn convert(self) -> JobTaskV4 {
        match self {
            Self::Training => JobTaskV4::Training,
            Self::Evaluation(t) => JobTaskV4::Evaluation(t),
        }
    }
}

/// A job as schema v10 stored it: v3's fields, its task in v4's layout. Schema v11's jobs
/// are `v5::TrainingJobV5` (their hyperparameters carry the method); this type stays for the
/// upgrade, the change log's entries and its golden file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingJobV4 {
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
    pub task: JobTaskV4,
    pub resumed_from: Option<ResumePointV3>,
    pub init_model: Option<ArtifactId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The schema v9 → v10 upgrade of one job (and how a change log entry of v8 or v9 reads).
impl Convert<TrainingJobV4> for TrainingJobV3 {
    fn convert(self) -> TrainingJobV4 {
        let TrainingJobV3 {
            id,
            user_id,
            dataset_id,
            preset_id,
            hyperparameters,
            gpu_config,
            status,
            current_stage,
            progress,
            current_epoch,
            total_epochs,
            current_step,
            total_steps,
            current_metrics,
            queued_at,
            started_at,
            completed_at,
            estimated_completion_at,
            estimated_cost,
            current_cost,
            final_cost,
            error_message,
            error_detail,
            retry_count,
            external_job_id,
            event_cursor,
            artifact_id,
            retry_of,
            last_event_at,
            next_attempt_at,
            first_training_loss,
            stall_notified,
            loss_warned,
            output_files,
            output_dir,
            parameters_billions,
            task,
            resumed_from,
            init_model,
            created_at,
            updated_at,
        } = self;
        TrainingJobV4 {
            id,
            user_id,
            dataset_id,
            preset_id,
            hyperparameters,
            gpu_config,
            status,
            current_stage,
            progress,
            current_epoch,
            total_epochs,
            current_step,
            total_steps,
            current_metrics,
            queued_at,
            started_at,
            completed_at,
            estimated_completion_at,
            estimated_cost,
            current_cost,
            final_cost,
            error_message,
            error_detail,
            retry_count,
            external_job_id,
            event_cursor,
            artifact_id,
            retry_of,
            last_event_at,
            next_attempt_at,
            first_training_loss,
            stall_notified,
            loss_warned,
            output_files,
            output_dir,
            parameters_billions,
            task: task.convert(),
            resumed_from,
            init_model,
            created_at,
            updated_at,
        }
    }
}

/// The upgrade of a job stored before schema v8, through v3's.
impl Convert<TrainingJobV4> for TrainingJobV1 {
    fn convert(self) -> TrainingJobV4 {
        let v3: TrainingJobV3 = self.convert();
        v3.convert()
    }
}

stored_struct!(
    /// A model (schema v10): v1's fields, then its kind and an export's check.
    ModelArtifactV4 <=> ModelArtifact {
        id: ArtifactId,
        user_id: UserId,
        job_id: JobId,
        dataset_id: DatasetId,
        name: String,
        version: u32,
        status: ArtifactStatusV1,
        base_model: String,
        quality_metrics: QualityMetricsV1,
        training_summary: TrainingSummaryV1,
        configuration: JsonV1,
        storage_bucket: String,
        storage_path: String,
        files: Vec<ArtifactFileV1>,
        parent_model_id: Option<ArtifactId>,
        kind: ModelKindV4,
        export: Option<ExportCheckV4>,
        created_at: Timestamp,
        updated_at: Timestamp,
        deleted_at: Option<Timestamp>,
    }
);

/// The schema v9 → v10 upgrade of one model (and how a change log entry before v10 reads):
/// every model before exports is an adapter.
impl Convert<ModelArtifactV4> for ModelArtifactV1 {
    fn convert(self) -> ModelArtifactV4 {
        let ModelArtifactV1 {
            id,
            user_id,
            job_id,
            dataset_id,
            name,
            version,
            status,
            base_model,
            quality_metrics,
            training_summary,
            configuration,
            storage_bucket,
            storage_path,
            files,
            parent_model_id,
            created_at,
            updated_at,
            deleted_at,
        } = self;
        ModelArtifactV4 {
            id,
            user_id,
            job_id,
            dataset_id,
            name,
            version,
            status,
            base_model,
            quality_metrics,
            training_summary,
            configuration,
            storage_bucket,
            storage_path,
            files,
            parent_model_id,
            kind: ModelKindV4::Adapter,
            export: None,
            created_at,
            updated_at,
            deleted_at,
        }
    }
}
