//! What the trainer will learn from a dataset with a base model (`brightrun datasets
//! inspect`): one example rendered through the model's chat template token by token, with the
//! tokens that carry loss marked, or exact counts over the whole dataset. The trainer's own
//! code decides both (PROTOCOL.md, "Inspect mode"); these are its replies as the engine keeps
//! and serves them.

use serde::{Deserialize, Serialize};

/// The model's tokenizer as the trainer loaded it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct TokenizerInfo {
    /// sha256 of the tokenizer's files and chat template: the same hash, the same tokens.
    pub hash: String,
    pub chat_template: bool,
    /// Whether the template marks assistant turns (`{% generation %}`); without, the trainer
    /// finds them by searching the rendered text.
    pub generation_markers: bool,
    pub bos: Option<String>,
    pub eos: Option<String>,
    pub end_of_turn: Option<String>,
}

/// A template or mask problem, with what to do; `code` is stable (PROTOCOL.md lists them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InspectionWarning {
    pub code: String,
    pub message: String,
    /// Over a whole dataset: how many examples it concerns, and the first few lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<u64>,
}

/// One token of a rendered example.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InspectedToken {
    pub id: u32,
    /// The token's text decoded alone (spaces kept).
    pub text: String,
    /// Whether its label carries loss.
    pub trained: bool,
    /// BOS, EOS, end-of-turn, tool-call markers and the like.
    #[serde(default)]
    pub special: bool,
}

/// Where an inspected example is in the file.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct ExamplePosition {
    /// 0-based among the dataset's records.
    pub index: u64,
    /// 1-based line of the file.
    pub line: u64,
}

/// The summary line of an inspected example.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct ExampleSummary {
    /// Tokens as trained (after the cut).
    pub tokens: u64,
    pub trained_tokens: u64,
    pub trained_share: f64,
    pub truncated: bool,
    pub tokens_lost: u64,
    /// A run drops the example (nothing trained is left within `max_seq_length`).
    pub dropped: bool,
    pub max_seq_length: u32,
}

/// One example as the trainer will see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExampleInspection {
    pub base_model: String,
    pub format: String,
    /// Records in the dataset.
    pub examples: u64,
    pub example: ExamplePosition,
    pub tokenizer: TokenizerInfo,
    /// Every token of the encoded example, those past `max_seq_length` after `cut`.
    pub tokens: Vec<InspectedToken>,
    /// Index in `tokens` of the first token the cut at `max_seq_length` drops.
    pub cut: Option<usize>,
    pub summary: ExampleSummary,
    pub warnings: Vec<InspectionWarning>,
}

/// Exact counts over a whole dataset with one model's tokenizer and template.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct TokenStats {
    pub examples: u64,
    /// Records a run would skip (the warnings say why).
    pub skipped: u64,
    pub tokens: u64,
    pub trained_tokens: u64,
    pub over_max_seq_length: u64,
    pub tokens_lost: u64,
    /// Real tokens over the rows × `max_seq_length` the trainer's packing would fill.
    pub packing_efficiency: f64,
    pub longest: u64,
    pub max_seq_length: u32,
}

/// [`TokenStats`] of a dataset with a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DatasetInspection {
    pub base_model: String,
    pub format: String,
    pub tokenizer: TokenizerInfo,
    pub stats: TokenStats,
    pub warnings: Vec<InspectionWarning>,
}
