//! The Postgres mirror against the real PostgreSQL server on this machine (127.0.0.1:5432,
//! trust auth), a fresh database per test, dropped afterwards; the outage test runs its own
//! throwaway cluster (`initdb` + `pg_ctl`) so it can stop and start it.

use brightrun_engine::Engine;
use brightrun_engine::config::Config;
use brightrun_engine::domain::{
    DpoLoss, ExportCheck, ExportDtype, ExportFormat, ExportTask, JobTask, MetricsPoint,
    ModelArtifact, ModelKind, PreferenceMetrics, Sweep, SweepRun, SweepSpec, SweepStatus,
    TrainingMethod, now,
};
use brightrun_engine::ids::{SweepId, UserId};
use brightrun_engine::mirror::sample::{Sample, write_sample};
use brightrun_engine::mirror::{MirrorState, migrate};
use brightrun_engine::paths::Paths;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_postgres::{Client, NoTls};

const SERVER: &str = "host=127.0.0.1 port=5432 user=postgres";

/// A fresh database on a server, dropped when the test ends (even when it fails).
struct TestDb {
    server: String,
    name: String,
}

impl TestDb {
    async fn new(server: &str) -> Self {
        let name = format!("brightrun_test_{}", uuid::Uuid::new_v4().simple());
        let admin = connect(&format!("{server} dbname=postgres")).await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        Self {
            server: server.to_string(),
            name,
        }
    }
    fn url(&self) -> String {
        format!("{} dbname={}", self.server, self.name)
    }
    async fn client(&self) -> Client {
        connect(&self.url()).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok((c, conn)) =
                    tokio_postgres::connect(&format!("{server} dbname=postgres"), NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = c
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

async fn connect(url: &str) -> Client {
    let (c, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(conn);
    c
}

/// An engine on a temp home whose `[mirror] url` is `url`.
fn engine(home: &Path, url: &str) -> Engine {
    let mut config = Config::default();
    config.profile.user_id = Some(UserId::new());
    config.mirror.url = Some(url.to_string());
    Engine::builder(Paths::under(home))
        .config(config)
        .open()
        .unwrap()
}

async fn count(c: &Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).await.unwrap().get(0)
}

async fn sync(e: &Engine, secs: u64) {
    e.mirror_sync(Duration::from_secs(secs)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_once_and_hold_every_seed_column() {
    let db = TestDb::new(SERVER).await;
    let mut c = db.client().await;
    assert_eq!(migrate(&mut c).await.unwrap(), vec![1, 2, 3, 4, 5, 6, 7, 8]);
    assert!(
        migrate(&mut c).await.unwrap().is_empty(),
        "second run is a no-op"
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM brightrun_migrations").await,
        8
    );

    // Every column the seed's app reads, with a type of the same family.
    let int = &["integer", "bigint", "smallint"][..];
    let num = &["numeric", "double precision", "real", "integer", "bigint"][..];
    let text = &["text", "character varying"][..];
    let uuid = &["uuid"][..];
    let ts = &["timestamp with time zone"][..];
    let json = &["jsonb"][..];
    let boolean = &["boolean"][..];
    let date = &["date"][..];
    type Columns<'a> = &'a [(&'a str, &'a [&'a str])];
    let seed: &[(&str, Columns)] = &[
        (
            "datasets",
            &[
                ("id", uuid),
                ("user_id", uuid),
                ("name", text),
                ("description", text),
                ("format", text),
                ("status", text),
                ("storage_bucket", text),
                ("storage_path", text),
                ("file_name", text),
                ("file_size", int),
                ("total_training_pairs", int),
                ("total_validation_pairs", int),
                ("total_tokens", int),
                ("avg_turns_per_conversation", num),
                ("avg_tokens_per_turn", num),
                ("training_ready", boolean),
                ("validated_at", ts),
                ("validation_errors", json),
                ("sample_data", json),
                ("created_at", ts),
                ("updated_at", ts),
                ("deleted_at", ts),
            ],
        ),
        (
            "training_jobs",
            &[
                ("id", uuid),
                ("user_id", uuid),
                ("dataset_id", uuid),
                ("preset_id", text),
                ("hyperparameters", json),
                ("gpu_config", json),
                ("status", text),
                ("current_stage", text),
                ("progress", num),
                ("current_epoch", int),
                ("total_epochs", int),
                ("current_step", int),
                ("total_steps", int),
                ("current_metrics", json),
                ("queued_at", ts),
                ("started_at", ts),
                ("completed_at", ts),
                ("estimated_completion_at", ts),
                ("current_cost", num),
                ("estimated_total_cost", num),
                ("final_cost", num),
                ("error_message", text),
                ("error_stack", text),
                ("retry_count", int),
                ("external_job_id", text),
                ("artifact_id", uuid),
                ("created_at", ts),
                ("updated_at", ts),
            ],
        ),
        (
            "metrics_points",
            &[
                ("id", uuid),
                ("job_id", uuid),
                ("timestamp", ts),
                ("epoch", num),
                ("step", int),
                ("training_loss", num),
                ("validation_loss", num),
                ("learning_rate", num),
                ("gradient_norm", num),
                ("throughput", num),
                ("gpu_utilization", num),
            ],
        ),
        (
            "model_artifacts",
            &[
                ("id", uuid),
                ("user_id", uuid),
                ("job_id", uuid),
                ("dataset_id", uuid),
                ("name", text),
                ("version", text),
                ("description", text),
                ("status", text),
                ("deployed_at", ts),
                ("quality_metrics", json),
                ("training_summary", json),
                ("configuration", json),
                ("artifacts", json),
                ("parent_model_id", uuid),
                ("created_at", ts),
                ("updated_at", ts),
                ("deleted_at", ts),
            ],
        ),
        (
            "cost_records",
            &[
                ("id", uuid),
                ("user_id", uuid),
                ("job_id", uuid),
                ("cost_type", text),
                ("amount", num),
                ("details", json),
                ("billing_period", date),
                ("recorded_at", ts),
            ],
        ),
        (
            "notifications",
            &[
                ("id", uuid),
                ("user_id", uuid),
                ("type", text),
                ("title", text),
                ("message", text),
                ("priority", text),
                ("read", boolean),
                ("action_url", text),
                ("metadata", json),
                ("created_at", ts),
            ],
        ),
        (
            "training_checkpoints",
            &[
                ("id", uuid),
                ("job_id", uuid),
                ("checkpoint_step", int),
                ("epoch", num),
                ("training_loss", num),
                ("validation_loss", num),
                ("learning_rate", num),
                ("storage_path", text),
                ("created_at", ts),
            ],
        ),
    ];
    for (table, columns) in seed {
        let rows = c
            .query(
                "SELECT column_name::text, data_type::text FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name = $1",
                &[table],
            )
            .await
            .unwrap();
        let have: std::collections::HashMap<String, String> =
            rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        for (col, types) in *columns {
            let t = have
                .get(*col)
                .unwrap_or_else(|| panic!("{table}.{col} is missing"));
            assert!(
                types.contains(&t.as_str()),
                "{table}.{col} is {t}, expected one of {types:?}"
            );
        }
    }
    // The uniques the seed names.
    for (table, cols) in [
        ("datasets", "storage_path"),
        ("training_jobs", "external_job_id"),
        ("model_artifacts", "job_id"),
        ("training_checkpoints", "job_id, checkpoint_step"),
    ] {
        let n = count(
            &c,
            &format!(
                "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' AND tablename = '{table}' \
                 AND indexdef LIKE 'CREATE UNIQUE INDEX%({cols})'"
            ),
        )
        .await;
        assert_eq!(n, 1, "{table} has a unique index on ({cols})");
    }
    // RLS is on for all seven, and auth.uid() reads the JWT claims.
    let rls = count(
        &c,
        "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relrowsecurity \
         AND relname IN ('datasets','training_jobs','metrics_points','model_artifacts','cost_records','notifications','training_checkpoints')",
    )
    .await;
    assert_eq!(rls, 7);
    let who = uuid::Uuid::new_v4();
    c.execute(
        "SELECT set_config('request.jwt.claims', $1, false)",
        &[&format!("{{\"sub\":\"{who}\"}}")],
    )
    .await
    .unwrap();
    let uid: uuid::Uuid = c.query_one("SELECT auth.uid()", &[]).await.unwrap().get(0);
    assert_eq!(uid, who);
}

/// Values of the sample's rows as PostgreSQL holds them.
async fn check_values(c: &Client, s: &Sample) {
    let d = c
        .query_one(
            "SELECT name, status, storage_path, total_training_pairs, total_tokens, avg_tokens_per_turn, \
             training_ready, validation_errors->0->>'error', sample_data->0->0->>'content', user_id \
             FROM datasets WHERE id = $1",
            &[&s.dataset.id.0],
        )
        .await
        .unwrap();
    assert_eq!(d.get::<_, String>(0), s.dataset.name);
    assert_eq!(d.get::<_, String>(1), "ready");
    assert_eq!(d.get::<_, String>(2), s.dataset.storage_path);
    assert_eq!(d.get::<_, i32>(3), 900);
    assert_eq!(d.get::<_, i64>(4), 250_000);
    assert_eq!(d.get::<_, f64>(5), 76.5);
    assert!(d.get::<_, bool>(6));
    assert_eq!(d.get::<_, String>(7), "empty reply");
    assert_eq!(d.get::<_, String>(8), "hello");
    assert_eq!(d.get::<_, uuid::Uuid>(9), s.dataset.user_id.0);

    let j = c
        .query_one(
            "SELECT status, current_stage, progress::float8, final_cost::float8, external_job_id, artifact_id, \
             hyperparameters->>'lora_rank', gpu_config->>'gpu_type', total_steps, dataset_id \
             FROM training_jobs WHERE id = $1",
            &[&s.job.id.0],
        )
        .await
        .unwrap();
    assert_eq!(j.get::<_, String>(0), "completed");
    assert_eq!(j.get::<_, String>(1), "completed");
    assert_eq!(j.get::<_, f64>(2), 100.0);
    assert_eq!(j.get::<_, f64>(3), 11.75);
    assert_eq!(j.get::<_, String>(4), s.job.id.to_string());
    assert_eq!(j.get::<_, uuid::Uuid>(5), s.artifact.id.0);
    assert_eq!(j.get::<_, String>(6), "16");
    assert_eq!(j.get::<_, String>(7), "A100-80GB");
    assert_eq!(j.get::<_, i32>(8) as usize, s.metrics);
    assert_eq!(j.get::<_, uuid::Uuid>(9), s.dataset.id.0);

    let m = c
        .query_one(
            "SELECT count(*), count(DISTINCT step), min(step), max(step), sum(training_loss), \
             count(validation_loss) FROM metrics_points WHERE job_id = $1",
            &[&s.job.id.0],
        )
        .await
        .unwrap();
    assert_eq!(m.get::<_, i64>(0) as usize, s.metrics);
    assert_eq!(m.get::<_, i64>(1) as usize, s.metrics);
    assert_eq!(m.get::<_, i32>(2), 0);
    assert_eq!(m.get::<_, i32>(3) as usize, s.metrics - 1);
    let want: f64 = (0..s.metrics).map(|i| 2.0 / (1.0 + i as f64 * 0.001)).sum();
    assert!((m.get::<_, f64>(4) - want).abs() < 1e-6 * want);
    assert_eq!(m.get::<_, i64>(5) as usize, s.metrics.div_ceil(100));
    // One point exactly, floats bit for bit.
    let p = c
        .query_one(
            "SELECT training_loss, learning_rate, epoch, timestamp FROM metrics_points WHERE job_id = $1 AND step = 1234",
            &[&s.job.id.0],
        )
        .await
        .unwrap();
    assert_eq!(p.get::<_, f64>(0), 2.0 / (1.0 + 1234.0 * 0.001));
    assert_eq!(p.get::<_, f64>(1), 5e-5 * (1.0 - 1234.0 / s.metrics as f64));
    assert_eq!(p.get::<_, f64>(2), 1234.0 * 3.0 / s.metrics as f64);
    let ts: chrono::DateTime<chrono::Utc> = p.get(3);
    assert_eq!(
        ts.timestamp_micros(),
        (s.dataset.created_at + chrono::Duration::milliseconds(1234)).timestamp_micros()
    );

    let a = c
        .query_one(
            "SELECT name, version, status, job_id, quality_metrics->>'quality_score', artifacts->'files'->0->>'path', \
             (quality_metrics->'evaluation'->>'adapter_loss')::float8 \
             FROM model_artifacts WHERE id = $1",
            &[&s.artifact.id.0],
        )
        .await
        .unwrap();
    assert_eq!(a.get::<_, String>(0), "support-bot");
    assert_eq!(a.get::<_, String>(1), "1");
    assert_eq!(a.get::<_, String>(2), "stored");
    assert_eq!(a.get::<_, uuid::Uuid>(3), s.job.id.0);
    assert_eq!(a.get::<_, String>(4), "5");
    assert_eq!(a.get::<_, String>(5), "adapter_model.safetensors");
    // The run's evaluation rides in quality_metrics.
    assert_eq!(a.get::<_, Option<f64>>(6), Some(1.25));

    let costs = c
        .query(
            "SELECT cost_type, amount::float8, billing_period::text, job_id FROM cost_records WHERE user_id = $1 ORDER BY amount DESC",
            &[&s.dataset.user_id.0],
        )
        .await
        .unwrap();
    assert_eq!(costs.len(), 2);
    assert_eq!(costs[0].get::<_, String>(0), "compute");
    assert_eq!(costs[0].get::<_, f64>(1), 11.25);
    assert_eq!(
        costs[0].get::<_, String>(2),
        format!("{}-01", s.costs[0].billing_period)
    );
    assert_eq!(costs[0].get::<_, Option<uuid::Uuid>>(3), Some(s.job.id.0));
    assert_eq!(costs[1].get::<_, String>(0), "storage");

    let n = c
        .query_one(
            "SELECT type, priority, read, action_url, metadata->>'quality_score' FROM notifications WHERE id = $1",
            &[&s.notifications[0].id.0],
        )
        .await
        .unwrap();
    assert_eq!(n.get::<_, String>(0), "job_completed");
    assert_eq!(n.get::<_, String>(1), "high");
    assert!(!n.get::<_, bool>(2));
    assert_eq!(
        n.get::<_, String>(3),
        format!("/training/jobs/{}", s.job.id)
    );
    assert_eq!(n.get::<_, String>(4), "5");

    let k = c
        .query_one(
            "SELECT checkpoint_step, training_loss, storage_path, brightrun_size, brightrun_sha256 FROM training_checkpoints WHERE id = $1",
            &[&s.checkpoint.id.0],
        )
        .await
        .unwrap();
    assert_eq!(k.get::<_, i32>(0) as u64, s.checkpoint.step);
    assert_eq!(k.get::<_, Option<f64>>(1), Some(0.8));
    assert_eq!(k.get::<_, String>(2), s.checkpoint.storage_path);
    assert_eq!(
        k.get::<_, Option<i64>>(3).map(|n| n as u64),
        s.checkpoint.size
    );
    assert_eq!(k.get::<_, Option<String>>(4), s.checkpoint.sha256);
    let users = count(
        c,
        &format!(
            "SELECT count(*) FROM auth.users WHERE id = '{}'",
            s.dataset.user_id
        ),
    )
    .await;
    assert_eq!(users, 1);
}

/// A sweep's row: status, name, runs, spent.
async fn sweep_row(c: &Client, id: uuid::Uuid) -> (String, String, serde_json::Value, f64) {
    let r = c
        .query_one(
            "SELECT status, name, runs, spent FROM brightrun_sweeps WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1), r.get(2), r.get(3))
}

fn sweep_sample(user: UserId) -> Sweep {
    let t = now();
    Sweep {
        id: SweepId::new(),
        user_id: user,
        name: "lr sweep".into(),
        spec: SweepSpec::default(),
        status: SweepStatus::Running,
        runs: vec![SweepRun {
            sets: vec![("learning_rate".into(), "1e-4".into())],
            job_id: None,
            skipped: None,
            estimated_cost: 0.5,
        }],
        best_job_id: None,
        best_by: None,
        spent: 0.25,
        created_at: t,
        updated_at: t,
        completed_at: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_reaches_postgres_with_its_values_and_verify_is_clean() {
    let db = TestDb::new(SERVER).await;
    let home = tempfile::tempdir().unwrap();
    let e = engine(home.path(), &db.url());
    let s = write_sample(e.store(), e.profile_user(), 10_000).unwrap();
    let mut sweep = sweep_sample(e.profile_user());
    e.store().write(|w| w.put_sweep(&sweep)).unwrap();
    // The backfill (first start) copies all of it.
    sync(&e, 120).await;
    let c = db.client().await;
    check_values(&c, &s).await;
    let (status, name, runs, spent) = sweep_row(&c, sweep.id.0).await;
    assert_eq!(
        (status.as_str(), name.as_str(), spent),
        ("running", "lr sweep", 0.25)
    );
    assert_eq!(
        runs[0]["sets"][0],
        serde_json::json!(["learning_rate", "1e-4"])
    );
    // A sweep's change after the backfill is followed like any record's.
    sweep.status = SweepStatus::Cancelled;
    e.store().write(|w| w.put_sweep(&sweep)).unwrap();
    sync(&e, 60).await;
    assert_eq!(sweep_row(&c, sweep.id.0).await.0, "cancelled");
    // An export of the sample's model carries its kind and check; the adapter is `adapter`.
    // It has its own export job (the seed keeps one model per job).
    let mut export_job = s.job.clone();
    export_job.id = brightrun_engine::ids::JobId::new();
    export_job.external_job_id = Some(export_job.id.to_string());
    export_job.task = JobTask::Export(Box::new(ExportTask {
        model: s.artifact.id,
        format: ExportFormat::Gguf,
        dtype: ExportDtype::F16,
        quantize: None,
        ollama: false,
        name: "support-bot-gguf".into(),
        system_prompt: None,
    }));
    e.store().put(&export_job).unwrap();
    let export = ModelArtifact {
        id: brightrun_engine::ids::ArtifactId::new(),
        job_id: export_job.id,
        parent_model_id: Some(s.artifact.id),
        kind: ModelKind::Gguf,
        export: Some(ExportCheck {
            passed: true,
            checked: "greedy".into(),
            agreement: Some(1.0),
            prompts: 3,
            tokens: Some(8),
            ..Default::default()
        }),
        ..s.artifact.clone()
    };
    e.store().put(&export).unwrap();
    sync(&e, 60).await;
    let row = c
        .query_one(
            "SELECT brightrun_kind, brightrun_export->>'agreement', parent_model_id FROM model_artifacts WHERE id = $1",
            &[&export.id.0],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "gguf");
    assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some("1.0"));
    assert_eq!(row.get::<_, Option<uuid::Uuid>>(2), Some(s.artifact.id.0));
    let adapter_kind: String = c
        .query_one(
            "SELECT brightrun_kind FROM model_artifacts WHERE id = $1",
            &[&s.artifact.id.0],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(adapter_kind, "adapter");
    let report = e.mirror_verify().await.unwrap();
    assert!(report.clean, "{report:#?}");
    assert_eq!(report.tables.len(), 7);
    let m = report
        .tables
        .iter()
        .find(|t| t.table == "metrics_points")
        .unwrap();
    assert_eq!((m.local_rows, m.remote_rows), (10_000, 10_000));

    // A DPO run: its method in the seed's hyperparameters column, its rewards beside the seed's
    // metrics columns (which stay as they were).
    let mut dpo = s.job.clone();
    dpo.id = brightrun_engine::ids::JobId::new();
    dpo.external_job_id = Some(dpo.id.to_string());
    dpo.hyperparameters.method = TrainingMethod::Dpo {
        beta: 0.2,
        loss_type: DpoLoss::Ipo,
    };
    e.store().put(&dpo).unwrap();
    let point = MetricsPoint {
        job_id: dpo.id,
        timestamp: dpo.created_at,
        epoch: 0.5,
        step: 1,
        training_loss: Some(0.625),
        validation_loss: None,
        learning_rate: Some(2e-5),
        gradient_norm: None,
        throughput: Some(900.0),
        gpu_utilization: None,
        preference: Some(PreferenceMetrics {
            rewards_chosen: Some(0.25),
            rewards_rejected: Some(-0.5),
            reward_margin: Some(0.75),
            reward_accuracy: Some(0.875),
            ..Default::default()
        }),
    };
    e.store()
        .write(|w| w.put_metrics(std::slice::from_ref(&point)))
        .unwrap();
    sync(&e, 60).await;
    let row = c
        .query_one(
            "SELECT j.hyperparameters->'method'->>'name', j.hyperparameters->'method'->>'loss_type', \
             (m.brightrun_preference->>'reward_accuracy')::float8, m.training_loss \
             FROM training_jobs j JOIN metrics_points m ON m.job_id = j.id WHERE j.id = $1",
            &[&dpo.id.0],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0).as_deref(), Some("dpo"));
    assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some("ipo"));
    assert_eq!(row.get::<_, Option<f64>>(2), Some(0.875));
    assert_eq!(row.get::<_, Option<f64>>(3), point.training_loss);
    let sft_rewards: i64 = c
        .query_one(
            "SELECT count(*) FROM metrics_points WHERE job_id = $1 AND brightrun_preference IS NOT NULL",
            &[&s.job.id.0],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        sft_rewards, 0,
        "an SFT run's steps have no preference figures"
    );

    // Following the log: a change after the backfill replaces the row; PostgreSQL's
    // position moves with it.
    let mut n = s.notifications[0].clone();
    n.read = true;
    e.store().put(&n).unwrap();
    sync(&e, 60).await;
    let read: bool = c
        .query_one("SELECT read FROM notifications WHERE id = $1", &[&n.id.0])
        .await
        .unwrap()
        .get(0);
    assert!(read);
    let status = e.mirror_status().unwrap();
    assert_eq!(status.behind, 0);
    assert_eq!(status.acked_seq, e.store().last_seq().unwrap());
    assert_eq!(
        e.store().acked_changes("postgres_mirror").unwrap(),
        Some(status.acked_seq)
    );
    let pg_seq: i64 = c
        .query_one("SELECT seq FROM brightrun_mirror_state", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(pg_seq as u64, status.acked_seq);

    // Replays (a batch re-sent after a crash, a position set back) change nothing, and an
    // older version never overwrites a newer row: here the row claims a seq from the future.
    c.execute(
        "UPDATE notifications SET title = 'newer', brightrun_seq = 1000000000 WHERE id = $1",
        &[&n.id.0],
    )
    .await
    .unwrap();
    c.execute("UPDATE brightrun_mirror_state SET seq = 0", &[])
        .await
        .unwrap();
    sync(&e, 60).await;
    let title: String = c
        .query_one("SELECT title FROM notifications WHERE id = $1", &[&n.id.0])
        .await
        .unwrap()
        .get(0);
    assert_eq!(title, "newer", "an older change overwrote a newer row");
    assert_eq!(
        count(&c, "SELECT count(*) FROM metrics_points").await,
        // The sample's, and the DPO run's one step.
        10_001,
        "replayed metrics are not duplicated"
    );
    c.execute(
        "UPDATE notifications SET title = $2 WHERE id = $1",
        &[&n.id.0, &n.title],
    )
    .await
    .unwrap();

    // A row changed behind the mirror's back is reported, by id.
    c.execute(
        "UPDATE training_jobs SET updated_at = updated_at + interval '1 second' WHERE id = $1",
        &[&s.job.id.0],
    )
    .await
    .unwrap();
    c.execute(
        "DELETE FROM cost_records WHERE id = $1",
        &[&s.costs[1].id.0],
    )
    .await
    .unwrap();
    let report = e.mirror_verify().await.unwrap();
    assert!(!report.clean);
    let jobs = report
        .tables
        .iter()
        .find(|t| t.table == "training_jobs")
        .unwrap();
    assert_eq!(jobs.different, vec![s.job.id.to_string()]);
    let costs = report
        .tables
        .iter()
        .find(|t| t.table == "cost_records")
        .unwrap();
    assert_eq!(costs.missing, vec![s.costs[1].id.to_string()]);
    assert_eq!((costs.local_rows, costs.remote_rows), (2, 1));
    let clean_elsewhere = report
        .tables
        .iter()
        .filter(|t| !["training_jobs", "cost_records"].contains(&t.table.as_str()))
        .all(|t| t.is_clean());
    assert!(clean_elsewhere, "{report:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_share_a_database_and_rls_shows_each_user_only_their_rows() {
    let db = TestDb::new(SERVER).await;
    let (ha, hb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (engine(ha.path(), &db.url()), engine(hb.path(), &db.url()));
    let sa = write_sample(a.store(), a.profile_user(), 300).unwrap();
    let sb = write_sample(b.store(), b.profile_user(), 200).unwrap();
    // Both at once: the migrations take turns, the rows do not collide.
    let (ra, rb) = tokio::join!(
        a.mirror_sync(Duration::from_secs(60)),
        b.mirror_sync(Duration::from_secs(60))
    );
    ra.unwrap();
    rb.unwrap();
    for e in [&a, &b] {
        let r = e.mirror_verify().await.unwrap();
        assert!(r.clean, "{r:#?}");
    }
    let c = db.client().await;
    assert_eq!(count(&c, "SELECT count(*) FROM metrics_points").await, 500);

    // As each user: the `authenticated` role (RLS applies) and the JWT claims of the session.
    let tables = [
        "datasets",
        "training_jobs",
        "metrics_points",
        "model_artifacts",
        "cost_records",
        "notifications",
        "training_checkpoints",
    ];
    let mut seen = std::collections::HashMap::new();
    for (s, other) in [(&sa, &sb), (&sb, &sa)] {
        let me = s.dataset.user_id.0;
        let u = db.client().await;
        u.batch_execute("SET ROLE authenticated").await.unwrap();
        u.execute(
            "SELECT set_config('request.jwt.claims', $1, false)",
            &[&serde_json::json!({"sub": me.to_string(), "role": "authenticated"}).to_string()],
        )
        .await
        .unwrap();
        for t in tables {
            let rows = count(&u, &format!("SELECT count(*) FROM {t}")).await;
            let owned = if t == "metrics_points" || t == "training_checkpoints" {
                count(
                    &c,
                    &format!(
                        "SELECT count(*) FROM {t} x JOIN training_jobs j ON j.id = x.job_id WHERE j.user_id = '{me}'"
                    ),
                )
                .await
            } else {
                count(
                    &c,
                    &format!("SELECT count(*) FROM {t} WHERE user_id = '{me}'"),
                )
                .await
            };
            assert!(rows > 0, "{t}: user sees none of their rows");
            assert_eq!(rows, owned, "{t}: user sees rows that are not theirs");
            seen.insert((me, t), rows);
        }
        // Another user's rows, by id: invisible.
        let n = count(
            &u,
            &format!(
                "SELECT count(*) FROM datasets WHERE id = '{}'",
                other.dataset.id
            ),
        )
        .await;
        assert_eq!(n, 0);
        let n = count(
            &u,
            &format!(
                "SELECT count(*) FROM metrics_points WHERE job_id = '{}'",
                other.job.id
            ),
        )
        .await;
        assert_eq!(n, 0);
        // Writing a row for the other user is refused.
        let err = u
            .execute(
                "INSERT INTO datasets (id, user_id, name, storage_path, file_name) VALUES ($1, $2, 'x', $3, 'x.jsonl')",
                &[&uuid::Uuid::new_v4(), &other.dataset.user_id.0, &format!("forged/{}", uuid::Uuid::new_v4())],
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
            "{err}"
        );
        let err = u
            .execute(
                "INSERT INTO metrics_points (id, job_id, step) VALUES ($1, $2, 999999)",
                &[&uuid::Uuid::new_v4(), &other.job.id.0],
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
            "{err}"
        );
        // Nor can a user move another's row to themselves.
        let moved = u
            .execute(
                "UPDATE notifications SET user_id = $1 WHERE user_id <> $1",
                &[&me],
            )
            .await
            .unwrap();
        assert_eq!(moved, 0);
    }
    assert_eq!(seen[&(sa.dataset.user_id.0, "metrics_points")], 300);
    assert_eq!(seen[&(sb.dataset.user_id.0, "metrics_points")], 200);
}

/// A throwaway PostgreSQL cluster on its own port, to stop and start at will.
struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
    bin: PathBuf,
}

impl Cluster {
    fn new() -> Self {
        let bin = PathBuf::from(
            std::env::var("BRIGHTRUN_PG_BIN")
                .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into()),
        );
        let dir = tempfile::tempdir().unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let data = dir.path().join("data");
        // initdb refuses to run as root; run it (and the server) as the postgres user then.
        let out = Self::as_owner(&bin.join("initdb"), dir.path())
            .args([
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let c = Cluster { dir, port, bin };
        c.start();
        c
    }

    fn as_owner(program: &Path, dir: &Path) -> std::process::Command {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        if root {
            let _ = std::process::Command::new("chown")
                .args(["-R", "postgres:postgres", dir.to_str().unwrap()])
                .status();
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            std::process::Command::new(program)
        }
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("log");
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let out = Self::as_owner(&self.bin.join("pg_ctl"), self.dir.path())
            .args([
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &opts,
                "-w",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    fn start(&self) {
        self.pg_ctl(&["start"]);
    }
    fn stop(&self) {
        self.pg_ctl(&["stop", "-m", "immediate"]);
    }
    fn server(&self) -> String {
        format!("host=127.0.0.1 port={} user=postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = Self::as_owner(&self.bin.join("pg_ctl"), self.dir.path())
            .args(["-D", data.to_str().unwrap(), "stop", "-m", "immediate"])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_stopped_mid_sync_is_caught_up_with_nothing_lost_or_twice() {
    let cluster = Cluster::new();
    let db = TestDb::new(&cluster.server()).await;
    let home = tempfile::tempdir().unwrap();
    let e = engine(home.path(), &db.url());
    let user = e.profile_user();
    // Enough rows that the backfill takes a while.
    write_sample(e.store(), user, 300_000).unwrap();
    let tasks = e.start();
    let c = db.client().await;
    // Stop the server once the backfill has copied some metrics, not all.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let n = c
            .query_one("SELECT count(*) FROM metrics_points", &[])
            .await
            .map(|r| r.get::<_, i64>(0))
            .unwrap_or(0);
        if n > 0 {
            assert!(n < 300_000, "the backfill finished before the stop");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the backfill never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(c);
    cluster.stop();
    // The engine goes on: more changes commit while PostgreSQL is down.
    let more = write_sample(e.store(), user, 5_000).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        let s = e.mirror_status().unwrap();
        if s.state == MirrorState::Unreachable {
            break s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never unreachable: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.behind > 0);
    assert!(status.last_error.is_some());
    // A sync must reach the database before it says anything: it says the database is down.
    let err = e.mirror_sync(Duration::from_secs(1)).await.unwrap_err();
    assert!(
        err.to_string().contains("PostgreSQL at") && err.to_string().contains("refused"),
        "{err}"
    );

    cluster.start();
    sync(&e, 180).await;
    let r = e.mirror_verify().await.unwrap();
    assert!(r.clean, "{r:#?}");
    let c = db.client().await;
    assert_eq!(
        count(&c, "SELECT count(*) FROM metrics_points").await,
        305_000
    );
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM (SELECT DISTINCT job_id, step FROM metrics_points) x"
        )
        .await,
        305_000
    );
    assert_eq!(count(&c, "SELECT count(*) FROM training_jobs").await, 2);
    assert_eq!(count(&c, "SELECT count(*) FROM notifications").await, 4);
    let id: uuid::Uuid = c
        .query_one(
            "SELECT id FROM model_artifacts WHERE job_id = $1",
            &[&more.job.id.0],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(id, more.artifact.id.0);
    assert_eq!(e.mirror_status().unwrap().state, MirrorState::InSync);
    e.shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(10), tasks).await;
}
