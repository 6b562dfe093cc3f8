//! Verifier/BTF log options and the retry strategy shared by PROG_LOAD and BTF_LOAD.
//!
//! libbpf's strategy (libbpf-behaviour.md §3.3): load first with no log (cheap, and most loads succeed); on
//! failure load again at level 1 into a buffer; if the kernel says ENOSPC the buffer was too small, so grow it
//! and try again. We start small (64 KiB instead of libbpf's 16 MiB) and grow to exactly `log_true_size` when
//! the kernel reports it (6.4+), else double, never beyond `size_limit`.

use std::os::fd::OwnedFd;

use crate::errno::Errno;

/// First log buffer size when we pick it.
pub const INITIAL_LOG_SIZE: usize = 64 * 1024;
/// libbpf's `BPF_LOG_BUF_SIZE` (`UINT32_MAX >> 8`, about 16 MiB): the default cap.
pub const DEFAULT_LOG_SIZE_LIMIT: usize = (u32::MAX >> 8) as usize;
/// The kernel rejects log buffers smaller than this (EINVAL).
pub const MIN_LOG_SIZE: usize = 128;
/// The kernel rejects log buffers larger than this (`UINT_MAX >> 2`, EINVAL).
pub const MAX_LOG_SIZE: usize = (u32::MAX >> 2) as usize;

/// How to collect the kernel's log for a PROG_LOAD or BTF_LOAD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogOptions {
    /// 0: libbpf's behaviour, first attempt without a log, then level 1 on failure. >0: log at this level from
    /// the first attempt (BPF_LOG_LEVEL1 = 1, LEVEL2 = 2, STATS = 4; BTF only knows level 1).
    pub level: u32,
    /// Largest buffer to grow to, clamped into 128 ..= `u32::MAX >> 2`. Default: 16 MiB like libbpf.
    /// 0 means no log at all: one attempt (plus EAGAIN retries) and no retry with a log on failure, like
    /// libbpf's low-level `bpf_prog_load` without a log buffer. Feature probes want this ([`LogOptions::NONE`]).
    pub size_limit: usize,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            level: 0,
            size_limit: DEFAULT_LOG_SIZE_LIMIT,
        }
    }
}

impl LogOptions {
    /// Never ask for a log and never retry to get one.
    pub const NONE: LogOptions = LogOptions {
        level: 0,
        size_limit: 0,
    };

    fn limit(&self) -> usize {
        self.size_limit.clamp(MIN_LOG_SIZE, MAX_LOG_SIZE)
    }
}

/// One attempt's outcome as seen by the driver.
pub(crate) struct Attempt {
    pub result: Result<OwnedFd, Errno>,
    /// `log_true_size` / `btf_log_true_size` the kernel wrote back (0 if it does not report it).
    pub true_size: u32,
}

/// A failed sequence of attempts.
pub(crate) struct Failure {
    pub errno: Errno,
    pub log: String,
    pub truncated: bool,
}

/// The log text in a kernel log buffer: up to the first NUL, lossily decoded.
pub(crate) fn log_text(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Runs `attempt` with libbpf's log strategy. `attempt(None)` loads without a log, `attempt(Some((buf, level)))`
/// with one. `max_level` caps the level (BTF: 1). Returns the fd and, if a log was collected on the successful
/// attempt, its text.
pub(crate) fn drive(
    opts: &LogOptions,
    max_level: u32,
    mut attempt: impl FnMut(Option<(&mut [u8], u32)>) -> Attempt,
) -> Result<(OwnedFd, Option<String>), Failure> {
    if opts.size_limit == 0 {
        let a = attempt(None);
        return match a.result {
            Ok(fd) => Ok((fd, None)),
            Err(errno) => Err(Failure {
                errno,
                log: String::new(),
                truncated: false,
            }),
        };
    }
    let limit = opts.limit();
    let mut level = opts.level.min(max_level);
    let mut buf: Vec<u8> = Vec::new();
    if level > 0 {
        buf = vec![0; INITIAL_LOG_SIZE.min(limit)];
    }
    loop {
        let a = if level == 0 {
            attempt(None)
        } else {
            buf.fill(0);
            attempt(Some((&mut buf, level)))
        };
        match a.result {
            Ok(fd) => return Ok((fd, (level > 0).then(|| log_text(&buf)))),
            Err(_) if level == 0 => {
                // libbpf retries any failure with a log, so the caller gets the verifier's explanation.
                level = 1;
                buf = vec![0; INITIAL_LOG_SIZE.min(limit)];
            }
            Err(errno) if errno == Errno::ENOSPC && buf.len() < limit => {
                let wanted = a.true_size as usize;
                let next = if wanted > buf.len() {
                    wanted
                } else {
                    buf.len().saturating_mul(2)
                };
                buf = vec![0; next.min(limit)];
            }
            Err(errno) => {
                return Err(Failure {
                    errno,
                    log: log_text(&buf),
                    truncated: errno == Errno::ENOSPC && level > 0,
                })
            }
        }
    }
}
