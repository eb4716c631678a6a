//! Uploads: one PUT for a file that fits in a part, else a multipart upload with parts in
//! parallel. The source is read once, by one thread, which hashes it (the sha256 recorded),
//! hands each chunk to the validator (`tee`) and cuts it into parts; the parts go up
//! `concurrency` at a time, each with its own sha256 checksum where the server takes them.
//! Every confirmed part is journaled at once, so a kill, a crash or a server that stays away
//! longer than `retry_for_secs` loses nothing: the same file added again resumes, and the parts
//! already stored are not sent again.

use super::errors;
use super::journal::{DonePart, PendingUpload, SourceStamp};
use super::*;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use base64::Engine as _;
use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Read;
use tokio::io::AsyncReadExt;

/// Chunks handed to the hasher and the tee: the size the validator reads best.
const CHUNK: usize = 1 << 20;

/// A part read from the source, ready to send.
struct Part {
    number: i32,
    bytes: Bytes,
}

/// What the reading thread found: the whole file's size and sha256.
type ReadResult = Result<(u64, String), StorageError>;

impl S3Store {
    /// Uploads `src` to `bucket`/`path`, resuming an unfinished upload of the same file.
    pub(super) async fn upload_file(
        &self,
        bucket: Bucket,
        path: &str,
        src: &Path,
        progress: ProgressFn<'_>,
        tee: Option<ChunkTee>,
    ) -> Result<(StoredObject, bool), StorageError> {
        let teed = tee.is_some();
        let meta = tokio::fs::metadata(src)
            .await
            .map_err(|source| StorageError::Io {
                action: "reading",
                path: src.to_path_buf(),
                source,
            })?;
        let size = check_source(src, &meta, Some((bucket.max_object_size(), bucket)))?;
        let key = self.key(bucket, path)?;
        if size <= self.part_size() {
            let obj = self
                .put_small_file(bucket, path, &key, src, size, progress, tee)
                .await?;
            return Ok((obj, teed));
        }
        let stamp = SourceStamp::of(src, &meta);
        let jkey = PendingUpload::key(bucket, path);
        let loading = jkey.clone();
        let pending = match self.journaled(move |j| j.load(&loading)).await? {
            Some(p) if p.source == stamp && p.part_size == self.part_size() => {
                tracing::info!(
                    path,
                    parts = p.parts.len(),
                    bytes = p.bytes_stored(),
                    "resuming a multipart upload"
                );
                p
            }
            Some(stale) => {
                // The file changed since: its stored parts are of other bytes.
                let _ = self.abort(&stale).await;
                self.create_upload(bucket, path, &key, stamp).await?
            }
            None => self.create_upload(bucket, path, &key, stamp).await?,
        };
        match self
            .send_parts(&pending, &key, src, size, progress, tee)
            .await
        {
            Err(StorageError::UploadGone { .. }) => {
                // The server no longer knows the upload (aborted, or its state was lost):
                // start over once; the caller's tee has seen the bytes, so it goes unfed.
                let gone = jkey.clone();
                self.journaled(move |j| j.finish(&gone)).await?;
                let stamp = SourceStamp::of(src, &meta);
                let fresh = self.create_upload(bucket, path, &key, stamp).await?;
                self.send_parts(&fresh, &key, src, size, progress, None)
                    .await
                    .map(|r| (r, false))
            }
            other => other.map(|r| (r, teed)),
        }
        .map(|((size, sha256), teed)| {
            (
                StoredObject {
                    bucket,
                    path: path.to_string(),
                    size,
                    sha256,
                },
                teed,
            )
        })
    }

    async fn create_upload(
        &self,
        bucket: Bucket,
        path: &str,
        key: &str,
        source: SourceStamp,
    ) -> Result<PendingUpload, StorageError> {
        let ctx = self.ctx(bucket, format!("starting the upload of {key}"));
        let client = self.client().await;
        let mut checksums = self.checksums.load(Ordering::Relaxed);
        let out = loop {
            let mut req = client
                .create_multipart_upload()
                .bucket(self.bucket_name(bucket))
                .key(key);
            if checksums {
                req = req.checksum_algorithm(ChecksumAlgorithm::Sha256);
            }
            match retrying(self.retry_for(), || req.clone().send(), &ctx).await {
                Ok(o) => break o,
                Err(e) if checksums && e.is_unsupported() => {
                    tracing::info!("the S3 server refuses sha256 checksums; uploading without");
                    self.checksums.store(false, Ordering::Relaxed);
                    checksums = false;
                }
                Err(e) => return Err(e),
            }
        };
        let upload_id = out
            .upload_id()
            .ok_or_else(|| {
                StorageError::Other(format!("{}: the server gave no upload id", ctx.what))
            })?
            .to_string();
        let pending = PendingUpload {
            bucket,
            path: path.to_string(),
            upload_id,
            source,
            part_size: self.part_size(),
            checksums,
            parts: Vec::new(),
            started_at: chrono::Utc::now(),
        };
        let begun = pending.clone();
        self.journaled(move |j| j.begin(&begun)).await?;
        Ok(pending)
    }

    /// Reads the source once and sends the parts the journal does not have, then completes
    /// the upload and checks the object's size. Returns (size, sha256).
    async fn send_parts(
        &self,
        pending: &PendingUpload,
        key: &str,
        src: &Path,
        size: u64,
        progress: ProgressFn<'_>,
        tee: Option<ChunkTee>,
    ) -> Result<(u64, String), StorageError> {
        let bucket = pending.bucket;
        let jkey = PendingUpload::key(bucket, &pending.path);
        let mut done: HashMap<i32, DonePart> = pending
            .parts
            .iter()
            .map(|p| (p.number, p.clone()))
            .collect();
        let skip: std::collections::HashSet<i32> = done.keys().copied().collect();
        let already = done.values().map(|p| p.size).sum::<u64>();
        let (tx, rx) = tokio::sync::mpsc::channel::<Part>(self.config.concurrency);
        let part_size = pending.part_size;
        let source = src.to_path_buf();
        let reader = tokio::task::spawn_blocking(move || {
            read_parts(&source, size, part_size, &skip, &tx, tee)
        });
        let mut stored = already;
        progress(stored, size);
        let ctx = self.ctx(bucket, format!("uploading {key}"));
        let sent = {
            let uploads = tokio_stream::wrappers::ReceiverStream::new(rx)
                .map(|part| self.send_part(pending, key, part, &ctx))
                .buffer_unordered(self.config.concurrency);
            tokio::pin!(uploads);
            let mut sent = 0usize;
            let mut failure = None;
            while let Some(r) = uploads.next().await {
                match r {
                    Ok(part) => {
                        let (k, p) = (jkey.clone(), part.clone());
                        self.journaled(move |j| j.part_done(&k, &p)).await?;
                        tracing::debug!(path = %pending.path, part = part.number, "part stored");
                        stored += part.size;
                        sent += 1;
                        progress(stored, size);
                        done.insert(part.number, part);
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            match failure {
                Some(e) => Err(e),
                None => Ok(sent),
            }
        };
        let read = reader
            .await
            .map_err(|_| StorageError::Other("the upload's reader stopped unexpectedly".into()))?;
        let sent = sent?;
        let (read_size, sha256) = read?;
        tracing::info!(
            path = %pending.path, sent, skipped = pending.parts.len(),
            "multipart upload: parts sent (skipped: already stored)"
        );
        let mut parts: Vec<DonePart> = done.into_values().collect();
        self.complete(pending, key, &mut parts).await?;
        let done = jkey.clone();
        self.journaled(move |j| j.finish(&done)).await?;
        self.verify_size(bucket, &pending.path, key, read_size)
            .await?;
        Ok((read_size, sha256))
    }

    /// Completes a multipart upload from its confirmed parts (in part order).
    async fn complete(
        &self,
        pending: &PendingUpload,
        key: &str,
        parts: &mut [DonePart],
    ) -> Result<(), StorageError> {
        parts.sort_by_key(|p| p.number);
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(
                parts
                    .iter()
                    .map(|p| {
                        CompletedPart::builder()
                            .part_number(p.number)
                            .e_tag(&p.etag)
                            .set_checksum_sha256(p.checksum_sha256.clone())
                            .build()
                    })
                    .collect(),
            ))
            .build();
        let client = self.client().await;
        let complete = || {
            client
                .complete_multipart_upload()
                .bucket(self.bucket_name(pending.bucket))
                .key(key)
                .upload_id(&pending.upload_id)
                .multipart_upload(completed.clone())
                .send()
        };
        let ctx = self.ctx(pending.bucket, format!("completing the upload of {key}"));
        match retrying(self.retry_for(), complete, &ctx).await {
            Err(e) => Err(self.denied_upload(pending.bucket, e, &ctx).await),
            Ok(_) => Ok(()),
        }
    }

    /// An error on an existing upload id: some servers (s3s-fs) answer AccessDenied where AWS
    /// says NoSuchUpload for an upload they no longer know (lost in a restart, say). The
    /// credentials are blamed only when a request of their own (HeadBucket) is refused too;
    /// otherwise the upload is gone and starts afresh.
    async fn denied_upload(
        &self,
        bucket: Bucket,
        e: StorageError,
        ctx: &errors::Ctx,
    ) -> StorageError {
        if !matches!(e, StorageError::Denied { .. }) {
            return e;
        }
        let client = self.client().await;
        match client
            .head_bucket()
            .bucket(self.bucket_name(bucket))
            .send()
            .await
        {
            Ok(_) => {
                tracing::info!(what = %ctx.what, "the server refused a known upload id but accepts the credentials: starting the upload afresh");
                StorageError::UploadGone {
                    what: ctx.what.clone(),
                }
            }
            Err(_) => e,
        }
    }

    /// Sends one part (retrying while the server is away), returning it as confirmed.
    async fn send_part(
        &self,
        pending: &PendingUpload,
        key: &str,
        part: Part,
        ctx: &errors::Ctx,
    ) -> Result<DonePart, StorageError> {
        let size = part.bytes.len() as u64;
        let checksum = if pending.checksums {
            let bytes = part.bytes.clone();
            let digest = tokio::task::spawn_blocking(move || Sha256::digest(&bytes))
                .await
                .map_err(|_| StorageError::Other("hashing a part stopped unexpectedly".into()))?;
            Some(base64::engine::general_purpose::STANDARD.encode(digest))
        } else {
            None
        };
        let client = self.client().await;
        let send = || {
            client
                .upload_part()
                .bucket(self.bucket_name(pending.bucket))
                .key(key)
                .upload_id(&pending.upload_id)
                .part_number(part.number)
                .content_length(size as i64)
                .set_checksum_sha256(checksum.clone())
                .body(ByteStream::from(part.bytes.clone()))
                .send()
        };
        let out = match retrying(self.retry_for(), send, ctx).await {
            Ok(out) => out,
            Err(e) => return Err(self.denied_upload(pending.bucket, e, ctx).await),
        };
        Ok(DonePart {
            number: part.number,
            size,
            etag: out.e_tag().unwrap_or_default().to_string(),
            checksum_sha256: checksum,
        })
    }

    /// A file that fits in one part: one PUT with the whole file's sha256 as its checksum.
    #[allow(clippy::too_many_arguments)]
    async fn put_small_file(
        &self,
        bucket: Bucket,
        path: &str,
        key: &str,
        src: &Path,
        size: u64,
        progress: ProgressFn<'_>,
        mut tee: Option<ChunkTee>,
    ) -> Result<StoredObject, StorageError> {
        let source = src.to_path_buf();
        let (bytes, digest) = tokio::task::spawn_blocking(move || {
            let mut f = std::fs::File::open(&source)?;
            let mut buf = Vec::with_capacity(size as usize);
            f.read_to_end(&mut buf)?;
            let digest = Sha256::digest(&buf);
            if let Some(tee) = tee.as_mut() {
                for chunk in buf.chunks(CHUNK) {
                    if !tee(Arc::new(chunk.to_vec())) {
                        break;
                    }
                }
            }
            Ok::<_, std::io::Error>((Bytes::from(buf), digest))
        })
        .await
        .map_err(|_| StorageError::Other("the upload's reader stopped unexpectedly".into()))?
        .map_err(|source| StorageError::Io {
            action: "reading",
            path: src.to_path_buf(),
            source,
        })?;
        let bytes_len = bytes.len() as u64;
        check_size(src, bytes_len, bucket)?;
        let _ = size;
        self.put_bytes(bucket, path, key, bytes, &digest, progress)
            .await?;
        Ok(StoredObject {
            bucket,
            path: path.to_string(),
            size: bytes_len,
            sha256: hex::encode(digest),
        })
    }

    /// One PUT of bytes in memory, with their sha256 as checksum where the server takes it.
    async fn put_bytes(
        &self,
        bucket: Bucket,
        path: &str,
        key: &str,
        bytes: Bytes,
        digest: &[u8],
        progress: ProgressFn<'_>,
    ) -> Result<(), StorageError> {
        let len = bytes.len() as u64;
        progress(0, len);
        let ctx = self.ctx(bucket, format!("uploading {key}"));
        let client = self.client().await;
        let checksum = base64::engine::general_purpose::STANDARD.encode(digest);
        loop {
            let with_checksum = self.checksums.load(Ordering::Relaxed);
            let put = || {
                let mut req = client
                    .put_object()
                    .bucket(self.bucket_name(bucket))
                    .key(key)
                    .content_length(len as i64)
                    .body(ByteStream::from(bytes.clone()));
                if with_checksum {
                    req = req.checksum_sha256(&checksum);
                }
                req.send()
            };
            match retrying(self.retry_for(), put, &ctx).await {
                Ok(_) => break,
                Err(e) if with_checksum && e.is_unsupported() => {
                    self.checksums.store(false, Ordering::Relaxed);
                }
                Err(e) => return Err(e),
            }
        }
        self.verify_size(bucket, path, key, len).await?;
        progress(len, len);
        Ok(())
    }

    /// The object's size must be what was sent; otherwise it is deleted and the upload fails.
    async fn verify_size(
        &self,
        bucket: Bucket,
        path: &str,
        key: &str,
        expected: u64,
    ) -> Result<(), StorageError> {
        let got = self.size(bucket, path).await?;
        if got != Some(expected) {
            let _ = self.delete(bucket, path).await;
            return Err(StorageError::Corrupt {
                what: format!("{}/{key}", self.bucket_name(bucket)),
                reason: format!(
                    "the server stored {} bytes of {expected}; nothing was kept",
                    got.map(|g| g.to_string()).unwrap_or_else(|| "no".into())
                ),
            });
        }
        Ok(())
    }

    /// Stores a stream (an upload's body). It cannot be read twice, so it is not resumable:
    /// on failure the multipart upload is aborted.
    pub(super) async fn upload_stream(
        &self,
        bucket: Bucket,
        path: &str,
        reader: &mut (dyn tokio::io::AsyncRead + Send + Unpin),
        progress: ProgressFn<'_>,
    ) -> Result<StoredObject, StorageError> {
        let key = self.key(bucket, path)?;
        let part_size = self.part_size() as usize;
        let mut hasher = Sha256::new();
        let mut total = 0u64;
        let first = read_part(reader, part_size, bucket, path, &mut total).await?;
        hasher.update(&first);
        if first.len() < part_size {
            let digest = hasher.finalize();
            self.put_bytes(bucket, path, &key, first, &digest, progress)
                .await?;
            return Ok(StoredObject {
                bucket,
                path: path.to_string(),
                size: total,
                sha256: hex::encode(digest),
            });
        }
        let stamp = SourceStamp {
            path: format!("stream:{}", uuid::Uuid::new_v4()),
            size: 0,
            modified_ns: 0,
        };
        let pending = self.create_upload(bucket, path, &key, stamp).await?;
        let jkey = PendingUpload::key(bucket, path);
        let ctx = self.ctx(bucket, format!("uploading {key}"));
        let result = async {
            let mut parts = Vec::new();
            let mut in_flight = futures::stream::FuturesUnordered::new();
            let mut next: Option<Bytes> = Some(first);
            let mut number = 0i32;
            loop {
                while in_flight.len() < self.config.concurrency
                    && let Some(bytes) = next.take()
                {
                    number += 1;
                    in_flight.push(self.send_part(&pending, &key, Part { number, bytes }, &ctx));
                    let more = read_part(reader, part_size, bucket, path, &mut total).await?;
                    if !more.is_empty() {
                        hasher.update(&more);
                        next = Some(more);
                    }
                }
                match in_flight.next().await {
                    Some(r) => {
                        let part = r?;
                        progress(total, total);
                        parts.push(part);
                    }
                    None => break,
                }
            }
            self.complete(&pending, &key, &mut parts).await?;
            let done = jkey.clone();
            self.journaled(move |j| j.finish(&done)).await?;
            self.verify_size(bucket, path, &key, total).await
        }
        .await;
        if let Err(e) = result {
            let _ = self.abort(&pending).await;
            return Err(e);
        }
        Ok(StoredObject {
            bucket,
            path: path.to_string(),
            size: total,
            sha256: hex::encode(hasher.finalize()),
        })
    }
}

/// Reads up to `part_size` bytes (less only at the end), counting them against the limit.
async fn read_part(
    reader: &mut (dyn tokio::io::AsyncRead + Send + Unpin),
    part_size: usize,
    bucket: Bucket,
    path: &str,
    total: &mut u64,
) -> Result<Bytes, StorageError> {
    let mut buf = Vec::with_capacity(part_size);
    let mut limited = reader.take(part_size as u64);
    limited
        .read_to_end(&mut buf)
        .await
        .map_err(|e| StorageError::Other(format!("receiving {path}: {e}")))?;
    *total += buf.len() as u64;
    if *total > bucket.max_object_size() {
        return Err(StorageError::TooLarge {
            what: path.to_string(),
            size: *total,
            limit: bucket.max_object_size(),
            bucket,
        });
    }
    Ok(Bytes::from(buf))
}

/// The reading thread: reads `src` once, hashing every byte and handing it to `tee`, and
/// sends the parts not in `skip` to the uploaders. A file that changes size while it is read
/// is refused (its stored parts would not be the file).
fn read_parts(
    src: &Path,
    size: u64,
    part_size: u64,
    skip: &std::collections::HashSet<i32>,
    tx: &tokio::sync::mpsc::Sender<Part>,
    mut tee: Option<ChunkTee>,
) -> ReadResult {
    let io = |source| StorageError::Io {
        action: "reading",
        path: src.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(src).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut done = 0u64;
    let mut number = 0i32;
    loop {
        let want = part_size.min(size - done) as usize;
        if want == 0 {
            break;
        }
        number += 1;
        let mut buf = vec![0u8; want];
        let mut filled = 0;
        while filled < want {
            let end = (filled + CHUNK).min(want);
            let n = f.read(&mut buf[filled..end]).map_err(io)?;
            if n == 0 {
                return Err(StorageError::Other(format!(
                    "{} shrank while it was uploaded ({} of {size} bytes); add it again",
                    src.display(),
                    done + filled as u64
                )));
            }
            hasher.update(&buf[filled..filled + n]);
            if let Some(t) = tee.as_mut()
                && !t(Arc::new(buf[filled..filled + n].to_vec()))
            {
                // The validator gave up (it has its verdict); the upload goes on.
                tee = None;
            }
            filled += n;
        }
        done += want as u64;
        if !skip.contains(&number)
            && tx
                .blocking_send(Part {
                    number,
                    bytes: Bytes::from(buf),
                })
                .is_err()
        {
            // The uploaders stopped; their error is the one reported.
            return Err(StorageError::Other("the upload stopped".into()));
        }
    }
    let mut probe = [0u8; 1];
    if f.read(&mut probe).map_err(io)? != 0 {
        return Err(StorageError::Other(format!(
            "{} grew while it was uploaded; add it again",
            src.display()
        )));
    }
    Ok((done, hex::encode(hasher.finalize())))
}

/// The limit again for bytes already read (a file may grow between its stat and its read).
fn check_size(src: &Path, size: u64, bucket: Bucket) -> Result<(), StorageError> {
    if size > bucket.max_object_size() {
        return Err(StorageError::TooLarge {
            what: src.display().to_string(),
            size,
            limit: bucket.max_object_size(),
            bucket,
        });
    }
    Ok(())
}

/// Runs `op` until it succeeds, fails for good, or the server has been away longer than
/// `retry_for`: waits double from 250 ms up to 10 s between tries.
pub(super) async fn retrying<T, E, R, F, Fut>(
    retry_for: Duration,
    mut op: F,
    ctx: &errors::Ctx,
) -> Result<T, StorageError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, aws_sdk_s3::error::SdkError<E, R>>>,
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: errors::HasStatus + std::fmt::Debug + 'static,
{
    let started = std::time::Instant::now();
    let mut wait = Duration::from_millis(250);
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let no_upload = e.code() == Some("NoSuchUpload");
                let err = errors::map(e, ctx);
                if no_upload {
                    return Err(StorageError::UploadGone {
                        what: ctx.what.clone(),
                    });
                }
                if !err.is_transient() || started.elapsed() + wait > retry_for {
                    return Err(err);
                }
                tracing::warn!(what = %ctx.what, error = %err, "S3 not answering; retrying in {wait:?}");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(10));
            }
        }
    }
}
