//! BrightRun's engine: the domain, the embedded store, object storage, dataset validation,
//! training estimates, cluster backends and the background tasks that move work along.
//! It has no terminal code: UIs use [`Engine`]'s API and its event stream.

pub mod api;
pub mod backend;
pub mod config;
pub mod domain;
mod engine;
pub mod events;
pub mod hardware;
pub mod ids;
pub mod mirror;
pub mod paths;
pub mod private;
pub mod secrets;
pub mod space;
pub mod storage;
pub mod store;
pub mod text;
pub mod tokens;
pub mod trainer_env;
pub mod training;
pub mod validation;

pub use engine::{
    BackendInfo, BudgetStatus, CleanOptions, CleanReport, CostSummary, DoctorReport, DoctorStep,
    DroppedRecord, Engine, EngineBuilder, EngineError, IdKind, JobCost, JobRequest, NewDataset,
    Period,
};
pub use store::Page;
