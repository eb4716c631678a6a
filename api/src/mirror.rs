//! The Postgres mirror as clients see it: its state and lag (`mirror status`, the status bar)
//! and `mirror verify`'s report. The mirror itself is the engine's.

use crate::domain::Timestamp;
use serde::{Deserialize, Serialize};

/// What the mirror is doing, as the status bar shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MirrorState {
    /// No `[mirror] url`.
    Disabled,
    /// Configured; the task has not connected yet (or does not run in this process).
    Starting,
    /// Copying every record on first start.
    Backfilling,
    /// Everything committed is in PostgreSQL.
    InSync,
    /// Connected and catching up.
    Behind,
    /// PostgreSQL does not answer, or refuses: see `last_error`.
    Unreachable,
}

/// The mirror's lag and last error (`brightrun mirror status`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MirrorStatus {
    pub state: MirrorState,
    /// `user@host:port/db`; never the password.
    pub target: Option<String>,
    /// Whether a mirror task runs in this engine.
    pub running: bool,
    /// The last seq PostgreSQL committed and redb acknowledged.
    pub acked_seq: u64,
    /// The change log's last seq.
    pub last_seq: u64,
    /// Changes committed here and not yet in PostgreSQL.
    pub behind: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
    pub last_synced_at: Option<Timestamp>,
    /// Rows copied by the backfill in progress (or the last one).
    pub backfilled_rows: u64,
}

/// One table compared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TableCheck {
    pub table: String,
    pub local_rows: u64,
    pub remote_rows: u64,
    /// Order-independent checksums (hex), equal when the rows are.
    pub local_checksum: String,
    pub remote_checksum: String,
    /// Here and not in PostgreSQL (ids; for metrics_points, job ids).
    pub missing: Vec<String>,
    /// In PostgreSQL (for this engine) and not here.
    pub extra: Vec<String>,
    /// In both, with another stamp.
    pub different: Vec<String>,
    /// Full counts of the three lists above.
    pub missing_count: u64,
    pub extra_count: u64,
    pub different_count: u64,
}

impl TableCheck {
    pub fn is_clean(&self) -> bool {
        self.missing_count == 0
            && self.extra_count == 0
            && self.different_count == 0
            && self.local_rows == self.remote_rows
            && self.local_checksum == self.remote_checksum
    }
}

/// Every table compared; `clean` when none differs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VerifyReport {
    pub target: String,
    pub clean: bool,
    pub tables: Vec<TableCheck>,
}

/// Where one numbered migration of the mirror's schema stands in the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MigrationState {
    /// Recorded in `public.brightrun_migrations` before this request.
    Applied,
    /// Applied by this request.
    AppliedNow,
    /// Not applied yet (a dry run leaves it so).
    Pending,
}

/// One migration: its number, file, SHA-256 of its text, where it stands, and its SQL when it
/// is pending in a dry run (for a DBA to read or apply by hand).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MigrationStep {
    pub version: i32,
    pub name: String,
    pub checksum: String,
    pub state: MigrationState,
    /// Set when the database recorded this version with another text's checksum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_checksum: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
}

/// What `mirror migrate` found and did, migration by migration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MigrationReport {
    pub target: String,
    pub dry_run: bool,
    pub migrations: Vec<MigrationStep>,
}
