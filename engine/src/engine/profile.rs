//! Settling whose data dir this is before anything is written. Two silent losses are refused
//! here: a store opened under another profile user id than the one it was made under (every
//! record would be invisible, and new ones would belong to a stranger), and a missing or
//! emptied store beside stored objects and job folders (a fresh store would orphan them).

use super::{EngineError, Result};
use crate::config::Config;
use crate::ids::UserId;
use crate::paths::Paths;
use crate::store::Store;
use std::path::{Path, PathBuf};

/// Set to `1` to make config.toml take the store's profile user id when the two differ.
pub const ADOPT_STORE_ENV: &str = "BRIGHTRUN_ADOPT_STORE";

/// What the data dir holds besides the store: reported when the store is gone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// Files under the local object store's root.
    pub objects: usize,
    pub objects_dir: PathBuf,
    /// Folders under the data dir's `jobs/`.
    pub job_folders: usize,
    pub jobs_dir: PathBuf,
}

impl Leftovers {
    pub fn is_empty(&self) -> bool {
        self.objects == 0 && self.job_folders == 0
    }
}

impl std::fmt::Display for Leftovers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} stored object(s) under {} and {} job folder(s) under {}",
            self.objects,
            self.objects_dir.display(),
            self.job_folders,
            self.jobs_dir.display()
        )
    }
}

/// The local object store's root under this config.
pub(crate) fn objects_root(paths: &Paths, config: &Config) -> PathBuf {
    config
        .storage
        .local_root
        .clone()
        .unwrap_or_else(|| paths.objects_dir())
}

/// Counts what the data dir holds besides the store. Objects are counted only for the local
/// object store: an S3 bucket is not this data dir's to judge.
pub(crate) fn leftovers(paths: &Paths, config: &Config) -> Leftovers {
    let objects_dir = objects_root(paths, config);
    let objects = if config.storage.backend == "local" {
        count_files(&objects_dir)
    } else {
        0
    };
    let jobs_dir = paths.jobs_dir();
    let job_folders = std::fs::read_dir(&jobs_dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .count()
        })
        .unwrap_or(0);
    Leftovers {
        objects,
        objects_dir,
        job_folders,
        jobs_dir,
    }
}

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path()),
            Ok(t) if t.is_file() => 1,
            _ => 0,
        })
        .sum()
}

/// Refuses to let the store be made afresh when the data dir still holds what an earlier
/// store described. Called before [`Store::open`], which would create the file.
pub(crate) fn check_store_present(paths: &Paths, config: &Config) -> Result<()> {
    let path = paths.database_file();
    let state = match std::fs::metadata(&path) {
        Ok(m) if m.is_file() && m.len() == 0 => "is empty (0 bytes)",
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "is missing",
        // Anything else (no permission, a broken link) is for Store::open to explain.
        Err(_) => return Ok(()),
    };
    let found = leftovers(paths, config);
    if found.is_empty() {
        return Ok(());
    }
    Err(EngineError::StoreMissing { path, state, found })
}

/// The profile user id of this data dir, written wherever it was missing: into the store when
/// the store does not record one yet, into config.toml when the config lost it. A config whose
/// id differs from the store's is refused unless `adopt` (from [`ADOPT_STORE_ENV`]) says to
/// take the store's. `config_on_disk`: whether `config` came from config.toml (and may be
/// written back).
pub(crate) fn settle_user(
    paths: &Paths,
    config: &mut Config,
    config_on_disk: bool,
    store: &Store,
    adopt: bool,
) -> Result<UserId> {
    let stored = store.profile_user()?;
    let user = match (stored, config.profile.user_id) {
        (Some(s), Some(c)) if s == c => return Ok(s),
        (Some(s), Some(c)) if !adopt => {
            return Err(EngineError::ProfileMismatch {
                store_path: store.path().to_path_buf(),
                store_user: s,
                config_path: paths.config_file(),
                config_user: c,
            });
        }
        (Some(s), Some(c)) => {
            tracing::warn!(
                "{ADOPT_STORE_ENV}=1: config.toml's profile user id {c} is replaced by the store's {s}"
            );
            s
        }
        (Some(s), None) => {
            tracing::warn!(
                "{} has no [profile] user_id; taking the store's {s}",
                paths.config_file().display()
            );
            s
        }
        (None, Some(c)) => {
            store.set_profile_user(c)?;
            return Ok(c);
        }
        (None, None) => {
            let owners = store.record_owners()?;
            if !owners.is_empty() {
                return Err(EngineError::ProfileUnknown {
                    store_path: store.path().to_path_buf(),
                    config_path: paths.config_file(),
                    owners: owners
                        .iter()
                        .map(|(u, n)| format!("{u} ({n} records)"))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            let fresh = UserId::new();
            store.set_profile_user(fresh)?;
            fresh
        }
    };
    config.profile.user_id = Some(user);
    if config_on_disk {
        write_user_id(paths, user)?;
    }
    Ok(user)
}

/// Whether the environment asks to take the store's profile user id ([`ADOPT_STORE_ENV`]).
pub(crate) fn adopt_from_env() -> bool {
    std::env::var(ADOPT_STORE_ENV).is_ok_and(|v| v == "1")
}

/// Sets `[profile] user_id` in config.toml and keeps everything else the file says (its
/// comments included), so a repair rewrites one line, not the user's file.
pub fn write_user_id(paths: &Paths, user: UserId) -> Result<()> {
    let path = paths.config_file();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => {
            return Err(EngineError::Io {
                action: "reading",
                path,
                source,
            });
        }
    };
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        EngineError::Config(crate::config::ConfigError::Parse {
            path: path.clone(),
            message: e.message().to_string(),
        })
    })?;
    doc["profile"]["user_id"] = toml_edit::value(user.to_string());
    let io = |source| EngineError::Io {
        action: "writing",
        path: path.clone(),
        source,
    };
    crate::private::create_dir_all(&paths.config_dir).map_err(io)?;
    let tmp = path.with_extension("toml.tmp");
    crate::private::write(&tmp, doc.to_string()).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Engine;
    use crate::domain::DatasetStatus;

    fn home() -> (tempfile::TempDir, Paths) {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::under(dir.path());
        (dir, paths)
    }

    fn config_user(paths: &Paths) -> Option<UserId> {
        Config::load(paths).unwrap().profile.user_id
    }

    /// Opens the engine once (making the store and config), then closes it.
    fn first_open(paths: &Paths) -> UserId {
        let engine = Engine::open(paths.clone()).unwrap();
        let user = engine.profile_user();
        assert_eq!(engine.store().profile_user().unwrap(), Some(user));
        assert_eq!(config_user(paths), Some(user));
        user
    }

    #[test]
    fn a_deleted_or_emptied_config_takes_the_stores_user_back() {
        let (_dir, paths) = home();
        let user = first_open(&paths);
        std::fs::remove_file(paths.config_file()).unwrap();
        let engine = Engine::open(paths.clone()).unwrap();
        assert_eq!(engine.profile_user(), user);
        drop(engine);
        assert_eq!(config_user(&paths), Some(user));
        std::fs::write(paths.config_file(), "").unwrap();
        let engine = Engine::open(paths.clone()).unwrap();
        assert_eq!(engine.profile_user(), user);
        assert_eq!(config_user(&paths), Some(user));
    }

    #[test]
    fn another_user_id_in_config_is_refused_naming_both_and_the_way_out() {
        let (_dir, paths) = home();
        let user = first_open(&paths);
        let other = UserId::new();
        let text = format!("# mine\n[profile]\nuser_id = \"{other}\"\n");
        std::fs::write(paths.config_file(), &text).unwrap();
        let err = Engine::open(paths.clone()).err().unwrap();
        assert!(
            matches!(&err, EngineError::ProfileMismatch { store_user, config_user, .. }
                if *store_user == user && *config_user == other),
            "{err:?}"
        );
        let msg = err.to_string();
        for needle in [
            user.to_string(),
            other.to_string(),
            paths.database_file().display().to_string(),
            ADOPT_STORE_ENV.to_string(),
        ] {
            assert!(msg.contains(&needle), "{needle} missing from: {msg}");
        }
        // Refusing writes nothing: the config keeps the id it was given.
        assert_eq!(std::fs::read_to_string(paths.config_file()).unwrap(), text);
    }

    #[test]
    fn adopting_writes_the_stores_id_into_config_and_keeps_its_comments() {
        let (_dir, paths) = home();
        let user = first_open(&paths);
        let other = UserId::new();
        std::fs::write(
            paths.config_file(),
            format!("# my notes\n[profile]\nname = \"me\"\nuser_id = \"{other}\"\n"),
        )
        .unwrap();
        let store = Store::open(&paths.database_file()).unwrap();
        let mut config = Config::load(&paths).unwrap();
        let got = settle_user(&paths, &mut config, true, &store, true).unwrap();
        assert_eq!(got, user);
        assert_eq!(config.profile.user_id, Some(user));
        let text = std::fs::read_to_string(paths.config_file()).unwrap();
        assert!(text.contains("# my notes"), "{text}");
        assert!(text.contains("name = \"me\""), "{text}");
        assert_eq!(config_user(&paths), Some(user));
    }

    #[test]
    fn an_emptied_or_missing_store_beside_objects_and_job_folders_is_an_error() {
        let (_dir, paths) = home();
        first_open(&paths);
        let obj = paths.objects_dir().join("lora-datasets/u/d.jsonl");
        std::fs::create_dir_all(obj.parent().unwrap()).unwrap();
        std::fs::write(&obj, "{}").unwrap();
        std::fs::create_dir_all(paths.jobs_dir().join("job-1")).unwrap();
        std::fs::create_dir_all(paths.jobs_dir().join("job-2")).unwrap();
        let db = paths.database_file();
        std::fs::write(&db, "").unwrap();
        let err = Engine::open(paths.clone()).err().unwrap();
        match &err {
            EngineError::StoreMissing { state, found, .. } => {
                assert_eq!(*state, "is empty (0 bytes)");
                assert_eq!((found.objects, found.job_folders), (1, 2));
            }
            other => panic!("{other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains(&db.display().to_string()), "{msg}");
        assert!(msg.contains("1 stored object(s)"), "{msg}");
        assert!(msg.contains("2 job folder(s)"), "{msg}");
        assert!(msg.contains("backup restore"), "{msg}");
        // Nothing was made afresh.
        assert_eq!(std::fs::metadata(&db).unwrap().len(), 0);
        std::fs::remove_file(&db).unwrap();
        let err = Engine::open(paths.clone()).err().unwrap();
        assert!(err.to_string().contains("is missing"), "{err}");
        assert!(!db.exists());
    }

    #[test]
    fn a_store_that_predates_the_record_and_a_lost_config_names_the_owners() {
        let (_dir, paths) = home();
        let owner = UserId::new();
        {
            let store = Store::open(&paths.database_file()).unwrap();
            let d = crate::store::tests::dataset(owner, "old", DatasetStatus::Ready);
            store.put(&d).unwrap();
        }
        let err = Engine::open(paths.clone()).err().unwrap();
        assert!(matches!(err, EngineError::ProfileUnknown { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&format!("{owner} (1 records)")),
            "{err}"
        );
        // Naming the owner in config settles it, and the store records it from then on.
        std::fs::write(
            paths.config_file(),
            format!("[profile]\nuser_id = \"{owner}\"\n"),
        )
        .unwrap();
        let engine = Engine::open(paths.clone()).unwrap();
        assert_eq!(engine.profile_user(), owner);
        assert_eq!(engine.store().profile_user().unwrap(), Some(owner));
    }
}
