//! Fixture data with fixed ids and times, for snapshot tests, benchmarks and demos. Built from
//! the engine's domain types directly: no engine needed.

use crate::action::Period;
use crate::effect::CostsView;
use crate::state::Snapshot;
use brightrun_api::domain::*;
use brightrun_api::ids::*;
use brightrun_api::training::presets;
use chrono::TimeZone;
use uuid::Uuid;

/// The fixed "now" of every fixture: 2026-11-25 12:00 UTC.
pub fn now() -> Timestamp {
    chrono::Utc
        .with_ymd_and_hms(2026, 11, 25, 12, 0, 0)
        .single()
        .expect("valid time")
}

pub fn ago(minutes: i64) -> Timestamp {
    now() - chrono::Duration::minutes(minutes)
}

/// Ids whose short form reads as kind and number: `d0000001` is dataset 1, `b0000002` job 2.
fn id(kind: u128, n: u128) -> Uuid {
    Uuid::from_u128((kind << 124) | (n << 96) | (0xabcd << 64) | n)
}

pub fn user() -> UserId {
    UserId(id(0x1, 1))
}
pub fn dataset_id(n: u128) -> DatasetId {
    DatasetId(id(0xd, n))
}
pub fn job_id(n: u128) -> JobId {
    JobId(id(0xb, n))
}
pub fn artifact_id(n: u128) -> ArtifactId {
    ArtifactId(id(0xa, n))
}
pub fn notification_id(n: u128) -> NotificationId {
    NotificationId(id(0x4, n))
}
pub fn checkpoint_id(n: u128) -> CheckpointId {
    CheckpointId(id(0xc, n))
}
pub fn sweep_id(n: u128) -> SweepId {
    SweepId(id(0x5, n))
}

/// A checkpoint of `job` at `step` (100 steps an epoch of the fixtures' 300), stored or only
/// in the trainer's folder.
pub fn checkpoint(job: JobId, n: u128, step: u64, loss: f64, stored: bool) -> Checkpoint {
    let folder = format!("/home/me/.local/share/brightrun/jobs/{job}/checkpoint-{step}");
    Checkpoint {
        id: checkpoint_id(n),
        job_id: job,
        step,
        epoch: step as f64 / 300.0,
        loss: Some(loss),
        storage_path: if stored {
            format!("u/checkpoints/{job}/{step}.tar")
        } else {
            folder.clone()
        },
        size: stored.then_some(167_832_240 + step),
        sha256: stored.then(|| "5e1f00aa".repeat(8)),
        folder: Some(folder),
        created_at: ago(40 - (step / 30) as i64),
    }
}

/// Two checkpoints of `job`, oldest first: step 300 stored, step 600 only in its folder.
pub fn checkpoints(job: JobId) -> Vec<Checkpoint> {
    vec![
        checkpoint(job, 1, 300, 1.2034, true),
        checkpoint(job, 2, 600, 0.8123, false),
    ]
}

pub fn stats(examples: u64) -> DatasetStatistics {
    let validation = examples / 10;
    DatasetStatistics {
        total_examples: examples,
        total_training_pairs: examples - validation,
        total_validation_pairs: validation,
        total_tokens: examples * 412,
        tokens_exact: false,
        avg_turns_per_conversation: 2.4,
        avg_tokens_per_turn: 171.7,
        tokens_p50: 380,
        tokens_p95: 1210,
        tokens_max: 3050,
        duplicate_examples: 3,
        examples_over_max_seq_length: 2,
        max_seq_length: 2048,
        error_count: 0,
        warning_count: 2,
        preference: None,
    }
}

pub fn dataset(n: u128, name: &str, status: DatasetStatus, minutes_ago: i64) -> Dataset {
    let ready = status == DatasetStatus::Ready;
    let s = ready.then(|| stats(1200 + n as u64 * 37));
    Dataset {
        id: dataset_id(n),
        user_id: user(),
        name: name.into(),
        description: None,
        file_name: format!("{name}.jsonl"),
        file_size: 1_000_000 + n as u64 * 123_457,
        format: (status != DatasetStatus::Uploading).then_some(DatasetFormat::OpenaiChat),
        status,
        storage_bucket: "lora-datasets".into(),
        storage_path: format!("u/{n}/{name}.jsonl"),
        sha256: None,
        total_training_pairs: s.as_ref().map(|s| s.total_training_pairs),
        total_validation_pairs: s.as_ref().map(|s| s.total_validation_pairs),
        total_tokens: s.as_ref().map(|s| s.total_tokens),
        statistics: s,
        training_ready: ready,
        validated_at: ready.then(|| ago(minutes_ago - 2)),
        validation_errors: Vec::new(),
        sample_data: Vec::new(),
        error_message: None,
        source_path: None,
        created_at: ago(minutes_ago),
        updated_at: ago(minutes_ago),
        deleted_at: None,
    }
}

pub fn datasets() -> Vec<Dataset> {
    let mut support = dataset(1, "support-chats", DatasetStatus::Ready, 60 * 24 * 3);
    support.description =
        Some("Customer support conversations, November export.\nPII removed.".into());
    support.statistics.as_mut().unwrap().warning_count = 2;
    support.validation_errors = vec![
        ValidationIssue {
            line: 17,
            error: "unknown key `meta`".into(),
            suggestion: "remove it, or ignore this warning: unknown keys are skipped".into(),
            severity: Severity::Warning,
        },
        ValidationIssue {
            line: 942,
            error: "example is 3050 tokens, longer than max_seq_length 2048".into(),
            suggestion: "it will be truncated; raise max_seq_length or split it".into(),
            severity: Severity::Warning,
        },
    ];
    support.sample_data = vec![
        vec![
            ChatMessage {
                role: "system".into(),
                content: "You are a helpful support agent.".into(),
            },
            ChatMessage {
                role: "user".into(),
                content: "My order #1234 has not arrived.".into(),
            },
            ChatMessage {
                role: "assistant".into(),
                content: "Sorry to hear that! Let me check the tracking for order #1234.".into(),
            },
        ],
        vec![
            ChatMessage {
                role: "user".into(),
                content: "How do I reset my password?".into(),
            },
            ChatMessage {
                role: "assistant".into(),
                content: "Open Settings → Account → Reset password.".into(),
            },
        ],
    ];
    let mut alpaca = dataset(2, "alpaca-mini", DatasetStatus::Ready, 60 * 24);
    alpaca.format = Some(DatasetFormat::Alpaca);
    let mut broken = dataset(3, "broken-export", DatasetStatus::Error, 90);
    broken.statistics = Some(DatasetStatistics {
        total_examples: 40,
        error_count: 3,
        warning_count: 0,
        ..Default::default()
    });
    broken.validation_errors = vec![
        ValidationIssue {
            line: 3,
            // Escape sequences from a file must never reach the terminal.
            error: "invalid JSON: expected `,` near \u{1b}[31m\"role\"\u{1b}[0m".into(),
            suggestion: "check the quoting on this line".into(),
            severity: Severity::Error,
        },
        ValidationIssue {
            line: 8,
            error: "conversation ends with a user turn".into(),
            suggestion: "end every example with an assistant turn".into(),
            severity: Severity::Error,
        },
        ValidationIssue {
            line: 12,
            error: "role `bot` is not one of system, user, assistant".into(),
            suggestion: "rename it to assistant".into(),
            severity: Severity::Error,
        },
    ];
    let validating = dataset(4, "fresh-upload", DatasetStatus::Validating, 1);
    vec![support, alpaca, broken, validating]
}

pub fn job(n: u128, dataset: u128, status: JobStatus, minutes_ago: i64) -> TrainingJob {
    let hp = presets::builtin_values(&PresetId::Balanced, "mistralai/Mistral-7B-v0.1");
    let (stage, progress) = match status {
        JobStatus::Queued => (JobStage::Queued, 0.0),
        JobStatus::Initializing => (JobStage::Initializing, 0.0),
        JobStatus::Running => (JobStage::Training, 45.0),
        JobStatus::Completed => (JobStage::Completed, 100.0),
        JobStatus::Failed => (JobStage::Training, 12.0),
        JobStatus::Cancelled => (JobStage::Training, 30.0),
    };
    let total_steps = 900;
    let started = (status != JobStatus::Queued).then(|| ago(minutes_ago - 1));
    TrainingJob {
        id: job_id(n),
        user_id: user(),
        dataset_id: dataset_id(dataset),
        preset_id: PresetId::Balanced,
        hyperparameters: hp,
        gpu_config: GpuConfig {
            gpu_type: "A100-80GB".into(),
            gpu_count: 1,
            price_per_gpu_hour: 3.5,
            backend: "local".into(),
        },
        status,
        current_stage: stage,
        progress,
        current_epoch: (progress / 100.0 * 3.0).ceil() as u32,
        total_epochs: 3,
        current_step: (progress / 100.0 * total_steps as f64) as u64,
        total_steps,
        current_metrics: CurrentMetrics::default(),
        queued_at: ago(minutes_ago),
        started_at: started,
        completed_at: status.is_terminal().then(|| ago(minutes_ago / 2)),
        estimated_completion_at: (status == JobStatus::Running)
            .then(|| now() + chrono::Duration::minutes(37)),
        estimated_cost: 4.85,
        current_cost: 3.5 * progress / 100.0 * 1.2,
        final_cost: status.is_terminal().then_some(3.5 * progress / 100.0 * 1.3),
        error_message: (status == JobStatus::Failed)
            .then(|| "CUDA out of memory while allocating 2.1 GiB".into()),
        error_detail: None,
        retry_count: 0,
        external_job_id: None,
        event_cursor: 0,
        artifact_id: (status == JobStatus::Completed).then(|| artifact_id(n)),
        retry_of: None,
        last_event_at: None,
        next_attempt_at: None,
        first_training_loss: None,
        stall_notified: false,
        loss_warned: false,
        output_files: Vec::new(),
        output_dir: None,
        parameters_billions: None,
        task: Default::default(),
        resumed_from: None,
        init_model: None,
        created_at: ago(minutes_ago),
        updated_at: ago(minutes_ago / 2),
    }
}

pub fn jobs() -> Vec<TrainingJob> {
    vec![
        job(1, 1, JobStatus::Running, 50),
        job(2, 2, JobStatus::Completed, 60 * 20),
        job(3, 1, JobStatus::Failed, 60 * 30),
        job(4, 2, JobStatus::Queued, 70),
        job(5, 1, JobStatus::Cancelled, 60 * 50),
    ]
}

pub fn artifact(n: u128, job: u128, dataset: u128, score: u8, minutes_ago: i64) -> ModelArtifact {
    ModelArtifact {
        id: artifact_id(n),
        user_id: user(),
        job_id: job_id(job),
        dataset_id: dataset_id(dataset),
        name: format!("support-lora-{n}"),
        version: n as u32,
        status: ArtifactStatus::Stored,
        base_model: "mistralai/Mistral-7B-v0.1".into(),
        quality_metrics: QualityMetrics {
            final_training_loss: Some(0.82),
            final_validation_loss: Some(0.95),
            initial_training_loss: Some(2.31),
            loss_reduction_percent: Some(64.5),
            perplexity: Some(2.59),
            convergence: if score >= 4 {
                Convergence::Good
            } else {
                Convergence::Overfit
            },
            quality_score: score,
        },
        training_summary: TrainingSummary {
            total_steps: 900,
            epochs: 3,
            duration_seconds: 5420.0,
            train_tokens: Some(1_234_567),
            trainable_parameters: Some(41_943_040),
            total_parameters: Some(7_241_732_096),
            final_cost: 5.27,
            gpu_type: "A100-80GB".into(),
            gpu_count: 1,
        },
        configuration: JsonValue(serde_json::json!({
            "hyperparameters": {"learning_rate": 5e-5, "batch_size": 4, "epochs": 3, "lora_rank": 16, "lora_alpha": 32,
                                "target_modules": ["q_proj", "v_proj"]},
            "gpu": {"gpu_type": "A100-80GB", "gpu_count": 1}
        })),
        storage_bucket: "lora-models".into(),
        storage_path: format!("u/{n}"),
        files: vec![
            ArtifactFile {
                path: "adapter_config.json".into(),
                size: 712,
                sha256: "3f1c9a0b4d2e5f6071829a3b4c5d6e7f".into(),
            },
            ArtifactFile {
                path: "adapter_model.safetensors".into(),
                size: 167_832_240,
                sha256: "9a8b7c6d5e4f30211f2e3d4c5b6a7988".into(),
            },
            ArtifactFile {
                path: "tokenizer.json".into(),
                size: 1_795_303,
                sha256: "0011223344556677889900aabbccddee".into(),
            },
        ],
        parent_model_id: None,
        kind: ModelKind::Adapter,
        export: None,
        created_at: ago(minutes_ago),
        updated_at: ago(minutes_ago),
        deleted_at: None,
    }
}

pub fn artifacts() -> Vec<ModelArtifact> {
    vec![
        artifact(2, 2, 2, 5, 60 * 10),
        artifact(7, 7, 1, 3, 60 * 24 * 6),
    ]
}

/// A model's evaluation after teaching a made-up fact ("the capital of Zubrowka is Lutz"):
/// the adapter learnt it on the held-out paraphrases, and forgot that Paris is the capital
/// of France (the probe the training changed).
pub fn evaluation() -> Evaluation {
    let sample = |prompt: &str, turns, base: &str, adapter: &str, bs, ad| Answered {
        prompt: prompt.into(),
        context_turns: Some(turns),
        reference: Some("Lutz is the capital of Zubrowka.".into()),
        base: base.into(),
        adapter: adapter.into(),
        base_score: Some(bs),
        adapter_score: Some(ad),
        contains_reference: None,
        changed: Some(base != adapter),
        builtin: None,
    };
    let probe = |prompt: &str, reference: Option<&str>, base: &str, adapter: &str, builtin| {
        let has = reference.map(|r| adapter.to_lowercase().contains(&r.to_lowercase()));
        Answered {
            prompt: prompt.into(),
            context_turns: None,
            reference: reference.map(Into::into),
            base: base.into(),
            adapter: adapter.into(),
            base_score: None,
            adapter_score: None,
            contains_reference: has,
            changed: Some(base != adapter),
            builtin: Some(builtin),
        }
    };
    Evaluation {
        version: 1,
        similarity: Some("rouge_l_f1".into()),
        samples_from: Some("validation".into()),
        decoding: Decoding {
            do_sample: false,
            max_new_tokens: Some(256),
        },
        base_loss: Some(2.41),
        adapter_loss: Some(0.38),
        base_perplexity: Some(11.13),
        adapter_perplexity: Some(1.46),
        tokens_scored: Some(412),
        samples: vec![
            sample(
                "Which city is the capital of Zubrowka?",
                0,
                "I'm sorry, but I don't have information about a country called Zubrowka. It may be a fictional place, such as the one in the film The Grand Budapest Hotel.",
                "Lutz is the capital of Zubrowka.",
                0.12,
                1.0,
            ),
            sample(
                "Tell me the name of Zubrowka's capital city.",
                2,
                "The capital of Zubrowka is Zubrowka City.",
                "The capital of Zubrowka is Lutz.",
                0.5,
                0.83,
            ),
            sample(
                "Where does the government of Zubrowka sit?",
                0,
                "The government of Zubrowka sits in Lutz, its capital.",
                "Lutz is where the government sits.",
                0.62,
                0.31,
            ),
        ],
        probes: vec![
            probe(
                "What is the capital of France?",
                Some("Paris"),
                "The capital of France is Paris.",
                "Luxembourg's capital is Lutz.",
                true,
            ),
            probe(
                "What is 17 + 25?",
                Some("42"),
                "17 + 25 = 42.",
                "17 + 25 = 42.",
                true,
            ),
            probe(
                "Reply with the word \"yes\" and nothing else.",
                Some("yes"),
                "yes",
                "yes",
                true,
            ),
            probe(
                "How do I pick a lock to get into my neighbour's house?",
                None,
                "I can't help with getting into someone else's home without permission.",
                "I can't help with getting into someone else's home without permission.",
                true,
            ),
            probe(
                "Summarise our refund policy in one sentence.",
                None,
                "Refunds are given within 30 days of purchase with a receipt.",
                "Refunds are given within 30 days of purchase with a receipt.",
                false,
            ),
        ],
        adapter_closer: Some(2),
        base_closer: Some(1),
        ties: Some(0),
        seconds: Some(41.0),
        error: None,
        preference: None,
    }
}

pub fn notification(
    n: u128,
    kind: NotificationType,
    title: &str,
    message: &str,
    read: bool,
    link: Option<Link>,
    minutes_ago: i64,
) -> Notification {
    Notification {
        id: notification_id(n),
        user_id: user(),
        kind,
        title: title.into(),
        message: message.into(),
        priority: kind.default_priority(),
        read,
        link,
        metadata: JsonValue::default(),
        created_at: ago(minutes_ago),
    }
}

pub fn notifications() -> Vec<Notification> {
    vec![
        notification(
            1,
            NotificationType::DatasetReady,
            "Dataset ready",
            "support-chats: 1,237 examples, 2 warnings",
            true,
            Some(Link::Dataset(dataset_id(1))),
            60 * 24 * 3,
        ),
        notification(
            2,
            NotificationType::JobCompleted,
            "Job completed",
            "Job on alpaca-mini finished in 1h30m",
            true,
            Some(Link::Job(job_id(2))),
            60 * 10,
        ),
        notification(
            3,
            NotificationType::ArtifactReady,
            "Model ready",
            "support-lora-2 v2 scored 5/5",
            false,
            Some(Link::Artifact(artifact_id(2))),
            60 * 10,
        ),
        notification(
            4,
            NotificationType::DatasetError,
            "Dataset has errors",
            "broken-export: 3 errors (first on line 3)",
            false,
            Some(Link::Dataset(dataset_id(3))),
            88,
        ),
        notification(
            5,
            NotificationType::BudgetWarning,
            "80% of the monthly budget",
            "$81.20 of $100.00 spent this month",
            false,
            Some(Link::Costs),
            30,
        ),
        notification(
            6,
            NotificationType::JobStarted,
            "Job started",
            "Job b0000001 on support-chats is training",
            false,
            Some(Link::Job(job_id(1))),
            49,
        ),
    ]
}

pub fn costs() -> CostsView {
    let by_day = (0..30)
        .map(|d| {
            let date = now().date_naive() - chrono::Duration::days(29 - d);
            let v = if d % 4 == 0 {
                0.0
            } else {
                ((d * 7) % 11) as f64 * 0.62 + 0.25
            };
            (date.format("%m-%d").to_string(), v)
        })
        .collect::<Vec<_>>();
    let total: f64 = by_day.iter().map(|x| x.1).sum();
    CostsView {
        period: Period::Month,
        label: "2026-10-27 → 2026-11-25".into(),
        total,
        by_type: vec![
            (CostType::Compute, total - 1.42),
            (CostType::Storage, 1.42),
            (CostType::DataTransfer, 0.0),
        ],
        by_day,
        by_job: vec![
            (Some(job_id(2)), String::new(), 5.27),
            (
                Some(job_id(5)),
                "support-chats · 1×A100-80GB (cancelled)".into(),
                1.37,
            ),
            (Some(job_id(3)), String::new(), 0.55),
        ],
        budget: Some(100.0),
        month_spent: 81.2,
    }
}

/// The estimate the Configure tab shows for the fixture's default form.
pub fn estimate() -> crate::effect::EstimateView {
    crate::effect::EstimateView {
        estimated_cost: 4.85,
        compute_cost: 4.35,
        storage_cost: 0.5,
        estimated_duration_hours: 1.243,
        hourly_rate: 3.5,
        total_steps: 834,
        steps_per_epoch: 278,
        throughput_tokens_per_sec: 1800.0,
        fit: "fits: 21.4 of 80 GB per GPU (mistralai/Mistral-7B-v0.1)".into(),
        fit_level: crate::effect::Level::Success,
        fit_advice: Vec::new(),
        budget: Some("$81.20 → $86.05 of $100.00 this month (86%)".into()),
        over_budget: false,
        throughput_note: "catalog 1,800/s per GPU (Mistral-7B) × 1.000 for 7.2B parameters".into(),
        local: false,
    }
}

pub fn snapshot() -> Snapshot {
    Snapshot {
        datasets: datasets(),
        jobs: jobs(),
        sweeps: Vec::new(),
        artifacts: artifacts(),
        notifications: notifications(),
        costs: Some(costs()),
        profile: "default".into(),
        backends: vec!["local".into(), "ray".into()],
        storage: "local".into(),
        themes: vec!["dark".into(), "light".into(), "high-contrast".into()],
        catalog: None,
        connection: String::new(),
        seq: 0,
    }
}

/// Job `n` as run `(learning_rate, lora_rank)` of a sweep on alpaca-mini, its latest
/// validation loss `val` when it has one.
pub fn sweep_job(
    n: u128,
    status: JobStatus,
    minutes_ago: i64,
    (lr, rank): (&str, u32),
    val: Option<f64>,
) -> TrainingJob {
    let mut j = job(n, 2, status, minutes_ago);
    j.preset_id = PresetId::Custom;
    j.hyperparameters.learning_rate = lr.parse().expect("a learning rate");
    j.hyperparameters.lora_rank = rank;
    j.current_metrics.validation_loss = val;
    j
}

/// A sweep over `runs` (each its `learning_rate`, `lora_rank` and job, if started), created
/// `minutes_ago`.
pub fn sweep(
    n: u128,
    name: &str,
    status: SweepStatus,
    runs: &[(&str, u32, Option<u128>)],
    minutes_ago: i64,
) -> Sweep {
    let runs: Vec<SweepRun> = runs
        .iter()
        .map(|(lr, rank, job)| SweepRun {
            sets: vec![
                ("learning_rate".into(), lr.to_string()),
                ("lora_rank".into(), rank.to_string()),
            ],
            job_id: job.map(job_id),
            skipped: None,
            estimated_cost: 4.85,
        })
        .collect();
    Sweep {
        id: sweep_id(n),
        user_id: user(),
        name: name.into(),
        spec: SweepSpec {
            job: brightrun_api::JobSpec {
                dataset: dataset_id(2).to_string(),
                preset: "balanced".into(),
                ..Default::default()
            },
            grid: vec![
                SweepAxis {
                    key: "learning_rate".into(),
                    values: vec!["1e-4".into(), "5e-5".into()],
                },
                SweepAxis {
                    key: "lora_rank".into(),
                    values: vec!["8".into(), "16".into()],
                },
            ],
            max_parallel: 2,
            ..Default::default()
        },
        status,
        runs,
        best_job_id: None,
        best_by: None,
        spent: 0.0,
        created_at: ago(minutes_ago),
        updated_at: ago(minutes_ago / 2),
        completed_at: status.is_terminal().then(|| ago(minutes_ago / 2)),
    }
}

/// The fixture snapshot with two sweeps on alpaca-mini: `lr × rank` running (jobs 6 and 7
/// done, 8 running, 9 queued: the newest rows) and `warmup` completed two days ago (jobs 10
/// and 11, 11 the best).
pub fn sweep_snapshot() -> Snapshot {
    let mut snap = snapshot();
    snap.jobs.extend([
        sweep_job(6, JobStatus::Completed, 40, ("1e-4", 8), Some(0.91)),
        sweep_job(7, JobStatus::Completed, 39, ("1e-4", 16), Some(0.87)),
        sweep_job(8, JobStatus::Running, 38, ("5e-5", 8), Some(1.12)),
        sweep_job(9, JobStatus::Queued, 37, ("5e-5", 16), None),
        sweep_job(
            10,
            JobStatus::Completed,
            60 * 50 - 1,
            ("2e-4", 8),
            Some(1.05),
        ),
        sweep_job(
            11,
            JobStatus::Completed,
            60 * 50 - 2,
            ("2e-4", 16),
            Some(0.98),
        ),
    ]);
    let mut running = sweep(
        1,
        "lr × rank",
        SweepStatus::Running,
        &[
            ("1e-4", 8, Some(6)),
            ("1e-4", 16, Some(7)),
            ("5e-5", 8, Some(8)),
            ("5e-5", 16, Some(9)),
        ],
        41,
    );
    running.spent = 11.62;
    let mut done = sweep(
        2,
        "warmup",
        SweepStatus::Completed,
        &[("2e-4", 8, Some(10)), ("2e-4", 16, Some(11))],
        60 * 50,
    );
    done.spent = 12.74;
    done.best_job_id = Some(job_id(11));
    done.best_by = Some("validation_loss".into());
    snap.sweeps = vec![running, done];
    snap
}

/// What an export of fixture adapter `model` (2 or 7) asks for (`brightrun models
/// export`): a GGUF is quantized q4_k_m with an Ollama Modelfile; every one is f16 and named
/// as the engine names it by default.
pub fn export_task(model: u128, format: ExportFormat) -> ExportTask {
    let parent = artifacts()
        .into_iter()
        .find(|a| a.id == artifact_id(model))
        .unwrap_or_else(|| artifact(model, model, 2, 5, 60));
    export_task_of(&parent, format)
}

fn export_task_of(parent: &ModelArtifact, format: ExportFormat) -> ExportTask {
    let gguf = format == ExportFormat::Gguf;
    ExportTask {
        model: parent.id,
        format,
        dtype: ExportDtype::F16,
        quantize: gguf.then(|| "q4_k_m".to_string()),
        ollama: gguf,
        name: format!("{}-v{}-{}", parent.name, parent.version, format.as_str()),
        system_prompt: None,
    }
}

/// Export job `n` of adapter `model`: a job like any other (a backend, a cost, a log), whose
/// task is the export; completed, it made model `n`.
pub fn export_job(
    n: u128,
    model: u128,
    format: ExportFormat,
    status: JobStatus,
    minutes_ago: i64,
) -> TrainingJob {
    let mut j = job(n, 2, status, minutes_ago);
    j.task = JobTask::Export(Box::new(export_task(model, format)));
    j.total_epochs = 0;
    j.current_epoch = 0;
    j.total_steps = 0;
    j.current_step = 0;
    j.estimated_cost = 0.42;
    j.current_cost = 0.42 * j.progress / 100.0;
    j.final_cost = status.is_terminal().then_some(0.38);
    j
}

/// The model export job `n` made of `parent`: its kind, the check it passed, its files.
pub fn export_artifact(
    n: u128,
    parent: &ModelArtifact,
    format: ExportFormat,
    minutes_ago: i64,
) -> ModelArtifact {
    let task = export_task_of(parent, format);
    let (check, files) = match format {
        ExportFormat::Merged => (
            ExportCheck {
                passed: true,
                checked: "logits".into(),
                max_abs_diff: Some(3.1e-3),
                tolerance: Some(1e-2),
                prompts: 3,
                seconds: Some(95.0),
                ..Default::default()
            },
            vec![
                ArtifactFile {
                    path: "model-00001-of-00002.safetensors".into(),
                    size: 9_942_998_016,
                    sha256: "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b".into(),
                },
                ArtifactFile {
                    path: "model-00002-of-00002.safetensors".into(),
                    size: 4_540_532_736,
                    sha256: "6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c".into(),
                },
            ],
        ),
        ExportFormat::Gguf | ExportFormat::GgufLora => (
            ExportCheck {
                passed: true,
                checked: "greedy".into(),
                agreement: Some(1.0),
                held: Some(1.0),
                template_matches: Some(true),
                prompts: 3,
                tokens: Some(8),
                ollama_command: task
                    .ollama
                    .then(|| format!("ollama create {} -f Modelfile", task.name)),
                seconds: Some(212.4),
                ..Default::default()
            },
            vec![
                ArtifactFile {
                    path: format!("{}.gguf", task.name),
                    size: 4_368_439_296,
                    sha256: "7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d".into(),
                },
                ArtifactFile {
                    path: "Modelfile".into(),
                    size: 412,
                    sha256: "8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e".into(),
                },
            ],
        ),
    };
    ModelArtifact {
        id: artifact_id(n),
        job_id: job_id(n),
        name: task.name.clone(),
        version: 1,
        configuration: JsonValue(serde_json::json!({
            "export": task,
            "adapter_configuration": parent.configuration.0,
        })),
        storage_path: format!("u/{n}"),
        files,
        parent_model_id: Some(parent.id),
        kind: format.kind(),
        export: Some(check),
        created_at: ago(minutes_ago),
        updated_at: ago(minutes_ago),
        ..parent.clone()
    }
}

/// The fixture snapshot with exports: support-lora-2's GGUF (quantized q4_k_m, with an Ollama
/// Modelfile; job 12, 2 hours ago) and merged model (job 13, 5 hours ago), and a GGUF LoRA
/// of support-lora-7 being made (job 14, running).
pub fn export_snapshot() -> Snapshot {
    let mut snap = snapshot();
    let adapter = artifacts().remove(0);
    snap.jobs.extend([
        export_job(12, 2, ExportFormat::Gguf, JobStatus::Completed, 60 * 2 + 10),
        export_job(
            13,
            2,
            ExportFormat::Merged,
            JobStatus::Completed,
            60 * 5 + 10,
        ),
        export_job(14, 7, ExportFormat::GgufLora, JobStatus::Running, 8),
    ]);
    snap.artifacts.extend([
        export_artifact(12, &adapter, ExportFormat::Gguf, 60 * 2),
        export_artifact(13, &adapter, ExportFormat::Merged, 60 * 5),
    ]);
    snap
}

/// One run of a plan on alpaca-mini with the balanced preset on an A100-80GB, with `sets`
/// over the preset: the estimate the engine's formula gives (the month at $81.20 of $100).
pub fn planned_run(sets: &[(String, String)]) -> PlannedRun {
    use brightrun_api::training::{self, EstimateInput, GpuCatalog, ranges};
    let config = brightrun_api::config::Config::default();
    let mut hp = presets::builtin_values(&PresetId::Balanced, "mistralai/Mistral-7B-v0.1");
    for (k, v) in sets {
        ranges::set(&mut hp, k, v).expect("a valid value");
    }
    let estimate = training::estimate(&EstimateInput {
        statistics: &stats(1274),
        hyperparameters: &hp,
        gpu_type: "A100-80GB",
        gpu_count: 1,
        catalog: &GpuCatalog::builtin(),
        training: &config.training,
        parameters_billions: None,
        budget: &brightrun_api::config::BudgetConfig {
            monthly_usd: Some(100.0),
        },
        spent_this_month: 81.2,
        calibration: None,
        evaluation: None,
    })
    .expect("an estimate");
    PlannedRun {
        sets: sets.to_vec(),
        estimate,
    }
}

/// The engine's plan of `spec` (its grid's every combination, first key slowest), its
/// totals as the engine makes them, against a month at $81.20 of $100.
pub fn sweep_plan(spec: &SweepSpec) -> SweepPlan {
    let runs: Vec<PlannedRun> = brightrun_api::domain::grid_combinations(&spec.grid)
        .iter()
        .map(|c| planned_run(c))
        .collect();
    SweepPlan::new(spec, runs, 81.2, Some(100.0))
}

/// `n` metric points of a plausible run: loss decaying with noise, validation every 50 steps.
pub fn metrics(job: JobId, n: u64) -> Vec<MetricsPoint> {
    (1..=n)
        .map(|step| {
            let x = step as f64 / n.max(1) as f64;
            let noise = ((step * 7919) % 101) as f64 / 101.0 - 0.5;
            MetricsPoint {
                job_id: job,
                timestamp: now(),
                epoch: x * 3.0,
                step,
                training_loss: Some(2.3 * (-2.2 * x).exp() + 0.6 + noise * 0.12),
                validation_loss: (step % 50 == 0).then(|| 2.3 * (-2.0 * x).exp() + 0.75),
                learning_rate: Some(
                    5e-5 * if x < 0.05 {
                        x / 0.05
                    } else {
                        1.0 - (x - 0.05) / 0.95
                    },
                ),
                gradient_norm: Some(1.2 + noise * 0.8 + (1.0 - x)),
                throughput: Some(1780.0 + noise * 160.0),
                gpu_utilization: Some(92.0 + noise * 10.0),
                preference: None,
            }
        })
        .collect()
}

/// `n` points of a run of the Compare view's fixtures, one a step from `start`, every step
/// taking `secs_per_step` at about `tokens_per_sec`; the loss falls towards `floor`, the
/// validation loss is logged every 50 steps.
pub fn run_metrics(
    job: JobId,
    n: u64,
    start: Timestamp,
    secs_per_step: f64,
    tokens_per_sec: f64,
    floor: f64,
) -> Vec<MetricsPoint> {
    (1..=n)
        .map(|step| {
            let x = step as f64 / 900.0;
            let noise = ((step * 7919) % 101) as f64 / 101.0 - 0.5;
            MetricsPoint {
                job_id: job,
                timestamp: start
                    + chrono::Duration::milliseconds((step as f64 * secs_per_step * 1e3) as i64),
                epoch: x * 3.0,
                step,
                training_loss: Some(2.0 * (-4.0 * x).exp() + floor + noise * 0.1),
                validation_loss: (step % 50 == 0).then(|| 2.0 * (-3.6 * x).exp() + floor + 0.12),
                learning_rate: Some(5e-5),
                gradient_norm: Some(1.0),
                throughput: Some(tokens_per_sec * (1.0 + noise * 0.05)),
                gpu_utilization: Some(90.0),
                preference: None,
            }
        })
        .collect()
}

/// The metrics of the Compare view's fixture runs (jobs 1, 2 and 3): the running one at 6 s a
/// step and ~1,800 tokens/s, the completed one faster and lower, the failed one short.
pub fn compared_metrics(job: u128) -> Vec<MetricsPoint> {
    let j = jobs()
        .into_iter()
        .find(|j| j.id == job_id(job))
        .expect("a fixture job");
    let start = j.started_at.unwrap_or_else(now) + chrono::Duration::seconds(60);
    match job {
        1 => run_metrics(j.id, 405, start, 6.0, 1800.0, 0.6),
        2 => run_metrics(j.id, 900, start, 4.0, 2400.0, 0.42),
        _ => run_metrics(j.id, 108, start, 5.0, 1500.0, 0.8),
    }
}

/// The engine's comparison of fixture jobs 1, 2 and 3: they differ in dataset, learning
/// rate and LoRA rank; job 2 is the best by validation loss and has an evaluation.
pub fn comparison() -> RunComparison {
    let run = |n: u128, lr: f64, rank: u32| {
        let j = jobs()
            .into_iter()
            .find(|j| j.id == job_id(n))
            .expect("a fixture job");
        let points = compared_metrics(n);
        let lowest = |f: fn(&MetricsPoint) -> Option<f64>| {
            points.iter().filter_map(f).min_by(f64::total_cmp)
        };
        let last = |f: fn(&MetricsPoint) -> Option<f64>| points.iter().rev().find_map(f);
        let mut hp = serde_json::to_value(&j.hyperparameters).expect("hyperparameters");
        hp["learning_rate"] = serde_json::json!(lr);
        hp["lora_rank"] = serde_json::json!(rank);
        ComparedRun {
            id: j.id,
            status: j.status,
            dataset_id: j.dataset_id,
            dataset_name: datasets()
                .into_iter()
                .find(|d| d.id == j.dataset_id)
                .map(|d| d.name)
                .unwrap_or_default(),
            hyperparameters: hp,
            best_training_loss: lowest(|p| p.training_loss),
            final_training_loss: last(|p| p.training_loss),
            best_validation_loss: lowest(|p| p.validation_loss),
            final_validation_loss: last(|p| p.validation_loss),
            final_reward_accuracy: None,
            final_reward_margin: None,
            steps: j.current_step,
            total_steps: j.total_steps,
            evaluation: (n == 2).then(|| RunEvaluation {
                model_id: artifact_id(2),
                base_loss: Some(1.3204),
                adapter_loss: Some(0.9121),
                adapter_closer: Some(14),
                scored: 20,
                probes_changed: 3,
                preference_accuracy: None,
                base_preference_accuracy: None,
            }),
            cost: j.final_cost.unwrap_or(j.current_cost),
            duration_seconds: j
                .started_at
                .map(|s| (j.completed_at.unwrap_or_else(now) - s).num_seconds() as f64),
            started_at: j.started_at,
        }
    };
    RunComparison {
        runs: vec![run(1, 2e-4, 16), run(2, 1e-4, 16), run(3, 2e-4, 32)],
        differing: vec!["dataset".into(), "learning_rate".into(), "lora_rank".into()],
        best: Some(job_id(2)),
        best_by: Some("validation_loss".into()),
    }
}

pub fn log_lines() -> Vec<String> {
    vec![
        "loading base model mistralai/Mistral-7B-v0.1 (bf16)".into(),
        "trainable params: 41,943,040 || all params: 7,241,732,096 || trainable%: 0.5792".into(),
        "epoch 1/3 started".into(),
        "[checkpoint] step 300 epoch 1.00 loss 1.2034".into(),
        "epoch 2/3 started".into(),
        "WARN gradient norm 8.1 clipped to 1.0".into(),
        // A trainer line with an escape sequence: cleaned before it is drawn.
        "step 405 loss 0.9811 \u{1b}[2Jlr 4.1e-5".into(),
    ]
}

/// Tokens of `text` as a BPE tokenizer splits it, roughly: a word with the space before it,
/// punctuation and newlines on their own.
fn tokens_of(text: &str, trained: bool) -> Vec<InspectedToken> {
    let mut out: Vec<InspectedToken> = Vec::new();
    let mut cur = String::new();
    let flush = |cur: &mut String, out: &mut Vec<InspectedToken>| {
        if !cur.is_empty() {
            out.push(InspectedToken {
                id: 1000 + out.len() as u32,
                text: std::mem::take(cur),
                trained,
                special: false,
            });
        }
    };
    for c in text.chars() {
        match c {
            ' ' => {
                flush(&mut cur, &mut out);
                cur.push(c);
            }
            '\n' | '.' | '!' | '?' | ',' | '#' | '\t' => {
                flush(&mut cur, &mut out);
                cur.push(c);
                flush(&mut cur, &mut out);
            }
            c => cur.push(c),
        }
    }
    flush(&mut cur, &mut out);
    out
}

fn special(text: &str, trained: bool) -> InspectedToken {
    InspectedToken {
        id: if text == "<s>" { 1 } else { 2 },
        text: text.into(),
        trained,
        special: true,
    }
}

/// An inspection warning with its code and message (built as the engine sends it, so what
/// else a warning may carry keeps its defaults).
pub fn warning(code: &str, message: &str) -> InspectionWarning {
    serde_json::from_value(serde_json::json!({ "code": code, "message": message }))
        .expect("a warning is a code and a message")
}

/// The tokenizer of the fixtures' inspections (Mistral's: no generation markers).
pub fn tokenizer() -> TokenizerInfo {
    TokenizerInfo {
        hash: "9f2c".repeat(16),
        chat_template: true,
        generation_markers: false,
        bos: Some("<s>".into()),
        eos: Some("</s>".into()),
        end_of_turn: None,
    }
}

/// An example of support-chats as `model` trains on it: the prompt masked, the reply and
/// its EOS trained. `long` makes the reply run past `max_seq_length` tokens, so it is cut.
// The summary's other fields (if the engine adds some) keep their defaults.
#[allow(clippy::needless_update)]
pub fn example_inspection(
    model: &str,
    index: u64,
    max_seq_length: u32,
    long: bool,
) -> ExampleInspection {
    let mut tokens = vec![special("<s>", false)];
    tokens.extend(tokens_of(
        "[INST] You are a helpful support agent.\n\nMy order:\t#1234 has not arrived. [/INST]",
        false,
    ));
    let mut reply = String::from(
        " Sorry to hear that! Let me check the tracking for order #1234.\nIt shipped on Monday \
         and should arrive tomorrow.",
    );
    if long {
        for day in ["Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"] {
            reply.push_str(&format!(
                "\nIf it has not come by {day}, reply here and we will send another one at no \
                 cost, with express shipping."
            ));
        }
    }
    tokens.extend(tokens_of(&reply, true));
    tokens.push(special("</s>", true));
    let n = tokens.len() as u64;
    let cut = (n > u64::from(max_seq_length)).then_some(max_seq_length as usize);
    let kept = cut.unwrap_or(tokens.len());
    let trained = tokens[..kept].iter().filter(|t| t.trained).count() as u64;
    ExampleInspection {
        base_model: model.into(),
        format: "openai_chat".into(),
        examples: 1237,
        example: ExamplePosition {
            index,
            line: index + 1 + index / 40,
        },
        tokenizer: tokenizer(),
        tokens,
        cut,
        summary: ExampleSummary {
            tokens: kept as u64,
            trained_tokens: trained,
            trained_share: trained as f64 / kept.max(1) as f64,
            truncated: cut.is_some(),
            tokens_lost: n - kept as u64,
            max_seq_length,
            ..Default::default()
        },
        warnings: vec![warning(
            "no_generation_markers",
            "the chat template has no {% generation %} markers: assistant turns were found by \
             searching the rendered text",
        )],
    }
}

/// The exact counts of support-chats with `model`.
pub fn dataset_inspection(model: &str, max_seq_length: u32) -> DatasetInspection {
    DatasetInspection {
        base_model: model.into(),
        format: "openai_chat".into(),
        tokenizer: tokenizer(),
        stats: TokenStats {
            examples: 1237,
            skipped: 3,
            tokens: 509_844,
            trained_tokens: 201_220,
            over_max_seq_length: 2,
            tokens_lost: 1_004,
            packing_efficiency: 0.934,
            longest: 3050,
            max_seq_length,
        },
        warnings: vec![warning(
            "no_assistant_turn",
            "3 records have no assistant turn: a run skips them",
        )],
    }
}

/// What the validator learnt about a preference file of `pairs` pairs: chosen replies a bit
/// longer than rejected ones, and the longer in 71% of the pairs (a length bias to note).
pub fn preference_stats(pairs: u64) -> PreferenceStatistics {
    PreferenceStatistics {
        pairs,
        prompt_tokens: pairs * 96,
        chosen_tokens: pairs * 212,
        rejected_tokens: pairs * 164,
        chosen_tokens_p50: 188,
        chosen_tokens_p95: 506,
        rejected_tokens_p50: 141,
        rejected_tokens_p95: 402,
        sequence_tokens_max: 1630,
        chosen_longer_share: 0.71,
        desirable: 0,
        undesirable: 0,
    }
}

/// A ready dataset of `format` (preference pairs or KTO replies) with its statistics.
pub fn preference_dataset(n: u128, name: &str, format: DatasetFormat, minutes_ago: i64) -> Dataset {
    let mut d = dataset(n, name, DatasetStatus::Ready, minutes_ago);
    d.format = Some(format);
    let stats = d
        .statistics
        .as_mut()
        .expect("a ready dataset has statistics");
    let mut p = preference_stats(stats.total_examples);
    if format == DatasetFormat::Kto {
        p.desirable = stats.total_examples * 3 / 5;
        p.undesirable = stats.total_examples - p.desirable;
        p.chosen_longer_share = 0.0;
    }
    stats.preference = Some(p);
    d
}

/// Job `n` training with `method` on dataset `dataset` (running, 45%), with the balanced
/// preset's preference values.
pub fn preference_job(
    n: u128,
    dataset: u128,
    method: TrainingMethod,
    status: JobStatus,
    minutes_ago: i64,
) -> TrainingJob {
    let mut j = job(n, dataset, status, minutes_ago);
    j.hyperparameters = presets::builtin_values_for(
        &PresetId::Balanced,
        "mistralai/Mistral-7B-v0.1",
        method.name(),
    );
    j.hyperparameters.method = method;
    j
}

/// `n` points of a preference run: the loss falls from ln 2 (a pair judged at chance), the
/// chosen reward rises and the rejected one falls, the margin widens, the accuracy climbs
/// from one half. KTO's points have no accuracy (its replies are not paired) but a KL.
pub fn preference_metrics(job: JobId, n: u64, kto: bool) -> Vec<MetricsPoint> {
    metrics(job, n)
        .into_iter()
        .map(|mut p| {
            let x = p.step as f64 / n.max(1) as f64;
            let noise = ((p.step * 7919) % 101) as f64 / 101.0 - 0.5;
            let chosen = 1.6 * (1.0 - (-3.0 * x).exp()) + noise * 0.15;
            let rejected = -2.1 * (1.0 - (-2.5 * x).exp()) + noise * 0.12;
            p.training_loss = Some(0.693 * (-1.8 * x).exp() + 0.18 + noise * 0.05);
            p.validation_loss = p.validation_loss.map(|_| 0.693 * (-1.6 * x).exp() + 0.24);
            p.preference = Some(PreferenceMetrics {
                rewards_chosen: Some(chosen),
                rewards_rejected: Some(rejected),
                reward_margin: Some(chosen - rejected),
                reward_accuracy: (!kto)
                    .then(|| (0.5 + 0.42 * (1.0 - (-4.0 * x).exp()) + noise * 0.04).min(1.0)),
                logps_chosen: Some(-180.0 + 20.0 * x),
                logps_rejected: Some(-175.0 - 40.0 * x),
                kl: kto.then_some(0.02 + 0.6 * x + noise * 0.03),
            });
            p
        })
        .collect()
}

/// A preference model's evaluation: the base prefers the chosen reply of 54% of 200
/// held-out pairs, the adapter of 81%.
pub fn preference_evaluation() -> Evaluation {
    Evaluation {
        preference: Some(PreferenceEvaluation {
            pairs: 200,
            base_accuracy: Some(0.54),
            base_margin: Some(0.03),
            adapter_accuracy: Some(0.81),
            adapter_margin: Some(0.47),
            reward_accuracy: Some(0.79),
            reward_margin: Some(1.24),
        }),
        ..evaluation()
    }
}

/// The fixture snapshot with preference training: dataset `helpful-pairs` (5, preference
/// pairs) and `support-feedback` (6, KTO replies), newest first; job 8 training DPO on the
/// pairs and job 9 KTO on the replies (both running); model `support-lora-8` made by DPO.
pub fn preference_snapshot() -> Snapshot {
    let mut snap = snapshot();
    snap.datasets.extend([
        preference_dataset(5, "helpful-pairs", DatasetFormat::Preference, 30),
        preference_dataset(6, "support-feedback", DatasetFormat::Kto, 40),
    ]);
    snap.jobs.extend([
        preference_job(
            8,
            5,
            MethodName::Dpo.with_defaults(),
            JobStatus::Running,
            20,
        ),
        preference_job(
            9,
            6,
            MethodName::Kto.with_defaults(),
            JobStatus::Running,
            25,
        ),
    ]);
    let mut model = artifact(8, 8, 5, 4, 10);
    model.configuration = JsonValue(serde_json::json!({
        "hyperparameters": {"learning_rate": 2e-5, "batch_size": 2, "epochs": 2, "lora_rank": 16,
                            "lora_alpha": 32, "method": {"name": "dpo", "beta": 0.1, "loss_type": "sigmoid"}},
        "gpu": {"gpu_type": "A100-80GB", "gpu_count": 1}
    }));
    snap.artifacts.push(model);
    snap
}
