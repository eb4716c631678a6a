//! Evaluation jobs (`brightrun models eval`): trained models, each beside its base, answer a
//! prompt set on a backend, dispatched like a training job (so it has a cost, a log, a place
//! in the queue, retries and cancelling) and read back as a [`Comparison`].
//!
//! The job carries its task ([`EvaluationTask`]); the trainer's compare mode does the work
//! (trainer/PROTOCOL.md). The first model's run gives the job's dataset and hyperparameters:
//! with no prompts given, its held-out examples (split as it was trained) are the prompts.

use super::artifacts::remote_artifact_id;
use super::{Engine, EngineError, Result};
use crate::api::Reason;
use crate::backend::{AdapterRef, CompareModel, CompareSpec};
use crate::domain::*;
use crate::ids::{ArtifactId, JobId};
use crate::storage::{Bucket, object_path};
use crate::training;
use std::collections::BTreeMap;

/// The file an evaluation job's trainer writes (trainer/PROTOCOL.md, "Compare mode").
pub(crate) const COMPARISON_FILE: &str = "comparison.json";

/// The largest comparison read back (500 prompts answered by 16 models at 4,096 tokens fit).
const MAX_COMPARISON_BYTES: u64 = 64 << 20;

/// An evaluation job as asked for, its models already resolved to ids.
pub struct EvaluationRequest {
    pub models: Vec<ArtifactId>,
    pub prompts: Option<Vec<EvalPrompt>>,
    pub max_new_tokens: Option<u32>,
    pub backend: Option<String>,
    pub gpu_type: Option<String>,
}

/// The run that made a model: its settings (an evaluation job's dataset and settings come
/// from its first model's).
pub(crate) struct FirstRun {
    pub hyperparameters: Hyperparameters,
    pub preset: PresetId,
    pub parameters_billions: Option<f64>,
}

impl Engine {
    /// Queues an evaluation job (see [`EvaluationRequest`]); a run over the monthly budget
    /// needs `confirm_over_budget`, as a training job does.
    pub async fn evaluate_models(
        &self,
        req: EvaluationRequest,
        confirm_over_budget: bool,
    ) -> Result<TrainingJob> {
        self.on_store(move |e| e.evaluate_models_now(req, confirm_over_budget))
            .await
    }

    fn evaluate_models_now(
        &self,
        req: EvaluationRequest,
        confirm_over_budget: bool,
    ) -> Result<TrainingJob> {
        let models = self.evaluated_models(&req.models)?;
        if let Some(p) = &req.prompts {
            crate::prompts::check(p)
                .map_err(|e| EngineError::Invalid(format!("the prompts: {e}")))?;
        }
        let max_new_tokens = req
            .max_new_tokens
            .unwrap_or(self.inner.config.evaluation.max_new_tokens);
        if !(1..=MAX_EVALUATION_NEW_TOKENS).contains(&max_new_tokens) {
            return Err(EngineError::Invalid(format!(
                "max_new_tokens {max_new_tokens} is out of range (1 to {MAX_EVALUATION_NEW_TOKENS})"
            )));
        }
        let first = &models[0];
        let run = self.first_run(first)?;
        let dataset = self.inner.store.dataset(first.dataset_id)?;
        let held_out = match (&req.prompts, &dataset) {
            (Some(_), _) => None,
            (None, Some(d)) if d.deleted_at.is_none() && d.status == DatasetStatus::Ready => {
                Some(d)
            }
            (None, _) => {
                return Err(EngineError::conflict(
                    Reason::DatasetNotReady,
                    format!(
                        "model {}'s dataset {} is gone or not ready, so its held-out examples cannot be answered; give a prompts file (`--prompts FILE`)",
                        first.id.short(),
                        first.dataset_id.short()
                    ),
                ));
            }
        };
        let place = self.placement(req.backend, req.gpu_type, None)?;
        let (prompts, held_out_tokens) = match (&req.prompts, held_out) {
            (Some(p), _) => (p.len() as u64, 0.0),
            (None, Some(d)) => self.held_out_work(d, &run.hyperparameters)?,
            (None, None) => unreachable!("refused above"),
        };
        let bases: std::collections::BTreeSet<&str> =
            models.iter().map(|m| m.base_model.as_str()).collect();
        let est = training::estimate::evaluation_job(&training::estimate::EvaluationJobInput {
            hyperparameters: &run.hyperparameters,
            parameters_billions: run.parameters_billions,
            gpu_type: &place.gpu_type,
            gpu_count: place.gpu_count,
            catalog: &place.catalog,
            training: &self.inner.config.training,
            calibration: None,
            prompts,
            max_new_tokens,
            held_out_tokens,
            columns: (models.len() + bases.len()) as u32,
            bases: bases.len() as u32,
        })
        .map_err(|e| EngineError::Invalid(e.to_string()))?;
        self.check_task_budget("this evaluation", est.cost, confirm_over_budget)?;
        let task = JobTask::Evaluation(Box::new(EvaluationTask {
            models: models.iter().map(|m| m.id).collect(),
            prompts: req.prompts,
            max_new_tokens,
        }));
        let job = self.task_job(
            first.dataset_id,
            run,
            place,
            est.price_per_gpu_hour,
            est.cost,
            task,
        );
        let name = dataset.map(|d| d.name).unwrap_or_default();
        self.queue(&job, &name)?;
        Ok(job)
    }

    /// A job that trains nothing (an evaluation, an export): the settings of the run that made
    /// its first model, placed and priced, no epochs.
    pub(crate) fn task_job(
        &self,
        dataset: crate::ids::DatasetId,
        run: FirstRun,
        place: super::jobs::Placement,
        price_per_gpu_hour: f64,
        cost: f64,
        task: JobTask,
    ) -> TrainingJob {
        let mut job = TrainingJob::new_queued(
            self.user,
            dataset,
            run.preset,
            run.hyperparameters,
            GpuConfig {
                gpu_type: place.gpu_type,
                gpu_count: place.gpu_count,
                price_per_gpu_hour,
                backend: place.backend,
            },
            0,
            cost,
            run.parameters_billions,
        );
        job.total_epochs = 0;
        job.task = task;
        job
    }

    /// The caller's models, in the order asked, each once; at least one, at most
    /// [`MAX_EVALUATED_MODELS`].
    fn evaluated_models(&self, ids: &[ArtifactId]) -> Result<Vec<ModelArtifact>> {
        let mut seen = std::collections::HashSet::new();
        let unique: Vec<ArtifactId> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
        if unique.is_empty() {
            return Err(EngineError::Invalid(
                "name at least one model to evaluate".into(),
            ));
        }
        if unique.len() > MAX_EVALUATED_MODELS {
            return Err(EngineError::Invalid(format!(
                "{} models named; one evaluation compares at most {MAX_EVALUATED_MODELS}",
                unique.len()
            )));
        }
        unique
            .into_iter()
            .map(|id| self.adapter(id, "evaluate"))
            .collect()
    }

    /// The hyperparameters of the run that made `model`: its job's, or (the job gone) the
    /// copy kept in the model's configuration.
    pub(crate) fn first_run(&self, model: &ModelArtifact) -> Result<FirstRun> {
        if let Some(job) = self.inner.store.job(model.job_id)? {
            return Ok(FirstRun {
                hyperparameters: job.hyperparameters,
                preset: job.preset_id,
                parameters_billions: job.parameters_billions,
            });
        }
        let hp = model
            .configuration
            .0
            .get("hyperparameters")
            .cloned()
            .and_then(|v| serde_json::from_value::<Hyperparameters>(v).ok())
            .ok_or_else(|| {
                EngineError::Invalid(format!(
                    "model {} keeps no readable record of how it was trained (its job is gone)",
                    model.id.short()
                ))
            })?;
        Ok(FirstRun {
            hyperparameters: hp,
            preset: PresetId::Custom,
            parameters_billions: None,
        })
    }

    /// The prompts and held-out tokens of an evaluation of a run's own data: its held-out
    /// examples (or, with none held out, as many training examples) up to `[evaluation]
    /// samples`, and the probes.
    fn held_out_work(&self, dataset: &Dataset, hp: &Hyperparameters) -> Result<(u64, f64)> {
        let cfg = &self.inner.config.evaluation;
        let settings = self.evaluation_settings()?;
        let stats = self
            .statistics_for_model(dataset, &hp.base_model)
            .unwrap_or_default();
        let held_out = if hp.use_validation {
            stats.total_validation_pairs
        } else {
            0
        };
        let examples = stats.total_examples.max(1);
        let tokens_per_example =
            (stats.total_tokens as f64 / examples as f64).min(f64::from(hp.max_seq_length));
        let samples = u64::from(cfg.samples).min(held_out.max(stats.total_training_pairs));
        let probes = settings.probes.len() as u64
            + if cfg.builtin_probes {
                training::estimate::BUILTIN_PROBES
            } else {
                0
            };
        Ok((samples + probes, held_out as f64 * tokens_per_example))
    }

    /// Refuses a job (`what`: "this evaluation") that would take the month over its budget
    /// unless the user confirmed it.
    pub(crate) fn check_task_budget(&self, what: &str, cost: f64, confirmed: bool) -> Result<()> {
        let spent = self.spent_this_month()?;
        match training::budget::budget_effect(&self.inner.config.budget, spent, cost) {
            Some(b) if b.exceeds && !confirmed => Err(EngineError::conflict(
                Reason::OverBudget,
                format!(
                    "{what} (about ${cost:.2}) would take the month to ${:.2} of its ${:.2} budget; confirm to go over it",
                    b.after_this_run, b.monthly_budget
                ),
            )),
            _ => Ok(()),
        }
    }

    /// What an evaluation job measured, once it has finished.
    pub fn job_comparison(&self, id: JobId) -> Result<Comparison> {
        let job = self.job(id)?;
        if !job.task.is_evaluation() {
            return Err(EngineError::conflict(
                Reason::NotEvaluated,
                format!(
                    "job {} trains a model; `brightrun models eval` makes evaluation jobs",
                    id.short()
                ),
            ));
        }
        self.inner.store.comparison(id)?.ok_or_else(|| {
            EngineError::conflict(
                Reason::NotEvaluated,
                format!(
                    "evaluation {} is {}: its comparison comes when it completes",
                    id.short(),
                    job.status.as_str()
                ),
            )
        })
    }

    /// The spec's `compare` object of an evaluation job: each model with where its trainer
    /// reads the adapter (this machine's folder, or presigned GET URLs for a remote one).
    pub(crate) async fn compare_spec(&self, job: &TrainingJob) -> Result<Option<CompareSpec>> {
        let Some(task) = job.task.evaluation() else {
            return Ok(None);
        };
        let mut models = Vec::with_capacity(task.models.len());
        for id in &task.models {
            models.push(self.adapter_spec(job, *id).await?);
        }
        Ok(Some(CompareSpec {
            models,
            prompts: task.prompts.clone(),
        }))
    }

    /// A model as a trainer of `job` reads it: its label, its base, and its adapter in a folder
    /// of this machine or (a remote trainer) behind presigned GET URLs.
    pub(crate) async fn adapter_spec(
        &self,
        job: &TrainingJob,
        id: ArtifactId,
    ) -> Result<CompareModel> {
        let a = self.artifact_of(job, id).await?;
        let adapter = if self.uploads_by_url(job) {
            AdapterRef::Urls(self.adapter_urls(&a, job).await?)
        } else {
            let dir = self
                .adapter_dir(&a)
                .await
                .map_err(|e| EngineError::Invalid(e.message))?;
            AdapterRef::Dir(dir.to_string_lossy().into_owned())
        };
        Ok(CompareModel {
            id: a.id.to_string(),
            // A dataset's models share a name: the version tells them apart.
            label: format!("{} v{}", a.name, a.version),
            base_model: a.base_model.clone(),
            adapter,
        })
    }

    /// A model of the job's user, read off the async workers (deleted since: refused).
    async fn artifact_of(&self, job: &TrainingJob, id: ArtifactId) -> Result<ModelArtifact> {
        let user = job.user_id;
        self.on_store(move |e| e.as_user(user).artifact(id)).await
    }

    /// Presigned GET URLs of a model's files, valid as long as the job may run.
    async fn adapter_urls(
        &self,
        a: &ModelArtifact,
        job: &TrainingJob,
    ) -> Result<BTreeMap<String, String>> {
        let ttl = super::runner::url_ttl(job);
        let mut urls = BTreeMap::new();
        for f in &a.files {
            let key = object_path(&[a.storage_path.as_str(), f.path.as_str()])?;
            let url = self
                .inner
                .objects
                .presign_get(Bucket::Models, &key, ttl)
                .await?
                .ok_or_else(|| EngineError::Invalid("the object store makes no URLs".into()))?;
            urls.insert(f.path.clone(), url);
        }
        Ok(urls)
    }

    /// The presigned PUT URL a remote evaluation job uploads its comparison to.
    pub(crate) async fn comparison_put(
        &self,
        job: &TrainingJob,
        ttl: std::time::Duration,
    ) -> Result<BTreeMap<String, String>> {
        let key = comparison_key(job)?;
        let url = self.model_put_url(&key, ttl).await?;
        Ok(BTreeMap::from([(COMPARISON_FILE.to_string(), url)]))
    }

    /// Reads the comparison an evaluation job's trainer wrote: from the job's output folder
    /// on this machine, or (a remote trainer) from the models bucket, checked against the
    /// size and sha256 it reported and then removed from there (it is kept in the store).
    pub(crate) async fn collect_comparison(&self, job: &TrainingJob) -> Result<Comparison> {
        let entry = job
            .output_files
            .iter()
            .find(|f| f.path == COMPARISON_FILE)
            .ok_or_else(|| {
                EngineError::Invalid(format!("the trainer reported no {COMPARISON_FILE}"))
            })?;
        let bytes = if self.uploads_by_url(job) {
            let folder = remote_artifact_id(job);
            let bytes = self
                .read_model_document(job, folder, entry, MAX_COMPARISON_BYTES)
                .await?;
            let _ = self
                .inner
                .objects
                .delete(Bucket::Models, &comparison_key(job)?)
                .await;
            bytes
        } else {
            self.read_local_comparison(job, entry)?
        };
        parse(&bytes)
    }

    fn read_local_comparison(&self, job: &TrainingJob, entry: &ArtifactFile) -> Result<Vec<u8>> {
        let path = self.output_root(job)?.join(COMPARISON_FILE);
        let io = |source| EngineError::Io {
            action: "reading",
            path: path.clone(),
            source,
        };
        let size = std::fs::metadata(&path).map_err(io)?.len();
        if size > MAX_COMPARISON_BYTES {
            return Err(EngineError::Invalid(format!(
                "{} is {size} bytes, over the {MAX_COMPARISON_BYTES} read",
                path.display()
            )));
        }
        let bytes = std::fs::read(&path).map_err(io)?;
        let sha = {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(&bytes))
        };
        if !entry.sha256.is_empty() && sha != entry.sha256 {
            return Err(EngineError::Invalid(format!(
                "{} does not match the sha256 the trainer reported",
                path.display()
            )));
        }
        Ok(bytes)
    }

    /// Keeps what a finished evaluation job measured. An evaluation of one model on its own
    /// held-out data is also that model's evaluation when it has none (a model trained before
    /// BrightRun evaluated runs, or with `[evaluation] enabled = false`).
    pub(crate) fn keep_comparison(&self, job: &TrainingJob, c: &Comparison) -> Result<()> {
        self.inner.store.put_comparison(job.id, c)?;
        let Some(task) = job.task.evaluation() else {
            return Ok(());
        };
        if let ([model], None) = (task.models.as_slice(), &task.prompts)
            && self.inner.store.evaluation(*model)?.is_none()
            && let Some(e) = as_evaluation(c, *model)
        {
            self.inner.store.put_evaluation(*model, &e)?;
        }
        Ok(())
    }
}

/// Where a remote evaluation job's trainer uploads its comparison: the folder its attempt's
/// URLs name, as an adapter's would be.
fn comparison_key(job: &TrainingJob) -> Result<String> {
    Ok(object_path(&[
        &job.user_id.to_string(),
        &remote_artifact_id(job).to_string(),
        COMPARISON_FILE,
    ])?)
}

/// A `comparison.json` as the engine keeps it: parsed leniently, its text cleaned of terminal
/// controls, non-finite numbers dropped.
pub(crate) fn parse(bytes: &[u8]) -> Result<Comparison> {
    let invalid = |e: String| EngineError::Invalid(format!("{COMPARISON_FILE} is not valid: {e}"));
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
    if !v.is_object() {
        return Err(invalid("not a JSON object".into()));
    }
    let c: Comparison = serde_json::from_value(v).map_err(|e| invalid(e.to_string()))?;
    Ok(c.sanitised())
}

/// A comparison of one adapter with its base as that model's [`Evaluation`]: the held-out
/// examples are its samples, the probes its probes.
fn as_evaluation(c: &Comparison, model: ArtifactId) -> Option<Evaluation> {
    let id = model.to_string();
    let adapter = c.models.iter().position(|m| m.id == id)?;
    let base = c.models.iter().position(|m| !m.adapter)?;
    let answered = |p: &ComparedPrompt| {
        let (b, a) = (p.answers.get(base)?, p.answers.get(adapter)?);
        Some(Answered {
            prompt: p.prompt.clone(),
            context_turns: p.context_turns,
            reference: p.reference.clone(),
            base: b.text.clone(),
            adapter: a.text.clone(),
            base_score: b.score,
            adapter_score: a.score,
            contains_reference: p
                .reference
                .as_ref()
                .map(|r| a.text.to_lowercase().contains(&r.to_lowercase())),
            changed: Some(a.changed.unwrap_or(a.text.trim() != b.text.trim())),
            builtin: p.probe.then_some(p.builtin),
        })
    };
    let samples: Vec<Answered> = c
        .prompts
        .iter()
        .filter(|p| !p.probe)
        .filter_map(answered)
        .collect();
    let probes: Vec<Answered> = c
        .prompts
        .iter()
        .filter(|p| p.probe)
        .filter_map(answered)
        .collect();
    let closer = |f: fn(f64, f64) -> bool| {
        samples
            .iter()
            .filter(|s| matches!((s.adapter_score, s.base_score), (Some(a), Some(b)) if f(a, b)))
            .count() as u32
    };
    let (base_m, adapter_m) = (&c.models[base], &c.models[adapter]);
    Some(Evaluation {
        version: 1,
        similarity: c.similarity.clone(),
        samples_from: c.prompts_from.clone(),
        decoding: c.decoding.clone(),
        base_loss: base_m.loss,
        adapter_loss: adapter_m.loss,
        base_perplexity: base_m.perplexity,
        adapter_perplexity: adapter_m.perplexity,
        tokens_scored: c.tokens_scored,
        adapter_closer: Some(closer(|a, b| a > b)),
        base_closer: Some(closer(|a, b| a < b)),
        ties: Some(closer(|a, b| a == b)),
        samples,
        probes,
        seconds: c.seconds,
        error: c.error.clone(),
        // An evaluation job compares answers; the pairs are judged only after training.
        preference: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(id: &str, adapter: bool, loss: f64) -> ComparedModel {
        ComparedModel {
            id: id.into(),
            label: id.into(),
            base_model: "m".into(),
            adapter,
            loss: Some(loss),
            ..Default::default()
        }
    }

    fn answer(text: &str, score: Option<f64>) -> ComparedAnswer {
        ComparedAnswer {
            text: text.into(),
            score,
            changed: None,
        }
    }

    #[test]
    fn a_comparison_of_one_adapter_reads_as_its_evaluation() {
        let id = ArtifactId::new();
        let c = Comparison {
            version: 1,
            prompts_from: Some("validation".into()),
            models: vec![
                model("base:m", false, 2.0),
                model(&id.to_string(), true, 0.5),
            ],
            prompts: vec![
                ComparedPrompt {
                    prompt: "Capital of Zubrowka?".into(),
                    reference: Some("Lutz".into()),
                    answers: vec![answer("Paris", Some(0.0)), answer("Lutz.", Some(0.9))],
                    ..Default::default()
                },
                ComparedPrompt {
                    prompt: "Capital of France?".into(),
                    probe: true,
                    builtin: true,
                    answers: vec![answer("Paris.", None), answer("Lutz.", None)],
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let e = as_evaluation(&c, id).unwrap();
        assert_eq!((e.base_loss, e.adapter_loss), (Some(2.0), Some(0.5)));
        assert_eq!((e.samples.len(), e.probes.len()), (1, 1));
        assert_eq!(e.samples[0].contains_reference, Some(true));
        assert_eq!(
            (e.adapter_closer, e.base_closer, e.ties),
            (Some(1), Some(0), Some(0))
        );
        assert_eq!(e.probes_changed(), 1);
        assert_eq!(e.samples_from.as_deref(), Some("validation"));
        // Another model's id: not this comparison's.
        assert!(as_evaluation(&c, ArtifactId::new()).is_none());
    }

    #[test]
    fn a_damaged_comparison_is_refused_with_its_name() {
        for bad in [&b"not json"[..], b"[1, 2]", br#"{"models": 3}"#] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains("comparison.json is not valid"), "{e}");
        }
        assert_eq!(parse(br#"{"version": 1}"#).unwrap().version, 1);
    }
}
