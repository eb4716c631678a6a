//! A client of a running daemon (`brightrun serve`), over its Unix socket or TCP, speaking
//! the same [`Request`]s and [`Reply`]s as the embedded engine: `POST /api/v1/call`, uploads
//! and downloads as streamed bodies, the change log and live events as server-sent events.

use super::*;
use crate::domain::Dataset;
use futures::StreamExt;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Where a daemon listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EngineAddress {
    Unix(PathBuf),
    /// `http://HOST:PORT` (an SSH tunnel to a remote machine's daemon, or a LAN address).
    Http(String),
}

impl EngineAddress {
    /// Parses `unix:PATH`, `http://HOST:PORT`, or a bare socket path.
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        let s = s.trim();
        if let Some(p) = s.strip_prefix("unix:") {
            return Ok(Self::Unix(PathBuf::from(p)));
        }
        if s.starts_with("http://") {
            return Ok(Self::Http(s.trim_end_matches('/').to_string()));
        }
        if s.starts_with("https://") {
            return Err(ApiError::invalid(
                "engine",
                "https is not supported by this build; reach a remote daemon through an SSH tunnel \
                 (ssh -L 8470:127.0.0.1:8470 host) and use http://127.0.0.1:8470",
            ));
        }
        if s.starts_with('/') || s.starts_with('.') {
            return Ok(Self::Unix(PathBuf::from(s)));
        }
        Err(ApiError::invalid(
            "engine",
            format!("`{s}` is not an engine address (expected unix:PATH or http://HOST:PORT)"),
        ))
    }
}

impl std::fmt::Display for EngineAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unix(p) => write!(f, "unix:{}", p.display()),
            Self::Http(u) => f.write_str(u),
        }
    }
}

/// A daemon, reached through reqwest. Cheap to clone (connections are pooled).
#[derive(Clone)]
pub struct RemoteApi {
    client: reqwest::Client,
    base: String,
    address: EngineAddress,
    token: Option<String>,
}

/// The error body of every route: the seed's `{error, details}` plus our code and field.
#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    details: Option<String>,
    #[serde(default)]
    code: Option<ErrorCode>,
    #[serde(default)]
    field: Option<String>,
    /// Absent from older engines and from bodies that are not ours: then none.
    #[serde(default)]
    reason: Option<Reason>,
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: T,
}

impl RemoteApi {
    /// A client for the daemon at `address`; `token` is sent as a bearer token (TCP needs it).
    /// Nothing is contacted until the first request.
    pub fn new(address: EngineAddress, token: Option<String>) -> Result<Self, ApiError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .pool_idle_timeout(Duration::from_secs(30))
            .no_proxy();
        let base = match &address {
            EngineAddress::Unix(p) => {
                builder = builder.unix_socket(p.clone());
                "http://brightrun.sock".to_string()
            }
            EngineAddress::Http(u) => u.clone(),
        };
        let client = builder
            .build()
            .map_err(|e| ApiError::internal(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            client,
            base,
            address,
            token: token.filter(|t| !t.trim().is_empty()),
        })
    }

    pub fn address(&self) -> &EngineAddress {
        &self.address
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        r
    }

    fn unreachable(&self, e: reqwest::Error) -> ApiError {
        // The error's text may name the URL; it never holds the token (a header).
        ApiError::unavailable(format!(
            "cannot reach the engine at {}: {}",
            self.address,
            error_chain(&e)
        ))
    }

    /// Sends a request whose answer is a stream; an error status becomes an ApiError.
    async fn open(&self, req: reqwest::RequestBuilder) -> Result<reqwest::Response, ApiError> {
        let resp = req.send().await.map_err(|e| self.unreachable(e))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.bytes().await.unwrap_or_default();
            return Err(error_from(status.as_u16(), &body));
        }
        Ok(resp)
    }

    /// Sends a request and unpacks `{success, data}`, or turns `{error, …}` into an ApiError.
    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ApiError> {
        let resp = req.send().await.map_err(|e| self.unreachable(e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.unreachable(e))?;
        if status.is_success() {
            return serde_json::from_slice::<Envelope<T>>(&bytes)
                .map(|e| e.data)
                .map_err(|e| {
                    ApiError::internal(format!("the engine's reply could not be read: {e}"))
                });
        }
        Err(error_from(status.as_u16(), &bytes))
    }
}

/// Turns an error reply into an ApiError; a body that is not ours still gets a code from the
/// HTTP status.
fn error_from(status: u16, body: &[u8]) -> ApiError {
    let fallback = match status {
        400 | 422 => ErrorCode::Invalid,
        401 | 403 => ErrorCode::Unauthorized,
        404 => ErrorCode::NotFound,
        409 => ErrorCode::Conflict,
        429 => ErrorCode::RateLimited,
        502..=504 => ErrorCode::Unavailable,
        _ => ErrorCode::Internal,
    };
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) => ApiError {
            code: b.code.unwrap_or(fallback),
            message: b.error,
            field: b.field,
            details: b.details,
            reason: b.reason,
        },
        Err(_) => ApiError::new(
            fallback,
            format!(
                "the engine answered HTTP {status}: {}",
                crate::text::one_line(&String::from_utf8_lossy(&body[..body.len().min(200)]))
            ),
        ),
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = c.source();
    }
    out
}

#[async_trait]
impl EngineApi for RemoteApi {
    async fn call(&self, request: Request) -> Result<Reply, ApiError> {
        self.send(
            self.request(reqwest::Method::POST, "/api/v1/call")
                .json(&request),
        )
        .await
    }

    async fn upload(&self, dataset: DatasetId, body: ByteStream) -> Result<Dataset, ApiError> {
        self.send(
            self.request(
                reqwest::Method::PUT,
                &format!("/api/datasets/{dataset}/upload"),
            )
            .body(reqwest::Body::wrap_stream(body)),
        )
        .await
    }

    async fn download(&self, model: ArtifactId, file: &str) -> Result<ByteStream, ApiError> {
        let resp = self
            .open(
                self.request(reqwest::Method::GET, &format!("/api/models/{model}/file"))
                    .query(&[("path", file)]),
            )
            .await?;
        Ok(Box::pin(
            resp.bytes_stream()
                .map(|r| r.map_err(std::io::Error::other)),
        ))
    }

    async fn changes(&self, after: u64) -> Result<ChangeStream, ApiError> {
        let resp = self
            .open(
                self.request(reqwest::Method::GET, "/api/events")
                    .query(&[("after", after)]),
            )
            .await?;
        let address = self.address.to_string();
        let stream =
            eventsource_stream::EventStream::new(resp.bytes_stream()).filter_map(move |ev| {
                let address = address.clone();
                async move {
                    match ev {
                        Ok(ev) if ev.event == "change" => Some(
                            serde_json::from_str::<Sequenced>(&ev.data)
                                .map(Arc::new)
                                .map_err(|e| {
                                    ApiError::internal(format!("an unreadable change: {e}"))
                                }),
                        ),
                        Ok(ev) if ev.event == "error" => {
                            Some(Err(serde_json::from_str::<ApiError>(&ev.data)
                                .unwrap_or_else(|_| ApiError::internal(ev.data))))
                        }
                        Ok(_) => None,
                        Err(e) => Some(Err(ApiError::unavailable(format!(
                            "the connection to the engine at {address} was lost: {e}"
                        )))),
                    }
                }
            });
        Ok(Box::pin(stream))
    }

    async fn live(&self) -> Result<LiveStream, ApiError> {
        let resp = self
            .open(self.request(reqwest::Method::GET, "/api/live"))
            .await?;
        let stream = eventsource_stream::EventStream::new(resp.bytes_stream())
            .take_while(|ev| futures::future::ready(ev.is_ok()))
            .filter_map(|ev| async move {
                ev.ok()
                    .filter(|e| e.event == "live")
                    .and_then(|e| serde_json::from_str::<EngineEvent>(&e.data).ok())
            });
        Ok(Box::pin(stream))
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatStream, ApiError> {
        let mut url = reqwest::Url::parse(&format!("{}/api/models", self.base))
            .map_err(|e| ApiError::internal(format!("cannot build the chat URL: {e}")))?;
        url.path_segments_mut()
            .map_err(|_| ApiError::internal("cannot build the chat URL"))?
            .push(&request.model)
            .push("chat");
        let mut builder = self.client.post(url);
        if let Some(t) = &self.token {
            builder = builder.bearer_auth(t);
        }
        let resp = self
            .open(builder.json(&crate::chat::ChatBody::from(&request)))
            .await?;
        Ok(chat_events(resp.bytes_stream(), self.address.to_string()))
    }

    fn connection(&self) -> Connection {
        Connection::Attached(self.address.to_string())
    }

    fn shares_filesystem(&self) -> bool {
        // A daemon on this machine's Unix socket reads the owner's files itself; a token
        // holder (another user) sends the bytes.
        matches!(self.address, EngineAddress::Unix(_)) && self.token.is_none()
    }
}

/// A chat reply's server-sent events as [`ChatEvent`]s: `chat` events in order, ending after
/// the last one; a lost connection (or a stream that ends early) becomes one `error` event.
fn chat_events<S, E>(body: S, address: String) -> ChatStream
where
    S: futures::Stream<Item = Result<bytes::Bytes, E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let events = eventsource_stream::EventStream::new(body);
    let stream =
        futures::stream::unfold((Box::pin(events), false), move |(mut events, finished)| {
            let address = address.clone();
            async move {
                if finished {
                    return None;
                }
                loop {
                    let event = match events.next().await {
                        Some(Ok(ev)) if ev.event == "chat" => {
                            serde_json::from_str::<ChatEvent>(&ev.data).unwrap_or_else(|e| {
                                ChatEvent::Error {
                                    error: ApiError::internal(format!(
                                        "an unreadable chat event from the engine: {e}"
                                    )),
                                }
                            })
                        }
                        Some(Ok(_)) => continue,
                        Some(Err(e)) => ChatEvent::Error {
                            error: ApiError::unavailable(format!(
                                "the connection to the engine at {address} was lost mid-reply: {e}"
                            )),
                        },
                        None => ChatEvent::Error {
                            error: ApiError::unavailable(format!(
                                "the engine at {address} ended the reply before it was done"
                            )),
                        },
                    };
                    let last = event.is_last();
                    return Some((event, (events, last)));
                }
            }
        });
    Box::pin(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn chat_events_end_after_the_last_one_and_a_cut_is_an_error() {
        let body = "event: chat\ndata: {\"type\":\"delta\",\"text\":\"Hi\"}\n\n\
                    : keep-alive\n\n\
                    event: chat\ndata: {\"type\":\"done\",\"tokens\":1,\"seconds\":0.1,\"first_token_seconds\":0.05}\n\n\
                    event: chat\ndata: {\"type\":\"delta\",\"text\":\"after\"}\n\n";
        let chunks = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(body))]);
        let events: Vec<ChatEvent> = chat_events(chunks, "unix:/x".into()).collect().await;
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0], ChatEvent::Delta { text: "Hi".into() });
        assert!(matches!(events[1], ChatEvent::Done { tokens: 1, .. }));

        let cut = "event: chat\ndata: {\"type\":\"delta\",\"text\":\"Hi\"}\n\n";
        let chunks = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(cut))]);
        let events: Vec<ChatEvent> = chat_events(chunks, "unix:/x".into()).collect().await;
        match &events[..] {
            [ChatEvent::Delta { .. }, ChatEvent::Error { error }] => {
                assert_eq!(error.code, ErrorCode::Unavailable)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn addresses_parse() {
        assert_eq!(
            EngineAddress::parse("unix:/run/b.sock").unwrap(),
            EngineAddress::Unix("/run/b.sock".into())
        );
        assert_eq!(
            EngineAddress::parse("http://127.0.0.1:8470/").unwrap(),
            EngineAddress::Http("http://127.0.0.1:8470".into())
        );
        assert_eq!(
            EngineAddress::parse("engine.example").unwrap_err().code,
            ErrorCode::Invalid
        );
    }

    #[test]
    fn error_bodies_keep_their_code_and_field() {
        let e = error_from(
            400,
            br#"{"error":"lr out of range","details":"1e-5..1e-3","code":"invalid","field":"learning_rate"}"#,
        );
        assert_eq!(e.code, ErrorCode::Invalid);
        assert_eq!(e.field.as_deref(), Some("learning_rate"));
        assert_eq!(e.details.as_deref(), Some("1e-5..1e-3"));
        let e = error_from(
            409,
            br#"{"error":"files exist","code":"conflict","reason":"files_exist"}"#,
        );
        assert_eq!(e.reason, Some(Reason::FilesExist));
        // A proxy's HTML page still gets a code from its status.
        assert_eq!(
            error_from(502, b"<html>bad gateway</html>").code,
            ErrorCode::Unavailable
        );
    }
}
