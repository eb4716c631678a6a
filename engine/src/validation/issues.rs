//! Collecting findings: every one is counted, the first `cap` (by line) are kept, and the
//! text of a finding is only built when it is kept.
//!
//! Per-example warnings are grouped: the same warning (the same kind, about the same key or
//! role, see [`group_key`]) on many examples is one finding at its first line, with the
//! count and the first lines, built once; every occurrence still counts as a warning.

use crate::domain::{Severity, ValidationIssue};
use std::collections::HashMap;

/// How many lines a grouped warning names.
const GROUP_LINES: usize = 5;
/// How many distinct grouped warnings are collected; more are reported one by one.
const MAX_GROUPS: usize = 256;

/// The identity of a per-example warning for grouping: its kind and what it is about (a key
/// name, a role), never its place.
pub(crate) fn group_key(kind: &str, about: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(kind.as_bytes())
        ^ xxhash_rust::xxh3::xxh3_64(about.as_bytes()).rotate_left(17)
}

struct Group {
    line: u64,
    count: u64,
    /// Lines (or array elements) where it was found, the first [`GROUP_LINES`].
    places: Vec<u64>,
    array: bool,
    text: (String, String),
}

pub(crate) struct IssueSink {
    pub kept: Vec<ValidationIssue>,
    cap: usize,
    pub errors: u64,
    pub warnings: u64,
    /// The 0-based element index of the record being checked in a `.json` array file: its
    /// findings start with "element N: ", since a one-line array puts every one on line 1.
    pub element: Option<u64>,
    groups: Vec<Group>,
    group_of: HashMap<u64, usize>,
}

impl IssueSink {
    pub fn new(cap: usize) -> Self {
        Self {
            kept: Vec::with_capacity(cap.min(128)),
            cap,
            errors: 0,
            warnings: 0,
            element: None,
            groups: Vec::new(),
            group_of: HashMap::new(),
        }
    }

    /// Counts a warning that may repeat on many examples: the first one of its `key` is kept
    /// (as one finding, at the end, by [`IssueSink::flush_groups`]), later ones add to its count.
    pub fn add_grouped(&mut self, line: u64, key: u64, text: impl FnOnce() -> (String, String)) {
        let place = self.element.unwrap_or(line);
        if let Some(&i) = self.group_of.get(&key) {
            self.warnings += 1;
            let g = &mut self.groups[i];
            g.count += 1;
            if g.places.len() < GROUP_LINES && g.places.last() != Some(&place) {
                g.places.push(place);
            }
            return;
        }
        if self.groups.len() >= MAX_GROUPS {
            return self.add(line, Severity::Warning, text);
        }
        self.warnings += 1;
        let (mut error, suggestion) = text();
        if let Some(e) = self.element {
            error = format!("element {e}: {error}");
        }
        self.group_of.insert(key, self.groups.len());
        self.groups.push(Group {
            line,
            count: 1,
            places: vec![place],
            array: self.element.is_some(),
            text: (error, suggestion),
        });
    }

    /// Reports the grouped warnings, each once, with its count and first lines.
    pub fn flush_groups(&mut self) {
        self.group_of.clear();
        for g in std::mem::take(&mut self.groups) {
            let (mut error, suggestion) = g.text;
            if g.count > 1 {
                let what = if g.array { "elements" } else { "lines" };
                let mut places = g
                    .places
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                if g.places.len() == GROUP_LINES {
                    places.push_str(", …");
                }
                error.push_str(&format!(
                    " (the same {} times in the file, on {what} {places})",
                    g.count
                ));
            }
            self.keep(
                g.line,
                Severity::Warning,
                move || (error, suggestion),
                false,
            );
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
        self.keep(line, severity, text, true);
    }

    /// Keeps a finding when it is among the first `cap` by line (`prefix`: add the element).
    fn keep(
        &mut self,
        line: u64,
        severity: Severity,
        text: impl FnOnce() -> (String, String),
        prefix: bool,
    ) {
        let last = self.kept.last().map(|i| i.line);
        let full = self.kept.len() >= self.cap;
        if full && last.is_none_or(|l| line >= l) {
            return;
        }
        let (mut error, suggestion) = text();
        if prefix && let Some(e) = self.element {
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
/// kind of training, or a layout BrightRun does not read. Reported once per file, with the
/// lines, not once per line. (Preference pairs and KTO data are formats BrightRun trains,
/// checked like the others.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Images, audio or video: `images`/`videos`/`audios` keys, media content parts or
    /// `<image>`-style tags. The media would be silently dropped.
    Multimodal(&'static str),
    /// Stepwise supervision (TRL's `prompt`, `completions`, `labels`): process-reward data.
    ProcessReward,
    /// Content parts BrightRun does not read (LLaMA-Factory's `reasoning` and `tool_call`);
    /// the `&str` names the first found.
    Parts(&'static str),
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

    /// A warning; the same `key` ([`group_key`]) on many examples is reported once, counted.
    #[inline]
    pub fn warn(&mut self, key: u64, text: impl FnOnce() -> (String, String)) {
        if self.refused.is_none() {
            self.sink.add_grouped(self.line, key, text);
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
        none.flush_groups();
        none.add(1, Severity::Error, || unreachable!());
        assert!(none.kept.is_empty());
    }

    #[test]
    fn the_same_warning_on_many_lines_is_one_finding_with_a_count() {
        let mut s = IssueSink::new(10);
        let key = group_key("unknown key", "loss_weight");
        for line in 1..=1001 {
            s.add_grouped(line, key, || {
                ("unknown key \"loss_weight\"".into(), "s".into())
            });
        }
        s.add_grouped(3, group_key("unknown key", "source"), || {
            ("other".into(), "s".into())
        });
        s.flush_groups();
        assert_eq!(s.warnings, 1002);
        assert_eq!(s.kept.len(), 2);
        assert_eq!(s.kept[0].line, 1);
        assert_eq!(
            s.kept[0].error,
            "unknown key \"loss_weight\" (the same 1001 times in the file, on lines 1, 2, 3, 4, 5, …)"
        );
        assert_eq!(s.kept[1].error, "other");
    }
}
