//! The engine API's behaviour, the same through both implementations: every test runs
//! against `LocalApi` (the engine in process) and against `RemoteApi` talking to that engine
//! served in process on a temporary Unix socket (as `brightrun serve` serves it), both as
//! `Arc<dyn EngineApi>`. Every request and reply round-trips, users see only their own records
//! and changes, the change feed resumes after any seq (replay, gaps, lag, a reconnect) with
//! nothing missed or repeated, and the job lifecycle runs against a scripted cluster backend
//! (injected through the builder: no trainer, no shell scripts) with concurrent polling.

use async_trait::async_trait;
use brightrun_engine::api::*;
use brightrun_engine::backend::*;
use brightrun_engine::domain::*;
use brightrun_engine::events::EngineEvent;
use brightrun_engine::ids::*;
use brightrun_engine::paths::Paths;
use brightrun_engine::{Engine, Period};
use futures::StreamExt;
use sha2::Digest;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Which implementation of the engine API a test talks to.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Via {
    Local,
    Remote,
}

/// The engine API for one engine, as `via` says. Remote: the engine is served on
/// `home/engine.sock` until this is dropped.
struct Served {
    api: Arc<dyn EngineApi>,
    local: LocalApi,
    via: Via,
    socket: std::path::PathBuf,
    stop: CancellationToken,
}

impl Served {
    async fn new(e: &Engine, home: &std::path::Path, via: Via) -> Self {
        let local = LocalApi::new(e.clone());
        let socket = home.join("engine.sock");
        let stop = CancellationToken::new();
        let api: Arc<dyn EngineApi> = match via {
            Via::Local => Arc::new(local.clone()),
            Via::Remote => {
                serve(&local, &socket, &stop).await;
                Arc::new(RemoteApi::new(EngineAddress::Unix(socket.clone()), None).unwrap())
            }
        };
        Served {
            api,
            local,
            via,
            socket,
            stop,
        }
    }

    /// The API as the holder of `token` sees it (not the owner).
    fn as_token(&self, token: &NewToken) -> Arc<dyn EngineApi> {
        match self.via {
            Via::Local => Arc::new(self.local.for_user(token.info.user_id, false)),
            Via::Remote => Arc::new(
                RemoteApi::new(
                    EngineAddress::Unix(self.socket.clone()),
                    Some(token.token.clone()),
                )
                .unwrap(),
            ),
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Serves `api` on `socket` until `stop` (the daemon's server, in process).
async fn serve(api: &LocalApi, socket: &std::path::Path, stop: &CancellationToken) {
    let unix = server::bind_unix(socket).await.unwrap();
    tokio::spawn(server::serve(
        api.clone(),
        unix,
        socket.to_path_buf(),
        None,
        stop.clone(),
    ));
}

/// Runs an async test body once per implementation, each in its own test.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn local() {
                super::$name(super::Via::Local).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn remote() {
                super::$name(super::Via::Remote).await
            }
        }
    };
}

/// A script of reports, written when the job is submitted: it gets the job's output folder
/// (where a trainer writes its adapter).
type Script = Box<dyn FnOnce(&std::path::Path) -> Vec<PollResult> + Send>;

/// A cluster that answers polls from a script, one report per poll; a job whose script is
/// empty keeps running. `hold` makes its polls wait until released (a slow cluster).
#[derive(Default)]
struct Scripted {
    scripts: Mutex<HashMap<String, VecDeque<PollResult>>>,
    next: Mutex<VecDeque<Script>>,
    cancelled: Mutex<Vec<String>>,
    hold: Option<Arc<tokio::sync::Semaphore>>,
    polls: std::sync::atomic::AtomicUsize,
}

impl Scripted {
    fn queue(&self, script: impl FnOnce(&std::path::Path) -> Vec<PollResult> + Send + 'static) {
        self.next.lock().unwrap().push_back(Box::new(script));
    }
}

#[async_trait]
impl ClusterBackend for Scripted {
    fn kind(&self) -> &'static str {
        "scripted"
    }
    async fn submit(&self, job: &Submission<'_>) -> Result<String, BackendError> {
        let spec = job.spec;
        let OutputRef::Dir(out) = &spec.output else {
            return Err(BackendError::Rejected(
                "scripted runs write to a folder".into(),
            ));
        };
        let script: VecDeque<PollResult> = match self.next.lock().unwrap().pop_front() {
            Some(f) => f(std::path::Path::new(out)).into(),
            None => VecDeque::new(),
        };
        let ext = format!("ext-{}", spec.job_id);
        self.scripts.lock().unwrap().insert(ext.clone(), script);
        Ok(ext)
    }
    async fn poll(&self, id: &str, cursor: u64) -> Result<PollResult, BackendError> {
        self.polls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let Some(h) = &self.hold {
            let _permit = h.acquire().await.unwrap();
        }
        let mut scripts = self.scripts.lock().unwrap();
        let script = scripts
            .get_mut(id)
            .ok_or_else(|| BackendError::Unavailable(format!("unknown {id}")))?;
        Ok(script
            .pop_front()
            .unwrap_or(PollResult::new(RemoteState::Running, Vec::new(), cursor)))
    }
    async fn cancel(&self, id: &str) -> Result<(), BackendError> {
        self.cancelled.lock().unwrap().push(id.to_string());
        Ok(())
    }
    async fn log_tail(&self, _: &str, _: usize) -> Result<Vec<String>, BackendError> {
        Ok(vec![])
    }
    async fn check(&self) -> BackendHealth {
        BackendHealth::ok("scripted")
    }
}

fn report(state: RemoteState, lines: &[String], cursor: u64) -> PollResult {
    PollResult::new(
        state,
        lines.iter().map(|l| Envelope::parse_line(l)).collect(),
        cursor,
    )
}

const CONFIG: &str = "[trainer]\npython = \"/bin/true\"\n[engine]\npoll_interval_millis = 20\ndispatch_interval_secs = 1\n";

fn engine(home: &std::path::Path, backends: Vec<(&str, Arc<Scripted>)>) -> Engine {
    std::fs::create_dir_all(home.join("config")).unwrap();
    // Written once: the engine adds the profile's user id on first open.
    if !home.join("config/config.toml").exists() {
        std::fs::write(home.join("config/config.toml"), CONFIG).unwrap();
    }
    let mut b = Engine::builder(Paths::under(home));
    for (name, backend) in backends {
        b = b.backend(name, backend);
    }
    b.open().unwrap()
}

async fn ready_dataset(api: &dyn EngineApi, dir: &std::path::Path, name: &str) -> Dataset {
    let file = dir.join(format!("{name}.jsonl"));
    let lines: String = (0..20)
        .map(|i| format!("{{\"prompt\":\"p{i}\",\"completion\":\"c{i}\"}}\n"))
        .collect();
    std::fs::write(&file, lines).unwrap();
    let d = api
        .add_dataset_file(&file, Some(name.into()), None, &|_, _| {})
        .await
        .unwrap();
    let d = api.validate_dataset(&d.id.to_string()).await.unwrap();
    assert_eq!(d.status, DatasetStatus::Ready, "{:?}", d.validation_errors);
    d
}

fn spec(d: &Dataset, backend: &str) -> JobSpec {
    JobSpec {
        dataset: d.id.to_string(),
        preset: "fast".into(),
        sets: vec![("base_model".into(), "brightrun/tiny-random-llama".into())],
        gpu_type: Some("A10G".into()),
        gpu_count: Some(1),
        backend: Some(backend.into()),
        from_model: None,
    }
}

/// Fetches until `ok` holds (at most `secs`), returning what held.
async fn poll_until<T: std::fmt::Debug, F: std::future::Future<Output = T>>(
    secs: u64,
    mut fetch: impl FnMut() -> F,
    ok: impl Fn(&T) -> bool,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let v = fetch().await;
        if ok(&v) {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {v:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_job(api: &dyn EngineApi, id: JobId, f: impl Fn(&TrainingJob) -> bool) -> TrainingJob {
    poll_until(20, || async { api.job(&id.to_string()).await.unwrap() }, f).await
}

/// Writes an adapter the way a trainer would and returns the events announcing it.
fn adapter_events(dir: &std::path::Path) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    let body = b"{\"r\": 8}";
    std::fs::write(dir.join("adapter_config.json"), body).unwrap();
    let sha = hex::encode(sha2::Sha256::digest(body));
    vec![
        format!(
            r#"{{"type":"artifact","dir":{:?},"files":[{{"path":"adapter_config.json","size":{},"sha256":"{sha}"}}]}}"#,
            dir.to_str().unwrap(),
            body.len()
        ),
        r#"{"type":"done","summary":{"total_steps":2}}"#.to_string(),
    ]
}

both!(a_scripted_job_runs_to_a_model_and_every_change_is_seen_once_in_order);
async fn a_scripted_job_runs_to_a_model_and_every_change_is_seen_once_in_order(via: Via) {
    let home = tempfile::tempdir().unwrap();
    let cluster = Arc::new(Scripted::default());
    let e = engine(home.path(), vec![("scripted", cluster.clone())]);
    let served = Served::new(&e, home.path(), via).await;
    let api = &*served.api;
    let d = ready_dataset(api, home.path(), "chats").await;
    let start_seq = api.hello().await.unwrap().last_seq;
    let mut feed = api.changes(start_seq).await.unwrap();
    let metric = |s: u64| {
        format!(
            r#"{{"type":"metric","step":{s},"total_steps":2,"epoch":1.0,"training_loss":{}}}"#,
            2.0 / s as f64
        )
    };
    cluster.queue(move |out| {
        vec![
            report(
                RemoteState::Running,
                &[r#"{"type":"stage","stage":"training"}"#.into()],
                1,
            ),
            report(RemoteState::Running, &[metric(1), metric(2)], 3),
            report(RemoteState::Succeeded, &adapter_events(out), 5),
        ]
    });
    let tasks = e.start();
    let job = api.create_job(spec(&d, "scripted"), false).await.unwrap();
    let done = wait_job(api, job.id, |j| j.status.is_terminal()).await;
    assert_eq!(
        done.status,
        JobStatus::Completed,
        "{:?}",
        done.error_message
    );
    assert_eq!(done.current_step, 2);
    let model = api
        .model(&done.artifact_id.unwrap().to_string())
        .await
        .unwrap();
    assert_eq!(model.files.len(), 1);
    // The feed saw every change after start_seq, contiguous, with the job's path through
    // its states in order.
    let mut seqs = Vec::new();
    let mut statuses = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while let Ok(Some(c)) = tokio::time::timeout_at(deadline, feed.next()).await {
        let c = c.unwrap();
        seqs.push(c.seq);
        if let EngineEvent::Job(j) = &c.event
            && j.id == job.id
            && statuses.last() != Some(&j.status)
        {
            statuses.push(j.status);
        }
        if c.seq == api.hello().await.unwrap().last_seq
            && statuses.last() == Some(&JobStatus::Completed)
        {
            break;
        }
    }
    let expected: Vec<u64> = (start_seq + 1..=*seqs.last().unwrap()).collect();
    assert_eq!(seqs, expected, "contiguous, no duplicates");
    assert_eq!(
        statuses,
        vec![
            JobStatus::Queued,
            JobStatus::Initializing,
            JobStatus::Running,
            JobStatus::Completed
        ]
    );
    // A new subscriber from the same seq gets exactly the same sequence from the log.
    let replay: Vec<u64> = api
        .changes(start_seq)
        .await
        .unwrap()
        .take(seqs.len())
        .map(|c| c.unwrap().seq)
        .collect()
        .await;
    assert_eq!(replay, seqs);
    e.shutdown();
    let _ = tasks.await;
}

both!(a_slow_cluster_delays_neither_other_jobs_nor_a_cancel);
async fn a_slow_cluster_delays_neither_other_jobs_nor_a_cancel(via: Via) {
    let home = tempfile::tempdir().unwrap();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let slow = Arc::new(Scripted {
        hold: Some(gate.clone()),
        ..Default::default()
    });
    let fast = Arc::new(Scripted::default());
    let e = engine(
        home.path(),
        vec![("slow", slow.clone()), ("fast", fast.clone())],
    );
    let served = Served::new(&e, home.path(), via).await;
    let api = &*served.api;
    let d = ready_dataset(api, home.path(), "chats").await;
    fast.queue(|out| vec![report(RemoteState::Succeeded, &adapter_events(out), 2)]);
    let tasks = e.start();
    let stuck = api.create_job(spec(&d, "slow"), false).await.unwrap();
    // The slow cluster's poll is now blocked inside the monitor.
    wait_job(api, stuck.id, |j| j.external_job_id.is_some()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while slow.polls.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slow job was never polled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let other = api.create_job(spec(&d, "fast"), false).await.unwrap();
    let done = wait_job(api, other.id, |j| j.status.is_terminal()).await;
    assert_eq!(
        done.status,
        JobStatus::Completed,
        "{:?}",
        done.error_message
    );
    // Cancelling the job whose poll hangs answers at once.
    let cancelled = tokio::time::timeout(
        Duration::from_secs(2),
        api.cancel_job(&stuck.id.to_string()),
    )
    .await
    .expect("cancel is not blocked by a hanging poll")
    .unwrap();
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    // The cluster's stop follows the reply (it may take its grace period).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while slow.cancelled.lock().unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cluster was never told"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        slow.cancelled.lock().unwrap().as_slice(),
        [format!("ext-{}", stuck.id)]
    );
    // When the hung poll finally answers, the cancel stands.
    gate.add_permits(100);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        api.job(&stuck.id.to_string()).await.unwrap().status,
        JobStatus::Cancelled
    );
    e.shutdown();
    let _ = tasks.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_backend_is_gone_fails_at_once_with_the_reason() {
    let home = tempfile::tempdir().unwrap();
    let cluster = Arc::new(Scripted::default());
    let e = engine(home.path(), vec![("scripted", cluster)]);
    let api = LocalApi::new(e.clone());
    let d = ready_dataset(&api, home.path(), "chats").await;
    let job = api.create_job(spec(&d, "scripted"), false).await.unwrap();
    drop(api);
    drop(e);
    // Reopened without that backend (the config no longer has it).
    let e = engine(home.path(), vec![]);
    let api = LocalApi::new(e.clone());
    let tasks = e.start();
    let j = wait_job(&api, job.id, |j| j.status.is_terminal()).await;
    assert_eq!(j.status, JobStatus::Failed);
    assert!(
        j.error_message
            .as_deref()
            .unwrap()
            .contains("unknown backend `scripted`"),
        "{:?}",
        j.error_message
    );
    e.shutdown();
    let _ = tasks.await;
}

both!(users_see_only_their_own_records_and_changes);
async fn users_see_only_their_own_records_and_changes(via: Via) {
    let home = tempfile::tempdir().unwrap();
    let e = engine(home.path(), vec![]);
    let served = Served::new(&e, home.path(), via).await;
    let owner = &*served.api;
    let alice = owner
        .create_token(Some("alice".into()), None)
        .await
        .unwrap();
    let bob = owner.create_token(Some("bob".into()), None).await.unwrap();
    assert_ne!(alice.info.user_id, bob.info.user_id);
    let a = served.as_token(&alice);
    let b = served.as_token(&bob);
    let b_seq = b.hello().await.unwrap().last_seq;
    let mut b_feed = b.changes(b_seq).await.unwrap();
    let d = ready_dataset(&*a, home.path(), "alices").await;
    let id = d.id.to_string();
    for r in [
        Request::GetDataset { id: id.clone() },
        Request::ValidateDataset { id: id.clone() },
        Request::UpdateDataset {
            id: id.clone(),
            name: Some("mine now".into()),
            description: None,
        },
        Request::DeleteDataset {
            id: id.clone(),
            purge: false,
        },
        Request::Estimate {
            spec: spec(&d, "local"),
        },
        Request::CreateJob {
            spec: spec(&d, "local"),
            confirm_over_budget: false,
        },
    ] {
        let op = r.op();
        let err = b.call(r).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::NotFound, "{op}: {err}");
    }
    assert_eq!(b.datasets(None, None, Paging::ALL).await.unwrap().total, 0);
    assert_eq!(a.datasets(None, None, Paging::ALL).await.unwrap().total, 1);
    // Bob's feed carries none of Alice's changes: nothing arrives.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), b_feed.next())
            .await
            .is_err()
    );
    // Only the owner manages tokens.
    assert_eq!(b.tokens().await.unwrap_err().code, ErrorCode::Unauthorized);
    // The doctor's report names every user's records, and a repair moves files: owner only.
    for repair in [false, true] {
        assert_eq!(
            b.doctor(repair).await.unwrap_err().code,
            ErrorCode::Unauthorized
        );
    }
    assert!(owner.doctor(false).await.unwrap().ok);
    assert_eq!(owner.tokens().await.unwrap().len(), 2);
}

both!(users_other_than_the_owner_see_their_own_figures_and_are_told_what_is_owner_only);
async fn users_other_than_the_owner_see_their_own_figures_and_are_told_what_is_owner_only(
    via: Via,
) {
    let home = tempfile::tempdir().unwrap();
    let e = engine(home.path(), vec![]);
    let served = Served::new(&e, home.path(), via).await;
    let owner = &*served.api;
    let bob = owner.create_token(Some("bob".into()), None).await.unwrap();
    let b = served.as_token(&bob);
    ready_dataset(owner, home.path(), "owners").await;
    // The owner sees the engine's configuration, paths and the change log's seq.
    let full = owner.config_info().await.unwrap();
    assert!(full.config.get("storage").is_some());
    assert!(full.paths.contains_key("secrets_file"));
    assert!(
        full.config_toml.contains("[storage"),
        "{}",
        full.config_toml
    );
    assert!(owner.mirror_status().await.unwrap().last_seq > 0);
    // Bob sees neither the storage, backends, mirror, trainer and engine sections nor paths.
    let his = b.config_info().await.unwrap();
    for section in ["storage", "backends", "mirror", "trainer", "engine"] {
        assert!(
            his.config.get(section).is_none(),
            "{section}: {:#}",
            his.config
        );
        assert!(
            !his.config_toml.contains(&format!("\n[{section}")),
            "{section}: {}",
            his.config_toml
        );
    }
    assert!(his.config.get("training").is_some());
    assert!(his.paths.is_empty() && his.secrets.is_empty(), "{his:?}");
    let m = b.mirror_status().await.unwrap();
    assert_eq!((m.last_seq, m.acked_seq, m.behind), (0, 0, 0), "{m:?}");
    assert_eq!(m.target, None);
    // Owner-only requests say what they are, with a reason clients can branch on.
    let err = b.doctor(false).await.unwrap_err();
    assert_eq!(
        (err.code, err.reason),
        (ErrorCode::Unauthorized, Some(Reason::OwnerOnly))
    );
    assert!(
        err.message
            .starts_with("`doctor` is for the engine's owner: run it on the engine's machine"),
        "{err}"
    );
    assert!(!err.message.contains("may manage tokens"), "{err}");
    let err = b.create_backup().await.unwrap_err();
    assert!(err.message.starts_with("`backup create` is for"), "{err}");
    let err = b.call(Request::MirrorVerify).await.unwrap_err();
    assert!(err.message.starts_with("`mirror verify` is for"), "{err}");
    let err = b.tokens().await.unwrap_err();
    assert_eq!(err.reason, Some(Reason::OwnerOnly));
}

both!(tokens_expire_and_record_their_last_use);
async fn tokens_expire_and_record_their_last_use(via: Via) {
    let home = tempfile::tempdir().unwrap();
    let e = engine(home.path(), vec![]);
    let served = Served::new(&e, home.path(), via).await;
    let owner = &*served.api;
    let in_an_hour = now() + chrono::Duration::hours(1);
    let carol = owner
        .create_token(Some("carol".into()), Some(in_an_hour))
        .await
        .unwrap();
    let past = owner
        .create_token(
            Some("dan".into()),
            Some(now() - chrono::Duration::minutes(1)),
        )
        .await
        .unwrap_err();
    assert_eq!(past.field.as_deref(), Some("expires_at"), "{past}");
    let listed = owner.tokens().await.unwrap();
    // RFC 3339 on the wire: the same instant, to the microsecond at least.
    let expiry = listed[0].expires_at.unwrap();
    assert!(
        (expiry - in_an_hour).num_milliseconds().abs() < 1,
        "{expiry}"
    );
    assert_eq!(listed[0].last_used_at, None);
    let c = served.as_token(&carol);
    c.jobs(None, Paging::ALL).await.unwrap();
    if via == Via::Remote {
        // The daemon records a use on authentication (in process, the token is not presented).
        let used = owner.tokens().await.unwrap()[0].last_used_at;
        assert!(used.is_some(), "{used:?}");
        // Past its expiry (set in the store, as time passing would): refused with its reason.
        let hash = hash_token(&carol.token);
        let mut record = e.store().token_by_hash(&hash).unwrap().unwrap();
        record.expires_at = Some(now() - chrono::Duration::seconds(1));
        e.store().put_token(&record).unwrap();
        let err = c.jobs(None, Paging::ALL).await.unwrap_err();
        assert_eq!(
            (err.code, err.reason),
            (ErrorCode::Unauthorized, Some(Reason::TokenExpired)),
            "{err}"
        );
        assert!(err.message.contains("expired at"), "{err}");
        assert!(err.message.contains("brightrun tokens create"), "{err}");
    }
}

both!(the_feed_resumes_after_any_seq_and_refuses_a_compacted_one);
async fn the_feed_resumes_after_any_seq_and_refuses_a_compacted_one(via: Via) {
    let home = tempfile::tempdir().unwrap();
    let e = engine(home.path(), vec![]);
    let served = Served::new(&e, home.path(), via).await;
    let api = &*served.api;
    for i in 0..5 {
        ready_dataset(api, home.path(), &format!("d{i}")).await;
    }
    let last = api.hello().await.unwrap().last_seq;
    assert!(last >= 10, "{last}");
    for after in [0, 3, last - 1] {
        let got: Vec<u64> = api
            .changes(after)
            .await
            .unwrap()
            .take((last - after) as usize)
            .map(|c| c.unwrap().seq)
            .collect()
            .await;
        assert_eq!(got, (after + 1..=last).collect::<Vec<_>>(), "after {after}");
    }
    let later = now() + chrono::Duration::seconds(1);
    assert!(e.store().compact_changes(later).unwrap() > 0);
    let Err(err) = api.changes(0).await else {
        panic!("a compacted seq must be refused")
    };
    assert_eq!(err.code, ErrorCode::Conflict);
    let Err(err) = api.changes(last + 100).await else {
        panic!("a seq from the future must be refused")
    };
    assert_eq!(
        (err.code, err.field.as_deref()),
        (ErrorCode::Invalid, Some("after"))
    );
}

both!(a_lagging_subscriber_and_a_reconnect_miss_nothing_and_repeat_nothing);
async fn a_lagging_subscriber_and_a_reconnect_miss_nothing_and_repeat_nothing(via: Via) {
    let home = tempfile::tempdir().unwrap();
    let e = engine(home.path(), vec![]);
    let served = Served::new(&e, home.path(), via).await;
    let api = &*served.api;
    let start = api.hello().await.unwrap().last_seq;
    // Subscribed, then not read while one commit makes more changes than the live channel
    // holds: the feed falls behind and must go back to the log.
    let lagging = api.changes(start).await.unwrap();
    const MANY: u64 = 10_000;
    let (store, user) = (e.store().clone(), e.user_id());
    brightrun_engine::store::off_runtime(move || {
        store.write(|w| {
            for i in 0..MANY {
                w.put(&Notification {
                    id: NotificationId::new(),
                    user_id: user,
                    kind: NotificationType::JobQueued,
                    title: format!("n{i}"),
                    message: String::new(),
                    priority: Priority::Low,
                    read: false,
                    link: None,
                    metadata: JsonValue(serde_json::Value::Null),
                    created_at: now(),
                })?;
            }
            Ok(())
        })
    })
    .await
    .unwrap()
    .unwrap();
    let last = api.hello().await.unwrap().last_seq;
    assert!(last >= start + MANY, "{start}..{last}");
    let seqs = |stream: ChangeStream, n: u64| async move {
        let got: Vec<u64> = tokio::time::timeout(
            Duration::from_secs(60),
            stream.take(n as usize).map(|c| c.unwrap().seq).collect(),
        )
        .await
        .expect("the feed delivers");
        got
    };
    let all = seqs(lagging, last - start).await;
    assert_eq!(
        all,
        (start + 1..=last).collect::<Vec<_>>(),
        "lagged: in order, once"
    );
    // A client that drops its connection part-way resumes from the last seq it saw.
    let part = seqs(api.changes(start).await.unwrap(), 1234).await;
    let seen = *part.last().unwrap();
    let rest = seqs(api.changes(seen).await.unwrap(), last - seen).await;
    assert_eq!(
        [part, rest].concat(),
        (start + 1..=last).collect::<Vec<_>>(),
        "reconnected: nothing missed, nothing twice"
    );
}

both!(every_request_and_reply_round_trips_through_json);
/// Every request the API has, and every reply kind, made by the real engine and sent through
/// JSON and back unchanged.
async fn every_request_and_reply_round_trips_through_json(via: Via) {
    let home = tempfile::tempdir().unwrap();
    let cluster = Arc::new(Scripted::default());
    let e = engine(home.path(), vec![("scripted", cluster.clone())]);
    let served = Served::new(&e, home.path(), via).await;
    let api = &*served.api;
    let d = ready_dataset(api, home.path(), "chats").await;
    cluster.queue(|out| {
        vec![report(
            RemoteState::Succeeded,
            &[
                vec![
                    r#"{"type":"metric","step":1,"total_steps":1,"training_loss":1.5}"#.to_string(),
                ],
                adapter_events(out),
            ]
            .concat(),
            3,
        )]
    });
    let tasks = e.start();
    let job = api.create_job(spec(&d, "scripted"), false).await.unwrap();
    let job = wait_job(api, job.id, |j| j.status.is_terminal()).await;
    let model = job.artifact_id.unwrap().to_string();
    let file = home.path().join("second.jsonl");
    std::fs::write(&file, "{\"prompt\":\"a\",\"completion\":\"b\"}\n").unwrap();
    let notification = api.notifications(false, Paging::ALL).await.unwrap().items[0]
        .id
        .to_string();
    let jid = job.id.to_string();
    let did = d.id.to_string();
    let token = api.create_token(Some("carol".into()), None).await.unwrap();
    let requests = vec![
        Request::Hello,
        Request::Catalog,
        Request::Config,
        Request::ListDatasets {
            status: Some(DatasetStatus::Ready),
            search: Some("cha".into()),
            page: Paging {
                offset: 0,
                limit: 5,
            },
        },
        Request::GetDataset {
            id: did[..8].to_string(),
        },
        Request::CreateDataset {
            file_name: "x.jsonl".into(),
            file_size: 10,
            name: Some("x".into()),
            description: None,
        },
        Request::ImportDataset {
            path: file.to_string_lossy().into(),
            name: None,
            description: Some("second".into()),
        },
        Request::ConfirmDataset { id: did.clone() },
        Request::ValidateDataset { id: did.clone() },
        Request::UpdateDataset {
            id: did.clone(),
            name: Some("renamed".into()),
            description: Some("d".into()),
        },
        Request::Estimate {
            spec: spec(&d, "scripted"),
        },
        Request::CleanDataset {
            id: did.clone(),
            drop_duplicates: true,
            name: Some("cleaned".into()),
        },
        Request::ListJobs {
            status: None,
            page: Paging::default(),
        },
        Request::GetJob { id: jid.clone() },
        Request::JobMetrics {
            id: jid.clone(),
            from_step: 0,
            limit: Some(10),
        },
        Request::JobLogs {
            id: jid.clone(),
            lines: 5,
        },
        Request::JobCheckpoints { id: jid.clone() },
        Request::ListModels {
            page: Paging::default(),
        },
        Request::GetModel { id: model.clone() },
        Request::Costs {
            period: Period::Week,
        },
        Request::ListNotifications {
            unread_only: true,
            page: Paging::default(),
        },
        Request::MarkRead {
            id: Some(notification),
        },
        Request::ListTokens,
        Request::CreateToken {
            user: Some("dave".into()),
            expires_at: None,
        },
        Request::RevokeToken {
            id: token.info.id.clone(),
        },
        Request::EvaluateModels {
            models: vec![model.clone()],
            prompts: Some(vec![brightrun_engine::domain::EvalPrompt {
                messages: vec![brightrun_engine::domain::ChatMessage {
                    role: "user".into(),
                    content: "What is 2 plus 2?".into(),
                }],
                reference: Some("4".into()),
            }]),
            max_new_tokens: Some(16),
            backend: None,
            gpu_type: None,
            confirm_over_budget: true,
        },
        Request::CreateJob {
            spec: spec(&d, "scripted"),
            confirm_over_budget: true,
        },
    ];
    let mut ops = std::collections::BTreeSet::new();
    let mut kinds = std::collections::BTreeSet::new();
    let mut last_job = None;
    for r in requests {
        let text = serde_json::to_string(&r).unwrap();
        let back: Request = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r, "{text}");
        ops.insert(r.op());
        let reply = api.call(r).await.unwrap_or_else(|e| panic!("{text}: {e}"));
        if let Reply::Job(j) = &reply {
            last_job = Some(j.id);
        }
        let text = serde_json::to_string(&reply).unwrap();
        let back: Reply = serde_json::from_str(&text).unwrap();
        assert_eq!(back, reply, "{text}");
        kinds.insert(reply.kind());
    }
    // The last ones change state: cancel a queued job, delete a dataset without active jobs.
    let cancel = Request::CancelJob {
        id: last_job.unwrap().to_string(),
    };
    let reply = api.call(cancel.clone()).await.unwrap();
    assert_eq!(
        serde_json::from_str::<Reply>(&serde_json::to_string(&reply).unwrap()).unwrap(),
        reply
    );
    ops.insert(cancel.op());
    let retry = Request::RetryJob {
        id: last_job.unwrap().to_string(),
        from_scratch: false,
        checkpoint: None,
        backend: None,
        dry_run: false,
    };
    let reply = api.call(retry.clone()).await.unwrap();
    assert_eq!(
        serde_json::from_str::<Reply>(&serde_json::to_string(&reply).unwrap()).unwrap(),
        reply
    );
    ops.insert(retry.op());
    let other = api
        .datasets(None, Some("second".into()), Paging::ALL)
        .await
        .unwrap()
        .items[0]
        .id;
    let del = Request::DeleteDataset {
        id: other.to_string(),
        purge: false,
    };
    ops.insert(del.op());
    kinds.insert(api.call(del).await.unwrap().kind());
    // The object store's requests. The local store has no URLs to share, and a ready
    // dataset has no upload to resume: each says so with its code.
    for (r, refused) in [
        (
            Request::ModelUrl {
                id: model.clone(),
                file: None,
                expires_secs: Some(60),
            },
            Some(ErrorCode::Invalid),
        ),
        (
            Request::ResumeDataset { id: did.clone() },
            Some(ErrorCode::Conflict),
        ),
        // A training job has no comparison.
        (
            Request::JobComparison { id: jid.clone() },
            Some(ErrorCode::Conflict),
        ),
        // A comparison needs two runs at least (tests/e2e_training.rs compares two).
        (
            Request::CompareRuns {
                ids: vec![jid.clone()],
            },
            Some(ErrorCode::Invalid),
        ),
        // An example or a line, not both (the trainer's replies: tests/e2e_inspect.rs).
        (
            Request::InspectDataset {
                dataset: did.clone(),
                model: None,
                example: Some(1),
                line: Some(2),
                max_seq_length: None,
                stats: false,
            },
            Some(ErrorCode::Invalid),
        ),
        (
            Request::StorageCheck {
                create_buckets: false,
            },
            None,
        ),
        (Request::Backends { check: true }, None),
        (Request::CreateBackup, None),
        (Request::Doctor { repair: false }, None),
        (
            Request::DeleteModel {
                id: model.clone(),
                purge: false,
            },
            None,
        ),
    ] {
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), r);
        ops.insert(r.op());
        match (api.call(r).await, refused) {
            (Ok(reply), None) => {
                kinds.insert(reply.kind());
            }
            (Err(e), Some(code)) => assert_eq!(e.code, code, "{text}: {e}"),
            (other, _) => panic!("{text}: {:?}", other.map(|r| r.kind())),
        }
    }
    // The mirror's requests on an engine without `[mirror] url`: a status that says so, and
    // `conflict` for the two that need a database (tests/mirror.rs covers them with one).
    let status = Request::MirrorStatus;
    ops.insert(status.op());
    match api.call(status).await.unwrap() {
        Reply::Mirror(m) => {
            assert_eq!(m.state, brightrun_engine::mirror::MirrorState::Disabled);
            kinds.insert("mirror");
        }
        other => panic!("{other:?}"),
    }
    for r in [
        Request::MirrorSync {
            timeout_secs: Some(1),
        },
        Request::MirrorVerify,
    ] {
        ops.insert(r.op());
        let e = api.call(r).await.unwrap_err();
        assert_eq!(e.code, ErrorCode::Conflict, "{e:?}");
    }
    assert_eq!(ops.len(), 43, "every request: {ops:?}");
    // All but `url`, which only an S3 store gives (tests/e2e_s3.rs), the inspections, which
    // the trainer makes (tests/e2e_inspect.rs), and a comparison of runs (e2e_training.rs).
    assert_eq!(kinds.len(), 26, "every reply kind: {kinds:?}");
    // Errors round-trip with their code and field.
    let err = api
        .call(Request::GetJob {
            id: "ffffffff".into(),
        })
        .await
        .unwrap_err();
    let back: ApiError = serde_json::from_str(&serde_json::to_string(&err).unwrap()).unwrap();
    assert_eq!((back.code, back), (ErrorCode::NotFound, err));
    // Changes round-trip too.
    let mut feed = api.changes(0).await.unwrap();
    for _ in 0..20 {
        let c = feed.next().await.unwrap().unwrap();
        let text = serde_json::to_string(&*c).unwrap();
        assert_eq!(
            serde_json::from_str::<brightrun_engine::events::Sequenced>(&text).unwrap(),
            *c
        );
    }
    e.shutdown();
    let _ = tasks.await;
}

#[test]
fn unknown_fields_and_wrong_types_are_refused_with_the_field() {
    for (text, needle) in [
        (r#"{"op":"get_job","id":"1","colour":"red"}"#, "colour"),
        (r#"{"op":"no_such_op"}"#, "no_such_op"),
    ] {
        let err = serde_json::from_str::<Request>(text)
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{text}: {err}");
    }
}

/// A sweep of three runs of the base spec at `learning_rate` 1e-4, 2e-4 and 3e-4.
fn sweep_spec(d: &Dataset, max_parallel: u32) -> SweepSpec {
    SweepSpec {
        job: spec(d, "scripted"),
        grid: vec![SweepAxis {
            key: "learning_rate".into(),
            values: vec!["1e-4".into(), "2e-4".into(), "3e-4".into()],
        }],
        max_parallel,
        ..Default::default()
    }
}

/// A metric event at `step` with a validation loss.
fn val_metric(step: u64, loss: f64) -> String {
    format!(
        r#"{{"type":"metric","step":{step},"total_steps":100,"epoch":0.5,"training_loss":{loss},"validation_loss":{loss}}}"#
    )
}

async fn wait_sweep(api: &dyn EngineApi, id: SweepId, f: impl Fn(&Sweep) -> bool) -> Sweep {
    poll_until(
        30,
        || async { api.get_sweep(&id.to_string()).await.unwrap() },
        f,
    )
    .await
}

both!(a_sweep_stops_the_run_that_falls_behind_and_cancelling_it_cancels_the_rest);
async fn a_sweep_stops_the_run_that_falls_behind_and_cancelling_it_cancels_the_rest(via: Via) {
    let home = tempfile::tempdir().unwrap();
    let cluster = Arc::new(Scripted::default());
    let e = engine(home.path(), vec![("scripted", cluster.clone())]);
    let served = Served::new(&e, home.path(), via).await;
    let api = &*served.api;
    let d = ready_dataset(api, home.path(), "chats").await;
    // Whichever run is submitted third reports a validation loss twice its siblings'.
    for loss in [1.0, 1.05, 2.0] {
        cluster.queue(move |_| vec![report(RemoteState::Running, &[val_metric(10, loss)], 1)]);
    }
    let tasks = e.start();
    let mut spec = sweep_spec(&d, 3);
    spec.stop_worse = Some(0.1);
    let sweep = api.create_sweep(spec, false).await.unwrap();
    assert_eq!(sweep.job_ids().count(), 3, "three at a time: {sweep:#?}");
    let ids: Vec<JobId> = sweep.job_ids().collect();
    let jobs = || async {
        let mut all = Vec::new();
        for id in &ids {
            all.push(api.job(&id.to_string()).await.unwrap());
        }
        all
    };
    let all = poll_until(30, jobs, |all: &Vec<TrainingJob>| {
        all.iter().any(|j| j.status == JobStatus::Cancelled)
    })
    .await;
    let stopped = all
        .into_iter()
        .find(|j| j.status == JobStatus::Cancelled)
        .unwrap();
    let why = stopped.error_message.clone().unwrap_or_default();
    assert!(
        why.contains("stopped by its sweep") && why.contains("2.0000 at step 10"),
        "{why}"
    );
    let points = api.metrics(&stopped.id.to_string(), 0, None).await.unwrap();
    assert_eq!(
        points[0].validation_loss,
        Some(2.0),
        "the worst run was the one stopped"
    );
    // The other two run on; cancelling the sweep cancels them.
    for id in ids.iter().filter(|i| **i != stopped.id) {
        assert!(!api.job(&id.to_string()).await.unwrap().status.is_terminal());
    }
    let cancelled = api.cancel_sweep(&sweep.id.to_string()).await.unwrap();
    assert_eq!(cancelled.status, SweepStatus::Cancelled);
    for id in &ids {
        let j = wait_job(api, *id, |j| j.status.is_terminal()).await;
        assert_eq!(j.status, JobStatus::Cancelled);
    }
    let again = api.cancel_sweep(&sweep.id.to_string()).await.unwrap_err();
    assert_eq!(again.reason, Some(Reason::AlreadyFinished));
    e.shutdown();
    tasks.await.unwrap();
}

both!(a_sweep_never_starts_a_run_past_its_budget_and_names_its_best);
async fn a_sweep_never_starts_a_run_past_its_budget_and_names_its_best(via: Via) {
    let home = tempfile::tempdir().unwrap();
    let cluster = Arc::new(Scripted::default());
    let e = engine(home.path(), vec![("scripted", cluster.clone())]);
    let served = Served::new(&e, home.path(), via).await;
    let api = &*served.api;
    let d = ready_dataset(api, home.path(), "chats").await;
    let plan = api.plan_sweep(sweep_spec(&d, 3)).await.unwrap();
    assert_eq!(plan.runs.len(), 3);
    assert_eq!(plan.keys, ["learning_rate"]);
    let one = plan.runs[0].estimate.estimated_cost;
    assert!(one > 0.0, "{plan:#?}");
    assert!(
        (plan.total_cost
            - plan
                .runs
                .iter()
                .map(|r| r.estimate.estimated_cost)
                .sum::<f64>())
        .abs()
            < 1e-9
    );
    // A budget that covers no run is refused before anything starts.
    let mut poor = sweep_spec(&d, 3);
    poor.budget = Some(one / 2.0);
    let refused = api.create_sweep(poor, false).await.unwrap_err();
    assert_eq!(refused.reason, Some(Reason::OverBudget), "{refused:?}");
    assert!(api.list_sweeps().await.unwrap().is_empty());
    // Two and a half runs' worth: the plan says one will not start, and it does not.
    let mut spec = sweep_spec(&d, 3);
    spec.budget = Some(one * 2.5);
    assert_eq!(
        api.plan_sweep(spec.clone())
            .await
            .unwrap()
            .over_sweep_budget,
        1
    );
    for loss in [0.9, 0.7] {
        cluster.queue(move |out| {
            let mut done = vec![val_metric(1, loss)];
            done.extend(adapter_events(out));
            vec![report(RemoteState::Succeeded, &done, 3)]
        });
    }
    let tasks = e.start();
    let sweep = api.create_sweep(spec, false).await.unwrap();
    let done = wait_sweep(api, sweep.id, |s| s.status == SweepStatus::Completed).await;
    assert_eq!(done.job_ids().count(), 2, "{done:#?}");
    let skipped = done.runs.iter().find(|r| r.job_id.is_none()).unwrap();
    assert!(
        skipped.skipped.as_deref().unwrap().contains("budget"),
        "{skipped:?}"
    );
    let best = done.best_job_id.expect("a best run");
    assert_eq!(done.best_by.as_deref(), Some("validation_loss"));
    let points = api.metrics(&best.to_string(), 0, None).await.unwrap();
    assert_eq!(
        points[0].validation_loss,
        Some(0.7),
        "the lowest validation loss wins"
    );
    assert!(done.spent > 0.0);
    e.shutdown();
    tasks.await.unwrap();
}
