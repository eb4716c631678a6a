//! Number, size, time and money formatting shared by every view.

use brightrun_api::domain::Timestamp;

/// `1,234,567`: the same in the CLI, the dashboard and the engine's notifications.
pub use brightrun_api::wording::thousands;

/// `12.3 MB` (decimal units, as file managers show them).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if v >= 100.0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Compact counts: `950`, `12.3k`, `4.5M`.
pub fn compact(n: u64) -> String {
    if n < 10_000 {
        thousands(n)
    } else if n < 1_000_000 {
        format!("{:.1}k", n as f64 / 1e3)
    } else if n < 1_000_000_000 {
        format!("{:.1}M", n as f64 / 1e6)
    } else {
        format!("{:.1}G", n as f64 / 1e9)
    }
}

/// `$12.34`, every amount in dollars and cents the same way; an amount under a cent that is
/// not zero reads `<$0.01` (never `$0.00`, which would say nothing was spent, and never a
/// fourth decimal beside amounts with two).
pub fn money(v: f64) -> String {
    if v < 0.0 {
        return format!("-{}", money(-v));
    }
    if v >= 10_000.0 {
        format!("${}", thousands(v.round() as u64))
    } else if v > 0.0 && v < 0.005 {
        "<$0.01".into()
    } else {
        format!("${v:.2}")
    }
}

/// `45s`, `12m`, `3h05m`, `2d04h`.
pub fn duration_secs(secs: i64) -> String {
    let s = secs.max(0);
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else if s < 86_400 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600)
    }
}

/// How long ago, compact: `now`, `5m`, `3h`, `2d`, `5w`, `1y`.
pub fn age(now: Timestamp, t: Timestamp) -> String {
    let s = (now - t).num_seconds();
    if s < 60 {
        "now".into()
    } else if s < 3600 {
        format!("{}m", s / 60)
    } else if s < 86_400 {
        format!("{}h", s / 3600)
    } else if s < 86_400 * 14 {
        format!("{}d", s / 86_400)
    } else if s < 86_400 * 365 {
        format!("{}w", s / (86_400 * 7))
    } else {
        format!("{}y", s / (86_400 * 365))
    }
}

/// `2026-11-25 14:03` (UTC; the dashboard says so in help).
pub fn datetime(t: Timestamp) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

pub fn date(t: Timestamp) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// Floats the way hyperparameters read: `1e-4`, `0.05`, `3`.
pub fn float(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() < 1e-3 || v.abs() >= 1e6 {
        let s = format!("{v:e}");
        // 1.5e-4 stays; 1e-4 is already short.
        s
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A metric value for labels: 4 significant digits.
pub fn metric(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v == 0.0 {
        "0".into()
    } else if v.abs() < 1e-2 || v.abs() >= 1e5 {
        format!("{v:.2e}")
    } else if v.abs() < 10.0 {
        format!("{v:.4}")
    } else if v.abs() < 1000.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// A text progress bar: `████▌     `.
pub fn bar(fraction: f64, width: usize) -> String {
    let f = fraction.clamp(0.0, 1.0);
    let eighths = (f * width as f64 * 8.0).round() as usize;
    let full = eighths / 8;
    let rem = eighths % 8;
    let mut s = "█".repeat(full.min(width));
    if full < width {
        if rem > 0 {
            s.push(['▏', '▎', '▍', '▌', '▋', '▊', '▉'][rem - 1]);
            s.push_str(&" ".repeat(width - full - 1));
        } else {
            s.push_str(&" ".repeat(width - full));
        }
    }
    s
}

/// `1 epoch`, `3 epochs`: a count with its noun, singular for one.
pub use brightrun_api::wording::counted as plural;

/// Display width of `s` in terminal columns (wide characters count two).
pub fn width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

/// Display width of one character in terminal columns (controls count zero).
pub fn char_width(c: char) -> usize {
    unicode_width::UnicodeWidthChar::width(c).unwrap_or(0)
}

/// The one way text is cut to fit: at most `width` terminal columns, and when anything is
/// cut, the last column is an ellipsis (`support chats v2` in 14 columns is
/// `support chats…`, never `support chats`, which may be another record's name). Wide
/// characters count two columns and are never split.
pub fn truncate(s: &str, width: usize) -> String {
    if self::width(s) <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::with_capacity(width + 3);
    let mut used = 0;
    for c in s.chars() {
        let w = char_width(c);
        if used + w > width - 1 {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// Word-wraps `s` to lines of at most `width` columns; lines after the first start with
/// `indent` spaces (so a wrapped item lines up under its text). A word longer than a line is
/// cut. Never returns an empty list.
pub fn wrap(s: &str, width: usize, indent: usize) -> Vec<String> {
    let width = width.max(indent + 8).max(1);
    let mut lines = Vec::new();
    let mut cur = String::new();
    let mut cur_w = 0usize;
    for word in s.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        loop {
            let room = width - if lines.is_empty() { 0 } else { indent };
            let sep = usize::from(cur_w > 0);
            if cur_w + sep + word.len() <= room {
                if sep == 1 {
                    cur.push(' ');
                }
                cur.extend(word.iter());
                cur_w += sep + word.len();
                break;
            }
            if cur_w > 0 {
                lines.push(std::mem::take(&mut cur));
                cur_w = 0;
                continue;
            }
            // A word longer than a whole line: cut it.
            let rest = word.split_off(room.min(word.len()));
            lines.push(word.iter().collect());
            word = rest;
            if word.is_empty() {
                break;
            }
        }
    }
    if cur_w > 0 || lines.is_empty() {
        lines.push(cur);
    }
    let pad = " ".repeat(indent);
    lines
        .into_iter()
        .enumerate()
        .map(|(i, l)| if i == 0 { l } else { format!("{pad}{l}") })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(12_345_678), "12.3 MB");
        assert_eq!(compact(123_456), "123.5k");
        assert_eq!(money(3.5), "$3.50");
        assert_eq!(duration_secs(3725), "1h02m");
        assert_eq!(float(1e-4), "1e-4");
        assert_eq!(float(0.05), "0.05");
        assert_eq!(float(3.0), "3");
        assert_eq!(bar(0.5, 4), "██  ");
        assert_eq!(bar(1.0, 3), "███");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abcd", 4), "abcd");
        assert_eq!(truncate("support chats v2", 14), "support chats…");
        // Wide characters count two columns and are not split.
        assert_eq!(truncate("日本語テキスト", 6), "日本…");
        assert_eq!(width(&truncate("日本語テキスト", 6)), 5);
        assert_eq!(truncate("abc", 0), "");
        assert_eq!(money(0.0), "$0.00");
        assert_eq!(money(0.0000005), "<$0.01");
        assert_eq!(money(0.0055), "$0.01");
        assert_eq!(money(0.004), "<$0.01");
        assert_eq!(money(-2.5), "-$2.50");
        assert_eq!(plural(1, "epoch"), "1 epoch");
        assert_eq!(plural(1200, "change"), "1,200 changes");
        assert_eq!(
            wrap("lower batch_size or max_seq_length", 20, 2),
            vec!["lower batch_size or", "  max_seq_length"]
        );
        assert_eq!(wrap("", 10, 0), vec![String::new()]);
        assert_eq!(wrap("abcdefghijkl", 8, 0), vec!["abcdefgh", "ijkl"]);
    }
}
