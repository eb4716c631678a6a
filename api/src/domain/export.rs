//! Exports (`brightrun models export`): an adapter merged into its base, converted to GGUF for
//! llama.cpp and Ollama, or converted alone as a GGUF LoRA. An export is a job (an
//! [`ExportTask`] on the job record) run by a backend's trainer (trainer/PROTOCOL.md, "Export
//! mode"); its result is a new model whose [`ModelKind`] says what it is, with the check
//! that proved it answers like the adapter it came from ([`ExportCheck`]).

use crate::ids::ArtifactId;
use serde::{Deserialize, Serialize};

/// What a stored model is. Every model before exports is an adapter.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// A LoRA adapter's own files (a training run's result).
    #[default]
    Adapter,
    /// The base model with the adapter merged in: safetensors, tokenizer, chat template.
    Merged,
    /// The merged model as one GGUF file (or llama.cpp's split files), maybe quantized.
    Gguf,
    /// The adapter alone as a GGUF LoRA, for llama.cpp's `--lora` over the base's GGUF.
    GgufLora,
}

impl ModelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Adapter => "adapter",
            Self::Merged => "merged",
            Self::Gguf => "gguf",
            Self::GgufLora => "gguf-lora",
        }
    }
}

/// What an export writes (`--format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ExportFormat {
    Merged,
    Gguf,
    GgufLora,
}

impl ExportFormat {
    pub const ALL: [ExportFormat; 3] = [Self::Merged, Self::Gguf, Self::GgufLora];

    pub fn as_str(self) -> &'static str {
        self.kind().as_str()
    }

    /// The kind of model it makes.
    pub fn kind(self) -> ModelKind {
        match self {
            Self::Merged => ModelKind::Merged,
            Self::Gguf => ModelKind::Gguf,
            Self::GgufLora => ModelKind::GgufLora,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// The tensors' type (`--dtype`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ExportDtype {
    #[default]
    F16,
    Bf16,
    F32,
}

impl ExportDtype {
    pub const ALL: [ExportDtype; 3] = [Self::F16, Self::Bf16, Self::F32];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::F16 => "f16",
            Self::Bf16 => "bf16",
            Self::F32 => "f32",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// Bytes per weight.
    pub fn bytes(self) -> f64 {
        match self {
            Self::F32 => 4.0,
            Self::F16 | Self::Bf16 => 2.0,
        }
    }
}

/// The llama.cpp quantizations an export offers (`--quantize`; llama.cpp's own names).
pub const GGUF_QUANTIZATIONS: [&str; 14] = [
    "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k_s", "q3_k_m", "q3_k_l", "q4_k_s",
    "q4_k_m", "q5_k_s", "q5_k_m", "q6_k",
];

/// Bits per weight of a quantization, roughly (for the size and time estimate).
pub fn quantized_bits(name: &str) -> f64 {
    match name {
        "q8_0" => 8.5,
        "q6_k" => 6.6,
        "q5_0" | "q5_1" | "q5_k_s" | "q5_k_m" => 5.7,
        "q4_0" | "q4_1" | "q4_k_s" | "q4_k_m" => 4.8,
        "q3_k_s" | "q3_k_m" | "q3_k_l" => 3.9,
        _ => 3.0,
    }
}

/// The longest `--name`.
pub const MAX_EXPORT_NAME: usize = 64;

/// Whether `name` is a model name an export can carry into a GGUF and `ollama create`:
/// 1 to 64 of `[A-Za-z0-9._-]`, not starting with `.` or `-`.
pub fn valid_export_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_EXPORT_NAME
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// What an export job does (the job record's task).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExportTask {
    /// The adapter exported.
    pub model: ArtifactId,
    pub format: ExportFormat,
    pub dtype: ExportDtype,
    /// A llama.cpp quantization (`gguf` only), one of [`GGUF_QUANTIZATIONS`].
    pub quantize: Option<String>,
    /// Also an Ollama `Modelfile` (`gguf` only).
    pub ollama: bool,
    /// The exported model's name (the GGUF's `general.name`, `ollama create NAME`).
    pub name: String,
    /// The Modelfile's `SYSTEM` prompt.
    pub system_prompt: Option<String>,
}

/// The check an export passed before it was stored (from its `export.json`): the figures the
/// Models tab and `models show` give.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExportCheck {
    pub passed: bool,
    /// `logits` (a merged model: next-token logits against base + adapter) or `greedy`
    /// (a GGUF: llama.cpp's greedy continuation against transformers').
    pub checked: String,
    /// The largest difference of a next-token logit (`logits`).
    pub max_abs_diff: Option<f64>,
    /// What `max_abs_diff` had to stay within (`logits`); for a quantized GGUF, the share of
    /// prompts that had to hold; otherwise the near-tie margin (trainer/PROTOCOL.md).
    pub tolerance: Option<f64>,
    /// The share of prompts whose continuations agreed token for token (`greedy`).
    pub agreement: Option<f64>,
    /// The share of prompts that held: agreed, or parted only at a near tie of transformers'
    /// top two logits (`greedy`: what is judged).
    pub held: Option<f64>,
    /// Whether the GGUF's own chat template renders the prompts as the model's does.
    pub template_matches: Option<bool>,
    pub prompts: u32,
    /// Greedy tokens compared per prompt.
    pub tokens: Option<u32>,
    /// The command that imports it into Ollama (with `--ollama`).
    pub ollama_command: Option<String>,
    /// Seconds the export took, check included.
    pub seconds: Option<f64>,
}

impl ExportCheck {
    /// The check's figures in a line, for people.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        let of = |share: f64| (share * f64::from(self.prompts)).round() as u32;
        match self.checked.as_str() {
            "logits" => {
                if let Some(d) = self.max_abs_diff {
                    parts.push(match self.tolerance {
                        Some(t) => format!("max logit difference {d:.2e}, tolerance {t:.0e}"),
                        None => format!("max logit difference {d:.2e}"),
                    });
                }
            }
            _ => {
                let tokens = self
                    .tokens
                    .map(|t| format!(" for {t} tokens"))
                    .unwrap_or_default();
                if let Some(h) = self.held {
                    parts.push(format!(
                        "{} of {} prompts continued like transformers{tokens}",
                        of(h),
                        self.prompts
                    ));
                }
                if let (Some(a), Some(h)) = (self.agreement, self.held)
                    && a < h
                {
                    parts.push(format!("{} exactly, the rest parting at near ties", of(a)));
                } else if let (Some(a), None) = (self.agreement, self.held) {
                    parts.push(format!(
                        "{} of {} prompts agreed{tokens}",
                        of(a),
                        self.prompts
                    ));
                }
            }
        }
        if self.template_matches == Some(false) {
            parts.push("its chat template renders differently".into());
        }
        if parts.is_empty() {
            parts.push(format!("checked by {}", self.checked));
        }
        parts.join("; ")
    }
}

/// What `brightrun models export` and the Models tab ask for, beside the model
/// ([`crate::messages::Request::ExportModel`]'s fields).
#[derive(Clone, Debug, PartialEq)]
pub struct ExportOptions {
    pub format: ExportFormat,
    pub dtype: Option<ExportDtype>,
    pub quantize: Option<String>,
    pub ollama: bool,
    pub name: Option<String>,
    pub system_prompt: Option<String>,
    pub backend: Option<String>,
    pub gpu_type: Option<String>,
    pub confirm_over_budget: bool,
    /// Only estimate: answer the job it would queue.
    pub dry_run: bool,
}

impl ExportOptions {
    /// An export in `format` with every default.
    pub fn new(format: ExportFormat) -> Self {
        Self {
            format,
            dtype: None,
            quantize: None,
            ollama: false,
            name: None,
            system_prompt: None,
            backend: None,
            gpu_type: None,
            confirm_over_budget: false,
            dry_run: false,
        }
    }
}
