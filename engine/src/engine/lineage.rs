//! Training on from a model (`jobs create --from-model M`): the new run starts from the
//! model's adapter instead of fresh LoRA weights, so it must keep the model's base and LoRA
//! shape; the model it makes names it as its parent (`parent_model_id`), and `models show`
//! walks the line back.

use super::{Engine, EngineError, Result};
use crate::backend::CompareModel;
use crate::domain::{Hyperparameters, ModelArtifact, TrainingJob};
use crate::ids::ArtifactId;

/// The model a run starts from, and how it was trained.
pub(crate) struct Parent {
    model: ModelArtifact,
    hp: Hyperparameters,
}

impl Parent {
    /// The caller's model `id` and its run's hyperparameters.
    pub(crate) fn of(engine: &Engine, id: ArtifactId) -> Result<Self> {
        let model = engine.adapter(id, "train on from")?;
        let hp = engine.first_run(&model)?.hyperparameters;
        Ok(Self { model, hp })
    }

    /// Gives `hp` the parent's base model and LoRA shape (before the user's `--set`s).
    pub(crate) fn shape_into(&self, hp: &mut Hyperparameters) {
        hp.base_model = self.hp.base_model.clone();
        hp.lora_rank = self.hp.lora_rank;
        hp.lora_alpha = self.hp.lora_alpha;
        hp.target_modules = self.hp.target_modules.clone();
    }

    /// Refuses a run whose base model or LoRA shape differs from the parent's, naming both.
    pub(crate) fn check_shape(&self, hp: &Hyperparameters) -> Result<()> {
        let (p, short) = (&self.hp, self.model.id.short());
        let sorted = |v: &[String]| {
            let mut v = v.to_vec();
            v.sort();
            v
        };
        let differs = [
            ("base_model", p.base_model.clone(), hp.base_model.clone()),
            (
                "lora_rank",
                p.lora_rank.to_string(),
                hp.lora_rank.to_string(),
            ),
            (
                "lora_alpha",
                p.lora_alpha.to_string(),
                hp.lora_alpha.to_string(),
            ),
            (
                "target_modules",
                sorted(&p.target_modules).join(","),
                sorted(&hp.target_modules).join(","),
            ),
        ]
        .into_iter()
        .find(|(_, a, b)| a != b);
        match differs {
            Some((field, theirs, asked)) => Err(EngineError::InvalidField {
                field: field.into(),
                message: format!(
                    "{field} {asked} differs from model {short}'s {theirs}: training on from a model keeps its base model and LoRA shape (drop the --set, or train afresh without --from-model)"
                ),
            }),
            None => Ok(()),
        }
    }
}

impl Engine {
    /// The spec's `init_adapter` of a run that starts from a model: where its trainer finds
    /// the adapter (this machine's folder, or presigned GET URLs for a remote one).
    pub(crate) async fn init_adapter_spec(
        &self,
        job: &TrainingJob,
    ) -> Result<Option<CompareModel>> {
        let Some(id) = job.init_model else {
            return Ok(None);
        };
        self.adapter_spec(job, id).await.map(Some)
    }
}
