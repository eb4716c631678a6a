//! Hyperparameter sweeps (`brightrun jobs sweep`, `/api/sweeps`): one base configuration run at
//! every combination of a grid (and of random draws from ranges), a few at a time, within a
//! budget, with the best run named at the end.

use super::Timestamp;
use crate::ids::{JobId, SweepId, UserId};
use crate::messages::JobSpec;
use crate::training::Estimate;
use serde::{Deserialize, Serialize};

/// The most combinations one sweep may run.
pub const MAX_SWEEP_RUNS: usize = 64;
/// The most runs of a sweep that may train at once.
pub const MAX_SWEEP_PARALLEL: u32 = 16;

/// What a sweep runs: a base job and the values to try.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// The configuration every run starts from (dataset, preset, `--set`s, GPU, backend).
    pub job: JobSpec,
    /// `--grid key=v1,v2`: every combination of these values is run.
    #[serde(default)]
    pub grid: Vec<SweepAxis>,
    /// `--random N`: this many extra draws from `ranges` (with the grid's values, when both
    /// are given, each draw is crossed with every grid combination).
    #[serde(default)]
    pub random: u32,
    /// `--range key=low:high[:log]`: where random draws come from.
    #[serde(default)]
    pub ranges: Vec<SweepRange>,
    /// The seed of the random draws, so a plan is the sweep that runs.
    #[serde(default)]
    pub seed: u64,
    /// `--max-parallel K`: runs training at once (1 to [`MAX_SWEEP_PARALLEL`]); default 1.
    #[serde(default)]
    pub max_parallel: u32,
    /// `--budget USD`: the sweep never starts a run that could take its cost past this.
    #[serde(default)]
    pub budget: Option<f64>,
    /// `--stop-worse MARGIN`: a run whose validation loss is worse than the median of its
    /// siblings at the same step by more than this fraction (0.1 = 10%) is cancelled.
    #[serde(default)]
    pub stop_worse: Option<f64>,
    /// A name for lists; default: what is swept.
    #[serde(default)]
    pub name: Option<String>,
}

/// One grid axis: a hyperparameter (by the name `--set` takes) and its values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SweepAxis {
    pub key: String,
    pub values: Vec<String>,
}

/// One random-search range: uniform, or log-uniform when `log`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SweepRange {
    pub key: String,
    pub low: f64,
    pub high: f64,
    #[serde(default)]
    pub log: bool,
}

/// What a sweep would do, before anything starts: each run's estimate and the totals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SweepPlan {
    pub name: String,
    /// One per combination, in the order they would start.
    pub runs: Vec<PlannedRun>,
    /// The swept keys, in order.
    pub keys: Vec<String>,
    /// US dollars, every run together.
    pub total_cost: f64,
    /// Hours from the first start to the last end with `max_parallel` runs at a time.
    pub total_duration_hours: f64,
    pub max_parallel: u32,
    pub budget: Option<f64>,
    /// Runs that would not start because the sweep's budget is spent by the ones before.
    pub over_sweep_budget: u32,
    /// This month's spending and its budget, when a monthly budget is set.
    pub spent_this_month: f64,
    pub monthly_budget: Option<f64>,
    /// Whether all the runs together would take the month past its budget.
    pub exceeds_monthly_budget: bool,
    /// Runs whose configuration does not fit the GPU's memory.
    pub not_fitting: u32,
}

/// One combination of a plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PlannedRun {
    /// The swept values of this run, `key=value`, in the order of [`SweepPlan::keys`].
    pub sets: Vec<(String, String)>,
    pub estimate: Estimate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SweepStatus {
    /// Starting runs as slots and budget allow.
    Running,
    /// Every run finished (or was skipped).
    Completed,
    /// Cancelled by the user: no further run starts.
    Cancelled,
}

impl SweepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Running)
    }
}

/// A sweep: its spec, its runs and how it stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Sweep {
    pub id: SweepId,
    pub user_id: UserId,
    pub name: String,
    pub spec: SweepSpec,
    pub status: SweepStatus,
    pub runs: Vec<SweepRun>,
    /// The best finished run: lowest best validation loss, else its model's evaluation loss,
    /// else lowest final training loss.
    pub best_job_id: Option<JobId>,
    /// What `best_job_id` was chosen by: `validation_loss`, `evaluation_loss` or
    /// `training_loss`.
    pub best_by: Option<String>,
    /// What its runs have cost so far, US dollars.
    pub spent: f64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub completed_at: Option<Timestamp>,
}

/// One combination of a sweep and what became of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SweepRun {
    /// The swept values, `key=value`.
    pub sets: Vec<(String, String)>,
    /// Its job, once started.
    pub job_id: Option<JobId>,
    /// Why it never started (the budget), when it did not.
    pub skipped: Option<String>,
    /// The estimate made when the sweep was planned.
    pub estimated_cost: f64,
}

impl Sweep {
    /// The ids of the runs started so far.
    pub fn job_ids(&self) -> impl Iterator<Item = JobId> + '_ {
        self.runs.iter().filter_map(|r| r.job_id)
    }

    /// Runs neither started nor skipped.
    pub fn pending(&self) -> usize {
        self.runs
            .iter()
            .filter(|r| r.job_id.is_none() && r.skipped.is_none())
            .count()
    }
}

/// Every combination of a grid's values, the first axis slowest: each a list of `key=value`
/// in the axes' order (one empty combination for no axes).
pub fn grid_combinations(grid: &[SweepAxis]) -> Vec<Vec<(String, String)>> {
    let mut combos: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for axis in grid {
        combos = combos
            .into_iter()
            .flat_map(|combo| {
                axis.values.iter().map(move |v| {
                    let mut c = combo.clone();
                    c.push((axis.key.clone(), v.trim().to_string()));
                    c
                })
            })
            .collect();
    }
    combos
}

impl SweepPlan {
    /// A plan's totals from its runs' estimates: the cost, the time with `max_parallel` runs
    /// at a time (each starting on the first free slot, in order), what the sweep budget and
    /// the month's budget leave out, the runs that will not fit.
    pub fn new(
        spec: &SweepSpec,
        runs: Vec<PlannedRun>,
        spent_this_month: f64,
        monthly_budget: Option<f64>,
    ) -> SweepPlan {
        let max_parallel = spec.max_parallel.max(1);
        let total_cost: f64 = runs.iter().map(|r| r.estimate.estimated_cost).sum();
        let mut slots = vec![0.0f64; max_parallel as usize];
        for r in &runs {
            if let Some(first) = slots.iter_mut().min_by(|a, b| a.total_cmp(b)) {
                *first += r.estimate.estimated_duration_hours;
            }
        }
        let mut cumulative = 0.0;
        let over_sweep_budget = runs
            .iter()
            .filter(|r| {
                cumulative += r.estimate.estimated_cost;
                spec.budget.is_some_and(|b| cumulative > b + 1e-9)
            })
            .count() as u32;
        SweepPlan {
            name: spec.name.clone().unwrap_or_else(|| spec.default_name()),
            keys: runs
                .first()
                .map(|r| r.sets.iter().map(|(k, _)| k.clone()).collect())
                .unwrap_or_default(),
            not_fitting: runs
                .iter()
                .filter(|r| !r.estimate.fit.verdict.fits())
                .count() as u32,
            runs,
            total_cost,
            total_duration_hours: slots.iter().copied().fold(0.0, f64::max),
            max_parallel,
            budget: spec.budget,
            over_sweep_budget,
            spent_this_month,
            monthly_budget,
            exceeds_monthly_budget: monthly_budget
                .is_some_and(|b| spent_this_month + total_cost > b),
        }
    }
}

impl SweepSpec {
    /// What a sweep is named by default: the keys it sweeps.
    pub fn default_name(&self) -> String {
        let keys: Vec<&str> = self
            .grid
            .iter()
            .map(|a| a.key.as_str())
            .chain(self.ranges.iter().map(|r| r.key.as_str()))
            .collect();
        format!("sweep of {}", keys.join(" × "))
    }
}
