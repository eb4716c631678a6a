//! Property tests: no input panics the validator, and the lines it blames are the right ones.

use brightrun_engine::domain::Severity;
use brightrun_engine::validation::synth::Synth;
use brightrun_engine::validation::{ValidationOptions, ValidationReport, validate_reader};
use proptest::prelude::*;
use std::collections::BTreeSet;

fn opts() -> ValidationOptions {
    ValidationOptions {
        holdout_fraction: 0.0,
        max_issues_kept: 100_000,
        ..Default::default()
    }
}

fn run(name: &str, bytes: &[u8]) -> ValidationReport {
    validate_reader(bytes, name, &opts(), &mut |_| {}).unwrap()
}

/// Invariants that hold for any input.
fn sane(r: &ValidationReport, bytes: &[u8]) -> Result<(), TestCaseError> {
    let lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    for w in r.issues.windows(2) {
        prop_assert!(w[0].line <= w[1].line, "issues out of order");
    }
    for i in &r.issues {
        prop_assert!(i.line >= 1 && i.line <= lines, "line {} of {lines}", i.line);
        prop_assert!(!i.error.is_empty() && !i.suggestion.is_empty());
    }
    let s = &r.statistics;
    let errors = r
        .issues
        .iter()
        .filter(|i| i.severity == Severity::Error)
        .count() as u64;
    prop_assert_eq!(errors, s.error_count);
    prop_assert_eq!(
        r.training_ready,
        s.error_count == 0 && s.total_training_pairs > 0
    );
    prop_assert_eq!(
        s.total_examples,
        s.total_training_pairs + s.total_validation_pairs
    );
    prop_assert!(r.sample.len() as u64 == s.total_examples.min(3));
    prop_assert!(s.tokens_p50 <= s.tokens_p95 && s.tokens_p95 <= s.tokens_max);
    Ok(())
}

/// Ways to break a line of compact OpenAI chat so that it holds at least one error.
fn break_line(line: &str, kind: u8) -> Vec<u8> {
    match kind {
        // Cut short: not valid JSON.
        0 => line.as_bytes()[..line.len() - 1].to_vec(),
        // Garbage before it.
        1 => format!("x{line}").into_bytes(),
        // An unknown role.
        2 => line
            .replacen("\"role\":\"user\"", "\"role\":\"usr\"", 1)
            .into_bytes(),
        // Invalid UTF-8 inside a string.
        3 => {
            let at = line.find("\"content\":\"").unwrap() + 11;
            let mut b = line.as_bytes().to_vec();
            b.insert(at, 0xff);
            b
        }
        // The last assistant turn made a user turn: the order is wrong.
        4 => {
            let at = line.rfind("\"role\":\"assistant\"").unwrap();
            format!("{}\"role\":\"user\"{}", &line[..at], &line[at + 18..]).into_bytes()
        }
        // An empty user message.
        _ => line
            .replacen(
                "\"role\":\"user\",\"content\":\"",
                "\"role\":\"user\",\"content\":\" \",\"x\":\"",
                1,
            )
            .into_bytes(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..3000), array in any::<bool>()) {
        let name = if array { "d.json" } else { "d.jsonl" };
        let r = run(name, &bytes);
        sane(&r, &bytes)?;
    }

    #[test]
    fn json_like_text_never_panics(text in "[\\[\\]{}\":,a-z0-9 .eE+\\-\\\\/\n\r\tu\u{e9}\u{1F600}]{0,600}") {
        for name in ["d.jsonl", "d.json"] {
            let r = run(name, text.as_bytes());
            sane(&r, text.as_bytes())?;
            let r = run(name, format!("[{text}]").as_bytes());
            sane(&r, format!("[{text}]").as_bytes())?;
        }
    }

    #[test]
    fn mutated_valid_jsonl_never_panics(
        seed in any::<u64>(),
        n in 1usize..20,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..30),
    ) {
        let mut synth = Synth::new(seed);
        let mut bytes: Vec<u8> = Vec::new();
        for _ in 0..n {
            bytes.extend_from_slice(synth.short_line().as_bytes());
            bytes.push(b'\n');
        }
        for (at, b) in flips {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        let r = run("d.jsonl", &bytes);
        sane(&r, &bytes)?;
    }

    #[test]
    fn error_lines_are_exactly_the_broken_lines(
        seed in any::<u64>(),
        plan in proptest::collection::vec((any::<bool>(), 0u8..6, 0u8..3), 1..40),
        crlf in any::<bool>(),
        bom in any::<bool>(),
    ) {
        let mut synth = Synth::new(seed);
        let mut bytes: Vec<u8> = if bom { b"\xEF\xBB\xBF".to_vec() } else { Vec::new() };
        let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
        let mut line_no = 0u64;
        let mut broken = BTreeSet::new();
        let mut good = 0u64;
        for (is_broken, kind, blanks) in &plan {
            for b in 0..*blanks {
                bytes.extend_from_slice(if b == 0 { b"" } else { b"  \t" });
                bytes.extend_from_slice(eol);
                line_no += 1;
            }
            let line = synth.short_line();
            line_no += 1;
            if *is_broken {
                bytes.extend_from_slice(&break_line(&line, *kind));
                broken.insert(line_no);
            } else {
                bytes.extend_from_slice(line.as_bytes());
                good += 1;
            }
            bytes.extend_from_slice(eol);
        }
        let r = run("d.jsonl", &bytes);
        sane(&r, &bytes)?;
        let blamed: BTreeSet<u64> = r
            .issues
            .iter()
            .filter(|i| i.severity == Severity::Error)
            .map(|i| i.line)
            .collect();
        prop_assert_eq!(&blamed, &broken, "{:#?}", r.issues);
        prop_assert_eq!(r.statistics.total_examples, good);
    }

    #[test]
    fn json_array_element_lines_are_right(
        seed in any::<u64>(),
        plan in proptest::collection::vec((any::<bool>(), 1u8..6), 1..30),
    ) {
        let mut synth = Synth::new(seed);
        let mut bytes = b"[\n".to_vec();
        let mut broken = BTreeSet::new();
        for (i, (is_broken, kind)) in plan.iter().enumerate() {
            let line = synth.short_line();
            if *is_broken {
                bytes.extend_from_slice(&break_line(&line, *kind));
                broken.insert(i as u64 + 2);
            } else {
                bytes.extend_from_slice(line.as_bytes());
            }
            bytes.extend_from_slice(if i + 1 < plan.len() { b",\n" } else { b"\n" });
        }
        bytes.extend_from_slice(b"]\n");
        let r = run("d.json", &bytes);
        sane(&r, &bytes)?;
        let blamed: BTreeSet<u64> = r
            .issues
            .iter()
            .filter(|i| i.severity == Severity::Error)
            .map(|i| i.line)
            .collect();
        prop_assert_eq!(&blamed, &broken, "{:#?}", r.issues);
    }
}
