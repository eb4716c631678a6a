//! What the engine offers about its object store: `storage check`, shareable presigned URLs
//! for models (`models url`), and model deletion with or without the stored files.

use super::{Engine, EngineError, Result};
use crate::domain::ModelArtifact;
use crate::ids::ArtifactId;
use crate::storage::{Bucket, object_path};
pub use brightrun_api::reports::{SharedUrl, StorageReport};
use std::time::Duration;

/// The longest a presigned URL may last (S3's own limit).
pub const MAX_URL_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

impl Engine {
    /// Checks the object store: reachable, buckets present (made when `create_buckets`), and a
    /// put/get/delete probe.
    pub async fn storage_check(&self, create_buckets: bool) -> StorageReport {
        let steps = self.inner.objects.check(create_buckets).await;
        let c = &self.inner.config.storage;
        let location = match self.inner.objects.kind() {
            "s3" => format!(
                "{} (buckets {} and {}{})",
                c.s3.endpoint
                    .clone()
                    .unwrap_or_else(|| format!("AWS S3, {}", c.s3.region)),
                c.s3.datasets_bucket,
                c.s3.models_bucket,
                c.s3.prefix
                    .as_deref()
                    .map(|p| format!(", prefix {p}"))
                    .unwrap_or_default()
            ),
            _ => c
                .local_root
                .clone()
                .unwrap_or_else(|| self.inner.paths.objects_dir())
                .display()
                .to_string(),
        };
        StorageReport {
            kind: self.inner.objects.kind().to_string(),
            location,
            ok: !steps.is_empty() && steps.iter().all(|s| s.ok),
            steps,
        }
    }

    /// A presigned GET URL for one file of a model (the adapter's weights when `file` is not
    /// given), lasting `ttl`. Generated now, never stored.
    pub async fn model_url(
        &self,
        id: ArtifactId,
        file: Option<&str>,
        ttl: Duration,
    ) -> Result<SharedUrl> {
        if ttl.is_zero() || ttl > MAX_URL_TTL {
            return Err(EngineError::InvalidField {
                field: "expires_secs".into(),
                message: "a URL lasts between 1 second and 7 days".into(),
            });
        }
        let model = self.on_store(move |e| e.artifact(id)).await?;
        let f = match file {
            Some(name) => model.files.iter().find(|f| f.path == name).ok_or_else(|| {
                EngineError::InvalidField {
                    field: "file".into(),
                    message: format!(
                        "model {} has no file `{name}`; it has {}",
                        id.short(),
                        model
                            .files
                            .iter()
                            .map(|f| f.path.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
            })?,
            None => model
                .files
                .iter()
                .find(|f| f.path.ends_with(".safetensors"))
                .or(model.files.first())
                .ok_or_else(|| {
                    EngineError::Invalid(format!("model {} has no files", id.short()))
                })?,
        };
        let key = object_path(&[&model.user_id.to_string(), &model.id.to_string(), &f.path])?;
        let url = self
            .inner
            .objects
            .presign_get(Bucket::Models, &key, ttl)
            .await?
            .ok_or_else(|| {
                EngineError::Invalid(
                    "the local folder store has no URLs to share; configure [storage] \
                     backend = \"s3\" (or download the model with `brightrun models download`)"
                        .into(),
                )
            })?;
        Ok(SharedUrl {
            model_id: model.id,
            file: f.path.clone(),
            url,
            expires_at: chrono::Utc::now()
                + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(1)),
        })
    }

    /// Soft-deletes a model (its `deleted_at`); with `purge` its stored files go too.
    pub async fn delete_model(&self, id: ArtifactId, purge: bool) -> Result<ModelArtifact> {
        let model = self
            .on_store(move |e| {
                let mut model = e.artifact(id)?;
                if model.deleted_at.is_none() {
                    model.deleted_at = Some(chrono::Utc::now());
                    model.updated_at = chrono::Utc::now();
                    e.inner.store.put(&model)?;
                }
                Ok(model)
            })
            .await?;
        if purge {
            for f in &model.files {
                let key =
                    object_path(&[&model.user_id.to_string(), &model.id.to_string(), &f.path])?;
                self.inner.objects.delete(Bucket::Models, &key).await?;
            }
        }
        Ok(model)
    }
}
