//! Shared helpers for the end-to-end tests: the real binary, a temporary BRIGHTRUN_HOME, the
//! real trainer environment.
#![allow(dead_code)]
pub mod tmux;

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The trainer's Python: `BRIGHTRUN_TRAINER_PYTHON` (scripts/test.sh sets it), otherwise the
/// shared environment built by scripts/trainer-env.sh (once per machine).
pub fn trainer_python() -> PathBuf {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| env_or_script("BRIGHTRUN_TRAINER_PYTHON", "scripts/trainer-env.sh"))
        .clone()
}

/// The path in `var` (scripts/test.sh sets it), otherwise the last line printed by `script`,
/// which builds what it names once per machine.
pub fn env_or_script(var: &str, script: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("bash")
        .arg(root.join(script))
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(text.lines().last().expect("a path").trim())
}

pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    /// A fresh BRIGHTRUN_HOME with a config suited to tests: fast polling and no retries
    /// (unless `retries` says otherwise).
    pub fn new(retries: u32) -> Self {
        Self::new_in(&std::env::temp_dir(), retries)
    }

    /// [`Home::new`] in a folder of `parent` (a small file system the test fills).
    pub fn new_in(parent: &Path, retries: u32) -> Self {
        let dir = tempfile::tempdir_in(parent).unwrap();
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        std::fs::write(
            dir.path().join("config/config.toml"),
            format!(
                "# The tiny random model never ends an answer: short ones keep every run's\n\
                 # evaluation to a second. (Dotted, so tests can append [engine] keys.)\n\
                 evaluation.max_new_tokens = 24\n\
                 [engine]\npoll_interval_millis = 200\ndispatch_interval_secs = 1\nretry_count = {retries}\n"
            ),
        )
        .unwrap();
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("brightrun").unwrap();
        self.env(&mut c);
        c
    }

    /// A std Command for processes the test must be able to kill.
    pub fn std_cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("brightrun"));
        c.env("BRIGHTRUN_HOME", self.path())
            .env("BRIGHTRUN_TRAINER_PYTHON", trainer_python())
            .env("HF_HUB_OFFLINE", "1")
            .env("TRANSFORMERS_OFFLINE", "1");
        c
    }

    fn env(&self, c: &mut Command) {
        c.env("BRIGHTRUN_HOME", self.path())
            .env("BRIGHTRUN_TRAINER_PYTHON", trainer_python())
            .env("HF_HUB_OFFLINE", "1")
            .env("TRANSFORMERS_OFFLINE", "1");
    }

    /// Runs the binary and parses its `--json` output, asserting the exit status.
    pub fn json(&self, args: &[&str], code: i32) -> Value {
        run_json(self.std_cmd(), args, code)
    }

    /// Writes `name` in the home: `n` short arithmetic conversations (OpenAI chat).
    pub fn arith_file(&self, name: &str, n: usize) -> PathBuf {
        let file = self.path().join(name);
        let text: String = (0..n)
            .map(|i| {
                format!(
                    "{{\"messages\":[{{\"role\":\"user\",\"content\":\"What is {i} plus {i}?\"}},{{\"role\":\"assistant\",\"content\":\"{i} plus {i} is {}.\"}}]}}\n",
                    2 * i
                )
            })
            .collect();
        std::fs::write(&file, text).unwrap();
        file
    }

    /// Adds a ready dataset of `n` short arithmetic conversations; returns its id.
    pub fn ready_dataset(&self, n: usize) -> String {
        self.ready_dataset_with(n, |args| self.json(args, 0))
    }

    /// [`Home::ready_dataset`] through `json` (the binary with the test's own environment:
    /// S3 keys, secrets), which runs the arguments and asserts success.
    pub fn ready_dataset_with(&self, n: usize, json: impl Fn(&[&str]) -> Value) -> String {
        let file = self.arith_file("arith.jsonl", n);
        let d = json(&[
            "datasets",
            "add",
            file.to_str().unwrap(),
            "--wait",
            "--json",
        ]);
        assert_eq!(d["status"], "ready", "{d:#}");
        d["id"].as_str().unwrap().to_string()
    }

    /// Adds the README's first-run data (`docs/examples/zubrowka.jsonl`, 36 chats teaching a
    /// made-up fact) as the ready dataset `zubrowka`; returns its record.
    pub fn zubrowka_dataset(&self) -> Value {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/zubrowka.jsonl");
        let d = self.json(
            &[
                "datasets",
                "add",
                data.to_str().unwrap(),
                "--name",
                "zubrowka",
                "--wait",
                "--json",
            ],
            0,
        );
        assert_eq!(d["status"], "ready", "{d:#}");
        d
    }

    /// Queues a job on the tiny model; extra `--set`s are appended.
    pub fn tiny_job(&self, dataset: &str, sets: &[&str]) -> String {
        let args = tiny_job_args(dataset, sets);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let j = self.json(&args, 0);
        assert_eq!(j["status"], "queued");
        j["id"].as_str().unwrap().to_string()
    }

    /// Follows `job` to its end, asserts it completed, and returns it with the model it made
    /// (`models show --json`).
    pub fn completed_with_model(&self, job: &str) -> (Value, Value) {
        let done = self.json(&["jobs", "watch", job, "--json"], 0);
        assert_eq!(done["status"], "completed", "{done:#}");
        let model = self.json(
            &[
                "models",
                "show",
                done["artifact_id"]
                    .as_str()
                    .expect("a completed run made a model"),
                "--json",
            ],
            0,
        );
        (done, model)
    }

    /// Adds `file` and waits for it to validate; asserts it is ready and returns its record.
    pub fn ready_file(&self, file: &Path) -> Value {
        let d = self.json(
            &[
                "datasets",
                "add",
                file.to_str().unwrap(),
                "--wait",
                "--json",
            ],
            0,
        );
        assert_eq!(d["status"], "ready", "{d:#}");
        d
    }

    pub fn job_dir(&self, job: &str) -> PathBuf {
        self.path().join("data/jobs").join(job)
    }

    /// Metric events the trainer has written so far.
    pub fn metric_lines(&self, job: &str) -> usize {
        std::fs::read_to_string(self.job_dir(job).join("events.jsonl"))
            .map(|t| {
                t.lines()
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .filter(|v| v["type"] == "metric" && v["training_loss"].is_number())
                    .count()
            })
            .unwrap_or(0)
    }

    /// Waits (up to `secs`) until `f` holds.
    pub fn wait_until(&self, secs: u64, what: &str, f: impl FnMut() -> bool) {
        wait_until(secs, what, f)
    }
}

/// Runs `cmd` (the binary with the test's environment) with `args`, asserting the exit
/// status; parses stdout as the one JSON document `--json` prints.
pub fn run_json(mut cmd: std::process::Command, args: &[&str], code: i32) -> Value {
    let out = cmd.args(args).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "brightrun {args:?}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "brightrun {args:?}: not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Waits (up to `secs`) until `f` holds.
pub fn wait_until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("timed out after {secs}s waiting for {what}");
}

/// Queues a job on the tiny model on `backend` through `json`; returns its id.
pub fn backend_job(
    json: impl Fn(&[&str]) -> Value,
    dataset: &str,
    backend: &str,
    sets: &[&str],
) -> String {
    let mut args = tiny_job_args(dataset, sets);
    args.extend(["--backend".to_string(), backend.to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let j = json(&args);
    assert_eq!(j["status"], "queued", "{j:#}");
    assert_eq!(j["gpu_config"]["backend"], backend, "{j:#}");
    j["id"].as_str().unwrap().to_string()
}

/// `jobs create` arguments for a job on the tiny model, with extra `--set`s.
pub fn tiny_job_args(dataset: &str, sets: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "jobs",
        "create",
        "--dataset",
        dataset,
        "--preset",
        "fast",
        "--gpu",
        "A10G",
        "--set",
        "base_model=brightrun/tiny-random-llama",
        "--yes",
        "--json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for s in sets {
        args.push("--set".into());
        args.push(s.to_string());
    }
    args
}

pub fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// A running `brightrun serve` on a home's socket, started from `cmd` (the test's environment:
/// keys, secrets); SIGKILLed on drop if still running.
pub struct Daemon(pub std::process::Child);

/// A loopback port free right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Daemon {
    pub fn start(home: &Home, cmd: std::process::Command) -> Daemon {
        Self::serve(home, cmd, &[])
    }

    /// `brightrun serve` also listening on loopback TCP at `port`.
    pub fn listening(home: &Home, port: u16) -> Daemon {
        Self::serve(
            home,
            home.std_cmd(),
            &["--listen", &format!("127.0.0.1:{port}")],
        )
    }

    /// [`Daemon::listening`] started from `cmd` (the test's own environment).
    pub fn listening_with(home: &Home, cmd: std::process::Command, port: u16) -> Daemon {
        Self::serve(home, cmd, &["--listen", &format!("127.0.0.1:{port}")])
    }

    fn serve(home: &Home, mut cmd: std::process::Command, args: &[&str]) -> Daemon {
        let child = cmd
            .arg("serve")
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let sock = home.path().join("state/engine.sock");
        home.wait_until(30, "the daemon's socket", || {
            sock.exists() && std::os::unix::net::UnixStream::connect(&sock).is_ok()
        });
        Daemon(child)
    }

    pub fn kill9(&mut self) {
        // SAFETY: killing the child we spawned.
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGKILL);
        }
        let _ = self.0.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.kill9();
        }
    }
}

/// Every file under `dir` whose name `pred` accepts (what an interrupted write left).
pub fn files_named(dir: &Path, pred: &dyn Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if pred(&e.file_name().to_string_lossy()) {
                out.push(p);
            }
        }
    }
    out
}

/// The AWS CLI of the test tools' environment (scripts/tools-env.sh).
pub fn aws_bin() -> PathBuf {
    env_or_script("BRIGHTRUN_TOOLS_BIN", "scripts/tools-env.sh").join("aws")
}

/// Asserts a downloaded adapter folder loads in PEFT: its config names `base`, and its
/// safetensors hold weights.
pub fn assert_loads_in_peft(dir: &Path, base: &str) {
    let load = std::process::Command::new(trainer_python())
        .args([
            "-c",
            "import sys; from peft import PeftConfig; from safetensors.torch import load_file; \
             c = PeftConfig.from_pretrained(sys.argv[1]); w = load_file(sys.argv[1] + '/adapter_model.safetensors'); \
             assert c.base_model_name_or_path == sys.argv[2], c; assert w, 'no weights'; print(len(w))",
        ])
        .arg(dir)
        .arg(base)
        .output()
        .unwrap();
    assert!(
        load.status.success(),
        "the adapter loads in PEFT: {}",
        String::from_utf8_lossy(&load.stderr)
    );
}

/// A job's stored checkpoints (those with a sha256), as `jobs show --json` lists them through
/// `json` (the test's way of running the binary).
pub fn stored_checkpoints(json: impl Fn(&[&str]) -> Value, job: &str) -> Vec<Value> {
    json(&["jobs", "show", job, "--json"])["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["sha256"].is_string())
        .cloned()
        .collect()
}
