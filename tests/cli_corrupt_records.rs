//! The real binary when one record in the store file is damaged (issue #13): lists still
//! work and leave it out, `doctor` names it by table and id, and after `doctor --repair` it
//! sits in the store's quarantine table and doctor is clean.

use assert_cmd::Command;
use serde_json::Value;
use std::path::Path;

fn brightrun(home: &Path) -> Command {
    let mut c = Command::cargo_bin("brightrun").unwrap();
    c.env("BRIGHTRUN_HOME", home)
        .env_remove("BRIGHTRUN_TRAINER_PYTHON")
        .env_remove("BRIGHTRUN_ADOPT_STORE")
        .env("NO_COLOR", "1");
    c
}

/// Runs `args` with `--json`, asserts the exit status, and parses stdout.
fn json(home: &Path, args: &[&str], code: i32) -> Value {
    let out = brightrun(home).args(args).arg("--json").output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(
        out.status.code(),
        Some(code),
        "brightrun {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// Adds a small valid chat dataset from `<name>.jsonl`; returns its id.
fn add_dataset(home: &Path, name: &str) -> String {
    let file = home.join(format!("{name}.jsonl"));
    let lines: String = (0..10)
        .map(|i| {
            format!(
                r#"{{"messages":[{{"role":"user","content":"q {i}"}},{{"role":"assistant","content":"a {i}"}}]}}"#
            ) + "\n"
        })
        .collect();
    std::fs::write(&file, lines).unwrap();
    let d = json(
        home,
        &["datasets", "add", file.to_str().unwrap(), "--wait"],
        0,
    );
    assert_eq!(d["status"], "ready", "{d}");
    d["id"].as_str().unwrap().to_string()
}

/// Flips one bit in every occurrence of `marker` in the store file: in the live dataset
/// record (its name, file name and source path hold it) and in any older copy or change-log
/// entry, which no list reads. The bytes stay printable, so without a checksum the record
/// would still decode, as another name.
fn damage_store(home: &Path, marker: &[u8]) {
    let path = home.join("data/brightrun.redb");
    let mut bytes = std::fs::read(&path).unwrap();
    let mut hits = 0;
    let mut at = 0;
    while let Some(i) = bytes[at..].windows(marker.len()).position(|w| w == marker) {
        bytes[at + i] ^= 0x01;
        hits += 1;
        at += i + marker.len();
    }
    assert!(hits > 0, "the marker is in the store file");
    std::fs::write(&path, bytes).unwrap();
}

fn step<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {report:#}"))
}

fn examples(step: &Value) -> Vec<String> {
    step["examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_damaged_dataset_record_is_left_out_named_by_doctor_and_quarantined() {
    let home = tempfile::tempdir().unwrap();
    let kept = add_dataset(home.path(), "keptdata");
    let damaged = add_dataset(home.path(), "corruptme");
    damage_store(home.path(), b"corruptme");

    let listed = json(home.path(), &["datasets", "list"], 0);
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [kept.as_str()], "{listed:#}");

    let report = json(home.path(), &["doctor"], 0);
    let corrupt = step(&report, "corrupt_records");
    let named = examples(corrupt);
    assert!(
        named
            .iter()
            .any(|e| e.contains("`datasets`") && e.contains(&damaged)),
        "{corrupt:#}"
    );
    let advice = corrupt["advice"].as_str().unwrap();
    assert!(
        advice.contains("quarantined_records") && advice.contains("backup list"),
        "{advice}"
    );

    let repaired = json(home.path(), &["doctor", "--repair"], 0);
    assert_eq!(repaired["ok"], true, "{repaired:#}");
    let corrupt = step(&repaired, "corrupt_records");
    assert_eq!(corrupt["ok"], true, "{corrupt:#}");
    assert!(
        examples(corrupt)
            .iter()
            .any(|e| e.contains(&damaged) && e.contains("in quarantine")),
        "{corrupt:#}"
    );
    let again = json(home.path(), &["doctor"], 0);
    assert_eq!(again["ok"], true, "{again:#}");
    assert_eq!(step(&again, "corrupt_records")["problems"], 0, "{again:#}");

    // The rest of the store is as usable as before.
    let listed = json(home.path(), &["datasets", "list"], 0);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed:#}");
    let third = add_dataset(home.path(), "afterwards");
    let listed = json(home.path(), &["datasets", "list"], 0);
    assert_eq!(listed[0]["id"], third.as_str(), "{listed:#}");
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed:#}");
}
