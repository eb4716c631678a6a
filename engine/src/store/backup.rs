//! Consistent copies of the store in `<data_dir>/backups/`, and putting one back.
//!
//! A copy is taken while this store holds a write transaction, so no commit can land halfway
//! through it; redb makes every commit durable before it returns, so the bytes on disk are the
//! last commit's. Each copy is opened once before it gets its final name, so a listed backup is
//! known to open.
//!
//! Listing and restoring are file operations that need no open store: they must work exactly
//! when the store is damaged and the engine refuses to start.

use super::{Store, StoreError, db, panic_text, unreadable};
use crate::domain::{Timestamp, now};
pub use brightrun_api::reports::BackupInfo;
use redb::Database;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The folder of a store's backups: `backups/` beside the store file.
pub fn backups_dir(store_path: &Path) -> PathBuf {
    store_path
        .parent()
        .unwrap_or(Path::new("."))
        .join("backups")
}

const STAMP: &str = "%Y%m%dT%H%M%S%.3fZ";

fn file_name(at: Timestamp, schema: u64, reason: &str) -> String {
    format!("{}-v{schema}-{reason}.redb", at.format(STAMP))
}

/// Reads what a backup's file name says; `None` for files that are not backups.
fn parse(path: &Path) -> Option<BackupInfo> {
    let name = path.file_name()?.to_str()?;
    let id = name.strip_suffix(".redb")?;
    let mut parts = id.splitn(3, '-');
    let stamp = parts.next()?;
    let schema = parts.next()?.strip_prefix('v')?.parse().ok()?;
    let reason = parts.next()?.to_string();
    let created_at = chrono::NaiveDateTime::parse_from_str(stamp, STAMP)
        .ok()?
        .and_utc();
    let size_bytes = std::fs::metadata(path).ok()?.len();
    Some(BackupInfo {
        id: id.to_string(),
        path: path.to_path_buf(),
        created_at,
        size_bytes,
        schema_version: schema,
        reason,
    })
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Store {
    /// Copies the store into its backups folder (0600 files in a 0700 folder).
    pub fn backup(&self, reason: &str) -> Result<BackupInfo, StoreError> {
        let dir = backups_dir(&self.path);
        crate::private::create_dir_all(&dir).map_err(io(&dir))?;
        let schema = self.schema_version()?;
        let mut at = now();
        let mut dest = dir.join(file_name(at, schema, reason));
        while dest.exists() {
            at += chrono::Duration::milliseconds(1);
            dest = dir.join(file_name(at, schema, reason));
        }
        let tmp = dir.join(format!(
            ".tmp-{}",
            dest.file_name().unwrap().to_string_lossy()
        ));
        {
            // Holding the write lock keeps every commit out while the bytes are copied.
            let txn = self.db.begin_write().map_err(db)?;
            let copied = copy_private(&self.path, &tmp);
            txn.abort().map_err(db)?;
            copied?;
        }
        if let Err(e) = verify(&tmp) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        std::fs::rename(&tmp, &dest).map_err(io(&dest))?;
        tracing::info!("backed up the store to {}", dest.display());
        parse(&dest).ok_or_else(|| StoreError::Io {
            path: dest.clone(),
            source: std::io::Error::other("the backup just written cannot be listed"),
        })
    }
}

/// `from` copied to a new 0600 file `to`, flushed to disk.
fn copy_private(from: &Path, to: &Path) -> Result<(), StoreError> {
    let mut src = std::fs::File::open(from).map_err(io(from))?;
    let mut out = crate::private::create_file(to).map_err(io(to))?;
    std::io::copy(&mut src, &mut out).map_err(io(to))?;
    out.sync_all().map_err(io(to))
}

/// Opens a copy as a store would (redb finishes any recovery then), and reads its schema.
fn verify(path: &Path) -> Result<u64, StoreError> {
    let opened = std::panic::catch_unwind(|| Database::create(path)).map_err(|p| {
        unreadable(
            path,
            format!("is damaged ({})", panic_text(&p)),
            "take another backup",
        )
    })?;
    let db_ = opened.map_err(|e| super::open_error(path, e))?;
    super::schema::read_version(&db_)
}

/// The backups of the store at `store_path`, oldest first.
pub fn list(store_path: &Path) -> Result<Vec<BackupInfo>, StoreError> {
    let dir = backups_dir(store_path);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(StoreError::Io { path: dir, source }),
    };
    let mut out: Vec<BackupInfo> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| parse(&e.path()))
        .collect();
    out.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// What a restore did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Restored {
    pub backup: BackupInfo,
    /// Where the store that was replaced was kept (itself a backup, `replaced`), if there
    /// was one.
    pub replaced: Option<PathBuf>,
}

/// Puts backup `id` (or `latest`) in place of the store at `store_path`. Refused while any
/// process has the store open. The store it replaces is kept in the backups folder, so a
/// restore can itself be undone.
pub fn restore(store_path: &Path, id: &str) -> Result<Restored, StoreError> {
    let all = list(store_path)?;
    let backup = if id == "latest" {
        all.iter().rev().find(|b| b.reason != "replaced")
    } else {
        all.iter().find(|b| b.id == id)
    }
    .cloned()
    .ok_or_else(|| StoreError::NoBackup {
        id: id.to_string(),
        dir: backups_dir(store_path),
    })?;
    // Holding the store ourselves proves no engine does. A damaged store cannot be held by
    // anyone, so an open that fails for another reason lets the restore go on.
    let held = match std::fs::metadata(store_path) {
        Ok(m) if m.is_file() && m.len() > 0 => {
            match std::panic::catch_unwind(|| Database::create(store_path)) {
                Ok(Ok(db_)) => Some(db_),
                Ok(Err(redb::DatabaseError::DatabaseAlreadyOpen)) => {
                    let holder = std::fs::read_to_string(store_path.with_extension("lock"))
                        .map(|s| s.trim().to_string())
                        .unwrap_or_else(|_| "unknown process".into());
                    return Err(StoreError::Locked {
                        path: store_path.to_path_buf(),
                        holder,
                    });
                }
                _ => None,
            }
        }
        _ => None,
    };
    let dir = backups_dir(store_path);
    let tmp = store_path.with_extension("redb.tmp-restore");
    copy_private(&backup.path, &tmp)?;
    if let Err(e) = verify(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let replaced = match std::fs::symlink_metadata(store_path) {
        Ok(m) if m.is_file() => {
            // Schema 0: unknown (the replaced store may be the damaged one).
            let schema = held
                .as_ref()
                .and_then(|d| super::schema::read_version(d).ok())
                .unwrap_or(0);
            crate::private::create_dir_all(&dir).map_err(io(&dir))?;
            let kept = dir.join(file_name(now(), schema, "replaced"));
            std::fs::rename(store_path, &kept).map_err(io(&kept))?;
            Some(kept)
        }
        Ok(_) => {
            return Err(unreadable(
                store_path,
                "is not a file".into(),
                "move it aside, then restore again",
            ));
        }
        Err(_) => None,
    };
    std::fs::rename(&tmp, store_path).map_err(io(store_path))?;
    drop(held);
    Ok(Restored { backup, replaced })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DatasetStatus;
    use crate::ids::UserId;

    #[test]
    fn a_backup_is_private_listed_and_restores_the_records_it_held() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("brightrun.redb");
        let user = UserId::new();
        let kept = crate::store::tests::dataset(user, "kept", DatasetStatus::Ready);
        let later = crate::store::tests::dataset(user, "later", DatasetStatus::Ready);
        let b = {
            let store = Store::open(&path).unwrap();
            store.put(&kept).unwrap();
            let b = store.backup("manual").unwrap();
            store.put(&later).unwrap();
            // A restore is refused while the store is open.
            let err = restore(&path, &b.id).err().unwrap();
            assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
            b
        };
        assert_eq!(b.reason, "manual");
        assert_eq!(b.schema_version, crate::store::SCHEMA_VERSION);
        assert!(b.size_bytes > 0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&b.path), 0o600);
            assert_eq!(mode(&backups_dir(&path)), 0o700);
        }
        assert_eq!(list(&path).unwrap(), vec![b.clone()]);

        let r = restore(&path, "latest").unwrap();
        assert_eq!(r.backup.id, b.id);
        let replaced = r.replaced.unwrap();
        assert!(replaced.exists());
        let store = Store::open(&path).unwrap();
        assert_eq!(store.dataset(kept.id).unwrap(), Some(kept));
        assert_eq!(store.dataset(later.id).unwrap(), None);
        // The replaced store is listed too, so the restore can be undone.
        assert!(list(&path).unwrap().iter().any(|x| x.reason == "replaced"));
    }

    #[test]
    fn a_damaged_store_can_be_restored_and_an_unknown_id_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("brightrun.redb");
        let user = UserId::new();
        let d = crate::store::tests::dataset(user, "kept", DatasetStatus::Ready);
        {
            let store = Store::open(&path).unwrap();
            store.put(&d).unwrap();
            store.backup("manual").unwrap();
        }
        std::fs::write(&path, b"garbage that is no database at all").unwrap();
        assert!(Store::open(&path).is_err());
        let err = restore(&path, "nope").err().unwrap();
        assert!(err.to_string().contains("`nope`"), "{err}");
        restore(&path, "latest").unwrap();
        let store = Store::open(&path).unwrap();
        assert_eq!(store.dataset(d.id).unwrap(), Some(d));
    }
}
