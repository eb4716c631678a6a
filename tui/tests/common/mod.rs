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

/// The screen, then the style of every cell as a letter, then what each letter is: so a
/// snapshot shows what each theme paints, not only the text.
pub fn render_styled(app: &mut App, w: u16, h: u16) -> String {
    use ratatui::style::Style;
    let text = render(app, w, h);
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| app.draw(f)).unwrap();
    let buf = t.backend().buffer().clone();
    let letters: Vec<char> = ('a'..='z').chain('A'..='Z').chain('0'..='9').collect();
    let mut styles: Vec<Style> = Vec::new();
    let mut grid = String::new();
    for y in 0..h {
        for x in 0..w {
            let c = &buf[(x, y)];
            let st = Style::new()
                .fg(c.fg)
                .bg(c.bg)
                .add_modifier(c.modifier)
                .underline_color(c.underline_color);
            let i = match styles.iter().position(|s| *s == st) {
                Some(i) => i,
                None => {
                    styles.push(st);
                    styles.len() - 1
                }
            };
            grid.push(letters.get(i).copied().unwrap_or('?'));
        }
        grid.push('\n');
    }
    let legend: Vec<String> = styles
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                "{}: fg {:?} bg {:?} {:?}",
                letters.get(i).copied().unwrap_or('?'),
                s.fg.unwrap_or_default(),
                s.bg.unwrap_or_default(),
                s.add_modifier
            )
        })
        .collect();
    format!("{text}\n{grid}\n{}\n", legend.join("\n"))
}
