//! BrightRun's engine: the domain, the embedded store, object storage, dataset validation,
//! training estimates, cluster backends and the background tasks that move work along.
//! It has no terminal code: UIs use [`Engine`]'s API and its event stream.

pub mod config;
pub mod domain;
pub mod events;
pub mod ids;
pub mod paths;
pub mod secrets;
pub mod storage;
pub mod store;
pub mod training;
pub mod validation;
