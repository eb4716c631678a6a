//! The Costs tab: period, totals by type, a bar chart by day, the most expensive jobs, the
//! budget. It owns the costs it shows: they are loaded for one period at a time, only while
//! the tab is shown, and marked stale by the events that change them.

use super::{Component, Handled, TabHits, scroll};
use crate::action::{Action, Period, Tab};
use crate::context::Shared;
use crate::effect::{CostsView, Effect, Level};
use crate::format;
use crate::ui::panel;
use brightrun_api::ApiError;
use brightrun_api::domain::NotificationType;
use brightrun_api::events::EngineEvent;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Bar, BarChart, BarGroup, Gauge, Paragraph};

/// The Costs tab's state: the loaded view and whether it still matches the engine.
#[derive(Clone, Debug)]
pub struct CostsTab {
    pub view: Option<CostsView>,
    pub period: Period,
    /// Something changed costs since `view` was loaded.
    pub stale: bool,
    /// A load is in flight (ticks do not ask again).
    pub loading: bool,
    /// Scroll of the most-expensive-jobs list.
    pub scroll: u16,
}

impl Default for CostsTab {
    fn default() -> Self {
        CostsTab {
            view: None,
            period: Period::Month,
            stale: true,
            loading: false,
            scroll: 0,
        }
    }
}

impl CostsTab {
    /// Asks for the costs of the current period.
    pub fn load(&mut self) -> Effect {
        self.loading = true;
        Effect::LoadCosts(self.period)
    }

    pub fn set_period(&mut self, p: Period) -> Vec<Effect> {
        self.period = p;
        self.stale = true;
        vec![self.load()]
    }

    /// Costs that came with a snapshot.
    pub fn set_view(&mut self, c: CostsView) {
        self.view = Some(clean_costs(c));
        self.stale = false;
    }

    /// The answer to [`CostsTab::load`]; asks again when the period changed meanwhile.
    pub fn loaded(&mut self, result: Result<CostsView, ApiError>, s: &mut Shared) -> Vec<Effect> {
        self.loading = false;
        match result {
            Ok(c) => {
                if c.period == self.period {
                    self.set_view(c);
                } else {
                    // The user switched period meanwhile.
                    return vec![self.load()];
                }
            }
            Err(e) => {
                self.stale = false;
                s.notify_user(format!("costs: {e}"), Level::Error)
            }
        }
        Vec::new()
    }

    fn load_if_stale(&mut self) -> Vec<Effect> {
        if self.stale && !self.loading {
            vec![self.load()]
        } else {
            Vec::new()
        }
    }
}

/// What a row of "most expensive jobs" says beside the job's id: what the job trained (its
/// dataset and base model) on what hardware, and how it ended when not completed. The
/// engine's description of a cost ("job 1a2b3c4d (completed)") names the job by the id the
/// row already shows, so it is used only for a job no longer listed, without that id.
fn job_label(id: Option<brightrun_api::ids::JobId>, description: &str, s: &Shared) -> String {
    use brightrun_api::domain::JobStatus;
    if let Some(j) = id.and_then(|i| s.jobs.get(i)) {
        let model = j.hyperparameters.base_model.as_str();
        let model = model.rsplit('/').next().unwrap_or(model);
        let ended = match j.status {
            JobStatus::Completed => String::new(),
            other => format!(" ({})", other.as_str()),
        };
        return format!(
            "{} · {} · {}×{}{ended}",
            s.dataset_name(j.dataset_id),
            model,
            j.gpu_config.gpu_count,
            j.gpu_config.gpu_type
        );
    }
    let short = id.map(|i| i.short()).unwrap_or_default();
    let rest = description
        .trim()
        .strip_prefix(&format!("job {short}"))
        .unwrap_or(description.trim())
        .trim();
    if rest.is_empty() {
        "(job no longer listed)".into()
    } else {
        rest.to_string()
    }
}

fn clean_costs(mut c: CostsView) -> CostsView {
    for (_, label, _) in &mut c.by_job {
        crate::sanitize::clean_in_place(label);
    }
    c
}

impl Component for CostsTab {
    fn handle(&mut self, action: &Action, _s: &mut Shared) -> Handled {
        let new = match action {
            Action::NextPeriod | Action::Right => self.period.next(),
            Action::Left => self.period.prev(),
            Action::SetPeriod(p) => *p,
            Action::Up
            | Action::Down
            | Action::PageUp
            | Action::PageDown
            | Action::Top
            | Action::Bottom => {
                scroll(&mut self.scroll, action);
                return Handled::done();
            }
            _ => return Handled::Ignored,
        };
        Handled::Consumed(self.set_period(new))
    }

    fn shown(&mut self, _s: &mut Shared) -> Vec<Effect> {
        self.load_if_stale()
    }

    fn tick(&mut self, _s: &mut Shared) -> Vec<Effect> {
        self.load_if_stale()
    }

    fn on_event(&mut self, ev: &EngineEvent, s: &Shared) -> Vec<Effect> {
        match ev {
            EngineEvent::Job(j) if j.status.is_terminal() => self.stale = true,
            EngineEvent::Notification(n)
                if matches!(
                    n.kind,
                    NotificationType::BudgetWarning | NotificationType::BudgetExceeded
                ) =>
            {
                self.stale = true
            }
            EngineEvent::Cost(_) => {
                self.stale = true;
                if s.tab == Tab::Costs && !self.loading {
                    return vec![self.load()];
                }
            }
            _ => {}
        }
        Vec::new()
    }

    fn layout(&mut self, _area: Rect, _s: &mut Shared) -> TabHits {
        TabHits::default()
    }

    fn draw(&self, frame: &mut Frame, area: Rect, s: &Shared) {
        let t = s.theme.clone();
        let mut tabs: Vec<Span> = vec![Span::styled(" Costs ", t.header())];
        for p in Period::ALL {
            let label = format!(" {} ", p.name());
            tabs.push(if p == self.period {
                Span::styled(
                    label,
                    Style::new()
                        .fg(t.tab_active_fg)
                        .bg(t.tab_active_bg)
                        .add_modifier(Modifier::BOLD),
                )
            } else {
                Span::styled(label, t.muted())
            });
        }
        let Some(c) = self.view.clone() else {
            let msg = if self.loading {
                "loading costs…"
            } else {
                "no cost data yet"
            };
            frame.render_widget(
                Paragraph::new(msg)
                    .style(t.muted())
                    .block(panel(&t, Line::from(tabs), true)),
                area,
            );
            return;
        };
        if c.period == self.period && !c.label.is_empty() {
            tabs.push(Span::styled(format!(" {} ", c.label), t.muted()));
        }
        if self.loading {
            tabs.push(Span::styled(" updating… ", t.muted()));
        }
        let outer = panel(&t, Line::from(tabs), true);
        let inner = outer.inner(area);
        frame.render_widget(outer, area);
        let top_h = 6.min(inner.height);
        let jobs_h = if inner.height >= 30 {
            12
        } else {
            (inner.height.saturating_sub(top_h) / 3).max(3)
        };
        let [top, chart_area, jobs_area] = Layout::vertical([
            Constraint::Length(top_h),
            Constraint::Min(3),
            Constraint::Length(jobs_h),
        ])
        .areas(inner);
        let [totals_area, budget_area] = Layout::horizontal([
            Constraint::Length(36.min(top.width / 2).max(24)),
            Constraint::Min(10),
        ])
        .areas(top);

        // Totals by type.
        let mut lines = vec![Line::from(vec![
            Span::styled(format!("{:<16}", "total"), t.header()),
            Span::styled(format!("{:>12}", format::money(c.total)), t.header()),
        ])];
        for (kind, amount) in &c.by_type {
            lines.push(Line::from(vec![
                Span::styled(
                    format!("{:<16}", kind.as_str().replace('_', " ")),
                    t.muted(),
                ),
                Span::raw(format!("{:>12}", format::money(*amount))),
            ]));
        }
        frame.render_widget(
            Paragraph::new(lines).block(panel(&t, Span::styled(" By type ", t.header()), false)),
            totals_area,
        );

        // Budget.
        let budget_block = panel(&t, Span::styled(" Budget this month ", t.header()), false);
        match c.budget {
            Some(b) if b > 0.0 => {
                let ratio = c.month_spent / b;
                let color = if ratio >= 1.0 {
                    t.error
                } else if ratio >= 0.8 {
                    t.warning
                } else {
                    t.gauge
                };
                let inner_b = budget_block.inner(budget_area);
                frame.render_widget(budget_block, budget_area);
                let [g, note] = Layout::vertical([
                    Constraint::Length(1.min(inner_b.height)),
                    Constraint::Min(0),
                ])
                .areas(inner_b);
                frame.render_widget(
                    Gauge::default()
                        .ratio(ratio.clamp(0.0, 1.0))
                        .label(format!(
                            "{} of {} ({:.0}%)",
                            format::money(c.month_spent),
                            format::money(b),
                            ratio * 100.0
                        ))
                        .gauge_style(Style::new().fg(color).bg(t.status_bg))
                        .use_unicode(true),
                    g,
                );
                let left = b - c.month_spent;
                let text = if left >= 0.0 {
                    format!("{} left this month", format::money(left))
                } else {
                    format!("over budget by {}", format::money(-left))
                };
                frame.render_widget(Paragraph::new(text).style(Style::new().fg(color)), note);
            }
            _ => {
                frame.render_widget(
                    Paragraph::new(vec![
                        Line::raw(format!("spent {} this month", format::money(c.month_spent))),
                        Line::styled("no budget set: [budget] monthly_usd in config", t.muted()),
                    ])
                    .block(budget_block),
                    budget_area,
                );
            }
        }

        // Spend by day (grouped to fit the width).
        let chart_block = panel(
            &t,
            Span::styled(
                if self.period == Period::Year {
                    " Spend by month "
                } else {
                    " Spend by day "
                },
                t.header(),
            ),
            false,
        );
        let chart_inner = chart_block.inner(chart_area);
        let n = c.by_day.len().max(1);
        let avail = chart_inner.width.max(1) as usize;
        let group = n.div_ceil((avail / 2).max(1)).max(1);
        let grouped: Vec<(String, f64)> = c
            .by_day
            .chunks(group)
            .map(|ch| (ch[0].0.clone(), ch.iter().map(|x| x.1).sum()))
            .collect();
        let m = grouped.len().max(1);
        let bar_w = ((avail.saturating_sub(m)) / m).clamp(1, 9) as u16;
        let show_labels = bar_w >= 5;
        // A bar shows its amount only on a whole cell: a small amount's bar is drawn one cell
        // high at least, so it reads "$0.30" instead of a sliver (or a "0").
        let top = grouped.iter().map(|g| g.1).fold(0.0_f64, f64::max);
        let rows = chart_inner
            .height
            .saturating_sub(u16::from(show_labels))
            .max(1) as f64;
        let floor = top / rows;
        let bars: Vec<Bar> = grouped
            .iter()
            .map(|(label, v)| {
                let shown = if *v > 0.0 { v.max(floor) } else { 0.0 };
                let mut b = Bar::default()
                    .value((shown * 100.0).round().max(0.0) as u64)
                    .text_value(if show_labels && *v > 0.0 {
                        bar_amount(*v, bar_w as usize)
                    } else {
                        String::new()
                    })
                    .style(Style::new().fg(t.bar));
                if show_labels {
                    b = b.label(Line::from(format::truncate(label, bar_w as usize)));
                }
                b
            })
            .collect();
        if grouped.iter().all(|g| g.1 <= 0.0) {
            frame.render_widget(
                Paragraph::new("nothing spent in this period")
                    .style(t.muted())
                    .block(chart_block),
                chart_area,
            );
        } else {
            let mut title_note = String::new();
            if !c.by_day.is_empty() {
                title_note = format!(
                    "{}{}",
                    c.label,
                    if group > 1 {
                        format!(" ({group} per bar)")
                    } else {
                        String::new()
                    }
                );
            }
            frame.render_widget(
                BarChart::default()
                    .block(chart_block.title_bottom(
                        Line::styled(format!(" {title_note} "), t.muted()).right_aligned(),
                    ))
                    .data(BarGroup::default().bars(&bars))
                    .bar_width(bar_w)
                    .bar_gap(1)
                    .value_style(Style::new().fg(t.background).bg(t.bar)),
                chart_area,
            );
        }

        // Most expensive jobs.
        let scroll = self.scroll as usize;
        let rows = jobs_area.height.saturating_sub(2) as usize;
        let scroll = scroll.min(c.by_job.len().saturating_sub(rows));
        let w = jobs_area.width.saturating_sub(2) as usize;
        let label_w = w.saturating_sub(24);
        let lines: Vec<Line> = if c.by_job.is_empty() {
            vec![Line::styled("no job costs in this period", t.muted())]
        } else {
            c.by_job
                .iter()
                .skip(scroll)
                .take(rows)
                .map(|(id, label, amount)| {
                    let label = job_label(*id, label, s);
                    Line::from(vec![
                        Span::styled(
                            format!(
                                "{:<10}",
                                id.map(|i| i.short()).unwrap_or_else(|| "–".into())
                            ),
                            t.muted(),
                        ),
                        Span::raw({
                            let l = format::truncate(&label, label_w);
                            let pad = label_w.saturating_sub(format::width(&l));
                            format!("{l}{}", " ".repeat(pad))
                        }),
                        Span::styled(format!("{:>12}", format::money(*amount)), t.header()),
                    ])
                })
                .collect()
        };
        frame.render_widget(
            Paragraph::new(lines).block(panel(
                &t,
                Span::styled(" Most expensive jobs ", t.header()),
                false,
            )),
            jobs_area,
        );
    }

    fn keys(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("period_week", "week"),
            ("period_month", "month"),
            ("period_year", "year"),
        ]
    }
}

/// A bar's amount in the room it has: `$0.30`, else `0.30`, `0.3`, or whole dollars for
/// large amounts (never a `0` for thirty cents).
fn bar_amount(v: f64, width: usize) -> String {
    let candidates = if v > 0.0 && v < 0.005 {
        // Under a cent, as money() says it.
        vec![crate::format::money(v), "<.01".to_string()]
    } else if v >= 10.0 {
        vec![format!("${v:.2}"), format!("${v:.0}"), format!("{v:.0}")]
    } else {
        vec![
            format!("${v:.2}"),
            format!("{v:.2}"),
            format!("{v:.1}"),
            format!("{v:.0}"),
        ]
    };
    candidates
        .into_iter()
        .find(|s| s.chars().count() <= width && s.trim_start_matches('$') != "0")
        .unwrap_or_default()
}

#[cfg(test)]
mod bar_tests {
    use super::bar_amount;

    #[test]
    fn cents_survive_in_bar_labels() {
        assert_eq!(bar_amount(0.30, 5), "$0.30");
        assert_eq!(bar_amount(0.30, 4), "0.30");
        assert_eq!(bar_amount(0.30, 3), "0.3");
        assert_eq!(bar_amount(12.5, 9), "$12.50");
        assert_eq!(bar_amount(12.6, 5), "$13");
        assert_eq!(bar_amount(1234.0, 5), "$1234");
        assert_eq!(bar_amount(0.000_5, 9), "<$0.01");
        assert_eq!(bar_amount(0.000_5, 4), "<.01");
    }
}
