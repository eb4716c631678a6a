//! Which table each record lives in and which index keys it has. The store keeps indexes in
//! step with records inside the same write transaction.

use super::keys::{join, ts};
use super::stored::Persisted;
use crate::domain::*;
use crate::events::EngineEvent;
use redb::TableDefinition;
use std::sync::Arc;

pub type Bytes = TableDefinition<'static, &'static [u8], &'static [u8]>;

pub const META: TableDefinition<'static, &'static str, u64> = TableDefinition::new("meta");

pub const DATASETS: Bytes = TableDefinition::new("datasets");
pub const JOBS: Bytes = TableDefinition::new("training_jobs");
/// The metrics table's name, for naming its keys (job and step) in messages.
pub const METRICS_NAME: &str = "metrics_points";
pub const METRICS: Bytes = TableDefinition::new(METRICS_NAME);
pub const ARTIFACTS: Bytes = TableDefinition::new("model_artifacts");
pub const COSTS: Bytes = TableDefinition::new("cost_records");
pub const NOTIFICATIONS: Bytes = TableDefinition::new("notifications");
pub const CHECKPOINTS: Bytes = TableDefinition::new("checkpoints");

pub const DATASETS_BY_USER: Bytes = TableDefinition::new("idx_datasets_user_created");
pub const DATASETS_BY_USER_STATUS: Bytes = TableDefinition::new("idx_datasets_user_status");
pub const JOBS_BY_USER: Bytes = TableDefinition::new("idx_jobs_user_created");
pub const JOBS_BY_USER_STATUS: Bytes = TableDefinition::new("idx_jobs_user_status");
pub const JOBS_BY_STATUS: Bytes = TableDefinition::new("idx_jobs_status");
pub const JOBS_BY_DATASET: Bytes = TableDefinition::new("idx_jobs_dataset");
pub const ARTIFACTS_BY_USER: Bytes = TableDefinition::new("idx_artifacts_user_created");
pub const ARTIFACTS_BY_JOB: Bytes = TableDefinition::new("idx_artifacts_job");
pub const COSTS_BY_USER: Bytes = TableDefinition::new("idx_costs_user_created");
pub const NOTIFICATIONS_BY_USER: Bytes = TableDefinition::new("idx_notifications_user_created");
pub const CHECKPOINTS_BY_JOB: Bytes = TableDefinition::new("idx_checkpoints_job_step");

/// Record counts kept in step with the records (so a list's `total` costs one lookup, not a
/// scan of its index): key → how many records have it among their [`Record::counters`].
pub const COUNTS: TableDefinition<'static, &'static [u8], u64> =
    TableDefinition::new("record_counts");

/// Counter keys: a kind byte, the user, and a status byte for the per-status counts.
pub const COUNT_JOBS: u8 = 1;
pub const COUNT_DATASETS: u8 = 2;

/// The counter key of a user's records of one kind (all of them, or in one status).
pub fn count_key(kind: u8, user: &crate::ids::UserId, status: Option<u8>) -> Vec<u8> {
    match status {
        Some(s) => join(&[&[kind], &user.bytes(), &[s]]),
        None => join(&[&[kind], &user.bytes()]),
    }
}

/// Every index, so a migration can rebuild them all.
pub const ALL_INDEXES: [Bytes; 11] = [
    DATASETS_BY_USER,
    DATASETS_BY_USER_STATUS,
    JOBS_BY_USER,
    JOBS_BY_USER_STATUS,
    JOBS_BY_STATUS,
    JOBS_BY_DATASET,
    ARTIFACTS_BY_USER,
    ARTIFACTS_BY_JOB,
    COSTS_BY_USER,
    NOTIFICATIONS_BY_USER,
    CHECKPOINTS_BY_JOB,
];

/// Decodes one value of a table at a key fully; see [`RecordTable::check`].
pub type CheckFn = fn(&str, &[u8], &[u8]) -> Result<(), super::StoreError>;

/// A table of checksummed records (see [`super::checksum`]) and what the store needs to
/// check, upgrade and quarantine its values without knowing their type at the call site.
pub struct RecordTable {
    pub def: Bytes,
    /// The indexes whose keys end with this table's record ids: a quarantined record's
    /// entries are removed from them.
    pub indexes: &'static [Bytes],
    /// Decodes a value fully (checksum and type); the error is [`super::StoreError::Corrupt`].
    pub check: CheckFn,
    /// Decodes a value as schema v4 wrote it (plain bincode) and encodes it with its checksum.
    pub reseal_legacy: fn(&[u8]) -> Result<Vec<u8>, String>,
}

/// A record table whose stored type has kept schema v4's layout.
const fn record_table<R: Persisted>(def: Bytes, indexes: &'static [Bytes]) -> RecordTable {
    record_table_since::<R, R::Stored>(def, indexes)
}

/// A record table whose values schema v4 wrote as `Legacy` (a later schema's upgrade step
/// turns them into today's stored type after they are resealed).
const fn record_table_since<
    R: Persisted,
    Legacy: serde::Serialize + serde::de::DeserializeOwned,
>(
    def: Bytes,
    indexes: &'static [Bytes],
) -> RecordTable {
    RecordTable {
        def,
        indexes,
        check: super::checksum::check_typed::<R>,
        reseal_legacy: super::checksum::reseal_legacy::<Legacy>,
    }
}

/// Every table of checksummed records.
pub const RECORD_TABLES: [RecordTable; 7] = [
    record_table::<Dataset>(DATASETS, &[DATASETS_BY_USER, DATASETS_BY_USER_STATUS]),
    // Jobs gained their task in schema v8 (`stored::v3`).
    record_table_since::<TrainingJob, super::stored::v1::TrainingJobV1>(
        JOBS,
        &[
            JOBS_BY_USER,
            JOBS_BY_USER_STATUS,
            JOBS_BY_STATUS,
            JOBS_BY_DATASET,
        ],
    ),
    record_table::<MetricsPoint>(METRICS, &[]),
    record_table::<ModelArtifact>(ARTIFACTS, &[ARTIFACTS_BY_USER, ARTIFACTS_BY_JOB]),
    record_table::<CostRecord>(COSTS, &[COSTS_BY_USER]),
    record_table::<Notification>(NOTIFICATIONS, &[NOTIFICATIONS_BY_USER]),
    record_table::<Checkpoint>(CHECKPOINTS, &[CHECKPOINTS_BY_JOB]),
];

/// Corrupt records moved out of their tables: (table name, record key) → the raw value, when
/// and why (a bincode [`super::quarantine::Quarantined`]). Nothing reads them back into a table:
/// they are kept so a person (or a later tool) can look at the bytes.
pub const QUARANTINE: TableDefinition<'static, (&'static str, &'static [u8]), &'static [u8]> =
    TableDefinition::new("quarantined_records");

/// A record the store can keep: its table, its primary key, its index keys, its event.
/// Its bytes are those of its [`Persisted::Stored`] type, never its own.
pub trait Record: Persisted + Clone + Send + Sync + 'static {
    const TABLE: Bytes;
    fn key(&self) -> Vec<u8>;
    fn index_keys(&self) -> Vec<(Bytes, Vec<u8>)>;
    /// The counters this record adds one to (in [`COUNTS`]); none by default.
    fn counters(&self) -> Vec<Vec<u8>> {
        Vec::new()
    }
    fn into_event(self) -> EngineEvent;
}

impl Record for Dataset {
    const TABLE: Bytes = DATASETS;
    fn key(&self) -> Vec<u8> {
        self.id.bytes().to_vec()
    }
    fn index_keys(&self) -> Vec<(Bytes, Vec<u8>)> {
        let (u, t, id) = (self.user_id.bytes(), ts(&self.created_at), self.id.bytes());
        vec![
            (DATASETS_BY_USER, join(&[&u, &t, &id])),
            (
                DATASETS_BY_USER_STATUS,
                join(&[&u, &[self.status as u8], &t, &id]),
            ),
        ]
    }
    /// Live datasets only: lists leave soft-deleted ones out, and so do their totals.
    fn counters(&self) -> Vec<Vec<u8>> {
        if self.deleted_at.is_some() {
            return Vec::new();
        }
        vec![
            count_key(COUNT_DATASETS, &self.user_id, None),
            count_key(COUNT_DATASETS, &self.user_id, Some(self.status as u8)),
        ]
    }
    fn into_event(self) -> EngineEvent {
        EngineEvent::Dataset(Arc::new(self))
    }
}

impl Record for TrainingJob {
    const TABLE: Bytes = JOBS;
    fn key(&self) -> Vec<u8> {
        self.id.bytes().to_vec()
    }
    fn index_keys(&self) -> Vec<(Bytes, Vec<u8>)> {
        let (u, t, id) = (self.user_id.bytes(), ts(&self.created_at), self.id.bytes());
        let st = [self.status as u8];
        vec![
            (JOBS_BY_USER, join(&[&u, &t, &id])),
            (JOBS_BY_USER_STATUS, join(&[&u, &st, &t, &id])),
            (JOBS_BY_STATUS, join(&[&st, &ts(&self.queued_at), &id])),
            (JOBS_BY_DATASET, join(&[&self.dataset_id.bytes(), &id])),
        ]
    }
    fn counters(&self) -> Vec<Vec<u8>> {
        vec![
            count_key(COUNT_JOBS, &self.user_id, None),
            count_key(COUNT_JOBS, &self.user_id, Some(self.status as u8)),
        ]
    }
    fn into_event(self) -> EngineEvent {
        EngineEvent::Job(Arc::new(self))
    }
}

impl Record for ModelArtifact {
    const TABLE: Bytes = ARTIFACTS;
    fn key(&self) -> Vec<u8> {
        self.id.bytes().to_vec()
    }
    fn index_keys(&self) -> Vec<(Bytes, Vec<u8>)> {
        let id = self.id.bytes();
        vec![
            (
                ARTIFACTS_BY_USER,
                join(&[&self.user_id.bytes(), &ts(&self.created_at), &id]),
            ),
            (ARTIFACTS_BY_JOB, join(&[&self.job_id.bytes(), &id])),
        ]
    }
    fn into_event(self) -> EngineEvent {
        EngineEvent::Artifact(Arc::new(self))
    }
}

impl Record for CostRecord {
    const TABLE: Bytes = COSTS;
    fn key(&self) -> Vec<u8> {
        self.id.bytes().to_vec()
    }
    fn index_keys(&self) -> Vec<(Bytes, Vec<u8>)> {
        vec![(
            COSTS_BY_USER,
            join(&[
                &self.user_id.bytes(),
                &ts(&self.created_at),
                &self.id.bytes(),
            ]),
        )]
    }
    fn into_event(self) -> EngineEvent {
        EngineEvent::Cost(Arc::new(self))
    }
}

impl Record for Notification {
    const TABLE: Bytes = NOTIFICATIONS;
    fn key(&self) -> Vec<u8> {
        self.id.bytes().to_vec()
    }
    fn index_keys(&self) -> Vec<(Bytes, Vec<u8>)> {
        vec![(
            NOTIFICATIONS_BY_USER,
            join(&[
                &self.user_id.bytes(),
                &ts(&self.created_at),
                &self.id.bytes(),
            ]),
        )]
    }
    fn into_event(self) -> EngineEvent {
        EngineEvent::Notification(Arc::new(self))
    }
}

impl Record for Checkpoint {
    const TABLE: Bytes = CHECKPOINTS;
    fn key(&self) -> Vec<u8> {
        self.id.bytes().to_vec()
    }
    fn index_keys(&self) -> Vec<(Bytes, Vec<u8>)> {
        vec![(
            CHECKPOINTS_BY_JOB,
            join(&[
                &self.job_id.bytes(),
                &self.step.to_be_bytes(),
                &self.id.bytes(),
            ]),
        )]
    }
    fn into_event(self) -> EngineEvent {
        EngineEvent::Checkpoint(Arc::new(self))
    }
}

/// Metrics are keyed by (job, step): a replayed step overwrites itself instead of duplicating.
pub fn metric_key(p: &MetricsPoint) -> [u8; 24] {
    let mut k = [0u8; 24];
    k[..16].copy_from_slice(&p.job_id.bytes());
    k[16..].copy_from_slice(&p.step.to_be_bytes());
    k
}
