//! Ranged, parallel, resumable downloads into a local file, for any source that serves byte
//! ranges: the S3 store itself, or a presigned URL (the client's model download). Ranges land
//! in a `.NAME.part` file at their offsets, `concurrency` at a time; a `.NAME.part.json`
//! beside it lists the finished ones, so a download that broke off continues where it stopped.
//! The sha256 is checked before the atomic rename; a mismatch keeps nothing.

use super::StorageError;
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Something that serves an object's bytes by range.
#[async_trait]
pub trait RangeSource: Send + Sync {
    /// Bytes `start..end` (end exclusive), whole.
    async fn fetch(&self, start: u64, end: u64) -> Result<Bytes, StorageError>;
    /// Names the object in messages.
    fn describe(&self) -> String;
}

/// What the sidecar file records: which object (by size and version tag) and which ranges of
/// it are in the part file already.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct Progress {
    size: u64,
    tag: String,
    range_size: u64,
    done: BTreeSet<u64>,
}

/// How a download is cut up.
#[derive(Clone, Copy, Debug)]
pub struct RangePlan {
    pub range_size: u64,
    pub concurrency: usize,
}

/// Downloads `size` bytes of `source` (whose version is `tag`, e.g. its ETag) to `dest`,
/// resuming a partial download of the same version. Returns the sha256; when `expected` is
/// given and differs, the file is not kept and the error names it.
pub async fn download(
    source: &dyn RangeSource,
    size: u64,
    tag: &str,
    dest: &Path,
    plan: RangePlan,
    expected: Option<&str>,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<String, StorageError> {
    let (part, sidecar) = part_paths(dest);
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| StorageError::Io {
            action,
            path,
            source,
        }
    };
    if let Some(dir) = dest.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(io("creating", dir))?;
    }
    let range_size = plan.range_size.max(1);
    let mut state = match tokio::fs::read(&sidecar).await {
        Ok(bytes) => serde_json::from_slice::<Progress>(&bytes).unwrap_or_default(),
        Err(_) => Progress::default(),
    };
    let resumable = state.size == size
        && state.tag == tag
        && state.range_size == range_size
        && tokio::fs::metadata(&part)
            .await
            .is_ok_and(|m| m.len() == size);
    if !resumable {
        state = Progress {
            size,
            tag: tag.to_string(),
            range_size,
            done: BTreeSet::new(),
        };
        let f = tokio::fs::File::create(&part)
            .await
            .map_err(io("writing", &part))?;
        f.set_len(size).await.map_err(io("writing", &part))?;
    } else {
        tracing::info!(file = %dest.display(), ranges = state.done.len(), "resuming a download");
    }
    let file = std::sync::Arc::new(
        std::fs::OpenOptions::new()
            .write(true)
            .open(&part)
            .map_err(io("writing", &part))?,
    );
    let ranges: Vec<u64> = (0..size.div_ceil(range_size))
        .filter(|i| !state.done.contains(i))
        .collect();
    let mut have: u64 = state
        .done
        .iter()
        .map(|i| range_len(*i, range_size, size))
        .sum();
    progress(have, size);
    // A fresh download is hashed as its ranges arrive, in order (out-of-order ones wait in
    // memory: at most `concurrency` of them), so the file is not read again at the end. A
    // resumed one has ranges from before that are only on disk: it is hashed from the file.
    let mut in_order = state.done.is_empty().then(InOrderHash::default);
    let failure = {
        let fetches = futures::stream::iter(ranges)
            .map(|i| {
                let file = file.clone();
                let part = part.clone();
                async move {
                    let start = i * range_size;
                    let end = (start + range_size).min(size);
                    let bytes = source.fetch(start, end).await?;
                    if bytes.len() as u64 != end - start {
                        return Err(StorageError::Corrupt {
                            what: source.describe(),
                            reason: format!(
                                "the server sent {} bytes for range {start}..{end}",
                                bytes.len()
                            ),
                        });
                    }
                    tokio::task::spawn_blocking(move || {
                        use std::os::unix::fs::FileExt;
                        file.write_all_at(&bytes, start).map(|()| bytes)
                    })
                    .await
                    .map_err(|_| StorageError::Other("a download writer stopped".into()))?
                    .map_err(io("writing", &part))
                    .map(|bytes| (i, bytes))
                }
            })
            .buffer_unordered(plan.concurrency.max(1));
        tokio::pin!(fetches);
        let mut failure = None;
        while let Some(r) = fetches.next().await {
            match r {
                Ok((i, bytes)) => {
                    if let Some(h) = in_order.as_mut() {
                        h.add(i, bytes).await;
                    }
                    state.done.insert(i);
                    have += range_len(i, range_size, size);
                    progress(have, size);
                    // Written after the range is in the file: a kill loses at most the ranges in
                    // flight.
                    save_progress(&sidecar, &state).await;
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        failure
    };
    if let Some(e) = failure {
        // The part file and its sidecar stay: the next try continues from here.
        return Err(e);
    }
    file.sync_all().map_err(io("writing", &part))?;
    drop(file);
    let sha256 = match in_order {
        Some(h) => h.finish(),
        None => {
            let part_for_hash = part.clone();
            tokio::task::spawn_blocking(move || hash_file(&part_for_hash))
                .await
                .map_err(|_| StorageError::Other("hashing the download stopped".into()))?
                .map_err(io("reading", &part))?
        }
    };
    if let Some(want) = expected
        && want != sha256
    {
        let _ = tokio::fs::remove_file(&part).await;
        let _ = tokio::fs::remove_file(&sidecar).await;
        return Err(StorageError::Corrupt {
            what: dest.display().to_string(),
            reason: format!(
                "{} arrived with sha256 {sha256} instead of {want}; nothing was kept",
                source.describe()
            ),
        });
    }
    tokio::fs::rename(&part, dest)
        .await
        .map_err(io("writing", dest))?;
    let _ = tokio::fs::remove_file(&sidecar).await;
    Ok(sha256)
}

/// The sha256 of ranges taken in index order, whatever order they arrive in; the hashing runs
/// on the blocking pool so the fetches go on meanwhile.
#[derive(Default)]
struct InOrderHash {
    hasher: Option<Sha256>,
    next: u64,
    waiting: std::collections::BTreeMap<u64, Bytes>,
}

impl InOrderHash {
    async fn add(&mut self, i: u64, bytes: Bytes) {
        self.waiting.insert(i, bytes);
        let mut run = Vec::new();
        while let Some(b) = self.waiting.remove(&self.next) {
            run.push(b);
            self.next += 1;
        }
        if run.is_empty() {
            return;
        }
        let mut h = self.hasher.take().unwrap_or_default();
        h = tokio::task::spawn_blocking(move || {
            for b in run {
                h.update(&b);
            }
            h
        })
        .await
        .unwrap_or_default();
        self.hasher = Some(h);
    }

    fn finish(self) -> String {
        hex::encode(self.hasher.unwrap_or_default().finalize())
    }
}

/// The partial file and its sidecar, hidden beside the destination.
pub fn part_paths(dest: &Path) -> (PathBuf, PathBuf) {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "download".into());
    (
        dest.with_file_name(format!(".{name}.part")),
        dest.with_file_name(format!(".{name}.part.json")),
    )
}

fn range_len(i: u64, range_size: u64, size: u64) -> u64 {
    let start = i * range_size;
    (start + range_size).min(size) - start
}

async fn save_progress(sidecar: &Path, state: &Progress) {
    let tmp = sidecar.with_extension("json.tmp");
    let text = serde_json::to_vec(state).expect("progress serialises");
    if tokio::fs::write(&tmp, text).await.is_ok() {
        let _ = tokio::fs::rename(&tmp, sidecar).await;
    }
}

fn hash_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Serves `data`, failing every range from `fail_from` on while `failing` is set.
    struct Flaky {
        data: Vec<u8>,
        fail_from: u64,
        failing: std::sync::atomic::AtomicBool,
        fetched: AtomicUsize,
    }

    #[async_trait]
    impl RangeSource for Flaky {
        async fn fetch(&self, start: u64, end: u64) -> Result<Bytes, StorageError> {
            if self.failing.load(Ordering::SeqCst) && start >= self.fail_from {
                return Err(StorageError::Unreachable {
                    endpoint: "test".into(),
                    message: "gone".into(),
                });
            }
            self.fetched.fetch_add(1, Ordering::SeqCst);
            Ok(Bytes::copy_from_slice(
                &self.data[start as usize..end as usize],
            ))
        }
        fn describe(&self) -> String {
            "test object".into()
        }
    }

    #[tokio::test]
    async fn a_broken_download_resumes_and_a_wrong_hash_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("adapter.safetensors");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let want = hex::encode(Sha256::digest(&data));
        let src = Flaky {
            data,
            fail_from: 60_000,
            failing: true.into(),
            fetched: AtomicUsize::new(0),
        };
        let plan = RangePlan {
            range_size: 10_000,
            concurrency: 1,
        };
        let err = download(&src, 100_000, "v1", &dest, plan, Some(&want), &|_, _| {})
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::Unreachable { .. }));
        assert!(!dest.exists());
        assert_eq!(src.fetched.load(Ordering::SeqCst), 6);
        src.failing.store(false, Ordering::SeqCst);
        let got = download(&src, 100_000, "v1", &dest, plan, Some(&want), &|_, _| {})
            .await
            .unwrap();
        assert_eq!(got, want);
        // Only the four missing ranges were fetched the second time.
        assert_eq!(src.fetched.load(Ordering::SeqCst), 10);
        assert_eq!(std::fs::read(&dest).unwrap(), src.data);
        let (part, sidecar) = part_paths(&dest);
        assert!(!part.exists() && !sidecar.exists());

        let other = dir.path().join("other.bin");
        let err = download(&src, 100_000, "v1", &other, plan, Some("00"), &|_, _| {})
            .await
            .unwrap_err();
        assert!(err.to_string().contains("other.bin"), "{err}");
        assert!(!other.exists() && !part_paths(&other).0.exists());
    }
}
