//! The shared corpus of dataset lines (`tests/fixtures/validation_corpus.jsonl`, described in
//! `validation_corpus.md` beside it), read by the engine's validator. The trainer's reader
//! reads the same corpus (`trainer/tests/test_corpus.py`), so the two cannot drift apart
//! unnoticed.

use brightrun_engine::domain::{DatasetFormat, Severity, ValidationIssue};
use brightrun_engine::validation::{ValidationOptions, validate_reader_with};

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/validation_corpus.jsonl"
);

/// One case: `records` written one per line, then `raw` (a line as it is, for text that is
/// not JSON); the last line is the record under test.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    case: String,
    #[serde(default)]
    records: Vec<serde_json::Value>,
    raw: Option<String>,
    /// The file's format as the validator reports it.
    format: Option<DatasetFormat>,
    /// The validator's verdict on the record under test.
    trainable: bool,
    /// The record's normal form, `[role, content]`; a null content is not compared (a tool
    /// call, which each side shows its own way).
    messages: Option<Vec<(String, Option<String>)>>,
    /// A fragment of an error on the record's line (required when not trainable).
    error: Option<String>,
    /// A fragment of a warning on the record's line; without it, the line has no warning.
    warning: Option<String>,
    /// The trainer's reason (checked by the trainer's test only).
    #[allow(dead_code)]
    trainer: Option<String>,
    /// Why the trainer's verdict differs (checked by the trainer's test only).
    #[allow(dead_code)]
    known_difference: Option<String>,
}

fn corpus() -> Vec<Case> {
    let text = std::fs::read_to_string(CORPUS).expect("the corpus is in tests/fixtures");
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("corpus line {}: {e}", i + 1))
        })
        .collect()
}

fn file_of(case: &Case) -> (String, u64) {
    let mut lines: Vec<String> = case
        .records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    lines.extend(case.raw.clone());
    let tested = lines.len() as u64;
    (lines.iter().map(|l| format!("{l}\n")).collect(), tested)
}

fn on_line(issues: &[ValidationIssue], line: u64, severity: Severity) -> Vec<&str> {
    issues
        .iter()
        .filter(|i| i.line == line && i.severity == severity)
        .map(|i| i.error.as_str())
        .collect()
}

/// What is wrong with the validator's verdict on `case`, if anything.
fn check(case: &Case) -> Result<(), String> {
    let (text, line) = file_of(case);
    let opts = ValidationOptions {
        holdout_fraction: 0.0,
        ..ValidationOptions::default()
    };
    let mut verdicts = Vec::new();
    let report = validate_reader_with(
        text.as_bytes(),
        "data.jsonl",
        &opts,
        &mut |_| {},
        &mut |v| verdicts.push((v.line, v.valid)),
    )
    .map_err(|e| e.to_string())?;
    let errors = on_line(&report.issues, line, Severity::Error);
    let warnings = on_line(&report.issues, line, Severity::Warning);
    let valid = verdicts.iter().any(|&(l, v)| l == line && v);
    let trainable = valid && errors.is_empty();
    if report.format != case.format {
        return Err(format!(
            "format {:?}, expected {:?}",
            report.format, case.format
        ));
    }
    if trainable != case.trainable {
        return Err(format!(
            "trainable {trainable}, expected {}; errors on line {line}: {errors:?}",
            case.trainable
        ));
    }
    if report.training_ready != case.trainable {
        return Err(format!(
            "training_ready {}; issues: {:?}",
            report.training_ready, report.issues
        ));
    }
    match &case.error {
        Some(fragment) if !errors.iter().any(|e| e.contains(fragment.as_str())) => {
            return Err(format!(
                "no error with {fragment:?} on line {line}: {errors:?}"
            ));
        }
        None if !case.trainable => return Err("a refused case names its error".into()),
        _ => {}
    }
    match &case.warning {
        Some(fragment) if !warnings.iter().any(|w| w.contains(fragment.as_str())) => {
            return Err(format!(
                "no warning with {fragment:?} on line {line}: {warnings:?}"
            ));
        }
        None if !warnings.is_empty() => {
            return Err(format!("unexpected warnings on line {line}: {warnings:?}"));
        }
        _ => {}
    }
    if case.trainable {
        let Some(expected) = &case.messages else {
            return Err("a trainable case gives its messages".into());
        };
        // The report's sample holds the first three valid examples.
        let position = verdicts.iter().filter(|&&(l, v)| v && l < line).count();
        let Some(sample) = report.sample.get(position) else {
            return Err(format!(
                "the record is valid example {position}, past the sample"
            ));
        };
        let roles: Vec<&str> = sample.iter().map(|m| m.role.as_str()).collect();
        let want: Vec<&str> = expected.iter().map(|(r, _)| r.as_str()).collect();
        if roles != want {
            return Err(format!("roles {roles:?}, expected {want:?}"));
        }
        for (got, (role, content)) in sample.iter().zip(expected) {
            if let Some(content) = content
                && &got.content != content
            {
                return Err(format!(
                    "{role} message {:?}, expected {content:?}",
                    got.content
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn the_validator_gives_every_corpus_case_its_verdict() {
    let cases = corpus();
    let mut names: Vec<&str> = cases.iter().map(|c| c.case.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names are unique");
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| check(c).err().map(|e| format!("{}: {e}", c.case)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn the_corpus_covers_every_format_the_validator_recognises() {
    let cases = corpus();
    for format in DatasetFormat::ALL {
        let trainable = cases
            .iter()
            .any(|c| c.format == Some(format) && c.trainable);
        let refused = cases
            .iter()
            .any(|c| c.format == Some(format) && !c.trainable);
        if format.is_trainable() {
            assert!(trainable, "no accepted case of {format:?}");
        }
        assert!(refused, "no refused case of {format:?}");
    }
}
