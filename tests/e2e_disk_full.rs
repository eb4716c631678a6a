//! A full disk, for real: the data dir on a small tmpfs that the test fills. At 100 %, during
//! an import and during training, every message names the file system, nothing is left half
//! written, and the job recovers once space comes back.
//!
//! Mounting a tmpfs needs root (CAP_SYS_ADMIN), so these tests are ignored by a plain
//! `cargo test`; scripts/test.sh runs them (`--ignored`) when it runs as root, as CI does, and
//! says so when it cannot. Run by hand, a test that cannot mount fails naming why.

mod common;
use common::Home;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A tmpfs of `mb` MiB mounted on a fresh folder; unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(mb: u64) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mb}m,mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Tmpfs { dir },
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
                    Err(e) => e.to_string(),
                };
                panic!("cannot mount a tmpfs for the disk-full tests (needs root): {why}");
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills what is left with one file; returns it (remove it to free the space).
    fn fill(&self) -> PathBuf {
        let filler = self.path().join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 1 << 16];
        while f.write_all(&block).is_ok() {}
        // The last partial block: byte by byte would be slow; what is left is < 64 KiB.
        while f.write_all(&block[..512]).is_ok() {}
        let _ = f.sync_all();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn stderr_of(home: &Home, args: &[&str], code: i32) -> String {
    let out = home.std_cmd().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?}\nstdout: {}\nstderr: {stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

fn temp_files(dir: &Path) -> Vec<PathBuf> {
    common::files_named(dir, &|n| n.starts_with(".tmp-"))
}

#[test]
#[ignore = "needs root to mount a tmpfs; scripts/test.sh runs it with --ignored as root"]
fn a_full_disk_is_named_at_import_and_job_creation_and_leaves_nothing_behind() {
    let fs = Tmpfs::mount(24);
    let home = Home::new_in(fs.path(), 0);
    let ready = home.ready_dataset(30);
    let mount = fs.path().display().to_string();

    // An import bigger than what is free: the copy fails part-way.
    let big = tempfile::NamedTempFile::new().unwrap();
    {
        let line = format!(
            "{{\"messages\":[{{\"role\":\"user\",\"content\":\"{}\"}},{{\"role\":\"assistant\",\"content\":\"ok\"}}]}}\n",
            "q".repeat(2000)
        );
        let mut w = std::io::BufWriter::new(big.as_file());
        for _ in 0..(40 << 20) / line.len() {
            w.write_all(line.as_bytes()).unwrap();
        }
    }
    let stderr = stderr_of(
        &home,
        &["datasets", "add", big.path().to_str().unwrap(), "--wait"],
        3,
    );
    assert!(
        stderr.contains(&mount) && stderr.contains("is full"),
        "names the file system: {stderr}"
    );
    assert_eq!(
        temp_files(home.path()),
        Vec::<PathBuf>::new(),
        "no temp file left"
    );
    let listed = home.json(&["datasets", "list", "--json"], 0);
    let failed: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["id"] != ready.as_str())
        .collect();
    assert_eq!(failed.len(), 1, "{listed:#}");
    assert_eq!(failed[0]["status"], "error");
    assert!(
        failed[0]["error_message"]
            .as_str()
            .is_some_and(|m| m.contains(&mount)),
        "{listed:#}"
    );

    // At 100 %: the store itself cannot be written.
    let elsewhere = tempfile::tempdir().unwrap();
    let small = elsewhere.path().join("small.jsonl");
    std::fs::copy(home.arith_file("small.jsonl", 5), &small).unwrap();
    let filler = fs.fill();
    let stderr = stderr_of(&home, &["datasets", "add", small.to_str().unwrap()], 3);
    assert!(
        stderr.contains(&mount) && stderr.contains("is full"),
        "names the file system: {stderr}"
    );
    let stderr = stderr_of(
        &home,
        &[
            "jobs",
            "create",
            "--dataset",
            &ready,
            "--gpu",
            "A10G",
            "--yes",
        ],
        3,
    );
    assert!(
        stderr.contains(&mount) && stderr.contains("is full"),
        "names the file system: {stderr}"
    );
    assert!(!stderr.contains("database error"), "{stderr}");

    // Space comes back: nothing was lost, nothing half-made, everything works again.
    std::fs::remove_file(filler).unwrap();
    let listed = home.json(&["datasets", "list", "--json"], 0);
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed:#}");
    assert_eq!(
        home.json(&["jobs", "list", "--json"], 0),
        serde_json::json!([])
    );
    assert_eq!(temp_files(home.path()), Vec::<PathBuf>::new());
    let again = home.json(
        &[
            "datasets",
            "add",
            small.to_str().unwrap(),
            "--wait",
            "--json",
        ],
        0,
    );
    assert_eq!(again["status"], "ready");
    let doctor = home.std_cmd().args(["doctor", "--json"]).output().unwrap();
    assert_eq!(
        doctor.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&doctor.stdout)
    );
}

#[test]
#[ignore = "needs root to mount a tmpfs; scripts/test.sh runs it with --ignored as root"]
fn disk_full_during_training_is_named_on_the_job_and_it_recovers_when_space_returns() {
    let fs = Tmpfs::mount(256);
    let home = Home::new_in(fs.path(), 2);
    let dataset = home.ready_dataset(40);
    let job = home.tiny_job(&dataset, &["epochs=4", "batch_size=1"]);
    // The watcher's output goes elsewhere: the tmpfs is about to be full.
    let elsewhere = tempfile::tempdir().unwrap();
    let log = elsewhere.path().join("watch.log");
    let mut watch = home
        .std_cmd()
        .args(["jobs", "watch", &job])
        .stderr(std::fs::File::create(&log).unwrap())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    home.wait_until(180, "the first metrics", || home.metric_lines(&job) >= 3);
    let filler = fs.fill();
    // The trainer dies on its next write; the engine cannot record it and says so.
    let said = || std::fs::read_to_string(&log).unwrap_or_default();
    home.wait_until(120, "the watcher to be told", || {
        said().contains("cannot be recorded")
    });
    let told = said();
    assert!(told.contains(&fs.path().display().to_string()), "{told}");
    // Reads go on while writes cannot, and a command started now attaches to the running
    // engine (it neither gets "previous I/O error" nor tries to open the store beside it).
    let listed = home.json(&["jobs", "list", "--json"], 0);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["id"] == job.as_str()),
        "{listed:#}"
    );
    // The engine may notice first: the trainer meets the full disk only when its events cross
    // into a new page. Space comes back once it has (its failure marker, PROTOCOL.md, is
    // written into space reserved at its start), or once it has exited.
    let job_dir = home.path().join("data/jobs").join(&job);
    home.wait_until(120, "the trainer to meet the full disk", || {
        ["trainer-failure.json", "exit_code.tmp", "exit_code"]
            .iter()
            .any(|f| job_dir.join(f).exists())
    });
    std::fs::remove_file(filler).unwrap();
    // The failure is committed with the file system named, then the job is retried.
    let status = watch.wait().unwrap();
    let done = home.json(
        &["jobs", "show", &job, "--json"],
        if status.success() { 0 } else { 1 },
    );
    assert_eq!(done["status"], "completed", "{done:#}\n{}", said());
    assert!(done["retry_count"].as_u64().unwrap() >= 1, "{done:#}");
    let notes = home.json(&["notifications", "--json"], 0);
    let retried = notes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| {
            n["title"]
                .as_str()
                .is_some_and(|t| t.contains("will be retried"))
        })
        .unwrap_or_else(|| panic!("no retry notification: {notes:#}"));
    // Where the disk filled up decides what the trainer could say: it died writing (the full
    // file system is named), or its event stream broke and it trained on to exit 0 without
    // reporting (named from its failure marker, PROTOCOL.md, else the missing `done`). Either
    // way the job was retried and completed above.
    let message = retried["message"].as_str().unwrap();
    let mount = fs.path().display().to_string();
    assert!(
        (message.contains(&mount)
            && (message.contains("is full") || message.contains("no space left")))
            || message.contains("without reporting `done`"),
        "{message}"
    );
    assert_eq!(
        home.json(&["models", "list", "--json"], 0)
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// An export that fills the disk (issue 27): a merged fp32 SmolLM2 (about 540 MB) exported
/// into a 400 MiB file system. The job fails naming the full disk and the file it was
/// writing, no model is recorded, and nothing half-written is left in the job's folder.
#[test]
#[ignore = "needs root to mount a tmpfs; scripts/test.sh runs it with --ignored as root"]
fn an_export_that_fills_the_disk_fails_naming_it_and_records_nothing() {
    let fs = Tmpfs::mount(400);
    let home = Home::new_in(fs.path(), 0);
    let config = home.path().join("config/config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("evaluation.enabled = false\n{text}")).unwrap();
    let d = home.zubrowka_dataset();
    let job = home.json(
        &[
            "jobs",
            "create",
            "--dataset",
            d["id"].as_str().unwrap(),
            "--set",
            "base_model=brightrun/smollm2-135m-instruct",
            "--set",
            "epochs=1",
            "--yes",
            "--json",
        ],
        0,
    );
    let done = home.json(&["jobs", "watch", job["id"].as_str().unwrap(), "--json"], 0);
    assert_eq!(done["status"], "completed", "{done:#}");
    let adapter = done["artifact_id"].as_str().unwrap().to_string();
    let queued = home.json(
        &[
            "models", "export", &adapter, "--format", "merged", "--dtype", "f32", "--yes", "--json",
        ],
        0,
    );
    let id = queued["id"].as_str().unwrap().to_string();
    let failed = home.json(&["jobs", "watch", &id, "--json"], 1);
    assert_eq!(failed["status"], "failed", "{failed:#}");
    let message = failed["error_message"].as_str().unwrap_or_default();
    assert!(
        message.contains("no space left") && message.contains("model"),
        "{message}"
    );
    let models = home.json(&["models", "list", "--json"], 0);
    assert_eq!(models.as_array().unwrap().len(), 1, "{models:#}");
    let leftovers = common::files_named(&home.job_dir(&id), &|n: &str| {
        n.ends_with(".safetensors") || n == "export.json"
    });
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
