//! The six tabs, each a [`Component`] that owns what only it uses (focus, detail scroll, its
//! form, its geometry) and draws itself from `&self`. What several places need (the engine's
//! records, the list views over them, the overlay, the status bar) stays in [`Shared`], which
//! the app lends to the tab it routes to.
//!
//! A tab never reaches into another tab: it asks the app with a [`Request`], which the app
//! carries out after the tab returns, so cross-tab moves (a notification opening a job, a
//! dataset sent to Configure) have one place that knows every tab.

pub mod chat;
pub mod configure;
pub mod configure_sweep;
pub mod costs;
pub mod datasets;
pub mod datasets_inspect;
pub mod jobs;
pub mod jobs_compare;
pub mod jobs_sweeps;
pub mod models;
pub mod notifications;

use crate::action::{Action, Tab};
use crate::context::Cursor;
use crate::context::Shared;
use crate::effect::Effect;
use crate::state::ListView;
use crate::theme::Theme;
use crate::ui::{list_and_detail, list_layout, panel, wrap_all};
use brightrun_api::domain::Link;
use brightrun_api::events::EngineEvent;
use brightrun_api::ids::DatasetId;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// Whether a tab used an action. An ignored one falls through to the app's global keys, so a
/// tab only has to know its own.
#[derive(Debug)]
pub enum Handled {
    Consumed(Vec<Effect>),
    Ignored,
}

impl Handled {
    /// Consumed with no effect to run.
    pub fn done() -> Self {
        Handled::Consumed(Vec::new())
    }

    /// The effects to run, whether or not the action was used.
    pub fn effects(self) -> Vec<Effect> {
        match self {
            Handled::Consumed(fx) => fx,
            Handled::Ignored => Vec::new(),
        }
    }
}

/// What a tab asks of the app because it touches other tabs.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// Show the record a link points at (on its own tab).
    Jump(Link),
    /// Fill the Configure form with this dataset and go there.
    Train(DatasetId),
    /// The base-model picker (Configure's) for the Inspect view of this dataset, with
    /// `current` chosen (none: the Configure form's base model).
    PickInspectModel {
        dataset: DatasetId,
        current: Option<String>,
    },
}

/// The clickable areas a tab's layout found, for the mouse.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TabHits {
    /// The rows of the list on screen and the list's offset.
    pub list: Option<(Rect, usize)>,
    pub detail: Option<Rect>,
}

/// One tab of the dashboard.
///
/// Drawing is split in two so that [`Component::draw`] can take `&self`: [`Component::layout`]
/// runs first on the same area and does everything that changes state (scroll offsets kept
/// in view, chart caches, mouse areas).
pub trait Component {
    /// An action while this tab is shown (after overlays and input lines had their turn).
    fn handle(&mut self, action: &Action, s: &mut Shared) -> Handled;

    /// What to load when the tab comes into view.
    fn shown(&mut self, _s: &mut Shared) -> Vec<Effect> {
        Vec::new()
    }

    /// The slow tick while the tab is shown.
    fn tick(&mut self, _s: &mut Shared) -> Vec<Effect> {
        Vec::new()
    }

    /// An engine event, after the app applied it to the shared records.
    fn on_event(&mut self, _ev: &EngineEvent, _s: &Shared) -> Vec<Effect> {
        Vec::new()
    }

    /// True while the tab takes raw keys (a field being typed into), bypassing the keymap.
    fn captures_input(&self) -> bool {
        false
    }

    /// True while the tab's hint bar is its own: letters type into a field that always has
    /// the keys, so `?`, `:` and `q` are not offered there.
    fn own_hints(&self) -> bool {
        false
    }

    /// The list-and-detail state, for tabs that have one (mouse clicks and the wheel set it).
    fn browse(&mut self) -> Option<&mut Browse> {
        None
    }

    /// Fits the tab's state to `area` before drawing; returns where the mouse can click.
    fn layout(&mut self, area: Rect, s: &mut Shared) -> TabHits;

    fn draw(&self, frame: &mut Frame, area: Rect, s: &Shared);

    /// The keymap actions to show in the hint bar, with their labels (`?` shows the rest).
    fn keys(&self) -> &'static [(&'static str, &'static str)];
}

/// The key hints while a detail pane has the keys: they scroll it and back out.
pub const DETAIL_KEYS: &[(&str, &str)] = &[
    ("down", "scroll"),
    ("page_down", "page"),
    ("back", "back to the list"),
];

/// Which part of a tab has the keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Focus {
    #[default]
    List,
    Detail,
}

/// What every list tab keeps besides its list view: which half has the keys and how far the
/// detail pane is scrolled. The navigation here is the same in every list, so it lives once.
#[derive(Clone, Debug, Default)]
pub struct Browse {
    pub focus: Focus,
    pub scroll: u16,
    /// The record the scroll belongs to: when the selection moves by any means (keys, a
    /// mouse click, a new record auto-selected), the detail starts at its top again.
    pub scrolled_key: Option<String>,
}

impl Browse {
    /// The scroll belongs to the selected record: another record starts at the top.
    pub fn follow_selection(&mut self, key: Option<String>) {
        if key != self.scrolled_key {
            self.scroll = 0;
            self.scrolled_key = key;
        }
    }

    /// Everything a plain list-and-detail view does with an action: scroll the detail when it
    /// has the focus, move in the list, open, back out, sort. True when the action was used.
    pub fn browse(
        &mut self,
        tab: Tab,
        has_selection: bool,
        action: &Action,
        s: &mut Shared,
    ) -> bool {
        self.follow_selection(s.selected_key_text(tab));
        (self.focus == Focus::Detail && scroll(&mut self.scroll, action))
            || self.move_list(tab, action, s)
            || self.list_nav(tab, has_selection, action, s)
    }

    /// Enter/→ opens the detail, Esc/← backs out of it (then clears the filter), sort keys
    /// sort: the same in every list view. Returns true when the action was one of those.
    pub fn list_nav(
        &mut self,
        tab: Tab,
        has_selection: bool,
        action: &Action,
        s: &mut Shared,
    ) -> bool {
        match action {
            Action::Open | Action::Right => {
                if has_selection {
                    self.focus = Focus::Detail;
                }
            }
            Action::Back | Action::Left => {
                if self.focus == Focus::Detail {
                    self.focus = Focus::List;
                } else if !s.list_filter(tab).is_empty() {
                    s.set_filter(tab, String::new());
                }
            }
            Action::Sort | Action::SortReverse => s.sort(tab, *action == Action::SortReverse),
            _ => return false,
        }
        true
    }

    /// Movement in `tab`'s list. Returns true when the action was a movement.
    pub fn move_list(&mut self, tab: Tab, action: &Action, s: &mut Shared) -> bool {
        let delta: isize = match action {
            Action::Up => -1,
            Action::Down => 1,
            Action::PageUp => -(s.list_page(tab) as isize),
            Action::PageDown => s.list_page(tab) as isize,
            Action::Top => isize::MIN / 2,
            Action::Bottom => isize::MAX / 2,
            _ => return false,
        };
        if !s.set_cursor(tab, Cursor::By(delta)) {
            return false;
        }
        self.scroll = 0;
        true
    }
}

/// Scrolls a detail pane by a movement action; false for other actions. The bottom is
/// "far enough": layout clamps it to the text.
pub fn scroll(s: &mut u16, action: &Action) -> bool {
    match action {
        Action::Up => *s = s.saturating_sub(1),
        Action::Down => *s = s.saturating_add(1),
        Action::PageUp => *s = s.saturating_sub(10),
        Action::PageDown => *s = s.saturating_add(10),
        Action::Top => *s = 0,
        Action::Bottom => *s = u16::MAX / 2,
        _ => return false,
    }
    true
}

/// What differs between the list-and-detail tabs (Datasets, Models): how the screen is split
/// and what the detail pane says around its text.
pub(crate) struct DetailPane {
    /// The list's share of the width on wide terminals, and of the height on narrow ones.
    pub wide_list_pct: u16,
    pub tall_list_pct: u16,
    /// Shown when nothing is selected.
    pub empty: &'static str,
    pub title: &'static str,
    pub focused_title: &'static str,
}

impl DetailPane {
    /// The list's area and the detail's.
    pub fn split(&self, area: Rect, browse: &Browse) -> (Rect, Rect) {
        list_and_detail(
            area,
            browse.focus == Focus::Detail,
            self.wide_list_pct,
            self.tall_list_pct,
        )
    }

    /// The layout pass: keeps the list's selection in view and the detail's scroll within
    /// `lines` (the selected record's detail, if one is selected).
    pub fn layout<K: Copy + PartialEq + std::fmt::Debug>(
        &self,
        area: Rect,
        browse: &mut Browse,
        view: &mut ListView<K>,
        lines: Option<Vec<Line<'static>>>,
    ) -> TabHits {
        browse.follow_selection(view.selected_key.map(|k| format!("{k:?}")));
        let (list_area, detail_area) = self.split(area, browse);
        let list = list_layout(view, list_area);
        if let Some(lines) = lines {
            browse.scroll = browse.scroll.min(max_scroll(lines, detail_area));
        }
        TabHits {
            list: Some(list),
            detail: Some(detail_area),
        }
    }

    /// Draws the detail: `lines` scrolled as far as layout allowed, or the `empty` text.
    pub fn draw(
        &self,
        frame: &mut Frame,
        area: Rect,
        t: &Theme,
        browse: &Browse,
        lines: Option<Vec<Line<'static>>>,
    ) {
        let focused = browse.focus == Focus::Detail;
        let Some(lines) = lines else {
            frame.render_widget(
                Paragraph::new(wrap_all(
                    vec![Line::raw(self.empty)],
                    area.width.saturating_sub(2) as usize,
                ))
                .style(t.muted())
                .block(panel(t, " Detail ", focused)),
                area,
            );
            return;
        };
        let title = if focused {
            self.focused_title
        } else {
            self.title
        };
        // Wrapped here, not by the paragraph: a long value continues under itself.
        let lines = wrap_all(lines, area.width.saturating_sub(2) as usize);
        frame.render_widget(
            Paragraph::new(lines)
                .scroll((browse.scroll, 0))
                .block(panel(t, Span::styled(title, t.header()), focused)),
            area,
        );
    }
}

/// How far a detail pane of `lines` can scroll in `area` (borders included), wrapped as
/// [`DetailPane::draw`] wraps them.
fn max_scroll(lines: Vec<Line<'static>>, area: Rect) -> u16 {
    let inner_h = area.height.saturating_sub(2);
    let inner_w = area.width.saturating_sub(2) as usize;
    let wrapped = wrap_all(lines, inner_w).len();
    (wrapped.min(u16::MAX as usize) as u16).saturating_sub(inner_h)
}

#[cfg(test)]
mod tests {
    use crate::action::Tab;
    use crate::app::App;
    use crate::fixtures;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use ratatui::layout::Rect;

    fn rendered(app: &App, w: u16, h: u16) -> String {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| app.render(f)).unwrap();
        t.backend().to_string()
    }

    /// Drawing reads only: once laid out, every tab draws the same screen from `&App` as
    /// often as asked, and the same screen as `App::draw`.
    #[test]
    fn render_after_layout_is_pure_and_matches_draw() {
        for tab in Tab::ALL {
            for (w, h) in [(80, 24), (200, 50), (20, 5)] {
                let mut app = App::new(fixtures::snapshot(), &Default::default());
                app.set_now(fixtures::now());
                app.go_tab(tab);
                app.layout(Rect::new(0, 0, w, h));
                let first = rendered(&app, w, h);
                assert_eq!(first, rendered(&app, w, h), "{tab:?} at {w}x{h}");
                let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
                t.draw(|f| app.draw(f)).unwrap();
                assert_eq!(first, t.backend().to_string(), "{tab:?} at {w}x{h}");
            }
        }
    }
}
