//! Making, checking and revoking bearer tokens. A token is 256 random bits shown once; the
//! store keeps only its sha256, compared in constant time by lookup on the hash itself.
//!
//! A token may carry an expiry (`tokens create --expires 30d`): past it, it is refused as
//! `unauthorized` with the reason `token_expired`. Its last successful use is recorded for
//! `tokens list`, at most once per [`LAST_USE_EVERY`] per token, so a busy client does not
//! turn every request into a store write.

use super::{ApiError, NewToken, TokenInfo};
use crate::domain::{Timestamp, now};
use crate::ids::UserId;
use crate::store::{Store, TokenRecord};
use sha2::{Digest, Sha256};

/// What every token starts with, so a leaked one is recognisable in logs and scanners.
const PREFIX: &str = "brt_";

pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// How often a token's last use is written at most.
pub const LAST_USE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// What a presented token turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenCheck {
    /// Valid: it acts for this user.
    Valid(UserId),
    /// Known and not revoked, but past its expiry.
    Expired { id: String, at: Timestamp },
    /// Unknown or revoked.
    Unknown,
}

/// Tokens over the engine's store.
#[derive(Clone)]
pub struct TokenStore {
    store: Store,
    profile_user: UserId,
    profile_name: String,
}

fn info(t: &TokenRecord) -> TokenInfo {
    TokenInfo {
        id: t.id.clone(),
        user_id: t.user_id,
        user_name: t.user_name.clone(),
        created_at: t.created_at,
        revoked_at: t.revoked_at,
        expires_at: t.expires_at,
        last_used_at: t.last_used_at,
    }
}

impl TokenStore {
    pub fn new(store: Store, profile_user: UserId, profile_name: String) -> Self {
        Self {
            store,
            profile_user,
            profile_name,
        }
    }

    /// A new token for `user` (a name; absent: the profile's user), accepted until
    /// `expires_at` (absent: until revoked). A new name is a new user.
    pub fn create(
        &self,
        user: Option<&str>,
        expires_at: Option<Timestamp>,
    ) -> Result<NewToken, ApiError> {
        if let Some(at) = expires_at
            && at <= now()
        {
            return Err(ApiError::invalid(
                "expires_at",
                format!("the expiry {} is not in the future", at.to_rfc3339()),
            ));
        }
        let name = user.map(str::trim).filter(|u| !u.is_empty());
        if let Some(n) = name
            && (n.len() > 128 || n.chars().any(char::is_control))
        {
            return Err(ApiError::invalid(
                "user",
                "a user name is at most 128 characters, without control characters",
            ));
        }
        let (user_id, user_name) = match name {
            None => (self.profile_user, self.profile_name.clone()),
            Some(n) if n == self.profile_name => (self.profile_user, n.to_string()),
            Some(n) => (self.store.user_named(n, UserId::new())?, n.to_string()),
        };
        let secret = format!(
            "{PREFIX}{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let hash = hash_token(&secret);
        let record = TokenRecord {
            id: hex::encode(&hash[..6]),
            hash,
            user_id,
            user_name,
            created_at: now(),
            revoked_at: None,
            expires_at,
            last_used_at: None,
        };
        self.store.put_token(&record)?;
        Ok(NewToken {
            token: secret,
            info: info(&record),
        })
    }

    pub fn list(&self) -> Result<Vec<TokenInfo>, ApiError> {
        Ok(self.store.tokens()?.iter().map(info).collect())
    }

    /// Revokes the token whose id starts with `id`.
    pub fn revoke(&self, id: &str) -> Result<TokenInfo, ApiError> {
        let id = id.trim().to_ascii_lowercase();
        let matches: Vec<TokenRecord> = self
            .store
            .tokens()?
            .into_iter()
            .filter(|t| !id.is_empty() && t.id.starts_with(&id))
            .collect();
        match matches.as_slice() {
            [] => Err(ApiError::not_found(format!("no token matches `{id}`"))),
            [one] => {
                let mut t = one.clone();
                if t.revoked_at.is_none() {
                    t.revoked_at = Some(now());
                    self.store.put_token(&t)?;
                }
                Ok(info(&t))
            }
            _ => Err(ApiError::new(
                super::ErrorCode::Ambiguous,
                format!("`{id}` matches several tokens; give more characters"),
            )),
        }
    }

    /// What a presented token is: valid (for its user), expired, or unknown (or revoked). A
    /// valid token's use is recorded when the last recorded one is older than
    /// [`LAST_USE_EVERY`] (a failure to record it is logged, never a refusal). Blocking: call
    /// it off the async workers.
    pub fn authenticate(&self, token: &str) -> Result<TokenCheck, ApiError> {
        let hash = hash_token(token.trim());
        let Some(t) = self
            .store
            .token_by_hash(&hash)?
            .filter(|t| t.revoked_at.is_none())
        else {
            return Ok(TokenCheck::Unknown);
        };
        let at = now();
        if let Some(expiry) = t.expires_at
            && expiry <= at
        {
            return Ok(TokenCheck::Expired {
                id: t.id,
                at: expiry,
            });
        }
        let every = chrono::Duration::seconds(LAST_USE_EVERY.as_secs() as i64);
        if t.last_used_at.is_none_or(|l| l + every <= at)
            && let Err(e) = self.store.touch_token(&hash, at, every)
        {
            tracing::warn!("cannot record the use of token {}: {e}", t.id);
        }
        Ok(TokenCheck::Valid(t.user_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> (tempfile::TempDir, TokenStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("brightrun.redb")).unwrap();
        let user = UserId::new();
        (dir, TokenStore::new(store, user, "owner".into()))
    }

    #[test]
    fn an_expired_token_is_refused_and_a_past_expiry_cannot_be_made() {
        let (_dir, tokens) = tokens();
        let e = tokens
            .create(None, Some(now() - chrono::Duration::seconds(1)))
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("expires_at"));
        let t = tokens
            .create(Some("ana"), Some(now() + chrono::Duration::hours(1)))
            .unwrap();
        assert!(matches!(
            tokens.authenticate(&t.token).unwrap(),
            TokenCheck::Valid(u) if u == t.info.user_id
        ));
        // Past its expiry (set in the store, as time passing would).
        let mut record = tokens
            .store
            .token_by_hash(&hash_token(&t.token))
            .unwrap()
            .unwrap();
        let past = now() - chrono::Duration::minutes(1);
        record.expires_at = Some(past);
        tokens.store.put_token(&record).unwrap();
        assert_eq!(
            tokens.authenticate(&t.token).unwrap(),
            TokenCheck::Expired {
                id: t.info.id.clone(),
                at: past
            }
        );
        assert_eq!(
            tokens.authenticate("brt_nope").unwrap(),
            TokenCheck::Unknown
        );
        let listed = tokens.list().unwrap();
        assert_eq!(listed[0].expires_at, Some(past));
    }

    #[test]
    fn last_use_is_recorded_at_most_once_a_minute_and_never_unrevokes() {
        let (_dir, tokens) = tokens();
        let t = tokens.create(None, None).unwrap();
        assert_eq!(tokens.list().unwrap()[0].last_used_at, None);
        assert!(matches!(
            tokens.authenticate(&t.token).unwrap(),
            TokenCheck::Valid(_)
        ));
        let first = tokens.list().unwrap()[0]
            .last_used_at
            .expect("a recorded use");
        // Used again at once: no new write.
        assert!(matches!(
            tokens.authenticate(&t.token).unwrap(),
            TokenCheck::Valid(_)
        ));
        assert_eq!(tokens.list().unwrap()[0].last_used_at, Some(first));
        let hash = hash_token(&t.token);
        let minute = chrono::Duration::seconds(60);
        assert!(
            !tokens
                .store
                .touch_token(&hash, first + chrono::Duration::seconds(59), minute)
                .unwrap()
        );
        assert!(
            tokens
                .store
                .touch_token(&hash, first + minute, minute)
                .unwrap()
        );
        assert_eq!(tokens.list().unwrap()[0].last_used_at, Some(first + minute));
        // A use recorded after a revocation keeps the revocation.
        tokens.revoke(&t.info.id).unwrap();
        assert!(
            tokens
                .store
                .touch_token(&hash, first + minute * 2, minute)
                .unwrap()
        );
        let after = &tokens.list().unwrap()[0];
        assert!(after.revoked_at.is_some());
        assert_eq!(tokens.authenticate(&t.token).unwrap(), TokenCheck::Unknown);
    }
}
