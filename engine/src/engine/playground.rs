//! The playground: chats with trained models, answered by workers on the engine's machine.
//!
//! Each model chatted with gets one worker, the trainer's `serve` mode (PROTOCOL.md, "Serve
//! mode"), started on first use with the trainer environment the local backend uses, the
//! base model and the model's adapter loaded once and kept between turns. A worker answers
//! one request at a time: a second chat to the same model waits its turn (the slot's lock);
//! chats to different models run side by side. A worker is stopped after
//! `[playground] idle_minutes` without a chat, and when the engine shuts down or a one-shot
//! command's engine drains its tasks. A worker that dies mid-reply ends that reply with an
//! `unavailable` error (reason `worker_failed`); the next chat starts a fresh one.
//!
//! Before a chat is taken, the model is checked against the memory of this machine's GPU (its
//! RAM when it has none) for replies of up to `[playground] max_new_tokens_limit`
//! (`training::inference`): one that would not fit is refused at once (`conflict`, reason
//! `does_not_fit`) instead of loading for a minute and being killed. A reply answered on the
//! CPU carries a note saying so, and how to judge the model on a cluster instead.
//!
//! The adapter is read in place from a local store; from S3 it is downloaded once into
//! `{data_dir}/playground/adapters/{model}/`, every file checked against its sha256.

use super::{Engine, EngineError, Result};
use crate::api::{ApiError, Reason};
use crate::config::PlaygroundConfig;
use crate::domain::ModelArtifact;
use crate::events::{EngineEvent, Progress, ProgressTask};
use crate::ids::ArtifactId;
use crate::storage::{Bucket, check_path, object_path};
use brightrun_api::chat::{
    ChatEvent, ChatMessage, ChatRequest, ChatStream, MAX_CHAT_BYTES, MAX_CHAT_MESSAGES, cpu_note,
    eval_hint,
};
use brightrun_api::training::inference::{
    InferenceDevice, InferenceFit, PROMPT_TOKENS, check_inference_fit, refusal_advice,
};
use brightrun_api::training::models::{self, ModelSize};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The reply length a chat gets when it asks for none.
pub const DEFAULT_MAX_NEW_TOKENS: u32 = 256;
/// How long a stopping worker gets to exit after its input is closed, before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Lines of the worker's stderr quoted when it fails.
const LOG_TAIL_LINES: usize = 15;

/// The engine's workers, one slot per model.
pub(crate) struct Playground {
    slots: std::sync::Mutex<HashMap<ArtifactId, Arc<tokio::sync::Mutex<Slot>>>>,
    /// Cancelled at shutdown and when a command's engine drains: every worker stops.
    stop: CancellationToken,
    /// Every chat and every worker's watch, so a drain waits for their workers to stop.
    tasks: TaskTracker,
    next_request: AtomicU64,
}

impl Playground {
    pub(crate) fn new(shutdown: &CancellationToken) -> Self {
        Self {
            slots: Default::default(),
            stop: shutdown.child_token(),
            tasks: TaskTracker::new(),
            next_request: AtomicU64::new(1),
        }
    }

    fn slot(&self, model: ArtifactId) -> Arc<tokio::sync::Mutex<Slot>> {
        self.slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(model)
            .or_default()
            .clone()
    }
}

/// A model's worker (when one runs) and when it last answered.
#[derive(Default)]
struct Slot {
    worker: Option<Worker>,
    /// Bumped at each start, so an old worker's watch knows it is no longer its worker's.
    generation: u64,
    last_used: Option<Instant>,
}

/// A running `serve` process.
struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: tokio::io::Lines<BufReader<ChildStdout>>,
    device: String,
    /// Its stderr, quoted when it fails.
    log: PathBuf,
}

/// One line the worker writes (PROTOCOL.md, "Serve mode"); lines of other types are ignored.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum WorkerLine {
    Ready {
        device: String,
    },
    Fatal {
        reason: String,
    },
    Delta {
        id: String,
        text: String,
    },
    Done {
        id: String,
        tokens: u64,
        seconds: f64,
        #[serde(default)]
        first_token_seconds: Option<f64>,
    },
    Error {
        #[serde(default)]
        id: String,
        reason: String,
    },
}

impl WorkerLine {
    /// A line of the worker's stdout, or `None` for one that is not a known protocol line.
    pub(crate) fn parse(line: &str) -> Option<Self> {
        serde_json::from_str(line).ok()
    }
}

/// One request to the worker.
#[derive(Debug, Serialize)]
pub(crate) struct WorkerRequest<'a> {
    pub id: &'a str,
    pub messages: &'a [ChatMessage],
    pub max_new_tokens: u32,
    pub temperature: f32,
    pub adapter: bool,
}

impl WorkerRequest<'_> {
    pub(crate) fn line(&self) -> String {
        let mut line = serde_json::to_string(self).expect("requests serialise");
        line.push('\n');
        line
    }
}

/// The reply length and temperature of a valid request.
pub(crate) fn check_request(
    request: &ChatRequest,
    config: &PlaygroundConfig,
) -> Result<(u32, f32), ApiError> {
    if request.messages.is_empty() {
        return Err(ApiError::invalid(
            "messages",
            "a chat needs at least one message",
        ));
    }
    if request.messages.len() > MAX_CHAT_MESSAGES {
        return Err(ApiError::invalid(
            "messages",
            format!(
                "{} messages; a chat holds at most {MAX_CHAT_MESSAGES}",
                request.messages.len()
            ),
        ));
    }
    let bytes: usize = request.messages.iter().map(|m| m.content.len()).sum();
    if bytes > MAX_CHAT_BYTES {
        return Err(ApiError::invalid(
            "messages",
            format!("the messages hold {bytes} bytes; at most {MAX_CHAT_BYTES}"),
        ));
    }
    let max_new_tokens = request.max_new_tokens.unwrap_or(DEFAULT_MAX_NEW_TOKENS);
    let limit = config.max_new_tokens_limit;
    if max_new_tokens == 0 || max_new_tokens > limit {
        return Err(ApiError::invalid(
            "max_new_tokens",
            format!(
                "max_new_tokens {max_new_tokens} is outside 1 to {limit} (`[playground] max_new_tokens_limit`)"
            ),
        ));
    }
    let temperature = request.temperature.unwrap_or(0.0);
    if !temperature.is_finite() || !(0.0..=10.0).contains(&temperature) {
        return Err(ApiError::invalid(
            "temperature",
            format!("temperature {temperature} is outside 0 to 10"),
        ));
    }
    Ok((max_new_tokens.min(limit.max(1)), temperature))
}

/// Bytes of the adapter's weights (its `adapter_model.*` files).
fn adapter_bytes(artifact: &ModelArtifact) -> u64 {
    artifact
        .files
        .iter()
        .filter(|f| f.path.starts_with("adapter_model."))
        .map(|f| f.size)
        .sum()
}

/// The refusal of a model that does not fit: what it needs, where the memory goes, what
/// there is, and what to do.
pub(crate) fn does_not_fit_message(
    artifact: &ModelArtifact,
    fit: &InferenceFit,
    limit: u32,
) -> String {
    let b = &fit.breakdown;
    let (dtype, runtime) = if fit.device.on_gpu() {
        ("16-bit", "CUDA context")
    } else {
        ("fp32", "the worker's Python process")
    };
    let short = artifact.id.short();
    let advice = refusal_advice(fit, &eval_hint(&short));
    format!(
        "model {short} ({}) does not fit on {} for chatting: it needs about {:.1} GB, {:.1} GB more than the {:.1} GB there ({:.2} GB of {dtype} weights, {:.2} GB of KV cache for {} tokens: `[playground] max_new_tokens_limit` {limit} after a {PROMPT_TOKENS}-token prompt, {:.2} GB of {runtime}, working memory and fragmentation). To chat with it: {}",
        artifact.base_model,
        fit.device.describe(),
        fit.required_gb,
        fit.required_gb - fit.available_gb,
        fit.available_gb,
        b.weights_gb + b.adapter_gb,
        b.kv_cache_gb,
        b.tokens,
        b.overhead_gb + b.working_gb,
        advice.join("; ")
    )
}

fn worker_failed(message: impl Into<String>) -> ApiError {
    let mut e = ApiError::unavailable(message);
    e.reason = Some(Reason::WorkerFailed);
    e
}

fn stopping() -> ApiError {
    ApiError::unavailable("the engine is stopping; the reply was cut short")
}

impl Engine {
    /// A chat turn with model `id` (already resolved for this user): the reply as a stream.
    pub async fn chat(&self, id: ArtifactId, request: ChatRequest) -> Result<ChatStream> {
        let limits = check_request(&request, &self.inner.config.playground).map_err(|e| {
            EngineError::InvalidField {
                field: e.field.clone().unwrap_or_default(),
                message: e.message,
            }
        })?;
        let artifact = self
            .on_store(move |e| {
                let artifact = e.adapter(id, "chat with")?;
                e.check_chat_fit(&artifact)?;
                Ok(artifact)
            })
            .await?;
        let playground = &self.inner.playground;
        let slot = playground.slot(artifact.id);
        let (tx, rx) = mpsc::channel(256);
        let engine = self.clone();
        playground.tasks.spawn(async move {
            engine.answer(slot, artifact, request, limits, tx).await;
        });
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
    }

    /// Stops every worker and waits (bounded) for them: at shutdown and when a one-shot
    /// command's embedded engine is done.
    pub(crate) async fn stop_playground(&self) {
        let playground = &self.inner.playground;
        playground.stop.cancel();
        playground.tasks.close();
        if tokio::time::timeout(STOP_GRACE * 2, playground.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "playground: workers still stopping after {:?}",
                STOP_GRACE * 2
            );
        }
    }

    async fn answer(
        &self,
        slot: Arc<tokio::sync::Mutex<Slot>>,
        artifact: ModelArtifact,
        request: ChatRequest,
        (max_new_tokens, temperature): (u32, f32),
        tx: mpsc::Sender<ChatEvent>,
    ) {
        let playground = &self.inner.playground;
        let stop = playground.stop.clone();
        // Our turn: after the chats to this model before us.
        let mut guard = tokio::select! {
            g = slot.clone().lock_owned() => g,
            _ = stop.cancelled() => {
                let _ = tx.send(ChatEvent::Error { error: stopping() }).await;
                return;
            }
            _ = tx.closed() => return,
        };
        let mut load_seconds = 0.0;
        if guard.worker.as_mut().is_some_and(|w| !w.running()) {
            guard.worker = None;
        }
        if guard.worker.is_none() {
            let started = Instant::now();
            let worker = tokio::select! {
                w = self.start_worker(&artifact) => w,
                _ = stop.cancelled() => Err(stopping()),
            };
            match worker {
                Ok(w) => {
                    guard.worker = Some(w);
                    guard.generation += 1;
                    load_seconds = started.elapsed().as_secs_f64();
                    let engine = self.clone();
                    let (watched, generation) = (slot.clone(), guard.generation);
                    playground
                        .tasks
                        .spawn(async move { engine.watch_worker(watched, generation).await });
                }
                Err(error) => {
                    let _ = tx.send(ChatEvent::Error { error }).await;
                    return;
                }
            }
        }
        let worker = guard.worker.as_mut().expect("started above");
        let _ = tx
            .send(ChatEvent::Started {
                model: artifact.id.to_string(),
                base_model: artifact.base_model.clone(),
                device: worker.device.clone(),
                load_seconds,
                note: (worker.device == "cpu").then(|| cpu_note(&artifact.id.short())),
            })
            .await;
        let id = format!(
            "c{}",
            playground.next_request.fetch_add(1, Ordering::Relaxed)
        );
        let line = WorkerRequest {
            id: &id,
            messages: &request.messages,
            max_new_tokens,
            temperature,
            adapter: !request.base,
        }
        .line();
        let healthy = worker.answer(&id, &line, &tx, &stop).await;
        guard.last_used = Some(Instant::now());
        if !healthy && let Some(w) = guard.worker.take() {
            w.stop().await;
        }
    }

    /// Stops the slot's worker once it has been idle for `[playground] idle_minutes`, or at
    /// shutdown; ends when the slot holds another worker (or none).
    async fn watch_worker(&self, slot: Arc<tokio::sync::Mutex<Slot>>, generation: u64) {
        let stop = self.inner.playground.stop.clone();
        let idle = Duration::from_secs(self.inner.config.playground.idle_minutes.max(1) * 60);
        let every = (idle / 4).clamp(Duration::from_secs(1), Duration::from_secs(30));
        loop {
            let stopping = tokio::select! {
                _ = stop.cancelled() => true,
                _ = tokio::time::sleep(every) => false,
            };
            let mut guard = if stopping {
                // A reply in flight sees the stop too and ends at once.
                slot.lock().await
            } else {
                match slot.try_lock() {
                    Ok(g) => g,
                    Err(_) => continue, // answering now: not idle
                }
            };
            if guard.generation != generation || guard.worker.is_none() {
                return;
            }
            let idle_for = guard.last_used.map(|t| t.elapsed()).unwrap_or_default();
            if stopping || idle_for >= idle {
                if let Some(w) = guard.worker.take() {
                    tracing::info!(
                        "playground: stopping a worker ({})",
                        if stopping { "engine stopping" } else { "idle" }
                    );
                    w.stop().await;
                }
                return;
            }
        }
    }

    async fn start_worker(&self, artifact: &ModelArtifact) -> Result<Worker, ApiError> {
        let trainer = self.playground_trainer().await?;
        let adapter = self.adapter_dir(artifact).await?;
        let dir = self.inner.paths.data_dir.join("playground");
        crate::private::create_dir_all(&dir)
            .map_err(|e| worker_failed(format!("creating {}: {e}", dir.display())))?;
        let log_path = dir.join(format!("{}.log", artifact.id));
        let log = crate::private::create_file(&log_path)
            .map_err(|e| worker_failed(format!("creating {}: {e}", log_path.display())))?;
        let mut cmd = tokio::process::Command::new(&trainer.python);
        cmd.args(["-u", "-m", "brightrun_trainer", "serve", "--base"])
            .arg(&artifact.base_model)
            .arg("--adapter")
            .arg(&adapter)
            .current_dir(&dir)
            .env(
                "PYTHONPATH",
                crate::backend::local::prepend_path(&trainer.source_dir),
            )
            .env("PYTHONUNBUFFERED", "1")
            .env("TOKENIZERS_PARALLELISM", "false")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        for name in crate::backend::local::withheld_from_trainer() {
            cmd.env_remove(name);
        }
        let mut child = cmd.spawn().map_err(|e| {
            worker_failed(format!(
                "cannot start the chat worker with {}: {e}",
                trainer.python.display()
            ))
        })?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped");
        let mut worker = Worker {
            child,
            stdin,
            stdout: BufReader::new(stdout).lines(),
            device: String::new(),
            log: log_path,
        };
        loop {
            match worker.stdout.next_line().await {
                Ok(Some(line)) => match WorkerLine::parse(&line) {
                    Some(WorkerLine::Ready { device }) => {
                        worker.device = device;
                        return Ok(worker);
                    }
                    Some(WorkerLine::Fatal { reason }) => {
                        let e = worker_failed(format!(
                            "the chat worker could not load model {} ({}): {}",
                            artifact.id.short(),
                            artifact.base_model,
                            crate::text::one_line(&reason)
                        ));
                        worker.stop().await;
                        return Err(e);
                    }
                    _ => continue,
                },
                Ok(None) | Err(_) => {
                    let e = worker.ended("while loading the model").await;
                    return Err(e);
                }
            }
        }
    }

    /// Refuses (`conflict`, reason `does_not_fit`) a chat with a model that would not fit in
    /// the memory of this machine's GPU (its RAM when it has none) with replies of up to
    /// `[playground] max_new_tokens_limit`, before a worker spends a minute loading it. A
    /// model whose size cannot be found, or a machine whose memory cannot be read, is let
    /// through (the worker's own failure then says what happened).
    pub(crate) fn check_chat_fit(&self, artifact: &ModelArtifact) -> Result<()> {
        let hardware = self.local_hardware();
        let device = match hardware.gpus.first() {
            Some(gpu) => InferenceDevice::Gpu {
                name: gpu.name.clone(),
                memory_gb: gpu.memory_gb,
            },
            None if hardware.memory_gb > 0.0 => InferenceDevice::Cpu {
                memory_gb: hardware.memory_gb,
            },
            None => return Ok(()),
        };
        let Some(size) = self.chat_model_size(artifact) else {
            tracing::info!(
                "playground: the size of {} is unknown; its worker starts unchecked",
                artifact.base_model
            );
            return Ok(());
        };
        let limit = self.inner.config.playground.max_new_tokens_limit;
        let fit = check_inference_fit(&size, adapter_bytes(artifact), limit, device);
        if fit.fits() {
            return Ok(());
        }
        Err(EngineError::Conflict {
            reason: Reason::DoesNotFit,
            message: does_not_fit_message(artifact, &fit, limit),
        })
    }

    /// The base model's size: known to the table or config, or read from the `config.json`
    /// of its folder or of its snapshot in the Hugging Face cache; else the parameter count
    /// the trainer reported for the run (with a borrowed shape).
    fn chat_model_size(&self, artifact: &ModelArtifact) -> Option<ModelSize> {
        let training = &self.inner.config.training;
        let base = artifact.base_model.as_str();
        models::lookup(base, training)
            .or_else(|| {
                let dir = crate::tokens::find_model_dir(base, &crate::tokens::hf_cache_roots())?;
                let text = std::fs::read(dir.join("config.json")).ok()?;
                models::from_hf_config(base, &serde_json::from_slice(&text).ok()?)
            })
            .or_else(|| {
                let parameters = artifact.training_summary.total_parameters? as f64;
                models::resolve(base, training, Some(parameters / 1e9)).ok()
            })
    }

    /// The trainer's Python, found or built as the local backend does.
    async fn playground_trainer(&self) -> Result<crate::trainer_env::TrainerCommand, ApiError> {
        self.local_trainer().await.map_err(|e| {
            ApiError::unavailable(format!(
                "chat runs on the engine's machine, with the trainer's environment: {e}"
            ))
        })
    }

    /// The trainer's Python on this machine, found or built as the local backend does (a
    /// build reports its steps as progress).
    pub(crate) async fn local_trainer(
        &self,
    ) -> std::result::Result<crate::trainer_env::TrainerCommand, crate::trainer_env::TrainerEnvError>
    {
        let store = self.inner.store.clone();
        let report = move |line: String| {
            store.publish(EngineEvent::Progress(Progress {
                task: ProgressTask::TrainerEnvironment,
                done: 0,
                total: None,
                message: crate::text::clean_line(&line),
            }));
        };
        crate::trainer_env::ensure(&self.inner.paths, &self.inner.config, &report).await
    }

    /// The folder of the model's adapter files on this machine: in place in a local store,
    /// else downloaded once (sha256-checked) into the playground's cache.
    pub(crate) async fn adapter_dir(&self, artifact: &ModelArtifact) -> Result<PathBuf, ApiError> {
        let objects = &self.inner.objects;
        if let Some(dir) = objects.local_path(Bucket::Models, &artifact.storage_path)
            && dir.join("adapter_config.json").is_file()
        {
            return Ok(dir);
        }
        let cache = self
            .inner
            .paths
            .data_dir
            .join("playground")
            .join("adapters")
            .join(artifact.id.to_string());
        if cache.join(".complete").is_file() {
            return Ok(cache);
        }
        let partial = cache.with_extension(format!("partial-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&partial);
        let io = |what: &Path, e: std::io::Error| {
            ApiError::unavailable(format!("writing {}: {e}", what.display()))
        };
        crate::private::create_dir_all(&partial).map_err(|e| io(&partial, e))?;
        for file in &artifact.files {
            check_path(&file.path).map_err(|e| ApiError::internal(e.to_string()))?;
            let key = object_path(&[artifact.storage_path.as_str(), file.path.as_str()])
                .map_err(|e| ApiError::internal(e.to_string()))?;
            let dest = partial.join(&file.path);
            if let Some(parent) = dest.parent() {
                crate::private::create_dir_all(parent).map_err(|e| io(parent, e))?;
            }
            let got = objects
                .get_to_file(Bucket::Models, &key, &dest, &|_, _| {})
                .await
                .map_err(|e| ApiError::from(EngineError::from(e)))?;
            if !file.sha256.is_empty() && got.sha256 != file.sha256 {
                let _ = std::fs::remove_dir_all(&partial);
                return Err(ApiError::conflict(
                    Reason::Corrupt,
                    format!(
                        "`{}` of model {} does not match its recorded sha256: the stored file was changed or damaged; `brightrun doctor` checks the store",
                        file.path,
                        artifact.id.short()
                    ),
                ));
            }
        }
        crate::private::write(&partial.join(".complete"), b"").map_err(|e| io(&partial, e))?;
        let _ = std::fs::remove_dir_all(&cache);
        std::fs::rename(&partial, &cache).map_err(|e| io(&cache, e))?;
        Ok(cache)
    }
}

impl Worker {
    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends one request and forwards its reply; `false` when the worker is no longer usable
    /// (it died, or the engine is stopping).
    async fn answer(
        &mut self,
        id: &str,
        line: &str,
        tx: &mpsc::Sender<ChatEvent>,
        stop: &CancellationToken,
    ) -> bool {
        if let Err(e) = self.send(line).await {
            let error = self
                .ended(&format!("before it read the request ({e})"))
                .await;
            let _ = tx.send(ChatEvent::Error { error }).await;
            return false;
        }
        let mut cancelled = false;
        loop {
            let next = tokio::select! {
                l = self.stdout.next_line() => l,
                _ = stop.cancelled() => {
                    let _ = tx.send(ChatEvent::Error { error: stopping() }).await;
                    return false;
                }
                _ = tx.closed(), if !cancelled => {
                    // The client went away: end the generation, read up to its `done`.
                    cancelled = true;
                    let cancel = serde_json::json!({"type": "cancel", "id": id}).to_string() + "\n";
                    if self.send(&cancel).await.is_err() {
                        return false;
                    }
                    continue;
                }
            };
            let event = match next {
                Ok(Some(l)) => match WorkerLine::parse(&l) {
                    Some(WorkerLine::Delta { id: of, text }) if of == id => {
                        ChatEvent::Delta { text }
                    }
                    Some(WorkerLine::Done {
                        id: of,
                        tokens,
                        seconds,
                        first_token_seconds,
                    }) if of == id => ChatEvent::Done {
                        tokens,
                        seconds,
                        first_token_seconds,
                    },
                    Some(WorkerLine::Error { id: of, reason }) if of == id || of.is_empty() => {
                        ChatEvent::Error {
                            error: worker_failed(format!(
                                "the chat worker could not answer: {}",
                                crate::text::one_line(&reason)
                            )),
                        }
                    }
                    Some(WorkerLine::Fatal { reason }) => {
                        let error = worker_failed(format!(
                            "the chat worker failed: {}",
                            crate::text::one_line(&reason)
                        ));
                        let _ = tx.send(ChatEvent::Error { error }).await;
                        return false;
                    }
                    _ => continue,
                },
                Ok(None) | Err(_) => {
                    let error = self.ended("mid-reply").await;
                    let _ = tx.send(ChatEvent::Error { error }).await;
                    return false;
                }
            };
            let last = event.is_last();
            if !cancelled {
                // A client gone meanwhile is seen by the `closed` branch next time round.
                let _ = tx.send(event).await;
            }
            if last {
                return true;
            }
        }
    }

    async fn send(&mut self, line: &str) -> std::io::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| std::io::Error::other("its input is closed"))?;
        stdin.write_all(line.as_bytes()).await?;
        stdin.flush().await
    }

    /// The error for a worker that ended `when`: its exit status and the tail of its stderr.
    async fn ended(&mut self, when: &str) -> ApiError {
        let status = tokio::time::timeout(Duration::from_secs(2), self.child.wait())
            .await
            .ok()
            .and_then(|s| s.ok());
        let status = match status {
            Some(s) => match (s.code(), exit_signal(&s)) {
                (Some(c), _) => format!("exit status {c}"),
                (None, Some(sig)) => format!("killed by signal {sig}"),
                _ => "ended".to_string(),
            },
            None => "stopped answering".to_string(),
        };
        let tail = crate::backend::local::tail_lines(&self.log, LOG_TAIL_LINES);
        let tail = tail
            .iter()
            .map(|l| crate::text::clean_line(l))
            .collect::<Vec<_>>()
            .join("\n");
        let e = worker_failed(format!(
            "the chat worker ended {when} ({status}); the next chat starts a fresh one"
        ));
        if tail.is_empty() {
            e
        } else {
            e.with_details(tail)
        }
    }

    /// Closes its input (it exits at end of input), then SIGKILL after the grace.
    async fn stop(mut self) {
        self.stdin = None;
        if tokio::time::timeout(STOP_GRACE, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

#[cfg(unix)]
fn exit_signal(s: &std::process::ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(s)
}

#[cfg(not(unix))]
fn exit_signal(_: &std::process::ExitStatus) -> Option<i32> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use brightrun_api::chat::ChatRole;

    #[test]
    fn worker_lines_parse_and_unknown_ones_are_ignored() {
        assert_eq!(
            WorkerLine::parse(
                r#"{"type": "ready", "device": "cpu", "seconds": 1.5, "adapter": true}"#
            ),
            Some(WorkerLine::Ready {
                device: "cpu".into()
            })
        );
        assert_eq!(
            WorkerLine::parse(r#"{"id": "c1", "type": "delta", "text": "Hel"}"#),
            Some(WorkerLine::Delta {
                id: "c1".into(),
                text: "Hel".into()
            })
        );
        assert_eq!(
            WorkerLine::parse(
                r#"{"id": "c1", "type": "done", "tokens": 3, "seconds": 0.5, "first_token_seconds": null, "cancelled": false}"#
            ),
            Some(WorkerLine::Done {
                id: "c1".into(),
                tokens: 3,
                seconds: 0.5,
                first_token_seconds: None
            })
        );
        assert_eq!(
            WorkerLine::parse(r#"{"id": "", "type": "error", "reason": "not JSON"}"#),
            Some(WorkerLine::Error {
                id: String::new(),
                reason: "not JSON".into()
            })
        );
        assert_eq!(
            WorkerLine::parse(r#"{"type": "fatal", "reason": "no such model"}"#),
            Some(WorkerLine::Fatal {
                reason: "no such model".into()
            })
        );
        for other in [
            "",
            "Loading checkpoint shards: 100%",
            r#"{"type": "from_the_future"}"#,
            r#"{"type": "delta"}"#,
            "[1, 2]",
        ] {
            assert_eq!(WorkerLine::parse(other), None, "{other}");
        }
    }

    #[test]
    fn a_request_is_one_json_line() {
        let messages = [
            ChatMessage::new(ChatRole::System, "Be brief."),
            ChatMessage::new(ChatRole::User, "hi\nthere"),
        ];
        let line = WorkerRequest {
            id: "c7",
            messages: &messages,
            max_new_tokens: 12,
            temperature: 0.0,
            adapter: false,
        }
        .line();
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "id": "c7",
                "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi\nthere"}],
                "max_new_tokens": 12,
                "temperature": 0.0,
                "adapter": false,
            })
        );
    }

    fn request(messages: Vec<ChatMessage>) -> ChatRequest {
        ChatRequest {
            model: "m".into(),
            messages,
            base: false,
            max_new_tokens: None,
            temperature: None,
        }
    }

    #[test]
    fn requests_are_checked_against_the_limits() {
        let config = PlaygroundConfig::default();
        let hi = vec![ChatMessage::new(ChatRole::User, "hi")];
        assert_eq!(
            check_request(&request(hi.clone()), &config).unwrap(),
            (DEFAULT_MAX_NEW_TOKENS, 0.0)
        );
        let e = check_request(&request(vec![]), &config).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("messages"));
        let mut long = request(hi.clone());
        long.max_new_tokens = Some(config.max_new_tokens_limit + 1);
        assert_eq!(
            check_request(&long, &config).unwrap_err().field.as_deref(),
            Some("max_new_tokens")
        );
        let mut hot = request(hi);
        hot.temperature = Some(f32::NAN);
        assert_eq!(
            check_request(&hot, &config).unwrap_err().field.as_deref(),
            Some("temperature")
        );
    }
}
