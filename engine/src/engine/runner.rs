//! Running jobs: the dispatch task takes queued jobs to a backend, the monitor task polls
//! running ones and applies their events. Every step reads its state from the store and writes
//! its result in one transaction (events cursor included), so a crash at any point replays
//! without losing or duplicating anything.

use super::notify::notify;
use super::{Engine, EngineError, Result};
use crate::backend::*;
use crate::domain::*;
use crate::events::{EngineEvent, Progress, ProgressTask};
use crate::ids::*;
use crate::storage::Bucket;
use crate::trainer_env::{self, TrainerEnvError};
use crate::training;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;

/// How a trainer run ended, as learned from its events or its exit.
#[derive(Debug)]
enum Outcome {
    Done(DoneSummary),
    TrainingError { reason: String, detail: String },
    InfraError { reason: String, detail: String },
}

/// A training loss above this many times the first one is reported as exploding.
const EXPLODING_FACTOR: f64 = 4.0;

/// How often a job with no news is written back (for its running cost).
const QUIET_PERSIST_SECS: i64 = 10;

impl Engine {
    pub(crate) fn backend(&self, name: &str) -> Result<Arc<dyn ClusterBackend>> {
        self.inner
            .backends
            .get(name)
            .cloned()
            .ok_or_else(|| EngineError::Invalid(format!("unknown backend `{name}`")))
    }

    /// Names of the configured cluster backends.
    pub fn backend_names(&self) -> Vec<String> {
        self.inner.backends.keys().cloned().collect()
    }

    fn job_dir(&self, id: JobId) -> PathBuf {
        self.inner.paths.jobs_dir().join(id.to_string())
    }

    /// One dispatch cycle: start up to `dispatch_batch` queued jobs whose backoff has passed,
    /// and resume jobs left initializing without a submission by a previous run.
    pub(crate) async fn dispatch_cycle(&self) -> Result<usize> {
        let batch = self.inner.config.engine.dispatch_batch;
        let t = now();
        let mut picked: Vec<TrainingJob> = self
            .inner
            .store
            .jobs_in_status(JobStatus::Queued, usize::MAX)?
            .into_iter()
            .filter(|j| j.next_attempt_at.is_none_or(|at| at <= t))
            .take(batch)
            .collect();
        picked.extend(
            self.inner
                .store
                .jobs_in_status(JobStatus::Initializing, usize::MAX)?
                .into_iter()
                .filter(|j| j.external_job_id.is_none()),
        );
        let mut started = 0;
        for job in picked {
            {
                let mut in_flight = self.inner.in_flight.lock().expect("not poisoned");
                if !in_flight.insert(job.id) {
                    continue;
                }
            }
            started += 1;
            let engine = self.clone();
            tokio::spawn(async move {
                if let Err(e) = engine.start_job(job.id).await {
                    tracing::error!("starting job {}: {e}", job.id);
                }
                engine
                    .inner
                    .in_flight
                    .lock()
                    .expect("not poisoned")
                    .remove(&job.id);
            });
        }
        Ok(started)
    }

    async fn start_job(&self, id: JobId) -> Result<()> {
        {
            let _g = self.inner.job_lock.lock().await;
            let mut job = self.job(id)?;
            let resumable = job.status == JobStatus::Initializing && job.external_job_id.is_none();
            if job.status != JobStatus::Queued && !resumable {
                return Ok(());
            }
            job.status = JobStatus::Initializing;
            job.current_stage = JobStage::Initializing;
            job.next_attempt_at = None;
            job.updated_at = now();
            self.inner.store.put(&job)?;
        }
        let store = self.inner.store.clone();
        let env = {
            let _g = self.inner.env_lock.lock().await;
            trainer_env::ensure(&self.inner.paths, &self.inner.config, &|line: String| {
                let line = crate::text::clean_line(&line);
                store.publish(EngineEvent::Progress(Progress {
                    task: ProgressTask::TrainerEnvironment,
                    done: 0,
                    total: None,
                    message: line.clone(),
                }));
                store.publish(EngineEvent::JobLog { job_id: id, line });
            })
            .await
        };
        let trainer = match env {
            Ok(t) => t,
            Err(e) => {
                let transient = matches!(e, TrainerEnvError::Install(_));
                return self
                    .fail_or_retry(id, transient, e.to_string(), String::new())
                    .await;
            }
        };
        let job = self.job(id)?;
        let spec = match self.build_spec(&job) {
            Ok(s) => s,
            Err(e) => {
                return self
                    .fail_or_retry(id, false, e.to_string(), String::new())
                    .await;
            }
        };
        let backend = self.backend(&job.gpu_config.backend)?;
        match backend.submit(&spec, &trainer).await {
            Ok(ext) => {
                let _g = self.inner.job_lock.lock().await;
                let mut job = self.job(id)?;
                if job.status != JobStatus::Initializing {
                    drop(_g);
                    let _ = backend.cancel(&ext).await;
                    return Ok(());
                }
                job.external_job_id = Some(ext);
                job.event_cursor = 0;
                job.last_event_at = Some(now());
                job.updated_at = now();
                self.inner.store.put(&job)?;
                Ok(())
            }
            Err(e) => {
                let transient = e.is_transient();
                self.fail_or_retry(id, transient, e.to_string(), String::new())
                    .await
            }
        }
    }

    fn build_spec(&self, job: &TrainingJob) -> Result<TrainerSpec> {
        let dataset = self
            .inner
            .store
            .dataset(job.dataset_id)?
            .ok_or_else(|| EngineError::Invalid("the job's dataset no longer exists".into()))?;
        let path = self
            .inner
            .objects
            .local_path(Bucket::Datasets, &dataset.storage_path)
            .ok_or_else(|| {
                EngineError::Invalid("the local backend needs a local dataset copy".into())
            })?;
        let dir = self.job_dir(job.id);
        let mut hp = serde_json::to_value(&job.hyperparameters).expect("serialises");
        let split = if job.hyperparameters.use_validation {
            self.inner.config.validation.holdout_fraction
        } else {
            0.0
        };
        hp["validation_split"] = json!(split);
        if let Some(obj) = hp.as_object_mut() {
            // The spec carries the base model at its top level.
            obj.remove("base_model");
        }
        let resume_from = self
            .inner
            .store
            .checkpoints(job.id)?
            .into_iter()
            .rev()
            .find(|c| std::path::Path::new(&c.storage_path).exists())
            .map(|c| c.storage_path);
        Ok(TrainerSpec {
            version: 1,
            job_id: job.id.to_string(),
            base_model: job.hyperparameters.base_model.clone(),
            dataset: DatasetRef::Path(path.to_string_lossy().into()),
            hyperparameters: hp,
            output: OutputRef::Dir(dir.join("output").to_string_lossy().into()),
            checkpoint_dir: dir.join("checkpoints").to_string_lossy().into(),
            resume_from,
            logging_steps: 1,
            max_steps: None,
        })
    }

    /// Retries infrastructure failures with exponential backoff up to `retry_count`; fails the
    /// job otherwise.
    async fn fail_or_retry(
        &self,
        id: JobId,
        transient: bool,
        reason: String,
        detail: String,
    ) -> Result<()> {
        let _g = self.inner.job_lock.lock().await;
        let mut job = self.job(id)?;
        if job.status.is_terminal() {
            return Ok(());
        }
        if transient && job.retry_count < self.inner.config.engine.retry_count {
            job.retry_count += 1;
            let backoff = 5i64 * (1 << job.retry_count.min(10));
            tracing::warn!(
                "job {id}: {reason}; retry {} in {backoff}s",
                job.retry_count
            );
            job.status = JobStatus::Queued;
            job.current_stage = JobStage::Queued;
            job.external_job_id = None;
            job.event_cursor = 0;
            job.next_attempt_at = Some(now() + chrono::Duration::seconds(backoff));
            job.error_message = Some(format!("retrying after: {reason}"));
            job.updated_at = now();
            self.inner.store.put(&job)?;
            return Ok(());
        }
        let detail = if detail.is_empty() {
            None
        } else {
            Some(detail)
        };
        self.finish_job(&mut job, JobStatus::Failed, Some((reason, detail)), None)
    }

    /// One monitor cycle over every submitted, unfinished job.
    pub(crate) async fn monitor_cycle(&self) -> Result<()> {
        let mut jobs = self
            .inner
            .store
            .jobs_in_status(JobStatus::Initializing, usize::MAX)?;
        jobs.extend(
            self.inner
                .store
                .jobs_in_status(JobStatus::Running, usize::MAX)?,
        );
        for job in jobs.into_iter().filter(|j| j.external_job_id.is_some()) {
            if let Err(e) = self.monitor_job(job.id).await {
                tracing::error!("monitoring job {}: {e}", job.id);
            }
        }
        Ok(())
    }

    async fn monitor_job(&self, id: JobId) -> Result<()> {
        let job = self.job(id)?;
        let Some(ext) = job.external_job_id.clone() else {
            return Ok(());
        };
        let backend = self.backend(&job.gpu_config.backend)?;
        let result = match backend.poll(&ext, job.event_cursor).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("polling job {id}: {e}");
                self.inner.store.publish(EngineEvent::BackendHealth {
                    backend: backend.name().into(),
                    reachable: false,
                });
                return Ok(());
            }
        };
        let guard = self.inner.job_lock.lock().await;
        let mut job = self.job(id)?;
        if job.status.is_terminal() || job.external_job_id.as_deref() != Some(&ext) {
            return Ok(());
        }
        let t = now();
        let mut points = Vec::new();
        let mut checkpoints = Vec::new();
        let mut notes: Vec<(NotificationType, String, String)> = Vec::new();
        let mut logs = Vec::new();
        let mut outcome = None;
        for env in &result.events {
            let at = event_time(env.ts).unwrap_or(t);
            match &env.event {
                TrainerEvent::Stage { stage, message } => {
                    if let Some(m) = message {
                        logs.push(format!("[{stage}] {m}"));
                    }
                    let stage = match stage.as_str() {
                        "initializing" => JobStage::Initializing,
                        "training" => JobStage::Training,
                        "validating" => JobStage::Validating,
                        "saving" => JobStage::Saving,
                        "completed" => JobStage::Saving,
                        _ => job.current_stage,
                    };
                    job.current_stage = stage;
                    if stage != JobStage::Initializing && job.status == JobStatus::Initializing {
                        job.status = JobStatus::Running;
                        job.started_at.get_or_insert(at);
                        notes.push((
                            NotificationType::JobStarted,
                            format!("Job {} started", id.short()),
                            format!(
                                "training {} on {}× {}",
                                job.hyperparameters.base_model,
                                job.gpu_config.gpu_count,
                                job.gpu_config.gpu_type
                            ),
                        ));
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
                    if training_loss.is_some() {
                        m.training_loss = *training_loss;
                    }
                    if validation_loss.is_some() {
                        m.validation_loss = *validation_loss;
                    }
                    if learning_rate.is_some() {
                        m.learning_rate = *learning_rate;
                    }
                    if gradient_norm.is_some() {
                        m.gradient_norm = *gradient_norm;
                    }
                    if throughput.is_some() {
                        m.throughput = *throughput;
                    }
                    if gpu_utilization.is_some() {
                        m.gpu_utilization = *gpu_utilization;
                    }
                    if let Some(loss) = training_loss {
                        if job.first_training_loss.is_none() && loss.is_finite() {
                            job.first_training_loss = Some(*loss);
                        }
                        if let Some(w) = loss_warning(&job, *loss) {
                            job.loss_warned = true;
                            notes.push((
                                NotificationType::TrainingWarning,
                                format!("Job {}: {w}", id.short()),
                                format!("training loss {loss} at step {step}"),
                            ));
                        }
                    }
                    points.push(MetricsPoint {
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
                    });
                }
                TrainerEvent::Checkpoint {
                    step,
                    epoch,
                    loss,
                    path,
                } => {
                    checkpoints.push(Checkpoint {
                        id: checkpoint_id(id, *step),
                        job_id: id,
                        step: *step,
                        epoch: epoch.unwrap_or(0.0),
                        loss: *loss,
                        storage_path: path.clone(),
                        created_at: at,
                    });
                }
                TrainerEvent::Log { level, message } => {
                    let level = level.as_deref().unwrap_or("info");
                    logs.push(format!("{level}: {message}"));
                }
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
                TrainerEvent::Done { summary } => {
                    outcome = Some(Outcome::Done(summary.clone()));
                }
                TrainerEvent::Error {
                    kind,
                    reason,
                    detail,
                } => {
                    let detail = detail.clone().unwrap_or_default();
                    outcome = Some(if kind.as_deref() == Some("infrastructure") {
                        Outcome::InfraError {
                            reason: reason.clone(),
                            detail,
                        }
                    } else {
                        Outcome::TrainingError {
                            reason: reason.clone(),
                            detail,
                        }
                    });
                }
            }
        }
        if outcome.is_none() {
            match &result.state {
                RemoteState::Exited(code) => {
                    outcome = Some(Outcome::InfraError {
                        reason: format!(
                            "the trainer exited without finishing ({})",
                            code.map(|c| format!("exit status {c}"))
                                .unwrap_or_else(|| "killed".into())
                        ),
                        detail: String::new(),
                    });
                }
                RemoteState::Lost => {
                    outcome = Some(Outcome::InfraError {
                        reason: "the backend has no record of the job".into(),
                        detail: String::new(),
                    });
                }
                RemoteState::Pending | RemoteState::Running => {}
            }
        }
        if !result.events.is_empty() {
            job.last_event_at = Some(t);
            job.stall_notified = false;
        }
        self.update_progress(&mut job, t);
        let stall_after = chrono::Duration::seconds(
            self.inner
                .config
                .engine
                .stall_after_secs
                .min(i64::MAX as u64) as i64,
        );
        if !job.stall_notified && job.last_event_at.is_some_and(|last| t - last > stall_after) {
            job.stall_notified = true;
            notes.push((
                NotificationType::JobStalled,
                format!("Job {} seems stalled", id.short()),
                format!(
                    "no event from the trainer for {} minutes",
                    (t - job.last_event_at.unwrap_or(t)).num_minutes()
                ),
            ));
        }
        // The cursor moves past a final event only when the job is finished, in the same
        // write as the finish; until then a crash replays the final events.
        if outcome.is_none() {
            job.event_cursor = result.cursor;
        }
        // A quiet poll only moves the running cost; persist that every few seconds rather than
        // paying a durable write per job per poll (UIs compute the live cost from started_at).
        let quiet = result.events.is_empty() && notes.is_empty() && outcome.is_none();
        if quiet && t - job.updated_at < chrono::Duration::seconds(QUIET_PERSIST_SECS) {
            return Ok(());
        }
        job.updated_at = t;
        let user = job.user_id;
        self.inner.store.write(|w| {
            w.put_metrics(&points)?;
            for c in &checkpoints {
                w.put(c)?;
            }
            for (kind, title, message) in &notes {
                notify(
                    w,
                    user,
                    *kind,
                    title.clone(),
                    message.clone(),
                    Some(Link::Job(id)),
                    json!({"job_id": id}),
                )?;
            }
            w.put(&job)?;
            Ok(())
        })?;
        for line in logs {
            self.inner.store.publish(EngineEvent::JobLog {
                job_id: id,
                line: crate::text::clean_line(&line),
            });
        }
        let Some(outcome) = outcome else {
            return Ok(());
        };
        job.event_cursor = result.cursor;
        let tail = backend
            .log_tail(&ext, 30)
            .await
            .unwrap_or_default()
            .join("\n");
        match outcome {
            Outcome::Done(summary) => match self.collect_artifact(&job, &summary).await {
                Ok(artifact) => {
                    self.finish_job(&mut job, JobStatus::Completed, None, Some(artifact))
                }
                Err(e) => self.finish_job(
                    &mut job,
                    JobStatus::Failed,
                    Some((format!("storing the adapter failed: {e}"), None)),
                    None,
                ),
            },
            Outcome::TrainingError { reason, detail } => self.finish_job(
                &mut job,
                JobStatus::Failed,
                Some((reason, Some(join_detail(&detail, &tail)))),
                None,
            ),
            Outcome::InfraError { reason, detail } => {
                self.inner.store.put(&job)?;
                drop(guard);
                self.fail_or_retry(id, true, reason, join_detail(&detail, &tail))
                    .await
            }
        }
    }

    /// Progress, ETA and running cost from the step counters and the clock.
    fn update_progress(&self, job: &mut TrainingJob, t: Timestamp) {
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

    /// Moves a job to a terminal status, with its final cost, compute cost record,
    /// notification and (on success) artifact, all in one write. Then checks the budget.
    pub(crate) fn finish_job(
        &self,
        job: &mut TrainingJob,
        status: JobStatus,
        error: Option<(String, Option<String>)>,
        artifact: Option<ModelArtifact>,
    ) -> Result<()> {
        let t = now();
        self.update_progress(job, t);
        job.status = status;
        job.completed_at = Some(t);
        job.estimated_completion_at = None;
        let cost = job.started_at.map(|_| job.current_cost).unwrap_or(0.0);
        job.final_cost = Some(cost);
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
        job.artifact_id = artifact.as_ref().map(|a| a.id);
        job.updated_at = t;
        let user = job.user_id;
        let short = job.id.short();
        let (kind, title, message) = match status {
            JobStatus::Completed => (
                NotificationType::JobCompleted,
                format!("Job {short} completed"),
                format!("{} steps, ${cost:.2}", job.current_step),
            ),
            JobStatus::Failed => (
                NotificationType::JobFailed,
                format!("Job {short} failed"),
                job.error_message.clone().unwrap_or_default(),
            ),
            _ => (
                NotificationType::JobCancelled,
                format!("Job {short} cancelled"),
                format!("it ran for ${cost:.2}"),
            ),
        };
        let job_ref = &*job;
        self.inner.store.write(|w| {
            if job_ref.started_at.is_some() {
                let started = job_ref.started_at.unwrap_or(t);
                w.put(&CostRecord {
                    id: CostRecordId::new(),
                    user_id: user,
                    job_id: Some(job_ref.id),
                    cost_type: CostType::Compute,
                    amount: cost,
                    details: CostDetails {
                        gpu_type: Some(job_ref.gpu_config.gpu_type.clone()),
                        gpu_count: Some(job_ref.gpu_config.gpu_count),
                        hours: Some((t - started).num_milliseconds().max(0) as f64 / 3.6e6),
                        gigabytes: None,
                        description: Some(format!("job {short} ({})", status.as_str())),
                    },
                    billing_period: super::costs::billing_period(&t),
                    created_at: t,
                })?;
            }
            notify(
                w,
                user,
                kind,
                title,
                message,
                Some(Link::Job(job_ref.id)),
                json!({"job_id": job_ref.id, "final_cost": cost}),
            )?;
            if let Some(a) = &artifact {
                w.put(a)?;
                notify(
                    w,
                    user,
                    NotificationType::ArtifactReady,
                    format!("Model {} is ready", a.name),
                    format!(
                        "quality score {}/5 ({:?}), {} files",
                        a.quality_metrics.quality_score,
                        a.quality_metrics.convergence,
                        a.files.len()
                    ),
                    Some(Link::Artifact(a.id)),
                    json!({"artifact_id": a.id, "quality_score": a.quality_metrics.quality_score}),
                )?;
            }
            w.put(job_ref)?;
            Ok(())
        })?;
        self.check_budget()?;
        Ok(())
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

fn join_detail(detail: &str, tail: &str) -> String {
    match (detail.trim().is_empty(), tail.trim().is_empty()) {
        (true, true) => String::new(),
        (false, true) => detail.to_string(),
        (true, false) => format!("trainer log:\n{tail}"),
        (false, false) => format!("{detail}\n\ntrainer log:\n{tail}"),
    }
}
