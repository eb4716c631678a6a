//! Composite key encoding: fixed-width big-endian parts, so byte order is sort order.

use crate::domain::Timestamp;

/// Milliseconds since the epoch, sign bit flipped so negatives sort first.
pub fn ts(t: &Timestamp) -> [u8; 8] {
    ((t.timestamp_millis() as u64) ^ (1 << 63)).to_be_bytes()
}

/// Concatenates key parts.
pub fn join(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

/// The smallest key greater than every key starting with `prefix` (None when there is none).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The trailing 16 bytes of an index key: the record's id.
pub fn trailing_id(key: &[u8]) -> [u8; 16] {
    let mut id = [0u8; 16];
    id.copy_from_slice(&key[key.len() - 16..]);
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn timestamps_sort_as_bytes() {
        let a = Utc.timestamp_millis_opt(-5).unwrap();
        let b = Utc.timestamp_millis_opt(3).unwrap();
        let c = Utc.timestamp_millis_opt(1_700_000_000_000).unwrap();
        assert!(ts(&a) < ts(&b));
        assert!(ts(&b) < ts(&c));
    }

    #[test]
    fn prefix_end_bounds_the_prefix() {
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
    }
}
