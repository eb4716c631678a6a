//! Downloads from S3: ranged GETs in parallel through [`super::super::ranged`], resumable, the
//! sha256 computed (and checked when the caller knows it) before the atomic rename.

use super::*;
use crate::storage::ranged::{self, RangePlan, RangeSource};
use bytes::Bytes;

/// One object's ranges, fetched with the store's client.
struct ObjectRanges<'a> {
    store: &'a S3Store,
    bucket: Bucket,
    path: &'a str,
    key: String,
    /// The version the ranges must come from, so a replaced object cannot be mixed in.
    etag: Option<String>,
}

#[async_trait]
impl RangeSource for ObjectRanges<'_> {
    async fn fetch(&self, start: u64, end: u64) -> Result<Bytes, StorageError> {
        let ctx = self
            .store
            .ctx(self.bucket, format!("downloading {}", self.key));
        let client = self.store.client().await;
        let get = || {
            client
                .get_object()
                .bucket(self.store.bucket_name(self.bucket))
                .key(&self.key)
                .range(format!("bytes={start}-{}", end - 1))
                .set_if_match(self.etag.clone())
                .send()
        };
        let started = std::time::Instant::now();
        loop {
            let out = upload::retrying(self.store.retry_for(), get, &ctx)
                .await
                .map_err(|e| match e {
                    StorageError::Remote { ref code, .. } if code == "NoSuchKey" => {
                        StorageError::NotFound {
                            bucket: self.bucket,
                            path: self.path.to_string(),
                        }
                    }
                    e => e,
                })?;
            // A connection that drops mid-body is retried like one that never connected.
            match out.body.collect().await {
                Ok(b) => return Ok(b.into_bytes()),
                Err(e) if started.elapsed() < self.store.retry_for() => {
                    tracing::warn!(key = %self.key, error = %e, "download broke off; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => {
                    return Err(StorageError::Unreachable {
                        endpoint: self.store.endpoint_label(),
                        message: format!("reading {}: {e}", self.key),
                    });
                }
            }
        }
    }
    fn describe(&self) -> String {
        format!("{}/{}", self.store.bucket_name(self.bucket), self.key)
    }
}

impl S3Store {
    /// Downloads an object to `dest`, resuming a partial download of the same version.
    pub(super) async fn download_file(
        &self,
        bucket: Bucket,
        path: &str,
        dest: &Path,
        expected: Option<&str>,
        progress: ProgressFn<'_>,
    ) -> Result<StoredObject, StorageError> {
        let key = self.key(bucket, path)?;
        let head = self
            .client()
            .await
            .head_object()
            .bucket(self.bucket_name(bucket))
            .key(&key)
            .send()
            .await
            .map_err(|e| errors::map_object(e, &self.ctx(bucket, &key), bucket, path))?;
        let size = head.content_length().unwrap_or(0).max(0) as u64;
        let etag = head.e_tag().map(str::to_string);
        let source = ObjectRanges {
            store: self,
            bucket,
            path,
            key,
            etag: etag.clone(),
        };
        let plan = RangePlan {
            range_size: self.part_size(),
            concurrency: self.config.concurrency,
        };
        let sha256 = ranged::download(
            &source,
            size,
            etag.as_deref().unwrap_or(""),
            dest,
            plan,
            expected,
            progress,
        )
        .await?;
        Ok(StoredObject {
            bucket,
            path: path.to_string(),
            size,
            sha256,
        })
    }
}
