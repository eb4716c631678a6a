//! The job lifecycle as pure functions: a job, what the cluster reported and the time go in;
//! the new job and the effects to carry out come out. No I/O and no locks here, so every
//! transition is table-tested; the runner applies the result in one store transaction.
//!
//! ```text
//! queued → initializing → running → completed | failed | cancelled
//!    ↑__________ retry (infrastructure failure, with backoff) __|
//! ```

use crate::backend::{PollResult, RemoteState, TrainerEvent};
use crate::domain::*;
use crate::ids::*;
use crate::training;

/// A training loss above this many times the first one is reported as exploding.
pub(crate) const EXPLODING_FACTOR: f64 = 4.0;

/// How often a job with no news is written back (for its running cost), in seconds.
pub(crate) const QUIET_PERSIST_SECS: i64 = 10;

/// How a trainer run ended, as learned from its events or its exit.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Outcome {
    Done(crate::backend::DoneSummary),
    TrainingError { reason: String, detail: String },
    InfraError { reason: String, detail: String },
}

/// A checkpoint archive the local trainer wrote, as its event describes it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LocalArchive {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// A notification to raise about the job.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Note {
    pub kind: NotificationType,
    pub title: String,
    pub message: String,
}

/// What one poll's report does to a job.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Observed {
    pub points: Vec<MetricsPoint>,
    pub checkpoints: Vec<Checkpoint>,
    /// A local run's checkpoint archives for the runner to move into the store, with the
    /// checkpoint each belongs to.
    pub archives: Vec<(Checkpoint, LocalArchive)>,
    pub notes: Vec<Note>,
    /// Log lines to publish (live, not stored).
    pub logs: Vec<String>,
    /// Set when the run is over; the runner finishes or retries the job.
    pub outcome: Option<Outcome>,
    /// Nothing happened but time passing: the write may be skipped.
    pub quiet: bool,
    /// The cluster's start time or its note changed the job.
    pub retimed: bool,
}

/// What a job's `error_message` starts with while it carries a note from its cluster (in the
/// queue, unreachable) rather than an error; cleared when the note goes.
pub(crate) const CLUSTER_NOTE: &str = "cluster: ";

/// How a run that ended without its own `done` or `error` event ends: an infrastructure
/// failure (retried) when the trainer died or the cluster lost it; a plain failure when the
/// cluster stopped it or its time ran out (the same run would end the same way).
pub(crate) fn ended_without_report(state: &RemoteState) -> Option<Outcome> {
    let infra = |reason: String| Outcome::InfraError {
        reason,
        detail: String::new(),
    };
    let fail = |reason: &str| Outcome::TrainingError {
        reason: reason.into(),
        detail: String::new(),
    };
    match state {
        RemoteState::Pending | RemoteState::Running => None,
        RemoteState::Succeeded => Some(infra(
            "the trainer ended without reporting `done` (the cluster says it succeeded)".into(),
        )),
        RemoteState::Failed(why) => Some(infra(format!(
            "the trainer exited without finishing ({why})"
        ))),
        RemoteState::Stopped => Some(fail(
            "the job was stopped on the cluster (not by BrightRun)",
        )),
        RemoteState::TimedOut => Some(fail(
            "the cluster's execution timeout ran out before the trainer finished",
        )),
        RemoteState::Lost => Some(infra(
            "the backend has no record of the job (was the cluster rebuilt?)".into(),
        )),
    }
}

/// The most steps a run may report: far beyond any LoRA run, far below the numbers a
/// broken or hostile trainer sends (2⁶⁴−1 would be stored and shown).
pub(crate) const MAX_TOTAL_STEPS: u64 = 10_000_000;

/// Why a metric or checkpoint's step cannot be the run's, if it cannot: over
/// [`MAX_TOTAL_STEPS`], past twice the run's total (a trainer overshoots its plan a little,
/// never that much), or a metric step behind the last one stored (steps only go forward; a
/// resumed attempt's repeat of steps already stored keeps the first).
fn implausible_step(job: &TrainingJob, event: &TrainerEvent) -> Option<String> {
    let (step, total, metric) = match event {
        TrainerEvent::Metric {
            step, total_steps, ..
        } => (*step, *total_steps, true),
        TrainerEvent::Checkpoint { step, .. } => (*step, None, false),
        _ => return None,
    };
    if let Some(total) = total.filter(|t| *t > MAX_TOTAL_STEPS) {
        return Some(format!("{total} total steps, over {MAX_TOTAL_STEPS}"));
    }
    let total = total.filter(|t| *t > 0).unwrap_or(job.total_steps);
    let ceiling = if total == 0 {
        MAX_TOTAL_STEPS
    } else {
        total
            .saturating_mul(2)
            .saturating_add(100)
            .min(MAX_TOTAL_STEPS)
    };
    if step > ceiling {
        return Some(format!("step {step} of {total}"));
    }
    if metric && step < job.current_step {
        return Some(format!("step {step} after step {}", job.current_step));
    }
    None
}

/// A preference step's figures with anything not finite dropped: a trainer's NaN or
/// infinity would otherwise reach charts, averages and the mirror.
fn finite_preference(p: &PreferenceMetrics) -> PreferenceMetrics {
    let finite = |v: Option<f64>| v.filter(|v| v.is_finite());
    PreferenceMetrics {
        rewards_chosen: finite(p.rewards_chosen),
        rewards_rejected: finite(p.rewards_rejected),
        reward_margin: finite(p.reward_margin),
        reward_accuracy: finite(p.reward_accuracy).filter(|a| (0.0..=1.0).contains(a)),
        logps_chosen: finite(p.logps_chosen),
        logps_rejected: finite(p.logps_rejected),
        kl: finite(p.kl),
    }
}

/// The limits a transition checks against (from config).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub stall_after: chrono::Duration,
    pub retry_count: u32,
}

/// Applies a poll's report to `job` at time `t`. The event cursor moves past the report
/// only when the run goes on; a final report is re-read until the finish is committed.
pub(crate) fn observe(
    job: &mut TrainingJob,
    poll: &PollResult,
    t: Timestamp,
    limits: &Limits,
) -> Observed {
    let id = job.id;
    let mut out = Observed::default();
    let (mut after_end, mut implausible) = (0usize, Vec::new());
    for env in &poll.events {
        // The run is over once it says so: whatever follows (a second artifact, say) is
        // not the run's, and must not undo what it reported.
        if out.outcome.is_some() {
            after_end += 1;
            continue;
        }
        if let Some(why) = implausible_step(job, &env.event) {
            implausible.push(why);
            continue;
        }
        let at = event_time(env.ts).unwrap_or(t);
        match &env.event {
            TrainerEvent::Stage { stage, .. } => {
                out.logs.extend(log_line(&env.event));
                let stage = match stage.as_str() {
                    "initializing" => JobStage::Initializing,
                    "training" => JobStage::Training,
                    "validating" => JobStage::Validating,
                    "evaluating" => JobStage::Evaluating,
                    "saving" | "completed" => JobStage::Saving,
                    _ => job.current_stage,
                };
                job.current_stage = stage;
                if stage != JobStage::Initializing && job.status == JobStatus::Initializing {
                    job.status = JobStatus::Running;
                    job.started_at.get_or_insert(at);
                    out.notes.push(Note {
                        kind: NotificationType::JobStarted,
                        title: format!("Job {} started", id.short()),
                        message: format!(
                            "training {} on {}× {}",
                            job.hyperparameters.base_model,
                            job.gpu_config.gpu_count,
                            job.gpu_config.gpu_type
                        ),
                    });
                }
            }
            TrainerEvent::Metric {
                step,
                total_steps,
                epoch,
                training_loss,
                learning_rate,
                gradient_norm,
                throughput,
                gpu_utilization,
                validation_loss,
                preference,
            } => {
                if job.status == JobStatus::Initializing {
                    job.status = JobStatus::Running;
                    job.started_at.get_or_insert(at);
                }
                if let Some(total) = total_steps.filter(|t| *t > 0) {
                    job.total_steps = total;
                }
                job.current_step = job.current_step.max(*step);
                if let Some(e) = epoch {
                    job.current_epoch = (e.ceil() as u32).clamp(1, job.total_epochs.max(1));
                }
                let m = &mut job.current_metrics;
                for (slot, v) in [
                    (&mut m.training_loss, training_loss),
                    (&mut m.validation_loss, validation_loss),
                    (&mut m.learning_rate, learning_rate),
                    (&mut m.gradient_norm, gradient_norm),
                    (&mut m.throughput, throughput),
                    (&mut m.gpu_utilization, gpu_utilization),
                ] {
                    if v.is_some() {
                        *slot = *v;
                    }
                }
                if let Some(loss) = training_loss {
                    if job.first_training_loss.is_none() && loss.is_finite() {
                        job.first_training_loss = Some(*loss);
                    }
                    if let Some(w) = loss_warning(job, *loss) {
                        job.loss_warned = true;
                        out.notes.push(Note {
                            kind: NotificationType::TrainingWarning,
                            title: format!("Job {}: {w}", id.short()),
                            message: format!("training loss {loss} at step {step}"),
                        });
                    }
                }
                out.points.push(MetricsPoint {
                    job_id: id,
                    timestamp: at,
                    epoch: epoch.unwrap_or(0.0),
                    step: *step,
                    training_loss: *training_loss,
                    validation_loss: *validation_loss,
                    learning_rate: *learning_rate,
                    gradient_norm: *gradient_norm,
                    throughput: *throughput,
                    gpu_utilization: *gpu_utilization,
                    preference: preference.as_ref().map(finite_preference),
                });
            }
            TrainerEvent::Checkpoint {
                step,
                epoch,
                loss,
                path,
                object,
                archive,
            } => {
                out.logs.extend(log_line(&env.event));
                let mut c = Checkpoint {
                    id: checkpoint_id(id, *step),
                    job_id: id,
                    step: *step,
                    epoch: epoch.unwrap_or(0.0),
                    loss: *loss,
                    storage_path: path.clone(),
                    size: None,
                    sha256: None,
                    folder: Some(path.clone()),
                    created_at: at,
                };
                let archive = object
                    .as_ref()
                    .and_then(|o| o.archive.clone())
                    .or_else(|| archive.clone());
                match (object, archive) {
                    // A local run's archive: stored once the runner has moved it.
                    (Some(o), Some(path)) => out.archives.push((
                        c.clone(),
                        LocalArchive {
                            path,
                            size: o.size,
                            sha256: o.sha256.clone(),
                        },
                    )),
                    // Uploaded to the slot the engine presigned for this attempt.
                    (Some(o), None) => {
                        if let Ok(key) = super::checkpoints::slot_key(job, job.retry_count, o.index)
                        {
                            c.storage_path = key;
                            c.size = Some(o.size);
                            c.sha256 = Some(o.sha256.clone());
                        }
                    }
                    (None, _) => {}
                }
                out.checkpoints.push(c)
            }
            TrainerEvent::Log { .. } => out.logs.extend(log_line(&env.event)),
            TrainerEvent::Artifact { dir, files } => {
                job.output_dir = Some(dir.clone());
                job.output_files = files
                    .iter()
                    .map(|f| ArtifactFile {
                        path: f.path.clone(),
                        size: f.size,
                        sha256: f.sha256.clone(),
                    })
                    .collect();
            }
            TrainerEvent::Done { summary } => out.outcome = Some(Outcome::Done(summary.clone())),
            TrainerEvent::Error {
                kind,
                reason,
                detail,
            } => {
                let (reason, detail) = (reason.clone(), detail.clone().unwrap_or_default());
                out.outcome = Some(if kind.as_deref() == Some("infrastructure") {
                    Outcome::InfraError { reason, detail }
                } else {
                    Outcome::TrainingError { reason, detail }
                });
            }
        }
    }
    if after_end > 0 {
        out.logs.push(format!(
            "warning: ignored {after_end} trainer event{} after the run's end",
            if after_end == 1 { "" } else { "s" }
        ));
    }
    if let Some(first) = implausible.first() {
        out.logs.push(format!(
            "warning: ignored {} trainer event{} with an impossible step ({first})",
            implausible.len(),
            if implausible.len() == 1 { "" } else { "s" }
        ));
    }
    if out.outcome.is_none() {
        out.outcome = ended_without_report(&poll.state);
    }
    // A remote cluster's own clock is what it bills: its start time, when it gives one.
    // (A start derived from an elapsed time jitters by milliseconds: only a real change counts.)
    if let Some(started) = poll.times.started_at
        && poll.state != RemoteState::Pending
        && job
            .started_at
            .is_none_or(|s| (s - started).num_milliseconds().abs() > 1000)
    {
        job.started_at = Some(started);
        out.retimed = true;
    }
    let note = poll.note.as_ref().map(|n| format!("{CLUSTER_NOTE}{n}"));
    let stale = job
        .error_message
        .as_deref()
        .is_some_and(|m| m.starts_with(CLUSTER_NOTE));
    if let Some(n) = note {
        if job.error_message.as_deref() != Some(n.as_str()) {
            job.error_message = Some(crate::text::clean_line(&n));
            out.retimed = true;
        }
    } else if stale {
        job.error_message = None;
        out.retimed = true;
    }
    if !poll.events.is_empty() {
        job.last_event_at = Some(t);
        job.stall_notified = false;
    }
    update_progress(job, t);
    if !job.stall_notified
        && job
            .last_event_at
            .is_some_and(|last| t - last > limits.stall_after)
    {
        job.stall_notified = true;
        out.notes.push(Note {
            kind: NotificationType::JobStalled,
            title: format!("Job {} seems stalled", id.short()),
            message: format!(
                "no event from the trainer for {} minutes",
                (t - job.last_event_at.unwrap_or(t)).num_minutes()
            ),
        });
    }
    if out.outcome.is_none() {
        job.event_cursor = poll.cursor;
    }
    out.quiet = poll.events.is_empty()
        && !out.retimed
        && out.notes.is_empty()
        && out.outcome.is_none()
        && t - job.updated_at < chrono::Duration::seconds(QUIET_PERSIST_SECS);
    if !out.quiet {
        job.updated_at = t;
    }
    out
}

/// Progress, ETA and running cost from the step counters and the clock.
pub(crate) fn update_progress(job: &mut TrainingJob, t: Timestamp) {
    if job.total_steps > 0 {
        job.progress = (job.current_step as f64 / job.total_steps as f64 * 100.0).min(100.0);
    }
    if let Some(started) = job.started_at {
        job.current_cost = training::running_cost(
            job.gpu_config.price_per_gpu_hour,
            job.gpu_config.gpu_count,
            started,
            t,
        );
        if job.current_step > 0 && job.total_steps > job.current_step {
            let elapsed = (t - started).num_milliseconds().max(0) as f64;
            let per_step = elapsed / job.current_step as f64;
            let left = per_step * (job.total_steps - job.current_step) as f64;
            job.estimated_completion_at = Some(t + chrono::Duration::milliseconds(left as i64));
        }
    }
}

/// What a failure does: another attempt later, or the end.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum AfterFailure {
    /// Queued again; the next attempt is due at this time.
    Retry { attempt: u32, at: Timestamp },
    /// Failed for good.
    Fail,
    /// The job already ended (cancelled meanwhile): nothing to do.
    Ignore,
}

/// Infrastructure failures are retried with exponential backoff (10 s, 20 s, 40 s, …) up to
/// `retry_count` times; training errors are not.
pub(crate) fn after_failure(
    job: &mut TrainingJob,
    transient: bool,
    reason: &str,
    t: Timestamp,
    limits: &Limits,
) -> AfterFailure {
    if job.status.is_terminal() {
        return AfterFailure::Ignore;
    }
    if !(transient && job.retry_count < limits.retry_count) {
        return AfterFailure::Fail;
    }
    job.retry_count += 1;
    let backoff = 5i64 * (1 << job.retry_count.min(10));
    let at = t + chrono::Duration::seconds(backoff);
    job.status = JobStatus::Queued;
    job.current_stage = JobStage::Queued;
    job.external_job_id = None;
    job.event_cursor = 0;
    job.next_attempt_at = Some(at);
    job.error_message = Some(format!("retrying after: {reason}"));
    job.updated_at = t;
    AfterFailure::Retry {
        attempt: job.retry_count,
        at,
    }
}

/// What finishing a job writes besides the job itself.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Finished {
    /// The compute cost record (only for a job that ran).
    pub cost: Option<CostRecord>,
    /// The flat storage charge for keeping the model (`training.storage_cost_per_job`, the
    /// estimate's `storage` line), only for a completed job that saved one.
    pub storage: Option<CostRecord>,
    pub note: Note,
}

/// Moves a job to a terminal status at `t`: final cost (what it ran, plus `storage_per_job`
/// when it completed with a model, as its estimate said), counters, error.
pub(crate) fn finish(
    job: &mut TrainingJob,
    status: JobStatus,
    error: Option<(String, Option<String>)>,
    artifact: Option<ArtifactId>,
    t: Timestamp,
    ended: Option<Timestamp>,
    storage_per_job: f64,
) -> Finished {
    debug_assert!(status.is_terminal());
    // A remote cluster's end time, when it gives one, ends the billed run (never before its
    // start, never after now).
    let t = match (ended, job.started_at) {
        (Some(e), Some(s)) if e >= s && e <= t => e,
        _ => t,
    };
    update_progress(job, t);
    if job
        .error_message
        .as_deref()
        .is_some_and(|m| m.starts_with(CLUSTER_NOTE))
    {
        job.error_message = None;
    }
    job.status = status;
    job.completed_at = Some(t);
    job.estimated_completion_at = None;
    let cost = job.started_at.map(|_| job.current_cost).unwrap_or(0.0);
    let storage = (status == JobStatus::Completed && artifact.is_some())
        .then_some(storage_per_job.max(0.0))
        .filter(|s| *s > 0.0);
    job.final_cost = Some(cost + storage.unwrap_or(0.0));
    if status == JobStatus::Completed {
        job.current_stage = JobStage::Completed;
        job.progress = 100.0;
        job.current_step = job.current_step.max(job.total_steps);
        job.error_message = None;
    }
    if let Some((reason, detail)) = &error {
        job.error_message = Some(crate::text::clean_line(reason));
        job.error_detail = detail.clone();
    }
    job.artifact_id = artifact;
    job.updated_at = t;
    let short = job.id.short();
    let note = match status {
        JobStatus::Completed if job.task.is_evaluation() => Note {
            kind: NotificationType::JobCompleted,
            title: format!("Evaluation {short} completed"),
            message: format!(
                "`brightrun jobs show {short}` shows the answers side by side; ${cost:.2}"
            ),
        },
        JobStatus::Completed if job.task.is_export() => Note {
            kind: NotificationType::JobCompleted,
            title: format!("Export {short} completed"),
            message: format!(
                "checked against base + adapter; `brightrun models show {}` shows it; ${cost:.2}",
                job.artifact_id.map(|a| a.short()).unwrap_or_default()
            ),
        },
        JobStatus::Completed => Note {
            kind: NotificationType::JobCompleted,
            title: format!("Job {short} completed"),
            message: match storage {
                Some(s) => format!(
                    "{} steps, ${:.2} (compute ${cost:.2} + storage ${s:.2})",
                    job.current_step,
                    cost + s
                ),
                None => format!("{} steps, ${cost:.2}", job.current_step),
            },
        },
        JobStatus::Failed => Note {
            kind: NotificationType::JobFailed,
            title: format!("Job {short} failed"),
            message: job.error_message.clone().unwrap_or_default(),
        },
        _ => Note {
            kind: NotificationType::JobCancelled,
            title: format!("Job {short} cancelled"),
            message: format!("it ran for ${cost:.2}"),
        },
    };
    let cost = job.started_at.map(|started| CostRecord {
        id: CostRecordId::new(),
        user_id: job.user_id,
        job_id: Some(job.id),
        cost_type: CostType::Compute,
        amount: cost,
        details: CostDetails {
            gpu_type: Some(job.gpu_config.gpu_type.clone()),
            gpu_count: Some(job.gpu_config.gpu_count),
            hours: Some((t - started).num_milliseconds().max(0) as f64 / 3.6e6),
            gigabytes: None,
            description: Some(format!("job {short} ({})", status.as_str())),
        },
        billing_period: super::costs::billing_period(&t),
        created_at: t,
    });
    let storage = storage.map(|amount| CostRecord {
        id: CostRecordId::new(),
        user_id: job.user_id,
        job_id: Some(job.id),
        cost_type: CostType::Storage,
        amount,
        details: CostDetails {
            description: Some(format!(
                "job {short}: keeping its model (training.storage_cost_per_job)"
            )),
            ..Default::default()
        },
        billing_period: super::costs::billing_period(&t),
        created_at: t,
    });
    Finished {
        cost,
        storage,
        note,
    }
}

/// The job log's line for a trainer event: stages, checkpoints, the trainer's messages and
/// its error. The dashboard's live log pane and `jobs logs` both read these, so they show
/// one log.
pub(crate) fn log_line(event: &TrainerEvent) -> Option<String> {
    match event {
        TrainerEvent::Stage { stage, message } => Some(match message {
            Some(m) => format!("[{stage}] {m}"),
            None => format!("[{stage}]"),
        }),
        TrainerEvent::Checkpoint { step, path, .. } => {
            Some(format!("[checkpoint] step {step}: {path}"))
        }
        TrainerEvent::Log { level, message } => {
            Some(format!("{}: {message}", level.as_deref().unwrap_or("info")))
        }
        TrainerEvent::Error { kind, reason, .. } => Some(format!(
            "error ({}): {reason}",
            kind.as_deref().unwrap_or("training")
        )),
        TrainerEvent::Done { .. } => Some("[done]".into()),
        _ => None,
    }
}

fn loss_warning(job: &TrainingJob, loss: f64) -> Option<&'static str> {
    if job.loss_warned {
        return None;
    }
    if !loss.is_finite() {
        return Some("training loss is not a number");
    }
    match job.first_training_loss {
        Some(first) if first > 0.0 && loss > first * EXPLODING_FACTOR => {
            Some("training loss is exploding")
        }
        _ => None,
    }
}

fn event_time(ts: f64) -> Option<Timestamp> {
    if ts <= 0.0 || !ts.is_finite() {
        return None;
    }
    chrono::DateTime::from_timestamp_millis((ts * 1000.0) as i64)
}

/// A checkpoint's id follows from (job, step), so a replayed event overwrites it.
fn checkpoint_id(job: JobId, step: u64) -> CheckpointId {
    let (hi, lo) = job.0.as_u64_pair();
    CheckpointId(uuid::Uuid::from_u64_pair(hi, lo ^ step.rotate_left(17)))
}

#[cfg(test)]
mod tests;
