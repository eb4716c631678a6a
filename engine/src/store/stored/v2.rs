//! Version 2 of the stored records whose layout changed after v1 (schema v6). Only the token
//! record changed: it gains when it expires and when it was last used. Every other type is
//! still `v1`'s. Frozen like `v1`: a change of layout is a `v3` module, never an edit here.

use super::Convert;
use super::convert::stored_struct;
use super::v1::TokenRecordV1;
use crate::domain::Timestamp;
use crate::ids::UserId;
use crate::store::TokenRecord;

stored_struct!(
    /// A bearer token (schema v6): v1's fields, then its expiry (none: it never expires) and
    /// its last successful use (recorded at most once a minute).
    TokenRecordV2 <=> TokenRecord {
        id: String,
        hash: [u8; 32],
        user_id: UserId,
        user_name: String,
        created_at: Timestamp,
        revoked_at: Option<Timestamp>,
        expires_at: Option<Timestamp>,
        last_used_at: Option<Timestamp>,
    }
);

/// The schema v5 → v6 upgrade of one token: it never expires and has not been used since.
impl Convert<TokenRecordV2> for TokenRecordV1 {
    fn convert(self) -> TokenRecordV2 {
        let TokenRecordV1 {
            id,
            hash,
            user_id,
            user_name,
            created_at,
            revoked_at,
        } = self;
        TokenRecordV2 {
            id,
            hash,
            user_id,
            user_name,
            created_at,
            revoked_at,
            expires_at: None,
            last_used_at: None,
        }
    }
}
