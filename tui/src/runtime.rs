//! The runtime: owns the terminal, turns terminal events into actions, feeds engine events to
//! the app, executes effects against the engine in spawned tasks, and draws when something
//! changed (at most one frame per 16 ms) or on the slow tick. The terminal is restored on
//! every exit path, panics included.

use crate::action::{Action, Period};
use crate::app::App;
use crate::effect::*;
use crate::state::Snapshot;
use crate::theme::Theme;
use anyhow::Context;
use brightrun_api::config::{Config, TuiConfig};
use brightrun_api::domain::*;
use brightrun_api::events::EngineEvent;
use brightrun_api::{
    Api, ApiError, Connection, EngineApi, ErrorCode, JobSpec, Paging, RetryOptions,
};
use crossterm::event::{
    DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture, Event,
    EventStream, KeyEventKind, MouseButton, MouseEventKind,
};
use crossterm::terminal::{
    BeginSynchronizedUpdate, EndSynchronizedUpdate, EnterAlternateScreen, LeaveAlternateScreen,
    disable_raw_mode, enable_raw_mode,
};
use futures::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use std::io::{Stdout, Write, stdout};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Options from the command line.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// A built-in theme name, `themes/NAME.toml`, or a path; overrides `[tui] theme`.
    pub theme: Option<String>,
}

/// The shortest time between two frames: bursts of events make one frame, not hundreds.
const MIN_FRAME: Duration = Duration::from_millis(16);
/// Engine events applied per loop turn before drawing (the rest follow next turn).
const EVENT_BATCH: usize = 2048;
/// Notifications loaded at start (newest first).
const NOTIFICATIONS: usize = 2000;
/// Log lines loaded when the monitor opens a job.
const LOG_TAIL: usize = 1000;

static RESTORED: AtomicBool = AtomicBool::new(true);
/// Set by the panic hook: the terminal is already restored, so the loop must end too (a
/// panic in a spawned task would otherwise leave the app running in a cooked terminal).
static PANICKED: AtomicBool = AtomicBool::new(false);

type PanicHook = Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send + 'static>;

/// Puts the terminal back: raw mode off, main screen, mouse and paste off, cursor on. Safe
/// to call more than once (the panic hook and the guard both may).
fn restore_terminal() {
    if RESTORED.swap(true, Ordering::SeqCst) {
        return;
    }
    let _ = disable_raw_mode();
    let mut out = stdout();
    let _ = crossterm::execute!(
        out,
        EndSynchronizedUpdate,
        DisableBracketedPaste,
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    let _ = out.flush();
}

/// Owns the terminal while the app runs; dropping it restores the terminal.
struct TerminalGuard {
    terminal: Terminal<CrosstermBackend<Stdout>>,
    previous_hook: Option<Arc<PanicHook>>,
}

impl TerminalGuard {
    fn enter() -> anyhow::Result<Self> {
        // The panic hook restores the terminal before the message is printed, so the message
        // is readable and the shell is usable.
        let previous: Arc<PanicHook> = Arc::new(std::panic::take_hook());
        let chained = previous.clone();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            PANICKED.store(true, Ordering::SeqCst);
            chained(info);
        }));
        enable_raw_mode()
            .context("cannot switch the terminal to raw mode (is this a terminal?)")?;
        RESTORED.store(false, Ordering::SeqCst);
        let mut out = stdout();
        crossterm::execute!(
            out,
            EnterAlternateScreen,
            EnableMouseCapture,
            EnableBracketedPaste,
            crossterm::cursor::Hide
        )
        .inspect_err(|_| restore_terminal())?;
        let terminal =
            Terminal::new(CrosstermBackend::new(stdout())).inspect_err(|_| restore_terminal())?;
        Ok(TerminalGuard {
            terminal,
            previous_hook: Some(previous),
        })
    }

    /// Draws one frame inside a synchronized update, so the terminal never shows half of it.
    fn draw(&mut self, app: &mut App) -> anyhow::Result<()> {
        crossterm::queue!(self.terminal.backend_mut(), BeginSynchronizedUpdate)?;
        self.terminal.draw(|f| app.draw(f))?;
        crossterm::execute!(self.terminal.backend_mut(), EndSynchronizedUpdate)?;
        Ok(())
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
        // Put the caller's panic hook back.
        if let Some(prev) = self.previous_hook.take() {
            let _ = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| prev(info)));
        }
    }
}

/// What the engine feeds reach the loop with.
enum Feed {
    Event(EngineEvent),
    /// The connection to the engine dropped; the feed retries.
    Lost(String),
    /// It is back, resumed from the last seq seen.
    Back,
    /// The Postgres mirror's status (polled every 2 s while it is on).
    Mirror(brightrun_api::mirror::MirrorStatus),
}

/// Follows the change log from `after` and the live events, reconnecting after a drop and
/// resuming from the last seq, so the view misses nothing and applies nothing twice.
fn spawn_feeds(api: Arc<dyn EngineApi>, mut after: u64, tx: mpsc::Sender<Feed>) {
    let live_api = api.clone();
    let live_tx = tx.clone();
    let (mirror_api, mirror_tx) = (api.clone(), tx.clone());
    tokio::spawn(async move {
        use brightrun_api::Api;
        loop {
            match mirror_api.mirror_status().await {
                Ok(s) => {
                    let off = s.state == brightrun_api::mirror::MirrorState::Disabled;
                    if mirror_tx.send(Feed::Mirror(s)).await.is_err() || off {
                        return;
                    }
                }
                // An older daemon without the request, or no engine: nothing to show.
                Err(e) if e.code != ErrorCode::Unavailable => return,
                Err(_) => {}
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
    tokio::spawn(async move {
        let mut lost = false;
        loop {
            match api.changes(after).await {
                Ok(mut changes) => {
                    if lost && tx.send(Feed::Back).await.is_err() {
                        return;
                    }
                    lost = false;
                    while let Some(c) = changes.next().await {
                        match c {
                            Ok(c) => {
                                after = c.seq;
                                let event = c.event.clone();
                                if tx.send(Feed::Event(event)).await.is_err() {
                                    return;
                                }
                            }
                            Err(e) => {
                                lost = true;
                                if tx.send(Feed::Lost(e.message)).await.is_err() {
                                    return;
                                }
                                break;
                            }
                        }
                    }
                }
                Err(e) if e.code == ErrorCode::Unavailable => {
                    if !lost && tx.send(Feed::Lost(e.message)).await.is_err() {
                        return;
                    }
                    lost = true;
                }
                Err(e) => {
                    let _ = tx.send(Feed::Lost(e.message)).await;
                    return;
                }
            }
            if tx.is_closed() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    tokio::spawn(async move {
        loop {
            if let Ok(mut live) = live_api.live().await {
                while let Some(e) = live.next().await {
                    // Live events may be dropped when the loop is busy.
                    if let Err(mpsc::error::TrySendError::Closed(_)) =
                        live_tx.try_send(Feed::Event(e))
                    {
                        return;
                    }
                }
            }
            if live_tx.is_closed() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
}

/// Runs the dashboard until the user quits. `tui` is this client's own `[tui]` settings
/// (theme, keys, tick); everything else (presets, GPUs, backends) comes from the engine's
/// catalog, so a dashboard attached to a daemon shows what the daemon will do.
pub async fn run(
    api: Arc<dyn EngineApi>,
    tui: TuiConfig,
    options: RunOptions,
) -> anyhow::Result<()> {
    let snap = snapshot(api.as_ref())
        .await
        .context("loading the dashboard's data")?;
    let (feed_tx, mut events) = mpsc::channel::<Feed>(8192);
    spawn_feeds(api.clone(), snap.seq, feed_tx);
    let mut config = Config {
        tui,
        ..Config::default()
    };
    if let Some(t) = &options.theme {
        config.tui.theme = t.clone();
    }
    let mut app = App::new(snap, &config);
    // Resolve a theme file before the first frame, so the screen does not flash.
    if !config.tui.theme.is_empty() && !Theme::is_builtin(&config.tui.theme) {
        let name = config.tui.theme.clone();
        match tokio::task::spawn_blocking(move || Theme::load(&name)).await? {
            Ok(t) => app.set_theme(t),
            Err(e) => app.notify_user(e.to_string(), Level::Error),
        }
    }

    let mut guard = TerminalGuard::enter()?;
    let (tx, mut outcomes) = mpsc::unbounded_channel::<Outcome>();
    let exec = Executor {
        api: api.clone(),
        tx,
        tasks: tokio_util::task::TaskTracker::new(),
        chats: Default::default(),
    };
    let mut input = EventStream::new();
    let tick_every = Duration::from_millis(app.settings.tick_millis);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + tick_every, tick_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut events_open = true;
    let mut last_draw = Instant::now() - MIN_FRAME;
    app.tick(now());
    guard.draw(&mut app)?;
    last_draw = last_draw.max(Instant::now());

    #[cfg(unix)]
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    #[cfg(unix)]
    let mut sighup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;

    let result: anyhow::Result<()> = async {
        loop {
            let redraw_at = tokio::time::Instant::from_std(last_draw + MIN_FRAME);
            let pending = app.needs_redraw();
            let mut fx: Vec<Effect> = Vec::new();
            #[cfg(unix)]
            let signal = async {
                tokio::select! {
                    _ = sigterm.recv() => {},
                    _ = sighup.recv() => {},
                }
            };
            #[cfg(not(unix))]
            let signal = std::future::pending::<()>();
            tokio::select! {
                ev = input.next() => match ev {
                    Some(Ok(ev)) => fx.extend(terminal_event(&mut app, ev)),
                    Some(Err(e)) => return Err(anyhow::Error::new(e).context("reading the terminal")),
                    None => return Ok(()),
                },
                ev = events.recv(), if events_open => match ev {
                    Some(f) => fx.extend(apply_feed(&mut app, f)),
                    None => {
                        events_open = false;
                        app.notify_user("the engine stopped publishing events; the view no longer updates", Level::Error);
                    }
                },
                Some(o) = outcomes.recv() => fx.extend(app.apply_outcome(o)),
                _ = tick.tick() => fx.extend(app.tick(now())),
                _ = tokio::time::sleep_until(redraw_at), if pending => {},
                _ = signal => return Ok(()),
            }
            // Drain what else is queued, so a burst costs one frame.
            if events_open {
                for _ in 0..EVENT_BATCH {
                    match events.try_recv() {
                        Ok(f) => fx.extend(apply_feed(&mut app, f)),
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => {
                            events_open = false;
                            break;
                        }
                    }
                }
            }
            while let Ok(o) = outcomes.try_recv() {
                fx.extend(app.apply_outcome(o));
            }
            for effect in fx {
                if effect == Effect::Quit {
                    return Ok(());
                }
                exec.run(effect);
            }
            if app.should_quit() {
                return Ok(());
            }
            if PANICKED.load(Ordering::SeqCst) {
                anyhow::bail!("a background task panicked (the message is above and in the log)");
            }
            if app.needs_redraw() && last_draw.elapsed() >= MIN_FRAME {
                guard.draw(&mut app)?;
                last_draw = Instant::now();
            }
        }
    }
    .await;
    drop(guard);
    exec.drain().await;
    result
}

fn apply_feed(app: &mut App, f: Feed) -> Vec<Effect> {
    match f {
        Feed::Event(ev) => {
            tracing::trace!(event = event_kind(&ev), "engine event");
            app.apply_event(ev)
        }
        Feed::Lost(why) => {
            tracing::warn!("lost the engine: {why}");
            app.set_reconnecting(true);
            Vec::new()
        }
        Feed::Back => {
            app.set_reconnecting(false);
            app.notify_user("reconnected to the engine", Level::Success);
            Vec::new()
        }
        Feed::Mirror(status) => {
            app.set_mirror(status);
            Vec::new()
        }
    }
}

/// Turns a terminal event into actions.
fn terminal_event(app: &mut App, ev: Event) -> Vec<Effect> {
    match ev {
        Event::Key(k) if k.kind != KeyEventKind::Release => app.handle_key(k),
        Event::Mouse(m) => match m.kind {
            MouseEventKind::Down(MouseButton::Left) => app.handle(Action::Click {
                column: m.column,
                row: m.row,
            }),
            MouseEventKind::ScrollUp => app.handle(Action::Scroll {
                column: m.column,
                row: m.row,
                delta: -1,
            }),
            MouseEventKind::ScrollDown => app.handle(Action::Scroll {
                column: m.column,
                row: m.row,
                delta: 1,
            }),
            _ => Vec::new(),
        },
        Event::Paste(s) => app.handle(Action::Paste(s)),
        Event::Resize(_, _) => app.handle(Action::Resize),
        Event::FocusGained => {
            app.mark_dirty();
            Vec::new()
        }
        _ => Vec::new(),
    }
}

fn event_kind(ev: &brightrun_api::events::EngineEvent) -> &'static str {
    use brightrun_api::events::EngineEvent as E;
    match ev {
        E::Dataset(_) => "dataset",
        E::Job(_) => "job",
        E::Metrics { .. } => "metrics",
        E::Artifact(_) => "artifact",
        E::Cost(_) => "cost",
        E::Notification(_) => "notification",
        E::Checkpoint(_) => "checkpoint",
        E::JobLog { .. } => "job_log",
        E::Progress(_) => "progress",
        E::BackendHealth { .. } => "backend_health",
        E::Sweep(_) => "sweep",
    }
}

fn now() -> Timestamp {
    brightrun_api::domain::now()
}

/// Everything the dashboard starts from, with the change log's seq it was read at (the
/// feeds resume after it; a change read twice is applied twice, harmlessly: records are whole).
pub async fn snapshot(api: &dyn EngineApi) -> Result<Snapshot, ApiError> {
    let info = api.hello().await?;
    let catalog = api.catalog().await?;
    let datasets = api.datasets(None, None, Paging::ALL).await?.items;
    let jobs = api.jobs(None, Paging::ALL).await?.items;
    // An engine from before sweeps has none to list: the jobs show ungrouped.
    let sweeps = api.list_sweeps().await.unwrap_or_else(|e| {
        tracing::warn!("sweeps not listed: {e}");
        Vec::new()
    });
    let artifacts = api.models(Paging::ALL).await?.items;
    let notifications = api
        .notifications(
            false,
            Paging {
                offset: 0,
                limit: NOTIFICATIONS,
            },
        )
        .await?
        .items;
    let costs = api
        .costs(brightrun_api::reports::Period::Month)
        .await
        .ok()
        .map(|r| costs_view(Period::Month, r.summary, r.month_spent));
    let connection = match api.connection() {
        Connection::Embedded => String::new(),
        Connection::Attached(a) => a,
    };
    Ok(Snapshot {
        datasets,
        jobs,
        sweeps,
        artifacts,
        notifications,
        costs,
        profile: catalog.profile.clone(),
        backends: catalog.backends.clone(),
        storage: catalog.storage.clone(),
        themes: Theme::available_names(),
        catalog: Some(catalog),
        connection,
        seq: info.last_seq,
    })
}

fn to_engine_period(p: Period) -> brightrun_api::reports::Period {
    match p {
        Period::Week => brightrun_api::reports::Period::Week,
        Period::Month => brightrun_api::reports::Period::Month,
        Period::Year => brightrun_api::reports::Period::Year,
    }
}

/// The engine's cost summary as the Costs tab shows it.
fn costs_view(
    period: Period,
    s: brightrun_api::reports::CostSummary,
    month_spent: Option<f64>,
) -> CostsView {
    let by_type = [CostType::Compute, CostType::Storage, CostType::DataTransfer]
        .into_iter()
        .map(|k| (k, s.by_type.get(k.as_str()).copied().unwrap_or(0.0)))
        .collect();
    let by_day: Vec<(String, f64)> = if period == Period::Year {
        // By month: a year of days does not fit a terminal.
        let mut months: Vec<(String, f64)> = Vec::new();
        for (d, v) in &s.by_day {
            let label = d.format("%b").to_string();
            let key = d.format("%Y-%m").to_string();
            match months.last_mut() {
                Some((k, acc)) if *k == key => *acc += v,
                _ => months.push((key, *v)),
            }
            let _ = label;
        }
        months
            .into_iter()
            .map(|(k, v)| {
                let label = chrono::NaiveDate::parse_from_str(&format!("{k}-01"), "%Y-%m-%d")
                    .map(|d| d.format("%b").to_string())
                    .unwrap_or(k);
                (label, v)
            })
            .collect()
    } else {
        s.by_day
            .iter()
            .map(|(d, v)| (d.format("%m-%d").to_string(), *v))
            .collect()
    };
    let today = now().date_naive();
    CostsView {
        period,
        label: format!("{} → {}", s.since.date_naive(), today),
        total: s.total + s.running,
        by_type,
        by_day,
        by_job: s
            .by_job
            .iter()
            .map(|j| {
                (
                    Some(j.job_id),
                    j.description.clone().unwrap_or_default(),
                    j.amount,
                )
            })
            .collect(),
        budget: s.budget.as_ref().map(|b| b.monthly_budget),
        month_spent: s
            .budget
            .as_ref()
            .map(|b| b.spent_this_month)
            .or(month_spent)
            .unwrap_or(0.0),
    }
}

fn estimate_view(e: &brightrun_api::training::Estimate) -> EstimateView {
    use brightrun_api::training::FitVerdict;
    // The verdict's words, never its machine name (`will_not_fit`).
    let word = e.fit.verdict.label();
    let level = match e.fit.verdict {
        FitVerdict::Fits => Level::Success,
        FitVerdict::Tight => Level::Warning,
        FitVerdict::WillNotFit => Level::Error,
    };
    let mut advice = e.fit.suggestions.clone();
    advice.extend(e.warnings.iter().cloned());
    EstimateView {
        estimated_cost: e.estimated_cost,
        compute_cost: e.cost_breakdown.compute,
        storage_cost: e.cost_breakdown.storage,
        estimated_duration_hours: e.estimated_duration_hours,
        hourly_rate: e.hourly_rate,
        total_steps: e.training_details.total_steps,
        steps_per_epoch: e.training_details.steps_per_epoch,
        throughput_tokens_per_sec: e.training_details.estimated_throughput_tokens_per_sec,
        fit: format!(
            "{word}: {:.1} of {:.0} GB {} ({})",
            e.fit.required_gb,
            e.fit.available_gb,
            if e.cpu { "of memory" } else { "per GPU" },
            e.model.id
        ),
        fit_level: level,
        fit_advice: advice,
        budget: e.budget.as_ref().map(|b| {
            format!(
                "{} → {} of {} this month ({:.0}%)",
                crate::format::money(b.spent_this_month),
                crate::format::money(b.after_this_run),
                crate::format::money(b.monthly_budget),
                b.percent_after
            )
        }),
        over_budget: e.needs_budget_confirmation(),
        throughput_note: e.throughput.note.clone(),
        local: e.local,
    }
}

fn request(d: JobDraft) -> JobSpec {
    d.to_spec()
}

/// A retry from `from` on the job's own backend; `dry_run` only asks what it would queue.
fn retry_options(from: RetryFrom, dry_run: bool) -> RetryOptions {
    RetryOptions {
        from_scratch: from == RetryFrom::Scratch,
        checkpoint: match from {
            RetryFrom::Step(s) => Some(s),
            RetryFrom::Latest | RetryFrom::Scratch => None,
        },
        backend: None,
        dry_run,
    }
}

/// How long quitting waits for effects still in flight (a job being created, a rename).
const EFFECTS_GRACE: Duration = Duration::from_secs(3);

/// Runs effects against the engine API in spawned tasks; answers go back through `tx`.
struct Executor {
    api: Arc<dyn EngineApi>,
    tx: mpsc::UnboundedSender<Outcome>,
    /// Every effect's task, so quitting lets requests in flight finish (bounded) instead of
    /// cutting them off wherever they are.
    tasks: tokio_util::task::TaskTracker,
    /// The chat replies being followed, by request: stopping one aborts its task, which drops
    /// its stream (and so ends the generation on the engine's side).
    chats: Arc<std::sync::Mutex<std::collections::HashMap<u64, tokio::task::AbortHandle>>>,
}

impl Executor {
    /// Waits, at most [`EFFECTS_GRACE`], for the effects still running; what is left then
    /// (a long download) stops with the process, and can be resumed.
    async fn drain(&self) {
        // A reply being streamed is not worth waiting for: its stream is dropped, which
        // stops the generation.
        for (_, chat) in self.chats.lock().unwrap_or_else(|p| p.into_inner()).drain() {
            chat.abort();
        }
        self.tasks.close();
        if tokio::time::timeout(EFFECTS_GRACE, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "quit with {} request(s) still running after {}s",
                self.tasks.len(),
                EFFECTS_GRACE.as_secs()
            );
        }
    }

    fn run(&self, effect: Effect) {
        let engine = self.api.clone();
        let tx = self.tx.clone();
        let send = move |o: Outcome| {
            let _ = tx.send(o);
        };
        match effect {
            Effect::Quit => {}
            Effect::Reload => {
                self.tasks.spawn(async move {
                    match snapshot(engine.as_ref()).await {
                        Ok(s) => send(Outcome::Snapshot(Box::new(s))),
                        Err(e) => send(Outcome::Theme(Err(format!("reload failed: {e}")))),
                    }
                });
            }
            Effect::LoadTheme(name) => {
                self.tasks.spawn(async move {
                    let r = tokio::task::spawn_blocking(move || Theme::load(&name))
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|r| r.map_err(|e| e.to_string()));
                    send(Outcome::Theme(r));
                });
            }
            Effect::NativeFileDialog { request } => {
                self.tasks.spawn(async move {
                    let path = native_file_dialog().await;
                    send(Outcome::NativeFile { request, path });
                });
            }
            Effect::ListDir { request, dir } => {
                self.tasks.spawn(async move {
                    let entries = list_dir(&dir).await;
                    send(Outcome::DirListing {
                        request,
                        dir,
                        entries,
                    });
                });
            }
            Effect::AddDataset {
                request,
                path,
                name,
            } => {
                self.tasks.spawn(async move {
                    let label = format!(
                        "upload {}",
                        path.file_name()
                            .map(|f| crate::sanitize::one_line(&f.to_string_lossy()).into_owned())
                            .unwrap_or_default()
                    );
                    // A file whose name holds control characters can still be added from the
                    // dashboard (which has no `--name`): its name is the cleaned file stem.
                    let name = name.or_else(|| {
                        let stem = path.file_stem()?.to_string_lossy().into_owned();
                        stem.chars()
                            .any(char::is_control)
                            .then(|| crate::sanitize::one_line(&stem).trim().to_string())
                            .filter(|n| !n.is_empty())
                    });
                    let tx2 = send.clone();
                    let last = std::sync::Mutex::new(Instant::now() - Duration::from_secs(1));
                    let progress = move |done: u64, total: u64| {
                        // At most ~20 reports a second.
                        let mut l = last.lock().unwrap_or_else(|p| p.into_inner());
                        if l.elapsed() >= Duration::from_millis(50) || done >= total {
                            *l = Instant::now();
                            tx2(Outcome::Progress {
                                task: TaskKey::Upload(request),
                                label: label.clone(),
                                done,
                                total,
                            });
                        }
                    };
                    let result = engine.add_dataset_file(&path, name, None, &progress).await;
                    send(Outcome::DatasetAdded { request, result });
                });
            }
            Effect::ValidateDataset(id) => {
                self.tasks.spawn(async move {
                    let result = engine.validate_dataset(&id.to_string()).await;
                    send(Outcome::DatasetChanged {
                        what: "validated",
                        result,
                    });
                });
            }
            Effect::RenameDataset(id, name) => {
                self.tasks.spawn(async move {
                    let result = engine
                        .update_dataset(&id.to_string(), Some(name), None)
                        .await;
                    send(Outcome::DatasetChanged {
                        what: "renamed",
                        result,
                    });
                });
            }
            Effect::DescribeDataset(id, text) => {
                self.tasks.spawn(async move {
                    let result = engine
                        .update_dataset(&id.to_string(), None, Some(text))
                        .await;
                    send(Outcome::DatasetChanged {
                        what: "described",
                        result,
                    });
                });
            }
            Effect::DeleteDataset(id) => {
                self.tasks.spawn(async move {
                    let result = engine.delete_dataset(&id.to_string(), false).await;
                    send(Outcome::DatasetChanged {
                        what: "deleted",
                        result,
                    });
                });
            }
            Effect::CleanDataset(id) => {
                self.tasks.spawn(async move {
                    let result = engine
                        .clean_dataset(&id.to_string(), true, None)
                        .await
                        .map(|c| c.dataset);
                    send(Outcome::DatasetChanged {
                        what: "cleaned",
                        result,
                    });
                });
            }
            Effect::LoadJobDetail(job_id) => {
                self.tasks.spawn(async move {
                    let id = job_id.to_string();
                    let metrics = engine.metrics(&id, 0, None).await;
                    let log = engine.job_logs(&id, LOG_TAIL).await;
                    let checkpoints = engine.job_checkpoints(&id).await;
                    send(Outcome::JobDetail {
                        job_id,
                        metrics,
                        log,
                        checkpoints,
                    });
                });
            }
            Effect::Estimate { seq, draft } => {
                self.tasks.spawn(async move {
                    let req = request(draft);
                    let result = engine.estimate(req).await.map(|e| estimate_view(&e));
                    send(Outcome::Estimate { seq, result });
                });
            }
            Effect::CreateJob {
                draft,
                confirm_over_budget,
            } => {
                self.tasks.spawn(async move {
                    let result = engine.create_job(request(draft), confirm_over_budget).await;
                    send(Outcome::JobCreated(result));
                });
            }
            Effect::CancelJob(id) => {
                self.tasks.spawn(async move {
                    let result = engine.cancel_job(&id.to_string()).await;
                    send(Outcome::JobChanged {
                        what: "cancelled",
                        result,
                    });
                });
            }
            Effect::PlanSweep { request, spec } => {
                self.tasks.spawn(async move {
                    let result = engine.plan_sweep(spec.clone()).await.map(Box::new);
                    send(Outcome::SweepPlanned {
                        request,
                        spec: Box::new(spec),
                        result,
                    });
                });
            }
            Effect::CreateSweep {
                spec,
                confirm_over_budget,
            } => {
                self.tasks.spawn(async move {
                    let result = engine.create_sweep(spec, confirm_over_budget).await;
                    send(Outcome::SweepCreated(result.map(Box::new)));
                });
            }
            Effect::CancelSweep(id) => {
                self.tasks.spawn(async move {
                    let result = engine.cancel_sweep(&id.to_string()).await;
                    send(Outcome::SweepCancelled(result.map(Box::new)));
                });
            }
            Effect::LoadRetryChoices { request, id } => {
                self.tasks.spawn(async move {
                    let id = id.to_string();
                    let (checkpoints, latest, scratch) = tokio::join!(
                        engine.job_checkpoints(&id),
                        engine.retry_job_from(&id, retry_options(RetryFrom::Latest, true)),
                        engine.retry_job_from(&id, retry_options(RetryFrom::Scratch, true)),
                    );
                    send(Outcome::RetryChoices(Box::new(RetryAnswer {
                        request,
                        checkpoints,
                        latest,
                        scratch,
                    })));
                });
            }
            Effect::RetryJob { id, from } => {
                self.tasks.spawn(async move {
                    let result = engine
                        .retry_job_from(&id.to_string(), retry_options(from, false))
                        .await;
                    send(Outcome::JobChanged {
                        what: "retried",
                        result,
                    });
                });
            }
            Effect::DownloadArtifact {
                request,
                id,
                to,
                force,
            } => {
                self.tasks.spawn(async move {
                    let tx2 = send.clone();
                    let last = std::sync::Mutex::new(Instant::now() - Duration::from_secs(1));
                    let label = format!("download {}", id.short());
                    let progress = move |done: u64, total: u64| {
                        let mut l = last.lock().unwrap_or_else(|p| p.into_inner());
                        if l.elapsed() >= Duration::from_millis(50) || done >= total {
                            *l = Instant::now();
                            tx2(Outcome::Progress {
                                task: TaskKey::Download(request),
                                label: label.clone(),
                                done,
                                total,
                            });
                        }
                    };
                    let result = engine
                        .download_model(&id.to_string(), &to, force, &progress)
                        .await;
                    send(Outcome::Downloaded {
                        request,
                        id,
                        to,
                        result,
                    });
                });
            }
            Effect::LoadCosts(period) => {
                self.tasks.spawn(async move {
                    let result = engine
                        .costs(to_engine_period(period))
                        .await
                        .map(|r| costs_view(period, r.summary, r.month_spent));
                    send(Outcome::Costs(result));
                });
            }
            Effect::LoadEvaluation(id) => {
                self.tasks.spawn(async move {
                    let result = engine
                        .model_evaluation(&id.to_string())
                        .await
                        .map(Evaluation::sanitised);
                    send(Outcome::Evaluation { id, result });
                });
            }
            Effect::MarkRead(id) => {
                self.tasks.spawn(async move {
                    let result = engine.mark_read(id.map(|i| i.to_string())).await;
                    send(Outcome::MarkedRead(result));
                });
            }
            Effect::Chat {
                request,
                model,
                messages,
                base,
            } => {
                // Held while spawning, so the task's own removal comes after the insert.
                let mut chats = self.chats.lock().unwrap_or_else(|p| p.into_inner());
                let registry = self.chats.clone();
                let handle = self.tasks.spawn(async move {
                    follow_chat(engine.as_ref(), request, model, messages, base, &send).await;
                    registry
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&request);
                });
                chats.insert(request, handle.abort_handle());
            }
            Effect::InspectExample {
                request,
                dataset,
                model,
                at,
                max_seq_length,
            } => {
                self.tasks.spawn(async move {
                    let result = engine
                        .inspect_example(&dataset.to_string(), Some(model), at, max_seq_length)
                        .await
                        .map(Box::new);
                    send(Outcome::InspectExample { request, result });
                });
            }
            Effect::InspectStats {
                request,
                dataset,
                model,
                max_seq_length,
            } => {
                self.tasks.spawn(async move {
                    let result = engine
                        .inspect_stats(&dataset.to_string(), Some(model), max_seq_length)
                        .await
                        .map(Box::new);
                    send(Outcome::InspectStats {
                        request,
                        dataset,
                        result,
                    });
                });
            }
            Effect::CompareRuns { request, ids } => {
                self.tasks.spawn(async move {
                    let ids: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
                    let result = engine.compare_runs(&ids).await.map(Box::new);
                    send(Outcome::RunsCompared { request, result });
                });
            }
            Effect::PlanExport {
                request,
                model,
                options,
            } => {
                self.tasks.spawn(async move {
                    let result = engine
                        .export_model(&model.to_string(), options)
                        .await
                        .map(Box::new);
                    send(Outcome::ExportPlanned { request, result });
                });
            }
            Effect::ExportModel { model, options } => {
                self.tasks.spawn(async move {
                    let result = engine
                        .export_model(&model.to_string(), options.clone())
                        .await
                        .map(Box::new);
                    send(Outcome::ExportQueued {
                        model,
                        options: Box::new(options),
                        result,
                    });
                });
            }
            Effect::LoadRunMetrics { request, id } => {
                self.tasks.spawn(async move {
                    let result = engine.metrics(&id.to_string(), 0, None).await;
                    send(Outcome::RunMetrics {
                        request,
                        id,
                        result,
                    });
                });
            }
            Effect::StopChat(request) => {
                let chat = self
                    .chats
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&request);
                if let Some(chat) = chat {
                    chat.abort();
                }
            }
        }
    }
}

/// Follows one chat reply, sending each event as it comes; the reply always ends with a
/// `done` or an `error` (a refused request and a stream cut short become errors).
async fn follow_chat(
    engine: &dyn EngineApi,
    request: u64,
    model: brightrun_api::ids::ArtifactId,
    messages: Vec<brightrun_api::chat::ChatMessage>,
    base: bool,
    send: &(dyn Fn(Outcome) + Send + Sync),
) {
    use brightrun_api::chat::{ChatEvent, ChatRequest};
    let chat = ChatRequest {
        // The full id: over HTTP the chat route takes no prefix.
        model: model.to_string(),
        messages,
        base,
        max_new_tokens: None,
        temperature: None,
    };
    let mut stream = match engine.chat(chat).await {
        Ok(s) => s,
        Err(error) => {
            send(Outcome::Chat {
                request,
                event: ChatEvent::Error { error },
            });
            return;
        }
    };
    while let Some(event) = stream.next().await {
        let last = event.is_last();
        send(Outcome::Chat { request, event });
        if last {
            return;
        }
    }
    send(Outcome::Chat {
        request,
        event: ChatEvent::Error {
            error: ApiError::unavailable("the engine ended the reply before it was done"),
        },
    });
}

/// A folder's entries for the file browser (names cleaned of control characters).
async fn list_dir(dir: &std::path::Path) -> Result<Vec<DirEntry>, String> {
    let mut rd = tokio::fs::read_dir(dir)
        .await
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut out = Vec::new();
    while let Ok(Some(e)) = rd.next_entry().await {
        if out.len() >= 5000 {
            break;
        }
        let raw = e.file_name();
        let name = crate::sanitize::one_line(&raw.to_string_lossy()).into_owned();
        // Follow symlinks for the kind and size.
        let meta = tokio::fs::metadata(e.path()).await.ok();
        out.push(DirEntry {
            name,
            raw,
            is_dir: meta.as_ref().is_some_and(|m| m.is_dir()),
            size: meta.as_ref().map(|m| m.len()).unwrap_or(0),
        });
    }
    Ok(out)
}

/// The desktop's file dialog (through the XDG portal on Linux), for picking a dataset.
#[cfg(feature = "native-dialog")]
async fn native_file_dialog() -> Option<std::path::PathBuf> {
    rfd::AsyncFileDialog::new()
        .set_title("Add a dataset")
        .add_filter("datasets", &["jsonl", "json"])
        .pick_file()
        .await
        .map(|f| f.path().to_path_buf())
}

#[cfg(not(feature = "native-dialog"))]
async fn native_file_dialog() -> Option<std::path::PathBuf> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_retry_choice_asks_the_engine_for_its_start() {
        let latest = retry_options(RetryFrom::Latest, true);
        assert_eq!(
            latest,
            RetryOptions {
                dry_run: true,
                ..RetryOptions::default()
            }
        );
        let step = retry_options(RetryFrom::Step(600), false);
        assert_eq!((step.checkpoint, step.from_scratch), (Some(600), false));
        let scratch = retry_options(RetryFrom::Scratch, false);
        assert_eq!((scratch.checkpoint, scratch.from_scratch), (None, true));
        assert!(!scratch.dry_run && scratch.backend.is_none());
    }

    /// An engine that records every request and answers an export with the job it would
    /// queue (the trait written out as `async_trait` expands it: this crate does not depend
    /// on the macro).
    struct Recorder {
        requests: std::sync::Mutex<Vec<brightrun_api::Request>>,
    }

    type Answer<'a, T> =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, ApiError>> + Send + 'a>>;

    impl EngineApi for Recorder {
        fn call<'life0, 'async_trait>(
            &'life0 self,
            request: brightrun_api::Request,
        ) -> Answer<'async_trait, brightrun_api::Reply>
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(async move {
                let reply = match &request {
                    brightrun_api::Request::ExportModel { format, .. } => {
                        let mut job =
                            crate::fixtures::export_job(20, 2, *format, JobStatus::Queued, 0);
                        job.estimated_cost = 0.82;
                        Ok(brightrun_api::Reply::Job(job))
                    }
                    _ => Err(ApiError::unavailable("not in this test")),
                };
                self.requests
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(request);
                reply
            })
        }

        fn upload<'life0, 'async_trait>(
            &'life0 self,
            _dataset: brightrun_api::ids::DatasetId,
            _body: brightrun_api::ByteStream,
        ) -> Answer<'async_trait, Dataset>
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(async { Err(ApiError::unavailable("not in this test")) })
        }

        fn download<'life0, 'life1, 'async_trait>(
            &'life0 self,
            _model: brightrun_api::ids::ArtifactId,
            _file: &'life1 str,
        ) -> Answer<'async_trait, brightrun_api::ByteStream>
        where
            'life0: 'async_trait,
            'life1: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(async { Err(ApiError::unavailable("not in this test")) })
        }

        fn changes<'life0, 'async_trait>(
            &'life0 self,
            _after: u64,
        ) -> Answer<'async_trait, brightrun_api::ChangeStream>
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(async { Err(ApiError::unavailable("not in this test")) })
        }

        fn live<'life0, 'async_trait>(
            &'life0 self,
        ) -> Answer<'async_trait, brightrun_api::LiveStream>
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(async { Err(ApiError::unavailable("not in this test")) })
        }

        fn chat<'life0, 'async_trait>(
            &'life0 self,
            _request: brightrun_api::ChatRequest,
        ) -> Answer<'async_trait, brightrun_api::ChatStream>
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(async { Err(ApiError::unavailable("not in this test")) })
        }

        fn connection(&self) -> Connection {
            Connection::Embedded
        }

        fn shares_filesystem(&self) -> bool {
            true
        }
    }

    /// The export dialog's effects reach the engine as `models export` asks: the model's full
    /// id and every option chosen, the estimate as a dry run, the confirmed one for real.
    #[tokio::test]
    async fn the_export_effects_send_the_options_chosen() {
        let recorder = Arc::new(Recorder {
            requests: Default::default(),
        });
        let (tx, mut rx) = mpsc::unbounded_channel();
        let executor = Executor {
            api: recorder.clone(),
            tx,
            tasks: tokio_util::task::TaskTracker::new(),
            chats: Default::default(),
        };
        let model = crate::fixtures::artifact_id(2);
        let mut options = ExportOptions::new(ExportFormat::Gguf);
        options.dtype = Some(ExportDtype::Bf16);
        options.quantize = Some("q4_k_m".into());
        options.ollama = true;
        options.system_prompt = Some("Answer as support.".into());
        options.name = Some("zubrowka-v2-gguf".into());
        executor.run(Effect::PlanExport {
            request: 7,
            model,
            options: ExportOptions {
                dry_run: true,
                ..options.clone()
            },
        });
        match rx.recv().await {
            Some(Outcome::ExportPlanned {
                request: 7,
                result: Ok(job),
            }) => assert_eq!(job.estimated_cost, 0.82),
            other => panic!("expected the estimate, got {other:?}"),
        }
        let confirmed = ExportOptions {
            confirm_over_budget: true,
            ..options.clone()
        };
        executor.run(Effect::ExportModel {
            model,
            options: confirmed.clone(),
        });
        match rx.recv().await {
            Some(Outcome::ExportQueued {
                model: m,
                options: o,
                result: Ok(_),
            }) => assert_eq!((m, *o), (model, confirmed)),
            other => panic!("expected the queued export, got {other:?}"),
        }
        let sent = recorder
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let expected =
            |dry_run: bool, confirm_over_budget: bool| brightrun_api::Request::ExportModel {
                model: model.to_string(),
                format: ExportFormat::Gguf,
                dtype: Some(ExportDtype::Bf16),
                quantize: Some("q4_k_m".into()),
                ollama: true,
                name: Some("zubrowka-v2-gguf".into()),
                system_prompt: Some("Answer as support.".into()),
                backend: None,
                gpu_type: None,
                confirm_over_budget,
                dry_run,
            };
        assert_eq!(sent, vec![expected(true, false), expected(false, true)]);
    }

    #[test]
    fn a_drafts_model_is_its_full_id() {
        let model = crate::fixtures::artifact_id(2);
        let spec = request(JobDraft {
            dataset_id: crate::fixtures::dataset_id(1),
            preset: "balanced".into(),
            sets: Vec::new(),
            gpu_type: None,
            gpu_count: None,
            backend: None,
            from_model: Some(model),
        });
        assert_eq!(spec.from_model, Some(model.to_string()));
    }
}
