//! The playground end to end (issue 24): a tiny model trained through the real binary answers
//! `models chat` embedded and through a daemon (Unix socket and TCP), with its adapter and
//! with its base; two chats to one model at once both finish; another user's model and a
//! model that does not exist are `not_found`; no worker outlives its engine.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Output;

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
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn a_trained_model_answers_embedded_and_through_a_daemon() {
    let home = Home::new(0);
    let dataset = home.ready_dataset(24);
    let job = home.tiny_job(&dataset, &["epochs=1"]);
    let done = home.json(&["jobs", "watch", &job[..8], "--json"], 0);
    assert_eq!(done["status"], "completed", "{done:#}");
    let model = done["artifact_id"].as_str().unwrap().to_string();

    // Embedded: the command's own engine starts the worker, and stops it when it ends.
    let adapter = home.json(&chat_args(&model[..8], &[]), 0);
    assert_answered(&adapter, &model, false);
    let base = home.json(&chat_args(&model, &["--base", "--system", "Be brief."]), 0);
    assert_answered(&base, &model, true);
    assert!(
        workers_naming(home.path()).is_empty(),
        "no worker outlives the command"
    );

    // A reply longer than `[playground] max_new_tokens_limit` is refused before any work.
    let out = home
        .std_cmd()
        .args([
            "models",
            "chat",
            &model,
            "--prompt",
            "hi",
            "--max-new-tokens",
            "999999",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("max_new_tokens"), "{}", stderr(&out));

    // Streamed to the terminal (cleaned), not as JSON.
    let out = home
        .std_cmd()
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

    // Prompts read line by line off a terminal, one reply each, history kept.
    let mut child = home
        .std_cmd()
        .args(["models", "chat", &model, "--max-new-tokens", "8", "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"hi\n/base\nand again\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let replies: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert_eq!(replies[0]["base"], false);
    assert_eq!(replies[1]["base"], true, "/base switched to the base model");

    // Attached to a daemon (its Unix socket, and TCP with a token): the same answers, two
    // chats at once to one model both finish (one waits its turn).
    let port = free_port();
    let mut daemon = Daemon::listening(&home, port);
    let attached = home.json(&chat_args(&model, &[]), 0);
    assert_answered(&attached, &model, false);
    let together: Vec<_> = (0..2)
        .map(|i| {
            let mut args = chat_args(&model, &[]);
            if i == 1 {
                args.push("--base");
            }
            home.std_cmd()
                .args(&args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, child) in together.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "chat {i}: {}", stderr(&out));
        let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_answered(&reply, &model, i == 1);
    }
    assert_eq!(
        workers_naming(home.path()).len(),
        1,
        "one worker per model, kept loaded between chats"
    );

    let owner = home.json(&["tokens", "create", "--json"], 0)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let alice = home.json(&["tokens", "create", "--user", "alice", "--json"], 0)["token"]
        .as_str()
        .unwrap()
        .to_string();
    let engine = format!("http://127.0.0.1:{port}");
    let over_tcp = |token: &str, id: &str, code: i32| {
        let mut cmd = home.std_cmd();
        cmd.env("BRIGHTRUN_TOKEN", token)
            .args(["--engine", &engine]);
        let out = cmd.args(chat_args(id, &[])).output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{}", stderr(&out));
        out
    };
    // A prefix works over HTTP too: the CLI resolves it (the chat route takes full ids).
    let out = over_tcp(&owner, &model[..8], 0);
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_answered(&reply, &model, false);
    // Users see only their own models.
    over_tcp(&alice, &model, 2);

    // SIGTERM: the daemon stops its worker on the way out.
    // SAFETY: signalling the child we spawned.
    unsafe {
        libc::kill(daemon.0.id() as i32, libc::SIGTERM);
    }
    let status = daemon.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    wait_until(15, "the worker to stop with its daemon", || {
        workers_naming(home.path()).is_empty()
    });
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
