//! A real terminal for end-to-end tests of the dashboard: a detached tmux server on a private
//! socket runs a program at a fixed size; keys go in with `send-keys`, the screen comes out
//! with `capture-pane -p`. Waits poll the screen until it is stable (two equal captures in a
//! row) and matches, with a deadline. Dropping the [`Tmux`] kills its server, so a failing test
//! leaves no terminal or program behind.
//!
//! The program runs under a small wrapper script that, once the program ends, prints
//! `[exited N]` and the terminal's line discipline (`[tty isig icanon echo]` in a cooked
//! terminal, `-icanon -echo` when raw mode was left on), then stays alive so the screen can
//! still be read: what a user would see back at the shell prompt.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// How long to wait between two captures.
const POLL: Duration = Duration::from_millis(100);

/// The line the wrapper prints when the program has ended.
pub const EXIT_MARKER: &str = "[exited ";
/// The line after it: the terminal's line discipline flags.
pub const TTY_MARKER: &str = "[tty ";

const WRAPPER: &str = r#"#!/bin/sh
# Runs the program, then reports what a shell would see afterwards and keeps the pane alive.
"$@"
status=$?
printf '\n[exited %s]\n' "$status"
printf '[tty %s]\n' "$(stty -a | tr ' ;' '\n\n' | grep -xE -- '-?(isig|icanon|echo)' | tr '\n' ' ')"
exec sleep 86400
"#;

pub struct Tmux {
    socket: String,
    /// The server's socket file, removed on drop (tmux leaves it behind).
    socket_path: Option<PathBuf>,
    /// Extra text for failure messages (the program's log, say).
    context: Option<Box<dyn Fn() -> String>>,
}

/// Single-quotes a word for `sh`.
fn quote(s: &OsStr) -> String {
    format!("'{}'", s.to_string_lossy().replace('\'', r"'\''"))
}

impl Tmux {
    /// Starts `program` with `env` in a `width`x`height` terminal whose working folder is
    /// `cwd`. The wrapper script is written into `cwd`.
    pub fn start(
        cwd: &Path,
        width: u16,
        height: u16,
        env: &[(&str, &OsStr)],
        program: &Path,
    ) -> Tmux {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let mut tmux = Tmux {
            socket: format!("brightrun-e2e-{}-{nanos}", std::process::id()),
            socket_path: None,
            context: None,
        };
        let wrapper: PathBuf = cwd.join(".tmux-run.sh");
        std::fs::write(&wrapper, WRAPPER).expect("writing the tmux wrapper");
        let mut line = format!("sh {} env", quote(wrapper.as_os_str()));
        for (k, v) in env {
            line.push(' ');
            line.push_str(&quote(OsStr::new(&format!("{k}={}", v.to_string_lossy()))));
        }
        line.push(' ');
        line.push_str(&quote(program.as_os_str()));
        let out = tmux.run(&[
            OsStr::new("new-session"),
            OsStr::new("-d"),
            OsStr::new("-x"),
            OsStr::new(&width.to_string()),
            OsStr::new("-y"),
            OsStr::new(&height.to_string()),
            OsStr::new("-c"),
            cwd.as_os_str(),
            OsStr::new(&line),
        ]);
        assert!(
            out.status.success(),
            "tmux new-session failed (is tmux installed? scripts/test.sh installs it): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmux.socket_path = Some(PathBuf::from(tmux.display("#{socket_path}")));
        tmux
    }

    /// Adds text to every failure message (called when a wait fails).
    pub fn on_failure(&mut self, f: impl Fn() -> String + 'static) {
        self.context = Some(Box::new(f));
    }

    fn run(&self, args: &[&OsStr]) -> Output {
        Command::new("tmux")
            .args(["-f", "/dev/null", "-L", &self.socket])
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("running tmux")
    }

    fn run_ok(&self, args: &[&str]) -> String {
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        let out = self.run(&args);
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Sends keys by tmux name (`Enter`, `Tab`, `Escape`, `C-u`, `j`, …), in order.
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys"];
        args.extend_from_slice(keys);
        self.run_ok(&args);
    }

    /// Types text literally.
    pub fn type_text(&self, text: &str) {
        self.run_ok(&["send-keys", "-l", text]);
    }

    /// The screen as text, one line per row, trailing blanks trimmed.
    pub fn capture(&self) -> String {
        self.run_ok(&["capture-pane", "-p"])
    }

    /// A tmux format evaluated for the pane (`#{alternate_on}`, …).
    pub fn display(&self, format: &str) -> String {
        self.run_ok(&["display-message", "-p", format])
            .trim()
            .to_string()
    }

    /// Waits until the screen is stable and `pred` holds; returns that screen. Panics with the
    /// screen after `timeout`, or at once if the program ended while the screen does not match.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl FnMut(&str) -> bool,
    ) -> String {
        self.wait(what, timeout, true, pred)
    }

    /// Waits until the program has ended and the wrapper has reported (`[exited N]`, `[tty …]`).
    pub fn wait_for_exit(&self, timeout: Duration) -> String {
        self.wait("the program to exit", timeout, false, |s| {
            s.contains(EXIT_MARKER) && s.contains(TTY_MARKER)
        })
    }

    fn wait(
        &self,
        what: &str,
        timeout: Duration,
        fail_on_exit: bool,
        mut pred: impl FnMut(&str) -> bool,
    ) -> String {
        let start = Instant::now();
        let mut prev: Option<String> = None;
        loop {
            let screen = self.capture();
            let stable = prev.as_deref() == Some(screen.as_str());
            if stable && pred(&screen) {
                return screen;
            }
            if fail_on_exit && stable && screen.contains(EXIT_MARKER) {
                self.fail(
                    &format!("the program ended while waiting for {what}"),
                    &screen,
                );
            }
            if start.elapsed() >= timeout {
                self.fail(
                    &format!("timed out after {timeout:?} waiting for {what}"),
                    &screen,
                );
            }
            prev = Some(screen);
            std::thread::sleep(POLL);
        }
    }

    /// Waits for a stable screen that contains every one of `texts`.
    pub fn wait_for_all(&self, what: &str, timeout: Duration, texts: &[&str]) -> String {
        self.wait_for(what, timeout, |s| texts.iter().all(|t| s.contains(t)))
    }

    /// Panics with `msg`, the screen and the failure context.
    pub fn fail(&self, msg: &str, screen: &str) -> ! {
        let extra = self.context.as_ref().map(|f| f()).unwrap_or_default();
        panic!("{msg}\n---- screen ----\n{screen}\n---- end of screen ----\n{extra}");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // Ends the wrapper and the program (SIGHUP) and removes the socket.
        let _ = self.run(&[OsStr::new("kill-server")]);
        if let Some(p) = &self.socket_path {
            let _ = std::fs::remove_file(p);
        }
    }
}
