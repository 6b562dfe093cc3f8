//! Links: `BPF_LINK_CREATE` (so far only the uprobe_multi form, which the feature probe for
//! `FEAT_UPROBE_MULTI_LINK` needs).

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use crate::attr::{attr_end, Attr};
use crate::error::SysError;
use crate::syscall::bpf_fd;
use crate::uapi::{bpf_attach_type, bpf_attr__bindgen_ty_14, bpf_cmd};

const CMD: &str = "BPF_LINK_CREATE";

/// `BPF_LINK_CREATE` with `attach_type = BPF_TRACE_UPROBE_MULTI`: uprobes at `offsets` of the
/// file at `path` for process `pid` (0: all). attr size `offsetofend(link_create)`, as libbpf.
pub fn create_uprobe_multi(
    prog: BorrowedFd<'_>,
    path: &CStr,
    offsets: &[u64],
    pid: u32,
) -> Result<OwnedFd, SysError> {
    let cnt = u32::try_from(offsets.len())
        .map_err(|_| SysError::invalid(CMD, crate::Errno::E2BIG, "too many offsets"))?;
    let mut attr = Attr::zeroed();
    let l = attr.link_create_mut();
    l.__bindgen_anon_1.prog_fd = prog.as_raw_fd() as u32;
    // No target fd for uprobe_multi; libbpf passes -1.
    l.__bindgen_anon_2.target_fd = u32::MAX;
    l.attach_type = bpf_attach_type::BPF_TRACE_UPROBE_MULTI as u32;
    // Field by field, never `uprobe_multi = ..{}`: assigning the whole struct would also copy its 4 trailing
    // padding bytes (attr bytes 60..64, inside the size passed) as uninitialised memory. The kernel requires
    // them to be zero (EINVAL otherwise), and `Attr` relies on every byte staying initialised. ref_ctr_offsets,
    // cookies and flags stay 0 from `Attr::zeroed`.
    l.__bindgen_anon_3.uprobe_multi.path = path.as_ptr() as u64;
    l.__bindgen_anon_3.uprobe_multi.offsets = offsets.as_ptr() as u64;
    l.__bindgen_anon_3.uprobe_multi.cnt = cnt;
    l.__bindgen_anon_3.uprobe_multi.pid = pid;
    bpf_fd(
        bpf_cmd::BPF_LINK_CREATE,
        &mut attr,
        attr_end!(bpf_attr__bindgen_ty_14, __bindgen_anon_3),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errno::Errno;
    use crate::syscall::with_syscall_override;
    use crate::test_util::junk_stack;
    use crate::uapi::bpf_attr__bindgen_ty_14__bindgen_ty_3__bindgen_ty_7 as UprobeMulti;
    use std::os::fd::AsFd;

    /// The kernel requires every byte after `uprobe_multi.pid` up to the size passed to be zero (it said
    /// EINVAL instead of EBADF when the struct's padding carried junk from the stack).
    #[test]
    fn uprobe_multi_attr_is_zero_after_pid() {
        let dev_null = std::fs::File::open("/dev/null").unwrap();
        let seen = std::rc::Rc::new(std::cell::RefCell::new(None));
        let s2 = seen.clone();
        let e = with_syscall_override(
            move |cmd, attr, size| {
                assert_eq!(cmd, bpf_cmd::BPF_LINK_CREATE);
                *s2.borrow_mut() = Some((attr.clone(), size as usize));
                Err(Errno::EBADF)
            },
            || {
                // Right before the call, so that no other call (malloc, ...) overwrites the junk first.
                junk_stack(0xAA);
                create_uprobe_multi(dev_null.as_fd(), c"/", &[0], 0x0102_0304).unwrap_err()
            },
        );
        assert_eq!(e.errno(), Errno::EBADF);
        let (attr, size) = seen.borrow_mut().take().unwrap();
        let union_at = core::mem::offset_of!(bpf_attr__bindgen_ty_14, __bindgen_anon_3);
        let pid_end = union_at + core::mem::offset_of!(UprobeMulti, pid) + 4;
        assert_eq!((pid_end, size), (60, 64));
        assert_eq!(attr.u32_at(pid_end - 4), 0x0102_0304);
        assert_eq!(
            attr.bytes()[pid_end..size],
            [0; 4],
            "bytes after uprobe_multi.pid: {attr:?}"
        );
    }
}
