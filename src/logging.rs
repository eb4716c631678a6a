//! Logs go to a daily-rotated file in the state dir, never to the terminal the TUI owns.

use std::path::Path;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// Starts file logging; keep the guard alive until exit so buffered lines are flushed.
///
/// The log dir is 0700 and its files 0600 whatever the umask: logs quote dataset names,
/// paths and errors. The appender takes no mode, so the files it made are narrowed here; a
/// file it rotates to later is still behind the 0700 folder and is narrowed on the next start.
pub fn init(log_dir: &Path) -> Option<WorkerGuard> {
    brightrun_engine::private::create_dir_all(log_dir).ok()?;
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("brightrun")
        .filename_suffix("log")
        .max_log_files(14)
        .build(log_dir)
        .ok()?;
    restrict_logs(log_dir);
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = EnvFilter::try_from_env("BRIGHTRUN_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,redb=warn,hyper=warn,reqwest=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init()
        .ok()?;
    Some(guard)
}

/// Narrows every file in the log dir to 0600.
fn restrict_logs(log_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(log_dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = brightrun_engine::private::restrict_file(&entry.path());
        }
    }
}
