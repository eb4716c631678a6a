//! One module per command group. Each returns the process exit status.

pub mod backends;
pub mod backup;
pub mod chat;
pub mod compare;
pub mod config;
pub mod costs;
pub mod datasets;
pub mod doctor;
pub mod export;
pub mod follow;
pub mod inspect;
pub mod jobs;
pub mod mirror;
pub mod models;
pub mod output;
pub mod runs;
pub mod serve;
pub mod storage;
pub mod sweeps;
pub mod tokens;
pub mod webhooks;

/// Exit statuses shared by every command.
pub mod exit {
    pub const OK: i32 = 0;
    /// The thing asked about failed (dataset invalid, job failed).
    pub const FAILED: i32 = 1;
    /// A usage or I/O problem: the request was wrong (`invalid`, `not_found`, `ambiguous`,
    /// `conflict`, `unauthorized`).
    pub const USAGE: i32 = 2;
    /// The engine, a backend or storage does not answer (`unavailable`).
    pub const UNAVAILABLE: i32 = 3;
    /// A bug or an unexpected failure inside the engine (`internal`).
    pub const INTERNAL: i32 = 4;
}
