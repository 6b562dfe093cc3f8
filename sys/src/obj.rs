//! Pinning: `BPF_OBJ_PIN`, `BPF_OBJ_GET`, and the bpffs check that makes pin reuse safe.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::attr::{attr_end, Attr};
use crate::errno::Errno;
use crate::error::SysError;
use crate::syscall::{bpf, bpf_fd};
use crate::uapi::{bpf_attr__bindgen_ty_5, bpf_cmd, BPF_F_PATH_FD};

/// `statfs` magic of bpffs (`BPF_FS_MAGIC` in `linux/magic.h`).
pub const BPF_FS_MAGIC: i64 = 0xcafe4a11;

/// `BPF_OBJ_PIN`/`BPF_OBJ_GET` attr size: `offsetofend(file_flags)` = 16 (we never pass `path_fd`).
const OBJ_ATTR_SIZE: u32 = attr_end!(bpf_attr__bindgen_ty_5, file_flags);

fn cpath(cmd: &'static str, path: &Path) -> Result<CString, SysError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        SysError::invalid(
            cmd,
            Errno::EINVAL,
            format!("path {} contains a NUL byte", path.display()),
        )
    })
}

/// Pins the map/program/link `fd` at `path` inside a bpffs (`BPF_OBJ_PIN`). EEXIST if the path exists.
pub fn pin(fd: BorrowedFd<'_>, path: &Path) -> Result<(), SysError> {
    const NAME: &str = "BPF_OBJ_PIN";
    let c = cpath(NAME, path)?;
    let mut attr = Attr::zeroed();
    let o = attr.obj_mut();
    o.pathname = c.as_ptr() as u64;
    o.bpf_fd = fd.as_raw_fd() as u32;
    bpf(bpf_cmd::BPF_OBJ_PIN, &mut attr, OBJ_ATTR_SIZE)
        .map(drop)
        .map_err(|e| SysError::kernel(NAME, e))
}

/// Opens the object pinned at `path` (`BPF_OBJ_GET`). `flags`: 0, `BPF_F_RDONLY` or `BPF_F_WRONLY`.
///
/// This does not check what kind of object it is, nor that `path` is on bpffs; see [`is_bpffs`] and
/// [`crate::info`] before reusing a pin.
pub fn get(path: &Path, flags: u32) -> Result<OwnedFd, SysError> {
    const NAME: &str = "BPF_OBJ_GET";
    let c = cpath(NAME, path)?;
    let mut attr = Attr::zeroed();
    let o = attr.obj_mut();
    o.pathname = c.as_ptr() as u64;
    o.file_flags = flags;
    bpf_fd(bpf_cmd::BPF_OBJ_GET, &mut attr, OBJ_ATTR_SIZE)
}

/// `BPF_OBJ_GET` relative to a directory fd (`BPF_F_PATH_FD`, kernel 6.5+): opens `dir/name`.
///
/// Lets a caller check the directory once (an fd that cannot be swapped: [`is_bpffs_fd`], owner, mode) and
/// then resolve the pin name inside exactly that directory. `name` must be a single path component.
/// attr size `offsetofend(path_fd)` = 20.
pub fn get_in(
    dir: BorrowedFd<'_>,
    name: &std::ffi::OsStr,
    flags: u32,
) -> Result<OwnedFd, SysError> {
    const NAME: &str = "BPF_OBJ_GET";
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.contains(&b'/') || bytes == b"." || bytes == b".." {
        return Err(SysError::invalid(
            NAME,
            Errno::EINVAL,
            format!("{name:?} is not a single path component"),
        ));
    }
    let c = cpath(NAME, Path::new(name))?;
    let mut attr = Attr::zeroed();
    let o = attr.obj_mut();
    o.pathname = c.as_ptr() as u64;
    o.file_flags = flags | BPF_F_PATH_FD;
    o.path_fd = dir.as_raw_fd();
    bpf_fd(
        bpf_cmd::BPF_OBJ_GET,
        &mut attr,
        attr_end!(bpf_attr__bindgen_ty_5, path_fd),
    )
}

/// Whether the file behind `fd` (e.g. a directory opened with `O_PATH`) is on a bpffs (`fstatfs`).
pub fn is_bpffs_fd(fd: BorrowedFd<'_>) -> std::io::Result<bool> {
    let mut st = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: `fd` is valid for the call; `st` is a writable statfs buffer.
    let rc = unsafe { libc::fstatfs(fd.as_raw_fd(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fstatfs returned 0, so it filled `st` (and it was zeroed before).
    let st = unsafe { st.assume_init() };
    // f_type is i64 on x86_64 but narrower on some architectures.
    #[allow(clippy::unnecessary_cast)]
    Ok(st.f_type as i64 == BPF_FS_MAGIC)
}

/// Whether `path` lies on a bpffs (`statfs` f_type == `BPF_FS_MAGIC`). A pin path on any other filesystem is
/// something another user could have placed there; never reuse such a pin.
pub fn is_bpffs(path: &Path) -> std::io::Result<bool> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut st = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: `c` is a NUL-terminated path that lives across the call; `st` is a writable statfs buffer.
    let rc = unsafe { libc::statfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statfs returned 0, so it filled `st` (and it was zeroed before).
    let st = unsafe { st.assume_init() };
    // f_type is i64 on x86_64 but narrower on some architectures.
    #[allow(clippy::unnecessary_cast)]
    Ok(st.f_type as i64 == BPF_FS_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_is_not_bpffs() {
        assert!(!is_bpffs(Path::new("/proc")).unwrap());
    }

    #[test]
    fn get_in_refuses_paths_with_slashes() {
        let d = std::fs::File::open("/").unwrap();
        use std::os::fd::AsFd;
        for bad in ["", "a/b", "..", "."] {
            let e = get_in(d.as_fd(), std::ffi::OsStr::new(bad), 0).unwrap_err();
            assert_eq!(e.errno(), Errno::EINVAL, "{bad:?}");
        }
        assert!(!is_bpffs_fd(d.as_fd()).unwrap());
    }

    #[test]
    fn nul_in_path_is_refused() {
        let e = get(Path::new("/sys/fs/bpf/a\0b"), 0).unwrap_err();
        assert_eq!(e.errno(), Errno::EINVAL);
        assert!(e.detail().is_some());
    }
}
