//! File-descriptor hygiene: every fd this crate returns is an `OwnedFd`, close-on-exec, and never 0, 1 or 2.
//!
//! Why never 0..=2: the UAPI uses fd value 0 as "no fd" in several attrs (libbpf relies on this for the token),
//! and a process started with stdin/stdout/stderr closed would otherwise receive a BPF object on one of them and
//! later write log output into it. libbpf's `ensure_good_fd` moves such fds with `F_DUPFD_CLOEXEC` to >= 3 and
//! closes the original; so do we. Kernel bpf fds are always created `O_CLOEXEC`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Takes ownership of `fd` and makes sure it is >= 3 and close-on-exec.
///
/// On failure the original fd is closed.
///
/// # Safety
/// `fd` must be an open fd that nothing else owns or will close (just created by a syscall, or released with
/// `into_raw_fd`): the returned `OwnedFd` closes it.
pub(crate) unsafe fn own_good_fd(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: by this function's contract nothing else owns `fd`; from here on the OwnedFd closes it exactly
    // once.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    if fd > 2 {
        return Ok(owned);
    }
    // Moves `owned` above 2; `owned` is dropped (closed) on both paths.
    dup_good(&owned)
}

/// Duplicates `fd` to a new close-on-exec fd >= 3 (`fcntl(F_DUPFD_CLOEXEC, 3)`), like libbpf's `dup_good_fd`.
/// Takes anything that lends an fd (`BorrowedFd`, `&OwnedFd`, `&File`, or an owned value, which is then closed
/// after the dup).
pub fn dup_good(fd: impl AsFd) -> io::Result<OwnedFd> {
    let fd = fd.as_fd();
    // SAFETY: F_DUPFD_CLOEXEC only reads the borrowed fd (valid for the call) and creates a new one.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Converts a bpf(2) fd result into an owned, good fd. A value that does not fit an fd is EINVAL.
///
/// # Safety
/// `ret` must be a new fd that nothing else owns: `syscall::bpf`'s successful result for a command that
/// creates an fd (the kernel's new fd, or the `OwnedFd` a fake handed over). Use `syscall::bpf_fd`, which checks
/// the command.
pub(crate) unsafe fn from_ret(cmd: &'static str, ret: i64) -> Result<OwnedFd, crate::SysError> {
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
    // SAFETY: by this function's contract `fd` is a new fd nothing else owns.
    unsafe { own_good_fd(fd) }.map_err(|e| {
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

/// A placeholder fd (an empty memfd, close-on-exec, >= 3), like libbpf's `create_placeholder_fd`: reserve an
/// fd number early (e.g. to write into relocated instructions) and later make it refer to the real object
/// with [`replace`].
pub fn placeholder() -> io::Result<OwnedFd> {
    const NAME: &std::ffi::CStr = c"bpfload-placeholder-fd";
    // MFD_NOEXEC_SEAL (6.3+) avoids a kernel warning about executable memfds; older kernels reject it.
    // SAFETY: NAME is NUL-terminated and static; memfd_create only creates a new fd.
    let mut raw =
        unsafe { libc::memfd_create(NAME.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_NOEXEC_SEAL) };
    if raw < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
        // SAFETY: as above.
        raw = unsafe { libc::memfd_create(NAME.as_ptr(), libc::MFD_CLOEXEC) };
    }
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: memfd_create just created `raw`; nothing else has it.
    unsafe { own_good_fd(raw) }
}

/// Makes `target` refer to the same object as `src` (`dup3(src, target, O_CLOEXEC)`), keeping `target`'s fd
/// number, like libbpf's `reuse_fd`. What `target` referred to before is closed by the kernel.
pub fn replace(target: &mut OwnedFd, src: BorrowedFd<'_>) -> io::Result<()> {
    if target.as_raw_fd() == src.as_raw_fd() {
        return Ok(());
    }
    // SAFETY: `target` is exclusively borrowed and owned, so no one else observes its number changing objects;
    // `src` is valid for the call. dup3 atomically closes the old file behind `target` and installs src's.
    let r = unsafe { libc::dup3(src.as_raw_fd(), target.as_raw_fd(), libc::O_CLOEXEC) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// What kind of BPF object an fd refers to, from `/proc/self/fd` (`anon_inode:bpf-map`, ...).
///
/// `BPF_OBJ_GET_INFO_BY_FD` dispatches on the fd's type, so asking for map info on a program fd returns
/// program info in the map-info buffer. Check the kind first when the fd comes from outside (a pin).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjKind {
    /// `anon_inode:bpf-map`
    Map,
    /// `anon_inode:bpf-prog`
    Prog,
    /// `anon_inode:bpf_link`
    Link,
    /// `anon_inode:btf`
    Btf,
    /// A BPF token: a pseudo file named `bpf-token` on its bpffs, shown as `<mount>/bpf-token (deleted)`.
    Token,
    /// Anything else, with the link text.
    Other(String),
}

/// The kind of object behind `fd` (one `readlink` on `/proc/self/fd/N`).
pub fn kind(fd: BorrowedFd<'_>) -> io::Result<ObjKind> {
    let target = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
    let text = target.to_string_lossy();
    Ok(match text.as_ref() {
        "anon_inode:bpf-map" => ObjKind::Map,
        "anon_inode:bpf-prog" => ObjKind::Prog,
        "anon_inode:bpf_link" => ObjKind::Link,
        "anon_inode:btf" => ObjKind::Btf,
        t if t.ends_with("/bpf-token (deleted)") => ObjKind::Token,
        other => ObjKind::Other(other.to_string()),
    })
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
        // Also from an owned value and a reference.
        assert!(dup_good(&d).unwrap().as_raw_fd() >= 3);
        assert!(dup_good(d).unwrap().as_raw_fd() >= 3);
    }

    #[test]
    fn placeholder_then_replace_keeps_the_number() {
        let mut p = placeholder().unwrap();
        assert!(p.as_raw_fd() >= 3);
        assert!(is_cloexec(p.as_fd()).unwrap());
        let n = p.as_raw_fd();
        assert!(
            matches!(kind(p.as_fd()).unwrap(), ObjKind::Other(s) if s.contains("bpfload-placeholder-fd"))
        );
        let f = std::fs::File::open("/dev/null").unwrap();
        replace(&mut p, f.as_fd()).unwrap();
        assert_eq!(p.as_raw_fd(), n);
        assert!(is_cloexec(p.as_fd()).unwrap());
        assert_eq!(kind(p.as_fd()).unwrap(), ObjKind::Other("/dev/null".into()));
    }
}
