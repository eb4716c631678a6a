//! `brightrun models eval`: an evaluation job (each model and its base answer a prompt set on
//! a backend), followed like `jobs watch` and printed as a comparison.

use super::exit;
use super::jobs::{confirm, follow};
use super::output::{self, fit, money};
use crate::client::Client;
use anyhow::{Context, Result, bail};
use brightrun_engine::api::{Api, ApiError, ErrorCode, Reason};
use brightrun_engine::domain::{ComparedModel, Comparison, EvalPrompt, JobStatus};
use brightrun_engine::wording::counted;
use std::path::PathBuf;

/// The largest prompts file read (its prompts must also fit one job's limits).
const MAX_PROMPTS_FILE_BYTES: u64 = 16 << 20;

/// `models eval`'s arguments.
pub struct EvalArgs {
    pub models: Vec<String>,
    pub prompts: Option<PathBuf>,
    pub max_new_tokens: Option<u32>,
    pub backend: Option<String>,
    pub detach: bool,
    pub yes: bool,
    pub json: bool,
}

pub async fn eval(client: &Client, args: EvalArgs) -> Result<i32> {
    let api = client.api.as_ref();
    let prompts = args.prompts.as_deref().map(read_prompts).transpose()?;
    let ask = |confirm_over_budget| {
        api.evaluate_models(
            args.models.clone(),
            prompts.clone(),
            args.max_new_tokens,
            args.backend.clone(),
            confirm_over_budget,
        )
    };
    let job = match ask(args.yes).await {
        Err(e) if e.reason == Some(Reason::OverBudget) && !args.json => {
            eprintln!("{}", output::prose(&e.message, 0));
            if !confirm("Queue it anyway?")? {
                eprintln!("not queued");
                return Ok(exit::FAILED);
            }
            ask(true).await?
        }
        other => other?,
    };
    let short = job.id.short();
    if args.detach {
        if args.json {
            output::json(&job)?;
        } else {
            println!("queued evaluation {}", job.id);
            eprintln!(
                "about {} on {}; follow it with `brightrun jobs watch {short}`, then `brightrun jobs show {short}`",
                money(job.estimated_cost),
                job.gpu_config.backend
            );
        }
        return Ok(exit::OK);
    }
    if !args.json {
        eprintln!(
            "evaluation {short} queued on {} (about {}); Ctrl-C stops watching, not the job",
            job.gpu_config.backend,
            money(job.estimated_cost)
        );
    }
    let Some(job) = follow(client, &job.id.to_string(), args.json).await? else {
        return Ok(exit::USAGE);
    };
    if job.status != JobStatus::Completed {
        let why = job.error_message.clone().unwrap_or_default();
        if args.json {
            output::json(&job)?;
        } else {
            eprintln!(
                "evaluation {short} {}: {}",
                job.status.as_str(),
                output::prose(&why, 2)
            );
        }
        return Ok(exit::FAILED);
    }
    let c = api.job_comparison(&job.id.to_string()).await?;
    if args.json {
        output::json(&c)?;
    } else {
        print_comparison(&c);
    }
    Ok(exit::OK)
}

/// Reads and parses a prompts file; its errors name the file and the line.
fn read_prompts(path: &std::path::Path) -> Result<Vec<EvalPrompt>> {
    let shown = path.display();
    let size = std::fs::metadata(path)
        .with_context(|| format!("reading the prompts file {shown}"))?
        .len();
    if size > MAX_PROMPTS_FILE_BYTES {
        bail!(ApiError::invalid(
            "prompts",
            format!(
                "the prompts file {shown} is {size} bytes; at most {MAX_PROMPTS_FILE_BYTES} are read"
            )
        ));
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading the prompts file {shown}"))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        ApiError::invalid(
            "prompts",
            format!(
                "the prompts file {shown} is not UTF-8 text (byte {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    brightrun_engine::prompts::parse(&text).map_err(|e| {
        anyhow::anyhow!(ApiError::new(
            ErrorCode::Invalid,
            format!("the prompts file {shown}: {e}")
        ))
    })
}

/// A comparison for people: the models' totals, then each prompt with every model's answer
/// and score (`★` the best-scoring answer, `≠` an adapter's probe answer that differs from its
/// base's).
pub fn print_comparison(c: &Comparison) {
    let from = match c.prompts_from.as_deref() {
        Some("prompts") => "the given prompts",
        Some("training") => "training examples (the dataset held none out) and probes",
        _ => "held-out examples and probes",
    };
    println!(
        "comparison: {} on {} ({from}); answers scored by {} against the reference{}",
        counted(c.models.len() as u64, "model"),
        counted(c.prompts.len() as u64, "prompt"),
        c.similarity.as_deref().unwrap_or("similarity"),
        c.seconds.map(|s| format!("; {s:.0} s")).unwrap_or_default()
    );
    let f = |v: Option<f64>, digits: usize| {
        v.map(|v| format!("{v:.digits$}"))
            .unwrap_or_else(|| "-".into())
    };
    let rows: Vec<Vec<String>> = c
        .models
        .iter()
        .map(|m| {
            vec![
                fit(&m.label, 40),
                if m.adapter { "adapter" } else { "base" }.into(),
                f(m.loss, 4),
                f(m.mean_score, 2),
                m.best.to_string(),
            ]
        })
        .collect();
    output::table(
        &["MODEL", "KIND", "HELD-OUT LOSS", "MEAN SCORE", "BEST"],
        &rows,
    );
    if let Some(best) = c.best_adapter() {
        println!(
            "best adapter: {} (mean score {})",
            best.label,
            f(best.mean_score, 2)
        );
    }
    if let Some(err) = &c.error {
        println!("incomplete: {}", output::prose(err, 12));
    }
    if c.misaligned() > 0 {
        println!(
            "note: {} of the trainer's answer lists do not match its models; shown as given",
            c.misaligned()
        );
    }
    let width = c.models.iter().map(label_width).max().unwrap_or(4);
    for (i, p) in c.prompts.iter().enumerate() {
        println!();
        let kind = if p.probe { "probe: " } else { "" };
        println!("{:>3}. {kind}{}", i + 1, output::prose(&p.prompt, 5));
        if let Some(r) = &p.reference {
            println!(
                "     {:width$}  {}",
                "reference",
                output::prose(r, width + 7)
            );
        }
        let top = p
            .answers
            .iter()
            .filter_map(|a| a.score)
            .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.max(s))));
        for (m, a) in c.models.iter().zip(&p.answers) {
            let mut marks = String::new();
            if let Some(s) = a.score {
                marks.push_str(&format!("  {s:.2}"));
                if top == Some(s) && p.answers.len() > 1 {
                    marks.push_str(" ★");
                }
            }
            if a.changed == Some(true) {
                marks.push_str(" ≠ base");
            }
            println!(
                "     {:width$}  {}{marks}",
                fit(&m.label, width),
                output::prose(&a.text, width + 7)
            );
        }
    }
}

/// How wide a model's label column is (labels past 24 characters are cut).
fn label_width(m: &ComparedModel) -> usize {
    m.label.chars().count().clamp(9, 24)
}
