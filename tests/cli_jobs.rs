//! `brightrun estimate` and `brightrun jobs create|list|show` through the real binary (no
//! training: these jobs stay queued).

mod common;

use common::Home;

#[test]
fn estimate_json_uses_the_seed_fields_and_the_formula() {
    let home = Home::new(0);
    let d = home.ready_dataset(100);
    let e = home.json(
        &[
            "estimate",
            "--dataset",
            &d[..8],
            "--gpu",
            "a100-80gb",
            "--json",
        ],
        0,
    );
    // balanced: batch 4, 3 epochs; 90 training pairs → 23 steps an epoch.
    assert_eq!(e["training_details"]["steps_per_epoch"], 23);
    assert_eq!(e["training_details"]["total_steps"], 69);
    assert_eq!(e["gpu_type"], "A100-80GB");
    assert_eq!(e["hourly_rate"], 3.5);
    assert_eq!(e["cost_breakdown"]["storage"], 0.5);
    let compute = e["cost_breakdown"]["compute"].as_f64().unwrap();
    let total = e["estimated_cost"].as_f64().unwrap();
    assert!((total - compute - 0.5).abs() < 1e-9);
    // Overheads alone are 10 + 5×3 + 5 minutes.
    assert!(e["estimated_duration_hours"].as_f64().unwrap() >= 30.0 / 60.0);
    assert!(
        e["training_details"]["estimated_throughput_tokens_per_sec"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(e["fit"]["verdict"].is_string());
    assert!(e["budget"].is_null(), "no budget configured");
}

#[test]
fn out_of_range_values_name_the_field_value_and_range() {
    let home = Home::new(0);
    let d = home.ready_dataset(20);
    let out = home
        .cmd()
        .args(["estimate", "--dataset", &d, "--set", "learning_rate=0.5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("learning_rate") && err.contains("0.5"),
        "{err}"
    );
    let out = home
        .cmd()
        .args(["estimate", "--dataset", &d, "--gpus", "9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("9"));
    let out = home
        .cmd()
        .args(["estimate", "--dataset", &d, "--gpu", "TPU-v5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TPU-v5") && err.contains("H100"), "{err}");
    let out = home
        .cmd()
        .args(["estimate", "--dataset", &d, "--set", "no_such_knob=1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no_such_knob"));
}

#[test]
fn an_unknown_base_model_asks_for_its_size() {
    let home = Home::new(0);
    let d = home.ready_dataset(20);
    let out = home
        .cmd()
        .args([
            "estimate",
            "--dataset",
            &d,
            "--set",
            "base_model=acme/mystery-13b",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("parameters_billions"));
    let e = home.json(
        &[
            "estimate",
            "--dataset",
            &d,
            "--set",
            "base_model=acme/mystery-13b",
            "--set",
            "parameters_billions=13",
            "--json",
        ],
        0,
    );
    assert!(e["fit"]["required_gb"].as_f64().unwrap() > 20.0);
}

#[test]
fn the_fit_verdict_follows_model_size_and_quantisation() {
    let home = Home::new(0);
    // Long conversations: the sequence length is the configured 2048.
    let file = home.path().join("long.jsonl");
    let line = format!(
        "{{\"messages\":[{{\"role\":\"user\",\"content\":\"{}\"}},{{\"role\":\"assistant\",\"content\":\"ok\"}}]}}\n",
        "word ".repeat(2500)
    );
    std::fs::write(&file, line.repeat(20)).unwrap();
    let d = home.json(
        &[
            "datasets",
            "add",
            file.to_str().unwrap(),
            "--wait",
            "--json",
        ],
        0,
    );
    let d = d["id"].as_str().unwrap();
    let llama = "base_model=meta-llama/Llama-3.1-8B";
    let big = home.json(
        &[
            "estimate",
            "--dataset",
            d,
            "--gpu",
            "RTX-4090",
            "--set",
            llama,
            "--json",
        ],
        0,
    );
    assert_eq!(big["fit"]["verdict"], "will_not_fit");
    let suggestions = big["fit"]["suggestions"].as_array().unwrap();
    assert!(
        suggestions
            .iter()
            .any(|s| s.as_str().unwrap().contains("4bit"))
    );
    let q = home.json(
        &[
            "estimate",
            "--dataset",
            d,
            "--gpu",
            "RTX-4090",
            "--set",
            llama,
            "--set",
            "quantization=4bit",
            "--json",
        ],
        0,
    );
    assert_ne!(q["fit"]["verdict"], "will_not_fit");
}

#[test]
fn creating_a_job_confirms_the_cost_and_the_budget() {
    let home = Home::new(0);
    let d = home.ready_dataset(20);
    // No terminal to ask on and no --yes: refused, nothing created.
    let out = home
        .cmd()
        .args(["jobs", "create", "--dataset", &d])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"));
    assert_eq!(
        home.json(&["jobs", "list", "--json"], 0),
        serde_json::json!([])
    );

    let job = home.json(
        &[
            "jobs",
            "create",
            "--dataset",
            &d,
            "--preset",
            "quality",
            "--yes",
            "--json",
        ],
        0,
    );
    assert_eq!(job["status"], "queued");
    assert_eq!(job["current_stage"], "queued");
    assert_eq!(job["preset_id"], "quality");
    assert_eq!(job["hyperparameters"]["lora_rank"], 32);
    assert_eq!(job["hyperparameters"]["epochs"], 5);
    assert!(job["estimated_cost"].as_f64().unwrap() > 0.5);
    assert!(job["total_steps"].as_u64().unwrap() > 0);
    let id = job["id"].as_str().unwrap();
    let shown = home.json(&["jobs", "show", &id[..6], "--json"], 0);
    assert_eq!(shown["id"], id);
    let queued = home.json(&["jobs", "list", "--status", "queued", "--json"], 0);
    assert_eq!(queued.as_array().unwrap().len(), 1);
    let notes = home.json(&["notifications", "--json"], 0);
    assert!(
        notes
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "job_queued" && n["priority"] == "low")
    );

    // A budget the run would exceed needs --over-budget on top of --yes.
    let config = home.path().join("config/config.toml");
    let mut value: toml::Table = std::fs::read_to_string(&config).unwrap().parse().unwrap();
    value["budget"]
        .as_table_mut()
        .unwrap()
        .insert("monthly_usd".into(), toml::Value::Float(1.0));
    std::fs::write(&config, toml::to_string(&value).unwrap()).unwrap();
    let e = home.json(
        &["estimate", "--dataset", &d, "--preset", "quality", "--json"],
        0,
    );
    assert_eq!(e["budget"]["exceeds"], true);
    let out = home
        .cmd()
        .args([
            "jobs",
            "create",
            "--dataset",
            &d,
            "--preset",
            "quality",
            "--yes",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--over-budget"));
    home.json(
        &[
            "jobs",
            "create",
            "--dataset",
            &d,
            "--preset",
            "quality",
            "--yes",
            "--over-budget",
            "--json",
        ],
        0,
    );
    assert_eq!(
        home.json(&["jobs", "list", "--json"], 0)
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn a_dataset_that_is_not_ready_cannot_be_trained_on() {
    let home = Home::new(0);
    let bad = home.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"messages\": 3}\n").unwrap();
    let d = home.json(&["datasets", "add", bad.to_str().unwrap(), "--json"], 0);
    assert_eq!(d["status"], "error");
    let out = home
        .cmd()
        .args([
            "jobs",
            "create",
            "--dataset",
            d["id"].as_str().unwrap(),
            "--yes",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not ready") || err.contains("not been validated"),
        "{err}"
    );
}

#[test]
fn presets_from_config_are_usable() {
    let home = Home::new(0);
    std::fs::write(
        home.path().join("config/config.toml"),
        "[training.presets.tiny-fast]\nbase = \"fast\"\nepochs = 2\nlora_rank = 4\n",
    )
    .unwrap();
    let d = home.ready_dataset(20);
    let job = home.json(
        &[
            "jobs",
            "create",
            "--dataset",
            &d,
            "--preset",
            "tiny-fast",
            "--yes",
            "--json",
        ],
        0,
    );
    assert_eq!(job["hyperparameters"]["epochs"], 2);
    assert_eq!(job["hyperparameters"]["lora_rank"], 4);
    assert_eq!(
        job["hyperparameters"]["batch_size"], 8,
        "the rest comes from `fast`"
    );
}
