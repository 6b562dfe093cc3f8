//! BPF token at object level, with libbpf's exact rules (libbpf-behaviour.md §1.4).
//!
//! - The token is created at load (prepare) time, never at open.
//! - A path option beats `LIBBPF_BPF_TOKEN_PATH`; the empty string from either disables tokens.
//! - Implicit mode (neither set) tries `/sys/fs/bpf`. Any failure there is not an error: the load
//!   continues without a token and only a debug line is logged. libbpf's "failed to create BPF
//!   token ... skipping optional step" lines are routinely mistaken for the cause of unrelated
//!   failures, so nothing about an implicit attempt is printed at a higher level.
//! - Explicit mode (option or variable): any failure fails the load with an error that names the
//!   path, the errno and what to check. There is no silent fallback to a tokenless load.
//! - A caller-given token fd is duplicated (close-on-exec, never 0..=2); the caller keeps theirs.
//! - The token fd lives as long as the loaded object.

use std::fmt;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use bpfload_probe::delegation::{Delegation, DelegationSource, MaskKind, NameTables};
use bpfload_syscall::Errno;

/// libbpf's `BPF_FS_DEFAULT_PATH`: where implicit mode looks for a delegated bpffs.
pub const DEFAULT_BPFFS: &str = "/sys/fs/bpf";

/// The environment variable libbpf reads when no token path option is given.
pub const TOKEN_PATH_ENV: &str = "LIBBPF_BPF_TOKEN_PATH";

/// libbpf refuses token paths of `PATH_MAX` bytes or more with ENAMETOOLONG.
const PATH_MAX: usize = 4096;

/// What the caller asked for.
#[derive(Debug, Default)]
pub enum TokenRequest {
    /// No option: `LIBBPF_BPF_TOKEN_PATH` if set (explicit; `""` disables), else implicit
    /// `/sys/fs/bpf`.
    #[default]
    Default,
    /// `token_path(..)`: explicit; the empty path disables tokens (and beats the variable).
    Path(PathBuf),
    /// `token_fd(..)`: a token the caller already has, already duplicated by [`TokenRequest::from_fd`].
    Fd(OwnedFd),
}

impl TokenRequest {
    /// A request for a caller-given token: duplicates it (`F_DUPFD_CLOEXEC` from 3, so the copy
    /// is close-on-exec and never 0..=2). The caller's fd stays theirs.
    pub fn from_fd(fd: BorrowedFd<'_>) -> Result<Self, TokenError> {
        fd.try_clone_to_owned()
            .map(TokenRequest::Fd)
            .map_err(|e| TokenError::Dup {
                errno: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
            })
    }

    /// Resolves the request against the environment (read now, and only when no path option was
    /// given), without touching the kernel.
    pub fn resolve(&self) -> Resolved {
        self.resolve_with(|k| std::env::var_os(k))
    }

    /// Resolves the request for an object whose `LIBBPF_BPF_TOKEN_PATH` was `env_at_open` when
    /// it was opened (libbpf reads the variable at open, not at load).
    pub fn resolve_for_object(&self, env_at_open: Option<&std::ffi::OsStr>) -> Resolved {
        self.resolve_with(|_| env_at_open.map(ToOwned::to_owned))
    }

    fn resolve_with(&self, getenv: impl Fn(&str) -> Option<std::ffi::OsString>) -> Resolved {
        let (path, source) = match self {
            TokenRequest::Fd(_) => return Resolved::Fd,
            TokenRequest::Path(p) => (p.clone(), PathSource::Option),
            TokenRequest::Default => match getenv(TOKEN_PATH_ENV) {
                Some(v) => (PathBuf::from(v), PathSource::Env),
                None => return Resolved::Implicit(PathBuf::from(DEFAULT_BPFFS)),
            },
        };
        if path.as_os_str().is_empty() {
            Resolved::Disabled(source)
        } else {
            Resolved::Explicit(path, source)
        }
    }
}

/// Where an explicit path came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathSource {
    /// The `token_path` option (`--token-path`).
    Option,
    /// `LIBBPF_BPF_TOKEN_PATH`.
    Env,
}

impl fmt::Display for PathSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathSource::Option => "token path option",
            PathSource::Env => TOKEN_PATH_ENV,
        })
    }
}

/// A request after reading the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// Tokens disabled by an empty path.
    Disabled(PathSource),
    /// Try this bpffs; failures are silent.
    Implicit(PathBuf),
    /// Use this bpffs; failures fail the load.
    Explicit(PathBuf, PathSource),
    /// Use the caller's token.
    Fd,
}

/// Report mode, as in the JSON `"token": {"mode": ...}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenMode {
    Implicit,
    Explicit,
    Disabled,
}

impl TokenMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenMode::Implicit => "implicit",
            TokenMode::Explicit => "explicit",
            TokenMode::Disabled => "disabled",
        }
    }
}

impl fmt::Display for TokenMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened to the token of one load: part of the load result and of `--json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenReport {
    pub mode: TokenMode,
    /// The bpffs path tried (`None` when disabled or for a caller-given fd).
    pub path: Option<PathBuf>,
    /// Whether the load holds a token.
    pub created: bool,
    /// Why there is no token (implicit mode: informational only; explicit: the load failed).
    pub error: Option<String>,
}

impl TokenReport {
    /// `{"mode": "implicit"|"explicit"|"disabled", "path": ..., "created": bool, "error": ...}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "mode": self.mode.as_str(),
            "path": self.path.as_ref().map(|p| p.to_string_lossy().into_owned()),
            "created": self.created,
            "error": self.error,
        })
    }
}

/// One line for people. An implicit attempt that found no delegated bpffs is the normal case
/// outside containers, so its line carries no errno: libbpf's "failed (-95) to create BPF token"
/// lines in that situation are routinely mistaken for the cause of unrelated failures. The
/// errno stays in [`TokenReport::error`] (and `--json`).
impl fmt::Display for TokenReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.mode, &self.path, self.created) {
            (TokenMode::Disabled, _, _) => f.write_str("disabled"),
            (mode, None, true) => write!(f, "{mode}: the caller's token"),
            (mode, Some(p), true) => write!(f, "{mode} {}: token created", p.display()),
            (TokenMode::Implicit, p, false) => write!(
                f,
                "implicit{}: none (no delegated bpffs; using the process's own privileges)",
                p.as_ref()
                    .map(|p| format!(" {}", p.display()))
                    .unwrap_or_default()
            ),
            (TokenMode::Explicit, p, false) => {
                if let Some(p) = p {
                    write!(f, "explicit {}: ", p.display())?;
                } else {
                    f.write_str("explicit: ")?;
                }
                match &self.error {
                    Some(e) => write!(f, "failed ({e})"),
                    None => f.write_str("no token"),
                }
            }
        }
    }
}

/// The step of token acquisition that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStep {
    Open,
    Create,
}

/// An explicit token request that could not be honoured. Implicit failures never produce one.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    #[error(
        "BPF token path from {from} is too long ({len} bytes, limit {PATH_MAX}): ENAMETOOLONG"
    )]
    PathTooLong { from: PathSource, len: usize },
    #[error(
        "BPF token from {from}: cannot open bpffs directory {}: {errno}; {hint}",
        path.display()
    )]
    Open {
        path: PathBuf,
        from: PathSource,
        errno: Errno,
        hint: String,
    },
    #[error(
        "BPF token from {from}: BPF_TOKEN_CREATE on {} failed: {errno}; {hint}",
        path.display()
    )]
    Create {
        path: PathBuf,
        from: PathSource,
        errno: Errno,
        hint: String,
    },
    #[error("duplicating the caller's BPF token fd: {errno}")]
    Dup { errno: Errno },
    /// The caller's fd is not a BPF token (its fdinfo has no `allowed_cmds:` line); the kernel
    /// would answer every command with a bare EINVAL or EBADF.
    #[error("the fd given as BPF token is not a BPF token ({target}); create one with BPF_TOKEN_CREATE from a delegated bpffs")]
    NotAToken { target: String },
    /// The token exists but its feature cache could not be made (e.g. EMFILE duplicating it).
    /// The load fails rather than probe without the token it loads with.
    #[error("BPF token: its feature cache: {reason}")]
    FeatureCache { reason: String, errno: Errno },
}

impl TokenError {
    /// The errno behind the failure.
    pub fn errno(&self) -> Errno {
        match self {
            TokenError::PathTooLong { .. } => Errno::ENAMETOOLONG,
            TokenError::Open { errno, .. }
            | TokenError::Create { errno, .. }
            | TokenError::Dup { errno }
            | TokenError::FeatureCache { errno, .. } => *errno,
            TokenError::NotAToken { .. } => Errno::EINVAL,
        }
    }

    /// The report for a load that failed on its token.
    pub fn report(&self) -> TokenReport {
        let path = match self {
            TokenError::Open { path, .. } | TokenError::Create { path, .. } => Some(path.clone()),
            _ => None,
        };
        TokenReport {
            mode: TokenMode::Explicit,
            path,
            created: false,
            error: Some(self.to_string()),
        }
    }
}

/// Acquires the token for one load (call at the start of prepare).
///
/// Returns the token (if any) and the report. Errors only in explicit mode.
// Kept out of the load pipeline's one big function: smaller code there (issue 8).
#[inline(never)]
pub fn acquire(
    req: &TokenRequest,
    env_at_open: Option<&std::ffi::OsStr>,
) -> Result<(Option<OwnedFd>, TokenReport), TokenError> {
    let resolved = req.resolve_for_object(env_at_open);
    match resolved {
        Resolved::Fd => {
            let TokenRequest::Fd(fd) = req else {
                unreachable!("Resolved::Fd only comes from TokenRequest::Fd")
            };
            // Our own copy: the request (and the builder holding it) may be dropped before the
            // loaded object. try_clone is F_DUPFD_CLOEXEC from 3.
            if !is_token(fd.as_fd()) {
                let target = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_else(|_| "unknown".into());
                return Err(TokenError::NotAToken { target });
            }
            let fd = fd.try_clone().map_err(|e| TokenError::Dup {
                errno: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
            })?;
            Ok((
                Some(fd),
                TokenReport {
                    mode: TokenMode::Explicit,
                    path: None,
                    created: true,
                    error: None,
                },
            ))
        }
        Resolved::Disabled(source) => {
            log::debug!("BPF token disabled by an empty {source}");
            Ok((
                None,
                TokenReport {
                    mode: TokenMode::Disabled,
                    path: None,
                    created: false,
                    error: None,
                },
            ))
        }
        Resolved::Implicit(path) => match create_at(&path) {
            Ok(fd) => {
                log::debug!("BPF token created from {} (implicit)", path.display());
                Ok((Some(fd), created_report(TokenMode::Implicit, path)))
            }
            Err((step, errno)) => {
                // Not an error, and not worth more than a debug line (see module docs).
                log::debug!(
                    "no implicit BPF token from {}: {} {errno}; loading without a token",
                    path.display(),
                    step_name(step)
                );
                let error = format!(
                    "{} {}: {errno}; {}",
                    step_name(step),
                    path.display(),
                    hint(step, errno, &path)
                );
                Ok((
                    None,
                    TokenReport {
                        mode: TokenMode::Implicit,
                        path: Some(path),
                        created: false,
                        error: Some(error),
                    },
                ))
            }
        },
        Resolved::Explicit(path, source) => {
            let len = path.as_os_str().len();
            if len >= PATH_MAX {
                return Err(TokenError::PathTooLong { from: source, len });
            }
            match create_at(&path) {
                Ok(fd) => {
                    log::debug!("BPF token created from {} ({source})", path.display());
                    Ok((Some(fd), created_report(TokenMode::Explicit, path)))
                }
                Err((step, errno)) => {
                    let hint = hint(step, errno, &path);
                    Err(match step {
                        TokenStep::Open => TokenError::Open {
                            path,
                            from: source,
                            errno,
                            hint,
                        },
                        TokenStep::Create => TokenError::Create {
                            path,
                            from: source,
                            errno,
                            hint,
                        },
                    })
                }
            }
        }
    }
}

/// Whether `fd` is a BPF token: its `/proc/self/fdinfo` has the token's `allowed_cmds:` line
/// (every kernel with tokens, 6.9+).
pub fn is_token(fd: BorrowedFd<'_>) -> bool {
    std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))
        .is_ok_and(|t| t.lines().any(|l| l.starts_with("allowed_cmds:")))
}

fn created_report(mode: TokenMode, path: PathBuf) -> TokenReport {
    TokenReport {
        mode,
        path: Some(path),
        created: true,
        error: None,
    }
}

fn step_name(step: TokenStep) -> &'static str {
    match step {
        TokenStep::Open => "opening bpffs",
        TokenStep::Create => "BPF_TOKEN_CREATE on",
    }
}

/// Opens the bpffs directory (O_RDONLY|O_DIRECTORY|O_CLOEXEC, as libbpf in effect does) and
/// creates a token from it. The directory fd is closed before returning.
pub fn create_at(path: &Path) -> Result<OwnedFd, (TokenStep, Errno)> {
    let dir = open_bpffs_dir(path).map_err(|e| (TokenStep::Open, e))?;
    bpfload_syscall::token::create(dir.as_fd(), 0).map_err(|e| (TokenStep::Create, e.errno()))
}

fn open_bpffs_dir(path: &Path) -> Result<OwnedFd, Errno> {
    let f = File::options()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(path)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    let fd = OwnedFd::from(f);
    // The rule is "never 0..=2" for every fd we hold, even briefly (a process started with
    // stdin closed would get the directory there).
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    bpfload_syscall::fd::dup_good(fd.as_fd())
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EBADF)))
}

/// What to check, for a failed open or BPF_TOKEN_CREATE (kernel/bpf/token.c).
fn hint(step: TokenStep, errno: Errno, path: &Path) -> String {
    let p = path.display();
    match (step, errno.raw()) {
        (TokenStep::Open, libc::ENOENT) => {
            format!("{p} does not exist; mount a delegated bpffs there or fix the token path")
        }
        (TokenStep::Open, libc::ENOTDIR) => {
            format!("{p} is not a directory; the token path must be the root of a bpffs mount")
        }
        (TokenStep::Open, libc::EACCES) | (TokenStep::Open, libc::EPERM) => {
            format!("no permission to open {p}")
        }
        (TokenStep::Open, _) => format!("check that {p} is readable"),
        (TokenStep::Create, libc::ENOENT) => format!(
            "the bpffs at {p} delegates nothing; a privileged process in the initial user \
             namespace must set delegate_cmds, delegate_maps, delegate_progs and/or \
             delegate_attachs on it"
        ),
        (TokenStep::Create, libc::EINVAL) => format!(
            "{p} is not the root of a bpffs mount (or the kernel is older than 6.9 and has no \
             BPF_TOKEN_CREATE); check /proc/self/mountinfo"
        ),
        (TokenStep::Create, libc::EOPNOTSUPP) => format!(
            "this process is in the initial user namespace, where BPF tokens do not exist; \
             load without a token (unset {TOKEN_PATH_ENV} or pass an empty token path)"
        ),
        (TokenStep::Create, libc::EPERM) => format!(
            "the bpffs at {p} belongs to a different user namespace than this process, or this \
             process lacks CAP_BPF in it; create the token from inside the user namespace the \
             bpffs was created for"
        ),
        (TokenStep::Create, libc::EACCES) => {
            "denied by a security module (security_bpf_token_create)".to_string()
        }
        (TokenStep::Create, libc::EBADF) => format!("{p} could not be used as a bpffs fd"),
        (TokenStep::Create, _) => format!("check the bpffs mounted at {p}"),
    }
}

// ------------------------------------------------------------------------------------------
// `bpfload token [PATH]`: can a token be created here, and what would it delegate?

/// Name tables for the four delegation masks, from the running kernel's BTF (the kernel's own
/// parser uses the same enums; the probe crate builds them once per process).
pub fn kernel_names() -> &'static NameTables {
    bpfload_probe::kernel_facts::name_tables()
}

/// The bpffs mounted at a path, as `/proc/self/mountinfo` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BpffsMount {
    pub mount_point: PathBuf,
    /// The super options (`rw,delegate_cmds=...`).
    pub options: String,
    /// The delegation those options give (None if they could not be parsed).
    pub delegation: Option<Delegation>,
}

/// Answer of `bpfload token [PATH]`.
#[derive(Debug, Clone)]
pub struct TokenStatus {
    pub path: PathBuf,
    /// The bpffs mounted exactly at `path` (None: `path` is not a bpffs mount point, or
    /// mountinfo has no entry for it, e.g. a `/proc/self/fd/N` path).
    pub mount: Option<BpffsMount>,
    /// Whether BPF_TOKEN_CREATE succeeded (the token is closed again right away).
    pub created: bool,
    pub errno: Option<Errno>,
    /// Why no token: the failed step, errno and what to check.
    pub error: Option<String>,
    /// What the token itself reports (`bpf_token_info`, or its fdinfo on 6.9..6.16).
    pub token_delegation: Option<(Delegation, DelegationSource)>,
    pub names: &'static NameTables,
}

/// Whether a token can be created from `path` here, and what it would delegate, both from the
/// mount options and from the token's own info.
pub fn token_status(path: &Path) -> TokenStatus {
    let names = kernel_names();
    let mount = bpffs_mount_at(path, names);
    let (created, errno, error, token_delegation) = match create_at(path) {
        Ok(fd) => {
            let d = match bpfload_probe::token_delegation(fd.as_fd()) {
                Ok(d) => Some(d),
                Err(e) => {
                    log::debug!("reading the token's delegation: {e}");
                    None
                }
            };
            (true, None, None, d)
        }
        Err((step, errno)) => (
            false,
            Some(errno),
            Some(format!(
                "{} {}: {errno}; {}",
                step_name(step),
                path.display(),
                hint(step, errno, path)
            )),
            None,
        ),
    };
    TokenStatus {
        path: path.to_path_buf(),
        mount,
        created,
        errno,
        error,
        token_delegation,
        names,
    }
}

fn bpffs_mount_at(path: &Path, names: &NameTables) -> Option<BpffsMount> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let e = bpfload_probe::delegation::parse_mountinfo(&text)
        .filter(|e| e.fs_type == "bpf" && Path::new(&e.mount_point) == canon)
        .last()?;
    let delegation = Delegation::from_mount_options(&e.super_options, names).ok();
    Some(BpffsMount {
        mount_point: canon,
        options: e.super_options,
        delegation,
    })
}

fn mask_names(mask: u64, kind: MaskKind, names: &NameTables) -> Vec<String> {
    if mask == 0 {
        return Vec::new();
    }
    bpfload_probe::delegation::format_mask(mask, names.table(kind))
        .split(':')
        .map(str::to_string)
        .collect()
}

fn delegation_json(d: &Delegation, names: &NameTables) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for kind in MaskKind::ALL {
        let key = kind.mount_option().trim_start_matches("delegate_");
        m.insert(
            key.to_string(),
            serde_json::json!({
                "mask": format!("{:#x}", d.mask(kind)),
                "names": mask_names(d.mask(kind), kind, names),
            }),
        );
    }
    serde_json::Value::Object(m)
}

impl TokenStatus {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "path": self.path.to_string_lossy(),
            "created": self.created,
            "errno": self.errno.map(|e| e.name()),
            "error": self.error,
            "mount": self.mount.as_ref().map(|m| serde_json::json!({
                "mount_point": m.mount_point.to_string_lossy(),
                "options": m.options,
                "delegation": m.delegation.as_ref().map(|d| delegation_json(d, self.names)),
            })),
            "token": self.token_delegation.as_ref().map(|(d, src)| serde_json::json!({
                "source": src.to_string(),
                "delegation": delegation_json(d, self.names),
            })),
        })
    }
}

impl fmt::Display for TokenStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |f: &mut fmt::Formatter<'_>, d: &Delegation| -> fmt::Result {
            for kind in MaskKind::ALL {
                let n = mask_names(d.mask(kind), kind, self.names);
                let v = if n.is_empty() {
                    "(none)".to_string()
                } else {
                    n.join(" ")
                };
                writeln!(f, "    {:<17} {v}", kind.mount_option())?;
            }
            Ok(())
        };
        if self.created {
            writeln!(
                f,
                "{}: a BPF token can be created here",
                self.path.display()
            )?;
        } else {
            writeln!(f, "{}: no BPF token", self.path.display())?;
            if let Some(e) = &self.error {
                writeln!(f, "  why: {e}")?;
            }
        }
        match &self.mount {
            Some(m) => {
                writeln!(f, "  bpffs mount options: {}", m.options)?;
                match &m.delegation {
                    Some(d) => show(f, d)?,
                    None => writeln!(f, "    (options could not be parsed)")?,
                }
            }
            None => writeln!(
                f,
                "  mount: no bpffs mount point at this path in /proc/self/mountinfo"
            )?,
        }
        if let Some((d, src)) = &self.token_delegation {
            writeln!(f, "  token delegation ({src}):")?;
            show(f, d)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn env(v: Option<&str>) -> impl Fn(&str) -> Option<OsString> + '_ {
        move |k| {
            assert_eq!(k, TOKEN_PATH_ENV);
            v.map(OsString::from)
        }
    }

    #[test]
    fn resolution_follows_libbpf() {
        let d = TokenRequest::Default;
        assert_eq!(
            d.resolve_with(env(None)),
            Resolved::Implicit("/sys/fs/bpf".into())
        );
        assert_eq!(
            d.resolve_with(env(Some(""))),
            Resolved::Disabled(PathSource::Env)
        );
        assert_eq!(
            d.resolve_with(env(Some("/x"))),
            Resolved::Explicit("/x".into(), PathSource::Env)
        );
        // The option beats the variable, the empty option included.
        let p = TokenRequest::Path("".into());
        assert_eq!(
            p.resolve_with(env(Some("/x"))),
            Resolved::Disabled(PathSource::Option)
        );
        let p = TokenRequest::Path("/y".into());
        assert_eq!(
            p.resolve_with(env(Some(""))),
            Resolved::Explicit("/y".into(), PathSource::Option)
        );
        assert_eq!(
            p.resolve_with(env(None)),
            Resolved::Explicit("/y".into(), PathSource::Option)
        );
    }

    #[test]
    fn report_json_shape() {
        let r = TokenReport {
            mode: TokenMode::Implicit,
            path: Some("/sys/fs/bpf".into()),
            created: false,
            error: Some("x".into()),
        };
        let j = r.to_json();
        assert_eq!(j["mode"], "implicit");
        assert_eq!(j["path"], "/sys/fs/bpf");
        assert_eq!(j["created"], false);
        assert_eq!(j["error"], "x");
        let r = TokenReport {
            mode: TokenMode::Disabled,
            path: None,
            created: false,
            error: None,
        };
        let j = r.to_json();
        assert!(j["path"].is_null() && j["error"].is_null());
    }

    #[test]
    fn implicit_failure_line_has_no_errno() {
        let r = TokenReport {
            mode: TokenMode::Implicit,
            path: Some("/sys/fs/bpf".into()),
            created: false,
            error: Some("BPF_TOKEN_CREATE on /sys/fs/bpf: EOPNOTSUPP (errno 95)".into()),
        };
        let line = r.to_string();
        assert!(
            !line.contains("EOPNOTSUPP") && !line.contains("errno"),
            "{line}"
        );
        assert!(line.starts_with("implicit /sys/fs/bpf: none"), "{line}");
        let r = TokenReport {
            mode: TokenMode::Explicit,
            path: Some("/x".into()),
            created: false,
            error: Some("ENOENT".into()),
        };
        assert_eq!(r.to_string(), "explicit /x: failed (ENOENT)");
    }

    #[test]
    fn explicit_missing_path_names_path_and_errno() {
        let req = TokenRequest::Path("/nonexistent/bpffs-for-token".into());
        let e = acquire(&req, None).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("/nonexistent/bpffs-for-token"), "{s}");
        assert!(s.contains("ENOENT"), "{s}");
        assert!(s.contains("does not exist"), "{s}");
        assert_eq!(e.errno(), Errno::ENOENT);
        assert_eq!(e.report().mode, TokenMode::Explicit);
    }

    #[test]
    fn too_long_path_is_enametoolong() {
        let long = "/a".repeat(PATH_MAX);
        let e = acquire(&TokenRequest::Path(long.into()), None).unwrap_err();
        assert_eq!(e.errno(), Errno::ENAMETOOLONG);
    }

    #[test]
    fn explicit_not_a_directory() {
        let e = acquire(&TokenRequest::Path("/proc/self/status".into()), None).unwrap_err();
        assert_eq!(e.errno(), Errno::ENOTDIR, "{e}");
    }

    #[test]
    fn disabled_touches_nothing() {
        let (fd, r) = acquire(&TokenRequest::Path("".into()), None).unwrap();
        assert!(fd.is_none());
        assert_eq!(r.mode, TokenMode::Disabled);
        assert!(!r.created && r.error.is_none() && r.path.is_none());
    }

    #[test]
    fn fd_request_is_duplicated_above_2() {
        let f = File::open("/proc/self/status").unwrap();
        let req = TokenRequest::from_fd(f.as_fd()).unwrap();
        let TokenRequest::Fd(ref owned) = req else {
            panic!()
        };
        use std::os::fd::AsRawFd;
        assert!(owned.as_raw_fd() > 2);
        assert_ne!(owned.as_raw_fd(), f.as_raw_fd());
        // Not a token: refused with what it is instead (a real token's path through acquire
        // is covered by the userns scenarios in tests/tests/token.rs).
        assert!(!is_token(owned.as_fd()));
        let e = acquire(&req, None).unwrap_err();
        assert!(
            matches!(&e, TokenError::NotAToken { target } if target.ends_with("/status")),
            "{e}"
        );
    }

    /// Child of [`the_variable_is_read_when_the_object_is_opened`] (run with
    /// `LIBBPF_BPF_TOKEN_PATH` set, one test thread, so changing the environment is safe).
    #[test]
    #[ignore = "child of the_variable_is_read_when_the_object_is_opened"]
    fn child_variable_read_at_open() {
        use crate::{Loader, Object};
        let bad = std::env::var(TOKEN_PATH_ENV).expect("run by the parent test");
        let path = crate::tests::fixtures::fixture_objects()
            .into_iter()
            .find(|p| p.ends_with("maps.bpf.o"))
            .unwrap();
        // Opened while the variable names a missing bpffs: the load is explicit and fails on
        // that path, although the variable is gone by then.
        let opened_with = Object::open_file(&path).unwrap();
        std::env::remove_var(TOKEN_PATH_ENV);
        let opened_without = Object::open_file(&path).unwrap();
        let f = Loader::new().load_reporting(&opened_with).unwrap_err();
        assert!(
            matches!(&f.error, crate::LoadError::Token(TokenError::Open { path, from: PathSource::Env, .. }) if path.to_str() == Some(bad.as_str())),
            "{}",
            f.error
        );
        // Opened without the variable: implicit, whatever the environment says at load.
        std::env::set_var(TOKEN_PATH_ENV, &bad);
        let mode = match Loader::new().load_reporting(&opened_without) {
            Ok(l) => l.token_report().mode,
            Err(f) => f.token.expect("past the token step").mode,
        };
        assert_eq!(mode, TokenMode::Implicit);
        println!("variable read at open: ok");
    }

    /// libbpf reads `LIBBPF_BPF_TOKEN_PATH` in `bpf_object_open`; a load uses that value even if
    /// the environment changed in between (found by review: it was read at load).
    #[test]
    fn the_variable_is_read_when_the_object_is_opened() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "token::tests::child_variable_read_at_open",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(TOKEN_PATH_ENV, "/nonexistent-bpffs-for-bpfload-test")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("variable read at open: ok"),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
