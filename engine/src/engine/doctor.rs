//! `brightrun doctor [--repair]`: checks the store, the config, the object store against the
//! records, the job folders and what interrupted writes left, each as a named step with a
//! verdict. Repairs only what no record depends on: stale temporary files are removed, and
//! orphaned objects and job folders are moved into the data dir's `quarantine/` folder (never
//! deleted: a record restored from a backup may name them again). No readable record is ever
//! changed or deleted; a record that lost its object is reported with what to do. A record
//! whose bytes are damaged (its checksum does not match) is moved into the store's quarantine
//! table with its raw bytes, never dropped.

use super::profile::objects_root;
use super::{Engine, Result};
use crate::domain::{Dataset, DatasetStatus, JobStatus, ModelArtifact, TrainingJob};
use crate::ids::JobId;
use crate::storage::{Bucket, object_path};
use crate::store::{Record, Store};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub use brightrun_api::reports::{DoctorReport, DoctorStep, MAX_EXAMPLES};

/// Files touched more recently than this may belong to a write in flight (a daemon may be
/// receiving an upload or collecting an artifact while doctor runs): they are not judged.
pub const IN_FLIGHT_AGE: Duration = Duration::from_secs(15 * 60);

/// How the doctor builds a step (the type is the API's).
trait StepExt {
    fn new(name: &str) -> Self;
    fn problem(&mut self, example: String);
    fn finish(self) -> Self;
}

impl StepExt for DoctorStep {
    fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            ok: true,
            problems: 0,
            repaired: 0,
            examples: Vec::new(),
            advice: None,
        }
    }

    fn problem(&mut self, example: String) {
        self.problems += 1;
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(example);
        }
    }

    fn finish(mut self) -> Self {
        self.ok = self.repaired >= self.problems;
        self
    }
}

impl Engine {
    /// Runs every check across all users' records (the data dir's owner asks this); with
    /// `repair`, fixes what is safe to fix (see the module's doc).
    pub async fn doctor(&self, repair: bool) -> Result<DoctorReport> {
        // The store's checks and reads: off the async workers.
        let (mut steps, datasets, artifacts, jobs) = self
            .on_store(move |e| {
                // First, so the other steps judge the records as they are after a repair.
                let corrupt = e.check_corrupt_records(repair)?;
                let datasets: Vec<Dataset> = all_records(&e.inner.store)?;
                let artifacts: Vec<ModelArtifact> = all_records(&e.inner.store)?;
                let jobs: Vec<TrainingJob> = all_records(&e.inner.store)?;
                let steps = vec![e.check_store()?, corrupt, e.check_config()];
                Ok((steps, datasets, artifacts, jobs))
            })
            .await?;
        steps.push(self.check_missing_objects(&datasets, &artifacts).await);
        steps.push(self.check_orphaned_objects(&datasets, &artifacts, repair));
        steps.push(self.check_job_folders(&jobs, repair));
        steps.push(self.check_temp_files(repair));
        steps.push(self.check_stuck_uploads(&datasets));
        let steps: Vec<DoctorStep> = steps.into_iter().map(DoctorStep::finish).collect();
        Ok(DoctorReport {
            ok: steps.iter().all(|s| s.ok),
            steps,
        })
    }

    /// The store opened (or the engine would not run); its schema and profile id must match.
    fn check_store(&self) -> Result<DoctorStep> {
        let mut step = DoctorStep::new("store");
        let store = &self.inner.store;
        let version = store.schema_version()?;
        if version != crate::store::SCHEMA_VERSION {
            step.problem(format!(
                "{} has schema {version}, this BrightRun expects {}",
                store.path().display(),
                crate::store::SCHEMA_VERSION
            ));
        }
        let config_user = self.inner.config.profile.user_id;
        match store.profile_user()? {
            Some(u) if Some(u) == config_user => {}
            Some(u) => step.problem(format!(
                "{} records profile user {u}, the config names {}",
                store.path().display(),
                config_user.map_or("none".to_string(), |c| c.to_string())
            )),
            None => step.problem(format!(
                "{} records no profile user id",
                store.path().display()
            )),
        }
        if step.problems > 0 {
            step.advice = Some(
                "restore the store from a backup (`brightrun backup list`, `brightrun backup restore`) \
                 or put the store's user_id under [profile] in config.toml"
                    .into(),
            );
        }
        Ok(step)
    }

    /// Records whose bytes are damaged: those the opening sweep quarantined (repaired), those
    /// found now (quarantined with `repair`), and, as notes, those quarantined before.
    fn check_corrupt_records(&self, repair: bool) -> Result<DoctorStep> {
        let mut step = DoctorStep::new("corrupt_records");
        let store = &self.inner.store;
        for q in &self.inner.swept.quarantined {
            step.problem(format!(
                "table `{}`, record {}: {} (quarantined when the engine opened)",
                q.table, q.id, q.problem
            ));
            step.repaired += 1;
        }
        if repair {
            for q in store.quarantine_corrupt()? {
                step.problem(format!(
                    "table `{}`, record {}: {} (quarantined)",
                    q.table, q.id, q.problem
                ));
                step.repaired += 1;
            }
        } else {
            for c in store.corrupt_records()? {
                step.problem(format!(
                    "table `{}`, record {}: {}",
                    c.table, c.id, c.problem
                ));
            }
        }
        let quarantined = store.quarantined()?;
        let new: HashSet<(&str, &str)> = self
            .inner
            .swept
            .quarantined
            .iter()
            .map(|q| (q.table.as_str(), q.id.as_str()))
            .collect();
        let earlier: Vec<_> = quarantined
            .iter()
            .filter(|q| !new.contains(&(q.table.as_str(), q.id.as_str())))
            .filter(|q| !step.examples.iter().any(|e| e.contains(&q.id)))
            .collect();
        // Not problems any more (nothing reads them), but a person should know they exist.
        for q in &earlier {
            if step.examples.len() < MAX_EXAMPLES {
                step.examples.push(format!(
                    "table `{}`, record {}: {} (in quarantine since {})",
                    q.table,
                    q.id,
                    q.problem,
                    q.quarantined_at.format("%Y-%m-%d %H:%M UTC")
                ));
            }
        }
        if step.problems > 0 || !quarantined.is_empty() {
            let mut advice = Vec::new();
            if step.problems > step.repaired {
                advice.push(
                    "lists leave these records out; `brightrun doctor --repair` moves them into the \
                     store's quarantine table"
                        .to_string(),
                );
            }
            if !quarantined.is_empty() {
                advice.push(format!(
                    "{} record(s) are in quarantine: their raw bytes are kept in the store's \
                     `quarantined_records` table",
                    quarantined.len()
                ));
            }
            advice.push("a backup (`brightrun backup list`) may hold a good copy of each".into());
            step.advice = Some(advice.join("; "));
        }
        Ok(step)
    }

    /// config.toml as it is on disk now (a daemon may have been started before an edit).
    fn check_config(&self) -> DoctorStep {
        let mut step = DoctorStep::new("config");
        if let Err(e) = crate::config::Config::load(&self.inner.paths) {
            step.problem(crate::text::clean_line(&e.to_string()));
            step.advice = Some(format!(
                "fix {} (`brightrun config show` names the setting)",
                self.inner.paths.config_file().display()
            ));
        }
        step
    }

    /// Every live dataset past its upload, and every live model, has its objects with the
    /// recorded sizes.
    async fn check_missing_objects(
        &self,
        datasets: &[Dataset],
        artifacts: &[ModelArtifact],
    ) -> DoctorStep {
        let mut step = DoctorStep::new("missing_objects");
        let objects = &self.inner.objects;
        for d in datasets {
            if d.deleted_at.is_some() || d.status == DatasetStatus::Uploading {
                continue;
            }
            // A dataset whose upload failed has no object to miss.
            if d.status == DatasetStatus::Error && d.sha256.is_none() {
                continue;
            }
            match objects.size(Bucket::Datasets, &d.storage_path).await {
                Ok(Some(size)) if size == d.file_size => {}
                Ok(Some(size)) => step.problem(format!(
                    "dataset {} ({}): {} is {size} bytes, the record says {}",
                    d.id.short(),
                    crate::text::clean_line(&d.name),
                    d.storage_path,
                    d.file_size
                )),
                Ok(None) => step.problem(format!(
                    "dataset {} ({}): {} is missing",
                    d.id.short(),
                    crate::text::clean_line(&d.name),
                    d.storage_path
                )),
                Err(e) => step.problem(format!(
                    "dataset {}: {} could not be checked: {e}",
                    d.id.short(),
                    d.storage_path
                )),
            }
        }
        for a in artifacts {
            if a.deleted_at.is_some() {
                continue;
            }
            for f in &a.files {
                let Ok(key) = object_path(&[a.storage_path.as_str(), f.path.as_str()]) else {
                    step.problem(format!(
                        "model {}: the file name `{}` is not a storable path",
                        a.id.short(),
                        crate::text::clean_line(&f.path)
                    ));
                    continue;
                };
                match objects.size(Bucket::Models, &key).await {
                    Ok(Some(size)) if size == f.size => {}
                    Ok(Some(size)) => step.problem(format!(
                        "model {}: {key} is {size} bytes, the record says {}",
                        a.id.short(),
                        f.size
                    )),
                    Ok(None) => step.problem(format!("model {}: {key} is missing", a.id.short())),
                    Err(e) => step.problem(format!(
                        "model {}: {key} could not be checked: {e}",
                        a.id.short()
                    )),
                }
            }
        }
        if step.problems > 0 {
            step.advice = Some(
                "these records lost their stored bytes: restore the files from a copy, add the \
                 dataset again (`brightrun datasets add`) or delete the record (`brightrun \
                 datasets rm ID`, `brightrun models rm ID`)"
                    .into(),
            );
        }
        step
    }

    /// Files in the local object store's buckets that no record names.
    fn check_orphaned_objects(
        &self,
        datasets: &[Dataset],
        artifacts: &[ModelArtifact],
        repair: bool,
    ) -> DoctorStep {
        let mut step = DoctorStep::new("orphaned_objects");
        if self.inner.objects.kind() != "local" {
            step.advice = Some("not checked for S3: list the buckets with your S3 tools".into());
            return step;
        }
        let root = objects_root(&self.inner.paths, &self.inner.config);
        let mut named: HashSet<PathBuf> = HashSet::new();
        for d in datasets {
            named.insert(root.join(Bucket::Datasets.name()).join(&d.storage_path));
        }
        for a in artifacts {
            for f in &a.files {
                named.insert(
                    root.join(Bucket::Models.name())
                        .join(&a.storage_path)
                        .join(&f.path),
                );
            }
        }
        let quarantine = self.quarantine_dir();
        for bucket in [Bucket::Datasets, Bucket::Models] {
            let mut files = Vec::new();
            walk_files(&root.join(bucket.name()), &mut files);
            for file in files {
                let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
                if name.as_deref().is_some_and(|n| n.starts_with(".tmp-")) || named.contains(&file)
                {
                    continue;
                }
                if recently_touched(&file) {
                    continue;
                }
                let rel = file.strip_prefix(&root).unwrap_or(&file).to_path_buf();
                step.problem(rel.display().to_string());
                if repair && quarantine_path(&file, &quarantine.join("objects").join(&rel)) {
                    step.repaired += 1;
                    remove_empty_parents(&file, &root.join(bucket.name()));
                }
            }
        }
        if step.problems > step.repaired {
            step.advice = Some(format!(
                "no record names these files; `brightrun doctor --repair` moves them into {}",
                quarantine.display()
            ));
        } else if step.repaired > 0 {
            step.advice = Some(format!("moved into {}", quarantine.display()));
        }
        step
    }

    /// Job folders without a job record; local jobs that run without a folder.
    fn check_job_folders(&self, jobs: &[TrainingJob], repair: bool) -> DoctorStep {
        let mut step = DoctorStep::new("job_folders");
        let jobs_dir = self.inner.paths.jobs_dir();
        let mut known: HashSet<String> = HashSet::new();
        for j in jobs {
            known.insert(j.id.to_string());
            if let Some(x) = &j.external_job_id {
                known.insert(x.clone());
            }
        }
        let quarantine = self.quarantine_dir();
        let mut orphans_left = 0;
        for dir in subdirs(&jobs_dir) {
            let Some(name) = dir.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            // A folder BrightRun does not name is not ours to judge.
            if name.parse::<JobId>().is_err() || known.contains(&name) {
                continue;
            }
            step.problem(format!(
                "{}: a job folder without a job record",
                dir.display()
            ));
            if repair && quarantine_path(&dir, &quarantine.join("jobs").join(&name)) {
                step.repaired += 1;
            } else {
                orphans_left += 1;
            }
        }
        let mut running_without = 0;
        for j in jobs {
            if !matches!(j.status, JobStatus::Running | JobStatus::Initializing) {
                continue;
            }
            let local = self
                .inner
                .backends
                .get(&j.gpu_config.backend)
                .is_some_and(|b| b.kind() == "local");
            if !local {
                continue;
            }
            let folder = jobs_dir.join(j.external_job_id.clone().unwrap_or(j.id.to_string()));
            if !folder.is_dir() {
                running_without += 1;
                step.problem(format!(
                    "job {} is {} but {} is gone",
                    j.id.short(),
                    j.status.as_str(),
                    folder.display()
                ));
            }
        }
        let mut advice = Vec::new();
        if orphans_left > 0 {
            advice.push(format!(
                "`brightrun doctor --repair` moves folders without a record into {}",
                quarantine.display()
            ));
        } else if step.repaired > 0 {
            advice.push(format!(
                "moved folders without a record into {}",
                quarantine.display()
            ));
        }
        if running_without > 0 {
            advice.push(
                "a running job lost its folder: `brightrun jobs cancel ID`, then `brightrun jobs retry ID`"
                    .into(),
            );
        }
        if !advice.is_empty() {
            step.advice = Some(advice.join("; "));
        }
        step
    }

    /// `.tmp-*` files of interrupted writes: those the sweep removed when this engine opened,
    /// and any left since that are too old to belong to a write in flight.
    fn check_temp_files(&self, repair: bool) -> DoctorStep {
        let mut step = DoctorStep::new("temp_files");
        for p in &self.inner.swept.temp_files {
            step.problem(format!("{} (removed when the engine opened)", p.display()));
            step.repaired += 1;
        }
        for p in &self.inner.swept.model_folders {
            step.problem(format!(
                "{}: an unfinished model folder (removed when the engine opened)",
                p.display()
            ));
            step.repaired += 1;
        }
        let mut roots = vec![crate::store::backup::backups_dir(self.inner.store.path())];
        if self.inner.objects.kind() == "local" {
            roots.push(objects_root(&self.inner.paths, &self.inner.config));
        }
        let mut files = Vec::new();
        for root in &roots {
            walk_files(root, &mut files);
        }
        for file in files {
            let is_tmp = file
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".tmp-"));
            if !is_tmp || recently_touched(&file) {
                continue;
            }
            step.problem(file.display().to_string());
            if repair && std::fs::remove_file(&file).is_ok() {
                step.repaired += 1;
            }
        }
        if step.problems > step.repaired {
            step.advice =
                Some("left by interrupted writes; `brightrun doctor --repair` removes them".into());
        }
        step
    }

    /// Datasets still `uploading` whose upload is not running.
    fn check_stuck_uploads(&self, datasets: &[Dataset]) -> DoctorStep {
        let mut step = DoctorStep::new("stuck_uploads");
        for d in datasets {
            if d.deleted_at.is_some()
                || d.status != DatasetStatus::Uploading
                || self.awaiting_upload(d)
            {
                continue;
            }
            step.problem(format!(
                "dataset {} ({}): {}",
                d.id.short(),
                crate::text::clean_line(&d.name),
                super::datasets::interrupted_note(d),
            ));
        }
        if step.problems > 0 {
            step.advice = Some(
                "these uploads were interrupted: `brightrun datasets resume ID` continues one \
                 added from a file, a streamed one is sent again, `brightrun datasets rm ID` drops \
                 it"
                .into(),
            );
        }
        step
    }

    /// Where repairs put what they take away: in the data dir, so a move is a rename.
    fn quarantine_dir(&self) -> PathBuf {
        self.inner.paths.data_dir.join("quarantine")
    }
}

/// Every record of a table, all users', in chunks (one read transaction each).
fn all_records<R: Record>(store: &Store) -> Result<Vec<R>> {
    let mut out = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let chunk = store.scan::<R>(after.as_deref(), 1000)?;
        out.extend(chunk.items);
        match chunk.next {
            Some(k) => after = Some(k),
            None => return Ok(out),
        }
    }
}

/// Moves `from` to `to` (a file or a folder) in the private quarantine folder.
fn quarantine_path(from: &Path, to: &Path) -> bool {
    let Some(parent) = to.parent() else {
        return false;
    };
    if crate::private::create_dir_all(parent).is_err() {
        return false;
    }
    // Never overwrite an earlier quarantined copy.
    let mut target = to.to_path_buf();
    let mut n = 1;
    while target.exists() {
        target = to.with_file_name(format!(
            "{}.{n}",
            to.file_name().map_or("x".into(), |f| f.to_string_lossy())
        ));
        n += 1;
    }
    if std::fs::rename(from, &target).is_err() {
        return false;
    }
    if target.is_file() {
        let _ = crate::private::restrict_file(&target);
    } else {
        let _ = restrict_tree(&target);
    }
    true
}

/// 0700 folders and 0600 files under `dir`, whatever they were made with.
fn restrict_tree(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir,
        std::fs::Permissions::from_mode(crate::private::DIR_MODE),
    )?;
    for e in std::fs::read_dir(dir)?.filter_map(|e| e.ok()) {
        match e.file_type() {
            Ok(t) if t.is_dir() => restrict_tree(&e.path())?,
            Ok(t) if t.is_file() => crate::private::restrict_file(&e.path())?,
            _ => {}
        }
    }
    Ok(())
}

/// Removes the folders a quarantined file leaves empty, up to (not including) `stop`.
fn remove_empty_parents(file: &Path, stop: &Path) {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == stop || !d.starts_with(stop) || std::fs::remove_dir(d).is_err() {
            return;
        }
        dir = d.parent();
    }
}

fn recently_touched(path: &Path) -> bool {
    std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| {
            SystemTime::now()
                .duration_since(t)
                .is_ok_and(|age| age < IN_FLIGHT_AGE)
                || t > SystemTime::now()
        })
}

fn walk_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        match e.file_type() {
            Ok(t) if t.is_dir() => walk_files(&e.path(), out),
            Ok(t) if t.is_file() => out.push(e.path()),
            _ => {}
        }
    }
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DatasetStatus;
    use crate::ids::JobId;
    use crate::paths::Paths;
    use std::os::unix::fs::PermissionsExt;

    /// Writes `text` at `path` and dates it an hour back, past [`IN_FLIGHT_AGE`].
    fn old_file(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
    }

    fn step<'a>(r: &'a DoctorReport, name: &str) -> &'a DoctorStep {
        r.steps
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no step {name} in {r:?}"))
    }

    #[tokio::test]
    async fn doctor_finds_each_problem_repairs_the_safe_ones_and_never_touches_a_record() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::under(dir.path());
        let engine = Engine::open(paths.clone()).unwrap();
        let user = engine.profile_user();
        let store = engine.store();
        let objects = paths.objects_dir().join("lora-datasets");

        let clean = engine.doctor(false).await.unwrap();
        assert!(clean.ok, "a fresh data dir is clean: {clean:?}");
        assert_eq!(clean.steps.len(), 8);

        let mut kept = crate::store::tests::dataset(user, "kept", DatasetStatus::Ready);
        kept.storage_path = format!("{user}/{}/kept.jsonl", kept.id);
        kept.file_size = 5;
        old_file(&objects.join(&kept.storage_path), "12345");
        store.put(&kept).unwrap();
        let mut lost = crate::store::tests::dataset(user, "lost", DatasetStatus::Ready);
        lost.storage_path = format!("{user}/{}/lost.jsonl", lost.id);
        lost.file_size = 3;
        store.put(&lost).unwrap();
        let mut stuck = crate::store::tests::dataset(user, "stuck", DatasetStatus::Uploading);
        stuck.source_path = Some("/nonexistent/stuck.jsonl".into());
        store.put(&stuck).unwrap();
        let orphan = objects.join(format!("{user}/stray/stray.jsonl"));
        old_file(&orphan, "nobody names me");
        let recent_orphan = objects.join(format!("{user}/fresh/fresh.jsonl"));
        std::fs::create_dir_all(recent_orphan.parent().unwrap()).unwrap();
        std::fs::write(&recent_orphan, "maybe in flight").unwrap();
        let job_folder = paths.jobs_dir().join(JobId::new().to_string());
        old_file(&job_folder.join("trainer.log"), "a log");
        let not_ours = paths.jobs_dir().join("my-notes");
        std::fs::create_dir_all(&not_ours).unwrap();
        let tmp = objects.join(format!("{user}/.tmp-42-abc"));
        old_file(&tmp, "half a copy");

        let found = engine.doctor(false).await.unwrap();
        assert!(!found.ok);
        let missing = step(&found, "missing_objects");
        assert_eq!(missing.problems, 1, "{missing:?}");
        assert!(
            missing.examples[0].contains(&lost.id.short()),
            "{missing:?}"
        );
        assert!(missing.advice.is_some());
        let orphans = step(&found, "orphaned_objects");
        assert_eq!((orphans.problems, orphans.repaired), (1, 0), "{orphans:?}");
        assert!(orphans.examples[0].contains("stray.jsonl"), "{orphans:?}");
        let jobs = step(&found, "job_folders");
        assert_eq!((jobs.problems, jobs.repaired), (1, 0), "{jobs:?}");
        let temps = step(&found, "temp_files");
        assert_eq!((temps.problems, temps.repaired), (1, 0), "{temps:?}");
        let uploads = step(&found, "stuck_uploads");
        assert_eq!(uploads.problems, 1, "{uploads:?}");
        assert!(
            uploads.examples[0].contains("interrupted")
                && uploads.examples[0].contains(&format!("datasets resume {}", stuck.id))
                && uploads.examples[0].contains(&format!("datasets rm {}", stuck.id)),
            "{uploads:?}"
        );
        assert!(step(&found, "store").ok && step(&found, "config").ok);
        assert!(
            orphan.exists() && tmp.exists() && job_folder.exists(),
            "no repair asked"
        );

        let repaired = engine.doctor(true).await.unwrap();
        assert!(
            !repaired.ok,
            "a lost object and a stuck upload are not repairable"
        );
        for name in ["orphaned_objects", "job_folders", "temp_files"] {
            let s = step(&repaired, name);
            assert!(s.ok && s.repaired == 1, "{s:?}");
        }
        assert!(!orphan.exists() && !tmp.exists() && !job_folder.exists());
        let quarantine = paths.data_dir.join("quarantine");
        let moved = quarantine.join(format!("objects/lora-datasets/{user}/stray/stray.jsonl"));
        assert_eq!(std::fs::read_to_string(&moved).unwrap(), "nobody names me");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&moved), 0o600);
        assert_eq!(mode(&quarantine), 0o700);
        let moved_job = quarantine
            .join("jobs")
            .join(job_folder.file_name().unwrap());
        assert_eq!(mode(&moved_job), 0o700);
        assert_eq!(mode(&moved_job.join("trainer.log")), 0o600);
        assert!(
            recent_orphan.exists(),
            "a file that may be in flight is not judged"
        );
        assert!(
            not_ours.exists(),
            "a folder BrightRun does not name is left alone"
        );
        assert!(objects.join(&kept.storage_path).exists());
        // No record was changed or removed.
        assert_eq!(store.dataset(lost.id).unwrap(), Some(lost.clone()));
        assert_eq!(store.dataset(stuck.id).unwrap(), Some(stuck.clone()));
        assert!(!step(&repaired, "missing_objects").ok);
        assert!(!step(&repaired, "stuck_uploads").ok);

        // What the user does about the rest: the lost file back, the stuck upload dropped.
        old_file(&objects.join(&lost.storage_path), "abc");
        engine.delete_dataset(stuck.id, false).await.unwrap();
        std::fs::remove_file(&recent_orphan).unwrap();
        let again = engine.doctor(false).await.unwrap();
        assert!(again.ok, "{again:?}");
        assert!(again.steps.iter().all(|s| s.problems == 0), "{again:?}");
    }

    #[tokio::test]
    async fn a_wrong_size_and_a_lost_model_file_are_missing_objects() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::under(dir.path());
        let engine = Engine::open(paths.clone()).unwrap();
        let user = engine.profile_user();
        let sample = crate::mirror::sample::write_sample(engine.store(), user, 1).unwrap();
        let d = &sample.dataset;
        old_file(
            &paths
                .objects_dir()
                .join("lora-datasets")
                .join(&d.storage_path),
            "too short",
        );
        let r = engine.doctor(true).await.unwrap();
        let missing = step(&r, "missing_objects");
        assert!(!r.ok);
        assert_eq!(missing.repaired, 0);
        assert_eq!(
            missing.problems,
            1 + sample.artifact.files.len(),
            "{missing:?}"
        );
        assert!(
            missing.examples[0].contains(&format!("the record says {}", d.file_size)),
            "{missing:?}"
        );
        assert!(
            missing.examples[1..]
                .iter()
                .all(|e| e.contains("is missing")),
            "{missing:?}"
        );
    }

    #[tokio::test]
    async fn temp_files_the_opening_sweep_removed_are_reported_as_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::under(dir.path());
        let user = Engine::open(paths.clone()).unwrap().profile_user();
        let tmp = paths
            .objects_dir()
            .join(format!("lora-datasets/{user}/.tmp-7-xyz"));
        old_file(&tmp, "half");
        let engine = Engine::open(paths.clone()).unwrap();
        let r = engine.doctor(false).await.unwrap();
        let temps = step(&r, "temp_files");
        assert!(r.ok, "{r:?}");
        assert_eq!((temps.problems, temps.repaired), (1, 1), "{temps:?}");
        assert!(temps.examples[0].contains(".tmp-7-xyz"), "{temps:?}");
    }

    #[tokio::test]
    async fn a_running_local_job_without_its_folder_is_a_problem_no_repair_hides() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::under(dir.path());
        let engine = Engine::open(paths.clone()).unwrap();
        let user = engine.profile_user();
        let sample = crate::mirror::sample::write_sample(engine.store(), user, 1).unwrap();
        let mut job = sample.job.clone();
        job.status = JobStatus::Running;
        job.gpu_config.backend = "local".into();
        engine.store().put(&job).unwrap();
        for repair in [false, true] {
            let r = engine.doctor(repair).await.unwrap();
            let jobs = step(&r, "job_folders");
            assert_eq!((jobs.problems, jobs.repaired), (1, 0), "{jobs:?}");
            assert!(jobs.examples[0].contains("is running"), "{jobs:?}");
            assert!(
                jobs.advice.as_deref().unwrap().contains("jobs cancel"),
                "{jobs:?}"
            );
        }
        let folder = paths
            .jobs_dir()
            .join(job.external_job_id.clone().unwrap_or(job.id.to_string()));
        std::fs::create_dir_all(&folder).unwrap();
        let r = engine.doctor(false).await.unwrap();
        assert!(step(&r, "job_folders").ok, "{r:?}");
    }

    #[tokio::test]
    async fn a_corrupt_record_is_named_quarantined_by_repair_and_listed_afterwards() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::under(dir.path());
        let engine = Engine::open(paths.clone()).unwrap();
        let user = engine.profile_user();
        let store = engine.store();
        let kept = crate::store::tests::dataset(user, "kept", DatasetStatus::Ready);
        let damaged = crate::store::tests::dataset(user, "damaged", DatasetStatus::Ready);
        store.put(&kept).unwrap();
        store.put(&damaged).unwrap();
        crate::store::tests::damage_dataset_name(store, &damaged);

        let found = engine.doctor(false).await.unwrap();
        let s = step(&found, "corrupt_records");
        assert_eq!((s.problems, s.repaired), (1, 0), "{s:?}");
        assert!(
            s.examples[0].contains("`datasets`") && s.examples[0].contains(&damaged.id.to_string()),
            "{s:?}"
        );
        let advice = s.advice.as_deref().unwrap();
        assert!(
            advice.contains("doctor --repair") && advice.contains("backup list"),
            "{advice}"
        );
        assert!(!found.ok);

        let repaired = engine.doctor(true).await.unwrap();
        let s = step(&repaired, "corrupt_records");
        assert_eq!((s.problems, s.repaired), (1, 1), "{s:?}");
        assert!(s.ok && s.examples[0].contains("quarantined"), "{s:?}");
        assert!(
            s.advice.as_deref().unwrap().contains("quarantined_records"),
            "{s:?}"
        );
        assert_eq!(store.quarantined().unwrap().len(), 1);
        assert_eq!(store.dataset(damaged.id).unwrap(), None);
        assert_eq!(store.dataset(kept.id).unwrap(), Some(kept.clone()));

        let after = engine.doctor(false).await.unwrap();
        let s = step(&after, "corrupt_records");
        assert_eq!((s.ok, s.problems), (true, 0), "{s:?}");
        assert!(
            s.examples[0].contains(&damaged.id.to_string())
                && s.examples[0].contains("in quarantine since"),
            "{s:?}"
        );
    }

    #[tokio::test]
    async fn the_opening_sweep_quarantines_a_corrupt_record_and_doctor_reports_it_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::under(dir.path());
        let engine = Engine::open(paths.clone()).unwrap();
        let user = engine.profile_user();
        let damaged = crate::store::tests::dataset(user, "damaged", DatasetStatus::Ready);
        engine.store().put(&damaged).unwrap();
        crate::store::tests::damage_dataset_name(engine.store(), &damaged);
        drop(engine);
        let engine = Engine::open(paths.clone()).unwrap();
        assert_eq!(engine.store().count_datasets(user, None).unwrap(), 0);
        let r = engine.doctor(false).await.unwrap();
        let s = step(&r, "corrupt_records");
        assert_eq!((s.problems, s.repaired), (1, 1), "{s:?}");
        assert!(
            s.examples[0].contains("quarantined when the engine opened"),
            "{s:?}"
        );
        assert_eq!(s.examples.len(), 1, "not listed twice: {s:?}");
    }
}
