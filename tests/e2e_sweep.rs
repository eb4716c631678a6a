//! A hyperparameter sweep on the local backend, through a daemon, feeding the change log's
//! durable consumers with real peers: a real MLflow tracking server (stopped mid-run and
//! started again), TensorBoard event files read back with `tensorboard`'s own reader, and a
//! webhook receiver verifying every signature with the `standardwebhooks` package (down while
//! the sweep runs, and the daemon SIGKILLed with deliveries pending).

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn tracking_bin() -> PathBuf {
    env_or_script("BRIGHTRUN_TRACKING_BIN", "scripts/tracking-env.sh")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A child in its own process group, killed with its group when dropped.
struct Group(Child);

impl Group {
    fn spawn(mut cmd: Command) -> Group {
        Group(cmd.process_group(0).spawn().unwrap())
    }
    fn kill(&mut self, signal: i32) {
        // SAFETY: signalling the process group of a child we spawned.
        unsafe {
            libc::kill(-(self.0.id() as i32), signal);
        }
        let _ = self.0.wait();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.kill(libc::SIGKILL);
        }
    }
}

fn mlflow_server(dir: &Path, port: u16) -> Group {
    let mut cmd = Command::new("bash");
    cmd.arg(fixture("mlflow_server.sh"))
        .arg(dir)
        .arg(port.to_string())
        .env("BRIGHTRUN_TRACKING_BIN", tracking_bin())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let g = Group::spawn(cmd);
    let url = format!("http://127.0.0.1:{port}/health");
    wait_until(120, "the MLflow server", || {
        reqwest::blocking::get(&url).is_ok_and(|r| r.status().is_success())
    });
    g
}

fn receiver(port: u16, log: &Path) -> Group {
    let mut cmd = Command::new(tracking_bin().join("python"));
    cmd.arg(fixture("webhook_receiver.py"))
        .args(["--port", &port.to_string(), "--secret", SECRET, "--log"])
        .arg(log)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let g = Group::spawn(cmd);
    wait_until(60, "the webhook receiver", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    g
}

fn mlflow(port: u16, path: &str, body: Value) -> Value {
    reqwest::blocking::Client::new()
        .post(format!("http://127.0.0.1:{port}/api/2.0/mlflow/{path}"))
        .json(&body)
        .send()
        .unwrap()
        .json()
        .unwrap()
}

fn mlflow_get(port: u16, path: &str, query: &[(&str, &str)]) -> Value {
    reqwest::blocking::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/2.0/mlflow/{path}"))
        .query(query)
        .send()
        .unwrap()
        .json()
        .unwrap()
}

/// The webhook receiver's log lines.
fn received(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// (step, training loss) of a job, as BrightRun stored them.
fn losses(home: &Home, job: &str) -> Vec<(u64, f64)> {
    let points = home.json(&["jobs", "metrics", job, "--json"], 0);
    points
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| Some((p["step"].as_u64()?, p["training_loss"].as_f64()?)))
        .collect()
}

#[test]
fn a_sweep_feeds_mlflow_tensorboard_and_webhooks_through_outages() {
    let home = Home::new(0);
    let (mlflow_port, hook_port) = (free_port(), free_port());
    let mlflow_dir = home.path().join("mlflow");
    let mut server = mlflow_server(&mlflow_dir, mlflow_port);
    let tb = home.path().join("tb");
    let config = home.path().join("config/config.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "[tracking.mlflow]\nuri = \"http://127.0.0.1:{mlflow_port}\"\nexperiment = \"e2e\"\n\
         [tracking.tensorboard]\ndir = \"{}\"\n\
         [[webhooks]]\nname = \"ops\"\nurl = \"http://127.0.0.1:{hook_port}/hook?token=t0ps3cret\"\nsecret = \"ops_hook\"\n",
        tb.display()
    ));
    std::fs::write(&config, text).unwrap();
    let daemon_cmd = || {
        let mut c = home.std_cmd();
        c.env("BRIGHTRUN_SECRET_OPS_HOOK", SECRET);
        c
    };
    let mut daemon = Daemon::start(&home, daemon_cmd());

    let dataset = home.ready_dataset(24);
    let sweep = home.json(
        &[
            "jobs",
            "sweep",
            "--dataset",
            &dataset,
            "--preset",
            "fast",
            "--gpu",
            "A10G",
            "--set",
            "base_model=brightrun/tiny-random-llama",
            "--set",
            "epochs=1",
            "--grid",
            "learning_rate=2e-4,5e-5",
            "--grid",
            "lora_rank=4,8",
            "--max-parallel",
            "2",
            "--yes",
            "--json",
        ],
        0,
    );
    let id = sweep["id"].as_str().unwrap().to_string();
    assert_eq!(sweep["runs"].as_array().unwrap().len(), 4, "{sweep:#}");
    let started = |s: &Value| {
        s["runs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["job_id"].is_string())
            .count()
    };
    assert_eq!(started(&sweep), 2, "two at a time: {sweep:#}");

    // MLflow goes away while the first runs train, and comes back after one has finished.
    let show = || home.json(&["sweeps", "show", &id, "--json"], 0);
    let first_job = sweep["runs"][0]["job_id"].as_str().unwrap().to_string();
    wait_until(300, "the first run's first points", || {
        !losses(&home, &first_job).is_empty()
    });
    server.kill(libc::SIGTERM);
    wait_until(300, "a run to finish", || {
        home.json(&["jobs", "show", &first_job, "--json"], 0)["status"] != "running"
            && home.json(&["jobs", "show", &first_job, "--json"], 0)["status"] != "queued"
    });
    let tracking = |name: &str| -> Value {
        let all = home.json(&["tracking", "status", "--json"], 0);
        all.as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap()
    };
    wait_until(120, "the MLflow consumer to report the outage", || {
        tracking("mlflow")["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("MLflow at"))
    });
    let mut server = mlflow_server(&mlflow_dir, mlflow_port);

    wait_until(900, "the sweep to complete", || {
        show()["status"] == "completed"
    });
    let done = show();
    let jobs: Vec<String> = done["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["job_id"].as_str().expect("every run started").to_string())
        .collect();
    for j in &jobs {
        assert_eq!(
            home.json(&["jobs", "show", j, "--json"], 0)["status"],
            "completed"
        );
    }
    assert_eq!(done["best_by"], "validation_loss", "{done:#}");
    let best = done["best_job_id"].as_str().unwrap();
    let ids: Vec<&str> = jobs.iter().map(String::as_str).collect();
    let mut args = vec!["jobs", "compare"];
    args.extend(&ids);
    args.push("--json");
    let c = home.json(&args, 0);
    assert_eq!(
        c["differing"],
        serde_json::json!(["learning_rate", "lora_rank"]),
        "{c:#}"
    );
    assert_eq!(c["best"], best, "the sweep's best is the comparison's");
    let shown = home.cmd().args(["jobs", "show", best]).output().unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("its best run") && shown.contains(&id[..8]),
        "{shown}"
    );

    // The daemon dies with every delivery still pending (the receiver has been down all
    // along); after a restart, with the receiver up, every event arrives, each id once.
    let pending = home.json(&["webhooks", "deliveries", "--json"], 0);
    assert!(
        pending
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["state"] == "pending"),
        "{pending:#}"
    );
    daemon.kill9();
    let log = home.path().join("hooks.jsonl");
    let _receiver = receiver(hook_port, &log);
    let _daemon = Daemon::start(&home, daemon_cmd());
    let mut expected: BTreeSet<(String, String)> = BTreeSet::new();
    for j in &jobs {
        for kind in ["job.queued", "job.started", "job.completed"] {
            expected.insert((kind.to_string(), j.clone()));
        }
        let model = home.json(&["jobs", "show", j, "--json"], 0)["artifact_id"]
            .as_str()
            .unwrap()
            .to_string();
        expected.insert(("model.ready".into(), model));
    }
    let arrived = |log: &Path| -> BTreeSet<(String, String)> {
        received(log)
            .iter()
            .filter(|l| l["verified"] == true && l["status"] == 204)
            .map(|l| {
                (
                    l["type"].as_str().unwrap_or("").to_string(),
                    l["body"]["data"]["id"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    wait_until(300, "every webhook event", || {
        expected.is_subset(&arrived(&log))
    });
    let lines = received(&log);
    assert!(
        lines.iter().all(|l| l["verified"] == true),
        "every signature verifies"
    );
    let delivered: Vec<&str> = lines
        .iter()
        .filter(|l| l["status"] == 204)
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    let unique: BTreeSet<&&str> = delivered.iter().collect();
    assert_eq!(unique.len(), delivered.len(), "each id delivered once");
    assert!(lines.iter().all(|l| l["path"] == "/hook?token=t0ps3cret"));
    let list = home.json(&["webhooks", "list", "--json"], 0);
    assert_eq!(list[0]["secret_present"], true);
    let shown = list.to_string();
    assert!(
        !shown.contains("t0ps3cret") && !shown.contains("MfKQ9r8"),
        "{shown}"
    );
    let test = home.json(&["webhooks", "test", "ops", "--json"], 0);
    assert_eq!(test["state"], "delivered", "{test:#}");

    // MLflow: a run per job, its params, and every point once, as BrightRun has them.
    let exp = mlflow_get(
        mlflow_port,
        "experiments/get-by-name",
        &[("experiment_name", "e2e")],
    );
    let exp_id = exp["experiment"]["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let run_of = |job: &str| -> Value {
        let found = mlflow(
            mlflow_port,
            "runs/search",
            serde_json::json!({"experiment_ids": [exp_id], "filter": format!("tags.`brightrun.job_id` = '{job}'")}),
        );
        let runs = found["runs"].as_array().cloned().unwrap_or_default();
        assert!(runs.len() <= 1, "one run per job: {found:#}");
        runs.into_iter().next().unwrap_or(Value::Null)
    };
    let history = |run: &str| -> Vec<(u64, f64)> {
        let h = mlflow_get(
            mlflow_port,
            "metrics/get-history",
            &[("run_id", run), ("metric_key", "train_loss")],
        );
        let mut v: Vec<(u64, f64)> = h["metrics"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|m| {
                (
                    m["step"].as_u64().unwrap_or(0),
                    m["value"].as_f64().unwrap(),
                )
            })
            .collect();
        v.sort_by_key(|(s, _)| *s);
        v
    };
    for j in &jobs {
        let ours = losses(&home, j);
        wait_until(120, "MLflow to hold every point", || {
            let r = run_of(j);
            r["info"]["status"] == "FINISHED"
                && history(r["info"]["run_id"].as_str().unwrap_or("")).len() >= ours.len()
        });
        let run = run_of(j);
        assert_eq!(
            history(run["info"]["run_id"].as_str().unwrap()),
            ours,
            "job {j}"
        );
        let params: BTreeMap<String, String> = run["data"]["params"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["key"].as_str().unwrap().into(),
                    p["value"].as_str().unwrap().into(),
                )
            })
            .collect();
        let h = &c["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == j.as_str())
            .unwrap()["hyperparameters"];
        assert_eq!(
            params["lora_rank"],
            h["lora_rank"].to_string(),
            "{params:?}"
        );
        let tags = run["data"]["tags"].to_string();
        assert!(
            tags.contains("brightrun.model_id") && tags.contains("brightrun.cost_usd"),
            "{tags}"
        );
    }
    wait_until(60, "the MLflow consumer to catch up", || {
        let m = tracking("mlflow");
        m["behind"] == 0 && m["last_error"].is_null()
    });
    assert_eq!(tracking("tensorboard")["behind"], 0);
    server.kill(libc::SIGTERM);

    // TensorBoard: each job's folder read back with tensorboard's own reader.
    wait_until(60, "the TensorBoard files", || {
        jobs.iter()
            .all(|j| tb.join(j).join("brightrun.pos").exists())
    });
    let out = Command::new(tracking_bin().join("python"))
        .arg(fixture("tb_read.py"))
        .arg(&tb)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Value = serde_json::from_slice(&out.stdout).unwrap();
    for j in &jobs {
        let ours = losses(&home, j);
        let theirs = read[j.as_str()]["train_loss"].as_array().unwrap();
        assert_eq!(theirs.len(), ours.len(), "job {j}: {theirs:?}");
        for ((step, v), t) in ours.iter().zip(theirs) {
            assert_eq!(t[0].as_u64(), Some(*step));
            assert!((t[1].as_f64().unwrap() - v).abs() < 1e-5 * v.abs().max(1.0));
        }
    }
}
