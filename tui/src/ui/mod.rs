//! Drawing. Everything is computed from the app's state; nothing here waits on anything. Big
//! lists build rows only for the lines on screen; charts draw downsampled series.
//!
//! A frame is two passes: [`App::layout`] fits the state to the screen (list offsets, scroll
//! bounds, chart caches, the areas the mouse can click), then [`App::render`] draws from
//! `&self`. Each tab draws its own body; this module draws the chrome around it (the tab bar,
//! the status bar, toasts, overlays) and holds the widgets the tabs share.

use crate::action::Tab;
use crate::app::{App, Bottom, Hits, Overlay};
use crate::effect::{Level, TaskKey};
use crate::format;
use crate::theme::Theme;
use brightrun_api::domain::Priority;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, BorderType, Borders, Clear, Paragraph, Wrap};

/// The tab bar, the shown tab's body and the status bar.
fn screen(area: Rect) -> [Rect; 3] {
    Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area)
}

impl App {
    /// Draws the whole screen: [`App::layout`], then [`App::render`]. Records clickable areas
    /// for the mouse, and clears the redraw flag.
    pub fn draw(&mut self, frame: &mut Frame) {
        self.layout(frame.area());
        self.render(frame);
        // Drawing is the only thing that clears the flag.
        self.take_redraw();
    }

    /// Fits the state to a screen of this size, before it is drawn: brings list rows up to
    /// date, lets the shown tab keep its selection and scroll in view, and records where the
    /// mouse can click.
    pub fn layout(&mut self, area: Rect) {
        self.refresh_views();
        let [top, body, _] = screen(area);
        let tabs = tab_hits(top, self.unread);
        let tab = self.tab;
        let (c, shared) = self.component_mut(tab);
        let hits = c.layout(body, shared);
        self.hits = Hits {
            tabs,
            list: hits.list.map(|(r, offset)| (r, tab, offset)),
            detail: hits.detail,
        };
    }

    /// Draws the screen from the state as [`App::layout`] left it.
    pub fn render(&self, frame: &mut Frame) {
        let area = frame.area();
        frame.render_widget(Block::default().style(self.theme.base()), area);
        let [top, body, bottom] = screen(area);
        self.draw_tabs(frame, top);
        self.component(self.tab).draw(frame, body, &self.shared);
        self.draw_bottom(frame, bottom, body);
        self.draw_toasts(frame, body);
        self.draw_overlay(frame, area);
    }

    fn draw_tabs(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let mut spans: Vec<Span> = Vec::new();
        if area.width >= 96 {
            spans.push(Span::styled(BRAND, t.accent().add_modifier(Modifier::BOLD)));
        }
        for tab in Tab::ALL {
            let style = if tab == self.tab {
                Style::new()
                    .fg(t.tab_active_fg)
                    .bg(t.tab_active_bg)
                    .add_modifier(Modifier::BOLD)
            } else {
                Style::new().fg(t.foreground)
            };
            spans.push(Span::styled(tab_label(tab), style));
            if let Some(badge) = badge(tab, self.unread) {
                spans.push(Span::styled(
                    badge,
                    Style::new()
                        .fg(t.badge_fg)
                        .bg(t.badge_bg)
                        .add_modifier(Modifier::BOLD),
                ));
            }
            spans.push(Span::raw(" "));
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), area);
    }

    /// The status bar: hints or a message on the left; work, profile, backend on the right.
    fn draw_bottom(&self, frame: &mut Frame, area: Rect, body: Rect) {
        let t = self.theme.clone();
        match &self.bottom {
            Some(Bottom::Filter { input, .. }) => {
                let [label, field] =
                    Layout::horizontal([Constraint::Length(1), Constraint::Min(1)]).areas(area);
                frame.render_widget(Paragraph::new("/").style(t.accent()), label);
                input.draw(frame, field, t.base());
                return;
            }
            Some(Bottom::Command {
                input,
                completions,
                cycle,
                ..
            }) => {
                let [label, field] =
                    Layout::horizontal([Constraint::Length(1), Constraint::Min(1)]).areas(area);
                frame.render_widget(Paragraph::new(":").style(t.accent()), label);
                input.draw(frame, field, t.base());
                if !completions.is_empty() {
                    let shown: Vec<&String> = completions.iter().take(10).collect();
                    let h = shown.len() as u16 + 2;
                    let w = (shown.iter().map(|c| c.chars().count()).max().unwrap_or(4) as u16 + 4)
                        .max(17);
                    let popup = Rect::new(
                        area.x + 1,
                        body.bottom().saturating_sub(h),
                        w.min(area.width.saturating_sub(1)),
                        h.min(body.height),
                    );
                    let lines: Vec<Line> = shown
                        .iter()
                        .enumerate()
                        .map(|(i, c)| {
                            let st = if Some(i) == *cycle {
                                t.selected()
                            } else {
                                t.base()
                            };
                            Line::styled(format!(" {c} "), st)
                        })
                        .collect();
                    frame.render_widget(Clear, popup);
                    frame.render_widget(
                        Paragraph::new(lines).block(
                            Block::bordered()
                                .border_style(t.border(true))
                                .title(" tab completes "),
                        ),
                        popup,
                    );
                }
                return;
            }
            None => {}
        }
        let right = self.status_right();
        let right_w = right
            .iter()
            .map(|s| s.content.chars().count())
            .sum::<usize>() as u16;
        let [left_area, right_area] = Layout::horizontal([
            Constraint::Min(10),
            Constraint::Length(right_w.min(area.width.saturating_sub(10))),
        ])
        .areas(area);
        let left: Line = match &self.message {
            Some(m) => {
                let st = match m.level {
                    Level::Info => t.status_bar(),
                    Level::Success => t.status_bar().fg(t.success),
                    Level::Warning => t.status_bar().fg(t.warning),
                    Level::Error => t.status_bar().fg(t.error).add_modifier(Modifier::BOLD),
                };
                Line::from(Span::styled(format!(" {}", m.text), st))
            }
            None => self.hints_line(left_area.width as usize),
        };
        frame.render_widget(Paragraph::new(left).style(t.status_bar()), left_area);
        frame.render_widget(
            Paragraph::new(Line::from(right))
                .style(t.status_bar())
                .right_aligned(),
            right_area,
        );
    }

    fn status_right(&self) -> Vec<Span<'static>> {
        let t = &self.theme;
        let mut spans = vec![Span::styled(" ".to_string(), t.status_bar())];
        if self.frozen {
            spans.push(Span::styled(
                format!(
                    " FROZEN{} ",
                    if self.held.is_empty() {
                        String::new()
                    } else {
                        format!(" ({} held)", self.held.len())
                    }
                ),
                Style::new()
                    .fg(t.badge_fg)
                    .bg(t.warning)
                    .add_modifier(Modifier::BOLD),
            ));
            spans.push(Span::styled(" ".to_string(), t.status_bar()));
        }
        // Background work: the first task with its progress, and how many more.
        if let Some((key, task)) = self
            .tasks
            .iter()
            .find(|(k, _)| matches!(k, TaskKey::Upload(_) | TaskKey::Download(_)))
            .or_else(|| self.tasks.iter().next())
        {
            let pct = task
                .total
                .filter(|t| *t > 0)
                .map(|tot| format!(" {:.0}%", task.done as f64 * 100.0 / tot as f64))
                .unwrap_or_default();
            let more = if self.tasks.len() > 1 {
                format!(" +{}", self.tasks.len() - 1)
            } else {
                String::new()
            };
            let _ = key;
            spans.push(Span::styled(
                format!("⟳ {}{pct}{more} │ ", format::truncate(&task.label, 28)),
                Style::new().fg(t.info).bg(t.status_bg),
            ));
        }
        // Embedded or attached, and a lost connection until the feeds resume.
        if self.settings.reconnecting {
            spans.push(Span::styled(
                "⚠ reconnecting… │ ".to_string(),
                Style::new().fg(t.warning).bg(t.status_bg),
            ));
        } else if self.settings.connection.is_empty() {
            spans.push(Span::styled("embedded │ ".to_string(), t.status_bar()));
        } else {
            spans.push(Span::styled("attached │ ".to_string(), t.status_bar()));
        }
        // The object store, and whether it answers.
        let (dot, color) = match self.health.get(brightrun_api::events::STORAGE_HEALTH) {
            Some(true) => ("●", t.success),
            Some(false) => ("✗", t.error),
            None => ("○", t.muted),
        };
        // A remote store only: the local folder always answers, and the bar is narrow.
        if !self.settings.storage.is_empty() && self.settings.storage != "local" {
            spans.push(Span::styled(
                format!("{} ", self.settings.storage),
                t.status_bar(),
            ));
            spans.push(Span::styled(
                dot.to_string(),
                Style::new().fg(color).bg(t.status_bg),
            ));
            let down = if self.health.get(brightrun_api::events::STORAGE_HEALTH) == Some(&false) {
                " unreachable"
            } else {
                ""
            };
            spans.push(Span::styled(
                down.to_string(),
                Style::new().fg(t.error).bg(t.status_bg),
            ));
            spans.push(Span::styled(" │ ".to_string(), t.status_bar()));
        }
        // The Postgres mirror, when it is on: in sync, N behind, or unreachable and why.
        if let Some(m) = &self.mirror {
            use brightrun_api::mirror::MirrorState as M;
            let (text, color) = match m.state {
                M::InSync => ("pg ✓".to_string(), t.success),
                M::Disabled => (String::new(), t.muted),
                M::Starting | M::Behind | M::Backfilling => {
                    (format!("pg {} behind", m.behind), t.warning)
                }
                M::Unreachable => (
                    format!(
                        "pg ✗ {}",
                        format::truncate(
                            &one_line_text(m.last_error.as_deref().unwrap_or("unreachable")),
                            40
                        )
                    ),
                    t.error,
                ),
            };
            spans.push(Span::styled(text, Style::new().fg(color).bg(t.status_bg)));
            spans.push(Span::styled(" │ ".to_string(), t.status_bar()));
        }
        let backend = self.settings.backends.first().cloned().unwrap_or_default();
        let (dot, color) = match self.health.get(&backend) {
            Some(true) => ("●", t.success),
            Some(false) => ("✗", t.error),
            None => ("○", t.muted),
        };
        spans.push(Span::styled(
            format!("{} │ {backend} ", self.settings.profile),
            t.status_bar(),
        ));
        spans.push(Span::styled(
            dot.to_string(),
            Style::new().fg(color).bg(t.status_bg),
        ));
        if let Some(false) = self.health.get(&backend) {
            spans.push(Span::styled(
                " unreachable",
                Style::new().fg(t.error).bg(t.status_bg),
            ));
        }
        spans.push(Span::styled(" ".to_string(), t.status_bar()));
        spans
    }

    /// Key hints for the current view (from the keymap, so remapped keys show as they are).
    fn hints_line(&self, width: usize) -> Line<'static> {
        let names = self.component(self.tab).keys();
        let t = &self.theme;
        let mut spans = vec![Span::raw(" ")];
        let mut used = 1;
        // Help first: whatever else does not fit, `?` shows.
        let all: Vec<&(&str, &str)> = [("help", "help")]
            .iter()
            .chain(names.iter())
            .chain([("command", "cmd"), ("quit", "quit")].iter())
            .collect();
        for (name, label) in all {
            let k = self.keymap.hint(self.tab, name);
            let w = k.chars().count() + label.chars().count() + 3;
            if used + w > width {
                break;
            }
            used += w;
            spans.push(Span::styled(
                k,
                t.status_bar().fg(t.accent).add_modifier(Modifier::BOLD),
            ));
            spans.push(Span::styled(format!(" {label}  "), t.status_bar()));
        }
        Line::from(spans)
    }

    fn draw_toasts(&self, frame: &mut Frame, body: Rect) {
        let t = &self.theme;
        let mut y = body.y + 1;
        let w = 44.min(body.width.saturating_sub(2));
        for toast in self.toasts.iter().rev() {
            if y + 4 > body.bottom() {
                break;
            }
            let area = Rect::new(body.right().saturating_sub(w + 1), y, w, 4);
            let color = if toast.priority == Priority::Critical {
                t.error
            } else {
                t.warning
            };
            frame.render_widget(Clear, area);
            frame.render_widget(
                Paragraph::new(vec![
                    Line::styled(
                        format::truncate(&toast.title, w as usize - 2),
                        Style::new().fg(color).add_modifier(Modifier::BOLD),
                    ),
                    Line::raw(format::truncate(&toast.message, w as usize - 2)),
                ])
                .style(t.base())
                .block(
                    Block::bordered()
                        .border_type(BorderType::Rounded)
                        .border_style(Style::new().fg(color)),
                ),
                area,
            );
            y += 4;
        }
    }

    fn draw_overlay(&self, frame: &mut Frame, area: Rect) {
        let t = self.theme.clone();
        let Some(overlay) = &self.overlay else {
            return;
        };
        match overlay {
            Overlay::Help { scroll } => {
                let (own, global) = self.keymap.help(self.tab);
                let mut lines = vec![Line::styled(
                    format!("{} tab", self.tab.title()),
                    t.header(),
                )];
                for h in &own {
                    lines.push(Line::from(vec![
                        Span::styled(format!("  {:<16}", h.keys), t.accent()),
                        Span::raw(h.help),
                    ]));
                }
                lines.push(Line::raw(""));
                lines.push(Line::styled("Everywhere", t.header()));
                for h in &global {
                    lines.push(Line::from(vec![
                        Span::styled(format!("  {:<16}", h.keys), t.accent()),
                        Span::raw(h.help),
                    ]));
                }
                lines.push(Line::raw(""));
                lines.push(Line::styled("Command line", t.header()));
                for c in [
                    ":datasets [text]   :jobs [status]   :models   :costs [week|month|year]",
                    ":cancel ID   :retry ID   :theme NAME   :add [PATH]   :read-all   :q",
                ] {
                    lines.push(Line::raw(format!("  {c}")));
                }
                lines.push(Line::raw(""));
                lines.push(Line::styled(
                    "Times are UTC. Keys are remappable in config ([tui.keys] action = \"key\").",
                    t.muted(),
                ));
                let h = (lines.len() as u16 + 2).min(area.height.saturating_sub(2));
                let popup = centered(area, 76, h);
                let max = (lines.len() as u16).saturating_sub(h.saturating_sub(2));
                self.help_max_scroll.set(max);
                let scroll = (*scroll).min(max);
                let mut block = overlay_block(&t, " Help: keys of this view (esc closes) ");
                // Say there is more, and where.
                let more = match (scroll > 0, scroll < max) {
                    (true, true) => Some(" ↑↓ more: j/k, g/G "),
                    (false, true) => Some(" ↓ more below: j, PgDn, G "),
                    (true, false) => Some(" ↑ more above: k, g "),
                    (false, false) => None,
                };
                if let Some(m) = more {
                    block = block.title_bottom(Line::styled(m, t.accent()).right_aligned());
                }
                frame.render_widget(Clear, popup);
                frame.render_widget(
                    Paragraph::new(lines)
                        .scroll((scroll, 0))
                        .style(t.base())
                        .block(block),
                    popup,
                );
            }
            Overlay::Confirm { title, lines, .. } => {
                let w = 64.min(area.width.saturating_sub(4));
                let mut text: Vec<Line> = lines.iter().map(|l| Line::raw(l.clone())).collect();
                text.push(Line::raw(""));
                text.push(Line::from(vec![
                    Span::styled("y", t.accent().add_modifier(Modifier::BOLD)),
                    Span::raw(" yes   "),
                    Span::styled("n", t.accent().add_modifier(Modifier::BOLD)),
                    Span::raw(" no"),
                ]));
                let inner_w = w.saturating_sub(2).max(1) as usize;
                let rows: usize = text
                    .iter()
                    .map(|l| l.width().max(1).div_ceil(inner_w))
                    .sum();
                let popup = centered(area, w, rows as u16 + 2);
                frame.render_widget(Clear, popup);
                frame.render_widget(
                    Paragraph::new(text)
                        .wrap(Wrap { trim: false })
                        .style(t.base())
                        .block(overlay_block(&t, &format!(" {title} "))),
                    popup,
                );
            }
            Overlay::Prompt {
                title, input, hint, ..
            } => {
                let w = 70.min(area.width.saturating_sub(4));
                let popup = centered(area, w, if hint.is_some() { 4 } else { 3 });
                frame.render_widget(Clear, popup);
                let block = overlay_block(&t, &format!(" {title} "));
                let inner = block.inner(popup);
                frame.render_widget(block, popup);
                let [field, help] =
                    Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
                input.draw(frame, field, t.base());
                if let Some(h) = hint {
                    frame.render_widget(Paragraph::new(h.clone()).style(t.muted()), help);
                }
            }
            Overlay::Files(fb) => {
                let w = 76.min(area.width.saturating_sub(2));
                let h = 20.min(area.height.saturating_sub(2));
                let popup = centered(area, w, h);
                frame.render_widget(Clear, popup);
                let title = if fb.folders_only.is_some() {
                    " Download to folder "
                } else {
                    " Add a dataset (JSONL) "
                };
                let block = overlay_block(&t, title);
                let inner = block.inner(popup);
                frame.render_widget(block, popup);
                let [field, list, help] = Layout::vertical([
                    Constraint::Length(1),
                    Constraint::Min(1),
                    Constraint::Length(1),
                ])
                .areas(inner);
                fb.input.draw(frame, field, t.base());
                let visible = fb.visible();
                let n = visible.len();
                let rows = list.height as usize;
                let sel = fb.selected.min(n.saturating_sub(1));
                let offset = if sel >= rows { sel + 1 - rows } else { 0 };
                let mut lines: Vec<Line> = Vec::new();
                if let Some(e) = &fb.error {
                    lines.push(Line::styled(e.clone(), Style::new().fg(t.error)));
                } else if fb.listed.is_none() {
                    lines.push(Line::styled("reading…", t.muted()));
                } else if n == 0 {
                    lines.push(Line::styled("(nothing matches)", t.muted()));
                }
                for (i, e) in visible.iter().enumerate().skip(offset).take(rows) {
                    let name = if e.is_dir {
                        format!("{}/", e.name)
                    } else {
                        e.name.clone()
                    };
                    let size = if e.is_dir {
                        String::new()
                    } else {
                        format::bytes(e.size)
                    };
                    let width = list.width as usize;
                    let name_w = width.saturating_sub(12);
                    let text =
                        format!(" {:<name_w$} {:>10}", format::truncate(&name, name_w), size);
                    let st = if i == sel {
                        t.selected()
                    } else if e.is_dir {
                        t.accent()
                    } else {
                        t.base()
                    };
                    lines.push(Line::styled(text, st));
                }
                frame.render_widget(Paragraph::new(lines), list);
                let help_text = if fb.folders_only.is_some() {
                    "tab complete  ↑↓ choose  → open  enter download here  esc cancel"
                } else {
                    "tab complete  ↑↓ choose  enter open/add  esc cancel"
                };
                frame.render_widget(Paragraph::new(help_text).style(t.muted()), help);
            }
            Overlay::Pick {
                title,
                options,
                selected,
                ..
            } => {
                let w = (options
                    .iter()
                    .map(|o| o.chars().count())
                    .max()
                    .unwrap_or(10) as u16
                    + 6)
                .clamp(30, area.width.saturating_sub(4).max(30));
                let h = (options.len() as u16 + 2).min(area.height.saturating_sub(2));
                let popup = centered(area, w, h);
                let rows = h.saturating_sub(2) as usize;
                let offset = if *selected >= rows {
                    *selected + 1 - rows
                } else {
                    0
                };
                let lines: Vec<Line> = options
                    .iter()
                    .enumerate()
                    .skip(offset)
                    .take(rows)
                    .map(|(i, o)| {
                        Line::styled(
                            format!(" {o}"),
                            if i == *selected {
                                t.selected()
                            } else {
                                t.base()
                            },
                        )
                    })
                    .collect();
                frame.render_widget(Clear, popup);
                frame.render_widget(
                    Paragraph::new(lines).block(overlay_block(&t, &format!(" {title} "))),
                    popup,
                );
            }
        }
    }
}

const BRAND: &str = " BrightRun ";

fn tab_label(tab: Tab) -> String {
    format!(" {} {} ", tab.index() + 1, tab.title())
}

/// The unread count on the Notifications tab's title.
fn badge(tab: Tab, unread: usize) -> Option<String> {
    (tab == Tab::Notifications && unread > 0).then(|| format!(" {} ", unread.min(999)))
}

/// Where each tab's title is in the tab bar (as [`App::render`] draws it).
fn tab_hits(area: Rect, unread: usize) -> Vec<(Rect, Tab)> {
    let mut x = area.x;
    if area.width >= 96 {
        x += BRAND.len() as u16;
    }
    let mut hits = Vec::new();
    for tab in Tab::ALL {
        let mut w = tab_label(tab).chars().count() as u16;
        if let Some(b) = badge(tab, unread) {
            w += b.chars().count() as u16;
        }
        hits.push((
            Rect::new(x, area.y, w.min(area.right().saturating_sub(x)), 1),
            tab,
        ));
        x = x.saturating_add(w + 1);
    }
    hits
}

pub(crate) fn overlay_block<'a>(t: &Theme, title: &str) -> Block<'a> {
    Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(t.border(true))
        .title(Span::styled(title.to_string(), t.header()))
        .style(t.base())
}

/// A bordered panel with a title; focused panels get the accent border.
pub(crate) fn panel<'a>(t: &Theme, title: impl Into<Line<'a>>, focused: bool) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_type(if focused {
            BorderType::Thick
        } else {
            BorderType::Plain
        })
        .border_style(t.border(focused))
        .title(title)
}

pub(crate) fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// A `key value` line for detail panes.
pub(crate) fn kv<'a>(t: &Theme, key: &str, value: impl Into<String>) -> Line<'a> {
    Line::from(vec![
        Span::styled(format!("{key:<14}"), t.muted()),
        Span::styled(value.into(), t.base()),
    ])
}

/// Splits multi-line text into lines (for text that may hold newlines).
pub(crate) fn text_lines<'a>(s: &str, style: Style, indent: &str) -> Vec<Line<'a>> {
    s.lines()
        .map(|l| Line::styled(format!("{indent}{l}"), style))
        .collect()
}

#[allow(dead_code)]
pub(crate) fn text_of<'a>(lines: Vec<Line<'a>>) -> Text<'a> {
    Text::from(lines)
}

/// The rows area of a bordered list (below its header) in `area`, with the selection kept in
/// view; returns it with the list's offset (for mouse hits). The layout half of [`draw_list`].
pub(crate) fn list_layout<K: Copy + PartialEq>(
    view: &mut crate::state::ListView<K>,
    area: Rect,
) -> (Rect, usize) {
    let inner = Block::bordered().inner(area);
    let offset = view.scroll_into_view(inner.height.saturating_sub(1) as usize);
    let rows_area = Rect::new(
        inner.x,
        inner.y + 1,
        inner.width,
        inner.height.saturating_sub(1),
    );
    (rows_area, offset)
}

/// Draws a list as a table from the offset [`list_layout`] chose, building rows only for the
/// lines on screen.
#[allow(clippy::too_many_arguments)]
pub(crate) fn draw_list<'a, K: Copy + PartialEq>(
    frame: &mut Frame,
    area: Rect,
    block: Block<'a>,
    t: &Theme,
    view: &crate::state::ListView<K>,
    header: Vec<Span<'a>>,
    widths: &[Constraint],
    empty: &str,
    mut row: impl FnMut(usize) -> ratatui::widgets::Row<'a>,
) {
    use ratatui::widgets::{Row, Table, TableState};
    let inner = block.inner(area);
    let rows_h = inner.height.saturating_sub(1) as usize;
    let offset = view.offset;
    let rows: Vec<Row> = view
        .rows
        .iter()
        .skip(offset)
        .take(rows_h)
        .map(|&i| row(i as usize))
        .collect();
    let header = Row::new(header).style(t.header());
    let table = Table::new(rows, widths.to_vec())
        .header(header)
        .block(block)
        .column_spacing(1)
        .row_highlight_style(t.selected());
    let mut state = TableState::default();
    if !view.rows.is_empty() {
        state.select(Some(view.selected.saturating_sub(offset)));
    }
    frame.render_stateful_widget(table, area, &mut state);
    if view.rows.is_empty() {
        let msg = Rect::new(
            inner.x + 1,
            inner.y + 1,
            inner.width.saturating_sub(2),
            1.min(inner.height.saturating_sub(1)),
        );
        // An empty list under a filter is not an empty collection: say what hides the rows.
        let text = if view.filter.trim().is_empty() {
            empty.to_string()
        } else {
            format!(
                "Nothing matches “{}”: esc clears the filter.",
                crate::sanitize::one_line(view.filter.trim())
            )
        };
        frame.render_widget(Paragraph::new(text).style(t.muted()), msg);
    }
}

/// Column headers with the sort marker on the sorted one.
pub(crate) fn headers<'a>(t: &Theme, cols: &[&str], sorted: &str, desc: bool) -> Vec<Span<'a>> {
    cols.iter()
        .map(|c| {
            if *c == sorted {
                Span::styled(
                    format!("{c}{}", if desc { "↓" } else { "↑" }),
                    t.header().fg(t.accent),
                )
            } else {
                Span::styled(c.to_string(), t.header())
            }
        })
        .collect()
}

/// Splits a list-and-detail tab: side by side on wide terminals (`wide_list_pct` for the
/// list), stacked otherwise (`tall_list_pct`, shrinking to 30% while the detail has the focus).
pub(crate) fn list_and_detail(
    area: Rect,
    detail_focus: bool,
    wide_list_pct: u16,
    tall_list_pct: u16,
) -> (Rect, Rect) {
    let [a, b] = if area.width >= 140 {
        Layout::horizontal([
            Constraint::Percentage(wide_list_pct),
            Constraint::Percentage(100 - wide_list_pct),
        ])
        .areas(area)
    } else {
        let pct = if detail_focus { 30 } else { tall_list_pct };
        Layout::vertical([
            Constraint::Percentage(pct),
            Constraint::Percentage(100 - pct),
        ])
        .areas(area)
    };
    (a, b)
}

/// A list panel's title: name, count, filter.
pub(crate) fn list_title<'a>(
    t: &Theme,
    name: &str,
    shown: usize,
    total: usize,
    filter: &str,
) -> Line<'a> {
    let mut spans = vec![Span::styled(format!(" {name} "), t.header())];
    if shown == total {
        spans.push(Span::styled(
            format!("{} ", format::thousands(total as u64)),
            t.muted(),
        ));
    } else {
        spans.push(Span::styled(
            format!(
                "{} of {} ",
                format::thousands(shown as u64),
                format::thousands(total as u64)
            ),
            t.muted(),
        ));
    }
    if !filter.is_empty() {
        spans.push(Span::styled(format!("/{filter} "), t.accent()));
    }
    Line::from(spans)
}

/// Text from the engine (an error from a server) on one line, without control characters.
fn one_line_text(s: &str) -> String {
    brightrun_api::text::one_line(s).into_owned()
}
