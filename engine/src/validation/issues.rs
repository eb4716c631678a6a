//! Collecting findings: every one is counted, the first `cap` (by line) are kept, and the
//! text of a finding is only built when it is kept.

use crate::domain::{Severity, ValidationIssue};

pub(crate) struct IssueSink {
    pub kept: Vec<ValidationIssue>,
    cap: usize,
    pub errors: u64,
    pub warnings: u64,
    /// The 0-based element index of the record being checked in a `.json` array file: its
    /// findings start with "element N: ", since a one-line array puts every one on line 1.
    pub element: Option<u64>,
}

impl IssueSink {
    pub fn new(cap: usize) -> Self {
        Self {
            kept: Vec::with_capacity(cap.min(128)),
            cap,
            errors: 0,
            warnings: 0,
            element: None,
        }
    }

    /// Counts a finding and keeps it when it is among the first `cap` by line. Findings
    /// almost always come in line order; the few that do not (a summary reported at the end)
    /// are inserted in place.
    pub fn add(&mut self, line: u64, severity: Severity, text: impl FnOnce() -> (String, String)) {
        match severity {
            Severity::Error => self.errors += 1,
            Severity::Warning => self.warnings += 1,
        }
        let last = self.kept.last().map(|i| i.line);
        let full = self.kept.len() >= self.cap;
        if full && last.is_none_or(|l| line >= l) {
            return;
        }
        let (mut error, suggestion) = text();
        if let Some(e) = self.element {
            error = format!("element {e}: {error}");
        }
        let issue = ValidationIssue {
            line,
            error,
            suggestion,
            severity,
        };
        if last.is_none_or(|l| line >= l) {
            self.kept.push(issue);
        } else {
            let at = self.kept.partition_point(|i| i.line <= line);
            self.kept.insert(at, issue);
            if self.kept.len() > self.cap {
                self.kept.pop();
            }
        }
    }
}

/// Why a whole example (and so the file) is refused rather than checked: data for another
/// kind of training. Reported once per file, with the lines, not once per line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Images, audio or video: `images`/`videos`/`audios` keys, media content parts or
    /// `<image>`-style tags. The media would be silently dropped.
    Multimodal(&'static str),
    /// Preference pairs; the `&str` names the layout recognised.
    Preference(&'static str),
    /// KTO: replies labelled desirable or not.
    Kto,
}

/// The findings of one example, on its line.
pub(crate) struct Rep<'s> {
    pub sink: &'s mut IssueSink,
    pub line: u64,
    pub errors: u32,
    /// Set when the example turned out to be data of another kind: its other errors are
    /// then counted for the example but not reported (the file-level verdict says it all).
    pub refused: Option<Refusal>,
}

impl Rep<'_> {
    #[inline]
    pub fn error(&mut self, text: impl FnOnce() -> (String, String)) {
        self.errors += 1;
        if self.refused.is_none() {
            self.sink.add(self.line, Severity::Error, text);
        }
    }

    /// Marks the example as data of another kind (the first reason wins).
    pub fn refuse(&mut self, why: Refusal) {
        self.errors += 1;
        self.refused.get_or_insert(why);
    }

    #[inline]
    pub fn warn(&mut self, text: impl FnOnce() -> (String, String)) {
        if self.refused.is_none() {
            self.sink.add(self.line, Severity::Warning, text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_by_line_and_counts_all() {
        let mut s = IssueSink::new(3);
        for line in [2, 5, 7, 9] {
            s.add(line, Severity::Error, || ("e".into(), "s".into()));
        }
        s.add(1, Severity::Warning, || ("w".into(), "s".into()));
        s.add(6, Severity::Warning, || ("w".into(), "s".into()));
        let lines: Vec<_> = s.kept.iter().map(|i| i.line).collect();
        assert_eq!(lines, [1, 2, 5]);
        assert_eq!((s.errors, s.warnings), (4, 2));
        let mut none = IssueSink::new(0);
        none.add(1, Severity::Error, || unreachable!());
        assert!(none.kept.is_empty());
    }
}
