//! The Datasets tab: the table and the detail pane (statistics, validation problems, sample),
//! and what can be done to the selected dataset.

use super::{Browse, Component, DetailPane, Focus, Handled, Request, TabHits};
use crate::action::{Action, Tab};
use crate::context::{Confirmed, Overlay, PromptKind, Shared, TaskInfo, lists as lists_columns};
use crate::effect::{Effect, Level, TaskKey};
use crate::format;
use crate::input::Input;
use crate::theme::Theme;
use crate::ui::{Col, draw_list, headers, kv, list_title, panel, text_lines};
use brightrun_api::domain::*;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

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

#[derive(Clone, Debug, Default)]
pub struct DatasetsTab {
    pub browse: Browse,
}

impl Component for DatasetsTab {
    fn handle(&mut self, action: &Action, s: &mut Shared) -> Handled {
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
            _ => return Handled::Ignored,
        };
        Handled::Consumed(fx)
    }

    fn browse(&mut self) -> Option<&mut Browse> {
        Some(&mut self.browse)
    }

    fn layout(&mut self, area: Rect, s: &mut Shared) -> TabHits {
        let lines = s.selected_dataset().map(|x| detail_lines(x, s));
        PANE.layout(area, &mut self.browse, &mut s.dataset_list, lines)
    }

    fn draw(&self, frame: &mut Frame, area: Rect, s: &Shared) {
        let (list_area, detail_area) = PANE.split(area, &self.browse);
        self.draw_list(frame, list_area, s);
        let lines = s.selected_dataset().map(|x| detail_lines(x, s));
        PANE.draw(frame, detail_area, &s.theme, &self.browse, lines);
    }

    fn keys(&self) -> &'static [(&'static str, &'static str)] {
        // The hints follow the focused pane.
        if self.browse.focus == super::Focus::Detail {
            return super::DETAIL_KEYS;
        }
        &[
            ("add", "add"),
            ("train", "train"),
            ("rename", "rename"),
            ("validate", "validate"),
            ("delete", "delete"),
            ("filter", "filter"),
            ("sort", "sort"),
        ]
    }
}

impl DatasetsTab {
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

/// The detail pane's text: built by layout (to bound the scroll) and by draw.
fn detail_lines(d: &Dataset, s: &Shared) -> Vec<Line<'static>> {
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
