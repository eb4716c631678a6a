use super::Timestamp;
use crate::ids::{ArtifactId, DatasetId, JobId, NotificationId, UserId};
use serde::{Deserialize, Serialize};

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Medium,
    High,
    Critical,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotificationType {
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
}

impl NotificationType {
    /// The priority DESIGN.md gives each type.
    pub fn default_priority(&self) -> Priority {
        match self {
            Self::JobQueued => Priority::Low,
            Self::DatasetReady | Self::JobStarted | Self::JobCancelled => Priority::Medium,
            Self::DatasetError
            | Self::JobCompleted
            | Self::JobFailed
            | Self::JobStalled
            | Self::TrainingWarning
            | Self::ArtifactReady
            | Self::BudgetWarning => Priority::High,
            Self::BudgetExceeded => Priority::Critical,
        }
    }
}

/// What a notification is about, so the UI can jump to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Link {
    Dataset(DatasetId),
    Job(JobId),
    Artifact(ArtifactId),
    Costs,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Notification {
    pub id: NotificationId,
    pub user_id: UserId,
    #[serde(rename = "type")]
    pub kind: NotificationType,
    pub title: String,
    pub message: String,
    pub priority: Priority,
    pub read: bool,
    pub link: Option<Link>,
    pub metadata: super::JsonValue,
    pub created_at: Timestamp,
}
