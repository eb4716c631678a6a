//! Will a model fit for chatting? The memory the playground's worker (the trainer's `serve`
//! mode) needs to answer with a model on the engine's machine, against what the machine has:
//! its first CUDA GPU (the worker loads there), or its RAM when it has none. Checked before a
//! worker starts, so a model that cannot load is refused in a second with the figures, not
//! after a minute of loading with an out-of-memory kill.
//!
//! Gigabytes are 2^30 bytes, as in [`super::fit`]. The worker needs:
//!
//! - **weights** in the dtype it loads: 16 bits on a CUDA GPU (bf16, or fp16 where bf16 is
//!   missing), fp32 on a CPU ([`BYTES_PER_PARAM_GPU`], [`BYTES_PER_PARAM_CPU`]);
//! - **the adapter**: its files' size (the LoRA matrices as saved; PEFT loads them in the
//!   same dtype or fp32, a few MB for most adapters);
//! - **the KV cache** for the longest reply a chat may ask for (`[playground]
//!   max_new_tokens_limit`) after a prompt of [`PROMPT_TOKENS`] tokens: keys and values,
//!   `2 × layers × kv_dim × tokens` values in the weights' dtype;
//! - **the working set** of one forward pass over the prompt (prefill): about
//!   `tokens × (4·hidden + 3·mlp)` values, and one row of fp32 logits;
//! - **overhead**: on a GPU 1 GB of CUDA context ([`super::fit::CONTEXT_GB`]); on a CPU the
//!   worker's Python process itself with torch, transformers and PEFT imported
//!   ([`CPU_RUNTIME_GB`], measured); plus 10% of the rest for the allocator's fragmentation.
//!
//! More than the memory there is refuses the chat ([`FitVerdict::WillNotFit`]); `tight` is
//! allowed (a chat's prompts are usually far shorter than the window sized here).

use super::fit::{CONTEXT_GB, FRAGMENTATION, FitVerdict};
use super::models::ModelSize;
use serde::{Deserialize, Serialize};

const GB: f64 = (1u64 << 30) as f64;
/// Weights on a CUDA GPU: bf16 or fp16.
pub const BYTES_PER_PARAM_GPU: f64 = 2.0;
/// Weights on a CPU: fp32 (the worker loads fp32 there, as the trainer does).
pub const BYTES_PER_PARAM_CPU: f64 = 4.0;
/// The prompt the KV cache is sized for, besides the reply: a system message and a few
/// turns of history. Longer histories are cut from the left to fit the model's context, so
/// this is a margin, not a bound.
pub const PROMPT_TOKENS: u32 = 1024;
/// The worker's process on a CPU without its model: Python with torch, transformers, PEFT
/// and the tokenizer loaded. Measured: 0.82 GiB resident for the tiny random model (0.1M
/// parameters) answering a chat, on torch 2.9 / transformers 5.24.
pub const CPU_RUNTIME_GB: f64 = 0.8;

/// Where the worker would load the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InferenceDevice {
    /// The machine's first CUDA GPU.
    Gpu { name: String, memory_gb: f64 },
    /// The machine has no GPU: the CPU, with the machine's RAM.
    Cpu { memory_gb: f64 },
}

impl InferenceDevice {
    pub fn memory_gb(&self) -> f64 {
        match self {
            Self::Gpu { memory_gb, .. } | Self::Cpu { memory_gb } => *memory_gb,
        }
    }

    pub fn on_gpu(&self) -> bool {
        matches!(self, Self::Gpu { .. })
    }

    /// `the engine's GPU (NVIDIA A10G, 22.0 GB)` or `the engine's machine (no GPU; 16.0 GB of RAM)`.
    pub fn describe(&self) -> String {
        match self {
            Self::Gpu { name, memory_gb } => {
                format!("the engine's GPU ({name}, {memory_gb:.1} GB)")
            }
            Self::Cpu { memory_gb } => {
                format!("the engine's machine (no GPU; {memory_gb:.1} GB of RAM)")
            }
        }
    }
}

/// Where a chat worker's memory goes, in GB.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InferenceMemory {
    pub weights_gb: f64,
    pub adapter_gb: f64,
    pub kv_cache_gb: f64,
    /// The prefill's activations and the last token's logits.
    pub working_gb: f64,
    /// CUDA context, or the worker's Python process on a CPU; and fragmentation.
    pub overhead_gb: f64,
    /// Tokens the KV cache is sized for: the prompt margin plus the longest reply.
    pub tokens: u32,
}

impl InferenceMemory {
    pub fn total_gb(&self) -> f64 {
        self.weights_gb + self.adapter_gb + self.kv_cache_gb + self.working_gb + self.overhead_gb
    }
}

/// The memory a worker needs for model `m` with an adapter of `adapter_bytes`, answering
/// replies of up to `max_new_tokens` (see the module docs).
pub fn inference_memory(
    m: &ModelSize,
    on_gpu: bool,
    adapter_bytes: u64,
    max_new_tokens: u32,
) -> InferenceMemory {
    let bytes = if on_gpu {
        BYTES_PER_PARAM_GPU
    } else {
        BYTES_PER_PARAM_CPU
    };
    let tokens = PROMPT_TOKENS.saturating_add(max_new_tokens);
    let weights = m.parameters as f64 * bytes;
    let adapter = adapter_bytes as f64;
    let kv = 2.0 * m.num_layers as f64 * m.kv_dim as f64 * tokens as f64 * bytes;
    let working = PROMPT_TOKENS as f64
        * (4.0 * m.hidden_size as f64 + 3.0 * m.intermediate_size as f64)
        * bytes
        + m.vocab_size as f64 * 4.0;
    let runtime = if on_gpu { CONTEXT_GB } else { CPU_RUNTIME_GB };
    InferenceMemory {
        weights_gb: weights / GB,
        adapter_gb: adapter / GB,
        kv_cache_gb: kv / GB,
        working_gb: working / GB,
        overhead_gb: runtime + FRAGMENTATION * (weights + adapter + kv + working) / GB,
        tokens,
    }
}

/// The check's answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InferenceFit {
    pub verdict: FitVerdict,
    pub required_gb: f64,
    pub available_gb: f64,
    pub device: InferenceDevice,
    pub breakdown: InferenceMemory,
    /// The largest `[playground] max_new_tokens_limit` that fits, when lowering it is enough
    /// (and it does not fit as it is).
    pub fitting_limit: Option<u32>,
}

impl InferenceFit {
    /// Whether the worker may start (`fits` or `tight`).
    pub fn fits(&self) -> bool {
        self.verdict.fits()
    }
}

/// Checks model `m` (with an adapter of `adapter_bytes`) on `device` for replies of up to
/// `max_new_tokens_limit`.
pub fn check_inference_fit(
    m: &ModelSize,
    adapter_bytes: u64,
    max_new_tokens_limit: u32,
    device: InferenceDevice,
) -> InferenceFit {
    let on_gpu = device.on_gpu();
    let available = device.memory_gb();
    let breakdown = inference_memory(m, on_gpu, adapter_bytes, max_new_tokens_limit);
    let required = breakdown.total_gb();
    let verdict = FitVerdict::of(required, available);
    let fitting_limit = (verdict == FitVerdict::WillNotFit)
        .then(|| {
            // The required memory grows with the limit: the largest limit that fits, by
            // bisection over 1..limit.
            let fits = |limit: u32| {
                inference_memory(m, on_gpu, adapter_bytes, limit).total_gb() <= available
            };
            if !fits(1) {
                return None;
            }
            let (mut lo, mut hi) = (1u32, max_new_tokens_limit);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if fits(mid) { lo = mid } else { hi = mid }
            }
            Some(lo)
        })
        .flatten();
    InferenceFit {
        verdict,
        required_gb: required,
        available_gb: available,
        device,
        breakdown,
        fitting_limit,
    }
}

/// What the refusal says after its figures: what to do, most effective first. `eval_hint`
/// is the command that judges the model on a cluster instead
/// ([`crate::chat::eval_hint`]).
pub fn refusal_advice(fit: &InferenceFit, eval_hint: &str) -> Vec<String> {
    let mut advice = Vec::new();
    if let Some(limit) = fit.fitting_limit {
        advice.push(format!(
            "lower `[playground] max_new_tokens_limit` to {limit} or less (the KV cache's share)"
        ));
    }
    match &fit.device {
        InferenceDevice::Gpu { .. } => {
            advice.push("run the engine on a machine with a larger GPU".into());
            advice.push(format!("judge the model on a cluster instead: {eval_hint}"));
        }
        InferenceDevice::Cpu { .. } => {
            advice.push(format!(
                "chat runs on the engine's machine, here on its CPU: judge the model on a cluster's GPU instead with {eval_hint}"
            ));
            advice.push(
                "or run the engine (`brightrun serve`) on a machine with a GPU and attach to it"
                    .into(),
            );
        }
    }
    advice
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::training::models::builtin;

    fn approx(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6 * b.abs().max(1.0)
    }

    #[test]
    fn weights_are_16_bit_on_a_gpu_and_fp32_on_a_cpu() {
        let m = builtin("mistralai/Mistral-7B-v0.1").unwrap();
        let gpu = inference_memory(&m, true, 0, 2048);
        let cpu = inference_memory(&m, false, 0, 2048);
        // 7,241,732,096 parameters × 2 bytes = 13.49 GB; × 4 = 26.98 GB.
        assert!(approx(gpu.weights_gb, 7_241_732_096.0 * 2.0 / GB));
        assert!(approx(cpu.weights_gb, 2.0 * gpu.weights_gb));
        assert!((gpu.weights_gb - 13.49).abs() < 0.01, "{}", gpu.weights_gb);
        assert_eq!(gpu.tokens, 1024 + 2048);
    }

    #[test]
    fn the_kv_cache_is_keys_and_values_per_layer_per_token() {
        let m = builtin("mistralai/Mistral-7B-v0.1").unwrap();
        // 2 (K, V) × 32 layers × 1024 (8 key/value heads × 128) × 3072 tokens × 2 bytes.
        let kv = 2.0 * 32.0 * 1024.0 * 3072.0 * 2.0 / GB;
        let gpu = inference_memory(&m, true, 0, 2048);
        assert!(approx(gpu.kv_cache_gb, kv), "{} vs {kv}", gpu.kv_cache_gb);
        assert!((gpu.kv_cache_gb - 0.375).abs() < 1e-9);
        // Longer replies cost proportionally more cache; the weights do not change.
        let longer = inference_memory(&m, true, 0, 2 * 2048 + 1024);
        assert!(approx(longer.kv_cache_gb, 2.0 * kv));
        assert_eq!(longer.weights_gb, gpu.weights_gb);
    }

    #[test]
    fn overhead_is_the_cuda_context_or_the_python_process_plus_fragmentation() {
        let m = builtin("brightrun/smollm2-135m-instruct").unwrap();
        let adapter = 3 * 1024 * 1024;
        let gpu = inference_memory(&m, true, adapter, 2048);
        let rest = gpu.weights_gb + gpu.adapter_gb + gpu.kv_cache_gb + gpu.working_gb;
        assert!(approx(gpu.overhead_gb, CONTEXT_GB + 0.1 * rest));
        assert!(approx(gpu.adapter_gb, 3.0 / 1024.0));
        let cpu = inference_memory(&m, false, adapter, 2048);
        let rest = cpu.weights_gb + cpu.adapter_gb + cpu.kv_cache_gb + cpu.working_gb;
        assert!(approx(cpu.overhead_gb, CPU_RUNTIME_GB + 0.1 * rest));
        assert!(approx(cpu.total_gb(), rest + CPU_RUNTIME_GB + 0.1 * rest));
        // SmolLM2-135M on a CPU: 0.50 GB of fp32 weights, ~1.5 GB in all.
        assert!((cpu.weights_gb - 0.501).abs() < 0.001, "{}", cpu.weights_gb);
        assert!(
            cpu.total_gb() > 1.3 && cpu.total_gb() < 1.7,
            "{}",
            cpu.total_gb()
        );
    }

    #[test]
    fn verdicts_against_the_device() {
        let m = builtin("mistralai/Mistral-7B-v0.1").unwrap();
        let a10g = InferenceDevice::Gpu {
            name: "NVIDIA A10G".into(),
            memory_gb: 22.0,
        };
        let fit = check_inference_fit(&m, 0, 2048, a10g);
        // 13.5 weights + 0.4 cache + 0.1 working + 1.0 context + 1.4 fragmentation ≈ 16.4 GB.
        assert_eq!(fit.verdict, FitVerdict::Fits, "{fit:?}");
        assert!((fit.required_gb - 16.4).abs() < 0.1, "{}", fit.required_gb);
        assert_eq!(fit.fitting_limit, None);

        let t4 = InferenceDevice::Gpu {
            name: "Tesla T4".into(),
            memory_gb: 15.0,
        };
        let fit = check_inference_fit(&m, 0, 2048, t4);
        assert_eq!(fit.verdict, FitVerdict::WillNotFit);
        // The weights alone leave no room: lowering the limit is not enough.
        assert_eq!(fit.fitting_limit, None);
        assert!(!fit.fits());

        // A CPU machine with 32 GB: fp32 Mistral-7B needs ~31.4 GB: tight, allowed.
        let cpu = InferenceDevice::Cpu { memory_gb: 32.0 };
        let fit = check_inference_fit(&m, 0, 2048, cpu);
        assert_eq!(fit.verdict, FitVerdict::Tight, "{}", fit.required_gb);
        assert!(fit.fits());
    }

    #[test]
    fn a_lower_limit_is_suggested_when_the_cache_is_what_does_not_fit() {
        let m = builtin("mistralai/Mistral-7B-v0.1").unwrap();
        let device = InferenceDevice::Gpu {
            name: "an 18 GB GPU".into(),
            memory_gb: 18.0,
        };
        // 2,048 new tokens fit (16.4 GB); 32,768 need 4.1 GB of cache: 20.5 GB in all.
        assert!(check_inference_fit(&m, 0, 2048, device.clone()).fits());
        let fit = check_inference_fit(&m, 0, 32_768, device.clone());
        assert_eq!(fit.verdict, FitVerdict::WillNotFit, "{}", fit.required_gb);
        let limit = fit.fitting_limit.expect("a smaller limit fits");
        assert!(limit < 32_768 && limit > 2048, "{limit}");
        // The suggested limit fits and one more token does not.
        let at = |l| check_inference_fit(&m, 0, l, device.clone());
        assert!(at(limit).fits());
        assert!(!at(limit + 1).fits());
        let advice = refusal_advice(&fit, "`brightrun models eval 1a2b --backend NAME`");
        assert!(
            advice[0].contains(&format!("max_new_tokens_limit` to {limit}")),
            "{advice:?}"
        );
        assert!(advice.iter().any(|a| a.contains("models eval 1a2b")));
    }

    #[test]
    fn a_cpu_refusal_says_chat_runs_on_the_engines_cpu_and_names_the_cluster_command() {
        let m = builtin("brightrun/smollm2-135m-instruct").unwrap();
        let fit = check_inference_fit(&m, 0, 2048, InferenceDevice::Cpu { memory_gb: 1.0 });
        assert_eq!(fit.verdict, FitVerdict::WillNotFit);
        // The Python process alone is 0.8 GB: no limit makes 1 GB enough.
        assert_eq!(fit.fitting_limit, None);
        let advice = refusal_advice(&fit, "`brightrun models eval 1a2b --backend NAME`");
        assert!(advice[0].contains("its CPU"), "{advice:?}");
        assert!(advice[0].contains("brightrun models eval 1a2b --backend NAME"));
        assert_eq!(
            InferenceDevice::Cpu { memory_gb: 1.0 }.describe(),
            "the engine's machine (no GPU; 1.0 GB of RAM)"
        );
    }

    #[test]
    fn the_tiny_model_needs_little_more_than_the_runtime() {
        let m = builtin("brightrun/tiny-random-llama").unwrap();
        let cpu = inference_memory(&m, false, 100_000, 2048);
        assert!(cpu.total_gb() < CPU_RUNTIME_GB + 0.01, "{}", cpu.total_gb());
        assert!(cpu.total_gb() > CPU_RUNTIME_GB);
    }
}
