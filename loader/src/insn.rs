//! One BPF instruction, in host byte order, and the few opcode tests the loader needs.

use aya_obj::generated::bpf_insn;

/// `BPF_LD | BPF_IMM | BPF_DW`: the first half of a 16-byte `ld_imm64`.
pub const LD_IMM64: u8 = 0x18;
/// `BPF_JMP | BPF_CALL`.
pub const CALL: u8 = 0x85;
/// `BPF_JMP | BPF_EXIT`.
pub const EXIT: u8 = 0x95;

/// `src_reg` of a bpf-to-bpf call.
pub const PSEUDO_CALL: u8 = 1;
/// `src_reg` of an `ld_imm64` of a map fd.
pub const PSEUDO_MAP_FD: u8 = 1;
/// `src_reg` of an `ld_imm64` of an address inside a map value.
pub const PSEUDO_MAP_VALUE: u8 = 2;
/// `src_reg` of an `ld_imm64` of a subprogram address (callbacks).
pub const PSEUDO_FUNC: u8 = 4;

/// A BPF instruction (`struct bpf_insn`), already converted to host byte order.
///
/// 8 bytes, like the kernel's: the two 4-bit registers share one byte (read them with
/// [`Insn::dst`] and [`Insn::src`]). A 1000-program object holds tens of thousands of these, twice
/// while it loads (the object's and the loaded programs'), so the layout matters.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct Insn {
    /// Opcode.
    pub code: u8,
    /// Destination register in the low nibble, source register in the high nibble.
    regs: u8,
    /// Signed offset.
    pub off: i16,
    /// Signed immediate.
    pub imm: i32,
}

impl std::fmt::Debug for Insn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Insn")
            .field("code", &self.code)
            .field("dst", &self.dst())
            .field("src", &self.src())
            .field("off", &self.off)
            .field("imm", &self.imm)
            .finish()
    }
}

impl Insn {
    /// Size of one instruction in bytes.
    pub const SIZE: usize = 8;

    /// An instruction from its fields (registers are 4 bits: higher bits are dropped).
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: (dst & 0xf) | (src << 4),
            off,
            imm,
        }
    }

    /// Destination register.
    pub const fn dst(&self) -> u8 {
        self.regs & 0xf
    }

    /// Source register.
    pub const fn src(&self) -> u8 {
        self.regs >> 4
    }

    /// Sets the destination register (4 bits: higher bits are dropped).
    pub fn set_dst(&mut self, reg: u8) {
        self.regs = (self.regs & 0xf0) | (reg & 0xf);
    }

    /// Sets the source register (4 bits: higher bits are dropped).
    pub fn set_src(&mut self, reg: u8) {
        self.regs = (self.regs & 0x0f) | (reg << 4);
    }

    /// Decodes one instruction stored with the object's byte order.
    /// Big-endian objects store `dst_reg` in the high nibble (the bitfield order flips), as libbpf's
    /// `bpf_insn_bswap` accounts for.
    pub(crate) fn decode(b: &[u8; 8], big_endian: bool) -> Self {
        if big_endian {
            Insn::new(
                b[0],
                b[1] >> 4,
                b[1] & 0xf,
                i16::from_be_bytes([b[2], b[3]]),
                i32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            )
        } else {
            Insn::new(
                b[0],
                b[1] & 0xf,
                b[1] >> 4,
                i16::from_le_bytes([b[2], b[3]]),
                i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            )
        }
    }

    /// The 8 bytes in host byte order, as `BPF_PROG_LOAD` expects them.
    pub fn to_bytes(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        if cfg!(target_endian = "little") {
            b[1] = self.regs;
        } else {
            b[1] = (self.dst() << 4) | self.src();
        }
        b[2..4].copy_from_slice(&self.off.to_ne_bytes());
        b[4..8].copy_from_slice(&self.imm.to_ne_bytes());
        b
    }

    /// `is_ldimm64_insn()`.
    pub fn is_ld_imm64(&self) -> bool {
        self.code == LD_IMM64
    }

    /// `is_call_insn()`: any `BPF_JMP | BPF_CALL`.
    pub fn is_call(&self) -> bool {
        self.code == CALL
    }

    /// `insn_is_subprog_call()`.
    pub fn is_subprog_call(&self) -> bool {
        self.code == CALL && self.src() == PSEUDO_CALL && self.dst() == 0 && self.off == 0
    }

    /// `insn_is_pseudo_func()`.
    pub fn is_pseudo_func(&self) -> bool {
        self.is_ld_imm64() && self.src() == PSEUDO_FUNC
    }
}

/// Converts to the UAPI `struct bpf_insn` (what `BPF_PROG_LOAD` and the CO-RE patcher take).
pub fn to_uapi(insns: &[Insn]) -> Vec<bpf_insn> {
    insns
        .iter()
        .map(|i| bpf_insn {
            code: i.code,
            _bitfield_align_1: [],
            _bitfield_1: bpf_insn::new_bitfield_1(i.dst(), i.src()),
            off: i.off,
            imm: i.imm,
        })
        .collect()
}

/// Converts back from the UAPI `struct bpf_insn`.
pub fn from_uapi(insns: &[bpf_insn]) -> Vec<Insn> {
    insns
        .iter()
        .map(|i| Insn::new(i.code, i.dst_reg(), i.src_reg(), i.off, i.imm))
        .collect()
}

/// Serialises instructions into the byte stream passed to `BPF_PROG_LOAD`.
pub fn insns_to_bytes(insns: &[Insn]) -> Vec<u8> {
    let mut out = Vec::with_capacity(insns.len() * Insn::SIZE);
    for i in insns {
        out.extend_from_slice(&i.to_bytes());
    }
    out
}

/// Decodes instruction bytes (a multiple of 8 long) into one shared allocation.
pub(crate) fn decode_range(data: &[u8], big_endian: bool) -> std::sync::Arc<[Insn]> {
    // `chunks_exact(..).map(..)` has an exact length, so the `Arc` is allocated once, at its size.
    data.chunks_exact(Insn::SIZE)
        .map(|c| {
            Insn::decode(
                c.try_into().expect("chunks_exact yields 8 bytes"),
                big_endian,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_le_and_be() {
        // r1 = *(u32 *)(r2 + -4) little-endian: 0x61 0x21 0xfc 0xff 00 00 00 00
        let le = [0x61u8, 0x21, 0xfc, 0xff, 0, 0, 0, 0];
        let i = Insn::decode(&le, false);
        assert_eq!(
            (i.code, i.dst(), i.src(), i.off, i.imm),
            (0x61, 1, 2, -4, 0)
        );
        let be = [0x61u8, 0x12, 0xff, 0xfc, 0, 0, 0, 0];
        assert_eq!(Insn::decode(&be, true), i);
        if cfg!(target_endian = "little") {
            assert_eq!(i.to_bytes(), le);
        }
        assert_eq!(from_uapi(&to_uapi(&[i])), vec![i]);
    }

    #[test]
    fn eight_bytes_and_registers_stay_in_their_nibbles() {
        assert_eq!(std::mem::size_of::<Insn>(), 8);
        let mut i = Insn::new(0xbf, 3, 7, 5, -1);
        assert_eq!((i.dst(), i.src()), (3, 7));
        i.set_dst(0x1a); // 4 bits: 0xa
        assert_eq!((i.dst(), i.src()), (0xa, 7));
        i.set_src(0xf5);
        assert_eq!((i.dst(), i.src()), (0xa, 5));
        assert_eq!(Insn::new(0, 0x12, 0x34, 0, 0), Insn::new(0, 2, 4, 0, 0));
        assert_eq!(
            format!("{i:?}"),
            "Insn { code: 191, dst: 10, src: 5, off: 5, imm: -1 }"
        );
        // Every register pair survives both byte orders.
        for dst in 0..16 {
            for src in 0..16 {
                let i = Insn::new(0x18, dst, src, -2, 7);
                let le = i.to_bytes();
                if cfg!(target_endian = "little") {
                    assert_eq!(Insn::decode(&le, false), i);
                }
                let mut be = le;
                be[1] = (dst << 4) | src;
                be[2..4].copy_from_slice(&(-2i16).to_be_bytes());
                be[4..8].copy_from_slice(&7i32.to_be_bytes());
                assert_eq!(Insn::decode(&be, true), i);
            }
        }
    }
}
