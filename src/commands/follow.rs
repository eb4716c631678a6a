//! A job's log as `jobs watch` prints it: the lines logged before the watch began (so a
//! watch started a few seconds after `jobs create` misses nothing), then the live ones, and
//! after a reconnect the lines logged while the engine was away, each line once.

use std::collections::VecDeque;

/// How many of the lines printed last are remembered to place a fetched log after them.
const REMEMBERED: usize = 64;

#[derive(Debug, Default)]
pub struct LogFollower {
    /// The lines printed last, oldest first.
    printed: VecDeque<String>,
    /// Lines of the last fetched log that the live stream may deliver again (it was
    /// subscribed before the fetch): skipped when they come, in order.
    echoes: VecDeque<String>,
}

impl LogFollower {
    /// The lines of `log` (the job's log, oldest first, as `job_logs` answers) that are not
    /// printed yet: those after where the last printed lines appear in it, or all of it when
    /// they do not appear (the first fetch, or a gap longer than the log fetched).
    pub fn catch_up(&mut self, log: Vec<String>) -> Vec<String> {
        let start = self.resume_at(&log);
        self.echoes = log[start..].iter().cloned().collect();
        let new = log[start..].to_vec();
        for line in &new {
            self.remember(line);
        }
        new
    }

    /// A line from the live stream: `Some` to print it, `None` when the catch-up printed it.
    pub fn live(&mut self, line: String) -> Option<String> {
        if let Some(i) = self.echoes.iter().position(|l| *l == line) {
            self.echoes.drain(..=i);
            return None;
        }
        self.echoes.clear();
        self.remember(&line);
        Some(line)
    }

    fn remember(&mut self, line: &str) {
        if self.printed.len() == REMEMBERED {
            self.printed.pop_front();
        }
        self.printed.push_back(line.to_string());
    }

    /// Where in `log` the unprinted lines begin: after the last place where the last printed
    /// lines (up to three, so a repeated line alone does not misplace it) appear in order.
    fn resume_at(&self, log: &[String]) -> usize {
        let n = self.printed.len().min(3);
        if n == 0 {
            return 0;
        }
        let tail: Vec<&String> = self.printed.iter().skip(self.printed.len() - n).collect();
        (n..=log.len())
            .rev()
            .find(|&end| log[end - n..end].iter().zip(&tail).all(|(a, b)| a == *b))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &[&str]) -> Vec<String> {
        s.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn the_log_before_the_watch_is_printed_then_live_lines_once() {
        let mut f = LogFollower::default();
        // Subscribed live, then fetched: "b" was logged between the two, so it comes twice.
        assert_eq!(
            f.catch_up(lines(&["[loading]", "a", "b"])),
            lines(&["[loading]", "a", "b"])
        );
        assert_eq!(f.live("b".into()), None);
        assert_eq!(f.live("c".into()), Some("c".into()));
        // A line like an earlier one is printed once the catch-up's echoes are past.
        assert_eq!(f.live("a".into()), Some("a".into()));
    }

    #[test]
    fn after_a_reconnect_only_the_lines_logged_meanwhile_are_printed() {
        let mut f = LogFollower::default();
        f.catch_up(lines(&["x", "step", "step"]));
        assert_eq!(f.live("y".into()), Some("y".into()));
        let log = lines(&["x", "step", "step", "y", "step", "z"]);
        assert_eq!(f.catch_up(log), lines(&["step", "z"]));
        // A log that no longer holds what was printed (a gap longer than it) comes whole.
        let mut g = LogFollower::default();
        g.catch_up(lines(&["p", "q"]));
        assert_eq!(g.catch_up(lines(&["r", "s"])), lines(&["r", "s"]));
    }
}
