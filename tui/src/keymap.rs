//! The one keymap: key presses become [`Action`]s here and nowhere else. Defaults follow k9s and
//! lazygit (vim keys and arrows, `/`, `:`, `?`); `[tui.keys]` in config remaps any action by
//! name (`cancel = "ctrl-k"`, several keys separated by spaces).

use crate::action::{Action, Period, Tab};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::collections::{BTreeMap, HashMap};

/// A key with its modifiers, normalised (a shifted letter is just the capital letter).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

impl Key {
    pub fn new(code: KeyCode, mods: KeyModifiers) -> Self {
        let mut mods = mods & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        let code = match code {
            KeyCode::Char(c) => {
                mods.remove(KeyModifiers::SHIFT);
                if mods.contains(KeyModifiers::CONTROL) {
                    KeyCode::Char(c.to_ascii_lowercase())
                } else {
                    KeyCode::Char(c)
                }
            }
            KeyCode::BackTab => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            other => other,
        };
        Key { code, mods }
    }

    pub fn from_event(ev: &KeyEvent) -> Self {
        Key::new(ev.code, ev.modifiers)
    }

    /// Parses `q`, `G`, `ctrl-c`, `alt-x`, `shift-tab`, `enter`, `esc`, `pgdn`, `f5`, `space`, ….
    pub fn parse(s: &str) -> Result<Key, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty key".into());
        }
        let mut mods = KeyModifiers::NONE;
        let mut rest = s;
        loop {
            let lower = rest.to_ascii_lowercase();
            let (prefix_len, m) = if lower.starts_with("ctrl-") || lower.starts_with("ctrl+") {
                (5, KeyModifiers::CONTROL)
            } else if lower.starts_with("c-") && rest.len() > 2 {
                (2, KeyModifiers::CONTROL)
            } else if lower.starts_with("alt-") || lower.starts_with("alt+") {
                (4, KeyModifiers::ALT)
            } else if lower.starts_with("shift-") || lower.starts_with("shift+") {
                (6, KeyModifiers::SHIFT)
            } else {
                break;
            };
            mods |= m;
            rest = &rest[prefix_len..];
        }
        let lower = rest.to_ascii_lowercase();
        let code = match lower.as_str() {
            "enter" | "return" | "cr" => KeyCode::Enter,
            "esc" | "escape" => KeyCode::Esc,
            "tab" if mods.contains(KeyModifiers::SHIFT) => KeyCode::BackTab,
            "tab" => KeyCode::Tab,
            "backtab" => KeyCode::BackTab,
            "backspace" | "bs" => KeyCode::Backspace,
            "delete" | "del" => KeyCode::Delete,
            "insert" | "ins" => KeyCode::Insert,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "pgup" | "pageup" => KeyCode::PageUp,
            "pgdn" | "pagedown" | "pgdown" => KeyCode::PageDown,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "space" => KeyCode::Char(' '),
            "minus" => KeyCode::Char('-'),
            "plus" => KeyCode::Char('+'),
            f if f.len() >= 2 && f.starts_with('f') && f[1..].parse::<u8>().is_ok() => {
                let n: u8 = f[1..].parse().unwrap_or(1);
                if !(1..=24).contains(&n) {
                    return Err(format!("`{s}`: no such function key"));
                }
                KeyCode::F(n)
            }
            _ => {
                let mut chars = rest.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => {
                        if mods.contains(KeyModifiers::SHIFT) && c.is_ascii_alphabetic() {
                            KeyCode::Char(c.to_ascii_uppercase())
                        } else {
                            KeyCode::Char(c)
                        }
                    }
                    _ => {
                        return Err(format!(
                            "`{s}` is not a key (examples: q, G, ctrl-c, shift-tab, enter, pgdn, f5)"
                        ));
                    }
                }
            }
        };
        Ok(Key::new(code, mods))
    }

    /// For help screens and hint bars.
    pub fn display(&self) -> String {
        let mut s = String::new();
        if self.mods.contains(KeyModifiers::CONTROL) {
            s.push_str("ctrl-");
        }
        if self.mods.contains(KeyModifiers::ALT) {
            s.push_str("alt-");
        }
        if self.mods.contains(KeyModifiers::SHIFT) {
            s.push_str("shift-");
        }
        match self.code {
            KeyCode::Char(' ') => s.push_str("space"),
            KeyCode::Char(c) => s.push(c),
            KeyCode::Enter => s.push_str("enter"),
            KeyCode::Esc => s.push_str("esc"),
            KeyCode::Tab => s.push_str("tab"),
            KeyCode::BackTab => s.push_str("shift-tab"),
            KeyCode::Backspace => s.push_str("backspace"),
            KeyCode::Delete => s.push_str("del"),
            KeyCode::Insert => s.push_str("ins"),
            KeyCode::Home => s.push_str("home"),
            KeyCode::End => s.push_str("end"),
            KeyCode::PageUp => s.push_str("pgup"),
            KeyCode::PageDown => s.push_str("pgdn"),
            KeyCode::Up => s.push('↑'),
            KeyCode::Down => s.push('↓'),
            KeyCode::Left => s.push('←'),
            KeyCode::Right => s.push('→'),
            KeyCode::F(n) => s.push_str(&format!("f{n}")),
            other => s.push_str(&format!("{other:?}").to_lowercase()),
        }
        s
    }
}

/// Where a binding applies: everywhere, on one tab (which shadows the global one), in the
/// Models tab's Chat view, where letters are typed into the message and only these keys (and
/// the global keys that type nothing) act, or in the Datasets tab's Inspect view and the Jobs
/// tab's Compare view, whose keys shadow the tab's and the global ones there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Context {
    Global,
    Tab(Tab),
    Chat,
    Inspect,
    Compare,
}

/// One bindable action: its config name, where it applies, its default keys, its help text.
pub struct BindingSpec {
    pub name: &'static str,
    pub action: Action,
    pub contexts: &'static [Context],
    pub keys: &'static [&'static str],
    pub help: &'static str,
}

use Context::{Chat, Compare, Global, Inspect, Tab as T};

macro_rules! b {
    ($name:literal, $action:expr, [$($ctx:expr),*], [$($key:literal),*], $help:literal) => {
        BindingSpec { name: $name, action: $action, contexts: &[$($ctx),*], keys: &[$($key),*], help: $help }
    };
}

/// Every bindable action with its defaults, in the order help shows them.
pub fn specs() -> Vec<BindingSpec> {
    vec![
        b!("help", Action::Help, [Global], ["?"], "keys of this view"),
        b!("quit", Action::Quit, [Global], ["q", "ctrl-c"], "quit"),
        b!("next_tab", Action::NextTab, [Global], ["tab"], "next tab"),
        b!(
            "prev_tab",
            Action::PrevTab,
            [Global],
            ["shift-tab"],
            "previous tab"
        ),
        b!(
            "tab_datasets",
            Action::GoTab(Tab::Datasets),
            [Global],
            ["1"],
            "Datasets tab"
        ),
        b!(
            "tab_configure",
            Action::GoTab(Tab::Configure),
            [Global],
            ["2"],
            "Configure tab"
        ),
        b!(
            "tab_jobs",
            Action::GoTab(Tab::Jobs),
            [Global],
            ["3"],
            "Jobs tab"
        ),
        b!(
            "tab_models",
            Action::GoTab(Tab::Models),
            [Global],
            ["4"],
            "Models tab"
        ),
        b!(
            "tab_costs",
            Action::GoTab(Tab::Costs),
            [Global],
            ["5"],
            "Costs tab"
        ),
        b!(
            "tab_notifications",
            Action::GoTab(Tab::Notifications),
            [Global],
            ["6"],
            "Notifications tab"
        ),
        b!("filter", Action::Filter, [Global], ["/"], "filter the list"),
        b!(
            "command",
            Action::CommandLine,
            [Global],
            [":"],
            "command line"
        ),
        b!(
            "freeze",
            Action::Freeze,
            [Global],
            ["f"],
            "freeze / resume live updates"
        ),
        b!(
            "refresh",
            Action::Refresh,
            [Global],
            ["ctrl-r"],
            "reload everything"
        ),
        b!("up", Action::Up, [Global], ["k", "up"], "up"),
        b!("down", Action::Down, [Global], ["j", "down"], "down"),
        b!(
            "left",
            Action::Left,
            [Global],
            ["h", "left"],
            "left / previous value"
        ),
        b!(
            "right",
            Action::Right,
            [Global],
            ["l", "right"],
            "right / next value"
        ),
        b!(
            "page_up",
            Action::PageUp,
            [Global],
            ["pgup", "ctrl-u"],
            "page up"
        ),
        b!(
            "page_down",
            Action::PageDown,
            [Global],
            ["pgdn", "ctrl-d"],
            "page down"
        ),
        b!("top", Action::Top, [Global], ["g", "home"], "first"),
        b!(
            "bottom",
            Action::Bottom,
            [Global],
            ["G", "end"],
            "last (logs: follow)"
        ),
        b!("open", Action::Open, [Global], ["enter"], "open / edit"),
        b!("back", Action::Back, [Global], ["esc"], "back"),
        b!(
            "sort",
            Action::Sort,
            [T(Tab::Datasets), T(Tab::Jobs), T(Tab::Models)],
            ["s"],
            "sort by next column"
        ),
        b!(
            "sort_reverse",
            Action::SortReverse,
            [T(Tab::Datasets), T(Tab::Jobs), T(Tab::Models)],
            ["S"],
            "reverse sort"
        ),
        b!(
            "add",
            Action::AddDataset,
            [T(Tab::Datasets)],
            ["a"],
            "add a dataset (file browser)"
        ),
        b!(
            "rename",
            Action::Rename,
            [T(Tab::Datasets)],
            ["r"],
            "rename"
        ),
        b!(
            "describe",
            Action::Describe,
            [T(Tab::Datasets)],
            ["e"],
            "edit description"
        ),
        b!(
            "validate",
            Action::Validate,
            [T(Tab::Datasets)],
            ["v"],
            "validate again"
        ),
        b!(
            "clean",
            Action::Clean,
            [T(Tab::Datasets)],
            ["c"],
            "clean: a new dataset of the valid examples"
        ),
        b!(
            "delete",
            Action::Delete,
            [T(Tab::Datasets)],
            ["x", "delete"],
            "delete"
        ),
        b!(
            "train",
            Action::Train,
            [T(Tab::Datasets)],
            ["t"],
            "train on this"
        ),
        b!(
            "inspect",
            Action::Inspect,
            [T(Tab::Datasets)],
            ["i"],
            "inspect: an example token by token, as a base model trains on it"
        ),
        b!(
            "inspect_next",
            Action::InspectNext,
            [Inspect],
            ["n"],
            "next example"
        ),
        b!(
            "inspect_prev",
            Action::InspectPrev,
            [Inspect],
            ["p"],
            "previous example"
        ),
        b!(
            "inspect_line",
            Action::InspectLine,
            [Inspect],
            ["/"],
            "go to the example on a line of the file"
        ),
        b!(
            "inspect_model",
            Action::InspectModel,
            [Inspect],
            ["m"],
            "another base model"
        ),
        b!(
            "inspect_stats",
            Action::InspectStats,
            [Inspect],
            ["s"],
            "the dataset's exact counts with this model, shown or hidden"
        ),
        b!(
            "submit",
            Action::Submit,
            [T(Tab::Configure)],
            ["s", "ctrl-s"],
            "submit the job"
        ),
        b!(
            "cancel",
            Action::CancelJob,
            [T(Tab::Jobs)],
            ["c"],
            "cancel the job"
        ),
        b!(
            "retry",
            Action::RetryJob,
            [T(Tab::Jobs)],
            ["r"],
            "retry the job: from a checkpoint or from scratch"
        ),
        b!(
            "open_artifact",
            Action::OpenArtifact,
            [T(Tab::Jobs)],
            ["o"],
            "open its model"
        ),
        b!(
            "mark",
            Action::Mark,
            [T(Tab::Jobs)],
            ["space"],
            "mark / unmark the job for the Compare view (up to 6)"
        ),
        b!(
            "compare",
            Action::Compare,
            [T(Tab::Jobs)],
            ["C"],
            "compare the marked jobs: loss curves and what differs"
        ),
        b!(
            "compare_sweep",
            Action::CompareSweep,
            [T(Tab::Jobs)],
            ["W"],
            "compare a sweep's runs (its 6 best when more)"
        ),
        b!(
            "compare_axis",
            Action::CompareAxis,
            [Compare],
            ["x"],
            "x axis: step, tokens seen, elapsed time"
        ),
        b!(
            "compare_metric",
            Action::CompareMetric,
            [Compare],
            ["y"],
            "y axis: loss, reward margin, reward accuracy"
        ),
        b!(
            "download",
            Action::Download,
            [T(Tab::Models)],
            ["d"],
            "download"
        ),
        b!(
            "evaluation",
            Action::Evaluation,
            [T(Tab::Models)],
            ["e"],
            "evaluation: base model and adapter side by side"
        ),
        b!(
            "chat",
            Action::Chat,
            [T(Tab::Models)],
            ["c"],
            "chat with the model (playground)"
        ),
        b!(
            "export",
            Action::Export,
            [T(Tab::Models)],
            ["x"],
            "export the adapter: merged, GGUF (Ollama) or GGUF LoRA"
        ),
        b!(
            "chat_send",
            Action::ChatSend,
            [Chat],
            ["enter"],
            "send the message"
        ),
        b!(
            "chat_newline",
            Action::ChatNewline,
            [Chat],
            ["alt-enter", "ctrl-j"],
            "a new line in the message"
        ),
        b!(
            "chat_base",
            Action::ChatBase,
            [Chat],
            ["ctrl-t"],
            "the base model's answer beside the adapter's, on/off"
        ),
        b!(
            "chat_stop",
            Action::ChatStop,
            [Chat],
            ["ctrl-c"],
            "stop the reply in progress (what came is kept)"
        ),
        b!(
            "chat_clear",
            Action::ChatClear,
            [Chat],
            ["ctrl-l"],
            "clear the conversation"
        ),
        b!(
            "chat_help",
            Action::Help,
            [Chat],
            ["f1"],
            "keys of this view"
        ),
        b!(
            "period",
            Action::NextPeriod,
            [T(Tab::Costs)],
            ["p"],
            "next period"
        ),
        b!(
            "period_week",
            Action::SetPeriod(Period::Week),
            [T(Tab::Costs)],
            ["w"],
            "this week"
        ),
        b!(
            "period_month",
            Action::SetPeriod(Period::Month),
            [T(Tab::Costs)],
            ["m"],
            "this month"
        ),
        b!(
            "period_year",
            Action::SetPeriod(Period::Year),
            [T(Tab::Costs)],
            ["y"],
            "this year"
        ),
        b!(
            "mark_read",
            Action::MarkRead,
            [T(Tab::Notifications)],
            ["m"],
            "mark read"
        ),
        b!(
            "mark_all_read",
            Action::MarkAllRead,
            [T(Tab::Notifications)],
            ["M"],
            "mark all read"
        ),
    ]
}

/// A resolved binding, for help.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelpLine {
    pub keys: String,
    pub help: &'static str,
    pub name: &'static str,
}

/// Key → action, per context.
#[derive(Clone, Debug)]
pub struct Keymap {
    map: HashMap<(Context, Key), Action>,
    /// (context, action name, help, keys) in spec order, for help and hint bars.
    listing: Vec<(Context, &'static str, &'static str, Vec<Key>)>,
}

impl Default for Keymap {
    fn default() -> Self {
        Keymap::new(&BTreeMap::new()).0
    }
}

impl Keymap {
    /// Builds the keymap from the defaults and `[tui.keys]` overrides. Problems (an unknown
    /// action, an unparsable key) are returned as messages; the rest of the map still works.
    pub fn new(overrides: &BTreeMap<String, String>) -> (Keymap, Vec<String>) {
        let specs = specs();
        let mut problems = Vec::new();
        for name in overrides.keys() {
            if !specs.iter().any(|s| s.name == name.as_str()) {
                problems.push(format!(
                    "[tui.keys] `{name}` is not an action; known: {}",
                    specs.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
                ));
            }
        }
        let mut listing = Vec::new();
        for spec in &specs {
            let keys: Vec<Key> = match overrides.get(spec.name) {
                Some(text) => {
                    let mut keys = Vec::new();
                    for part in text.split_whitespace() {
                        match Key::parse(part) {
                            Ok(k) => keys.push(k),
                            Err(e) => problems.push(format!("[tui.keys] {}: {e}", spec.name)),
                        }
                    }
                    if keys.is_empty() {
                        spec.keys
                            .iter()
                            .filter_map(|k| Key::parse(k).ok())
                            .collect()
                    } else {
                        keys
                    }
                }
                None => spec
                    .keys
                    .iter()
                    .map(|k| Key::parse(k).expect("default keys parse"))
                    .collect(),
            };
            for ctx in spec.contexts {
                listing.push((*ctx, spec.name, spec.help, keys.clone()));
            }
        }
        // Overridden bindings take their keys from any default that held them in a context.
        let mut map = HashMap::new();
        let overridden: Vec<&str> = overrides.keys().map(String::as_str).collect();
        for pass in [false, true] {
            for spec in &specs {
                if overridden.contains(&spec.name) != pass {
                    continue;
                }
                let (_, _, _, keys) = listing
                    .iter()
                    .find(|(_, n, _, _)| *n == spec.name)
                    .expect("every spec is listed");
                for ctx in spec.contexts {
                    for key in keys {
                        map.insert((*ctx, *key), spec.action.clone());
                    }
                }
            }
        }
        // Drop listed keys that an override took over, so help tells the truth.
        for (ctx, name, _, keys) in listing.iter_mut() {
            let spec = specs.iter().find(|s| s.name == *name).expect("listed");
            keys.retain(|k| map.get(&(*ctx, *k)) == Some(&spec.action));
        }
        (Keymap { map, listing }, problems)
    }

    /// The action for a key on a tab: the tab's own binding first, then the global one.
    pub fn lookup(&self, tab: Tab, key: &KeyEvent) -> Option<Action> {
        let k = Key::from_event(key);
        self.map
            .get(&(Context::Tab(tab), k))
            .or_else(|| self.map.get(&(Context::Global, k)))
            .cloned()
    }

    /// The action for a key in the Chat view, from its own bindings only (`None` for the
    /// rest: typed into the message, or looked up as usual).
    pub fn lookup_chat(&self, key: &KeyEvent) -> Option<Action> {
        self.map
            .get(&(Context::Chat, Key::from_event(key)))
            .cloned()
    }

    /// The action for a key in the Inspect view, from its own bindings only (`None` for the
    /// rest: looked up as usual).
    pub fn lookup_inspect(&self, key: &KeyEvent) -> Option<Action> {
        self.map
            .get(&(Context::Inspect, Key::from_event(key)))
            .cloned()
    }

    /// The action for a key in the Compare view, from its own bindings only (`None` for the
    /// rest: looked up as usual).
    pub fn lookup_compare(&self, key: &KeyEvent) -> Option<Action> {
        self.map
            .get(&(Context::Compare, Key::from_event(key)))
            .cloned()
    }

    /// The keys bound to an action name in a context (the tab's, the global one, or the Chat,
    /// Inspect and Compare views': their names are their own).
    pub fn keys_for(&self, tab: Tab, name: &str) -> Vec<Key> {
        self.listing
            .iter()
            .filter(|(c, n, _, _)| {
                *n == name
                    && (*c == Context::Tab(tab)
                        || *c == Context::Global
                        || *c == Context::Chat
                        || *c == Context::Inspect
                        || *c == Context::Compare)
            })
            .flat_map(|(_, _, _, k)| k.clone())
            .collect()
    }

    /// The first key of an action, for hint bars.
    pub fn hint(&self, tab: Tab, name: &str) -> String {
        self.keys_for(tab, name)
            .first()
            .map(Key::display)
            .unwrap_or_else(|| "?".into())
    }

    /// The bindings of one context, for help.
    pub fn help_context(&self, context: Context) -> Vec<HelpLine> {
        self.listing
            .iter()
            .filter(|(c, _, _, k)| *c == context && !k.is_empty())
            .map(|(_, name, help, keys)| HelpLine {
                keys: keys.iter().map(Key::display).collect::<Vec<_>>().join(" "),
                help,
                name,
            })
            .collect()
    }

    /// The bindings of a tab (its own first), then the global ones.
    pub fn help(&self, tab: Tab) -> (Vec<HelpLine>, Vec<HelpLine>) {
        let line =
            |(_, name, help, keys): &(Context, &'static str, &'static str, Vec<Key>)| HelpLine {
                keys: keys.iter().map(Key::display).collect::<Vec<_>>().join(" "),
                help,
                name,
            };
        let own = self
            .listing
            .iter()
            .filter(|(c, _, _, k)| *c == Context::Tab(tab) && !k.is_empty())
            .map(line)
            .collect();
        let global = self
            .listing
            .iter()
            .filter(|(c, _, _, k)| *c == Context::Global && !k.is_empty())
            .map(line)
            .collect();
        (own, global)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }

    #[test]
    fn parses_keys() {
        assert_eq!(
            Key::parse("ctrl-c").unwrap(),
            Key::new(KeyCode::Char('c'), KeyModifiers::CONTROL)
        );
        assert_eq!(
            Key::parse("G").unwrap(),
            Key::new(KeyCode::Char('G'), KeyModifiers::NONE)
        );
        assert_eq!(Key::parse("shift-g").unwrap().code, KeyCode::Char('G'));
        assert_eq!(Key::parse("shift-tab").unwrap().code, KeyCode::BackTab);
        assert_eq!(Key::parse("f5").unwrap().code, KeyCode::F(5));
        assert!(Key::parse("nokey").is_err());
        assert_eq!(Key::parse("ctrl-k").unwrap().display(), "ctrl-k");
    }

    #[test]
    fn tab_bindings_shadow_global_ones() {
        let km = Keymap::default();
        let s = ev(KeyCode::Char('s'), KeyModifiers::NONE);
        assert_eq!(km.lookup(Tab::Datasets, &s), Some(Action::Sort));
        assert_eq!(km.lookup(Tab::Configure, &s), Some(Action::Submit));
        assert_eq!(km.lookup(Tab::Costs, &s), None);
        let r = ev(KeyCode::Char('r'), KeyModifiers::NONE);
        assert_eq!(km.lookup(Tab::Jobs, &r), Some(Action::RetryJob));
        assert_eq!(km.lookup(Tab::Datasets, &r), Some(Action::Rename));
        // Shift arrives with capitals from real terminals.
        let g = ev(KeyCode::Char('G'), KeyModifiers::SHIFT);
        assert_eq!(km.lookup(Tab::Jobs, &g), Some(Action::Bottom));
        let bt = ev(KeyCode::BackTab, KeyModifiers::SHIFT);
        assert_eq!(km.lookup(Tab::Jobs, &bt), Some(Action::PrevTab));
    }

    #[test]
    fn the_inspect_views_keys_are_its_own() {
        let km = Keymap::default();
        let key = |c| ev(KeyCode::Char(c), KeyModifiers::NONE);
        assert_eq!(km.lookup(Tab::Datasets, &key('i')), Some(Action::Inspect));
        // `i` is free on the Datasets tab and everywhere else.
        for tab in Tab::ALL {
            if tab != Tab::Datasets {
                assert_eq!(km.lookup(tab, &key('i')), None, "{tab:?}");
            }
        }
        // In the view, its keys shadow the tab's (`s` sorts the list) and the global `/`.
        assert_eq!(km.lookup_inspect(&key('s')), Some(Action::InspectStats));
        assert_eq!(km.lookup_inspect(&key('/')), Some(Action::InspectLine));
        assert_eq!(km.lookup_inspect(&key('n')), Some(Action::InspectNext));
        assert_eq!(km.lookup_inspect(&key('p')), Some(Action::InspectPrev));
        assert_eq!(km.lookup_inspect(&key('m')), Some(Action::InspectModel));
        assert_eq!(km.lookup_inspect(&key('j')), None);
        assert_eq!(km.hint(Tab::Datasets, "inspect_stats"), "s");
        // The view's keys remap like any other.
        let mut o = BTreeMap::new();
        o.insert("inspect_next".to_string(), "ctrl-n".to_string());
        let (km, problems) = Keymap::new(&o);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(km.lookup_inspect(&key('n')), None);
        assert_eq!(
            km.lookup_inspect(&ev(KeyCode::Char('n'), KeyModifiers::CONTROL)),
            Some(Action::InspectNext)
        );
    }

    #[test]
    fn marking_and_comparing_have_free_keys_on_the_jobs_tab() {
        let km = Keymap::default();
        let space = ev(KeyCode::Char(' '), KeyModifiers::NONE);
        let shift_c = ev(KeyCode::Char('C'), KeyModifiers::SHIFT);
        assert_eq!(km.lookup(Tab::Jobs, &space), Some(Action::Mark));
        assert_eq!(km.lookup(Tab::Jobs, &shift_c), Some(Action::Compare));
        // `c` still cancels; space and `C` mean nothing elsewhere.
        let c = ev(KeyCode::Char('c'), KeyModifiers::NONE);
        assert_eq!(km.lookup(Tab::Jobs, &c), Some(Action::CancelJob));
        for tab in Tab::ALL {
            if tab != Tab::Jobs {
                assert_eq!(km.lookup(tab, &space), None, "{tab:?}");
                assert_eq!(km.lookup(tab, &shift_c), None, "{tab:?}");
            }
        }
        // No two of the Jobs tab's actions share a key, and none hides a global one.
        let mut seen: HashMap<Key, &str> = HashMap::new();
        for (ctx, name, _, keys) in &km.listing {
            if *ctx != Context::Tab(Tab::Jobs) {
                continue;
            }
            for k in keys {
                assert!(seen.insert(*k, name).is_none(), "{name} shares {k:?}");
                assert!(
                    !km.map.contains_key(&(Context::Global, *k)),
                    "{name} hides a global key"
                );
            }
        }
        // The view's own key, and its hint.
        let x = ev(KeyCode::Char('x'), KeyModifiers::NONE);
        assert_eq!(km.lookup_compare(&x), Some(Action::CompareAxis));
        assert_eq!(km.lookup(Tab::Jobs, &x), None);
        assert_eq!(km.hint(Tab::Jobs, "compare_axis"), "x");
        assert_eq!(km.hint(Tab::Jobs, "mark"), "space");
        assert_eq!(km.hint(Tab::Jobs, "compare"), "C");
        // A sweep's Compare view has its own key there, and nowhere else.
        let shift_w = ev(KeyCode::Char('W'), KeyModifiers::SHIFT);
        assert_eq!(km.lookup(Tab::Jobs, &shift_w), Some(Action::CompareSweep));
        for tab in Tab::ALL {
            if tab != Tab::Jobs {
                assert_eq!(km.lookup(tab, &shift_w), None, "{tab:?}");
            }
        }
        assert_eq!(km.hint(Tab::Jobs, "compare_sweep"), "W");
    }

    #[test]
    fn x_exports_on_the_models_tab_only() {
        let km = Keymap::default();
        let x = ev(KeyCode::Char('x'), KeyModifiers::NONE);
        assert_eq!(km.lookup(Tab::Models, &x), Some(Action::Export));
        // Elsewhere `x` keeps its meanings: delete a dataset, the Compare view's axis.
        assert_eq!(km.lookup(Tab::Datasets, &x), Some(Action::Delete));
        assert_eq!(km.lookup_compare(&x), Some(Action::CompareAxis));
        for tab in [Tab::Configure, Tab::Jobs, Tab::Costs, Tab::Notifications] {
            assert_eq!(km.lookup(tab, &x), None, "{tab:?}");
        }
        assert_eq!(km.hint(Tab::Models, "export"), "x");
        // No two of the Models tab's actions share a key, and none hides a global one.
        let mut seen: HashMap<Key, &str> = HashMap::new();
        for (ctx, name, _, keys) in &km.listing {
            if *ctx != Context::Tab(Tab::Models) {
                continue;
            }
            for k in keys {
                assert!(seen.insert(*k, name).is_none(), "{name} shares {k:?}");
                assert!(
                    !km.map.contains_key(&(Context::Global, *k)),
                    "{name} hides a global key"
                );
            }
        }
    }

    #[test]
    fn remapping_replaces_defaults_and_reports_problems() {
        let mut o = BTreeMap::new();
        o.insert("quit".to_string(), "ctrl-q".to_string());
        o.insert("cancel".to_string(), "k".to_string());
        o.insert("nonsense".to_string(), "z".to_string());
        o.insert("freeze".to_string(), "notakey".to_string());
        let (km, problems) = Keymap::new(&o);
        assert_eq!(problems.len(), 2, "{problems:?}");
        let q = ev(KeyCode::Char('q'), KeyModifiers::NONE);
        assert_eq!(km.lookup(Tab::Jobs, &q), None);
        let cq = ev(KeyCode::Char('q'), KeyModifiers::CONTROL);
        assert_eq!(km.lookup(Tab::Jobs, &cq), Some(Action::Quit));
        // `k` now cancels on the Jobs tab, and still moves up elsewhere.
        let k = ev(KeyCode::Char('k'), KeyModifiers::NONE);
        assert_eq!(km.lookup(Tab::Jobs, &k), Some(Action::CancelJob));
        assert_eq!(km.lookup(Tab::Datasets, &k), Some(Action::Up));
        assert_eq!(km.hint(Tab::Jobs, "cancel"), "k");
        let f = ev(KeyCode::Char('f'), KeyModifiers::NONE);
        assert_eq!(km.lookup(Tab::Jobs, &f), Some(Action::Freeze));
    }
}
