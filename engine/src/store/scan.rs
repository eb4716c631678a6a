//! Reading whole tables in chunks, each chunk from one read transaction together with the
//! change log's last seq at that moment: a consumer that copies everything (the Postgres
//! mirror's backfill) knows exactly which version of each record it holds, so a later change
//! from the log (a higher seq) replaces it and an earlier one never does.

use super::records::*;
use super::{Store, StoreError, db};
use crate::domain::MetricsPoint;
use redb::{ReadableTable, TableHandle};

/// One chunk of a table scan.
#[derive(Debug)]
pub struct Chunk<T> {
    pub items: Vec<T>,
    /// The key to pass as `after` for the next chunk; `None` when the table is done.
    pub next: Option<Vec<u8>>,
    /// The change log's last seq in the transaction the chunk was read in: every record in
    /// it is at least as new as that seq.
    pub seq: u64,
}

impl Store {
    /// Up to `limit` records of `R`'s table with key > `after` (from the start when `None`),
    /// in key order. Corrupt records are left out (and remembered for quarantine).
    pub fn scan<R: Record>(
        &self,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Chunk<R>, StoreError> {
        self.scan_table(R::TABLE, after, limit)
    }

    /// Up to `limit` metrics points with key (job, step) > `after`, in key order.
    pub fn scan_metrics(
        &self,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Chunk<MetricsPoint>, StoreError> {
        self.scan_table(METRICS, after, limit)
    }

    fn scan_table<T: super::stored::Persisted>(
        &self,
        table: Bytes,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Chunk<T>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let seq = match txn.open_table(super::changelog::CHANGELOG) {
            Ok(log) => log.last().map_err(db)?.map(|(k, _)| k.value()).unwrap_or(0),
            Err(redb::TableError::TableDoesNotExist(_)) => 0,
            Err(e) => return Err(db(e)),
        };
        let t = match txn.open_table(table) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => {
                return Ok(Chunk {
                    items: Vec::new(),
                    next: None,
                    seq,
                });
            }
            Err(e) => return Err(db(e)),
        };
        let range = match after {
            Some(k) => t.range::<&[u8]>((std::ops::Bound::Excluded(k), std::ops::Bound::Unbounded)),
            None => t.range::<&[u8]>(..),
        }
        .map_err(db)?;
        let mut items = Vec::new();
        let mut last = None;
        let name = table.name();
        for entry in range {
            let (k, v) = entry.map_err(db)?;
            if let Some(item) = self.seen.skip_corrupt(name, k.value(), v.value())? {
                items.push(item);
            }
            if items.len() >= limit.max(1) {
                last = Some(k.value().to_vec());
                break;
            }
        }
        Ok(Chunk {
            items,
            next: last,
            seq,
        })
    }
}
