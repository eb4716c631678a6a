//! `jobs sweep` (plan, confirm, start) and `sweeps list|show|cancel`.

use super::exit;
use super::jobs::{confirm, request};
use super::output::{self, fit, money};
use crate::cli::{SweepArgs, SweepsCmd};
use anyhow::{Result, bail};
use brightrun_engine::api::{Api, ApiError, EngineApi, ErrorCode};
use brightrun_engine::domain::{Sweep, SweepAxis, SweepPlan, SweepRange, SweepSpec};

/// The spec the flags describe.
pub fn spec(a: &SweepArgs) -> Result<SweepSpec> {
    let grid = a
        .grid
        .iter()
        .map(|g| {
            let (k, v) = g.split_once('=').ok_or_else(|| {
                ApiError::invalid("grid", format!("--grid {g}: expected KEY=V1,V2,…"))
            })?;
            Ok(SweepAxis {
                key: k.trim().into(),
                values: v
                    .split(',')
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .collect(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let ranges = a
        .ranges
        .iter()
        .map(|r| range(r))
        .collect::<Result<Vec<_>>>()?;
    Ok(SweepSpec {
        job: request(&a.run)?,
        grid,
        random: a.random.unwrap_or(0),
        ranges,
        seed: a
            .seed
            .unwrap_or_else(|| u64::from(std::process::id()) ^ now_nanos()),
        max_parallel: a.max_parallel,
        budget: a.budget,
        stop_worse: a.stop_worse.as_deref().map(margin).transpose()?,
        name: a.name.clone(),
    })
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// `KEY=LOW:HIGH[:log]`.
fn range(r: &str) -> Result<SweepRange> {
    let bad = || {
        ApiError::invalid(
            "range",
            format!("--range {r}: expected KEY=LOW:HIGH or KEY=LOW:HIGH:log"),
        )
    };
    let (key, spec) = r.split_once('=').ok_or_else(bad)?;
    let parts: Vec<&str> = spec.split(':').collect();
    let (low, high, log) = match parts.as_slice() {
        [l, h] => (l, h, false),
        [l, h, "log"] => (l, h, true),
        _ => return Err(bad().into()),
    };
    Ok(SweepRange {
        key: key.trim().into(),
        low: low.trim().parse().map_err(|_| bad())?,
        high: high.trim().parse().map_err(|_| bad())?,
        log,
    })
}

/// `10%` or `0.1`.
fn margin(s: &str) -> Result<f64> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => t.parse::<f64>(),
    };
    v.map_err(|_| {
        ApiError::invalid(
            "stop_worse",
            format!("--stop-worse {s}: expected 10% or 0.1"),
        )
        .into()
    })
}

/// Plans, confirms and starts a sweep.
pub async fn sweep(
    api: &dyn EngineApi,
    args: SweepArgs,
    yes: bool,
    over_budget: bool,
    json: bool,
) -> Result<i32> {
    let spec = spec(&args)?;
    let plan = api.plan_sweep(spec.clone()).await?;
    if !json {
        print_plan(&plan);
        if spec.random > 0 {
            println!(
                "  random draws: seed {} (`--seed {}` draws the same)",
                spec.seed, spec.seed
            );
        }
    }
    let mut confirmed_budget = over_budget;
    if plan.exceeds_monthly_budget && !over_budget {
        if yes {
            bail!(ApiError::new(
                ErrorCode::Conflict,
                "this sweep would exceed the monthly budget; pass --over-budget to allow it"
            ));
        }
        confirmed_budget = confirm("This sweep goes over the monthly budget. Start it anyway?")?;
        if !confirmed_budget {
            eprintln!("not started");
            return Ok(exit::FAILED);
        }
    }
    if !yes
        && !confirmed_budget
        && !confirm(&format!(
            "Start these {} runs for about {}?",
            plan.runs.len(),
            money(plan.total_cost)
        ))?
    {
        eprintln!("not started");
        return Ok(exit::FAILED);
    }
    let sweep = api.create_sweep(spec, confirmed_budget).await?;
    if json {
        output::json(&sweep)?;
    } else {
        println!("started sweep {} ({} runs)", sweep.id, sweep.runs.len());
        eprintln!(
            "follow it with `brightrun sweeps show {}` or the dashboard's Jobs tab",
            sweep.id.short()
        );
    }
    Ok(exit::OK)
}

fn print_plan(p: &SweepPlan) {
    println!(
        "Sweep {}: {} runs, {} at a time",
        p.name,
        p.runs.len(),
        p.max_parallel
    );
    let mut header: Vec<String> = vec!["#".into()];
    header.extend(p.keys.iter().map(|k| k.to_uppercase()));
    header.extend(["COST", "HOURS", "FIT"].map(String::from));
    let rows: Vec<Vec<String>> = p
        .runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut row = vec![(i + 1).to_string()];
            row.extend(r.sets.iter().map(|(_, v)| fit(v, 16)));
            row.push(money(r.estimate.estimated_cost));
            row.push(format!("{:.2}", r.estimate.estimated_duration_hours));
            row.push(format!("{:?}", r.estimate.fit.verdict).to_lowercase());
            row
        })
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    output::table(&header, &rows);
    println!(
        "  total: about {} and {:.2} h with {} at a time",
        money(p.total_cost),
        p.total_duration_hours,
        p.max_parallel
    );
    if let Some(b) = p.budget {
        println!("  sweep budget: {}", money(b));
        if p.over_sweep_budget > 0 {
            println!(
                "  note: the budget covers the first {} runs; the last {} will not start",
                p.runs.len() as u32 - p.over_sweep_budget,
                p.over_sweep_budget
            );
        }
    }
    if let Some(m) = p.monthly_budget {
        println!(
            "  month: {} spent of {}; {} after all runs{}",
            money(p.spent_this_month),
            money(m),
            money(p.spent_this_month + p.total_cost),
            if p.exceeds_monthly_budget {
                " — OVER BUDGET (runs stop at it)"
            } else {
                ""
            }
        );
    }
    if p.not_fitting > 0 {
        println!(
            "  warning: {} runs will probably not fit in GPU memory",
            p.not_fitting
        );
    }
}

pub async fn run(api: &dyn EngineApi, cmd: SweepsCmd) -> Result<i32> {
    match cmd {
        SweepsCmd::List { json } => {
            let sweeps = api.list_sweeps().await?;
            if json.json {
                output::json(&sweeps)?;
            } else if sweeps.is_empty() {
                println!("no sweeps yet (`brightrun jobs sweep` starts one)");
            } else {
                let rows: Vec<Vec<String>> = sweeps.iter().map(list_row).collect();
                output::table(&["ID", "NAME", "STATUS", "RUNS", "SPENT", "BEST"], &rows);
            }
        }
        SweepsCmd::Show { id, json } => {
            let s = api.get_sweep(&id).await?;
            if json.json {
                output::json(&s)?;
            } else {
                show(&s);
            }
        }
        SweepsCmd::Cancel { id, json } => {
            let s = api.cancel_sweep(&id).await?;
            if json.json {
                output::json(&s)?;
            } else {
                println!("cancelled sweep {}", s.id);
            }
        }
    }
    Ok(exit::OK)
}

fn list_row(s: &Sweep) -> Vec<String> {
    let started = s.job_ids().count();
    vec![
        s.id.short(),
        fit(&output::clean(&s.name), 32),
        s.status.as_str().into(),
        format!("{started}/{}", s.runs.len()),
        money(s.spent),
        s.best_job_id.map_or("–".into(), |j| j.short()),
    ]
}

fn show(s: &Sweep) {
    println!("sweep {} — {}", s.id, output::clean(&s.name));
    println!(
        "  {} · {} runs, {} at a time · spent {}{}",
        s.status.as_str(),
        s.runs.len(),
        s.spec.max_parallel.max(1),
        money(s.spent),
        s.spec
            .budget
            .map(|b| format!(" of {}", money(b)))
            .unwrap_or_default()
    );
    let rows: Vec<Vec<String>> = s
        .runs
        .iter()
        .map(|r| {
            let mark = if r.job_id.is_some() && r.job_id == s.best_job_id {
                "*"
            } else {
                " "
            };
            vec![
                format!("{mark}{}", r.job_id.map_or("–".into(), |j| j.short())),
                output::clean(&brightrun_engine::wording::sets(&r.sets)),
                money(r.estimated_cost),
                r.skipped
                    .as_deref()
                    .map(|w| fit(&output::clean(w), 60))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    output::table(&[" JOB", "VALUES", "ESTIMATE", "NOTE"], &rows);
    if let (Some(best), Some(by)) = (s.best_job_id, &s.best_by) {
        println!("* best: {} by {}", best.short(), by.replace('_', " "));
    }
    if s.job_ids().count() >= 2 {
        let ids: Vec<String> = s.job_ids().take(6).map(|j| j.short()).collect();
        println!("  compare: brightrun jobs compare {}", ids.join(" "));
    }
}
