//! The engine in this process, behind [`EngineApi`]. Every request runs against an engine
//! handle that acts for one user; blocking store work (redb reads and commits) runs on the
//! blocking pool, never on the async workers.

use super::*;
use crate::domain::*;
use crate::engine::{IdKind, NewDataset, pick};
use crate::store::Page;
use crate::training::{GpuCatalog, presets};
use crate::{Engine, EngineError, JobRequest};
use futures::TryStreamExt;
use std::str::FromStr;

/// The embedded engine as an API. Cheap to clone.
#[derive(Clone)]
pub struct LocalApi {
    engine: Engine,
    tokens: TokenStore,
    /// Whether this caller is the engine's owner (embedded, or on the Unix socket as the
    /// profile's user): it alone may make the owner-only requests.
    owner: bool,
}

impl LocalApi {
    /// The engine, acting for the engine handle's user, as its owner.
    pub fn new(engine: Engine) -> Self {
        let tokens = TokenStore::new(
            engine.store().clone(),
            engine.profile_user(),
            engine.config().profile.name.clone(),
        );
        Self {
            engine,
            tokens,
            owner: true,
        }
    }

    /// The same engine acting for `user`, who is the owner only when `owner` is set.
    pub fn for_user(&self, user: UserId, owner: bool) -> Self {
        Self {
            engine: self.engine.as_user(user),
            tokens: self.tokens.clone(),
            owner,
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn token_store(&self) -> &TokenStore {
        &self.tokens
    }

    /// Whether this caller sees engine-wide figures and settings (every user's job counts and
    /// storage in `/metrics`, the change log's seq in the mirror's status, the storage,
    /// backends, mirror and paths in `config show`): the owner, and the profile's own user
    /// with its token over TCP. Other users see their own figures, or nothing.
    pub fn sees_engine(&self) -> bool {
        self.owner || self.engine.user_id() == self.engine.profile_user()
    }
}

/// Why a caller other than the owner is refused `request` (an owner-only one).
fn owner_only(request: &Request) -> ApiError {
    let what = match request {
        Request::ImportDataset { .. } => {
            return ApiError::unauthorized_because(
                Reason::OwnerOnly,
                "only the engine's owner (on its Unix socket) may import a file by path; send its bytes instead",
            );
        }
        Request::CreateToken { .. } | Request::ListTokens | Request::RevokeToken { .. } => {
            "managing tokens (`tokens create`, `list`, `revoke`)"
        }
        Request::StorageCheck { .. } => "creating buckets (`storage check --create-buckets`)",
        Request::MirrorVerify => "`mirror verify`",
        Request::MirrorMigrate { .. } => "`mirror migrate`",
        Request::CreateBackup => "`backup create`",
        Request::Doctor { .. } => "`doctor`",
        other => other.op(),
    };
    ApiError::unauthorized_because(
        Reason::OwnerOnly,
        format!(
            "{what} is for the engine's owner: run it on the engine's machine (through its Unix socket)"
        ),
    )
}

/// The mirror's status as a caller who does not see the engine sees it: its state and when it
/// last synced, without the change log's seqs, its target or its error text.
fn mirror_for_user(mut s: crate::mirror::MirrorStatus) -> crate::mirror::MirrorStatus {
    s.target = None;
    s.acked_seq = 0;
    s.last_seq = 0;
    s.behind = 0;
    s.backfilled_rows = 0;
    s.last_error = s
        .last_error
        .map(|_| "(shown to the engine's owner)".to_string());
    s
}

/// The sections of `config show` only callers who see the engine get: where and how the
/// engine stores, runs, mirrors and serves.
const ENGINE_SECTIONS: [&str; 5] = ["storage", "backends", "mirror", "trainer", "engine"];

/// Runs blocking engine work off the async workers.
async fn blocking<T: Send + 'static>(
    engine: &Engine,
    f: impl FnOnce(&Engine) -> Result<T, EngineError> + Send + 'static,
) -> Result<T, ApiError> {
    let e = engine.clone();
    crate::store::off_runtime(move || f(&e))
        .await
        .map_err(|e| ApiError::internal(format!("engine task failed: {e}")))?
        .map_err(ApiError::from)
}

/// Runs blocking work of this API (its engine's, its tokens') off the async workers.
async fn off<T: Send + 'static>(
    api: &LocalApi,
    f: impl FnOnce(&LocalApi) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let api = api.clone();
    crate::store::off_runtime(move || f(&api))
        .await
        .map_err(|e| ApiError::internal(format!("engine task failed: {e}")))?
}

/// Checks a request's strings at the edge: lengths and control characters.
fn check_field(field: &str, value: &str) -> Result<(), ApiError> {
    if value.len() > MAX_FIELD_LEN {
        return Err(ApiError::invalid(
            field,
            format!(
                "`{field}` is {} bytes; at most {MAX_FIELD_LEN}",
                value.len()
            ),
        ));
    }
    Ok(())
}

fn page(p: Paging) -> Page {
    Page {
        offset: p.offset,
        limit: p.limit.max(1),
    }
}

/// Resolves an id or unique prefix. A full id is looked up directly (no scan), so clients
/// that pass ids pay nothing for prefix support.
macro_rules! resolver {
    ($name:ident, $ty:ty, $kind:expr, $list:expr) => {
        fn $name(engine: &Engine, query: &str) -> Result<$ty, EngineError> {
            if let Ok(u) = uuid::Uuid::from_str(query.trim()) {
                return Ok(<$ty>::from_bytes(*u.as_bytes()));
            }
            check_field("id", query).map_err(|e| EngineError::Invalid(e.message))?;
            let all = $list(engine)?;
            pick($kind, query, all)
        }
    };
}
/// A dataset by full id, unique id prefix, or unique name.
fn dataset_id(engine: &Engine, query: &str) -> Result<DatasetId, EngineError> {
    if let Ok(u) = uuid::Uuid::from_str(query.trim()) {
        return Ok(DatasetId::from_bytes(*u.as_bytes()));
    }
    check_field("id", query).map_err(|e| EngineError::Invalid(e.message))?;
    engine.resolve_dataset(query)
}
resolver!(job_id, JobId, IdKind::Job, |e: &Engine| e
    .jobs(None, Page::ALL)
    .map(|v| v.into_iter().map(|j| j.id).collect::<Vec<_>>()));
resolver!(model_id, ArtifactId, IdKind::Model, |e: &Engine| e
    .artifacts(Page::ALL)
    .map(|v| v.into_iter().map(|a| a.id).collect::<Vec<_>>()));
resolver!(sweep_id, SweepId, IdKind::Sweep, |e: &Engine| e
    .sweeps()
    .map(|v| v.into_iter().map(|s| s.id).collect::<Vec<_>>()));

/// A sweep spec with its dataset and model named by full id (as the sweep record keeps it:
/// a prefix may become ambiguous later).
fn sweep_spec(engine: &Engine, mut spec: SweepSpec) -> Result<SweepSpec, EngineError> {
    spec.job.dataset = dataset_id(engine, &spec.job.dataset)?.to_string();
    if let Some(m) = spec.job.from_model.take() {
        spec.job.from_model = Some(model_id(engine, &m)?.to_string());
    }
    Ok(spec)
}
resolver!(
    notification_id,
    NotificationId,
    IdKind::Notification,
    |e: &Engine| e
        .notifications(false, Page::ALL)
        .map(|v| v.into_iter().map(|n| n.id).collect::<Vec<_>>())
);

fn job_request(engine: &Engine, spec: JobSpec) -> Result<JobRequest, EngineError> {
    Ok(JobRequest {
        dataset_id: dataset_id(engine, &spec.dataset)?,
        preset: spec.preset,
        sets: spec.sets,
        gpu_type: spec.gpu_type,
        gpu_count: spec.gpu_count,
        backend: spec.backend,
        from_model: spec
            .from_model
            .as_deref()
            .map(|m| model_id(engine, m))
            .transpose()?,
    })
}

fn listing<T>(items: Vec<T>, total: usize, p: Paging) -> Listing<T> {
    Listing {
        items,
        total,
        offset: p.offset,
        limit: p.limit,
    }
}

/// Lists the whole (filtered) set and slices it: for the lists that filter on content.
fn slice<T>(all: Vec<T>, p: Paging) -> Listing<T> {
    let total = all.len();
    let items = all.into_iter().skip(p.offset).take(p.limit).collect();
    listing(items, total, p)
}

fn matches_search(d: &Dataset, q: &str) -> bool {
    let q = q.to_lowercase();
    d.name.to_lowercase().contains(&q)
        || d.file_name.to_lowercase().contains(&q)
        || d.description
            .as_deref()
            .is_some_and(|t| t.to_lowercase().contains(&q))
}

impl LocalApi {
    fn catalog(&self) -> Catalog {
        let cfg = &self.engine.config().training;
        let (catalog, gpu_error) = match GpuCatalog::from_config(cfg) {
            Ok(c) => (c, None),
            Err(e) => (GpuCatalog::builtin(), Some(e.to_string())),
        };
        let gpus = self
            .engine
            .catalog_for_backend(catalog, &cfg.default_backend)
            .all()
            .to_vec();
        Catalog {
            presets: presets::list(cfg),
            default_preset: cfg.default_preset.clone(),
            gpus,
            gpu_error,
            default_gpu: self.engine.default_gpu_for_backend(&cfg.default_backend),
            default_gpu_count: cfg.default_gpu_count,
            backends: self.engine.backend_names(),
            default_backend: cfg.default_backend.clone(),
            profile: self.engine.config().profile.name.clone(),
            storage: self.engine.storage_kind().to_string(),
            base_models: self.engine.base_models(),
        }
    }

    /// The configuration; for a caller who does not see the engine ([`LocalApi::sees_engine`]),
    /// without [`ENGINE_SECTIONS`] (the S3 endpoint and buckets, backend addresses, the
    /// mirror's URL), paths and secrets.
    fn config_info(&self) -> Result<ConfigInfo, ApiError> {
        let mut info = self.full_config_info()?;
        if !self.sees_engine() {
            if let Some(map) = info.config.as_object_mut() {
                for k in ENGINE_SECTIONS {
                    map.remove(k);
                }
            }
            let mut table: toml::Table = toml::from_str(&info.config_toml)
                .map_err(|err| ApiError::internal(err.to_string()))?;
            for k in ENGINE_SECTIONS {
                table.remove(k);
            }
            info.config_toml = format!(
                "# [{}] are shown to the engine's owner only\n{}",
                ENGINE_SECTIONS.join("], ["),
                toml::to_string_pretty(&table)
                    .map_err(|err| ApiError::internal(err.to_string()))?
            );
            info.paths.clear();
            info.secrets.clear();
        }
        Ok(info)
    }

    fn full_config_info(&self) -> Result<ConfigInfo, ApiError> {
        let e = &self.engine;
        let p = e.paths();
        let s = |p: std::path::PathBuf| p.to_string_lossy().into_owned();
        let paths = [
            ("config_file", s(p.config_file())),
            ("secrets_file", s(p.secrets_file())),
            ("data_dir", s(p.data_dir.clone())),
            ("database", s(p.database_file())),
            ("objects", s(p.objects_dir())),
            ("logs", s(p.log_dir())),
            ("trainer_cache", s(p.cache_dir.clone())),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Ok(ConfigInfo {
            config: serde_json::to_value(e.config())
                .map_err(|err| ApiError::internal(err.to_string()))?,
            config_toml: toml::to_string_pretty(e.config())
                .map_err(|err| ApiError::internal(err.to_string()))?,
            paths,
            secrets: e
                .secrets()
                .describe()
                .into_iter()
                .map(|(name, value, source)| SecretInfo {
                    name,
                    value,
                    source: source.to_string(),
                })
                .collect(),
            schema_version: e.schema_version()?,
            storage: e.storage_kind().to_string(),
        })
    }

    fn hello(&self) -> Result<EngineInfo, ApiError> {
        let e = &self.engine;
        Ok(EngineInfo {
            api_version: API_VERSION,
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
            user_id: e.user_id(),
            profile: e.config().profile.name.clone(),
            storage: e.storage_kind().to_string(),
            store_path: e.paths().database_file().to_string_lossy().into_owned(),
            schema_version: e.schema_version()?,
            last_seq: e.store().last_seq()?,
        })
    }

    /// Answers one request.
    pub async fn dispatch(&self, request: Request) -> Result<Reply, ApiError> {
        if request.owner_only() && !self.owner {
            return Err(owner_only(&request));
        }
        let e = &self.engine;
        Ok(match request {
            Request::Hello => Reply::Hello(off(self, |api| api.hello()).await?),
            Request::Catalog => Reply::Catalog(self.catalog()),
            Request::Config => Reply::Config(off(self, |api| api.config_info()).await?),

            Request::ListDatasets {
                status,
                search,
                page: p,
            } => {
                if let Some(q) = &search {
                    check_field("search", q)?;
                }
                blocking(e, move |e| {
                    Ok(
                        match search.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
                            // A search filters on content: read them all.
                            Some(q) => slice(
                                e.datasets(status, Page::ALL)?
                                    .into_iter()
                                    .filter(|d| matches_search(d, q))
                                    .collect(),
                                p,
                            ),
                            // Otherwise only the page is read, and the total is kept count.
                            None => {
                                let total = e.store().count_datasets(e.user_id(), status)?;
                                listing(e.datasets(status, page(p))?, total, p)
                            }
                        },
                    )
                })
                .await
                .map(Reply::Datasets)?
            }
            Request::GetDataset { id } => {
                Reply::Dataset(blocking(e, move |e| e.dataset(dataset_id(e, &id)?)).await?)
            }
            Request::CreateDataset {
                file_name,
                file_size,
                name,
                description,
            } => {
                check_field("file_name", &file_name)?;
                check_field("name", name.as_deref().unwrap_or(""))?;
                check_field("description", description.as_deref().unwrap_or(""))?;
                let dataset = blocking(e, move |e| {
                    e.create_streamed_dataset(
                        &file_name,
                        file_size,
                        NewDataset { name, description },
                    )
                })
                .await?;
                let upload = UploadTarget::Engine {
                    method: "PUT".into(),
                    path: format!("/api/datasets/{}/upload", dataset.id),
                };
                Reply::Upload(UploadTicket { dataset, upload })
            }
            Request::ImportDataset {
                path,
                name,
                description,
            } => {
                check_field("path", &path)?;
                check_field("name", name.as_deref().unwrap_or(""))?;
                check_field("description", description.as_deref().unwrap_or(""))?;
                let d = e
                    .add_dataset(
                        std::path::Path::new(&path),
                        NewDataset { name, description },
                        &|_, _| {},
                    )
                    .await?;
                Reply::Dataset(d)
            }
            Request::ConfirmDataset { id } => {
                let d = blocking(e, move |e| e.dataset(dataset_id(e, &id)?)).await?;
                if d.status == DatasetStatus::Uploading {
                    return Err(ApiError::new(
                        ErrorCode::Conflict,
                        format!("dataset {} has not been uploaded yet", d.id.short()),
                    ));
                }
                e.wake_validation();
                Reply::Dataset(d)
            }
            Request::ValidateDataset { id } => {
                let id = blocking(e, move |e| dataset_id(e, &id)).await?;
                Reply::Dataset(e.validate_dataset(id).await?)
            }
            Request::UpdateDataset {
                id,
                name,
                description,
            } => {
                check_field("name", name.as_deref().unwrap_or(""))?;
                check_field("description", description.as_deref().unwrap_or(""))?;
                Reply::Dataset(
                    blocking(e, move |e| {
                        let id = dataset_id(e, &id)?;
                        let mut d = e.dataset(id)?;
                        if let Some(n) = &name {
                            d = e.rename_dataset(id, n)?;
                        }
                        if let Some(t) = &description {
                            d = e.describe_dataset(id, t)?;
                        }
                        Ok(d)
                    })
                    .await?,
                )
            }
            Request::CleanDataset {
                id,
                drop_duplicates,
                name,
            } => {
                check_field("name", name.as_deref().unwrap_or(""))?;
                let id = blocking(e, move |e| dataset_id(e, &id)).await?;
                let (dataset, report) = e
                    .clean_dataset(
                        id,
                        crate::engine::CleanOptions {
                            drop_duplicates,
                            name,
                        },
                    )
                    .await?;
                Reply::Cleaned(Cleaned { dataset, report })
            }
            Request::DeleteDataset { id, purge } => {
                let id = blocking(e, move |e| dataset_id(e, &id)).await?;
                Reply::Dataset(e.delete_dataset(id, purge).await?)
            }
            Request::ResumeDataset { id } => {
                Reply::Dataset(e.resume_dataset(&id, &|_, _| {}).await?)
            }

            Request::Estimate { spec } => Reply::Estimate(Box::new(
                blocking(e, move |e| e.estimate(&job_request(e, spec)?)).await?,
            )),
            Request::CreateJob {
                spec,
                confirm_over_budget,
            } => {
                let req = blocking(e, move |e| job_request(e, spec)).await?;
                Reply::Job(e.create_job(req, confirm_over_budget).await?)
            }
            Request::ListJobs { status, page: p } => blocking(e, move |e| {
                let total = e.store().count_jobs(e.user_id(), status)?;
                Ok(listing(e.jobs(status, page(p))?, total, p))
            })
            .await
            .map(Reply::Jobs)?,
            Request::GetJob { id } => {
                Reply::Job(blocking(e, move |e| e.job(job_id(e, &id)?)).await?)
            }
            Request::CancelJob { id } => {
                let id = blocking(e, move |e| job_id(e, &id)).await?;
                Reply::Job(e.cancel_job(id).await?)
            }
            Request::RetryJob {
                id,
                from_scratch,
                checkpoint,
                backend,
                dry_run,
            } => {
                let from = crate::RetryFrom::of(from_scratch, checkpoint)?;
                let id = blocking(e, move |e| job_id(e, &id)).await?;
                Reply::Job(e.retry_job(id, from, backend, dry_run).await?)
            }
            Request::JobMetrics {
                id,
                from_step,
                limit,
            } => Reply::Metrics(
                blocking(e, move |e| {
                    e.metrics(job_id(e, &id)?, from_step, limit.unwrap_or(usize::MAX))
                })
                .await?,
            ),
            Request::JobLogs { id, lines } => {
                let id = blocking(e, move |e| job_id(e, &id)).await?;
                Reply::Logs(e.job_log_tail(id, lines.min(100_000)).await?)
            }

            Request::ListModels { page: p } => {
                blocking(e, move |e| Ok(slice(e.artifacts(Page::ALL)?, p)))
                    .await
                    .map(Reply::Models)?
            }
            Request::GetModel { id } => {
                Reply::Model(blocking(e, move |e| e.artifact(model_id(e, &id)?)).await?)
            }
            Request::ModelEvaluation { id } => Reply::Evaluation(
                blocking(e, move |e| e.model_evaluation(model_id(e, &id)?)).await?,
            ),
            Request::EvaluateModels {
                models,
                prompts,
                max_new_tokens,
                backend,
                gpu_type,
                confirm_over_budget,
            } => {
                let models = blocking(e, move |e| {
                    models
                        .iter()
                        .map(|m| model_id(e, m))
                        .collect::<Result<Vec<_>, _>>()
                })
                .await?;
                let req = crate::EvaluationRequest {
                    models,
                    prompts,
                    max_new_tokens,
                    backend,
                    gpu_type,
                };
                Reply::Job(e.evaluate_models(req, confirm_over_budget).await?)
            }
            Request::ExportModel {
                model,
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
            } => {
                let model = blocking(e, move |e| model_id(e, &model)).await?;
                let req = crate::ExportRequest {
                    model,
                    format,
                    dtype,
                    quantize,
                    ollama,
                    name,
                    system_prompt,
                    backend,
                    gpu_type,
                    dry_run,
                };
                Reply::Job(e.export_model(req, confirm_over_budget).await?)
            }
            Request::JobCheckpoints { id } => {
                Reply::Checkpoints(blocking(e, move |e| e.job_checkpoints(job_id(e, &id)?)).await?)
            }
            Request::CompareRuns { ids } => Reply::RunComparison(Box::new(
                blocking(e, move |e| {
                    let ids = ids
                        .iter()
                        .map(|id| job_id(e, id))
                        .collect::<Result<Vec<_>, _>>()?;
                    e.compare_runs(&ids)
                })
                .await?,
            )),
            Request::PlanSweep { spec } => Reply::SweepPlan(Box::new(
                blocking(e, move |e| e.plan_sweep(&sweep_spec(e, spec)?)).await?,
            )),
            Request::CreateSweep {
                spec,
                confirm_over_budget,
            } => {
                let spec = blocking(e, move |e| sweep_spec(e, spec)).await?;
                Reply::Sweep(Box::new(e.create_sweep(spec, confirm_over_budget).await?))
            }
            Request::ListSweeps => Reply::Sweeps(blocking(e, |e| e.sweeps()).await?),
            Request::GetSweep { id } => Reply::Sweep(Box::new(
                blocking(e, move |e| e.sweep(sweep_id(e, &id)?)).await?,
            )),
            Request::CancelSweep { id } => {
                let id = blocking(e, move |e| sweep_id(e, &id)).await?;
                Reply::Sweep(Box::new(e.cancel_sweep(id).await?))
            }
            Request::ListWebhooks => Reply::Webhooks(e.webhooks().await?),
            Request::TrackingStatus => {
                let mut all = blocking(e, |e| e.tracking_status()).await?;
                // Where they send is the engine's business: its owner sees it.
                if !self.sees_engine() {
                    all.iter_mut().for_each(|c| c.target.clear());
                }
                Reply::Consumers(all)
            }
            Request::TestWebhook { name } => {
                Reply::WebhookDelivery(Box::new(e.test_webhook(&name).await?))
            }
            Request::WebhookDeliveries {
                webhook,
                failed,
                page: p,
            } => Reply::WebhookDeliveries(e.webhook_deliveries(webhook, failed, page(p)).await?),
            Request::InspectDataset {
                dataset,
                model,
                example,
                line,
                max_seq_length,
                stats,
            } => {
                let at = match (example, line) {
                    (Some(_), Some(_)) => {
                        return Err(EngineError::InvalidField {
                            field: "line".into(),
                            message: "name an example or a line, not both".into(),
                        }
                        .into());
                    }
                    (Some(i), None) => InspectAt::Index(i),
                    (None, Some(l)) => InspectAt::Line(l),
                    (None, None) => InspectAt::First,
                };
                let dataset = blocking(e, move |e| dataset_id(e, &dataset)).await?;
                let req = crate::InspectRequest {
                    dataset,
                    model,
                    at,
                    max_seq_length,
                    stats,
                };
                match e.inspect_dataset(req).await? {
                    crate::Inspected::Example(x) => Reply::ExampleInspection(x),
                    crate::Inspected::Stats(s) => Reply::DatasetInspection(s),
                }
            }
            Request::ModelFromCheckpoint { job, step } => {
                let id = blocking(e, move |e| job_id(e, &job)).await?;
                Reply::Model(e.model_from_checkpoint(id, step).await?)
            }
            Request::JobComparison { id } => {
                Reply::Comparison(blocking(e, move |e| e.job_comparison(job_id(e, &id)?)).await?)
            }
            Request::ModelUrl {
                id,
                file,
                expires_secs,
            } => {
                let id = blocking(e, move |e| model_id(e, &id)).await?;
                let ttl = expires_secs
                    .map(std::time::Duration::from_secs)
                    .unwrap_or(crate::storage::Bucket::DOWNLOAD_URL_TTL);
                Reply::Url(e.model_url(id, file.as_deref(), ttl).await?)
            }
            Request::DeleteModel { id, purge } => {
                let id = blocking(e, move |e| model_id(e, &id)).await?;
                Reply::Model(e.delete_model(id, purge).await?)
            }
            Request::StorageCheck { create_buckets } => {
                Reply::StorageCheck(e.storage_check(create_buckets).await)
            }
            Request::Backends { check } => Reply::Backends(if check {
                e.check_backends().await
            } else {
                e.backends()
            }),
            Request::CreateBackup => {
                Reply::Backup(blocking(e, |e| Ok(e.store().backup("manual")?)).await?)
            }
            Request::Doctor { repair } => Reply::Doctor(e.doctor(repair).await?),

            Request::Costs { period } => Reply::Costs(Box::new(
                blocking(e, move |e| {
                    Ok(CostsReport {
                        summary: e.cost_summary(period)?,
                        month_spent: e.spent_this_month().ok(),
                    })
                })
                .await?,
            )),
            Request::ListNotifications {
                unread_only,
                page: p,
            } => blocking(e, move |e| {
                let total = e.store().count_notifications(e.user_id(), unread_only)?;
                Ok(listing(e.notifications(unread_only, page(p))?, total, p))
            })
            .await
            .map(Reply::Notifications)?,
            Request::MarkRead { id } => Reply::Count(
                blocking(e, move |e| {
                    let id = id.map(|q| notification_id(e, &q)).transpose()?;
                    e.mark_read(id)
                })
                .await?,
            ),

            Request::CreateToken { user, expires_at } => {
                check_field("user", user.as_deref().unwrap_or(""))?;
                let tokens = self.tokens.clone();
                Reply::Token(
                    crate::store::off_runtime(move || tokens.create(user.as_deref(), expires_at))
                        .await
                        .map_err(|e| ApiError::internal(e.to_string()))??,
                )
            }
            Request::ListTokens => Reply::Tokens(off(self, |api| api.tokens.list()).await?),
            Request::RevokeToken { id } => {
                Reply::TokenRevoked(off(self, move |api| api.tokens.revoke(&id)).await?)
            }

            Request::MirrorStatus => {
                let status = blocking(e, move |e| e.mirror_status()).await?;
                Reply::Mirror(if self.sees_engine() {
                    status
                } else {
                    mirror_for_user(status)
                })
            }
            Request::MirrorSync { timeout_secs } => {
                let secs = timeout_secs.unwrap_or(60);
                if !(1..=3600).contains(&secs) {
                    return Err(ApiError::invalid(
                        "timeout_secs",
                        "timeout_secs must be between 1 and 3600",
                    ));
                }
                let status = e.mirror_sync(std::time::Duration::from_secs(secs)).await?;
                Reply::Mirror(if self.sees_engine() {
                    status
                } else {
                    mirror_for_user(status)
                })
            }
            Request::MirrorVerify => Reply::MirrorVerify(e.mirror_verify().await?),
            Request::MirrorMigrate { dry_run } => {
                Reply::MirrorMigrate(e.mirror_migrate(dry_run).await?)
            }
        })
    }
}

#[async_trait]
impl EngineApi for LocalApi {
    async fn call(&self, request: Request) -> Result<Reply, ApiError> {
        self.dispatch(request).await
    }

    async fn upload(&self, dataset: DatasetId, body: ByteStream) -> Result<Dataset, ApiError> {
        let mut reader = tokio_util::io::StreamReader::new(body.map_err(std::io::Error::other));
        Ok(self.engine.receive_upload(dataset, &mut reader).await?)
    }

    async fn download(&self, model: ArtifactId, file: &str) -> Result<ByteStream, ApiError> {
        let reader = self.engine.open_artifact_file(model, file).await?;
        Ok(Box::pin(tokio_util::io::ReaderStream::with_capacity(
            reader,
            256 * 1024,
        )))
    }

    async fn changes(&self, after: u64) -> Result<ChangeStream, ApiError> {
        change_feed(self.engine.clone(), after).await
    }

    async fn live(&self) -> Result<LiveStream, ApiError> {
        Ok(live_feed(self.engine.clone()))
    }

    async fn chat(
        &self,
        request: brightrun_api::ChatRequest,
    ) -> Result<brightrun_api::ChatStream, ApiError> {
        let query = request.model.clone();
        let id = blocking(&self.engine, move |e| model_id(e, &query)).await?;
        Ok(self.engine.chat(id, request).await?)
    }

    fn connection(&self) -> Connection {
        Connection::Embedded
    }

    fn shares_filesystem(&self) -> bool {
        // Only the owner may have the engine read a file by path.
        self.owner
    }
}
