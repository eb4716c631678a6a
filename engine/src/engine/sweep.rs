//! What a killed BrightRun leaves behind, removed when the next engine opens the store.
//!
//! Only the process that holds the store writes into the local object store, and an engine
//! that has just opened the store has started no upload and no artifact collection yet. So at
//! that moment every `.tmp-*` file under the object store and the backups folder is an
//! unfinished write of a process that is gone, and every model folder without an artifact
//! record is a collection that never finished (or a manifest rejected halfway), with one
//! exception: after `backup restore` the store may lack records of models made after that
//! backup, so folders older than the last restore are kept (the replaced store, kept as a
//! backup, may name them).
//!
//! First, corrupt records of the tables lists read are moved into the store's quarantine table
//! ([`Store::quarantine_corrupt_listed`]), so lists, totals and the dashboard start from
//! records that all read; metrics points are left to `doctor`, which reads them all.

use super::profile::objects_root;
use crate::config::Config;
use crate::ids::ArtifactId;
use crate::paths::Paths;
use crate::storage::Bucket;
use crate::store::{QuarantinedRecord, Store, StoreError};
use std::path::{Path, PathBuf};

/// What a sweep removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub temp_files: Vec<PathBuf>,
    pub model_folders: Vec<PathBuf>,
    pub bytes: u64,
    /// Corrupt records moved into the store's quarantine table.
    pub quarantined: Vec<QuarantinedRecord>,
}

/// Removes stale temporary files and unfinished model folders; see the module's doc.
pub(crate) fn sweep(paths: &Paths, config: &Config, store: &Store) -> Result<Swept, StoreError> {
    let mut swept = Swept {
        quarantined: quarantine_records(store),
        ..Swept::default()
    };
    let mut roots = vec![crate::store::backup::backups_dir(store.path())];
    if config.storage.backend == "local" {
        roots.push(objects_root(paths, config));
    }
    for root in &roots {
        remove_temp_files(root, &mut swept);
    }
    let restore_tmp = store.path().with_extension("redb.tmp-restore");
    if restore_tmp.is_file() {
        swept.bytes += size(&restore_tmp);
        if std::fs::remove_file(&restore_tmp).is_ok() {
            swept.temp_files.push(restore_tmp);
        }
    }
    if config.storage.backend == "local" {
        let last_restore = crate::store::backup::list(store.path())?
            .iter()
            .filter(|b| b.reason == "replaced")
            .map(|b| std::time::SystemTime::from(b.created_at))
            .max();
        let models = objects_root(paths, config).join(Bucket::Models.name());
        for user_dir in subdirs(&models) {
            for folder in subdirs(&user_dir) {
                let Some(id) = folder
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.parse::<ArtifactId>().ok())
                else {
                    // Not a folder BrightRun names: not ours to remove.
                    continue;
                };
                let before_restore = last_restore.is_some_and(|r| {
                    std::fs::metadata(&folder)
                        .and_then(|m| m.modified())
                        .is_ok_and(|t| t <= r)
                });
                if before_restore {
                    continue;
                }
                if store.artifact(id)?.is_none() {
                    let bytes = tree_size(&folder);
                    if std::fs::remove_dir_all(&folder).is_ok() {
                        swept.bytes += bytes;
                        swept.model_folders.push(folder);
                    }
                }
            }
        }
    }
    if !swept.temp_files.is_empty() || !swept.model_folders.is_empty() {
        tracing::warn!(
            "removed what an interrupted BrightRun left: {} temporary file(s), {} unfinished model folder(s), {} bytes",
            swept.temp_files.len(),
            swept.model_folders.len(),
            swept.bytes
        );
    }
    Ok(swept)
}

/// Quarantines corrupt records. A failure is logged, not returned: the engine must still
/// start (lists skip corrupt records anyway), and `doctor --repair` tries again.
fn quarantine_records(store: &Store) -> Vec<QuarantinedRecord> {
    match store.quarantine_corrupt_listed() {
        Ok(q) => {
            if !q.is_empty() {
                tracing::error!(
                    "moved {} damaged record(s) into the store's quarantine table; `brightrun doctor` lists them",
                    q.len()
                );
            }
            q
        }
        Err(e) => {
            tracing::error!("could not check the store's records for damage: {e}");
            Vec::new()
        }
    }
}

fn remove_temp_files(dir: &Path, swept: &mut Swept) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        let path = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => remove_temp_files(&path, swept),
            Ok(t) if t.is_file() && e.file_name().to_string_lossy().starts_with(".tmp-") => {
                let bytes = size(&path);
                if std::fs::remove_file(&path).is_ok() {
                    swept.bytes += bytes;
                    swept.temp_files.push(path);
                }
            }
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

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

fn tree_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => tree_size(&e.path()),
                    _ => size(&e.path()),
                })
                .sum()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use crate::Engine;
    use crate::ids::ArtifactId;
    use crate::paths::Paths;

    #[test]
    fn an_opening_engine_removes_stale_temp_files_and_unfinished_model_folders_only() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::under(dir.path());
        let engine = Engine::open(paths.clone()).unwrap();
        let user = engine.profile_user();
        let sample = crate::mirror::sample::write_sample(engine.store(), user, 1).unwrap();
        drop(engine);
        let objects = paths.objects_dir();
        let write = |p: std::path::PathBuf, text: &str| {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, text).unwrap();
            p
        };
        let tmp = write(
            objects.join(format!("lora-datasets/{user}/.tmp-999-abc")),
            "half a copy",
        );
        let kept = write(
            objects.join(format!("lora-datasets/{user}/d/data.jsonl")),
            "{}",
        );
        let half_model = write(
            objects.join(format!(
                "lora-models/{user}/{}/adapter.bin",
                ArtifactId::new()
            )),
            "weights",
        );
        let finished_model = write(
            objects.join(format!(
                "lora-models/{user}/{}/adapter.bin",
                sample.artifact.id
            )),
            "weights",
        );
        let not_ours = write(
            objects.join(format!("lora-models/{user}/my-notes/readme.txt")),
            "notes",
        );
        let backup_tmp = write(
            paths
                .data_dir
                .join("backups/.tmp-20260101T000000.000Z-v4-manual.redb"),
            "x",
        );
        drop(Engine::open(paths.clone()).unwrap());
        assert!(!tmp.exists());
        assert!(!backup_tmp.exists());
        assert!(!half_model.parent().unwrap().exists());
        assert!(kept.exists(), "a stored dataset is left alone");
        assert!(
            finished_model.exists(),
            "a model with its record is left alone"
        );
        assert!(
            not_ours.exists(),
            "a folder BrightRun does not name is left alone"
        );
    }

    #[test]
    fn model_folders_older_than_the_last_restore_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::under(dir.path());
        let engine = Engine::open(paths.clone()).unwrap();
        let user = engine.profile_user();
        engine.store().backup("manual").unwrap();
        drop(engine);
        // A model collected after that backup: the restored store will not name it.
        let model = paths
            .objects_dir()
            .join(format!("lora-models/{user}/{}", ArtifactId::new()));
        std::fs::create_dir_all(&model).unwrap();
        std::fs::write(model.join("adapter.bin"), "weights").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        crate::store::backup::restore(&paths.database_file(), "latest").unwrap();
        drop(Engine::open(paths.clone()).unwrap());
        assert!(model.join("adapter.bin").exists());
        // One made after the restore and never recorded is an unfinished collection.
        std::thread::sleep(std::time::Duration::from_millis(5));
        let unfinished = paths
            .objects_dir()
            .join(format!("lora-models/{user}/{}", ArtifactId::new()));
        std::fs::create_dir_all(&unfinished).unwrap();
        drop(Engine::open(paths.clone()).unwrap());
        assert!(!unfinished.exists());
        assert!(model.exists());
    }
}
