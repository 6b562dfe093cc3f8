//! Feature caches: one process-wide cache for loads without a token, one per token otherwise.
//!
//! libbpf keeps a global `feature_cache` and, when an object has a token, a per-object cache whose
//! probes pass the token. We key token caches by the token's identity (`st_dev`, `st_ino` of the
//! token fd): the fd *number* can be closed and reused for another token, but the token's inode is
//! unique while it exists, and a cache keeps the token alive by holding a dup of its fd.
//!
//! Each feature has its own slot: a lock-free `OnceLock` for the cached (conclusive) answer and a
//! mutex that serialises probing, so concurrent loads never run one probe twice for one cache.
//! Unknown answers (not permitted, unexpected errors) are returned but not cached, so a later
//! check (with more privileges, say) probes again.

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::delegation::{Delegation, DelegationError, DelegationSource};
use crate::feature::Feature;
use crate::result::{FeatureResult, Support};

/// Identity of a BPF token: device and inode of its (anonymous bpffs) file.
#[derive(Debug, Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenKey {
    pub dev: u64,
    pub ino: u64,
}

impl TokenKey {
    /// `fstat` of the fd.
    pub fn of(fd: BorrowedFd<'_>) -> std::io::Result<TokenKey> {
        let file = File::from(fd.try_clone_to_owned()?);
        let md = file.metadata()?;
        Ok(TokenKey {
            dev: md.dev(),
            ino: md.ino(),
        })
    }
}

/// Errors creating a token cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("token fd: fstat failed: {0}")]
    Stat(#[source] std::io::Error),
    #[error("token fd: dup failed: {0}")]
    Dup(#[source] std::io::Error),
    /// The fd is not a BPF token (neither `bpf_token_info` nor its fdinfo describe one). Probing
    /// with it would make every probe fail with EINVAL and look like missing features.
    #[error("not a BPF token: {0}")]
    NotAToken(#[source] DelegationError),
}

#[derive(Default)]
struct Slot {
    answer: OnceLock<FeatureResult>,
    probing: Mutex<()>,
}

/// A feature cache. Get one with [`Probes::global`] or [`Probes::for_token`].
pub struct Probes {
    token: Option<OwnedFd>,
    key: Option<TokenKey>,
    slots: [Slot; Feature::COUNT],
    /// Whether the combined BTF blob (every kind at once) loaded; see `decide::COMBINED_BTF`.
    pub(crate) combined_btf: OnceLock<bool>,
    delegation: Option<(Delegation, DelegationSource)>,
}

impl std::fmt::Debug for Probes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Probes")
            .field("token", &self.key)
            .field(
                "cached",
                &Feature::ALL
                    .iter()
                    .filter_map(|&ft| self.cached(ft).map(|r| (ft, r.support)))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

static GLOBAL: OnceLock<Arc<Probes>> = OnceLock::new();
static REGISTRY: Mutex<Option<HashMap<TokenKey, Weak<Probes>>>> = Mutex::new(None);

impl Probes {
    fn with_token(token: Option<OwnedFd>, key: Option<TokenKey>) -> Probes {
        Probes {
            token,
            key,
            slots: Default::default(),
            combined_btf: OnceLock::new(),
            delegation: None,
        }
    }

    /// A cache for a token: checks that the fd is a token (reading its delegation) and keeps a
    /// dup of it.
    fn new_for_token(token: BorrowedFd<'_>, key: TokenKey) -> Result<Probes, CacheError> {
        let delegation = delegation_of(crate::token_delegation(token))?;
        let dup = bpfload_syscall::fd::dup_good(token).map_err(CacheError::Dup)?;
        Ok(Probes {
            delegation,
            ..Probes::with_token(Some(dup), Some(key))
        })
    }

    /// The process-wide cache for loads without a token.
    pub fn global() -> Arc<Probes> {
        GLOBAL
            .get_or_init(|| Arc::new(Probes::with_token(None, None)))
            .clone()
    }

    /// The cache for this token: shared by every holder of the same token (same inode), whatever
    /// fd number they use. Fails if the fd is not a BPF token. The registry holds weak references, so the cache (and its dup of the
    /// token fd) goes away with the last object that uses it.
    pub fn for_token(token: BorrowedFd<'_>) -> Result<Arc<Probes>, CacheError> {
        let key = TokenKey::of(token).map_err(CacheError::Stat)?;
        let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
        let map = reg.get_or_insert_with(HashMap::new);
        if let Some(p) = map.get(&key).and_then(Weak::upgrade) {
            return Ok(p);
        }
        map.retain(|_, w| w.strong_count() > 0);
        let probes = Arc::new(Probes::new_for_token(token, key)?);
        map.insert(key, Arc::downgrade(&probes));
        Ok(probes)
    }

    /// A cache shared with nobody (not registered): for benchmarks of a cold cache and for tests.
    pub fn private(token: Option<BorrowedFd<'_>>) -> Result<Probes, CacheError> {
        match token {
            None => Ok(Probes::with_token(None, None)),
            Some(t) => Probes::new_for_token(t, TokenKey::of(t).map_err(CacheError::Stat)?),
        }
    }

    /// The token every probe of this cache passes.
    pub fn token(&self) -> Option<BorrowedFd<'_>> {
        self.token.as_ref().map(|t| t.as_fd())
    }

    /// The token's identity (None for the tokenless cache).
    pub fn token_key(&self) -> Option<TokenKey> {
        self.key
    }

    /// What the token delegates (read when the cache was created; None without a token).
    pub fn delegation(&self) -> Option<&(Delegation, DelegationSource)> {
        self.delegation.as_ref()
    }

    /// The cached answer for a feature, without probing.
    pub fn cached(&self, feature: Feature) -> Option<&FeatureResult> {
        self.slots[feature.index()].answer.get()
    }

    /// Records a conclusive answer another probe established (no-op if one is cached).
    pub(crate) fn offer(&self, result: FeatureResult) {
        if result.support.is_conclusive() {
            let _ = self.slots[result.feature.index()].answer.set(result);
        }
    }

    /// Checks one feature: the cached answer, or runs its probe (at most once per cache while
    /// answers are conclusive; concurrent callers wait for the running probe).
    pub fn check(&self, feature: Feature) -> FeatureResult {
        let slot = &self.slots[feature.index()];
        if let Some(r) = slot.answer.get() {
            return r.clone();
        }
        let _guard = slot.probing.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = slot.answer.get() {
            return r.clone();
        }
        let result = crate::decide::decide(self, feature);
        if result.support.is_conclusive() {
            let _ = slot.answer.set(result.clone());
        } else {
            log::debug!(
                "{}: could not decide {} ({}); not cached",
                self.describe(),
                feature.name(),
                result
            );
        }
        result
    }

    /// libbpf's `kernel_supports()`: true only when Supported. Unknown counts as not supported,
    /// like libbpf's failed probes, so the loader takes the conservative path; callers that need
    /// to tell "not permitted" from "missing" use [`Probes::check`].
    pub fn supported(&self, feature: Feature) -> bool {
        self.check(feature).support == Support::Supported
    }

    /// Checks every feature (for `bpfload probe`).
    pub fn check_all(&self) -> Vec<FeatureResult> {
        Feature::ALL.iter().map(|&f| self.check(f)).collect()
    }

    /// Adapter for the BTF sanitizer's feature callback.
    pub fn btf_feature(&self, feature: bpfload_btf::sanitize::BtfFeature) -> bool {
        self.supported(crate::btf_feature_to_feature(feature))
    }

    fn describe(&self) -> String {
        match self.key {
            None => "global probe cache".to_string(),
            Some(k) => format!("token probe cache (dev {} ino {})", k.dev, k.ino),
        }
    }
}

/// What a token's delegation read means for its cache. A token that says what it delegates, or
/// an fd whose fdinfo shows it is no token (an error: every probe would fail with EINVAL and look
/// like a missing feature). When the fdinfo cannot be read at all (kernels 6.9 to 6.16 have no
/// `bpf_token_info`, and `/proc` may be missing in a container), the token is used without
/// knowing what it delegates: its probes run as libbpf's do (found by review: such a token failed
/// the load).
fn delegation_of(
    read: Result<(Delegation, DelegationSource), DelegationError>,
) -> Result<Option<(Delegation, DelegationSource)>, CacheError> {
    match read {
        Ok(d) => Ok(Some(d)),
        Err(DelegationError::Io { path, source }) => {
            log::debug!(
                "token delegation unknown ({}: {source}); probing as libbpf does",
                path.display()
            );
            Ok(None)
        }
        Err(e) => Err(CacheError::NotAToken(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_delegation_is_unknown_not_an_error() {
        let io = DelegationError::Io {
            path: "/proc/self/fdinfo/7".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert!(matches!(delegation_of(Err(io)), Ok(None)));
        let not_a_token = DelegationError::MissingField("allowed_cmds");
        assert!(matches!(
            delegation_of(Err(not_a_token)),
            Err(CacheError::NotAToken(_))
        ));
        let d = (Delegation::default(), DelegationSource::TokenInfo);
        assert!(matches!(delegation_of(Ok(d)), Ok(Some(_))));
    }

    #[test]
    fn a_file_that_is_not_a_token_is_refused() {
        let f = File::open("/dev/null").unwrap();
        assert!(matches!(
            Probes::for_token(f.as_fd()),
            Err(CacheError::NotAToken(_))
        ));
        assert!(matches!(
            Probes::private(Some(f.as_fd())),
            Err(CacheError::NotAToken(_))
        ));
    }
}
