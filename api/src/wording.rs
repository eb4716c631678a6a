//! Numbers in sentences, the same in the CLI, the dashboard and the engine's notifications:
//! "16,974 tokens", "1 warning", "2 warnings".

/// `n` with thousands separators: `16974` → `16,974`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `n` and the noun, plural unless `n` is 1: `counted(1, "warning")` → `1 warning`. The
/// noun's plural is the noun and an `s`, which holds for every noun BrightRun counts.
pub fn counted(n: u64, noun: &str) -> String {
    format!("{} {noun}{}", thousands(n), if n == 1 { "" } else { "s" })
}

/// Swept values as `key=value key=value`.
pub fn sets(sets: &[(String, String)]) -> String {
    sets.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_as_english() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(16_974), "16,974");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(counted(1, "warning"), "1 warning");
        assert_eq!(counted(0, "warning"), "0 warnings");
        assert_eq!(counted(1_001, "duplicate"), "1,001 duplicates");
    }
}
