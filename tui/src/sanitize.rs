//! Text from outside is cleaned before it is drawn; the cleaning lives in the engine
//! ([`brightrun_api::text`]) so the CLI, the engine's logs and the dashboard share one.

pub use brightrun_api::text::*;
