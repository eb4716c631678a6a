//! Continuing a run instead of restarting it: a retried job starts from a checkpoint of the
//! job it retries (its latest one on this machine, or a chosen step), and its trainer gets
//! that checkpoint's folder as `resume_from`, so the run goes on where it stopped (the
//! trainer restores the optimizer, the scheduler, the RNG and the data order).
//!
//! Checkpoints are the trainer's folders on the machine that ran it: a run on this machine
//! (or a cluster that shares its filesystem) can be continued; a remote run's checkpoints
//! stay on its worker, so its retry starts at step 0 and says so.

use super::{Engine, EngineError, Result};
use crate::backend::DataAccess;
use crate::backend::DoneSummary;
use crate::domain::{
    ArtifactFile, Checkpoint, Link, ModelArtifact, NotificationType, ResumePoint, TrainingJob,
};
use crate::ids::ArtifactId;
use crate::ids::JobId;
use crate::storage::{Bucket, object_path};
use std::collections::BTreeMap;
use std::path::Path;

/// Where a retried job starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryFrom {
    /// The retried job's latest checkpoint on this machine, else step 0.
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

impl Engine {
    /// The checkpoints of `job` still on this machine, by step: those its trainer reported,
    /// and the complete ones in its checkpoint folder it had no time to report (a cancel
    /// ends the job before the trainer's last checkpoint is read).
    fn checkpoints_here(&self, job: JobId) -> Result<Vec<Checkpoint>> {
        let mut found: BTreeMap<u64, Checkpoint> = self
            .inner
            .store
            .checkpoints(job)?
            .into_iter()
            .filter(|c| Path::new(&c.storage_path).is_dir())
            .map(|c| (c.step, c))
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
            if !entry.path().join("trainer_state.json").is_file() {
                continue;
            }
            found.entry(step).or_insert_with(|| Checkpoint {
                id: crate::ids::CheckpointId::new(),
                job_id: job,
                step,
                epoch: 0.0,
                loss: None,
                storage_path: entry.path().to_string_lossy().into_owned(),
                created_at: crate::domain::now(),
            });
        }
        Ok(found.into_values().collect())
    }

    /// Where a retry of `old` starts: one of its checkpoints on this machine, or (having
    /// none of its own) the point it had itself resumed from, or step 0.
    pub(crate) fn resume_point(
        &self,
        old: &TrainingJob,
        from: RetryFrom,
    ) -> Result<Option<ResumePoint>> {
        // A remote trainer's checkpoints are on its worker, whatever this machine holds.
        let here = if self.data_access(&old.gpu_config.backend) == DataAccess::Paths {
            self.checkpoints_here(old.id)?
        } else {
            Vec::new()
        };
        let at = |c: &Checkpoint| ResumePoint {
            job_id: old.id,
            step: c.step,
        };
        match from {
            RetryFrom::Scratch => Ok(None),
            RetryFrom::Latest => Ok(here.last().map(at).or(old.resumed_from)),
            RetryFrom::Step(step) => here.iter().find(|c| c.step == step).map(at).map(Some).ok_or_else(|| {
                let steps: Vec<String> = here.iter().map(|c| c.step.to_string()).collect();
                EngineError::InvalidField {
                    field: "checkpoint".into(),
                    message: if steps.is_empty() {
                        format!(
                            "job {} has no checkpoint on this machine (a remote run's stay on its worker); `--from-scratch` starts over",
                            old.id.short()
                        )
                    } else {
                        format!(
                            "job {} has no checkpoint at step {step} on this machine; it has steps {}",
                            old.id.short(),
                            steps.join(", ")
                        )
                    },
                }
            }),
        }
    }

    /// The folder a job's trainer resumes from: its own latest checkpoint still on disk (an
    /// automatic retry of an infrastructure failure), else the checkpoint it was queued to
    /// continue from, which must still be there.
    pub(crate) fn resume_folder(&self, job: &TrainingJob) -> Result<Option<String>> {
        if let Some(c) = self.checkpoints_here(job.id)?.pop() {
            return Ok(Some(c.storage_path));
        }
        let Some(p) = job.resumed_from else {
            return Ok(None);
        };
        self.checkpoints_here(p.job_id)?
            .into_iter()
            .find(|c| c.step == p.step)
            .map(|c| Some(c.storage_path))
            .ok_or_else(|| {
                EngineError::Invalid(format!(
                    "the checkpoint at step {} of job {} is no longer on this machine; `brightrun jobs retry {} --from-scratch` starts over",
                    p.step,
                    p.job_id.short(),
                    job.id.short()
                ))
            })
    }
}

impl Engine {
    /// A job's checkpoints, oldest first: on this machine (a local run) the ones still there,
    /// reported or found in its folder; a remote run's as its trainer reported them.
    pub fn job_checkpoints(&self, id: JobId) -> Result<Vec<Checkpoint>> {
        let job = self.job(id)?;
        if self.data_access(&job.gpu_config.backend) == DataAccess::Paths {
            self.checkpoints_here(id)
        } else {
            Ok(self.inner.store.checkpoints(id)?)
        }
    }

    /// A model of a job's checkpoint on this machine: its adapter files stored like a
    /// finished run's, its quality from the metrics up to that step.
    pub async fn model_from_checkpoint(&self, id: JobId, step: u64) -> Result<ModelArtifact> {
        let (job, folder) = self
            .on_store(move |e| {
                let job = e.job(id)?;
                if job.task.is_evaluation() {
                    return Err(EngineError::Invalid(format!(
                        "job {} is an evaluation; it has no checkpoints",
                        id.short()
                    )));
                }
                let point = e.resume_point(&job, RetryFrom::Step(step))?;
                let folder = e
                    .checkpoints_here(id)?
                    .into_iter()
                    .find(|c| Some(c.step) == point.map(|p| p.step))
                    .map(|c| std::path::PathBuf::from(c.storage_path))
                    .ok_or_else(|| {
                        EngineError::Invalid(format!(
                            "job {} has no checkpoint at step {step} on this machine",
                            id.short()
                        ))
                    })?;
                Ok((job, folder))
            })
            .await?;
        let model = ArtifactId::new();
        let mut files = Vec::new();
        for name in super::artifacts::ADAPTER_FILES {
            let path = folder.join(name);
            if !path.is_file() {
                continue;
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
