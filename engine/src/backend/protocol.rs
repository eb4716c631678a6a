//! The trainer protocol (trainer/PROTOCOL.md) as Rust types: the job spec we write and the
//! events we read back. Change both sides together.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where the trainer finds its dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetRef {
    Path(String),
    Url(String),
}

/// Where the trainer writes the adapter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputRef {
    Dir(String),
    PresignedPut(BTreeMap<String, String>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainerSpec {
    pub version: u32,
    pub job_id: String,
    pub base_model: String,
    /// None only for an evaluation job of given prompts, which reads no dataset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<DatasetRef>,
    /// The job's hyperparameters plus `validation_split`, as PROTOCOL.md lists them.
    pub hyperparameters: serde_json::Value,
    pub output: OutputRef,
    pub checkpoint_dir: String,
    pub resume_from: Option<ResumeRef>,
    /// Also checkpoint every N optimizer steps (`[training] checkpoint_steps`); none: at the
    /// end of every epoch but the last, and on a stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_steps: Option<u64>,
    /// Where the trainer stores each checkpoint's archive (PROTOCOL.md, "Checkpoint
    /// storage"); none: checkpoints stay in `checkpoint_dir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_upload: Option<CheckpointUpload>,
    pub logging_steps: u32,
    pub max_steps: Option<u64>,
    /// How the trainer spends the GPU, and on how many GPUs of its machine it runs.
    #[serde(default)]
    pub efficiency: Efficiency,
    /// The `evaluating` stage's settings (`[evaluation]`); none: no evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<EvaluationSpec>,
    /// An evaluation job (`brightrun models eval`): answer with these models instead of
    /// training (PROTOCOL.md, "Compare mode"); none: train.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare: Option<CompareSpec>,
    /// The adapter a run starts from instead of fresh LoRA weights (`--from-model`;
    /// PROTOCOL.md, "Training on from a model"); none: fresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_adapter: Option<CompareModel>,
    /// An export job (`brightrun models export`): export this adapter instead of training
    /// (PROTOCOL.md, "Export mode"); none: train.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportSpec>,
}

/// PROTOCOL.md's `export` object: the adapter, what to make of it, and the check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportSpec {
    pub model: CompareModel,
    pub format: crate::domain::ExportFormat,
    pub dtype: crate::domain::ExportDtype,
    pub quantize: Option<String>,
    pub ollama: bool,
    pub name: String,
    pub system_prompt: Option<String>,
    pub max_shard_bytes: u64,
    pub max_shards: u32,
    pub verify: ExportVerify,
}

/// How an export is checked: the prompts (none: the trainer's built-in ones) and the greedy
/// tokens compared per prompt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportVerify {
    pub prompts: Option<Vec<Vec<crate::domain::ChatMessage>>>,
    pub tokens: u32,
}

/// PROTOCOL.md's `compare` object: the models to answer with, and the prompts (none: the
/// held-out examples of `dataset` and the probes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompareSpec {
    pub models: Vec<CompareModel>,
    pub prompts: Option<Vec<crate::domain::EvalPrompt>>,
}

/// The checkpoint a run continues from: a folder on the trainer's machine, or a stored
/// archive (a file here, or a presigned GET URL) with the size and sha256 it must have.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ResumeRef {
    Folder(String),
    Archive {
        archive: String,
        sha256: String,
        size: u64,
        step: u64,
    },
    Url {
        url: String,
        sha256: String,
        size: u64,
        step: u64,
    },
}

/// Where checkpoint archives go: a folder the engine moves them from into the store (a local
/// run), or presigned PUT URLs used in order, one per checkpoint (a remote one).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointUpload {
    Dir(String),
    PresignedPut(Vec<String>),
}

/// A `checkpoint` event's stored archive: the slot it went to, its size and sha256, and (a
/// local run's) the file the engine moves into the store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointObject {
    pub index: u32,
    pub size: u64,
    pub sha256: String,
    #[serde(default)]
    pub seconds: Option<f64>,
    #[serde(default)]
    pub archive: Option<String>,
}

/// One model of a comparison and where the trainer finds its adapter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompareModel {
    pub id: String,
    pub label: String,
    pub base_model: String,
    pub adapter: AdapterRef,
}

/// An adapter in a folder the trainer can read, or presigned GET URLs of its files.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdapterRef {
    Dir(String),
    Urls(BTreeMap<String, String>),
}

/// PROTOCOL.md's `evaluation` object: how many held-out examples both models answer, how long
/// an answer may be, and the probes (the built-in ones, and the team's own).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvaluationSpec {
    pub samples: u32,
    pub max_new_tokens: u32,
    pub builtin_probes: bool,
    pub probes: Vec<Probe>,
}

/// One probe prompt, with the answer expected when there is one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    pub prompt: String,
    #[serde(default)]
    pub reference: Option<String>,
}

/// PROTOCOL.md's `efficiency` object: `[training.efficiency]` plus the job's GPU count (more
/// than one runs the trainer under torchrun, so the batch size stays per GPU and the global
/// batch is stated in its events).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Efficiency {
    #[serde(flatten)]
    pub settings: crate::config::EfficiencyConfig,
    pub gpu_count: u32,
}

impl Default for Efficiency {
    fn default() -> Self {
        Efficiency {
            settings: Default::default(),
            gpu_count: 1,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DoneSummary {
    pub total_steps: Option<u64>,
    pub epochs: Option<f64>,
    pub final_training_loss: Option<f64>,
    pub final_validation_loss: Option<f64>,
    pub train_runtime_seconds: Option<f64>,
    pub train_tokens: Option<u64>,
    pub trainable_parameters: Option<u64>,
    pub total_parameters: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TrainerEvent {
    Stage {
        stage: String,
        #[serde(default)]
        message: Option<String>,
    },
    Metric {
        step: u64,
        #[serde(default)]
        total_steps: Option<u64>,
        #[serde(default)]
        epoch: Option<f64>,
        #[serde(default)]
        training_loss: Option<f64>,
        #[serde(default)]
        learning_rate: Option<f64>,
        #[serde(default)]
        gradient_norm: Option<f64>,
        #[serde(default)]
        throughput: Option<f64>,
        #[serde(default)]
        gpu_utilization: Option<f64>,
        #[serde(default)]
        validation_loss: Option<f64>,
        /// A preference run's rewards, margin, accuracy and log-probabilities (PROTOCOL.md,
        /// "Events"); absent for SFT.
        #[serde(default)]
        preference: Option<crate::domain::PreferenceMetrics>,
    },
    Checkpoint {
        step: u64,
        #[serde(default)]
        epoch: Option<f64>,
        #[serde(default)]
        loss: Option<f64>,
        path: String,
        /// The stored archive, when the spec had a `checkpoint_upload` and it succeeded.
        #[serde(default)]
        object: Option<CheckpointObject>,
        /// A local run's archive, where the trainer reports it beside the object.
        #[serde(default)]
        archive: Option<String>,
    },
    Log {
        #[serde(default)]
        level: Option<String>,
        message: String,
    },
    Artifact {
        dir: String,
        files: Vec<FileEntry>,
    },
    Done {
        #[serde(default)]
        summary: DoneSummary,
    },
    Error {
        #[serde(default)]
        kind: Option<String>,
        reason: String,
        #[serde(default)]
        detail: Option<String>,
    },
}

/// One event line: the event plus its sequence number and time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(default)]
    pub seq: u64,
    #[serde(default)]
    pub ts: f64,
    #[serde(flatten)]
    pub event: TrainerEvent,
}

impl Envelope {
    /// Parses one line; a line that is not an event becomes a `log` event carrying it, so odd
    /// output is shown rather than lost or fatal. The warning quotes at most 300 characters of
    /// the line and 200 of serde's complaint (which repeats what it refused: an unknown `type`,
    /// a string where a number belongs, however long).
    pub fn parse_line(line: &str) -> Envelope {
        serde_json::from_str(line).unwrap_or_else(|e| Envelope {
            seq: 0,
            ts: 0.0,
            event: TrainerEvent::Log {
                level: Some("warning".into()),
                message: format!(
                    "unreadable trainer output ({}): {}",
                    e.to_string().chars().take(200).collect::<String>(),
                    line.chars().take(300).collect::<String>()
                ),
            },
        })
    }
}

#[cfg(test)]
impl TrainerSpec {
    /// A minimal spec for tests.
    pub(crate) fn sample(job_id: &str) -> Self {
        TrainerSpec {
            version: 1,
            job_id: job_id.into(),
            base_model: "m".into(),
            dataset: Some(DatasetRef::Path("/d".into())),
            hyperparameters: serde_json::json!({}),
            output: OutputRef::Dir("/o".into()),
            checkpoint_dir: "/c".into(),
            resume_from: None,
            checkpoint_steps: None,
            checkpoint_upload: None,
            logging_steps: 1,
            max_steps: None,
            efficiency: Efficiency::default(),
            evaluation: None,
            compare: None,
            init_adapter: None,
            export: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compare_object_is_protocol_md_s() {
        let mut spec = TrainerSpec::sample("j");
        assert!(
            serde_json::to_value(&spec)
                .unwrap()
                .get("compare")
                .is_none()
        );
        spec.compare = Some(CompareSpec {
            models: vec![
                CompareModel {
                    id: "a".into(),
                    label: "zubrowka".into(),
                    base_model: "m".into(),
                    adapter: AdapterRef::Dir("/models/a".into()),
                },
                CompareModel {
                    id: "b".into(),
                    label: "zubrowka-2".into(),
                    base_model: "m".into(),
                    adapter: AdapterRef::Urls(BTreeMap::from([(
                        "adapter_config.json".into(),
                        "https://s3/x".into(),
                    )])),
                },
            ],
            prompts: Some(vec![crate::domain::EvalPrompt {
                messages: vec![crate::domain::ChatMessage {
                    role: "user".into(),
                    content: "hi".into(),
                }],
                reference: None,
            }]),
        });
        let v = serde_json::to_value(&spec).unwrap();
        assert_eq!(
            v["compare"],
            serde_json::json!({
                "models": [
                    {"id": "a", "label": "zubrowka", "base_model": "m", "adapter": {"dir": "/models/a"}},
                    {"id": "b", "label": "zubrowka-2", "base_model": "m",
                     "adapter": {"urls": {"adapter_config.json": "https://s3/x"}}}
                ],
                "prompts": [{"messages": [{"role": "user", "content": "hi"}], "reference": null}]
            })
        );
    }

    #[test]
    fn the_efficiency_object_is_protocol_md_s() {
        let mut spec = TrainerSpec::sample("j");
        spec.efficiency.gpu_count = 2;
        spec.efficiency.settings.gradient_checkpointing = crate::config::Checkpointing::Off;
        let v = serde_json::to_value(&spec).unwrap();
        assert_eq!(
            v["efficiency"],
            serde_json::json!({"padding_free": true, "packing": false,
                "gradient_checkpointing": "off", "chunked_loss": true,
                "torch_compile": false, "liger": false, "gpu_count": 2})
        );
        // A spec from before the field (a stored one, a test fixture) means one GPU.
        let mut old = v.clone();
        old.as_object_mut().unwrap().remove("efficiency");
        let back: TrainerSpec = serde_json::from_value(old).unwrap();
        assert_eq!(back.efficiency, Efficiency::default());
        let bad = toml::from_str::<crate::config::EfficiencyConfig>(
            "gradient_checkpointing = \"sometimes\"",
        );
        assert!(bad.unwrap_err().to_string().contains("sometimes"));
    }

    #[test]
    fn events_parse_and_bad_lines_become_logs() {
        let m = Envelope::parse_line(
            r#"{"type":"metric","seq":3,"ts":1.5,"step":2,"epoch":0.5,"training_loss":1.25,"learning_rate":0.0001,"gradient_norm":null,"throughput":900.0,"gpu_utilization":null,"validation_loss":null,"total_steps":10}"#,
        );
        assert_eq!(m.seq, 3);
        match m.event {
            TrainerEvent::Metric {
                step,
                training_loss,
                total_steps,
                preference,
                ..
            } => {
                assert_eq!(step, 2);
                assert_eq!(training_loss, Some(1.25));
                assert_eq!(total_steps, Some(10));
                assert_eq!(preference, None);
            }
            other => panic!("{other:?}"),
        }
        let dpo = Envelope::parse_line(
            r#"{"type":"metric","seq":4,"ts":2.0,"step":3,"training_loss":0.6,"preference":{"rewards_chosen":0.12,"rewards_rejected":-0.05,"reward_margin":0.17,"reward_accuracy":0.75,"logps_chosen":-80.5,"logps_rejected":-91.0,"kl":null}}"#,
        );
        match dpo.event {
            TrainerEvent::Metric {
                preference: Some(p),
                ..
            } => {
                assert_eq!(p.reward_accuracy, Some(0.75));
                assert_eq!(p.reward_margin, Some(0.17));
                assert_eq!(p.kl, None);
            }
            other => panic!("{other:?}"),
        }
        let bad = Envelope::parse_line("Traceback (most recent call last):");
        assert!(matches!(bad.event, TrainerEvent::Log { .. }));
        // serde's complaint repeats what it refused: cut, like the quote of the line.
        let long = "x".repeat(100_000);
        for line in [
            format!(r#"{{"type":"{long}"}}"#),
            format!(r#"{{"type":"metric","step":"{long}"}}"#),
        ] {
            match Envelope::parse_line(&line).event {
                TrainerEvent::Log { message, .. } => {
                    assert!(message.len() < 600, "{} bytes", message.len())
                }
                other => panic!("{other:?}"),
            }
        }
        let spec = TrainerSpec::sample("j");
        let v = serde_json::to_value(&spec).unwrap();
        assert_eq!(v["dataset"]["path"], "/d");
        assert_eq!(v["output"]["dir"], "/o");
    }
}
