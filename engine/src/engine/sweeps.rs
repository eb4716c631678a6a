//! Hyperparameter sweeps: one base configuration at every combination of a grid (and of
//! random draws from ranges), `max_parallel` runs at a time, within a budget.
//!
//! A sweep is a record ([`Sweep`]); the engine's sweep task ([`Engine::advance_sweeps`]) looks
//! at every running sweep whenever a job changes: it starts runs while slots and budget allow,
//! stops a run that falls behind its siblings (`stop_worse`), and names the best run when all
//! are done. Starting runs and recording them in the sweep is one store transaction, checked
//! against the sweep's `updated_at`, so a cancel (or a second engine task) in between is never
//! overwritten and no run starts twice.

mod combine;
mod stop;

use super::{Engine, EngineError, JobRequest, Result};
use crate::api::Reason;
use crate::domain::*;
use crate::engine::resolve::{IdKind, pick};
use crate::ids::{ArtifactId, DatasetId, JobId, SweepId};
pub(crate) use combine::combinations;

impl Engine {
    /// What `spec` would run and cost; nothing starts. `spec.job` names its dataset (and model)
    /// by full id (the API resolves prefixes first).
    pub fn plan_sweep(&self, spec: &SweepSpec) -> Result<SweepPlan> {
        let combos = combinations(spec)?;
        let base = base_request(spec)?;
        let mut runs = Vec::with_capacity(combos.len());
        for (i, sets) in combos.iter().enumerate() {
            let estimate =
                self.estimate(&with_sets(&base, sets))
                    .map_err(|e| EngineError::InvalidField {
                        field: "grid".into(),
                        message: format!("run {} ({}): {e}", i + 1, crate::wording::sets(sets)),
                    })?;
            runs.push(PlannedRun {
                sets: sets.clone(),
                estimate,
            });
        }
        let spent = self.spent_this_month()?;
        Ok(SweepPlan::new(
            spec,
            runs,
            spent,
            self.inner.config.budget.monthly_usd,
        ))
    }

    /// Records a sweep and starts its first runs. Refused when its budget covers no run, or
    /// when all its runs together would take the month over its budget, unless confirmed.
    pub async fn create_sweep(&self, spec: SweepSpec, confirm_over_budget: bool) -> Result<Sweep> {
        let sweep = self
            .on_store(move |e| {
                let plan = e.plan_sweep(&spec)?;
                check_plan(&plan, confirm_over_budget)?;
                let sweep = new_sweep(e.user, spec, &plan);
                e.inner.store.write(|w| w.put_sweep(&sweep))?;
                Ok(sweep)
            })
            .await?;
        self.advance_sweep(sweep.id).await?;
        self.on_store(move |e| e.sweep(sweep.id)).await
    }

    pub fn sweeps(&self) -> Result<Vec<Sweep>> {
        Ok(self.inner.store.sweeps(Some(self.user))?)
    }

    pub fn sweep(&self, id: SweepId) -> Result<Sweep> {
        self.inner
            .store
            .sweep(id)?
            .filter(|s| s.user_id == self.user)
            .ok_or_else(|| EngineError::NotFound {
                kind: IdKind::Sweep,
                query: id.to_string(),
            })
    }

    pub fn resolve_sweep(&self, query: &str) -> Result<SweepId> {
        let all = self.sweeps()?;
        pick(IdKind::Sweep, query, all.iter().map(|s| s.id))
    }

    /// Stops a sweep: no further run starts, and its queued and running jobs are cancelled.
    pub async fn cancel_sweep(&self, id: SweepId) -> Result<Sweep> {
        let sweep = self
            .on_store(move |e| {
                let user = e.user;
                e.inner.store.write(|w| {
                    let mut s = match w.sweep(id)? {
                        Some(s) if s.user_id == user => s,
                        _ => {
                            return Ok(Err(EngineError::NotFound {
                                kind: IdKind::Sweep,
                                query: id.to_string(),
                            }));
                        }
                    };
                    if s.status.is_terminal() {
                        return Ok(Err(EngineError::conflict(
                            Reason::AlreadyFinished,
                            format!("sweep {} is already {}", id.short(), s.status.as_str()),
                        )));
                    }
                    let t = now();
                    s.status = SweepStatus::Cancelled;
                    (s.updated_at, s.completed_at) = (t, Some(t));
                    for r in s.runs.iter_mut().filter(|r| r.job_id.is_none()) {
                        r.skipped
                            .get_or_insert_with(|| "the sweep was cancelled".into());
                    }
                    w.put_sweep(&s)?;
                    Ok(Ok(s))
                })?
            })
            .await?;
        for job in sweep.job_ids() {
            match self.cancel_job(job).await {
                Ok(_) => {}
                Err(EngineError::Conflict { .. }) => {} // already finished
                Err(e) => {
                    tracing::warn!("cancelling sweep {}: job {}: {e}", id.short(), job.short())
                }
            }
        }
        Ok(sweep)
    }

    /// Moves every running sweep on (the sweep task calls this when a job changes).
    pub(crate) async fn advance_sweeps(&self) {
        let running = self
            .on_store(|e| {
                Ok(e.inner
                    .store
                    .sweeps(None)?
                    .into_iter()
                    .filter(|s| !s.status.is_terminal())
                    .collect::<Vec<_>>())
            })
            .await
            .unwrap_or_default();
        for s in running {
            let e = self.as_user(s.user_id);
            if let Err(err) = e.advance_sweep(s.id).await {
                tracing::warn!("sweep {}: {err}", s.id.short());
            }
        }
    }

    /// One sweep's step: stop the runs that fall behind, then start runs while slots and
    /// budget allow, or finish it.
    async fn advance_sweep(&self, id: SweepId) -> Result<()> {
        let laggards = self.on_store(move |e| e.runs_to_stop(id)).await?;
        for (job, reason) in laggards {
            tracing::info!(
                "sweep {}: stopping job {}: {reason}",
                id.short(),
                job.short()
            );
            if let Err(err) = self.cancel_job_because(job, Some(reason)).await {
                tracing::debug!("sweep {}: stopping job {}: {err}", id.short(), job.short());
            }
        }
        let started = self.on_store(move |e| e.start_runs(id)).await?;
        if started {
            self.inner.wake_dispatch.notify_one();
        }
        Ok(())
    }

    /// Starts what the sweep may start now, finishes it when nothing is left, and stores it
    /// (when it changed) in one transaction with the new jobs. Returns whether jobs started.
    fn start_runs(&self, id: SweepId) -> Result<bool> {
        let before = self.sweep(id)?;
        if before.status.is_terminal() {
            return Ok(false);
        }
        let jobs: Vec<TrainingJob> = before
            .job_ids()
            .map(|j| self.inner.store.job(j))
            .collect::<std::result::Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect();
        let mut s = before.clone();
        s.spent = jobs
            .iter()
            .map(|j| j.final_cost.unwrap_or(j.current_cost))
            .sum();
        let active = jobs.iter().filter(|j| !j.status.is_terminal()).count();
        let mut new_jobs = Vec::new();
        let base = base_request(&s.spec)?;
        let slots = (s.spec.max_parallel.max(1) as usize).saturating_sub(active);
        // Money the sweep may still need: what its unfinished runs were estimated at.
        let mut committed = s.spent
            + jobs
                .iter()
                .filter(|j| !j.status.is_terminal())
                .map(|j| (j.estimated_cost - j.current_cost).max(0.0))
                .sum::<f64>();
        for run in s
            .runs
            .iter_mut()
            .filter(|r| r.job_id.is_none() && r.skipped.is_none())
        {
            if new_jobs.len() >= slots {
                break;
            }
            if let Some(budget) = s.spec.budget
                && committed + run.estimated_cost > budget + 1e-9
            {
                run.skipped = Some(format!(
                    "the sweep's budget of ${budget:.2} would be passed (${committed:.2} spent or committed, this run about ${:.2})",
                    run.estimated_cost
                ));
                continue;
            }
            match self.new_job(&with_sets(&base, &run.sets), false) {
                Ok((job, dataset)) => {
                    committed += job.estimated_cost;
                    run.job_id = Some(job.id);
                    new_jobs.push((job, dataset));
                }
                Err(e) => run.skipped = Some(e.to_string()),
            }
        }
        if s.pending() == 0 && active == 0 && new_jobs.is_empty() {
            self.finish_sweep(&mut s, &jobs)?;
        }
        // The money spent moves with every running run's cost: stored when it moved by a cent
        // or more, or with another change, so a running sweep is not rewritten every second.
        let same_but_spent = Sweep {
            spent: before.spent,
            ..s.clone()
        } == before;
        if same_but_spent && (s.spent - before.spent).abs() < 0.01 {
            return Ok(false);
        }
        s.updated_at = now();
        let started = !new_jobs.is_empty();
        self.inner.store.write(|w| {
            // Changed meanwhile (cancelled, or moved on by another call): leave it to the next
            // look, which starts from what is stored.
            if w.sweep(id)?.map(|x| x.updated_at) != Some(before.updated_at) {
                return Ok(Ok(false));
            }
            for (job, dataset) in &new_jobs {
                if let Err(e) = self.queue_in(w, job, dataset)? {
                    return Ok(Err(e));
                }
            }
            w.put_sweep(&s)?;
            Ok(Ok(started))
        })?
    }

    /// Marks a sweep completed and names its best run.
    fn finish_sweep(&self, s: &mut Sweep, jobs: &[TrainingJob]) -> Result<()> {
        let done: Vec<ComparedRun> = jobs
            .iter()
            .filter(|j| j.status == JobStatus::Completed)
            .map(|j| self.compared_run(j.id))
            .collect::<Result<_>>()?;
        let best = super::runs::best_run(&done);
        s.best_job_id = best.map(|(id, _)| id);
        s.best_by = best.map(|(_, by)| by.to_string());
        s.status = SweepStatus::Completed;
        s.completed_at = Some(now());
        Ok(())
    }

    /// The sweep's running jobs that `stop_worse` stops now, with the reason for each.
    fn runs_to_stop(&self, id: SweepId) -> Result<Vec<(JobId, String)>> {
        let s = self.sweep(id)?;
        let Some(margin) = s.spec.stop_worse.filter(|_| !s.status.is_terminal()) else {
            return Ok(Vec::new());
        };
        let mut curves = Vec::new();
        for job in s.job_ids() {
            let Some(j) = self.inner.store.job(job)? else {
                continue;
            };
            let points = self.inner.store.metrics(job, 0, usize::MAX)?;
            curves.push(stop::Curve::new(&j, &points));
        }
        Ok(stop::laggards(&curves, margin))
    }
}

/// The base job of a sweep: its spec with the full ids the API resolved.
fn base_request(spec: &SweepSpec) -> Result<JobRequest> {
    let bad = |field: &str, message: String| EngineError::InvalidField {
        field: field.into(),
        message,
    };
    let dataset_id = spec.job.dataset.parse::<DatasetId>().map_err(|_| {
        bad(
            "dataset",
            format!("`{}` is not a dataset id", spec.job.dataset),
        )
    })?;
    let from_model = spec
        .job
        .from_model
        .as_deref()
        .map(|m| {
            m.parse::<ArtifactId>()
                .map_err(|_| bad("from_model", format!("`{m}` is not a model id")))
        })
        .transpose()?;
    Ok(JobRequest {
        dataset_id,
        preset: spec.job.preset.clone(),
        sets: spec.job.sets.clone(),
        gpu_type: spec.job.gpu_type.clone(),
        gpu_count: spec.job.gpu_count,
        backend: spec.job.backend.clone(),
        from_model,
    })
}

/// The base request with a combination's values set after its own (so they win).
fn with_sets(base: &JobRequest, sets: &[(String, String)]) -> JobRequest {
    let mut r = base.clone();
    r.sets.extend(sets.iter().cloned());
    r
}

/// Refuses a sweep its budget cannot start, or one over the monthly budget unconfirmed.
fn check_plan(plan: &SweepPlan, confirm_over_budget: bool) -> Result<()> {
    if let Some(b) = plan.budget
        && plan.over_sweep_budget as usize == plan.runs.len()
    {
        return Err(EngineError::conflict(
            Reason::OverBudget,
            format!(
                "the sweep's budget of ${b:.2} does not cover even its first run (about ${:.2})",
                plan.runs.first().map_or(0.0, |r| r.estimate.estimated_cost)
            ),
        ));
    }
    if plan.exceeds_monthly_budget && !confirm_over_budget {
        return Err(EngineError::conflict(
            Reason::OverBudget,
            format!(
                "this sweep (about ${:.2} for {} runs) would take the month to ${:.2} of its ${:.2} budget; confirm to go over it (each run still stops at the budget)",
                plan.total_cost,
                plan.runs.len(),
                plan.spent_this_month + plan.total_cost,
                plan.monthly_budget.unwrap_or_default()
            ),
        ));
    }
    Ok(())
}

fn new_sweep(user: crate::ids::UserId, spec: SweepSpec, plan: &SweepPlan) -> Sweep {
    let t = now();
    Sweep {
        id: SweepId::new(),
        user_id: user,
        name: plan.name.clone(),
        runs: plan
            .runs
            .iter()
            .map(|r| SweepRun {
                sets: r.sets.clone(),
                job_id: None,
                skipped: None,
                estimated_cost: r.estimate.estimated_cost,
            })
            .collect(),
        spec,
        status: SweepStatus::Running,
        best_job_id: None,
        best_by: None,
        spent: 0.0,
        created_at: t,
        updated_at: t,
        completed_at: None,
    }
}
