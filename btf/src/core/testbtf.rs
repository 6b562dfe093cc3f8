//! A tiny raw-BTF writer for the CO-RE unit tests (little-endian), so each
//! test states its local and target types explicitly.

use aya_obj::generated::bpf_insn;

#[allow(dead_code)]
pub(crate) struct B {
    types: Vec<u8>,
    strs: Vec<u8>,
    next: u32,
}

fn info(kind: u32, vlen: u32, kflag: bool) -> u32 {
    (kind << 24) | (vlen & 0xffff) | ((kflag as u32) << 31)
}

#[allow(dead_code)]
impl B {
    pub fn new() -> Self {
        B { types: Vec::new(), strs: vec![0], next: 1 }
    }
    pub fn s(&mut self, s: &str) -> u32 {
        if s.is_empty() {
            return 0;
        }
        let off = self.strs.len() as u32;
        self.strs.extend_from_slice(s.as_bytes());
        self.strs.push(0);
        off
    }
    fn w(&mut self, v: u32) {
        self.types.extend_from_slice(&v.to_le_bytes());
    }
    fn hdr(&mut self, name: &str, kind: u32, vlen: u32, kflag: bool, st: u32) -> u32 {
        let n = self.s(name);
        self.w(n);
        self.w(info(kind, vlen, kflag));
        self.w(st);
        let id = self.next;
        self.next += 1;
        id
    }
    /// The id the next added type will get.
    pub fn next_id(&self) -> u32 {
        self.next
    }
    pub fn int(&mut self, name: &str, size: u32, signed: bool) -> u32 {
        let id = self.hdr(name, 1, 0, false, size);
        self.w(((signed as u32) << 24) | (size * 8));
        id
    }
    pub fn ptr(&mut self, target: u32) -> u32 {
        self.hdr("", 2, 0, false, target)
    }
    pub fn array(&mut self, elem: u32, index: u32, n: u32) -> u32 {
        let id = self.hdr("", 3, 0, false, 0);
        self.w(elem);
        self.w(index);
        self.w(n);
        id
    }
    /// Members: (name, type, bit offset, bitfield size).
    pub fn composite(&mut self, union: bool, name: &str, size: u32, m: &[(&str, u32, u32, u32)]) -> u32 {
        let kflag = m.iter().any(|x| x.3 != 0);
        let id = self.hdr(name, if union { 5 } else { 4 }, m.len() as u32, kflag, size);
        for &(n, t, off, bits) in m {
            let n = self.s(n);
            self.w(n);
            self.w(t);
            self.w(if kflag { (bits << 24) | off } else { off });
        }
        id
    }
    pub fn st(&mut self, name: &str, size: u32, m: &[(&str, u32, u32, u32)]) -> u32 {
        self.composite(false, name, size, m)
    }
    pub fn un(&mut self, name: &str, size: u32, m: &[(&str, u32, u32, u32)]) -> u32 {
        self.composite(true, name, size, m)
    }
    pub fn enum32(&mut self, name: &str, size: u32, signed: bool, v: &[(&str, i64)]) -> u32 {
        let id = self.hdr(name, 6, v.len() as u32, signed, size);
        for &(n, val) in v {
            let n = self.s(n);
            self.w(n);
            self.w(val as u32);
        }
        id
    }
    pub fn enum64(&mut self, name: &str, signed: bool, v: &[(&str, u64)]) -> u32 {
        let id = self.hdr(name, 19, v.len() as u32, signed, 8);
        for &(n, val) in v {
            let n = self.s(n);
            self.w(n);
            self.w(val as u32);
            self.w((val >> 32) as u32);
        }
        id
    }
    pub fn fwd(&mut self, name: &str, union: bool) -> u32 {
        self.hdr(name, 7, 0, union, 0)
    }
    pub fn typedef(&mut self, name: &str, target: u32) -> u32 {
        self.hdr(name, 8, 0, false, target)
    }
    pub fn konst(&mut self, target: u32) -> u32 {
        self.hdr("", 10, 0, false, target)
    }
    pub fn proto(&mut self, ret: u32, params: &[u32]) -> u32 {
        let id = self.hdr("", 13, params.len() as u32, false, ret);
        for &p in params {
            self.w(0);
            self.w(p);
        }
        id
    }
    /// Raw bytes: header, types, strings.
    pub fn finish(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&0xeB9Fu16.to_le_bytes());
        out.push(1);
        out.push(0);
        out.extend_from_slice(&24u32.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(self.types.len() as u32).to_le_bytes());
        out.extend_from_slice(&(self.types.len() as u32).to_le_bytes());
        out.extend_from_slice(&(self.strs.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.types);
        out.extend_from_slice(&self.strs);
        out
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
    bpf_insn { code: 0, _bitfield_align_1: [], _bitfield_1: Default::default(), off: 0, imm: 0 }
}
