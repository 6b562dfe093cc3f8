//! A tiny raw-BTF writer for the CO-RE unit tests (little-endian), so each
//! test states its local and target types explicitly.

use aya_obj::generated::bpf_insn;

use crate::raw::INT_SIGNED;
use crate::{BtfModel, BtfType, TypeBody};

/// Test types are added through the crate's builder ([`BtfModel`]); this
/// wrapper only keeps the calls short.
#[allow(dead_code)]
pub(crate) struct B {
    m: BtfModel,
}

#[allow(dead_code)]
impl B {
    pub fn new() -> Self {
        B { m: BtfModel::new() }
    }
    pub fn s(&mut self, s: &str) -> u32 {
        self.m.add_string(s)
    }
    /// The id the next added type will get.
    pub fn next_id(&self) -> u32 {
        self.m.len()
    }
    pub fn int(&mut self, name: &str, size: u32, signed: bool) -> u32 {
        self.m
            .add_int(name, size, if signed { INT_SIGNED } else { 0 })
    }
    /// An unsigned INT of any `size` (BTF_INT_BITS capped at 8, as
    /// `add_int` would overflow computing `size * 8` for hostile sizes).
    pub fn int_any_size(&mut self, name: &str, size: u32) -> u32 {
        let name_off = self.m.add_string(name);
        self.m.add_type(BtfType {
            name_off,
            kind_flag: false,
            body: TypeBody::Int {
                size,
                encoding: 0,
                offset: 0,
                bits: 8,
            },
        })
    }
    pub fn ptr(&mut self, target: u32) -> u32 {
        self.m.add_ptr(target)
    }
    pub fn array(&mut self, elem: u32, index: u32, n: u32) -> u32 {
        self.m.add_array(elem, index, n)
    }
    /// Members: (name, type, bit offset, bitfield size).
    pub fn composite(
        &mut self,
        union: bool,
        name: &str,
        size: u32,
        m: &[(&str, u32, u32, u32)],
    ) -> u32 {
        if m.iter().any(|x| x.3 != 0) {
            let mm: Vec<(&str, u32, u32, u8)> =
                m.iter().map(|&(n, t, o, b)| (n, t, o, b as u8)).collect();
            self.m.add_bitfield_composite(union, name, size, &mm)
        } else {
            let mm: Vec<(&str, u32, u32)> = m.iter().map(|&(n, t, o, _)| (n, t, o)).collect();
            if union {
                self.m.add_union(name, size, &mm)
            } else {
                self.m.add_struct(name, size, &mm)
            }
        }
    }
    pub fn st(&mut self, name: &str, size: u32, m: &[(&str, u32, u32, u32)]) -> u32 {
        self.composite(false, name, size, m)
    }
    pub fn un(&mut self, name: &str, size: u32, m: &[(&str, u32, u32, u32)]) -> u32 {
        self.composite(true, name, size, m)
    }
    /// ENUM of any size (clang 14 emits 8-byte ENUMs with truncated values).
    pub fn enum32(&mut self, name: &str, size: u32, signed: bool, v: &[(&str, i64)]) -> u32 {
        let values = v
            .iter()
            .map(|&(n, val)| (self.m.add_string(n), val as u32))
            .collect();
        let name_off = self.m.add_string(name);
        self.m.add_type(BtfType {
            name_off,
            kind_flag: signed,
            body: TypeBody::Enum { size, values },
        })
    }
    pub fn enum64(&mut self, name: &str, signed: bool, v: &[(&str, u64)]) -> u32 {
        self.m.add_enum64(name, signed, v)
    }
    pub fn fwd(&mut self, name: &str, union: bool) -> u32 {
        self.m.add_fwd(name, union)
    }
    pub fn typedef(&mut self, name: &str, target: u32) -> u32 {
        self.m.add_typedef(name, target)
    }
    pub fn konst(&mut self, target: u32) -> u32 {
        self.m.add_const(target)
    }
    pub fn proto(&mut self, ret: u32, params: &[u32]) -> u32 {
        let p: Vec<(&str, u32)> = params.iter().map(|&t| ("", t)).collect();
        self.m.add_func_proto(ret, &p)
    }
    /// Raw little-endian BTF bytes.
    pub fn finish(&self) -> Vec<u8> {
        self.m.to_bytes().expect("test BTF encodes")
    }
}

pub(crate) fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> bpf_insn {
    let mut i: bpf_insn = zeroed_insn();
    i.code = code;
    i.set_dst_reg(dst);
    i.set_src_reg(src);
    i.off = off;
    i.imm = imm;
    i
}

fn zeroed_insn() -> bpf_insn {
    bpf_insn {
        code: 0,
        _bitfield_align_1: [],
        _bitfield_1: Default::default(),
        off: 0,
        imm: 0,
    }
}

/// Raw split BTF (module BTF) on top of `base`: ids continue after the
/// base's, string offsets after the base's strings.
pub(crate) struct Split {
    types: Vec<u8>,
    strs: Vec<u8>,
    next: u32,
    str_base: u32,
}

impl Split {
    pub fn new(base: &crate::Btf<'_>) -> Self {
        Split {
            types: Vec::new(),
            strs: Vec::new(),
            next: base.len(),
            str_base: base.strings_end(),
        }
    }
    fn s(&mut self, s: &str) -> u32 {
        let off = self.str_base + self.strs.len() as u32;
        self.strs.extend_from_slice(s.as_bytes());
        self.strs.push(0);
        off
    }
    fn w(&mut self, v: u32) {
        self.types.extend_from_slice(&v.to_le_bytes());
    }
    pub fn int(&mut self, name: &str, size: u32) -> u32 {
        let n = self.s(name);
        self.w(n);
        self.w(1 << 24);
        self.w(size);
        self.w((1 << 24) | (size * 8));
        self.next += 1;
        self.next - 1
    }
    pub fn ptr(&mut self, target: u32) -> u32 {
        self.w(0);
        self.w(2 << 24);
        self.w(target);
        self.next += 1;
        self.next - 1
    }
    pub fn st(&mut self, name: &str, size: u32, m: &[(&str, u32, u32)]) -> u32 {
        let n = self.s(name);
        self.w(n);
        self.w((4 << 24) | m.len() as u32);
        self.w(size);
        for &(mn, t, off) in m {
            let mn = self.s(mn);
            self.w(mn);
            self.w(t);
            self.w(off);
        }
        self.next += 1;
        self.next - 1
    }
    pub fn finish(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&0xEB9Fu16.to_le_bytes());
        out.extend_from_slice(&[1, 0]);
        for v in [
            24u32,
            0,
            self.types.len() as u32,
            self.types.len() as u32,
            self.strs.len() as u32,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.types);
        out.extend_from_slice(&self.strs);
        out
    }
}
