//! Validation throughput (bytes per second) on generated OpenAI-chat data.
//!
//! `cargo bench -p brightrun-engine --bench validation`. The 200 MB comparison with the Python
//! baseline is `bench/validation.sh`; figures are in BENCHMARKS.md.

use brightrun_engine::validation::{ValidationOptions, synth, validate_reader};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn validation(c: &mut Criterion) {
    let mut jsonl = Vec::new();
    synth::write_openai_chat(&mut jsonl, 20_000_000, 7).unwrap();
    // The same examples as one JSON array (LLaMA-Factory's .json layout).
    let mut array = b"[\n".to_vec();
    for (i, line) in jsonl
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        if i > 0 {
            array.extend_from_slice(b",\n");
        }
        array.extend_from_slice(line);
    }
    array.extend_from_slice(b"\n]\n");
    let opts = ValidationOptions::default();

    let mut group = c.benchmark_group("validation");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(jsonl.len() as u64));
    group.bench_function("openai_chat_jsonl_20MB", |b| {
        b.iter(|| {
            let r =
                validate_reader(black_box(&jsonl[..]), "bench.jsonl", &opts, &mut |_| {}).unwrap();
            assert!(r.training_ready);
            r
        })
    });
    group.throughput(Throughput::Bytes(array.len() as u64));
    group.bench_function("openai_chat_json_array_20MB", |b| {
        b.iter(|| {
            let r =
                validate_reader(black_box(&array[..]), "bench.json", &opts, &mut |_| {}).unwrap();
            assert!(r.training_ready);
            r
        })
    });
    group.finish();
}

criterion_group!(benches, validation);
criterion_main!(benches);
