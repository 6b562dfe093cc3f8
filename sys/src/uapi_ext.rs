//! The few UAPI items that aya-obj 0.3.0 does not have.
//!
//! aya-obj 0.3.0 was generated from kernel headers that predate these additions:
//! - `struct bpf_token_info` (kernel 6.17, libbpf 1.7 `a3dadc5a`): what a token allows, returned by
//!   `BPF_OBJ_GET_INFO_BY_FD` on a token fd.
//! - `fd_by_id_token_fd`: the `__s32` after `open_flags` in the `*_GET_FD_BY_ID` attr (kernel `009a8cb4`, 6.15-era;
//!   libbpf 1.6 `90844e28`) that lets BPF_BTF_GET_FD_BY_ID use a token.
//! - `fd_array_cnt`: the `__u32` after `prog_token_fd` in the PROG_LOAD attr (kernel 6.14): when non-zero, the
//!   kernel binds every map in `fd_array` to the program.
//!
//! Everything else comes from [`crate::uapi`] (aya-obj). The offsets here are derived from aya-obj's structs
//! (the new field sits right after the last field aya-obj knows), and the tests check them against the numbers
//! from compiling the current `include/uapi/linux/bpf.h`, and against the running kernel's own BTF when
//! `/sys/kernel/btf/vmlinux` is readable.

use core::mem::{offset_of, size_of};

use crate::uapi::{bpf_attr__bindgen_ty_4, bpf_attr__bindgen_ty_8};

/// `struct bpf_token_info` (uapi `linux/bpf.h`, kernel 6.17+): the four delegation masks of a token.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct bpf_token_info {
    /// Bit `n` set: bpf command `n` (`enum bpf_cmd`) is delegated.
    pub allowed_cmds: u64,
    /// Bit `n` set: map type `n` may be created.
    pub allowed_maps: u64,
    /// Bit `n` set: program type `n` may be loaded.
    pub allowed_progs: u64,
    /// Bit `n` set: expected attach type `n` may be used.
    pub allowed_attachs: u64,
}

/// Offset of `fd_by_id_token_fd` (`__s32`) in `union bpf_attr`: right after `open_flags`.
pub const FD_BY_ID_TOKEN_FD_OFFSET: usize =
    offset_of!(bpf_attr__bindgen_ty_8, open_flags) + size_of::<u32>();

/// Offset of `fd_array_cnt` (`__u32`) in `union bpf_attr`: right after `prog_token_fd`.
pub const FD_ARRAY_CNT_OFFSET: usize =
    offset_of!(bpf_attr__bindgen_ty_4, prog_token_fd) + size_of::<i32>();

/// `sizeof(union bpf_attr)` in the newest kernel headers we know of (libbpf at `f7081a6b`, which ends with
/// `keyring_id`). The kernel accepts a shorter attr and requires any bytes past its own size to be zero.
pub const BPF_ATTR_SIZE_LATEST: usize = 168;

#[cfg(test)]
mod tests {
    use super::*;

    /// Offsets from compiling libbpf's copy of `include/uapi/linux/bpf.h` on x86_64
    /// (shared/reference/libbpf-behaviour.md §1.3).
    #[test]
    fn ext_offsets_match_uapi() {
        assert_eq!(FD_BY_ID_TOKEN_FD_OFFSET, 12);
        assert_eq!(FD_ARRAY_CNT_OFFSET, 148);
    }

    #[test]
    fn token_info_layout() {
        assert_eq!(size_of::<bpf_token_info>(), 32);
        assert_eq!(offset_of!(bpf_token_info, allowed_cmds), 0);
        assert_eq!(offset_of!(bpf_token_info, allowed_maps), 8);
        assert_eq!(offset_of!(bpf_token_info, allowed_progs), 16);
        assert_eq!(offset_of!(bpf_token_info, allowed_attachs), 24);
    }
}
