//! A one-line text input on ratatui-textarea (the maintained successor of tui-textarea): used by
//! prompts, the filter, the command line, the file browser and the Configure form.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui_textarea::{CursorMove, TextArea};

#[derive(Clone, Debug)]
pub struct Input {
    area: TextArea<'static>,
}

impl Default for Input {
    fn default() -> Self {
        Input::new("")
    }
}

impl Input {
    pub fn new(text: &str) -> Self {
        let mut area = TextArea::new(vec![one_line(text)]);
        area.set_cursor_line_style(Style::default());
        area.set_cursor_style(Style::default().add_modifier(Modifier::REVERSED));
        area.move_cursor(CursorMove::End);
        Input { area }
    }

    pub fn text(&self) -> &str {
        self.area.lines().first().map(String::as_str).unwrap_or("")
    }

    /// Replaces the text, cursor at the end.
    pub fn set(&mut self, text: &str) {
        *self = Input::new(text);
    }

    /// Edits with the key; Enter, Tab and Esc are the caller's. Returns whether the text changed.
    pub fn key(&mut self, key: KeyEvent) -> bool {
        match key.code {
            KeyCode::Enter | KeyCode::Tab | KeyCode::BackTab | KeyCode::Esc => false,
            KeyCode::Char('m' | 'j') if key.modifiers.contains(KeyModifiers::CONTROL) => false,
            // Readline's ctrl-u (clear to the start), not the widget's undo.
            KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.area.delete_line_by_head()
            }
            _ => self.area.input(key),
        }
    }

    /// Inserts pasted text (newlines become spaces).
    pub fn paste(&mut self, text: &str) -> bool {
        self.area.insert_str(one_line(text))
    }

    pub fn set_placeholder(&mut self, text: &str) {
        self.area.set_placeholder_text(text.to_string());
    }

    /// Draws from `&self` (styling a copy: a one-line area is small) so that views can draw
    /// without holding their state mutably.
    pub fn draw(&self, frame: &mut Frame, area: Rect, style: Style) {
        let mut styled = self.area.clone();
        styled.set_style(style);
        frame.render_widget(&styled, area);
    }
}

fn one_line(s: &str) -> String {
    crate::sanitize::one_line(s).into_owned()
}
