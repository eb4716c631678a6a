//! BrightRun's records as rows of the seed's tables, and the statements that upsert them:
//! one multi-row `INSERT … SELECT FROM unnest(…)` per table and batch, and COPY for metrics.
//! Every upsert is guarded by `brightrun_seq`, so a replayed older version never overwrites
//! a newer one.

use crate::domain::*;
use crate::ids::JobId;
use bytes::BytesMut;
use chrono::{Datelike, NaiveDate};
use futures::SinkExt;
use std::collections::HashMap;
use std::fmt::Write as _;
use tokio_postgres::Transaction;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

/// One column value.
#[derive(Clone, Debug)]
pub(crate) enum Val {
    Uuid(Option<Uuid>),
    Text(Option<String>),
    I64(Option<i64>),
    F64(Option<f64>),
    Bool(Option<bool>),
    Ts(Option<Timestamp>),
    Json(Option<serde_json::Value>),
    Date(Option<NaiveDate>),
}

/// A column of a batch, as the array parameter `unnest` reads.
enum Column {
    Uuid(Vec<Option<Uuid>>),
    Text(Vec<Option<String>>),
    I64(Vec<Option<i64>>),
    F64(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
    Ts(Vec<Option<Timestamp>>),
    Json(Vec<Option<serde_json::Value>>),
    Date(Vec<Option<NaiveDate>>),
}

impl Column {
    fn for_type(pg: &str) -> Self {
        match pg {
            "uuid" => Self::Uuid(Vec::new()),
            "text" => Self::Text(Vec::new()),
            "int8" => Self::I64(Vec::new()),
            "float8" => Self::F64(Vec::new()),
            "bool" => Self::Bool(Vec::new()),
            "timestamptz" => Self::Ts(Vec::new()),
            "jsonb" => Self::Json(Vec::new()),
            "date" => Self::Date(Vec::new()),
            other => unreachable!("no column kind for {other}"),
        }
    }
    fn push(&mut self, v: Val) {
        match (self, v) {
            (Self::Uuid(c), Val::Uuid(v)) => c.push(v),
            (Self::Text(c), Val::Text(v)) => c.push(v),
            (Self::I64(c), Val::I64(v)) => c.push(v),
            (Self::F64(c), Val::F64(v)) => c.push(v),
            (Self::Bool(c), Val::Bool(v)) => c.push(v),
            (Self::Ts(c), Val::Ts(v)) => c.push(v),
            (Self::Json(c), Val::Json(v)) => c.push(v),
            (Self::Date(c), Val::Date(v)) => c.push(v),
            (_, v) => unreachable!("value {v:?} does not fit its column"),
        }
    }
    fn param(&self) -> &(dyn ToSql + Sync) {
        match self {
            Self::Uuid(c) => c,
            Self::Text(c) => c,
            Self::I64(c) => c,
            Self::F64(c) => c,
            Self::Bool(c) => c,
            Self::Ts(c) => c,
            Self::Json(c) => c,
            Self::Date(c) => c,
        }
    }
}

/// A mirrored table: its name, its columns (name, the type of the array sent for it) and
/// its conflict target.
pub(crate) struct Table {
    pub name: &'static str,
    pub columns: &'static [(&'static str, &'static str)],
    pub conflict: &'static str,
}

const GUARD: &str = "t.brightrun_seq IS NULL OR t.brightrun_seq <= excluded.brightrun_seq";

impl Table {
    /// `INSERT INTO t (…) SELECT * FROM unnest($1::type[], …) ON CONFLICT … DO UPDATE … WHERE
    /// guard`.
    pub fn upsert_sql(&self) -> String {
        let names: Vec<&str> = self.columns.iter().map(|(n, _)| *n).collect();
        let arrays: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, (_, t))| format!("${}::{t}[]", i + 1))
            .collect();
        let sets: Vec<String> = names
            .iter()
            .filter(|n| **n != "id")
            .map(|n| format!("\"{n}\" = excluded.\"{n}\""))
            .collect();
        format!(
            "INSERT INTO public.{} AS t ({}) SELECT * FROM unnest({}) ON CONFLICT ({}) DO UPDATE SET {} WHERE {GUARD}",
            self.name,
            names
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", "),
            arrays.join(", "),
            self.conflict,
            sets.join(", ")
        )
    }

    /// Upserts `rows` (each in column order) in one statement.
    pub async fn upsert(
        &self,
        tx: &Transaction<'_>,
        rows: Vec<Vec<Val>>,
    ) -> Result<u64, tokio_postgres::Error> {
        if rows.is_empty() {
            return Ok(0);
        }
        let mut cols: Vec<Column> = self
            .columns
            .iter()
            .map(|(_, t)| Column::for_type(t))
            .collect();
        for row in rows {
            for (c, v) in cols.iter_mut().zip(row) {
                c.push(v);
            }
        }
        let params: Vec<&(dyn ToSql + Sync)> = cols.iter().map(Column::param).collect();
        tx.execute(&self.upsert_sql(), &params).await
    }
}

pub(crate) const DATASETS: Table = Table {
    name: "datasets",
    conflict: "id",
    columns: &[
        ("id", "uuid"),
        ("user_id", "uuid"),
        ("name", "text"),
        ("description", "text"),
        ("format", "text"),
        ("status", "text"),
        ("storage_bucket", "text"),
        ("storage_path", "text"),
        ("file_name", "text"),
        ("file_size", "int8"),
        ("total_training_pairs", "int8"),
        ("total_validation_pairs", "int8"),
        ("total_tokens", "int8"),
        ("avg_turns_per_conversation", "float8"),
        ("avg_tokens_per_turn", "float8"),
        ("training_ready", "bool"),
        ("validated_at", "timestamptz"),
        ("validation_errors", "jsonb"),
        ("sample_data", "jsonb"),
        ("created_at", "timestamptz"),
        ("updated_at", "timestamptz"),
        ("deleted_at", "timestamptz"),
        ("brightrun_origin", "uuid"),
        ("brightrun_seq", "int8"),
        ("brightrun_hash", "int8"),
        ("brightrun_statistics", "jsonb"),
        ("brightrun_error_message", "text"),
    ],
};

pub(crate) const JOBS: Table = Table {
    name: "training_jobs",
    conflict: "id",
    columns: &[
        ("id", "uuid"),
        ("user_id", "uuid"),
        ("dataset_id", "uuid"),
        ("preset_id", "text"),
        ("hyperparameters", "jsonb"),
        ("gpu_config", "jsonb"),
        ("status", "text"),
        ("current_stage", "text"),
        ("progress", "float8"),
        ("current_epoch", "int8"),
        ("total_epochs", "int8"),
        ("current_step", "int8"),
        ("total_steps", "int8"),
        ("current_metrics", "jsonb"),
        ("queued_at", "timestamptz"),
        ("started_at", "timestamptz"),
        ("completed_at", "timestamptz"),
        ("estimated_completion_at", "timestamptz"),
        ("current_cost", "float8"),
        ("estimated_total_cost", "float8"),
        ("final_cost", "float8"),
        ("error_message", "text"),
        ("error_stack", "text"),
        ("retry_count", "int8"),
        ("external_job_id", "text"),
        ("artifact_id", "uuid"),
        ("created_at", "timestamptz"),
        ("updated_at", "timestamptz"),
        ("brightrun_origin", "uuid"),
        ("brightrun_seq", "int8"),
        ("brightrun_hash", "int8"),
        ("brightrun_retry_of", "uuid"),
        ("brightrun_backend", "text"),
        ("brightrun_task", "jsonb"),
        ("brightrun_comparison", "jsonb"),
    ],
};

pub(crate) const ARTIFACTS: Table = Table {
    name: "model_artifacts",
    conflict: "id",
    columns: &[
        ("id", "uuid"),
        ("user_id", "uuid"),
        ("job_id", "uuid"),
        ("dataset_id", "uuid"),
        ("name", "text"),
        ("version", "text"),
        ("description", "text"),
        ("status", "text"),
        ("deployed_at", "timestamptz"),
        ("quality_metrics", "jsonb"),
        ("training_summary", "jsonb"),
        ("configuration", "jsonb"),
        ("artifacts", "jsonb"),
        ("parent_model_id", "uuid"),
        ("created_at", "timestamptz"),
        ("updated_at", "timestamptz"),
        ("deleted_at", "timestamptz"),
        ("brightrun_origin", "uuid"),
        ("brightrun_seq", "int8"),
        ("brightrun_hash", "int8"),
        ("brightrun_base_model", "text"),
        ("brightrun_kind", "text"),
        ("brightrun_export", "jsonb"),
    ],
};

pub(crate) const COSTS: Table = Table {
    name: "cost_records",
    conflict: "id",
    columns: &[
        ("id", "uuid"),
        ("user_id", "uuid"),
        ("job_id", "uuid"),
        ("cost_type", "text"),
        ("amount", "float8"),
        ("details", "jsonb"),
        ("billing_period", "date"),
        ("recorded_at", "timestamptz"),
        ("brightrun_origin", "uuid"),
        ("brightrun_seq", "int8"),
        ("brightrun_hash", "int8"),
    ],
};

pub(crate) const NOTIFICATIONS: Table = Table {
    name: "notifications",
    conflict: "id",
    columns: &[
        ("id", "uuid"),
        ("user_id", "uuid"),
        ("type", "text"),
        ("title", "text"),
        ("message", "text"),
        ("priority", "text"),
        ("read", "bool"),
        ("action_url", "text"),
        ("metadata", "jsonb"),
        ("created_at", "timestamptz"),
        ("brightrun_origin", "uuid"),
        ("brightrun_seq", "int8"),
        ("brightrun_hash", "int8"),
    ],
};

pub(crate) const CHECKPOINTS: Table = Table {
    name: "training_checkpoints",
    conflict: "id",
    columns: &[
        ("id", "uuid"),
        ("job_id", "uuid"),
        ("checkpoint_step", "int8"),
        ("epoch", "float8"),
        ("training_loss", "float8"),
        ("validation_loss", "float8"),
        ("learning_rate", "float8"),
        ("storage_path", "text"),
        ("created_at", "timestamptz"),
        ("brightrun_origin", "uuid"),
        ("brightrun_seq", "int8"),
        ("brightrun_hash", "int8"),
        ("brightrun_size", "int8"),
        ("brightrun_sha256", "text"),
    ],
};

pub(crate) const SWEEPS: Table = Table {
    name: "brightrun_sweeps",
    conflict: "id",
    columns: &[
        ("id", "uuid"),
        ("user_id", "uuid"),
        ("name", "text"),
        ("status", "text"),
        ("spec", "jsonb"),
        ("runs", "jsonb"),
        ("best_job_id", "uuid"),
        ("best_by", "text"),
        ("spent", "float8"),
        ("created_at", "timestamptz"),
        ("updated_at", "timestamptz"),
        ("completed_at", "timestamptz"),
        ("brightrun_origin", "uuid"),
        ("brightrun_seq", "int8"),
        ("brightrun_hash", "int8"),
    ],
};

pub(crate) fn sweep_row(s: &Sweep, origin: Uuid, seq: u64) -> Vec<Val> {
    vec![
        Val::Uuid(Some(s.id.0)),
        Val::Uuid(Some(s.user_id.0)),
        text(&s.name),
        text(s.status.as_str()),
        Val::Json(serde_json::to_value(&s.spec).ok()),
        Val::Json(serde_json::to_value(&s.runs).ok()),
        Val::Uuid(s.best_job_id.map(|j| j.0)),
        opt_text(s.best_by.as_deref()),
        Val::F64(Some(s.spent)),
        Val::Ts(Some(s.created_at)),
        Val::Ts(Some(s.updated_at)),
        Val::Ts(s.completed_at),
        Val::Uuid(Some(origin)),
        big(seq),
        Val::I64(Some(
            xxhash_rust::xxh3::xxh3_64(&serde_json::to_vec(s).unwrap_or_default()) as i64,
        )),
    ]
}

/// The metrics table's columns, in COPY order.
pub(crate) const METRICS_COLUMNS: &[&str] = &[
    "id",
    "job_id",
    "timestamp",
    "epoch",
    "step",
    "training_loss",
    "validation_loss",
    "learning_rate",
    "gradient_norm",
    "throughput",
    "gpu_utilization",
    "brightrun_preference",
    "brightrun_origin",
    "brightrun_seq",
    "brightrun_hash",
];

/// A 64-bit hash of a record as the store encodes it: what `verify` compares.
pub(crate) fn record_hash<T: serde::Serialize>(r: &T) -> i64 {
    xxhash_rust::xxh3::xxh3_64(&crate::store::encode(r)) as i64
}

/// The metrics point's row id: derived from (job, step), so a replay finds the same row.
pub fn metric_row_id(job: JobId, step: u64) -> Uuid {
    let mut b = [0u8; 24];
    b[..16].copy_from_slice(&job.bytes());
    b[16..].copy_from_slice(&step.to_be_bytes());
    let h = xxhash_rust::xxh3::xxh3_128(&b);
    Uuid::from_u128(h)
}

/// Integers the seed keeps as `integer`: clamped, never an error that would stop the mirror.
fn int(n: u64) -> Val {
    Val::I64(Some(n.min(i32::MAX as u64) as i64))
}
fn big(n: u64) -> Val {
    Val::I64(Some(n.min(i64::MAX as u64) as i64))
}
fn opt_int(n: Option<u64>) -> Val {
    Val::I64(n.map(|n| n.min(i32::MAX as u64) as i64))
}
fn text(s: &str) -> Val {
    Val::Text(Some(s.to_string()))
}
fn opt_text(s: Option<&str>) -> Val {
    Val::Text(s.map(str::to_string))
}
/// A money or percent value for a `numeric` column (non-finite values become NULL).
fn num(x: f64) -> Val {
    Val::F64(x.is_finite().then_some(x))
}
fn json<T: serde::Serialize>(v: &T) -> Val {
    Val::Json(serde_json::to_value(v).ok())
}

/// Where the seed's app shows the thing a notification is about.
pub fn action_url(link: &Option<Link>) -> Option<String> {
    link.map(|l| match l {
        Link::Dataset(id) => format!("/datasets/{id}"),
        Link::Job(id) => format!("/training/jobs/{id}"),
        Link::Artifact(id) => format!("/models/{id}"),
        Link::Costs => "/costs".to_string(),
    })
}

/// `YYYY-MM` as the first day of that month.
fn billing_date(period: &str, fallback: &Timestamp) -> NaiveDate {
    let parsed = period
        .split_once('-')
        .and_then(|(y, m)| NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, 1));
    parsed.unwrap_or_else(|| {
        NaiveDate::from_ymd_opt(fallback.year(), fallback.month(), 1).unwrap_or_default()
    })
}

pub(crate) fn dataset_row(d: &Dataset, origin: Uuid, seq: u64) -> Vec<Val> {
    let stats = d.statistics.as_ref();
    vec![
        Val::Uuid(Some(d.id.0)),
        Val::Uuid(Some(d.user_id.0)),
        text(&d.name),
        opt_text(d.description.as_deref()),
        opt_text(d.format.map(|f| f.as_str())),
        text(d.status.as_str()),
        text(&d.storage_bucket),
        text(&d.storage_path),
        text(&d.file_name),
        big(d.file_size),
        opt_int(d.total_training_pairs),
        opt_int(d.total_validation_pairs),
        Val::I64(d.total_tokens.map(|n| n.min(i64::MAX as u64) as i64)),
        Val::F64(stats.map(|s| s.avg_turns_per_conversation)),
        Val::F64(stats.map(|s| s.avg_tokens_per_turn)),
        Val::Bool(Some(d.training_ready)),
        Val::Ts(d.validated_at),
        json(&d.validation_errors),
        json(&d.sample_data),
        Val::Ts(Some(d.created_at)),
        Val::Ts(Some(d.updated_at)),
        Val::Ts(d.deleted_at),
        Val::Uuid(Some(origin)),
        big(seq),
        Val::I64(Some(record_hash(d))),
        Val::Json(stats.and_then(|s| serde_json::to_value(s).ok())),
        opt_text(d.error_message.as_deref()),
    ]
}

/// A job's row, with its task and (a completed evaluation job) its comparison.
pub(crate) fn job_row(
    j: &TrainingJob,
    comparison: Option<&Comparison>,
    origin: Uuid,
    seq: u64,
) -> Vec<Val> {
    vec![
        Val::Uuid(Some(j.id.0)),
        Val::Uuid(Some(j.user_id.0)),
        Val::Uuid(Some(j.dataset_id.0)),
        text(j.preset_id.as_str()),
        json(&j.hyperparameters),
        json(&j.gpu_config),
        text(j.status.as_str()),
        text(j.current_stage.as_str()),
        num(j.progress.clamp(0.0, 100.0)),
        int(j.current_epoch as u64),
        int(j.total_epochs as u64),
        int(j.current_step),
        int(j.total_steps),
        json(&j.current_metrics),
        Val::Ts(Some(j.queued_at)),
        Val::Ts(j.started_at),
        Val::Ts(j.completed_at),
        Val::Ts(j.estimated_completion_at),
        num(j.current_cost),
        num(j.estimated_cost),
        Val::F64(j.final_cost.filter(|c| c.is_finite())),
        opt_text(j.error_message.as_deref()),
        opt_text(j.error_detail.as_deref()),
        int(j.retry_count as u64),
        opt_text(j.external_job_id.as_deref()),
        Val::Uuid(j.artifact_id.map(|a| a.0)),
        Val::Ts(Some(j.created_at)),
        Val::Ts(Some(j.updated_at)),
        Val::Uuid(Some(origin)),
        big(seq),
        Val::I64(Some(record_hash(j))),
        Val::Uuid(j.retry_of.map(|r| r.0)),
        text(&j.gpu_config.backend),
        json(&j.task),
        match comparison {
            Some(c) => json(c),
            None => Val::Json(None),
        },
    ]
}

/// A model's row. `quality_metrics` is the seed's object plus `evaluation`, what the run's
/// `evaluating` stage measured (null without one).
pub(crate) fn artifact_row(
    a: &ModelArtifact,
    evaluation: Option<&Evaluation>,
    origin: Uuid,
    seq: u64,
) -> Vec<Val> {
    let mut quality = serde_json::to_value(&a.quality_metrics).unwrap_or_default();
    quality["evaluation"] = serde_json::to_value(evaluation).unwrap_or_default();
    let files = serde_json::json!({
        "storage_bucket": a.storage_bucket,
        "storage_path": a.storage_path,
        "files": a.files,
    });
    vec![
        Val::Uuid(Some(a.id.0)),
        Val::Uuid(Some(a.user_id.0)),
        Val::Uuid(Some(a.job_id.0)),
        Val::Uuid(Some(a.dataset_id.0)),
        text(&a.name),
        text(&a.version.to_string()),
        Val::Text(None),
        text(match a.status {
            ArtifactStatus::Stored => "stored",
            ArtifactStatus::Deployed => "deployed",
            ArtifactStatus::Archived => "archived",
        }),
        Val::Ts(None),
        Val::Json(Some(quality)),
        json(&a.training_summary),
        json(&a.configuration),
        Val::Json(Some(files)),
        Val::Uuid(a.parent_model_id.map(|p| p.0)),
        Val::Ts(Some(a.created_at)),
        Val::Ts(Some(a.updated_at)),
        Val::Ts(a.deleted_at),
        Val::Uuid(Some(origin)),
        big(seq),
        Val::I64(Some(record_hash(a))),
        text(&a.base_model),
        text(a.kind.as_str()),
        match &a.export {
            Some(c) => json(c),
            None => Val::Json(None),
        },
    ]
}

pub(crate) fn cost_row(c: &CostRecord, origin: Uuid, seq: u64) -> Vec<Val> {
    vec![
        Val::Uuid(Some(c.id.0)),
        Val::Uuid(Some(c.user_id.0)),
        Val::Uuid(c.job_id.map(|j| j.0)),
        text(c.cost_type.as_str()),
        Val::F64(Some(if c.amount.is_finite() { c.amount } else { 0.0 })),
        json(&c.details),
        Val::Date(Some(billing_date(&c.billing_period, &c.created_at))),
        Val::Ts(Some(c.created_at)),
        Val::Uuid(Some(origin)),
        big(seq),
        Val::I64(Some(record_hash(c))),
    ]
}

fn enum_text<T: serde::Serialize>(v: &T) -> Val {
    Val::Text(
        serde_json::to_value(v)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string)),
    )
}

pub(crate) fn notification_row(n: &Notification, origin: Uuid, seq: u64) -> Vec<Val> {
    vec![
        Val::Uuid(Some(n.id.0)),
        Val::Uuid(Some(n.user_id.0)),
        enum_text(&n.kind),
        text(&n.title),
        text(&n.message),
        enum_text(&n.priority),
        Val::Bool(Some(n.read)),
        Val::Text(action_url(&n.link)),
        Val::Json(Some(n.metadata.0.clone())),
        Val::Ts(Some(n.created_at)),
        Val::Uuid(Some(origin)),
        big(seq),
        Val::I64(Some(record_hash(n))),
    ]
}

pub(crate) fn checkpoint_row(c: &Checkpoint, origin: Uuid, seq: u64) -> Vec<Val> {
    vec![
        Val::Uuid(Some(c.id.0)),
        Val::Uuid(Some(c.job_id.0)),
        int(c.step),
        Val::F64(Some(c.epoch)),
        Val::F64(c.loss),
        Val::F64(None),
        Val::F64(None),
        text(&c.storage_path),
        Val::Ts(Some(c.created_at)),
        Val::Uuid(Some(origin)),
        big(seq),
        Val::I64(Some(record_hash(c))),
        c.size.map_or(Val::I64(None), big),
        opt_text(c.sha256.as_deref()),
    ]
}

/// Makes the per-connection staging table COPY writes into (emptied at each commit).
pub(crate) const STAGE_SQL: &str = "CREATE TEMP TABLE IF NOT EXISTS brightrun_stage_metrics \
    (LIKE public.metrics_points INCLUDING DEFAULTS) ON COMMIT DELETE ROWS";

fn copy_f64(out: &mut BytesMut, v: Option<f64>) {
    match v {
        None => out.extend_from_slice(b"\\N"),
        Some(x) if x.is_nan() => out.extend_from_slice(b"NaN"),
        Some(x) if x == f64::INFINITY => out.extend_from_slice(b"Infinity"),
        Some(x) if x == f64::NEG_INFINITY => out.extend_from_slice(b"-Infinity"),
        Some(x) => {
            let _ = write!(Fmt(out), "{x:?}");
        }
    }
}

/// `fmt::Write` over a `BytesMut`.
struct Fmt<'a>(&'a mut BytesMut);
impl std::fmt::Write for Fmt<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Appends one metrics point as a COPY text line.
pub(crate) fn metric_line(out: &mut BytesMut, p: &MetricsPoint, origin: Uuid, seq: u64) {
    let mut f = Fmt(out);
    let _ = write!(
        f,
        "{}\t{}\t{}\t",
        metric_row_id(p.job_id, p.step),
        p.job_id,
        p.timestamp.format("%Y-%m-%d %H:%M:%S%.6f+00")
    );
    copy_f64(out, Some(p.epoch));
    let _ = write!(Fmt(out), "\t{}\t", p.step.min(i32::MAX as u64));
    for (i, v) in [
        p.training_loss,
        p.validation_loss,
        p.learning_rate,
        p.gradient_norm,
        p.throughput,
        p.gpu_utilization,
    ]
    .into_iter()
    .enumerate()
    {
        if i > 0 {
            out.extend_from_slice(b"\t");
        }
        copy_f64(out, v);
    }
    out.extend_from_slice(b"\t");
    copy_json(out, p.preference.as_ref());
    let _ = writeln!(Fmt(out), "\t{origin}\t{seq}\t{}", record_hash(p));
}

/// A value as JSON in COPY's text format (`\N` for none; backslashes, tabs and line breaks
/// escaped as COPY reads them).
fn copy_json<T: serde::Serialize>(out: &mut BytesMut, v: Option<&T>) {
    match v.and_then(|v| serde_json::to_string(v).ok()) {
        None => out.extend_from_slice(b"\\N"),
        Some(json) => {
            for c in json.chars() {
                match c {
                    '\\' => out.extend_from_slice(b"\\\\"),
                    '\t' => out.extend_from_slice(b"\\t"),
                    '\n' => out.extend_from_slice(b"\\n"),
                    '\r' => out.extend_from_slice(b"\\r"),
                    c => {
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                }
            }
        }
    }
}

/// Upserts metrics points: COPY into the staging table, then one guarded upsert from it.
pub(crate) async fn upsert_metrics(
    tx: &Transaction<'_>,
    points: &[(&MetricsPoint, u64)],
    origin: Uuid,
) -> Result<u64, tokio_postgres::Error> {
    if points.is_empty() {
        return Ok(0);
    }
    let cols = METRICS_COLUMNS
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let sink = tx
        .copy_in::<_, bytes::Bytes>(&format!(
            "COPY brightrun_stage_metrics ({cols}) FROM STDIN (FORMAT text)"
        ))
        .await?;
    futures::pin_mut!(sink);
    let mut buf = BytesMut::with_capacity(1 << 20);
    for (p, seq) in points {
        metric_line(&mut buf, p, origin, *seq);
        if buf.len() >= 1 << 20 {
            sink.send(buf.split().freeze()).await?;
        }
    }
    if !buf.is_empty() {
        sink.send(buf.freeze()).await?;
    }
    sink.finish().await?;
    let sets = METRICS_COLUMNS
        .iter()
        .filter(|c| **c != "id")
        .map(|c| format!("\"{c}\" = excluded.\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let n = tx
        .execute(
            &format!(
                "INSERT INTO public.metrics_points AS t ({cols}) SELECT {cols} FROM brightrun_stage_metrics \
                 ON CONFLICT (job_id, step) DO UPDATE SET {sets} WHERE {GUARD}"
            ),
            &[],
        )
        .await?;
    // The staging rows go at commit; a second upsert in the same transaction must not see them.
    tx.execute("DELETE FROM brightrun_stage_metrics", &[])
        .await?;
    Ok(n)
}

/// A metrics point inside the change (or chunk) that carried it: (seq, points, index), so a
/// batch holds no copies.
pub(crate) type PointRef = (u64, std::sync::Arc<Vec<MetricsPoint>>, usize);

/// A batch of changes to apply in one transaction: the newest version of each record, with
/// the seq it came from.
#[derive(Default)]
pub(crate) struct Batch {
    pub datasets: HashMap<Uuid, (u64, std::sync::Arc<Dataset>)>,
    pub jobs: HashMap<Uuid, (u64, std::sync::Arc<TrainingJob>)>,
    pub artifacts: HashMap<Uuid, (u64, std::sync::Arc<ModelArtifact>)>,
    /// The evaluations of `artifacts`' models, where their runs made one.
    pub evaluations: HashMap<Uuid, Evaluation>,
    /// The comparisons of `jobs`' completed evaluation jobs.
    pub comparisons: HashMap<Uuid, Comparison>,
    pub costs: HashMap<Uuid, (u64, std::sync::Arc<CostRecord>)>,
    pub notifications: HashMap<Uuid, (u64, std::sync::Arc<Notification>)>,
    pub checkpoints: HashMap<Uuid, (u64, std::sync::Arc<Checkpoint>)>,
    pub sweeps: HashMap<Uuid, (u64, std::sync::Arc<Sweep>)>,
    /// (job, step) → (seq, the change's points, index of the point)
    pub metrics: HashMap<(JobId, u64), PointRef>,
    /// Users whose rows the batch holds (their auth.users rows are ensured).
    pub users: std::collections::BTreeSet<Uuid>,
    /// Changes in the batch (before coalescing) and their last seq.
    pub changes: usize,
    pub last_seq: u64,
}

impl Batch {
    /// Adds a change; a later one for the same record replaces an earlier one.
    pub fn add(&mut self, s: &crate::events::Sequenced) {
        use crate::events::EngineEvent as E;
        let seq = s.seq;
        self.changes += 1;
        self.last_seq = self.last_seq.max(seq);
        match &s.event {
            E::Dataset(d) => {
                self.users.insert(d.user_id.0);
                self.datasets.insert(d.id.0, (seq, d.clone()));
            }
            E::Job(j) => {
                self.users.insert(j.user_id.0);
                self.jobs.insert(j.id.0, (seq, j.clone()));
            }
            E::Artifact(a) => {
                self.users.insert(a.user_id.0);
                self.artifacts.insert(a.id.0, (seq, a.clone()));
            }
            E::Cost(c) => {
                self.users.insert(c.user_id.0);
                self.costs.insert(c.id.0, (seq, c.clone()));
            }
            E::Notification(n) => {
                self.users.insert(n.user_id.0);
                self.notifications.insert(n.id.0, (seq, n.clone()));
            }
            E::Checkpoint(c) => {
                self.checkpoints.insert(c.id.0, (seq, c.clone()));
            }
            E::Metrics { points, .. } => {
                for (i, p) in points.iter().enumerate() {
                    self.metrics
                        .insert((p.job_id, p.step), (seq, points.clone(), i));
                }
            }
            E::Sweep(w) => {
                self.users.insert(w.user_id.0);
                self.sweeps.insert(w.id.0, (seq, w.clone()));
            }
            E::JobLog { .. } | E::Progress(_) | E::BackendHealth { .. } => {}
        }
    }

    /// Writes the batch inside `tx`; foreign keys are checked at commit.
    pub async fn write(
        &self,
        tx: &Transaction<'_>,
        origin: Uuid,
    ) -> Result<(), tokio_postgres::Error> {
        ensure_users(tx, self.users.iter().copied().collect()).await?;
        DATASETS
            .upsert(
                tx,
                self.datasets
                    .values()
                    .map(|(s, d)| dataset_row(d, origin, *s))
                    .collect(),
            )
            .await?;
        JOBS.upsert(
            tx,
            self.jobs
                .values()
                .map(|(s, j)| job_row(j, self.comparisons.get(&j.id.0), origin, *s))
                .collect(),
        )
        .await?;
        ARTIFACTS
            .upsert(
                tx,
                self.artifacts
                    .values()
                    .map(|(s, a)| artifact_row(a, self.evaluations.get(&a.id.0), origin, *s))
                    .collect(),
            )
            .await?;
        CHECKPOINTS
            .upsert(
                tx,
                self.checkpoints
                    .values()
                    .map(|(s, c)| checkpoint_row(c, origin, *s))
                    .collect(),
            )
            .await?;
        SWEEPS
            .upsert(
                tx,
                self.sweeps
                    .values()
                    .map(|(s, w)| sweep_row(w, origin, *s))
                    .collect(),
            )
            .await?;
        COSTS
            .upsert(
                tx,
                self.costs
                    .values()
                    .map(|(s, c)| cost_row(c, origin, *s))
                    .collect(),
            )
            .await?;
        NOTIFICATIONS
            .upsert(
                tx,
                self.notifications
                    .values()
                    .map(|(s, n)| notification_row(n, origin, *s))
                    .collect(),
            )
            .await?;
        let points: Vec<(&MetricsPoint, u64)> = self
            .metrics
            .values()
            .map(|(s, pts, i)| (&pts[*i], *s))
            .collect();
        upsert_metrics(tx, &points, origin).await?;
        Ok(())
    }
}

/// Makes sure each user has its `auth.users` row (the tables' foreign keys point there).
pub(crate) async fn ensure_users(
    tx: &Transaction<'_>,
    users: Vec<Uuid>,
) -> Result<(), tokio_postgres::Error> {
    if users.is_empty() {
        return Ok(());
    }
    tx.execute(
        "INSERT INTO auth.users (id) SELECT unnest($1::uuid[]) ON CONFLICT (id) DO NOTHING",
        &[&users],
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ArtifactId, UserId};

    /// A job row ends with `brightrun_task` and `brightrun_comparison`, one value per column.
    #[test]
    fn an_evaluation_jobs_row_carries_its_task_and_comparison() {
        let user = UserId::new();
        let mut job = crate::store::fixture::samples().jobs[3].clone();
        job.user_id = user;
        let model = ArtifactId::new();
        job.task = JobTask::Evaluation(Box::new(EvaluationTask {
            models: vec![model],
            prompts: None,
            max_new_tokens: 32,
        }));
        let c = Comparison {
            version: 1,
            prompts_from: Some("validation".into()),
            ..Default::default()
        };
        let row = job_row(&job, Some(&c), Uuid::nil(), 7);
        assert_eq!(row.len(), JOBS.columns.len());
        let [.., Val::Json(Some(task)), Val::Json(Some(comparison))] = row.as_slice() else {
            panic!("the last two columns are JSON: {row:?}");
        };
        assert_eq!(task["kind"], "evaluation");
        assert_eq!(task["models"][0], model.to_string());
        assert_eq!(comparison["prompts_from"], "validation");
        let training = job_row(
            &crate::store::fixture::samples().jobs[0],
            None,
            Uuid::nil(),
            1,
        );
        assert!(matches!(
            training.as_slice(),
            [.., Val::Json(Some(t)), Val::Json(None)] if t["kind"] == "training"
        ));
    }
}
