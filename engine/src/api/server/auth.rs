//! Who is calling. On the Unix socket (mode 0600, so only the owner can connect) the caller is
//! the profile's user and the engine's owner: it alone may make the owner-only requests (token
//! management, doctor, backups, …; see `Request::owner_only`). A bearer token there acts for
//! its own user. On TCP every request needs a valid token, and no TCP caller is the owner.
//!
//! Failed logins (no token over TCP; an unknown, revoked or expired token) are counted per
//! address, see [`AuthState`]: they slow guessing down but never refuse a valid token.

use super::{HttpError, Shared};
use crate::api::local::LocalApi;
use crate::api::{ApiError, ErrorCode, Reason, TokenCheck};
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

/// How long failures are counted per address.
const WINDOW: Duration = Duration::from_secs(60);
/// How long a failure from an address over its limit waits for its answer.
const FAILURE_DELAY: Duration = Duration::from_secs(1);

/// Failed logins per address, and the rule they follow:
///
/// - every failure counts against its address for a minute;
/// - a valid token is always accepted, whatever its address's count: over the SSH tunnels the
///   README recommends every client is 127.0.0.1, so one user's typos (or someone guessing)
///   must never lock the others out. The presented token is therefore always looked up (one
///   lookup by its hash: constant time, and cheap);
/// - once an address has failed `max_failures` times in the window, each further failure from
///   it is answered `rate_limited` (429), an expired token `unauthorized` as usual, after
///   [`FAILURE_DELAY`]: an async sleep, which holds no worker and delays no other request.
///
/// So a guesser gets at most one answer a second per connection, and learns nothing it would
/// not learn anyway; with 256-bit tokens the limit is there to keep guessing slow and noisy,
/// not to stand between users and their engine.
pub(crate) struct AuthState {
    /// Failures allowed per address in one window before its failures are slowed down
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

    /// Whether `ip` has used up its failures in the current window.
    fn over_limit(&self, ip: IpAddr) -> bool {
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
        e.0 = e.0.saturating_add(1);
        if map.len() > 10_000 {
            map.retain(|_, (_, since)| since.elapsed() < WINDOW);
        }
    }

    /// Counts a failure from `ip` and turns `refusal` into its answer: as is while the address
    /// is within its limit; over it, after [`FAILURE_DELAY`], and `rate_limited` unless the
    /// refusal says more than "no" (an expired token).
    async fn refuse(&self, ip: Option<IpAddr>, refusal: ApiError) -> ApiError {
        let Some(ip) = ip else { return refusal };
        let over = self.over_limit(ip);
        self.failed(ip);
        if !over {
            return refusal;
        }
        tokio::time::sleep(FAILURE_DELAY).await;
        if refusal.reason == Some(Reason::TokenExpired) {
            return refusal;
        }
        ApiError::new(
            ErrorCode::RateLimited,
            "too many failed authentication attempts from this address; a valid token is still \
             accepted, other attempts are slowed down for a minute",
        )
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

/// What a bearer token is, looked up off the async workers.
async fn authenticated(state: &Shared, token: String) -> Result<TokenCheck, ApiError> {
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
    let token = bearer(&req);
    let caller = match (transport, token) {
        (_, Some(t)) => match authenticated(&state, t).await {
            Ok(TokenCheck::Valid(user)) => {
                // A token acts for its user; only the owner's socket is the owner.
                let owner =
                    transport == Transport::Unix && user == state.api.engine().profile_user();
                state.api.for_user(user, owner)
            }
            Ok(TokenCheck::Expired { id, at }) => {
                let refusal = ApiError::unauthorized_because(
                    Reason::TokenExpired,
                    format!(
                        "the token {id} expired at {}; ask the engine's owner for a new one \
                         (`brightrun tokens create --expires …` on the engine's machine)",
                        at.format("%Y-%m-%d %H:%M UTC")
                    ),
                );
                return HttpError(state.auth.refuse(ip, refusal).await).into_response();
            }
            Ok(TokenCheck::Unknown) => {
                let refusal = ApiError::unauthorized(
                    "the token is unknown or revoked; create one with `brightrun tokens create`",
                );
                return HttpError(state.auth.refuse(ip, refusal).await).into_response();
            }
            Err(e) => return HttpError(e).into_response(),
        },
        (Transport::Unix, None) => state.api.clone(),
        (Transport::Tcp, None) => {
            let refusal = ApiError::unauthorized(
                "this engine needs a bearer token over TCP (Authorization: Bearer …; BRIGHTRUN_TOKEN for the CLI)",
            );
            return HttpError(state.auth.refuse(ip, refusal).await).into_response();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn failures_over_the_limit_are_slowed_down_and_answered_rate_limited() {
        let auth = AuthState::new(2);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        let no = || ApiError::unauthorized("no");
        for _ in 0..2 {
            let t = Instant::now();
            assert_eq!(
                auth.refuse(Some(ip), no()).await.code,
                ErrorCode::Unauthorized
            );
            assert!(t.elapsed() < FAILURE_DELAY);
        }
        assert!(auth.over_limit(ip));
        assert!(!auth.over_limit(other));
        let t = Instant::now();
        assert_eq!(
            auth.refuse(Some(ip), no()).await.code,
            ErrorCode::RateLimited
        );
        assert!(t.elapsed() >= FAILURE_DELAY);
        // An expired token is still told so, after the delay.
        let expired = ApiError::unauthorized_because(Reason::TokenExpired, "expired");
        let e = auth.refuse(Some(ip), expired).await;
        assert_eq!(e.reason, Some(Reason::TokenExpired));
        // No limit: never slowed down.
        let open = AuthState::new(0);
        for _ in 0..5 {
            assert_eq!(
                open.refuse(Some(ip), no()).await.code,
                ErrorCode::Unauthorized
            );
        }
    }
}
