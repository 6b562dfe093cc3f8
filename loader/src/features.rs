//! What the kernel supports, as far as the load pipeline needs to know.
//!
//! Every question goes through [`Features`], so the answers come from one place: the feature cache
//! of the `probe` crate, keyed by the token the load uses (libbpf's per-object cache when a token
//! exists, the process-wide cache otherwise).

use std::os::fd::BorrowedFd;

use bpfload_btf::BtfFeature;

/// The features the loader asks about (libbpf's `FEAT_*` that drive loading decisions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Feature {
    ProgName,
    GlobalData,
    Btf,
    BtfFunc,
    ArrayMmap,
    ExpAttachType,
    ProgBindMap,
    UprobeMultiLink,
}

/// Feature answers for one load.
pub(crate) struct Features {
    _token: bool,
}

impl Features {
    /// The feature answers for a load with or without a token.
    ///
    /// Interim: until the `probe` crate's cache is wired in here, every feature the pipeline asks
    /// about is reported present. All of them exist on the kernels this project targets (6.9+,
    /// where tokens exist); this is the single place that changes when probes land.
    pub fn for_token(token: Option<BorrowedFd<'_>>) -> Self {
        Features {
            _token: token.is_some(),
        }
    }

    pub fn has(&self, f: Feature) -> bool {
        log::trace!("feature {f:?}: assumed present (probe cache not wired yet)");
        true
    }

    pub fn btf(&self, f: BtfFeature) -> bool {
        log::trace!("BTF feature {f:?}: assumed present (probe cache not wired yet)");
        true
    }
}
