//! Store work stays off the async workers. A redb commit fsyncs (milliseconds on a good disk,
//! seconds on a busy one); on a tokio worker it would stall every connection, feed and timer
//! scheduled there. So async code reaches the store through [`off_runtime`], which runs the
//! work on the blocking pool, and the store checks it: opening a transaction on a thread of a
//! multi-threaded runtime outside [`off_runtime`] is logged once per call site (a warning
//! naming the file and line), and panics when `BRIGHTRUN_STRICT_STORE=1` (debug builds).
//! Sync code with no runtime (plain tests, work before the runtime starts) and current-thread
//! runtimes (`#[tokio::test]` bodies) are not checked: nothing else waits on their thread.
//!
//! Not every async path goes through [`off_runtime`] yet (the engine's own async methods
//! still commit inline): the warnings list them, and the strict mode is how the conversion
//! is driven to zero before it becomes the default.

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
        Ok(h) => h.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread,
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
    static SEEN: std::sync::Mutex<Vec<(&str, u32)>> = std::sync::Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if !seen.contains(&(at.file(), at.line())) {
        seen.push((at.file(), at.line()));
        tracing::warn!("{RULE} ({at})");
    }
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
