//! Training configuration and estimates: what a run will cost, how long it will take and
//! whether it fits on the chosen GPUs, before anyone spends money.
//!
//! Everything here is pure computation over the domain types and the config: no I/O, no
//! clocks (callers pass `now`), so the TUI can re-estimate on every key press and tests can
//! pin every figure.
//!
//! - [`ranges`]: the allowed range of every hyperparameter, `--set key=value` parsing, and
//!   the field table the TUI form is built from;
//! - [`presets`]: `fast`, `balanced`, `quality`, `custom` and presets from config;
//! - [`gpus`]: the GPU catalog (prices, assumed throughputs, memory), overridable in config;
//! - [`models`]: base model sizes, for the memory-fit check;
//! - [`fit`]: GPU memory needed versus available, with a verdict and suggestions;
//! - [`estimate`]: the seed's cost and duration formula, plus fit and budget effect;
//! - [`budget`]: how a run would leave the month's spend;
//! - [`calibration`]: throughput measured by completed runs, for later estimates;
//! - [`quality`]: the artifact quality score.

pub mod budget;
pub mod calibration;
pub mod estimate;
pub mod fit;
pub mod gpus;
pub mod inference;
pub mod models;
pub mod presets;
pub mod quality;
pub mod ranges;

pub use budget::{BudgetEffect, budget_effect};
pub use calibration::{Calibration, CalibrationKey};
pub use estimate::{
    CostBreakdown, Estimate, EstimateError, EstimateInput, ThroughputBasis, ThroughputSource,
    TrainingDetails, estimate, model_factor, running_cost,
};
pub use fit::{Fit, FitVerdict, MemoryBreakdown, check_fit, effective_seq_len, memory_required};
pub use gpus::{GpuCatalog, GpuCatalogError, GpuSpec, LOCAL_GPU, UnknownGpu};
pub use inference::{InferenceDevice, InferenceFit, InferenceMemory, check_inference_fit};
pub use models::{ModelSize, ModelSource, UnknownModel};
pub use presets::{PresetError, PresetInfo};
pub use quality::quality;
pub use ranges::{FieldKind, FieldSpec, RangeError, SetError};
