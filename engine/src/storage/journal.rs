//! Multipart uploads in progress, kept durably (in redb, by the engine) as each part completes,
//! so an upload killed half-way resumes where it stopped instead of starting again, and one
//! nobody resumes is aborted before its parts are billed forever.

use super::{Bucket, StorageError};
use crate::domain::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// What identifies the source file of an upload: the same path, size and modification time
/// means the same bytes, so the parts already stored may be kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceStamp {
    pub path: String,
    pub size: u64,
    /// Nanoseconds since the Unix epoch.
    pub modified_ns: i128,
}

impl SourceStamp {
    pub fn of(path: &std::path::Path, meta: &std::fs::Metadata) -> Self {
        let modified_ns = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        Self {
            path: path.to_string_lossy().into(),
            size: meta.len(),
            modified_ns,
        }
    }
}

/// One part the server confirmed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DonePart {
    /// 1-based, as S3 numbers them.
    pub number: i32,
    pub size: u64,
    pub etag: String,
    /// The part's sha256 (base64) as sent with it, when the server takes checksums.
    pub checksum_sha256: Option<String>,
}

/// A multipart upload the server has started and not yet completed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingUpload {
    pub bucket: Bucket,
    pub path: String,
    pub upload_id: String,
    pub source: SourceStamp,
    pub part_size: u64,
    /// Whether parts carry sha256 checksums (decided when the upload was created).
    pub checksums: bool,
    pub parts: Vec<DonePart>,
    pub started_at: Timestamp,
}

impl PendingUpload {
    pub fn key(bucket: Bucket, path: &str) -> String {
        format!("{}/{}", bucket.name(), path)
    }
    pub fn bytes_stored(&self) -> u64 {
        self.parts.iter().map(|p| p.size).sum()
    }
}

/// Where the S3 store keeps its pending uploads. The engine's is its redb store; tests of the
/// store alone may use [`MemoryJournal`].
pub trait UploadJournal: Send + Sync {
    fn load(&self, key: &str) -> Result<Option<PendingUpload>, StorageError>;
    /// Records a new upload (or replaces a stale one under the same key).
    fn begin(&self, upload: &PendingUpload) -> Result<(), StorageError>;
    /// Adds a confirmed part; called as each part completes, before the next is counted done.
    fn part_done(&self, key: &str, part: &DonePart) -> Result<(), StorageError>;
    /// Forgets an upload (completed or aborted).
    fn finish(&self, key: &str) -> Result<(), StorageError>;
    fn all(&self) -> Result<Vec<PendingUpload>, StorageError>;
}

/// A journal that lives as long as the process: for tests of the store on its own.
#[derive(Default)]
pub struct MemoryJournal(Mutex<BTreeMap<String, PendingUpload>>);

impl UploadJournal for MemoryJournal {
    fn load(&self, key: &str) -> Result<Option<PendingUpload>, StorageError> {
        Ok(self.lock().get(key).cloned())
    }
    fn begin(&self, upload: &PendingUpload) -> Result<(), StorageError> {
        self.lock().insert(
            PendingUpload::key(upload.bucket, &upload.path),
            upload.clone(),
        );
        Ok(())
    }
    fn part_done(&self, key: &str, part: &DonePart) -> Result<(), StorageError> {
        if let Some(u) = self.lock().get_mut(key) {
            u.parts.retain(|p| p.number != part.number);
            u.parts.push(part.clone());
        }
        Ok(())
    }
    fn finish(&self, key: &str) -> Result<(), StorageError> {
        self.lock().remove(key);
        Ok(())
    }
    fn all(&self) -> Result<Vec<PendingUpload>, StorageError> {
        Ok(self.lock().values().cloned().collect())
    }
}

impl MemoryJournal {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, PendingUpload>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
