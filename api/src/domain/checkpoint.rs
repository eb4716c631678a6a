use super::Timestamp;
use crate::ids::{CheckpointId, JobId};
use serde::{Deserialize, Serialize};

/// A resumable training state saved by the trainer: the adapter with the optimizer, the
/// scheduler, the RNG states and the data order's position, packed into one archive.
///
/// Once stored (`sha256` set), `storage_path` is the archive's key in the models bucket, so
/// any backend can continue from it; until then (or when its upload failed) it is the
/// trainer's folder, usable only on the machine that ran it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Checkpoint {
    pub id: CheckpointId,
    pub job_id: JobId,
    pub step: u64,
    pub epoch: f64,
    pub loss: Option<f64>,
    pub storage_path: String,
    /// The archive's size in bytes, once stored.
    #[serde(default)]
    pub size: Option<u64>,
    /// The archive's sha256 (hex), once stored: checked before a resume extracts it.
    #[serde(default)]
    pub sha256: Option<String>,
    /// The trainer's folder on the machine that ran it (this machine for a local run).
    #[serde(default)]
    pub folder: Option<String>,
    pub created_at: Timestamp,
}

impl Checkpoint {
    /// Whether its archive is in the object store.
    pub fn is_stored(&self) -> bool {
        self.sha256.is_some()
    }
}
