//! Whether a run's method can train on its dataset: preference pairs train with `dpo`,
//! `orpo` or `simpo`, KTO data with `kto`, conversations and text with `sft`. Checked when a
//! job is estimated and created, so a mismatch is refused before anything is paid for.

use super::{EngineError, Result};
use crate::domain::{DataKind, Dataset, DatasetFormat, MethodName, TrainingMethod};

/// Refuses a method that cannot train on the dataset's format, naming the format, the
/// method and the methods that would fit. A dataset without a format is left to the
/// readiness check, which says why it is not ready.
pub(crate) fn check(dataset: &Dataset, method: &TrainingMethod) -> Result<()> {
    let Some(format) = dataset.format else {
        return Ok(());
    };
    if method.fits(format) {
        return Ok(());
    }
    Err(EngineError::InvalidField {
        field: "method".into(),
        message: refusal(&dataset.name, format, method.name()),
    })
}

/// The message: which data, which method, and what would fit.
fn refusal(dataset: &str, format: DatasetFormat, method: MethodName) -> String {
    let kind = DataKind::of(format);
    let fitting = MethodName::for_data(kind)
        .iter()
        .map(|m| format!("--set method={}", m.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    match (kind, method) {
        // SFT on pairs keeps the validator's earlier message and its conversion recipe.
        (DataKind::Preference, MethodName::Sft) => format!(
            "dataset `{dataset}` is {} file, for preference training; supervised fine-tuning (method sft) would learn the rejected replies too. Train it with {fitting}; or, for SFT, keep the chosen reply only, e.g. `jq -c '{{messages: .chosen}}'` when \"chosen\" is a conversation, `jq -c '{{prompt, completion: .chosen}}'` when it is text, or `jq -c '{{messages: (.input.messages + .preferred_output)}}'` for OpenAI preference files",
            format.label()
        ),
        (DataKind::Kto, MethodName::Sft) => format!(
            "dataset `{dataset}` is {} file (each reply labelled desirable or not); supervised fine-tuning (method sft) would make the undesirable replies training targets. Train it with {fitting}; or, for SFT, keep the examples labelled true and drop the label, e.g. `jq -c 'select(.label == true) | del(.label)'` (or `.kto_tag`)",
            format.label()
        ),
        _ => format!(
            "method {} trains on {}, but dataset `{dataset}` is {} file; for this dataset use {fitting}",
            method.as_str(),
            wants(method),
            format.label()
        ),
    }
}

/// What a method trains on, in words.
fn wants(method: MethodName) -> &'static str {
    match method.data_kind() {
        DataKind::Supervised => "conversations or text (an SFT dataset)",
        DataKind::Preference => "preference pairs (a prompt with a chosen and a rejected reply)",
        DataKind::Kto => "KTO data (replies labelled desirable or undesirable)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mismatch_names_format_method_and_fit() {
        let msg = refusal("pairs", DatasetFormat::Preference, MethodName::Kto);
        assert!(msg.contains("method kto"), "{msg}");
        assert!(msg.contains("a preference (DPO) file"), "{msg}");
        assert!(
            msg.contains("--set method=dpo, --set method=orpo, --set method=simpo"),
            "{msg}"
        );
        let msg = refusal("chat", DatasetFormat::OpenaiChat, MethodName::Dpo);
        assert!(
            msg.contains("an OpenAI chat file") && msg.contains("--set method=sft"),
            "{msg}"
        );
        let msg = refusal("k", DatasetFormat::Kto, MethodName::Dpo);
        assert!(msg.contains("--set method=kto"), "{msg}");
    }

    #[test]
    fn sft_on_pairs_keeps_the_conversion_recipe() {
        let msg = refusal("pairs", DatasetFormat::Preference, MethodName::Sft);
        assert!(
            msg.contains("would learn the rejected replies too"),
            "{msg}"
        );
        assert!(msg.contains("jq -c '{messages: .chosen}'"), "{msg}");
        let msg = refusal("k", DatasetFormat::Kto, MethodName::Sft);
        assert!(msg.contains("select(.label == true)"), "{msg}");
    }
}
