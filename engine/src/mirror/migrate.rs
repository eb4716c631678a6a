//! The numbered SQL files of `migrations-compat/`, compiled in, applied in order, each once,
//! and recorded in `public.brightrun_migrations`. A session advisory lock makes two engines
//! that start together take turns instead of racing on `CREATE TABLE`.

use super::{MigrationState, MigrationStep};
use sha2::{Digest, Sha256};
use tokio_postgres::Client;

/// (version, file name, SQL), in the order they apply.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "0001_auth.sql",
        include_str!("../../../migrations-compat/0001_auth.sql"),
    ),
    (
        2,
        "0002_tables.sql",
        include_str!("../../../migrations-compat/0002_tables.sql"),
    ),
    (
        3,
        "0003_rls.sql",
        include_str!("../../../migrations-compat/0003_rls.sql"),
    ),
    (
        4,
        "0004_evaluation_jobs.sql",
        include_str!("../../../migrations-compat/0004_evaluation_jobs.sql"),
    ),
    (
        5,
        "0005_stored_checkpoints.sql",
        include_str!("../../../migrations-compat/0005_stored_checkpoints.sql"),
    ),
    (
        6,
        "0006_sweeps.sql",
        include_str!("../../../migrations-compat/0006_sweeps.sql"),
    ),
    (
        7,
        "0007_exports.sql",
        include_str!("../../../migrations-compat/0007_exports.sql"),
    ),
    (
        8,
        "0008_preference.sql",
        include_str!("../../../migrations-compat/0008_preference.sql"),
    ),
];

/// The table that records which migrations a database holds (a dry run's SQL creates it too).
pub const RECORD_TABLE_SQL: &str = "CREATE TABLE IF NOT EXISTS public.brightrun_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);";

/// The advisory-lock key every BrightRun takes while migrating (any fixed number works).
const LOCK_KEY: i64 = 0x4252_4d49_4752_4154; // "BRMIGRAT"

/// Applies the migrations the database lacks; returns the versions applied now (empty when
/// it was already up to date). Each migration and its record commit together.
pub async fn migrate(client: &mut Client) -> Result<Vec<i32>, tokio_postgres::Error> {
    Ok(apply(client)
        .await?
        .into_iter()
        .filter(|m| m.state == MigrationState::AppliedNow)
        .map(|m| m.version)
        .collect())
}

/// [`migrate`], answering every migration's state (`mirror migrate`).
pub async fn apply(client: &mut Client) -> Result<Vec<MigrationStep>, tokio_postgres::Error> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
        .await?;
    let result = apply_all(client).await;
    // On error the connection may be gone, and the lock with it; either way it is released.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await;
    result
}

/// What [`apply`] would do, changing nothing: each migration's state, with the SQL of the
/// pending ones (`mirror migrate --dry-run`).
pub async fn plan(client: &Client) -> Result<Vec<MigrationStep>, tokio_postgres::Error> {
    let recorded = client
        .query_one(
            "SELECT to_regclass('public.brightrun_migrations') IS NOT NULL",
            &[],
        )
        .await?
        .get::<_, bool>(0);
    let mut steps = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        let had: Option<String> = if recorded {
            client
                .query_opt(
                    "SELECT checksum FROM public.brightrun_migrations WHERE version = $1",
                    &[version],
                )
                .await?
                .map(|row| row.get(0))
        } else {
            None
        };
        let pending = had.is_none();
        let mut step = step(*version, name, sql, had);
        if pending {
            step.state = MigrationState::Pending;
            step.sql = Some(sql.to_string());
        }
        steps.push(step);
    }
    Ok(steps)
}

/// A migration already recorded with checksum `had` (a differing one is kept in the step),
/// or, with `None`, one about to be applied.
fn step(version: i32, name: &str, sql: &str, had: Option<String>) -> MigrationStep {
    let checksum = checksum(sql);
    MigrationStep {
        version,
        name: name.to_string(),
        state: if had.is_some() {
            MigrationState::Applied
        } else {
            MigrationState::AppliedNow
        },
        recorded_checksum: had.filter(|h| *h != checksum),
        checksum,
        sql: None,
    }
}

fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

async fn apply_all(client: &mut Client) -> Result<Vec<MigrationStep>, tokio_postgres::Error> {
    client.batch_execute(RECORD_TABLE_SQL).await?;
    let mut steps = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        let checksum = checksum(sql);
        let tx = client.transaction().await?;
        let had: Option<String> = tx
            .query_opt(
                "SELECT checksum FROM public.brightrun_migrations WHERE version = $1",
                &[version],
            )
            .await?
            .map(|row| row.get(0));
        match &had {
            Some(had) if *had != checksum => tracing::warn!(
                "migration {name} was applied from a different text (checksum {had}); it is not applied again"
            ),
            Some(_) => {}
            None => {
                tx.batch_execute(sql).await?;
                tx.execute(
                    "INSERT INTO public.brightrun_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    &[version, name, &checksum],
                )
                .await?;
            }
        }
        tx.commit().await?;
        steps.push(step(*version, name, sql, had));
    }
    Ok(steps)
}
