//! Frame time at 200x50 with 100,000 jobs, 10,000 datasets and a job of 1,000,000 metric
//! points on the Jobs monitor (target: under 5 ms a frame); and the Jobs tab's Compare view
//! of 6 runs of 100,000 points each (the same target).
//!
//! `cargo bench -p brightrun-tui --bench frame`

use brightrun_api::domain::*;
use brightrun_api::events::EngineEvent;
use brightrun_api::ids::JobId;
use brightrun_tui::fixtures;
use brightrun_tui::{Action, App, Effect, Outcome, Snapshot, Tab};
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

/// The runs of the Compare view: jobs 1 to 6 of the big snapshot.
const RUNS: u128 = 6;
/// Steps (points) of each compared run.
const RUN_STEPS: u64 = 100_000;

/// Run `k` (0-based): seconds a step and tokens a second, when it started.
fn run_pace(k: usize) -> (f64, f64, Timestamp) {
    let secs_per_step = 0.5 + 0.1 * k as f64;
    let tokens_per_sec = 4_000.0 + 500.0 * k as f64;
    let start = fixtures::now() - chrono::Duration::hours(40) + chrono::Duration::hours(k as i64);
    (secs_per_step, tokens_per_sec, start)
}

/// A finished run's stored metrics: a point every step for 100,000 steps (training loss
/// falling towards `floor` with noise, the validation loss every 100 steps), each step
/// taking its pace ±10 % at its throughput ±5 %; run 3 paused 20 minutes at step 60,000 (a
/// resumed job).
fn run_points(job: JobId, k: usize) -> Vec<MetricsPoint> {
    let (secs_per_step, tokens_per_sec, start) = run_pace(k);
    let floor = 0.35 + 0.05 * k as f64;
    let mut ms = 0.0;
    (1..=RUN_STEPS)
        .map(|step| {
            let x = step as f64 / RUN_STEPS as f64;
            let noise = ((step * 7919 + k as u64 * 31) % 101) as f64 / 101.0 - 0.5;
            ms += secs_per_step * (1.0 + noise * 0.2) * 1e3;
            if k == 2 && step == 60_000 {
                ms += 20.0 * 60e3;
            }
            MetricsPoint {
                job_id: job,
                timestamp: start + chrono::Duration::milliseconds(ms as i64),
                epoch: x * 3.0,
                step,
                training_loss: Some(2.0 * (-4.0 * x).exp() + floor + noise * 0.15),
                validation_loss: (step % 100 == 0)
                    .then(|| 2.0 * (-3.6 * x).exp() + floor + 0.12 + noise * 0.02),
                learning_rate: Some(2e-4 * 0.5 * (1.0 + (std::f64::consts::PI * x).cos())),
                gradient_norm: Some(1.0 + noise * 0.4 + (1.0 - x)),
                throughput: Some(tokens_per_sec * (1.0 + noise * 0.1)),
                gpu_utilization: Some(92.0 + noise * 10.0),
                preference: None,
            }
        })
        .collect()
}

/// The big snapshot with jobs 1 to 6 as finished runs of 100,000 steps.
fn compare_snapshot() -> Snapshot {
    let mut snap = big_snapshot();
    for (k, j) in snap.jobs.iter_mut().take(RUNS as usize).enumerate() {
        let (secs_per_step, _, start) = run_pace(k);
        j.status = JobStatus::Completed;
        j.current_stage = JobStage::Completed;
        j.progress = 100.0;
        j.current_epoch = 3;
        j.current_step = RUN_STEPS;
        j.total_steps = RUN_STEPS;
        j.started_at = Some(start);
        j.completed_at =
            Some(start + chrono::Duration::seconds((secs_per_step * RUN_STEPS as f64) as i64));
        j.estimated_completion_at = None;
    }
    snap
}

/// The engine's comparison of the runs, from their points (as `compare_runs` would make it).
fn run_comparison(snap: &Snapshot, points: &[Vec<MetricsPoint>]) -> RunComparison {
    let template = fixtures::comparison().runs[1].clone();
    let runs: Vec<ComparedRun> = points
        .iter()
        .enumerate()
        .map(|(k, pts)| {
            let j = &snap.jobs[k];
            let lowest = |f: fn(&MetricsPoint) -> Option<f64>| {
                pts.iter().filter_map(f).min_by(f64::total_cmp)
            };
            let last = |f: fn(&MetricsPoint) -> Option<f64>| pts.iter().rev().find_map(f);
            let mut hp = template.hyperparameters.clone();
            hp["learning_rate"] = serde_json::json!([2e-4, 1e-4, 5e-5][k % 3]);
            hp["lora_rank"] = serde_json::json!(if k < 3 { 16 } else { 32 });
            let duration = (j.completed_at.unwrap() - j.started_at.unwrap()).num_seconds() as f64;
            ComparedRun {
                id: j.id,
                status: j.status,
                dataset_id: j.dataset_id,
                dataset_name: format!("dataset-{:05}", (k as u128 + 1) % DATASETS + 1),
                hyperparameters: hp,
                best_training_loss: lowest(|p| p.training_loss),
                final_training_loss: last(|p| p.training_loss),
                best_validation_loss: lowest(|p| p.validation_loss),
                final_validation_loss: last(|p| p.validation_loss),
                final_reward_accuracy: None,
                final_reward_margin: None,
                steps: RUN_STEPS,
                total_steps: RUN_STEPS,
                evaluation: (k == 1).then(|| template.evaluation.clone()).flatten(),
                cost: 3.5 * duration / 3600.0,
                duration_seconds: Some(duration),
                started_at: j.started_at,
            }
        })
        .collect();
    let best = runs
        .iter()
        .filter_map(|r| r.best_validation_loss.map(|l| (l, r.id)))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, id)| id);
    RunComparison {
        runs,
        differing: vec!["dataset".into(), "learning_rate".into(), "lora_rank".into()],
        best,
        best_by: Some("validation_loss".into()),
    }
}

/// The app on the Jobs tab with the Compare view open on jobs 1 to 6 (marked with space,
/// opened with `C`, as the tests do), the comparison and every run's 100,000 points in.
fn compare_app() -> App {
    let snap = compare_snapshot();
    let points: Vec<Vec<MetricsPoint>> = (0..RUNS as usize)
        .map(|k| run_points(snap.jobs[k].id, k))
        .collect();
    let comparison = run_comparison(&snap, &points);
    let mut app = App::new(snap, &Default::default());
    app.set_now(fixtures::now());
    app.go_tab(Tab::Jobs);
    for n in 1..=RUNS {
        app.handle(Action::Top);
        for _ in 0..RUNS {
            if app.selected_job().unwrap().id == fixtures::job_id(n) {
                break;
            }
            app.handle(Action::Down);
        }
        assert_eq!(app.selected_job().unwrap().id, fixtures::job_id(n));
        app.handle(Action::Mark);
    }
    let fx = app.handle(Action::Compare);
    let Some(Effect::CompareRuns { request, ids }) = fx.first() else {
        panic!("expected the comparison to be asked for, got {fx:?}");
    };
    assert_eq!(ids.len(), RUNS as usize);
    let request = *request;
    app.apply_outcome(Outcome::RunsCompared {
        request,
        result: Ok(Box::new(comparison)),
    });
    for (k, pts) in points.into_iter().enumerate() {
        app.apply_outcome(Outcome::RunMetrics {
            request,
            id: fixtures::job_id(k as u128 + 1),
            result: Ok(pts),
        });
    }
    let view = app.tabs.jobs.compare.as_ref().expect("the Compare view");
    assert!(
        view.runs
            .iter()
            .all(|r| r.points.points().len() == RUN_STEPS as usize)
    );
    app
}

fn compare(c: &mut Criterion) {
    let mut term = Terminal::new(TestBackend::new(200, 50)).unwrap();
    let mut app = compare_app();
    term.draw(|f| app.draw(f)).unwrap();
    let screen = term.backend().to_string();
    assert!(screen.contains("Compare 6 runs · loss by step"), "{screen}");
    assert!(
        screen.contains("best by lowest validation loss"),
        "{screen}"
    );

    c.bench_function("compare view, 6 runs x 100,000 points, 200x50", |b| {
        b.iter(|| {
            term.draw(|f| app.draw(f)).unwrap();
        })
    });

    app.handle(Action::CompareAxis);
    term.draw(|f| app.draw(f)).unwrap();
    assert!(term.backend().to_string().contains("loss by tokens seen"));
    c.bench_function(
        "compare view, 6 runs x 100,000 points, 200x50, tokens axis",
        |b| {
            b.iter(|| {
                term.draw(|f| app.draw(f)).unwrap();
            })
        },
    );

    // A live point for run 1 every frame (a running run): the lines are computed again.
    let job = fixtures::job_id(1);
    let (secs_per_step, tokens_per_sec, _) = run_pace(0);
    let template = app.tabs.jobs.compare.as_ref().unwrap().runs[0]
        .points
        .points()
        .last()
        .copied()
        .unwrap();
    let mut last = fixtures::metrics(job, 1)[0].clone();
    last.step = template.step;
    last.timestamp = chrono::DateTime::from_timestamp_millis((template.t * 1e3) as i64).unwrap();
    last.throughput = Some(tokens_per_sec);
    let mut g =
        c.benchmark_group("compare view, 6 runs x 100,000 points, 200x50, 1 new point per frame");
    g.sample_size(10);
    for axis in ["tokens axis", "step axis"] {
        if axis == "step axis" {
            // tokens → elapsed → step
            app.handle(Action::CompareAxis);
            app.handle(Action::CompareAxis);
        }
        g.bench_function(axis, |b| {
            b.iter(|| {
                last.step += 1;
                last.timestamp += chrono::Duration::milliseconds((secs_per_step * 1e3) as i64);
                app.apply_event(EngineEvent::Metrics {
                    job_id: job,
                    points: Arc::new(vec![last.clone()]),
                });
                term.draw(|f| app.draw(f)).unwrap();
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(4));
    targets = frame, compare
}
criterion_main!(benches);
