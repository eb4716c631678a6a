//! Preference training end to end (issue 26) through the real binary and the real trainer on
//! the tiny model: a preference file and a KTO file validate ready with their pair
//! statistics; DPO, ORPO, SimPO and KTO each train, stream rewards that are stored, shown by
//! `jobs metrics` and kept with the job's method; the model's evaluation compares base and
//! adapter on held-out pairs. A method that does not fit its dataset is refused before
//! anything is queued, naming the format, the method and what would fit. (DPO on the real
//! small model is in e2e_smollm2.)

mod common;

use common::*;
use serde_json::Value;
use std::path::PathBuf;

/// `n` TRL-style preference pairs (explicit prompt, conversational): the chosen reply does
/// the sum, the rejected one declines.
fn preference_file(home: &Home, n: usize) -> PathBuf {
    let file = home.path().join("pairs.jsonl");
    let text: String = (0..n)
        .map(|i| {
            serde_json::json!({
                "prompt": [{"role": "user", "content": format!("What is {i} plus {i}?")}],
                "chosen": [{"role": "assistant", "content": format!("{i} plus {i} is {}.", 2 * i)}],
                "rejected": [{"role": "assistant", "content": "I would rather not say."}],
            })
            .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(&file, text).unwrap();
    file
}

/// `n` unpaired KTO examples (TRL's layout): every third reply is undesirable.
fn kto_file(home: &Home, n: usize) -> PathBuf {
    let file = home.path().join("kto.jsonl");
    let text: String = (0..n)
        .map(|i| {
            let good = i % 3 != 0;
            let reply = if good {
                format!("{i} plus {i} is {}.", 2 * i)
            } else {
                "I would rather not say.".to_string()
            };
            serde_json::json!({
                "prompt": format!("What is {i} plus {i}?"),
                "completion": reply,
                "label": good,
            })
            .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(&file, text).unwrap();
    file
}

/// Trains `dataset` with `method` on the tiny model to the end; returns the finished job and
/// its model.
fn train(home: &Home, dataset: &str, method: &str, extra: &[&str]) -> (Value, Value) {
    let mut sets = vec![format!("method={method}")];
    sets.extend(extra.iter().map(|s| s.to_string()));
    let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
    let id = home.tiny_job(dataset, &sets);
    home.completed_with_model(&id)
}

/// The preference figures of a finished job's stored steps.
fn preference_points(home: &Home, job: &str) -> Vec<Value> {
    let points = home.json(&["jobs", "metrics", job, "--json"], 0);
    points
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.get("preference").cloned())
        .collect()
}

#[test]
fn dpo_orpo_simpo_and_kto_each_train_the_tiny_model_with_rewards_stored() {
    let home = Home::new(0);
    let pairs = home.ready_file(&preference_file(&home, 24));
    assert_eq!(pairs["format"], "preference", "{pairs:#}");
    let stats = &pairs["statistics"]["preference"];
    assert_eq!(stats["pairs"], 24, "{pairs:#}");
    assert!(stats["chosen_tokens"].as_u64().unwrap() > 0, "{pairs:#}");
    let pairs = pairs["id"].as_str().unwrap().to_string();
    let kto = home.ready_file(&kto_file(&home, 24));
    assert_eq!(kto["format"], "kto", "{kto:#}");
    assert_eq!(kto["statistics"]["preference"]["undesirable"], 8, "{kto:#}");
    let kto = kto["id"].as_str().unwrap().to_string();

    let mut ids = Vec::new();
    for (dataset, method, extra) in [
        (&pairs, "dpo", &["beta=0.2"][..]),
        (&pairs, "dpo", &["loss_type=ipo"][..]),
        (&pairs, "orpo", &[][..]),
        (&pairs, "simpo", &["gamma=0.5"][..]),
        (&kto, "kto", &["undesirable_weight=1.5"][..]),
    ] {
        let (job, model) = train(&home, dataset, method, extra);
        let id = job["id"].as_str().unwrap();
        ids.push(id.to_string());
        let m = &job["hyperparameters"]["method"];
        assert_eq!(m["name"], method, "{job:#}");
        match method {
            "dpo" if extra == ["beta=0.2"] => assert_eq!(m["beta"], 0.2, "{job:#}"),
            "dpo" => assert_eq!(m["loss_type"], "ipo", "{job:#}"),
            "simpo" => assert_eq!(m["gamma"], 0.5, "{job:#}"),
            "kto" => assert_eq!(m["undesirable_weight"], 1.5, "{job:#}"),
            _ => assert_eq!(m["lambda"], 0.1, "{job:#}"),
        }

        // Every logged step carries the method's figures, finite, and the accuracy is a
        // share. KTO has no pairs: no accuracy, and a step whose batch held replies of one
        // label only has that side's reward alone (so its figures are asked of some step).
        let points = preference_points(&home, id);
        assert!(!points.is_empty(), "{method}: no preference figures stored");
        let finite = |p: &Value, key: &str| p[key].as_f64().is_some_and(f64::is_finite);
        for key in ["rewards_chosen", "rewards_rejected", "reward_margin"] {
            if method == "kto" {
                assert!(points.iter().any(|p| finite(p, key)), "{key}: {points:?}");
            } else {
                assert!(points.iter().all(|p| finite(p, key)), "{key}: {points:?}");
            }
        }
        for p in &points {
            if method == "kto" {
                assert!(p["reward_accuracy"].is_null(), "{p}");
            } else {
                let a = p["reward_accuracy"].as_f64().unwrap();
                assert!((0.0..=1.0).contains(&a), "{p}");
            }
        }
        // The table shows them beside the seed's columns.
        let out = home.cmd().args(["jobs", "metrics", id]).output().unwrap();
        let table = String::from_utf8_lossy(&out.stdout);
        assert!(
            table.contains("MARGIN") && table.contains("ACCURACY"),
            "{table}"
        );
        let shown = home.cmd().args(["jobs", "show", id]).output().unwrap();
        let shown = String::from_utf8_lossy(&shown.stdout);
        assert!(
            shown.contains(&format!("method       {method} (")),
            "{shown}"
        );

        // The jobs list names each run's method.
        let out = home.cmd().args(["jobs", "list"]).output().unwrap();
        let list = String::from_utf8_lossy(&out.stdout);
        let row = list.lines().find(|l| l.starts_with(&id[..8])).unwrap_or("");
        assert!(
            list.starts_with("ID")
                && list.contains("METHOD")
                && row.contains(&format!(" {method} ")),
            "{list}"
        );

        // The model's evaluation judged held-out pairs with the base and the adapter.
        let eval = &model["evaluation"]["preference"];
        assert!(eval["pairs"].as_u64().unwrap() > 0, "{method}: {model:#}");
        for key in ["base_accuracy", "adapter_accuracy"] {
            let a = eval[key].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&a), "{method} {key}: {eval}");
        }
    }

    // Runs of different methods are compared side by side, but none is called the best: a
    // DPO loss and an ORPO loss measure different things. Two DPO runs do get a best.
    let mixed = home.json(&["jobs", "compare", &ids[0], &ids[2], "--json"], 0);
    assert!(mixed["best"].is_null(), "{mixed:#}");
    assert!(
        mixed["differing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k == "method"),
        "{mixed:#}"
    );
    let out = home
        .cmd()
        .args(["jobs", "compare", &ids[0], &ids[2]])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("no best") && table.contains("orpo (lambda 0.1)"),
        "{table}"
    );
    assert!(
        table.contains("REWARD ACC") && table.contains("HELD-OUT PREF"),
        "{table}"
    );
    let dpo = home.json(&["jobs", "compare", &ids[0], &ids[1], "--json"], 0);
    assert!(dpo["best"].is_string(), "{dpo:#}");
    // Each preference run carries its last reward figures and its held-out pairs' verdict.
    for run in dpo["runs"].as_array().unwrap() {
        let accuracy = run["final_reward_accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&accuracy), "{run:#}");
        assert!(
            run["final_reward_margin"]
                .as_f64()
                .is_some_and(f64::is_finite),
            "{run:#}"
        );
        let held_out = &run["evaluation"]["preference_accuracy"];
        assert!(
            held_out.as_f64().is_some_and(|a| (0.0..=1.0).contains(&a)),
            "{run:#}"
        );
    }
}

#[test]
fn a_method_that_does_not_fit_its_dataset_is_refused_before_anything_is_queued() {
    let home = Home::new(0);
    let pairs = home.ready_file(&preference_file(&home, 12));
    let pairs = pairs["id"].as_str().unwrap();
    let kto = home.ready_file(&kto_file(&home, 12));
    let kto = kto["id"].as_str().unwrap();
    let chats = home.ready_dataset(12);

    let refused = |dataset: &str, sets: &[&str], expect: &[&str]| {
        let args = tiny_job_args(dataset, sets);
        let out = home.cmd().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{sets:?}: {err}");
        for e in expect {
            assert!(err.contains(e), "{sets:?}: expected {e:?} in {err}");
        }
    };
    // SFT on pairs keeps the validator's earlier message and recipe, and names the methods.
    refused(
        pairs,
        &[],
        &[
            "would learn the rejected replies too",
            "--set method=dpo, --set method=orpo, --set method=simpo",
            "jq -c",
        ],
    );
    refused(kto, &[], &["undesirable replies", "--set method=kto"]);
    refused(
        &chats,
        &["method=dpo"],
        &[
            "method dpo trains on preference pairs",
            "an OpenAI chat file",
            "--set method=sft",
        ],
    );
    refused(pairs, &["method=kto"], &["method kto", "--set method=dpo"]);
    // A method's own hyperparameters belong to it alone, and keep their ranges.
    refused(
        pairs,
        &["method=dpo", "gamma=1"],
        &[
            "`gamma` is a hyperparameter of simpo",
            "this run's method is dpo",
        ],
    );
    refused(
        pairs,
        &["method=dpo", "beta=5"],
        &["beta = 5 is outside 0.01 to 1"],
    );
    refused(
        pairs,
        &["method=ppo"],
        &["sft or dpo or orpo or simpo or kto"],
    );

    assert_eq!(
        home.json(&["jobs", "list", "--json"], 0),
        serde_json::json!([])
    );
    // The template inspector renders SFT examples; it says so for pairs rather than failing.
    let out = home
        .cmd()
        .args(["datasets", "inspect", pairs])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("does not render preference pairs"), "{err}");
}
