//! BrightRun's terminal dashboard. It talks to the engine only through its public API and its
//! event stream, and depends only on the `brightrun-api` crate (never the engine's), so it
//! builds without the store, the cloud SDKs, the Postgres client or the HTTP server.
//!
//! Shape (after television and gitui): the [`App`] holds a copy of the engine's data, built
//! from a [`Snapshot`] and kept current by [`EngineEvent`]s; key presses become [`Action`]s
//! through one [`Keymap`]; [`App::handle`] is the one place actions are handled, and returns
//! [`Effect`]s instead of doing I/O; the runtime ([`run`]) executes effects against the engine
//! in spawned tasks, which answer with [`Outcome`]s. So the whole app runs headless in tests:
//! `App::new(snapshot, &config)`, `app.handle(action)`, `app.draw(frame)`.
//!
//! Each tab is a [`tabs::Component`] that owns its own state and draws from `&self`; the app
//! keeps what they share ([`context::Shared`], outside `app/` so tabs do not import the app)
//! and routes to the shown one.
//!
//! [`EngineEvent`]: brightrun_api::events::EngineEvent

pub mod action;
pub mod app;
pub mod context;
pub mod effect;
#[doc(hidden)]
pub mod fixtures;
pub mod format;
pub mod input;
pub mod keymap;
mod runtime;
pub mod sanitize;
pub mod series;
pub mod state;
pub mod tabs;
pub mod theme;
mod ui;

pub use action::{Action, Period, Tab};
pub use app::App;
pub use effect::{
    CostsView, Effect, EstimateView, JobDraft, Level, Outcome, RetryAnswer, RetryFrom,
};
pub use keymap::Keymap;
pub use runtime::{RunOptions, run, snapshot};
pub use state::Snapshot;
pub use theme::Theme;
