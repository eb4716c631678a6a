//! `brightrun estimate` and `brightrun jobs …`

use super::exit;
use super::follow::LogFollower;
use super::output::{self, count, fit, money};
use crate::cli::{JobsCmd, RunArgs};
use crate::client::Client;
use anyhow::{Result, bail};
use brightrun_engine::api::{Api, ApiError, EngineApi, ErrorCode, JobSpec, Paging, RetryOptions};
use brightrun_engine::domain::{JobStatus, TrainingJob};
use brightrun_engine::events::EngineEvent;
use brightrun_engine::training::Estimate;
use brightrun_engine::wording::counted;
use futures::StreamExt;
use std::io::{BufRead, IsTerminal, Write};

pub fn request(run: &RunArgs) -> Result<JobSpec> {
    let mut sets = Vec::new();
    for s in &run.sets {
        let Some((k, v)) = s.split_once('=') else {
            bail!(ApiError::invalid(
                "set",
                format!("--set {s}: expected KEY=VALUE, e.g. --set learning_rate=1e-4")
            ));
        };
        sets.push((k.trim().to_string(), v.trim().to_string()));
    }
    Ok(JobSpec {
        dataset: run.dataset.clone(),
        preset: run.preset.clone(),
        sets,
        gpu_type: run.gpu.clone(),
        gpu_count: run.gpus,
        backend: run.backend.clone(),
        from_model: run.from_model.clone(),
    })
}

pub async fn estimate(api: &dyn EngineApi, run: &RunArgs, json: bool) -> Result<i32> {
    let est = api.estimate(request(run)?).await?;
    if json {
        output::json(&est)?;
    } else {
        print_estimate(&est);
    }
    Ok(exit::OK)
}

/// Hours as a person reads them: a run of seconds on this machine is not "0.0 h".
fn short_duration(hours: f64) -> String {
    if hours >= 1.0 {
        format!("{hours:.1} h")
    } else if hours * 60.0 >= 1.0 {
        format!("{:.0} min", hours * 60.0)
    } else {
        format!("{:.0} s", hours * 3600.0)
    }
}

pub fn print_estimate(e: &Estimate) {
    let d = &e.training_details;
    let hours = e.estimated_duration_hours;
    let duration = short_duration(hours);
    println!(
        "estimate: ${:.2} (compute ${:.2} + storage ${:.2}), about {duration} at ${:.2}/h",
        e.estimated_cost, e.cost_breakdown.compute, e.cost_breakdown.storage, e.hourly_rate
    );
    let epochs = if d.epochs == 1 { "epoch" } else { "epochs" };
    println!(
        "  {}× {}{}   {} steps ({} per epoch × {} {epochs}), {} tokens/s",
        e.gpu_count,
        e.gpu_type,
        if e.local { " (your machine)" } else { "" },
        count(d.total_steps),
        count(d.steps_per_epoch),
        d.epochs,
        count(d.estimated_throughput_tokens_per_sec.round() as u64)
    );
    // Which throughput the figures rest on: the catalog's (scaled to the model), this
    // machine's, or what earlier runs of this setting measured.
    println!("  throughput: {}", e.throughput.note);
    if d.evaluation_hours > 0.0 {
        println!(
            "  evaluation: about {} after training (base model and adapter side by side; [evaluation])",
            short_duration(d.evaluation_hours)
        );
    }
    if e.cost_breakdown.storage > 0.0 {
        println!(
            "  storage: ${:.2} flat per job (keeping the adapter and its checkpoints; training.storage_cost_per_job)",
            e.cost_breakdown.storage
        );
    }
    println!(
        "  memory: {} — needs {:.1} GB of {:.1} GB",
        e.fit.verdict.label(),
        e.fit.required_gb,
        e.fit.available_gb
    );
    for s in &e.fit.suggestions {
        println!("    → {s}");
    }
    if let Some(b) = &e.budget {
        println!(
            "  budget: ${:.2} spent this month; ${:.2} after this run ({:.0}% of ${:.2}){}",
            b.spent_this_month,
            b.after_this_run,
            b.percent_after,
            b.monthly_budget,
            if b.exceeds { " — OVER BUDGET" } else { "" }
        );
    }
    for w in &e.warnings {
        println!("  note: {w}");
    }
}

/// Asks a yes/no question on the terminal; without one, refuses (the caller's `--yes` is the
/// way to confirm from a script).
pub(crate) fn confirm(question: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!(ApiError::invalid(
            "yes",
            format!("{question} — no terminal to ask on; pass --yes to confirm")
        ));
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

pub async fn run(client: &Client, cmd: JobsCmd) -> Result<i32> {
    let api = client.api.as_ref();
    match cmd {
        JobsCmd::Create {
            run,
            yes,
            over_budget,
            json,
        } => {
            let req = request(&run)?;
            let est = api.estimate(req.clone()).await?;
            if !json.json {
                print_estimate(&est);
            }
            if !est.fit.verdict.fits() && !json.json {
                eprintln!("warning: this run will probably not fit in GPU memory");
            }
            let mut confirmed_budget = over_budget;
            if est.needs_budget_confirmation() && !over_budget {
                if yes {
                    bail!(ApiError::new(
                        ErrorCode::Conflict,
                        "this run would exceed the monthly budget; pass --over-budget to allow it"
                    ));
                }
                confirmed_budget =
                    confirm("This run goes over the monthly budget. Create it anyway?")?;
                if !confirmed_budget {
                    eprintln!("not created");
                    return Ok(exit::FAILED);
                }
            }
            if !yes
                && !confirmed_budget
                && !confirm(&format!(
                    "Create this job for about ${:.2}?",
                    est.estimated_cost
                ))?
            {
                eprintln!("not created");
                return Ok(exit::FAILED);
            }
            let job = api.create_job(req, confirmed_budget).await?;
            if json.json {
                output::json(&job)?;
            } else {
                println!("queued job {}", job.id);
                eprintln!("{}", follow_hint(&job.id.short(), client.is_embedded()));
            }
            Ok(exit::OK)
        }
        JobsCmd::List {
            status,
            limit,
            json,
        } => {
            let status = status
                .map(|s| s.parse::<JobStatus>())
                .transpose()
                .map_err(|e| ApiError::invalid("status", e))?;
            let jobs = api.jobs(status, Paging { offset: 0, limit }).await?.items;
            if json.json {
                output::json(&jobs)?;
            } else if jobs.is_empty() {
                eprintln!("no jobs yet: create one with `brightrun jobs create --dataset ID`");
            } else {
                let rows: Vec<Vec<String>> = jobs
                    .iter()
                    .map(|j| {
                        vec![
                            j.id.short(),
                            j.status.as_str().into(),
                            j.current_stage.as_str().into(),
                            format!("{:.0}%", j.progress),
                            format!("{}/{}", count(j.current_step), count(j.total_steps)),
                            fit(&j.hyperparameters.base_model, 32),
                            j.hyperparameters.method.name().as_str().into(),
                            format!("{}×{}", j.gpu_config.gpu_count, j.gpu_config.gpu_type),
                            money(j.final_cost.unwrap_or(j.current_cost)),
                            money(j.estimated_cost),
                            j.created_at.format("%Y-%m-%d %H:%M").to_string(),
                        ]
                    })
                    .collect();
                output::table(
                    &[
                        "ID", "STATUS", "STAGE", "PROGRESS", "STEP", "MODEL", "METHOD", "GPUS",
                        "COST", "ESTIMATE", "CREATED",
                    ],
                    &rows,
                );
            }
            Ok(exit::OK)
        }
        JobsCmd::Show { id, json } => {
            let job = api.job(&id).await?;
            // An evaluation job's result is its comparison (once it completed).
            let comparison = match job.status {
                JobStatus::Completed if job.task.is_evaluation() => {
                    Some(api.job_comparison(&job.id.to_string()).await?)
                }
                _ => None,
            };
            let checkpoints = if !job.task.is_training() {
                Vec::new()
            } else {
                api.job_checkpoints(&job.id.to_string()).await?
            };
            if json.json {
                let mut v = serde_json::to_value(&job)?;
                if job.task.is_evaluation() {
                    v["comparison"] = serde_json::to_value(&comparison)?;
                } else {
                    v["checkpoints"] = serde_json::to_value(&checkpoints)?;
                }
                output::json(&v)?;
            } else {
                print_job(&job);
                if !checkpoints.is_empty() {
                    let steps: Vec<String> = checkpoints
                        .iter()
                        .map(|c| match c.size {
                            Some(n) if c.is_stored() => {
                                format!("{} ({})", c.step, output::bytes(n))
                            }
                            _ => format!("{} (a folder here only)", c.step),
                        })
                        .collect();
                    println!(
                        "  checkpoints  steps {} (`jobs retry --checkpoint STEP`, `models from-checkpoint`)",
                        steps.join(", ")
                    );
                }
                if let Some(c) = &comparison {
                    super::compare::print_comparison(c);
                }
                // Its sweep, when it is a run of one (a sweep list is a handful of records).
                if let Ok(sweeps) = api.list_sweeps().await
                    && let Some(s) = sweeps.iter().find(|s| s.job_ids().any(|j| j == job.id))
                {
                    let run = s.runs.iter().find(|r| r.job_id == Some(job.id));
                    println!(
                        "  sweep        {} ({}, {}){}",
                        s.id.short(),
                        output::clean(&s.name),
                        run.map(|r| brightrun_engine::wording::sets(&r.sets))
                            .unwrap_or_default(),
                        if s.best_job_id == Some(job.id) {
                            " — its best run"
                        } else {
                            ""
                        }
                    );
                }
            }
            Ok(exit::OK)
        }
        JobsCmd::Watch { id, json } => watch(client, &id, json.json).await,
        JobsCmd::Cancel { id, json } => {
            let job = api.cancel_job(&id).await?;
            if json.json {
                output::json(&job)?;
            } else {
                println!(
                    "cancelled job {} (cost {})",
                    job.id.short(),
                    money(job.final_cost.unwrap_or(0.0))
                );
            }
            Ok(exit::OK)
        }
        JobsCmd::Retry {
            id,
            from_scratch,
            checkpoint,
            backend,
            yes,
            json,
        } => {
            let options = RetryOptions {
                from_scratch,
                checkpoint,
                backend,
                dry_run: false,
            };
            retry(api, &id, options, yes, json.json).await
        }
        JobsCmd::Resume {
            id,
            checkpoint,
            backend,
            yes,
            json,
        } => {
            let options = RetryOptions {
                checkpoint: Some(checkpoint),
                backend,
                ..Default::default()
            };
            retry(api, &id, options, yes, json.json).await
        }
        JobsCmd::Sweep {
            sweep,
            yes,
            over_budget,
            json,
        } => super::sweeps::sweep(api, sweep, yes, over_budget, json.json).await,
        JobsCmd::Compare { ids, json } => {
            let c = api.compare_runs(&ids).await?;
            if json.json {
                output::json(&c)?;
            } else {
                super::runs::print_runs(&c);
            }
            Ok(exit::OK)
        }
        JobsCmd::Logs { id, lines, json } => {
            let log = api.job_logs(&id, lines).await?;
            if json.json {
                output::json(&log)?;
            } else {
                for l in log {
                    println!("{l}");
                }
            }
            Ok(exit::OK)
        }
        JobsCmd::Metrics { id, json } => {
            let points = api.metrics(&id, 0, None).await?;
            if json.json {
                output::json(&points)?;
            } else {
                // A preference run's rewards beside the seed's columns.
                let preference = points.iter().any(|p| p.preference.is_some());
                let rows: Vec<Vec<String>> = points
                    .iter()
                    .map(|p| {
                        let f = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or("-".into());
                        let mut row = vec![
                            p.step.to_string(),
                            format!("{:.2}", p.epoch),
                            f(p.training_loss),
                            f(p.validation_loss),
                            p.learning_rate
                                .map(|v| format!("{v:.2e}"))
                                .unwrap_or("-".into()),
                            f(p.gradient_norm),
                            p.throughput
                                .map(|v| format!("{v:.0}"))
                                .unwrap_or("-".into()),
                        ];
                        if preference {
                            let r = p.preference.clone().unwrap_or_default();
                            row.extend([
                                f(r.rewards_chosen),
                                f(r.rewards_rejected),
                                f(r.reward_margin),
                                r.reward_accuracy
                                    .map(|a| format!("{:.0}%", a * 100.0))
                                    .unwrap_or("-".into()),
                            ]);
                        }
                        row
                    })
                    .collect();
                let mut headers = vec![
                    "STEP",
                    "EPOCH",
                    "LOSS",
                    "VAL_LOSS",
                    "LR",
                    "GRAD_NORM",
                    "TOK/S",
                ];
                if preference {
                    headers.extend(["CHOSEN", "REJECTED", "MARGIN", "ACCURACY"]);
                }
                output::table(&headers, &rows);
            }
            Ok(exit::OK)
        }
    }
}

/// `jobs retry` and `jobs resume`: asks first (the cost) unless `yes`, then says where the
/// new job starts.
async fn retry(
    api: &dyn EngineApi,
    id: &str,
    options: RetryOptions,
    yes: bool,
    json: bool,
) -> Result<i32> {
    if !yes {
        // What it would queue: where it starts, where it runs, what the rest costs.
        let plan = RetryOptions {
            dry_run: true,
            ..options.clone()
        };
        let planned = api.retry_job_from(id, plan).await?;
        let q = format!(
            "Retry job {} as a new job: {} on {}× {} ({}), {}, about {}?",
            planned.retry_of.map(|o| o.short()).unwrap_or_default(),
            planned.hyperparameters.base_model,
            planned.gpu_config.gpu_count,
            planned.gpu_config.gpu_type,
            planned.gpu_config.backend,
            starts_at(&planned),
            money(planned.estimated_cost)
        );
        if !confirm(&q)? {
            eprintln!("not retried");
            return Ok(exit::FAILED);
        }
    }
    let job = api.retry_job_from(id, options).await?;
    if json {
        output::json(&job)?;
        return Ok(exit::OK);
    }
    // The old job's id as the engine knows it, not the prefix typed.
    let of = job
        .retry_of
        .map(|o| o.to_string())
        .unwrap_or_else(|| id.to_string());
    println!("queued job {} (retry of {of})", job.id);
    eprintln!(
        "it {} on {}, about {}",
        starts_at(&job),
        job.gpu_config.backend,
        money(job.estimated_cost)
    );
    Ok(exit::OK)
}

/// Where a retried job starts, in words.
fn starts_at(job: &TrainingJob) -> String {
    match job.resumed_from {
        Some(p) => format!(
            "continues from step {} (a checkpoint of job {})",
            p.step,
            p.job_id.short()
        ),
        None => "starts at step 0".to_string(),
    }
}

fn print_job(j: &TrainingJob) {
    println!("{}  {}", j.id, j.status.as_str());
    println!("  stage        {}", j.current_stage.as_str());
    println!(
        "  progress     {:.1}%  step {}/{}  epoch {}/{}",
        j.progress,
        count(j.current_step),
        count(j.total_steps),
        j.current_epoch,
        j.total_epochs
    );
    if let Some(t) = j.task.export() {
        println!(
            "  exports      model {} as {} {}{}{} ({}), named {}",
            t.model.short(),
            t.format.as_str(),
            t.dtype.as_str(),
            t.quantize
                .as_ref()
                .map(|q| format!(" quantized {q}"))
                .unwrap_or_default(),
            if t.ollama { " with a Modelfile" } else { "" },
            j.hyperparameters.base_model,
            t.name
        );
    }
    match j.task.evaluation() {
        None if j.task.is_export() => {}
        Some(t) => println!(
            "  evaluates    {} on {}, answers up to {} tokens",
            counted(t.models.len() as u64, "model"),
            t.prompts.as_ref().map_or_else(
                || "the first one's held-out examples and the probes".to_string(),
                |p| counted(p.len() as u64, "prompt")
            ),
            t.max_new_tokens
        ),
        None => {
            println!(
                "  model        {} (preset {}, rank {}, lr {:e})",
                j.hyperparameters.base_model,
                j.preset_id.as_str(),
                j.hyperparameters.lora_rank,
                j.hyperparameters.learning_rate
            );
            println!("  method       {}", j.hyperparameters.method.describe());
        }
    }
    println!(
        "  gpus         {}× {} on {}",
        j.gpu_config.gpu_count, j.gpu_config.gpu_type, j.gpu_config.backend
    );
    println!(
        "  cost         {} (estimated {})",
        money(j.final_cost.unwrap_or(j.current_cost)),
        money(j.estimated_cost)
    );
    if let Some(l) = j.current_metrics.training_loss {
        println!("  loss         {l:.4}");
    }
    if let Some(eta) = j.estimated_completion_at {
        println!("  eta          {}", eta.format("%Y-%m-%d %H:%M:%S UTC"));
    }
    if let Some(e) = &j.error_message {
        // The whole reason: it says what to do (e.g. a base model not in the offline cache).
        println!("  error        {e}");
    }
    if let Some(d) = &j.error_detail {
        for l in d
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            println!("    | {}", output::prose(l, 6));
        }
    }
    if let Some(p) = j.resumed_from {
        println!(
            "  resumed      from step {} of job {}",
            p.step,
            p.job_id.short()
        );
    }
    if let Some(a) = j.artifact_id {
        println!("  artifact     {a}");
    }
}

/// `jobs watch`: follows a job to its end, then prints it.
async fn watch(client: &Client, id: &str, json: bool) -> Result<i32> {
    let Some(job) = follow(client, id, json).await? else {
        return Ok(exit::USAGE);
    };
    if json {
        output::json(&job)?;
    } else {
        print_job(&job);
    }
    Ok(if job.status == JobStatus::Completed {
        exit::OK
    } else {
        exit::FAILED
    })
}

/// Follows a job until it ends, printing its progress and its log (from before the watch
/// began) on stderr unless `quiet`; `None` when the user stopped watching (Ctrl-C).
/// Embedded, this process runs the engine (and serves its socket meanwhile); attached, the
/// daemon runs it, and when it goes away (a restart) the watch waits for it and resumes from
/// the last seq seen, printing the log lines it missed.
pub(crate) async fn follow(client: &Client, id: &str, quiet: bool) -> Result<Option<TrainingJob>> {
    let json = quiet;
    let api = client.api.as_ref();
    let mut job = api.job(id).await?;
    let id = job.id;
    let key_of = |j: &TrainingJob| (j.status, j.current_stage, j.current_step);
    let mut last_seq = api.hello().await?.last_seq;
    let running = client.run_engine().await;
    let mut log = LogFollower::default();
    let mut last_key = None;
    let mut away = Away::default();
    let outcome: Result<()> = async {
        'outer: loop {
            // Live lines first, then the stored log: a line logged in between comes twice
            // and the follower prints it once.
            let mut live = if json { None } else { api.live().await.ok() };
            let resumed = async {
                let job = api.job(&id.to_string()).await?;
                let changes = api.changes(last_seq).await?;
                let lines = if json {
                    Vec::new()
                } else {
                    api.job_logs(&id.to_string(), WATCH_LOG_LINES).await?
                };
                Ok::<_, ApiError>((job, changes, lines))
            };
            let (fresh, mut changes, lines) = match resumed.await {
                Ok(r) => r,
                Err(e) if e.code == ErrorCode::Unavailable && running.is_none() => {
                    away.wait(&e).await?;
                    continue 'outer;
                }
                Err(e) => return Err(e.into()),
            };
            away.back();
            job = fresh;
            for line in log.catch_up(lines) {
                eprintln!("  {line}");
            }
            loop {
                // One line per step, stage or status change; the running cost alone is not news.
                if !json && last_key != Some(key_of(&job)) {
                    eprintln!("{}", progress_line(&job));
                    last_key = Some(key_of(&job));
                }
                if job.status.is_terminal() {
                    break 'outer;
                }
                tokio::select! {
                    c = changes.next() => match c {
                        Some(Ok(c)) => {
                            last_seq = c.seq;
                            if let EngineEvent::Job(j) = &c.event && j.id == id {
                                job = (**j).clone();
                            }
                        }
                        Some(Err(e)) if e.code == ErrorCode::Unavailable => {
                            away.wait(&e).await?;
                            continue 'outer;
                        }
                        Some(Err(e)) => return Err(e.into()),
                        None => {
                            away.wait(&ApiError::unavailable("the change stream ended")).await?;
                            continue 'outer;
                        }
                    },
                    Some(ev) = async { match live.as_mut() { Some(l) => l.next().await, None => None } } => {
                        if let EngineEvent::JobLog { job_id, line } = ev
                            && job_id == id
                            && let Some(line) = log.live(line)
                        {
                            eprintln!("  {line}");
                        }
                    }
                    _ = tokio::signal::ctrl_c() => {
                        eprintln!("stopped watching; the job goes on {}",
                            if running.is_some() { "when the engine runs again" } else { "in the engine" });
                        return Err(StopWatching.into());
                    }
                }
            }
        }
        Ok(())
    }
    .await;
    if let Some(r) = running {
        r.stop().await;
    }
    match outcome {
        Ok(()) => Ok(Some(job)),
        Err(e) if e.is::<StopWatching>() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Where a new job runs and how to follow it: embedded, nothing runs it until a command
/// holds the engine (`jobs watch` or the dashboard); a daemon runs it now.
fn follow_hint(short: &str, embedded: bool) -> String {
    if embedded {
        format!(
            "it starts when an engine runs: `brightrun jobs watch {short}` runs it and follows it, as does the dashboard"
        )
    } else {
        format!(
            "the engine runs it now; follow it with `brightrun jobs watch {short}` or in the dashboard"
        )
    }
}

/// How much of the stored log a watch prints when it begins or comes back.
const WATCH_LOG_LINES: usize = 200;

/// The engine a watch follows is away (restarting): say so once, then try again every
/// second, as the dashboard does, until it answers or Ctrl-C.
#[derive(Default)]
struct Away {
    since: Option<std::time::Instant>,
}

impl Away {
    async fn wait(&mut self, e: &ApiError) -> Result<()> {
        if self.since.is_none() {
            self.since = Some(std::time::Instant::now());
            eprintln!("lost the engine ({e}); reconnecting… (Ctrl-C to stop watching)");
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => Ok(()),
            _ = tokio::signal::ctrl_c() => {
                eprintln!("stopped watching; the job goes on in the engine");
                Err(StopWatching.into())
            }
        }
    }

    fn back(&mut self) {
        if let Some(since) = self.since.take() {
            eprintln!("reconnected after {:.0} s", since.elapsed().as_secs_f64());
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("stopped watching")]
struct StopWatching;

fn progress_line(j: &TrainingJob) -> String {
    if !j.task.is_training() {
        return format!(
            "{} {} [{}] {}",
            j.id.short(),
            j.status.as_str(),
            j.current_stage.as_str(),
            money(j.final_cost.unwrap_or(j.current_cost))
        );
    }
    let mut s = format!(
        "{} {} [{}] {:>5.1}% step {}/{}",
        j.id.short(),
        j.status.as_str(),
        j.current_stage.as_str(),
        j.progress,
        count(j.current_step),
        count(j.total_steps)
    );
    if let Some(l) = j.current_metrics.training_loss {
        s.push_str(&format!(" loss {l:.4}"));
    }
    if let Some(v) = j.current_metrics.validation_loss {
        s.push_str(&format!(" val {v:.4}"));
    }
    s.push_str(&format!(
        " {}",
        money(j.final_cost.unwrap_or(j.current_cost))
    ));
    s
}

/// What to say after the dashboard closes while jobs are unfinished: they keep going (the
/// trainer is detached; a queued one starts when an engine runs) and how to follow them.
pub fn still_running_lines(jobs: &[TrainingJob]) -> Vec<String> {
    jobs.iter()
        .filter(|j| j.status.is_active())
        .map(|j| {
            let short = j.id.short();
            let what = if j.status == JobStatus::Queued {
                "is queued: it starts when an engine runs"
            } else {
                "keeps running"
            };
            format!("job {short} {what}; follow it with `brightrun jobs watch {short}`")
        })
        .collect()
}

/// Prints [`still_running_lines`] for the user's jobs on stderr (after the dashboard quits).
pub async fn say_what_keeps_running(api: &dyn EngineApi) {
    if let Ok(list) = api.jobs(None, Paging::ALL).await {
        for line in still_running_lines(&list.items) {
            eprintln!("{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brightrun_engine::config::TrainingConfig;
    use brightrun_engine::domain::{GpuConfig, PresetId};
    use brightrun_engine::ids::{DatasetId, UserId};
    use brightrun_engine::training::presets;

    #[test]
    fn quitting_says_which_jobs_keep_running_and_how_to_follow_them() {
        let job = |status| {
            let mut j = TrainingJob::new_queued(
                UserId::new(),
                DatasetId::new(),
                PresetId::Custom,
                presets::resolve("fast", &TrainingConfig::default())
                    .unwrap()
                    .1,
                GpuConfig {
                    gpu_type: "local".into(),
                    gpu_count: 1,
                    price_per_gpu_hour: 0.0,
                    backend: "local".into(),
                },
                10,
                0.5,
                None,
            );
            j.status = status;
            j
        };
        let jobs = [
            job(JobStatus::Running),
            job(JobStatus::Completed),
            job(JobStatus::Queued),
        ];
        let lines = still_running_lines(&jobs);
        assert_eq!(lines.len(), 2);
        let s = jobs[0].id.short();
        assert_eq!(
            lines[0],
            format!("job {s} keeps running; follow it with `brightrun jobs watch {s}`")
        );
        assert!(lines[1].contains("is queued: it starts when an engine runs"));
    }
}
