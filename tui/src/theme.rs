//! Colour themes: TOML files (see `themes/`). The built-in ones are compiled in, so the binary
//! works anywhere; `themes/NAME.toml` (relative to the working directory) or any path to a
//! `.toml` file is loaded too. A file may set only some colours: the rest come from `dark`.

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// How many runs [`Theme::run_colors`] tells apart: as many as one comparison holds.
pub const RUN_COLORS: usize = brightrun_api::domain::MAX_COMPARED_RUNS;

/// The themes compiled into the binary: (name, TOML).
pub const BUILTIN: &[(&str, &str)] = &[
    ("dark", include_str!("../../themes/dark.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
];

macro_rules! theme_colors {
    ($($field:ident),* $(,)?) => {
        /// Every colour the UI uses, by role.
        #[derive(Clone, Debug, PartialEq)]
        pub struct Theme {
            pub name: String,
            $(pub $field: Color,)*
        }

        impl Theme {
            fn set(&mut self, key: &str, color: Color) -> bool {
                match key {
                    $(stringify!($field) => { self.$field = color; true })*
                    _ => false,
                }
            }
            /// The colour keys a theme file may set.
            pub fn keys() -> &'static [&'static str] {
                &[$(stringify!($field)),*]
            }
        }
    };
}

theme_colors!(
    background,
    foreground,
    muted,
    accent,
    border,
    border_focused,
    selection_fg,
    selection_bg,
    header,
    tab_active_fg,
    tab_active_bg,
    badge_fg,
    badge_bg,
    success,
    warning,
    error,
    info,
    unread,
    chart_training,
    chart_validation,
    spark_learning_rate,
    spark_gradient_norm,
    spark_throughput,
    spark_gpu,
    gauge,
    bar,
    status_fg,
    status_bg,
);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    name: Option<String>,
    #[serde(default)]
    colors: BTreeMap<String, String>,
}

/// Why a theme could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThemeError(pub String);

impl std::fmt::Display for ThemeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ThemeError {}

impl Default for Theme {
    fn default() -> Self {
        Self::builtin("dark").expect("the dark theme is built in")
    }
}

impl Theme {
    /// A theme with every role set to the terminal's default colour; the base `parse` fills.
    fn blank(name: &str) -> Self {
        let mut t = Theme {
            name: name.to_string(),
            background: Color::Reset,
            foreground: Color::Reset,
            muted: Color::Reset,
            accent: Color::Reset,
            border: Color::Reset,
            border_focused: Color::Reset,
            selection_fg: Color::Reset,
            selection_bg: Color::Reset,
            header: Color::Reset,
            tab_active_fg: Color::Reset,
            tab_active_bg: Color::Reset,
            badge_fg: Color::Reset,
            badge_bg: Color::Reset,
            success: Color::Reset,
            warning: Color::Reset,
            error: Color::Reset,
            info: Color::Reset,
            unread: Color::Reset,
            chart_training: Color::Reset,
            chart_validation: Color::Reset,
            spark_learning_rate: Color::Reset,
            spark_gradient_norm: Color::Reset,
            spark_throughput: Color::Reset,
            spark_gpu: Color::Reset,
            gauge: Color::Reset,
            bar: Color::Reset,
            status_fg: Color::Reset,
            status_bg: Color::Reset,
        };
        t.name = name.to_string();
        t
    }

    /// Parses a theme file. Colours it leaves out come from `base` (or stay the terminal's
    /// default when there is no base).
    pub fn parse(
        text: &str,
        fallback_name: &str,
        base: Option<&Theme>,
    ) -> Result<Self, ThemeError> {
        let file: ThemeFile = toml::from_str(text)
            .map_err(|e| ThemeError(format!("theme `{fallback_name}`: {e}")))?;
        let name = file.name.unwrap_or_else(|| fallback_name.to_string());
        let mut theme = match base {
            Some(b) => Theme {
                name: name.clone(),
                ..b.clone()
            },
            None => Theme::blank(&name),
        };
        for (key, value) in &file.colors {
            let color = Color::from_str(value.trim()).map_err(|_| {
                ThemeError(format!(
                    "theme `{name}`: `{key} = \"{value}\"` is not a colour (a name such as lightblue, \"#rrggbb\", or 0-255)"
                ))
            })?;
            if !theme.set(key, color) {
                return Err(ThemeError(format!(
                    "theme `{name}`: unknown colour key `{key}`; known: {}",
                    Theme::keys().join(", ")
                )));
            }
        }
        Ok(theme)
    }

    /// A theme compiled into the binary.
    pub fn builtin(name: &str) -> Option<Self> {
        let (n, text) = BUILTIN.iter().find(|(n, _)| n.eq_ignore_ascii_case(name))?;
        let base = if *n == "dark" {
            None
        } else {
            Theme::builtin("dark")
        };
        Theme::parse(text, n, base.as_ref()).ok()
    }

    /// Whether `name` needs the file system to resolve (not a built-in theme).
    pub fn is_builtin(name: &str) -> bool {
        BUILTIN.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// Resolves a theme by built-in name, `themes/NAME.toml`, or a path to a TOML file. Reads
    /// the file system: call it from the runtime, not from a draw or an action handler.
    pub fn load(name_or_path: &str) -> Result<Self, ThemeError> {
        if let Some(t) = Theme::builtin(name_or_path) {
            return Ok(t);
        }
        let candidates = Self::candidate_paths(name_or_path);
        for path in &candidates {
            if path.is_file() {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ThemeError(format!("cannot read {}: {e}", path.display())))?;
                let stem = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| name_or_path.to_string());
                return Theme::parse(&text, &stem, Some(&Theme::default()));
            }
        }
        Err(ThemeError(format!(
            "no theme `{name_or_path}`: not built in ({}) and no file at {}",
            BUILTIN
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", "),
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" or ")
        )))
    }

    fn candidate_paths(name_or_path: &str) -> Vec<PathBuf> {
        let p = Path::new(name_or_path);
        if name_or_path.ends_with(".toml") || name_or_path.contains(std::path::MAIN_SEPARATOR) {
            vec![p.to_path_buf()]
        } else {
            vec![Path::new("themes").join(format!("{name_or_path}.toml"))]
        }
    }

    /// Names offered for `:theme` completion: the built-ins and `themes/*.toml` (read by the
    /// runtime once at start).
    pub fn available_names() -> Vec<String> {
        let mut names: Vec<String> = BUILTIN.iter().map(|(n, _)| n.to_string()).collect();
        if let Ok(dir) = std::fs::read_dir("themes") {
            for e in dir.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "toml")
                    && let Some(stem) = p.file_stem()
                {
                    let s = crate::sanitize::one_line(&stem.to_string_lossy()).into_owned();
                    if !names.contains(&s) {
                        names.push(s);
                    }
                }
            }
        }
        names
    }

    // Styles by role.
    pub fn base(&self) -> Style {
        Style::new().fg(self.foreground).bg(self.background)
    }
    pub fn muted(&self) -> Style {
        Style::new().fg(self.muted)
    }
    pub fn accent(&self) -> Style {
        Style::new().fg(self.accent)
    }
    pub fn header(&self) -> Style {
        Style::new().fg(self.header).add_modifier(Modifier::BOLD)
    }
    pub fn selected(&self) -> Style {
        Style::new()
            .fg(self.selection_fg)
            .bg(self.selection_bg)
            .add_modifier(Modifier::BOLD)
    }
    pub fn border(&self, focused: bool) -> Style {
        Style::new().fg(if focused {
            self.border_focused
        } else {
            self.border
        })
    }
    pub fn status_bar(&self) -> Style {
        Style::new().fg(self.status_fg).bg(self.status_bg)
    }
    pub fn fg(&self, c: Color) -> Style {
        Style::new().fg(c)
    }

    /// The colours of up to [`RUN_COLORS`] runs overlaid in one chart (the Jobs tab's Compare
    /// view), in order: the loss chart's and the sparklines' colours (each theme chose them
    /// to read on its background), the text colour, then the theme's other roles and basic
    /// colours; never the background, the muted colour of the axes, or a colour twice. So the
    /// runs stay apart in every theme, a theme file that repeats a colour included.
    pub fn run_colors(&self) -> [Color; RUN_COLORS] {
        let candidates = [
            self.chart_training,
            self.chart_validation,
            self.spark_throughput,
            self.spark_gradient_norm,
            self.spark_learning_rate,
            self.foreground,
            self.spark_gpu,
            self.accent,
            self.info,
            self.success,
            self.warning,
            self.error,
            self.header,
            Color::LightBlue,
            Color::LightMagenta,
            Color::LightGreen,
            Color::LightRed,
            Color::LightYellow,
            Color::LightCyan,
            Color::Blue,
            Color::Magenta,
            Color::Green,
            Color::Red,
            Color::Yellow,
            Color::Cyan,
        ];
        let mut out = [Color::Reset; RUN_COLORS];
        let mut n = 0;
        for c in candidates {
            if n == RUN_COLORS {
                break;
            }
            if c == Color::Reset || c == self.background || c == self.muted || out[..n].contains(&c)
            {
                continue;
            }
            out[n] = c;
            n += 1;
        }
        out
    }

    /// A token of an inspected example (the Datasets tab's Inspect view): trained (its label
    /// carries loss) or masked, special (BOS, EOS, end of turn, tool markers) or not. Trained
    /// and masked differ in more than colour, bold and underlined against dim, so they stay
    /// apart in every theme, for colour-blind eyes and on terminals without colour.
    pub fn token(&self, trained: bool, special: bool) -> Style {
        let fg = match (special, trained) {
            (true, _) => self.accent,
            (false, true) => self.success,
            (false, false) => self.muted,
        };
        let style = Style::new().fg(fg);
        if trained {
            style.add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
        } else {
            style.add_modifier(Modifier::DIM)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse_and_set_every_key() {
        for (name, text) in BUILTIN {
            let t = Theme::parse(text, name, None).unwrap();
            assert_eq!(&t.name, name);
            let file: ThemeFile = toml::from_str(text).unwrap();
            for key in Theme::keys() {
                assert!(file.colors.contains_key(*key), "{name} lacks {key}");
            }
        }
        assert!(Theme::builtin("HIGH-CONTRAST").is_some());
    }

    #[test]
    fn partial_file_falls_back_and_errors_are_clear() {
        let t = Theme::parse(
            "[colors]\naccent = \"red\"",
            "mine",
            Some(&Theme::default()),
        )
        .unwrap();
        assert_eq!(t.accent, Color::Red);
        assert_eq!(t.foreground, Theme::default().foreground);
        let e = Theme::parse("[colors]\naccent = \"nope\"", "x", None).unwrap_err();
        assert!(e.0.contains("accent"), "{e}");
        let e = Theme::parse("[colors]\naccnt = \"red\"", "x", None).unwrap_err();
        assert!(e.0.contains("unknown colour key"), "{e}");
    }

    #[test]
    fn trained_and_masked_tokens_differ_in_more_than_colour_in_every_theme() {
        for (name, _) in BUILTIN {
            let t = Theme::builtin(name).unwrap();
            for special in [false, true] {
                let (trained, masked) = (t.token(true, special), t.token(false, special));
                // With the colours taken away, the two still differ.
                let bare = |s: Style| Style { fg: None, ..s };
                assert_ne!(bare(trained), bare(masked), "{name}, special {special}");
                assert!(
                    trained
                        .add_modifier
                        .contains(Modifier::BOLD | Modifier::UNDERLINED),
                    "{name}"
                );
                assert!(masked.add_modifier.contains(Modifier::DIM), "{name}");
                assert!(
                    !masked
                        .add_modifier
                        .intersects(Modifier::BOLD | Modifier::UNDERLINED)
                );
                // Neither vanishes into the background.
                for s in [trained, masked] {
                    assert_ne!(s.fg, Some(t.background), "{name}");
                }
            }
            // Special tokens stand apart from plain ones by colour too.
            assert_ne!(t.token(true, true).fg, t.token(true, false).fg, "{name}");
            assert_ne!(t.token(false, true).fg, t.token(false, false).fg, "{name}");
        }
    }

    #[test]
    fn every_theme_tells_six_runs_apart_from_each_other_and_the_background() {
        let themes: Vec<Theme> = BUILTIN
            .iter()
            .map(|(n, _)| Theme::builtin(n).unwrap())
            .collect();
        // A theme file that gives every role one colour still gets six.
        let mut flat = Theme {
            name: "flat".into(),
            ..Theme::default()
        };
        for key in Theme::keys() {
            flat.set(key, Color::Green);
        }
        flat.background = Color::Black;
        for t in themes.iter().chain([&flat]) {
            let colors = t.run_colors();
            for (i, a) in colors.iter().enumerate() {
                assert_ne!(*a, Color::Reset, "{}: run {i}", t.name);
                assert_ne!(*a, t.background, "{}: run {i}", t.name);
                assert_ne!(*a, t.muted, "{}: run {i} is the axes' colour", t.name);
                for (j, b) in colors.iter().enumerate().skip(i + 1) {
                    assert_ne!(a, b, "{}: runs {i} and {j}", t.name);
                }
            }
        }
        // The dark theme's first two runs are its loss chart's colours.
        let dark = Theme::default();
        assert_eq!(
            dark.run_colors()[..2],
            [dark.chart_training, dark.chart_validation]
        );
    }

    #[test]
    fn load_from_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ocean.toml");
        std::fs::write(&p, "name = \"ocean\"\n[colors]\naccent = \"#0000ff\"").unwrap();
        let t = Theme::load(p.to_str().unwrap()).unwrap();
        assert_eq!(t.name, "ocean");
        assert_eq!(t.accent, Color::Rgb(0, 0, 255));
        assert!(Theme::load("no-such-theme").is_err());
    }
}
