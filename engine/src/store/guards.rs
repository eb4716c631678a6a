//! Reads inside a write transaction, for checks that must hold at the moment of the write:
//! redb runs one write transaction at a time, so a check made here cannot be overtaken by
//! another writer between the check and the change (a job queued on a dataset being deleted).

use super::records::*;
use super::{StoreError, Writer, db, keys};
use crate::domain::TrainingJob;
use crate::ids::DatasetId;
use redb::ReadableTable;

impl Writer<'_> {
    /// The jobs that use `dataset`, as this transaction sees them.
    pub fn jobs_for_dataset(&self, dataset: DatasetId) -> Result<Vec<TrainingJob>, StoreError> {
        let prefix = dataset.bytes();
        let ids: Vec<[u8; 16]> = {
            let idx = self.txn.open_table(JOBS_BY_DATASET).map_err(db)?;
            let range = match keys::prefix_end(&prefix) {
                Some(end) => idx.range::<&[u8]>(prefix.as_slice()..end.as_slice()),
                None => idx.range::<&[u8]>(prefix.as_slice()..),
            }
            .map_err(db)?;
            let mut ids = Vec::new();
            for entry in range {
                let (k, _) = entry.map_err(db)?;
                ids.push(keys::trailing_id(k.value()));
            }
            ids
        };
        let mut jobs = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(job) = self.get::<TrainingJob>(&id)? {
                jobs.push(job);
            }
        }
        Ok(jobs)
    }
}
