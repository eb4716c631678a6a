//! The Datasets tab: the table and the detail pane (statistics, validation problems, sample,
//! exact counts once known), what can be done to the selected dataset, and its Inspect view
//! ([`super::datasets_inspect`]).

use super::datasets_inspect::{self as inspect, InspectView};
use super::{Browse, Component, DetailPane, Focus, Handled, Request, TabHits};
use crate::action::{Action, Tab};
use crate::context::{Confirmed, Overlay, PromptKind, Shared, TaskInfo, lists as lists_columns};
use crate::effect::{Effect, Level, TaskKey};
use crate::format;
use crate::input::Input;
use crate::theme::Theme;
use crate::ui::{Col, draw_list, headers, kv, list_title, panel, text_lines};
use brightrun_api::ApiError;
use brightrun_api::domain::*;
use brightrun_api::events::EngineEvent;
use brightrun_api::ids::DatasetId;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use std::collections::HashMap;
use std::sync::Arc;

pub(crate) fn status_style(t: &Theme, s: DatasetStatus) -> Style {
    match s {
        DatasetStatus::Ready => Style::new().fg(t.success),
        DatasetStatus::Error => Style::new().fg(t.error),
        DatasetStatus::Uploading | DatasetStatus::Validating => Style::new().fg(t.info),
    }
}

/// The Datasets tab's own state: focus and detail scroll (the list view is shared: the
/// command line, jumps and uploads select in it too).
const PANE: DetailPane = DetailPane {
    wide_list_pct: 58,
    tall_list_pct: 50,
    empty: "Select a dataset to see its statistics, problems and sample.",
    title: " Detail (enter to scroll) ",
    focused_title: " Detail (↑↓ scroll, esc back) ",
};

/// Exact counts kept per dataset: one per model and length, newest first.
const KEEP_COUNTS: usize = 4;

#[derive(Clone, Debug, Default)]
pub struct DatasetsTab {
    pub browse: Browse,
    /// The Inspect view, while it is open.
    pub inspect: Option<InspectView>,
    /// Exact counts per dataset, newest first, one per model and max_seq_length: from the
    /// Inspect view's answers (the detail pane shows them; nothing is asked to draw them).
    pub counts: HashMap<DatasetId, Vec<Arc<DatasetInspection>>>,
}

impl Component for DatasetsTab {
    fn handle(&mut self, action: &Action, s: &mut Shared) -> Handled {
        if self.inspect.is_some() {
            return self.handle_inspect(action, s);
        }
        let sel = s.selected_dataset().cloned();
        if self.browse.browse(Tab::Datasets, sel.is_some(), action, s) {
            return Handled::done();
        }
        let fx = match action {
            Action::AddDataset => {
                let start = std::env::current_dir()
                    .map(|d| format!("{}/", d.display()))
                    .unwrap_or_else(|_| "./".into());
                s.open_file_browser(&start)
            }
            Action::Rename => {
                let Some(d) = sel else {
                    return Handled::Consumed(s.nothing_selected());
                };
                s.overlay = Some(Overlay::Prompt {
                    title: format!("Rename {}", d.name),
                    input: Box::new(Input::new(&d.name)),
                    kind: PromptKind::Rename(d.id),
                    hint: None,
                });
                Vec::new()
            }
            Action::Describe => {
                let Some(d) = sel else {
                    return Handled::Consumed(s.nothing_selected());
                };
                s.overlay = Some(Overlay::Prompt {
                    title: format!("Description of {}", d.name),
                    input: Box::new(Input::new(d.description.as_deref().unwrap_or(""))),
                    kind: PromptKind::Describe(d.id),
                    hint: None,
                });
                Vec::new()
            }
            Action::Validate => {
                let Some(d) = sel else {
                    return Handled::Consumed(s.nothing_selected());
                };
                s.notify_user(format!("validating {}…", d.name), Level::Info);
                s.tasks.insert(
                    TaskKey::Validation(d.id),
                    TaskInfo {
                        label: format!("validating {}", d.name),
                        done: 0,
                        total: None,
                    },
                );
                vec![Effect::ValidateDataset(d.id)]
            }
            Action::Clean => {
                let Some(d) = sel else {
                    return Handled::Consumed(s.nothing_selected());
                };
                if d.status != DatasetStatus::Error {
                    s.notify_user(
                        format!(
                            "{} is {}: only a dataset with problems needs cleaning",
                            d.name,
                            d.status.phrase()
                        ),
                        Level::Warning,
                    );
                    return Handled::done();
                }
                s.overlay = Some(Overlay::Confirm {
                    title: "Clean dataset?".into(),
                    lines: vec![
                        format!(
                            "A new dataset “{} (clean)” of the valid examples of {}.",
                            d.name, d.file_name
                        ),
                        "Invalid examples and exact duplicates are left out; the original stays."
                            .into(),
                    ],
                    on_yes: Confirmed::CleanDataset(d.id),
                });
                Vec::new()
            }
            Action::Delete => {
                let Some(d) = sel else {
                    return Handled::Consumed(s.nothing_selected());
                };
                s.overlay = Some(Overlay::Confirm {
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
                    return Handled::Consumed(s.nothing_selected());
                };
                if d.status != DatasetStatus::Ready || !d.training_ready {
                    s.notify_user(
                        format!(
                            "{} is {}: only a ready dataset can be trained on",
                            d.name,
                            d.status.phrase()
                        ),
                        Level::Warning,
                    );
                    return Handled::done();
                }
                s.requests.push(Request::Train(d.id));
                Vec::new()
            }
            Action::Inspect => {
                let Some(d) = sel else {
                    return Handled::Consumed(s.nothing_selected());
                };
                if d.status != DatasetStatus::Ready {
                    s.notify_user(
                        format!(
                            "{} is {}: a dataset is inspected once it is validated and ready",
                            d.name,
                            d.status.phrase()
                        ),
                        Level::Warning,
                    );
                    return Handled::done();
                }
                // The model first, with Configure's picker (the app has it).
                s.requests.push(Request::PickInspectModel {
                    dataset: d.id,
                    current: None,
                });
                Vec::new()
            }
            _ => return Handled::Ignored,
        };
        Handled::Consumed(fx)
    }

    fn browse(&mut self) -> Option<&mut Browse> {
        Some(&mut self.browse)
    }

    fn on_event(&mut self, ev: &EngineEvent, _s: &Shared) -> Vec<Effect> {
        if let EngineEvent::Dataset(d) = ev
            && d.deleted_at.is_some()
        {
            self.counts.remove(&d.id);
        }
        Vec::new()
    }

    /// The Inspect view's own keys come first there (`n`, `p`, `/`, `m`, `s`).
    fn captures_input(&self) -> bool {
        self.inspect.is_some()
    }

    fn layout(&mut self, area: Rect, s: &mut Shared) -> TabHits {
        if let Some(view) = &mut self.inspect {
            view.layout(area, s);
            return TabHits {
                list: None,
                detail: Some(area),
            };
        }
        let lines = s
            .selected_dataset()
            .map(|x| detail_lines(x, s, self.counts.get(&x.id)));
        PANE.layout(area, &mut self.browse, &mut s.dataset_list, lines)
    }

    fn draw(&self, frame: &mut Frame, area: Rect, s: &Shared) {
        if let Some(view) = &self.inspect {
            view.draw(frame, area, s);
            return;
        }
        let (list_area, detail_area) = PANE.split(area, &self.browse);
        self.draw_list(frame, list_area, s);
        let lines = s
            .selected_dataset()
            .map(|x| detail_lines(x, s, self.counts.get(&x.id)));
        PANE.draw(frame, detail_area, &s.theme, &self.browse, lines);
    }

    fn keys(&self) -> &'static [(&'static str, &'static str)] {
        if self.inspect.is_some() {
            // In the order that fits 80 columns best; `?` lists them all.
            return &[
                ("inspect_next", "next"),
                ("inspect_line", "line"),
                ("inspect_model", "model"),
                ("inspect_stats", "counts"),
                ("inspect_prev", "prev"),
                ("down", "scroll"),
                ("back", "back"),
            ];
        }
        // The hints follow the focused pane.
        if self.browse.focus == super::Focus::Detail {
            return super::DETAIL_KEYS;
        }
        &[
            ("add", "add"),
            ("train", "train"),
            ("inspect", "inspect"),
            ("rename", "rename"),
            ("validate", "validate"),
            ("delete", "delete"),
            ("filter", "filter"),
            ("sort", "sort"),
        ]
    }
}

impl DatasetsTab {
    /// An action while the Inspect view is open: its own keys first, then the keymap's; the
    /// list's keys do nothing under it.
    fn handle_inspect(&mut self, action: &Action, s: &mut Shared) -> Handled {
        let action = match action {
            Action::Input(key) => match s
                .keymap
                .lookup_inspect(key)
                .or_else(|| s.keymap.lookup(Tab::Datasets, key))
            {
                Some(a) => a,
                None => return Handled::done(),
            },
            other => other.clone(),
        };
        let Some(view) = self.inspect.as_mut() else {
            return Handled::Ignored;
        };
        let fx = match action {
            Action::InspectNext | Action::InspectPrev => {
                let delta = if action == Action::InspectNext { 1 } else { -1 };
                match view.step(delta) {
                    Ok(at) => view.ask_example(at, s),
                    Err(why) => {
                        s.notify_user(why, Level::Info);
                        Vec::new()
                    }
                }
            }
            Action::InspectLine => {
                s.overlay = Some(Overlay::Prompt {
                    title: format!("Go to a line of {}", view.name),
                    input: Box::new(Input::new("")),
                    kind: PromptKind::InspectLine(view.dataset),
                    hint: Some("a line of the file (1-based), or #N for example N".into()),
                });
                Vec::new()
            }
            Action::InspectModel => {
                s.requests.push(Request::PickInspectModel {
                    dataset: view.dataset,
                    current: Some(view.model.clone()),
                });
                Vec::new()
            }
            Action::InspectStats => {
                view.stats_shown = !view.stats_shown;
                if view.stats_shown && !matches!(view.stats, inspect::Load::Loading { .. }) {
                    let known = self.known_counts(self.inspect.as_ref());
                    match self.inspect.as_mut() {
                        Some(view) => view.ask_stats(known, s),
                        None => Vec::new(),
                    }
                } else {
                    Vec::new()
                }
            }
            Action::Back | Action::Left => {
                self.close_inspect();
                Vec::new()
            }
            a if view.scroll_by(&a) => Vec::new(),
            // The list is hidden: its keys do nothing under the view.
            Action::Open
            | Action::Right
            | Action::Sort
            | Action::SortReverse
            | Action::Filter
            | Action::AddDataset
            | Action::Rename
            | Action::Describe
            | Action::Validate
            | Action::Clean
            | Action::Delete
            | Action::Train
            | Action::Inspect => Vec::new(),
            _ => return Handled::Ignored,
        };
        Handled::Consumed(fx)
    }

    /// Closes the Inspect view; the list has the focus it had before.
    pub fn close_inspect(&mut self) {
        if let Some(view) = self.inspect.take() {
            self.browse.focus = view.focus_before;
        }
    }

    /// The counts already known for the view's dataset, model and length.
    fn known_counts(&self, view: Option<&InspectView>) -> Option<Arc<DatasetInspection>> {
        let view = view?;
        self.counts
            .get(&view.dataset)?
            .iter()
            .find(|c| view.counts_match(c))
            .cloned()
    }

    /// Inspects `dataset` with `model` (chosen in the picker): the open view of that dataset
    /// changes model and shows the same example again (and its counts, if shown); else the
    /// view opens on the first example, its cut at `max_seq_length`.
    pub fn inspect_with(
        &mut self,
        dataset: DatasetId,
        model: String,
        max_seq_length: Option<u32>,
        s: &mut Shared,
    ) -> Vec<Effect> {
        let model = crate::sanitize::one_line(model.trim()).into_owned();
        if let Some(view) = self.inspect.as_mut().filter(|v| v.dataset == dataset) {
            let at = view.at;
            view.model = model;
            view.stats = inspect::Load::Idle;
            let mut fx = view.ask_example(at, s);
            if view.stats_shown {
                let known = self.known_counts(self.inspect.as_ref());
                if let Some(view) = self.inspect.as_mut() {
                    fx.extend(view.ask_stats(known, s));
                }
            }
            return fx;
        }
        let Some(d) = s.datasets.get(dataset).cloned() else {
            s.notify_user("the dataset is no longer there", Level::Warning);
            return Vec::new();
        };
        let focus = match self.inspect.take() {
            Some(old) => old.focus_before,
            None => self.browse.focus,
        };
        let mut view = InspectView::new(dataset, d.name.clone(), model, max_seq_length, focus);
        let fx = view.ask_example(brightrun_api::InspectAt::First, s);
        self.inspect = Some(view);
        fx
    }

    /// `/` in the view: the example at `at` (a line, or an example's number).
    pub fn go_to(
        &mut self,
        dataset: DatasetId,
        at: brightrun_api::InspectAt,
        s: &mut Shared,
    ) -> Vec<Effect> {
        match self.inspect.as_mut().filter(|v| v.dataset == dataset) {
            Some(view) => {
                if let (brightrun_api::InspectAt::Index(i), Some(n)) = (at, view.examples)
                    && i >= n
                {
                    s.notify_user(
                        format!(
                            "{} has {}: example {i} is past its end (examples count from 0)",
                            view.name,
                            format::plural(n, "example")
                        ),
                        Level::Warning,
                    );
                    return Vec::new();
                }
                view.ask_example(at, s)
            }
            None => Vec::new(),
        }
    }

    /// The answer to [`Effect::InspectExample`]: shown when it is the one the view waits
    /// for, dropped otherwise.
    pub fn example_answer(
        &mut self,
        request: u64,
        result: Result<Box<ExampleInspection>, ApiError>,
        s: &mut Shared,
    ) {
        if let Some(view) = self.inspect.as_mut()
            && view.example_answer(request, result)
        {
            s.mark_dirty();
        }
    }

    /// The answer to [`Effect::InspectStats`]: counts are kept for the dataset's detail
    /// whatever the view shows now; the view shows them (or the error) when it waits for them.
    pub fn stats_answer(
        &mut self,
        request: u64,
        dataset: DatasetId,
        result: Result<Box<DatasetInspection>, ApiError>,
        s: &mut Shared,
    ) {
        let result = result
            .map(|x| Arc::new(inspect::clean_counts(*x)))
            .map_err(|e| inspect::Failure::of(&e));
        if let Ok(x) = &result
            && s.datasets.get(dataset).is_some()
        {
            let known = self.counts.entry(dataset).or_default();
            known.retain(|c| {
                c.base_model != x.base_model || c.stats.max_seq_length != x.stats.max_seq_length
            });
            known.insert(0, x.clone());
            known.truncate(KEEP_COUNTS);
        }
        if let Some(view) = self.inspect.as_mut().filter(|v| v.dataset == dataset) {
            view.stats_answer(request, result);
        }
        s.mark_dirty();
    }

    fn draw_list(&self, frame: &mut Frame, list_area: Rect, s: &Shared) {
        let detail_focus = self.browse.focus == Focus::Detail;
        let t = s.theme.clone();
        let wide = list_area.width >= 100;
        let title = list_title(
            &t,
            "Datasets",
            s.dataset_list.len(),
            s.datasets.len(),
            &s.dataset_list.filter,
        );
        let block = panel(&t, title, !detail_focus);
        let cols = lists_columns::DATASET_COLUMNS;
        let header = headers(
            &t,
            &cols,
            cols[s.dataset_list.sort_col],
            s.dataset_list.sort_desc,
        );
        // The name takes the spare width; the rest are as wide as what they show.
        let widths = [
            Col::fill(12),
            Col::fit(6, 17),
            Col::fit(6, 12),
            Col::fit(4, 8),
            Col::fit(4, 8),
            Col::fit(4, 9),
            Col::fit(3, 16),
        ];
        let now = s.now;
        let datasets = &s.datasets;
        let tasks = &s.tasks;
        draw_list(
            frame,
            list_area,
            block,
            &t,
            &s.dataset_list,
            header,
            &widths,
            "No datasets yet: press a to add a JSONL file.",
            |i| {
                let d = datasets.at(i);
                let status = match d.status {
                    DatasetStatus::Uploading => {
                        let p = tasks
                            .values()
                            .find(|x| x.label.ends_with(&d.file_name) || x.label.contains(&d.name))
                            .and_then(|x| {
                                x.total.map(|tot| x.done as f64 * 100.0 / tot.max(1) as f64)
                            });
                        match p {
                            Some(p) => format!("up {p:.0}%"),
                            None => "uploading".into(),
                        }
                    }
                    s => s.as_str().to_string(),
                };
                let examples = d
                    .statistics
                    .as_ref()
                    .map(|s| format::compact(s.total_examples))
                    .unwrap_or_else(|| "–".into());
                let tokens = d
                    .total_tokens
                    .map(format::compact)
                    .unwrap_or_else(|| "–".into());
                let created = if wide {
                    format::datetime(d.created_at)
                } else {
                    format::age(now, d.created_at)
                };
                vec![
                    Line::from(d.name.clone()),
                    Line::from(d.format.map(|f| f.as_str()).unwrap_or("–")),
                    Line::from(Span::styled(status, status_style(&t, d.status))),
                    Line::from(examples).right_aligned(),
                    Line::from(tokens).right_aligned(),
                    Line::from(format::bytes(d.file_size)).right_aligned(),
                    Line::from(created),
                ]
            },
        );
    }
}

/// The detail pane's text: built by layout (to bound the scroll) and by draw. `counts` are
/// the exact counts known for the dataset (newest first).
/// A preference or KTO file's own figures: its pairs (KTO: labelled replies), the reply
/// lengths, and how often the chosen reply is the longer one (a length bias the methods
/// learn: a model that prefers the longer reply looks right on such data).
fn preference_lines(
    p: &PreferenceStatistics,
    kto: bool,
    t: &Theme,
    lines: &mut Vec<Line<'static>>,
) {
    let (good, bad) = if kto {
        ("desirable", "undesirable")
    } else {
        ("chosen", "rejected")
    };
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        if kto {
            "KTO replies"
        } else {
            "Preference pairs"
        },
        t.header(),
    ));
    if kto {
        lines.push(kv(
            t,
            "replies",
            format!(
                "{}  ({} desirable, {} undesirable)",
                format::thousands(p.pairs),
                format::thousands(p.desirable),
                format::thousands(p.undesirable)
            ),
        ));
    } else {
        lines.push(kv(t, "pairs", format::thousands(p.pairs)));
    }
    for (name, p50, p95) in [
        (good, p.chosen_tokens_p50, p.chosen_tokens_p95),
        (bad, p.rejected_tokens_p50, p.rejected_tokens_p95),
    ] {
        lines.push(kv(
            t,
            name,
            format!(
                "p50 {}  p95 {} tokens",
                format::thousands(p50),
                format::thousands(p95)
            ),
        ));
    }
    lines.push(kv(
        t,
        "longest",
        format!(
            "{} tokens, prompt and reply",
            format::thousands(p.sequence_tokens_max)
        ),
    ));
    // Only pairs have a longer reply to compare.
    if !kto && p.pairs > 0 {
        let share = p.chosen_longer_share.clamp(0.0, 1.0);
        let biased = !(0.35..=0.65).contains(&share);
        let note = if biased {
            format!(
                "{:.0}% of pairs: a length bias (the methods may learn to prefer {} replies)",
                share * 100.0,
                if share > 0.5 { "longer" } else { "shorter" }
            )
        } else {
            format!("{:.0}% of pairs: no strong length bias", share * 100.0)
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{:<14}", "chosen longer"), t.muted()),
            Span::styled(
                note,
                if biased {
                    Style::new().fg(t.warning)
                } else {
                    t.base()
                },
            ),
        ]));
    }
}

fn detail_lines(
    d: &Dataset,
    s: &Shared,
    counts: Option<&Vec<Arc<DatasetInspection>>>,
) -> Vec<Line<'static>> {
    let t = &s.theme;
    let mut lines: Vec<Line<'static>> = Vec::new();
    lines.push(Line::from(vec![
        Span::styled(d.name.clone(), t.header()),
        Span::styled(format!("  {}", d.id.short()), t.muted()),
    ]));
    lines.push(kv(
        t,
        "file",
        format!("{} · {}", d.file_name, format::bytes(d.file_size)),
    ));
    lines.push(Line::from(vec![
        Span::styled(format!("{:<14}", "status"), t.muted()),
        Span::styled(
            d.status.as_str().to_string(),
            status_style(t, d.status).add_modifier(Modifier::BOLD),
        ),
        Span::styled(
            match d.validated_at {
                Some(v) => format!("  validated {}", format::datetime(v)),
                None => String::new(),
            },
            t.muted(),
        ),
    ]));
    if let Some(f) = d.format {
        lines.push(kv(t, "format", f.as_str()));
    }
    lines.push(kv(t, "created", format::datetime(d.created_at)));
    if let Some(desc) = &d.description
        && !desc.is_empty()
    {
        lines.push(kv(t, "description", ""));
        lines.extend(text_lines(desc, t.base(), "  "));
    }
    if let Some(e) = &d.error_message {
        // Two spans: a long reason wraps under itself, not under "error:".
        lines.push(Line::from(vec![
            Span::styled("error: ", Style::new().fg(t.error)),
            Span::styled(e.clone(), Style::new().fg(t.error)),
        ]));
        if d.status == DatasetStatus::Error
            && d.statistics
                .as_ref()
                .is_some_and(|st| st.total_examples > st.error_count)
        {
            lines.push(Line::styled(
                "press c to make a new dataset of the valid examples".to_string(),
                Style::new().fg(t.info),
            ));
        }
    }
    if let Some(task) = s.tasks.iter().find(|(k, _)| matches!(k, crate::effect::TaskKey::Validation(id) | crate::effect::TaskKey::EngineUpload(id) if *id == d.id)).map(|(_, v)| v) {
            let frac = task.total.map(|tot| task.done as f64 / tot.max(1) as f64).unwrap_or(0.0);
            lines.push(Line::styled(
                format!("{} {} {:.0}%", task.label, format::bar(frac, 20), frac * 100.0),
                Style::new().fg(t.info),
            ));
        }
    // A dataset with problems has statistics too (of what could be read), as the CLI shows.
    if let Some(s) = d
        .statistics
        .as_ref()
        .filter(|_| matches!(d.status, DatasetStatus::Ready | DatasetStatus::Error))
    {
        lines.push(Line::raw(""));
        lines.push(Line::styled("Statistics", t.header()));
        lines.push(kv(
            t,
            "examples",
            format!(
                "{}  (training {}, validation {})",
                format::thousands(s.total_examples),
                format::thousands(s.total_training_pairs),
                format::thousands(s.total_validation_pairs)
            ),
        ));
        lines.push(kv(
            t,
            "tokens",
            format!(
                "{}{}",
                format::thousands(s.total_tokens),
                if s.tokens_exact { "" } else { " (estimated)" }
            ),
        ));
        lines.push(kv(
            t,
            "turns/conv",
            format!(
                "{:.1}   tokens/turn {:.1}",
                s.avg_turns_per_conversation, s.avg_tokens_per_turn
            ),
        ));
        lines.push(kv(
            t,
            "length",
            format!(
                "p50 {}  p95 {}  max {} tokens",
                format::thousands(s.tokens_p50),
                format::thousands(s.tokens_p95),
                format::thousands(s.tokens_max)
            ),
        ));
        lines.push(kv(t, "duplicates", format::thousands(s.duplicate_examples)));
        let over = Line::from(vec![
            Span::styled(format!("{:<14}", "over max len"), t.muted()),
            Span::styled(
                format!(
                    "{} (max_seq_length {})",
                    format::thousands(s.examples_over_max_seq_length),
                    s.max_seq_length
                ),
                if s.examples_over_max_seq_length > 0 {
                    Style::new().fg(t.warning)
                } else {
                    t.base()
                },
            ),
        ]);
        lines.push(over);
        if let Some(p) = &s.preference {
            preference_lines(p, d.format == Some(DatasetFormat::Kto), t, &mut lines);
        }
    }
    for c in counts.into_iter().flatten() {
        lines.push(Line::raw(""));
        lines.push(Line::from(vec![
            Span::styled("Exact counts", t.header()),
            Span::styled(
                format!(
                    "  with {}, max_seq_length {}",
                    c.base_model,
                    format::thousands(u64::from(c.stats.max_seq_length))
                ),
                t.muted(),
            ),
        ]));
        lines.extend(inspect::token_stats_lines(&c.stats, t));
    }
    let errors = d
        .validation_errors
        .iter()
        .filter(|i| i.severity == Severity::Error)
        .count();
    let warnings = d.validation_errors.len() - errors;
    if !d.validation_errors.is_empty()
        || d.statistics
            .as_ref()
            .is_some_and(|s| s.error_count + s.warning_count > 0)
    {
        let (ec, wc) = d
            .statistics
            .as_ref()
            .map(|s| (s.error_count, s.warning_count))
            .unwrap_or((errors as u64, warnings as u64));
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            format!(
                "Problems: {} error{}, {} warning{}{}",
                format::thousands(ec),
                if ec == 1 { "" } else { "s" },
                format::thousands(wc),
                if wc == 1 { "" } else { "s" },
                if (ec + wc) as usize > d.validation_errors.len() {
                    format!(" (first {} shown)", d.validation_errors.len())
                } else {
                    String::new()
                }
            ),
            t.header(),
        ));
        for issue in &d.validation_errors {
            let (tag, color) = match issue.severity {
                Severity::Error => ("error", t.error),
                Severity::Warning => ("warn ", t.warning),
            };
            lines.push(Line::from(vec![
                Span::styled(format!("  line {:<7}", issue.line), t.muted()),
                Span::styled(format!("{tag} "), Style::new().fg(color)),
                Span::raw(issue.error.replace('\n', " ")),
            ]));
            if !issue.suggestion.is_empty() {
                lines.push(Line::styled(
                    format!("               → {}", issue.suggestion.replace('\n', " ")),
                    t.muted(),
                ));
            }
        }
    }
    if !d.sample_data.is_empty() {
        lines.push(Line::raw(""));
        lines.push(Line::styled("Sample", t.header()));
        for (n, conv) in d.sample_data.iter().enumerate() {
            lines.push(Line::styled(format!("  #{}", n + 1), t.accent()));
            for m in conv {
                let role_style = match m.role.as_str() {
                    "assistant" => Style::new().fg(t.success),
                    "system" => Style::new().fg(t.warning),
                    _ => Style::new().fg(t.info),
                };
                let mut first = true;
                for l in m.content.lines().take(6) {
                    let prefix = if first {
                        format!("  {:>9}: ", m.role)
                    } else {
                        " ".repeat(13)
                    };
                    first = false;
                    lines.push(Line::from(vec![
                        Span::styled(prefix, role_style),
                        Span::raw(format::truncate(l, 400)),
                    ]));
                }
                if m.content.lines().count() > 6 {
                    lines.push(Line::styled(format!("{}…", " ".repeat(13)), t.muted()));
                }
            }
        }
    }
    lines
}
