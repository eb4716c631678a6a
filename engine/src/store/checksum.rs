//! Checksummed record values, so a damaged record is found instead of read as something else.
//!
//! From schema v5, every value of a record table ([`RECORD_TABLES`]: datasets, jobs, metrics
//! points, models, costs, notifications, checkpoints) is
//!
//! ```text
//! bincode bytes (bincode::config::standard())  ++  CRC32 of those bytes (crc32fast, 4 bytes little-endian)
//! ```
//!
//! bincode alone cannot tell a flipped byte inside a string from the string it meant, and a
//! damaged length byte fails the whole decode; the CRC catches both, so a read can name the
//! record ([`StoreError::Corrupt`]) and a list can leave it out. There is no format tag: the
//! schema version says which format a file holds, and the v4 → v5 upgrade rewrites every
//! record with its CRC.
//!
//! Other tables stay plain bincode: the change log (its entries are copies of records,
//! compacted away once consumers have them), tokens, uploads in flight, calibration and the
//! schema's own meta table.

use super::StoreError;
use super::records::*;
use super::stored::Persisted;

/// Bytes of the CRC at the end of a record value.
pub(crate) const CRC_LEN: usize = 4;

/// A record's value: the bincode bytes of its stored form followed by their CRC.
pub(crate) fn encode_record<T: Persisted>(v: &T) -> Vec<u8> {
    seal(super::encode(&v.to_stored()))
}

/// Appends the CRC of `bytes` to them.
pub(crate) fn seal(mut bytes: Vec<u8>) -> Vec<u8> {
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

/// The bincode bytes of a record value whose CRC matches, or what is wrong with it.
pub(crate) fn unseal(bytes: &[u8]) -> Result<&[u8], String> {
    if bytes.len() < CRC_LEN {
        return Err(format!(
            "its value is {} byte(s), too short to hold its checksum",
            bytes.len()
        ));
    }
    let (body, tail) = bytes.split_at(bytes.len() - CRC_LEN);
    let stored = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    let actual = crc32fast::hash(body);
    if stored != actual {
        return Err(format!(
            "checksum mismatch: stored {stored:08x}, computed {actual:08x}"
        ));
    }
    Ok(body)
}

/// Decodes a record value of `table` at `key`: the CRC must match and the bytes must decode
/// to exactly one stored `T`, or it is [`StoreError::Corrupt`].
pub(crate) fn decode_record<T: Persisted>(
    table: &str,
    key: &[u8],
    bytes: &[u8],
) -> Result<T, StoreError> {
    let corrupt = |problem: String| StoreError::Corrupt {
        table: table.to_string(),
        id: describe_key(table, key),
        problem,
    };
    let body = unseal(bytes).map_err(corrupt)?;
    match bincode::serde::decode_from_slice::<T::Stored, _>(body, super::ENCODING) {
        Ok((v, used)) if used == body.len() => Ok(T::from_stored(v)),
        Ok((_, used)) => Err(corrupt(format!(
            "{} byte(s) left over after the record",
            body.len() - used
        ))),
        Err(e) => Err(corrupt(format!("cannot decode it: {e}"))),
    }
}

/// [`decode_record`] as `R`, for checks that need no value.
pub(crate) fn check_typed<R: Persisted>(
    table: &str,
    key: &[u8],
    bytes: &[u8],
) -> Result<(), StoreError> {
    decode_record::<R>(table, key, bytes).map(drop)
}

/// A value as schema v4 wrote it (bincode, no checksum) decoded as its stored type of then,
/// `S`, and encoded again with its checksum; the error says why it does not decode.
pub(crate) fn reseal_legacy<S: serde::Serialize + serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Result<Vec<u8>, String> {
    bincode::serde::decode_from_slice::<S, _>(bytes, super::ENCODING)
        .map(|(v, _)| seal(super::encode(&v)))
        .map_err(|e| format!("cannot decode it: {e}"))
}

/// How a person names the record at `key`: a record id (a UUID), a metrics point as its job
/// and step, anything else in hex.
pub fn describe_key(table: &str, key: &[u8]) -> String {
    if let Ok(id) = <[u8; 16]>::try_from(key) {
        return uuid::Uuid::from_bytes(id).to_string();
    }
    if table == METRICS_NAME && key.len() == 24 {
        let mut job = [0u8; 16];
        job.copy_from_slice(&key[..16]);
        let mut step = [0u8; 8];
        step.copy_from_slice(&key[16..]);
        return format!(
            "job {} step {}",
            uuid::Uuid::from_bytes(job),
            u64::from_be_bytes(step)
        );
    }
    hex::encode(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_unseals_and_any_flipped_bit_is_caught() {
        let sealed = seal(b"hello record".to_vec());
        assert_eq!(unseal(&sealed).unwrap(), b"hello record");
        for i in 0..sealed.len() {
            for bit in 0..8 {
                let mut bad = sealed.clone();
                bad[i] ^= 1 << bit;
                assert!(unseal(&bad).is_err(), "byte {i} bit {bit}");
            }
        }
        assert!(unseal(&sealed[..3]).unwrap_err().contains("too short"));
    }

    #[test]
    fn keys_are_named_as_ids_or_job_and_step() {
        let id = uuid::Uuid::new_v4();
        assert_eq!(describe_key("datasets", id.as_bytes()), id.to_string());
        let mut k = id.as_bytes().to_vec();
        k.extend_from_slice(&7u64.to_be_bytes());
        assert_eq!(describe_key(METRICS_NAME, &k), format!("job {id} step 7"));
        assert_eq!(describe_key("x", &[1, 2]), "0102");
    }
}
