//! Typed helpers over [`EngineApi::call`], for the CLI and the dashboard: each sends one
//! [`Request`] and unpacks its [`Reply`]. Also the client halves of uploads and downloads
//! (a file streamed up with progress; an artifact streamed down, sha256-checked, written
//! atomically), which run wherever the client is.

use super::*;
use crate::domain::*;
use crate::reports::Period;
use crate::storage::check_path;
use crate::training::Estimate;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// Unpacks the expected reply variant, or explains what came instead.
macro_rules! expect {
    ($reply:expr, $variant:ident) => {
        match $reply? {
            Reply::$variant(v) => Ok(v),
            other => Err(ApiError::internal(format!(
                "the engine answered `{}` where `{}` was expected",
                other.kind(),
                stringify!($variant)
            ))),
        }
    };
}

/// Byte progress of a client-side transfer: (done, total).
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Send + Sync);

/// The typed face of any [`EngineApi`].
#[async_trait]
pub trait Api: EngineApi {
    /// The Postgres mirror's state and lag.
    async fn mirror_status(&self) -> Result<crate::mirror::MirrorStatus, ApiError> {
        expect!(self.call(Request::MirrorStatus).await, Mirror)
    }
    /// Pushes to the mirror and waits until it holds everything committed before the call.
    async fn mirror_sync(
        &self,
        timeout_secs: Option<u64>,
    ) -> Result<crate::mirror::MirrorStatus, ApiError> {
        expect!(
            self.call(Request::MirrorSync { timeout_secs }).await,
            Mirror
        )
    }
    /// Compares the store with the mirror, table by table.
    async fn mirror_verify(&self) -> Result<crate::mirror::VerifyReport, ApiError> {
        expect!(self.call(Request::MirrorVerify).await, MirrorVerify)
    }

    async fn mirror_migrate(
        &self,
        dry_run: bool,
    ) -> Result<crate::mirror::MigrationReport, ApiError> {
        expect!(
            self.call(Request::MirrorMigrate { dry_run }).await,
            MirrorMigrate
        )
    }
    async fn hello(&self) -> Result<EngineInfo, ApiError> {
        expect!(self.call(Request::Hello).await, Hello)
    }
    async fn catalog(&self) -> Result<Catalog, ApiError> {
        expect!(self.call(Request::Catalog).await, Catalog)
    }
    async fn config_info(&self) -> Result<ConfigInfo, ApiError> {
        expect!(self.call(Request::Config).await, Config)
    }

    async fn datasets(
        &self,
        status: Option<DatasetStatus>,
        search: Option<String>,
        page: Paging,
    ) -> Result<Listing<Dataset>, ApiError> {
        expect!(
            self.call(Request::ListDatasets {
                status,
                search,
                page
            })
            .await,
            Datasets
        )
    }
    async fn dataset(&self, id: &str) -> Result<Dataset, ApiError> {
        expect!(
            self.call(Request::GetDataset { id: id.into() }).await,
            Dataset
        )
    }
    async fn validate_dataset(&self, id: &str) -> Result<Dataset, ApiError> {
        expect!(
            self.call(Request::ValidateDataset { id: id.into() }).await,
            Dataset
        )
    }
    async fn update_dataset(
        &self,
        id: &str,
        name: Option<String>,
        description: Option<String>,
    ) -> Result<Dataset, ApiError> {
        expect!(
            self.call(Request::UpdateDataset {
                id: id.into(),
                name,
                description
            })
            .await,
            Dataset
        )
    }
    async fn clean_dataset(
        &self,
        id: &str,
        drop_duplicates: bool,
        name: Option<String>,
    ) -> Result<Cleaned, ApiError> {
        expect!(
            self.call(Request::CleanDataset {
                id: id.into(),
                drop_duplicates,
                name
            })
            .await,
            Cleaned
        )
    }
    async fn delete_dataset(&self, id: &str, purge: bool) -> Result<Dataset, ApiError> {
        expect!(
            self.call(Request::DeleteDataset {
                id: id.into(),
                purge
            })
            .await,
            Dataset
        )
    }

    /// Imports a local file: by path when the engine shares this filesystem, otherwise by
    /// streaming its bytes. Answers once the file is stored (the dataset is then
    /// `validating`). `progress` sees the bytes sent when they are streamed.
    async fn add_dataset_file(
        &self,
        file: &Path,
        name: Option<String>,
        description: Option<String>,
        progress: Progress<'_>,
    ) -> Result<Dataset, ApiError> {
        if self.shares_filesystem() {
            let path = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
            return expect!(
                self.call(Request::ImportDataset {
                    path: path.to_string_lossy().into_owned(),
                    name,
                    description
                })
                .await,
                Dataset
            );
        }
        let meta = tokio::fs::metadata(file).await.map_err(|e| {
            ApiError::invalid("file", format!("cannot read {}: {e}", file.display()))
        })?;
        if !meta.is_file() {
            return Err(ApiError::invalid(
                "file",
                format!("{} is not a regular file", file.display()),
            ));
        }
        let file_name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ticket = expect!(
            self.call(Request::CreateDataset {
                file_name,
                file_size: meta.len(),
                name,
                description
            })
            .await,
            Upload
        )?;
        let f = tokio::fs::File::open(file).await.map_err(|e| {
            ApiError::invalid("file", format!("cannot read {}: {e}", file.display()))
        })?;
        let total = meta.len();
        let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = done.clone();
        let body = tokio_util::io::ReaderStream::with_capacity(f, 256 * 1024).map(move |chunk| {
            if let Ok(c) = &chunk {
                counter.fetch_add(c.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
            chunk
        });
        let upload = self.upload(ticket.dataset.id, Box::pin(body));
        tokio::pin!(upload);
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
        loop {
            tokio::select! {
                r = &mut upload => {
                    progress(total, total);
                    return r;
                }
                _ = tick.tick() => progress(done.load(std::sync::atomic::Ordering::Relaxed), total),
            }
        }
    }

    async fn estimate(&self, spec: JobSpec) -> Result<Estimate, ApiError> {
        expect!(self.call(Request::Estimate { spec }).await, Estimate).map(|b| *b)
    }
    async fn create_job(
        &self,
        spec: JobSpec,
        confirm_over_budget: bool,
    ) -> Result<TrainingJob, ApiError> {
        expect!(
            self.call(Request::CreateJob {
                spec,
                confirm_over_budget
            })
            .await,
            Job
        )
    }
    async fn jobs(
        &self,
        status: Option<JobStatus>,
        page: Paging,
    ) -> Result<Listing<TrainingJob>, ApiError> {
        expect!(self.call(Request::ListJobs { status, page }).await, Jobs)
    }
    async fn job(&self, id: &str) -> Result<TrainingJob, ApiError> {
        expect!(self.call(Request::GetJob { id: id.into() }).await, Job)
    }
    async fn cancel_job(&self, id: &str) -> Result<TrainingJob, ApiError> {
        expect!(self.call(Request::CancelJob { id: id.into() }).await, Job)
    }
    /// Retries a job from its latest checkpoint on the engine's machine (see
    /// [`Request::RetryJob`]).
    async fn retry_job(&self, id: &str) -> Result<TrainingJob, ApiError> {
        self.retry_job_from(id, RetryOptions::default()).await
    }
    async fn retry_job_from(
        &self,
        id: &str,
        options: RetryOptions,
    ) -> Result<TrainingJob, ApiError> {
        let RetryOptions {
            from_scratch,
            checkpoint,
            backend,
            dry_run,
        } = options;
        expect!(
            self.call(Request::RetryJob {
                id: id.into(),
                from_scratch,
                checkpoint,
                backend,
                dry_run,
            })
            .await,
            Job
        )
    }
    async fn metrics(
        &self,
        id: &str,
        from_step: u64,
        limit: Option<usize>,
    ) -> Result<Vec<MetricsPoint>, ApiError> {
        expect!(
            self.call(Request::JobMetrics {
                id: id.into(),
                from_step,
                limit
            })
            .await,
            Metrics
        )
    }
    async fn job_logs(&self, id: &str, lines: usize) -> Result<Vec<String>, ApiError> {
        expect!(
            self.call(Request::JobLogs {
                id: id.into(),
                lines
            })
            .await,
            Logs
        )
    }

    async fn models(&self, page: Paging) -> Result<Listing<ModelArtifact>, ApiError> {
        expect!(self.call(Request::ListModels { page }).await, Models)
    }
    async fn model(&self, id: &str) -> Result<ModelArtifact, ApiError> {
        expect!(self.call(Request::GetModel { id: id.into() }).await, Model)
    }

    async fn model_evaluation(&self, id: &str) -> Result<Evaluation, ApiError> {
        expect!(
            self.call(Request::ModelEvaluation { id: id.into() }).await,
            Evaluation
        )
    }

    /// Queues an evaluation job (see [`Request::EvaluateModels`]).
    async fn evaluate_models(
        &self,
        models: Vec<String>,
        prompts: Option<Vec<EvalPrompt>>,
        max_new_tokens: Option<u32>,
        backend: Option<String>,
        confirm_over_budget: bool,
    ) -> Result<TrainingJob, ApiError> {
        expect!(
            self.call(Request::EvaluateModels {
                models,
                prompts,
                max_new_tokens,
                backend,
                gpu_type: None,
                confirm_over_budget,
            })
            .await,
            Job
        )
    }

    /// Queues an export job (see [`Request::ExportModel`]).
    async fn export_model(
        &self,
        model: &str,
        options: ExportOptions,
    ) -> Result<TrainingJob, ApiError> {
        let ExportOptions {
            format,
            dtype,
            quantize,
            ollama,
            name,
            system_prompt,
            backend,
            gpu_type,
            confirm_over_budget,
            dry_run,
        } = options;
        expect!(
            self.call(Request::ExportModel {
                model: model.into(),
                format,
                dtype,
                quantize,
                ollama,
                name,
                system_prompt,
                backend,
                gpu_type,
                confirm_over_budget,
                dry_run,
            })
            .await,
            Job
        )
    }

    /// One example as the trainer will train it (see [`Request::InspectDataset`]).
    async fn inspect_example(
        &self,
        dataset: &str,
        model: Option<String>,
        at: InspectAt,
        max_seq_length: Option<u32>,
    ) -> Result<ExampleInspection, ApiError> {
        let (example, line) = match at {
            InspectAt::First => (None, None),
            InspectAt::Index(i) => (Some(i), None),
            InspectAt::Line(l) => (None, Some(l)),
        };
        expect!(
            self.call(Request::InspectDataset {
                dataset: dataset.into(),
                model,
                example,
                line,
                max_seq_length,
                stats: false,
            })
            .await,
            ExampleInspection
        )
        .map(|b| *b)
    }
    /// Exact token counts of a whole dataset with a model (see [`Request::InspectDataset`]).
    async fn inspect_stats(
        &self,
        dataset: &str,
        model: Option<String>,
        max_seq_length: Option<u32>,
    ) -> Result<DatasetInspection, ApiError> {
        expect!(
            self.call(Request::InspectDataset {
                dataset: dataset.into(),
                model,
                example: None,
                line: None,
                max_seq_length,
                stats: true,
            })
            .await,
            DatasetInspection
        )
        .map(|b| *b)
    }
    /// Training runs side by side (see [`Request::CompareRuns`]).
    async fn compare_runs(&self, ids: &[String]) -> Result<RunComparison, ApiError> {
        expect!(
            self.call(Request::CompareRuns { ids: ids.to_vec() }).await,
            RunComparison
        )
        .map(|b| *b)
    }
    /// What a sweep would run and cost (see [`Request::PlanSweep`]).
    async fn plan_sweep(&self, spec: SweepSpec) -> Result<SweepPlan, ApiError> {
        expect!(self.call(Request::PlanSweep { spec }).await, SweepPlan).map(|b| *b)
    }
    async fn create_sweep(
        &self,
        spec: SweepSpec,
        confirm_over_budget: bool,
    ) -> Result<Sweep, ApiError> {
        expect!(
            self.call(Request::CreateSweep {
                spec,
                confirm_over_budget
            })
            .await,
            Sweep
        )
        .map(|b| *b)
    }
    async fn list_sweeps(&self) -> Result<Vec<Sweep>, ApiError> {
        expect!(self.call(Request::ListSweeps).await, Sweeps)
    }
    async fn get_sweep(&self, id: &str) -> Result<Sweep, ApiError> {
        expect!(self.call(Request::GetSweep { id: id.into() }).await, Sweep).map(|b| *b)
    }
    async fn cancel_sweep(&self, id: &str) -> Result<Sweep, ApiError> {
        expect!(
            self.call(Request::CancelSweep { id: id.into() }).await,
            Sweep
        )
        .map(|b| *b)
    }
    async fn tracking_status(&self) -> Result<Vec<ConsumerStatus>, ApiError> {
        expect!(self.call(Request::TrackingStatus).await, Consumers)
    }
    async fn list_webhooks(&self) -> Result<Vec<WebhookInfo>, ApiError> {
        expect!(self.call(Request::ListWebhooks).await, Webhooks)
    }
    async fn test_webhook(&self, name: &str) -> Result<WebhookDelivery, ApiError> {
        expect!(
            self.call(Request::TestWebhook { name: name.into() }).await,
            WebhookDelivery
        )
        .map(|b| *b)
    }
    async fn webhook_deliveries(
        &self,
        webhook: Option<String>,
        failed: bool,
        page: Paging,
    ) -> Result<Vec<WebhookDelivery>, ApiError> {
        expect!(
            self.call(Request::WebhookDeliveries {
                webhook,
                failed,
                page
            })
            .await,
            WebhookDeliveries
        )
    }
    async fn job_checkpoints(&self, id: &str) -> Result<Vec<Checkpoint>, ApiError> {
        expect!(
            self.call(Request::JobCheckpoints { id: id.into() }).await,
            Checkpoints
        )
    }
    async fn model_from_checkpoint(&self, job: &str, step: u64) -> Result<ModelArtifact, ApiError> {
        expect!(
            self.call(Request::ModelFromCheckpoint {
                job: job.into(),
                step
            })
            .await,
            Model
        )
    }

    async fn job_comparison(&self, id: &str) -> Result<Comparison, ApiError> {
        expect!(
            self.call(Request::JobComparison { id: id.into() }).await,
            Comparison
        )
    }

    /// Downloads every file of a model into `to`, checking each sha256 as it streams and
    /// writing through a temporary file, so a failed download leaves nothing half-written.
    /// Refuses to overwrite existing files unless `force`.
    async fn download_model(
        &self,
        id: &str,
        to: &Path,
        force: bool,
        progress: Progress<'_>,
    ) -> Result<Vec<PathBuf>, ApiError> {
        let model = self.model(id).await?;
        let total: u64 = model.files.iter().map(|f| f.size).sum();
        let mut targets = Vec::new();
        for f in &model.files {
            check_path(&f.path).map_err(|e| ApiError::internal(e.to_string()))?;
            targets.push(to.join(&f.path));
        }
        // A file already there with the manifest's size and sha256 is this model's (an earlier
        // download, perhaps killed part-way): kept, not fetched again and not a conflict, so
        // running the same download again finishes it.
        let mut have = Vec::with_capacity(targets.len());
        for (f, p) in model.files.iter().zip(&targets) {
            have.push(already_downloaded(p, f).await);
        }
        if !force {
            let existing: Vec<String> = targets
                .iter()
                .zip(&have)
                .filter(|(p, have)| !**have && p.exists())
                .map(|(p, _)| p.display().to_string())
                .collect();
            if !existing.is_empty() {
                let (what, verb) = if existing.len() == 1 {
                    ("a file", "exists")
                } else {
                    ("files", "exist")
                };
                // The message is the CLI's; the dashboard asks instead, by the reason (and
                // shows the files from `details`).
                return Err(ApiError::conflict(
                    Reason::FilesExist,
                    format!(
                        "{what} already {verb}: {}; use --force to overwrite",
                        existing.join(", ")
                    ),
                )
                .with_details(format!("{what} already {verb}: {}", existing.join(", "))));
            }
        }
        let mut done = 0u64;
        for ((f, dest), have) in model.files.iter().zip(&targets).zip(have) {
            if have {
                done += f.size;
                progress(done, total);
                continue;
            }
            let io = |e: std::io::Error| {
                ApiError::invalid("to", format!("cannot write {}: {e}", dest.display()))
            };
            if let Some(dir) = dest.parent() {
                tokio::fs::create_dir_all(dir).await.map_err(io)?;
            }
            let before = done;
            let file_progress = |d: u64, _t: u64| progress(before + d, total);
            // With an S3 store the bytes come straight from storage: ranged, in parallel,
            // resumable. Without URLs (the local store), or when storage cannot be reached
            // from here, they stream through the engine.
            let via_url = match self
                .model_url(&model.id.to_string(), Some(f.path.clone()), Some(3600))
                .await
            {
                Ok(u) => download_url(&u.url, f, dest, &file_progress).await,
                Err(_) => Err(None),
            };
            match via_url {
                Ok(()) => {}
                Err(Some(e)) => return Err(e),
                Err(None) => {
                    self.download_streamed(&model, f, dest, &file_progress)
                        .await?
                }
            }
            done += f.size;
        }
        progress(total, total);
        Ok(targets)
    }

    /// One model file streamed through the engine, sha256-checked as it arrives and written
    /// through a temporary file.
    async fn download_streamed(
        &self,
        model: &ModelArtifact,
        f: &ArtifactFile,
        dest: &Path,
        progress: Progress<'_>,
    ) -> Result<(), ApiError> {
        let io = |e: std::io::Error| {
            ApiError::invalid("to", format!("cannot write {}: {e}", dest.display()))
        };
        let tmp = dest.with_file_name(format!(
            ".{}.part",
            dest.file_name().unwrap_or_default().to_string_lossy()
        ));
        let mut out = tokio::fs::File::create(&tmp).await.map_err(io)?;
        let mut body = self.download(model.id, &f.path).await?;
        let mut hash = Sha256::new();
        let mut size = 0u64;
        let result: Result<(), ApiError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| {
                    ApiError::unavailable(format!("download of {} broke off: {e}", f.path))
                })?;
                hash.update(&chunk);
                size += chunk.len() as u64;
                out.write_all(&chunk).await.map_err(io)?;
                progress(size, f.size);
            }
            out.flush().await.map_err(io)?;
            out.sync_all().await.map_err(io)?;
            let got = hex::encode(hash.finalize());
            if got != f.sha256 || size != f.size {
                return Err(ApiError::new(
                    ErrorCode::Conflict,
                    format!(
                        "{} arrived corrupted (sha256 {got} instead of {}); nothing was kept",
                        f.path, f.sha256
                    ),
                ));
            }
            tokio::fs::rename(&tmp, dest).await.map_err(io)
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }

    async fn costs(&self, period: Period) -> Result<CostsReport, ApiError> {
        expect!(self.call(Request::Costs { period }).await, Costs).map(|b| *b)
    }
    async fn notifications(
        &self,
        unread_only: bool,
        page: Paging,
    ) -> Result<Listing<Notification>, ApiError> {
        expect!(
            self.call(Request::ListNotifications { unread_only, page })
                .await,
            Notifications
        )
    }
    async fn mark_read(&self, id: Option<String>) -> Result<usize, ApiError> {
        expect!(self.call(Request::MarkRead { id }).await, Count)
    }

    /// A new token for `user` (absent: the profile's user), accepted until `expires_at`
    /// (absent: until revoked).
    async fn create_token(
        &self,
        user: Option<String>,
        expires_at: Option<Timestamp>,
    ) -> Result<NewToken, ApiError> {
        expect!(
            self.call(Request::CreateToken { user, expires_at }).await,
            Token
        )
    }
    async fn tokens(&self) -> Result<Vec<TokenInfo>, ApiError> {
        expect!(self.call(Request::ListTokens).await, Tokens)
    }
    async fn revoke_token(&self, id: &str) -> Result<TokenInfo, ApiError> {
        expect!(
            self.call(Request::RevokeToken { id: id.into() }).await,
            TokenRevoked
        )
    }

    async fn resume_dataset(&self, id: &str) -> Result<Dataset, ApiError> {
        expect!(
            self.call(Request::ResumeDataset { id: id.into() }).await,
            Dataset
        )
    }
    async fn model_url(
        &self,
        id: &str,
        file: Option<String>,
        expires_secs: Option<u64>,
    ) -> Result<crate::reports::SharedUrl, ApiError> {
        expect!(
            self.call(Request::ModelUrl {
                id: id.into(),
                file,
                expires_secs
            })
            .await,
            Url
        )
    }
    async fn delete_model(&self, id: &str, purge: bool) -> Result<ModelArtifact, ApiError> {
        expect!(
            self.call(Request::DeleteModel {
                id: id.into(),
                purge
            })
            .await,
            Model
        )
    }
    async fn storage_check(
        &self,
        create_buckets: bool,
    ) -> Result<crate::reports::StorageReport, ApiError> {
        expect!(
            self.call(Request::StorageCheck { create_buckets }).await,
            StorageCheck
        )
    }
    /// The cluster backends with their health (fresh verdicts with `check`).
    async fn backends(&self, check: bool) -> Result<Vec<crate::reports::BackendInfo>, ApiError> {
        expect!(self.call(Request::Backends { check }).await, Backends)
    }
    /// A consistent copy of the store in the data dir's `backups/`.
    async fn create_backup(&self) -> Result<crate::reports::BackupInfo, ApiError> {
        expect!(self.call(Request::CreateBackup).await, Backup)
    }
    /// The doctor's checks; with `repair`, fixes what no record depends on.
    async fn doctor(&self, repair: bool) -> Result<crate::reports::DoctorReport, ApiError> {
        expect!(self.call(Request::Doctor { repair }).await, Doctor)
    }
}

impl<T: EngineApi + ?Sized> Api for T {}

/// Byte ranges of a presigned URL.
struct UrlRanges<'a> {
    http: reqwest::Client,
    url: &'a str,
    name: &'a str,
}

#[async_trait]
impl crate::storage::ranged::RangeSource for UrlRanges<'_> {
    async fn fetch(
        &self,
        start: u64,
        end: u64,
    ) -> Result<bytes::Bytes, crate::storage::StorageError> {
        let unreachable = |e: reqwest::Error| crate::storage::StorageError::Unreachable {
            endpoint: "the presigned URL's host".into(),
            message: e.without_url().to_string(),
        };
        let r = self
            .http
            .get(self.url)
            .header("Range", format!("bytes={start}-{}", end - 1))
            .send()
            .await
            .map_err(unreachable)?;
        if !r.status().is_success() {
            return Err(crate::storage::StorageError::Remote {
                endpoint: "the presigned URL's host".into(),
                what: format!("downloading {}", self.name),
                code: format!("HTTP {}", r.status().as_u16()),
                message: String::new(),
            });
        }
        r.bytes().await.map_err(unreachable)
    }
    fn describe(&self) -> String {
        self.name.to_string()
    }
}

/// Downloads one model file from a presigned URL: 8 MiB ranges, 4 at a time, resuming a
/// partial download of the same file, the sha256 checked before the rename. `Err(None)`: the
/// URL's host cannot be reached from here (the caller streams through the engine instead).
async fn download_url(
    url: &str,
    f: &ArtifactFile,
    dest: &Path,
    progress: Progress<'_>,
) -> Result<(), Option<ApiError>> {
    let source = UrlRanges {
        http: reqwest::Client::new(),
        url,
        name: &f.path,
    };
    let plan = crate::storage::ranged::RangePlan {
        range_size: 8 << 20,
        concurrency: 4,
    };
    match crate::storage::ranged::download(
        &source,
        f.size,
        &f.sha256,
        dest,
        plan,
        Some(&f.sha256),
        progress,
    )
    .await
    {
        Ok(_) => Ok(()),
        Err(crate::storage::StorageError::Unreachable { .. }) => Err(None),
        Err(e @ crate::storage::StorageError::Corrupt { .. }) => {
            Err(Some(ApiError::new(ErrorCode::Conflict, e.to_string())))
        }
        Err(e) => Err(Some(ApiError::unavailable(format!(
            "downloading {}: {e}",
            f.path
        )))),
    }
}

/// Whether `path` already holds `f` exactly (its size, then its sha256).
async fn already_downloaded(path: &Path, f: &ArtifactFile) -> bool {
    if !tokio::fs::metadata(path)
        .await
        .is_ok_and(|m| m.is_file() && m.len() == f.size)
    {
        return false;
    }
    let path = path.to_path_buf();
    let expected = f.sha256.clone();
    tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(path)?;
        let mut hash = Sha256::new();
        std::io::copy(&mut file, &mut hash)?;
        Ok::<_, std::io::Error>(hex::encode(hash.finalize()) == expected)
    })
    .await
    .is_ok_and(|r| r.unwrap_or(false))
}

/// Where and from what a retried job starts ([`Request::RetryJob`]'s options).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetryOptions {
    pub from_scratch: bool,
    pub checkpoint: Option<u64>,
    pub backend: Option<String>,
    /// Only say what the retry would queue.
    pub dry_run: bool,
}

/// Which example of a dataset to inspect.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InspectAt {
    #[default]
    First,
    /// 0-based among its records.
    Index(u64),
    /// 1-based line of the file.
    Line(u64),
}
