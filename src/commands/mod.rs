//! One module per command group. Each returns the process exit status.

pub mod config;
pub mod costs;
pub mod datasets;
pub mod jobs;
pub mod models;
pub mod output;

/// Exit statuses shared by every command.
pub mod exit {
    pub const OK: i32 = 0;
    /// The thing asked about failed (dataset invalid, job failed).
    pub const FAILED: i32 = 1;
    /// A usage or I/O problem.
    pub const USAGE: i32 = 2;
}
