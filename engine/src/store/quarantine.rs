//! Corrupt records: remembered when a read meets one, found by a checksum pass over every
//! record table, and moved into the `quarantined_records` table with their raw bytes, so one
//! damaged record never makes a list, a count or the dashboard fail, and its bytes are kept
//! for a person to look at (a backup may also hold a good copy).
//!
//! A quarantined record leaves its table, its index entries (those whose key ends with its
//! id) and the counters (rebuilt from the records left). No change-log entry is written: the
//! record did not change, it became unreadable, and a consumer's copy (the Postgres mirror's)
//! is the last good one.

use super::checksum::{describe_key, unseal};
use super::records::*;
use super::stored::Persisted;
use super::{Store, StoreError, db, decode, encode, keys};
use crate::domain::{Timestamp, now};
use redb::{ReadableTable, TableHandle, WriteTransaction};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// A record whose value is damaged, still in its table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CorruptRecord {
    /// The table it is in (`datasets`, `training_jobs`, …).
    pub table: String,
    /// Its id (a metrics point's job and step; other keys in hex).
    pub id: String,
    /// What is wrong with it.
    pub problem: String,
}

/// A record moved into quarantine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct QuarantinedRecord {
    pub table: String,
    pub id: String,
    /// How many bytes its raw value has (the bytes stay in the quarantine table).
    pub size_bytes: usize,
    pub quarantined_at: Timestamp,
    pub problem: String,
}

use super::stored::Quarantined;

/// Records by (table name, key).
type RecordSet = BTreeSet<(String, Vec<u8>)>;

/// Records reads found corrupt since the last quarantine pass.
#[derive(Clone, Default)]
pub(crate) struct Seen(Arc<Mutex<RecordSet>>);

impl Seen {
    fn set(&self) -> std::sync::MutexGuard<'_, RecordSet> {
        // A panic elsewhere while holding the lock leaves a set that is still a valid set.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Decodes a record value, remembering it when it is corrupt.
    pub(crate) fn decode<T: Persisted>(
        &self,
        table: &str,
        key: &[u8],
        bytes: &[u8],
    ) -> Result<T, StoreError> {
        let decoded = super::checksum::decode_record(table, key, bytes);
        if let Err(e @ StoreError::Corrupt { .. }) = &decoded {
            // Logged once per record: a dashboard lists every second.
            if self.set().insert((table.to_string(), key.to_vec())) {
                tracing::error!("{e}");
            }
        }
        decoded
    }

    /// Decodes a record value for a list: a corrupt one is remembered and left out.
    pub(crate) fn skip_corrupt<T: Persisted>(
        &self,
        table: &str,
        key: &[u8],
        bytes: &[u8],
    ) -> Result<Option<T>, StoreError> {
        match self.decode(table, key, bytes) {
            Ok(v) => Ok(Some(v)),
            Err(StoreError::Corrupt { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn snapshot(&self) -> RecordSet {
        self.set().clone()
    }

    fn forget(&self, checked: &RecordSet) {
        self.set().retain(|k| !checked.contains(k));
    }
}

/// A corrupt record found by a pass, with its raw value.
struct Found {
    table: String,
    key: Vec<u8>,
    raw: Vec<u8>,
    problem: String,
}

/// What is wrong with one value of `rt`, if anything: its checksum, or (for a record a read
/// found corrupt) its full decode. Checking the checksum only keeps the pass fast.
fn problem_with(rt: &RecordTable, key: &[u8], raw: &[u8], seen: &RecordSet) -> Option<String> {
    if let Err(problem) = unseal(raw) {
        return Some(problem);
    }
    let name = rt.def.name();
    if !seen.contains(&(name.to_string(), key.to_vec())) {
        return None;
    }
    match (rt.check)(name, key, raw) {
        Ok(()) => None,
        Err(StoreError::Corrupt { problem, .. }) => Some(problem),
        Err(e) => Some(e.to_string()),
    }
}

/// Every corrupt value of one table.
fn find_in<T: ReadableTable<&'static [u8], &'static [u8]>>(
    rt: &RecordTable,
    table: &T,
    seen: &RecordSet,
) -> Result<Vec<Found>, StoreError> {
    let mut found = Vec::new();
    for entry in table.iter().map_err(db)? {
        let (k, v) = entry.map_err(db)?;
        if let Some(problem) = problem_with(rt, k.value(), v.value(), seen) {
            found.push(Found {
                table: rt.def.name().to_string(),
                key: k.value().to_vec(),
                raw: v.value().to_vec(),
                problem,
            });
        }
    }
    Ok(found)
}

/// Which record tables a quarantine pass reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    All,
    /// Every table but the metrics points.
    Listed,
}

/// The table of `RECORD_TABLES` called `name`.
fn record_table(name: &str) -> Option<&'static RecordTable> {
    RECORD_TABLES.iter().find(|rt| rt.def.name() == name)
}

/// Moves `found` into the quarantine table and removes their index entries, inside `txn`.
/// The caller rebuilds the counters.
fn move_to_quarantine(
    txn: &WriteTransaction,
    found: Vec<Found>,
) -> Result<Vec<QuarantinedRecord>, StoreError> {
    let at = now();
    let mut moved = Vec::new();
    {
        let mut q = txn.open_table(QUARANTINE).map_err(db)?;
        for f in &found {
            let value = Quarantined {
                raw: f.raw.clone(),
                at,
                problem: f.problem.clone(),
            };
            q.insert(
                (f.table.as_str(), f.key.as_slice()),
                encode(&value).as_slice(),
            )
            .map_err(db)?;
            let Some(rt) = record_table(&f.table) else {
                continue;
            };
            txn.open_table(rt.def)
                .map_err(db)?
                .remove(f.key.as_slice())
                .map_err(db)?;
            moved.push(QuarantinedRecord {
                table: f.table.clone(),
                id: describe_key(&f.table, &f.key),
                size_bytes: f.raw.len(),
                quarantined_at: at,
                problem: f.problem.clone(),
            });
            tracing::warn!(
                "moved the damaged record {} of table `{}` into quarantine ({})",
                describe_key(&f.table, &f.key),
                f.table,
                f.problem
            );
        }
    }
    for rt in &RECORD_TABLES {
        let ids: BTreeSet<[u8; 16]> = found
            .iter()
            .filter(|f| f.table == rt.def.name())
            .filter_map(|f| <[u8; 16]>::try_from(f.key.as_slice()).ok())
            .collect();
        if ids.is_empty() {
            continue;
        }
        for index in rt.indexes {
            txn.open_table(*index)
                .map_err(db)?
                .retain(|k, _| k.len() < 16 || !ids.contains(&keys::trailing_id(k)))
                .map_err(db)?;
        }
    }
    Ok(moved)
}

/// Quarantines every value of the record tables that the v4 → v5 upgrade cannot decode, and
/// gives every other one its checksum, inside the upgrade's transaction. Returns how many
/// were quarantined.
pub(crate) fn reseal_all(txn: &WriteTransaction) -> Result<usize, StoreError> {
    let mut found = Vec::new();
    for rt in &RECORD_TABLES {
        found.extend(rewrite(txn, rt, rt.reseal_legacy)?);
    }
    Ok(move_to_quarantine(txn, found)?.len())
}

/// An upgrade step for a change of stored layout: rewrites every value of the record table
/// `table` from stored type `Old` to `New` (through `Convert<New> for Old`), keeping its
/// checksum, inside the upgrade's transaction. A value that does not decode as `Old` is
/// quarantined. Returns how many were quarantined.
pub(crate) fn restore<Old, New>(txn: &WriteTransaction, table: &str) -> Result<usize, StoreError>
where
    Old: serde::de::DeserializeOwned + super::stored::Convert<New>,
    New: Serialize,
{
    let rt = record_table(table).expect("restore names a record table");
    let found = rewrite(txn, rt, |raw| {
        let body = unseal(raw)?;
        let (old, used) = bincode::serde::decode_from_slice::<Old, _>(body, super::ENCODING)
            .map_err(|e| format!("cannot decode it: {e}"))?;
        if used != body.len() {
            return Err(format!(
                "{} byte(s) left over after the record",
                body.len() - used
            ));
        }
        Ok(super::checksum::seal(encode(&old.convert())))
    })?;
    Ok(move_to_quarantine(txn, found)?.len())
}

/// Replaces every value of `rt` with `f(value)`, a chunk at a time; the values `f` refuses are
/// returned (left in place: the caller quarantines them).
fn rewrite(
    txn: &WriteTransaction,
    rt: &RecordTable,
    f: impl Fn(&[u8]) -> Result<Vec<u8>, String>,
) -> Result<Vec<Found>, StoreError> {
    /// Values rewritten per pass over a table (a pass holds them in memory).
    const CHUNK: usize = 10_000;
    let mut found = Vec::new();
    let mut table = txn.open_table(rt.def).map_err(db)?;
    let mut after: Option<Vec<u8>> = None;
    loop {
        let chunk: Vec<(Vec<u8>, Vec<u8>)> = {
            let range = match &after {
                Some(k) => table.range::<&[u8]>((
                    std::ops::Bound::Excluded(k.as_slice()),
                    std::ops::Bound::Unbounded,
                )),
                None => table.range::<&[u8]>(..),
            }
            .map_err(db)?;
            let mut chunk = Vec::new();
            for entry in range.take(CHUNK) {
                let (k, v) = entry.map_err(db)?;
                chunk.push((k.value().to_vec(), v.value().to_vec()));
            }
            chunk
        };
        let Some((last, _)) = chunk.last() else {
            break;
        };
        after = Some(last.clone());
        for (key, raw) in chunk {
            match f(&raw) {
                Ok(value) => {
                    table.insert(key.as_slice(), value.as_slice()).map_err(db)?;
                }
                Err(problem) => found.push(Found {
                    table: rt.def.name().to_string(),
                    key,
                    raw,
                    problem,
                }),
            }
        }
    }
    Ok(found)
}

impl Store {
    /// Every corrupt record still in its table: a checksum pass over every record table, and a
    /// full decode of those reads found corrupt. Reads only; see [`Store::quarantine_corrupt`].
    pub fn corrupt_records(&self) -> Result<Vec<CorruptRecord>, StoreError> {
        let seen = self.seen.snapshot();
        Ok(self
            .find_corrupt(&seen, Scope::All)?
            .into_iter()
            .map(|f| CorruptRecord {
                id: describe_key(&f.table, &f.key),
                table: f.table,
                problem: f.problem,
            })
            .collect())
    }

    fn find_corrupt(&self, seen: &RecordSet, scope: Scope) -> Result<Vec<Found>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let mut found = Vec::new();
        for rt in &RECORD_TABLES {
            if scope == Scope::Listed && rt.def.name() == METRICS.name() {
                continue;
            }
            match txn.open_table(rt.def) {
                Ok(t) => found.extend(find_in(rt, &t, seen)?),
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(db(e)),
            }
        }
        Ok(found)
    }

    /// Moves every corrupt record (see [`Store::corrupt_records`]) into the quarantine table,
    /// removes its index entries and rebuilds the counters, in one write transaction; returns
    /// what it moved. The pass reads without holding the write lock; each record it found is
    /// checked again inside the write transaction (a writer may have replaced it meanwhile).
    pub fn quarantine_corrupt(&self) -> Result<Vec<QuarantinedRecord>, StoreError> {
        self.quarantine_in(Scope::All)
    }

    /// [`Store::quarantine_corrupt`] over the tables lists and totals read, leaving out the
    /// metrics points (the bulk of a store, read one job at a time, where a corrupt point is
    /// skipped anyway): what an engine does each time it opens, so a one-shot command does not
    /// pay for reading every metric. `doctor` checks them all.
    pub fn quarantine_corrupt_listed(&self) -> Result<Vec<QuarantinedRecord>, StoreError> {
        self.quarantine_in(Scope::Listed)
    }

    fn quarantine_in(&self, scope: Scope) -> Result<Vec<QuarantinedRecord>, StoreError> {
        let seen = self.seen.snapshot();
        let candidates = self.find_corrupt(&seen, scope)?;
        if candidates.is_empty() {
            self.seen.forget(&seen);
            return Ok(Vec::new());
        }
        let txn = self.db.begin_write().map_err(db)?;
        let mut found = Vec::new();
        for c in candidates {
            let Some(rt) = record_table(&c.table) else {
                continue;
            };
            let table = txn.open_table(rt.def).map_err(db)?;
            let Some(raw) = table.get(c.key.as_slice()).map_err(db)? else {
                continue;
            };
            let raw = raw.value().to_vec();
            if let Some(problem) = problem_with(rt, &c.key, &raw, &seen) {
                found.push(Found { raw, problem, ..c });
            }
        }
        let moved = move_to_quarantine(&txn, found)?;
        if !moved.is_empty() {
            super::schema::rebuild_counts(&txn)?;
        }
        txn.commit().map_err(db)?;
        self.seen.forget(&seen);
        Ok(moved)
    }

    /// Every record in quarantine, by table and key.
    pub fn quarantined(&self) -> Result<Vec<QuarantinedRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = match txn.open_table(QUARANTINE) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(db(e)),
        };
        let mut out = Vec::new();
        for entry in table.iter().map_err(db)? {
            let (k, v) = entry.map_err(db)?;
            let (name, key) = k.value();
            let q: Quarantined = decode(QUARANTINE.name(), v.value())?;
            out.push(QuarantinedRecord {
                table: name.to_string(),
                id: describe_key(name, key),
                size_bytes: q.raw.len(),
                quarantined_at: q.at,
                problem: q.problem,
            });
        }
        Ok(out)
    }

    /// The raw bytes of a quarantined record, for tests and a person's tools.
    pub fn quarantined_bytes(
        &self,
        table: &str,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let t = match txn.open_table(QUARANTINE) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(db(e)),
        };
        match t.get((table, key)).map_err(db)? {
            Some(v) => Ok(Some(
                decode::<Quarantined>(QUARANTINE.name(), v.value())?.raw,
            )),
            None => Ok(None),
        }
    }
}
