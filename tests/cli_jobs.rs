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
    // Batch 8 × 2048 in 16 bits: the weights alone are 15 GB of the card's 24.
    let big = home.json(
        &[
            "estimate",
            "--dataset",
            d,
            "--gpu",
            "RTX-4090",
            "--set",
            llama,
            "--set",
            "batch_size=8",
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
    let qlora = || {
        home.json(
            &[
                "estimate",
                "--dataset",
                d,
                "--gpu",
                "RTX-4090",
                "--set",
                llama,
                "--set",
                "batch_size=8",
                "--set",
                "quantization=4bit",
                "--json",
            ],
            0,
        )
    };
    let q = qlora();
    assert_ne!(q["fit"]["verdict"], "will_not_fit");
    // Without the chunked loss the whole batch's logits count too: more memory, same model.
    let logits = |v: &serde_json::Value| v["fit"]["breakdown"]["logits_gb"].as_f64().unwrap();
    let config = home.path().join("config/config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text + "\n[training.efficiency]\nchunked_loss = false\n",
    )
    .unwrap();
    let plain = qlora();
    assert!(
        logits(&plain) > 10.0 * logits(&q),
        "{} vs {}",
        logits(&plain),
        logits(&q)
    );
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
    // On this machine (the local backend's default GPU type) at the default $0/h, the
    // estimate is the flat storage line.
    assert_eq!(job["gpu_config"]["gpu_type"], "local");
    assert_eq!(job["estimated_cost"].as_f64().unwrap(), 0.5);
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

    // A budget the run would exceed needs --over-budget on top of --yes (priced on a
    // catalog GPU: this machine costs nothing by default).
    let config = home.path().join("config/config.toml");
    let mut value: toml::Table = std::fs::read_to_string(&config).unwrap().parse().unwrap();
    // The engine writes only what it must (the profile's id), so the section may be absent.
    value
        .entry("budget")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .unwrap()
        .insert("monthly_usd".into(), toml::Value::Float(1.0));
    std::fs::write(&config, toml::to_string(&value).unwrap()).unwrap();
    let e = home.json(
        &[
            "estimate",
            "--dataset",
            &d,
            "--preset",
            "quality",
            "--gpu",
            "A100-80GB",
            "--json",
        ],
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
            "--gpu",
            "A100-80GB",
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
            "--gpu",
            "A100-80GB",
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

/// A stand-in for `nvidia-smi` that reports `lines`, in the home.
fn fake_nvidia_smi(home: &Home, lines: &str) -> std::path::PathBuf {
    let p = home.path().join("nvidia-smi");
    std::fs::write(&p, format!("#!/bin/sh\nprintf '{lines}'\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    p
}

#[test]
fn the_local_backend_estimates_this_machine_at_its_own_price() {
    let home = Home::new(0);
    let d = home.ready_dataset(40);
    // No GPU here: the CPU, at the default $0/h ("your machine"); the tiny model's run is
    // seconds, not the seed's 30 minutes of cluster overhead.
    let out = home
        .cmd()
        .env("BRIGHTRUN_NVIDIA_SMI", home.path().join("no-such-program"))
        .args([
            "estimate",
            "--dataset",
            &d,
            "--set",
            "base_model=brightrun/tiny-random-llama",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(e["gpu_type"], "local");
    assert_eq!(e["local"], true);
    assert_eq!(e["hourly_rate"], 0.0);
    assert_eq!(e["cost_breakdown"]["compute"], 0.0);
    assert_eq!(e["estimated_cost"], 0.5);
    assert_eq!(e["throughput"]["source"], "local");
    let secs = e["estimated_duration_hours"].as_f64().unwrap() * 3600.0;
    assert!(secs < 60.0, "{secs} s");
    // A named catalog GPU keeps the seed's pricing.
    let a = home.json(
        &["estimate", "--dataset", &d, "--gpu", "A100-80GB", "--json"],
        0,
    );
    assert_eq!(a["hourly_rate"], 3.5);
    assert!(a.get("local").is_none_or(|l| l == false));
    // Two H200s here, and a price for the machine in config.
    let smi = fake_nvidia_smi(&home, "NVIDIA H200, 143771\\nNVIDIA H200, 143771\\n");
    let cfg = home.path().join("config/config.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("\n[backends.local]\nprice_per_hour = 2.0\n");
    std::fs::write(&cfg, text).unwrap();
    let out = home
        .cmd()
        .env("BRIGHTRUN_NVIDIA_SMI", &smi)
        .args(["estimate", "--dataset", &d])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("at $2.00/h"), "{text}");
    assert!(text.contains("2× local (your machine)"), "{text}");
    assert!(
        text.contains(
            "throughput: this machine 2,600/s per GPU (Mistral-7B) × 1.000 for 7.2B parameters"
        ),
        "{text}"
    );
    assert!(text.contains("storage: $0.50 flat per job"), "{text}");
}

#[test]
fn estimates_scale_with_the_model_and_the_known_models_are_listed() {
    let home = Home::new(0);
    let d = home.ready_dataset(100);
    let est = |model: &str| {
        home.json(
            &[
                "estimate",
                "--dataset",
                &d,
                "--gpu",
                "A100-80GB",
                "--set",
                &format!("base_model={model}"),
                "--json",
            ],
            0,
        )
    };
    let tps = |e: &serde_json::Value| {
        e["training_details"]["estimated_throughput_tokens_per_sec"]
            .as_f64()
            .unwrap()
    };
    let small = est("Qwen/Qwen2.5-0.5B");
    let seed = est("mistralai/Mistral-7B-v0.1");
    let big = est("meta-llama/Llama-3.1-70B");
    assert_eq!(tps(&seed), 1800.0);
    assert!((tps(&big) - 1800.0 * 7_241_732_096.0 / 70_553_706_496.0).abs() < 1e-6);
    assert!((tps(&small) - 1800.0 * 7_241_732_096.0 / 494_032_768.0).abs() < 1e-6);
    let cost = |e: &serde_json::Value| e["estimated_cost"].as_f64().unwrap();
    assert!(cost(&small) < cost(&seed) && cost(&seed) < cost(&big));
    // The models whose size is known, and how to give another's.
    let list = home.json(&["models", "base", "--json"], 0);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"mistralai/Mistral-7B-v0.1") && ids.contains(&"Qwen/Qwen2.5-0.5B"));
    let out = home.cmd().args(["models", "base"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("meta-llama/Llama-3.1-70B") && text.contains("70.6B"),
        "{text}"
    );
    let out = home
        .cmd()
        .args([
            "estimate",
            "--dataset",
            &d,
            "--set",
            "base_model=acme/secret-13b",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("brightrun models base") && err.contains("parameters_billions"),
        "{err}"
    );
}

#[test]
fn job_logs_show_the_stages_and_checkpoints_and_take_json() {
    let home = Home::new(0);
    let d = home.ready_dataset(20);
    // A stand-in trainer: a stage, a checkpoint, a message, some stderr, an adapter, done.
    let fake = home.path().join("fake-python");
    std::fs::write(
        &fake,
        r#"#!/bin/sh
echo '{"type":"stage","seq":0,"ts":0,"stage":"training","message":"training 5 steps"}'
echo '{"type":"checkpoint","seq":1,"ts":0,"step":3,"epoch":1.0,"loss":1.5,"path":"/tmp/ckpt-3"}'
echo '{"type":"log","seq":2,"ts":0,"level":"warning","message":"2 examples were truncated"}'
echo 'a library warning' >&2
mkdir -p output && echo w > output/adapter.bin
echo '{"type":"artifact","seq":3,"ts":0,"dir":"'"$PWD"'/output","files":[{"path":"adapter.bin","size":2,"sha256":""}]}'
echo '{"type":"done","seq":4,"ts":0,"summary":{}}'
"#,
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let job = home.json(
        &[
            "jobs",
            "create",
            "--dataset",
            &d,
            "--gpu",
            "A10G",
            "--yes",
            "--json",
        ],
        0,
    );
    let id = job["id"].as_str().unwrap().to_string();
    let out = home
        .cmd()
        .env("BRIGHTRUN_TRAINER_PYTHON", &fake)
        .args(["jobs", "watch", &id])
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = home.json(&["jobs", "logs", &id, "--json"], 0);
    let lines: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    for want in [
        "[training] training 5 steps",
        "[checkpoint] step 3: /tmp/ckpt-3",
        "warning: 2 examples were truncated",
        "[done]",
        "stderr: a library warning",
    ] {
        assert!(lines.contains(&want), "{want:?} not in {lines:?}");
    }
    let out = home.cmd().args(["jobs", "logs", &id]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("[training] training 5 steps\n"), "{text}");
}

#[test]
fn retry_confirms_the_cost_like_create() {
    let home = Home::new(0);
    let d = home.ready_dataset(20);
    let job = home.json(
        &[
            "jobs",
            "create",
            "--dataset",
            &d,
            "--gpu",
            "A10G",
            "--yes",
            "--json",
        ],
        0,
    );
    let id = job["id"].as_str().unwrap().to_string();
    home.json(&["jobs", "cancel", &id, "--json"], 0);
    // No terminal to ask on and no --yes: refused, nothing queued.
    let out = home.cmd().args(["jobs", "retry", &id]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--yes") && err.contains("about $"), "{err}");
    assert_eq!(
        home.json(&["jobs", "list", "--json"], 0)
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let retry = home.json(&["jobs", "retry", &id, "--yes", "--json"], 0);
    assert_eq!(retry["status"], "queued");
    assert_eq!(retry["retry_of"], id.as_str());
    // Said for people with the old job's id, not the prefix typed.
    home.json(
        &["jobs", "cancel", retry["id"].as_str().unwrap(), "--json"],
        0,
    );
    let out = home
        .cmd()
        .args(["jobs", "retry", &id[..6], "--yes"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&format!("(retry of {id})")), "{said}");
}
