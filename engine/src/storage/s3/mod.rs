//! The S3-compatible store (AWS S3, Cloudflare R2, MinIO, Backblaze B2, Supabase Storage),
//! through aws-sdk-s3. Uploads are multipart with parts in parallel, journaled as they
//! complete so a killed upload resumes ([`upload`]); downloads are ranged, in parallel and
//! resumable ([`download`]); remote trainers get presigned URLs.
//!
//! The client is made on first use (the AWS credential chain is async), so opening an engine
//! on S3 costs nothing until the store is needed and an unreachable server is reported by the
//! operation that needed it, with the endpoint named.

mod download;
mod errors;
mod upload;

use super::journal::UploadJournal;
use super::*;
use crate::config::S3Config;
use crate::secrets::Secrets;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    retry::RetryConfig, timeout::TimeoutConfig,
};
use aws_sdk_s3::presigning::PresigningConfig;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::OnceCell;

/// An S3 store. Cheap to share; every operation goes through one client.
pub struct S3Store {
    config: S3Config,
    /// Static credentials from BrightRun's secrets, when given; else the AWS chain.
    credentials: Option<Credentials>,
    client: OnceCell<Client>,
    journal: Arc<dyn UploadJournal>,
    /// Cleared when the server refuses sha256 part checksums, so later uploads go without.
    checksums: AtomicBool,
}

impl S3Store {
    /// A store for `config`; credentials from `secrets` (`s3_access_key_id`,
    /// `s3_secret_access_key`, optional `s3_session_token`) when both are there.
    pub fn new(config: S3Config, secrets: &Secrets, journal: Arc<dyn UploadJournal>) -> Self {
        let credentials = match (
            secrets.get("s3_access_key_id"),
            secrets.get("s3_secret_access_key"),
        ) {
            (Some(id), Some(key)) => Some(Credentials::new(
                id.expose(),
                key.expose(),
                secrets
                    .get("s3_session_token")
                    .map(|t| t.expose().to_string()),
                None,
                "brightrun-secrets",
            )),
            _ => None,
        };
        Self {
            config,
            credentials,
            client: OnceCell::new(),
            journal,
            checksums: AtomicBool::new(true),
        }
    }

    pub fn config(&self) -> &S3Config {
        &self.config
    }

    /// Where the store is, for messages: the endpoint, or AWS and the region.
    pub fn endpoint_label(&self) -> String {
        match &self.config.endpoint {
            Some(e) => e.clone(),
            None => format!("AWS S3 ({})", self.config.region),
        }
    }

    async fn client(&self) -> &Client {
        self.client
            .get_or_init(|| async {
                let timeouts = TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .read_timeout(Duration::from_secs(120))
                    .build();
                let mut builder = match &self.credentials {
                    Some(c) => aws_sdk_s3::Config::builder()
                        .behavior_version(BehaviorVersion::latest())
                        .credentials_provider(c.clone()),
                    None => {
                        let mut loader = aws_config::defaults(BehaviorVersion::latest())
                            .region(Region::new(self.config.region.clone()));
                        if let Some(p) = &self.config.profile {
                            loader = loader.profile_name(p);
                        }
                        aws_sdk_s3::config::Builder::from(&loader.load().await)
                    }
                };
                builder = builder
                    .region(Region::new(self.config.region.clone()))
                    .force_path_style(self.config.force_path_style)
                    .timeout_config(timeouts)
                    // Our own loop retries with backoff for as long as `retry_for_secs`.
                    .retry_config(RetryConfig::standard().with_max_attempts(2))
                    // The sha256 is ours to send; the SDK's default CRC32 trailers are refused
                    // by several S3-compatible servers.
                    .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                    .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
                if let Some(e) = &self.config.endpoint {
                    builder = builder.endpoint_url(e);
                }
                Client::from_conf(builder.build())
            })
            .await
    }

    /// The real bucket a logical bucket maps to.
    fn bucket_name(&self, bucket: Bucket) -> &str {
        match bucket {
            Bucket::Datasets => &self.config.datasets_bucket,
            Bucket::Models => &self.config.models_bucket,
        }
    }

    /// The object key of `path`: under the prefix, and under the logical bucket's name when
    /// datasets and models share one real bucket (so the two never collide).
    fn key(&self, bucket: Bucket, path: &str) -> Result<String, StorageError> {
        check_path(path)?;
        let mut key = String::new();
        if let Some(p) = self.config.prefix.as_deref().map(|p| p.trim_matches('/'))
            && !p.is_empty()
        {
            key.push_str(p);
            key.push('/');
        }
        if self.config.datasets_bucket == self.config.models_bucket {
            key.push_str(bucket.name());
            key.push('/');
        }
        key.push_str(path);
        Ok(key)
    }

    fn part_size(&self) -> u64 {
        self.config.part_size_mb * 1024 * 1024
    }

    fn retry_for(&self) -> Duration {
        Duration::from_secs(self.config.retry_for_secs)
    }

    /// Error context: which object, on which server.
    fn ctx(&self, bucket: Bucket, what: impl Into<String>) -> errors::Ctx {
        errors::Ctx {
            endpoint: self.endpoint_label(),
            bucket: self.bucket_name(bucket).to_string(),
            region: self.config.region.clone(),
            what: what.into(),
        }
    }

    /// Checks the store: the server answers, both buckets exist (made when `create` is set),
    /// and an object can be put, read back and deleted. Each step gets its own verdict.
    pub async fn check(&self, create: bool) -> Vec<CheckStep> {
        let mut steps = Vec::new();
        let mut buckets: Vec<Bucket> = vec![Bucket::Datasets];
        if self.config.models_bucket != self.config.datasets_bucket {
            buckets.push(Bucket::Models);
        }
        let client = self.client().await;
        for b in &buckets {
            let name = self.bucket_name(*b).to_string();
            let r = client.head_bucket().bucket(&name).send().await;
            let mut step = match r {
                Ok(_) => CheckStep::pass(format!("bucket {name}"), "present"),
                Err(e) => {
                    let err = errors::map(e, &self.ctx(*b, format!("bucket {name}")));
                    CheckStep::fail(format!("bucket {name}"), &err)
                }
            };
            if create && step.failure == Some(CheckFailure::NoBucket) {
                let mut req = client.create_bucket().bucket(&name);
                if self.config.endpoint.is_none() && self.config.region != "us-east-1" {
                    use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
                    req = req.create_bucket_configuration(
                        CreateBucketConfiguration::builder()
                            .location_constraint(BucketLocationConstraint::from(
                                self.config.region.as_str(),
                            ))
                            .build(),
                    );
                }
                step = match req.send().await {
                    Ok(_) => CheckStep::pass(format!("bucket {name}"), "created"),
                    Err(e) => {
                        let err = errors::map(e, &self.ctx(*b, format!("creating bucket {name}")));
                        CheckStep::fail(format!("bucket {name}"), &err)
                    }
                };
            }
            let unreachable = step.failure == Some(CheckFailure::Unreachable);
            steps.push(step);
            if unreachable {
                // One clear verdict; every other step would say the same.
                return steps;
            }
        }
        for b in &buckets {
            if steps
                .iter()
                .any(|s| !s.ok && s.what.ends_with(self.bucket_name(*b)))
            {
                continue;
            }
            steps.push(self.probe(*b).await);
        }
        steps
    }

    /// Puts, reads back and deletes a small object in `bucket`.
    async fn probe(&self, bucket: Bucket) -> CheckStep {
        let what = format!("put/get/delete in {}", self.bucket_name(bucket));
        let path = format!(".brightrun-probe/{}", uuid::Uuid::new_v4().simple());
        let body = format!("brightrun probe {path}");
        let run = async {
            let key = self.key(bucket, &path)?;
            let client = self.client().await;
            let ctx = self.ctx(bucket, format!("probe object {key}"));
            client
                .put_object()
                .bucket(self.bucket_name(bucket))
                .key(&key)
                .body(aws_sdk_s3::primitives::ByteStream::from(
                    body.clone().into_bytes(),
                ))
                .send()
                .await
                .map_err(|e| errors::map(e, &ctx))?;
            let got = client
                .get_object()
                .bucket(self.bucket_name(bucket))
                .key(&key)
                .send()
                .await
                .map_err(|e| errors::map(e, &ctx))?
                .body
                .collect()
                .await
                .map_err(|e| StorageError::Other(format!("reading {key}: {e}")))?
                .into_bytes();
            client
                .delete_object()
                .bucket(self.bucket_name(bucket))
                .key(&key)
                .send()
                .await
                .map_err(|e| errors::map(e, &ctx))?;
            if got.as_ref() != body.as_bytes() {
                return Err(StorageError::Corrupt {
                    what: key,
                    reason: "the probe read back differs from what was written".into(),
                });
            }
            Ok(())
        };
        match run.await {
            Ok(()) => CheckStep::pass(what, "ok"),
            Err(e) => CheckStep::fail(what, &e),
        }
    }

    /// Aborts multipart uploads started longer ago than `abort_unfinished_after_hours` that
    /// nobody resumed, so their parts stop costing money. Returns how many were aborted.
    pub async fn abort_stale_uploads(&self) -> Result<usize, StorageError> {
        let max_age = chrono::Duration::hours(self.config.abort_unfinished_after_hours as i64);
        let now = chrono::Utc::now();
        let mut n = 0;
        for u in self.journaled(|j| j.all()).await? {
            if now - u.started_at < max_age {
                continue;
            }
            self.abort(&u).await?;
            n += 1;
        }
        Ok(n)
    }

    async fn abort(&self, u: &journal::PendingUpload) -> Result<(), StorageError> {
        let key = self.key(u.bucket, &u.path)?;
        let r = self
            .client()
            .await
            .abort_multipart_upload()
            .bucket(self.bucket_name(u.bucket))
            .key(&key)
            .upload_id(&u.upload_id)
            .send()
            .await;
        match r {
            Ok(_) => {}
            // Already gone (completed, or aborted by a lifecycle rule): nothing is billed.
            Err(e) if errors::status(&e) == Some(404) => {}
            Err(e) => {
                return Err(errors::map(
                    e,
                    &self.ctx(u.bucket, format!("aborting upload of {key}")),
                ));
            }
        }
        tracing::info!(bucket = u.bucket.name(), path = %u.path, "aborted an unfinished multipart upload");
        let key = journal::PendingUpload::key(u.bucket, &u.path);
        self.journaled(move |j| j.finish(&key)).await
    }

    /// Runs `f` on the upload journal off the async workers: the engine's journal is its redb
    /// store, whose commits fsync ([`crate::store::off_runtime`]).
    pub(crate) async fn journaled<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn UploadJournal) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let journal = self.journal.clone();
        crate::store::off_runtime(move || f(&*journal))
            .await
            .map_err(|e| StorageError::Other(format!("the upload journal's task failed: {e}")))?
    }

    /// The unfinished uploads the journal holds.
    pub fn pending_uploads(&self) -> Result<Vec<journal::PendingUpload>, StorageError> {
        self.journal.all()
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    fn kind(&self) -> &'static str {
        "s3"
    }

    async fn put_file(
        &self,
        bucket: Bucket,
        path: &str,
        src: &Path,
        progress: ProgressFn<'_>,
    ) -> Result<StoredObject, StorageError> {
        Ok(self.upload_file(bucket, path, src, progress, None).await?.0)
    }

    async fn put_file_tee(
        &self,
        bucket: Bucket,
        path: &str,
        src: &Path,
        progress: ProgressFn<'_>,
        tee: ChunkTee,
    ) -> Result<(StoredObject, bool), StorageError> {
        self.upload_file(bucket, path, src, progress, Some(tee))
            .await
    }

    async fn put_reader(
        &self,
        bucket: Bucket,
        path: &str,
        reader: &mut (dyn tokio::io::AsyncRead + Send + Unpin),
        progress: ProgressFn<'_>,
    ) -> Result<StoredObject, StorageError> {
        self.upload_stream(bucket, path, reader, progress).await
    }

    async fn get_to_file(
        &self,
        bucket: Bucket,
        path: &str,
        dest: &Path,
        progress: ProgressFn<'_>,
    ) -> Result<StoredObject, StorageError> {
        self.download_file(bucket, path, dest, None, progress).await
    }

    async fn open(
        &self,
        bucket: Bucket,
        path: &str,
    ) -> Result<Box<dyn tokio::io::AsyncRead + Send + Unpin>, StorageError> {
        let key = self.key(bucket, path)?;
        let out = self
            .client()
            .await
            .get_object()
            .bucket(self.bucket_name(bucket))
            .key(&key)
            .send()
            .await
            .map_err(|e| errors::map_object(e, &self.ctx(bucket, &key), bucket, path))?;
        Ok(Box::new(out.body.into_async_read()))
    }

    async fn size(&self, bucket: Bucket, path: &str) -> Result<Option<u64>, StorageError> {
        let key = self.key(bucket, path)?;
        match self
            .client()
            .await
            .head_object()
            .bucket(self.bucket_name(bucket))
            .key(&key)
            .send()
            .await
        {
            Ok(h) => Ok(Some(h.content_length().unwrap_or(0).max(0) as u64)),
            Err(e) if errors::status(&e) == Some(404) => Ok(None),
            Err(e) => Err(errors::map(e, &self.ctx(bucket, &key))),
        }
    }

    async fn delete(&self, bucket: Bucket, path: &str) -> Result<(), StorageError> {
        let key = self.key(bucket, path)?;
        // An unfinished upload of this object goes too.
        let pending = journal::PendingUpload::key(bucket, path);
        if let Some(u) = self.journaled(move |j| j.load(&pending)).await? {
            self.abort(&u).await?;
        }
        self.client()
            .await
            .delete_object()
            .bucket(self.bucket_name(bucket))
            .key(&key)
            .send()
            .await
            .map_err(|e| errors::map(e, &self.ctx(bucket, &key)))?;
        Ok(())
    }

    fn local_path(&self, _bucket: Bucket, _path: &str) -> Option<PathBuf> {
        None
    }

    async fn presign_get(
        &self,
        bucket: Bucket,
        path: &str,
        ttl: Duration,
    ) -> Result<Option<String>, StorageError> {
        let key = self.key(bucket, path)?;
        let req = self
            .client()
            .await
            .get_object()
            .bucket(self.bucket_name(bucket))
            .key(&key)
            .presigned(presigning(ttl)?)
            .await
            .map_err(|e| errors::map(e, &self.ctx(bucket, &key)))?;
        Ok(Some(req.uri().to_string()))
    }

    async fn presign_put(
        &self,
        bucket: Bucket,
        path: &str,
        ttl: Duration,
    ) -> Result<Option<String>, StorageError> {
        let key = self.key(bucket, path)?;
        let req = self
            .client()
            .await
            .put_object()
            .bucket(self.bucket_name(bucket))
            .key(&key)
            .presigned(presigning(ttl)?)
            .await
            .map_err(|e| errors::map(e, &self.ctx(bucket, &key)))?;
        Ok(Some(req.uri().to_string()))
    }

    async fn check(&self, create_buckets: bool) -> Vec<CheckStep> {
        S3Store::check(self, create_buckets).await
    }

    async fn resume_uploads(&self) -> Result<usize, StorageError> {
        self.abort_stale_uploads().await
    }

    async fn reachable(&self) -> bool {
        self.client()
            .await
            .head_bucket()
            .bucket(self.bucket_name(Bucket::Datasets))
            .send()
            .await
            .is_ok()
    }
}

/// S3 allows presigned URLs of at most 7 days.
fn presigning(ttl: Duration) -> Result<PresigningConfig, StorageError> {
    if ttl > Duration::from_secs(7 * 24 * 3600) || ttl.is_zero() {
        return Err(StorageError::Other(
            "a presigned URL lasts between 1 second and 7 days".into(),
        ));
    }
    PresigningConfig::expires_in(ttl).map_err(|e| StorageError::Other(e.to_string()))
}
