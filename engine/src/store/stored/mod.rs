//! The stored record types: what the redb tables hold, versioned apart from the domain types.
//!
//! bincode is positional: a field added to a domain type, or a variant inserted in an enum,
//! would change the bytes a record is stored as, and records written by the last release
//! would no longer decode. So the store never encodes a domain type. Each table holds one
//! version of a stored type (`v1::DatasetV1`, …), converted to and from its domain type field
//! by field ([`Convert`]; the conversions name every field, so a domain field without a
//! stored home does not compile), and the golden tests below pin every stored type's bytes.
//!
//! Changing a stored layout:
//! 1. add a module `v2` with the new type (`DatasetV2`), its [`Convert`]s with the domain
//!    type, and `Convert<DatasetV2> for DatasetV1` (the upgrade of one record);
//! 2. point the domain type's [`Persisted::Stored`] at it;
//! 3. add a schema version in `store::schema` whose step rewrites the table with
//!    `schema::restore::<DatasetV1, DatasetV2>`;
//! 4. bless the new golden file (`BRIGHTRUN_BLESS_GOLDEN=1`), write the new schema's upgrade
//!    fixture (`store::fixture`), and leave `v1` and its golden file as they are.

mod convert;
pub mod v1;
pub mod v2;
pub mod v3;
pub mod v4;
pub mod v5;

pub use convert::Convert;

use crate::domain::*;
use crate::storage::journal::PendingUpload;
use crate::store::TokenRecord;
use crate::training::Calibration;
use serde::{Serialize, de::DeserializeOwned};

/// A type the store keeps, and the stored type that holds it in the current schema.
pub trait Persisted: Sized {
    type Stored: Serialize + DeserializeOwned + Convert<Self>;
    /// Its stored form (a copy: the store encodes it at once).
    fn to_stored(&self) -> Self::Stored;
    fn from_stored(s: Self::Stored) -> Self {
        s.convert()
    }
}

macro_rules! persisted {
    ($($domain:ty => $stored:ty),* $(,)?) => {
        $(impl Persisted for $domain {
            type Stored = $stored;
            fn to_stored(&self) -> $stored {
                self.clone().convert()
            }
        })*
    };
}

persisted!(
    Dataset => v5::DatasetV5,
    TrainingJob => v5::TrainingJobV5,
    MetricsPoint => v5::MetricsPointV5,
    ModelArtifact => v4::ModelArtifactV4,
    CostRecord => v1::CostRecordV1,
    Notification => v1::NotificationV1,
    Checkpoint => v3::CheckpointV3,
    TokenRecord => v2::TokenRecordV2,
    PendingUpload => v1::PendingUploadV1,
    Calibration => v1::CalibrationV1,
);

/// The change log's entry type in the current schema.
pub type Change = v3::ChangeV3;

/// The quarantine table's value type in the current schema.
pub type Quarantined = v1::QuarantinedV1;

#[cfg(test)]
mod golden;
