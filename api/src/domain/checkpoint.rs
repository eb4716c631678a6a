use super::Timestamp;
use crate::ids::{CheckpointId, JobId};
use serde::{Deserialize, Serialize};

/// A resumable training state saved by the trainer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Checkpoint {
    pub id: CheckpointId,
    pub job_id: JobId,
    pub step: u64,
    pub epoch: f64,
    pub loss: Option<f64>,
    pub storage_path: String,
    pub created_at: Timestamp,
}
