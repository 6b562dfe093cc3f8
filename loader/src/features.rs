//! What the kernel supports, as far as the load pipeline needs to know.
//!
//! Every question goes through [`Features`], so the answers come from one place: the feature cache
//! of the `probe` crate, keyed by the token the load uses (libbpf's per-object cache when a token
//! exists, the process-wide cache otherwise).

use std::os::fd::BorrowedFd;
use std::sync::{Arc, OnceLock};

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
    /// `FEAT_UPROBE_MULTI_LINK`: USDT programs load with `BPF_TRACE_UPROBE_MULTI` where the
    /// kernel has multi-uprobe links, as in libbpf (found by review: it was always "missing").
    UprobeMultiLink,
    /// `FEAT_BPF_COOKIE` (the `LINUX_HAS_BPF_COOKIE` kconfig extern).
    BpfCookie,
    /// `FEAT_SYSCALL_WRAPPER` (the `LINUX_HAS_SYSCALL_WRAPPER` kconfig extern).
    SyscallWrapper,
    /// `FEAT_LDIMM64_FULL_RANGE_OFF`: arena globals go at the end of the arena.
    Ldimm64FullRangeOff,
}

/// Feature answers for one load.
///
/// Each feature is decided once per load and kept here: the probe cache keeps only conclusive
/// answers (an undecided probe is asked again next time), so without this a feature asked twice
/// in one load could get two answers (found by review: arena globals were copied for one answer
/// of `LDIMM64_FULL_RANGE_OFF` and addressed for the other). libbpf gets the same consistency by
/// caching a failed probe as missing.
pub(crate) struct Features {
    probes: Arc<Probes>,
    answers: [OnceLock<bool>; bpfload_probe::Feature::COUNT],
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
        Ok(Features {
            probes,
            answers: std::array::from_fn(|_| OnceLock::new()),
        })
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
            Feature::UprobeMultiLink => P::UprobeMultiLink,
            Feature::BpfCookie => P::BpfCookie,
            Feature::SyscallWrapper => P::SyscallWrapper,
            Feature::Ldimm64FullRangeOff => P::Ldimm64FullRangeOff,
        };
        self.answer(p)
    }

    fn answer(&self, p: bpfload_probe::Feature) -> bool {
        *self.answers[p.index()].get_or_init(|| self.probes.supported(p))
    }

    /// What the load's token delegates, when there is a token and it could be read.
    pub fn delegation(&self) -> Option<&bpfload_probe::Delegation> {
        self.probes.delegation().map(|(d, _)| d)
    }

    pub fn btf(&self, f: BtfFeature) -> bool {
        self.answer(bpfload_probe::btf_feature_to_feature(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfload_syscall::uapi::bpf_cmd;
    use bpfload_syscall::{with_fault_plan, FaultPlan};

    /// One load sees one answer per feature, even when the probe cache would answer the next
    /// question differently: a probe that fails with an unexpected errno is "unknown", which the
    /// cache does not keep, so it is probed again on the next question.
    #[test]
    fn a_feature_has_one_answer_per_load() {
        if !crate::tests::fixtures::require_root("feature probes") {
            return;
        }
        let probes = Arc::new(Probes::private(None).unwrap());
        let features = Features {
            probes: probes.clone(),
            answers: std::array::from_fn(|_| OnceLock::new()),
        };
        // The first question's probe fails (ENOMEM on every PROG_LOAD): undecided, so "no".
        let plan = FaultPlan::nth_of(bpf_cmd::BPF_PROG_LOAD, 1, Errno::ENOMEM).times(u64::MAX);
        let first = with_fault_plan(plan, || features.has(Feature::ProgBindMap)).0;
        assert!(!first);
        // The cache itself now answers yes (this kernel has PROG_BIND_MAP)...
        assert!(probes.supported(bpfload_probe::Feature::ProgBindMap));
        // ...but this load keeps its first answer.
        assert_eq!(features.has(Feature::ProgBindMap), first);
        // The same for BTF features, through the same per-load answers.
        let plan = FaultPlan::nth_of(bpf_cmd::BPF_BTF_LOAD, 1, Errno::ENOMEM).times(u64::MAX);
        let first = with_fault_plan(plan, || features.btf(BtfFeature::Float)).0;
        assert!(!first);
        assert!(probes.btf_feature(BtfFeature::Float));
        assert_eq!(features.btf(BtfFeature::Float), first);
    }
}
