//! Writes a realistic OpenAI-chat JSONL file for benchmarks.
//!
//! `cargo run --release -p brightrun-engine --example gen_dataset -- OUT [--size-mb 200] [--seed 1]`

use std::io::BufWriter;

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut out, mut size_mb, mut seed) = (None, 200u64, 1u64);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--size-mb" => size_mb = args.next().and_then(|v| v.parse().ok()).expect("N"),
            "--seed" => seed = args.next().and_then(|v| v.parse().ok()).expect("N"),
            _ => out = Some(a),
        }
    }
    let out = out.expect("usage: gen_dataset OUT [--size-mb N] [--seed N]");
    let file = std::fs::File::create(&out).expect("create the output file");
    let written = brightrun_engine::validation::synth::write_openai_chat(
        BufWriter::with_capacity(1 << 20, file),
        size_mb * 1_000_000,
        seed,
    )
    .expect("write");
    println!("wrote {out}: {:.1} MB", written as f64 / 1e6);
}
