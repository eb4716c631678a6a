//! `brightrun models export`: an export job (merged, GGUF, GGUF LoRA), estimated and confirmed
//! like `jobs create`, followed like `jobs watch`, and printed as the model it made with the
//! check it passed.

use super::exit;
use super::jobs::{confirm, follow};
use super::output::{self, bytes, fit, money};
use crate::client::Client;
use anyhow::Result;
use brightrun_engine::api::{Api, Reason};
use brightrun_engine::domain::{ExportOptions, JobStatus, ModelArtifact, TrainingJob};

/// `models export`'s arguments.
pub struct ExportArgs {
    pub model: String,
    pub options: ExportOptions,
    pub detach: bool,
    pub yes: bool,
    pub json: bool,
}

pub async fn export(client: &Client, args: ExportArgs) -> Result<i32> {
    let api = client.api.as_ref();
    let mut options = args.options.clone();
    if !args.yes {
        let plan = api
            .export_model(
                &args.model,
                ExportOptions {
                    dry_run: true,
                    ..options.clone()
                },
            )
            .await?;
        eprintln!("{}", describe(&plan));
        if !confirm("Queue this export?")? {
            eprintln!("not queued");
            return Ok(exit::FAILED);
        }
    }
    options.confirm_over_budget = args.yes;
    let job = match api.export_model(&args.model, options.clone()).await {
        Err(e) if e.reason == Some(Reason::OverBudget) && !args.yes => {
            eprintln!("{}", output::prose(&e.message, 0));
            if !confirm("Queue it anyway?")? {
                eprintln!("not queued");
                return Ok(exit::FAILED);
            }
            options.confirm_over_budget = true;
            api.export_model(&args.model, options).await?
        }
        other => other?,
    };
    let short = job.id.short();
    if args.json || args.detach {
        if args.json {
            output::json(&job)?;
        } else {
            println!("queued export {}", job.id);
            eprintln!("follow it with `brightrun jobs watch {short}`");
        }
        return Ok(exit::OK);
    }
    eprintln!(
        "export {short} queued on {}; Ctrl-C stops watching, not the job",
        job.gpu_config.backend
    );
    let Some(job) = follow(client, &job.id.to_string(), false).await? else {
        return Ok(exit::USAGE);
    };
    if job.status != JobStatus::Completed {
        eprintln!(
            "export {short} {}: {}",
            job.status.as_str(),
            output::prose(job.error_message.as_deref().unwrap_or_default(), 2)
        );
        return Ok(exit::FAILED);
    }
    let Some(id) = job.artifact_id else {
        eprintln!("export {short} completed without a model");
        return Ok(exit::FAILED);
    };
    print_export(&api.model(&id.to_string()).await?);
    Ok(exit::OK)
}

/// What an export will do, for the question before it is queued.
fn describe(plan: &TrainingJob) -> String {
    let Some(task) = plan.task.export() else {
        return format!("job {}", plan.id.short());
    };
    let what = match (&task.quantize, task.ollama) {
        (Some(q), true) => format!(
            "GGUF {} quantized {q}, with an Ollama Modelfile",
            task.dtype.as_str()
        ),
        (Some(q), false) => format!("GGUF {} quantized {q}", task.dtype.as_str()),
        (None, true) => format!("GGUF {}, with an Ollama Modelfile", task.dtype.as_str()),
        (None, false) => format!("{} {}", task.format.as_str(), task.dtype.as_str()),
    };
    let minutes = plan
        .estimated_completion_at
        .map(|t| (t - plan.queued_at).num_seconds().max(0) as f64 / 60.0)
        .unwrap_or_default();
    format!(
        "export of {} ({}) as {what}, named {}\n  on {} ({}× {}): about {} and {minutes:.0} min, checked against base + adapter before it is stored",
        task.model.short(),
        plan.hyperparameters.base_model,
        task.name,
        plan.gpu_config.backend,
        plan.gpu_config.gpu_count,
        plan.gpu_config.gpu_type,
        money(plan.estimated_cost),
    )
}

/// The model an export made: its kind, the check it passed, its files and how to use it.
pub(crate) fn print_export(a: &ModelArtifact) {
    println!(
        "{}  {} v{} ({})",
        a.id,
        fit(&a.name, 80),
        a.version,
        a.kind.as_str()
    );
    if let Some(p) = a.parent_model_id {
        println!("  exported from {}", p.short());
    }
    if let Some(c) = &a.export {
        println!(
            "  check        {} ({})",
            if c.passed { "passed" } else { "FAILED" },
            c.summary()
        );
        if let Some(cmd) = &c.ollama_command {
            println!("  ollama       {cmd}");
        }
    }
    println!("  files:");
    for f in &a.files {
        println!("    {:<44} {:>10}", fit(&f.path, 44), bytes(f.size));
    }
    eprintln!("`brightrun models download {}` fetches it", a.id.short());
}
