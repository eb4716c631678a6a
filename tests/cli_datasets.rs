//! The real `brightrun` binary against a temporary BRIGHTRUN_HOME.

use assert_cmd::Command;
use serde_json::Value;
use std::path::Path;

fn brightrun(home: &Path) -> Command {
    let mut c = Command::cargo_bin("brightrun").unwrap();
    c.env("BRIGHTRUN_HOME", home)
        .env_remove("BRIGHTRUN_TRAINER_PYTHON")
        .env("NO_COLOR", "1");
    c
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn chat_lines(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                r#"{{"messages":[{{"role":"user","content":"question {i}"}},{{"role":"assistant","content":"answer number {i}"}}]}}"#
            ) + "\n"
        })
        .collect()
}

#[test]
fn a_valid_file_becomes_ready_with_statistics() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("chat.jsonl");
    std::fs::write(&file, chat_lines(50)).unwrap();
    let out = brightrun(home.path())
        .args(["datasets", "add"])
        .arg(&file)
        .args(["--name", "support chats", "--wait", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let d = json(&out);
    assert_eq!(d["status"], "ready");
    assert_eq!(d["format"], "openai_chat");
    assert_eq!(d["name"], "support chats");
    assert_eq!(d["training_ready"], true);
    let train = d["total_training_pairs"].as_u64().unwrap();
    let val = d["total_validation_pairs"].as_u64().unwrap();
    assert_eq!(train + val, 50);
    assert!(val >= 1, "a 10% hold-out of 50 examples is not empty");
    assert!(d["total_tokens"].as_u64().unwrap() > 0);
    assert_eq!(d["sample_data"].as_array().unwrap().len(), 3);
    assert_eq!(d["sample_data"][0][1]["role"], "assistant");
    // The stored copy is byte-identical and lies in the seed's path layout.
    let stored = home
        .path()
        .join("data/objects/lora-datasets")
        .join(d["storage_path"].as_str().unwrap());
    assert_eq!(
        std::fs::read(&stored).unwrap(),
        std::fs::read(&file).unwrap()
    );
    assert!(
        d["storage_path"]
            .as_str()
            .unwrap()
            .ends_with(&format!("{}/chat.jsonl", d["id"].as_str().unwrap()))
    );

    // list, show by prefix, rename, rm
    let id = d["id"].as_str().unwrap().to_string();
    let out = brightrun(home.path())
        .args(["datasets", "list", "--json"])
        .output()
        .unwrap();
    let list = json(&out);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], id.as_str());

    let out = brightrun(home.path())
        .args(["datasets", "show", &id[..6], "--json"])
        .output()
        .unwrap();
    assert_eq!(json(&out)["id"], id.as_str());

    let out = brightrun(home.path())
        .args(["datasets", "rename", &id[..8], "renamed", "--json"])
        .output()
        .unwrap();
    assert_eq!(json(&out)["name"], "renamed");

    // A unique name works where an id prefix does.
    let out = brightrun(home.path())
        .args(["datasets", "show", "Renamed", "--json"])
        .output()
        .unwrap();
    assert_eq!(json(&out)["id"], id.as_str());

    // rm asks first; with no terminal to ask on, it needs --yes.
    let out = brightrun(home.path())
        .args(["datasets", "rm", &id, "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
    assert!(stored.exists(), "nothing was deleted");
    // A plain rm is a soft delete: the record goes from lists, the stored file stays.
    let out = brightrun(home.path())
        .args(["datasets", "rm", &id, "--yes", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(stored.exists(), "a plain rm keeps the stored file");
    let out = brightrun(home.path())
        .args(["datasets", "list", "--json"])
        .output()
        .unwrap();
    assert_eq!(json(&out).as_array().unwrap().len(), 0);
    // --purge deletes the stored file too.
    let out = brightrun(home.path())
        .args(["datasets", "add"])
        .arg(&file)
        .args(["--json"])
        .output()
        .unwrap();
    let again = json(&out);
    let stored_again = home
        .path()
        .join("data/objects/lora-datasets")
        .join(again["storage_path"].as_str().unwrap());
    assert!(stored_again.exists());
    let out = brightrun(home.path())
        .args([
            "datasets",
            "rm",
            again["id"].as_str().unwrap(),
            "--yes",
            "--purge",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(!stored_again.exists(), "--purge removes the stored file");
    let out = brightrun(home.path())
        .args(["datasets", "list", "--json"])
        .output()
        .unwrap();
    assert_eq!(json(&out).as_array().unwrap().len(), 0);
}

#[test]
fn an_invalid_file_fails_with_line_numbers_and_exit_1() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("bad.jsonl");
    let mut text = chat_lines(3);
    text.push_str("{not json\n");
    text.push_str(r#"{"messages":[{"role":"user","content":"only a question"}]}"#);
    text.push('\n');
    std::fs::write(&file, text).unwrap();
    let out = brightrun(home.path())
        .args(["datasets", "add"])
        .arg(&file)
        .args(["--wait", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let d = json(&out);
    assert_eq!(d["status"], "error");
    let errors = d["validation_errors"].as_array().unwrap();
    let lines: Vec<u64> = errors
        .iter()
        .filter(|e| e["severity"] == "error")
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![4, 5]);
    for e in errors {
        assert!(!e["error"].as_str().unwrap().is_empty());
        assert!(!e["suggestion"].as_str().unwrap().is_empty());
    }
    // Without --wait the import itself succeeded: exit 0, verdict in the output.
    let out = brightrun(home.path())
        .args(["datasets", "add"])
        .arg(&file)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out)["status"], "error");
}

#[test]
fn a_missing_file_is_named_with_exit_2() {
    let home = tempfile::tempdir().unwrap();
    let out = brightrun(home.path())
        .args(["datasets", "add", "/nonexistent/data.jsonl", "--wait"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/data.jsonl"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_missing_file_or_a_folder_with_json_prints_one_error_document() {
    let home = tempfile::tempdir().unwrap();
    for path in [
        "/nonexistent/data.jsonl".to_string(),
        home.path().display().to_string(),
    ] {
        let out = brightrun(home.path())
            .args(["datasets", "add", &path, "--json"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let doc = json(&out);
        let message = doc["error"].as_str().unwrap();
        assert!(message.contains(&path), "{doc}");
        assert_eq!(doc["exit_status"], 2);
        assert!(doc["code"].is_string(), "{doc}");
        // The message is on stderr too, for people.
        assert!(String::from_utf8_lossy(&out.stderr).contains(&path));
    }
}

#[test]
fn unknown_ids_and_ambiguous_prefixes_are_explained() {
    let home = tempfile::tempdir().unwrap();
    let out = brightrun(home.path())
        .args(["datasets", "show", "abc"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no dataset matches `abc`"));
}

#[test]
fn config_show_masks_secrets_and_refuses_open_secret_files() {
    let home = tempfile::tempdir().unwrap();
    let out = brightrun(home.path())
        .args(["config", "show", "--json"])
        .env(
            "BRIGHTRUN_SECRET_RUNPOD_API_KEY",
            "rp_supersecretvalue_9876",
        )
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("supersecret"), "secret leaked: {text}");
    let v = json(&out);
    assert_eq!(v["secrets"][0]["name"], "runpod_api_key");
    assert_eq!(v["secrets"][0]["value"], "****9876");
    assert!(v["config"]["profile"]["user_id"].is_string());
    assert_eq!(v["storage"], "local");

    // The user id is created once and kept.
    let again = json(
        &brightrun(home.path())
            .args(["config", "show", "--json"])
            .output()
            .unwrap(),
    );
    assert_eq!(
        again["config"]["profile"]["user_id"],
        v["config"]["profile"]["user_id"]
    );

    let secrets = home.path().join("config/secrets.toml");
    std::fs::write(&secrets, "s3_secret_access_key = \"abc\"\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = brightrun(home.path())
            .args(["config", "show"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
        std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
        let out = brightrun(home.path())
            .args(["config", "show"])
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(!String::from_utf8_lossy(&out.stdout).contains("\"abc\""));
    }
}

#[test]
fn a_broken_config_file_is_named() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("config")).unwrap();
    std::fs::write(
        home.path().join("config/config.toml"),
        "[validation]\nholdout_fraction = \"lots\"\n",
    )
    .unwrap();
    let out = brightrun(home.path())
        .args(["datasets", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("config.toml"), "{err}");
    assert!(err.contains("holdout_fraction"), "{err}");
}

#[test]
fn a_second_command_attaches_and_a_second_daemon_is_told_who_serves() {
    let home = tempfile::tempdir().unwrap();
    let mut engine = std::process::Command::new(assert_cmd::cargo::cargo_bin("brightrun"))
        .arg("serve")
        .env("BRIGHTRUN_HOME", home.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let socket = home.path().join("state/engine.sock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !socket.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Another command attaches to the daemon instead of being refused.
    let attached = brightrun(home.path())
        .args(["config", "show", "--json"])
        .output()
        .unwrap();
    // A second daemon on the same home is told which process serves it.
    let second = brightrun(home.path()).arg("serve").output().unwrap();
    // SAFETY: interrupting the child we started.
    unsafe {
        libc::kill(engine.id() as i32, libc::SIGINT);
    }
    let status = engine.wait().unwrap();
    assert!(attached.status.success(), "{attached:?}");
    let v: serde_json::Value = serde_json::from_slice(&attached.stdout).unwrap();
    assert!(
        v["engine"]
            .as_str()
            .unwrap()
            .starts_with("attached to unix:"),
        "{v}"
    );
    assert_eq!(second.status.code(), Some(3), "{second:?}");
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("in use by another BrightRun process"), "{err}");
    assert!(err.contains(&format!("pid {}", engine.id())), "{err}");
    assert!(err.contains("serve"), "{err}");
    assert!(
        status.success(),
        "the engine stops cleanly on Ctrl-C: {status:?}"
    );
    // Once it is gone the store opens again.
    let out = brightrun(home.path())
        .args(["datasets", "list", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn a_file_with_a_few_bad_examples_is_cleaned_into_a_new_dataset() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("mixed.jsonl");
    let mut text = chat_lines(6);
    text.push_str("{\"messages\": [{\"role\": \"user\", \"content\": \"no reply\"}]}\n");
    text.push_str(&chat_lines(2)); // exact repeats of lines 1 and 2
    std::fs::write(&file, text).unwrap();
    let out = brightrun(home.path())
        .args([
            "datasets",
            "add",
            file.to_str().unwrap(),
            "--wait",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "the mixed file is not ready");
    let id = json(&out)["id"].as_str().unwrap().to_string();
    let out = brightrun(home.path())
        .args(["datasets", "clean", &id[..8], "--drop-duplicates", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let c = json(&out);
    assert_eq!(c["dataset"]["status"], "ready", "{c:#}");
    assert_eq!(c["dataset"]["name"], "mixed (clean)");
    assert_eq!(c["report"]["kept"], 6);
    assert_eq!(c["report"]["duplicates_dropped"], 2);
    let lines: Vec<u64> = c["report"]["dropped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![7, 8, 9]);
    // The original stays as it was; both are listed.
    let out = brightrun(home.path())
        .args(["datasets", "list", "--json"])
        .output()
        .unwrap();
    assert_eq!(json(&out).as_array().unwrap().len(), 2);
}

/// Every folder and file BrightRun makes under its home is private (0700/0600) even under a
/// permissive umask.
#[cfg(unix)]
#[test]
fn everything_under_the_home_is_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let file = outside.path().join("chat.jsonl");
    std::fs::write(&file, chat_lines(20)).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"umask 022; exec "$0" "$@""#)
        .arg(assert_cmd::cargo::cargo_bin("brightrun"))
        .args(["datasets", "add"])
        .arg(&file)
        .args(["--name", "private", "--wait", "--json"])
        .env("BRIGHTRUN_HOME", home.path())
        .env_remove("BRIGHTRUN_TRAINER_PYTHON")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let mut seen = 0;
    let mut stack = vec![home.path().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = std::fs::symlink_metadata(entry.path()).unwrap();
            let mode = meta.permissions().mode() & 0o777;
            if meta.is_dir() {
                assert_eq!(mode, 0o700, "{}", entry.path().display());
                stack.push(entry.path());
            } else if meta.file_type().is_file() {
                assert_eq!(mode, 0o600, "{}", entry.path().display());
            }
            seen += 1;
        }
    }
    assert!(seen > 5, "only {seen} entries under the home");
    // The user's own file is left as it was.
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
}

/// Everything in the log dir, as text.
fn logs(home: &Path) -> String {
    let dir = home.join("state/logs");
    std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                .collect()
        })
        .unwrap_or_default()
}

/// A malformed secrets.toml, or a token put in config.toml by mistake, is reported by file,
/// line and key; the value reaches neither stderr nor the log.
#[cfg(unix)]
#[test]
fn parse_errors_never_show_the_secret() {
    use std::os::unix::fs::PermissionsExt;
    const SECRET: &str = "sk-live-9f8e7d6c5b4a3210TOPSECRET";
    // An unterminated string in secrets.toml.
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    let secrets = config.join("secrets.toml");
    std::fs::write(
        &secrets,
        format!("hf_token = \"hf_x\"\nrunpod_api_key = \"{SECRET}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = brightrun(home.path())
        .args(["config", "show"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{out:?}");
    assert!(stderr.contains("secrets.toml"), "{stderr}");
    assert!(stderr.contains("line 2"), "{stderr}");
    assert!(stderr.contains("runpod_api_key"), "{stderr}");
    for text in [
        stderr.to_string(),
        String::from_utf8_lossy(&out.stdout).into(),
        logs(home.path()),
    ] {
        assert!(
            !text.contains("TOPSECRET") && !text.contains("sk-live"),
            "{text}"
        );
    }

    // A token in config.toml by mistake, where a number or a table was expected.
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    for text in [
        format!("[profile]\nname = \"{SECRET}\n"),
        format!("[validation]\nmax_seq_length = \"{SECRET}\"\n"),
        format!("profile = \"{SECRET}\"\n"),
    ] {
        std::fs::write(config.join("config.toml"), &text).unwrap();
        let out = brightrun(home.path())
            .args(["config", "show"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{text}: {out:?}");
        assert!(stderr.contains("config.toml"), "{stderr}");
        assert!(stderr.contains("line "), "{stderr}");
        for shown in [
            stderr.to_string(),
            String::from_utf8_lossy(&out.stdout).into(),
            logs(home.path()),
        ] {
            assert!(
                !shown.contains("TOPSECRET") && !shown.contains("sk-live"),
                "{text}: {shown}"
            );
        }
    }
}

#[test]
fn advice_is_never_cut_in_a_pipe() {
    // A multimodal file: the advice ends with the vision-language alternative, past the 140
    // characters at which the CLI used to cut it.
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("images.jsonl");
    let line = r#"{"messages":[{"role":"user","content":"What is this?"},{"role":"assistant","content":"A cat."}],"images":["cat.png"]}"#;
    std::fs::write(&file, format!("{line}\n{line}\n")).unwrap();
    let out = brightrun(home.path())
        .args(["datasets", "add"])
        .arg(&file)
        .args(["--wait", "--json"])
        .output()
        .unwrap();
    let id = json(&out)["id"].as_str().unwrap().to_string();
    let out = brightrun(home.path())
        .args(["datasets", "show", &id])
        .env("COLUMNS", "250")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("or use a vision-language trainer for this data"),
        "{text}"
    );
    assert!(!text.contains('…'), "{text}");
}

#[test]
fn commands_started_together_without_a_daemon_all_succeed() {
    // Scripts, cron jobs and a second shell start commands side by side: the one that finds
    // the store held waits for its holder (or attaches to it) instead of failing.
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("chats.jsonl");
    std::fs::write(&file, chat_lines(20)).unwrap();
    let add = |name: &str| {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("brightrun"));
        c.env("BRIGHTRUN_HOME", home.path())
            .args(["datasets", "add"])
            .arg(&file)
            .args(["--name", name, "--wait", "--json"]);
        c
    };
    let list = || {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("brightrun"));
        c.env("BRIGHTRUN_HOME", home.path())
            .args(["datasets", "list", "--json"]);
        c
    };
    let mut commands = [add("one"), list(), add("two"), list(), list(), add("three")];
    let children: Vec<_> = commands
        .iter_mut()
        .map(|c| {
            c.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice::<Value>(&out.stdout).unwrap();
    }
    let out = list().output().unwrap();
    let names: Vec<String> = json(&out)
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect();
    for name in ["one", "two", "three"] {
        assert!(names.iter().any(|n| n == name), "{names:?}");
    }
    // The same bytes added once more: kept, with a hint naming an earlier dataset.
    let out = add("four").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the same file as dataset"), "{err}");
    assert!(
        ["one", "two", "three"]
            .iter()
            .any(|n| err.contains(&format!("({n}, added"))),
        "{err}"
    );
}
