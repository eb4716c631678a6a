//! The mouse: a click on a tab's title shows it, on a row selects it (on the selected row,
//! opens it), on a detail pane gives it the keys; the wheel scrolls what is under it.

use super::App;
use crate::action::{Action, Tab};
use crate::context::Cursor;
use crate::effect::Effect;
use crate::tabs::Focus;

impl App {
    pub(super) fn click(&mut self, column: u16, row: u16) -> Vec<Effect> {
        let pos = ratatui::layout::Position { x: column, y: row };
        if let Some((_, tab)) = self
            .hits
            .tabs
            .iter()
            .find(|(r, _)| r.contains(pos))
            .cloned()
        {
            return self.go_tab(tab);
        }
        if let Some((area, tab, offset)) = self.hits.list
            && area.contains(pos)
        {
            let i = offset + (row - area.y) as usize;
            let was = match tab {
                Tab::Datasets => self.dataset_list.selected,
                Tab::Jobs => self.job_list.selected,
                Tab::Models => self.model_list.selected,
                Tab::Notifications => self.notification_list.selected,
                _ => usize::MAX,
            };
            if i >= self.list_rows(tab).map_or(0, |r| r.len()) {
                return Vec::new();
            }
            self.set_focus(tab, Focus::List);
            self.set_cursor(tab, Cursor::To(i));
            if let Some(b) = self.component_mut(tab).0.browse() {
                b.scroll = 0;
            }
            // A click on the selected row opens it.
            if was == i {
                return self.handle_tab_action(Action::Open);
            }
            if tab == Tab::Jobs {
                return self.ensure_job_detail();
            }
            return Vec::new();
        }
        if let Some(area) = self.hits.detail
            && area.contains(pos)
        {
            self.set_focus(self.tab, Focus::Detail);
        }
        Vec::new()
    }

    pub(super) fn wheel(&mut self, column: u16, row: u16, delta: i32) -> Vec<Effect> {
        let pos = ratatui::layout::Position { x: column, y: row };
        let action = if delta < 0 { Action::Up } else { Action::Down };
        if let Some(area) = self.hits.detail
            && area.contains(pos)
        {
            let tab = self.tab;
            let prev = self.set_focus(tab, Focus::Detail);
            let fx = self.handle_tab_action(action.clone());
            let fx2 = self.handle_tab_action(action);
            self.set_focus(tab, prev);
            return fx.into_iter().chain(fx2).collect();
        }
        if let Some((area, tab, _)) = self.hits.list
            && area.contains(pos)
        {
            self.set_focus(tab, Focus::List);
            return self.handle_tab_action(action);
        }
        Vec::new()
    }

    /// Gives `tab` (if it has a list and a detail) this focus; returns the focus it had.
    pub(super) fn set_focus(&mut self, tab: Tab, focus: Focus) -> Focus {
        match self.component_mut(tab).0.browse() {
            Some(b) => std::mem::replace(&mut b.focus, focus),
            None => Focus::List,
        }
    }
}
