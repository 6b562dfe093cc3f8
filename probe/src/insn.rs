//! The handful of BPF instructions the probes need, built on `aya_obj`'s `bpf_insn`.

use aya_obj::generated::{
    bpf_insn, BPF_ADD, BPF_ALU64, BPF_CALL, BPF_DW, BPF_EXIT, BPF_IMM, BPF_JMP, BPF_K, BPF_LD,
    BPF_MEM, BPF_MOV, BPF_PSEUDO_CALL, BPF_PSEUDO_MAP_VALUE, BPF_ST, BPF_X,
};

/// Registers used by the probes.
pub const R0: u8 = 0;
pub const R1: u8 = 1;
pub const R2: u8 = 2;
pub const R3: u8 = 3;
pub const R10: u8 = 10;

fn insn(code: u32, dst: u8, src: u8, off: i16, imm: i32) -> bpf_insn {
    bpf_insn {
        code: code as u8,
        _bitfield_align_1: [],
        _bitfield_1: bpf_insn::new_bitfield_1(dst, src),
        off,
        imm,
    }
}

/// `dst = imm` (64-bit).
pub fn mov64_imm(dst: u8, imm: i32) -> bpf_insn {
    insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
}

/// `dst = src` (64-bit).
pub fn mov64_reg(dst: u8, src: u8) -> bpf_insn {
    insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0)
}

/// `dst += imm` (64-bit).
pub fn add64_imm(dst: u8, imm: i32) -> bpf_insn {
    insn(BPF_ALU64 | BPF_ADD | BPF_K, dst, 0, 0, imm)
}

/// `*(u64 *)(dst + off) = imm`.
pub fn st_dw(dst: u8, off: i16, imm: i32) -> bpf_insn {
    insn(BPF_ST | BPF_MEM | BPF_DW, dst, 0, off, imm)
}

/// `dst = &map_value(map_fd)[off]`: `ld_imm64` with `BPF_PSEUDO_MAP_VALUE` (two slots).
pub fn ld_map_value(dst: u8, map_fd: i32, off: u32) -> [bpf_insn; 2] {
    [
        insn(
            BPF_LD | BPF_DW | BPF_IMM,
            dst,
            BPF_PSEUDO_MAP_VALUE as u8,
            0,
            map_fd,
        ),
        insn(0, 0, 0, 0, off as i32),
    ]
}

/// Call helper `id`.
pub fn call_helper(id: u32) -> bpf_insn {
    insn(BPF_JMP | BPF_CALL, 0, 0, 0, id as i32)
}

/// Call a BPF subprogram `rel` instructions after the next one.
pub fn call_rel(rel: i32) -> bpf_insn {
    insn(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL as u8, 0, rel)
}

/// `exit`.
pub fn exit() -> bpf_insn {
    insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
}

/// `r0 = 0; exit` — the trivial program.
pub fn ret0() -> [bpf_insn; 2] {
    [mov64_imm(R0, 0), exit()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_match_uapi_layout() {
        // Encodings from the kernel's filter.h macros: BPF_MOV64_IMM(R0, 0) = b7 00 .. ,
        // BPF_EXIT_INSN() = 95, ld_imm64 = 18 with src_reg in the high nibble.
        let m = mov64_imm(R0, 7);
        assert_eq!((m.code, m.dst_reg(), m.src_reg(), m.imm), (0xb7, 0, 0, 7));
        assert_eq!(exit().code, 0x95);
        let [a, b] = ld_map_value(R1, 5, 1 << 30);
        assert_eq!((a.code, a.dst_reg(), a.src_reg(), a.imm), (0x18, 1, 2, 5));
        assert_eq!((b.code, b.imm), (0, 1 << 30));
        let c = call_rel(1);
        assert_eq!((c.code, c.src_reg(), c.imm), (0x85, 1, 1));
        let s = st_dw(R1, 0, 42);
        assert_eq!((s.code, s.dst_reg(), s.off, s.imm), (0x7a, 1, 0, 42));
        assert_eq!(mov64_reg(R1, R10).code, 0xbf);
        assert_eq!(add64_imm(R1, -8).code, 0x07);
    }
}
