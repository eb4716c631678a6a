//! End to end through the real binary and the real trainer (PEFT on a tiny random Llama, on
//! CPU): a dataset becomes a downloadable adapter; cancelling, killing the engine and crashing
//! trainers all leave the right state behind.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;

fn steps(metrics: &Value) -> Vec<u64> {
    metrics
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["step"].as_u64().unwrap())
        .collect()
}

#[test]
fn a_dataset_trains_into_a_downloadable_adapter() {
    let home = Home::new(0);
    let dataset = home.ready_dataset(40);
    let job = home.tiny_job(&dataset, &["epochs=2"]);
    let done = home.json(&["jobs", "watch", &job[..8], "--json"], 0);
    assert_eq!(done["status"], "completed", "{done:#}");
    assert_eq!(done["current_stage"], "completed");
    assert_eq!(done["progress"], 100.0);
    let total = done["total_steps"].as_u64().unwrap();
    assert!(total >= 2);

    // Every logged step is stored once, in order, with losses; evaluation produced a
    // validation loss.
    let metrics = home.json(&["jobs", "metrics", &job, "--json"], 0);
    assert_eq!(steps(&metrics), (1..=total).collect::<Vec<_>>());
    let arr = metrics.as_array().unwrap();
    assert!(arr.iter().all(|p| p["training_loss"].is_number()));
    assert!(arr.iter().any(|p| p["validation_loss"].is_number()));
    assert!(arr.iter().all(|p| p["learning_rate"].is_number()));

    // The artifact: quality metrics, the adapter files, and a download that matches them.
    let models = home.json(&["models", "list", "--json"], 0);
    let model = &models[0];
    assert_eq!(model["job_id"], job.as_str());
    assert_eq!(done["artifact_id"], model["id"]);
    let score = model["quality_metrics"]["quality_score"].as_u64().unwrap();
    assert!((1..=5).contains(&score));
    // The run evaluated the adapter against its base on the held-out split, before saving:
    // the evaluation travels with the model (a file of it, and `models show --json`).
    let shown = home.json(
        &["models", "show", model["id"].as_str().unwrap(), "--json"],
        0,
    );
    let e = &shown["evaluation"];
    for key in [
        "base_loss",
        "adapter_loss",
        "base_perplexity",
        "adapter_perplexity",
    ] {
        assert!(e[key].as_f64().is_some_and(f64::is_finite), "{key}: {e:#}");
    }
    assert_eq!(e["samples_from"], "validation", "{e:#}");
    assert!(!e["samples"].as_array().unwrap().is_empty(), "{e:#}");
    let probes = e["probes"].as_array().unwrap();
    assert!(probes.len() >= 6, "the built-in probes: {e:#}");
    assert!(
        probes
            .iter()
            .all(|p| p["base"].is_string() && p["adapter"].is_string())
    );
    let logs = home.json(&["jobs", "logs", &job, "--json"], 0);
    assert!(
        logs.as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("[evaluating]")),
        "{logs:#}"
    );
    let names: BTreeSet<&str> = model["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(names.contains("adapter_config.json"), "{names:?}");
    assert!(names.contains("adapter_model.safetensors"), "{names:?}");
    assert!(names.contains("evaluation.json"), "{names:?}");
    let out = home.path().join("download");
    let id = model["id"].as_str().unwrap();
    home.json(
        &[
            "models",
            "download",
            id,
            "--to",
            out.to_str().unwrap(),
            "--json",
        ],
        0,
    );
    for f in model["files"].as_array().unwrap() {
        let p = out.join(f["path"].as_str().unwrap());
        assert_eq!(sha256_file(&p), f["sha256"].as_str().unwrap(), "{p:?}");
    }
    // A second download keeps the files already there (same size and sha256) ...
    let again = home
        .cmd()
        .args(["models", "download", id, "--to", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0));
    // ... and refuses to overwrite one that differs.
    let first = out.join(model["files"][0]["path"].as_str().unwrap());
    std::fs::write(&first, "changed").unwrap();
    let again = home
        .cmd()
        .args(["models", "download", id, "--to", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    let forced = home
        .cmd()
        .args([
            "models",
            "download",
            id,
            "--to",
            out.to_str().unwrap(),
            "--force",
        ])
        .output()
        .unwrap();
    assert_eq!(forced.status.code(), Some(0));
    assert_eq!(
        sha256_file(&first),
        model["files"][0]["sha256"].as_str().unwrap()
    );

    // The adapter loads on the tiny base with PEFT and generates.
    let script = format!(
        r#"
import subprocess, sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import PeftModel
base_dir = subprocess.check_output([sys.executable, "-m", "brightrun_trainer", "make-tiny-model", "--out", {base:?}], text=True).strip().splitlines()[-1]
base = AutoModelForCausalLM.from_pretrained(base_dir)
model = PeftModel.from_pretrained(base, {adapter:?})
lora = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
assert lora > 0, "no LoRA weights"
tok = AutoTokenizer.from_pretrained({adapter:?})
ids = tok("What is 2 plus 2?", return_tensors="pt").input_ids
out = model.generate(ids, max_new_tokens=3, do_sample=False)
print("LORA", lora, out.shape[1] > ids.shape[1])
"#,
        base = home.path().join("tiny-base").to_str().unwrap(),
        adapter = out.to_str().unwrap()
    );
    let py = std::process::Command::new(trainer_python())
        .args(["-c", &script])
        .env(
            "PYTHONPATH",
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("trainer"),
        )
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&py.stdout);
    assert!(
        py.status.success() && stdout.contains("LORA") && stdout.contains("True"),
        "PEFT could not load the adapter:\n{stdout}\n{}",
        String::from_utf8_lossy(&py.stderr)
    );

    // Costs and notifications.
    let costs = home.json(&["costs", "--period", "week", "--json"], 0);
    assert!(costs["by_type"]["compute"].as_f64().unwrap() > 0.0);
    assert_eq!(costs["by_job"][0]["job_id"], job.as_str());
    // The estimate's flat storage line ($0.50 for keeping the model) is what is recorded,
    // in the job's final cost and in the costs, on the day the model was kept.
    let storage =
        done["final_cost"].as_f64().unwrap() - costs["by_type"]["compute"].as_f64().unwrap();
    assert!((storage - 0.5).abs() < 1e-6, "{done:#} {costs:#}");
    assert!(
        costs["by_type"]["storage"].as_f64().unwrap() >= 0.5,
        "{costs:#}"
    );
    let by_job = costs["by_job"][0]["amount"].as_f64().unwrap();
    assert!(
        (by_job - done["final_cost"].as_f64().unwrap()).abs() < 1e-9,
        "{costs:#}"
    );
    let today = chrono::Utc::now().date_naive().to_string();
    let days = costs["by_day"].as_array().unwrap();
    let first_spent = days.iter().find(|d| d[1].as_f64().unwrap() > 0.0).unwrap();
    assert_eq!(first_spent[0], today.as_str(), "{costs:#}");
    let notes = home.json(&["notifications", "--json"], 0);
    let kinds: BTreeSet<&str> = notes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    for k in [
        "dataset_ready",
        "job_queued",
        "job_started",
        "job_completed",
        "artifact_ready",
    ] {
        assert!(kinds.contains(k), "missing {k} in {kinds:?}");
    }
    let marked = home.json(&["notifications", "read", "--all", "--json"], 0);
    assert_eq!(
        marked["marked_read"].as_u64().unwrap() as usize,
        notes.as_array().unwrap().len()
    );
    assert_eq!(
        home.json(&["notifications", "--unread", "--json"], 0),
        serde_json::json!([])
    );
}

#[test]
fn killing_the_engine_mid_run_loses_and_duplicates_nothing() {
    let home = Home::new(0);
    let dataset = home.ready_dataset(40);
    // batch 2 over 36 training examples: 18 steps an epoch, 36 in all.
    let job = home.tiny_job(&dataset, &["epochs=2", "batch_size=2"]);
    let mut engine = home
        .std_cmd()
        .args(["jobs", "watch", &job])
        .spawn()
        .unwrap();
    home.wait_until(180, "the first metrics", || home.metric_lines(&job) >= 3);
    // SAFETY: killing the child we spawned.
    unsafe {
        libc::kill(engine.id() as i32, libc::SIGKILL);
    }
    let _ = engine.wait();
    // The trainer goes on without the engine.
    let seen = home.metric_lines(&job);
    home.wait_until(120, "the trainer to go on alone", || {
        home.metric_lines(&job) > seen
    });
    let done = home.json(&["jobs", "watch", &job, "--json"], 0);
    assert_eq!(done["status"], "completed", "{done:#}");
    let total = done["total_steps"].as_u64().unwrap();
    assert_eq!(total, 36);
    let metrics = home.json(&["jobs", "metrics", &job, "--json"], 0);
    assert_eq!(steps(&metrics), (1..=total).collect::<Vec<_>>());
    assert_eq!(
        home.json(&["models", "list", "--json"], 0)
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_cancelled_job_stops_its_trainer_and_costs_what_it_ran() {
    let home = Home::new(0);
    let dataset = home.ready_dataset(40);
    // The same run, uninterrupted: what the cancelled one continued must match.
    let whole = home.tiny_job(&dataset, &["epochs=3", "batch_size=1"]);
    let done = home.json(&["jobs", "watch", &whole, "--json"], 0);
    assert_eq!(done["status"], "completed", "{done:#}");
    let job = home.tiny_job(&dataset, &["epochs=3", "batch_size=1"]);
    let mut engine = home
        .std_cmd()
        .args(["jobs", "watch", &job])
        .spawn()
        .unwrap();
    home.wait_until(180, "the first metrics", || home.metric_lines(&job) >= 2);
    // SAFETY: killing the child we spawned.
    unsafe {
        libc::kill(engine.id() as i32, libc::SIGKILL);
    }
    let _ = engine.wait();
    let cancelled = home.json(&["jobs", "cancel", &job, "--json"], 0);
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["final_cost"].as_f64().unwrap() > 0.0);
    // The trainer saved a checkpoint and exited on SIGTERM (143).
    let exit = home.job_dir(&job).join("exit_code");
    home.wait_until(60, "the trainer to exit", || exit.exists());
    assert_eq!(std::fs::read_to_string(&exit).unwrap().trim(), "143");
    let events = std::fs::read_to_string(home.job_dir(&job).join("events.jsonl")).unwrap();
    assert!(
        events.contains("\"checkpoint\""),
        "no checkpoint event:\n{events}"
    );
    // A cancelled job can be cancelled no more, and can be retried with the same config.
    let again = home.cmd().args(["jobs", "cancel", &job]).output().unwrap();
    assert_eq!(again.status.code(), Some(2));
    let retry = home.json(&["jobs", "retry", &job, "--yes", "--json"], 0);
    assert_eq!(retry["status"], "queued");
    assert_eq!(retry["retry_of"], job.as_str());
    assert_eq!(retry["hyperparameters"], cancelled["hyperparameters"]);
    // It continues from the cancelled run's checkpoint, and the log said how.
    let from = retry["resumed_from"]["step"]
        .as_u64()
        .expect("a resume point");
    assert_eq!(retry["resumed_from"]["job_id"], job.as_str());
    assert!(from >= 2, "{retry:#}");
    let log = home.json(&["jobs", "logs", &job, "--json"], 0).to_string();
    assert!(
        log.contains(&format!(
            "`brightrun jobs retry {}` continues from it",
            &job[..8]
        )),
        "{log}"
    );
    // The checkpoint is listed, and makes a model that loads and answers.
    let shown = home.json(&["jobs", "show", &job, "--json"], 0);
    assert!(
        shown["checkpoints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["step"].as_u64() == Some(from)),
        "{shown:#}"
    );
    let early = home.json(
        &[
            "models",
            "from-checkpoint",
            &job,
            "--step",
            &from.to_string(),
            "--json",
        ],
        0,
    );
    assert_eq!(early["configuration"]["checkpoint_step"], from, "{early:#}");
    assert_eq!(early["training_summary"]["total_steps"], from, "{early:#}");
    assert!(
        early["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["path"] == "adapter_model.safetensors"),
        "{early:#}"
    );
    let chat = home.json(
        &[
            "models",
            "chat",
            early["id"].as_str().unwrap(),
            "--prompt",
            "hi",
            "--max-new-tokens",
            "4",
            "--json",
        ],
        0,
    );
    assert!(chat["tokens"].as_u64().unwrap() > 0, "{chat:#}");
    let resumed = retry["id"].as_str().unwrap();
    let done = home.json(&["jobs", "watch", resumed, "--json"], 0);
    assert_eq!(done["status"], "completed", "{done:#}");
    // The steps after the checkpoint, each once, with the uninterrupted run's losses.
    let losses = |id: &str| -> Vec<(u64, f64)> {
        home.json(&["jobs", "metrics", id, "--json"], 0)
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| Some((p["step"].as_u64()?, p["training_loss"].as_f64()?)))
            .collect()
    };
    let (reference, continued) = (losses(&whole), losses(resumed));
    let total = done["total_steps"].as_u64().unwrap();
    assert_eq!(
        continued.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        (from + 1..=total).collect::<Vec<_>>(),
        "every remaining step once"
    );
    for (step, loss) in &continued {
        let (_, want) = reference.iter().find(|(s, _)| s == step).unwrap();
        assert!(
            (loss - want).abs() < 1e-4,
            "step {step}: resumed {loss}, uninterrupted {want}"
        );
    }
    // And it ends with the same adapter: every LoRA weight within 1e-5 of the uninterrupted
    // run's (fp32 on CPU; the same steps on the same data order).
    let weights = |id: &str| {
        let job = home.json(&["jobs", "show", id, "--json"], 0);
        let model = home.json(
            &[
                "models",
                "show",
                job["artifact_id"].as_str().unwrap(),
                "--json",
            ],
            0,
        );
        home.path()
            .join("data/objects/lora-models")
            .join(model["storage_path"].as_str().unwrap())
            .join("adapter_model.safetensors")
    };
    let compare = std::process::Command::new(trainer_python())
        .args([
            "-c",
            "import sys; from safetensors.torch import load_file; a, b = load_file(sys.argv[1]), load_file(sys.argv[2]); \
             assert a.keys() == b.keys(), (a.keys(), b.keys()); \
             print(max(float((a[k] - b[k]).abs().max()) for k in a))",
        ])
        .arg(weights(&whole))
        .arg(weights(resumed))
        .output()
        .unwrap();
    let diff: f64 = String::from_utf8_lossy(&compare.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&compare.stderr)));
    assert!(diff < 1e-5, "the resumed adapter differs by {diff}");
    // From scratch, or from a step it has no checkpoint at: said, not guessed.
    let scratch = home.json(
        &["jobs", "retry", &job, "--from-scratch", "--yes", "--json"],
        0,
    );
    assert_eq!(scratch["resumed_from"], Value::Null);
    let out = home
        .cmd()
        .args(["jobs", "resume", &job, "--checkpoint", "100000", "--yes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no checkpoint at step 100000") && err.contains(&from.to_string()),
        "{err}"
    );
    home.json(
        &["jobs", "cancel", scratch["id"].as_str().unwrap(), "--json"],
        0,
    );
    let costs = home.json(&["costs", "--json"], 0);
    assert!(costs["by_type"]["compute"].as_f64().unwrap() > 0.0);
    let notes = home.json(&["notifications", "--json"], 0);
    assert!(
        notes
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "job_cancelled")
    );
}

#[test]
fn a_dataset_that_fails_in_training_fails_the_job_with_the_reason() {
    let home = Home::new(0);
    let dataset = home.ready_dataset(20);
    // The stored copy is damaged after validation.
    let d = home.json(&["datasets", "show", &dataset, "--json"], 0);
    let stored = home
        .path()
        .join("data/objects/lora-datasets")
        .join(d["storage_path"].as_str().unwrap());
    std::fs::write(&stored, "this is not json\n").unwrap();
    let job = home.tiny_job(&dataset, &[]);
    let failed = home.json(&["jobs", "watch", &job, "--json"], 1);
    assert_eq!(failed["status"], "failed", "{failed:#}");
    // The trainer's own words: which line, and what is wrong with it.
    let reason = failed["error_message"].as_str().unwrap();
    assert!(
        reason.contains("none of the dataset's 1 records is a usable example")
            && reason.contains("line 1: not valid JSON"),
        "{reason}"
    );
    assert!(failed["error_detail"].is_string(), "{failed:#}");
    let notes = home.json(&["notifications", "--json"], 0);
    assert!(
        notes
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "job_failed")
    );
    assert!(
        home.json(&["models", "list", "--json"], 0)
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_model_that_cannot_load_fails_the_job_naming_it() {
    let home = Home::new(0);
    let dataset = home.ready_dataset(20);
    let j = home.json(
        &[
            "jobs",
            "create",
            "--dataset",
            &dataset,
            "--set",
            "base_model=no-such-org/no-such-model",
            "--set",
            "parameters_billions=1",
            "--gpu",
            "A10G",
            "--yes",
            "--json",
        ],
        0,
    );
    let job = j["id"].as_str().unwrap();
    let failed = home.json(&["jobs", "watch", job, "--json"], 1);
    assert_eq!(failed["status"], "failed");
    let reason = failed["error_message"].as_str().unwrap();
    assert!(reason.contains("no-such-org/no-such-model"), "{reason}");
}

/// `--from-model`: a run starts from a model's adapter (its base and LoRA shape kept), twice
/// in a row; each model names its parent and `models show` walks the line back. A changed
/// LoRA shape is refused, naming both.
#[test]
fn a_model_is_trained_on_twice_and_shows_its_lineage() {
    let home = Home::new(0);
    let dataset = home.ready_dataset(24);
    let train = |extra: &[&str]| -> Value {
        let mut args = tiny_job_args(&dataset, &["epochs=1"]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let job = home.json(&args, 0);
        let done = home.json(&["jobs", "watch", job["id"].as_str().unwrap(), "--json"], 0);
        assert_eq!(done["status"], "completed", "{done:#}");
        done
    };
    let first = train(&[]);
    let a = first["artifact_id"].as_str().unwrap().to_string();

    let mut refused = tiny_job_args(&dataset, &["lora_rank=4"]);
    refused.extend(["--from-model".to_string(), a[..8].to_string()]);
    let out = home.cmd().args(&refused).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("lora_rank 4 differs from model") && err.contains(&a[..8]),
        "{err}"
    );

    let second = train(&["--from-model", &a[..8]]);
    assert_eq!(second["init_model"], a.as_str(), "{second:#}");
    let log = home
        .json(
            &["jobs", "logs", second["id"].as_str().unwrap(), "--json"],
            0,
        )
        .to_string();
    assert!(log.contains("starting from the adapter of"), "{log}");
    let b = second["artifact_id"].as_str().unwrap().to_string();
    let third = train(&["--from-model", &b]);
    let c = third["artifact_id"].as_str().unwrap();
    let shown = home.json(&["models", "show", c, "--json"], 0);
    assert_eq!(shown["parent_model_id"], b.as_str(), "{shown:#}");
    let text = home.cmd().args(["models", "show", c]).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    let (near, far) = (
        text.find(&format!("trained from {}", &b[..8])),
        text.find(&format!("trained from {}", &a[..8])),
    );
    assert!(near.is_some() && far.is_some() && near < far, "{text}");
}

/// Checkpoints go to the object store as the run goes, retention keeps the newest and the
/// best, and a retry continues from the store when the folders are gone; a damaged or
/// missing archive is named, with the earlier checkpoint and `--from-scratch` offered.
#[test]
fn checkpoints_are_stored_kept_by_retention_and_resumed_from_the_store() {
    let home = Home::new(0);
    let config = home.path().join("config/config.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("[training]\ncheckpoint_steps = 3\nkeep_checkpoints = 2\n");
    std::fs::write(&config, text).unwrap();
    let dataset = home.ready_dataset(24);
    let job = home.tiny_job(&dataset, &["epochs=3", "batch_size=1"]);
    let mut engine = home
        .std_cmd()
        .args(["jobs", "watch", &job])
        .spawn()
        .unwrap();
    // Four checkpoints written means retention has deleted at least one.
    home.wait_until(240, "the fourth stored checkpoint", || {
        std::fs::read_to_string(home.job_dir(&job).join("events.jsonl"))
            .map(|t| t.matches("\"checkpoint\"").count() >= 5)
            .unwrap_or(false)
    });
    // SAFETY: killing the child we spawned.
    unsafe {
        libc::kill(engine.id() as i32, libc::SIGKILL);
    }
    let _ = engine.wait();
    home.json(&["jobs", "cancel", &job, "--json"], 0);
    let exit = home.job_dir(&job).join("exit_code");
    home.wait_until(60, "the trainer to exit", || exit.exists());

    let shown = home.json(&["jobs", "show", &job, "--json"], 0);
    let stored: Vec<&Value> = shown["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["sha256"].is_string())
        .collect();
    assert!(
        (2..=3).contains(&stored.len()),
        "the newest two and perhaps the best: {shown:#}"
    );
    let models = home.path().join("data/objects/lora-models");
    let on_disk = files_named(&models, &|n| n.ends_with(".tar"));
    assert_eq!(
        on_disk.len(),
        stored.len(),
        "retired archives are deleted: {on_disk:?} {stored:#?}"
    );
    for c in &stored {
        let file = models.join(c["storage_path"].as_str().unwrap());
        assert_eq!(sha256_file(&file), c["sha256"].as_str().unwrap(), "{c:#}");
        assert_eq!(
            std::fs::metadata(&file).unwrap().len(),
            c["size"].as_u64().unwrap()
        );
    }
    let kept: Vec<u64> = stored.iter().map(|c| c["step"].as_u64().unwrap()).collect();
    let (latest, earlier) = (*kept.iter().max().unwrap(), *kept.iter().min().unwrap());

    // Without the folders on this machine, the retry continues from the store.
    std::fs::remove_dir_all(home.job_dir(&job).join("checkpoints")).unwrap();
    let retry = home.json(&["jobs", "retry", &job, "--yes", "--json"], 0);
    assert_eq!(retry["resumed_from"]["step"], latest, "{retry:#}");
    let resumed = retry["id"].as_str().unwrap();
    let done = home.json(&["jobs", "watch", resumed, "--json"], 0);
    assert_eq!(done["status"], "completed", "{done:#}");
    let metrics = home.json(&["jobs", "metrics", resumed, "--json"], 0);
    assert_eq!(steps(&metrics).first(), Some(&(latest + 1)), "{metrics:#}");

    // A damaged archive: the trainer refuses it before anything trains.
    let damaged = stored.iter().find(|c| c["step"] == earlier).unwrap();
    let file = models.join(damaged["storage_path"].as_str().unwrap());
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    let step = earlier.to_string();
    let bad = home.json(
        &[
            "jobs",
            "resume",
            &job,
            "--checkpoint",
            &step,
            "--yes",
            "--json",
        ],
        0,
    );
    let failed = home.json(&["jobs", "watch", bad["id"].as_str().unwrap(), "--json"], 1);
    assert_eq!(failed["status"], "failed", "{failed:#}");
    let why = failed["error_message"].as_str().unwrap();
    assert!(
        why.contains(&format!("step {earlier}")) && why.contains("sha256"),
        "{why}"
    );
    let none = home.json(
        &["jobs", "metrics", bad["id"].as_str().unwrap(), "--json"],
        0,
    );
    assert_eq!(none, serde_json::json!([]), "nothing half-restored trained");

    // A missing archive: the retry is refused at once, naming the way on: the newest stored
    // checkpoint before it (with three kept, the best may be older still).
    let previous = *kept.iter().filter(|s| **s < latest).max().unwrap();
    let latest_file = stored.iter().find(|c| c["step"] == latest).unwrap();
    std::fs::remove_file(models.join(latest_file["storage_path"].as_str().unwrap())).unwrap();
    let out = home
        .cmd()
        .args(["jobs", "retry", &job, "--yes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("step {latest}"))
            && err.contains("missing from the store")
            && err.contains(&format!("--checkpoint {previous}"))
            && err.contains("--from-scratch"),
        "{err}"
    );
}

/// Two runs of the same data at two learning rates, side by side: only the learning rate
/// differs, each run's losses, cost and duration are there, and the best is named.
#[test]
fn two_runs_are_compared_by_what_differs() {
    let home = Home::new(0);
    let dataset = home.ready_dataset(24);
    let runs: Vec<String> = ["learning_rate=0.0002", "learning_rate=0.00005"]
        .iter()
        .map(|lr| {
            let job = home.tiny_job(&dataset, &["epochs=2", lr]);
            let done = home.json(&["jobs", "watch", &job, "--json"], 0);
            assert_eq!(done["status"], "completed", "{done:#}");
            job
        })
        .collect();
    let c = home.json(&["jobs", "compare", &runs[0], &runs[1][..8], "--json"], 0);
    assert_eq!(
        c["differing"],
        serde_json::json!(["learning_rate"]),
        "{c:#}"
    );
    let compared = c["runs"].as_array().unwrap();
    assert_eq!(compared.len(), 2);
    for (r, id) in compared.iter().zip(&runs) {
        assert_eq!(r["id"], id.as_str());
        assert!(r["best_training_loss"].is_number() && r["final_training_loss"].is_number());
        assert!(r["best_validation_loss"].is_number(), "{r:#}");
        assert!(r["cost"].as_f64().unwrap() > 0.0 && r["duration_seconds"].is_number());
        assert!(r["evaluation"]["adapter_loss"].is_number(), "{r:#}");
    }
    // The best has the lowest best validation loss.
    assert_eq!(c["best_by"], "validation_loss");
    let best = compared
        .iter()
        .min_by(|a, b| {
            let v = |r: &Value| r["best_validation_loss"].as_f64().unwrap();
            v(a).total_cmp(&v(b))
        })
        .unwrap();
    assert_eq!(c["best"], best["id"]);
    // The table: the differing column, the best marked.
    let out = home
        .cmd()
        .args(["jobs", "compare", &runs[0], &runs[1]])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("LEARNING_RATE") && text.contains("BEST VAL"),
        "{text}"
    );
    let best_short = &best["id"].as_str().unwrap()[..8];
    assert!(text.contains(&format!("*{best_short}")), "{text}");
    // One run, or an evaluation job, is refused with the reason.
    let out = home
        .cmd()
        .args(["jobs", "compare", &runs[0], &runs[0]])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 to 6 different jobs"));
}
