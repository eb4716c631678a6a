//! The in-terminal file browser: a path typed into a ratatui-textarea input, the folder's
//! entries below it filtered by what is typed, and Tab completion (a unique match completes,
//! several complete to their common prefix). Listings come from the runtime (no I/O here).

use super::PromptKind;
use crate::action::Action;
use crate::effect::{DirEntry, Effect};
use crate::input::Input;
use crossterm::event::{KeyCode, KeyModifiers};
use std::path::{Path, PathBuf};

/// Whether a desktop file dialog can be offered: built with the `native-dialog` feature and a
/// desktop session to show it on (never over plain SSH).
pub fn native_dialog_available() -> bool {
    cfg!(feature = "native-dialog")
        && (cfg!(any(target_os = "macos", target_os = "windows"))
            || std::env::var_os("WAYLAND_DISPLAY").is_some_and(|v| !v.is_empty())
            || std::env::var_os("DISPLAY").is_some_and(|v| !v.is_empty()))
}

#[derive(Clone, Debug)]
pub struct FileBrowser {
    pub input: Input,
    pub request: u64,
    /// The folder the entries are from.
    pub listed: Option<PathBuf>,
    pub entries: Vec<DirEntry>,
    pub error: Option<String>,
    pub selected: usize,
    /// Set when choosing a download folder instead of a dataset file.
    pub folders_only: Option<PromptKind>,
    /// A Tab pressed before the folder was listed: complete as soon as the listing arrives.
    pub complete_on_listing: bool,
}

pub enum FileOutcome {
    Stay(Vec<Effect>),
    Cancel,
    Chosen(PathBuf),
}

/// `~/x` → `$HOME/x`.
pub fn expand_home(s: &str) -> PathBuf {
    if let Some(rest) = s.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return Path::new(&home).join(rest);
    }
    if s == "~"
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home);
    }
    PathBuf::from(s)
}

impl FileBrowser {
    pub fn new(start: &str, request: u64) -> Self {
        let mut input = Input::new(start);
        input.set_placeholder(if native_dialog_available() {
            "a path: tab completes, ↑↓ choose, enter opens, ctrl-o desktop dialog"
        } else {
            "a path: tab completes, ↑↓ choose, enter opens"
        });
        FileBrowser {
            input,
            request,
            listed: None,
            entries: Vec::new(),
            error: None,
            selected: 0,
            folders_only: None,
            complete_on_listing: false,
        }
    }

    /// The folder part of what is typed (everything up to the last `/`).
    pub fn dir_to_list(&self) -> PathBuf {
        let t = self.input.text();
        match t.rfind('/') {
            Some(0) => PathBuf::from("/"),
            Some(i) => expand_home(&t[..i]),
            None => PathBuf::from("."),
        }
    }

    /// The name part being typed (after the last `/`).
    pub fn prefix(&self) -> &str {
        let t = self.input.text();
        match t.rfind('/') {
            Some(i) => &t[i + 1..],
            None => t,
        }
    }

    /// Entries matching the typed prefix (hidden ones only when the prefix starts with a dot),
    /// folders first.
    pub fn visible(&self) -> Vec<&DirEntry> {
        let p = self.prefix().to_lowercase();
        let show_hidden = p.starts_with('.');
        self.entries
            .iter()
            .filter(|e| show_hidden || !e.name.starts_with('.'))
            .filter(|e| e.name.to_lowercase().starts_with(&p))
            .filter(|e| self.folders_only.is_none() || e.is_dir)
            .collect()
    }

    /// Takes a folder listing; returns what a pending completion asks for next.
    pub fn set_listing(
        &mut self,
        dir: PathBuf,
        entries: Result<Vec<DirEntry>, String>,
    ) -> Vec<Effect> {
        if dir != self.dir_to_list() {
            return Vec::new(); // an answer for a folder no longer typed
        }
        self.listed = Some(dir);
        match entries {
            Ok(mut e) => {
                e.sort_by(|a, b| {
                    b.is_dir
                        .cmp(&a.is_dir)
                        .then(a.name.to_lowercase().cmp(&b.name.to_lowercase()))
                });
                self.entries = e;
                self.error = None;
            }
            Err(e) => {
                self.entries.clear();
                self.error = Some(crate::sanitize::one_line(&e).into_owned());
            }
        }
        self.selected = 0;
        if std::mem::take(&mut self.complete_on_listing) {
            return self.complete();
        }
        Vec::new()
    }

    fn relist(&mut self, before: PathBuf) -> Vec<Effect> {
        let now = self.dir_to_list();
        self.selected = 0;
        if now != before || self.listed.as_ref() != Some(&now) {
            vec![Effect::ListDir {
                request: self.request,
                dir: now,
            }]
        } else {
            Vec::new()
        }
    }

    fn base(&self) -> String {
        let t = self.input.text();
        match t.rfind('/') {
            Some(i) => t[..=i].to_string(),
            None => String::new(),
        }
    }

    fn descend(&mut self, name: &str, is_dir: bool) -> Vec<Effect> {
        let before = self.dir_to_list();
        let text = format!("{}{}{}", self.base(), name, if is_dir { "/" } else { "" });
        self.input.set(&text);
        self.relist(before)
    }

    /// Tab: completes the name typed to a unique match, or to the matches' common prefix.
    fn complete(&mut self) -> Vec<Effect> {
        let vis: Vec<DirEntry> = self.visible().into_iter().cloned().collect();
        match vis.len() {
            0 => Vec::new(),
            1 => self.descend(&vis[0].name, vis[0].is_dir),
            _ => {
                // If the user moved the selection, Tab takes it.
                if self.selected > 0 {
                    let e = vis[self.selected.min(vis.len() - 1)].clone();
                    return self.descend(&e.name, e.is_dir);
                }
                let mut common = vis[0].name.clone();
                for e in &vis[1..] {
                    let n = common
                        .chars()
                        .zip(e.name.chars())
                        .take_while(|(a, b)| a == b)
                        .count();
                    common = common.chars().take(n).collect();
                }
                if common.chars().count() > self.prefix().chars().count() {
                    let text = format!("{}{}", self.base(), common);
                    self.input.set(&text);
                }
                Vec::new()
            }
        }
    }

    pub fn handle(&mut self, action: Action) -> FileOutcome {
        let key = match action {
            Action::Input(k) => k,
            Action::Paste(t) => {
                let before = self.dir_to_list();
                self.input.paste(&t);
                return FileOutcome::Stay(self.relist(before));
            }
            _ => return FileOutcome::Stay(Vec::new()),
        };
        let n = self.visible().len();
        match key.code {
            KeyCode::Esc => FileOutcome::Cancel,
            KeyCode::Char('o')
                if key.modifiers.contains(KeyModifiers::CONTROL)
                    && self.folders_only.is_none()
                    && native_dialog_available() =>
            {
                FileOutcome::Stay(vec![Effect::NativeFileDialog {
                    request: self.request,
                }])
            }
            KeyCode::Down => {
                if n > 0 {
                    self.selected = (self.selected + 1) % n;
                }
                FileOutcome::Stay(Vec::new())
            }
            KeyCode::Up => {
                if n > 0 {
                    self.selected = (self.selected + n - 1) % n;
                }
                FileOutcome::Stay(Vec::new())
            }
            KeyCode::Tab => FileOutcome::Stay(self.complete()),
            KeyCode::Right if self.input_at_end() && n > 0 => {
                let e = self.visible()[self.selected.min(n - 1)].clone();
                if e.is_dir {
                    FileOutcome::Stay(self.descend(&e.name, true))
                } else {
                    FileOutcome::Stay(Vec::new())
                }
            }
            KeyCode::Enter => {
                if self.folders_only.is_some() {
                    let t = self.input.text().trim().to_string();
                    // Enter on a highlighted sub-folder while typing its name takes it.
                    if n > 0 && !self.prefix().is_empty() {
                        let e = self.visible()[self.selected.min(n - 1)].clone();
                        return FileOutcome::Chosen(self.dir_to_list().join(&e.raw));
                    }
                    return FileOutcome::Chosen(expand_home(t.trim_end_matches('/')));
                }
                if n > 0 {
                    let e = self.visible()[self.selected.min(n - 1)].clone();
                    if e.is_dir {
                        return FileOutcome::Stay(self.descend(&e.name, true));
                    }
                    // The file system's own name: the shown one is cleaned and may not exist.
                    return FileOutcome::Chosen(self.dir_to_list().join(&e.raw));
                }
                let t = self.input.text().trim();
                if t.is_empty() || t.ends_with('/') {
                    FileOutcome::Stay(Vec::new())
                } else {
                    FileOutcome::Chosen(expand_home(t))
                }
            }
            _ => {
                let before = self.dir_to_list();
                if self.input.key(key) {
                    FileOutcome::Stay(self.relist(before))
                } else {
                    FileOutcome::Stay(Vec::new())
                }
            }
        }
    }

    fn input_at_end(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyEvent, KeyModifiers};

    fn entry(name: &str, is_dir: bool, size: u64) -> DirEntry {
        DirEntry {
            name: crate::sanitize::one_line(name).into_owned(),
            raw: name.into(),
            is_dir,
            size,
        }
    }

    fn entries() -> Vec<DirEntry> {
        vec![
            entry("data", true, 0),
            entry("train.jsonl", false, 10),
            entry("train-small.jsonl", false, 5),
            entry(".hidden", false, 1),
        ]
    }

    fn key(c: KeyCode) -> Action {
        Action::Input(KeyEvent::new(c, KeyModifiers::NONE))
    }

    #[test]
    fn completes_common_prefix_then_unique() {
        let mut fb = FileBrowser::new("/tmp/x/", 1);
        assert_eq!(fb.dir_to_list(), PathBuf::from("/tmp/x"));
        fb.set_listing(PathBuf::from("/tmp/x"), Ok(entries()));
        assert_eq!(fb.visible().len(), 3, "hidden files stay hidden");
        assert_eq!(fb.visible()[0].name, "data", "folders first");
        fb.handle(key(KeyCode::Char('t')));
        fb.handle(key(KeyCode::Tab));
        assert_eq!(fb.input.text(), "/tmp/x/train");
        fb.handle(key(KeyCode::Char('.')));
        fb.handle(key(KeyCode::Tab));
        assert_eq!(fb.input.text(), "/tmp/x/train.jsonl");
        match fb.handle(key(KeyCode::Enter)) {
            FileOutcome::Chosen(p) => assert_eq!(p, PathBuf::from("/tmp/x/train.jsonl")),
            _ => panic!("enter on a file chooses it"),
        }
    }

    #[test]
    fn a_tab_before_the_listing_completes_when_it_arrives() {
        let mut fb = FileBrowser::new("/tmp/x/da", 1);
        fb.complete_on_listing = true;
        let fx = fb.set_listing(PathBuf::from("/tmp/x"), Ok(entries()));
        assert_eq!(fb.input.text(), "/tmp/x/data/");
        assert_eq!(
            fx,
            vec![Effect::ListDir {
                request: 1,
                dir: PathBuf::from("/tmp/x/data")
            }]
        );
        // Only once: a later listing completes nothing by itself.
        assert!(!fb.complete_on_listing);
    }

    #[test]
    fn descending_asks_for_a_listing() {
        let mut fb = FileBrowser::new("/tmp/x/", 1);
        fb.set_listing(PathBuf::from("/tmp/x"), Ok(entries()));
        match fb.handle(key(KeyCode::Enter)) {
            FileOutcome::Stay(fx) => {
                assert_eq!(
                    fx,
                    vec![Effect::ListDir {
                        request: 1,
                        dir: PathBuf::from("/tmp/x/data")
                    }]
                );
            }
            _ => panic!("enter on a folder opens it"),
        }
        assert_eq!(fb.input.text(), "/tmp/x/data/");
        // A stale answer for the old folder is ignored.
        fb.set_listing(PathBuf::from("/tmp/x"), Ok(entries()));
        assert!(fb.listed.is_some_and(|l| l == Path::new("/tmp/x")) || fb.entries.len() == 4);
    }

    #[test]
    fn a_file_whose_name_has_control_characters_opens_by_its_real_name() {
        let raw = "evil\u{1b}]0;title\u{7}.jsonl";
        let mut fb = FileBrowser::new("/tmp/x/ev", 1);
        fb.set_listing(PathBuf::from("/tmp/x"), Ok(vec![entry(raw, false, 3)]));
        assert_eq!(fb.visible()[0].name, "evil.jsonl", "shown cleaned");
        match fb.handle(key(KeyCode::Enter)) {
            FileOutcome::Chosen(p) => assert_eq!(p, Path::new("/tmp/x").join(raw)),
            _ => panic!("enter on a file chooses it"),
        }
    }
}
