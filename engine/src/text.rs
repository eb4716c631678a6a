//! Text that came from files, trainers or servers is cleaned before anyone shows it: escape
//! sequences could move a terminal's cursor, change its title or hide text.

/// Removes ANSI escape sequences (CSI, OSC, and lone ESC pairs) and control characters; tabs
/// become spaces. Newlines are removed too: the result is one line.
pub fn clean_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.peek() {
                Some('[') => {
                    chars.next();
                    // CSI: parameters and intermediates, then one final byte in @..~
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    chars.next();
                    // OSC: up to BEL or ESC \
                    while let Some(c) = chars.next() {
                        if c == '\x07' {
                            break;
                        }
                        if c == '\x1b' {
                            if chars.peek() == Some(&'\\') {
                                chars.next();
                            }
                            break;
                        }
                    }
                }
                Some(_) => {
                    chars.next();
                }
                None => {}
            },
            '\t' => out.push(' '),
            c if c.is_control() => {}
            // C1 controls arrive as chars U+0080..U+009F and are caught above; bidi overrides
            // could reorder what is shown.
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_controls_are_removed() {
        assert_eq!(clean_line("\x1b[31mred\x1b[0m text"), "red text");
        assert_eq!(clean_line("a\x1b]0;title\x07b"), "ab");
        assert_eq!(clean_line("a\x1b]8;;http://x\x1b\\b"), "ab");
        assert_eq!(clean_line("tab\there\r\n"), "tab here");
        assert_eq!(clean_line("bell\x07\u{9b}31m"), "bell31m");
        assert_eq!(clean_line("plain ünïcode"), "plain ünïcode");
    }
}
