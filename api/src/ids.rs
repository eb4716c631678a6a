//! Newtype ids, so a job id can never be passed where a dataset id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh random id.
            pub fn new() -> Self {
                Self(Uuid::new_v4())
            }
            /// The 16 bytes used as (part of) a store key.
            pub fn bytes(&self) -> [u8; 16] {
                *self.0.as_bytes()
            }
            /// Rebuilds an id from store-key bytes.
            pub fn from_bytes(b: [u8; 16]) -> Self {
                Self(Uuid::from_bytes(b))
            }
            /// The first 8 hex digits: enough to tell ids apart on screen.
            pub fn short(&self) -> String {
                self.0.simple().to_string()[..8].to_string()
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// The owner of every record: the active profile's user.
    UserId
);
id_type!(
    /// A dataset.
    DatasetId
);
id_type!(
    /// A training job; also its idempotent submission id on every backend.
    JobId
);
id_type!(
    /// A model artifact (a stored LoRA adapter).
    ArtifactId
);
id_type!(
    /// A cost record.
    CostRecordId
);
id_type!(
    /// A notification.
    NotificationId
);
id_type!(
    /// A checkpoint.
    CheckpointId
);
id_type!(
    /// A hyperparameter sweep.
    SweepId
);
