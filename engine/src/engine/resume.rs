//! Continuing a run instead of restarting it: a retried job starts from a checkpoint of the
//! job it retries (its latest one, or a chosen step), and its trainer gets that checkpoint as
//! `resume_from`, so the run goes on where it stopped (the trainer restores the optimizer,
//! the scheduler, the RNG and the data order).
//!
//! A checkpoint is usable where its run can reach it: its stored archive (see
//! [`super::checkpoints`]) from any backend, its folder only on this machine when it ran
//! here (the folder is used first there: nothing to copy). The archive's size is checked when
//! the retry is asked for and its sha256 before anything is extracted, so a missing or
//! damaged checkpoint is named, with the earlier ones and `--from-scratch` offered, and
//! nothing half-restored trains on.

use super::{Engine, EngineError, Result};
use crate::backend::DataAccess;
use crate::backend::{DoneSummary, ResumeRef};
use crate::domain::{
    ArtifactFile, Checkpoint, Link, ModelArtifact, NotificationType, ResumePoint, TrainingJob,
};
use crate::ids::ArtifactId;
use crate::ids::JobId;
use crate::storage::{Bucket, object_path};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where a retried job starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryFrom {
    /// The retried job's latest usable checkpoint, else step 0.
    Latest,
    /// Step 0.
    Scratch,
    /// The retried job's checkpoint at this step (refused when it has none there).
    Step(u64),
}

impl RetryFrom {
    /// From the request's fields (`from_scratch` with a `checkpoint` is refused).
    pub fn of(from_scratch: bool, checkpoint: Option<u64>) -> Result<Self> {
        match (from_scratch, checkpoint) {
            (true, Some(_)) => Err(EngineError::InvalidField {
                field: "checkpoint".into(),
                message: "a retry from scratch takes no checkpoint".into(),
            }),
            (true, None) => Ok(Self::Scratch),
            (false, Some(step)) => Ok(Self::Step(step)),
            (false, None) => Ok(Self::Latest),
        }
    }
}

/// A checkpoint a run can continue from: its folder on this machine, or its stored archive.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Source {
    Folder(String),
    Stored(Checkpoint),
}

impl Engine {
    /// The folders of `job`'s checkpoints on this machine, by step: those its trainer
    /// reported, and the complete ones in its checkpoint folder it had no time to report (a
    /// cancel ends the job before the trainer's last checkpoint is read).
    fn folders_here(&self, job: JobId) -> Result<BTreeMap<u64, String>> {
        let mut found: BTreeMap<u64, String> = self
            .inner
            .store
            .checkpoints(job)?
            .into_iter()
            .filter_map(|c| c.folder.map(|f| (c.step, f)))
            .filter(|(_, f)| Path::new(f).join("trainer_state.json").is_file())
            .collect();
        let folder = self.job_dir_path(job).join("checkpoints");
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let Some(step) = name
                .to_str()
                .and_then(|n| n.strip_prefix("checkpoint-"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            // The Trainer writes its state file after the weights, optimizer and RNG.
            if entry.path().join("trainer_state.json").is_file() {
                found
                    .entry(step)
                    .or_insert_with(|| entry.path().to_string_lossy().into_owned());
            }
        }
        Ok(found)
    }

    /// The checkpoints of `job` a run on a backend with `access` can continue from, by step:
    /// its stored archives, and (a run here of a job that ran here) its folders, preferred.
    pub(crate) fn usable_checkpoints(
        &self,
        job: &TrainingJob,
        access: DataAccess,
    ) -> Result<BTreeMap<u64, Source>> {
        let mut found: BTreeMap<u64, Source> = self
            .inner
            .store
            .checkpoints(job.id)?
            .into_iter()
            .filter(Checkpoint::is_stored)
            .map(|c| (c.step, Source::Stored(c)))
            .collect();
        // A remote trainer's folders are on its worker, whatever this machine holds.
        let ran_here = self.data_access(&job.gpu_config.backend) == DataAccess::Paths;
        if access == DataAccess::Paths && ran_here {
            for (step, folder) in self.folders_here(job.id)? {
                found.insert(step, Source::Folder(folder));
            }
        }
        Ok(found)
    }

    /// Where a retry of `old` on a backend with `access` starts: one of its usable
    /// checkpoints, or (having none of its own) the point it had itself resumed from, or
    /// step 0.
    pub(crate) fn resume_point(
        &self,
        old: &TrainingJob,
        from: RetryFrom,
        access: DataAccess,
    ) -> Result<Option<ResumePoint>> {
        let usable = self.usable_checkpoints(old, access)?;
        let at = |step: u64| ResumePoint {
            job_id: old.id,
            step,
        };
        match from {
            RetryFrom::Scratch => Ok(None),
            RetryFrom::Latest => Ok(usable.keys().last().copied().map(at).or(old.resumed_from)),
            RetryFrom::Step(step) if usable.contains_key(&step) => Ok(Some(at(step))),
            RetryFrom::Step(step) => {
                let steps: Vec<String> = usable.keys().map(u64::to_string).collect();
                Err(EngineError::InvalidField {
                    field: "checkpoint".into(),
                    message: if steps.is_empty() {
                        format!(
                            "job {} has no checkpoint to continue from; `--from-scratch` starts over",
                            old.id.short()
                        )
                    } else {
                        format!(
                            "job {} has no checkpoint at step {step}; it has steps {}",
                            old.id.short(),
                            steps.join(", ")
                        )
                    },
                })
            }
        }
    }

    /// The checkpoint a run of `job` on a backend with `access` continues from: its own
    /// latest (an automatic retry of an infrastructure failure), else the checkpoint it was
    /// queued to continue from, which must still be usable.
    pub(crate) fn resume_source(
        &self,
        job: &TrainingJob,
        access: DataAccess,
    ) -> Result<Option<(ResumePoint, Source)>> {
        if let Some((step, source)) = self.usable_checkpoints(job, access)?.pop_last() {
            let point = ResumePoint {
                job_id: job.id,
                step,
            };
            return Ok(Some((point, source)));
        }
        let Some(p) = job.resumed_from else {
            return Ok(None);
        };
        let old = self.job(p.job_id)?;
        let mut usable = self.usable_checkpoints(&old, access)?;
        match usable.remove(&p.step) {
            Some(source) => Ok(Some((p, source))),
            None => Err(EngineError::Invalid(unusable(
                job,
                p,
                "is no longer stored (nor in a folder here)",
                &usable,
            ))),
        }
    }

    /// What the trainer gets as `resume_from` for `source`: the folder, the archive in a
    /// local store (or downloaded here, its sha256 checked), or a presigned GET URL.
    pub(crate) async fn resume_ref(
        &self,
        job: &TrainingJob,
        point: ResumePoint,
        source: Source,
        access: DataAccess,
        ttl: std::time::Duration,
    ) -> Result<ResumeRef> {
        let c = match source {
            Source::Folder(f) => return Ok(ResumeRef::Folder(f)),
            Source::Stored(c) => c,
        };
        let (sha256, size) = (c.sha256.clone().unwrap_or_default(), c.size.unwrap_or(0));
        let objects = &self.inner.objects;
        if access == DataAccess::Urls {
            let url = objects
                .presign_get(Bucket::Models, &c.storage_path, ttl)
                .await?
                .ok_or_else(|| EngineError::Invalid("the object store makes no URLs".into()))?;
            return Ok(ResumeRef::Url {
                url,
                sha256,
                size,
                step: c.step,
            });
        }
        let archive = match objects.local_path(Bucket::Models, &c.storage_path) {
            Some(p) => p,
            None => {
                let dest = self
                    .job_dir_path(job.id)
                    .join("resume")
                    .join(format!("checkpoint-{}.tar", c.step));
                crate::private::create_dir_all_async(dest.parent().expect("has a parent"))
                    .await
                    .map_err(|source| EngineError::Io {
                        action: "creating",
                        path: dest.clone(),
                        source,
                    })?;
                let got = match objects
                    .get_to_file(Bucket::Models, &c.storage_path, &dest, &|_, _| {})
                    .await
                {
                    Ok(got) => got,
                    Err(e) => return Err(self.missing(job, point, e).await),
                };
                if got.sha256 != sha256 {
                    let _ = std::fs::remove_file(&dest);
                    let why = format!("does not match its recorded sha256 (got {})", got.sha256);
                    return Err(self.unusable_now(job, point, why).await);
                }
                dest
            }
        };
        Ok(ResumeRef::Archive {
            archive: archive.to_string_lossy().into_owned(),
            sha256,
            size,
            step: c.step,
        })
    }

    /// What a run of `job` continues from (see [`Engine::resume_source`]) and where its
    /// checkpoints are stored (see [`Engine::checkpoint_upload`]).
    pub(crate) async fn continuation(
        &self,
        job: &TrainingJob,
        access: DataAccess,
    ) -> Result<(Option<ResumeRef>, Option<crate::backend::CheckpointUpload>)> {
        if !job.task.is_training() {
            return Ok((None, None));
        }
        let ttl = super::runner::url_ttl(job);
        let for_source = job.clone();
        let source = self
            .on_store(move |e| e.resume_source(&for_source, access))
            .await?;
        let resume = match source {
            Some((point, source)) => Some(self.resume_ref(job, point, source, access, ttl).await?),
            None => None,
        };
        Ok((resume, self.checkpoint_upload(job, access, ttl).await?))
    }

    /// Checks, when a retry is asked for, that the stored archive it continues from is there
    /// at its recorded size.
    pub(crate) async fn check_stored(&self, job: &TrainingJob, point: ResumePoint) -> Result<()> {
        let (source, others) = self
            .on_store(move |e| {
                let old = e.job(point.job_id)?;
                let mut usable = e.usable_checkpoints(&old, DataAccess::Urls)?;
                Ok((usable.remove(&point.step), usable))
            })
            .await?;
        let Some(Source::Stored(c)) = source else {
            return Ok(());
        };
        let problem = match self
            .inner
            .objects
            .size(Bucket::Models, &c.storage_path)
            .await?
        {
            None => "is missing from the store".to_string(),
            Some(n) if Some(n) != c.size => {
                format!(
                    "is {n} bytes in the store, not the {} recorded",
                    c.size.unwrap_or(0)
                )
            }
            Some(_) => return Ok(()),
        };
        let why = format!("{problem} ({})", c.storage_path);
        Err(EngineError::Invalid(unusable(job, point, &why, &others)))
    }

    /// A missing archive is [`unusable`]; any other storage error is itself (it may pass).
    async fn missing(
        &self,
        job: &TrainingJob,
        point: ResumePoint,
        e: crate::storage::StorageError,
    ) -> EngineError {
        match e {
            crate::storage::StorageError::NotFound { .. } => {
                let why = "is missing from the store".to_string();
                self.unusable_now(job, point, why).await
            }
            e => e.into(),
        }
    }

    /// [`unusable`]'s error, listing the checkpoints of the job `point` belongs to (read off
    /// the async workers).
    async fn unusable_now(
        &self,
        job: &TrainingJob,
        point: ResumePoint,
        why: String,
    ) -> EngineError {
        let others = self
            .on_store(move |e| {
                let old = e.job(point.job_id)?;
                e.usable_checkpoints(&old, DataAccess::Urls)
            })
            .await
            .unwrap_or_default();
        EngineError::Invalid(unusable(job, point, &why, &others))
    }
}

/// Why a run cannot continue from `point`, and what it can do instead: an earlier checkpoint
/// of that job, or starting over.
fn unusable(
    job: &TrainingJob,
    point: ResumePoint,
    why: &str,
    others: &BTreeMap<u64, Source>,
) -> String {
    let earlier = others.range(..point.step).next_back().map(|(s, _)| *s);
    let mut text = format!(
        "the checkpoint at step {} of job {} {why}; ",
        point.step,
        point.job_id.short()
    );
    if let Some(step) = earlier {
        text.push_str(&format!(
            "`brightrun jobs resume {} --checkpoint {step}` continues from the one before it, ",
            point.job_id.short()
        ));
    }
    text.push_str(&format!(
        "`brightrun jobs retry {} --from-scratch` starts over",
        job.id.short()
    ));
    text
}

impl Engine {
    /// A job's checkpoints a run can continue from, oldest first: the stored ones, and (a
    /// local run) the folders still on this machine, reported or found in its folder.
    pub fn job_checkpoints(&self, id: JobId) -> Result<Vec<Checkpoint>> {
        let job = self.job(id)?;
        let mut records: BTreeMap<u64, Checkpoint> = self
            .inner
            .store
            .checkpoints(id)?
            .into_iter()
            .map(|c| (c.step, c))
            .collect();
        Ok(self
            .usable_checkpoints(&job, DataAccess::Paths)?
            .into_iter()
            .map(|(step, source)| match source {
                Source::Stored(c) => c,
                Source::Folder(f) => records.remove(&step).unwrap_or_else(|| Checkpoint {
                    id: crate::ids::CheckpointId::new(),
                    job_id: id,
                    step,
                    epoch: 0.0,
                    loss: None,
                    storage_path: f.clone(),
                    size: None,
                    sha256: None,
                    folder: Some(f),
                    created_at: crate::domain::now(),
                }),
            })
            .collect())
    }

    /// A model of a job's checkpoint: its adapter files (from its folder here, or from its
    /// stored archive, sha256 checked) stored like a finished run's, its quality from the
    /// metrics up to that step.
    pub async fn model_from_checkpoint(&self, id: JobId, step: u64) -> Result<ModelArtifact> {
        let (job, source) = self
            .on_store(move |e| {
                let job = e.job(id)?;
                if !job.task.is_training() {
                    return Err(EngineError::Invalid(format!(
                        "job {} is an {}; it has no checkpoints",
                        id.short(),
                        job.task.kind_name()
                    )));
                }
                e.resume_point(&job, RetryFrom::Step(step), DataAccess::Paths)?;
                let source = e
                    .usable_checkpoints(&job, DataAccess::Paths)?
                    .remove(&step)
                    .ok_or_else(|| {
                        EngineError::Invalid(format!(
                            "job {} has no checkpoint at step {step}",
                            id.short()
                        ))
                    })?;
                Ok((job, source))
            })
            .await?;
        let folder = match source {
            Source::Folder(f) => PathBuf::from(f),
            Source::Stored(c) => self.unpacked_adapter(&job, &c).await?,
        };
        let model = ArtifactId::new();
        let mut files = Vec::new();
        for name in super::artifacts::ADAPTER_FILES {
            let mut path = folder.join(name);
            if !path.is_file() {
                continue;
            }
            if name == "adapter_config.json" {
                path = self.portable_config(&job, step, &path)?;
            }
            let key = object_path(&[&job.user_id.to_string(), &model.to_string(), name])?;
            let stored = self
                .inner
                .objects
                .put_file(Bucket::Models, &key, &path, &|_, _| {})
                .await?;
            files.push(ArtifactFile {
                path: name.to_string(),
                size: stored.size,
                sha256: stored.sha256,
            });
        }
        if !files.iter().any(|f| f.path == "adapter_model.safetensors") {
            return Err(EngineError::Invalid(format!(
                "the checkpoint at step {step} ({}) holds no adapter weights",
                folder.display()
            )));
        }
        self.on_store(move |e| {
            let summary = DoneSummary {
                total_steps: Some(step),
                ..Default::default()
            };
            let mut a = e.artifact_record(&job, &summary, model, files, None, Some(step))?;
            a.configuration.0["checkpoint_step"] = serde_json::json!(step);
            e.inner.store.write(|w| {
                w.put(&a)?;
                super::notify::notify(
                    w,
                    job.user_id,
                    NotificationType::ArtifactReady,
                    format!("Model {} is ready", a.name),
                    format!(
                        "from the checkpoint at step {step} of job {}; `brightrun models eval {}` evaluates it",
                        job.id.short(),
                        a.id.short()
                    ),
                    Some(Link::Artifact(a.id)),
                    serde_json::json!({"artifact_id": a.id, "job_id": job.id, "step": step}),
                )?;
                Ok(())
            })?;
            Ok(a)
        })
        .await
    }
}

/// A retry's estimate: the first run's, for the steps that remain after its checkpoint.
pub(crate) fn remaining_cost(old: &TrainingJob, from: Option<ResumePoint>) -> f64 {
    match from {
        Some(p) if old.total_steps > 0 => {
            let left = old.total_steps.saturating_sub(p.step) as f64 / old.total_steps as f64;
            old.estimated_cost * left
        }
        _ => old.estimated_cost,
    }
}

impl Engine {
    /// A copy of a checkpoint's adapter config that names the job's base model: the trainer
    /// saved the folder it loaded the model from, meaningless to whoever downloads the model
    /// (a finished run's adapter names the model the same way).
    fn portable_config(&self, job: &TrainingJob, step: u64, config: &Path) -> Result<PathBuf> {
        let read = |e: std::io::Error| EngineError::Io {
            action: "reading",
            path: config.to_path_buf(),
            source: e,
        };
        let text = std::fs::read_to_string(config).map_err(read)?;
        let mut value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| EngineError::Invalid(format!("{} is not JSON: {e}", config.display())))?;
        value["base_model_name_or_path"] = job.hyperparameters.base_model.clone().into();
        let dir = self
            .job_dir_path(job.id)
            .join("unpacked")
            .join(format!("config-{step}"));
        let dest = dir.join("adapter_config.json");
        let write = |e: std::io::Error| EngineError::Io {
            action: "writing",
            path: dest.clone(),
            source: e,
        };
        crate::private::create_dir_all(&dir).map_err(write)?;
        let bytes = serde_json::to_vec_pretty(&value).expect("JSON serialises");
        crate::private::create_file(&dest)
            .and_then(|mut f| std::io::Write::write_all(&mut f, &bytes))
            .map_err(write)?;
        Ok(dest)
    }

    /// The adapter files of a stored checkpoint, unpacked into a folder of the job's here
    /// after the archive's sha256 is checked.
    async fn unpacked_adapter(&self, job: &TrainingJob, c: &Checkpoint) -> Result<PathBuf> {
        let dir = self
            .job_dir_path(job.id)
            .join("unpacked")
            .join(format!("checkpoint-{}", c.step));
        crate::private::create_dir_all_async(&dir)
            .await
            .map_err(|source| EngineError::Io {
                action: "creating",
                path: dir.clone(),
                source,
            })?;
        let archive = dir.join("archive.tar");
        let point = ResumePoint {
            job_id: job.id,
            step: c.step,
        };
        let got = match self
            .inner
            .objects
            .get_to_file(Bucket::Models, &c.storage_path, &archive, &|_, _| {})
            .await
        {
            Ok(got) => got,
            Err(e) => return Err(self.missing(job, point, e).await),
        };
        if Some(&got.sha256) != c.sha256.as_ref() {
            let _ = std::fs::remove_file(&archive);
            let why = format!("does not match its recorded sha256 (got {})", got.sha256);
            return Err(self.unusable_now(job, point, why).await);
        }
        let (from, into, step) = (archive.clone(), dir.clone(), c.step);
        tokio::task::spawn_blocking(move || unpack_adapter(&from, &into, step))
            .await
            .map_err(|e| EngineError::Invalid(format!("unpacking a checkpoint: {e}")))??;
        let _ = std::fs::remove_file(&archive);
        Ok(dir)
    }
}

/// Writes the adapter files of a checkpoint archive (PROTOCOL.md, "Checkpoint storage":
/// members under `checkpoint-<step>/`) into `into`; nothing else is extracted.
fn unpack_adapter(archive: &Path, into: &Path, step: u64) -> Result<()> {
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| EngineError::Io {
            action,
            path,
            source,
        }
    };
    let file = std::fs::File::open(archive).map_err(io("reading", archive))?;
    let prefix = format!("checkpoint-{step}/");
    let mut tar = tar::Archive::new(file);
    for entry in tar.entries().map_err(io("reading", archive))? {
        let mut entry = entry.map_err(io("reading", archive))?;
        let name = entry
            .path()
            .map_err(io("reading", archive))?
            .to_string_lossy()
            .into_owned();
        let Some(file) = name.strip_prefix(&prefix) else {
            continue;
        };
        if !entry.header().entry_type().is_file()
            || !super::artifacts::ADAPTER_FILES.contains(&file)
        {
            continue;
        }
        let dest = into.join(file);
        let mut out = crate::private::create_file(&dest).map_err(io("writing", &dest))?;
        std::io::copy(&mut entry, &mut out).map_err(io("writing", &dest))?;
    }
    Ok(())
}
