//! Dataset validation: one streaming pass over a JSONL file (or a `.json` file holding one
//! JSON array) that detects its format, checks every example, and profiles the lot.
//!
//! What it checks, per example: valid UTF-8, valid JSON, a JSON object, the keys and types of
//! the file's format (DESIGN.md, "Dataset formats"), known roles, non-empty content, the
//! order of a conversation (an optional leading system message, then user and assistant
//! alternating, ending with the assistant), `weight` only 0 or 1, unknown keys (a warning),
//! and that the file does not mix formats (the first valid example fixes it). A BOM, CRLF
//! line ends and blank lines are fine; a leading `_meta` record is skipped. Binary,
//! compressed, UTF-16, empty files and lines over [`MAX_LINE_BYTES`] each get one clear
//! verdict. Every problem has a 1-based line, a reason and a suggestion; all are counted, the
//! first `max_issues_kept` (by line) are kept.
//!
//! Statistics count valid examples only. The hold-out split follows PROTOCOL.md with the same
//! record index as the trainer (`trainer/brightrun_trainer/data.py`): the 0-based position of
//! a record among the file's non-blank lines (or array elements), not counting a leading
//! `_meta` record, valid or not. For a training-ready file that is simply the example's index.
//!
//! Speed (BENCHMARKS.md, "Dataset validation"): the input is read in 256 KiB chunks and
//! split with memchr; each line is checked as UTF-8 with SIMD (simdutf8) and parsed by the
//! validator's own JSON parser (`tape.rs`) into a reused tape of borrowed nodes, scanning
//! strings 16 or 32 bytes at a time, so the hot path allocates nothing per line; duplicates
//! are found by a 64-bit xxh3 hash of the canonical JSON form of the normalised example. It
//! runs on one thread.

mod array;
mod formats;
mod issues;
mod reader;
#[doc(hidden)]
pub mod synth;
mod tape;

use crate::domain::{ChatMessage, DatasetFormat, DatasetStatistics, Severity, ValidationIssue};
use formats::{Conversation, Msg};
use issues::{IssueSink, Rep};
use reader::{Line, LineReader};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;
use tape::{Doc, ErrorKind, JsonError, Node};
use xxhash_rust::xxh3::xxh3_64;

/// The most bytes one example (a line, or an element of a JSON array) may take. Longer ones
/// are skipped with an error, never held in memory: at ~4 bytes per token this is millions of
/// tokens, far past any sequence length, so such a line is a broken file, not an example.
pub const MAX_LINE_BYTES: usize = 32 << 20;

/// Mixed into the duplicate hash per message role.
const ROLE_SALT: [u64; 3] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
];

/// How many lines an aggregated finding (duplicates, over-long examples) names.
const LINES_NAMED: usize = 5;

/// How to validate.
#[derive(Clone)]
pub struct ValidationOptions {
    /// The share of examples held out for validation (0 allowed), as in PROTOCOL.md.
    pub holdout_fraction: f64,
    /// The split seed (PROTOCOL.md).
    pub split_seed: u64,
    /// Examples longer than this many tokens are counted and named in a warning.
    pub max_seq_length: u32,
    /// A Hugging Face tokenizer for exact token counts; `None` uses [`estimate_tokens`].
    pub tokenizer: Option<Arc<tokenizers::Tokenizer>>,
    /// How many findings the report keeps (all are counted).
    pub max_issues_kept: usize,
}

impl Default for ValidationOptions {
    fn default() -> Self {
        Self {
            holdout_fraction: 0.1,
            split_seed: 42,
            max_seq_length: 2048,
            tokenizer: None,
            max_issues_kept: 100,
        }
    }
}

impl std::fmt::Debug for ValidationOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidationOptions")
            .field("holdout_fraction", &self.holdout_fraction)
            .field("split_seed", &self.split_seed)
            .field("max_seq_length", &self.max_seq_length)
            .field("tokenizer", &self.tokenizer.as_ref().map(|_| "…"))
            .field("max_issues_kept", &self.max_issues_kept)
            .finish()
    }
}

/// The verdict on one file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ValidationReport {
    /// The file's format: fixed by its first valid example; when there is none, the format
    /// the first recognisable example looked like.
    pub format: Option<DatasetFormat>,
    pub statistics: DatasetStatistics,
    /// The first `max_issues_kept` findings, in line order.
    pub issues: Vec<ValidationIssue>,
    /// The first 3 valid examples as chat messages.
    pub sample: Vec<Vec<ChatMessage>>,
    /// No errors and at least one example in the training split.
    pub training_ready: bool,
}

/// The token count used when no tokenizer is configured: `ceil(UTF-8 bytes / 4)` of a
/// message's text (after JSON unescaping), summed over the messages of an example. Four
/// bytes per token is the usual rule of thumb for English with BPE tokenizers; it
/// under-counts code and non-Latin scripts, so [`DatasetStatistics::tokens_exact`] is `false`.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

/// PROTOCOL.md's hold-out rule: the example at 0-based `index` goes to validation when
/// `(index × 2654435761 + seed) mod 10000 < round(fraction × 10000)`, in exact integer
/// arithmetic. `fraction` is clamped to 0..=1. Every 10 000 consecutive indexes hold exactly
/// `round(fraction × 10000)` validation examples.
pub fn in_validation_split(index: u64, seed: u64, fraction: f64) -> bool {
    in_split(index, seed, split_threshold(fraction))
}

fn split_threshold(fraction: f64) -> u64 {
    if fraction.is_nan() {
        return 0;
    }
    (fraction.clamp(0.0, 1.0) * 10_000.0).round() as u64
}

#[inline]
fn in_split(index: u64, seed: u64, threshold: u64) -> bool {
    ((index as u128 * 2_654_435_761 + seed as u128) % 10_000) < threshold as u128
}

/// Loads a Hugging Face `tokenizer.json`.
pub fn load_tokenizer(path: &Path) -> Result<tokenizers::Tokenizer, String> {
    if !path.exists() {
        return Err(format!(
            "the tokenizer file {} does not exist",
            path.display()
        ));
    }
    tokenizers::Tokenizer::from_file(path)
        .map_err(|e| format!("cannot load the tokenizer {}: {e}", path.display()))
}

/// Validates a file on disk. I/O errors (a missing file, a read failure) are `Err`; every
/// problem with the content is in the report.
pub fn validate_path(
    path: &Path,
    opts: &ValidationOptions,
    progress: &mut dyn FnMut(u64),
) -> io::Result<ValidationReport> {
    let file = std::fs::File::open(path)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    validate_reader(file, &name, opts, progress)
}

/// Validates a stream. `file_name` (only its extension matters) helps the verdict on files
/// that are not JSON at all. `progress` is told the bytes consumed so far after each read.
pub fn validate_reader<R: Read>(
    reader: R,
    file_name: &str,
    opts: &ValidationOptions,
    progress: &mut dyn FnMut(u64),
) -> io::Result<ValidationReport> {
    let mut v = Validator::new(opts);
    let mut lines = LineReader::new(reader, MAX_LINE_BYTES);
    lines.fill_to(reader::SNIFF_BYTES, progress)?;
    let head = lines.buffered();
    let bom = head.starts_with(b"\xEF\xBB\xBF");
    if let Some(found) = reader::sniff(head) {
        let line = 1 + memchr::memchr_iter(b'\n', &head[..found.offset]).count() as u64;
        v.sink
            .add(line, Severity::Error, || (found.error, found.suggestion));
        v.stopped = true;
        return Ok(v.finish());
    }
    if bom {
        lines.consume(3);
    }
    let first = lines
        .buffered()
        .iter()
        .copied()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
    let ext = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    if matches!(ext.as_str(), "csv" | "tsv") && first.is_some_and(|b| b != b'{' && b != b'[') {
        v.sink.add(1, Severity::Error, || {
            (
                format!("the file is .{ext} text, not JSONL"),
                "convert it to JSONL, one example per line, e.g. with pandas: `read_csv(f).to_json(out, orient=\"records\", lines=True)`, then name the columns as a supported format does".into(),
            )
        });
        v.stopped = true;
        return Ok(v.finish());
    }
    if first == Some(b'[') {
        let mut splitter = array::ArraySplitter::new(MAX_LINE_BYTES);
        loop {
            let data = lines.buffered();
            if data.is_empty() {
                break;
            }
            splitter.feed(data, &mut |piece| v.piece(piece));
            let n = data.len();
            lines.consume(n);
            lines.fill_to(1, progress)?;
        }
        splitter.finish(&mut |piece| v.piece(piece));
    } else {
        let mut line_no = 0u64;
        while let Some(line) = lines.next_line(progress)? {
            line_no += 1;
            match line {
                Line::Text(bytes) => {
                    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
                    v.record(line_no, 0, bytes);
                }
                Line::TooLong(len) => v.too_long(line_no, len, false),
            }
        }
    }
    Ok(v.finish())
}

/// A hasher for keys that are already 64-bit hashes.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

struct Validator<'o> {
    opts: &'o ValidationOptions,
    sink: IssueSink,
    threshold: u64,
    /// The file's format and the line of the example that fixed it.
    format: Option<(DatasetFormat, u64)>,
    first_seen: Option<DatasetFormat>,
    /// Invalid examples of a recognised format seen before the format was fixed.
    pending: Vec<(u64, DatasetFormat)>,
    /// Records so far (the split index of the next one).
    records: u64,
    examples: u64,
    training: u64,
    validation: u64,
    total_tokens: u64,
    turns: u64,
    tokens: Vec<u32>,
    seen: HashMap<u64, u64, BuildHasherDefault<Prehashed>>,
    duplicates: u64,
    duplicate_lines: Vec<(u64, u64)>,
    over: u64,
    over_lines: Vec<u64>,
    sample: Vec<Vec<ChatMessage>>,
    /// A verdict on the whole file was given; nothing else is said.
    stopped: bool,
    // Reused from one record to the next.
    nodes: Vec<Node<'static>>,
    arena: String,
    msgs: Vec<Msg>,
    pieces: Vec<tape::Text<'static>>,
    canon: Vec<u8>,
    join: String,
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn list_lines(lines: &[u64], total: u64) -> String {
    let mut s = lines
        .iter()
        .map(|l| l.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if total > lines.len() as u64 {
        s.push_str(&format!(" and {} more", total - lines.len() as u64));
    }
    s
}

impl<'o> Validator<'o> {
    fn new(opts: &'o ValidationOptions) -> Self {
        Self {
            opts,
            sink: IssueSink::new(opts.max_issues_kept),
            threshold: split_threshold(opts.holdout_fraction),
            format: None,
            first_seen: None,
            pending: Vec::new(),
            records: 0,
            examples: 0,
            training: 0,
            validation: 0,
            total_tokens: 0,
            turns: 0,
            tokens: Vec::new(),
            seen: HashMap::with_capacity_and_hasher(1 << 14, Default::default()),
            duplicates: 0,
            duplicate_lines: Vec::new(),
            over: 0,
            over_lines: Vec::new(),
            sample: Vec::new(),
            stopped: false,
            nodes: Vec::new(),
            arena: String::new(),
            msgs: Vec::new(),
            pieces: Vec::new(),
            canon: Vec::new(),
            join: String::new(),
        }
    }

    fn piece(&mut self, piece: array::Piece<'_>) {
        match piece {
            array::Piece::Element { line, bytes } => self.record(line, line, bytes),
            array::Piece::TooLong { line, len } => self.too_long(line, len, true),
            array::Piece::Structure {
                line,
                error,
                suggestion,
            } => self
                .sink
                .add(line, Severity::Error, || (error, suggestion.to_string())),
        }
    }

    fn too_long(&mut self, line: u64, len: u64, element: bool) {
        self.records += 1;
        let what = if element {
            "the example starting on this line"
        } else {
            "the line"
        };
        self.sink.add(line, Severity::Error, || {
            (
                format!(
                    "{what} is {}, over the {} limit for one example; it was skipped",
                    mb(len),
                    mb(MAX_LINE_BYTES as u64)
                ),
                "check that the file has one example per line (a missing line break joins many), or split this text into several examples".into(),
            )
        });
    }

    /// One record: a JSONL line (`base` 0) or an array element starting on line `base`.
    fn record(&mut self, line: u64, base: u64, bytes: &[u8]) {
        if bytes
            .iter()
            .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c))
        {
            return;
        }
        let index = self.records;
        self.records += 1;
        let mut nodes = tape::recycle(std::mem::take(&mut self.nodes));
        let mut arena = std::mem::take(&mut self.arena);
        match tape::parse(bytes, &mut nodes, &mut arena) {
            Ok(()) => {
                let doc = Doc {
                    nodes: &nodes,
                    arena: &arena,
                };
                self.example(line, index, &doc);
            }
            Err(e) => self.json_error(line, base, bytes, &e),
        }
        self.nodes = tape::recycle(nodes);
        self.arena = arena;
    }

    fn json_error(&mut self, line: u64, base: u64, bytes: &[u8], e: &JsonError) {
        self.sink.add(line, Severity::Error, || {
            let (dl, col) = position(bytes, e.at);
            let place = if base > 0 {
                format!("line {}, column {col}", base + dl)
            } else {
                format!("column {col}")
            };
            let msg = match e.kind {
                ErrorKind::Utf8(Some(b)) => {
                    return (
                        format!("not valid UTF-8: byte 0x{b:02X} at {place} is not part of a UTF-8 character"),
                        UTF8_FIX.into(),
                    );
                }
                ErrorKind::Utf8(None) => {
                    return (
                        format!("not valid UTF-8: the text ends inside a character at {place}"),
                        UTF8_FIX.into(),
                    );
                }
                ErrorKind::Eof(msg) | ErrorKind::Syntax(msg) => msg,
            };
            let t = trim_ascii_start(bytes);
            let suggestion = if t.starts_with("\u{feff}".as_bytes()) {
                return (
                    "a byte order mark (U+FEFF) starts this line: only the file's first line may have one".into(),
                    "remove it; it usually comes from joining files that were saved with a BOM".into(),
                );
            } else if matches!(e.kind, ErrorKind::Eof(_)) {
                if base > 0 {
                    "the example is cut short: check its closing brackets and quotes".into()
                } else {
                    "the line ends before the JSON object does: each example must be complete on one line, with line breaks inside text written as \\n".into()
                }
            } else if msg.starts_with("trailing characters") {
                "each line must hold exactly one JSON object: put every example on its own line".into()
            } else if msg.starts_with("control character") {
                "write tabs and line breaks inside strings as \\t and \\n".into()
            } else if msg.starts_with("key must be a string") && t.starts_with(b"{'") {
                "this looks like a Python dict: JSON needs double quotes (write it with json.dumps, not str)".into()
            } else if msg.starts_with("key must be a string") {
                "put every key in double quotes".into()
            } else if msg.starts_with("trailing comma") {
                "remove the comma before the closing bracket".into()
            } else if msg.starts_with("recursion limit") {
                "the example nests more than 128 levels deep: flatten it".into()
            } else if msg.starts_with("expected value") && (t.starts_with(b"NaN") || bytes.windows(3).any(|w| w == b"NaN")) {
                "JSON has no NaN or Infinity: write null or a number".into()
            } else {
                format!("fix the JSON near {place}")
            };
            (format!("not valid JSON: {msg} ({place})"), suggestion)
        });
    }

    fn example(&mut self, line: u64, index: u64, doc: &Doc<'_, '_>) {
        if !doc.is_obj(0) {
            let file = self.format.map(|f| f.0);
            self.sink.add(line, Severity::Error, || {
                (
                    format!("the example is {}, not a JSON object", doc.kind(0)),
                    match file {
                        Some(f) => {
                            format!("write it as a {} example: {}", formats::label(f), f.shape())
                        }
                        None => format!(
                            "each example must be a JSON object; {}",
                            formats::supported_formats()
                        ),
                    },
                )
            });
            return;
        }
        if index == 0 && doc.get(0, "_meta").is_some() {
            self.records = 0;
            return;
        }
        let Some(fmt) = formats::detect(doc, 0) else {
            let file = self.format.map(|f| f.0);
            self.sink.add(line, Severity::Error, || {
                formats::unknown_shape(doc, 0, file)
            });
            return;
        };
        self.first_seen.get_or_insert(fmt);
        if let Some((file, from)) = self.format
            && file != fmt
        {
            self.sink
                .add(line, Severity::Error, || mixed(fmt, file, from));
            return;
        }
        let mut conv = Conversation {
            msgs: std::mem::take(&mut self.msgs),
            pieces: formats::recycle(std::mem::take(&mut self.pieces)),
        };
        conv.msgs.clear();
        let mut rep = Rep {
            sink: &mut self.sink,
            line,
            errors: 0,
        };
        formats::check(doc, 0, fmt, &mut rep, &mut conv);
        if rep.errors == 0 {
            if self.format.is_none() {
                self.fix_format(fmt, line);
            }
            self.count(index, line, &conv);
        } else if self.format.is_none() && self.pending.len() < 10_000 {
            self.pending.push((line, fmt));
        }
        self.msgs = conv.msgs;
        self.pieces = formats::recycle(conv.pieces);
    }

    fn fix_format(&mut self, fmt: DatasetFormat, line: u64) {
        self.format = Some((fmt, line));
        for (l, f) in std::mem::take(&mut self.pending) {
            if f != fmt {
                self.sink.add(l, Severity::Error, || mixed(f, fmt, line));
            }
        }
    }

    fn count(&mut self, index: u64, line: u64, conv: &Conversation) {
        self.examples += 1;
        if in_split(index, self.opts.split_seed, self.threshold) {
            self.validation += 1;
        } else {
            self.training += 1;
        }
        let mut tokens = 0u64;
        let mut h = conv.msgs.len() as u64;
        for m in &conv.msgs {
            let parts = conv.content(m);
            tokens += match &self.opts.tokenizer {
                Some(t) => {
                    self.join.clear();
                    for p in parts {
                        self.join.push_str(&p.decoded());
                    }
                    t.encode_fast(self.join.as_str(), false)
                        .map(|e| e.len() as u64)
                        .unwrap_or_else(|_| estimate_tokens(&self.join))
                }
                None => (parts.iter().map(|p| p.len() as u64).sum::<u64>()).div_ceil(4),
            };
            // The hash of the canonical JSON form of each message, chained.
            let x = match parts {
                [one] if one.canonical_bytes().is_some() => {
                    xxh3_64(one.canonical_bytes().unwrap_or_default())
                }
                _ => {
                    self.canon.clear();
                    for p in parts {
                        p.canonical(&mut self.canon);
                    }
                    xxh3_64(&self.canon)
                }
            };
            h = (h.rotate_left(23) ^ x ^ ROLE_SALT[m.role as usize])
                .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
        let h = h ^ (h >> 29);
        self.total_tokens += tokens;
        self.turns += conv.msgs.len() as u64;
        self.tokens.push(tokens.min(u64::from(u32::MAX)) as u32);
        if tokens > u64::from(self.opts.max_seq_length) {
            self.over += 1;
            if self.over_lines.len() < LINES_NAMED {
                self.over_lines.push(line);
            }
        }
        match self.seen.entry(h) {
            Entry::Occupied(e) => {
                self.duplicates += 1;
                if self.duplicate_lines.len() < LINES_NAMED {
                    self.duplicate_lines.push((line, *e.get()));
                }
            }
            Entry::Vacant(e) => {
                e.insert(line);
            }
        }
        if self.sample.len() < 3 {
            self.sample.push(
                conv.msgs
                    .iter()
                    .map(|m| ChatMessage {
                        role: m.role.as_str().to_string(),
                        content: conv.content(m).iter().map(|p| p.decoded()).collect(),
                    })
                    .collect(),
            );
        }
    }

    fn finish(mut self) -> ValidationReport {
        if !self.stopped {
            self.summarise();
        }
        let mut tokens = std::mem::take(&mut self.tokens);
        tokens.sort_unstable();
        let rank = |p: f64| -> u64 {
            if tokens.is_empty() {
                return 0;
            }
            let k = ((p * tokens.len() as f64).ceil() as usize).clamp(1, tokens.len());
            u64::from(tokens[k - 1])
        };
        let statistics = DatasetStatistics {
            total_examples: self.examples,
            total_training_pairs: self.training,
            total_validation_pairs: self.validation,
            total_tokens: self.total_tokens,
            tokens_exact: self.opts.tokenizer.is_some(),
            avg_turns_per_conversation: if self.examples > 0 {
                self.turns as f64 / self.examples as f64
            } else {
                0.0
            },
            avg_tokens_per_turn: if self.turns > 0 {
                self.total_tokens as f64 / self.turns as f64
            } else {
                0.0
            },
            tokens_p50: rank(0.5),
            tokens_p95: rank(0.95),
            tokens_max: tokens.last().map_or(0, |&t| u64::from(t)),
            duplicate_examples: self.duplicates,
            examples_over_max_seq_length: self.over,
            max_seq_length: self.opts.max_seq_length,
            error_count: self.sink.errors,
            warning_count: self.sink.warnings,
        };
        ValidationReport {
            format: self.format.map(|f| f.0).or(self.first_seen),
            training_ready: self.sink.errors == 0 && self.training > 0,
            statistics,
            issues: self.sink.kept,
            sample: self.sample,
        }
    }

    /// The findings about the file as a whole.
    fn summarise(&mut self) {
        if self.records == 0 {
            self.sink.add(1, Severity::Error, || {
                (
                    "the file holds no examples".into(),
                    format!(
                        "add examples, one JSON object per line; {}",
                        formats::supported_formats()
                    ),
                )
            });
        }
        if self.examples > 0 && self.training == 0 {
            let (n, fraction) = (self.examples, self.opts.holdout_fraction);
            self.sink.add(1, Severity::Error, || {
                (
                    format!("all {n} examples fall into the validation split (hold-out fraction {fraction}), none is left to train on"),
                    "lower the hold-out fraction, or add examples".into(),
                )
            });
        }
        if let Some(&first) = self.over_lines.first() {
            let (n, max) = (self.over, self.opts.max_seq_length);
            let how = if self.opts.tokenizer.is_some() {
                ""
            } else {
                " (estimated)"
            };
            let lines = list_lines(&self.over_lines, n);
            self.sink.add(first, Severity::Warning, || {
                (
                    format!("{n} example(s) are longer than the maximum sequence length of {max} tokens{how}: lines {lines}"),
                    "they will be truncated in training: raise max_seq_length, or shorten or split these examples".into(),
                )
            });
        }
        if let Some(&(first, _)) = self.duplicate_lines.first() {
            let n = self.duplicates;
            let mut pairs = self
                .duplicate_lines
                .iter()
                .map(|(l, o)| format!("line {l} repeats line {o}"))
                .collect::<Vec<_>>()
                .join(", ");
            if n > self.duplicate_lines.len() as u64 {
                pairs.push_str(&format!(
                    " and {} more",
                    n - self.duplicate_lines.len() as u64
                ));
            }
            self.sink.add(first, Severity::Warning, || {
                (
                    format!("{n} example(s) are exact duplicates of earlier ones: {pairs}"),
                    "remove the duplicates: repeated examples weigh more in training and leak between the training and validation splits".into(),
                )
            });
        }
    }
}

fn mixed(this: DatasetFormat, file: DatasetFormat, from: u64) -> (String, String) {
    (
        format!(
            "this example is {} but the file is {} (as detected from line {from}); a file must not mix formats",
            formats::label(this),
            formats::label(file)
        ),
        format!("convert it to {}: {}", formats::label(file), file.shape()),
    )
}

const UTF8_FIX: &str =
    "save the file as UTF-8, e.g. `iconv -f WINDOWS-1252 -t UTF-8 in.jsonl > out.jsonl`";

fn trim_ascii_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|x| x.is_ascii_whitespace()).count();
    &b[n..]
}

/// Line offset (0-based) and 1-based column (in characters) of byte `at` in `bytes`.
fn position(bytes: &[u8], at: usize) -> (u64, usize) {
    let before = &bytes[..at.min(bytes.len())];
    let lines = memchr::memchr_iter(b'\n', before).count() as u64;
    let line_start = memchr::memrchr(b'\n', before).map_or(0, |p| p + 1);
    let col = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (lines, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_rule_matches_protocol() {
        let n = (0..10_000u64)
            .filter(|&i| in_validation_split(i, 42, 0.1))
            .count();
        assert_eq!(n, 1000);
        assert!(!(0..10_000u64).any(|i| in_validation_split(i, 7, 0.0)));
        assert!((0..10_000u64).all(|i| in_validation_split(i, 7, 1.0)));
        // (0 × 2654435761 + 42) mod 10000 = 42 < 1000
        assert!(in_validation_split(0, 42, 0.1));
        // (1 × 2654435761 + 42) mod 10000 = 5803
        assert!(!in_validation_split(1, 42, 0.1));
    }

    #[test]
    fn estimate_is_a_quarter_of_the_bytes_rounded_up() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
        assert_eq!(estimate_tokens("é"), 1);
    }

    #[test]
    fn role_tags_differ() {
        assert_ne!(formats::Role::User as u8, formats::Role::Assistant as u8);
    }
}
