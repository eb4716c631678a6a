//! The embedded store: redb tables of records in their versioned stored form (the `stored`
//! module: bincode of `stored::v1::DatasetV1` and the like, never of a domain type), each value
//! with a CRC32 (the
//! `checksum` module; a damaged record is left out of lists and moved to quarantine, the
//! `quarantine` module), secondary indexes kept in the same write transaction, a schema
//! version with an upgrade path, and the change log: every committed change gets a sequence
//! number in the same transaction (an outbox), and is then published to subscribers. One
//! process owns the file; another gets a message naming the holder.

mod auth;
mod blocking;
pub use blocking::off_runtime;
pub mod backup;
mod calibration;
mod changelog;
mod checksum;
mod evaluations;
mod guards;
mod handle;
mod holder;
mod identity;

pub use auth::TokenRecord;
pub use changelog::LogBounds;

mod keys;
mod quarantine;
mod records;
mod scan;
mod schema;
pub mod stored;
mod sweeps;
mod webhooks;
pub use webhooks::StoredDelivery;
mod uploads;

pub use checksum::describe_key;
use checksum::encode_record;
use quarantine::Seen;
pub use quarantine::{CorruptRecord, QuarantinedRecord};

pub use scan::Chunk;

pub use records::Record;
use records::*;

use crate::domain::*;
use crate::events::{EngineEvent, Sequenced};
use crate::ids::*;
use redb::{ReadableTable, ReadableTableMetadata, TableHandle, WriteTransaction};
use serde::{Serialize, de::DeserializeOwned};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::broadcast;

pub use schema::SCHEMA_VERSION;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the store {} is in use by another BrightRun process ({holder}); close it or wait for it to finish",
        path.display()
    )]
    Locked { path: PathBuf, holder: String },
    #[error("database error: {0}")]
    Db(#[from] redb::Error),
    #[error("cannot decode a record in table `{table}`: {message}")]
    Decode { table: String, message: String },
    /// One record's value is damaged: its checksum does not match, or it does not decode.
    /// Lists leave it out; reading it by id answers this. `id` is the record's id (a metrics
    /// point's job and step, other keys in hex).
    #[error(
        "the record {id} in table `{table}` is damaged ({problem}); lists leave it out, and `brightrun doctor --repair` moves it to quarantine"
    )]
    Corrupt {
        table: String,
        id: String,
        problem: String,
    },
    #[error(
        "the store was written by a newer BrightRun (schema {found}, this one knows up to {supported}); upgrade BrightRun"
    )]
    SchemaTooNew { found: u64, supported: u64 },
    /// The file cannot be used as a store: damaged, not a store at all, unreadable. `problem`
    /// says what is wrong with it, `advice` what the person can do.
    #[error("the store {} {problem}; {advice}", path.display())]
    Unreadable {
        path: PathBuf,
        problem: String,
        advice: &'static str,
    },
    /// A write found the store's file system full; nothing of it was committed.
    #[error("cannot write the store {}: {problem}; nothing was changed: free some space there and try again", path.display())]
    Full { path: PathBuf, problem: String },
    /// The blocking-pool task running store work did not finish (it panicked, or the
    /// runtime is shutting down): nothing it did after its last commit was kept.
    #[error("the store's worker task failed: {0}")]
    Worker(String),
    #[error("no backup `{id}` in {}; `brightrun backup list` shows them", dir.display())]
    NoBackup { id: String, dir: PathBuf },
    #[error("cannot create {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Converts any redb error into ours.
fn db<E: Into<redb::Error>>(e: E) -> StoreError {
    StoreError::Db(e.into())
}

const ENCODING: bincode::config::Configuration = bincode::config::standard();

/// bincode bytes of a stored type (never of a domain type: see [`stored`]).
pub(crate) fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(v, ENCODING).expect("records always encode")
}

/// A value of an engine-private table (no checksum), decoded through its stored type.
pub(crate) fn decode_stored<T: stored::Persisted>(
    table: &str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    decode::<T::Stored>(table, bytes).map(T::from_stored)
}

/// A stored type's value decoded from its bincode bytes.
pub(crate) fn decode<T: DeserializeOwned>(table: &str, bytes: &[u8]) -> Result<T, StoreError> {
    bincode::serde::decode_from_slice(bytes, ENCODING)
        .map(|(v, _)| v)
        .map_err(|e| StoreError::Decode {
            table: table.to_string(),
            message: e.to_string(),
        })
}

/// Which slice of a newest-first list to return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    pub offset: usize,
    pub limit: usize,
}

impl Page {
    pub const ALL: Page = Page {
        offset: 0,
        limit: usize::MAX,
    };
    pub fn first(limit: usize) -> Self {
        Self { offset: 0, limit }
    }
}

/// How many changes a slow subscriber may fall behind before it must catch up from the log.
const CHANGE_CHANNEL: usize = 8192;
/// Live events (logs, progress) buffered per subscriber; older ones are dropped.
const LIVE_CHANNEL: usize = 4096;

#[derive(Clone)]
pub struct Store {
    db: Arc<handle::DbHandle>,
    changes: broadcast::Sender<Arc<Sequenced>>,
    live: broadcast::Sender<EngineEvent>,
    path: PathBuf,
    /// The lock file naming this process, held while any clone of the store lives.
    _holder: Arc<holder::Holder>,
    /// Records found corrupt by reads since the last quarantine pass, so that pass moves them
    /// even when their checksum happens to match (a value that does not decode).
    seen: Seen,
}

impl Store {
    /// Opens (or creates) the store at `path`, upgrading its schema when it is older.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            crate::private::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let lock_path = path.with_extension("lock");
        if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
            return Err(unreadable(
                path,
                "is a directory, not a database file".into(),
                MOVE_ASIDE,
            ));
        }
        let holder = holder::acquire(&lock_path).map_err(|holder| StoreError::Locked {
            path: path.to_path_buf(),
            holder,
        })?;
        // redb's debug builds assert on some inconsistencies a damaged file can hold; a damaged
        // store must be an error that names it, never a crash.
        let created = std::panic::catch_unwind(|| handle::create(path)).map_err(|panic| {
            unreadable(
                path,
                format!("is damaged ({})", panic_text(&panic)),
                DAMAGED,
            )
        })?;
        let db = match created {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                let holder = std::fs::read_to_string(&lock_path)
                    .map(|s| s.trim().to_string())
                    .unwrap_or_else(|_| "unknown process".into());
                return Err(StoreError::Locked {
                    path: path.to_path_buf(),
                    holder,
                });
            }
            Err(e) => return Err(open_error(path, e)),
        };
        // redb takes no mode; narrow the file it made (or an older 0644 one) to 0600.
        if let Err(source) = crate::private::restrict_file(path) {
            return Err(StoreError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
        let store = Self {
            db: Arc::new(handle::DbHandle::new(path.to_path_buf(), db)),
            _holder: Arc::new(holder),
            changes: broadcast::channel(CHANGE_CHANNEL).0,
            live: broadcast::channel(LIVE_CHANNEL).0,
            path: path.to_path_buf(),
            seen: Seen::default(),
        };
        // The first reads touch the tables' roots: a damaged page shows here, not in create().
        let upgraded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store.upgrade()))
            .map_err(|panic| {
            unreadable(
                path,
                format!("is damaged ({})", panic_text(&panic)),
                DAMAGED,
            )
        })?;
        match upgraded {
            Ok(()) => Ok(store),
            Err(StoreError::Db(e)) => Err(unreadable(path, describe_db_error(&e), DAMAGED)),
            Err(StoreError::Decode { table, message }) => Err(unreadable(
                path,
                format!("holds a record it cannot decode in table `{table}` ({message})"),
                DAMAGED,
            )),
            Err(e) => Err(e),
        }
    }

    /// Brings the schema up to date, backing the store up first when an older one is found,
    /// so an upgrade that goes wrong (or a BrightRun that must be downgraded) loses nothing.
    fn upgrade(&self) -> Result<(), StoreError> {
        let found = self
            .db
            .with(|d| Ok(schema::read_version(d)))
            .map_err(db)??;
        if found != 0 && found < SCHEMA_VERSION {
            let b = self.backup(&format!("before-upgrade-from-v{found}"))?;
            tracing::info!(
                "upgrading the store from schema {found} to {SCHEMA_VERSION}; the old one is kept as {}",
                b.path.display()
            );
        }
        self.db.with(|d| Ok(schema::upgrade(d))).map_err(db)?
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A new receiver of every change committed from now on, with its seq. To miss nothing,
    /// subscribe first and then read the log ([`Store::changes_after`]); see
    /// [`crate::api`]'s change feed, which does exactly that.
    pub fn subscribe_changes(&self) -> broadcast::Receiver<Arc<Sequenced>> {
        self.changes.subscribe()
    }

    /// A new receiver of live events (logs, progress, backend health) from now on.
    pub fn subscribe_live(&self) -> broadcast::Receiver<EngineEvent> {
        self.live.subscribe()
    }

    /// Publishes an event that is not a record change (progress, logs).
    pub fn publish(&self, event: EngineEvent) {
        debug_assert!(!event.is_change(), "record changes go through write()");
        let _ = self.live.send(event);
    }

    /// Runs `f` in one write transaction. Every record change it makes is appended to the change
    /// log in the same transaction; on commit, the changes are published with their seqs.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&mut Writer<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let committed = (|| {
            let txn = self.db.begin_write().map_err(db)?;
            let mut writer = Writer {
                txn: &txn,
                events: Vec::new(),
                seen: &self.seen,
            };
            let out = f(&mut writer)?;
            let events = std::mem::take(&mut writer.events);
            drop(writer);
            let (changes, live) = changelog::append(&txn, events)?;
            txn.commit().map_err(db)?;
            Ok((out, changes, live))
        })();
        let (out, changes, live) = committed.map_err(|e| match e {
            // A write latched as failed earlier reports "previous I/O error": when the disk
            // is (still) full, that is what it means.
            StoreError::Db(e)
                if crate::space::is_full(&e)
                    || (matches!(e, redb::Error::PreviousIo)
                        && crate::space::free_bytes(&self.path).is_some_and(|b| b < 1 << 20)) =>
            {
                StoreError::Full {
                    problem: crate::space::describe_full(&self.path),
                    path: self.path.clone(),
                }
            }
            e => e,
        })?;
        for c in changes {
            let _ = self.changes.send(c);
        }
        for e in live {
            let _ = self.live.send(e);
        }
        Ok(out)
    }

    /// Stores one record (insert or update) in its own transaction.
    pub fn put<R: Record>(&self, record: &R) -> Result<(), StoreError> {
        self.write(|w| w.put(record))
    }

    pub fn get<R: Record>(&self, key: &[u8]) -> Result<Option<R>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = match txn.open_table(R::TABLE) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(db(e)),
        };
        match table.get(key).map_err(db)? {
            Some(v) => self.seen.decode(R::TABLE.name(), key, v.value()).map(Some),
            None => Ok(None),
        }
    }

    pub fn dataset(&self, id: DatasetId) -> Result<Option<Dataset>, StoreError> {
        self.get(&id.bytes())
    }
    pub fn job(&self, id: JobId) -> Result<Option<TrainingJob>, StoreError> {
        self.get(&id.bytes())
    }
    pub fn artifact(&self, id: ArtifactId) -> Result<Option<ModelArtifact>, StoreError> {
        self.get(&id.bytes())
    }
    pub fn notification(&self, id: NotificationId) -> Result<Option<Notification>, StoreError> {
        self.get(&id.bytes())
    }

    /// Records whose index key starts with `prefix`, newest (highest key) first.
    fn list_by<R: Record>(
        &self,
        index: Bytes,
        prefix: &[u8],
        page: Page,
        keep: impl Fn(&R) -> bool,
    ) -> Result<Vec<R>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let (idx, table) = match (txn.open_table(index), txn.open_table(R::TABLE)) {
            (Ok(i), Ok(t)) => (i, t),
            (Err(redb::TableError::TableDoesNotExist(_)), _)
            | (_, Err(redb::TableError::TableDoesNotExist(_))) => return Ok(Vec::new()),
            (Err(e), _) | (_, Err(e)) => return Err(db(e)),
        };
        let end = keys::prefix_end(prefix);
        let range = match &end {
            Some(end) => idx.range::<&[u8]>(prefix..end.as_slice()),
            None => idx.range::<&[u8]>(prefix..),
        }
        .map_err(db)?;
        let mut out = Vec::new();
        let mut skipped = 0;
        for entry in range.rev() {
            let (k, _) = entry.map_err(db)?;
            let id = keys::trailing_id(k.value());
            let Some(v) = table.get(id.as_slice()).map_err(db)? else {
                continue;
            };
            let Some(record) = self.seen.skip_corrupt(R::TABLE.name(), &id, v.value())? else {
                continue;
            };
            if !keep(&record) {
                continue;
            }
            if skipped < page.offset {
                skipped += 1;
                continue;
            }
            out.push(record);
            if out.len() >= page.limit {
                break;
            }
        }
        Ok(out)
    }

    /// A user's datasets, newest first, without soft-deleted ones.
    pub fn datasets(
        &self,
        user: UserId,
        status: Option<DatasetStatus>,
        page: Page,
    ) -> Result<Vec<Dataset>, StoreError> {
        let live = |d: &Dataset| d.deleted_at.is_none();
        match status {
            Some(s) => self.list_by(
                DATASETS_BY_USER_STATUS,
                &keys::join(&[&user.bytes(), &[s as u8]]),
                page,
                live,
            ),
            None => self.list_by(DATASETS_BY_USER, &user.bytes(), page, live),
        }
    }

    /// A user's jobs, newest first.
    pub fn jobs(
        &self,
        user: UserId,
        status: Option<JobStatus>,
        page: Page,
    ) -> Result<Vec<TrainingJob>, StoreError> {
        match status {
            Some(s) => self.list_by(
                JOBS_BY_USER_STATUS,
                &keys::join(&[&user.bytes(), &[s as u8]]),
                page,
                |_| true,
            ),
            None => self.list_by(JOBS_BY_USER, &user.bytes(), page, |_| true),
        }
    }

    /// Jobs of every user in `status`, oldest queued first (the dispatch order).
    pub fn jobs_in_status(
        &self,
        status: JobStatus,
        limit: usize,
    ) -> Result<Vec<TrainingJob>, StoreError> {
        let mut all =
            self.list_by::<TrainingJob>(JOBS_BY_STATUS, &[status as u8], Page::ALL, |_| true)?;
        all.reverse();
        all.truncate(limit);
        Ok(all)
    }

    /// Jobs that use a dataset.
    pub fn jobs_for_dataset(&self, dataset: DatasetId) -> Result<Vec<TrainingJob>, StoreError> {
        self.list_by(JOBS_BY_DATASET, &dataset.bytes(), Page::ALL, |_| true)
    }

    pub fn artifacts(&self, user: UserId, page: Page) -> Result<Vec<ModelArtifact>, StoreError> {
        self.list_by(
            ARTIFACTS_BY_USER,
            &user.bytes(),
            page,
            |a: &ModelArtifact| a.deleted_at.is_none(),
        )
    }

    pub fn artifact_for_job(&self, job: JobId) -> Result<Option<ModelArtifact>, StoreError> {
        Ok(self
            .list_by(ARTIFACTS_BY_JOB, &job.bytes(), Page::first(1), |_| true)?
            .pop())
    }

    pub fn cost_records(&self, user: UserId, page: Page) -> Result<Vec<CostRecord>, StoreError> {
        self.list_by(COSTS_BY_USER, &user.bytes(), page, |_| true)
    }

    pub fn notifications(
        &self,
        user: UserId,
        unread_only: bool,
        page: Page,
    ) -> Result<Vec<Notification>, StoreError> {
        self.list_by(
            NOTIFICATIONS_BY_USER,
            &user.bytes(),
            page,
            |n: &Notification| !unread_only || !n.read,
        )
    }

    pub fn checkpoints(&self, job: JobId) -> Result<Vec<Checkpoint>, StoreError> {
        let mut v = self.list_by(CHECKPOINTS_BY_JOB, &job.bytes(), Page::ALL, |_| true)?;
        v.reverse();
        Ok(v)
    }

    /// A job's metrics points with `from <= step`, in step order, at most `limit`.
    pub fn metrics(
        &self,
        job: JobId,
        from_step: u64,
        limit: usize,
    ) -> Result<Vec<MetricsPoint>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = match txn.open_table(METRICS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(db(e)),
        };
        let start = keys::join(&[&job.bytes(), &from_step.to_be_bytes()]);
        let end = keys::prefix_end(&job.bytes()).expect("a 16-byte id has an end");
        let mut out = Vec::new();
        for entry in table
            .range::<&[u8]>(start.as_slice()..end.as_slice())
            .map_err(db)?
        {
            let (k, v) = entry.map_err(db)?;
            if let Some(p) = self
                .seen
                .skip_corrupt(METRICS.name(), k.value(), v.value())?
            {
                out.push(p);
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// How many index entries start with `prefix` (keys only: no record is decoded).
    fn count_by(&self, index: Bytes, prefix: &[u8]) -> Result<usize, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let idx = match txn.open_table(index) {
            Ok(i) => i,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
            Err(e) => return Err(db(e)),
        };
        let end = keys::prefix_end(prefix);
        let range = match &end {
            Some(end) => idx.range::<&[u8]>(prefix..end.as_slice()),
            None => idx.range::<&[u8]>(prefix..),
        }
        .map_err(db)?;
        Ok(range.count())
    }

    /// A counter of [`COUNTS`] (0 when never counted).
    fn counter(&self, key: &[u8]) -> Result<usize, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        match txn.open_table(COUNTS) {
            Ok(t) => Ok(t.get(key).map_err(db)?.map_or(0, |v| v.value() as usize)),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
            Err(e) => Err(db(e)),
        }
    }

    /// How many jobs a user has (in `status`, when given). One lookup: the count is kept in
    /// the write transactions that add or move jobs.
    pub fn count_jobs(&self, user: UserId, status: Option<JobStatus>) -> Result<usize, StoreError> {
        self.counter(&count_key(COUNT_JOBS, &user, status.map(|s| s as u8)))
    }

    /// How many datasets a user has that are not deleted (in `status`, when given).
    pub fn count_datasets(
        &self,
        user: UserId,
        status: Option<DatasetStatus>,
    ) -> Result<usize, StoreError> {
        self.counter(&count_key(COUNT_DATASETS, &user, status.map(|s| s as u8)))
    }

    /// How many jobs of every user are in `status` (metrics).
    pub fn count_jobs_in_status(&self, status: JobStatus) -> Result<usize, StoreError> {
        self.count_by(JOBS_BY_STATUS, &[status as u8])
    }

    /// How many notifications a user has (unread ones only, when asked).
    pub fn count_notifications(
        &self,
        user: UserId,
        unread_only: bool,
    ) -> Result<usize, StoreError> {
        if unread_only {
            Ok(self.notifications(user, true, Page::ALL)?.len())
        } else {
            self.count_by(NOTIFICATIONS_BY_USER, &user.bytes())
        }
    }

    /// Number of records in a record type's table.
    pub fn count<R: Record>(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        match txn.open_table(R::TABLE) {
            Ok(t) => t.len().map_err(db),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
            Err(e) => Err(db(e)),
        }
    }

    /// The schema version recorded in the file.
    pub fn schema_version(&self) -> Result<u64, StoreError> {
        self.db.with(|d| Ok(schema::read_version(d))).map_err(db)?
    }
}

/// What to do about a damaged store file.
const DAMAGED: &str = "keep a copy of it, then put the latest backup in its place (`brightrun backup list`, then `brightrun backup restore latest` or an id)";
/// What to do about a path that is not a store at all.
const MOVE_ASIDE: &str =
    "move it aside, or put a backup in its place with `brightrun backup restore latest`";
/// What to do about a store this user may not open.
const PERMISSION: &str =
    "it must belong to you and be readable and writable by you (mode 0600); fix its owner or mode";

fn unreadable(path: &Path, problem: String, advice: &'static str) -> StoreError {
    StoreError::Unreadable {
        path: path.to_path_buf(),
        problem,
        advice,
    }
}

/// A failed open as a sentence about the file and what to do.
fn open_error(path: &Path, e: redb::DatabaseError) -> StoreError {
    use redb::DatabaseError as D;
    match e {
        D::UpgradeRequired(v) => unreadable(
            path,
            format!("is in redb file format {v}, which this BrightRun cannot read"),
            "open it once with the BrightRun that wrote it and make a backup, or restore a backup made by this one (`brightrun backup restore`)",
        ),
        D::Storage(redb::StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            unreadable(
                path,
                "cannot be opened: permission denied".into(),
                PERMISSION,
            )
        }
        D::Storage(redb::StorageError::Io(io)) if io.kind() == std::io::ErrorKind::InvalidData => {
            // Another file put here, or the store with its header overwritten: either way
            // a backup is what brings the records back.
            unreadable(
                path,
                format!("is not a store, or its header is damaged ({io})"),
                DAMAGED,
            )
        }
        other => {
            let e: redb::Error = other.into();
            unreadable(path, describe_db_error(&e), DAMAGED)
        }
    }
}

fn describe_db_error(e: &redb::Error) -> String {
    match e {
        redb::Error::Corrupted(m) => format!("is damaged ({m})"),
        redb::Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "is cut short (truncated)".into()
        }
        redb::Error::Io(io) => format!("cannot be read ({io})"),
        other => format!("cannot be opened ({other})"),
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "an internal check failed".into())
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Adds `delta` to a counter (never below 0).
pub(crate) fn add_count(
    counts: &mut redb::Table<&[u8], u64>,
    key: &[u8],
    delta: i64,
) -> Result<(), StoreError> {
    let n = counts.get(key).map_err(db)?.map_or(0, |v| v.value());
    let n = n.saturating_add_signed(delta);
    if n == 0 {
        counts.remove(key).map_err(db)?;
    } else {
        counts.insert(key, n).map_err(db)?;
    }
    Ok(())
}

/// Changes inside one write transaction. Events are published only if it commits.
pub struct Writer<'t> {
    txn: &'t WriteTransaction,
    events: Vec<EngineEvent>,
    seen: &'t Seen,
}

impl Writer<'_> {
    /// A record by key. A corrupt one is an error (and remembered for quarantine): a change
    /// decided from a damaged record, or one that replaces it without moving its index
    /// entries, would be worse than none.
    pub fn get<R: Record>(&self, key: &[u8]) -> Result<Option<R>, StoreError> {
        let table = self.txn.open_table(R::TABLE).map_err(db)?;
        match table.get(key).map_err(db)? {
            Some(v) => self.seen.decode(R::TABLE.name(), key, v.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Inserts or replaces a record and moves its index entries and counters.
    pub fn put<R: Record>(&mut self, record: &R) -> Result<(), StoreError> {
        let key = record.key();
        let old: Option<R> = self.get(&key)?;
        if let Some(old) = &old {
            for (index, k) in old.index_keys() {
                self.txn
                    .open_table(index)
                    .map_err(db)?
                    .remove(k.as_slice())
                    .map_err(db)?;
            }
        }
        let (before, after) = (
            old.as_ref().map(Record::counters).unwrap_or_default(),
            record.counters(),
        );
        if before != after {
            let mut counts = self.txn.open_table(COUNTS).map_err(db)?;
            for k in before.iter().filter(|k| !after.contains(k)) {
                add_count(&mut counts, k, -1)?;
            }
            for k in after.iter().filter(|k| !before.contains(k)) {
                add_count(&mut counts, k, 1)?;
            }
        }
        for (index, k) in record.index_keys() {
            self.txn
                .open_table(index)
                .map_err(db)?
                .insert(k.as_slice(), [].as_slice())
                .map_err(db)?;
        }
        self.txn
            .open_table(R::TABLE)
            .map_err(db)?
            .insert(key.as_slice(), encode_record(record).as_slice())
            .map_err(db)?;
        self.events.push(record.clone().into_event());
        Ok(())
    }

    /// Stores metrics points; a step already stored for the job is replaced, never duplicated.
    /// Returns how many were new.
    pub fn put_metrics(&mut self, points: &[MetricsPoint]) -> Result<usize, StoreError> {
        if points.is_empty() {
            return Ok(0);
        }
        let mut table = self.txn.open_table(METRICS).map_err(db)?;
        let mut new = 0;
        for p in points {
            let k = metric_key(p);
            if table
                .insert(k.as_slice(), encode_record(p).as_slice())
                .map_err(db)?
                .is_none()
            {
                new += 1;
            }
        }
        let job_id = points[0].job_id;
        self.events.push(EngineEvent::Metrics {
            job_id,
            points: Arc::new(points.to_vec()),
        });
        Ok(new)
    }

    /// Adds an event to publish on commit (for derived notices that are not records).
    pub fn publish_on_commit(&mut self, event: EngineEvent) {
        self.events.push(event);
    }
}

#[cfg(test)]
pub(crate) mod fixture;
#[cfg(test)]
pub(crate) mod tests;
