//! A full file system, named: the API crate's `space` (what clients need to say which file
//! system is full), and [`is_full`], which also looks inside the store's (redb's) errors.

pub use brightrun_api::space::*;

/// True when `e` (or any error it wraps) is a full file system or an exhausted quota.
pub fn is_full(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && is_full_io(io)
        {
            return true;
        }
        // redb's errors hold the I/O error without exposing it as their source.
        if let Some(redb::Error::Io(io)) = err.downcast_ref::<redb::Error>()
            && is_full_io(io)
        {
            return true;
        }
        cur = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_is_found_through_wrapping_errors() {
        let io = std::io::Error::from_raw_os_error(libc::ENOSPC);
        let wrapped = redb::Error::Io(io);
        assert!(is_full(&wrapped));
        assert!(!is_full(&redb::Error::Io(std::io::Error::other("x"))));
    }
}
