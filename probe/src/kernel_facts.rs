//! Decisions from the running kernel's own BTF (and kallsyms), used where no probe is permitted.
//!
//! Each feature maps to a kernel type, member or enum constant that implements it. Presence of
//! that fact means Supported. When the *containing* type exists but lacks the member/constant
//! (e.g. `enum bpf_func_id` without `BPF_FUNC_probe_read_kernel`), the kernel lacks the feature:
//! Missing. When the containing type itself is absent (or there is no vmlinux BTF) nothing is
//! decided.
//!
//! BTF kinds are decided from the `BTF_KIND_*` constants of the kernel's UAPI enum, which the
//! kernel's BTF parser is built from.

use std::collections::HashSet;
use std::io::BufRead;
use std::sync::{Arc, OnceLock};

use bpfload_btf::{Btf, BtfData, Kind, Type};

use crate::delegation::NameTables;
use crate::feature::Feature;
use crate::result::{Evidence, FeatureResult, Method, Support};

/// The fact that implies each feature (None: no reliable kernel-BTF marker).
pub fn evidence_for(feature: Feature) -> Option<Evidence> {
    use Evidence::*;
    let en = |enum_name: &'static str, name: &'static str| Enumerator {
        enum_name: Some(enum_name),
        name,
    };
    let anon = |name: &'static str| Enumerator {
        enum_name: None,
        name,
    };
    let member = |strukt: &'static str, member: &'static str| Member { strukt, member };
    Some(match feature {
        Feature::ProgName => member("bpf_prog_aux", "name"),
        Feature::GlobalData => member("bpf_map_ops", "map_direct_value_addr"),
        Feature::Btf => VmlinuxBtf,
        Feature::BtfFunc => anon("BTF_KIND_FUNC"),
        Feature::BtfDatasec => anon("BTF_KIND_DATASEC"),
        Feature::BtfGlobalFunc => en("btf_func_linkage", "BTF_FUNC_GLOBAL"),
        Feature::ArrayMmap => anon("BPF_F_MMAPABLE"),
        Feature::ExpAttachType => member("bpf_prog", "expected_attach_type"),
        Feature::ProbeReadKern => en("bpf_func_id", "BPF_FUNC_probe_read_kernel"),
        Feature::ProgBindMap => en("bpf_cmd", "BPF_PROG_BIND_MAP"),
        Feature::ModuleBtf => member("bpf_btf_info", "name"),
        Feature::BtfFloat => anon("BTF_KIND_FLOAT"),
        Feature::BtfDeclTag => anon("BTF_KIND_DECL_TAG"),
        Feature::BtfTypeTag => anon("BTF_KIND_TYPE_TAG"),
        Feature::MemcgAccount => en("bpf_func_id", "BPF_FUNC_ktime_get_coarse_ns"),
        Feature::BpfCookie => en("bpf_func_id", "BPF_FUNC_get_attach_cookie"),
        Feature::BtfEnum64 => anon("BTF_KIND_ENUM64"),
        Feature::SyscallWrapper => Func(syscall_wrapper_name()),
        Feature::ArgCtxTag => en("btf_arg_tag", "ARG_TAG_CTX"),
        // None has a kernel type or constant of its own (for UPROBE_MULTI_LINK, libbpf also
        // requires the 6.10 PID-filtering fix, which leaves no trace in BTF).
        Feature::BtfQmarkDatasec | Feature::Ldimm64FullRangeOff | Feature::UprobeMultiLink => {
            return None
        }
    })
}

/// The shared vmlinux BTF, or None (logged) when the kernel has none.
pub fn vmlinux() -> Option<Arc<BtfData>> {
    match bpfload_btf::kernel::vmlinux() {
        Ok(v) => Some(v),
        Err(e) => {
            log::debug!("no kernel BTF for feature decisions: {e}");
            None
        }
    }
}

/// Some(true) present, Some(false) the container exists without it, None undecidable.
pub fn evaluate(btf: &Btf<'_>, e: &Evidence) -> Option<bool> {
    evaluate_with(btf, e, || std::borrow::Cow::Owned(anonymous_constants(btf)))
}

/// [`evaluate`] on vmlinux, with its anonymous-enum constants collected once per process.
fn evaluate_vmlinux(btf: &Btf<'_>, e: &Evidence) -> Option<bool> {
    static SET: OnceLock<HashSet<String>> = OnceLock::new();
    evaluate_with(btf, e, || {
        std::borrow::Cow::Borrowed(SET.get_or_init(|| anonymous_constants(btf)))
    })
}

fn evaluate_with<'s>(
    btf: &Btf<'_>,
    e: &Evidence,
    anon: impl FnOnce() -> std::borrow::Cow<'s, HashSet<String>>,
) -> Option<bool> {
    match e {
        Evidence::VmlinuxBtf => Some(true),
        Evidence::Enumerator {
            enum_name: Some(enum_name),
            name,
        } => {
            let id = btf
                .find_by_name_kind(enum_name, Kind::Enum)
                .or_else(|| btf.find_by_name_kind(enum_name, Kind::Enum64))?;
            Some(enum_has(btf, id, name))
        }
        Evidence::Enumerator {
            enum_name: None,
            name,
        } => anon().contains(*name).then_some(true),
        Evidence::Member { strukt, member } => {
            let id = btf.find_by_name_kind(strukt, Kind::Struct)?;
            let Ok(Type::Struct(c)) = btf.type_by_id(id) else {
                return None;
            };
            Some(
                c.members()
                    .any(|m| btf.str_at(m.name_off).ok() == Some(*member)),
            )
        }
        Evidence::Func(name) => btf.find_by_name_kind(name, Kind::Func).map(|_| true),
        Evidence::Kallsym(name) => kallsyms_has(name),
    }
}

fn enum_has(btf: &Btf<'_>, id: u32, name: &str) -> bool {
    match btf.type_by_id(id) {
        Ok(Type::Enum(e)) | Ok(Type::Enum64(e)) => e
            .values()
            .any(|v| btf.str_at(v.name_off).ok() == Some(name)),
        _ => false,
    }
}

/// Constant names of the anonymous enums we consult (UAPI `BTF_KIND_*`, `BPF_F_*`), collected in
/// one pass over all types.
fn anonymous_constants(btf: &Btf<'_>) -> HashSet<String> {
    {
        let wanted: Vec<&str> = Feature::ALL
            .iter()
            .filter_map(|&f| match evidence_for(f) {
                Some(Evidence::Enumerator {
                    enum_name: None,
                    name,
                }) => Some(name),
                _ => None,
            })
            .collect();
        let mut found = HashSet::new();
        for id in btf.ids() {
            if !matches!(btf.kind(id), Ok(Kind::Enum)) || btf.name_off(id).ok() != Some(0) {
                continue;
            }
            let Ok(Type::Enum(e)) = btf.type_by_id(id) else {
                continue;
            };
            for v in e.values() {
                if let Ok(n) = btf.str_at(v.name_off) {
                    if wanted.contains(&n) {
                        found.insert(n.to_string());
                    }
                }
            }
        }
        found
    }
}

/// Decides a feature from kernel BTF: (support, evidence), or None when undecidable.
pub fn decide(feature: Feature) -> Option<(Support, Evidence)> {
    let evidence = evidence_for(feature)?;
    let data = vmlinux()?;
    let btf = data.btf();
    match evaluate_vmlinux(&btf, &evidence)? {
        true => Some((Support::Supported, evidence)),
        false => Some((Support::Missing, evidence)),
    }
}

/// libbpf's arch prefix for syscall wrappers (`arch_specific_syscall_pfx`).
pub fn syscall_prefix() -> Option<&'static str> {
    Some(if cfg!(target_arch = "x86_64") {
        "x64"
    } else if cfg!(target_arch = "x86") {
        "ia32"
    } else if cfg!(target_arch = "s390x") {
        "s390x"
    } else if cfg!(target_arch = "arm") {
        "arm"
    } else if cfg!(target_arch = "aarch64") {
        "arm64"
    } else if cfg!(target_arch = "mips64") || cfg!(target_arch = "mips") {
        "mips"
    } else if cfg!(target_arch = "riscv64") {
        "riscv"
    } else if cfg!(target_arch = "powerpc") {
        "powerpc"
    } else if cfg!(target_arch = "powerpc64") {
        "powerpc64"
    } else if cfg!(target_arch = "loongarch64") {
        "loongarch64"
    } else {
        return None;
    })
}

fn syscall_wrapper_name() -> String {
    format!("__{}_sys_bpf", syscall_prefix().unwrap_or("unknown"))
}

/// Whether `/proc/kallsyms` lists `name`; None if it cannot be read.
pub fn kallsyms_has(name: &str) -> Option<bool> {
    let f = std::fs::File::open("/proc/kallsyms").ok()?;
    let mut found = false;
    for line in std::io::BufReader::new(f).lines() {
        let line = line.ok()?;
        // "<addr> <type> <name>[\t[module]]"
        if line.split_ascii_whitespace().nth(2) == Some(name) {
            found = true;
            break;
        }
    }
    Some(found)
}

/// SYSCALL_WRAPPER. libbpf creates a perf kprobe on `__<arch>_sys_bpf` and ignores the token;
/// we avoid perf_event_open (needs CAP_PERFMON/CAP_SYS_ADMIN, a tracefs/kprobe PMU, and costs
/// far more than a lookup) and decide from the same symbol: a kprobe can attach to it exactly
/// when the kernel has the function. Kernel BTF (one lookup) first, then kallsyms, whose
/// absence is conclusive when it is readable.
pub(crate) fn syscall_wrapper() -> FeatureResult {
    let feature = Feature::SyscallWrapper;
    let name = syscall_wrapper_name();
    if syscall_prefix().is_none() {
        return FeatureResult {
            feature,
            support: Support::Missing,
            method: Method::Undecided,
            errno: None,
            note: Some("architecture without syscall wrappers in libbpf's table".into()),
        };
    }
    if let Some(data) = vmlinux() {
        if evaluate_vmlinux(&data.btf(), &Evidence::Func(name.clone())) == Some(true) {
            return FeatureResult {
                feature,
                support: Support::Supported,
                method: Method::KernelBtf(Evidence::Func(name)),
                errno: None,
                note: None,
            };
        }
    }
    match kallsyms_has(&name) {
        Some(found) => FeatureResult {
            feature,
            support: if found {
                Support::Supported
            } else {
                Support::Missing
            },
            method: Method::KernelBtf(Evidence::Kallsym(name)),
            errno: None,
            note: None,
        },
        None => FeatureResult {
            feature,
            support: Support::Unknown,
            method: Method::Undecided,
            errno: None,
            note: Some(format!(
                "{name} not in kernel BTF and /proc/kallsyms unreadable"
            )),
        },
    }
}

/// Delegation name tables from the running kernel's BTF enums (what bpffs mount options use),
/// built once per process. Empty tables when there is no kernel BTF.
pub fn name_tables() -> &'static NameTables {
    static TABLES: OnceLock<NameTables> = OnceLock::new();
    TABLES.get_or_init(|| {
        let Some(data) = vmlinux() else {
            return NameTables::default();
        };
        let btf = data.btf();
        NameTables::from_enum_lookup(|enum_name| {
            let mut out: Vec<(String, i64)> = Vec::new();
            if let Some(id) = btf.find_by_name_kind(enum_name, Kind::Enum) {
                if let Ok(Type::Enum(e)) = btf.type_by_id(id) {
                    for v in e.values() {
                        if let Ok(n) = btf.str_at(v.name_off) {
                            out.push((n.to_string(), v.val as i64));
                        }
                    }
                }
            }
            out
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfload_btf::BtfModel;

    /// A BTF shaped like an old kernel's: the containers exist but lack the newer entries.
    fn old_kernel_btf() -> Vec<u8> {
        let mut m = BtfModel::new();
        let int = m.add_int("int", 4, bpfload_btf::raw::INT_SIGNED);
        m.add_enum(
            "bpf_func_id",
            false,
            &[("BPF_FUNC_unspec", 0), ("BPF_FUNC_probe_read", 4)],
        );
        m.add_struct("bpf_map_ops", 8, &[("map_alloc", int, 0)]);
        m.add_enum("", false, &[("BTF_KIND_INT", 1), ("BTF_KIND_FUNC", 12)]);
        m.to_bytes().unwrap()
    }

    #[test]
    fn present_absent_and_undecidable() {
        let blob = old_kernel_btf();
        let btf = Btf::parse(&blob).unwrap();
        let probe_read_kernel = evidence_for(Feature::ProbeReadKern).unwrap();
        assert_eq!(
            evaluate(&btf, &probe_read_kernel),
            Some(false),
            "enum exists, constant absent"
        );
        let global_data = evidence_for(Feature::GlobalData).unwrap();
        assert_eq!(
            evaluate(&btf, &global_data),
            Some(false),
            "struct exists, member absent"
        );
        let prog_name = evidence_for(Feature::ProgName).unwrap();
        assert_eq!(
            evaluate(&btf, &prog_name),
            None,
            "no bpf_prog_aux: undecided"
        );
        let func = evidence_for(Feature::BtfFunc).unwrap();
        assert_eq!(evaluate(&btf, &func), Some(true), "anonymous enum constant");
        let float = evidence_for(Feature::BtfFloat).unwrap();
        assert_eq!(
            evaluate(&btf, &float),
            None,
            "absent anonymous constant decides nothing"
        );
        assert_eq!(evaluate(&btf, &Evidence::Func("nope".into())), None);
        assert_eq!(evaluate(&btf, &Evidence::VmlinuxBtf), Some(true));
    }

    #[test]
    fn every_feature_has_a_rule_or_a_reason() {
        let without: Vec<Feature> = Feature::ALL
            .into_iter()
            .filter(|&f| evidence_for(f).is_none())
            .collect();
        assert_eq!(
            without,
            [
                Feature::UprobeMultiLink,
                Feature::BtfQmarkDatasec,
                Feature::Ldimm64FullRangeOff
            ]
        );
    }
}
