//! What the user (or the runtime) asks the app to do. Key presses become actions through the
//! one [`crate::keymap::Keymap`]; mouse events and ticks become actions in the runtime.

use crossterm::event::KeyEvent;

/// The six views.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tab {
    Datasets,
    Configure,
    Jobs,
    Models,
    Costs,
    Notifications,
}

impl Tab {
    pub const ALL: [Tab; 6] = [
        Tab::Datasets,
        Tab::Configure,
        Tab::Jobs,
        Tab::Models,
        Tab::Costs,
        Tab::Notifications,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Datasets => "Datasets",
            Tab::Configure => "Configure",
            Tab::Jobs => "Jobs",
            Tab::Models => "Models",
            Tab::Costs => "Costs",
            Tab::Notifications => "Notifications",
        }
    }

    /// The lower-case name used by the command line and the keymap's config sections.
    pub fn name(self) -> &'static str {
        match self {
            Tab::Datasets => "datasets",
            Tab::Configure => "configure",
            Tab::Jobs => "jobs",
            Tab::Models => "models",
            Tab::Costs => "costs",
            Tab::Notifications => "notifications",
        }
    }

    pub fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }

    pub fn from_name(s: &str) -> Option<Tab> {
        let s = s.to_ascii_lowercase();
        Tab::ALL
            .into_iter()
            .find(|t| t.name() == s || (s.len() >= 3 && t.name().starts_with(&s)))
    }
}

/// Cost period shown on the Costs tab.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Period {
    Week,
    #[default]
    Month,
    Year,
}

impl Period {
    pub const ALL: [Period; 3] = [Period::Week, Period::Month, Period::Year];
    pub fn name(self) -> &'static str {
        match self {
            Period::Week => "week",
            Period::Month => "month",
            Period::Year => "year",
        }
    }
    pub fn from_name(s: &str) -> Option<Period> {
        Period::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s) || p.name()[..1].eq_ignore_ascii_case(s))
    }
    pub fn next(self) -> Period {
        match self {
            Period::Week => Period::Month,
            Period::Month => Period::Year,
            Period::Year => Period::Week,
        }
    }
    pub fn prev(self) -> Period {
        self.next().next()
    }
}

/// Everything the app can be asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    // Global.
    Quit,
    NextTab,
    PrevTab,
    GoTab(Tab),
    Help,
    Filter,
    CommandLine,
    Freeze,
    Refresh,
    // Movement.
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Open,
    Back,
    // Lists.
    Sort,
    SortReverse,
    // Datasets.
    AddDataset,
    Rename,
    Describe,
    Validate,
    /// A new dataset from the valid examples of one in error.
    Clean,
    Delete,
    Train,
    /// The Inspect view of the selected dataset: an example token by token with a base model.
    Inspect,
    // The Inspect view.
    /// The next example.
    InspectNext,
    /// The previous example.
    InspectPrev,
    /// Go to the example on a line of the file (asks for it).
    InspectLine,
    /// Another base model (the picker).
    InspectModel,
    /// The dataset's exact counts with the model, shown or hidden.
    InspectStats,
    // Configure.
    Submit,
    // Jobs.
    CancelJob,
    RetryJob,
    OpenArtifact,
    /// Mark or unmark the selected job for the Compare view.
    Mark,
    /// The Compare view of the marked jobs.
    Compare,
    /// The Compare view of the selected sweep's jobs (on its header or one of its jobs).
    CompareSweep,
    // The Compare view.
    /// The chart's x axis: step, tokens seen, elapsed time, in turn.
    CompareAxis,
    /// The Compare view's y axis: loss, reward margin, reward accuracy.
    CompareMetric,
    // Models.
    Download,
    /// The selected model's evaluation: base and adapter side by side.
    Evaluation,
    /// The Chat view (the playground) with the selected model.
    Chat,
    /// The export dialog of the selected adapter: merged, GGUF or GGUF LoRA
    /// (`brightrun models export`).
    Export,
    // The Chat view.
    /// Send the message typed.
    ChatSend,
    /// A new line in the message.
    ChatNewline,
    /// The base model's answer beside the adapter's, on or off.
    ChatBase,
    /// Stop the reply in progress.
    ChatStop,
    /// Clear the conversation (asks first).
    ChatClear,
    // Costs.
    NextPeriod,
    SetPeriod(Period),
    // Notifications.
    MarkRead,
    MarkAllRead,
    /// A key for the text input that has focus (prompts, filter, command line, form fields).
    Input(KeyEvent),
    /// Bracketed paste into the focused input.
    Paste(String),
    /// A mouse click at a screen cell.
    Click {
        column: u16,
        row: u16,
    },
    /// Mouse wheel: negative is up.
    Scroll {
        column: u16,
        row: u16,
        delta: i32,
    },
    /// The terminal changed size (a full redraw follows).
    Resize,
}
