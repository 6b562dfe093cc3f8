//! The one `unsafe` module of this crate: a read-only memory mapping of a kernel BTF file, so
//! vmlinux BTF (several MiB) is shared with the page cache instead of copied into every process.

#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::AsRawFd;

/// `SYSFS_MAGIC` from `<linux/magic.h>`.
const SYSFS_MAGIC: i64 = 0x6265_6572;

/// Whether `file` lives on sysfs.
fn is_sysfs(file: &File) -> bool {
    let mut st = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: `file` is an open fd for the call; `st` is a writable statfs buffer.
    if unsafe { libc::fstatfs(file.as_raw_fd(), st.as_mut_ptr()) } != 0 {
        return false;
    }
    // SAFETY: fstatfs returned 0, so it filled `st` (which was zeroed before as well).
    let st = unsafe { st.assume_init() };
    #[allow(clippy::unnecessary_cast)] // f_type is i64 on x86_64 but not on every target
    let magic = st.f_type as i64;
    magic == SYSFS_MAGIC
}

/// A read-only private file mapping, unmapped on drop.
pub(crate) struct Mmap {
    ptr: *const u8,
    len: usize,
}

// SAFETY: the mapping is PROT_READ and never written through; the pointer is only turned into a
// shared slice, so sharing or sending it between threads is as safe as sharing a `&[u8]`.
unsafe impl Send for Mmap {}
// SAFETY: see `Send` above: only shared, read-only access exists.
unsafe impl Sync for Mmap {}

impl Mmap {
    /// Maps `len` bytes of `file` (PROT_READ, MAP_PRIVATE). `None` when the kernel refuses, as for
    /// sysfs BTF files before Linux 6.16 — the caller then reads the file instead.
    ///
    /// Only sysfs files are mapped: the slice handed out assumes the bytes never change, which holds
    /// for kernel-generated sysfs blobs but not for ordinary files another process may rewrite or
    /// truncate (undefined behaviour, or SIGBUS).
    pub(crate) fn map(file: &File, len: usize) -> Option<Mmap> {
        if len == 0 || !is_sysfs(file) {
            return None;
        }
        // SAFETY: a fresh mapping at a kernel-chosen address with a valid fd; no existing memory is
        // affected. The result is checked against MAP_FAILED before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            log::debug!(
                "mmap of BTF refused ({}), falling back to read",
                std::io::Error::last_os_error()
            );
            return None;
        }
        Some(Mmap {
            ptr: ptr as *const u8,
            len,
        })
    }
}

impl AsRef<[u8]> for Mmap {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr` is a live PROT_READ mapping of exactly `len` bytes that stays mapped until
        // `self` is dropped, and the returned slice borrows `self`. The file is a kernel-generated
        // sysfs blob that does not change size while the kernel runs.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the region `map` created; no slice into it outlives `self`.
        unsafe {
            libc::munmap(self.ptr as *mut libc::c_void, self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn ordinary_files_are_never_mapped() {
        let path = std::env::temp_dir().join(format!("bpfload-mmap-{}", std::process::id()));
        let mut f = File::create(&path).unwrap();
        f.write_all(&[0u8; 4096]).unwrap();
        let f = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(!is_sysfs(&f));
        assert!(Mmap::map(&f, 4096).is_none());
    }

    #[test]
    fn vmlinux_btf_is_on_sysfs() {
        let Ok(f) = File::open(crate::kernel::VMLINUX_PATH) else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true: {} must exist",
                crate::kernel::VMLINUX_PATH
            );
            eprintln!(
                "SKIP vmlinux_btf_is_on_sysfs: no {}",
                crate::kernel::VMLINUX_PATH
            );
            return;
        };
        assert!(is_sysfs(&f));
    }
}
