//! Who holds the store. A second process that finds the store open names the holder from the
//! `.lock` file beside it; the holder takes an advisory lock on that file and writes itself
//! into it *before* opening the database, so the name a refused process reads is never one a
//! process that has since exited left behind.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::Path;

/// The held lock file; the advisory lock lasts as long as the store (the file stays open).
#[derive(Debug)]
pub(super) struct Holder {
    _file: File,
}

/// Takes the lock file, or says who holds it.
pub(super) fn acquire(lock_path: &Path) -> Result<Holder, String> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = match options.open(lock_path) {
        Ok(f) => f,
        // A lock file that cannot be opened does not stop the store: redb's own lock still
        // keeps a second process out, it just cannot be named.
        Err(e) => {
            tracing::warn!("cannot open {}: {e}", lock_path.display());
            return Ok(Holder {
                _file: File::open("/dev/null").map_err(|e| e.to_string())?,
            });
        }
    };
    match file.try_lock() {
        Ok(()) => {
            let exe = std::env::args().collect::<Vec<_>>().join(" ");
            let me = format!("pid {}: {}", std::process::id(), super::truncate(&exe, 200));
            let written = file
                .set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| file.write_all(me.as_bytes()));
            if let Err(e) = written {
                tracing::warn!("cannot write {}: {e}", lock_path.display());
            }
            Ok(Holder { _file: file })
        }
        Err(std::fs::TryLockError::WouldBlock) => Err(describe(&mut file)),
        Err(std::fs::TryLockError::Error(e)) => {
            tracing::warn!("cannot lock {}: {e}", lock_path.display());
            Ok(Holder { _file: file })
        }
    }
}

/// The holder as its lock file names it, when that process is alive; a holder that has
/// locked the file but not yet written to it is "starting".
fn describe(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    let text = text.trim();
    let pid = text
        .strip_prefix("pid ")
        .and_then(|r| r.split(':').next())
        .and_then(|p| p.trim().parse::<i32>().ok());
    match pid {
        Some(pid) if alive(pid) => text.to_string(),
        _ => "a BrightRun process that is starting".into(),
    }
}

fn alive(pid: i32) -> bool {
    #[cfg(unix)]
    // SAFETY: kill with signal 0 only checks that the process exists.
    unsafe {
        libc::kill(pid, 0) == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_is_named_and_a_stale_name_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("store.lock");
        // A dead process's leftover: the next holder replaces it.
        std::fs::write(&lock, "pid 999999999: old brightrun").unwrap();
        let held = acquire(&lock).expect("free");
        let text = std::fs::read_to_string(&lock).unwrap();
        assert!(
            text.starts_with(&format!("pid {}:", std::process::id())),
            "{text}"
        );
        // A second open file description is refused and names the holder.
        assert_eq!(acquire(&lock).unwrap_err(), text);
        drop(held);
        std::fs::write(&lock, "pid 999999999: old brightrun").unwrap();
        let mut f = File::open(&lock).unwrap();
        assert_eq!(describe(&mut f), "a BrightRun process that is starting");
    }
}
