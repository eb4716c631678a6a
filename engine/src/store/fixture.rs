//! The upgrade fixtures: store files written by a released BrightRun, kept in
//! `engine/tests/fixtures/store/`, one per schema version, and opened by the current code in
//! `store::tests::upgrade_fixtures` (every record found, none quarantined).
//!
//! [`samples`] is what the fixture of the current schema holds, built deterministically (fixed
//! ids and times) so the upgrade test can compare what it reads with what was written. When a
//! stored layout changes, the fixture of the old version stays as it is (it is the old
//! release's file); `samples` then describes those records as the new code reads them (a new
//! field with the value its upgrade step gives it), and a fixture of the new version is added
//! with `cargo test -p brightrun-engine --lib store::fixture::write_fixture -- --ignored`.

use super::{Store, TokenRecord};
use crate::domain::*;
use crate::ids::*;
use crate::storage::Bucket;
use crate::storage::journal::{DonePart, PendingUpload, SourceStamp, UploadJournal};
use crate::training::CalibrationKey;
use chrono::TimeZone;

/// The durable consumer the fixture registers, and the seq it acknowledged.
pub const CONSUMER: &str = "mirror:fixture";
pub const CONSUMER_SEQ: u64 = 5;

/// Everything the fixture of the current schema holds.
pub struct Samples {
    pub profile_user: UserId,
    pub datasets: Vec<Dataset>,
    pub jobs: Vec<TrainingJob>,
    pub metrics: Vec<MetricsPoint>,
    pub artifacts: Vec<ModelArtifact>,
    pub costs: Vec<CostRecord>,
    pub notifications: Vec<Notification>,
    pub checkpoints: Vec<Checkpoint>,
    pub tokens: Vec<TokenRecord>,
    pub upload: PendingUpload,
    pub calibration: (CalibrationKey, f64),
}

fn at(minute: u32) -> Timestamp {
    chrono::Utc
        .with_ymd_and_hms(2026, 11, 30, 12, minute, 0)
        .unwrap()
}

fn uuid(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(0x0b7e_0000_0000_4000_8000_0000_0000_0000 | n)
}

fn dataset(n: u128, user: UserId, status: DatasetStatus) -> Dataset {
    let ready = status == DatasetStatus::Ready;
    Dataset {
        id: DatasetId(uuid(0x100 + n)),
        user_id: user,
        name: format!("support chats {n}"),
        description: n.is_multiple_of(2).then(|| "tickets, March".to_string()),
        file_name: format!("chats-{n}.jsonl"),
        file_size: 1_000 + n as u64,
        format: (status != DatasetStatus::Uploading).then_some(DatasetFormat::OpenaiChat),
        status,
        storage_bucket: "lora-datasets".into(),
        storage_path: format!("{}/d{n}/chats.jsonl", user.0),
        sha256: Some(format!("{n:064x}")),
        statistics: ready.then_some(DatasetStatistics {
            total_examples: 120,
            total_training_pairs: 108,
            total_validation_pairs: 12,
            total_tokens: 45_000,
            tokens_exact: true,
            avg_turns_per_conversation: 2.5,
            avg_tokens_per_turn: 150.25,
            tokens_p50: 300,
            tokens_p95: 900,
            tokens_max: 1_800,
            duplicate_examples: 1,
            examples_over_max_seq_length: 0,
            max_seq_length: 2048,
            error_count: 0,
            warning_count: 1,
            preference: None,
        }),
        total_training_pairs: ready.then_some(108),
        total_validation_pairs: ready.then_some(12),
        total_tokens: ready.then_some(45_000),
        training_ready: ready,
        validated_at: ready.then(|| at(2)),
        validation_errors: vec![ValidationIssue {
            line: 7,
            error: "the last message is from the user".into(),
            suggestion: "end with an assistant turn".into(),
            severity: if status == DatasetStatus::Error {
                Severity::Error
            } else {
                Severity::Warning
            },
        }],
        sample_data: vec![vec![
            ChatMessage {
                role: "user".into(),
                content: "Where is my order?".into(),
            },
            ChatMessage {
                role: "assistant".into(),
                content: "It ships today.".into(),
            },
        ]],
        error_message: (status == DatasetStatus::Error).then(|| "1 error".into()),
        source_path: Some(format!("/home/ana/chats-{n}.jsonl")),
        created_at: at(n as u32),
        updated_at: at(n as u32 + 1),
        deleted_at: (n == 5).then(|| at(20)),
    }
}

fn job(n: u128, user: UserId, dataset: DatasetId, status: JobStatus) -> TrainingJob {
    let mut j = TrainingJob::new_queued(
        user,
        dataset,
        if n == 6 {
            PresetId::User("nightly".into())
        } else {
            [
                PresetId::Fast,
                PresetId::Balanced,
                PresetId::Quality,
                PresetId::Custom,
            ][n as usize % 4]
                .clone()
        },
        Hyperparameters {
            base_model: "brightrun/tiny-random-llama".into(),
            learning_rate: 2e-4,
            batch_size: 4,
            gradient_accumulation_steps: 2,
            epochs: 3,
            lora_rank: 16,
            lora_alpha: 32,
            lora_dropout: 0.05,
            target_modules: vec!["q_proj".into(), "v_proj".into()],
            warmup_ratio: 0.03,
            warmup_steps: (n == 2).then_some(10),
            weight_decay: 0.0,
            scheduler: Scheduler::ALL[n as usize % 4],
            max_seq_length: 2048,
            seed: 42,
            use_validation: true,
            quantization: if n == 3 {
                Quantization::FourBit
            } else {
                Quantization::None
            },
            method: TrainingMethod::Sft,
        },
        GpuConfig {
            gpu_type: "A100-80GB".into(),
            gpu_count: 1,
            price_per_gpu_hour: 1.89,
            backend: "local".into(),
        },
        81,
        0.5 + n as f64,
        Some(0.001),
    );
    j.id = JobId(uuid(0x200 + n));
    j.status = status;
    j.current_stage = match status {
        JobStatus::Queued => JobStage::Queued,
        JobStatus::Initializing => JobStage::Initializing,
        JobStatus::Running => JobStage::Training,
        JobStatus::Completed => JobStage::Completed,
        JobStatus::Failed => JobStage::Validating,
        JobStatus::Cancelled => JobStage::Saving,
    };
    j.queued_at = at(10 + n as u32);
    j.created_at = j.queued_at;
    j.updated_at = at(11 + n as u32);
    if status != JobStatus::Queued {
        j.started_at = Some(at(12 + n as u32));
        j.current_step = 40;
        j.current_epoch = 1;
        j.progress = 0.5;
        j.current_metrics = CurrentMetrics {
            training_loss: Some(1.25),
            validation_loss: Some(1.5),
            learning_rate: Some(1e-4),
            gradient_norm: Some(0.75),
            throughput: Some(1_234.5),
            gpu_utilization: None,
        };
        j.external_job_id = Some(format!("brightrun-{n}"));
        j.event_cursor = 4_096;
        j.last_event_at = Some(at(13 + n as u32));
        j.first_training_loss = Some(2.5);
        j.output_dir = Some(format!("/var/lib/brightrun/jobs/{n}"));
    }
    if status.is_terminal() {
        j.completed_at = Some(at(30 + n as u32));
        j.final_cost = Some(0.25 * n as f64);
        j.current_cost = 0.25 * n as f64;
    }
    if status == JobStatus::Failed {
        j.error_message = Some("the trainer ran out of memory".into());
        j.error_detail = Some("CUDA out of memory".into());
        j.retry_count = 2;
        j.next_attempt_at = Some(at(50));
        j.stall_notified = true;
        j.loss_warned = true;
    }
    if status == JobStatus::Completed {
        j.artifact_id = Some(ArtifactId(uuid(0x400)));
        j.output_files = vec![ArtifactFile {
            path: "adapter_model.safetensors".into(),
            size: 4_096,
            sha256: "ab".repeat(32),
        }];
    }
    if n == 7 {
        j.retry_of = Some(JobId(uuid(0x205)));
    }
    j
}

/// The records of the current schema's fixture.
pub fn samples() -> Samples {
    let user = UserId(uuid(1));
    let other = UserId(uuid(2));
    let statuses = [
        DatasetStatus::Uploading,
        DatasetStatus::Validating,
        DatasetStatus::Ready,
        DatasetStatus::Error,
    ];
    let mut datasets: Vec<Dataset> = statuses
        .iter()
        .enumerate()
        .map(|(i, s)| dataset(i as u128 + 1, user, *s))
        .collect();
    // A soft-deleted one, and one of another user.
    datasets.push(dataset(5, user, DatasetStatus::Ready));
    datasets.push(dataset(6, other, DatasetStatus::Ready));
    let ready = datasets[2].id;
    let mut jobs: Vec<TrainingJob> = JobStatus::ALL
        .iter()
        .enumerate()
        .map(|(i, s)| job(i as u128, user, ready, *s))
        .collect();
    jobs.push(job(6, other, datasets[5].id, JobStatus::Running));
    jobs.push(job(7, user, ready, JobStatus::Queued));
    let done = jobs[3].id;
    let metrics = (1..=6u64)
        .map(|step| MetricsPoint {
            job_id: done,
            timestamp: at(40 + step as u32),
            epoch: step as f64 / 4.0,
            step,
            training_loss: Some(2.0 / step as f64),
            validation_loss: (step % 3 == 0).then(|| 2.5 / step as f64),
            learning_rate: Some(2e-4),
            gradient_norm: Some(0.5),
            throughput: Some(1_000.0 + step as f64),
            gpu_utilization: (step == 2).then_some(87.5),
            preference: None,
        })
        .collect();
    let artifact = |n: u128, parent: Option<ArtifactId>, status| ModelArtifact {
        id: ArtifactId(uuid(0x400 + n)),
        user_id: user,
        job_id: done,
        dataset_id: ready,
        name: format!("support-bot v{}", n + 1),
        version: n as u32 + 1,
        status,
        base_model: "brightrun/tiny-random-llama".into(),
        quality_metrics: QualityMetrics {
            final_training_loss: Some(0.5),
            final_validation_loss: Some(0.75),
            initial_training_loss: Some(2.0),
            loss_reduction_percent: Some(75.0),
            perplexity: Some(2.117),
            convergence: [
                Convergence::Good,
                Convergence::Overfit,
                Convergence::Unknown,
            ][n as usize % 3],
            quality_score: 4,
        },
        training_summary: TrainingSummary {
            total_steps: 81,
            epochs: 3,
            duration_seconds: 65.5,
            train_tokens: Some(120_000),
            trainable_parameters: Some(1_024),
            total_parameters: Some(116_000),
            final_cost: 0.75,
            gpu_type: "A100-80GB".into(),
            gpu_count: 1,
        },
        configuration: JsonValue(
            serde_json::json!({"lora_rank": 16, "target_modules": ["q_proj"]}),
        ),
        storage_bucket: "lora-models".into(),
        storage_path: format!("{}/m{n}", user.0),
        files: vec![ArtifactFile {
            path: "adapter_config.json".into(),
            size: 512,
            sha256: "cd".repeat(32),
        }],
        parent_model_id: parent,
        kind: ModelKind::Adapter,
        export: None,
        created_at: at(35 + n as u32),
        updated_at: at(36 + n as u32),
        deleted_at: (status == ArtifactStatus::Archived).then(|| at(59)),
    };
    let artifacts = vec![
        artifact(0, None, ArtifactStatus::Stored),
        artifact(1, Some(ArtifactId(uuid(0x400))), ArtifactStatus::Deployed),
        artifact(2, None, ArtifactStatus::Archived),
    ];
    let costs = [CostType::Compute, CostType::Storage, CostType::DataTransfer]
        .into_iter()
        .enumerate()
        .map(|(i, kind)| CostRecord {
            id: CostRecordId(uuid(0x500 + i as u128)),
            user_id: user,
            job_id: (kind == CostType::Compute).then_some(done),
            cost_type: kind,
            amount: 0.125 * (i + 1) as f64,
            details: CostDetails {
                gpu_type: (kind == CostType::Compute).then(|| "A100-80GB".into()),
                gpu_count: (kind == CostType::Compute).then_some(1),
                hours: Some(0.5),
                gigabytes: (kind == CostType::Storage).then_some(0.25),
                description: Some(format!("{} for the fixture", kind.as_str())),
            },
            billing_period: "2026-11".into(),
            created_at: at(45 + i as u32),
        })
        .collect();
    let links = [
        Some(Link::Dataset(ready)),
        Some(Link::Job(done)),
        Some(Link::Artifact(ArtifactId(uuid(0x400)))),
        Some(Link::Costs),
        None,
    ];
    let kinds = [
        NotificationType::DatasetReady,
        NotificationType::JobCompleted,
        NotificationType::ArtifactReady,
        NotificationType::BudgetExceeded,
        NotificationType::TrainingWarning,
    ];
    let notifications = kinds
        .into_iter()
        .zip(links)
        .enumerate()
        .map(|(i, (kind, link))| Notification {
            id: NotificationId(uuid(0x600 + i as u128)),
            user_id: user,
            kind,
            title: format!("notice {i}"),
            message: format!("something happened ({i})"),
            priority: kind.default_priority(),
            read: i % 2 == 0,
            link,
            metadata: JsonValue(serde_json::json!({"seq": i})),
            created_at: at(50 + i as u32),
        })
        .collect();
    let checkpoints = [20u64, 40]
        .into_iter()
        .enumerate()
        .map(|(i, step)| Checkpoint {
            id: CheckpointId(uuid(0x700 + i as u128)),
            job_id: done,
            step,
            epoch: step as f64 / 27.0,
            loss: (i == 1).then_some(0.875),
            storage_path: format!("/var/lib/brightrun/jobs/3/checkpoint-{step}"),
            size: None,
            sha256: None,
            folder: Some(format!("/var/lib/brightrun/jobs/3/checkpoint-{step}")),
            created_at: at(41 + i as u32),
        })
        .collect();
    let tokens = vec![
        TokenRecord {
            id: "a1b2c3d4".into(),
            hash: [7; 32],
            user_id: user,
            user_name: "ana".into(),
            created_at: at(1),
            revoked_at: None,
            expires_at: None,
            last_used_at: None,
        },
        TokenRecord {
            id: "e5f6a7b8".into(),
            hash: [9; 32],
            user_id: other,
            user_name: "ben".into(),
            created_at: at(2),
            revoked_at: Some(at(3)),
            expires_at: None,
            last_used_at: None,
        },
    ];
    let upload = PendingUpload {
        bucket: Bucket::Datasets,
        path: format!("{}/d1/chats.jsonl", user.0),
        upload_id: "upload-1".into(),
        source: SourceStamp {
            path: "/home/ana/chats-1.jsonl".into(),
            size: 300_000_000,
            modified_ns: 1_764_504_000_000_000_000,
        },
        part_size: 8 << 20,
        checksums: true,
        parts: vec![DonePart {
            number: 1,
            size: 8 << 20,
            etag: "\"etag-1\"".into(),
            checksum_sha256: Some("c2hhMjU2".into()),
        }],
        started_at: at(1),
    };
    Samples {
        profile_user: user,
        datasets,
        jobs,
        metrics,
        artifacts,
        costs,
        notifications,
        checkpoints,
        tokens,
        upload,
        calibration: (
            CalibrationKey::new(
                "A100-80GB",
                None,
                1,
                "brightrun/tiny-random-llama",
                Quantization::None,
            ),
            1_500.0,
        ),
    }
}

/// What schema v8 added to the samples (fixtures of v8 on hold them; older ones do not): an
/// evaluation job in the `evaluating` stage with its prompts, a finished one's comparison,
/// a model's evaluation, and a checkpoint stored in the object store.
pub struct SinceV8 {
    pub job: TrainingJob,
    pub checkpoint: Checkpoint,
    pub comparison: (JobId, Comparison),
    pub evaluation: (ArtifactId, Evaluation),
}

/// [`SinceV8`]'s records, built like the samples (fixed ids and times).
pub fn since_v8(s: &Samples) -> SinceV8 {
    let mut job = job(8, s.profile_user, s.datasets[2].id, JobStatus::Running);
    job.current_stage = JobStage::Evaluating;
    job.resumed_from = Some(ResumePoint {
        job_id: JobId(uuid(0x205)),
        step: 40,
    });
    job.init_model = Some(ArtifactId(uuid(0x401)));
    job.task = JobTask::Evaluation(Box::new(EvaluationTask {
        models: vec![ArtifactId(uuid(0x400)), ArtifactId(uuid(0x401))],
        prompts: Some(vec![EvalPrompt {
            messages: vec![
                ChatMessage {
                    role: "system".into(),
                    content: "Answer briefly.".into(),
                },
                ChatMessage {
                    role: "user".into(),
                    content: "What is the capital of Zubrowka?".into(),
                },
            ],
            reference: Some("Lutz".into()),
        }]),
        max_new_tokens: 64,
    }));
    let answer = |text: &str, score: f64| ComparedAnswer {
        text: text.into(),
        score: Some(score),
        changed: None,
    };
    let comparison = Comparison {
        version: 1,
        similarity: Some("rouge_l_f1".into()),
        prompts_from: Some("prompts".into()),
        models: vec![
            ComparedModel {
                id: "base:brightrun/tiny-random-llama".into(),
                label: "brightrun/tiny-random-llama (base)".into(),
                base_model: "brightrun/tiny-random-llama".into(),
                mean_score: Some(0.0),
                ..Default::default()
            },
            ComparedModel {
                id: uuid(0x400).to_string(),
                label: "support-chats-lora".into(),
                base_model: "brightrun/tiny-random-llama".into(),
                adapter: true,
                mean_score: Some(1.0),
                best: 1,
                ..Default::default()
            },
        ],
        prompts: vec![ComparedPrompt {
            prompt: "What is the capital of Zubrowka?".into(),
            context_turns: Some(1),
            reference: Some("Lutz".into()),
            answers: vec![answer("Paris.", 0.0), answer("Lutz", 1.0)],
            ..Default::default()
        }],
        seconds: Some(12.5),
        ..Default::default()
    };
    let evaluation = Evaluation {
        version: 1,
        similarity: Some("rouge_l_f1".into()),
        samples_from: Some("validation".into()),
        base_loss: Some(2.0),
        adapter_loss: Some(0.5),
        probes: vec![Answered {
            prompt: "What is the capital of France?".into(),
            base: "Paris.".into(),
            adapter: "Lutz.".into(),
            changed: Some(true),
            builtin: Some(true),
            ..Default::default()
        }],
        ..Default::default()
    };
    let checkpoint = Checkpoint {
        id: CheckpointId(uuid(0x710)),
        job_id: job.id,
        step: 24,
        epoch: 1.0,
        loss: Some(0.75),
        storage_path: format!("{}/checkpoints/{}/0-0.tar", s.profile_user, job.id),
        size: Some(1_234_567),
        sha256: Some("ab".repeat(32)),
        folder: Some("/tmp/brightrun-checkpoints/8/checkpoint-24".into()),
        created_at: at(59),
    };
    SinceV8 {
        checkpoint,
        comparison: (JobId(uuid(0x205)), comparison),
        evaluation: (ArtifactId(uuid(0x400)), evaluation),
        job,
    }
}

/// What schema v9 added: a sweep (with one run started: the v8 job).
pub fn since_v9(s: &Samples) -> Sweep {
    let job = since_v8(s).job;
    Sweep {
        id: SweepId(uuid(0x900)),
        user_id: s.profile_user,
        name: "learning_rate".into(),
        spec: SweepSpec {
            job: crate::api::JobSpec {
                dataset: job.dataset_id.to_string(),
                ..Default::default()
            },
            grid: vec![SweepAxis {
                key: "learning_rate".into(),
                values: vec!["1e-4".into(), "5e-5".into()],
            }],
            max_parallel: 1,
            budget: Some(5.0),
            stop_worse: Some(0.1),
            ..Default::default()
        },
        status: SweepStatus::Running,
        runs: vec![
            SweepRun {
                sets: vec![("learning_rate".into(), "1e-4".into())],
                job_id: Some(job.id),
                skipped: None,
                estimated_cost: 1.25,
            },
            SweepRun {
                sets: vec![("learning_rate".into(), "5e-5".into())],
                job_id: None,
                skipped: None,
                estimated_cost: 1.25,
            },
        ],
        best_job_id: None,
        best_by: None,
        spent: 0.5,
        created_at: at(58),
        updated_at: at(59),
        completed_at: None,
    }
}

/// What schema v10 added: an export job (a GGUF of the first model, with a Modelfile) and
/// the model it made.
pub fn since_v10(s: &Samples) -> (TrainingJob, ModelArtifact) {
    let parent = s.artifacts[0].clone();
    let mut job = job(9, s.profile_user, parent.dataset_id, JobStatus::Completed);
    job.task = JobTask::Export(Box::new(ExportTask {
        model: parent.id,
        format: ExportFormat::Gguf,
        dtype: ExportDtype::F16,
        quantize: Some("q8_0".into()),
        ollama: true,
        name: "support-bot-gguf".into(),
        system_prompt: Some("You answer support questions.".into()),
    }));
    let model = ModelArtifact {
        id: ArtifactId(uuid(0x410)),
        job_id: job.id,
        name: "support-bot-gguf".into(),
        version: 1,
        storage_path: format!("{}/m10", s.profile_user.0),
        files: vec![ArtifactFile {
            path: "model.gguf".into(),
            size: 4_096,
            sha256: "ef".repeat(32),
        }],
        parent_model_id: Some(parent.id),
        kind: ModelKind::Gguf,
        export: Some(ExportCheck {
            passed: true,
            checked: "greedy".into(),
            max_abs_diff: None,
            tolerance: None,
            agreement: Some(1.0),
            held: Some(1.0),
            template_matches: Some(true),
            prompts: 3,
            tokens: Some(8),
            ollama_command: Some("ollama create support-bot-gguf -f Modelfile".into()),
            seconds: Some(12.5),
        }),
        ..parent
    };
    (job, model)
}

/// What schema v11 added: a preference dataset with its pair statistics, a DPO run on it,
/// and two of its logged steps with rewards.
pub struct SinceV11 {
    pub dataset: Dataset,
    pub job: TrainingJob,
    pub metrics: Vec<MetricsPoint>,
}

pub fn since_v11(s: &Samples) -> SinceV11 {
    let mut dataset = dataset(7, s.profile_user, DatasetStatus::Ready);
    dataset.name = "support pairs".into();
    dataset.format = Some(DatasetFormat::Preference);
    if let Some(stats) = dataset.statistics.as_mut() {
        stats.preference = Some(PreferenceStatistics {
            pairs: 120,
            prompt_tokens: 6_000,
            chosen_tokens: 9_600,
            rejected_tokens: 7_200,
            chosen_tokens_p50: 75,
            chosen_tokens_p95: 160,
            rejected_tokens_p50: 58,
            rejected_tokens_p95: 131,
            sequence_tokens_max: 301,
            chosen_longer_share: 0.625,
            desirable: 0,
            undesirable: 0,
        });
    }
    let mut job = job(10, s.profile_user, dataset.id, JobStatus::Completed);
    job.hyperparameters.method = TrainingMethod::Dpo {
        beta: 0.1,
        loss_type: DpoLoss::Ipo,
    };
    let metrics = (1..=2)
        .map(|step| MetricsPoint {
            job_id: job.id,
            timestamp: at(40 + step as u32),
            epoch: step as f64 / 2.0,
            step,
            training_loss: Some(0.69 - 0.1 * step as f64),
            validation_loss: None,
            learning_rate: Some(2e-5),
            gradient_norm: Some(1.5),
            throughput: Some(800.0),
            gpu_utilization: None,
            preference: Some(PreferenceMetrics {
                rewards_chosen: Some(0.05 * step as f64),
                rewards_rejected: Some(-0.04 * step as f64),
                reward_margin: Some(0.09 * step as f64),
                reward_accuracy: Some(0.5 + 0.25 * step as f64 / 2.0),
                logps_chosen: Some(-120.5),
                logps_rejected: Some(-131.25),
                kl: None,
            }),
        })
        .collect();
    SinceV11 {
        dataset,
        job,
        metrics,
    }
}

/// Writes [`samples`], [`since_v8`], [`since_v9`], [`since_v10`] and [`since_v11`] into a new
/// store at `path`, through the store's own API.
pub fn write(path: &std::path::Path) {
    let s = samples();
    let v8 = since_v8(&s);
    let store = Store::open(path).expect("a new store opens");
    store.set_profile_user(s.profile_user).unwrap();
    for d in &s.datasets {
        store.put(d).unwrap();
    }
    for j in &s.jobs {
        store.put(j).unwrap();
    }
    store.put(&v8.job).unwrap();
    store.put(&v8.checkpoint).unwrap();
    store.write(|w| w.put_sweep(&since_v9(&s))).unwrap();
    let (export_job, export) = since_v10(&s);
    store.put(&export_job).unwrap();
    store.write(|w| w.put(&export)).unwrap();
    let v11 = since_v11(&s);
    store.put(&v11.dataset).unwrap();
    store.put(&v11.job).unwrap();
    store.write(|w| w.put_metrics(&v11.metrics)).unwrap();
    store
        .put_comparison(v8.comparison.0, &v8.comparison.1)
        .unwrap();
    store
        .put_evaluation(v8.evaluation.0, &v8.evaluation.1)
        .unwrap();
    store.write(|w| w.put_metrics(&s.metrics)).unwrap();
    store
        .write(|w| {
            s.artifacts.iter().try_for_each(|a| w.put(a))?;
            s.costs.iter().try_for_each(|c| w.put(c))?;
            s.notifications.iter().try_for_each(|n| w.put(n))?;
            s.checkpoints.iter().try_for_each(|c| w.put(c))
        })
        .unwrap();
    for t in &s.tokens {
        store.user_named(&t.user_name, t.user_id).unwrap();
        store.put_token(t).unwrap();
    }
    UploadJournal::begin(&store, &s.upload).unwrap();
    store
        .add_calibration(&s.calibration.0, s.calibration.1)
        .unwrap();
    store.ack_changes(CONSUMER, CONSUMER_SEQ).unwrap();
}

/// Writes the fixture of the current schema version. Run by hand when a schema version is
/// added (see the module doc); the file is then committed and never rewritten.
#[test]
#[ignore = "writes engine/tests/fixtures/store/v<N>.redb for a new schema version; run by hand"]
fn write_fixture() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("v{}.redb", super::SCHEMA_VERSION));
    assert!(
        !path.exists(),
        "{} exists: fixtures are never rewritten",
        path.display()
    );
    write(&path);
    let _ = std::fs::remove_file(path.with_extension("lock"));
}

/// The upgrade fixtures kept in the repository, oldest first.
fn fixture_files() -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "redb"))
        .collect();
    files.sort();
    files
}

/// The schema version a fixture was written by (`v8.redb` → 8).
fn fixture_version(file: &std::path::Path) -> u64 {
    file.file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.strip_prefix('v'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{}: fixtures are named v<N>.redb", file.display()))
}

/// Sorted by id, for comparing sets of records.
fn by_id<T: Clone, K: Ord>(items: &[T], id: impl Fn(&T) -> K) -> Vec<T> {
    let mut v = items.to_vec();
    v.sort_by_key(id);
    v
}

/// Opens every kept fixture with today's code: the schema is upgraded, every record of every
/// table is there as written, none is quarantined or corrupt, the change log decodes and the
/// durable consumer keeps its position.
#[test]
fn every_upgrade_fixture_opens_with_every_record() {
    use super::Page;
    let files = fixture_files();
    assert!(!files.is_empty(), "no upgrade fixture");
    for file in files {
        let name = file.display().to_string();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("brightrun.redb");
        std::fs::copy(&file, &path).unwrap();
        let store = Store::open(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let s = samples();
        // What v8 added is in v8's fixture and later ones.
        let v8 = since_v8(&s);
        let has_v8 = fixture_version(&file) >= 8;
        // The evaluation job, the export job and the DPO run.
        let has_v11 = fixture_version(&file) >= 11;
        let extra = usize::from(has_v8) + usize::from(fixture_version(&file) >= 10);
        let extra_jobs = extra + usize::from(has_v11);
        assert_eq!(
            store.schema_version().unwrap(),
            super::SCHEMA_VERSION,
            "{name}"
        );
        assert_eq!(
            store.profile_user().unwrap(),
            Some(s.profile_user),
            "{name}"
        );
        assert!(
            store.corrupt_records().unwrap().is_empty(),
            "{name}: corrupt records"
        );
        assert!(
            store.quarantined().unwrap().is_empty(),
            "{name}: quarantined records"
        );

        for d in &s.datasets {
            assert_eq!(store.dataset(d.id).unwrap().as_ref(), Some(d), "{name}");
        }
        for j in &s.jobs {
            assert_eq!(store.job(j.id).unwrap().as_ref(), Some(j), "{name}");
        }
        if has_v8 {
            assert_eq!(
                store.job(v8.job.id).unwrap(),
                Some(v8.job.clone()),
                "{name}"
            );
            assert_eq!(
                store.comparison(v8.comparison.0).unwrap(),
                Some(v8.comparison.1.clone()),
                "{name}"
            );
            assert_eq!(
                store.evaluation(v8.evaluation.0).unwrap(),
                Some(v8.evaluation.1.clone()),
                "{name}"
            );
            assert_eq!(
                store.checkpoints(v8.job.id).unwrap(),
                vec![v8.checkpoint.clone()],
                "{name}"
            );
        }
        if fixture_version(&file) >= 9 {
            let sweep = since_v9(&s);
            assert_eq!(
                store.sweep(sweep.id).unwrap(),
                Some(sweep.clone()),
                "{name}"
            );
            assert_eq!(store.sweeps(None).unwrap(), vec![sweep], "{name}");
        } else {
            assert!(store.sweeps(None).unwrap().is_empty(), "{name}");
        }
        for a in &s.artifacts {
            assert_eq!(store.artifact(a.id).unwrap().as_ref(), Some(a), "{name}");
        }
        let (export_job, export) = since_v10(&s);
        if fixture_version(&file) >= 10 {
            assert_eq!(
                store.job(export_job.id).unwrap(),
                Some(export_job),
                "{name}"
            );
            assert_eq!(store.artifact(export.id).unwrap(), Some(export), "{name}");
        } else {
            assert_eq!(store.artifact(export.id).unwrap(), None, "{name}");
        }
        for n in &s.notifications {
            assert_eq!(
                store.notification(n.id).unwrap().as_ref(),
                Some(n),
                "{name}"
            );
        }
        let v11 = since_v11(&s);
        if has_v11 {
            assert_eq!(
                store.dataset(v11.dataset.id).unwrap(),
                Some(v11.dataset.clone()),
                "{name}"
            );
            assert_eq!(
                store.job(v11.job.id).unwrap(),
                Some(v11.job.clone()),
                "{name}"
            );
            assert_eq!(
                store.metrics(v11.job.id, 0, 100).unwrap(),
                v11.metrics,
                "{name}"
            );
        } else {
            assert_eq!(store.job(v11.job.id).unwrap(), None, "{name}");
        }
        let job = s.metrics[0].job_id;
        assert_eq!(store.metrics(job, 0, 100).unwrap(), s.metrics, "{name}");
        assert_eq!(store.checkpoints(job).unwrap(), s.checkpoints, "{name}");
        let user = s.profile_user;
        let costs = store.cost_records(user, Page::ALL).unwrap();
        assert_eq!(by_id(&costs, |c| c.id), by_id(&s.costs, |c| c.id), "{name}");

        // Lists and their counters agree with the records.
        let live = |u: UserId| {
            s.datasets
                .iter()
                .filter(|d| d.user_id == u && d.deleted_at.is_none())
                .count()
                + usize::from(has_v11 && u == v11.dataset.user_id)
        };
        assert_eq!(
            store.datasets(user, None, Page::ALL).unwrap().len(),
            live(user)
        );
        assert_eq!(
            store.count_datasets(user, None).unwrap(),
            live(user),
            "{name}"
        );
        let jobs = s.jobs.iter().filter(|j| j.user_id == user).count() + extra_jobs;
        assert_eq!(store.count_jobs(user, None).unwrap(), jobs, "{name}");
        assert_eq!(
            store.count_jobs(user, Some(JobStatus::Queued)).unwrap(),
            2,
            "{name}"
        );
        assert_eq!(
            store.jobs_in_status(JobStatus::Running, 100).unwrap().len(),
            // The export job has completed.
            2 + usize::from(has_v8),
            "{name}"
        );

        // The engine-private tables.
        let tokens = store.tokens().unwrap();
        assert_eq!(by_id(&tokens, |t| t.id.clone()), s.tokens, "{name}");
        assert_eq!(
            UploadJournal::all(&store).unwrap(),
            vec![s.upload.clone()],
            "{name}"
        );
        let calibration = store.calibration(&s.calibration.0).unwrap().unwrap();
        assert_eq!(
            (calibration.runs, calibration.tokens_per_sec),
            (1, s.calibration.1)
        );

        // The change log: every entry decodes, one per record written, every kind there.
        let changes = store.changes_after(0, usize::MAX).unwrap();
        // v11's dataset, job and metrics batch.
        let records = s.datasets.len()
            + s.jobs.len()
            + extra
            + 3 * usize::from(has_v11)
            + 1
            + s.artifacts.len()
            + s.costs.len()
            + s.notifications.len()
            + s.checkpoints.len()
            + extra
            + usize::from(fixture_version(&file) >= 9);
        assert_eq!(changes.len(), records, "{name}: change log entries");
        assert!(
            changes.windows(2).all(|w| w[1].seq == w[0].seq + 1),
            "{name}"
        );
        assert_eq!(store.acked_changes(CONSUMER).unwrap(), Some(CONSUMER_SEQ));

        // And the upgraded store takes new records.
        let mut d = s.datasets[2].clone();
        d.id = DatasetId::new();
        store.put(&d).unwrap();
        assert_eq!(store.count_datasets(user, None).unwrap(), live(user) + 1);
    }
}
