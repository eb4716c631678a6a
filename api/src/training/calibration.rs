//! Estimates that learn from runs: the throughput a completed job measured is kept per setting
//! (GPU type, GPU count, base model, quantization and method: a DPO run's tokens/s holds its
//! reference pass, which an SFT run's has not), and later estimates of the same setting
//! use the average of those measurements instead of the catalog's assumption, saying so
//! ("calibrated from N runs").
//!
//! This module is the pure part: the setting's key and the running average. The engine keeps
//! them in the store (an engine-private table) and measures each run from the trainer's
//! `done` summary (`train_tokens / train_runtime_seconds`), or, without one, from the mean of
//! the run's `throughput` metrics.

use super::models;
use crate::domain::{MethodName, Quantization};
use serde::{Deserialize, Serialize};

/// Which runs measure the same thing: one GPU type and count, one base model (matched as the
/// size table matches ids, so `…-Instruct` counts with its base), one quantization.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CalibrationKey {
    /// The catalog id (lower-cased), or `local:<hardware>` for this machine.
    pub gpu_type: String,
    pub gpu_count: u32,
    /// [`models::normalize`]d.
    pub model: String,
    /// `none` or `4bit`.
    pub quantization: String,
    /// The method (`sft`, `dpo`, …).
    pub method: String,
}

impl CalibrationKey {
    /// The key of a run. `hardware` names this machine's hardware for the `local` GPU type
    /// (a calibration made on one machine says nothing about another).
    pub fn new(
        gpu_type: &str,
        hardware: Option<&str>,
        gpu_count: u32,
        base_model: &str,
        quantization: Quantization,
    ) -> Self {
        let gpu = gpu_type.trim().to_ascii_lowercase();
        Self {
            gpu_type: match hardware {
                Some(h) => format!("{gpu}:{}", h.trim().to_ascii_lowercase()),
                None => gpu,
            },
            gpu_count,
            model: models::normalize(base_model),
            quantization: match quantization {
                Quantization::None => "none".into(),
                Quantization::FourBit => "4bit".into(),
            },
            method: MethodName::Sft.as_str().into(),
        }
    }

    /// The key of a run of `method` (SFT's by default).
    pub fn for_method(self, method: MethodName) -> Self {
        Self {
            method: method.as_str().into(),
            ..self
        }
    }

    /// The key as stored: the fields joined by `|` (none of them holds one after cleaning).
    /// An SFT run's key has no method field, as before methods existed, so calibrations
    /// made then still count.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut key = format!(
            "{}|{}|{}|{}",
            self.gpu_type.replace('|', "/"),
            self.gpu_count,
            self.model.replace('|', "/"),
            self.quantization
        );
        if self.method != MethodName::Sft.as_str() {
            key = format!("{key}|{}", self.method);
        }
        key.into_bytes()
    }
}

/// What completed runs of one setting measured.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Completed runs averaged.
    pub runs: u32,
    /// Their mean throughput, all GPUs together, tokens per second.
    pub tokens_per_sec: f64,
}

impl Calibration {
    /// The average after one more run measured `tokens_per_sec` (non-finite or non-positive
    /// measurements are not runs to learn from and leave it as it is).
    pub fn add(previous: Option<Calibration>, tokens_per_sec: f64) -> Option<Calibration> {
        if !(tokens_per_sec.is_finite() && tokens_per_sec > 0.0) {
            return previous;
        }
        Some(match previous {
            None => Calibration {
                runs: 1,
                tokens_per_sec,
            },
            Some(p) => {
                let n = p.runs as f64;
                Calibration {
                    runs: p.runs + 1,
                    tokens_per_sec: (p.tokens_per_sec * n + tokens_per_sec) / (n + 1.0),
                }
            }
        })
    }
}

/// A run's measured throughput: its trained tokens over its training time when the trainer
/// reported both, else the mean of its per-step throughput metrics.
pub fn measured_throughput(
    train_tokens: Option<u64>,
    train_runtime_seconds: Option<f64>,
    metric_throughputs: &[f64],
) -> Option<f64> {
    if let (Some(t), Some(s)) = (train_tokens, train_runtime_seconds)
        && t > 0
        && s.is_finite()
        && s > 0.0
    {
        return Some(t as f64 / s);
    }
    let good: Vec<f64> = metric_throughputs
        .iter()
        .copied()
        .filter(|x| x.is_finite() && *x > 0.0)
        .collect();
    (!good.is_empty()).then(|| good.iter().sum::<f64>() / good.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_average_is_a_running_mean_of_the_runs() {
        // Runs of 1,000, 1,200 and 1,400 tokens/s average 1,200.
        let a = Calibration::add(None, 1000.0).unwrap();
        assert_eq!(a.runs, 1);
        let b = Calibration::add(Some(a), 1200.0).unwrap();
        assert_eq!((b.runs, b.tokens_per_sec), (2, 1100.0));
        let c = Calibration::add(Some(b), 1400.0).unwrap();
        assert_eq!((c.runs, c.tokens_per_sec), (3, 1200.0));
        // A run that measured nothing changes nothing.
        assert_eq!(Calibration::add(Some(c), f64::NAN), Some(c));
        assert_eq!(Calibration::add(None, 0.0), None);
    }

    #[test]
    fn a_run_is_measured_from_its_summary_or_its_metrics() {
        // 90,000 tokens in 60 s: 1,500 tokens/s.
        assert_eq!(
            measured_throughput(Some(90_000), Some(60.0), &[1.0]),
            Some(1500.0)
        );
        assert_eq!(
            measured_throughput(None, Some(60.0), &[900.0, 1100.0, f64::NAN]),
            Some(1000.0)
        );
        assert_eq!(measured_throughput(Some(0), Some(0.0), &[]), None);
    }

    #[test]
    fn keys_match_instruct_variants_and_keep_machines_apart() {
        let a = CalibrationKey::new(
            "A100-80GB",
            None,
            2,
            "meta-llama/Llama-3.1-8B-Instruct",
            Quantization::None,
        );
        let b = CalibrationKey::new(
            "a100-80gb",
            None,
            2,
            "unsloth/Llama-3.1-8B",
            Quantization::None,
        );
        assert_eq!(a, b);
        assert_eq!(a.to_bytes(), b"a100-80gb|2|llama-3.1-8b|none".to_vec());
        let here = CalibrationKey::new(
            "local",
            Some("CPU"),
            1,
            "brightrun/tiny-random-llama",
            Quantization::FourBit,
        );
        assert_eq!(
            here.to_bytes(),
            b"local:cpu|1|tiny-random-llama|4bit".to_vec()
        );
        // Each preference method is calibrated apart from SFT, whose key is unchanged.
        let dpo = here.clone().for_method(MethodName::Dpo);
        assert_eq!(
            dpo.to_bytes(),
            b"local:cpu|1|tiny-random-llama|4bit|dpo".to_vec()
        );
        assert_ne!(dpo, here);
        assert_eq!(here.clone().for_method(MethodName::Sft), here);
    }
}
