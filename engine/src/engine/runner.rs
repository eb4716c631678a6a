//! Running jobs: the dispatch task takes queued jobs to a backend, the monitor task polls
//! running ones (concurrently: one slow cluster does not hold up the others) and applies their
//! reports through the pure transitions of [`super::lifecycle`]. No lock is held across
//! network or storage I/O: each change is a read-modify-write inside one store transaction
//! (redb serialises them), which re-reads the job, so a cancel that lands while an artifact
//! uploads wins, and a crash at any point replays without losing or duplicating anything.

use super::lifecycle::{self, AfterFailure, Limits, Note, Outcome};
use super::notify::notify;
use super::{Engine, EngineError, Result};
use crate::backend::*;
use crate::domain::*;
use crate::events::EngineEvent;
use crate::ids::*;
use crate::storage::Bucket;
use crate::store::{StoreError, Writer};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;

/// Jobs polled at once by one monitor cycle.
pub(crate) const POLL_CONCURRENCY: usize = 64;

/// Raises a lifecycle note about a job inside a transaction.
fn raise(w: &mut Writer<'_>, job: &TrainingJob, note: &Note) -> Result<(), StoreError> {
    notify(
        w,
        job.user_id,
        note.kind,
        note.title.clone(),
        note.message.clone(),
        Some(Link::Job(job.id)),
        json!({"job_id": job.id}),
    )
    .map(|_| ())
}

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
        let picked = self
            .on_store(move |e| {
                let store = &e.inner.store;
                let mut picked: Vec<TrainingJob> = store
                    .jobs_in_status(JobStatus::Queued, usize::MAX)?
                    .into_iter()
                    .filter(|j| j.next_attempt_at.is_none_or(|at| at <= t))
                    .take(batch)
                    .collect();
                picked.extend(
                    store
                        .jobs_in_status(JobStatus::Initializing, usize::MAX)?
                        .into_iter()
                        .filter(|j| j.external_job_id.is_none()),
                );
                Ok(picked)
            })
            .await?;
        let mut started = 0;
        for job in picked {
            let Some(claim) = Claim::take(self, |i| &i.in_flight, job.id) else {
                continue;
            };
            started += 1;
            let engine = self.clone();
            self.inner.job_tasks.spawn(async move {
                let _claim = claim;
                if let Err(e) = engine.start_job(job.id).await {
                    tracing::error!("starting job {}: {e}", job.id);
                }
            });
        }
        Ok(started)
    }

    pub(crate) fn limits(&self) -> Limits {
        let e = &self.inner.config.engine;
        Limits {
            stall_after: chrono::Duration::seconds(e.stall_after_secs.min(i64::MAX as u64) as i64),
            retry_count: e.retry_count,
        }
    }

    /// Reads a job inside a transaction (the one place job changes are decided).
    fn job_in(w: &Writer<'_>, id: JobId) -> Result<TrainingJob, StoreError> {
        w.get::<TrainingJob>(&id.bytes())?
            .ok_or_else(|| StoreError::Decode {
                table: "training_jobs".into(),
                message: format!("job {id} vanished"),
            })
    }

    async fn start_job(&self, id: JobId) -> Result<()> {
        let claimed = self
            .on_store(move |e| {
                Ok(e.inner.store.write(|w| {
                    let mut job = Self::job_in(w, id)?;
                    let resumable =
                        job.status == JobStatus::Initializing && job.external_job_id.is_none();
                    if job.status != JobStatus::Queued && !resumable {
                        return Ok(None);
                    }
                    job.status = JobStatus::Initializing;
                    job.current_stage = JobStage::Initializing;
                    job.next_attempt_at = None;
                    job.updated_at = now();
                    w.put(&job)?;
                    Ok(Some(job))
                })?)
            })
            .await?;
        let Some(job) = claimed else {
            return Ok(());
        };
        let backend = match self.backend(&job.gpu_config.backend) {
            Ok(b) => b,
            // A backend that is gone will not come back by waiting: fail at once.
            Err(e) => {
                return self
                    .fail_or_retry(id, false, e.to_string(), String::new())
                    .await;
            }
        };
        let access = self.data_access(&job.gpu_config.backend);
        if access == DataAccess::Urls
            && let Err(e) = self.check_url_store(&job.gpu_config.backend)
        {
            return self
                .fail_or_retry(id, false, e.to_string(), String::new())
                .await;
        }
        let inputs = match access {
            DataAccess::Paths if job.task.uses_dataset() => self
                .local_dataset_copy(&job)
                .await
                .map(Some)
                .map(Inputs::Paths),
            DataAccess::Paths => Ok(Inputs::Paths(None)),
            DataAccess::Urls => self.presigned_inputs(&job).await,
        };
        // An evaluation job's models, or the model a run starts from, where its trainer
        // finds them.
        let inputs = match inputs {
            Ok(i) => match self.compare_spec(&job).await {
                Ok(c) => match self.export_spec(&job).await {
                    Ok(x) => self
                        .init_adapter_spec(&job)
                        .await
                        .map(|init| (i, (c, x), init)),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        // Where the run continues from, and where its checkpoints go.
        let inputs = match inputs {
            Ok((i, c, init)) => self
                .continuation(&job, access)
                .await
                .map(|(resume, upload)| (i, c, init, resume, upload)),
            Err(e) => Err(e),
        };
        let spec = match inputs {
            Ok((inputs, (compare, export), init, resume, upload)) => {
                let for_spec = job.clone();
                let steps = self.inner.config.training.checkpoint_steps;
                self.on_store(move |e| {
                    let mut spec = e.build_spec(&for_spec, inputs, compare)?;
                    spec.export = export;
                    spec.init_adapter = init;
                    spec.resume_from = resume;
                    spec.checkpoint_upload = upload;
                    spec.checkpoint_steps = (steps > 0).then_some(steps);
                    Ok(spec)
                })
                .await
            }
            Err(e) => Err(e),
        };
        let spec = match spec {
            Ok(s) => s,
            Err(e) => {
                let transient = matches!(&e, EngineError::Storage(s) if s.is_transient());
                return self
                    .fail_or_retry(id, transient, e.to_string(), String::new())
                    .await;
            }
        };
        let submission = Submission {
            spec: &spec,
            gpu_type: &job.gpu_config.gpu_type,
            gpu_count: job.gpu_config.gpu_count,
            timeout: Some(run_timeout(&job)),
            attempt: job.retry_count,
        };
        match backend.submit(&submission).await {
            Ok(ext) => {
                let submitted = ext.clone();
                let recorded = self
                    .on_store(move |e| {
                        Ok(e.inner.store.write(|w| {
                            let mut job = Self::job_in(w, id)?;
                            if job.status != JobStatus::Initializing {
                                return Ok(false);
                            }
                            job.external_job_id = Some(submitted);
                            job.event_cursor = 0;
                            job.last_event_at = Some(now());
                            job.updated_at = now();
                            w.put(&job)?;
                            Ok(true)
                        })?)
                    })
                    .await?;
                if !recorded {
                    // Cancelled while it was being submitted.
                    let _ = backend.cancel(&ext).await;
                }
                Ok(())
            }
            Err(e) => {
                let transient = e.is_transient();
                self.fail_or_retry(id, transient, e.to_string(), String::new())
                    .await
            }
        }
    }

    /// How the trainer of backend `name` reaches data: the backend's own way, or paths when
    /// the entry says the cluster shares this machine's filesystem.
    pub(crate) fn data_access(&self, name: &str) -> DataAccess {
        let shared = self
            .inner
            .config
            .backends
            .get(name)
            .and_then(|b| b.shared_filesystem)
            .unwrap_or(false);
        match self.inner.backends.get(name) {
            Some(_) if shared => DataAccess::Paths,
            Some(b) => b.data_access(),
            None => DataAccess::Paths,
        }
    }

    /// Whether the job's adapter arrives through presigned PUT URLs (a remote trainer).
    pub(crate) fn uploads_by_url(&self, job: &TrainingJob) -> bool {
        self.data_access(&job.gpu_config.backend) == DataAccess::Urls
    }

    /// A backend that needs URLs needs a store that makes them: refused up front with the
    /// local folder store.
    pub(crate) fn check_url_store(&self, backend: &str) -> Result<()> {
        if self.inner.objects.kind() == "local" {
            return Err(EngineError::Invalid(format!(
                "backend `{backend}` runs the trainer on another machine, which reads the dataset and writes the adapter through presigned URLs; the local folder store has none. Configure S3 storage ([storage] backend = \"s3\", see `brightrun storage check`), or set [backends.{backend}] shared_filesystem = true if the cluster sees this machine's data folder at the same path"
            )));
        }
        Ok(())
    }

    /// The presigned GET URL of the job's dataset (when it reads one) and PUT URLs for every
    /// adapter file (an evaluation job's: its comparison), valid for the whole run (the
    /// adapter is written at its end).
    async fn presigned_inputs(&self, job: &TrainingJob) -> Result<Inputs> {
        let ttl = url_ttl(job);
        let get = if job.task.uses_dataset() {
            let dataset = self.dataset_of(job).await?;
            let url = self
                .inner
                .objects
                .presign_get(Bucket::Datasets, &dataset.storage_path, ttl)
                .await?
                .ok_or_else(|| EngineError::Invalid("the object store makes no URLs".into()))?;
            Some(url)
        } else {
            None
        };
        if job.task.is_evaluation() {
            return Ok(Inputs::Urls {
                dataset: get,
                puts: self.comparison_put(job, ttl).await?,
            });
        }
        if job.task.is_export() {
            return Ok(Inputs::Urls {
                dataset: get,
                puts: self.export_puts(job, ttl).await?,
            });
        }
        let artifact = super::artifacts::remote_artifact_id(job);
        let mut puts = std::collections::BTreeMap::new();
        for f in super::artifacts::ADAPTER_FILES {
            let key =
                crate::storage::object_path(&[&job.user_id.to_string(), &artifact.to_string(), f])?;
            let url = self.model_put_url(&key, ttl).await?;
            puts.insert(f.to_string(), url);
        }
        Ok(Inputs::Urls { dataset: get, puts })
    }

    /// A presigned PUT URL for `key` in the models bucket, for a remote trainer's upload.
    pub(crate) async fn model_put_url(
        &self,
        key: &str,
        ttl: std::time::Duration,
    ) -> Result<String> {
        self.inner
            .objects
            .presign_put(Bucket::Models, key, ttl)
            .await?
            .ok_or_else(|| EngineError::Invalid("the object store makes no URLs".into()))
    }

    /// The job's dataset record, read off the async workers.
    async fn dataset_of(&self, job: &TrainingJob) -> Result<crate::domain::Dataset> {
        let id = job.dataset_id;
        self.on_store(move |e| {
            e.inner
                .store
                .dataset(id)?
                .ok_or_else(|| EngineError::Invalid("the job's dataset no longer exists".into()))
        })
        .await
    }

    /// Where the local trainer reads the job's dataset: in place in a local store, else a copy
    /// downloaded (ranged, resumable, sha256 checked) into the job's folder.
    async fn local_dataset_copy(&self, job: &TrainingJob) -> Result<std::path::PathBuf> {
        let dataset = self.dataset_of(job).await?;
        if let Some(p) = self
            .inner
            .objects
            .local_path(Bucket::Datasets, &dataset.storage_path)
        {
            return Ok(p);
        }
        let dir = self.job_dir(job.id).join("dataset");
        crate::private::create_dir_all_async(&dir)
            .await
            .map_err(|source| EngineError::Io {
                action: "creating",
                path: dir.clone(),
                source,
            })?;
        // Only the last component of the recorded name, so it cannot point out of the folder.
        let name = std::path::Path::new(&dataset.file_name)
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| "dataset.jsonl".into());
        let dest = dir.join(name);
        let got = self
            .inner
            .objects
            .get_to_file(Bucket::Datasets, &dataset.storage_path, &dest, &|_, _| {})
            .await?;
        if let Some(want) = &dataset.sha256
            && *want != got.sha256
        {
            let _ = std::fs::remove_file(&dest);
            return Err(EngineError::Invalid(format!(
                "the stored dataset {}/{} does not match its recorded sha256",
                dataset.storage_bucket, dataset.storage_path
            )));
        }
        Ok(dest)
    }

    fn build_spec(
        &self,
        job: &TrainingJob,
        inputs: Inputs,
        compare: Option<crate::backend::CompareSpec>,
    ) -> Result<TrainerSpec> {
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
        let (dataset, output, checkpoint_dir) = match inputs {
            // An evaluation of the user's prompts reads no dataset.
            Inputs::Paths(path) => (
                path.map(|p| DatasetRef::Path(p.to_string_lossy().into_owned())),
                OutputRef::Dir(dir.join("output").to_string_lossy().into()),
                dir.join("checkpoints").to_string_lossy().into(),
            ),
            // A remote worker's folder, stable per job; the checkpoints it writes there are
            // stored through presigned URLs (see `super::checkpoints`).
            Inputs::Urls { dataset, puts } => (
                dataset.map(DatasetRef::Url),
                OutputRef::PresignedPut(puts),
                format!("/tmp/brightrun-checkpoints/{}", job.id),
            ),
        };
        Ok(TrainerSpec {
            version: 1,
            job_id: job.id.to_string(),
            base_model: job.hyperparameters.base_model.clone(),
            dataset,
            hyperparameters: hp,
            output,
            checkpoint_dir,
            resume_from: None,
            checkpoint_steps: None,
            checkpoint_upload: None,
            logging_steps: 1,
            max_steps: None,
            efficiency: Efficiency {
                settings: self.inner.config.training.efficiency.clone(),
                gpu_count: job.gpu_config.gpu_count.max(1),
            },
            evaluation: match job.task.evaluation() {
                // An evaluation job answers at its own length, whatever `enabled` says.
                Some(task) => Some(EvaluationSpec {
                    max_new_tokens: task.max_new_tokens,
                    ..self.evaluation_settings()?
                }),
                None => self.evaluation_spec()?,
            },
            compare,
            init_adapter: None,
            export: None,
        })
    }

    /// Retries infrastructure failures with exponential backoff up to `retry_count`; fails the
    /// job otherwise (see [`lifecycle::after_failure`]).
    async fn fail_or_retry(
        &self,
        id: JobId,
        transient: bool,
        reason: String,
        detail: String,
    ) -> Result<()> {
        self.fail_or_retry_at(id, transient, reason, detail, None)
            .await
    }

    /// [`Engine::fail_or_retry`] with the run's own end time, for the cost of a final failure.
    async fn fail_or_retry_at(
        &self,
        id: JobId,
        transient: bool,
        reason: String,
        detail: String,
        ended: Option<Timestamp>,
    ) -> Result<()> {
        self.on_store(move |e| e.fail_or_retry_now(id, transient, reason, detail, ended))
            .await
    }

    /// [`Engine::fail_or_retry_at`]'s store work (it commits: off the async workers).
    fn fail_or_retry_now(
        &self,
        id: JobId,
        transient: bool,
        reason: String,
        detail: String,
        ended: Option<Timestamp>,
    ) -> Result<()> {
        let limits = self.limits();
        let t = now();
        let decision = self.inner.store.write(|w| {
            let mut job = Self::job_in(w, id)?;
            let d = lifecycle::after_failure(&mut job, transient, &reason, t, &limits);
            if let AfterFailure::Retry { attempt, at } = d {
                w.put(&job)?;
                // A retry is news too: what went wrong (a full file system, named) may need
                // the person before the next attempt fails the same way.
                notify(
                    w,
                    job.user_id,
                    NotificationType::TrainingWarning,
                    format!("Job {} will be retried", job.id.short()),
                    format!(
                        "attempt {} of {} from {}: {reason}",
                        attempt + 1,
                        limits.retry_count + 1,
                        at.format("%H:%M:%S")
                    ),
                    Some(Link::Job(job.id)),
                    json!({"job_id": job.id, "retry": attempt}),
                )?;
            }
            Ok(d)
        })?;
        match decision {
            AfterFailure::Retry { attempt, at } => {
                tracing::warn!("job {id}: {reason}; retry {attempt} at {at}");
                Ok(())
            }
            AfterFailure::Ignore => Ok(()),
            AfterFailure::Fail => {
                let detail = (!detail.is_empty()).then_some(detail);
                self.finish_job_at(
                    id,
                    JobStatus::Failed,
                    Some((reason, detail)),
                    None,
                    |_| {},
                    ended,
                )
                .map(|_| ())
            }
        }
    }

    /// One monitor cycle: every submitted, unfinished job not already being polled gets a
    /// poll of its own task, so a slow cluster holds up only its own jobs (at most
    /// [`POLL_CONCURRENCY`] polls run at once).
    pub(crate) async fn monitor_cycle(&self) -> Result<()> {
        let jobs = self
            .on_store(|e| {
                let store = &e.inner.store;
                let mut jobs = store.jobs_in_status(JobStatus::Initializing, usize::MAX)?;
                jobs.extend(store.jobs_in_status(JobStatus::Running, usize::MAX)?);
                Ok(jobs)
            })
            .await?;
        for job in jobs.into_iter().filter(|j| j.external_job_id.is_some()) {
            let Some(claim) = Claim::take(self, |i| &i.polling, job.id) else {
                continue;
            };
            let engine = self.clone();
            self.inner.job_tasks.spawn(async move {
                let _claim = claim;
                let id = job.id;
                let permit = engine.inner.poll_slots.clone().acquire_owned().await;
                if let Err(e) = engine.monitor_job(job).await {
                    tracing::error!("monitoring job {id}: {e}");
                    engine.say_unrecorded(id, &e);
                }
                drop(permit);
            });
        }
        Ok(())
    }

    async fn monitor_job(&self, job: TrainingJob) -> Result<()> {
        let id = job.id;
        let Some(ext) = job.external_job_id.clone() else {
            return Ok(());
        };
        let backend = match self.backend(&job.gpu_config.backend) {
            Ok(b) => b,
            Err(e) => {
                let why = format!("{e}; it is no longer configured");
                return self
                    .on_store(move |e| {
                        e.finish_job(id, JobStatus::Failed, Some((why, None)), None, |_| {})
                            .map(|_| ())
                    })
                    .await;
            }
        };
        let result = match backend.poll(&ext, job.event_cursor).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("polling job {id}: {e}");
                self.inner.store.publish(EngineEvent::BackendHealth {
                    backend: job.gpu_config.backend.clone(),
                    reachable: false,
                });
                // The job keeps running there; it says so (once), and the next answer clears
                // it and catches up on every event from the stored cursor.
                let name = job.gpu_config.backend.clone();
                return self
                    .on_store(move |engine| engine.note_unreachable(id, &name, &e))
                    .await;
            }
        };
        self.mark_reachable(&job.gpu_config.backend);
        let t = now();
        let limits = self.limits();
        // A quiet poll only moves the running cost: skip the durable write (UIs compute the
        // live cost from started_at) unless it is time to persist it.
        {
            let mut probe = job.clone();
            if lifecycle::observe(&mut probe, &result, t, &limits).quiet {
                return Ok(());
            }
        }
        let (cursor, ended) = (result.cursor, result.times.ended_at);
        let polled = ext.clone();
        let applied = self
            .on_store(move |e| {
                Ok(e.inner.store.write(|w| {
                    let mut job = Self::job_in(w, id)?;
                    if job.status.is_terminal() || job.external_job_id.as_deref() != Some(&polled) {
                        return Ok(None);
                    }
                    let seen = lifecycle::observe(&mut job, &result, t, &limits);
                    w.put_metrics(&seen.points)?;
                    for c in &seen.checkpoints {
                        w.put(c)?;
                    }
                    for n in &seen.notes {
                        raise(w, &job, n)?;
                    }
                    w.put(&job)?;
                    Ok(Some((job, seen)))
                })?)
            })
            .await?;
        let Some((job, seen)) = applied else {
            return Ok(());
        };
        // At the end too: an archive an earlier engine left unstored is stored before the
        // run's checkpoints are final.
        if !seen.archives.is_empty() || seen.outcome.is_some() {
            self.store_archives(&job, seen.archives.clone()).await?;
        }
        if seen.archives.is_empty() && seen.checkpoints.iter().any(|c| c.is_stored()) {
            self.retain_checkpoints(id).await?;
        }
        for line in &seen.logs {
            self.inner.store.publish(EngineEvent::JobLog {
                job_id: id,
                line: crate::text::clean_line(line),
            });
        }
        let Some(outcome) = seen.outcome else {
            return Ok(());
        };
        let tail = backend
            .log_tail(&ext, 30)
            .await
            .unwrap_or_default()
            .join("\n");
        let moved = move |j: &mut TrainingJob| j.event_cursor = cursor;
        match outcome {
            Outcome::Done(_) if job.task.is_evaluation() => {
                let collected = self.collect_comparison(&job).await;
                self.on_store(move |e| {
                    let error = match collected.and_then(|c| e.keep_comparison(&job, &c)) {
                        Ok(()) => None,
                        Err(err) => Some((
                            format!("reading the evaluation's comparison failed: {err}"),
                            None,
                        )),
                    };
                    let status = match error {
                        None => JobStatus::Completed,
                        Some(_) => JobStatus::Failed,
                    };
                    e.finish_job_at(id, status, error, None, moved, ended)
                        .map(|_| ())
                })
                .await
            }
            Outcome::Done(_) if job.task.is_export() => {
                let collected = self.collect_export(&job).await;
                // Once stored, the export's weights are not kept twice: the local trainer's
                // copy in the job's folder goes (a merged 70B model is 140 GB).
                if collected.is_ok()
                    && !self.uploads_by_url(&job)
                    && let Ok(dir) = self.output_root(&job)
                {
                    let _ = tokio::fs::remove_dir_all(dir).await;
                }
                self.on_store(move |e| {
                    let (status, error, artifact) = match collected {
                        Ok(a) => (JobStatus::Completed, None, Some(a)),
                        Err(err) => (
                            JobStatus::Failed,
                            Some((format!("storing the export failed: {err}"), None)),
                            None,
                        ),
                    };
                    e.finish_job_at(id, status, error, artifact, moved, ended)
                        .map(|_| ())
                })
                .await
            }
            Outcome::Done(summary) => {
                let collected = self.collect_artifact(&job, &summary).await;
                self.on_store(move |e| match collected {
                    Ok(artifact) => {
                        let done = e.finish_job_at(
                            id,
                            JobStatus::Completed,
                            None,
                            Some(artifact),
                            moved,
                            ended,
                        )?;
                        // Only the finish that committed counts the run (a replay finds it
                        // done).
                        if let Some(job) = done {
                            e.calibrate_from(&job, &summary);
                        }
                        Ok(())
                    }
                    Err(err) => e
                        .finish_job_at(
                            id,
                            JobStatus::Failed,
                            Some((format!("storing the adapter failed: {err}"), None)),
                            None,
                            moved,
                            ended,
                        )
                        .map(|_| ()),
                })
                .await
            }
            Outcome::TrainingError { reason, detail } => {
                let detail = join_detail(&detail, &tail);
                self.on_store(move |e| {
                    e.finish_job_at(
                        id,
                        JobStatus::Failed,
                        Some((reason, Some(detail))),
                        None,
                        moved,
                        ended,
                    )
                    .map(|_| ())
                })
                .await
            }
            Outcome::InfraError { reason, detail } => {
                self.fail_or_retry_at(id, true, reason, join_detail(&detail, &tail), ended)
                    .await
            }
        }
    }

    /// A poll whose news cannot be committed (the store's file system is full) leaves the
    /// job `running` in the store; those watching it are told why, at most every 30 s, on the
    /// live feed (which needs no write). The next poll after space comes back commits it, with
    /// the run's own end time for its cost.
    fn say_unrecorded(&self, id: JobId, e: &EngineError) {
        if !matches!(e, EngineError::Store(StoreError::Full { .. })) {
            return;
        }
        let due = {
            let mut said = self.inner.unrecorded_said.lock().expect("not poisoned");
            let now = std::time::Instant::now();
            match said.get(&id) {
                Some(at) if now.duration_since(*at) < std::time::Duration::from_secs(30) => false,
                _ => {
                    said.insert(id, now);
                    true
                }
            }
        };
        if due {
            self.inner.store.publish(EngineEvent::JobLog {
                job_id: id,
                line: crate::text::clean_line(&format!(
                    "engine: this job's news cannot be recorded: {e}; it is tried again at every poll"
                )),
            });
        }
    }

    /// A poll answered: a backend last seen unreachable is reachable again (the status bar
    /// need not wait for the next health check).
    fn mark_reachable(&self, backend: &str) {
        let mut health = self.inner.backend_health.lock().expect("not poisoned");
        let was_down = health.get(backend).is_some_and(|h| !h.reachable);
        if was_down {
            health.insert(
                backend.to_string(),
                crate::backend::BackendHealth::ok("answered a poll"),
            );
            drop(health);
            self.inner.store.publish(EngineEvent::BackendHealth {
                backend: backend.to_string(),
                reachable: true,
            });
        }
    }

    /// Says on a running job that its cluster does not answer (written once per outage).
    fn note_unreachable(&self, id: JobId, backend: &str, e: &BackendError) -> Result<()> {
        self.inner
            .backend_health
            .lock()
            .expect("not poisoned")
            .insert(
                backend.to_string(),
                crate::backend::BackendHealth::failed(e),
            );
        let note = format!(
            "{}backend `{backend}` does not answer ({}); the job keeps running there and catches up when it answers",
            lifecycle::CLUSTER_NOTE,
            e.code()
        );
        self.inner.store.write(|w| {
            let mut job = Self::job_in(w, id)?;
            if job.status.is_terminal() || job.error_message.as_deref() == Some(note.as_str()) {
                return Ok(());
            }
            job.error_message = Some(note.clone());
            job.updated_at = now();
            w.put(&job)
        })?;
        Ok(())
    }

    /// Moves a job to a terminal status, with its final cost, compute cost record,
    /// notification and (on success) artifact, all in one transaction that re-reads the job:
    /// a job that ended meanwhile (cancelled while its artifact was stored) is left as it is,
    /// and `None` is returned. `prepare` adjusts the job first (the event cursor). Then checks
    /// the budget.
    pub(crate) fn finish_job(
        &self,
        id: JobId,
        status: JobStatus,
        error: Option<(String, Option<String>)>,
        artifact: Option<ModelArtifact>,
        prepare: impl FnOnce(&mut TrainingJob),
    ) -> Result<Option<TrainingJob>> {
        self.finish_job_at(id, status, error, artifact, prepare, None)
    }

    /// [`Engine::finish_job`] with the cluster's own end time of the run, for its cost.
    pub(crate) fn finish_job_at(
        &self,
        id: JobId,
        status: JobStatus,
        error: Option<(String, Option<String>)>,
        artifact: Option<ModelArtifact>,
        prepare: impl FnOnce(&mut TrainingJob),
        ended: Option<Timestamp>,
    ) -> Result<Option<TrainingJob>> {
        let t = now();
        let evaluation = match &artifact {
            Some(a) => self.inner.store.evaluation(a.id)?,
            None => None,
        };
        let done = self.inner.store.write(|w| {
            let mut job = Self::job_in(w, id)?;
            if job.status.is_terminal() {
                return Ok(None);
            }
            prepare(&mut job);
            let fin = lifecycle::finish(
                &mut job,
                status,
                error,
                artifact.as_ref().map(|a| a.id),
                t,
                ended,
                self.inner.config.training.storage_cost_per_job,
            );
            for c in fin.cost.iter().chain(&fin.storage) {
                w.put(c)?;
            }
            notify(
                w,
                job.user_id,
                fin.note.kind,
                fin.note.title.clone(),
                fin.note.message.clone(),
                Some(Link::Job(job.id)),
                json!({"job_id": job.id, "final_cost": job.final_cost}),
            )?;
            if let Some(a) = &artifact {
                // The model's cost and duration are the job's own, from this same finish (the
                // artifact was built a moment earlier, at a running cost a few ms short).
                let mut a = a.clone();
                a.training_summary.final_cost =
                    job.final_cost.unwrap_or(a.training_summary.final_cost);
                if let (Some(started), Some(done)) = (job.started_at, job.completed_at) {
                    a.training_summary.duration_seconds =
                        (done - started).num_milliseconds().max(0) as f64 / 1000.0;
                }
                let a = &a;
                w.put(a)?;
                notify(
                    w,
                    job.user_id,
                    NotificationType::ArtifactReady,
                    format!("Model {} is ready", a.name),
                    format!(
                        "quality score {}/5 ({}), {}",
                        a.quality_metrics.quality_score,
                        crate::training::quality::explain(&a.quality_metrics, evaluation.as_ref()),
                        crate::wording::counted(a.files.len() as u64, "file")
                    ),
                    Some(Link::Artifact(a.id)),
                    json!({"artifact_id": a.id, "quality_score": a.quality_metrics.quality_score}),
                )?;
            }
            w.put(&job)?;
            Ok(Some(job))
        })?;
        if let Some(job) = &done {
            self.as_user(job.user_id).check_budget()?;
        }
        Ok(done)
    }
}

/// Where the trainer reads the dataset and writes the adapter.
enum Inputs {
    /// The dataset's path on this machine (none: the job reads no dataset).
    Paths(Option<PathBuf>),
    Urls {
        dataset: Option<String>,
        puts: std::collections::BTreeMap<String, String>,
    },
}

/// How long the cluster may let a run go: three times its estimated duration (from the
/// estimated cost and the hourly price), at least 2 h, at most 7 days; 24 h when the price is
/// unknown.
pub(crate) fn run_timeout(job: &TrainingJob) -> std::time::Duration {
    let per_hour = job.gpu_config.price_per_gpu_hour * f64::from(job.gpu_config.gpu_count.max(1));
    let hours = if per_hour > 0.0 && job.estimated_cost > 0.0 {
        (job.estimated_cost / per_hour * 3.0).clamp(2.0, 7.0 * 24.0)
    } else {
        24.0
    };
    std::time::Duration::from_secs_f64(hours * 3600.0)
}

/// Presigned URLs must outlive the run (the adapter is uploaded at its end), within S3's
/// 7-day limit.
pub(crate) fn url_ttl(job: &TrainingJob) -> std::time::Duration {
    (run_timeout(job) + std::time::Duration::from_secs(3600)).min(super::storage_ops::MAX_URL_TTL)
}

fn join_detail(detail: &str, tail: &str) -> String {
    match (detail.trim().is_empty(), tail.trim().is_empty()) {
        (true, true) => String::new(),
        (false, true) => detail.to_string(),
        (true, false) => format!("trainer log:\n{tail}"),
        (false, false) => format!("{detail}\n\ntrainer log:\n{tail}"),
    }
}

/// A job's entry in one of the engine's sets of jobs in progress (starting, being polled),
/// removed when dropped: a task that panics or is cancelled cannot leave its job claimed, and
/// so never started or polled again, until a restart.
struct Claim {
    engine: Engine,
    set: fn(&super::Inner) -> &std::sync::Mutex<std::collections::HashSet<JobId>>,
    id: JobId,
}

impl Claim {
    /// The claim on `id` in `set`, or `None` when another task holds it.
    fn take(
        engine: &Engine,
        set: fn(&super::Inner) -> &std::sync::Mutex<std::collections::HashSet<JobId>>,
        id: JobId,
    ) -> Option<Claim> {
        let fresh = set(&engine.inner)
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id);
        fresh.then(|| Claim {
            engine: engine.clone(),
            set,
            id,
        })
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        (self.set)(&self.engine.inner)
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}
