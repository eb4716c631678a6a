//! Notifications: newest first, unread highlighted.

use super::{draw_list, list_title, panel};
use crate::action::Tab;
use crate::app::App;
use crate::format;
use brightrun_engine::domain::*;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Span;
use ratatui::widgets::{Cell, Row};

impl App {
    pub(super) fn draw_notifications(&mut self, frame: &mut Frame, area: Rect) {
        let t = self.theme.clone();
        let mut title = list_title(
            &t,
            "Notifications",
            self.notification_list.len(),
            self.notifications.len(),
            &self.notification_list.filter,
        );
        title.spans.push(Span::styled(
            format!("· {} unread ", self.unread),
            Style::new().fg(t.unread),
        ));
        let block = panel(&t, title, true);
        let header: Vec<Span> = ["", "Priority", "Title", "Message", "Age"]
            .iter()
            .map(|h| Span::styled(h.to_string(), t.header()))
            .collect();
        let widths = [
            Constraint::Length(1),
            Constraint::Length(8),
            Constraint::Length(if area.width >= 120 { 34 } else { 24 }),
            Constraint::Min(10),
            Constraint::Length(4),
        ];
        let now = self.now;
        let notifications = &self.notifications;
        let (rows_area, offset) = draw_list(
            frame,
            area,
            block,
            &t,
            &mut self.notification_list,
            header,
            &widths,
            "No notifications.",
            |i| {
                let n = notifications.at(i);
                let pcolor = match n.priority {
                    Priority::Critical => t.error,
                    Priority::High => t.warning,
                    Priority::Medium => t.info,
                    Priority::Low => t.muted,
                };
                let base = if n.read {
                    t.muted()
                } else {
                    Style::new().fg(t.foreground).add_modifier(Modifier::BOLD)
                };
                let prio = match n.priority {
                    Priority::Critical => "critical",
                    Priority::High => "high",
                    Priority::Medium => "medium",
                    Priority::Low => "low",
                };
                Row::new(vec![
                    Cell::from(Span::styled(
                        if n.read { " " } else { "●" },
                        Style::new().fg(t.unread),
                    )),
                    Cell::from(Span::styled(prio, Style::new().fg(pcolor))),
                    Cell::from(Span::styled(n.title.clone(), base)),
                    Cell::from(Span::styled(
                        n.message.replace('\n', " "),
                        if n.read { t.muted() } else { t.base() },
                    )),
                    Cell::from(Span::styled(format::age(now, n.created_at), t.muted())),
                ])
            },
        );
        self.hits.list = Some((rows_area, Tab::Notifications, offset));
        self.hits.detail = None;
    }
}
