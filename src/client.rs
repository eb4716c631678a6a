//! How a command reaches its engine: the daemon named by `--engine`, else the daemon serving
//! this home when its socket answers, else the engine embedded in this process. Commands use
//! only the engine API, so all three behave the same.

use anyhow::{Context, Result};
use brightrun_engine::Engine;
use brightrun_engine::api::{
    API_VERSION, Api, ApiError, EngineAddress, EngineApi, ErrorCode, LocalApi, RemoteApi, server,
};
use brightrun_engine::paths::Paths;
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
        if let Some(addr) = engine.filter(|a| !a.trim().is_empty()) {
            let address = EngineAddress::parse(addr)?;
            let token = std::env::var("BRIGHTRUN_TOKEN").ok();
            let remote = RemoteApi::new(address, token)?;
            check_version(&remote).await?;
            return Ok(Client {
                api: Arc::new(remote),
                embedded: None,
                paths,
            });
        }
        let socket = paths.socket_file();
        if socket.exists() {
            let remote = RemoteApi::new(EngineAddress::Unix(socket.clone()), None)?;
            match remote.hello().await {
                Ok(info) if info.api_version == API_VERSION => {
                    tracing::info!("attached to the engine on {}", socket.display());
                    return Ok(Client {
                        api: Arc::new(remote),
                        embedded: None,
                        paths,
                    });
                }
                Ok(info) => {
                    anyhow::bail!(ApiError::unavailable(format!(
                        "the engine on {} speaks API version {} and this brightrun {}; use matching versions",
                        socket.display(),
                        info.api_version,
                        API_VERSION
                    )));
                }
                // A stale socket of an engine that is gone: embed instead. An engine that is
                // there but answers with an error (its disk is full, say) keeps the store:
                // its error is the answer, never an attempt to open the store beside it.
                Err(e) if e.code == ErrorCode::Unavailable && !answers(&socket).await => {
                    tracing::info!("no engine answers on {}: {e}", socket.display());
                }
                Err(e) => return Err(e.into()),
            }
        }
        let engine = open_engine(&paths).await?;
        let local = LocalApi::new(engine);
        Ok(Client {
            api: Arc::new(local.clone()),
            embedded: Some(local),
            paths,
        })
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
