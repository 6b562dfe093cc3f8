//! `bpfload probe [--token-path PATH] [--json]`: every feature, its answer and how it was decided.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cache::{CacheError, Probes};
use crate::delegation::{Delegation, DelegationSource};
use crate::kernel_facts;
use crate::result::FeatureResult;

/// Errors setting up a probe report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("opening bpffs {path}: {source}")]
    OpenBpffs {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("creating a BPF token from {path}: {source}")]
    TokenCreate {
        path: PathBuf,
        #[source]
        source: bpfload_syscall::SysError,
    },
    #[error(transparent)]
    Cache(#[from] CacheError),
}

/// The probe results for one cache.
#[derive(Debug)]
pub struct Report {
    /// The bpffs the token came from (None: no token, the global cache).
    pub token_path: Option<PathBuf>,
    /// What the token delegates, and where that was read.
    pub delegation: Option<(Delegation, DelegationSource)>,
    pub results: Vec<FeatureResult>,
    // Keeps the token (and so the token cache) alive while the report is used.
    _token: Option<OwnedFd>,
    _probes: Arc<Probes>,
}

/// Probes every feature: in the global cache, or with a token created from the bpffs at
/// `token_path` (like libbpf's `bpf_token_path`, mandatory mode: failure is an error).
pub fn report(token_path: Option<&Path>) -> Result<Report, ReportError> {
    let (token, probes) = match token_path {
        None => (None, Probes::global()),
        Some(path) => {
            let dir = File::open(path).map_err(|source| ReportError::OpenBpffs {
                path: path.to_path_buf(),
                source,
            })?;
            let token = bpfload_syscall::token::create(dir.as_fd(), 0).map_err(|source| {
                ReportError::TokenCreate {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
            let probes = Probes::for_token(token.as_fd())?;
            (Some(token), probes)
        }
    };
    let results = probes.check_all();
    Ok(Report {
        token_path: token_path.map(Path::to_path_buf),
        delegation: probes.delegation().cloned(),
        results,
        _token: token,
        _probes: probes,
    })
}

impl Report {
    /// JSON for `--json`.
    pub fn to_json(&self) -> serde_json::Value {
        let names = kernel_facts::name_tables();
        serde_json::json!({
            "token_path": self.token_path.as_ref().map(|p| p.display().to_string()),
            "delegation": self.delegation.as_ref().map(|(d, src)| serde_json::json!({
                "source": src.to_string(),
                "cmds": format!("{:#x}", d.cmds),
                "maps": format!("{:#x}", d.maps),
                "progs": format!("{:#x}", d.progs),
                "attachs": format!("{:#x}", d.attachs),
                "mount_options": d.to_mount_options(names),
            })),
            "features": self.results.iter().map(FeatureResult::to_json).collect::<Vec<_>>(),
        })
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.token_path {
            None => writeln!(f, "cache: global (no token)")?,
            Some(p) => writeln!(f, "cache: token from {}", p.display())?,
        }
        if let Some((d, src)) = &self.delegation {
            writeln!(
                f,
                "delegation ({src}): {}",
                d.to_mount_options(kernel_facts::name_tables())
            )?;
        }
        for r in &self.results {
            writeln!(f, "{r}")?;
        }
        Ok(())
    }
}
