//! Model artifacts: storing what a finished trainer wrote, listing, downloading.

use super::resolve::{IdKind, pick};
use super::{Engine, EngineError, Result};
use crate::backend::DoneSummary;
use crate::domain::*;
use crate::ids::*;
use crate::storage::{Bucket, check_path, object_path};
use crate::store::Page;
use crate::training;
use serde_json::json;
use std::path::{Path, PathBuf};

impl Engine {
    /// Copies the trainer's adapter files into `lora-models/{user}/{artifact}/`, checking every
    /// name (nothing may land outside the artifact's folder) and every sha256, and builds the
    /// artifact record with its quality metrics.
    pub(crate) async fn collect_artifact(
        &self,
        job: &TrainingJob,
        summary: &DoneSummary,
    ) -> Result<ModelArtifact> {
        let (id, files) = if self.uploads_by_url(job) {
            let id = remote_artifact_id(job);
            (id, self.verify_uploaded(job, id, &ADAPTER_FILES).await?)
        } else {
            let id = ArtifactId::new();
            (id, self.copy_output(job, id).await?)
        };
        let evaluation = self.read_evaluation(job, id, &files).await;
        let (job, summary) = (job.clone(), summary.clone());
        self.on_store(move |e| {
            if let Some(ev) = &evaluation {
                e.inner.store.put_evaluation(id, ev)?;
            }
            e.artifact_record(&job, &summary, id, files, evaluation.as_ref(), None)
        })
        .await
    }

    /// The record of a stored adapter: its name and version among the dataset's models, and
    /// its quality from the job's metrics up to step `upto` (all of them: `None`; store
    /// reads: off the async workers).
    pub(crate) fn artifact_record(
        &self,
        job: &TrainingJob,
        summary: &DoneSummary,
        id: ArtifactId,
        files: Vec<ArtifactFile>,
        evaluation: Option<&Evaluation>,
        upto: Option<u64>,
    ) -> Result<ModelArtifact> {
        let user = job.user_id;
        let mut metrics = self.inner.store.metrics(job.id, 0, usize::MAX)?;
        metrics.retain(|m| upto.is_none_or(|s| m.step <= s));
        let first = job
            .first_training_loss
            .or_else(|| metrics.iter().find_map(|m| m.training_loss));
        let last = metrics
            .iter()
            .rev()
            .find_map(|m| m.training_loss)
            .or(summary.final_training_loss);
        let val = summary
            .final_validation_loss
            .or_else(|| metrics.iter().rev().find_map(|m| m.validation_loss));
        let dataset = self.inner.store.dataset(job.dataset_id)?;
        let version = self
            .inner
            .store
            .artifacts(user, Page::ALL)?
            .iter()
            .filter(|a| a.dataset_id == job.dataset_id)
            .count() as u32
            + 1;
        let model_short = job
            .hyperparameters
            .base_model
            .rsplit('/')
            .next()
            .unwrap_or("model")
            .to_string();
        let name = format!(
            "{}-{}-lora",
            dataset
                .as_ref()
                .map(|d| d.name.as_str())
                .unwrap_or("dataset"),
            model_short
        );
        let t = now();
        let started = job.started_at.unwrap_or(t);
        Ok(ModelArtifact {
            id,
            user_id: user,
            job_id: job.id,
            dataset_id: job.dataset_id,
            name,
            version,
            status: ArtifactStatus::Stored,
            base_model: job.hyperparameters.base_model.clone(),
            quality_metrics: training::quality::quality_with(first, last, val, evaluation),
            training_summary: TrainingSummary {
                total_steps: summary.total_steps.unwrap_or(job.current_step),
                epochs: job.total_epochs,
                duration_seconds: (t - started).num_milliseconds().max(0) as f64 / 1000.0,
                train_tokens: summary.train_tokens,
                trainable_parameters: summary.trainable_parameters,
                total_parameters: summary.total_parameters,
                final_cost: job.current_cost,
                gpu_type: job.gpu_config.gpu_type.clone(),
                gpu_count: job.gpu_config.gpu_count,
            },
            configuration: JsonValue(json!({
                "preset": job.preset_id.as_str(),
                "hyperparameters": job.hyperparameters,
                "gpu_config": job.gpu_config,
            })),
            storage_bucket: Bucket::Models.name().into(),
            storage_path: object_path(&[&user.to_string(), &id.to_string()])?,
            files,
            // The model it was trained on from (`--from-model`).
            parent_model_id: job.init_model,
            kind: ModelKind::Adapter,
            export: None,
            created_at: t,
            updated_at: t,
            deleted_at: None,
        })
    }

    /// Copies the adapter from the job's output folder into the models bucket.
    pub(crate) async fn copy_output(
        &self,
        job: &TrainingJob,
        id: ArtifactId,
    ) -> Result<Vec<ArtifactFile>> {
        let out_root = self.output_root(job)?;
        let manifest: Vec<ArtifactFile> = if job.output_files.is_empty() {
            list_files(&out_root)?
                .into_iter()
                .map(|(path, size)| ArtifactFile {
                    path,
                    size,
                    sha256: String::new(),
                })
                .collect()
        } else {
            job.output_files.clone()
        };
        if manifest.is_empty() {
            return Err(EngineError::Invalid(format!(
                "the trainer wrote no files in {}",
                out_root.display()
            )));
        }
        // Every entry is checked before any byte is copied, so a manifest with one bad entry
        // leaves nothing behind in the models bucket.
        let mut sources = Vec::with_capacity(manifest.len());
        for f in &manifest {
            sources.push((f, contained_file(&out_root, &f.path)?));
        }
        let user = job.user_id;
        let mut files = Vec::new();
        for (f, real) in sources {
            let key = object_path(&[&user.to_string(), &id.to_string(), &f.path])?;
            let stored = self
                .inner
                .objects
                .put_file(Bucket::Models, &key, &real, &|_, _| {})
                .await?;
            if !f.sha256.is_empty() && stored.sha256 != f.sha256 {
                return Err(EngineError::Invalid(format!(
                    "`{}` does not match the sha256 the trainer reported",
                    f.path
                )));
            }
            files.push(ArtifactFile {
                path: f.path.clone(),
                size: stored.size,
                sha256: stored.sha256,
            });
        }
        Ok(files)
    }

    /// Checks what a remote trainer uploaded through its presigned URLs: every reported file
    /// is one the engine presigned (`presigned`), is in the models bucket with the reported
    /// size, and hashes to the reported sha256 (read back: the trainer's word is not taken).
    pub(crate) async fn verify_uploaded(
        &self,
        job: &TrainingJob,
        id: ArtifactId,
        presigned: &[&str],
    ) -> Result<Vec<ArtifactFile>> {
        if job.output_files.is_empty() {
            return Err(EngineError::Invalid(
                "the trainer reported no uploaded files".into(),
            ));
        }
        check_reported(job, presigned)?;
        let mut files = Vec::new();
        for f in &job.output_files {
            let key = object_path(&[&job.user_id.to_string(), &id.to_string(), &f.path])?;
            let got = self.inner.objects.size(Bucket::Models, &key).await?;
            if got != Some(f.size) {
                return Err(EngineError::Invalid(format!(
                    "`{}` is {} in the models bucket, but the trainer reported {} bytes",
                    f.path,
                    got.map(|n| format!("{n} bytes"))
                        .unwrap_or_else(|| "missing".into()),
                    f.size
                )));
            }
            let sha = self.hash_object(Bucket::Models, &key).await?;
            if !f.sha256.is_empty() && sha != f.sha256 {
                return Err(EngineError::Invalid(format!(
                    "`{}` in the models bucket does not match the sha256 the trainer reported",
                    f.path
                )));
            }
            files.push(ArtifactFile {
                path: f.path.clone(),
                size: f.size,
                sha256: sha,
            });
        }
        Ok(files)
    }

    async fn hash_object(&self, bucket: Bucket, key: &str) -> Result<String> {
        use sha2::Digest;
        use tokio::io::AsyncReadExt;
        let mut r = self.inner.objects.open(bucket, key).await?;
        let mut h = sha2::Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = r.read(&mut buf).await.map_err(|source| EngineError::Io {
                action: "reading",
                path: PathBuf::from(key),
                source,
            })?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(hex::encode(h.finalize()))
    }

    /// The folder the adapter is collected from: the job's own output folder (or one inside
    /// it), resolved. The trainer reports where it wrote (`artifact.dir`), but that report is
    /// not trusted: a trainer saying `/etc` must not get `/etc/passwd` stored as a model.
    pub(crate) fn output_root(&self, job: &TrainingJob) -> Result<PathBuf> {
        let expected = self.job_dir_path(job.id).join("output");
        let expected_real = expected.canonicalize().map_err(|source| EngineError::Io {
            action: "reading",
            path: expected.clone(),
            source,
        })?;
        let Some(reported) = job.output_dir.as_deref() else {
            return Ok(expected_real);
        };
        let reported = PathBuf::from(reported);
        let real = reported.canonicalize().map_err(|source| EngineError::Io {
            action: "reading",
            path: reported.clone(),
            source,
        })?;
        if !real.starts_with(&expected_real) {
            return Err(EngineError::Invalid(format!(
                "the trainer reported its adapter in {}, outside the job's output folder {}",
                reported.display(),
                expected.display()
            )));
        }
        Ok(real)
    }

    pub(crate) fn job_dir_path(&self, id: JobId) -> PathBuf {
        self.inner.paths.jobs_dir().join(id.to_string())
    }

    /// The active user's model artifacts, newest first.
    pub fn artifacts(&self, page: Page) -> Result<Vec<ModelArtifact>> {
        Ok(self.inner.store.artifacts(self.user, page)?)
    }

    pub fn artifact(&self, id: ArtifactId) -> Result<ModelArtifact> {
        self.inner
            .store
            .artifact(id)?
            .filter(|a| a.user_id == self.user && a.deleted_at.is_none())
            .ok_or_else(|| EngineError::NotFound {
                kind: IdKind::Model,
                query: id.to_string(),
            })
    }

    /// The caller's adapter `id`: what training on, evaluating and chatting take. An export
    /// is refused naming what it is and the adapter it came from.
    pub(crate) fn adapter(&self, id: ArtifactId, to: &str) -> Result<ModelArtifact> {
        let model = self.artifact(id)?;
        if model.kind == ModelKind::Adapter {
            return Ok(model);
        }
        Err(EngineError::Invalid(format!(
            "model {} is a {} export{}; {to} its adapter instead",
            id.short(),
            model.kind.as_str(),
            model
                .parent_model_id
                .map(|p| format!(" of model {}", p.short()))
                .unwrap_or_default()
        )))
    }

    pub fn resolve_artifact(&self, query: &str) -> Result<ArtifactId> {
        let all = self.artifacts(Page::ALL)?;
        pick(IdKind::Model, query, all.iter().map(|a| a.id))
    }

    /// Opens one file of an artifact for reading (a download over the API). Only files in the
    /// artifact's manifest can be opened.
    pub async fn open_artifact_file(
        &self,
        id: ArtifactId,
        file: &str,
    ) -> Result<Box<dyn tokio::io::AsyncRead + Send + Unpin>> {
        let a = self.on_store(move |e| e.artifact(id)).await?;
        if !a.files.iter().any(|f| f.path == file) {
            return Err(EngineError::NotFound {
                kind: IdKind::ModelFile,
                query: file.to_string(),
            });
        }
        let key = object_path(&[a.storage_path.as_str(), file])?;
        let entry = a
            .files
            .iter()
            .find(|f| f.path == file)
            .cloned()
            .expect("checked above");
        let stored = self.inner.objects.size(Bucket::Models, &key).await?;
        if stored.is_some_and(|n| n != entry.size) {
            return Err(EngineError::Invalid(format!(
                "`{file}` of model {} is {} bytes in the store but {} in its manifest: the stored \
                 file was changed or damaged; `brightrun doctor` checks the store",
                a.id.short(),
                stored.unwrap_or(0),
                entry.size
            )));
        }
        let reader = self.inner.objects.open(Bucket::Models, &key).await?;
        Ok(Box::new(crate::storage::verify::Verified::new(
            reader,
            format!("`{file}` of model {}", a.id.short()),
            entry.size,
            entry.sha256,
        )))
    }
}

/// The real path of the manifest entry `rel` under `root`: a safe relative name whose target,
/// symlinks followed, is a regular file inside `root`.
fn contained_file(root: &Path, rel: &str) -> Result<PathBuf> {
    check_path(rel)?;
    let src = root.join(rel);
    let real = src.canonicalize().map_err(|source| EngineError::Io {
        action: "reading",
        path: src.clone(),
        source,
    })?;
    if !real.starts_with(root) {
        return Err(EngineError::Invalid(format!(
            "the trainer's file `{rel}` points outside its output folder"
        )));
    }
    if !real.is_file() {
        return Err(EngineError::Invalid(format!(
            "the trainer's file `{rel}` is not a regular file"
        )));
    }
    Ok(real)
}

/// Regular files under `root`, as relative `/`-separated paths with sizes.
fn list_files(root: &Path) -> Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|source| EngineError::Io {
            action: "reading",
            path: dir.clone(),
            source,
        })?;
        for e in entries.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file()
                && let Ok(rel) = e.path().strip_prefix(root)
            {
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().to_string())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((rel, e.metadata().map(|m| m.len()).unwrap_or(0)));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The files a trainer may write for an adapter (PROTOCOL.md, "Spec fields"): each gets a
/// presigned PUT URL when the trainer runs remotely.
pub(crate) const ADAPTER_FILES: [&str; 11] = [
    // What the `evaluating` stage measured (`[evaluation]`), written beside the adapter.
    crate::engine::evaluation::EVALUATION_FILE,
    "adapter_config.json",
    "adapter_model.safetensors",
    "tokenizer_config.json",
    "tokenizer.json",
    "chat_template.jinja",
    "special_tokens_map.json",
    "tokenizer.model",
    "vocab.json",
    "merges.txt",
    "added_tokens.json",
];

/// The artifact id a remote attempt uploads under: fixed by (job, attempt) before the run, so
/// the presigned URLs can name its folder and a replayed finish finds the same files.
/// Refuses a trainer's report that names a file outside `allowed` (the files the engine asked
/// for), naming it.
pub(crate) fn check_reported(job: &TrainingJob, allowed: &[&str]) -> Result<()> {
    match job
        .output_files
        .iter()
        .find(|f| !allowed.contains(&f.path.as_str()))
    {
        Some(f) => Err(EngineError::Invalid(format!(
            "the trainer reported `{}`, which is not a file the engine asked for",
            crate::text::clean_line(&f.path)
        ))),
        None => Ok(()),
    }
}

pub(crate) fn remote_artifact_id(job: &TrainingJob) -> ArtifactId {
    let (hi, lo) = job.id.0.as_u64_pair();
    ArtifactId(uuid::Uuid::from_u64_pair(
        hi ^ 0x6172_7469_6661_6374,
        lo ^ u64::from(job.retry_count).rotate_left(29),
    ))
}
