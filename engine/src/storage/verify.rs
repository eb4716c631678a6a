//! Reading a stored file against its manifest: what is served is what was stored.

use sha2::{Digest, Sha256};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

/// Passes `inner` through while hashing it; past the manifest's size, or at its end with a
/// size or sha256 other than the manifest's, the read fails (so a download stops with an
/// error instead of ending cleanly with other bytes).
pub(crate) struct Verified<R> {
    inner: R,
    what: String,
    size: u64,
    sha256: String,
    seen: u64,
    hasher: Sha256,
    /// The end was reached and checked.
    checked: bool,
}

impl<R> Verified<R> {
    /// `what` names the file in the error; `sha256` is hex.
    pub fn new(inner: R, what: String, size: u64, sha256: String) -> Self {
        Self {
            inner,
            what,
            size,
            sha256,
            seen: 0,
            hasher: Sha256::new(),
            checked: false,
        }
    }

    fn mismatch(&self, how: String) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{} does not match its manifest ({how}): the stored file was changed or damaged",
                self.what
            ),
        )
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Verified<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let want = buf.remaining();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        let this = &mut *self;
        let new = &buf.filled()[before..];
        this.seen += new.len() as u64;
        this.hasher.update(new);
        if this.seen > this.size {
            // An error passes no bytes on.
            buf.set_filled(before);
            return Poll::Ready(Err(
                this.mismatch(format!("more than its {} bytes", this.size))
            ));
        }
        if new.is_empty() && want > 0 && !this.checked {
            this.checked = true;
            if this.seen != this.size {
                return Poll::Ready(Err(
                    this.mismatch(format!("{} bytes of {}", this.seen, this.size))
                ));
            }
            let got = hex::encode(std::mem::take(&mut this.hasher).finalize());
            if !this.sha256.is_empty() && got != this.sha256 {
                return Poll::Ready(Err(this.mismatch("another sha256".into())));
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// A blocking reader that hashes what passes through it, for reads that must also learn
/// whether the bytes are still those stored (a validation reads every byte anyway).
pub(crate) struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: std::io::Read> Hashing<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
        }
    }

    /// Reads what the consumer left (a validation may stop early) and returns the hex sha256.
    pub fn finish(mut self) -> std::io::Result<String> {
        std::io::copy(&mut self, &mut std::io::sink())?;
        Ok(hex::encode(self.hasher.finalize()))
    }
}

impl<R: std::io::Read> std::io::Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    async fn read(data: &[u8], size: u64, sha: &str) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        Verified::new(data, "`f`".into(), size, sha.into())
            .read_to_end(&mut out)
            .await?;
        Ok(out)
    }

    #[tokio::test]
    async fn only_the_manifests_bytes_pass() {
        let sha = hex::encode(Sha256::digest(b"hello"));
        assert_eq!(read(b"hello", 5, &sha).await.unwrap(), b"hello");
        for (data, size) in [(&b"hellO"[..], 5), (b"hell", 5), (b"hello!", 5)] {
            let e = read(data, size, &sha).await.unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
            assert!(
                e.to_string().contains("`f` does not match its manifest"),
                "{e}"
            );
        }
    }
}
