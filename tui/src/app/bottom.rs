//! The input line at the bottom: the `/` filter of the shown list and the `:` command line.

use super::App;
use super::command::{self, Command, complete, parse_command};
use crate::action::{Action, Period, Tab};
use crate::context::{Bottom, Overlay, files};
use crate::effect::*;
use crate::theme::Theme;
use crossterm::event::KeyCode;

impl App {
    /// A list's filter; on the Configure form, which hides no rows, `/` finds a field.
    fn filter_or_find(&mut self, tab: Tab, text: String) {
        if tab == Tab::Configure {
            self.configure.find_row(&text);
        } else {
            self.set_filter(tab, text);
        }
    }

    pub(super) fn handle_bottom(&mut self, action: Action) -> Vec<Effect> {
        let Some(bottom) = self.bottom.take() else {
            return Vec::new();
        };
        match bottom {
            Bottom::Filter { mut input, tab } => {
                match action {
                    Action::Input(k) => match k.code {
                        KeyCode::Esc => {
                            self.set_filter(tab, String::new());
                            return Vec::new();
                        }
                        KeyCode::Enter => return Vec::new(),
                        KeyCode::Down | KeyCode::Up => {
                            // Move in the filtered list without leaving the filter.
                            let a = if k.code == KeyCode::Down {
                                Action::Down
                            } else {
                                Action::Up
                            };
                            let (c, shared) = self.component_mut(tab);
                            if let Some(b) = c.browse() {
                                b.move_list(tab, &a, shared);
                            }
                        }
                        _ => {
                            if input.key(k) {
                                self.filter_or_find(tab, input.text().to_string());
                            }
                        }
                    },
                    Action::Paste(t) => {
                        input.paste(&t);
                        self.filter_or_find(tab, input.text().to_string());
                    }
                    _ => {}
                }
                self.bottom = Some(Bottom::Filter { input, tab });
                Vec::new()
            }
            Bottom::Command {
                mut input,
                completions,
                cycle,
                stem,
            } => {
                match action {
                    Action::Input(k) => match k.code {
                        KeyCode::Esc => return Vec::new(),
                        KeyCode::Enter => {
                            let line = input.text().to_string();
                            return self.run_command(&line);
                        }
                        KeyCode::Tab | KeyCode::BackTab => {
                            let back = k.code == KeyCode::BackTab;
                            let (stem, completions) = if cycle.is_some() {
                                (stem, completions)
                            } else {
                                let c = complete(input.text(), &self.shared);
                                (input.text().to_string(), c)
                            };
                            if completions.is_empty() {
                                self.bottom = Some(Bottom::Command {
                                    input,
                                    completions,
                                    cycle: None,
                                    stem,
                                });
                                return Vec::new();
                            }
                            let n = completions.len();
                            let next = match (cycle, back) {
                                (None, false) => 0,
                                (None, true) => n - 1,
                                (Some(i), false) => (i + 1) % n,
                                (Some(i), true) => (i + n - 1) % n,
                            };
                            let text = command::apply_completion(&stem, &completions[next]);
                            input.set(&text);
                            if n == 1 {
                                let c = complete(input.text(), &self.shared);
                                self.bottom = Some(Bottom::Command {
                                    input,
                                    completions: c,
                                    cycle: None,
                                    stem: String::new(),
                                });
                            } else {
                                self.bottom = Some(Bottom::Command {
                                    input,
                                    completions,
                                    cycle: Some(next),
                                    stem,
                                });
                            }
                            return Vec::new();
                        }
                        _ => {
                            if k.code == KeyCode::Backspace && input.text().is_empty() {
                                return Vec::new();
                            }
                            input.key(k);
                        }
                    },
                    Action::Paste(t) => {
                        input.paste(&t);
                    }
                    _ => {}
                }
                let c = complete(input.text(), &self.shared);
                self.bottom = Some(Bottom::Command {
                    input,
                    completions: c,
                    cycle: None,
                    stem: String::new(),
                });
                Vec::new()
            }
        }
    }

    pub(super) fn update_completions(&mut self) {
        if let Some(Bottom::Command { input, .. }) = &self.bottom {
            let c = complete(input.text(), &self.shared);
            if let Some(Bottom::Command {
                completions, cycle, ..
            }) = &mut self.bottom
            {
                *completions = c;
                *cycle = None;
            }
        }
    }

    fn run_command(&mut self, line: &str) -> Vec<Effect> {
        match parse_command(line) {
            Err(e) => {
                self.notify_user(e, Level::Error);
                Vec::new()
            }
            Ok(cmd) => self.execute(cmd),
        }
    }

    /// Runs a parsed `:` command.
    pub fn execute(&mut self, cmd: Command) -> Vec<Effect> {
        match cmd {
            Command::Quit => self.ask_quit(),
            Command::Tab(t, arg) => {
                let mut fx = self.go_tab(t);
                match (t, arg) {
                    (Tab::Jobs, Some(status)) => self.set_filter(Tab::Jobs, status),
                    (Tab::Costs, Some(p)) => {
                        if let Some(p) = Period::from_name(&p) {
                            fx.extend(self.set_period(p));
                        }
                    }
                    (_, Some(f)) => self.set_filter(t, f),
                    (Tab::Jobs, None) => {}
                    _ => {}
                }
                fx
            }
            Command::Cancel(q) => match self.resolve_job(&q) {
                Ok(id) => {
                    let j = self.jobs.get(id).cloned();
                    match j {
                        Some(j) => self.confirm_cancel(&j),
                        None => Vec::new(),
                    }
                }
                Err(e) => {
                    self.notify_user(e, Level::Error);
                    Vec::new()
                }
            },
            Command::Retry(q) => match self.resolve_job(&q) {
                Ok(id) => {
                    self.select_in(Tab::Jobs, |a| a.jobs.position(id));
                    self.tab = Tab::Jobs;
                    self.handle_tab_action(Action::RetryJob)
                }
                Err(e) => {
                    self.notify_user(e, Level::Error);
                    Vec::new()
                }
            },
            Command::Theme(name) => match Theme::builtin(&name) {
                Some(t) => {
                    self.notify_user(format!("theme {}", t.name), Level::Info);
                    self.set_theme(t);
                    Vec::new()
                }
                None => vec![Effect::LoadTheme(name)],
            },
            Command::Help => {
                self.overlay = Some(Overlay::Help { scroll: 0 });
                Vec::new()
            }
            Command::Freeze => self.handle(Action::Freeze),
            Command::ReadAll => self.mark_read_local(None),
            Command::Reload => self.handle(Action::Refresh),
            Command::Add(path) => match path {
                Some(p) => self.add_dataset(files::expand_home(&p)),
                None => {
                    self.tab = Tab::Datasets;
                    self.handle_tab_action(Action::AddDataset)
                }
            },
        }
    }
}
