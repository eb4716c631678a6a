//! Preference training: the method a run trains with, what it reports while it trains, and
//! what the validator learns about preference and KTO files.
//!
//! A method carries exactly its own hyperparameters (`Dpo { beta, loss_type }`, …), so a run
//! cannot hold a SimPO `gamma` while it trains DPO. The trainer reads the same JSON
//! (trainer/PROTOCOL.md, `hyperparameters.method`).

use super::DatasetFormat;
use serde::{Deserialize, Serialize};

/// DPO's loss: `sigmoid` (the DPO paper's) or `ipo` (IPO's squared loss, where `beta` is τ).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DpoLoss {
    #[default]
    Sigmoid,
    Ipo,
}

impl DpoLoss {
    pub const ALL: [DpoLoss; 2] = [Self::Sigmoid, Self::Ipo];
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Sigmoid => "sigmoid",
            Self::Ipo => "ipo",
        }
    }
}

/// The method's name alone: what `--set method=…` and the Configure form choose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MethodName {
    Sft,
    Dpo,
    Orpo,
    Simpo,
    Kto,
}

impl MethodName {
    pub const ALL: [MethodName; 5] = [Self::Sft, Self::Dpo, Self::Orpo, Self::Simpo, Self::Kto];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Sft => "sft",
            Self::Dpo => "dpo",
            Self::Orpo => "orpo",
            Self::Simpo => "simpo",
            Self::Kto => "kto",
        }
    }

    /// The method with its default hyperparameters (TRL's defaults, SimPO's from its paper).
    pub fn with_defaults(self) -> TrainingMethod {
        match self {
            Self::Sft => TrainingMethod::Sft,
            Self::Dpo => TrainingMethod::Dpo {
                beta: 0.1,
                loss_type: DpoLoss::Sigmoid,
            },
            Self::Orpo => TrainingMethod::Orpo { lambda: 0.1 },
            Self::Simpo => TrainingMethod::Simpo {
                beta: 2.0,
                gamma: 1.0,
            },
            Self::Kto => TrainingMethod::Kto {
                beta: 0.1,
                desirable_weight: 1.0,
                undesirable_weight: 1.0,
            },
        }
    }

    /// The dataset format this method trains on.
    pub fn data_kind(&self) -> DataKind {
        match self {
            Self::Sft => DataKind::Supervised,
            Self::Dpo | Self::Orpo | Self::Simpo => DataKind::Preference,
            Self::Kto => DataKind::Kto,
        }
    }

    /// The methods that train on data of this kind, for refusals' suggestions.
    pub fn for_data(kind: DataKind) -> Vec<MethodName> {
        Self::ALL
            .into_iter()
            .filter(|m| m.data_kind() == kind)
            .collect()
    }

    /// Whether a run of this method has a reference model (the base with the adapter
    /// disabled): DPO and KTO do; ORPO and SimPO are reference-free.
    pub fn has_reference(&self) -> bool {
        matches!(self, Self::Dpo | Self::Kto)
    }

    /// Sequences the policy runs forward and backward per example: two for a pair.
    pub fn sequences_per_example(&self) -> u32 {
        match self.data_kind() {
            DataKind::Preference => 2,
            DataKind::Supervised | DataKind::Kto => 1,
        }
    }
}

impl std::str::FromStr for MethodName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!("unknown method `{s}` (expected one of sft, dpo, orpo, simpo, kto)")
            })
    }
}

/// What kind of examples a dataset holds, as the methods see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataKind {
    /// Conversations or text, trained on the assistant's replies (`sft`).
    Supervised,
    /// A prompt with a chosen and a rejected reply (`dpo`, `orpo`, `simpo`).
    Preference,
    /// A prompt with one reply labelled desirable or not (`kto`).
    Kto,
}

impl DataKind {
    pub fn of(format: DatasetFormat) -> DataKind {
        match format {
            DatasetFormat::Preference => Self::Preference,
            DatasetFormat::Kto => Self::Kto,
            _ => Self::Supervised,
        }
    }
}

/// How a run learns: supervised fine-tuning, or one of the preference methods with its own
/// hyperparameters. JSON: `{"name": "dpo", "beta": 0.1, "loss_type": "sigmoid"}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum TrainingMethod {
    /// Supervised fine-tuning on the assistant's replies (the default).
    #[default]
    Sft,
    /// Direct Preference Optimization against the base model as reference.
    Dpo { beta: f64, loss_type: DpoLoss },
    /// Odds Ratio Preference Optimization: the SFT loss on the chosen reply plus `lambda`
    /// times the odds-ratio loss; no reference model.
    Orpo { lambda: f64 },
    /// SimPO: length-normalised log-probabilities with a target margin `gamma`; no
    /// reference model.
    Simpo { beta: f64, gamma: f64 },
    /// Kahneman-Tversky Optimization on unpaired replies labelled desirable or not.
    Kto {
        beta: f64,
        desirable_weight: f64,
        undesirable_weight: f64,
    },
}

impl TrainingMethod {
    pub fn name(&self) -> MethodName {
        match self {
            Self::Sft => MethodName::Sft,
            Self::Dpo { .. } => MethodName::Dpo,
            Self::Orpo { .. } => MethodName::Orpo,
            Self::Simpo { .. } => MethodName::Simpo,
            Self::Kto { .. } => MethodName::Kto,
        }
    }

    pub fn is_preference(&self) -> bool {
        !matches!(self, Self::Sft)
    }

    /// One line for tables and summaries: `dpo (beta 0.1, sigmoid)`.
    pub fn describe(&self) -> String {
        match self {
            Self::Sft => "sft".into(),
            Self::Dpo { beta, loss_type } => format!("dpo (beta {beta}, {})", loss_type.as_str()),
            Self::Orpo { lambda } => format!("orpo (lambda {lambda})"),
            Self::Simpo { beta, gamma } => format!("simpo (beta {beta}, gamma {gamma})"),
            Self::Kto {
                beta,
                desirable_weight,
                undesirable_weight,
            } => format!(
                "kto (beta {beta}, desirable {desirable_weight}, undesirable {undesirable_weight})"
            ),
        }
    }

    /// Whether this method can train on a dataset of this format.
    pub fn fits(&self, format: DatasetFormat) -> bool {
        self.name().data_kind() == DataKind::of(format)
    }
}

/// The preference figures of one logged step (PROTOCOL.md's `metric` event, `preference`),
/// means over the step's examples, as TRL names them (`rewards/chosen`, …). For KTO,
/// `chosen` is the desirable replies and `rejected` the undesirable ones.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PreferenceMetrics {
    /// The implicit reward of the chosen replies (`beta` × the log-ratio to the reference;
    /// SimPO and ORPO: the method's own scaled log-probability).
    pub rewards_chosen: Option<f64>,
    pub rewards_rejected: Option<f64>,
    /// `rewards_chosen − rewards_rejected`.
    pub reward_margin: Option<f64>,
    /// The share of pairs whose chosen reward is above the rejected one (0..=1); none for KTO.
    pub reward_accuracy: Option<f64>,
    /// The policy's log-probability of the replies (summed over tokens; SimPO: per token).
    pub logps_chosen: Option<f64>,
    pub logps_rejected: Option<f64>,
    /// KTO's KL estimate between policy and reference.
    pub kl: Option<f64>,
}

impl PreferenceMetrics {
    /// Every figure, with its name as charts and the mirror spell it.
    pub fn named(&self) -> [(&'static str, Option<f64>); 7] {
        [
            ("rewards_chosen", self.rewards_chosen),
            ("rewards_rejected", self.rewards_rejected),
            ("reward_margin", self.reward_margin),
            ("reward_accuracy", self.reward_accuracy),
            ("logps_chosen", self.logps_chosen),
            ("logps_rejected", self.logps_rejected),
            ("kl", self.kl),
        ]
    }
}

/// What the validator learns about a preference or KTO file beyond the shared counts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PreferenceStatistics {
    /// Usable pairs (preference) or labelled replies (KTO).
    pub pairs: u64,
    /// Tokens of the prompts, the chosen (KTO: desirable) and the rejected (undesirable)
    /// replies, in all.
    pub prompt_tokens: u64,
    pub chosen_tokens: u64,
    pub rejected_tokens: u64,
    /// Percentiles of the reply lengths in tokens.
    pub chosen_tokens_p50: u64,
    pub chosen_tokens_p95: u64,
    pub rejected_tokens_p50: u64,
    pub rejected_tokens_p95: u64,
    /// The longest prompt plus reply, the sequence the trainer must fit.
    pub sequence_tokens_max: u64,
    /// Pairs whose chosen reply is the longer one (0..=1): far from one half is a length bias.
    pub chosen_longer_share: f64,
    /// KTO: the replies labelled desirable and undesirable.
    pub desirable: u64,
    pub undesirable: u64,
}
