//! The Models tab: the artifact list (sortable by date and quality score; each adapter's
//! exports under it, with their kind and check), its detail, downloading the selected model,
//! exporting an adapter (the export dialog: [`crate::context::export`]), its Evaluation view
//! (the base model and the adapter side by side on held-out samples and probes, loaded
//! through the API as an effect), and its Chat view (the playground: [`super::chat`]).

use super::chat::{self, ChatSession, KeyUse, SendRefused};
use super::{Browse, Component, DetailPane, Focus, Handled, TabHits};
use crate::action::{Action, Tab};
use crate::context::{Confirmed, ExportDialog, Overlay, PromptKind, Shared, lists};
use crate::effect::{Effect, Level};
use crate::format;
use crate::input::Input;
use crate::theme::Theme;
use crate::ui::{Col, draw_list, headers, kv, list_title, panel, wrap_all};
use brightrun_api::chat::ChatEvent;
use brightrun_api::domain::*;
use brightrun_api::ids::ArtifactId;
use brightrun_api::{ApiError, Reason};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use std::collections::HashMap;
use std::sync::Arc;

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
    focused_title: " Detail (↑↓ scroll, e evaluation, d download) ",
};

#[derive(Clone, Debug, Default)]
pub struct ModelsTab {
    pub browse: Browse,
    /// Evaluations loaded (or being loaded) per model: the Evaluation view and the detail's
    /// quality line read them.
    pub evaluations: HashMap<ArtifactId, EvalState>,
    /// The Evaluation view, while it is open.
    pub evaluation: Option<EvalView>,
    /// Conversations in the Chat view, one per model chatted with, kept while the dashboard
    /// runs (leaving the view keeps them, and replies still coming keep coming).
    pub chats: HashMap<ArtifactId, ChatSession>,
    /// The model whose Chat view is open.
    pub chat: Option<ArtifactId>,
}

/// A model's evaluation as far as the dashboard knows it.
#[derive(Clone, Debug, PartialEq)]
pub enum EvalState {
    Loading,
    Loaded(Arc<Evaluation>),
    /// The model has none (`Reason::NotEvaluated`).
    NotEvaluated,
    /// The engine answered with another error (said in the status bar too).
    Failed(String),
}

/// The open Evaluation view: whose, and how far it is scrolled.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalView {
    pub id: ArtifactId,
    pub scroll: u16,
}

/// Evaluations kept loaded; past this the cache starts over (the open one stays).
const KEEP_EVALUATIONS: usize = 64;

/// What the view says for a model with no evaluation.
pub const NOT_EVALUATED: &str =
    "no evaluation: trained before BrightRun evaluated runs, or with [evaluation] enabled = false";

/// Inner width from which samples and probes are shown as side-by-side columns.
const SIDE_BY_SIDE: usize = 120;

impl Component for ModelsTab {
    fn handle(&mut self, action: &Action, s: &mut Shared) -> Handled {
        if let Some(id) = self.chat {
            return self.handle_chat(id, action, s);
        }
        if let Some(view) = &mut self.evaluation {
            match action {
                Action::Back | Action::Left | Action::Evaluation => {
                    self.evaluation = None;
                    return Handled::done();
                }
                a if super::scroll(&mut view.scroll, a) => return Handled::done(),
                // The list is hidden: its keys do nothing under the view.
                Action::Open | Action::Right | Action::Sort | Action::SortReverse => {
                    return Handled::done();
                }
                _ => {}
            }
        }
        let sel = s.selected_artifact().cloned();
        if self.browse.browse(Tab::Models, sel.is_some(), action, s) {
            return Handled::done();
        }
        match action {
            Action::Evaluation => {
                let Some(a) = sel else {
                    return Handled::Consumed(s.nothing_selected());
                };
                // An export is checked, not evaluated: its evaluation is its adapter's.
                if a.kind != ModelKind::Adapter {
                    let adapter = a
                        .parent_model_id
                        .map(|p| format!("; its adapter {} has one", chat_name(s, p)))
                        .unwrap_or_default();
                    s.notify_user(
                        format!(
                            "{} v{} is a {} export: its check is in its detail{adapter}",
                            a.name,
                            a.version,
                            a.kind.as_str()
                        ),
                        Level::Info,
                    );
                    return Handled::done();
                }
                self.evaluation = Some(EvalView {
                    id: a.id,
                    scroll: 0,
                });
                // Asked again each time (a model evaluated again since shows its new one),
                // unless a request is in flight; what was loaded shows meanwhile.
                match self.evaluations.get(&a.id) {
                    Some(EvalState::Loading) => Handled::done(),
                    Some(EvalState::Loaded(_)) => {
                        Handled::Consumed(vec![Effect::LoadEvaluation(a.id)])
                    }
                    _ => {
                        self.evaluations.insert(a.id, EvalState::Loading);
                        Handled::Consumed(vec![Effect::LoadEvaluation(a.id)])
                    }
                }
            }
            Action::Chat => {
                let Some(a) = sel else {
                    return Handled::Consumed(s.nothing_selected());
                };
                self.evaluation = None;
                self.chats
                    .entry(a.id)
                    .or_insert_with(|| ChatSession::new(a.id));
                self.chat = Some(a.id);
                Handled::done()
            }
            Action::Export => {
                let Some(a) = sel else {
                    return Handled::Consumed(s.nothing_selected());
                };
                export(&a, s);
                Handled::done()
            }
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

    fn shown(&mut self, s: &mut Shared) -> Vec<Effect> {
        self.ensure_evaluation(s)
    }

    fn tick(&mut self, s: &mut Shared) -> Vec<Effect> {
        self.ensure_evaluation(s)
    }

    fn browse(&mut self) -> Option<&mut Browse> {
        Some(&mut self.browse)
    }

    fn captures_input(&self) -> bool {
        self.chat.is_some()
    }

    fn own_hints(&self) -> bool {
        self.chat.is_some()
    }

    fn layout(&mut self, area: Rect, s: &mut Shared) -> TabHits {
        if let Some(session) = self.chat.and_then(|id| self.chats.get_mut(&id)) {
            let (history, _) = chat_areas(area, session);
            let inner = panel(&s.theme, "", false).inner(history);
            let keys = chat::Keys::new(&s.keymap);
            let lines = chat::lines(session, inner.width as usize, &s.theme, &keys);
            session.fit_scroll(lines.len(), inner.height);
            session.input.set_style(s.theme.base());
            session.input.set_placeholder_style(s.theme.muted());
            return TabHits {
                list: None,
                detail: Some(history),
            };
        }
        if let Some(view) = &self.evaluation {
            let a = s.artifacts.get(view.id).cloned();
            let inner = panel(&s.theme, "", true).inner(area);
            let lines = evaluation_lines(
                a.as_deref(),
                self.evaluations.get(&view.id),
                inner.width as usize,
                &s.theme,
            );
            let max = (lines.len().min(u16::MAX as usize) as u16).saturating_sub(inner.height);
            if let Some(view) = &mut self.evaluation {
                view.scroll = view.scroll.min(max);
            }
            return TabHits {
                list: None,
                detail: Some(area),
            };
        }
        let eval = s
            .selected_artifact()
            .and_then(|a| self.evaluations.get(&a.id));
        let lines = s.selected_artifact().map(|x| detail_lines(x, s, eval));
        PANE.layout(area, &mut self.browse, &mut s.model_list, lines)
    }

    fn draw(&self, frame: &mut Frame, area: Rect, s: &Shared) {
        if let Some(session) = self.chat.and_then(|id| self.chats.get(&id)) {
            draw_chat(frame, area, session, s);
            return;
        }
        if let Some(view) = &self.evaluation {
            self.draw_evaluation(frame, area, view, s);
            return;
        }
        let (list_area, detail_area) = PANE.split(area, &self.browse);
        self.draw_list(frame, list_area, s);
        let eval = s
            .selected_artifact()
            .and_then(|a| self.evaluations.get(&a.id));
        let lines = s.selected_artifact().map(|x| detail_lines(x, s, eval));
        PANE.draw(frame, detail_area, &s.theme, &self.browse, lines);
    }

    fn keys(&self) -> &'static [(&'static str, &'static str)] {
        if let Some(session) = self.chat.and_then(|id| self.chats.get(&id)) {
            if session.busy() {
                return &[
                    ("chat_stop", "stop"),
                    ("back", "back"),
                    ("chat_base", "base beside"),
                    ("page_up", "scroll"),
                    ("chat_help", "help"),
                ];
            }
            return &[
                ("chat_send", "send"),
                ("back", "back"),
                ("chat_base", "base beside"),
                ("chat_clear", "clear"),
                ("page_up", "scroll"),
                ("chat_help", "help"),
            ];
        }
        if self.evaluation.is_some() {
            return &[("back", "back"), ("down", "scroll"), ("page_down", "page")];
        }
        // The hints follow the focused pane.
        if self.browse.focus == super::Focus::Detail {
            return &[
                ("down", "scroll"),
                ("evaluation", "evaluation"),
                ("download", "download"),
                ("chat", "chat"),
                ("export", "export"),
                ("back", "back to the list"),
            ];
        }
        &[
            ("open", "detail"),
            ("evaluation", "evaluation"),
            ("download", "download"),
            ("chat", "chat"),
            ("export", "export"),
            ("sort", "sort"),
            ("filter", "filter"),
        ]
    }
}

impl ModelsTab {
    /// An action while the Chat view is open: its own keys, what types into the message, and
    /// the keymap's keys that type nothing (back, page, next tab…); the rest is ignored here.
    fn handle_chat(&mut self, id: ArtifactId, action: &Action, s: &mut Shared) -> Handled {
        let action = match action {
            Action::Input(key) => match chat::key_use(&s.keymap, Tab::Models, key) {
                KeyUse::Act(a) | KeyUse::Mapped(a) => a,
                KeyUse::Edit => {
                    if let Some(c) = self.chats.get_mut(&id) {
                        c.edit(*key);
                    }
                    return Handled::done();
                }
            },
            other => other.clone(),
        };
        let Some(session) = self.chats.get_mut(&id) else {
            self.chat = None;
            return Handled::Ignored;
        };
        let keys = chat::Keys::new(&s.keymap);
        let fx = match action {
            Action::ChatSend => match session.send(s.request_id()) {
                Ok(fx) => fx,
                Err(SendRefused::Empty) => Vec::new(),
                Err(SendRefused::Busy) => {
                    s.notify_user(
                        format!(
                            "a reply is still coming: {} stops it (your message stays in the box)",
                            keys.stop
                        ),
                        Level::Info,
                    );
                    Vec::new()
                }
            },
            Action::ChatNewline => {
                session.newline();
                Vec::new()
            }
            Action::ChatBase => {
                let fx = session.toggle_beside(&mut || s.request_id());
                s.notify_user(
                    if session.beside {
                        format!(
                            "the base model answers too, beside the adapter ({} hides it)",
                            keys.base
                        )
                    } else {
                        "the adapter answers alone".to_string()
                    },
                    Level::Info,
                );
                fx
            }
            Action::ChatStop => {
                let fx = session.stop();
                if fx.is_empty() {
                    s.notify_user(
                        format!(
                            "no reply is coming; {} leaves the chat (it is kept)",
                            keys.back
                        ),
                        Level::Info,
                    );
                } else {
                    s.notify_user("stopped; what came is kept", Level::Info);
                }
                fx
            }
            Action::ChatClear => {
                if session.turns.is_empty() {
                    return Handled::done();
                }
                let name = chat_name(s, id);
                s.overlay = Some(Overlay::Confirm {
                    title: "Clear the conversation?".into(),
                    lines: vec![format!(
                        "The {} with {name} will be forgotten{}; the message being typed stays.",
                        format::plural(session.turns.len() as u64, "turn"),
                        if session.busy() {
                            ", and the reply coming stopped"
                        } else {
                            ""
                        }
                    )],
                    on_yes: Confirmed::ClearChat(id),
                });
                Vec::new()
            }
            Action::Help => {
                s.overlay = Some(Overlay::Help { scroll: 0 });
                Vec::new()
            }
            Action::Back | Action::Chat => {
                self.chat = None;
                Vec::new()
            }
            Action::Paste(text) => {
                session.paste(&text);
                Vec::new()
            }
            Action::PageUp => {
                session.scroll_by(-i32::from(session.page));
                Vec::new()
            }
            Action::PageDown => {
                session.scroll_by(i32::from(session.page));
                Vec::new()
            }
            // The mouse wheel over the conversation.
            Action::Up => {
                session.scroll_by(-1);
                Vec::new()
            }
            Action::Down => {
                session.scroll_by(1);
                Vec::new()
            }
            Action::Top => {
                session.follow = false;
                session.scroll = 0;
                Vec::new()
            }
            Action::Bottom => {
                session.follow = true;
                Vec::new()
            }
            // The list is hidden: its keys do nothing under the view.
            Action::Open
            | Action::Left
            | Action::Right
            | Action::Sort
            | Action::SortReverse
            | Action::Evaluation
            | Action::Download
            | Action::Export => Vec::new(),
            _ => return Handled::Ignored,
        };
        Handled::Consumed(fx)
    }

    /// One event of a chat reply (the answer to [`Effect::Chat`]); returns what to send next.
    /// A reply that fails while its view is not shown is said in the status bar too.
    pub fn chat_event(&mut self, request: u64, event: ChatEvent, s: &mut Shared) -> Vec<Effect> {
        let Some(session) = self.chats.values_mut().find(|c| c.follows(request)) else {
            // A reply stopped or cleared: what was on its way is dropped.
            return Vec::new();
        };
        let failure = match &event {
            ChatEvent::Error { error } => Some(chat::error_text(error)),
            _ => None,
        };
        let model = session.model;
        let fx = session.on_event(request, event, &mut || s.request_id());
        if let Some(text) = failure
            && (self.chat != Some(model) || s.tab != Tab::Models)
        {
            let name = chat_name(s, model);
            s.notify_user(format!("chat with {name}: {text}"), Level::Error);
        }
        s.dirty = true;
        fx
    }

    /// Forgets a conversation (confirmed); stops what is coming.
    pub fn clear_chat(&mut self, id: ArtifactId) -> Vec<Effect> {
        self.chats
            .get_mut(&id)
            .map(ChatSession::clear)
            .unwrap_or_default()
    }

    /// Loads the selected model's evaluation the first time it is shown (its quality line
    /// says what the score rests on).
    fn ensure_evaluation(&mut self, s: &Shared) -> Vec<Effect> {
        // An export's detail shows its check, not an evaluation (its adapter has that).
        let Some(id) = s
            .selected_artifact()
            .filter(|a| a.kind == ModelKind::Adapter)
            .map(|a| a.id)
        else {
            return Vec::new();
        };
        if self.evaluations.contains_key(&id) {
            return Vec::new();
        }
        if self.evaluations.len() >= KEEP_EVALUATIONS {
            let open = self.evaluation.as_ref().map(|v| v.id);
            self.evaluations.retain(|k, _| Some(*k) == open);
        }
        self.evaluations.insert(id, EvalState::Loading);
        vec![Effect::LoadEvaluation(id)]
    }

    /// The answer to [`Effect::LoadEvaluation`]. An error other than "no evaluation" goes to
    /// the status bar when the view is open on that model.
    pub fn evaluation_loaded(
        &mut self,
        id: ArtifactId,
        result: Result<Evaluation, ApiError>,
        s: &mut Shared,
    ) {
        let state = match result {
            Ok(e) => EvalState::Loaded(Arc::new(e.sanitised())),
            Err(e) if e.reason == Some(Reason::NotEvaluated) => EvalState::NotEvaluated,
            Err(e) => {
                let text = crate::sanitize::one_line(&e.to_string()).into_owned();
                if self.evaluation.as_ref().is_some_and(|v| v.id == id) {
                    let name = s
                        .artifacts
                        .get(id)
                        .map(|a| format!("{} v{}", a.name, a.version))
                        .unwrap_or_else(|| id.short());
                    s.notify_user(
                        format!("could not load the evaluation of {name}: {text}"),
                        Level::Error,
                    );
                }
                // A stale failure never hides an evaluation already shown.
                if matches!(self.evaluations.get(&id), Some(EvalState::Loaded(_))) {
                    return;
                }
                EvalState::Failed(text)
            }
        };
        self.evaluations.insert(id, state);
        s.dirty = true;
    }

    fn draw_evaluation(&self, frame: &mut Frame, area: Rect, view: &EvalView, s: &Shared) {
        let t = &s.theme;
        let a = s.artifacts.get(view.id);
        let name = a
            .map(|a| format!("{} v{}", a.name, a.version))
            .unwrap_or_else(|| view.id.short());
        let title = Line::from(vec![
            Span::styled(format!(" Evaluation · {name} "), t.header()),
            Span::styled("(↑↓ scroll, esc back) ", t.muted()),
        ]);
        let block = panel(
            t,
            crate::ui::fit_line(title, area.width.saturating_sub(2) as usize),
            true,
        );
        let inner = block.inner(area);
        let lines = evaluation_lines(
            a.map(|a| a.as_ref()),
            self.evaluations.get(&view.id),
            inner.width as usize,
            t,
        );
        frame.render_widget(
            Paragraph::new(lines).scroll((view.scroll, 0)).block(block),
            area,
        );
    }
}

/// `name vN` of a model, or its short id once it is gone.
fn chat_name(s: &Shared, id: ArtifactId) -> String {
    s.artifacts
        .get(id)
        .map(|a| format!("{} v{}", a.name, a.version))
        .unwrap_or_else(|| id.short())
}

/// `x` on a model: the export dialog of an adapter; an export is not exported again (the
/// engine would refuse it), so nothing is asked and the status bar says what to do.
fn export(a: &Arc<ModelArtifact>, s: &mut Shared) {
    if a.kind != ModelKind::Adapter {
        let from = a
            .parent_model_id
            .map(|p| format!(": export {} instead", chat_name(s, p)))
            .unwrap_or_default();
        s.notify_user(
            format!(
                "{} v{} is a {} export; exports are made from adapters{from}",
                a.name,
                a.version,
                a.kind.as_str()
            ),
            Level::Info,
        );
        return;
    }
    s.overlay = Some(Overlay::Export(Box::new(ExportDialog::new(a.clone()))));
}

/// The Chat view's conversation and message box.
fn chat_areas(area: Rect, session: &ChatSession) -> (Rect, Rect) {
    let rows = session.input_rows(area.width.saturating_sub(2)) + 2;
    let [history, input] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(rows)]).areas(area);
    (history, input)
}

fn draw_chat(frame: &mut Frame, area: Rect, session: &ChatSession, s: &Shared) {
    let t = &s.theme;
    let keys = chat::Keys::new(&s.keymap);
    let (history, input) = chat_areas(area, session);
    let a = s.artifacts.get(session.model);
    let mut title = vec![Span::styled(
        format!(" Chat · {} ", chat_name(s, session.model)),
        t.header(),
    )];
    if let Some(a) = a {
        title.push(Span::styled(
            format!("on base {} ", crate::sanitize::one_line(&a.base_model)),
            t.muted(),
        ));
    }
    let width = history.width.saturating_sub(2) as usize;
    let mode = if session.beside {
        " adapter + base "
    } else {
        " adapter "
    };
    let block = panel(
        t,
        crate::ui::fit_line(Line::from(title), width.saturating_sub(mode.len() + 1)),
        false,
    )
    .title(Line::styled(mode, t.accent()).right_aligned());
    let inner = block.inner(history);
    let lines = chat::lines(session, inner.width as usize, t, &keys);
    frame.render_widget(
        Paragraph::new(lines)
            .scroll((session.scroll, 0))
            .block(block),
        history,
    );
    let input_title = if session.busy() {
        Line::from(vec![
            Span::styled(" Message ", t.header()),
            Span::styled(
                format!("(a reply is coming: {} stops it) ", keys.stop),
                t.muted(),
            ),
        ])
    } else {
        Line::from(vec![
            Span::styled(" Message ", t.header()),
            Span::styled(
                format!("({} sends, {} new line) ", keys.send, keys.newline),
                t.muted(),
            ),
        ])
    };
    let block = panel(
        t,
        crate::ui::fit_line(input_title, input.width.saturating_sub(2) as usize),
        true,
    );
    let inside = block.inner(input);
    frame.render_widget(block, input);
    frame.render_widget(&session.input, inside);
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
        let tree = &s.model_tree;
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
                let base = Line::from(
                    a.base_model
                        .rsplit('/')
                        .next()
                        .unwrap_or(&a.base_model)
                        .to_string(),
                );
                let size = Line::from(format::bytes(lists::artifact_size(a))).right_aligned();
                let created = Line::from(if wide {
                    format::datetime(a.created_at)
                } else {
                    format::age(now, a.created_at)
                });
                if a.kind != ModelKind::Adapter {
                    // An export: under its adapter (`├`/`└`) with its kind, and the check it
                    // passed where an adapter has its score (its quality is the adapter's).
                    let mut name = Vec::new();
                    if let Some(last) = tree.get(&(i as u32)) {
                        name.push(Span::styled(if *last { "└ " } else { "├ " }, t.muted()));
                    }
                    name.push(Span::styled(format!("{}  ", a.kind.as_str()), t.accent()));
                    name.push(Span::raw(a.name.clone()));
                    let (mark, verdict) = check_cells(a, &t);
                    return vec![
                        Line::from(name),
                        Line::from(format!("v{}", a.version)),
                        base,
                        mark,
                        verdict,
                        size,
                        created,
                    ];
                }
                let conv_style = match q.convergence {
                    Convergence::Good => Style::new().fg(t.success),
                    Convergence::Overfit => Style::new().fg(t.warning),
                    Convergence::Unknown => t.muted(),
                };
                vec![
                    Line::from(a.name.clone()),
                    Line::from(format!("v{}", a.version)),
                    base,
                    Line::from(Span::styled(
                        stars(q.quality_score),
                        Style::new().fg(t.warning),
                    )),
                    Line::from(Span::styled(convergence(q.convergence), conv_style)),
                    size,
                    created,
                ]
            },
        );
    }
}

/// A download of the model in progress, as a line of its detail.
fn download_line(a: &ModelArtifact, sh: &Shared, lines: &mut Vec<Line<'static>>) {
    let Some(task) = sh.download_progress(a.id) else {
        return;
    };
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
        Style::new().fg(sh.theme.info),
    ));
}

/// An export's detail: what it is and what it was made from, the check it passed, what was
/// asked of the export, and its files. (Its quality and training are its adapter's: the
/// adapter's detail has them.)
fn export_detail_lines(a: &ModelArtifact, sh: &Shared) -> Vec<Line<'static>> {
    let t = &sh.theme;
    let parent = match a.parent_model_id {
        Some(p) => match sh.artifacts.get(p) {
            Some(m) => format!(", exported from {} v{} ({})", m.name, m.version, p.short()),
            None => format!(", exported from {} (deleted)", p.short()),
        },
        None => String::new(),
    };
    let mut lines: Vec<Line<'static>> = vec![
        Line::from(vec![
            Span::styled(format!("{} v{}", a.name, a.version), t.header()),
            Span::styled(
                format!("  {}  from job {}", a.id.short(), a.job_id.short()),
                t.muted(),
            ),
        ]),
        kv(t, "kind", format!("{}{parent}", a.kind.as_str())),
        kv(t, "base model", a.base_model.clone()),
        kv(t, "dataset", sh.dataset_name(a.dataset_id)),
        kv(t, "created", format::datetime(a.created_at)),
    ];
    download_line(a, sh, &mut lines);
    lines.push(Line::raw(""));
    lines.push(Line::styled("Check", t.header()));
    match &a.export {
        Some(c) => {
            let how = match c.checked.as_str() {
                "logits" => "next-token logits against base + adapter".to_string(),
                "greedy" => "llama.cpp's greedy continuation against transformers'".to_string(),
                other => crate::sanitize::one_line(other).into_owned(),
            };
            let (_, verdict) = check_cells(a, t);
            let mut result = vec![Span::styled(format!("{:<14}", "result"), t.muted())];
            result.extend(verdict.spans);
            result.push(Span::styled(format!("  ({how})"), t.muted()));
            lines.push(Line::from(result));
            lines.push(kv(
                t,
                "figures",
                crate::sanitize::one_line(&c.summary()).into_owned(),
            ));
            if let Some(secs) = c.seconds {
                lines.push(kv(t, "took", format::duration_secs(secs.round() as i64)));
            }
            if let Some(cmd) = &c.ollama_command {
                lines.push(kv(t, "ollama", crate::sanitize::one_line(cmd).into_owned()));
            }
        }
        None => lines.push(Line::styled("  (none recorded)", t.muted())),
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("Export", t.header()));
    let task = a
        .configuration
        .0
        .get("export")
        .and_then(|v| serde_json::from_value::<ExportTask>(v.clone()).ok());
    match task {
        Some(task) => {
            lines.push(kv(t, "format", task.format.as_str()));
            lines.push(kv(t, "dtype", task.dtype.as_str()));
            if let Some(q) = &task.quantize {
                lines.push(kv(t, "quantize", crate::sanitize::one_line(q).into_owned()));
            }
            if task.ollama {
                lines.push(kv(t, "ollama", "a Modelfile"));
            }
            if let Some(p) = &task.system_prompt {
                lines.push(kv(
                    t,
                    "system prompt",
                    crate::sanitize::one_line(p).into_owned(),
                ));
            }
            // Its own job's cost (the record's summary adds the adapter's training to it).
            if let Some(cost) = sh.jobs.get(a.job_id).map(|j| lists::job_cost(j)) {
                lines.push(kv(t, "cost", format::money(cost)));
            }
        }
        None => config_lines(&a.configuration.0, "", &mut lines, t),
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        format!("Files ({})", a.files.len()),
        t.header(),
    ));
    file_lines(a, &mut lines, t);
    lines
}

/// An export's check in the list's Score and Fit columns: `check ✓ passed` (or `✗ failed`,
/// or `–` for an export stored without one).
fn check_cells(a: &ModelArtifact, t: &Theme) -> (Line<'static>, Line<'static>) {
    let verdict = match &a.export {
        Some(c) if c.passed => Span::styled("✓ passed", Style::new().fg(t.success)),
        Some(_) => Span::styled("✗ failed", Style::new().fg(t.error)),
        None => Span::styled("–", t.muted()),
    };
    (Line::styled("check", t.muted()), Line::from(verdict))
}

/// The detail pane's text: built by layout (to bound the scroll) and by draw.
fn detail_lines(a: &ModelArtifact, sh: &Shared, eval: Option<&EvalState>) -> Vec<Line<'static>> {
    if a.kind != ModelKind::Adapter {
        return export_detail_lines(a, sh);
    }
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
    // The models it was trained on from (`--from-model`), nearest first.
    let mut seen = vec![a.id];
    let mut parent = a.parent_model_id;
    while let Some(id) = parent.filter(|p| !seen.contains(p) && seen.len() <= 20) {
        seen.push(id);
        let (text, next) = match sh.artifacts.get(id) {
            Some(p) => (
                format!("{} v{} ({})", p.name, p.version, id.short()),
                p.parent_model_id,
            ),
            None => (format!("{} (deleted)", id.short()), None),
        };
        lines.push(kv(t, "trained from", text));
        parent = next;
    }
    // Its exports, newest first (the list shows them under it).
    let mut exports: Vec<&Arc<ModelArtifact>> = sh
        .artifacts
        .items()
        .iter()
        .filter(|e| e.parent_model_id == Some(a.id) && e.kind != ModelKind::Adapter)
        .collect();
    exports.sort_by_key(|e| std::cmp::Reverse((e.created_at, e.id)));
    let kind_w = exports
        .iter()
        .map(|e| e.kind.as_str().len())
        .max()
        .unwrap_or(0);
    for (i, e) in exports.iter().enumerate() {
        let (_, verdict) = check_cells(e, t);
        let mut spans = vec![
            Span::styled(
                format!("{:<14}", if i == 0 { "exports" } else { "" }),
                t.muted(),
            ),
            Span::styled(format!("{:<kind_w$}  ", e.kind.as_str()), t.accent()),
            Span::raw(format!("{} v{}  ", e.name, e.version)),
            Span::styled("check ", t.muted()),
        ];
        spans.extend(verdict.spans);
        lines.push(Line::from(spans));
    }
    download_line(a, sh, &mut lines);
    lines.push(Line::raw(""));
    lines.push(Line::styled("Quality", t.header()));
    lines.push(Line::from(vec![
        Span::styled(format!("{:<14}", "score"), t.muted()),
        Span::styled(stars(q.quality_score), Style::new().fg(t.warning)),
        Span::raw(format!("  {}/5", q.quality_score)),
    ]));
    // What the score rests on, in words (the held-out loss once the evaluation is loaded).
    let loaded = match eval {
        Some(EvalState::Loaded(e)) => Some(e.as_ref()),
        _ => None,
    };
    lines.push(kv(
        t,
        "rests on",
        brightrun_api::training::quality::explain(q, loaded),
    ));
    let key = sh.keymap.hint(Tab::Models, "evaluation");
    let (text, style) = match eval {
        Some(EvalState::Loaded(e)) => (
            format!("{}; {key} shows it", evaluation_summary(e)),
            t.base(),
        ),
        Some(EvalState::NotEvaluated) => (
            "none: trained before BrightRun evaluated runs, or with [evaluation] enabled = false"
                .to_string(),
            t.muted(),
        ),
        Some(EvalState::Failed(_)) => (
            format!("could not be loaded ({key} tries again)"),
            t.muted(),
        ),
        Some(EvalState::Loading) | None => (format!("{key} shows it"), t.muted()),
    };
    lines.push(Line::from(vec![
        Span::styled(format!("{:<14}", "evaluation"), t.muted()),
        Span::styled(text, style),
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
    file_lines(a, &mut lines, t);
    lines
}

/// A model's files: path, size, the start of its sha256.
fn file_lines(a: &ModelArtifact, lines: &mut Vec<Line<'static>>, t: &Theme) {
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

/// `adapter closer to the reference than the base in 3 of 4 samples · 1 of 5 probes changed`.
fn evaluation_summary(e: &Evaluation) -> String {
    let mut parts = Vec::new();
    if let Some(p) = &e.preference {
        parts.push(format!(
            "chosen reply preferred {} → {}",
            share(p.base_accuracy),
            share(p.adapter_accuracy)
        ));
    }
    if !e.samples.is_empty() {
        parts.push(closer_text(e));
    }
    if !e.probes.is_empty() {
        parts.push(probes_text(e));
    }
    if parts.is_empty() {
        return "no samples or probes".into();
    }
    parts.join(" · ")
}

/// A share (0..=1) as a percentage, `–` when there is none.
fn share(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map(|v| format!("{:.0}%", v * 100.0))
        .unwrap_or_else(|| "–".into())
}

/// A margin (a difference of log-probabilities or rewards), signed.
fn margin(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map(|v| format!("{v:+.2}"))
        .unwrap_or_else(|| "–".into())
}

/// Whether the model was trained with KTO (its configuration's method): its held-out
/// "pairs" are desirable against undesirable replies.
fn trained_with_kto(a: Option<&ModelArtifact>) -> bool {
    a.is_some_and(|a| a.configuration.0["hyperparameters"]["method"]["name"] == "kto")
}

/// A preference run's held-out pairs, as the base and the adapter judge them: how often
/// each prefers the chosen reply (base → adapter), by what margin, and the adapter's
/// implicit reward accuracy.
fn preference_lines(p: &PreferenceEvaluation, kto: bool, t: &Theme) -> Vec<Line<'static>> {
    let (good, what) = if kto {
        ("desirable", "labelled replies")
    } else {
        ("chosen", "pairs")
    };
    let mut first = vec![
        Span::styled(format!("{:<14}", "preference"), t.muted()),
        Span::raw(format!(
            "{} → {}",
            share(p.base_accuracy),
            share(p.adapter_accuracy)
        )),
        Span::styled(
            format!(
                "  base → adapter prefer the {good} reply ({} held-out {what})",
                format::thousands(u64::from(p.pairs))
            ),
            t.muted(),
        ),
    ];
    if let (Some(b), Some(a)) = (p.base_accuracy, p.adapter_accuracy) {
        let points = (a - b) * 100.0;
        let (text, color) = if points >= 0.0 {
            (format!("  +{points:.0} points"), t.success)
        } else {
            (format!("  {points:.0} points"), t.warning)
        };
        first.push(Span::styled(text, Style::new().fg(color)));
    }
    let mut lines = vec![Line::from(first)];
    lines.push(Line::from(vec![
        Span::styled(format!("{:<14}", "margin"), t.muted()),
        Span::raw(format!(
            "{} → {}",
            margin(p.base_margin),
            margin(p.adapter_margin)
        )),
        Span::styled(
            format!("  mean log-probability per token, {good} minus the other"),
            t.muted(),
        ),
    ]));
    if p.reward_accuracy.is_some() || p.reward_margin.is_some() {
        lines.push(Line::from(vec![
            Span::styled(format!("{:<14}", "reward"), t.muted()),
            Span::raw(format!(
                "accuracy {}, margin {}",
                share(p.reward_accuracy),
                margin(p.reward_margin)
            )),
            Span::styled(
                "  the adapter's implicit reward, the base as reference",
                t.muted(),
            ),
        ]));
    }
    lines
}

/// How many samples the adapter answered closer to the reference than the base did.
fn adapter_closer(e: &Evaluation) -> u64 {
    e.adapter_closer.map(u64::from).unwrap_or_else(|| {
        e.samples
            .iter()
            .filter(|s| matches!((s.adapter_score, s.base_score), (Some(a), Some(b)) if a > b))
            .count() as u64
    })
}

fn closer_text(e: &Evaluation) -> String {
    format!(
        "adapter closer to the reference than the base in {} of {}",
        adapter_closer(e),
        format::plural(e.samples.len() as u64, "sample")
    )
}

fn probes_text(e: &Evaluation) -> String {
    format!(
        "{} of {} changed",
        e.probes_changed(),
        format::plural(e.probes.len() as u64, "probe")
    )
}

fn from_training(e: &Evaluation) -> bool {
    e.samples_from.as_deref() == Some("training")
}

fn score(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "–".into())
}

/// A loss or a perplexity: two decimals read well beside each other.
fn loss(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "–".into())
}

/// The Evaluation view's text for `width` columns, wrapped: a header (losses, the counts,
/// what the score rests on), then every sample and probe as prompt | reference | base |
/// adapter, stacked on narrow terminals and side by side on wide ones.
pub(crate) fn evaluation_lines(
    a: Option<&ModelArtifact>,
    state: Option<&EvalState>,
    width: usize,
    t: &Theme,
) -> Vec<Line<'static>> {
    let e = match state {
        Some(EvalState::Loaded(e)) => e,
        Some(EvalState::NotEvaluated) => {
            return wrap_all(vec![Line::styled(NOT_EVALUATED, t.muted())], width);
        }
        Some(EvalState::Failed(why)) => {
            return wrap_all(
                vec![Line::styled(
                    format!("could not load the evaluation: {why}"),
                    Style::new().fg(t.error),
                )],
                width,
            );
        }
        Some(EvalState::Loading) | None => return vec![Line::styled("loading…", t.muted())],
    };
    let mut lines: Vec<Line<'static>> = Vec::new();
    let arrow = |b: Option<f64>, a: Option<f64>| format!("{} → {}", loss(b), loss(a));
    let mut loss = vec![
        Span::styled(format!("{:<14}", "held-out loss"), t.muted()),
        Span::raw(arrow(e.base_loss, e.adapter_loss)),
        Span::styled("  base → adapter", t.muted()),
    ];
    if let Some(h) = e.held_out_improvement() {
        let (text, color) = if h >= 0.0 {
            (format!("  {h:.0}% lower"), t.success)
        } else {
            (format!("  {:.0}% higher", -h), t.warning)
        };
        loss.push(Span::styled(text, Style::new().fg(color)));
    }
    lines.push(Line::from(loss));
    if e.base_perplexity.is_some() || e.adapter_perplexity.is_some() {
        lines.push(kv(
            t,
            "perplexity",
            arrow(e.base_perplexity, e.adapter_perplexity),
        ));
    }
    if let Some(p) = &e.preference {
        lines.extend(preference_lines(p, trained_with_kto(a), t));
    }
    if !e.samples.is_empty() {
        let mut text = closer_text(e);
        let base = e.base_closer.map(u64::from);
        if let (Some(b), Some(ties)) = (base, e.ties) {
            text.push_str(&format!(" (base closer in {b}, {ties} tied)"));
        }
        if from_training(e) {
            text.push_str(
                "; samples from training examples (the dataset was too small to hold any out)",
            );
        }
        lines.push(kv(t, "samples", text));
    }
    if !e.probes.is_empty() {
        let changed = e.probes_changed();
        lines.push(Line::from(vec![
            Span::styled(format!("{:<14}", "probes"), t.muted()),
            Span::styled(
                probes_text(e),
                if changed > 0 {
                    Style::new().fg(t.warning)
                } else {
                    t.base()
                },
            ),
        ]));
    }
    if let Some(a) = a {
        lines.push(kv(
            t,
            "quality",
            format!(
                "{}/5 · {}",
                a.quality_metrics.quality_score,
                brightrun_api::training::quality::explain(&a.quality_metrics, Some(e))
            ),
        ));
    }
    let mut how = vec![if e.decoding.do_sample {
        "sampled".to_string()
    } else {
        "greedy".to_string()
    }];
    if let Some(n) = e.decoding.max_new_tokens {
        how.push(format!("up to {} new tokens", format::thousands(n as u64)));
    }
    if let Some(sim) = &e.similarity {
        how.push(format!(
            "scored by {}",
            match sim.as_str() {
                "rouge_l_f1" => "ROUGE-L F1 against the reference",
                other => other,
            }
        ));
    }
    if let Some(secs) = e.seconds {
        how.push(format!(
            "took {}",
            format::duration_secs(secs.round() as i64)
        ));
    }
    lines.push(Line::from(vec![
        Span::styled(format!("{:<14}", "decoding"), t.muted()),
        Span::styled(how.join(", "), t.muted()),
    ]));
    if let Some(err) = &e.error {
        lines.push(Line::from(vec![
            Span::styled(format!("{:<14}", "error"), t.muted()),
            Span::styled(err.clone(), Style::new().fg(t.error)),
        ]));
    }
    let mut lines = wrap_all(lines, width);
    let wide = width >= SIDE_BY_SIDE;
    for (title, items, probes) in [
        (
            if from_training(e) {
                "Samples (from training examples)"
            } else {
                "Samples (held out from training)"
            },
            &e.samples,
            false,
        ),
        (
            "Probes (general prompts: did the training change them?)",
            &e.probes,
            true,
        ),
    ] {
        if items.is_empty() {
            continue;
        }
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            format!("{title} · {}", items.len()),
            t.header(),
        ));
        if wide {
            lines.extend(side_by_side(items, probes, width, t));
        } else {
            for (i, item) in items.iter().enumerate() {
                lines.extend(stacked(i + 1, item, probes, width, t));
            }
        }
    }
    lines
}

/// The mark before a probe: `≠` (warning colour) when the training changed its answer.
fn mark(item: &Answered, probe: bool, t: &Theme) -> Span<'static> {
    if probe && item.changed == Some(true) {
        Span::styled("≠", Style::new().fg(t.warning))
    } else {
        Span::raw(" ")
    }
}

/// What an item's header line says beside its number.
fn verdict(item: &Answered, probe: bool, t: &Theme) -> Vec<Span<'static>> {
    let mut out = Vec::new();
    if probe {
        match item.changed {
            Some(true) => out.push(Span::styled(
                "changed by the training",
                Style::new().fg(t.warning),
            )),
            Some(false) => out.push(Span::styled("unchanged", t.muted())),
            None => {}
        }
        match item.contains_reference {
            Some(true) => out.push(Span::styled(
                "adapter's answer has the reference",
                Style::new().fg(t.success),
            )),
            Some(false) if item.reference.is_some() => out.push(Span::styled(
                "adapter's answer lacks the reference",
                Style::new().fg(t.warning),
            )),
            _ => {}
        }
        out.push(Span::styled(
            if item.builtin == Some(true) {
                "built-in"
            } else {
                "yours"
            },
            t.muted(),
        ));
    } else {
        match (item.adapter_score, item.base_score) {
            (Some(a), Some(b)) if a > b => {
                out.push(Span::styled("adapter closer", Style::new().fg(t.success)))
            }
            (Some(a), Some(b)) if a < b => {
                out.push(Span::styled("base closer", Style::new().fg(t.warning)))
            }
            (Some(_), Some(_)) => out.push(Span::styled("tie", t.muted())),
            _ => {}
        }
    }
    if let Some(n) = item.context_turns.filter(|n| *n > 0) {
        out.push(Span::styled(
            format!("after {}", format::plural(n as u64, "earlier turn")),
            t.muted(),
        ));
    }
    let mut spans = Vec::new();
    for (i, s) in out.into_iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" · ", t.muted()));
        }
        spans.push(s);
    }
    spans
}

/// The style of a score: the better answer's in the success colour.
fn score_style(mine: Option<f64>, other: Option<f64>, t: &Theme) -> Style {
    match (mine, other) {
        (Some(m), Some(o)) if m > o => Style::new().fg(t.success),
        _ => t.muted(),
    }
}

/// One item as labelled rows, each wrapped under its text (80 columns and the like).
fn stacked(n: usize, item: &Answered, probe: bool, width: usize, t: &Theme) -> Vec<Line<'static>> {
    let mut head = vec![
        mark(item, probe, t),
        Span::styled(format!("{n:>2} "), t.header()),
    ];
    head.extend(verdict(item, probe, t));
    let mut rows = vec![Line::from(head)];
    // The key column: `  adapter 0.91 ` (16 columns), continuation lines start under the text.
    let row = |key: &str, sc: Option<(Option<f64>, Option<f64>)>, text: &str, style: Style| {
        let mut out = Vec::new();
        for (i, para) in paragraphs(text).into_iter().enumerate() {
            let sc = sc.filter(|(m, o)| m.is_some() || o.is_some());
            let key_span = match (i, sc) {
                (0, Some((mine, other))) => vec![
                    Span::styled(format!("    {key:<8}"), t.muted()),
                    Span::styled(format!("{:>4} ", score(mine)), score_style(mine, other, t)),
                ],
                (0, None) => vec![Span::styled(format!("    {key:<13}"), t.muted())],
                _ => vec![Span::raw(" ".repeat(17))],
            };
            let mut line_spans = key_span;
            line_spans.push(Span::styled(para, style));
            out.extend(hang(line_spans, 17, width));
        }
        out
    };
    rows.extend(row("prompt", None, &item.prompt, t.base()));
    if let Some(r) = &item.reference {
        rows.extend(row("reference", None, r, t.base()));
    }
    rows.extend(row(
        "base",
        Some((item.base_score, item.adapter_score)),
        &item.base,
        t.muted(),
    ));
    rows.extend(row(
        "adapter",
        Some((item.adapter_score, item.base_score)),
        &item.adapter,
        t.base(),
    ));
    rows
}

/// Wraps spans whose last one is the text to `width`, continuation lines indented by
/// `indent` columns.
fn hang(spans: Vec<Span<'static>>, indent: usize, width: usize) -> Vec<Line<'static>> {
    let mut spans = spans;
    let Some(text) = spans.pop() else {
        return Vec::new();
    };
    let room = width.saturating_sub(indent).max(8);
    let wrapped = format::wrap(&text.content, room, 0);
    let mut out = Vec::new();
    for (i, l) in wrapped.into_iter().enumerate() {
        let mut line = if i == 0 {
            std::mem::take(&mut spans)
        } else {
            vec![Span::raw(" ".repeat(indent))]
        };
        line.push(Span::styled(l, text.style));
        out.push(Line::from(line));
    }
    out
}

/// Text as its paragraphs (a model's answer may hold newlines); blank lines dropped.
fn paragraphs(s: &str) -> Vec<String> {
    let ps: Vec<String> = s
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect();
    if ps.is_empty() {
        vec![String::new()]
    } else {
        ps
    }
}

/// Text wrapped to a column of `w`, paragraph by paragraph.
fn column(s: &str, w: usize) -> Vec<String> {
    paragraphs(s)
        .iter()
        .flat_map(|p| format::wrap(p, w, 0))
        .collect()
}

/// `s` padded (or cut) to exactly `w` columns.
fn pad(s: &str, w: usize) -> String {
    let cut = format::truncate(s, w);
    let used = format::width(&cut);
    format!("{cut}{}", " ".repeat(w.saturating_sub(used)))
}

/// Items as side-by-side columns (prompt | reference | base | adapter) with a header row:
/// wide terminals use their width.
fn side_by_side(items: &[Answered], probe: bool, width: usize, t: &Theme) -> Vec<Line<'static>> {
    const LEAD: usize = 5; // `≠ 12 `
    // Three separators of three columns each (`│` is one column, three bytes).
    let avail = width.saturating_sub(LEAD + 9);
    let prompt_w = avail * 22 / 100;
    let ref_w = avail * 22 / 100;
    let base_w = (avail - prompt_w - ref_w) / 2;
    let adapter_w = avail - prompt_w - ref_w - base_w;
    let widths = [prompt_w, ref_w, base_w, adapter_w];
    let sep = || Span::styled(" │ ", t.muted());
    let mut out = Vec::new();
    let mut head = vec![Span::raw(" ".repeat(LEAD))];
    let any_scores = items
        .iter()
        .any(|i| i.base_score.is_some() || i.adapter_score.is_some());
    let names = if any_scores {
        ["prompt", "reference", "base (score)", "adapter (score)"]
    } else {
        ["prompt", "reference", "base", "adapter"]
    };
    for (i, (name, w)) in names.iter().zip(widths).enumerate() {
        if i > 0 {
            head.push(sep());
        }
        head.push(Span::styled(pad(name, w), t.muted()));
    }
    out.push(Line::from(head));
    for (n, item) in items.iter().enumerate() {
        let mut l = vec![
            mark(item, probe, t),
            Span::styled(format!("{:>3} ", n + 1), t.header()),
        ];
        l.extend(verdict(item, probe, t));
        out.push(Line::from(l));
        let has_scores = item.base_score.is_some() || item.adapter_score.is_some();
        let scored = |text: &str, sc: Option<f64>, w: usize| {
            if !has_scores {
                return column(text, w)
                    .into_iter()
                    .map(|l| (String::new(), l))
                    .collect::<Vec<_>>();
            }
            // The score first, the answer hanging under itself.
            let lines = column(text, w.saturating_sub(5).max(1));
            lines
                .into_iter()
                .enumerate()
                .map(|(i, l)| {
                    if i == 0 {
                        (format!("{:>4} ", score(sc)), l)
                    } else {
                        ("     ".to_string(), l)
                    }
                })
                .collect::<Vec<_>>()
        };
        let cols: [Vec<(String, String)>; 4] = [
            column(&item.prompt, prompt_w)
                .into_iter()
                .map(|l| (String::new(), l))
                .collect(),
            column(item.reference.as_deref().unwrap_or("–"), ref_w)
                .into_iter()
                .map(|l| (String::new(), l))
                .collect(),
            scored(&item.base, item.base_score, base_w),
            scored(&item.adapter, item.adapter_score, adapter_w),
        ];
        let styles = [
            (t.base(), t.muted()),
            (t.base(), t.muted()),
            (
                score_style(item.base_score, item.adapter_score, t),
                t.muted(),
            ),
            (
                score_style(item.adapter_score, item.base_score, t),
                t.base(),
            ),
        ];
        let rows = cols.iter().map(Vec::len).max().unwrap_or(0);
        for r in 0..rows {
            let mut l = vec![Span::raw(" ".repeat(LEAD))];
            for (c, col) in cols.iter().enumerate() {
                if c > 0 {
                    l.push(sep());
                }
                let (pre, text) = col.get(r).cloned().unwrap_or_default();
                let w = widths[c];
                let pre_w = format::width(&pre);
                if !pre.is_empty() {
                    l.push(Span::styled(pre, styles[c].0));
                }
                let style = if c < 2 { t.base() } else { styles[c].1 };
                l.push(Span::styled(pad(&text, w.saturating_sub(pre_w)), style));
            }
            out.push(Line::from(l));
        }
    }
    out
}
