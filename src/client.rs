//! How a command reaches its engine: the daemon named by `--engine`, else the daemon serving
//! this home when its socket answers, else the engine embedded in this process. Commands use
//! only the engine API, so all three behave the same.

use anyhow::{Context, Result};
use brightrun_engine::api::{
    API_VERSION, Api, ApiError, EngineAddress, EngineApi, ErrorCode, LocalApi, RemoteApi, server,
};
use brightrun_engine::paths::Paths;
use brightrun_engine::store::StoreError;
use brightrun_engine::{Engine, EngineError};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub struct Client {
    pub api: Arc<dyn EngineApi>,
    /// Set when the engine is embedded in this process.
    embedded: Option<LocalApi>,
    paths: Paths,
}

/// The engine's background work (and its socket) while an embedded command runs.
pub struct Running {
    engine: Engine,
    stop: CancellationToken,
    tasks: tokio::task::JoinHandle<()>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    pub async fn stop(self) {
        self.engine.shutdown();
        self.stop.cancel();
        let _ = self.tasks.await;
        if let Some(s) = self.server {
            let _ = s.await;
        }
    }
}

impl Client {
    pub async fn connect(engine: Option<&str>, paths: Paths) -> Result<Client> {
        Self::connect_to(engine, paths, false).await
    }

    /// [`Client::connect`] for the commands that follow an engine (the dashboard, `jobs
    /// watch`): a daemon named by `--engine` that does not answer yet (restarting, or not
    /// started) is waited for, saying so, rather than given up on.
    pub async fn connect_or_wait(engine: Option<&str>, paths: Paths) -> Result<Client> {
        Self::connect_to(engine, paths, true).await
    }

    async fn connect_to(engine: Option<&str>, paths: Paths, wait: bool) -> Result<Client> {
        if let Some(addr) = engine.filter(|a| !a.trim().is_empty()) {
            let address = EngineAddress::parse(addr)?;
            let token = std::env::var("BRIGHTRUN_TOKEN").ok();
            let remote = RemoteApi::new(address, token)?;
            let mut told = false;
            loop {
                match check_version(&remote).await {
                    Err(e) if wait && unavailable(&e) => {
                        if !told {
                            told = true;
                            eprintln!(
                                "waiting for the engine at {} ({}); Ctrl-C to stop",
                                remote.address(),
                                root_message(&e)
                            );
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                            _ = tokio::signal::ctrl_c() => return Err(e),
                        }
                    }
                    other => break other?,
                }
            }
            return Ok(Client {
                api: Arc::new(remote),
                embedded: None,
                paths,
            });
        }
        // Another command may hold the store for a moment (scripts, cron, a second shell):
        // wait for it, or attach once it serves the socket, never fail because it runs.
        let mut wait = StoreWait::new();
        loop {
            if let Some(remote) = attach_to_socket(&paths).await? {
                return Ok(Client {
                    api: Arc::new(remote),
                    embedded: None,
                    paths,
                });
            }
            match open_engine(&paths).await {
                Ok(engine) => {
                    let local = LocalApi::new(engine);
                    return Ok(Client {
                        api: Arc::new(local.clone()),
                        embedded: Some(local),
                        paths,
                    });
                }
                Err(EngineError::Store(StoreError::Locked { path, holder })) => {
                    wait.pause(&path, &holder).await
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Whether the engine runs in this process (so a job runs only while a command or the
    /// dashboard holds it), rather than in a daemon.
    pub fn is_embedded(&self) -> bool {
        self.embedded.is_some()
    }

    /// Lets an embedded engine finish the work a command started and left running (a
    /// cancelled trainer's stop: SIGTERM, the grace period, SIGKILL), at most for its grace.
    pub async fn finish(&self) {
        if let Some(local) = &self.embedded {
            local.engine().drain_job_tasks().await;
        }
    }

    /// For commands that need the engine working (the dashboard, `jobs watch`): an embedded
    /// engine starts its background tasks and serves its socket, so other commands can
    /// attach meanwhile. Attached, the daemon does the work and this returns `None`.
    pub async fn run_engine(&self) -> Option<Running> {
        let local = self.embedded.as_ref()?;
        let engine = local.engine().clone();
        let tasks = engine.start();
        let stop = CancellationToken::new();
        let socket = self.paths.socket_file();
        let server = match server::bind_unix(&socket).await {
            Ok(listener) => {
                let (api, stop) = (local.clone(), stop.clone());
                Some(tokio::spawn(async move {
                    if let Err(e) = server::serve(api, listener, socket, None, stop).await {
                        tracing::warn!("the embedded engine's socket stopped: {e}");
                    }
                }))
            }
            Err(e) => {
                tracing::warn!("the embedded engine cannot serve other clients: {e}");
                None
            }
        };
        Some(Running {
            engine,
            stop,
            tasks,
            server,
        })
    }
}

/// The daemon (or a dashboard, a `jobs watch`) serving this home's socket, when one answers
/// with this API version; `None` when nothing does (no socket, or a stale one).
async fn attach_to_socket(paths: &Paths) -> Result<Option<RemoteApi>> {
    let socket = paths.socket_file();
    if !socket.exists() {
        return Ok(None);
    }
    let remote = RemoteApi::new(EngineAddress::Unix(socket.clone()), None)?;
    match remote.hello().await {
        Ok(info) if info.api_version == API_VERSION => {
            tracing::info!("attached to the engine on {}", socket.display());
            Ok(Some(remote))
        }
        Ok(info) => anyhow::bail!(ApiError::unavailable(format!(
            "the engine on {} speaks API version {} and this brightrun {}; use matching versions",
            socket.display(),
            info.api_version,
            API_VERSION
        ))),
        // A stale socket of an engine that is gone: embed instead. An engine that is there
        // but answers with an error (its disk is full, say) keeps the store: its error is
        // the answer, never an attempt to open the store beside it.
        Err(e) if e.code == ErrorCode::Unavailable && !answers(&socket).await => {
            tracing::info!("no engine answers on {}: {e}", socket.display());
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Waiting for another BrightRun process to let go of the store: short pauses at first
/// (most holders are one-shot commands done in milliseconds), longer ones later, and one
/// line on stderr naming the holder once the wait is long enough to notice.
struct StoreWait {
    started: std::time::Instant,
    pause: std::time::Duration,
    told: bool,
}

impl StoreWait {
    const SAY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);
    const LONGEST_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);

    fn new() -> Self {
        StoreWait {
            started: std::time::Instant::now(),
            pause: std::time::Duration::from_millis(10),
            told: false,
        }
    }

    async fn pause(&mut self, store: &std::path::Path, holder: &str) {
        if !self.told && self.started.elapsed() >= Self::SAY_AFTER {
            self.told = true;
            tracing::info!(
                "waiting for {holder}, which holds the store {}",
                store.display()
            );
            eprintln!(
                "waiting for another BrightRun process ({}) to finish with the store {} (Ctrl-C to stop waiting)",
                crate::commands::output::clean(holder),
                store.display()
            );
        }
        tokio::time::sleep(self.pause).await;
        self.pause = (self.pause * 2).min(Self::LONGEST_PAUSE);
    }
}

/// Whether an error means the engine did not answer (nothing listens yet, or it is
/// restarting), as opposed to an answer (a refused token, another API version).
fn unavailable(e: &anyhow::Error) -> bool {
    e.chain()
        .find_map(|c| c.downcast_ref::<ApiError>())
        .is_some_and(|a| a.code == ErrorCode::Unavailable)
}

fn root_message(e: &anyhow::Error) -> String {
    e.chain()
        .find_map(|c| c.downcast_ref::<ApiError>())
        .map(|a| a.message.clone())
        .unwrap_or_else(|| e.to_string())
}

/// Whether a process accepts connections on the socket (an engine, whatever it answers).
async fn answers(socket: &std::path::Path) -> bool {
    tokio::net::UnixStream::connect(socket).await.is_ok()
}

async fn check_version(api: &RemoteApi) -> Result<()> {
    let info = api
        .hello()
        .await
        .with_context(|| format!("attaching to {}", api.address()))?;
    if info.api_version != API_VERSION {
        anyhow::bail!(ApiError::unavailable(format!(
            "the engine at {} speaks API version {} and this brightrun {}; use matching versions",
            api.address(),
            info.api_version,
            API_VERSION
        )));
    }
    Ok(())
}

/// Opens the store (an upgrade or a repair commits) off the async workers.
pub async fn open_engine(paths: &Paths) -> Result<Engine, brightrun_engine::EngineError> {
    let paths = paths.clone();
    brightrun_engine::store::off_runtime(move || Engine::open(paths))
        .await
        .map_err(|e| {
            brightrun_engine::EngineError::Store(brightrun_engine::store::StoreError::Worker(
                e.to_string(),
            ))
        })?
}
