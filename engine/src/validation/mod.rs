//! Dataset validation: one streaming pass over a JSONL file (or a `.json` file holding one
//! JSON array) that detects its format, checks every example, and profiles the lot.
//!
//! What it checks, per example: valid UTF-8, valid JSON, a JSON object, the keys and types of
//! the file's format (DESIGN.md, "Dataset formats"), known roles, non-empty content, the
//! order of a conversation (an optional leading system message, then user and assistant
//! alternating, ending with the assistant; no user message before the first reply, or a last
//! user message, are warnings), `weight`/`loss_weight` only 0 or 1, unknown keys (a warning;
//! the same warning on many examples is one finding with a count),
//! and that the file does not mix formats (the first valid example fixes it). A BOM, CRLF
//! line ends and blank lines are fine; a leading `_meta` record is skipped. Binary,
//! compressed, UTF-16, empty files and lines over [`MAX_LINE_BYTES`] each get one clear
//! verdict. Every problem has a 1-based line, a reason and a suggestion; all are counted, the
//! first `max_issues_kept` (by line) are kept.
//!
//! Preference pairs and KTO examples (`preference.rs`) are read into a prompt and its replies
//! ([`formats::Sides`]); besides the per-example checks, a KTO file needs both labels (an
//! error) and replies whose length follows the preference are a warning (at least
//! [`LENGTH_BIAS_MIN_PAIRS`] pairs, [`LENGTH_BIAS_SHARE`] of them with the same reply the
//! longer). Their shared counts take a pair's prompt and both replies (tokens, messages,
//! duplicates); its sequence, for the maximum length, is the prompt and the longer reply;
//! `statistics.preference` has the rest.
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
mod preference;
mod reader;
mod shape;
#[doc(hidden)]
pub mod synth;
mod tape;

use crate::domain::{
    ChatMessage, DatasetFormat, DatasetStatistics, PreferenceStatistics, Severity, ValidationIssue,
};
use formats::{Conversation, Msg};
use issues::{IssueSink, Refusal, Rep};
use reader::{Line, LineReader};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;
use tape::{Doc, ErrorKind, JsonError, Node};

/// The validator's own JSON parser (`tape.rs`) as a `serde_json::Value`, for the
/// differential test against serde_json and the fuzz target (`fuzz/`); not an API.
/// Numbers become `f64`, as the validator reads them.
#[doc(hidden)]
pub fn parse_json_value(text: &[u8]) -> Result<serde_json::Value, String> {
    let mut nodes = Vec::new();
    let mut arena = String::new();
    tape::parse(text, &mut nodes, &mut arena).map_err(|e| format!("{e:?}"))?;
    let doc = Doc {
        nodes: &nodes,
        arena: &arena,
    };
    fn value(doc: &Doc, i: usize) -> serde_json::Value {
        use serde_json::Value;
        match doc.nodes[i] {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(b),
            Node::Num(x) => serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number),
            Node::Arr { .. } => Value::Array(doc.elements(i).map(|e| value(doc, e)).collect()),
            Node::Obj { .. } => Value::Object(
                doc.entries(i)
                    .map(|(k, v)| (k.to_string(), value(doc, v)))
                    .collect(),
            ),
            _ => Value::String(
                doc.text_at(i)
                    .map(|t| t.decoded().into_owned())
                    .unwrap_or_default(),
            ),
        }
    }
    Ok(value(&doc, 0))
}
use xxhash_rust::xxh3::xxh3_64;

/// The most bytes one example (a line, or an element of a JSON array) may take. Longer ones
/// are skipped with an error, never held in memory: at ~4 bytes per token this is millions of
/// tokens, far past any sequence length, so such a line is a broken file, not an example.
pub const MAX_LINE_BYTES: usize = 32 << 20;

/// Mixed into the duplicate hash per message role.
const ROLE_SALT: [u64; 5] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
    0x082e_fa98_ec4e_6c89,
    0x4528_21e6_38d0_1377,
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
    /// The tokens the base model's chat template adds around messages, counted with the
    /// same tokenizer; with it, token counts are what the trainer will see.
    pub chat_overhead: Option<ChatOverhead>,
}

/// The tokens a chat template adds: `fixed` per conversation (a BOS, a default system
/// preamble) and `per_role` per message of each role (the turn markers), measured by
/// rendering probe conversations ([`crate::tokens`]). Plain-text examples get `fixed` only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChatOverhead {
    pub fixed: u32,
    /// System, user, assistant, tool.
    pub per_role: [u32; 4],
}

impl ChatOverhead {
    /// The tokens the template adds around one message of this role.
    fn of_role(&self, r: formats::Role) -> u64 {
        u64::from(match r {
            formats::Role::System => self.per_role[0],
            formats::Role::User => self.per_role[1],
            formats::Role::Assistant => self.per_role[2],
            formats::Role::Tool => self.per_role[3],
            formats::Role::Text => 0,
        })
    }
}

/// A length bias is reported when at least this many pairs are compared…
pub const LENGTH_BIAS_MIN_PAIRS: u64 = 20;
/// …and the chosen (or the rejected) reply is the longer one in at least this share of them.
pub const LENGTH_BIAS_SHARE: f64 = 0.75;

impl Default for ValidationOptions {
    fn default() -> Self {
        Self {
            holdout_fraction: 0.1,
            split_seed: 42,
            max_seq_length: 2048,
            tokenizer: None,
            max_issues_kept: 100,
            chat_overhead: None,
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
            .field("chat_overhead", &self.chat_overhead)
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
    /// The first 3 valid examples as chat messages. A preference pair shows its prompt
    /// followed by the chosen reply (the rejected one is not shown); a KTO example its prompt
    /// and its reply, whatever its label.
    pub sample: Vec<Vec<ChatMessage>>,
    /// No errors and at least one example in the training split.
    pub training_ready: bool,
}

/// What the validator concluded about one record, for callers that act per record (the
/// `clean` path keeps the valid ones). `bytes` is the record as it is in the file: a JSONL
/// line without its line break, or a JSON array element.
#[derive(Debug)]
pub struct RecordVerdict<'b> {
    /// 1-based line of the record (of its first byte, for an array element).
    pub line: u64,
    /// 0-based position in the JSON array, for a `.json` array file.
    pub element: Option<u64>,
    pub bytes: &'b [u8],
    /// A valid example of the file's format. (The format is fixed by the first valid example;
    /// records before it of another format are invalid.)
    pub valid: bool,
    /// For a valid example that repeats an earlier one exactly: the earlier one's line.
    pub duplicate_of: Option<u64>,
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
    validate_reader_with(reader, file_name, opts, progress, &mut |_| {})
}

/// [`validate_reader`], telling `records` the verdict on every record as it goes (records
/// after a file-level verdict, and the leading `_meta` record, are not reported). A record
/// reported valid may still be part of a file that is not ready (other records are bad).
pub fn validate_reader_with<R: Read>(
    reader: R,
    file_name: &str,
    opts: &ValidationOptions,
    progress: &mut dyn FnMut(u64),
    records: &mut dyn FnMut(&RecordVerdict<'_>),
) -> io::Result<ValidationReport> {
    let mut v = Validator::new(opts, records);
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
    if let Some((line, error, suggestion)) = shape::verdict(lines.buffered(), lines.at_eof(), &ext)
    {
        v.sink.add(line, Severity::Error, || (error, suggestion));
        v.stopped = true;
        return Ok(v.finish());
    }
    if first == Some(b'[') {
        v.array = true;
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

/// A preference or KTO file's figures as they are counted.
#[derive(Default)]
struct PrefCounts {
    pairs: u64,
    prompt_tokens: u64,
    chosen_tokens: u64,
    rejected_tokens: u64,
    /// Reply lengths: chosen (KTO: desirable) and rejected (undesirable).
    chosen: Vec<u32>,
    rejected: Vec<u32>,
    sequence_max: u64,
    /// Preference pairs whose chosen / rejected reply is the longer.
    chosen_longer: u64,
    rejected_longer: u64,
    desirable: u64,
    undesirable: u64,
    /// KTO: per prompt (by hash), the tokens of its first desirable and first undesirable
    /// reply, to compare their lengths as pairs.
    by_prompt: HashMap<u64, (Option<u32>, Option<u32>), BuildHasherDefault<Prehashed>>,
}

/// Replies compared by length: how many pairs, in how many the chosen (desirable) reply is
/// the longer, in how many the rejected one, and the replies' tokens over those pairs.
struct LengthPairs {
    pairs: u64,
    chosen_longer: u64,
    rejected_longer: u64,
    chosen_tokens: u64,
    rejected_tokens: u64,
}

impl PrefCounts {
    fn add(
        &mut self,
        label: Option<bool>,
        prompt: u64,
        chosen: u64,
        rejected: u64,
        prompt_hash: u64,
    ) {
        let clamp = |t: u64| t.min(u64::from(u32::MAX)) as u32;
        self.pairs += 1;
        self.prompt_tokens += prompt;
        self.sequence_max = self.sequence_max.max(prompt + chosen.max(rejected));
        match label {
            None => {
                self.chosen_tokens += chosen;
                self.rejected_tokens += rejected;
                self.chosen.push(clamp(chosen));
                self.rejected.push(clamp(rejected));
                self.chosen_longer += u64::from(chosen > rejected);
                self.rejected_longer += u64::from(rejected > chosen);
            }
            Some(true) => {
                self.desirable += 1;
                self.chosen_tokens += chosen;
                self.chosen.push(clamp(chosen));
                self.by_prompt
                    .entry(prompt_hash)
                    .or_default()
                    .0
                    .get_or_insert(clamp(chosen));
            }
            Some(false) => {
                self.undesirable += 1;
                self.rejected_tokens += chosen;
                self.rejected.push(clamp(chosen));
                self.by_prompt
                    .entry(prompt_hash)
                    .or_default()
                    .1
                    .get_or_insert(clamp(chosen));
            }
        }
    }

    /// Preference: every pair. KTO: the prompts that have both a desirable and an undesirable
    /// reply (the first of each).
    fn length_pairs(&self, kto: bool) -> LengthPairs {
        if !kto {
            return LengthPairs {
                pairs: self.chosen.len() as u64,
                chosen_longer: self.chosen_longer,
                rejected_longer: self.rejected_longer,
                chosen_tokens: self.chosen_tokens,
                rejected_tokens: self.rejected_tokens,
            };
        }
        let mut l = LengthPairs {
            pairs: 0,
            chosen_longer: 0,
            rejected_longer: 0,
            chosen_tokens: 0,
            rejected_tokens: 0,
        };
        for (c, r) in self.by_prompt.values().filter_map(|&(c, r)| c.zip(r)) {
            l.pairs += 1;
            l.chosen_longer += u64::from(c > r);
            l.rejected_longer += u64::from(r > c);
            l.chosen_tokens += u64::from(c);
            l.rejected_tokens += u64::from(r);
        }
        l
    }

    fn statistics(mut self, kto: bool) -> PreferenceStatistics {
        let lengths = self.length_pairs(kto);
        self.chosen.sort_unstable();
        self.rejected.sort_unstable();
        PreferenceStatistics {
            pairs: self.pairs,
            prompt_tokens: self.prompt_tokens,
            chosen_tokens: self.chosen_tokens,
            rejected_tokens: self.rejected_tokens,
            chosen_tokens_p50: percentile(&self.chosen, 0.5),
            chosen_tokens_p95: percentile(&self.chosen, 0.95),
            rejected_tokens_p50: percentile(&self.rejected, 0.5),
            rejected_tokens_p95: percentile(&self.rejected, 0.95),
            sequence_tokens_max: self.sequence_max,
            chosen_longer_share: if lengths.pairs > 0 {
                lengths.chosen_longer as f64 / lengths.pairs as f64
            } else {
                0.0
            },
            desirable: self.desirable,
            undesirable: self.undesirable,
        }
    }
}

/// The nearest-rank percentile of sorted values (0 for none).
fn percentile(sorted: &[u32], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let k = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    u64::from(sorted[k - 1])
}

struct Validator<'o, 'r> {
    opts: &'o ValidationOptions,
    records_out: &'r mut dyn FnMut(&RecordVerdict<'_>),
    /// A `.json` array file: findings name the element.
    array: bool,
    /// Elements of the array so far.
    elements: u64,
    /// Examples refused as data for another kind of training: (count, lines named).
    refused: [(u64, Vec<u64>); 3],
    /// What the first refused example of each kind was recognised by.
    refused_why: [Option<Refusal>; 3],
    /// Whether a record that is a JSON object was seen; until then string records are only
    /// counted (a file of strings gets one verdict, not one per line).
    object_seen: bool,
    strings: u64,
    string_lines: Vec<u64>,
    /// A preference or KTO file's figures.
    pref: PrefCounts,
    /// The first line of a refused example (where the file-level finding is reported).
    refused_line: Option<u64>,
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
    /// (line, line or element, the earlier one's line or element).
    duplicate_lines: Vec<(u64, u64, u64)>,
    over: u64,
    /// (line, line or element).
    over_lines: Vec<(u64, u64)>,
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

impl<'o, 'r> Validator<'o, 'r> {
    fn new(
        opts: &'o ValidationOptions,
        records_out: &'r mut dyn FnMut(&RecordVerdict<'_>),
    ) -> Self {
        Self {
            opts,
            records_out,
            array: false,
            elements: 0,
            refused: Default::default(),
            refused_why: [None; 3],
            object_seen: false,
            strings: 0,
            string_lines: Vec::new(),
            pref: PrefCounts::default(),
            refused_line: None,
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
            array::Piece::Element { line, bytes } => {
                self.sink.element = Some(self.elements);
                self.record(line, line, bytes);
                self.sink.element = None;
                self.elements += 1;
            }
            array::Piece::TooLong { line, len } => {
                self.sink.element = Some(self.elements);
                self.too_long(line, len, true);
                self.sink.element = None;
                self.elements += 1;
            }
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
                let verdict = self.example(line, index, &doc);
                if let Some((valid, duplicate_of)) = verdict {
                    (self.records_out)(&RecordVerdict {
                        line,
                        element: self.sink.element,
                        bytes,
                        valid,
                        duplicate_of,
                    });
                }
            }
            Err(e) => {
                self.json_error(line, base, bytes, &e);
                (self.records_out)(&RecordVerdict {
                    line,
                    element: self.sink.element,
                    bytes,
                    valid: false,
                    duplicate_of: None,
                });
            }
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

    /// Checks one parsed record; `None` for a leading `_meta` record, else whether it is a
    /// valid example and, if it repeats an earlier one, that one's line.
    fn example(&mut self, line: u64, index: u64, doc: &Doc<'_, '_>) -> Option<(bool, Option<u64>)> {
        if !doc.is_obj(0) {
            if doc.text_at(0).is_some() && !self.object_seen {
                // Maybe a file of strings: one verdict at the end, unless objects follow.
                self.strings += 1;
                if self.string_lines.len() < 10_000 {
                    self.string_lines.push(line);
                }
                return Some((false, None));
            }
            self.not_an_object(line, doc.kind(0));
            return Some((false, None));
        }
        if !self.object_seen {
            self.object_seen = true;
            for l in std::mem::take(&mut self.string_lines) {
                self.not_an_object(l, "a string");
            }
        }
        if index == 0 && doc.get(0, "_meta").is_some() {
            self.records = 0;
            return None;
        }
        if let Some((why, fmt)) = formats::refusal(doc, 0) {
            self.first_seen.get_or_insert(fmt);
            self.refuse(line, why);
            return Some((false, None));
        }
        let detected = formats::detect(doc, 0).map(|f| match self.format {
            // In a KTO file, an example with a `label` that is not a boolean is a KTO example
            // with a broken label, not an example of another format.
            Some((DatasetFormat::Kto, _)) if doc.get(0, "label").is_some() => DatasetFormat::Kto,
            _ => f,
        });
        let Some(fmt) = detected else {
            let file = self.format.map(|f| f.0);
            self.sink.add(line, Severity::Error, || {
                formats::unknown_shape(doc, 0, file)
            });
            return Some((false, None));
        };
        self.first_seen.get_or_insert(fmt);
        if let Some((file, from)) = self.format
            && file != fmt
        {
            self.sink
                .add(line, Severity::Error, || mixed(fmt, file, from));
            return Some((false, None));
        }
        let mut conv = Conversation {
            msgs: std::mem::take(&mut self.msgs),
            pieces: formats::recycle(std::mem::take(&mut self.pieces)),
            extra_bytes: 0,
            sides: None,
        };
        conv.msgs.clear();
        let mut rep = Rep {
            sink: &mut self.sink,
            line,
            errors: 0,
            refused: None,
        };
        formats::check(doc, 0, fmt, &mut rep, &mut conv);
        if rep.refused.is_none()
            && let Some(tag) = conv.pieces.iter().find_map(formats::media_tag)
        {
            rep.refuse(Refusal::Multimodal(tag));
        }
        let (errors, refused) = (rep.errors, rep.refused);
        let mut verdict = (false, None);
        if let Some(why) = refused {
            self.refuse(line, why);
        } else if errors == 0 {
            if self.format.is_none() {
                self.fix_format(fmt, line);
            }
            verdict = (true, self.count(index, line, &conv));
        } else if self.format.is_none() && self.pending.len() < 10_000 {
            self.pending.push((line, fmt));
        }
        self.msgs = conv.msgs;
        self.pieces = formats::recycle(conv.pieces);
        Some(verdict)
    }

    fn not_an_object(&mut self, line: u64, kind: &str) {
        let file = self.format.map(|f| f.0);
        self.sink.add(line, Severity::Error, || {
            (
                format!("the example is {kind}, not a JSON object"),
                match file {
                    Some(f) => {
                        format!("write it as {} example: {}", formats::a_label(f), f.shape())
                    }
                    None => format!(
                        "each example must be a JSON object; {}",
                        formats::supported_formats()
                    ),
                },
            )
        });
    }

    /// Counts an example that is data for another kind of training (one finding per kind,
    /// at the end).
    fn refuse(&mut self, line: u64, why: Refusal) {
        let k = match why {
            Refusal::Multimodal(_) => 0,
            Refusal::ProcessReward => 1,
            Refusal::Parts(_) => 2,
        };
        let (n, lines) = &mut self.refused[k];
        *n += 1;
        if lines.len() < LINES_NAMED {
            lines.push(self.sink.element.unwrap_or(line));
        }
        self.refused_why[k].get_or_insert(why);
        if self.refused_line.is_none_or(|l| line < l) {
            self.refused_line = Some(line);
        }
    }

    fn fix_format(&mut self, fmt: DatasetFormat, line: u64) {
        self.format = Some((fmt, line));
        for (l, f) in std::mem::take(&mut self.pending) {
            if f != fmt {
                self.sink.add(l, Severity::Error, || mixed(f, fmt, line));
            }
        }
    }

    /// Counts a valid example; returns the line (element, in an array) of the earlier example
    /// it repeats, if any. A preference pair counts its prompt and both replies (tokens,
    /// messages); its sequence, for the maximum length, is the prompt and the longer reply.
    fn count(&mut self, index: u64, line: u64, conv: &Conversation) -> Option<u64> {
        let pos = self.sink.element.unwrap_or(line);
        self.examples += 1;
        if in_split(index, self.opts.split_seed, self.threshold) {
            self.validation += 1;
        } else {
            self.training += 1;
        }
        let n = conv.msgs.len();
        let sides = conv.sides;
        let (prompt_end, chosen_end) = sides.map_or((n, n), |s| (s.prompt, s.chosen_end));
        // Tokens of the prompt (with the tool definitions and the template's fixed part), the
        // chosen (KTO: the only) reply and the rejected one.
        let mut part = [conv.extra_bytes.div_ceil(4), 0u64, 0u64];
        if let Some(o) = &self.opts.chat_overhead {
            part[0] += u64::from(o.fixed);
        }
        let mut h = 0u64;
        let mut prompt_hash = 0u64;
        for (i, m) in conv.msgs.iter().enumerate() {
            if i == prompt_end {
                prompt_hash = h;
            }
            let parts = conv.content(m);
            let mut t = match &self.opts.tokenizer {
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
            if let Some(o) = &self.opts.chat_overhead {
                t += o.of_role(m.role);
            }
            part[usize::from(i >= prompt_end) + usize::from(i >= chosen_end)] += t;
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
            h = (h.rotate_left(23) ^ x ^ ROLE_SALT[m.role as usize] ^ u64::from(m.calls))
                .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
        h ^= (n as u64).wrapping_mul(0x6c62_272e_07bb_0142);
        if let Some(s) = sides {
            // Where the replies start and end, and the label, are part of the example.
            let label = s.label.map_or(0, |l| 1 + u64::from(l));
            h = (h ^ ((s.prompt as u64) << 40) ^ ((s.chosen_end as u64) << 16) ^ label)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
        h ^= conv.extra_bytes.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let h = h ^ (h >> 29);
        let [prompt, chosen, rejected] = part;
        let tokens = prompt + chosen + rejected;
        let sequence = prompt + chosen.max(rejected);
        if let Some(s) = sides {
            self.pref
                .add(s.label, prompt, chosen, rejected, prompt_hash);
        }
        self.total_tokens += tokens;
        self.turns += n as u64;
        self.tokens.push(tokens.min(u64::from(u32::MAX)) as u32);
        if sequence > u64::from(self.opts.max_seq_length) {
            self.over += 1;
            if self.over_lines.len() < LINES_NAMED {
                self.over_lines.push((line, pos));
            }
        }
        let duplicate_of = match self.seen.entry(h) {
            Entry::Occupied(e) => {
                self.duplicates += 1;
                if self.duplicate_lines.len() < LINES_NAMED {
                    self.duplicate_lines.push((line, pos, *e.get()));
                }
                Some(*e.get())
            }
            Entry::Vacant(e) => {
                e.insert(pos);
                None
            }
        };
        if self.sample.len() < 3 {
            self.sample.push(
                conv.msgs[..chosen_end]
                    .iter()
                    .map(|m| ChatMessage {
                        role: m.role.as_str().to_string(),
                        content: conv.content(m).iter().map(|p| p.decoded()).collect(),
                    })
                    .collect(),
            );
        }
        duplicate_of
    }

    fn finish(mut self) -> ValidationReport {
        self.sink.flush_groups();
        if !self.stopped {
            self.summarise();
        }
        // PROTOCOL.md's small-file rule, as the trainer applies it: when the split would
        // leave training empty, or select no validation example, there is no validation split.
        if self.examples > 0 && self.threshold > 0 && (self.training == 0 || self.validation == 0) {
            self.training = self.examples;
            self.validation = 0;
        }
        let mut tokens = std::mem::take(&mut self.tokens);
        tokens.sort_unstable();
        let rank = |p: f64| -> u64 { percentile(&tokens, p) };
        let format = self.format.map(|f| f.0).or(self.first_seen);
        let preference = match format {
            Some(f @ (DatasetFormat::Preference | DatasetFormat::Kto)) => {
                Some(std::mem::take(&mut self.pref).statistics(f == DatasetFormat::Kto))
            }
            _ => None,
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
            preference,
        };
        ValidationReport {
            training_ready: self.sink.errors == 0
                && self.training > 0
                && format.is_some_and(|f| f.is_trainable()),
            format,
            statistics,
            issues: self.sink.kept,
            sample: self.sample,
        }
    }

    /// One finding per kind of data refused (media, process-reward data, content parts it
    /// does not read), naming what it
    /// was recognised by and what to do.
    fn summarise_refusals(&mut self) {
        let what = if self.array { "elements" } else { "lines" };
        for k in 0..self.refused.len() {
            let (n, ref lines) = self.refused[k];
            let Some(why) = self.refused_why[k] else {
                continue;
            };
            let at = lines.first().copied().unwrap_or(1);
            let line = if self.array {
                self.refused_line.unwrap_or(1)
            } else {
                at
            };
            let named = list_lines(lines, n);
            let what = if n == 1 {
                &what[..what.len() - 1]
            } else {
                what
            };
            let total = self.records;
            // "all 12 examples hold", "its one example holds", "3 of 12 examples hold".
            let (of, hold) = match (n == total, n) {
                (true, 1) => ("its one example".to_string(), "holds"),
                (true, _) => (format!("all {n} examples"), "hold"),
                (false, 1) => (format!("1 of {total} examples"), "holds"),
                (false, _) => (format!("{n} of {total} examples"), "hold"),
            };
            self.sink.add(line, Severity::Error, || match why {
                Refusal::Multimodal(by) => (
                    format!("this is multimodal data ({of} {hold} images, audio or video, recognised by {by}: {what} {named}); BrightRun trains text LoRA adapters, and the media would be silently dropped"),
                    "remove the media (the images/videos/audios keys, the image, audio and video content parts, the <image> tags) to train on the text alone, or use a vision-language trainer for this data".into(),
                ),
                Refusal::ProcessReward => (
                    format!("this is process-reward data, not SFT data (stepwise supervision: \"prompt\", a list of \"completions\" steps and a \"labels\" list judging each step, as TRL's PRMTrainer reads it; {of}: {what} {named}); BrightRun trains supervised (SFT) LoRA adapters, which would learn the steps labelled wrong too"),
                    "train a process reward model with a PRM trainer; for SFT keep the examples whose steps are all correct and join them, e.g. `jq -c 'select(all(.labels[]; .)) | {prompt, completion: (.completions | join(\"\\n\"))}'`".into(),
                ),
                Refusal::Parts(by) => (
                    format!("this file uses content parts BrightRun does not read ({by}, as in LLaMA-Factory's reasoning and tool-use data; {of}: {what} {named}): BrightRun reads text parts only, and would lose the reasoning and the tool calls"),
                    "convert them: each tool_call part to the assistant message's \"tool_calls\" ({\"id\", \"type\": \"function\", \"function\": {\"name\", \"arguments\"}}) with \"tool\" messages for the results, and each reasoning part into the text as the base model's template writes it (e.g. <think>…</think> before the answer for Qwen3 or DeepSeek-R1), or drop it".into(),
                ),
            });
        }
    }

    /// A preference or KTO file's findings: a KTO file with one label only (an error), and
    /// replies whose lengths follow the preference (a warning: at least
    /// [`LENGTH_BIAS_MIN_PAIRS`] pairs compared and [`LENGTH_BIAS_SHARE`] of them with the
    /// chosen, or the rejected, reply the longer).
    fn summarise_preference(&mut self) {
        let Some((format, line)) = self.format else {
            return;
        };
        let kto = match format {
            DatasetFormat::Kto => true,
            DatasetFormat::Preference => false,
            _ => return,
        };
        let (desirable, undesirable) = (self.pref.desirable, self.pref.undesirable);
        if kto && self.examples > 0 && (desirable == 0 || undesirable == 0) {
            let n = self.examples;
            let all = if n == 1 {
                "its one example is".to_string()
            } else {
                format!("all {n} examples are")
            };
            self.sink.add(line, Severity::Error, || {
                if undesirable == 0 {
                    (
                        format!("{all} labelled desirable (true): KTO needs both desirable and undesirable examples"),
                        "add examples labelled false (undesirable replies); with a better and a worse reply to the same prompts, train DPO on a preference file ({\"prompt\", \"chosen\", \"rejected\"}); or train SFT on these desirable replies: `jq -c 'del(.label, .kto_tag)'`".into(),
                    )
                } else {
                    (
                        format!("{all} labelled undesirable (false): KTO needs both desirable and undesirable examples"),
                        "add examples labelled true (desirable replies); with a better and a worse reply to the same prompts, train DPO on a preference file ({\"prompt\", \"chosen\", \"rejected\"}); there is nothing here to train SFT on".into(),
                    )
                }
            });
        }
        let l = self.pref.length_pairs(kto);
        if l.pairs < LENGTH_BIAS_MIN_PAIRS {
            return;
        }
        let how = if self.opts.tokenizer.is_some() {
            ""
        } else {
            ", estimated"
        };
        let mean = |t: u64| (t as f64 / l.pairs as f64).round() as u64;
        let (mc, mr) = (mean(l.chosen_tokens), mean(l.rejected_tokens));
        let pct = |k: u64| (k as f64 * 100.0 / l.pairs as f64).round() as u64;
        let method = if kto { "KTO" } else { "DPO" };
        let (what, of) = if kto {
            (
                "the desirable reply",
                format!(
                    "{} prompts that have both a desirable and an undesirable reply",
                    l.pairs
                ),
            )
        } else {
            ("chosen", format!("{} pairs", l.pairs))
        };
        let share = |k: u64| k as f64 / l.pairs as f64;
        if share(l.chosen_longer) >= LENGTH_BIAS_SHARE {
            let p = pct(l.chosen_longer);
            self.sink.add(line, Severity::Warning, || {
                (
                    format!("{what} is the longer reply in {p}% of {of} (mean {mc} vs {mr} tokens{how}): {method} may learn length rather than quality"),
                    format!("balance the lengths: add examples whose better reply is the shorter one, or trim padding from the longer replies; SimPO, which normalises by length, is less affected (a share near 50% is no bias; this warning starts at {:.0}% of at least {LENGTH_BIAS_MIN_PAIRS})", LENGTH_BIAS_SHARE * 100.0),
                )
            });
        } else if share(l.rejected_longer) >= LENGTH_BIAS_SHARE {
            let p = pct(l.rejected_longer);
            let other = if kto {
                "the undesirable reply"
            } else {
                "rejected"
            };
            self.sink.add(line, Severity::Warning, || {
                (
                    format!("{other} is the longer reply in {p}% of {of} (mean {mc} vs {mr} tokens{how}, {what} first): {method} may learn to prefer short replies rather than good ones"),
                    format!("balance the lengths: add examples whose better reply is the longer one (a share near 50% is no bias; this warning starts at {:.0}% of at least {LENGTH_BIAS_MIN_PAIRS})", LENGTH_BIAS_SHARE * 100.0),
                )
            });
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
        self.summarise_refusals();
        self.summarise_preference();
        if self.strings > 0 && !self.object_seen {
            let n = self.strings;
            let first = self.string_lines.first().copied().unwrap_or(1);
            let what = if self.array { "elements" } else { "lines" };
            self.sink.add(first, Severity::Error, || {
                (
                    format!("the file holds JSON strings ({n} {what}), not example objects"),
                    "write each example as a JSON object: for plain text {\"text\": …}, e.g. `jq -c '{text: .}' in.jsonl > out.jsonl`; for conversations one of the chat formats".into(),
                )
            });
        }
        if self.examples > 0 && self.threshold > 0 && (self.training == 0 || self.validation == 0) {
            let (n, fraction) = (self.examples, self.opts.holdout_fraction);
            let why = if self.training == 0 {
                format!(
                    "the hold-out fraction {fraction} would put {} in the validation split and leave none to train on",
                    plural(n, "example", "all of its examples")
                )
            } else {
                format!(
                    "the hold-out fraction {fraction} selects none of its {}",
                    plural(n, "example", "")
                )
            };
            self.sink.add(1, Severity::Warning, || {
                (
                    format!("the file is too small for a validation split ({why}): no validation split is used, all {} train, and no validation loss will be reported", plural(n, "example", "")),
                    "add examples for a validation loss, or set the hold-out fraction to 0 to silence this".into(),
                )
            });
        }
        if let Some(&(first, _)) = self.over_lines.first() {
            let (n, max) = (self.over, self.opts.max_seq_length);
            let how = if self.opts.tokenizer.is_some() {
                ""
            } else {
                " (estimated)"
            };
            let places: Vec<u64> = self.over_lines.iter().map(|p| p.1).collect();
            let lines = list_lines(&places, n);
            let what = match (self.array, n) {
                (true, 1) => "element",
                (true, _) => "elements",
                (false, 1) => "line",
                (false, _) => "lines",
            };
            let (n_ex, are) = if n == 1 {
                ("1 example".to_string(), "is")
            } else {
                (format!("{n} examples"), "are")
            };
            self.sink.add(first, Severity::Warning, || {
                (
                    format!("{n_ex} {are} longer than the maximum sequence length of {max} tokens{how}: {what} {lines}"),
                    "they will be truncated in training: raise max_seq_length, or shorten or split these examples".into(),
                )
            });
        }
        if let Some(&(first, _, _)) = self.duplicate_lines.first() {
            let n = self.duplicates;
            let what = if self.array { "element" } else { "line" };
            let mut pairs = self
                .duplicate_lines
                .iter()
                .map(|(_, l, o)| format!("{what} {l} repeats {what} {o}"))
                .collect::<Vec<_>>()
                .join(", ");
            if n > self.duplicate_lines.len() as u64 {
                pairs.push_str(&format!(
                    " and {} more",
                    n - self.duplicate_lines.len() as u64
                ));
            }
            let (n_ex, are) = if n == 1 {
                (
                    "1 example".to_string(),
                    "is an exact duplicate of an earlier one",
                )
            } else {
                (
                    format!("{n} examples"),
                    "are exact duplicates of earlier ones",
                )
            };
            self.sink.add(first, Severity::Warning, || {
                (
                    format!("{n_ex} {are}: {pairs}"),
                    "remove the duplicates: repeated examples weigh more in training and leak between the training and validation splits".into(),
                )
            });
        }
    }
}

/// "1 example", "3 examples"; `all` (when not empty) replaces the count for n > 1.
fn plural(n: u64, one: &str, all: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else if all.is_empty() {
        format!("{n} {one}s")
    } else {
        all.replace("all of its", &format!("all {n} of its"))
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
