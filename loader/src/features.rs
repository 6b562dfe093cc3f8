//! What the kernel supports, as far as the load pipeline needs to know.
//!
//! Every question goes through [`Features`], so the answers come from one place: the feature cache
//! of the `probe` crate, keyed by the token the load uses (libbpf's per-object cache when a token
//! exists, the process-wide cache otherwise).

use std::os::fd::BorrowedFd;
use std::sync::Arc;

use bpfload_btf::BtfFeature;
use bpfload_probe::Probes;

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
    ProbeReadKern,
    BtfDeclTag,
    /// `FEAT_UPROBE_MULTI_LINK` (USDT programs): not probed by the probe crate yet, so USDT
    /// programs keep expected_attach_type 0, which every kernel accepts.
    UprobeMultiLink,
    /// `FEAT_BPF_COOKIE` (the `LINUX_HAS_BPF_COOKIE` kconfig extern).
    BpfCookie,
    /// `FEAT_SYSCALL_WRAPPER` (the `LINUX_HAS_SYSCALL_WRAPPER` kconfig extern).
    SyscallWrapper,
    /// `FEAT_LDIMM64_FULL_RANGE_OFF`: arena globals go at the end of the arena.
    Ldimm64FullRangeOff,
}

/// Feature answers for one load.
pub(crate) struct Features {
    probes: Arc<Probes>,
}

impl Features {
    /// The feature cache for `token` (or the process-wide one without a token).
    // Out of line: smaller code in the load pipeline's one big function (issue 8).
    #[inline(never)]
    pub fn for_token(token: Option<BorrowedFd<'_>>) -> Self {
        let probes = match token {
            Some(t) => Probes::for_token(t).unwrap_or_else(|e| {
                log::debug!("token feature cache unavailable ({e}); using the process-wide cache");
                Probes::global()
            }),
            None => Probes::global(),
        };
        Features { probes }
    }

    /// The cache itself, for the loaded object to keep.
    pub fn into_probes(self) -> Arc<Probes> {
        self.probes
    }

    pub fn has(&self, f: Feature) -> bool {
        use bpfload_probe::Feature as P;
        let p = match f {
            Feature::ProgName => P::ProgName,
            Feature::GlobalData => P::GlobalData,
            Feature::Btf => P::Btf,
            Feature::BtfFunc => P::BtfFunc,
            Feature::ArrayMmap => P::ArrayMmap,
            Feature::ExpAttachType => P::ExpAttachType,
            Feature::ProgBindMap => P::ProgBindMap,
            Feature::ProbeReadKern => P::ProbeReadKern,
            Feature::BtfDeclTag => P::BtfDeclTag,
            Feature::UprobeMultiLink => return false,
            Feature::BpfCookie => P::BpfCookie,
            Feature::SyscallWrapper => P::SyscallWrapper,
            Feature::Ldimm64FullRangeOff => P::Ldimm64FullRangeOff,
        };
        self.probes.supported(p)
    }

    /// What the load's token delegates, when there is a token and it could be read.
    pub fn delegation(&self) -> Option<&bpfload_probe::Delegation> {
        self.probes.delegation().map(|(d, _)| d)
    }

    pub fn btf(&self, f: BtfFeature) -> bool {
        self.probes.btf_feature(f)
    }
}
