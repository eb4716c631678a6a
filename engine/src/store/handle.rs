//! The open database, reopened after an I/O failure. redb latches a failed write (a full
//! disk): from then on every transaction fails with "previous I/O error" until the database
//! is closed and opened again. A dashboard or daemon runs for days, so the store does that
//! itself, and a write that failed because the disk was full works again once space is back.

use redb::{Database, ReadTransaction, ReadableDatabase, TransactionError, WriteTransaction};
use std::path::PathBuf;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// redb's page cache, at most: its default (1 GiB) let a daemon's memory grow to 845 MB under
/// a stream of changes and never come down. The hot records of a store (jobs, datasets, the
/// change log's tail) fit many times over.
pub const CACHE_BYTES: usize = 64 << 20;

/// Opens (or creates) the database at `path` with the store's settings.
pub(super) fn create(path: &std::path::Path) -> Result<Database, redb::DatabaseError> {
    Database::builder().set_cache_size(CACHE_BYTES).create(path)
}

pub(super) struct DbHandle {
    path: PathBuf,
    slot: RwLock<Option<Database>>,
    /// Bumped at each reopen, so two callers that saw the same failure reopen once.
    generation: AtomicU64,
}

impl DbHandle {
    pub(super) fn new(path: PathBuf, db: Database) -> Self {
        DbHandle {
            path,
            slot: RwLock::new(Some(db)),
            generation: AtomicU64::new(0),
        }
    }

    /// A read transaction; a latched I/O failure (a write that failed on a full disk) reopens
    /// the database and tries once more, so reads go on working while writes cannot.
    #[track_caller]
    pub(super) fn begin_read(&self) -> Result<ReadTransaction, TransactionError> {
        super::blocking::assert_off_runtime();
        self.reopening(|d| d.begin_read())
    }

    /// A write transaction; a latched I/O failure reopens the database and tries once more.
    #[track_caller]
    pub(super) fn begin_write(&self) -> Result<WriteTransaction, TransactionError> {
        super::blocking::assert_off_runtime();
        self.reopening(|d| d.begin_write())
    }

    /// Runs `f`; when it meets a latched I/O failure, reopens the database and runs it again.
    fn reopening<T>(
        &self,
        f: impl Fn(&Database) -> Result<T, TransactionError>,
    ) -> Result<T, TransactionError> {
        let seen = self.generation.load(Ordering::Acquire);
        match self.with(&f) {
            Err(e) if latched(&e) => {
                self.reopen(seen);
                self.with(&f)
            }
            other => other,
        }
    }

    /// Runs `f` on the open database (reopening it first if an earlier reopen failed).
    pub(super) fn with<T>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, TransactionError>,
    ) -> Result<T, TransactionError> {
        {
            let slot = self.slot.read().unwrap_or_else(|e| e.into_inner());
            if let Some(d) = slot.as_ref() {
                return f(d);
            }
        }
        self.reopen(self.generation.load(Ordering::Acquire));
        let slot = self.slot.read().unwrap_or_else(|e| e.into_inner());
        match slot.as_ref() {
            Some(d) => f(d),
            None => Err(TransactionError::Storage(redb::StorageError::PreviousIo)),
        }
    }

    /// Closes and reopens the database, unless another caller already did since `seen`.
    fn reopen(&self, seen: u64) {
        let mut slot = self.slot.write().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(Ordering::Acquire) != seen && slot.is_some() {
            return;
        }
        if let Some(old) = slot.take()
            && let Err(e) = old.close()
        {
            tracing::warn!("closing {} after an I/O error: {e}", self.path.display());
        }
        match create(&self.path) {
            Ok(db) => {
                tracing::info!("reopened {} after an I/O error", self.path.display());
                *slot = Some(db);
            }
            Err(e) => tracing::warn!("reopening {}: {e}", self.path.display()),
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

/// True for the errors that leave redb's file latched as failed.
fn latched(e: &TransactionError) -> bool {
    matches!(
        e,
        TransactionError::Storage(redb::StorageError::PreviousIo | redb::StorageError::Io(_))
    )
}
