//! The object-store layer: buckets of files addressed by path, with size limits checked before
//! any byte is copied, atomic writes and a sha256 for everything stored. The local-folder store
//! is the embedded default; the trait is shaped for S3 (streams, presigned URLs) too.

pub mod journal;
mod local;
mod s3;
pub(crate) mod verify;

pub use local::LocalStore;
pub(crate) use local::copy_atomic_blocking;
pub use s3::S3Store;

pub use brightrun_api::storage::{
    Bucket, CheckFailure, CheckStep, ProgressFn, StorageError, check_path, object_path, ranged,
};

use async_trait::async_trait;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Handed each chunk of a file as an upload reads it (the validator, in one-pass imports);
/// returns `false` when it wants no more.
pub type ChunkTee = Box<dyn FnMut(std::sync::Arc<Vec<u8>>) -> bool + Send>;

/// What the store knows about an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    pub bucket: Bucket,
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// The size of `src`, checked to be a regular file within the bucket's `limit` before any
/// byte is copied.
pub(crate) fn check_source(
    src: &Path,
    meta: &std::fs::Metadata,
    limit: Option<(u64, Bucket)>,
) -> Result<u64, StorageError> {
    if !meta.is_file() {
        return Err(StorageError::Io {
            action: "reading",
            path: src.to_path_buf(),
            source: std::io::Error::other("not a regular file"),
        });
    }
    let total = meta.len();
    if let Some((limit, bucket)) = limit
        && total > limit
    {
        return Err(StorageError::TooLarge {
            what: src.display().to_string(),
            size: total,
            limit,
            bucket,
        });
    }
    Ok(total)
}

#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// `local` or `s3`, for the status bar and `config show`.
    fn kind(&self) -> &'static str;

    /// Copies a local file into the store. The size limit is checked before any byte moves;
    /// the object appears whole or not at all.
    async fn put_file(
        &self,
        bucket: Bucket,
        path: &str,
        src: &Path,
        progress: ProgressFn<'_>,
    ) -> Result<StoredObject, StorageError>;

    /// As [`ObjectStore::put_file`], handing each chunk read to `tee` as well, so one read of
    /// the source serves hashing, storing and validating. Returns whether `tee` was fed; a
    /// store that cannot feed it returns `false` and the caller reads the object back.
    async fn put_file_tee(
        &self,
        bucket: Bucket,
        path: &str,
        src: &Path,
        progress: ProgressFn<'_>,
        tee: ChunkTee,
    ) -> Result<(StoredObject, bool), StorageError> {
        drop(tee);
        Ok((self.put_file(bucket, path, src, progress).await?, false))
    }

    /// Stores what `reader` yields (an upload's body) at `path`, atomically, hashing as it
    /// goes; refused as soon as it passes the bucket's size limit.
    async fn put_reader(
        &self,
        bucket: Bucket,
        path: &str,
        reader: &mut (dyn tokio::io::AsyncRead + Send + Unpin),
        progress: ProgressFn<'_>,
    ) -> Result<StoredObject, StorageError>;

    /// Copies an object to a local file (atomically), returning its size and sha256.
    async fn get_to_file(
        &self,
        bucket: Bucket,
        path: &str,
        dest: &Path,
        progress: ProgressFn<'_>,
    ) -> Result<StoredObject, StorageError>;

    /// A streaming reader over an object.
    async fn open(
        &self,
        bucket: Bucket,
        path: &str,
    ) -> Result<Box<dyn tokio::io::AsyncRead + Send + Unpin>, StorageError>;

    /// Size of an object, or None if absent.
    async fn size(&self, bucket: Bucket, path: &str) -> Result<Option<u64>, StorageError>;

    async fn delete(&self, bucket: Bucket, path: &str) -> Result<(), StorageError>;

    /// Where the object lies on this machine's disk, when the store is a local folder (lets the
    /// validator and the local trainer read it in place).
    fn local_path(&self, bucket: Bucket, path: &str) -> Option<PathBuf>;

    /// A URL anyone holding it may GET the object from, for remote trainers. None when the
    /// store has no URLs (the local folder store).
    async fn presign_get(
        &self,
        bucket: Bucket,
        path: &str,
        ttl: Duration,
    ) -> Result<Option<String>, StorageError>;

    /// A URL a remote trainer may PUT an object to.
    async fn presign_put(
        &self,
        bucket: Bucket,
        path: &str,
        ttl: Duration,
    ) -> Result<Option<String>, StorageError>;

    /// `brightrun storage check`: each step with its verdict.
    async fn check(&self, create_buckets: bool) -> Vec<CheckStep>;

    /// Whether the store answers now: cheap, for the status bar.
    async fn reachable(&self) -> bool {
        true
    }

    /// Run when the engine starts: cleans up after uploads a previous run left unfinished
    /// (the S3 store aborts those older than its limit). Returns how many it handled.
    async fn resume_uploads(&self) -> Result<usize, StorageError> {
        Ok(0)
    }
}
