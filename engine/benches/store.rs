//! Metrics ingestion into the store: points per second when written in batches of the sizes
//! the engine produces (one poll's worth of events per write transaction: 1 point while a job
//! is followed live, hundreds when a restarted engine catches up).

use brightrun_engine::domain::{MetricsPoint, now};
use brightrun_engine::ids::JobId;
use brightrun_engine::store::Store;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn points(job: JobId, from: u64, n: u64) -> Vec<MetricsPoint> {
    (from..from + n)
        .map(|step| MetricsPoint {
            job_id: job,
            timestamp: now(),
            epoch: step as f64 / 100.0,
            step,
            training_loss: Some(2.0 / (1.0 + step as f64)),
            validation_loss: (step % 50 == 0).then_some(1.5),
            learning_rate: Some(5e-5),
            gradient_norm: Some(0.8),
            throughput: Some(1800.0),
            gpu_utilization: Some(97.0),
            preference: None,
        })
        .collect()
}

fn ingestion(c: &mut Criterion) {
    let mut group = c.benchmark_group("metrics_ingestion");
    group.sample_size(20);
    for batch in [1u64, 10, 100, 1000] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("bench.redb")).unwrap();
        let job = JobId::new();
        let mut next = 0u64;
        group.throughput(Throughput::Elements(batch));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, &batch| {
            b.iter(|| {
                let p = points(job, next, batch);
                next += batch;
                store.write(|w| w.put_metrics(&p)).unwrap()
            })
        });
    }
    group.finish();
}

fn read_back(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("bench.redb")).unwrap();
    let job = JobId::new();
    for chunk in 0..100 {
        let p = points(job, chunk * 1000, 1000);
        store.write(|w| w.put_metrics(&p)).unwrap();
    }
    let mut group = c.benchmark_group("metrics_read");
    group.sample_size(10);
    group.throughput(Throughput::Elements(100_000));
    group.bench_function("100k_points", |b| {
        b.iter(|| store.metrics(job, 0, usize::MAX).unwrap().len())
    });
    group.finish();
}

criterion_group!(benches, ingestion, read_back);
criterion_main!(benches);
