//! The real binary when its data dir has lost something: the config's profile user id, the
//! store's bytes, the store itself. Nothing may start afresh silently; every refusal names
//! what it found and the way out, and `backup restore` brings a damaged store back. One
//! damaged record is left out of lists, named by `doctor` and quarantined by `--repair`.

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn brightrun(home: &Path) -> Command {
    let mut c = Command::cargo_bin("brightrun").unwrap();
    c.env("BRIGHTRUN_HOME", home)
        .env_remove("BRIGHTRUN_TRAINER_PYTHON")
        .env_remove("BRIGHTRUN_ADOPT_STORE")
        .env("NO_COLOR", "1");
    c
}

/// Runs `args`, asserts the exit status, and returns (stdout, stderr).
fn run(home: &Path, args: &[&str], code: i32) -> (String, String) {
    let out = brightrun(home).args(args).output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(
        out.status.code(),
        Some(code),
        "brightrun {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (stdout, stderr)
}

fn json(home: &Path, args: &[&str]) -> Value {
    let (stdout, _) = run(home, args, 0);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// A home with one ready dataset; returns the dataset's id.
fn home_with_a_dataset(home: &Path) -> String {
    add_dataset(home, "chat")
}

/// Adds a small valid chat dataset from `<name>.jsonl`; returns its id.
fn add_dataset(home: &Path, name: &str) -> String {
    let file = home.join(format!("{name}.jsonl"));
    let lines: String = (0..20)
        .map(|i| {
            format!(
                r#"{{"messages":[{{"role":"user","content":"q {i}"}},{{"role":"assistant","content":"a {i}"}}]}}"#
            ) + "\n"
        })
        .collect();
    std::fs::write(&file, lines).unwrap();
    let d = json(
        home,
        &[
            "datasets",
            "add",
            file.to_str().unwrap(),
            "--wait",
            "--json",
        ],
    );
    assert_eq!(d["status"], "ready", "{d}");
    d["id"].as_str().unwrap().to_string()
}

fn listed_ids(home: &Path) -> Vec<String> {
    json(home, &["datasets", "list", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect()
}

fn config(home: &Path) -> PathBuf {
    home.join("config/config.toml")
}

fn store(home: &Path) -> PathBuf {
    home.join("data/brightrun.redb")
}

fn config_user(home: &Path) -> String {
    let text = std::fs::read_to_string(config(home)).unwrap();
    let v: toml::Value = toml::from_str(&text).unwrap();
    v["profile"]["user_id"].as_str().unwrap().to_string()
}

#[test]
fn a_deleted_or_emptied_config_keeps_every_record_visible() {
    let home = tempfile::tempdir().unwrap();
    let id = home_with_a_dataset(home.path());
    let user = config_user(home.path());
    std::fs::remove_file(config(home.path())).unwrap();
    assert_eq!(listed_ids(home.path()), vec![id.clone()]);
    assert_eq!(
        config_user(home.path()),
        user,
        "the store's id is written back"
    );
    std::fs::write(config(home.path()), "").unwrap();
    assert_eq!(listed_ids(home.path()), vec![id]);
    assert_eq!(config_user(home.path()), user);
}

#[test]
fn another_profile_id_is_refused_until_the_store_is_adopted() {
    let home = tempfile::tempdir().unwrap();
    let id = home_with_a_dataset(home.path());
    let user = config_user(home.path());
    let other = "0193a5b0-0000-7000-8000-000000000001";
    std::fs::write(
        config(home.path()),
        format!("# kept\n[profile]\nuser_id = \"{other}\"\n"),
    )
    .unwrap();
    let (_, stderr) = run(home.path(), &["datasets", "list"], 2);
    assert!(stderr.contains(&user), "{stderr}");
    assert!(stderr.contains(other), "{stderr}");
    assert!(stderr.contains("BRIGHTRUN_ADOPT_STORE=1"), "{stderr}");
    assert_eq!(config_user(home.path()), other, "a refusal writes nothing");

    let out = brightrun(home.path())
        .env("BRIGHTRUN_ADOPT_STORE", "1")
        .args(["datasets", "list", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(config_user(home.path()), user);
    let text = std::fs::read_to_string(config(home.path())).unwrap();
    assert!(
        text.contains("# kept"),
        "the rest of the file is kept: {text}"
    );
}

#[test]
fn an_emptied_or_deleted_store_beside_stored_data_is_an_error_not_a_fresh_start() {
    let home = tempfile::tempdir().unwrap();
    home_with_a_dataset(home.path());
    std::fs::write(store(home.path()), "").unwrap();
    let (stdout, stderr) = run(home.path(), &["datasets", "list", "--json"], 2);
    assert!(stderr.contains("is empty (0 bytes)"), "{stderr}");
    assert!(stderr.contains("1 stored object(s)"), "{stderr}");
    assert!(
        stderr.contains(&store(home.path()).display().to_string()),
        "{stderr}"
    );
    assert!(!stdout.contains("[]"), "no empty list: {stdout}");
    assert_eq!(std::fs::metadata(store(home.path())).unwrap().len(), 0);
    std::fs::remove_file(store(home.path())).unwrap();
    let (_, stderr) = run(home.path(), &["datasets", "list"], 2);
    assert!(stderr.contains("is missing"), "{stderr}");
    assert!(!store(home.path()).exists());
}

#[test]
fn a_damaged_store_is_named_and_backup_restore_brings_it_back() {
    let home = tempfile::tempdir().unwrap();
    let id = home_with_a_dataset(home.path());
    let b = json(home.path(), &["backup", "create", "--json"]);
    assert_eq!(b["reason"], "manual");
    let mut bytes = std::fs::read(store(home.path())).unwrap();
    bytes[..9].copy_from_slice(b"XXXXXXXXX");
    std::fs::write(store(home.path()), bytes).unwrap();

    let (_, stderr) = run(home.path(), &["datasets", "list"], 3);
    assert!(
        stderr.contains(&store(home.path()).display().to_string()),
        "{stderr}"
    );
    assert!(stderr.contains("brightrun backup restore"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let list = json(home.path(), &["backup", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["id"], b["id"]);
    let (table, _) = run(home.path(), &["backup", "list"], 0);
    assert!(table.contains("SCHEMA"), "{table}");
    assert!(table.contains(b["id"].as_str().unwrap()), "{table}");

    let r = json(home.path(), &["backup", "restore", "latest", "--json"]);
    assert_eq!(r["backup"]["id"], b["id"]);
    assert!(Path::new(r["replaced"].as_str().unwrap()).exists());
    assert_eq!(listed_ids(home.path()), vec![id]);

    let (_, stderr) = run(home.path(), &["backup", "restore", "no-such-backup"], 2);
    assert!(stderr.contains("`no-such-backup`"), "{stderr}");
}

#[test]
fn a_copy_cut_off_by_a_kill_leaves_no_temp_file_after_the_next_command() {
    let home = tempfile::tempdir().unwrap();
    home_with_a_dataset(home.path());
    let user = config_user(home.path());
    let dir = home
        .path()
        .join(format!("data/objects/lora-datasets/{user}"));
    // What `datasets add` leaves when it is killed mid-copy.
    let tmp = dir.join(".tmp-4242-0123456789abcdef");
    std::fs::write(&tmp, vec![b'x'; 4096]).unwrap();
    let stored_before = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(listed_ids(home.path()).len(), 1);
    assert!(!tmp.exists(), "the stale temp file is removed");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), stored_before - 1);
}

/// Writes `text` at `path`, dated an hour back: older than any write the doctor would take
/// for one in flight.
fn old_file(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
        .unwrap();
}

fn doctor_step<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}: {report}"))
}

#[test]
fn doctor_names_what_a_damaged_home_lost_and_repair_leaves_it_clean() {
    let home = tempfile::tempdir().unwrap();
    let id = home_with_a_dataset(home.path());
    let user = config_user(home.path());
    let (clean, _) = run(home.path(), &["doctor"], 0);
    assert!(clean.contains("no problems left"), "{clean}");

    let shown = json(home.path(), &["datasets", "show", &id, "--json"]);
    let objects = home.path().join("data/objects/lora-datasets");
    let stored = objects.join(shown["storage_path"].as_str().unwrap());
    let aside = home.path().join("aside.jsonl");
    std::fs::rename(&stored, &aside).unwrap();
    let orphan = objects.join(format!("{user}/stray/stray.jsonl"));
    old_file(&orphan, "no record names me");
    let job_folder = home
        .path()
        .join("data/jobs/0190f5a2-7c1e-7000-8000-000000000001");
    old_file(&job_folder.join("trainer.log"), "a log");
    old_file(&objects.join(format!("{user}/.tmp-99-abc")), "half");

    let (stdout, _) = run(home.path(), &["doctor", "--json"], 1);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ok"], false);
    let missing = doctor_step(&report, "missing_objects");
    assert_eq!(missing["problems"], 1, "{missing}");
    assert!(
        missing["examples"][0].as_str().unwrap().contains(&id[..8]),
        "{missing}"
    );
    let orphans = doctor_step(&report, "orphaned_objects");
    assert_eq!(
        (orphans["problems"].as_u64(), orphans["repaired"].as_u64()),
        (Some(1), Some(0))
    );
    assert!(
        orphans["examples"][0]
            .as_str()
            .unwrap()
            .contains("stray.jsonl"),
        "{orphans}"
    );
    let jobs = doctor_step(&report, "job_folders");
    assert_eq!(jobs["problems"], 1, "{jobs}");
    // The engine's opening sweep already removed the temp file: reported as repaired.
    let temps = doctor_step(&report, "temp_files");
    assert_eq!(
        (temps["problems"].as_u64(), temps["ok"].as_bool()),
        (Some(1), Some(true))
    );
    assert!(
        orphan.exists() && job_folder.exists(),
        "no repair without --repair"
    );

    // What the advice says for the lost object: put the file back.
    std::fs::rename(&aside, &stored).unwrap();
    let (repaired, _) = run(home.path(), &["doctor", "--repair"], 0);
    assert!(repaired.contains("repaired 1"), "{repaired}");
    assert!(!orphan.exists() && !job_folder.exists());
    let quarantine = home.path().join("data/quarantine");
    assert!(
        quarantine
            .join(format!("objects/lora-datasets/{user}/stray/stray.jsonl"))
            .is_file()
    );
    let (after, _) = run(home.path(), &["doctor"], 0);
    assert!(after.contains("no problems left"), "{after}");
    assert_eq!(listed_ids(home.path()), vec![id]);
}

#[test]
fn doctor_on_a_store_that_cannot_open_names_it_with_exit_1() {
    let home = tempfile::tempdir().unwrap();
    home_with_a_dataset(home.path());
    let mut bytes = std::fs::read(store(home.path())).unwrap();
    bytes[..9].copy_from_slice(b"XXXXXXXXX");
    std::fs::write(store(home.path()), bytes).unwrap();
    let (stdout, stderr) = run(home.path(), &["doctor", "--json"], 1);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ok"], false);
    let s = doctor_step(&report, "store");
    let example = s["examples"][0].as_str().unwrap();
    assert!(
        example.contains(&store(home.path()).display().to_string()),
        "{report}"
    );
    assert!(
        s["advice"].as_str().unwrap().contains("backup restore"),
        "{report}"
    );
    let (text, stderr) = run(home.path(), &["doctor"], 1);
    assert!(text.contains("store") && text.contains("problem"), "{text}");
    assert!(!stderr.contains("panicked"), "{stderr}");
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

    let listed = json(home.path(), &["datasets", "list", "--json"]);
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [kept.as_str()], "{listed:#}");

    let report = json(home.path(), &["doctor", "--json"]);
    let corrupt = doctor_step(&report, "corrupt_records");
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

    let repaired = json(home.path(), &["doctor", "--repair", "--json"]);
    assert_eq!(repaired["ok"], true, "{repaired:#}");
    let corrupt = doctor_step(&repaired, "corrupt_records");
    assert_eq!(corrupt["ok"], true, "{corrupt:#}");
    assert!(
        examples(corrupt)
            .iter()
            .any(|e| e.contains(&damaged) && e.contains("in quarantine")),
        "{corrupt:#}"
    );
    let again = json(home.path(), &["doctor", "--json"]);
    assert_eq!(again["ok"], true, "{again:#}");
    assert_eq!(
        doctor_step(&again, "corrupt_records")["problems"],
        0,
        "{again:#}"
    );

    // The rest of the store is as usable as before.
    let listed = json(home.path(), &["datasets", "list", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed:#}");
    let third = add_dataset(home.path(), "afterwards");
    let listed = json(home.path(), &["datasets", "list", "--json"]);
    assert_eq!(listed[0]["id"], third.as_str(), "{listed:#}");
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed:#}");
}
