//! What the kernel supports, as far as the load pipeline needs to know.
//!
//! Every question goes through [`Features`], so the answers come from one place: the feature cache
//! of the `probe` crate, keyed by the token the load uses (libbpf's per-object cache when a token
//! exists, the process-wide cache otherwise).

use std::os::fd::BorrowedFd;
use std::sync::Arc;

use bpfload_btf::BtfFeature;
use bpfload_probe::{CacheError, Probes};
use bpfload_syscall::Errno;

use crate::token::TokenError;

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
    pub fn for_token(token: Option<BorrowedFd<'_>>) -> Result<Self, TokenError> {
        let probes = match token {
            // libbpf: an object with a token probes through its own cache, with that token;
            // never through the process-wide (tokenless) one.
            Some(t) => Probes::for_token(t).map_err(|e| {
                let errno = match &e {
                    CacheError::Stat(io) | CacheError::Dup(io) => {
                        Errno::from_raw(io.raw_os_error().unwrap_or(0))
                    }
                    CacheError::NotAToken(_) => Errno::EINVAL,
                };
                TokenError::FeatureCache {
                    reason: e.to_string(),
                    errno,
                }
            })?,
            None => Probes::global(),
        };
        Ok(Features { probes })
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
