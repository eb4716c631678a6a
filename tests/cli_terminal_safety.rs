//! Everything the binary writes to a terminal goes through the one sanitiser: arguments,
//! file names and server replies echoed in a message cannot reach it as escape sequences.
//! Each case runs the real binary with hostile arguments and reads stderr and stdout raw.

use assert_cmd::Command;
use std::path::Path;

/// An OSC title change, an OSC 52 clipboard write, a screen clear and an 8-bit CSI.
const HOSTILE: &str = "x\u{1b}]0;owned\u{7}\u{1b}]52;c;ZXZpbA==\u{7}\u{1b}[2J\u{9b}31my";

fn brightrun(home: &Path) -> Command {
    let mut c = Command::cargo_bin("brightrun").unwrap();
    c.env("BRIGHTRUN_HOME", home)
        .env_remove("BRIGHTRUN_TRAINER_PYTHON")
        .env("NO_COLOR", "1");
    c
}

/// Runs `args`, expects a failure, and checks that neither stream holds a control byte
/// (other than newlines) and that stderr still says something.
fn refused_cleanly(home: &Path, args: &[&str]) -> String {
    let out = brightrun(home).args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} succeeded");
    for (name, bytes) in [("stderr", &out.stderr), ("stdout", &out.stdout)] {
        let text = String::from_utf8_lossy(bytes);
        let bad: Vec<char> = text
            .chars()
            .filter(|&c| (c.is_control() && c != '\n') || ('\u{80}'..='\u{9f}').contains(&c))
            .collect();
        assert!(bad.is_empty(), "{args:?}: {name} holds {bad:?}:\n{text:?}");
    }
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr.trim().len() > 10,
        "{args:?}: says nothing: {stderr:?}"
    );
    stderr
}

#[test]
fn hostile_arguments_are_cleaned_in_every_message() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let path = format!("/tmp/{HOSTILE}.jsonl");
    let stderr = refused_cleanly(home, &["datasets", "add", &path]);
    assert!(
        stderr.contains("/tmp/x"),
        "the path is still named: {stderr}"
    );
    refused_cleanly(home, &["datasets", "show", HOSTILE]);
    refused_cleanly(home, &["jobs", "show", HOSTILE]);
    refused_cleanly(home, &["jobs", "list", "--status", HOSTILE]);
    refused_cleanly(home, &["datasets", "list", "--status", HOSTILE]);
    refused_cleanly(home, &["costs", "--period", HOSTILE]);
    refused_cleanly(
        home,
        &["models", "download", HOSTILE, "--to", "/tmp/nowhere"],
    );
    refused_cleanly(home, &["models", "download", "abc", "--to", &path]);
    // --json failures print a document on stdout too: it is checked by refused_cleanly.
    refused_cleanly(home, &["jobs", "show", HOSTILE, "--json"]);
    // clap's own errors echo the argument as well.
    refused_cleanly(home, &["jobs", "list", "--limit", HOSTILE]);
    refused_cleanly(home, &[HOSTILE]);

    // Job options need a dataset to get that far.
    let file = home.join("chat.jsonl");
    std::fs::write(
        &file,
        "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":\"a\"}]}\n",
    )
    .unwrap();
    let add = brightrun(home)
        .args([
            "datasets",
            "add",
            file.to_str().unwrap(),
            "--wait",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    let d: serde_json::Value = serde_json::from_slice(&add.stdout).unwrap();
    let id = d["id"].as_str().unwrap();
    let create = |extra: &[&str]| {
        let mut args = vec!["jobs", "create", "--dataset", id, "--yes"];
        args.extend_from_slice(extra);
        refused_cleanly(home, &args)
    };
    create(&["--gpu", HOSTILE]);
    create(&["--preset", HOSTILE]);
    create(&["--set", &format!("{HOSTILE}=1")]);
    create(&["--set", &format!("learning_rate={HOSTILE}")]);
}

#[test]
fn a_file_name_with_control_characters_asks_for_a_name() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let file = home.join("chat\nnew\u{1b}[2J.jsonl");
    std::fs::write(
        &file,
        "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":\"a\"}]}\n",
    )
    .unwrap();
    let stderr = refused_cleanly(home, &["datasets", "add", file.to_str().unwrap()]);
    assert!(
        stderr.contains("file name") && stderr.contains("--name"),
        "says where the name came from and how to give one: {stderr}"
    );
    let out = brightrun(home)
        .args([
            "datasets",
            "add",
            file.to_str().unwrap(),
            "--name",
            "chat",
            "--wait",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (d["name"].as_str(), d["status"].as_str()),
        (Some("chat"), Some("ready"))
    );
    // The stored file name keeps what the file system calls it, as JSON escapes.
    assert_eq!(d["file_name"], "chat\nnew\u{1b}[2J.jsonl");
}
