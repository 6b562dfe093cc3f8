//! `Attr`: the zero-initialised buffer every bpf(2) command is issued with.
//!
//! aya-obj's `union bpf_attr` is 152 bytes, but the kernel's has grown to 168 and has fields aya-obj lacks
//! (`fd_array_cnt`, `fd_by_id_token_fd`, see [`crate::uapi_ext`]). So the attr lives in a larger, 8-aligned,
//! zeroed byte buffer that is *viewed* as aya-obj's per-command structs. Wrappers only ever write individual
//! fields, so every byte stays initialised and everything the wrapper did not set stays zero, which is what the
//! kernel requires of unused fields (`CHECK_ATTR`) and of bytes past its own `sizeof(union bpf_attr)`.
//!
//! Field-wise writes are a soundness rule, not style: assigning a whole struct (or union) value through a view,
//! `l.uprobe_multi = Struct { .. }`, copies the value's padding bytes too, and padding is uninitialised memory.
//! The buffer would then hold uninitialised bytes that `bytes()`, `Clone`, `Debug` and the typed views read from
//! safe code, and the kernel would see junk where it demands zeros. That is why the mutable views are
//! crate-private: outside code reads the views and writes bytes (`set_u32_at`), which cannot create padding.
//!
//! ```compile_fail
//! // Outside this crate there is no `&mut` to a padded struct inside the attr.
//! let mut attr = bpfload_syscall::Attr::zeroed();
//! attr.link_create_mut().flags = 0;
//! ```

use crate::uapi::{
    bpf_attr, bpf_attr__bindgen_ty_1, bpf_attr__bindgen_ty_12, bpf_attr__bindgen_ty_14,
    bpf_attr__bindgen_ty_19, bpf_attr__bindgen_ty_2, bpf_attr__bindgen_ty_20,
    bpf_attr__bindgen_ty_4, bpf_attr__bindgen_ty_5, bpf_attr__bindgen_ty_7, bpf_attr__bindgen_ty_8,
    bpf_attr__bindgen_ty_9,
};

/// Size of the attr buffer. Larger than any `union bpf_attr` so far (168 bytes); a wrapper never passes more
/// than the end of the last field it sets.
pub const ATTR_BUF_SIZE: usize = 256;

const _: () = assert!(core::mem::size_of::<bpf_attr>() <= ATTR_BUF_SIZE);
const _: () = assert!(core::mem::align_of::<bpf_attr>() <= 8);
const _: () = assert!(crate::uapi_ext::BPF_ATTR_SIZE_LATEST <= ATTR_BUF_SIZE);

/// A zeroed, 8-byte aligned `union bpf_attr` buffer with typed views per command.
#[repr(C, align(8))]
#[derive(Clone)]
pub struct Attr {
    raw: [u8; ATTR_BUF_SIZE],
}

impl Default for Attr {
    fn default() -> Self {
        Attr::zeroed()
    }
}

impl std::fmt::Debug for Attr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let used = self.raw.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        write!(f, "Attr({:02x?})", &self.raw[..used])
    }
}

macro_rules! views {
    ($( $(#[$doc:meta])* $get:ident $(, $get_mut:ident)?: $ty:ty; )*) => {
        $(
            $(#[$doc])*
            pub fn $get(&self) -> &$ty {
                const _: () = assert!(core::mem::size_of::<$ty>() <= ATTR_BUF_SIZE);
                const _: () = assert!(core::mem::align_of::<$ty>() <= 8);
                // SAFETY: the buffer is 8-aligned and at least size_of::<$ty>() bytes (checked above); every byte
                // is initialised (the buffer starts zeroed and is only written field by field through the
                // crate-private mutable views, or bytewise by `set_u32_at`); `$ty` is a plain-old-data bindgen
                // struct of integers, for which any bit pattern is valid. The returned borrow is tied to `self`.
                unsafe { &*(self.raw.as_ptr() as *const $ty) }
            }

            $(
            #[doc = concat!("Mutable [`", stringify!($get), "`](Self::", stringify!($get), ") view.")]
            ///
            /// Write one (leaf) field at a time, never a whole struct or union value: see the module docs. Crate-
            /// private so that only this crate's reviewed wrappers hold such a view.
            pub(crate) fn $get_mut(&mut self) -> &mut $ty {
                // SAFETY: as for the shared view; the exclusive borrow of `self` makes the view unique. Writes
                // through it only touch field bytes (the rule above, which holds because only this crate's code
                // can obtain the view), so the buffer stays fully initialised.
                unsafe { &mut *(self.raw.as_mut_ptr() as *mut $ty) }
            }
            )?
        )*
    };
}

impl Attr {
    /// A zeroed attr.
    pub const fn zeroed() -> Attr {
        Attr {
            raw: [0; ATTR_BUF_SIZE],
        }
    }

    views! {
        /// The whole `union bpf_attr` as aya-obj defines it (read-only: nothing here writes the union as a
        /// whole, and a whole-union assignment is exactly what must not happen).
        bpf_attr: bpf_attr;
        /// `BPF_MAP_CREATE` fields.
        map_create, map_create_mut: bpf_attr__bindgen_ty_1;
        /// `BPF_MAP_*_ELEM` / `GET_NEXT_KEY` fields.
        map_elem, map_elem_mut: bpf_attr__bindgen_ty_2;
        /// `BPF_PROG_LOAD` fields.
        prog_load, prog_load_mut: bpf_attr__bindgen_ty_4;
        /// `BPF_OBJ_PIN` / `BPF_OBJ_GET` fields.
        obj, obj_mut: bpf_attr__bindgen_ty_5;
        /// `BPF_PROG_TEST_RUN` fields.
        test_run, test_run_mut: bpf_attr__bindgen_ty_7;
        /// `*_GET_FD_BY_ID` / `*_GET_NEXT_ID` fields.
        by_id, by_id_mut: bpf_attr__bindgen_ty_8;
        /// `BPF_OBJ_GET_INFO_BY_FD` fields.
        info, info_mut: bpf_attr__bindgen_ty_9;
        /// `BPF_BTF_LOAD` fields.
        btf_load, btf_load_mut: bpf_attr__bindgen_ty_12;
        /// `BPF_LINK_CREATE` fields.
        link_create, link_create_mut: bpf_attr__bindgen_ty_14;
        /// `BPF_PROG_BIND_MAP` fields.
        prog_bind_map, prog_bind_map_mut: bpf_attr__bindgen_ty_19;
        /// `BPF_TOKEN_CREATE` fields.
        token_create, token_create_mut: bpf_attr__bindgen_ty_20;
    }

    /// All bytes of the buffer (tests compare attrs and check that unused bytes are zero).
    pub fn bytes(&self) -> &[u8; ATTR_BUF_SIZE] {
        &self.raw
    }

    /// Reads a native-endian `u32` at `offset` (for fields aya-obj lacks, see [`crate::uapi_ext`]).
    ///
    /// # Panics
    /// If `offset + 4 > ATTR_BUF_SIZE` (offsets are compile-time constants of this crate).
    pub fn u32_at(&self, offset: usize) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.raw[offset..offset + 4]);
        u32::from_ne_bytes(b)
    }

    /// Writes a native-endian `u32` at `offset` (for fields aya-obj lacks).
    pub fn set_u32_at(&mut self, offset: usize, value: u32) {
        self.raw[offset..offset + 4].copy_from_slice(&value.to_ne_bytes());
    }

    /// Pointer handed to the kernel.
    pub(crate) fn as_mut_ptr(&mut self) -> *mut u8 {
        self.raw.as_mut_ptr()
    }
}

/// `offsetofend` of a field of one of aya-obj's attr structs, as a `u32` attr size.
macro_rules! attr_end {
    ($ty:ty, $field:ident) => {
        (core::mem::offset_of!($ty, $field) + crate::attr::field_size(|s: &$ty| &s.$field)) as u32
    };
}
pub(crate) use attr_end;

/// Size of a field, selected by a projection closure (lets `attr_end!` work on any field type).
pub(crate) const fn field_size<S, F>(_project: fn(&S) -> &F) -> usize {
    core::mem::size_of::<F>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_alias_the_same_bytes() {
        let mut a = Attr::zeroed();
        a.prog_load_mut().prog_flags = 0x1234_5678;
        assert_eq!(a.u32_at(44), 0x1234_5678);
        a.map_create_mut().map_token_fd = -1;
        assert_eq!(a.u32_at(76), u32::MAX);
        a.set_u32_at(148, 7);
        assert_eq!(a.bytes()[148], 7);
    }

    #[test]
    fn attr_end_matches_uapi_offsets() {
        // Numbers from libbpf-behaviour.md §1.3 (compiled uapi on x86_64).
        assert_eq!(attr_end!(bpf_attr__bindgen_ty_1, map_token_fd), 80);
        assert_eq!(attr_end!(bpf_attr__bindgen_ty_4, prog_token_fd), 148);
        assert_eq!(attr_end!(bpf_attr__bindgen_ty_4, log_true_size), 144);
        assert_eq!(attr_end!(bpf_attr__bindgen_ty_12, btf_token_fd), 40);
        assert_eq!(attr_end!(bpf_attr__bindgen_ty_20, bpffs_fd), 8);
        assert_eq!(attr_end!(bpf_attr__bindgen_ty_8, open_flags), 12);
    }
}
