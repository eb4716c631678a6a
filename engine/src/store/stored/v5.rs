//! Version 5 of the stored records whose layout changed after v4 (schema v11): a run's
//! hyperparameters carry its method (SFT, or a preference method with its own
//! hyperparameters), a logged step its preference figures, and a dataset's statistics those of
//! its preference pairs. The change log gains variants for the three. Every other type is
//! still `v1`'s to `v4`'s. Frozen like them: a change of layout is a `v6` module, never an
//! edit here.

use super::Convert;
use super::convert::{repack, stored_enum, stored_struct};
use super::v1::*;
use super::v3::*;
use super::v4::*;
use crate::domain::*;
use crate::ids::*;
use serde::{Deserialize, Serialize};

stored_enum!(
    /// DPO's loss.
    DpoLossV5 <=> DpoLoss { Sigmoid, Ipo }
);

/// How a run learns. bincode writes the variant index: the order is the layout.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum TrainingMethodV5 {
    Sft,
    Dpo {
        beta: f64,
        loss_type: DpoLossV5,
    },
    Orpo {
        lambda: f64,
    },
    Simpo {
        beta: f64,
        gamma: f64,
    },
    Kto {
        beta: f64,
        desirable_weight: f64,
        undesirable_weight: f64,
    },
}

impl Convert<TrainingMethod> for TrainingMethodV5 {
    fn convert(self) -> TrainingMethod {
        match self {
            Self::Sft => TrainingMethod::Sft,
            Self::Dpo { beta, loss_type } => TrainingMethod::Dpo {
                beta,
                loss_type: loss_type.convert(),
            },
            Self::Orpo { lambda } => TrainingMethod::Orpo { lambda },
            Self::Simpo { beta, gamma } => TrainingMethod::Simpo { beta, gamma },
            Self::Kto {
                beta,
                desirable_weight,
                undesirable_weight,
            } => TrainingMethod::Kto {
                beta,
                desirable_weight,
                undesirable_weight,
            },
        }
    }
}

impl Convert<TrainingMethodV5> for TrainingMethod {
    fn convert(self) -> TrainingMethodV5 {
        match self {
            Self::Sft => TrainingMethodV5::Sft,
            Self::Dpo { beta, loss_type } => TrainingMethodV5::Dpo {
                beta,
                loss_type: loss_type.convert(),
            },
            Self::Orpo { lambda } => TrainingMethodV5::Orpo { lambda },
            Self::Simpo { beta, gamma } => TrainingMethodV5::Simpo { beta, gamma },
            Self::Kto {
                beta,
                desirable_weight,
                undesirable_weight,
            } => TrainingMethodV5::Kto {
                beta,
                desirable_weight,
                undesirable_weight,
            },
        }
    }
}

stored_struct!(
    /// A run's hyperparameters (schema v11): v1's, then the method.
    HyperparametersV5 <=> Hyperparameters {
        base_model: String,
        learning_rate: f64,
        batch_size: u32,
        gradient_accumulation_steps: u32,
        epochs: u32,
        lora_rank: u32,
        lora_alpha: u32,
        lora_dropout: f64,
        target_modules: Vec<String>,
        warmup_ratio: f64,
        warmup_steps: Option<u32>,
        weight_decay: f64,
        scheduler: SchedulerV1,
        max_seq_length: u32,
        seed: u64,
        use_validation: bool,
        quantization: QuantizationV1,
        method: TrainingMethodV5,
    }
);

/// The schema v11 upgrade of a run's hyperparameters: every run before it trained SFT.
impl Convert<HyperparametersV5> for HyperparametersV1 {
    fn convert(self) -> HyperparametersV5 {
        repack!(self, HyperparametersV1 {
            base_model,
            learning_rate,
            batch_size,
            gradient_accumulation_steps,
            epochs,
            lora_rank,
            lora_alpha,
            lora_dropout,
            target_modules,
            warmup_ratio,
            warmup_steps,
            weight_decay,
            scheduler,
            max_seq_length,
            seed,
            use_validation,
            quantization,
        } => HyperparametersV5 { method: TrainingMethodV5::Sft })
    }
}

stored_struct!(
    /// A job (schema v11): v4's fields, its hyperparameters in v5's layout.
    TrainingJobV5 <=> TrainingJob {
        id: JobId,
        user_id: UserId,
        dataset_id: DatasetId,
        preset_id: PresetIdV1,
        hyperparameters: HyperparametersV5,
        gpu_config: GpuConfigV1,
        status: JobStatusV1,
        current_stage: JobStageV1,
        progress: f64,
        current_epoch: u32,
        total_epochs: u32,
        current_step: u64,
        total_steps: u64,
        current_metrics: CurrentMetricsV1,
        queued_at: Timestamp,
        started_at: Option<Timestamp>,
        completed_at: Option<Timestamp>,
        estimated_completion_at: Option<Timestamp>,
        estimated_cost: f64,
        current_cost: f64,
        final_cost: Option<f64>,
        error_message: Option<String>,
        error_detail: Option<String>,
        retry_count: u32,
        external_job_id: Option<String>,
        event_cursor: u64,
        artifact_id: Option<ArtifactId>,
        retry_of: Option<JobId>,
        last_event_at: Option<Timestamp>,
        next_attempt_at: Option<Timestamp>,
        first_training_loss: Option<f64>,
        stall_notified: bool,
        loss_warned: bool,
        output_files: Vec<ArtifactFileV1>,
        output_dir: Option<String>,
        parameters_billions: Option<f64>,
        task: JobTaskV4,
        resumed_from: Option<ResumePointV3>,
        init_model: Option<ArtifactId>,
        created_at: Timestamp,
        updated_at: Timestamp,
    }
);

/// The schema v10 → v11 upgrade of one job (and how a change log entry of v10 reads).
impl Convert<TrainingJobV5> for TrainingJobV4 {
    fn convert(self) -> TrainingJobV5 {
        repack!(self, TrainingJobV4 {
            id,
            user_id,
            dataset_id,
            preset_id,
            hyperparameters => hyperparameters.convert(),
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
        } => TrainingJobV5)
    }
}

/// The upgrade of a job stored by schemas v8 and v9, through v4's.
impl Convert<TrainingJobV5> for TrainingJobV3 {
    fn convert(self) -> TrainingJobV5 {
        let v4: TrainingJobV4 = self.convert();
        v4.convert()
    }
}

/// The upgrade of a job stored before schema v8, through v4's.
impl Convert<TrainingJobV5> for TrainingJobV1 {
    fn convert(self) -> TrainingJobV5 {
        let v4: TrainingJobV4 = self.convert();
        v4.convert()
    }
}

stored_struct!(
    /// A logged step's preference figures.
    PreferenceMetricsV5 <=> PreferenceMetrics {
        rewards_chosen: Option<f64>,
        rewards_rejected: Option<f64>,
        reward_margin: Option<f64>,
        reward_accuracy: Option<f64>,
        logps_chosen: Option<f64>,
        logps_rejected: Option<f64>,
        kl: Option<f64>,
    }
);

stored_struct!(
    /// A logged step (schema v11): v1's fields, then a preference run's figures.
    MetricsPointV5 <=> MetricsPoint {
        job_id: JobId,
        timestamp: Timestamp,
        epoch: f64,
        step: u64,
        training_loss: Option<f64>,
        validation_loss: Option<f64>,
        learning_rate: Option<f64>,
        gradient_norm: Option<f64>,
        throughput: Option<f64>,
        gpu_utilization: Option<f64>,
        preference: Option<PreferenceMetricsV5>,
    }
);

/// The schema v11 upgrade of a logged step: none before it had preference figures.
impl Convert<MetricsPointV5> for MetricsPointV1 {
    fn convert(self) -> MetricsPointV5 {
        repack!(self, MetricsPointV1 {
            job_id,
            timestamp,
            epoch,
            step,
            training_loss,
            validation_loss,
            learning_rate,
            gradient_norm,
            throughput,
            gpu_utilization,
        } => MetricsPointV5 { preference: None })
    }
}

stored_struct!(
    /// What the validator learned of a preference or KTO file.
    PreferenceStatisticsV5 <=> PreferenceStatistics {
        pairs: u64,
        prompt_tokens: u64,
        chosen_tokens: u64,
        rejected_tokens: u64,
        chosen_tokens_p50: u64,
        chosen_tokens_p95: u64,
        rejected_tokens_p50: u64,
        rejected_tokens_p95: u64,
        sequence_tokens_max: u64,
        chosen_longer_share: f64,
        desirable: u64,
        undesirable: u64,
    }
);

stored_struct!(
    /// A dataset's statistics (schema v11): v1's, then a preference file's.
    DatasetStatisticsV5 <=> DatasetStatistics {
        total_examples: u64,
        total_training_pairs: u64,
        total_validation_pairs: u64,
        total_tokens: u64,
        tokens_exact: bool,
        avg_turns_per_conversation: f64,
        avg_tokens_per_turn: f64,
        tokens_p50: u64,
        tokens_p95: u64,
        tokens_max: u64,
        duplicate_examples: u64,
        examples_over_max_seq_length: u64,
        max_seq_length: u32,
        error_count: u64,
        warning_count: u64,
        preference: Option<PreferenceStatisticsV5>,
    }
);

/// The schema v11 upgrade of a dataset's statistics.
impl Convert<DatasetStatisticsV5> for DatasetStatisticsV1 {
    fn convert(self) -> DatasetStatisticsV5 {
        repack!(self, DatasetStatisticsV1 {
            total_examples,
            total_training_pairs,
            total_validation_pairs,
            total_tokens,
            tokens_exact,
            avg_turns_per_conversation,
            avg_tokens_per_turn,
            tokens_p50,
            tokens_p95,
            tokens_max,
            duplicate_examples,
            examples_over_max_seq_length,
            max_seq_length,
            error_count,
            warning_count,
        } => DatasetStatisticsV5 { preference: None })
    }
}

stored_struct!(
    /// A dataset (schema v11): v1's fields, its statistics in v5's layout.
    DatasetV5 <=> Dataset {
        id: DatasetId,
        user_id: UserId,
        name: String,
        description: Option<String>,
        file_name: String,
        file_size: u64,
        format: Option<DatasetFormatV1>,
        status: DatasetStatusV1,
        storage_bucket: String,
        storage_path: String,
        sha256: Option<String>,
        statistics: Option<DatasetStatisticsV5>,
        total_training_pairs: Option<u64>,
        total_validation_pairs: Option<u64>,
        total_tokens: Option<u64>,
        training_ready: bool,
        validated_at: Option<Timestamp>,
        validation_errors: Vec<ValidationIssueV1>,
        sample_data: Vec<Vec<ChatMessageV1>>,
        error_message: Option<String>,
        source_path: Option<String>,
        created_at: Timestamp,
        updated_at: Timestamp,
        deleted_at: Option<Timestamp>,
    }
);

/// The schema v11 upgrade of a dataset (and how a change log entry before v11 reads).
impl Convert<DatasetV5> for DatasetV1 {
    fn convert(self) -> DatasetV5 {
        repack!(self, DatasetV1 {
            id,
            user_id,
            name,
            description,
            file_name,
            file_size,
            format,
            status,
            storage_bucket,
            storage_path,
            sha256,
            statistics => statistics.convert(),
            total_training_pairs,
            total_validation_pairs,
            total_tokens,
            training_ready,
            validated_at,
            validation_errors,
            sample_data,
            error_message,
            source_path,
            created_at,
            updated_at,
            deleted_at,
        } => DatasetV5)
    }
}

/// Records in the layouts before schema v11, for tests that build older stores: a
/// preference run's method and figures have no place there, so only SFT records go back.
#[cfg(test)]
pub(crate) mod older {
    use super::*;

    /// A run's hyperparameters as schemas up to v10 stored them.
    fn hyperparameters_v1(hp: HyperparametersV5) -> HyperparametersV1 {
        repack!(hp, HyperparametersV5 {
            base_model,
            learning_rate,
            batch_size,
            gradient_accumulation_steps,
            epochs,
            lora_rank,
            lora_alpha,
            lora_dropout,
            target_modules,
            warmup_ratio,
            warmup_steps,
            weight_decay,
            scheduler,
            max_seq_length,
            seed,
            use_validation,
            quantization,
        } drop { method } => HyperparametersV1)
    }

    /// A job as schema v10 stored it.
    pub(crate) fn job_v4(job: &TrainingJob) -> TrainingJobV4 {
        let job: TrainingJobV5 = job.clone().convert();
        repack!(job, TrainingJobV5 {
            id,
            user_id,
            dataset_id,
            preset_id,
            hyperparameters => hyperparameters_v1(hyperparameters),
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
        } => TrainingJobV4)
    }

    fn statistics_v1(s: DatasetStatisticsV5) -> DatasetStatisticsV1 {
        repack!(s, DatasetStatisticsV5 {
            total_examples,
            total_training_pairs,
            total_validation_pairs,
            total_tokens,
            tokens_exact,
            avg_turns_per_conversation,
            avg_tokens_per_turn,
            tokens_p50,
            tokens_p95,
            tokens_max,
            duplicate_examples,
            examples_over_max_seq_length,
            max_seq_length,
            error_count,
            warning_count,
        } drop { preference } => DatasetStatisticsV1)
    }

    /// A dataset as schemas up to v10 stored it.
    pub(crate) fn dataset_v1(d: &Dataset) -> DatasetV1 {
        let d: DatasetV5 = d.clone().convert();
        repack!(d, DatasetV5 {
            id,
            user_id,
            name,
            description,
            file_name,
            file_size,
            format,
            status,
            storage_bucket,
            storage_path,
            sha256,
            statistics => statistics.map(statistics_v1),
            total_training_pairs,
            total_validation_pairs,
            total_tokens,
            training_ready,
            validated_at,
            validation_errors,
            sample_data,
            error_message,
            source_path,
            created_at,
            updated_at,
            deleted_at,
        } => DatasetV1)
    }
}
