//! Error types of the bpf(2) layer.

use crate::errno::Errno;

/// A bpf(2) command failed, or a wrapper refused its arguments before calling the kernel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{cmd} failed: {errno}{}", detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
pub struct SysError {
    cmd: &'static str,
    errno: Errno,
    detail: Option<String>,
}

impl SysError {
    /// The kernel answered `cmd` with `errno`.
    pub fn kernel(cmd: &'static str, errno: Errno) -> SysError {
        SysError {
            cmd,
            errno,
            detail: None,
        }
    }

    /// The wrapper refused the arguments without calling the kernel (reported as EINVAL, or `errno`).
    pub fn invalid(cmd: &'static str, errno: Errno, detail: impl Into<String>) -> SysError {
        SysError {
            cmd,
            errno,
            detail: Some(detail.into()),
        }
    }

    /// The command name, e.g. `"BPF_MAP_CREATE"`.
    pub fn cmd(&self) -> &'static str {
        self.cmd
    }

    /// The errno.
    pub fn errno(&self) -> Errno {
        self.errno
    }

    /// Why the wrapper refused the call before reaching the kernel, if it did.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }
}

impl From<SysError> for std::io::Error {
    fn from(e: SysError) -> std::io::Error {
        std::io::Error::new(std::io::Error::from_raw_os_error(e.errno.raw()).kind(), e)
    }
}

/// The last `n` non-empty lines of a verifier/BTF log (what a person needs to see first).
pub fn log_tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn fmt_log_suffix(log: &str, truncated: bool) -> String {
    if log.is_empty() {
        return String::new();
    }
    let tail = log_tail(log, 3);
    format!(
        "; log{}: ...\n{}",
        if truncated { " (truncated)" } else { "" },
        tail
    )
}

/// `BPF_PROG_LOAD` failed. Carries the errno and the verifier log of the last attempt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("BPF_PROG_LOAD failed: {errno}{}{}", detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default(), fmt_log_suffix(log, *log_truncated))]
pub struct ProgLoadError {
    /// The errno of the last attempt.
    pub errno: Errno,
    /// The verifier log of the last attempt (empty if none was requested or produced).
    pub log: String,
    /// The log did not fit into the largest buffer allowed (`LogOptions::size_limit`); the kernel reported ENOSPC.
    pub log_truncated: bool,
    /// Set when the wrapper refused the arguments before calling the kernel.
    pub detail: Option<String>,
}

impl ProgLoadError {
    /// The errno of the last attempt.
    pub fn errno(&self) -> Errno {
        self.errno
    }

    /// The verifier log.
    pub fn log(&self) -> &str {
        &self.log
    }

    /// Whether the log was truncated.
    pub fn log_truncated(&self) -> bool {
        self.log_truncated
    }
}

/// `BPF_BTF_LOAD` failed. Carries the errno and the kernel's BTF log of the last attempt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("BPF_BTF_LOAD failed: {errno}{}{}", detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default(), fmt_log_suffix(log, *log_truncated))]
pub struct BtfLoadError {
    /// The errno of the last attempt.
    pub errno: Errno,
    /// The BTF log of the last attempt.
    pub log: String,
    /// The log did not fit into the largest buffer allowed.
    pub log_truncated: bool,
    /// Set when the wrapper refused the arguments before calling the kernel.
    pub detail: Option<String>,
}

impl BtfLoadError {
    /// The errno of the last attempt.
    pub fn errno(&self) -> Errno {
        self.errno
    }

    /// The BTF log.
    pub fn log(&self) -> &str {
        &self.log
    }

    /// Whether the log was truncated.
    pub fn log_truncated(&self) -> bool {
        self.log_truncated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sys_error_display() {
        let e = SysError::kernel("BPF_MAP_FREEZE", Errno::EPERM);
        assert_eq!(
            e.to_string(),
            "BPF_MAP_FREEZE failed: EPERM (errno 1): Operation not permitted"
        );
        assert_eq!(e.errno(), Errno::EPERM);
    }

    #[test]
    fn prog_error_shows_log_tail() {
        let e = ProgLoadError {
            errno: Errno::EACCES,
            log: "0: R1=ctx()\n1: (b7) r0 = 0\n\nR0 !read_ok\nprocessed 2 insns\n".into(),
            log_truncated: false,
            detail: None,
        };
        let s = e.to_string();
        assert!(
            s.starts_with("BPF_PROG_LOAD failed: EACCES (errno 13)"),
            "{s}"
        );
        assert!(
            s.ends_with("1: (b7) r0 = 0\nR0 !read_ok\nprocessed 2 insns"),
            "{s}"
        );
    }
}
