//! The mirror through the real binary: `brightrun mirror sync` killed with SIGKILL in the
//! middle of its backfill, run again, then `mirror verify` (clean, then not, exit 1), against
//! the real PostgreSQL on this machine (a fresh database, dropped afterwards). The password
//! given in secrets never appears in any output.

use brightrun_engine::Engine;
use brightrun_engine::mirror::sample::write_sample;
use brightrun_engine::paths::Paths;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SERVER: &str = "host=127.0.0.1 port=5432 user=postgres";
const PASSWORD: &str = "never-shown-4f1c9d2e7a";

fn psql_client() -> postgres_like::Client {
    postgres_like::Client::new()
}

/// Blocking SQL over a private runtime (the test drives a child process meanwhile).
mod postgres_like {
    pub struct Client {
        rt: tokio::runtime::Runtime,
    }
    impl Client {
        pub fn new() -> Self {
            Self {
                rt: tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap(),
            }
        }
        pub fn exec(&self, url: &str, sql: &str) -> Result<(), tokio_postgres::Error> {
            self.rt.block_on(async {
                let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
                tokio::spawn(conn);
                c.batch_execute(sql).await
            })
        }
        pub fn count(&self, url: &str, sql: &str) -> i64 {
            self.rt.block_on(async {
                let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(conn);
                c.query_one(sql, &[])
                    .await
                    .map(|r| r.get::<_, i64>(0))
                    .unwrap_or(0)
            })
        }
    }
}

struct Db {
    name: String,
}

impl Db {
    fn new() -> Self {
        let name = format!("brightrun_test_{}", uuid::Uuid::new_v4().simple());
        psql_client()
            .exec(
                &format!("{SERVER} dbname=postgres"),
                &format!("CREATE DATABASE {name}"),
            )
            .unwrap();
        Self { name }
    }
    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = psql_client().exec(
            &format!("{SERVER} dbname=postgres"),
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

fn brightrun(home: &Path) -> Command {
    let mut c = Command::new(assert_cmd::cargo::cargo_bin("brightrun"));
    c.env("BRIGHTRUN_HOME", home)
        .env("BRIGHTRUN_SECRET_MIRROR_PASSWORD", PASSWORD)
        .env_remove("BRIGHTRUN_ENGINE")
        .stdin(Stdio::null());
    c
}

fn run(home: &Path, args: &[&str], code: i32) -> Output {
    let out = brightrun(home).args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(code), "brightrun {args:?}:\n{text}");
    assert!(!text.contains(PASSWORD), "the password was shown:\n{text}");
    out
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_sync_killed_mid_backfill_resumes_with_nothing_lost_or_twice() {
    let db = Db::new();
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("config")).unwrap();
    std::fs::write(
        home.path().join("config/config.toml"),
        format!("[mirror]\nurl = \"{}\"\n", db.url()),
    )
    .unwrap();
    let points = 300_000;
    {
        let engine = Engine::open(Paths::under(home.path())).unwrap();
        write_sample(engine.store(), engine.profile_user(), points).unwrap();
    }
    let pg = psql_client();
    let url = format!("{SERVER} dbname={}", db.name);

    let mut child = brightrun(home.path())
        .args(["mirror", "sync", "--timeout", "600"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n = pg.count(&url, "SELECT count(*) FROM metrics_points");
        if n > 0 {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            let n = pg.count(&url, "SELECT count(*) FROM metrics_points");
            assert!(n < points as i64, "the sync finished before the kill");
            break;
        }
        assert!(Instant::now() < deadline, "the backfill never started");
        assert!(child.try_wait().unwrap().is_none(), "the sync ended early");
        std::thread::sleep(Duration::from_millis(10));
    }

    let s = json(&run(home.path(), &["mirror", "sync", "--json"], 0));
    assert_eq!(s["behind"], 0, "{s}");
    assert_eq!(s["target"], format!("postgres@127.0.0.1:5432/{}", db.name));
    let v = json(&run(home.path(), &["mirror", "verify", "--json"], 0));
    assert_eq!(v["clean"], true, "{v}");
    assert_eq!(
        pg.count(&url, "SELECT count(*) FROM metrics_points"),
        points as i64
    );
    assert_eq!(
        pg.count(
            &url,
            "SELECT count(*) FROM (SELECT DISTINCT job_id, step FROM metrics_points) x"
        ),
        points as i64
    );
    let s = json(&run(home.path(), &["mirror", "status", "--json"], 0));
    assert_eq!(s["state"], "in_sync", "{s}");

    // A point lost behind the mirror's back: verify names the job and exits 1.
    pg.exec(&url, "DELETE FROM metrics_points WHERE step = 77")
        .unwrap();
    let v = json(&run(home.path(), &["mirror", "verify", "--json"], 1));
    assert_eq!(v["clean"], false);
    let m = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "metrics_points")
        .unwrap();
    assert_eq!(m["different_count"], 1, "{m}");
    assert_eq!(m["remote_rows"], points as i64 - 1);
    let text = run(home.path(), &["mirror", "verify"], 1);
    assert!(String::from_utf8_lossy(&text.stdout).contains("DIFFERENT"));

    // A password in config.toml is refused, and not echoed.
    std::fs::write(
        home.path().join("config/config.toml"),
        format!(
            "[mirror]\nurl = \"postgres://postgres:{PASSWORD}@127.0.0.1:5432/{}\"\n",
            db.name
        ),
    )
    .unwrap();
    let out = run(home.path(), &["mirror", "status"], 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("mirror_password"));
}

#[test]
fn migrate_applies_the_schema_before_any_engine_connects_and_a_dry_run_prints_its_sql() {
    let home_with = |db: &Db| {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join("config")).unwrap();
        std::fs::write(
            home.path().join("config/config.toml"),
            format!("[mirror]\nurl = \"{}\"\n", db.url()),
        )
        .unwrap();
        home
    };
    let pg = psql_client();
    let tables = |db: &Db| {
        pg.count(
            &format!("{SERVER} dbname={}", db.name),
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'training_jobs'",
        )
    };

    // A dry run applies nothing: the SQL comes on stdout, and a DBA applies it by hand.
    let by_hand = Db::new();
    let home = home_with(&by_hand);
    let out = run(home.path(), &["mirror", "migrate", "--dry-run"], 0);
    let sql = String::from_utf8(out.stdout).unwrap();
    assert!(sql.contains("-- 0002_tables.sql"), "{sql}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("8 pending"));
    assert_eq!(tables(&by_hand), 0, "a dry run created tables");
    pg.exec(&format!("{SERVER} dbname={}", by_hand.name), &sql)
        .unwrap();
    assert_eq!(tables(&by_hand), 1);
    // The engine then finds every migration applied, with the same checksums.
    let r = json(&run(home.path(), &["mirror", "migrate", "--json"], 0));
    let states: Vec<&str> = r["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["applied"; 8], "{r:#}");
    assert!(
        r["migrations"][0].get("recorded_checksum").is_none(),
        "{r:#}"
    );

    // Without --dry-run it applies them itself, once.
    let fresh = Db::new();
    let home = home_with(&fresh);
    let r = json(&run(home.path(), &["mirror", "migrate", "--json"], 0));
    assert_eq!(r["migrations"][4]["state"], "applied_now", "{r:#}");
    assert_eq!(tables(&fresh), 1);
    let r = json(&run(home.path(), &["mirror", "migrate", "--json"], 0));
    assert_eq!(r["migrations"][4]["state"], "applied", "{r:#}");
    let dry = run(home.path(), &["mirror", "migrate", "--dry-run"], 0);
    assert!(dry.stdout.is_empty(), "nothing pending, no SQL");

    // No mirror configured: a clear refusal.
    let bare = tempfile::tempdir().unwrap();
    let out = run(bare.path(), &["mirror", "migrate"], 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("mirror"));
}
