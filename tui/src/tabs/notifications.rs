//! The Notifications tab: newest first, unread highlighted; opening one goes where it links.

use super::{Browse, Component, Handled, Request, TabHits};
use crate::action::{Action, Tab};
use crate::context::Shared;
use crate::effect::Level;
use crate::format;
use crate::ui::{Col, draw_list, list_layout, list_title, panel};
use brightrun_api::domain::*;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

/// The Notifications tab's own state (a list without a detail pane).
#[derive(Clone, Debug, Default)]
pub struct NotificationsTab {
    pub browse: Browse,
}

impl Component for NotificationsTab {
    fn handle(&mut self, action: &Action, s: &mut Shared) -> Handled {
        if self.browse.move_list(Tab::Notifications, action, s) {
            return Handled::done();
        }
        let sel = s.selected_notification().cloned();
        let fx = match action {
            Action::Open | Action::Right => {
                let Some(n) = sel else {
                    return Handled::Consumed(s.nothing_selected());
                };
                let fx = s.mark_read_local(Some(n.id));
                match n.link {
                    Some(link) => s.requests.push(Request::Jump(link)),
                    None => s.notify_user("this notification links to nothing", Level::Info),
                }
                fx
            }
            Action::Back => {
                if !s.notification_list.filter.is_empty() {
                    s.set_filter(Tab::Notifications, String::new());
                }
                Vec::new()
            }
            Action::MarkRead => {
                let Some(n) = sel else {
                    return Handled::Consumed(s.nothing_selected());
                };
                s.mark_read_local(Some(n.id))
            }
            Action::MarkAllRead => s.mark_read_local(None),
            _ => return Handled::Ignored,
        };
        Handled::Consumed(fx)
    }

    fn browse(&mut self) -> Option<&mut Browse> {
        Some(&mut self.browse)
    }

    fn layout(&mut self, area: Rect, s: &mut Shared) -> TabHits {
        TabHits {
            list: Some(list_layout(&mut s.notification_list, area)),
            detail: None,
        }
    }

    fn draw(&self, frame: &mut Frame, area: Rect, s: &Shared) {
        let t = s.theme.clone();
        let mut title = list_title(
            &t,
            "Notifications",
            s.notification_list.len(),
            s.notifications.len(),
            &s.notification_list.filter,
        );
        title.spans.push(Span::styled(
            format!("· {} unread ", s.unread),
            Style::new().fg(t.unread),
        ));
        let block = panel(&t, title, true);
        let header: Vec<Span> = ["", "Priority", "Title", "Message", "Age"]
            .iter()
            .map(|h| Span::styled(h.to_string(), t.header()))
            .collect();
        // The title is as wide as the titles on screen; the message takes the rest.
        let widths = [
            Col::fixed(1),
            Col::fit(8, 8),
            Col::fit(10, (area.width / 2).max(24)),
            Col::fill(10),
            Col::fit(3, 4),
        ];
        let now = s.now;
        let notifications = &s.notifications;
        draw_list(
            frame,
            area,
            block,
            &t,
            &s.notification_list,
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
                vec![
                    Line::from(Span::styled(
                        if n.read { " " } else { "●" },
                        Style::new().fg(t.unread),
                    )),
                    Line::from(Span::styled(prio, Style::new().fg(pcolor))),
                    Line::from(Span::styled(n.title.clone(), base)),
                    Line::from(Span::styled(
                        n.message.replace('\n', " "),
                        if n.read { t.muted() } else { t.base() },
                    )),
                    Line::from(Span::styled(format::age(now, n.created_at), t.muted())),
                ]
            },
        );
    }

    fn keys(&self) -> &'static [(&'static str, &'static str)] {
        // The hints follow the focused pane.
        if self.browse.focus == super::Focus::Detail {
            return super::DETAIL_KEYS;
        }
        &[
            ("open", "go to"),
            ("mark_read", "read"),
            ("mark_all_read", "all read"),
        ]
    }
}
