//! What the engine reports back through the API beyond the domain records: cost summaries,
//! a cleaned dataset's report, storage checks and shared URLs, backends and their health, the
//! doctor's steps and backups. Plain serde types; the engine fills them in.

use crate::domain::Timestamp;
use crate::ids::*;
use crate::storage::CheckStep;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// How many examples a doctor step lists: enough to find the rest, short enough to read.
pub const MAX_EXAMPLES: usize = 10;

/// How far back a cost summary looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Week,
    Month,
    Year,
}

impl std::str::FromStr for Period {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "week" => Ok(Self::Week),
            "month" => Ok(Self::Month),
            "year" => Ok(Self::Year),
            _ => Err(format!(
                "unknown period `{s}` (expected week, month or year)"
            )),
        }
    }
}

impl Period {
    pub fn days(&self) -> i64 {
        match self {
            Self::Week => 7,
            Self::Month => 30,
            Self::Year => 365,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JobCost {
    pub job_id: JobId,
    pub amount: f64,
    pub description: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BudgetStatus {
    pub monthly_budget: f64,
    pub spent_this_month: f64,
    pub percent: f64,
}

/// Totals over a period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CostSummary {
    pub period: Period,
    pub since: Timestamp,
    pub total: f64,
    /// `compute`, `storage`, `data_transfer` → dollars.
    pub by_type: BTreeMap<String, f64>,
    /// Every day of the period (oldest first), zero where nothing was spent.
    pub by_day: Vec<(NaiveDate, f64)>,
    /// Most expensive first.
    pub by_job: Vec<JobCost>,
    /// What running jobs have cost so far (not yet recorded).
    pub running: f64,
    pub budget: Option<BudgetStatus>,
}

/// One record left out, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DroppedRecord {
    /// 1-based line in the original file (of the element's start, in a `.json` array).
    pub line: u64,
    /// 0-based element index in a `.json` array file.
    pub element: Option<u64>,
    /// The validator's reason, when it was among the findings kept; else a summary.
    pub reason: String,
}

/// What cleaning did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CleanReport {
    /// Examples copied into the new dataset.
    pub kept: u64,
    /// Every record left out, in file order (invalid ones and, when asked, duplicates).
    pub dropped: Vec<DroppedRecord>,
    /// Of those, exact duplicates.
    pub duplicates_dropped: u64,
}

/// `brightrun storage check`: where the store is and each step's verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StorageReport {
    /// `local` or `s3`.
    pub kind: String,
    /// The folder, or the endpoint (and region) with the buckets.
    pub location: String,
    /// True only when every step passed.
    pub ok: bool,
    pub steps: Vec<CheckStep>,
}

/// A download URL to share (the seed's model download API).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SharedUrl {
    pub model_id: ArtifactId,
    pub file: String,
    pub url: String,
    pub expires_at: crate::domain::Timestamp,
}

/// One backend entry and how it answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BackendInfo {
    pub name: String,
    /// `local`, `ray` or `runpod`.
    pub kind: String,
    /// Where it answers: the Ray dashboard, the RunPod endpoint, or "this machine".
    pub address: String,
    /// `[training] default_backend` names it.
    pub default: bool,
    /// `paths` or `urls`: how its trainer reaches the data.
    pub data: String,
    /// The latest verdict; `None` until checked.
    pub health: Option<BackendHealth>,
}

/// A backend's answer to "can you take work?", for `backends check` and the status bar.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BackendHealth {
    pub reachable: bool,
    /// `unreachable`, `unauthorized`, `rejected`, … when it is not.
    pub failure: Option<String>,
    /// One line: what answered (Ray's version, RunPod's workers and queue), or what to fix.
    pub detail: String,
}

impl BackendHealth {
    pub fn ok(detail: impl Into<String>) -> Self {
        Self {
            reachable: true,
            failure: None,
            detail: detail.into(),
        }
    }
}

/// The doctor's verdict: every step, and whether all of them are clean.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DoctorReport {
    /// True when no step has problems left (found ones were all repaired).
    pub ok: bool,
    pub steps: Vec<DoctorStep>,
}

/// One check: what it found, what it repaired and what to do about the rest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DoctorStep {
    /// `store`, `corrupt_records`, `config`, `missing_objects`, `orphaned_objects`,
    /// `job_folders`, `temp_files` or `stuck_uploads`.
    pub name: String,
    /// True when every problem found was repaired (or none was found).
    pub ok: bool,
    /// How many problems were found.
    pub problems: usize,
    /// How many of them were repaired.
    pub repaired: usize,
    /// Up to [`MAX_EXAMPLES`] of the problems, each naming the record or file.
    pub examples: Vec<String>,
    /// What to do about what is left, or a note on what was not checked.
    pub advice: Option<String>,
}

/// One backup file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BackupInfo {
    /// The file name without `.redb`: how a person names it to `backup restore`.
    pub id: String,
    pub path: PathBuf,
    pub created_at: Timestamp,
    pub size_bytes: u64,
    /// The store's schema version when the copy was taken.
    pub schema_version: u64,
    /// `manual`, or why the engine made it (`before-upgrade-from-v3`).
    pub reason: String,
}
