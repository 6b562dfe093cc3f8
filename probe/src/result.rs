//! What a probe decided, and how.

use core::fmt;

use crate::feature::Feature;
use crate::Errno;
use aya_obj::generated::{bpf_map_type, bpf_prog_type};

/// The answer for one feature.
#[derive(Debug, Copy, Clone, PartialEq, Eq, Hash)]
pub enum Support {
    /// The kernel has the feature.
    Supported,
    /// The kernel conclusively lacks the feature.
    Missing,
    /// Could not be decided (probes not permitted, unexpected errors, no evidence). Never cached.
    Unknown,
}

impl Support {
    /// Supported or Missing: safe to cache.
    pub fn is_conclusive(self) -> bool {
        !matches!(self, Support::Unknown)
    }

    /// Lower-case name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Support::Supported => "supported",
            Support::Missing => "missing",
            Support::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Support {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fact read from the running kernel's BTF (or kallsyms) that implies a feature.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Evidence {
    /// `/sys/kernel/btf/vmlinux` exists and parses: the kernel has BTF (and `BPF_BTF_LOAD`).
    VmlinuxBtf,
    /// An enum constant, e.g. `BPF_FUNC_probe_read_kernel` (`enum_name` None = any enum).
    Enumerator {
        enum_name: Option<&'static str>,
        name: &'static str,
    },
    /// A struct member, e.g. `bpf_map_ops.map_direct_value_addr`.
    Member {
        strukt: &'static str,
        member: &'static str,
    },
    /// A kernel function in BTF, e.g. `__x64_sys_bpf`.
    Func(String),
    /// A symbol in `/proc/kallsyms`.
    Kallsym(String),
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Evidence::VmlinuxBtf => f.write_str("vmlinux BTF present"),
            Evidence::Enumerator {
                enum_name: Some(e),
                name,
            } => write!(f, "enum {e} has {name}"),
            Evidence::Enumerator {
                enum_name: None,
                name,
            } => write!(f, "enum constant {name}"),
            Evidence::Member { strukt, member } => write!(f, "struct {strukt} has member {member}"),
            Evidence::Func(name) => write!(f, "BTF func {name}"),
            Evidence::Kallsym(name) => write!(f, "kallsyms {name}"),
        }
    }
}

/// How a feature was decided.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// A probe that loaded something: program type, map type and/or a BTF blob.
    /// `token` says whether the cache's token was passed.
    Probe {
        prog_type: Option<bpf_prog_type>,
        map_type: Option<bpf_map_type>,
        btf: bool,
        token: bool,
    },
    /// A fact from kernel BTF / kallsyms (no syscall needed or permitted).
    KernelBtf(Evidence),
    /// Nothing decided it.
    Undecided,
}

/// `BPF_PROG_TYPE_XDP` → `xdp` (the spelling bpffs mount options use).
pub fn prog_type_name(t: bpf_prog_type) -> String {
    short_name(&format!("{t:?}"), "BPF_PROG_TYPE_")
}

/// `BPF_MAP_TYPE_HASH` → `hash`.
pub fn map_type_name(t: bpf_map_type) -> String {
    short_name(&format!("{t:?}"), "BPF_MAP_TYPE_")
}

fn short_name(debug: &str, prefix: &str) -> String {
    debug
        .strip_prefix(prefix)
        .unwrap_or(debug)
        .to_ascii_lowercase()
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Method::Probe {
                prog_type,
                map_type,
                btf,
                token,
            } => {
                let mut parts = Vec::new();
                if *btf {
                    parts.push("btf".to_string());
                }
                if let Some(m) = map_type {
                    parts.push(format!("map={}", map_type_name(*m)));
                }
                if let Some(p) = prog_type {
                    parts.push(format!("prog={}", prog_type_name(*p)));
                }
                if *token {
                    parts.push("token".to_string());
                }
                write!(f, "probe({})", parts.join(","))
            }
            Method::KernelBtf(e) => write!(f, "kernel-btf({e})"),
            Method::Undecided => f.write_str("none"),
        }
    }
}

/// The result of checking one feature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureResult {
    pub feature: Feature,
    pub support: Support,
    pub method: Method,
    /// The errno of the (last) failed probe attempt, also when another method then decided.
    pub errno: Option<Errno>,
    /// Extra context: the verifier message a probe keyed on, why nothing decided, ...
    pub note: Option<String>,
}

impl FeatureResult {
    /// `support == Supported`.
    pub fn is_supported(&self) -> bool {
        self.support == Support::Supported
    }

    /// A JSON object for `bpfload probe --json`.
    pub fn to_json(&self) -> serde_json::Value {
        let method = match &self.method {
            Method::Probe {
                prog_type,
                map_type,
                btf,
                token,
            } => serde_json::json!({
                "kind": "probe",
                "prog_type": prog_type.map(prog_type_name),
                "map_type": map_type.map(map_type_name),
                "btf": btf,
                "token": token,
            }),
            Method::KernelBtf(e) => serde_json::json!({
                "kind": "kernel_btf",
                "evidence": e.to_string(),
            }),
            Method::Undecided => serde_json::json!({ "kind": "none" }),
        };
        serde_json::json!({
            "feature": self.feature.name(),
            "description": self.feature.description(),
            "support": self.support.as_str(),
            "method": method,
            "errno": self.errno.map(|e| serde_json::json!({
                "name": e.name(),
                "code": e.raw(),
            })),
            "note": self.note,
        })
    }
}

impl fmt::Display for FeatureResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<24} {:<10} {}",
            self.feature.name(),
            self.support,
            self.method
        )?;
        if let Some(e) = self.errno {
            write!(f, " errno={}", e.name())?;
        }
        if let Some(n) = &self.note {
            write!(f, " ({n})")?;
        }
        Ok(())
    }
}
