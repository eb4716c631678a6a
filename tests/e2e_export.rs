//! Exports end to end (issue 27, `brightrun models export`): an adapter trained on the real
//! small model (SmolLM2-135M-Instruct) through the real binary is exported merged, as a GGUF
//! with an Ollama Modelfile and as a GGUF LoRA, each a job run by the real trainer's export
//! mode and checked there before it is stored. The test then checks the downloaded files
//! itself: the merged folder loads in plain transformers and the GGUF in llama.cpp
//! (llama-cpp-python), and both continue a chat exactly as base + adapter do. Bad requests
//! are refused before anything is queued, and a cancelled export leaves no model. (A remote
//! backend's export through presigned URLs is in e2e_ray.)

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;

const SMOLLM2: &str = "brightrun/smollm2-135m-instruct";

/// Exports `model` in `format` with `extra` flags, follows the job and returns the model it
/// made (`models show --json`).
fn export(home: &Home, model: &str, format: &str, extra: &[&str]) -> Value {
    let mut args = vec!["models", "export", model, "--format", format];
    args.extend_from_slice(extra);
    args.extend(["--yes", "--json"]);
    let job = home.json(&args, 0);
    assert_eq!(job["status"], "queued", "{job:#}");
    assert_eq!(job["task"]["kind"], "export", "{job:#}");
    let done = home.json(&["jobs", "watch", job["id"].as_str().unwrap(), "--json"], 0);
    assert_eq!(done["status"], "completed", "{done:#}");
    let id = done["artifact_id"]
        .as_str()
        .expect("an export makes a model");
    home.json(&["models", "show", id, "--json"], 0)
}

fn file_names(model: &Value) -> Vec<String> {
    model["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect()
}

/// Downloads `model` into `dir` and checks every file against its recorded sha256.
fn download(home: &Home, model: &Value, dir: &Path) {
    let id = model["id"].as_str().unwrap();
    home.json(
        &[
            "models",
            "download",
            id,
            "--to",
            dir.to_str().unwrap(),
            "--json",
        ],
        0,
    );
    for f in model["files"].as_array().unwrap() {
        let path = dir.join(f["path"].as_str().unwrap());
        assert_eq!(sha256_file(&path), f["sha256"], "{}", path.display());
    }
}

/// Greedy continuations of one chat by base + adapter (transformers, PEFT), by the merged
/// folder (plain transformers) and by the GGUF (llama.cpp), each over the same prompt tokens.
const CONTINUE: &str = r#"
import json, sys
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import PeftModel
from llama_cpp import Llama
from brightrun_trainer.smollm2 import ensure_smollm2
base_dir, adapter_dir, merged_dir, gguf = sys.argv[1:5]
tok = AutoTokenizer.from_pretrained(merged_dir)
chat = [{"role": "user", "content": "What is the capital of France?"}]
ids = tok.apply_chat_template(chat, add_generation_prompt=True, tokenize=True, return_dict=False)
if hasattr(ids, "input_ids"):
    ids = ids["input_ids"]
ids = list(ids)
def greedy(model):
    out = model.generate(torch.tensor([ids]), max_new_tokens=8, do_sample=False)
    return out[0][len(ids):].tolist()
peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir, torch_dtype=torch.float32), adapter_dir)
merged = AutoModelForCausalLM.from_pretrained(merged_dir, torch_dtype=torch.float32)
llm = Llama(model_path=gguf, n_ctx=512, verbose=False, logits_all=False)
cpp = []
llm.reset()
for t in llm.generate(ids, temp=0.0, top_k=1, reset=True):
    cpp.append(t)
    if len(cpp) == 8 or t == llm.token_eos():
        break
print(json.dumps({"peft": greedy(peft), "merged": greedy(merged), "gguf": cpp,
                  "merged_is_plain": not hasattr(merged, "peft_config")}))
"#;

#[test]
fn a_smollm2_adapter_exports_merged_gguf_and_gguf_lora_each_checked() {
    let home = Home::new(0);
    // No evaluation stage: this test is about exports.
    let config = home.path().join("config/config.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("evaluation.enabled = false\n{text}")).unwrap();
    home.zubrowka_dataset();
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
            "epochs=1",
            "--yes",
            "--json",
        ],
        0,
    );
    let done = home.json(&["jobs", "watch", job["id"].as_str().unwrap(), "--json"], 0);
    assert_eq!(done["status"], "completed", "{done:#}");
    let adapter = done["artifact_id"].as_str().unwrap().to_string();
    let adapter_model = home.json(&["models", "show", &adapter, "--json"], 0);
    assert_eq!(adapter_model["kind"], "adapter");

    // Refused before anything is queued, each naming what to change.
    let refused = |args: &[&str], needle: &str| {
        let out = home.cmd().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    };
    refused(
        &[
            "models",
            "export",
            &adapter,
            "--format",
            "gguf",
            "--quantize",
            "q9_z",
            "--yes",
        ],
        "q4_k_m",
    );
    refused(
        &[
            "models", "export", &adapter, "--format", "merged", "--ollama", "--yes",
        ],
        "--format gguf",
    );
    let jobs = home.json(&["jobs", "list", "--json"], 0);
    assert_eq!(
        jobs.as_array().unwrap().len(),
        1,
        "nothing queued: {jobs:#}"
    );

    // Merged, f32: a plain transformers folder, checked by its logits.
    let merged = export(&home, &adapter, "merged", &["--dtype", "f32"]);
    assert_eq!(merged["kind"], "merged", "{merged:#}");
    assert_eq!(merged["parent_model_id"], adapter.as_str());
    let check = &merged["export"];
    assert_eq!(check["passed"], true, "{merged:#}");
    assert_eq!(check["checked"], "logits", "{merged:#}");
    assert!(
        check["max_abs_diff"].as_f64().unwrap() <= check["tolerance"].as_f64().unwrap(),
        "{check:#}"
    );
    let names = file_names(&merged);
    for n in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "export.json",
    ] {
        assert!(names.iter().any(|x| x == n), "{n}: {names:?}");
    }
    assert!(
        !names.iter().any(|x| x.starts_with("adapter_")),
        "no adapter files in a merged model: {names:?}"
    );

    // GGUF f16 with an Ollama Modelfile, checked by llama.cpp's greedy continuation.
    let gguf = export(&home, &adapter, "gguf", &["--ollama", "--name", "zubrowka"]);
    assert_eq!(gguf["kind"], "gguf", "{gguf:#}");
    assert_eq!(gguf["name"], "zubrowka");
    let check = &gguf["export"];
    assert_eq!(check["passed"], true, "{gguf:#}");
    assert_eq!(check["checked"], "greedy", "{gguf:#}");
    assert_eq!(check["template_matches"], true, "{gguf:#}");
    assert!(check["agreement"].as_f64().unwrap() > 0.0, "{check:#}");
    assert!(
        check["ollama_command"]
            .as_str()
            .is_some_and(|c| c.contains("ollama create zubrowka -f Modelfile")),
        "{check:#}"
    );
    let mut names = file_names(&gguf);
    names.sort();
    assert_eq!(names, ["Modelfile", "export.json", "model.gguf"]);
    // Stored once: the trainer's copy in the job's folder is gone.
    let job_dir = home.job_dir(gguf["job_id"].as_str().unwrap());
    let copies = files_named(&job_dir, &|n: &str| n.ends_with(".gguf"));
    assert!(copies.is_empty(), "{copies:?}");

    // A GGUF LoRA for llama.cpp's --lora over the base's own GGUF.
    let lora = export(&home, &adapter, "gguf-lora", &[]);
    assert_eq!(lora["kind"], "gguf-lora", "{lora:#}");
    assert_eq!(lora["export"]["passed"], true, "{lora:#}");
    let mut names = file_names(&lora);
    names.sort();
    assert_eq!(names, ["adapter.gguf", "export.json"]);

    // The models list shows each export under its kind; an export exports nothing.
    let listed = home.json(&["models", "list", "--json"], 0);
    let mut kinds: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["adapter", "gguf", "gguf-lora", "merged"]);
    refused(
        &[
            "models",
            "export",
            gguf["id"].as_str().unwrap(),
            "--format",
            "merged",
            "--yes",
        ],
        "export the adapter",
    );
    let shown = home
        .cmd()
        .args(["models", "show", gguf["id"].as_str().unwrap()])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("gguf") && shown.contains("ollama create"),
        "{shown}"
    );

    // What a user downloads answers like base + adapter: checked here, apart from the
    // trainer's own check.
    let merged_dir = home.path().join("merged");
    let gguf_dir = home.path().join("gguf");
    let adapter_dir = home.path().join("adapter");
    download(&home, &merged, &merged_dir);
    download(&home, &gguf, &gguf_dir);
    download(&home, &adapter_model, &adapter_dir);
    let modelfile = std::fs::read_to_string(gguf_dir.join("Modelfile")).unwrap();
    assert!(
        modelfile.lines().any(|l| l == "FROM ./model.gguf"),
        "{modelfile}"
    );
    assert!(
        modelfile.contains("PARAMETER stop \"<|im_end|>\""),
        "{modelfile}"
    );
    assert!(
        modelfile.contains("{{ range") || modelfile.contains("{{- range"),
        "{modelfile}"
    );
    let base_dir = String::from_utf8(
        std::process::Command::new(trainer_python())
            .args([
                "-c",
                "from brightrun_trainer.smollm2 import ensure_smollm2; print(ensure_smollm2())",
            ])
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("trainer"))
            .env("HF_HUB_OFFLINE", "1")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let out = std::process::Command::new(trainer_python())
        .args([
            "-c",
            CONTINUE,
            base_dir.trim(),
            adapter_dir.to_str().unwrap(),
            merged_dir.to_str().unwrap(),
            gguf_dir.join("model.gguf").to_str().unwrap(),
        ])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("trainer"))
        .env("HF_HUB_OFFLINE", "1")
        .env("TRANSFORMERS_OFFLINE", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(got["merged_is_plain"], true, "{got:#}");
    assert_eq!(
        got["merged"], got["peft"],
        "merged vs base + adapter: {got:#}"
    );
    assert_eq!(
        got["gguf"], got["peft"],
        "llama.cpp vs base + adapter: {got:#}"
    );
    assert!(got["peft"].as_array().unwrap().len() >= 3, "{got:#}");

    // A cancelled export: the job is cancelled, no model is added, nothing is left behind.
    let job = home.json(
        &[
            "models", "export", &adapter, "--format", "gguf", "--dtype", "f32", "--yes", "--json",
        ],
        0,
    );
    let id = job["id"].as_str().unwrap().to_string();
    // A watcher runs the engine (no daemon here) while this test looks and cancels.
    let mut watch = home
        .std_cmd()
        .args(["jobs", "watch", &id])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = Value::Null;
    home.wait_until(120, "the export to start", || {
        seen = home.json(&["jobs", "show", &id, "--json"], 0);
        !matches!(seen["status"].as_str(), Some("queued" | "initializing"))
    });
    assert_eq!(seen["status"], "running", "{seen:#}");
    home.json(&["jobs", "cancel", &id, "--json"], 0);
    home.wait_until(120, "the export to stop", || {
        home.json(&["jobs", "show", &id, "--json"], 0)["status"] == "cancelled"
    });
    let _ = watch.wait();
    let after = home.json(&["models", "list", "--json"], 0);
    assert_eq!(
        after.as_array().unwrap().len(),
        4,
        "no model from a cancelled export"
    );
    let leftovers = files_named(&home.job_dir(&id), &|n: &str| n.ends_with(".gguf"));
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
