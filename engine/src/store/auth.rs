//! Bearer tokens for the daemon's TCP listener and the users they act for. Only a token's
//! sha256 is kept, so a copy of the store gives no way in.

use super::stored::Persisted;
use super::{Store, StoreError, db, decode_stored, encode};
use crate::domain::Timestamp;
use crate::ids::UserId;
use redb::{ReadableTable, TableDefinition, TableHandle};
use serde::{Deserialize, Serialize};

/// sha256(token) → token record.
const TOKENS: TableDefinition<'static, &'static [u8], &'static [u8]> =
    TableDefinition::new("auth_tokens");
/// User name → user id (16 bytes).
const USERS: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("auth_users");

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The first characters of the token's hash: how a person names it to revoke it.
    pub id: String,
    pub hash: [u8; 32],
    pub user_id: UserId,
    pub user_name: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

impl Store {
    /// The id of the user called `name`, made (and remembered) when it is new.
    pub fn user_named(&self, name: &str, fallback: UserId) -> Result<UserId, StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        let id = {
            let mut users = txn.open_table(USERS).map_err(db)?;
            let existing = users
                .get(name)
                .map_err(db)?
                .and_then(|v| <[u8; 16]>::try_from(v.value()).ok());
            match existing {
                Some(b) => UserId::from_bytes(b),
                None => {
                    let id = fallback;
                    users.insert(name, id.bytes().as_slice()).map_err(db)?;
                    id
                }
            }
        };
        txn.commit().map_err(db)?;
        Ok(id)
    }

    pub fn put_token(&self, record: &TokenRecord) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        txn.open_table(TOKENS)
            .map_err(db)?
            .insert(
                record.hash.as_slice(),
                encode(&record.to_stored()).as_slice(),
            )
            .map_err(db)?;
        txn.commit().map_err(db)
    }

    pub fn token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<TokenRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = match txn.open_table(TOKENS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(db(e)),
        };
        match table.get(hash.as_slice()).map_err(db)? {
            Some(v) => Ok(Some(decode_stored(TOKENS.name(), v.value())?)),
            None => Ok(None),
        }
    }

    pub fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(db)?;
        let table = match txn.open_table(TOKENS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(db(e)),
        };
        let mut out: Vec<TokenRecord> = Vec::new();
        for entry in table.iter().map_err(db)? {
            let (_, v) = entry.map_err(db)?;
            out.push(decode_stored(TOKENS.name(), v.value())?);
        }
        out.sort_by_key(|t| t.created_at);
        Ok(out)
    }

    /// Every user that has a token, with the profile's: whose budgets and storage to account.
    pub fn token_users(&self) -> Result<Vec<UserId>, StoreError> {
        let mut users: Vec<UserId> = self.tokens()?.into_iter().map(|t| t.user_id).collect();
        users.sort();
        users.dedup();
        Ok(users)
    }
}
