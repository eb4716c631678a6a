//! What this machine trains on, for the local backend's estimates: its CUDA GPUs (names and
//! memory, from `nvidia-smi`, which reads NVML) or else its CPU (cores and memory).
//!
//! The local backend runs the trainer here, so its estimate is for this hardware, not for a
//! catalog GPU, and its price is `[backends.local] price_per_hour` (default 0: "your
//! machine"). A detected GPU borrows the throughput of the catalog entry it matches; an
//! unknown GPU and the CPU get stated assumptions ([`UNKNOWN_GPU_TOKENS_PER_SEC`],
//! [`CPU_TOKENS_PER_SEC_PER_CORE`]), which completed runs then calibrate.

use crate::training::{GpuCatalog, GpuSpec, LOCAL_GPU};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Tokens per second for Mistral-7B on a CUDA GPU that matches no catalog entry: between a
/// V100 (1,200) and an A10G (800) on the seed's scale, since an unrecognised card is more
/// often a workstation one than a datacentre one.
pub const UNKNOWN_GPU_TOKENS_PER_SEC: f64 = 1000.0;
/// Tokens per second per CPU core for Mistral-7B-size work (6 × 7.2B FLOPs per token),
/// measured, not derived: SmolLM2-135M took 2.0 s a step of 4 examples (109 tokens as the
/// validator counts them, which the estimate multiplies; its tokenizer and chat template make
/// 201) on a 2-core machine (BENCHMARKS.md, "CPU estimates"): 55 tokens/s, which is this × 2
/// cores × 7.24B / 135M. Models scale from it by their size; what a CPU spends whatever the
/// model's size is counted apart ([`CPU_SECONDS_PER_STEP`], [`CPU_STARTUP_SECONDS`]), since
/// a tiny model's run is nearly all of that. Completed runs calibrate it.
pub const CPU_TOKENS_PER_SEC_PER_CORE: f64 = 0.5;
/// Seconds each training step costs on a CPU besides its tokens' arithmetic: the training
/// loop, the optimiser over the LoRA weights, the step's events. Measured on the tiny model,
/// whose arithmetic is negligible: 45 steps in 1.8 s.
pub const CPU_SECONDS_PER_STEP: f64 = 0.04;
/// Seconds a CPU run spends outside its steps whatever the model: the engine starting the
/// trainer, Python importing torch, transformers and PEFT, tokenising the dataset, saving the
/// adapter and collecting it. Measured on the tiny model: 6.8–7.0 s from `jobs create` to
/// the end, less the training stage.
pub const CPU_STARTUP_SECONDS: f64 = 7.0;
/// Seconds per billion parameters to load a base model on a CPU (reading and initialising
/// fp32 weights), evaluate it and save the adapter: SmolLM2-135M's runs spent 2.1–3.0 s more
/// outside their steps than the tiny model's.
pub const CPU_LOAD_SECONDS_PER_BILLION: f64 = 20.0;
/// How long `nvidia-smi` may take before the machine is taken to have no GPU.
const NVIDIA_SMI_TIMEOUT: Duration = Duration::from_secs(5);

/// One CUDA GPU.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LocalGpu {
    /// As the driver names it (`NVIDIA H200`).
    pub name: String,
    /// Memory in GiB (nvidia-smi reports MiB).
    pub memory_gb: f64,
}

/// This machine's hardware.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LocalHardware {
    /// Empty: training runs on the CPU.
    pub gpus: Vec<LocalGpu>,
    pub cpu_cores: u32,
    /// System memory in GiB (0 when unknown).
    pub memory_gb: f64,
}

impl LocalHardware {
    /// Looks at this machine: `nvidia-smi` (or the program `BRIGHTRUN_NVIDIA_SMI` names, so
    /// tests can stand in for a GPU or its absence), the CPU count and `/proc/meminfo` (or the
    /// file `BRIGHTRUN_MEMINFO` names, so tests can stand in for a small machine).
    /// Never fails: what cannot be read counts as absent.
    pub fn detect() -> Self {
        let program =
            std::env::var_os("BRIGHTRUN_NVIDIA_SMI").unwrap_or_else(|| "nvidia-smi".into());
        let gpus = run_with_timeout(
            std::process::Command::new(program).args([
                "--query-gpu=name,memory.total",
                "--format=csv,noheader,nounits",
            ]),
            NVIDIA_SMI_TIMEOUT,
        )
        .map(|out| parse_nvidia_smi(&out))
        .unwrap_or_default();
        let cpu_cores = std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1);
        let meminfo =
            std::env::var_os("BRIGHTRUN_MEMINFO").unwrap_or_else(|| "/proc/meminfo".into());
        let memory_gb = std::fs::read_to_string(meminfo)
            .ok()
            .and_then(|t| parse_meminfo(&t))
            .unwrap_or(0.0);
        Self {
            gpus,
            cpu_cores,
            memory_gb,
        }
    }

    /// GPUs a run here uses: every CUDA GPU, or 1 (the CPU).
    pub fn device_count(&self) -> u32 {
        (self.gpus.len() as u32).max(1)
    }

    /// A short name for people and for the calibration key: `2× NVIDIA H200 (141 GB)` or
    /// `CPU (16 cores)`.
    pub fn describe(&self) -> String {
        match self.gpus.first() {
            Some(g) => {
                let n = self.gpus.len();
                let count = if n > 1 {
                    format!("{n}× ")
                } else {
                    String::new()
                };
                format!("{count}{} ({:.0} GB)", g.name, g.memory_gb)
            }
            None => format!("CPU ({} cores)", self.cpu_cores),
        }
    }

    /// The `local` catalog entry for this machine. `price_per_hour` is for the whole machine,
    /// so the entry's per-GPU price is it divided by the device count (the estimate
    /// multiplies it back). A GPU's throughput is its catalog match's, the CPU's
    /// [`CPU_TOKENS_PER_SEC_PER_CORE`] × cores (for the machine, hence per "GPU").
    pub fn spec(&self, price_per_hour: f64, catalog: &GpuCatalog) -> GpuSpec {
        let count = self.device_count() as f64;
        let (tokens_per_sec, memory_gb, bf16) = match self.gpus.first() {
            Some(g) => {
                let matched = match_catalog(&g.name, g.memory_gb, catalog);
                (
                    matched
                        .map(|m| m.tokens_per_sec)
                        .unwrap_or(UNKNOWN_GPU_TOKENS_PER_SEC),
                    g.memory_gb,
                    matched.map(|m| m.bf16).unwrap_or(true),
                )
            }
            None => (
                CPU_TOKENS_PER_SEC_PER_CORE * self.cpu_cores.max(1) as f64,
                if self.memory_gb > 0.0 {
                    self.memory_gb
                } else {
                    16.0
                },
                true,
            ),
        };
        GpuSpec {
            id: LOCAL_GPU.into(),
            name: format!("your machine: {}", self.describe()),
            price_per_hour: price_per_hour.max(0.0) / count,
            tokens_per_sec,
            memory_gb,
            bf16,
            local: true,
            cpu_cores: self.gpus.is_empty().then_some(self.cpu_cores.max(1)),
        }
    }
}

/// The catalog entry a detected GPU is: every part of the entry's id but its memory
/// (`A100`, `RTX` and `4090`) is a word of the name, and of several the closest in memory.
pub fn match_catalog<'c>(
    name: &str,
    memory_gb: f64,
    catalog: &'c GpuCatalog,
) -> Option<&'c GpuSpec> {
    let words: Vec<String> = name
        .to_ascii_uppercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    catalog
        .all()
        .iter()
        .filter(|g| !g.local)
        .filter(|g| {
            let parts: Vec<String> =
                g.id.to_ascii_uppercase()
                    .split('-')
                    .filter(|p| !(p.ends_with("GB") && p[..p.len() - 2].parse::<u32>().is_ok()))
                    .map(str::to_string)
                    .collect();
            !parts.is_empty() && parts.iter().all(|p| words.contains(p))
        })
        .min_by(|a, b| {
            (a.memory_gb - memory_gb)
                .abs()
                .total_cmp(&(b.memory_gb - memory_gb).abs())
        })
}

/// Parses `nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits`: one
/// `name, MiB` line per GPU. Lines that do not parse are skipped.
pub fn parse_nvidia_smi(text: &str) -> Vec<LocalGpu> {
    text.lines()
        .filter_map(|line| {
            let (name, mib) = line.rsplit_once(',')?;
            let mib: f64 = mib.trim().parse().ok()?;
            let name = name.trim();
            (!name.is_empty() && mib > 0.0).then(|| LocalGpu {
                name: name.to_string(),
                memory_gb: mib / 1024.0,
            })
        })
        .collect()
}

/// `MemTotal:  131072000 kB` → GiB.
fn parse_meminfo(text: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / (1024.0 * 1024.0))
}

/// Runs a command, returning its stdout if it exits 0 within `timeout`.
fn run_with_timeout(cmd: &mut std::process::Command, timeout: Duration) -> Option<String> {
    use std::io::Read;
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let start = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let mut out = String::new();
                child.stdout.take()?.read_to_string(&mut out).ok()?;
                return status.success().then_some(out);
            }
            Ok(None) if start.elapsed() < timeout => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvidia_smi_lines_become_gpus() {
        let gpus =
            parse_nvidia_smi("NVIDIA H200, 143771\nNVIDIA A100-SXM4-80GB, 81920\nbad line\n");
        assert_eq!(gpus.len(), 2);
        assert_eq!(gpus[0].name, "NVIDIA H200");
        assert!((gpus[0].memory_gb - 140.4).abs() < 0.1);
        assert_eq!(gpus[1].memory_gb, 80.0);
    }

    #[test]
    fn detected_names_match_catalog_entries() {
        let c = GpuCatalog::builtin();
        let id = |n: &str, m: f64| match_catalog(n, m, &c).map(|g| g.id.clone());
        assert_eq!(id("NVIDIA H200", 140.4).as_deref(), Some("H200"));
        assert_eq!(
            id("NVIDIA A100-SXM4-80GB", 80.0).as_deref(),
            Some("A100-80GB")
        );
        assert_eq!(
            id("NVIDIA A100-PCIE-40GB", 40.0).as_deref(),
            Some("A100-40GB")
        );
        assert_eq!(
            id("NVIDIA GeForce RTX 4090", 24.0).as_deref(),
            Some("RTX-4090")
        );
        assert_eq!(id("NVIDIA H100 80GB HBM3", 80.0).as_deref(), Some("H100"));
        assert_eq!(id("NVIDIA GeForce GTX 1080", 8.0), None);
    }

    #[test]
    fn the_local_entry_is_priced_per_machine() {
        let c = GpuCatalog::builtin();
        let two = LocalHardware {
            gpus: vec![
                LocalGpu {
                    name: "NVIDIA H200".into(),
                    memory_gb: 140.0,
                },
                LocalGpu {
                    name: "NVIDIA H200".into(),
                    memory_gb: 140.0,
                },
            ],
            cpu_cores: 16,
            memory_gb: 128.0,
        };
        let s = two.spec(3.0, &c);
        assert_eq!(s.id, "local");
        assert_eq!(s.name, "your machine: 2× NVIDIA H200 (140 GB)");
        // $3/h for the machine: $1.50 per GPU-hour × 2 GPUs.
        assert_eq!((s.price_per_hour, s.tokens_per_sec), (1.5, 2600.0));
        let cpu = LocalHardware {
            gpus: vec![],
            cpu_cores: 16,
            memory_gb: 64.0,
        };
        let s = cpu.spec(0.0, &c);
        assert_eq!(s.name, "your machine: CPU (16 cores)");
        // 0.5 tokens/s per core for Mistral-7B × 16 cores.
        assert_eq!(
            (s.price_per_hour, s.tokens_per_sec, s.memory_gb),
            (0.0, 8.0, 64.0)
        );
        assert!(s.local);
    }
}
