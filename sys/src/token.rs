//! `BPF_TOKEN_CREATE` (kernel 6.9+, cmd 36).

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use crate::attr::{attr_end, Attr};
use crate::error::SysError;
use crate::syscall::bpf_fd;
use crate::uapi::{bpf_attr__bindgen_ty_20, bpf_cmd};

/// Creates a BPF token from an fd of the **root** of a bpffs mounted with `delegate_*` options
/// (`attr.token_create = {flags, bpffs_fd}`, size 8).
///
/// Errors the kernel gives (libbpf-behaviour.md §1.4): EINVAL (not a bpffs root, or a pre-6.9 kernel), EPERM
/// (the bpffs belongs to another user namespace, or no CAP_BPF there), EOPNOTSUPP (caller in the init user
/// namespace), ENOENT (nothing delegated).
pub fn create(bpffs_dir: BorrowedFd<'_>, flags: u32) -> Result<OwnedFd, SysError> {
    let mut attr = Attr::zeroed();
    let t = attr.token_create_mut();
    t.flags = flags;
    t.bpffs_fd = bpffs_dir.as_raw_fd() as u32;
    bpf_fd(
        bpf_cmd::BPF_TOKEN_CREATE,
        &mut attr,
        attr_end!(bpf_attr__bindgen_ty_20, bpffs_fd),
    )
}
