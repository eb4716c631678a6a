//! Draws the Jobs tab's retry dialog ([`RetryDialog`]): what the new job keeps, then the
//! choices (the selected one marked), each with its dry run's error if it had one.

use super::{centered, overlay_block};
use crate::context::RetryDialog;
use crate::format;
use crate::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

pub(super) fn draw_retry(frame: &mut Frame, area: Rect, t: &Theme, d: &RetryDialog) {
    let w = 76.min(area.width.saturating_sub(2)).max(1);
    let inner_w = w.saturating_sub(2).max(1) as usize;
    let job = &d.job;
    let mut lines: Vec<Line<'static>> = Vec::new();
    for l in format::wrap(
        &format!(
            "A new job with the configuration of {}: {} on {}. Where does it start?",
            job.id.short(),
            job.hyperparameters.base_model,
            d.runs_on
        ),
        inner_w,
        0,
    ) {
        lines.push(Line::raw(l));
    }
    lines.push(Line::raw(""));
    // The last line of the selected choice (its error included), to keep it in view.
    let mut selected_line = 0;
    match &d.choices {
        None => lines.push(Line::styled(
            "Asking the engine for the job's checkpoints and what a retry costs…",
            t.muted(),
        )),
        Some(choices) => {
            for (i, c) in choices.iter().enumerate() {
                let selected = i == d.selected;
                let (mark, style) = if selected {
                    ("› ", t.selected())
                } else {
                    ("  ", t.base())
                };
                for (k, l) in format::wrap(&c.label, inner_w.saturating_sub(2), 0)
                    .into_iter()
                    .enumerate()
                {
                    let lead = if k == 0 { mark } else { "  " };
                    lines.push(Line::styled(format!("{lead}{l}"), style));
                }
                if let Some(e) = &c.error {
                    for l in format::wrap(&format!("✗ {e}"), inner_w.saturating_sub(4), 0) {
                        lines.push(Line::styled(format!("    {l}"), Style::new().fg(t.error)));
                    }
                }
                if selected {
                    selected_line = lines.len() - 1;
                }
            }
            for n in &d.notes {
                for l in format::wrap(n, inner_w, 0) {
                    lines.push(Line::styled(l, Style::new().fg(t.warning)));
                }
            }
        }
    }
    lines.push(Line::raw(""));
    let key = |k: &'static str| Span::styled(k, t.accent().add_modifier(Modifier::BOLD));
    lines.push(if d.loading() {
        Line::from(vec![key("esc"), Span::raw(" cancel")])
    } else {
        Line::from(vec![
            key("↑↓"),
            Span::raw(" choose   "),
            key("enter"),
            Span::raw(" retry   "),
            key("esc"),
            Span::raw(" cancel"),
        ])
    });
    let h = (lines.len() as u16 + 2).min(area.height.saturating_sub(2).max(3));
    let popup = centered(area, w, h);
    let rows = h.saturating_sub(2) as usize;
    // The keys line stays; the rest scrolls to keep the selected choice in view.
    let body = rows.saturating_sub(1);
    let keys = lines.pop().unwrap_or_default();
    let offset = if selected_line >= body {
        (selected_line + 1 - body).min(lines.len().saturating_sub(body))
    } else {
        0
    };
    let mut shown: Vec<Line> = lines.into_iter().skip(offset).take(body).collect();
    shown.push(keys);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(shown)
            .style(t.base())
            .block(overlay_block(t, &format!(" Retry job {} ", job.id.short()))),
        popup,
    );
}
