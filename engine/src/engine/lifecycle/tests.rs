//! Table tests of the job lifecycle: (job, report, time) → (job, effects).

use super::*;
use crate::backend::Envelope;
use crate::config::TrainingConfig;

fn t0() -> Timestamp {
    chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn secs(n: i64) -> Timestamp {
    t0() + chrono::Duration::seconds(n)
}

fn limits() -> Limits {
    Limits {
        stall_after: chrono::Duration::seconds(600),
        retry_count: 3,
    }
}

fn job(status: JobStatus) -> TrainingJob {
    let hp = crate::training::presets::list(&TrainingConfig::default())[0]
        .hyperparameters
        .clone();
    let mut j = TrainingJob::new_queued(
        UserId::new(),
        DatasetId::new(),
        PresetId::Fast,
        hp,
        GpuConfig {
            gpu_type: "A100-80GB".into(),
            gpu_count: 2,
            price_per_gpu_hour: 3.5,
            backend: "local".into(),
        },
        100,
        1.0,
        None,
    );
    j.status = status;
    j.updated_at = t0();
    if status != JobStatus::Queued {
        j.external_job_id = Some("ext-1".into());
        j.last_event_at = Some(t0());
    }
    if status == JobStatus::Running {
        j.started_at = Some(t0());
        j.current_stage = JobStage::Training;
    }
    j
}

fn poll(state: RemoteState, lines: &[&str], cursor: u64) -> PollResult {
    PollResult::new(
        state,
        lines.iter().map(|l| Envelope::parse_line(l)).collect(),
        cursor,
    )
}

/// One row: a job in a status, a report at a time, and what must come out.
struct Row {
    name: &'static str,
    status: JobStatus,
    report: PollResult,
    at: Timestamp,
    expect_status: JobStatus,
    expect_stage: Option<JobStage>,
    expect_points: usize,
    expect_notes: &'static [NotificationType],
    expect_outcome: Option<&'static str>,
    expect_cursor: u64,
    expect_quiet: bool,
}

#[test]
fn observe_table() {
    use JobStatus::*;
    use NotificationType as N;
    let rows = vec![
        Row {
            name: "the training stage starts the job",
            status: Initializing,
            report: poll(
                RemoteState::Running,
                &[r#"{"type":"stage","stage":"training"}"#],
                1,
            ),
            at: secs(5),
            expect_status: Running,
            expect_stage: Some(JobStage::Training),
            expect_points: 0,
            expect_notes: &[N::JobStarted],
            expect_outcome: None,
            expect_cursor: 1,
            expect_quiet: false,
        },
        Row {
            name: "a first metric also starts it, and is stored",
            status: Initializing,
            report: poll(
                RemoteState::Running,
                &[r#"{"type":"metric","step":1,"total_steps":40,"training_loss":2.0}"#],
                1,
            ),
            at: secs(5),
            expect_status: Running,
            expect_stage: None,
            expect_points: 1,
            expect_notes: &[],
            expect_outcome: None,
            expect_cursor: 1,
            expect_quiet: false,
        },
        Row {
            name: "an exploding loss warns once",
            status: Running,
            report: poll(
                RemoteState::Running,
                &[
                    r#"{"type":"metric","step":1,"training_loss":1.0}"#,
                    r#"{"type":"metric","step":2,"training_loss":9.0}"#,
                    r#"{"type":"metric","step":3,"training_loss":12.0}"#,
                ],
                3,
            ),
            at: secs(5),
            expect_status: Running,
            expect_stage: None,
            expect_points: 3,
            expect_notes: &[N::TrainingWarning],
            expect_outcome: None,
            expect_cursor: 3,
            expect_quiet: false,
        },
        Row {
            name: "done is an outcome and the cursor waits for the finish",
            status: Running,
            report: poll(
                RemoteState::Succeeded,
                &[r#"{"type":"done","summary":{}}"#],
                7,
            ),
            at: secs(5),
            expect_status: Running,
            expect_stage: None,
            expect_points: 0,
            expect_notes: &[],
            expect_outcome: Some("done"),
            expect_cursor: 0,
            expect_quiet: false,
        },
        Row {
            name: "a training error is not an infrastructure error",
            status: Running,
            report: poll(
                RemoteState::Failed("exit status 1".into()),
                &[r#"{"type":"error","kind":"training","reason":"bad data"}"#],
                2,
            ),
            at: secs(5),
            expect_status: Running,
            expect_stage: None,
            expect_points: 0,
            expect_notes: &[],
            expect_outcome: Some("training"),
            expect_cursor: 0,
            expect_quiet: false,
        },
        Row {
            name: "an exit without done is an infrastructure failure",
            status: Running,
            report: poll(RemoteState::Failed("killed".into()), &[], 0),
            at: secs(5),
            expect_status: Running,
            expect_stage: None,
            expect_points: 0,
            expect_notes: &[],
            expect_outcome: Some("infra"),
            expect_cursor: 0,
            expect_quiet: false,
        },
        Row {
            name: "a success without done is an infrastructure failure",
            status: Running,
            report: poll(RemoteState::Succeeded, &[], 0),
            at: secs(5),
            expect_status: Running,
            expect_stage: None,
            expect_points: 0,
            expect_notes: &[],
            expect_outcome: Some("infra"),
            expect_cursor: 0,
            expect_quiet: false,
        },
        Row {
            name: "a stop on the cluster fails the job without a retry",
            status: Running,
            report: poll(RemoteState::Stopped, &[], 0),
            at: secs(5),
            expect_status: Running,
            expect_stage: None,
            expect_points: 0,
            expect_notes: &[],
            expect_outcome: Some("training"),
            expect_cursor: 0,
            expect_quiet: false,
        },
        Row {
            name: "a cluster timeout fails the job without a retry",
            status: Running,
            report: poll(RemoteState::TimedOut, &[], 0),
            at: secs(5),
            expect_status: Running,
            expect_stage: None,
            expect_points: 0,
            expect_notes: &[],
            expect_outcome: Some("training"),
            expect_cursor: 0,
            expect_quiet: false,
        },
        Row {
            name: "a lost submission is an infrastructure failure",
            status: Running,
            report: poll(RemoteState::Lost, &[], 0),
            at: secs(5),
            expect_status: Running,
            expect_stage: None,
            expect_points: 0,
            expect_notes: &[],
            expect_outcome: Some("infra"),
            expect_cursor: 0,
            expect_quiet: false,
        },
        Row {
            name: "nothing new soon after a write is quiet",
            status: Running,
            report: poll(RemoteState::Running, &[], 0),
            at: secs(3),
            expect_status: Running,
            expect_stage: None,
            expect_points: 0,
            expect_notes: &[],
            expect_outcome: None,
            expect_cursor: 0,
            expect_quiet: true,
        },
        Row {
            name: "nothing new for a while persists the running cost",
            status: Running,
            report: poll(RemoteState::Running, &[], 0),
            at: secs(QUIET_PERSIST_SECS + 1),
            expect_status: Running,
            expect_stage: None,
            expect_points: 0,
            expect_notes: &[],
            expect_outcome: None,
            expect_cursor: 0,
            expect_quiet: false,
        },
        Row {
            name: "a silent trainer is reported stalled",
            status: Running,
            report: poll(RemoteState::Running, &[], 0),
            at: secs(601),
            expect_status: Running,
            expect_stage: None,
            expect_points: 0,
            expect_notes: &[N::JobStalled],
            expect_outcome: None,
            expect_cursor: 0,
            expect_quiet: false,
        },
    ];
    for row in rows {
        let mut j = job(row.status);
        let out = observe(&mut j, &row.report, row.at, &limits());
        assert_eq!(j.status, row.expect_status, "{}", row.name);
        if let Some(stage) = row.expect_stage {
            assert_eq!(j.current_stage, stage, "{}", row.name);
        }
        assert_eq!(out.points.len(), row.expect_points, "{}", row.name);
        let kinds: Vec<_> = out.notes.iter().map(|n| n.kind).collect();
        assert_eq!(kinds, row.expect_notes, "{}", row.name);
        let outcome = out.outcome.as_ref().map(|o| match o {
            Outcome::Done(_) => "done",
            Outcome::TrainingError { .. } => "training",
            Outcome::InfraError { .. } => "infra",
        });
        assert_eq!(outcome, row.expect_outcome, "{}", row.name);
        assert_eq!(j.event_cursor, row.expect_cursor, "{}", row.name);
        assert_eq!(out.quiet, row.expect_quiet, "{}", row.name);
    }
}

#[test]
fn a_replayed_report_changes_nothing_twice() {
    let mut j = job(JobStatus::Running);
    let report = poll(
        RemoteState::Running,
        &[
            r#"{"type":"metric","step":5,"total_steps":10,"training_loss":1.0}"#,
            r#"{"type":"checkpoint","step":5,"path":"/ckpt/5"}"#,
        ],
        2,
    );
    let a = observe(&mut j, &report, secs(30), &limits());
    let after_first = j.clone();
    let b = observe(&mut j, &report, secs(30), &limits());
    assert_eq!(
        a.checkpoints[0].id, b.checkpoints[0].id,
        "checkpoint ids follow (job, step)"
    );
    assert_eq!(a.points, b.points);
    assert_eq!(j.current_step, after_first.current_step);
    assert_eq!(j.progress, 50.0);
    // 2 GPUs at $3.50 for 30 s.
    assert!(
        (j.current_cost - 2.0 * 3.5 * 30.0 / 3600.0).abs() < 1e-9,
        "{}",
        j.current_cost
    );
    assert_eq!(j.estimated_completion_at, Some(secs(60)));
}

#[test]
fn failures_retry_with_backoff_then_fail() {
    let l = limits();
    let mut j = job(JobStatus::Running);
    let mut waits = Vec::new();
    for _ in 0..3 {
        match after_failure(&mut j, true, "node lost", secs(0), &l) {
            AfterFailure::Retry { at, .. } => waits.push((at - secs(0)).num_seconds()),
            other => panic!("expected a retry, got {other:?}"),
        }
        assert_eq!(j.status, JobStatus::Queued);
        assert_eq!(j.external_job_id, None);
        j.status = JobStatus::Running;
    }
    assert_eq!(waits, vec![10, 20, 40]);
    assert_eq!(
        after_failure(&mut j, true, "again", secs(0), &l),
        AfterFailure::Fail
    );
    let mut k = job(JobStatus::Running);
    assert_eq!(
        after_failure(&mut k, false, "bad data", secs(0), &l),
        AfterFailure::Fail,
        "training errors are not retried"
    );
    let mut c = job(JobStatus::Cancelled);
    assert_eq!(
        after_failure(&mut c, true, "late", secs(0), &l),
        AfterFailure::Ignore
    );
}

#[test]
fn finishing_sets_cost_counters_and_the_note() {
    for (status, kind, has_cost) in [
        (JobStatus::Completed, NotificationType::JobCompleted, true),
        (JobStatus::Failed, NotificationType::JobFailed, true),
        (JobStatus::Cancelled, NotificationType::JobCancelled, true),
    ] {
        let mut j = job(JobStatus::Running);
        j.current_step = 40;
        let error = (status == JobStatus::Failed).then(|| ("out of memory".to_string(), None));
        let f = finish(&mut j, status, error, None, secs(3600), None, 0.5);
        assert_eq!(j.status, status);
        assert_eq!(f.note.kind, kind);
        assert_eq!(f.cost.is_some(), has_cost);
        // A job that ran an hour on 2 GPUs at $3.50 costs $7, whatever ended it; without a
        // model there is nothing kept, so no storage charge.
        assert!((j.final_cost.unwrap() - 7.0).abs() < 1e-9);
        assert!(f.storage.is_none());
        if status == JobStatus::Completed {
            assert_eq!((j.progress, j.current_step), (100.0, 100));
        }
        if status == JobStatus::Failed {
            assert_eq!(j.error_message.as_deref(), Some("out of memory"));
        }
    }
    // A queued job that never ran costs nothing and writes no cost record.
    let mut q = job(JobStatus::Queued);
    let f = finish(
        &mut q,
        JobStatus::Cancelled,
        None,
        None,
        secs(60),
        None,
        0.5,
    );
    assert_eq!((q.final_cost, f.cost.is_none()), (Some(0.0), true));
}

#[test]
fn a_completed_job_with_a_model_pays_the_estimates_storage_line() {
    let mut j = job(JobStatus::Running);
    let model = ArtifactId::new();
    let f = finish(
        &mut j,
        JobStatus::Completed,
        None,
        Some(model),
        secs(3600),
        None,
        0.5,
    );
    // Compute $7 (an hour on 2 GPUs at $3.50) and storage $0.50: the estimate's two lines.
    assert!((j.final_cost.unwrap() - 7.5).abs() < 1e-9);
    let storage = f.storage.expect("a storage record");
    assert_eq!(storage.cost_type, CostType::Storage);
    assert_eq!((storage.amount, storage.job_id), (0.5, Some(j.id)));
    assert_eq!(storage.created_at, secs(3600));
    assert_eq!(f.cost.unwrap().amount, 7.0);
    assert_eq!(
        f.note.message,
        "100 steps, $7.50 (compute $7.00 + storage $0.50)"
    );
    // A storage price of 0 writes no record.
    let mut j = job(JobStatus::Running);
    let f = finish(
        &mut j,
        JobStatus::Completed,
        None,
        Some(model),
        secs(3600),
        None,
        0.0,
    );
    assert!(f.storage.is_none());
}

#[test]
fn the_clusters_clock_bills_the_run_and_its_notes_come_and_go() {
    let limits = Limits {
        stall_after: chrono::Duration::minutes(30),
        retry_count: 3,
    };
    let mut j = job(JobStatus::Running);
    j.started_at = Some(secs(10));
    j.gpu_config.price_per_gpu_hour = 3.6;
    j.gpu_config.gpu_count = 1;
    // Ray says it started at 4 s: the cost runs from there.
    let mut r = poll(RemoteState::Running, &[], 0);
    r.times.started_at = Some(secs(4));
    let seen = observe(&mut j, &r, secs(20), &limits);
    assert_eq!(j.started_at, Some(secs(4)));
    assert!(!seen.quiet, "a new start time is written");
    // A queue note shows in the job, and goes when the cluster says nothing more.
    let mut r = poll(RemoteState::Pending, &[], 0);
    r.note = Some("in RunPod's queue: 3 job(s) waiting".into());
    observe(&mut j, &r, secs(21), &limits);
    assert_eq!(
        j.error_message.as_deref(),
        Some("cluster: in RunPod's queue: 3 job(s) waiting")
    );
    observe(
        &mut j,
        &poll(RemoteState::Running, &[], 0),
        secs(22),
        &limits,
    );
    assert_eq!(j.error_message, None);
    // The cluster's end time (1004 s) ends the bill, not the moment the engine noticed (3600 s).
    let f = finish(
        &mut j,
        JobStatus::Completed,
        None,
        None,
        secs(3600),
        Some(secs(1004)),
        0.5,
    );
    assert_eq!(j.completed_at, Some(secs(1004)));
    assert!(
        (j.final_cost.unwrap() - 1.0).abs() < 1e-9,
        "{:?}",
        j.final_cost
    );
    assert!(f.cost.is_some());
    // An end before the start is not believed.
    let mut k = job(JobStatus::Running);
    k.started_at = Some(secs(100));
    finish(
        &mut k,
        JobStatus::Failed,
        None,
        None,
        secs(200),
        Some(secs(50)),
        0.5,
    );
    assert_eq!(k.completed_at, Some(secs(200)));
}

#[test]
fn events_after_the_runs_end_change_nothing() {
    let mut j = job(JobStatus::Running);
    let report = poll(
        RemoteState::Succeeded,
        &[
            r#"{"type":"artifact","seq":1,"ts":0,"dir":"/out","files":[{"path":"a.bin","size":2,"sha256":"ab"}]}"#,
            r#"{"type":"done","seq":2,"ts":0,"summary":{}}"#,
            r#"{"type":"artifact","seq":3,"ts":0,"dir":"/etc","files":[{"path":"passwd","size":9,"sha256":""}]}"#,
            r#"{"type":"error","seq":4,"ts":0,"reason":"late"}"#,
        ],
        500,
    );
    let out = observe(&mut j, &report, secs(5), &limits());
    assert!(matches!(out.outcome, Some(Outcome::Done(_))), "{out:?}");
    assert_eq!(j.output_dir.as_deref(), Some("/out"));
    assert_eq!(j.output_files.len(), 1);
    assert!(
        out.logs
            .iter()
            .any(|l| l == "warning: ignored 2 trainer events after the run's end"),
        "{:?}",
        out.logs
    );
}

#[test]
fn impossible_steps_are_not_stored() {
    let mut j = job(JobStatus::Running);
    let metric = |step: u64, total: &str| {
        format!(r#"{{"type":"metric","seq":1,"ts":0,"step":{step}{total},"training_loss":1.0}}"#)
    };
    let lines = [
        metric(10, ""),
        metric(u64::MAX, ""),
        metric(5, ""),
        metric(11, &format!(r#","total_steps":{}"#, u64::MAX)),
        metric(12, ""),
        r#"{"type":"checkpoint","seq":1,"ts":0,"step":18446744073709551615,"path":"/c"}"#.into(),
    ];
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let out = observe(
        &mut j,
        &poll(RemoteState::Running, &lines, 9),
        secs(5),
        &limits(),
    );
    let steps: Vec<u64> = out.points.iter().map(|p| p.step).collect();
    assert_eq!(steps, [10, 12]);
    assert!(out.checkpoints.is_empty());
    assert_eq!(j.current_step, 12);
    assert_eq!(j.total_steps, 100, "an absurd total is not taken");
    assert!(
        out.logs.iter().any(|l| l.starts_with(
            "warning: ignored 4 trainer events with an impossible step (step 18446744073709551615 of 100)"
        )),
        "{:?}",
        out.logs
    );
}
