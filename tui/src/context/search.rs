//! What the Jobs filter searches, kept ready: every job's searchable text (status, stage,
//! dataset name, preset, GPU type, backend, base model, an export's `export FORMAT`),
//! lower-cased once when the record changes, in one buffer. A keystroke is then one substring search over that buffer
//! (`memchr::memmem`, no allocation per row) instead of lower-casing and searching each
//! field of each of 100,000 records.
//!
//! The buffer follows the collection by identity: a row is rewritten only when its record
//! (the `Arc`) was replaced and a searched field differs; a rewritten row's text is appended
//! and its old text left dead until dead text outgrows live text, when all is rebuilt. A
//! dataset renamed, added or removed rebuilds it all too (jobs show their dataset's name).

use crate::state::Collection;
use brightrun_api::domain::*;
use std::sync::Arc;

/// Separates rows in the buffer. A filter holding it matches nothing (filters are one line
/// of cleaned text, so this never happens typed).
const SEP: u8 = 0;
const DEAD: u32 = u32::MAX;

/// The Jobs filter's index (see the module's doc).
#[derive(Clone, Debug, Default)]
pub struct JobSearch {
    /// The records each row was built from (by collection position), to see what changed.
    jobs: Vec<Arc<TrainingJob>>,
    datasets: Vec<Arc<Dataset>>,
    /// The rows' lower-cased text, each followed by `SEP`.
    text: Vec<u8>,
    /// Segments of `text` in order: where each starts, and its row (`DEAD` once rewritten).
    seg_start: Vec<u32>,
    seg_row: Vec<u32>,
    /// Each row's live segment.
    row_seg: Vec<u32>,
    /// Each row's id in hex (an id prefix matches as in the CLI).
    hex: Vec<[u8; 32]>,
    dead_bytes: usize,
    /// The last filter answered, its answer per row, and the rows rewritten since.
    last: Option<String>,
    matched: Vec<bool>,
    touched: Vec<u32>,
}

/// Appends `s` lower-cased (ASCII in place; other text through `to_lowercase`).
fn push_lower(buf: &mut Vec<u8>, s: &str) {
    if s.is_ascii() {
        buf.extend(s.bytes().map(|b| b.to_ascii_lowercase()));
    } else {
        buf.extend_from_slice(s.to_lowercase().as_bytes());
    }
}

/// Whether a change from `a` to `b` leaves the searched text as it was.
fn same_text(a: &TrainingJob, b: &TrainingJob) -> bool {
    a.id == b.id
        && a.status == b.status
        && a.current_stage == b.current_stage
        && a.dataset_id == b.dataset_id
        && a.preset_id == b.preset_id
        && a.gpu_config.gpu_type == b.gpu_config.gpu_type
        && a.gpu_config.backend == b.gpu_config.backend
        && a.hyperparameters.base_model == b.hyperparameters.base_model
        && a.task.export().map(|e| e.format) == b.task.export().map(|e| e.format)
}

impl JobSearch {
    /// Brings the index up to date with the records (cheap when little changed: one pointer
    /// comparison per record).
    pub fn sync(&mut self, jobs: &Collection<TrainingJob>, datasets: &Collection<Dataset>) {
        let ds = datasets.items();
        let names_changed = self.datasets.len() != ds.len()
            || self
                .datasets
                .iter()
                .zip(ds)
                .any(|(a, b)| !Arc::ptr_eq(a, b) && (a.id != b.id || a.name != b.name));
        let items = jobs.items();
        if names_changed || (self.text.is_empty() && !items.is_empty()) {
            self.rebuild(jobs, datasets);
            return;
        }
        // Same names: keep the newer dataset records so the next look compares fewer.
        self.datasets.clone_from_slice(ds);
        for row in items.len()..self.jobs.len() {
            self.kill(row);
        }
        self.jobs.truncate(items.len());
        self.row_seg.truncate(items.len());
        self.hex.truncate(items.len());
        self.matched.truncate(items.len());
        for (i, j) in items.iter().enumerate() {
            if i >= self.jobs.len() {
                self.jobs.push(j.clone());
                self.row_seg.push(DEAD);
                self.hex.push([0; 32]);
                self.matched.push(false);
                self.write_row(i, j, datasets);
                self.touched.push(i as u32);
            } else if !Arc::ptr_eq(&self.jobs[i], j) {
                let same = same_text(&self.jobs[i], j);
                self.jobs[i] = j.clone();
                if !same {
                    self.kill(i);
                    self.write_row(i, j, datasets);
                    self.touched.push(i as u32);
                }
            }
        }
        if self.dead_bytes > self.text.len() / 2 {
            self.rebuild(jobs, datasets);
        }
    }

    fn rebuild(&mut self, jobs: &Collection<TrainingJob>, datasets: &Collection<Dataset>) {
        let items = jobs.items();
        self.jobs = items.to_vec();
        self.datasets = datasets.items().to_vec();
        self.text.clear();
        self.seg_start.clear();
        self.seg_row.clear();
        self.row_seg = vec![DEAD; items.len()];
        self.hex = vec![[0; 32]; items.len()];
        self.dead_bytes = 0;
        self.last = None;
        self.matched = vec![false; items.len()];
        self.touched.clear();
        for (i, j) in items.iter().enumerate() {
            self.write_row(i, j, datasets);
        }
    }

    /// Appends row `row`'s text as a new segment.
    fn write_row(&mut self, row: usize, j: &TrainingJob, datasets: &Collection<Dataset>) {
        let start = self.text.len() as u32;
        self.seg_start.push(start);
        self.seg_row.push(row as u32);
        self.row_seg[row] = (self.seg_start.len() - 1) as u32;
        let t = &mut self.text;
        for field in [
            j.status.as_str(),
            j.current_stage.as_str(),
            datasets
                .get(j.dataset_id)
                .map(|d| d.name.as_str())
                .unwrap_or(""),
            j.preset_id.as_str(),
            j.gpu_config.gpu_type.as_str(),
            j.gpu_config.backend.as_str(),
            j.hyperparameters.base_model.as_str(),
        ] {
            push_lower(t, field);
            t.push(SEP);
        }
        // An export is found by what it makes (`export`, `export gguf`), as the list names it.
        if let Some(e) = j.task.export() {
            push_lower(t, "export ");
            push_lower(t, e.format.as_str());
            t.push(SEP);
        }
        j.id.0.simple().encode_lower(&mut self.hex[row]);
    }

    /// Marks row `row`'s segment dead.
    fn kill(&mut self, row: usize) {
        let Some(&seg) = self.row_seg.get(row) else {
            return;
        };
        if seg == DEAD {
            return;
        }
        let seg = seg as usize;
        self.seg_row[seg] = DEAD;
        self.row_seg[row] = DEAD;
        self.dead_bytes += self.seg_end(seg) - self.seg_start[seg] as usize;
    }

    fn seg_end(&self, seg: usize) -> usize {
        self.seg_start
            .get(seg + 1)
            .map(|&s| s as usize)
            .unwrap_or(self.text.len())
    }

    /// Which rows match the lower-cased filter `f` (by collection position): a substring of
    /// a searched field, or a prefix of the id in hex. After [`JobSearch::sync`].
    pub fn matches(&mut self, f: &str) -> &[bool] {
        let n = self.jobs.len();
        let needle = f.as_bytes();
        let id_prefix = f.len() <= 32 && f.bytes().all(|b| b.is_ascii_hexdigit());
        let finder = memchr::memmem::Finder::new(needle);
        if needle.contains(&SEP) || needle.is_empty() {
            self.matched.clear();
            self.matched.resize(n, needle.is_empty());
            self.last = None;
            self.touched.clear();
            return &self.matched;
        }
        if self.last.as_deref() == Some(f) {
            // The same filter: only rewritten rows are asked again.
            for row in std::mem::take(&mut self.touched) {
                let row = row as usize;
                if row < n {
                    self.matched[row] = self.row_matches(row, &finder, id_prefix);
                }
            }
            return &self.matched;
        }
        self.matched.clear();
        self.matched.resize(n, false);
        let text = &self.text;
        let mut pos = 0usize;
        let mut seg = 0usize;
        while pos < text.len() {
            let Some(m) = finder.find(&text[pos..]) else {
                break;
            };
            let at = pos + m;
            while seg + 1 < self.seg_start.len() && self.seg_start[seg + 1] as usize <= at {
                seg += 1;
            }
            let row = self.seg_row[seg];
            if row != DEAD {
                self.matched[row as usize] = true;
            }
            // The row is in: on to the next one.
            pos = self.seg_end(seg);
        }
        if id_prefix {
            for (m, hex) in self.matched.iter_mut().zip(&self.hex) {
                *m = *m || hex.starts_with(needle);
            }
        }
        self.last = Some(f.to_string());
        self.touched.clear();
        &self.matched
    }

    fn row_matches(&self, row: usize, finder: &memchr::memmem::Finder, id_prefix: bool) -> bool {
        let seg = self.row_seg[row];
        (seg != DEAD && {
            let seg = seg as usize;
            finder
                .find(&self.text[self.seg_start[seg] as usize..self.seg_end(seg)])
                .is_some()
        }) || (id_prefix && self.hex[row].starts_with(finder.needle()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::lists::job_matches;
    use crate::fixtures;

    fn collections() -> (Collection<TrainingJob>, Collection<Dataset>) {
        let datasets = Collection::from_vec(
            (1..=20u128)
                .map(|n| {
                    fixtures::dataset(
                        n,
                        &format!("Dataset-{n:02} Ünïcode"),
                        DatasetStatus::Ready,
                        n as i64,
                    )
                })
                .collect(),
        );
        let statuses = [
            JobStatus::Running,
            JobStatus::Completed,
            JobStatus::Failed,
            JobStatus::Queued,
        ];
        let jobs = Collection::from_vec(
            (1..=200u128)
                .map(|n| fixtures::job(n, n % 23 + 1, statuses[n as usize % 4], n as i64))
                .collect(),
        );
        (jobs, datasets)
    }

    /// The index answers what the field-by-field test answers, for every record, through
    /// inserts, updates, removals and renames.
    #[test]
    fn the_index_agrees_with_the_field_by_field_test() {
        let (mut jobs, mut datasets) = collections();
        let mut search = JobSearch::default();
        let check = |search: &mut JobSearch,
                     jobs: &Collection<TrainingJob>,
                     datasets: &Collection<Dataset>| {
            for f in [
                "dataset-0",
                "dataset-01",
                "ünïcode",
                "run",
                "b00000",
                "b0000001",
                "a100",
                "mistral",
                "local",
                "nothing-like-this",
                "1",
                "export",
                "export gguf",
                "gguf-lora",
                "\u{0}",
            ] {
                search.sync(jobs, datasets);
                let got = search.matches(f).to_vec();
                let want: Vec<bool> = jobs
                    .items()
                    .iter()
                    .map(|j| {
                        let name = datasets
                            .get(j.dataset_id)
                            .map(|d| d.name.to_lowercase())
                            .unwrap_or_default();
                        f != "\u{0}" && job_matches(j, &name, f)
                    })
                    .collect();
                assert_eq!(got, want, "filter {f:?}");
            }
        };
        check(&mut search, &jobs, &datasets);
        // Updates that change searched fields and ones that do not; an insert; a removal.
        for n in (1..=200u128).step_by(7) {
            let mut j = (**jobs.get(fixtures::job_id(n)).unwrap()).clone();
            j.progress += 1.0;
            if n % 2 == 0 {
                j.status = JobStatus::Cancelled;
            }
            jobs.upsert(Arc::new(j));
        }
        jobs.upsert(Arc::new(fixtures::job(500, 3, JobStatus::Running, 1)));
        jobs.upsert(Arc::new(fixtures::export_job(
            501,
            2,
            ExportFormat::GgufLora,
            JobStatus::Queued,
            1,
        )));
        jobs.remove(fixtures::job_id(10));
        check(&mut search, &jobs, &datasets);
        // An export is found by what it makes.
        search.sync(&jobs, &datasets);
        let export = jobs.position(fixtures::job_id(501)).unwrap();
        assert!(search.matches("export gguf-lora")[export]);
        assert_eq!(search.matches("export").iter().filter(|m| **m).count(), 1);
        // The same filter twice around an update: only the touched row is asked again.
        search.sync(&jobs, &datasets);
        assert!(!search.matches("cancelled")[jobs.position(fixtures::job_id(3)).unwrap()]);
        let mut j = (**jobs.get(fixtures::job_id(3)).unwrap()).clone();
        j.status = JobStatus::Cancelled;
        jobs.upsert(Arc::new(j));
        search.sync(&jobs, &datasets);
        assert!(search.matches("cancelled")[jobs.position(fixtures::job_id(3)).unwrap()]);
        // A renamed dataset renames its jobs' text.
        let mut d = (**datasets.get(fixtures::dataset_id(4)).unwrap()).clone();
        d.name = "support chats v2".into();
        datasets.upsert(Arc::new(d));
        check(&mut search, &jobs, &datasets);
        search.sync(&jobs, &datasets);
        assert!(search.matches("chats v2").iter().any(|m| *m));
    }
}
