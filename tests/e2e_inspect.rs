//! `datasets inspect` through the real binary and the real trainer's inspect mode on the tiny
//! model: an example token by token with its loss mask, the cut at max_seq_length, exact counts
//! that equal what a training run trains on, the estimate using them, and the errors a person
//! meets (a model not cached offline, an example that does not exist).

mod common;

use common::*;
use serde_json::Value;

const TINY: &str = "brightrun/tiny-random-llama";

fn inspect(home: &Home, dataset: &str, extra: &[&str], code: i32) -> Value {
    let mut args = vec!["datasets", "inspect", dataset, "--model", TINY, "--json"];
    args.extend_from_slice(extra);
    home.json(&args, code)
}

fn trained(x: &Value) -> u64 {
    let cut = x["cut"].as_u64().unwrap_or(u64::MAX) as usize;
    x["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .take(cut)
        .filter(|t| t["trained"] == true)
        .count() as u64
}

#[test]
fn an_example_shows_its_trained_tokens_and_the_counts_match_a_run() {
    let home = Home::new(0);
    let dataset = home.ready_dataset(24);

    // The first example: some tokens trained (the answer), some not (the question).
    let x = inspect(&home, &dataset, &[], 0);
    assert_eq!(x["example"]["index"], 0, "{x:#}");
    assert_eq!(x["example"]["line"], 1, "{x:#}");
    assert_eq!(x["examples"], 24);
    let tokens = x["tokens"].as_array().unwrap();
    let summary = &x["summary"];
    assert!(
        trained(&x) > 0 && trained(&x) < tokens.len() as u64,
        "{x:#}"
    );
    assert_eq!(summary["trained_tokens"], trained(&x), "{x:#}");
    assert_eq!(summary["tokens"], tokens.len() as u64, "{x:#}");
    assert_eq!(summary["truncated"], false);
    assert!(x["tokenizer"]["hash"].as_str().unwrap().len() >= 16);

    // Another example by index, and by line: the same one.
    let by_index = inspect(&home, &dataset, &["--example", "3"], 0);
    let by_line = inspect(&home, &dataset, &["--line", "4"], 0);
    assert_eq!(by_index["example"]["index"], 3);
    assert_eq!(by_index["tokens"], by_line["tokens"]);
    assert_ne!(by_index["tokens"], x["tokens"]);

    // Past the end: said, with the count.
    let out = home
        .cmd()
        .args([
            "datasets",
            "inspect",
            &dataset,
            "--model",
            TINY,
            "--example",
            "99",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("99") && err.contains("24"), "{err}");

    // A model that is not in the offline cache: said, with what to do.
    let out = home
        .cmd()
        .args([
            "datasets",
            "inspect",
            &dataset,
            "--model",
            "brightrun-tests/not-a-cached-model",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("brightrun-tests/not-a-cached-model") && err.contains("cache"),
        "{err}"
    );

    // Without a terminal: trained runs bracketed, the summary line, no escape sequence.
    let out = home
        .cmd()
        .args(["datasets", "inspect", &dataset, "--model", TINY])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains('⟦') && text.contains('⟧'), "{text}");
    assert!(
        text.contains("trained") && text.contains("not truncated"),
        "{text}"
    );
    assert!(!text.contains('\x1b'), "{text}");

    // Exact counts over the dataset, and a run of it trains on exactly those tokens.
    let stats = inspect(&home, &dataset, &["--stats", "--max-seq-length", "512"], 0);
    let s = &stats["stats"];
    assert_eq!(s["examples"], 24, "{stats:#}");
    assert!(s["trained_tokens"].as_u64().unwrap() < s["tokens"].as_u64().unwrap());
    assert_eq!(s["over_max_seq_length"], 0);
    let again = inspect(&home, &dataset, &["--stats", "--max-seq-length", "512"], 0);
    assert_eq!(again, stats, "the cached reply is the same");
    let sets = ["epochs=1", "max_seq_length=512", "use_validation=false"];
    let estimate = {
        let mut args = vec!["estimate", "--dataset", &dataset, "--preset", "fast"];
        args.extend([
            "--gpu",
            "A10G",
            "--set",
            "base_model=brightrun/tiny-random-llama",
        ]);
        for s in &sets {
            args.extend(["--set", s]);
        }
        args.push("--json");
        home.json(&args, 0)
    };
    assert!(
        estimate["throughput"]["note"]
            .as_str()
            .unwrap()
            .contains("exact token counts"),
        "{estimate:#}"
    );
    let job = home.tiny_job(&dataset, &sets);
    let done = home.json(&["jobs", "watch", &job, "--json"], 0);
    assert_eq!(done["status"], "completed", "{done:#}");
    let model = home.json(
        &[
            "models",
            "show",
            done["artifact_id"].as_str().unwrap(),
            "--json",
        ],
        0,
    );
    assert_eq!(
        model["training_summary"]["train_tokens"], s["tokens"],
        "the run trained on the tokens the inspector counted: {model:#}"
    );
}

#[test]
fn a_long_example_is_cut_where_the_run_would_cut_it() {
    let home = Home::new(0);
    // One long conversation among short ones.
    let long = "word ".repeat(400);
    let mut lines: Vec<String> = (0..5)
        .map(|i| {
            serde_json::json!({"messages": [
                {"role": "user", "content": format!("What is {i} plus {i}?")},
                {"role": "assistant", "content": format!("{}", i + i)},
            ]})
            .to_string()
        })
        .collect();
    lines.push(
        serde_json::json!({"messages": [
            {"role": "user", "content": "Say it long."},
            {"role": "assistant", "content": long},
        ]})
        .to_string(),
    );
    let file = home.path().join("long.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let added = home.json(
        &[
            "datasets",
            "add",
            file.to_str().unwrap(),
            "--wait",
            "--json",
        ],
        0,
    );
    let dataset = added["id"].as_str().unwrap().to_string();
    let x = inspect(
        &home,
        &dataset,
        &["--line", "6", "--max-seq-length", "128"],
        0,
    );
    let cut = x["cut"].as_u64().expect("a cut") as usize;
    assert_eq!(cut, 128, "{x:#}");
    assert_eq!(x["summary"]["truncated"], true);
    let lost = x["tokens"].as_array().unwrap().len() - cut;
    assert_eq!(x["summary"]["tokens_lost"], lost as u64);
    assert!(
        x["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["code"] == "truncated"),
        "{x:#}"
    );
    let stats = inspect(&home, &dataset, &["--stats", "--max-seq-length", "128"], 0);
    assert_eq!(stats["stats"]["over_max_seq_length"], 1, "{stats:#}");
    assert_eq!(stats["stats"]["tokens_lost"], lost as u64, "{stats:#}");
    // The pairing's warning reaches the estimate (and so `jobs create`).
    let estimate = home.json(
        &[
            "estimate",
            "--dataset",
            &dataset,
            "--preset",
            "fast",
            "--gpu",
            "A10G",
            "--set",
            "base_model=brightrun/tiny-random-llama",
            "--set",
            "max_seq_length=128",
            "--json",
        ],
        0,
    );
    assert!(
        estimate["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("(truncated)")),
        "{estimate:#}"
    );
}
