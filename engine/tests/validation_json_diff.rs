//! Differential test of the validator's own JSON parser (`validation/tape.rs`) against
//! serde_json: on random JSON documents, written compactly, pretty, or with every character
//! escaped, and on mutations of them (bytes inserted, deleted, replaced), both must accept or
//! both reject, and what both accept must read as the same value. The case count is bounded
//! for CI (`PROPTEST_CASES` raises it); `fuzz/` runs the same comparison under
//! cargo-fuzz (see engine/src/validation/README.md).
//!
//! The one intended difference: a number too large for an `f64` (`1e400`) is infinity to the
//! validator, as to Python's `json.loads`, and an error to serde_json; such inputs are skipped.

use brightrun_engine::validation::parse_json_value;
use proptest::prelude::*;
use serde_json::Value;

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e300f64..1e300).prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
        "[\"\\\\/\u{0}-\u{1f}\u{7f}\u{e9}\u{2028}\u{1F600}a-z ]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(("[a-z\"\\\\\u{e9}]{0,6}", inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// JSON with every non-ASCII and some ASCII characters written as `\uXXXX` (as Python's
/// `json.dumps` does by default), so the escape decoder is exercised.
fn escape_all(text: &str) -> String {
    let mut out = String::new();
    let mut in_str = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if in_str && c == '\\' {
            // An escape already there: copy it whole (`\uXXXX` is six characters).
            out.push(c);
            if let Some(e) = chars.next() {
                out.push(e);
                if e == 'u' {
                    out.extend(chars.by_ref().take(4));
                }
            }
            continue;
        }
        if in_str && c != '"' && (c as u32 > 0x7e || c == 'a') {
            let mut buf = [0u16; 2];
            for u in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{u:04x}"));
            }
            continue;
        }
        if c == '"' {
            in_str = !in_str;
        }
        out.push(c);
    }
    out
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= f64::EPSILON * 4.0 * a.abs().max(b.abs())
}

/// Equal, numbers as `f64` (serde_json keeps integers exact; the validator reads `f64`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => close(x.as_f64().unwrap(), y.as_f64().unwrap()),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn compare(bytes: &[u8]) -> Result<(), TestCaseError> {
    let theirs = serde_json::from_slice::<Value>(bytes);
    if let Err(e) = &theirs
        && e.to_string().starts_with("number out of range")
    {
        return Ok(());
    }
    let ours = parse_json_value(bytes);
    match (&ours, &theirs) {
        (Ok(a), Ok(b)) => prop_assert!(
            same(a, b),
            "{:?}: {a} vs {b}",
            String::from_utf8_lossy(bytes)
        ),
        (Err(_), Err(_)) => {}
        _ => prop_assert!(
            false,
            "{:?}: validator {:?}, serde_json {:?}",
            String::from_utf8_lossy(bytes),
            ours.as_ref().map(|_| "ok"),
            theirs.as_ref().map(|_| "ok").map_err(|e| e.to_string())
        ),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(400),
        ..ProptestConfig::default()
    })]

    #[test]
    fn documents_read_the_same(v in arb_json(), style in 0u8..3) {
        let text = match style {
            0 => serde_json::to_string(&v).unwrap(),
            1 => serde_json::to_string_pretty(&v).unwrap(),
            _ => escape_all(&serde_json::to_string(&v).unwrap()),
        };
        prop_assert!(parse_json_value(text.as_bytes()).is_ok(), "{text}");
        compare(text.as_bytes())?;
    }

    #[test]
    fn mutations_are_judged_the_same(
        v in arb_json(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 1..4),
        escaped in any::<bool>(),
    ) {
        let text = serde_json::to_string(&v).unwrap();
        let mut bytes = if escaped { escape_all(&text) } else { text }.into_bytes();
        const INTERESTING: &[u8] = b"\"\\{}[],:0-.eEtfnu \n\x00\x1f\x7f\xc3\xa9\xed\xa0\x80";
        for (at, kind, b) in edits {
            let b = if b % 2 == 0 { INTERESTING[b as usize % INTERESTING.len()] } else { b };
            let i = at.index(bytes.len() + 1);
            match kind {
                0 => bytes.insert(i, b),
                1 if i < bytes.len() => { bytes.remove(i); }
                _ if i < bytes.len() => bytes[i] = b,
                _ => bytes.push(b),
            }
        }
        compare(&bytes)?;
    }

    #[test]
    fn deep_nesting_and_numbers_agree(depth in 120usize..136, num in "-?(0|[1-9][0-9]{0,20})(\\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?") {
        let text = format!("{}{num}{}", "[".repeat(depth), "]".repeat(depth));
        compare(text.as_bytes())?;
        compare(num.as_bytes())?;
    }
}

#[test]
fn known_corner_cases_agree() {
    for case in [
        "\"\\ud83d\\ude00\"",
        "\"\\ud83d\"",
        "\"\\ude00\"",
        "\"\\ud83dx\"",
        "1.",
        "-",
        "01",
        "1e",
        "[1,]",
        "{\"a\":1,}",
        "\"\\x\"",
        "\"a\u{1}\"",
        " [ ] ",
        "tru",
        "nulll",
        "{\"a\" 1}",
        "\"\\u00e9\\/\"",
        "-0",
        "1E+2",
        "[[[]]]",
        "{}x",
        "\u{feff}{}",
    ] {
        let ours = parse_json_value(case.as_bytes()).is_ok();
        let theirs = serde_json::from_str::<Value>(case).is_ok();
        assert_eq!(ours, theirs, "{case:?}");
    }
    // The intended difference, pinned.
    assert!(parse_json_value(b"1e400").is_ok());
    assert!(serde_json::from_str::<Value>("1e400").is_err());
}
