//! The Models tab: the artifact list (sortable by date and quality score), its detail, and
//! downloading the selected model.

use super::{Browse, Component, DetailPane, Focus, Handled, TabHits};
use crate::action::{Action, Tab};
use crate::context::{Overlay, PromptKind, Shared, lists};
use crate::format;
use crate::input::Input;
use crate::ui::{Col, draw_list, headers, kv, list_title, panel};
use brightrun_api::domain::*;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};

pub(crate) fn stars(score: u8) -> String {
    let s = score.min(5) as usize;
    format!("{}{}", "★".repeat(s), "☆".repeat(5 - s))
}

fn convergence(c: Convergence) -> &'static str {
    match c {
        Convergence::Good => "good",
        Convergence::Overfit => "overfit",
        Convergence::Unknown => "unknown",
    }
}

fn opt(v: Option<f64>) -> String {
    v.map(format::metric).unwrap_or_else(|| "–".into())
}

/// The Models tab's own state: focus and detail scroll.
const PANE: DetailPane = DetailPane {
    wide_list_pct: 55,
    tall_list_pct: 45,
    empty: "Select a model to see its quality, summary, configuration and files.",
    title: " Detail ",
    focused_title: " Detail (↑↓ scroll, d download) ",
};

#[derive(Clone, Debug, Default)]
pub struct ModelsTab {
    pub browse: Browse,
}

impl Component for ModelsTab {
    fn handle(&mut self, action: &Action, s: &mut Shared) -> Handled {
        let sel = s.selected_artifact().cloned();
        if self.browse.browse(Tab::Models, sel.is_some(), action, s) {
            return Handled::done();
        }
        match action {
            Action::Download => {
                let Some(a) = sel else {
                    return Handled::Consumed(s.nothing_selected());
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
                s.overlay = Some(Overlay::Prompt {
                    title: format!("Download {} v{} to folder", a.name, a.version),
                    input: Box::new(Input::new(&default)),
                    kind: PromptKind::DownloadTo(a.id),
                    hint: Some("tab completes a folder; enter downloads".into()),
                });
                Handled::done()
            }
            _ => Handled::Ignored,
        }
    }

    fn browse(&mut self) -> Option<&mut Browse> {
        Some(&mut self.browse)
    }

    fn layout(&mut self, area: Rect, s: &mut Shared) -> TabHits {
        let lines = s.selected_artifact().map(|x| detail_lines(x, s));
        PANE.layout(area, &mut self.browse, &mut s.model_list, lines)
    }

    fn draw(&self, frame: &mut Frame, area: Rect, s: &Shared) {
        let (list_area, detail_area) = PANE.split(area, &self.browse);
        self.draw_list(frame, list_area, s);
        let lines = s.selected_artifact().map(|x| detail_lines(x, s));
        PANE.draw(frame, detail_area, &s.theme, &self.browse, lines);
    }

    fn keys(&self) -> &'static [(&'static str, &'static str)] {
        // The hints follow the focused pane.
        if self.browse.focus == super::Focus::Detail {
            return super::DETAIL_KEYS;
        }
        &[
            ("open", "detail"),
            ("download", "download"),
            ("sort", "sort"),
            ("filter", "filter"),
        ]
    }
}

impl ModelsTab {
    fn draw_list(&self, frame: &mut Frame, list_area: Rect, s: &Shared) {
        let detail_focus = self.browse.focus == Focus::Detail;
        let t = s.theme.clone();
        let title = list_title(
            &t,
            "Models",
            s.model_list.len(),
            s.artifacts.len(),
            &s.model_list.filter,
        );
        let block = panel(&t, title, !detail_focus);
        let header = headers(
            &t,
            &lists::MODEL_COLUMNS,
            lists::MODEL_COLUMNS[s.model_list.sort_col],
            s.model_list.sort_desc,
        );
        let wide = list_area.width >= 100;
        // The name takes the spare width; the base model is as wide as the longest on screen.
        let widths = [
            Col::fill(14),
            Col::fit(3, 5),
            Col::fit(10, 40),
            Col::fixed(5),
            Col::fit(3, 8),
            Col::fit(4, 9),
            Col::fit(3, 16),
        ];
        let now = s.now;
        let artifacts = &s.artifacts;
        draw_list(
            frame,
            list_area,
            block,
            &t,
            &s.model_list,
            header,
            &widths,
            "No models yet: a completed job stores its adapter here.",
            |i| {
                let a = artifacts.at(i);
                let q = &a.quality_metrics;
                let conv_style = match q.convergence {
                    Convergence::Good => Style::new().fg(t.success),
                    Convergence::Overfit => Style::new().fg(t.warning),
                    Convergence::Unknown => t.muted(),
                };
                vec![
                    Line::from(a.name.clone()),
                    Line::from(format!("v{}", a.version)),
                    Line::from(
                        a.base_model
                            .rsplit('/')
                            .next()
                            .unwrap_or(&a.base_model)
                            .to_string(),
                    ),
                    Line::from(Span::styled(
                        stars(q.quality_score),
                        Style::new().fg(t.warning),
                    )),
                    Line::from(Span::styled(convergence(q.convergence), conv_style)),
                    Line::from(format::bytes(lists::artifact_size(a))).right_aligned(),
                    Line::from(if wide {
                        format::datetime(a.created_at)
                    } else {
                        format::age(now, a.created_at)
                    }),
                ]
            },
        );
    }
}

/// The detail pane's text: built by layout (to bound the scroll) and by draw.
fn detail_lines(a: &ModelArtifact, sh: &Shared) -> Vec<Line<'static>> {
    let t = &sh.theme;
    let q = &a.quality_metrics;
    let s = &a.training_summary;
    let mut lines: Vec<Line<'static>> = vec![
        Line::from(vec![
            Span::styled(format!("{} v{}", a.name, a.version), t.header()),
            Span::styled(
                format!("  {}  from job {}", a.id.short(), a.job_id.short()),
                t.muted(),
            ),
        ]),
        kv(t, "base model", a.base_model.clone()),
        kv(t, "dataset", sh.dataset_name(a.dataset_id)),
        kv(t, "created", format::datetime(a.created_at)),
    ];
    if let Some(task) = sh.download_progress(a.id) {
        let frac = task
            .total
            .map(|tot| task.done as f64 / tot.max(1) as f64)
            .unwrap_or(0.0);
        lines.push(Line::styled(
            format!(
                "downloading {} {:.0}%  {} of {}",
                format::bar(frac, 24),
                frac * 100.0,
                format::bytes(task.done),
                format::bytes(task.total.unwrap_or(0))
            ),
            Style::new().fg(t.info),
        ));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("Quality", t.header()));
    lines.push(Line::from(vec![
        Span::styled(format!("{:<14}", "score"), t.muted()),
        Span::styled(stars(q.quality_score), Style::new().fg(t.warning)),
        Span::raw(format!(
            "  {}/5 · {}",
            q.quality_score,
            match (q.convergence, q.loss_reduction_percent) {
                // Known losses that did not converge: say so rather than "unknown".
                (Convergence::Unknown, Some(_)) => "little or no progress",
                (c, _) => convergence(c),
            }
        )),
    ]));
    lines.push(kv(
        t,
        "training loss",
        format!(
            "{} → {}",
            opt(q.initial_training_loss),
            opt(q.final_training_loss)
        ),
    ));
    lines.push(kv(t, "validation", opt(q.final_validation_loss)));
    lines.push(kv(
        t,
        "reduction",
        q.loss_reduction_percent
            .map(|p| format!("{p:.1}%"))
            .unwrap_or_else(|| "–".into()),
    ));
    lines.push(kv(t, "perplexity", opt(q.perplexity)));
    lines.push(Line::raw(""));
    lines.push(Line::styled("Training summary", t.header()));
    lines.push(kv(
        t,
        "steps",
        format!(
            "{} over {}",
            format::thousands(s.total_steps),
            format::plural(s.epochs as u64, "epoch")
        ),
    ));
    lines.push(kv(
        t,
        "duration",
        format::duration_secs(s.duration_seconds as i64),
    ));
    lines.push(kv(t, "hardware", format!("{}×{}", s.gpu_count, s.gpu_type)));
    lines.push(kv(t, "cost", format::money(s.final_cost)));
    if let Some(tok) = s.train_tokens {
        lines.push(kv(t, "tokens", format::thousands(tok)));
    }
    if let (Some(tr), Some(tot)) = (s.trainable_parameters, s.total_parameters) {
        lines.push(kv(
            t,
            "parameters",
            format!(
                "{} trainable of {} ({:.2}%)",
                format::compact(tr),
                format::compact(tot),
                tr as f64 * 100.0 / tot.max(1) as f64
            ),
        ));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("Configuration", t.header()));
    config_lines(&a.configuration.0, "", &mut lines, t);
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        format!("Files ({})", a.files.len()),
        t.header(),
    ));
    for f in &a.files {
        lines.push(Line::from(vec![
            Span::raw(format!("  {:<34}", f.path)),
            Span::styled(format!("{:>9}  ", format::bytes(f.size)), t.base()),
            Span::styled(
                format!("sha256 {}", f.sha256.get(..12).unwrap_or(&f.sha256)),
                t.muted(),
            ),
        ]));
    }
    lines
}

/// The configuration JSON as indented `key value` lines (strings cleaned of controls).
fn config_lines(
    v: &serde_json::Value,
    indent: &str,
    out: &mut Vec<Line<'static>>,
    t: &crate::theme::Theme,
) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, val) in map {
                let key = crate::sanitize::one_line(k).into_owned();
                match val {
                    serde_json::Value::Object(_) => {
                        out.push(Line::styled(format!("  {indent}{key}"), t.muted()));
                        config_lines(val, &format!("{indent}  "), out, t);
                    }
                    other => out.push(Line::from(vec![
                        // A space always follows the key, however long
                        // (gradient_accumulation_steps is 27 characters).
                        Span::styled(format!("  {indent}{key:<24} "), t.muted()),
                        Span::raw(scalar(other)),
                    ])),
                }
            }
        }
        serde_json::Value::Null => out.push(Line::styled("  (none)", t.muted())),
        other => out.push(Line::raw(format!("  {indent}{}", scalar(other)))),
    }
}

fn scalar(v: &serde_json::Value) -> String {
    let s = match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(a) => a.iter().map(scalar).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    };
    crate::sanitize::one_line(&s).into_owned()
}
