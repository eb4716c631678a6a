//! What a refused request costs the daemon (`harness = false`): `POST /api/v1/call` with a
//! body of N top-level keys, one bad field (`page.offset` is a string) and N unknown ones,
//! `{"op":"list_jobs","page":{"offset":"x"},"zz0000000":0,…}`, served by the daemon's own
//! code path (`api::server::serve` on 127.0.0.1:0 with a bearer token, on a runtime of two
//! workers) and answered 400 naming `page.offset`. For each N:
//!
//! - `parse`: parsing the body into JSON in process (`serde_json::from_slice`), the floor;
//! - `refused`: the request's latency, client to client (median of the runs);
//! - `hello while 2 in flight`: the slowest of `hello` calls sent one after another while
//!   two such bodies are being refused (what every other user sees meanwhile);
//! - `field`: the field the answer names (checked to be `page.offset` in the smoke run).
//!
//! ```text
//! cargo bench -p brightrun-engine --bench api_errors
//! API_ERRORS_KEYS=1000,8000 API_ERRORS_RUNS=3 cargo bench -p brightrun-engine --bench api_errors
//! ```
//! Defaults: keys 1000,8000,24000,100000; 5 runs. Run as a test (`cargo test --all-targets`
//! passes no `--bench`) it makes one small run, to check that it works.

#[path = "common/listen.rs"]
mod listen;

use brightrun_engine::Engine;
use brightrun_engine::api::LocalApi;
use brightrun_engine::paths::Paths;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn body(keys: usize) -> Vec<u8> {
    let mut s = String::from(r#"{"op":"list_jobs","page":{"offset":"x"}"#);
    for i in 0..keys {
        s.push_str(&format!(",\"zz{i:07}\":0"));
    }
    s.push('}');
    s.into_bytes()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let keys: Vec<usize> = std::env::var("API_ERRORS_KEYS")
        .ok()
        .map(|v| v.split(',').map(|k| k.trim().parse().unwrap()).collect())
        .unwrap_or_else(|| {
            if bench {
                vec![1_000, 8_000, 24_000, 100_000]
            } else {
                vec![1_000]
            }
        });
    let runs: usize = std::env::var("API_ERRORS_RUNS")
        .ok()
        .map(|v| v.parse().unwrap())
        .unwrap_or(if bench { 5 } else { 1 });

    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("config")).unwrap();
    std::fs::write(
        home.path().join("config/config.toml"),
        "[trainer]\npython = \"/bin/true\"\n",
    )
    .unwrap();
    let daemon = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("daemon")
        .enable_all()
        .build()
        .unwrap();
    let engine = Engine::builder(Paths::under(home.path())).open().unwrap();
    let api = LocalApi::new(engine.clone());
    let token = api.token_store().create(None, None).unwrap().token;
    let stop = CancellationToken::new();
    let base = listen::serve(&daemon, &api, home.path(), &stop);
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("client")
        .enable_all()
        .build()
        .unwrap();
    let http = reqwest::Client::new();
    let post = |b: Vec<u8>| {
        http.post(format!("{base}/api/v1/call"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(b)
            .timeout(Duration::from_secs(3600))
            .send()
    };

    println!(
        "{:>8} {:>10} {:>10} {:>12} {:>26}  field",
        "keys", "body KiB", "parse ms", "refused ms", "hello while 2 in flight ms"
    );
    for &n in &keys {
        let b = body(n);
        let parse = (0..runs.max(3))
            .map(|_| {
                let t = Instant::now();
                let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
                let d = t.elapsed();
                drop(v);
                d
            })
            .min()
            .unwrap();
        let mut refused: Vec<Duration> = Vec::new();
        let mut field = serde_json::Value::Null;
        for _ in 0..runs {
            let t = Instant::now();
            let (status, reply) = client.block_on(async {
                let r = post(b.clone()).await.unwrap();
                (r.status(), r.json::<serde_json::Value>().await.unwrap())
            });
            refused.push(t.elapsed());
            assert_eq!(status, 400, "{reply}");
            field = reply["field"].clone();
        }
        refused.sort();
        let median = refused[refused.len() / 2];
        // Two refused bodies in flight; `hello` one after another until both are answered.
        let slowest_hello = client.block_on(async {
            let bad = [tokio::spawn(post(b.clone())), tokio::spawn(post(b.clone()))];
            let mut slowest = Duration::ZERO;
            let mut calls = 0;
            while calls < 3 || !bad.iter().all(|h| h.is_finished()) {
                let t = Instant::now();
                let r = post(br#"{"op":"hello"}"#.to_vec()).await.unwrap();
                assert_eq!(r.status(), 200);
                slowest = slowest.max(t.elapsed());
                calls += 1;
            }
            for h in bad {
                assert_eq!(h.await.unwrap().unwrap().status(), 400);
            }
            slowest
        });
        println!(
            "{n:>8} {:>10.0} {:>10.2} {:>12.2} {:>26.2}  {field}",
            b.len() as f64 / 1024.0,
            ms(parse),
            ms(median),
            ms(slowest_hello)
        );
        if !bench {
            assert_eq!(field, "page.offset");
        }
    }
    stop.cancel();
    engine.shutdown();
    daemon.shutdown_timeout(Duration::from_secs(2));
}
