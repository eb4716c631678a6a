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

mod export;
mod retry;

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
                fit_line(
                    Line::from(Span::styled(format!(" {}", m.text), st)),
                    left_area.width as usize,
                )
            }
            None => self.hints_line(left_area.width as usize),
        };
        frame.render_widget(Paragraph::new(left).style(t.status_bar()), left_area);
        frame.render_widget(
            Paragraph::new(fit_line(Line::from(right), right_area.width as usize))
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
        let storage_health = self.health_now(brightrun_api::events::STORAGE_HEALTH);
        let (dot, color) = health_dot(t, storage_health);
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
            let down = if storage_health == Some(false) {
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
        let backend_health = self.health_now(&backend);
        let (dot, color) = health_dot(t, backend_health);
        spans.push(Span::styled(
            format!("{} │ {backend} ", self.settings.profile),
            t.status_bar(),
        ));
        spans.push(Span::styled(
            dot.to_string(),
            Style::new().fg(color).bg(t.status_bg),
        ));
        if backend_health == Some(false) {
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
        let component = self.component(self.tab);
        let names = component.keys();
        let t = &self.theme;
        let mut spans = vec![Span::raw(" ")];
        let mut used = 1;
        // Help first: whatever else does not fit, `?` shows. A view whose letters type says
        // all its keys itself.
        let all: Vec<&(&str, &str)> = if component.own_hints() {
            names.iter().collect()
        } else {
            [("help", "help")]
                .iter()
                .chain(names.iter())
                .chain([("command", "cmd"), ("quit", "quit")].iter())
                .collect()
        };
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

    /// The Chat view's part of the help: its own keys, the ones that edit the message, and
    /// how the keymap's keys behave there.
    fn chat_help(&self) -> Vec<Line<'static>> {
        let t = &self.theme;
        let key_line = |keys: String, help: String| {
            Line::from(vec![
                Span::styled(format!("  {keys:<17} "), t.accent()),
                Span::raw(help),
            ])
        };
        let mut lines = vec![Line::styled(
            "Chat view (letters type into the message)",
            t.header(),
        )];
        for h in self.keymap.help_context(crate::keymap::Context::Chat) {
            lines.push(key_line(h.keys, h.help.to_string()));
        }
        let k = |name| self.keymap.hint(Tab::Models, name);
        for (keys, help) in [
            (
                format!("{} {}", k("page_up"), k("page_down")),
                "scroll the conversation",
            ),
            (k("back"), "back to the list; the conversation is kept"),
            (
                "←→↑↓ home end".to_string(),
                "move in the message; ctrl-w deletes a word",
            ),
            (
                format!("{} {}", k("next_tab"), k("prev_tab")),
                "other tabs (the conversation is kept)",
            ),
        ] {
            lines.push(key_line(keys, help.to_string()));
        }
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            format!(
                "q, ?, :, / and the tab's letters act back in the list ({}).",
                k("back")
            ),
            t.muted(),
        ));
        lines
    }

    /// The Inspect view's part of the help: its own keys (they shadow the tab's there) and
    /// how to move in it.
    fn inspect_help(&self) -> Vec<Line<'static>> {
        let k = |name| self.keymap.hint(Tab::Datasets, name);
        let moves = vec![
            (format!("{} {}", k("down"), k("up")), "scroll"),
            (format!("{} {}", k("page_down"), k("page_up")), "page"),
            (
                format!("{} {}", k("top"), k("bottom")),
                "the start, the end",
            ),
            (k("back"), "back to the list"),
        ];
        self.view_help(
            "Inspect view (an example as the base model trains on it)",
            crate::keymap::Context::Inspect,
            moves,
        )
    }

    /// The Compare view's part of the help: its own keys (they shadow the tab's there) and
    /// how to move in it.
    fn compare_help(&self) -> Vec<Line<'static>> {
        let k = |name| self.keymap.hint(Tab::Jobs, name);
        let moves = vec![
            (format!("{} {}", k("down"), k("up")), "scroll the table"),
            (format!("{} {}", k("page_down"), k("page_up")), "page"),
            (
                k("refresh"),
                "ask the engine again: the comparison and the curves",
            ),
            (k("back"), "back to the list; the marks stay"),
        ];
        self.view_help(
            "Compare view (the marked runs side by side)",
            crate::keymap::Context::Compare,
            moves,
        )
    }

    /// A view's help: its title, the keys of its context, then how to move in it.
    fn view_help(
        &self,
        title: &'static str,
        context: crate::keymap::Context,
        moves: Vec<(String, &'static str)>,
    ) -> Vec<Line<'static>> {
        let t = &self.theme;
        let key_line = |keys: String, help: String| {
            Line::from(vec![
                Span::styled(format!("  {keys:<16}"), t.accent()),
                Span::raw(help),
            ])
        };
        let mut lines = vec![Line::styled(title, t.header())];
        for h in self.keymap.help_context(context) {
            lines.push(key_line(h.keys, h.help.to_string()));
        }
        for (keys, help) in moves {
            lines.push(key_line(keys, help.to_string()));
        }
        lines
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
                let mut lines = Vec::new();
                if self.tab == Tab::Models && self.tabs.models.chat.is_some() {
                    // Letters type there: the tab's and the global letter keys act once back
                    // in the list, so only the view's own keys are listed.
                    lines.extend(self.chat_help());
                } else {
                    if self.tab == Tab::Datasets && self.tabs.datasets.inspect.is_some() {
                        lines.extend(self.inspect_help());
                        lines.push(Line::raw(""));
                    }
                    if self.tab == Tab::Jobs && self.tabs.jobs.compare.is_some() {
                        lines.extend(self.compare_help());
                        lines.push(Line::raw(""));
                    }
                    lines.push(Line::styled(
                        format!("{} tab", self.tab.title()),
                        t.header(),
                    ));
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
            Overlay::Retry(dialog) => retry::draw_retry(frame, area, &t, dialog),
            Overlay::Export(dialog) => export::draw_export(frame, area, &t, dialog),
            Overlay::Pick {
                title,
                options,
                selected,
                target,
                filter,
            } => {
                let w = (options.iter().map(|o| format::width(o)).max().unwrap_or(10) as u16 + 6)
                    .clamp(30, area.width.saturating_sub(4).max(30))
                    .min(area.width);
                // The filter line, while typing, sits over the options; the popup keeps its
                // size as the options narrow.
                let filter_h = u16::from(filter.is_some());
                let h = (options.len() as u16 + 2 + filter_h).min(area.height.saturating_sub(2));
                let popup = centered(area, w, h);
                let shown: Vec<usize> = match filter {
                    Some(f) => crate::context::pick_visible(options, f.text(), target.keeps_last()),
                    None => (0..options.len()).collect(),
                };
                let rows = h.saturating_sub(2 + filter_h) as usize;
                let at = shown.iter().position(|&i| i == *selected).unwrap_or(0);
                let offset = if at >= rows { at + 1 - rows } else { 0 };
                let inner_w = w.saturating_sub(2) as usize;
                let mut lines: Vec<Line> = shown
                    .iter()
                    .skip(offset)
                    .take(rows)
                    .map(|&i| {
                        fit_line(
                            Line::styled(
                                format!(" {}", options[i]),
                                if i == *selected {
                                    t.selected()
                                } else {
                                    t.base()
                                },
                            ),
                            inner_w,
                        )
                    })
                    .collect();
                if shown.is_empty() {
                    lines.push(Line::styled(" (nothing matches: esc clears)", t.muted()));
                }
                let mut block = overlay_block(&t, &format!(" {title} "));
                block = block.title_bottom(
                    Line::styled(
                        if filter.is_some() {
                            " enter picks · esc clears "
                        } else {
                            " / filter "
                        },
                        t.muted(),
                    )
                    .right_aligned(),
                );
                frame.render_widget(Clear, popup);
                let inner = block.inner(popup);
                frame.render_widget(block, popup);
                let [field, list] =
                    Layout::vertical([Constraint::Length(filter_h), Constraint::Min(0)])
                        .areas(inner);
                if let Some(f) = filter {
                    let [slash, input] =
                        Layout::horizontal([Constraint::Length(2), Constraint::Min(1)])
                            .areas(field);
                    frame.render_widget(Paragraph::new(" /").style(t.accent()), slash);
                    f.draw(frame, input, t.base());
                }
                frame.render_widget(Paragraph::new(lines), list);
            }
        }
    }
}

/// The dot for a health verdict: answers, unreachable, or not known (never asked, or the
/// engine itself out of reach).
fn health_dot(t: &Theme, verdict: Option<bool>) -> (&'static str, ratatui::style::Color) {
    match verdict {
        Some(true) => ("●", t.success),
        Some(false) => ("✗", t.error),
        None => ("○", t.muted),
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

/// How a list column is sized. Widths follow what the rows on screen hold: a column is as
/// wide as its widest cell (header included) within `min..=max`, and the `fill` columns (a
/// name, a title, a message) share whatever width is left, so nothing is cut while the
/// terminal has room, and what must be cut ends in `…`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Col {
    pub min: u16,
    pub max: u16,
    pub fill: bool,
}

impl Col {
    /// Always `w` columns (a progress bar, a short id).
    pub const fn fixed(w: u16) -> Col {
        Col {
            min: w,
            max: w,
            fill: false,
        }
    }

    /// As wide as its content, between `min` and `max`.
    pub const fn fit(min: u16, max: u16) -> Col {
        Col {
            min,
            max,
            fill: false,
        }
    }

    /// As wide as its content at least, and a share of the spare width; cut (with `…`) down
    /// to `min` before other columns are.
    pub const fn fill(min: u16) -> Col {
        Col {
            min,
            max: u16::MAX,
            fill: true,
        }
    }
}

/// Column widths for `cols` whose widest cells are `content`, in `avail` columns with
/// `spacing` between columns.
pub(crate) fn column_widths(cols: &[Col], content: &[u16], avail: u16, spacing: u16) -> Vec<u16> {
    let n = cols.len();
    let mut w: Vec<u16> = cols
        .iter()
        .zip(content)
        .map(|(c, &x)| x.clamp(c.min, c.max.max(c.min)))
        .collect();
    let gaps = spacing.saturating_mul(n.saturating_sub(1) as u16);
    let avail = avail.saturating_sub(gaps);
    let total: u16 = w.iter().fold(0u16, |a, b| a.saturating_add(*b));
    if total <= avail {
        // Spare width to the fill columns, evenly.
        let fills: Vec<usize> = (0..n).filter(|&i| cols[i].fill).collect();
        if !fills.is_empty() {
            let extra = avail - total;
            let share = extra / fills.len() as u16;
            let mut rest = extra % fills.len() as u16;
            for &i in &fills {
                w[i] += share + u16::from(rest > 0);
                rest = rest.saturating_sub(1);
            }
        }
        return w;
    }
    // Too wide: the widest fill column gives a column first (down to its minimum), then the
    // widest other column above its minimum, then whatever is widest.
    let mut over = total - avail;
    let floor = |i: usize, stage: u8| match stage {
        0 if cols[i].fill => cols[i].min,
        1 => cols[i].min,
        2 => 0,
        _ => u16::MAX,
    };
    for stage in 0..3u8 {
        while over > 0 {
            let pick = (0..n)
                .filter(|&i| w[i] > floor(i, stage))
                .max_by_key(|&i| (w[i] - floor(i, stage), std::cmp::Reverse(i)));
            let Some(i) = pick else { break };
            w[i] -= 1;
            over -= 1;
        }
    }
    w
}

/// `line` cut to `width` columns with the one cut rule ([`format::truncate`]): styles and
/// alignment kept, an ellipsis in the last column when anything was cut.
pub(crate) fn fit_line<'a>(line: Line<'a>, width: usize) -> Line<'a> {
    if line.width() <= width {
        return line;
    }
    let (spans, style, alignment) = (line.spans, line.style, line.alignment);
    let mut out: Vec<Span<'a>> = Vec::new();
    if width > 0 {
        let mut used = 0usize;
        for span in spans {
            let sw = span.width();
            if used + sw < width {
                used += sw;
                out.push(span);
                continue;
            }
            // This span holds the cut: as much as fits before the ellipsis, in its style.
            let room = width - 1 - used;
            let mut text = String::new();
            let mut w = 0;
            for c in span.content.chars() {
                let cw = format::char_width(c);
                if w + cw > room {
                    break;
                }
                text.push(c);
                w += cw;
            }
            text.push('…');
            out.push(Span::styled(text, span.style));
            break;
        }
    }
    let mut l = Line::from(out).style(style);
    l.alignment = alignment;
    l
}

/// Word-wraps a styled line to `width` columns with a hanging indent: continuation lines
/// start under the value, not under the key. The key is the line's first span when it has
/// several (`key  value…`), else its leading spaces; an indent past two thirds of the width
/// falls back to the leading spaces. Styles are kept; a word longer than a line is broken.
pub(crate) fn wrap_hanging(line: Line<'static>, width: usize) -> Vec<Line<'static>> {
    if width == 0 || line.width() <= width {
        return vec![line];
    }
    let leading = line
        .spans
        .first()
        .map(|s| s.content.chars().take_while(|c| *c == ' ').count())
        .unwrap_or(0);
    let key = if line.spans.len() >= 2 {
        line.spans[0].width()
    } else {
        leading
    };
    let indent = if key * 3 <= width * 2 {
        key
    } else if leading * 3 <= width * 2 {
        leading
    } else {
        0
    };
    // Atoms: runs of spaces and runs of other characters, each with its style.
    let mut atoms: Vec<(String, Style, bool)> = Vec::new();
    for span in &line.spans {
        let mut cur = String::new();
        let mut cur_space = None;
        for c in span.content.chars() {
            let sp = c == ' ';
            if cur_space.is_some_and(|s| s != sp) {
                atoms.push((
                    std::mem::take(&mut cur),
                    span.style,
                    cur_space == Some(true),
                ));
            }
            cur_space = Some(sp);
            cur.push(c);
        }
        if !cur.is_empty() {
            atoms.push((cur, span.style, cur_space == Some(true)));
        }
    }
    let mut out: Vec<Line<'static>> = Vec::new();
    let mut spans: Vec<Span<'static>> = Vec::new();
    let mut used = 0usize;
    // Whether the current line holds text (a continuation line starts with only its indent).
    let mut has_text = false;
    let pad = " ".repeat(indent);
    let style = line.style;
    let break_line = |out: &mut Vec<Line<'static>>,
                      spans: &mut Vec<Span<'static>>,
                      used: &mut usize,
                      has_text: &mut bool| {
        // Trailing spaces at a break are dropped.
        while spans.len() > 1 && spans.last().is_some_and(|s| s.content.trim().is_empty()) {
            spans.pop();
        }
        out.push(Line::from(std::mem::take(spans)).style(style));
        spans.push(Span::raw(pad.clone()));
        *used = indent;
        *has_text = false;
    };
    for (text, st, space) in atoms {
        let w = format::width(&text);
        if space {
            if !has_text && !out.is_empty() {
                // Spaces at the start of a continuation line go.
                continue;
            }
            if used + w <= width {
                used += w;
                spans.push(Span::styled(text, st));
            } else {
                break_line(&mut out, &mut spans, &mut used, &mut has_text);
            }
            continue;
        }
        if used + w > width && has_text {
            break_line(&mut out, &mut spans, &mut used, &mut has_text);
        }
        if used + w <= width {
            used += w;
            has_text = true;
            spans.push(Span::styled(text, st));
            continue;
        }
        // A word longer than the room: broken where it must be.
        let mut piece = String::new();
        for c in text.chars() {
            let cw = format::char_width(c);
            if used + cw > width && (has_text || !piece.is_empty()) {
                spans.push(Span::styled(std::mem::take(&mut piece), st));
                break_line(&mut out, &mut spans, &mut used, &mut has_text);
            }
            piece.push(c);
            used += cw;
            has_text = true;
        }
        if !piece.is_empty() {
            spans.push(Span::styled(piece, st));
        }
    }
    if has_text || out.is_empty() {
        while spans.len() > 1 && spans.last().is_some_and(|s| s.content.trim().is_empty()) {
            spans.pop();
        }
        out.push(Line::from(spans).style(style));
    }
    out
}

/// [`wrap_hanging`] over many lines.
pub(crate) fn wrap_all(lines: Vec<Line<'static>>, width: usize) -> Vec<Line<'static>> {
    lines
        .into_iter()
        .flat_map(|l| wrap_hanging(l, width))
        .collect()
}

/// Draws a list as a table from the offset [`list_layout`] chose, building rows only for the
/// lines on screen. Each row is one line per column; column widths follow those lines and
/// the header ([`Col`]), and a cell too wide for its column is cut with an ellipsis.
#[allow(clippy::too_many_arguments)]
pub(crate) fn draw_list<'a, K: Copy + PartialEq>(
    frame: &mut Frame,
    area: Rect,
    block: Block<'a>,
    t: &Theme,
    view: &crate::state::ListView<K>,
    header: Vec<Span<'a>>,
    cols: &[Col],
    empty: &str,
    mut row: impl FnMut(usize) -> Vec<Line<'a>>,
) {
    use ratatui::widgets::{Row, Table, TableState};
    const SPACING: u16 = 1;
    let inner = block.inner(area);
    let rows_h = inner.height.saturating_sub(1) as usize;
    let offset = view.offset;
    let cells: Vec<Vec<Line<'a>>> = view
        .rows
        .iter()
        .skip(offset)
        .take(rows_h)
        .map(|&i| row(i as usize))
        .collect();
    let mut content: Vec<u16> = header.iter().map(|h| h.width() as u16).collect();
    content.resize(cols.len(), 0);
    for r in &cells {
        for (c, l) in content.iter_mut().zip(r) {
            *c = (*c).max(l.width().min(u16::MAX as usize) as u16);
        }
    }
    let widths = column_widths(cols, &content, inner.width, SPACING);
    let fit = |cells: Vec<Line<'a>>| -> Vec<Line<'a>> {
        cells
            .into_iter()
            .zip(&widths)
            .map(|(l, &w)| fit_line(l, w as usize))
            .collect()
    };
    let rows: Vec<Row> = cells.into_iter().map(|r| Row::new(fit(r))).collect();
    let header = Row::new(fit(header.into_iter().map(Line::from).collect())).style(t.header());
    let constraints: Vec<Constraint> = widths.iter().map(|&w| Constraint::Length(w)).collect();
    let table = Table::new(rows, constraints)
        .header(header)
        .block(block)
        .column_spacing(SPACING)
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
        frame.render_widget(
            Paragraph::new(fit_line(Line::raw(text), msg.width as usize)).style(t.muted()),
            msg,
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    fn text(l: &Line) -> String {
        l.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn columns_follow_content_and_fill_takes_the_rest() {
        let cols = [Col::fixed(8), Col::fill(8), Col::fit(6, 12), Col::fit(3, 5)];
        // Room for everything: the fill column gets the spare width.
        assert_eq!(
            column_widths(&cols, &[8, 16, 9, 3], 60, 1),
            vec![8, 37, 9, 3]
        );
        // Too narrow: the fill column gives first, down to its minimum, then the others.
        assert_eq!(
            column_widths(&cols, &[8, 16, 9, 3], 30, 1),
            vec![8, 8, 8, 3]
        );
        assert_eq!(
            column_widths(&cols, &[8, 16, 9, 3], 36, 1),
            vec![8, 13, 9, 3]
        );
        // Content narrower than a minimum keeps the minimum.
        assert_eq!(
            column_widths(&cols, &[8, 2, 2, 1], 40, 1),
            vec![8, 20, 6, 3]
        );
    }

    #[test]
    fn a_cut_line_ends_in_an_ellipsis_and_keeps_its_styles() {
        let l = Line::from(vec![
            Span::styled("support ", Style::new().fg(ratatui::style::Color::Red)),
            Span::raw("chats v2"),
        ])
        .right_aligned();
        let cut = fit_line(l.clone(), 14);
        assert_eq!(text(&cut), "support chats…");
        assert_eq!(cut.width(), 14);
        assert_eq!(cut.spans[0].style.fg, Some(ratatui::style::Color::Red));
        assert_eq!(cut.alignment, l.alignment);
        assert_eq!(text(&fit_line(l.clone(), 16)), "support chats v2");
        assert_eq!(text(&fit_line(l.clone(), 1)), "…");
        assert_eq!(text(&fit_line(l, 0)), "");
        // Wide characters are never split.
        assert_eq!(text(&fit_line(Line::raw("日本語テキスト"), 6)), "日本…");
    }

    #[test]
    fn wrapped_values_hang_under_themselves() {
        let l = Line::from(vec![
            Span::raw(format!("{:<14}", "file")),
            Span::raw("customer support chats exported.jsonl · 1.2 MB"),
        ]);
        let got: Vec<String> = wrap_hanging(l, 40).iter().map(text).collect();
        assert_eq!(
            got,
            vec![
                "file          customer support chats",
                "              exported.jsonl · 1.2 MB",
            ]
        );
        // A single span hangs under its leading spaces; a long word is broken.
        let got: Vec<String> = wrap_hanging(Line::raw("  abc defghijklmnopqrstuvwxyz"), 12)
            .iter()
            .map(text)
            .collect();
        assert_eq!(got, vec!["  abc", "  defghijklm", "  nopqrstuvw", "  xyz"]);
        // Short lines are untouched.
        assert_eq!(wrap_hanging(Line::raw("short"), 40).len(), 1);
        for l in wrap_hanging(Line::raw("word ".repeat(30)), 17) {
            assert!(l.width() <= 17, "{l:?}");
        }
    }
}
