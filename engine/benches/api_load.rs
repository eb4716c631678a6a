//! The daemon's API under load, on loopback, in one process (`harness = false`):
//!
//! - `list`: a store with 100,000 jobs (and 1,000 datasets) of one user, served by the
//!   daemon's own code path (`api::server::serve`, the router `brightrun serve` runs, on
//!   127.0.0.1:0 with a bearer token, plus its Unix socket) with the engine's background
//!   tasks running; 64 concurrent clients (one keep-alive connection each) send a fixed
//!   number of requests each to `GET /api/jobs?page=1&limit=20`, `GET /api/datasets` and
//!   `POST /api/v1/call` (`list_jobs`). Every latency is recorded: p50/p90/p99/max and
//!   throughput. Baseline in the same run: the same queries in process
//!   (`LocalApi::call`), one caller and 64 concurrent callers.
//! - `sse`: 50 subscribers on `GET /api/events?after=SEQ` while a writer thread commits
//!   1,000 metrics points a second (100 transactions of 10) for a running job of the same
//!   user; delivery latency (commit returned → frame parsed by the subscriber), events per
//!   subscriber (asserted equal to what was committed), and the CPU of the daemon's threads.
//!
//! The daemon runs on its own tokio runtime whose threads (workers and blocking pool) are
//! named `daemon`; the clients run on another runtime (`client`), the writer on its own
//! thread: CPU is read per thread from `/proc/self/task`, so the daemon's share is its own.
//! Both compete for the same cores, as a daemon and its clients on one machine do.
//!
//! ```text
//! cargo bench -p brightrun-engine --bench api_load            # both
//! cargo bench -p brightrun-engine --bench api_load -- list    # or: sse
//! ```
//! Sizes: `API_LOAD_JOBS` (100000), `API_LOAD_DATASETS` (1000), `API_LOAD_CLIENTS` (64),
//! `API_LOAD_REQUESTS` (requests per client per route, 200), `API_LOAD_SUBSCRIBERS` (50),
//! `API_LOAD_SSE_SECS` (10).

#[path = "common/listen.rs"]
mod listen;

use async_trait::async_trait;
use brightrun_engine::Engine;
use brightrun_engine::api::{EngineApi, LocalApi, Paging, Reply, Request};
use brightrun_engine::backend::*;
use brightrun_engine::config::TrainingConfig;
use brightrun_engine::domain::*;
use brightrun_engine::ids::*;
use brightrun_engine::paths::Paths;
use futures::StreamExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Set when the binary runs as a test (`cargo test --all-targets` passes no `--bench`): then
/// the sizes are a smoke run's, so the suite checks that the benchmark works without paying
/// for the measurement.
static SMOKE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

fn env_usize(name: &str, default: usize) -> usize {
    let smoke = *SMOKE.get().unwrap_or(&false);
    let fallback = match (smoke, name) {
        (true, "API_LOAD_JOBS") => 500,
        (true, "API_LOAD_DATASETS") => 20,
        (true, "API_LOAD_CLIENTS") => 4,
        (true, "API_LOAD_REQUESTS") => 10,
        (true, "API_LOAD_SUBSCRIBERS") => 2,
        (true, "API_LOAD_SSE_SECS") => 1,
        _ => default,
    };
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(fallback)
}

/// When request `k` of client `i` is due: back to back (`rate` 0), or `rate` requests a second
/// per client with the clients' phases spread over one period. Latency is measured from the
/// send (tokio's timer wakes up to a millisecond late, which is the client's delay, not the
/// server's); a server that fell behind would show as a throughput under the target rate.
fn due(
    start: tokio::time::Instant,
    rate: f64,
    i: usize,
    clients: usize,
    k: usize,
) -> Option<tokio::time::Instant> {
    (rate > 0.0).then(|| {
        let period = 1.0 / rate;
        start + Duration::from_secs_f64(period * (k as f64 + i as f64 / clients as f64))
    })
}

/// A cluster whose jobs keep running quietly (the SSE bench's job is "running" on it).
struct Quiet;

#[async_trait]
impl ClusterBackend for Quiet {
    fn kind(&self) -> &'static str {
        "bench"
    }
    async fn submit(&self, job: &Submission<'_>) -> Result<String, BackendError> {
        let spec = job.spec;
        Ok(format!("bench-{}", spec.job_id))
    }
    async fn poll(&self, _: &str, cursor: u64) -> Result<PollResult, BackendError> {
        Ok(PollResult::new(RemoteState::Running, Vec::new(), cursor))
    }
    async fn cancel(&self, _: &str) -> Result<(), BackendError> {
        Ok(())
    }
    async fn log_tail(&self, _: &str, _: usize) -> Result<Vec<String>, BackendError> {
        Ok(vec![])
    }
    async fn check(&self) -> BackendHealth {
        BackendHealth::ok("scripted")
    }
}

const MODELS: [&str; 5] = [
    "meta-llama/Llama-3.1-8B-Instruct",
    "mistralai/Mistral-7B-Instruct-v0.3",
    "Qwen/Qwen2.5-7B-Instruct",
    "google/gemma-2-9b-it",
    "brightrun/tiny-random-llama",
];

fn dataset(user: UserId, i: usize, at: Timestamp) -> Dataset {
    let msg = |role: &str, n: usize| ChatMessage {
        role: role.into(),
        content: format!("{role} turn {n} of example dataset {i}: ").repeat(4),
    };
    Dataset {
        id: DatasetId::new(),
        user_id: user,
        name: format!("support-conversations-{i:04}"),
        description: Some(format!("Customer support chats, export batch {i}")),
        file_name: format!("support-{i:04}.jsonl"),
        file_size: 4_000_000 + i as u64 * 1_000,
        format: Some(DatasetFormat::OpenaiChat),
        status: DatasetStatus::Ready,
        storage_bucket: "lora-datasets".into(),
        storage_path: format!("{user}/datasets/{i}"),
        sha256: Some(format!("{:064x}", i * 7919)),
        statistics: Some(DatasetStatistics {
            total_examples: 5_000,
            total_training_pairs: 4_500,
            total_validation_pairs: 500,
            total_tokens: 2_400_000,
            tokens_exact: false,
            avg_turns_per_conversation: 3.2,
            avg_tokens_per_turn: 150.0,
            tokens_p50: 420,
            tokens_p95: 1_300,
            tokens_max: 3_900,
            duplicate_examples: 12,
            examples_over_max_seq_length: 3,
            max_seq_length: 2048,
            error_count: 0,
            warning_count: 2,
            preference: None,
        }),
        total_training_pairs: Some(4_500),
        total_validation_pairs: Some(500),
        total_tokens: Some(2_400_000),
        training_ready: true,
        validated_at: Some(at),
        validation_errors: vec![],
        sample_data: (0..3)
            .map(|n| vec![msg("system", n), msg("user", n), msg("assistant", n)])
            .collect(),
        error_message: None,
        source_path: Some(format!("/home/user/exports/support-{i:04}.jsonl")),
        created_at: at,
        updated_at: at,
        deleted_at: None,
    }
}

/// A job as history leaves it: mostly completed, some failed or cancelled.
fn job(user: UserId, dataset: DatasetId, i: usize, at: Timestamp) -> TrainingJob {
    let presets = brightrun_engine::training::presets::list(&TrainingConfig::default());
    let p = &presets[i % presets.len()];
    let mut hp = p.hyperparameters.clone();
    hp.base_model = MODELS[i % MODELS.len()].into();
    let mut j = TrainingJob::new_queued(
        user,
        dataset,
        p.id.clone(),
        hp,
        GpuConfig {
            gpu_type: "A100-80GB".into(),
            gpu_count: 1 + (i % 2) as u32,
            price_per_gpu_hour: 3.5,
            backend: "local".into(),
        },
        1_200,
        4.2,
        None,
    );
    let start = at + chrono::Duration::seconds(20);
    let end = start + chrono::Duration::minutes(45);
    j.created_at = at;
    j.queued_at = at;
    j.started_at = Some(start);
    j.external_job_id = Some(format!("local-{}", j.id));
    j.event_cursor = 48_000;
    j.last_event_at = Some(end);
    j.first_training_loss = Some(2.31);
    j.current_metrics = CurrentMetrics {
        training_loss: Some(0.84),
        validation_loss: Some(0.91),
        learning_rate: Some(1.2e-6),
        gradient_norm: Some(0.7),
        throughput: Some(1850.0),
        gpu_utilization: Some(96.0),
    };
    j.current_epoch = j.total_epochs;
    match i % 20 {
        0..14 => {
            j.status = JobStatus::Completed;
            j.current_stage = JobStage::Completed;
            j.progress = 100.0;
            j.current_step = j.total_steps;
            j.completed_at = Some(end);
            j.current_cost = 2.63;
            j.final_cost = Some(2.63);
            j.artifact_id = Some(ArtifactId::new());
            j.output_dir = Some(format!("/data/jobs/{}/adapter", j.id));
        }
        14..17 => {
            j.status = JobStatus::Failed;
            j.current_stage = JobStage::Training;
            j.progress = 37.5;
            j.current_step = 450;
            j.completed_at = Some(end);
            j.final_cost = Some(0.98);
            j.error_message = Some("CUDA out of memory while training".into());
            j.error_detail = Some(
                "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.96 GiB. GPU 0 \
                 has a total capacity of 79.15 GiB of which 1.02 GiB is free."
                    .into(),
            );
        }
        _ => {
            j.status = JobStatus::Cancelled;
            j.current_stage = JobStage::Training;
            j.progress = 12.0;
            j.current_step = 144;
            j.completed_at = Some(end);
            j.final_cost = Some(0.31);
        }
    }
    j.updated_at = end;
    j
}

fn points(job: JobId, from: u64, n: u64) -> Vec<MetricsPoint> {
    (from..from + n)
        .map(|step| MetricsPoint {
            job_id: job,
            timestamp: now(),
            epoch: step as f64 / 1000.0,
            step,
            training_loss: Some(2.0 / (1.0 + step as f64 / 100.0)),
            validation_loss: (step % 50 == 0).then_some(1.5),
            learning_rate: Some(5e-5),
            gradient_norm: Some(0.8),
            throughput: Some(1800.0),
            gpu_utilization: Some(97.0),
            preference: None,
        })
        .collect()
}

/// CPU seconds (user + system) of this process's threads, by thread name prefix.
fn thread_cpu(prefix: &str) -> f64 {
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let mut ticks = 0u64;
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    for t in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !stat[open + 1..close].starts_with(prefix) {
            continue;
        }
        let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        ticks += f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0);
    }
    ticks as f64 / tick
}

/// CPU seconds of the calling thread.
fn own_thread_cpu() -> f64 {
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let Some(close) = stat.rfind(')') else {
        return f64::NAN;
    };
    let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    (f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0)) as f64 / tick
}

/// Latencies in microseconds: p50/p90/p99/max.
struct Summary {
    n: usize,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

fn summary(mut v: Vec<f64>) -> Summary {
    v.sort_by(f64::total_cmp);
    let q = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    Summary {
        n: v.len(),
        p50: q(0.50),
        p90: q(0.90),
        p99: q(0.99),
        max: *v.last().unwrap(),
    }
}

fn ms(us: f64) -> String {
    format!("{:.2} ms", us / 1000.0)
}

fn row(what: &str, s: &Summary, wall: Option<Duration>, cpu: Option<f64>) {
    row_with(what, s, wall, cpu, None)
}

fn row_with(
    what: &str,
    s: &Summary,
    wall: Option<Duration>,
    cpu: Option<f64>,
    client_cpu: Option<f64>,
) {
    let thr = wall
        .map(|w| format!("{:.0}/s", s.n as f64 / w.as_secs_f64()))
        .unwrap_or_else(|| "-".into());
    let cpu = cpu
        .map(|c| format!("{:.2} s", c))
        .unwrap_or_else(|| "-".into());
    let client = client_cpu
        .map(|c| format!("{:.2} s", c))
        .unwrap_or_else(|| "-".into());
    println!(
        "| {what} | {} | {} | {} | {} | {} | {thr} | {cpu} | {client} |",
        s.n,
        ms(s.p50),
        ms(s.p90),
        ms(s.p99),
        ms(s.max)
    );
}

struct Daemon {
    api: LocalApi,
    base: String,
    token: String,
    stop: CancellationToken,
    rt: tokio::runtime::Runtime,
    job: JobId,
    _home: tempfile::TempDir,
}

/// A home with `jobs` jobs and `datasets` datasets of the profile's user (plus one running job
/// on the quiet backend), served the way `brightrun serve --listen 127.0.0.1:0` serves it.
fn daemon(jobs: usize, datasets: usize) -> Daemon {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("config")).unwrap();
    std::fs::write(
        home.path().join("config/config.toml"),
        "[trainer]\npython = \"/bin/true\"\n[engine]\npoll_interval_millis = 500\n",
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .thread_name("daemon")
        .enable_all()
        .build()
        .unwrap();
    let engine = Engine::builder(Paths::under(home.path()))
        .backend("bench", Arc::new(Quiet))
        .open()
        .unwrap();
    let user = engine.profile_user();
    let store = engine.store().clone();
    let t = Instant::now();
    let base = now() - chrono::Duration::minutes(jobs as i64 + datasets as i64 + 10);
    let ds: Vec<Dataset> = (0..datasets)
        .map(|i| dataset(user, i, base + chrono::Duration::seconds(i as i64)))
        .collect();
    store
        .write(|w| ds.iter().try_for_each(|d| w.put(d)))
        .unwrap();
    let start = base + chrono::Duration::minutes(datasets as i64 / 60 + 1);
    for chunk in (0..jobs).collect::<Vec<_>>().chunks(1000) {
        let batch: Vec<TrainingJob> = chunk
            .iter()
            .map(|&i| {
                job(
                    user,
                    ds[i % ds.len()].id,
                    i,
                    start + chrono::Duration::minutes(i as i64),
                )
            })
            .collect();
        store
            .write(|w| batch.iter().try_for_each(|j| w.put(j)))
            .unwrap();
    }
    // The SSE bench's job: running on the quiet backend, so the monitor polls it.
    let mut running = job(user, ds[0].id, 0, now());
    running.id = JobId::new();
    running.status = JobStatus::Running;
    running.current_stage = JobStage::Training;
    running.completed_at = None;
    running.final_cost = None;
    running.artifact_id = None;
    running.progress = 0.0;
    running.current_step = 0;
    running.gpu_config.backend = "bench".into();
    running.external_job_id = Some(format!("bench-{}", running.id));
    running.started_at = Some(now());
    running.last_event_at = Some(now());
    store.put(&running).unwrap();
    eprintln!(
        "store: {jobs} jobs, {datasets} datasets written in {:.1} s ({})",
        t.elapsed().as_secs_f64(),
        engine.paths().database_file().display()
    );
    let api = LocalApi::new(engine.clone());
    let token = api.token_store().create(None, None).unwrap().token;
    let stop = CancellationToken::new();
    rt.block_on(async {
        engine.start();
    });
    let base = listen::serve(&rt, &api, home.path(), &stop);
    Daemon {
        api,
        base,
        token,
        stop,
        rt,
        job: running.id,
        _home: home,
    }
}

impl Daemon {
    fn finish(self) {
        self.stop.cancel();
        self.api.engine().shutdown();
        self.rt.shutdown_timeout(Duration::from_secs(2));
    }
}

fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .thread_name("client")
        .enable_all()
        .build()
        .unwrap()
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap()
}

#[derive(Clone, Copy)]
enum Route {
    Jobs,
    Datasets,
    Call,
}

impl Route {
    fn name(self) -> &'static str {
        match self {
            Route::Jobs => "`GET /api/jobs?page=1&limit=20`",
            Route::Datasets => "`GET /api/datasets`",
            Route::Call => "`POST /api/v1/call` `list_jobs` (limit 20)",
        }
    }
    fn request(self, c: &reqwest::Client, base: &str, token: &str) -> reqwest::RequestBuilder {
        match self {
            Route::Jobs => c.get(format!("{base}/api/jobs?page=1&limit=20")),
            Route::Datasets => c.get(format!("{base}/api/datasets")),
            Route::Call => c
                .post(format!("{base}/api/v1/call"))
                .json(&serde_json::json!({"op": "list_jobs", "page": {"offset": 0, "limit": 20}})),
        }
        .bearer_auth(token)
    }
}

/// Checks one answer's shape and totals.
async fn check(route: Route, d: &Daemon, jobs: usize, datasets: usize) {
    let c = http_client();
    let r = route.request(&c, &d.base, &d.token).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", route.name());
    let v: serde_json::Value = r.json().await.unwrap();
    let data = &v["data"];
    match route {
        Route::Jobs => {
            assert_eq!(data["jobs"].as_array().unwrap().len(), 20);
            assert_eq!(data["total"], jobs + 1);
        }
        Route::Datasets => {
            assert_eq!(data["datasets"].as_array().unwrap().len(), 20);
            assert_eq!(data["total"], datasets);
        }
        Route::Call => {
            assert_eq!(data["kind"], "jobs");
            assert_eq!(data["data"]["items"].as_array().unwrap().len(), 20);
            assert_eq!(data["data"]["total"], jobs + 1);
        }
    }
}

fn list_bench() {
    let jobs = env_usize("API_LOAD_JOBS", 100_000);
    let datasets = env_usize("API_LOAD_DATASETS", 1_000).max(20);
    let clients = env_usize("API_LOAD_CLIENTS", 64);
    let requests = env_usize("API_LOAD_REQUESTS", 200);
    let rate = env_usize("API_LOAD_RATE", 0) as f64;
    let d = daemon(jobs, datasets);
    let crt = client_runtime();
    println!(
        "\n## list routes: {jobs} jobs, {datasets} datasets, {clients} clients × {requests} requests ({}), {} cores\n",
        if rate > 0.0 {
            format!(
                "{rate} requests/s per client, {} /s in all",
                rate * clients as f64
            )
        } else {
            "back to back".into()
        },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("| what | requests | p50 | p90 | p99 | max | throughput | daemon CPU | client CPU |");
    println!("|---|---|---|---|---|---|---|---|---|");

    // In process, one caller, then 64 at once: the same queries without HTTP.
    let in_process = |req: Request, concurrent: usize, n: usize| {
        let api = d.api.clone();
        d.rt.block_on(async move {
            for _ in 0..20 {
                api.call(req.clone()).await.unwrap();
            }
            let cpu0 = thread_cpu("daemon");
            let t = Instant::now();
            let start = tokio::time::Instant::now();
            let rate = if concurrent > 1 { rate } else { 0.0 };
            let tasks: Vec<_> = (0..concurrent)
                .map(|i| {
                    let (api, req) = (api.clone(), req.clone());
                    tokio::spawn(async move {
                        let mut lat = Vec::with_capacity(n);
                        for k in 0..n {
                            if let Some(d) = due(start, rate, i, concurrent, k) {
                                tokio::time::sleep_until(d).await;
                            }
                            let s = Instant::now();
                            let r = api.call(req.clone()).await.unwrap();
                            lat.push(s.elapsed().as_secs_f64() * 1e6);
                            assert!(matches!(r, Reply::Jobs(_) | Reply::Datasets(_)));
                        }
                        lat
                    })
                })
                .collect();
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            (all, t.elapsed(), thread_cpu("daemon") - cpu0)
        })
    };
    let list_jobs = Request::ListJobs {
        status: None,
        page: Paging {
            offset: 0,
            limit: 20,
        },
    };
    let list_datasets = Request::ListDatasets {
        status: None,
        search: None,
        page: Paging {
            offset: 0,
            limit: 20,
        },
    };
    for (name, req) in [("list_jobs", &list_jobs), ("list_datasets", &list_datasets)] {
        let (lat, wall, _) = in_process(req.clone(), 1, 1000);
        row(
            &format!("in process, 1 caller: `{name}` (baseline)"),
            &summary(lat),
            Some(wall),
            None,
        );
        let (lat, wall, cpu) = in_process(req.clone(), clients, requests);
        row(
            &format!("in process, {clients} concurrent callers: `{name}` (baseline)"),
            &summary(lat),
            Some(wall),
            Some(cpu),
        );
    }

    for route in [Route::Jobs, Route::Datasets, Route::Call] {
        let (base, token) = (d.base.clone(), d.token.clone());
        crt.block_on(check(route, &d, jobs, datasets));
        let (lat, wall, cpu) = crt.block_on(async move {
            let go = Arc::new(tokio::sync::Barrier::new(clients + 1));
            let tasks: Vec<_> = (0..clients)
                .map(|i| {
                    let (base, token, go) = (base.clone(), token.clone(), go.clone());
                    tokio::spawn(async move {
                        let c = http_client();
                        // Warm-up: open the connection.
                        for _ in 0..3 {
                            let r = route.request(&c, &base, &token).send().await.unwrap();
                            r.bytes().await.unwrap();
                        }
                        go.wait().await;
                        let start = tokio::time::Instant::now();
                        let mut lat = Vec::with_capacity(requests);
                        for k in 0..requests {
                            if let Some(d) = due(start, rate, i, clients, k) {
                                tokio::time::sleep_until(d).await;
                            }
                            let s = Instant::now();
                            let r = route.request(&c, &base, &token).send().await.unwrap();
                            assert_eq!(r.status(), 200);
                            r.bytes().await.unwrap();
                            lat.push(s.elapsed().as_secs_f64() * 1e6);
                        }
                        lat
                    })
                })
                .collect();
            go.wait().await;
            let cpu0 = (thread_cpu("daemon"), thread_cpu("client"));
            let t = Instant::now();
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            let wall = t.elapsed();
            let cpu1 = (thread_cpu("daemon"), thread_cpu("client"));
            (all, wall, (cpu1.0 - cpu0.0, cpu1.1 - cpu0.1))
        });
        row_with(
            &format!("HTTP, {clients} clients: {}", route.name()),
            &summary(lat),
            Some(wall),
            Some(cpu.0),
            Some(cpu.1),
        );
    }
    d.finish();
}

/// One parsed `event: change` frame: its seq and, for metrics, the first step and the count.
struct Frame {
    seq: u64,
    metrics: Option<(u64, usize)>,
}

fn parse_frame(frame: &str) -> Option<Frame> {
    let mut event = "";
    let mut data = String::new();
    for line in frame.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            event = v.trim();
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push_str(v.strip_prefix(' ').unwrap_or(v));
        }
    }
    if event != "change" {
        assert_ne!(event, "error", "the feed failed: {data}");
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&data).unwrap();
    let seq = v["seq"].as_u64().unwrap();
    let e = &v["event"];
    let metrics = (e["type"] == "metrics").then(|| {
        let p = e["data"]["points"].as_array().unwrap();
        (p[0]["step"].as_u64().unwrap(), p.len())
    });
    Some(Frame { seq, metrics })
}

fn sse_bench() {
    let subscribers = env_usize("API_LOAD_SUBSCRIBERS", 50);
    let secs = env_usize("API_LOAD_SSE_SECS", 10) as u64;
    let jobs = env_usize("API_LOAD_JOBS", 100_000);
    const BATCH: u64 = 10;
    const PER_SEC: u64 = 100;
    let batches = secs * PER_SEC;
    let d = daemon(jobs, 20);
    let crt = client_runtime();
    let after = d.api.engine().store().last_seq().unwrap();
    let t0 = Instant::now();
    // Per batch: when its write began and when it returned, in µs since t0 (0: not yet).
    let stamps = || Arc::new((0..batches).map(|_| AtomicU64::new(0)).collect::<Vec<_>>());
    let (began, returned) = (stamps(), stamps());

    let (base, token) = (d.base.clone(), d.token.clone());
    let ready = Arc::new(tokio::sync::Barrier::new(subscribers + 1));
    let subs: Vec<_> = (0..subscribers)
        .map(|_| {
            let (base, token, ready, began, returned) = (
                base.clone(),
                token.clone(),
                ready.clone(),
                began.clone(),
                returned.clone(),
            );
            crt.spawn(async move {
                let c = http_client();
                let r = c
                    .get(format!("{base}/api/events?after={after}"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                ready.wait().await;
                let mut body = r.bytes_stream();
                let mut buf = String::new();
                let (mut lat, mut from_begin) = (Vec::new(), Vec::new());
                let (mut points, mut other, mut last) = (0usize, 0usize, after);
                while (lat.len() as u64) < batches {
                    let chunk =
                        match tokio::time::timeout(Duration::from_secs(10), body.next()).await {
                            Ok(Some(Ok(c))) => c,
                            _ => break,
                        };
                    buf.push_str(std::str::from_utf8(&chunk).unwrap());
                    while let Some(end) = buf.find("\n\n") {
                        let frame: String = buf.drain(..end + 2).collect();
                        let Some(f) = parse_frame(&frame) else {
                            continue;
                        };
                        assert!(f.seq > last, "seq {} after {last}", f.seq);
                        last = f.seq;
                        match f.metrics {
                            Some((step, n)) => {
                                let got = t0.elapsed().as_micros() as f64;
                                let b = (step / BATCH) as usize;
                                let (b0, b1) = (
                                    began[b].load(Ordering::Acquire) as f64,
                                    returned[b].load(Ordering::Acquire) as f64,
                                );
                                from_begin.push(got - b0);
                                // Parsed before `write` returned (it publishes after the
                                // commit, then returns): no delay after the commit.
                                lat.push(if b1 == 0.0 { 0.0 } else { (got - b1).max(0.0) });
                                points += n;
                            }
                            None => other += 1,
                        }
                    }
                }
                (lat, from_begin, points, other)
            })
        })
        .collect();
    crt.block_on(ready.wait());

    let cpu0 = (thread_cpu("daemon"), thread_cpu("client"));
    let store = d.api.engine().store().clone();
    let (job, began_w, returned_w) = (d.job, began.clone(), returned.clone());
    let writer = std::thread::Builder::new()
        .name("writer".into())
        .spawn(move || {
            let start = Instant::now();
            let mut commit_us = Vec::new();
            for b in 0..batches {
                let due = start + Duration::from_micros(b * 1_000_000 / PER_SEC);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let p = points(job, b * BATCH, BATCH);
                let s = Instant::now();
                began_w[b as usize].store((s - t0).as_micros().max(1) as u64, Ordering::Release);
                store.write(|w| w.put_metrics(&p)).unwrap();
                returned_w[b as usize].store(t0.elapsed().as_micros() as u64, Ordering::Release);
                commit_us.push(s.elapsed().as_secs_f64() * 1e6);
            }
            (start.elapsed(), commit_us, own_thread_cpu())
        })
        .unwrap();
    let (wall, commit_us, writer_cpu) = writer.join().unwrap();
    let (mut all, mut all_begin) = (Vec::new(), Vec::new());
    let mut per_sub = Vec::new();
    for s in subs {
        let (lat, from_begin, points, other) = crt.block_on(s).unwrap();
        per_sub.push((lat.len(), points, other));
        all.extend(lat);
        all_begin.extend(from_begin);
    }
    let done = t0.elapsed();
    let cpu1 = (thread_cpu("daemon"), thread_cpu("client"));
    for (i, (events, points, _)) in per_sub.iter().enumerate() {
        assert_eq!(
            *events as u64, batches,
            "subscriber {i} got {events} of {batches} events"
        );
        assert_eq!(*points as u64, batches * BATCH, "subscriber {i}: points");
    }
    let others: Vec<usize> = per_sub.iter().map(|s| s.2).collect();
    let window = done.as_secs_f64();
    println!(
        "\n## SSE fan-out: {subscribers} subscribers, {} points/s in {PER_SEC} commits/s of {BATCH}, {secs} s, {jobs} jobs in the store\n",
        PER_SEC * BATCH
    );
    println!(
        "every subscriber received all {batches} metrics events ({} points) in order; other changes per subscriber: {:?}",
        batches * BATCH,
        others.iter().min().zip(others.iter().max())
    );
    println!(
        "writer: {:.2} s for {batches} commits (paced)",
        wall.as_secs_f64()
    );
    println!("\n| what | samples | p50 | p90 | p99 | max | throughput | CPU | client CPU |");
    println!("|---|---|---|---|---|---|---|---|---|");
    row(
        "commit (`Store::write` + `put_metrics`, 10 points; baseline)",
        &summary(commit_us),
        None,
        None,
    );
    row(
        &format!("delivery, commit returned → parsed by a subscriber ({subscribers} subscribers)"),
        &summary(all),
        Some(done),
        None,
    );
    row(
        "delivery, write began → parsed (commit included)",
        &summary(all_begin),
        None,
        None,
    );
    println!(
        "\ndaemon threads: {:.2} s CPU in {window:.1} s ({:.1} % of one core); writer thread: {writer_cpu:.2} s; subscriber (client) threads: {:.2} s ({:.1} %)",
        cpu1.0 - cpu0.0,
        100.0 * (cpu1.0 - cpu0.0) / window,
        cpu1.1 - cpu0.1,
        100.0 * (cpu1.1 - cpu0.1) / window,
    );
    d.finish();
}

fn main() {
    let _ = SMOKE.set(!std::env::args().any(|a| a == "--bench"));
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let all = which.is_empty();
    if all || which.iter().any(|w| w == "list") {
        list_bench();
    }
    if all || which.iter().any(|w| w == "sse") {
        sse_bench();
    }
}
