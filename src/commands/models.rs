//! `brightrun models …`

use super::exit;
use super::output::{self, bytes, fit};
use crate::cli::ModelsCmd;
use crate::client::Client;
use anyhow::{Context, Result};
use brightrun_engine::api::{Api, Paging, Reason};
use brightrun_engine::domain::{
    Evaluation, ExportDtype, ExportFormat, ExportOptions, ModelArtifact, ModelKind,
};
use brightrun_engine::training::ModelSource;

/// `7.2B`, `494M`, `116k` parameters.
fn format_billions(b: f64) -> String {
    if b >= 1.0 {
        format!("{b:.1}B")
    } else if b >= 0.001 {
        format!("{:.0}M", b * 1000.0)
    } else {
        format!("{:.0}k", b * 1e6)
    }
}

pub async fn run(client: &Client, cmd: ModelsCmd) -> Result<i32> {
    let api = client.api.as_ref();
    match cmd {
        ModelsCmd::FromCheckpoint { job, step, json } => {
            let a = api.model_from_checkpoint(&job, step).await?;
            if json.json {
                output::json(&a)?;
            } else {
                println!("model {} (from step {step} of job {job})", a.id);
                eprintln!(
                    "`brightrun models eval {}` evaluates it against its base",
                    a.id.short()
                );
            }
            Ok(exit::OK)
        }
        ModelsCmd::Eval {
            models,
            prompts,
            max_new_tokens,
            backend,
            detach,
            yes,
            json,
        } => {
            let ask = super::compare::EvalArgs {
                models,
                prompts,
                max_new_tokens,
                backend,
                detach,
                yes,
                json: json.json,
            };
            super::compare::eval(client, ask).await
        }
        ModelsCmd::Export {
            model,
            format,
            dtype,
            quantize,
            ollama,
            name,
            system,
            backend,
            gpu_type,
            detach,
            yes,
            json,
        } => {
            let mut options =
                ExportOptions::new(ExportFormat::parse(&format).context("clap checked --format")?);
            options.dtype = dtype.as_deref().and_then(ExportDtype::parse);
            options.quantize = quantize;
            options.ollama = ollama;
            options.name = name;
            options.system_prompt = system;
            options.backend = backend;
            options.gpu_type = gpu_type;
            let args = super::export::ExportArgs {
                model,
                options,
                detach,
                yes,
                json: json.json,
            };
            super::export::export(client, args).await
        }
        ModelsCmd::List { json } => {
            let list = api.models(Paging::ALL).await?.items;
            if json.json {
                output::json(&list)?;
            } else if list.is_empty() {
                eprintln!("no models yet: they appear when a training job completes");
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|a| {
                        vec![
                            a.id.short(),
                            match a.parent_model_id {
                                Some(p) if a.kind != ModelKind::Adapter => {
                                    format!("{} of {}", a.kind.as_str(), p.short())
                                }
                                _ => a.kind.as_str().to_string(),
                            },
                            fit(&a.name, 40),
                            format!("v{}", a.version),
                            format!("{}/5", a.quality_metrics.quality_score),
                            a.quality_metrics
                                .final_training_loss
                                .map(|l| format!("{l:.4}"))
                                .unwrap_or("-".into()),
                            bytes(a.files.iter().map(|f| f.size).sum()),
                            a.created_at.format("%Y-%m-%d %H:%M").to_string(),
                        ]
                    })
                    .collect();
                output::table(
                    &[
                        "ID", "KIND", "NAME", "VERSION", "QUALITY", "LOSS", "SIZE", "CREATED",
                    ],
                    &rows,
                );
            }
            Ok(exit::OK)
        }
        ModelsCmd::Base { json } => {
            let models = api.catalog().await?.base_models;
            if json.json {
                output::json(&models)?;
            } else {
                let rows: Vec<Vec<String>> = models
                    .iter()
                    .map(|m| {
                        vec![
                            m.id.clone(),
                            format_billions(m.parameters_billions()),
                            m.num_layers.to_string(),
                            m.hidden_size.to_string(),
                            match m.source {
                                ModelSource::Builtin => "built-in",
                                _ => "config",
                            }
                            .to_string(),
                        ]
                    })
                    .collect();
                output::table(
                    &["MODEL", "PARAMETERS", "LAYERS", "HIDDEN", "SOURCE"],
                    &rows,
                );
                eprintln!(
                    "other Hugging Face ids: give their size with --set parameters_billions=N, or add [training.models.\"ID\"] to config"
                );
            }
            Ok(exit::OK)
        }
        ModelsCmd::Show { id, json } => {
            let a = api.model(&id).await?;
            let evaluation = match api.model_evaluation(&a.id.to_string()).await {
                Ok(e) => Some(e),
                Err(e) if e.reason == Some(Reason::NotEvaluated) => None,
                Err(e) => return Err(e.into()),
            };
            if json.json {
                // The model as the API's `GET /api/models/{id}` answers it.
                let mut v = serde_json::to_value(&a)?;
                v["evaluation"] = serde_json::to_value(&evaluation)?;
                output::json(&v)?;
            } else if a.kind != ModelKind::Adapter {
                super::export::print_export(&a);
            } else {
                print_model(&a, evaluation.as_ref());
                print_lineage(api, &a).await;
            }
            Ok(exit::OK)
        }
        ModelsCmd::Download {
            id,
            to,
            force,
            json,
        } => {
            let bar = output::progress_bar("downloading", json.json);
            let files = api
                .download_model(&id, &to, force, &|d, t| {
                    bar.set_length(t);
                    bar.set_position(d);
                })
                .await;
            bar.finish_and_clear();
            let files = files?;
            if json.json {
                output::json(&files)?;
            } else {
                for f in &files {
                    println!("{}", f.display());
                }
                eprintln!("{} files, sha256 verified", files.len());
            }
            Ok(exit::OK)
        }
        ModelsCmd::Url {
            id,
            file,
            expires,
            json,
        } => {
            let secs = parse_duration(&expires).ok_or_else(|| {
                anyhow::anyhow!(brightrun_engine::api::ApiError::invalid(
                    "expires",
                    format!(
                        "--expires takes a duration such as 30m, 1h, 24h or 7d, not `{}`",
                        brightrun_engine::text::clean_line(&expires)
                    ),
                ))
            })?;
            let u = api.model_url(&id, file, Some(secs)).await?;
            if json.json {
                output::json(&u)?;
            } else {
                println!("{}", u.url);
                eprintln!(
                    "{} of model {}, valid until {}",
                    u.file,
                    u.model_id.short(),
                    u.expires_at.format("%Y-%m-%d %H:%M UTC")
                );
            }
            Ok(exit::OK)
        }
        ModelsCmd::Chat {
            id,
            base,
            system,
            max_new_tokens,
            temperature,
            prompt,
            json,
        } => {
            // The model's full id: a prefix or a name is the CLI's convenience, and an
            // attached engine's chat route (HTTP) takes full ids only.
            let model = api.model(&id).await?;
            let options = super::chat::Options {
                model: model.id.to_string(),
                base,
                system,
                max_new_tokens,
                temperature,
                json: json.json,
            };
            match prompt {
                Some(p) => super::chat::once(api, options, p).await,
                None => super::chat::conversation(api, options).await,
            }
        }
        ModelsCmd::Rm { id, purge, json } => {
            let m = api.delete_model(&id, purge).await?;
            if json.json {
                output::json(&m)?;
            } else {
                println!(
                    "deleted model {} ({}){}",
                    m.id.short(),
                    fit(&m.name, 60),
                    if purge { " and its stored files" } else { "" }
                );
            }
            Ok(exit::OK)
        }
    }
}

/// `30s`, `30m`, `1h`, `7d` (or plain seconds) as seconds.
fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    let (n, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: u64 = n.parse().ok()?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return None,
    };
    n.checked_mul(mult).filter(|&v| v > 0)
}

/// The models `a` was trained on from (`--from-model`), nearest first: each with its dataset's
/// version and the step or run it came from. Stops at a model that is gone, at 20, or at a loop.
async fn print_lineage(api: &dyn brightrun_engine::api::EngineApi, a: &ModelArtifact) {
    let mut seen = vec![a.id];
    let mut next = a.parent_model_id;
    while let Some(id) = next {
        if seen.len() > 20 || seen.contains(&id) {
            break;
        }
        seen.push(id);
        match api.model(&id.to_string()).await {
            Ok(p) => {
                println!(
                    "  trained from {} {} v{} (job {})",
                    p.id.short(),
                    fit(&p.name, 60),
                    p.version,
                    p.job_id.short()
                );
                next = p.parent_model_id;
            }
            Err(_) => {
                println!("  trained from {} (deleted)", id.short());
                break;
            }
        }
    }
}

fn print_model(a: &ModelArtifact, evaluation: Option<&Evaluation>) {
    let q = &a.quality_metrics;
    println!("{}  {} v{}", a.id, fit(&a.name, 80), a.version);
    println!("  base model   {}", a.base_model);
    println!("  job          {}", a.job_id);
    println!(
        "  quality      {}/5 ({})",
        q.quality_score,
        brightrun_engine::training::quality::explain(q, evaluation)
    );
    let f = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or("-".into());
    println!(
        "  loss         {} → {} (validation {}, perplexity {}, reduction {})",
        f(q.initial_training_loss),
        f(q.final_training_loss),
        f(q.final_validation_loss),
        f(q.perplexity),
        q.loss_reduction_percent
            .map(|p| format!("{p:.1}%"))
            .unwrap_or("-".into())
    );
    let s = &a.training_summary;
    println!(
        "  training     {} steps, {} epoch{}, {:.0} s, ${:.2} on {}× {}",
        s.total_steps,
        s.epochs,
        if s.epochs == 1 { "" } else { "s" },
        s.duration_seconds,
        s.final_cost,
        s.gpu_count,
        s.gpu_type
    );
    if let Some(e) = evaluation {
        print_evaluation(e);
    }
    println!("  files:");
    for file in &a.files {
        println!(
            "    {:<40} {:>10}  {}",
            fit(&file.path, 40),
            bytes(file.size),
            &file.sha256[..16.min(file.sha256.len())]
        );
    }
}

/// The evaluation under a model: held-out loss base → adapter, how often the adapter came
/// closer to the reference, then each sample and probe with both answers (`*` marks a probe
/// whose answer the training changed).
fn print_evaluation(e: &Evaluation) {
    let f = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or("-".into());
    println!(
        "  evaluation   held-out loss {} → {} (base → adapter), perplexity {} → {}",
        f(e.base_loss),
        f(e.adapter_loss),
        f(e.base_perplexity),
        f(e.adapter_perplexity)
    );
    if let Some(p) = &e.preference {
        let pct = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.0}%", v * 100.0));
        println!(
            "               prefers the chosen reply in {} → {} of {} held-out pairs (base → adapter; margin {} → {}), implicit reward accuracy {} (margin {})",
            pct(p.base_accuracy),
            pct(p.adapter_accuracy),
            p.pairs,
            f(p.base_margin),
            f(p.adapter_margin),
            pct(p.reward_accuracy),
            f(p.reward_margin)
        );
    }
    if let (Some(a), Some(b)) = (e.adapter_closer, e.base_closer) {
        let from = match e.samples_from.as_deref() {
            Some("training") => "training examples (the dataset held none out)",
            _ => "held-out examples",
        };
        println!(
            "               closer to the reference than the base in {a} of {} {from} (base closer in {b}; {})",
            e.samples.len(),
            e.similarity.as_deref().unwrap_or("similarity")
        );
    }
    println!(
        "               {} of {} probes answered differently after training{}",
        e.probes_changed(),
        e.probes.len(),
        e.seconds
            .map(|s| format!("; evaluated in {s:.0} s"))
            .unwrap_or_default()
    );
    if let Some(err) = &e.error {
        println!("               incomplete: {}", output::prose(err, 15));
    }
    let score = |s: Option<f64>| s.map(|s| format!(" ({s:.2})")).unwrap_or_default();
    for (title, items) in [("samples", &e.samples), ("probes", &e.probes)] {
        if items.is_empty() {
            continue;
        }
        println!("  {title}:");
        for (i, s) in items.iter().enumerate() {
            let mark = if s.changed == Some(true) { "*" } else { " " };
            println!("   {mark}{:>2}. {}", i + 1, output::prose(&s.prompt, 8));
            if let Some(r) = &s.reference {
                println!("        reference  {}", output::prose(r, 19));
            }
            println!(
                "        base       {}{}",
                output::prose(&s.base, 19),
                score(s.base_score)
            );
            println!(
                "        adapter    {}{}",
                output::prose(&s.adapter, 19),
                score(s.adapter_score)
            );
        }
    }
}
