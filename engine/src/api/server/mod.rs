//! The daemon's HTTP face, served on a Unix socket (mode 0600; its peer is the owner) and,
//! optionally, on TCP where every request needs a bearer token. One router serves both:
//!
//! - `POST /api/v1/call`: any [`Request`], answered with `{"success": true, "data": Reply}`;
//! - the seed's REST routes (`/api/datasets`, `/api/jobs`, …) in the seed's shapes;
//! - uploads (`PUT /api/datasets/{id}/upload`) and downloads (`GET /api/models/{id}/file`)
//!   as streamed bodies;
//! - `GET /api/events?after=SEQ` (the change log) and `GET /api/live` as server-sent events;
//! - `POST /api/models/{id}/chat`: a chat turn with a model, its reply as server-sent events;
//! - `GET /metrics` in Prometheus text.
//!
//! Errors are `{"error", "details", "code", "field", "reason"}` with the code's HTTP status.

mod auth;
pub mod connections;
mod decode;
mod metrics;
mod openapi;
mod routes;

pub use openapi::document as openapi_document;

use super::*;
use crate::api::local::LocalApi;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

pub use auth::Caller;

/// The body of a `POST /api/v1/call` decoded as the server decodes it (once its content type
/// and size are checked): JSON, then a [`Request`], or the 400 naming the field at fault.
/// Public for the fuzz target (`fuzz/fuzz_targets/call_body.rs`), so that what it fuzzes is
/// what the daemon serves.
#[doc(hidden)]
pub fn decode_call_body(body: &[u8]) -> Result<Request, ApiError> {
    routes::decode_json_body::<Request>(body).map_err(|e| e.0)
}

/// What the routes share.
pub(crate) struct ServerState {
    pub api: LocalApi,
    pub auth: auth::AuthState,
    pub metrics: Arc<metrics::Metrics>,
}

type Shared = Arc<ServerState>;

/// An error as every route answers it (an [`ApiError`] with its HTTP status).
pub struct HttpError(pub ApiError);

impl From<ApiError> for HttpError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status =
            StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut body = serde_json::json!({
            "error": e.message,
            "details": e.details,
            "code": e.code,
            "field": e.field,
        });
        // Present only with a reason (conflicts clients act on).
        if let Some(r) = e.reason {
            body["reason"] = serde_json::json!(r);
        }
        (status, axum::Json(body)).into_response()
    }
}

/// `{"data": …, "success": true}`, serialized straight into the body: no `serde_json::Value`
/// in between (building one, and then another around it, cost more than reading a page of
/// jobs from the store).
pub(crate) fn ok<T: serde::Serialize>(data: T) -> Response {
    #[derive(serde::Serialize)]
    struct Success<T> {
        data: T,
        success: bool,
    }
    axum::Json(Success {
        data,
        success: true,
    })
    .into_response()
}

/// The router over an engine.
pub fn router(api: LocalApi) -> Router {
    let limit = api.engine().config().engine.auth_failures_per_minute;
    let metrics = Arc::new(metrics::Metrics::default());
    metrics.follow(api.engine().clone());
    let state = Arc::new(ServerState {
        api,
        auth: auth::AuthState::new(limit),
        metrics,
    });
    all_routes()
        .into_router()
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .with_state(state)
}

/// Every route the daemon serves (the OpenAPI document describes exactly these).
fn all_routes() -> routes::Routes {
    use axum::http::Method as M;
    let r = routes::Routes::new()
        .add(M::POST, "/api/v1/call", call)
        .add(M::PUT, "/api/datasets/{id}/upload", upload)
        .add(M::GET, "/api/models/{id}/file", download)
        .add(M::GET, "/api/events", events)
        .add(M::GET, "/api/live", live)
        .add(M::POST, "/api/models/{id}/chat", chat)
        .add(M::GET, "/metrics", metrics::prometheus)
        .add(M::GET, "/api/openapi.json", openapi_json);
    routes::seed_routes(r)
}

/// The document, with this engine's presets, GPU types and backends.
async fn openapi_json(State(state): State<Shared>) -> Response {
    let catalog = match state.api.dispatch(Request::Catalog).await {
        Ok(Reply::Catalog(c)) => Some(c),
        _ => None,
    };
    axum::Json(openapi::document_with(catalog.as_ref())).into_response()
}

async fn call(
    caller: Caller,
    State(state): State<Shared>,
    routes::JsonBody(request): routes::JsonBody<Request>,
) -> Result<Response, HttpError> {
    let op = request.op();
    let started = std::time::Instant::now();
    let result = caller.api.dispatch(request).await;
    state
        .metrics
        .observe_call(op, started.elapsed(), result.is_ok());
    Ok(ok(result?))
}

async fn upload(
    caller: Caller,
    routes::Id(id): routes::Id,
    body: axum::body::Body,
) -> Result<Response, HttpError> {
    let id: DatasetId = id
        .parse()
        .map_err(|_| ApiError::invalid("id", format!("`{id}` is not a dataset id")))?;
    let stream = body
        .into_data_stream()
        .map(|r| r.map_err(std::io::Error::other));
    Ok(ok(caller.api.upload(id, Box::pin(stream)).await?))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileQuery {
    /// Required; optional here so that its absence is named like any other bad parameter.
    #[serde(default)]
    path: Option<String>,
}

async fn download(
    caller: Caller,
    routes::Id(id): routes::Id,
    q: Result<Query<FileQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, HttpError> {
    let Query(q) = q.map_err(routes::bad_query)?;
    let path = q.path.ok_or_else(|| {
        ApiError::invalid("path", "the query needs `path`: which file of the model")
    })?;
    let id: ArtifactId = id
        .parse()
        .map_err(|_| ApiError::not_found(format!("no model matches `{id}`")))?;
    let stream = caller.api.download(id, &path).await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
        axum::body::Body::from_stream(stream),
    )
        .into_response())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    #[serde(default)]
    after: Option<u64>,
}

async fn events(
    caller: Caller,
    State(state): State<Shared>,
    q: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, HttpError> {
    let Query(q) = q.map_err(routes::bad_query)?;
    let after = match q.after {
        Some(a) => a,
        None => {
            let store = caller.api.engine().store().clone();
            crate::store::off_runtime(move || store.last_seq())
                .await
                .map_err(|e| ApiError::internal(e.to_string()))?
                .map_err(ApiError::from)?
        }
    };
    let feed = caller.api.changes(after).await?;
    let guard = state.metrics.subscriber();
    let stream = feed
        .scan(false, |failed, item| {
            // After an error event the stream ends: the client resumes from its last seq.
            if *failed {
                return futures::future::ready(None);
            }
            let ev = match item {
                Ok(c) => Event::default()
                    .event("change")
                    .id(c.seq.to_string())
                    .json_data(&*c),
                Err(e) => {
                    *failed = true;
                    Event::default().event("error").json_data(&e)
                }
            };
            futures::future::ready(Some(ev.map_err(std::io::Error::other)))
        })
        .map(move |e| {
            let _ = &guard;
            e
        });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15)))
        .into_response())
}

async fn live(caller: Caller) -> Result<Response, HttpError> {
    let feed = caller.api.live().await?;
    let stream = feed.map(|e| {
        Event::default()
            .event("live")
            .json_data(&e)
            .map_err(std::io::Error::other)
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15)))
        .into_response())
}

/// A chat turn: the reply as server-sent events, `event: chat` with a [`ChatEvent`] as
/// `data`, ending after `done` or `error`. A wrong request or a model that is not the
/// caller's is an error status before any event.
///
/// [`ChatEvent`]: crate::chat::ChatEvent
async fn chat(
    caller: Caller,
    routes::Id(id): routes::Id,
    routes::JsonBody(body): routes::JsonBody<crate::chat::ChatBody>,
) -> Result<Response, HttpError> {
    let reply = caller.api.chat(body.into_request(id)).await?;
    let stream = reply.map(|e| {
        Event::default()
            .event("chat")
            .json_data(&e)
            .map_err(std::io::Error::other)
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15)))
        .into_response())
}

/// Why the daemon could not start listening.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {what}: {source}")]
    Listen {
        what: String,
        source: std::io::Error,
    },
    #[error(
        "refusing to listen on {addr}: it is not a loopback address and no token exists; create one with `brightrun tokens create` first"
    )]
    NoTokens { addr: SocketAddr },
}

/// Binds the Unix socket at `path` with mode 0600 (removing a stale socket first). Fails if
/// another daemon answers there.
pub async fn bind_unix(path: &Path) -> Result<tokio::net::UnixListener, ServeError> {
    let err = |source| ServeError::Listen {
        what: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
        }
    }
    if path.exists() {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return Err(err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                "another engine is serving this socket",
            )));
        }
        let _ = std::fs::remove_file(path);
    }
    // Its folder is 0700 already, so no other user can reach the socket in the moment
    // before it is made 0600 (changing the process's umask instead would race with every
    // other thread creating files).
    let listener = tokio::net::UnixListener::bind(path).map_err(err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    }
    Ok(listener)
}

/// Refuses a TCP address other than loopback while no token exists: nobody could use it
/// but everybody could knock on it.
pub async fn check_exposure(api: &LocalApi, addr: SocketAddr) -> Result<(), ServeError> {
    let tokens = api.token_store().clone();
    let has_tokens = crate::store::off_runtime(move || tokens.list())
        .await
        .ok()
        .and_then(Result::ok)
        .is_some_and(|t| t.iter().any(|t| t.revoked_at.is_none()));
    if !addr.ip().is_loopback() && !has_tokens {
        return Err(ServeError::NoTokens { addr });
    }
    Ok(())
}

/// Serves `api` on the Unix socket and, when given, on TCP, until `shutdown` is cancelled.
/// TCP on a non-loopback address is refused unless a token exists.
pub async fn serve(
    api: LocalApi,
    unix: tokio::net::UnixListener,
    unix_path: PathBuf,
    tcp: Option<tokio::net::TcpListener>,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    if let Some(l) = &tcp {
        let addr = l.local_addr().map_err(|source| ServeError::Listen {
            what: "tcp".into(),
            source,
        })?;
        check_exposure(&api, addr).await?;
    }
    let limits = connections::Limits::from_config(&api.engine().config().engine);
    let app = router(api);
    // Clients get a few seconds to finish what they asked for when the daemon stops.
    let grace = std::time::Duration::from_secs(10);
    let mut unix_task = tokio::spawn(connections::serve_unix(
        unix,
        app.clone(),
        limits,
        shutdown.clone(),
        grace,
    ));
    let tcp_task = tcp.map(|l| {
        tokio::spawn(connections::serve_tcp(
            l,
            app,
            limits,
            Default::default(),
            shutdown.clone(),
            grace,
        ))
    });
    // Serve until asked to stop (or until the socket's server fails: then stop the rest).
    let unix_done = tokio::select! {
        _ = shutdown.cancelled() => false,
        r = &mut unix_task => {
            tracing::error!("the Unix socket's server stopped: {r:?}");
            shutdown.cancel();
            true
        }
    };
    if !unix_done {
        let _ = unix_task.await;
    }
    if let Some(t) = tcp_task {
        let _ = t.await;
    }
    let _ = std::fs::remove_file(&unix_path);
    Ok(())
}
