//! The kernel features that object loading consumes (libbpf's `FEAT_*` list, `features.c`).

use core::fmt;

/// One kernel feature that the loader needs to know about.
///
/// The set and the names follow libbpf's `enum kern_feature_id`; only the features that object
/// loading consumes are here (attach-only features such as `PERF_LINK` or `UPROBE_SYSCALL` are
/// not).
#[derive(Debug, Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Feature {
    /// `BPF_PROG_LOAD`/`BPF_MAP_CREATE` accept a name (v4.14).
    ProgName,
    /// Global data: `ld_imm64` with `BPF_PSEUDO_MAP_VALUE` into an ARRAY map (v5.2).
    GlobalData,
    /// `BPF_BTF_LOAD` of a minimal blob.
    Btf,
    /// BTF `FUNC` and `FUNC_PROTO` kinds.
    BtfFunc,
    /// BTF `VAR` and `DATASEC` kinds.
    BtfDatasec,
    /// BTF `FUNC` with `BTF_FUNC_GLOBAL` linkage.
    BtfGlobalFunc,
    /// ARRAY maps with `BPF_F_MMAPABLE`.
    ArrayMmap,
    /// The `expected_attach_type` field of `BPF_PROG_LOAD`.
    ExpAttachType,
    /// The `bpf_probe_read_kernel` helper.
    ProbeReadKern,
    /// The `BPF_PROG_BIND_MAP` command.
    ProgBindMap,
    /// Module BTF (`bpf_btf_info.name`).
    ModuleBtf,
    /// BTF `FLOAT` kind.
    BtfFloat,
    /// BTF `DECL_TAG` kind.
    BtfDeclTag,
    /// BTF `TYPE_TAG` kind.
    BtfTypeTag,
    /// memcg-based accounting of BPF memory (5.11; no RLIMIT_MEMLOCK bump needed).
    MemcgAccount,
    /// The `bpf_get_attach_cookie` helper.
    BpfCookie,
    /// BTF `ENUM64` kind.
    BtfEnum64,
    /// The kernel uses arch syscall wrappers (`__<arch>_sys_bpf`).
    SyscallWrapper,
    /// uprobe_multi links with working PID filtering (USDT programs are loaded with
    /// `expected_attach_type = BPF_TRACE_UPROBE_MULTI` when present).
    UprobeMultiLink,
    /// Kernel-side `__arg_ctx` (`arg:ctx` decl tag) for global subprogram arguments.
    ArgCtxTag,
    /// BTF `DATASEC` names that start with `?`.
    BtfQmarkDatasec,
    /// `ld_imm64` map-value offsets beyond the old 512 MiB limit.
    Ldimm64FullRangeOff,
}

impl Feature {
    /// Every feature, in libbpf's enum order.
    pub const ALL: [Feature; 22] = [
        Feature::ProgName,
        Feature::GlobalData,
        Feature::Btf,
        Feature::BtfFunc,
        Feature::BtfDatasec,
        Feature::BtfGlobalFunc,
        Feature::ArrayMmap,
        Feature::ExpAttachType,
        Feature::ProbeReadKern,
        Feature::ProgBindMap,
        Feature::ModuleBtf,
        Feature::BtfFloat,
        Feature::BtfDeclTag,
        Feature::BtfTypeTag,
        Feature::MemcgAccount,
        Feature::BpfCookie,
        Feature::BtfEnum64,
        Feature::SyscallWrapper,
        Feature::UprobeMultiLink,
        Feature::ArgCtxTag,
        Feature::BtfQmarkDatasec,
        Feature::Ldimm64FullRangeOff,
    ];

    /// Number of features (size of a cache).
    pub const COUNT: usize = Self::ALL.len();

    /// Dense index into [`Feature::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// libbpf's name without the `FEAT_` prefix, e.g. `"GLOBAL_DATA"`.
    pub const fn name(self) -> &'static str {
        match self {
            Feature::ProgName => "PROG_NAME",
            Feature::GlobalData => "GLOBAL_DATA",
            Feature::Btf => "BTF",
            Feature::BtfFunc => "BTF_FUNC",
            Feature::BtfDatasec => "BTF_DATASEC",
            Feature::BtfGlobalFunc => "BTF_GLOBAL_FUNC",
            Feature::ArrayMmap => "ARRAY_MMAP",
            Feature::ExpAttachType => "EXP_ATTACH_TYPE",
            Feature::ProbeReadKern => "PROBE_READ_KERN",
            Feature::ProgBindMap => "PROG_BIND_MAP",
            Feature::ModuleBtf => "MODULE_BTF",
            Feature::BtfFloat => "BTF_FLOAT",
            Feature::BtfDeclTag => "BTF_DECL_TAG",
            Feature::BtfTypeTag => "BTF_TYPE_TAG",
            Feature::MemcgAccount => "MEMCG_ACCOUNT",
            Feature::BpfCookie => "BPF_COOKIE",
            Feature::BtfEnum64 => "BTF_ENUM64",
            Feature::SyscallWrapper => "SYSCALL_WRAPPER",
            Feature::UprobeMultiLink => "UPROBE_MULTI_LINK",
            Feature::ArgCtxTag => "ARG_CTX_TAG",
            Feature::BtfQmarkDatasec => "BTF_QMARK_DATASEC",
            Feature::Ldimm64FullRangeOff => "LDIMM64_FULL_RANGE_OFF",
        }
    }

    /// libbpf's description string for the feature.
    pub const fn description(self) -> &'static str {
        match self {
            Feature::ProgName => "BPF program name",
            Feature::GlobalData => "global variables",
            Feature::Btf => "minimal BTF",
            Feature::BtfFunc => "BTF functions",
            Feature::BtfDatasec => "BTF data section and variable",
            Feature::BtfGlobalFunc => "BTF global function",
            Feature::ArrayMmap => "ARRAY map mmap()",
            Feature::ExpAttachType => "BPF_PROG_LOAD expected_attach_type attribute",
            Feature::ProbeReadKern => "bpf_probe_read_kernel() helper",
            Feature::ProgBindMap => "BPF_PROG_BIND_MAP support",
            Feature::ModuleBtf => "module BTF support",
            Feature::BtfFloat => "BTF_KIND_FLOAT support",
            Feature::BtfDeclTag => "BTF_KIND_DECL_TAG support",
            Feature::BtfTypeTag => "BTF_KIND_TYPE_TAG support",
            Feature::MemcgAccount => "memcg-based memory accounting",
            Feature::BpfCookie => "BPF cookie support",
            Feature::BtfEnum64 => "BTF_KIND_ENUM64 support",
            Feature::SyscallWrapper => "Kernel using syscall wrapper",
            Feature::UprobeMultiLink => "BPF multi-uprobe link support",
            Feature::ArgCtxTag => "kernel-side __arg_ctx tag",
            Feature::BtfQmarkDatasec => "BTF DATASEC names starting from '?'",
            Feature::Ldimm64FullRangeOff => "full range LDIMM64 support",
        }
    }

    /// Parses [`Feature::name`] (case-insensitive, with or without `FEAT_`).
    pub fn from_name(name: &str) -> Option<Feature> {
        let name = name
            .strip_prefix("FEAT_")
            .or_else(|| name.strip_prefix("feat_"))
            .unwrap_or(name);
        Self::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_matches_position_in_all() {
        for (i, f) in Feature::ALL.iter().enumerate() {
            assert_eq!(f.index(), i, "{f}");
        }
    }

    #[test]
    fn names_round_trip() {
        for f in Feature::ALL {
            assert_eq!(Feature::from_name(f.name()), Some(f));
            assert_eq!(
                Feature::from_name(&format!("feat_{}", f.name().to_lowercase())),
                Some(f)
            );
        }
        assert_eq!(Feature::from_name("PERF_LINK"), None);
        assert_eq!(
            Feature::from_name("uprobe_multi_link"),
            Some(Feature::UprobeMultiLink)
        );
    }
}
