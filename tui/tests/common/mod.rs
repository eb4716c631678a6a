#![allow(dead_code)]

use brightrun_api::config::Config;
use brightrun_tui::fixtures;
use brightrun_tui::{Action, App, Effect, Outcome};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

pub fn config() -> Config {
    let mut c = Config::default();
    c.budget.monthly_usd = Some(100.0);
    c
}

/// The fixture app at the fixed time, with the running job's history (and checkpoints) loaded.
pub fn app() -> App {
    let mut app = App::new(fixtures::snapshot(), &config());
    app.set_now(fixtures::now());
    let job = fixtures::job_id(1);
    app.apply_outcome(Outcome::JobDetail {
        job_id: job,
        metrics: Ok(fixtures::metrics(job, 400)),
        log: Ok(fixtures::log_lines()),
        checkpoints: Ok(fixtures::checkpoints(job)),
    });
    app
}

pub fn render(app: &mut App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| app.draw(f)).unwrap();
    let s = t.backend().to_string();
    assert!(
        !s.contains('\u{1b}'),
        "an escape character reached the screen"
    );
    s
}

pub fn key(app: &mut App, code: KeyCode) -> Vec<Effect> {
    app.handle_key(KeyEvent::new(code, KeyModifiers::NONE))
}

pub fn ctrl(app: &mut App, c: char) -> Vec<Effect> {
    app.handle_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

pub fn chr(app: &mut App, c: char) -> Vec<Effect> {
    let mods = if c.is_ascii_uppercase() {
        KeyModifiers::SHIFT
    } else {
        KeyModifiers::NONE
    };
    app.handle_key(KeyEvent::new(KeyCode::Char(c), mods))
}

pub fn typed(app: &mut App, s: &str) -> Vec<Effect> {
    s.chars().flat_map(|c| chr(app, c)).collect()
}

pub fn act(app: &mut App, a: Action) -> Vec<Effect> {
    app.handle(a)
}
