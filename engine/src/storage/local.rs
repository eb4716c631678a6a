//! The embedded default store: a folder per bucket under the data dir.

use super::*;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CHUNK: usize = 1 << 20;

pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn full_path(&self, bucket: Bucket, path: &str) -> Result<PathBuf, StorageError> {
        check_path(path)?;
        Ok(self.root.join(bucket.name()).join(path))
    }
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StorageError {
    let path = path.to_path_buf();
    move |source| StorageError::Io {
        action,
        path,
        source,
    }
}

/// Opens the stored object `full` under `root` as it is: a regular file, reached without
/// following a symbolic link (one planted in the store, say to /etc/passwd, is refused, not
/// served), in a folder that really is inside `root`.
fn open_stored(root: &Path, full: &Path) -> std::io::Result<std::fs::File> {
    let planted = |what: &str| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{what}, not a stored file: something other than BrightRun put it there"),
        )
    };
    if let (Ok(root), Some(Ok(dir))) = (root.canonicalize(), full.parent().map(Path::canonicalize))
        && !dir.starts_with(&root)
    {
        return Err(planted("its folder leads outside the store"));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW);
    }
    let file = options.open(full).map_err(|e| {
        if e.raw_os_error() == Some(libc::ELOOP) {
            planted("a symbolic link")
        } else {
            e
        }
    })?;
    if !file.metadata()?.is_file() {
        return Err(planted("not a regular file"));
    }
    Ok(file)
}

/// Streams `src` into `dest` through a temp file beside it, hashing as it goes; the rename at
/// the end makes the write atomic. On any error the temp file is removed. `private` is for
/// writes into the store (0700 folders, 0600 files); a copy out to a folder the user chose
/// keeps the umask's permissions.
pub(crate) async fn copy_atomic(
    src: &Path,
    dest: &Path,
    limit: Option<(u64, Bucket)>,
    private: bool,
    progress: ProgressFn<'_>,
) -> Result<(u64, String), StorageError> {
    let meta = tokio::fs::metadata(src).await.map_err(io("reading", src))?;
    let total = check_source(src, &meta, limit)?;
    let mut input = tokio::fs::File::open(src)
        .await
        .map_err(io("reading", src))?;
    let what = src.display().to_string();
    let read_error = |_: u64, e| io("reading", src)(e);
    let sink = Sink {
        dest,
        limit,
        private,
    };
    sink.write(&mut input, &what, &read_error, Some(total), progress)
        .await
}

/// Where an atomic write goes and under what rules.
struct Sink<'a> {
    dest: &'a Path,
    /// The bucket's size limit, checked as the bytes arrive (a file may grow while copied; a
    /// stream's announced size may lie).
    limit: Option<(u64, Bucket)>,
    private: bool,
}

impl Sink<'_> {
    /// Writes everything `input` yields to a temp file beside `dest`, hashing as it goes, then
    /// renames it into place; on any error the temp file is removed. Returns (size, sha256).
    async fn write(
        &self,
        input: &mut (dyn tokio::io::AsyncRead + Send + Unpin),
        what: &str,
        read_error: &(dyn Fn(u64, std::io::Error) -> StorageError + Sync),
        total: Option<u64>,
        progress: ProgressFn<'_>,
    ) -> Result<(u64, String), StorageError> {
        let dest = self.dest;
        let dir = dest.parent().expect("object paths have a parent");
        if self.private {
            crate::private::create_dir_all_async(dir).await
        } else {
            tokio::fs::create_dir_all(dir).await
        }
        .map_err(io("creating", dir))?;
        let tmp = dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let result = async {
            let mut output = if self.private {
                crate::private::create_file_async(&tmp).await
            } else {
                tokio::fs::File::create(&tmp).await
            }
            .map_err(io("writing", &tmp))?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; CHUNK];
            let mut done = 0u64;
            if let Some(t) = total {
                progress(0, t);
            }
            loop {
                let n = input
                    .read(&mut buf)
                    .await
                    .map_err(|e| read_error(done, e))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                output
                    .write_all(&buf[..n])
                    .await
                    .map_err(io("writing", dest))?;
                done += n as u64;
                if let Some((limit, bucket)) = self.limit
                    && done > limit
                {
                    return Err(StorageError::TooLarge {
                        what: what.to_string(),
                        size: done,
                        limit,
                        bucket,
                    });
                }
                progress(done, total.unwrap_or(done).max(done));
            }
            output.flush().await.map_err(io("writing", dest))?;
            output.sync_all().await.map_err(io("writing", dest))?;
            drop(output);
            tokio::fs::rename(&tmp, dest)
                .await
                .map_err(io("writing", dest))?;
            Ok((done, hex::encode(hasher.finalize())))
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }
}

/// The blocking one-pass form of [`copy_atomic`], for imports that also validate: reads `src`
/// once, in chunks of [`CHUNK`] bytes; each chunk is written to a temp file beside `dest`,
/// hashed (on a thread of its own: sha256 costs about what the write does) and handed to
/// `tee` (with the bytes done so far and the total) before the next is read. Writeback of each chunk is started as soon as it is written (`sync_file_range`), so
/// the final `fsync` has little left to wait for. The rename at the end makes the write
/// atomic; on any error (or when `tee` returns `false`: the caller gave up) the temp file
/// is removed.
pub(crate) fn copy_atomic_blocking(
    src: &Path,
    dest: &Path,
    limit: Option<(u64, Bucket)>,
    tee: &mut dyn FnMut(std::sync::Arc<Vec<u8>>, u64, u64) -> bool,
) -> Result<(u64, String), StorageError> {
    let mut input = std::fs::File::open(src).map_err(io("reading", src))?;
    let meta = input.metadata().map_err(io("reading", src))?;
    check_source(src, &meta, limit)?;
    let too_large = |size| {
        limit.and_then(|(limit, bucket)| {
            (size > limit).then(|| StorageError::TooLarge {
                what: src.display().to_string(),
                size,
                limit,
                bucket,
            })
        })
    };
    let dir = dest.parent().expect("object paths have a parent");
    crate::private::create_dir_all(dir).map_err(io("creating", dir))?;
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let (to_hasher, chunks) = std::sync::mpsc::sync_channel::<std::sync::Arc<Vec<u8>>>(8);
    let result = std::thread::scope(|scope| {
        let hasher = scope.spawn(move || {
            let mut hasher = Sha256::new();
            for chunk in chunks {
                hasher.update(&chunk[..]);
            }
            hex::encode(hasher.finalize())
        });
        let copied = copy_chunks(
            &mut input,
            src,
            dest,
            &tmp,
            &too_large,
            &mut |chunk, done, total| {
                to_hasher.send(chunk.clone()).is_ok() && tee(chunk, done, total)
            },
        );
        drop(to_hasher);
        let sha256 = hasher
            .join()
            .map_err(|_| StorageError::Other("the sha256 thread stopped".into()))?;
        copied.map(|done| (done, sha256))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The copy loop of [`copy_atomic_blocking`]: read, write, start writeback, hand on; then
/// `fsync` and rename. Returns the bytes copied.
fn copy_chunks(
    input: &mut std::fs::File,
    src: &Path,
    dest: &Path,
    tmp: &Path,
    too_large: &dyn Fn(u64) -> Option<StorageError>,
    tee: &mut dyn FnMut(std::sync::Arc<Vec<u8>>, u64, u64) -> bool,
) -> Result<u64, StorageError> {
    use std::io::{Read, Write};
    let total = input.metadata().map_err(io("reading", src))?.len();
    {
        let mut output = crate::private::create_file(tmp).map_err(io("writing", tmp))?;
        let mut done = 0u64;
        loop {
            let mut buf = vec![0u8; CHUNK];
            let mut n = 0;
            // Fill the chunk (short reads happen on pipes and network file systems).
            while n < CHUNK {
                match input.read(&mut buf[n..]) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(io("reading", src)(e)),
                }
            }
            if n == 0 {
                break;
            }
            buf.truncate(n);
            output.write_all(&buf).map_err(io("writing", dest))?;
            start_writeback(&output, done, n as u64);
            done += n as u64;
            if let Some(e) = too_large(done) {
                // The file grew while we copied it.
                return Err(e);
            }
            if !tee(std::sync::Arc::new(buf), done, total.max(done)) {
                return Err(StorageError::Other("the import was abandoned".into()));
            }
            if n < CHUNK {
                break;
            }
        }
        output.sync_all().map_err(io("writing", dest))?;
        drop(output);
        std::fs::rename(tmp, dest).map_err(io("writing", dest))?;
        Ok(done)
    }
}

/// Asks the kernel to start writing `len` bytes at `offset` of `file` to disk now, without
/// waiting (Linux); elsewhere nothing, and the final `fsync` does it all.
fn start_writeback(file: &std::fs::File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a plain system call on an open descriptor; failure only loses the hint.
        unsafe {
            libc::sync_file_range(
                file.as_raw_fd(),
                offset as libc::off64_t,
                len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

#[async_trait]
impl ObjectStore for LocalStore {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn put_file(
        &self,
        bucket: Bucket,
        path: &str,
        src: &Path,
        progress: ProgressFn<'_>,
    ) -> Result<StoredObject, StorageError> {
        let dest = self.full_path(bucket, path)?;
        let (size, sha256) = copy_atomic(
            src,
            &dest,
            Some((bucket.max_object_size(), bucket)),
            true,
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

    async fn put_reader(
        &self,
        bucket: Bucket,
        path: &str,
        reader: &mut (dyn tokio::io::AsyncRead + Send + Unpin),
        progress: ProgressFn<'_>,
    ) -> Result<StoredObject, StorageError> {
        let dest = self.full_path(bucket, path)?;
        let read_error = |done: u64, e: std::io::Error| {
            StorageError::Other(format!(
                "the upload of {path} broke off after {done} bytes: {e}"
            ))
        };
        let sink = Sink {
            dest: &dest,
            limit: Some((bucket.max_object_size(), bucket)),
            private: true,
        };
        let (size, sha256) = sink
            .write(reader, path, &read_error, None, progress)
            .await?;
        Ok(StoredObject {
            bucket,
            path: path.to_string(),
            size,
            sha256,
        })
    }

    async fn get_to_file(
        &self,
        bucket: Bucket,
        path: &str,
        dest: &Path,
        progress: ProgressFn<'_>,
    ) -> Result<StoredObject, StorageError> {
        let src = self.full_path(bucket, path)?;
        let mut input = self.open(bucket, path).await?;
        let total = tokio::fs::symlink_metadata(&src)
            .await
            .map_err(io("reading", &src))?
            .len();
        let read_error = |_: u64, e| io("reading", &src)(e);
        let sink = Sink {
            dest,
            limit: None,
            private: false,
        };
        let what = src.display().to_string();
        let (size, sha256) = sink
            .write(&mut input, &what, &read_error, Some(total), progress)
            .await?;
        Ok(StoredObject {
            bucket,
            path: path.to_string(),
            size,
            sha256,
        })
    }

    async fn open(
        &self,
        bucket: Bucket,
        path: &str,
    ) -> Result<Box<dyn tokio::io::AsyncRead + Send + Unpin>, StorageError> {
        let full = self.full_path(bucket, path)?;
        let root = self.root.join(bucket.name());
        let opened = tokio::task::spawn_blocking({
            let full = full.clone();
            move || open_stored(&root, &full)
        })
        .await
        .map_err(|e| io("reading", &full)(std::io::Error::other(e)))?;
        match opened {
            Ok(f) => Ok(Box::new(tokio::fs::File::from_std(f))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StorageError::NotFound {
                bucket,
                path: path.to_string(),
            }),
            Err(e) => Err(io("reading", &full)(e)),
        }
    }

    async fn size(&self, bucket: Bucket, path: &str) -> Result<Option<u64>, StorageError> {
        let full = self.full_path(bucket, path)?;
        match tokio::fs::metadata(&full).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("reading", &full)(e)),
        }
    }

    async fn delete(&self, bucket: Bucket, path: &str) -> Result<(), StorageError> {
        let full = self.full_path(bucket, path)?;
        match tokio::fs::remove_file(&full).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("deleting", &full)(e)),
        }
    }

    fn local_path(&self, bucket: Bucket, path: &str) -> Option<PathBuf> {
        self.full_path(bucket, path).ok()
    }

    async fn presign_get(
        &self,
        _bucket: Bucket,
        _path: &str,
        _ttl: Duration,
    ) -> Result<Option<String>, StorageError> {
        Ok(None)
    }

    async fn presign_put(
        &self,
        _bucket: Bucket,
        _path: &str,
        _ttl: Duration,
    ) -> Result<Option<String>, StorageError> {
        Ok(None)
    }

    /// The folder exists (made when asked) and a file can be written, read back and removed.
    async fn check(&self, create_buckets: bool) -> Vec<CheckStep> {
        let mut steps = Vec::new();
        for bucket in [Bucket::Datasets, Bucket::Models] {
            let dir = self.root.join(bucket.name());
            let what = format!("folder {}", dir.display());
            let present = tokio::fs::metadata(&dir).await.is_ok_and(|m| m.is_dir());
            if !present && !create_buckets {
                // The first write makes it; nothing is wrong yet.
                steps.push(CheckStep::pass(what, "made on first use"));
                continue;
            }
            if !present && let Err(e) = crate::private::create_dir_all_async(&dir).await {
                steps.push(CheckStep::fail(what, &io("creating", &dir)(e)));
                continue;
            }
            steps.push(CheckStep::pass(
                what,
                if present { "present" } else { "created" },
            ));
            let probe = format!(".brightrun-probe/{}", uuid::Uuid::new_v4().simple());
            let what = format!("write/read/delete in {}", dir.display());
            let body = b"brightrun probe".to_vec();
            let result = async {
                let mut reader: &[u8] = &body;
                self.put_reader(bucket, &probe, &mut reader, &|_, _| {})
                    .await?;
                let mut back = Vec::new();
                self.open(bucket, &probe)
                    .await?
                    .read_to_end(&mut back)
                    .await
                    .map_err(io("reading", &dir))?;
                self.delete(bucket, &probe).await?;
                let _ = tokio::fs::remove_dir(dir.join(".brightrun-probe")).await;
                if back != body {
                    return Err(StorageError::Corrupt {
                        what: dir.display().to_string(),
                        reason: "the probe read back differs from what was written".into(),
                    });
                }
                Ok(())
            }
            .await;
            steps.push(match result {
                Ok(()) => CheckStep::pass(what, "ok"),
                Err(e) => CheckStep::fail(what, &e),
            });
        }
        steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[tokio::test]
    async fn put_and_get_round_trip_with_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join("objects"));
        let src = dir.path().join("in.jsonl");
        std::fs::write(&src, b"hello\n").unwrap();
        let seen = AtomicU64::new(0);
        let obj = store
            .put_file(Bucket::Datasets, "u/d/in.jsonl", &src, &|d, _| {
                seen.store(d, Ordering::SeqCst)
            })
            .await
            .unwrap();
        assert_eq!(obj.size, 6);
        assert_eq!(
            obj.sha256,
            "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
        );
        assert_eq!(seen.load(Ordering::SeqCst), 6);
        let out = dir.path().join("out/copy");
        let got = store
            .get_to_file(Bucket::Datasets, "u/d/in.jsonl", &out, &|_, _| {})
            .await
            .unwrap();
        assert_eq!(got.sha256, obj.sha256);
        assert_eq!(std::fs::read(out).unwrap(), b"hello\n");
        // no temp files left behind
        let names: Vec<_> = std::fs::read_dir(dir.path().join("objects/lora-datasets/u/d"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["in.jsonl"]);
    }

    #[tokio::test]
    async fn missing_object_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let err = store
            .get_to_file(Bucket::Models, "u/a/x", &dir.path().join("o"), &|_, _| {})
            .await
            .unwrap_err();
        assert!(err.to_string().contains("lora-models/u/a/x"), "{err}");
    }
}
