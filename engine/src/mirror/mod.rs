//! The optional mirror of the store into a shared PostgreSQL schema, the seed's own
//! (`migrations-compat/`), so several engines, the seed's web app, Grafana or psql can read
//! one database. It is a durable consumer of the change log and runs as its own task:
//!
//! - it connects (the password comes from secrets), applies the migrations, ensures the
//!   profile's `auth.users` row;
//! - on first start (no position recorded in PostgreSQL for this engine) it backfills every
//!   record, table by table, in chunks; each chunk carries the log seq it was read at;
//! - then it follows the log: batches of changes, coalesced to the newest version of each
//!   record, upserted in one transaction together with its position
//!   (`brightrun_mirror_state`), and acknowledged in redb only after PostgreSQL committed;
//! - an upsert never replaces a row of a newer seq, so replays after a crash (or a batch
//!   committed but not acknowledged) change nothing: nothing is lost, nothing applied twice;
//! - when PostgreSQL is down, restarting or refusing, the engine goes on; the mirror backs
//!   off (1 s doubling to 30 s) and catches up from where PostgreSQL says it got.
//!
//! Its state is shared through [`Shared`]: a status behind a short lock (never held across
//! I/O) and a watch of the acknowledged seq that `mirror sync` waits on.

mod migrate;
mod rows;
pub mod sample;
mod verify;

pub use migrate::{MIGRATIONS, RECORD_TABLE_SQL, migrate};
pub use rows::{action_url, metric_row_id};
pub use verify::{TableCheck, VerifyReport};

use crate::config::Config;
use crate::domain::{Timestamp, now};
use crate::engine::Engine;
use crate::events::Sequenced;
use crate::ids::UserId;
use crate::secrets::{Secret, Secrets};
use crate::store::{Store, StoreError};
pub use brightrun_api::mirror::{
    MigrationReport, MigrationState, MigrationStep, MirrorState, MirrorStatus,
};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The change-log consumer name the mirror acknowledges under.
pub const CONSUMER: &str = "postgres_mirror";
/// The secret holding the database password (`BRIGHTRUN_SECRET_MIRROR_PASSWORD`).
pub const PASSWORD_SECRET: &str = "mirror_password";
/// The secret holding a whole connection URL, password included, instead of `[mirror] url`.
pub const URL_SECRET: &str = "mirror_url";

/// Changes read from the log per batch.
const BATCH_CHANGES: usize = 2000;
/// Records (or metrics points) per backfill chunk.
const CHUNK_RECORDS: usize = 2000;
const CHUNK_METRICS: usize = 50_000;
/// The most a statement batch may take before the connection counts as gone.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(300);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error(
        "the Postgres mirror is not configured: set `[mirror] url` in config.toml (password in secrets as `{PASSWORD_SECRET}`)"
    )]
    NotConfigured,
    #[error("the mirror's url is not valid: {0}")]
    BadUrl(String),
    #[error("PostgreSQL at {target}: {message}")]
    Postgres { target: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the mirror did not catch up within {secs} s ({behind} changes behind){}", reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Timeout {
        secs: u64,
        behind: u64,
        reason: Option<String>,
    },
    #[error("the engine is shutting down")]
    Stopped,
}

impl MirrorError {
    /// Whether the database (or the way to it) failed, rather than the request.
    pub fn is_unavailable(&self) -> bool {
        !matches!(self, Self::NotConfigured | Self::BadUrl(_))
    }
}

/// Where the mirror writes: the connection settings, with the password kept apart.
#[derive(Clone)]
pub struct Target {
    pg: tokio_postgres::Config,
    /// `user@host:port/db`, never the password.
    pub display: String,
    password: Option<Secret>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

impl Target {
    /// The target `[mirror] url` (or the `mirror_url` secret) names, with the password from
    /// the `mirror_password` secret; `None` when the mirror is off.
    pub fn from_config(
        config: &crate::config::Config,
        secrets: &crate::secrets::Secrets,
    ) -> Result<Option<Target>, MirrorError> {
        let (url, from_config) = match (secrets.get(URL_SECRET), config.mirror.url.as_deref()) {
            (Some(s), _) => (s.expose().to_string(), false),
            (None, Some(u)) if !u.trim().is_empty() => (u.trim().to_string(), true),
            _ => return Ok(None),
        };
        let target = Self::parse(&url, secrets.get(PASSWORD_SECRET).cloned())?;
        // Whatever form the driver found one in, config.toml holds no password (it is shown
        // by `config show` and read by anyone who can read the file).
        let embedded = tokio_postgres::Config::from_str(&url)
            .ok()
            .is_some_and(|c| c.get_password().is_some());
        if from_config && embedded {
            return Err(MirrorError::BadUrl(
                "`[mirror] url` holds a password; put it in secrets.toml as `mirror_password` \
                 (or BRIGHTRUN_SECRET_MIRROR_PASSWORD) instead"
                    .into(),
            ));
        }
        Ok(Some(target))
    }

    /// A target from a URL or key=value string; `password` (when given) wins over one in it.
    pub fn parse(url: &str, password: Option<Secret>) -> Result<Target, MirrorError> {
        let mut pg = tokio_postgres::Config::from_str(url).map_err(|e| {
            // The parser's message never holds the text itself.
            MirrorError::BadUrl(e.to_string())
        })?;
        let password = match password {
            Some(p) => Some(p),
            None => pg
                .get_password()
                .map(|p| Secret::new(String::from_utf8_lossy(p).into_owned())),
        };
        if let Some(p) = &password {
            pg.password(p.expose());
        }
        pg.connect_timeout(Duration::from_secs(5));
        pg.keepalives_idle(Duration::from_secs(30));
        pg.application_name("brightrun-mirror");
        let host = pg
            .get_hosts()
            .first()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(s) => s.clone(),
                tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .unwrap_or_else(|| "localhost".into());
        let port = pg.get_ports().first().copied().unwrap_or(5432);
        let display = format!(
            "{}@{host}:{port}/{}",
            pg.get_user().unwrap_or("postgres"),
            pg.get_dbname().unwrap_or("postgres")
        );
        Ok(Target {
            pg,
            display,
            password,
        })
    }

    /// Removes the password from a message, wherever a server or driver echoed it.
    pub fn scrub(&self, message: String) -> String {
        match &self.password {
            Some(p) if !p.expose().is_empty() => message.replace(p.expose(), "****"),
            _ => message,
        }
    }

    /// A mirror error for a driver error, with the server's own words when it sent some.
    pub fn error(&self, e: &tokio_postgres::Error) -> MirrorError {
        let message = match e.as_db_error() {
            Some(db) => match db.detail() {
                Some(d) => format!("{} ({}): {d}", db.message(), db.code().code()),
                None => format!("{} ({})", db.message(), db.code().code()),
            },
            None => {
                let mut m = e.to_string();
                let mut src = std::error::Error::source(e);
                while let Some(s) = src {
                    m.push_str(": ");
                    m.push_str(&s.to_string());
                    src = s.source();
                }
                m
            }
        };
        MirrorError::Postgres {
            target: self.display.clone(),
            message: self.scrub(message),
        }
    }

    /// A new connection; its driver task runs until the client is dropped.
    pub async fn connect(&self) -> Result<tokio_postgres::Client, MirrorError> {
        let (client, connection) = self
            .pg
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| self.error(&e))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("mirror connection ended: {e}");
            }
        });
        Ok(client)
    }
}

#[derive(Default)]
struct StatusInner {
    state: Option<MirrorState>,
    last_error: Option<String>,
    last_error_at: Option<Timestamp>,
    last_synced_at: Option<Timestamp>,
    backfilled_rows: u64,
}

/// The mirror's state shared between its task and the API.
pub struct Shared {
    status: std::sync::Mutex<StatusInner>,
    /// Wakes the task (a `sync` request, a retry now).
    wake: Notify,
    /// The last acknowledged seq.
    acked: watch::Sender<u64>,
    running: AtomicBool,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            status: Default::default(),
            wake: Notify::new(),
            acked: watch::channel(0).0,
            running: AtomicBool::new(false),
        }
    }
}

impl Shared {
    fn set(&self, f: impl FnOnce(&mut StatusInner)) {
        let mut s = self.status.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s);
    }
    fn fail(&self, state: MirrorState, e: &MirrorError) {
        let msg = e.to_string();
        self.set(|s| {
            s.state = Some(state);
            s.last_error = Some(msg);
            s.last_error_at = Some(now());
        });
    }
    fn acked(&self, seq: u64) {
        self.acked.send_if_modified(|v| {
            let changed = *v != seq;
            *v = seq;
            changed
        });
    }
}

/// What the mirror needs of its engine, and nothing more: the store it reads, the config and
/// secrets its target comes from, whose rows it writes (the profile's user), its shared state
/// and the engine's shutdown. The engine builds it ([`Engine::mirror_context`]).
#[derive(Clone)]
pub(crate) struct MirrorContext {
    pub store: Store,
    pub config: Config,
    pub secrets: Secrets,
    pub origin: UserId,
    pub shared: Arc<Shared>,
    pub shutdown: CancellationToken,
}

/// Runs the mirror until the engine shuts down. Started by the engine's tasks when
/// `[mirror] url` is set.
pub(crate) async fn run(ctx: MirrorContext) {
    let target = match Target::from_config(&ctx.config, &ctx.secrets) {
        Ok(Some(t)) => t,
        Ok(None) => return,
        Err(e) => {
            tracing::error!("mirror: {e}");
            ctx.shared.fail(MirrorState::Unreachable, &e);
            return;
        }
    };
    let shared = ctx.shared.clone();
    let shutdown = ctx.shutdown.clone();
    // A `mirror sync` that came first runs its own worker; take over when it is done.
    while shared.running.swap(true, Ordering::SeqCst) {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
    let mut m = Mirror::new(&ctx, target);
    tokio::select! {
        _ = m.run_forever() => {}
        _ = shutdown.cancelled() => {}
    }
    shared.running.store(false, Ordering::SeqCst);
}

/// One mirror worker: a connection (when it has one) and its position.
struct Mirror {
    store: Store,
    target: Target,
    shared: Arc<Shared>,
    origin: Uuid,
    client: Option<tokio_postgres::Client>,
    /// Where PostgreSQL is (its `brightrun_mirror_state`), once read on this connection.
    pos: Option<u64>,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, MirrorError> {
    crate::store::off_runtime(f)
        .await
        .map_err(|_| MirrorError::Stopped)?
        .map_err(MirrorError::from)
}

async fn timed<T>(
    target: &Target,
    f: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, MirrorError> {
    match tokio::time::timeout(STATEMENT_TIMEOUT, f).await {
        Ok(r) => r.map_err(|e| target.error(&e)),
        Err(_) => Err(MirrorError::Postgres {
            target: target.display.clone(),
            message: format!("no answer within {} s", STATEMENT_TIMEOUT.as_secs()),
        }),
    }
}

impl Mirror {
    fn new(ctx: &MirrorContext, target: Target) -> Self {
        Self {
            store: ctx.store.clone(),
            shared: ctx.shared.clone(),
            origin: ctx.origin.0,
            target,
            client: None,
            pos: None,
        }
    }

    async fn run_forever(&mut self) {
        let mut failures = 0u32;
        loop {
            match self.step().await {
                Ok(true) => failures = 0,
                Ok(false) => {
                    failures = 0;
                    self.idle().await;
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    // Down, restarting or refusing: the status bar says so, with the reason.
                    tracing::warn!("mirror: {e}");
                    self.shared.fail(MirrorState::Unreachable, &e);
                    // Whatever failed, start again from what PostgreSQL says it has.
                    self.client = None;
                    self.pos = None;
                    let backoff = Duration::from_millis(
                        (500u64 << failures.min(6)).min(MAX_BACKOFF.as_millis() as u64),
                    );
                    let jitter =
                        Duration::from_millis(u64::from(now().timestamp_subsec_millis() % 250));
                    tokio::select! {
                        _ = tokio::time::sleep(backoff + jitter) => {}
                        _ = self.shared.wake.notified() => {}
                    }
                }
            }
        }
    }

    /// Waits for something to push: a new change, a sync request, or a periodic look.
    async fn idle(&self) {
        let mut rx = self.store.subscribe_changes();
        // A change committed between the last read and the subscription is seen here.
        let store = self.store.clone();
        if blocking(move || store.last_seq()).await.unwrap_or(0) > self.pos.unwrap_or(0) {
            return;
        }
        tokio::select! {
            _ = rx.recv() => {}
            _ = self.shared.wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }

    /// Connects when needed, then pushes one batch. `Ok(true)`: it pushed something (look
    /// again at once); `Ok(false)`: nothing to push.
    async fn step(&mut self) -> Result<bool, MirrorError> {
        if self.client.is_none() {
            self.shared.set(|s| {
                if s.state.is_none() {
                    s.state = Some(MirrorState::Starting);
                }
            });
            let mut client = self.target.connect().await?;
            timed(&self.target, migrate(&mut client)).await?;
            timed(&self.target, client.batch_execute(rows::STAGE_SQL)).await?;
            let users: Vec<Uuid> = {
                let store = self.store.clone();
                let mut u = blocking(move || store.token_users()).await?;
                u.push(UserId(self.origin));
                u.into_iter().map(|u| u.0).collect()
            };
            timed(
                &self.target,
                client.execute(
                    "INSERT INTO auth.users (id) SELECT unnest($1::uuid[]) ON CONFLICT (id) DO NOTHING",
                    &[&users],
                ),
            )
            .await?;
            self.client = Some(client);
        }
        let last = {
            let store = self.store.clone();
            blocking(move || store.last_seq()).await?
        };
        let pos = match self.pos {
            Some(p) => p,
            None => {
                let p = self.read_position().await?;
                let bounds = {
                    let store = self.store.clone();
                    blocking(move || store.change_bounds()).await?
                };
                let p = match p {
                    // PostgreSQL is ahead of this store (restored from a backup, or another
                    // store with this profile): forget its seqs and copy everything again.
                    Some(p) if p > last => {
                        tracing::warn!(
                            "mirror: {} holds seq {p} of this engine but the store ends at {last}; backfilling again",
                            self.target.display
                        );
                        self.reset().await?;
                        self.backfill().await?
                    }
                    // The log no longer holds the next change (compacted): copy everything.
                    Some(p) if p < last && bounds.first > p + 1 => self.backfill().await?,
                    Some(p) => p,
                    None => self.backfill().await?,
                };
                self.pos = Some(p);
                self.ack(p).await?;
                p
            }
        };
        if pos >= last {
            self.shared.set(|s| {
                s.state = Some(MirrorState::InSync);
                s.last_synced_at = Some(now());
                s.last_error = None;
            });
            return Ok(false);
        }
        self.shared.set(|s| s.state = Some(MirrorState::Behind));
        let changes = {
            let store = self.store.clone();
            blocking(move || store.changes_after(pos, BATCH_CHANGES)).await?
        };
        if changes.is_empty() {
            return Ok(false);
        }
        if changes[0].seq > pos + 1 {
            // Compacted under us: start over with a backfill.
            self.pos = None;
            let p = self.backfill().await?;
            self.pos = Some(p);
            self.ack(p).await?;
            return Ok(true);
        }
        let next = self.apply(&changes).await?;
        self.pos = Some(next);
        self.ack(next).await?;
        Ok(true)
    }

    /// Applies a run of consecutive changes in one transaction, with the new position.
    async fn apply(&mut self, changes: &[Arc<Sequenced>]) -> Result<u64, MirrorError> {
        let mut batch = rows::Batch::default();
        for c in changes {
            batch.add(c);
        }
        self.attach_evaluations(&mut batch).await?;
        let last = batch.last_seq;
        let origin = self.origin;
        let target = self.target.clone();
        let client = self.client.as_mut().ok_or(MirrorError::Stopped)?;
        timed(&target, async {
            let tx = client.transaction().await?;
            batch.write(&tx, origin).await?;
            tx.execute(
                "INSERT INTO public.brightrun_mirror_state (origin, seq, backfilled_at) VALUES ($1, $2, now()) \
                 ON CONFLICT (origin) DO UPDATE SET seq = excluded.seq, updated_at = now()",
                &[&origin, &(last as i64)],
            )
            .await?;
            tx.commit().await
        })
        .await?;
        Ok(last)
    }

    /// Records in redb that PostgreSQL has everything up to `seq` (after it committed).
    async fn ack(&self, seq: u64) -> Result<(), MirrorError> {
        let store = self.store.clone();
        blocking(move || store.ack_changes(CONSUMER, seq)).await?;
        self.shared.acked(seq);
        Ok(())
    }

    async fn read_position(&mut self) -> Result<Option<u64>, MirrorError> {
        let origin = self.origin;
        let client = self.client.as_ref().ok_or(MirrorError::Stopped)?;
        let row = timed(
            &self.target,
            client.query_opt(
                "SELECT seq FROM public.brightrun_mirror_state WHERE origin = $1",
                &[&origin],
            ),
        )
        .await?;
        Ok(row.map(|r| r.get::<_, i64>(0).max(0) as u64))
    }

    /// Forgets the seqs of this engine's rows, so a backfill from an older store applies.
    async fn reset(&mut self) -> Result<(), MirrorError> {
        let origin = self.origin;
        let client = self.client.as_mut().ok_or(MirrorError::Stopped)?;
        timed(&self.target, async {
            let tx = client.transaction().await?;
            for t in verify::TABLES {
                tx.execute(
                    &format!(
                        "UPDATE public.{t} SET brightrun_seq = NULL WHERE brightrun_origin = $1"
                    ),
                    &[&origin],
                )
                .await?;
            }
            tx.execute(
                "DELETE FROM public.brightrun_mirror_state WHERE origin = $1",
                &[&origin],
            )
            .await?;
            tx.commit().await
        })
        .await
    }

    /// Copies every record, table by table in chunks, each chunk with the seq it was read
    /// at; then records the position (the log's last seq before the copy began), from which
    /// following the log resumes. Returns that position.
    async fn backfill(&mut self) -> Result<u64, MirrorError> {
        use crate::domain::*;
        let start = {
            let store = self.store.clone();
            blocking(move || store.last_seq()).await?
        };
        // Hold the log from `start` on while copying (compaction stays behind a consumer).
        let store = self.store.clone();
        blocking(move || match store.acked_changes(CONSUMER)? {
            Some(a) if a <= start => Ok(()),
            _ => store.ack_changes(CONSUMER, start),
        })
        .await?;
        tracing::info!(
            "mirror: backfilling {} from seq {start}",
            self.target.display
        );
        self.shared.set(|s| {
            s.state = Some(MirrorState::Backfilling);
            s.backfilled_rows = 0;
        });
        self.copy_table::<Dataset>(|b, r, s| {
            b.users.insert(r.user_id.0);
            b.datasets.insert(r.id.0, (s, Arc::new(r)));
        })
        .await?;
        self.copy_table::<TrainingJob>(|b, r, s| {
            b.users.insert(r.user_id.0);
            b.jobs.insert(r.id.0, (s, Arc::new(r)));
        })
        .await?;
        self.copy_table::<ModelArtifact>(|b, r, s| {
            b.users.insert(r.user_id.0);
            b.artifacts.insert(r.id.0, (s, Arc::new(r)));
        })
        .await?;
        self.copy_table::<Checkpoint>(|b, r, s| {
            b.checkpoints.insert(r.id.0, (s, Arc::new(r)));
        })
        .await?;
        self.copy_table::<CostRecord>(|b, r, s| {
            b.users.insert(r.user_id.0);
            b.costs.insert(r.id.0, (s, Arc::new(r)));
        })
        .await?;
        self.copy_table::<Notification>(|b, r, s| {
            b.users.insert(r.user_id.0);
            b.notifications.insert(r.id.0, (s, Arc::new(r)));
        })
        .await?;
        self.copy_sweeps().await?;
        self.copy_metrics().await?;
        let origin = self.origin;
        let client = self.client.as_ref().ok_or(MirrorError::Stopped)?;
        timed(
            &self.target,
            client.execute(
                "INSERT INTO public.brightrun_mirror_state (origin, seq, backfilled_at) VALUES ($1, $2, now()) \
                 ON CONFLICT (origin) DO UPDATE SET seq = excluded.seq, backfilled_at = now(), updated_at = now()",
                &[&origin, &(start as i64)],
            ),
        )
        .await?;
        tracing::info!("mirror: backfill done");
        Ok(start)
    }

    /// Copies every sweep (a handful: one batch), read at one seq.
    async fn copy_sweeps(&mut self) -> Result<(), MirrorError> {
        let store = self.store.clone();
        let (seq, sweeps) = blocking(move || {
            let seq = store.last_seq()?;
            Ok((seq, store.sweeps(None)?))
        })
        .await?;
        if sweeps.is_empty() {
            return Ok(());
        }
        let mut b = rows::Batch::default();
        for s in sweeps {
            b.users.insert(s.user_id.0);
            b.sweeps.insert(s.id.0, (seq, Arc::new(s)));
        }
        self.write_chunk(b).await
    }

    async fn copy_table<R: crate::store::Record>(
        &mut self,
        put: impl Fn(&mut rows::Batch, R, u64),
    ) -> Result<(), MirrorError> {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let chunk = {
                let store = self.store.clone();
                let a = after.clone();
                blocking(move || store.scan::<R>(a.as_deref(), CHUNK_RECORDS)).await?
            };
            let n = chunk.items.len() as u64;
            let mut batch = rows::Batch::default();
            for r in chunk.items {
                put(&mut batch, r, chunk.seq);
            }
            self.write_chunk(batch).await?;
            self.shared.set(|s| s.backfilled_rows += n);
            match chunk.next {
                Some(k) => after = Some(k),
                None => return Ok(()),
            }
        }
    }

    async fn copy_metrics(&mut self) -> Result<(), MirrorError> {
        let mut after: Option<Vec<u8>> = None;
        loop {
            let chunk = {
                let store = self.store.clone();
                let a = after.clone();
                blocking(move || store.scan_metrics(a.as_deref(), CHUNK_METRICS)).await?
            };
            let n = chunk.items.len() as u64;
            let points = Arc::new(chunk.items);
            let mut batch = rows::Batch::default();
            for (i, p) in points.iter().enumerate() {
                batch
                    .metrics
                    .insert((p.job_id, p.step), (chunk.seq, points.clone(), i));
            }
            self.write_chunk(batch).await?;
            self.shared.set(|s| s.backfilled_rows += n);
            match chunk.next {
                Some(k) => after = Some(k),
                None => return Ok(()),
            }
        }
    }

    /// The evaluations of the batch's models (their rows' `quality_metrics` carry them) and
    /// the comparisons of its completed evaluation jobs (their rows' `brightrun_comparison`).
    async fn attach_evaluations(&self, batch: &mut rows::Batch) -> Result<(), MirrorError> {
        let ids: Vec<crate::ids::ArtifactId> = batch
            .artifacts
            .keys()
            .map(|id| crate::ids::ArtifactId(*id))
            .collect();
        let jobs: Vec<crate::ids::JobId> = batch
            .jobs
            .values()
            .filter(|(_, j)| {
                j.task.is_evaluation() && j.status == crate::domain::JobStatus::Completed
            })
            .map(|(_, j)| j.id)
            .collect();
        if ids.is_empty() && jobs.is_empty() {
            return Ok(());
        }
        let store = self.store.clone();
        let (evaluations, comparisons) = blocking(move || {
            let mut evaluations = Vec::new();
            for id in ids {
                if let Some(e) = store.evaluation(id)? {
                    evaluations.push((id.0, e));
                }
            }
            let mut comparisons = Vec::new();
            for id in jobs {
                if let Some(c) = store.comparison(id)? {
                    comparisons.push((id.0, c));
                }
            }
            Ok((evaluations, comparisons))
        })
        .await?;
        batch.evaluations.extend(evaluations);
        batch.comparisons.extend(comparisons);
        Ok(())
    }

    async fn write_chunk(&mut self, mut batch: rows::Batch) -> Result<(), MirrorError> {
        self.attach_evaluations(&mut batch).await?;
        let origin = self.origin;
        let target = self.target.clone();
        let client = self.client.as_mut().ok_or(MirrorError::Stopped)?;
        timed(&target, async {
            let tx = client.transaction().await?;
            batch.write(&tx, origin).await?;
            tx.commit().await
        })
        .await
    }
}

impl Engine {
    /// The mirror's context: what it needs of this engine.
    pub(crate) fn mirror_context(&self) -> MirrorContext {
        MirrorContext {
            store: self.store().clone(),
            config: self.config().clone(),
            secrets: self.secrets().clone(),
            origin: self.profile_user(),
            shared: self.inner.mirror.clone(),
            shutdown: self.inner.shutdown.clone(),
        }
    }

    /// Whether `[mirror] url` (or the `mirror_url` secret) is set.
    pub fn mirror_configured(&self) -> bool {
        self.config()
            .mirror
            .url
            .as_deref()
            .is_some_and(|u| !u.trim().is_empty())
            || self.secrets().get(URL_SECRET).is_some()
    }

    /// The mirror's state, lag and last error.
    pub fn mirror_status(&self) -> Result<MirrorStatus, crate::EngineError> {
        let target = Target::from_config(self.config(), self.secrets());
        let shared = &self.inner.mirror;
        let last_seq = self.store().last_seq()?;
        let acked = self
            .store()
            .acked_changes(CONSUMER)?
            .unwrap_or(0)
            .max(*shared.acked.borrow());
        let running = shared.running.load(Ordering::SeqCst);
        let s = shared.status.lock().unwrap_or_else(|p| p.into_inner());
        let (state, target) = match target {
            Ok(None) => (MirrorState::Disabled, None),
            Ok(Some(t)) => {
                let state = match s.state {
                    Some(MirrorState::InSync) if acked < last_seq => MirrorState::Behind,
                    Some(st) => st,
                    // No task here (a one-shot command): what redb acknowledged says it.
                    None if !running && acked >= last_seq => MirrorState::InSync,
                    None if !running => MirrorState::Behind,
                    None => MirrorState::Starting,
                };
                (state, Some(t.display))
            }
            Err(e) => (MirrorState::Unreachable, Some(e.to_string())),
        };
        Ok(MirrorStatus {
            state,
            target,
            running,
            acked_seq: acked,
            last_seq,
            behind: last_seq.saturating_sub(acked),
            last_error: s.last_error.clone(),
            last_error_at: s.last_error_at,
            last_synced_at: s.last_synced_at,
            backfilled_rows: s.backfilled_rows,
        })
    }

    /// Pushes now and returns once PostgreSQL holds every change committed before the call
    /// (or `timeout` passes). In a process whose engine runs no mirror task (a one-shot CLI
    /// command), the mirror runs here until caught up.
    pub async fn mirror_sync(&self, timeout: Duration) -> Result<MirrorStatus, crate::EngineError> {
        let target = Target::from_config(self.config(), self.secrets())
            .map_err(crate::EngineError::from)?
            .ok_or(MirrorError::NotConfigured)?;
        // "In sync" is PostgreSQL's word, never a guess from nothing being left to push:
        // the database is reached (and the login accepted) first.
        let reach = tokio::time::timeout(timeout, target.connect())
            .await
            .map_err(|_| MirrorError::Postgres {
                target: target.display.clone(),
                message: format!("no answer within {} s", timeout.as_secs()),
            })?;
        drop(reach?);
        let shared = self.inner.mirror.clone();
        let store = self.store().clone();
        let want = blocking(move || store.last_seq()).await?;
        let mut acked = shared.acked.subscribe();
        let own = !shared.running.swap(true, Ordering::SeqCst);
        let worker = own.then(|| {
            let mut m = Mirror::new(&self.mirror_context(), target);
            let shared = shared.clone();
            tokio::spawn(async move {
                m.run_forever().await;
                shared.running.store(false, Ordering::SeqCst);
            })
        });
        shared.wake.notify_one();
        let reached = tokio::time::timeout(timeout, async {
            loop {
                if *acked.borrow_and_update() >= want {
                    return true;
                }
                if acked.changed().await.is_err() {
                    return false;
                }
            }
        })
        .await
        .unwrap_or(false);
        if let Some(w) = worker {
            w.abort();
            let _ = w.await;
            shared.running.store(false, Ordering::SeqCst);
        }
        let engine = self.clone();
        let status = crate::store::off_runtime(move || engine.mirror_status())
            .await
            .map_err(|_| MirrorError::Stopped)??;
        if reached || status.acked_seq >= want {
            Ok(status)
        } else {
            Err(MirrorError::Timeout {
                secs: timeout.as_secs(),
                behind: want.saturating_sub(status.acked_seq),
                reason: status.last_error.clone(),
            }
            .into())
        }
    }

    /// `mirror migrate`: applies the schema migrations the database lacks (or, in a dry run,
    /// lists them with their SQL), with the same lock and records as the mirror's start.
    pub async fn mirror_migrate(
        &self,
        dry_run: bool,
    ) -> Result<crate::mirror::MigrationReport, crate::EngineError> {
        let target = Target::from_config(self.config(), self.secrets())
            .map_err(crate::EngineError::from)?
            .ok_or(MirrorError::NotConfigured)?;
        let mut client = target.connect().await?;
        let migrations = if dry_run {
            timed(&target, migrate::plan(&client)).await?
        } else {
            timed(&target, migrate::apply(&mut client)).await?
        };
        Ok(crate::mirror::MigrationReport {
            target: target.display.clone(),
            dry_run,
            migrations,
        })
    }

    /// Compares every table here with its PostgreSQL copy (rows of this engine only): row
    /// counts and a checksum of (id, updated_at / content hash), listing the differences.
    pub async fn mirror_verify(&self) -> Result<VerifyReport, crate::EngineError> {
        let target = Target::from_config(self.config(), self.secrets())
            .map_err(crate::EngineError::from)?
            .ok_or(MirrorError::NotConfigured)?;
        Ok(verify::verify(&self.mirror_context(), &target).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::url_has_password;

    #[test]
    fn passwords_are_spotted_kept_apart_and_scrubbed() {
        assert!(url_has_password("postgres://u:pw@h:5432/db"));
        assert!(url_has_password("postgresql://u:pw@h/db?sslmode=disable"));
        assert!(url_has_password("host=h user=u password=pw dbname=db"));
        assert!(!url_has_password("postgres://u@h:5432/db"));
        assert!(!url_has_password("postgres://h/db"));
        assert!(!url_has_password("host=h user=u dbname=db"));
        // The forms a probe slipped through: a query parameter, after another one, encoded,
        // and key/value with spaces around `=`.
        for url in [
            "postgres://u@h/lora?password=PW",
            "postgres://u@h/lora?sslmode=disable&password=PW",
            "postgres://u@h/lora?pass%77ord=PW",
            "host=h user=u password = PW dbname=db",
            "host=h user=u password= PW",
            "password =PW host=h",
        ] {
            assert!(url_has_password(url), "{url}");
            assert!(
                tokio_postgres::Config::from_str(url).is_ok_and(|c| c.get_password().is_some())
                    || url.contains("%77"),
                "the driver would not find one in {url}"
            );
        }
        assert!(!url_has_password("host=h user=password_owner dbname=db"));
        assert!(!url_has_password(
            "postgres://u@h/passwords?sslmode=disable"
        ));

        let t = Target::parse(
            "postgres://brightrun@db.example.com:6543/lora",
            Some(Secret::new("s3cret-password")),
        )
        .unwrap();
        assert_eq!(t.display, "brightrun@db.example.com:6543/lora");
        assert!(!format!("{t:?}").contains("s3cret"));
        assert_eq!(
            t.scrub("auth failed for s3cret-password".into()),
            "auth failed for ****"
        );
        // A URL secret with its own password: shown without it.
        let t = Target::parse("postgres://u:inline-pw@h/db", None).unwrap();
        assert_eq!(t.display, "u@h:5432/db");
        assert_eq!(t.scrub("x inline-pw y".into()), "x **** y");
        assert!(matches!(
            Target::parse("postgres://h:notaport/db", None),
            Err(MirrorError::BadUrl(_))
        ));
    }

    #[test]
    fn links_become_the_seeds_pages() {
        use crate::domain::Link;
        use crate::ids::*;
        let j = JobId::new();
        assert_eq!(
            action_url(&Some(Link::Job(j))),
            Some(format!("/training/jobs/{j}"))
        );
        assert_eq!(action_url(&Some(Link::Costs)), Some("/costs".into()));
        assert_eq!(action_url(&None), None);
        // Metrics rows have one id per (job, step), whoever computes it.
        assert_eq!(metric_row_id(j, 7), metric_row_id(j, 7));
        assert_ne!(metric_row_id(j, 7), metric_row_id(j, 8));
    }
}
