//! The job lifecycle against stand-in trainers: small shell scripts that speak the trainer
//! protocol, so stalls, exploding losses, crashes and retries can be staged exactly. (The real
//! trainer is exercised end to end in the workspace's tests/e2e_training.rs.)

use brightrun_engine::domain::*;
use brightrun_engine::paths::Paths;
use brightrun_engine::{Engine, JobRequest, NewDataset, Page};
use std::path::Path;
use std::time::Duration;

/// An engine on a temp home whose "python" is `script` (a shell script standing in for
/// `python -m brightrun_trainer run --spec SPEC`).
async fn engine_with(script: &str, extra_config: &str) -> (tempfile::TempDir, Engine) {
    let home = tempfile::tempdir().unwrap();
    let fake = home.path().join("fake-python");
    std::fs::write(&fake, format!("#!/bin/sh\n{script}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::create_dir_all(home.path().join("config")).unwrap();
    std::fs::write(
        home.path().join("config/config.toml"),
        format!(
            "[trainer]\npython = {:?}\n[engine]\npoll_interval_millis = 50\ndispatch_interval_secs = 1\n{extra_config}\n",
            fake.to_str().unwrap()
        ),
    )
    .unwrap();
    let engine = Engine::open(Paths::under(home.path())).unwrap();
    (home, engine)
}

async fn ready_dataset(engine: &Engine, dir: &Path) -> Dataset {
    let file = dir.join("d.jsonl");
    let lines: String = (0..20)
        .map(|i| format!("{{\"prompt\":\"p{i}\",\"completion\":\"c{i}\"}}\n"))
        .collect();
    std::fs::write(&file, lines).unwrap();
    let d = engine
        .add_dataset(&file, NewDataset::default(), &|_, _| {})
        .await
        .unwrap();
    let d = engine.validate_dataset(d.id).await.unwrap();
    assert_eq!(d.status, DatasetStatus::Ready, "{:?}", d.validation_errors);
    d
}

fn request(d: &Dataset) -> JobRequest {
    JobRequest {
        dataset_id: d.id,
        preset: "fast".into(),
        sets: vec![("base_model".into(), "brightrun/tiny-random-llama".into())],
        gpu_type: Some("A10G".into()),
        gpu_count: Some(1),
        backend: None,
        from_model: None,
    }
}

async fn wait_for(
    engine: &Engine,
    id: brightrun_engine::ids::JobId,
    secs: u64,
    f: impl Fn(&TrainingJob) -> bool,
) -> TrainingJob {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let j = engine.job(id).unwrap();
        if f(&j) {
            return j;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out; job is {:?}/{:?}: {:?}",
            j.status,
            j.current_stage,
            j.error_message
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn kinds(engine: &Engine) -> Vec<NotificationType> {
    engine
        .notifications(false, Page::ALL)
        .unwrap()
        .into_iter()
        .map(|n| n.kind)
        .collect()
}

const STAGE_TRAINING: &str =
    r#"echo '{"type":"stage","seq":0,"ts":0,"stage":"training","message":"go"}'"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_trainer_raises_one_stall_warning() {
    let (home, engine) = engine_with(
        &format!("{STAGE_TRAINING}\nsleep 30"),
        "stall_after_secs = 1",
    )
    .await;
    let d = ready_dataset(&engine, home.path()).await;
    let tasks = engine.start();
    let job = engine.create_job(request(&d), false).await.unwrap();
    wait_for(&engine, job.id, 20, |j| j.stall_notified).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stalls = kinds(&engine)
        .into_iter()
        .filter(|k| *k == NotificationType::JobStalled)
        .count();
    assert_eq!(stalls, 1);
    let j = engine.cancel_job(job.id).await.unwrap();
    assert_eq!(j.status, JobStatus::Cancelled);
    engine.shutdown();
    let _ = tasks.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exploding_loss_is_warned_about_once() {
    let metric = |step: u32, loss: &str| {
        format!(
            r#"echo '{{"type":"metric","seq":{step},"ts":0,"step":{step},"total_steps":4,"epoch":1.0,"training_loss":{loss}}}'"#
        )
    };
    let script = [
        STAGE_TRAINING.to_string(),
        metric(1, "1.0"),
        metric(2, "9.5"),
        metric(3, "20.0"),
        "sleep 30".into(),
    ]
    .join("\n");
    let (home, engine) = engine_with(&script, "").await;
    let d = ready_dataset(&engine, home.path()).await;
    let tasks = engine.start();
    let job = engine.create_job(request(&d), false).await.unwrap();
    let j = wait_for(&engine, job.id, 20, |j| j.current_step == 3).await;
    assert!(j.loss_warned);
    assert_eq!(j.first_training_loss, Some(1.0));
    assert_eq!(j.status, JobStatus::Running);
    assert!(j.started_at.is_some());
    let warnings = kinds(&engine)
        .into_iter()
        .filter(|k| *k == NotificationType::TrainingWarning)
        .count();
    assert_eq!(warnings, 1);
    assert!(kinds(&engine).contains(&NotificationType::JobStarted));
    engine.cancel_job(job.id).await.unwrap();
    engine.shutdown();
    let _ = tasks.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infrastructure_failures_are_retried_then_fail_with_the_log() {
    // Dies at once with a message on stderr and no event: an infrastructure failure.
    let (home, engine) = engine_with(
        "echo 'ImportError: no module named torch' >&2\nexit 1",
        "retry_count = 1",
    )
    .await;
    let d = ready_dataset(&engine, home.path()).await;
    let tasks = engine.start();
    let job = engine.create_job(request(&d), false).await.unwrap();
    let j = wait_for(&engine, job.id, 60, |j| j.status.is_terminal()).await;
    assert_eq!(j.status, JobStatus::Failed);
    assert_eq!(j.retry_count, 1, "retried once before failing");
    assert!(
        j.error_message
            .as_deref()
            .unwrap()
            .contains("exit status 1"),
        "{:?}",
        j.error_message
    );
    assert!(
        j.error_detail
            .as_deref()
            .unwrap()
            .contains("no module named torch"),
        "{:?}",
        j.error_detail
    );
    engine.shutdown();
    let _ = tasks.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_training_error_is_not_retried() {
    let script = format!(
        "{STAGE_TRAINING}\necho '{{\"type\":\"error\",\"seq\":1,\"ts\":0,\"kind\":\"training\",\"reason\":\"loss became NaN at step 3\",\"detail\":\"tb\"}}'\nexit 1"
    );
    let (home, engine) = engine_with(&script, "retry_count = 3").await;
    let d = ready_dataset(&engine, home.path()).await;
    let tasks = engine.start();
    let job = engine.create_job(request(&d), false).await.unwrap();
    let j = wait_for(&engine, job.id, 30, |j| j.status.is_terminal()).await;
    assert_eq!(j.status, JobStatus::Failed);
    assert_eq!(j.retry_count, 0);
    assert_eq!(
        j.error_message.as_deref(),
        Some("loss became NaN at step 3")
    );
    assert!(j.final_cost.is_some());
    engine.shutdown();
    let _ = tasks.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifact_files_outside_the_output_folder_are_refused() {
    // The trainer claims a file that escapes its folder.
    let script = format!(
        "{STAGE_TRAINING}\nmkdir -p out\necho '{{\"type\":\"artifact\",\"seq\":1,\"ts\":0,\"dir\":\"'\"$PWD\"'/out\",\"files\":[{{\"path\":\"../spec.json\",\"size\":1,\"sha256\":\"x\"}}]}}'\necho '{{\"type\":\"done\",\"seq\":2,\"ts\":0,\"summary\":{{}}}}'\nexit 0"
    );
    let (home, engine) = engine_with(&script, "").await;
    let d = ready_dataset(&engine, home.path()).await;
    let tasks = engine.start();
    let job = engine.create_job(request(&d), false).await.unwrap();
    let j = wait_for(&engine, job.id, 30, |j| j.status.is_terminal()).await;
    assert_eq!(j.status, JobStatus::Failed);
    assert!(
        j.error_message
            .as_deref()
            .unwrap()
            .contains("storing the adapter failed"),
        "{:?}",
        j.error_message
    );
    assert!(engine.artifacts(Page::ALL).unwrap().is_empty());
    engine.shutdown();
    let _ = tasks.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_queued_job_costs_nothing_and_frees_the_dataset() {
    let (home, engine) = engine_with("exit 0", "").await;
    let d = ready_dataset(&engine, home.path()).await;
    // No tasks running: the job stays queued.
    let job = engine.create_job(request(&d), false).await.unwrap();
    let refused = engine.delete_dataset(d.id, true).await.unwrap_err();
    assert!(
        refused.to_string().contains("used by active job"),
        "{refused}"
    );
    let j = engine.cancel_job(job.id).await.unwrap();
    assert_eq!(j.status, JobStatus::Cancelled);
    assert_eq!(j.final_cost, Some(0.0));
    engine.delete_dataset(d.id, true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_over_budget_needs_confirmation() {
    let (home, engine) = engine_with("exit 0", "[budget]\nmonthly_usd = 0.01").await;
    let d = ready_dataset(&engine, home.path()).await;
    let err = engine.create_job(request(&d), false).await.unwrap_err();
    assert!(err.to_string().contains("budget"), "{err}");
    let est = engine.estimate(&request(&d)).unwrap();
    assert!(est.needs_budget_confirmation());
    let job = engine.create_job(request(&d), true).await.unwrap();
    assert_eq!(job.status, JobStatus::Queued);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spending_past_the_budget_raises_one_critical_alert() {
    let (home, engine) = engine_with(
        &format!("{STAGE_TRAINING}\nsleep 30"),
        "[budget]\nmonthly_usd = 0.000001",
    )
    .await;
    let d = ready_dataset(&engine, home.path()).await;
    let tasks = engine.start();
    for _ in 0..2 {
        let job = engine.create_job(request(&d), true).await.unwrap();
        wait_for(&engine, job.id, 30, |j| j.status == JobStatus::Running).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let j = engine.cancel_job(job.id).await.unwrap();
        assert!(j.final_cost.unwrap() > 0.0);
    }
    let alerts: Vec<Notification> = engine
        .notifications(false, Page::ALL)
        .unwrap()
        .into_iter()
        .filter(|n| n.kind == NotificationType::BudgetExceeded)
        .collect();
    assert_eq!(alerts.len(), 1, "once per month");
    assert_eq!(alerts[0].priority, Priority::Critical);
    assert_eq!(alerts[0].link, Some(Link::Costs));
    let summary = engine
        .cost_summary(brightrun_engine::Period::Month)
        .unwrap();
    assert_eq!(summary.by_job.len(), 2);
    assert!(summary.budget.unwrap().percent > 100.0);
    engine.shutdown();
    let _ = tasks.await;
}

/// The objects stored in the models bucket under `home`.
fn stored_models(home: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![home.join("data/objects/lora-models")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

/// Runs a stand-in trainer that prepares its folder with `setup` (in the job folder), then
/// reports `artifact` (a JSON object's `dir` and `files` members) and finishes.
async fn run_with_artifact(setup: &str, artifact: &str) -> (tempfile::TempDir, TrainingJob, usize) {
    let script = format!(
        "{STAGE_TRAINING}\n{setup}\necho '{{\"type\":\"artifact\",\"seq\":1,\"ts\":0,{artifact}}}'\necho '{{\"type\":\"done\",\"seq\":2,\"ts\":0,\"summary\":{{}}}}'\nexit 0"
    );
    let (home, engine) = engine_with(&script, "").await;
    let d = ready_dataset(&engine, home.path()).await;
    let tasks = engine.start();
    let job = engine.create_job(request(&d), false).await.unwrap();
    let j = wait_for(&engine, job.id, 30, |j| j.status.is_terminal()).await;
    let artifacts = engine.artifacts(Page::ALL).unwrap().len();
    engine.shutdown();
    let _ = tasks.await;
    (home, j, artifacts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adapter_in_the_output_folder_is_stored() {
    let (home, j, artifacts) = run_with_artifact(
        "mkdir -p output/sub && echo weights > output/adapter.bin && echo cfg > output/sub/c.json",
        r#""dir":"'"$PWD"'/output","files":[{"path":"adapter.bin","size":8,"sha256":""},{"path":"sub/c.json","size":4,"sha256":""}]"#,
    )
    .await;
    assert_eq!(j.status, JobStatus::Completed, "{:?}", j.error_message);
    assert_eq!(artifacts, 1);
    assert_eq!(stored_models(home.path()).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reported_dir_outside_the_output_folder_is_refused() {
    // The trainer says its adapter is in a folder of the user's that it does not own.
    let (home, j, artifacts) = run_with_artifact(
        "mkdir -p output ../../../private && echo hunter2 > ../../../private/passwd",
        r#""dir":"'"$PWD"'/../../../private","files":[{"path":"passwd","size":8,"sha256":""}]"#,
    )
    .await;
    assert!(home.path().join("private/passwd").exists());
    assert_eq!(j.status, JobStatus::Failed);
    let message = j.error_message.unwrap_or_default();
    assert!(
        message.contains("outside the job's output folder"),
        "{message}"
    );
    assert_eq!(artifacts, 0);
    assert!(stored_models(home.path()).is_empty());
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_manifest_is_checked_before_anything_is_copied() {
    // A good file first, then a symlink out of the folder: nothing at all is stored.
    let (home, j, artifacts) = run_with_artifact(
        "mkdir -p output && echo weights > output/adapter.bin && echo hunter2 > secret && ln -s \"$PWD/secret\" output/link.bin",
        r#""dir":"'"$PWD"'/output","files":[{"path":"adapter.bin","size":8,"sha256":""},{"path":"link.bin","size":8,"sha256":""}]"#,
    )
    .await;
    assert_eq!(j.status, JobStatus::Failed);
    let message = j.error_message.unwrap_or_default();
    assert!(
        message.contains("points outside its output folder"),
        "{message}"
    );
    assert_eq!(artifacts, 0);
    assert!(stored_models(home.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_run_calibrates_later_estimates_of_its_setting() {
    // The stand-in trained 90,000 tokens in 60 s: 1,500 tokens/s on one A10G.
    let script = format!(
        "{STAGE_TRAINING}\nmkdir -p output && echo weights > output/adapter.bin\necho '{{\"type\":\"artifact\",\"seq\":1,\"ts\":0,\"dir\":\"'\"$PWD\"'/output\",\"files\":[{{\"path\":\"adapter.bin\",\"size\":8,\"sha256\":\"\"}}]}}'\necho '{{\"type\":\"done\",\"seq\":2,\"ts\":0,\"summary\":{{\"train_tokens\":90000,\"train_runtime_seconds\":60.0}}}}'\nexit 0"
    );
    let (home, engine) = engine_with(&script, "").await;
    let d = ready_dataset(&engine, home.path()).await;
    let before = engine.estimate(&request(&d)).unwrap();
    assert_eq!(
        before.throughput.source,
        brightrun_engine::training::ThroughputSource::Catalog
    );
    // A10G: 800 tokens/s for Mistral-7B, × 7,241,732,096 / 115,648 for the tiny model.
    let scaled = 800.0 * 7_241_732_096.0 / 115_648.0;
    assert!((before.training_details.estimated_throughput_tokens_per_sec - scaled).abs() < 1e-6);
    let tasks = engine.start();
    let job = engine.create_job(request(&d), false).await.unwrap();
    let j = wait_for(&engine, job.id, 30, |j| j.status.is_terminal()).await;
    assert_eq!(j.status, JobStatus::Completed, "{:?}", j.error_message);
    let after = engine.estimate(&request(&d)).unwrap();
    assert_eq!(
        after.throughput.source,
        brightrun_engine::training::ThroughputSource::Calibrated
    );
    assert_eq!(after.throughput.calibration_runs, 1);
    assert_eq!(after.throughput.note, "calibrated from 1 run");
    assert_eq!(
        after.training_details.estimated_throughput_tokens_per_sec,
        1500.0
    );
    // Another GPU count is another setting: still the catalog's.
    let mut two = request(&d);
    two.gpu_count = Some(2);
    assert_eq!(
        engine.estimate(&two).unwrap().throughput.source,
        brightrun_engine::training::ThroughputSource::Catalog
    );
    // The model costs exactly what its job did (one finish sets both).
    let model = engine.artifacts(Page::ALL).unwrap().pop().unwrap();
    assert_eq!(Some(model.training_summary.final_cost), j.final_cost);
    engine.shutdown();
    let _ = tasks.await;
}
