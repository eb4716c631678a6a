//! Training runs side by side (`brightrun jobs compare`, the dashboard's Compare view): each
//! run's losses, evaluation, cost and duration, the hyperparameters that differ, and the best.

use super::{Engine, EngineError, Result};
use crate::domain::{
    ComparedRun, MAX_COMPARED_RUNS, MetricsPoint, RunComparison, RunEvaluation, TrainingJob, now,
};
use crate::ids::JobId;
use std::collections::BTreeSet;

impl Engine {
    /// Compares 2 to [`MAX_COMPARED_RUNS`] of the caller's training jobs, in the order given.
    pub fn compare_runs(&self, ids: &[JobId]) -> Result<RunComparison> {
        let unique: BTreeSet<&JobId> = ids.iter().collect();
        if unique.len() != ids.len() || !(2..=MAX_COMPARED_RUNS).contains(&ids.len()) {
            return Err(EngineError::InvalidField {
                field: "ids".into(),
                message: format!(
                    "name 2 to {MAX_COMPARED_RUNS} different jobs (got {} of {})",
                    unique.len(),
                    ids.len()
                ),
            });
        }
        let runs = ids
            .iter()
            .map(|id| self.compared_run(*id))
            .collect::<Result<Vec<_>>>()?;
        let differing = differing(&runs);
        let (best, best_by) = match best_run(&runs) {
            Some((id, by)) => (Some(id), Some(by.to_string())),
            None => (None, None),
        };
        Ok(RunComparison {
            runs,
            differing,
            best,
            best_by,
        })
    }

    pub(crate) fn compared_run(&self, id: JobId) -> Result<ComparedRun> {
        let job = self.job(id)?;
        if !job.task.is_training() {
            return Err(EngineError::InvalidField {
                field: "ids".into(),
                message: format!(
                    "job {} is an {}, not a training run (`jobs show` shows what it did)",
                    id.short(),
                    job.task.kind_name()
                ),
            });
        }
        let points = self.inner.store.metrics(id, 0, usize::MAX)?;
        let dataset_name = self
            .inner
            .store
            .dataset(job.dataset_id)?
            .map(|d| d.name)
            .unwrap_or_else(|| "(deleted)".into());
        let evaluation = match job.artifact_id {
            Some(model) => self.inner.store.evaluation(model)?.map(|e| RunEvaluation {
                model_id: model,
                base_loss: e.base_loss,
                adapter_loss: e.adapter_loss,
                adapter_closer: e.adapter_closer,
                scored: e
                    .samples
                    .iter()
                    .filter(|s| s.adapter_score.is_some())
                    .count() as u32,
                probes_changed: e.probes.iter().filter(|p| p.changed == Some(true)).count() as u32,
                preference_accuracy: e.preference.as_ref().and_then(|p| p.adapter_accuracy),
                base_preference_accuracy: e.preference.as_ref().and_then(|p| p.base_accuracy),
            }),
            None => None,
        };
        Ok(run_of(job, &points, dataset_name, evaluation))
    }
}

fn run_of(
    job: TrainingJob,
    points: &[MetricsPoint],
    dataset_name: String,
    evaluation: Option<RunEvaluation>,
) -> ComparedRun {
    let lowest = |f: fn(&MetricsPoint) -> Option<f64>| {
        points
            .iter()
            .filter_map(f)
            .filter(|v| v.is_finite())
            .min_by(f64::total_cmp)
    };
    let last = |f: fn(&MetricsPoint) -> Option<f64>| points.iter().rev().find_map(f);
    let duration_seconds = job.started_at.map(|s| {
        let end = job.completed_at.unwrap_or_else(now);
        (end - s).num_milliseconds().max(0) as f64 / 1000.0
    });
    ComparedRun {
        id: job.id,
        status: job.status,
        dataset_id: job.dataset_id,
        dataset_name,
        hyperparameters: serde_json::to_value(&job.hyperparameters).unwrap_or_default(),
        best_training_loss: lowest(|p| p.training_loss),
        final_training_loss: last(|p| p.training_loss),
        best_validation_loss: lowest(|p| p.validation_loss),
        final_validation_loss: last(|p| p.validation_loss),
        final_reward_accuracy: last(|p| p.preference.as_ref().and_then(|m| m.reward_accuracy)),
        final_reward_margin: last(|p| p.preference.as_ref().and_then(|m| m.reward_margin)),
        steps: job.current_step,
        total_steps: job.total_steps,
        evaluation,
        cost: job.final_cost.unwrap_or(job.current_cost),
        duration_seconds,
        started_at: job.started_at,
    }
}

/// The hyperparameters whose values differ among the runs (and `dataset` when they trained on
/// different data), sorted.
fn differing(runs: &[ComparedRun]) -> Vec<String> {
    let mut keys: BTreeSet<String> = BTreeSet::new();
    for r in runs {
        if let Some(map) = r.hyperparameters.as_object() {
            keys.extend(map.keys().cloned());
        }
    }
    let mut out: Vec<String> = keys
        .into_iter()
        .filter(|k| {
            let first = runs[0].hyperparameters.get(k);
            runs.iter().any(|r| r.hyperparameters.get(k) != first)
        })
        .collect();
    if runs.iter().any(|r| r.dataset_id != runs[0].dataset_id) {
        out.push("dataset".into());
        out.sort();
    }
    out
}

/// The best run and what it was judged by: the lowest best validation loss when every run has
/// one, else the lowest evaluation loss when every run has one, else the lowest final training
/// loss (runs that have none are left out). None when the runs trained with different methods:
/// an SFT loss, a DPO loss and an ORPO loss measure different things, so the lowest says
/// nothing about which model is better.
pub(super) fn best_run(runs: &[ComparedRun]) -> Option<(JobId, &'static str)> {
    if !same_method(runs) {
        return None;
    }
    let by = |f: &dyn Fn(&ComparedRun) -> Option<f64>, all: bool| {
        let scored: Vec<(JobId, f64)> = runs
            .iter()
            .filter_map(|r| f(r).map(|v| (r.id, v)))
            .collect();
        if scored.is_empty() || (all && scored.len() != runs.len()) {
            return None;
        }
        scored
            .into_iter()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(id, _)| id)
    };
    if let Some(id) = by(&|r| r.best_validation_loss, true) {
        return Some((id, "validation_loss"));
    }
    if let Some(id) = by(
        &|r| r.evaluation.as_ref().and_then(|e| e.adapter_loss),
        true,
    ) {
        return Some((id, "evaluation_loss"));
    }
    by(&|r| r.final_training_loss, false).map(|id| (id, "training_loss"))
}

/// Whether every run trained with the same method (`sft` where a record names none).
pub(crate) fn same_method(runs: &[ComparedRun]) -> bool {
    let method = |r: &ComparedRun| {
        r.hyperparameters["method"]["name"]
            .as_str()
            .unwrap_or("sft")
            .to_string()
    };
    runs.iter().all(|r| method(r) == method(&runs[0]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::JobStatus;
    use crate::ids::DatasetId;
    use serde_json::json;

    fn run(lr: f64, rank: u32, val: Option<f64>, train: Option<f64>) -> ComparedRun {
        ComparedRun {
            id: JobId::new(),
            status: JobStatus::Completed,
            dataset_id: DatasetId(uuid::Uuid::nil()),
            dataset_name: "d".into(),
            hyperparameters: json!({"learning_rate": lr, "lora_rank": rank, "epochs": 3}),
            best_training_loss: train,
            final_training_loss: train,
            best_validation_loss: val,
            final_validation_loss: val,
            final_reward_accuracy: None,
            final_reward_margin: None,
            steps: 10,
            total_steps: 10,
            evaluation: None,
            cost: 1.0,
            duration_seconds: Some(60.0),
            started_at: None,
        }
    }

    #[test]
    fn only_the_hyperparameters_that_differ_are_named() {
        let runs = [run(1e-4, 8, None, None), run(5e-5, 8, None, None)];
        assert_eq!(differing(&runs), vec!["learning_rate"]);
        let mut other = run(1e-4, 16, None, None);
        other.dataset_id = DatasetId::new();
        let runs = [run(1e-4, 8, None, None), other];
        assert_eq!(differing(&runs), vec!["dataset", "lora_rank"]);
    }

    #[test]
    fn the_best_run_is_judged_by_validation_then_evaluation_then_training_loss() {
        let runs = [
            run(1e-4, 8, Some(0.9), Some(0.2)),
            run(5e-5, 8, Some(0.7), Some(0.5)),
        ];
        assert_eq!(best_run(&runs), Some((runs[1].id, "validation_loss")));
        // One without a validation loss: the training loss decides.
        let runs = [
            run(1e-4, 8, Some(0.9), Some(0.2)),
            run(5e-5, 8, None, Some(0.5)),
        ];
        assert_eq!(best_run(&runs), Some((runs[0].id, "training_loss")));
        let runs = [run(1e-4, 8, None, None), run(5e-5, 8, None, None)];
        assert_eq!(best_run(&runs), None);
        // Losses of different methods are not compared: no best.
        let mut dpo = run(5e-5, 8, Some(0.5), Some(0.5));
        dpo.hyperparameters["method"] = json!({"name": "dpo", "beta": 0.1, "loss_type": "sigmoid"});
        let runs = [run(1e-4, 8, Some(0.9), Some(0.2)), dpo.clone()];
        assert_eq!(best_run(&runs), None);
        let mut other = dpo.clone();
        other.id = JobId::new();
        other.best_validation_loss = Some(0.4);
        assert_eq!(
            best_run(&[dpo, other.clone()]),
            Some((other.id, "validation_loss"))
        );
    }
}
