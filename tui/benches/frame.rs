//! Frame time at 200x50 with 100,000 jobs, 10,000 datasets and a job of 1,000,000 metric
//! points on the Jobs monitor (target: under 5 ms a frame).
//!
//! `cargo bench -p brightrun-tui --bench frame`

use brightrun_api::domain::*;
use brightrun_api::events::EngineEvent;
use brightrun_tui::fixtures;
use brightrun_tui::{App, Outcome, Snapshot, Tab};
use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::hint::black_box;
use std::sync::Arc;

const JOBS: u128 = 100_000;
const DATASETS: u128 = 10_000;

fn big_snapshot() -> Snapshot {
    let datasets = (1..=DATASETS)
        .map(|n| {
            fixtures::dataset(
                n,
                &format!("dataset-{n:05}"),
                DatasetStatus::Ready,
                (n as i64) * 7,
            )
        })
        .collect();
    let statuses = [
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Cancelled,
        JobStatus::Completed,
    ];
    let jobs = (1..=JOBS)
        .map(|n| {
            // Job 1 is the newest and running: the monitor shows it.
            let status = if n <= 5 {
                JobStatus::Running
            } else {
                statuses[n as usize % 4]
            };
            fixtures::job(n, (n % DATASETS) + 1, status, n as i64)
        })
        .collect();
    Snapshot {
        datasets,
        jobs,
        ..fixtures::snapshot()
    }
}

fn app_with_points(points: u64) -> App {
    let mut app = App::new(big_snapshot(), &Default::default());
    app.set_now(fixtures::now());
    app.go_tab(Tab::Jobs);
    let job = fixtures::job_id(1);
    app.apply_outcome(Outcome::JobDetail {
        job_id: job,
        metrics: Ok(fixtures::metrics(job, points)),
        log: Ok((0..1000)
            .map(|i| format!("step {i} loss 1.23 lr 4e-5"))
            .collect()),
        checkpoints: Ok(fixtures::checkpoints(job)),
    });
    assert_eq!(app.selected_job().unwrap().id, job);
    app
}

fn frame(c: &mut Criterion) {
    let mut term = Terminal::new(TestBackend::new(200, 50)).unwrap();

    let mut small = app_with_points(100);
    c.bench_function("jobs monitor, 100 points", |b| {
        b.iter(|| {
            term.draw(|f| small.draw(f)).unwrap();
        })
    });
    drop(small);

    let mut app = app_with_points(1_000_000);
    c.bench_function("jobs monitor, 1M points (redraw)", |b| {
        b.iter(|| {
            term.draw(|f| app.draw(f)).unwrap();
        })
    });

    // Every frame gets a new point: the downsampled series is recomputed each time.
    let job = fixtures::job_id(1);
    let mut step = 1_000_000u64;
    let template = fixtures::metrics(job, 1)[0].clone();
    c.bench_function("jobs monitor, 1M points + 1 new point per frame", |b| {
        b.iter(|| {
            step += 1;
            let mut p = template.clone();
            p.step = step;
            app.apply_event(EngineEvent::Metrics {
                job_id: job,
                points: Arc::new(vec![p]),
            });
            {
                term.draw(|f| app.draw(f)).unwrap();
            }
        })
    });

    // A progress update of a running job (the common live event), then a frame.
    let mut progress = 45.0;
    c.bench_function("jobs list of 100k, job update + frame", |b| {
        b.iter(|| {
            progress = if progress >= 99.0 {
                1.0
            } else {
                progress + 0.1
            };
            let mut j = fixtures::job(2, 3, JobStatus::Running, 2);
            j.progress = progress;
            app.apply_event(EngineEvent::Job(Arc::new(j)));
            {
                term.draw(|f| app.draw(f)).unwrap();
            }
        })
    });

    c.bench_function("filter 100k jobs (one keystroke)", |b| {
        let mut flip = false;
        b.iter(|| {
            flip = !flip;
            app.set_filter(
                Tab::Jobs,
                if flip {
                    "dataset-01".into()
                } else {
                    "dataset-0".into()
                },
            );
            black_box(app.job_list.len())
        })
    });
    app.set_filter(Tab::Jobs, String::new());

    app.go_tab(Tab::Datasets);
    c.bench_function("datasets tab, 10k datasets", |b| {
        b.iter(|| {
            term.draw(|f| app.draw(f)).unwrap();
        })
    });

    app.go_tab(Tab::Notifications);
    c.bench_function("notifications tab", |b| {
        b.iter(|| {
            term.draw(|f| app.draw(f)).unwrap();
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(4));
    targets = frame
}
criterion_main!(benches);
