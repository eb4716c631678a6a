use super::Timestamp;
use crate::ids::JobId;
use serde::{Deserialize, Serialize};

/// One logged training step. Keyed by (job, step), so a replayed event cannot duplicate it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MetricsPoint {
    pub job_id: JobId,
    pub timestamp: Timestamp,
    pub epoch: f64,
    pub step: u64,
    pub training_loss: Option<f64>,
    pub validation_loss: Option<f64>,
    pub learning_rate: Option<f64>,
    pub gradient_norm: Option<f64>,
    /// Tokens per second.
    pub throughput: Option<f64>,
    /// 0..=100, when the trainer has a GPU.
    pub gpu_utilization: Option<f64>,
    /// A preference run's rewards, margin, accuracy and log-probabilities at this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preference: Option<super::PreferenceMetrics>,
}
