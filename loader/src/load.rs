//! Program loading (`bpf_object_load_prog` + `libbpf_prepare_prog_load`): attributes from the SEC()
//! definition, func/line info when BTF is loaded, the token, and `.rodata` binding afterwards.

use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use aya_obj::generated::{bpf_attach_type as at, bpf_prog_type as pt};
use bpfload_syscall::{prog, LogOptions, ProgLoadAttr};

use crate::error::ProgramError;
use crate::features::{Feature, Features};
use crate::insn;
use crate::object::sec_def::{
    SEC_ATTACH_BTF, SEC_EXP_ATTACH_OPT, SEC_SLEEPABLE, SEC_USDT, SEC_XDP_FRAGS,
};
use crate::object::Object;
use crate::reloc::Linked;

/// `BPF_F_SLEEPABLE`.
const BPF_F_SLEEPABLE: u32 = 1 << 4;
/// `BPF_F_XDP_HAS_FRAGS`.
const BPF_F_XDP_HAS_FRAGS: u32 = 1 << 5;

/// The kernel version passed as `kern_version` when the object has no `version` section.
fn host_kern_version() -> u32 {
    static V: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *V.get_or_init(|| bpfload_syscall::util::kernel_version().unwrap_or(0))
}

/// The serial part of a program load: its SEC() definition, attach target and `fd_array`. The
/// extern state it reads is not shared across threads, so plans are made in program order before
/// the loads run in parallel.
pub(crate) struct Plan<'e> {
    /// `None` only together with `deferred` (unknown section).
    def: Option<&'static crate::object::sec_def::SecDef>,
    attach: Option<(u32, Option<BorrowedFd<'e>>, Option<BorrowedFd<'e>>)>,
    fd_array: Vec<std::os::fd::RawFd>,
    struct_ops: Option<crate::struct_ops::ProgAttach>,
    /// A failure of `libbpf_prepare_prog_load` (attach target, struct_ops), reported by the load
    /// step as libbpf reports it: after relocation, so the final instructions are kept.
    deferred: Option<ProgramError>,
}

pub(crate) fn plan_program<'e>(
    obj: &Object,
    l: &Linked,
    ext: &'e crate::externs::wire::ObjExterns<'_>,
) -> Result<Plan<'e>, ProgramError> {
    let p = &obj.programs[l.prog];
    // An unknown section fails at load time, after relocation (CO-RE included), as libbpf's
    // "missing BPF prog type, check ELF section name": the relocated instructions are kept.
    let Some(def) = p.sec_def else {
        return Ok(Plan {
            def: None,
            attach: None,
            fd_array: Vec::new(),
            struct_ops: None,
            deferred: Some(ProgramError::UnknownSection {
                section: p.sec_name().to_string(),
            }),
        });
    };
    let deferred = |e: ProgramError| Plan {
        def: Some(def),
        attach: None,
        fd_array: Vec::new(),
        struct_ops: None,
        deferred: Some(e),
    };
    // SEC_ATTACH_BTF: attach_btf_id (+ module BTF fd, or the target program for freplace).
    let attach = if def.flags & SEC_ATTACH_BTF != 0 {
        match ext.attach_target(
            &p.name,
            p.sec_name(),
            def.prog_type,
            def.expected_attach_type,
        ) {
            Ok(a) => Some(a),
            Err(e) => return Ok(deferred(e.into())),
        }
    } else {
        None
    };
    let fd_array = ext.fd_array();
    // struct_ops: attach_btf_id = the kernel struct, expected attach type = member index.
    let struct_ops = if def.prog_type == pt::BPF_PROG_TYPE_STRUCT_OPS as u32 {
        match ext.struct_ops_attach.get(l.prog).copied().flatten() {
            Some(a) => Some(a),
            None => {
                return Ok(deferred(ProgramError::Reloc(format!(
                    "struct_ops program '{}' is not referenced by any struct_ops map (EINVAL)",
                    p.name
                ))))
            }
        }
    } else {
        None
    };
    Ok(Plan {
        def: Some(def),
        attach,
        fd_array,
        struct_ops,
        deferred: None,
    })
}

/// The kernel part of a program load (safe to run on several threads at once).
#[allow(clippy::too_many_arguments)]
pub(crate) fn load_program(
    obj: &Object,
    l: &Linked,
    plan: &Plan<'_>,
    features: &Features,
    token: Option<BorrowedFd<'_>>,
    btf: Option<BorrowedFd<'_>>,
    rodata: &[BorrowedFd<'_>],
    log: &LogOptions,
) -> Result<OwnedFd, ProgramError> {
    let p = &obj.programs[l.prog];
    if let Some(e) = &plan.deferred {
        return Err(e.clone());
    }
    let Some(def) = plan.def else {
        return Err(ProgramError::UnknownSection {
            section: p.sec_name().to_string(),
        });
    };
    let attach = plan.attach;
    let fd_array = &plan.fd_array;
    let struct_ops = plan.struct_ops;
    // libbpf_prepare_prog_load.
    let mut expected_attach_type = def.expected_attach_type;
    if def.flags & SEC_EXP_ATTACH_OPT != 0 && !features.has(Feature::ExpAttachType) {
        expected_attach_type = 0;
    }
    let mut prog_flags = 0;
    if def.flags & SEC_SLEEPABLE != 0 {
        prog_flags |= BPF_F_SLEEPABLE;
    }
    if def.prog_type == pt::BPF_PROG_TYPE_XDP as u32 && def.flags & SEC_XDP_FRAGS != 0 {
        prog_flags |= BPF_F_XDP_HAS_FRAGS;
    }
    if def.flags & SEC_USDT != 0 && features.has(Feature::UprobeMultiLink) {
        expected_attach_type = at::BPF_TRACE_UPROBE_MULTI as u32;
    }

    let license = CString::new(obj.license.as_bytes()).unwrap_or_default();
    let insns = insn::to_uapi(&l.insns);
    let mut attr = ProgLoadAttr {
        prog_type: def.prog_type,
        expected_attach_type,
        insns: &insns,
        license: &license,
        kern_version: obj.kern_version.unwrap_or_else(host_kern_version),
        prog_flags,
        name: features.has(Feature::ProgName).then_some(p.name.as_str()),
        token,
        ..Default::default()
    };
    if let Some(a) = struct_ops {
        attr.attach_btf_id = a.attach_btf_id;
        attr.expected_attach_type = a.member_idx;
    }
    if let Some((btf_id, obj_fd, prog_fd)) = attach {
        attr.attach_btf_id = btf_id;
        attr.attach_btf_obj_fd = obj_fd;
        attr.attach_prog_fd = prog_fd;
    }
    if !fd_array.is_empty() {
        attr.fd_array = Some(fd_array);
    }
    if let Some(btf) = btf.filter(|_| features.has(Feature::BtfFunc)) {
        attr.btf_fd = Some(btf);
        if let Some(fi) = &l.func_info {
            attr.func_info = &fi.data;
            attr.func_info_rec_size = fi.rec_size;
        }
        if let Some(li) = &l.line_info {
            attr.line_info = &li.data;
            attr.line_info_rec_size = li.rec_size;
        }
    }
    let fd = prog::load(&attr, log).map_err(|source| {
        // EPERM despite a token: name the delegation that was missing.
        let hint =
            (token.is_some() && source.errno() == bpfload_syscall::Errno::EPERM).then(|| {
                let need = crate::diagnose::ProgNeed {
                    name: p.name.clone(),
                    prog_type: def.prog_type,
                    expected_attach_type: attr.expected_attach_type,
                    struct_ops_member: struct_ops.map(|a| format!("#{}", a.member_idx)),
                };
                crate::diagnose::explain_eperm(
                    crate::diagnose::EpermSubject::Program(&need),
                    features.delegation(),
                    crate::diagnose::names(),
                )
            });
        // No token in a user namespace: a token is what is missing.
        let hint = hint.or_else(|| {
            (token.is_none() && source.errno() == bpfload_syscall::Errno::EPERM)
                .then(crate::diagnose::no_token_hint)
                .flatten()
        });
        // Or the verifier needed the object BTF that the token kept out.
        let hint = hint.or_else(|| {
            token.and(crate::diagnose::btf_hint(
                btf.is_some(),
                features.delegation(),
                source.log(),
            ))
        });
        ProgramError::Kernel { source, hint }
    })?;

    // Keep .rodata alive and inspectable with the program (a failure is only a warning in libbpf).
    if !rodata.is_empty() && features.has(Feature::ProgBindMap) {
        for m in rodata {
            if let Err(e) = prog::bind_map(fd.as_fd(), *m) {
                log::warn!("prog '{}': failed to bind a .rodata map: {e}", p.name);
            }
        }
    }
    Ok(fd)
}

/// Runs `f` over `items` on up to `threads` threads. Work is handed out in item order, so when
/// `stop_on_error` is set and some item fails, every item before it was attempted: the first
/// failure in item order is the same as in a serial run. Items not attempted are `None`.
pub(crate) fn run_parallel<T, R, E>(
    items: &[T],
    threads: usize,
    stop_on_error: bool,
    f: impl Fn(&T) -> Result<R, E> + Sync,
) -> Vec<Option<Result<R, E>>>
where
    T: Sync,
    R: Send,
    E: Send,
{
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Mutex;

    let n = items.len();
    let threads = threads.clamp(1, n.max(1));
    if threads == 1 {
        let mut out = Vec::with_capacity(n);
        for it in items {
            let r = f(it);
            let failed = r.is_err();
            out.push(Some(r));
            if failed && stop_on_error {
                break;
            }
        }
        out.resize_with(n, || None);
        return out;
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let slots: Vec<Mutex<Option<Result<R, E>>>> = (0..n).map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                if stop_on_error && failed.load(Ordering::Acquire) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::AcqRel);
                if i >= n {
                    break;
                }
                let r = f(&items[i]);
                if r.is_err() {
                    failed.store(true, Ordering::Release);
                }
                *slots[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
            });
        }
    });
    slots
        .into_iter()
        .map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::run_parallel;

    #[test]
    fn parallel_results_keep_item_order_and_first_error() {
        let items: Vec<u32> = (0..200).collect();
        for threads in [1, 2, 4] {
            let r = run_parallel(&items, threads, false, |&i| {
                if i % 7 == 3 {
                    Err(i)
                } else {
                    Ok(i * 2)
                }
            });
            assert_eq!(r.len(), 200);
            for (i, x) in r.iter().enumerate() {
                let want = if i % 7 == 3 {
                    Err(i as u32)
                } else {
                    Ok(i as u32 * 2)
                };
                assert_eq!(x.as_ref(), Some(&want));
            }
            // Stop on error: everything before the first failure was attempted.
            let r = run_parallel(&items, threads, true, |&i| {
                if i == 50 || i == 120 {
                    Err(i)
                } else {
                    Ok(i)
                }
            });
            assert!(r[..50].iter().all(|x| matches!(x, Some(Ok(_)))));
            assert_eq!(r[50], Some(Err(50)));
        }
    }
}
