//! Programs: `BPF_PROG_LOAD`, `BPF_PROG_BIND_MAP`, `BPF_PROG_GET_FD_BY_ID`, `BPF_PROG_TEST_RUN`.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use crate::attr::{attr_end, Attr};
use crate::errno::Errno;
use crate::error::{ProgLoadError, SysError};
use crate::fd::raw_or_zero;
use crate::log::{drive, Attempt, LogOptions};
use crate::syscall::{bpf, bpf_fd};
use crate::uapi::{
    bpf_attr__bindgen_ty_19, bpf_attr__bindgen_ty_4, bpf_attr__bindgen_ty_7,
    bpf_attr__bindgen_ty_8, bpf_cmd, bpf_func_info, bpf_insn, bpf_line_info, BPF_F_TOKEN_FD,
};
use crate::uapi_ext::FD_ARRAY_CNT_OFFSET;

/// `BPF_PROG_LOAD` attr size we pass: `offsetofend(fd_array_cnt)` = 152, the last field this wrapper can set.
/// (libbpf passes 168, up to `keyring_id`, which we do not use; the kernel treats missing bytes as zero.)
pub const PROG_LOAD_ATTR_SIZE: u32 = (FD_ARRAY_CNT_OFFSET + 4) as u32;
/// Attempts on EAGAIN, like libbpf's `PROG_LOAD_ATTEMPTS`.
pub const PROG_LOAD_ATTEMPTS: u32 = 5;

/// Arguments of `BPF_PROG_LOAD`. Types are raw `u32`s so values newer than aya-obj's enums can be passed
/// (`bpf_prog_type::BPF_PROG_TYPE_XDP as u32`).
#[derive(Clone, Copy, Debug, Default)]
pub struct ProgLoadAttr<'a> {
    /// `enum bpf_prog_type`.
    pub prog_type: u32,
    /// `enum bpf_attach_type` (0 if none).
    pub expected_attach_type: u32,
    /// The instructions.
    pub insns: &'a [bpf_insn],
    /// License string (`"GPL"`, ...); GPL-only helpers need a GPL-compatible one.
    pub license: &'a CStr,
    /// `kern_version` (checked by old kernels for kprobes).
    pub kern_version: u32,
    /// `prog_flags` (BPF_F_SLEEPABLE, BPF_F_XDP_HAS_FRAGS, ...). `BPF_F_TOKEN_FD` is set exactly when `token` is
    /// set (the caller's copy of that bit is ignored).
    pub prog_flags: u32,
    /// Program name; truncated to 15 bytes (the kernel accepts only `[A-Za-z0-9_.]`).
    pub name: Option<&'a str>,
    /// Offload target (0 = none).
    pub ifindex: u32,
    /// Program BTF, needed with func/line info.
    pub btf_fd: Option<BorrowedFd<'a>>,
    /// `bpf_func_info` records, `func_info_rec_size` bytes each.
    pub func_info: &'a [u8],
    /// Size of one func_info record (8 for today's `bpf_func_info`).
    pub func_info_rec_size: u32,
    /// `bpf_line_info` records, `line_info_rec_size` bytes each.
    pub line_info: &'a [u8],
    /// Size of one line_info record (16 for today's `bpf_line_info`).
    pub line_info_rec_size: u32,
    /// BTF id of the attach target (tracing, LSM, struct_ops, freplace).
    pub attach_btf_id: u32,
    /// Target program for freplace/fentry on BPF programs. Shares a union with `attach_btf_obj_fd`.
    pub attach_prog_fd: Option<BorrowedFd<'a>>,
    /// Module BTF holding `attach_btf_id`. Shares a union with `attach_prog_fd`: set at most one.
    pub attach_btf_obj_fd: Option<BorrowedFd<'a>>,
    /// `fd_array`: fds referenced by index from instructions (module BTF fds for kfunc calls, maps).
    pub fd_array: Option<&'a [RawFd]>,
    /// `fd_array_cnt` (kernel 6.14+): 0 keeps the older meaning (the kernel indexes `fd_array` without a
    /// length); non-zero (at most `fd_array.len()`) also makes the kernel bind every map in the array.
    pub fd_array_cnt: u32,
    /// BPF token: sets `prog_token_fd` and adds `BPF_F_TOKEN_FD` to `prog_flags`.
    pub token: Option<BorrowedFd<'a>>,
}

/// A loaded program with the log collected on the successful attempt (only when a log level > 0 was asked).
#[derive(Debug)]
pub struct LoadedProg {
    /// The program fd.
    pub fd: OwnedFd,
    /// The verifier log of the successful attempt, when `LogOptions::level > 0`.
    pub log: Option<String>,
}

fn refuse(detail: String) -> ProgLoadError {
    ProgLoadError {
        errno: Errno::EINVAL,
        log: String::new(),
        log_truncated: false,
        detail: Some(detail),
    }
}

fn check_records(what: &str, data: &[u8], rec_size: u32, min: usize) -> Result<u32, ProgLoadError> {
    if data.is_empty() {
        return Ok(0);
    }
    let rec = rec_size as usize;
    if rec < min || !data.len().is_multiple_of(rec) {
        return Err(refuse(format!(
            "{what} is {} bytes, not a whole number of {rec}-byte records (minimum record size {min})",
            data.len()
        )));
    }
    u32::try_from(data.len() / rec).map_err(|_| refuse(format!("too many {what} records")))
}

/// Copies a name into a 16-byte kernel name field, truncated to 15 bytes and NUL-terminated.
pub(crate) fn put_name(dst: &mut [core::ffi::c_char; 16], name: Option<&str>) {
    if let Some(name) = name {
        for (d, s) in dst.iter_mut().zip(name.bytes().take(15)) {
            *d = s as core::ffi::c_char;
        }
    }
}

/// Copies `data` and zeroes, in each `rec`-byte record, the bytes from `keep` on (libbpf's
/// `alloc_zero_tailing_info`): an older kernel knows shorter records and refuses non-zero trailing bytes (E2BIG).
fn zero_tails(data: &[u8], rec: usize, keep: usize) -> Vec<u8> {
    let mut out = data.to_vec();
    for chunk in out.chunks_mut(rec) {
        let start = keep.min(chunk.len());
        chunk[start..].fill(0);
    }
    out
}

/// Fills a PROG_LOAD attr. Pointers in it borrow `a`, `func_info`, `line_info` and `log`.
fn fill(
    attr: &mut Attr,
    a: &ProgLoadAttr<'_>,
    insn_cnt: u32,
    func_info: (&[u8], u32),
    line_info: (&[u8], u32),
    log: Option<(&mut [u8], u32)>,
) {
    let p: &mut bpf_attr__bindgen_ty_4 = attr.prog_load_mut();
    p.prog_type = a.prog_type;
    p.insn_cnt = insn_cnt;
    p.insns = a.insns.as_ptr() as u64;
    p.license = a.license.as_ptr() as u64;
    p.kern_version = a.kern_version;
    p.prog_flags = a.prog_flags;
    put_name(&mut p.prog_name, a.name);
    p.prog_ifindex = a.ifindex;
    p.expected_attach_type = a.expected_attach_type;
    p.prog_btf_fd = raw_or_zero(a.btf_fd);
    if func_info.1 > 0 {
        p.func_info_rec_size = a.func_info_rec_size;
        p.func_info = func_info.0.as_ptr() as u64;
        p.func_info_cnt = func_info.1;
    }
    if line_info.1 > 0 {
        p.line_info_rec_size = a.line_info_rec_size;
        p.line_info = line_info.0.as_ptr() as u64;
        p.line_info_cnt = line_info.1;
    }
    p.attach_btf_id = a.attach_btf_id;
    // The union: at most one of the two is set (checked by `load`).
    p.__bindgen_anon_1.attach_prog_fd = raw_or_zero(a.attach_prog_fd.or(a.attach_btf_obj_fd));
    if let Some(arr) = a.fd_array {
        p.fd_array = arr.as_ptr() as u64;
    }
    if let Some((buf, level)) = log {
        p.log_level = level;
        // `drive` keeps buffers within MAX_LOG_SIZE (< u32::MAX).
        p.log_size = buf.len() as u32;
        p.log_buf = buf.as_mut_ptr() as u64;
    }
    // Set exactly when a token is given: the flag without the fd would make the kernel use fd 0.
    p.prog_flags &= !BPF_F_TOKEN_FD;
    if let Some(token) = a.token {
        p.prog_token_fd = token.as_raw_fd();
        p.prog_flags |= BPF_F_TOKEN_FD;
    }
    if a.fd_array_cnt > 0 {
        attr.set_u32_at(FD_ARRAY_CNT_OFFSET, a.fd_array_cnt);
    }
}

/// Loads a program: `BPF_PROG_LOAD` with libbpf's retries.
///
/// - EAGAIN is retried, up to [`PROG_LOAD_ATTEMPTS`] attempts per log level (the verifier returns EAGAIN when
///   interrupted by a signal or under memory pressure).
/// - E2BIG with func_info/line_info records larger than the kernel's: the kernel writes the record size it
///   knows back into the attr; the records are copied with the unknown trailing bytes zeroed and the load is
///   retried (libbpf's `alloc_zero_tailing_info`).
/// - Logs follow [`LogOptions`]: with level 0 the first attempt has no log and a failure is retried at level 1
///   into a buffer that grows on ENOSPC. The error carries the errno and the log of the last attempt.
pub fn load(a: &ProgLoadAttr<'_>, log: &LogOptions) -> Result<OwnedFd, ProgLoadError> {
    load_with_log(a, log).map(|l| l.fd)
}

/// Like [`load`], and returns the log of the successful attempt when `log.level > 0`.
pub fn load_with_log(a: &ProgLoadAttr<'_>, log: &LogOptions) -> Result<LoadedProg, ProgLoadError> {
    let insn_cnt =
        u32::try_from(a.insns.len()).map_err(|_| refuse("too many instructions".into()))?;
    let finfo_cnt = check_records(
        "func_info",
        a.func_info,
        a.func_info_rec_size,
        size_of::<bpf_func_info>(),
    )?;
    let linfo_cnt = check_records(
        "line_info",
        a.line_info,
        a.line_info_rec_size,
        size_of::<bpf_line_info>(),
    )?;
    if a.attach_prog_fd.is_some() && a.attach_btf_obj_fd.is_some() {
        return Err(refuse(
            "attach_prog_fd and attach_btf_obj_fd share a union; set at most one".into(),
        ));
    }
    if a.fd_array_cnt > 0
        && a.fd_array
            .is_none_or(|arr| arr.len() < a.fd_array_cnt as usize)
    {
        return Err(refuse(format!(
            "fd_array_cnt {} exceeds the fd_array length",
            a.fd_array_cnt
        )));
    }

    // Replacement func/line info with zeroed tails after an E2BIG, kept across attempts.
    let mut finfo_fixed: Option<Vec<u8>> = None;
    let mut linfo_fixed: Option<Vec<u8>> = None;

    let attempt = |mut logbuf: Option<(&mut [u8], u32)>| -> Attempt {
        let mut eagain_left = PROG_LOAD_ATTEMPTS;
        loop {
            let mut attr = Attr::zeroed();
            let finfo: &[u8] = finfo_fixed.as_deref().unwrap_or(a.func_info);
            let linfo: &[u8] = linfo_fixed.as_deref().unwrap_or(a.line_info);
            let lb = logbuf.as_mut().map(|(b, l)| (&mut **b, *l));
            fill(
                &mut attr,
                a,
                insn_cnt,
                (finfo, finfo_cnt),
                (linfo, linfo_cnt),
                lb,
            );
            let result = bpf_fd(bpf_cmd::BPF_PROG_LOAD, &mut attr, PROG_LOAD_ATTR_SIZE)
                .map_err(|e| e.errno());
            let p = attr.prog_load();
            let true_size = p.log_true_size;
            match result {
                Ok(fd) => {
                    return Attempt {
                        result: Ok(fd),
                        true_size,
                    }
                }
                Err(Errno::EAGAIN) if eagain_left > 1 => eagain_left -= 1,
                Err(Errno::E2BIG) => {
                    // The kernel reports the record size it understands by writing it back.
                    let k_f = p.func_info_rec_size as usize;
                    let k_l = p.line_info_rec_size as usize;
                    let rec_f = a.func_info_rec_size as usize;
                    let rec_l = a.line_info_rec_size as usize;
                    if finfo_cnt > 0
                        && finfo_fixed.is_none()
                        && rec_f > size_of::<bpf_func_info>()
                        && k_f < rec_f
                    {
                        finfo_fixed = Some(zero_tails(
                            a.func_info,
                            rec_f,
                            k_f.max(size_of::<bpf_func_info>()),
                        ));
                    } else if linfo_cnt > 0
                        && linfo_fixed.is_none()
                        && rec_l > size_of::<bpf_line_info>()
                        && k_l < rec_l
                    {
                        linfo_fixed = Some(zero_tails(
                            a.line_info,
                            rec_l,
                            k_l.max(size_of::<bpf_line_info>()),
                        ));
                    } else {
                        return Attempt {
                            result: Err(Errno::E2BIG),
                            true_size,
                        };
                    }
                }
                Err(errno) => {
                    return Attempt {
                        result: Err(errno),
                        true_size,
                    }
                }
            }
        }
    };
    match drive(log, u32::MAX, attempt) {
        Ok((fd, log)) => Ok(LoadedProg { fd, log }),
        Err(f) => Err(ProgLoadError {
            errno: f.errno,
            log: f.log,
            log_truncated: f.truncated,
            detail: None,
        }),
    }
}

/// `BPF_PROG_BIND_MAP`: keeps `map` alive as long as `prog` even though no instruction references it (libbpf
/// does this for `.rodata` maps so their values stay inspectable). attr size `offsetofend(prog_bind_map.flags)`.
pub fn bind_map(prog: BorrowedFd<'_>, map: BorrowedFd<'_>) -> Result<(), SysError> {
    let mut attr = Attr::zeroed();
    let b = attr.prog_bind_map_mut();
    b.prog_fd = prog.as_raw_fd() as u32;
    b.map_fd = map.as_raw_fd() as u32;
    bpf(
        bpf_cmd::BPF_PROG_BIND_MAP,
        &mut attr,
        attr_end!(bpf_attr__bindgen_ty_19, flags),
    )
    .map(drop)
    .map_err(|e| SysError::kernel("BPF_PROG_BIND_MAP", e))
}

/// `BPF_PROG_GET_FD_BY_ID`: a new fd for the program with this id (needs CAP_SYS_ADMIN).
pub fn get_fd_by_id(id: u32) -> Result<OwnedFd, SysError> {
    let mut attr = Attr::zeroed();
    attr.by_id_mut().__bindgen_anon_1.prog_id = id;
    bpf_fd(
        bpf_cmd::BPF_PROG_GET_FD_BY_ID,
        &mut attr,
        attr_end!(bpf_attr__bindgen_ty_8, open_flags),
    )
}

/// `BPF_PROG_GET_NEXT_ID`: the id of the next program after `start` (0 for the first), `None` at the end.
/// Needs CAP_SYS_ADMIN.
pub fn get_next_id(start: u32) -> Result<Option<u32>, SysError> {
    crate::btf::next_id(bpf_cmd::BPF_PROG_GET_NEXT_ID, "BPF_PROG_GET_NEXT_ID", start)
}

/// Result of [`test_run`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestRun {
    /// The program's return value (of the last repetition).
    pub retval: u32,
    /// The packet after the program ran (`data_size_out` bytes, at most the output buffer size).
    pub data_out: Vec<u8>,
    /// Average run time per repetition in nanoseconds.
    pub duration_ns: u32,
}

/// `BPF_PROG_TEST_RUN`: runs `prog` `repeat` times (0 counts as 1) on `data_in` and returns its return value,
/// the output packet and the average duration. The output buffer is `data_in.len() + 256` bytes (XDP programs
/// may grow the packet by up to 256 bytes of headroom); a larger output fails with ENOSPC.
/// attr size `offsetofend(test.duration)`.
pub fn test_run(prog: BorrowedFd<'_>, data_in: &[u8], repeat: u32) -> Result<TestRun, SysError> {
    const NAME: &str = "BPF_PROG_TEST_RUN";
    let size_in = u32::try_from(data_in.len())
        .map_err(|_| SysError::invalid(NAME, Errno::EINVAL, "input larger than 4 GiB"))?;
    let mut out = vec![0u8; data_in.len() + 256];
    let mut attr = Attr::zeroed();
    let t = attr.test_run_mut();
    t.prog_fd = prog.as_raw_fd() as u32;
    t.data_size_in = size_in;
    t.data_in = data_in.as_ptr() as u64;
    t.data_size_out = out.len() as u32;
    t.data_out = out.as_mut_ptr() as u64;
    t.repeat = repeat;
    bpf(
        bpf_cmd::BPF_PROG_TEST_RUN,
        &mut attr,
        attr_end!(bpf_attr__bindgen_ty_7, duration),
    )
    .map_err(|e| SysError::kernel(NAME, e))?;
    let t = attr.test_run();
    out.truncate((t.data_size_out as usize).min(out.len()));
    Ok(TestRun {
        retval: t.retval,
        data_out: out,
        duration_ns: t.duration,
    })
}

/// `BPF_PROG_TEST_RUN` of a `BPF_PROG_TYPE_SYSCALL` program: the kernel refuses packet data, repeat and
/// duration for these, and takes only a context (`ctx_in`, may be empty). Returns the program's return value.
/// attr size `offsetofend(test.ctx_out)`.
pub fn test_run_syscall(prog: BorrowedFd<'_>, ctx: &[u8]) -> Result<u32, SysError> {
    const NAME: &str = "BPF_PROG_TEST_RUN";
    let size = u32::try_from(ctx.len())
        .map_err(|_| SysError::invalid(NAME, Errno::EINVAL, "context larger than 4 GiB"))?;
    let mut attr = Attr::zeroed();
    let t = attr.test_run_mut();
    t.prog_fd = prog.as_raw_fd() as u32;
    if size != 0 {
        t.ctx_size_in = size;
        t.ctx_in = ctx.as_ptr() as u64;
    }
    bpf(
        bpf_cmd::BPF_PROG_TEST_RUN,
        &mut attr,
        attr_end!(bpf_attr__bindgen_ty_7, ctx_out),
    )
    .map_err(|e| SysError::kernel(NAME, e))?;
    Ok(attr.test_run().retval)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscall::{with_syscall_override, CallSnapshot, Reply};
    use std::cell::RefCell;
    use std::os::fd::AsFd;
    use std::rc::Rc;

    fn ret0() -> [bpf_insn; 2] {
        // r0 = 0; exit
        let mut mov = bpf_insn {
            code: 0xb7,
            _bitfield_align_1: [],
            _bitfield_1: Default::default(),
            off: 0,
            imm: 0,
        };
        mov.set_dst_reg(0);
        let exit = bpf_insn {
            code: 0x95,
            _bitfield_align_1: [],
            _bitfield_1: Default::default(),
            off: 0,
            imm: 0,
        };
        [mov, exit]
    }

    /// An fd the fakes can hand out: /dev/null, owned by the reply and then by the wrapper.
    fn fake_fd() -> Reply {
        std::fs::File::open("/dev/null").unwrap().into()
    }

    #[test]
    fn eagain_is_retried_five_times_then_log_retry() {
        let insns = ret0();
        let a = ProgLoadAttr {
            insns: &insns,
            license: c"GPL",
            ..Default::default()
        };
        let levels = Rc::new(RefCell::new(Vec::new()));
        let l2 = levels.clone();
        let snap = CallSnapshot::thread();
        let err = with_syscall_override(
            move |cmd, attr, size| {
                assert_eq!(cmd, bpf_cmd::BPF_PROG_LOAD);
                assert_eq!(size, PROG_LOAD_ATTR_SIZE);
                l2.borrow_mut().push(attr.prog_load().log_level);
                Err(Errno::EAGAIN)
            },
            || load(&a, &LogOptions::default()).unwrap_err(),
        );
        assert_eq!(err.errno(), Errno::EAGAIN);
        assert_eq!(snap.since(bpf_cmd::BPF_PROG_LOAD), 10);
        assert_eq!(*levels.borrow(), [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
    }

    #[test]
    fn log_none_means_one_attempt_and_no_log_retry() {
        let insns = ret0();
        let a = ProgLoadAttr {
            insns: &insns,
            license: c"GPL",
            ..Default::default()
        };
        let snap = CallSnapshot::thread();
        let e = with_syscall_override(
            |_, attr, _| {
                assert_eq!(attr.prog_load().log_level, 0);
                assert_eq!(attr.prog_load().log_buf, 0);
                Err(Errno::EINVAL)
            },
            || load(&a, &LogOptions::NONE).unwrap_err(),
        );
        assert_eq!(e.errno(), Errno::EINVAL);
        assert_eq!(e.log(), "");
        assert_eq!(snap.since(bpf_cmd::BPF_PROG_LOAD), 1);
    }

    #[test]
    fn eagain_then_success() {
        let insns = ret0();
        let a = ProgLoadAttr {
            insns: &insns,
            license: c"GPL",
            ..Default::default()
        };
        let mut n = 0;
        let fd = with_syscall_override(
            move |_, _, _| {
                n += 1;
                if n < 3 {
                    Err(Errno::EAGAIN)
                } else {
                    Ok(fake_fd())
                }
            },
            || load(&a, &LogOptions::default()).unwrap(),
        );
        assert!(fd.as_raw_fd() > 2);
    }

    #[test]
    fn log_grows_to_true_size_on_enospc() {
        let insns = ret0();
        let a = ProgLoadAttr {
            insns: &insns,
            license: c"GPL",
            ..Default::default()
        };
        let sizes = Rc::new(RefCell::new(Vec::new()));
        let s2 = sizes.clone();
        let err = with_syscall_override(
            move |_, attr, _| {
                let p = attr.prog_load_mut();
                s2.borrow_mut().push((p.log_level, p.log_size));
                if p.log_level == 0 {
                    return Err(Errno::EACCES);
                }
                if (p.log_size as usize) < 200_000 {
                    p.log_true_size = 200_000;
                    return Err(Errno::ENOSPC);
                }
                // Write a log into the user's buffer like the kernel would.
                let msg = b"R0 !read_ok\n\0";
                assert!(p.log_buf != 0);
                // SAFETY (test): the wrapper passed a live buffer of log_size >= msg.len() bytes.
                unsafe {
                    std::ptr::copy_nonoverlapping(msg.as_ptr(), p.log_buf as *mut u8, msg.len())
                };
                Err(Errno::EACCES)
            },
            || load(&a, &LogOptions::default()).unwrap_err(),
        );
        assert_eq!(*sizes.borrow(), [(0, 0), (1, 64 * 1024), (1, 200_000)]);
        assert_eq!(err.errno(), Errno::EACCES);
        assert_eq!(err.log(), "R0 !read_ok\n");
        assert!(!err.log_truncated());
    }

    #[test]
    fn log_doubles_without_true_size_and_stops_at_limit() {
        let insns = ret0();
        let a = ProgLoadAttr {
            insns: &insns,
            license: c"GPL",
            ..Default::default()
        };
        let sizes = Rc::new(RefCell::new(Vec::new()));
        let s2 = sizes.clone();
        let err = with_syscall_override(
            move |_, attr, _| {
                s2.borrow_mut().push(attr.prog_load().log_size);
                Err(Errno::ENOSPC)
            },
            || {
                load(
                    &a,
                    &LogOptions {
                        level: 2,
                        size_limit: 300_000,
                    },
                )
                .unwrap_err()
            },
        );
        assert_eq!(*sizes.borrow(), [65536, 131072, 262144, 300_000]);
        assert_eq!(err.errno(), Errno::ENOSPC);
        assert!(err.log_truncated());
    }

    #[test]
    fn requested_log_is_returned_on_success() {
        let insns = ret0();
        let a = ProgLoadAttr {
            insns: &insns,
            license: c"GPL",
            ..Default::default()
        };
        let loaded = with_syscall_override(
            |_, attr, _| {
                let p = attr.prog_load();
                assert_eq!(p.log_level, 1);
                let msg = b"processed 2 insns\n\0";
                // SAFETY (test): live buffer of log_size bytes.
                unsafe {
                    std::ptr::copy_nonoverlapping(msg.as_ptr(), p.log_buf as *mut u8, msg.len())
                };
                Ok(fake_fd())
            },
            || {
                load_with_log(
                    &a,
                    &LogOptions {
                        level: 1,
                        ..Default::default()
                    },
                )
                .unwrap()
            },
        );
        assert_eq!(loaded.log.as_deref(), Some("processed 2 insns\n"));
    }

    #[test]
    fn e2big_zeroes_func_info_tails() {
        let insns = ret0();
        // Two 12-byte records: a bpf_func_info (8 bytes) plus 4 bytes this "kernel" does not know.
        let finfo: Vec<u8> = [[1u8; 12], [2u8; 12]].concat();
        let a = ProgLoadAttr {
            insns: &insns,
            license: c"GPL",
            func_info: &finfo,
            func_info_rec_size: 12,
            ..Default::default()
        };
        let seen = Rc::new(RefCell::new(Vec::new()));
        let s2 = seen.clone();
        let fd = with_syscall_override(
            move |_, attr, _| {
                let p = attr.prog_load_mut();
                assert_eq!((p.func_info_rec_size, p.func_info_cnt), (12, 2));
                // SAFETY (test): func_info points to cnt * rec_size live bytes.
                let recs =
                    unsafe { std::slice::from_raw_parts(p.func_info as *const u8, 24) }.to_vec();
                s2.borrow_mut().push(recs.clone());
                if recs[8..12] != [0; 4] || recs[20..24] != [0; 4] {
                    p.func_info_rec_size = 8; // what an older kernel writes back
                    return Err(Errno::E2BIG);
                }
                Ok(fake_fd())
            },
            || load(&a, &LogOptions::default()).unwrap(),
        );
        drop(fd);
        let seen = seen.borrow();
        assert_eq!(seen.len(), 2);
        assert_eq!(
            seen[1],
            [[1u8; 8].as_slice(), &[0; 4], &[2u8; 8], &[0; 4]].concat()
        );
    }

    #[test]
    fn token_sets_field_and_flag_only_when_given() {
        let insns = ret0();
        let dev_null = std::fs::File::open("/dev/null").unwrap();
        let tok = crate::fd::dup_good(dev_null.as_fd()).unwrap();
        for token in [None, Some(tok.as_fd())] {
            let a = ProgLoadAttr {
                insns: &insns,
                license: c"GPL",
                // BPF_F_STRICT_ALIGNMENT must be kept; the caller's BPF_F_TOKEN_FD is ignored.
                prog_flags: 1 | BPF_F_TOKEN_FD,
                token,
                ..Default::default()
            };
            let (fd_field, flags) = with_syscall_override(
                |_, attr, _| Err(Errno::from_raw(1000 + attr.prog_load().prog_token_fd)),
                || {
                    let e = load(
                        &a,
                        &LogOptions {
                            level: 1,
                            ..Default::default()
                        },
                    )
                    .unwrap_err();
                    (e.errno().raw() - 1000, 0)
                },
            );
            let _ = flags;
            match token {
                None => assert_eq!(fd_field, 0),
                Some(t) => assert_eq!(fd_field, t.as_raw_fd()),
            }
            let flags = with_syscall_override(
                |_, attr, _| Err(Errno::from_raw(attr.prog_load().prog_flags as i32)),
                || {
                    load(
                        &a,
                        &LogOptions {
                            level: 1,
                            ..Default::default()
                        },
                    )
                    .unwrap_err()
                    .errno()
                    .raw() as u32
                },
            );
            let expect = if token.is_some() {
                1 | BPF_F_TOKEN_FD
            } else {
                1
            };
            assert_eq!(flags, expect);
        }
    }

    #[test]
    fn name_is_truncated_to_15_bytes() {
        let insns = ret0();
        let a = ProgLoadAttr {
            insns: &insns,
            license: c"GPL",
            name: Some("a_very_long_program_name"),
            ..Default::default()
        };
        let name = with_syscall_override(
            |_, attr, _| {
                let n = attr.prog_load().prog_name;
                Err(Errno::from_raw(
                    n.iter().position(|&c| c == 0).unwrap() as i32 + 2000,
                ))
            },
            || {
                load(
                    &a,
                    &LogOptions {
                        level: 1,
                        ..Default::default()
                    },
                )
                .unwrap_err()
                .errno()
                .raw()
                    - 2000
            },
        );
        assert_eq!(name, 15);
    }

    #[test]
    fn bad_record_sizes_are_refused_without_a_syscall() {
        let insns = ret0();
        let finfo = [0u8; 13];
        let a = ProgLoadAttr {
            insns: &insns,
            license: c"GPL",
            func_info: &finfo,
            func_info_rec_size: 8,
            ..Default::default()
        };
        let snap = CallSnapshot::thread();
        let e = load(&a, &LogOptions::default()).unwrap_err();
        assert_eq!(e.errno(), Errno::EINVAL);
        assert!(e.detail.is_some());
        assert_eq!(snap.total_since(), 0);
    }
}
