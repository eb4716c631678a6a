//! The `:` command line: parsing and completion (k9s style: `:jobs running`, `:cancel ID`).

use super::Shared;
use crate::action::{Period, Tab};
use brightrun_api::domain::JobStatus;

/// A parsed command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Quit,
    /// Go to a tab; the argument filters its list (a status for jobs, a period for costs).
    Tab(Tab, Option<String>),
    Cancel(String),
    Retry(String),
    Theme(String),
    Help,
    Freeze,
    ReadAll,
    Reload,
    /// Add a dataset: a path, or the file browser.
    Add(Option<String>),
}

/// The command names, as completion offers them.
pub const COMMANDS: &[&str] = &[
    "datasets",
    "configure",
    "jobs",
    "models",
    "costs",
    "notifications",
    "add",
    "cancel",
    "retry",
    "theme",
    "freeze",
    "read-all",
    "reload",
    "help",
    "quit",
];

pub fn parse_command(line: &str) -> Result<Command, String> {
    let line = line.trim().trim_start_matches(':').trim();
    let (word, rest) = match line.split_once(char::is_whitespace) {
        Some((w, r)) => (w, r.trim()),
        None => (line, ""),
    };
    let arg = (!rest.is_empty()).then(|| rest.to_string());
    let need = |what: &str| -> Result<String, String> {
        arg.clone().ok_or_else(|| format!(":{word} needs {what}"))
    };
    let w = word.to_ascii_lowercase();
    Ok(match w.as_str() {
        "" => return Err("type a command; tab completes (e.g. :jobs running)".into()),
        "q" | "q!" | "quit" | "exit" => Command::Quit,
        "cancel" => Command::Cancel(need("a job id")?),
        "retry" => Command::Retry(need("a job id")?),
        "theme" => Command::Theme(need("a theme name")?),
        "help" | "h" | "?" => Command::Help,
        "freeze" => Command::Freeze,
        "read-all" | "readall" | "read" => Command::ReadAll,
        "reload" | "refresh" => Command::Reload,
        "add" => Command::Add(arg),
        "jobs" | "job" => Command::Tab(Tab::Jobs, arg),
        "costs" | "cost" => {
            if let Some(a) = &arg
                && Period::from_name(a).is_none()
            {
                return Err(format!("unknown period `{a}` (week, month or year)"));
            }
            Command::Tab(Tab::Costs, arg)
        }
        other => match Tab::from_name(other) {
            Some(t) => Command::Tab(t, arg),
            None => {
                return Err(format!(
                    "unknown command `{other}`; try {}",
                    COMMANDS
                        .iter()
                        .map(|c| format!(":{c}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                ));
            }
        },
    })
}

/// Candidates for the word being typed (the last one).
pub fn complete(text: &str, app: &Shared) -> Vec<String> {
    let text = text.trim_start_matches(':');
    let ends_with_space = text.ends_with(char::is_whitespace);
    let words: Vec<&str> = text.split_whitespace().collect();
    let (before, current): (Vec<&str>, &str) = if ends_with_space || words.is_empty() {
        (words.clone(), "")
    } else {
        (words[..words.len() - 1].to_vec(), words[words.len() - 1])
    };
    let cur = current.to_ascii_lowercase();
    let starts = |c: &String| c.to_ascii_lowercase().starts_with(&cur);
    match before.as_slice() {
        [] => COMMANDS
            .iter()
            .map(|c| c.to_string())
            .filter(starts)
            .collect(),
        [cmd] => {
            let cands: Vec<String> = match cmd.to_ascii_lowercase().as_str() {
                "jobs" | "job" => JobStatus::ALL
                    .iter()
                    .map(|s| s.as_str().to_string())
                    .collect(),
                "costs" | "cost" => Period::ALL.iter().map(|p| p.name().to_string()).collect(),
                "theme" => app.themes.clone(),
                "cancel" => job_ids(app, |s| s.is_active()),
                "retry" => job_ids(app, |s| {
                    matches!(s, JobStatus::Failed | JobStatus::Cancelled)
                }),
                _ => Vec::new(),
            };
            cands.into_iter().filter(starts).collect()
        }
        _ => Vec::new(),
    }
}

/// Short ids of the newest jobs in the given states (at most 20).
fn job_ids(app: &Shared, keep: impl Fn(JobStatus) -> bool) -> Vec<String> {
    let mut jobs: Vec<_> = app.jobs.items().iter().filter(|j| keep(j.status)).collect();
    jobs.sort_by_key(|j| std::cmp::Reverse(j.created_at));
    jobs.into_iter().take(20).map(|j| j.id.short()).collect()
}

/// Replaces the word being typed in `stem` with `candidate` (and adds a space after a
/// command name, ready for its argument).
pub fn apply_completion(stem: &str, candidate: &str) -> String {
    let stem = stem.trim_start_matches(':');
    let keep = if stem.ends_with(char::is_whitespace) || stem.is_empty() {
        stem.to_string()
    } else {
        match stem.rfind(char::is_whitespace) {
            Some(i) => stem[..=i].to_string(),
            None => String::new(),
        }
    };
    let is_command = keep.trim().is_empty();
    let takes_arg = matches!(
        candidate,
        "jobs" | "costs" | "cancel" | "retry" | "theme" | "add"
    );
    if is_command && takes_arg {
        format!("{keep}{candidate} ")
    } else {
        format!("{keep}{candidate}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(parse_command(":q").unwrap(), Command::Quit);
        assert_eq!(
            parse_command("jobs running").unwrap(),
            Command::Tab(Tab::Jobs, Some("running".into()))
        );
        assert_eq!(
            parse_command("datasets").unwrap(),
            Command::Tab(Tab::Datasets, None)
        );
        assert_eq!(
            parse_command("notif").unwrap(),
            Command::Tab(Tab::Notifications, None)
        );
        assert_eq!(
            parse_command("cancel 1a2b").unwrap(),
            Command::Cancel("1a2b".into())
        );
        assert!(parse_command("cancel").unwrap_err().contains("job id"));
        assert_eq!(
            parse_command("theme light").unwrap(),
            Command::Theme("light".into())
        );
        assert!(parse_command("costs decade").is_err());
        assert!(
            parse_command("frobnicate")
                .unwrap_err()
                .contains("unknown command")
        );
    }

    #[test]
    fn completion_replaces_the_last_word() {
        assert_eq!(apply_completion("jo", "jobs"), "jobs ");
        assert_eq!(apply_completion("jobs ru", "running"), "jobs running");
        assert_eq!(apply_completion("theme ", "dark"), "theme dark");
        assert_eq!(apply_completion("", "datasets"), "datasets");
    }
}
