//! `brightrun mirror verify`: this engine's records against their rows in PostgreSQL, table
//! by table: row counts, and a checksum over (id, stamp) where the stamp is `updated_at`
//! (µs) and the content hash for the tables that have an `updated_at`, the content hash alone
//! for the others. Differences are listed by id (metrics points by job).

use super::{MirrorContext, MirrorError, Target, rows};
use crate::domain::*;
use crate::store::{Record, Store, StoreError};
pub use brightrun_api::mirror::{TableCheck, VerifyReport};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The seven mirrored tables.
pub(crate) const TABLES: [&str; 7] = [
    "datasets",
    "training_jobs",
    "model_artifacts",
    "training_checkpoints",
    "cost_records",
    "notifications",
    "metrics_points",
];

/// How many differing ids a table lists (the counts are always complete).
const LIST_AT_MOST: usize = 20;

/// 64 bits of sha256(id ':' stamp), summed mod 2^64 over rows.
fn row_sum(id: &str, stamp: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(id.as_bytes());
    h.update(b":");
    h.update(stamp.as_bytes());
    let d = h.finalize();
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

fn stamp(updated_at: Option<&Timestamp>, hash: i64) -> String {
    match updated_at {
        Some(t) => format!("{}:{hash}", t.timestamp_micros()),
        None => hash.to_string(),
    }
}

/// id → stamp, for one record table here.
fn local_stamps<R: Record + serde::Serialize>(
    store: &Store,
    id: impl Fn(&R) -> Uuid,
    updated: impl Fn(&R) -> Option<Timestamp>,
) -> Result<BTreeMap<String, String>, StoreError> {
    let mut out = BTreeMap::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let chunk = store.scan::<R>(after.as_deref(), 5000)?;
        for r in &chunk.items {
            out.insert(
                id(r).to_string(),
                stamp(updated(r).as_ref(), rows::record_hash(r)),
            );
        }
        match chunk.next {
            Some(k) => after = Some(k),
            None => return Ok(out),
        }
    }
}

/// job id → (points, sum of their hashes mod 2^64), here.
fn local_metrics(store: &Store) -> Result<BTreeMap<String, (u64, u64)>, StoreError> {
    let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let chunk = store.scan_metrics(after.as_deref(), 50_000)?;
        for p in &chunk.items {
            let e = out.entry(p.job_id.to_string()).or_default();
            e.0 += 1;
            e.1 = e.1.wrapping_add(rows::record_hash(p) as u64);
        }
        match chunk.next {
            Some(k) => after = Some(k),
            None => return Ok(out),
        }
    }
}

fn compare(
    table: &str,
    local: &BTreeMap<String, String>,
    remote: &BTreeMap<String, String>,
) -> TableCheck {
    let sum = |m: &BTreeMap<String, String>| {
        m.iter()
            .fold(0u64, |acc, (id, s)| acc.wrapping_add(row_sum(id, s)))
    };
    let mut c = TableCheck {
        table: table.to_string(),
        local_rows: local.len() as u64,
        remote_rows: remote.len() as u64,
        local_checksum: format!("{:016x}", sum(local)),
        remote_checksum: format!("{:016x}", sum(remote)),
        missing: vec![],
        extra: vec![],
        different: vec![],
        missing_count: 0,
        extra_count: 0,
        different_count: 0,
    };
    for (id, s) in local {
        match remote.get(id) {
            None => {
                c.missing_count += 1;
                if c.missing.len() < LIST_AT_MOST {
                    c.missing.push(id.clone());
                }
            }
            Some(r) if r != s => {
                c.different_count += 1;
                if c.different.len() < LIST_AT_MOST {
                    c.different.push(id.clone());
                }
            }
            Some(_) => {}
        }
    }
    for id in remote.keys().filter(|id| !local.contains_key(*id)) {
        c.extra_count += 1;
        if c.extra.len() < LIST_AT_MOST {
            c.extra.push(id.clone());
        }
    }
    c
}

pub(crate) async fn verify(
    ctx: &MirrorContext,
    target: &Target,
) -> Result<VerifyReport, MirrorError> {
    let client = target.connect().await?;
    let origin = ctx.origin.0;
    let store = ctx.store.clone();
    let local = crate::store::off_runtime(move || -> Result<_, StoreError> {
        Ok((
            local_stamps::<Dataset>(&store, |r| r.id.0, |r| Some(r.updated_at))?,
            local_stamps::<TrainingJob>(&store, |r| r.id.0, |r| Some(r.updated_at))?,
            local_stamps::<ModelArtifact>(&store, |r| r.id.0, |r| Some(r.updated_at))?,
            local_stamps::<Checkpoint>(&store, |r| r.id.0, |_| None)?,
            local_stamps::<CostRecord>(&store, |r| r.id.0, |_| None)?,
            local_stamps::<Notification>(&store, |r| r.id.0, |_| None)?,
            local_metrics(&store)?,
        ))
    })
    .await
    .map_err(|_| MirrorError::Stopped)??;
    let (ds, jobs, arts, cks, costs, notes, metrics) = local;
    let mut tables = Vec::new();
    for (table, has_updated, local) in [
        ("datasets", true, &ds),
        ("training_jobs", true, &jobs),
        ("model_artifacts", true, &arts),
        ("training_checkpoints", false, &cks),
        ("cost_records", false, &costs),
        ("notifications", false, &notes),
    ] {
        let stamp_sql = if has_updated {
            "(extract(epoch FROM updated_at) * 1000000)::bigint::text || ':' || coalesce(brightrun_hash::text, '')"
        } else {
            "coalesce(brightrun_hash::text, '')"
        };
        let rows = client
            .query(
                &format!(
                    "SELECT id::text, {stamp_sql} FROM public.{table} WHERE brightrun_origin = $1"
                ),
                &[&origin],
            )
            .await
            .map_err(|e| target.error(&e))?;
        let remote: BTreeMap<String, String> = rows
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
            .collect();
        tables.push(compare(table, local, &remote));
    }
    // Metrics: per job, the count and the sum of content hashes (mod 2^64).
    let rows = client
        .query(
            "SELECT job_id::text, count(*), (sum(brightrun_hash::numeric) % 18446744073709551616)::text \
             FROM public.metrics_points WHERE brightrun_origin = $1 GROUP BY job_id",
            &[&origin],
        )
        .await
        .map_err(|e| target.error(&e))?;
    let remote: BTreeMap<String, (u64, u64)> = rows
        .iter()
        .map(|r| {
            let sum: String = r.get(2);
            // The sum of signed hashes mod 2^64 may be negative: bring it into 0..2^64.
            let n: i128 = sum.split('.').next().unwrap_or("0").parse().unwrap_or(0);
            let n = n.rem_euclid(1i128 << 64) as u64;
            (r.get::<_, String>(0), (r.get::<_, i64>(1).max(0) as u64, n))
        })
        .collect();
    let as_stamps = |m: &BTreeMap<String, (u64, u64)>| -> BTreeMap<String, String> {
        m.iter()
            .map(|(k, (n, s))| (k.clone(), format!("{n}:{s:016x}")))
            .collect()
    };
    let mut m = compare("metrics_points", &as_stamps(&metrics), &as_stamps(&remote));
    m.local_rows = metrics.values().map(|(n, _)| n).sum();
    m.remote_rows = remote.values().map(|(n, _)| n).sum();
    tables.push(m);
    let clean = tables.iter().all(TableCheck::is_clean);
    Ok(VerifyReport {
        target: target.display.clone(),
        clean,
        tables,
    })
}
