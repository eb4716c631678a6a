//! Human tables and JSON documents. `--json` prints exactly one JSON document on stdout.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// A byte progress bar on stderr (hidden for `--json`, and by indicatif when stderr is not a
/// terminal).
pub fn progress_bar(label: &str, hidden: bool) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(10));
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{label} [{{bar:30}}] {{bytes}}/{{total_bytes}} {{bytes_per_sec}} {{eta}}"
        ))
        .expect("valid template")
        .progress_chars("=> "),
    );
    if hidden {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar
}

pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    println!("{}", escape_json_controls(&text));
    Ok(())
}

/// serde_json leaves DEL, the C1 controls and the bidi overrides raw inside strings; as `\u`
/// escapes the document means the same and the terminal sanitiser has nothing to remove, so
/// a script reading `--json` gets the exact names and a person reading it gets no escapes.
pub fn escape_json_controls(text: &str) -> std::borrow::Cow<'_, str> {
    let escape = |c: char| {
        matches!(c, '\u{7f}'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
            | '\u{200e}' | '\u{200f}')
    };
    if !text.chars().any(escape) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if escape(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Removes control and escape sequences from text that came from files or servers.
pub fn clean(s: &str) -> String {
    brightrun_engine::text::one_line(s).into_owned()
}

/// Shortens to `n` characters with an ellipsis.
pub fn fit(s: &str, n: usize) -> String {
    let s = clean(s);
    if s.chars().count() <= n {
        s
    } else {
        let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// Free text (advice, problems, descriptions, log lines) whole, never cut: on a terminal it is
/// wrapped at the terminal's width, continuation lines indented by `indent` columns so they
/// sit under the text and not under its label; in a pipe it stays one line as it is, because
/// the end of an advice (a `jq` recipe, a path) is often the useful part.
pub fn prose(s: &str, indent: usize) -> String {
    let s = clean(s);
    match terminal_width() {
        Some(width) => wrap(&s, width, indent),
        None => s,
    }
}

/// The width of the terminal on stdout, or `None` when stdout is not a terminal.
fn terminal_width() -> Option<usize> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    // SAFETY: TIOCGWINSZ fills the `winsize` it is given and reads nothing else.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    let from_env = || std::env::var("COLUMNS").ok()?.parse::<usize>().ok();
    let cols = if ok && size.ws_col > 0 {
        Some(size.ws_col as usize)
    } else {
        from_env()
    };
    Some(cols.unwrap_or(100).max(40))
}

/// Word-wraps `text` (already on one line, starting at column `indent`) to `width` columns;
/// every line after the first starts with `indent` spaces. A word longer than a line is
/// broken where the line ends.
pub fn wrap(text: &str, width: usize, indent: usize) -> String {
    let room = width.saturating_sub(indent).max(20);
    let mut out = String::with_capacity(text.len() + 16);
    let mut used = 0;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let mut chars: Vec<char> = word.chars().collect();
        if used > 0 && used + 1 + chars.len() > room {
            out.push('\n');
            out.extend(std::iter::repeat_n(' ', indent));
            used = 0;
        }
        if used > 0 {
            out.push(' ');
            used += 1;
        }
        while used + chars.len() > room {
            let head: String = chars.drain(..room - used).collect();
            out.push_str(&head);
            out.push('\n');
            out.extend(std::iter::repeat_n(' ', indent));
            used = 0;
        }
        used += chars.len();
        out.extend(chars);
    }
    out
}

pub fn bytes(n: u64) -> String {
    // Decimal units, spelled as the dashboard spells them (kB, not KB).
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Dollars: cents, or four decimals for amounts under a cent (short CPU test runs), or
/// "<$0.0001" for less (a few kilobytes stored for a day), never a non-zero "$0.0000".
pub fn money(v: f64) -> String {
    if v > 0.0 && v < 0.0001 {
        "<$0.0001".to_string()
    } else if v > 0.0 && v < 0.01 {
        format!("${v:.4}")
    } else {
        format!("${v:.2}")
    }
}

pub use brightrun_engine::wording::{counted, thousands as count};

/// Prints rows as aligned columns under a header.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = widths[i] - c.chars().count();
            s.push_str(c);
            if i + 1 < cells.len() {
                s.push_str(&" ".repeat(pad + 2));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_numbers_and_text() {
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(count(12), "12");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1_500_000), "1.5 MB");
        assert_eq!(fit("abcdef", 4), "abc…");
        // Wrapping keeps every word and hangs continuation lines under the text.
        let advice = "split the file with jq -c '.[]' data.json > data.jsonl and add that";
        let wrapped = wrap(advice, 30, 4);
        assert_eq!(
            wrapped,
            "split the file with jq -c\n    '.[]' data.json >\n    data.jsonl and add that"
        );
        assert_eq!(
            wrapped.split_whitespace().collect::<Vec<_>>().join(" "),
            advice
        );
        assert_eq!(
            wrap(&"x".repeat(45), 30, 4),
            format!("{}\n    {}", "x".repeat(26), "x".repeat(19))
        );
        assert_eq!(clean("a\x1b[31mb\nc"), "ab c");
        let doc =
            serde_json::to_string(&serde_json::json!({"name": "a\u{9b}b\u{202e}c\u{1b}"})).unwrap();
        let safe = escape_json_controls(&doc);
        assert_eq!(safe, r#"{"name":"a\u009bb\u202ec\u001b"}"#);
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["name"], "a\u{9b}b\u{202e}c\u{1b}");
    }
}
