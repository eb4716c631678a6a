//! Validates one dataset file and prints the verdict and the throughput.
//!
//! `cargo run --release -p brightrun-engine --example validate -- FILE [--tokenizer tokenizer.json]
//! [--max-seq-length N] [--holdout F] [--issues]`

use brightrun_engine::validation::{self, ValidationOptions};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut file = None;
    let mut opts = ValidationOptions::default();
    let mut show_issues = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--tokenizer" => {
                let path = PathBuf::from(args.next().expect("--tokenizer PATH"));
                let t = validation::load_tokenizer(&path).unwrap_or_else(|e| {
                    eprintln!("{e}");
                    std::process::exit(2)
                });
                opts.tokenizer = Some(Arc::new(t));
            }
            "--max-seq-length" => {
                opts.max_seq_length = args.next().and_then(|v| v.parse().ok()).expect("N")
            }
            "--holdout" => {
                opts.holdout_fraction = args.next().and_then(|v| v.parse().ok()).expect("F")
            }
            "--issues" => show_issues = true,
            _ => file = Some(PathBuf::from(a)),
        }
    }
    let Some(file) = file else {
        eprintln!(
            "usage: validate FILE [--tokenizer PATH] [--max-seq-length N] [--holdout F] [--issues]"
        );
        std::process::exit(2);
    };
    let cpu_start = cpu_ns();
    let start = Instant::now();
    let mut bytes = 0;
    let report =
        validation::validate_path(&file, &opts, &mut |done| bytes = done).unwrap_or_else(|e| {
            eprintln!("cannot read {}: {e}", file.display());
            std::process::exit(2)
        });
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_ns().zip(cpu_start).map(|(b, a)| (b - a) as f64 / 1e9);
    let s = &report.statistics;
    println!(
        "format={} examples={} training={} validation={} tokens={} p50={} p95={} max={} duplicates={} over_max={} errors={} warnings={} ready={}",
        report.format.map_or("none", |f| f.as_str()),
        s.total_examples,
        s.total_training_pairs,
        s.total_validation_pairs,
        s.total_tokens,
        s.tokens_p50,
        s.tokens_p95,
        s.tokens_max,
        s.duplicate_examples,
        s.examples_over_max_seq_length,
        s.error_count,
        s.warning_count,
        report.training_ready
    );
    if show_issues {
        for i in &report.issues {
            println!(
                "line {}: {:?}: {} — {}",
                i.line, i.severity, i.error, i.suggestion
            );
        }
    }
    println!(
        "rust: {:.1} MB in {:.3} s = {:.1} MB/s",
        bytes as f64 / 1e6,
        secs,
        bytes as f64 / 1e6 / secs
    );
    if let Some(cpu) = cpu {
        println!(
            "rust cpu: {:.3} s = {:.1} MB/s of CPU time",
            cpu,
            bytes as f64 / 1e6 / cpu
        );
    }
}

/// CPU time of this (single-threaded) process so far, from Linux's /proc/self/schedstat.
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}
