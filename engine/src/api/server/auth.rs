//! Who is calling. On the Unix socket (mode 0600, so only the owner can connect) the caller is
//! the profile's user and may manage tokens; a bearer token there acts for its own user. On
//! TCP every request needs a valid token. Failed attempts are rate-limited per address.

use super::{HttpError, Shared};
use crate::api::local::LocalApi;
use crate::api::{ApiError, ErrorCode};
use crate::ids::UserId;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Which listener a request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Unix,
    Tcp,
}

const WINDOW: Duration = Duration::from_secs(60);

pub(crate) struct AuthState {
    /// Failed attempts allowed per address in one window before it is refused outright
    /// (`[engine] auth_failures_per_minute`; 0: no limit).
    max_failures: u32,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl AuthState {
    pub fn new(max_failures: u32) -> Self {
        Self {
            max_failures,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn blocked(&self, ip: IpAddr) -> bool {
        if self.max_failures == 0 {
            return false;
        }
        let map = self.failures.lock().expect("auth lock");
        map.get(&ip)
            .is_some_and(|(n, since)| *n >= self.max_failures && since.elapsed() < WINDOW)
    }

    fn failed(&self, ip: IpAddr) {
        let mut map = self.failures.lock().expect("auth lock");
        let e = map.entry(ip).or_insert((0, Instant::now()));
        if e.1.elapsed() >= WINDOW {
            *e = (0, Instant::now());
        }
        e.0 += 1;
        if map.len() > 10_000 {
            map.retain(|_, (_, since)| since.elapsed() < WINDOW);
        }
    }
}

/// The engine API acting for the authenticated caller.
#[derive(Clone)]
pub struct Caller {
    pub api: LocalApi,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = HttpError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| HttpError(ApiError::unauthorized("not authenticated")))
    }
}

fn bearer(req: &Request) -> Option<String> {
    let h = req.headers().get(axum::http::header::AUTHORIZATION)?;
    let s = h.to_str().ok()?;
    let (scheme, token) = s.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// The user of a bearer token, looked up off the async workers.
async fn authenticated(state: &Shared, token: String) -> Result<Option<UserId>, ApiError> {
    let tokens = state.api.token_store().clone();
    crate::store::off_runtime(move || tokens.authenticate(&token))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
}

pub(crate) async fn authenticate(
    State(state): State<Shared>,
    mut req: Request,
    next: Next,
) -> Response {
    // The API's description is public: it holds no data.
    if req.uri().path() == "/api/openapi.json" {
        return next.run(req).await;
    }
    let transport = req
        .extensions()
        .get::<Transport>()
        .copied()
        .unwrap_or(Transport::Tcp);
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(ip) = ip
        && state.auth.blocked(ip)
    {
        return HttpError(ApiError::new(
            ErrorCode::RateLimited,
            "too many failed authentication attempts; wait a minute",
        ))
        .into_response();
    }
    let token = bearer(&req);
    let caller = match (transport, token) {
        (_, Some(t)) => match authenticated(&state, t).await {
            Ok(Some(user)) => {
                // A token acts for its user; only the owner's socket may manage tokens.
                let owner =
                    transport == Transport::Unix && user == state.api.engine().profile_user();
                state.api.for_user(user, owner)
            }
            Ok(None) => {
                if let Some(ip) = ip {
                    state.auth.failed(ip);
                }
                return HttpError(ApiError::unauthorized(
                    "the token is unknown or revoked; create one with `brightrun tokens create`",
                ))
                .into_response();
            }
            Err(e) => return HttpError(e).into_response(),
        },
        (Transport::Unix, None) => state.api.clone(),
        (Transport::Tcp, None) => {
            if let Some(ip) = ip {
                state.auth.failed(ip);
            }
            return HttpError(ApiError::unauthorized(
                "this engine needs a bearer token over TCP (Authorization: Bearer …; BRIGHTRUN_TOKEN for the CLI)",
            ))
            .into_response();
        }
    };
    if let Some(conn) = req
        .extensions()
        .get::<std::sync::Arc<super::connections::Connection>>()
    {
        conn.authenticated();
    }
    req.extensions_mut().insert(Caller { api: caller });
    next.run(req).await
}
