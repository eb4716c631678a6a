//! The Models tab's export dialog, as data: what `brightrun models export` asks for (the
//! format, the tensors' type, a llama.cpp quantization and an Ollama Modelfile for a GGUF, the
//! Modelfile's system prompt, the name), then the engine's dry run of it. The app opens it on
//! an adapter, sends [`Effect::PlanExport`](crate::Effect::PlanExport) on enter and turns
//! the answer into a confirmation (`app/overlay.rs`, `app/events.rs`); `ui/export.rs` draws
//! it.

use crate::format;
use crate::input::Input;
use crate::sanitize::one_line;
use brightrun_api::ApiError;
use brightrun_api::domain::*;
use crossterm::event::{KeyCode, KeyEvent};
use std::sync::Arc;

/// A row of the dialog, in the order shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportRow {
    Format,
    Dtype,
    /// `none` or one of [`GGUF_QUANTIZATIONS`] (a GGUF only).
    Quantize,
    /// An Ollama Modelfile too (a GGUF only).
    Ollama,
    /// The Modelfile's `SYSTEM` prompt (with the Modelfile only).
    SystemPrompt,
    /// Empty: the engine's default (`NAME-vN-FORMAT`).
    Name,
}

impl ExportRow {
    pub const ALL: [ExportRow; 6] = [
        ExportRow::Format,
        ExportRow::Dtype,
        ExportRow::Quantize,
        ExportRow::Ollama,
        ExportRow::SystemPrompt,
        ExportRow::Name,
    ];

    /// Its label in the dialog.
    pub fn label(self) -> &'static str {
        match self {
            ExportRow::Format => "format",
            ExportRow::Dtype => "dtype",
            ExportRow::Quantize => "quantize",
            ExportRow::Ollama => "ollama",
            ExportRow::SystemPrompt => "system prompt",
            ExportRow::Name => "name",
        }
    }

    /// Whether it is typed into (its letters are text, not keys).
    pub fn is_text(self) -> bool {
        matches!(self, ExportRow::SystemPrompt | ExportRow::Name)
    }

    /// The row an engine error's `field` names (the request's field names).
    pub fn of_field(field: &str) -> Option<ExportRow> {
        Some(match field {
            "format" => ExportRow::Format,
            "dtype" => ExportRow::Dtype,
            "quantize" => ExportRow::Quantize,
            "ollama" => ExportRow::Ollama,
            "system_prompt" => ExportRow::SystemPrompt,
            "name" => ExportRow::Name,
            _ => return None,
        })
    }
}

/// What a key did in the dialog.
#[derive(Clone, Debug, PartialEq)]
pub enum ExportKey {
    /// Still open, nothing to send.
    Stay,
    /// Closed without sending anything.
    Cancel,
    /// Ask the engine for the estimate of these options (a dry run).
    Plan(ExportOptions),
}

/// The export dialog of one adapter.
#[derive(Clone, Debug)]
pub struct ExportDialog {
    /// The adapter exported.
    pub model: Arc<ModelArtifact>,
    pub format: ExportFormat,
    pub dtype: ExportDtype,
    /// An index into [`GGUF_QUANTIZATIONS`]; none: not quantized.
    pub quantize: Option<usize>,
    pub ollama: bool,
    pub system_prompt: Input,
    pub name: Input,
    pub row: ExportRow,
    /// The dry run being waited for (its request); the form holds still meanwhile.
    pub planning: Option<u64>,
    /// Why the last try did not get an estimate: the engine's message, or the form's own.
    pub error: Option<String>,
}

impl ExportDialog {
    /// A GGUF at f16, not quantized, without a Modelfile, named by the engine.
    pub fn new(model: Arc<ModelArtifact>) -> Self {
        let mut name = Input::new("");
        name.set_placeholder(&format!(
            "(default: {})",
            default_name(&model, ExportFormat::Gguf)
        ));
        let mut system_prompt = Input::new("");
        system_prompt.set_placeholder("(none)");
        ExportDialog {
            model,
            format: ExportFormat::Gguf,
            dtype: ExportDtype::default(),
            quantize: None,
            ollama: false,
            system_prompt,
            name,
            row: ExportRow::Format,
            planning: None,
            error: None,
        }
    }

    pub fn loading(&self) -> bool {
        self.planning.is_some()
    }

    /// Whether a row means anything with the choices made: a quantization and a Modelfile
    /// only for a GGUF, a system prompt only with the Modelfile.
    pub fn applies(&self, row: ExportRow) -> bool {
        let gguf = self.format == ExportFormat::Gguf;
        match row {
            ExportRow::Quantize | ExportRow::Ollama => gguf,
            ExportRow::SystemPrompt => gguf && self.ollama,
            _ => true,
        }
    }

    /// Why a row does not apply, for the dialog.
    pub fn why_not(&self, row: ExportRow) -> &'static str {
        match row {
            ExportRow::SystemPrompt if self.format == ExportFormat::Gguf => "(with ollama only)",
            ExportRow::SystemPrompt => "(gguf with ollama only)",
            _ => "(gguf only)",
        }
    }

    /// A row's value as shown.
    pub fn value(&self, row: ExportRow) -> String {
        match row {
            ExportRow::Format => self.format.as_str().into(),
            ExportRow::Dtype => self.dtype.as_str().into(),
            ExportRow::Quantize => self
                .quantize
                .map(|i| GGUF_QUANTIZATIONS[i].to_string())
                .unwrap_or_else(|| "none".into()),
            ExportRow::Ollama => if self.ollama { "yes" } else { "no" }.into(),
            ExportRow::SystemPrompt => self.system_prompt.text().into(),
            ExportRow::Name => self.name.text().into(),
        }
    }

    /// What `brightrun models export` would be asked: every choice that applies (a text left
    /// empty is the engine's default).
    pub fn options(&self) -> ExportOptions {
        let text = |i: &Input| Some(i.text().trim().to_string()).filter(|t| !t.is_empty());
        let mut o = ExportOptions::new(self.format);
        o.dtype = Some(self.dtype);
        if self.applies(ExportRow::Quantize) {
            o.quantize = self.quantize.map(|i| GGUF_QUANTIZATIONS[i].to_string());
        }
        o.ollama = self.applies(ExportRow::Ollama) && self.ollama;
        if self.applies(ExportRow::SystemPrompt) {
            o.system_prompt = text(&self.system_prompt);
        }
        o.name = text(&self.name);
        o
    }

    /// Moves to the next (or previous) row that applies, wrapping around.
    pub fn move_by(&mut self, delta: isize) {
        let rows = ExportRow::ALL;
        let n = rows.len() as isize;
        let mut i = rows.iter().position(|r| *r == self.row).unwrap_or(0) as isize;
        for _ in 0..n {
            i = (i + delta.signum()).rem_euclid(n);
            if self.applies(rows[i as usize]) {
                self.row = rows[i as usize];
                return;
            }
        }
    }

    /// The next (or previous) value of the selected choice row, wrapping around.
    pub fn change(&mut self, up: bool) {
        fn step<T: Copy + PartialEq>(all: &[T], now: T, up: bool) -> T {
            let n = all.len();
            let i = all.iter().position(|x| *x == now).unwrap_or(0);
            all[if up { (i + 1) % n } else { (i + n - 1) % n }]
        }
        match self.row {
            ExportRow::Format => {
                self.format = step(&ExportFormat::ALL, self.format, up);
                self.name.set_placeholder(&format!(
                    "(default: {})",
                    default_name(&self.model, self.format)
                ));
            }
            ExportRow::Dtype => self.dtype = step(&ExportDtype::ALL, self.dtype, up),
            ExportRow::Quantize => {
                // `none`, then each quantization in llama.cpp's order.
                let all: Vec<Option<usize>> = std::iter::once(None)
                    .chain((0..GGUF_QUANTIZATIONS.len()).map(Some))
                    .collect();
                self.quantize = step(&all, self.quantize, up);
            }
            ExportRow::Ollama => self.ollama = !self.ollama,
            ExportRow::SystemPrompt | ExportRow::Name => {}
        }
        self.error = None;
    }

    /// A key while the dialog is open. Up and down (or tab) move between the rows that apply,
    /// left and right (or space) change a choice, letters type into the name and the system
    /// prompt, enter asks for the estimate, esc closes. While the estimate is asked for, only
    /// esc acts.
    pub fn key(&mut self, key: KeyEvent) -> ExportKey {
        if key.code == KeyCode::Esc {
            return ExportKey::Cancel;
        }
        if self.loading() {
            return ExportKey::Stay;
        }
        let text = self.row.is_text();
        match key.code {
            KeyCode::Enter => return self.plan(),
            KeyCode::Down | KeyCode::Tab => self.move_by(1),
            KeyCode::Up | KeyCode::BackTab => self.move_by(-1),
            KeyCode::Char('j') if !text => self.move_by(1),
            KeyCode::Char('k') if !text => self.move_by(-1),
            KeyCode::Char('q') if !text => return ExportKey::Cancel,
            KeyCode::Right | KeyCode::Char(' ') | KeyCode::Char('l') if !text => self.change(true),
            KeyCode::Left | KeyCode::Char('h') if !text => self.change(false),
            _ if text => {
                let input = match self.row {
                    ExportRow::Name => &mut self.name,
                    _ => &mut self.system_prompt,
                };
                if input.key(key) {
                    self.error = None;
                }
            }
            _ => {}
        }
        ExportKey::Stay
    }

    /// Pasted text, into the name or the system prompt.
    pub fn paste(&mut self, text: &str) {
        if self.loading() {
            return;
        }
        match self.row {
            ExportRow::Name => {
                self.name.paste(text);
            }
            ExportRow::SystemPrompt => {
                self.system_prompt.paste(text);
            }
            _ => {}
        }
    }

    /// Enter: the options, unless the name typed is one the engine refuses anyway (said in
    /// the dialog, nothing sent).
    fn plan(&mut self) -> ExportKey {
        let options = self.options();
        if let Some(name) = &options.name
            && !valid_export_name(name)
        {
            self.row = ExportRow::Name;
            self.error = Some(format!(
                "a name is 1 to {MAX_EXPORT_NAME} letters, digits, `.`, `_` or `-`, not starting with `.` or `-`"
            ));
            return ExportKey::Stay;
        }
        self.error = None;
        ExportKey::Plan(options)
    }

    /// The engine refused the dry run: its message is shown, on the row its field names.
    pub fn refused(&mut self, e: &ApiError) {
        self.planning = None;
        if let Some(row) = e.field.as_deref().and_then(ExportRow::of_field)
            && self.applies(row)
        {
            self.row = row;
        }
        self.error = Some(one_line(&e.message).into_owned());
    }

    /// `support-lora-2 v2` (the adapter exported).
    pub fn model_name(&self) -> String {
        format!("{} v{}", self.model.name, self.model.version)
    }
}

/// The name the engine gives an export asked for without one: `NAME-vN-FORMAT`, cut to the
/// characters and length an export name takes (as `brightrun models export` does).
pub fn default_name(model: &ModelArtifact, format: ExportFormat) -> String {
    let raw = format!("{}-v{}-{}", model.name, model.version, format.as_str());
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    name = name.trim_start_matches(['.', '-']).to_string();
    name.truncate(MAX_EXPORT_NAME);
    if name.is_empty() {
        format.as_str().to_string()
    } else {
        name
    }
}

/// What an export will make, in words: `GGUF f16 quantized q4_k_m, with an Ollama
/// Modelfile`, `merged bf16`.
pub fn export_wording(task: &ExportTask) -> String {
    let dtype = task.dtype.as_str();
    match (&task.quantize, task.ollama, task.format) {
        (Some(q), true, _) => format!("GGUF {dtype} quantized {q}, with an Ollama Modelfile"),
        (Some(q), false, _) => format!("GGUF {dtype} quantized {q}"),
        (None, true, _) => format!("GGUF {dtype}, with an Ollama Modelfile"),
        (None, false, ExportFormat::Gguf) => format!("GGUF {dtype}"),
        (None, false, ExportFormat::GgufLora) => format!("GGUF LoRA {dtype}"),
        (None, false, ExportFormat::Merged) => format!("merged {dtype}"),
    }
}

/// The minutes a planned job is expected to take (its estimated completion after queueing).
pub fn planned_minutes(plan: &TrainingJob) -> Option<f64> {
    plan.estimated_completion_at
        .map(|t| (t - plan.queued_at).num_seconds().max(0) as f64 / 60.0)
}

/// The confirmation's text for the engine's dry run of an export of `model`: what it makes,
/// where it runs, about what it costs and how long it takes.
pub fn plan_lines(model: &ModelArtifact, plan: &TrainingJob) -> Vec<String> {
    let mut lines = Vec::new();
    match plan.task.export() {
        Some(task) => {
            lines.push(format!(
                "Export {} v{} ({}) as {}, named {}.",
                model.name,
                model.version,
                model.base_model,
                export_wording(task),
                one_line(&task.name)
            ));
            if let Some(p) = &task.system_prompt {
                lines.push(format!(
                    "System prompt: {}",
                    format::truncate(&one_line(p), 120)
                ));
            }
        }
        None => lines.push(format!("Export {} v{}.", model.name, model.version)),
    }
    let g = &plan.gpu_config;
    let minutes = planned_minutes(plan)
        .map(|m| format!(" and {}", format::duration_secs((m * 60.0).round() as i64)))
        .unwrap_or_default();
    lines.push(format!(
        "On {} ({}×{}): about {}{minutes}.",
        one_line(&g.backend),
        g.gpu_count,
        one_line(&g.gpu_type),
        format::money(plan.estimated_cost)
    ));
    lines.push(
        "It is checked against base + adapter before it is stored, under the adapter.".into(),
    );
    lines.push("Queue the export?".into());
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crossterm::event::KeyModifiers;

    fn dialog() -> ExportDialog {
        ExportDialog::new(Arc::new(fixtures::artifact(2, 2, 2, 5, 60)))
    }

    fn press(d: &mut ExportDialog, code: KeyCode) -> ExportKey {
        d.key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    #[test]
    fn a_gguf_by_default_and_rows_that_do_not_apply_are_skipped() {
        let mut d = dialog();
        assert_eq!(d.options(), {
            let mut o = ExportOptions::new(ExportFormat::Gguf);
            o.dtype = Some(ExportDtype::F16);
            o
        });
        // The system prompt waits for the Modelfile.
        let mut seen = vec![d.row];
        for _ in 0..4 {
            d.move_by(1);
            seen.push(d.row);
        }
        assert_eq!(
            seen,
            [
                ExportRow::Format,
                ExportRow::Dtype,
                ExportRow::Quantize,
                ExportRow::Ollama,
                ExportRow::Name
            ]
        );
        // A merged export has no quantization nor Modelfile, whatever was chosen for a GGUF.
        d.row = ExportRow::Quantize;
        d.change(true);
        d.row = ExportRow::Ollama;
        d.change(true);
        assert_eq!(d.options().quantize.as_deref(), Some("q8_0"));
        assert!(d.options().ollama);
        d.row = ExportRow::Format;
        d.change(false);
        assert_eq!(d.format, ExportFormat::Merged);
        let o = d.options();
        assert_eq!((o.quantize, o.ollama), (None, false));
        d.move_by(1);
        d.move_by(1);
        assert_eq!(d.row, ExportRow::Name);
    }

    #[test]
    fn quantizations_cycle_through_none() {
        let mut d = dialog();
        d.row = ExportRow::Quantize;
        d.change(false);
        assert_eq!(d.value(ExportRow::Quantize), "q6_k");
        d.change(true);
        assert_eq!(d.value(ExportRow::Quantize), "none");
        for _ in 0..GGUF_QUANTIZATIONS.len() {
            d.change(true);
        }
        assert_eq!(d.value(ExportRow::Quantize), "q6_k");
    }

    #[test]
    fn letters_type_into_the_name_and_a_bad_name_is_refused_here() {
        let mut d = dialog();
        d.row = ExportRow::Name;
        for c in "my bot".chars() {
            assert_eq!(press(&mut d, KeyCode::Char(c)), ExportKey::Stay);
        }
        assert_eq!(d.name.text(), "my bot");
        assert_eq!(press(&mut d, KeyCode::Enter), ExportKey::Stay);
        assert!(d.error.as_deref().unwrap().starts_with("a name is 1 to 64"));
        for _ in 0..4 {
            press(&mut d, KeyCode::Backspace);
        }
        for c in "-bot".chars() {
            press(&mut d, KeyCode::Char(c));
        }
        match press(&mut d, KeyCode::Enter) {
            ExportKey::Plan(o) => assert_eq!(o.name.as_deref(), Some("my-bot")),
            other => panic!("expected a plan, got {other:?}"),
        }
        // While the estimate is asked for, the form holds still; esc still closes.
        d.planning = Some(3);
        press(&mut d, KeyCode::Char('x'));
        assert_eq!(d.name.text(), "my-bot");
        assert_eq!(press(&mut d, KeyCode::Esc), ExportKey::Cancel);
    }

    #[test]
    fn an_engine_error_names_its_row() {
        let mut d = dialog();
        d.planning = Some(1);
        d.refused(&ApiError::invalid("name", "export name `x y` must be…"));
        assert_eq!(d.row, ExportRow::Name);
        assert!(!d.loading());
        assert_eq!(d.error.as_deref(), Some("export name `x y` must be…"));
        // A field that does not apply now (or none) leaves the row.
        d.refused(&ApiError::invalid("system_prompt", "too long"));
        assert_eq!(d.row, ExportRow::Name);
    }

    #[test]
    fn the_default_name_is_the_engines() {
        let mut a = fixtures::artifact(2, 2, 2, 5, 60);
        assert_eq!(
            default_name(&a, ExportFormat::Gguf),
            "support-lora-2-v2-gguf"
        );
        a.name = ".my model/x".into();
        assert_eq!(
            default_name(&a, ExportFormat::GgufLora),
            "my-model-x-v2-gguf-lora"
        );
    }
}
