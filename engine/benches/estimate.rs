//! Estimate latency, end to end: resolve the preset, build the GPU catalog from config, look
//! the GPU and the base model up, run the seed's formula, the memory-fit check (with its
//! suggestions) and the budget effect. The seed budgets 500 ms for a cost estimate (debounced
//! in its web UI); the TUI re-estimates on every key press, so this should be microseconds.
//!
//! `cargo bench -p brightrun-engine --bench estimate`

use brightrun_engine::config::{BudgetConfig, Config};
use brightrun_engine::domain::DatasetStatistics;
use brightrun_engine::training::{self, EstimateInput, GpuCatalog, presets};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn stats() -> DatasetStatistics {
    DatasetStatistics {
        total_examples: 1112,
        total_training_pairs: 1001,
        total_validation_pairs: 111,
        total_tokens: 556_000,
        tokens_p50: 450,
        tokens_p95: 1200,
        tokens_max: 1900,
        ..Default::default()
    }
}

/// Config with a user preset, a GPU override and an addition, so every lookup path runs.
fn config() -> Config {
    Config::parse(
        r#"
[training.presets.fast-r16]
base = "fast"
lora_rank = 16

[training.gpus.a100-80gb]
price_per_hour = 3.20

[training.gpus.MI300X]
price_per_hour = 3.99
tokens_per_sec = 2400.0
memory_gb = 192.0

[budget]
monthly_usd = 500.0
"#,
    )
    .expect("valid config")
}

fn run(cfg: &Config, stats: &DatasetStatistics, preset: &str, model: &str, gpu: &str) -> f64 {
    let (_, mut hp) = presets::resolve(preset, &cfg.training).expect("preset");
    hp.base_model = model.to_string();
    let catalog = GpuCatalog::from_config(&cfg.training).expect("catalog");
    let budget: &BudgetConfig = &cfg.budget;
    let e = training::estimate(&EstimateInput {
        statistics: stats,
        hyperparameters: &hp,
        gpu_type: gpu,
        gpu_count: 1,
        catalog: &catalog,
        training: &cfg.training,
        parameters_billions: None,
        budget,
        spent_this_month: 120.0,
        calibration: None,
        evaluation: None,
    })
    .expect("estimate");
    e.estimated_cost + e.fit.required_gb
}

fn bench(c: &mut Criterion) {
    let cfg = config();
    let stats = stats();
    // Fits: no suggestions to compute.
    c.bench_function("estimate/mistral-7b balanced A100-80GB (fits)", |b| {
        b.iter(|| {
            run(
                black_box(&cfg),
                black_box(&stats),
                "balanced",
                "mistralai/Mistral-7B-v0.1",
                "A100-80GB",
            )
        })
    });
    // Will not fit: the fit check searches batch sizes, sequence lengths and larger GPUs.
    c.bench_function("estimate/llama-3.1-8b fast-r16 A10G (will not fit)", |b| {
        b.iter(|| {
            run(
                black_box(&cfg),
                black_box(&stats),
                "fast-r16",
                "meta-llama/Llama-3.1-8B-Instruct",
                "a10g",
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
