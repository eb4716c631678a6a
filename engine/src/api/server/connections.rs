//! Accepting and keeping connections, so that no client can hold what others need.
//!
//! axum's own `serve` keeps a connection as long as its client likes and accepts until the
//! process runs out of file descriptors: 1,100 idle TCP connections under systemd's default
//! `ulimit -n 1024` stopped all service, the owner's Unix socket included. Here:
//!
//! - a request's headers must arrive within `[engine] header_read_timeout_secs` (hyper's
//!   timer starts when the connection opens, and again at a later request's first byte), so a
//!   silent or slowloris connection is cut off;
//! - a connection with nothing in flight and no byte either way for
//!   `[engine] idle_timeout_secs` is closed (a request in flight, an event stream with its
//!   keep-alives, an upload are never idle);
//! - at most `[engine] max_unauthenticated_connections` TCP connections that have not yet
//!   presented a valid token are kept: a new one closes the oldest of them;
//! - TCP connections in all stay [`FD_RESERVE`] file descriptors below the process's limit
//!   (raised to its hard limit at start): at the cap the oldest unauthenticated connection
//!   makes room, and without one the newcomer is closed at once. The Unix socket, the store,
//!   the log and the trainers keep the reserve.

use super::auth::Transport;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// File descriptors kept for everything but TCP clients: the store, logs, the Unix socket's
/// clients, trainers' pipes and files, S3 and cluster connections.
pub const FD_RESERVE: u64 = 256;

/// How the daemon treats its connections (from `[engine]`).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub header_read_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub max_unauthenticated: usize,
    /// TCP connections at most (the file-descriptor limit less [`FD_RESERVE`]).
    pub max_tcp: usize,
}

impl Limits {
    pub fn from_config(c: &crate::config::EngineConfig) -> Self {
        let secs = |s: u64| (s > 0).then(|| Duration::from_secs(s));
        let fds = raise_fd_limit();
        Self {
            header_read_timeout: secs(c.header_read_timeout_secs),
            idle_timeout: secs(c.idle_timeout_secs),
            max_unauthenticated: c.max_unauthenticated_connections.max(1),
            max_tcp: fds.saturating_sub(FD_RESERVE).max(16) as usize,
        }
    }
}

/// Raises the soft limit on open files to the hard one (what a daemon serving many clients
/// should have; systemd's default soft limit is 1024) and returns the soft limit now in force.
pub fn raise_fd_limit() -> u64 {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit write and read only the struct given.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
                return 1024;
            }
            if lim.rlim_cur < lim.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: lim.rlim_max,
                    rlim_max: lim.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    lim.rlim_cur = lim.rlim_max;
                }
            }
        }
        lim.rlim_cur
    }
    #[cfg(not(unix))]
    {
        1024
    }
}

/// One served connection, as the registry and the request's handlers see it.
pub struct Connection {
    id: u64,
    authenticated: AtomicBool,
    /// Asked to close (evicted, or the server stops).
    close: CancellationToken,
}

impl Connection {
    /// Its client presented a valid token: it no longer counts against the unauthenticated
    /// cap and is never evicted.
    pub fn authenticated(&self) {
        self.authenticated.store(true, Ordering::Relaxed);
    }
}

/// The TCP connections open now, oldest first.
#[derive(Default)]
pub struct Registry {
    next_id: AtomicU64,
    open: Mutex<BTreeMap<u64, Arc<Connection>>>,
}

/// What admitting a connection decided.
#[derive(Debug, PartialEq, Eq)]
enum Admission {
    Admitted,
    /// At the cap with nobody to evict: the newcomer is closed.
    Full,
}

impl Registry {
    /// Registers a new connection, evicting the oldest unauthenticated one when the
    /// unauthenticated or the total cap is reached.
    fn admit(&self, limits: &Limits) -> (Admission, Option<Arc<Connection>>) {
        let mut open = self.open.lock().expect("registry lock");
        let mut waiting = open
            .values()
            .filter(|c| !c.authenticated.load(Ordering::Relaxed));
        let oldest = waiting.next().map(|c| c.id);
        let waiting = oldest.map_or(0, |_| 1 + waiting.count());
        if waiting >= limits.max_unauthenticated || open.len() >= limits.max_tcp {
            match oldest.and_then(|id| open.remove(&id)) {
                Some(c) => {
                    tracing::debug!("closing the oldest connection without a token to make room");
                    c.close.cancel();
                }
                None if open.len() >= limits.max_tcp => return (Admission::Full, None),
                None => {}
            }
        }
        let conn = Arc::new(Connection {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            authenticated: AtomicBool::new(false),
            close: CancellationToken::new(),
        });
        open.insert(conn.id, conn.clone());
        (Admission::Admitted, Some(conn))
    }

    fn remove(&self, id: u64) {
        self.open.lock().expect("registry lock").remove(&id);
    }

    /// How many TCP connections are open, and how many of them have not authenticated.
    pub fn counts(&self) -> (usize, usize) {
        let open = self.open.lock().expect("registry lock");
        let waiting = open
            .values()
            .filter(|c| !c.authenticated.load(Ordering::Relaxed))
            .count();
        (open.len(), waiting)
    }
}

/// Serves `app` on TCP until `shutdown`, then lets connections finish for `grace`.
pub async fn serve_tcp(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: Limits,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let tracker = TaskTracker::new();
    loop {
        let (stream, addr) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: the reserve is for others; wait rather than spin.
                    tracing::warn!("accepting a TCP connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (admission, conn) = registry.admit(&limits);
        let Some(conn) = conn.filter(|_| admission == Admission::Admitted) else {
            tracing::warn!(
                "refused a TCP connection from {addr}: {} connections are open, all authenticated",
                limits.max_tcp
            );
            drop(stream);
            continue;
        };
        // No Nagle: a reply or an event written in more than one segment must not wait for
        // the client's delayed ACK (up to 40 ms on Linux) before its last part goes out.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        let app = app.clone();
        let registry = registry.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let extensions = (ConnectInfo(addr), Transport::Tcp, Some(conn.clone()));
            serve_one(stream, app, extensions, &limits, &conn.close, &shutdown).await;
            registry.remove(conn.id);
        });
    }
    tracker.close();
    let _ = tokio::time::timeout(grace, tracker.wait()).await;
}

/// Serves `app` on the Unix socket (no caps: its peer is the owner) until `shutdown`.
pub async fn serve_unix(
    listener: tokio::net::UnixListener,
    app: Router,
    limits: Limits,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let tracker = TaskTracker::new();
    let never = CancellationToken::new();
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!("accepting on the Unix socket: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let app = app.clone();
        let shutdown = shutdown.clone();
        let never = never.clone();
        tracker.spawn(async move {
            let extensions = (
                ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 0))),
                Transport::Unix,
                None,
            );
            serve_one(stream, app, extensions, &limits, &never, &shutdown).await;
        });
    }
    tracker.close();
    let _ = tokio::time::timeout(grace, tracker.wait()).await;
}

type Extensions = (ConnectInfo<SocketAddr>, Transport, Option<Arc<Connection>>);

/// Serves one connection with the header-read timeout and the idle watch, until it ends,
/// goes idle, is evicted (`close`) or the server stops. A request in flight is finished
/// first (hyper's graceful shutdown), never cut.
async fn serve_one<S>(
    stream: S,
    app: Router,
    extensions: Extensions,
    limits: &Limits,
    close: &CancellationToken,
    shutdown: &CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let in_flight = Arc::new(AtomicU64::new(0));
    let service = {
        let in_flight = in_flight.clone();
        hyper::service::service_fn(
            move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                let (info, transport, conn) = extensions.clone();
                req.extensions_mut().insert(info);
                req.extensions_mut().insert(transport);
                if let Some(c) = conn {
                    req.extensions_mut().insert(c);
                }
                let guard = InFlight::new(in_flight.clone());
                let mut app = app.clone();
                async move {
                    let response = tower_service::Service::call(&mut app, req).await;
                    // The body is streamed after this: it carries the guard until it is done.
                    response.map(|r| r.map(|body| guarded(body, guard)))
                }
            },
        )
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).keep_alive(true);
    if let Some(t) = limits.header_read_timeout {
        builder.header_read_timeout(t);
    }
    let conn = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    let tick = limits
        .idle_timeout
        .map(|t| (t / 4).max(Duration::from_millis(250)))
        .unwrap_or(Duration::from_secs(3600));
    let mut closing = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!("a connection ended: {e}");
                }
                return;
            }
            _ = close.cancelled(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = shutdown.cancelled(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = tokio::time::sleep(tick), if !closing => {
                let idle = limits.idle_timeout.is_some_and(|t| {
                    in_flight.load(Ordering::Relaxed) == 0 && activity.quiet_for() >= t
                });
                if idle {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// When a connection last moved a byte, in milliseconds since it opened.
struct Activity {
    opened: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = self.opened.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn quiet_for(&self) -> Duration {
        let now = self.opened.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// A stream that notes every byte read or written.
struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Counts a request as in flight until its response body is dropped.
struct InFlight(Arc<AtomicU64>);

impl InFlight {
    fn new(count: Arc<AtomicU64>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The response body, holding the in-flight guard until it is sent or dropped. Its size
/// hint is the inner body's, so a reply keeps its Content-Length.
fn guarded(body: axum::body::Body, guard: InFlight) -> axum::body::Body {
    axum::body::Body::new(Guarded {
        inner: body,
        _guard: guard,
    })
}

struct Guarded {
    inner: axum::body::Body,
    _guard: InFlight,
}

impl http_body::Body for Guarded {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_unauthenticated: usize, max_tcp: usize) -> Limits {
        Limits {
            header_read_timeout: None,
            idle_timeout: None,
            max_unauthenticated,
            max_tcp,
        }
    }

    #[test]
    fn the_oldest_unauthenticated_connection_makes_room() {
        let r = Registry::default();
        let l = limits(2, 4);
        let a = r.admit(&l).1.unwrap();
        let b = r.admit(&l).1.unwrap();
        a.authenticated();
        let c = r.admit(&l).1.unwrap();
        assert!(!b.close.is_cancelled());
        // b and c wait: a fourth waiting one evicts b, never the authenticated a.
        let _d = r.admit(&l).1.unwrap();
        assert!(b.close.is_cancelled() && !a.close.is_cancelled() && !c.close.is_cancelled());
        assert_eq!(r.counts(), (3, 2));
    }

    #[test]
    fn at_the_total_cap_only_an_unauthenticated_one_is_evicted() {
        let r = Registry::default();
        let l = limits(10, 2);
        let a = r.admit(&l).1.unwrap();
        let b = r.admit(&l).1.unwrap();
        a.authenticated();
        b.authenticated();
        let (admission, conn) = r.admit(&l);
        assert_eq!(admission, Admission::Full);
        assert!(conn.is_none());
        assert_eq!(r.counts(), (2, 0));
    }

    #[test]
    fn the_file_limit_is_raised_to_the_hard_limit() {
        let soft = raise_fd_limit();
        assert!(soft >= 256, "{soft}");
    }
}
