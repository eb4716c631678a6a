//! Checkpoints stored like models. Every checkpoint the trainer writes is packed into one
//! archive (PROTOCOL.md, "Checkpoint storage") and kept in the models bucket, so a run can
//! be continued on any backend, not only on the machine that ran it:
//!
//! - a local run's trainer writes the archive beside its folder and the engine moves it into
//!   the store when it reads the `checkpoint` event;
//! - a remote trainer PUTs it to presigned URLs. It learns a checkpoint's step only as it
//!   writes it, and a presigned URL names its key in advance, so the engine presigns slots
//!   (`<user>/checkpoints/<job>/<attempt>-<index>.tar`, one per planned checkpoint plus one
//!   for a stop) and learns from the event which step went to which slot. A local run's
//!   archives are `<user>/checkpoints/<job>/step-<step>.tar`. (Not under a folder named by a
//!   uuid: the start-up sweep takes those for unfinished models.)
//!
//! Retention keeps the newest `[training] keep_checkpoints` archives of a run and the one
//! with the best validation loss; the others are deleted as new ones land (their records
//! stay, emptied, as history).

use super::lifecycle::LocalArchive;
use super::{Engine, Result};
use crate::backend::{CheckpointUpload, DataAccess};
use crate::domain::{Checkpoint, TrainingJob};
use crate::events::EngineEvent;
use crate::ids::JobId;
use crate::storage::{Bucket, object_path};
use std::path::Path;

/// The most presigned slots one attempt of a remote run gets.
const MAX_SLOTS: u64 = 64;

/// The models-bucket key of a remote attempt's checkpoint slot.
pub(crate) fn slot_key(job: &TrainingJob, attempt: u32, index: u32) -> Result<String> {
    Ok(object_path(&[
        &job.user_id.to_string(),
        "checkpoints",
        &job.id.to_string(),
        &format!("{attempt}-{index}.tar"),
    ])?)
}

/// The models-bucket key of a local run's checkpoint archive.
fn local_key(job: &TrainingJob, step: u64) -> Result<String> {
    Ok(object_path(&[
        &job.user_id.to_string(),
        "checkpoints",
        &job.id.to_string(),
        &format!("step-{step}.tar"),
    ])?)
}

/// How many checkpoints a run may write: one at the end of every epoch but the last, one
/// every `checkpoint_steps` steps, and one on a stop.
pub(crate) fn planned_checkpoints(job: &TrainingJob, checkpoint_steps: u64) -> u64 {
    let epochs = u64::from(job.total_epochs.max(1));
    let by_steps = match (checkpoint_steps, job.total_steps) {
        (0, _) => 0,
        // Steps not estimated yet: room for a long run.
        (_, 0) => MAX_SLOTS / 2,
        (n, total) => total / n,
    };
    ((epochs - 1) + by_steps + 1).clamp(1, MAX_SLOTS)
}

/// Which stored checkpoints retention deletes: all but the newest `keep` and the one with the
/// lowest validation loss. `stored` holds each stored checkpoint's step and the validation
/// loss last measured at or before it.
pub(crate) fn retired(stored: &[(u64, Option<f64>)], keep: usize) -> Vec<u64> {
    let mut steps: Vec<u64> = stored.iter().map(|(s, _)| *s).collect();
    steps.sort_unstable();
    let best = stored
        .iter()
        .filter_map(|(s, v)| v.map(|v| (*s, v)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(s, _)| s);
    let newest = steps.len().saturating_sub(keep.max(1));
    steps[..newest]
        .iter()
        .copied()
        .filter(|s| Some(*s) != best)
        .collect()
}

impl Engine {
    /// Where a training run's trainer stores its checkpoint archives: a folder of the job's
    /// on this machine, or presigned slots in the models bucket for a remote worker.
    pub(crate) async fn checkpoint_upload(
        &self,
        job: &TrainingJob,
        access: DataAccess,
        ttl: std::time::Duration,
    ) -> Result<Option<CheckpointUpload>> {
        if !job.task.is_training() {
            return Ok(None);
        }
        if access == DataAccess::Paths {
            let dir = self.job_dir_path(job.id).join("checkpoint-archives");
            return Ok(Some(CheckpointUpload::Dir(
                dir.to_string_lossy().into_owned(),
            )));
        }
        let slots = planned_checkpoints(job, self.inner.config.training.checkpoint_steps);
        let mut urls = Vec::with_capacity(slots as usize);
        for index in 0..slots as u32 {
            let key = slot_key(job, job.retry_count, index)?;
            let url = self.model_put_url(&key, ttl).await?;
            urls.push(url);
        }
        Ok(Some(CheckpointUpload::PresignedPut(urls)))
    }

    /// Moves a local run's checkpoint archives into the store and records them stored; one
    /// that fails stays a folder on this machine, and the job's log says why. An archive is
    /// removed only once its record says stored, so an engine killed halfway leaves it in
    /// place and the next call here (any later checkpoint, the run's end, a cancel) stores
    /// it: see [`Engine::leftover_archives`].
    pub(crate) async fn store_archives(
        &self,
        job: &TrainingJob,
        mut archives: Vec<(Checkpoint, LocalArchive)>,
    ) -> Result<()> {
        archives.extend(self.leftover_archives(job, &archives).await?);
        if archives.is_empty() {
            return Ok(());
        }
        for (c, archive) in archives {
            self.store_archive(job, c, archive).await?;
        }
        self.retain_checkpoints(job.id).await
    }

    /// Puts one archive into the store and records it (see [`Engine::store_archives`]).
    async fn store_archive(
        &self,
        job: &TrainingJob,
        mut c: Checkpoint,
        archive: LocalArchive,
    ) -> Result<()> {
        let key = local_key(job, c.step)?;
        let path = Path::new(&archive.path);
        let stored = self
            .inner
            .objects
            .put_file(Bucket::Models, &key, path, &|_, _| {})
            .await;
        let step = c.step;
        let problem = match stored {
            Ok(o) if o.sha256 == archive.sha256 && o.size == archive.size => {
                c.storage_path = key;
                c.size = Some(o.size);
                c.sha256 = Some(o.sha256);
                // Recorded first: a kill before this line leaves the archive for the next call.
                self.on_store(move |e| Ok(e.inner.store.put(&c)?)).await?;
                None
            }
            Ok(o) => {
                let _ = self.inner.objects.delete(Bucket::Models, &key).await;
                Some(format!(
                    "the archive changed while it was stored ({} bytes, sha256 {}; the trainer reported {} bytes, {})",
                    o.size, o.sha256, archive.size, archive.sha256
                ))
            }
            Err(e) => Some(e.to_string()),
        };
        let _ = std::fs::remove_file(path);
        let Some(problem) = problem else {
            return Ok(());
        };
        self.inner.store.publish(EngineEvent::JobLog {
            job_id: job.id,
            line: format!(
                "warning: the checkpoint at step {step} was not stored: {problem}; it stays in its folder on this machine"
            ),
        });
        Ok(())
    }

    /// Archives an earlier engine left in the job's archive folder (killed between reading a
    /// `checkpoint` event and recording the archive stored), beside `pending`, which this
    /// call stores anyway. One whose checkpoint is recorded and not yet stored is returned
    /// for storing (the trainer wrote it completely before it reported it, so its own hash is
    /// the expected one); one whose checkpoint is stored or retired is removed.
    async fn leftover_archives(
        &self,
        job: &TrainingJob,
        pending: &[(Checkpoint, LocalArchive)],
    ) -> Result<Vec<(Checkpoint, LocalArchive)>> {
        let dir = self.job_dir_path(job.id).join("checkpoint-archives");
        let pending: Vec<u64> = pending.iter().map(|(c, _)| c.step).collect();
        let id = job.id;
        let records = self
            .on_store(move |e| Ok(e.inner.store.checkpoints(id)?))
            .await?;
        let found = tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            for c in records.into_iter().filter(|c| !pending.contains(&c.step)) {
                let path = dir.join(format!("checkpoint-{}.tar", c.step));
                if !path.is_file() {
                    continue;
                }
                if c.is_stored() || c.folder.is_none() {
                    let _ = std::fs::remove_file(&path);
                    continue;
                }
                let Ok(archive) = hash_archive(&path) else {
                    continue;
                };
                found.push((c, archive));
            }
            found
        })
        .await
        .unwrap_or_default();
        Ok(found)
    }

    /// After a cancel, the trainer saves a checkpoint and stores it on its way out, but the
    /// job is already cancelled and no longer polled: follow the run until it ends (at most the
    /// cancel grace and a minute) and keep the checkpoints and metrics it reports meanwhile, so
    /// a retry continues from where it stopped.
    pub(crate) async fn collect_stop_checkpoint(
        &self,
        mut job: TrainingJob,
        backend: std::sync::Arc<dyn crate::backend::ClusterBackend>,
        ext: String,
    ) {
        let grace = self.inner.config.engine.cancel_grace_secs;
        let until = tokio::time::Instant::now() + std::time::Duration::from_secs(grace + 60);
        let limits = self.limits();
        let mut cursor = job.event_cursor;
        while tokio::time::Instant::now() < until {
            let result = match backend.poll(&ext, cursor).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!("following cancelled job {}: {e}", job.id);
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
            };
            cursor = result.cursor;
            let ended = !matches!(
                result.state,
                crate::backend::RemoteState::Pending | crate::backend::RemoteState::Running
            );
            let seen = super::lifecycle::observe(&mut job, &result, crate::domain::now(), &limits);
            let (points, checkpoints) = (seen.points.clone(), seen.checkpoints.clone());
            let kept = self
                .on_store(move |e| {
                    e.inner.store.write(|w| {
                        w.put_metrics(&points)?;
                        checkpoints.iter().try_for_each(|c| w.put(c))?;
                        Ok(())
                    })?;
                    Ok(())
                })
                .await;
            if let Err(e) = kept {
                tracing::warn!("keeping the last checkpoint of job {}: {e}", job.id);
                return;
            }
            if let Err(e) = self.store_archives(&job, seen.archives).await {
                tracing::warn!("storing the last checkpoint of job {}: {e}", job.id);
            }
            if seen.checkpoints.iter().any(Checkpoint::is_stored) {
                let _ = self.retain_checkpoints(job.id).await;
            }
            if ended {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }

    /// Deletes the stored checkpoints of `job` that retention no longer keeps (see
    /// [`retired`]): their archives, and on this machine their folders.
    pub(crate) async fn retain_checkpoints(&self, job: JobId) -> Result<()> {
        let keep = self.inner.config.training.keep_checkpoints.max(1) as usize;
        let retire = self
            .on_store(move |e| {
                let stored: Vec<Checkpoint> = e
                    .inner
                    .store
                    .checkpoints(job)?
                    .into_iter()
                    .filter(Checkpoint::is_stored)
                    .collect();
                let points = e.inner.store.metrics(job, 0, usize::MAX)?;
                let validation = |step: u64| {
                    points
                        .iter()
                        .filter(|p| p.step <= step)
                        .filter_map(|p| p.validation_loss)
                        .next_back()
                };
                let scored: Vec<(u64, Option<f64>)> = stored
                    .iter()
                    .map(|c| (c.step, validation(c.step)))
                    .collect();
                let steps = retired(&scored, keep);
                Ok(stored
                    .into_iter()
                    .filter(|c| steps.contains(&c.step))
                    .collect::<Vec<_>>())
            })
            .await?;
        let mine = self.job_dir_path(job);
        for mut c in retire {
            if let Err(e) = self
                .inner
                .objects
                .delete(Bucket::Models, &c.storage_path)
                .await
            {
                tracing::warn!(
                    "deleting the checkpoint at step {} of job {job}: {e}",
                    c.step
                );
                continue;
            }
            // Only a folder of this job's own on this machine.
            if let Some(folder) = c.folder.take().filter(|f| Path::new(f).starts_with(&mine)) {
                let _ = std::fs::remove_dir_all(folder);
            }
            c.storage_path = String::new();
            c.size = None;
            c.sha256 = None;
            self.on_store(move |e| Ok(e.inner.store.put(&c)?)).await?;
        }
        Ok(())
    }
}

/// The size and sha256 of a local archive file.
fn hash_archive(path: &Path) -> std::io::Result<LocalArchive> {
    let file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    let sha256 = crate::storage::verify::Hashing::new(file).finish()?;
    Ok(LocalArchive {
        path: path.to_string_lossy().into_owned(),
        size,
        sha256,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_keeps_the_newest_and_the_best_validation_loss() {
        let stored = [
            (10, Some(1.0)),
            (20, Some(0.5)),
            (30, Some(0.7)),
            (40, Some(0.8)),
            (50, Some(0.9)),
        ];
        assert_eq!(retired(&stored, 3), vec![10]);
        assert_eq!(retired(&stored, 1), vec![10, 30, 40]);
        assert_eq!(retired(&stored, 9), Vec::<u64>::new());
        // Without validation losses, only the newest stay; 0 keeps one.
        let plain = [(5, None), (6, None), (7, None)];
        assert_eq!(retired(&plain, 0), vec![5, 6]);
    }

    /// An engine killed between reading a `checkpoint` event and recording its archive stored
    /// leaves the archive in the job's folder; the next engine stores it, and removes one whose
    /// checkpoint is already retired, so no archive is kept twice or lost.
    #[tokio::test]
    async fn an_archive_left_by_a_killed_engine_is_stored_by_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(crate::paths::Paths::under(dir.path())).unwrap();
        let sample =
            crate::mirror::sample::write_sample(engine.store(), engine.profile_user(), 1).unwrap();
        let job = sample.job;
        let archives = engine.job_dir_path(job.id).join("checkpoint-archives");
        std::fs::create_dir_all(&archives).unwrap();
        let checkpoint = |step: u64, folder: Option<String>| Checkpoint {
            id: crate::ids::CheckpointId::new(),
            step,
            storage_path: folder.clone().unwrap_or_default(),
            size: None,
            sha256: None,
            folder,
            ..sample.checkpoint.clone()
        };
        let folder = engine.job_dir_path(job.id).join("checkpoints/checkpoint-7");
        let unstored = checkpoint(7, Some(folder.to_string_lossy().into_owned()));
        let retired = checkpoint(3, None);
        engine.store().put(&unstored).unwrap();
        engine.store().put(&retired).unwrap();
        let bytes = b"a checkpoint archive".repeat(100);
        std::fs::write(archives.join("checkpoint-7.tar"), &bytes).unwrap();
        std::fs::write(archives.join("checkpoint-3.tar"), b"retired").unwrap();

        engine.store_archives(&job, Vec::new()).await.unwrap();

        let after = engine.store().checkpoints(job.id).unwrap();
        let seven = after.iter().find(|c| c.step == 7).unwrap();
        let key = local_key(&job, 7).unwrap();
        assert_eq!(seven.storage_path, key, "{seven:?}");
        assert_eq!(seven.size, Some(bytes.len() as u64));
        let expected = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        assert_eq!(seven.sha256.as_deref(), Some(expected.as_str()));
        let size = engine.inner.objects.size(Bucket::Models, &key).await;
        assert_eq!(size.unwrap(), Some(bytes.len() as u64));
        let left: Vec<_> = std::fs::read_dir(&archives).unwrap().collect();
        assert!(left.is_empty(), "both archives are gone: {left:?}");
        let three = after.iter().find(|c| c.step == 3).unwrap();
        assert!(!three.is_stored(), "a retired checkpoint stays retired");
    }

    #[test]
    fn a_remote_run_gets_a_slot_per_planned_checkpoint_and_one_for_a_stop() {
        use crate::domain::*;
        use crate::ids::*;
        let hp = crate::training::presets::list(&crate::config::TrainingConfig::default())[0]
            .hyperparameters
            .clone();
        let gpu = GpuConfig {
            gpu_type: "A100-80GB".into(),
            gpu_count: 1,
            price_per_gpu_hour: 3.5,
            backend: "runpod".into(),
        };
        let mut job = TrainingJob::new_queued(
            UserId::new(),
            DatasetId::new(),
            PresetId::Fast,
            hp,
            gpu,
            100,
            1.0,
            None,
        );
        job.total_epochs = 3;
        job.total_steps = 90;
        assert_eq!(planned_checkpoints(&job, 0), 3);
        assert_eq!(planned_checkpoints(&job, 10), 12);
        assert_eq!(planned_checkpoints(&job, 1), MAX_SLOTS);
        job.total_steps = 0;
        assert_eq!(planned_checkpoints(&job, 10), 2 + MAX_SLOTS / 2 + 1);
    }
}
