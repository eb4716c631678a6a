//! The headless app: state, one place where actions are handled, engine events and effect
//! outcomes applied, and [`App::draw`]. Nothing here does I/O; what needs the engine is
//! returned as [`Effect`]s for the runtime to run.

mod command;
mod configure;
mod files;
pub mod lists;

pub use command::{Command, complete, parse_command};
pub use configure::{ConfigureState, FormRow};
pub use files::FileBrowser;

use crate::action::{Action, Period, Tab};
use crate::effect::*;
use crate::input::Input;
use crate::keymap::Keymap;
use crate::sanitize::one_line;
use crate::state::*;
use crate::theme::Theme;
use brightrun_engine::config::Config;
use brightrun_engine::domain::*;
use brightrun_engine::events::{EngineEvent, ProgressTask};
use brightrun_engine::ids::*;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

/// How long a status-bar message and a toast stay.
const MESSAGE_SECS: i64 = 8;
const TOAST_SECS: i64 = 6;
/// Events held while frozen before the app gives up replaying and reloads instead.
const MAX_HELD: usize = 50_000;
/// Job histories kept loaded besides active jobs'.
const KEEP_DETAILS: usize = 8;

/// A message in the status bar.
#[derive(Clone, Debug)]
pub struct Message {
    pub text: String,
    pub level: Level,
    pub at: Timestamp,
}

/// Where a list's selection goes.
#[derive(Clone, Copy, Debug)]
enum Cursor {
    By(isize),
    To(usize),
}

/// A pop-up for a new high-priority notification.
#[derive(Clone, Debug)]
pub struct Toast {
    pub title: String,
    pub message: String,
    pub priority: Priority,
    pub until: Timestamp,
}

/// Background work the status bar shows.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskInfo {
    pub label: String,
    pub done: u64,
    pub total: Option<u64>,
}

/// What a confirmation dialog does on "yes".
#[derive(Clone, Debug, PartialEq)]
pub enum Confirmed {
    Quit,
    DeleteDataset(DatasetId),
    CancelJob(JobId),
    CreateJob { draft: JobDraft, over_budget: bool },
    OverwriteDownload { id: ArtifactId, to: PathBuf },
}

/// What a one-line prompt is for.
#[derive(Clone, Debug, PartialEq)]
pub enum PromptKind {
    Rename(DatasetId),
    Describe(DatasetId),
    DownloadTo(ArtifactId),
}

/// What a pick list chooses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PickTarget {
    Dataset,
    Preset,
    Gpu,
    Backend,
    Field(usize),
}

/// A modal window over the tabs. Keys go to it first.
#[derive(Clone, Debug)]
pub enum Overlay {
    Help {
        scroll: u16,
    },
    Confirm {
        title: String,
        lines: Vec<String>,
        on_yes: Confirmed,
    },
    Prompt {
        title: String,
        input: Box<Input>,
        kind: PromptKind,
        hint: Option<String>,
    },
    Files(Box<FileBrowser>),
    Pick {
        title: String,
        options: Vec<String>,
        selected: usize,
        target: PickTarget,
    },
}

/// The input line at the bottom, when one is open.
#[derive(Clone, Debug)]
pub enum Bottom {
    Filter {
        input: Input,
        tab: Tab,
    },
    Command {
        input: Input,
        completions: Vec<String>,
        cycle: Option<usize>,
        stem: String,
    },
}

/// Screen areas from the last draw, for mouse clicks.
#[derive(Clone, Debug, Default)]
pub struct Hits {
    pub tabs: Vec<(Rect, Tab)>,
    /// The rows area of the list on screen and the list's offset.
    pub list: Option<(Rect, Tab, usize)>,
    pub detail: Option<Rect>,
}

/// Which part of a tab has the keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Focus {
    #[default]
    List,
    Detail,
}

/// Settings the app needs from the engine's config.
#[derive(Clone, Debug)]
pub struct Settings {
    pub config: Config,
    /// The engine's catalog, when the app runs against an engine.
    pub catalog: Option<brightrun_engine::api::Catalog>,
    /// The engine's address when attached (empty when embedded).
    pub connection: String,
    /// Attached and the connection is down.
    pub reconnecting: bool,
    pub profile: String,
    pub backends: Vec<String>,
    pub storage: String,
    pub tick_millis: u64,
}

pub struct App {
    pub theme: Theme,
    pub keymap: Keymap,
    pub settings: Settings,
    pub tab: Tab,
    pub now: Timestamp,

    pub datasets: Collection<Dataset>,
    pub jobs: Collection<TrainingJob>,
    pub artifacts: Collection<ModelArtifact>,
    pub notifications: Collection<Notification>,
    pub dataset_list: ListView<DatasetId>,
    pub job_list: ListView<JobId>,
    pub model_list: ListView<ArtifactId>,
    pub notification_list: ListView<NotificationId>,
    pub details: HashMap<JobId, JobDetail>,
    detail_order: std::collections::VecDeque<JobId>,
    pub costs: Option<CostsView>,
    pub period: Period,
    pub costs_stale: bool,
    pub costs_loading: bool,
    pub configure: ConfigureState,

    pub focus: BTreeMap<Tab, Focus>,
    pub detail_scroll: BTreeMap<Tab, u16>,
    pub overlay: Option<Overlay>,
    pub bottom: Option<Bottom>,
    pub frozen: bool,
    pub held: Vec<EngineEvent>,
    held_overflow: bool,
    pub toasts: Vec<Toast>,
    pub message: Option<Message>,
    pub tasks: BTreeMap<TaskKey, TaskInfo>,
    pub health: BTreeMap<String, bool>,
    pub unread: usize,
    pub themes: Vec<String>,
    pub hits: Hits,
    /// Download requests in flight: request → (artifact, folder).
    pub downloads: HashMap<u64, (ArtifactId, PathBuf)>,
    dirty: bool,
    quit: bool,
    next_request: u64,
}

impl App {
    /// A new app over a snapshot of the engine's data. `config` is the engine's config (themes,
    /// keys, tick, presets, GPUs, budget).
    /// Shows (or clears) a lost connection to an attached engine in the status bar.
    pub fn set_reconnecting(&mut self, lost: bool) {
        if self.settings.reconnecting != lost {
            self.settings.reconnecting = lost;
            self.mark_dirty();
        }
    }

    pub fn new(snapshot: Snapshot, config: &Config) -> Self {
        let (keymap, problems) = Keymap::new(&config.tui.keys);
        let theme = Theme::builtin(&config.tui.theme).unwrap_or_default();
        let mut backends = snapshot.backends.clone();
        let default_backend = snapshot
            .catalog
            .as_ref()
            .map(|c| c.default_backend.clone())
            .unwrap_or_else(|| config.training.default_backend.clone());
        if backends.is_empty() {
            backends.push(default_backend.clone());
        }
        if let Some(pos) = backends.iter().position(|b| *b == default_backend) {
            let d = backends.remove(pos);
            backends.insert(0, d);
        }
        let settings = Settings {
            config: config.clone(),
            catalog: snapshot.catalog.clone(),
            connection: snapshot.connection.clone(),
            reconnecting: false,
            profile: if snapshot.profile.is_empty() {
                config.profile.name.clone()
            } else {
                snapshot.profile.clone()
            },
            backends,
            storage: snapshot.storage.clone(),
            tick_millis: config.tui.tick_millis.max(50),
        };
        let mut themes = snapshot.themes.clone();
        if themes.is_empty() {
            themes = crate::theme::BUILTIN
                .iter()
                .map(|(n, _)| n.to_string())
                .collect();
        }
        let now = brightrun_engine::domain::now();
        let mut app = App {
            theme,
            keymap,
            configure: ConfigureState::new(&settings),
            settings,
            tab: Tab::Datasets,
            now,
            datasets: Collection::default(),
            jobs: Collection::default(),
            artifacts: Collection::default(),
            notifications: Collection::default(),
            dataset_list: ListView::new(lists::DATASET_CREATED, true),
            job_list: ListView::new(lists::JOB_CREATED, true),
            model_list: ListView::new(lists::MODEL_CREATED, true),
            notification_list: ListView::new(0, true),
            details: HashMap::new(),
            detail_order: Default::default(),
            costs: None,
            period: Period::Month,
            costs_stale: true,
            costs_loading: false,
            focus: BTreeMap::new(),
            detail_scroll: BTreeMap::new(),
            overlay: None,
            bottom: None,
            frozen: false,
            held: Vec::new(),
            held_overflow: false,
            toasts: Vec::new(),
            message: None,
            tasks: BTreeMap::new(),
            health: BTreeMap::new(),
            unread: 0,
            themes,
            hits: Hits::default(),
            downloads: HashMap::new(),
            dirty: true,
            quit: false,
            next_request: 1,
        };
        app.load_snapshot(snapshot);
        if let Some(p) = problems.first() {
            app.notify_user(p.clone(), Level::Warning);
        }
        app
    }

    /// Effects to run once at start (a theme file named in config).
    pub fn startup_effects(&self) -> Vec<Effect> {
        let t = &self.settings.config.tui.theme;
        if !t.is_empty() && !Theme::is_builtin(t) {
            vec![Effect::LoadTheme(t.clone())]
        } else {
            Vec::new()
        }
    }

    /// Replaces every list with a fresh snapshot (start, `ctrl-r`, lagged events).
    pub fn load_snapshot(&mut self, s: Snapshot) {
        self.datasets = Collection::from_vec(
            s.datasets
                .into_iter()
                .filter(|d| d.deleted_at.is_none())
                .map(clean_dataset)
                .collect(),
        );
        self.jobs = Collection::from_vec(s.jobs.into_iter().map(clean_job).collect());
        self.artifacts = Collection::from_vec(
            s.artifacts
                .into_iter()
                .filter(|a| a.deleted_at.is_none())
                .map(clean_artifact)
                .collect(),
        );
        self.notifications = Collection::from_vec(
            s.notifications
                .into_iter()
                .map(clean_notification)
                .collect(),
        );
        if let Some(c) = s.costs {
            self.costs = Some(clean_costs(c));
            self.costs_stale = false;
        }
        if !s.themes.is_empty() {
            self.themes = s.themes;
        }
        for v in [&mut self.dataset_list.dirty, &mut self.job_list.dirty] {
            *v = true;
        }
        self.model_list.dirty = true;
        self.notification_list.dirty = true;
        self.recount_unread();
        self.refresh_views();
        self.configure.sync_datasets(&self.datasets);
        self.dirty = true;
    }

    /// Sets the clock used for ages, ETAs, toasts and messages (tests pin it).
    pub fn set_now(&mut self, now: Timestamp) {
        self.now = now;
    }

    pub fn set_theme(&mut self, theme: Theme) {
        self.theme = theme;
        self.dirty = true;
    }

    /// True once the user asked to quit (and confirmed if needed).
    pub fn should_quit(&self) -> bool {
        self.quit
    }

    /// Whether something changed since the last draw. The runtime draws only then (plus ticks).
    pub fn needs_redraw(&self) -> bool {
        self.dirty
    }

    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// Clears the redraw flag (drawing does this); returns whether it was set.
    pub fn take_redraw(&mut self) -> bool {
        std::mem::replace(&mut self.dirty, false)
    }

    /// Records in effect answers can be older than what events already brought (a dataset
    /// validated between the end of its upload and the answer): the newer one stays.
    fn upsert_dataset_if_newer(&mut self, d: Arc<Dataset>) {
        if self
            .datasets
            .get(d.id)
            .is_none_or(|old| old.updated_at <= d.updated_at)
        {
            self.datasets.upsert(d);
        }
    }

    fn upsert_job_if_newer(&mut self, j: Arc<TrainingJob>) {
        if self
            .jobs
            .get(j.id)
            .is_none_or(|old| old.updated_at <= j.updated_at)
        {
            self.jobs.upsert(j);
        }
    }

    fn touch_dataset(&mut self, id: DatasetId) {
        if let Some(pos) = self.datasets.position(id) {
            self.dataset_list.touch(pos);
        }
    }

    fn touch_job(&mut self, id: JobId) {
        if let Some(pos) = self.jobs.position(id) {
            self.job_list.touch(pos);
        }
    }

    /// Whether an upload or download this UI started is still running (quit asks first).
    pub fn transfer_in_progress(&self) -> bool {
        self.tasks
            .keys()
            .any(|k| matches!(k, TaskKey::Upload(_) | TaskKey::Download(_)))
    }

    fn request_id(&mut self) -> u64 {
        let r = self.next_request;
        self.next_request += 1;
        r
    }

    pub fn notify_user(&mut self, text: impl Into<String>, level: Level) {
        self.message = Some(Message {
            text: one_line(&text.into()).into_owned(),
            level,
            at: self.now,
        });
        self.dirty = true;
    }

    fn focus_of(&self, tab: Tab) -> Focus {
        self.focus.get(&tab).copied().unwrap_or_default()
    }

    fn set_focus(&mut self, tab: Tab, f: Focus) {
        self.focus.insert(tab, f);
    }

    // ---- ticks -----------------------------------------------------------------------------

    /// The slow tick: expires messages and toasts, and redraws clocks and ETAs.
    pub fn tick(&mut self, now: Timestamp) -> Vec<Effect> {
        self.now = now;
        if let Some(m) = &self.message
            && (now - m.at).num_seconds() >= MESSAGE_SECS
            && m.level != Level::Error
        {
            self.message = None;
        }
        if let Some(m) = &self.message
            && (now - m.at).num_seconds() >= MESSAGE_SECS * 3
        {
            self.message = None;
        }
        self.toasts.retain(|t| t.until > now);
        self.dirty = true;
        let mut fx = Vec::new();
        if self.tab == Tab::Costs && self.costs_stale && !self.costs_loading {
            fx.push(self.load_costs());
        }
        if self.tab == Tab::Jobs {
            fx.extend(self.ensure_job_detail());
        }
        fx
    }

    // ---- keys --------------------------------------------------------------------------------

    /// A key press: to the focused input if one is open, else through the keymap.
    pub fn handle_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if key.kind == crossterm::event::KeyEventKind::Release {
            return Vec::new();
        }
        if self.overlay.is_some() || self.bottom.is_some() || self.configure.editing.is_some() {
            return self.handle(Action::Input(key));
        }
        match self.keymap.lookup(self.tab, &key) {
            Some(action) => self.handle(action),
            None => Vec::new(),
        }
    }

    /// The one place actions are handled.
    pub fn handle(&mut self, action: Action) -> Vec<Effect> {
        self.dirty = true;
        self.refresh_views();
        if self.overlay.is_some() {
            return self.handle_overlay(action);
        }
        if self.bottom.is_some() {
            return self.handle_bottom(action);
        }
        if self.configure.editing.is_some() && self.tab == Tab::Configure {
            return self.configure_edit(action);
        }
        match action {
            Action::Input(key) => {
                // A key reached here with no input open: route it through the keymap.
                match self.keymap.lookup(self.tab, &key) {
                    Some(a) => self.handle(a),
                    None => Vec::new(),
                }
            }
            Action::Paste(_) => Vec::new(),
            Action::Quit => self.ask_quit(),
            Action::NextTab => self.go_tab(Tab::ALL[(self.tab.index() + 1) % Tab::ALL.len()]),
            Action::PrevTab => {
                self.go_tab(Tab::ALL[(self.tab.index() + Tab::ALL.len() - 1) % Tab::ALL.len()])
            }
            Action::GoTab(t) => self.go_tab(t),
            Action::Help => {
                self.overlay = Some(Overlay::Help { scroll: 0 });
                Vec::new()
            }
            Action::Filter => {
                if matches!(self.tab, Tab::Configure | Tab::Costs) {
                    self.notify_user("this view has no list to filter", Level::Info);
                    return Vec::new();
                }
                let current = self.list_filter(self.tab).to_string();
                let mut input = Input::new(&current);
                input.set_placeholder("type to filter, enter keeps, esc clears");
                self.bottom = Some(Bottom::Filter {
                    input,
                    tab: self.tab,
                });
                Vec::new()
            }
            Action::CommandLine => {
                self.bottom = Some(Bottom::Command {
                    input: Input::new(""),
                    completions: Vec::new(),
                    cycle: None,
                    stem: String::new(),
                });
                self.update_completions();
                Vec::new()
            }
            Action::Freeze => {
                self.frozen = !self.frozen;
                if self.frozen {
                    self.notify_user("live updates frozen (f resumes)", Level::Info);
                    Vec::new()
                } else {
                    let held = std::mem::take(&mut self.held);
                    let n = held.len();
                    let mut fx = Vec::new();
                    if std::mem::take(&mut self.held_overflow) {
                        fx.push(Effect::Reload);
                    }
                    for ev in held {
                        fx.extend(self.apply_event(ev));
                    }
                    self.notify_user(format!("live updates resumed ({n} applied)"), Level::Info);
                    fx
                }
            }
            Action::Refresh => {
                self.costs_stale = true;
                vec![Effect::Reload]
            }
            Action::Resize => Vec::new(),
            Action::Click { column, row } => self.click(column, row),
            Action::Scroll { column, row, delta } => self.wheel(column, row, delta),
            other => self.handle_tab_action(other),
        }
    }

    fn ask_quit(&mut self) -> Vec<Effect> {
        if self.transfer_in_progress() {
            let work: Vec<String> = self
                .tasks
                .iter()
                .filter(|(k, _)| matches!(k, TaskKey::Upload(_) | TaskKey::Download(_)))
                .map(|(_, t)| t.label.clone())
                .collect();
            self.overlay = Some(Overlay::Confirm {
                title: "Quit?".into(),
                lines: vec![
                    "A transfer is still running:".into(),
                    work.join(", "),
                    "Quitting stops it; an interrupted upload resumes next time.".into(),
                ],
                on_yes: Confirmed::Quit,
            });
            Vec::new()
        } else {
            self.quit = true;
            vec![Effect::Quit]
        }
    }

    pub fn go_tab(&mut self, tab: Tab) -> Vec<Effect> {
        self.tab = tab;
        let mut fx = Vec::new();
        match tab {
            Tab::Costs if self.costs_stale && !self.costs_loading => fx.push(self.load_costs()),
            Tab::Jobs => fx.extend(self.ensure_job_detail()),
            Tab::Configure
                if self.configure.estimate.is_none() && !self.configure.estimate_pending =>
            {
                fx.extend(self.configure_changed())
            }
            _ => {}
        }
        fx
    }

    fn load_costs(&mut self) -> Effect {
        self.costs_loading = true;
        Effect::LoadCosts(self.period)
    }

    fn handle_tab_action(&mut self, action: Action) -> Vec<Effect> {
        match self.tab {
            Tab::Datasets => self.datasets_action(action),
            Tab::Configure => self.configure_action(action),
            Tab::Jobs => self.jobs_action(action),
            Tab::Models => self.models_action(action),
            Tab::Costs => self.costs_action(action),
            Tab::Notifications => self.notifications_action(action),
        }
    }

    /// Everything a plain list-and-detail view does with an action: scroll the detail when it
    /// has the focus, move in the list, open, back out, sort. True when the action was used.
    fn browse(&mut self, tab: Tab, has_selection: bool, action: &Action) -> bool {
        (self.focus_of(tab) == Focus::Detail && self.scroll_detail(tab, action))
            || self.move_list(tab, action)
            || self.list_nav(tab, has_selection, action)
    }

    /// Enter/→ opens the detail, Esc/← backs out of it (then clears the filter), sort keys
    /// sort: the same in every list view. Returns true when the action was one of those.
    fn list_nav(&mut self, tab: Tab, has_selection: bool, action: &Action) -> bool {
        match action {
            Action::Open | Action::Right => {
                if has_selection {
                    self.set_focus(tab, Focus::Detail);
                }
            }
            Action::Back | Action::Left => {
                if self.focus_of(tab) == Focus::Detail {
                    self.set_focus(tab, Focus::List);
                } else if !self.list_filter(tab).is_empty() {
                    self.set_filter(tab, String::new());
                }
            }
            Action::Sort | Action::SortReverse => self.sort(tab, *action == Action::SortReverse),
            _ => return false,
        }
        true
    }

    /// Moves the selection of `tab`'s list and remembers the selected record's key, so the
    /// selection follows the record when the list re-sorts. False for tabs without a list.
    fn set_cursor(&mut self, tab: Tab, to: Cursor) -> bool {
        fn apply<K: Copy + PartialEq>(list: &mut ListView<K>, to: Cursor) {
            match to {
                Cursor::By(delta) => list.move_by(delta),
                Cursor::To(i) => list.select(i),
            }
        }
        match tab {
            Tab::Datasets => {
                apply(&mut self.dataset_list, to);
                self.dataset_list.sync_key(&self.datasets);
            }
            Tab::Jobs => {
                apply(&mut self.job_list, to);
                self.job_list.sync_key(&self.jobs);
            }
            Tab::Models => {
                apply(&mut self.model_list, to);
                self.model_list.sync_key(&self.artifacts);
            }
            Tab::Notifications => {
                apply(&mut self.notification_list, to);
                self.notification_list.sync_key(&self.notifications);
            }
            _ => return false,
        }
        true
    }

    /// Movement shared by list views. Returns true when the action was a movement.
    fn move_list(&mut self, tab: Tab, action: &Action) -> bool {
        let delta: isize = match action {
            Action::Up => -1,
            Action::Down => 1,
            Action::PageUp => -(self.list_page(tab) as isize),
            Action::PageDown => self.list_page(tab) as isize,
            Action::Top => isize::MIN / 2,
            Action::Bottom => isize::MAX / 2,
            _ => return false,
        };
        if !self.set_cursor(tab, Cursor::By(delta)) {
            return false;
        }
        self.detail_scroll.insert(tab, 0);
        true
    }

    fn list_page(&self, tab: Tab) -> usize {
        match tab {
            Tab::Datasets => self.dataset_list.page,
            Tab::Jobs => self.job_list.page,
            Tab::Models => self.model_list.page,
            Tab::Notifications => self.notification_list.page,
            _ => 10,
        }
        .max(1)
    }

    fn scroll_detail(&mut self, tab: Tab, action: &Action) -> bool {
        let s = self.detail_scroll.entry(tab).or_insert(0);
        match action {
            Action::Up => *s = s.saturating_sub(1),
            Action::Down => *s = s.saturating_add(1),
            Action::PageUp => *s = s.saturating_sub(10),
            Action::PageDown => *s = s.saturating_add(10),
            Action::Top => *s = 0,
            Action::Bottom => *s = u16::MAX / 2,
            _ => return false,
        }
        true
    }

    // ---- Datasets ------------------------------------------------------------------------------

    pub fn selected_dataset(&self) -> Option<&Arc<Dataset>> {
        self.dataset_list
            .selected_item()
            .map(|i| self.datasets.at(i))
    }

    fn datasets_action(&mut self, action: Action) -> Vec<Effect> {
        let sel = self.selected_dataset().cloned();
        if self.browse(Tab::Datasets, sel.is_some(), &action) {
            return Vec::new();
        }
        match action {
            Action::AddDataset => {
                let start = std::env::current_dir()
                    .map(|d| format!("{}/", d.display()))
                    .unwrap_or_else(|_| "./".into());
                self.open_file_browser(&start)
            }
            Action::Rename => {
                let Some(d) = sel else {
                    return self.nothing_selected();
                };
                self.overlay = Some(Overlay::Prompt {
                    title: format!("Rename {}", d.name),
                    input: Box::new(Input::new(&d.name)),
                    kind: PromptKind::Rename(d.id),
                    hint: None,
                });
                Vec::new()
            }
            Action::Describe => {
                let Some(d) = sel else {
                    return self.nothing_selected();
                };
                self.overlay = Some(Overlay::Prompt {
                    title: format!("Description of {}", d.name),
                    input: Box::new(Input::new(d.description.as_deref().unwrap_or(""))),
                    kind: PromptKind::Describe(d.id),
                    hint: None,
                });
                Vec::new()
            }
            Action::Validate => {
                let Some(d) = sel else {
                    return self.nothing_selected();
                };
                self.notify_user(format!("validating {}…", d.name), Level::Info);
                self.tasks.insert(
                    TaskKey::Validation(d.id),
                    TaskInfo {
                        label: format!("validating {}", d.name),
                        done: 0,
                        total: None,
                    },
                );
                vec![Effect::ValidateDataset(d.id)]
            }
            Action::Delete => {
                let Some(d) = sel else {
                    return self.nothing_selected();
                };
                self.overlay = Some(Overlay::Confirm {
                    title: "Delete dataset?".into(),
                    lines: vec![
                        format!(
                            "{} ({}, {})",
                            d.name,
                            d.file_name,
                            crate::format::bytes(d.file_size)
                        ),
                        "It is removed from lists and storage; jobs using it keep their records."
                            .into(),
                    ],
                    on_yes: Confirmed::DeleteDataset(d.id),
                });
                Vec::new()
            }
            Action::Train => {
                let Some(d) = sel else {
                    return self.nothing_selected();
                };
                if d.status != DatasetStatus::Ready || !d.training_ready {
                    self.notify_user(
                        format!(
                            "{} is {}: only a ready dataset can be trained on",
                            d.name,
                            d.status.as_str()
                        ),
                        Level::Warning,
                    );
                    return Vec::new();
                }
                self.configure.dataset = Some(d.id);
                self.configure.row = 0;
                self.tab = Tab::Configure;
                self.configure_changed()
            }
            _ => Vec::new(),
        }
    }

    fn nothing_selected(&mut self) -> Vec<Effect> {
        self.notify_user("nothing selected", Level::Info);
        Vec::new()
    }

    fn open_file_browser(&mut self, start: &str) -> Vec<Effect> {
        let request = self.request_id();
        let fb = FileBrowser::new(start, request);
        let dir = fb.dir_to_list();
        self.overlay = Some(Overlay::Files(Box::new(fb)));
        vec![Effect::ListDir { request, dir }]
    }

    // ---- Jobs --------------------------------------------------------------------------------

    pub fn selected_job(&self) -> Option<&Arc<TrainingJob>> {
        self.job_list.selected_item().map(|i| self.jobs.at(i))
    }

    /// Loads the selected job's history the first time the monitor shows it.
    fn ensure_job_detail(&mut self) -> Vec<Effect> {
        let Some(id) = self.selected_job().map(|j| j.id) else {
            return Vec::new();
        };
        if self.details.contains_key(&id) {
            return Vec::new();
        }
        self.details.insert(
            id,
            JobDetail {
                loading: true,
                ..Default::default()
            },
        );
        self.evict_details(id);
        vec![Effect::LoadJobDetail(id)]
    }

    /// Keeps the loaded histories bounded: those of active jobs, the one on screen, and the
    /// most recently viewed others. An evicted job's history is loaded again when viewed.
    fn evict_details(&mut self, keep: JobId) {
        self.detail_order.retain(|j| *j != keep);
        self.detail_order.push_back(keep);
        // Live jobs keep their series (their events keep coming); others are dropped,
        // oldest viewed first.
        let jobs = &self.jobs;
        let inactive = |j: &JobId| !jobs.get(*j).is_some_and(|x| x.status.is_active());
        let mut excess = self
            .detail_order
            .iter()
            .filter(|j| inactive(j))
            .count()
            .saturating_sub(KEEP_DETAILS);
        let mut kept = std::collections::VecDeque::new();
        while let Some(j) = self.detail_order.pop_front() {
            if excess > 0 && j != keep && inactive(&j) {
                self.details.remove(&j);
                excess -= 1;
            } else {
                kept.push_back(j);
            }
        }
        self.detail_order = kept;
    }

    fn jobs_action(&mut self, action: Action) -> Vec<Effect> {
        let focus = self.focus_of(Tab::Jobs);
        if focus == Focus::Detail {
            let sel = self.selected_job().map(|j| j.id);
            if let Some(d) = sel.and_then(|id| self.details.get_mut(&id)) {
                let len = d.log.len();
                let moved = match action {
                    Action::Up => {
                        d.log_scroll = (d.log_scroll + 1).min(len);
                        true
                    }
                    Action::Down => {
                        d.log_scroll = d.log_scroll.saturating_sub(1);
                        true
                    }
                    Action::PageUp => {
                        d.log_scroll = (d.log_scroll + 10).min(len);
                        true
                    }
                    Action::PageDown => {
                        d.log_scroll = d.log_scroll.saturating_sub(10);
                        true
                    }
                    Action::Top => {
                        d.log_scroll = len;
                        true
                    }
                    Action::Bottom => {
                        d.log_scroll = 0;
                        true
                    }
                    _ => false,
                };
                if moved {
                    return Vec::new();
                }
            }
        } else if self.move_list(Tab::Jobs, &action) {
            return self.ensure_job_detail();
        }
        let sel = self.selected_job().cloned();
        if self.list_nav(Tab::Jobs, sel.is_some(), &action) {
            return if matches!(action, Action::Open | Action::Right) {
                self.ensure_job_detail()
            } else {
                Vec::new()
            };
        }
        match action {
            Action::CancelJob => {
                let Some(j) = sel else {
                    return self.nothing_selected();
                };
                self.confirm_cancel(&j)
            }
            Action::RetryJob => {
                let Some(j) = sel else {
                    return self.nothing_selected();
                };
                if !matches!(j.status, JobStatus::Failed | JobStatus::Cancelled) {
                    self.notify_user(
                        format!(
                            "job {} is {}: only failed or cancelled jobs can be retried",
                            j.id.short(),
                            j.status.as_str()
                        ),
                        Level::Warning,
                    );
                    return Vec::new();
                }
                self.notify_user(format!("retrying job {}…", j.id.short()), Level::Info);
                vec![Effect::RetryJob(j.id)]
            }
            Action::OpenArtifact => {
                let Some(j) = sel else {
                    return self.nothing_selected();
                };
                match j.artifact_id {
                    Some(a) => self.jump(Link::Artifact(a)),
                    None => {
                        self.notify_user(
                            format!("job {} has no model yet", j.id.short()),
                            Level::Info,
                        );
                        Vec::new()
                    }
                }
            }
            _ => Vec::new(),
        }
    }

    fn confirm_cancel(&mut self, j: &TrainingJob) -> Vec<Effect> {
        if j.status.is_terminal() {
            self.notify_user(
                format!("job {} is already {}", j.id.short(), j.status.as_str()),
                Level::Info,
            );
            return Vec::new();
        }
        let dataset = self.dataset_name(j.dataset_id);
        self.overlay = Some(Overlay::Confirm {
            title: "Cancel job?".into(),
            lines: vec![
                format!(
                    "Job {} on {} ({}, {:.0}% done).",
                    j.id.short(),
                    dataset,
                    j.status.as_str(),
                    j.progress
                ),
                format!(
                    "It has cost {} so far; a cancelled job costs what it ran.",
                    crate::format::money(j.current_cost)
                ),
            ],
            on_yes: Confirmed::CancelJob(j.id),
        });
        Vec::new()
    }

    pub fn dataset_name(&self, id: DatasetId) -> String {
        self.datasets
            .get(id)
            .map(|d| d.name.clone())
            .unwrap_or_else(|| id.short())
    }

    // ---- Models ------------------------------------------------------------------------------

    pub fn selected_artifact(&self) -> Option<&Arc<ModelArtifact>> {
        self.model_list
            .selected_item()
            .map(|i| self.artifacts.at(i))
    }

    fn models_action(&mut self, action: Action) -> Vec<Effect> {
        let sel = self.selected_artifact().cloned();
        if self.browse(Tab::Models, sel.is_some(), &action) {
            return Vec::new();
        }
        match action {
            Action::Download => {
                let Some(a) = sel else {
                    return self.nothing_selected();
                };
                let default = std::env::current_dir()
                    .map(|d| {
                        d.join(format!(
                            "{}-v{}",
                            crate::sanitize::one_line(&a.name),
                            a.version
                        ))
                    })
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|_| format!("./{}-v{}", a.name, a.version));
                self.overlay = Some(Overlay::Prompt {
                    title: format!("Download {} v{} to folder", a.name, a.version),
                    input: Box::new(Input::new(&default)),
                    kind: PromptKind::DownloadTo(a.id),
                    hint: Some("tab completes a folder; enter downloads".into()),
                });
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn start_download(&mut self, id: ArtifactId, to: PathBuf, force: bool) -> Vec<Effect> {
        let request = self.request_id();
        let label = self
            .artifacts
            .get(id)
            .map(|a| format!("download {}", a.name))
            .unwrap_or_else(|| format!("download {}", id.short()));
        let total = self
            .artifacts
            .get(id)
            .map(|a| a.files.iter().map(|f| f.size).sum());
        self.tasks.insert(
            TaskKey::Download(request),
            TaskInfo {
                label,
                done: 0,
                total,
            },
        );
        self.downloads.insert(request, (id, to.clone()));
        vec![Effect::DownloadArtifact {
            request,
            id,
            to,
            force,
        }]
    }

    /// The progress of a download of this artifact, if one runs.
    pub fn download_progress(&self, id: ArtifactId) -> Option<&TaskInfo> {
        self.downloads
            .iter()
            .find(|(_, (a, _))| *a == id)
            .and_then(|(r, _)| self.tasks.get(&TaskKey::Download(*r)))
    }

    // ---- Costs -------------------------------------------------------------------------------

    fn costs_action(&mut self, action: Action) -> Vec<Effect> {
        let new = match action {
            Action::NextPeriod | Action::Right => self.period.next(),
            Action::Left => self.period.prev(),
            Action::SetPeriod(p) => p,
            Action::Up
            | Action::Down
            | Action::PageUp
            | Action::PageDown
            | Action::Top
            | Action::Bottom => {
                self.scroll_detail(Tab::Costs, &action);
                return Vec::new();
            }
            _ => return Vec::new(),
        };
        self.set_period(new)
    }

    pub fn set_period(&mut self, p: Period) -> Vec<Effect> {
        self.period = p;
        self.costs_stale = true;
        vec![self.load_costs()]
    }

    // ---- Notifications -----------------------------------------------------------------------

    pub fn selected_notification(&self) -> Option<&Arc<Notification>> {
        self.notification_list
            .selected_item()
            .map(|i| self.notifications.at(i))
    }

    fn notifications_action(&mut self, action: Action) -> Vec<Effect> {
        if self.move_list(Tab::Notifications, &action) {
            return Vec::new();
        }
        let sel = self.selected_notification().cloned();
        match action {
            Action::Open | Action::Right => {
                let Some(n) = sel else {
                    return self.nothing_selected();
                };
                let mut fx = self.mark_read_local(Some(n.id));
                match n.link {
                    Some(link) => fx.extend(self.jump(link)),
                    None => self.notify_user("this notification links to nothing", Level::Info),
                }
                fx
            }
            Action::Back => {
                if !self.notification_list.filter.is_empty() {
                    self.set_filter(Tab::Notifications, String::new());
                }
                Vec::new()
            }
            Action::MarkRead => {
                let Some(n) = sel else {
                    return self.nothing_selected();
                };
                self.mark_read_local(Some(n.id))
            }
            Action::MarkAllRead => self.mark_read_local(None),
            _ => Vec::new(),
        }
    }

    /// Marks read here at once (the engine's event confirms it) and asks the engine to.
    fn mark_read_local(&mut self, id: Option<NotificationId>) -> Vec<Effect> {
        let targets: Vec<Arc<Notification>> = match id {
            Some(id) => self
                .notifications
                .get(id)
                .into_iter()
                .filter(|n| !n.read)
                .cloned()
                .collect(),
            None => self
                .notifications
                .items()
                .iter()
                .filter(|n| !n.read)
                .cloned()
                .collect(),
        };
        if targets.is_empty() && id.is_some() {
            return Vec::new();
        }
        for n in targets {
            let mut m = (*n).clone();
            m.read = true;
            self.notifications.upsert(Arc::new(m));
        }
        self.recount_unread();
        vec![Effect::MarkRead(id)]
    }

    fn recount_unread(&mut self) {
        self.unread = self
            .notifications
            .items()
            .iter()
            .filter(|n| !n.read)
            .count();
    }

    /// Jumps to the item a notification (or a job) links to.
    pub fn jump(&mut self, link: Link) -> Vec<Effect> {
        self.refresh_views();
        match link {
            Link::Dataset(id) => {
                let found = self.select_in(Tab::Datasets, |app| app.datasets.position(id));
                let fx = self.go_tab(Tab::Datasets);
                if !found {
                    self.notify_user(
                        format!(
                            "dataset {} is not in the list (deleted or filtered)",
                            id.short()
                        ),
                        Level::Warning,
                    );
                }
                fx
            }
            Link::Job(id) => {
                let found = self.select_in(Tab::Jobs, |app| app.jobs.position(id));
                if found {
                    self.set_focus(Tab::Jobs, Focus::Detail);
                }
                let fx = self.go_tab(Tab::Jobs);
                if !found {
                    self.notify_user(
                        format!("job {} is not in the list", id.short()),
                        Level::Warning,
                    );
                }
                fx
            }
            Link::Artifact(id) => {
                let found = self.select_in(Tab::Models, |app| app.artifacts.position(id));
                if found {
                    self.set_focus(Tab::Models, Focus::Detail);
                }
                let fx = self.go_tab(Tab::Models);
                if !found {
                    self.notify_user(
                        format!("model {} is not in the list", id.short()),
                        Level::Warning,
                    );
                }
                fx
            }
            Link::Costs => self.go_tab(Tab::Costs),
        }
    }

    /// Selects the row showing collection position `pos` in a tab's list, clearing a filter
    /// that hides it. Returns whether it is there.
    fn select_in(&mut self, tab: Tab, pos: impl Fn(&App) -> Option<usize>) -> bool {
        let Some(p) = pos(self) else { return false };
        let find = |rows: &[u32]| rows.iter().position(|&r| r as usize == p);
        let mut idx = self.list_rows(tab).and_then(find);
        if idx.is_none() && !self.list_filter(tab).is_empty() {
            self.set_filter(tab, String::new());
            idx = self.list_rows(tab).and_then(find);
        }
        let Some(i) = idx else { return false };
        self.set_cursor(tab, Cursor::To(i))
    }

    fn list_rows(&self, tab: Tab) -> Option<&[u32]> {
        match tab {
            Tab::Datasets => Some(&self.dataset_list.rows),
            Tab::Jobs => Some(&self.job_list.rows),
            Tab::Models => Some(&self.model_list.rows),
            Tab::Notifications => Some(&self.notification_list.rows),
            _ => None,
        }
    }

    pub fn list_filter(&self, tab: Tab) -> &str {
        match tab {
            Tab::Datasets => &self.dataset_list.filter,
            Tab::Jobs => &self.job_list.filter,
            Tab::Models => &self.model_list.filter,
            Tab::Notifications => &self.notification_list.filter,
            _ => "",
        }
    }

    // ---- mouse -------------------------------------------------------------------------------

    fn click(&mut self, column: u16, row: u16) -> Vec<Effect> {
        let pos = ratatui::layout::Position { x: column, y: row };
        if let Some((_, tab)) = self
            .hits
            .tabs
            .iter()
            .find(|(r, _)| r.contains(pos))
            .cloned()
        {
            return self.go_tab(tab);
        }
        if let Some((area, tab, offset)) = self.hits.list
            && area.contains(pos)
        {
            let i = offset + (row - area.y) as usize;
            let was = match tab {
                Tab::Datasets => self.dataset_list.selected,
                Tab::Jobs => self.job_list.selected,
                Tab::Models => self.model_list.selected,
                Tab::Notifications => self.notification_list.selected,
                _ => usize::MAX,
            };
            if i >= self.list_rows(tab).map_or(0, |r| r.len()) {
                return Vec::new();
            }
            self.set_focus(tab, Focus::List);
            self.set_cursor(tab, Cursor::To(i));
            self.detail_scroll.insert(tab, 0);
            // A click on the selected row opens it.
            if was == i {
                return self.handle_tab_action(Action::Open);
            }
            if tab == Tab::Jobs {
                return self.ensure_job_detail();
            }
            return Vec::new();
        }
        if let Some(area) = self.hits.detail
            && area.contains(pos)
        {
            self.set_focus(self.tab, Focus::Detail);
        }
        Vec::new()
    }

    fn wheel(&mut self, column: u16, row: u16, delta: i32) -> Vec<Effect> {
        let pos = ratatui::layout::Position { x: column, y: row };
        let action = if delta < 0 { Action::Up } else { Action::Down };
        if let Some(area) = self.hits.detail
            && area.contains(pos)
        {
            let tab = self.tab;
            let prev = self.focus_of(tab);
            self.set_focus(tab, Focus::Detail);
            let fx = self.handle_tab_action(action.clone());
            let fx2 = self.handle_tab_action(action);
            self.set_focus(tab, prev);
            return fx.into_iter().chain(fx2).collect();
        }
        if let Some((area, tab, _)) = self.hits.list
            && area.contains(pos)
        {
            self.set_focus(tab, Focus::List);
            return self.handle_tab_action(action);
        }
        Vec::new()
    }

    // ---- overlays and input lines --------------------------------------------------------------

    fn handle_overlay(&mut self, action: Action) -> Vec<Effect> {
        let Some(overlay) = self.overlay.take() else {
            return Vec::new();
        };
        let key = match &action {
            Action::Input(k) => Some(*k),
            _ => None,
        };
        match overlay {
            Overlay::Help { scroll } => {
                let keep = match key.map(|k| k.code) {
                    Some(KeyCode::Char('j') | KeyCode::Down) => Some(scroll.saturating_add(1)),
                    Some(KeyCode::Char('k') | KeyCode::Up) => Some(scroll.saturating_sub(1)),
                    Some(KeyCode::PageDown) => Some(scroll.saturating_add(10)),
                    Some(KeyCode::PageUp) => Some(scroll.saturating_sub(10)),
                    _ => None,
                };
                if let Some(s) = keep {
                    self.overlay = Some(Overlay::Help { scroll: s });
                }
                Vec::new()
            }
            Overlay::Confirm {
                title,
                lines,
                on_yes,
            } => match key.map(|k| k.code) {
                Some(KeyCode::Char('y' | 'Y')) | Some(KeyCode::Enter) => self.confirmed(on_yes),
                Some(KeyCode::Char('n' | 'N' | 'q')) | Some(KeyCode::Esc) => {
                    self.notify_user("cancelled", Level::Info);
                    Vec::new()
                }
                _ => {
                    self.overlay = Some(Overlay::Confirm {
                        title,
                        lines,
                        on_yes,
                    });
                    Vec::new()
                }
            },
            Overlay::Prompt {
                title,
                mut input,
                kind,
                hint,
            } => {
                match action {
                    Action::Paste(text) => {
                        input.paste(&text);
                    }
                    Action::Input(k) => match k.code {
                        KeyCode::Esc => return Vec::new(),
                        KeyCode::Enter => return self.prompt_done(kind, input.text().to_string()),
                        KeyCode::Tab if matches!(kind, PromptKind::DownloadTo(_)) => {
                            // Completion of a folder needs a listing: open the browser in
                            // folder mode at what was typed.
                            let request = self.request_id();
                            let mut fb = FileBrowser::new(input.text(), request);
                            fb.folders_only = Some(kind.clone());
                            fb.complete_on_listing = true;
                            let dir = fb.dir_to_list();
                            self.overlay = Some(Overlay::Files(Box::new(fb)));
                            return vec![Effect::ListDir { request, dir }];
                        }
                        _ => {
                            input.key(k);
                        }
                    },
                    _ => {}
                }
                self.overlay = Some(Overlay::Prompt {
                    title,
                    input,
                    kind,
                    hint,
                });
                Vec::new()
            }
            Overlay::Files(mut fb) => {
                let out = fb.handle(action);
                match out {
                    files::FileOutcome::Stay(fx) => {
                        self.overlay = Some(Overlay::Files(fb));
                        fx
                    }
                    files::FileOutcome::Cancel => Vec::new(),
                    files::FileOutcome::Chosen(path) => match fb.folders_only.take() {
                        Some(PromptKind::DownloadTo(id)) => self.start_download_checked(id, path),
                        _ => self.add_dataset(path),
                    },
                }
            }
            Overlay::Pick {
                title,
                options,
                selected,
                target,
            } => {
                let n = options.len().max(1);
                let sel = match key.map(|k| k.code) {
                    Some(KeyCode::Char('j') | KeyCode::Down) => Some((selected + 1) % n),
                    Some(KeyCode::Char('k') | KeyCode::Up) => Some((selected + n - 1) % n),
                    Some(KeyCode::Enter) => {
                        return self.picked(target, selected);
                    }
                    Some(KeyCode::Esc | KeyCode::Char('q')) => return Vec::new(),
                    _ => Some(selected),
                };
                if let Some(selected) = sel {
                    self.overlay = Some(Overlay::Pick {
                        title,
                        options,
                        selected,
                        target,
                    });
                }
                Vec::new()
            }
        }
    }

    fn start_download_checked(&mut self, id: ArtifactId, to: PathBuf) -> Vec<Effect> {
        if to.as_os_str().is_empty() {
            self.notify_user("give a folder to download into", Level::Warning);
            return Vec::new();
        }
        self.start_download(id, to, false)
    }

    fn add_dataset(&mut self, path: PathBuf) -> Vec<Effect> {
        let request = self.request_id();
        let label = format!(
            "upload {}",
            one_line(
                &path
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default()
            )
        );
        self.tasks.insert(
            TaskKey::Upload(request),
            TaskInfo {
                label: label.clone(),
                done: 0,
                total: None,
            },
        );
        self.notify_user(format!("{label}…"), Level::Info);
        vec![Effect::AddDataset {
            request,
            path,
            name: None,
        }]
    }

    fn prompt_done(&mut self, kind: PromptKind, text: String) -> Vec<Effect> {
        let text = text.trim().to_string();
        match kind {
            PromptKind::Rename(id) => {
                if text.is_empty() {
                    self.notify_user("a name cannot be empty", Level::Warning);
                    return Vec::new();
                }
                vec![Effect::RenameDataset(id, text)]
            }
            PromptKind::Describe(id) => vec![Effect::DescribeDataset(id, text)],
            PromptKind::DownloadTo(id) => {
                let to = files::expand_home(&text);
                self.start_download_checked(id, to)
            }
        }
    }

    fn confirmed(&mut self, what: Confirmed) -> Vec<Effect> {
        match what {
            Confirmed::Quit => {
                self.quit = true;
                vec![Effect::Quit]
            }
            Confirmed::DeleteDataset(id) => {
                self.notify_user(format!("deleting {}…", self.dataset_name(id)), Level::Info);
                vec![Effect::DeleteDataset(id)]
            }
            Confirmed::CancelJob(id) => {
                self.notify_user(format!("cancelling job {}…", id.short()), Level::Info);
                vec![Effect::CancelJob(id)]
            }
            Confirmed::CreateJob { draft, over_budget } => {
                self.notify_user("creating the job…", Level::Info);
                vec![Effect::CreateJob {
                    draft,
                    confirm_over_budget: over_budget,
                }]
            }
            Confirmed::OverwriteDownload { id, to } => self.start_download(id, to, true),
        }
    }

    fn handle_bottom(&mut self, action: Action) -> Vec<Effect> {
        let Some(bottom) = self.bottom.take() else {
            return Vec::new();
        };
        match bottom {
            Bottom::Filter { mut input, tab } => {
                match action {
                    Action::Input(k) => match k.code {
                        KeyCode::Esc => {
                            self.set_filter(tab, String::new());
                            return Vec::new();
                        }
                        KeyCode::Enter => return Vec::new(),
                        KeyCode::Down | KeyCode::Up => {
                            // Move in the filtered list without leaving the filter.
                            let a = if k.code == KeyCode::Down {
                                Action::Down
                            } else {
                                Action::Up
                            };
                            self.move_list(tab, &a);
                        }
                        _ => {
                            if input.key(k) {
                                self.set_filter(tab, input.text().to_string());
                            }
                        }
                    },
                    Action::Paste(t) => {
                        input.paste(&t);
                        self.set_filter(tab, input.text().to_string());
                    }
                    _ => {}
                }
                self.bottom = Some(Bottom::Filter { input, tab });
                Vec::new()
            }
            Bottom::Command {
                mut input,
                completions,
                cycle,
                stem,
            } => {
                match action {
                    Action::Input(k) => match k.code {
                        KeyCode::Esc => return Vec::new(),
                        KeyCode::Enter => {
                            let line = input.text().to_string();
                            return self.run_command(&line);
                        }
                        KeyCode::Tab | KeyCode::BackTab => {
                            let back = k.code == KeyCode::BackTab;
                            let (stem, completions) = if cycle.is_some() {
                                (stem, completions)
                            } else {
                                let c = complete(input.text(), self);
                                (input.text().to_string(), c)
                            };
                            if completions.is_empty() {
                                self.bottom = Some(Bottom::Command {
                                    input,
                                    completions,
                                    cycle: None,
                                    stem,
                                });
                                return Vec::new();
                            }
                            let n = completions.len();
                            let next = match (cycle, back) {
                                (None, false) => 0,
                                (None, true) => n - 1,
                                (Some(i), false) => (i + 1) % n,
                                (Some(i), true) => (i + n - 1) % n,
                            };
                            let text = command::apply_completion(&stem, &completions[next]);
                            input.set(&text);
                            if n == 1 {
                                let c = complete(input.text(), self);
                                self.bottom = Some(Bottom::Command {
                                    input,
                                    completions: c,
                                    cycle: None,
                                    stem: String::new(),
                                });
                            } else {
                                self.bottom = Some(Bottom::Command {
                                    input,
                                    completions,
                                    cycle: Some(next),
                                    stem,
                                });
                            }
                            return Vec::new();
                        }
                        _ => {
                            if k.code == KeyCode::Backspace && input.text().is_empty() {
                                return Vec::new();
                            }
                            input.key(k);
                        }
                    },
                    Action::Paste(t) => {
                        input.paste(&t);
                    }
                    _ => {}
                }
                let c = complete(input.text(), self);
                self.bottom = Some(Bottom::Command {
                    input,
                    completions: c,
                    cycle: None,
                    stem: String::new(),
                });
                Vec::new()
            }
        }
    }

    fn update_completions(&mut self) {
        if let Some(Bottom::Command { input, .. }) = &self.bottom {
            let c = complete(input.text(), self);
            if let Some(Bottom::Command {
                completions, cycle, ..
            }) = &mut self.bottom
            {
                *completions = c;
                *cycle = None;
            }
        }
    }

    fn run_command(&mut self, line: &str) -> Vec<Effect> {
        match parse_command(line) {
            Err(e) => {
                self.notify_user(e, Level::Error);
                Vec::new()
            }
            Ok(cmd) => self.execute(cmd),
        }
    }

    /// Runs a parsed `:` command.
    pub fn execute(&mut self, cmd: Command) -> Vec<Effect> {
        match cmd {
            Command::Quit => self.ask_quit(),
            Command::Tab(t, arg) => {
                let mut fx = self.go_tab(t);
                match (t, arg) {
                    (Tab::Jobs, Some(status)) => self.set_filter(Tab::Jobs, status),
                    (Tab::Costs, Some(p)) => {
                        if let Some(p) = Period::from_name(&p) {
                            fx.extend(self.set_period(p));
                        }
                    }
                    (_, Some(f)) => self.set_filter(t, f),
                    (Tab::Jobs, None) => {}
                    _ => {}
                }
                fx
            }
            Command::Cancel(q) => match self.resolve_job(&q) {
                Ok(id) => {
                    let j = self.jobs.get(id).cloned();
                    match j {
                        Some(j) => self.confirm_cancel(&j),
                        None => Vec::new(),
                    }
                }
                Err(e) => {
                    self.notify_user(e, Level::Error);
                    Vec::new()
                }
            },
            Command::Retry(q) => match self.resolve_job(&q) {
                Ok(id) => {
                    self.select_in(Tab::Jobs, |a| a.jobs.position(id));
                    self.tab = Tab::Jobs;
                    self.jobs_action(Action::RetryJob)
                }
                Err(e) => {
                    self.notify_user(e, Level::Error);
                    Vec::new()
                }
            },
            Command::Theme(name) => match Theme::builtin(&name) {
                Some(t) => {
                    self.notify_user(format!("theme {}", t.name), Level::Info);
                    self.set_theme(t);
                    Vec::new()
                }
                None => vec![Effect::LoadTheme(name)],
            },
            Command::Help => {
                self.overlay = Some(Overlay::Help { scroll: 0 });
                Vec::new()
            }
            Command::Freeze => self.handle(Action::Freeze),
            Command::ReadAll => self.mark_read_local(None),
            Command::Reload => self.handle(Action::Refresh),
            Command::Add(path) => match path {
                Some(p) => self.add_dataset(files::expand_home(&p)),
                None => {
                    self.tab = Tab::Datasets;
                    self.datasets_action(Action::AddDataset)
                }
            },
        }
    }

    /// A job by id prefix (short ids as shown, or the full uuid).
    pub fn resolve_job(&self, q: &str) -> Result<JobId, String> {
        let q = q.trim().to_ascii_lowercase().replace('-', "");
        if q.is_empty() {
            return Err("give a job id (the first characters are enough)".into());
        }
        let matches: Vec<JobId> = self
            .jobs
            .items()
            .iter()
            .filter(|j| j.id.0.simple().to_string().starts_with(&q))
            .map(|j| j.id)
            .take(5)
            .collect();
        match matches.len() {
            0 => Err(format!("no job matches `{q}`")),
            1 => Ok(matches[0]),
            _ => Err(format!(
                "`{q}` matches several jobs: {}; give more characters",
                matches
                    .iter()
                    .map(|m| m.short())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    fn picked(&mut self, target: PickTarget, index: usize) -> Vec<Effect> {
        self.configure_picked(target, index)
    }

    // ---- engine events -----------------------------------------------------------------------

    /// Applies an engine event (or holds it while frozen).
    pub fn apply_event(&mut self, ev: EngineEvent) -> Vec<Effect> {
        if self.frozen {
            // Work in progress still shows; records wait.
            match &ev {
                EngineEvent::Progress(_) | EngineEvent::BackendHealth { .. } => {}
                _ => {
                    if self.held.len() >= MAX_HELD {
                        // Too much to replay: reload everything on resume instead.
                        self.held.clear();
                        self.held_overflow = true;
                    }
                    self.held.push(ev);
                    self.dirty = true;
                    return Vec::new();
                }
            }
        }
        self.dirty = true;
        match ev {
            EngineEvent::Dataset(d) => {
                let d = clean_arc(d, clean_dataset);
                if d.status != DatasetStatus::Validating {
                    self.tasks.remove(&TaskKey::Validation(d.id));
                    // "NAME uploaded; validating…" is out of date once the verdict is in.
                    let stale = format!("{} uploaded; validating…", d.name);
                    if self.message.as_ref().is_some_and(|m| m.text == stale) {
                        self.message = None;
                    }
                }
                if d.status != DatasetStatus::Uploading {
                    self.tasks.remove(&TaskKey::EngineUpload(d.id));
                }
                if d.deleted_at.is_some() {
                    if self.datasets.remove(d.id).is_some() {
                        self.dataset_list.dirty = true;
                        self.job_list.dirty = true;
                    }
                } else {
                    let changed = match self.datasets.upsert(d.clone()) {
                        Upsert::Inserted => true,
                        Upsert::Updated(old) => {
                            lists::dataset_view_changed(&old, &d, &self.dataset_list)
                        }
                    };
                    if changed && let Some(pos) = self.datasets.position(d.id) {
                        self.dataset_list.touch(pos);
                    }
                }
                self.configure.sync_datasets(&self.datasets);
                Vec::new()
            }
            EngineEvent::Job(j) => {
                let j = clean_arc(j, clean_job);
                let changed = match self.jobs.upsert(j.clone()) {
                    Upsert::Inserted => true,
                    Upsert::Updated(old) => lists::job_view_changed(&old, &j, &self.job_list),
                };
                if changed && let Some(pos) = self.jobs.position(j.id) {
                    self.job_list.touch(pos);
                }
                if j.status.is_terminal() {
                    self.costs_stale = true;
                }
                Vec::new()
            }
            EngineEvent::Metrics { job_id, points } => {
                if let Some(d) = self.details.get_mut(&job_id) {
                    d.series.insert(&points);
                }
                Vec::new()
            }
            EngineEvent::Artifact(a) => {
                let a = clean_arc(a, clean_artifact);
                if a.deleted_at.is_some() {
                    self.artifacts.remove(a.id);
                } else {
                    self.artifacts.upsert(a);
                }
                self.model_list.dirty = true;
                Vec::new()
            }
            EngineEvent::Cost(_) => {
                self.costs_stale = true;
                if self.tab == Tab::Costs && !self.costs_loading {
                    vec![self.load_costs()]
                } else {
                    Vec::new()
                }
            }
            EngineEvent::Notification(n) => {
                let n = clean_arc(n, clean_notification);
                let fresh = matches!(self.notifications.upsert(n.clone()), Upsert::Inserted);
                self.notification_list.dirty = true;
                self.recount_unread();
                if fresh && !n.read && n.priority >= Priority::High {
                    self.toasts.push(Toast {
                        title: n.title.clone(),
                        message: n.message.clone(),
                        priority: n.priority,
                        until: self.now + chrono::Duration::seconds(TOAST_SECS),
                    });
                    if self.toasts.len() > 3 {
                        self.toasts.remove(0);
                    }
                }
                if matches!(
                    n.kind,
                    NotificationType::BudgetWarning | NotificationType::BudgetExceeded
                ) {
                    self.costs_stale = true;
                }
                Vec::new()
            }
            EngineEvent::Checkpoint(c) => {
                if let Some(d) = self.details.get_mut(&c.job_id) {
                    d.push_log(format!(
                        "[checkpoint] step {} epoch {:.2}{}",
                        c.step,
                        c.epoch,
                        c.loss.map(|l| format!(" loss {l:.4}")).unwrap_or_default()
                    ));
                }
                Vec::new()
            }
            EngineEvent::JobLog { job_id, line } => {
                if let Some(d) = self.details.get_mut(&job_id) {
                    d.push_log(crate::sanitize::clean(&line).into_owned());
                }
                Vec::new()
            }
            EngineEvent::Progress(p) => {
                let key = match &p.task {
                    ProgressTask::Upload(id) => TaskKey::EngineUpload(*id),
                    ProgressTask::Validation(id) => TaskKey::Validation(*id),
                    ProgressTask::Download(id) => TaskKey::EngineDownload(*id),
                    ProgressTask::TrainerEnvironment => TaskKey::TrainerEnvironment,
                };
                // Our own uploads and downloads already show with their own progress.
                let own = match &p.task {
                    ProgressTask::Download(id) => self.downloads.values().any(|(a, _)| a == id),
                    ProgressTask::Upload(_) => {
                        self.tasks.keys().any(|k| matches!(k, TaskKey::Upload(_)))
                    }
                    _ => false,
                };
                let finished = p.total.is_some_and(|t| p.done >= t && t > 0);
                if own || finished {
                    self.tasks.remove(&key);
                } else {
                    let label = match &p.task {
                        ProgressTask::Upload(id) => format!("upload {}", self.dataset_name(*id)),
                        ProgressTask::Validation(id) => {
                            format!("validating {}", self.dataset_name(*id))
                        }
                        ProgressTask::Download(id) => format!("download {}", id.short()),
                        ProgressTask::TrainerEnvironment => "trainer environment".to_string(),
                    };
                    let msg = one_line(&p.message);
                    let label = if msg.is_empty() {
                        label
                    } else {
                        format!("{label}: {msg}")
                    };
                    self.tasks.insert(
                        key,
                        TaskInfo {
                            label,
                            done: p.done,
                            total: p.total,
                        },
                    );
                }
                Vec::new()
            }
            EngineEvent::BackendHealth { backend, reachable } => {
                self.health
                    .insert(one_line(&backend).into_owned(), reachable);
                Vec::new()
            }
        }
    }

    /// The event stream lagged: events were lost, so everything is reloaded.
    pub fn events_lost(&mut self, n: u64) -> Vec<Effect> {
        tracing::warn!("event stream lagged by {n}; reloading");
        self.costs_stale = true;
        vec![Effect::Reload]
    }

    // ---- outcomes ----------------------------------------------------------------------------

    /// Applies the answer to an effect.
    pub fn apply_outcome(&mut self, o: Outcome) -> Vec<Effect> {
        self.dirty = true;
        match o {
            Outcome::Snapshot(s) => {
                self.details.clear();
                self.detail_order.clear();
                self.load_snapshot(*s);
                let mut fx = Vec::new();
                if self.tab == Tab::Jobs {
                    fx.extend(self.ensure_job_detail());
                }
                if self.tab == Tab::Costs {
                    fx.push(self.load_costs());
                }
                fx
            }
            Outcome::Theme(Ok(t)) => {
                self.notify_user(format!("theme {}", t.name), Level::Info);
                self.set_theme(t);
                Vec::new()
            }
            Outcome::Theme(Err(e)) => {
                self.notify_user(e, Level::Error);
                Vec::new()
            }
            Outcome::NativeFile { request, path } => {
                let ours =
                    matches!(&self.overlay, Some(Overlay::Files(fb)) if fb.request == request);
                match path {
                    Some(path) if ours => {
                        self.overlay = None;
                        self.add_dataset(path)
                    }
                    _ => Vec::new(),
                }
            }
            Outcome::DirListing {
                request,
                dir,
                entries,
            } => match &mut self.overlay {
                Some(Overlay::Files(fb)) if fb.request == request => fb.set_listing(dir, entries),
                _ => Vec::new(),
            },
            Outcome::Progress {
                task,
                label,
                done,
                total,
            } => {
                if self.tasks.contains_key(&task) {
                    self.tasks.insert(
                        task,
                        TaskInfo {
                            label: one_line(&label).into_owned(),
                            done,
                            total: Some(total),
                        },
                    );
                }
                Vec::new()
            }
            Outcome::DatasetAdded { request, result } => {
                self.tasks.remove(&TaskKey::Upload(request));
                match result {
                    Ok(d) => {
                        let d = Arc::new(clean_dataset(d));
                        self.notify_user(
                            format!("{} uploaded; validating…", d.name),
                            Level::Success,
                        );
                        let id = d.id;
                        self.upsert_dataset_if_newer(d);
                        self.touch_dataset(id);
                        self.refresh_views();
                        self.select_in(Tab::Datasets, |a| a.datasets.position(id));
                    }
                    Err(e) => self.notify_user(format!("upload failed: {e}"), Level::Error),
                }
                Vec::new()
            }
            Outcome::DatasetChanged { what, result } => {
                match result {
                    Ok(d) => {
                        let d = Arc::new(clean_dataset(d));
                        self.notify_user(format!("{} {what}", d.name), Level::Success);
                        if what != "validated" {
                            self.tasks.remove(&TaskKey::Validation(d.id));
                        }
                        if d.deleted_at.is_some() {
                            self.datasets.remove(d.id);
                            self.dataset_list.dirty = true;
                        } else {
                            let id = d.id;
                            self.upsert_dataset_if_newer(d);
                            self.touch_dataset(id);
                        }
                        self.configure.sync_datasets(&self.datasets);
                    }
                    Err(e) => {
                        self.tasks
                            .retain(|k, _| !matches!(k, TaskKey::Validation(_)));
                        self.notify_user(format!("could not {}: {e}", verb(what)), Level::Error)
                    }
                }
                Vec::new()
            }
            Outcome::JobDetail {
                job_id,
                metrics,
                log,
            } => {
                let d = self.details.entry(job_id).or_default();
                d.loading = false;
                match metrics {
                    Ok(points) => {
                        let mut loaded = crate::series::Series::from_points(&points);
                        loaded.merge(&d.series);
                        d.series = loaded;
                    }
                    Err(e) => d.load_error = Some(one_line(&e).into_owned()),
                }
                match log {
                    Ok(lines) => {
                        let live: Vec<String> = d.log.drain(..).collect();
                        for l in lines {
                            d.push_log(crate::sanitize::clean(&l).into_owned());
                        }
                        for l in live {
                            d.push_log(l);
                        }
                    }
                    Err(e) => d.push_log(format!("(log unavailable: {})", one_line(&e))),
                }
                Vec::new()
            }
            Outcome::Estimate { seq, result } => {
                self.configure.estimate_done(seq, result);
                Vec::new()
            }
            Outcome::JobCreated(result) => {
                match result {
                    Ok(j) => {
                        let j = Arc::new(clean_job(j));
                        let id = j.id;
                        self.notify_user(
                            format!(
                                "job {} queued (estimated {})",
                                j.id.short(),
                                crate::format::money(j.estimated_cost)
                            ),
                            Level::Success,
                        );
                        self.upsert_job_if_newer(j);
                        self.touch_job(id);
                        self.refresh_views();
                        self.select_in(Tab::Jobs, |a| a.jobs.position(id));
                        self.set_focus(Tab::Jobs, Focus::Detail);
                        return self.go_tab(Tab::Jobs);
                    }
                    Err(e) => {
                        self.notify_user(format!("could not create the job: {e}"), Level::Error)
                    }
                }
                Vec::new()
            }
            Outcome::JobChanged { what, result } => {
                match result {
                    Ok(j) => {
                        let j = Arc::new(clean_job(j));
                        self.notify_user(format!("job {} {what}", j.id.short()), Level::Success);
                        let id = j.id;
                        let new = self.jobs.get(id).is_none();
                        self.upsert_job_if_newer(j);
                        self.touch_job(id);
                        if new {
                            self.refresh_views();
                            self.select_in(Tab::Jobs, |a| a.jobs.position(id));
                            return self.ensure_job_detail();
                        }
                    }
                    Err(e) => self.notify_user(
                        format!("could not {} the job: {e}", verb(what)),
                        Level::Error,
                    ),
                }
                Vec::new()
            }
            Outcome::Downloaded {
                request,
                id,
                to,
                result,
            } => {
                self.tasks.remove(&TaskKey::Download(request));
                self.downloads.remove(&request);
                match result {
                    Ok(files) => self.notify_user(
                        format!(
                            "downloaded {} files to {}",
                            files.len(),
                            one_line(&to.display().to_string())
                        ),
                        Level::Success,
                    ),
                    Err(e) if e.contains("already exist") => {
                        self.overlay = Some(Overlay::Confirm {
                            title: "Overwrite?".into(),
                            lines: vec![one_line(&e).into_owned(), "Overwrite those files?".into()],
                            on_yes: Confirmed::OverwriteDownload { id, to },
                        });
                    }
                    Err(e) => self.notify_user(format!("download failed: {e}"), Level::Error),
                }
                Vec::new()
            }
            Outcome::Costs(result) => {
                self.costs_loading = false;
                match result {
                    Ok(c) => {
                        if c.period == self.period {
                            self.costs = Some(clean_costs(c));
                            self.costs_stale = false;
                        } else {
                            // The user switched period meanwhile.
                            return vec![self.load_costs()];
                        }
                    }
                    Err(e) => {
                        self.costs_stale = false;
                        self.notify_user(format!("costs: {e}"), Level::Error)
                    }
                }
                Vec::new()
            }
            Outcome::MarkedRead(result) => {
                if let Err(e) = result {
                    self.notify_user(format!("could not mark read: {e}"), Level::Error);
                }
                Vec::new()
            }
        }
    }
}

fn verb(what: &str) -> &str {
    match what {
        "renamed" => "rename",
        "described" => "describe",
        "validated" => "validate",
        "deleted" => "delete",
        "cancelled" => "cancel",
        "retried" => "retry",
        other => other,
    }
}

fn clean_costs(mut c: CostsView) -> CostsView {
    for (_, label, _) in &mut c.by_job {
        crate::sanitize::clean_in_place(label);
    }
    c
}

/// Key helpers for tests and the runtime.
pub fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}
