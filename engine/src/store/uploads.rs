//! The S3 store's journal of unfinished multipart uploads, in redb: each confirmed part is
//! committed as it completes, so an upload killed half-way resumes without resending it.

use super::stored::Persisted;
use super::{Store, StoreError, db, decode_stored, encode};
use crate::storage::StorageError;
use crate::storage::journal::{DonePart, PendingUpload, UploadJournal};
use redb::{ReadableTable, TableDefinition, TableHandle};

/// `bucket/path` → the pending upload.
const UPLOADS: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("s3_multipart_uploads");

fn storage(e: StoreError) -> StorageError {
    StorageError::Other(format!("the upload journal: {e}"))
}

impl Store {
    fn pending_upload(&self, key: &str) -> Result<Option<PendingUpload>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = match txn.open_table(UPLOADS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(db(e)),
        };
        match table.get(key).map_err(db)? {
            Some(v) => Ok(Some(decode_stored(UPLOADS.name(), v.value())?)),
            None => Ok(None),
        }
    }

    fn update_upload(
        &self,
        key: &str,
        f: impl FnOnce(Option<PendingUpload>) -> Option<PendingUpload>,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        {
            let mut table = txn.open_table(UPLOADS).map_err(db)?;
            let current = match table.get(key).map_err(db)? {
                Some(v) => Some(decode_stored::<PendingUpload>(UPLOADS.name(), v.value())?),
                None => None,
            };
            match f(current) {
                Some(u) => {
                    table
                        .insert(key, encode(&u.to_stored()).as_slice())
                        .map_err(db)?;
                }
                None => {
                    table.remove(key).map_err(db)?;
                }
            }
        }
        txn.commit().map_err(db)
    }

    fn pending_uploads(&self) -> Result<Vec<PendingUpload>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = match txn.open_table(UPLOADS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(db(e)),
        };
        let mut out = Vec::new();
        for entry in table.iter().map_err(db)? {
            let (_, v) = entry.map_err(db)?;
            out.push(decode_stored(UPLOADS.name(), v.value())?);
        }
        Ok(out)
    }
}

impl UploadJournal for Store {
    fn load(&self, key: &str) -> Result<Option<PendingUpload>, StorageError> {
        self.pending_upload(key).map_err(storage)
    }
    fn begin(&self, upload: &PendingUpload) -> Result<(), StorageError> {
        let key = PendingUpload::key(upload.bucket, &upload.path);
        self.update_upload(&key, |_| Some(upload.clone()))
            .map_err(storage)
    }
    fn part_done(&self, key: &str, part: &DonePart) -> Result<(), StorageError> {
        self.update_upload(key, |u| {
            u.map(|mut u| {
                u.parts.retain(|p| p.number != part.number);
                u.parts.push(part.clone());
                u
            })
        })
        .map_err(storage)
    }
    fn finish(&self, key: &str) -> Result<(), StorageError> {
        self.update_upload(key, |_| None).map_err(storage)
    }
    fn all(&self) -> Result<Vec<PendingUpload>, StorageError> {
        self.pending_uploads().map_err(storage)
    }
}
