use super::Timestamp;
use crate::ids::{CostRecordId, JobId, UserId};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CostType {
    Compute,
    Storage,
    DataTransfer,
}

impl CostType {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Compute => "compute",
            Self::Storage => "storage",
            Self::DataTransfer => "data_transfer",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CostDetails {
    pub gpu_type: Option<String>,
    pub gpu_count: Option<u32>,
    pub hours: Option<f64>,
    /// For storage: gigabytes and what was stored.
    pub gigabytes: Option<f64>,
    pub description: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CostRecord {
    pub id: CostRecordId,
    pub user_id: UserId,
    pub job_id: Option<JobId>,
    pub cost_type: CostType,
    /// US dollars.
    pub amount: f64,
    pub details: CostDetails,
    /// `YYYY-MM`.
    pub billing_period: String,
    pub created_at: Timestamp,
}
