//! What the trainer's `evaluating` stage measured of a model (the `evaluation.json` it writes
//! beside the adapter; trainer/PROTOCOL.md): the held-out loss of the base model and of the
//! adapter on the same tokens, and both models' greedy answers to held-out examples and to
//! probe prompts, each scored against its reference.
//!
//! Every field but the two lists is optional and unknown fields are kept out, so a newer
//! trainer's document still reads, and the stored form is this document's JSON (its own
//! `version`), never a positional layout.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Evaluation {
    pub version: u32,
    /// How answers are scored against references: `rouge_l_f1` (ROUGE-L F1 over lowercased
    /// words, 0 to 1).
    pub similarity: Option<String>,
    /// `validation` (held out from training) or `training` (a dataset too small to hold any
    /// out: the samples were trained on, and say so).
    pub samples_from: Option<String>,
    pub decoding: Decoding,
    pub base_loss: Option<f64>,
    pub adapter_loss: Option<f64>,
    pub base_perplexity: Option<f64>,
    pub adapter_perplexity: Option<f64>,
    pub tokens_scored: Option<u64>,
    pub samples: Vec<Answered>,
    pub probes: Vec<Answered>,
    /// Samples where the adapter's answer is closer to the reference than the base's.
    pub adapter_closer: Option<u32>,
    pub base_closer: Option<u32>,
    pub ties: Option<u32>,
    pub seconds: Option<f64>,
    /// What failed when the evaluation could not finish (the rest is what it computed).
    pub error: Option<String>,
    /// A preference run's held-out pairs, judged by the base and by the adapter.
    pub preference: Option<PreferenceEvaluation>,
}

/// How often each model prefers the chosen reply of a held-out pair (PROTOCOL.md,
/// "Evaluation"). `accuracy`: the share of pairs whose chosen reply has the higher mean
/// per-token log-probability; `margin`: the mean of that difference. The reward figures are
/// the adapter's implicit reward with the base as reference (`beta` × the log-ratio), as the
/// training metrics report it. KTO: desirable replies against undesirable ones of the
/// held-out set, by mean log-probability.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct PreferenceEvaluation {
    pub pairs: u32,
    pub base_accuracy: Option<f64>,
    pub base_margin: Option<f64>,
    pub adapter_accuracy: Option<f64>,
    pub adapter_margin: Option<f64>,
    pub reward_accuracy: Option<f64>,
    pub reward_margin: Option<f64>,
}

/// Greedy or sampled, and how long an answer may be.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Decoding {
    pub do_sample: bool,
    pub max_new_tokens: Option<u32>,
}

/// One prompt answered by the base model and by the adapter.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Answered {
    /// The last user message (earlier turns are counted in `context_turns`).
    pub prompt: String,
    pub context_turns: Option<u32>,
    pub reference: Option<String>,
    pub base: String,
    pub adapter: String,
    pub base_score: Option<f64>,
    pub adapter_score: Option<f64>,
    /// A probe's reference appears in the adapter's answer.
    pub contains_reference: Option<bool>,
    /// The two answers differ (whitespace aside): for probes, what the training changed.
    pub changed: Option<bool>,
    /// A built-in probe, not one of the team's.
    pub builtin: Option<bool>,
}

impl Evaluation {
    /// The held-out improvement of the adapter over the base, in percent of the base's loss
    /// (`(base − adapter) / base × 100`), when both losses are known and the base's is
    /// positive.
    pub fn held_out_improvement(&self) -> Option<f64> {
        match (self.base_loss, self.adapter_loss) {
            (Some(b), Some(a)) if b.is_finite() && a.is_finite() && b > 0.0 => {
                Some((b - a) / b * 100.0)
            }
            _ => None,
        }
    }

    /// How many probes' answers the training changed.
    pub fn probes_changed(&self) -> usize {
        self.probes
            .iter()
            .filter(|p| p.changed == Some(true))
            .count()
    }

    /// Cleans every string of terminal controls (the answers are a model's output) and drops
    /// non-finite numbers.
    pub fn sanitised(mut self) -> Self {
        let clean = |s: &mut String| {
            *s = crate::text::clean(s).into_owned();
        };
        for a in self.samples.iter_mut().chain(self.probes.iter_mut()) {
            clean(&mut a.prompt);
            clean(&mut a.base);
            clean(&mut a.adapter);
            if let Some(r) = a.reference.as_mut() {
                clean(r);
            }
            for s in [&mut a.base_score, &mut a.adapter_score] {
                *s = s.filter(|v| v.is_finite());
            }
        }
        for f in [
            &mut self.base_loss,
            &mut self.adapter_loss,
            &mut self.base_perplexity,
            &mut self.adapter_perplexity,
            &mut self.seconds,
        ] {
            *f = f.filter(|v| v.is_finite());
        }
        for s in [
            &mut self.similarity,
            &mut self.samples_from,
            &mut self.error,
        ] {
            if let Some(v) = s.as_mut() {
                *v = crate::text::clean_line(v);
            }
        }
        self
    }
}
