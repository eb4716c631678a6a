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
use brightrun_engine::domain::*;
use brightrun_engine::{Engine, JobRequest, NewDataset, Page};
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
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
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

/// Runs the dashboard until the user quits. The engine's background tasks must already be
/// started by the caller.
pub async fn run(engine: Engine, options: RunOptions) -> anyhow::Result<()> {
    // Subscribe before taking the snapshot, so nothing between the two is lost (an event for a
    // record the snapshot already has is applied again, harmlessly).
    let mut events = engine.subscribe();
    let snap = {
        let e = engine.clone();
        tokio::task::spawn_blocking(move || snapshot(&e))
            .await
            .context("loading the dashboard's data")??
    };
    let mut config = engine.config().clone();
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
        engine: engine.clone(),
        tx,
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
                    Ok(ev) => {
                        tracing::trace!(event = event_kind(&ev), "engine event");
                        fx.extend(app.apply_event(ev))
                    }
                    Err(RecvError::Lagged(n)) => fx.extend(app.events_lost(n)),
                    Err(RecvError::Closed) => {
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
                        Ok(ev) => fx.extend(app.apply_event(ev)),
                        Err(TryRecvError::Lagged(n)) => fx.extend(app.events_lost(n)),
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Closed) => {
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
    result
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

fn event_kind(ev: &brightrun_engine::events::EngineEvent) -> &'static str {
    use brightrun_engine::events::EngineEvent as E;
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
    }
}

fn now() -> Timestamp {
    brightrun_engine::domain::now()
}

/// Everything the dashboard starts from, read from the engine (blocking: call it off the
/// async threads).
pub fn snapshot(engine: &Engine) -> anyhow::Result<Snapshot> {
    let datasets = engine.datasets(None, Page::ALL)?;
    let jobs = engine.jobs(None, Page::ALL)?;
    let artifacts = engine.artifacts(Page::ALL)?;
    let notifications = engine.notifications(false, Page::first(NOTIFICATIONS))?;
    let costs = engine
        .cost_summary(to_engine_period(Period::Month))
        .ok()
        .map(|s| costs_view(Period::Month, s, engine.spent_this_month().ok()));
    let config = engine.config();
    Ok(Snapshot {
        datasets,
        jobs,
        artifacts,
        notifications,
        costs,
        profile: config.profile.name.clone(),
        backends: engine.backend_names(),
        storage: engine.storage_kind().to_string(),
        themes: Theme::available_names(),
    })
}

fn to_engine_period(p: Period) -> brightrun_engine::Period {
    match p {
        Period::Week => brightrun_engine::Period::Week,
        Period::Month => brightrun_engine::Period::Month,
        Period::Year => brightrun_engine::Period::Year,
    }
}

/// The engine's cost summary as the Costs tab shows it.
fn costs_view(
    period: Period,
    s: brightrun_engine::CostSummary,
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

fn estimate_view(e: &brightrun_engine::training::Estimate) -> EstimateView {
    use brightrun_engine::training::FitVerdict;
    let (word, level) = match e.fit.verdict {
        FitVerdict::Fits => ("fits", Level::Success),
        FitVerdict::Tight => ("tight", Level::Warning),
        FitVerdict::WillNotFit => ("will not fit", Level::Error),
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
            "{word}: {:.1} of {:.0} GB per GPU ({})",
            e.fit.required_gb, e.fit.available_gb, e.model.id
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
    }
}

fn request(d: JobDraft) -> JobRequest {
    JobRequest {
        dataset_id: d.dataset_id,
        preset: d.preset,
        sets: d.sets,
        gpu_type: d.gpu_type,
        gpu_count: d.gpu_count,
        backend: d.backend,
    }
}

/// Runs effects against the engine in spawned tasks; answers go back through `tx`.
struct Executor {
    engine: Engine,
    tx: mpsc::UnboundedSender<Outcome>,
}

/// Runs blocking engine calls (redb reads and writes) off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, brightrun_engine::EngineError> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => Err(format!("internal error: {e}")),
    }
}

impl Executor {
    fn run(&self, effect: Effect) {
        let engine = self.engine.clone();
        let tx = self.tx.clone();
        let send = move |o: Outcome| {
            let _ = tx.send(o);
        };
        match effect {
            Effect::Quit => {}
            Effect::Reload => {
                tokio::spawn(async move {
                    let e = engine.clone();
                    match tokio::task::spawn_blocking(move || snapshot(&e)).await {
                        Ok(Ok(s)) => send(Outcome::Snapshot(Box::new(s))),
                        Ok(Err(e)) => send(Outcome::Theme(Err(format!("reload failed: {e}")))),
                        Err(e) => send(Outcome::Theme(Err(format!("reload failed: {e}")))),
                    }
                });
            }
            Effect::LoadTheme(name) => {
                tokio::spawn(async move {
                    let r = tokio::task::spawn_blocking(move || Theme::load(&name))
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|r| r.map_err(|e| e.to_string()));
                    send(Outcome::Theme(r));
                });
            }
            Effect::NativeFileDialog { request } => {
                tokio::spawn(async move {
                    let path = native_file_dialog().await;
                    send(Outcome::NativeFile { request, path });
                });
            }
            Effect::ListDir { request, dir } => {
                tokio::spawn(async move {
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
                tokio::spawn(async move {
                    let label = format!(
                        "upload {}",
                        path.file_name()
                            .map(|f| f.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    );
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
                    let result = engine
                        .add_dataset(
                            &path,
                            NewDataset {
                                name,
                                description: None,
                            },
                            &progress,
                        )
                        .await
                        .map_err(|e| e.to_string());
                    send(Outcome::DatasetAdded { request, result });
                });
            }
            Effect::ValidateDataset(id) => {
                tokio::spawn(async move {
                    let result = engine.validate_dataset(id).await.map_err(|e| e.to_string());
                    send(Outcome::DatasetChanged {
                        what: "validated",
                        result,
                    });
                });
            }
            Effect::RenameDataset(id, name) => {
                tokio::spawn(async move {
                    let result = blocking(move || engine.rename_dataset(id, &name)).await;
                    send(Outcome::DatasetChanged {
                        what: "renamed",
                        result,
                    });
                });
            }
            Effect::DescribeDataset(id, text) => {
                tokio::spawn(async move {
                    let result = blocking(move || engine.describe_dataset(id, &text)).await;
                    send(Outcome::DatasetChanged {
                        what: "described",
                        result,
                    });
                });
            }
            Effect::DeleteDataset(id) => {
                tokio::spawn(async move {
                    let result = engine.delete_dataset(id).await.map_err(|e| e.to_string());
                    send(Outcome::DatasetChanged {
                        what: "deleted",
                        result,
                    });
                });
            }
            Effect::LoadJobDetail(job_id) => {
                tokio::spawn(async move {
                    let e = engine.clone();
                    let metrics = blocking(move || e.metrics(job_id, 0, usize::MAX)).await;
                    let log = engine
                        .job_log_tail(job_id, LOG_TAIL)
                        .await
                        .map_err(|e| e.to_string());
                    send(Outcome::JobDetail {
                        job_id,
                        metrics,
                        log,
                    });
                });
            }
            Effect::Estimate { seq, draft } => {
                tokio::spawn(async move {
                    let req = request(draft);
                    let result = blocking(move || engine.estimate(&req))
                        .await
                        .map(|e| estimate_view(&e));
                    send(Outcome::Estimate { seq, result });
                });
            }
            Effect::CreateJob {
                draft,
                confirm_over_budget,
            } => {
                tokio::spawn(async move {
                    let result = engine
                        .create_job(request(draft), confirm_over_budget)
                        .await
                        .map_err(|e| e.to_string());
                    send(Outcome::JobCreated(result));
                });
            }
            Effect::CancelJob(id) => {
                tokio::spawn(async move {
                    let result = engine.cancel_job(id).await.map_err(|e| e.to_string());
                    send(Outcome::JobChanged {
                        what: "cancelled",
                        result,
                    });
                });
            }
            Effect::RetryJob(id) => {
                tokio::spawn(async move {
                    let result = engine.retry_job(id).await.map_err(|e| e.to_string());
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
                tokio::spawn(async move {
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
                        .download_artifact(id, &to, force, &progress)
                        .await
                        .map_err(|e| e.to_string());
                    send(Outcome::Downloaded {
                        request,
                        id,
                        to,
                        result,
                    });
                });
            }
            Effect::LoadCosts(period) => {
                tokio::spawn(async move {
                    let result = blocking(move || {
                        let s = engine.cost_summary(to_engine_period(period))?;
                        let spent = engine.spent_this_month().ok();
                        Ok(costs_view(period, s, spent))
                    })
                    .await;
                    send(Outcome::Costs(result));
                });
            }
            Effect::MarkRead(id) => {
                tokio::spawn(async move {
                    let result = blocking(move || engine.mark_read(id)).await;
                    send(Outcome::MarkedRead(result));
                });
            }
        }
    }
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
        let name = crate::sanitize::one_line(&e.file_name().to_string_lossy()).into_owned();
        // Follow symlinks for the kind and size.
        let meta = tokio::fs::metadata(e.path()).await.ok();
        out.push(DirEntry {
            name,
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
