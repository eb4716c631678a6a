//! The app's modal windows and its input line, as data: what they show and what they run.
//! The app opens them and handles their keys (`app/overlay.rs`, `app/bottom.rs`); tabs open
//! them too, through [`Shared`](super::Shared).

use super::FileBrowser;
use crate::action::Tab;
use crate::effect::JobDraft;
use crate::input::Input;
use brightrun_api::ids::*;
use std::path::PathBuf;

/// What a confirmation dialog does on "yes".
#[derive(Clone, Debug, PartialEq)]
pub enum Confirmed {
    Quit,
    DeleteDataset(DatasetId),
    CleanDataset(DatasetId),
    CancelJob(JobId),
    /// Cancel a sweep: its queued and running jobs, and every run not started.
    CancelSweep(SweepId),
    CreateJob {
        draft: JobDraft,
        over_budget: bool,
    },
    /// Start a sweep as planned; `over_budget` when the plan takes the month over its budget
    /// and the user said so.
    CreateSweep {
        spec: Box<brightrun_api::domain::SweepSpec>,
        over_budget: bool,
    },
    OverwriteDownload {
        id: ArtifactId,
        to: PathBuf,
    },
    /// Forget the Chat view's conversation with this model.
    ClearChat(ArtifactId),
    /// Queue the export of this adapter as estimated; `options.confirm_over_budget` once the
    /// user said yes to going over the month's budget.
    Export {
        model: ArtifactId,
        options: Box<brightrun_api::domain::ExportOptions>,
    },
}

/// What a one-line prompt is for.
#[derive(Clone, Debug, PartialEq)]
pub enum PromptKind {
    Rename(DatasetId),
    Describe(DatasetId),
    DownloadTo(ArtifactId),
    /// The base model of the Inspect view of this dataset, typed.
    InspectModel(DatasetId),
    /// The line of the file whose example the Inspect view shows.
    InspectLine(DatasetId),
}

/// What a pick list chooses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PickTarget {
    Dataset,
    Preset,
    Gpu,
    Backend,
    Field(usize),
    /// A base model from the known list; the index after the last means "type another id".
    BaseModel,
    /// The model to train on from: 0 is none, then the models as listed.
    FromModel,
    /// The base model to inspect this dataset with: the same list as [`PickTarget::BaseModel`]
    /// (the index after the last types another id).
    InspectModel(DatasetId),
}

/// A modal window over the tabs. Keys go to it first.
#[derive(Clone, Debug)]
pub enum Overlay {
    Help {
        scroll: u16,
    },
    Confirm {
        title: String,
        lines: Vec<String>,
        on_yes: Confirmed,
    },
    Prompt {
        title: String,
        input: Box<Input>,
        kind: PromptKind,
        hint: Option<String>,
    },
    Files(Box<FileBrowser>),
    /// Where a retried job starts: the latest checkpoint, one of them, or from scratch.
    Retry(Box<super::RetryDialog>),
    /// What an export of an adapter makes (the Models tab's `x`), then its estimate.
    Export(Box<super::ExportDialog>),
    Pick {
        title: String,
        options: Vec<String>,
        /// An index into `options` (always one of the shown ones while they are filtered).
        selected: usize,
        target: PickTarget,
        /// `/` types a filter: the options holding every word typed (any case) are shown.
        filter: Option<Box<Input>>,
    },
}

impl PickTarget {
    /// Whether the last option is an action ("type another id…") kept through any filter.
    pub fn keeps_last(&self) -> bool {
        matches!(self, PickTarget::BaseModel | PickTarget::InspectModel(_))
    }
}

/// The options of a pick list that `filter` leaves shown (indices into `options`, in order):
/// those that hold every word of the filter, in any case, plus the last option when `keep_last`.
pub fn pick_visible(options: &[String], filter: &str, keep_last: bool) -> Vec<usize> {
    let words: Vec<String> = filter.split_whitespace().map(str::to_lowercase).collect();
    let last = options.len().saturating_sub(1);
    options
        .iter()
        .enumerate()
        .filter(|(i, o)| {
            (keep_last && *i == last) || {
                let o = o.to_lowercase();
                words.iter().all(|w| o.contains(w.as_str()))
            }
        })
        .map(|(i, _)| i)
        .collect()
}

/// The input line at the bottom, when one is open.
#[derive(Clone, Debug)]
pub enum Bottom {
    Filter {
        input: Input,
        tab: Tab,
    },
    Command {
        input: Input,
        completions: Vec<String>,
        cycle: Option<usize>,
        stem: String,
    },
}
