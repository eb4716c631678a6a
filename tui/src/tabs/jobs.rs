//! The Jobs tab: the list and the live monitor (stage, progress, times, cost, loss chart, sparklines,
//! log). Series are downsampled to the chart's width and cached until new points arrive. Jobs
//! marked with space (up to six training runs) open side by side in the Compare view
//! ([`super::jobs_compare`]). A sweep's jobs are listed under its header row, whose own keys
//! compare or cancel the whole sweep ([`super::jobs_sweeps`]).

use super::jobs_compare::{self as compare, CompareView};
use super::jobs_sweeps::{self as sweep_rows, SweepRow};
use super::{Browse, Component, Focus, Handled, Request, TabHits};
use crate::action::{Action, Tab};
use crate::context::{Overlay, RetryDialog, Shared, lists};
use crate::effect::{Effect, Level};
use crate::format;
use crate::series::{self, Metric};
use crate::state::{ChartCache, GROUP_ROW, JobDetail, PreferenceCurves};
use crate::theme::Theme;
use crate::ui::{Col, draw_list, fit_line, headers, list_layout, list_title, panel};
use brightrun_api::ApiError;
use brightrun_api::domain::*;
use brightrun_api::events::EngineEvent;
use brightrun_api::ids::JobId;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Chart, Dataset as ChartSeries, Gauge, GraphType, Paragraph, Sparkline,
};

pub(crate) fn job_status_style(t: &Theme, s: JobStatus) -> Style {
    match s {
        JobStatus::Running => Style::new().fg(t.info).add_modifier(Modifier::BOLD),
        JobStatus::Initializing | JobStatus::Queued => Style::new().fg(t.warning),
        JobStatus::Completed => Style::new().fg(t.success),
        JobStatus::Failed => Style::new().fg(t.error),
        JobStatus::Cancelled => Style::new().fg(t.muted),
    }
}

/// An export job as the list names it: `export gguf q4_k_m of support-lora-2 v2` (the
/// adapter's short id once it is gone).
pub(crate) fn export_label(e: &ExportTask, s: &Shared) -> String {
    let model = s
        .artifacts
        .get(e.model)
        .map(|a| format!("{} v{}", a.name, a.version))
        .unwrap_or_else(|| e.model.short());
    let quantized = e
        .quantize
        .as_deref()
        .map(|q| format!(" {}", crate::sanitize::one_line(q)))
        .unwrap_or_default();
    format!("export {}{quantized} of {model}", e.format.as_str())
}

/// Where a job runs, in words: `this machine` on the local backend (with its GPUs when it
/// has a GPU type of its own), `2×A100-80GB (ray-prod)` elsewhere.
pub(crate) fn runs_on(g: &GpuConfig, config: &brightrun_api::config::Config) -> String {
    let local = runs_here(g, config);
    let gpus = format!("{}×{}", g.gpu_count, g.gpu_type);
    match (local, g.gpu_type.as_str()) {
        (true, "local" | "") => "this machine".into(),
        (true, _) => format!("this machine ({gpus})"),
        (false, _) if g.backend.is_empty() => gpus,
        (false, _) => format!("{gpus} ({})", g.backend),
    }
}

/// Whether a job runs on this machine (the local backend): its checkpoints' folders are here.
pub(crate) fn runs_here(g: &GpuConfig, config: &brightrun_api::config::Config) -> bool {
    config
        .backends
        .get(&g.backend)
        .map(|b| b.kind_for(&g.backend))
        .unwrap_or(g.backend.as_str())
        == "local"
}

/// The Jobs tab's own state: whether the monitor has the keys, the jobs marked for the
/// Compare view and the view while it is open. (Loaded job histories are shared records,
/// kept with the app: engine events feed them whichever tab is shown.)
#[derive(Clone, Debug, Default)]
pub struct JobsTab {
    pub browse: Browse,
    /// The jobs marked for the Compare view, in the order marked (its runs' order and
    /// colours). They stay marked when the view closes.
    pub marks: Vec<JobId>,
    /// The Compare view, while it is open.
    pub compare: Option<CompareView>,
    /// Whether the selection is on a sweep's header or job, as the last layout found (the
    /// key hints follow it).
    pub sweep_row: SweepRow,
}

impl Component for JobsTab {
    fn handle(&mut self, action: &Action, s: &mut Shared) -> Handled {
        if self.compare.is_some() {
            return self.handle_compare(action, s);
        }
        if self.browse.focus == Focus::Detail {
            let sel = s.selected_job().map(|j| j.id);
            if let Some(d) = sel.and_then(|id| s.details.get_mut(&id)) {
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
                    return Handled::done();
                }
            }
        } else if self.browse.move_list(Tab::Jobs, action, s) {
            return Handled::Consumed(s.ensure_job_detail());
        }
        let sel = s.selected_job().cloned();
        // A sweep's header opens the sweep's detail as a job opens its monitor.
        let header = s.selected_sweep().cloned();
        let has_selection = sel.is_some() || header.is_some();
        if self.browse.list_nav(Tab::Jobs, has_selection, action, s) {
            return Handled::Consumed(if matches!(action, Action::Open | Action::Right) {
                s.ensure_job_detail()
            } else {
                Vec::new()
            });
        }
        if let Some(sweep) = header {
            return self.handle_header(action, &sweep, s);
        }
        let fx = match action {
            Action::CompareSweep => self.open_sweep_compare(s),
            Action::CancelJob => {
                let Some(j) = sel else {
                    return Handled::Consumed(s.nothing_selected());
                };
                s.confirm_cancel(&j)
            }
            Action::RetryJob => {
                let Some(j) = sel else {
                    return Handled::Consumed(s.nothing_selected());
                };
                if !matches!(j.status, JobStatus::Failed | JobStatus::Cancelled) {
                    s.notify_user(
                        format!(
                            "job {} is {}: only failed or cancelled jobs can be retried",
                            j.id.short(),
                            j.status.as_str()
                        ),
                        Level::Warning,
                    );
                    return Handled::done();
                }
                // Where the new run starts, and what each start costs, is the engine's to
                // say: the dialog asks it (dry runs) and offers the answers.
                let request = s.request_id();
                let local = runs_here(&j.gpu_config, &s.settings.config);
                let place = runs_on(&j.gpu_config, &s.settings.config);
                s.overlay = Some(Overlay::Retry(Box::new(RetryDialog::new(
                    j.clone(),
                    request,
                    local,
                    place,
                ))));
                vec![Effect::LoadRetryChoices { request, id: j.id }]
            }
            Action::Mark => {
                let Some(j) = sel else {
                    return Handled::Consumed(s.nothing_selected());
                };
                self.toggle_mark(&j, s);
                Vec::new()
            }
            Action::Compare => self.open_compare(s),
            Action::OpenArtifact => {
                let Some(j) = sel else {
                    return Handled::Consumed(s.nothing_selected());
                };
                match j.artifact_id {
                    Some(a) => s.requests.push(Request::Jump(Link::Artifact(a))),
                    None => s.notify_user(
                        format!("job {} has no model yet", j.id.short()),
                        Level::Info,
                    ),
                }
                Vec::new()
            }
            _ => return Handled::Ignored,
        };
        Handled::Consumed(fx)
    }

    fn shown(&mut self, s: &mut Shared) -> Vec<Effect> {
        s.ensure_job_detail()
    }

    /// Live metrics extend the compared runs' curves (no request: the event has them).
    /// The app marks every event for a redraw, so nothing else is needed to show them.
    fn on_event(&mut self, ev: &EngineEvent, _s: &Shared) -> Vec<Effect> {
        if let EngineEvent::Metrics { job_id, points } = ev
            && let Some(view) = &mut self.compare
        {
            view.live(*job_id, points);
        }
        Vec::new()
    }

    /// The Compare view's own keys come first there (`x`).
    fn captures_input(&self) -> bool {
        self.compare.is_some()
    }

    fn tick(&mut self, s: &mut Shared) -> Vec<Effect> {
        s.ensure_job_detail()
    }

    fn browse(&mut self) -> Option<&mut Browse> {
        Some(&mut self.browse)
    }

    fn layout(&mut self, area: Rect, s: &mut Shared) -> TabHits {
        if let Some(view) = &mut self.compare {
            view.layout(area, s);
            return TabHits {
                list: None,
                detail: Some(area),
            };
        }
        let (list_area, monitor_area) = self.split(area);
        let list = list_area.map(|a| list_layout(&mut s.job_list, a));
        self.sweep_row = Self::sweep_row(s);
        // The monitor's charts: downsample for their width now, so drawing only reads.
        let inner = panel(&s.theme, "", false).inner(monitor_area);
        let sel = s.selected_job().map(|j| j.id);
        if inner.height >= 3
            && let Some(d) = sel.and_then(|id| s.details.get_mut(&id))
        {
            let [chart_area, spark_area] = split_charts(inner);
            let (w, sw) = chart_widths(chart_area, spark_area);
            cached(d, w, sw);
        }
        TabHits {
            list,
            detail: Some(monitor_area),
        }
    }

    fn draw(&self, frame: &mut Frame, area: Rect, s: &Shared) {
        if let Some(view) = &self.compare {
            view.draw(frame, area, s);
            return;
        }
        let (list_area, monitor_area) = self.split(area);
        if let Some(list_area) = list_area {
            self.draw_list(frame, list_area, &s.theme, s);
        }
        self.draw_monitor(frame, monitor_area, self.browse.focus == Focus::Detail, s);
    }

    fn keys(&self) -> &'static [(&'static str, &'static str)] {
        if let Some(view) = &self.compare {
            // The y axis has more than the loss only when a run trained on preferences.
            if view.has_rewards() {
                return &[
                    ("compare_axis", "x axis"),
                    ("compare_metric", "y axis"),
                    ("down", "scroll"),
                    ("back", "back"),
                ];
            }
            return &[
                ("compare_axis", "x axis"),
                ("down", "scroll"),
                ("back", "back"),
            ];
        }
        // A sweep's detail has the sweep's keys.
        if self.browse.focus == Focus::Detail && self.sweep_row == SweepRow::Header {
            return sweep_rows::HEADER_DETAIL_KEYS;
        }
        // With the monitor focused, the keys scroll its log.
        if self.browse.focus == Focus::Detail {
            return &[
                ("up", "older log"),
                ("down", "newer log"),
                ("back", "back to the list"),
            ];
        }
        // On a sweep's rows, its own keys come early; `?` lists them all.
        match self.sweep_row {
            SweepRow::Header => return sweep_rows::HEADER_KEYS,
            SweepRow::Member if self.marks.is_empty() => return sweep_rows::MEMBER_KEYS,
            _ => {}
        }
        // In the order that fits 80 columns best; `?` lists them all. Once jobs are marked,
        // comparing them comes first.
        if self.marks.is_empty() {
            &[
                ("open", "monitor"),
                ("mark", "mark"),
                ("cancel", "cancel"),
                ("retry", "retry"),
                ("compare", "compare"),
                ("open_artifact", "model"),
                ("filter", "filter"),
                ("freeze", "freeze"),
            ]
        } else {
            &[
                ("compare", "compare"),
                ("mark", "mark"),
                ("open", "monitor"),
                ("cancel", "cancel"),
                ("retry", "retry"),
                ("open_artifact", "model"),
                ("filter", "filter"),
                ("freeze", "freeze"),
            ]
        }
    }
}

impl JobsTab {
    /// An action on a sweep's header row: compare or cancel the sweep; the keys that act
    /// on one job say so.
    fn handle_header(&mut self, action: &Action, sweep: &Sweep, s: &mut Shared) -> Handled {
        let fx = match action {
            Action::CompareSweep => self.open_sweep_compare(s),
            Action::CancelJob => s.confirm_cancel_sweep(sweep),
            Action::Compare => self.open_compare(s),
            Action::RetryJob | Action::Mark | Action::OpenArtifact => {
                s.notify_user(
                    format!(
                        "sweep {}: select one of its jobs for that ({} compares them, {} cancels the sweep)",
                        sweep.name,
                        s.keymap.hint(Tab::Jobs, "compare_sweep"),
                        s.keymap.hint(Tab::Jobs, "cancel")
                    ),
                    Level::Info,
                );
                Vec::new()
            }
            _ => return Handled::Ignored,
        };
        Handled::Consumed(fx)
    }

    /// Marks the job for the Compare view, or unmarks it: training runs only, at most
    /// [`compare::MAX_RUNS`]; the status bar says what happened, or why not.
    pub fn toggle_mark(&mut self, j: &TrainingJob, s: &mut Shared) {
        // Said in the status bar, so short enough for 80 columns.
        let id = j.id.short();
        if let Some(i) = self.marks.iter().position(|m| *m == j.id) {
            self.marks.remove(i);
            s.notify_user(
                format!("job {id} unmarked ({} marked)", self.marks.len()),
                Level::Info,
            );
            return;
        }
        if !j.task.is_training() {
            s.notify_user(
                format!("{id} is an {}, not a training run", j.task.kind_name()),
                Level::Warning,
            );
            return;
        }
        if self.marks.len() >= compare::MAX_RUNS {
            s.notify_user(
                format!(
                    "at most {} jobs are compared: unmark one ({})",
                    compare::MAX_RUNS,
                    s.keymap.hint(Tab::Jobs, "mark")
                ),
                Level::Warning,
            );
            return;
        }
        self.marks.push(j.id);
        let n = self.marks.len();
        let next = if n >= compare::MIN_RUNS {
            format!("{} compares", s.keymap.hint(Tab::Jobs, "compare"))
        } else {
            "mark another".to_string()
        };
        s.notify_user(
            format!("job {id} marked ({n} of {}): {next}", compare::MAX_RUNS),
            Level::Info,
        );
    }

    /// Opens the Compare view of the marked jobs (2 to 6), asking the engine for the
    /// comparison and each run's metrics.
    fn open_compare(&mut self, s: &mut Shared) -> Vec<Effect> {
        // Jobs no longer in the records cannot be compared.
        self.marks.retain(|id| s.jobs.get(*id).is_some());
        if self.marks.len() < compare::MIN_RUNS {
            s.notify_user(
                format!(
                    "mark {} to {} jobs ({}) to compare; {} marked",
                    compare::MIN_RUNS,
                    compare::MAX_RUNS,
                    s.keymap.hint(Tab::Jobs, "mark"),
                    self.marks.len()
                ),
                Level::Info,
            );
            return Vec::new();
        }
        let (view, fx) = CompareView::open(&self.marks, self.browse.focus, s);
        self.compare = Some(view);
        // What was said about marking is done with: the view's keys show instead.
        s.message = None;
        fx
    }

    /// Closes the Compare view; the list is as it was, the marks stay.
    pub fn close_compare(&mut self) {
        if let Some(view) = self.compare.take() {
            self.browse.focus = view.focus_before;
        }
    }

    /// An action while the Compare view is open: its own keys first, then the keymap's; the
    /// list's keys do nothing under it.
    fn handle_compare(&mut self, action: &Action, s: &mut Shared) -> Handled {
        let action = match action {
            Action::Input(key) => match s
                .keymap
                .lookup_compare(key)
                .or_else(|| s.keymap.lookup(Tab::Jobs, key))
            {
                Some(a) => a,
                None => return Handled::done(),
            },
            other => other.clone(),
        };
        let Some(view) = self.compare.as_mut() else {
            return Handled::Ignored;
        };
        let fx = match action {
            Action::CompareAxis => {
                view.axis = view.axis.next();
                Vec::new()
            }
            Action::CompareMetric => {
                view.cycle_metric();
                Vec::new()
            }
            Action::Back | Action::Left => {
                self.close_compare();
                Vec::new()
            }
            // Everything again: the records, the comparison and the curves.
            Action::Refresh => {
                let ids = view.ids();
                let (mut fresh, mut fx) = CompareView::open(&ids, view.focus_before, s);
                fresh.axis = view.axis;
                fresh.metric = view.metric;
                *view = fresh;
                fx.insert(0, Effect::Reload);
                fx
            }
            a if view.scroll_by(&a) => Vec::new(),
            // The list is hidden: its keys do nothing under the view.
            Action::Open
            | Action::Right
            | Action::Sort
            | Action::SortReverse
            | Action::Filter
            | Action::CancelJob
            | Action::RetryJob
            | Action::OpenArtifact
            | Action::Mark
            | Action::Compare
            | Action::CompareSweep => Vec::new(),
            _ => return Handled::Ignored,
        };
        Handled::Consumed(fx)
    }

    /// The answer to [`Effect::CompareRuns`]: shown when the open view waits for it.
    pub fn compared(
        &mut self,
        request: u64,
        result: Result<Box<RunComparison>, ApiError>,
        s: &mut Shared,
    ) {
        if let Some(view) = self.compare.as_mut()
            && view.compared(request, result)
        {
            s.mark_dirty();
        }
    }

    /// The answer to [`Effect::LoadRunMetrics`]: a run's curves, when the open view asked.
    pub fn run_metrics(
        &mut self,
        request: u64,
        id: JobId,
        result: Result<Vec<MetricsPoint>, ApiError>,
        s: &mut Shared,
    ) {
        if let Some(view) = self.compare.as_mut()
            && view.metrics_answer(request, id, result)
        {
            s.mark_dirty();
        }
    }

    /// The list (hidden while the monitor has the keys) and the monitor.
    fn split(&self, area: Rect) -> (Option<Rect>, Rect) {
        if self.browse.focus == Focus::Detail {
            (None, area)
        } else {
            let list_h = (area.height * 3 / 10).clamp(5, 16).min(area.height);
            let [list_area, monitor_area] =
                Layout::vertical([Constraint::Length(list_h), Constraint::Min(0)]).areas(area);
            (Some(list_area), monitor_area)
        }
    }

    fn draw_list(&self, frame: &mut Frame, area: Rect, t: &Theme, s: &Shared) {
        // Jobs are counted, not the sweeps' header rows.
        let mut title = list_title(
            t,
            "Jobs",
            s.job_list.len() - s.job_groups,
            s.jobs.len(),
            &s.job_list.filter,
        );
        if !self.marks.is_empty() {
            title.spans.push(Span::styled(
                format!("· {} marked ", self.marks.len()),
                t.accent().add_modifier(Modifier::BOLD),
            ));
        }
        let block = panel(t, title, true);
        let wide = area.width >= 130;
        let sorted = lists::JOB_COLUMNS[s.job_list.sort_col];
        let bar_w: u16 = if wide { 20 } else { 8 };
        // The dataset's name takes the spare width; the rest are as wide as what they show.
        let (cols, widths): (Vec<&str>, Vec<Col>) = if wide {
            (
                vec![
                    "ID", "Dataset", "Preset", "GPU", "Status", "Stage", "Progress", "Step",
                    "Loss", "Cost", "Age",
                ],
                vec![
                    Col::fixed(8),
                    Col::fill(8),
                    Col::fit(6, 12),
                    Col::fit(5, 16),
                    Col::fit(6, 12),
                    Col::fit(6, 12),
                    Col::fixed(bar_w + 5),
                    Col::fit(4, 13),
                    Col::fit(4, 9),
                    Col::fit(4, 10),
                    Col::fit(3, 5),
                ],
            )
        } else {
            (
                lists::JOB_COLUMNS.to_vec(),
                vec![
                    Col::fixed(8),
                    Col::fill(8),
                    Col::fit(6, 12),
                    Col::fit(6, 12),
                    Col::fixed(bar_w + 5),
                    Col::fit(4, 10),
                    Col::fit(3, 5),
                ],
            )
        };
        // While jobs are marked, a column shows which, each in its colour in the Compare view.
        let marked = !self.marks.is_empty();
        let (cols, widths) = if marked {
            (
                std::iter::once("").chain(cols).collect::<Vec<_>>(),
                std::iter::once(Col::fixed(1)).chain(widths).collect(),
            )
        } else {
            (cols, widths)
        };
        let header = headers(t, &cols, sorted, s.job_list.sort_desc);
        let now = s.now;
        let jobs = &s.jobs;
        let datasets = &s.datasets;
        let colors = t.run_colors();
        let marks = &self.marks;
        let last = last_members(s, area);
        draw_list(
            frame,
            area,
            block,
            t,
            &s.job_list,
            header,
            &widths,
            "No jobs yet: train on a dataset from the Datasets or Configure tab.",
            |i| {
                if i & GROUP_ROW as usize != 0 {
                    let sweep = s.sweeps.at(i & !(GROUP_ROW as usize));
                    let mut cells = sweep_rows::header_cells(sweep, s, wide);
                    if marked {
                        cells.insert(0, Line::raw(""));
                    }
                    return cells;
                }
                let j = jobs.at(i);
                let sweep = s.sweep_of_job(j.id);
                // An evaluation job (`models eval`) is named by what it compares, an export
                // (`models export`) by what it makes; a sweep's job by the values it tries,
                // under its sweep.
                let name = match (sweep, &j.task) {
                    (Some(w), _) => sweep_rows::member_name(j, w, last.contains(&i), wide, s),
                    (None, JobTask::Evaluation(e)) => format!(
                        "evaluation of {}",
                        crate::format::plural(e.models.len() as u64, "model")
                    ),
                    (None, JobTask::Export(e)) => export_label(e, s),
                    (None, JobTask::Training) => datasets
                        .get(j.dataset_id)
                        .map(|d| d.name.clone())
                        .unwrap_or_else(|| j.dataset_id.short()),
                };
                let progress = format!(
                    "{} {:>3.0}%",
                    format::bar(j.progress / 100.0, bar_w as usize),
                    j.progress
                );
                let mut cells = Vec::with_capacity(12);
                if marked {
                    cells.push(match marks.iter().position(|m| *m == j.id) {
                        Some(k) => Line::from(Span::styled(
                            "✓",
                            Style::new()
                                .fg(colors[k % colors.len()])
                                .add_modifier(Modifier::BOLD),
                        )),
                        None => Line::raw(""),
                    });
                }
                cells.push(Line::from(Span::styled(j.id.short(), t.muted())));
                cells.push(Line::from(name));
                if wide {
                    cells.push(Line::from(j.preset_id.as_str().to_string()));
                    cells.push(Line::from(format!(
                        "{}×{}",
                        j.gpu_config.gpu_count, j.gpu_config.gpu_type
                    )));
                }
                cells.push(Line::from(Span::styled(
                    j.status.as_str(),
                    job_status_style(t, j.status),
                )));
                cells.push(Line::from(j.current_stage.as_str()));
                cells.push(Line::from(Span::styled(progress, Style::new().fg(t.gauge))));
                if wide {
                    cells.push(
                        Line::from(format!(
                            "{}/{}",
                            format::compact(j.current_step),
                            format::compact(j.total_steps)
                        ))
                        .right_aligned(),
                    );
                    cells.push(
                        Line::from(
                            j.current_metrics
                                .training_loss
                                .map(format::metric)
                                .unwrap_or_else(|| "–".into()),
                        )
                        .right_aligned(),
                    );
                }
                cells.push(Line::from(format::money(lists::job_cost_at(j, now))).right_aligned());
                cells.push(Line::from(format::age(now, j.created_at)));
                cells
            },
        );
    }

    fn draw_monitor(&self, frame: &mut Frame, area: Rect, focused: bool, s: &Shared) {
        let t = s.theme.clone();
        if let Some(sweep) = s.selected_sweep() {
            sweep_rows::draw_sweep(frame, area, focused, sweep, s);
            return;
        }
        let Some(job) = s.selected_job().cloned() else {
            frame.render_widget(
                Paragraph::new("Select a job to monitor it.")
                    .style(t.muted())
                    .block(panel(&t, " Monitor ", focused)),
                area,
            );
            return;
        };
        // An export's title says what it makes instead of the dataset its adapter trained on.
        let (kind, dataset) = match &job.task {
            JobTask::Evaluation(_) => ("Evaluation", s.dataset_name(job.dataset_id)),
            JobTask::Export(e) => ("Export", export_label(e, s)),
            JobTask::Training => ("Job", s.dataset_name(job.dataset_id)),
        };
        let title = Line::from(vec![
            Span::styled(format!(" {kind} {} ", job.id.short()), t.header()),
            Span::styled(
                format!(
                    "· {} · {} · {}×{} · {} ",
                    dataset,
                    job.preset_id.as_str(),
                    job.gpu_config.gpu_count,
                    job.gpu_config.gpu_type,
                    job.gpu_config.backend
                ),
                t.muted(),
            ),
        ]);
        let block = panel(
            &t,
            fit_line(title, area.width.saturating_sub(2) as usize),
            focused,
        );
        let inner = block.inner(area);
        frame.render_widget(block, area);
        if inner.height < 3 {
            return;
        }
        let now = s.now;
        // Line 1: stage, epoch, step, times, cost.
        let elapsed = job
            .started_at
            .map(|s| (job.completed_at.unwrap_or(now) - s).num_seconds());
        let eta = if job.status.is_active() {
            job.estimated_completion_at
                .map(|e| (e - now).num_seconds().max(0))
        } else {
            None
        };
        let cost = lists::job_cost_at(&job, now);
        let cost_style = if job.estimated_cost > 0.0 && cost > job.estimated_cost * 1.1 {
            Style::new().fg(t.warning)
        } else {
            t.base()
        };
        // The facts, packed into as few lines as the width allows (a fact is never cut:
        // what does not fit starts the next line).
        let mut facts: Vec<Span> = vec![
            Span::styled(
                job.status.as_str().to_string(),
                job_status_style(&t, job.status),
            ),
            Span::raw(format!("stage {}", job.current_stage.as_str())),
            Span::raw(format!("epoch {}/{}", job.current_epoch, job.total_epochs)),
            Span::raw(format!(
                "step {}/{}",
                format::thousands(job.current_step),
                format::thousands(job.total_steps)
            )),
            Span::raw(format!(
                "elapsed {}",
                elapsed
                    .map(format::duration_secs)
                    .unwrap_or_else(|| "–".into())
            )),
            Span::raw(format!(
                "ETA {}",
                eta.map(format::duration_secs).unwrap_or_else(|| "–".into())
            )),
            Span::styled(
                format!(
                    "cost {} of est. {}",
                    format::money(cost),
                    format::money(job.estimated_cost)
                ),
                cost_style,
            ),
        ];
        // An export has no epochs or steps to count.
        if job.task.is_export() {
            facts.drain(2..4);
        }
        // A preference run says how it learns (SFT, the default, goes without saying).
        let method = &job.hyperparameters.method;
        let preference = matches!(job.task, JobTask::Training) && method.is_preference();
        if preference {
            facts.insert(1, Span::raw(format!("method {}", method.describe())));
        }
        let width = inner.width as usize;
        let mut info: Vec<Line> = Vec::new();
        let mut line: Vec<Span> = Vec::new();
        let mut used = 0usize;
        for fact in facts {
            let w = fact.width();
            if !line.is_empty() && used + 3 + w > width {
                info.push(fit_line(Line::from(std::mem::take(&mut line)), width));
                used = 0;
            }
            if !line.is_empty() {
                line.push(Span::styled(" · ", t.muted()));
                used += 3;
            }
            used += w;
            line.push(fact);
        }
        if !line.is_empty() {
            info.push(fit_line(Line::from(line), width));
        }
        // The whole reason, wrapped (a base model's "not found" says what to do about it).
        let error_lines: Vec<Line> = match &job.error_message {
            Some(e) => format::wrap(&format!("✗ {e}"), inner.width as usize, 2)
                .into_iter()
                .take((inner.height as usize / 3).max(2))
                .map(|l| Line::styled(l, Style::new().fg(t.error).add_modifier(Modifier::BOLD)))
                .collect(),
            None => Vec::new(),
        };
        let head_h = 1 + info.len() as u16 + error_lines.len() as u16;
        let [head, gauge_area, rest] = Layout::vertical([
            Constraint::Length(head_h.saturating_sub(1)),
            Constraint::Length(1),
            Constraint::Min(0),
        ])
        .areas(inner);
        let mut head_lines = info;
        head_lines.extend(error_lines);
        frame.render_widget(Paragraph::new(head_lines), head);
        let ratio = (job.progress / 100.0).clamp(0.0, 1.0);
        frame.render_widget(
            Gauge::default()
                .ratio(ratio)
                .label(format!("{:.1}%", job.progress))
                .gauge_style(Style::new().fg(t.gauge).bg(t.status_bg))
                .use_unicode(true),
            gauge_area,
        );
        if rest.height < 3 {
            return;
        }
        let log_h = if rest.height >= 20 {
            rest.height / 3
        } else {
            (rest.height / 3).max(3)
        }
        .min(rest.height);
        let [charts, log_area] =
            Layout::vertical([Constraint::Min(0), Constraint::Length(log_h)]).areas(rest);
        let pending = JobDetail {
            loading: true,
            ..Default::default()
        };
        let detail = s.details.get(&job.id).unwrap_or(&pending);
        // A preference run's rewards and accuracy under the loss, or in one line when the
        // charts are too low for two rows of them.
        let preference = preference || detail.series.has_preference();
        let (charts, pref_area) = if preference {
            split_preference(charts)
        } else {
            (
                charts,
                Rect::new(charts.x, charts.bottom(), charts.width, 0),
            )
        };
        let [chart_area, spark_area] = split_charts(charts);
        let (chart_inner_w, spark_w) = chart_widths(chart_area, spark_area);
        let cache = match &detail.cache {
            Some(c) if c.fits(detail.series.version(), chart_inner_w, spark_w) => c.clone(),
            // Layout fills the cache; without it (a record not loaded yet) compute a copy.
            _ => cached(
                &mut JobDetail {
                    series: detail.series.clone(),
                    ..Default::default()
                },
                chart_inner_w,
                spark_w,
            ),
        };
        draw_loss_chart(frame, chart_area, &t, &cache, detail);
        if spark_area.height > 0 {
            draw_sparklines(frame, spark_area, &t, &cache, detail);
        }
        if pref_area.height > 0 {
            let kto = method.name() == MethodName::Kto;
            draw_preference(frame, pref_area, &t, &cache, detail, kto);
        }
        // The checkpoints beside the log, under the sparklines, when there is room.
        let [log_area, checkpoints_area] = split_charts(log_area);
        draw_log(frame, log_area, &t, detail, focused);
        if checkpoints_area.height > 0 {
            draw_checkpoints(frame, checkpoints_area, &t, detail);
        }
    }
}

/// The rows on screen (`area` is the list's) that are the last job of their sweep's group:
/// they are drawn with `└` instead of `├`.
fn last_members(s: &Shared, area: Rect) -> std::collections::HashSet<usize> {
    let rows = &s.job_list.rows;
    let end = (s.job_list.offset + area.height as usize).min(rows.len());
    let sweep_at = |k: usize| -> Option<brightrun_api::ids::SweepId> {
        let r = *rows.get(k)?;
        if r & GROUP_ROW != 0 {
            return None;
        }
        s.sweep_of.get(&s.jobs.at(r as usize).id).copied()
    };
    (s.job_list.offset..end)
        .filter(|&k| sweep_at(k).is_some() && sweep_at(k) != sweep_at(k + 1))
        .map(|k| rows[k] as usize)
        .collect()
}

/// The checkpoints a retry can continue from, newest first: step, (epoch,) loss, and the
/// stored archive's size or `folder only`.
fn draw_checkpoints(frame: &mut Frame, area: Rect, t: &Theme, detail: &JobDetail) {
    let n = detail.checkpoints.len();
    let title = if n == 0 {
        " Checkpoints ".to_string()
    } else {
        format!(" Checkpoints ({n}) ")
    };
    let block = panel(t, Span::styled(title, t.header()), false);
    let inner = block.inner(area);
    let width = inner.width as usize;
    let lines: Vec<Line> = if n > 0 {
        checkpoint_rows(&detail.checkpoints, width, inner.height as usize, t)
    } else if detail.loading {
        vec![Line::styled("loading…", t.muted())]
    } else if let Some(e) = &detail.checkpoints_error {
        vec![Line::styled(
            format::truncate(&format!("unavailable: {e}"), width.max(1)),
            Style::new().fg(t.error),
        )]
    } else {
        vec![Line::styled("none yet", t.muted())]
    };
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// The checkpoint rows that fit `height` lines (a header first when there are 3 or more),
/// newest first; the epoch shows when the width allows.
fn checkpoint_rows(
    checkpoints: &[std::sync::Arc<Checkpoint>],
    width: usize,
    height: usize,
    t: &Theme,
) -> Vec<Line<'static>> {
    use crate::context::retry::checkpoint_size;
    let steps: Vec<String> = checkpoints
        .iter()
        .map(|c| format::thousands(c.step))
        .collect();
    let sw = steps.iter().map(|s| s.len()).max().unwrap_or(0).max(4);
    let epoch = width >= sw + 2 + 5 + 2 + 7 + 2 + 11;
    let row = |step: &str, ep: &str, loss: &str, size: &str| {
        let ep = if epoch {
            format!("  {ep:>5}")
        } else {
            String::new()
        };
        format!("{step:>sw$}{ep}  {loss:>7}  {size:>11}")
    };
    let mut lines = Vec::new();
    let header = height >= 3;
    if header {
        lines.push(Line::styled(
            format::truncate(&row("step", "epoch", "loss", "size"), width.max(1)),
            t.muted(),
        ));
    }
    let room = height.saturating_sub(usize::from(header));
    for (c, step) in checkpoints.iter().zip(&steps).rev().take(room) {
        let loss = c.loss.map(format::metric).unwrap_or_else(|| "–".into());
        let text = row(step, &format!("{:.2}", c.epoch), &loss, &checkpoint_size(c));
        let style = if c.is_stored() { t.base() } else { t.muted() };
        lines.push(Line::styled(format::truncate(&text, width.max(1)), style));
    }
    lines
}

/// The loss chart and the sparklines, side by side when there is room.
fn split_charts(charts: Rect) -> [Rect; 2] {
    if charts.width >= 60 {
        Layout::horizontal([Constraint::Percentage(62), Constraint::Percentage(38)]).areas(charts)
    } else {
        [
            charts,
            Rect::new(charts.x, charts.bottom(), charts.width, 0),
        ]
    }
}

/// The data widths of the chart and of the sparklines (without axes and labels).
fn chart_widths(chart_area: Rect, spark_area: Rect) -> (usize, usize) {
    (
        chart_area.width.saturating_sub(10).max(1) as usize,
        spark_area.width.saturating_sub(18).max(1) as usize,
    )
}

/// The downsampled data for this size, from the cache when the series has not changed.
fn cached(detail: &mut JobDetail, chart_w: usize, spark_w: usize) -> ChartCache {
    let version = detail.series.version();
    if let Some(c) = &detail.cache
        && c.version == version
        && c.chart_width == chart_w
        && c.spark_width == spark_w
    {
        return c.clone();
    }
    let s = &mut detail.series;
    // Braille gives two dots per cell horizontally.
    let buckets = chart_w * 2;
    let c = ChartCache {
        version,
        chart_width: chart_w,
        spark_width: spark_w,
        training: s.min_max(Metric::TrainingLoss, buckets),
        validation: s.min_max(Metric::ValidationLoss, buckets),
        sparks: [
            s.sparkline(Metric::LearningRate, spark_w),
            s.sparkline(Metric::GradientNorm, spark_w),
            s.sparkline(Metric::Throughput, spark_w),
            s.sparkline(Metric::GpuUtilization, spark_w),
        ],
        preference: s.has_preference().then(|| PreferenceCurves {
            chosen: s.min_max(Metric::RewardsChosen, buckets),
            rejected: s.min_max(Metric::RewardsRejected, buckets),
            margin: s.min_max(Metric::RewardMargin, buckets),
            accuracy: s.min_max(Metric::RewardAccuracy, buckets),
            kl: s.min_max(Metric::Kl, buckets),
        }),
    };
    detail.cache = Some(c.clone());
    c
}

fn draw_loss_chart(
    frame: &mut Frame,
    area: Rect,
    t: &Theme,
    cache: &ChartCache,
    detail: &JobDetail,
) {
    let s = &detail.series;
    let title = Line::from(vec![
        Span::styled(" Loss ", t.header()),
        Span::styled("━ training ", Style::new().fg(t.chart_training)),
        Span::styled("━ validation ", Style::new().fg(t.chart_validation)),
        Span::styled(
            if detail.loading {
                "loading… ".to_string()
            } else {
                format!("{} pts ", format::compact(s.len() as u64))
            },
            t.muted(),
        ),
    ]);
    let block = panel(t, title, false);
    if cache.training.is_empty() && cache.validation.is_empty() {
        let msg = if detail.loading {
            "loading metrics…".to_string()
        } else if let Some(e) = &detail.load_error {
            format!("metrics unavailable: {e}")
        } else {
            "no metrics yet".to_string()
        };
        frame.render_widget(Paragraph::new(msg).style(t.muted()).block(block), area);
        return;
    }
    let (x0, x1) = match (s.steps().first(), s.steps().last()) {
        (Some(a), Some(b)) if b > a => (*a as f64, *b as f64),
        (Some(a), _) => (*a as f64, *a as f64 + 1.0),
        _ => (0.0, 1.0),
    };
    let (mut y0, mut y1) = match (
        series::bounds(&cache.training),
        series::bounds(&cache.validation),
    ) {
        (Some(a), Some(b)) => (a.0.min(b.0), a.1.max(b.1)),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => (0.0, 1.0),
    };
    if y1 - y0 < 1e-9 {
        y0 -= 0.5;
        y1 += 0.5;
    }
    let pad = (y1 - y0) * 0.05;
    let (y0, y1) = (
        (y0 - pad).max(if y0 >= 0.0 { 0.0 } else { f64::MIN }),
        y1 + pad,
    );
    let datasets = vec![
        ChartSeries::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(t.chart_training))
            .data(&cache.training),
        ChartSeries::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(t.chart_validation))
            .data(&cache.validation),
    ];
    let xl = |v: f64| format::compact(v.max(0.0) as u64);
    let chart = themed_chart(datasets, t, (x0, x1), (y0, y1), xl).block(block);
    frame.render_widget(chart, area);
}

/// Charts at least this high hold the loss row and a row of preference charts; lower, the
/// preference figures take one line under the loss.
const PREFERENCE_ROWS_MIN: u16 = 12;

/// The loss row and, under it, the preference row (half each), or one line when the charts
/// are too low for two rows.
fn split_preference(charts: Rect) -> (Rect, Rect) {
    if charts.height >= PREFERENCE_ROWS_MIN {
        let [a, b] = Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)])
            .areas(charts);
        (a, b)
    } else if charts.height >= 4 {
        let [a, b] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(charts);
        (a, b)
    } else {
        (
            charts,
            Rect::new(charts.x, charts.bottom(), charts.width, 0),
        )
    }
}

/// The latest value of a preference metric, for people (`–` when none yet).
fn latest(s: &series::Series, m: Metric) -> String {
    s.last_value(m)
        .map(|v| format::metric(v as f64))
        .unwrap_or_else(|| "–".into())
}

/// A share (0..=1) as a percentage.
fn percent(v: f64) -> String {
    format!("{:.0}%", v * 100.0)
}

/// The words of a run's two reward curves: KTO's replies are labelled, not paired.
fn reward_names(kto: bool) -> (&'static str, &'static str) {
    if kto {
        ("desirable", "undesirable")
    } else {
        ("chosen", "rejected")
    }
}

/// A preference run's charts: the rewards (chosen and rejected, KTO: desirable and
/// undesirable, and their margin) and beside them the reward accuracy, or for KTO, which
/// has none, the KL estimate. One line of the latest figures when the area is one line.
fn draw_preference(
    frame: &mut Frame,
    area: Rect,
    t: &Theme,
    cache: &ChartCache,
    detail: &JobDetail,
    kto: bool,
) {
    let s = &detail.series;
    let (good, bad) = reward_names(kto);
    if area.height < 3 {
        let mut spans = vec![
            Span::styled("rewards ", t.muted()),
            Span::styled(
                format!("{good} {} ", latest(s, Metric::RewardsChosen)),
                Style::new().fg(t.success),
            ),
            Span::styled(
                format!("{bad} {} ", latest(s, Metric::RewardsRejected)),
                Style::new().fg(t.error),
            ),
            Span::styled(
                format!("margin {}", latest(s, Metric::RewardMargin)),
                Style::new().fg(t.accent),
            ),
        ];
        spans.push(Span::styled(" · ", t.muted()));
        spans.push(if kto {
            Span::styled(
                format!("KL {} (no reward accuracy for KTO)", latest(s, Metric::Kl)),
                Style::new().fg(t.warning),
            )
        } else {
            Span::styled(
                format!(
                    "accuracy {}",
                    s.last_value(Metric::RewardAccuracy)
                        .map(|v| percent(v as f64))
                        .unwrap_or_else(|| "–".into())
                ),
                Style::new().fg(t.info),
            )
        });
        frame.render_widget(
            Paragraph::new(fit_line(Line::from(spans), area.width as usize)),
            area,
        );
        return;
    }
    let none = PreferenceCurves::default();
    let curves = cache.preference.as_ref().unwrap_or(&none);
    let [rewards_area, side_area] = split_charts(area);
    // The rewards and their margin.
    let title = Line::from(vec![
        Span::styled(" Rewards ", t.header()),
        Span::styled(format!("━ {good} "), Style::new().fg(t.success)),
        Span::styled(format!("━ {bad} "), Style::new().fg(t.error)),
        Span::styled("━ margin ", Style::new().fg(t.accent)),
    ]);
    let lines = [
        (&curves.chosen, t.success),
        (&curves.rejected, t.error),
        (&curves.margin, t.accent),
    ];
    let empty = if curves.has_rewards() {
        None
    } else {
        Some(no_figures(detail, "no rewards logged yet"))
    };
    draw_curves(
        frame,
        rewards_area,
        t,
        s,
        title,
        &lines,
        empty,
        format::metric,
        None,
    );
    if side_area.height == 0 {
        return;
    }
    if kto {
        // KTO's replies are not paired: there is no accuracy to chart, so its KL is.
        let title = Line::from(vec![
            Span::styled(" KL ", t.header()),
            Span::styled(
                format!("{} · no reward accuracy for KTO ", latest(s, Metric::Kl)),
                t.muted(),
            ),
        ]);
        let empty = curves.kl.is_empty().then(|| {
            no_figures(
                detail,
                "no KL logged yet (and no reward accuracy: KTO's replies are not paired)",
            )
        });
        let lines = [(&curves.kl, t.warning)];
        draw_curves(
            frame,
            side_area,
            t,
            s,
            title,
            &lines,
            empty,
            format::metric,
            None,
        );
    } else {
        let last = s
            .last_value(Metric::RewardAccuracy)
            .map(|v| percent(v as f64))
            .unwrap_or_else(|| "–".into());
        let title = Line::from(vec![
            Span::styled(" Reward accuracy ", t.header()),
            Span::styled(format!("{last} "), Style::new().fg(t.info)),
        ]);
        let empty = curves
            .accuracy
            .is_empty()
            .then(|| no_figures(detail, "no reward accuracy logged yet"));
        let lines = [(&curves.accuracy, t.info)];
        draw_curves(
            frame,
            side_area,
            t,
            s,
            title,
            &lines,
            empty,
            percent,
            Some((0.0, 1.0)),
        );
    }
}

/// What an empty preference chart says instead: loading, why the metrics are missing, or
/// `nothing` (never an empty frame).
fn no_figures(detail: &JobDetail, nothing: &str) -> String {
    if detail.loading {
        "loading metrics…".to_string()
    } else if let Some(e) = &detail.load_error {
        format!("metrics unavailable: {e}")
    } else {
        nothing.to_string()
    }
}

/// A chart of some curves over the run's steps in a panel titled `title`, or `empty`'s text
/// in the panel. `y_fixed` pins the y axis (a share: 0 to 1); else it spans the curves.
#[allow(clippy::too_many_arguments)]
fn draw_curves(
    frame: &mut Frame,
    area: Rect,
    t: &Theme,
    s: &series::Series,
    title: Line<'static>,
    curves: &[(&Vec<(f64, f64)>, Color)],
    empty: Option<String>,
    y_label: fn(f64) -> String,
    y_fixed: Option<(f64, f64)>,
) {
    let block = panel(
        t,
        fit_line(title, area.width.saturating_sub(2) as usize),
        false,
    );
    if let Some(msg) = empty {
        frame.render_widget(
            Paragraph::new(msg)
                .style(t.muted())
                .wrap(ratatui::widgets::Wrap { trim: true })
                .block(block),
            area,
        );
        return;
    }
    let (x0, x1) = match (s.steps().first(), s.steps().last()) {
        (Some(a), Some(b)) if b > a => (*a as f64, *b as f64),
        (Some(a), _) => (*a as f64, *a as f64 + 1.0),
        _ => (0.0, 1.0),
    };
    let (y0, y1) = match y_fixed {
        Some(b) => b,
        None => {
            let (mut y0, mut y1) = curves
                .iter()
                .filter_map(|(c, _)| series::bounds(c))
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), (lo, hi)| {
                    (a.min(lo), b.max(hi))
                });
            if !y0.is_finite() || !y1.is_finite() {
                (y0, y1) = (0.0, 1.0);
            }
            if y1 - y0 < 1e-9 {
                y0 -= 0.5;
                y1 += 0.5;
            }
            let pad = (y1 - y0) * 0.05;
            (y0 - pad, y1 + pad)
        }
    };
    let datasets = curves
        .iter()
        .map(|(data, color)| {
            ChartSeries::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(*color))
                .data(data)
        })
        .collect();
    let xl = |v: f64| format::compact(v.max(0.0) as u64);
    let chart = labelled_chart(datasets, t, (x0, x1), (y0, y1), xl, y_label).block(block);
    frame.render_widget(chart, area);
}

/// A loss chart in the theme: its background under the plot too (the chart's canvas paints
/// its own otherwise), muted axes labelled at both ends and the middle (`x_label` names an x
/// value; losses are metrics), no legend (the caller draws its own). The monitor's and the
/// Compare view's.
pub(crate) fn themed_chart<'a>(
    datasets: Vec<ChartSeries<'a>>,
    t: &Theme,
    x: (f64, f64),
    y: (f64, f64),
    x_label: impl Fn(f64) -> String,
) -> Chart<'a> {
    labelled_chart(datasets, t, x, y, x_label, format::metric)
}

/// [`themed_chart`] with its own y labels (a share as a percentage).
fn labelled_chart<'a>(
    datasets: Vec<ChartSeries<'a>>,
    t: &Theme,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
    x_label: impl Fn(f64) -> String,
    y_label: impl Fn(f64) -> String,
) -> Chart<'a> {
    let xl = |v: f64| Span::styled(x_label(v), t.muted());
    let yl = |v: f64| Span::styled(y_label(v), t.muted());
    Chart::new(datasets)
        .style(t.base())
        .x_axis(
            Axis::default()
                .bounds([x0, x1])
                .labels(vec![xl(x0), xl((x0 + x1) / 2.0), xl(x1)])
                .style(t.muted()),
        )
        .y_axis(
            Axis::default()
                .bounds([y0, y1])
                .labels(vec![yl(y0), yl((y0 + y1) / 2.0), yl(y1)])
                .style(t.muted()),
        )
        .hidden_legend_constraints((Constraint::Length(0), Constraint::Length(0)))
}

fn draw_sparklines(
    frame: &mut Frame,
    area: Rect,
    t: &Theme,
    cache: &ChartCache,
    detail: &JobDetail,
) {
    let block = panel(
        t,
        Span::styled(" Rate · grad · speed · GPU ", t.header()),
        false,
    );
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let s = &detail.series;
    let specs: [(&str, Metric, Color, &str); 4] = [
        ("lr", Metric::LearningRate, t.spark_learning_rate, ""),
        ("grad", Metric::GradientNorm, t.spark_gradient_norm, ""),
        ("tok/s", Metric::Throughput, t.spark_throughput, ""),
        ("gpu", Metric::GpuUtilization, t.spark_gpu, "%"),
    ];
    let rows = inner.height / 4;
    if rows == 0 {
        // Too small for four rows: the latest values on one line.
        let text: Vec<Span> = specs
            .iter()
            .map(|(label, m, c, unit)| {
                Span::styled(
                    format!(
                        "{label} {}{unit}  ",
                        s.last_value(*m)
                            .map(|v| format::metric(v as f64))
                            .unwrap_or_else(|| "–".into())
                    ),
                    Style::new().fg(*c),
                )
            })
            .collect();
        frame.render_widget(Paragraph::new(Line::from(text)), inner);
        return;
    }
    let areas = Layout::vertical([Constraint::Length(rows); 4]).split(inner);
    for (i, (label, m, color, unit)) in specs.iter().enumerate() {
        let [lab, spark] =
            Layout::horizontal([Constraint::Length(17), Constraint::Min(1)]).areas(areas[i]);
        let last = s
            .last_value(*m)
            .map(|v| format!("{}{unit}", format::metric(v as f64)))
            .unwrap_or_else(|| "–".into());
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(format!("{label:<6}"), t.muted()),
                Span::styled(format!("{last:>10}"), Style::new().fg(*color)),
            ])),
            lab,
        );
        let data = &cache.sparks[i];
        if data.is_empty() {
            continue;
        }
        frame.render_widget(
            Sparkline::default()
                .data(data.iter().copied())
                .max(100)
                .style(Style::new().fg(*color)),
            spark,
        );
    }
}

fn draw_log(frame: &mut Frame, area: Rect, t: &Theme, detail: &JobDetail, focused: bool) {
    let title = if detail.log_scroll == 0 {
        " Log (following) ".to_string()
    } else {
        format!(
            " Log (↑{}; G follows) ",
            format::plural(detail.log_scroll as u64, "line")
        )
    };
    let block = panel(t, Span::styled(title, t.header()), focused);
    let inner = block.inner(area);
    let h = inner.height as usize;
    let n = detail.log.len();
    let end = n.saturating_sub(detail.log_scroll);
    let start = end.saturating_sub(h);
    let width = inner.width as usize;
    let lines: Vec<Line> = detail
        .log
        .range(start..end)
        .map(|l| {
            let style = if l.contains("ERROR") || l.contains("Error") || l.starts_with("Traceback")
            {
                Style::new().fg(t.error)
            } else if l.contains("WARN") || l.contains("Warning") {
                Style::new().fg(t.warning)
            } else if l.starts_with("[checkpoint]") {
                Style::new().fg(t.info)
            } else {
                t.base()
            };
            Line::styled(format::truncate(l, width.max(1)), style)
        })
        .collect();
    let body = if lines.is_empty() {
        vec![Line::styled(
            if detail.loading {
                "loading log…"
            } else {
                "no log lines yet"
            },
            t.muted(),
        )]
    } else {
        lines
    };
    frame.render_widget(Paragraph::new(body).block(block), area);
}
