//! A small, complete set of records of every kind (a dataset, a job with its metrics, a
//! checkpoint, an artifact, costs, notifications) written straight into a store, so the
//! mirror's tests and its backfill benchmark exercise every table without running training.

use crate::domain::*;
use crate::ids::*;
use crate::store::{Store, StoreError};

/// What [`write_sample`] stored.
#[derive(Clone, Debug)]
pub struct Sample {
    pub dataset: Dataset,
    pub job: TrainingJob,
    pub artifact: ModelArtifact,
    pub costs: Vec<CostRecord>,
    pub notifications: Vec<Notification>,
    pub checkpoint: Checkpoint,
    pub metrics: usize,
}

/// Writes one dataset, one completed job with `metrics` points (in commits of up to 10,000
/// points, as a trainer's stream would arrive), a checkpoint, an artifact, two cost records
/// and two notifications, all owned by `user`.
pub fn write_sample(store: &Store, user: UserId, metrics: usize) -> Result<Sample, StoreError> {
    let t = now();
    let dataset_id = DatasetId::new();
    let dataset = Dataset {
        id: dataset_id,
        user_id: user,
        name: "support chats".into(),
        description: Some("first 3 months".into()),
        file_name: "chats.jsonl".into(),
        file_size: 123_456,
        format: Some(DatasetFormat::OpenaiChat),
        status: DatasetStatus::Ready,
        storage_bucket: "lora-datasets".into(),
        storage_path: format!("{user}/{dataset_id}/chats.jsonl"),
        sha256: Some("ab".repeat(32)),
        statistics: Some(DatasetStatistics {
            total_examples: 1000,
            total_training_pairs: 900,
            total_validation_pairs: 100,
            total_tokens: 250_000,
            avg_turns_per_conversation: 3.25,
            avg_tokens_per_turn: 76.5,
            ..Default::default()
        }),
        total_training_pairs: Some(900),
        total_validation_pairs: Some(100),
        total_tokens: Some(250_000),
        training_ready: true,
        validated_at: Some(t),
        validation_errors: vec![ValidationIssue {
            line: 7,
            error: "empty reply".into(),
            suggestion: "remove the line".into(),
            severity: Severity::Warning,
        }],
        sample_data: vec![vec![ChatMessage {
            role: "user".into(),
            content: "hello".into(),
        }]],
        error_message: None,
        source_path: None,
        created_at: t,
        updated_at: t,
        deleted_at: None,
    };
    let mut job = TrainingJob::new_queued(
        user,
        dataset_id,
        PresetId::Balanced,
        Hyperparameters {
            base_model: "mistralai/Mistral-7B-v0.1".into(),
            learning_rate: 5e-5,
            batch_size: 4,
            gradient_accumulation_steps: 1,
            epochs: 3,
            lora_rank: 16,
            lora_alpha: 32,
            lora_dropout: 0.1,
            target_modules: vec!["q_proj".into(), "v_proj".into()],
            warmup_ratio: 0.03,
            warmup_steps: None,
            weight_decay: 0.0,
            scheduler: Scheduler::Cosine,
            max_seq_length: 2048,
            seed: 42,
            use_validation: true,
            quantization: Quantization::None,
            method: TrainingMethod::Sft,
        },
        GpuConfig {
            gpu_type: "A100-80GB".into(),
            gpu_count: 2,
            price_per_gpu_hour: 3.5,
            backend: "local".into(),
        },
        metrics as u64,
        12.5,
        Some(7.0),
    );
    let artifact_id = ArtifactId::new();
    job.status = JobStatus::Completed;
    job.current_stage = JobStage::Completed;
    job.progress = 100.0;
    job.current_epoch = 3;
    job.current_step = metrics as u64;
    job.started_at = Some(t);
    job.completed_at = Some(t);
    job.current_cost = 11.75;
    job.final_cost = Some(11.75);
    job.external_job_id = Some(job.id.to_string());
    job.artifact_id = Some(artifact_id);
    job.current_metrics.training_loss = Some(0.42);
    let job_id = job.id;
    let points: Vec<MetricsPoint> = (0..metrics as u64)
        .map(|step| MetricsPoint {
            job_id,
            timestamp: t + chrono::Duration::milliseconds(step as i64),
            epoch: step as f64 * 3.0 / metrics.max(1) as f64,
            step,
            training_loss: Some(2.0 / (1.0 + step as f64 * 0.001)),
            validation_loss: (step % 100 == 0).then(|| 2.1 / (1.0 + step as f64 * 0.001)),
            learning_rate: Some(5e-5 * (1.0 - step as f64 / metrics.max(1) as f64)),
            gradient_norm: Some(0.5 + (step % 7) as f64 * 0.01),
            throughput: Some(1800.0 + (step % 13) as f64),
            gpu_utilization: Some(93.5),
            preference: None,
        })
        .collect();
    let checkpoint = Checkpoint {
        id: CheckpointId::new(),
        job_id,
        step: metrics as u64 / 2,
        epoch: 1.5,
        loss: Some(0.8),
        storage_path: format!("{user}/checkpoints/{job_id}/step-{}.tar", metrics / 2),
        size: Some(4_096),
        sha256: Some("0f".repeat(32)),
        folder: None,
        created_at: t,
    };
    let artifact = ModelArtifact {
        id: artifact_id,
        user_id: user,
        job_id,
        dataset_id,
        name: "support-bot".into(),
        version: 1,
        status: ArtifactStatus::Stored,
        base_model: "mistralai/Mistral-7B-v0.1".into(),
        quality_metrics: QualityMetrics {
            final_training_loss: Some(0.42),
            final_validation_loss: Some(0.47),
            initial_training_loss: Some(2.0),
            loss_reduction_percent: Some(79.0),
            perplexity: Some(1.6),
            convergence: Convergence::Good,
            quality_score: 5,
        },
        training_summary: TrainingSummary {
            total_steps: metrics as u64,
            epochs: 3,
            duration_seconds: 3600.0,
            final_cost: 11.75,
            gpu_type: "A100-80GB".into(),
            gpu_count: 2,
            ..Default::default()
        },
        configuration: JsonValue(serde_json::json!({"lora_rank": 16})),
        storage_bucket: "lora-models".into(),
        storage_path: format!("{user}/{artifact_id}"),
        files: vec![ArtifactFile {
            path: "adapter_model.safetensors".into(),
            size: 4096,
            sha256: "cd".repeat(32),
        }],
        parent_model_id: None,
        kind: ModelKind::Adapter,
        export: None,
        created_at: t,
        updated_at: t,
        deleted_at: None,
    };
    let costs = vec![
        CostRecord {
            id: CostRecordId::new(),
            user_id: user,
            job_id: Some(job_id),
            cost_type: CostType::Compute,
            amount: 11.25,
            details: CostDetails {
                gpu_type: Some("A100-80GB".into()),
                gpu_count: Some(2),
                hours: Some(1.6),
                ..Default::default()
            },
            billing_period: t.format("%Y-%m").to_string(),
            created_at: t,
        },
        CostRecord {
            id: CostRecordId::new(),
            user_id: user,
            job_id: None,
            cost_type: CostType::Storage,
            amount: 0.5,
            details: CostDetails::default(),
            billing_period: t.format("%Y-%m").to_string(),
            created_at: t,
        },
    ];
    let notifications = vec![
        Notification {
            id: NotificationId::new(),
            user_id: user,
            kind: NotificationType::JobCompleted,
            title: "Training finished".into(),
            message: "support-bot is ready".into(),
            priority: Priority::High,
            read: false,
            link: Some(Link::Job(job_id)),
            metadata: JsonValue(serde_json::json!({"quality_score": 5})),
            created_at: t,
        },
        Notification {
            id: NotificationId::new(),
            user_id: user,
            kind: NotificationType::DatasetReady,
            title: "Dataset ready".into(),
            message: "support chats validated".into(),
            priority: Priority::Medium,
            read: true,
            link: Some(Link::Dataset(dataset_id)),
            metadata: JsonValue(serde_json::json!({})),
            created_at: t,
        },
    ];
    store.write(|w| {
        w.put(&dataset)?;
        w.put(&job)
    })?;
    for chunk in points.chunks(10_000) {
        store.write(|w| w.put_metrics(chunk).map(|_| ()))?;
    }
    // The model's evaluation is stored before its record, as a run stores it.
    store.put_evaluation(
        artifact_id,
        &Evaluation {
            version: 1,
            base_loss: Some(2.5),
            adapter_loss: Some(1.25),
            ..Default::default()
        },
    )?;
    store.write(|w| {
        w.put(&checkpoint)?;
        w.put(&artifact)?;
        for c in &costs {
            w.put(c)?;
        }
        for n in &notifications {
            w.put(n)?;
        }
        Ok(())
    })?;
    Ok(Sample {
        dataset,
        job,
        artifact,
        costs,
        notifications,
        checkpoint,
        metrics,
    })
}
