//! The kill matrix: the real binary killed with SIGKILL at each step that writes something
//! (the import's copy, validation, dispatch, the metrics writes, artifact collection, the
//! download), then run again. After each restart nothing is lost, duplicated, orphaned or
//! stuck: one dataset, one job that completes once with every step once, one model, a doctor
//! with nothing to say, and files that match their sha256.

mod common;
use common::{Home, files_named, sha256_file};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

fn kill9(child: &mut Child) {
    // SAFETY: killing a child this test spawned.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    let _ = child.wait();
}

/// Polls `f` every 5 ms (for moments that pass quickly) for up to `secs`.
fn soon(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn doctor_is_clean(home: &Home) {
    let out = home.std_cmd().args(["doctor", "--json"]).output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["ok"], true, "{report:#}");
}

fn datasets(home: &Home) -> Vec<Value> {
    home.json(&["datasets", "list", "--json"], 0)
        .as_array()
        .unwrap()
        .clone()
}

/// How many times the engines of `home` logged that they began validating dataset `id`.
fn validations_logged(home: &Home, id: &str) -> usize {
    files_named(home.path(), &|n| {
        n.starts_with("brightrun") && n.ends_with(".log")
    })
    .iter()
    .filter_map(|f| std::fs::read_to_string(f).ok())
    .map(|t| {
        t.lines()
            .filter(|l| l.contains("validating the stored file") && l.contains(id))
            .count()
    })
    .sum()
}

#[test]
fn an_import_killed_mid_copy_or_mid_validation_resumes_into_one_ready_dataset() {
    let home = Home::new(0);
    // ~60 MB, so the copy and the validation each take a moment to kill into.
    let file = home.path().join("big.jsonl");
    {
        use std::io::Write;
        let mut w = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        for i in 0..200_000 {
            writeln!(
                w,
                "{{\"messages\":[{{\"role\":\"user\",\"content\":\"question {i} {}\"}},{{\"role\":\"assistant\",\"content\":\"answer {i}\"}}]}}",
                "x".repeat(200)
            )
            .unwrap();
        }
    }
    let objects = home.path().join("data/objects");
    let mut add = home
        .std_cmd()
        .args(["datasets", "add", file.to_str().unwrap(), "--wait"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    soon(60, "the copy to start", || {
        !files_named(&objects, &|n| n.starts_with(".tmp-")).is_empty()
    });
    kill9(&mut add);

    // The next command sweeps the copy's temp file and the record says what happened.
    let listed = datasets(&home);
    assert_eq!(listed.len(), 1, "{listed:#?}");
    let d = &listed[0];
    let id = d["id"].as_str().unwrap().to_string();
    assert_eq!(d["status"], "uploading");
    let note = d["error_message"].as_str().unwrap_or_default();
    assert!(
        note.contains("interrupted") && note.contains(&format!("datasets resume {id}")),
        "{d:#}"
    );
    assert!(files_named(&objects, &|n| n.starts_with(".tmp-")).is_empty());

    // Resuming continues that record from the source file: no second dataset.
    let resumed = home.json(&["datasets", "resume", &id, "--json"], 0);
    assert_eq!(resumed["status"], "ready", "{resumed:#}");
    assert!(resumed["error_message"].is_null(), "{resumed:#}");
    assert_eq!(
        resumed["sha256"].as_str(),
        Some(sha256_file(&file).as_str())
    );

    // Killed mid-validation: the record says so, and validating again finishes it.
    let logged = validations_logged(&home, &id);
    let mut validate = home
        .std_cmd()
        .args(["datasets", "validate", &id])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The engine logs once the record is `validating`, just before it reads the 60 MB.
    soon(60, "the validation to start", || {
        validations_logged(&home, &id) > logged
    });
    kill9(&mut validate);
    let shown = home.json(&["datasets", "show", &id, "--json"], 0);
    assert_eq!(shown["status"], "validating", "{shown:#}");
    assert!(
        shown["error_message"]
            .as_str()
            .is_some_and(|m| m.contains(&format!("datasets validate {id}"))),
        "{shown:#}"
    );
    let again = home.json(&["datasets", "validate", &id, "--json"], 0);
    assert_eq!(again["status"], "ready");
    assert!(again["error_message"].is_null(), "{again:#}");
    assert_eq!(datasets(&home).len(), 1);
    doctor_is_clean(&home);
}

#[test]
fn training_killed_at_dispatch_mid_run_and_at_collection_completes_once() {
    let home = Home::new(0);
    let dataset = home.ready_dataset(40);
    let job = home.tiny_job(&dataset, &["epochs=2", "batch_size=2"]);
    let dir = home.job_dir(&job);
    let watch = || {
        home.std_cmd()
            .args(["jobs", "watch", &job])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };

    // Dispatch: killed as the trainer is being started.
    let mut engine = watch();
    soon(120, "the dispatch", || dir.join("spec.json").exists());
    kill9(&mut engine);

    // The metrics writes: killed while the trainer reports.
    let mut engine = watch();
    home.wait_until(180, "the first metrics", || home.metric_lines(&job) >= 3);
    kill9(&mut engine);

    // Artifact collection: killed the moment the trainer has finished.
    let mut engine = watch();
    soon(240, "the trainer to finish", || {
        dir.join("exit_code").exists()
    });
    kill9(&mut engine);

    let done = home.json(&["jobs", "watch", &job, "--json"], 0);
    assert_eq!(done["status"], "completed", "{done:#}");
    assert_eq!(
        done["retry_count"], 0,
        "one attempt, never restarted: {done:#}"
    );
    let total = done["total_steps"].as_u64().unwrap();
    let metrics = home.json(&["jobs", "metrics", &job, "--json"], 0);
    let steps: Vec<u64> = metrics
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["training_loss"].is_number())
        .map(|p| p["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, (1..=total).collect::<Vec<_>>(), "every step once");
    let models = home.json(&["models", "list", "--json"], 0);
    let models = models.as_array().unwrap();
    assert_eq!(models.len(), 1, "{models:#?}");
    let notes = home.json(&["notifications", "--json"], 0);
    let count = |kind: &str| {
        notes
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["type"] == kind)
            .count()
    };
    assert_eq!(
        (count("job_completed"), count("artifact_ready")),
        (1, 1),
        "{notes:#}"
    );
    doctor_is_clean(&home);

    // The download: a killed one leaves a partial file; the same command again finishes it
    // (files already there and matching their sha256 are kept).
    let model = models[0]["id"].as_str().unwrap().to_string();
    let to = home.path().join("adapter");
    let download = || {
        home.json(
            &[
                "models",
                "download",
                &model,
                "--to",
                to.to_str().unwrap(),
                "--json",
            ],
            0,
        )
    };
    let first = download();
    let files: Vec<PathBuf> = first
        .as_array()
        .unwrap()
        .iter()
        .map(|p| PathBuf::from(p.as_str().unwrap()))
        .collect();
    assert!(files.len() >= 2, "{first:#}");
    // What a kill part-way leaves: one file not yet renamed into place, a `.part` beside it.
    let victim = files
        .iter()
        .find(|p| p.file_name().unwrap() == "adapter_model.safetensors")
        .unwrap();
    let part = victim.with_file_name(".adapter_model.safetensors.part");
    std::fs::rename(victim, &part).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&part)
        .unwrap()
        .set_len(100)
        .unwrap();
    let second = download();
    assert_eq!(second, first);
    let shown = home.json(&["models", "show", &model, "--json"], 0);
    for f in shown["files"].as_array().unwrap() {
        let path = to.join(f["path"].as_str().unwrap());
        assert_eq!(
            Some(sha256_file(&path).as_str()),
            f["sha256"].as_str(),
            "{}",
            path.display()
        );
    }
    assert!(!part.exists(), "the partial file was replaced");
    // A file that differs is still never overwritten without --force.
    std::fs::write(victim, "not the adapter").unwrap();
    let refused = home
        .std_cmd()
        .args(["models", "download", &model, "--to", to.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
}
