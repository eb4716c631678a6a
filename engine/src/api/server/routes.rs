//! The seed's REST routes, in the seed's shapes: `{success, data}` and `{error, details}`,
//! list replies `{<things>, total, page, limit, totalPages}` with 1-based pages. Each route
//! turns into one engine [`Request`], so the routes and the typed API cannot drift apart.
//! Input is checked here: unknown fields, wrong types and over-long strings answer 400
//! naming the field.

use super::{Caller, HttpError, Shared, ok};
use crate::api::*;
use crate::domain::{DatasetStatus, JobStatus};
use crate::engine::Period;
use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Json, Path as UrlPath, Query};
use axum::handler::Handler;
use axum::http::Method;
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::MethodFilter;
use serde::Deserialize;

/// The daemon's routes, each path and method with its handler: the router is built from them,
/// and the OpenAPI document describes exactly these (its test compares them).
pub(super) struct Routes {
    router: Router<Shared>,
    listed: Vec<(&'static str, Method)>,
}

impl Routes {
    pub(super) fn new() -> Self {
        Self {
            router: Router::new(),
            listed: Vec::new(),
        }
    }

    pub(super) fn add<H, T>(mut self, method: Method, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, Shared>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a method a router serves");
        self.router = self.router.route(path, axum::routing::on(filter, handler));
        self.listed.push((path, method));
        self
    }

    /// Each route as (path, method).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) fn listed(&self) -> &[(&'static str, Method)] {
        &self.listed
    }

    pub(super) fn into_router(self) -> Router<Shared> {
        self.router
    }
}

/// The id in a route's path (a full id, a unique prefix, or a dataset's name). A path axum
/// cannot read (not UTF-8) answers 400 in the API's error shape.
pub(super) struct Id(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, HttpError> {
        match UrlPath::<String>::from_request_parts(parts, state).await {
            // Full ids only: a prefix (or a name) is the CLI's convenience, and over HTTP it
            // would answer one record today and `ambiguous` tomorrow.
            Ok(UrlPath(id)) if uuid::Uuid::try_parse(&id).is_ok() => Ok(Id(id)),
            Ok(UrlPath(id)) => Err(HttpError(ApiError::not_found(format!(
                "no record has the id `{}`: the HTTP API takes full ids (prefixes and names are \
                 the CLI's)",
                crate::text::clean_line(&id.chars().take(80).collect::<String>())
            )))),
            Err(e) => Err(HttpError(ApiError::invalid("id", e.body_text()))),
        }
    }
}

/// The most a list route returns per page.
pub(super) const MAX_LIMIT: usize = 100;

/// The last page a list route answers (past it, with up to 100 records a page, the offset is
/// past any store).
pub(super) const MAX_PAGE: usize = 1_000_000_000;

/// A body axum could not read as JSON at all (not JSON, no JSON content type, too large).
pub(super) fn bad_json(e: JsonRejection) -> HttpError {
    HttpError(ApiError::new(
        ErrorCode::Invalid,
        format!("the request body is not valid: {}", e.body_text()),
    ))
}

/// A query its type refused, naming the parameter by the path `serde_path_to_error` recorded
/// while axum decoded it (found in the rejection's error chain).
pub(super) fn bad_query(e: QueryRejection) -> HttpError {
    let field = match &e {
        QueryRejection::FailedToDeserializeQueryString(inner) => {
            typed_path::<serde::de::value::Error>(inner)
        }
        _ => None,
    };
    HttpError(ApiError {
        field,
        ..ApiError::new(
            ErrorCode::Invalid,
            format!("the query is not valid: {}", e.body_text()),
        )
    })
}

/// The path of the `serde_path_to_error::Error<E>` in an error's chain, when it names one.
fn typed_path<E: std::error::Error + 'static>(
    e: &(dyn std::error::Error + 'static),
) -> Option<String> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(p) = err.downcast_ref::<serde_path_to_error::Error<E>>() {
            let path = p.path().to_string();
            return (path != ".").then_some(path);
        }
        cur = err.source();
    }
    None
}

/// A JSON body decoded as a `T` ([`decode`](super::decode)): 400 naming the field at fault
/// when it is not one.
pub(super) struct JsonBody<T>(pub T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned + schemars::JsonSchema,
    S: Send + Sync,
{
    type Rejection = HttpError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, HttpError> {
        if !json_content_type(req.headers()) {
            return Err(HttpError(ApiError::new(
                ErrorCode::Invalid,
                format!("the request body is not valid: {MISSING_JSON_CONTENT_TYPE}"),
            )));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| bad_json(e.into()))?;
        decode_json_body(&bytes).map(JsonBody)
    }
}

/// What axum's `Json` answers a body without a JSON content type.
const MISSING_JSON_CONTENT_TYPE: &str = "Expected request with `Content-Type: application/json`";

/// Whether the request says its body is JSON, as axum's `Json` decides it: `application/json`
/// or `application/*+json`, parameters allowed.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok())
        .is_some_and(|m| {
            m.type_() == "application"
                && (m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json"))
        })
}

/// A body's bytes read as JSON (as axum's `Json` reads them) and decoded as a `T`: what every
/// route with a JSON body runs on it, once its content type and size are checked.
pub(super) fn decode_json_body<T>(bytes: &[u8]) -> Result<T, HttpError>
where
    T: serde::de::DeserializeOwned + schemars::JsonSchema,
{
    let Json(value) = Json::<serde_json::Value>::from_bytes(bytes).map_err(bad_json)?;
    decode_body(&value)
}

/// Decodes a body already read as JSON.
pub(super) fn decode_body<T>(value: &serde_json::Value) -> Result<T, HttpError>
where
    T: serde::de::DeserializeOwned + schemars::JsonSchema,
{
    // Every body of this API is an object: anything else is said as a whole, not as a
    // fault at `[0]` (which the fuzzer found for `[{"op":"hello"}]`).
    let kind = match value {
        serde_json::Value::Object(_) => None,
        serde_json::Value::Array(_) => Some("an array"),
        serde_json::Value::String(_) => Some("a string"),
        serde_json::Value::Number(_) => Some("a number"),
        serde_json::Value::Bool(_) => Some("a boolean"),
        serde_json::Value::Null => Some("null"),
    };
    if let Some(kind) = kind {
        return Err(HttpError(ApiError::new(
            ErrorCode::Invalid,
            format!("the request body is not valid: invalid type: {kind}, expected a JSON object"),
        )));
    }
    super::decode::decode(value).map_err(|r| {
        HttpError(ApiError {
            field: r.field,
            ..ApiError::new(
                ErrorCode::Invalid,
                format!("the request body is not valid: {}", r.message),
            )
        })
    })
}

macro_rules! parse {
    (query $e:expr) => {
        $e.map_err(bad_query)?.0
    };
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    page: Option<usize>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    search: Option<String>,
    #[serde(default)]
    unread: Option<bool>,
}

impl ListQuery {
    fn paging(&self) -> Result<(usize, usize, Paging), ApiError> {
        let page = self.page.unwrap_or(1);
        if !(1..=MAX_PAGE).contains(&page) {
            return Err(ApiError::invalid(
                "page",
                format!("page must be between 1 and {MAX_PAGE}"),
            ));
        }
        let limit = self.limit.unwrap_or(20);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::invalid(
                "limit",
                format!("limit must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let offset = (page - 1) * limit;
        Ok((page, limit, Paging { offset, limit }))
    }
}

fn paged<T: serde::Serialize>(key: &str, l: Listing<T>, page: usize, limit: usize) -> Response {
    ok(Paged {
        key,
        items: l.items,
        total: l.total,
        page,
        limit,
    })
}

/// A page as the seed answers it: `{<key>: [...], "limit", "page", "total", "totalPages"}`,
/// keys sorted (as the `serde_json::Value` this replaced wrote them), serialized directly.
struct Paged<'a, T> {
    key: &'a str,
    items: Vec<T>,
    total: usize,
    page: usize,
    limit: usize,
}

impl<T: serde::Serialize> serde::Serialize for Paged<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut keys = [self.key, "limit", "page", "total", "totalPages"];
        keys.sort_unstable();
        let mut m = s.serialize_map(Some(keys.len()))?;
        for k in keys {
            match k {
                "limit" => m.serialize_entry(k, &self.limit)?,
                "page" => m.serialize_entry(k, &self.page)?,
                "total" => m.serialize_entry(k, &self.total)?,
                "totalPages" => m.serialize_entry(k, &self.total.div_ceil(self.limit))?,
                _ => m.serialize_entry(k, &self.items)?,
            }
        }
        m.end()
    }
}

fn status<T: serde::de::DeserializeOwned>(s: &Option<String>) -> Result<Option<T>, ApiError> {
    s.as_ref()
        .map(|v| {
            serde_json::from_value(serde_json::Value::String(v.clone()))
                .map_err(|_| ApiError::invalid("status", format!("unknown status `{v}`")))
        })
        .transpose()
}

/// Answers a route with the reply's record itself (the seed's `data`), not the typed
/// envelope `/api/v1/call` uses.
async fn call(caller: &Caller, request: Request) -> Result<Response, HttpError> {
    let reply = caller.api.dispatch(request).await?;
    let mut v = serde_json::to_value(&reply).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(ok(v["data"].take()))
}

async fn list_datasets(
    caller: Caller,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, HttpError> {
    let q = parse!(query q);
    let (page, limit, paging) = q.paging()?;
    let reply = caller
        .api
        .dispatch(Request::ListDatasets {
            status: status::<DatasetStatus>(&q.status)?,
            search: q.search.clone(),
            page: paging,
        })
        .await?;
    match reply {
        Reply::Datasets(l) => Ok(paged("datasets", l, page, limit)),
        other => Err(HttpError(ApiError::internal(other.kind()))),
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewDatasetBody {
    file_name: String,
    file_size: u64,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

async fn create_dataset(
    caller: Caller,
    JsonBody(b): JsonBody<NewDatasetBody>,
) -> Result<Response, HttpError> {
    call(
        &caller,
        Request::CreateDataset {
            file_name: b.file_name,
            file_size: b.file_size,
            name: b.name,
            description: b.description,
        },
    )
    .await
}

async fn get_dataset(caller: Caller, Id(id): Id) -> Result<Response, HttpError> {
    call(&caller, Request::GetDataset { id }).await
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PatchDatasetBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

async fn patch_dataset(
    caller: Caller,
    Id(id): Id,
    JsonBody(b): JsonBody<PatchDatasetBody>,
) -> Result<Response, HttpError> {
    call(
        &caller,
        Request::UpdateDataset {
            id,
            name: b.name,
            description: b.description,
        },
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    #[serde(default)]
    purge: bool,
}

async fn delete_dataset(
    caller: Caller,
    Id(id): Id,
    q: Result<Query<DeleteQuery>, QueryRejection>,
) -> Result<Response, HttpError> {
    let purge = q.map_err(bad_query)?.0.purge;
    call(&caller, Request::DeleteDataset { id, purge }).await
}

async fn confirm_dataset(caller: Caller, Id(id): Id) -> Result<Response, HttpError> {
    call(&caller, Request::ConfirmDataset { id }).await
}

/// `GET /api/jobs/compare?ids=A,B,…`: training runs side by side.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CompareQuery {
    ids: String,
}

async fn compare_runs(
    caller: Caller,
    q: Result<Query<CompareQuery>, QueryRejection>,
) -> Result<Response, HttpError> {
    let q = parse!(query q);
    let ids = q
        .ids
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    call(&caller, Request::CompareRuns { ids }).await
}

/// `POST /api/sweeps` and `/api/sweeps/plan`: a sweep's spec (and, to start it over the
/// monthly budget, the confirmation).
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SweepBody {
    spec: crate::domain::SweepSpec,
    #[serde(default)]
    confirm_over_budget: bool,
}

async fn plan_sweep(
    caller: Caller,
    JsonBody(b): JsonBody<SweepBody>,
) -> Result<Response, HttpError> {
    call(&caller, Request::PlanSweep { spec: b.spec }).await
}

async fn create_sweep(
    caller: Caller,
    JsonBody(b): JsonBody<SweepBody>,
) -> Result<Response, HttpError> {
    call(
        &caller,
        Request::CreateSweep {
            spec: b.spec,
            confirm_over_budget: b.confirm_over_budget,
        },
    )
    .await
}

async fn list_sweeps(caller: Caller) -> Result<Response, HttpError> {
    call(&caller, Request::ListSweeps).await
}

async fn get_sweep(caller: Caller, Id(id): Id) -> Result<Response, HttpError> {
    call(&caller, Request::GetSweep { id }).await
}

async fn cancel_sweep(caller: Caller, Id(id): Id) -> Result<Response, HttpError> {
    call(&caller, Request::CancelSweep { id }).await
}

async fn tracking_status(caller: Caller) -> Result<Response, HttpError> {
    call(&caller, Request::TrackingStatus).await
}

async fn list_webhooks(caller: Caller) -> Result<Response, HttpError> {
    call(&caller, Request::ListWebhooks).await
}

async fn test_webhook(
    caller: Caller,
    UrlPath(name): UrlPath<String>,
) -> Result<Response, HttpError> {
    call(&caller, Request::TestWebhook { name }).await
}

/// `GET /api/webhooks/deliveries`'s query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveriesQuery {
    #[serde(default)]
    webhook: Option<String>,
    #[serde(default)]
    failed: bool,
    #[serde(default)]
    limit: Option<usize>,
}

async fn webhook_deliveries(
    caller: Caller,
    q: Result<Query<DeliveriesQuery>, QueryRejection>,
) -> Result<Response, HttpError> {
    let q = parse!(query q);
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be between 1 and 1000").into());
    }
    call(
        &caller,
        Request::WebhookDeliveries {
            webhook: q.webhook,
            failed: q.failed,
            page: Paging { offset: 0, limit },
        },
    )
    .await
}

/// `GET /api/datasets/{id}/inspect`'s query (see `Request::InspectDataset`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InspectQuery {
    model: Option<String>,
    example: Option<u64>,
    line: Option<u64>,
    max_seq_length: Option<u32>,
    #[serde(default)]
    stats: bool,
}

async fn inspect_dataset(
    caller: Caller,
    Id(id): Id,
    q: Result<Query<InspectQuery>, QueryRejection>,
) -> Result<Response, HttpError> {
    let q = parse!(query q);
    call(
        &caller,
        Request::InspectDataset {
            dataset: id,
            model: q.model,
            example: q.example,
            line: q.line,
            max_seq_length: q.max_seq_length,
            stats: q.stats,
        },
    )
    .await
}

/// An export job (`brightrun models export`) of the model in the path.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ExportBody {
    format: crate::domain::ExportFormat,
    #[serde(default)]
    dtype: Option<crate::domain::ExportDtype>,
    /// A llama.cpp quantization (`gguf` only).
    #[serde(default)]
    quantize: Option<String>,
    /// Also an Ollama Modelfile (`gguf` only).
    #[serde(default)]
    ollama: bool,
    #[serde(default)]
    name: Option<String>,
    /// The Modelfile's `SYSTEM` prompt (with `ollama`).
    #[serde(default)]
    system_prompt: Option<String>,
    #[serde(default)]
    backend: Option<String>,
    #[serde(default)]
    gpu_type: Option<String>,
    #[serde(default)]
    confirm_over_budget: bool,
    /// Only estimate: answer the job it would queue, without queueing it.
    #[serde(default)]
    dry_run: bool,
}

async fn export_model(
    caller: Caller,
    Id(id): Id,
    JsonBody(b): JsonBody<ExportBody>,
) -> Result<Response, HttpError> {
    call(
        &caller,
        Request::ExportModel {
            model: id,
            format: b.format,
            dtype: b.dtype,
            quantize: b.quantize,
            ollama: b.ollama,
            name: b.name,
            system_prompt: b.system_prompt,
            backend: b.backend,
            gpu_type: b.gpu_type,
            confirm_over_budget: b.confirm_over_budget,
            dry_run: b.dry_run,
        },
    )
    .await
}

/// An evaluation job (`brightrun models eval`): the models and, optionally, the prompts.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct EvaluateBody {
    /// Model ids, unique prefixes or names (at most 8).
    models: Vec<String>,
    /// The prompt set; none: the first model's held-out examples and the probes.
    #[serde(default)]
    prompts: Option<Vec<crate::domain::EvalPrompt>>,
    #[serde(default)]
    max_new_tokens: Option<u32>,
    #[serde(default)]
    backend: Option<String>,
    #[serde(default)]
    gpu_type: Option<String>,
    #[serde(default)]
    confirm_over_budget: bool,
}

async fn evaluate_models(
    caller: Caller,
    JsonBody(b): JsonBody<EvaluateBody>,
) -> Result<Response, HttpError> {
    call(
        &caller,
        Request::EvaluateModels {
            models: b.models,
            prompts: b.prompts,
            max_new_tokens: b.max_new_tokens,
            backend: b.backend,
            gpu_type: b.gpu_type,
            confirm_over_budget: b.confirm_over_budget,
        },
    )
    .await
}

async fn job_comparison(caller: Caller, Id(id): Id) -> Result<Response, HttpError> {
    call(&caller, Request::JobComparison { id }).await
}

/// A job as the seed's form posts it: hyperparameters as an object of overrides.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct JobBody {
    dataset_id: String,
    #[serde(default)]
    preset: Option<String>,
    #[serde(default)]
    hyperparameters: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    gpu_type: Option<String>,
    #[serde(default)]
    gpu_count: Option<u32>,
    #[serde(default)]
    backend: Option<String>,
    /// Train on from this model's adapter (id, prefix or name).
    #[serde(default)]
    from_model: Option<String>,
    #[serde(default)]
    confirm_over_budget: bool,
}

impl JobBody {
    fn spec(&self) -> Result<JobSpec, ApiError> {
        let mut sets = Vec::new();
        for (k, v) in &self.hyperparameters {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| x.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                _ => {
                    return Err(ApiError::invalid(
                        format!("hyperparameters.{k}"),
                        format!(
                            "hyperparameters.{k} must be a number, a string, a boolean or a list"
                        ),
                    ));
                }
            };
            sets.push((k.clone(), text));
        }
        Ok(JobSpec {
            dataset: self.dataset_id.clone(),
            preset: self.preset.clone().unwrap_or_default(),
            sets,
            gpu_type: self.gpu_type.clone(),
            gpu_count: self.gpu_count,
            backend: self.backend.clone(),
            from_model: self.from_model.clone(),
        })
    }
}

async fn list_jobs(
    caller: Caller,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, HttpError> {
    let q = parse!(query q);
    let (page, limit, paging) = q.paging()?;
    match caller
        .api
        .dispatch(Request::ListJobs {
            status: status::<JobStatus>(&q.status)?,
            page: paging,
        })
        .await?
    {
        Reply::Jobs(l) => Ok(paged("jobs", l, page, limit)),
        other => Err(HttpError(ApiError::internal(other.kind()))),
    }
}

async fn create_job(caller: Caller, JsonBody(b): JsonBody<JobBody>) -> Result<Response, HttpError> {
    call(
        &caller,
        Request::CreateJob {
            spec: b.spec()?,
            confirm_over_budget: b.confirm_over_budget,
        },
    )
    .await
}

async fn estimate(caller: Caller, JsonBody(b): JsonBody<JobBody>) -> Result<Response, HttpError> {
    call(&caller, Request::Estimate { spec: b.spec()? }).await
}

async fn get_job(caller: Caller, Id(id): Id) -> Result<Response, HttpError> {
    call(&caller, Request::GetJob { id }).await
}

async fn cancel_job(caller: Caller, Id(id): Id) -> Result<Response, HttpError> {
    call(&caller, Request::CancelJob { id }).await
}

/// `POST /api/jobs/{id}/retry`'s optional query: where the retry starts and runs.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryQuery {
    #[serde(default)]
    from_scratch: bool,
    checkpoint: Option<u64>,
    backend: Option<String>,
    #[serde(default)]
    dry_run: bool,
}

async fn retry_job(
    caller: Caller,
    Id(id): Id,
    q: Result<Query<RetryQuery>, QueryRejection>,
) -> Result<Response, HttpError> {
    let q = parse!(query q);
    // The seed's route: from the job's latest checkpoint, as `jobs retry`, unless the query
    // says otherwise.
    call(
        &caller,
        Request::RetryJob {
            id,
            from_scratch: q.from_scratch,
            checkpoint: q.checkpoint,
            backend: q.backend,
            dry_run: q.dry_run,
        },
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsQuery {
    #[serde(default)]
    from_step: u64,
    #[serde(default)]
    limit: Option<usize>,
}

async fn job_metrics(
    caller: Caller,
    Id(id): Id,
    q: Result<Query<MetricsQuery>, QueryRejection>,
) -> Result<Response, HttpError> {
    let q = parse!(query q);
    call(
        &caller,
        Request::JobMetrics {
            id,
            from_step: q.from_step,
            limit: q.limit,
        },
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogsQuery {
    #[serde(default)]
    lines: Option<usize>,
}

async fn job_logs(
    caller: Caller,
    Id(id): Id,
    q: Result<Query<LogsQuery>, QueryRejection>,
) -> Result<Response, HttpError> {
    let q = parse!(query q);
    call(
        &caller,
        Request::JobLogs {
            id,
            lines: q.lines.unwrap_or(200),
        },
    )
    .await
}

async fn list_models(
    caller: Caller,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, HttpError> {
    let q = parse!(query q);
    let (page, limit, paging) = q.paging()?;
    match caller
        .api
        .dispatch(Request::ListModels { page: paging })
        .await?
    {
        Reply::Models(l) => Ok(paged("models", l, page, limit)),
        other => Err(HttpError(ApiError::internal(other.kind()))),
    }
}

/// The seed's model, plus `evaluation`: what its run's `evaluating` stage measured (null when
/// it made none).
async fn get_model(caller: Caller, Id(id): Id) -> Result<Response, HttpError> {
    let model = match caller.api.dispatch(Request::GetModel { id }).await? {
        Reply::Model(m) => m,
        other => return Err(HttpError(ApiError::internal(other.kind()))),
    };
    let evaluation = match caller
        .api
        .dispatch(Request::ModelEvaluation {
            id: model.id.to_string(),
        })
        .await
    {
        Ok(Reply::Evaluation(e)) => Some(e),
        Err(e) if e.reason == Some(Reason::NotEvaluated) => None,
        Ok(other) => return Err(HttpError(ApiError::internal(other.kind()))),
        Err(e) => return Err(HttpError(e)),
    };
    let mut v = serde_json::to_value(&model).map_err(|e| ApiError::internal(e.to_string()))?;
    v["evaluation"] = serde_json::to_value(&evaluation).unwrap_or_default();
    Ok(ok(v))
}

async fn model_evaluation(caller: Caller, Id(id): Id) -> Result<Response, HttpError> {
    call(&caller, Request::ModelEvaluation { id }).await
}

/// The seed answers with URLs to fetch each file from: presigned (24 h) with an S3 store, the
/// daemon's own file route (relative) with the local folder store, which has none.
async fn download_model(caller: Caller, Id(id): Id) -> Result<Response, HttpError> {
    match caller.api.dispatch(Request::GetModel { id }).await? {
        Reply::Model(m) => {
            let mut files = Vec::new();
            for f in &m.files {
                let presigned = caller
                    .api
                    .dispatch(Request::ModelUrl {
                        id: m.id.to_string(),
                        file: Some(f.path.clone()),
                        expires_secs: None,
                    })
                    .await;
                let url = match presigned {
                    Ok(Reply::Url(u)) => u.url,
                    _ => format!("/api/models/{}/file?path={}", m.id, urlencode(&f.path)),
                };
                files.push(serde_json::json!({
                    "path": f.path,
                    "size": f.size,
                    "sha256": f.sha256,
                    "url": url,
                }));
            }
            Ok(ok(serde_json::json!({"model_id": m.id, "files": files})))
        }
        other => Err(HttpError(ApiError::internal(other.kind()))),
    }
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CostsQuery {
    #[serde(default)]
    period: Option<String>,
}

async fn costs(
    caller: Caller,
    q: Result<Query<CostsQuery>, QueryRejection>,
) -> Result<Response, HttpError> {
    let q = parse!(query q);
    let period: Period = q
        .period
        .as_deref()
        .unwrap_or("month")
        .parse()
        .map_err(|e: String| ApiError::invalid("period", e))?;
    call(&caller, Request::Costs { period }).await
}

async fn list_notifications(
    caller: Caller,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, HttpError> {
    let q = parse!(query q);
    let (page, limit, paging) = q.paging()?;
    match caller
        .api
        .dispatch(Request::ListNotifications {
            unread_only: q.unread.unwrap_or(false),
            page: paging,
        })
        .await?
    {
        Reply::Notifications(l) => Ok(paged("notifications", l, page, limit)),
        other => Err(HttpError(ApiError::internal(other.kind()))),
    }
}

async fn read_notification(caller: Caller, Id(id): Id) -> Result<Response, HttpError> {
    call(&caller, Request::MarkRead { id: Some(id) }).await
}

/// The seed's routes.
pub(super) fn seed_routes(r: Routes) -> Routes {
    use Method as M;
    r.add(M::GET, "/api/datasets", list_datasets)
        .add(M::POST, "/api/datasets", create_dataset)
        .add(M::GET, "/api/datasets/{id}", get_dataset)
        .add(M::PATCH, "/api/datasets/{id}", patch_dataset)
        .add(M::DELETE, "/api/datasets/{id}", delete_dataset)
        .add(M::POST, "/api/datasets/{id}/confirm", confirm_dataset)
        .add(M::GET, "/api/datasets/{id}/inspect", inspect_dataset)
        .add(M::GET, "/api/jobs/compare", compare_runs)
        .add(M::POST, "/api/sweeps/plan", plan_sweep)
        .add(M::GET, "/api/sweeps", list_sweeps)
        .add(M::POST, "/api/sweeps", create_sweep)
        .add(M::GET, "/api/sweeps/{id}", get_sweep)
        .add(M::POST, "/api/sweeps/{id}/cancel", cancel_sweep)
        .add(M::GET, "/api/tracking", tracking_status)
        .add(M::GET, "/api/webhooks", list_webhooks)
        .add(M::GET, "/api/webhooks/deliveries", webhook_deliveries)
        .add(M::POST, "/api/webhooks/{name}/test", test_webhook)
        .add(M::GET, "/api/jobs", list_jobs)
        .add(M::POST, "/api/jobs", create_job)
        .add(M::POST, "/api/jobs/estimate", estimate)
        .add(M::GET, "/api/jobs/{id}", get_job)
        .add(M::POST, "/api/jobs/{id}/cancel", cancel_job)
        .add(M::POST, "/api/jobs/{id}/retry", retry_job)
        .add(M::GET, "/api/jobs/{id}/metrics", job_metrics)
        .add(M::GET, "/api/jobs/{id}/logs", job_logs)
        .add(M::GET, "/api/jobs/{id}/comparison", job_comparison)
        .add(M::POST, "/api/evaluations", evaluate_models)
        .add(M::GET, "/api/models", list_models)
        .add(M::GET, "/api/models/{id}", get_model)
        .add(M::GET, "/api/models/{id}/evaluation", model_evaluation)
        .add(M::GET, "/api/models/{id}/download", download_model)
        .add(M::POST, "/api/models/{id}/export", export_model)
        .add(M::GET, "/api/costs", costs)
        .add(M::GET, "/api/notifications", list_notifications)
        .add(M::POST, "/api/notifications/{id}/read", read_notification)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_of<T: serde::de::DeserializeOwned + schemars::JsonSchema>(
        body: &serde_json::Value,
    ) -> Option<String> {
        match decode_body::<T>(body) {
            Ok(_) => panic!("{body} decoded"),
            Err(e) => {
                assert_eq!(e.0.code, ErrorCode::Invalid, "{body}: {:?}", e.0);
                e.0.field
            }
        }
    }

    #[test]
    fn a_wrong_request_names_its_field_by_its_path() {
        for (body, field) in [
            (
                json!({"op": "list_jobs", "page": {"offset": "x"}}),
                "page.offset",
            ),
            (
                json!({"op": "list_jobs", "page": {"offset": 1, "colour": 2}}),
                "page.colour",
            ),
            (json!({"op": "list_jobs", "status": "sleeping"}), "status"),
            (json!({"op": "get_job", "id": 7}), "id"),
            (json!({"op": "get_job", "id": "1", "colour": 1}), "colour"),
            (json!({"op": "get_job"}), "id"),
            (json!({"op": "costs", "period": "fortnight"}), "period"),
            (json!({"op": "create_job", "spec": {}}), "spec.dataset"),
            (
                json!({"op": "create_job", "spec": {"dataset": "d", "gpu_count": -1}}),
                "spec.gpu_count",
            ),
            (
                json!({"op": "estimate", "spec": {"dataset": "d", "sets": [["a", "b"], ["c", 1]]}}),
                "spec.sets[1]",
            ),
            (json!({"op": "nope"}), "op"),
            (json!({"id": "1"}), "op"),
            (json!({"op": 3}), "op"),
            // serde ignores every field of a unit variant; the API does not.
            (json!({"op": "hello", "admin": true}), "admin"),
            (json!({"op": "list_tokens", "user": "bob"}), "user"),
        ] {
            assert_eq!(field_of::<Request>(&body).as_deref(), Some(field), "{body}");
        }
        let ok = json!({"op": "list_jobs", "page": {"offset": 2}});
        assert!(matches!(
            decode_body::<Request>(&ok),
            Ok(Request::ListJobs { .. })
        ));
        assert!(matches!(
            decode_body::<Request>(&json!({"op": "hello"})),
            Ok(Request::Hello)
        ));
    }

    #[test]
    fn a_body_is_read_as_json_then_decoded() {
        let ok = decode_json_body::<Request>(br#"{"op": "list_jobs", "page": {"offset": 2}}"#);
        assert!(matches!(ok, Ok(Request::ListJobs { .. })));
        for bad in [&b""[..], b"{", b"{\"op\": \"hello\"} x", b"\xff", b"nul"] {
            let e = decode_json_body::<Request>(bad).expect_err("refused").0;
            assert_eq!(e.code, ErrorCode::Invalid);
            assert_eq!(e.field, None);
            assert!(
                e.message.starts_with("the request body is not valid: "),
                "{}",
                e.message
            );
        }
        // A value holding the decoder's own sentinel text is still placed (the fuzzer's find).
        let e = decode_json_body::<Request>(
            "{\"op\":\"costs\",\"period\":\"4\u{10FFFF}sentinel4\"}".as_bytes(),
        )
        .expect_err("refused")
        .0;
        assert_eq!(e.field.as_deref(), Some("period"), "{e:?}");
        // An unknown empty key is named (the fuzzer found it refused with no field).
        let e = decode_json_body::<Request>(br#"{"op":"list_jobs","":{"off":10}}"#)
            .expect_err("refused")
            .0;
        assert_eq!(e.field.as_deref(), Some("\"\""), "{e:?}");
        for whole in [&br#"[{"op":"hello"}]"#[..], b"\"hello\"", b"7", b"null"] {
            let e = decode_json_body::<Request>(whole).expect_err("refused").0;
            assert_eq!(e.field, None, "{e:?}");
            assert!(e.message.contains("expected a JSON object"), "{e:?}");
        }
        let e = decode_json_body::<Request>(br#"{"op": "get_job", "id": 7}"#)
            .expect_err("refused")
            .0;
        assert_eq!(e.field.as_deref(), Some("id"));
        let headers = |ct: &str| {
            let mut h = axum::http::HeaderMap::new();
            h.insert(axum::http::header::CONTENT_TYPE, ct.parse().unwrap());
            h
        };
        for ct in [
            "application/json",
            "application/json; charset=utf-8",
            "application/x+json",
        ] {
            assert!(json_content_type(&headers(ct)), "{ct}");
        }
        for ct in ["text/plain", "application/jsonx", "json", "text/json"] {
            assert!(!json_content_type(&headers(ct)), "{ct}");
        }
        assert!(!json_content_type(&axum::http::HeaderMap::new()));
    }

    #[test]
    fn a_huge_wrong_request_is_refused_naming_its_field() {
        // One bad field among 50,000 unknown ones: named as serde met it (`page` sorts first).
        let mut body = serde_json::Map::new();
        body.insert("op".into(), json!("list_jobs"));
        body.insert("page".into(), json!({"offset": "x"}));
        for i in 0..50_000 {
            body.insert(format!("zz{i:07}"), json!(0));
        }
        let body = serde_json::Value::Object(body);
        assert_eq!(field_of::<Request>(&body).as_deref(), Some("page.offset"));
        // Only unknown ones: the first.
        let mut only = body.clone();
        only["page"] = json!({"offset": 1});
        assert_eq!(field_of::<Request>(&only).as_deref(), Some("zz0000000"));
        // 50,000 keys one level down, the bad one last.
        let mut page = serde_json::Map::new();
        for i in 0..50_000 {
            page.insert(format!("a{i:07}"), json!(0));
        }
        let inner = json!({"op": "list_jobs", "page": page});
        assert_eq!(
            field_of::<Request>(&inner).as_deref(),
            Some("page.a0000000")
        );
        let mut sets = vec![json!(["k", "v"]); 50_000];
        sets.push(json!(["k", 2]));
        let long = json!({"op": "estimate", "spec": {"dataset": "d", "sets": sets}});
        assert_eq!(
            field_of::<Request>(&long).as_deref(),
            Some("spec.sets[50000]")
        );
    }

    #[test]
    fn a_wrong_body_names_its_field_by_its_path() {
        assert_eq!(
            field_of::<JobBody>(&json!({"dataset_id": "d", "gpu_count": "x"})).as_deref(),
            Some("gpu_count")
        );
        assert_eq!(
            field_of::<JobBody>(&json!({})).as_deref(),
            Some("dataset_id")
        );
        assert_eq!(
            field_of::<NewDatasetBody>(&json!({"file_name": "a.jsonl"})).as_deref(),
            Some("file_size")
        );
        assert_eq!(
            field_of::<PatchDatasetBody>(&json!({"colour": 1})).as_deref(),
            Some("colour")
        );
        assert_eq!(
            field_of::<PatchDatasetBody>(&json!({"name": ["x"]})).as_deref(),
            Some("name")
        );
        // serde reads a struct from an array of its fields; the API wants the object.
        assert_eq!(field_of::<PatchDatasetBody>(&json!([])), None);
        assert_eq!(
            field_of::<Request>(&json!({"op": "list_jobs", "page": [1, 2]})).as_deref(),
            Some("page")
        );
    }

    #[test]
    fn a_wrong_query_names_its_parameter() {
        for (uri, field) in [
            ("/x?limit=many", Some("limit")),
            ("/x?colour=1", Some("colour")),
            ("/x?unread=perhaps", Some("unread")),
            ("/x?page=-1", Some("page")),
        ] {
            let uri: axum::http::Uri = uri.parse().unwrap();
            let e = Query::<ListQuery>::try_from_uri(&uri).err().unwrap();
            assert_eq!(bad_query(e).0.field.as_deref(), field, "{uri}");
        }
    }

    #[test]
    fn pages_keep_the_seed_shape() {
        for key in ["jobs", "datasets", "models", "notifications"] {
            let items = vec![serde_json::json!({"id": 1}), serde_json::json!({"id": 2})];
            let page = Paged {
                key,
                items: items.clone(),
                total: 41,
                page: 2,
                limit: 20,
            };
            let want = serde_json::json!({
                key: items,
                "total": 41,
                "page": 2,
                "limit": 20,
                "totalPages": 3,
            });
            // Byte for byte what the `serde_json::Value` form wrote.
            assert_eq!(
                serde_json::to_string(&page).unwrap(),
                serde_json::to_string(&want).unwrap()
            );
        }
    }
}
