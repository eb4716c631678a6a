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
use axum::extract::{Json, Path as UrlPath, Query};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

/// The most a list route returns per page.
const MAX_LIMIT: usize = 100;

pub(super) fn bad_json(e: JsonRejection) -> HttpError {
    let text = e.body_text();
    HttpError(ApiError {
        field: field_of(&text),
        ..ApiError::new(
            ErrorCode::Invalid,
            format!("the request body is not valid: {text}"),
        )
    })
}

pub(super) fn bad_query(e: QueryRejection) -> HttpError {
    let text = e.body_text();
    HttpError(ApiError {
        field: field_of(&text),
        ..ApiError::new(
            ErrorCode::Invalid,
            format!("the query is not valid: {text}"),
        )
    })
}

/// The field serde names in its message (`unknown field `x``, `missing field `y``, or a path
/// such as `spec.gpu_count: invalid type`).
fn field_of(text: &str) -> Option<String> {
    if let Some(i) = text.find("field `") {
        let rest = &text[i + 7..];
        return rest.split('`').next().map(str::to_string);
    }
    let after = text.rsplit(": ").nth(1)?;
    let token = after.split_whitespace().last()?;
    token
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '[' || c == ']')
        .then(|| token.to_string())
}

/// Decodes a [`Request`], naming the field at fault when it is wrong. serde cannot say which
/// field of a tagged enum failed, so on failure each field is left out in turn: the one whose
/// absence cures the error (or turns it into "missing field") is the culprit; one level of
/// nesting is searched the same way (`page.offset`).
pub(super) fn decode_request(value: serde_json::Value) -> Result<Request, HttpError> {
    let err = match serde_json::from_value::<Request>(value.clone()) {
        Ok(r) => return Ok(r),
        Err(e) => e.to_string(),
    };
    let field = field_of(&err)
        .filter(|_| err.contains("unknown field") || err.contains("missing field"))
        .or_else(|| culprit(&value));
    Err(HttpError(ApiError {
        field,
        ..ApiError::new(
            ErrorCode::Invalid,
            format!("the request is not valid: {err}"),
        )
    }))
}

fn culprit(value: &serde_json::Value) -> Option<String> {
    let obj = value.as_object()?;
    let fails_without = |path: &[&str]| {
        let mut v = value.clone();
        match path {
            [k] => {
                v.as_object_mut()?.remove(*k);
            }
            [k, inner] => {
                v.get_mut(*k)?.as_object_mut()?.remove(*inner);
            }
            _ => return None,
        }
        Some(match serde_json::from_value::<Request>(v) {
            Ok(_) => false,
            Err(e) => !e.to_string().contains("missing field"),
        })
    };
    for (k, v) in obj.iter().filter(|(k, _)| *k != "op") {
        if fails_without(&[k]) == Some(false) {
            if let Some(inner) = v.as_object() {
                for ik in inner.keys() {
                    if fails_without(&[k, ik]) == Some(false) {
                        return Some(format!("{k}.{ik}"));
                    }
                }
            }
            return Some(k.clone());
        }
    }
    None
}

macro_rules! parse {
    (json $e:expr) => {
        $e.map_err(bad_json)?.0
    };
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
        if page == 0 {
            return Err(ApiError::invalid("page", "pages start at 1"));
        }
        let limit = self.limit.unwrap_or(20);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::invalid(
                "limit",
                format!("limit must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let offset = (page - 1)
            .checked_mul(limit)
            .ok_or_else(|| ApiError::invalid("page", "page is too large"))?;
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
    body: Result<Json<NewDatasetBody>, JsonRejection>,
) -> Result<Response, HttpError> {
    let b = parse!(json body);
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

async fn get_dataset(caller: Caller, UrlPath(id): UrlPath<String>) -> Result<Response, HttpError> {
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
    UrlPath(id): UrlPath<String>,
    body: Result<Json<PatchDatasetBody>, JsonRejection>,
) -> Result<Response, HttpError> {
    let b = parse!(json body);
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
    UrlPath(id): UrlPath<String>,
    q: Result<Query<DeleteQuery>, QueryRejection>,
) -> Result<Response, HttpError> {
    let purge = q.map_err(bad_query)?.0.purge;
    call(&caller, Request::DeleteDataset { id, purge }).await
}

async fn confirm_dataset(
    caller: Caller,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, HttpError> {
    call(&caller, Request::ConfirmDataset { id }).await
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

async fn create_job(
    caller: Caller,
    body: Result<Json<JobBody>, JsonRejection>,
) -> Result<Response, HttpError> {
    let b = parse!(json body);
    call(
        &caller,
        Request::CreateJob {
            spec: b.spec()?,
            confirm_over_budget: b.confirm_over_budget,
        },
    )
    .await
}

async fn estimate(
    caller: Caller,
    body: Result<Json<JobBody>, JsonRejection>,
) -> Result<Response, HttpError> {
    let b = parse!(json body);
    call(&caller, Request::Estimate { spec: b.spec()? }).await
}

async fn get_job(caller: Caller, UrlPath(id): UrlPath<String>) -> Result<Response, HttpError> {
    call(&caller, Request::GetJob { id }).await
}

async fn cancel_job(caller: Caller, UrlPath(id): UrlPath<String>) -> Result<Response, HttpError> {
    call(&caller, Request::CancelJob { id }).await
}

async fn retry_job(caller: Caller, UrlPath(id): UrlPath<String>) -> Result<Response, HttpError> {
    call(&caller, Request::RetryJob { id }).await
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
    UrlPath(id): UrlPath<String>,
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
    UrlPath(id): UrlPath<String>,
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

async fn get_model(caller: Caller, UrlPath(id): UrlPath<String>) -> Result<Response, HttpError> {
    call(&caller, Request::GetModel { id }).await
}

/// The seed answers with URLs to fetch each file from: presigned (24 h) with an S3 store, the
/// daemon's own file route (relative) with the local folder store, which has none.
async fn download_model(
    caller: Caller,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, HttpError> {
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

async fn read_notification(
    caller: Caller,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, HttpError> {
    call(&caller, Request::MarkRead { id: Some(id) }).await
}

pub(super) fn seed_routes() -> Router<Shared> {
    Router::new()
        .route("/api/datasets", get(list_datasets).post(create_dataset))
        .route(
            "/api/datasets/{id}",
            get(get_dataset).patch(patch_dataset).delete(delete_dataset),
        )
        .route("/api/datasets/{id}/confirm", post(confirm_dataset))
        .route("/api/jobs", get(list_jobs).post(create_job))
        .route("/api/jobs/estimate", post(estimate))
        .route("/api/jobs/{id}", get(get_job))
        .route("/api/jobs/{id}/cancel", post(cancel_job))
        .route("/api/jobs/{id}/retry", post(retry_job))
        .route("/api/jobs/{id}/metrics", get(job_metrics))
        .route("/api/jobs/{id}/logs", get(job_logs))
        .route("/api/models", get(list_models))
        .route("/api/models/{id}", get(get_model))
        .route("/api/models/{id}/download", get(download_model))
        .route("/api/costs", get(costs))
        .route("/api/notifications", get(list_notifications))
        .route("/api/notifications/{id}/read", post(read_notification))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_request_names_its_field() {
        for (body, field) in [
            (
                serde_json::json!({"op": "list_jobs", "page": {"offset": "x"}}),
                "page.offset",
            ),
            (serde_json::json!({"op": "get_job", "id": 7}), "id"),
            (
                serde_json::json!({"op": "get_job", "id": "1", "colour": 1}),
                "colour",
            ),
            (
                serde_json::json!({"op": "costs", "period": "fortnight"}),
                "period",
            ),
        ] {
            let e = decode_request(body.clone()).err().unwrap().0;
            assert_eq!(e.field.as_deref(), Some(field), "{body}: {e:?}");
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

    #[test]
    fn serde_messages_name_their_field() {
        assert_eq!(
            field_of("Failed to deserialize the JSON body into the target type: unknown field `colour`, expected one of `name`").as_deref(),
            Some("colour")
        );
        assert_eq!(
            field_of("Failed to deserialize query string: missing field `path`").as_deref(),
            Some("path")
        );
    }
}
