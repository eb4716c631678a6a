//! The `ray` backend: any Ray cluster (a workstation, KubeRay, Anyscale) through the Jobs
//! REST API on its dashboard (`[backends.NAME] address`).
//!
//! - **Submit**: `POST /api/jobs/` with the engine's job id (plus the attempt) as
//!   `submission_id`. Before submitting, the job is looked up: one that exists is the same
//!   run, never a second one. The trainer's code travels as a working-dir package uploaded
//!   through `PUT /api/packages/gcs/…` (as `ray job submit --working-dir` does); its Python
//!   packages come from `runtime_env` `pip` (trainer/requirements.txt) unless the entry names
//!   a ready `python`. The spec travels in the job's environment (`--spec-env`).
//! - **Events** are the trainer's JSON lines in the job's log. A live job is followed with the
//!   log-tail WebSocket (one per job, held between polls); the cursor is a byte offset into
//!   the log, so after a restart the replayed prefix is skipped. Only when a job has ended and
//!   no tail could be followed is the whole log fetched, once.
//! - **Unreachable dashboard**: polls fail fast, back off (1 s doubling to 60 s), and the job
//!   stays running; when the dashboard answers again the tail resumes from the cursor.

use super::*;
use crate::backend::BackendHealthExt;
use crate::secrets::{Secret, Secrets};
use futures::StreamExt;
use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The longest log line kept; a longer one is skipped with a warning (as the local backend
/// does), so a runaway print cannot grow the engine's memory without bound.
const MAX_LINE: usize = 16 << 20;
/// Non-event lines (the trainer's stderr) kept per job for failure details.
const TAIL_LINES: usize = 200;
/// How long Ray waits between its stop signal and SIGKILL: time for the trainer to write its
/// checkpoint at the next step boundary (Ray's own default is 3 s).
const STOP_WAIT_SECS: u32 = 120;
/// How long a finished job's follower (its stderr tail, for failure details) is kept.
const FORGET_AFTER: Duration = Duration::from_secs(600);

pub struct RayBackend {
    name: String,
    address: String,
    request_gpus: bool,
    python: Option<String>,
    auth: Option<Secret>,
    http: reqwest::Client,
    /// The trainer's source folder (with requirements.txt), packaged as the job's working dir.
    source_dir: Result<PathBuf, String>,
    /// The uploaded package's URI, once uploaded by this engine.
    package: tokio::sync::Mutex<Option<String>>,
    follows: Mutex<HashMap<String, Arc<Mutex<Follow>>>>,
    backoff: Backoff,
}

/// One job's log as followed through the tail WebSocket.
#[derive(Default)]
struct Follow {
    /// Offset in the log of `buf[0]`.
    base: u64,
    /// Bytes received and not yet passed on to the engine (plus those the engine has not yet
    /// committed: they are dropped only when a poll's cursor moves past them).
    buf: Vec<u8>,
    /// Bytes of the log already seen by the engine that a fresh tail replays: skipped.
    skip: u64,
    /// The WebSocket closed after the job ended: the log is complete.
    complete: bool,
    /// The tail task stopped without completing (the dashboard went away).
    broken: Option<String>,
    /// A line over [`MAX_LINE`] is being skipped until its end.
    skipping: bool,
    /// When the tail ended (complete or broken): followers of finished jobs are forgotten a
    /// while later, so the engine's memory does not grow with every job it ever ran.
    ended_at: Option<Instant>,
    tail: VecDeque<String>,
}

#[derive(Debug, Deserialize)]
struct JobInfo {
    status: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    start_time: Option<i64>,
    #[serde(default)]
    end_time: Option<i64>,
}

impl RayBackend {
    /// `source_dir`: the trainer's source folder (with requirements.txt), or why it is missing.
    pub fn new(
        name: &str,
        cfg: &crate::config::BackendConfig,
        secrets: &Secrets,
        source_dir: Result<PathBuf, String>,
    ) -> Self {
        let secret = cfg.secret.as_deref().unwrap_or("ray_auth_token");
        Self {
            name: name.to_string(),
            address: cfg
                .address
                .clone()
                .unwrap_or_default()
                .trim_end_matches('/')
                .to_string(),
            request_gpus: cfg.request_gpus.unwrap_or(true),
            python: cfg.python.clone(),
            auth: secrets.get(secret).cloned(),
            http: http_client(),
            source_dir,
            package: tokio::sync::Mutex::new(None),
            follows: Mutex::new(HashMap::new()),
            backoff: Backoff::default(),
        }
    }

    fn what(&self) -> String {
        format!(
            "the Ray dashboard of backend `{}` ({})",
            self.name, self.address
        )
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.address));
        match &self.auth {
            Some(s) => r.header(reqwest::header::AUTHORIZATION, s.expose()),
            None => r,
        }
    }

    /// Sends a request; maps transport errors and non-success statuses (except those in
    /// `pass`) to backend errors. Every outcome updates the backoff.
    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        pass: &[u16],
    ) -> Result<(reqwest::StatusCode, String), BackendError> {
        let result = async {
            let resp = req.send().await.map_err(|e| http_error(&self.what(), e))?;
            let status = resp.status();
            let body = resp.text().await.map_err(|e| http_error(&self.what(), e))?;
            if status.is_success() || pass.contains(&status.as_u16()) {
                Ok((status, body))
            } else {
                Err(status_error(&self.what(), status, &body))
            }
        }
        .await;
        self.backoff.record(&result);
        result
    }

    async fn job_info(&self, id: &str) -> Result<Option<JobInfo>, BackendError> {
        let (status, body) = self
            .send(
                self.request(reqwest::Method::GET, &format!("/api/jobs/{id}")),
                &[404],
            )
            .await?;
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        serde_json::from_str(&body).map(Some).map_err(|e| {
            BackendError::Unavailable(format!("{} sent an unreadable job: {e}", self.what()))
        })
    }

    /// Uploads the trainer's working-dir package once (content-addressed: a package the
    /// cluster already has is not sent again) and returns its URI.
    async fn package_uri(&self) -> Result<String, BackendError> {
        let mut cached = self.package.lock().await;
        if let Some(uri) = &*cached {
            return Ok(uri.clone());
        }
        let dir = self.source_dir.clone().map_err(BackendError::Rejected)?;
        let zip = tokio::task::spawn_blocking(move || package_zip(&dir))
            .await
            .map_err(|e| BackendError::Rejected(format!("packaging the trainer: {e}")))??;
        let name = format!("_ray_pkg_{}.zip", &hex::encode(sha256(&zip))[..16]);
        let path = format!("/api/packages/gcs/{name}");
        let (status, _) = self
            .send(self.request(reqwest::Method::GET, &path), &[404])
            .await?;
        if status == reqwest::StatusCode::NOT_FOUND {
            self.send(self.request(reqwest::Method::PUT, &path).body(zip), &[])
                .await?;
        }
        let uri = format!("gcs://{name}");
        *cached = Some(uri.clone());
        Ok(uri)
    }

    /// The job's submission: entrypoint, runtime environment and resources.
    fn submit_body(
        &self,
        job: &Submission<'_>,
        submission_id: &str,
        package: &str,
        requirements: Vec<String>,
    ) -> serde_json::Value {
        let spec = serde_json::to_string(job.spec).expect("specs serialise");
        let python = self.python.as_deref().unwrap_or("python");
        let mut runtime_env = serde_json::json!({
            "working_dir": package,
            "env_vars": {
                "BRIGHTRUN_SPEC": spec,
                "BRIGHTRUN_JOB_ID": job.spec.job_id,
                "PYTHONUNBUFFERED": "1",
                "TOKENIZERS_PARALLELISM": "false",
                "RAY_JOB_STOP_WAIT_TIME_S": STOP_WAIT_SECS.to_string(),
            },
        });
        if self.python.is_none() {
            runtime_env["pip"] = serde_json::json!({"packages": requirements});
        }
        let mut body = serde_json::json!({
            "entrypoint": format!(
                "exec {} -u -m brightrun_trainer run --spec-env BRIGHTRUN_SPEC",
                shell_quote(python)
            ),
            "submission_id": submission_id,
            "runtime_env": runtime_env,
            "metadata": {"brightrun_job_id": job.spec.job_id, "brightrun_backend": self.name},
        });
        if self.request_gpus {
            body["entrypoint_num_gpus"] = serde_json::json!(job.gpu_count.max(1));
            if let Some(acc) = ray_accelerator(job.gpu_type) {
                // Ray's convention: a tiny share of the node's accelerator-type resource.
                body["entrypoint_resources"] =
                    serde_json::json!({ format!("accelerator_type:{acc}"): 0.001 });
            }
        }
        body
    }

    fn follow(&self, id: &str, cursor: u64) -> Arc<Mutex<Follow>> {
        let mut follows = self.follows.lock().expect("not poisoned");
        follows.retain(|_, f| {
            f.lock()
                .expect("not poisoned")
                .ended_at
                .is_none_or(|t| t.elapsed() < FORGET_AFTER)
        });
        if let Some(f) = follows.get(id) {
            let usable = {
                let g = f.lock().expect("not poisoned");
                g.broken.is_none() && g.base <= cursor
            };
            if usable {
                return f.clone();
            }
        }
        let f = Arc::new(Mutex::new(Follow {
            base: cursor,
            skip: cursor,
            ..Follow::default()
        }));
        follows.insert(id.to_string(), f.clone());
        let url = format!("{}/api/jobs/{id}/logs/tail", self.address)
            .replacen("http://", "ws://", 1)
            .replacen("https://", "wss://", 1);
        let auth = self.auth.clone();
        let state = f.clone();
        tokio::spawn(async move {
            let outcome = tail(&url, auth.as_ref(), &state).await;
            let mut g = state.lock().expect("not poisoned");
            g.ended_at = Some(Instant::now());
            match outcome {
                Ok(()) => g.complete = true,
                Err(e) => g.broken = Some(e),
            }
        });
        f
    }

    /// The whole log, once, for a job that ended while no tail could follow it.
    async fn whole_log(&self, id: &str) -> Result<String, BackendError> {
        #[derive(Deserialize)]
        struct Logs {
            logs: String,
        }
        let (_, body) = self
            .send(
                self.request(reqwest::Method::GET, &format!("/api/jobs/{id}/logs")),
                &[],
            )
            .await?;
        serde_json::from_str::<Logs>(&body)
            .map(|l| l.logs)
            .map_err(|e| {
                BackendError::Unavailable(format!("{} sent unreadable logs: {e}", self.what()))
            })
    }
}

/// Reads the tail WebSocket into `state` until it closes (the job ended and its log is
/// complete: `Ok`) or fails (`Err`).
async fn tail(url: &str, auth: Option<&Secret>, state: &Mutex<Follow>) -> Result<(), String> {
    use tokio_tungstenite::tungstenite::{client::IntoClientRequest, protocol::Message};
    let mut req = url
        .into_client_request()
        .map_err(|e| format!("bad tail URL: {e}"))?;
    if let Some(s) = auth {
        let v = s
            .expose()
            .parse()
            .map_err(|_| "the Ray auth secret is not a valid header value".to_string())?;
        req.headers_mut().insert("authorization", v);
    }
    let connect = tokio_tungstenite::connect_async(req);
    let (mut ws, _) = tokio::time::timeout(Duration::from_secs(10), connect)
        .await
        .map_err(|_| "the log tail did not connect within 10 s".to_string())?
        .map_err(|e| format!("the log tail failed: {e}"))?;
    while let Some(msg) = ws.next().await {
        match msg {
            Ok(Message::Text(t)) => push(&mut state.lock().expect("not poisoned"), t.as_bytes()),
            Ok(Message::Binary(b)) => push(&mut state.lock().expect("not poisoned"), &b),
            Ok(Message::Close(_)) => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(format!("the log tail broke: {e}")),
        }
    }
    Ok(())
}

/// Appends received log bytes, dropping the prefix the engine has already seen.
fn push(f: &mut Follow, mut bytes: &[u8]) {
    if f.skip > 0 {
        let n = (f.skip as usize).min(bytes.len());
        bytes = &bytes[n..];
        f.skip -= n as u64;
    }
    f.buf.extend_from_slice(bytes);
}

/// What one poll takes from the followed log: complete lines after `cursor` split into
/// events and other lines; returns the events and the new cursor. At `eof` a trailing line
/// without newline counts as complete.
fn take_lines(f: &mut Follow, cursor: u64, eof: bool) -> (Vec<Envelope>, u64) {
    // Everything before the cursor is committed by the engine: drop it.
    if cursor > f.base {
        let n = ((cursor - f.base) as usize).min(f.buf.len());
        f.buf.drain(..n);
        f.base += n as u64;
    }
    let mut events = Vec::new();
    let mut pos = 0usize;
    loop {
        let rest = &f.buf[pos..];
        let (line, used) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..i], i + 1),
            None if eof && !rest.is_empty() => (rest, rest.len()),
            None => {
                if rest.len() > MAX_LINE && !f.skipping {
                    f.skipping = true;
                    events.push(skipped_line(rest.len()));
                    pos = f.buf.len();
                }
                break;
            }
        };
        if f.skipping {
            f.skipping = false;
        } else if line.len() <= MAX_LINE {
            let text = String::from_utf8_lossy(line);
            let text = text.trim_end_matches('\r');
            match event_line(text) {
                Some(e) => events.push(e),
                None if !text.trim().is_empty() => {
                    if f.tail.len() == TAIL_LINES {
                        f.tail.pop_front();
                    }
                    f.tail.push_back(crate::text::clean_line(text));
                }
                None => {}
            }
        } else {
            events.push(skipped_line(line.len()));
        }
        pos += used;
    }
    // Skipped bytes of an over-long line are dropped now: they will never be a line.
    if f.skipping {
        f.base += f.buf.len() as u64;
        f.buf.clear();
        return (events, f.base);
    }
    (events, f.base + pos as u64)
}

fn skipped_line(len: usize) -> Envelope {
    tracing::warn!(
        bytes = len,
        "skipped a Ray log line longer than {MAX_LINE} bytes"
    );
    Envelope {
        seq: 0,
        ts: 0.0,
        event: TrainerEvent::Log {
            level: Some("warning".into()),
            message: format!(
                "skipped a trainer output line of {len} bytes (the limit is {MAX_LINE})"
            ),
        },
    }
}

/// A log line that is one of the trainer's events. Ray mixes the trainer's stdout (events)
/// and stderr (library noise) into one log, so anything else is stderr, kept for the tail.
fn event_line(line: &str) -> Option<Envelope> {
    let t = line.trim();
    if !t.starts_with("{\"type\"") {
        return None;
    }
    serde_json::from_str(t).ok()
}

/// Ray's accelerator type for a catalog GPU (`accelerator_type:…` resources).
fn ray_accelerator(gpu: &str) -> Option<&'static str> {
    Some(match gpu.to_ascii_uppercase().as_str() {
        "A100-80GB" => "A100-80G",
        "A100-40GB" => "A100-40G",
        "A100" => "A100",
        "H100" => "H100",
        "H200" => "H200",
        "V100-32GB" | "V100" => "V100",
        "L40S" => "L40S",
        "L4" => "L4",
        "A10G" => "A10G",
        "T4" => "T4",
        "B200" => "B200",
        _ => return None,
    })
}

fn shell_quote(s: &str) -> String {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).to_vec()
}

/// The trainer's working-dir package: `brightrun_trainer/` (its Python files) and
/// `requirements.txt`, stored uncompressed in a fixed order with fixed times, so the same
/// source always gives the same package (and the cluster's copy is reused).
fn package_zip(dir: &Path) -> Result<Vec<u8>, BackendError> {
    use std::io::Write;
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| BackendError::Io {
            action,
            path,
            source,
        }
    };
    let mut files: Vec<(String, PathBuf)> =
        vec![("requirements.txt".into(), dir.join("requirements.txt"))];
    let pkg = dir.join("brightrun_trainer");
    let mut stack = vec![pkg.clone()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(io("reading", &d))? {
            let entry = entry.map_err(io("reading", &d))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if path.is_dir() {
                if name != "__pycache__" {
                    stack.push(path);
                }
            } else if name.ends_with(".py") || name.ends_with(".jinja") || name.ends_with(".json") {
                let rel = path
                    .strip_prefix(dir)
                    .expect("under the source dir")
                    .to_string_lossy()
                    .to_string();
                files.push((rel, path));
            }
        }
    }
    files.sort();
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default());
    for (rel, path) in files {
        let bytes = std::fs::read(&path).map_err(io("reading", &path))?;
        out.start_file(rel, options)
            .map_err(|e| BackendError::Rejected(format!("packaging the trainer: {e}")))?;
        out.write_all(&bytes).map_err(io("packaging", &path))?;
    }
    let cursor = out
        .finish()
        .map_err(|e| BackendError::Rejected(format!("packaging the trainer: {e}")))?;
    Ok(cursor.into_inner())
}

/// trainer/requirements.txt as a `pip` list (comments and blank lines dropped).
fn requirements(dir: &Path) -> Result<Vec<String>, BackendError> {
    let path = dir.join("requirements.txt");
    let text = std::fs::read_to_string(&path).map_err(|source| BackendError::Io {
        action: "reading",
        path,
        source,
    })?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

fn millis(ms: Option<i64>) -> Option<crate::domain::Timestamp> {
    ms.filter(|m| *m > 0)
        .and_then(chrono::DateTime::from_timestamp_millis)
}

/// The Ray state of a job onto BrightRun's, with Ray's message for a failure.
fn remote_state(info: &JobInfo) -> RemoteState {
    match info.status.as_str() {
        "PENDING" => RemoteState::Pending,
        "RUNNING" => RemoteState::Running,
        "SUCCEEDED" => RemoteState::Succeeded,
        "STOPPED" => RemoteState::Stopped,
        "FAILED" => RemoteState::Failed(
            info.message
                .as_deref()
                .map(crate::text::clean_line)
                .filter(|m| !m.trim().is_empty())
                .unwrap_or_else(|| "Ray reports the job FAILED".into()),
        ),
        other => RemoteState::Failed(format!("Ray reports an unknown state {other}")),
    }
}

/// The submission id of an attempt: the job id, then `-retry-N` for the Nth retry (a retry
/// is a new run; the same attempt submitted twice is the same run).
pub(crate) fn submission_id(job_id: &str, attempt: u32) -> String {
    if attempt == 0 {
        job_id.to_string()
    } else {
        format!("{job_id}-retry-{attempt}")
    }
}

#[async_trait]
impl ClusterBackend for RayBackend {
    fn kind(&self) -> &'static str {
        "ray"
    }

    fn data_access(&self) -> DataAccess {
        DataAccess::Urls
    }

    async fn submit(&self, job: &Submission<'_>) -> Result<String, BackendError> {
        let id = submission_id(&job.spec.job_id, job.attempt);
        if let Some(e) = self.backoff.waiting() {
            return Err(e);
        }
        // Already submitted (the engine stopped between submitting and recording it): the
        // same run, never a second one.
        if self.job_info(&id).await?.is_some() {
            return Ok(id);
        }
        let package = self.package_uri().await?;
        let reqs = match (&self.python, &self.source_dir) {
            (None, Ok(dir)) => requirements(dir)?,
            _ => Vec::new(),
        };
        let body = self.submit_body(job, &id, &package, reqs);
        match self
            .send(
                self.request(reqwest::Method::POST, "/api/jobs/")
                    .json(&body),
                &[],
            )
            .await
        {
            Ok(_) => Ok(id),
            // Ray answers a duplicate submission id with an error: if the job is there, it is
            // ours (a concurrent submit of the same attempt).
            Err(e) => match self.job_info(&id).await {
                Ok(Some(_)) => Ok(id),
                _ => Err(e),
            },
        }
    }

    async fn poll(&self, external_id: &str, cursor: u64) -> Result<PollResult, BackendError> {
        if let Some(e) = self.backoff.waiting() {
            return Err(e);
        }
        let Some(info) = self.job_info(external_id).await? else {
            self.follows
                .lock()
                .expect("not poisoned")
                .remove(external_id);
            let mut r = PollResult::new(RemoteState::Lost, Vec::new(), cursor);
            r.note = Some(format!(
                "{} has no job {external_id} (was the cluster rebuilt?)",
                self.what()
            ));
            return Ok(r);
        };
        let mut state = remote_state(&info);
        let times = RemoteTimes {
            started_at: millis(info.start_time),
            ended_at: millis(info.end_time),
        };
        if state == RemoteState::Pending {
            let mut r = PollResult::new(state, Vec::new(), cursor);
            r.times = times;
            return Ok(r);
        }
        let follow = self.follow(external_id, cursor);
        let (complete, broken) = {
            let g = follow.lock().expect("not poisoned");
            (g.complete, g.broken.clone())
        };
        let (events, new_cursor) = if state.is_final() && !complete && broken.is_some() {
            // Ended while the tail could not follow: the whole log, once, from the cursor.
            let text = self.whole_log(external_id).await?;
            let mut g = follow.lock().expect("not poisoned");
            *g = Follow {
                base: cursor,
                skip: cursor,
                ..Follow::default()
            };
            push(&mut g, text.as_bytes());
            g.complete = true;
            take_lines(&mut g, cursor, true)
        } else {
            let mut g = follow.lock().expect("not poisoned");
            take_lines(&mut g, cursor, complete)
        };
        if state.is_final() && !follow.lock().expect("not poisoned").complete {
            // The job ended but its last lines are still on their way: not over yet.
            state = RemoteState::Running;
        }
        let mut r = PollResult::new(state, events, new_cursor);
        r.times = times;
        if let Some(b) = broken
            && !r.state.is_final()
        {
            tracing::debug!("job {external_id}: {b}; following again");
        }
        Ok(r)
    }

    async fn cancel(&self, external_id: &str) -> Result<(), BackendError> {
        self.send(
            self.request(
                reqwest::Method::POST,
                &format!("/api/jobs/{external_id}/stop"),
            ),
            &[404],
        )
        .await?;
        Ok(())
    }

    async fn log_tail(&self, external_id: &str, lines: usize) -> Result<Vec<String>, BackendError> {
        let kept: Option<Vec<String>> = self
            .follows
            .lock()
            .expect("not poisoned")
            .get(external_id)
            .map(|f| {
                f.lock()
                    .expect("not poisoned")
                    .tail
                    .iter()
                    .cloned()
                    .collect()
            })
            .filter(|t: &Vec<String>| !t.is_empty());
        let all = match kept {
            Some(t) => t,
            None => self
                .whole_log(external_id)
                .await?
                .lines()
                .filter(|l| event_line(l).is_none() && !l.trim().is_empty())
                .map(crate::text::clean_line)
                .collect(),
        };
        let skip = all.len().saturating_sub(lines);
        Ok(all.into_iter().skip(skip).collect())
    }

    async fn check(&self) -> BackendHealth {
        #[derive(Deserialize)]
        struct Version {
            #[serde(default)]
            ray_version: Option<String>,
        }
        match self
            .send(self.request(reqwest::Method::GET, "/api/version"), &[])
            .await
        {
            Ok((_, body)) => {
                let v = serde_json::from_str::<Version>(&body)
                    .ok()
                    .and_then(|v| v.ray_version)
                    .unwrap_or_else(|| "unknown".into());
                BackendHealth::ok(format!("Ray {v} at {}", self.address))
            }
            Err(e) => BackendHealth::failed(&e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn follow_with(text: &str, base: u64) -> Follow {
        let mut f = Follow {
            base,
            ..Follow::default()
        };
        push(&mut f, text.as_bytes());
        f
    }

    const STAGE: &str = r#"{"type":"stage","seq":0,"ts":1.0,"stage":"training"}"#;
    const LOG: &str = r#"{"type":"log","seq":1,"ts":2.0,"message":"hi"}"#;

    #[test]
    fn events_and_stderr_are_told_apart_and_partial_lines_wait() {
        let text = format!("Loading weights...\n{STAGE}\nwarning: x\n{}", &LOG[..10]);
        let mut f = follow_with(&text, 0);
        let (ev, cur) = take_lines(&mut f, 0, false);
        assert_eq!(ev.len(), 1);
        assert_eq!(cur as usize, text.len() - 10);
        assert_eq!(f.tail, ["Loading weights...", "warning: x"]);
        push(&mut f, format!("{}\n", &LOG[10..]).as_bytes());
        let (ev, cur2) = take_lines(&mut f, cur, false);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].seq, 1);
        assert_eq!(cur2 as usize, text.len() + LOG.len() - 10 + 1);
        // The committed prefix is gone from memory.
        assert_eq!(f.base, cur);
    }

    #[test]
    fn an_uncommitted_poll_is_read_again_and_a_replayed_prefix_is_skipped() {
        let text = format!("{STAGE}\n{LOG}\n");
        let mut f = follow_with(&text, 0);
        let (ev, cur) = take_lines(&mut f, 0, false);
        assert_eq!(ev.len(), 2);
        // The engine did not commit: it polls again from 0 and gets the same events.
        let (again, cur2) = take_lines(&mut f, 0, false);
        assert_eq!((again.len(), cur2), (2, cur));
        // A fresh tail after a restart replays the log from byte 0; the cursor skips it.
        let first = STAGE.len() as u64 + 1;
        let mut fresh = Follow {
            base: first,
            skip: first,
            ..Follow::default()
        };
        push(&mut fresh, &text.as_bytes()[..5]);
        push(&mut fresh, &text.as_bytes()[5..]);
        let (ev, end) = take_lines(&mut fresh, first, false);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].seq, 1);
        assert_eq!(end, text.len() as u64);
    }

    #[test]
    fn a_last_line_without_newline_counts_at_the_end() {
        let mut f = follow_with(STAGE, 0);
        assert!(take_lines(&mut f, 0, false).0.is_empty());
        let (ev, cur) = take_lines(&mut f, 0, true);
        assert_eq!((ev.len(), cur), (1, STAGE.len() as u64));
    }

    #[test]
    fn states_map_with_rays_message() {
        let info = |s: &str, m: Option<&str>| JobInfo {
            status: s.into(),
            message: m.map(String::from),
            start_time: None,
            end_time: None,
        };
        assert_eq!(remote_state(&info("PENDING", None)), RemoteState::Pending);
        assert_eq!(remote_state(&info("RUNNING", None)), RemoteState::Running);
        assert_eq!(
            remote_state(&info("SUCCEEDED", None)),
            RemoteState::Succeeded
        );
        assert_eq!(remote_state(&info("STOPPED", None)), RemoteState::Stopped);
        assert_eq!(
            remote_state(&info(
                "FAILED",
                Some("Job entrypoint command failed with exit code 1")
            )),
            RemoteState::Failed("Job entrypoint command failed with exit code 1".into())
        );
        assert_eq!(
            remote_state(&info("FAILED", Some("\u{1b}]0;x\u{7}bad"))),
            RemoteState::Failed("bad".into())
        );
    }

    #[test]
    fn submissions_carry_the_spec_resources_and_pip() {
        let secrets = Secrets::from_pairs([]);
        let cfg = crate::config::BackendConfig {
            kind: Some("ray".into()),
            address: Some("http://127.0.0.1:8265/".into()),
            ..Default::default()
        };
        let b = RayBackend::new("gpu-cluster", &cfg, &secrets, Err("none".into()));
        assert_eq!(b.address, "http://127.0.0.1:8265");
        let spec = TrainerSpec::sample("j1");
        let job = Submission {
            spec: &spec,
            gpu_type: "A100-80GB",
            gpu_count: 2,
            timeout: None,
            attempt: 0,
        };
        let body = b.submit_body(&job, "j1", "gcs://_ray_pkg_x.zip", vec!["torch==2".into()]);
        assert_eq!(body["submission_id"], "j1");
        assert_eq!(body["entrypoint_num_gpus"], 2);
        assert_eq!(
            body["entrypoint_resources"]["accelerator_type:A100-80G"],
            0.001
        );
        assert_eq!(body["runtime_env"]["pip"]["packages"][0], "torch==2");
        assert_eq!(body["runtime_env"]["working_dir"], "gcs://_ray_pkg_x.zip");
        let carried: TrainerSpec = serde_json::from_str(
            body["runtime_env"]["env_vars"]["BRIGHTRUN_SPEC"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(carried, spec);
        let cpu = crate::config::BackendConfig {
            request_gpus: Some(false),
            python: Some("/opt/venv/bin/python".into()),
            ..cfg
        };
        let b = RayBackend::new("cpu", &cpu, &secrets, Err("none".into()));
        let body = b.submit_body(&job, "j1", "gcs://p.zip", vec![]);
        assert!(body.get("entrypoint_num_gpus").is_none());
        assert!(body["runtime_env"].get("pip").is_none());
        assert!(
            body["entrypoint"]
                .as_str()
                .unwrap()
                .starts_with("exec /opt/venv/bin/python -u -m brightrun_trainer run")
        );
        assert_eq!(submission_id("j1", 0), "j1");
        assert_eq!(submission_id("j1", 2), "j1-retry-2");
    }

    #[test]
    fn the_package_is_the_same_for_the_same_source() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("brightrun_trainer/__pycache__")).unwrap();
        std::fs::write(dir.path().join("requirements.txt"), "torch\n").unwrap();
        std::fs::write(dir.path().join("brightrun_trainer/__init__.py"), "x = 1\n").unwrap();
        std::fs::write(
            dir.path().join("brightrun_trainer/__pycache__/a.pyc"),
            "junk",
        )
        .unwrap();
        let a = package_zip(dir.path()).unwrap();
        let b = package_zip(dir.path()).unwrap();
        assert_eq!(a, b);
        let mut z = zip::ZipArchive::new(std::io::Cursor::new(a)).unwrap();
        let names: Vec<String> = (0..z.len())
            .map(|i| z.by_index(i).unwrap().name().unwrap().to_string())
            .collect();
        assert_eq!(names, ["brightrun_trainer/__init__.py", "requirements.txt"]);
    }
}
