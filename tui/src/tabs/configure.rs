//! The Configure tab: dataset, preset, every hyperparameter (from the engine's
//! `training::ranges::FIELDS`, with live range checks), GPU type and count, backend. Each change
//! asks for a new estimate; answers to older requests are ignored.
//!
//! The training method comes first among the hyperparameters, then its own fields: only
//! those of the chosen method are shown, checked and sent (`ranges::applies`). The preset's
//! values follow the method (a preference run's presets train slower, on half the batch), as
//! the engine resolves them: the form always sends `method=…` for a preference method. A
//! dataset of preference pairs or KTO replies chooses a method that fits it while the user
//! has not chosen one; a method that does not fit the dataset is the method field's problem.

use super::{Component, Handled, TabHits};
use crate::action::Action;
use crate::context::{Cause, Confirmed, Overlay, PickTarget, Settings, Shared};
use crate::effect::{Effect, EstimateView, JobDraft, Level};
use crate::format;
use crate::input::Input;
use crate::state::Collection;
use crate::ui::{fit_line, kv, panel, wrap_all};
use brightrun_api::ApiError;
use brightrun_api::domain::*;
use brightrun_api::events::EngineEvent;
use brightrun_api::ids::{ArtifactId, DatasetId};
use brightrun_api::training::ranges::{self, FIELDS, FieldKind};
use brightrun_api::training::{GpuCatalog, GpuSpec, ModelSize, PresetInfo, models, presets};
use crossterm::event::KeyCode;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// One line of the form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormRow {
    Dataset,
    Preset,
    /// The model whose adapter the run starts from (none: a new adapter).
    FromModel,
    Field(usize),
    /// The base model's size, for a model the size table does not know.
    ParametersBillions,
    GpuType,
    GpuCount,
    Backend,
    /// Runs of a sweep that train at once (shown while a field holds a list).
    MaxParallel,
    /// What a sweep may spend at most (shown while a field holds a list).
    SweepBudget,
}

/// A model the run can start from, with its shape (what the form's fields follow).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelChoice {
    pub id: ArtifactId,
    pub name: String,
    pub base_model: String,
    pub created_at: Timestamp,
    /// Per field of `FIELDS` that training on from it keeps (the base model, the LoRA shape
    /// as far as its configuration says): its value.
    pub shape: Vec<(usize, String)>,
}

impl ModelChoice {
    pub fn of(a: &ModelArtifact) -> Self {
        let hp = &a.configuration.0["hyperparameters"];
        let mut shape = Vec::new();
        for (i, f) in FIELDS.iter().enumerate() {
            let v = match f.name {
                "base_model" => Some(a.base_model.clone()),
                "lora_rank" | "lora_alpha" => hp[f.name].as_u64().map(|n| n.to_string()),
                "target_modules" => hp[f.name].as_array().map(|m| {
                    m.iter()
                        .filter_map(|x| x.as_str())
                        .map(|x| crate::sanitize::one_line(x).into_owned())
                        .collect::<Vec<_>>()
                        .join(",")
                }),
                _ => None,
            };
            if let Some(v) = v {
                shape.push((i, v));
            }
        }
        ModelChoice {
            id: a.id,
            name: a.name.clone(),
            base_model: a.base_model.clone(),
            created_at: a.created_at,
            shape,
        }
    }
}

/// The form and its estimate: owned by the tab, filled from the Datasets tab by the app.
#[derive(Clone, Debug)]
pub struct ConfigureTab {
    pub dataset: Option<DatasetId>,
    /// Ready datasets, newest first: (id, name, examples).
    pub ready: Vec<(DatasetId, String, u64)>,
    /// The user's models, newest first: what a run can start from.
    pub models: Vec<ModelChoice>,
    /// The model the run starts from (`JobSpec.from_model`); none trains a new adapter.
    pub from_model: Option<ArtifactId>,
    pub presets: Vec<PresetInfo>,
    pub preset: usize,
    /// Per field of `FIELDS`: the text shown and edited, the preset's value, the problem.
    pub values: Vec<String>,
    pub base_values: Vec<String>,
    pub errors: Vec<Option<String>>,
    pub gpus: Vec<GpuSpec>,
    pub gpu: usize,
    pub gpu_count: String,
    pub gpu_count_error: Option<String>,
    pub backends: Vec<String>,
    pub backend: usize,
    pub row: usize,
    /// Scroll offset of the form (rows).
    pub offset: usize,
    pub editing: Option<Input>,
    /// The value before editing started (Esc restores it).
    pub edit_before: String,
    pub estimate: Option<Result<EstimateView, String>>,
    pub estimate_seq: u64,
    pub estimate_pending: bool,
    pub catalog_error: Option<String>,
    /// `parameters_billions` as typed (empty: the size table's).
    pub parameters_billions: String,
    pub parameters_billions_error: Option<String>,
    /// The base models whose size is known, for the base_model picker.
    pub base_models: Vec<ModelSize>,
    /// A sweep's runs at once, as typed (see [`super::configure_sweep`]).
    pub max_parallel: String,
    pub max_parallel_error: Option<String>,
    /// A sweep's budget in dollars, as typed (empty: none).
    pub sweep_budget: String,
    pub sweep_budget_error: Option<String>,
    /// The plan being asked for (its request), whose answer opens the confirmation.
    pub planning: Option<u64>,
    /// The formats of the ready datasets (which methods can train on them).
    pub formats: std::collections::HashMap<DatasetId, DatasetFormat>,
    /// Whether the user chose the method; until then a dataset of preference pairs or KTO
    /// replies chooses one that fits it.
    pub method_chosen: bool,
    /// The method the preset's values (`base_values`) are for.
    method_shown: MethodName,
}

/// The row of `base_model` in `FIELDS`.
fn base_model_field() -> Option<usize> {
    FIELDS.iter().position(|f| f.name == "base_model")
}

/// The row of `method` in `FIELDS`.
pub fn method_field() -> Option<usize> {
    FIELDS.iter().position(|f| f.name == "method")
}

/// Whether a field is one of the methods' own (`beta`, `lambda`, …).
fn is_method_field(name: &str) -> bool {
    MethodName::ALL
        .iter()
        .any(|m| ranges::method_fields(*m).contains(&name))
}

/// The method row's own few words when the method cannot train on the dataset.
fn short_method_hint(format: DatasetFormat, method: MethodName) -> Option<String> {
    let kind = DataKind::of(format);
    if method.data_kind() == kind {
        return None;
    }
    let fitting: Vec<&str> = MethodName::for_data(kind)
        .iter()
        .map(|m| m.as_str())
        .collect();
    let what = match kind {
        DataKind::Preference => "preference pairs",
        DataKind::Kto => "KTO data",
        DataKind::Supervised => "not preference data",
    };
    Some(format!("{what}: use {}", fitting.join("/")))
}

/// What the method field says when the method cannot train on the dataset: what the data
/// holds and which methods fit it (the engine refuses the pairing at estimate and create).
pub fn method_hint(dataset: &str, format: DatasetFormat, method: MethodName) -> Option<String> {
    let kind = DataKind::of(format);
    if method.data_kind() == kind {
        return None;
    }
    let fitting: Vec<&str> = MethodName::for_data(kind)
        .iter()
        .map(|m| m.as_str())
        .collect();
    let choose = match fitting.as_slice() {
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
        [] => String::new(),
    };
    let why = match method.data_kind() {
        DataKind::Supervised => format!(
            "sft would learn the {} replies too",
            if kind == DataKind::Kto {
                "undesirable"
            } else {
                "rejected"
            }
        ),
        DataKind::Kto => "kto trains on labelled replies, not pairs".to_string(),
        DataKind::Preference => format!("{} trains on pairs", method.as_str()),
    };
    Some(match kind {
        DataKind::Preference => format!(
            "{dataset} holds preference pairs (a chosen and a rejected reply): choose {choose} ({why})"
        ),
        DataKind::Kto => format!(
            "{dataset} holds replies labelled desirable or undesirable (KTO data): choose {choose} ({why})"
        ),
        DataKind::Supervised => {
            let (wants, data) = if method.data_kind() == DataKind::Kto {
                ("labelled replies", "KTO data")
            } else {
                ("preference pairs", "pairs")
            };
            format!(
                "method {} trains on {wants}, but {dataset} is {} file: choose {choose}, or a dataset of {data}",
                method.as_str(),
                format.label()
            )
        }
    })
}

impl ConfigureTab {
    pub fn new(settings: &Settings) -> Self {
        let training = &settings.config.training;
        // The engine's catalog when there is one (a daemon's presets are what it will use);
        // else the config the app was given (tests).
        let catalog = settings.catalog.clone();
        let (default_preset, default_gpu, default_gpu_count) = match &catalog {
            Some(c) => (
                c.default_preset.clone(),
                c.default_gpu.clone(),
                c.default_gpu_count,
            ),
            None => (
                training.default_preset.clone(),
                training.default_gpu.clone(),
                training.default_gpu_count,
            ),
        };
        // Preset and GPU names come from the user's config: cleaned like any outside text.
        let mut presets = match &catalog {
            Some(c) => c.presets.clone(),
            None => presets::list(training),
        };
        for p in &mut presets {
            crate::sanitize::clean_in_place(&mut p.name);
            crate::sanitize::clean_in_place(&mut p.description);
            crate::sanitize::clean_opt(&mut p.error);
        }
        let preset = presets
            .iter()
            .position(|p| p.name.eq_ignore_ascii_case(&default_preset))
            .unwrap_or(0);
        let mut base_models = match &catalog {
            Some(c) if !c.base_models.is_empty() => c.base_models.clone(),
            _ => models::builtin_all(),
        };
        for m in &mut base_models {
            crate::sanitize::clean_in_place(&mut m.id);
        }
        let (gpus, catalog_error) = match catalog {
            Some(c) => (c.gpus, c.gpu_error),
            None => match GpuCatalog::from_config(training) {
                Ok(c) => (c.all().to_vec(), None),
                Err(e) => (GpuCatalog::builtin().all().to_vec(), Some(e.to_string())),
            },
        };
        let mut gpus = gpus;
        for g in &mut gpus {
            crate::sanitize::clean_in_place(&mut g.id);
            crate::sanitize::clean_in_place(&mut g.name);
        }
        let gpu = gpus
            .iter()
            .position(|g| g.id.eq_ignore_ascii_case(&default_gpu))
            .unwrap_or(0);
        let mut s = ConfigureTab {
            dataset: None,
            ready: Vec::new(),
            models: Vec::new(),
            from_model: None,
            presets,
            preset,
            values: Vec::new(),
            base_values: Vec::new(),
            errors: vec![None; FIELDS.len()],
            gpus,
            gpu,
            gpu_count: default_gpu_count.to_string(),
            gpu_count_error: None,
            backends: settings.backends.clone(),
            backend: 0,
            row: 0,
            offset: 0,
            editing: None,
            edit_before: String::new(),
            estimate: None,
            estimate_seq: 0,
            estimate_pending: false,
            catalog_error,
            parameters_billions: String::new(),
            parameters_billions_error: None,
            base_models,
            max_parallel: super::configure_sweep::DEFAULT_MAX_PARALLEL.to_string(),
            max_parallel_error: None,
            sweep_budget: String::new(),
            sweep_budget_error: None,
            planning: None,
            formats: Default::default(),
            method_chosen: false,
            method_shown: MethodName::Sft,
        };
        s.load_preset();
        s
    }

    /// The method the form trains with (its field's value; sft when it does not read).
    pub fn method(&self) -> MethodName {
        method_field()
            .and_then(|i| self.values.get(i))
            .and_then(|v| v.parse().ok())
            .unwrap_or(MethodName::Sft)
    }

    /// Whether field `i` applies to the chosen method (the other methods' fields do not:
    /// they are neither shown, nor checked, nor sent).
    pub fn applies(&self, i: usize) -> bool {
        ranges::applies(FIELDS[i].name, self.method())
    }

    /// The preset's values for a run of `method`, as the engine resolved them (its catalog
    /// carries each preset's preference values); from an engine that does not, the catalog's
    /// values with the method's defaults (the estimate is the engine's all the same).
    pub fn preset_for(&self, method: MethodName) -> Hyperparameters {
        let p = &self.presets[self.preset];
        p.values_for(method).unwrap_or_else(|| {
            let mut hp = p.hyperparameters.clone();
            hp.method = method.with_defaults();
            hp
        })
    }

    /// The preset's values for the form's method as the fields' base values; the method's
    /// own base is the preset's method (so another method is a change, and is sent).
    fn fill_base(&mut self, method: MethodName) {
        let hp = self.preset_for(method);
        self.base_values = FIELDS
            .iter()
            .map(|f| ranges::get(&hp, f.name).unwrap_or_default())
            .collect();
        if let Some(m) = method_field() {
            self.base_values[m] = self.presets[self.preset]
                .hyperparameters
                .method
                .name()
                .as_str()
                .to_string();
        }
        self.method_shown = method;
    }

    /// After the method changed: the preset's values for it. Fields the user changed keep
    /// their values; the method's own fields start from its defaults.
    fn sync_method(&mut self) {
        let method = self.method();
        if method == self.method_shown || self.values.is_empty() {
            return;
        }
        let before = self.base_values.clone();
        self.fill_base(method);
        for (i, f) in FIELDS.iter().enumerate() {
            if f.name == "method" {
                continue;
            }
            if is_method_field(f.name) || self.values[i] == before[i] {
                self.values[i] = self.base_values[i].clone();
            }
        }
        self.apply_model_shape();
    }

    /// Sets the method (as the user's choice or not) and follows it.
    pub fn set_method(&mut self, method: MethodName, chosen: bool) {
        if let Some(m) = method_field() {
            self.values[m] = method.as_str().to_string();
        }
        self.method_chosen |= chosen;
        self.sync_method();
    }

    /// The chosen dataset's format, when known.
    pub fn dataset_format(&self) -> Option<DatasetFormat> {
        self.dataset.and_then(|d| self.formats.get(&d).copied())
    }

    /// While the user has not chosen a method, the one the dataset's data fits: the first of
    /// dpo (pairs) or kto (labelled replies), sft otherwise. True when the method changed.
    fn fit_method_to_dataset(&mut self) -> bool {
        if self.method_chosen {
            return false;
        }
        let Some(format) = self.dataset_format() else {
            return false;
        };
        let kind = DataKind::of(format);
        if self.method().data_kind() == kind {
            return false;
        }
        let Some(fit) = MethodName::for_data(kind).first().copied() else {
            return false;
        };
        self.set_method(fit, false);
        true
    }

    /// The method field's hint when the method cannot train on the chosen dataset.
    pub fn method_mismatch(&self) -> Option<String> {
        let format = self.dataset_format()?;
        let name = self
            .dataset
            .and_then(|d| self.ready.iter().find(|r| r.0 == d))
            .map_or_else(|| "this dataset".to_string(), |r| r.1.clone());
        method_hint(&name, format, self.method())
    }

    /// Every row of the form, in order.
    pub fn rows(&self) -> Vec<FormRow> {
        let mut r = vec![FormRow::Dataset, FormRow::Preset, FormRow::FromModel];
        for i in 0..FIELDS.len() {
            // Another method's own fields are not this run's.
            if !self.applies(i) {
                continue;
            }
            r.push(FormRow::Field(i));
            if Some(i) == base_model_field() {
                r.push(FormRow::ParametersBillions);
            }
        }
        r.extend([FormRow::GpuType, FormRow::GpuCount, FormRow::Backend]);
        // A sweep's own settings, once a field holds a list (last, so rows above keep their
        // places).
        if self.is_sweep() {
            r.extend([FormRow::MaxParallel, FormRow::SweepBudget]);
        }
        r
    }

    pub fn current_row(&self) -> FormRow {
        let rows = self.rows();
        rows[self.row.min(rows.len() - 1)]
    }

    /// Fills the fields with the chosen preset's values for the form's method (a new form:
    /// the preset's own method).
    fn load_preset(&mut self) {
        let method = if self.values.is_empty() {
            self.presets[self.preset].hyperparameters.method.name()
        } else {
            self.method()
        };
        self.fill_base(method);
        self.values = self.base_values.clone();
        if let Some(m) = method_field() {
            self.values[m] = method.as_str().to_string();
        }
        self.errors = vec![None; FIELDS.len()];
        self.apply_model_shape();
    }

    /// The model the run starts from, if one is chosen (and still there).
    pub fn chosen_model(&self) -> Option<&ModelChoice> {
        let id = self.from_model?;
        self.models.iter().find(|m| m.id == id)
    }

    /// The chosen model's base model and LoRA shape become the fields' values, and what
    /// they are compared with (the engine keeps them: they are no change).
    fn apply_model_shape(&mut self) {
        let Some(m) = self.chosen_model() else {
            return;
        };
        let shape = m.shape.clone();
        for (i, v) in shape {
            self.base_values[i] = v.clone();
            self.values[i] = v;
        }
        // A known model's size comes from the table; the model's run had its own.
        self.parameters_billions.clear();
    }

    /// Starts the run from this model (none: a new adapter). The fields the model set go
    /// back to the preset's; the new model's shape is set.
    pub fn set_from_model(&mut self, id: Option<ArtifactId>) {
        if let Some(old) = self.chosen_model().map(|m| m.shape.clone()) {
            self.unset_shape(&old);
        }
        self.from_model = id;
        self.apply_model_shape();
    }

    /// The fields a model's shape set go back to the preset's values.
    fn unset_shape(&mut self, shape: &[(usize, String)]) {
        let hp = self.preset_for(self.method());
        for (i, _) in shape {
            let v = ranges::get(&hp, FIELDS[*i].name).unwrap_or_default();
            self.base_values[*i] = v.clone();
            self.values[*i] = v;
        }
    }

    /// The user's models, newest first. True when the chosen one is gone (deleted): the run
    /// then starts afresh, and the form must be estimated again.
    pub fn sync_models(&mut self, artifacts: &Collection<ModelArtifact>) -> bool {
        let mut models: Vec<&std::sync::Arc<ModelArtifact>> = artifacts
            .items()
            .iter()
            // Training goes on from an adapter; an export (merged, GGUF) has none to load.
            .filter(|a| a.deleted_at.is_none() && a.kind == ModelKind::Adapter)
            .collect();
        models.sort_by_key(|a| std::cmp::Reverse(a.created_at));
        let before = self.chosen_model().map(|m| m.shape.clone());
        self.models = models.into_iter().map(|a| ModelChoice::of(a)).collect();
        match before {
            Some(shape) if self.chosen_model().is_none() => {
                self.unset_shape(&shape);
                self.from_model = None;
                true
            }
            _ => false,
        }
    }

    /// The ready datasets, newest first; the first is chosen when none is (with a method that
    /// fits it, while the user has not chosen one).
    pub fn sync_datasets(&mut self, datasets: &Collection<Dataset>) {
        let mut ready: Vec<&std::sync::Arc<Dataset>> = datasets
            .items()
            .iter()
            .filter(|d| d.status == DatasetStatus::Ready && d.training_ready)
            .collect();
        ready.sort_by_key(|d| std::cmp::Reverse(d.created_at));
        self.formats = ready
            .iter()
            .filter_map(|d| Some((d.id, d.format?)))
            .collect();
        self.ready = ready
            .iter()
            .map(|d| {
                (
                    d.id,
                    d.name.clone(),
                    d.statistics.as_ref().map(|s| s.total_examples).unwrap_or(0),
                )
            })
            .collect();
        if self.dataset.is_none() {
            self.dataset = self.ready.first().map(|r| r.0);
            if self.fit_method_to_dataset() {
                self.recheck();
            }
        }
    }

    /// Re-checks every field against its range; returns whether all are fine.
    pub fn recheck(&mut self) -> bool {
        self.sync_method();
        let mut hp = self.preset_for(self.method());
        self.errors = vec![None; FIELDS.len()];
        if let Some(m) = self.chosen_model() {
            for (i, v) in &m.shape {
                let _ = ranges::set(&mut hp, FIELDS[*i].name, v);
            }
        }
        for (i, f) in FIELDS.iter().enumerate() {
            if self.values[i] == self.base_values[i] || !self.applies(i) {
                continue;
            }
            // A list is checked value by value; the first stands for it in the checks
            // across fields (the engine checks every combination when it plans).
            if let Some(values) = self.list_at(i) {
                self.errors[i] = super::configure_sweep::list_error(&hp, f.name, &values);
            }
            if self.errors[i].is_none()
                && let Err(e) = ranges::set(&mut hp, f.name, &self.field_value(i))
            {
                self.errors[i] = Some(e.to_string());
            }
        }
        self.check_sweep();
        // Training on from a model keeps its shape: the engine would refuse a change.
        if let Some(m) = self.chosen_model().cloned() {
            for (i, v) in &m.shape {
                if self.errors[*i].is_none() && self.values[*i].trim() != v.trim() {
                    self.errors[*i] = Some(format!(
                        "{} {} differs from model {}'s {v}: training on from a model keeps its base model and LoRA shape (set from_model to none to train afresh)",
                        FIELDS[*i].name,
                        self.values[*i].trim(),
                        m.name
                    ));
                }
            }
        }
        if let Err(errs) = ranges::check(&hp) {
            for e in errs {
                if let Some(i) = FIELDS.iter().position(|f| f.name == e.field)
                    && self.errors[i].is_none()
                {
                    self.errors[i] = Some(e.to_string());
                }
            }
        }
        // A method that cannot train on the dataset (the engine would refuse it).
        if let Some(m) = method_field()
            && self.errors[m].is_none()
        {
            self.errors[m] = self.method_mismatch();
        }
        self.parameters_billions_error = match self.parameters_billions.trim() {
            "" => None,
            v => models::parse_parameters_billions(v)
                .err()
                .map(|e| e.to_string()),
        };
        self.gpu_count_error = match self.gpu_count.trim().parse::<u32>() {
            Ok(n) => ranges::check_gpu_count(n).err().map(|e| e.to_string()),
            Err(_) => Some(format!(
                "gpu_count = {:?} is not a whole number (1..=8)",
                self.gpu_count
            )),
        };
        self.errors.iter().all(Option::is_none)
            && self.gpu_count_error.is_none()
            && self.parameters_billions_error.is_none()
            && self.max_parallel_error.is_none()
            && self.sweep_budget_error.is_none()
    }

    /// The first problem, for the status bar.
    pub fn first_error(&self) -> Option<String> {
        self.errors
            .iter()
            .flatten()
            .next()
            .cloned()
            .or_else(|| self.parameters_billions_error.clone())
            .or_else(|| self.gpu_count_error.clone())
            .or_else(|| self.max_parallel_error.clone())
            .or_else(|| self.sweep_budget_error.clone())
    }

    /// The base model as typed.
    fn base_model(&self) -> &str {
        base_model_field()
            .map(|i| self.values[i].trim())
            .unwrap_or_default()
    }

    /// The size table's entry for the base model, if it has one.
    fn known_model(&self) -> Option<&ModelSize> {
        let key = models::normalize(self.base_model());
        self.base_models.iter().find(|m| {
            m.id.eq_ignore_ascii_case(self.base_model()) || models::normalize(&m.id) == key
        })
    }

    /// The job the form asks for. A field that holds a list (a sweep) gives its first value:
    /// the estimate shown is the first run's.
    pub fn draft(&self) -> Option<JobDraft> {
        let dataset_id = self.dataset?;
        // The method first (`FIELDS` starts with it), always for a preference method: the
        // engine resolves the preset's values for it. Other methods' fields are not sent.
        let preference = self.method() != MethodName::Sft;
        let mut sets: Vec<(String, String)> = FIELDS
            .iter()
            .enumerate()
            .filter(|(i, f)| {
                self.applies(*i)
                    && (self.values[*i] != self.base_values[*i]
                        || (preference && f.name == "method"))
            })
            .map(|(i, f)| (f.name.to_string(), self.field_value(i)))
            .collect();
        if !self.parameters_billions.trim().is_empty() {
            sets.push((
                "parameters_billions".into(),
                self.parameters_billions.trim().to_string(),
            ));
        }
        Some(JobDraft {
            dataset_id,
            preset: self.presets[self.preset].name.clone(),
            sets,
            gpu_type: self.gpus.get(self.gpu).map(|g| g.id.clone()),
            gpu_count: self.gpu_count.trim().parse().ok(),
            backend: self.backends.get(self.backend).cloned(),
            from_model: self.chosen_model().map(|m| m.id),
        })
    }

    pub fn estimate_done(&mut self, seq: u64, result: Result<EstimateView, ApiError>) {
        if seq == self.estimate_seq {
            let clean = |s: &mut String| {
                *s = crate::sanitize::one_line(s).into_owned();
            };
            let result = result
                .map(|mut e| {
                    clean(&mut e.fit);
                    clean(&mut e.throughput_note);
                    e.fit_advice.iter_mut().for_each(clean);
                    if let Some(b) = &mut e.budget {
                        clean(b);
                    }
                    e
                })
                .map_err(|e| crate::sanitize::one_line(&e.message).into_owned());
            self.estimate = Some(result);
            self.estimate_pending = false;
        }
    }

    /// The text of a row's value.
    pub fn value_of(&self, row: FormRow, dataset_name: impl Fn(DatasetId) -> String) -> String {
        match row {
            FormRow::Dataset => match self.dataset {
                Some(id) => dataset_name(id),
                None if self.ready.is_empty() => {
                    "(no ready dataset: add one on the Datasets tab)".into()
                }
                None => "(choose)".into(),
            },
            FormRow::Preset => {
                let p = &self.presets[self.preset];
                p.name.clone()
            }
            FormRow::FromModel => match self.chosen_model() {
                Some(m) => format!("{} ({})", m.name, m.base_model),
                None if self.models.is_empty() => "(none: no models yet)".into(),
                None => "(none: a new adapter)".into(),
            },
            FormRow::Field(i) => self.values[i].clone(),
            FormRow::ParametersBillions => {
                if !self.parameters_billions.trim().is_empty() {
                    self.parameters_billions.clone()
                } else if let Some(m) = self.known_model() {
                    format!("(known: {:.2}B)", m.parameters_billions())
                } else {
                    "(unknown: type size)".into()
                }
            }
            FormRow::GpuType => self
                .gpus
                .get(self.gpu)
                .map(|g| {
                    if g.local {
                        // `your machine: CPU (16 cores)`: the id is `local`.
                        g.name.clone()
                    } else {
                        format!(
                            "{} ({:.0} GB, ${:.2}/h)",
                            g.id, g.memory_gb, g.price_per_hour
                        )
                    }
                })
                .unwrap_or_default(),
            FormRow::GpuCount => self.gpu_count.clone(),
            FormRow::Backend => self.backends.get(self.backend).cloned().unwrap_or_default(),
            FormRow::MaxParallel => self.max_parallel.clone(),
            FormRow::SweepBudget if self.sweep_budget.trim().is_empty() => {
                "(none: the monthly budget only)".into()
            }
            FormRow::SweepBudget => self.sweep_budget.clone(),
        }
    }

    pub fn label_of(row: FormRow) -> &'static str {
        match row {
            FormRow::Dataset => "dataset",
            FormRow::Preset => "preset",
            FormRow::FromModel => "from_model",
            FormRow::Field(i) => FIELDS[i].name,
            FormRow::ParametersBillions => "parameters_billions",
            FormRow::GpuType => "gpu_type",
            FormRow::GpuCount => "gpu_count",
            FormRow::Backend => "backend",
            FormRow::MaxParallel => "max_parallel",
            FormRow::SweepBudget => "sweep_budget",
        }
    }

    pub fn help_of(&self, row: FormRow) -> String {
        match row {
            FormRow::Dataset => "The ready dataset to train on (enter picks, ←/→ cycle).".into(),
            FormRow::Preset => {
                let p = &self.presets[self.preset];
                let mut s = format!("{}: {}", p.name, p.description);
                if let Some(e) = &p.error {
                    s.push_str(&format!(" ({e})"));
                }
                s
            }
            FormRow::FromModel => match self.chosen_model() {
                Some(m) => format!(
                    "The run starts from model {}'s adapter and keeps its base model ({}) and LoRA shape: those fields follow it. none trains a new adapter (enter picks, ←/→ cycle).",
                    m.name, m.base_model
                ),
                None => "Train on from one of your models: the run starts from its adapter, keeping its base model and LoRA shape (the fields follow it). none trains a new adapter (enter picks, ←/→ cycle).".into(),
            },
            FormRow::Field(i) if Some(i) == method_field() => format!(
                "{} Its own fields follow it, and the preset's values are for it (a preference run's learning rate is lower and its batch half). Allowed: {}.",
                FIELDS[i].help,
                FIELDS[i].range.replace('|', ", ")
            ),
            FormRow::Field(i) if Some(i) == base_model_field() => format!(
                "{} Allowed: {}. ←/→ list the {} models whose size is known; any other id needs parameters_billions.",
                FIELDS[i].help,
                FIELDS[i].range,
                self.base_models.len()
            ),
            FormRow::Field(i) => format!(
                "{} Allowed: {}.{}",
                FIELDS[i].help,
                brightrun_api::training::ranges::readable_range(FIELDS[i].range),
                if super::configure_sweep::listable(FIELDS[i].kind) {
                    " Several values separated by commas sweep it: one run for each."
                } else {
                    ""
                }
            ),
            FormRow::ParametersBillions => "The base model's size in billions of parameters (7 for a 7B model, 0.5 or 500m), for a model the size table does not know; empty uses the table's. It sizes the memory fit and the throughput.".into(),
            FormRow::GpuType => {
                "GPU type from the catalog (config can override and extend it); `local` is this machine, at [backends.local] price_per_hour.".into()
            }
            FormRow::GpuCount => "GPUs for the run. Allowed: 1 to 8.".into(),
            FormRow::Backend => "Where the job runs: local (this machine) or a [backends.NAME] entry (a Ray cluster, a RunPod endpoint); the picker shows which answer.".into(),
            FormRow::MaxParallel => format!(
                "Runs of the sweep that train at once (1 to {}): the sweep's total time follows it.",
                brightrun_api::domain::MAX_SWEEP_PARALLEL
            ),
            FormRow::SweepBudget => "The most the sweep may spend, in US dollars: a run that could take it past this never starts. Empty: no limit but the monthly budget.".into(),
        }
    }

    pub fn error_of(&self, row: FormRow) -> Option<&String> {
        match row {
            FormRow::Field(i) => self.errors[i].as_ref(),
            FormRow::GpuCount => self.gpu_count_error.as_ref(),
            FormRow::ParametersBillions => self.parameters_billions_error.as_ref(),
            FormRow::MaxParallel => self.max_parallel_error.as_ref(),
            FormRow::SweepBudget => self.sweep_budget_error.as_ref(),
            _ => None,
        }
    }
}

fn cycle(i: usize, n: usize, forward: bool) -> usize {
    if n == 0 {
        0
    } else if forward {
        (i + 1) % n
    } else {
        (i + n - 1) % n
    }
}

impl ConfigureTab {
    /// Re-checks the form and asks for a new estimate when it is valid.
    pub fn changed(&mut self) -> Vec<Effect> {
        let ok = self.recheck();
        // The sweep's rows go when no field holds a list any more.
        self.row = self.row.min(self.rows().len() - 1);
        let c = self;
        if !ok {
            c.estimate = Some(Err(c.first_error().unwrap_or_default()));
            c.estimate_pending = false;
            return Vec::new();
        }
        match c.draft() {
            Some(draft) => {
                c.estimate_seq += 1;
                c.estimate_pending = true;
                vec![Effect::Estimate {
                    seq: c.estimate_seq,
                    draft,
                }]
            }
            None => {
                c.estimate = None;
                Vec::new()
            }
        }
    }

    fn handle_form(&mut self, action: &Action, s: &mut Shared) -> Handled {
        let n = self.rows().len();
        let row = self.current_row();
        match action {
            Action::Up => self.row = self.row.saturating_sub(1),
            Action::Down => self.row = (self.row + 1).min(n - 1),
            Action::PageUp => self.row = self.row.saturating_sub(10),
            Action::PageDown => self.row = (self.row + 10).min(n - 1),
            Action::Top => self.row = 0,
            Action::Bottom => self.row = n - 1,
            // On base_model, ←/→ list the models whose size is known (enter types any id).
            Action::Left | Action::Right if matches!(row, FormRow::Field(i) if Some(i) == base_model_field()) =>
            {
                self.pick_base_model(s);
            }
            Action::Left | Action::Right => {
                return Handled::Consumed(self.cycle_value(row, *action == Action::Right));
            }
            Action::Open => return Handled::Consumed(self.open(row, s)),
            Action::Submit => return Handled::Consumed(self.submit(s)),
            Action::Back => {}
            _ => return Handled::Ignored,
        }
        Handled::done()
    }

    /// The picker of the base models whose size is known; its last entry types another id.
    fn pick_base_model(&mut self, s: &mut Shared) {
        s.overlay = Some(self.base_model_picker(
            self.base_model(),
            "Base model (size known)",
            PickTarget::BaseModel,
        ));
    }

    /// The base-model picker (the known models, then "type another id…"), with `current`
    /// chosen: the form's, and the Inspect view's (which picks with it too).
    pub fn base_model_picker(&self, current: &str, title: &str, target: PickTarget) -> Overlay {
        let mut options: Vec<String> = self
            .base_models
            .iter()
            .map(|m| format!("{:<36} {:>7.2}B", m.id, m.parameters_billions()))
            .collect();
        options.push("(type another id…)".into());
        let selected = self
            .base_models
            .iter()
            .position(|m| m.id.eq_ignore_ascii_case(current.trim()))
            .unwrap_or(options.len() - 1);
        Overlay::Pick {
            title: title.into(),
            options,
            selected,
            target,
            filter: None,
        }
    }

    /// The base model at `index` of [`ConfigureTab::base_model_picker`]'s list (none for
    /// "type another id…").
    pub fn base_model_at(&self, index: usize) -> Option<&str> {
        self.base_models.get(index).map(|m| m.id.as_str())
    }

    /// What the Inspect view starts with: the form's base model (else the config's default)
    /// and its max_seq_length when it is a valid one (else none: the engine's default).
    pub fn inspect_defaults(&self, settings: &Settings) -> (String, Option<u32>) {
        let model = match self.base_model() {
            "" => settings.config.training.default_base_model.clone(),
            m => m.to_string(),
        };
        let max_seq_length = FIELDS
            .iter()
            .position(|f| f.name == "max_seq_length")
            .filter(|&i| self.errors[i].is_none())
            .and_then(|i| self.values[i].trim().parse::<u32>().ok());
        (model, max_seq_length)
    }

    /// `/` on the form: goes to the first row whose name contains `text` (any case).
    pub fn find_row(&mut self, text: &str) {
        let q = text.trim().to_ascii_lowercase();
        if q.is_empty() {
            return;
        }
        if let Some(i) = self
            .rows()
            .iter()
            .position(|r| ConfigureTab::label_of(*r).contains(q.as_str()))
        {
            self.row = i;
        }
    }

    /// The Datasets tab's "train on this": the dataset goes into the form, which starts over
    /// at its first row.
    pub fn train_on(&mut self, dataset: DatasetId) -> Vec<Effect> {
        self.dataset = Some(dataset);
        self.fit_method_to_dataset();
        self.row = 0;
        self.changed()
    }

    fn cycle_value(&mut self, row: FormRow, forward: bool) -> Vec<Effect> {
        let c = &mut *self;
        if matches!(row, FormRow::Field(i) if Some(i) == method_field()) {
            c.method_chosen = true;
        }
        match row {
            FormRow::Dataset => {
                if c.ready.is_empty() {
                    return Vec::new();
                }
                let i = c
                    .dataset
                    .and_then(|d| c.ready.iter().position(|r| r.0 == d));
                let next = match i {
                    Some(i) => cycle(i, c.ready.len(), forward),
                    None => 0,
                };
                c.dataset = Some(c.ready[next].0);
                c.fit_method_to_dataset();
            }
            FormRow::Preset => {
                c.preset = cycle(c.preset, c.presets.len(), forward);
                c.load_preset();
            }
            FormRow::FromModel => {
                // 0 is none, then the models.
                let at = c
                    .chosen_model()
                    .and_then(|m| c.models.iter().position(|x| x.id == m.id))
                    .map_or(0, |i| i + 1);
                let next = cycle(at, c.models.len() + 1, forward);
                let id = next.checked_sub(1).map(|i| c.models[i].id);
                c.set_from_model(id);
            }
            FormRow::GpuType => c.gpu = cycle(c.gpu, c.gpus.len(), forward),
            FormRow::GpuCount => {
                let n: u32 = c.gpu_count.trim().parse().unwrap_or(1);
                let (lo, hi) = ranges::GPU_COUNT;
                let n = if forward {
                    (n + 1).min(hi)
                } else {
                    n.saturating_sub(1).max(lo)
                };
                c.gpu_count = n.to_string();
            }
            FormRow::Backend => c.backend = cycle(c.backend, c.backends.len(), forward),
            FormRow::MaxParallel => c.step_max_parallel(forward),
            FormRow::SweepBudget => return Vec::new(),
            FormRow::Field(i) => match FIELDS[i].kind {
                FieldKind::Bool => {
                    let on = matches!(c.values[i].as_str(), "true" | "yes" | "on" | "1");
                    c.values[i] = (!on).to_string();
                }
                FieldKind::Choice(options) => {
                    let at = options.iter().position(|o| *o == c.values[i]).unwrap_or(0);
                    c.values[i] = options[cycle(at, options.len(), forward)].to_string();
                }
                _ => return Vec::new(),
            },
            FormRow::ParametersBillions => return Vec::new(),
        }
        self.changed()
    }

    fn open(&mut self, row: FormRow, s: &mut Shared) -> Vec<Effect> {
        let c = &*self;
        let pick = |title: &str, options: Vec<String>, selected: usize, target: PickTarget| {
            Overlay::Pick {
                title: title.into(),
                options,
                selected,
                target,
                filter: None,
            }
        };
        let overlay = match row {
            FormRow::Dataset => {
                if c.ready.is_empty() {
                    s.notify_user(
                        "no ready dataset yet: add one on the Datasets tab",
                        Level::Info,
                    );
                    return Vec::new();
                }
                let sel = c
                    .dataset
                    .and_then(|d| c.ready.iter().position(|r| r.0 == d))
                    .unwrap_or(0);
                pick(
                    "Dataset",
                    c.ready
                        .iter()
                        .map(|(_, n, ex)| {
                            format!("{n}  ({})", crate::format::plural(*ex, "example"))
                        })
                        .collect(),
                    sel,
                    PickTarget::Dataset,
                )
            }
            FormRow::FromModel => {
                if c.models.is_empty() {
                    s.notify_user("no models yet: a completed job makes one", Level::Info);
                    return Vec::new();
                }
                let mut options = vec!["(none: a new adapter)".to_string()];
                options.extend(c.models.iter().map(|m| {
                    format!(
                        "{:<24} {}  {}",
                        m.name,
                        m.base_model,
                        format::date(m.created_at)
                    )
                }));
                let at = c
                    .chosen_model()
                    .and_then(|m| c.models.iter().position(|x| x.id == m.id))
                    .map_or(0, |i| i + 1);
                pick("Train on from model", options, at, PickTarget::FromModel)
            }
            FormRow::Preset => pick(
                "Preset",
                c.presets
                    .iter()
                    .map(|p| format!("{:<10} {}", p.name, p.description))
                    .collect(),
                c.preset,
                PickTarget::Preset,
            ),
            FormRow::GpuType => pick(
                "GPU type",
                c.gpus
                    .iter()
                    .map(|g| {
                        format!(
                            "{:<10} {:>4.0} GB  ${:.2}/h  {}",
                            g.id, g.memory_gb, g.price_per_hour, g.name
                        )
                    })
                    .collect(),
                c.gpu,
                PickTarget::Gpu,
            ),
            // Each backend with whether it answers (the engine's latest health verdict).
            FormRow::Backend => pick(
                "Backend",
                c.backends
                    .iter()
                    .map(|b| {
                        let mark = match s.health_now(b) {
                            Some(true) => "● answers",
                            Some(false) => "✗ unreachable",
                            None if s.settings.reconnecting => "○ unknown (reconnecting)",
                            None => "○ not checked yet",
                        };
                        format!("{b:<20} {mark}")
                    })
                    .collect(),
                c.backend,
                PickTarget::Backend,
            ),
            FormRow::Field(i) if matches!(FIELDS[i].kind, FieldKind::Choice(_)) => {
                let FieldKind::Choice(options) = FIELDS[i].kind else {
                    unreachable!()
                };
                let at = options.iter().position(|o| *o == c.values[i]).unwrap_or(0);
                pick(
                    FIELDS[i].name,
                    options.iter().map(|s| s.to_string()).collect(),
                    at,
                    PickTarget::Field(i),
                )
            }
            FormRow::Field(i) if FIELDS[i].kind == FieldKind::Bool => {
                return self.cycle_value(row, true);
            }
            FormRow::Field(i) => {
                let v = c.values[i].clone();
                self.edit_before = v.clone();
                self.editing = Some(Input::new(&v));
                return Vec::new();
            }
            FormRow::GpuCount => {
                let v = c.gpu_count.clone();
                self.edit_before = v.clone();
                self.editing = Some(Input::new(&v));
                return Vec::new();
            }
            FormRow::ParametersBillions => {
                let v = c.parameters_billions.clone();
                self.edit_before = v.clone();
                self.editing = Some(Input::new(&v));
                return Vec::new();
            }
            FormRow::MaxParallel | FormRow::SweepBudget => {
                let v = match row {
                    FormRow::MaxParallel => c.max_parallel.clone(),
                    _ => c.sweep_budget.clone(),
                };
                self.edit_before = v.clone();
                self.editing = Some(Input::new(&v));
                return Vec::new();
            }
        };
        s.overlay = Some(overlay);
        Vec::new()
    }

    pub fn picked(&mut self, target: PickTarget, index: usize) -> Vec<Effect> {
        let c = &mut *self;
        match target {
            PickTarget::Dataset => {
                c.dataset = c.ready.get(index).map(|r| r.0);
                c.fit_method_to_dataset();
            }
            PickTarget::Preset => {
                c.preset = index.min(c.presets.len().saturating_sub(1));
                c.load_preset();
            }
            PickTarget::FromModel => {
                let id = index
                    .checked_sub(1)
                    .and_then(|i| c.models.get(i))
                    .map(|m| m.id);
                c.set_from_model(id);
            }
            PickTarget::Gpu => c.gpu = index.min(c.gpus.len().saturating_sub(1)),
            PickTarget::Backend => c.backend = index.min(c.backends.len().saturating_sub(1)),
            PickTarget::Field(i) => {
                if let FieldKind::Choice(options) = FIELDS[i].kind
                    && let Some(o) = options.get(index)
                {
                    c.values[i] = o.to_string();
                    if Some(i) == method_field() {
                        c.method_chosen = true;
                    }
                }
            }
            PickTarget::BaseModel => {
                let Some(f) = base_model_field() else {
                    return Vec::new();
                };
                match c.base_models.get(index) {
                    Some(m) => {
                        c.values[f] = m.id.clone();
                        // A known model's size comes from the table.
                        c.parameters_billions.clear();
                    }
                    None => {
                        // Type another id: edit the field in place.
                        let v = c.values[f].clone();
                        c.edit_before = v.clone();
                        c.editing = Some(Input::new(&v));
                        return Vec::new();
                    }
                }
            }
            // The Inspect view's picker is the app's to answer.
            PickTarget::InspectModel(_) => return Vec::new(),
        }
        self.changed()
    }

    /// The base model's id being typed, starting from `typed` (the picker's filter, when
    /// "type another id…" was chosen from it); Esc goes back to the id before.
    pub fn type_base_model(&mut self, typed: &str) -> Vec<Effect> {
        let Some(f) = base_model_field() else {
            return Vec::new();
        };
        self.values[f] = typed.to_string();
        self.editing = Some(Input::new(typed));
        self.changed()
    }

    /// Keys while a field is being edited: every change is checked and re-estimated.
    fn edit(&mut self, action: &Action, s: &mut Shared) -> Vec<Effect> {
        let row = self.current_row();
        let Some(mut input) = self.editing.take() else {
            return Vec::new();
        };
        let changed = match action {
            Action::Input(k) => match k.code {
                KeyCode::Esc => {
                    let before = self.edit_before.clone();
                    self.set_row_value(row, before);
                    return self.changed();
                }
                KeyCode::Enter | KeyCode::Tab => {
                    let fx = self.changed();
                    if let Some(e) = self.error_of(row).cloned() {
                        s.notify_about(Cause::ConfigureForm, e, Level::Warning);
                    }
                    return fx;
                }
                _ => input.key(*k),
            },
            Action::Paste(t) => input.paste(t),
            _ => false,
        };
        let text = input.text().to_string();
        self.editing = Some(input);
        if changed {
            self.set_row_value(row, text);
            return self.changed();
        }
        Vec::new()
    }

    fn set_row_value(&mut self, row: FormRow, v: String) {
        match row {
            FormRow::Field(i) => self.values[i] = v,
            FormRow::GpuCount => self.gpu_count = v,
            FormRow::ParametersBillions => self.parameters_billions = v,
            FormRow::MaxParallel => self.max_parallel = v,
            FormRow::SweepBudget => self.sweep_budget = v,
            _ => {}
        }
    }

    /// The hyperparameters the user really changed, as the engine counts them: a field whose
    /// value differs from the preset's once read (`0.0001` for `1e-4` is no change). The base
    /// model (and its size) is chosen beside a preset, not a change to it.
    pub fn changed_fields(&self) -> Vec<&'static str> {
        // Against the preset's values for the method: the method is chosen beside a preset
        // (the engine keeps it `balanced` with method=dpo), as the base model is.
        let preset = &self.preset_for(self.method());
        FIELDS
            .iter()
            .enumerate()
            .filter(|(i, f)| {
                !matches!(f.name, "base_model" | "method")
                    && self.applies(*i)
                    && self.values[*i] != self.base_values[*i]
            })
            .filter(|(i, f)| {
                let mut hp = preset.clone();
                // A value that does not read is a change (the form refuses it before here).
                ranges::set(&mut hp, f.name, self.values[*i].trim()).is_err() || hp != *preset
            })
            .map(|(_, f)| f.name)
            .collect()
    }

    /// `preset balanced`, or `preset custom (balanced + 2 changes: learning_rate, epochs)`:
    /// changed hyperparameters make the job's preset `custom` (the job's header says so).
    fn preset_wording(&self) -> String {
        let preset = &self.presets[self.preset].name;
        let changed = self.changed_fields();
        let builtin = ["fast", "balanced", "quality"].contains(&preset.as_str());
        if changed.is_empty() || !builtin {
            return format!("preset {preset}");
        }
        let names = if changed.len() <= 4 {
            changed.join(", ")
        } else {
            format!("{}, …", changed[..3].join(", "))
        };
        format!(
            "preset custom ({preset} + {}: {names})",
            format::plural(changed.len() as u64, "change")
        )
    }

    /// `, method dpo (beta 0.1, sigmoid)` for a preference method, with its fields as typed.
    pub(super) fn method_wording(&self) -> String {
        let method = self.method();
        if method == MethodName::Sft {
            return String::new();
        }
        let mut hp = self.preset_for(method);
        for name in ranges::method_fields(method) {
            if let Some(i) = FIELDS.iter().position(|f| f.name == *name) {
                let _ = ranges::set(&mut hp, name, &self.field_value(i));
            }
        }
        format!(", method {}", hp.method.describe())
    }

    /// `, base model X` when the user chose another base model than the preset's.
    pub(super) fn base_model_wording(&self) -> String {
        match base_model_field() {
            Some(i) if self.values[i].trim() != self.base_values[i].trim() => {
                format!(", base model {}", self.values[i].trim())
            }
            _ => String::new(),
        }
    }

    /// `, from model NAME (base BASE)` when the run starts from a model's adapter.
    pub(super) fn start_model_wording(&self) -> String {
        match self.chosen_model() {
            Some(m) => format!(", from model {} (base {})", m.name, m.base_model),
            None => String::new(),
        }
    }

    /// Where the job runs: `this machine` for the local backend (with its GPUs when a GPU
    /// type was chosen), `2×A100-80GB (ray-prod)` elsewhere.
    pub(super) fn hardware_wording(
        &self,
        draft: &JobDraft,
        config: &brightrun_api::config::Config,
    ) -> String {
        let local_gpu = self.gpus.get(self.gpu).is_some_and(|g| g.local);
        let g = GpuConfig {
            gpu_type: if local_gpu {
                "local".into()
            } else {
                draft.gpu_type.clone().unwrap_or_default()
            },
            gpu_count: draft.gpu_count.unwrap_or(1),
            price_per_gpu_hour: 0.0,
            backend: draft.backend.clone().unwrap_or_default(),
        };
        super::jobs::runs_on(&g, config)
    }

    fn submit(&mut self, s: &mut Shared) -> Vec<Effect> {
        if !self.recheck() {
            let e = self.first_error().unwrap_or_default();
            s.notify_about(
                Cause::ConfigureForm,
                format!("fix the form first: {e}"),
                Level::Error,
            );
            return Vec::new();
        }
        if self.is_sweep() {
            return self.plan(s);
        }
        let Some(draft) = self.draft() else {
            s.notify_user("choose a ready dataset first", Level::Warning);
            return Vec::new();
        };
        let name = s.dataset_name(draft.dataset_id);
        let mut lines = vec![format!(
            "Train on {name} with {}{}{}{} on {}.",
            self.preset_wording(),
            self.method_wording(),
            self.base_model_wording(),
            self.start_model_wording(),
            self.hardware_wording(&draft, &s.settings.config),
        )];
        let mut over_budget = false;
        match &self.estimate {
            Some(Ok(e)) if !self.estimate_pending => {
                lines.push(format!(
                    "Estimated cost {} (compute {} + storage {}), about {}.",
                    crate::format::money(e.estimated_cost),
                    crate::format::money(e.compute_cost),
                    crate::format::money(e.storage_cost),
                    crate::format::duration_secs((e.estimated_duration_hours * 3600.0) as i64)
                ));
                lines.push(format!("GPU memory {}", e.fit));
                if let Some(b) = &e.budget {
                    lines.push(b.clone());
                }
                if e.over_budget {
                    over_budget = true;
                    lines.push("This run takes the month OVER its budget.".into());
                }
            }
            Some(Err(e)) => lines.push(format!("No estimate: {e}")),
            _ => lines.push("The estimate is not ready yet.".into()),
        }
        lines.push("Create the job?".into());
        s.overlay = Some(Overlay::Confirm {
            title: if over_budget {
                "Over budget: create job?".into()
            } else {
                "Create job?".into()
            },
            lines,
            on_yes: Confirmed::CreateJob { draft, over_budget },
        });
        Vec::new()
    }
}

impl Component for ConfigureTab {
    fn handle(&mut self, action: &Action, s: &mut Shared) -> Handled {
        let out = if self.editing.is_some() {
            Handled::Consumed(self.edit(action, s))
        } else {
            self.handle_form(action, s)
        };
        // A message about a form problem goes once the problem is fixed.
        if let Some(m) = &s.message
            && m.cause == Some(Cause::ConfigureForm)
            && self.first_error().is_none()
        {
            s.message = None;
            s.dirty = true;
        }
        out
    }

    fn shown(&mut self, _s: &mut Shared) -> Vec<Effect> {
        if self.estimate.is_none() && !self.estimate_pending {
            self.changed()
        } else {
            Vec::new()
        }
    }

    fn on_event(&mut self, ev: &EngineEvent, s: &Shared) -> Vec<Effect> {
        match ev {
            EngineEvent::Dataset(_) => self.sync_datasets(&s.datasets),
            EngineEvent::Artifact(_) if self.sync_models(&s.artifacts) => return self.changed(),
            _ => {}
        }
        Vec::new()
    }

    fn captures_input(&self) -> bool {
        self.editing.is_some()
    }

    fn layout(&mut self, area: Rect, s: &mut Shared) -> TabHits {
        // Keep the selected row in the form's window.
        let (form_area, _) = split(area);
        let h = panel(&s.theme, "", true).inner(form_area).height as usize;
        if self.row < self.offset {
            self.offset = self.row;
        } else if h > 0 && self.row >= self.offset + h {
            self.offset = self.row + 1 - h;
        }
        TabHits::default()
    }

    fn draw(&self, frame: &mut Frame, area: Rect, s: &Shared) {
        self.draw_form(frame, area, s);
    }

    fn keys(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("open", "edit"),
            ("right", "next value"),
            ("submit", "submit"),
        ]
    }
}

/// The form and, beside it or below it, the estimate.
fn split(area: Rect) -> (Rect, Rect) {
    if area.width >= 100 {
        let [a, b] = Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
            .areas(area);
        (a, b)
    } else {
        let est_h = 10.min(area.height / 2);
        let [a, b] = Layout::vertical([Constraint::Min(6), Constraint::Length(est_h)]).areas(area);
        (a, b)
    }
}

impl ConfigureTab {
    fn draw_form(&self, frame: &mut Frame, area: Rect, s: &Shared) {
        let t = s.theme.clone();
        let (form_area, right) = split(area);
        let editing = self.editing.is_some();
        let title = Line::from(vec![
            Span::styled(" New training job ", t.header()),
            Span::styled(
                if editing {
                    "(typing: enter keeps, esc reverts) "
                } else {
                    "(enter edits, ←→ change, s submits) "
                },
                t.muted(),
            ),
        ]);
        let block = panel(&t, title, true);
        let inner = block.inner(form_area);
        frame.render_widget(block, form_area);
        let rows = self.rows();
        let h = inner.height as usize;
        let c = self;
        let label_w = 29usize.min(inner.width as usize * 6 / 10);
        let datasets = &s.datasets;
        let name = |id| {
            datasets
                .get(id)
                .map(|d| d.name.clone())
                .unwrap_or_else(|| brightrun_api::ids::DatasetId::short(&id))
        };
        for (i, row) in rows.iter().enumerate().skip(c.offset).take(h) {
            let y = inner.y + (i - c.offset) as u16;
            let line_area = Rect::new(inner.x, y, inner.width, 1);
            let selected = i == c.row;
            let err = c.error_of(*row).is_some();
            let changed = matches!(row, FormRow::Field(f) if c.values[*f] != c.base_values[*f]);
            let label = format!(
                "{}{:<w$}",
                if changed { "*" } else { " " },
                ConfigureTab::label_of(*row),
                w = label_w.saturating_sub(1)
            );
            let label_style = if selected { t.selected() } else { t.muted() };
            let [la, va] =
                Layout::horizontal([Constraint::Length(label_w as u16), Constraint::Min(1)])
                    .areas(line_area);
            frame.render_widget(
                Paragraph::new(format::truncate(&label, la.width as usize)).style(label_style),
                la,
            );
            if selected && let Some(input) = &c.editing {
                // One column in, as values are shown: the longest label
                // (gradient_accumulation_steps) never runs into what is typed.
                let va = Rect::new(va.x + 1, va.y, va.width.saturating_sub(1), va.height);
                input.draw(
                    frame,
                    va,
                    Style::new()
                        .fg(if err { t.error } else { t.foreground })
                        .add_modifier(Modifier::UNDERLINED),
                );
                continue;
            }
            let value = c.value_of(*row, name);
            let picker = matches!(
                row,
                FormRow::Dataset
                    | FormRow::Preset
                    | FormRow::FromModel
                    | FormRow::GpuType
                    | FormRow::Backend
            ) || matches!(row, FormRow::Field(f) if Some(*f) == base_model_field());
            let text = if picker && selected {
                format!("◀ {value} ▶")
            } else {
                format!(" {value}")
            };
            let style = if err {
                Style::new().fg(t.error).add_modifier(Modifier::BOLD)
            } else if selected {
                Style::new().fg(t.accent).add_modifier(Modifier::BOLD)
            } else {
                t.base()
            };
            let mut spans = vec![Span::styled(text, style)];
            if err {
                spans.push(Span::styled("  ✗", Style::new().fg(t.error)));
            }
            // Which methods the dataset wants, beside the method (the pane says it all).
            if matches!(row, FormRow::Field(f) if Some(*f) == method_field())
                && let Some(format) = c.dataset_format()
                && let Some(short) = short_method_hint(format, c.method())
            {
                spans.push(Span::styled(format!(" {short}"), Style::new().fg(t.error)));
            }
            frame.render_widget(
                Paragraph::new(fit_line(Line::from(spans), va.width as usize)),
                va,
            );
        }
        self.draw_estimate(frame, right, s);
    }

    fn draw_estimate(&self, frame: &mut Frame, area: Rect, s: &Shared) {
        let t = s.theme.clone();
        let c = self;
        let row = c.current_row();
        let mut lines: Vec<Line> = Vec::new();
        // Lines under a 14-column label, wrapped so that their continuation lines up too.
        let text_w = area.width.saturating_sub(2) as usize;
        let under = |lines: &mut Vec<Line>, text: String| {
            for l in format::wrap(&text, text_w, 14) {
                lines.push(Line::styled(format!("{:14}{l}", ""), t.muted()));
            }
        };
        let under_w = text_w.saturating_sub(14);
        if let Some(line) = c.sweep_line() {
            lines.push(kv(&t, "sweep", line));
            lines.push(kv(
                &t,
                "",
                format!(
                    "below: the first run's estimate; {} plans them all",
                    s.keymap.hint(crate::action::Tab::Configure, "submit")
                ),
            ));
        }
        match &c.estimate {
            None if c.dataset.is_none() => lines.push(Line::styled(
                "Choose a ready dataset to see the estimate.",
                t.muted(),
            )),
            None => lines.push(Line::styled("estimating…", t.muted())),
            Some(Err(e)) => {
                lines.push(Line::styled(
                    "No estimate:",
                    Style::new().fg(t.error).add_modifier(Modifier::BOLD),
                ));
                lines.push(Line::styled(e.clone(), Style::new().fg(t.error)));
            }
            Some(Ok(e)) => {
                lines.push(Line::from(vec![
                    Span::styled(format!("{:<14}", "cost"), t.muted()),
                    Span::styled(format::money(e.estimated_cost), t.header()),
                    Span::styled(
                        format!(
                            "  compute {} + storage {}",
                            format::money(e.compute_cost),
                            format::money(e.storage_cost)
                        ),
                        t.muted(),
                    ),
                ]));
                lines.push(kv(
                    &t,
                    "duration",
                    format!(
                        "{}  at {}/h{}",
                        format::duration_secs((e.estimated_duration_hours * 3600.0).round() as i64),
                        format::money(e.hourly_rate),
                        if e.local { " (your machine)" } else { "" }
                    ),
                ));
                if e.storage_cost > 0.0 {
                    // The flat storage line is the seed's `storage_cost_per_job`.
                    lines.push(Line::from(vec![
                        Span::styled(format!("{:<14}", "storage"), t.muted()),
                        Span::styled(
                            format!(
                                "{} flat per job: keeping the adapter",
                                format::money(e.storage_cost)
                            ),
                            t.muted(),
                        ),
                    ]));
                }
                lines.push(kv(
                    &t,
                    "steps",
                    format!(
                        "{} ({} per epoch)",
                        format::thousands(e.total_steps),
                        format::thousands(e.steps_per_epoch)
                    ),
                ));
                lines.push(kv(
                    &t,
                    "throughput",
                    format!(
                        "{} tokens/s",
                        format::thousands(e.throughput_tokens_per_sec.round() as u64)
                    ),
                ));
                if !e.throughput_note.is_empty() {
                    under(&mut lines, e.throughput_note.clone());
                }
                let fit_color = match e.fit_level {
                    Level::Error => t.error,
                    Level::Warning => t.warning,
                    _ => t.success,
                };
                lines.push(Line::from(vec![
                    Span::styled(format!("{:<14}", "memory"), t.muted()),
                    Span::styled(e.fit.clone(), Style::new().fg(fit_color)),
                ]));
                for a in e.fit_advice.iter().take(3) {
                    for (i, l) in format::wrap(a, under_w.saturating_sub(2), 0)
                        .into_iter()
                        .enumerate()
                    {
                        let arrow = if i == 0 { "→ " } else { "  " };
                        lines.push(Line::styled(format!("{:14}{arrow}{l}", ""), t.muted()));
                    }
                }
                if let Some(b) = &e.budget {
                    lines.push(Line::from(vec![
                        Span::styled(format!("{:<14}", "budget"), t.muted()),
                        Span::styled(
                            b.clone(),
                            if e.over_budget {
                                Style::new().fg(t.error).add_modifier(Modifier::BOLD)
                            } else {
                                t.base()
                            },
                        ),
                    ]));
                }
                if c.estimate_pending {
                    lines.push(Line::styled("updating…", t.muted()));
                }
            }
        }
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            ConfigureTab::label_of(row).to_string(),
            t.header(),
        ));
        lines.push(Line::raw(c.help_of(row)));
        if let Some(e) = c.error_of(row)
            && !matches!(&c.estimate, Some(Err(x)) if x == e)
        {
            lines.push(Line::styled(e.clone(), Style::new().fg(t.error)));
        }
        if let Some(e) = &c.catalog_error {
            lines.push(Line::styled(
                format!("GPU catalog: {e}"),
                Style::new().fg(t.warning),
            ));
        }
        // Wrapped with a hanging indent: a long value continues under itself.
        let lines = wrap_all(lines, text_w);
        frame.render_widget(
            Paragraph::new(lines).block(panel(&t, Span::styled(" Estimate ", t.header()), false)),
            area,
        );
    }
}
