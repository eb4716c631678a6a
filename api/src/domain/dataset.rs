use super::Timestamp;
use crate::ids::{DatasetId, UserId};
use serde::{Deserialize, Serialize};

/// Where a dataset is in its life. `Ready` and `Error` are verdicts of the validator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DatasetStatus {
    Uploading,
    Validating,
    Ready,
    Error,
}

impl DatasetStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Uploading => "uploading",
            Self::Validating => "validating",
            Self::Ready => "ready",
            Self::Error => "error",
        }
    }

    /// The status in a sentence ("dataset X is …"): `still uploading`, `still being
    /// validated`, `ready`, `invalid (validation found errors)`; "dataset X is error" reads
    /// as a typo.
    pub fn phrase(&self) -> &'static str {
        match self {
            Self::Uploading => "still uploading",
            Self::Validating => "still being validated",
            Self::Ready => "ready",
            Self::Error => "invalid (validation found errors)",
        }
    }
}

/// The accepted example layouts (DESIGN.md, "Dataset formats"). Detected per file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DatasetFormat {
    /// `{"conversation_id", "turns": [{"role","content"}]}`
    BrightrunV4,
    /// `{"system_prompt", "current_user_input", "target_response"}`
    BrightrunFlat,
    /// `{"messages": [{"role","content","weight"?}]}`
    OpenaiChat,
    /// `{"instruction", "input"?, "output"}`
    Alpaca,
    /// `{"conversations": [{"from","value"}]}`
    Sharegpt,
    /// `{"prompt", "completion"}`
    PromptCompletion,
    /// `{"text"}`: plain text (Together's general format, LLaMA-Factory's `pt` stage),
    /// trained with the loss on every token.
    Text,
    /// Preference pairs, a prompt with a chosen and a rejected reply, trained with `dpo`,
    /// `orpo` or `simpo`: TRL's explicit (`prompt`/`chosen`/`rejected`) and implicit
    /// (`chosen`/`rejected` or `chosen_messages`/`rejected_messages` conversations) prompt,
    /// OpenAI's `input`/`preferred_output`/`non_preferred_output`, LLaMA-Factory's Alpaca
    /// (`instruction`/`chosen`/`rejected`) and ShareGPT (`conversations` with `chosen` and
    /// `rejected` turns) layouts. Not for `sft`, which would learn the rejected replies too.
    Preference,
    /// KTO data, a prompt with one reply labelled desirable or not (`label` or `kto_tag`),
    /// trained with `kto`: TRL's `prompt`/`completion`/`label`, LLaMA-Factory's `messages`
    /// or `conversations` whose last message is the labelled reply. Not for `sft`, which
    /// would make the undesirable replies training targets.
    Kto,
}

impl DatasetFormat {
    /// Every format the validator recognises.
    pub const ALL: [DatasetFormat; 9] = [
        Self::BrightrunV4,
        Self::BrightrunFlat,
        Self::OpenaiChat,
        Self::Alpaca,
        Self::Sharegpt,
        Self::PromptCompletion,
        Self::Text,
        Self::Preference,
        Self::Kto,
    ];

    /// The formats a dataset may be trained from (suggestions list these): all of them, the
    /// supervised ones with `sft`, `Preference` with `dpo`/`orpo`/`simpo`, `Kto` with `kto`
    /// (which method fits which format is checked when a job is created).
    pub const TRAINABLE: [DatasetFormat; 9] = [
        Self::BrightrunV4,
        Self::BrightrunFlat,
        Self::OpenaiChat,
        Self::Alpaca,
        Self::Sharegpt,
        Self::PromptCompletion,
        Self::Text,
        Self::Preference,
        Self::Kto,
    ];

    /// Whether examples of this format can be trained by BrightRun's trainer, with some
    /// method: true for every format (preference and KTO data with the preference methods).
    /// A valid file of a trainable format is `ready`.
    pub fn is_trainable(&self) -> bool {
        Self::TRAINABLE.contains(self)
    }

    /// Whether the format holds supervised examples (conversations or text, trained with
    /// `sft`), rather than preference pairs or KTO replies.
    pub fn is_supervised(&self) -> bool {
        !matches!(self, Self::Preference | Self::Kto)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::BrightrunV4 => "brightrun_v4",
            Self::BrightrunFlat => "brightrun_flat",
            Self::OpenaiChat => "openai_chat",
            Self::Alpaca => "alpaca",
            Self::Sharegpt => "sharegpt",
            Self::PromptCompletion => "prompt_completion",
            Self::Text => "text",
            Self::Preference => "preference",
            Self::Kto => "kto",
        }
    }

    /// The format's name in a sentence, with its article ("an OpenAI chat file"): `as_str`
    /// is the machine name that `--json` and the API carry.
    pub fn label(&self) -> &'static str {
        match self {
            Self::BrightrunV4 => "a BrightRun v4",
            Self::BrightrunFlat => "a BrightRun flat",
            Self::OpenaiChat => "an OpenAI chat",
            Self::Alpaca => "an Alpaca",
            Self::Sharegpt => "a ShareGPT",
            Self::PromptCompletion => "a prompt/completion",
            Self::Text => "a plain-text",
            Self::Preference => "a preference (DPO)",
            Self::Kto => "a KTO",
        }
    }

    /// A human description of the keys the format needs, used in suggestions.
    pub fn shape(&self) -> &'static str {
        match self {
            Self::BrightrunV4 => r#"{"conversation_id": …, "turns": [{"role": …, "content": …}]}"#,
            Self::BrightrunFlat => {
                r#"{"system_prompt": …, "current_user_input": …, "target_response": …}"#
            }
            Self::OpenaiChat => r#"{"messages": [{"role": …, "content": …}]}"#,
            Self::Alpaca => r#"{"instruction": …, "input": …, "output": …}"#,
            Self::Sharegpt => r#"{"conversations": [{"from": …, "value": …}]}"#,
            Self::PromptCompletion => r#"{"prompt": …, "completion": …}"#,
            Self::Text => r#"{"text": …}"#,
            Self::Preference => r#"{"prompt": …, "chosen": …, "rejected": …}"#,
            Self::Kto => r#"{"prompt": …, "completion": …, "label": true}"#,
        }
    }
}

/// How serious a validation finding is. Errors make the dataset unusable; warnings do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in a dataset file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ValidationIssue {
    /// 1-based line number in the file (for a `.json` array file: the element's line).
    pub line: u64,
    pub error: String,
    pub suggestion: String,
    pub severity: Severity,
}

/// What the validator learned about a dataset.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DatasetStatistics {
    pub total_examples: u64,
    pub total_training_pairs: u64,
    pub total_validation_pairs: u64,
    pub total_tokens: u64,
    /// `true` when counted with a real tokenizer, `false` for the bytes/4 estimate.
    pub tokens_exact: bool,
    pub avg_turns_per_conversation: f64,
    pub avg_tokens_per_turn: f64,
    pub tokens_p50: u64,
    pub tokens_p95: u64,
    pub tokens_max: u64,
    pub duplicate_examples: u64,
    pub examples_over_max_seq_length: u64,
    pub max_seq_length: u32,
    pub error_count: u64,
    pub warning_count: u64,
    /// A preference or KTO file's pairs, reply lengths and length bias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preference: Option<super::PreferenceStatistics>,
}

/// A chat message, the normal form every format is turned into.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

/// A dataset record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Dataset {
    pub id: DatasetId,
    pub user_id: UserId,
    pub name: String,
    pub description: Option<String>,
    pub file_name: String,
    pub file_size: u64,
    pub format: Option<DatasetFormat>,
    pub status: DatasetStatus,
    pub storage_bucket: String,
    pub storage_path: String,
    pub sha256: Option<String>,
    pub statistics: Option<DatasetStatistics>,
    pub total_training_pairs: Option<u64>,
    pub total_validation_pairs: Option<u64>,
    pub total_tokens: Option<u64>,
    pub training_ready: bool,
    pub validated_at: Option<Timestamp>,
    pub validation_errors: Vec<ValidationIssue>,
    /// The first 3 examples, normalised to chat messages.
    pub sample_data: Vec<Vec<ChatMessage>>,
    /// Set when the dataset could not be stored or read at all.
    pub error_message: Option<String>,
    /// The file the user imported, kept so an interrupted upload can resume.
    pub source_path: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub deleted_at: Option<Timestamp>,
}
