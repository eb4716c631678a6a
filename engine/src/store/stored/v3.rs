//! Version 3 of the stored records whose layout changed after v2 (schema v8). A job gains its
//! task (training, or an evaluation of trained models: `brightrun models eval`), the
//! checkpoint of an earlier job it continues from (`jobs retry`) and the model whose adapter
//! it starts from (`--from-model`); a checkpoint gains its stored archive's size and sha256 and
//! the trainer's folder; and the change log's entry gains variants for both. Every other type is still
//! `v1`'s or `v2`'s. Frozen like them: a change of layout is a `v4` module, never an edit here.

use super::Convert;
use super::convert::stored_struct;
use super::v1::*;
use crate::domain::*;
use crate::ids::*;
use serde::{Deserialize, Serialize};

stored_struct!(
    /// One prompt of an evaluation job: its turns and the expected answer.
    EvalPromptV3 <=> EvalPrompt {
        messages: Vec<ChatMessageV1>,
        reference: Option<String>,
    }
);

stored_struct!(
    /// What an evaluation job answers, and with which models.
    EvaluationTaskV3 <=> EvaluationTask {
        models: Vec<ArtifactId>,
        prompts: Option<Vec<EvalPromptV3>>,
        max_new_tokens: u32,
    }
);

stored_struct!(
    /// The checkpoint of an earlier job a job continues from.
    ResumePointV3 <=> ResumePoint {
        job_id: JobId,
        step: u64,
    }
);

/// What a job is for. bincode writes the variant index: the order is the layout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum JobTaskV3 {
    Training,
    Evaluation(EvaluationTaskV3),
}

/// A job as schemas v8 and v9 stored it: v1's fields, then its task. Schema v10's jobs are
/// `v4::TrainingJobV4` (its task may be an export); this type stays for the upgrade, the
/// change log's older entries and its golden file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingJobV3 {
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
    pub task: JobTaskV3,
    pub resumed_from: Option<ResumePointV3>,
    pub init_model: Option<ArtifactId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The schema v7 → v8 upgrade of one job (and how a change log entry of v7 reads): every job
/// before v8 trained.
impl Convert<TrainingJobV3> for TrainingJobV1 {
    fn convert(self) -> TrainingJobV3 {
        let TrainingJobV1 {
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
            created_at,
            updated_at,
        } = self;
        TrainingJobV3 {
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
            task: JobTaskV3::Training,
            resumed_from: None,
            init_model: None,
            created_at,
            updated_at,
        }
    }
}

stored_struct!(
    /// A checkpoint (schema v8): v1's fields, then its stored archive and its folder.
    CheckpointV3 <=> Checkpoint {
        id: CheckpointId,
        job_id: JobId,
        step: u64,
        epoch: f64,
        loss: Option<f64>,
        storage_path: String,
        size: Option<u64>,
        sha256: Option<String>,
        folder: Option<String>,
        created_at: Timestamp,
    }
);

/// The schema v7 → v8 upgrade of one checkpoint: before v8 a checkpoint was the trainer's
/// folder, never stored.
impl Convert<CheckpointV3> for CheckpointV1 {
    fn convert(self) -> CheckpointV3 {
        let CheckpointV1 {
            id,
            job_id,
            step,
            epoch,
            loss,
            storage_path,
            created_at,
        } = self;
        CheckpointV3 {
            id,
            job_id,
            step,
            epoch,
            loss,
            folder: Some(storage_path.clone()),
            storage_path,
            size: None,
            sha256: None,
            created_at,
        }
    }
}

/// A change as the log keeps it from schema v8: v1's variants, which entries written before v8
/// still decode as (their bytes are unchanged), then jobs in v3's layout, which v8 writes.
// Encoded and decoded one at a time and converted at once: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ChangeV3 {
    Dataset(DatasetV1),
    /// A job written before schema v8.
    Job(TrainingJobV1),
    Metrics(JobId, Vec<MetricsPointV1>),
    Artifact(ModelArtifactV1),
    Cost(CostRecordV1),
    Notification(NotificationV1),
    /// A checkpoint written before schema v8.
    Checkpoint(CheckpointV1),
    JobV3(TrainingJobV3),
    CheckpointV3(CheckpointV3),
    /// A sweep (schema v9): its JSON document, as the `sweeps` table keeps it
    /// (`store::sweeps`), so it carries its own version.
    Sweep(Vec<u8>),
    /// A job from schema v10 (`stored::v4`: its task may be an export).
    JobV4(super::v4::TrainingJobV4),
    /// A model from schema v10 (`stored::v4`: its kind and an export's check).
    ArtifactV4(super::v4::ModelArtifactV4),
    /// A dataset from schema v11 (`stored::v5`: a preference file's statistics).
    DatasetV5(super::v5::DatasetV5),
    /// A job from schema v11 (`stored::v5`: its hyperparameters carry the method).
    JobV5(super::v5::TrainingJobV5),
    /// Logged steps from schema v11 (`stored::v5`: a preference run's figures).
    MetricsV5(JobId, Vec<super::v5::MetricsPointV5>),
}

/// A job as schemas v5 to v7 stored it (its task dropped), for tests that build older stores.
#[cfg(test)]
pub(crate) fn v1_of(job: &TrainingJob) -> TrainingJobV1 {
    use super::v4::TrainingJobV4;
    super::convert::repack!(super::v5::older::job_v4(job), TrainingJobV4 {
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
        created_at,
        updated_at,
    } drop { task, resumed_from, init_model } => TrainingJobV1)
}
