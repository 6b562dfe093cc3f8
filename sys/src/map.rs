//! Maps: `BPF_MAP_CREATE`, element access, `BPF_MAP_FREEZE`, `BPF_MAP_GET_FD_BY_ID`.
//!
//! The element wrappers are safe: the kernel reads `key_size` bytes from the key pointer and writes `value_size`
//! (per CPU for per-CPU maps) bytes to the value pointer, whatever slice we pass. So before an element call the
//! wrappers ask the kernel for the map's sizes (`BPF_OBJ_GET_INFO_BY_FD`, one extra syscall) and refuse slices
//! of the wrong length with EINVAL. Hot paths that already know the sizes use the `*_unchecked` variants.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use crate::attr::{attr_end, Attr};
use crate::errno::Errno;
use crate::error::SysError;
use crate::fd::raw_or_zero;
use crate::prog::put_name;
use crate::syscall::{bpf, bpf_fd};
use crate::uapi::{
    bpf_attr__bindgen_ty_1, bpf_attr__bindgen_ty_2, bpf_attr__bindgen_ty_8, bpf_cmd, bpf_map_type,
    BPF_F_TOKEN_FD, BPF_F_VTYPE_BTF_OBJ_FD,
};

pub use crate::arena::{mmap_arena, ArenaMapping};

/// `BPF_MAP_CREATE` attr size we pass: `offsetofend(map_token_fd)` = 80, the last field this wrapper sets.
/// (libbpf 1.7 passes 92, up to `excl_prog_hash_size`, which we do not use.)
pub const MAP_CREATE_ATTR_SIZE: u32 = attr_end!(bpf_attr__bindgen_ty_1, map_token_fd);

/// Arguments of `BPF_MAP_CREATE`. `map_type` is a raw `enum bpf_map_type` value.
#[derive(Clone, Copy, Debug, Default)]
pub struct MapCreateAttr<'a> {
    /// `enum bpf_map_type`.
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum number of entries.
    pub max_entries: u32,
    /// `map_flags`. `BPF_F_TOKEN_FD` is set exactly when `token` is set, `BPF_F_VTYPE_BTF_OBJ_FD` exactly when
    /// `value_type_btf_obj_fd` is set (the caller's copies of these two bits are ignored).
    pub map_flags: u32,
    /// Inner map template for map-in-map types.
    pub inner_map_fd: Option<BorrowedFd<'a>>,
    /// NUMA node (used with `BPF_F_NUMA_NODE`).
    pub numa_node: u32,
    /// Map name; truncated to 15 bytes (the kernel accepts only `[A-Za-z0-9_.]`).
    pub name: Option<&'a str>,
    /// Offload target (0 = none).
    pub ifindex: u32,
    /// BTF holding the key/value types.
    pub btf_fd: Option<BorrowedFd<'a>>,
    /// BTF type id of the key.
    pub btf_key_type_id: u32,
    /// BTF type id of the value.
    pub btf_value_type_id: u32,
    /// struct_ops: kernel BTF id of the `bpf_struct_ops_<name>` value type.
    pub btf_vmlinux_value_type_id: u32,
    /// Type-specific extra (bloom filter hashes, arena address).
    pub map_extra: u64,
    /// struct_ops: module BTF that holds `btf_vmlinux_value_type_id`.
    pub value_type_btf_obj_fd: Option<BorrowedFd<'a>>,
    /// BPF token: sets `map_token_fd` and adds `BPF_F_TOKEN_FD` to `map_flags`.
    pub token: Option<BorrowedFd<'a>>,
}

pub(crate) fn fill_create(attr: &mut Attr, a: &MapCreateAttr<'_>) {
    let m = attr.map_create_mut();
    m.map_type = a.map_type;
    m.key_size = a.key_size;
    m.value_size = a.value_size;
    m.max_entries = a.max_entries;
    m.map_flags = a.map_flags;
    m.inner_map_fd = raw_or_zero(a.inner_map_fd);
    m.numa_node = a.numa_node;
    put_name(&mut m.map_name, a.name);
    m.map_ifindex = a.ifindex;
    m.btf_fd = raw_or_zero(a.btf_fd);
    m.btf_key_type_id = a.btf_key_type_id;
    m.btf_value_type_id = a.btf_value_type_id;
    m.btf_vmlinux_value_type_id = a.btf_vmlinux_value_type_id;
    m.map_extra = a.map_extra;
    // The fd-carrying flags are set exactly when the fd is given: a flag from a (possibly hostile) object's
    // map definition without the fd would make the kernel use fd 0.
    m.map_flags &= !(BPF_F_VTYPE_BTF_OBJ_FD | BPF_F_TOKEN_FD);
    if let Some(fd) = a.value_type_btf_obj_fd {
        m.value_type_btf_obj_fd = fd.as_raw_fd();
        m.map_flags |= BPF_F_VTYPE_BTF_OBJ_FD;
    }
    if let Some(token) = a.token {
        m.map_token_fd = token.as_raw_fd();
        m.map_flags |= BPF_F_TOKEN_FD;
    }
}

/// Creates a map (`BPF_MAP_CREATE`).
pub fn create(a: &MapCreateAttr<'_>) -> Result<OwnedFd, SysError> {
    let mut attr = Attr::zeroed();
    fill_create(&mut attr, a);
    bpf_fd(bpf_cmd::BPF_MAP_CREATE, &mut attr, MAP_CREATE_ATTR_SIZE)
}

/// Element-command attr size: `offsetofend(flags)` = 32 (libbpf uses the same for update and lookup).
const ELEM_ATTR_SIZE: u32 = attr_end!(bpf_attr__bindgen_ty_2, flags);

fn elem_call(
    cmd: bpf_cmd,
    name: &'static str,
    fd: BorrowedFd<'_>,
    key: *const u8,
    value: u64,
    flags: u64,
) -> Result<(), SysError> {
    let mut attr = Attr::zeroed();
    let e = attr.map_elem_mut();
    e.map_fd = fd.as_raw_fd() as u32;
    e.key = key as u64;
    e.__bindgen_anon_1.value = value;
    e.flags = flags;
    bpf(cmd, &mut attr, ELEM_ATTR_SIZE)
        .map(drop)
        .map_err(|e| SysError::kernel(name, e))
}

/// Byte sizes the kernel uses for a map's keys and values in element calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElemSizes {
    /// Key size (0 for QUEUE/STACK/BLOOM_FILTER: no key pointer).
    pub key: usize,
    /// Value buffer size: `value_size`, or `round_up(value_size, 8) * possible CPUs` for per-CPU maps.
    pub value: usize,
}

/// Asks the kernel for the element sizes of a map (`BPF_OBJ_GET_INFO_BY_FD`).
pub fn elem_sizes(fd: BorrowedFd<'_>) -> Result<ElemSizes, SysError> {
    let info = crate::info::map_info(fd)?;
    let per_cpu = [
        bpf_map_type::BPF_MAP_TYPE_PERCPU_HASH as u32,
        bpf_map_type::BPF_MAP_TYPE_PERCPU_ARRAY as u32,
        bpf_map_type::BPF_MAP_TYPE_LRU_PERCPU_HASH as u32,
        bpf_map_type::BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE as u32,
    ]
    .contains(&info.type_);
    let mut value = info.value_size as usize;
    if per_cpu {
        let cpus = crate::util::possible_cpus().map_err(|e| {
            SysError::invalid(
                "BPF_OBJ_GET_INFO_BY_FD",
                Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
                "cannot read possible CPUs",
            )
        })?;
        value = value.next_multiple_of(8) * cpus as usize;
    }
    Ok(ElemSizes {
        key: info.key_size as usize,
        value,
    })
}

fn check(name: &'static str, what: &str, got: usize, want: usize) -> Result<(), SysError> {
    if got != want {
        return Err(SysError::invalid(
            name,
            Errno::EINVAL,
            format!("{what} is {got} bytes, the map needs {want}"),
        ));
    }
    Ok(())
}

fn key_ptr(key: &[u8]) -> *const u8 {
    if key.is_empty() {
        std::ptr::null()
    } else {
        key.as_ptr()
    }
}

/// `BPF_MAP_UPDATE_ELEM`: sets `key` to `value` (`flags`: BPF_ANY, BPF_NOEXIST, BPF_EXIST, BPF_F_LOCK).
/// For QUEUE/STACK maps pass an empty key. For per-CPU maps `value` holds one 8-byte-aligned slot per CPU.
pub fn update_elem(
    fd: BorrowedFd<'_>,
    key: &[u8],
    value: &[u8],
    flags: u64,
) -> Result<(), SysError> {
    const NAME: &str = "BPF_MAP_UPDATE_ELEM";
    let s = elem_sizes(fd)?;
    check(NAME, "key", key.len(), s.key)?;
    check(NAME, "value", value.len(), s.value)?;
    elem_call(
        bpf_cmd::BPF_MAP_UPDATE_ELEM,
        NAME,
        fd,
        key_ptr(key),
        value.as_ptr() as u64,
        flags,
    )
}

/// [`update_elem`] without the size check.
///
/// # Safety
/// `key` and `value` must be exactly the map's key size and value buffer size ([`elem_sizes`]); otherwise the
/// kernel reads past the slices.
pub unsafe fn update_elem_unchecked(
    fd: BorrowedFd<'_>,
    key: &[u8],
    value: &[u8],
    flags: u64,
) -> Result<(), SysError> {
    elem_call(
        bpf_cmd::BPF_MAP_UPDATE_ELEM,
        "BPF_MAP_UPDATE_ELEM",
        fd,
        key_ptr(key),
        value.as_ptr() as u64,
        flags,
    )
}

/// `BPF_MAP_LOOKUP_ELEM`: copies the value of `key` into `value`. ENOENT if absent. QUEUE/STACK: empty key
/// peeks. `flags`: 0 or BPF_F_LOCK.
pub fn lookup_elem(
    fd: BorrowedFd<'_>,
    key: &[u8],
    value: &mut [u8],
    flags: u64,
) -> Result<(), SysError> {
    const NAME: &str = "BPF_MAP_LOOKUP_ELEM";
    let s = elem_sizes(fd)?;
    check(NAME, "key", key.len(), s.key)?;
    check(NAME, "value", value.len(), s.value)?;
    elem_call(
        bpf_cmd::BPF_MAP_LOOKUP_ELEM,
        NAME,
        fd,
        key_ptr(key),
        value.as_mut_ptr() as u64,
        flags,
    )
}

/// [`lookup_elem`] without the size check.
///
/// # Safety
/// `key` and `value` must be exactly the map's key size and value buffer size; otherwise the kernel reads or
/// writes past the slices.
pub unsafe fn lookup_elem_unchecked(
    fd: BorrowedFd<'_>,
    key: &[u8],
    value: &mut [u8],
    flags: u64,
) -> Result<(), SysError> {
    elem_call(
        bpf_cmd::BPF_MAP_LOOKUP_ELEM,
        "BPF_MAP_LOOKUP_ELEM",
        fd,
        key_ptr(key),
        value.as_mut_ptr() as u64,
        flags,
    )
}

/// `BPF_MAP_LOOKUP_AND_DELETE_ELEM`: pops `value` (QUEUE/STACK with an empty key) or takes and removes the
/// value of `key` (HASH types, kernel 5.14+). ENOENT if empty/absent.
pub fn lookup_and_delete_elem(
    fd: BorrowedFd<'_>,
    key: &[u8],
    value: &mut [u8],
) -> Result<(), SysError> {
    const NAME: &str = "BPF_MAP_LOOKUP_AND_DELETE_ELEM";
    let s = elem_sizes(fd)?;
    check(NAME, "key", key.len(), s.key)?;
    check(NAME, "value", value.len(), s.value)?;
    elem_call(
        bpf_cmd::BPF_MAP_LOOKUP_AND_DELETE_ELEM,
        NAME,
        fd,
        key_ptr(key),
        value.as_mut_ptr() as u64,
        0,
    )
}

/// `BPF_MAP_DELETE_ELEM`: removes `key`. attr size `offsetofend(flags)`.
pub fn delete_elem(fd: BorrowedFd<'_>, key: &[u8]) -> Result<(), SysError> {
    const NAME: &str = "BPF_MAP_DELETE_ELEM";
    let s = elem_sizes(fd)?;
    check(NAME, "key", key.len(), s.key)?;
    elem_call(bpf_cmd::BPF_MAP_DELETE_ELEM, NAME, fd, key_ptr(key), 0, 0)
}

/// `BPF_MAP_GET_NEXT_KEY`: the key after `key` (None: the first key) in iteration order, or `Ok(None)` at the
/// end (ENOENT).
pub fn get_next_key(fd: BorrowedFd<'_>, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, SysError> {
    const NAME: &str = "BPF_MAP_GET_NEXT_KEY";
    let s = elem_sizes(fd)?;
    if let Some(k) = key {
        check(NAME, "key", k.len(), s.key)?;
    }
    let mut next = vec![0u8; s.key];
    let kp = key.map_or(std::ptr::null(), key_ptr);
    match elem_call(
        bpf_cmd::BPF_MAP_GET_NEXT_KEY,
        NAME,
        fd,
        kp,
        next.as_mut_ptr() as u64,
        0,
    ) {
        Ok(()) => Ok(Some(next)),
        Err(e) if e.errno() == Errno::ENOENT => Ok(None),
        Err(e) => Err(e),
    }
}

/// `BPF_MAP_FREEZE`: makes the map read-only for user space (writes give EPERM); programs still write unless
/// the map has `BPF_F_RDONLY_PROG`. libbpf freezes `.rodata` after writing its initial value.
/// attr size `offsetofend(map_fd)` = 4.
pub fn freeze(fd: BorrowedFd<'_>) -> Result<(), SysError> {
    let mut attr = Attr::zeroed();
    attr.map_elem_mut().map_fd = fd.as_raw_fd() as u32;
    bpf(
        bpf_cmd::BPF_MAP_FREEZE,
        &mut attr,
        attr_end!(bpf_attr__bindgen_ty_2, map_fd),
    )
    .map(drop)
    .map_err(|e| SysError::kernel("BPF_MAP_FREEZE", e))
}

/// `BPF_MAP_GET_FD_BY_ID`: a new fd for the map with this id (needs CAP_SYS_ADMIN).
pub fn get_fd_by_id(id: u32) -> Result<OwnedFd, SysError> {
    let mut attr = Attr::zeroed();
    attr.by_id_mut().__bindgen_anon_1.map_id = id;
    bpf_fd(
        bpf_cmd::BPF_MAP_GET_FD_BY_ID,
        &mut attr,
        attr_end!(bpf_attr__bindgen_ty_8, open_flags),
    )
}

/// `BPF_MAP_GET_NEXT_ID`: the id of the next map after `start` (0 for the first), `None` at the end.
/// Needs CAP_SYS_ADMIN.
pub fn get_next_id(start: u32) -> Result<Option<u32>, SysError> {
    crate::btf::next_id(bpf_cmd::BPF_MAP_GET_NEXT_ID, "BPF_MAP_GET_NEXT_ID", start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscall::with_syscall_override;
    use std::os::fd::AsFd;

    #[test]
    fn create_sets_token_field_and_flag_only_with_token() {
        let dev_null = std::fs::File::open("/dev/null").unwrap();
        let tok = crate::fd::dup_good(dev_null.as_fd()).unwrap();
        for token in [None, Some(tok.as_fd())] {
            let a = MapCreateAttr {
                map_type: bpf_map_type::BPF_MAP_TYPE_ARRAY as u32,
                key_size: 4,
                value_size: 8,
                max_entries: 1,
                // The caller's fd flags are ignored: set exactly when the fd is given.
                map_flags: crate::uapi::BPF_F_RDONLY_PROG | BPF_F_TOKEN_FD | BPF_F_VTYPE_BTF_OBJ_FD,
                name: Some("0123456789abcdefgh"),
                token,
                ..Default::default()
            };
            let seen = std::rc::Rc::new(std::cell::RefCell::new(None));
            let s2 = seen.clone();
            let e = with_syscall_override(
                move |cmd, attr, size| {
                    assert_eq!(cmd, bpf_cmd::BPF_MAP_CREATE);
                    assert_eq!(size, 80);
                    *s2.borrow_mut() = Some(attr.clone());
                    Err(Errno::EPERM)
                },
                || create(&a).unwrap_err(),
            );
            assert_eq!(e.errno(), Errno::EPERM);
            assert_eq!(e.cmd(), "BPF_MAP_CREATE");
            let attr = seen.borrow().clone().unwrap();
            let m = attr.map_create();
            assert_eq!(m.map_name[15], 0);
            assert_eq!(m.map_name[14] as u8, b'e');
            match token {
                None => {
                    assert_eq!(m.map_token_fd, 0);
                    assert_eq!(m.map_flags, crate::uapi::BPF_F_RDONLY_PROG);
                }
                Some(t) => {
                    assert_eq!(m.map_token_fd, t.as_raw_fd());
                    assert_eq!(m.map_flags, crate::uapi::BPF_F_RDONLY_PROG | BPF_F_TOKEN_FD);
                }
            }
            // Nothing past the attr size is set.
            assert!(attr.bytes()[80..].iter().all(|&b| b == 0));
        }
    }
}
