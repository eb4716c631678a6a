//! BrightRun's engine: the domain, the embedded store, object storage, dataset validation,
//! training estimates, cluster backends and the background tasks that move work along.
//! It has no terminal code: UIs use [`Engine`]'s API and its event stream.
//!
//! What clients share with it (ids, domain records, events, the API's messages and errors, the
//! config and training vocabulary) is the `brightrun-api` crate, so a client builds without the
//! engine's heavy dependencies; those modules are re-exported here under their old paths.

pub mod api;
pub mod backend;
mod engine;
mod follow;
pub mod mirror;
pub mod secrets;
pub mod space;
pub mod storage;
pub mod store;
pub mod tokens;
pub mod tracking;
pub mod trainer_env;
pub mod validation;
pub mod webhooks;

pub use engine::{
    BackendInfo, BudgetStatus, CleanOptions, CleanReport, CostSummary, DoctorReport, DoctorStep,
    DroppedRecord, Engine, EngineBuilder, EngineError, EvaluationRequest, ExportRequest, IdKind,
    InspectRequest, Inspected, JobCost, JobRequest, NewDataset, Period, RetryFrom,
};
pub use store::Page;

// The API crate's modules, under the paths the engine, the binary and the tests have always used.
pub use brightrun_api::{
    chat, config, domain, events, hardware, ids, paths, private, prompts, text, training, wording,
};
