//! `brightrun datasets …`

use super::exit;
use super::output::{self, bytes, count, fit};
use crate::cli::DatasetsCmd;
use anyhow::Result;
use brightrun_engine::api::{Api, ApiError, EngineApi, InspectAt, Paging};
use brightrun_engine::domain::{Dataset, DatasetStatus, Severity};

pub async fn run(api: &dyn EngineApi, cmd: DatasetsCmd) -> Result<i32> {
    match cmd {
        DatasetsCmd::Add {
            file,
            name,
            description,
            wait,
            json,
        } => {
            let bar = output::progress_bar("uploading", json.json);
            let dataset = api
                .add_dataset_file(&file, name, description, &|done, total| {
                    bar.set_length(total);
                    bar.set_position(done);
                })
                .await;
            bar.finish_and_clear();
            let dataset = dataset?;
            if !json.json {
                eprintln!(
                    "uploaded {} ({}), validating…",
                    dataset.id.short(),
                    bytes(dataset.file_size)
                );
            }
            let dataset = api.validate_dataset(&dataset.id.to_string()).await?;
            if let Some(same) = same_file(api, &dataset).await? {
                eprintln!(
                    "note: this is the same file as dataset {} ({}, added {}); both are kept",
                    same.id.short(),
                    fit(&same.name, 60),
                    same.created_at.format("%Y-%m-%d %H:%M")
                );
            }
            print_one(&dataset, json.json)?;
            Ok(if wait && dataset.status != DatasetStatus::Ready {
                exit::FAILED
            } else {
                exit::OK
            })
        }
        DatasetsCmd::List {
            status,
            limit,
            offset,
            json,
        } => {
            let status = status.map(|s| parse_status(&s)).transpose()?;
            let list = api
                .datasets(status, None, Paging { offset, limit })
                .await?
                .items;
            if json.json {
                output::json(&list)?;
            } else if list.is_empty() {
                eprintln!("no datasets yet: add one with `brightrun datasets add FILE`");
            } else {
                let rows: Vec<Vec<String>> = list.iter().map(row).collect();
                output::table(
                    &[
                        "ID", "NAME", "FORMAT", "STATUS", "EXAMPLES", "TOKENS", "SIZE", "CREATED",
                    ],
                    &rows,
                );
            }
            Ok(exit::OK)
        }
        DatasetsCmd::Show { id, json } => {
            let d = api.dataset(&id).await?;
            print_one(&d, json.json)?;
            Ok(exit::OK)
        }
        DatasetsCmd::Validate { id, json } => {
            let d = api.validate_dataset(&id).await?;
            print_one(&d, json.json)?;
            Ok(if d.status == DatasetStatus::Ready {
                exit::OK
            } else {
                exit::FAILED
            })
        }
        DatasetsCmd::Rename { id, name, json } => {
            let d = api.update_dataset(&id, Some(name), None).await?;
            print_one(&d, json.json)?;
            Ok(exit::OK)
        }
        DatasetsCmd::Describe {
            id,
            description,
            json,
        } => {
            let d = api.update_dataset(&id, None, Some(description)).await?;
            print_one(&d, json.json)?;
            Ok(exit::OK)
        }
        DatasetsCmd::Inspect {
            id,
            model,
            example,
            line,
            max_seq_length,
            stats,
            json,
        } => {
            let at = match (example, line) {
                (Some(i), _) => InspectAt::Index(i),
                (None, Some(l)) => InspectAt::Line(l),
                (None, None) => InspectAt::First,
            };
            let what = super::inspect::Inspect {
                id,
                model,
                at,
                max_seq_length,
                stats,
            };
            super::inspect::run(api, what, json.json).await
        }
        DatasetsCmd::Clean {
            id,
            drop_duplicates,
            name,
            json,
        } => {
            let c = api.clean_dataset(&id, drop_duplicates, name).await?;
            if json.json {
                output::json(&c)?;
            } else {
                let r = &c.report;
                println!(
                    "made dataset {} ({}) from {} of the examples of {id}; {} dropped{}",
                    c.dataset.id.short(),
                    fit(&c.dataset.name, 60),
                    count(r.kept),
                    count(r.dropped.len() as u64),
                    if r.duplicates_dropped > 0 {
                        format!(" ({})", output::counted(r.duplicates_dropped, "duplicate"))
                    } else {
                        String::new()
                    }
                );
                for d in r.dropped.iter().take(20) {
                    let at = match d.element {
                        Some(e) => format!("element {e}"),
                        None => format!("line {}", d.line),
                    };
                    println!("  {at:>14}  {}", output::prose(&d.reason, 18));
                }
                if r.dropped.len() > 20 {
                    println!("  … {} more (see --json)", r.dropped.len() - 20);
                }
            }
            Ok(if c.dataset.status == DatasetStatus::Ready {
                exit::OK
            } else {
                exit::FAILED
            })
        }
        DatasetsCmd::Rm {
            id,
            yes,
            purge,
            json,
        } => {
            if !yes {
                let d = api.dataset(&id).await?;
                let jobs = api
                    .jobs(None, Paging::ALL)
                    .await?
                    .items
                    .iter()
                    .filter(|j| j.dataset_id == d.id)
                    .count();
                let models = api
                    .models(Paging::ALL)
                    .await?
                    .items
                    .iter()
                    .filter(|m| m.dataset_id == d.id)
                    .count();
                let used = if jobs + models > 0 {
                    let n = |k: usize, w: &str| format!("{k} {w}{}", if k == 1 { "" } else { "s" });
                    format!(" (used by {} and {})", n(jobs, "job"), n(models, "model"))
                } else {
                    String::new()
                };
                let q = format!(
                    "Delete dataset {} “{}”{used}?",
                    d.id.short(),
                    fit(&d.name, 60)
                );
                if !super::jobs::confirm(&q)? {
                    eprintln!("not deleted");
                    return Ok(exit::FAILED);
                }
            }
            let d = api.delete_dataset(&id, purge).await?;
            if json.json {
                output::json(&d)?;
            } else {
                println!(
                    "deleted dataset {} ({}){}",
                    d.id.short(),
                    fit(&d.name, 60),
                    if purge { " and its stored file" } else { "" }
                );
            }
            Ok(exit::OK)
        }
        DatasetsCmd::Resume { id, json } => {
            let d = api.resume_dataset(&id).await?;
            if json.json {
                output::json(&d)?;
            } else {
                println!(
                    "dataset {} ({}) is {}",
                    d.id.short(),
                    fit(&d.name, 60),
                    d.status.as_str()
                );
            }
            Ok(exit::OK)
        }
    }
}

fn parse_status(s: &str) -> Result<DatasetStatus> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "uploading" => DatasetStatus::Uploading,
        "validating" => DatasetStatus::Validating,
        "ready" => DatasetStatus::Ready,
        "error" => DatasetStatus::Error,
        _ => {
            return Err(ApiError::invalid(
                "status",
                format!(
                    "unknown dataset status `{s}` (expected uploading, validating, ready or error)"
                ),
            )
            .into());
        }
    })
}

fn row(d: &Dataset) -> Vec<String> {
    let stats = d.statistics.as_ref();
    vec![
        d.id.short(),
        fit(&d.name, 40),
        d.format
            .map(|f| f.as_str().to_string())
            .unwrap_or("-".into()),
        d.status.as_str().into(),
        stats.map(|s| count(s.total_examples)).unwrap_or("-".into()),
        d.total_tokens.map(count).unwrap_or("-".into()),
        bytes(d.file_size),
        d.created_at.format("%Y-%m-%d %H:%M").to_string(),
    ]
}

/// An earlier dataset of this user with byte for byte the same file (the same SHA-256), so
/// adding a file twice by mistake is noticed; the newest such dataset when there are several.
async fn same_file(api: &dyn EngineApi, added: &Dataset) -> Result<Option<Dataset>> {
    let Some(sha) = &added.sha256 else {
        return Ok(None);
    };
    const PAGE: usize = 100;
    let mut offset = 0;
    loop {
        let page = api
            .datasets(
                None,
                None,
                Paging {
                    offset,
                    limit: PAGE,
                },
            )
            .await?;
        let found = page
            .items
            .iter()
            .filter(|d| d.id != added.id && d.sha256.as_ref() == Some(sha))
            .max_by_key(|d| d.created_at);
        if let Some(d) = found {
            return Ok(Some(d.clone()));
        }
        if page.items.len() < PAGE {
            return Ok(None);
        }
        offset += PAGE;
    }
}

fn print_one(d: &Dataset, json: bool) -> Result<()> {
    if json {
        return output::json(d);
    }
    println!("{}  {}", d.id, fit(&d.name, 80));
    if let Some(desc) = &d.description {
        println!("  description   {}", output::prose(desc, 16));
    }
    println!(
        "  status        {}{}",
        d.status.as_str(),
        if d.training_ready {
            " (training ready)"
        } else {
            ""
        }
    );
    println!(
        "  file          {} ({})",
        fit(&d.file_name, 80),
        bytes(d.file_size)
    );
    if let Some(f) = d.format {
        println!("  format        {}", f.as_str());
    }
    if let Some(msg) = &d.error_message {
        println!("  problem       {}", output::prose(msg, 16));
    }
    if let Some(s) = &d.statistics {
        println!(
            "  examples      {} ({} training, {} validation)",
            count(s.total_examples),
            count(s.total_training_pairs),
            count(s.total_validation_pairs)
        );
        println!(
            "  tokens        {}{}  p50 {}  p95 {}  max {} per example",
            count(s.total_tokens),
            if s.tokens_exact { "" } else { " (estimated)" },
            count(s.tokens_p50),
            count(s.tokens_p95),
            count(s.tokens_max)
        );
        println!(
            "  turns         {:.1} per conversation, {:.1} tokens per turn",
            s.avg_turns_per_conversation, s.avg_tokens_per_turn
        );
        println!(
            "  duplicates    {}   over {} tokens: {}",
            count(s.duplicate_examples),
            s.max_seq_length,
            count(s.examples_over_max_seq_length)
        );
        println!(
            "  problems      {}, {}",
            output::counted(s.error_count, "error"),
            output::counted(s.warning_count, "warning")
        );
    }
    if !d.validation_errors.is_empty() {
        println!("  validation (first {}):", d.validation_errors.len());
        for i in d.validation_errors.iter().take(20) {
            let tag = match i.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            println!(
                "    line {:>7}  {tag}: {}",
                i.line,
                output::prose(&i.error, 18)
            );
            if !i.suggestion.is_empty() {
                println!("                 → {}", output::prose(&i.suggestion, 19));
            }
        }
        if d.validation_errors.len() > 20 {
            println!("    … {} more (see --json)", d.validation_errors.len() - 20);
        }
    }
    if !d.sample_data.is_empty() {
        println!("  sample:");
        for (n, ex) in d.sample_data.iter().enumerate() {
            for m in ex {
                println!("    #{} {:>9}: {}", n + 1, m.role, fit(&m.content, 100));
            }
        }
    }
    Ok(())
}
