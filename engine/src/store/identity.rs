//! Which profile user a store belongs to. Every record carries its owner's id and the
//! embedded engine shows the records of the profile's user (config.toml's `[profile]
//! user_id`); a config that lost or changed that id would make every record invisible. So the
//! store remembers the id it was first opened under, and the engine compares the two on open
//! (see `engine::profile`).

use super::records::{DATASETS, JOBS};
use super::{Store, StoreError, db};
use crate::domain::{Dataset, TrainingJob};
use crate::ids::UserId;
use redb::{ReadableTable, TableDefinition, TableHandle};
use std::collections::BTreeMap;

/// Facts about the store itself, not records: kept out of the change log.
const IDENTITY: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("store_identity");
const PROFILE_USER: &str = "profile_user_id";

impl Store {
    /// The profile user id the store was created under; `None` for a new store or one made
    /// before stores recorded it.
    pub fn profile_user(&self) -> Result<Option<UserId>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = match txn.open_table(IDENTITY) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(db(e)),
        };
        let Some(v) = table.get(PROFILE_USER).map_err(db)? else {
            return Ok(None);
        };
        let bytes = <[u8; 16]>::try_from(v.value()).map_err(|_| StoreError::Decode {
            table: IDENTITY.name().into(),
            message: format!("`{PROFILE_USER}` is {} bytes, not 16", v.value().len()),
        })?;
        Ok(Some(UserId::from_bytes(bytes)))
    }

    /// Records `user` as the store's profile user (replacing any earlier one).
    pub fn set_profile_user(&self, user: UserId) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        txn.open_table(IDENTITY)
            .map_err(db)?
            .insert(PROFILE_USER, user.bytes().as_slice())
            .map_err(db)?;
        txn.commit().map_err(db)
    }

    /// The owners of the stored datasets and jobs with how many each owns, for a store that
    /// does not record its profile user: the person can then tell which id is theirs.
    pub fn record_owners(&self) -> Result<BTreeMap<UserId, usize>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let mut owners = BTreeMap::new();
        match txn.open_table(DATASETS) {
            Ok(t) => {
                for entry in t.iter().map_err(db)? {
                    let (k, v) = entry.map_err(db)?;
                    let d: Option<Dataset> =
                        self.seen
                            .skip_corrupt(DATASETS.name(), k.value(), v.value())?;
                    if let Some(d) = d {
                        *owners.entry(d.user_id).or_default() += 1;
                    }
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(db(e)),
        }
        match txn.open_table(JOBS) {
            Ok(t) => {
                for entry in t.iter().map_err(db)? {
                    let (k, v) = entry.map_err(db)?;
                    let j: Option<TrainingJob> =
                        self.seen.skip_corrupt(JOBS.name(), k.value(), v.value())?;
                    if let Some(j) = j {
                        *owners.entry(j.user_id).or_default() += 1;
                    }
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(db(e)),
        }
        Ok(owners)
    }
}
