//! The Ray backend against a real Ray head on loopback (scripts/ray-head.sh: `ray start --head`
//! on ports beside Redis's), the real trainer on the tiny model, and the S3 test server
//! (s3s-fs) for the presigned URLs the remote trainer reads the dataset from and writes the
//! adapter to. The daemon is a real `brightrun serve`, killed with SIGKILL mid-run; the
//! dashboard is reached through a loopback proxy the test pauses.

mod common;
#[path = "../engine/tests/support/s3.rs"]
mod s3;

use common::{
    Daemon, Home, aws_bin, env_or_script, sha256_file, trainer_python, wait_until as wait,
};
use s3::{ACCESS_KEY, S3Server, SECRET_KEY};
use serde_json::Value;
use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn ray_url() -> String {
    env_or_script("BRIGHTRUN_RAY_ADDRESS", "scripts/ray-head.sh")
        .to_string_lossy()
        .trim_end_matches('/')
        .to_string()
}

/// A TCP proxy in front of the Ray dashboard. `pause` drops every open connection and
/// refuses new ones (the head "restarting"); `resume` lets them through again.
struct Proxy {
    port: u16,
    paused: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(target: &str) -> Proxy {
        let target = target
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let paused = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (p, o) = (paused.clone(), open.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(client) = conn else { continue };
                if p.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                {
                    let mut o = o.lock().unwrap();
                    o.push(client.try_clone().unwrap());
                    o.push(server.try_clone().unwrap());
                }
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, paused, open }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }
}

fn serve(home: &Home) -> Daemon {
    let mut c = home.std_cmd();
    keys(&mut c);
    Daemon::start(home, c)
}

fn keys(c: &mut std::process::Command) -> &mut std::process::Command {
    c.env("BRIGHTRUN_SECRET_S3_ACCESS_KEY_ID", ACCESS_KEY)
        .env("BRIGHTRUN_SECRET_S3_SECRET_ACCESS_KEY", SECRET_KEY)
}

/// A home on the S3 server with a Ray backend `ray` at `address` (CPU-only: no GPUs asked
/// for; the trainer environment's Python named by path).
fn ray_home(server: &S3Server, address: &str) -> Home {
    ray_home_with(server, address, 0, "")
}

/// [`ray_home`] with `retries` automatic retries and `extra` config appended.
fn ray_home_with(server: &S3Server, address: &str, retries: u32, extra: &str) -> Home {
    let home = Home::new(retries);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(home.path().join("config/config.toml"))
        .unwrap();
    write!(
        f,
        "[storage]\nbackend = \"s3\"\n[storage.s3]\nendpoint = \"{}\"\nforce_path_style = true\n\
         retry_for_secs = 20\n\
         [backends.ray]\nkind = \"ray\"\naddress = \"{address}\"\nrequest_gpus = false\n\
         python = \"{}\"\n",
        server.endpoint(),
        trainer_python().display()
    )
    .unwrap();
    f.write_all(extra.as_bytes()).unwrap();
    home
}

fn run(home: &Home, args: &[&str]) -> std::process::Output {
    keys(&mut home.std_cmd()).args(args).output().unwrap()
}

fn json(home: &Home, args: &[&str], code: i32) -> Value {
    let mut c = home.std_cmd();
    keys(&mut c);
    common::run_json(c, args, code)
}

fn ready_dataset(home: &Home, n: usize) -> String {
    home.ready_dataset_with(n, |args| json(home, args, 0))
}

fn ray_job(home: &Home, dataset: &str, sets: &[&str]) -> String {
    common::backend_job(|args| json(home, args, 0), dataset, "ray", sets)
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Ray's record of a submission, straight from the dashboard.
fn ray_info(ray: &str, id: &str) -> Option<Value> {
    let r = http().get(format!("{ray}/api/jobs/{id}")).send().ok()?;
    r.status().is_success().then(|| r.json().unwrap())
}

fn ray_log(ray: &str, id: &str) -> String {
    http()
        .get(format!("{ray}/api/jobs/{id}/logs"))
        .send()
        .ok()
        .and_then(|r| r.json::<Value>().ok())
        .and_then(|v| v["logs"].as_str().map(String::from))
        .unwrap_or_default()
}

fn metric_steps_in(log: &str) -> Vec<u64> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "metric")
        .filter_map(|v| v["step"].as_u64())
        .collect()
}

fn steps(metrics: &Value) -> Vec<u64> {
    metrics
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["step"].as_u64().unwrap())
        .collect()
}

#[test]
fn a_job_trains_on_ray_through_presigned_urls_across_an_engine_kill_and_an_outage() {
    let ray = ray_url();
    let server = S3Server::start(&["lora-datasets", "lora-models"]);
    let proxy = Proxy::start(&ray);
    let home = ray_home(&server, &proxy.url());
    let mut daemon = serve(&home);

    let list = json(&home, &["backends", "check", "--json"], 0);
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "ray")
        .expect("the ray entry")
        .clone();
    assert_eq!(entry["kind"], "ray");
    assert_eq!(entry["data"], "urls");
    assert_eq!(entry["health"]["reachable"], true, "{entry:#}");
    assert!(
        entry["health"]["detail"]
            .as_str()
            .unwrap()
            .contains("Ray 2."),
        "{entry:#}"
    );

    let dataset = ready_dataset(&home, 60);
    // batch 1 over 54 training examples, 2 epochs: 108 steps, long enough to interrupt.
    let job = ray_job(&home, &dataset, &["epochs=2", "batch_size=1"]);
    // The engine's job id is Ray's submission id.
    wait(120, "the submission on Ray", || {
        ray_info(&ray, &job).is_some()
    });
    wait(300, "the first metrics in Ray's log", || {
        metric_steps_in(&ray_log(&ray, &job)).len() >= 3
    });

    // The engine dies mid-run; the trainer goes on on Ray without it.
    daemon.kill9();
    let seen = metric_steps_in(&ray_log(&ray, &job)).len();
    wait(120, "the trainer to go on alone", || {
        metric_steps_in(&ray_log(&ray, &job)).len() > seen
    });
    let mut daemon = serve(&home);
    // The restarted engine catches up from its stored cursor.
    wait(120, "the restarted engine to catch up", || {
        let j = json(&home, &["jobs", "show", &job, "--json"], 0);
        j["status"] == "running" && j["current_step"].as_u64().unwrap_or(0) as usize > seen
    });

    // The dashboard goes away: the job is not failed, and says its cluster is unreachable.
    proxy.pause();
    wait(60, "the job to say its cluster is unreachable", || {
        let j = json(&home, &["jobs", "show", &job, "--json"], 0);
        assert_eq!(j["status"], "running", "{j:#}");
        j["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("unreachable"))
    });
    let out = run(&home, &["backends", "check", "--json"]);
    assert_eq!(out.status.code(), Some(3), "an unreachable backend exits 3");
    // The run finishes on Ray while the engine cannot see it.
    wait(600, "the run to end on Ray", || {
        ray_info(&ray, &job).is_some_and(|i| i["status"] == "SUCCEEDED")
    });
    let j = json(&home, &["jobs", "show", &job, "--json"], 0);
    assert_eq!(
        j["status"], "running",
        "not failed while unreachable: {j:#}"
    );

    // It answers again: the engine catches up on every event it missed.
    proxy.resume();
    let done = json(&home, &["jobs", "watch", &job, "--json"], 0);
    assert_eq!(done["status"], "completed", "{done:#}");
    assert_eq!(done["error_message"], Value::Null, "{done:#}");
    let total = done["total_steps"].as_u64().unwrap();
    assert_eq!(total, 108);
    let metrics = json(&home, &["jobs", "metrics", &job, "--json"], 0);
    assert_eq!(
        steps(&metrics),
        (1..=total).collect::<Vec<_>>(),
        "every step once, in order"
    );
    // The cost runs on Ray's clock.
    let info = ray_info(&ray, &job).unwrap();
    let ray_secs =
        (info["end_time"].as_i64().unwrap() - info["start_time"].as_i64().unwrap()) as f64 / 1000.0;
    let started =
        chrono::DateTime::parse_from_rfc3339(done["started_at"].as_str().unwrap()).unwrap();
    let ended =
        chrono::DateTime::parse_from_rfc3339(done["completed_at"].as_str().unwrap()).unwrap();
    let ours = (ended - started).num_milliseconds() as f64 / 1000.0;
    assert!(
        (ours - ray_secs).abs() < 1.5,
        "billed {ours} s, Ray ran {ray_secs} s"
    );
    assert!(done["final_cost"].as_f64().unwrap() > 0.0);

    // The adapter went up through the presigned URLs into the models bucket; it downloads
    // and loads in PEFT.
    let models = json(&home, &["models", "list", "--json"], 0);
    assert_eq!(models.as_array().unwrap().len(), 1);
    let model = &models[0];
    let id = model["id"].as_str().unwrap();
    // The evaluation ran on the Ray worker and came up its presigned URL with the adapter.
    let shown = json(&home, &["models", "show", id, "--json"], 0);
    let e = &shown["evaluation"];
    assert!(
        e["adapter_loss"].as_f64().is_some() && e["base_loss"].as_f64().is_some(),
        "{e:#}"
    );
    assert!(!e["probes"].as_array().unwrap().is_empty(), "{e:#}");
    let stored = server
        .root
        .path()
        .join("lora-models/lora-models")
        .join(model["user_id"].as_str().unwrap())
        .join(id);
    let stored = if stored.exists() {
        stored
    } else {
        server
            .root
            .path()
            .join("lora-models")
            .join(model["user_id"].as_str().unwrap())
            .join(id)
    };
    assert!(
        stored.join("adapter_model.safetensors").is_file(),
        "the adapter is in the models bucket at {}",
        stored.display()
    );
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
    common::assert_loads_in_peft(&out_dir, "brightrun/tiny-random-llama");
    daemon.kill9();
}

#[test]
fn a_cancel_reaches_the_trainer_on_ray_which_checkpoints_and_stops() {
    let ray = ray_url();
    let server = S3Server::start(&["lora-datasets", "lora-models"]);
    let home = ray_home(&server, &ray);
    let _daemon = serve(&home);
    let dataset = ready_dataset(&home, 60);
    let job = ray_job(&home, &dataset, &["epochs=3", "batch_size=1"]);
    wait(300, "the first metrics in Ray's log", || {
        metric_steps_in(&ray_log(&ray, &job)).len() >= 2
    });
    let cancelled = json(&home, &["jobs", "cancel", &job, "--json"], 0);
    assert_eq!(cancelled["status"], "cancelled");
    wait(120, "Ray to stop the job", || {
        ray_info(&ray, &job).is_some_and(|i| i["status"] == "STOPPED")
    });
    let log = ray_log(&ray, &job);
    assert!(
        log.lines().any(|l| l.contains("\"type\":\"checkpoint\"")),
        "the trainer checkpointed before stopping:\n{log}"
    );
    assert!(
        log.contains("stopped by signal 15"),
        "the trainer got SIGTERM and said so:\n{log}"
    );
    // Its stop checkpoint went to S3 after the job was cancelled, and is recorded: a retry
    // continues from the step it stopped at.
    let stopped: u64 = log
        .split("stopped by signal 15 at step ")
        .nth(1)
        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the step it stopped at:\n{log}"));
    wait(60, "the stop checkpoint recorded", || {
        stored_checkpoints(&home, &job)
            .iter()
            .any(|c| c["step"] == stopped)
    });
    let retry = json(&home, &["jobs", "retry", &job, "--yes", "--json"], 0);
    assert_eq!(retry["resumed_from"]["step"], stopped, "{retry:#}");
    json(
        &home,
        &["jobs", "cancel", retry["id"].as_str().unwrap(), "--json"],
        0,
    );
}

/// The trainer process of a job on this machine's Ray worker (its environment names the job).
fn trainer_pid(job: &str) -> Option<i32> {
    let want = format!("BRIGHTRUN_JOB_ID={job}");
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        let environ = std::fs::read(e.path().join("environ")).ok()?;
        let ours = String::from_utf8_lossy(&cmdline).contains("brightrun_trainer")
            && environ.split(|b| *b == 0).any(|v| v == want.as_bytes());
        ours.then_some(pid)
    })
}

/// The job's stored checkpoints (those with a sha256), as `jobs show` lists them.
fn stored_checkpoints(home: &Home, job: &str) -> Vec<Value> {
    common::stored_checkpoints(|args| json(home, args, 0), job)
}

#[test]
fn a_trainer_killed_on_ray_is_retried_from_its_checkpoint_in_s3() {
    let ray = ray_url();
    let server = S3Server::start(&["lora-datasets", "lora-models"]);
    // Retention keeps them all here, so the ones read back are still there.
    let extra = "[training]\ncheckpoint_steps = 3\nkeep_checkpoints = 100\n";
    let home = ray_home_with(&server, &ray, 1, extra);
    let _daemon = serve(&home);
    let dataset = ready_dataset(&home, 120);
    let job = ray_job(&home, &dataset, &["epochs=2", "batch_size=1"]);
    wait(300, "two checkpoints stored in S3", || {
        stored_checkpoints(&home, &job).len() >= 2
    });
    // The trainer dies on the cluster (no checkpoint of its own on the way out).
    let pid = trainer_pid(&job).unwrap_or_else(|| {
        panic!(
            "the trainer's process on the Ray worker: {:?}",
            ray_info(&ray, &job)
        )
    });
    // SAFETY: killing the trainer process this test's job started.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    // Each is an object in the models bucket, as recorded: read back with the AWS CLI.
    let scratch = tempfile::tempdir().unwrap();
    for c in stored_checkpoints(&home, &job) {
        let key = c["storage_path"].as_str().unwrap();
        assert!(key.contains(&format!("/checkpoints/{job}/")), "{c:#}");
        let copy = scratch.path().join("checkpoint.tar");
        server.aws(
            &aws_bin(),
            &[
                "s3",
                "cp",
                &format!("s3://lora-models/{key}"),
                copy.to_str().unwrap(),
            ],
        );
        assert_eq!(sha256_file(&copy), c["sha256"].as_str().unwrap(), "{c:#}");
        assert_eq!(
            std::fs::metadata(&copy).unwrap().len(),
            c["size"].as_u64().unwrap()
        );
    }
    let done = json(&home, &["jobs", "watch", &job, "--json"], 0);
    assert_eq!(done["status"], "completed", "{done:#}");
    assert_eq!(done["retry_count"], 1, "{done:#}");
    // The retry fetched a stored checkpoint and trained on from the step after it.
    let retried = ray_log(&ray, &format!("{job}-retry-1"));
    let resumed: u64 = retried
        .split("/resumed-")
        .nth(1)
        .and_then(|t| t.split('/').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the retry resumed from a stored checkpoint:\n{retried}"));
    assert!(resumed >= 3, "{retried}");
    assert_eq!(
        metric_steps_in(&retried).first(),
        Some(&(resumed + 1)),
        "{retried}"
    );
    let total = done["total_steps"].as_u64().unwrap();
    let metrics = json(&home, &["jobs", "metrics", &job, "--json"], 0);
    assert_eq!(
        steps(&metrics),
        (1..=total).collect::<Vec<_>>(),
        "every step once"
    );
}

#[test]
fn remote_backends_are_configured_checked_and_refused_without_urls() {
    // No Ray needed: a backend at a port nobody listens on, and the local folder store.
    let dead = s3::free_port();
    let home = Home::new(0);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(home.path().join("config/config.toml"))
        .unwrap();
    write!(
        f,
        "[backends.ray]\nkind = \"ray\"\naddress = \"http://127.0.0.1:{dead}\"\n\
         [backends.gpu-pod]\nkind = \"runpod\"\nendpoint_id = \"abc123\"\napi_url = \"http://127.0.0.1:{dead}/v2\"\n"
    )
    .unwrap();
    drop(f);
    let out = home
        .cmd()
        .args(["backends", "check", "--json"])
        .env_remove("BRIGHTRUN_SECRET_RUNPOD_API_KEY")
        .env_remove("GPU_CLUSTER_API_KEY")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let by = |n: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|b| b["name"] == n)
            .unwrap_or_else(|| panic!("{n} in {list:#}"))
            .clone()
    };
    assert_eq!(by("local")["health"]["reachable"], true);
    assert_eq!(by("local")["default"], true);
    assert_eq!(by("ray")["health"]["failure"], "unreachable");
    assert_eq!(by("gpu-pod")["kind"], "runpod");
    assert_eq!(by("gpu-pod")["health"]["failure"], "unauthorized");
    assert!(
        by("gpu-pod")["health"]["detail"]
            .as_str()
            .unwrap()
            .contains("BRIGHTRUN_SECRET_RUNPOD_API_KEY")
    );
    // A remote backend with the local folder store is refused up front, saying what to do.
    let dataset = home.ready_dataset(10);
    let mut args = common::tiny_job_args(&dataset, &[]);
    args.extend(["--backend".into(), "ray".into()]);
    let out = home.cmd().args(&args).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("S3") && err.contains("shared_filesystem"),
        "{err}"
    );
    // A backend nobody configured is refused with the ones that exist.
    let mut args = common::tiny_job_args(&dataset, &[]);
    args.extend(["--backend".into(), "nope".into()]);
    let out = home.cmd().args(&args).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown backend `nope`") && err.contains("ray"),
        "{err}"
    );
}

/// An export runs on Ray like a training job (issue 27): the trainer there reads the adapter
/// through presigned GET URLs and writes the merged model through the PUT URLs the engine
/// presigned for every name an export may write; the engine checks what arrived in S3
/// (sizes, sha256) before it records the model, which downloads from S3 and loads as a plain
/// transformers model.
#[test]
fn an_export_runs_on_ray_through_presigned_urls() {
    let ray = ray_url();
    let server = S3Server::start(&["lora-datasets", "lora-models"]);
    let home = ray_home(&server, &ray);
    let _daemon = serve(&home);
    let dataset = ready_dataset(&home, 24);
    let job = ray_job(&home, &dataset, &["epochs=1"]);
    let done = json(&home, &["jobs", "watch", &job, "--json"], 0);
    assert_eq!(done["status"], "completed", "{done:#}");
    let adapter = done["artifact_id"].as_str().unwrap().to_string();

    let queued = json(
        &home,
        &[
            "models",
            "export",
            &adapter,
            "--format",
            "merged",
            "--dtype",
            "f32",
            "--backend",
            "ray",
            "--yes",
            "--json",
        ],
        0,
    );
    let export_job = queued["id"].as_str().unwrap().to_string();
    assert_eq!(queued["gpu_config"]["backend"], "ray", "{queued:#}");
    let done = json(&home, &["jobs", "watch", &export_job, "--json"], 0);
    assert_eq!(done["status"], "completed", "{done:#}");
    // It ran on Ray: the cluster has the submission, and its log the export's stages.
    assert!(ray_info(&ray, &export_job).is_some());
    assert!(ray_log(&ray, &export_job).contains("\"evaluating\""));
    let model = json(
        &home,
        &[
            "models",
            "show",
            done["artifact_id"].as_str().unwrap(),
            "--json",
        ],
        0,
    );
    assert_eq!(model["kind"], "merged", "{model:#}");
    assert_eq!(model["parent_model_id"], adapter.as_str());
    assert_eq!(model["export"]["passed"], true, "{model:#}");
    let to = home.path().join("merged");
    json(
        &home,
        &[
            "models",
            "download",
            &model["id"].as_str().unwrap()[..8],
            "--to",
            to.to_str().unwrap(),
            "--json",
        ],
        0,
    );
    for f in model["files"].as_array().unwrap() {
        let path = to.join(f["path"].as_str().unwrap());
        assert_eq!(
            common::sha256_file(&path),
            f["sha256"],
            "{}",
            path.display()
        );
    }
    let out = std::process::Command::new(trainer_python())
        .args([
            "-c",
            "import sys; from transformers import AutoModelForCausalLM; m = AutoModelForCausalLM.from_pretrained(sys.argv[1]); print(type(m).__name__, hasattr(m, 'peft_config'))",
            to.to_str().unwrap(),
        ])
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "LlamaForCausalLM False"
    );
}
