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
    /// When it stops being accepted; none: never.
    pub expires_at: Option<Timestamp>,
    /// Its last successful use, recorded at most once per [`Store::touch_token`]'s interval.
    pub last_used_at: Option<Timestamp>,
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

    /// Records that the token with `hash` was used at `at`, unless a use since `at - every`
    /// is recorded already (so a busy token costs a write at most once per `every`). One
    /// write transaction that re-reads the record, so a revocation committed meanwhile is
    /// kept. Returns whether it wrote.
    pub fn touch_token(
        &self,
        hash: &[u8; 32],
        at: Timestamp,
        every: chrono::Duration,
    ) -> Result<bool, StoreError> {
        let txn = self.db.begin_write().map_err(db)?;
        let wrote = {
            let mut table = txn.open_table(TOKENS).map_err(db)?;
            let current: Option<TokenRecord> = match table.get(hash.as_slice()).map_err(db)? {
                Some(v) => Some(decode_stored(TOKENS.name(), v.value())?),
                None => None,
            };
            match current {
                Some(mut t) if t.last_used_at.is_none_or(|l| l + every <= at) => {
                    t.last_used_at = Some(at);
                    table
                        .insert(hash.as_slice(), encode(&t.to_stored()).as_slice())
                        .map_err(db)?;
                    true
                }
                _ => false,
            }
        };
        if wrote {
            txn.commit().map_err(db)?;
        } else {
            txn.abort().map_err(db)?;
        }
        Ok(wrote)
    }

    /// Every user that has a token, with the profile's: whose budgets and storage to account.
    pub fn token_users(&self) -> Result<Vec<UserId>, StoreError> {
        let mut users: Vec<UserId> = self.tokens()?.into_iter().map(|t| t.user_id).collect();
        users.sort();
        users.dedup();
        Ok(users)
    }
}

/// Schema v5 → v6: rewrites every token from `TokenRecordV1` to `TokenRecordV2` (no expiry, no
/// recorded use), inside the upgrade's transaction. A value that does not decode as v1 is
/// moved to the quarantine table (`auth_tokens`, its hash) instead of failing the upgrade: it
/// could not authenticate anyone anyway. Returns how many were quarantined.
pub(crate) fn upgrade_tokens_to_v2(txn: &redb::WriteTransaction) -> Result<usize, StoreError> {
    use super::stored::v1::TokenRecordV1;
    use super::stored::v2::TokenRecordV2;
    use super::stored::{Convert, Quarantined};
    let entries: Vec<(Vec<u8>, Vec<u8>)> = {
        let table = txn.open_table(TOKENS).map_err(db)?;
        let mut v = Vec::new();
        for entry in table.iter().map_err(db)? {
            let (k, val) = entry.map_err(db)?;
            v.push((k.value().to_vec(), val.value().to_vec()));
        }
        v
    };
    let mut quarantined = 0;
    let mut table = txn.open_table(TOKENS).map_err(db)?;
    for (key, raw) in entries {
        match bincode::serde::decode_from_slice::<TokenRecordV1, _>(&raw, super::ENCODING) {
            Ok((old, used)) if used == raw.len() => {
                let new: TokenRecordV2 = old.convert();
                table
                    .insert(key.as_slice(), encode(&new).as_slice())
                    .map_err(db)?;
            }
            other => {
                let problem = match other {
                    Ok((_, used)) => {
                        format!("{} byte(s) left over after the token", raw.len() - used)
                    }
                    Err(e) => format!("cannot decode it: {e}"),
                };
                tracing::error!(
                    "upgrading the tokens: the token {} does not decode ({problem}); moved to quarantine",
                    hex::encode(&key)
                );
                let value = Quarantined {
                    raw: raw.clone(),
                    at: crate::domain::now(),
                    problem,
                };
                txn.open_table(super::records::QUARANTINE)
                    .map_err(db)?
                    .insert((TOKENS.name(), key.as_slice()), encode(&value).as_slice())
                    .map_err(db)?;
                table.remove(key.as_slice()).map_err(db)?;
                quarantined += 1;
            }
        }
    }
    Ok(quarantined)
}
