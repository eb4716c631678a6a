//! Evaluation jobs end to end (issue 24, `brightrun models eval`): two tiny models trained
//! through the real binary, compared on a prompts file by the real trainer's compare mode;
//! one of them evaluated again on its own held-out data and probes; the job listed, shown
//! with its comparison, retried; bad prompts files and unknown models refused with where
//! and why. (A remote backend's evaluation is in e2e_runpod; SmolLM2's in e2e_smollm2.)

mod common;

use common::*;
use serde_json::Value;

fn column(c: &Value, id: &str) -> usize {
    c["models"]
        .as_array()
        .unwrap()
        .iter()
        .position(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("no column {id}: {c:#}"))
}

#[test]
fn models_are_compared_on_a_prompts_file_and_on_their_held_out_data() {
    let home = Home::new(0);
    let dataset = home.ready_dataset(24);
    let mut models = Vec::new();
    for lr in ["1e-4", "5e-4"] {
        let job = home.tiny_job(&dataset, &["epochs=1", &format!("learning_rate={lr}")]);
        let done = home.json(&["jobs", "watch", &job[..8], "--json"], 0);
        assert_eq!(done["status"], "completed", "{done:#}");
        models.push(done["artifact_id"].as_str().unwrap().to_string());
    }
    let prompts = home.path().join("prompts.jsonl");
    std::fs::write(
        &prompts,
        concat!(
            "{\"messages\": [{\"role\": \"system\", \"content\": \"Answer with a number.\"}, {\"role\": \"user\", \"content\": \"What is 3 plus 3?\"}, {\"role\": \"assistant\", \"content\": \"3 plus 3 is 6.\"}]}\n",
            "{\"prompt\": \"What is 4 plus 4?\", \"completion\": \"4 plus 4 is 8.\"}\n",
            "{\"instruction\": \"Say hello.\"}\n",
        ),
    )
    .unwrap();
    let (a, b) = (&models[0], &models[1]);
    let c = home.json(
        &[
            "models",
            "eval",
            &a[..8],
            b,
            "--prompts",
            prompts.to_str().unwrap(),
            "--max-new-tokens",
            "8",
            "--json",
        ],
        0,
    );
    // One base (both adapters share it), then the two adapters in the order asked.
    let cols = c["models"].as_array().unwrap();
    assert_eq!(cols.len(), 3, "{c:#}");
    assert_eq!(cols[0]["adapter"], false, "{c:#}");
    assert!(column(&c, a) < column(&c, b), "{c:#}");
    assert_eq!(c["prompts_from"], "prompts");
    let rows = c["prompts"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{c:#}");
    assert_eq!(rows[0]["prompt"], "What is 3 plus 3?");
    assert_eq!(rows[0]["context_turns"], 1, "the system turn: {c:#}");
    assert_eq!(rows[0]["reference"], "3 plus 3 is 6.");
    assert_eq!(rows[2]["reference"], Value::Null);
    for row in rows {
        let answers = row["answers"].as_array().unwrap();
        assert_eq!(answers.len(), 3, "one answer per model: {row:#}");
        // Scored where the file gave a reference, not where it did not.
        let scored = answers.iter().all(|a| a["score"].is_number());
        assert_eq!(scored, !row["reference"].is_null(), "{row:#}");
    }
    for m in cols {
        assert!(m["mean_score"].is_number(), "{m:#}");
        assert_eq!(m["loss"], Value::Null, "no held-out loss on given prompts");
    }

    // The job is a job: listed, shown with its comparison, its cost recorded.
    let jobs = home.json(&["jobs", "list", "--json"], 0);
    let eval = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["task"]["kind"] == "evaluation")
        .unwrap_or_else(|| panic!("no evaluation job: {jobs:#}"))
        .clone();
    let eval_id = eval["id"].as_str().unwrap();
    assert_eq!(eval["status"], "completed");
    assert_eq!(eval["task"]["models"].as_array().unwrap().len(), 2);
    assert_eq!(
        eval["artifact_id"],
        Value::Null,
        "an evaluation makes no model"
    );
    let shown = home.json(&["jobs", "show", &eval_id[..8], "--json"], 0);
    assert_eq!(shown["comparison"], c);
    let text = home.cmd().args(["jobs", "show", eval_id]).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(
        text.contains("evaluates    2 models on 3 prompts"),
        "{text}"
    );
    assert!(text.contains("What is 4 plus 4?"), "{text}");
    let listed = home.json(&["models", "list", "--json"], 0);
    assert_eq!(listed.as_array().unwrap().len(), 2, "no model was added");

    // Again on the first model's own held-out examples and the probes: losses for both.
    let again = home.json(&["models", "eval", a, "--max-new-tokens", "8", "--json"], 0);
    assert_ne!(again["prompts_from"], "prompts", "{again:#}");
    assert_eq!(again["models"].as_array().unwrap().len(), 2);
    for m in again["models"].as_array().unwrap() {
        assert!(m["loss"].as_f64().is_some_and(f64::is_finite), "{m:#}");
    }
    let probes = again["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["probe"] == true)
        .count();
    assert!(probes > 0, "the built-in probes: {again:#}");
}

#[test]
fn bad_prompts_and_unknown_models_are_refused_with_where_and_why() {
    let home = Home::new(0);
    let bad = home.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"prompt\": \"ok\"}\n{\"text\": \"just prose\"}\n").unwrap();
    let out = home
        .cmd()
        .args([
            "models",
            "eval",
            "nosuchmodel",
            "--prompts",
            bad.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.jsonl") && err.contains("line 2"), "{err}");
    assert!(err.contains("plain `text`"), "{err}");

    let good = home.path().join("good.jsonl");
    std::fs::write(&good, "{\"prompt\": \"ok\"}\n").unwrap();
    let out = home
        .cmd()
        .args([
            "models",
            "eval",
            "nosuchmodel",
            "--prompts",
            good.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nosuchmodel"), "{err}");

    let missing = home.path().join("missing.jsonl");
    let out = home
        .cmd()
        .args([
            "models",
            "eval",
            "x",
            "--prompts",
            missing.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.jsonl"), "{err}");
}
