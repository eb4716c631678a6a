//! Runs side by side (`brightrun jobs compare`, the dashboard's Compare view): what differs in
//! their configuration and how each went.

use super::{JobStatus, Timestamp};
use crate::ids::{ArtifactId, DatasetId, JobId};
use serde::{Deserialize, Serialize};

/// The most runs one comparison holds (the Compare view overlays their curves).
pub const MAX_COMPARED_RUNS: usize = 6;

/// Up to [`MAX_COMPARED_RUNS`] training runs compared.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunComparison {
    /// In the order asked.
    pub runs: Vec<ComparedRun>,
    /// The hyperparameters (and dataset or base model) whose values differ among the runs,
    /// sorted: what the comparison is about.
    pub differing: Vec<String>,
    /// The best run: the lowest best validation loss, else the lowest evaluation loss of its
    /// model, else the lowest final training loss. None when the runs trained with different
    /// methods (`method` among `differing`): their losses measure different things.
    pub best: Option<JobId>,
    /// What `best` was chosen by: `validation_loss`, `evaluation_loss` or `training_loss`.
    pub best_by: Option<String>,
}

/// One run of a comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ComparedRun {
    pub id: JobId,
    pub status: JobStatus,
    pub dataset_id: DatasetId,
    pub dataset_name: String,
    /// Every hyperparameter, by the names `--set` takes.
    pub hyperparameters: serde_json::Value,
    pub best_training_loss: Option<f64>,
    pub final_training_loss: Option<f64>,
    pub best_validation_loss: Option<f64>,
    pub final_validation_loss: Option<f64>,
    /// A preference run's reward accuracy and margin at its last logged step (none for SFT;
    /// no accuracy for KTO).
    #[serde(default)]
    pub final_reward_accuracy: Option<f64>,
    #[serde(default)]
    pub final_reward_margin: Option<f64>,
    /// Steps trained, of the total.
    pub steps: u64,
    pub total_steps: u64,
    /// Its model's evaluation, where the run made one and it was evaluated.
    pub evaluation: Option<RunEvaluation>,
    /// What it cost (final, or so far).
    pub cost: f64,
    /// From start to end (or to now for a running one).
    pub duration_seconds: Option<f64>,
    pub started_at: Option<Timestamp>,
}

impl ComparedRun {
    /// Whether the run trained on preferences: it logged rewards or its model's evaluation
    /// judged held-out pairs (what `jobs compare` and the Compare view add columns for).
    pub fn trained_on_preferences(&self) -> bool {
        self.final_reward_margin.is_some()
            || self
                .evaluation
                .as_ref()
                .is_some_and(|e| e.preference_accuracy.is_some())
    }
}

/// The headline of a model's evaluation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunEvaluation {
    pub model_id: ArtifactId,
    pub base_loss: Option<f64>,
    pub adapter_loss: Option<f64>,
    /// Held-out answers closer to the reference than the base's, of those scored.
    pub adapter_closer: Option<u32>,
    pub scored: u32,
    /// Probe answers the training changed.
    pub probes_changed: u32,
    /// A preference run's held-out pairs: the share whose chosen reply the adapter prefers,
    /// and the base model's share on the same pairs.
    #[serde(default)]
    pub preference_accuracy: Option<f64>,
    #[serde(default)]
    pub base_preference_accuracy: Option<f64>,
}
