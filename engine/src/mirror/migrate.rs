//! The numbered SQL files of `migrations-compat/`, compiled in, applied in order, each once,
//! and recorded in `public.brightrun_migrations`. A session advisory lock makes two engines
//! that start together take turns instead of racing on `CREATE TABLE`.

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
];

/// The advisory-lock key every BrightRun takes while migrating (any fixed number works).
const LOCK_KEY: i64 = 0x4252_4d49_4752_4154; // "BRMIGRAT"

/// Applies the migrations the database lacks; returns the versions applied now (empty when
/// it was already up to date). Each migration and its record commit together.
pub async fn migrate(client: &mut Client) -> Result<Vec<i32>, tokio_postgres::Error> {
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

async fn apply_all(client: &mut Client) -> Result<Vec<i32>, tokio_postgres::Error> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS public.brightrun_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )",
        )
        .await?;
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        let checksum = hex::encode(Sha256::digest(sql.as_bytes()));
        let tx = client.transaction().await?;
        let existing = tx
            .query_opt(
                "SELECT checksum FROM public.brightrun_migrations WHERE version = $1",
                &[version],
            )
            .await?;
        match existing {
            Some(row) => {
                let had: String = row.get(0);
                if had != checksum {
                    tracing::warn!(
                        "migration {name} was applied from a different text (checksum {had}); it is not applied again"
                    );
                }
            }
            None => {
                tx.batch_execute(sql).await?;
                tx.execute(
                    "INSERT INTO public.brightrun_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    &[version, name, &checksum],
                )
                .await?;
                applied.push(*version);
            }
        }
        tx.commit().await?;
    }
    Ok(applied)
}
