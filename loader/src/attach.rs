//! Attach targets of BTF-attached programs (libbpf's `libbpf_prepare_prog_load` for
//! `SEC_ATTACH_BTF`, `libbpf_find_attach_btf_id`, `find_kernel_btf_id`,
//! `libbpf_find_prog_btf_id`):
//! - `fentry/`, `fexit/`, `fmod_ret/`, `lsm/`, `tp_btf/`, `iter/`: the text after the first '/' of
//!   the section names a kernel function (optionally `module:function`); it is looked up with
//!   the attach type's prefix and kind (`btf_trace_` TYPEDEF for raw tracepoints, `bpf_lsm_` FUNC
//!   for LSM, `bpf_iter_` FUNC for iterators, FUNC otherwise) in vmlinux, then in modules;
//! - `freplace/` (and any program given a target program fd): the function is looked up in the
//!   target program's BTF (`BPF_OBJ_GET_INFO_BY_FD` → `btf_id` → `BPF_BTF_GET_FD_BY_ID`).

use std::os::fd::{AsFd, BorrowedFd};

use aya_obj::generated::{bpf_attach_type as at, bpf_prog_type as pt};
use bpfload_btf::{BtfData, Kind};

use crate::externs::{BtfSource, ExternError, KernelBtfs};

/// Errors of attach target resolution; each names the program.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AttachError {
    /// The section names no target and none was set.
    #[error("prog '{prog}': no BTF-based attach target is specified in section '{section}'; set one with Loader::set_attach_target() before load")]
    NoTarget {
        /// Program name.
        prog: String,
        /// Section name.
        section: String,
    },
    /// An extension (freplace) program needs the target program's fd.
    #[error("prog '{prog}': attach program FD is not set; freplace programs need Loader::set_attach_target(prog, Some(target_prog_fd), function)")]
    NoTargetProg {
        /// Program name.
        prog: String,
    },
    /// The target is not in kernel BTF.
    #[error("prog '{prog}': failed to find kernel BTF type ID of '{target}' (looked for {kind} '{lookup}' in vmlinux and module BTFs)")]
    NotFound {
        /// Program name.
        prog: String,
        /// The target as written.
        target: String,
        /// The BTF kind looked for.
        kind: &'static str,
        /// The name looked for (with prefix).
        lookup: String,
    },
    /// The target program's BTF could not be read, or lacks the function.
    #[error("prog '{prog}': failed to find BPF program BTF ID for '{target}': {msg}")]
    TargetProg {
        /// Program name.
        prog: String,
        /// Function name.
        target: String,
        /// What went wrong.
        msg: String,
    },
    /// Kernel BTF could not be read.
    #[error("prog '{prog}': {source}")]
    KernelBtf {
        /// Program name.
        prog: String,
        /// The error.
        #[source]
        source: ExternError,
    },
}

/// The resolved target: what goes into `BPF_PROG_LOAD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttachBtf {
    /// `attach_btf_id`.
    pub btf_id: u32,
    /// Where the id lives: vmlinux or a module (whose fd goes in `attach_btf_obj_fd`), or `None`
    /// for an id in a target program's BTF (`attach_prog_fd` is passed instead).
    pub src: Option<BtfSource>,
}

/// libbpf's `btf_get_kernel_prefix_kind`.
pub fn prefix_kind(attach_type: u32) -> (&'static str, Kind) {
    match attach_type {
        x if x == at::BPF_TRACE_RAW_TP as u32 => ("btf_trace_", Kind::Typedef),
        x if x == at::BPF_LSM_MAC as u32 || x == at::BPF_LSM_CGROUP as u32 => {
            ("bpf_lsm_", Kind::Func)
        }
        x if x == at::BPF_TRACE_ITER as u32 => ("bpf_iter_", Kind::Func),
        _ => ("", Kind::Func),
    }
}

/// The vmlinux FUNC that [`resolve`] will look program `prog` (of the object being loaded) up
/// as, when its attach target is one: so all of a load's can be found in one pass over vmlinux
/// ([`KernelBtfs::prefetch_funcs`]). `None` where it will not (other kinds, a target program, a
/// named module); a miss here only costs that lookup its own pass.
pub(crate) fn vmlinux_func_target(
    prog: &crate::object::programs::Program,
    targets: &[crate::externs::wire::AttachTargetOpt],
) -> Option<String> {
    let def = prog.sec_def?;
    if def.flags & crate::object::sec_def::SEC_ATTACH_BTF == 0
        || def.prog_type == pt::BPF_PROG_TYPE_EXT as u32
    {
        return None;
    }
    let user = targets.iter().rev().find(|t| t.program == prog.name);
    if user.is_some_and(|u| u.prog_fd.is_some()) {
        return None;
    }
    let func = user
        .and_then(|u| u.func.as_deref())
        .or_else(|| prog.sec_name().split_once('/').map(|(_, t)| t))?;
    let func = match func.split_once(':') {
        Some(("vmlinux", f)) => f,
        Some(_) => return None,
        None => func,
    };
    let (prefix, kind) = prefix_kind(def.expected_attach_type);
    (kind == Kind::Func).then(|| format!("{prefix}{func}"))
}

/// libbpf's `find_kernel_btf_id`: `target` is `function` or `module:function`. The module part
/// is a prefix, as libbpf compares it with `strncmp(.., mod_len)`: vmlinux is searched when there
/// is none or it is a prefix of "vmlinux" (so `vmlinux:`, `vm:` and `:`), then each module whose
/// name starts with it. A module's lookup includes its vmlinux base (`btf__find_by_name_kind` on
/// split BTF): a vmlinux function named with a module gives the vmlinux id with that module's BTF
/// object, as in libbpf.
pub fn find_kernel_btf_id(
    prog: &str,
    target: &str,
    attach_type: u32,
    kernel: &KernelBtfs,
) -> Result<AttachBtf, AttachError> {
    let (module, func) = match target.split_once(':') {
        Some((m, f)) => (Some(m), f),
        None => (None, target),
    };
    let (prefix, kind) = prefix_kind(attach_type);
    let lookup = format!("{prefix}{func}");
    if module.is_none_or(|m| "vmlinux".starts_with(m)) {
        if let Some(id) = kernel.find_vmlinux(&lookup, kind) {
            return Ok(AttachBtf {
                btf_id: id,
                src: Some(BtfSource::Vmlinux),
            });
        }
    }
    let modules = kernel.modules().map_err(|source| AttachError::KernelBtf {
        prog: prog.into(),
        source,
    })?;
    for (i, m) in modules.iter().enumerate() {
        if module.is_some_and(|name| !m.name.starts_with(name)) {
            continue;
        }
        if let Some(id) = m.btf.btf().find_by_name_kind(&lookup, kind) {
            return Ok(AttachBtf {
                btf_id: id,
                src: Some(BtfSource::Module(i)),
            });
        }
    }
    Err(AttachError::NotFound {
        prog: prog.into(),
        target: target.into(),
        kind: kind.as_str(),
        lookup,
    })
}

/// libbpf's `libbpf_find_prog_btf_id`: the FUNC `func` in the BTF of the loaded program `prog_fd`.
pub fn find_prog_btf_id(
    prog: &str,
    func: &str,
    prog_fd: BorrowedFd<'_>,
    token: Option<BorrowedFd<'_>>,
) -> Result<u32, AttachError> {
    let err = |msg: String| AttachError::TargetProg {
        prog: prog.into(),
        target: func.into(),
        msg,
    };
    let info = bpfload_syscall::info::prog_info(prog_fd)
        .map_err(|e| err(format!("failed get_info_by_fd: {e}")))?;
    if info.btf_id == 0 {
        return Err(err("the target program doesn't have BTF".into()));
    }
    let btf_fd = bpfload_syscall::btf::get_fd_by_id(info.btf_id, token).map_err(|e| {
        // Under a token, BTF_GET_FD_BY_ID (19) must be delegated (kernel 6.15+).
        let hint = (e.errno() == bpfload_syscall::Errno::EPERM)
            .then(|| crate::diagnose::cmd_hint(token, 19))
            .flatten()
            .map(|h| format!("; {h}"))
            .unwrap_or_default();
        err(format!(
            "failed to get BTF {} of the program: {e}{hint}",
            info.btf_id
        ))
    })?;
    let raw = bpfload_syscall::info::btf_data(btf_fd.as_fd()).map_err(|e| {
        err(format!(
            "failed to read BTF {} of the program: {e}",
            info.btf_id
        ))
    })?;
    let data = BtfData::parse(raw).map_err(|e| {
        err(format!(
            "failed to parse BTF {} of the program: {e}",
            info.btf_id
        ))
    })?;
    data.btf()
        .find_by_name_kind(func, Kind::Func)
        .ok_or_else(|| err(format!("{func} is not found in prog's BTF")))
}

/// A user-set attach target (libbpf's `bpf_program__set_attach_target`).
#[derive(Debug, Clone, Copy)]
pub struct UserTarget<'a> {
    /// Target program (freplace, or fentry/fexit on a BPF program).
    pub prog_fd: Option<BorrowedFd<'a>>,
    /// Target function; `None` takes it from the section name.
    pub func: Option<&'a str>,
}

/// `libbpf_prepare_prog_load`'s attach-BTF step for one program of a `SEC_ATTACH_BTF` section.
pub fn resolve(
    prog: &str,
    section: &str,
    prog_type: u32,
    attach_type: u32,
    user: Option<UserTarget<'_>>,
    kernel: Option<&KernelBtfs>,
    token: Option<BorrowedFd<'_>>,
) -> Result<AttachBtf, AttachError> {
    let from_section = section.split_once('/').map(|(_, t)| t);
    let func = user.and_then(|u| u.func).or(from_section);
    let prog_fd = user.and_then(|u| u.prog_fd);
    let Some(func) = func else {
        return Err(AttachError::NoTarget {
            prog: prog.into(),
            section: section.into(),
        });
    };
    if prog_type == pt::BPF_PROG_TYPE_EXT as u32 || prog_fd.is_some() {
        let fd = prog_fd.ok_or_else(|| AttachError::NoTargetProg { prog: prog.into() })?;
        let id = find_prog_btf_id(prog, func, fd, token)?;
        return Ok(AttachBtf {
            btf_id: id,
            src: None,
        });
    }
    let owned;
    let kernel = match kernel {
        Some(k) => k,
        None => {
            owned = KernelBtfs::new().map_err(|source| AttachError::KernelBtf {
                prog: prog.into(),
                source,
            })?;
            &owned
        }
    };
    find_kernel_btf_id(prog, func, attach_type, kernel)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel() -> Option<KernelBtfs> {
        match KernelBtfs::new() {
            Ok(k) => Some(k),
            Err(e) => {
                crate::tests::skip_or_panic("kernel BTF", &format!("{e}"));
                None
            }
        }
    }

    #[test]
    fn prefixes_follow_attach_type() {
        assert_eq!(
            prefix_kind(at::BPF_TRACE_RAW_TP as u32),
            ("btf_trace_", Kind::Typedef)
        );
        assert_eq!(
            prefix_kind(at::BPF_LSM_MAC as u32),
            ("bpf_lsm_", Kind::Func)
        );
        assert_eq!(
            prefix_kind(at::BPF_TRACE_ITER as u32),
            ("bpf_iter_", Kind::Func)
        );
        assert_eq!(prefix_kind(at::BPF_TRACE_FENTRY as u32), ("", Kind::Func));
    }

    #[test]
    fn vmlinux_targets_resolve_to_the_named_type() {
        let Some(k) = kernel() else { return };
        let v = k.vmlinux();
        for (target, at, name, kind) in [
            (
                "task_newtask",
                at::BPF_TRACE_RAW_TP,
                "btf_trace_task_newtask",
                Kind::Typedef,
            ),
            ("task", at::BPF_TRACE_ITER, "bpf_iter_task", Kind::Func),
            (
                "file_open",
                at::BPF_LSM_MAC,
                "bpf_lsm_file_open",
                Kind::Func,
            ),
            (
                "vmlinux:bpf_fentry_test1",
                at::BPF_TRACE_FENTRY,
                "bpf_fentry_test1",
                Kind::Func,
            ),
            // The module part is a prefix, as libbpf's strncmp: any prefix of "vmlinux",
            // the empty one included, searches vmlinux (found by review).
            (
                "vm:bpf_fentry_test1",
                at::BPF_TRACE_FENTRY,
                "bpf_fentry_test1",
                Kind::Func,
            ),
            (
                ":bpf_fentry_test1",
                at::BPF_TRACE_FENTRY,
                "bpf_fentry_test1",
                Kind::Func,
            ),
        ] {
            let r = find_kernel_btf_id("p", target, at as u32, &k).unwrap();
            assert_eq!(r.src, Some(BtfSource::Vmlinux));
            assert_eq!(v.kind(r.btf_id).unwrap(), kind);
            assert_eq!(v.name(r.btf_id).unwrap(), name);
        }
        let e = find_kernel_btf_id("p", "no_such_function_xyz", at::BPF_TRACE_FENTRY as u32, &k)
            .unwrap_err();
        assert!(e.to_string().contains("no_such_function_xyz"), "{e}");
        // A named module restricts the search to that module: vmlinux functions are not found.
        let e = find_kernel_btf_id(
            "p",
            "no_such_module:bpf_fentry_test1",
            at::BPF_TRACE_FENTRY as u32,
            &k,
        )
        .unwrap_err();
        assert!(matches!(e, AttachError::NotFound { .. }), "{e}");
    }

    #[test]
    fn missing_target_names_the_api() {
        let e = resolve(
            "p",
            "fentry",
            pt::BPF_PROG_TYPE_TRACING as u32,
            at::BPF_TRACE_FENTRY as u32,
            None,
            None,
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("set_attach_target"), "{e}");
        let e = resolve(
            "p",
            "freplace/foo",
            pt::BPF_PROG_TYPE_EXT as u32,
            0,
            None,
            None,
            None,
        )
        .unwrap_err();
        assert!(matches!(e, AttachError::NoTargetProg { .. }), "{e}");
    }
}
