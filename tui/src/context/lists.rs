//! Filtering and sorting of the four lists. Rows are recomputed only when something that
//! decides membership or order changed, so a live job's progress updates cost nothing here
//! even with 100,000 jobs.

use super::Shared;
use crate::action::Tab;
use crate::state::Collection;
use crate::state::ListView;
use brightrun_api::domain::*;
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

pub const DATASET_COLUMNS: [&str; 7] = [
    "Name", "Format", "Status", "Examples", "Tokens", "Size", "Created",
];
pub const DATASET_CREATED: usize = 6;
pub const JOB_COLUMNS: [&str; 7] = [
    "ID", "Dataset", "Status", "Stage", "Progress", "Cost", "Age",
];
pub const JOB_CREATED: usize = 6;
pub const MODEL_COLUMNS: [&str; 7] = [
    "Name",
    "Ver",
    "Base model",
    "Score",
    "Fit",
    "Size",
    "Created",
];
pub const MODEL_CREATED: usize = 6;

fn cmp_f64(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b).unwrap_or(Ordering::Equal)
}

/// Case-insensitive substring test against an already lower-cased needle, without
/// allocating for ASCII text (the common case; 100,000 rows are filtered per keystroke).
fn contains_ci(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    if hay.is_ascii() && needle.is_ascii() {
        let (h, n) = (hay.as_bytes(), needle.as_bytes());
        return h.len() >= n.len() && h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n));
    }
    hay.to_lowercase().contains(needle)
}

/// Whether an id's hex form starts with `prefix` (lower case), without allocating.
fn id_starts_with(id: &uuid::Uuid, prefix: &str) -> bool {
    if prefix.len() > 32 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let mut buf = [0u8; 32];
    let hex = id.simple().encode_lower(&mut buf);
    hex.starts_with(prefix)
}

pub fn dataset_matches(d: &Dataset, f: &str) -> bool {
    f.is_empty()
        || contains_ci(&d.name, f)
        || contains_ci(&d.file_name, f)
        || d.status.as_str().contains(f)
        || d.format.is_some_and(|x| x.as_str().contains(f))
        || id_starts_with(&d.id.0, f)
        || d.description.as_deref().is_some_and(|x| contains_ci(x, f))
}

pub fn dataset_cmp(col: usize, a: &Dataset, b: &Dataset) -> Ordering {
    let o = match col {
        0 => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
        1 => a
            .format
            .map(|f| f.as_str())
            .cmp(&b.format.map(|f| f.as_str())),
        2 => a.status.as_str().cmp(b.status.as_str()),
        3 => a
            .statistics
            .as_ref()
            .map(|s| s.total_examples)
            .cmp(&b.statistics.as_ref().map(|s| s.total_examples)),
        4 => a.total_tokens.cmp(&b.total_tokens),
        5 => a.file_size.cmp(&b.file_size),
        _ => Ordering::Equal,
    };
    o.then(a.created_at.cmp(&b.created_at))
        .then(a.id.cmp(&b.id))
}

pub fn job_status_rank(s: JobStatus) -> u8 {
    match s {
        JobStatus::Running => 0,
        JobStatus::Initializing => 1,
        JobStatus::Queued => 2,
        JobStatus::Failed => 3,
        JobStatus::Cancelled => 4,
        JobStatus::Completed => 5,
    }
}

pub fn job_cmp<'n>(
    col: usize,
    a: &TrainingJob,
    b: &TrainingJob,
    names: &impl Fn(&TrainingJob) -> &'n str,
) -> Ordering {
    let o = match col {
        0 => a.id.cmp(&b.id),
        1 => names(a).cmp(names(b)),
        2 => job_status_rank(a.status).cmp(&job_status_rank(b.status)),
        3 => a.current_stage.as_str().cmp(b.current_stage.as_str()),
        4 => cmp_f64(a.progress, b.progress),
        5 => cmp_f64(job_cost(a), job_cost(b)),
        _ => Ordering::Equal,
    };
    o.then(a.created_at.cmp(&b.created_at))
        .then(a.id.cmp(&b.id))
}

/// What a job has cost: final when done, running otherwise (as last stored).
pub fn job_cost(j: &TrainingJob) -> f64 {
    j.final_cost.unwrap_or(j.current_cost)
}

/// What a job has cost by `now`: a running job's cost grows by the second (the engine stores
/// it only every few seconds), computed as the engine does (price × GPUs × hours running).
pub fn job_cost_at(j: &TrainingJob, now: Timestamp) -> f64 {
    if let Some(f) = j.final_cost {
        return f;
    }
    match (j.status, j.started_at) {
        (JobStatus::Running | JobStatus::Initializing, Some(started)) => {
            j.current_cost.max(brightrun_api::training::running_cost(
                j.gpu_config.price_per_gpu_hour,
                j.gpu_config.gpu_count,
                started,
                now,
            ))
        }
        _ => j.current_cost,
    }
}

pub fn job_matches(j: &TrainingJob, dataset_name: &str, f: &str) -> bool {
    f.is_empty()
        || j.status.as_str().contains(f)
        || j.current_stage.as_str().contains(f)
        || id_starts_with(&j.id.0, f)
        || contains_ci(dataset_name, f)
        || j.preset_id.as_str().contains(f)
        || contains_ci(&j.gpu_config.gpu_type, f)
        || contains_ci(&j.gpu_config.backend, f)
        || contains_ci(&j.hyperparameters.base_model, f)
        || j.task
            .export()
            .is_some_and(|e| format!("export {}", e.format.as_str()).contains(f))
}

pub fn artifact_matches(a: &ModelArtifact, f: &str) -> bool {
    f.is_empty()
        || contains_ci(&a.name, f)
        || (a.kind != ModelKind::Adapter && a.kind.as_str().contains(f))
        || contains_ci(&a.base_model, f)
        || id_starts_with(&a.id.0, f)
        || id_starts_with(&a.job_id.0, f)
}

pub fn artifact_cmp(col: usize, a: &ModelArtifact, b: &ModelArtifact) -> Ordering {
    let o = match col {
        0 => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
        1 => a.version.cmp(&b.version),
        2 => a.base_model.cmp(&b.base_model),
        3 => a
            .quality_metrics
            .quality_score
            .cmp(&b.quality_metrics.quality_score),
        4 => format!("{:?}", a.quality_metrics.convergence)
            .cmp(&format!("{:?}", b.quality_metrics.convergence)),
        5 => artifact_size(a).cmp(&artifact_size(b)),
        _ => Ordering::Equal,
    };
    o.then(a.created_at.cmp(&b.created_at))
        .then(a.id.cmp(&b.id))
}

/// The Models list's rows with each adapter's exports right under it, in the list's order
/// among themselves; an export whose adapter is not in the rows (filtered out, deleted) stays
/// where it is. Returns the rows and, for each export placed under its adapter, whether it
/// is the adapter's last (`└`, else `├`); none when no export is placed (the rows stand).
pub(crate) fn exports_under_adapters(
    rows: &[u32],
    artifacts: &Collection<ModelArtifact>,
) -> Option<(Vec<u32>, HashMap<u32, bool>)> {
    let parent_row = |r: u32| -> Option<u32> {
        let a = artifacts.at(r as usize);
        if a.kind == ModelKind::Adapter {
            return None;
        }
        let p = artifacts.position(a.parent_model_id?)?;
        // Only an adapter exports (the engine refuses an export of an export).
        (artifacts.at(p).kind == ModelKind::Adapter).then_some(p as u32)
    };
    if !rows
        .iter()
        .any(|&r| artifacts.at(r as usize).kind != ModelKind::Adapter)
    {
        return None;
    }
    let shown: HashSet<u32> = rows.iter().copied().collect();
    let mut under: HashMap<u32, Vec<u32>> = HashMap::new();
    for &r in rows {
        if let Some(p) = parent_row(r).filter(|p| shown.contains(p)) {
            under.entry(p).or_default().push(r);
        }
    }
    if under.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(rows.len());
    let mut tree = HashMap::new();
    for &r in rows {
        if parent_row(r).is_some_and(|p| shown.contains(&p)) {
            continue;
        }
        out.push(r);
        if let Some(children) = under.remove(&r) {
            let n = children.len();
            for (k, c) in children.into_iter().enumerate() {
                tree.insert(c, k + 1 == n);
                out.push(c);
            }
        }
    }
    Some((out, tree))
}

pub fn artifact_size(a: &ModelArtifact) -> u64 {
    a.files.iter().map(|f| f.size).sum()
}

pub fn notification_matches(n: &Notification, f: &str) -> bool {
    f.is_empty()
        || contains_ci(&n.title, f)
        || contains_ci(&n.message, f)
        || format!("{:?}", n.priority).to_lowercase().contains(f)
        || (f == "unread" && !n.read)
}

/// Whether an update to a dataset may change its place or membership in the list.
pub fn dataset_view_changed(
    old: &Dataset,
    new: &Dataset,
    v: &ListView<brightrun_api::ids::DatasetId>,
) -> bool {
    (!v.filter.is_empty()
        && (old.status != new.status
            || old.name != new.name
            || old.format != new.format
            || old.description != new.description))
        || dataset_cmp(v.sort_col, old, new) != Ordering::Equal
}

/// Whether an update to a job may change its place or membership in the list.
pub fn job_view_changed(
    old: &TrainingJob,
    new: &TrainingJob,
    v: &ListView<brightrun_api::ids::JobId>,
) -> bool {
    let filter_fields = old.status != new.status || old.current_stage != new.current_stage;
    let sort_fields = match v.sort_col {
        2 => old.status != new.status,
        3 => old.current_stage != new.current_stage,
        4 => old.progress != new.progress,
        5 => job_cost(old) != job_cost(new),
        _ => false,
    };
    (!v.filter.is_empty() && filter_fields) || sort_fields
}

impl Shared {
    /// Puts each adapter's exports under it in the Models list once its rows were rebuilt,
    /// and the selection back on the model it was on (`placed`; else it stays at its row).
    fn group_export_rows(&mut self, placed: bool) {
        let Some((rows, tree)) = exports_under_adapters(&self.model_list.rows, &self.artifacts)
        else {
            self.model_tree.clear();
            return;
        };
        let list = &mut self.model_list;
        let at = list
            .selected_key
            .filter(|_| placed)
            .and_then(|k| self.artifacts.position(k))
            .and_then(|p| rows.iter().position(|&r| r as usize == p));
        list.selected = at
            .unwrap_or(list.selected)
            .min(rows.len().saturating_sub(1));
        list.rows = rows;
        list.sync_key(&self.artifacts);
        self.model_tree = tree;
    }

    /// Recomputes the rows of any list whose data, filter or order changed.
    pub fn refresh_views(&mut self) {
        if self.dataset_list.needs_rebuild() {
            let f = self.dataset_list.filter.to_lowercase();
            let col = self.dataset_list.sort_col;
            self.dataset_list.rebuild(
                &self.datasets,
                |d| dataset_matches(d, &f),
                |a, b| dataset_cmp(col, a, b),
            );
        }
        if self.job_list.needs_rebuild() {
            // Whether the selection is on a record or header to follow (else it keeps its
            // place: the first row at start, a sweep's header when it is first).
            let placed = self.job_list.selected_key.is_some() || self.selected_sweep_key.is_some();
            let f = self.job_list.filter.to_lowercase();
            let col = self.job_list.sort_col;
            // Dataset names, only to sort by them, and only when something is sorted.
            let sorting = self.job_list.dirty || !self.job_list.moved.is_empty();
            let names: std::collections::HashMap<brightrun_api::ids::DatasetId, String> =
                if col == 1 && sorting {
                    self.datasets
                        .items()
                        .iter()
                        .map(|d| (d.id, d.name.to_lowercase()))
                        .collect()
                } else {
                    Default::default()
                };
            fn lookup<'n>(
                names: &'n std::collections::HashMap<brightrun_api::ids::DatasetId, String>,
                j: &TrainingJob,
            ) -> &'n str {
                names.get(&j.dataset_id).map(String::as_str).unwrap_or("")
            }
            let name = |j: &TrainingJob| lookup(&names, j);
            if f.is_empty() {
                self.job_list
                    .rebuild(&self.jobs, |_| true, |a, b| job_cmp(col, a, b, &name));
            } else {
                // One search over every job's text, kept lower-cased (see `search`).
                self.job_search.sync(&self.jobs, &self.datasets);
                let matched = self.job_search.matches(&f);
                // A sweep's name finds its jobs too.
                let named: std::collections::HashSet<brightrun_api::ids::SweepId> = self
                    .sweeps
                    .items()
                    .iter()
                    .filter(|s| contains_ci(&s.name, &f))
                    .map(|s| s.id)
                    .collect();
                let sweep_of = &self.sweep_of;
                let in_named = |j: &TrainingJob| {
                    !named.is_empty() && sweep_of.get(&j.id).is_some_and(|s| named.contains(s))
                };
                self.job_list.rebuild_by(
                    &self.jobs,
                    |pos, j| matched[pos] || in_named(j),
                    |a, b| job_cmp(col, a, b, &name),
                );
            }
            self.group_sweep_rows(placed);
        }
        if self.model_list.needs_rebuild() {
            // Whether the selection is on a record to follow (else it keeps its place: the
            // first row at start).
            let placed = self.model_list.selected_key.is_some();
            let f = self.model_list.filter.to_lowercase();
            let col = self.model_list.sort_col;
            self.model_list.rebuild(
                &self.artifacts,
                |a| artifact_matches(a, &f),
                |a, b| artifact_cmp(col, a, b),
            );
            self.group_export_rows(placed);
        }
        if self.notification_list.needs_rebuild() {
            let f = self.notification_list.filter.to_lowercase();
            // Newest first, always.
            self.notification_list.sort_desc = true;
            self.notification_list.rebuild(
                &self.notifications,
                |n| notification_matches(n, &f),
                |a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)),
            );
        }
    }

    /// Sets a list's filter text and recomputes it.
    pub fn set_filter(&mut self, tab: Tab, filter: String) {
        match tab {
            Tab::Datasets => {
                self.dataset_list.filter = filter;
                self.dataset_list.refilter = true;
            }
            Tab::Jobs => {
                self.job_list.filter = filter;
                self.job_list.refilter = true;
            }
            Tab::Models => {
                self.model_list.filter = filter;
                self.model_list.refilter = true;
            }
            Tab::Notifications => {
                self.notification_list.filter = filter;
                self.notification_list.refilter = true;
            }
            _ => {}
        }
        self.refresh_views();
    }

    /// `s`: the next column (ascending for names, descending for numbers and dates);
    /// `S`: reverse the order.
    pub fn sort(&mut self, tab: Tab, reverse: bool) {
        fn next(
            v: &mut ListView<impl Copy + PartialEq>,
            sortable: &[usize],
            numeric: &[usize],
            reverse: bool,
        ) {
            if reverse {
                v.sort_desc = !v.sort_desc;
            } else {
                let i = sortable.iter().position(|c| *c == v.sort_col).unwrap_or(0);
                v.sort_col = sortable[(i + 1) % sortable.len()];
                v.sort_desc = numeric.contains(&v.sort_col);
            }
            v.dirty = true;
        }
        match tab {
            Tab::Datasets => next(
                &mut self.dataset_list,
                &[0, 1, 2, 3, 4, 5, 6],
                &[3, 4, 5, 6],
                reverse,
            ),
            Tab::Jobs => next(&mut self.job_list, &[6, 1, 2, 3, 4, 5], &[4, 5, 6], reverse),
            // Models sort by date and by quality score (and name).
            Tab::Models => next(&mut self.model_list, &[6, 3, 0], &[3, 6], reverse),
            _ => {}
        }
        self.refresh_views();
        let (cols, col, desc): (&[&str], usize, bool) = match tab {
            Tab::Datasets => (
                &DATASET_COLUMNS,
                self.dataset_list.sort_col,
                self.dataset_list.sort_desc,
            ),
            Tab::Jobs => (
                &JOB_COLUMNS,
                self.job_list.sort_col,
                self.job_list.sort_desc,
            ),
            Tab::Models => (
                &MODEL_COLUMNS,
                self.model_list.sort_col,
                self.model_list.sort_desc,
            ),
            _ => return,
        };
        self.notify_user(
            format!(
                "sorted by {} {}",
                cols[col].to_lowercase(),
                if desc { "↓" } else { "↑" }
            ),
            crate::effect::Level::Info,
        );
    }
}
