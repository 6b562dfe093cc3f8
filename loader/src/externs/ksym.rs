//! Typed ksyms and kfuncs through kernel BTF (libbpf's `bpf_object__resolve_ksym_var_btf_id`
//! and `bpf_object__resolve_ksym_func_btf_id`): vmlinux first, then module BTFs, then a type
//! compatibility check against the object's declaration (`bpf_core_types_are_compat`).

use bpfload_btf::{Btf, Kind};

use super::kernel_btf::{BtfSource, KernelBtfs};
use super::{ExternDesc, ExternError, ExternKind, ExternValue};

fn type_desc(btf: &Btf<'_>, id: u32) -> String {
    match btf.kind(id) {
        Ok(k) => format!("[{id}] {} {}", k.as_str(), btf.name(id).unwrap_or("")),
        Err(_) => format!("[{id}]"),
    }
}

/// Resolves one typed ksym (variable or kfunc). `fd_array_modules` collects the modules whose
/// BTF fd a kfunc call needs in `fd_array` (index = position + 1).
// Out of line: smaller code where it was inlined (issue 8: binary size).
#[inline(never)]
pub fn resolve_typed(
    d: &ExternDesc,
    local: &Btf<'_>,
    kernel: &KernelBtfs,
    fd_array_modules: &mut Vec<BtfSource>,
) -> Result<ExternValue, ExternError> {
    let ExternKind::Ksym {
        type_id: local_type,
        is_func,
    } = d.kind
    else {
        return Ok(ExternValue::Unset);
    };
    let err = |msg: String| ExternError::Ksym {
        name: d.name.clone(),
        msg,
    };
    if is_func {
        let Some((src, id)) = kernel.find(&d.essent_name, Kind::Func)? else {
            if d.weak {
                return Ok(ExternValue::Unset);
            }
            return Err(err(
                "kfunc not found in kernel or module BTFs (ESRCH)".into()
            ));
        };
        let kbtf = kernel.btf(src);
        let kproto = kbtf
            .type_by_id(id)
            .ok()
            .and_then(|t| t.target())
            .unwrap_or(0);
        let compat =
            bpfload_btf::core::types_are_compat(local, local_type, &kbtf, kproto).unwrap_or(false);
        if !compat {
            if d.weak {
                return Ok(ExternValue::Unset);
            }
            return Err(err(format!(
                "func_proto {} incompatible with {} {}",
                type_desc(local, local_type),
                kernel.source_name(src),
                type_desc(&kbtf, kproto)
            )));
        }
        let fd_idx = match src {
            BtfSource::Vmlinux => 0,
            BtfSource::Module(_) => {
                let pos = match fd_array_modules.iter().position(|&s| s == src) {
                    Some(p) => p,
                    None => {
                        // insn->off is s16 and index 0 is never used.
                        if fd_array_modules.len() + 1 >= i16::MAX as usize {
                            return Err(err(
                                "module BTF fd index too big to fit in bpf_insn offset (E2BIG)"
                                    .into(),
                            ));
                        }
                        fd_array_modules.push(src);
                        fd_array_modules.len() - 1
                    }
                };
                (pos + 1) as i16
            }
        };
        return Ok(ExternValue::Kfunc {
            btf_id: id,
            fd_idx,
            src,
        });
    }
    let Some((src, id)) = kernel.find(&d.name, Kind::Var)? else {
        if d.weak {
            return Ok(ExternValue::Unset);
        }
        return Err(err("not found in kernel BTF (ESRCH)".into()));
    };
    let kbtf = kernel.btf(src);
    let ktype = kbtf
        .type_by_id(id)
        .ok()
        .and_then(|t| t.target())
        .unwrap_or(0);
    let ktype = kbtf.skip_mods_and_typedefs(ktype).unwrap_or(ktype);
    let compat =
        bpfload_btf::core::types_are_compat(local, local_type, &kbtf, ktype).unwrap_or(false);
    if !compat {
        return Err(err(format!(
            "incompatible types, expected {}, but kernel has {}",
            type_desc(local, local_type),
            type_desc(&kbtf, ktype)
        )));
    }
    Ok(ExternValue::BtfVar { btf_id: id, src })
}
