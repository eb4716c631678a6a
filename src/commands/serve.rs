//! `brightrun serve` (alias `engine`): the engine as a daemon. It owns the store, runs the
//! background work, and serves the engine API on a Unix socket (0600) and, with `--listen`,
//! on TCP for token holders, until SIGTERM or SIGINT stops it gracefully.

use super::exit;
use anyhow::{Context, Result};
use brightrun_engine::api::{LocalApi, server};
use brightrun_engine::paths::Paths;
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

pub async fn run(paths: Paths, listen: Option<SocketAddr>, socket: Option<PathBuf>) -> Result<i32> {
    // A second daemon on the same home is told here which process serves it.
    let engine = crate::client::open_engine(&paths).await?;
    let socket = socket.unwrap_or_else(|| paths.socket_file());
    let api = LocalApi::new(engine.clone());
    // Checked before binding: a non-loopback address is never opened without tokens.
    if let Some(addr) = listen {
        server::check_exposure(&api, addr).await?;
    }
    let unix = server::bind_unix(&socket).await?;
    let tcp = match listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?,
        ),
        None => None,
    };
    let tasks = engine.start();
    let stop = CancellationToken::new();
    {
        let stop = stop.clone();
        let engine = engine.clone();
        tokio::spawn(async move {
            #[cfg(unix)]
            {
                let term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
                if let Err(e) = &term {
                    tracing::warn!("no SIGTERM handler ({e}); only Ctrl-C stops the engine");
                }
                let sigterm = async {
                    match term {
                        Ok(mut t) => {
                            t.recv().await;
                        }
                        Err(_) => std::future::pending::<()>().await,
                    }
                };
                let why = tokio::select! {
                    r = tokio::signal::ctrl_c() => match r {
                        Ok(()) => "SIGINT".to_string(),
                        Err(e) => format!("no SIGINT handler: {e}"),
                    },
                    _ = sigterm => "SIGTERM".to_string(),
                };
                tracing::info!("stopping on {why}");
            }
            #[cfg(not(unix))]
            let _ = tokio::signal::ctrl_c().await;
            // Stopping the engine first ends the event streams, so clients let go.
            engine.shutdown();
            stop.cancel();
        });
    }
    eprintln!(
        "engine serving on unix:{}{} (store {}); Ctrl-C or SIGTERM stops it",
        socket.display(),
        listen
            .map(|a| format!(" and http://{a}"))
            .unwrap_or_default(),
        paths.database_file().display()
    );
    tracing::info!(socket = %socket.display(), ?listen, "engine serving");
    let result = server::serve(api, unix, socket, tcp, stop).await;
    engine.shutdown();
    let _ = tasks.await;
    result?;
    eprintln!("engine stopped");
    Ok(exit::OK)
}
