//! The stored schema version and the upgrades between versions. Each upgrade runs in one write
//! transaction, so a crash mid-upgrade leaves the old version intact.
//!
//! - v1: records and the user/created, status, dataset, job and step indexes.
//! - v2: adds the user+status indexes for datasets and jobs (filtered lists); the upgrade
//!   rebuilds every index from the records.
//! - v3: adds the change log (`change_log`, `change_log_consumers`). Older BrightRuns would
//!   write records without logging them, so they are refused from v3 on. The upgrade only
//!   stamps the version: the log starts at the next change.
//! - v4: adds `record_counts` (jobs per user and per user+status, live datasets likewise),
//!   kept in the write transaction, so list totals are one lookup. Older BrightRuns would
//!   not keep them, so they are refused from v4 on. The upgrade counts the stored records.
//! - v5: every record value carries a CRC32 (see [`super::checksum`]) and corrupt records are
//!   moved to `quarantined_records`. Older BrightRuns would read the CRC as part of the
//!   record, so they are refused from v5 on. The upgrade gives every record of every record
//!   table its checksum; one that does not decode is quarantined instead of failing the
//!   upgrade. The change log and the other tables keep their format.
//! - v6: tokens are `stored::v2::TokenRecordV2` (an expiry and a last use). Older BrightRuns
//!   could not decode them, so they are refused from v6 on. The upgrade rewrites every token
//!   (never expiring, no use recorded); one that does not decode is quarantined.
//! - v7: a job may be in the `evaluating` stage (appended to `JobStageV1`), and a model's
//!   evaluation is kept in `model_evaluations` (see [`super::evaluations`]). Older BrightRuns
//!   could not decode a job in that stage, so they are refused from v7 on. The upgrade only
//!   stamps the version: no record changes.
//! - v8: jobs are `stored::v3::TrainingJobV3` (their task: training, or an evaluation of
//!   trained models; the checkpoint of an earlier job they continue from; the model whose
//!   adapter they start from), checkpoints are `stored::v3::CheckpointV3` (their stored
//!   archive's size and sha256, and the trainer's folder), the change log writes both in the new
//!   layouts (`ChangeV3::JobV3`, `ChangeV3::CheckpointV3`; its older entries keep their bytes), and an evaluation job's result is kept in `job_comparisons` (see
//!   [`super::evaluations`]). Older BrightRuns could not decode the jobs, so they are refused
//!   from v8 on. The upgrade rewrites every job (a training job) and every checkpoint (its folder,
//!   not stored); one that does not decode is quarantined.
//! - v9: hyperparameter sweeps are kept in `sweeps` (see [`super::sweeps`]) and logged as
//!   `ChangeV3::Sweep` (a variant appended: earlier entries keep their bytes). Older BrightRuns
//!   could not decode those log entries, so they are refused from v9 on. The upgrade only
//!   stamps the version: no record changes.
//! - v10: jobs are `stored::v4::TrainingJobV4` (their task may be an export: `brightrun models
//!   export`) and models are `stored::v4::ModelArtifactV4` (their kind: an adapter, or a
//!   merged, GGUF or GGUF LoRA export of their parent; and the check an export passed); the
//!   change log writes both in the new layouts (`ChangeV3::JobV4`, `ChangeV3::ArtifactV4`,
//!   appended; older entries keep their bytes). Older BrightRuns could not decode them, so
//!   they are refused from v10 on. The upgrade rewrites every job (its task as it was) and
//!   every model (an adapter); one that does not decode is quarantined.
//! - v11: jobs are `stored::v5::TrainingJobV5` (their hyperparameters carry the method: SFT,
//!   or DPO, ORPO, SimPO or KTO with its own hyperparameters), logged steps
//!   `stored::v5::MetricsPointV5` (a preference run's rewards, margin, accuracy and
//!   log-probabilities) and datasets `stored::v5::DatasetV5` (a preference file's
//!   statistics); the change log writes the three in the new layouts (`ChangeV3::JobV5`,
//!   `ChangeV3::MetricsV5`, `ChangeV3::DatasetV5`, appended; older entries keep their bytes).
//!   Older BrightRuns could not decode them, so they are refused from v11 on. The upgrade
//!   rewrites every job (an SFT run), every logged step and every dataset; one that does not
//!   decode is quarantined.
//!
//! Record layouts are the stored types of [`super::stored`], not the domain types: schema v5's
//! records are `stored::v1` (byte for byte what v5 always wrote; the upgrade fixture
//! `engine/tests/fixtures/store/v5.redb`, written by that release, proves it). A change of
//! layout is a new stored version and a new schema version here, whose step rewrites the
//! table with [`super::quarantine::restore`]; each schema version keeps its fixture.

use super::StoreError;
use super::checksum::decode_record;
use super::db;
use super::records::*;
use crate::domain::*;
use redb::{Database, ReadableDatabase, ReadableTable, TableHandle, WriteTransaction};

pub const SCHEMA_VERSION: u64 = 11;
const KEY: &str = "schema_version";

pub fn read_version(db_: &Database) -> Result<u64, StoreError> {
    let txn = db_.begin_read().map_err(db)?;
    match txn.open_table(META) {
        Ok(t) => Ok(t.get(KEY).map_err(db)?.map(|v| v.value()).unwrap_or(0)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
        Err(e) => Err(db(e)),
    }
}

/// Brings the file to [`SCHEMA_VERSION`]. A new file is stamped; an older one is upgraded.
pub fn upgrade(db_: &Database) -> Result<(), StoreError> {
    let found = read_version(db_)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    let txn = db_.begin_write().map_err(db)?;
    // v5 sealed every record: only older files need their checksums.
    if (1..5).contains(&found) {
        let quarantined = super::quarantine::reseal_all(&txn)?;
        if quarantined > 0 {
            tracing::error!(
                "upgrading store schema {found} → {SCHEMA_VERSION}: {quarantined} record(s) did not decode and were moved to quarantine (`brightrun doctor` lists them)"
            );
        }
    }
    // Before the indexes are rebuilt from the records, which reads them in today's layout.
    if (1..8).contains(&found) {
        report(
            found,
            "job(s)",
            super::quarantine::restore::<
                super::stored::v1::TrainingJobV1,
                super::stored::v5::TrainingJobV5,
            >(&txn, JOBS.name())?,
        );
        report(
            found,
            "checkpoint(s)",
            super::quarantine::restore::<
                super::stored::v1::CheckpointV1,
                super::stored::v3::CheckpointV3,
            >(&txn, CHECKPOINTS.name())?,
        );
    }
    if (8..10).contains(&found) {
        report(
            found,
            "job(s)",
            super::quarantine::restore::<
                super::stored::v3::TrainingJobV3,
                super::stored::v5::TrainingJobV5,
            >(&txn, JOBS.name())?,
        );
    }
    if found == 10 {
        report(
            found,
            "job(s)",
            super::quarantine::restore::<
                super::stored::v4::TrainingJobV4,
                super::stored::v5::TrainingJobV5,
            >(&txn, JOBS.name())?,
        );
    }
    if (1..11).contains(&found) {
        report(
            found,
            "dataset(s)",
            super::quarantine::restore::<super::stored::v1::DatasetV1, super::stored::v5::DatasetV5>(
                &txn,
                DATASETS.name(),
            )?,
        );
        report(
            found,
            "logged step(s)",
            super::quarantine::restore::<
                super::stored::v1::MetricsPointV1,
                super::stored::v5::MetricsPointV5,
            >(&txn, METRICS.name())?,
        );
    }
    if (1..10).contains(&found) {
        report(
            found,
            "model(s)",
            super::quarantine::restore::<
                super::stored::v1::ModelArtifactV1,
                super::stored::v4::ModelArtifactV4,
            >(&txn, ARTIFACTS.name())?,
        );
    }
    if found == 1 {
        tracing::info!("upgrading store schema 1 → 2: rebuilding indexes");
        rebuild_indexes(&txn)?;
    }
    if (1..6).contains(&found) {
        let quarantined = super::auth::upgrade_tokens_to_v2(&txn)?;
        if quarantined > 0 {
            tracing::error!(
                "upgrading store schema {found} → {SCHEMA_VERSION}: {quarantined} token(s) did not decode and were moved to quarantine"
            );
        }
    }
    rebuild_counts(&txn)?;
    txn.open_table(META)
        .map_err(db)?
        .insert(KEY, SCHEMA_VERSION)
        .map_err(db)?;
    txn.commit().map_err(db)?;
    Ok(())
}

/// Logs how many records of a kind an upgrade step could not decode (they are in quarantine).
fn report(found: u64, what: &str, quarantined: usize) {
    if quarantined > 0 {
        tracing::error!(
            "upgrading store schema {found} → {SCHEMA_VERSION}: {quarantined} {what} did not decode and were moved to quarantine (`brightrun doctor` lists them)"
        );
    }
}

/// Empties every index and refills it from the records.
fn rebuild_indexes(txn: &WriteTransaction) -> Result<(), StoreError> {
    for index in ALL_INDEXES {
        txn.delete_table(index).map_err(db)?;
    }
    reindex::<Dataset>(txn)?;
    reindex::<TrainingJob>(txn)?;
    reindex::<ModelArtifact>(txn)?;
    reindex::<CostRecord>(txn)?;
    reindex::<Notification>(txn)?;
    reindex::<Checkpoint>(txn)?;
    Ok(())
}

/// Recounts every counter from the records.
pub(crate) fn rebuild_counts(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.delete_table(COUNTS).map_err(db)?;
    recount::<Dataset>(txn)?;
    recount::<TrainingJob>(txn)?;
    recount::<ModelArtifact>(txn)?;
    recount::<CostRecord>(txn)?;
    recount::<Notification>(txn)?;
    recount::<Checkpoint>(txn)?;
    Ok(())
}

fn recount<R: Record>(txn: &WriteTransaction) -> Result<(), StoreError> {
    let mut totals = std::collections::BTreeMap::<Vec<u8>, u64>::new();
    {
        let table = txn.open_table(R::TABLE).map_err(db)?;
        for entry in table.iter().map_err(db)? {
            let (key, value) = entry.map_err(db)?;
            // A corrupt record counts for nothing: lists leave it out too.
            let r: R = match decode_record(R::TABLE.name(), key.value(), value.value()) {
                Ok(r) => r,
                Err(e @ StoreError::Corrupt { .. }) => {
                    tracing::error!("{e}");
                    continue;
                }
                Err(e) => return Err(e),
            };
            for k in r.counters() {
                *totals.entry(k).or_default() += 1;
            }
        }
    }
    let mut counts = txn.open_table(COUNTS).map_err(db)?;
    for (k, n) in totals {
        let n = n + counts
            .get(k.as_slice())
            .map_err(db)?
            .map_or(0, |v| v.value());
        counts.insert(k.as_slice(), n).map_err(db)?;
    }
    Ok(())
}

fn reindex<R: Record>(txn: &WriteTransaction) -> Result<(), StoreError> {
    let records: Vec<R> = {
        let table = txn.open_table(R::TABLE).map_err(db)?;
        let mut v = Vec::new();
        for entry in table.iter().map_err(db)? {
            let (key, value) = entry.map_err(db)?;
            v.push(decode_record(R::TABLE.name(), key.value(), value.value())?);
        }
        v
    };
    for r in &records {
        for (index, k) in r.index_keys() {
            txn.open_table(index)
                .map_err(db)?
                .insert(k.as_slice(), [].as_slice())
                .map_err(db)?;
        }
    }
    Ok(())
}

/// Writes a store as BrightRun's schema 1 wrote it (no checksums), for the upgrade test.
#[cfg(test)]
pub fn write_v1(db_: &Database, datasets: &[Dataset]) -> Result<(), StoreError> {
    use super::encode;
    let txn = db_.begin_write().map_err(db)?;
    {
        let mut t = txn.open_table(DATASETS).map_err(db)?;
        let mut idx = txn.open_table(DATASETS_BY_USER).map_err(db)?;
        for d in datasets {
            t.insert(
                d.key().as_slice(),
                encode(&super::stored::v5::older::dataset_v1(d)).as_slice(),
            )
            .map_err(db)?;
            // v1 had only the user/created index.
            let (k, _) = d
                .index_keys()
                .into_iter()
                .map(|(i, k)| (k, i))
                .next()
                .unwrap();
            idx.insert(k.as_slice(), [].as_slice()).map_err(db)?;
        }
        txn.open_table(META)
            .map_err(db)?
            .insert(KEY, 1u64)
            .map_err(db)?;
    }
    txn.commit().map_err(db)?;
    Ok(())
}

/// Writes a store as BrightRun's schema 4 wrote it: records and their indexes, no checksums
/// (the counts are left to the upgrade, which recounts them).
#[cfg(test)]
pub fn write_v4(
    db_: &Database,
    datasets: &[Dataset],
    jobs: &[TrainingJob],
) -> Result<(), StoreError> {
    let txn = db_.begin_write().map_err(db)?;
    put_v4(&txn, datasets)?;
    put_v4(&txn, jobs)?;
    txn.open_table(META)
        .map_err(db)?
        .insert(KEY, 4u64)
        .map_err(db)?;
    txn.commit().map_err(db)?;
    Ok(())
}

/// A record in the layout schema v4 wrote: v1's (jobs had no task then).
#[cfg(test)]
pub(crate) trait LegacyLayout: Record {
    fn v4_bytes(&self) -> Vec<u8> {
        super::encode(&self.to_stored())
    }
}

#[cfg(test)]
impl LegacyLayout for Dataset {
    fn v4_bytes(&self) -> Vec<u8> {
        super::encode(&super::stored::v5::older::dataset_v1(self))
    }
}

#[cfg(test)]
impl LegacyLayout for TrainingJob {
    fn v4_bytes(&self) -> Vec<u8> {
        super::encode(&super::stored::v3::v1_of(self))
    }
}

#[cfg(test)]
fn put_v4<R: LegacyLayout>(txn: &WriteTransaction, records: &[R]) -> Result<(), StoreError> {
    for r in records {
        txn.open_table(R::TABLE)
            .map_err(db)?
            .insert(r.key().as_slice(), r.v4_bytes().as_slice())
            .map_err(db)?;
        for (index, k) in r.index_keys() {
            txn.open_table(index)
                .map_err(db)?
                .insert(k.as_slice(), [].as_slice())
                .map_err(db)?;
        }
    }
    Ok(())
}
