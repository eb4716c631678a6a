//! The Postgres mirror's backfill: N metrics points (with a dataset, a job, an artifact,
//! costs and notifications) copied from a fresh store into a fresh database by
//! `Engine::mirror_sync`, in rows per second, against `psql \copy` of the same rows from a
//! CSV into a table with the same indexes, in the same run.
//!
//! `cargo bench -p brightrun-engine --bench mirror_backfill` (1,000,000 points; `-- N` for
//! another size). Under `cargo test` it runs a smoke size. Needs PostgreSQL on
//! 127.0.0.1:5432 with trust auth (`BRIGHTRUN_BENCH_PG` for another) and `psql`.

use brightrun_engine::Engine;
use brightrun_engine::config::Config;
use brightrun_engine::ids::UserId;
use brightrun_engine::mirror::sample::write_sample;
use brightrun_engine::paths::Paths;
use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench");
    let n: usize = args
        .iter()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if bench { 1_000_000 } else { 5_000 });
    let server = std::env::var("BRIGHTRUN_BENCH_PG")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let name = format!("brightrun_bench_{}", uuid::Uuid::new_v4().simple());
    let admin = format!("{server} dbname=postgres");
    if let Err(e) = rt.block_on(exec(&admin, &format!("CREATE DATABASE {name}"))) {
        eprintln!("mirror_backfill: no PostgreSQL at `{server}` ({e}); skipped");
        return;
    }
    let url = format!("{server} dbname={name}");
    let result = run(&rt, &url, n, bench);
    let _ = rt.block_on(exec(
        &admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    ));
    if let Err(e) = result {
        eprintln!("mirror_backfill failed: {e}");
        std::process::exit(1);
    }
}

async fn exec(url: &str, sql: &str) -> Result<(), tokio_postgres::Error> {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    c.batch_execute(sql).await
}

async fn count(url: &str, sql: &str) -> Result<i64, tokio_postgres::Error> {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(c.query_one(sql, &[]).await?.get(0))
}

fn psql(url: &str, command: &str) -> Result<Duration, String> {
    let t = Instant::now();
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-qAtc", command])
        .output()
        .map_err(|e| format!("psql: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "psql {command}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(t.elapsed())
}

fn run(rt: &tokio::runtime::Runtime, url: &str, n: usize, bench: bool) -> Result<(), String> {
    let home = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut config = Config::default();
    config.profile.user_id = Some(UserId::new());
    config.mirror.url = Some(url.to_string());
    let engine = Engine::builder(Paths::under(home.path()))
        .config(config)
        .open()
        .map_err(|e| e.to_string())?;
    let t = Instant::now();
    write_sample(engine.store(), engine.profile_user(), n).map_err(|e| e.to_string())?;
    let store_secs = t.elapsed().as_secs_f64();

    let t = Instant::now();
    rt.block_on(engine.mirror_sync(Duration::from_secs(3600)))
        .map_err(|e| e.to_string())?;
    let mirror = t.elapsed().as_secs_f64();
    let rows = rt
        .block_on(count(url, "SELECT count(*) FROM metrics_points"))
        .map_err(|e| e.to_string())?;
    if rows != n as i64 {
        return Err(format!("{rows} metrics rows in PostgreSQL, expected {n}"));
    }

    // The baseline: the same rows as CSV, loaded by psql's \copy into a table with the same
    // primary key and unique index (no foreign key), in the same database.
    let csv = home.path().join("metrics.csv");
    let csv = csv.to_str().ok_or("a UTF-8 temp path")?;
    psql(
        url,
        &format!("\\copy (SELECT * FROM metrics_points) TO '{csv}' WITH (FORMAT csv)"),
    )?;
    psql(
        url,
        "CREATE TABLE metrics_copy (LIKE public.metrics_points INCLUDING DEFAULTS INCLUDING INDEXES)",
    )?;
    let copy = psql(
        url,
        &format!("\\copy metrics_copy FROM '{csv}' WITH (FORMAT csv)"),
    )?
    .as_secs_f64();
    let copied = rt
        .block_on(count(url, "SELECT count(*) FROM metrics_copy"))
        .map_err(|e| e.to_string())?;
    if copied != n as i64 {
        return Err(format!("psql copied {copied} rows, expected {n}"));
    }
    println!(
        "mirror backfill of {n} metrics points (+ 1 dataset, job, artifact, checkpoint, 2 costs, 2 notifications){}",
        if bench {
            ""
        } else {
            " [smoke size under cargo test]"
        }
    );
    println!("  writing them into redb (not timed below): {store_secs:.2} s");
    println!(
        "  brightrun mirror (backfill):   {mirror:>7.2} s  {:>9.0} rows/s",
        n as f64 / mirror
    );
    println!(
        "  psql \\copy from CSV (baseline): {copy:>7.2} s  {:>9.0} rows/s",
        n as f64 / copy
    );
    println!("  mirror / \\copy time: {:.2}x", mirror / copy);
    Ok(())
}
