//! The `local` backend: the trainer as a child process on this machine (the embedded default).
//!
//! Each job gets a folder: `spec.json`, `events.jsonl` (the trainer's stdout), `trainer.log`
//! (its stderr), `pid`, `exit_code` (written by the wrapping shell when the trainer ends),
//! `trainer-failure.json` (the trainer's failure marker, PROTOCOL.md: written only when its
//! event stream broke or it died of a full disk), `output/` and `checkpoints/`. The trainer
//! runs in its own process group, detached from the engine, so a restarted engine finds it
//! still running (or learns from `exit_code` how it ended) and continues reading its events
//! from the stored cursor.

use super::*;
use crate::backend::BackendHealthExt;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// How long a fresh submission that shows no process yet counts as starting, not dead.
const STARTUP_GRACE: Duration = Duration::from_secs(10);

/// The trainer's failure marker in the job folder (PROTOCOL.md, "Failure marker"), named to
/// the trainer in [`MARKER_VARIABLE`]; the trainer reserves its space in `<name>.tmp`.
const FAILURE_MARKER: &str = "trainer-failure.json";
const MARKER_VARIABLE: &str = "BRIGHTRUN_FAILURE_MARKER";
/// A marker is a few hundred bytes (4 KiB with its padding); more is not one.
const MARKER_MAX_BYTES: u64 = 64 * 1024;

pub struct LocalBackend {
    jobs_dir: PathBuf,
    trainer: TrainerSource,
    /// One trainer-environment build at a time (it is shared by every job).
    env_lock: tokio::sync::Mutex<()>,
    /// Seconds between SIGTERM and SIGKILL on cancel.
    grace: Duration,
}

/// Reports one line of a trainer-environment build for a job (job id, line).
pub type BuildProgress = std::sync::Arc<dyn Fn(&str, String) + Send + Sync>;

/// Where the local backend gets the trainer's Python: given, or found (and built once, in
/// the cache) from config the way [`crate::trainer_env::ensure`] does. Only this backend
/// needs it, so dispatch builds the environment only for jobs that run here.
#[derive(Clone)]
pub enum TrainerSource {
    Fixed(TrainerCommand),
    Managed {
        paths: crate::paths::Paths,
        config: Box<crate::config::Config>,
        progress: BuildProgress,
    },
}

impl LocalBackend {
    pub fn new(jobs_dir: impl Into<PathBuf>, trainer: TrainerSource) -> Self {
        Self {
            jobs_dir: jobs_dir.into(),
            trainer,
            env_lock: tokio::sync::Mutex::new(()),
            grace: Duration::from_secs(20),
        }
    }

    /// Sets the time a cancelled trainer gets between SIGTERM and SIGKILL.
    pub fn with_cancel_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    async fn trainer(&self, job_id: &str) -> Result<TrainerCommand, BackendError> {
        match &self.trainer {
            TrainerSource::Fixed(t) => Ok(t.clone()),
            TrainerSource::Managed {
                paths,
                config,
                progress,
            } => {
                let _g = self.env_lock.lock().await;
                let report = |line: String| progress(job_id, line);
                crate::trainer_env::ensure(paths, config, &report)
                    .await
                    .map_err(|e| match e {
                        crate::trainer_env::TrainerEnvError::Install(_) => {
                            BackendError::Unavailable(e.to_string())
                        }
                        _ => BackendError::Rejected(e.to_string()),
                    })
            }
        }
    }

    /// The folder of a job (external ids are job ids).
    pub fn job_dir(&self, external_id: &str) -> PathBuf {
        self.jobs_dir.join(external_id)
    }

    fn pid(&self, external_id: &str) -> Option<i32> {
        std::fs::read_to_string(self.job_dir(external_id).join("pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn exit_code(&self, external_id: &str) -> Option<Option<i32>> {
        let text = std::fs::read_to_string(self.job_dir(external_id).join("exit_code")).ok()?;
        Some(text.trim().parse().ok())
    }

    /// Whether the submission is younger than the start-up grace period (judged by its spec
    /// file, written just before the trainer is spawned).
    fn recently_submitted(&self, external_id: &str) -> bool {
        std::fs::metadata(self.job_dir(external_id).join("spec.json"))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age < STARTUP_GRACE)
    }

    fn alive(&self, external_id: &str) -> bool {
        self.pid(external_id)
            .is_some_and(|pid| process_alive(pid, external_id))
    }

    /// The live wrapping shell (the process group leader) of the job's trainer: the pid
    /// file's, or, when an engine was killed between spawning the shell and writing that
    /// file, the live process named for the job (then the pid file is written for it).
    fn live_trainer(&self, external_id: &str) -> Option<i32> {
        if let Some(pid) = self
            .pid(external_id)
            .filter(|pid| process_alive(*pid, external_id))
        {
            return Some(pid);
        }
        let pid = find_process_by_argument(&shell_name(external_id))?;
        let path = self.job_dir(external_id).join("pid");
        if let Err(e) = crate::private::write(&path, pid.to_string()) {
            tracing::warn!(path = %path.display(), "recording an adopted trainer's pid: {e}");
        }
        Some(pid)
    }

    /// Whether this attempt's trainer already ran to its end while no engine recorded the
    /// submission (an engine killed between spawning it and storing that): its events and
    /// exit status are there to be read, and starting it again would train twice.
    fn finished_attempt(&self, external_id: &str, attempt: u32) -> bool {
        self.recorded_attempt(external_id) == Some(attempt) && self.exit_code(external_id).is_some()
    }

    /// The attempt whose trainer the job's folder holds, as its submission recorded it.
    fn recorded_attempt(&self, external_id: &str) -> Option<u32> {
        std::fs::read_to_string(self.job_dir(external_id).join(ATTEMPT_FILE))
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
    }
}

/// The job folder's record of which attempt (0 for the first run, N for the Nth retry) its
/// files belong to, written before that attempt's trainer is spawned.
const ATTEMPT_FILE: &str = "attempt";

/// The wrapping shell's `$0`: names the job in the process table, so a restarted engine can
/// find a trainer whose pid it never recorded.
fn shell_name(external_id: &str) -> String {
    format!("brightrun-trainer-{external_id}")
}

/// A live (non-zombie) process with `argument` as one of its arguments, exactly.
#[cfg(target_os = "linux")]
fn find_process_by_argument(argument: &str) -> Option<i32> {
    let wanted = argument.as_bytes();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == wanted))
                && !zombie(*pid)
        })
}

/// Without a process table to read, only the pid file finds a trainer.
#[cfg(not(target_os = "linux"))]
fn find_process_by_argument(_argument: &str) -> Option<i32> {
    None
}

/// Whether `pid` is a zombie (ended, not yet reaped); false when it cannot be read.
#[cfg(target_os = "linux")]
fn zombie(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state letter follows the parenthesised command name.
    stat.rsplit(')')
        .next()
        .and_then(|s| s.trim().chars().next())
        == Some('Z')
}

/// True when `pid` is a live (non-zombie) process whose command line mentions the job, so a
/// recycled pid is not mistaken for our trainer.
fn process_alive(pid: i32, external_id: &str) -> bool {
    #[cfg(target_os = "linux")]
    {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() || zombie(pid) {
            return false;
        }
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains(external_id))
            .unwrap_or(false)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = external_id;
        // SAFETY: signal 0 only checks that the process exists.
        unsafe { libc::kill(pid, 0) == 0 }
    }
}

/// Whether any process of the group `pgid` is left (a zombie counts until reaped: the
/// engine reaps its own shells at once).
fn group_alive(pgid: i32) -> bool {
    // SAFETY: signal 0 only checks that the group has a member we may signal.
    unsafe { libc::kill(-pgid, 0) == 0 }
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BackendError {
    let path = path.to_path_buf();
    move |source| BackendError::Io {
        action,
        path,
        source,
    }
}

/// The longest event line read. A longer one (a runaway print of a tensor, say) is skipped
/// rather than buffered: the engine must not hold an unbounded line in memory.
const MAX_EVENT_LINE: u64 = 16 << 20;

/// What one read of a job's event file gave.
pub(crate) struct EventsRead {
    pub events: Vec<Envelope>,
    /// Where the next read starts.
    pub cursor: u64,
    /// Whether the read reached the end of the file: with the trainer gone, every event it
    /// wrote has been seen.
    pub drained: bool,
}

/// Reads complete lines after `cursor` (a byte offset), at most [`MAX_EVENT_LINE`] bytes a
/// read; a trailing partial line waits for the next poll, unless the trainer has `ended`
/// (then it is its last line, cut short or without a newline). A line over the limit is
/// skipped, with a warning in the log and in the job's events, so reading goes on after it.
pub(crate) fn read_events(
    path: &Path,
    cursor: u64,
    ended: bool,
) -> Result<EventsRead, BackendError> {
    read_events_limited(path, cursor, MAX_EVENT_LINE, ended)
}

fn read_events_limited(
    path: &Path,
    cursor: u64,
    limit: u64,
    ended: bool,
) -> Result<EventsRead, BackendError> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(EventsRead {
                events: Vec::new(),
                cursor,
                drained: true,
            });
        }
        Err(e) => return Err(io("reading", path)(e)),
    };
    let len = file.metadata().map_err(io("reading", path))?.len();
    file.seek(SeekFrom::Start(cursor))
        .map_err(io("reading", path))?;
    let mut buf = Vec::new();
    file.by_ref()
        .take(limit)
        .read_to_end(&mut buf)
        .map_err(io("reading", path))?;
    let at_end = cursor + buf.len() as u64 >= len;
    let complete_len = match memchr::memrchr(b'\n', &buf) {
        // An ended trainer's last line needs no newline.
        _ if ended && at_end => buf.len(),
        Some(last_newline) => last_newline + 1,
        None if (buf.len() as u64) < limit => 0,
        None => return skip_long_line(&mut file, path, cursor, limit, &buf, len, ended),
    };
    let complete = &buf[..complete_len];
    let events = complete
        .split(|b| *b == b'\n')
        .map(|l| String::from_utf8_lossy(l))
        .filter(|l| !l.trim().is_empty())
        .map(|l| Envelope::parse_line(l.trim()))
        .collect();
    let cursor = cursor + complete.len() as u64;
    Ok(EventsRead {
        events,
        cursor,
        drained: cursor >= len,
    })
}

/// One line fills the whole read window (`buf`): skips to its end and reports the skip as a
/// warning event. While the line is still being written the cursor stays, and the next
/// poll looks again; an `ended` trainer's last line ends at the end of the file.
fn skip_long_line(
    file: &mut std::fs::File,
    path: &Path,
    cursor: u64,
    limit: u64,
    buf: &[u8],
    len: u64,
    ended: bool,
) -> Result<EventsRead, BackendError> {
    let end = match next_newline(file, cursor + limit).map_err(io("reading", path))? {
        Some(end) => end,
        // An ended trainer's last line runs to the end of the file.
        None if ended => len,
        None => {
            return Ok(EventsRead {
                events: Vec::new(),
                cursor,
                drained: false,
            });
        }
    };
    let bytes = end - cursor;
    tracing::warn!(
        path = %path.display(),
        offset = cursor,
        bytes,
        "skipped a trainer event line longer than {limit} bytes"
    );
    let skipped = Envelope {
        seq: 0,
        ts: 0.0,
        event: TrainerEvent::Log {
            level: Some("warning".into()),
            message: format!(
                "skipped a trainer output line of {bytes} bytes (the limit is {limit}): {}",
                String::from_utf8_lossy(&buf[..buf.len().min(300)])
            ),
        },
    };
    Ok(EventsRead {
        events: vec![skipped],
        cursor: (end + 1).min(len),
        drained: end + 1 >= len,
    })
}

/// The offset of the first newline at or after `from`, reading forward in chunks (never more
/// than one in memory); `None` at end of file.
fn next_newline(file: &mut std::fs::File, from: u64) -> std::io::Result<Option<u64>> {
    file.seek(SeekFrom::Start(from))?;
    let mut chunk = vec![0u8; 1 << 20];
    let mut offset = from;
    loop {
        let n = match file.read(&mut chunk) {
            Ok(0) => return Ok(None),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if let Some(i) = memchr::memchr(b'\n', &chunk[..n]) {
            return Ok(Some(offset + i as u64));
        }
        offset += n as u64;
    }
}

#[async_trait]
impl ClusterBackend for LocalBackend {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn runs_here(&self) -> bool {
        true
    }

    async fn submit(&self, job: &Submission<'_>) -> Result<String, BackendError> {
        let spec = job.spec;
        let id = spec.job_id.clone();
        let dir = self.job_dir(&id);
        // A resubmission after an engine was killed mid-dispatch: the trainer it started is
        // adopted, running or finished, never started a second time beside it. A shell still
        // exiting after an earlier attempt wrote its exit status is not this attempt's.
        let earlier_ended = self.exit_code(&id).is_some()
            && self.recorded_attempt(&id).is_some_and(|a| a != job.attempt);
        if (!earlier_ended && self.live_trainer(&id).is_some())
            || self.finished_attempt(&id, job.attempt)
        {
            return Ok(id);
        }
        let trainer = &self.trainer(&id).await?;
        // Job folders hold the spec (dataset paths, hyperparameters), logs and weights: 0700.
        crate::private::create_dir_all(&dir).map_err(io("creating", &dir))?;
        // A fresh attempt: old event and exit files belong to the previous attempt.
        for stale in [
            "events.jsonl",
            "exit_code",
            "pid",
            FAILURE_MARKER,
            "trainer-failure.json.tmp",
            ATTEMPT_FILE,
        ] {
            let _ = std::fs::remove_file(dir.join(stale));
        }
        let attempt_path = dir.join(ATTEMPT_FILE);
        crate::private::write(&attempt_path, job.attempt.to_string())
            .map_err(io("writing", &attempt_path))?;
        let spec_path = dir.join("spec.json");
        let text = serde_json::to_vec_pretty(spec).expect("specs serialise");
        crate::private::write(&spec_path, text).map_err(io("writing", &spec_path))?;
        let events = crate::private::create_file(&dir.join("events.jsonl"))
            .map_err(io("creating", &dir.join("events.jsonl")))?;
        let log = {
            let mut options = crate::private::file_options();
            options.truncate(false).append(true);
            options
        }
        .open(dir.join("trainer.log"))
        .map_err(io("creating", &dir.join("trainer.log")))?;
        // The shell records the trainer's exit status where a restarted engine can read it.
        // A cancel signals the whole process group, so the trainer gets SIGTERM exactly once
        // (a second one would make it exit without its checkpoint); the shell only keeps
        // waiting.
        let script = r#"trap ':' TERM
"$@" &
child=$!
while :; do
  wait "$child"; code=$?
  kill -0 "$child" 2>/dev/null || break
done
echo "$code" > exit_code.tmp && mv exit_code.tmp exit_code
exit "$code""#;
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(script)
            .arg(shell_name(&id))
            .arg(&trainer.python)
            .args(["-u", "-m", "brightrun_trainer", "run", "--spec"])
            .arg(&spec_path)
            .current_dir(&dir)
            .env("PYTHONPATH", prepend_path(&trainer.source_dir))
            .env("PYTHONUNBUFFERED", "1")
            .env("TOKENIZERS_PARALLELISM", "false")
            .env("BRIGHTRUN_JOB_ID", &id)
            .env(
                MARKER_VARIABLE,
                std::path::absolute(dir.join(FAILURE_MARKER))
                    .unwrap_or_else(|_| dir.join(FAILURE_MARKER)),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::from(events))
            .stderr(Stdio::from(log))
            .kill_on_drop(false);
        for name in withheld_from_trainer() {
            cmd.env_remove(name);
        }
        #[cfg(unix)]
        {
            cmd.process_group(0);
            // SAFETY: umask is async-signal-safe and touches no memory; what the trainer
            // writes into the job folder (checkpoints, weights) is private like the rest.
            unsafe {
                cmd.pre_exec(|| {
                    libc::umask(0o077);
                    Ok(())
                });
            }
        }
        let child = cmd.spawn().map_err(|e| {
            BackendError::Unavailable(format!(
                "cannot start the trainer with {}: {e}",
                trainer.python.display()
            ))
        })?;
        let pid = child.id().unwrap_or(0);
        crate::private::write(&dir.join("pid"), pid.to_string()).map_err(io("writing", &dir))?;
        // Reap the shell when it ends so it leaves no zombie while this engine lives.
        tokio::spawn(async move {
            let mut child = child;
            let _ = child.wait().await;
        });
        Ok(id)
    }

    async fn poll(&self, external_id: &str, cursor: u64) -> Result<PollResult, BackendError> {
        let dir = self.job_dir(external_id);
        if !dir.exists() {
            return Ok(PollResult::new(RemoteState::Lost, Vec::new(), cursor));
        }
        // Liveness first, then the exit status (written just before the wrapper exits), then
        // the events (written before that): no exit and no event can slip between the reads.
        let alive = self.alive(external_id);
        let exit = self.exit_code(external_id);
        let state = match exit {
            Some(code) => exit_state(code),
            None if alive => RemoteState::Running,
            // Just spawned: the pid file may not be written yet, or the child not yet exec'd.
            None if self.recently_submitted(external_id) => RemoteState::Pending,
            None => gone_without_status(&dir),
        };
        let read = read_events(&dir.join("events.jsonl"), cursor, state.is_final())?;
        let (events, cursor) = (read.events, read.cursor);
        if state.is_final() && !read.drained {
            // Ended, but more of what it wrote is still unread (a flood of metrics, a restarted
            // engine's backlog): judged only once every event, `done` included, is read.
            return Ok(PollResult::new(RemoteState::Running, events, cursor));
        }
        let state = match state {
            // Exited, but its event stream broke on the way (a full disk): what it reported
            // is incomplete, whatever its exit status says.
            RemoteState::Succeeded | RemoteState::Failed(_) => {
                match read_marker(&dir).map(|m| m.failure(&dir)) {
                    Some(why) => RemoteState::Failed(why),
                    None => state,
                }
            }
            other => other,
        };
        let mut result = PollResult::new(state, events, cursor);
        if !matches!(result.state, RemoteState::Running | RemoteState::Pending) {
            // The run's cost ends when the trainer did, not when a poll (perhaps long after,
            // when the store could be written again) noticed.
            result.times.ended_at = ended_at(&dir);
        }
        Ok(result)
    }

    /// SIGTERM to the trainer's process group (it saves a checkpoint and stops), then, when
    /// any of the group is still there after the grace period (`[engine]
    /// cancel_grace_secs`), SIGKILL to all of it.
    async fn cancel(&self, external_id: &str) -> Result<(), BackendError> {
        let Some(pid) = self.live_trainer(external_id) else {
            return Ok(());
        };
        // SAFETY: signalling a process group we started.
        unsafe {
            libc::kill(-pid, libc::SIGTERM);
        }
        let deadline = tokio::time::Instant::now() + self.grace;
        while tokio::time::Instant::now() < deadline {
            if !group_alive(pid) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tracing::warn!(
            "the trainer of {external_id} ignored SIGTERM for {} s: killing it",
            self.grace.as_secs()
        );
        // SAFETY: as above; the trainer ignored SIGTERM for the whole grace period.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        Ok(())
    }

    async fn log_tail(&self, external_id: &str, lines: usize) -> Result<Vec<String>, BackendError> {
        let path = self.job_dir(external_id).join("trainer.log");
        Ok(tail_lines(&path, lines))
    }

    async fn check(&self) -> BackendHealth {
        match crate::private::create_dir_all(&self.jobs_dir) {
            Ok(()) => BackendHealth::ok(format!(
                "this machine; job folders in {}",
                self.jobs_dir.display()
            )),
            Err(source) => BackendHealth::failed(&BackendError::Io {
                action: "creating",
                path: self.jobs_dir.clone(),
                source,
            }),
        }
    }
}

/// A trainer gone without its exit status: the wrapper could not write it (a full file
/// system leaves `exit_code.tmp` empty) or the process group was killed. A full file system is
/// named, so the job says what to free, not just "killed": the trainer's failure marker says
/// so, or (when even the marker could not be written) the free space does.
fn gone_without_status(dir: &Path) -> RemoteState {
    let tmp_written = std::fs::metadata(dir.join("exit_code.tmp")).is_ok();
    let marker = read_marker(dir);
    let nearly_full = crate::space::free_bytes(dir).is_some_and(|b| b < 1 << 20);
    if let Some(m) = marker.as_ref().filter(|m| m.disk_full()) {
        RemoteState::Failed(m.failure(dir))
    } else if nearly_full {
        RemoteState::Failed(format!(
            "the trainer stopped: {}",
            crate::space::describe_full(dir)
        ))
    } else if tmp_written {
        // An empty `exit_code.tmp` is a write that failed: almost always a full file system,
        // whose space may have come back by the time the engine looks.
        RemoteState::Failed(format!(
            "the trainer stopped and its exit status could not be written in {} (the write failed: its file system is full, or was when it tried)",
            dir.display()
        ))
    } else {
        exit_state(None)
    }
}

/// The trainer's failure marker (PROTOCOL.md, "Failure marker"): its event stream broke (it
/// then trains on without reporting), or it died of a full disk (its `error` event most
/// likely lost on the same disk). Unknown fields are ignored; an unknown `kind` makes the
/// marker unreadable.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
struct FailureMarker {
    kind: MarkerKind,
    /// The OS error number, when the failure carried one (28 is ENOSPC).
    #[serde(default)]
    errno: Option<i32>,
    /// The file being written, when known (for a full disk, it names the file system).
    #[serde(default)]
    path: Option<PathBuf>,
    #[serde(default)]
    message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum MarkerKind {
    EventStreamBroken,
    DiskFull,
}

impl FailureMarker {
    /// Whether it says a file system was full (or a quota exhausted).
    fn disk_full(&self) -> bool {
        self.kind == MarkerKind::DiskFull
            || self
                .errno
                .is_some_and(|e| e == libc::ENOSPC || e == libc::EDQUOT)
    }

    /// Why the run failed, as the job should say it; a full file system is named.
    fn failure(&self, dir: &Path) -> String {
        match self.kind {
            MarkerKind::DiskFull => {
                // The file it failed to write names the file system, which need not be the
                // job folder's (a cache, a checkpoint folder elsewhere).
                let at = self
                    .path
                    .as_deref()
                    .filter(|p| p.is_absolute())
                    .unwrap_or(dir);
                format!("the trainer stopped: {}", crate::space::describe_full(at))
            }
            MarkerKind::EventStreamBroken if self.disk_full() => format!(
                "the trainer could not write its events to {}: no space left on the file system {}",
                dir.join("events.jsonl").display(),
                crate::space::filesystem_of(dir)
            ),
            MarkerKind::EventStreamBroken if self.message.trim().is_empty() => {
                "the trainer could not write its events".into()
            }
            MarkerKind::EventStreamBroken => format!(
                "the trainer could not write its events: {}",
                crate::text::clean_line(&self.message)
            ),
        }
    }
}

/// The job folder's failure marker; `None` when there is none, and when it cannot be read
/// or is malformed (said in a warning: the run is then judged as if there were none).
fn read_marker(dir: &Path) -> Option<FailureMarker> {
    let path = dir.join(FAILURE_MARKER);
    let mut bytes = Vec::new();
    let read =
        std::fs::File::open(&path).and_then(|f| f.take(MARKER_MAX_BYTES).read_to_end(&mut bytes));
    match read {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(path = %path.display(), "cannot read the trainer's failure marker: {e}");
            return None;
        }
    }
    match serde_json::from_slice(&bytes) {
        Ok(marker) => Some(marker),
        Err(e) => {
            tracing::warn!(path = %path.display(), "ignoring a malformed trainer failure marker: {e}");
            None
        }
    }
}

/// When the run ended: the exit status's write, else the last write of its output.
fn ended_at(dir: &Path) -> Option<crate::domain::Timestamp> {
    ["exit_code", "exit_code.tmp", "events.jsonl", "trainer.log"]
        .iter()
        .filter_map(|f| {
            std::fs::metadata(dir.join(f))
                .and_then(|m| m.modified())
                .ok()
        })
        .max()
        .map(crate::domain::Timestamp::from)
}

/// The state an exit status means: 0 succeeded, 143/130 (SIGTERM/SIGINT, the trainer's stop)
/// stopped, anything else failed; `None` (no status recorded) means killed.
fn exit_state(code: Option<i32>) -> RemoteState {
    match code {
        Some(0) => RemoteState::Succeeded,
        Some(143) | Some(130) => RemoteState::Stopped,
        Some(c) => RemoteState::Failed(format!("exit status {c}")),
        None => RemoteState::Failed("killed".into()),
    }
}

pub(crate) fn prepend_path(dir: &Path) -> std::ffi::OsString {
    let mut out = dir.as_os_str().to_owned();
    if let Some(old) = std::env::var_os("PYTHONPATH").filter(|v| !v.is_empty()) {
        out.push(":");
        out.push(old);
    }
    out
}

/// The variables of this process the trainer does not get: the engine's secrets
/// (`BRIGHTRUN_SECRET_*`, API keys and S3 credentials the engine uses itself) and the API
/// token. The trainer runs third-party Python (transformers, datasets, custom code) that needs
/// none of them, and a crash dump or `wandb` run would carry them off.
pub(crate) fn withheld_from_trainer() -> Vec<std::ffi::OsString> {
    std::env::vars_os()
        .map(|(name, _)| name)
        .filter(|name| is_withheld(name))
        .collect()
}

fn is_withheld(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        .is_some_and(|n| n.starts_with("BRIGHTRUN_SECRET_") || n == "BRIGHTRUN_TOKEN")
}

/// The last `n` lines of a text file, reading at most its last 64 KB.
pub(crate) fn tail_lines(path: &Path, n: usize) -> Vec<String> {
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(64 * 1024);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return Vec::new();
    }
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    let skip = all.len().saturating_sub(n);
    all[skip..].iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(dir: &Path, python: PathBuf) -> LocalBackend {
        LocalBackend::new(
            dir,
            TrainerSource::Fixed(TrainerCommand {
                python,
                source_dir: dir.to_path_buf(),
            }),
        )
    }

    fn submission(spec: &TrainerSpec) -> Submission<'_> {
        Submission {
            spec,
            gpu_type: "local",
            gpu_count: 1,
            timeout: None,
            attempt: 0,
        }
    }

    #[test]
    fn exit_statuses_map_onto_remote_states() {
        assert_eq!(exit_state(Some(0)), RemoteState::Succeeded);
        assert_eq!(exit_state(Some(143)), RemoteState::Stopped);
        assert_eq!(exit_state(Some(130)), RemoteState::Stopped);
        assert_eq!(
            exit_state(Some(1)),
            RemoteState::Failed("exit status 1".into())
        );
        assert_eq!(exit_state(None), RemoteState::Failed("killed".into()));
    }

    #[test]
    fn events_are_read_from_the_cursor_and_partial_lines_wait() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(
            &path,
            "{\"type\":\"stage\",\"seq\":0,\"ts\":1,\"stage\":\"training\"}\n{\"type\":\"log\",\"seq\":1,\"ts\":2,\"mess",
        )
        .unwrap();
        let EventsRead {
            events: ev,
            cursor: cur,
            ..
        } = read_events(&path, 0, false).unwrap();
        assert_eq!(ev.len(), 1);
        let EventsRead {
            events: ev2,
            cursor: cur2,
            ..
        } = read_events(&path, cur, false).unwrap();
        assert!(ev2.is_empty());
        assert_eq!(cur2, cur);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, b"age\":\"hi\"}\n").unwrap();
        let EventsRead { events: ev3, .. } = read_events(&path, cur, false).unwrap();
        assert_eq!(ev3.len(), 1);
        assert_eq!(ev3[0].seq, 1);
    }

    #[tokio::test]
    async fn a_process_is_started_detached_and_its_exit_recorded() {
        let dir = tempfile::tempdir().unwrap();
        // A fake "python" that prints one event and exits 3.
        let fake = dir.path().join("fake-python");
        std::fs::write(
            &fake,
            "#!/bin/sh\necho '{\"type\":\"log\",\"seq\":0,\"ts\":0,\"message\":\"hello\"}'\necho oops >&2\nexit 3\n",
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let spec = TrainerSpec::sample("job-1");
        let backend = fixed(dir.path(), fake);
        let id = backend.submit(&submission(&spec)).await.unwrap();
        let mut result = None;
        for _ in 0..100 {
            let r = backend.poll(&id, 0).await.unwrap();
            if r.state.is_final() {
                result = Some(r);
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let r = result.expect("the process ends");
        assert_eq!(r.state, RemoteState::Failed("exit status 3".into()));
        assert_eq!(r.events.len(), 1);
        assert_eq!(backend.log_tail(&id, 5).await.unwrap(), vec!["oops"]);
        assert_eq!(
            backend.poll("nope", 0).await.unwrap().state,
            RemoteState::Lost
        );
    }

    #[tokio::test]
    async fn the_trainer_gets_no_secrets_and_no_token() {
        // SAFETY: test-only; the names are unique to this test, and std's own environment
        // reads (spawn included) take the same lock as set_var.
        unsafe {
            std::env::set_var("BRIGHTRUN_SECRET_WT13_RUNPOD_API_KEY", "rp-secret-value");
            std::env::set_var("BRIGHTRUN_TOKEN", "token-secret-value");
            std::env::set_var("BRIGHTRUN_WT13_PLAIN", "plain-value");
        }
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("fake-python");
        std::fs::write(&fake, "#!/bin/sh\nenv > env.txt\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let spec = TrainerSpec::sample("job-env");
        let backend = fixed(dir.path(), fake);
        let id = backend.submit(&submission(&spec)).await.unwrap();
        for _ in 0..100 {
            let r = backend.poll(&id, 0).await.unwrap();
            if r.state.is_final() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let env = std::fs::read_to_string(backend.job_dir(&id).join("env.txt")).unwrap();
        assert!(env.contains("BRIGHTRUN_JOB_ID=job-env"), "{env}");
        assert!(env.contains("BRIGHTRUN_WT13_PLAIN=plain-value"), "{env}");
        assert!(!env.contains("secret-value"), "{env}");
        assert!(!env.contains("BRIGHTRUN_SECRET_"), "{env}");
        assert!(!env.contains("BRIGHTRUN_TOKEN"), "{env}");
        unsafe {
            std::env::remove_var("BRIGHTRUN_SECRET_WT13_RUNPOD_API_KEY");
            std::env::remove_var("BRIGHTRUN_TOKEN");
            std::env::remove_var("BRIGHTRUN_WT13_PLAIN");
        }
    }

    /// A fake trainer that counts its starts, reports one event, and waits for `go`.
    fn waiting_trainer(dir: &Path) -> PathBuf {
        let fake = dir.join("fake-python");
        std::fs::write(
            &fake,
            "#!/bin/sh\necho start >> ../runs\necho '{\"type\":\"log\",\"seq\":0,\"ts\":0,\"message\":\"up\"}'\nwhile [ ! -e ../go ]; do sleep 0.02; done\n",
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        fake
    }

    async fn until_final(backend: &LocalBackend, id: &str) -> RemoteState {
        for _ in 0..400 {
            let r = backend.poll(id, 0).await.unwrap();
            if r.state.is_final() {
                return r.state;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the fake trainer of {id} never ended");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_resubmission_adopts_the_trainer_a_killed_engine_left_unrecorded() {
        let dir = tempfile::tempdir().unwrap();
        let backend = fixed(dir.path(), waiting_trainer(dir.path()));
        let spec = TrainerSpec::sample("job-adopt");
        let id = backend.submit(&submission(&spec)).await.unwrap();
        let job_dir = backend.job_dir(&id);
        let events = job_dir.join("events.jsonl");
        for _ in 0..400 {
            if std::fs::read_to_string(&events).is_ok_and(|e| e.contains("up")) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let first = std::fs::read_to_string(job_dir.join("pid")).unwrap();
        // The engine was killed after spawning the trainer, before writing its pid.
        std::fs::remove_file(job_dir.join("pid")).unwrap();
        assert_eq!(backend.submit(&submission(&spec)).await.unwrap(), id);
        assert_eq!(
            std::fs::read_to_string(job_dir.join("pid")).unwrap(),
            first,
            "the running shell is adopted"
        );
        assert!(std::fs::read_to_string(&events).unwrap().contains("up"));
        std::fs::write(dir.path().join("go"), "").unwrap();
        assert_eq!(until_final(&backend, &id).await, RemoteState::Succeeded);

        // Killed again before the submission was stored; the trainer has finished since.
        std::fs::remove_file(job_dir.join("pid")).unwrap();
        backend.submit(&submission(&spec)).await.unwrap();
        assert!(
            job_dir.join("exit_code").exists(),
            "its exit status is kept"
        );
        assert!(std::fs::read_to_string(&events).unwrap().contains("up"));
        let runs = || std::fs::read_to_string(dir.path().join("runs")).unwrap();
        assert_eq!(runs().lines().count(), 1, "started once");

        // The next attempt is a run of its own.
        let retry = Submission {
            attempt: 1,
            ..submission(&spec)
        };
        backend.submit(&retry).await.unwrap();
        // Its trainer starts again (waited for: the first run's final state may still be
        // what a poll sees at first), then succeeds.
        for _ in 0..400 {
            if runs().lines().count() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(runs().lines().count(), 2, "{}", runs());
        assert_eq!(until_final(&backend, &id).await, RemoteState::Succeeded);
    }

    fn marker_in(dir: &Path, text: &str) {
        std::fs::write(dir.join(FAILURE_MARKER), text).unwrap();
    }

    #[test]
    fn a_failure_marker_is_read_typed_padding_and_unknown_fields_included() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_marker(dir.path()), None, "absent");
        // As the trainer writes it: one line, padded with spaces to its reserved size.
        let text = format!(
            "{}\n",
            r#"{"version":1,"kind":"event_stream_broken","errno":28,"path":"/j/events.jsonl","message":"event stream closed ([Errno 28] No space left on device)","ts":1.5,"later":{"x":1}}"#
                .to_string()
                + &" ".repeat(3000)
        );
        marker_in(dir.path(), &text);
        assert_eq!(
            read_marker(dir.path()),
            Some(FailureMarker {
                kind: MarkerKind::EventStreamBroken,
                errno: Some(28),
                path: Some("/j/events.jsonl".into()),
                message: "event stream closed ([Errno 28] No space left on device)".into(),
            })
        );
        marker_in(dir.path(), r#"{"kind":"disk_full"}"#);
        let m = read_marker(dir.path()).unwrap();
        assert_eq!(
            (m.kind, m.errno, m.path, m.message.as_str()),
            (MarkerKind::DiskFull, None, None, "")
        );
    }

    #[test]
    fn a_malformed_or_unreadable_marker_is_ignored_never_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        for bad in [
            "",
            "   \n",
            "not json",
            r#"{"kind":"event_stream_broken","errno":28,"mess"#,
            r#"{"kind":"exploded"}"#,
            r#"{"errno":28}"#,
            r#"{"kind":"disk_full","errno":"28"}"#,
            r#"{"kind":"disk_full","errno":99999999999}"#,
            "[1,2]",
            "\u{0}\u{ff}",
        ] {
            marker_in(dir.path(), bad);
            assert_eq!(read_marker(dir.path()), None, "{bad:?}");
        }
        // Not UTF-8, and not a file at all.
        std::fs::write(dir.path().join(FAILURE_MARKER), [0xff, 0xfe, b'{']).unwrap();
        assert_eq!(read_marker(dir.path()), None);
        std::fs::remove_file(dir.path().join(FAILURE_MARKER)).unwrap();
        std::fs::create_dir(dir.path().join(FAILURE_MARKER)).unwrap();
        assert_eq!(read_marker(dir.path()), None);
        // A malformed marker leaves the exit status's verdict alone.
        assert_eq!(gone_without_status(dir.path()), exit_state(None));
    }

    #[test]
    fn a_marker_says_why_and_names_the_full_file_system() {
        let dir = tempfile::tempdir().unwrap();
        let fs = crate::space::filesystem_of(dir.path());
        let marker = |kind, errno: Option<i32>, path: Option<&Path>, message: &str| FailureMarker {
            kind,
            errno,
            path: path.map(Path::to_path_buf),
            message: message.into(),
        };
        let full = marker(
            MarkerKind::EventStreamBroken,
            Some(libc::ENOSPC),
            None,
            "event stream closed ([Errno 28] No space left on device)",
        );
        assert!(full.disk_full());
        assert_eq!(
            full.failure(dir.path()),
            format!(
                "the trainer could not write its events to {}: no space left on the file system {fs}",
                dir.path().join("events.jsonl").display()
            )
        );
        let quota = marker(MarkerKind::EventStreamBroken, Some(libc::EDQUOT), None, "q");
        assert!(
            quota
                .failure(dir.path())
                .contains("no space left on the file system")
        );
        let pipe = marker(
            MarkerKind::EventStreamBroken,
            Some(libc::EPIPE),
            None,
            "event stream closed ([Errno 32] Broken pipe)\u{1b}[0m",
        );
        assert!(!pipe.disk_full());
        assert_eq!(
            pipe.failure(dir.path()),
            "the trainer could not write its events: event stream closed ([Errno 32] Broken pipe)"
        );
        assert_eq!(
            marker(MarkerKind::EventStreamBroken, None, None, " ").failure(dir.path()),
            "the trainer could not write its events"
        );
        // A full disk names the file system of the file it failed to write.
        let ckpt = dir.path().join("checkpoints/checkpoint-3/optimizer.pt");
        let died = marker(
            MarkerKind::DiskFull,
            Some(libc::ENOSPC),
            Some(&ckpt),
            "OSError: …",
        );
        assert!(died.disk_full());
        let said = died.failure(dir.path());
        assert!(
            said.starts_with(&format!(
                "the trainer stopped: the file system {fs} is full ("
            )),
            "{said}"
        );
        // A relative path names nothing: the job folder's file system is named.
        let relative = marker(MarkerKind::DiskFull, None, Some(Path::new("x/y")), "");
        assert!(relative.failure(dir.path()).contains(&fs));
    }

    #[test]
    fn a_trainer_gone_without_status_is_named_full_from_its_marker() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(gone_without_status(dir.path()), exit_state(None));
        // The shell could not write its status (an empty exit_code.tmp) …
        std::fs::write(dir.path().join("exit_code.tmp"), "").unwrap();
        let RemoteState::Failed(why) = gone_without_status(dir.path()) else {
            panic!()
        };
        assert!(why.contains("exit status could not be written"), "{why}");
        // … and the trainer's marker says why: the disk was full.
        marker_in(
            dir.path(),
            r#"{"kind":"disk_full","errno":28,"path":null,"message":"m"}"#,
        );
        let RemoteState::Failed(why) = gone_without_status(dir.path()) else {
            panic!()
        };
        assert!(
            why.starts_with("the trainer stopped: the file system "),
            "{why}"
        );
        assert!(why.contains(" is full ("), "{why}");
        // A broken pipe is no full disk: the status's absence speaks.
        marker_in(
            dir.path(),
            r#"{"kind":"event_stream_broken","errno":32,"message":"m"}"#,
        );
        let RemoteState::Failed(why) = gone_without_status(dir.path()) else {
            panic!()
        };
        assert!(why.contains("exit status could not be written"), "{why}");
    }

    async fn final_state(backend: &LocalBackend, id: &str) -> RemoteState {
        for _ in 0..100 {
            let r = backend.poll(id, 0).await.unwrap();
            if r.state.is_final() {
                return r.state;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the process ends")
    }

    #[tokio::test]
    async fn the_trainer_is_told_where_its_marker_goes_and_an_exit_0_with_one_fails() {
        let dir = tempfile::tempdir().unwrap();
        // A fake "python" whose event stream broke: it writes the marker and exits 0.
        let fake = dir.path().join("fake-python");
        std::fs::write(
            &fake,
            "#!/bin/sh\nprintf '%s' '{\"version\":1,\"kind\":\"event_stream_broken\",\"errno\":32,\"path\":null,\"message\":\"event stream closed ([Errno 32] Broken pipe)\"}' > \"$BRIGHTRUN_FAILURE_MARKER\"\nexit 0\n",
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let spec = TrainerSpec::sample("job-marker");
        let backend = fixed(dir.path(), fake.clone());
        backend.submit(&submission(&spec)).await.unwrap();
        assert_eq!(
            final_state(&backend, "job-marker").await,
            RemoteState::Failed(
                "the trainer could not write its events: event stream closed ([Errno 32] Broken pipe)"
                    .into()
            )
        );
        let job_dir = backend.job_dir("job-marker");
        // A retry in the same folder starts without the old marker (or its reserve).
        std::fs::write(&fake, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::write(job_dir.join("trainer-failure.json.tmp"), " ").unwrap();
        let retry = Submission {
            attempt: 1,
            ..submission(&spec)
        };
        backend.submit(&retry).await.unwrap();
        assert_eq!(
            final_state(&backend, "job-marker").await,
            RemoteState::Succeeded
        );
        assert!(!job_dir.join(FAILURE_MARKER).exists());
        assert!(!job_dir.join("trainer-failure.json.tmp").exists());
    }

    #[test]
    fn an_over_long_line_is_skipped_and_reading_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let good = |seq: u32| {
            format!("{{\"type\":\"log\",\"seq\":{seq},\"ts\":1,\"message\":\"m{seq}\"}}\n")
        };
        // A real over-long line, past the 16 MiB limit, still being written.
        let long = "x".repeat((MAX_EVENT_LINE + 5) as usize);
        std::fs::write(&path, format!("{}{long}", good(1))).unwrap();
        let EventsRead {
            events: ev,
            cursor: cur,
            ..
        } = read_events(&path, 0, false).unwrap();
        assert_eq!(ev.len(), 1);
        let EventsRead {
            events: ev,
            cursor: cur2,
            ..
        } = read_events(&path, cur, false).unwrap();
        assert!(ev.is_empty());
        assert_eq!(cur2, cur, "an unfinished line waits");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, format!("xx\n{}", good(2)).as_bytes()).unwrap();
        let EventsRead {
            events: ev,
            cursor: cur3,
            ..
        } = read_events(&path, cur, false).unwrap();
        assert_eq!(ev.len(), 1);
        match &ev[0].event {
            TrainerEvent::Log { level, message } => {
                assert_eq!(level.as_deref(), Some("warning"));
                assert!(
                    message.starts_with("skipped a trainer output line"),
                    "{}",
                    &message[..80]
                );
                assert!(message.len() < 1000);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(cur3, cur + long.len() as u64 + 3);
        let EventsRead { events: ev, .. } = read_events(&path, cur3, false).unwrap();
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].seq, 2);
    }

    #[test]
    fn an_ended_trainer_is_read_to_the_end_whatever_it_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let metric = |step: u32| {
            format!(
                "{{\"type\":\"metric\",\"seq\":{step},\"ts\":1,\"step\":{step},\"total_steps\":100000,\"training_loss\":1.5}}\n"
            )
        };
        // A flood of metrics (more than one read window), a line over the limit, and `done`
        // without its newline: the way a trainer killed mid-print or a runaway print leaves it.
        let flood: String = (1..=200_000).map(metric).collect();
        assert!(flood.len() as u64 > MAX_EVENT_LINE);
        let long = "y".repeat((MAX_EVENT_LINE + 10) as usize);
        std::fs::write(
            &path,
            format!(
                "{flood}{long}\n{{\"type\":\"done\",\"seq\":200001,\"ts\":2,\"summary\":{{}}}}"
            ),
        )
        .unwrap();
        let (mut cursor, mut events, mut reads) = (0, Vec::new(), 0);
        loop {
            let r = read_events(&path, cursor, true).unwrap();
            reads += 1;
            events.extend(r.events);
            cursor = r.cursor;
            if r.drained {
                break;
            }
            assert!(reads < 10, "reading never ends");
        }
        assert!(reads > 1, "a flood takes more than one read");
        assert_eq!(events.len(), 200_002);
        assert!(matches!(events[200_000].event, TrainerEvent::Log { .. }));
        assert!(matches!(
            events.last().unwrap().event,
            TrainerEvent::Done { .. }
        ));
        // An ended trainer whose last line is over the limit and has no newline is done too.
        let tail = dir.path().join("tail.jsonl");
        std::fs::write(&tail, "z".repeat((MAX_EVENT_LINE + 3) as usize)).unwrap();
        let r = read_events(&tail, 0, true).unwrap();
        assert!(r.drained && r.cursor == MAX_EVENT_LINE + 3 && r.events.len() == 1);
        // While it runs, the same last line waits for its newline.
        let done_at = (flood.len() + long.len() + 1) as u64;
        let r = read_events(&path, done_at, false).unwrap();
        assert!(r.events.is_empty() && r.cursor == done_at && !r.drained);
    }
}
