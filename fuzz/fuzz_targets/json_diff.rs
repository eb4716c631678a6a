//! The validator's JSON parser against serde_json on arbitrary bytes: both accept or both
//! reject, and accepted documents read the same (numbers as f64). A number too large for an
//! f64 is the one intended difference (infinity to the validator, as to Python).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            x == y || (x - y).abs() <= f64::EPSILON * 4.0 * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fuzz_target!(|data: &[u8]| {
    let theirs = serde_json::from_slice::<Value>(data);
    if let Err(e) = &theirs {
        if e.to_string().starts_with("number out of range") {
            return;
        }
    }
    let ours = brightrun_engine::validation::parse_json_value(data);
    match (ours, theirs) {
        (Ok(a), Ok(b)) => assert!(same(&a, &b), "{a} vs {b}"),
        (Err(_), Err(_)) => {}
        (a, b) => panic!("validator {:?}, serde_json {:?}", a.is_ok(), b.is_ok()),
    }
});
