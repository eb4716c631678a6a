//! The Models tab's Chat view: the playground (issue 24) in the dashboard. A conversation with
//! one model, typed into a text area and answered by its adapter, streamed token by token; on
//! request the base model answers the same conversation too, shown beside the adapter's reply
//! (side by side when the view is wide enough, stacked when it is not).
//!
//! A session is kept per model for as long as the dashboard runs: leaving the view (or the tab)
//! keeps the conversation, the draft and any reply still streaming. Each turn sends the whole
//! conversation (the user's turns and the adapter's replies), as `brightrun models chat` does; a
//! turn whose reply failed is left out of what later turns send. The base model answers the
//! conversation the adapter saw, so the two replies differ only by the adapter.
//!
//! Replies come back as [`Outcome::Chat`](crate::Outcome::Chat) events, which
//! [`ChatSession::on_event`] applies; stopping a reply drops its stream in the runtime, which
//! ends the generation on the engine's side. Model output is cleaned again before it is drawn.

use crate::action::Action;
use crate::effect::Effect;
use crate::format;
use crate::keymap::Keymap;
use crate::theme::Theme;
use crate::ui::{fit_line, wrap_hanging};
use brightrun_api::chat::{ChatEvent, ChatMessage, ChatRole};
use brightrun_api::ids::ArtifactId;
use brightrun_api::{ApiError, ErrorCode, Reason};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui_textarea::{TextArea, WrapMode};

/// Inner width from which the adapter's and the base model's replies stand side by side.
pub const SIDE_BY_SIDE: usize = 100;
/// The most lines the message box grows to before it scrolls.
pub const INPUT_LINES: usize = 6;
/// Lines of an error's details (the worker's last words) shown under it.
const DETAIL_LINES: usize = 8;

/// One model's conversation and the view's state over it.
#[derive(Clone, Debug)]
pub struct ChatSession {
    pub model: ArtifactId,
    pub turns: Vec<Turn>,
    /// Whether the base model answers each turn too, shown beside the adapter.
    pub beside: bool,
    /// The message being typed.
    pub input: TextArea<'static>,
    /// First line of the conversation on screen.
    pub scroll: u16,
    /// Whether the view sticks to the newest line (off once scrolled up, on again at the end).
    pub follow: bool,
    /// Lines the conversation's area showed last (a page).
    pub page: u16,
}

/// A user's message and the replies to it.
#[derive(Clone, Debug, PartialEq)]
pub struct Turn {
    pub user: String,
    pub adapter: Reply,
    /// The base model's reply, when it was asked for.
    pub base: Option<Reply>,
}

/// One reply, as it streams.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    /// The request whose events it follows (none until it is sent).
    pub request: Option<u64>,
    /// Its text as it came (cleaned when drawn).
    pub text: String,
    pub state: ReplyState,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ReplyState {
    /// Waiting to be sent: the base model's reply goes after the adapter's (a model's worker
    /// answers one request at a time).
    Queued,
    /// Sent; the worker has not taken it yet (the first chat with a model loads it).
    Waiting,
    /// Coming, on `device`.
    Streaming { device: String, load_seconds: f64 },
    Done {
        tokens: u64,
        seconds: f64,
        first_token_seconds: Option<f64>,
    },
    /// Stopped by the user; what came is kept.
    Stopped,
    /// The engine refused it or it ended early.
    Failed(ApiError),
}

impl ReplyState {
    pub fn in_progress(&self) -> bool {
        matches!(self, Self::Queued | Self::Waiting | Self::Streaming { .. })
    }
}

impl Reply {
    fn sent(request: u64) -> Self {
        Reply {
            request: Some(request),
            text: String::new(),
            state: ReplyState::Waiting,
        }
    }

    fn queued() -> Self {
        Reply {
            request: None,
            text: String::new(),
            state: ReplyState::Queued,
        }
    }

    /// Whether it belongs in the conversation later turns send: a complete reply, or the part
    /// of a stopped one that came.
    fn in_history(&self) -> bool {
        match self.state {
            ReplyState::Done { .. } => true,
            ReplyState::Stopped => !self.text.trim().is_empty(),
            _ => false,
        }
    }

    /// Ends it by the user's hand; the request to stop, if it was sent.
    fn stop(&mut self) -> Option<Effect> {
        if !self.state.in_progress() {
            return None;
        }
        self.state = ReplyState::Stopped;
        self.request.map(Effect::StopChat)
    }
}

fn new_input() -> TextArea<'static> {
    let mut a = TextArea::default();
    a.set_cursor_line_style(Style::default());
    a.set_cursor_style(Style::default().add_modifier(Modifier::REVERSED));
    a.set_wrap_mode(WrapMode::WordOrGlyph);
    a.set_placeholder_text("Type a message");
    a
}

/// Whether a key types into the message (or moves in it) rather than being looked up in the
/// keymap: letters, digits and signs (shifted or not), and the editing keys.
fn types(key: &KeyEvent) -> bool {
    let plain = !key
        .modifiers
        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
    match key.code {
        KeyCode::Char(_) => plain,
        KeyCode::Backspace
        | KeyCode::Delete
        | KeyCode::Left
        | KeyCode::Right
        | KeyCode::Up
        | KeyCode::Down
        | KeyCode::Home
        | KeyCode::End => true,
        _ => false,
    }
}

/// What a key does in the Chat view.
#[derive(Clone, Debug, PartialEq)]
pub enum KeyUse {
    /// One of the view's own actions (send, stop, …).
    Act(Action),
    /// Edits the message.
    Edit,
    /// A key of the keymap (back, page, next tab, …).
    Mapped(Action),
}

/// Sorts a key pressed in the Chat view: its own bindings first, then what types, then the
/// keymap; a key bound nowhere edits the message (ctrl-w deletes a word, ctrl-a goes home…).
pub fn key_use(keymap: &Keymap, tab: crate::action::Tab, key: &KeyEvent) -> KeyUse {
    if let Some(a) = keymap.lookup_chat(key) {
        return KeyUse::Act(a);
    }
    if types(key) {
        return KeyUse::Edit;
    }
    match keymap.lookup(tab, key) {
        Some(a) => KeyUse::Mapped(a),
        None => KeyUse::Edit,
    }
}

impl ChatSession {
    pub fn new(model: ArtifactId) -> Self {
        ChatSession {
            model,
            turns: Vec::new(),
            beside: false,
            input: new_input(),
            scroll: 0,
            follow: true,
            page: 10,
        }
    }

    /// Whether a reply is still coming (or waiting to be asked for).
    pub fn busy(&self) -> bool {
        self.turns.last().is_some_and(|t| {
            t.adapter.state.in_progress() || t.base.as_ref().is_some_and(|b| b.state.in_progress())
        })
    }

    /// Whether one of its replies follows `request` and is still coming.
    pub fn follows(&self, request: u64) -> bool {
        self.turns.iter().any(|t| {
            [Some(&t.adapter), t.base.as_ref()]
                .into_iter()
                .flatten()
                .any(|r| r.request == Some(request) && r.state.in_progress())
        })
    }

    /// The message typed so far.
    pub fn draft(&self) -> String {
        self.input.lines().join("\n")
    }

    /// Replaces the message typed (cursor at its end).
    pub fn set_draft(&mut self, text: &str) {
        let mut input = new_input();
        input.insert_str(text);
        self.input = input;
    }

    /// A key that edits the message; true when the text changed.
    pub fn edit(&mut self, key: KeyEvent) -> bool {
        self.input.input(key)
    }

    /// Pasted text into the message: cleaned of escapes, newlines kept.
    pub fn paste(&mut self, text: &str) -> bool {
        self.input
            .insert_str(crate::sanitize::clean(text).replace('\r', ""))
    }

    pub fn newline(&mut self) {
        self.input.insert_newline();
    }

    /// The conversation turn `upto` sends: the earlier turns that were answered (the user's
    /// message and the adapter's reply), then its own message.
    pub fn messages_for(&self, upto: usize) -> Vec<ChatMessage> {
        let mut out = Vec::new();
        for t in self.turns.iter().take(upto) {
            if t.adapter.in_history() {
                out.push(ChatMessage::new(ChatRole::User, t.user.clone()));
                out.push(ChatMessage::new(
                    ChatRole::Assistant,
                    t.adapter.text.clone(),
                ));
            }
        }
        if let Some(t) = self.turns.get(upto) {
            out.push(ChatMessage::new(ChatRole::User, t.user.clone()));
        }
        out
    }

    /// Sends the message typed: a new turn, answered by the adapter (and after it, when
    /// `beside` is on, by the base model). `Err` says why nothing was sent.
    pub fn send(&mut self, request: u64) -> Result<Vec<Effect>, SendRefused> {
        let text = self.draft();
        if text.trim().is_empty() {
            return Err(SendRefused::Empty);
        }
        if self.busy() {
            return Err(SendRefused::Busy);
        }
        self.turns.push(Turn {
            user: text.trim_end().to_string(),
            adapter: Reply::sent(request),
            base: self.beside.then(Reply::queued),
        });
        self.input = new_input();
        self.follow = true;
        let at = self.turns.len() - 1;
        Ok(vec![Effect::Chat {
            request,
            model: self.model,
            messages: self.messages_for(at),
            base: false,
        }])
    }

    /// Applies one event of the reply following `request`; returns what to send next (the
    /// base model's reply, once the adapter's has ended). Events of a reply no longer
    /// followed (stopped, cleared) are dropped.
    pub fn on_event(
        &mut self,
        request: u64,
        event: ChatEvent,
        next_request: &mut dyn FnMut() -> u64,
    ) -> Vec<Effect> {
        let Some(at) = self.turns.iter().position(|t| {
            t.adapter.request == Some(request)
                || t.base.as_ref().is_some_and(|b| b.request == Some(request))
        }) else {
            return Vec::new();
        };
        let turn = &mut self.turns[at];
        let is_adapter = turn.adapter.request == Some(request);
        let reply = if is_adapter {
            &mut turn.adapter
        } else {
            match turn.base.as_mut() {
                Some(b) => b,
                None => return Vec::new(),
            }
        };
        if !reply.state.in_progress() {
            return Vec::new();
        }
        match event {
            ChatEvent::Started {
                device,
                load_seconds,
                ..
            } => {
                reply.state = ReplyState::Streaming {
                    device: crate::sanitize::one_line(&device).into_owned(),
                    load_seconds,
                }
            }
            ChatEvent::Delta { text } => {
                if reply.state == ReplyState::Waiting {
                    reply.state = ReplyState::Streaming {
                        device: String::new(),
                        load_seconds: 0.0,
                    };
                }
                reply.text.push_str(&text);
            }
            ChatEvent::Done {
                tokens,
                seconds,
                first_token_seconds,
            } => {
                reply.state = ReplyState::Done {
                    tokens,
                    seconds,
                    first_token_seconds,
                }
            }
            ChatEvent::Error { error } => {
                let nothing_came = reply.text.trim().is_empty();
                reply.state = ReplyState::Failed(error);
                // The message goes back in the box, to send again, when nothing else is there.
                if is_adapter && nothing_came && self.input.is_empty() {
                    let user = self.turns[at].user.clone();
                    self.set_draft(&user);
                }
            }
        }
        self.next_base(at, next_request)
    }

    /// Asks the base model for turn `at` once its adapter reply has ended.
    fn next_base(&mut self, at: usize, next_request: &mut dyn FnMut() -> u64) -> Vec<Effect> {
        let messages = self.messages_for(at);
        let model = self.model;
        let turn = &mut self.turns[at];
        let Some(base) = turn.base.as_mut() else {
            return Vec::new();
        };
        if base.state != ReplyState::Queued || turn.adapter.state.in_progress() {
            return Vec::new();
        }
        let request = next_request();
        *base = Reply::sent(request);
        vec![Effect::Chat {
            request,
            model,
            messages,
            base: true,
        }]
    }

    /// Stops what is coming; what came is kept. Empty when nothing was coming.
    pub fn stop(&mut self) -> Vec<Effect> {
        let Some(turn) = self.turns.last_mut() else {
            return Vec::new();
        };
        let mut fx: Vec<Effect> = turn.adapter.stop().into_iter().collect();
        if let Some(base) = turn.base.as_mut() {
            if base.state == ReplyState::Queued {
                turn.base = None;
            } else {
                fx.extend(base.stop());
            }
        }
        fx
    }

    /// Turns the base model's answers on or off. On, the last turn is answered by the base
    /// too (after the adapter, if its reply is still coming); off, a base reply in progress
    /// stops.
    pub fn toggle_beside(&mut self, next_request: &mut dyn FnMut() -> u64) -> Vec<Effect> {
        self.beside = !self.beside;
        let Some(at) = self.turns.len().checked_sub(1) else {
            return Vec::new();
        };
        if self.beside {
            if self.turns[at].base.is_none() {
                self.turns[at].base = Some(Reply::queued());
            }
            self.next_base(at, next_request)
        } else {
            let turn = &mut self.turns[at];
            match turn.base.as_mut() {
                Some(b) if b.state == ReplyState::Queued => {
                    turn.base = None;
                    Vec::new()
                }
                Some(b) => b.stop().into_iter().collect(),
                None => Vec::new(),
            }
        }
    }

    /// Forgets the conversation (stopping what is coming); the draft stays.
    pub fn clear(&mut self) -> Vec<Effect> {
        let fx = self.stop();
        self.turns.clear();
        self.scroll = 0;
        self.follow = true;
        fx
    }

    /// Scrolls the conversation by `delta` lines (layout keeps it within the text).
    pub fn scroll_by(&mut self, delta: i32) {
        if delta < 0 {
            self.follow = false;
            self.scroll = self.scroll.saturating_sub(delta.unsigned_abs() as u16);
        } else {
            self.scroll = self.scroll.saturating_add(delta as u16);
        }
    }

    /// Keeps the scroll within `total` lines shown `height` at a time; following, at the end.
    pub fn fit_scroll(&mut self, total: usize, height: u16) {
        self.page = height.saturating_sub(1).max(1);
        let max = (total.min(u16::MAX as usize) as u16).saturating_sub(height);
        if self.follow || self.scroll >= max {
            self.scroll = max;
            self.follow = true;
        }
    }

    /// Rows the message box needs inside its border.
    pub fn input_rows(&self, width: u16) -> u16 {
        let w = width.max(1) as usize;
        let rows: usize = self
            .input
            .lines()
            .iter()
            .map(|l| format::width(l).max(1).div_ceil(w))
            .sum();
        rows.clamp(1, INPUT_LINES) as u16
    }
}

/// Why a message was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendRefused {
    Empty,
    Busy,
}

/// The keys the view's texts name (as the keymap has them, remapped or not).
pub struct Keys {
    pub send: String,
    pub newline: String,
    pub base: String,
    pub stop: String,
    pub clear: String,
    pub back: String,
    pub page_up: String,
    pub page_down: String,
}

impl Keys {
    pub fn new(keymap: &Keymap) -> Self {
        let k = |name| keymap.hint(crate::action::Tab::Models, name);
        Keys {
            send: k("chat_send"),
            newline: k("chat_newline"),
            base: k("chat_base"),
            stop: k("chat_stop"),
            clear: k("chat_clear"),
            back: k("back"),
            page_up: k("page_up"),
            page_down: k("page_down"),
        }
    }
}

/// What kind of failure an error is, by its code and reason (never its text): said after
/// `failed` on the reply's label, the engine's message below it.
pub fn failure_kind(e: &ApiError) -> &'static str {
    if e.reason == Some(Reason::WorkerFailed) {
        return "the model's chat worker";
    }
    match e.code {
        ErrorCode::NotFound => "no such model (deleted, or not this profile's)",
        ErrorCode::Invalid => "the engine refused the request",
        ErrorCode::Unavailable => "the engine could not answer",
        ErrorCode::Unauthorized => "not allowed",
        ErrorCode::RateLimited => "too many requests; try again in a moment",
        ErrorCode::Conflict | ErrorCode::Ambiguous | ErrorCode::Internal => "inside the engine",
    }
}

/// An error in one line: its kind, the field at fault, the engine's message (cleaned).
pub fn error_text(e: &ApiError) -> String {
    let field = e
        .field
        .as_deref()
        .map(|f| format!(" ({})", crate::sanitize::one_line(f)))
        .unwrap_or_default();
    format!(
        "{}{field}: {}",
        failure_kind(e),
        crate::sanitize::one_line(&e.message)
    )
}

fn secs(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2}s")
    } else {
        format::duration_secs(v.round() as i64)
    }
}

/// The state of a reply, after its label.
fn status(reply: &Reply) -> String {
    match &reply.state {
        ReplyState::Queued => "asked once the adapter's reply ends".into(),
        ReplyState::Waiting => "waiting for the model (the first reply loads it)…".into(),
        ReplyState::Streaming {
            device,
            load_seconds,
        } => {
            let mut s = if device.is_empty() {
                "answering…".to_string()
            } else {
                format!("answering on {device}…")
            };
            if *load_seconds >= 0.05 {
                s.push_str(&format!(" (loaded in {})", secs(*load_seconds)));
            }
            s
        }
        ReplyState::Done {
            tokens,
            seconds,
            first_token_seconds,
        } => {
            let mut s = format!("{} in {}", format::plural(*tokens, "token"), secs(*seconds));
            if let Some(f) = first_token_seconds {
                s.push_str(&format!(", first after {}", secs(*f)));
            }
            s
        }
        ReplyState::Stopped => "stopped".into(),
        ReplyState::Failed(e) => format!("failed: {}", failure_kind(e)),
    }
}

/// A label line: `adapter · 12 tokens in 0.40s`.
fn header(label: &str, style: Style, detail: String, width: usize, t: &Theme) -> Line<'static> {
    fit_line(
        Line::from(vec![
            Span::styled(label.to_string(), style.add_modifier(Modifier::BOLD)),
            Span::styled(format!(" · {detail}"), t.muted()),
        ]),
        width,
    )
}

/// Text as lines of `width` columns, indented by two; paragraphs kept, runs of blank lines
/// shown as one. Cleaned of escapes and controls first.
fn body(text: &str, style: Style, width: usize) -> Vec<Line<'static>> {
    let clean = crate::sanitize::clean(text);
    let mut out = Vec::new();
    let mut blank = false;
    for para in clean.split('\n') {
        if para.trim().is_empty() {
            if !blank && !out.is_empty() {
                out.push(Line::raw(""));
            }
            blank = true;
            continue;
        }
        blank = false;
        out.extend(wrap_hanging(
            Line::from(vec![Span::raw("  "), Span::styled(para.to_string(), style)]),
            width,
        ));
    }
    if blank && !out.is_empty() {
        out.pop();
    }
    out
}

/// A reply's lines: its label and state, its text (with a cursor while it comes), and what
/// went wrong.
fn reply_lines(
    label: &str,
    label_style: Style,
    reply: &Reply,
    width: usize,
    t: &Theme,
    keys: &Keys,
) -> Vec<Line<'static>> {
    let mut out = vec![header(label, label_style, status(reply), width, t)];
    let mut text = reply.text.clone();
    if matches!(reply.state, ReplyState::Streaming { .. }) {
        text.push('▌');
    }
    out.extend(body(&text, t.base(), width));
    if let ReplyState::Done { .. } = reply.state
        && reply.text.trim().is_empty()
    {
        out.push(Line::styled("  (an empty reply)", t.muted()));
    }
    if let ReplyState::Failed(e) = &reply.state {
        let err = Style::new().fg(t.error);
        let field = e
            .field
            .as_deref()
            .map(|f| format!("{}: ", crate::sanitize::one_line(f)))
            .unwrap_or_default();
        out.extend(wrap_hanging(
            Line::from(vec![
                Span::raw("  "),
                Span::styled(
                    format!("{field}{}", crate::sanitize::one_line(&e.message)),
                    err,
                ),
            ]),
            width,
        ));
        if let Some(d) = &e.details {
            for l in d
                .lines()
                .filter(|l| !l.trim().is_empty())
                .take(DETAIL_LINES)
            {
                out.push(fit_line(
                    Line::styled(format!("    {}", crate::sanitize::one_line(l)), t.muted()),
                    width,
                ));
            }
        }
        if e.code == ErrorCode::Invalid && e.field.as_deref() == Some("messages") {
            out.push(Line::styled(
                format!(
                    "  the conversation is too long for one request: {} clears it",
                    keys.clear
                ),
                t.muted(),
            ));
        }
    }
    out
}

fn you_style(t: &Theme) -> Style {
    Style::new().fg(t.accent)
}
fn adapter_style(t: &Theme) -> Style {
    Style::new().fg(t.success)
}
fn base_style(t: &Theme) -> Style {
    Style::new().fg(t.info)
}

/// `text` padded with spaces to `w` columns.
fn pad_line(mut line: Line<'static>, w: usize) -> Line<'static> {
    let used = line.width();
    if used < w {
        line.spans.push(Span::raw(" ".repeat(w - used)));
    }
    line
}

/// The conversation's lines for an area `width` columns wide.
pub fn lines(session: &ChatSession, width: usize, t: &Theme, keys: &Keys) -> Vec<Line<'static>> {
    let width = width.max(1);
    if session.turns.is_empty() {
        let text = format!(
            "Type a message below and press {}: the adapter answers, streamed as it comes. {} starts a new line in the message. {} also asks the base model, whose answer shows beside the adapter's. {} stops a reply, {} clears the conversation, {}/{} scroll it, {} goes back to the list (the conversation is kept).",
            keys.send,
            keys.newline,
            keys.base,
            keys.stop,
            keys.clear,
            keys.page_up,
            keys.page_down,
            keys.back
        );
        let mut out = wrap_hanging(Line::styled(text, t.muted()), width);
        out.push(Line::raw(""));
        out.extend(wrap_hanging(
            Line::styled(
                "Each message sends the whole conversation. Replies are greedy, up to the engine's default length.",
                t.muted(),
            ),
            width,
        ));
        return out;
    }
    let wide = width >= SIDE_BY_SIDE;
    let mut out = Vec::new();
    for (i, turn) in session.turns.iter().enumerate() {
        if i > 0 {
            out.push(Line::raw(""));
        }
        out.push(Line::styled(
            "you",
            you_style(t).add_modifier(Modifier::BOLD),
        ));
        out.extend(body(&turn.user, t.base(), width));
        let adapter = |w| reply_lines("adapter", adapter_style(t), &turn.adapter, w, t, keys);
        let base = |w| match &turn.base {
            Some(b) => reply_lines("base", base_style(t), b, w, t, keys),
            None => vec![header(
                "base",
                base_style(t),
                "not asked for this turn".into(),
                w,
                t,
            )],
        };
        if !session.beside {
            out.extend(adapter(width));
        } else if wide {
            let left = (width - 3) / 2;
            let right = width - 3 - left;
            let a = adapter(left);
            let b = base(right);
            for r in 0..a.len().max(b.len()) {
                let mut l = pad_line(a.get(r).cloned().unwrap_or_default(), left);
                l.spans.push(Span::styled(" │ ", t.muted()));
                l.spans.extend(b.get(r).cloned().unwrap_or_default().spans);
                out.push(l);
            }
        } else {
            out.extend(adapter(width));
            out.extend(base(width));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> ArtifactId {
        crate::fixtures::artifact_id(2)
    }

    fn typed(s: &mut ChatSession, text: &str) {
        s.set_draft(text);
    }

    fn counter(start: u64) -> impl FnMut() -> u64 {
        let mut n = start;
        move || {
            n += 1;
            n
        }
    }

    fn done(tokens: u64) -> ChatEvent {
        ChatEvent::Done {
            tokens,
            seconds: 0.4,
            first_token_seconds: Some(0.1),
        }
    }

    fn delta(s: &str) -> ChatEvent {
        ChatEvent::Delta { text: s.into() }
    }

    fn chat_request(fx: &[Effect]) -> (u64, Vec<ChatMessage>, bool) {
        match fx {
            [
                Effect::Chat {
                    request,
                    messages,
                    base,
                    model,
                },
            ] => {
                assert_eq!(*model, id());
                (*request, messages.clone(), *base)
            }
            other => panic!("one chat effect expected: {other:?}"),
        }
    }

    #[test]
    fn sending_streams_the_reply_and_keeps_the_history() {
        let mut s = ChatSession::new(id());
        let mut next = counter(10);
        assert_eq!(s.send(1), Err(SendRefused::Empty), "nothing typed");
        typed(&mut s, "Hello\nthere  ");
        let (req, messages, base) = chat_request(&s.send(1).unwrap());
        assert_eq!((req, base), (1, false));
        assert_eq!(
            messages,
            vec![ChatMessage::new(ChatRole::User, "Hello\nthere")]
        );
        assert!(s.input.is_empty(), "the box is emptied");
        assert!(s.busy());
        assert_eq!(s.turns[0].adapter.state, ReplyState::Waiting);
        // A second message waits for the reply.
        typed(&mut s, "next");
        assert_eq!(s.send(2), Err(SendRefused::Busy));
        assert_eq!(s.draft(), "next", "the draft is kept");

        let started = ChatEvent::Started {
            model: id().to_string(),
            base_model: "b".into(),
            device: "cpu".into(),
            load_seconds: 2.5,
            note: None,
        };
        assert!(s.on_event(1, started, &mut next).is_empty());
        assert!(matches!(
            s.turns[0].adapter.state,
            ReplyState::Streaming { ref device, .. } if device == "cpu"
        ));
        s.on_event(1, delta("Hi"), &mut next);
        s.on_event(1, delta(" you."), &mut next);
        assert_eq!(s.turns[0].adapter.text, "Hi you.");
        // Another request's events are not this reply's.
        s.on_event(99, delta("stray"), &mut next);
        assert_eq!(s.turns[0].adapter.text, "Hi you.");
        s.on_event(1, done(3), &mut next);
        assert!(matches!(
            s.turns[0].adapter.state,
            ReplyState::Done { tokens: 3, .. }
        ));
        assert!(!s.busy());
        // Late events of an ended reply change nothing.
        s.on_event(1, delta("late"), &mut next);
        assert_eq!(s.turns[0].adapter.text, "Hi you.");

        // The next turn carries the whole conversation.
        let (req, messages, _) = chat_request(&s.send(2).unwrap());
        assert_eq!(req, 2);
        assert_eq!(
            messages,
            vec![
                ChatMessage::new(ChatRole::User, "Hello\nthere"),
                ChatMessage::new(ChatRole::Assistant, "Hi you."),
                ChatMessage::new(ChatRole::User, "next"),
            ]
        );
    }

    #[test]
    fn an_error_is_kept_on_its_turn_and_left_out_of_the_next() {
        let mut s = ChatSession::new(id());
        let mut next = counter(10);
        typed(&mut s, "first");
        s.send(1).unwrap();
        let mut e = ApiError::unavailable("the chat worker ended mid-reply (exit status 1)");
        e.reason = Some(Reason::WorkerFailed);
        e.details = Some("Traceback …\nOSError: no such model".into());
        s.on_event(1, ChatEvent::Error { error: e.clone() }, &mut next);
        assert_eq!(s.turns[0].adapter.state, ReplyState::Failed(e.clone()));
        assert!(!s.busy(), "usable again");
        assert_eq!(s.draft(), "first", "the message is back in the box");
        assert!(error_text(&e).starts_with("the model's chat worker: the chat worker ended"));
        let (_, messages, _) = chat_request(&s.send(2).unwrap());
        assert_eq!(
            messages,
            vec![ChatMessage::new(ChatRole::User, "first")],
            "the failed turn is not sent again as history"
        );
        // Errors read by code and reason.
        let mut refused = ApiError::invalid("messages", "too many");
        refused.field = Some("messages".into());
        assert!(error_text(&refused).starts_with("the engine refused the request (messages): "));
        assert!(error_text(&ApiError::not_found("no model")).starts_with("no such model"));
    }

    #[test]
    fn stopping_keeps_what_came_and_drops_the_stream() {
        let mut s = ChatSession::new(id());
        let mut next = counter(10);
        assert!(s.stop().is_empty(), "nothing to stop");
        typed(&mut s, "tell me a story");
        s.send(1).unwrap();
        s.on_event(1, delta("Once upon"), &mut next);
        assert_eq!(s.stop(), vec![Effect::StopChat(1)]);
        assert_eq!(s.turns[0].adapter.state, ReplyState::Stopped);
        assert!(!s.busy());
        // What the engine sent before it saw the stop is dropped.
        s.on_event(1, delta(" a time"), &mut next);
        s.on_event(1, done(9), &mut next);
        assert_eq!(s.turns[0].adapter.text, "Once upon");
        assert_eq!(s.turns[0].adapter.state, ReplyState::Stopped);
        // The part that came is the reply in the history.
        typed(&mut s, "go on");
        let (_, messages, _) = chat_request(&s.send(2).unwrap());
        assert_eq!(
            messages[1],
            ChatMessage::new(ChatRole::Assistant, "Once upon")
        );
    }

    #[test]
    fn the_base_model_answers_the_same_conversation_after_the_adapter() {
        let mut s = ChatSession::new(id());
        let mut next = counter(10);
        typed(&mut s, "hi");
        s.send(1).unwrap();
        s.on_event(1, delta("Hello."), &mut next);
        // On while the adapter answers: the base waits its turn.
        assert!(s.toggle_beside(&mut next).is_empty());
        assert!(s.beside);
        assert_eq!(s.turns[0].base.as_ref().unwrap().state, ReplyState::Queued);
        let fx = s.on_event(1, done(2), &mut next);
        let (req, messages, base) = chat_request(&fx);
        assert_eq!((req, base), (11, true));
        assert_eq!(messages, vec![ChatMessage::new(ChatRole::User, "hi")]);
        s.on_event(11, delta("Greetings"), &mut next);
        s.on_event(11, done(1), &mut next);
        assert_eq!(s.turns[0].base.as_ref().unwrap().text, "Greetings");
        assert!(!s.busy());

        // Next turn: both answer; the base gets the adapter's conversation.
        typed(&mut s, "again");
        s.send(2).unwrap();
        let fx = s.on_event(2, done(0), &mut next);
        let (req, messages, _) = chat_request(&fx);
        assert_eq!(req, 12);
        assert_eq!(
            messages,
            vec![
                ChatMessage::new(ChatRole::User, "hi"),
                ChatMessage::new(ChatRole::Assistant, "Hello."),
                ChatMessage::new(ChatRole::User, "again"),
            ]
        );
        // Off: the base reply in progress stops.
        assert_eq!(s.toggle_beside(&mut next), vec![Effect::StopChat(12)]);
        assert!(!s.busy());

        // On again after a finished turn: the base is asked for it at once.
        typed(&mut s, "third");
        s.send(3).unwrap();
        s.on_event(3, done(1), &mut next);
        let (req, _, base) = chat_request(&s.toggle_beside(&mut next));
        assert_eq!((req, base), (13, true));
        s.on_event(13, done(1), &mut next);
        // A stop while the adapter answers leaves the queued base unasked.
        typed(&mut s, "fourth");
        s.send(4).unwrap();
        assert_eq!(s.stop(), vec![Effect::StopChat(4)]);
        assert!(s.turns[3].base.is_none());
        assert!(s.on_event(4, done(1), &mut next).is_empty());
    }

    #[test]
    fn clearing_stops_and_forgets_but_keeps_the_draft() {
        let mut s = ChatSession::new(id());
        typed(&mut s, "hi");
        s.send(1).unwrap();
        typed(&mut s, "draft");
        assert_eq!(s.clear(), vec![Effect::StopChat(1)]);
        assert!(s.turns.is_empty() && !s.busy());
        assert_eq!(s.draft(), "draft");
    }

    #[test]
    fn keys_type_unless_bound_in_the_view() {
        let km = Keymap::default();
        let tab = crate::action::Tab::Models;
        let k = |code, mods| key_use(&km, tab, &KeyEvent::new(code, mods));
        let none = KeyModifiers::NONE;
        assert_eq!(
            k(KeyCode::Enter, none),
            KeyUse::Act(Action::ChatSend),
            "enter sends"
        );
        assert_eq!(
            k(KeyCode::Enter, KeyModifiers::ALT),
            KeyUse::Act(Action::ChatNewline)
        );
        assert_eq!(
            k(KeyCode::Char('j'), KeyModifiers::CONTROL),
            KeyUse::Act(Action::ChatNewline)
        );
        assert_eq!(
            k(KeyCode::Char('c'), KeyModifiers::CONTROL),
            KeyUse::Act(Action::ChatStop)
        );
        // Letters type, even those the keymap binds elsewhere.
        for c in ['j', 'q', '?', ':', 'c', 'G'] {
            assert_eq!(k(KeyCode::Char(c), none), KeyUse::Edit, "{c}");
        }
        assert_eq!(k(KeyCode::Up, none), KeyUse::Edit);
        assert_eq!(k(KeyCode::Esc, none), KeyUse::Mapped(Action::Back));
        assert_eq!(k(KeyCode::PageUp, none), KeyUse::Mapped(Action::PageUp));
        assert_eq!(k(KeyCode::Tab, none), KeyUse::Mapped(Action::NextTab));
        // Bound nowhere: the text area's own editing keys.
        assert_eq!(k(KeyCode::Char('w'), KeyModifiers::CONTROL), KeyUse::Edit);
    }

    #[test]
    fn model_output_is_cleaned_when_drawn() {
        let mut s = ChatSession::new(id());
        typed(&mut s, "hi");
        s.send(1).unwrap();
        s.on_event(
            1,
            delta("ok\u{1b}]0;pwned\u{7}\u{1b}[2J done\u{202e}"),
            &mut counter(0),
        );
        let text: String = lines(&s, 60, &Theme::default(), &Keys::new(&Keymap::default()))
            .iter()
            .flat_map(|l| l.spans.iter().map(|s| s.content.to_string()))
            .collect();
        assert!(text.contains("ok done"), "{text}");
        assert!(!text.contains('\u{1b}') && !text.contains('\u{7}') && !text.contains('\u{202e}'));
    }
}
