//! A full file system, named. "No space left on device" alone does not say which device: a
//! person with the data dir on one disk and the trainer's cache on another needs the file
//! system (its mount point and type) and what is free there.

use std::path::{Path, PathBuf};

/// A full file system or an exhausted quota (the engine's `space::is_full` also looks
/// through wrapping errors).
pub fn is_full_io(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    ) || matches!(e.raw_os_error(), Some(code) if code == libc::ENOSPC || code == libc::EDQUOT)
}

/// The file system holding `path`: "MOUNT (TYPE)" from the mount table, or the nearest
/// existing folder when the table cannot be read.
pub fn filesystem_of(path: &Path) -> String {
    let existing = nearest_existing(path);
    let real = std::fs::canonicalize(&existing).unwrap_or(existing);
    match std::fs::read_to_string("/proc/self/mounts") {
        Ok(table) => mount_for(&table, &real).unwrap_or_else(|| real.display().to_string()),
        Err(_) => real.display().to_string(),
    }
}

/// Bytes free to an unprivileged writer on the file system holding `path`.
pub fn free_bytes(path: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let dir = nearest_existing(path);
        let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `c` is a valid NUL-terminated path and `st` a writable statvfs.
        if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
            return None;
        }
        Some(st.f_bavail as u64 * st.f_frsize as u64)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// What to say of a write to `path` that found its file system full: which file system,
/// and what is free there now.
pub fn describe_full(path: &Path) -> String {
    let free = free_bytes(path)
        .map(|b| format!("{} free", human(b)))
        .unwrap_or_else(|| "free space unknown".into());
    format!("the file system {} is full ({free})", filesystem_of(path))
}

/// An I/O error's text, with the full file system named when that is what it is.
pub fn io_detail(path: &Path, e: &std::io::Error) -> String {
    if is_full_io(e) {
        format!("{e}: {}", describe_full(path))
    } else {
        e.to_string()
    }
}

fn nearest_existing(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    while !p.exists() {
        if !p.pop() {
            return PathBuf::from("/");
        }
    }
    p
}

/// The longest mount point of the table that holds `path`.
fn mount_for(table: &str, path: &Path) -> Option<String> {
    table
        .lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (_dev, mount, kind) = (f.next()?, f.next()?, f.next()?);
            // The table escapes spaces and the like as octal (`\040`).
            let mount = unescape(mount);
            path.starts_with(&mount)
                .then_some((mount, kind.to_string()))
        })
        .max_by_key(|(m, _)| m.len())
        .map(|(m, kind)| format!("{m} ({kind})"))
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8)
        {
            out.push(v as char);
            i += 4;
            continue;
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

fn human(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_mount_point_wins() {
        let table = "/dev/vda / ext4 rw 0 0\ntmpfs /tmp tmpfs rw 0 0\n\
                     tmpfs /tmp/small\\040disk tmpfs rw 0 0\n";
        assert_eq!(
            mount_for(table, Path::new("/tmp/small disk/x")).as_deref(),
            Some("/tmp/small disk (tmpfs)")
        );
        assert_eq!(
            mount_for(table, Path::new("/tmpx")).as_deref(),
            Some("/ (ext4)")
        );
        assert_eq!(
            mount_for(table, Path::new("/tmp/a")).as_deref(),
            Some("/tmp (tmpfs)")
        );
    }

    #[test]
    fn full_file_systems_are_described() {
        assert!(is_full_io(&std::io::Error::from_raw_os_error(libc::ENOSPC)));
        assert!(
            describe_full(Path::new("/nonexistent/dir/file")).starts_with("the file system / (")
        );
        assert_eq!(human(1_500_000), "1.5 MB");
    }
}
