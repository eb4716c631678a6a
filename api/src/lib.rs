//! BrightRun's engine API as its clients see it, in a crate of its own so a client (the
//! dashboard, scripts' helpers) builds without the engine's store, cloud SDKs, Postgres client,
//! tokenizers or HTTP server:
//!
//! - the vocabulary: [`ids`], [`domain`] records, [`events`], every [`Request`] and [`Reply`]
//!   ([`messages`]), [`ApiError`] with its codes and reasons, and the reports the engine fills in
//!   ([`reports`], [`mirror`]);
//! - the [`EngineApi`] trait, its typed helpers ([`Api`]) and its remote implementation
//!   ([`RemoteApi`]: a daemon over its Unix socket or TCP);
//! - the pure pieces clients compute with: [`config`], [`training`] (catalogs, ranges, presets,
//!   estimates), [`text`] sanitising, [`paths`], [`storage`]'s object vocabulary and ranged
//!   downloads.
//!
//! The engine (`brightrun-engine`) implements [`EngineApi`] in process and serves it; it
//! re-exports these modules under their old paths.
//!
//! ## The engine API
//!
//! One vocabulary ([`Request`], [`Reply`], [`ApiError`], the change feed)
//! and one trait over it, [`EngineApi`], with two implementations:
//!
//! - `LocalApi` (in the engine crate): the engine in this process (the embedded default);
//! - [`RemoteApi`]: a daemon (`brightrun serve`) over its Unix socket or TCP.
//!
//! The CLI and the dashboard use only this trait, so everything they do works the same
//! embedded and attached. Paths and closures do not cross it: uploads and downloads are byte
//! streams, progress comes back as events, and changes come from the change log ("everything
//! after seq N"), so a client that reconnects misses nothing and sees nothing twice.

pub mod chat;
mod client;
pub mod config;
pub mod domain;
mod error;
pub mod events;
pub mod hardware;
pub mod ids;
pub mod messages;
pub mod mirror;
pub mod paths;
pub mod private;
pub mod prompts;
mod remote;
pub mod reports;
pub mod space;
pub mod storage;
pub mod text;
pub mod training;
pub mod wording;

pub use chat::{ChatEvent, ChatMessage, ChatRequest, ChatRole, ChatStream};
pub use client::{Api, InspectAt, RetryOptions};
pub use error::{ApiError, ErrorCode, Reason};
pub use messages::*;
pub use remote::{EngineAddress, RemoteApi};

use crate::events::{EngineEvent, Sequenced};
use crate::ids::*;
use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use std::pin::Pin;
use std::sync::Arc;

/// A stream of bytes (an upload's body, a downloaded file).
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;
/// The change log from a seq on, then live; ends with an error when the connection drops
/// (resume with the last seq seen).
pub type ChangeStream = Pin<Box<dyn Stream<Item = Result<Arc<Sequenced>, ApiError>> + Send>>;
/// Logs, progress and backend health; may skip under load, never replayed.
pub type LiveStream = Pin<Box<dyn Stream<Item = EngineEvent> + Send>>;

/// How a client reaches its engine, for the status bar and `config paths`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Connection {
    /// The engine runs in this process.
    Embedded,
    /// A daemon at this address (`unix:/…` or `http://…`).
    Attached(String),
}

impl std::fmt::Display for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Embedded => f.write_str("embedded"),
            Self::Attached(a) => write!(f, "attached to {a}"),
        }
    }
}

/// Everything a client can ask of an engine.
#[async_trait]
pub trait EngineApi: Send + Sync {
    /// One request, one reply.
    async fn call(&self, request: Request) -> Result<Reply, ApiError>;

    /// Sends the bytes of a dataset created with [`Request::CreateDataset`]; answers with the
    /// dataset once its object is stored (then `validating`).
    async fn upload(
        &self,
        dataset: DatasetId,
        body: ByteStream,
    ) -> Result<crate::domain::Dataset, ApiError>;

    /// Reads one file of a model artifact (`file` is its path inside the artifact).
    async fn download(&self, model: ArtifactId, file: &str) -> Result<ByteStream, ApiError>;

    /// Every change with seq > `after`, then live ones as they commit.
    async fn changes(&self, after: u64) -> Result<ChangeStream, ApiError>;

    /// Live events from now on.
    async fn live(&self) -> Result<LiveStream, ApiError>;

    /// A chat turn with a model (the playground): its reply streamed as [`ChatEvent`]s,
    /// `started`, `delta`s, then `done` or `error`. A model that is not the caller's, or a
    /// request that is wrong, is an `Err` before any event.
    async fn chat(&self, request: ChatRequest) -> Result<ChatStream, ApiError>;

    /// Embedded or attached (and where).
    fn connection(&self) -> Connection;

    /// Whether the engine can read this client's files itself (embedded, or a daemon on the
    /// same machine's Unix socket), so an import may send a path instead of the bytes.
    fn shares_filesystem(&self) -> bool;
}
