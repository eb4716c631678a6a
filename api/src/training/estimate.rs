//! What a run will cost and how long it will take: the seed's formula, kept exactly so
//! figures agree with the web platform's, plus the memory-fit check and the budget effect.
//!
//! The seed's formula, step by step (every figure is in [`TrainingDetails`]):
//!
//! 1. `steps_per_epoch = ceil(training_pairs / batch_size)`; `total_steps = steps_per_epoch ×
//!    epochs`. A **step** is one forward/backward pass over one batch of `batch_size`
//!    examples, as in the seed. With gradient accumulation an optimiser update happens every
//!    `gradient_accumulation_steps` steps; that changes neither the work nor the time, so it
//!    only shows up in `optimizer_steps` (what the trainer's progress counts as its steps).
//! 2. `tokens_per_example = total_tokens / total_examples`: the dataset's average over all
//!    examples, so it applies to the training pairs' share when part is held out (the seed
//!    divides by training pairs, which is the same when nothing is held out and overstates
//!    it otherwise). It is capped at `max_seq_length`, since longer examples are truncated.
//! 3. `seconds_per_step = tokens_per_example × batch_size / (tokens_per_sec × gpu_count)`:
//!    the GPUs share each batch (data parallel), so more GPUs shorten every step. (Here
//!    `tokens_per_sec` is scaled to the model, or calibrated: see below.)
//! 4. `training_hours = total_steps × seconds_per_step / 3600`.
//! 5. `overhead = 10 min (start-up, model download and load) + 5 min per epoch (evaluation
//!    and checkpoints) + 5 min (saving the adapter)`.
//! 6. `estimated_duration_hours = training_hours + overhead_hours`.
//! 7. `hourly_rate = price_per_gpu_hour × gpu_count`; `compute = hourly_rate ×
//!    estimated_duration_hours` (the GPUs are held, and billed, during the overhead too);
//!    `storage = training.storage_cost_per_job` (the seed's flat $0.50);
//!    `estimated_cost = compute + storage`.
//!
//! Training pairs are the dataset's `total_training_pairs`; when `use_validation` is off the
//! held-out pairs train too (the trainer then uses every example), so they are added.
//!
//! ## The model's size, calibration and this machine
//!
//! The seed's formula has one `tokens_per_sec` per GPU and no model in it. We read the
//! catalog's figure as the throughput for the seed's default model, Mistral-7B
//! ([`REFERENCE_PARAMETERS`]), and scale it for other models by their training FLOPs per
//! token, about 6 × parameters (forward 2, backward 4: LoRA skips the weight gradients of the
//! frozen model but still back-propagates through it): `tokens_per_sec × 6·P_ref / 6·P`.
//! QLoRA dequantises every 4-bit weight in the forward and the backward pass, so its
//! throughput is divided by [`QLORA_SLOWDOWN`]. Mistral-7B's numbers stay the seed's.
//!
//! When completed runs of the same setting (GPU type and count, base model, quantization,
//! method) measured their throughput, the mean of those measurements replaces the scaled
//! catalog figure ([`super::calibration`]).
//!
//! ## Preference methods
//!
//! A preference run does more per token than SFT, counted in training FLOPs per token per
//! parameter ([`method_flops_per_parameter`]): the policy's forward and backward (6) over
//! both replies of a pair, plus for DPO the reference's forward (2, the base with the adapter
//! disabled), and for KTO the reference's forward and the KL term's forward through policy
//! and reference over mismatched pairs (2 + 2 + 2). ORPO and SimPO have no reference (6).
//! The uncalibrated throughput is divided by `flops / 6`, and an example's tokens are what
//! the trainer runs: a pair's prompt twice with both replies (`PreferenceStatistics`), each
//! sequence capped at `max_seq_length`. Calibration is kept per method, so a calibrated
//! figure already holds the method's work.
//!
//! The `local` GPU type is this machine (the local backend's detected GPUs, or its CPU): its
//! price is `[backends.local] price_per_hour` for the whole machine, and instead of the
//! seed's cluster overhead (provisioning, download, upload) it has [`LOCAL_STARTUP_SECONDS`]
//! plus the seed's overhead scaled by the model's size (at most the seed's).
//!
//! A CPU (this machine without a CUDA GPU) is measured rather than scaled alone: per-token
//! work still scales with the model's size from [`crate::hardware::CPU_TOKENS_PER_SEC_PER_CORE`],
//! but every step also costs [`CPU_SECONDS_PER_STEP`] and the run [`cpu_fixed_seconds`] (start-up,
//! loading, saving), which is nearly all of a small model's time: scaling the throughput alone
//! put a 116k-parameter model at 62,619× Mistral-7B's speed and made "about 20 s" runs take 68.
//! A calibrated CPU throughput (tokens over the measured training time) includes the per-step
//! cost, so it is not added again.

use super::budget::{BudgetEffect, budget_effect};
use super::calibration::Calibration;
use super::fit::{Fit, FitVerdict, check_fit, effective_seq_len};
use super::gpus::{GpuCatalog, UnknownGpu};
use super::models::{self, ModelSize, UnknownModel};
use super::ranges::{self, RangeError};
use crate::config::{BudgetConfig, EvaluationConfig, TrainingConfig};
use crate::domain::{DataKind, DatasetStatistics, Hyperparameters, MethodName, Quantization};
use crate::hardware::{CPU_LOAD_SECONDS_PER_BILLION, CPU_SECONDS_PER_STEP, CPU_STARTUP_SECONDS};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The built-in probes the trainer asks after every run (trainer/brightrun_trainer/evaluation.py).
pub const BUILTIN_PROBES: u64 = 6;
/// The length an evaluation's answer is counted at: answers usually end well before
/// `max_new_tokens` (the built-in probes' and a chat dataset's replies are short).
pub const EXPECTED_ANSWER_TOKENS: u32 = 96;
/// Generating is slower per token than training: one token per sequence per forward pass.
/// On a GPU, memory-bound decoding runs at about a fifteenth of training's tokens/s; on a CPU,
/// which is compute-bound either way, at about the same (SmolLM2-135M here: 20 answers of up
/// to 256 tokens in 44 s against 54 tokens/s of training).
pub const GPU_DECODE_SLOWDOWN: f64 = 15.0;
pub const CPU_DECODE_SLOWDOWN: f64 = 1.3;

/// Minutes of fixed overhead before training: start-up, model download and load.
pub const STARTUP_MINUTES: f64 = 10.0;
/// Minutes of overhead per epoch: evaluation and checkpoints.
pub const PER_EPOCH_MINUTES: f64 = 5.0;
/// Minutes of fixed overhead after training: saving and uploading the adapter.
pub const FINISH_MINUTES: f64 = 5.0;

/// The model the catalog's `tokens_per_sec` is measured for: the seed's default,
/// `mistralai/Mistral-7B-v0.1`.
pub const REFERENCE_MODEL: &str = "mistralai/Mistral-7B-v0.1";
/// Its parameter count (the safetensors total).
pub const REFERENCE_PARAMETERS: u64 = 7_241_732_096;
/// Training FLOPs per token per parameter: forward 2, backward 4.
pub const TRAINING_FLOPS_PER_PARAMETER: f64 = 6.0;
/// Training FLOPs per token per parameter of a method (see the module docs): SFT's 6, plus
/// the reference's forward for DPO, and the reference's and the KL term's forwards for KTO.
pub fn method_flops_per_parameter(method: MethodName) -> f64 {
    match method {
        MethodName::Sft | MethodName::Orpo | MethodName::Simpo => TRAINING_FLOPS_PER_PARAMETER,
        MethodName::Dpo => TRAINING_FLOPS_PER_PARAMETER + 2.0,
        MethodName::Kto => TRAINING_FLOPS_PER_PARAMETER + 6.0,
    }
}

/// The tokens the trainer runs per example: a preference pair's prompt twice with both
/// replies (each sequence capped at `max_seq_length`); otherwise the dataset's mean example,
/// capped.
fn tokens_per_example(stats: &DatasetStatistics, hp: &Hyperparameters, all_examples: u64) -> f64 {
    let cap = hp.max_seq_length as f64;
    let mean = |total: u64, n: u64| total as f64 / n.max(1) as f64;
    match (&stats.preference, hp.method.name().data_kind()) {
        (Some(p), DataKind::Preference) if p.pairs > 0 => {
            let prompt = mean(p.prompt_tokens, p.pairs);
            (prompt + mean(p.chosen_tokens, p.pairs)).min(cap)
                + (prompt + mean(p.rejected_tokens, p.pairs)).min(cap)
        }
        _ => (stats.total_tokens as f64 / all_examples as f64).min(cap),
    }
}

/// QLoRA's throughput is the 16-bit run's divided by this: every 4-bit weight is dequantised
/// in the forward and again in the backward pass (the QLoRA paper and bitsandbytes'
/// benchmarks put the cost at 30–40% over 16-bit LoRA).
pub const QLORA_SLOWDOWN: f64 = 1.4;
/// Seconds a run on this machine takes before and after training whatever the model:
/// starting Python and importing torch, PEFT and TRL.
pub const LOCAL_STARTUP_SECONDS: f64 = 20.0;

/// Everything an estimate depends on. Borrowed, so the TUI can re-estimate on every change
/// without cloning its state.
#[derive(Clone, Copy, Debug)]
pub struct EstimateInput<'a> {
    pub statistics: &'a DatasetStatistics,
    pub hyperparameters: &'a Hyperparameters,
    /// A catalog id, matched without regard to case.
    pub gpu_type: &'a str,
    pub gpu_count: u32,
    pub catalog: &'a GpuCatalog,
    /// For the storage cost and the model size table's config entries.
    pub training: &'a TrainingConfig,
    /// The base model's size when the table does not know it (`--set parameters_billions=…`).
    pub parameters_billions: Option<f64>,
    pub budget: &'a BudgetConfig,
    /// This calendar month's recorded costs so far, US dollars.
    pub spent_this_month: f64,
    /// What earlier completed runs of this setting measured, if any.
    pub calibration: Option<Calibration>,
    /// `[evaluation]`, when runs are evaluated (its time is part of the run's).
    pub evaluation: Option<&'a EvaluationConfig>,
}

/// Why no estimate could be made. Each names what to fix.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum EstimateError {
    #[error("invalid hyperparameters: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<RangeError>),
    #[error(transparent)]
    GpuCount(RangeError),
    #[error(transparent)]
    UnknownGpu(#[from] UnknownGpu),
    #[error(transparent)]
    UnknownModel(#[from] UnknownModel),
    #[error("the dataset has no training examples or no tokens to estimate from; is it validated?")]
    EmptyDataset,
}

/// The seed's `cost_breakdown`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CostBreakdown {
    pub compute: f64,
    pub storage: f64,
}

/// The seed's `training_details`, plus the intermediate figures of the formula.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TrainingDetails {
    pub total_steps: u64,
    pub steps_per_epoch: u64,
    /// All GPUs together: `tokens_per_sec × gpu_count × model_factor` (see
    /// [`ThroughputBasis`]), or the calibrated mean of earlier runs of this setting.
    pub estimated_throughput_tokens_per_sec: f64,
    pub tokens_per_example: f64,
    pub training_hours: f64,
    pub overhead_hours: f64,
    /// The evaluation after training (`[evaluation]`, see [`evaluation_seconds`]); 0 when
    /// it is off.
    #[serde(default)]
    pub evaluation_hours: f64,
    pub seconds_per_step: f64,
    /// Examples trained on per epoch.
    pub training_examples: u64,
    pub epochs: u32,
    /// `batch_size × gradient_accumulation_steps`.
    pub effective_batch_size: u32,
    /// Optimiser updates: `ceil(steps_per_epoch / gradient_accumulation_steps) × epochs`.
    pub optimizer_steps: u64,
}

/// Where the throughput came from.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ThroughputSource {
    /// The catalog's tokens/s, scaled from Mistral-7B to the model.
    #[default]
    Catalog,
    /// This machine's detected hardware, scaled from Mistral-7B to the model.
    Local,
    /// The mean of completed runs of the same setting.
    Calibrated,
}

/// How the throughput was arrived at, so an estimate can say what it rests on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ThroughputBasis {
    pub source: ThroughputSource,
    /// Completed runs the calibrated figure averages (0 unless `calibrated`).
    pub calibration_runs: u32,
    /// What the uncalibrated figure would be: the GPU's tokens/s × GPUs × `model_factor`.
    pub uncalibrated_tokens_per_sec: f64,
    /// `REFERENCE_PARAMETERS / parameters`, divided by `QLORA_SLOWDOWN` for 4-bit runs.
    pub model_factor: f64,
    /// `6 × parameters`.
    pub training_flops_per_token: f64,
    /// For people: `calibrated from 3 runs` or `catalog 1,800/s per GPU (Mistral-7B) ×
    /// 0.103 for 71B parameters`.
    pub note: String,
}

/// An estimate, serialised with the seed's field names (`estimated_cost`, `cost_breakdown`,
/// `estimated_duration_hours`, `hourly_rate`, `training_details`) plus ours.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Estimate {
    /// US dollars: compute + storage.
    pub estimated_cost: f64,
    pub cost_breakdown: CostBreakdown,
    pub estimated_duration_hours: f64,
    /// US dollars per hour for all the run's GPUs.
    pub hourly_rate: f64,
    pub training_details: TrainingDetails,
    /// The catalog's spelling of the id asked for.
    pub gpu_type: String,
    pub gpu_count: u32,
    pub price_per_gpu_hour: f64,
    /// The base model's size as used by the fit check.
    pub model: ModelSize,
    pub fit: Fit,
    /// `None` without a configured monthly budget.
    pub budget: Option<BudgetEffect>,
    /// Things worth knowing before paying (truncation, fp16 on V100, estimated shapes).
    pub warnings: Vec<String>,
    /// Where the throughput came from (catalog, this machine, or calibrated by runs).
    #[serde(default)]
    pub throughput: ThroughputBasis,
    /// True for the `local` GPU type: this machine, priced at `[backends.local]
    /// price_per_hour` ("your machine").
    #[serde(default)]
    pub local: bool,
    /// This machine's CPU, with no GPU: memory is the machine's, not a GPU's.
    #[serde(default)]
    pub cpu: bool,
}

impl Estimate {
    /// Creating this job needs an explicit confirmation: it would exceed the monthly budget.
    pub fn needs_budget_confirmation(&self) -> bool {
        self.budget.as_ref().is_some_and(|b| b.exceeds)
    }
}

/// Estimates cost, duration, memory fit and budget effect. Checks every hyperparameter's
/// range and the GPU count first, so an estimate is never shown for a run that could not be
/// created.
pub fn estimate(input: &EstimateInput) -> Result<Estimate, EstimateError> {
    let hp = input.hyperparameters;
    let stats = input.statistics;
    ranges::check(hp).map_err(EstimateError::Invalid)?;
    ranges::check_gpu_count(input.gpu_count).map_err(EstimateError::GpuCount)?;
    let gpu = input.catalog.get(input.gpu_type)?;
    let model = models::resolve(&hp.base_model, input.training, input.parameters_billions)?;

    let training_examples = if hp.use_validation {
        stats.total_training_pairs
    } else {
        stats.total_training_pairs + stats.total_validation_pairs
    };
    let all_examples = if stats.total_examples > 0 {
        stats.total_examples
    } else {
        stats.total_training_pairs + stats.total_validation_pairs
    };
    if training_examples == 0 || stats.total_tokens == 0 || all_examples == 0 {
        return Err(EstimateError::EmptyDataset);
    }

    let gpus = input.gpu_count as f64;
    let batch = hp.batch_size as u64;
    let steps_per_epoch = training_examples.div_ceil(batch);
    let total_steps = steps_per_epoch * hp.epochs as u64;
    let optimizer_steps =
        steps_per_epoch.div_ceil(hp.gradient_accumulation_steps as u64) * hp.epochs as u64;
    let tokens_per_example = tokens_per_example(stats, hp, all_examples);
    let factor = model_factor(model.parameters, hp.quantization);
    let cpu_cores = gpu.cpu_cores.filter(|_| gpu.local);
    let method_flops = method_flops_per_parameter(hp.method.name());
    let uncalibrated =
        gpu.tokens_per_sec * gpus * factor * TRAINING_FLOPS_PER_PARAMETER / method_flops;
    let throughput_basis = match input.calibration.filter(|c| c.runs > 0) {
        Some(c) => ThroughputBasis {
            source: ThroughputSource::Calibrated,
            calibration_runs: c.runs,
            uncalibrated_tokens_per_sec: uncalibrated,
            model_factor: factor,
            training_flops_per_token: method_flops * model.parameters as f64,
            note: format!(
                "calibrated from {} run{}",
                c.runs,
                if c.runs == 1 { "" } else { "s" }
            ),
        },
        None => ThroughputBasis {
            source: if gpu.local {
                ThroughputSource::Local
            } else {
                ThroughputSource::Catalog
            },
            calibration_runs: 0,
            uncalibrated_tokens_per_sec: uncalibrated,
            model_factor: factor,
            training_flops_per_token: method_flops * model.parameters as f64,
            note: method_note(
                hp.method.name(),
                match cpu_cores {
                    // A CPU is one device with cores, not a GPU; and its fixed costs are named,
                    // since for a small model they are most of the time.
                    Some(cores) => format!(
                        "this machine's CPU ({cores} core{}) {}/s for Mistral-7B × {} for {}, plus {} s per step and {} s to start and finish",
                        if cores == 1 { "" } else { "s" },
                        format_rate(gpu.tokens_per_sec),
                        format_factor(factor),
                        model_label(&model, hp.quantization),
                        format_seconds(CPU_SECONDS_PER_STEP),
                        format_seconds(cpu_fixed_seconds(model.parameters)),
                    ),
                    None => format!(
                        "{} {}/s per GPU (Mistral-7B) × {} for {}",
                        if gpu.local { "this machine" } else { "catalog" },
                        group_thousands(gpu.tokens_per_sec),
                        format_factor(factor),
                        model_label(&model, hp.quantization),
                    ),
                },
            ),
        },
    };
    let throughput = match throughput_basis.source {
        ThroughputSource::Calibrated => input
            .calibration
            .map(|c| c.tokens_per_sec)
            .unwrap_or(uncalibrated),
        _ => uncalibrated,
    };
    // A CPU's fixed cost per step; a calibrated throughput (tokens over the measured training
    // time) already includes it.
    let step_overhead = match (cpu_cores, throughput_basis.source) {
        (Some(_), ThroughputSource::Local) => CPU_SECONDS_PER_STEP,
        _ => 0.0,
    };
    let seconds_per_step = tokens_per_example * hp.batch_size as f64 / throughput + step_overhead;
    let training_hours = total_steps as f64 * seconds_per_step / 3600.0;
    let seed_overhead_hours =
        (STARTUP_MINUTES + PER_EPOCH_MINUTES * hp.epochs as f64 + FINISH_MINUTES) / 60.0;
    let overhead_hours = if cpu_cores.is_some() {
        cpu_fixed_seconds(model.parameters) / 3600.0
    } else if gpu.local {
        LOCAL_STARTUP_SECONDS / 3600.0
            + seed_overhead_hours * (model.parameters as f64 / REFERENCE_PARAMETERS as f64).min(1.0)
    } else {
        seed_overhead_hours
    };
    let evaluation_hours = input.evaluation.filter(|e| e.enabled).map_or(0.0, |e| {
        let held_out = if hp.use_validation {
            stats.total_validation_pairs
        } else {
            0
        };
        let samples = u64::from(e.samples).min(held_out.max(training_examples));
        evaluation_seconds(
            e,
            held_out as f64 * tokens_per_example,
            samples,
            throughput,
            cpu_cores.is_some(),
        ) / 3600.0
    });
    let duration = training_hours + overhead_hours + evaluation_hours;
    let hourly_rate = gpu.price_per_hour * gpus;
    let compute = hourly_rate * duration;
    let storage = input.training.storage_cost_per_job.max(0.0);
    let estimated_cost = compute + storage;

    let seq_len = effective_seq_len(hp, Some(stats));
    let loss = super::fit::LossMode::from_config(input.training.efficiency.chunked_loss);
    let fit = check_fit(&model, hp, seq_len, gpu, input.catalog, loss);
    let budget = budget_effect(input.budget, input.spent_this_month, estimated_cost);

    let mut warnings = Vec::new();
    if stats.tokens_p95 > hp.max_seq_length as u64 {
        warnings.push(format!(
            "more than 5% of examples are longer than max_seq_length = {} (95th percentile: {} tokens) and will be truncated",
            hp.max_seq_length, stats.tokens_p95
        ));
    } else if stats.tokens_max > hp.max_seq_length as u64 {
        warnings.push(format!(
            "some examples are longer than max_seq_length = {} (the longest has {} tokens) and will be truncated",
            hp.max_seq_length, stats.tokens_max
        ));
    }
    if !gpu.bf16 {
        warnings.push(format!(
            "{} has no bfloat16: training runs in fp16 with loss scaling, which is less stable",
            gpu.id
        ));
    }
    if model.shape_estimated {
        warnings.push(format!(
            "the shape of {} was estimated from its parameter count: the memory figures are approximate",
            hp.base_model
        ));
    }
    if fit.verdict == FitVerdict::WillNotFit {
        warnings.push(if cpu_cores.is_some() {
            format!(
                "the run needs about {:.1} GB of memory and this machine has {:.0} GB: it would run out of memory",
                fit.required_gb, fit.available_gb
            )
        } else {
            format!(
                "the run needs about {:.1} GB per GPU and {} has {:.0} GB: it would run out of memory",
                fit.required_gb, gpu.id, fit.available_gb
            )
        });
    }

    Ok(Estimate {
        estimated_cost,
        cost_breakdown: CostBreakdown { compute, storage },
        estimated_duration_hours: duration,
        hourly_rate,
        training_details: TrainingDetails {
            total_steps,
            steps_per_epoch,
            estimated_throughput_tokens_per_sec: throughput,
            tokens_per_example,
            training_hours,
            overhead_hours,
            evaluation_hours,
            seconds_per_step,
            training_examples,
            epochs: hp.epochs,
            effective_batch_size: hp.batch_size * hp.gradient_accumulation_steps,
            optimizer_steps,
        },
        gpu_type: gpu.id.clone(),
        gpu_count: input.gpu_count,
        price_per_gpu_hour: gpu.price_per_hour,
        model,
        fit,
        budget,
        warnings,
        throughput: throughput_basis,
        local: gpu.local,
        cpu: cpu_cores.is_some(),
    })
}

/// The throughput note, with a preference method's extra work named.
fn method_note(method: MethodName, note: String) -> String {
    let flops = method_flops_per_parameter(method);
    if flops == TRAINING_FLOPS_PER_PARAMETER {
        return note;
    }
    format!(
        "{note}, × {} for {} ({} training FLOPs per token per parameter against SFT's {})",
        format_factor(TRAINING_FLOPS_PER_PARAMETER / flops),
        method.as_str(),
        flops,
        TRAINING_FLOPS_PER_PARAMETER
    )
}

/// How much faster than Mistral-7B a model trains per token: the ratio of training FLOPs per
/// token (`6 × parameters`), divided by [`QLORA_SLOWDOWN`] for QLoRA.
pub fn model_factor(parameters: u64, quantization: Quantization) -> f64 {
    let flops = TRAINING_FLOPS_PER_PARAMETER * parameters.max(1) as f64;
    let reference = TRAINING_FLOPS_PER_PARAMETER * REFERENCE_PARAMETERS as f64;
    let f = reference / flops;
    match quantization {
        Quantization::None => f,
        Quantization::FourBit => f / QLORA_SLOWDOWN,
    }
}

/// Seconds a run on this machine's CPU spends outside its steps: [`CPU_STARTUP_SECONDS`] plus
/// loading (and evaluating and checkpointing) the model, [`CPU_LOAD_SECONDS_PER_BILLION`].
pub fn cpu_fixed_seconds(parameters: u64) -> f64 {
    CPU_STARTUP_SECONDS + CPU_LOAD_SECONDS_PER_BILLION * parameters as f64 / 1e9
}

/// A rate for people: `0.6`, `12`, `1,800`.
fn format_rate(x: f64) -> String {
    if x < 10.0 {
        format!("{x:.1}")
    } else {
        group_thousands(x)
    }
}

/// Seconds for people: `0.15`, `2.5`, `24`.
fn format_seconds(x: f64) -> String {
    if x < 1.0 {
        format!("{x:.2}")
    } else if x < 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.0}")
    }
}

fn model_label(model: &ModelSize, q: Quantization) -> String {
    let b = model.parameters_billions();
    let size = if b >= 10.0 {
        format!("{b:.0}B")
    } else if b >= 1.0 {
        format!("{b:.1}B")
    } else if b >= 0.001 {
        format!("{:.0}M", b * 1e3)
    } else {
        format!("{:.0}k", b * 1e6)
    };
    match q {
        Quantization::None => format!("{size} parameters"),
        Quantization::FourBit => format!("{size} parameters in 4 bits"),
    }
}

fn format_factor(f: f64) -> String {
    if f >= 100.0 {
        group_thousands(f)
    } else if f >= 10.0 {
        format!("{f:.1}")
    } else {
        format!("{f:.3}")
    }
}

/// `1234567.8` → `1,234,568`.
fn group_thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// What a running (or cancelled) job has cost so far: `$/GPU-hour × GPUs × hours since it
/// started` (the seed's running cost; a cancelled job costs what it ran). A `now` before
/// `started` (clock skew between machines) counts as zero.
pub fn running_cost(
    price_per_gpu_hour: f64,
    gpu_count: u32,
    started: DateTime<Utc>,
    now: DateTime<Utc>,
) -> f64 {
    let millis = (now - started).num_milliseconds().max(0) as f64;
    price_per_gpu_hour * gpu_count as f64 * millis / 3_600_000.0
}

/// Seconds the `evaluating` stage takes: the held-out loss twice (base and adapter, a forward
/// pass each: a third of training's work per token) and two answers (base and adapter) to each
/// of `samples` examples and each built-in probe, at [`EXPECTED_ANSWER_TOKENS`] (or
/// `max_new_tokens`, when less) generated at training's `tokens_per_sec` slowed by the
/// decode factor. The team's own probes file is not read here: each of its probes adds as much
/// as a sample.
pub fn evaluation_seconds(
    cfg: &EvaluationConfig,
    held_out_tokens: f64,
    samples: u64,
    tokens_per_sec: f64,
    cpu: bool,
) -> f64 {
    if tokens_per_sec <= 0.0 {
        return 0.0;
    }
    let losses = 2.0 * held_out_tokens / (3.0 * tokens_per_sec);
    let prompts = samples
        + if cfg.builtin_probes {
            BUILTIN_PROBES
        } else {
            0
        };
    let answer = f64::from(cfg.max_new_tokens.min(EXPECTED_ANSWER_TOKENS));
    let slowdown = if cpu {
        CPU_DECODE_SLOWDOWN
    } else {
        GPU_DECODE_SLOWDOWN
    };
    losses + 2.0 * prompts as f64 * answer * slowdown / tokens_per_sec
}

/// What an evaluation job (`brightrun models eval`) answers with and where.
pub struct EvaluationJobInput<'a> {
    /// The first model's run: its base model, quantization and sequence length.
    pub hyperparameters: &'a Hyperparameters,
    pub parameters_billions: Option<f64>,
    pub gpu_type: &'a str,
    pub gpu_count: u32,
    pub catalog: &'a GpuCatalog,
    pub training: &'a TrainingConfig,
    pub calibration: Option<Calibration>,
    /// Prompts each model answers, and the longest answer.
    pub prompts: u64,
    pub max_new_tokens: u32,
    /// Held-out tokens each model's loss is measured on (0 with the user's prompts).
    pub held_out_tokens: f64,
    /// Models answering (adapters and their bases), and distinct bases (each loaded once).
    pub columns: u32,
    pub bases: u32,
}

/// An evaluation job's duration and price.
#[derive(Clone, Debug, PartialEq)]
pub struct EvaluationJobEstimate {
    pub hours: f64,
    pub cost: f64,
    pub price_per_gpu_hour: f64,
}

/// An evaluation job's time: each base's loading (a CPU's fixed cost, or a GPU machine's
/// start), then per column what [`evaluation_seconds`] counts for one of its two models (a
/// held-out loss pass and the answers), at the training throughput of the first model's run.
pub fn evaluation_job(input: &EvaluationJobInput) -> Result<EvaluationJobEstimate, EstimateError> {
    let hp = input.hyperparameters;
    ranges::check_gpu_count(input.gpu_count).map_err(EstimateError::GpuCount)?;
    let gpu = input.catalog.get(input.gpu_type)?;
    let model = models::resolve(&hp.base_model, input.training, input.parameters_billions)?;
    let cpu = gpu.cpu_cores.filter(|_| gpu.local).is_some();
    let throughput = input
        .calibration
        .filter(|c| c.runs > 0)
        .map(|c| c.tokens_per_sec)
        .unwrap_or(
            gpu.tokens_per_sec
                * f64::from(input.gpu_count)
                * model_factor(model.parameters, hp.quantization),
        );
    let answers = EvaluationConfig {
        builtin_probes: false,
        max_new_tokens: input.max_new_tokens,
        ..EvaluationConfig::default()
    };
    let per_pair = evaluation_seconds(
        &answers,
        input.held_out_tokens,
        input.prompts,
        throughput,
        cpu,
    );
    let loading = if cpu {
        cpu_fixed_seconds(model.parameters)
    } else {
        LOCAL_STARTUP_SECONDS
    };
    let seconds = per_pair / 2.0 * f64::from(input.columns) + loading * f64::from(input.bases);
    let hours = seconds / 3600.0;
    Ok(EvaluationJobEstimate {
        hours,
        cost: hours * gpu.price_per_hour * f64::from(input.gpu_count),
        price_per_gpu_hour: gpu.price_per_hour,
    })
}

/// What an export job (`brightrun models export`) writes and where.
pub struct ExportJobInput<'a> {
    /// The exported model's run: its base model.
    pub hyperparameters: &'a Hyperparameters,
    pub parameters_billions: Option<f64>,
    pub gpu_type: &'a str,
    pub gpu_count: u32,
    pub catalog: &'a GpuCatalog,
    pub training: &'a TrainingConfig,
    pub format: crate::domain::ExportFormat,
    pub dtype: crate::domain::ExportDtype,
    pub quantize: Option<&'a str>,
}

/// An export job's duration and price.
#[derive(Clone, Debug, PartialEq)]
pub struct ExportJobEstimate {
    pub hours: f64,
    pub cost: f64,
    pub price_per_gpu_hour: f64,
    /// The bytes the export is expected to store.
    pub output_bytes: f64,
}

/// How fast an export moves weights through memory and disk (bytes per second): merging,
/// writing safetensors, llama.cpp's conversion reading them back. Measured on SmolLM2-135M
/// (bench/export.sh: ~0.5 GB of fp32 weights through each pass in about 3 s on 2 cores).
pub const EXPORT_BYTES_PER_SECOND: f64 = 150e6;

/// An export job's time: loading the base (as an evaluation does), then each pass over the
/// weights at [`EXPORT_BYTES_PER_SECOND`] (merge and write; for a GGUF, llama.cpp's
/// conversion; quantizing; loading the result back for the check), and the check's load of
/// base + adapter. A GGUF LoRA converts the base once more for its check.
pub fn export_job(input: &ExportJobInput) -> Result<ExportJobEstimate, EstimateError> {
    use crate::domain::ExportFormat;
    let hp = input.hyperparameters;
    ranges::check_gpu_count(input.gpu_count).map_err(EstimateError::GpuCount)?;
    let gpu = input.catalog.get(input.gpu_type)?;
    let model = models::resolve(&hp.base_model, input.training, input.parameters_billions)?;
    let cpu = gpu.cpu_cores.filter(|_| gpu.local).is_some();
    let loading = if cpu {
        cpu_fixed_seconds(model.parameters)
    } else {
        LOCAL_STARTUP_SECONDS
    };
    let params = model.parameters as f64;
    let fp32 = params * 4.0;
    let written = params * input.dtype.bytes();
    let (passes, output_bytes) = match input.format {
        // Merge and write, then read back for the check.
        ExportFormat::Merged => (fp32 + 2.0 * written, written),
        // The merged scratch copy, the conversion, the quantization, the check's load.
        ExportFormat::Gguf => {
            let quantized = input
                .quantize
                .map(|q| params * crate::domain::quantized_bits(q) / 8.0);
            let out = quantized.unwrap_or(written);
            (
                2.0 * fp32 + written + quantized.map_or(0.0, |q| written + q) + out,
                out,
            )
        }
        // The base's GGUF for the check; the adapter itself is small.
        ExportFormat::GgufLora => (fp32 + 2.0 * written, written * 0.01),
    };
    let seconds = 2.0 * loading + passes / EXPORT_BYTES_PER_SECOND;
    let hours = seconds / 3600.0;
    Ok(ExportJobEstimate {
        hours,
        cost: hours * gpu.price_per_hour * f64::from(input.gpu_count),
        price_per_gpu_hour: gpu.price_per_hour,
        output_bytes,
    })
}
