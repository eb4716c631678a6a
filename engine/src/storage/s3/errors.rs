//! S3 errors as messages that say what to fix: an unreachable endpoint, refused credentials,
//! a missing bucket and a wrong region each get their own [`StorageError`].

use super::super::{Bucket, StorageError};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// Which object, on which server: what every message names.
pub(crate) struct Ctx {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub what: String,
}

/// The HTTP status of the server's answer, when there was one.
pub(crate) fn status<E, R: HasStatus>(e: &SdkError<E, R>) -> Option<u16> {
    e.raw_response().map(|r| r.status_code())
}

/// The response types the SDK hands back, as far as we need them.
pub(crate) trait HasStatus {
    fn status_code(&self) -> u16;
    fn header(&self, name: &str) -> Option<String>;
}

impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
    fn header(&self, name: &str) -> Option<String> {
        self.headers().get(name).map(|v| v.to_string())
    }
}

/// One line for any SDK error, with its whole cause chain (the SDK's own `Display` says only
/// "dispatch failure").
pub fn describe_sdk_error<E: std::error::Error + 'static, R: std::fmt::Debug + 'static>(
    e: &SdkError<E, R>,
) -> String {
    let mut out = String::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if !s.is_empty() && !out.contains(&s) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&s);
        }
        cur = err.source();
    }
    out
}

/// Maps an SDK error about `ctx` to the message that names what to fix.
pub(crate) fn map<E, R>(e: SdkError<E, R>, ctx: &Ctx) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: HasStatus + std::fmt::Debug + 'static,
{
    match &e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            return StorageError::Unreachable {
                endpoint: ctx.endpoint.clone(),
                message: describe_sdk_error(&e),
            };
        }
        SdkError::ConstructionFailure(_) => {
            return StorageError::Other(format!("{}: {}", ctx.what, describe_sdk_error(&e)));
        }
        _ => {}
    }
    let code = e.code().unwrap_or("").to_string();
    let message = e.message().unwrap_or("").to_string();
    let status = status(&e);
    let region_header = e
        .raw_response()
        .and_then(|r| r.header("x-amz-bucket-region"));
    classify(ctx, status, &code, &message, region_header).unwrap_or_else(|| StorageError::Remote {
        endpoint: ctx.endpoint.clone(),
        what: ctx.what.clone(),
        code: if code.is_empty() {
            status
                .map(|s| format!("HTTP {s}"))
                .unwrap_or_else(|| "error".into())
        } else {
            code
        },
        message: if message.is_empty() {
            describe_sdk_error(&e)
        } else {
            message
        },
    })
}

/// As [`map`], with a 404 on an object reported as that object missing.
pub(crate) fn map_object<E, R>(
    e: SdkError<E, R>,
    ctx: &Ctx,
    bucket: Bucket,
    path: &str,
) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: HasStatus + std::fmt::Debug + 'static,
{
    let code = e.code().unwrap_or("").to_string();
    if status(&e) == Some(404) && code != "NoSuchBucket" {
        return StorageError::NotFound {
            bucket,
            path: path.to_string(),
        };
    }
    map(e, ctx)
}

/// The verdicts that have their own message. Pure, so the cases a test server cannot produce
/// (a wrong region on AWS) are tested too.
pub(crate) fn classify(
    ctx: &Ctx,
    status: Option<u16>,
    code: &str,
    message: &str,
    region_header: Option<String>,
) -> Option<StorageError> {
    let wrong_region = matches!(
        code,
        "PermanentRedirect" | "AuthorizationHeaderMalformed" | "IllegalLocationConstraintException"
    ) || status == Some(301)
        || (code.is_empty() && region_header.as_deref().is_some_and(|r| r != ctx.region));
    if wrong_region {
        return Some(StorageError::WrongRegion {
            bucket: ctx.bucket.clone(),
            region: ctx.region.clone(),
            actual: region_header.or_else(|| expected_region(message)),
        });
    }
    match code {
        "NoSuchBucket" => Some(StorageError::NoBucket {
            endpoint: ctx.endpoint.clone(),
            bucket: ctx.bucket.clone(),
        }),
        "InvalidAccessKeyId"
        | "SignatureDoesNotMatch"
        | "AccessDenied"
        | "InvalidToken"
        | "ExpiredToken"
        | "InvalidSecurity" => Some(StorageError::Denied {
            endpoint: ctx.endpoint.clone(),
            bucket: ctx.bucket.clone(),
            code: code.to_string(),
        }),
        // HeadBucket answers with a bare status and no body.
        "" | "NotFound" if status == Some(404) && ctx.what.starts_with("bucket ") => {
            Some(StorageError::NoBucket {
                endpoint: ctx.endpoint.clone(),
                bucket: ctx.bucket.clone(),
            })
        }
        "" | "Forbidden" if status == Some(403) => Some(StorageError::Denied {
            endpoint: ctx.endpoint.clone(),
            bucket: ctx.bucket.clone(),
            code: "403 Forbidden".into(),
        }),
        _ => None,
    }
}

/// AWS says "the region 'us-east-1' is wrong; expecting 'eu-west-1'".
fn expected_region(message: &str) -> Option<String> {
    let rest = message.split("expecting '").nth(1)?;
    Some(rest.split('\'').next()?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(what: &str) -> Ctx {
        Ctx {
            endpoint: "http://127.0.0.1:9000".into(),
            bucket: "lora-datasets".into(),
            region: "us-east-1".into(),
            what: what.into(),
        }
    }

    #[test]
    fn each_misconfiguration_has_its_own_message() {
        let c = ctx("bucket lora-datasets");
        let e = classify(&c, Some(404), "", "", None).unwrap();
        assert!(matches!(e, StorageError::NoBucket { .. }), "{e}");
        assert!(e.to_string().contains("--create-buckets"), "{e}");
        let e = classify(&c, Some(403), "SignatureDoesNotMatch", "", None).unwrap();
        assert!(matches!(e, StorageError::Denied { .. }), "{e}");
        assert!(e.to_string().contains("s3_secret_access_key"), "{e}");
        let e = classify(&c, Some(301), "", "", Some("eu-west-1".into())).unwrap();
        assert!(e.to_string().contains("eu-west-1"), "{e}");
        assert!(e.to_string().contains("region"), "{e}");
        let e = classify(
            &c,
            Some(400),
            "AuthorizationHeaderMalformed",
            "the region 'us-east-1' is wrong; expecting 'ap-south-1'",
            None,
        )
        .unwrap();
        assert!(e.to_string().contains("ap-south-1"), "{e}");
        // An object's 404 is not a missing bucket.
        assert!(classify(&ctx("object a/b"), Some(404), "NoSuchKey", "", None).is_none());
    }
}
