//! Draws the Models tab's export dialog ([`ExportDialog`]): the adapter it exports, then a
//! row per choice (those that do not apply dimmed, with why), the engine's refusal if the
//! last estimate had one, and the keys.

use super::{centered, overlay_block};
use crate::context::ExportDialog;
use crate::context::export::{ExportRow, default_name};
use crate::format;
use crate::theme::Theme;
use brightrun_api::domain::*;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

/// Columns of a row's label (`system prompt` and two spaces).
const LABEL: usize = 15;

/// What a choice means, beside it.
fn note(d: &ExportDialog, row: ExportRow) -> String {
    match row {
        ExportRow::Format => match d.format {
            ExportFormat::Merged => "the base with the adapter merged in (safetensors)",
            ExportFormat::Gguf => "one file for llama.cpp and Ollama",
            ExportFormat::GgufLora => "the adapter alone, for llama.cpp's --lora",
        }
        .into(),
        ExportRow::Dtype => "the tensors' type".into(),
        ExportRow::Quantize if d.quantize.is_none() => "not quantized (←→ llama.cpp's)".into(),
        ExportRow::Quantize => "llama.cpp's quantization".into(),
        ExportRow::Ollama => "a Modelfile for `ollama create`".into(),
        ExportRow::SystemPrompt | ExportRow::Name => String::new(),
    }
}

pub(super) fn draw_export(frame: &mut Frame, area: Rect, t: &Theme, d: &ExportDialog) {
    let w = 76.min(area.width.saturating_sub(2)).max(1);
    let inner_w = w.saturating_sub(2).max(1) as usize;
    let mut lines: Vec<Line<'static>> = Vec::new();
    for l in format::wrap(
        &format!(
            "What to make of the adapter {} (base {}): a job makes it, checks that it answers \
             like base + adapter, and stores it under the adapter.",
            d.model_name(),
            d.model.base_model
        ),
        inner_w,
        0,
    ) {
        lines.push(Line::raw(l));
    }
    lines.push(Line::raw(""));
    // Where the selected text row is, to draw its input (with the cursor) over it.
    let mut text_at: Option<usize> = None;
    for row in ExportRow::ALL {
        let selected = row == d.row && !d.loading();
        let applies = d.applies(row);
        let mark = if selected { "› " } else { "  " };
        let label_style = if selected {
            t.selected()
        } else if applies {
            t.muted()
        } else {
            t.muted().add_modifier(Modifier::DIM)
        };
        // Values start two columns in, under a choice's value (its `‹ ›` takes those).
        let mut spans = vec![Span::styled(
            format!("{mark}{:<LABEL$}", row.label()),
            label_style,
        )];
        spans.push(Span::raw("  "));
        if !applies {
            spans.push(Span::styled(
                d.why_not(row),
                t.muted().add_modifier(Modifier::DIM),
            ));
        } else if row.is_text() {
            if selected {
                text_at = Some(lines.len());
            }
            let value = d.value(row);
            if value.is_empty() {
                let placeholder = match row {
                    ExportRow::Name => {
                        format!("(default: {})", default_name(&d.model, d.format))
                    }
                    _ => "(none)".into(),
                };
                spans.push(Span::styled(placeholder, t.muted()));
            } else {
                spans.push(Span::styled(value, t.base()));
            }
        } else {
            let value = d.value(row);
            spans.pop();
            let shown = if selected {
                format!("‹ {value} ›")
            } else {
                format!("  {value}  ")
            };
            spans.push(Span::styled(
                format!("{shown:<14}"),
                t.accent().add_modifier(Modifier::BOLD),
            ));
            spans.push(Span::styled(note(d, row), t.muted()));
        }
        lines.push(super::fit_line(Line::from(spans), inner_w));
    }
    lines.push(Line::raw(""));
    if d.loading() {
        lines.push(Line::styled(
            "Asking the engine what the export costs and how long it takes…",
            t.muted(),
        ));
        lines.push(Line::raw(""));
    } else if let Some(e) = &d.error {
        for l in format::wrap(&format!("✗ {e}"), inner_w, 2) {
            lines.push(Line::styled(l, Style::new().fg(t.error)));
        }
        lines.push(Line::raw(""));
    }
    let key = |k: &'static str| Span::styled(k, t.accent().add_modifier(Modifier::BOLD));
    lines.push(if d.loading() {
        Line::from(vec![key("esc"), Span::raw(" cancel")])
    } else {
        Line::from(vec![
            key("↑↓"),
            Span::raw(" field   "),
            key("←→"),
            Span::raw(" change   "),
            key("enter"),
            Span::raw(" estimate   "),
            key("esc"),
            Span::raw(" cancel"),
        ])
    });
    let h = (lines.len() as u16 + 2).min(area.height.saturating_sub(2).max(3));
    let popup = centered(area, w, h);
    frame.render_widget(Clear, popup);
    let block = overlay_block(t, &format!(" Export {} ", d.model_name()));
    let inner = block.inner(popup);
    frame.render_widget(Paragraph::new(lines).style(t.base()).block(block), popup);
    // The text being typed, with its cursor, over its row (when the row is on screen).
    if let Some(at) = text_at
        && (at as u16) < inner.height
    {
        let x = inner.x + 4 + LABEL as u16;
        let field = Rect::new(x, inner.y + at as u16, inner.right().saturating_sub(x), 1);
        let input = match d.row {
            ExportRow::Name => &d.name,
            _ => &d.system_prompt,
        };
        input.draw(frame, field, t.base());
    }
}
