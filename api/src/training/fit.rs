//! Will the run fit in GPU memory? An estimate of the memory one GPU needs, against what it
//! has, with a verdict and what would make it fit.
//!
//! The model is deliberately simple and a little conservative, because an out-of-memory
//! failure costs the user the time to load the model and a retry, while a false "tight"
//! only costs a second look. Gigabytes are 2^30 bytes throughout (GPU vendors' "80GB" is
//! 80 GiB). Per GPU:
//!
//! - **weights**: 2 bytes per parameter in 16 bits. With QLoRA the transformer's linear
//!   layers take ~0.55 bytes per parameter (4-bit NF4 is 0.5; block constants and
//!   bitsandbytes' bookkeeping add the rest) while the embedding and output head stay 16-bit,
//!   as bitsandbytes leaves them.
//! - **adapter**: the LoRA matrices, rank × (in + out) per target module per layer (widths
//!   from the model's shape), at 16 bytes per parameter: fp32 weights, fp32 gradients and
//!   Adam's two fp32 moments.
//! - **activations**, assuming gradient checkpointing (the trainer turns it on, as every
//!   LoRA recipe for 7B+ models does): one bf16 hidden state per layer boundary is kept,
//!   `batch × seq × hidden × layers × 2` bytes (k = 2), plus the working set of the one layer
//!   being recomputed in the backward pass, about `batch × seq × (20·hidden + 4·kv + 8·mlp)`
//!   bytes (bf16 outputs of norms, projections, the gated MLP's three wide tensors and LoRA's
//!   dropout copies; attention itself is flash/SDPA, so nothing quadratic in seq).
//! - **logits**: `batch × seq × vocab × 10` bytes: the bf16 logits, their fp32 upcast for
//!   the loss and the fp32 log-softmax kept for backward. Not checkpointed, and for large
//!   vocabularies (Llama 3, Qwen, Gemma: 128k–262k) the largest activation by far. With the
//!   trainer's chunked loss (`[training.efficiency] chunked_loss`, on by default) only one
//!   chunk of [`LOSS_CHUNK_TOKENS`] tokens has logits at a time, each recomputed in the
//!   backward pass: `min(batch × seq, 1024) × vocab × 10` bytes, as the trainer computes it.
//! - **overhead**: 1 GB of CUDA context and cuBLAS workspace, plus 10% of the rest for the
//!   caching allocator's fragmentation.
//!
//! Multi-GPU runs are data-parallel (DDP): every GPU holds the whole model and processes a
//! micro-batch of `batch_size` examples, so adding GPUs of the same type makes a run faster
//! but never makes it fit. (Sharding the weights with FSDP would, but the trainer does not
//! do that, and the suggestions say so.)

use super::gpus::{GpuCatalog, GpuSpec};
use super::models::ModelSize;
use crate::domain::{DatasetStatistics, Hyperparameters, Quantization};
use serde::{Deserialize, Serialize};

const GB: f64 = (1u64 << 30) as f64;
/// 16-bit weights.
pub const BYTES_PER_PARAM_16BIT: f64 = 2.0;
/// 4-bit NF4 weights including quantisation constants.
pub const BYTES_PER_PARAM_4BIT: f64 = 0.55;
/// fp32 LoRA weight + gradient + two Adam moments.
pub const ADAPTER_BYTES_PER_PARAM: f64 = 16.0;
/// Bytes kept per token per layer with gradient checkpointing (one bf16 hidden state).
pub const CHECKPOINT_BYTES_PER_HIDDEN: f64 = 2.0;
/// Bytes per token per vocabulary entry for the logits (bf16 + fp32 copy + fp32 log-softmax).
pub const LOGIT_BYTES: f64 = 10.0;
/// Tokens per chunk of the trainer's chunked loss (trainer/brightrun_trainer/efficiency.py's
/// `LOSS_CHUNK_TOKENS`).
pub const LOSS_CHUNK_TOKENS: f64 = 1024.0;
/// CUDA context and workspaces, GB.
pub const CONTEXT_GB: f64 = 1.0;
/// Allocator fragmentation, as a share of everything else.
pub const FRAGMENTATION: f64 = 0.10;
/// Above this share of the GPU's memory a run is `Tight`: it may run out of memory on the
/// longest batch or a framework version that needs a little more.
pub const TIGHT_ABOVE: f64 = 0.85;

/// How the trainer computes the loss, which decides how many logits exist at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossMode {
    /// The model's own loss: the whole batch's logits.
    Full,
    /// The chunked LM-head loss: one chunk's logits at a time.
    Chunked,
}

impl LossMode {
    pub fn from_config(chunked_loss: bool) -> Self {
        if chunked_loss {
            Self::Chunked
        } else {
            Self::Full
        }
    }
}

/// The verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FitVerdict {
    /// At most 85% of the GPU's memory.
    Fits,
    /// Fits on paper, but with less than 15% headroom.
    Tight,
    /// Needs more memory than the GPU has.
    WillNotFit,
}

impl FitVerdict {
    /// `Fits` or `Tight`: the run is expected to start.
    pub fn fits(&self) -> bool {
        !matches!(self, Self::WillNotFit)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Fits => "fits",
            Self::Tight => "tight",
            Self::WillNotFit => "will_not_fit",
        }
    }

    /// The verdict in a sentence ("will not fit"); `as_str` is the machine name `--json` and
    /// the API carry.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Fits => "fits",
            Self::Tight => "tight",
            Self::WillNotFit => "will not fit",
        }
    }

    pub(crate) fn of(required_gb: f64, available_gb: f64) -> Self {
        if required_gb > available_gb {
            Self::WillNotFit
        } else if required_gb > TIGHT_ABOVE * available_gb {
            Self::Tight
        } else {
            Self::Fits
        }
    }
}

/// Where the memory goes, per GPU, in GB.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MemoryBreakdown {
    pub weights_gb: f64,
    /// LoRA weights, gradients and optimiser state.
    pub adapter_gb: f64,
    /// Checkpointed hidden states and the recomputed layer.
    pub activations_gb: f64,
    pub logits_gb: f64,
    pub overhead_gb: f64,
    /// Trainable (LoRA) parameters.
    pub lora_parameters: u64,
    /// The sequence length the activations were computed for.
    pub seq_len: u32,
}

impl MemoryBreakdown {
    pub fn total_gb(&self) -> f64 {
        self.weights_gb + self.adapter_gb + self.activations_gb + self.logits_gb + self.overhead_gb
    }
}

/// The fit check's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Fit {
    pub verdict: FitVerdict,
    /// Per GPU.
    pub required_gb: f64,
    /// Memory of one GPU.
    pub available_gb: f64,
    pub breakdown: MemoryBreakdown,
    /// What would make it fit (or leave headroom), most effective first; empty when it fits.
    pub suggestions: Vec<String>,
}

/// Input and output widths of a target module, from the model's shape. Names follow the
/// Llama family (also Mistral, Qwen, Gemma) and Phi-3's fused projections; PEFT's
/// `all-linear` is every projection. Other names are assumed square (hidden → hidden).
fn module_widths(name: &str, m: &ModelSize) -> u64 {
    let h = m.hidden_size as u64;
    let kv = m.kv_dim as u64;
    let i = m.intermediate_size as u64;
    match name {
        "q_proj" | "o_proj" => 2 * h,
        "k_proj" | "v_proj" => h + kv,
        "gate_proj" | "up_proj" | "down_proj" => h + i,
        "qkv_proj" => h + h + 2 * kv,
        "gate_up_proj" => h + 2 * i,
        "all-linear" => 2 * (2 * h) + 2 * (h + kv) + 3 * (h + i),
        _ => 2 * h,
    }
}

/// Trainable LoRA parameters: rank × (in + out) per target module per layer.
pub fn lora_parameters(m: &ModelSize, hp: &Hyperparameters) -> u64 {
    let per_layer: u64 = hp.target_modules.iter().map(|t| module_widths(t, m)).sum();
    hp.lora_rank as u64 * per_layer * m.num_layers as u64
}

/// The sequence length memory is sized for: `max_seq_length`, or the dataset's longest
/// example when that is shorter (batches are padded to their longest example, not to the
/// maximum).
pub fn effective_seq_len(hp: &Hyperparameters, stats: Option<&DatasetStatistics>) -> u32 {
    // A preference file's longest sequence is a prompt with its longer reply.
    let longest = stats.map(|s| {
        s.preference
            .as_ref()
            .map_or(s.tokens_max, |p| p.sequence_tokens_max)
    });
    match longest {
        Some(longest) if longest > 0 => hp.max_seq_length.min(longest.min(u32::MAX as u64) as u32),
        _ => hp.max_seq_length,
    }
}

/// The memory one GPU needs (see the module docs for the model).
pub fn memory_required(
    m: &ModelSize,
    hp: &Hyperparameters,
    seq_len: u32,
    loss: LossMode,
) -> MemoryBreakdown {
    let params = m.parameters as f64;
    let weights = match hp.quantization {
        Quantization::None => params * BYTES_PER_PARAM_16BIT,
        Quantization::FourBit => {
            let emb = (m.embedding_parameters() as f64).min(params);
            (params - emb) * BYTES_PER_PARAM_4BIT + emb * BYTES_PER_PARAM_16BIT
        }
    };
    let lora = lora_parameters(m, hp);
    let adapter = lora as f64 * ADAPTER_BYTES_PER_PARAM;
    // A preference pair is two sequences in one forward pass (chosen and rejected); the
    // reference pass runs without gradients and holds no activations.
    let sequences = f64::from(hp.method.name().sequences_per_example());
    let tokens = hp.batch_size as f64 * seq_len as f64 * sequences;
    let (h, kv, i) = (
        m.hidden_size as f64,
        m.kv_dim as f64,
        m.intermediate_size as f64,
    );
    let checkpoints = tokens * h * m.num_layers as f64 * CHECKPOINT_BYTES_PER_HIDDEN;
    let layer = tokens * (20.0 * h + 4.0 * kv + 8.0 * i);
    let logit_tokens = match loss {
        LossMode::Full => tokens,
        LossMode::Chunked => tokens.min(LOSS_CHUNK_TOKENS),
    };
    let logits = logit_tokens * m.vocab_size as f64 * LOGIT_BYTES;
    let subtotal = weights + adapter + checkpoints + layer + logits;
    MemoryBreakdown {
        weights_gb: weights / GB,
        adapter_gb: adapter / GB,
        activations_gb: (checkpoints + layer) / GB,
        logits_gb: logits / GB,
        overhead_gb: CONTEXT_GB + FRAGMENTATION * subtotal / GB,
        lora_parameters: lora,
        seq_len,
    }
}

fn required_gb(m: &ModelSize, hp: &Hyperparameters, seq_len: u32, loss: LossMode) -> f64 {
    memory_required(m, hp, seq_len, loss).total_gb()
}

/// Checks `hp` on `gpu` and, when it does not comfortably fit, suggests changes: QLoRA, a
/// smaller batch (keeping the effective batch with gradient accumulation), a shorter
/// sequence length, or catalog GPUs with more memory, cheapest first.
pub fn check_fit(
    m: &ModelSize,
    hp: &Hyperparameters,
    seq_len: u32,
    gpu: &GpuSpec,
    catalog: &GpuCatalog,
    loss: LossMode,
) -> Fit {
    let breakdown = memory_required(m, hp, seq_len, loss);
    let required = breakdown.total_gb();
    let available = gpu.memory_gb;
    let verdict = FitVerdict::of(required, available);
    let mut suggestions = Vec::new();
    if verdict != FitVerdict::Fits {
        let comfortably = |gb: f64| FitVerdict::of(gb, available) == FitVerdict::Fits;
        let goal = if verdict == FitVerdict::Tight {
            "to leave headroom"
        } else {
            "to fit"
        };

        if hp.quantization == Quantization::None {
            let q = Hyperparameters {
                quantization: Quantization::FourBit,
                ..hp.clone()
            };
            let gb = required_gb(m, &q, seq_len, loss);
            let outcome = match FitVerdict::of(gb, available) {
                FitVerdict::Fits => "fits",
                FitVerdict::Tight => "fits, tightly",
                FitVerdict::WillNotFit => "still does not fit alone",
            };
            suggestions.push(format!(
                "use QLoRA (--set quantization=4bit): 4-bit weights need about {gb:.1} GB of {available:.0} GB ({outcome})"
            ));
        }

        let smaller_batch = (1..hp.batch_size).rev().find_map(|b| {
            let t = Hyperparameters {
                batch_size: b,
                ..hp.clone()
            };
            let gb = required_gb(m, &t, seq_len, loss);
            comfortably(gb).then_some((b, gb))
        });
        if let Some((b, gb)) = smaller_batch {
            let effective = hp.batch_size * hp.gradient_accumulation_steps;
            let accumulation = effective
                .div_ceil(b)
                .min(super::ranges::GRADIENT_ACCUMULATION_STEPS.1);
            suggestions.push(format!(
                "lower batch_size to {b} (about {gb:.1} GB) {goal}; set gradient_accumulation_steps={accumulation} to keep the effective batch of {effective}"
            ));
        }

        let mut s = seq_len / 2;
        while s >= 256 {
            let gb = required_gb(m, hp, s, loss);
            if comfortably(gb) {
                suggestions.push(format!(
                    "lower max_seq_length to {s} (about {gb:.1} GB) {goal}; longer examples are truncated"
                ));
                break;
            }
            s /= 2;
        }

        let mut larger: Vec<&GpuSpec> = catalog
            .all()
            .iter()
            .filter(|g| {
                g.memory_gb > available && FitVerdict::of(required, g.memory_gb) == FitVerdict::Fits
            })
            .collect();
        larger.sort_by(|a, b| a.price_per_hour.total_cmp(&b.price_per_hour));
        if !larger.is_empty() {
            let names: Vec<String> = larger
                .iter()
                .take(3)
                .map(|g| {
                    format!(
                        "{} ({:.0} GB, ${:.2}/GPU-hour)",
                        g.id, g.memory_gb, g.price_per_hour
                    )
                })
                .collect();
            suggestions.push(format!("use a GPU with more memory: {}", names.join(", ")));
        }

        if verdict == FitVerdict::WillNotFit {
            suggestions.push(
                "more GPUs of this type will not help: training is data-parallel (DDP), so every GPU holds the whole model and its own batch".into(),
            );
            if suggestions.len() == 1 {
                suggestions.insert(
                    0,
                    "no single change is enough: combine QLoRA with a smaller batch and a shorter max_seq_length, or pick a smaller base model".into(),
                );
            }
        }
    }
    Fit {
        verdict,
        required_gb: required,
        available_gb: available,
        breakdown,
        suggestions,
    }
}
