//! Streaming input: a large reusable buffer, memchr line splitting, a cap on the bytes kept
//! for one line, and a look at the first bytes to recognise files that are not text.

use std::io::{self, Read};

/// Bytes read from the source per `read` call (at least).
const CHUNK: usize = 1 << 18;

/// One step of [`LineReader::next_line`].
pub(crate) enum Line<'b> {
    /// A whole line, without its `\n`.
    Text(&'b [u8]),
    /// A line longer than the cap: it was skipped, this is its length in bytes.
    TooLong(u64),
}

/// Splits a reader into lines without holding more than `max_line` bytes of any one line.
pub(crate) struct LineReader<R> {
    reader: R,
    buf: Vec<u8>,
    /// Start of the unread data in `buf`.
    start: usize,
    /// End of the data in `buf`.
    end: usize,
    /// Where the search for the next `\n` resumes (`start..scan` holds none).
    scan: usize,
    eof: bool,
    /// Bytes read from the source so far.
    pub consumed: u64,
    max_line: usize,
}

impl<R: Read> LineReader<R> {
    pub fn new(reader: R, max_line: usize) -> Self {
        Self {
            reader,
            buf: vec![0; CHUNK.min(max_line.max(1 << 16)) + 1],
            start: 0,
            end: 0,
            scan: 0,
            eof: false,
            consumed: 0,
            max_line,
        }
    }

    /// Whether the whole input has been read (what is buffered is all that is left).
    pub fn at_eof(&self) -> bool {
        self.eof
    }

    /// The unread bytes held now.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Drops `n` bytes from the front of the unread data.
    pub fn consume(&mut self, n: usize) {
        self.start += n;
        self.scan = self.scan.max(self.start);
    }

    /// Reads until at least `n` unread bytes are buffered, or the end of the input.
    pub fn fill_to(&mut self, n: usize, progress: &mut dyn FnMut(u64)) -> io::Result<()> {
        while self.end - self.start < n && !self.eof {
            self.read_more(progress)?;
        }
        Ok(())
    }

    /// Reads more input: compacts the buffer and grows it if it is full (up to the line cap
    /// plus one chunk). Sets `eof` when the source is exhausted.
    fn read_more(&mut self, progress: &mut dyn FnMut(u64)) -> io::Result<()> {
        if self.start > 0 && (self.end == self.buf.len() || self.start == self.end) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.scan -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let grown = (self.buf.len() * 2).min(self.max_line + CHUNK + 1);
            let grown = grown.max(self.buf.len() + CHUNK);
            self.buf.resize(grown, 0);
        }
        loop {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    self.consumed += n as u64;
                    progress(self.consumed);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The next line, `None` at the end of the input.
    pub fn next_line(&mut self, progress: &mut dyn FnMut(u64)) -> io::Result<Option<Line<'_>>> {
        loop {
            if let Some(p) = memchr::memchr(b'\n', &self.buf[self.scan..self.end]) {
                let nl = self.scan + p;
                let s = self.start;
                self.start = nl + 1;
                self.scan = self.start;
                return Ok(Some(Line::Text(&self.buf[s..nl])));
            }
            self.scan = self.end;
            if self.eof {
                if self.start < self.end {
                    let s = self.start;
                    self.start = self.end;
                    return Ok(Some(Line::Text(&self.buf[s..self.end])));
                }
                return Ok(None);
            }
            if self.end - self.start > self.max_line {
                return self.skip_long_line(progress).map(Some);
            }
            self.read_more(progress)?;
        }
    }

    /// Skips the rest of a line that is over the cap, keeping nothing of it.
    fn skip_long_line(&mut self, progress: &mut dyn FnMut(u64)) -> io::Result<Line<'static>> {
        let mut len = (self.end - self.start) as u64;
        self.start = 0;
        self.end = 0;
        self.scan = 0;
        loop {
            self.read_more(progress)?;
            if let Some(p) = memchr::memchr(b'\n', &self.buf[..self.end]) {
                len += p as u64;
                self.start = p + 1;
                self.scan = self.start;
                return Ok(Line::TooLong(len));
            }
            len += self.end as u64;
            self.end = 0;
            if self.eof {
                return Ok(Line::TooLong(len));
            }
        }
    }
}

/// What the first bytes of a file say, when they say it is not UTF-8 text.
pub(crate) struct NotText {
    /// Offset of the telling byte (for the line number).
    pub offset: usize,
    pub error: String,
    pub suggestion: String,
}

/// Recognises compressed files, other binary formats and UTF-16/32 text from the first bytes
/// (`head` is up to [`SNIFF_BYTES`] of them).
pub(crate) fn sniff(head: &[u8]) -> Option<NotText> {
    let verdict = |what: &str, suggestion: &str| {
        Some(NotText {
            offset: 0,
            error: format!("the file is {what}, not JSONL text"),
            suggestion: suggestion.to_string(),
        })
    };
    let decompress = "decompress it first and upload the .jsonl file inside";
    if head.starts_with(&[0x1f, 0x8b]) {
        return verdict("gzip-compressed", decompress);
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return verdict("zstd-compressed", decompress);
    }
    if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return verdict("xz-compressed", decompress);
    }
    if head.starts_with(b"BZh") && head.get(3).is_some_and(|b| b.is_ascii_digit()) {
        return verdict("bzip2-compressed", decompress);
    }
    if head.starts_with(b"PK\x03\x04") {
        return verdict("a zip archive", decompress);
    }
    if head.starts_with(b"PAR1") {
        return verdict(
            "a Parquet file",
            "convert it to JSONL, e.g. `pandas.read_parquet(f).to_json(out, orient=\"records\", lines=True)`",
        );
    }
    if head.starts_with(b"SQLite format 3\0") {
        return verdict("an SQLite database", "export the examples as JSONL");
    }
    let reencode = "re-save it as UTF-8, e.g. `iconv -f UTF-16 -t UTF-8 in.jsonl > out.jsonl`";
    if head.starts_with(&[0xff, 0xfe, 0, 0]) || head.starts_with(&[0, 0, 0xfe, 0xff]) {
        return verdict("UTF-32 text", reencode);
    }
    // A UTF-16 byte order mark, then text: 2-byte units, at least one character. Fewer or an
    // odd number of bytes (in a file read whole) are stray bytes, not UTF-16 text: they get
    // the UTF-8 verdict on their line.
    let whole = head.len() < SNIFF_BYTES;
    if (head.starts_with(&[0xff, 0xfe]) || head.starts_with(&[0xfe, 0xff]))
        && head.len() >= 4
        && (!whole || head.len().is_multiple_of(2))
    {
        return verdict("UTF-16 text", reencode);
    }
    if let Some(offset) = memchr::memchr(0, head) {
        // UTF-16 without a byte order mark: every other byte of ASCII text is NUL.
        let nuls = head.iter().filter(|&&b| b == 0).count();
        if head.len() >= 8 && nuls * 3 >= head.len() {
            let (what, suggestion) = ("UTF-16 text (no byte order mark) or binary data", reencode);
            return Some(NotText {
                offset,
                error: format!("the file looks like {what}: it holds NUL bytes"),
                suggestion: suggestion.to_string(),
            });
        }
        return Some(NotText {
            offset,
            error: format!("the file looks binary: it holds a NUL byte at offset {offset}"),
            suggestion: "upload a JSONL text file (one JSON object per line, UTF-8)".into(),
        });
    }
    None
}

/// How many leading bytes [`sniff`] looks at (as git does to tell binary from text).
pub(crate) const SNIFF_BYTES: usize = 8000;

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(data: &[u8], max: usize) -> Vec<Result<Vec<u8>, u64>> {
        let mut r = LineReader::new(data, max);
        let mut out = Vec::new();
        while let Some(l) = r.next_line(&mut |_| {}).unwrap() {
            out.push(match l {
                Line::Text(t) => Ok(t.to_vec()),
                Line::TooLong(n) => Err(n),
            });
        }
        out
    }

    #[test]
    fn splits_lines_and_caps_long_ones() {
        assert_eq!(
            lines(b"a\nbb\n\nccc", 1 << 20),
            vec![
                Ok(b"a".to_vec()),
                Ok(b"bb".to_vec()),
                Ok(vec![]),
                Ok(b"ccc".to_vec())
            ]
        );
        let mut data = vec![b'x'; 3 << 20];
        data.extend_from_slice(b"\nok\n");
        assert_eq!(
            lines(&data, 1 << 20),
            vec![Err(3 << 20), Ok(b"ok".to_vec())]
        );
        let data = vec![b'y'; 3 << 20];
        assert_eq!(lines(&data, 1 << 20), vec![Err(3 << 20)]);
    }

    #[test]
    fn sniffs_binary() {
        assert!(sniff(b"{\"a\":1}\n").is_none());
        assert!(sniff(&[0x1f, 0x8b, 8, 0]).unwrap().error.contains("gzip"));
        assert!(sniff(b"{\"a\":\x00}").unwrap().error.contains("NUL"));
        assert!(
            sniff(&[0xff, 0xfe, b'{', 0])
                .unwrap()
                .error
                .contains("UTF-16")
        );
        // Three stray bytes are no UTF-16 text.
        assert!(sniff(&[0xff, 0xfe, b'x']).is_none());
        assert!(sniff(&[0xfe, 0xff]).is_none());
    }
}
