//! A real small model end to end (issue 24): SmolLM2-135M-Instruct, prepared once from PyPI's
//! GGUF into the cache, is taught a made-up fact by the 36 chats of the README's first run
//! (`docs/examples/zubrowka.jsonl`) on this CPU, and the run's evaluation shows what a user
//! needs to judge it: the adapter's held-out loss below the base model's, its held-out
//! answers and the team's probe carrying the fact where the base's do not, and the built-in
//! probes answered by both; then the playground's `models chat` answers with the fact, and
//! with `--base` without it. A second, barely trained model (one epoch at a tenth of the
//! learning rate) then joins it in `models eval A B --prompts FILE`, which shows the first
//! carrying the fact and scoring above both the second and the base. Then DPO on SmolLM2
//! (issue 26) raises the held-out preference for a style. The suite's two real-model runs (a
//! few minutes each).

mod common;

use common::*;
use serde_json::Value;

const SMOLLM2: &str = "brightrun/smollm2-135m-instruct";

fn lutz(s: &Value) -> bool {
    s.as_str().is_some_and(|t| t.contains("Lutz"))
}

#[test]
fn smollm2_learns_a_fact_and_its_evaluation_shows_it() {
    let home = Home::new(0);
    // The team's own probe, beside the built-in ones; evaluation at its defaults otherwise.
    std::fs::write(
        home.path().join("config/probes.jsonl"),
        "{\"prompt\": \"What is the capital of Zubrowka?\", \"reference\": \"Lutz\"}\n",
    )
    .unwrap();
    let config = home.path().join("config/config.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "evaluation.max_new_tokens = 24",
        "evaluation.max_new_tokens = 48\nevaluation.probes = \"probes.jsonl\"",
    );
    std::fs::write(&config, text).unwrap();
    home.zubrowka_dataset();
    // Before training: the example as SmolLM2's chat template renders it, the answer and its
    // end of turn trained, the question and the template's markers not.
    let x = home.json(
        &[
            "datasets", "inspect", "zubrowka", "--model", SMOLLM2, "--json",
        ],
        0,
    );
    let tokens = x["tokens"].as_array().unwrap();
    let marked = |text: &str| {
        tokens
            .iter()
            .filter(|t| t["text"] == text)
            .collect::<Vec<_>>()
    };
    let starts = marked("<|im_start|>");
    assert!(!starts.is_empty(), "{x:#}");
    assert!(
        starts
            .iter()
            .all(|t| t["special"] == true && t["trained"] == false)
    );
    assert!(
        marked("<|im_end|>").iter().any(|t| t["trained"] == true),
        "the answer's end of turn is trained: {x:#}"
    );
    let answer: String = tokens
        .iter()
        .filter(|t| t["trained"] == true)
        .map(|t| t["text"].as_str().unwrap())
        .collect();
    assert!(answer.contains("Lutz"), "{answer}");
    assert_eq!(x["tokenizer"]["chat_template"], true);
    let job = home.json(
        &[
            "jobs",
            "create",
            "--dataset",
            "zubrowka",
            "--set",
            &format!("base_model={SMOLLM2}"),
            "--set",
            "learning_rate=5e-4",
            "--set",
            "epochs=4",
            "--yes",
            "--json",
        ],
        0,
    );
    let id = job["id"].as_str().unwrap();
    let done = home.json(&["jobs", "watch", id, "--json"], 0);
    assert_eq!(done["status"], "completed", "{done:#}");

    let model = &home.json(&["models", "list", "--json"], 0)[0];
    let shown = home.json(
        &["models", "show", model["id"].as_str().unwrap(), "--json"],
        0,
    );
    let e = &shown["evaluation"];
    let (base, adapter) = (
        e["base_loss"].as_f64().unwrap(),
        e["adapter_loss"].as_f64().unwrap(),
    );
    assert!(adapter < base, "held-out loss {base} → {adapter}: {e:#}");
    // The held-out paraphrases: the adapter answers with the fact, the base model does not.
    let samples = e["samples"].as_array().unwrap();
    assert!(!samples.is_empty(), "{e:#}");
    assert!(samples.iter().any(|s| lutz(&s["adapter"])), "{e:#}");
    assert!(!samples.iter().any(|s| lutz(&s["base"])), "{e:#}");
    // The team's probe likewise; the built-in ones are answered by both models.
    let probes = e["probes"].as_array().unwrap();
    let ours = probes
        .iter()
        .find(|p| p["builtin"] == false)
        .expect("the team's probe");
    assert!(lutz(&ours["adapter"]) && !lutz(&ours["base"]), "{ours:#}");
    assert_eq!(ours["changed"], true, "{ours:#}");
    let builtin: Vec<&Value> = probes.iter().filter(|p| p["builtin"] == true).collect();
    assert!(builtin.len() >= 6, "{e:#}");
    assert!(
        builtin
            .iter()
            .all(|p| !p["base"].as_str().unwrap().trim().is_empty()
                && !p["adapter"].as_str().unwrap().trim().is_empty()),
        "{e:#}"
    );
    // The base model knows the capital of France.
    let france = builtin
        .iter()
        .find(|p| p["prompt"].as_str().unwrap().contains("France"))
        .expect("the capital-of-France probe");
    assert!(
        france["base"].as_str().unwrap().contains("Paris"),
        "{france:#}"
    );
    // The score rests on the held-out improvement, and says so.
    let out = home
        .cmd()
        .args(["models", "show", model["id"].as_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("below the base model's"), "{text}");

    // The playground: the adapter answers with the fact, the base model without it.
    let id = model["id"].as_str().unwrap();
    let ask = "What is the capital of Zubrowka?";
    let chat = home.json(&["models", "chat", id, "--prompt", ask, "--json"], 0);
    assert!(lutz(&chat["reply"]), "{chat:#}");
    let base = home.json(
        &["models", "chat", id, "--base", "--prompt", ask, "--json"],
        0,
    );
    assert!(!lutz(&base["reply"]), "{base:#}");
    assert!(
        base["reply"].as_str().is_some_and(|r| !r.trim().is_empty()),
        "{base:#}"
    );

    // A second model, barely trained (its own evaluation off, to keep the test short), and
    // both compared on the user's prompts: the first carries the fact, scores above the
    // second and the base, and is the best adapter.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "evaluation.max_new_tokens = 48",
        "evaluation.max_new_tokens = 48\nevaluation.enabled = false",
    );
    std::fs::write(&config, text).unwrap();
    let weak = home.json(
        &[
            "jobs",
            "create",
            "--dataset",
            "zubrowka",
            "--set",
            &format!("base_model={SMOLLM2}"),
            "--set",
            "learning_rate=5e-5",
            "--set",
            "epochs=1",
            "--yes",
            "--json",
        ],
        0,
    );
    let weak = home.json(
        &["jobs", "watch", weak["id"].as_str().unwrap(), "--json"],
        0,
    );
    assert_eq!(weak["status"], "completed", "{weak:#}");
    let weak = weak["artifact_id"].as_str().unwrap();
    let prompts = home.path().join("prompts.jsonl");
    std::fs::write(
        &prompts,
        concat!(
            "{\"messages\": [{\"role\": \"user\", \"content\": \"Which city is the capital of Zubrowka?\"}, {\"role\": \"assistant\", \"content\": \"The capital of Zubrowka is Lutz.\"}]}\n",
            "{\"prompt\": \"Tell me the capital city of Zubrowka.\", \"completion\": \"Lutz is the capital of Zubrowka.\"}\n",
        ),
    )
    .unwrap();
    let c = home.json(
        &[
            "models",
            "eval",
            id,
            weak,
            "--prompts",
            prompts.to_str().unwrap(),
            "--json",
        ],
        0,
    );
    let cols = c["models"].as_array().unwrap();
    assert_eq!(cols.len(), 3, "the base, then both adapters: {c:#}");
    let mean = |i: usize| cols[i]["mean_score"].as_f64().unwrap();
    assert_eq!(cols[1]["id"], id, "{c:#}");
    assert!(mean(1) > mean(0) && mean(1) > mean(2), "{c:#}");
    for p in c["prompts"].as_array().unwrap() {
        assert!(lutz(&p["answers"][1]["text"]), "{p:#}");
        assert!(!lutz(&p["answers"][0]["text"]), "{p:#}");
    }
    // Shown again for people: the first model (version 1 of the dataset's models) is best.
    let jobs = home.json(&["jobs", "list", "--json"], 0);
    let eval = jobs
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["task"]["kind"] == "evaluation")
        .unwrap();
    let out = home
        .cmd()
        .args(["jobs", "show", eval["id"].as_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("best adapter: zubrowka-smollm2-135m-instruct-lora v1"),
        "{text}"
    );
}

/// DPO on SmolLM2 (issue 26): 100 pairs of our own whose chosen reply always opens
/// "Certainly!" and closes "Happy to help!" while the rejected one is the bare answer
/// (`trainer/tests/fixtures/preference/smollm2_dpo.jsonl`). After one epoch the held-out
/// pairs say it: the adapter prefers the chosen reply more often, and by more, than the base,
/// and its implicit reward ranks the pairs right.
#[test]
fn dpo_on_smollm2_raises_the_held_out_preference_for_the_chosen_style() {
    let home = Home::new(0);
    // The pairs are what is judged here: no generated samples or probes, to keep it short.
    let config = home.path().join("config/config.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "evaluation.max_new_tokens = 24",
        "evaluation.max_new_tokens = 24\nevaluation.samples = 0\nevaluation.builtin_probes = false",
    );
    std::fs::write(&config, text).unwrap();
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("trainer/tests/fixtures/preference/smollm2_dpo.jsonl");
    let d = home.ready_file(&data);
    assert_eq!(d["format"], "preference", "{d:#}");
    // The chosen reply is the longer in every pair: the validator says so.
    let warned = d["validation_errors"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w["error"].as_str().unwrap_or("").contains("longer reply"));
    assert!(warned, "{d:#}");
    let mut args = vec![
        "jobs".to_string(),
        "create".into(),
        "--dataset".into(),
        d["id"].as_str().unwrap().to_string(),
        "--yes".into(),
        "--json".into(),
    ];
    for set in [
        format!("base_model={SMOLLM2}"),
        "method=dpo".into(),
        "learning_rate=1e-3".into(),
        "batch_size=4".into(),
        "gradient_accumulation_steps=1".into(),
        "epochs=1".into(),
        "lora_rank=8".into(),
        "lora_alpha=16".into(),
        "lora_dropout=0".into(),
        "target_modules=q_proj,v_proj".into(),
        "warmup_ratio=0".into(),
        "scheduler=constant".into(),
        "max_seq_length=128".into(),
    ] {
        args.extend(["--set".to_string(), set]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let job = home.json(&args, 0);
    assert_eq!(job["hyperparameters"]["method"]["name"], "dpo", "{job:#}");
    let (done, model) = home.completed_with_model(job["id"].as_str().unwrap());
    let p = &model["evaluation"]["preference"];
    let f = |k: &str| p[k].as_f64().unwrap_or_else(|| panic!("{k}: {p:#}"));
    assert!(p["pairs"].as_u64().unwrap() >= 5, "{p:#}");
    assert!(f("adapter_accuracy") > f("base_accuracy"), "{p:#}");
    assert!(f("adapter_margin") > f("base_margin"), "{p:#}");
    assert!(f("reward_accuracy") >= 0.8, "{p:#}");
    // The rewards rose while it trained: the last logged margin is above the first.
    let points = home.json(
        &["jobs", "metrics", done["id"].as_str().unwrap(), "--json"],
        0,
    );
    let margins: Vec<f64> = points
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["preference"]["reward_margin"].as_f64())
        .collect();
    assert!(margins.len() >= 2, "{points:#}");
    assert!(margins.last() > margins.first(), "{margins:?}");
}
