//! The engine API: its vocabulary, the [`EngineApi`] trait and the remote client live in the
//! `brightrun-api` crate (re-exported here under their old paths); this module is the engine's
//! side of it:
//!
//! - [`LocalApi`]: the engine in this process (the embedded default);
//! - the change feed ([`change_feed`], [`live_feed`]) both implementations stream from;
//! - [`server`]: the daemon's HTTP server (`brightrun serve`), which [`RemoteApi`] talks to;
//! - API tokens, and which [`ApiError`] each engine error becomes ([`FromEngineError`]).

mod error;
mod feed;
mod local;
pub mod server;
mod tokens;

pub use brightrun_api::{
    Api, ApiError, ByteStream, ChangeStream, Connection, EngineAddress, EngineApi, ErrorCode,
    InspectAt, LiveStream, Reason, RemoteApi, RetryOptions, chat, messages::*,
};
pub use error::FromEngineError;
pub use feed::{change_feed, live_feed};
pub use local::LocalApi;
pub use tokens::{LAST_USE_EVERY, TokenCheck, TokenStore, hash_token};

// What the submodules take with `use super::*`.
use crate::ids::*;
use async_trait::async_trait;
use std::sync::Arc;
