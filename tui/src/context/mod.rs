//! What the tabs share and the app routes (outside `app/`, so the tabs depend on this
//! context, not on the app that owns it): the engine's records and the list views over them,
//! settings, the status bar, toasts, background work, the overlay and the input line. A tab
//! gets it as `&mut Shared` while it handles an action, and as `&Shared` while it draws.

pub mod export;
pub mod files;
pub mod lists;
mod overlay;
pub mod retry;
pub mod search;
pub mod sweeps;

pub use export::ExportDialog;
pub use files::FileBrowser;
pub use overlay::{Bottom, Confirmed, Overlay, PickTarget, PromptKind, pick_visible};
pub use retry::RetryDialog;

use crate::action::Tab;
use crate::effect::*;
use crate::keymap::Keymap;
use crate::sanitize::one_line;
use crate::state::*;
use crate::tabs::Request;
use crate::theme::Theme;
use brightrun_api::config::Config;
use brightrun_api::domain::*;
use brightrun_api::events::EngineEvent;
use brightrun_api::ids::*;
use ratatui::layout::Rect;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

/// Job histories kept loaded besides active jobs'.
const KEEP_DETAILS: usize = 8;

/// A message in the status bar.
#[derive(Clone, Debug)]
pub struct Message {
    pub text: String,
    pub level: Level,
    pub at: Timestamp,
    /// The tab it was said on: a hint or warning about one view goes when another is shown.
    pub tab: Tab,
    /// What it is about, when fixing that should clear it: the view that said it clears it
    /// by this, never by matching its text.
    pub cause: Option<Cause>,
}

/// What a status message is about (see [`Message::cause`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// A problem with a value of the Configure form.
    ConfigureForm,
    /// A sweep's plan being asked for (its answer clears the message).
    SweepPlan,
}

/// Where a list's selection goes.
/// Where a list's selection goes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Cursor {
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

/// Screen areas from the last layout pass, for mouse clicks.
#[derive(Clone, Debug, Default)]
pub struct Hits {
    pub tabs: Vec<(Rect, Tab)>,
    /// The rows area of the list on screen and the list's offset.
    pub list: Option<(Rect, Tab, usize)>,
    pub detail: Option<Rect>,
}

/// Settings the app needs from the engine's config.
#[derive(Clone, Debug)]
pub struct Settings {
    pub config: Config,
    /// The engine's catalog, when the app runs against an engine.
    pub catalog: Option<brightrun_api::Catalog>,
    /// The engine's address when attached (empty when embedded).
    pub connection: String,
    /// Attached and the connection is down.
    pub reconnecting: bool,
    pub profile: String,
    pub backends: Vec<String>,
    pub storage: String,
    pub tick_millis: u64,
}

/// The state more than one tab (or the app around them) reads or changes.
pub struct Shared {
    /// How far the help overlay can scroll at the last draw (its keys clamp to it).
    pub help_max_scroll: std::cell::Cell<u16>,
    pub theme: Theme,
    pub keymap: Keymap,
    pub settings: Settings,
    pub tab: Tab,
    pub now: Timestamp,

    pub datasets: Collection<Dataset>,
    pub jobs: Collection<TrainingJob>,
    pub artifacts: Collection<ModelArtifact>,
    pub notifications: Collection<Notification>,
    /// Hyperparameter sweeps: the Jobs list groups their jobs under a header row each.
    pub sweeps: Collection<Sweep>,
    /// The sweep each job runs for (from the sweeps' runs).
    pub(crate) sweep_of: HashMap<JobId, SweepId>,
    /// Sweep header rows in the Jobs list (its title counts jobs, not them).
    pub job_groups: usize,
    /// The sweep whose header row is selected in the Jobs list: the selection follows it
    /// when the list regroups.
    pub(crate) selected_sweep_key: Option<SweepId>,
    /// The list views are shared with the command line (`:jobs running`), jumps from
    /// notifications and the answers that select what they created.
    pub dataset_list: ListView<DatasetId>,
    pub job_list: ListView<JobId>,
    pub model_list: ListView<ArtifactId>,
    /// The Models list's exports shown under their adapter (by collection position), and
    /// whether each is its adapter's last (kept with the rows: see `lists`).
    pub(crate) model_tree: HashMap<u32, bool>,
    pub notification_list: ListView<NotificationId>,
    /// What the Jobs filter searches, kept ready for the next keystroke.
    pub(crate) job_search: search::JobSearch,
    /// Loaded job histories: fed by engine events whichever tab is shown.
    pub details: HashMap<JobId, JobDetail>,
    pub(crate) detail_order: VecDeque<JobId>,

    pub overlay: Option<Overlay>,
    pub bottom: Option<Bottom>,
    pub frozen: bool,
    pub held: Vec<EngineEvent>,
    pub(crate) held_overflow: bool,
    pub toasts: Vec<Toast>,
    pub message: Option<Message>,
    pub tasks: BTreeMap<TaskKey, TaskInfo>,
    pub health: BTreeMap<String, bool>,
    /// The Postgres mirror's last status (none while it is off or not yet asked).
    pub mirror: Option<brightrun_api::mirror::MirrorStatus>,
    pub unread: usize,
    pub themes: Vec<String>,
    pub hits: Hits,
    /// Download requests in flight: request → (artifact, folder).
    pub downloads: HashMap<u64, (ArtifactId, PathBuf)>,
    /// What tabs asked of the app while handling an action (the app carries them out).
    pub(crate) requests: Vec<Request>,
    pub(crate) dirty: bool,
    pub(crate) quit: bool,
    pub(crate) next_request: u64,
}

impl Shared {
    /// Empty records: [`App::new`](crate::app::App::new) loads its snapshot next.
    pub(crate) fn new(
        theme: Theme,
        keymap: Keymap,
        settings: Settings,
        themes: Vec<String>,
        now: Timestamp,
    ) -> Self {
        Shared {
            help_max_scroll: Default::default(),
            theme,
            keymap,
            settings,
            tab: Tab::Datasets,
            now,
            datasets: Collection::default(),
            jobs: Collection::default(),
            artifacts: Collection::default(),
            notifications: Collection::default(),
            sweeps: Collection::default(),
            sweep_of: HashMap::new(),
            job_groups: 0,
            selected_sweep_key: None,
            dataset_list: ListView::new(lists::DATASET_CREATED, true),
            job_list: ListView::new(lists::JOB_CREATED, true),
            model_list: ListView::new(lists::MODEL_CREATED, true),
            model_tree: HashMap::new(),
            notification_list: ListView::new(0, true),
            job_search: Default::default(),
            details: HashMap::new(),
            detail_order: Default::default(),
            overlay: None,
            bottom: None,
            frozen: false,
            held: Vec::new(),
            held_overflow: false,
            toasts: Vec::new(),
            message: None,
            tasks: BTreeMap::new(),
            health: BTreeMap::new(),
            mirror: None,
            unread: 0,
            themes,
            hits: Hits::default(),
            downloads: HashMap::new(),
            requests: Vec::new(),
            dirty: true,
            quit: false,
            next_request: 1,
        }
    }

    /// Shows (or clears) a lost connection to an attached engine in the status bar.
    pub fn set_reconnecting(&mut self, lost: bool) {
        if self.settings.reconnecting != lost {
            self.settings.reconnecting = lost;
            self.mark_dirty();
        }
    }

    /// The last health verdict on `name` (a backend, or the object store), as far as it is
    /// known now: while the connection to the engine is lost, nothing is (the verdicts are
    /// from before the drop, and the engine may be the thing that is down).
    pub fn health_now(&self, name: &str) -> Option<bool> {
        if self.settings.reconnecting {
            None
        } else {
            self.health.get(name).copied()
        }
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
    pub(crate) fn upsert_dataset_if_newer(&mut self, d: Arc<Dataset>) {
        if self
            .datasets
            .get(d.id)
            .is_none_or(|old| old.updated_at <= d.updated_at)
        {
            self.datasets.upsert(d);
        }
    }

    pub(crate) fn upsert_job_if_newer(&mut self, j: Arc<TrainingJob>) {
        if self
            .jobs
            .get(j.id)
            .is_none_or(|old| old.updated_at <= j.updated_at)
        {
            self.jobs.upsert(j);
        }
    }

    pub(crate) fn touch_dataset(&mut self, id: DatasetId) {
        if let Some(pos) = self.datasets.position(id) {
            self.dataset_list.touch(pos);
        }
    }

    pub(crate) fn touch_job(&mut self, id: JobId) {
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

    pub(crate) fn request_id(&mut self) -> u64 {
        let r = self.next_request;
        self.next_request += 1;
        r
    }

    pub fn notify_user(&mut self, text: impl Into<String>, level: Level) {
        self.say(text.into(), level, None);
    }

    /// A message about `cause`, which the view that said it clears once the cause is gone.
    pub fn notify_about(&mut self, cause: Cause, text: impl Into<String>, level: Level) {
        self.say(text.into(), level, Some(cause));
    }

    fn say(&mut self, text: String, level: Level, cause: Option<Cause>) {
        self.message = Some(Message {
            text: one_line(&text).into_owned(),
            level,
            at: self.now,
            tab: self.tab,
            cause,
        });
        self.dirty = true;
    }

    pub(crate) fn ask_quit(&mut self) -> Vec<Effect> {
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

    /// Moves the selection of `tab`'s list and remembers the selected record's key, so the
    /// selection follows the record when the list re-sorts. False for tabs without a list.
    pub(crate) fn set_cursor(&mut self, tab: Tab, to: Cursor) -> bool {
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
                self.sync_job_cursor();
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

    pub(crate) fn list_page(&self, tab: Tab) -> usize {
        match tab {
            Tab::Datasets => self.dataset_list.page,
            Tab::Jobs => self.job_list.page,
            Tab::Models => self.model_list.page,
            Tab::Notifications => self.notification_list.page,
            _ => 10,
        }
        .max(1)
    }

    pub fn selected_dataset(&self) -> Option<&Arc<Dataset>> {
        self.dataset_list
            .selected_item()
            .map(|i| self.datasets.at(i))
    }

    pub(crate) fn nothing_selected(&mut self) -> Vec<Effect> {
        self.notify_user("nothing selected", Level::Info);
        Vec::new()
    }

    pub(crate) fn open_file_browser(&mut self, start: &str) -> Vec<Effect> {
        let request = self.request_id();
        let fb = FileBrowser::new(start, request);
        let dir = fb.dir_to_list();
        self.overlay = Some(Overlay::Files(Box::new(fb)));
        vec![Effect::ListDir { request, dir }]
    }

    pub fn selected_job(&self) -> Option<&Arc<TrainingJob>> {
        self.job_list.selected_item().map(|i| self.jobs.at(i))
    }

    /// Loads the selected job's history the first time the monitor shows it.
    pub(crate) fn ensure_job_detail(&mut self) -> Vec<Effect> {
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
    pub(crate) fn evict_details(&mut self, keep: JobId) {
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

    pub(crate) fn confirm_cancel(&mut self, j: &TrainingJob) -> Vec<Effect> {
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

    pub fn selected_artifact(&self) -> Option<&Arc<ModelArtifact>> {
        self.model_list
            .selected_item()
            .map(|i| self.artifacts.at(i))
    }

    pub(crate) fn start_download(
        &mut self,
        id: ArtifactId,
        to: PathBuf,
        force: bool,
    ) -> Vec<Effect> {
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

    pub fn selected_notification(&self) -> Option<&Arc<Notification>> {
        self.notification_list
            .selected_item()
            .map(|i| self.notifications.at(i))
    }

    /// Marks read here at once (the engine's event confirms it) and asks the engine to.
    pub(crate) fn mark_read_local(&mut self, id: Option<NotificationId>) -> Vec<Effect> {
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

    pub(crate) fn recount_unread(&mut self) {
        self.unread = self
            .notifications
            .items()
            .iter()
            .filter(|n| !n.read)
            .count();
    }

    /// Selects the row showing collection position `pos` in a tab's list, clearing a filter
    /// that hides it. Returns whether it is there.
    pub(crate) fn select_in(&mut self, tab: Tab, pos: impl Fn(&Shared) -> Option<usize>) -> bool {
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

    pub(crate) fn list_rows(&self, tab: Tab) -> Option<&[u32]> {
        match tab {
            Tab::Datasets => Some(&self.dataset_list.rows),
            Tab::Jobs => Some(&self.job_list.rows),
            Tab::Models => Some(&self.model_list.rows),
            Tab::Notifications => Some(&self.notification_list.rows),
            _ => None,
        }
    }

    /// The selected record of `tab`'s list, as text (for "has the selection moved?").
    pub fn selected_key_text(&self, tab: Tab) -> Option<String> {
        match tab {
            Tab::Datasets => self.selected_dataset().map(|d| format!("{:?}", d.id)),
            Tab::Jobs => self
                .selected_job()
                .map(|j| format!("{:?}", j.id))
                .or_else(|| self.selected_sweep().map(|w| format!("{:?}", w.id))),
            Tab::Models => self.selected_artifact().map(|a| format!("{:?}", a.id)),
            Tab::Notifications => self.selected_notification().map(|n| format!("{:?}", n.id)),
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

    pub(crate) fn start_download_checked(&mut self, id: ArtifactId, to: PathBuf) -> Vec<Effect> {
        if to.as_os_str().is_empty() {
            self.notify_user("give a folder to download into", Level::Warning);
            return Vec::new();
        }
        self.start_download(id, to, false)
    }

    pub(crate) fn add_dataset(&mut self, path: PathBuf) -> Vec<Effect> {
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
}
