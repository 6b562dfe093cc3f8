//! User-space mapping of a `BPF_MAP_TYPE_ARENA` map (`mmap` of the map fd), as libbpf makes it in
//! `bpf_object__create_maps`.
//!
//! The mapping matters twice: the kernel learns the arena's user address (`user_vm_start`) from the
//! first `mmap` when the map has no `map_extra`, and programs' `ld_imm64` of arena globals resolve
//! to that address at load time, so the mapping must exist before programs load; and it is the only
//! way to write the initial values of `__arena` globals (arena maps have no element commands).
//! The pages themselves live as long as the map does; unmapping only drops this process' view.
//!
//! Memory model: the pages are shared with BPF programs, which may write them at any time. Access
//! goes through [`ArenaMapping::read`] / [`ArenaMapping::write`], which copy through raw pointers
//! and never hand out Rust references into the shared pages.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;

use crate::uapi::bpf_map_type;

/// `BPF_F_SEGV_ON_FAULT`: touching an arena page that is not allocated raises SIGSEGV in user space
/// instead of allocating it.
pub const BPF_F_SEGV_ON_FAULT: u32 = 1 << 17;

/// The system page size (`sysconf(_SC_PAGESIZE)`).
pub fn page_size() -> usize {
    // SAFETY: sysconf only reads a configuration value; it has no memory-safety preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(v)
        .ok()
        .filter(|v| v.is_power_of_two())
        .unwrap_or(4096)
}

/// An arena's shared mapping; unmapped on drop.
#[derive(Debug)]
pub struct ArenaMapping {
    ptr: NonNull<u8>,
    len: usize,
    /// The map has `BPF_F_SEGV_ON_FAULT`: reads and writes through this type are refused because
    /// touching an unallocated page would kill the process.
    segv_on_fault: bool,
}

// SAFETY: the mapping is plain shared memory owned by this value; `write` takes `&mut self` and
// `read` copies without creating references, so sharing or moving it across threads adds no data
// race that Rust code can observe beyond what BPF programs already do to the same pages.
unsafe impl Send for ArenaMapping {}
// SAFETY: see `Send`; `&self` methods only read through raw pointers.
unsafe impl Sync for ArenaMapping {}

/// Maps the whole arena behind `fd` (`max_entries` pages) read-write and shared.
///
/// `addr_hint` is the map's `map_extra`: when non-zero the kernel only accepts a mapping at exactly
/// that address. libbpf passes `MAP_FIXED` there, which silently replaces whatever this process had
/// mapped at that address; this wrapper uses `MAP_FIXED_NOREPLACE` instead and fails with `EEXIST`
/// if the range is taken, so it can never clobber memory Rust owns.
pub fn mmap_arena(fd: BorrowedFd<'_>, addr_hint: u64) -> io::Result<ArenaMapping> {
    let info =
        crate::info::map_info(fd).map_err(|e| io::Error::from_raw_os_error(e.errno().raw()))?;
    if info.type_ != bpf_map_type::BPF_MAP_TYPE_ARENA as u32 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("map type {} is not an arena", info.type_),
        ));
    }
    let len = (info.max_entries as usize)
        .checked_mul(page_size())
        .filter(|&l| l != 0)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let flags = if addr_hint != 0 {
        libc::MAP_SHARED | libc::MAP_FIXED_NOREPLACE
    } else {
        libc::MAP_SHARED
    };
    // SAFETY: a new shared mapping of a BPF map fd; with MAP_FIXED_NOREPLACE the kernel refuses to
    // replace an existing mapping, so no memory this process already uses is affected. The result
    // is checked against MAP_FAILED before use.
    let p = unsafe {
        libc::mmap(
            addr_hint as usize as *mut libc::c_void,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            fd.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    let Some(ptr) = NonNull::new(p.cast::<u8>()) else {
        return Err(io::Error::from_raw_os_error(libc::EFAULT));
    };
    let m = ArenaMapping {
        ptr,
        len,
        segv_on_fault: info.map_flags & BPF_F_SEGV_ON_FAULT != 0,
    };
    // Kernels before 4.17 treat MAP_FIXED_NOREPLACE as a hint; such a mapping is useless here.
    if addr_hint != 0 && m.addr() != addr_hint {
        return Err(io::Error::from_raw_os_error(libc::EEXIST));
    }
    Ok(m)
}

impl ArenaMapping {
    /// The user address of the first arena page (the kernel's `user_vm_start`).
    pub fn addr(&self) -> u64 {
        self.ptr.as_ptr() as usize as u64
    }
    /// Length in bytes (`max_entries` pages).
    pub fn len(&self) -> usize {
        self.len
    }
    /// Always false: an arena has at least one page.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Raw pointer to the first page, for callers that share pointers with BPF programs.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    fn check(&self, off: usize, n: usize) -> io::Result<()> {
        if self.segv_on_fault {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "arena has BPF_F_SEGV_ON_FAULT: touching an unallocated page would raise SIGSEGV",
            ));
        }
        match off.checked_add(n) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("range {off}+{n} is outside the {}-byte arena", self.len),
            )),
        }
    }

    /// Copies `buf.len()` bytes at byte offset `off` out of the arena. Touching a page that is not
    /// allocated yet allocates it (the kernel's arena fault handler).
    pub fn read(&self, off: usize, buf: &mut [u8]) -> io::Result<()> {
        self.check(off, buf.len())?;
        // SAFETY: `off + buf.len()` is within the live mapping (checked above); the source is
        // shared memory that is not aliased by any Rust reference, and `buf` is a distinct
        // allocation.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(off), buf.as_mut_ptr(), buf.len())
        };
        Ok(())
    }

    /// Copies `data` into the arena at byte offset `off`.
    pub fn write(&mut self, off: usize, data: &[u8]) -> io::Result<()> {
        self.check(off, data.len())?;
        // SAFETY: the destination range is inside the live read-write mapping (checked above) and
        // is not aliased by any Rust reference; `data` cannot overlap it (it is not handed out).
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.as_ptr().add(off), data.len())
        };
        Ok(())
    }
}

impl Drop for ArenaMapping {
    fn drop(&mut self) {
        // SAFETY: exactly the range returned by mmap, unmapped once; no references into it exist.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}
