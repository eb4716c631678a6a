//! Sweeps on the Jobs tab: a sweep's jobs are listed under its header row (name, status,
//! runs done, money spent, the best run starred), each job named by the values it tries. On
//! the header the monitor shows the sweep (its grid, its runs and how each went); the
//! compare-sweep key opens the Compare view of its runs, and cancel cancels the sweep.

use super::jobs::{JobsTab, job_status_style};
use super::jobs_compare::{CompareView, MAX_RUNS, MIN_RUNS};
use crate::action::Tab;
use crate::context::Shared;
use crate::context::sweeps::{self, best_validation_loss, leader, runs_done};
use crate::effect::{Effect, Level};
use crate::format;
use crate::theme::Theme;
use crate::ui::{fit_line, panel};
use brightrun_api::domain::*;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// Which kind of row of a sweep the selection is on, for the key hints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SweepRow {
    #[default]
    None,
    Header,
    Member,
}

/// The key hints on a sweep's header: comparing and cancelling it first.
pub const HEADER_KEYS: &[(&str, &str)] = &[
    ("compare_sweep", "compare runs"),
    ("cancel", "cancel sweep"),
    ("open", "detail"),
    ("filter", "filter"),
    ("freeze", "freeze"),
];

/// The key hints while a sweep's detail has the whole tab.
pub const HEADER_DETAIL_KEYS: &[(&str, &str)] = &[
    ("compare_sweep", "compare runs"),
    ("cancel", "cancel sweep"),
    ("back", "back to the list"),
];

/// The key hints on a job of a sweep: the job's keys, its sweep's Compare view second.
pub const MEMBER_KEYS: &[(&str, &str)] = &[
    ("open", "monitor"),
    ("compare_sweep", "compare sweep"),
    ("mark", "mark"),
    ("cancel", "cancel"),
    ("retry", "retry"),
    ("open_artifact", "model"),
    ("filter", "filter"),
];

pub(super) fn sweep_status_style(t: &Theme, s: SweepStatus) -> Style {
    match s {
        SweepStatus::Running => Style::new().fg(t.info).add_modifier(Modifier::BOLD),
        SweepStatus::Completed => Style::new().fg(t.success),
        SweepStatus::Cancelled => Style::new().fg(t.muted),
    }
}

/// `learning_rate=1e-4 lora_rank=8`.
pub fn describe(sets: &[(String, String)]) -> String {
    sets.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `★ b0000011` (the engine's best) or `☆ b0000007` (the leader so far), or nothing.
fn star(sweep: &Sweep, s: &Shared) -> String {
    match leader(sweep, s) {
        Some((id, true)) => format!("★ {}", id.short()),
        Some((id, false)) => format!("☆ {}", id.short()),
        None => String::new(),
    }
}

/// A header row's cells, in the list's columns: id, name, (preset, GPU,) status, best run,
/// runs done, (step, best loss,) money spent, age.
pub(super) fn header_cells(sweep: &Sweep, s: &Shared, wide: bool) -> Vec<Line<'static>> {
    let t = &s.theme;
    let strong = t.accent().add_modifier(Modifier::BOLD);
    let dataset = sweep
        .spec
        .job
        .dataset
        .parse::<brightrun_api::ids::DatasetId>()
        .map(|d| format!(" · {}", s.dataset_name(d)))
        .unwrap_or_default();
    let mut cells = vec![
        Line::from(Span::styled(sweep.id.short(), strong)),
        Line::from(vec![
            Span::styled(format!("▾ {}", sweep.name), strong),
            Span::styled(dataset, t.muted()),
        ]),
    ];
    if wide {
        cells.push(Line::from(sweep.spec.job.preset.clone()));
        cells.push(Line::raw(""));
    }
    cells.push(Line::from(Span::styled(
        sweep.status.as_str(),
        sweep_status_style(t, sweep.status),
    )));
    cells.push(Line::from(Span::styled(star(sweep, s), strong)));
    cells.push(Line::raw(format!(
        "{} of {} runs",
        runs_done(sweep, &s.jobs),
        sweep.runs.len()
    )));
    if wide {
        cells.extend([Line::raw(""), Line::raw("")]);
    }
    cells.push(Line::from(format::money(sweeps::spent(sweep, s))).right_aligned());
    cells.push(Line::from(format::age(s.now, sweep.created_at)));
    cells
}

/// A sweep job's name in the list: `├ learning_rate=1e-4 lora_rank=8` under its header
/// (`└` for the last), starred when it is the sweep's best (or leader so far). Narrow, the
/// values alone (`├ 1e-4 · 8`): the header's name says what is swept.
pub(super) fn member_name(
    job: &TrainingJob,
    sweep: &Sweep,
    last: bool,
    wide: bool,
    s: &Shared,
) -> String {
    let sets = sweep
        .runs
        .iter()
        .find(|r| r.job_id == Some(job.id))
        .map(|r| {
            if wide {
                describe(&r.sets)
            } else {
                let values: Vec<&str> = r.sets.iter().map(|(_, v)| v.as_str()).collect();
                values.join(" · ")
            }
        })
        .unwrap_or_default();
    let star = match leader(sweep, s) {
        Some((id, true)) if id == job.id => "★ ",
        Some((id, false)) if id == job.id => "☆ ",
        _ => "",
    };
    format!("{} {star}{sets}", if last { "└" } else { "├" })
}

impl JobsTab {
    /// Opens the Compare view of the selected sweep's runs (its header or one of its jobs
    /// selected): all of them when they fit, else the [`MAX_RUNS`] with the lowest
    /// validation loss. The marks are left as they are.
    pub(super) fn open_sweep_compare(&mut self, s: &mut Shared) -> Vec<Effect> {
        let key = s.keymap.hint(Tab::Jobs, "compare_sweep");
        let Some(sweep) = s.sweep_in_context().cloned() else {
            s.notify_user(
                format!("select a sweep or one of its jobs: {key} compares its runs"),
                Level::Info,
            );
            return Vec::new();
        };
        let ids = sweeps::compare_ids(&sweep, s);
        if ids.len() < MIN_RUNS {
            s.notify_user(
                format!(
                    "sweep {} has {} started: {MIN_RUNS} are needed to compare",
                    sweep.name,
                    format::plural(ids.len() as u64, "run")
                ),
                Level::Info,
            );
            return Vec::new();
        }
        let (view, fx) = CompareView::open(&ids, self.browse.focus, s);
        self.compare = Some(view);
        s.message = None;
        let runs = sweep
            .job_ids()
            .filter(|id| s.jobs.get(*id).is_some())
            .count();
        if runs > MAX_RUNS {
            s.notify_user(
                format!("the {MAX_RUNS} of {runs} runs with the lowest validation loss"),
                Level::Info,
            );
        }
        fx
    }

    /// What the selection is on, for the key hints (kept by layout: hints draw from `&self`).
    pub(super) fn sweep_row(s: &Shared) -> SweepRow {
        if s.selected_sweep().is_some() {
            SweepRow::Header
        } else if s.sweep_in_context().is_some() {
            SweepRow::Member
        } else {
            SweepRow::None
        }
    }
}

/// The monitor's place while a sweep's header is selected: what it sweeps and how, the best
/// run, then each run with its values, job, status, validation loss and cost.
pub(super) fn draw_sweep(frame: &mut Frame, area: Rect, focused: bool, sweep: &Sweep, s: &Shared) {
    let t = &s.theme;
    let title = Line::from(vec![
        Span::styled(format!(" Sweep {} ", sweep.name), t.header()),
        Span::styled(
            format!(
                "· {} · {} of {} runs · {} ",
                sweep.status.as_str(),
                runs_done(sweep, &s.jobs),
                sweep.runs.len(),
                format::money(sweeps::spent(sweep, s))
            ),
            t.muted(),
        ),
    ]);
    let block = panel(
        t,
        fit_line(title, area.width.saturating_sub(2) as usize),
        focused,
    );
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let width = inner.width as usize;
    let mut lines = summary_lines(sweep, s);
    lines.push(Line::raw(""));
    lines.extend(run_lines(sweep, s, width));
    let lines: Vec<Line> = lines.into_iter().map(|l| fit_line(l, width)).collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

/// The sweep's grid, how it runs, and its best run.
fn summary_lines(sweep: &Sweep, s: &Shared) -> Vec<Line<'static>> {
    let t = &s.theme;
    let kv = |k: &str, v: String| {
        Line::from(vec![
            Span::styled(format!("{k:<10}"), t.muted()),
            Span::raw(v),
        ])
    };
    let grid = sweep
        .spec
        .grid
        .iter()
        .map(|a| format!("{} {}", a.key, a.values.join(", ")))
        .collect::<Vec<_>>()
        .join(" · ");
    let budget = sweep
        .spec
        .budget
        .map(|b| format!("sweep budget {}", format::money(b)))
        .unwrap_or_else(|| "no sweep budget".into());
    let best = match leader(sweep, s) {
        Some((id, true)) => format!(
            "★ {} (by {})",
            id.short(),
            sweep
                .best_by
                .as_deref()
                .map(|b| b.replace('_', " "))
                .unwrap_or_else(|| "validation loss".into())
        ),
        Some((id, false)) => format!("☆ {} so far (lowest validation loss)", id.short()),
        None => "not yet: no run has finished".into(),
    };
    vec![
        kv("grid", grid),
        kv(
            "runs",
            format!(
                "{} at a time · preset {} · {budget} · {} ago",
                sweep.spec.max_parallel.max(1),
                sweep.spec.job.preset,
                format::age(s.now, sweep.created_at)
            ),
        ),
        kv("best", best),
    ]
}

/// One line per run: number, values, job, status (or why it was skipped), best validation
/// loss and cost.
fn run_lines(sweep: &Sweep, s: &Shared, width: usize) -> Vec<Line<'static>> {
    let t = &s.theme;
    let values: Vec<String> = sweep.runs.iter().map(|r| describe(&r.sets)).collect();
    let vw = values.iter().map(|v| v.chars().count()).max().unwrap_or(0);
    let vw = vw.min(width.saturating_sub(40)).max(8);
    let mut lines = vec![Line::styled(
        format!(
            "{:>2}  {:<vw$}  {:<8}  {:<11} {:>8} {:>8}",
            "#", "values", "job", "status", "val loss", "cost"
        ),
        t.muted(),
    )];
    for (n, (run, v)) in sweep.runs.iter().zip(&values).enumerate() {
        let head = format!("{:>2}  {:<vw$}  ", n + 1, format::truncate(v, vw));
        let job = run.job_id.and_then(|id| s.jobs.get(id));
        let rest: Vec<Span<'static>> = match (run.job_id, job) {
            (Some(_), Some(j)) => vec![
                Span::styled(format!("{:<8}  ", j.id.short()), t.muted()),
                Span::styled(
                    format!("{:<11}", j.status.as_str()),
                    job_status_style(t, j.status),
                ),
                Span::raw(format!(
                    " {:>8} {:>8}",
                    best_validation_loss(j, s)
                        .map(format::metric)
                        .unwrap_or_else(|| "–".into()),
                    format::money(crate::context::lists::job_cost_at(j, s.now))
                )),
            ],
            (Some(id), None) => vec![Span::styled(format!("{:<8}  ", id.short()), t.muted())],
            (None, _) => vec![Span::styled(
                match &run.skipped {
                    Some(why) => format!("skipped: {why}"),
                    None => "waiting for a slot".into(),
                },
                t.muted(),
            )],
        };
        let mut spans = vec![Span::raw(head)];
        spans.extend(rest);
        lines.push(Line::from(spans));
    }
    lines
}
