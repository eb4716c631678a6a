use super::Timestamp;
use crate::ids::{ArtifactId, DatasetId, JobId, UserId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactStatus {
    Stored,
    Deployed,
    Archived,
}

/// Whether training loss went down and validation loss followed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Convergence {
    Good,
    Overfit,
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct QualityMetrics {
    pub final_training_loss: Option<f64>,
    pub final_validation_loss: Option<f64>,
    pub initial_training_loss: Option<f64>,
    /// Percent, first → last training loss.
    pub loss_reduction_percent: Option<f64>,
    pub perplexity: Option<f64>,
    pub convergence: Convergence,
    /// 1..=5.
    pub quality_score: u8,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TrainingSummary {
    pub total_steps: u64,
    pub epochs: u32,
    pub duration_seconds: f64,
    pub train_tokens: Option<u64>,
    pub trainable_parameters: Option<u64>,
    pub total_parameters: Option<u64>,
    pub final_cost: f64,
    pub gpu_type: String,
    pub gpu_count: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ArtifactFile {
    /// Relative to the artifact's folder.
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ModelArtifact {
    pub id: ArtifactId,
    pub user_id: UserId,
    pub job_id: JobId,
    pub dataset_id: DatasetId,
    pub name: String,
    pub version: u32,
    pub status: ArtifactStatus,
    pub base_model: String,
    pub quality_metrics: QualityMetrics,
    pub training_summary: TrainingSummary,
    /// The job's hyperparameters and GPU configuration, as JSON.
    pub configuration: super::JsonValue,
    pub storage_bucket: String,
    pub storage_path: String,
    pub files: Vec<ArtifactFile>,
    pub parent_model_id: Option<ArtifactId>,
    /// What the model is: an adapter, or an export of its parent (`parent_model_id`).
    #[serde(default)]
    pub kind: super::ModelKind,
    /// The check an export passed before it was stored (none for an adapter).
    #[serde(default)]
    pub export: Option<super::ExportCheck>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}
