//! The Datasets tab's Inspect view: one example of a dataset as a base model trains on it,
//! token by token (the trainer's own rendering and masking, through the engine's
//! `inspect_example`), and the dataset's exact counts with that model (`inspect_stats`).
//!
//! Trained tokens and masked ones differ in more than colour ([`Theme::token`]: bold and
//! underlined against dim), special tokens are bracketed `⟨…⟩`, a newline shows as `↵` and
//! breaks the line, and no control character from the data reaches the terminal. The cut at
//! max_seq_length is a full-width rule. Each request has its number: an answer to an earlier
//! one is dropped.

use super::Focus;
use crate::context::Shared;
use crate::effect::Effect;
use crate::format;
use crate::sanitize::one_line;
use crate::theme::Theme;
use crate::ui::{fit_line, kv, panel, wrap_all};
use brightrun_api::domain::{
    DatasetInspection, ExampleInspection, InspectedToken, InspectionWarning, TokenStats,
    TokenizerInfo,
};
use brightrun_api::ids::DatasetId;
use brightrun_api::{ApiError, InspectAt};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use std::sync::Arc;

/// Width from which the exact counts stand beside the example rather than under it.
const STATS_BESIDE: u16 = 120;
/// The width of the counts beside the example.
const STATS_WIDTH: u16 = 50;

// ---- pure logic: what the user types, how tokens are laid out -----------------------------

/// Where `/` goes: a line of the file (`42`, `line 42`, `l42`, `:42`), or an example by its
/// 0-based number as `datasets inspect --example` takes it (`#7`, `example 7`).
pub fn parse_goto(text: &str) -> Result<InspectAt, String> {
    let t = text.trim().to_ascii_lowercase();
    if t.is_empty() {
        return Err("type a line of the file (e.g. 42), or #N for example N".into());
    }
    let number = |s: &str, what: &str| -> Result<u64, String> {
        let s = s.trim().replace([',', '_'], "");
        if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!(
                "`{}` is not {what}: type a line of the file (e.g. 42), or #N for example N",
                one_line(text.trim())
            ));
        }
        s.parse::<u64>()
            .map_err(|_| format!("{s} is past any file's end"))
    };
    if let Some(rest) = t
        .strip_prefix('#')
        .or_else(|| t.strip_prefix("example"))
        .or_else(|| t.strip_prefix("ex"))
    {
        return number(rest, "an example number").map(InspectAt::Index);
    }
    let rest = t
        .strip_prefix("line")
        .or_else(|| t.strip_prefix('l'))
        .or_else(|| t.strip_prefix(':'))
        .unwrap_or(&t);
    match number(rest, "a line number")? {
        0 => Err("lines start at 1".into()),
        n => Ok(InspectAt::Line(n)),
    }
}

/// How a piece of an example is drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mark {
    /// Its label carries loss (never past the cut).
    pub trained: bool,
    /// BOS, EOS, end-of-turn, tool markers: shown inside `⟨…⟩`.
    pub special: bool,
}

/// One screen row of a rendered example: text in runs of one mark, or the cut.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Row {
    Text(Vec<(String, Mark)>),
    /// The cut at max_seq_length: what follows is not trained.
    Cut,
}

/// A token's text made safe for the terminal (as the CLI shows tokens).
pub fn visible(text: &str) -> String {
    brightrun_api::text::visible_token(text)
}

/// Lays an example's tokens out in rows of at most `width` columns: a newline is `↵` and
/// ends its row, a special token is `⟨text⟩` (kept on one logical line), the cut is a row of
/// its own, and a row too long breaks after a space where it can, else where it must.
pub fn token_rows(tokens: &[InspectedToken], cut: Option<usize>, width: usize) -> Vec<Row> {
    let width = width.max(1);
    let mut rows = Vec::new();
    let mut line: Vec<(char, Mark)> = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        if Some(i) == cut {
            if !line.is_empty() {
                wrap_into(&mut rows, std::mem::take(&mut line), width);
            }
            rows.push(Row::Cut);
        }
        let mark = Mark {
            trained: t.trained && cut.is_none_or(|c| i < c),
            special: t.special,
        };
        let text = visible(&t.text);
        if t.special {
            line.push(('⟨', mark));
            line.extend(
                text.chars()
                    .map(|c| (if c == '\n' { '↵' } else { c }, mark)),
            );
            line.push(('⟩', mark));
            continue;
        }
        for c in text.chars() {
            if c == '\n' {
                line.push(('↵', mark));
                wrap_into(&mut rows, std::mem::take(&mut line), width);
            } else {
                line.push((c, mark));
            }
        }
    }
    if !line.is_empty() {
        wrap_into(&mut rows, line, width);
    }
    // A cut past the last token (nothing follows it) is still said.
    if cut.is_some_and(|c| c >= tokens.len()) {
        rows.push(Row::Cut);
    }
    rows
}

/// Breaks one logical line into rows of `width` columns (see [`token_rows`]).
fn wrap_into(rows: &mut Vec<Row>, chars: Vec<(char, Mark)>, width: usize) {
    let mut start = 0;
    while start < chars.len() {
        let mut used = 0;
        let mut end = start;
        let mut after_space = None;
        while end < chars.len() {
            let w = format::char_width(chars[end].0);
            if used + w > width && end > start {
                break;
            }
            used += w;
            end += 1;
            if chars[end - 1].0 == ' ' {
                after_space = Some(end);
            }
        }
        if end < chars.len()
            && let Some(b) = after_space
        {
            end = b;
        }
        rows.push(Row::Text(runs(&chars[start..end])));
        start = end;
    }
}

/// Characters grouped into runs of one mark.
fn runs(chars: &[(char, Mark)]) -> Vec<(String, Mark)> {
    let mut out: Vec<(String, Mark)> = Vec::new();
    for &(c, m) in chars {
        match out.last_mut() {
            Some((s, last)) if *last == m => s.push(c),
            _ => out.push((c.to_string(), m)),
        }
    }
    out
}

/// A row as a styled line; the cut is a rule across `width` columns with its label.
pub fn row_line(row: &Row, width: usize, max_seq_length: u32, t: &Theme) -> Line<'static> {
    match row {
        Row::Text(runs) => Line::from(
            runs.iter()
                .map(|(s, m)| Span::styled(s.clone(), t.token(m.trained, m.special)))
                .collect::<Vec<_>>(),
        ),
        Row::Cut => {
            let style = Style::new().fg(t.error).add_modifier(Modifier::BOLD);
            let label = format!(
                " ✂ cut at max_seq_length {}: what follows is not trained ",
                format::thousands(u64::from(max_seq_length))
            );
            let rule = |n: usize| "─".repeat(n);
            let lead = 2.min(width);
            let rest = width.saturating_sub(lead + format::width(&label));
            fit_line(
                Line::styled(format!("{}{label}{}", rule(lead), rule(rest)), style),
                width,
            )
        }
    }
}

// ---- the view's state --------------------------------------------------------------------

/// An answer the view waits for, has, or could not get.
#[derive(Clone, Debug, Default)]
pub enum Load<T> {
    #[default]
    Idle,
    Loading {
        request: u64,
    },
    Ready(Arc<T>),
    Failed(Failure),
}

/// Why the engine could not answer, cleaned for the screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The engine's message (and the request field at fault, if one is).
    pub message: String,
    /// More, for people: the trainer's last lines, for example.
    pub details: Vec<String>,
}

/// Lines of an error's details shown at most.
const DETAIL_LINES: usize = 12;

impl Failure {
    pub fn of(e: &ApiError) -> Self {
        let field = e
            .field
            .as_deref()
            .map(|f| format!(" ({})", one_line(f)))
            .unwrap_or_default();
        let details = e
            .details
            .as_deref()
            .map(|d| {
                let d = crate::sanitize::clean(d);
                let lines: Vec<String> = d.lines().map(str::to_string).collect();
                lines[lines.len().saturating_sub(DETAIL_LINES)..].to_vec()
            })
            .unwrap_or_default();
        Failure {
            message: format!("{}{field}", one_line(&e.message)),
            details,
        }
    }

    /// `what`, the message under it in the error's colour, then the details, muted.
    pub(crate) fn lines(&self, what: &str, t: &Theme) -> Vec<Line<'static>> {
        let mut lines = vec![
            Line::styled(
                what.to_string(),
                Style::new().fg(t.error).add_modifier(Modifier::BOLD),
            ),
            Line::styled(format!("  {}", self.message), Style::new().fg(t.error)),
        ];
        for d in &self.details {
            lines.push(Line::styled(format!("    {d}"), t.muted()));
        }
        lines
    }
}

impl<T> Load<T> {
    pub fn waits_on(&self, request: u64) -> bool {
        matches!(self, Load::Loading { request: r } if *r == request)
    }

    pub fn ready(&self) -> Option<&Arc<T>> {
        match self {
            Load::Ready(x) => Some(x),
            _ => None,
        }
    }
}

/// The open Inspect view: which dataset, with which model, which example, the counts.
#[derive(Clone, Debug)]
pub struct InspectView {
    pub dataset: DatasetId,
    /// The dataset's name when the view opened (shown if it goes away meanwhile).
    pub name: String,
    pub model: String,
    /// Where the cut is marked (none: the engine's default).
    pub max_seq_length: Option<u32>,
    /// The example asked for last (its index once the answer came).
    pub at: InspectAt,
    pub example: Load<ExampleInspection>,
    /// Records in the dataset, once an answer said.
    pub examples: Option<u64>,
    pub stats_shown: bool,
    pub stats: Load<DatasetInspection>,
    pub scroll: u16,
    /// Rows of text on screen at the last layout (a page for PgUp/PgDn).
    pub page: u16,
    /// The focus the tab had when the view opened (back restores it).
    pub focus_before: Focus,
    /// The example's rows, laid out at the last layout's width.
    rows: Option<(usize, Arc<Vec<Row>>)>,
}

impl InspectView {
    pub fn new(
        dataset: DatasetId,
        name: String,
        model: String,
        max_seq_length: Option<u32>,
        focus_before: Focus,
    ) -> Self {
        InspectView {
            dataset,
            name,
            model,
            max_seq_length,
            at: InspectAt::First,
            example: Load::Idle,
            examples: None,
            stats_shown: false,
            stats: Load::Idle,
            scroll: 0,
            page: 10,
            focus_before,
            rows: None,
        }
    }

    /// Asks for the example at `at` with the view's model; what is shown waits for it.
    pub fn ask_example(&mut self, at: InspectAt, s: &mut Shared) -> Vec<Effect> {
        let request = s.request_id();
        self.at = at;
        self.example = Load::Loading { request };
        self.rows = None;
        self.scroll = 0;
        vec![Effect::InspectExample {
            request,
            dataset: self.dataset,
            model: self.model.clone(),
            at,
            max_seq_length: self.max_seq_length,
        }]
    }

    /// The exact counts with the view's model: those already known, else asked for.
    pub fn ask_stats(
        &mut self,
        known: Option<Arc<DatasetInspection>>,
        s: &mut Shared,
    ) -> Vec<Effect> {
        if let Some(k) = known {
            self.stats = Load::Ready(k);
            return Vec::new();
        }
        let request = s.request_id();
        self.stats = Load::Loading { request };
        vec![Effect::InspectStats {
            request,
            dataset: self.dataset,
            model: self.model.clone(),
            max_seq_length: self.max_seq_length,
        }]
    }

    /// The max_seq_length the view's answers are for: the one asked, else the one the
    /// example's answer says (the engine's default).
    pub fn effective_max_seq_length(&self) -> Option<u32> {
        self.max_seq_length.or_else(|| {
            self.example
                .ready()
                .map(|x| x.summary.max_seq_length)
                .filter(|m| *m > 0)
        })
    }

    /// Whether `counts` are this view's: its model, at its length.
    pub fn counts_match(&self, counts: &DatasetInspection) -> bool {
        counts.base_model == self.model
            && self
                .effective_max_seq_length()
                .is_some_and(|m| m == counts.stats.max_seq_length)
    }

    /// The example `delta` away from the one asked for last; `Err` says why there is none.
    pub fn step(&self, delta: i64) -> Result<InspectAt, &'static str> {
        let current = match (self.at, self.example.ready()) {
            (InspectAt::Index(i), _) => i,
            (_, Some(x)) => x.example.index,
            (InspectAt::First, None) => 0,
            // The example on a line not yet known: counted from the first.
            (InspectAt::Line(_), None) => 0,
        };
        let next = current as i64 + delta;
        if next < 0 {
            return Err("this is the first example");
        }
        if let Some(n) = self.examples
            && next as u64 >= n
        {
            return Err("this is the last example");
        }
        Ok(InspectAt::Index(next as u64))
    }

    /// The answer to [`Effect::InspectExample`]; false when it is not the one waited for.
    pub fn example_answer(
        &mut self,
        request: u64,
        result: Result<Box<ExampleInspection>, ApiError>,
    ) -> bool {
        if !self.example.waits_on(request) {
            return false;
        }
        self.rows = None;
        self.scroll = 0;
        self.example = match result {
            Ok(x) => {
                let x = clean_example(*x);
                self.at = InspectAt::Index(x.example.index);
                self.examples = Some(x.examples);
                Load::Ready(Arc::new(x))
            }
            Err(e) => Load::Failed(Failure::of(&e)),
        };
        true
    }

    /// The answer to [`Effect::InspectStats`] for the view (when it still waits for it).
    pub fn stats_answer(&mut self, request: u64, result: Result<Arc<DatasetInspection>, Failure>) {
        if !self.stats.waits_on(request) {
            return;
        }
        self.stats = match result {
            Ok(x) => Load::Ready(x),
            Err(e) => Load::Failed(e),
        };
    }

    /// Scrolls by a movement; false for other actions. The bottom is "far enough": layout
    /// clamps it.
    pub fn scroll_by(&mut self, action: &crate::action::Action) -> bool {
        use crate::action::Action;
        let page = self.page.max(1);
        match action {
            Action::Up => self.scroll = self.scroll.saturating_sub(1),
            Action::Down => self.scroll = self.scroll.saturating_add(1),
            Action::PageUp => self.scroll = self.scroll.saturating_sub(page),
            Action::PageDown => self.scroll = self.scroll.saturating_add(page),
            Action::Top => self.scroll = 0,
            Action::Bottom => self.scroll = u16::MAX / 2,
            _ => return false,
        }
        true
    }

    // ---- drawing ---------------------------------------------------------------------------

    /// The example's area and the counts' (when shown): beside it on wide screens, else
    /// under it, as high as they need up to half the height.
    fn areas(&self, area: Rect, s: &Shared) -> (Rect, Option<Rect>) {
        if !self.stats_shown {
            return (area, None);
        }
        if area.width >= STATS_BESIDE {
            let [a, b] = Layout::horizontal([Constraint::Min(40), Constraint::Length(STATS_WIDTH)])
                .areas(area);
            (a, Some(b))
        } else {
            let name = self.shown_name(s);
            let needed = wrap_all(
                stats_lines(self, &name, &s.theme),
                area.width.saturating_sub(2) as usize,
            )
            .len() as u16
                + 2;
            let h = needed.min(area.height / 2).max(3);
            let [a, b] = Layout::vertical([Constraint::Min(3), Constraint::Length(h)]).areas(area);
            (a, Some(b))
        }
    }

    /// The dataset's name as the records have it now (as it was, if it went away).
    fn shown_name(&self, s: &Shared) -> String {
        s.datasets
            .get(self.dataset)
            .map(|d| d.name.clone())
            .unwrap_or_else(|| self.name.clone())
    }

    /// Fits the view to `area`: lays the example out at its width (once per example and
    /// width) and keeps the scroll within the text.
    pub fn layout(&mut self, area: Rect, s: &Shared) {
        let (example_area, _) = self.areas(area, s);
        let inner = panel(&s.theme, "", true).inner(example_area);
        let width = inner.width as usize;
        if let Some(x) = self.example.ready()
            && self.rows.as_ref().is_none_or(|(w, _)| *w != width)
        {
            self.rows = Some((width, Arc::new(token_rows(&x.tokens, x.cut, width))));
        }
        self.page = inner.height.saturating_sub(1).max(1);
        let total = self.preamble(width, s).len() + self.rows_at(width).len();
        let max = (total.min(u16::MAX as usize) as u16).saturating_sub(inner.height);
        self.scroll = self.scroll.min(max);
    }

    /// The example's rows at `width` (from the layout's cache when it has them).
    fn rows_at(&self, width: usize) -> Arc<Vec<Row>> {
        match (&self.rows, self.example.ready()) {
            (Some((w, rows)), _) if *w == width => rows.clone(),
            (_, Some(x)) => Arc::new(token_rows(&x.tokens, x.cut, width)),
            _ => Arc::new(Vec::new()),
        }
    }

    /// What comes before the tokens (or stands instead of them): the warnings, the
    /// tokenizer, the legend; or what is being done; or what went wrong.
    fn preamble(&self, width: usize, s: &Shared) -> Vec<Line<'static>> {
        let t = &s.theme;
        let key = |name: &str| s.keymap.hint(crate::action::Tab::Datasets, name);
        let lines = match &self.example {
            Load::Idle => Vec::new(),
            Load::Loading { .. } => {
                let what = match self.at {
                    InspectAt::First => format!("rendering the first example of {}", self.name),
                    InspectAt::Index(i) => format!("rendering example {i}"),
                    InspectAt::Line(l) => format!("rendering the example on line {l}"),
                };
                vec![
                    Line::styled(
                        format!("{what} with {}…", self.model),
                        Style::new().fg(t.info),
                    ),
                    Line::styled(
                        "The trainer renders it on the engine's machine; the first look with a \
                         model loads its tokenizer, which takes a few seconds.",
                        t.muted(),
                    ),
                ]
            }
            Load::Failed(e) => {
                let mut lines = e.lines("could not render the example:", t);
                lines.push(Line::raw(""));
                lines.push(Line::styled(
                    format!(
                        "{} {} another example, {} a line of the file, {} another model, {} back",
                        key("inspect_next"),
                        key("inspect_prev"),
                        key("inspect_line"),
                        key("inspect_model"),
                        key("back")
                    ),
                    t.muted(),
                ));
                lines
            }
            Load::Ready(x) => {
                let mut lines = Vec::new();
                lines.extend(warning_lines(&x.warnings, t));
                lines.push(Line::styled(tokenizer_text(&x.tokenizer), t.muted()));
                lines.push(legend(t));
                lines.push(Line::raw(""));
                if x.tokens.is_empty() {
                    lines.push(Line::styled("(no tokens)", t.muted()));
                }
                lines
            }
        };
        wrap_all(lines, width)
    }

    pub fn draw(&self, frame: &mut Frame, area: Rect, s: &Shared) {
        let t = &s.theme;
        let (example_area, stats_area) = self.areas(area, s);
        let name = self.shown_name(s);
        let title_w = example_area.width.saturating_sub(4) as usize;
        let mut title = vec![
            Span::styled(" Inspect ", t.header()),
            Span::styled(name.clone(), t.base().add_modifier(Modifier::BOLD)),
        ];
        let model = match self.example.ready() {
            Some(x) => {
                title.push(Span::styled(
                    format!(
                        " · example {} of {} (line {})",
                        x.example.index,
                        format::thousands(x.examples),
                        x.example.line
                    ),
                    t.base(),
                ));
                x.base_model.clone()
            }
            None => self.model.clone(),
        };
        title.push(Span::styled(format!(" · {model} "), t.accent()));
        let mut block = panel(t, fit_line(Line::from(title), title_w), true);
        if let Some(x) = self.example.ready() {
            block = block.title_bottom(fit_line(summary_line(x, t), title_w));
        }
        let inner = block.inner(example_area);
        frame.render_widget(block, example_area);
        let width = inner.width as usize;
        let pre = self.preamble(width, s);
        let rows = self.rows_at(width);
        let max_seq_length = self
            .example
            .ready()
            .map(|x| x.summary.max_seq_length)
            .unwrap_or_default();
        let shown: Vec<Line<'static>> = (self.scroll as usize..)
            .take(inner.height as usize)
            .map_while(|i| {
                if i < pre.len() {
                    Some(pre[i].clone())
                } else {
                    rows.get(i - pre.len())
                        .map(|r| row_line(r, width, max_seq_length, t))
                }
            })
            .collect();
        frame.render_widget(Paragraph::new(shown), inner);
        if let Some(area) = stats_area {
            let lines = stats_lines(self, &name, t);
            let block = panel(
                t,
                Span::styled(
                    format!(
                        " Exact counts ({} hides) ",
                        s.keymap.hint(crate::action::Tab::Datasets, "inspect_stats")
                    ),
                    t.header(),
                ),
                false,
            );
            let w = block.inner(area).width as usize;
            frame.render_widget(Paragraph::new(wrap_all(lines, w)).block(block), area);
        }
    }
}

/// An answer's text cleaned on its way in: nothing from the trainer reaches the terminal.
fn clean_example(mut x: ExampleInspection) -> ExampleInspection {
    x.base_model = one_line(&x.base_model).into_owned();
    x.format = one_line(&x.format).into_owned();
    clean_tokenizer(&mut x.tokenizer);
    clean_warnings(&mut x.warnings);
    for t in &mut x.tokens {
        t.text = visible(&t.text);
    }
    x
}

/// [`clean_example`] for the exact counts.
pub fn clean_counts(mut x: DatasetInspection) -> DatasetInspection {
    x.base_model = one_line(&x.base_model).into_owned();
    x.format = one_line(&x.format).into_owned();
    clean_tokenizer(&mut x.tokenizer);
    clean_warnings(&mut x.warnings);
    x
}

fn clean_tokenizer(t: &mut TokenizerInfo) {
    t.hash = one_line(&t.hash).into_owned();
    for s in [&mut t.bos, &mut t.eos, &mut t.end_of_turn]
        .into_iter()
        .flatten()
    {
        *s = visible(s).replace('\n', "↵");
    }
}

fn clean_warnings(w: &mut [InspectionWarning]) {
    for w in w {
        w.code = one_line(&w.code).into_owned();
        w.message = one_line(&w.message).into_owned();
    }
}

/// `1,234 tokens · 456 trained (37%) · not truncated`, or what the cut loses.
fn summary_line(x: &ExampleInspection, t: &Theme) -> Line<'static> {
    let s = &x.summary;
    let mut spans = vec![
        Span::styled(
            format!(" {} · ", format::plural(s.tokens, "token")),
            t.base(),
        ),
        Span::styled(
            format!(
                "{} trained ({:.0}%)",
                format::thousands(s.trained_tokens),
                s.trained_share * 100.0
            ),
            t.token(true, false),
        ),
        Span::styled(" · ".to_string(), t.base()),
    ];
    if s.truncated {
        spans.push(Span::styled(
            format!(
                "truncated at {}: {} lost ",
                format::thousands(u64::from(s.max_seq_length)),
                format::plural(s.tokens_lost, "token")
            ),
            Style::new().fg(t.warning).add_modifier(Modifier::BOLD),
        ));
    } else {
        spans.push(Span::styled("not truncated ".to_string(), t.base()));
    }
    Line::from(spans)
}

/// Each warning: its message, then its code.
fn warning_lines(warnings: &[InspectionWarning], t: &Theme) -> Vec<Line<'static>> {
    warnings
        .iter()
        .map(|w| {
            Line::from(vec![
                Span::styled(
                    "⚠ ",
                    Style::new().fg(t.warning).add_modifier(Modifier::BOLD),
                ),
                Span::styled(w.message.clone(), Style::new().fg(t.warning)),
                Span::styled(format!(" ({})", w.code), t.muted()),
            ])
        })
        .collect()
}

/// What the tokenizer is: its chat template, how assistant turns are found, its specials.
fn tokenizer_text(k: &TokenizerInfo) -> String {
    let mut parts = vec![
        if k.chat_template {
            "chat template"
        } else {
            "no chat template"
        }
        .to_string(),
    ];
    if k.chat_template {
        parts.push(
            if k.generation_markers {
                "generation markers"
            } else {
                "no generation markers"
            }
            .to_string(),
        );
    }
    for (what, v) in [
        ("bos", &k.bos),
        ("eos", &k.eos),
        ("end of turn", &k.end_of_turn),
    ] {
        if let Some(v) = v {
            parts.push(format!("{what} {v}"));
        }
    }
    format!("tokenizer: {}", parts.join(" · "))
}

/// The styles, as the tokens wear them.
fn legend(t: &Theme) -> Line<'static> {
    Line::from(vec![
        Span::styled("trained", t.token(true, false)),
        Span::styled("  ", t.base()),
        Span::styled("masked", t.token(false, false)),
        Span::styled("  ", t.base()),
        Span::styled("⟨special⟩", t.token(true, true)),
        Span::styled(" ", t.base()),
        Span::styled("⟨masked special⟩", t.token(false, true)),
        Span::styled("  ↵ newline", t.muted()),
    ])
}

/// The counts panel: the counts with the view's model, or what is being done, or the error.
fn stats_lines(view: &InspectView, name: &str, t: &Theme) -> Vec<Line<'static>> {
    match &view.stats {
        Load::Idle => Vec::new(),
        Load::Loading { .. } => vec![
            Line::styled(
                format!("counting every example of {name} with {}…", view.model),
                Style::new().fg(t.info),
            ),
            Line::styled(
                "A big file takes minutes; the engine keeps the answer, and estimates use it.",
                t.muted(),
            ),
        ],
        Load::Failed(e) => e.lines("could not count:", t),
        Load::Ready(x) => {
            let mut lines = vec![
                kv(t, "model", x.base_model.clone()),
                kv(
                    t,
                    "max length",
                    format::thousands(u64::from(x.stats.max_seq_length)),
                ),
            ];
            lines.extend(token_stats_lines(&x.stats, t));
            lines.extend(warning_lines(&x.warnings, t));
            lines
        }
    }
}

/// Exact counts as `key value` lines (the view's panel and the dataset's detail).
pub fn token_stats_lines(st: &TokenStats, t: &Theme) -> Vec<Line<'static>> {
    let share = if st.tokens == 0 {
        0.0
    } else {
        st.trained_tokens as f64 * 100.0 / st.tokens as f64
    };
    let mut lines = vec![
        kv(
            t,
            "examples",
            if st.skipped > 0 {
                format!(
                    "{} ({} skipped)",
                    format::thousands(st.examples),
                    format::thousands(st.skipped)
                )
            } else {
                format::thousands(st.examples)
            },
        ),
        kv(t, "tokens", format::thousands(st.tokens)),
        kv(
            t,
            "trained",
            format!("{} ({share:.0}%)", format::thousands(st.trained_tokens)),
        ),
        kv(t, "longest", format::plural(st.longest, "token")),
    ];
    lines.push(Line::from(vec![
        Span::styled(format!("{:<14}", "over max len"), t.muted()),
        Span::styled(
            format!(
                "{}, {} lost",
                format::plural(st.over_max_seq_length, "example"),
                format::plural(st.tokens_lost, "token")
            ),
            if st.over_max_seq_length > 0 {
                Style::new().fg(t.warning)
            } else {
                t.base()
            },
        ),
    ]));
    lines.push(kv(
        t,
        "packing",
        format!(
            "{:.0}% of packed rows filled",
            st.packing_efficiency * 100.0
        ),
    ));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(text: &str, trained: bool, special: bool) -> InspectedToken {
        InspectedToken {
            id: 0,
            text: text.into(),
            trained,
            special,
        }
    }

    /// The rows as text: runs of trained text in `[…]`, the cut as `✂`.
    fn plain(rows: &[Row]) -> Vec<String> {
        rows.iter()
            .map(|r| match r {
                Row::Cut => "✂".to_string(),
                Row::Text(runs) => runs
                    .iter()
                    .map(|(s, m)| {
                        if m.trained {
                            format!("[{s}]")
                        } else {
                            s.clone()
                        }
                    })
                    .collect(),
            })
            .collect()
    }

    #[test]
    fn newlines_break_rows_and_specials_are_bracketed() {
        let tokens = [
            tok("<s>", false, true),
            tok("user: hi\n", false, false),
            tok("Hello", true, false),
            tok("</s>", true, true),
        ];
        let rows = token_rows(&tokens, None, 80);
        assert_eq!(plain(&rows), vec!["⟨<s>⟩user: hi↵", "[Hello][⟨</s>⟩]"]);
        // Two newlines give a row of its own; a newline at the very end leaves no empty row.
        let rows = token_rows(&[tok("a\n\nb\n", true, false)], None, 80);
        assert_eq!(plain(&rows), vec!["[a↵]", "[↵]", "[b↵]"]);
    }

    #[test]
    fn long_rows_break_after_a_space_else_where_they_must() {
        let tokens = [
            tok("The", true, false),
            tok(" quick", true, false),
            tok(" brown", false, false),
            tok(" fox", false, false),
        ];
        let rows = token_rows(&tokens, None, 10);
        assert_eq!(plain(&rows), vec!["[The quick] ", "brown fox"]);
        for r in &rows {
            if let Row::Text(runs) = r {
                let w: usize = runs.iter().map(|(s, _)| format::width(s)).sum();
                assert!(w <= 10, "{runs:?}");
            }
        }
        // No space to break at: cut at the width.
        let rows = token_rows(&[tok("abcdefghij", false, false)], None, 4);
        assert_eq!(plain(&rows), vec!["abcd", "efgh", "ij"]);
        // Wide characters count two columns.
        let rows = token_rows(&[tok("日本語です", false, false)], None, 5);
        assert_eq!(plain(&rows), vec!["日本", "語で", "す"]);
        // A width of nothing still makes progress.
        assert_eq!(token_rows(&[tok("ab", false, false)], None, 0).len(), 2);
    }

    #[test]
    fn the_cut_is_a_row_and_nothing_after_it_is_trained() {
        let tokens = [
            tok("Hello", true, false),
            tok(" world", true, false),
            tok(" again", true, false),
        ];
        let rows = token_rows(&tokens, Some(2), 80);
        assert_eq!(plain(&rows), vec!["[Hello world]", "✂", " again"]);
        // The rule spans the width with its label.
        let t = Theme::default();
        let line = row_line(&Row::Cut, 80, 2048, &t);
        assert_eq!(line.width(), 80);
        let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
        assert!(text.contains("cut at max_seq_length 2,048"), "{text}");
        assert!(row_line(&Row::Cut, 10, 2048, &t).width() <= 10);
        // A cut past the last token is still said.
        assert_eq!(
            plain(&token_rows(&tokens, Some(3), 80)).last().unwrap(),
            "✂"
        );
    }

    #[test]
    fn control_characters_never_reach_the_screen() {
        let tokens = [
            tok("\u{1b}[31mred\u{7}", false, false),
            tok("\ttab\r", true, false),
            tok("\u{202e}evil", false, false),
            tok("\u{1b}]52;c;aGk=\u{7}", false, true),
        ];
        let rows = token_rows(&tokens, None, 80);
        let text = plain(&rows).join("\n");
        assert_eq!(text, "·[31mred·[→tab·]·evil⟨·]52;c;aGk=·⟩");
        for c in text.chars() {
            assert!(!c.is_control() || c == '\n', "{c:?} in {text:?}");
        }
    }

    #[test]
    fn slash_takes_a_line_or_an_example() {
        assert_eq!(parse_goto("42"), Ok(InspectAt::Line(42)));
        assert_eq!(parse_goto("  line 1,204 "), Ok(InspectAt::Line(1204)));
        assert_eq!(parse_goto("L7"), Ok(InspectAt::Line(7)));
        assert_eq!(parse_goto(":7"), Ok(InspectAt::Line(7)));
        assert_eq!(parse_goto("#0"), Ok(InspectAt::Index(0)));
        assert_eq!(parse_goto("example 12"), Ok(InspectAt::Index(12)));
        assert_eq!(parse_goto("ex 3"), Ok(InspectAt::Index(3)));
        assert!(parse_goto("0").unwrap_err().contains("start at 1"));
        assert!(parse_goto("").is_err());
        assert!(parse_goto("#").is_err());
        assert!(parse_goto("-3").is_err());
        let e = parse_goto("abc").unwrap_err();
        assert!(e.contains("`abc` is not a line number"), "{e}");
        assert!(parse_goto("99999999999999999999999").is_err());
        // What was typed is cleaned before it is said back.
        assert!(!parse_goto("\u{1b}[2J").unwrap_err().contains('\u{1b}'));
    }

    #[test]
    fn next_and_previous_stop_at_the_ends() {
        let mut v = InspectView::new(
            crate::fixtures::dataset_id(1),
            "d".into(),
            "m".into(),
            None,
            Focus::List,
        );
        assert_eq!(v.step(1), Ok(InspectAt::Index(1)));
        assert!(v.step(-1).is_err());
        v.at = InspectAt::Index(4);
        v.examples = Some(5);
        assert_eq!(v.step(-1), Ok(InspectAt::Index(3)));
        assert_eq!(v.step(1), Err("this is the last example"));
    }
}
