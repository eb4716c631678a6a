//! Text that came from outside (files, datasets, trainer logs, servers, file names) may carry
//! terminal control sequences: a dataset line with `ESC ] 52 ;` could write the clipboard, a log
//! line with `ESC [ 2 J` could wipe the screen. Everything such is cleaned on its way into a
//! UI's state or onto a terminal (the dashboard, CLI output, job logs), so drawing code can
//! trust every string it holds.

use std::borrow::Cow;

const ESC: char = '\u{1b}';

/// True when `c` must never reach the terminal: C0 controls (except the newline, kept for
/// multi-line text, and the tab, expanded), DEL, C1 controls, and the bidi overrides that can
/// make text read differently from what it is.
fn is_forbidden(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}'
    )
}

fn is_clean(s: &str) -> bool {
    // Fast path: printable ASCII and newlines only.
    s.bytes().all(|b| (0x20..0x7f).contains(&b) || b == b'\n')
        || !s.chars().any(|c| c == '\t' || c == '\r' || is_forbidden(c))
}

/// Removes escape sequences (CSI, OSC, DCS, SOS, PM, APC and two-byte escapes) and control
/// characters; keeps newlines, turns tabs into four spaces and drops carriage returns.
pub fn clean(s: &str) -> Cow<'_, str> {
    if is_clean(s) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ESC => match chars.peek().copied() {
                // CSI: parameters and intermediates, then one final byte in @..~.
                Some('[') => {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                // OSC, DCS, SOS, PM, APC: a string ended by BEL or ST (ESC \).
                Some(']' | 'P' | 'X' | '^' | '_') => {
                    chars.next();
                    skip_string(&mut chars);
                }
                // Two-byte (or charset-designation) escapes.
                Some(_) => {
                    let c = chars.next();
                    if matches!(c, Some('(' | ')' | '*' | '+' | '#' | '%')) {
                        chars.next();
                    }
                }
                None => {}
            },
            // 8-bit CSI and string introducers.
            '\u{9b}' => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            '\u{90}' | '\u{98}' | '\u{9d}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            '\t' => out.push_str("    "),
            '\r' => {}
            c if is_forbidden(c) => {}
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => break,
            ESC => {
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                break;
            }
            _ => {}
        }
    }
}

/// [`clean`], and newlines become spaces: for table cells and titles.
pub fn one_line(s: &str) -> Cow<'_, str> {
    let c = clean(s);
    if c.contains('\n') {
        Cow::Owned(c.replace('\n', " "))
    } else {
        c
    }
}

/// Cleans a string in place; returns whether it changed.
pub fn clean_in_place(s: &mut String) -> bool {
    if let Cow::Owned(o) = clean(s) {
        *s = o;
        true
    } else {
        false
    }
}

/// [`one_line`] as an owned string, trimmed: for log lines and messages stored or sent on.
pub fn clean_line(s: &str) -> String {
    one_line(s).trim_end().to_string()
}

/// Cleans an optional string in place.
pub fn clean_opt(s: &mut Option<String>) -> bool {
    s.as_mut().is_some_and(clean_in_place)
}

/// A token's text (from a tokenizer, so from the data) with nothing in it that could act on a
/// terminal: a tab shows as `→`, any other control character (escape included) and the bidi
/// controls as `·`; newlines are kept for the caller's layout (both the CLI and the dashboard
/// show them as `↵` and break the line).
pub fn visible_token(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' => '\n',
            '\t' => '→',
            c if c.is_control()
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}') =>
            {
                '·'
            }
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(clean("hello, wörld\nok"), Cow::Borrowed(_)));
    }

    #[test]
    fn strips_csi_osc_and_controls() {
        assert_eq!(clean("a\x1b[2Jb\x1b[31mc\x1b[0m"), "abc");
        assert_eq!(clean("x\x1b]52;c;SGVsbG8=\x07y"), "xy");
        assert_eq!(
            clean("x\x1b]8;;http://e\x1b\\link\x1b]8;;\x1b\\y"),
            "xlinky"
        );
        assert_eq!(clean("a\x00b\x08c\x7fd\u{9b}31me"), "abcde");
        assert_eq!(clean("t\tab\r\n"), "t    ab\n");
        assert_eq!(clean("bidi\u{202e}evil"), "bidievil");
        assert_eq!(clean("\x1b(Bok\x1bc"), "ok");
        assert_eq!(clean("dangling\x1b"), "dangling");
        assert_eq!(one_line("two\nlines"), "two lines");
        assert_eq!(clean_line("\x1b[31mred\x1b[0m line\r\n"), "red line");
    }
}
