//! Named hyperparameter sets: the built-in `fast`, `balanced` (the default), `quality` and
//! `custom` of DESIGN.md, and presets users define in config.
//!
//! A config preset starts from a built-in (`base`, default `balanced`) and overrides some
//! fields, so a team can pin, say, "fast but rank 16" under one name. A config entry named
//! like a built-in changes that built-in (and every preset based on it). Config presets are
//! range-checked when resolved, and every error names the preset, because a typo in config
//! is otherwise found only when a job fails.

use super::ranges::{self, RangeError, SetError};
use crate::config::{PresetOverride, TrainingConfig};
use crate::domain::{Hyperparameters, MethodName, PresetId, Quantization, Scheduler};
use serde::{Deserialize, Serialize};

/// Why a preset could not be resolved.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PresetError {
    #[error("unknown preset `{name}`; known presets: {}", known.join(", "))]
    Unknown { name: String, known: Vec<String> },
    #[error(
        "preset `{name}`: base `{base}` is not a built-in preset (fast, balanced, quality, custom)"
    )]
    UnknownBase { name: String, base: String },
    #[error("preset `{name}`: {source}")]
    BadValue {
        name: String,
        #[source]
        source: SetError,
    },
    #[error("preset `{name}`: {}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid {
        name: String,
        errors: Vec<RangeError>,
    },
}

/// A preset as the Configure tab and `brightrun presets` list it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PresetInfo {
    pub id: PresetId,
    /// As `--preset` spells it.
    pub name: String,
    pub description: String,
    /// Built-in (possibly changed by config) or defined in config.
    pub builtin: bool,
    /// The built-in a config preset starts from.
    pub base: Option<String>,
    pub hyperparameters: Hyperparameters,
    /// The preset's values for a preference run (`dpo`, `orpo`, `simpo`, `kto`: the same
    /// but for the method, here DPO with its defaults), as the engine resolves them; none
    /// when the preset is invalid or from an engine before preference training.
    #[serde(default)]
    pub preference: Option<Hyperparameters>,
    /// Set when a config preset is invalid: it is listed (so the user sees it) but cannot be
    /// used; `hyperparameters` then holds its base's values.
    pub error: Option<String>,
}

impl PresetInfo {
    /// The preset's values for a run of `method`, as the engine resolved them.
    pub fn values_for(&self, method: MethodName) -> Option<Hyperparameters> {
        if method == MethodName::Sft {
            return Some(self.hyperparameters.clone());
        }
        self.preference.clone().map(|mut hp| {
            hp.method = method.with_defaults();
            hp
        })
    }
}

/// The built-in names, in the order they are listed.
pub const BUILTIN: &[&str] = &["fast", "balanced", "quality", "custom"];

/// The preset used when none is given (DESIGN.md).
pub const DEFAULT: &str = "balanced";

fn builtin_id(name: &str) -> Option<PresetId> {
    match name.to_ascii_lowercase().as_str() {
        "fast" => Some(PresetId::Fast),
        "balanced" => Some(PresetId::Balanced),
        "quality" => Some(PresetId::Quality),
        "custom" => Some(PresetId::Custom),
        _ => None,
    }
}

fn builtin_description(id: &PresetId) -> &'static str {
    match id {
        PresetId::Fast => "one epoch, small adapter: a quick, cheap first try",
        PresetId::Balanced => "three epochs, rank 16: the default trade-off",
        PresetId::Quality => "five epochs, rank 32, lower learning rate: best results, costs most",
        PresetId::Custom => "balanced values, for editing field by field",
        PresetId::User(_) => "",
    }
}

/// DESIGN.md's values for a built-in, before any config override.
///
/// learning rate / batch / epochs / rank / alpha / dropout come from the seed; the rest are
/// the common LoRA defaults: all four attention projections (the usual PEFT choice for
/// Llama-family models), 3% warm-up and a cosine decay, 2048 tokens (covers most chat
/// examples without the memory of longer contexts), seed 42, evaluation on, 16-bit weights.
pub fn builtin_values(id: &PresetId, base_model: &str) -> Hyperparameters {
    builtin_values_for(id, base_model, MethodName::Sft)
}

/// A built-in's values for a run of `method`. SFT's are the seed's. The preference methods
/// take lower learning rates, fewer epochs and half the batch (each pair is two sequences),
/// with a 10% warm-up, as TRL's and the alignment handbook's LoRA recipes do: their losses
/// move a model much faster than SFT's, and overfit pairs within a few epochs.
pub fn builtin_values_for(id: &PresetId, base_model: &str, method: MethodName) -> Hyperparameters {
    let preference = method != MethodName::Sft;
    let (learning_rate, batch_size, epochs, lora_rank, lora_alpha, lora_dropout) =
        match (id, preference) {
            (PresetId::Fast, false) => (1e-4, 8, 1, 8, 16, 0.05),
            (PresetId::Quality, false) => (3e-5, 2, 5, 32, 64, 0.1),
            (_, false) => (5e-5, 4, 3, 16, 32, 0.1),
            (PresetId::Fast, true) => (5e-5, 4, 1, 8, 16, 0.05),
            (PresetId::Quality, true) => (1e-5, 1, 3, 32, 64, 0.1),
            (_, true) => (2e-5, 2, 2, 16, 32, 0.1),
        };
    Hyperparameters {
        base_model: base_model.to_string(),
        learning_rate,
        batch_size,
        gradient_accumulation_steps: if preference { 2 } else { 1 },
        epochs,
        lora_rank,
        lora_alpha,
        lora_dropout,
        target_modules: ["q_proj", "k_proj", "v_proj", "o_proj"]
            .map(String::from)
            .to_vec(),
        warmup_ratio: if preference { 0.1 } else { 0.03 },
        warmup_steps: None,
        weight_decay: 0.0,
        scheduler: Scheduler::Cosine,
        max_seq_length: 2048,
        seed: 42,
        use_validation: true,
        quantization: Quantization::None,
        method: method.with_defaults(),
    }
}

/// Applies a config override's set fields onto `hp`. String-typed fields (scheduler,
/// quantization) are parsed like `--set` values.
fn apply_override(hp: &mut Hyperparameters, o: &PresetOverride) -> Result<(), SetError> {
    macro_rules! copy {
        ($($f:ident),*) => { $( if let Some(v) = &o.$f { hp.$f = v.clone(); } )* };
    }
    copy!(
        base_model,
        learning_rate,
        batch_size,
        gradient_accumulation_steps,
        epochs,
        lora_rank,
        lora_alpha,
        lora_dropout,
        target_modules,
        warmup_ratio,
        weight_decay,
        max_seq_length,
        seed,
        use_validation
    );
    if o.warmup_steps.is_some() {
        hp.warmup_steps = o.warmup_steps;
    }
    if let Some(s) = &o.scheduler {
        hp.scheduler = ranges::parse_scheduler(s)?;
    }
    if let Some(q) = &o.quantization {
        hp.quantization = ranges::parse_quantization(q)?;
    }
    Ok(())
}

/// The config entry for `name`, matched without regard to case (exact match first).
fn config_entry<'a>(cfg: &'a TrainingConfig, name: &str) -> Option<(&'a str, &'a PresetOverride)> {
    cfg.presets
        .get_key_value(name)
        .or_else(|| {
            cfg.presets
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
        })
        .map(|(k, v)| (k.as_str(), v))
}

/// A built-in's values with its config override (if any) applied. Not range-checked.
fn builtin_with_config(
    id: &PresetId,
    cfg: &TrainingConfig,
    method: MethodName,
) -> Result<Hyperparameters, PresetError> {
    let mut hp = builtin_values_for(id, &cfg.default_base_model, method);
    if let Some((key, o)) = config_entry(cfg, id.as_str()) {
        apply_override(&mut hp, o).map_err(|source| PresetError::BadValue {
            name: key.to_string(),
            source,
        })?;
    }
    Ok(hp)
}

fn checked(name: &str, hp: Hyperparameters) -> Result<Hyperparameters, PresetError> {
    ranges::check(&hp).map_err(|errors| PresetError::Invalid {
        name: name.to_string(),
        errors,
    })?;
    Ok(hp)
}

/// The names `--preset` accepts: the built-ins, then config presets.
pub fn known_names(cfg: &TrainingConfig) -> Vec<String> {
    let mut names: Vec<String> = BUILTIN.iter().map(|s| s.to_string()).collect();
    names.extend(
        cfg.presets
            .keys()
            .filter(|k| builtin_id(k).is_none())
            .cloned(),
    );
    names
}

/// Resolves a preset name (case-insensitive) to its id and range-checked hyperparameters.
/// The base model is the preset's own if it sets one, else `cfg.default_base_model`.
pub fn resolve(
    name: &str,
    cfg: &TrainingConfig,
) -> Result<(PresetId, Hyperparameters), PresetError> {
    resolve_for(name, cfg, MethodName::Sft)
}

/// [`resolve`] for a run of `method`: the built-in's values for that method (a config
/// preset overrides them as it overrides SFT's), with the method's default hyperparameters.
pub fn resolve_for(
    name: &str,
    cfg: &TrainingConfig,
    method: MethodName,
) -> Result<(PresetId, Hyperparameters), PresetError> {
    let name = name.trim();
    if let Some(id) = builtin_id(name) {
        let hp = builtin_with_config(&id, cfg, method)?;
        let hp = checked(id.as_str(), hp)?;
        return Ok((id, hp));
    }
    let Some((key, o)) = config_entry(cfg, name) else {
        return Err(PresetError::Unknown {
            name: name.to_string(),
            known: known_names(cfg),
        });
    };
    let base_name = o.base.as_deref().unwrap_or(DEFAULT);
    let base = builtin_id(base_name).ok_or_else(|| PresetError::UnknownBase {
        name: key.to_string(),
        base: base_name.to_string(),
    })?;
    let mut hp = builtin_with_config(&base, cfg, method)?;
    apply_override(&mut hp, o).map_err(|source| PresetError::BadValue {
        name: key.to_string(),
        source,
    })?;
    let hp = checked(key, hp)?;
    Ok((PresetId::User(key.to_string()), hp))
}

/// Resolves `cfg.default_preset`.
pub fn resolve_default(cfg: &TrainingConfig) -> Result<(PresetId, Hyperparameters), PresetError> {
    resolve(&cfg.default_preset, cfg)
}

/// Every preset, built-ins first. Invalid config presets are listed with their error rather
/// than hidden, so the user learns why one is missing from the picker.
pub fn list(cfg: &TrainingConfig) -> Vec<PresetInfo> {
    let mut out = Vec::new();
    for name in known_names(cfg) {
        let builtin = builtin_id(&name);
        let entry = config_entry(cfg, &name).map(|(_, o)| o);
        let base = match &builtin {
            Some(_) => None,
            None => Some(
                entry
                    .and_then(|o| o.base.clone())
                    .unwrap_or_else(|| DEFAULT.to_string()),
            ),
        };
        let description = entry
            .and_then(|o| o.description.clone())
            .or_else(|| {
                builtin
                    .as_ref()
                    .map(|id| builtin_description(id).to_string())
            })
            .unwrap_or_default();
        let (id, hyperparameters, error) = match resolve(&name, cfg) {
            Ok((id, hp)) => (id, hp, None),
            Err(e) => {
                let id = builtin.clone().unwrap_or(PresetId::User(name.clone()));
                let fallback_base = base
                    .as_deref()
                    .and_then(builtin_id)
                    .or(builtin.clone())
                    .unwrap_or(PresetId::Balanced);
                let hp = builtin_values(&fallback_base, &cfg.default_base_model);
                (id, hp, Some(e.to_string()))
            }
        };
        let preference = error
            .is_none()
            .then(|| {
                resolve_for(&name, cfg, MethodName::Dpo)
                    .ok()
                    .map(|(_, hp)| hp)
            })
            .flatten();
        out.push(PresetInfo {
            id,
            name,
            description,
            builtin: builtin.is_some(),
            base,
            hyperparameters,
            preference,
            error,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_in_range() {
        let cfg = TrainingConfig::default();
        for name in BUILTIN {
            let (_, hp) = resolve(name, &cfg).unwrap();
            assert_eq!(hp.base_model, cfg.default_base_model);
        }
    }

    #[test]
    fn the_catalog_carries_each_presets_preference_values() {
        let cfg = TrainingConfig::default();
        for info in list(&cfg) {
            let sft = info.values_for(MethodName::Sft).unwrap();
            assert_eq!(sft, info.hyperparameters);
            for m in [
                MethodName::Dpo,
                MethodName::Orpo,
                MethodName::Simpo,
                MethodName::Kto,
            ] {
                let hp = info.values_for(m).unwrap();
                assert_eq!(hp.method, m.with_defaults(), "{}", info.name);
                assert_eq!(
                    hp,
                    resolve_for(&info.name, &cfg, m).unwrap().1,
                    "{}: the engine's values",
                    info.name
                );
            }
        }
    }

    #[test]
    fn custom_is_balanced_marked_custom() {
        let cfg = TrainingConfig::default();
        let (id, hp) = resolve("custom", &cfg).unwrap();
        assert_eq!(id, PresetId::Custom);
        assert_eq!(hp, resolve("balanced", &cfg).unwrap().1);
    }
}
