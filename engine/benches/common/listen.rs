//! The engine API served in process on a home's socket and a loopback TCP port, as
//! `brightrun serve` does, for the benches that measure it from a client.

use brightrun_engine::api::{LocalApi, server};
use std::path::Path;
use tokio_util::sync::CancellationToken;

/// Serves `api` on `home/engine.sock` and an ephemeral loopback port, on `rt`, until `stop`
/// is cancelled. Returns the TCP base URL (`http://127.0.0.1:PORT`).
pub fn serve(
    rt: &tokio::runtime::Runtime,
    api: &LocalApi,
    home: &Path,
    stop: &CancellationToken,
) -> String {
    rt.block_on(async {
        let sock = home.join("engine.sock");
        let unix = server::bind_unix(&sock).await.unwrap();
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        tokio::spawn(server::serve(
            api.clone(),
            unix,
            sock,
            Some(tcp),
            stop.clone(),
        ));
        format!("http://{addr}")
    })
}
