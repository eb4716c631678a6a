//! The Jobs tab's Compare view: 2 to 6 marked training runs side by side. Their training and
//! validation losses are overlaid in one chart (a colour per run from [`Theme::run_colors`];
//! training a solid line, validation dotted), against the step, the tokens seen or the
//! elapsed time (`x` switches); under it, the engine's comparison (`compare_runs`) as a
//! table of what differs and how each run went, the best marked `★` with what it was judged
//! by.
//!
//! Each run's stored metrics are asked for once, when the view opens; the engine's live
//! metrics events extend them while it is open. Answers carry the view's request number: an
//! answer to a view since closed (or reopened) is dropped.

use super::Focus;
use super::datasets_inspect::{Failure, Load};
use crate::context::Shared;
use crate::effect::Effect;
use crate::format;
use crate::sanitize::one_line;
use crate::theme::Theme;
use crate::ui::{Col, column_widths, fit_line, panel, wrap_all};
use brightrun_api::ApiError;
use brightrun_api::domain::{ComparedRun, MetricsPoint, RunComparison, Timestamp, TrainingMethod};
use brightrun_api::ids::JobId;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Dataset as ChartSeries, GraphType, Paragraph};
use serde_json::Value;
use std::sync::Arc;

/// The most runs one comparison holds.
pub const MAX_RUNS: usize = brightrun_api::domain::MAX_COMPARED_RUNS;

/// The fewest the engine compares.
pub const MIN_RUNS: usize = 2;

// ---- pure logic: the x axis, tokens seen, downsampling, bounds, the table -----------------

/// What the chart's x axis counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum XAxis {
    #[default]
    Step,
    /// Tokens seen: the reported throughput integrated over time (see [`tokens_seen`]).
    Tokens,
    /// Wall-clock time since the run started.
    Time,
}

impl XAxis {
    pub const ALL: [XAxis; 3] = [XAxis::Step, XAxis::Tokens, XAxis::Time];

    pub fn next(self) -> XAxis {
        match self {
            XAxis::Step => XAxis::Tokens,
            XAxis::Tokens => XAxis::Time,
            XAxis::Time => XAxis::Step,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            XAxis::Step => "step",
            XAxis::Tokens => "tokens seen",
            XAxis::Time => "elapsed",
        }
    }

    /// A tick label: `1,200`, `4.5M`, `12m00s`.
    pub fn tick(self, v: f64) -> String {
        let v = v.max(0.0);
        match self {
            XAxis::Step | XAxis::Tokens => format::compact(v.round() as u64),
            XAxis::Time => format::duration_secs(v.round() as i64),
        }
    }
}

/// What the chart's y axis shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum YMetric {
    /// Training loss as lines, validation loss as dots.
    #[default]
    Loss,
    /// A preference run's reward margin (chosen − rejected) at each logged step.
    RewardMargin,
    /// A preference run's reward accuracy (0..1) at each logged step.
    RewardAccuracy,
}

impl YMetric {
    pub fn next(self) -> YMetric {
        match self {
            YMetric::Loss => YMetric::RewardMargin,
            YMetric::RewardMargin => YMetric::RewardAccuracy,
            YMetric::RewardAccuracy => YMetric::Loss,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            YMetric::Loss => "loss",
            YMetric::RewardMargin => "reward margin",
            YMetric::RewardAccuracy => "reward accuracy",
        }
    }

    /// A point's line value and dot value on this axis (rewards have no dots).
    fn of(self, p: &Point) -> (Option<f64>, Option<f64>) {
        match self {
            YMetric::Loss => (p.training, p.validation),
            YMetric::RewardMargin => (p.margin, None),
            YMetric::RewardAccuracy => (p.accuracy, None),
        }
    }
}

/// One logged step of a compared run: what the chart needs of a [`MetricsPoint`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub step: u64,
    /// Seconds since the Unix epoch.
    pub t: f64,
    /// Tokens per second.
    pub throughput: Option<f64>,
    pub training: Option<f64>,
    pub validation: Option<f64>,
    /// A preference run's reward margin and accuracy.
    pub margin: Option<f64>,
    pub accuracy: Option<f64>,
}

fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite())
}

fn secs(t: Timestamp) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

impl Point {
    pub fn of(p: &MetricsPoint) -> Point {
        Point {
            step: p.step,
            t: secs(p.timestamp),
            throughput: finite(p.throughput).filter(|x| *x >= 0.0),
            training: finite(p.training_loss),
            validation: finite(p.validation_loss),
            margin: finite(p.preference.as_ref().and_then(|m| m.reward_margin)),
            accuracy: finite(p.preference.as_ref().and_then(|m| m.reward_accuracy)),
        }
    }
}

/// A run's points in step order; a step seen again replaces the one before (a replayed event
/// never doubles a point).
#[derive(Clone, Debug, Default)]
pub struct RunPoints {
    points: Vec<Point>,
    /// Bumped on every change, so the chart knows when to recompute.
    version: u64,
}

impl RunPoints {
    pub fn points(&self) -> &[Point] {
        &self.points
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn insert(&mut self, points: impl IntoIterator<Item = Point>) {
        let mut changed = false;
        for p in points {
            changed = true;
            match self.points.last() {
                Some(last) if last.step >= p.step => {
                    match self.points.binary_search_by_key(&p.step, |x| x.step) {
                        Ok(i) => self.points[i] = p,
                        Err(i) => self.points.insert(i, p),
                    }
                }
                _ => self.points.push(p),
            }
        }
        if changed {
            self.version += 1;
        }
    }
}

/// The median of finite values (none when there are none).
fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// How many times its usual time per step an interval may take before it counts as a pause
/// (a job stopped and resumed, a stall) rather than training.
const PAUSE: f64 = 4.0;

/// The tokens a run has seen by each of its points: the reported throughput (tokens per
/// second) integrated over time between consecutive points (trapezoids; where one end has no
/// throughput the other's is used, where neither has, the last known). The steps before the
/// first point, and an interval longer than [`PAUSE`] times the run's median time per step,
/// count at that median time per step: a resumed run's gap is not training.
pub fn tokens_seen(points: &[Point]) -> Vec<f64> {
    if points.is_empty() {
        return Vec::new();
    }
    let per_step = median(
        points
            .windows(2)
            .filter(|w| w[1].step > w[0].step && w[1].t > w[0].t)
            .map(|w| (w[1].t - w[0].t) / (w[1].step - w[0].step) as f64)
            .collect(),
    );
    let mut rate = points.iter().find_map(|p| p.throughput).unwrap_or(0.0);
    let first = rate * per_step.unwrap_or(0.0) * points[0].step as f64;
    let mut out = Vec::with_capacity(points.len());
    out.push(first);
    let mut total = first;
    for w in points.windows(2) {
        let (a, b) = (w[0], w[1]);
        let steps = b.step.saturating_sub(a.step) as f64;
        let r = match (a.throughput, b.throughput) {
            (Some(x), Some(y)) => (x + y) / 2.0,
            (Some(x), None) | (None, Some(x)) => x,
            (None, None) => rate,
        };
        rate = b.throughput.unwrap_or(r);
        let mut dt = (b.t - a.t).max(0.0);
        if let Some(m) = per_step
            && (dt <= 0.0 || dt > PAUSE * m * steps.max(1.0))
        {
            dt = m * steps;
        }
        total += r * dt;
        out.push(total);
    }
    out
}

/// Each point's x on `axis`: its step, the tokens seen by it, or the seconds since `start`
/// (the run's start; its first point when it has none, or when it started after it).
pub fn xs(points: &[Point], axis: XAxis, start: Option<f64>) -> Vec<f64> {
    match axis {
        XAxis::Step => points.iter().map(|p| p.step as f64).collect(),
        XAxis::Tokens => tokens_seen(points),
        XAxis::Time => {
            let Some(first) = points.first() else {
                return Vec::new();
            };
            let origin = start.filter(|s| *s <= first.t).unwrap_or(first.t);
            points.iter().map(|p| p.t - origin).collect()
        }
    }
}

/// At most two points per bucket of `buckets` across `x0..=x1` (the lowest and the highest,
/// in x order), so a run of a million points draws as fast as one of a hundred and keeps its
/// spikes. Points must be in x order; a series this small is returned as it is.
pub fn min_max(points: &[(f64, f64)], x0: f64, x1: f64, buckets: usize) -> Vec<(f64, f64)> {
    let buckets = buckets.max(1);
    if points.len() <= buckets * 2 {
        return points.to_vec();
    }
    let span = (x1 - x0).max(f64::MIN_POSITIVE);
    let bucket_of = |x: f64| (((x - x0) / span * buckets as f64) as usize).min(buckets - 1);
    let mut out = Vec::with_capacity(buckets * 2);
    let mut i = 0;
    while i < points.len() {
        let b = bucket_of(points[i].0);
        let (mut lo, mut hi) = (i, i);
        let mut j = i + 1;
        while j < points.len() && bucket_of(points[j].0) == b {
            if points[j].1 < points[lo].1 {
                lo = j;
            }
            if points[j].1 > points[hi].1 {
                hi = j;
            }
            j += 1;
        }
        let (a, c) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        out.push(points[a]);
        if c != a {
            out.push(points[c]);
        }
        i = j;
    }
    out
}

/// A series drawn as dots every `spacing` along x (and at each point), the straight line
/// between points followed: validation losses, logged every few hundred steps, read as a
/// dotted line rather than a few specks.
pub fn dotted(points: &[(f64, f64)], spacing: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    for w in points.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        out.push((x0, y0));
        if spacing > 0.0 && x1 > x0 {
            let n = ((x1 - x0) / spacing) as usize;
            for k in 1..n.min(10_000) {
                let x = x0 + spacing * k as f64;
                out.push((x, y0 + (y1 - y0) * (x - x0) / (x1 - x0)));
            }
        }
    }
    if let Some(last) = points.last() {
        out.push(*last);
    }
    out
}

/// A chart's x and y ranges.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bounds {
    pub x: (f64, f64),
    pub y: (f64, f64),
}

/// The ranges that hold every point of every series: x from the lowest to the highest (one
/// wide when they are equal), y padded by 5% (a flat line gets ±0.5) and not below zero
/// when no value is. None without a finite point.
pub fn bounds(series: &[&[(f64, f64)]]) -> Option<Bounds> {
    let mut x = (f64::INFINITY, f64::NEG_INFINITY);
    let mut y = (f64::INFINITY, f64::NEG_INFINITY);
    for s in series {
        for &(px, py) in s.iter() {
            if !(px.is_finite() && py.is_finite()) {
                continue;
            }
            x = (x.0.min(px), x.1.max(px));
            y = (y.0.min(py), y.1.max(py));
        }
    }
    if !x.0.is_finite() {
        return None;
    }
    if x.1 <= x.0 {
        x.1 = x.0 + 1.0;
    }
    let positive = y.0 >= 0.0;
    if y.1 - y.0 < 1e-9 {
        y = (y.0 - 0.5, y.1 + 0.5);
    }
    let pad = (y.1 - y.0) * 0.05;
    let low = if positive {
        (y.0 - pad).max(0.0)
    } else {
        y.0 - pad
    };
    Some(Bounds {
        x,
        y: (low, y.1 + pad),
    })
}

/// A hyperparameter's value as `--set` takes it (as `jobs compare` prints it).
pub fn value_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "–".into(),
        Some(Value::String(s)) => one_line(s).into_owned(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| value_text(Some(i)))
            .collect::<Vec<_>>()
            .join(","),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(f) if !n.is_u64() && !n.is_i64() => format::float(f),
            _ => n.to_string(),
        },
        // A training method, as the job's details say it.
        Some(v @ Value::Object(_)) => serde_json::from_value::<TrainingMethod>(v.clone())
            .map_or_else(|_| one_line(&v.to_string()).into_owned(), |m| m.describe()),
        Some(other) => one_line(&other.to_string()).into_owned(),
    }
}

/// One line of the table: a label and a value per run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub label: String,
    pub cells: Vec<String>,
    /// The best run was judged by this line.
    pub judged: bool,
}

/// A share (0..=1) as a whole percentage.
fn share(v: Option<f64>) -> String {
    finite(v).map_or_else(|| "–".into(), |v| format!("{:.0}%", v * 100.0))
}

fn loss(v: Option<f64>) -> String {
    finite(v).map_or_else(|| "–".into(), |v| format!("{v:.4}"))
}

/// The table's lines, in order: status and steps; only the hyperparameters (and the dataset)
/// that differ among the runs; the best and final validation and training losses; the
/// evaluation's adapter loss and how many held-out answers came closer than the base model's
/// (when a run has an evaluation); cost and duration.
pub fn fields(c: &RunComparison) -> Vec<Field> {
    let judged = c.best_by.as_deref();
    let line = |label: &str, by: Option<&str>, f: &dyn Fn(&ComparedRun) -> String| Field {
        label: label.to_string(),
        cells: c.runs.iter().map(f).collect(),
        judged: by.is_some() && by == judged,
    };
    let mut out = vec![
        line("status", None, &|r| r.status.as_str().to_string()),
        line("steps", None, &|r| {
            format!(
                "{}/{}",
                format::compact(r.steps),
                format::compact(r.total_steps)
            )
        }),
    ];
    for key in &c.differing {
        out.push(if key == "dataset" {
            line("dataset", None, &|r| one_line(&r.dataset_name).into_owned())
        } else {
            line(&one_line(key), None, &|r| {
                value_text(r.hyperparameters.get(key.as_str()))
            })
        });
    }
    out.extend([
        line("best val", Some("validation_loss"), &|r| {
            loss(r.best_validation_loss)
        }),
        line("final val", None, &|r| loss(r.final_validation_loss)),
        line("best train", None, &|r| loss(r.best_training_loss)),
        line("final train", Some("training_loss"), &|r| {
            loss(r.final_training_loss)
        }),
    ]);
    if c.runs.iter().any(|r| r.evaluation.is_some()) {
        out.push(line("eval loss", Some("evaluation_loss"), &|r| {
            loss(r.evaluation.as_ref().and_then(|e| e.adapter_loss))
        }));
        out.push(line(
            "closer than base",
            None,
            &|r| match r.evaluation.as_ref() {
                Some(e) => match e.adapter_closer {
                    Some(k) => format!("{k}/{}", e.scored),
                    None => "–".into(),
                },
                None => "–".into(),
            },
        ));
    }
    if c.runs.iter().any(ComparedRun::trained_on_preferences) {
        out.extend([
            line("reward acc", None, &|r| share(r.final_reward_accuracy)),
            line("margin", None, &|r| {
                finite(r.final_reward_margin).map_or_else(|| "–".into(), |v| format!("{v:.3}"))
            }),
            line("held-out pref", None, &|r| match r.evaluation.as_ref() {
                Some(e) if e.preference_accuracy.is_some() => format!(
                    "{} → {}",
                    share(e.base_preference_accuracy),
                    share(e.preference_accuracy)
                ),
                _ => "–".into(),
            }),
        ]);
    }
    out.push(line("cost", None, &|r| format::money(r.cost)));
    out.push(line("duration", None, &|r| {
        r.duration_seconds
            .filter(|s| s.is_finite())
            .map_or_else(|| "–".into(), |s| format::duration_secs(s.round() as i64))
    }));
    out
}

/// What `best_by` says, in words.
pub fn judged_by(best_by: &str) -> String {
    match best_by {
        "validation_loss" => "lowest validation loss".into(),
        "evaluation_loss" => "lowest evaluation loss".into(),
        "training_loss" => "lowest final training loss".into(),
        other => one_line(&other.replace('_', " ")).into_owned(),
    }
}

// ---- the view's state --------------------------------------------------------------------

/// Where a run's stored metrics are.
#[derive(Clone, Debug, PartialEq)]
pub enum Metrics {
    Loading,
    Ready,
    Failed(Failure),
}

/// One run of the view.
#[derive(Clone, Debug)]
pub struct CompareRun {
    pub id: JobId,
    pub metrics: Metrics,
    pub points: RunPoints,
}

/// What the chart's downsampled lines were computed for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct ChartKey {
    versions: Vec<u64>,
    width: usize,
    axis: XAxis,
    metric: YMetric,
    /// The runs' starts, in ms (the elapsed axis counts from them).
    starts: Vec<Option<i64>>,
}

/// A run's lines: training, then validation.
type RunLines = (Vec<(f64, f64)>, Vec<(f64, f64)>);

/// The downsampled lines for the last drawn width and axis.
#[derive(Clone, Debug, Default)]
struct ChartData {
    key: ChartKey,
    /// Per run: training, then validation (dotted).
    lines: Vec<RunLines>,
    bounds: Option<Bounds>,
}

/// The open Compare view.
#[derive(Clone, Debug)]
pub struct CompareView {
    /// Every answer for this view carries it.
    pub request: u64,
    pub runs: Vec<CompareRun>,
    pub comparison: Load<RunComparison>,
    pub axis: XAxis,
    pub metric: YMetric,
    /// The table's first line shown.
    pub scroll: u16,
    /// The table's lines on screen at the last layout (a page for PgUp/PgDn).
    pub page: u16,
    /// The focus the tab had when the view opened (back restores it).
    pub focus_before: Focus,
    chart: Option<Arc<ChartData>>,
}

/// Width of the y axis's labels and its line.
const Y_LABELS: u16 = 8;

impl CompareView {
    /// The view of `ids` (in that order), and what it asks the engine: the comparison and
    /// each run's metrics.
    pub fn open(ids: &[JobId], focus_before: Focus, s: &mut Shared) -> (Self, Vec<Effect>) {
        let request = s.request_id();
        let view = CompareView {
            request,
            runs: ids
                .iter()
                .map(|&id| CompareRun {
                    id,
                    metrics: Metrics::Loading,
                    points: RunPoints::default(),
                })
                .collect(),
            comparison: Load::Loading { request },
            axis: XAxis::Step,
            metric: YMetric::Loss,
            scroll: 0,
            page: 5,
            focus_before,
            chart: None,
        };
        let mut fx = vec![Effect::CompareRuns {
            request,
            ids: ids.to_vec(),
        }];
        fx.extend(ids.iter().map(|&id| Effect::LoadRunMetrics { request, id }));
        (view, fx)
    }

    pub fn ids(&self) -> Vec<JobId> {
        self.runs.iter().map(|r| r.id).collect()
    }

    /// Whether any run logged preference figures: only then does the y axis offer rewards.
    pub fn has_rewards(&self) -> bool {
        self.runs
            .iter()
            .flat_map(|r| r.points.points())
            .any(|p| p.margin.is_some() || p.accuracy.is_some())
    }

    /// The next y axis: loss, reward margin, reward accuracy; the loss alone when no run
    /// trained on preferences.
    pub fn cycle_metric(&mut self) {
        self.metric = if self.has_rewards() {
            self.metric.next()
        } else {
            YMetric::Loss
        };
    }

    /// The answer to [`Effect::CompareRuns`]; false when it is not this view's.
    pub fn compared(&mut self, request: u64, result: Result<Box<RunComparison>, ApiError>) -> bool {
        if !self.comparison.waits_on(request) {
            return false;
        }
        self.comparison = match result {
            Ok(c) => Load::Ready(Arc::new(*c)),
            Err(e) => Load::Failed(Failure::of(&e)),
        };
        true
    }

    /// The answer to [`Effect::LoadRunMetrics`]; false when it is not this view's. Points
    /// that came live while it loaded are newer: they stay over the stored ones.
    pub fn metrics_answer(
        &mut self,
        request: u64,
        id: JobId,
        result: Result<Vec<MetricsPoint>, ApiError>,
    ) -> bool {
        if request != self.request {
            return false;
        }
        let Some(run) = self
            .runs
            .iter_mut()
            .find(|r| r.id == id && r.metrics == Metrics::Loading)
        else {
            return false;
        };
        match result {
            Ok(points) => {
                let live = std::mem::take(&mut run.points);
                run.points.insert(points.iter().map(Point::of));
                run.points.insert(live.points().iter().copied());
                // Never a version drawn before.
                run.points.version = live.version + 1;
                run.metrics = Metrics::Ready;
            }
            Err(e) => run.metrics = Metrics::Failed(Failure::of(&e)),
        }
        true
    }

    /// Points from the engine's live metrics events; true when they belong to a run here.
    pub fn live(&mut self, id: JobId, points: &[MetricsPoint]) -> bool {
        match self.runs.iter_mut().find(|r| r.id == id) {
            Some(run) if !matches!(run.metrics, Metrics::Failed(_)) => {
                run.points.insert(points.iter().map(Point::of));
                true
            }
            _ => false,
        }
    }

    /// Scrolls the table by a movement; false for other actions. The bottom is "far enough":
    /// layout clamps it.
    pub fn scroll_by(&mut self, action: &crate::action::Action) -> bool {
        use crate::action::Action;
        let page = self.page.max(1);
        match action {
            Action::Up => self.scroll = self.scroll.saturating_sub(1),
            Action::Down => self.scroll = self.scroll.saturating_add(1),
            Action::PageUp => self.scroll = self.scroll.saturating_sub(page),
            Action::PageDown => self.scroll = self.scroll.saturating_add(page),
            Action::Top => self.scroll = 0,
            Action::Bottom => self.scroll = u16::MAX / 2,
            _ => return false,
        }
        true
    }

    // ---- layout and drawing ----------------------------------------------------------------

    /// When each run started (seconds since the epoch), from the records.
    fn starts(&self, s: &Shared) -> Vec<Option<f64>> {
        self.runs
            .iter()
            .map(|r| s.jobs.get(r.id).and_then(|j| j.started_at).map(secs))
            .collect()
    }

    /// Each run's colour, in the view's order (the order marked).
    fn colors(&self, t: &Theme) -> Vec<Color> {
        let palette = t.run_colors();
        (0..self.runs.len())
            .map(|i| palette[i % palette.len()])
            .collect()
    }

    /// Whether the runs trained on more than one dataset (the legend then names them).
    fn datasets_differ(&self, s: &Shared) -> bool {
        let mut ids = self
            .runs
            .iter()
            .filter_map(|r| s.jobs.get(r.id).map(|j| j.dataset_id));
        match ids.next() {
            Some(first) => ids.any(|d| d != first),
            None => false,
        }
    }

    /// The chart's area and the table's: the table takes what it needs up to 45% of the
    /// height (at least 7 rows), the chart the rest.
    fn areas(&self, area: Rect, s: &Shared) -> (Rect, Rect) {
        let inner_w = area.width.saturating_sub(2) as usize;
        let needed = self.table_lines(inner_w, s).len() as u16 + 2;
        let cap = (area.height * 45 / 100).max(7);
        let h = needed.min(cap).min(area.height.saturating_sub(6));
        let [chart, table] =
            Layout::vertical([Constraint::Min(0), Constraint::Length(h)]).areas(area);
        (chart, table)
    }

    /// The legend's lines at `width`, in at most `max_lines`: a coloured `━•` and the short
    /// id of each run (with its dataset when they differ, `★` on the best, and its metrics'
    /// state), then the key. Dataset names are shortened until it fits.
    fn legend(&self, width: usize, max_lines: usize, s: &Shared) -> Vec<Line<'static>> {
        let named = self.datasets_differ(s);
        let mut lines = Vec::new();
        for name_w in [24, 16, 12, 8] {
            lines = self.legend_lines(width, named.then_some(name_w), s);
            if lines.len() <= max_lines || !named {
                break;
            }
        }
        lines.truncate(max_lines.max(1));
        lines
    }

    /// [`CompareView::legend`] with dataset names cut to `name_w` columns (none: no names).
    fn legend_lines(&self, width: usize, name_w: Option<usize>, s: &Shared) -> Vec<Line<'static>> {
        let t = &s.theme;
        let colors = self.colors(t);
        let best = self.comparison.ready().and_then(|c| c.best);
        let mut entries: Vec<Vec<Span<'static>>> = Vec::new();
        for (run, color) in self.runs.iter().zip(&colors) {
            let mut e = vec![
                Span::styled("━• ", Style::new().fg(*color)),
                Span::styled(
                    run.id.short(),
                    Style::new().fg(*color).add_modifier(Modifier::BOLD),
                ),
            ];
            if best == Some(run.id) {
                e.push(Span::styled(" ★", Style::new().fg(*color)));
            }
            if let Some(w) = name_w
                && let Some(j) = s.jobs.get(run.id)
            {
                e.push(Span::styled(
                    format!(" {}", format::truncate(&s.dataset_name(j.dataset_id), w)),
                    t.base(),
                ));
            }
            match &run.metrics {
                Metrics::Loading => e.push(Span::styled(" loading…", t.muted())),
                Metrics::Failed(f) => e.push(Span::styled(
                    format!(" ✗ metrics: {}", f.message),
                    Style::new().fg(t.error),
                )),
                Metrics::Ready if run.points.points().is_empty() => {
                    e.push(Span::styled(" no metrics yet", t.muted()))
                }
                Metrics::Ready => {}
            }
            entries.push(e);
        }
        let key = match self.metric {
            YMetric::Loss => "━ training  • validation",
            // Rewards are logged on training steps only.
            YMetric::RewardMargin | YMetric::RewardAccuracy => "━ training steps",
        };
        entries.push(vec![Span::styled(key, t.muted())]);
        // Entries side by side, two spaces apart, as many to a line as fit.
        let mut lines: Vec<Line<'static>> = Vec::new();
        let mut cur: Vec<Span<'static>> = Vec::new();
        let mut used = 0;
        for e in entries {
            let w: usize = e.iter().map(|s| s.width()).sum();
            if !cur.is_empty() && used + 2 + w > width {
                lines.push(fit_line(Line::from(std::mem::take(&mut cur)), width));
                used = 0;
            }
            if !cur.is_empty() {
                cur.push(Span::raw("  "));
                used += 2;
            }
            used += w;
            cur.extend(e);
        }
        if !cur.is_empty() {
            lines.push(fit_line(Line::from(cur), width));
        }
        lines
    }

    /// The legend's area and the plot's, inside the chart's panel.
    fn chart_inner(&self, chart_area: Rect, s: &Shared) -> (Vec<Line<'static>>, Rect, Rect) {
        let inner = panel(&s.theme, "", false).inner(chart_area);
        let legend = self.legend(inner.width as usize, (inner.height / 3).max(1) as usize, s);
        let [legend_area, plot] =
            Layout::vertical([Constraint::Length(legend.len() as u16), Constraint::Min(0)])
                .areas(inner);
        (legend, legend_area, plot)
    }

    /// What the chart's lines depend on besides the points' versions.
    fn chart_key(&self, width: usize, starts: &[Option<f64>]) -> ChartKey {
        ChartKey {
            versions: self.runs.iter().map(|r| r.points.version()).collect(),
            width,
            axis: self.axis,
            metric: self.metric,
            starts: starts
                .iter()
                .map(|s| s.map(|x| (x * 1000.0) as i64))
                .collect(),
        }
    }

    /// The lines to draw at a plot `width` columns wide (braille gives two dots a column).
    fn chart_data(&self, width: usize, starts: &[Option<f64>]) -> ChartData {
        let key = self.chart_key(width, starts);
        let raw: Vec<RunLines> = self
            .runs
            .iter()
            .zip(starts)
            .map(|(r, start)| {
                let points = r.points.points();
                let x = xs(points, self.axis, *start);
                let metric = self.metric;
                let pick = |f: &dyn Fn(&Point) -> Option<f64>| -> Vec<(f64, f64)> {
                    points
                        .iter()
                        .zip(&x)
                        .filter_map(|(p, x)| f(p).map(|y| (*x, y)))
                        .collect()
                };
                (pick(&|p| metric.of(p).0), pick(&|p| metric.of(p).1))
            })
            .collect();
        let all: Vec<&[(f64, f64)]> = raw
            .iter()
            .flat_map(|(a, b)| [a.as_slice(), b.as_slice()])
            .collect();
        let bounds = bounds(&all);
        let lines = match bounds {
            Some(b) => {
                let buckets = width.max(1) * 2;
                // A dot every other column.
                let spacing = (b.x.1 - b.x.0) / width.max(1) as f64 * 2.0;
                raw.iter()
                    .map(|(train, val)| {
                        (
                            min_max(train, b.x.0, b.x.1, buckets),
                            dotted(&min_max(val, b.x.0, b.x.1, buckets), spacing),
                        )
                    })
                    .collect()
            }
            None => raw.iter().map(|_| (Vec::new(), Vec::new())).collect(),
        };
        ChartData { key, lines, bounds }
    }

    /// The chart's data for this width, from the layout's cache when nothing changed.
    fn chart_for(&self, width: usize, starts: &[Option<f64>]) -> Arc<ChartData> {
        match &self.chart {
            Some(c) if c.key == self.chart_key(width, starts) => c.clone(),
            _ => Arc::new(self.chart_data(width, starts)),
        }
    }

    /// Fits the view to `area`: downsamples the lines for the plot's width (once per width,
    /// axis and new points) and keeps the table's scroll within its lines.
    pub fn layout(&mut self, area: Rect, s: &Shared) {
        let (chart_area, table_area) = self.areas(area, s);
        let (_, _, plot) = self.chart_inner(chart_area, s);
        let width = plot.width.saturating_sub(Y_LABELS).max(1) as usize;
        let starts = self.starts(s);
        self.chart = Some(self.chart_for(width, &starts));
        let inner = panel(&s.theme, "", false).inner(table_area);
        let lines = self.table_lines(inner.width as usize, s).len() as u16;
        // The header stays; the rest scrolls.
        let rows = inner.height.saturating_sub(1);
        self.page = rows.max(1);
        self.scroll = self
            .scroll
            .min(lines.saturating_sub(1).saturating_sub(rows));
    }

    pub fn draw(&self, frame: &mut Frame, area: Rect, s: &Shared) {
        let (chart_area, table_area) = self.areas(area, s);
        self.draw_chart(frame, chart_area, s);
        self.draw_table(frame, table_area, s);
    }

    fn draw_chart(&self, frame: &mut Frame, area: Rect, s: &Shared) {
        let t = &s.theme;
        let mut title = vec![
            Span::styled(
                format!(
                    " Compare {} runs · {} by ",
                    self.runs.len(),
                    self.metric.name()
                ),
                t.header(),
            ),
            Span::styled(self.axis.name(), t.header().fg(t.accent)),
            Span::styled(
                format!(
                    " ({} → {}) ",
                    s.keymap.hint(crate::action::Tab::Jobs, "compare_axis"),
                    self.axis.next().name()
                ),
                t.muted(),
            ),
        ];
        if self.has_rewards() {
            title.push(Span::styled(
                format!(
                    "({} → {}) ",
                    s.keymap.hint(crate::action::Tab::Jobs, "compare_metric"),
                    self.metric.next().name()
                ),
                t.muted(),
            ));
        }
        if area.width < 50 {
            title.truncate(2);
        }
        let block = panel(
            t,
            fit_line(Line::from(title), area.width.saturating_sub(2) as usize),
            true,
        );
        frame.render_widget(block, area);
        let (legend, legend_area, plot) = self.chart_inner(area, s);
        frame.render_widget(Paragraph::new(legend), legend_area);
        if plot.height < 3 {
            return;
        }
        let width = plot.width.saturating_sub(Y_LABELS).max(1) as usize;
        let data = self.chart_for(width, &self.starts(s));
        let Some(b) = data.bounds else {
            let all = |m: fn(&Metrics) -> bool| self.runs.iter().all(|r| m(&r.metrics));
            let msg = if self.runs.iter().any(|r| r.metrics == Metrics::Loading) {
                "loading metrics…".to_string()
            } else if all(|m| matches!(m, Metrics::Failed(_))) {
                match &self.runs.first().map(|r| &r.metrics) {
                    Some(Metrics::Failed(f)) => format!("metrics unavailable: {}", f.message),
                    _ => "metrics unavailable".into(),
                }
            } else if self.metric == YMetric::Loss {
                "no metrics yet: the runs have not logged a loss".to_string()
            } else {
                format!("no {} logged yet", self.metric.name())
            };
            frame.render_widget(
                Paragraph::new(wrap_all(vec![Line::raw(msg)], plot.width as usize))
                    .style(t.muted()),
                plot,
            );
            return;
        };
        let colors = self.colors(t);
        let mut datasets = Vec::new();
        // Training lines first, validation dots over them.
        for ((train, _), color) in data.lines.iter().zip(&colors) {
            datasets.push(
                ChartSeries::default()
                    .marker(Marker::Braille)
                    .graph_type(GraphType::Line)
                    .style(Style::new().fg(*color))
                    .data(train),
            );
        }
        for ((_, val), color) in data.lines.iter().zip(&colors) {
            datasets.push(
                ChartSeries::default()
                    .marker(Marker::Dot)
                    .graph_type(GraphType::Scatter)
                    .style(Style::new().fg(*color))
                    .data(val),
            );
        }
        let (x0, x1) = b.x;
        let (y0, y1) = b.y;
        let axis = self.axis;
        let chart = super::jobs::themed_chart(datasets, t, (x0, x1), (y0, y1), |v| axis.tick(v));
        frame.render_widget(chart, plot);
    }

    /// The table as lines of cells (header first), runs as rows when every column fits
    /// `width`, else runs as columns (the lines scroll); or what stands instead.
    fn table_lines(&self, width: usize, s: &Shared) -> Vec<Line<'static>> {
        let t = &s.theme;
        let c = match &self.comparison {
            Load::Ready(c) => c.clone(),
            Load::Failed(f) => {
                return wrap_all(f.lines("could not compare the runs:", t), width);
            }
            Load::Loading { .. } | Load::Idle => {
                return vec![Line::styled(
                    format!(
                        "comparing {} runs: the engine reads their records and metrics…",
                        self.runs.len()
                    ),
                    Style::new().fg(t.info),
                )];
            }
        };
        let fields = fields(&c);
        let colors = self.colors(t);
        let color_of = |id: JobId| {
            self.runs
                .iter()
                .position(|r| r.id == id)
                .and_then(|i| colors.get(i).copied())
                .unwrap_or(t.foreground)
        };
        let run_head = |r: &ComparedRun| {
            let star = if c.best == Some(r.id) { "★ " } else { "" };
            Span::styled(
                format!("{star}{}", r.id.short()),
                Style::new().fg(color_of(r.id)).add_modifier(Modifier::BOLD),
            )
        };
        let label = |f: &Field| {
            let text = if f.judged {
                format!("{} ★", f.label)
            } else {
                f.label.clone()
            };
            Span::styled(text, t.header())
        };
        let cell = |f: &Field, i: usize, r: &ComparedRun| {
            let mut st = t.base();
            if c.best == Some(r.id) {
                st = st.add_modifier(Modifier::BOLD);
            }
            // The value the best was judged by: underlined too (a colour here could be a
            // run's).
            if f.judged && c.best == Some(r.id) {
                st = st.add_modifier(Modifier::UNDERLINED);
            }
            Span::styled(f.cells[i].clone(), st)
        };
        // Runs as rows: a column per field.
        let mut grid: Vec<Vec<Span<'static>>> = Vec::new();
        let mut head: Vec<Span<'static>> = vec![Span::styled("run", t.header())];
        head.extend(fields.iter().map(label));
        grid.push(head);
        for (i, r) in c.runs.iter().enumerate() {
            let mut row = vec![run_head(r)];
            row.extend(fields.iter().map(|f| cell(f, i, r)));
            grid.push(row);
        }
        let total = |natural: &[u16], gap: usize| {
            natural.iter().map(|w| *w as usize).sum::<usize>()
                + natural.len().saturating_sub(1) * gap
        };
        let runs_as_rows = total(&natural_widths(&grid), 2) <= width;
        if !runs_as_rows {
            // Runs as columns: a line per field.
            grid.clear();
            let mut head: Vec<Span<'static>> = vec![Span::raw("")];
            head.extend(c.runs.iter().map(run_head));
            grid.push(head);
            for f in &fields {
                let mut row = vec![label(f)];
                row.extend(c.runs.iter().enumerate().map(|(i, r)| cell(f, i, r)));
                grid.push(row);
            }
        }
        let natural = natural_widths(&grid);
        // Two spaces between columns, one when that is what it takes to fit.
        let gap: u16 = if total(&natural, 2) <= width { 2 } else { 1 };
        // The runs' ids are never cut: the labels and the values give way first.
        let head_w = |sp: &Span| sp.width().min(u16::MAX as usize) as u16;
        let cols: Vec<Col> = (0..natural.len())
            .map(|i| {
                let id_w = if runs_as_rows {
                    (i == 0).then(|| grid.iter().skip(1).map(|r| head_w(&r[0])).max())
                } else {
                    (i > 0).then(|| grid[0].get(i).map(head_w))
                }
                .flatten();
                match id_w {
                    Some(w) => Col::fit(w, 28.max(w)),
                    // The labels keep 12 columns (`learning_rat…`) before the values give.
                    None if i == 0 => Col::fit(natural[0].min(12), 20),
                    None => Col::fit(4, 28),
                }
            })
            .collect();
        let widths = column_widths(&cols, &natural, width as u16, gap);
        let sep = " ".repeat(gap as usize);
        grid.into_iter()
            .map(|row| {
                let mut spans: Vec<Span<'static>> = Vec::new();
                for (i, (sp, w)) in row.into_iter().zip(&widths).enumerate() {
                    if i > 0 {
                        spans.push(Span::raw(sep.clone()));
                    }
                    let w = *w as usize;
                    let fitted = fit_line(Line::from(sp), w);
                    let pad = w.saturating_sub(fitted.width());
                    // Labels to the left, values to the right (numbers line up).
                    if i == 0 {
                        spans.extend(fitted.spans);
                        spans.push(Span::raw(" ".repeat(pad)));
                    } else {
                        spans.push(Span::raw(" ".repeat(pad)));
                        spans.extend(fitted.spans);
                    }
                }
                fit_line(Line::from(spans), width)
            })
            .collect()
    }

    fn draw_table(&self, frame: &mut Frame, area: Rect, s: &Shared) {
        let t = &s.theme;
        let mut title = vec![Span::styled(" Runs ", t.header())];
        if let Some(c) = self.comparison.ready() {
            if let (Some(best), Some(by)) = (c.best, c.best_by.as_deref()) {
                title.push(Span::styled(
                    format!("★ {} best by {} ", best.short(), judged_by(by)),
                    t.base(),
                ));
            }
            if c.differing.is_empty() {
                title.push(Span::styled("· same configuration ", t.muted()));
            }
            if c.best.is_none() && c.differing.iter().any(|k| k == "method") {
                title.push(Span::styled(
                    "· no best across methods: their losses differ in kind ",
                    t.muted(),
                ));
            }
        }
        let width = area.width.saturating_sub(2) as usize;
        let lines = self.table_lines(width, s);
        let mut block = panel(t, fit_line(Line::from(title), width), false);
        let inner = block.inner(area);
        let rows = inner.height.saturating_sub(1) as usize;
        let body = lines.len().saturating_sub(1);
        let scroll = (self.scroll as usize).min(body.saturating_sub(rows));
        if self.comparison.ready().is_some() && body > rows {
            let last = (scroll + rows).min(body);
            block = block.title_bottom(
                Line::styled(
                    format!(
                        " {}–{} of {}{} ",
                        scroll + 1,
                        last,
                        body,
                        if last < body { " ↓" } else { " ↑" }
                    ),
                    t.accent(),
                )
                .right_aligned(),
            );
        }
        let shown: Vec<Line<'static>> = if self.comparison.ready().is_some() {
            lines
                .iter()
                .take(1)
                .cloned()
                .chain(lines.iter().skip(1 + scroll).take(rows).cloned())
                .collect()
        } else {
            lines
        };
        frame.render_widget(Paragraph::new(shown).block(block), area);
    }
}

/// The widest cell of each column of `grid`.
fn natural_widths(grid: &[Vec<Span<'static>>]) -> Vec<u16> {
    let n = grid.iter().map(Vec::len).max().unwrap_or(0);
    (0..n)
        .map(|i| {
            grid.iter()
                .filter_map(|r| r.get(i))
                .map(|s| s.width().min(u16::MAX as usize) as u16)
                .max()
                .unwrap_or(0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn point(step: u64, t: f64, throughput: Option<f64>) -> Point {
        Point {
            step,
            t,
            throughput,
            training: Some(1.0),
            validation: None,
            margin: None,
            accuracy: None,
        }
    }

    #[test]
    fn the_y_axis_shows_the_loss_or_a_preference_runs_rewards() {
        let p = Point {
            margin: Some(0.4),
            accuracy: Some(0.75),
            validation: Some(2.0),
            ..point(3, 0.0, None)
        };
        assert_eq!(YMetric::Loss.of(&p), (Some(1.0), Some(2.0)));
        // Rewards are lines without validation dots.
        assert_eq!(YMetric::RewardMargin.of(&p), (Some(0.4), None));
        assert_eq!(YMetric::RewardAccuracy.of(&p), (Some(0.75), None));
        let mut y = YMetric::Loss;
        let names: Vec<&str> = (0..3)
            .map(|_| {
                y = y.next();
                y.name()
            })
            .collect();
        assert_eq!(names, ["reward margin", "reward accuracy", "loss"]);
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6 * b.abs().max(1.0)
    }

    #[test]
    fn tokens_seen_integrates_throughput_over_time() {
        // 10 s a step at 100 tokens/s, then 200 tokens/s: trapezoids between points.
        let points = [
            point(1, 10.0, Some(100.0)),
            point(2, 20.0, Some(100.0)),
            point(3, 30.0, Some(200.0)),
            point(4, 40.0, Some(200.0)),
        ];
        let seen = tokens_seen(&points);
        // The step before the first point at the median 10 s a step and the first rate.
        assert!(close(seen[0], 1_000.0), "{seen:?}");
        assert!(close(seen[1], 2_000.0), "{seen:?}");
        assert!(close(seen[2], 3_500.0), "{seen:?}");
        assert!(close(seen[3], 5_500.0), "{seen:?}");
        // Never decreasing.
        assert!(seen.windows(2).all(|w| w[1] >= w[0]));
    }

    #[test]
    fn tokens_seen_fills_gaps_and_skips_pauses() {
        // A point without throughput takes its neighbour's; a 1,000 s pause between steps 3
        // and 4 (a resumed run) counts as one step at the usual 10 s.
        let points = [
            point(10, 100.0, Some(50.0)),
            point(11, 110.0, None),
            point(12, 120.0, Some(50.0)),
            point(13, 1_120.0, Some(50.0)),
            point(14, 1_130.0, None),
        ];
        let seen = tokens_seen(&points);
        assert!(close(seen[0], 50.0 * 10.0 * 10.0), "{seen:?}");
        let per_step = 500.0;
        for (i, s) in seen.iter().enumerate() {
            assert!(close(*s, 5_000.0 + per_step * i as f64), "{i}: {seen:?}");
        }
        // No throughput at all: nothing is counted, and nothing breaks.
        let none = [point(1, 0.0, None), point(2, 5.0, None)];
        assert_eq!(tokens_seen(&none), vec![0.0, 0.0]);
        assert!(tokens_seen(&[]).is_empty());
        // One point: its steps at no known pace count nothing.
        assert_eq!(tokens_seen(&[point(5, 0.0, Some(10.0))]), vec![0.0]);
    }

    #[test]
    fn the_x_axis_counts_steps_tokens_or_seconds_since_the_start() {
        let points = [point(1, 1_000.0, Some(10.0)), point(3, 1_020.0, Some(10.0))];
        assert_eq!(xs(&points, XAxis::Step, None), vec![1.0, 3.0]);
        // From the run's start; from its first point when it has none (or a later one).
        assert_eq!(xs(&points, XAxis::Time, Some(940.0)), vec![60.0, 80.0]);
        assert_eq!(xs(&points, XAxis::Time, None), vec![0.0, 20.0]);
        assert_eq!(xs(&points, XAxis::Time, Some(5_000.0)), vec![0.0, 20.0]);
        assert_eq!(xs(&points, XAxis::Tokens, None), vec![100.0, 300.0]);
        // x switches in turn and back.
        let mut a = XAxis::Step;
        for want in [XAxis::Tokens, XAxis::Time, XAxis::Step] {
            a = a.next();
            assert_eq!(a, want);
        }
        assert_eq!(XAxis::Time.tick(125.0), "2m05s");
        assert_eq!(XAxis::Tokens.tick(1_234_567.0), "1.2M");
    }

    #[test]
    fn bounds_hold_every_series_padded() {
        let a = [(0.0, 2.0), (10.0, 1.0)];
        let b = [(5.0, 0.5), (20.0, f64::NAN)];
        let got = bounds(&[&a, &b]).unwrap();
        // x spans both; the NaN point does not count.
        assert_eq!(got.x, (0.0, 10.0));
        assert!(
            close(got.y.0, 0.5 - 0.075) && close(got.y.1, 2.0 + 0.075),
            "{got:?}"
        );
        // A flat line is given room; zero is the floor of positive losses.
        let flat = [(3.0, 0.01), (3.0, 0.01)];
        let got = bounds(&[&flat]).unwrap();
        assert_eq!(got.x, (3.0, 4.0));
        assert_eq!(got.y.0, 0.0);
        assert!(got.y.1 > 0.51);
        assert!(bounds(&[&[], &[(f64::NAN, 1.0)]]).is_none());
    }

    #[test]
    fn downsampling_keeps_spikes_and_order() {
        let points: Vec<(f64, f64)> = (0..10_000)
            .map(|i| (i as f64, if i == 5_000 { 9.0 } else { 1.0 }))
            .collect();
        let out = min_max(&points, 0.0, 9_999.0, 100);
        assert!(out.len() <= 200, "{}", out.len());
        assert!(out.contains(&(5_000.0, 9.0)));
        assert!(out.windows(2).all(|w| w[0].0 <= w[1].0));
        // Small series are left as they are.
        assert_eq!(
            min_max(&points[..50], 0.0, 49.0, 100),
            points[..50].to_vec()
        );
        // Dots every 2 along x, on the line between the points, the points kept.
        let d = dotted(&[(0.0, 0.0), (10.0, 10.0)], 2.0);
        assert_eq!(
            d,
            vec![
                (0.0, 0.0),
                (2.0, 2.0),
                (4.0, 4.0),
                (6.0, 6.0),
                (8.0, 8.0),
                (10.0, 10.0)
            ]
        );
    }

    #[test]
    fn the_table_shows_only_what_differs_then_how_each_run_went() {
        let c = fixtures::comparison();
        let f = fields(&c);
        let labels: Vec<&str> = f.iter().map(|f| f.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "status",
                "steps",
                "dataset",
                "learning_rate",
                "lora_rank",
                "best val",
                "final val",
                "best train",
                "final train",
                "eval loss",
                "closer than base",
                "cost",
                "duration"
            ]
        );
        let row = |label: &str| f.iter().find(|f| f.label == label).unwrap();
        assert_eq!(
            row("dataset").cells,
            ["support-chats", "alpaca-mini", "support-chats"]
        );
        assert_eq!(row("learning_rate").cells, ["2e-4", "1e-4", "2e-4"]);
        assert_eq!(row("lora_rank").cells, ["16", "16", "32"]);
        assert_eq!(row("closer than base").cells, ["–", "14/20", "–"]);
        assert_eq!(row("eval loss").cells, ["–", "0.9121", "–"]);
        // The best was judged by validation loss: that line is marked, and only it.
        let judged: Vec<&str> = f
            .iter()
            .filter(|f| f.judged)
            .map(|f| f.label.as_str())
            .collect();
        assert_eq!(judged, ["best val"]);
        // Hyperparameters the runs share are not lines; without evaluations, no eval lines.
        let mut same = c.clone();
        same.differing = vec!["learning_rate".into()];
        for r in &mut same.runs {
            r.evaluation = None;
        }
        let labels: Vec<String> = fields(&same).into_iter().map(|f| f.label).collect();
        assert!(!labels.iter().any(|l| l == "lora_rank" || l == "dataset"));
        assert!(
            !labels
                .iter()
                .any(|l| l.starts_with("eval") || l.starts_with("closer"))
        );
        assert!(!labels.iter().any(|l| l == "reward acc" || l == "margin"));
        // Preference runs add their last reward accuracy and margin and the held-out pairs.
        let mut dpo = c.clone();
        dpo.runs[1].final_reward_accuracy = Some(0.75);
        dpo.runs[1].final_reward_margin = Some(0.4213);
        if let Some(e) = dpo.runs[1].evaluation.as_mut() {
            (e.base_preference_accuracy, e.preference_accuracy) = (Some(0.5), Some(0.8));
        }
        let f = fields(&dpo);
        let row = |label: &str| f.iter().find(|f| f.label == label).unwrap().cells.clone();
        assert_eq!(row("reward acc"), ["–", "75%", "–"]);
        assert_eq!(row("margin"), ["–", "0.421", "–"]);
        assert_eq!(row("held-out pref"), ["–", "50% → 80%", "–"]);
        // Values read as `--set` takes them; text from the engine is cleaned.
        assert_eq!(
            value_text(Some(&serde_json::json!(["q_proj", "v_proj"]))),
            "q_proj,v_proj"
        );
        assert_eq!(value_text(Some(&serde_json::json!("a\u{1b}[2Jb"))), "ab");
        assert_eq!(value_text(Some(&serde_json::json!(0.05))), "0.05");
        assert_eq!(value_text(Some(&serde_json::json!(true))), "true");
        let simpo = serde_json::json!({"name": "simpo", "beta": 2.0, "gamma": 0.5});
        assert_eq!(value_text(Some(&simpo)), "simpo (beta 2, gamma 0.5)");
        // Not a method: shown as it is, on one line.
        let odd = serde_json::json!({"name": "x\u{1b}[2J"});
        assert!(!value_text(Some(&odd)).contains('\u{1b}'));
        assert_eq!(value_text(None), "–");
    }

    #[test]
    fn points_replace_by_step_and_live_ones_stay_over_stored_ones() {
        let job = fixtures::job_id(1);
        let mut rp = RunPoints::default();
        let pts = fixtures::run_metrics(job, 5, fixtures::now(), 1.0, 10.0, 0.5);
        rp.insert(pts.iter().map(Point::of));
        let v = rp.version();
        rp.insert(pts[2..3].iter().map(Point::of));
        assert_eq!(rp.points().len(), 5);
        assert!(rp.version() > v);
        let mut early = pts[0].clone();
        early.step = 0;
        rp.insert([Point::of(&early)]);
        assert_eq!(rp.points()[0].step, 0);
        assert!(rp.points().windows(2).all(|w| w[0].step < w[1].step));
    }
}
