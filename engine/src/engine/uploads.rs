//! Datasets whose bytes arrive as a stream (a client of the daemon on another machine): the
//! record is made first (`uploading`, the seed's "create, then upload, then confirm"), the
//! body is stored as it arrives, and the dataset then moves to `validating`.

use super::{Engine, EngineError, NewDataset, Result};
use crate::api::Reason;
use crate::domain::*;
use crate::events::{EngineEvent, Progress, ProgressTask};
use crate::ids::*;
use crate::storage::{Bucket, object_path};
use std::path::Path;

/// How long a streamed dataset may wait for its bytes before it counts as interrupted
/// (the seed's presigned upload URLs live this long too).
pub(crate) const UPLOAD_WAIT: chrono::Duration = chrono::Duration::hours(1);

impl Engine {
    /// A new `uploading` record for a file called `file_name` of `file_size` bytes, checked
    /// against the bucket's limit before any byte is sent.
    pub(crate) fn new_dataset_record(
        &self,
        file_name: &str,
        file_size: u64,
        new: NewDataset,
        source_path: Option<String>,
    ) -> Result<Dataset> {
        let limit = Bucket::Datasets.max_object_size();
        if file_size > limit {
            return Err(EngineError::InvalidField {
                field: "file_size".into(),
                message: format!(
                    "{file_name} is {file_size} bytes, over the {} MB limit for datasets",
                    limit / 1_000_000
                ),
            });
        }
        let file_name = file_name.trim();
        if file_name.is_empty() {
            return Err(EngineError::InvalidField {
                field: "file_name".into(),
                message: "the file has no name".into(),
            });
        }
        // The stored object's name: a separator (either kind), a control character or a
        // name of `.` or `..` could not be one; the record keeps the name as given.
        let mut safe_name: String = file_name
            .chars()
            .map(|c| {
                if c == '/' || c == '\\' || c.is_control() {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        if safe_name == "." || safe_name == ".." {
            safe_name = "_".repeat(safe_name.len());
        }
        let given = new
            .name
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty());
        let name = match given {
            Some(name) => name,
            None => {
                let stem = Path::new(file_name)
                    .file_stem()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or_else(|| file_name.to_string());
                if stem.chars().any(char::is_control) {
                    // Debug formatting shows each control character as an escape, so the
                    // person sees where it is and the terminal never receives it.
                    return Err(EngineError::InvalidField {
                        field: "name".into(),
                        message: format!(
                            "the dataset's name would come from the file name {stem:?}, which \
                             holds control characters a dataset name cannot; give a name with \
                             `--name NAME`"
                        ),
                    });
                }
                stem
            }
        };
        super::datasets::check_name(&name)?;
        let id = DatasetId::new();
        let storage_path = object_path(&[&self.user.to_string(), &id.to_string(), &safe_name])?;
        let t = now();
        Ok(Dataset {
            id,
            user_id: self.user,
            name,
            description: new.description.filter(|d| !d.trim().is_empty()),
            file_name: file_name.to_string(),
            file_size,
            format: None,
            status: DatasetStatus::Uploading,
            storage_bucket: Bucket::Datasets.name().into(),
            storage_path,
            sha256: None,
            statistics: None,
            total_training_pairs: None,
            total_validation_pairs: None,
            total_tokens: None,
            training_ready: false,
            validated_at: None,
            validation_errors: Vec::new(),
            sample_data: Vec::new(),
            error_message: None,
            source_path,
            created_at: t,
            updated_at: t,
            deleted_at: None,
        })
    }

    /// Creates the record of a dataset whose bytes will be streamed with
    /// [`Engine::receive_upload`].
    pub fn create_streamed_dataset(
        &self,
        file_name: &str,
        file_size: u64,
        new: NewDataset,
    ) -> Result<Dataset> {
        let d = self.new_dataset_record(file_name, file_size, new, None)?;
        self.inner.store.put(&d)?;
        Ok(d)
    }

    /// Stores an upload's body for a dataset in `uploading`, then moves it to `validating`.
    /// One upload per dataset at a time; a failed one leaves the record in `error` with why.
    pub async fn receive_upload(
        &self,
        id: DatasetId,
        body: &mut (dyn tokio::io::AsyncRead + Send + Unpin),
    ) -> Result<Dataset> {
        let mut dataset = self.on_store(move |e| e.dataset(id)).await?;
        if dataset.status != DatasetStatus::Uploading {
            return Err(EngineError::conflict(
                Reason::WrongState,
                format!(
                    "dataset {} is {}, not waiting for an upload",
                    id.short(),
                    dataset.status.as_str()
                ),
            ));
        }
        if !self.inner.uploads.lock().expect("uploads lock").insert(id) {
            return Err(EngineError::conflict(
                Reason::UploadInProgress,
                format!("dataset {} is already being uploaded", id.short()),
            ));
        }
        let store = self.inner.store.clone();
        let report = move |done: u64, total: u64| {
            store.publish(EngineEvent::Progress(Progress {
                task: ProgressTask::Upload(id),
                done,
                total: Some(total),
                message: "uploading".into(),
            }));
        };
        // Never more than announced (and one byte to tell): a body that runs on is cut there,
        // not written to the end before it is refused.
        let mut body = tokio::io::AsyncReadExt::take(body, dataset.file_size + 1);
        let result = self
            .inner
            .objects
            .put_reader(Bucket::Datasets, &dataset.storage_path, &mut body, &report)
            .await;
        self.inner.uploads.lock().expect("uploads lock").remove(&id);
        match result {
            Ok(obj) if obj.size == dataset.file_size => {
                dataset.status = DatasetStatus::Validating;
                dataset.error_message = None;
                dataset.sha256 = Some(obj.sha256);
                dataset.updated_at = now();
                self.put_dataset(&dataset).await?;
                self.inner.wake_validation.notify_one();
                Ok(dataset)
            }
            Ok(obj) => {
                let _ = self
                    .inner
                    .objects
                    .delete(Bucket::Datasets, &dataset.storage_path)
                    .await;
                // Nothing is kept and the dataset still waits for its bytes, so the advice
                // can be followed.
                let sent = if obj.size > dataset.file_size {
                    "more bytes than".to_string()
                } else {
                    format!("{} bytes but", obj.size)
                };
                Err(EngineError::Invalid(format!(
                    "the upload sent {sent} the {} announced, and was not kept; send the file \
                     again (the dataset still waits for it) or delete the dataset",
                    dataset.file_size
                )))
            }
            Err(e) => {
                self.fail_dataset_off(&mut dataset, format!("upload failed: {e}"))
                    .await?;
                Err(e.into())
            }
        }
    }

    /// Whether an `uploading` dataset without a source file is still waiting for its bytes
    /// (being received, or announced less than [`UPLOAD_WAIT`] ago).
    pub(crate) fn awaiting_upload(&self, d: &Dataset) -> bool {
        self.inner
            .uploads
            .lock()
            .expect("uploads lock")
            .contains(&d.id)
            || (d.source_path.is_none() && now() - d.created_at < UPLOAD_WAIT)
    }
}
