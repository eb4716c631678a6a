//! Standard Webhooks signing (<https://www.standardwebhooks.com>): the signed content is
//! `{webhook-id}.{webhook-timestamp}.{body}`, the key is the base64 after `whsec_`, and the
//! `webhook-signature` header is `v1,` and the base64 of its HMAC-SHA256.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A signing key, decoded from its `whsec_…` form. Its bytes are never shown.
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(****)")
    }
}

impl SigningKey {
    /// The key from a secret's value, `whsec_` and base64 (as the Standard Webhooks
    /// libraries and Svix write them). The error never quotes the value.
    pub fn parse(secret: &str) -> Result<Self, &'static str> {
        let b64 = secret
            .trim()
            .strip_prefix("whsec_")
            .ok_or("a Standard Webhooks key starts with `whsec_`")?;
        let key = STANDARD
            .decode(b64)
            .map_err(|_| "the part after `whsec_` is not base64")?;
        if key.len() < 16 {
            return Err("the key is shorter than 16 bytes");
        }
        Ok(Self(key))
    }

    /// The `webhook-signature` header's value.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks specification's own example (its test vector).
    #[test]
    fn the_specifications_example_signs_as_published() {
        let key = SigningKey::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = key.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_bad_key_is_refused_without_quoting_it() {
        for bad in [
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_not base64!",
            "whsec_AAAA",
        ] {
            let e = SigningKey::parse(bad).unwrap_err();
            assert!(!e.contains(bad), "{e}");
        }
        assert_eq!(
            format!(
                "{:?}",
                SigningKey::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
            ),
            "SigningKey(****)"
        );
    }
}
