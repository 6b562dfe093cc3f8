//! Links: `BPF_LINK_CREATE` (so far only the uprobe_multi form, which the feature probe for
//! `FEAT_UPROBE_MULTI_LINK` needs).

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use crate::attr::{attr_end, Attr};
use crate::error::SysError;
use crate::fd::from_ret;
use crate::syscall::bpf;
use crate::uapi::{
    bpf_attach_type, bpf_attr__bindgen_ty_14, bpf_attr__bindgen_ty_14__bindgen_ty_3__bindgen_ty_7,
    bpf_cmd,
};

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
    l.__bindgen_anon_3.uprobe_multi = bpf_attr__bindgen_ty_14__bindgen_ty_3__bindgen_ty_7 {
        path: path.as_ptr() as u64,
        offsets: offsets.as_ptr() as u64,
        ref_ctr_offsets: 0,
        cookies: 0,
        cnt,
        flags: 0,
        pid,
    };
    let ret = bpf(
        bpf_cmd::BPF_LINK_CREATE,
        &mut attr,
        attr_end!(bpf_attr__bindgen_ty_14, __bindgen_anon_3),
    )
    .map_err(|e| SysError::kernel(CMD, e))?;
    from_ret(CMD, ret)
}
