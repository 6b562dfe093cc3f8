//! bpfload-probe: kernel feature probes, cached per token, that never mistake "not permitted"
//! for "not supported".
//!
//! - [`Feature`]: the libbpf `FEAT_*` features object loading consumes.
//! - [`Probes`]: a lazy, thread-safe cache. [`Probes::global`] for loads without a token,
//!   [`Probes::for_token`] for a token (keyed by the token's inode, not its fd number; every
//!   probe passes the token). [`Probes::check`] gives a [`FeatureResult`]: support
//!   (Supported / Missing / Unknown), the [`Method`] that decided it, and the errno of a failed
//!   probe. Only Supported/Missing are cached; EPERM/EACCES give Unknown, never Missing.
//! - Under a token, probes use program/map types the token delegates ([`delegation`]), and
//!   where nothing is permitted, the running kernel's BTF decides ([`kernel_facts`]).
//! - [`report`]: what `bpfload probe [--token-path PATH] [--json]` prints.
//!
//! Differences from libbpf, on purpose:
//! - In the tokenless (global) cache the probes are libbpf's, and the kernel-BTF fallback is
//!   *not* used: without a token an unprivileged process cannot load anything, and its answers
//!   stay Unknown ([`Probes::supported`] then says false, like libbpf's failed probes).
//! - SYSCALL_WRAPPER is decided from kernel BTF / kallsyms (`__<arch>_sys_bpf`) instead of
//!   libbpf's perf kprobe, which needs perf privileges and costs far more (see [`kernel_facts`]).
//! - The BTF kinds are first tried together in one blob (one `BPF_BTF_LOAD` instead of nine);
//!   if the kernel refuses it, libbpf's per-kind blobs decide each kind.
//! - A probe attempt is exactly one syscall per object (probe loads log at level 1 from the
//!   start, so a failure is not retried with a log).
//!
//! On the 6.18 development kernel every feature is Supported except LDIMM64_FULL_RANGE_OFF:
//! libbpf's probe gets "direct value offset of 1073741824 is not allowed" from the verifier.

#![forbid(unsafe_code)]

mod blobs;
mod cache;
mod decide;
pub mod delegation;
mod feature;
mod insn;
pub mod kernel_facts;
mod ops;
mod report;
mod result;

use std::os::fd::BorrowedFd;

pub use bpfload_syscall::Errno;
pub use cache::{CacheError, Probes, TokenKey};
pub use delegation::{
    Delegation, DelegationError, DelegationSource, MaskKind, NameTable, NameTables,
};
pub use feature::Feature;
pub use report::{report, Report, ReportError};
pub use result::{map_type_name, prog_type_name, Evidence, FeatureResult, Method, Support};

/// What a token delegates: from `bpf_token_info` (kernels 6.17+), else from the token's fdinfo.
pub fn token_delegation(
    token: BorrowedFd<'_>,
) -> Result<(Delegation, DelegationSource), DelegationError> {
    match bpfload_syscall::info::token_info(token) {
        Ok(i) => Ok((
            Delegation {
                cmds: i.allowed_cmds,
                maps: i.allowed_maps,
                progs: i.allowed_progs,
                attachs: i.allowed_attachs,
            },
            DelegationSource::TokenInfo,
        )),
        Err(e) => {
            log::debug!("bpf_token_info unavailable ({e}); reading the token's fdinfo");
            Delegation::read_token_fdinfo(token).map(|d| (d, DelegationSource::TokenFdinfo))
        }
    }
}

/// Maps the BTF sanitizer's feature names onto probe features.
pub fn btf_feature_to_feature(f: bpfload_btf::sanitize::BtfFeature) -> Feature {
    use bpfload_btf::sanitize::BtfFeature as B;
    match f {
        B::Func => Feature::BtfFunc,
        B::GlobalFunc => Feature::BtfGlobalFunc,
        B::Datasec => Feature::BtfDatasec,
        B::QmarkDatasec => Feature::BtfQmarkDatasec,
        B::Float => Feature::BtfFloat,
        B::DeclTag => Feature::BtfDeclTag,
        B::TypeTag => Feature::BtfTypeTag,
        B::Enum64 => Feature::BtfEnum64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sanitizer_feature_maps_to_its_own_btf_feature() {
        let mapped: Vec<Feature> = bpfload_btf::sanitize::BtfFeature::ALL
            .into_iter()
            .map(btf_feature_to_feature)
            .collect();
        let mut uniq = mapped.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), mapped.len(), "{mapped:?}");
        assert!(
            mapped.iter().all(|f| f.name().starts_with("BTF_")),
            "{mapped:?}"
        );
    }
}
