//! Throughput measured by completed runs, per setting ([`CalibrationKey`]), for later
//! estimates. An engine-private table like the tokens': it is derived data about this
//! engine's runs, not a domain record, so it is not in the change log or the mirror, and an
//! older BrightRun reading the file simply never opens it.

use super::stored::Persisted;
use super::{Store, StoreError, db, decode_stored, encode};
use crate::training::{Calibration, CalibrationKey};
use redb::{ReadableTable, TableDefinition, TableHandle};

/// Key bytes ([`CalibrationKey::to_bytes`]) → [`Calibration`].
const CALIBRATION: TableDefinition<'static, &'static [u8], &'static [u8]> =
    TableDefinition::new("estimate_calibration");

impl Store {
    /// What completed runs of this setting measured, if any did.
    pub fn calibration(&self, key: &CalibrationKey) -> Result<Option<Calibration>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = match txn.open_table(CALIBRATION) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(db(e)),
        };
        match table.get(key.to_bytes().as_slice()).map_err(db)? {
            Some(v) => Ok(Some(decode_stored(CALIBRATION.name(), v.value())?)),
            None => Ok(None),
        }
    }

    /// Adds one run's measured throughput to its setting's average (in one transaction, so
    /// two runs finishing at once both count). Returns the new average.
    pub fn add_calibration(
        &self,
        key: &CalibrationKey,
        tokens_per_sec: f64,
    ) -> Result<Option<Calibration>, StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        let k = key.to_bytes();
        let updated = {
            let mut table = txn.open_table(CALIBRATION).map_err(db)?;
            let old: Option<Calibration> = match table.get(k.as_slice()).map_err(db)? {
                Some(v) => Some(decode_stored(CALIBRATION.name(), v.value())?),
                None => None,
            };
            let new = Calibration::add(old, tokens_per_sec);
            if let Some(c) = &new {
                table
                    .insert(k.as_slice(), encode(&c.to_stored()).as_slice())
                    .map_err(db)?;
            }
            new
        };
        txn.commit().map_err(db)?;
        Ok(updated)
    }
}
