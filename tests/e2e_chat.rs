//! The playground end to end (issue 24): a tiny model trained through the real binary answers
//! `models chat` embedded and through a daemon (Unix socket and TCP), with its adapter and
//! with its base; two chats at once to one model both finish, each with its own whole reply;
//! another user's model and a model that does not exist are `not_found`; no worker outlives
//! its engine. The failures: a worker killed mid-reply, a reply longer than the limit, a base
//! model gone from the offline cache, a model that does not fit the engine's memory.
//!
//! One model is trained per test run and shared: the first test to need it trains it into a
//! template home (under a file lock, so nextest's parallel processes wait for it), and every
//! test copies the template. Its base is a copy of the tiny random model laid out as a
//! Hugging Face hub cache inside the home (`hf/hub`, the commands run with `HF_HOME` there), so
//! a test can take the base away from the offline cache.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The base model's hub id, served from the home's own offline cache.
const BASE: &str = "brightrun-test/tiny-llama";

/// Processes whose command line names `needle` (the chat workers of a home name its folder).
fn workers_naming(needle: &Path) -> Vec<u32> {
    let needle = needle.to_string_lossy().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains("brightrun_trainer serve") && cmdline.contains(&needle) {
            found.push(pid);
        }
    }
    found
}

/// A home holding the shared trained model.
struct Trained {
    home: Home,
    /// The model's full id.
    model: String,
}

impl Trained {
    /// A fresh copy of the run's template home (trained on first use).
    fn new() -> Self {
        let (template, model) = template();
        let home = Home::new(0);
        let status = Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", template.display()))
            .arg(home.path())
            .status()
            .unwrap();
        assert!(status.success(), "copying the template home");
        Self { home, model }
    }

    fn path(&self) -> &Path {
        self.home.path()
    }

    fn hf_cache(&self) -> PathBuf {
        self.path().join("hf")
    }

    /// The binary with the home's environment and its own offline hub cache.
    fn cmd(&self) -> Command {
        hub_env(self.home.std_cmd(), &self.hf_cache())
    }

    fn json(&self, args: &[&str], code: i32) -> Value {
        run_json(self.cmd(), args, code)
    }

    /// Runs `args`; its stdout as the JSON document it prints, and its output.
    fn run(&self, args: &[&str]) -> (Value, Output) {
        let out = self.cmd().args(args).output().unwrap();
        let doc = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (doc, out)
    }

    fn daemon(&self) -> Daemon {
        Daemon::start(&self.home, self.cmd())
    }
}

fn hub_env(mut cmd: Command, hf: &Path) -> Command {
    cmd.env("HF_HOME", hf)
        .env("HF_HUB_CACHE", hf.join("hub"))
        .env_remove("HUGGINGFACE_HUB_CACHE");
    cmd
}

/// The template home and its model id: trained once per test run (nextest gives every test
/// its own process, so the processes share it through a folder and a file lock).
fn template() -> (PathBuf, String) {
    let run =
        std::env::var("NEXTEST_RUN_ID").unwrap_or_else(|_| format!("pid{}", std::process::id()));
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("e2e_chat");
    std::fs::create_dir_all(&root).unwrap();
    let lock = std::fs::File::create(root.join(".lock")).unwrap();
    // SAFETY: flock on a file we hold open; released when it is closed.
    assert_eq!(
        unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) },
        0
    );
    let dir = root.join(&run);
    let model_file = dir.join("model-id");
    if let Ok(model) = std::fs::read_to_string(&model_file) {
        return (dir.join("home"), model);
    }
    // Earlier runs' templates (a few MB each) go.
    for old in std::fs::read_dir(&root).unwrap().flatten() {
        if old.path().is_dir() && old.file_name() != run.as_str() {
            let _ = std::fs::remove_dir_all(old.path());
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let home = Home::new_in(&dir, 0);
    let hf = home.path().join("hf");
    make_hub_cache(&hf);
    let json = |args: &[&str]| run_json(hub_env(home.std_cmd(), &hf), args, 0);
    let dataset = home.ready_dataset_with(24, json);
    let job = json(&[
        "jobs",
        "create",
        "--dataset",
        &dataset,
        "--preset",
        "fast",
        "--set",
        &format!("base_model={BASE}"),
        "--set",
        "parameters_billions=0.0001",
        "--set",
        "epochs=1",
        "--yes",
        "--json",
    ]);
    let job = job["id"].as_str().unwrap().to_string();
    let done = json(&["jobs", "watch", &job, "--json"]);
    assert_eq!(done["status"], "completed", "{done:#}");
    let model = done["artifact_id"].as_str().unwrap().to_string();
    let kept = home.dir.keep();
    std::fs::rename(&kept, dir.join("home")).unwrap();
    std::fs::write(&model_file, &model).unwrap();
    (dir.join("home"), model)
}

/// The tiny random model as the hub's cache holds a download of [`BASE`].
fn make_hub_cache(hf: &Path) {
    let repo = hf
        .join("hub")
        .join(format!("models--{}", BASE.replace('/', "--")));
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let snapshot = repo.join("snapshots").join(commit);
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    let out = Command::new(trainer_python())
        .args(["-m", "brightrun_trainer", "make-tiny-model", "--out"])
        .arg(&snapshot)
        .env(
            "PYTHONPATH",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("trainer"),
        )
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success() && snapshot.join("config.json").is_file(),
        "make-tiny-model: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn chat_args<'a>(model: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "models",
        "chat",
        model,
        "--prompt",
        "hi",
        "--max-new-tokens",
        "16",
        "--json",
    ];
    args.extend_from_slice(extra);
    args
}

fn assert_answered(reply: &Value, model: &str, base: bool) {
    assert_eq!(reply["model"], model, "{reply:#}");
    assert_eq!(reply["base"], base, "{reply:#}");
    assert!(
        !reply["reply"].as_str().unwrap().is_empty(),
        "a reply: {reply:#}"
    );
    assert!(reply["tokens"].as_u64().unwrap() > 0, "{reply:#}");
    assert!(reply["seconds"].as_f64().unwrap() > 0.0, "{reply:#}");
    // On a machine without a GPU the reply says once that chat runs on the engine's CPU,
    // and how to judge the model on a cluster instead.
    match reply["device"].as_str().unwrap() {
        "cpu" => {
            let note = reply["note"].as_str().unwrap_or_default();
            assert!(note.contains("engine's machine, on its CPU"), "{reply:#}");
            assert!(
                note.contains(&format!(
                    "brightrun models eval {} --backend NAME",
                    &model[..8]
                )),
                "{reply:#}"
            );
        }
        _ => assert!(reply["note"].is_null(), "{reply:#}"),
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// Waits for `child` (up to `secs`: a chat that hangs fails the test instead of hanging it).
fn wait_bounded(mut child: std::process::Child, secs: u64, what: &str) -> Output {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("{what} hung for {secs}s: {}", stderr(&out));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_trained_model_answers_embedded_and_through_a_daemon() {
    let t = Trained::new();
    let model = t.model.clone();

    // Embedded: the command's own engine starts the worker, and stops it when it ends.
    let adapter = t.json(&chat_args(&model[..8], &[]), 0);
    assert_answered(&adapter, &model, false);
    assert!(
        adapter["load_seconds"].as_f64().unwrap() > 0.0,
        "{adapter:#}"
    );
    let base = t.json(&chat_args(&model, &["--base", "--system", "Be brief."]), 0);
    assert_answered(&base, &model, true);
    assert!(
        workers_naming(t.path()).is_empty(),
        "no worker outlives the command"
    );

    // Streamed to the terminal (cleaned), not as JSON; the CPU note once, on stderr.
    let out = t
        .cmd()
        .args([
            "models",
            "chat",
            &model,
            "--prompt",
            "hi",
            "--max-new-tokens",
            "8",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!out.stdout.is_empty());
    assert!(!out.stdout.contains(&0x1b), "no escapes reach the terminal");
    if adapter["device"] == "cpu" {
        assert_eq!(
            stderr(&out).matches("note: chat runs on").count(),
            1,
            "{}",
            stderr(&out)
        );
    }

    // Prompts read line by line off a terminal, one reply each, history kept; the note is
    // printed once for the session (without --json), not once per reply.
    for json in [true, false] {
        let mut args = vec!["models", "chat", &model, "--max-new-tokens", "8"];
        if json {
            args.push("--json");
        }
        let mut child = t
            .cmd()
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(b"hi\n/base\nand again\n").unwrap();
        }
        let out = wait_bounded(child, 120, "a conversation off a terminal");
        assert!(out.status.success(), "{}", stderr(&out));
        if json {
            let replies: Vec<Value> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            assert_eq!(replies.len(), 2, "{replies:?}");
            assert_eq!(replies[0]["base"], false);
            assert_eq!(replies[1]["base"], true, "/base switched to the base model");
            assert_eq!(replies[1]["load_seconds"], 0.0, "loaded once per session");
        } else if adapter["device"] == "cpu" {
            assert_eq!(
                stderr(&out).matches("note: chat runs on").count(),
                1,
                "{}",
                stderr(&out)
            );
        }
    }

    // Attached to a daemon (its Unix socket, and TCP with a token): the same answers.
    let port = free_port();
    let mut daemon = Daemon::listening_with(&t.home, t.cmd(), port);
    let attached = t.json(&chat_args(&model, &[]), 0);
    assert_answered(&attached, &model, false);
    assert_eq!(
        attached["reply"], adapter["reply"],
        "greedy: the daemon's worker answers as the embedded one did"
    );
    assert_eq!(
        workers_naming(t.path()).len(),
        1,
        "one worker per model, kept loaded between chats"
    );

    let owner = t.json(&["tokens", "create", "--json"], 0)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let alice = t.json(&["tokens", "create", "--user", "alice", "--json"], 0)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let engine = format!("http://127.0.0.1:{port}");
    let over_tcp = |token: &str, args: &[&str], code: i32| {
        let mut cmd = t.cmd();
        cmd.env("BRIGHTRUN_TOKEN", token)
            .args(["--engine", &engine]);
        let out = cmd.args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{}", stderr(&out));
        serde_json::from_slice::<Value>(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                stderr(&out)
            )
        })
    };
    // A prefix works over HTTP too: the CLI resolves it (the chat route takes full ids).
    let reply = over_tcp(&owner, &chat_args(&model[..8], &[]), 0);
    assert_answered(&reply, &model, false);
    // Users see only their own models.
    let error = over_tcp(&alice, &chat_args(&model, &[]), 2);
    assert_eq!(error["code"], "not_found", "{error:#}");
    // A reply longer than `[playground] max_new_tokens_limit` is refused before any work, with
    // the field at fault, over HTTP as embedded (below).
    let too_long = [
        "models",
        "chat",
        &model,
        "--prompt",
        "hi",
        "--max-new-tokens",
        "999999",
        "--json",
    ];
    let error = over_tcp(&owner, &too_long, 2);
    assert_too_long(&error);

    // SIGTERM: the daemon stops its worker on the way out.
    // SAFETY: signalling the child we spawned.
    unsafe {
        libc::kill(daemon.0.id() as i32, libc::SIGTERM);
    }
    let status = daemon.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    wait_until(15, "the worker to stop with its daemon", || {
        workers_naming(t.path()).is_empty()
    });

    let error = t.json(&too_long, 2);
    assert_too_long(&error);
}

fn assert_too_long(error: &Value) {
    assert_eq!(error["code"], "invalid", "{error:#}");
    assert_eq!(error["field"], "max_new_tokens", "{error:#}");
    let message = error["error"].as_str().unwrap();
    assert!(
        message.contains("999999") && message.contains("max_new_tokens_limit"),
        "{error:#}"
    );
}

#[test]
fn two_chats_at_once_are_both_answered_whole_and_in_turn() {
    let t = Trained::new();
    let model = t.model.clone();
    let _daemon = t.daemon();
    // Alone first: the adapter's and the base's greedy replies.
    let alone_adapter = t.json(&chat_args(&model, &[]), 0);
    let alone_base = t.json(&chat_args(&model, &["--base"]), 0);
    // Then three at once to the same model: each waits its turn at the one worker, and each
    // gets its own whole reply: greedy decoding gives the same text as alone, so a token of
    // one reply in another would show.
    let together: Vec<_> = [false, true, false]
        .iter()
        .map(|&base| {
            let mut args = chat_args(&model, &[]);
            if base {
                args.push("--base");
            }
            let child = t
                .cmd()
                .args(&args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (base, child)
        })
        .collect();
    for (i, (base, child)) in together.into_iter().enumerate() {
        let out = wait_bounded(child, 120, "a chat beside another");
        assert!(out.status.success(), "chat {i}: {}", stderr(&out));
        let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_answered(&reply, &model, base);
        let alone = if base { &alone_base } else { &alone_adapter };
        assert_eq!(reply["reply"], alone["reply"], "chat {i}: {reply:#}");
        assert_eq!(reply["tokens"], alone["tokens"], "chat {i}");
    }
    assert_eq!(
        workers_naming(t.path()).len(),
        1,
        "one worker for the model"
    );
}

/// Bytes waiting in the pipe that is `pid`'s stdin.
fn stdin_pending(pid: u32) -> usize {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(pipe) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(format!("/proc/{pid}/fd/0"))
    else {
        return 0;
    };
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    let rc = unsafe { libc::ioctl(pipe.as_raw_fd(), libc::FIONREAD, &mut n) };
    if rc == 0 { n.max(0) as usize } else { 0 }
}

#[test]
fn a_worker_killed_mid_reply_is_an_error_and_the_next_chat_starts_a_fresh_one() {
    let t = Trained::new();
    let model = t.model.clone();
    let _daemon = t.daemon();
    assert_answered(&t.json(&chat_args(&model, &[]), 0), &model, false);
    let workers = workers_naming(t.path());
    assert_eq!(workers.len(), 1, "{workers:?}");
    let worker = workers[0];

    // The tiny model answers in a tenth of a second, too fast to hit with a signal: the worker
    // is frozen first, so the chat's request is sent and unanswered when it is killed.
    // SAFETY: signalling the worker of this test's own daemon.
    unsafe {
        libc::kill(worker as i32, libc::SIGSTOP);
    }
    let chat = t
        .cmd()
        .args(chat_args(&model, &[]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(60, "the request to reach the frozen worker", || {
        stdin_pending(worker) > 0
    });
    // SAFETY: as above.
    unsafe {
        libc::kill(worker as i32, libc::SIGKILL);
    }
    let out = wait_bounded(chat, 60, "the chat whose worker was killed");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let error: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(error["code"], "unavailable", "{error:#}");
    assert_eq!(error["reason"], "worker_failed", "{error:#}");
    let message = error["error"].as_str().unwrap();
    assert!(
        message.contains("ended mid-reply") && message.contains("killed by signal 9"),
        "{error:#}"
    );
    assert!(
        message.contains("the next chat starts a fresh one"),
        "{error:#}"
    );

    // The next chat starts a fresh worker and is answered.
    let reply = t.json(&chat_args(&model, &[]), 0);
    assert_answered(&reply, &model, false);
    assert!(
        reply["load_seconds"].as_f64().unwrap() > 0.0,
        "a fresh worker: {reply:#}"
    );
    let now = workers_naming(t.path());
    assert!(now.len() == 1 && now[0] != worker, "{now:?} after {worker}");
}

#[test]
fn a_base_gone_from_the_offline_cache_is_a_clear_error() {
    let t = Trained::new();
    std::fs::remove_dir_all(t.hf_cache()).unwrap();
    let (error, out) = t.run(&chat_args(&t.model, &[]));
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(error["code"], "unavailable", "{error:#}");
    assert_eq!(error["reason"], "worker_failed", "{error:#}");
    let message = error["error"].as_str().unwrap();
    assert!(
        message.contains(&format!("base model {BASE} is not in the offline cache"))
            && message.contains("HF_HUB_OFFLINE"),
        "{error:#}"
    );
    assert!(workers_naming(t.path()).is_empty(), "the worker exited");
}

#[test]
fn a_model_that_does_not_fit_the_engines_memory_is_refused_before_a_worker_starts() {
    let t = Trained::new();
    let model = t.model.clone();
    // A GPU of 64 MiB (BRIGHTRUN_NVIDIA_SMI stands in for nvidia-smi): the CUDA context alone
    // is more.
    let smi = t.path().join("nvidia-smi");
    std::fs::write(&smi, "#!/bin/sh\necho 'NVIDIA Test GPU, 64'\n").unwrap();
    std::fs::set_permissions(&smi, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut cmd = t.cmd();
    cmd.env("BRIGHTRUN_NVIDIA_SMI", &smi);
    let error = run_json(cmd, &chat_args(&model, &[]), 2);
    assert_eq!(error["code"], "conflict", "{error:#}");
    assert_eq!(error["reason"], "does_not_fit", "{error:#}");
    let message = error["error"].as_str().unwrap();
    for part in [
        "does not fit on the engine's GPU (NVIDIA Test GPU, 0.1 GB)",
        "needs about 1.0 GB",
        "CUDA context",
        "a larger GPU",
        &format!("`brightrun models eval {} --backend NAME`", &model[..8]),
    ] {
        assert!(message.contains(part), "{part:?} in {message}");
    }

    // No GPU and 0.5 GB of RAM (BRIGHTRUN_MEMINFO stands in for /proc/meminfo): the worker's
    // Python alone needs more. The refusal says chat runs on the engine's CPU and names the
    // cluster command.
    let meminfo = t.path().join("meminfo");
    std::fs::write(&meminfo, "MemTotal:         524288 kB\nMemFree:  1000 kB\n").unwrap();
    let mut cmd = t.cmd();
    cmd.env("BRIGHTRUN_NVIDIA_SMI", t.path().join("no-such-program"))
        .env("BRIGHTRUN_MEMINFO", &meminfo);
    let error = run_json(cmd, &chat_args(&model, &["--base"]), 2);
    assert_eq!(error["reason"], "does_not_fit", "{error:#}");
    let message = error["error"].as_str().unwrap();
    for part in [
        "the engine's machine (no GPU; 0.5 GB of RAM)",
        "fp32 weights",
        "the worker's Python process",
        "here on its CPU",
        &format!("`brightrun models eval {} --backend NAME`", &model[..8]),
    ] {
        assert!(message.contains(part), "{part:?} in {message}");
    }
    assert!(
        !t.path()
            .join(format!("data/playground/{model}.log"))
            .exists(),
        "no worker was started"
    );
    assert!(workers_naming(t.path()).is_empty());
}

#[test]
fn a_chat_with_a_model_that_does_not_exist_is_not_found() {
    let home = Home::new(0);
    let out = home
        .std_cmd()
        .args(chat_args("0123abcd", &[]))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let error: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(error["code"], "not_found", "{error:#}");

    // Attached, over the HTTP route: a 404 with the code, before any event.
    let _daemon = Daemon::start(&home, home.std_cmd());
    let out = home
        .std_cmd()
        .args(chat_args("0123abcd", &[]))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let error: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(error["code"], "not_found", "{error:#}");
}
