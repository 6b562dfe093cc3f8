//! BTF objects: `BPF_BTF_LOAD`, `BPF_BTF_GET_FD_BY_ID`, `BPF_BTF_GET_NEXT_ID`.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use crate::attr::{attr_end, Attr};
use crate::errno::Errno;
use crate::error::{BtfLoadError, SysError};
use crate::log::{drive, Attempt, LogOptions};
use crate::syscall::{bpf, bpf_fd};
use crate::uapi::{bpf_attr__bindgen_ty_12, bpf_attr__bindgen_ty_8, bpf_cmd, BPF_F_TOKEN_FD};
use crate::uapi_ext::FD_BY_ID_TOKEN_FD_OFFSET;

/// `BPF_BTF_LOAD` attr size: `offsetofend(btf_token_fd)` = 40, as libbpf.
pub const BTF_LOAD_ATTR_SIZE: u32 = attr_end!(bpf_attr__bindgen_ty_12, btf_token_fd);
/// `BPF_BTF_GET_FD_BY_ID` attr size: `offsetofend(fd_by_id_token_fd)` = 16, as libbpf 1.6+. Older kernels see
/// a zero tail when no token is passed, which they accept.
pub const BTF_GET_FD_BY_ID_ATTR_SIZE: u32 = (FD_BY_ID_TOKEN_FD_OFFSET + 4) as u32;

/// A loaded BTF object with the log of the successful attempt (when `LogOptions::level > 0`).
#[derive(Debug)]
pub struct LoadedBtf {
    /// The BTF fd.
    pub fd: OwnedFd,
    /// The kernel's BTF log of the successful attempt, if one was requested.
    pub log: Option<String>,
}

/// Loads raw BTF (header, types, strings) into the kernel: `BPF_BTF_LOAD`.
///
/// The log follows [`LogOptions`] like program loads, except that BTF only has log level 1: a requested level
/// above 1 is lowered to 1. With a `token`, sets `btf_token_fd` and adds `BPF_F_TOKEN_FD` to `btf_flags`.
pub fn load(
    data: &[u8],
    token: Option<BorrowedFd<'_>>,
    log: &LogOptions,
) -> Result<OwnedFd, BtfLoadError> {
    load_with_log(data, token, log).map(|l| l.fd)
}

/// Like [`load`], and returns the log of the successful attempt when `log.level > 0`.
pub fn load_with_log(
    data: &[u8],
    token: Option<BorrowedFd<'_>>,
    log: &LogOptions,
) -> Result<LoadedBtf, BtfLoadError> {
    let size = u32::try_from(data.len()).map_err(|_| BtfLoadError {
        errno: Errno::E2BIG,
        log: String::new(),
        log_truncated: false,
        detail: Some(format!(
            "BTF blob of {} bytes is larger than 4 GiB",
            data.len()
        )),
    })?;
    let attempt = |logbuf: Option<(&mut [u8], u32)>| -> Attempt {
        let mut attr = Attr::zeroed();
        let b = attr.btf_load_mut();
        b.btf = data.as_ptr() as u64;
        b.btf_size = size;
        if let Some((buf, level)) = logbuf {
            b.btf_log_level = level;
            b.btf_log_size = buf.len() as u32;
            b.btf_log_buf = buf.as_mut_ptr() as u64;
        }
        if let Some(token) = token {
            b.btf_token_fd = token.as_raw_fd();
            b.btf_flags |= BPF_F_TOKEN_FD;
        }
        let result = bpf_fd(bpf_cmd::BPF_BTF_LOAD, &mut attr, BTF_LOAD_ATTR_SIZE);
        let true_size = attr.btf_load().btf_log_true_size;
        Attempt {
            result: result.map_err(|e| e.errno()),
            true_size,
        }
    };
    match drive(log, 1, attempt) {
        Ok((fd, log)) => Ok(LoadedBtf { fd, log }),
        Err(f) => Err(BtfLoadError {
            errno: f.errno,
            log: f.log,
            log_truncated: f.truncated,
            detail: None,
        }),
    }
}

/// `BPF_BTF_GET_FD_BY_ID`: an fd for the kernel BTF object `id` (vmlinux, a module, or a loaded program's BTF).
///
/// With a `token`, sets `fd_by_id_token_fd` and adds `BPF_F_TOKEN_FD` to `open_flags` (kernel 6.15+; older
/// kernels reject the flag with EINVAL). There is no fallback without the token: the caller decides.
pub fn get_fd_by_id(id: u32, token: Option<BorrowedFd<'_>>) -> Result<OwnedFd, SysError> {
    let mut attr = Attr::zeroed();
    let b = attr.by_id_mut();
    b.__bindgen_anon_1.btf_id = id;
    if let Some(token) = token {
        b.open_flags |= BPF_F_TOKEN_FD;
        attr.set_u32_at(FD_BY_ID_TOKEN_FD_OFFSET, token.as_raw_fd() as u32);
    }
    bpf_fd(
        bpf_cmd::BPF_BTF_GET_FD_BY_ID,
        &mut attr,
        BTF_GET_FD_BY_ID_ATTR_SIZE,
    )
}

/// `BPF_BTF_GET_NEXT_ID`: the id of the next BTF object after `start` (0 for the first), or `None` at the end
/// (ENOENT). Needs CAP_SYS_ADMIN; a token does not cover it (libbpf skips module BTFs on EPERM).
pub fn get_next_id(start: u32) -> Result<Option<u32>, SysError> {
    next_id(bpf_cmd::BPF_BTF_GET_NEXT_ID, "BPF_BTF_GET_NEXT_ID", start)
}

/// The `*_GET_NEXT_ID` commands: attr `{start_id, next_id}`, size `offsetofend(next_id)` = 8.
pub(crate) fn next_id(
    cmd: bpf_cmd,
    name: &'static str,
    start: u32,
) -> Result<Option<u32>, SysError> {
    let mut attr = Attr::zeroed();
    attr.by_id_mut().__bindgen_anon_1.start_id = start;
    match bpf(cmd, &mut attr, attr_end!(bpf_attr__bindgen_ty_8, next_id)) {
        Ok(_) => Ok(Some(attr.by_id().next_id)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(SysError::kernel(name, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscall::with_syscall_override;
    use std::os::fd::AsFd;

    #[test]
    fn get_fd_by_id_token_uses_ext_field_and_open_flags() {
        let dev_null = std::fs::File::open("/dev/null").unwrap();
        let tok = crate::fd::dup_good(dev_null.as_fd()).unwrap();
        for token in [None, Some(tok.as_fd())] {
            let seen = std::rc::Rc::new(std::cell::RefCell::new(None));
            let s2 = seen.clone();
            let e = with_syscall_override(
                move |cmd, attr, size| {
                    assert_eq!(cmd, bpf_cmd::BPF_BTF_GET_FD_BY_ID);
                    assert_eq!(size, 16);
                    *s2.borrow_mut() = Some(attr.clone());
                    Err(Errno::ENOENT)
                },
                || get_fd_by_id(42, token).unwrap_err(),
            );
            assert_eq!(e.errno(), Errno::ENOENT);
            let attr = seen.borrow().clone().unwrap();
            assert_eq!(attr.u32_at(0), 42);
            let (want_flags, want_fd) = match token {
                None => (0, 0),
                Some(t) => (BPF_F_TOKEN_FD, t.as_raw_fd() as u32),
            };
            assert_eq!(attr.by_id().open_flags, want_flags);
            assert_eq!(attr.u32_at(12), want_fd);
        }
    }

    #[test]
    fn btf_load_token_and_level_cap() {
        let dev_null = std::fs::File::open("/dev/null").unwrap();
        let tok = crate::fd::dup_good(dev_null.as_fd()).unwrap();
        let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let s2 = seen.clone();
        let blob = [0u8; 24];
        let e = with_syscall_override(
            move |_, attr, size| {
                assert_eq!(size, 40);
                let b = attr.btf_load();
                s2.borrow_mut()
                    .push((b.btf_log_level, b.btf_flags, b.btf_token_fd, b.btf_size));
                Err(Errno::EINVAL)
            },
            || {
                load(
                    &blob,
                    Some(tok.as_fd()),
                    &LogOptions {
                        level: 2,
                        ..Default::default()
                    },
                )
                .unwrap_err()
            },
        );
        assert_eq!(e.errno(), Errno::EINVAL);
        assert_eq!(*seen.borrow(), [(1, BPF_F_TOKEN_FD, tok.as_raw_fd(), 24)]);
    }

    #[test]
    fn next_id_end_is_none() {
        let r = with_syscall_override(|_, _, _| Err(Errno::ENOENT), || get_next_id(7));
        assert_eq!(r, Ok(None));
        let r = with_syscall_override(
            |_, attr, _| {
                attr.by_id_mut().next_id = 9;
                Ok(crate::syscall::Reply::Value(0))
            },
            || get_next_id(7),
        );
        assert_eq!(r, Ok(Some(9)));
    }
}
