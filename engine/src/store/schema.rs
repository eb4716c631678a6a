//! The stored schema version and the upgrades between versions. Each upgrade runs in one write
//! transaction, so a crash mid-upgrade leaves the old version intact.
//!
//! - v1: records and the user/created, status, dataset, job and step indexes.
//! - v2: adds the user+status indexes for datasets and jobs (filtered lists); the upgrade
//!   rebuilds every index from the records.
//! - v3: adds the change log (`change_log`, `change_log_consumers`). Older BrightRuns would
//!   write records without logging them, so they are refused from v3 on. The upgrade only
//!   stamps the version: the log starts at the next change.
//! - v4: adds `record_counts` (jobs per user and per user+status, live datasets likewise),
//!   kept in the write transaction, so list totals are one lookup. Older BrightRuns would
//!   not keep them, so they are refused from v4 on. The upgrade counts the stored records.

use super::records::*;
use super::{StoreError, db, decode};
use crate::domain::*;
use redb::{Database, ReadableDatabase, ReadableTable, TableHandle, WriteTransaction};

pub const SCHEMA_VERSION: u64 = 4;
const KEY: &str = "schema_version";

pub fn read_version(db_: &Database) -> Result<u64, StoreError> {
    let txn = db_.begin_read().map_err(db)?;
    match txn.open_table(META) {
        Ok(t) => Ok(t.get(KEY).map_err(db)?.map(|v| v.value()).unwrap_or(0)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
        Err(e) => Err(db(e)),
    }
}

/// Brings the file to [`SCHEMA_VERSION`]. A new file is stamped; an older one is upgraded.
pub fn upgrade(db_: &Database) -> Result<(), StoreError> {
    let found = read_version(db_)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    let txn = db_.begin_write().map_err(db)?;
    if found == 1 {
        tracing::info!("upgrading store schema 1 → 2: rebuilding indexes");
        rebuild_indexes(&txn)?;
    }
    rebuild_counts(&txn)?;
    txn.open_table(META)
        .map_err(db)?
        .insert(KEY, SCHEMA_VERSION)
        .map_err(db)?;
    txn.commit().map_err(db)?;
    Ok(())
}

/// Empties every index and refills it from the records.
fn rebuild_indexes(txn: &WriteTransaction) -> Result<(), StoreError> {
    for index in ALL_INDEXES {
        txn.delete_table(index).map_err(db)?;
    }
    reindex::<Dataset>(txn)?;
    reindex::<TrainingJob>(txn)?;
    reindex::<ModelArtifact>(txn)?;
    reindex::<CostRecord>(txn)?;
    reindex::<Notification>(txn)?;
    reindex::<Checkpoint>(txn)?;
    Ok(())
}

/// Recounts every counter from the records.
fn rebuild_counts(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.delete_table(COUNTS).map_err(db)?;
    recount::<Dataset>(txn)?;
    recount::<TrainingJob>(txn)?;
    recount::<ModelArtifact>(txn)?;
    recount::<CostRecord>(txn)?;
    recount::<Notification>(txn)?;
    recount::<Checkpoint>(txn)?;
    Ok(())
}

fn recount<R: Record>(txn: &WriteTransaction) -> Result<(), StoreError> {
    let mut totals = std::collections::BTreeMap::<Vec<u8>, u64>::new();
    {
        let table = txn.open_table(R::TABLE).map_err(db)?;
        for entry in table.iter().map_err(db)? {
            let (_, value) = entry.map_err(db)?;
            let r: R = decode(R::TABLE.name(), value.value())?;
            for k in r.counters() {
                *totals.entry(k).or_default() += 1;
            }
        }
    }
    let mut counts = txn.open_table(COUNTS).map_err(db)?;
    for (k, n) in totals {
        let n = n + counts
            .get(k.as_slice())
            .map_err(db)?
            .map_or(0, |v| v.value());
        counts.insert(k.as_slice(), n).map_err(db)?;
    }
    Ok(())
}

fn reindex<R: Record>(txn: &WriteTransaction) -> Result<(), StoreError> {
    let records: Vec<R> = {
        let table = txn.open_table(R::TABLE).map_err(db)?;
        let mut v = Vec::new();
        for entry in table.iter().map_err(db)? {
            let (_, value) = entry.map_err(db)?;
            v.push(decode(R::TABLE.name(), value.value())?);
        }
        v
    };
    for r in &records {
        for (index, k) in r.index_keys() {
            txn.open_table(index)
                .map_err(db)?
                .insert(k.as_slice(), [].as_slice())
                .map_err(db)?;
        }
    }
    Ok(())
}

/// Writes a store as BrightRun's schema 1 wrote it, for the upgrade test.
#[cfg(test)]
pub fn write_v1(db_: &Database, datasets: &[Dataset]) -> Result<(), StoreError> {
    use super::encode;
    let txn = db_.begin_write().map_err(db)?;
    {
        let mut t = txn.open_table(DATASETS).map_err(db)?;
        let mut idx = txn.open_table(DATASETS_BY_USER).map_err(db)?;
        for d in datasets {
            t.insert(d.key().as_slice(), encode(d).as_slice())
                .map_err(db)?;
            // v1 had only the user/created index.
            let (k, _) = d
                .index_keys()
                .into_iter()
                .map(|(i, k)| (k, i))
                .next()
                .unwrap();
            idx.insert(k.as_slice(), [].as_slice()).map_err(db)?;
        }
        txn.open_table(META)
            .map_err(db)?
            .insert(KEY, 1u64)
            .map_err(db)?;
    }
    txn.commit().map_err(db)?;
    Ok(())
}
