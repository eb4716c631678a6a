//! The change log (an outbox): every record change is numbered and written in the same redb
//! transaction as the change itself, so a subscriber that resumes "after seq N" misses nothing
//! and sees nothing twice, whatever crashed in between. Durable consumers (the Postgres
//! mirror) record how far they got; the log is compacted only behind all of them.

use super::stored::v5::{DatasetV5, MetricsPointV5, TrainingJobV5};
use super::stored::{Change, Convert, Persisted};
use super::{Store, StoreError, db, decode, encode};
use crate::domain::*;
use crate::events::{EngineEvent, Sequenced};
use redb::{ReadableTable, TableDefinition, TableHandle, WriteTransaction};
use std::sync::Arc;

pub const CHANGELOG: TableDefinition<'static, u64, &'static [u8]> =
    TableDefinition::new("change_log");
/// Durable consumers and the last seq each has acknowledged.
pub const CONSUMERS: TableDefinition<'static, &'static str, u64> =
    TableDefinition::new("change_log_consumers");

/// A change as the log keeps it: [`super::stored::Change`] (the record variants of
/// [`EngineEvent`] in their stored form) with its commit time.
fn encode_change(at: &Timestamp, e: &EngineEvent) -> Option<Vec<u8>> {
    let change = match e {
        EngineEvent::Dataset(d) => Change::DatasetV5(d.to_stored()),
        EngineEvent::Job(j) => Change::JobV5(j.to_stored()),
        EngineEvent::Metrics { job_id, points } => {
            Change::MetricsV5(*job_id, points.iter().map(Persisted::to_stored).collect())
        }
        EngineEvent::Artifact(a) => Change::ArtifactV4(a.to_stored()),
        EngineEvent::Cost(c) => Change::Cost(c.to_stored()),
        EngineEvent::Notification(n) => Change::Notification(n.to_stored()),
        EngineEvent::Checkpoint(c) => Change::CheckpointV3(c.to_stored()),
        EngineEvent::Sweep(s) => Change::Sweep(super::sweeps::encode_sweep(s)),
        EngineEvent::JobLog { .. }
        | EngineEvent::Progress(_)
        | EngineEvent::BackendHealth { .. } => {
            return None;
        }
    };
    Some(encode(&(at, change)))
}

fn decode_change(seq: u64, bytes: &[u8]) -> Result<Sequenced, StoreError> {
    let (at, change): (Timestamp, Change) = decode(CHANGELOG.name(), bytes)?;
    let event = match change {
        // An entry written before schema v11 reads as its upgrade would store it.
        Change::Dataset(d) => {
            let d: DatasetV5 = d.convert();
            EngineEvent::Dataset(Arc::new(d.convert()))
        }
        Change::DatasetV5(d) => EngineEvent::Dataset(Arc::new(d.convert())),
        Change::Job(j) => {
            let j: TrainingJobV5 = j.convert();
            EngineEvent::Job(Arc::new(j.convert()))
        }
        Change::JobV3(j) => {
            let j: TrainingJobV5 = j.convert();
            EngineEvent::Job(Arc::new(j.convert()))
        }
        Change::JobV4(j) => {
            let j: TrainingJobV5 = j.convert();
            EngineEvent::Job(Arc::new(j.convert()))
        }
        Change::JobV5(j) => EngineEvent::Job(Arc::new(j.convert())),
        Change::Metrics(job_id, points) => {
            let points: Vec<MetricsPointV5> = points.convert();
            EngineEvent::Metrics {
                job_id,
                points: Arc::new(points.convert()),
            }
        }
        Change::MetricsV5(job_id, points) => EngineEvent::Metrics {
            job_id,
            points: Arc::new(points.convert()),
        },
        // An entry written before schema v10 reads as its upgrade would store it.
        Change::Artifact(a) => {
            let a: super::stored::v4::ModelArtifactV4 = a.convert();
            EngineEvent::Artifact(Arc::new(a.convert()))
        }
        Change::ArtifactV4(a) => EngineEvent::Artifact(Arc::new(a.convert())),
        Change::Cost(c) => EngineEvent::Cost(Arc::new(c.convert())),
        Change::Notification(n) => EngineEvent::Notification(Arc::new(n.convert())),
        Change::Checkpoint(c) => {
            let c: super::stored::v3::CheckpointV3 = c.convert();
            EngineEvent::Checkpoint(Arc::new(c.convert()))
        }
        Change::CheckpointV3(c) => EngineEvent::Checkpoint(Arc::new(c.convert())),
        Change::Sweep(doc) => EngineEvent::Sweep(Arc::new(super::sweeps::decode_sweep(
            CHANGELOG.name(),
            &doc,
        )?)),
    };
    Ok(Sequenced { seq, at, event })
}

/// Numbers the record changes among `events` and appends them to the log inside `txn`.
/// Returns the sequenced changes and, separately, the live events to publish on commit.
pub(super) fn append(
    txn: &WriteTransaction,
    events: Vec<EngineEvent>,
) -> Result<(Vec<Arc<Sequenced>>, Vec<EngineEvent>), StoreError> {
    let (changes, live): (Vec<_>, Vec<_>) = events.into_iter().partition(|e| e.is_change());
    if changes.is_empty() {
        return Ok((Vec::new(), live));
    }
    let mut log = txn.open_table(CHANGELOG).map_err(db)?;
    let mut seq = log.last().map_err(db)?.map(|(k, _)| k.value()).unwrap_or(0);
    let at = now();
    let mut out = Vec::with_capacity(changes.len());
    for event in changes {
        let Some(bytes) = encode_change(&at, &event) else {
            continue;
        };
        seq += 1;
        log.insert(seq, bytes.as_slice()).map_err(db)?;
        out.push(Arc::new(Sequenced { seq, at, event }));
    }
    Ok((out, live))
}

impl super::Writer<'_> {
    /// Records, inside this transaction, that a durable consumer has applied everything up
    /// to `seq`: for a consumer whose effect is itself in the store (webhook deliveries).
    pub fn ack_changes(&mut self, consumer: &str, seq: u64) -> Result<(), StoreError> {
        self.txn
            .open_table(CONSUMERS)
            .map_err(db)?
            .insert(consumer, seq)
            .map_err(db)?;
        Ok(())
    }
}

/// What the log holds: the first and last seq still stored (both 0 when it is empty).
/// Compaction always keeps the last entry, so the numbering never restarts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LogBounds {
    pub first: u64,
    pub last: u64,
}

impl Store {
    /// The first and last seq stored in the change log.
    pub fn change_bounds(&self) -> Result<LogBounds, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let log = match txn.open_table(CHANGELOG) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(LogBounds::default()),
            Err(e) => return Err(db(e)),
        };
        let first = log
            .first()
            .map_err(db)?
            .map(|(k, _)| k.value())
            .unwrap_or(0);
        let last = log.last().map_err(db)?.map(|(k, _)| k.value()).unwrap_or(0);
        Ok(LogBounds { first, last })
    }

    /// The last committed seq (0 for a store that has never changed).
    pub fn last_seq(&self) -> Result<u64, StoreError> {
        Ok(self.change_bounds()?.last)
    }

    /// Up to `limit` changes with seq > `after`, in order.
    pub fn changes_after(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Arc<Sequenced>>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let log = match txn.open_table(CHANGELOG) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(db(e)),
        };
        let mut out = Vec::new();
        for entry in log.range(after.saturating_add(1)..).map_err(db)? {
            let (k, v) = entry.map_err(db)?;
            out.push(Arc::new(decode_change(k.value(), v.value())?));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Records that a durable consumer has applied everything up to `seq`.
    pub fn ack_changes(&self, consumer: &str, seq: u64) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        txn.open_table(CONSUMERS)
            .map_err(db)?
            .insert(consumer, seq)
            .map_err(db)?;
        txn.commit().map_err(db)
    }

    /// Forgets a durable consumer (one that was turned off), so compaction no longer waits
    /// for it. Returns whether it was known.
    pub fn forget_consumer(&self, consumer: &str) -> Result<bool, StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        let had = txn
            .open_table(CONSUMERS)
            .map_err(db)?
            .remove(consumer)
            .map_err(db)?
            .is_some();
        txn.commit().map_err(db)?;
        Ok(had)
    }

    /// The last seq a durable consumer acknowledged, if it ever did.
    pub fn acked_changes(&self, consumer: &str) -> Result<Option<u64>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        match txn.open_table(CONSUMERS) {
            Ok(t) => Ok(t.get(consumer).map_err(db)?.map(|v| v.value())),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(db(e)),
        }
    }

    /// Deletes changes committed before `older_than`, but never one that a durable consumer
    /// has not acknowledged, and never the last one (it carries the numbering). Returns how
    /// many were removed.
    pub fn compact_changes(&self, older_than: Timestamp) -> Result<u64, StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        let removed = {
            let mut floor = u64::MAX;
            for entry in txn.open_table(CONSUMERS).map_err(db)?.iter().map_err(db)? {
                let (_, v) = entry.map_err(db)?;
                floor = floor.min(v.value());
            }
            let mut log = txn.open_table(CHANGELOG).map_err(db)?;
            let last = log.last().map_err(db)?.map(|(k, _)| k.value()).unwrap_or(0);
            let (mut cut, mut count) = (0, 0);
            for entry in log.iter().map_err(db)? {
                let (k, v) = entry.map_err(db)?;
                let seq = k.value();
                let s = decode_change(seq, v.value())?;
                if seq >= last || seq > floor || s.at >= older_than {
                    break;
                }
                cut = seq;
                count += 1;
            }
            if cut > 0 {
                log.retain_in(..=cut, |_, _| false).map_err(db)?;
            }
            count
        };
        txn.commit().map_err(db)?;
        Ok(removed)
    }
}
