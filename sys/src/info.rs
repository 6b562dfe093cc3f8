//! `BPF_OBJ_GET_INFO_BY_FD` for programs, maps, BTF objects and tokens.
//!
//! The kernel fills at most `info_len` bytes and writes back how many it knows; fields newer than the kernel
//! stay zero. Arrays (map ids, instructions, names) are only copied when we pass a buffer and a count, so
//! those helpers make two calls: one to learn the count, one with a buffer of that size.

use std::os::fd::{AsRawFd, BorrowedFd};

use crate::attr::{attr_end, Attr};
use crate::errno::Errno;
use crate::error::SysError;
use crate::syscall::bpf;
use crate::uapi::{
    bpf_attr__bindgen_ty_9, bpf_btf_info, bpf_cmd, bpf_insn, bpf_map_info, bpf_prog_info,
};
use crate::uapi_ext::bpf_token_info;

const NAME: &str = "BPF_OBJ_GET_INFO_BY_FD";

/// Plain-old-data info structs: all-zero is a valid value and any bytes the kernel writes are valid.
///
/// # Safety
/// Implementors must be `repr(C)` structs of integers (and integer arrays/bitfield units) only.
unsafe trait Pod: Sized + Copy {
    fn zeroed() -> Self {
        // SAFETY: the trait's contract: every field is an integer, so all-zero bytes are a valid value.
        unsafe { std::mem::zeroed() }
    }
}
// SAFETY: bindgen structs of __u32/__u64/arrays/__BindgenBitfieldUnit<[u8; N]> only.
unsafe impl Pod for bpf_prog_info {}
// SAFETY: as above.
unsafe impl Pod for bpf_map_info {}
// SAFETY: as above.
unsafe impl Pod for bpf_btf_info {}
// SAFETY: four u64s.
unsafe impl Pod for bpf_token_info {}

/// Issues the command with `info` as the output buffer; returns the kernel's `info_len`.
fn get_info<T: Pod>(fd: BorrowedFd<'_>, info: &mut T) -> Result<u32, SysError> {
    let mut attr = Attr::zeroed();
    let i = attr.info_mut();
    i.bpf_fd = fd.as_raw_fd() as u32;
    i.info_len = size_of::<T>() as u32;
    i.info = info as *mut T as u64;
    bpf(
        bpf_cmd::BPF_OBJ_GET_INFO_BY_FD,
        &mut attr,
        attr_end!(bpf_attr__bindgen_ty_9, info),
    )
    .map_err(|e| SysError::kernel(NAME, e))?;
    Ok(attr.info().info_len)
}

/// Program info (type, id, tag, name, lengths, map count, BTF id, ...). Array pointers are not filled.
pub fn prog_info(fd: BorrowedFd<'_>) -> Result<bpf_prog_info, SysError> {
    let mut info = bpf_prog_info::zeroed();
    get_info(fd, &mut info)?;
    Ok(info)
}

/// Map info (type, id, key/value size, max_entries, flags, name, BTF ids, map_extra).
pub fn map_info(fd: BorrowedFd<'_>) -> Result<bpf_map_info, SysError> {
    let mut info = bpf_map_info::zeroed();
    get_info(fd, &mut info)?;
    Ok(info)
}

/// BTF object info.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BtfInfo {
    /// Kernel id of the BTF object.
    pub id: u32,
    /// Name: `"vmlinux"`, a module name, or empty for user-loaded BTF.
    pub name: String,
    /// Whether this is kernel (vmlinux or module) BTF.
    pub kernel_btf: bool,
    /// Size of the raw BTF data in bytes.
    pub size: u32,
}

/// Module names are at most `MODULE_NAME_LEN` (56) bytes; leave room.
const BTF_NAME_BUF: usize = 64;

/// BTF object info, with its name.
pub fn btf_info(fd: BorrowedFd<'_>) -> Result<BtfInfo, SysError> {
    let mut name = [0u8; BTF_NAME_BUF];
    let mut info = bpf_btf_info::zeroed();
    info.name = name.as_mut_ptr() as u64;
    info.name_len = BTF_NAME_BUF as u32;
    get_info(fd, &mut info)?;
    let end = name.iter().position(|&b| b == 0).unwrap_or(BTF_NAME_BUF);
    Ok(BtfInfo {
        id: info.id,
        name: String::from_utf8_lossy(&name[..end]).into_owned(),
        kernel_btf: info.kernel_btf != 0,
        size: info.btf_size,
    })
}

/// The raw BTF data of a BTF object (vmlinux, module, or a program's BTF).
pub fn btf_data(fd: BorrowedFd<'_>) -> Result<Vec<u8>, SysError> {
    let mut info = bpf_btf_info::zeroed();
    get_info(fd, &mut info)?;
    let mut data = vec![0u8; info.btf_size as usize];
    let mut info2 = bpf_btf_info::zeroed();
    info2.btf = data.as_mut_ptr() as u64;
    info2.btf_size = info.btf_size;
    get_info(fd, &mut info2)?;
    data.truncate((info2.btf_size as usize).min(data.len()));
    Ok(data)
}

/// What a token allows (kernel 6.17+; older kernels answer EINVAL for a token fd).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    /// Delegated commands (bit n = `enum bpf_cmd` n).
    pub allowed_cmds: u64,
    /// Delegated map types.
    pub allowed_maps: u64,
    /// Delegated program types.
    pub allowed_progs: u64,
    /// Delegated attach types.
    pub allowed_attachs: u64,
}

/// Token info: the delegation masks of the bpffs the token was created from.
pub fn token_info(fd: BorrowedFd<'_>) -> Result<TokenInfo, SysError> {
    let mut info = bpf_token_info::default();
    get_info(fd, &mut info)?;
    Ok(TokenInfo {
        allowed_cmds: info.allowed_cmds,
        allowed_maps: info.allowed_maps,
        allowed_progs: info.allowed_progs,
        allowed_attachs: info.allowed_attachs,
    })
}

/// Length in bytes of the program's instructions after the verifier's rewrites (`xlated_prog_len`).
pub fn prog_xlated_len(fd: BorrowedFd<'_>) -> Result<u32, SysError> {
    Ok(prog_info(fd)?.xlated_prog_len)
}

/// The ids of the maps the program uses (its `used_maps`, including maps bound with PROG_BIND_MAP).
pub fn prog_map_ids(fd: BorrowedFd<'_>) -> Result<Vec<u32>, SysError> {
    // The count can change between the two calls only through PROG_BIND_MAP; retry a few times if it grew.
    for _ in 0..4 {
        let n = prog_info(fd)?.nr_map_ids;
        let mut ids = vec![0u32; n as usize];
        let mut info = bpf_prog_info::zeroed();
        info.nr_map_ids = n;
        info.map_ids = ids.as_mut_ptr() as u64;
        get_info(fd, &mut info)?;
        if info.nr_map_ids <= n {
            ids.truncate(info.nr_map_ids as usize);
            return Ok(ids);
        }
    }
    Err(SysError::invalid(
        NAME,
        Errno::EAGAIN,
        "program map count kept changing",
    ))
}

/// The program's instructions after the verifier's rewrites (map fds become map addresses, ...). Needs
/// CAP_SYS_ADMIN (or kptr_restrict) to be filled in; otherwise the kernel reports length 0.
pub fn prog_xlated_insns(fd: BorrowedFd<'_>) -> Result<Vec<bpf_insn>, SysError> {
    let len = prog_xlated_len(fd)?;
    let n = len as usize / size_of::<bpf_insn>();
    let mut buf = vec![0u8; n * size_of::<bpf_insn>()];
    let mut info = bpf_prog_info::zeroed();
    info.xlated_prog_len = buf.len() as u32;
    info.xlated_prog_insns = buf.as_mut_ptr() as u64;
    get_info(fd, &mut info)?;
    let got = (info.xlated_prog_len as usize).min(buf.len()) / size_of::<bpf_insn>();
    Ok(buf
        .chunks_exact(size_of::<bpf_insn>())
        .take(got)
        .map(|c| bpf_insn {
            code: c[0],
            _bitfield_align_1: [],
            // The register byte exactly as the kernel wrote it (dst in the low nibble on little endian).
            _bitfield_1: crate::uapi::__BindgenBitfieldUnit::new([c[1]]),
            off: i16::from_ne_bytes([c[2], c[3]]),
            imm: i32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}
