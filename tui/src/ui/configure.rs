//! Configure: the form on the left, the live estimate and the field's help on the right.

use super::{kv, panel};
use crate::app::{App, ConfigureState};
use crate::effect::Level;
use crate::format;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

impl App {
    pub(super) fn draw_configure(&mut self, frame: &mut Frame, area: Rect) {
        let t = self.theme.clone();
        let (form_area, right) = if area.width >= 100 {
            let [a, b] =
                Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
                    .areas(area);
            (a, b)
        } else {
            let est_h = 10.min(area.height / 2);
            let [a, b] =
                Layout::vertical([Constraint::Min(6), Constraint::Length(est_h)]).areas(area);
            (a, b)
        };
        let editing = self.configure.editing.is_some();
        let title = Line::from(vec![
            Span::styled(" New training job ", t.header()),
            Span::styled(
                if editing {
                    "(typing: enter keeps, esc reverts) "
                } else {
                    "(enter edits, ←→ change, s submits) "
                },
                t.muted(),
            ),
        ]);
        let block = panel(&t, title, true);
        let inner = block.inner(area_or(form_area));
        frame.render_widget(block, form_area);
        let rows = self.configure.rows();
        let h = inner.height as usize;
        let c = &mut self.configure;
        if c.row < c.offset {
            c.offset = c.row;
        } else if h > 0 && c.row >= c.offset + h {
            c.offset = c.row + 1 - h;
        }
        let label_w = 29usize.min(inner.width as usize * 6 / 10);
        let datasets = &self.datasets;
        let name = |id| {
            datasets
                .get(id)
                .map(|d| d.name.clone())
                .unwrap_or_else(|| brightrun_engine::ids::DatasetId::short(&id))
        };
        for (i, row) in rows.iter().enumerate().skip(c.offset).take(h) {
            let y = inner.y + (i - c.offset) as u16;
            let line_area = Rect::new(inner.x, y, inner.width, 1);
            let selected = i == c.row;
            let err = c.error_of(*row).is_some();
            let changed =
                matches!(row, crate::app::FormRow::Field(f) if c.values[*f] != c.base_values[*f]);
            let label = format!(
                "{}{:<w$}",
                if changed { "*" } else { " " },
                ConfigureState::label_of(*row),
                w = label_w.saturating_sub(1)
            );
            let label_style = if selected { t.selected() } else { t.muted() };
            let [la, va] =
                Layout::horizontal([Constraint::Length(label_w as u16), Constraint::Min(1)])
                    .areas(line_area);
            frame.render_widget(Paragraph::new(label).style(label_style), la);
            if selected && let Some(input) = &mut c.editing {
                input.draw(
                    frame,
                    va,
                    Style::new()
                        .fg(if err { t.error } else { t.foreground })
                        .add_modifier(Modifier::UNDERLINED),
                );
                continue;
            }
            let value = c.value_of(*row, name);
            let picker = matches!(
                row,
                crate::app::FormRow::Dataset
                    | crate::app::FormRow::Preset
                    | crate::app::FormRow::GpuType
                    | crate::app::FormRow::Backend
            );
            let text = if picker && selected {
                format!("◀ {value} ▶")
            } else {
                format!(" {value}")
            };
            let style = if err {
                Style::new().fg(t.error).add_modifier(Modifier::BOLD)
            } else if selected {
                Style::new().fg(t.accent).add_modifier(Modifier::BOLD)
            } else {
                t.base()
            };
            let mut spans = vec![Span::styled(text, style)];
            if err {
                spans.push(Span::styled("  ✗", Style::new().fg(t.error)));
            }
            frame.render_widget(Paragraph::new(Line::from(spans)), va);
        }
        self.draw_estimate(frame, right);
    }

    fn draw_estimate(&mut self, frame: &mut Frame, area: Rect) {
        let t = self.theme.clone();
        let c = &self.configure;
        let row = c.current_row();
        let mut lines: Vec<Line> = Vec::new();
        match &c.estimate {
            None if c.dataset.is_none() => lines.push(Line::styled(
                "Choose a ready dataset to see the estimate.",
                t.muted(),
            )),
            None => lines.push(Line::styled("estimating…", t.muted())),
            Some(Err(e)) => {
                lines.push(Line::styled(
                    "No estimate:",
                    Style::new().fg(t.error).add_modifier(Modifier::BOLD),
                ));
                lines.push(Line::styled(e.clone(), Style::new().fg(t.error)));
            }
            Some(Ok(e)) => {
                lines.push(Line::from(vec![
                    Span::styled(format!("{:<14}", "cost"), t.muted()),
                    Span::styled(format::money(e.estimated_cost), t.header()),
                    Span::styled(
                        format!(
                            "  compute {} + storage {}",
                            format::money(e.compute_cost),
                            format::money(e.storage_cost)
                        ),
                        t.muted(),
                    ),
                ]));
                lines.push(kv(
                    &t,
                    "duration",
                    format!(
                        "{}  at {}/h",
                        format::duration_secs((e.estimated_duration_hours * 3600.0).round() as i64),
                        format::money(e.hourly_rate)
                    ),
                ));
                lines.push(kv(
                    &t,
                    "steps",
                    format!(
                        "{} ({} per epoch)",
                        format::thousands(e.total_steps),
                        format::thousands(e.steps_per_epoch)
                    ),
                ));
                lines.push(kv(
                    &t,
                    "throughput",
                    format!(
                        "{} tokens/s",
                        format::thousands(e.throughput_tokens_per_sec.round() as u64)
                    ),
                ));
                let fit_color = match e.fit_level {
                    Level::Error => t.error,
                    Level::Warning => t.warning,
                    _ => t.success,
                };
                lines.push(Line::from(vec![
                    Span::styled(format!("{:<14}", "memory"), t.muted()),
                    Span::styled(e.fit.clone(), Style::new().fg(fit_color)),
                ]));
                for a in e.fit_advice.iter().take(3) {
                    lines.push(Line::styled(format!("{:14}→ {a}", ""), t.muted()));
                }
                if let Some(b) = &e.budget {
                    lines.push(Line::from(vec![
                        Span::styled(format!("{:<14}", "budget"), t.muted()),
                        Span::styled(
                            b.clone(),
                            if e.over_budget {
                                Style::new().fg(t.error).add_modifier(Modifier::BOLD)
                            } else {
                                t.base()
                            },
                        ),
                    ]));
                }
                if c.estimate_pending {
                    lines.push(Line::styled("updating…", t.muted()));
                }
            }
        }
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            ConfigureState::label_of(row).to_string(),
            t.header(),
        ));
        lines.push(Line::raw(c.help_of(row)));
        if let Some(e) = c.error_of(row)
            && !matches!(&c.estimate, Some(Err(x)) if x == e)
        {
            lines.push(Line::styled(e.clone(), Style::new().fg(t.error)));
        }
        if let Some(e) = &c.catalog_error {
            lines.push(Line::styled(
                format!("GPU catalog: {e}"),
                Style::new().fg(t.warning),
            ));
        }
        frame.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(panel(&t, Span::styled(" Estimate ", t.header()), false)),
            area,
        );
    }
}

fn area_or(a: Rect) -> Rect {
    a
}
