//! The body of `POST /api/v1/call` as the daemon decodes it (`decode_call_body`: what the
//! route runs once the content type and size are checked), on arbitrary bytes.
//!
//! Properties, beyond never panicking:
//! - a refusal is a 400 (`invalid`) whose message says the body is not valid;
//! - a body that is not JSON names no field; a JSON object that is refused names the field at
//!   fault (a non-empty path); other JSON (an array, a string) names none and says what it is;
//! - a decoded request, written back as JSON, decodes to the same request;
//! - decoding is bounded: libFuzzer's `-timeout` (scripts/fuzz.sh sets 10 s) fails a slow
//!   input, and the unit test `a_huge_wrong_request_is_refused_naming_its_field` keeps a body
//!   of 50,000 keys linear.
#![no_main]

use brightrun_api::ErrorCode;
use brightrun_engine::api::server::decode_call_body;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let json = serde_json::from_slice::<serde_json::Value>(data).ok();
    match decode_call_body(data) {
        Ok(request) => {
            let again = serde_json::to_vec(&request).expect("a request serializes");
            match decode_call_body(&again) {
                Ok(back) => assert_eq!(back, request, "{}", String::from_utf8_lossy(&again)),
                Err(e) => panic!(
                    "{} decoded, but its own JSON {} is refused: {e:?}",
                    String::from_utf8_lossy(data),
                    String::from_utf8_lossy(&again)
                ),
            }
        }
        Err(e) => {
            assert_eq!(e.code, ErrorCode::Invalid, "{e:?}");
            assert!(
                e.message.starts_with("the request body is not valid: "),
                "{e:?}"
            );
            assert!(e.reason.is_none(), "{e:?}");
            match &json {
                None => assert_eq!(e.field, None, "not JSON, yet a field: {e:?}"),
                Some(serde_json::Value::Object(_)) => {
                    let field = e.field.as_deref().unwrap_or_else(|| {
                        panic!(
                            "{} refused naming no field: {e:?}",
                            String::from_utf8_lossy(data)
                        )
                    });
                    // Not empty; it may start with `.` when the unknown key itself does
                    // (`{"op":"list_jobs",".,x":1}` names `.,x`).
                    assert!(!field.is_empty(), "{e:?}");
                }
                Some(_) => {
                    assert_eq!(e.field, None, "{e:?}");
                    assert!(e.message.contains("invalid type"), "{e:?}");
                }
            }
        }
    }
});
