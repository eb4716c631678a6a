//! Sweeps in the shared records: which sweep each job runs for, the Jobs list's header rows
//! that group a sweep's jobs, and the selection of such a row. A sweep's jobs gather under
//! its header where its first job would be in the list's order, so sorting and filtering
//! work as they do for lone jobs, and the header moves with them.

use super::{Cursor, Overlay, Shared};
use crate::action::Tab;
use crate::effect::{Effect, Level};
use crate::format;
use crate::state::{Collection, GROUP_ROW, Upsert};
use crate::tabs::jobs_compare::MAX_RUNS;
use brightrun_api::domain::*;
use brightrun_api::ids::*;
use std::collections::HashMap;
use std::sync::Arc;

/// The Jobs list's rows with each sweep's jobs gathered under a header row
/// ([`GROUP_ROW`] with the sweep's position), at the place of its first job; jobs of no
/// sweep stay where they are. Returns the rows and how many headers they hold.
pub(crate) fn grouped(
    rows: &[u32],
    jobs: &Collection<TrainingJob>,
    sweep_of: &HashMap<JobId, SweepId>,
    sweeps: &Collection<Sweep>,
) -> (Vec<u32>, usize) {
    let rows: Vec<u32> = rows
        .iter()
        .copied()
        .filter(|r| r & GROUP_ROW == 0)
        .collect();
    let of = |r: u32| {
        sweep_of
            .get(&jobs.at(r as usize).id)
            .and_then(|s| sweeps.position(*s))
    };
    let mut members: HashMap<usize, Vec<u32>> = HashMap::new();
    for &r in &rows {
        if let Some(p) = of(r) {
            members.entry(p).or_default().push(r);
        }
    }
    let groups = members.len();
    let mut out = Vec::with_capacity(rows.len() + groups);
    for r in rows {
        match of(r) {
            None => out.push(r),
            Some(p) => {
                if let Some(m) = members.remove(&p) {
                    out.push(GROUP_ROW | p as u32);
                    out.extend(m);
                }
            }
        }
    }
    (out, groups)
}

/// Runs of `sweep` that are over: their job finished, or they were skipped (the header's
/// "k of n runs").
pub fn runs_done(sweep: &Sweep, jobs: &Collection<TrainingJob>) -> usize {
    sweep
        .runs
        .iter()
        .filter(|r| match r.job_id {
            Some(id) => jobs.get(id).is_some_and(|j| j.status.is_terminal()),
            None => r.skipped.is_some(),
        })
        .count()
}

/// What a sweep's jobs have cost by now (a running job's cost grows by the second, the
/// sweep's own figure only when the engine looks at it); the sweep's figure when none of its
/// jobs is in the records.
pub fn spent(sweep: &Sweep, s: &Shared) -> f64 {
    let mut known = false;
    let total = sweep
        .job_ids()
        .filter_map(|id| s.jobs.get(id))
        .inspect(|_| known = true)
        .map(|j| super::lists::job_cost_at(j, s.now))
        .sum();
    if known { total } else { sweep.spent }
}

/// A job's best validation loss as far as the dashboard knows: the lowest of its loaded
/// history, else the latest its record carries (the record keeps only the latest).
pub fn best_validation_loss(job: &TrainingJob, s: &Shared) -> Option<f64> {
    use crate::series::Metric;
    let loaded = s.details.get(&job.id).and_then(|d| {
        d.series
            .column(Metric::ValidationLoss)
            .iter()
            .filter(|v| v.is_finite())
            .map(|v| *v as f64)
            .min_by(f64::total_cmp)
    });
    let latest = job
        .current_metrics
        .validation_loss
        .filter(|v| v.is_finite());
    match (loaded, latest) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The run a header stars: the engine's best once the sweep has named it (`★`), else the
/// finished run with the lowest validation loss so far (`☆`, it may still change).
pub fn leader(sweep: &Sweep, s: &Shared) -> Option<(JobId, bool)> {
    if let Some(best) = sweep.best_job_id {
        return Some((best, true));
    }
    sweep
        .job_ids()
        .filter_map(|id| s.jobs.get(id))
        .filter(|j| j.status == JobStatus::Completed)
        .filter_map(|j| best_validation_loss(j, s).map(|l| (j.id, l)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(id, _)| (id, false))
}

/// The sweep's jobs the Compare view shows, in run order: every training run when they fit
/// in one view, else the [`MAX_RUNS`] with the lowest best validation loss (runs with none
/// come last, so with no losses yet these are the first runs).
pub fn compare_ids(sweep: &Sweep, s: &Shared) -> Vec<JobId> {
    let runs: Vec<&Arc<TrainingJob>> = sweep
        .job_ids()
        .filter_map(|id| s.jobs.get(id))
        .filter(|j| j.task.is_training())
        .collect();
    if runs.len() <= MAX_RUNS {
        return runs.iter().map(|j| j.id).collect();
    }
    let mut ranked: Vec<(usize, Option<f64>)> = runs
        .iter()
        .enumerate()
        .map(|(i, j)| (i, best_validation_loss(j, s)))
        .collect();
    ranked.sort_by(|a, b| match (a.1, b.1) {
        (Some(x), Some(y)) => x.total_cmp(&y).then(a.0.cmp(&b.0)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.0.cmp(&b.0),
    });
    let mut chosen: Vec<usize> = ranked.into_iter().take(MAX_RUNS).map(|r| r.0).collect();
    chosen.sort_unstable();
    chosen.into_iter().map(|i| runs[i].id).collect()
}

/// What cancelling a sweep stops: its `active` jobs, and its `pending` runs never start.
fn stops_wording(active: usize, pending: usize) -> String {
    let jobs = format::plural(active as u64, "queued or running job");
    let runs = format::plural(pending as u64, "remaining run");
    match (active, pending) {
        (0, 0) => "No job of it is queued or running, and every run has started.".into(),
        (_, 0) => format!("It stops its {jobs}."),
        (0, _) => format!("None of its {runs} starts."),
        _ => format!("It stops its {jobs}, and none of its {runs} starts."),
    }
}

impl Shared {
    /// Takes in a sweep (from an event or an answer) unless an older copy of it; when it is
    /// new or has started runs, the Jobs list regroups.
    pub(crate) fn upsert_sweep(&mut self, sweep: Arc<Sweep>) {
        if self
            .sweeps
            .get(sweep.id)
            .is_some_and(|old| old.updated_at > sweep.updated_at)
        {
            return;
        }
        let regroup = match self.sweeps.upsert(sweep.clone()) {
            Upsert::Inserted => true,
            Upsert::Updated(old) => old.job_ids().count() != sweep.job_ids().count(),
        };
        for job in sweep.job_ids() {
            self.sweep_of.insert(job, sweep.id);
        }
        if regroup {
            self.job_list.refilter = true;
        }
    }

    /// Which sweep each job runs for, from every sweep (a new snapshot).
    pub(crate) fn index_sweeps(&mut self) {
        self.sweep_of = self
            .sweeps
            .items()
            .iter()
            .flat_map(|s| s.job_ids().map(|j| (j, s.id)))
            .collect();
    }

    /// Gathers the sweeps' jobs under their headers once the Jobs list's rows were rebuilt,
    /// and puts the selection back on the header or job it was on (`placed`; else it stays
    /// at its row).
    pub(crate) fn group_sweep_rows(&mut self, placed: bool) {
        if self.sweep_of.is_empty() {
            self.job_groups = 0;
            self.selected_sweep_key = None;
            return;
        }
        let (rows, groups) = grouped(
            &self.job_list.rows,
            &self.jobs,
            &self.sweep_of,
            &self.sweeps,
        );
        let header = self
            .selected_sweep_key
            .and_then(|id| self.sweeps.position(id))
            .and_then(|p| rows.iter().position(|&r| r == GROUP_ROW | p as u32));
        let job = || {
            let p = self
                .job_list
                .selected_key
                .and_then(|k| self.jobs.position(k))?;
            rows.iter().position(|&r| r as usize == p)
        };
        let at = if placed { header.or_else(job) } else { None };
        let list = &mut self.job_list;
        list.selected = at
            .unwrap_or(list.selected)
            .min(rows.len().saturating_sub(1));
        list.rows = rows;
        self.job_groups = groups;
        self.sync_job_cursor();
    }

    /// Records what the Jobs list's selection is on (a job, or a sweep's header), so it
    /// follows it when the list regroups or re-sorts.
    pub(crate) fn sync_job_cursor(&mut self) {
        self.job_list.sync_key(&self.jobs);
        self.selected_sweep_key = self.job_list.selected_group().map(|p| self.sweeps.at(p).id);
    }

    /// Selects a sweep's header in the Jobs list, clearing a filter that hides it. A sweep
    /// with none of its jobs in the records yet has no row: its header is selected when its
    /// first job arrives (the next regroup looks for it), unless the selection moves first.
    pub(crate) fn select_sweep(&mut self, id: SweepId) {
        let Some(p) = self.sweeps.position(id) else {
            return;
        };
        let row = GROUP_ROW | p as u32;
        let find = |rows: &[u32]| rows.iter().position(|&r| r == row);
        let mut at = find(&self.job_list.rows);
        if at.is_none() && !self.job_list.filter.is_empty() {
            self.set_filter(Tab::Jobs, String::new());
            at = find(&self.job_list.rows);
        }
        match at {
            Some(i) => {
                self.set_cursor(Tab::Jobs, Cursor::To(i));
            }
            None => self.selected_sweep_key = Some(id),
        }
    }

    /// The sweep whose header row is selected in the Jobs list.
    pub fn selected_sweep(&self) -> Option<&Arc<Sweep>> {
        self.job_list.selected_group().map(|p| self.sweeps.at(p))
    }

    /// The sweep the selection is about: its header, or one of its jobs.
    pub fn sweep_in_context(&self) -> Option<&Arc<Sweep>> {
        self.selected_sweep().or_else(|| {
            let job = self.selected_job()?;
            self.sweep_of
                .get(&job.id)
                .and_then(|id| self.sweeps.get(*id))
        })
    }

    /// The sweep a job runs for, if any.
    pub fn sweep_of_job(&self, id: JobId) -> Option<&Arc<Sweep>> {
        self.sweep_of.get(&id).and_then(|s| self.sweeps.get(*s))
    }

    pub fn sweep_name(&self, id: SweepId) -> String {
        self.sweeps
            .get(id)
            .map(|s| s.name.clone())
            .unwrap_or_else(|| id.short())
    }

    /// Asks before cancelling a sweep, saying what stops and what it has cost.
    pub(crate) fn confirm_cancel_sweep(&mut self, sweep: &Sweep) -> Vec<Effect> {
        if sweep.status.is_terminal() {
            self.notify_user(
                format!("sweep {} is already {}", sweep.name, sweep.status.as_str()),
                Level::Info,
            );
            return Vec::new();
        }
        let active = sweep
            .job_ids()
            .filter_map(|id| self.jobs.get(id))
            .filter(|j| j.status.is_active())
            .count();
        self.overlay = Some(Overlay::Confirm {
            title: "Cancel sweep?".into(),
            lines: vec![
                format!(
                    "Sweep {} ({} of {} runs done).",
                    sweep.name,
                    runs_done(sweep, &self.jobs),
                    sweep.runs.len()
                ),
                stops_wording(active, sweep.pending()),
                format!(
                    "It has cost {} so far; a cancelled job costs what it ran.",
                    format::money(spent(sweep, self))
                ),
            ],
            on_yes: super::Confirmed::CancelSweep(sweep.id),
        });
        Vec::new()
    }
}
