//! The hardening issue's findings against the real daemon and binary: clients that hold
//! connections without a word, trainers that flood or lie, uploads that run on, a trainer
//! that ignores SIGTERM. Each test failed before its fix.

mod common;

use common::{Daemon, Home, free_port, wait_until};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A home whose daemon cuts connections quickly (so the test need not wait for the defaults).
fn quick_home(extra: &str) -> Home {
    let home = Home::new(0);
    let config = home.path().join("config/config.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(extra);
    std::fs::write(&config, text).unwrap();
    home
}

/// Whether the server closed `s` (a read gives end of file or a reset) within `secs`.
fn closed_within(s: &mut TcpStream, secs: u64) -> bool {
    let wait = Duration::from_secs(secs).max(Duration::from_millis(50));
    s.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            // A 408 or 400 answer before the close is fine: keep reading to the end.
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return false,
            Err(_) => return true,
        }
    }
}

/// One HTTP/1.1 GET on `s`, keeping the connection; returns the status line.
fn get(s: &mut TcpStream, path: &str, token: Option<&str>) -> String {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    // Read the head and a body of the length it gives.
    loop {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed before an answer");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let len = text
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if got.len() >= head_end + 4 + len {
                return text.lines().next().unwrap().to_string();
            }
        }
    }
}

#[test]
fn silent_slow_and_idle_connections_are_cut_and_never_starve_a_valid_token() {
    let home = quick_home(
        "header_read_timeout_secs = 2\nidle_timeout_secs = 3\nmax_unauthenticated_connections = 8\n",
    );
    let token = home.json(&["tokens", "create", "--user", "alice", "--json"], 0)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let port = free_port();
    let _daemon = Daemon::listening(&home, port);
    let addr = format!("127.0.0.1:{port}");
    // A flood of connections that say nothing: only the newest 8 are kept; the rest are
    // closed at once to make room, not after a timeout.
    let mut silent: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    let evicted = silent[..30]
        .iter_mut()
        .map(|s| closed_within(s, 1))
        .filter(|closed| *closed)
        .count();
    assert!(
        evicted >= 28,
        "{evicted} of the 30 oldest silent connections were closed"
    );
    // A valid token is served meanwhile, and so is the owner's socket.
    let mut mine = TcpStream::connect(&addr).unwrap();
    assert!(get(&mut mine, "/api/jobs?limit=1", Some(&token)).contains(" 200 "));
    home.json(&["jobs", "list", "--json"], 0);
    // The kept silent ones are cut by the header-read timeout.
    let started = Instant::now();
    for s in &mut silent[30..] {
        assert!(closed_within(s, 6), "a silent connection was kept");
    }
    assert!(started.elapsed() < Duration::from_secs(8));
    // Slowloris: a header byte a second never completes a request within the timeout.
    let mut slow = TcpStream::connect(&addr).unwrap();
    let cut = (0..8).any(|_| {
        std::thread::sleep(Duration::from_millis(700));
        slow.write_all(b"G").is_err() || closed_within(&mut slow, 0)
    });
    assert!(
        cut,
        "a slowloris connection was kept past the header timeout"
    );
    // An authenticated connection that goes idle after its request is closed too, later.
    let mut idle = TcpStream::connect(&addr).unwrap();
    assert!(get(&mut idle, "/api/jobs?limit=1", Some(&token)).contains(" 200 "));
    assert!(
        !closed_within(&mut idle, 1),
        "closed before the idle timeout"
    );
    assert!(closed_within(&mut idle, 6), "an idle connection was kept");
}

#[test]
fn a_daemon_at_systemds_file_limit_still_serves_its_owner_and_tokens() {
    let home = Home::new(0);
    let token = home.json(&["tokens", "create", "--user", "alice", "--json"], 0)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let port = free_port();
    // systemd's default: 1024 open files, and no way up (the hard limit is the same).
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "ulimit -n 1024 && exec \"$0\" serve --listen 127.0.0.1:{port}"
        ))
        .arg(assert_cmd::cargo::cargo_bin("brightrun"))
        .env("BRIGHTRUN_HOME", home.path());
    let _daemon = Daemon::start(&home, cmd);
    let addr = format!("127.0.0.1:{port}");
    // 1,100 connections without a token (the probe's number that stopped all service), as
    // far as this test's own limit allows.
    let mut flood = Vec::new();
    for _ in 0..raise_own_fd_limit().saturating_sub(100).min(1100) {
        match TcpStream::connect(&addr) {
            Ok(s) => flood.push(s),
            Err(e) => panic!("connecting: {e}"),
        }
    }
    let mut mine = TcpStream::connect(&addr).unwrap();
    assert!(get(&mut mine, "/api/jobs?limit=1", Some(&token)).contains(" 200 "));
    run_ok(&home, &["jobs", "list", "--json"]);
}

/// Raises this process's soft limit on open files to its hard limit; returns the limit.
fn raise_own_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write only the struct given.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}

/// Runs the binary with `args` (at most 30 s), asserting it succeeds.
fn run_ok(home: &Home, args: &[&str]) -> std::process::Output {
    let out = home
        .cmd()
        .args(args)
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "brightrun {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A stand-in trainer from a shell script body (it runs as `python -u -m … run --spec …`).
fn fake_trainer(home: &Home, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let fake = home.path().join("fake-python");
    std::fs::write(&fake, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    fake
}

fn create_job(home: &Home, dataset: &str) -> String {
    let job = home.json(
        &[
            "jobs",
            "create",
            "--dataset",
            dataset,
            "--gpu",
            "A10G",
            "--yes",
            "--json",
        ],
        0,
    );
    job["id"].as_str().unwrap().to_string()
}

/// `jobs watch` on `id` with `fake` as the trainer (it runs the job, embedded).
fn watch(home: &Home, fake: &std::path::Path, id: &str) -> std::process::Output {
    home.cmd()
        .env("BRIGHTRUN_TRAINER_PYTHON", fake)
        .args(["jobs", "watch", id])
        .timeout(Duration::from_secs(300))
        .output()
        .unwrap()
}

#[test]
fn a_run_that_floods_its_events_before_done_completes_once() {
    let home = Home::new(2);
    let d = home.ready_dataset(20);
    // 17 MiB on one line, 200,000 metrics written at once, then the adapter and `done`
    // (without its newline): the probe's run that failed and ran four times.
    let fake = fake_trainer(
        &home,
        r#"echo started >> "$(dirname "$0")/runs"
head -c 17825792 /dev/zero | tr '\0' 'x'; echo
python3 -c '
import sys
w = sys.stdout.write
for i in range(1, 200001):
    w("{\"type\":\"metric\",\"seq\":%d,\"ts\":0,\"step\":%d,\"total_steps\":200000,\"training_loss\":1.5}\n" % (i, i))
'
mkdir -p output && echo w > output/adapter.bin
echo '{"type":"artifact","seq":200001,"ts":0,"dir":"'"$PWD"'/output","files":[{"path":"adapter.bin","size":2,"sha256":""}]}'
printf '{"type":"done","seq":200002,"ts":0,"summary":{}}'"#,
    );
    let id = create_job(&home, &d);
    let out = watch(&home, &fake, &id);
    let job = home.json(&["jobs", "show", &id, "--json"], 0);
    assert_eq!(
        job["status"],
        "completed",
        "{job:#}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(job["retry_count"], 0, "{job:#}");
    let runs = std::fs::read_to_string(home.path().join("runs")).unwrap();
    assert_eq!(runs.lines().count(), 1, "the trainer ran {runs:?}");
    assert_eq!(job["current_step"], 200000);
    let logs = home.json(&["jobs", "logs", &id, "--json"], 0).to_string();
    assert!(
        logs.contains("skipped a trainer output line of 17825792 bytes"),
        "{logs}"
    );
    assert_eq!(
        home.json(&["models", "list", "--json"], 0)
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_trainer_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let home = quick_home("cancel_grace_secs = 2\n");
    let d = home.ready_dataset(20);
    let pid_file = home.path().join("trainer.pid");
    let fake = fake_trainer(
        &home,
        &format!(
            r#"trap '' TERM
echo $$ > {}
echo '{{"type":"stage","seq":0,"ts":0,"stage":"training"}}'
while :; do sleep 1; done"#,
            pid_file.display()
        ),
    );
    let mut cmd = home.std_cmd();
    cmd.env("BRIGHTRUN_TRAINER_PYTHON", &fake);
    let _daemon = Daemon::start(&home, cmd);
    let id = create_job(&home, &d);
    wait_until(60, "the trainer to start", || pid_file.exists());
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let started = Instant::now();
    let out = run_ok(&home, &["jobs", "cancel", &id, "--json"]);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the reply waited for the trainer's stop"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "cancelled");
    // SAFETY: signal 0 only checks that the process exists.
    let alive = || unsafe { libc::kill(pid, 0) == 0 };
    wait_until(15, "the trainer to be killed", || !alive());
}

#[test]
fn an_upload_is_cut_at_its_declared_size_and_can_be_sent_again() {
    let home = Home::new(0);
    let token = home.json(&["tokens", "create", "--json"], 0)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let port = free_port();
    let _daemon = Daemon::listening(&home, port);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::blocking::Client::new();
    let line = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"hello\"}]}\n";
    let file = line.repeat(20);
    let created: serde_json::Value = http
        .post(format!("{base}/api/datasets"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "n", "file_name": "a\\b.jsonl", "file_size": file.len()}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    // The backslash a Windows path leaves in a name is no reason to refuse it.
    let id = created["data"]["dataset"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created:#}"))
        .to_string();
    // The REST routes take full ids: a prefix is not found (the CLI resolves prefixes).
    let r = http
        .get(format!("{base}/api/datasets/{}", &id[..8]))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert!(r.text().unwrap().contains("full ids"));
    // 20 MiB against the 1 KB announced: refused, and not written to the end first.
    let big = vec![b'x'; 20 << 20];
    let r = http
        .put(format!("{base}/api/datasets/{id}/upload"))
        .bearer_auth(&token)
        .body(big)
        .send();
    if let Ok(r) = r {
        assert_eq!(r.status().as_u16(), 400);
        let body: serde_json::Value = r.json().unwrap();
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("send the file again"),
            "{body:#}"
        );
    }
    let stored: u64 = common::files_named(&home.path().join("data"), &|n| n.ends_with(".jsonl"))
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    assert_eq!(stored, 0, "nothing of the refused upload is kept");
    // The advice can be followed: the same dataset takes the right bytes.
    let r = http
        .put(format!("{base}/api/datasets/{id}/upload"))
        .bearer_auth(&token)
        .body(file.clone())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().unwrap());
    wait_until(30, "the dataset to be ready", || {
        home.json(&["datasets", "show", &id, "--json"], 0)["status"] == "ready"
    });
}

#[test]
fn mirror_sync_reaches_postgres_before_saying_in_sync() {
    // Nothing to push, and nothing answers at the address: that is not "in sync".
    let home = quick_home("");
    let config = home.path().join("config/config.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[mirror]\nurl = \"postgres://brightrun@127.0.0.1:1/lora\"\n");
    std::fs::write(&config, text).unwrap();
    let out = home
        .cmd()
        .env("BRIGHTRUN_SECRET_MIRROR_PASSWORD", "not-the-password")
        .args(["mirror", "sync", "--timeout", "5"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!out.status.success(), "{stdout}");
    assert!(!stdout.contains("in sync"), "{stdout}");
    assert!(stderr.contains("127.0.0.1:1"), "{stderr}");
    assert!(!stderr.contains("not-the-password") && !stdout.contains("not-the-password"));
}

#[test]
fn a_stored_file_replaced_behind_brightrun_is_refused_not_validated_or_served() {
    let home = Home::new(0);
    let d = home.ready_dataset(20);
    // The dataset's stored object, rewritten in place with other (valid) conversations.
    let stored = common::files_named(&home.path().join("data"), &|n| n == "arith.jsonl");
    assert_eq!(stored.len(), 1, "{stored:?}");
    let other = home.arith_file("other.jsonl", 25);
    std::fs::copy(&other, &stored[0]).unwrap();
    home.json(&["datasets", "validate", &d, "--json"], 1);
    let shown = home.json(&["datasets", "show", &d, "--json"], 0);
    assert_eq!(shown["status"], "error", "{shown:#}");
    assert!(
        shown["error_message"]
            .as_str()
            .unwrap()
            .contains("is not the one uploaded"),
        "{shown:#}"
    );
    // A model file replaced by a link to /etc/passwd is not served.
    let fake = fake_trainer(
        &home,
        r#"mkdir -p output && echo w > output/adapter.bin
echo '{"type":"artifact","seq":1,"ts":0,"dir":"'"$PWD"'/output","files":[{"path":"adapter.bin","size":2,"sha256":""}]}'
echo '{"type":"done","seq":2,"ts":0,"summary":{}}'"#,
    );
    let ready = home.ready_dataset(20);
    let id = create_job(&home, &ready);
    let out = watch(&home, &fake, &id);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let model = home.json(&["models", "list", "--json"], 0)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let adapter = common::files_named(&home.path().join("data"), &|n| n == "adapter.bin")
        .into_iter()
        .find(|p| !p.starts_with(home.path().join("data/jobs")))
        .unwrap();
    let dest = home.path().join("download");
    let download = || {
        let out = home
            .cmd()
            .args(["models", "download", &model, "--force", "--to"])
            .arg(&dest)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    std::fs::remove_file(&adapter).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", &adapter).unwrap();
    let err = download();
    assert!(err.contains("changed or damaged"), "{err}");
    let leaked = common::files_named(&dest, &|_| true)
        .iter()
        .any(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains("root:")));
    assert!(!leaked, "/etc/passwd was served");
    // A link to a file of the manifest's size is refused for what it is.
    let outside = home.path().join("outside.bin");
    std::fs::write(&outside, "w\n").unwrap();
    std::fs::remove_file(&adapter).unwrap();
    std::os::unix::fs::symlink(&outside, &adapter).unwrap();
    let err = download();
    assert!(err.contains("symbolic link"), "{err}");
    // And a plain file of the right size with other bytes fails its sha256.
    std::fs::remove_file(&adapter).unwrap();
    std::fs::write(&adapter, "x\n").unwrap();
    let err = download();
    assert!(
        err.contains("sha256") || err.contains("does not match"),
        "{err}"
    );
}
