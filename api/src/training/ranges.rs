//! The allowed range of every hyperparameter, the `--set key=value` parser, and [`FIELDS`],
//! the table the TUI's Configure form is built from.
//!
//! The ranges are DESIGN.md's where it gives them (learning rate 1e-5..1e-3, batch 1..64,
//! epochs 1..20, LoRA rank 4..128, GPUs 1..8). The others are chosen to allow every setting
//! a LoRA run sensibly uses while catching typos (an alpha of 16000, a dropout of 5) before a
//! job is paid for: a value outside its range is reported with the field, the value and the
//! range, so the user can fix it without reading docs.

use crate::domain::{
    DpoLoss, Hyperparameters, MethodName, Quantization, Scheduler, TrainingMethod,
};
use std::fmt;

/// One value outside its allowed range (or of the wrong shape, for text fields).
///
/// Displays as `learning_rate = 0.5 is outside 1e-5..=1e-3`, or for text fields as
/// `base_model = "x" is not an org/name Hugging Face id or a local path`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct RangeError {
    /// The hyperparameter's name, as `--set` and the job spec spell it.
    pub field: String,
    /// The offending value, formatted for people.
    pub value: String,
    /// The allowed range (`1e-5..=1e-3`) or, for text fields, what was expected.
    pub range: String,
}

impl RangeError {
    fn new(field: &str, value: impl Into<String>, range: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            value: value.into(),
            range: range.into(),
        }
    }

    /// Numeric ranges read "is outside a..=b"; shapes read "is not <description>".
    fn is_numeric(&self) -> bool {
        self.range.contains("..")
    }
}

impl fmt::Display for RangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_numeric() {
            write!(
                f,
                "{} = {} is outside {}",
                self.field,
                self.value,
                readable_range(&self.range)
            )
        } else {
            write!(f, "{} = {} is not {}", self.field, self.value, self.range)
        }
    }
}

/// `a..=b` as people read it: "a to b".
pub fn readable_range(range: &str) -> String {
    range.replace("..=", " to ")
}

/// Why a `--set key=value` could not be applied. The hyperparameters are left unchanged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SetError {
    /// `--set` without `=`.
    #[error("`{0}` is not key=value (for example --set learning_rate=1e-4)")]
    Syntax(String),
    #[error("unknown setting `{key}`; known settings: {}", known.join(", "))]
    UnknownKey { key: String, known: Vec<String> },
    #[error("{field} = {value:?} is not {expected}")]
    Parse {
        field: String,
        value: String,
        expected: String,
    },
    #[error(transparent)]
    Range(#[from] RangeError),
    /// A method's own hyperparameter set while the run trains with another method.
    #[error("`{key}` is a hyperparameter of {}; this run's method is {method} (set method={} first)", methods.join(" and "), methods.first().map_or("", |m| m.as_str()))]
    NotForMethod {
        key: String,
        method: String,
        methods: Vec<String>,
    },
    /// `parameters_billions` is a property of the base model, not a hyperparameter: callers
    /// that accept it (the estimate does) handle it before calling [`set`].
    #[error(
        "`{0}` describes the base model, not the training run; pass it to the estimate (or add a [training.models] entry in config)"
    )]
    NotAHyperparameter(String),
}

/// The value type of a field, so forms can pick a widget and parsers a syntax.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// A decimal number (`1e-4`, `0.05`).
    Float,
    /// A whole number.
    Integer,
    /// A whole number or `none`.
    OptionalInteger,
    /// `true`/`false` (also `yes`/`no`, `on`/`off`, `1`/`0`).
    Bool,
    /// Free text with a shape (a model id).
    Text,
    /// A comma-separated list of names.
    List,
    /// One of the listed names.
    Choice(&'static [&'static str]),
}

/// Describes one hyperparameter: enough for a form field, its help line and its validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldSpec {
    /// As `--set`, the job spec and `Hyperparameters` spell it.
    pub name: &'static str,
    pub kind: FieldKind,
    /// The allowed values, for people: `1e-5..=1e-3`, `none|4bit`, ….
    pub range: &'static str,
    /// One line on what the field does and why one would change it.
    pub help: &'static str,
}

/// Inclusive numeric bounds. Kept as constants so checks, help text and tests agree.
pub const LEARNING_RATE: (f64, f64) = (1e-5, 1e-3);
pub const BATCH_SIZE: (u32, u32) = (1, 64);
pub const GRADIENT_ACCUMULATION_STEPS: (u32, u32) = (1, 128);
pub const EPOCHS: (u32, u32) = (1, 20);
pub const LORA_RANK: (u32, u32) = (4, 128);
pub const LORA_ALPHA: (u32, u32) = (1, 512);
pub const LORA_DROPOUT: (f64, f64) = (0.0, 0.5);
pub const WARMUP_RATIO: (f64, f64) = (0.0, 0.5);
pub const WARMUP_STEPS: (u32, u32) = (0, 10_000);
pub const WEIGHT_DECAY: (f64, f64) = (0.0, 1.0);
pub const MAX_SEQ_LENGTH: (u32, u32) = (128, 32_768);
/// The preference methods' own hyperparameters (TRL's usual ranges; SimPO's beta is larger
/// because it scales a per-token average, not a sum).
pub const DPO_BETA: (f64, f64) = (0.01, 1.0);
pub const KTO_BETA: (f64, f64) = (0.01, 1.0);
pub const SIMPO_BETA: (f64, f64) = (0.1, 10.0);
pub const SIMPO_GAMMA: (f64, f64) = (0.0, 5.0);
pub const ORPO_LAMBDA: (f64, f64) = (0.01, 1.0);
pub const KTO_WEIGHT: (f64, f64) = (0.1, 10.0);
/// GPUs per job (DESIGN.md). Not a hyperparameter, but checked the same way.
pub const GPU_COUNT: (u32, u32) = (1, 8);

/// Scheduler names as `--set scheduler=…` accepts them.
pub const SCHEDULERS: &[&str] = &["linear", "cosine", "constant", "constant_with_warmup"];
/// Method names as `--set method=…` accepts them.
pub const METHODS: &[&str] = &["sft", "dpo", "orpo", "simpo", "kto"];
/// DPO's losses as `--set loss_type=…` accepts them.
pub const DPO_LOSSES: &[&str] = &["sigmoid", "ipo"];
/// Quantization names as `--set quantization=…` accepts them.
pub const QUANTIZATIONS: &[&str] = &["none", "4bit"];

/// Module names that LoRA is commonly applied to, across the model families BrightRun knows
/// (Llama/Mistral/Qwen/Gemma use `q_proj`…`down_proj`, Phi-3 fuses `qkv_proj` and
/// `gate_up_proj`, PEFT's `all-linear` means every linear layer). Offered by the TUI as
/// completions; other identifier-shaped names are accepted too, because PEFT matches names by
/// suffix and architectures vary: the trainer reports a name that matches nothing.
pub const KNOWN_TARGET_MODULES: &[&str] = &[
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
    "qkv_proj",
    "gate_up_proj",
    "all-linear",
];

/// The special base model id that the trainer builds locally (tests, smoke runs).
pub const TINY_MODEL_ID: &str = "brightrun/tiny-random-llama";

/// Every hyperparameter, in the order the Configure form shows them: the method first, then
/// its own fields (only those of the run's method apply: [`applies`]), then the rest.
pub const FIELDS: &[FieldSpec] = &[
    FieldSpec {
        name: "method",
        kind: FieldKind::Choice(METHODS),
        range: "sft|dpo|orpo|simpo|kto",
        help: "sft learns the replies; dpo, orpo and simpo learn from chosen/rejected pairs; kto from replies labelled good or bad.",
    },
    FieldSpec {
        name: "beta",
        kind: FieldKind::Float,
        range: "0.01..=1 (dpo, kto), 0.1..=10 (simpo)",
        help: "How far the adapter may move from the base: lower lets it drift further (SimPO: reward scale).",
    },
    FieldSpec {
        name: "loss_type",
        kind: FieldKind::Choice(DPO_LOSSES),
        range: "sigmoid|ipo",
        help: "DPO's loss: sigmoid (the paper's) or ipo, which resists overfitting on clean, near-deterministic preferences.",
    },
    FieldSpec {
        name: "lambda",
        kind: FieldKind::Float,
        range: "0.01..=1",
        help: "ORPO's weight of the odds-ratio term beside the SFT loss on the chosen reply.",
    },
    FieldSpec {
        name: "gamma",
        kind: FieldKind::Float,
        range: "0..=5",
        help: "SimPO's target reward margin between the chosen and the rejected reply.",
    },
    FieldSpec {
        name: "desirable_weight",
        kind: FieldKind::Float,
        range: "0.1..=10",
        help: "KTO's weight of desirable replies; raise it when they are scarcer than undesirable ones.",
    },
    FieldSpec {
        name: "undesirable_weight",
        kind: FieldKind::Float,
        range: "0.1..=10",
        help: "KTO's weight of undesirable replies; raise it when they are scarcer than desirable ones.",
    },
    FieldSpec {
        name: "base_model",
        kind: FieldKind::Text,
        range: "an org/name Hugging Face id or a local path",
        help: "The model to adapt: any Hugging Face id (e.g. mistralai/Mistral-7B-v0.1) or a local folder.",
    },
    FieldSpec {
        name: "learning_rate",
        kind: FieldKind::Float,
        range: "1e-5..=1e-3",
        help: "Step size of the optimiser; too high diverges, too low learns little.",
    },
    FieldSpec {
        name: "batch_size",
        kind: FieldKind::Integer,
        range: "1..=64",
        help: "Examples per forward/backward pass; bigger is faster per example but needs more GPU memory.",
    },
    FieldSpec {
        name: "gradient_accumulation_steps",
        kind: FieldKind::Integer,
        range: "1..=128",
        help: "Batches summed before each optimiser update: a larger effective batch without more memory.",
    },
    FieldSpec {
        name: "epochs",
        kind: FieldKind::Integer,
        range: "1..=20",
        help: "Passes over the training set; more fits the data closer and costs proportionally more.",
    },
    FieldSpec {
        name: "lora_rank",
        kind: FieldKind::Integer,
        range: "4..=128",
        help: "Rank of the LoRA matrices: capacity of the adapter.",
    },
    FieldSpec {
        name: "lora_alpha",
        kind: FieldKind::Integer,
        range: "1..=512",
        help: "LoRA scaling (alpha / rank multiplies the update); usually twice the rank.",
    },
    FieldSpec {
        name: "lora_dropout",
        kind: FieldKind::Float,
        range: "0..=0.5",
        help: "Dropout on the LoRA path; regularises small datasets.",
    },
    FieldSpec {
        name: "target_modules",
        kind: FieldKind::List,
        range: "a non-empty comma-separated list of module names (q_proj,k_proj,v_proj,o_proj,…)",
        help: "Which linear layers get adapters; more modules, more capacity and memory.",
    },
    FieldSpec {
        name: "warmup_ratio",
        kind: FieldKind::Float,
        range: "0..=0.5",
        help: "Share of steps spent ramping the learning rate up from zero.",
    },
    FieldSpec {
        name: "warmup_steps",
        kind: FieldKind::OptionalInteger,
        range: "none or 0..=10000",
        help: "Warm-up length in steps; when set it wins over warmup_ratio.",
    },
    FieldSpec {
        name: "weight_decay",
        kind: FieldKind::Float,
        range: "0..=1",
        help: "L2 regularisation of the adapter weights.",
    },
    FieldSpec {
        name: "scheduler",
        kind: FieldKind::Choice(SCHEDULERS),
        range: "linear|cosine|constant|constant_with_warmup",
        help: "Shape of the learning-rate schedule after warm-up.",
    },
    FieldSpec {
        name: "max_seq_length",
        kind: FieldKind::Integer,
        range: "128..=32768",
        help: "Tokens per example after truncation; memory grows with it.",
    },
    FieldSpec {
        name: "seed",
        kind: FieldKind::Integer,
        range: "any whole number",
        help: "Random seed for initialisation, shuffling and the hold-out split.",
    },
    FieldSpec {
        name: "use_validation",
        kind: FieldKind::Bool,
        range: "true|false",
        help: "Evaluate on the held-out split; off trains on every example.",
    },
    FieldSpec {
        name: "quantization",
        kind: FieldKind::Choice(QUANTIZATIONS),
        range: "none|4bit",
        help: "4bit loads the base model in 4-bit NF4 (QLoRA): about a quarter of the memory.",
    },
];

/// The fields of each method, beside `method` itself.
pub fn method_fields(method: MethodName) -> &'static [&'static str] {
    match method {
        MethodName::Sft => &[],
        MethodName::Dpo => &["beta", "loss_type"],
        MethodName::Orpo => &["lambda"],
        MethodName::Simpo => &["beta", "gamma"],
        MethodName::Kto => &["beta", "desirable_weight", "undesirable_weight"],
    }
}

/// The methods a method field belongs to; empty for every other field.
fn methods_of(name: &str) -> Vec<MethodName> {
    MethodName::ALL
        .into_iter()
        .filter(|m| method_fields(*m).contains(&name))
        .collect()
}

/// Whether a field applies to a run of this method (every field but the other methods' own).
pub fn applies(name: &str, method: MethodName) -> bool {
    let owners = methods_of(name);
    owners.is_empty() || owners.contains(&method)
}

/// The names `--set` accepts, in form order.
pub fn known_keys() -> Vec<String> {
    FIELDS.iter().map(|f| f.name.to_string()).collect()
}

/// The spec of one field, by exact name.
pub fn field(name: &str) -> Option<&'static FieldSpec> {
    FIELDS.iter().find(|f| f.name == name)
}

/// Formats a float the way people write hyperparameters: `1e-5`, `1e-3`, `0.05`, `0.5`
/// (scientific notation below 0.01, where decimals get hard to count).
pub fn format_float(v: f64) -> String {
    if v != 0.0 && v.is_finite() && v.abs() < 1e-2 {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

fn float_range(range: (f64, f64)) -> String {
    format!("{}..={}", format_float(range.0), format_float(range.1))
}

fn check_float(field: &str, v: f64, range: (f64, f64)) -> Option<RangeError> {
    // `contains` is false for NaN, so NaN is reported too.
    (!(range.0..=range.1).contains(&v))
        .then(|| RangeError::new(field, format_float(v), float_range(range)))
}

fn check_int(field: &str, v: u32, range: (u32, u32)) -> Option<RangeError> {
    (!(range.0..=range.1).contains(&v))
        .then(|| RangeError::new(field, v.to_string(), format!("{}..={}", range.0, range.1)))
}

/// Checks the job's GPU count (1..=8): DESIGN.md's limit, and the most one node holds.
pub fn check_gpu_count(n: u32) -> Result<(), RangeError> {
    check_int("gpu_count", n, GPU_COUNT).map_or(Ok(()), Err)
}

/// Why a base model id is acceptable: the trainer hands it to `from_pretrained`, which takes
/// a hub id `org/name` or a folder. Org-less legacy ids (`gpt2`) have all moved under an org
/// on the hub, so requiring the slash catches typos like a pasted model name without org.
pub fn base_model_shape_ok(id: &str) -> bool {
    if id == TINY_MODEL_ID {
        return true;
    }
    if id.is_empty() || id.len() > 1024 || id.chars().any(|c| c.is_control()) {
        return false;
    }
    // Local paths: absolute, relative with ./ or ../, or home-relative.
    let local = ["/", "./", "../", "~/"]
        .iter()
        .any(|prefix| id.len() > prefix.len() && id.starts_with(prefix));
    if local {
        return true;
    }
    let mut parts = id.split('/');
    let (Some(org), Some(name), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.len() <= 96
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !p.starts_with(['-', '.'])
            && !p.ends_with(['-', '.'])
            && !p.contains("--")
            && !p.contains("..")
    };
    part_ok(org) && part_ok(name)
}

/// A target module name: an identifier (dots allowed, for PEFT's suffix matching) or
/// `all-linear`.
fn module_name_ok(name: &str) -> bool {
    name == "all-linear"
        || (!name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.'))
}

fn check_target_modules(modules: &[String]) -> Option<RangeError> {
    let spec = field("target_modules").expect("target_modules is a field");
    let shown = || format!("{:?}", modules.join(","));
    if modules.is_empty() {
        return Some(RangeError::new(spec.name, shown(), spec.range));
    }
    for (i, m) in modules.iter().enumerate() {
        if !module_name_ok(m) {
            return Some(RangeError::new(
                spec.name,
                shown(),
                format!("a list of module names (`{m}` is not one)"),
            ));
        }
        if modules[..i].contains(m) {
            return Some(RangeError::new(
                spec.name,
                shown(),
                format!("a list without repeats (`{m}` appears twice)"),
            ));
        }
    }
    None
}

/// Checks one field of `hp` by name. `None` when it is in range (or the name is unknown).
pub fn check_field(hp: &Hyperparameters, name: &str) -> Option<RangeError> {
    match name {
        "base_model" => (!base_model_shape_ok(&hp.base_model)).then(|| {
            RangeError::new(
                name,
                format!("{:?}", hp.base_model),
                field(name).map_or("", |f| f.range),
            )
        }),
        "learning_rate" => check_float(name, hp.learning_rate, LEARNING_RATE),
        "batch_size" => check_int(name, hp.batch_size, BATCH_SIZE),
        "gradient_accumulation_steps" => check_int(
            name,
            hp.gradient_accumulation_steps,
            GRADIENT_ACCUMULATION_STEPS,
        ),
        "epochs" => check_int(name, hp.epochs, EPOCHS),
        "lora_rank" => check_int(name, hp.lora_rank, LORA_RANK),
        "lora_alpha" => check_int(name, hp.lora_alpha, LORA_ALPHA),
        "lora_dropout" => check_float(name, hp.lora_dropout, LORA_DROPOUT),
        "target_modules" => check_target_modules(&hp.target_modules),
        "warmup_ratio" => check_float(name, hp.warmup_ratio, WARMUP_RATIO),
        "warmup_steps" => hp
            .warmup_steps
            .and_then(|s| check_int(name, s, WARMUP_STEPS)),
        "weight_decay" => check_float(name, hp.weight_decay, WEIGHT_DECAY),
        "max_seq_length" => check_int(name, hp.max_seq_length, MAX_SEQ_LENGTH),
        "beta" | "lambda" | "gamma" | "desirable_weight" | "undesirable_weight" => {
            check_method_field(&hp.method, name)
        }
        // Typed enums, booleans and any u64 seed cannot be out of range.
        _ => None,
    }
}

/// Checks one of the method's own numbers against the method's range for it.
fn check_method_field(method: &TrainingMethod, name: &str) -> Option<RangeError> {
    let (v, range) = match (method, name) {
        (TrainingMethod::Dpo { beta, .. }, "beta") => (*beta, DPO_BETA),
        (TrainingMethod::Kto { beta, .. }, "beta") => (*beta, KTO_BETA),
        (TrainingMethod::Simpo { beta, .. }, "beta") => (*beta, SIMPO_BETA),
        (TrainingMethod::Simpo { gamma, .. }, "gamma") => (*gamma, SIMPO_GAMMA),
        (TrainingMethod::Orpo { lambda }, "lambda") => (*lambda, ORPO_LAMBDA),
        (
            TrainingMethod::Kto {
                desirable_weight, ..
            },
            "desirable_weight",
        ) => (*desirable_weight, KTO_WEIGHT),
        (
            TrainingMethod::Kto {
                undesirable_weight, ..
            },
            "undesirable_weight",
        ) => (*undesirable_weight, KTO_WEIGHT),
        _ => return None,
    };
    check_float(name, v, range)
}

/// Parses a method name (case-insensitive).
pub fn parse_method(value: &str) -> Result<MethodName, SetError> {
    value
        .parse()
        .map_err(|_| parse_error("method", value, &METHODS.join(" or ")))
}

/// Sets one of the method's own fields; refused when the run's method has no such field.
fn set_method_field(method: &mut TrainingMethod, key: &str, value: &str) -> Result<(), SetError> {
    let not_here = |method: &TrainingMethod| SetError::NotForMethod {
        key: key.into(),
        method: method.name().as_str().into(),
        methods: methods_of(key)
            .iter()
            .map(|m| m.as_str().to_string())
            .collect(),
    };
    if key == "loss_type" {
        let TrainingMethod::Dpo { loss_type, .. } = method else {
            return Err(not_here(method));
        };
        let wanted = value.trim().to_ascii_lowercase();
        *loss_type = DpoLoss::ALL
            .into_iter()
            .find(|l| l.as_str() == wanted)
            .ok_or_else(|| parse_error(key, value, &DPO_LOSSES.join(" or ")))?;
        return Ok(());
    }
    let v = parse_f64(key, value)?;
    let slot = match (&mut *method, key) {
        (TrainingMethod::Dpo { beta, .. }, "beta")
        | (TrainingMethod::Kto { beta, .. }, "beta")
        | (TrainingMethod::Simpo { beta, .. }, "beta") => beta,
        (TrainingMethod::Simpo { gamma, .. }, "gamma") => gamma,
        (TrainingMethod::Orpo { lambda }, "lambda") => lambda,
        (
            TrainingMethod::Kto {
                desirable_weight, ..
            },
            "desirable_weight",
        ) => desirable_weight,
        (
            TrainingMethod::Kto {
                undesirable_weight, ..
            },
            "undesirable_weight",
        ) => undesirable_weight,
        _ => return Err(not_here(method)),
    };
    *slot = v;
    Ok(())
}

/// Checks every field; returns all the problems at once so a form can mark them together.
pub fn check(hp: &Hyperparameters) -> Result<(), Vec<RangeError>> {
    let errors: Vec<RangeError> = FIELDS
        .iter()
        .filter_map(|f| check_field(hp, f.name))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn parse_error(field: &str, value: &str, expected: &str) -> SetError {
    SetError::Parse {
        field: field.into(),
        value: value.into(),
        expected: expected.into(),
    }
}

fn parse_u32(field: &str, value: &str) -> Result<u32, SetError> {
    value
        .trim()
        .replace('_', "")
        .parse()
        .map_err(|_| parse_error(field, value, "a whole number"))
}

fn parse_f64(field: &str, value: &str) -> Result<f64, SetError> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| parse_error(field, value, "a number (like 1e-4 or 0.05)"))
}

/// Parses a boolean the ways people type one.
pub fn parse_bool(field: &str, value: &str) -> Result<bool, SetError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(parse_error(field, value, "true or false")),
    }
}

/// Parses a scheduler name (case-insensitive; `-` and `_` alike).
pub fn parse_scheduler(value: &str) -> Result<Scheduler, SetError> {
    let wanted = value.trim().to_ascii_lowercase().replace('-', "_");
    Scheduler::ALL
        .into_iter()
        .find(|s| s.as_str() == wanted)
        .ok_or_else(|| parse_error("scheduler", value, &SCHEDULERS.join(" or ")))
}

/// Parses a quantization: `none` or `4bit`; `qlora`/`nf4` and `16bit`/`bf16`/`fp16`/`off` are
/// accepted as the synonyms people use for them.
pub fn parse_quantization(value: &str) -> Result<Quantization, SetError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "none" | "off" | "16bit" | "bf16" | "fp16" | "false" => Ok(Quantization::None),
        "4bit" | "qlora" | "nf4" | "true" => Ok(Quantization::FourBit),
        _ => Err(parse_error("quantization", value, "none or 4bit")),
    }
}

/// The name `--set quantization=` and config use for a quantization.
pub fn quantization_str(q: Quantization) -> &'static str {
    match q {
        Quantization::None => "none",
        Quantization::FourBit => "4bit",
    }
}

/// Parses a comma-separated list, trimming names and dropping empty entries.
pub fn parse_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Splits a `--set` argument `key=value` (key trimmed, value kept as typed).
pub fn split_assignment(arg: &str) -> Result<(&str, &str), SetError> {
    arg.split_once('=')
        .map(|(k, v)| (k.trim(), v))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| SetError::Syntax(arg.into()))
}

/// Applies `--set key=value`: parses the value for the field's type and checks its range.
/// On any error `hp` is left unchanged, so a form never holds a half-applied value.
pub fn set(hp: &mut Hyperparameters, key: &str, value: &str) -> Result<(), SetError> {
    let key = key.trim();
    let mut next = hp.clone();
    match key {
        "base_model" => next.base_model = value.trim().to_string(),
        "learning_rate" => next.learning_rate = parse_f64(key, value)?,
        "batch_size" => next.batch_size = parse_u32(key, value)?,
        "gradient_accumulation_steps" => next.gradient_accumulation_steps = parse_u32(key, value)?,
        "epochs" => next.epochs = parse_u32(key, value)?,
        "lora_rank" => next.lora_rank = parse_u32(key, value)?,
        "lora_alpha" => next.lora_alpha = parse_u32(key, value)?,
        "lora_dropout" => next.lora_dropout = parse_f64(key, value)?,
        "target_modules" => next.target_modules = parse_list(value),
        "warmup_ratio" => next.warmup_ratio = parse_f64(key, value)?,
        "warmup_steps" => {
            next.warmup_steps = match value.trim().to_ascii_lowercase().as_str() {
                "" | "none" | "null" => None,
                _ => Some(parse_u32(key, value)?),
            }
        }
        "weight_decay" => next.weight_decay = parse_f64(key, value)?,
        "scheduler" => next.scheduler = parse_scheduler(value)?,
        "max_seq_length" => next.max_seq_length = parse_u32(key, value)?,
        "seed" => {
            next.seed = value
                .trim()
                .replace('_', "")
                .parse()
                .map_err(|_| parse_error(key, value, "a whole number"))?
        }
        "use_validation" => next.use_validation = parse_bool(key, value)?,
        "quantization" => next.quantization = parse_quantization(value)?,
        // Choosing another method starts from its defaults; the same one keeps its values.
        "method" => {
            let name = parse_method(value)?;
            if next.method.name() != name {
                next.method = name.with_defaults();
            }
        }
        "beta" | "loss_type" | "lambda" | "gamma" | "desirable_weight" | "undesirable_weight" => {
            set_method_field(&mut next.method, key, value)?
        }
        "parameters_billions" => return Err(SetError::NotAHyperparameter(key.into())),
        _ => {
            return Err(SetError::UnknownKey {
                key: key.into(),
                known: known_keys(),
            });
        }
    }
    if let Some(e) = check_field(&next, key) {
        return Err(e.into());
    }
    *hp = next;
    Ok(())
}

/// The current value of a field as `--set` would accept it back (for forms and summaries).
pub fn get(hp: &Hyperparameters, key: &str) -> Option<String> {
    Some(match key {
        "base_model" => hp.base_model.clone(),
        "learning_rate" => format_float(hp.learning_rate),
        "batch_size" => hp.batch_size.to_string(),
        "gradient_accumulation_steps" => hp.gradient_accumulation_steps.to_string(),
        "epochs" => hp.epochs.to_string(),
        "lora_rank" => hp.lora_rank.to_string(),
        "lora_alpha" => hp.lora_alpha.to_string(),
        "lora_dropout" => format_float(hp.lora_dropout),
        "target_modules" => hp.target_modules.join(","),
        "warmup_ratio" => format_float(hp.warmup_ratio),
        "warmup_steps" => hp
            .warmup_steps
            .map_or_else(|| "none".into(), |s| s.to_string()),
        "weight_decay" => format_float(hp.weight_decay),
        "scheduler" => hp.scheduler.as_str().into(),
        "max_seq_length" => hp.max_seq_length.to_string(),
        "seed" => hp.seed.to_string(),
        "use_validation" => hp.use_validation.to_string(),
        "quantization" => quantization_str(hp.quantization).into(),
        "method" => hp.method.name().as_str().into(),
        _ => return method_field(&hp.method, key),
    })
}

/// A method field's value as `--set` would accept it back; none when the method has no such
/// field.
fn method_field(method: &TrainingMethod, key: &str) -> Option<String> {
    Some(match (method, key) {
        (TrainingMethod::Dpo { loss_type, .. }, "loss_type") => loss_type.as_str().into(),
        (TrainingMethod::Dpo { beta, .. }, "beta")
        | (TrainingMethod::Kto { beta, .. }, "beta")
        | (TrainingMethod::Simpo { beta, .. }, "beta") => format_float(*beta),
        (TrainingMethod::Simpo { gamma, .. }, "gamma") => format_float(*gamma),
        (TrainingMethod::Orpo { lambda }, "lambda") => format_float(*lambda),
        (
            TrainingMethod::Kto {
                desirable_weight, ..
            },
            "desirable_weight",
        ) => format_float(*desirable_weight),
        (
            TrainingMethod::Kto {
                undesirable_weight, ..
            },
            "undesirable_weight",
        ) => format_float(*undesirable_weight),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_formatting_reads_like_hyperparameters() {
        assert_eq!(format_float(1e-5), "1e-5");
        assert_eq!(format_float(0.5), "0.5");
        assert_eq!(format_float(0.0), "0");
        assert_eq!(float_range(LEARNING_RATE), "1e-5..=1e-3");
    }

    #[test]
    fn every_field_has_get_and_a_spec() {
        for f in FIELDS {
            assert!(!f.help.is_empty() && !f.range.is_empty(), "{}", f.name);
        }
        // 17 run fields, `method` and the methods' six own fields.
        assert_eq!(FIELDS.len(), 24, "one spec per Hyperparameters field");
    }

    #[test]
    fn base_model_shapes() {
        for ok in [
            "mistralai/Mistral-7B-v0.1",
            "meta-llama/Llama-3.1-8B-Instruct",
            "Qwen/Qwen2.5-0.5B",
            "brightrun/tiny-random-llama",
            "/models/llama",
            "./local",
            "~/m",
        ] {
            assert!(base_model_shape_ok(ok), "{ok}");
        }
        for bad in [
            "",
            "gpt2",
            "a/b/c",
            "org/",
            "/",
            "org/na me",
            "-org/x",
            "o/x..y",
        ] {
            assert!(!base_model_shape_ok(bad), "{bad}");
        }
    }
}
