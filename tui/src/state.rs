//! The app's copy of the engine's data: built from a [`Snapshot`] at start, kept current by
//! engine events. Every record is cleaned of control sequences on its way in.

use crate::effect::CostsView;
use crate::sanitize::{clean_in_place, clean_opt};
use crate::series::Series;
use brightrun_api::domain::*;
use brightrun_api::ids::*;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Arc;

/// Everything the app starts from. Built by the runtime from engine queries, or by tests from
/// fixtures.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub datasets: Vec<Dataset>,
    pub jobs: Vec<TrainingJob>,
    /// Hyperparameter sweeps: the Jobs list groups their jobs under them.
    pub sweeps: Vec<Sweep>,
    pub artifacts: Vec<ModelArtifact>,
    pub notifications: Vec<Notification>,
    pub costs: Option<CostsView>,
    /// The active profile's name.
    pub profile: String,
    /// Cluster backends this build offers; the first is the default.
    pub backends: Vec<String>,
    /// `local` or `s3`.
    pub storage: String,
    /// Theme names offered by `:theme` completion.
    pub themes: Vec<String>,
    /// What the engine will do with a job (presets, GPUs, defaults). Tests may leave it out;
    /// the app then reads the config it is given.
    pub catalog: Option<brightrun_api::Catalog>,
    /// Where the engine is: empty when embedded, else its address.
    pub connection: String,
    /// The change log's seq the snapshot was read at.
    pub seq: u64,
}

/// A record with an id.
pub trait Keyed {
    type Id: Copy + Eq + Hash;
    fn key(&self) -> Self::Id;
}

impl Keyed for Dataset {
    type Id = DatasetId;
    fn key(&self) -> DatasetId {
        self.id
    }
}
impl Keyed for TrainingJob {
    type Id = JobId;
    fn key(&self) -> JobId {
        self.id
    }
}
impl Keyed for Sweep {
    type Id = SweepId;
    fn key(&self) -> SweepId {
        self.id
    }
}
impl Keyed for ModelArtifact {
    type Id = ArtifactId;
    fn key(&self) -> ArtifactId {
        self.id
    }
}
impl Keyed for Notification {
    type Id = NotificationId;
    fn key(&self) -> NotificationId {
        self.id
    }
}

/// Records by id, in arrival order, with O(1) lookup.
#[derive(Clone, Debug)]
pub struct Collection<T: Keyed> {
    items: Vec<Arc<T>>,
    index: HashMap<T::Id, usize>,
}

impl<T: Keyed> Default for Collection<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            index: HashMap::new(),
        }
    }
}

/// What an upsert did.
pub enum Upsert<T> {
    Inserted,
    Updated(Arc<T>),
}

impl<T: Keyed> Collection<T> {
    pub fn from_vec(items: Vec<T>) -> Self {
        let mut c = Self::default();
        c.items.reserve(items.len());
        for item in items {
            c.upsert(Arc::new(item));
        }
        c
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn items(&self) -> &[Arc<T>] {
        &self.items
    }

    pub fn at(&self, i: usize) -> &Arc<T> {
        &self.items[i]
    }

    pub fn get(&self, id: T::Id) -> Option<&Arc<T>> {
        self.index.get(&id).map(|&i| &self.items[i])
    }

    pub fn position(&self, id: T::Id) -> Option<usize> {
        self.index.get(&id).copied()
    }

    pub fn upsert(&mut self, item: Arc<T>) -> Upsert<T> {
        let id = item.key();
        match self.index.get(&id) {
            Some(&i) => Upsert::Updated(std::mem::replace(&mut self.items[i], item)),
            None => {
                self.index.insert(id, self.items.len());
                self.items.push(item);
                Upsert::Inserted
            }
        }
    }

    /// Removes a record; positions of others may change (views must be recomputed).
    pub fn remove(&mut self, id: T::Id) -> Option<Arc<T>> {
        let i = self.index.remove(&id)?;
        let removed = self.items.swap_remove(i);
        if i < self.items.len() {
            let moved = self.items[i].key();
            self.index.insert(moved, i);
        }
        Some(removed)
    }
}

/// Marks a row of a [`ListView`] that heads a group rather than showing a record (the Jobs
/// list's sweeps): the other bits are the group's position in its own collection. Rows are
/// positions of at most a few million records, so the bit is never a record's.
pub const GROUP_ROW: u32 = 1 << 31;

/// A filtered, sorted window onto a collection: row positions into its items, the selection
/// (kept by id across re-sorts), the scroll offset and the filter text.
#[derive(Clone, Debug)]
pub struct ListView<K> {
    pub rows: Vec<u32>,
    pub selected: usize,
    pub offset: usize,
    pub selected_key: Option<K>,
    pub filter: String,
    pub sort_col: usize,
    pub sort_desc: bool,
    /// Everything must be re-sorted (new order, removals, a new snapshot).
    pub dirty: bool,
    /// The filter changed: the sorted order stands, membership is re-checked.
    pub refilter: bool,
    /// Records added or whose sort key changed: moved into place by binary search.
    pub moved: Vec<u32>,
    /// Every record in sorted order (the filter applies on top).
    pub order: Vec<u32>,
    /// Rows visible at the last draw (for page up/down).
    pub page: usize,
}

impl<K: Copy + PartialEq> ListView<K> {
    pub fn new(sort_col: usize, sort_desc: bool) -> Self {
        Self {
            rows: Vec::new(),
            selected: 0,
            offset: 0,
            selected_key: None,
            filter: String::new(),
            sort_col,
            sort_desc,
            dirty: true,
            refilter: false,
            moved: Vec::new(),
            order: Vec::new(),
            page: 10,
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Moves the selection by `delta` rows (clamped).
    pub fn move_by(&mut self, delta: isize) {
        if self.rows.is_empty() {
            return;
        }
        let max = self.rows.len() as isize - 1;
        self.selected = (self.selected as isize + delta).clamp(0, max) as usize;
    }

    pub fn select(&mut self, i: usize) {
        if !self.rows.is_empty() {
            self.selected = i.min(self.rows.len() - 1);
        }
    }

    /// The selected row's position in the collection (none on a group's header row).
    pub fn selected_item(&self) -> Option<usize> {
        self.rows
            .get(self.selected)
            .filter(|&&r| r & GROUP_ROW == 0)
            .map(|&r| r as usize)
    }

    /// The position of the group whose header row is selected, if one is.
    pub fn selected_group(&self) -> Option<usize> {
        self.rows
            .get(self.selected)
            .filter(|&&r| r & GROUP_ROW != 0)
            .map(|&r| (r & !GROUP_ROW) as usize)
    }

    /// Keeps the selection visible in a window of `height` rows; returns the offset.
    pub fn scroll_into_view(&mut self, height: usize) -> usize {
        let height = height.max(1);
        self.page = height;
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + height {
            self.offset = self.selected + 1 - height;
        }
        let max_offset = self.rows.len().saturating_sub(height);
        self.offset = self.offset.min(max_offset);
        self.offset
    }

    /// Whether `rebuild` has anything to do.
    pub fn needs_rebuild(&self) -> bool {
        self.dirty || self.refilter || !self.moved.is_empty()
    }

    /// A record at collection position `pos` was added or its sort key changed.
    pub fn touch(&mut self, pos: usize) {
        self.moved.push(pos as u32);
    }

    /// Brings the rows up to date with `keep` as the filter and `cmp` as the order, keeping
    /// the selection on the same record when it is still there. A full sort happens only when
    /// `dirty`; added or changed records are moved into place (O(n) + O(k log n)); a filter
    /// change is one pass over the sorted order.
    pub fn rebuild<T: Keyed<Id = K>>(
        &mut self,
        coll: &Collection<T>,
        keep: impl Fn(&T) -> bool,
        cmp: impl Fn(&T, &T) -> std::cmp::Ordering,
    ) where
        K: Eq + Hash,
    {
        self.rebuild_by(coll, |_, t| keep(t), cmp)
    }

    /// [`ListView::rebuild`] with membership decided by collection position (and record),
    /// for filters answered ahead for every record at once.
    pub fn rebuild_by<T: Keyed<Id = K>>(
        &mut self,
        coll: &Collection<T>,
        keep: impl Fn(usize, &T) -> bool,
        cmp: impl Fn(&T, &T) -> std::cmp::Ordering,
    ) where
        K: Eq + Hash,
    {
        let items = coll.items();
        let desc = self.sort_desc;
        let ord = |a: u32, b: u32| {
            let o = cmp(&items[a as usize], &items[b as usize]);
            if desc { o.reverse() } else { o }
        };
        if !self.dirty && !self.moved.is_empty() {
            let mut moved = std::mem::take(&mut self.moved);
            moved.sort_unstable();
            moved.dedup();
            self.order.retain(|i| moved.binary_search(i).is_err());
            for p in moved {
                if (p as usize) < items.len() {
                    let at = self
                        .order
                        .partition_point(|&x| ord(x, p) == std::cmp::Ordering::Less);
                    self.order.insert(at, p);
                }
            }
        }
        if self.dirty || self.order.len() != items.len() {
            let mut order: Vec<u32> = (0..items.len() as u32).collect();
            order.sort_by(|&a, &b| ord(a, b));
            self.order = order;
        }
        self.moved.clear();
        self.rows = self
            .order
            .iter()
            .copied()
            .filter(|&i| keep(i as usize, &items[i as usize]))
            .collect();
        self.dirty = false;
        self.refilter = false;
        match self.selected_key.and_then(|k| coll.position(k)) {
            Some(pos) => {
                if let Some(i) = self.rows.iter().position(|&r| r as usize == pos) {
                    self.selected = i;
                } else {
                    self.selected = self.selected.min(self.rows.len().saturating_sub(1));
                }
            }
            None => self.selected = self.selected.min(self.rows.len().saturating_sub(1)),
        }
        self.sync_key(coll);
    }

    /// Records the selected record's id (call after moving the selection).
    pub fn sync_key<T: Keyed<Id = K>>(&mut self, coll: &Collection<T>) {
        self.selected_key = self.selected_item().map(|i| coll.at(i).key());
    }
}

/// Per-job detail loaded when the monitor shows a job: its metric series and log tail.
#[derive(Clone, Debug, Default)]
pub struct JobDetail {
    pub series: Series,
    pub log: VecDeque<String>,
    /// True until the stored history has arrived.
    pub loading: bool,
    /// Lines scrolled up from the tail; 0 follows the tail.
    pub log_scroll: usize,
    pub load_error: Option<String>,
    /// Downsampled chart data for the last drawn size and series version.
    pub cache: Option<ChartCache>,
    /// The checkpoints a run can continue from, oldest first (kept current by the engine's
    /// checkpoint events: a retired one leaves).
    pub checkpoints: Vec<Arc<Checkpoint>>,
    /// Why the checkpoints could not be listed.
    pub checkpoints_error: Option<String>,
    /// Checkpoint events that came while the list was loading, applied over it when it comes.
    pub(crate) pending_checkpoints: Vec<Arc<Checkpoint>>,
}

/// Downsampled series, recomputed only when new points arrive or the chart is resized.
#[derive(Clone, Debug, Default)]
pub struct ChartCache {
    pub version: u64,
    pub chart_width: usize,
    pub spark_width: usize,
    pub training: Vec<(f64, f64)>,
    pub validation: Vec<(f64, f64)>,
    /// Learning rate, gradient norm, throughput, GPU utilisation.
    pub sparks: [Vec<Option<u64>>; 4],
    /// A preference run's curves, when its points have them.
    pub preference: Option<PreferenceCurves>,
}

/// A preference run's downsampled curves: the rewards of the chosen and the rejected
/// (KTO: desirable and undesirable) replies, their margin, the reward accuracy and the KL.
#[derive(Clone, Debug, Default)]
pub struct PreferenceCurves {
    pub chosen: Vec<(f64, f64)>,
    pub rejected: Vec<(f64, f64)>,
    pub margin: Vec<(f64, f64)>,
    pub accuracy: Vec<(f64, f64)>,
    pub kl: Vec<(f64, f64)>,
}

impl PreferenceCurves {
    /// Whether a reward curve (chosen, rejected or margin) has a point.
    pub fn has_rewards(&self) -> bool {
        !(self.chosen.is_empty() && self.rejected.is_empty() && self.margin.is_empty())
    }
}

/// Log lines kept per job.
impl ChartCache {
    /// Whether this cache holds the series at `version` downsampled for these widths.
    pub fn fits(&self, version: u64, chart_width: usize, spark_width: usize) -> bool {
        self.version == version
            && self.chart_width == chart_width
            && self.spark_width == spark_width
    }
}

pub const LOG_LINES: usize = 5_000;

/// Whether a checkpoint event says it was retired (by the retention policy): nothing is left
/// to continue from, in the store or in a folder.
pub fn checkpoint_retired(c: &Checkpoint) -> bool {
    c.storage_path.is_empty() && c.sha256.is_none()
}

impl JobDetail {
    /// A checkpoint recorded, stored or retired; true when the list did not have it before
    /// (a new checkpoint, worth a log line).
    pub fn apply_checkpoint(&mut self, c: Arc<Checkpoint>) -> bool {
        if self.loading {
            let new = !self.pending_checkpoints.iter().any(|p| p.id == c.id);
            self.pending_checkpoints.retain(|p| p.id != c.id);
            let retired = checkpoint_retired(&c);
            self.pending_checkpoints.push(c);
            return new && !retired;
        }
        let at = self.checkpoints.iter().position(|p| p.id == c.id);
        if checkpoint_retired(&c) {
            if let Some(i) = at {
                self.checkpoints.remove(i);
            }
            return false;
        }
        match at {
            Some(i) => {
                self.checkpoints[i] = c;
                false
            }
            None => {
                let i = self
                    .checkpoints
                    .partition_point(|p| (p.step, p.created_at) <= (c.step, c.created_at));
                self.checkpoints.insert(i, c);
                true
            }
        }
    }

    /// The job's checkpoints as listed by the engine; the events that came while they loaded
    /// are newer, so they apply on top.
    pub fn set_checkpoints(&mut self, listed: Result<Vec<Checkpoint>, String>) {
        let was_loading = std::mem::replace(&mut self.loading, false);
        match listed {
            Ok(mut list) => {
                list.retain(|c| !checkpoint_retired(c));
                list.sort_by_key(|c| (c.step, c.created_at));
                self.checkpoints = list.into_iter().map(Arc::new).collect();
                self.checkpoints_error = None;
            }
            Err(e) => self.checkpoints_error = Some(e),
        }
        for c in std::mem::take(&mut self.pending_checkpoints) {
            self.apply_checkpoint(c);
        }
        self.loading = was_loading;
    }

    pub fn push_log(&mut self, line: String) {
        if self.log.len() >= LOG_LINES {
            self.log.pop_front();
        }
        self.log.push_back(line);
        if self.log_scroll > 0 {
            // Keep the same lines on screen while the user reads.
            self.log_scroll = (self.log_scroll + 1).min(self.log.len());
        }
    }
}

pub fn clean_dataset(mut d: Dataset) -> Dataset {
    clean_in_place(&mut d.name);
    clean_opt(&mut d.description);
    clean_in_place(&mut d.file_name);
    clean_opt(&mut d.error_message);
    clean_opt(&mut d.source_path);
    for issue in &mut d.validation_errors {
        clean_in_place(&mut issue.error);
        clean_in_place(&mut issue.suggestion);
    }
    for conv in &mut d.sample_data {
        for m in conv {
            clean_in_place(&mut m.role);
            clean_in_place(&mut m.content);
        }
    }
    d
}

pub fn clean_job(mut j: TrainingJob) -> TrainingJob {
    clean_opt(&mut j.error_message);
    clean_opt(&mut j.error_detail);
    clean_in_place(&mut j.hyperparameters.base_model);
    clean_in_place(&mut j.gpu_config.gpu_type);
    clean_in_place(&mut j.gpu_config.backend);
    clean_opt(&mut j.external_job_id);
    if let PresetId::User(ref mut s) = j.preset_id {
        clean_in_place(s);
    }
    for m in &mut j.hyperparameters.target_modules {
        clean_in_place(m);
    }
    j
}

pub fn clean_sweep(mut s: Sweep) -> Sweep {
    clean_in_place(&mut s.name);
    clean_opt(&mut s.spec.name);
    clean_opt(&mut s.best_by);
    for r in &mut s.runs {
        clean_opt(&mut r.skipped);
        for (k, v) in &mut r.sets {
            clean_in_place(k);
            clean_in_place(v);
        }
    }
    s
}

pub fn clean_artifact(mut a: ModelArtifact) -> ModelArtifact {
    clean_in_place(&mut a.name);
    clean_in_place(&mut a.base_model);
    clean_in_place(&mut a.training_summary.gpu_type);
    for f in &mut a.files {
        clean_in_place(&mut f.path);
        clean_in_place(&mut f.sha256);
    }
    a
}

pub fn clean_notification(mut n: Notification) -> Notification {
    clean_in_place(&mut n.title);
    clean_in_place(&mut n.message);
    n
}

/// Cleans a record that arrived behind an `Arc`, cloning only when something must change.
pub fn clean_arc<T: Clone + PartialEq>(a: Arc<T>, f: impl Fn(T) -> T) -> Arc<T> {
    let cleaned = f((*a).clone());
    if cleaned == *a { a } else { Arc::new(cleaned) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct Item {
        id: u32,
        key: i64,
        tag: bool,
    }

    impl Keyed for Item {
        type Id = u32;
        fn key(&self) -> u32 {
            self.id
        }
    }

    #[test]
    fn incremental_moves_match_a_full_sort() {
        let mut coll: Collection<Item> = Collection::default();
        let mut view: ListView<u32> = ListView::new(0, true);
        let cmp = |a: &Item, b: &Item| a.key.cmp(&b.key).then(a.id.cmp(&b.id));
        let keep = |i: &Item| i.tag;
        for id in 0..500u32 {
            coll.upsert(Arc::new(Item {
                id,
                key: ((id * 7919) % 301) as i64,
                tag: id % 3 != 0,
            }));
        }
        view.rebuild(&coll, keep, cmp);
        let mut x = 17u32;
        for round in 0..300u32 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let id = if round % 5 == 0 { 500 + round } else { x % 500 };
            let item = Item {
                id,
                key: (x % 1000) as i64,
                tag: x.is_multiple_of(2),
            };
            coll.upsert(Arc::new(item));
            view.touch(coll.position(id).unwrap());
            if round % 7 == 0 {
                view.rebuild(&coll, keep, cmp);
            }
        }
        view.rebuild(&coll, keep, cmp);
        let mut full: ListView<u32> = ListView::new(0, true);
        full.rebuild(&coll, keep, cmp);
        assert_eq!(view.rows, full.rows);
        assert_eq!(view.order, full.order);
    }
}
