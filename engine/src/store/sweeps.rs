//! Sweeps (`domain::Sweep`), by id, in the engine-private JSON table `sweeps` (schema v9).
//!
//! Like evaluations, a sweep is a JSON document with its own `version`, read with unknown
//! fields ignored, so a field a later BrightRun adds never makes a stored sweep unreadable.
//! A sweep is written through [`Writer::put_sweep`], which logs the change (`ChangeV3::Sweep`,
//! the same document) in the same transaction: the mirror and the dashboards follow sweeps as
//! they follow jobs.

use super::{Store, StoreError, Writer, db};
use crate::domain::Sweep;
use crate::events::EngineEvent;
use crate::ids::{SweepId, UserId};
use redb::{ReadableTable, TableDefinition, TableHandle};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

type JsonTable = TableDefinition<'static, &'static [u8], &'static [u8]>;

/// Sweep id bytes → the sweep's document.
pub(crate) const SWEEPS: JsonTable = TableDefinition::new("sweeps");

/// The stored document: the sweep's fields and the layout's version.
#[derive(Serialize, Deserialize)]
struct SweepDoc {
    version: u32,
    #[serde(flatten)]
    sweep: Sweep,
}

const VERSION: u32 = 1;

/// A sweep's stored bytes (also what the change log carries).
pub(crate) fn encode_sweep(s: &Sweep) -> Vec<u8> {
    serde_json::to_vec(&SweepDoc {
        version: VERSION,
        sweep: s.clone(),
    })
    .expect("sweeps serialise")
}

/// A sweep from its stored bytes.
pub(crate) fn decode_sweep(table: &str, bytes: &[u8]) -> Result<Sweep, StoreError> {
    serde_json::from_slice::<SweepDoc>(bytes)
        .map(|d| d.sweep)
        .map_err(|e| StoreError::Decode {
            table: table.to_string(),
            message: e.to_string(),
        })
}

impl Writer<'_> {
    /// Stores a sweep (insert or replace) and logs the change.
    pub fn put_sweep(&mut self, s: &Sweep) -> Result<(), StoreError> {
        self.txn
            .open_table(SWEEPS)
            .map_err(db)?
            .insert(s.id.bytes().as_slice(), encode_sweep(s).as_slice())
            .map_err(db)?;
        self.events.push(EngineEvent::Sweep(Arc::new(s.clone())));
        Ok(())
    }

    /// A sweep, read inside the transaction that will change it.
    pub fn sweep(&self, id: SweepId) -> Result<Option<Sweep>, StoreError> {
        let t = self.txn.open_table(SWEEPS).map_err(db)?;
        let v = t.get(id.bytes().as_slice()).map_err(db)?;
        v.map(|v| decode_sweep(SWEEPS.name(), v.value()))
            .transpose()
    }
}

impl Store {
    pub fn sweep(&self, id: SweepId) -> Result<Option<Sweep>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let t = match txn.open_table(SWEEPS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(db(e)),
        };
        let v = t.get(id.bytes().as_slice()).map_err(db)?;
        v.map(|v| decode_sweep(SWEEPS.name(), v.value()))
            .transpose()
    }

    /// Every sweep (of one user, when given), newest first. A sweep that does not read is
    /// skipped with a log line rather than hiding the others.
    pub fn sweeps(&self, user: Option<UserId>) -> Result<Vec<Sweep>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let t = match txn.open_table(SWEEPS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(db(e)),
        };
        let mut out = Vec::new();
        for entry in t.iter().map_err(db)? {
            let (_, v) = entry.map_err(db)?;
            match decode_sweep(SWEEPS.name(), v.value()) {
                Ok(s) if user.is_none_or(|u| s.user_id == u) => out.push(s),
                Ok(_) => {}
                Err(e) => tracing::error!("a stored sweep does not read: {e}"),
            }
        }
        out.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{SweepRun, SweepSpec, SweepStatus};
    use chrono::TimeZone;

    fn sample() -> Sweep {
        let at = chrono::Utc.with_ymd_and_hms(2026, 12, 5, 12, 0, 0).unwrap();
        Sweep {
            id: SweepId(uuid::Uuid::from_u128(7)),
            user_id: UserId(uuid::Uuid::from_u128(1)),
            name: "learning_rate × lora_rank".into(),
            spec: SweepSpec::default(),
            status: SweepStatus::Running,
            runs: vec![SweepRun {
                sets: vec![("learning_rate".into(), "1e-4".into())],
                job_id: None,
                skipped: None,
                estimated_cost: 0.5,
            }],
            best_job_id: None,
            best_by: None,
            spent: 0.0,
            created_at: at,
            updated_at: at,
            completed_at: None,
        }
    }

    #[test]
    fn a_sweep_is_kept_logged_and_reads_with_fields_it_does_not_know() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let s = sample();
        store.write(|w| w.put_sweep(&s)).unwrap();
        assert_eq!(store.sweep(s.id).unwrap(), Some(s.clone()));
        assert_eq!(store.sweeps(Some(s.user_id)).unwrap(), vec![s.clone()]);
        assert!(store.sweeps(Some(UserId::new())).unwrap().is_empty());
        let logged = store.changes_after(0, 10).unwrap();
        assert!(matches!(&logged[0].event, EngineEvent::Sweep(x) if **x == s));
        // Today's layout, pinned: the version, then the sweep's own fields.
        let bytes = String::from_utf8(encode_sweep(&s)).unwrap();
        assert!(bytes.starts_with(r#"{"version":1,"id":"00000000-0000-0000-0000-000000000007""#));
        // A later BrightRun's document, with a field this one does not know, still reads.
        let later = bytes.replacen(r#"{"version":1,"#, r#"{"version":2,"priority":3,"#, 1);
        assert_eq!(decode_sweep("sweeps", later.as_bytes()).unwrap(), s);
        assert!(matches!(
            decode_sweep("sweeps", b"{}"),
            Err(StoreError::Decode { .. })
        ));
    }
}
