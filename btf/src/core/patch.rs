//! Patching the relocated instruction: libbpf's `bpf_core_patch_insn` and
//! `bpf_core_poison_insn`.

use aya_obj::generated::bpf_insn;

use super::calc::ReloRes;

/// Field access to one BPF instruction (`struct bpf_insn`), so the engine can
/// patch any representation: the UAPI `bpf_insn` (implemented here) or a
/// loader's own instruction type (implement it there).
pub trait CoreInsn {
    fn code(&self) -> u8;
    fn set_code(&mut self, code: u8);
    fn dst_reg(&self) -> u8;
    fn set_dst_reg(&mut self, reg: u8);
    fn src_reg(&self) -> u8;
    fn set_src_reg(&mut self, reg: u8);
    fn off(&self) -> i16;
    fn set_off(&mut self, off: i16);
    fn imm(&self) -> i32;
    fn set_imm(&mut self, imm: i32);
}

impl CoreInsn for bpf_insn {
    fn code(&self) -> u8 {
        self.code
    }
    fn set_code(&mut self, code: u8) {
        self.code = code;
    }
    fn dst_reg(&self) -> u8 {
        bpf_insn::dst_reg(self)
    }
    fn set_dst_reg(&mut self, reg: u8) {
        bpf_insn::set_dst_reg(self, reg)
    }
    fn src_reg(&self) -> u8 {
        bpf_insn::src_reg(self)
    }
    fn set_src_reg(&mut self, reg: u8) {
        bpf_insn::set_src_reg(self, reg)
    }
    fn off(&self) -> i16 {
        self.off
    }
    fn set_off(&mut self, off: i16) {
        self.off = off;
    }
    fn imm(&self) -> i32 {
        self.imm
    }
    fn set_imm(&mut self, imm: i32) {
        self.imm = imm;
    }
}

/// The helper id a poisoned instruction calls: 0xbad2310 ("bad relo"). If
/// the instruction is reachable the verifier says
/// `invalid func unknown#195896080`.
pub const POISON_IMM: i32 = 0xbad2310;

const BPF_LD: u8 = 0x00;
const BPF_LDX: u8 = 0x01;
const BPF_ST: u8 = 0x02;
const BPF_STX: u8 = 0x03;
const BPF_ALU: u8 = 0x04;
const BPF_JMP: u8 = 0x05;
const BPF_ALU64: u8 = 0x07;
const BPF_K: u8 = 0x00;
const BPF_CALL: u8 = 0x80;
const LD_IMM64: u8 = 0x18; // BPF_LD | BPF_IMM | BPF_DW

fn class(code: u8) -> u8 {
    code & 0x07
}

fn size_bytes(code: u8) -> Option<u32> {
    match code & 0x18 {
        0x18 => Some(8),
        0x00 => Some(4),
        0x08 => Some(2),
        0x10 => Some(1),
        _ => None,
    }
}

fn size_code(bytes: u32) -> Option<u8> {
    match bytes {
        8 => Some(0x18),
        4 => Some(0x00),
        2 => Some(0x08),
        1 => Some(0x10),
        _ => None,
    }
}

/// Why an instruction could not be patched (libbpf: "failed to patch insn",
/// fatal for the load).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error("insn #{insn} (ALU/ALU64) does not use an immediate operand")]
    AluNotImm { insn: usize },
    #[error("unexpected insn #{insn} ({what}) value: got {got}, exp {exp} -> {new}")]
    Unexpected {
        insn: usize,
        what: &'static str,
        got: u64,
        exp: u64,
        new: u64,
    },
    #[error("insn #{insn} (LDX/ST/STX) value too big: {new}")]
    TooBig { insn: usize, new: u64 },
    #[error("insn #{insn} (LDX/ST/STX) unexpected mem size: got {got}, exp {exp}")]
    MemSize { insn: usize, got: i64, exp: u32 },
    #[error("insn #{insn} (LDX/ST/STX) invalid new mem size: {new}")]
    NewMemSize { insn: usize, new: u32 },
    #[error("insn #{insn} (LDIMM64) has unexpected form")]
    LdImm64Form { insn: usize },
    #[error("trying to relocate unrecognized insn #{insn}, code:{code:#x}")]
    Unrecognized { insn: usize, code: u8 },
    #[error("insn #{insn} is outside the program ({len} insns)")]
    OutOfRange { insn: usize, len: usize },
}

/// `bpf_core_poison_insn`.
pub(crate) fn poison_one<I: CoreInsn>(insn: &mut I) {
    insn.set_code(BPF_JMP | BPF_CALL);
    insn.set_dst_reg(0);
    insn.set_src_reg(0);
    insn.set_off(0);
    insn.set_imm(POISON_IMM);
}

/// What patching did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Patched {
    /// Value written; `mem_size` is `Some((old, new))` if the load/store
    /// width changed.
    Value { mem_size: Option<(u32, u32)> },
    /// The instruction was poisoned although the relocation resolved,
    /// because the load/store width cannot be adjusted safely.
    PoisonedMemSize,
    /// The relocation itself asked for poisoning.
    Poisoned,
}

/// `bpf_core_patch_insn`. `insns` is the whole program, `idx` the target.
pub(crate) fn patch_insn<I: CoreInsn>(
    insns: &mut [I],
    idx: usize,
    res: &ReloRes,
) -> Result<Patched, PatchError> {
    let len = insns.len();
    let Some(insn) = insns.get(idx) else {
        return Err(PatchError::OutOfRange { insn: idx, len });
    };
    let code = insn.code();

    let poison = |insns: &mut [I]| {
        // poison the second half of ld_imm64 too, so the verifier does not
        // complain about "unknown opcode 00" instead
        if insns[idx].code() == LD_IMM64 {
            if let Some(next) = insns.get_mut(idx + 1) {
                poison_one(next);
            }
        }
        poison_one(&mut insns[idx]);
    };

    if res.poison {
        poison(insns);
        return Ok(Patched::Poisoned);
    }
    let (orig_val, new_val) = (res.orig_val, res.new_val);
    match class(code) {
        BPF_ALU | BPF_ALU64 => {
            if code & 0x08 != BPF_K {
                return Err(PatchError::AluNotImm { insn: idx });
            }
            let insn = &mut insns[idx];
            // libbpf compares the s32 imm with the u64 value after C's
            // usual conversions: the imm is sign-extended
            if res.validate && insn.imm() as i64 as u64 != orig_val {
                return Err(PatchError::Unexpected {
                    insn: idx,
                    what: "ALU/ALU64",
                    got: insn.imm() as u32 as u64,
                    exp: orig_val,
                    new: new_val,
                });
            }
            insn.set_imm(new_val as i32);
            Ok(Patched::Value { mem_size: None })
        }
        BPF_LDX | BPF_ST | BPF_STX => {
            let off = insns[idx].off();
            if res.validate && off as i64 as u64 != orig_val {
                return Err(PatchError::Unexpected {
                    insn: idx,
                    what: "LDX/ST/STX",
                    got: off as u16 as u64,
                    exp: orig_val,
                    new: new_val,
                });
            }
            if new_val > i16::MAX as u64 {
                return Err(PatchError::TooBig {
                    insn: idx,
                    new: new_val,
                });
            }
            if res.fail_memsz_adjust {
                poison(insns);
                return Ok(Patched::PoisonedMemSize);
            }
            let insn = &mut insns[idx];
            insn.set_off(new_val as i16);
            let mut mem_size = None;
            if res.new_sz != res.orig_sz {
                let got = size_bytes(insn.code());
                if got != Some(res.orig_sz) {
                    return Err(PatchError::MemSize {
                        insn: idx,
                        got: got.map_or(-1, |g| g as i64),
                        exp: res.orig_sz,
                    });
                }
                let Some(sz) = size_code(res.new_sz) else {
                    return Err(PatchError::NewMemSize {
                        insn: idx,
                        new: res.new_sz,
                    });
                };
                let c = insn.code();
                insn.set_code((c & 0xe0) | sz | class(c));
                mem_size = Some((res.orig_sz, res.new_sz));
            }
            Ok(Patched::Value { mem_size })
        }
        BPF_LD => {
            let ok = code == LD_IMM64
                && insns[idx].src_reg() == 0
                && insns[idx].off() == 0
                && insns.get(idx + 1).is_some_and(|n| {
                    n.code() == 0 && n.dst_reg() == 0 && n.src_reg() == 0 && n.off() == 0
                });
            if !ok {
                return Err(PatchError::LdImm64Form { insn: idx });
            }
            let imm =
                (insns[idx].imm() as u32 as u64) | ((insns[idx + 1].imm() as u32 as u64) << 32);
            if res.validate && imm != orig_val {
                return Err(PatchError::Unexpected {
                    insn: idx,
                    what: "LDIMM64",
                    got: imm,
                    exp: orig_val,
                    new: new_val,
                });
            }
            insns[idx].set_imm(new_val as u32 as i32);
            insns[idx + 1].set_imm((new_val >> 32) as u32 as i32);
            Ok(Patched::Value { mem_size: None })
        }
        _ => Err(PatchError::Unrecognized { insn: idx, code }),
    }
}

/// Decodes little-endian instruction bytes (a program's ELF section slice)
/// into instructions; a trailing partial instruction is ignored.
pub fn insns_from_bytes(bytes: &[u8]) -> Vec<bpf_insn> {
    bytes
        .chunks_exact(8)
        .map(|c| {
            let mut i = bpf_insn {
                code: c[0],
                _bitfield_align_1: [],
                _bitfield_1: Default::default(),
                off: i16::from_le_bytes([c[2], c[3]]),
                imm: i32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            };
            i.set_dst_reg(c[1] & 0x0f);
            i.set_src_reg(c[1] >> 4);
            i
        })
        .collect()
}

/// The inverse of [`insns_from_bytes`].
pub fn insns_to_bytes(insns: &[bpf_insn]) -> Vec<u8> {
    let mut out = Vec::with_capacity(insns.len() * 8);
    for i in insns {
        out.push(i.code);
        out.push(i.dst_reg() | (i.src_reg() << 4));
        out.extend_from_slice(&i.off.to_le_bytes());
        out.extend_from_slice(&i.imm.to_le_bytes());
    }
    out
}
