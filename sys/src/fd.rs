//! File-descriptor hygiene: every fd this crate returns is an `OwnedFd`, close-on-exec, and never 0, 1 or 2.
//!
//! Why never 0..=2: the UAPI uses fd value 0 as "no fd" in several attrs (libbpf relies on this for the token),
//! and a process started with stdin/stdout/stderr closed would otherwise receive a BPF object on one of them and
//! later write log output into it. libbpf's `ensure_good_fd` moves such fds with `F_DUPFD_CLOEXEC` to >= 3 and
//! closes the original; so do we. Kernel bpf fds are always created `O_CLOEXEC`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Takes ownership of `fd` (just returned by the kernel) and makes sure it is >= 3 and close-on-exec.
///
/// On failure the original fd is closed.
pub(crate) fn own_good_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: `fd` was just returned by a successful fd-creating call and nothing else owns it; from here on
    // the OwnedFd closes it exactly once.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    if fd > 2 {
        return Ok(owned);
    }
    // Moves `owned` above 2; `owned` is dropped (closed) on both paths.
    dup_good(std::os::fd::AsFd::as_fd(&owned))
}

/// Duplicates `fd` to a new close-on-exec fd >= 3 (`fcntl(F_DUPFD_CLOEXEC, 3)`), like libbpf's `dup_good_fd`.
pub fn dup_good(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC only reads the borrowed fd (valid for the call) and creates a new one.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Converts a bpf(2) return value into an owned, good fd. A value that does not fit an fd is EINVAL.
pub(crate) fn from_ret(cmd: &'static str, ret: i64) -> Result<OwnedFd, crate::SysError> {
    let fd = RawFd::try_from(ret).map_err(|_| {
        crate::SysError::invalid(
            cmd,
            crate::Errno::EINVAL,
            format!("kernel returned {ret}, not an fd"),
        )
    })?;
    if fd < 0 {
        return Err(crate::SysError::invalid(
            cmd,
            crate::Errno::EINVAL,
            format!("kernel returned {ret}, not an fd"),
        ));
    }
    own_good_fd(fd).map_err(|e| {
        crate::SysError::kernel(
            cmd,
            crate::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EBADF)),
        )
    })
}

/// The raw value of an optional borrowed fd, 0 meaning "none" as in the UAPI.
pub(crate) fn raw_or_zero(fd: Option<BorrowedFd<'_>>) -> u32 {
    fd.map_or(0, |f| f.as_raw_fd() as u32)
}

/// Whether `fd` has `FD_CLOEXEC` set (tests use this to check hygiene).
pub fn is_cloexec(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: F_GETFD only reads flags of the borrowed fd.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(flags & libc::FD_CLOEXEC != 0)
}

/// Number of open fds of this process (entries in `/proc/self/fd`, minus the one used to read it). Tests use
/// it to prove that error paths leak nothing.
pub fn count_open_fds() -> io::Result<usize> {
    let n = std::fs::read_dir("/proc/self/fd")?.count();
    Ok(n.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn dup_good_is_cloexec_and_high() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let d = dup_good(f.as_fd()).unwrap();
        assert!(d.as_raw_fd() >= 3);
        assert!(is_cloexec(d.as_fd()).unwrap());
    }
}
