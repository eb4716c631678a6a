//! Making, checking and revoking bearer tokens. A token is 256 random bits shown once; the
//! store keeps only its sha256, compared in constant time by lookup on the hash itself.

use super::{ApiError, NewToken, TokenInfo};
use crate::domain::now;
use crate::ids::UserId;
use crate::store::{Store, TokenRecord};
use sha2::{Digest, Sha256};

/// What every token starts with, so a leaked one is recognisable in logs and scanners.
const PREFIX: &str = "brt_";

pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
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

    /// A new token for `user` (a name; absent: the profile's user). A new name is a new user.
    pub fn create(&self, user: Option<&str>) -> Result<NewToken, ApiError> {
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

    /// The user a presented token acts for; `None` for an unknown or revoked token.
    pub fn authenticate(&self, token: &str) -> Result<Option<UserId>, ApiError> {
        Ok(self
            .store
            .token_by_hash(&hash_token(token.trim()))?
            .filter(|t| t.revoked_at.is_none())
            .map(|t| t.user_id))
    }
}
