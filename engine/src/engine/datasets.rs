//! Datasets: import (copy into the store and validate, in one pass over the file), queries,
//! rename, soft delete.

use super::notify::notify;
use super::{Engine, EngineError, Result};
use crate::api::Reason;
use crate::domain::*;
use crate::events::{EngineEvent, Progress, ProgressTask};
use crate::ids::*;
use crate::storage::Bucket;
use crate::storage::verify::Hashing;
use crate::store::Page;
use crate::validation::{self, ValidationOptions, ValidationReport};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;

/// What a new dataset is called and described as.
#[derive(Clone, Debug, Default)]
pub struct NewDataset {
    pub name: Option<String>,
    pub description: Option<String>,
}

impl Engine {
    /// Runs `f` on a copy of `dataset` off the async workers ([`Engine::on_store`]) and keeps
    /// what it made of it, whatever it answered.
    async fn on_dataset<T: Send + 'static>(
        &self,
        dataset: &mut Dataset,
        f: impl FnOnce(&Engine, &mut Dataset) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let mut copy = dataset.clone();
        let (copy, answer) = self
            .on_store(move |e| {
                let answer = f(e, &mut copy);
                Ok((copy, answer))
            })
            .await?;
        *dataset = copy;
        answer
    }

    /// Stores `dataset` as it is, off the async workers.
    pub(super) async fn put_dataset(&self, dataset: &Dataset) -> Result<()> {
        let d = dataset.clone();
        self.on_store(move |e| Ok(e.inner.store.put(&d)?)).await
    }

    /// [`Engine::record_verdict`] off the async workers.
    async fn record_verdict_off(
        &self,
        dataset: &mut Dataset,
        report: ValidationReport,
    ) -> Result<()> {
        self.on_dataset(dataset, move |e, d| e.record_verdict(d, report))
            .await
    }

    /// [`Engine::fail_dataset`] off the async workers.
    pub(super) async fn fail_dataset_off(
        &self,
        dataset: &mut Dataset,
        message: String,
    ) -> Result<()> {
        self.on_dataset(dataset, move |e, d| e.fail_dataset(d, message, Vec::new()))
            .await
    }

    /// Imports a file: creates the record (`uploading`), then copies the file into the store
    /// (size checked first, atomic, sha256) and, with a local store, validates it in the same
    /// pass, recording the verdict (`ready` or `error`); otherwise it is marked `validating`
    /// and the validator is woken. `progress` gets (bytes copied, total).
    pub async fn add_dataset(
        &self,
        file: &Path,
        new: NewDataset,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<Dataset> {
        let meta = std::fs::metadata(file).map_err(|source| EngineError::Io {
            action: "reading",
            path: file.to_path_buf(),
            source,
        })?;
        if !meta.is_file() {
            return Err(EngineError::Invalid(format!(
                "{} is not a regular file",
                file.display()
            )));
        }
        let file_name = file
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .filter(|n| !n.is_empty())
            .ok_or_else(|| EngineError::Invalid(format!("{} has no file name", file.display())))?;
        let source = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
        let (from, size) = (source.clone(), meta.len());
        let unfinished = self
            .on_store(move |e| e.unfinished_upload_of(&from, size))
            .await?;
        if let Some(mut unfinished) = unfinished {
            // The same file (path and size; the store checks its modification time before
            // keeping any stored part) whose upload broke off: continue it, not a second
            // dataset.
            tracing::info!(dataset = %unfinished.id, "resuming the unfinished upload");
            self.upload(&mut unfinished, progress).await?;
            return Ok(unfinished);
        }
        let mut dataset = self
            .on_store(move |e| {
                let d = e.new_dataset_record(
                    &file_name,
                    size,
                    new,
                    Some(source.to_string_lossy().to_string()),
                )?;
                e.inner.store.put(&d)?;
                Ok(d)
            })
            .await?;
        self.upload(&mut dataset, progress).await?;
        Ok(dataset)
    }

    /// Copies the dataset's source file into the store: with a local store in one pass that
    /// also validates ([`Engine::import_one_pass`]), else by the store's `put_file`, moving it
    /// to `validating`. On failure the record goes to `error` with the reason; the source file
    /// is never touched.
    pub(crate) async fn upload(
        &self,
        dataset: &mut Dataset,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<()> {
        let id = dataset.id;
        // One upload of a dataset at a time: the validation task's resume of `uploading`
        // datasets must not start a second one beside a running `datasets add`.
        if !self.inner.uploads.lock().expect("uploads lock").insert(id) {
            return Err(EngineError::conflict(
                Reason::UploadInProgress,
                format!("dataset {} is already being uploaded", id.short()),
            ));
        }
        if dataset.error_message.take().is_some() {
            // It uploads again: the note that it was interrupted no longer holds.
            dataset.updated_at = now();
            if let Err(e) = self.put_dataset(dataset).await {
                self.inner.uploads.lock().expect("uploads lock").remove(&id);
                return Err(e);
            }
        }
        let result = match self
            .inner
            .objects
            .local_path(Bucket::Datasets, &dataset.storage_path)
        {
            Some(dest) => self.import_one_pass(dataset, dest, progress).await,
            None => self.import_remote(dataset, progress).await,
        };
        self.inner.uploads.lock().expect("uploads lock").remove(&id);
        result
    }

    /// The import into a remote store (S3): the upload reads the source once and hands every
    /// chunk to the validator as well, so the verdict comes with the upload, without a local
    /// copy. A store that cannot feed the validator leaves the dataset `validating` for the
    /// validation task, which streams the object back.
    async fn import_remote(
        &self,
        dataset: &mut Dataset,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<()> {
        let source = dataset.source_path.clone().unwrap_or_default();
        let store = &self.inner.store;
        let id = dataset.id;
        let opts = self.validation_options()?;
        let file_name = dataset.file_name.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel::<Arc<Vec<u8>>>(8);
        let validator = tokio::task::spawn_blocking(move || {
            let reader = ChunkReader {
                rx,
                chunk: Arc::new(Vec::new()),
                at: 0,
            };
            validation::validate_reader(reader, &file_name, &opts, &mut |_| {})
        });
        let last = std::sync::Mutex::new(0u64);
        let report = |done: u64, total: u64| {
            progress(done, total);
            let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
            publish_progress(
                store,
                ProgressTask::Upload(id),
                "uploading and validating",
                &mut last,
                done,
                total,
            );
        };
        let tee: crate::storage::ChunkTee = Box::new(move |chunk| tx.send(chunk).is_ok());
        let uploaded = self
            .inner
            .objects
            .put_file_tee(
                Bucket::Datasets,
                &dataset.storage_path,
                Path::new(&source),
                &report,
                tee,
            )
            .await;
        let verdict = validator.await;
        match uploaded {
            Ok((obj, teed)) => {
                dataset.file_size = obj.size;
                dataset.sha256 = Some(obj.sha256);
                match verdict {
                    Ok(Ok(report)) if teed => self.record_verdict_off(dataset, report).await?,
                    _ => {
                        dataset.status = DatasetStatus::Validating;
                        dataset.updated_at = now();
                        self.put_dataset(dataset).await?;
                        self.inner.wake_validation.notify_one();
                    }
                }
                Ok(())
            }
            Err(e) if e.is_transient() => {
                // Left `uploading`: the parts sent are journaled, and running the same
                // `datasets add` again (or `datasets resume`) continues from there.
                Err(e.into())
            }
            Err(e) => {
                let message = format!("upload failed: {e}");
                self.fail_dataset_off(dataset, message).await?;
                Err(e.into())
            }
        }
    }

    /// The one-pass import: the source is read once, in chunks; each chunk is hashed and
    /// written to the store (`copy_atomic_blocking`) on one thread and handed to the validator
    /// on another, so the import costs about what validation alone does. The verdict is
    /// recorded at once, and remembered so that the `validate_dataset` call that follows an
    /// import (the CLI's `datasets add`) does not read the file again.
    async fn import_one_pass(
        &self,
        dataset: &mut Dataset,
        dest: std::path::PathBuf,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<()> {
        let source = std::path::PathBuf::from(dataset.source_path.clone().unwrap_or_default());
        let opts = self.validation_options()?;
        let fingerprint = options_fingerprint(&opts);
        let file_name = dataset.file_name.clone();
        // The latest (done, total) only: a copy faster than its reader overwrites what was not
        // read yet instead of queueing every chunk's report.
        let (tx, mut rx) = tokio::sync::watch::channel::<(u64, u64)>((0, 0));
        let work = tokio::task::spawn_blocking(move || {
            one_pass(&source, &dest, &file_name, &opts, &mut |done, total| {
                let _ = tx.send((done, total));
            })
        });
        let store = &self.inner.store;
        let id = dataset.id;
        let mut last = 0u64;
        // Ends when the copy drops its sender (finished or failed).
        while rx.changed().await.is_ok() {
            let (done, total) = *rx.borrow_and_update();
            progress(done, total);
            publish_progress(
                store,
                ProgressTask::Upload(id),
                "uploading and validating",
                &mut last,
                done,
                total,
            );
        }
        let outcome = work
            .await
            .map_err(|e| EngineError::Invalid(format!("the import stopped: {e}")))?;
        match outcome {
            Ok((size, sha256, report)) => {
                dataset.file_size = size;
                dataset.sha256 = Some(sha256);
                self.record_verdict_off(dataset, report).await?;
                if let Ok(stamp) = stored_stamp(self, dataset) {
                    self.inner
                        .fresh_verdicts
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(id, (stamp, fingerprint));
                }
                Ok(())
            }
            Err(e) => {
                let message = format!("upload failed: {e}");
                self.fail_dataset_off(dataset, message).await?;
                Err(e.into())
            }
        }
    }

    pub(crate) fn fail_dataset(
        &self,
        dataset: &mut Dataset,
        message: String,
        issues: Vec<ValidationIssue>,
    ) -> Result<()> {
        dataset.status = DatasetStatus::Error;
        dataset.training_ready = false;
        dataset.error_message = Some(message.clone());
        if !issues.is_empty() {
            dataset.validation_errors = issues;
        }
        dataset.updated_at = now();
        let user = dataset.user_id;
        self.inner.store.write(|w| {
            w.put(&*dataset)?;
            notify(
                w,
                user,
                NotificationType::DatasetError,
                format!("Dataset “{}” has problems", dataset.name),
                message,
                Some(Link::Dataset(dataset.id)),
                json!({"dataset_id": dataset.id}),
            )?;
            Ok(())
        })?;
        Ok(())
    }

    /// The options the validator runs with, from config. Tokens are counted exactly (with the
    /// chat template's overhead when the tokenizer has a template) with the `tokenizer.json`
    /// that `validation.tokenizer` names, else with the default base model's tokenizer when
    /// it is in the local Hugging Face cache; otherwise they are estimated.
    pub fn validation_options(&self) -> Result<ValidationOptions> {
        let v = &self.inner.config.validation;
        let model = match &v.tokenizer {
            Some(path) => {
                Some(crate::tokens::load(path).map_err(|e| EngineError::Invalid(e.to_string()))?)
            }
            None => self.model_tokenizer(&self.inner.config.training.default_base_model),
        };
        Ok(ValidationOptions {
            holdout_fraction: v.holdout_fraction,
            split_seed: v.split_seed,
            max_seq_length: v.max_seq_length,
            tokenizer: model.as_ref().map(|m| m.tokenizer.clone()),
            max_issues_kept: 100,
            chat_overhead: model.and_then(|m| m.overhead),
        })
    }

    /// A base model's tokenizer from the local Hugging Face cache (or the model's own folder),
    /// loaded once per engine; `None` when it is not there or cannot be used (then tokens are
    /// estimated, and say so).
    pub(crate) fn model_tokenizer(&self, model: &str) -> Option<crate::tokens::ModelTokenizer> {
        let mut cache = self
            .inner
            .tokenizers
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        cache
            .entry(model.to_string())
            .or_insert_with(|| {
                let dir = crate::tokens::find_model_dir(model, &crate::tokens::hf_cache_roots())?;
                crate::tokens::load(&dir)
                    .map_err(|e| tracing::warn!("{e}; token counts are estimated"))
                    .ok()
            })
            .clone()
    }

    /// A ready dataset's statistics with its tokens counted by `model`'s tokenizer, for a
    /// job's estimate: the dataset's own when the model's tokenizer is not available (or
    /// the dataset was counted with it already), else counted once (a validation pass with
    /// that tokenizer) and remembered for the engine's life.
    pub(crate) fn statistics_for_model(
        &self,
        dataset: &Dataset,
        model: &str,
    ) -> Option<DatasetStatistics> {
        let own = dataset.statistics.clone()?;
        if model == self.inner.config.training.default_base_model
            && self.inner.config.validation.tokenizer.is_none()
        {
            return Some(own);
        }
        let key = (dataset.id, model.to_string());
        if let Some(s) = self
            .inner
            .model_stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Some(s.clone());
        }
        let Some(m) = self.model_tokenizer(model) else {
            return Some(own);
        };
        let path = self
            .inner
            .objects
            .local_path(Bucket::Datasets, &dataset.storage_path)?;
        let opts = ValidationOptions {
            tokenizer: Some(m.tokenizer.clone()),
            chat_overhead: m.overhead,
            ..self.validation_options().ok()?
        };
        let stats = validation::validate_path(&path, &opts, &mut |_| {})
            .map(|r| r.statistics)
            .unwrap_or(own);
        self.inner
            .model_stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, stats.clone());
        Some(stats)
    }

    /// Validates a stored dataset now and records the verdict (`ready` or `error`) with its
    /// notification. Used by the validation task and by `datasets validate`.
    ///
    /// One validation of a dataset runs at a time: a second request (the dashboard's while the
    /// validation task is at it) waits for the running one and gets its verdict.
    pub async fn validate_dataset(&self, id: DatasetId) -> Result<Dataset> {
        let gate = self
            .inner
            .validating
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id)
            .or_default()
            .clone();
        let result = match gate.clone().try_lock_owned() {
            Ok(_running) => self.validate_dataset_now(id).await,
            Err(_) => {
                let _done = gate.clone().lock_owned().await;
                self.on_store(move |e| e.dataset(id)).await
            }
        };
        let mut gates = self
            .inner
            .validating
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // The map's copy and this one: nobody else is waiting, so the gate can go.
        if Arc::strong_count(&gate) <= 2 {
            gates.remove(&id);
        }
        result
    }

    async fn validate_dataset_now(&self, id: DatasetId) -> Result<Dataset> {
        let mut dataset = self.on_store(move |e| e.dataset(id)).await?;
        // The verdict of the one-pass import is used once, by the call that follows it, when
        // the stored file and the options are still those it was given with.
        let fresh = self
            .inner
            .fresh_verdicts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        if let Some((stamp, fingerprint)) = fresh
            && matches!(dataset.status, DatasetStatus::Ready | DatasetStatus::Error)
            && stored_stamp(self, &dataset).is_ok_and(|s| s == stamp)
            && options_fingerprint(&self.validation_options()?) == fingerprint
        {
            return Ok(dataset);
        }
        if dataset.status == DatasetStatus::Uploading {
            return Err(EngineError::conflict(
                Reason::DatasetNotReady,
                format!("dataset {} is still uploading", id.short()),
            ));
        }
        let Some(path) = self
            .inner
            .objects
            .local_path(Bucket::Datasets, &dataset.storage_path)
        else {
            return self.validate_streamed(dataset).await;
        };
        if !path.exists() {
            let msg = format!(
                "the stored file {}/{} is missing",
                dataset.storage_bucket, dataset.storage_path
            );
            self.fail_dataset_off(&mut dataset, msg).await?;
            return Ok(dataset);
        }
        dataset.status = DatasetStatus::Validating;
        dataset.error_message = None;
        dataset.updated_at = now();
        self.put_dataset(&dataset).await?;
        // Said once the record is `validating`: an interrupted run is then resumed (and the
        // kill-matrix test kills the process at this moment).
        tracing::info!(dataset = %id, bytes = dataset.file_size, "validating the stored file");
        let opts = self.validation_options()?;
        let store = self.inner.store.clone();
        let total = dataset.file_size;
        let file_name = dataset.file_name.clone();
        let report = tokio::task::spawn_blocking(move || {
            let mut last = 0u64;
            let file = std::fs::File::open(&path).map_err(|e| (path.clone(), e))?;
            let mut hashing = Hashing::new(file);
            let report =
                validation::validate_reader(&mut hashing, &file_name, &opts, &mut |done| {
                    publish_progress(
                        &store,
                        ProgressTask::Validation(id),
                        "validating",
                        &mut last,
                        done,
                        total,
                    );
                });
            report
                .and_then(|r| Ok((r, hashing.finish()?)))
                .map_err(|e| (path, e))
        })
        .await
        .map_err(|e| EngineError::Invalid(format!("the validator stopped: {e}")))?;
        match report {
            Ok((report, sha)) => {
                self.record_checked_verdict(&mut dataset, report, &sha)
                    .await?
            }
            Err((path, e)) => {
                let why = format!("cannot read {}: {e}", path.display());
                self.fail_dataset_off(&mut dataset, why).await?;
            }
        }
        Ok(dataset)
    }

    /// Records a validation's verdict when the bytes validated are those uploaded (their
    /// sha256 is the record's); otherwise the dataset fails, saying its stored file changed
    /// (training on it is refused for the same reason).
    async fn record_checked_verdict(
        &self,
        dataset: &mut Dataset,
        report: ValidationReport,
        sha256: &str,
    ) -> Result<()> {
        match dataset.sha256.as_deref() {
            Some(recorded) if recorded != sha256 => {
                let why = format!(
                    "the stored file {}/{} is not the one uploaded (its sha256 is {}, the upload's \
                     was {}): it was replaced or damaged in the store; add the file again",
                    dataset.storage_bucket,
                    dataset.storage_path,
                    &sha256[..12],
                    &recorded[..recorded.len().min(12)]
                );
                self.fail_dataset_off(dataset, why).await
            }
            _ => self.record_verdict_off(dataset, report).await,
        }
    }

    /// Re-validation in a remote store: the object is streamed through the validator, with no
    /// local copy.
    async fn validate_streamed(&self, mut dataset: Dataset) -> Result<Dataset> {
        let body = match self
            .inner
            .objects
            .open(Bucket::Datasets, &dataset.storage_path)
            .await
        {
            Ok(b) => b,
            Err(crate::storage::StorageError::NotFound { .. }) => {
                let msg = format!(
                    "the stored file {}/{} is missing",
                    dataset.storage_bucket, dataset.storage_path
                );
                self.fail_dataset_off(&mut dataset, msg).await?;
                return Ok(dataset);
            }
            Err(e) => return Err(e.into()),
        };
        dataset.status = DatasetStatus::Validating;
        dataset.error_message = None;
        dataset.updated_at = now();
        self.put_dataset(&dataset).await?;
        let opts = self.validation_options()?;
        let file_name = dataset.file_name.clone();
        let report = tokio::task::spawn_blocking(move || {
            let reader =
                std::io::BufReader::with_capacity(1 << 20, tokio_util::io::SyncIoBridge::new(body));
            let mut hashing = Hashing::new(reader);
            let report = validation::validate_reader(&mut hashing, &file_name, &opts, &mut |_| {})?;
            Ok::<_, std::io::Error>((report, hashing.finish()?))
        })
        .await
        .map_err(|e| EngineError::Invalid(format!("the validator stopped: {e}")))?;
        match report {
            Ok((report, sha)) => {
                self.record_checked_verdict(&mut dataset, report, &sha)
                    .await?
            }
            Err(e) => {
                // The store stopped answering mid-way: the dataset stays as it was, to be
                // validated again.
                return Err(EngineError::Storage(crate::storage::StorageError::Other(
                    format!(
                        "reading {}/{}: {e}",
                        dataset.storage_bucket, dataset.storage_path
                    ),
                )));
            }
        }
        Ok(dataset)
    }

    fn record_verdict(&self, dataset: &mut Dataset, report: ValidationReport) -> Result<()> {
        let stats = report.statistics;
        dataset.format = report.format;
        dataset.total_training_pairs = Some(stats.total_training_pairs);
        dataset.total_validation_pairs = Some(stats.total_validation_pairs);
        dataset.total_tokens = Some(stats.total_tokens);
        dataset.validation_errors = report.issues;
        dataset.sample_data = report.sample;
        dataset.validated_at = Some(now());
        dataset.training_ready = report.training_ready;
        dataset.updated_at = now();
        let errors = stats.error_count;
        let examples = stats.total_examples;
        dataset.statistics = Some(stats);
        if report.training_ready {
            dataset.status = DatasetStatus::Ready;
            dataset.error_message = None;
            let user = dataset.user_id;
            self.inner.store.write(|w| {
                w.put(&*dataset)?;
                notify(
                    w,
                    user,
                    NotificationType::DatasetReady,
                    format!("Dataset “{}” is ready", dataset.name),
                    format!(
                        "{}, {}{}",
                        crate::wording::counted(examples, "example"),
                        crate::wording::counted(dataset.total_tokens.unwrap_or(0), "token"),
                        dataset
                            .format
                            .map(|f| format!(", format {}", f.as_str()))
                            .unwrap_or_default()
                    ),
                    Some(Link::Dataset(dataset.id)),
                    json!({"dataset_id": dataset.id, "examples": examples}),
                )?;
                Ok(())
            })?;
        } else {
            // The format is named even for a rejected file, when it was recognised.
            let what = dataset
                .format
                .map(|f| format!("{} file: ", f.label()))
                .unwrap_or_default();
            let message = if errors == 0 {
                format!("{what}the file holds no usable training examples")
            } else {
                format!(
                    "{what}{errors} problem{} found; the first is on line {}",
                    if errors == 1 { "" } else { "s" },
                    dataset
                        .validation_errors
                        .iter()
                        .find(|i| i.severity == Severity::Error)
                        .map(|i| i.line)
                        .unwrap_or(0)
                )
            };
            let issues = std::mem::take(&mut dataset.validation_errors);
            self.fail_dataset(dataset, message, issues)?;
        }
        Ok(())
    }

    pub fn dataset(&self, id: DatasetId) -> Result<Dataset> {
        self.inner
            .store
            .dataset(id)?
            .filter(|d| d.deleted_at.is_none() && d.user_id == self.user)
            .ok_or_else(|| EngineError::NotFound {
                kind: super::IdKind::Dataset,
                query: id.to_string(),
            })
    }

    /// The active user's datasets, newest first.
    pub fn datasets(&self, status: Option<DatasetStatus>, page: Page) -> Result<Vec<Dataset>> {
        Ok(self.inner.store.datasets(self.user, status, page)?)
    }

    pub fn rename_dataset(&self, id: DatasetId, name: &str) -> Result<Dataset> {
        let name = name.trim();
        check_name(name)?;
        self.update_dataset(id, |d| d.name = name.to_string())
    }

    pub fn describe_dataset(&self, id: DatasetId, description: &str) -> Result<Dataset> {
        let d = description.trim().to_string();
        self.update_dataset(id, |ds| ds.description = (!d.is_empty()).then_some(d))
    }

    fn update_dataset(&self, id: DatasetId, change: impl FnOnce(&mut Dataset)) -> Result<Dataset> {
        let mut d = self.dataset(id)?;
        change(&mut d);
        d.updated_at = now();
        self.inner.store.put(&d)?;
        Ok(d)
    }

    /// Soft-deletes a dataset and removes its stored file. Refused while an active job uses it.
    /// Soft-deletes a dataset (the seed's `deleted_at`); with `purge` its stored object goes
    /// too. Refused while an active job uses it.
    pub async fn delete_dataset(&self, id: DatasetId, purge: bool) -> Result<Dataset> {
        let d = self.on_store(move |e| e.soft_delete_dataset(id)).await?;
        if purge {
            self.inner
                .objects
                .delete(Bucket::Datasets, &d.storage_path)
                .await?;
        }
        Ok(d)
    }

    /// [`Engine::delete_dataset`]'s record work: refused while an active job uses it.
    fn soft_delete_dataset(&self, id: DatasetId) -> Result<Dataset> {
        self.dataset(id)?;
        // The check and the soft delete are one write transaction: a job queued on this
        // dataset at the same moment either comes first (and the delete is refused) or finds
        // the dataset deleted (and is refused itself); see `Engine::queue`.
        let d = self.inner.store.write(|w| {
            let Some(mut d) = w.get::<Dataset>(&id.bytes())? else {
                return Ok(Err(EngineError::NotFound {
                    kind: super::IdKind::Dataset,
                    query: id.to_string(),
                }));
            };
            let active: Vec<String> = w
                .jobs_for_dataset(id)?
                .into_iter()
                .filter(|j| j.status.is_active())
                .map(|j| format!("{} ({})", j.id.short(), j.status.as_str()))
                .collect();
            if !active.is_empty() {
                return Ok(Err(EngineError::conflict(
                    Reason::InUse,
                    format!(
                        "dataset {} is used by active job{} {}; cancel {} first",
                        id.short(),
                        if active.len() == 1 { "" } else { "s" },
                        active.join(", "),
                        if active.len() == 1 { "it" } else { "them" },
                    ),
                )));
            }
            if d.deleted_at.is_none() {
                d.deleted_at = Some(now());
                d.updated_at = now();
                w.put(&d)?;
            }
            Ok(Ok(d))
        })??;
        Ok(d)
    }

    /// This user's dataset still `uploading` from `source` (with this size), whose upload is not
    /// running now: one a killed or interrupted `datasets add` left.
    fn unfinished_upload_of(&self, source: &Path, size: u64) -> Result<Option<Dataset>> {
        let source = source.to_string_lossy();
        Ok(self
            .datasets(Some(DatasetStatus::Uploading), Page::ALL)?
            .into_iter()
            .find(|d| {
                d.source_path.as_deref() == Some(&*source)
                    && d.file_size == size
                    && !self.awaiting_upload(d)
            }))
    }

    /// `datasets resume ID`: continues an upload that broke off, from its source file (with
    /// S3, the parts already stored are not sent again).
    pub async fn resume_dataset(
        &self,
        query: &str,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<Dataset> {
        let query = query.to_string();
        let mut d = self
            .on_store(move |e| e.dataset(e.resolve_dataset(&query)?))
            .await?;
        if d.status != DatasetStatus::Uploading {
            return Err(EngineError::conflict(
                Reason::WrongState,
                format!(
                    "dataset {} is {}, not uploading; nothing to resume",
                    d.id.short(),
                    d.status.as_str()
                ),
            ));
        }
        if self.awaiting_upload(&d) {
            return Err(EngineError::conflict(
                Reason::UploadInProgress,
                format!("dataset {} is being uploaded right now", d.id.short()),
            ));
        }
        let source = d.source_path.clone().unwrap_or_default();
        if source.is_empty() || !Path::new(&source).is_file() {
            return Err(EngineError::Invalid(format!(
                "the source file of dataset {} ({}) is gone; add the file again",
                d.id.short(),
                if source.is_empty() {
                    "streamed"
                } else {
                    &source
                }
            )));
        }
        self.upload(&mut d, progress).await?;
        Ok(d)
    }

    /// Datasets left mid-way by a previous run: uploads are redone from their source file,
    /// validations are rerun. Returns how many were picked up.
    ///
    /// One dataset that cannot be picked up does not hold up the others: its error is logged
    /// with its id and the rest go on.
    pub async fn resume_pending_datasets(&self) -> Result<usize> {
        let mut n = 0;
        let uploading = self
            .on_store(|e| e.datasets(Some(DatasetStatus::Uploading), Page::ALL))
            .await?;
        for mut d in uploading {
            if self.awaiting_upload(&d) {
                continue;
            }
            n += 1;
            let source_ok = d
                .source_path
                .as_deref()
                .is_some_and(|p| Path::new(p).is_file());
            let picked_up = if source_ok {
                self.upload(&mut d, &|_, _| {}).await
            } else {
                let msg = format!(
                    "the upload was interrupted and the source file {} is gone; add it again",
                    d.source_path.as_deref().unwrap_or("?")
                );
                self.fail_dataset_off(&mut d, msg).await
            };
            if let Err(e) = picked_up {
                tracing::warn!(dataset = %d.id, "cannot resume the interrupted upload: {e}");
            }
        }
        let validating = self
            .on_store(|e| e.datasets(Some(DatasetStatus::Validating), Page::ALL))
            .await?;
        for d in validating {
            n += 1;
            if let Err(e) = self.validate_dataset(d.id).await {
                tracing::warn!(dataset = %d.id, "cannot validate: {e}");
            }
        }
        Ok(n)
    }
}

/// Publishes a progress event every 8 MB (and at the end), so a large file does not flood
/// the event channel.
fn publish_progress(
    store: &crate::store::Store,
    task: ProgressTask,
    message: &str,
    last: &mut u64,
    done: u64,
    total: u64,
) {
    if done - *last >= 8 << 20 || done == total {
        *last = done;
        store.publish(EngineEvent::Progress(Progress {
            task,
            done,
            total: Some(total),
            message: message.into(),
        }));
    }
}

/// What identifies the stored file's content cheaply: its size and modification time.
fn stored_stamp(
    engine: &Engine,
    dataset: &Dataset,
) -> std::io::Result<(u64, std::time::SystemTime)> {
    let path = engine
        .inner
        .objects
        .local_path(Bucket::Datasets, &dataset.storage_path)
        .ok_or_else(|| std::io::Error::other("not a local store"))?;
    let meta = std::fs::metadata(path)?;
    Ok((meta.len(), meta.modified()?))
}

/// The validation options that change a verdict, as a comparable string.
fn options_fingerprint(o: &ValidationOptions) -> String {
    format!(
        "{}:{}:{}:{}:{:?}",
        o.holdout_fraction,
        o.split_seed,
        o.max_seq_length,
        o.tokenizer.is_some(),
        o.chat_overhead
    )
}

/// Hands the chunks the copy reads to the validator on another thread, through a bounded
/// channel (the copy waits when the validator is behind), as a `Read`.
struct ChunkReader {
    rx: std::sync::mpsc::Receiver<Arc<Vec<u8>>>,
    chunk: Arc<Vec<u8>>,
    at: usize,
}

impl std::io::Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.recv() {
                Ok(c) => {
                    self.chunk = c;
                    self.at = 0;
                }
                Err(_) => return Ok(0), // the copy is done (or failed)
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Copies `source` to `dest` (hashing) and validates it from the same reads. Returns the
/// size, the sha256 and the report.
fn one_pass(
    source: &Path,
    dest: &Path,
    file_name: &str,
    opts: &ValidationOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> std::result::Result<(u64, String, ValidationReport), crate::storage::StorageError> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Arc<Vec<u8>>>(8);
    std::thread::scope(|scope| {
        let validator = scope.spawn(move || {
            let reader = ChunkReader {
                rx,
                chunk: Arc::new(Vec::new()),
                at: 0,
            };
            validation::validate_reader(reader, file_name, opts, &mut |_| {})
        });
        let copied = crate::storage::copy_atomic_blocking(
            source,
            dest,
            Some((Bucket::Datasets.max_object_size(), Bucket::Datasets)),
            &mut |chunk, done, total| {
                progress(done, total);
                tx.send(chunk).is_ok()
            },
        );
        drop(tx);
        let report = validator.join();
        let (size, sha256) = copied?;
        match report {
            Ok(Ok(report)) => Ok((size, sha256, report)),
            Ok(Err(e)) => Err(crate::storage::StorageError::Other(format!(
                "validating {}: {e}",
                source.display()
            ))),
            Err(_) => Err(crate::storage::StorageError::Other(
                "the validator stopped unexpectedly".into(),
            )),
        }
    })
}

pub(crate) fn check_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(EngineError::Invalid(
            "a dataset name cannot be empty".into(),
        ));
    }
    if name.chars().count() > 200 {
        return Err(EngineError::Invalid(
            "a dataset name is at most 200 characters".into(),
        ));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(EngineError::Invalid(
            "a dataset name cannot hold control characters".into(),
        ));
    }
    Ok(())
}

/// What an `uploading` record says once nothing uploads it any more: a file added by path
/// can be resumed from it; one streamed over the API has no file here to resume from.
pub(crate) fn interrupted_note(d: &Dataset) -> String {
    let id = d.id;
    if d.source_path.as_deref().is_some_and(|s| !s.is_empty()) {
        format!(
            "the upload was interrupted; `brightrun datasets resume {id}` continues it (from the \
             source file), `brightrun datasets rm {id}` deletes it"
        )
    } else {
        format!(
            "the upload was interrupted; send the file again (PUT /api/datasets/{id}/upload), \
             or `brightrun datasets rm {id}` deletes it"
        )
    }
}

/// What a `validating` record says once nothing validates it any more.
fn interrupted_validation_note(id: DatasetId) -> String {
    format!("the validation was interrupted; `brightrun datasets validate {id}` runs it again")
}

/// At open, every `uploading` or `validating` record belongs to a process that is gone (the
/// store has one owner at a time), so each says it was interrupted and what to do, instead of
/// "uploading" with nothing behind it. A dashboard or daemon then picks up by itself those it
/// can (the note goes when the upload or validation starts again).
pub(crate) fn note_interrupted_uploads(store: &crate::store::Store) -> Result<usize> {
    let mut stuck = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let chunk = store.scan::<Dataset>(after.as_deref(), 1000)?;
        stuck.extend(chunk.items.into_iter().filter(|d| {
            matches!(
                d.status,
                DatasetStatus::Uploading | DatasetStatus::Validating
            ) && d.deleted_at.is_none()
                && d.error_message.is_none()
        }));
        match chunk.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    if stuck.is_empty() {
        return Ok(0);
    }
    store.write(|w| {
        for d in &mut stuck {
            d.error_message = Some(if d.status == DatasetStatus::Uploading {
                interrupted_note(d)
            } else {
                interrupted_validation_note(d.id)
            });
            d.updated_at = now();
            w.put(&*d)?;
        }
        Ok(())
    })?;
    tracing::warn!(
        "{} interrupted upload(s) or validation(s) found at start",
        stuck.len()
    );
    Ok(stuck.len())
}
