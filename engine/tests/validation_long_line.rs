//! A line of hundreds of MB gets a clear error, is never held in memory, and the lines after
//! it are still validated.

use brightrun_engine::validation::{MAX_LINE_BYTES, ValidationOptions, validate_reader};
use std::io::Read;

/// Bytes made on demand: literal pieces and long runs of one byte, never all in memory.
struct Generated {
    segments: Vec<(Vec<u8>, u64)>,
    at: usize,
    done: u64,
}

impl Generated {
    /// `(bytes, 0)` is a literal piece; `(vec![b], n)` is `b` repeated `n` times.
    fn new(segments: Vec<(Vec<u8>, u64)>) -> Self {
        Self {
            segments,
            at: 0,
            done: 0,
        }
    }

    fn len(&self) -> u64 {
        self.segments
            .iter()
            .map(|(b, n)| if *n == 0 { b.len() as u64 } else { *n })
            .sum()
    }
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while let Some((bytes, n)) = self.segments.get(self.at) {
            let total = if *n == 0 { bytes.len() as u64 } else { *n };
            if self.done == total {
                self.at += 1;
                self.done = 0;
                continue;
            }
            let k = (total - self.done).min(buf.len() as u64) as usize;
            if *n == 0 {
                let from = self.done as usize;
                buf[..k].copy_from_slice(&bytes[from..from + k]);
            } else {
                buf[..k].fill(bytes[0]);
            }
            self.done += k as u64;
            return Ok(k);
        }
        Ok(0)
    }
}

fn peak_rss_mb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

const GOOD: &str = "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello\"}]}\n";
const GOOD2: &str = "{\"messages\": [{\"role\": \"user\", \"content\": \"Yo\"}, {\"role\": \"assistant\", \"content\": \"Hey\"}]}\n";
const BAD: &str = "{\"messages\": [{\"role\": \"user\", \"content\": \"\"}, {\"role\": \"assistant\", \"content\": \"Hey\"}]}\n";

#[test]
fn a_300_mb_line_is_skipped_with_a_clear_error() {
    let huge = 300_000_000u64;
    let input = Generated::new(vec![
        (GOOD.as_bytes().to_vec(), 0),
        (
            b"{\"messages\": [{\"role\": \"user\", \"content\": \"".to_vec(),
            0,
        ),
        (vec![b'a'], huge),
        (
            b"\"}, {\"role\": \"assistant\", \"content\": \"x\"}]}\n".to_vec(),
            0,
        ),
        (GOOD2.as_bytes().to_vec(), 0),
        (BAD.as_bytes().to_vec(), 0),
    ]);
    let total = input.len();
    let mut seen = 0;
    let opts = ValidationOptions {
        holdout_fraction: 0.0,
        ..Default::default()
    };
    let r = validate_reader(input, "big.jsonl", &opts, &mut |n| seen = n).unwrap();
    assert_eq!(seen, total);
    assert_eq!(r.statistics.total_examples, 2, "{:#?}", r.issues);
    assert_eq!(r.statistics.error_count, 2, "{:#?}", r.issues);
    let long = &r.issues[0];
    assert_eq!(long.line, 2);
    assert!(
        long.error.contains("the line is 300.0 MB"),
        "{}",
        long.error
    );
    assert!(
        long.error.contains(&format!(
            "over the {:.1} MB limit",
            MAX_LINE_BYTES as f64 / 1e6
        )),
        "{}",
        long.error
    );
    assert!(long.suggestion.contains("one example per line"));
    // The lines after it are still checked.
    assert_eq!(r.issues[1].line, 4);
    assert!(r.issues[1].error.contains("content is empty"));
    if let Some(peak) = peak_rss_mb() {
        assert!(
            peak < 250,
            "peak RSS {peak} MB: the long line was held in memory"
        );
    }
}

#[test]
fn an_oversized_element_of_a_json_array_is_skipped_too() {
    let input = Generated::new(vec![
        (
            b"[\n{\"prompt\": \"p\", \"completion\": \"c\"},\n{\"prompt\": \"".to_vec(),
            0,
        ),
        (vec![b'z'], 40_000_000),
        (
            b"\", \"completion\": \"c\"},\n{\"prompt\": \"q\", \"completion\": \"\"}\n]\n".to_vec(),
            0,
        ),
    ]);
    let opts = ValidationOptions {
        holdout_fraction: 0.0,
        ..Default::default()
    };
    let r = validate_reader(input, "big.json", &opts, &mut |_| {}).unwrap();
    assert_eq!(r.statistics.total_examples, 1, "{:#?}", r.issues);
    assert_eq!(r.issues.len(), 2, "{:#?}", r.issues);
    assert_eq!(r.issues[0].line, 3);
    assert!(
        r.issues[0]
            .error
            .contains("the example starting on this line is 40.0 MB")
    );
    assert_eq!(r.issues[1].line, 4);
    assert!(r.issues[1].error.contains("\"completion\" is empty"));
}
