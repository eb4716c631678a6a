//! The RunPod backend against a stand-in of RunPod's hosted Serverless API
//! (tests/fixtures/runpod_standin.py: its documented states, streaming, cancel, Bearer auth and
//! 429s) that runs the real worker (trainer/runpod/handler.py, through the runpod SDK) and the
//! real trainer on the tiny model, with the S3 test server for the presigned URLs. The worker
//! itself is also tested without the stand-in, through the SDK's own local test mode
//! (trainer/tests/test_runpod_worker.py).

mod common;
#[path = "../engine/tests/support/s3.rs"]
mod s3;

use common::{Daemon, Home, env_or_script, trainer_python, wait_until as wait};
use s3::{ACCESS_KEY, S3Server, SECRET_KEY};
use serde_json::Value;
use std::io::{BufRead, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "rp-test-key-5c1d";
const ENDPOINT: &str = "ep-brightrun";

/// The stand-in on a free port; stopped when dropped (its stdin closes).
struct StandIn {
    child: Child,
    port: u16,
}

impl StandIn {
    fn start() -> StandIn {
        let python = env_or_script("BRIGHTRUN_TOOLS_BIN", "scripts/tools-env.sh").join("python");
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut child = Command::new(&python)
            .arg(root.join("tests/fixtures/runpod_standin.py"))
            .args(["--port", "0", "--api-key", KEY, "--endpoint", ENDPOINT])
            .args([
                "--workers",
                "1",
                "--exit-on-stdin-eof",
                "--cancel-grace",
                "60",
            ])
            .env("BRIGHTRUN_TRAINER_PYTHON", trainer_python())
            .env("BRIGHTRUN_RUNPOD_PYTHON", &python)
            .env("HF_HUB_OFFLINE", "1")
            .env("TRANSFORMERS_OFFLINE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the stand-in starts");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the stand-in prints its port");
        StandIn { child, port }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn control(&self, path: &str, body: Value) -> Value {
        let r = http()
            .post(format!("{}/_standin/{path}", self.base()))
            .json(&body)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().unwrap_or(Value::Null)
    }

    fn record(&self, id: &str) -> Value {
        http()
            .get(format!("{}/_standin/jobs/{id}", self.base()))
            .send()
            .unwrap()
            .json()
            .unwrap()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn home(server: &S3Server, standin: &StandIn) -> Home {
    let home = Home::new(0);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(home.path().join("config/config.toml"))
        .unwrap();
    write!(
        f,
        "[storage]\nbackend = \"s3\"\n[storage.s3]\nendpoint = \"{}\"\nforce_path_style = true\n\
         retry_for_secs = 20\n\
         [backends.pod]\nkind = \"runpod\"\nendpoint_id = \"{ENDPOINT}\"\napi_url = \"{}/v2\"\n",
        server.endpoint(),
        standin.base()
    )
    .unwrap();
    home
}

fn cmd(home: &Home, key: &str) -> Command {
    let mut c = home.std_cmd();
    c.env("BRIGHTRUN_SECRET_S3_ACCESS_KEY_ID", ACCESS_KEY)
        .env("BRIGHTRUN_SECRET_S3_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("BRIGHTRUN_SECRET_RUNPOD_API_KEY", key)
        .env_remove("GPU_CLUSTER_API_KEY")
        .env_remove("GPU_CLUSTER_API_URL");
    c
}

fn json(home: &Home, args: &[&str], code: i32) -> Value {
    common::run_json(cmd(home, KEY), args, code)
}

fn pod_job(home: &Home, sets: &[&str]) -> String {
    let dataset = home.ready_dataset_with(60, |args| json(home, args, 0));
    common::backend_job(|args| json(home, args, 0), &dataset, "pod", sets)
}

#[test]
fn a_job_runs_on_runpod_and_loses_no_event_to_a_crash_or_a_429() {
    let server = S3Server::start(&["lora-datasets", "lora-models"]);
    let standin = StandIn::start();
    let home = home(&server, &standin);
    // Credentials are checked: a wrong key is `unauthorized`, the right one answers.
    let out = cmd(&home, "wrong")
        .args(["backends", "check", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "a refused key is not an outage");
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let pod = list
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "pod")
        .unwrap();
    assert_eq!(pod["health"]["failure"], "unauthorized", "{pod:#}");
    assert!(
        !out.stdout.windows(5).any(|w| w == b"wrong"),
        "the key is never shown"
    );
    json(&home, &["backends", "check", "--json"], 0);

    // The worker is busy: the job waits in RunPod's queue and says so.
    standin.control("pause", Value::Null);
    let job = pod_job(&home, &["epochs=2", "batch_size=1"]);
    let _daemon = Daemon::start(&home, cmd(&home, KEY));
    let ext = {
        let mut ext = String::new();
        wait(60, "the submission", || {
            let j = json(&home, &["jobs", "show", &job, "--json"], 0);
            ext = j["external_job_id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            !ext.is_empty()
        });
        ext
    };
    assert_eq!(standin.record(&ext)["status"], "IN_QUEUE");
    wait(30, "the job to show the queue", || {
        json(&home, &["jobs", "show", &job, "--json"], 0)["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("in RunPod's queue"))
    });
    // The next 5 stream items are lost (an engine that read them crashed before storing
    // them), and RunPod asks us to slow down for a while.
    standin.control(
        &format!("jobs/{ext}/drop-stream"),
        serde_json::json!({"count": 5}),
    );
    standin.control("resume", Value::Null);
    wait(300, "training to start", || {
        standin.record(&ext)["status"] == "IN_PROGRESS"
    });
    standin.control("fail-next", serde_json::json!({"status": 429, "count": 4}));
    let done = json(&home, &["jobs", "watch", &job, "--json"], 0);
    assert_eq!(done["status"], "completed", "{done:#}");
    assert_eq!(done["error_message"], Value::Null);
    let record = standin.record(&ext);
    assert!(
        record["dropped"].as_array().is_some_and(|d| d.len() == 5),
        "the stand-in dropped 5 items: {record:#}"
    );
    let total = done["total_steps"].as_u64().unwrap();
    assert_eq!(total, 108);
    let metrics = json(&home, &["jobs", "metrics", &job, "--json"], 0);
    let steps: Vec<u64> = metrics
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["step"].as_u64().unwrap())
        .collect();
    assert_eq!(
        steps,
        (1..=total).collect::<Vec<_>>(),
        "no step lost, none twice"
    );
    // Billed on RunPod's execution time.
    let exec_ms = record["executionTime"].as_f64().unwrap();
    let started =
        chrono::DateTime::parse_from_rfc3339(done["started_at"].as_str().unwrap()).unwrap();
    let ended =
        chrono::DateTime::parse_from_rfc3339(done["completed_at"].as_str().unwrap()).unwrap();
    let ours = (ended - started).num_milliseconds() as f64;
    assert!(
        (ours - exec_ms).abs() < 1500.0,
        "billed {ours} ms, ran {exec_ms} ms"
    );

    // The adapter came through the presigned PUT URLs and downloads.
    let models = json(&home, &["models", "list", "--json"], 0);
    let id = models[0]["id"].as_str().unwrap();
    let out_dir = home.path().join("download");
    json(
        &home,
        &[
            "models",
            "download",
            id,
            "--to",
            out_dir.to_str().unwrap(),
            "--json",
        ],
        0,
    );
    assert!(out_dir.join("adapter_model.safetensors").is_file());
    assert!(out_dir.join("adapter_config.json").is_file());
    // The evaluation ran on the worker, came up its presigned URL with the adapter, and was
    // read back from S3 into the model.
    assert!(out_dir.join("evaluation.json").is_file());
    let shown = json(&home, &["models", "show", id, "--json"], 0);
    let e = &shown["evaluation"];
    assert!(e["adapter_loss"].as_f64().is_some(), "{e:#}");
    assert!(!e["probes"].as_array().unwrap().is_empty(), "{e:#}");

    // `models eval` on the cluster: the adapter goes down through presigned GET URLs, the
    // comparison comes up through a presigned PUT, and the engine reads it back from S3.
    let prompts = home.path().join("prompts.jsonl");
    std::fs::write(
        &prompts,
        "{\"prompt\": \"What is 2 plus 2?\", \"completion\": \"2 plus 2 is 4.\"}\n",
    )
    .unwrap();
    let c = json(
        &home,
        &[
            "models",
            "eval",
            id,
            "--backend",
            "pod",
            "--prompts",
            prompts.to_str().unwrap(),
            "--max-new-tokens",
            "8",
            "--json",
        ],
        0,
    );
    assert_eq!(c["models"].as_array().unwrap().len(), 2, "{c:#}");
    assert_eq!(c["models"][1]["id"], id, "{c:#}");
    let answers = c["prompts"][0]["answers"].as_array().unwrap();
    assert_eq!(answers.len(), 2, "{c:#}");
    assert!(answers.iter().all(|a| a["score"].is_number()), "{c:#}");
    let jobs = json(&home, &["jobs", "list", "--json"], 0);
    let eval = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["task"]["kind"] == "evaluation")
        .unwrap();
    assert_eq!(eval["gpu_config"]["backend"], "pod", "{eval:#}");
    assert!(eval["final_cost"].as_f64().is_some(), "{eval:#}");
}

#[test]
fn a_cancel_reaches_the_trainer_on_runpod() {
    let server = S3Server::start(&["lora-datasets", "lora-models"]);
    let standin = StandIn::start();
    let home = home(&server, &standin);
    let job = pod_job(&home, &["epochs=3", "batch_size=1"]);
    let _daemon = Daemon::start(&home, cmd(&home, KEY));
    wait(300, "training metrics", || {
        json(&home, &["jobs", "show", &job, "--json"], 0)["current_step"]
            .as_u64()
            .is_some_and(|s| s >= 2)
    });
    let cancelled = json(&home, &["jobs", "cancel", &job, "--json"], 0);
    assert_eq!(cancelled["status"], "cancelled");
    let ext = cancelled["external_job_id"].as_str().unwrap().to_string();
    wait(120, "the worker to stop", || {
        !standin.record(&ext)["workerExitStatus"].is_null()
    });
    let record = standin.record(&ext);
    assert_eq!(record["status"], "CANCELLED");
    assert_eq!(
        record["workerExitStatus"], 143,
        "SIGTERM reached the trainer: {record:#}"
    );
    let everything: Vec<Value> = ["streamed", "pending", "late"]
        .iter()
        .flat_map(|k| record[*k].as_array().cloned().unwrap_or_default())
        .collect();
    assert!(
        everything
            .iter()
            .any(|e| e["type"] == "checkpoint" || e["output"]["type"] == "checkpoint"),
        "the trainer checkpointed before stopping: {record:#}"
    );
}

/// A worker preempted mid-run leaves its checkpoints in S3; the retry continues from the
/// latest on another backend (this machine), from the step after it.
#[test]
fn a_preempted_worker_is_continued_elsewhere_from_its_stored_checkpoint() {
    let server = S3Server::start(&["lora-datasets", "lora-models"]);
    let standin = StandIn::start();
    let home = home(&server, &standin);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(home.path().join("config/config.toml"))
        .unwrap();
    writeln!(f, "[training]\ncheckpoint_steps = 3").unwrap();
    let job = pod_job(&home, &["epochs=2", "batch_size=1"]);
    let _daemon = Daemon::start(&home, cmd(&home, KEY));
    let stored = || common::stored_checkpoints(|args| json(&home, args, 0), &job);
    wait(300, "a checkpoint stored in S3", || !stored().is_empty());
    let ext = json(&home, &["jobs", "show", &job, "--json"], 0)["external_job_id"]
        .as_str()
        .unwrap()
        .to_string();
    standin.control(&format!("jobs/{ext}/kill-worker"), Value::Null);
    wait(120, "the job to fail", || {
        json(&home, &["jobs", "show", &job, "--json"], 0)["status"] == "failed"
    });
    let latest = stored()
        .iter()
        .filter_map(|c| c["step"].as_u64())
        .max()
        .unwrap();
    // The latest checkpoint, in S3 only, makes a model that downloads and loads in PEFT.
    let step = latest.to_string();
    let model = json(
        &home,
        &["models", "from-checkpoint", &job, "--step", &step, "--json"],
        0,
    );
    let out_dir = tempfile::tempdir().unwrap();
    json(
        &home,
        &[
            "models",
            "download",
            model["id"].as_str().unwrap(),
            "--to",
            out_dir.path().to_str().unwrap(),
            "--json",
        ],
        0,
    );
    common::assert_loads_in_peft(out_dir.path(), "brightrun/tiny-random-llama");
    let retry = json(
        &home,
        &[
            "jobs",
            "retry",
            &job,
            "--backend",
            "local",
            "--yes",
            "--json",
        ],
        0,
    );
    assert_eq!(retry["gpu_config"]["backend"], "local", "{retry:#}");
    assert_eq!(retry["resumed_from"]["step"], latest, "{retry:#}");
    let resumed = retry["id"].as_str().unwrap();
    let done = json(&home, &["jobs", "watch", resumed, "--json"], 0);
    assert_eq!(done["status"], "completed", "{done:#}");
    let metrics = json(&home, &["jobs", "metrics", resumed, "--json"], 0);
    let first = metrics.as_array().unwrap()[0]["step"].as_u64();
    assert_eq!(first, Some(latest + 1), "{metrics:#}");
}
