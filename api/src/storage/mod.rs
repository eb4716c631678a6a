//! The object-store vocabulary clients share with the engine: the seed's buckets, object
//! paths and their checks, storage errors, `storage check` verdicts, and ranged downloads (the
//! client's model download uses them; the engine's S3 store too). The stores themselves (local
//! folder, S3) are the engine's.

pub mod ranged;

use std::path::PathBuf;
use std::time::Duration;

/// The seed's two buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    Datasets,
    Models,
}

impl Bucket {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Datasets => "lora-datasets",
            Self::Models => "lora-models",
        }
    }

    /// Largest object the bucket accepts: 500 MB for datasets, 5 GB for models.
    pub fn max_object_size(&self) -> u64 {
        match self {
            Self::Datasets => 500 * 1000 * 1000,
            Self::Models => 5 * 1000 * 1000 * 1000,
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "lora-datasets" => Some(Self::Datasets),
            "lora-models" => Some(Self::Models),
            _ => None,
        }
    }

    /// Presigned URL lifetimes from the seed: 1 h for uploads, 24 h for downloads.
    pub const UPLOAD_URL_TTL: Duration = Duration::from_secs(3600);
    pub const DOWNLOAD_URL_TTL: Duration = Duration::from_secs(24 * 3600);
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(
        "{what} is {size} bytes, over the {limit}-byte limit of bucket {bucket}",
        bucket = bucket.name()
    )]
    TooLarge {
        what: String,
        size: u64,
        limit: u64,
        bucket: Bucket,
    },
    #[error("invalid object path `{path}`: {reason}")]
    BadPath { path: String, reason: &'static str },
    #[error("object {bucket}/{path} does not exist", bucket = bucket.name())]
    NotFound { bucket: Bucket, path: String },
    #[error("{action} {}: {}", path.display(), crate::space::io_detail(path, source))]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot reach the S3 endpoint {endpoint}: {message}; check [storage.s3] endpoint and \
         that the server is up"
    )]
    Unreachable { endpoint: String, message: String },
    #[error(
        "{endpoint} refused the credentials for bucket {bucket} ({code}); check \
         s3_access_key_id and s3_secret_access_key (secrets.toml or \
         BRIGHTRUN_SECRET_S3_ACCESS_KEY_ID / _SECRET_ACCESS_KEY) or the AWS profile"
    )]
    Denied {
        endpoint: String,
        bucket: String,
        code: String,
    },
    #[error(
        "bucket {bucket} does not exist on {endpoint}; create it, or run \
         `brightrun storage check --create-buckets`"
    )]
    NoBucket { endpoint: String, bucket: String },
    #[error(
        "bucket {bucket} is not in region {region}{}; set [storage.s3] region",
        actual.as_deref().map(|a| format!(" (it is in {a})")).unwrap_or_default()
    )]
    WrongRegion {
        bucket: String,
        region: String,
        actual: Option<String>,
    },
    #[error("{what}: {reason}")]
    Corrupt { what: String, reason: String },
    /// The server no longer knows a multipart upload (aborted, or its state was lost).
    #[error("{what}: the server no longer knows this upload")]
    UploadGone { what: String },
    #[error("{what} on {endpoint}: {code}: {message}")]
    Remote {
        endpoint: String,
        what: String,
        code: String,
        message: String,
    },
    #[error("{0}")]
    Other(String),
}

impl StorageError {
    /// Worth retrying: the server is away or overloaded, not refusing.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Remote { code, .. } => {
                matches!(
                    code.as_str(),
                    "InternalError"
                        | "ServiceUnavailable"
                        | "SlowDown"
                        | "RequestTimeout"
                        | "RequestTimeTooSkewed"
                        | "ThrottlingException"
                ) || code.starts_with("HTTP 5")
                    || code == "HTTP 429"
            }
            _ => false,
        }
    }

    /// The server does not implement what was asked (sha256 checksums on some servers).
    #[doc(hidden)]
    pub fn is_unsupported(&self) -> bool {
        matches!(self, Self::Remote { code, .. }
            if matches!(code.as_str(), "NotImplemented" | "InvalidArgument" | "InvalidRequest"))
    }

    /// The verdict `storage check` shows for this error.
    pub fn failure(&self) -> CheckFailure {
        match self {
            Self::Unreachable { .. } => CheckFailure::Unreachable,
            Self::Denied { .. } => CheckFailure::Denied,
            Self::NoBucket { .. } => CheckFailure::NoBucket,
            Self::WrongRegion { .. } => CheckFailure::WrongRegion,
            _ => CheckFailure::Other,
        }
    }
}

/// Why a `storage check` step failed, for scripts (`--json`) and the status bar.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CheckFailure {
    Unreachable,
    Denied,
    NoBucket,
    WrongRegion,
    Other,
}

/// One step of `storage check`, with its verdict.
#[derive(
    Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct CheckStep {
    /// What was checked: `endpoint`, `bucket lora-datasets`, `put/get/delete in …`.
    pub what: String,
    pub ok: bool,
    /// `present`, `created`, `ok`, or what is wrong and what to do.
    pub detail: String,
    pub failure: Option<CheckFailure>,
}

impl CheckStep {
    pub fn pass(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            ok: true,
            detail: detail.into(),
            failure: None,
        }
    }
    pub fn fail(what: impl Into<String>, err: &StorageError) -> Self {
        Self {
            what: what.into(),
            ok: false,
            detail: err.to_string(),
            failure: Some(err.failure()),
        }
    }
}

/// Called with (bytes done, bytes total) while copying.
pub type ProgressFn<'a> = &'a (dyn Fn(u64, u64) + Send + Sync);

/// Builds the seed's path layout, `{user_id}/{item_id}/{file_name}`, checking every part.
pub fn object_path(parts: &[&str]) -> Result<String, StorageError> {
    let path = parts.join("/");
    check_path(&path)?;
    Ok(path)
}

/// Refuses paths that could escape the bucket or name nothing.
pub fn check_path(path: &str) -> Result<(), StorageError> {
    let bad = |reason| StorageError::BadPath {
        path: path.to_string(),
        reason,
    };
    if path.is_empty() {
        return Err(bad("empty"));
    }
    if path.starts_with('/') || path.contains('\\') {
        return Err(bad("must be relative, with `/` separators"));
    }
    for part in path.split('/') {
        match part {
            "" => return Err(bad("empty component")),
            "." | ".." => return Err(bad("`.` and `..` are not allowed")),
            p if p.chars().any(|c| c.is_control()) => {
                return Err(bad("control characters are not allowed"));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_cannot_escape() {
        assert!(object_path(&["u", "d", "f.jsonl"]).is_ok());
        for bad in ["", "/abs", "a/../b", "a//b", "./a", "a\\b", "a/\nb"] {
            assert!(check_path(bad).is_err(), "{bad:?} accepted");
        }
    }
}
