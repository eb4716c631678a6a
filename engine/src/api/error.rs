//! The engine's side of API errors: which [`ApiError`] each engine error becomes (the error
//! type itself is the API crate's).

use super::{ApiError, ErrorCode, Reason};
use crate::EngineError;
use crate::store::StoreError;

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        <Self as FromEngineError>::from_ref(&e)
    }
}

/// Builds the API's error from an engine error (the type is the API crate's, so this is a
/// trait: `ApiError::from_ref(&e)` with it in scope).
pub trait FromEngineError {
    /// The API error for an engine error (its code, message and field).
    fn from_ref(e: &EngineError) -> Self;
}

impl FromEngineError for ApiError {
    fn from_ref(e: &EngineError) -> Self {
        let message = e.to_string();
        let code = match e {
            EngineError::NotFound { .. } => ErrorCode::NotFound,
            EngineError::NotEvaluated { .. } => {
                let mut e = ApiError::not_found(message);
                e.reason = Some(Reason::NotEvaluated);
                return e;
            }
            EngineError::Ambiguous { .. } => ErrorCode::Ambiguous,
            EngineError::Conflict { reason, .. } => return ApiError::conflict(*reason, message),
            EngineError::ProfileMismatch { .. }
            | EngineError::ProfileUnknown { .. }
            | EngineError::StoreMissing { .. } => {
                return ApiError::conflict(Reason::Profile, message);
            }
            EngineError::Invalid(_) | EngineError::Config(_) | EngineError::Secrets(_) => {
                ErrorCode::Invalid
            }
            EngineError::InvalidField { field, .. } => {
                return ApiError::invalid(field.clone(), message);
            }
            EngineError::Store(StoreError::Locked { .. }) => ErrorCode::Unavailable,
            EngineError::Store(StoreError::SchemaTooNew { .. }) => {
                return ApiError::conflict(Reason::SchemaTooNew, message);
            }
            EngineError::Store(StoreError::NoBackup { .. }) => ErrorCode::NotFound,
            // The request is fine; this one record cannot be used (the message says what to do).
            EngineError::Store(StoreError::Corrupt { .. }) => {
                return ApiError::conflict(Reason::Corrupt, message);
            }
            EngineError::Store(_) => ErrorCode::Unavailable,
            EngineError::Storage(crate::storage::StorageError::TooLarge { .. })
            | EngineError::Storage(crate::storage::StorageError::BadPath { .. }) => {
                ErrorCode::Invalid
            }
            EngineError::Storage(crate::storage::StorageError::NotFound { .. }) => {
                ErrorCode::NotFound
            }
            EngineError::Storage(_) => ErrorCode::Unavailable,
            EngineError::Mirror(m) if m.is_unavailable() => ErrorCode::Unavailable,
            EngineError::Mirror(_) => ErrorCode::Conflict,
            EngineError::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound
                | std::io::ErrorKind::PermissionDenied
                | std::io::ErrorKind::AlreadyExists
                | std::io::ErrorKind::InvalidInput => ErrorCode::Invalid,
                _ => ErrorCode::Unavailable,
            },
        };
        ApiError::new(code, message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        EngineError::from(e).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_map_to_codes() {
        let e: ApiError = EngineError::NotFound {
            kind: crate::IdKind::Job,
            query: "abc".into(),
        }
        .into();
        assert_eq!(e.code, ErrorCode::NotFound);
        let e: ApiError = EngineError::InvalidField {
            field: "learning_rate".into(),
            message: "learning_rate 1 is outside 1e-5..1e-3".into(),
        }
        .into();
        assert_eq!(
            (e.code, e.field.as_deref()),
            (ErrorCode::Invalid, Some("learning_rate"))
        );
        let e: ApiError = EngineError::conflict(Reason::InUse, "in use").into();
        assert_eq!(
            (e.code, e.reason),
            (ErrorCode::Conflict, Some(Reason::InUse))
        );
    }

    #[test]
    fn store_errors_keep_their_reason() {
        let store: ApiError = StoreError::SchemaTooNew {
            found: 9,
            supported: 5,
        }
        .into();
        assert_eq!(store.reason, Some(Reason::SchemaTooNew));
    }
}
