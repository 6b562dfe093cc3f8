//! Facts the kernel answers about fds, used to name maps independently of fd numbers.

use std::os::fd::RawFd;

/// A kernel object name holds at most 15 bytes plus NUL (`BPF_OBJ_NAME_LEN` = 16).
pub const OBJ_NAME_MAX: usize = 15;

/// The kernel's name of the map behind `fd` (BPF_OBJ_GET_INFO_BY_FD), if `fd` is a map.
pub fn map_name(fd: RawFd) -> Option<String> {
    let mut info = libbpf_sys::bpf_map_info::default();
    let mut len = std::mem::size_of::<libbpf_sys::bpf_map_info>() as u32;
    // SAFETY: info is a writable bpf_map_info of `len` bytes; a non-map or closed fd only makes
    // the call fail.
    let rc = unsafe { libbpf_sys::bpf_map_get_info_by_fd(fd, &mut info, &mut len) };
    if rc != 0 {
        return None;
    }
    let bytes: Vec<u8> = info
        .name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// `EINVAL`-style name of an errno (libbpf's own >= 4000 codes by their libbpf name).
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::E2BIG => "E2BIG",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::ERANGE => "ERANGE",
        libc::ENOTSUP => "EOPNOTSUPP",
        libc::ENOSYS => "ENOSYS",
        libc::ENODATA => "ENODATA",
        524 => "ENOTSUPP",
        4000 => "LIBBPF_ERRNO__LIBELF",
        4001 => "LIBBPF_ERRNO__FORMAT",
        4002 => "LIBBPF_ERRNO__KVERSION",
        4003 => "LIBBPF_ERRNO__ENDIAN",
        4004 => "LIBBPF_ERRNO__INTERNAL",
        4005 => "LIBBPF_ERRNO__RELOC",
        4006 => "LIBBPF_ERRNO__LOAD",
        4007 => "LIBBPF_ERRNO__VERIFY",
        4008 => "LIBBPF_ERRNO__PROG2BIG",
        4009 => "LIBBPF_ERRNO__KVER",
        4010 => "LIBBPF_ERRNO__PROGTYPE",
        4011 => "LIBBPF_ERRNO__WRNGPID",
        4012 => "LIBBPF_ERRNO__INVSEQ",
        4013 => "LIBBPF_ERRNO__NLPARSE",
        _ => return format!("errno {errno}"),
    };
    name.to_string()
}
