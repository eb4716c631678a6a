//! The GPU catalog: what a GPU-hour costs, how many tokens per second a GPU is assumed to
//! train, and how much memory it has. Estimates and the fit check read it; users override
//! any field and add entries in config (`[training.gpus.<ID>]`), because prices differ by
//! provider and change monthly.
//!
//! The first four entries are the seed's (price and throughput as it gives them). The
//! others are on-demand list prices of common clouds as of late 2025 (assumptions, not
//! quotes):
//! - H200 141 GB: ~$5/GPU-hour (CoreWeave, Lambda and the hyperscalers' 8-GPU nodes list
//!   $4–$6 per GPU-hour on demand);
//! - L40S 48 GB: $1.80 (AWS g6e.xlarge lists $1.86/h for one L40S; GPU clouds $0.9–$2);
//! - A10G 24 GB: $1.01 (AWS g5.xlarge, $1.006/h in us-east-1);
//! - RTX-4090 24 GB: $0.69 (RunPod secure cloud; community clouds go lower).
//!
//! Throughputs are on the seed's scale (A100-80GB = 1800 tokens/s per GPU). The seed's own
//! ratios are compressed (its H100 is 1.22× an A100, where raw specs say 2–3×), so the new
//! cards are placed by their dense bf16 tensor throughput and memory bandwidth relative to
//! the seed's cards, compressed the same way: H200 is an H100 with 1.4× the bandwidth
//! (2600); L40S has A100-class tensor FLOPs but 40% of its bandwidth (1400); RTX-4090 has
//! half the A100's bf16 FLOPs with fp32 accumulation and half its bandwidth (1300); A10G has
//! roughly a quarter of an A100's compute and is slower than a V100 (800).

use crate::config::{GpuOverride, TrainingConfig};
use serde::{Deserialize, Serialize};

/// One GPU type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GpuSpec {
    /// As the CLI and config spell it (`A100-80GB`); matched without regard to case.
    pub id: String,
    /// For people (`NVIDIA A100 80GB`).
    pub name: String,
    /// US dollars per GPU-hour.
    pub price_per_hour: f64,
    /// Assumed training throughput of one GPU, tokens per second.
    pub tokens_per_sec: f64,
    /// Memory of one GPU, in GB as the vendor counts it (which is GiB: an "80GB" A100 has
    /// 80 GiB), so the fit check uses 2^30-byte gigabytes throughout.
    pub memory_gb: f64,
    /// Whether it computes in bfloat16; without it (V100) training runs in fp16, which
    /// needs loss scaling and is less stable.
    pub bf16: bool,
    /// This machine, as the local backend detected it (the `local` entry), rather than a
    /// cloud GPU: its price is `[backends.local] price_per_hour` and the seed's cluster
    /// overhead does not apply. Absent (false) for catalog entries.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub local: bool,
    /// Set when this entry is a CPU (this machine without a CUDA GPU): its cores. A CPU run's
    /// time has a fixed start-up and a fixed cost per step besides its per-token work
    /// ([`crate::hardware::CPU_SECONDS_PER_STEP`] and the start-up constants beside it), and its figures are never "per GPU".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_cores: Option<u32>,
}

/// The GPU type that means "this machine" (the local backend's detected hardware).
pub const LOCAL_GPU: &str = "local";

/// An id that is not in the catalog.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown GPU type `{id}`; known types: {}", known.join(", "))]
pub struct UnknownGpu {
    pub id: String,
    pub known: Vec<String>,
}

/// A config entry that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GpuCatalogError {
    #[error(
        "GPU `{id}` is not in the built-in catalog, so [training.gpus.\"{id}\"] needs {}",
        missing.join(", ")
    )]
    Incomplete { id: String, missing: Vec<String> },
    #[error("GPU `{id}`: {field} = {value} must be a positive number")]
    BadValue {
        id: String,
        field: String,
        value: String,
    },
    #[error("GPU `{id}` is configured twice (ids are matched without regard to case)")]
    Duplicate { id: String },
}

/// The GPU types estimates can use, built-ins first, then config additions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GpuCatalog {
    gpus: Vec<GpuSpec>,
}

fn spec(id: &str, name: &str, price: f64, tps: f64, mem: f64, bf16: bool) -> GpuSpec {
    GpuSpec {
        id: id.into(),
        name: name.into(),
        price_per_hour: price,
        tokens_per_sec: tps,
        memory_gb: mem,
        bf16,
        local: false,
        cpu_cores: None,
    }
}

/// The built-in entries (see the module docs for where the numbers come from).
pub fn builtin() -> Vec<GpuSpec> {
    vec![
        spec("A100-80GB", "NVIDIA A100 80GB", 3.50, 1800.0, 80.0, true),
        spec("A100-40GB", "NVIDIA A100 40GB", 2.80, 1500.0, 40.0, true),
        spec("H100", "NVIDIA H100 80GB", 4.20, 2200.0, 80.0, true),
        spec("V100-32GB", "NVIDIA V100 32GB", 2.10, 1200.0, 32.0, false),
        spec("H200", "NVIDIA H200 141GB", 5.00, 2600.0, 141.0, true),
        spec("L40S", "NVIDIA L40S 48GB", 1.80, 1400.0, 48.0, true),
        spec("A10G", "NVIDIA A10G 24GB", 1.01, 800.0, 24.0, true),
        spec(
            "RTX-4090",
            "NVIDIA GeForce RTX 4090 24GB",
            0.69,
            1300.0,
            24.0,
            true,
        ),
    ]
}

fn positive(id: &str, field: &str, v: Option<f64>) -> Result<Option<f64>, GpuCatalogError> {
    match v {
        Some(x) if !(x.is_finite() && x > 0.0) => Err(GpuCatalogError::BadValue {
            id: id.into(),
            field: field.into(),
            value: x.to_string(),
        }),
        _ => Ok(v),
    }
}

fn apply(g: &mut GpuSpec, o: &GpuOverride) -> Result<(), GpuCatalogError> {
    if let Some(n) = &o.name {
        g.name = n.clone();
    }
    if let Some(p) = positive(&g.id, "price_per_hour", o.price_per_hour)? {
        g.price_per_hour = p;
    }
    if let Some(t) = positive(&g.id, "tokens_per_sec", o.tokens_per_sec)? {
        g.tokens_per_sec = t;
    }
    if let Some(m) = positive(&g.id, "memory_gb", o.memory_gb)? {
        g.memory_gb = m;
    }
    if let Some(b) = o.bf16 {
        g.bf16 = b;
    }
    Ok(())
}

impl GpuCatalog {
    /// The built-in catalog with no config applied.
    pub fn builtin() -> Self {
        Self { gpus: builtin() }
    }

    /// The built-ins with `cfg.gpus` applied: an entry whose id matches a built-in (without
    /// regard to case) overrides the fields it sets; any other entry is added, and must set
    /// price, throughput and memory (a new GPU with a guessed price would make every estimate
    /// on it wrong). `bf16` defaults to true and `name` to the id.
    pub fn from_config(cfg: &TrainingConfig) -> Result<Self, GpuCatalogError> {
        let mut gpus = builtin();
        let n_builtin = gpus.len();
        for (id, o) in &cfg.gpus {
            let id = id.trim();
            if let Some(i) = gpus.iter().position(|g| g.id.eq_ignore_ascii_case(id)) {
                if i >= n_builtin {
                    return Err(GpuCatalogError::Duplicate { id: id.into() });
                }
                apply(&mut gpus[i], o)?;
                continue;
            }
            let missing: Vec<String> = [
                ("price_per_hour", o.price_per_hour.is_none()),
                ("tokens_per_sec", o.tokens_per_sec.is_none()),
                ("memory_gb", o.memory_gb.is_none()),
            ]
            .into_iter()
            .filter(|(_, m)| *m)
            .map(|(f, _)| f.to_string())
            .collect();
            if !missing.is_empty() {
                return Err(GpuCatalogError::Incomplete {
                    id: id.into(),
                    missing,
                });
            }
            let mut g = spec(id, id, 0.0, 0.0, 0.0, true);
            apply(&mut g, o)?;
            gpus.push(g);
        }
        Ok(Self { gpus })
    }

    /// Looks an id up without regard to case.
    pub fn get(&self, id: &str) -> Result<&GpuSpec, UnknownGpu> {
        let id = id.trim();
        self.gpus
            .iter()
            .find(|g| g.id.eq_ignore_ascii_case(id))
            .ok_or_else(|| UnknownGpu {
                id: id.into(),
                known: self.ids(),
            })
    }

    /// The same catalog with `spec` (this machine, [`LOCAL_GPU`]) first, replacing any
    /// earlier `local` entry.
    pub fn with_local(mut self, spec: GpuSpec) -> Self {
        self.gpus.retain(|g| !g.id.eq_ignore_ascii_case(LOCAL_GPU));
        self.gpus.insert(0, spec);
        self
    }

    /// Every entry, built-ins first.
    pub fn all(&self) -> &[GpuSpec] {
        &self.gpus
    }

    /// Every id, in catalog order.
    pub fn ids(&self) -> Vec<String> {
        self.gpus.iter().map(|g| g.id.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_entries_as_given() {
        let c = GpuCatalog::builtin();
        let a = c.get("a100-80gb").unwrap();
        assert_eq!(
            (a.price_per_hour, a.tokens_per_sec, a.memory_gb),
            (3.5, 1800.0, 80.0)
        );
        assert!(!c.get("V100-32GB").unwrap().bf16);
        assert_eq!(c.all().len(), 8);
    }
}
