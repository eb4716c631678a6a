//! The headless app: the [`Shared`] state, the six tab [`Component`]s, and the one place
//! actions, engine events and effect outcomes come in and are routed. Nothing here does I/O;
//! what needs the engine is returned as [`Effect`]s for the runtime to run.
//!
//! An action goes to an open overlay, else to the input line, else to the shown tab; what the
//! tab ignores is one of the global keys below. A tab that needs another tab says so with a
//! [`Request`], which [`App::handle`] carries out once the tab has returned.

mod bottom;
mod command;
mod events;
mod mouse;
mod overlay;

pub use crate::context::{
    Bottom, Cause, Confirmed, FileBrowser, Hits, Message, Overlay, PickTarget, PromptKind,
    Settings, Shared, TaskInfo, Toast, files, lists,
};
pub use crate::tabs::Focus;
pub use crate::tabs::configure::{ConfigureTab, FormRow};
pub use command::{Command, complete, parse_command};

use crate::action::{Action, Period, Tab};
use crate::effect::*;
use crate::input::Input;
use crate::keymap::Keymap;
use crate::state::*;
use crate::tabs::costs::CostsTab;
use crate::tabs::datasets::DatasetsTab;
use crate::tabs::jobs::JobsTab;
use crate::tabs::models::ModelsTab;
use crate::tabs::notifications::NotificationsTab;
use crate::tabs::{Component, Handled, Request};
use crate::theme::Theme;
use brightrun_api::config::Config;
use brightrun_api::domain::*;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// How long a status-bar message stays.
const MESSAGE_SECS: i64 = 8;

/// The list tabs. (Configure sits on the app itself, where callers have always found its
/// form: `app.configure`.)
#[derive(Clone, Debug, Default)]
pub struct Tabs {
    pub datasets: DatasetsTab,
    pub jobs: JobsTab,
    pub models: ModelsTab,
    pub costs: CostsTab,
    pub notifications: NotificationsTab,
}

/// The dashboard without a terminal: the runtime feeds it keys, events and answers and draws
/// it; tests do the same by hand.
pub struct App {
    /// What every tab may read; `app.datasets`, `app.overlay`… reach it through `Deref`.
    pub shared: Shared,
    pub configure: ConfigureTab,
    pub tabs: Tabs,
}

/// The shared state reads as the app's own (`app.tab`, `app.jobs`): that is how the runtime
/// and the tests have always used it, and it keeps tab state out of sight of them.
impl std::ops::Deref for App {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.shared
    }
}

impl std::ops::DerefMut for App {
    fn deref_mut(&mut self) -> &mut Shared {
        &mut self.shared
    }
}

impl App {
    /// A new app over a snapshot of the engine's data. `config` is the engine's config (themes,
    /// keys, tick, presets, GPUs, budget).
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
        let now = brightrun_api::domain::now();
        let mut app = App {
            configure: ConfigureTab::new(&settings),
            tabs: Tabs::default(),
            shared: Shared::new(theme, keymap, settings, themes, now),
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
        let sh = &mut self.shared;
        sh.datasets = Collection::from_vec(
            s.datasets
                .into_iter()
                .filter(|d| d.deleted_at.is_none())
                .map(clean_dataset)
                .collect(),
        );
        sh.jobs = Collection::from_vec(s.jobs.into_iter().map(clean_job).collect());
        sh.sweeps = Collection::from_vec(s.sweeps.into_iter().map(clean_sweep).collect());
        sh.index_sweeps();
        sh.artifacts = Collection::from_vec(
            s.artifacts
                .into_iter()
                .filter(|a| a.deleted_at.is_none())
                .map(clean_artifact)
                .collect(),
        );
        sh.notifications = Collection::from_vec(
            s.notifications
                .into_iter()
                .map(clean_notification)
                .collect(),
        );
        if let Some(c) = s.costs {
            self.tabs.costs.set_view(c);
        }
        if !s.themes.is_empty() {
            sh.themes = s.themes;
        }
        sh.dataset_list.dirty = true;
        sh.job_list.dirty = true;
        sh.model_list.dirty = true;
        sh.notification_list.dirty = true;
        sh.recount_unread();
        sh.refresh_views();
        self.configure.sync_datasets(&sh.datasets);
        self.configure.sync_models(&sh.artifacts);
        sh.dirty = true;
    }

    /// Another period on the Costs tab (loads it).
    pub fn set_period(&mut self, p: Period) -> Vec<Effect> {
        self.tabs.costs.set_period(p)
    }

    /// The component for `tab`, with the shared state it works on (borrowed apart).
    pub(crate) fn component_mut(&mut self, tab: Tab) -> (&mut dyn Component, &mut Shared) {
        let c: &mut dyn Component = match tab {
            Tab::Datasets => &mut self.tabs.datasets,
            Tab::Configure => &mut self.configure,
            Tab::Jobs => &mut self.tabs.jobs,
            Tab::Models => &mut self.tabs.models,
            Tab::Costs => &mut self.tabs.costs,
            Tab::Notifications => &mut self.tabs.notifications,
        };
        (c, &mut self.shared)
    }

    /// The component for `tab`, to draw it.
    pub(crate) fn component(&self, tab: Tab) -> &dyn Component {
        match tab {
            Tab::Datasets => &self.tabs.datasets,
            Tab::Configure => &self.configure,
            Tab::Jobs => &self.tabs.jobs,
            Tab::Models => &self.tabs.models,
            Tab::Costs => &self.tabs.costs,
            Tab::Notifications => &self.tabs.notifications,
        }
    }

    // ---- ticks -----------------------------------------------------------------------------

    /// The slow tick: expires messages and toasts, and redraws clocks and ETAs.
    pub fn tick(&mut self, now: Timestamp) -> Vec<Effect> {
        // Frozen, the screen holds still: the clocks it shows (ages, elapsed, ETA, running
        // cost) stop with the data. Messages and toasts still expire by the real clock.
        if !self.frozen {
            self.now = now;
        }
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
        let (tab, shared) = self.component_mut(self.shared.tab);
        tab.tick(shared)
    }

    // ---- keys --------------------------------------------------------------------------------

    /// A key press: to the focused input if one is open, else through the keymap.
    pub fn handle_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if key.kind == crossterm::event::KeyEventKind::Release {
            return Vec::new();
        }
        if self.overlay.is_some()
            || self.bottom.is_some()
            || self.configure.captures_input()
            || self.component(self.tab).captures_input()
        {
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
        match self.handle_in_tab(&action) {
            Handled::Consumed(fx) => fx,
            Handled::Ignored => self.handle_global(action),
        }
    }

    /// Gives the action to the shown tab, then carries out what it requested.
    fn handle_in_tab(&mut self, action: &Action) -> Handled {
        let (tab, shared) = self.component_mut(self.shared.tab);
        match tab.handle(action, shared) {
            Handled::Consumed(mut fx) => {
                fx.extend(self.run_requests());
                Handled::Consumed(fx)
            }
            Handled::Ignored => Handled::Ignored,
        }
    }

    /// The shown tab's answer to an action, used or not (mouse clicks and the command line
    /// send tab actions this way).
    pub(crate) fn handle_tab_action(&mut self, action: Action) -> Vec<Effect> {
        self.handle_in_tab(&action).effects()
    }

    /// What tabs asked for while handling an action.
    fn run_requests(&mut self) -> Vec<Effect> {
        let mut fx = Vec::new();
        for r in std::mem::take(&mut self.requests) {
            match r {
                Request::Jump(link) => fx.extend(self.jump(link)),
                Request::Train(id) => {
                    self.tab = Tab::Configure;
                    fx.extend(self.configure.train_on(id));
                }
                Request::PickInspectModel { dataset, current } => {
                    let current = current.unwrap_or_else(|| {
                        self.configure.inspect_defaults(&self.shared.settings).0
                    });
                    let title = format!("Inspect {} with base model", self.dataset_name(dataset));
                    self.shared.overlay = Some(self.configure.base_model_picker(
                        &current,
                        &title,
                        PickTarget::InspectModel(dataset),
                    ));
                }
            }
        }
        fx
    }

    /// The keys that mean the same on every tab.
    fn handle_global(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Input(key) => {
                // A key reached here with no input open: route it through the keymap.
                match self.keymap.lookup(self.tab, &key) {
                    Some(a) => self.handle(a),
                    None => Vec::new(),
                }
            }
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
                if self.tab == Tab::Costs {
                    self.notify_user("this view has no list to filter", Level::Info);
                    return Vec::new();
                }
                let current = self.list_filter(self.tab).to_string();
                let mut input = Input::new(&current);
                input.set_placeholder(if self.tab == Tab::Configure {
                    "type a field's name to go to it, enter keeps, esc closes"
                } else {
                    "type to filter, enter keeps, esc clears"
                });
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
                self.tabs.costs.stale = true;
                vec![Effect::Reload]
            }
            Action::Click { column, row } => self.click(column, row),
            Action::Scroll { column, row, delta } => self.wheel(column, row, delta),
            _ => Vec::new(),
        }
    }

    pub fn go_tab(&mut self, tab: Tab) -> Vec<Effect> {
        // What the status bar said about the view being left (a hint, a warning, an error
        // such as "could not clean …") has no cause on the next one. An answer to work still
        // in flight that arrives later is said on the view shown then.
        if let Some(m) = &self.message
            && m.tab != tab
        {
            self.message = None;
        }
        self.tab = tab;
        let (c, shared) = self.component_mut(tab);
        c.shown(shared)
    }

    /// Jumps to the item a notification (or a job) links to.
    pub fn jump(&mut self, link: Link) -> Vec<Effect> {
        self.refresh_views();
        let (tab, found, missing) = match link {
            Link::Dataset(id) => (
                Tab::Datasets,
                self.select_in(Tab::Datasets, |s| s.datasets.position(id)),
                format!(
                    "dataset {} is not in the list (deleted or filtered)",
                    id.short()
                ),
            ),
            Link::Job(id) => (
                Tab::Jobs,
                self.select_in(Tab::Jobs, |s| s.jobs.position(id)),
                format!("job {} is not in the list", id.short()),
            ),
            Link::Artifact(id) => (
                Tab::Models,
                self.select_in(Tab::Models, |s| s.artifacts.position(id)),
                format!("model {} is not in the list", id.short()),
            ),
            Link::Costs => return self.go_tab(Tab::Costs),
        };
        // A job or a model opens in its detail; a dataset shows in its list (out of the
        // Inspect view).
        if found && tab == Tab::Datasets {
            self.tabs.datasets.close_inspect();
        }
        if found && tab != Tab::Datasets {
            self.set_focus(tab, Focus::Detail);
        }
        let fx = self.go_tab(tab);
        if !found {
            self.notify_user(missing, Level::Warning);
        }
        fx
    }

    /// The event stream lagged: events were lost, so everything is reloaded.
    pub fn events_lost(&mut self, n: u64) -> Vec<Effect> {
        tracing::warn!("event stream lagged by {n}; reloading");
        self.tabs.costs.stale = true;
        vec![Effect::Reload]
    }

    /// Gives every tab an engine event the shared records already took in.
    fn route_event(&mut self, ev: &brightrun_api::events::EngineEvent) -> Vec<Effect> {
        let mut fx = Vec::new();
        for tab in Tab::ALL {
            let (c, shared) = self.component_mut(tab);
            fx.extend(c.on_event(ev, shared));
        }
        fx
    }
}

/// Key helpers for tests and the runtime.
pub fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}
