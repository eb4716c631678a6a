//! Errors as they cross the engine API: a code that callers branch on (exit statuses, the
//! dashboard's messages, HTTP statuses), a message for people, and optional details. Nothing
//! on the client side ever matches on the message text.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What kind of failure it is; stable across versions (the wire form is snake_case).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No such record for this user (another user's record answers this too, never 403).
    NotFound,
    /// An id prefix matched several records.
    Ambiguous,
    /// The request is valid but the current state refuses it (a dataset in use, over budget).
    Conflict,
    /// The request itself is wrong; `field` names the part when there is one.
    Invalid,
    /// Something the engine needs does not answer (a daemon, a backend, storage, the disk).
    Unavailable,
    /// No token, a wrong token, a revoked token.
    Unauthorized,
    /// Too many requests (failed authentication is rate-limited).
    RateLimited,
    /// A bug or an unexpected failure inside the engine.
    Internal,
}

impl ErrorCode {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Ambiguous => "ambiguous",
            Self::Conflict => "conflict",
            Self::Invalid => "invalid",
            Self::Unavailable => "unavailable",
            Self::Unauthorized => "unauthorized",
            Self::RateLimited => "rate_limited",
            Self::Internal => "internal",
        }
    }

    /// The HTTP status the seed's routes answer with.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::NotFound => 404,
            Self::Invalid => 400,
            // An ambiguous prefix is well formed: the records it matches are the conflict (the
            // body's `code` says which), so a request its schema allows is not answered 400.
            Self::Ambiguous | Self::Conflict => 409,
            Self::Unavailable => 503,
            Self::Unauthorized => 401,
            Self::RateLimited => 429,
            Self::Internal => 500,
        }
    }

    /// Whether the caller asked for something wrong (exit status 2), as opposed to the thing
    /// asked about failing.
    pub fn is_usage(&self) -> bool {
        !matches!(self, Self::Internal)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request was refused, for the clients that act on it (the dashboard's overwrite
/// dialog, a script that confirms a budget, a retry loop): clients branch on this, never on
/// the message. Stable across versions (the wire form is snake_case).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Files at the destination would be overwritten: ask, then send again with `force`.
    FilesExist,
    /// The run would take the month past its budget: confirm to go over it.
    OverBudget,
    /// The dataset is still uploading or validating, or was found invalid.
    DatasetNotReady,
    /// The record is used by active jobs: cancel them first.
    InUse,
    /// The record was deleted meanwhile.
    Deleted,
    /// The job has already finished (completed, failed or cancelled).
    AlreadyFinished,
    /// Only failed or cancelled jobs can be retried.
    NotRetryable,
    /// An upload of this dataset is already running.
    UploadInProgress,
    /// The dataset is not in the state the request needs (an upload to a dataset that is
    /// not uploading, a resume with nothing to resume).
    WrongState,
    /// The record is damaged (`brightrun doctor --repair` quarantines it).
    Corrupt,
    /// The store was written by a newer BrightRun.
    SchemaTooNew,
    /// The store and config.toml disagree about whose records these are, or the store is
    /// missing beside its data.
    Profile,
    /// (`unauthorized`) The token is past its expiry: the engine's owner makes a new one.
    TokenExpired,
    /// (`unauthorized`) Only the engine's owner, on its machine (Unix socket or embedded), may
    /// make this request.
    OwnerOnly,
    /// (`not_found`) The model has no evaluation: its run was before BrightRun evaluated
    /// runs, or had `[evaluation] enabled = false`.
    NotEvaluated,
    /// (`unavailable`) The model's chat worker could not start, or ended mid-reply; the next
    /// chat starts a fresh one.
    WorkerFailed,
    /// (`conflict`) The model does not fit in the memory of the engine's machine (its GPU, or
    /// its RAM when it has none) for chatting: the message gives what it needs, what there is
    /// and what to do.
    DoesNotFit,
    /// A reason a newer engine gives that this client does not know: the error's code and
    /// message still say what happened.
    #[serde(other)]
    Unknown,
}

impl Reason {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::FilesExist => "files_exist",
            Self::OverBudget => "over_budget",
            Self::DatasetNotReady => "dataset_not_ready",
            Self::InUse => "in_use",
            Self::Deleted => "deleted",
            Self::AlreadyFinished => "already_finished",
            Self::NotRetryable => "not_retryable",
            Self::UploadInProgress => "upload_in_progress",
            Self::WrongState => "wrong_state",
            Self::Corrupt => "corrupt",
            Self::SchemaTooNew => "schema_too_new",
            Self::Profile => "profile",
            Self::TokenExpired => "token_expired",
            Self::OwnerOnly => "owner_only",
            Self::NotEvaluated => "not_evaluated",
            Self::WorkerFailed => "worker_failed",
            Self::DoesNotFit => "does_not_fit",
            Self::Unknown => "unknown",
        }
    }
}

/// An error from the engine API.
#[derive(
    Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error, schemars::JsonSchema,
)]
#[error("{message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// For `invalid`: the request field at fault (`learning_rate`, `name`, `after`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// More about it, for people (the seed's `details`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    /// For `conflict` (and some `unauthorized`): why, for clients that act on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
            details: None,
            reason: None,
        }
    }
    /// A `conflict` with its reason.
    pub fn conflict(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            reason: Some(reason),
            ..Self::new(ErrorCode::Conflict, message)
        }
    }
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(ErrorCode::Invalid, message)
        }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }
    /// An `unauthorized` with its reason.
    pub fn unauthorized_because(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            reason: Some(reason),
            ..Self::new(ErrorCode::Unauthorized, message)
        }
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }
    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_stable_wire_names_and_statuses() {
        for (code, name, status) in [
            (ErrorCode::NotFound, "not_found", 404),
            (ErrorCode::Ambiguous, "ambiguous", 409),
            (ErrorCode::Conflict, "conflict", 409),
            (ErrorCode::Invalid, "invalid", 400),
            (ErrorCode::Unavailable, "unavailable", 503),
            (ErrorCode::Unauthorized, "unauthorized", 401),
            (ErrorCode::RateLimited, "rate_limited", 429),
            (ErrorCode::Internal, "internal", 500),
        ] {
            assert_eq!(serde_json::to_value(code).unwrap(), name);
            assert_eq!(code.as_str(), name);
            assert_eq!(code.http_status(), status);
        }
    }

    #[test]
    fn reasons_have_stable_wire_names_and_cross_the_wire() {
        for r in [
            Reason::FilesExist,
            Reason::OverBudget,
            Reason::DatasetNotReady,
            Reason::InUse,
            Reason::Deleted,
            Reason::AlreadyFinished,
            Reason::NotRetryable,
            Reason::UploadInProgress,
            Reason::WrongState,
            Reason::Corrupt,
            Reason::SchemaTooNew,
            Reason::Profile,
            Reason::TokenExpired,
            Reason::OwnerOnly,
            Reason::NotEvaluated,
            Reason::WorkerFailed,
            Reason::DoesNotFit,
        ] {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
            let e = ApiError::conflict(r, "refused");
            let back: ApiError = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
            assert_eq!(back, e);
        }
        // An error without a reason (or from an older engine) has none.
        let old: ApiError =
            serde_json::from_str(r#"{"code":"conflict","message":"refused"}"#).unwrap();
        assert_eq!(old.reason, None);
        // A newer engine's reason reads as unknown, never as an unreadable reply.
        let newer: ApiError = serde_json::from_str(
            r#"{"code":"conflict","message":"refused","reason":"from_the_future"}"#,
        )
        .unwrap();
        assert_eq!(newer.reason, Some(Reason::Unknown));
    }
}
