//! Store work stays off the async workers. A redb commit fsyncs (milliseconds on a good disk,
//! seconds on a busy one); on a tokio worker it would stall every connection, feed and timer
//! scheduled there. So async code reaches the store through [`off_runtime`], which runs the
//! work on the blocking pool, and the store checks it: opening a transaction on a thread of a
//! multi-threaded runtime outside [`off_runtime`] is logged once per call site (a warning
//! naming the file and line), and panics when `BRIGHTRUN_STRICT_STORE=1` (debug builds).
//! With `BRIGHTRUN_STORE_VIOLATIONS=<file>` each offending call path is also appended to that
//! file: `scripts/test.sh` sets it for the whole suite and fails when anything was written,
//! so every path the end-to-end tests exercise is checked in the real daemon and binary.
//! Only tasks of a multi-threaded runtime are checked (its workers, and its blocking pool
//! outside [`off_runtime`]): sync code with no runtime, the future `block_on` runs (the CLI's
//! main, a test's body) and current-thread runtimes have their thread to themselves.

use std::cell::Cell;

thread_local! {
    /// Set while [`off_runtime`] runs its work on this (blocking-pool) thread.
    static OFF_RUNTIME: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` (store work) on tokio's blocking pool, marked as allowed to use the store: a
/// drop-in for `tokio::task::spawn_blocking` (the handle answers `f`'s value, or how it
/// failed to run).
pub fn off_runtime<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> tokio::task::JoinHandle<T> {
    tokio::task::spawn_blocking(move || {
        /// Clears the mark even when `f` panics (the pool reuses the thread).
        struct Unmark;
        impl Drop for Unmark {
            fn drop(&mut self) {
                OFF_RUNTIME.set(false);
            }
        }
        OFF_RUNTIME.set(true);
        let _unmark = Unmark;
        f()
    })
}

/// Whether this thread may open a store transaction (see the module doc).
pub(super) fn allowed_here() -> bool {
    if OFF_RUNTIME.get() {
        return true;
    }
    match tokio::runtime::Handle::try_current() {
        // Only a task shares its thread with other tasks; the future `block_on` runs (the
        // CLI's main, a test's body) has its thread to itself.
        Ok(h) => {
            h.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread
                || tokio::task::try_id().is_none()
        }
        Err(_) => true,
    }
}

/// Reports store work on an async worker (see the module doc): once per call site, or a panic
/// in strict mode.
#[track_caller]
pub(super) fn assert_off_runtime() {
    if allowed_here() {
        return;
    }
    let at = std::panic::Location::caller();
    const RULE: &str = "a store transaction on an async worker thread: async code reaches the store through store::off_runtime";
    if cfg!(debug_assertions) && strict() {
        panic!("{RULE} ({at})");
    }
    let report = std::env::var_os(REPORT_VARIABLE);
    // Who called: the store's own frames say little; the backtrace names the engine code.
    let path = report.as_ref().map(|_| engine_frames());
    let site = match &path {
        Some(frames) => frames.first().cloned().unwrap_or_else(|| at.to_string()),
        None => at.to_string(),
    };
    static SEEN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if seen.contains(&site) {
        return;
    }
    seen.push(site.clone());
    drop(seen);
    tracing::warn!("{RULE} ({site})");
    if let (Some(file), Some(frames)) = (report, path) {
        let line = format!("{RULE}: {}\n", frames.join(" <- "));
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
            .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
        if let Err(e) = written {
            tracing::warn!("writing {}: {e}", std::path::Path::new(&file).display());
        }
    }
}

/// The file that [`assert_off_runtime`] appends each offending call path to (one line each),
/// when set: the test suite sets it and fails when anything was written.
const REPORT_VARIABLE: &str = "BRIGHTRUN_STORE_VIOLATIONS";

/// The source locations of this workspace's frames on the stack, innermost first, without
/// the store's own (where the transaction opens): the path that reached the store.
fn engine_frames() -> Vec<String> {
    let trace = std::backtrace::Backtrace::force_capture().to_string();
    trace
        .lines()
        .filter_map(|l| l.trim().strip_prefix("at "))
        .filter(|at| !at.contains("/.cargo/") && !at.contains("/rustc/"))
        .filter(|at| !at.contains("/store/"))
        .take(8)
        .map(str::to_string)
        .collect()
}

fn strict() -> bool {
    static STRICT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *STRICT.get_or_init(|| std::env::var_os("BRIGHTRUN_STRICT_STORE").is_some_and(|v| v == "1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_multi_threaded_workers_outside_off_runtime_are_refused() {
        assert!(allowed_here(), "no runtime");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        rt.block_on(async {
            assert!(allowed_here(), "block_on's own future is no task");
            let on_worker = tokio::spawn(async { allowed_here() }).await.unwrap();
            assert!(!on_worker, "a worker thread");
            assert!(
                off_runtime(allowed_here).await.unwrap(),
                "inside off_runtime"
            );
            let _ = off_runtime(|| panic!("boom")).await;
            let after = tokio::task::spawn_blocking(allowed_here).await.unwrap();
            assert!(!after, "the mark does not outlive a panic");
            let plain = tokio::task::spawn_blocking(allowed_here).await.unwrap();
            assert!(!plain, "spawn_blocking without off_runtime is not marked");
        });
        let current = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert!(current.block_on(async { allowed_here() }), "current-thread");
    }
}
