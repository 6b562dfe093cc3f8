//! The few kernel operations probes perform, as thin calls into `bpfload_syscall` (which sets
//! `token_fd` and `BPF_F_TOKEN_FD` whenever a token is given).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use aya_obj::generated::{bpf_attach_type, bpf_insn, bpf_map_type, bpf_prog_type};
use bpfload_syscall::{btf, info, link, map, prog, Errno, LogOptions};

pub(crate) type Fd = OwnedFd;

pub(crate) fn raw(fd: &Fd) -> RawFd {
    fd.as_raw_fd()
}

/// BTF for a program load: the BTF fd and `(insn_off, type_id)` func_info records.
pub(crate) struct ProgBtf<'a> {
    pub fd: &'a Fd,
    pub func_info: &'a [(u32, u32)],
}

pub(crate) struct ProgSpec<'a> {
    pub prog_type: bpf_prog_type,
    pub expected_attach_type: bpf_attach_type,
    pub insns: &'a [bpf_insn],
    pub name: Option<&'a str>,
    pub btf: Option<ProgBtf<'a>>,
    pub token: Option<BorrowedFd<'a>>,
}

pub(crate) struct LoadError {
    pub errno: Errno,
    pub log: String,
}

/// Probes log at level 1 from the first attempt into a small buffer. With level 0, sys retries a
/// failed load once more with a log (libbpf's strategy for real programs); for a probe that is a
/// wasted syscall on every failure, and one probe attempt must be one syscall so that the counts
/// stay exact. Probe programs and blobs are a handful of instructions/types: their logs are far
/// below this size, so the log never truncates (which the kernel would report as ENOSPC).
const PROBE_LOG: LogOptions = LogOptions {
    level: 1,
    size_limit: 16 * 1024,
};

fn load_impl(s: &ProgSpec<'_>, log: &LogOptions) -> Result<Fd, LoadError> {
    let finfo: Vec<u8> = s
        .btf
        .as_ref()
        .map(|b| {
            b.func_info
                .iter()
                .flat_map(|&(off, id)| off.to_ne_bytes().into_iter().chain(id.to_ne_bytes()))
                .collect()
        })
        .unwrap_or_default();
    let attr = prog::ProgLoadAttr {
        prog_type: s.prog_type as u32,
        expected_attach_type: s.expected_attach_type as u32,
        insns: s.insns,
        license: c"GPL",
        name: s.name,
        btf_fd: s.btf.as_ref().map(|b| b.fd.as_fd()),
        func_info: &finfo,
        func_info_rec_size: if finfo.is_empty() { 0 } else { 8 },
        token: s.token,
        ..Default::default()
    };
    prog::load(&attr, log).map_err(|e| LoadError {
        errno: e.errno,
        log: e.log,
    })
}

/// Loads a probe program; the error carries the verifier log.
pub(crate) fn prog_load(s: &ProgSpec<'_>) -> Result<Fd, LoadError> {
    load_impl(s, &PROBE_LOG)
}

pub(crate) fn map_create(
    map_type: bpf_map_type,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    flags: u32,
    token: Option<BorrowedFd<'_>>,
) -> Result<Fd, Errno> {
    map::create(&map::MapCreateAttr {
        map_type: map_type as u32,
        key_size,
        value_size,
        max_entries,
        map_flags: flags,
        token,
        ..Default::default()
    })
    .map_err(|e| e.errno())
}

pub(crate) fn btf_load(blob: &[u8], token: Option<BorrowedFd<'_>>) -> Result<Fd, Errno> {
    btf::load(blob, token, &PROBE_LOG).map_err(|e| e.errno)
}

pub(crate) fn bind_map(prog: &Fd, map: &Fd) -> Result<(), Errno> {
    prog::bind_map(prog.as_fd(), map.as_fd()).map_err(|e| e.errno())
}

/// `BPF_OBJ_GET_INFO_BY_FD` on a BTF fd with `name`/`name_len` set (libbpf's MODULE_BTF test:
/// kernels that know these fields are the ones with module BTF).
pub(crate) fn btf_info_with_name(fd: &Fd) -> Result<(), Errno> {
    info::btf_info(fd.as_fd()).map(drop).map_err(|e| e.errno())
}

/// `BPF_LINK_CREATE` of a uprobe_multi link on "/" at offset 0 for `pid` (libbpf's probe: it must
/// fail, and how it fails tells what the kernel supports).
pub(crate) fn uprobe_multi_link(prog: &Fd, pid: u32) -> Result<Fd, Errno> {
    link::create_uprobe_multi(prog.as_fd(), c"/", &[0], pid).map_err(|e| e.errno())
}
