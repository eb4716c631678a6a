//! Golden bytes for every stored type: `golden/v<N>/<type>.hex` holds, one hex line per value,
//! how the fixture's sample records ([`crate::store::fixture::samples`]) encode. Two checks:
//! - every version's files decode into their stored type and encode back into the same bytes
//!   (a frozen version whose layout was edited fails here);
//! - the current version's files equal the samples encoded today (a domain change that
//!   reaches the stored bytes without a new version fails here).
//!
//! A missing file fails too; a new version's files are written once with
//! `BRIGHTRUN_BLESS_GOLDEN=1 cargo test -p brightrun-engine --lib store::stored::golden`, which
//! never overwrites an existing file.

use super::v1::*;
use super::v2::*;
use super::v3::*;
use super::v4::*;
use super::v5::*;
use super::{Change, Persisted};
use crate::domain::Timestamp;
use crate::store::fixture::{Samples, samples, since_v8, since_v10, since_v11};
use crate::store::{ENCODING, encode};
use serde::{Serialize, de::DeserializeOwned};
use std::fmt::Debug;
use std::path::PathBuf;

fn file(version: &str, name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/store/stored/golden")
        .join(version)
        .join(format!("{name}.hex"))
}

fn read_lines(version: &str, name: &str) -> Option<Vec<Vec<u8>>> {
    let text = std::fs::read_to_string(file(version, name)).ok()?;
    Some(
        text.lines()
            .map(|l| hex::decode(l.trim()).expect("golden files hold hex lines"))
            .collect(),
    )
}

/// Decodes all of `bytes` as one `T`.
fn decode_exact<T: DeserializeOwned>(bytes: &[u8], what: &str) -> T {
    let (v, used): (T, usize) = bincode::serde::decode_from_slice(bytes, ENCODING)
        .unwrap_or_else(|e| panic!("{what}: the golden bytes no longer decode: {e}"));
    assert_eq!(used, bytes.len(), "{what}: bytes left over after decoding");
    v
}

/// A frozen version's file decodes into `T` and encodes back into the same bytes.
fn round_trips<T: Serialize + DeserializeOwned>(version: &str, name: &str) -> usize {
    let lines = read_lines(version, name)
        .unwrap_or_else(|| panic!("no golden file {}", file(version, name).display()));
    assert!(!lines.is_empty(), "{version}/{name} holds no value");
    for (i, bytes) in lines.iter().enumerate() {
        let what = format!("{version}/{name} line {}", i + 1);
        let v: T = decode_exact(bytes, &what);
        assert_eq!(
            &encode(&v),
            bytes,
            "{what}: the stored layout changed; a change of layout is a new stored version"
        );
    }
    lines.len()
}

/// The current version's file equals `values` encoded today (written when blessing a new one).
fn matches_today<T: Serialize + DeserializeOwned + PartialEq + Debug>(
    version: &str,
    name: &str,
    values: &[T],
) {
    let today: Vec<Vec<u8>> = values.iter().map(encode).collect();
    let Some(lines) = read_lines(version, name) else {
        let path = file(version, name);
        if std::env::var_os("BRIGHTRUN_BLESS_GOLDEN").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let text: String = today.iter().map(|b| hex::encode(b) + "\n").collect();
            std::fs::write(&path, text).unwrap();
            return;
        }
        panic!(
            "no golden file {}: a new stored version writes its own with BRIGHTRUN_BLESS_GOLDEN=1",
            path.display()
        );
    };
    assert_eq!(
        lines.len(),
        today.len(),
        "{version}/{name}: number of values"
    );
    for (i, (stored, now)) in lines.iter().zip(&today).enumerate() {
        let what = format!("{version}/{name} line {}", i + 1);
        assert_eq!(&decode_exact::<T>(stored, &what), &values[i], "{what}");
        assert_eq!(
            hex::encode(now),
            hex::encode(stored),
            "{what}: today's encoding differs from the stored layout; a change of layout is a new stored version (see store::stored)"
        );
    }
}

fn stored<D: Persisted>(values: &[D]) -> Vec<D::Stored> {
    values.iter().map(Persisted::to_stored).collect()
}

/// One change of each kind, as the log keeps them (with the commit time), and a job of each
/// task.
fn changes(s: &Samples) -> Vec<(Timestamp, Change)> {
    let at = s.datasets[0].created_at;
    let v11 = since_v11(s);
    vec![
        (at, Change::DatasetV5(s.datasets[2].to_stored())),
        (at, Change::DatasetV5(v11.dataset.to_stored())),
        (at, Change::JobV5(s.jobs[4].to_stored())),
        (at, Change::JobV5(since_v8(s).job.to_stored())),
        (at, Change::JobV5(since_v10(s).0.to_stored())),
        (at, Change::JobV5(v11.job.to_stored())),
        (
            at,
            Change::MetricsV5(s.metrics[0].job_id, stored(&s.metrics[..3])),
        ),
        (at, Change::MetricsV5(v11.job.id, stored(&v11.metrics))),
        (at, Change::ArtifactV4(s.artifacts[1].to_stored())),
        (at, Change::ArtifactV4(since_v10(s).1.to_stored())),
        (at, Change::Cost(s.costs[0].to_stored())),
        (at, Change::Notification(s.notifications[2].to_stored())),
        (at, Change::CheckpointV3(since_v8(s).checkpoint.to_stored())),
    ]
}

#[test]
fn v1_layouts_are_frozen() {
    let counted = [
        round_trips::<DatasetV1>("v1", "dataset"),
        round_trips::<TrainingJobV1>("v1", "training_job"),
        round_trips::<MetricsPointV1>("v1", "metrics_point"),
        round_trips::<ModelArtifactV1>("v1", "model_artifact"),
        round_trips::<CostRecordV1>("v1", "cost_record"),
        round_trips::<NotificationV1>("v1", "notification"),
        round_trips::<CheckpointV1>("v1", "checkpoint"),
        round_trips::<TokenRecordV1>("v1", "token"),
        round_trips::<PendingUploadV1>("v1", "pending_upload"),
        round_trips::<CalibrationV1>("v1", "calibration"),
        round_trips::<(Timestamp, ChangeV1)>("v1", "change"),
        round_trips::<QuarantinedV1>("v1", "quarantined"),
    ];
    assert!(counted.iter().all(|n| *n > 0));
}

/// The samples' tokens, and one that expires and was used (the samples' have neither, as the
/// v5 fixture's tokens read after their upgrade).
fn tokens_today(s: &Samples) -> Vec<TokenRecordV2> {
    let mut tokens = stored(&s.tokens);
    let mut used = tokens[0].clone();
    used.id = "c0ffee00".into();
    used.hash = [11; 32];
    used.expires_at = Some(s.datasets[0].created_at + chrono::Duration::days(30));
    used.last_used_at = Some(s.datasets[0].created_at + chrono::Duration::minutes(5));
    tokens.push(used);
    tokens
}

#[test]
fn v2_layouts_are_frozen() {
    assert!(round_trips::<TokenRecordV2>("v2", "token") > 0);
}

/// The schema v6 upgrade of a token: v1's golden tokens become the samples' tokens, with no
/// expiry and no recorded use.
#[test]
fn v1_tokens_upgrade_to_v2() {
    let s = samples();
    let lines = read_lines("v1", "token").expect("the v1 token golden file");
    let upgraded: Vec<TokenRecordV2> = lines
        .iter()
        .map(|b| super::Convert::convert(decode_exact::<TokenRecordV1>(b, "v1/token")))
        .collect();
    assert_eq!(upgraded, stored(&s.tokens));
    assert!(
        upgraded
            .iter()
            .all(|t| t.expires_at.is_none() && t.last_used_at.is_none())
    );
}

#[test]
fn v3_layouts_are_frozen() {
    assert!(round_trips::<TrainingJobV3>("v3", "training_job") > 0);
    assert!(round_trips::<CheckpointV3>("v3", "checkpoint") > 0);
    assert!(round_trips::<(Timestamp, ChangeV3)>("v3", "change") > 0);
}

#[test]
fn v4_layouts_are_frozen() {
    assert!(round_trips::<TrainingJobV4>("v4", "training_job") > 0);
    assert!(round_trips::<ModelArtifactV4>("v4", "model_artifact") > 0);
    assert!(round_trips::<(Timestamp, ChangeV3)>("v4", "change") > 0);
}

#[test]
fn v5_layouts_are_frozen() {
    assert!(round_trips::<DatasetV5>("v5", "dataset") > 0);
    assert!(round_trips::<TrainingJobV5>("v5", "training_job") > 0);
    assert!(round_trips::<MetricsPointV5>("v5", "metrics_point") > 0);
    assert!(round_trips::<(Timestamp, ChangeV3)>("v5", "change") > 0);
}

/// The schema v11 upgrade: v4's golden jobs become the samples' (SFT runs), v1's datasets
/// and logged steps the samples' (no preference figures).
#[test]
fn v4_jobs_v1_datasets_and_metrics_upgrade_to_v5() {
    let s = samples();
    let lines = read_lines("v4", "training_job").expect("the v4 job golden file");
    let upgraded: Vec<TrainingJobV5> = lines
        .iter()
        .map(|b| super::Convert::convert(decode_exact::<TrainingJobV4>(b, "v4/training_job")))
        .collect();
    let mut jobs = s.jobs.clone();
    jobs.push(since_v8(&s).job);
    jobs.push(since_v10(&s).0);
    assert_eq!(upgraded, stored(&jobs));
    assert!(
        upgraded
            .iter()
            .all(|j| j.hyperparameters.method == TrainingMethodV5::Sft)
    );
    let lines = read_lines("v1", "dataset").expect("the v1 dataset golden file");
    let upgraded: Vec<DatasetV5> = lines
        .iter()
        .map(|b| super::Convert::convert(decode_exact::<DatasetV1>(b, "v1/dataset")))
        .collect();
    assert_eq!(upgraded, stored(&s.datasets));
    let lines = read_lines("v1", "metrics_point").expect("the v1 metrics golden file");
    let upgraded: Vec<MetricsPointV5> = lines
        .iter()
        .map(|b| super::Convert::convert(decode_exact::<MetricsPointV1>(b, "v1/metrics_point")))
        .collect();
    assert_eq!(upgraded, stored(&s.metrics));
}

/// The schema v10 upgrade of a job: v3's golden jobs (the samples' and the evaluation job)
/// keep their tasks.
#[test]
fn v3_jobs_upgrade_to_v4() {
    let s = samples();
    let lines = read_lines("v3", "training_job").expect("the v3 job golden file");
    let upgraded: Vec<TrainingJobV4> = lines
        .iter()
        .map(|b| super::Convert::convert(decode_exact::<TrainingJobV3>(b, "v3/training_job")))
        .collect();
    let today: Vec<TrainingJobV4> = read_lines("v4", "training_job")
        .expect("the v4 job golden file")
        .iter()
        .take(s.jobs.len() + 1)
        .map(|b| decode_exact(b, "v4/training_job"))
        .collect();
    assert_eq!(upgraded, today);
}

/// The schema v10 upgrade of a model: v1's golden models become the samples', adapters with
/// no export check.
#[test]
fn v1_models_upgrade_to_v4() {
    let s = samples();
    let lines = read_lines("v1", "model_artifact").expect("the v1 model golden file");
    let upgraded: Vec<ModelArtifactV4> = lines
        .iter()
        .map(|b| super::Convert::convert(decode_exact::<ModelArtifactV1>(b, "v1/model_artifact")))
        .collect();
    assert_eq!(upgraded, stored(&s.artifacts));
    assert!(
        upgraded
            .iter()
            .all(|a| a.kind == ModelKindV4::Adapter && a.export.is_none())
    );
}

/// The schema v8 upgrade of a job: v1's golden jobs become the samples' jobs, training jobs.
#[test]
fn v1_jobs_upgrade_to_v3() {
    let s = samples();
    let lines = read_lines("v1", "training_job").expect("the v1 job golden file");
    let upgraded: Vec<TrainingJobV3> = lines
        .iter()
        .map(|b| super::Convert::convert(decode_exact::<TrainingJobV1>(b, "v1/training_job")))
        .collect();
    let today: Vec<TrainingJobV3> = read_lines("v3", "training_job")
        .expect("the v3 job golden file")
        .iter()
        .take(s.jobs.len())
        .map(|b| decode_exact(b, "v3/training_job"))
        .collect();
    assert_eq!(upgraded, today);
    assert!(upgraded.iter().all(|j| j.task == JobTaskV3::Training));
}

/// The schema v8 upgrade of a checkpoint: v1's golden checkpoints become the samples'
/// checkpoints, their folders, not stored.
#[test]
fn v1_checkpoints_upgrade_to_v3() {
    let s = samples();
    let lines = read_lines("v1", "checkpoint").expect("the v1 checkpoint golden file");
    let upgraded: Vec<CheckpointV3> = lines
        .iter()
        .map(|b| super::Convert::convert(decode_exact::<CheckpointV1>(b, "v1/checkpoint")))
        .collect();
    assert_eq!(upgraded, stored(&s.checkpoints));
    assert!(
        upgraded
            .iter()
            .all(|c| c.sha256.is_none() && c.folder.as_deref() == Some(c.storage_path.as_str()))
    );
}

/// The change log's entries written before schema v8 keep their bytes: each reads as today's
/// entry type and encodes back the same.
#[test]
fn v1_change_log_entries_read_as_v3() {
    let lines = read_lines("v1", "change").expect("the v1 change golden file");
    for (i, bytes) in lines.iter().enumerate() {
        let what = format!("v1/change line {} as v3", i + 1);
        let entry: (Timestamp, ChangeV3) = decode_exact(bytes, &what);
        assert_eq!(&encode(&entry), bytes, "{what}");
    }
}

#[test]
fn todays_records_encode_as_the_current_version() {
    let s = samples();
    let v11 = since_v11(&s);
    let mut datasets = s.datasets.clone();
    datasets.push(v11.dataset.clone());
    matches_today("v5", "dataset", &stored(&datasets));
    let mut jobs = s.jobs.clone();
    jobs.push(since_v8(&s).job);
    jobs.push(since_v10(&s).0);
    jobs.push(v11.job.clone());
    matches_today("v5", "training_job", &stored(&jobs));
    let mut metrics = s.metrics.clone();
    metrics.extend(v11.metrics.iter().cloned());
    matches_today("v5", "metrics_point", &stored(&metrics));
    let mut artifacts = s.artifacts.clone();
    artifacts.push(since_v10(&s).1);
    matches_today("v4", "model_artifact", &stored(&artifacts));
    matches_today("v1", "cost_record", &stored(&s.costs));
    matches_today("v1", "notification", &stored(&s.notifications));
    let mut checkpoints = s.checkpoints.clone();
    checkpoints.push(since_v8(&s).checkpoint);
    matches_today("v3", "checkpoint", &stored(&checkpoints));
    matches_today("v2", "token", &tokens_today(&s));
    matches_today(
        "v1",
        "pending_upload",
        &stored(std::slice::from_ref(&s.upload)),
    );
    let calibration = crate::training::Calibration {
        runs: 3,
        tokens_per_sec: s.calibration.1,
    };
    matches_today("v1", "calibration", &stored(&[calibration]));
    matches_today("v5", "change", &changes(&s));
    let quarantined = super::Quarantined {
        raw: vec![0, 1, 2, 0xff],
        at: s.datasets[0].created_at,
        problem: "checksum mismatch: stored 00000000, computed 12345678".into(),
    };
    matches_today("v1", "quarantined", &[quarantined]);
}

#[test]
fn stored_values_convert_back_into_the_same_records() {
    let s = samples();
    for d in &s.datasets {
        assert_eq!(&crate::domain::Dataset::from_stored(d.to_stored()), d);
    }
    let (export_job, export) = since_v10(&s);
    let v11 = since_v11(&s);
    assert_eq!(
        crate::domain::Dataset::from_stored(v11.dataset.to_stored()),
        v11.dataset
    );
    for p in &v11.metrics {
        assert_eq!(&crate::domain::MetricsPoint::from_stored(p.to_stored()), p);
    }
    for j in s
        .jobs
        .iter()
        .chain([&since_v8(&s).job, &export_job, &v11.job])
    {
        assert_eq!(&crate::domain::TrainingJob::from_stored(j.to_stored()), j);
    }
    for a in s.artifacts.iter().chain([&export]) {
        assert_eq!(&crate::domain::ModelArtifact::from_stored(a.to_stored()), a);
    }
    for n in &s.notifications {
        assert_eq!(&crate::domain::Notification::from_stored(n.to_stored()), n);
    }
    assert_eq!(
        crate::storage::journal::PendingUpload::from_stored(s.upload.to_stored()),
        s.upload
    );
}

/// Schema v7 appended `Evaluating` to the job stages: every earlier stage keeps the number
/// it is stored as (v1's golden files hold them), and the new one takes the next.
#[test]
fn the_evaluating_stage_is_appended() {
    use crate::domain::JobStage;
    let stages = [
        JobStage::Queued,
        JobStage::Initializing,
        JobStage::Training,
        JobStage::Validating,
        JobStage::Saving,
        JobStage::Completed,
        JobStage::Evaluating,
    ];
    for (n, stage) in stages.into_iter().enumerate() {
        let stored: JobStageV1 = super::Convert::convert(stage);
        assert_eq!(encode(&stored), vec![n as u8], "{stage:?}");
        let back: JobStage =
            super::Convert::convert(decode_exact::<JobStageV1>(&[n as u8], "stage"));
        assert_eq!(back, stage);
    }
}
