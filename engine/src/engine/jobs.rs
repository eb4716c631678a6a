//! Jobs: estimates, creation, queries, cancel and retry. Running them is `runner.rs`.

use super::notify::notify;
use super::resolve::{IdKind, pick};
use super::{Engine, EngineError, Result};
use crate::api::Reason;
use crate::domain::*;
use crate::hardware::LocalHardware;
use crate::ids::*;
use crate::store::Page;
use crate::training::{
    self, CalibrationKey, Estimate, EstimateInput, GpuCatalog, LOCAL_GPU, ModelSize,
};
use serde_json::json;

/// What a user asks for when configuring a run. Unset fields take the config's defaults.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobRequest {
    pub dataset_id: DatasetId,
    /// `fast`, `balanced`, `quality`, `custom` or a preset from config; empty = the default.
    pub preset: String,
    /// `key=value` overrides, applied in order (`--set`). `parameters_billions` gives the base
    /// model's size when the built-in table does not know it.
    pub sets: Vec<(String, String)>,
    pub gpu_type: Option<String>,
    pub gpu_count: Option<u32>,
    pub backend: Option<String>,
    /// Start from this model's adapter (`--from-model`).
    pub from_model: Option<ArtifactId>,
}

/// A request resolved against config: everything a job record needs.
/// Where a job runs (see [`Engine::placement`]).
pub(crate) struct Placement {
    pub backend: String,
    pub catalog: GpuCatalog,
    pub gpu_type: String,
    pub gpu_count: u32,
    /// The GPU count asked for, when the `local` GPU type replaced it by this machine's.
    pub asked_gpu_count: Option<u32>,
}

pub(crate) struct Resolved {
    pub preset: PresetId,
    pub hyperparameters: Hyperparameters,
    pub gpu_type: String,
    pub gpu_count: u32,
    pub backend: String,
    pub parameters_billions: Option<f64>,
    pub dataset: Dataset,
    pub catalog: GpuCatalog,
    /// The GPU count asked for, when the `local` GPU type replaced it by this machine's.
    pub asked_gpu_count: Option<u32>,
    /// The model whose adapter the run starts from.
    pub from_model: Option<ArtifactId>,
}

impl Engine {
    pub(crate) fn gpu_catalog(&self) -> Result<GpuCatalog> {
        GpuCatalog::from_config(&self.inner.config.training)
            .map_err(|e| EngineError::Invalid(e.to_string()))
    }

    /// This machine's hardware (detected once, on first use).
    pub fn local_hardware(&self) -> &LocalHardware {
        self.inner.local_hardware.get_or_init(LocalHardware::detect)
    }

    /// Whether the backend called `name` runs the trainer on this machine.
    pub fn backend_runs_here(&self, name: &str) -> bool {
        self.inner.backends.get(name).is_some_and(|b| b.runs_here())
    }

    /// The GPU catalog jobs on `backend` choose from: the config's, with this machine's
    /// `local` entry first when the backend runs here.
    pub fn catalog_for_backend(&self, catalog: GpuCatalog, backend: &str) -> GpuCatalog {
        if self.backend_runs_here(backend) {
            let local = self
                .local_hardware()
                .spec(self.inner.config.local_price_per_hour(), &catalog);
            catalog.with_local(local)
        } else {
            catalog
        }
    }

    /// The GPU type a job on `backend` gets when none is named: `local` (this machine) on
    /// the local backend, the config's `default_gpu` elsewhere.
    pub fn default_gpu_for_backend(&self, backend: &str) -> String {
        if self.backend_runs_here(backend) {
            LOCAL_GPU.to_string()
        } else {
            self.inner.config.training.default_gpu.clone()
        }
    }

    /// Every base model the estimate knows the size of: the built-in table, then the
    /// config's `[training.models]` entries that are not built-in.
    pub fn base_models(&self) -> Vec<ModelSize> {
        let cfg = &self.inner.config.training;
        let mut out: Vec<ModelSize> = training::models::builtin_all()
            .into_iter()
            .map(|m| training::models::lookup(&m.id, cfg).unwrap_or(m))
            .collect();
        for id in cfg.models.keys() {
            if training::models::builtin(id).is_none()
                && let Some(m) = training::models::lookup(id, cfg)
            {
                out.push(m);
            }
        }
        out
    }

    /// The calibration key of a run: on the `local` GPU type, this machine's hardware is
    /// part of it.
    pub(crate) fn calibration_key(
        &self,
        gpu_type: &str,
        gpu_count: u32,
        hp: &Hyperparameters,
    ) -> CalibrationKey {
        let local = gpu_type.eq_ignore_ascii_case(LOCAL_GPU);
        let hardware = local.then(|| self.local_hardware().describe());
        CalibrationKey::new(
            gpu_type,
            hardware.as_deref(),
            gpu_count,
            &hp.base_model,
            hp.quantization,
        )
        .for_method(hp.method.name())
    }

    /// Keeps a completed job's measured throughput for later estimates of its setting.
    pub(crate) fn calibrate_from(&self, job: &TrainingJob, summary: &crate::backend::DoneSummary) {
        let points = self
            .inner
            .store
            .metrics(job.id, 0, usize::MAX)
            .unwrap_or_default();
        let throughputs: Vec<f64> = points.iter().filter_map(|p| p.throughput).collect();
        let Some(tps) = training::calibration::measured_throughput(
            summary.train_tokens,
            summary.train_runtime_seconds,
            &throughputs,
        ) else {
            return;
        };
        let key = self.calibration_key(
            &job.gpu_config.gpu_type,
            job.gpu_config.gpu_count,
            &job.hyperparameters,
        );
        match self.inner.store.add_calibration(&key, tps) {
            Ok(Some(c)) => tracing::info!(
                "job {}: measured {tps:.0} tokens/s; estimates for this setting are now calibrated from {} runs ({:.0} tokens/s)",
                job.id.short(),
                c.runs,
                c.tokens_per_sec
            ),
            Ok(None) => {}
            Err(e) => tracing::warn!("keeping job {}'s throughput: {e}", job.id.short()),
        }
    }

    fn resolve_request(&self, req: &JobRequest) -> Result<Resolved> {
        let cfg = &self.inner.config.training;
        let dataset = self.dataset(req.dataset_id)?;
        let preset_name = if req.preset.trim().is_empty() {
            cfg.default_preset.as_str()
        } else {
            req.preset.trim()
        };
        // The method picks the presets' values (a preference run's differ from SFT's), so it is
        // read before the preset and the other settings.
        let method = match req.sets.iter().rev().find(|(k, _)| k.trim() == "method") {
            Some((_, v)) => training::ranges::parse_method(v)
                .map_err(|e| EngineError::Invalid(e.to_string()))?,
            None => crate::domain::MethodName::Sft,
        };
        let (mut preset, mut hp) = training::presets::resolve_for(preset_name, cfg, method)
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        // Training on from a model keeps its base model and LoRA shape, whatever the preset.
        let parent = req
            .from_model
            .map(|id| super::lineage::Parent::of(self, id))
            .transpose()?;
        if let Some(p) = &parent {
            p.shape_into(&mut hp);
        }
        let mut parameters_billions = None;
        for (key, value) in &req.sets {
            if key == "parameters_billions" {
                parameters_billions = Some(
                    training::models::parse_parameters_billions(value)
                        .map_err(|e| EngineError::Invalid(e.to_string()))?,
                );
                continue;
            }
            let before = hp.clone();
            training::ranges::set(&mut hp, key, value)
                .map_err(|e| EngineError::Invalid(e.to_string()))?;
            // The base model is chosen beside the preset, not part of it; the method too.
            let beside = matches!(key.trim(), "base_model" | "method");
            if !beside && hp != before && !matches!(preset, PresetId::User(_)) {
                preset = PresetId::Custom;
            }
        }
        if let Some(p) = &parent {
            p.check_shape(&hp)?;
        }
        super::method_fit::check(&dataset, &hp.method)?;
        let Placement {
            backend,
            catalog,
            gpu_type,
            gpu_count,
            asked_gpu_count,
        } = self.placement(req.backend.clone(), req.gpu_type.clone(), req.gpu_count)?;
        Ok(Resolved {
            preset,
            hyperparameters: hp,
            gpu_type,
            gpu_count,
            backend,
            parameters_billions,
            dataset,
            catalog,
            asked_gpu_count,
            from_model: req.from_model,
        })
    }

    /// Where a job runs: the backend (the default when none is named), the GPU type it
    /// offers (its default when none is named) and the count (this machine's own on the
    /// `local` GPU type).
    pub(crate) fn placement(
        &self,
        backend: Option<String>,
        gpu_type: Option<String>,
        gpu_count: Option<u32>,
    ) -> Result<Placement> {
        let cfg = &self.inner.config.training;
        let backend = backend.unwrap_or_else(|| cfg.default_backend.clone());
        if !self.inner.backends.contains_key(&backend) {
            return Err(EngineError::Invalid(format!(
                "unknown backend `{backend}` (available: {})",
                self.inner
                    .backends
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if self.data_access(&backend) == crate::backend::DataAccess::Urls {
            self.check_url_store(&backend)?;
        }
        let catalog = self.catalog_for_backend(self.gpu_catalog()?, &backend);
        let gpu_type = gpu_type.unwrap_or_else(|| self.default_gpu_for_backend(&backend));
        let spec = catalog.get(&gpu_type).map_err(|e| {
            if gpu_type.trim().eq_ignore_ascii_case(LOCAL_GPU) {
                EngineError::Invalid(format!(
                    "GPU type `local` means this machine: it needs a backend that runs here (`local`), not `{backend}`"
                ))
            } else {
                EngineError::Invalid(e.to_string())
            }
        })?;
        let gpu_type = spec.id.clone();
        let asked = gpu_count.unwrap_or(cfg.default_gpu_count);
        // An impossible count is refused even where the machine's own count replaces it.
        training::ranges::check_gpu_count(asked)
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        // This machine has as many devices as it has: the run uses them all.
        let (gpu_count, asked_gpu_count) = if spec.local {
            let n = self.local_hardware().device_count();
            (n, gpu_count.filter(|a| *a != n))
        } else {
            (asked, None)
        };
        Ok(Placement {
            backend,
            catalog,
            gpu_type,
            gpu_count,
            asked_gpu_count,
        })
    }

    fn estimate_resolved(&self, r: &Resolved) -> Result<Estimate> {
        if r.dataset.status != DatasetStatus::Ready || !r.dataset.training_ready {
            return Err(EngineError::conflict(
                Reason::DatasetNotReady,
                format!(
                    "dataset {} is {}, not ready for training",
                    r.dataset.id.short(),
                    r.dataset.status.phrase()
                ),
            ));
        }
        // Tokens as the job's base model counts them, when its tokenizer is available; exact
        // (template and cut included) once `datasets inspect --stats` has counted them.
        let mut stats = self
            .statistics_for_model(&r.dataset, &r.hyperparameters.base_model)
            .ok_or_else(|| {
                EngineError::Invalid(format!(
                    "dataset {} has not been validated yet",
                    r.dataset.id.short()
                ))
            })?;
        let (model, length) = (
            &r.hyperparameters.base_model,
            r.hyperparameters.max_seq_length,
        );
        let (exact, warned) = self.cached_pairing(&r.dataset, model, length);
        if let Some(x) = &exact {
            stats.total_tokens = x.tokens;
            stats.tokens_exact = true;
            stats.examples_over_max_seq_length = x.over_max_seq_length;
        }
        let spent = self.spent_this_month()?;
        let calibration = self.inner.store.calibration(&self.calibration_key(
            &r.gpu_type,
            r.gpu_count,
            &r.hyperparameters,
        ))?;
        let mut est = training::estimate(&EstimateInput {
            statistics: &stats,
            hyperparameters: &r.hyperparameters,
            gpu_type: &r.gpu_type,
            gpu_count: r.gpu_count,
            catalog: &r.catalog,
            training: &self.inner.config.training,
            parameters_billions: r.parameters_billions,
            budget: &self.inner.config.budget,
            spent_this_month: spent,
            calibration,
            evaluation: Some(&self.inner.config.evaluation),
        })
        .map_err(|e| EngineError::Invalid(e.to_string()))?;
        if exact.is_some() {
            est.throughput
                .note
                .push_str("; exact token counts (`datasets inspect --stats`)");
        }
        est.warnings.extend(warned);
        if let Some(asked) = r.asked_gpu_count {
            est.warnings.push(format!(
                "{} GPUs were asked for, but a run on this machine uses what it has ({}): the estimate is for that",
                asked,
                self.local_hardware().describe()
            ));
        }
        Ok(est)
    }

    /// Cost, duration, memory fit and budget effect of a run, before it exists. Microseconds:
    /// the dashboard calls it on every key press.
    pub fn estimate(&self, req: &JobRequest) -> Result<Estimate> {
        let r = self.resolve_request(req)?;
        self.estimate_resolved(&r)
    }

    /// The hyperparameters a request resolves to (preset + overrides), for forms.
    pub fn resolve_hyperparameters(&self, req: &JobRequest) -> Result<(PresetId, Hyperparameters)> {
        let r = self.resolve_request(req)?;
        Ok((r.preset, r.hyperparameters))
    }

    /// Creates a `queued` job. Needs a `ready` dataset; a run that would take the month over
    /// its budget needs `confirm_over_budget`.
    pub async fn create_job(
        &self,
        req: JobRequest,
        confirm_over_budget: bool,
    ) -> Result<TrainingJob> {
        self.on_store(move |e| e.create_job_now(req, confirm_over_budget))
            .await
    }

    /// [`Engine::create_job`]'s work: it reads the dataset and commits the job.
    fn create_job_now(&self, req: JobRequest, confirm_over_budget: bool) -> Result<TrainingJob> {
        let (job, dataset_name) = self.new_job(&req, confirm_over_budget)?;
        self.queue(&job, &dataset_name)?;
        Ok(job)
    }

    /// The queued job a request makes, with its dataset's name, after the budget check; not
    /// yet stored.
    pub(crate) fn new_job(
        &self,
        req: &JobRequest,
        confirm_over_budget: bool,
    ) -> Result<(TrainingJob, String)> {
        let r = self.resolve_request(req)?;
        let est = self.estimate_resolved(&r)?;
        if est.needs_budget_confirmation() && !confirm_over_budget {
            let b = est.budget.as_ref().expect("checked");
            return Err(EngineError::conflict(
                Reason::OverBudget,
                format!(
                    "this run (about ${:.2}) would take the month to ${:.2} of its ${:.2} budget; confirm to go over it",
                    est.estimated_cost, b.after_this_run, b.monthly_budget
                ),
            ));
        }
        let mut job = TrainingJob::new_queued(
            self.user,
            r.dataset.id,
            r.preset,
            r.hyperparameters,
            GpuConfig {
                gpu_type: r.gpu_type,
                gpu_count: r.gpu_count,
                price_per_gpu_hour: est.price_per_gpu_hour,
                backend: r.backend,
            },
            est.training_details.total_steps,
            est.estimated_cost,
            r.parameters_billions,
        );
        job.init_model = r.from_model;
        Ok((job, r.dataset.name))
    }

    /// Commits a new job and its notification, and wakes the dispatcher. A job that reads its
    /// dataset needs it there and ready, checked again in the write transaction (it may have
    /// been deleted, or re-validated into an error, since the request was resolved).
    pub(crate) fn queue(&self, job: &TrainingJob, dataset_name: &str) -> Result<()> {
        self.inner
            .store
            .write(|w| self.queue_in(w, job, dataset_name))??;
        self.inner.wake_dispatch.notify_one();
        Ok(())
    }

    /// [`Engine::queue`]'s work inside a write transaction (a sweep starts its runs and
    /// records them in one). The caller wakes the dispatcher once it has committed.
    pub(crate) fn queue_in(
        &self,
        w: &mut crate::store::Writer<'_>,
        job: &TrainingJob,
        dataset_name: &str,
    ) -> std::result::Result<Result<()>, crate::store::StoreError> {
        let (title, message) = queued_note(job, dataset_name);
        if job.task.uses_dataset() {
            match w.get::<Dataset>(&job.dataset_id.bytes())? {
                Some(d) if d.deleted_at.is_none() && d.status == DatasetStatus::Ready => {}
                Some(d) if d.deleted_at.is_none() => {
                    return Ok(Err(EngineError::conflict(
                        Reason::DatasetNotReady,
                        format!(
                            "dataset {} is {} now, not ready; the job was not created",
                            d.id.short(),
                            d.status.as_str()
                        ),
                    )));
                }
                _ => {
                    return Ok(Err(EngineError::conflict(
                        Reason::Deleted,
                        format!(
                            "dataset {} was deleted meanwhile; the job was not created",
                            job.dataset_id.short()
                        ),
                    )));
                }
            }
        }
        w.put(job)?;
        notify(
            w,
            self.user,
            NotificationType::JobQueued,
            title,
            message,
            Some(Link::Job(job.id)),
            json!({"job_id": job.id, "estimated_cost": job.estimated_cost}),
        )?;
        Ok(Ok(()))
    }

    pub fn job(&self, id: JobId) -> Result<TrainingJob> {
        self.inner
            .store
            .job(id)?
            .filter(|j| j.user_id == self.user)
            .ok_or_else(|| EngineError::NotFound {
                kind: IdKind::Job,
                query: id.to_string(),
            })
    }

    /// The active user's jobs, newest first.
    pub fn jobs(&self, status: Option<JobStatus>, page: Page) -> Result<Vec<TrainingJob>> {
        Ok(self.inner.store.jobs(self.user, status, page)?)
    }

    pub fn resolve_job(&self, query: &str) -> Result<JobId> {
        let all = self.jobs(None, Page::ALL)?;
        pick(IdKind::Job, query, all.iter().map(|j| j.id))
    }

    /// A job's metrics from `from_step` on, in step order.
    pub fn metrics(&self, id: JobId, from_step: u64, limit: usize) -> Result<Vec<MetricsPoint>> {
        self.job(id)?;
        Ok(self.inner.store.metrics(id, from_step, limit)?)
    }

    /// A job's checkpoints; another user's job is not found, as with [`Engine::metrics`].
    pub fn checkpoints(&self, id: JobId) -> Result<Vec<Checkpoint>> {
        self.job(id)?;
        Ok(self.inner.store.checkpoints(id)?)
    }

    /// The last `lines` of the job's log: its stages, checkpoints and the trainer's messages,
    /// as the dashboard's log pane shows them live, then the end of the trainer's stderr
    /// (`stderr: …`), where tracebacks and library warnings go.
    pub async fn job_log_tail(&self, id: JobId, lines: usize) -> Result<Vec<String>> {
        let job = self.on_store(move |e| e.job(id)).await?;
        let backend = self.backend(&job.gpu_config.backend)?;
        let ext = job.external_job_id.unwrap_or_else(|| id.to_string());
        let mut out: Vec<String> = match backend.poll(&ext, 0).await {
            Ok(poll) => poll
                .events
                .iter()
                .filter_map(|e| super::lifecycle::log_line(&e.event))
                .collect(),
            Err(_) => Vec::new(),
        };
        let stderr = backend
            .log_tail(&ext, lines)
            .await
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        out.extend(stderr.into_iter().map(|l| format!("stderr: {l}")));
        let skip = out.len().saturating_sub(lines);
        Ok(out
            .into_iter()
            .skip(skip)
            .map(|l| crate::text::clean_line(&l))
            .collect())
    }

    /// Cancels a queued, initializing or running job. The trainer is asked to stop (it saves a
    /// checkpoint); the job's final cost is what it ran.
    pub async fn cancel_job(&self, id: JobId) -> Result<TrainingJob> {
        self.cancel_job_because(id, None).await
    }

    /// [`Engine::cancel_job`], with the reason kept as the job's message when the engine
    /// itself cancels it (a sweep stopping a run that falls behind its siblings).
    pub(crate) async fn cancel_job_because(
        &self,
        id: JobId,
        reason: Option<String>,
    ) -> Result<TrainingJob> {
        let job = self
            .on_store(move |e| {
                let job = e.job(id)?;
                let already = |status: JobStatus| {
                    EngineError::conflict(
                        Reason::AlreadyFinished,
                        format!("job {} is already {}", id.short(), status.as_str()),
                    )
                };
                if job.status.is_terminal() {
                    return Err(already(job.status));
                }
                // The finish re-reads the job in its transaction: a job that ended meanwhile
                // is reported as such, never overwritten.
                let error = reason.map(|r| (r, None));
                match e.finish_job(id, JobStatus::Cancelled, error, None, |_| {})? {
                    Some(job) => Ok(job),
                    None => Err(already(e.job(id)?.status)),
                }
            })
            .await?;
        if let Some(ext) = job.external_job_id.clone() {
            // The stop (SIGTERM, the grace period, SIGKILL; a cluster's own stop) goes on
            // after the reply, in a task shutdown waits for: the caller learns at once that
            // the job is cancelled, and a client going away cannot cut the escalation short.
            let backend = self.backend(&job.gpu_config.backend)?;
            let (engine, stopped) = (self.clone(), job.clone());
            self.inner.job_tasks.spawn(async move {
                if let Err(e) = backend.cancel(&ext).await {
                    tracing::warn!("cancelling {ext}: {e}");
                }
                // The trainer checkpoints on its way out: keep that checkpoint.
                engine.collect_stop_checkpoint(stopped, backend, ext).await;
            });
        }
        Ok(job)
    }

    /// Queues a new job with the same configuration as a failed or cancelled one, starting
    /// where `from` says (see [`super::resume`]).
    /// On `backend` when one is named (its GPU type kept where it offers it), else where
    /// the old job ran; `dry_run` only says what it would queue. A stored checkpoint it continues from must be in the store at its
    /// recorded size.
    pub async fn retry_job(
        &self,
        id: JobId,
        from: super::RetryFrom,
        backend: Option<String>,
        dry_run: bool,
    ) -> Result<TrainingJob> {
        let planned = self
            .on_store(move |e| e.retry_plan(id, from, backend))
            .await?;
        if let Some(point) = planned.resumed_from {
            self.check_stored(&planned, point).await?;
        }
        if dry_run {
            return Ok(planned);
        }
        self.on_store(move |e| {
            let name = e.retry_dataset_name(&planned)?;
            e.queue(&planned, &name)?;
            Ok(planned)
        })
        .await
    }

    /// The job a retry of `id` queues (not yet queued).
    fn retry_plan(
        &self,
        id: JobId,
        from: super::RetryFrom,
        backend: Option<String>,
    ) -> Result<TrainingJob> {
        let old = self.job(id)?;
        if !matches!(old.status, JobStatus::Failed | JobStatus::Cancelled) {
            return Err(EngineError::conflict(
                Reason::NotRetryable,
                format!(
                    "job {} is {}; only failed or cancelled jobs can be retried",
                    id.short(),
                    old.status.as_str()
                ),
            ));
        }
        self.retry_dataset_name(&old)?;
        let gpu_config = match backend {
            Some(b) if b != old.gpu_config.backend => self.moved_gpu_config(&old, b)?,
            _ => old.gpu_config.clone(),
        };
        let mut job = TrainingJob::new_queued(
            old.user_id,
            old.dataset_id,
            old.preset_id.clone(),
            old.hyperparameters.clone(),
            gpu_config,
            old.total_steps,
            old.estimated_cost,
            old.parameters_billions,
        );
        job.retry_of = Some(old.id);
        job.task = old.task.clone();
        job.init_model = old.init_model;
        // An evaluation answers its prompts again from the start; an export exports again.
        if job.task.is_training() {
            let access = self.data_access(&job.gpu_config.backend);
            job.resumed_from = self.resume_point(&old, from, access)?;
            if let Some(p) = job.resumed_from {
                same_geometry(&old.gpu_config, &job.gpu_config, p.step)?;
            }
            job.estimated_cost = super::resume::remaining_cost(&old, job.resumed_from);
            // Elsewhere, at that backend's price for the same GPU hours.
            let rate = |g: &GpuConfig| g.price_per_gpu_hour * f64::from(g.gpu_count.max(1));
            if rate(&old.gpu_config) > 0.0 && job.gpu_config != old.gpu_config {
                job.estimated_cost *= rate(&job.gpu_config) / rate(&old.gpu_config);
            }
        }
        Ok(job)
    }

    /// The name of the dataset a retried job trains on, which must still be ready; an
    /// evaluation of the user's prompts reads none (it may be gone).
    fn retry_dataset_name(&self, job: &TrainingJob) -> Result<String> {
        if !job.task.uses_dataset() {
            return Ok(String::new());
        }
        let dataset = self.dataset(job.dataset_id)?;
        if dataset.status != DatasetStatus::Ready {
            return Err(EngineError::conflict(
                Reason::DatasetNotReady,
                format!(
                    "dataset {} is {}, not ready",
                    dataset.id.short(),
                    dataset.status.phrase()
                ),
            ));
        }
        Ok(dataset.name)
    }

    /// The old job's GPUs on another backend: its GPU type and count where that backend
    /// offers them, else the backend's default, at that backend's price.
    fn moved_gpu_config(&self, old: &TrainingJob, backend: String) -> Result<GpuConfig> {
        let (gpu, count) = (old.gpu_config.gpu_type.clone(), old.gpu_config.gpu_count);
        let placed = match self.placement(Some(backend.clone()), Some(gpu), Some(count)) {
            Ok(p) => p,
            Err(_) => self.placement(Some(backend), None, Some(count))?,
        };
        let spec = placed
            .catalog
            .get(&placed.gpu_type)
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        Ok(GpuConfig {
            gpu_type: placed.gpu_type.clone(),
            gpu_count: placed.gpu_count,
            price_per_gpu_hour: spec.price_per_hour,
            backend: placed.backend,
        })
    }
}

/// A checkpoint continues on as many GPUs as trained it: the global batch, and with it the
/// data order and the schedule the checkpoint holds, depends on the count. (Every
/// hyperparameter is the old job's: a retry changes none.)
fn same_geometry(old: &GpuConfig, new: &GpuConfig, step: u64) -> Result<()> {
    if old.gpu_count == new.gpu_count {
        return Ok(());
    }
    Err(EngineError::InvalidField {
        field: "backend".into(),
        message: format!(
            "the checkpoint at step {step} was trained on {} GPU(s); on `{}` the run would have {}, a different global batch than its data order and schedule were saved for; retry on a backend with {} GPU(s), or `--from-scratch`",
            old.gpu_count, new.backend, new.gpu_count, old.gpu_count
        ),
    })
}

/// The notification of a queued job: what it runs, where, and about what it costs.
fn queued_note(job: &TrainingJob, dataset_name: &str) -> (String, String) {
    let short = job.id.short();
    let gpus = format!("{}× {}", job.gpu_config.gpu_count, job.gpu_config.gpu_type);
    if let Some(t) = job.task.export() {
        return (
            format!("Export {short} queued"),
            format!(
                "model {} as {} {} ({}), {gpus}, about ${:.2}",
                t.model.short(),
                t.format.as_str(),
                t.dtype.as_str(),
                dataset_name,
                job.estimated_cost
            ),
        );
    }
    match job.task.evaluation() {
        Some(t) => (
            format!("Evaluation {short} queued"),
            format!(
                "{} on {}, {gpus}, about ${:.2}",
                crate::wording::counted(t.models.len() as u64, "model"),
                match &t.prompts {
                    Some(p) => crate::wording::counted(p.len() as u64, "prompt"),
                    None => "held-out examples and probes".into(),
                },
                job.estimated_cost
            ),
        ),
        None => (
            format!("Job {short} queued"),
            format!(
                "{} on “{dataset_name}”, {gpus}, about ${:.2}",
                job.hyperparameters.base_model, job.estimated_cost
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use crate::Engine;
    use crate::engine::EngineError;
    use crate::ids::UserId;
    use crate::paths::Paths;

    #[test]
    fn checkpoints_of_another_users_job_are_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(Paths::under(dir.path())).unwrap();
        let owner = engine.profile_user();
        let sample = crate::mirror::sample::write_sample(engine.store(), owner, 1).unwrap();
        assert_eq!(engine.checkpoints(sample.job.id).unwrap().len(), 1);
        let stranger = engine.as_user(UserId::new());
        let err = stranger.checkpoints(sample.job.id).unwrap_err();
        assert!(matches!(err, EngineError::NotFound { .. }), "{err:?}");
        // The same answer as for its metrics.
        assert!(matches!(
            stranger.metrics(sample.job.id, 0, 10),
            Err(EngineError::NotFound { .. })
        ));
    }
}
