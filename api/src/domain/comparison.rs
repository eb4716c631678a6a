//! Evaluation jobs (`brightrun models eval`): what one asks for (an [`EvaluationTask`] on the
//! job record) and what its trainer measured (a [`Comparison`], the `comparison.json` of
//! trainer/PROTOCOL.md's compare mode): every model's answer to every prompt, scored against
//! the reference where there is one, with each model's base beside it.
//!
//! Like [`super::Evaluation`], the comparison is read leniently (every field but the lists is
//! optional, unknown fields are left out) and stored as its own JSON document with a
//! `version`, never a positional layout.

use super::ChatMessage;
use crate::ids::ArtifactId;
use serde::{Deserialize, Serialize};

/// The most models one evaluation job answers with (their bases come on top).
pub const MAX_EVALUATED_MODELS: usize = 8;
/// The most prompts one evaluation job carries.
pub const MAX_EVALUATION_PROMPTS: usize = 500;
/// The most bytes of prompt and reference text one evaluation job carries (it lives in the
/// job record, rewritten as the job moves).
pub const MAX_EVALUATION_PROMPT_BYTES: usize = 512 * 1024;
/// The longest answer an evaluation job may ask for.
pub const MAX_EVALUATION_NEW_TOKENS: u32 = 4096;

/// What an evaluation job does: answer a prompt set with each model (and each model's base),
/// greedily, and score the answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EvaluationTask {
    /// The models, in the order asked (the first one's run gives the held-out data when no
    /// prompts are given).
    pub models: Vec<ArtifactId>,
    /// The prompts, or none: the first model's held-out examples and the probes, as the
    /// evaluation after a run chooses them.
    pub prompts: Option<Vec<EvalPrompt>>,
    pub max_new_tokens: u32,
}

/// One prompt of a prompt set: a conversation ending with a user turn, and the answer
/// expected when the file gave one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvalPrompt {
    /// `system`, `user` and `assistant` turns, the last one the user's.
    pub messages: Vec<ChatMessage>,
    #[serde(default)]
    pub reference: Option<String>,
}

impl EvalPrompt {
    /// The bytes of text it carries.
    pub fn text_len(&self) -> usize {
        self.messages.iter().map(|m| m.content.len()).sum::<usize>()
            + self.reference.as_ref().map_or(0, String::len)
    }
}

/// What a job is for.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobTask {
    /// Train an adapter (every job before evaluation jobs).
    #[default]
    Training,
    /// Answer a prompt set with trained models (`brightrun models eval`); makes no model.
    /// Boxed: every job carries a task, and few are evaluations.
    Evaluation(Box<EvaluationTask>),
    /// Export a trained model (`brightrun models export`); makes a model of another kind.
    Export(Box<super::ExportTask>),
}

impl JobTask {
    pub fn evaluation(&self) -> Option<&EvaluationTask> {
        match self {
            JobTask::Evaluation(t) => Some(t),
            JobTask::Training | JobTask::Export(_) => None,
        }
    }

    pub fn export(&self) -> Option<&super::ExportTask> {
        match self {
            JobTask::Export(t) => Some(t),
            JobTask::Training | JobTask::Evaluation(_) => None,
        }
    }

    pub fn is_evaluation(&self) -> bool {
        self.evaluation().is_some()
    }

    pub fn is_export(&self) -> bool {
        self.export().is_some()
    }

    /// Whether the job trains an adapter.
    pub fn is_training(&self) -> bool {
        matches!(self, JobTask::Training)
    }

    /// Whether the trainer reads the job's dataset: a training job, or an evaluation of
    /// held-out examples (none given); never an export.
    pub fn uses_dataset(&self) -> bool {
        match self {
            JobTask::Training => true,
            JobTask::Evaluation(t) => t.prompts.is_none(),
            JobTask::Export(_) => false,
        }
    }

    /// The job's kind as the CLI and the API name it.
    pub fn kind_name(&self) -> &'static str {
        match self {
            JobTask::Training => "training",
            JobTask::Evaluation(_) => "evaluation",
            JobTask::Export(_) => "export",
        }
    }
}

/// The `comparison.json` of an evaluation job.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Comparison {
    pub version: u32,
    /// How answers are scored against references (`rouge_l_f1`).
    pub similarity: Option<String>,
    /// `prompts` (the user's file), `validation` (held out from the first model's run) or
    /// `training` (a dataset too small to hold any out).
    pub prompts_from: Option<String>,
    pub decoding: super::Decoding,
    /// Each base model, then its adapters, in the order of `answers`.
    pub models: Vec<ComparedModel>,
    pub prompts: Vec<ComparedPrompt>,
    pub tokens_scored: Option<u64>,
    pub seconds: Option<f64>,
    /// What failed when part of it could not be computed.
    pub error: Option<String>,
}

/// One column of a comparison: a base model or an adapter, with its totals.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct ComparedModel {
    /// The model's id, or `base:` and the base model for a base.
    pub id: String,
    pub label: String,
    pub base_model: String,
    /// An adapter (false: a base model).
    pub adapter: bool,
    /// Held-out loss and perplexity (prompts from a run's held-out data only).
    pub loss: Option<f64>,
    pub perplexity: Option<f64>,
    /// Mean similarity to the references (none without references).
    pub mean_score: Option<f64>,
    /// Prompts with a reference where this model scored strictly highest.
    pub best: u32,
    pub seconds: Option<f64>,
}

/// One prompt, answered by every model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct ComparedPrompt {
    /// The last user message (earlier turns are counted in `context_turns`).
    pub prompt: String,
    pub context_turns: Option<u32>,
    pub reference: Option<String>,
    /// A probe (a general prompt, to see what training changed), not a held-out example.
    pub probe: bool,
    pub builtin: bool,
    /// In the order of [`Comparison::models`].
    pub answers: Vec<ComparedAnswer>,
}

/// One model's answer to one prompt.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct ComparedAnswer {
    pub text: String,
    pub score: Option<f64>,
    /// An adapter's answer to a probe differs from its base's.
    pub changed: Option<bool>,
}

impl Comparison {
    /// Cleans every string of terminal controls (answers are a model's output; labels come
    /// from the trainer) and drops non-finite numbers.
    pub fn sanitised(mut self) -> Self {
        let finite = |v: &mut Option<f64>| *v = v.filter(|x| x.is_finite());
        for m in &mut self.models {
            for s in [&mut m.id, &mut m.label, &mut m.base_model] {
                *s = crate::text::clean_line(s);
            }
            for v in [
                &mut m.loss,
                &mut m.perplexity,
                &mut m.mean_score,
                &mut m.seconds,
            ] {
                finite(v);
            }
        }
        for p in &mut self.prompts {
            p.prompt = crate::text::clean(&p.prompt).into_owned();
            if let Some(r) = p.reference.as_mut() {
                *r = crate::text::clean(r).into_owned();
            }
            for a in &mut p.answers {
                a.text = crate::text::clean(&a.text).into_owned();
                finite(&mut a.score);
            }
        }
        finite(&mut self.seconds);
        for s in [
            &mut self.similarity,
            &mut self.prompts_from,
            &mut self.error,
        ] {
            if let Some(v) = s.as_mut() {
                *v = crate::text::clean_line(v);
            }
        }
        self
    }

    /// Prompts whose answers are not one per model (a trainer that broke the contract):
    /// shown as they are, but said.
    pub fn misaligned(&self) -> usize {
        self.prompts
            .iter()
            .filter(|p| p.answers.len() != self.models.len())
            .count()
    }

    /// The column of the best adapter by mean score (ties: the first), if any scored.
    pub fn best_adapter(&self) -> Option<&ComparedModel> {
        self.models
            .iter()
            .filter(|m| m.adapter && m.mean_score.is_some())
            .fold(None, |best: Option<&ComparedModel>, m| match best {
                Some(b) if b.mean_score >= m.mean_score => Some(b),
                _ => Some(m),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(id: &str, adapter: bool, mean: Option<f64>) -> ComparedModel {
        ComparedModel {
            id: id.into(),
            label: id.into(),
            adapter,
            mean_score: mean,
            ..Default::default()
        }
    }

    #[test]
    fn a_trainers_document_reads_leniently_and_is_cleaned() {
        let doc = serde_json::json!({
            "version": 1, "future_field": [1, 2],
            "models": [{"id": "base:m", "label": "m \u{1b}[31m(base)", "adapter": false}],
            "prompts": [{"prompt": "hi\u{1b}]0;x\u{7}", "answers": [{"text": "ok", "score": 0.5}]}]
        });
        let c: Comparison = serde_json::from_value(doc).unwrap();
        let c = c.sanitised();
        assert!(!c.models[0].label.contains('\u{1b}'));
        assert!(!c.prompts[0].prompt.contains('\u{1b}'));
        assert_eq!(c.prompts[0].answers[0].score, Some(0.5));
        assert_eq!(c.misaligned(), 0);
    }

    #[test]
    fn the_best_adapter_is_the_first_with_the_highest_mean_and_never_a_base() {
        let c = Comparison {
            models: vec![
                model("base:m", false, Some(0.9)),
                model("a", true, Some(0.4)),
                model("b", true, Some(0.7)),
                model("c", true, Some(0.7)),
                model("d", true, None),
            ],
            ..Default::default()
        };
        assert_eq!(c.best_adapter().unwrap().id, "b");
        let none = Comparison {
            models: vec![model("base:m", false, Some(0.9))],
            ..Default::default()
        };
        assert!(none.best_adapter().is_none());
    }

    #[test]
    fn a_job_task_says_what_it_is_in_json() {
        assert_eq!(
            serde_json::to_value(JobTask::Training).unwrap(),
            serde_json::json!({"kind": "training"})
        );
        let t = JobTask::Evaluation(Box::new(EvaluationTask {
            models: vec![],
            prompts: None,
            max_new_tokens: 64,
        }));
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v["kind"], "evaluation");
        assert_eq!(v["max_new_tokens"], 64);
        assert_eq!(serde_json::from_value::<JobTask>(v).unwrap(), t);
    }
}
