//! BPF instructions as the kernel receives them, and the comparison of two streams.
//!
//! Two loaders produce the same program when their instruction bytes are equal, except for the
//! fd numbers in `ld_imm64` map references (`BPF_PSEUDO_MAP_FD`, `BPF_PSEUDO_MAP_VALUE`): fd
//! numbers depend on the process, so those are compared by the *identity* of the map they name.

use std::collections::BTreeMap;
use std::fmt;

/// Size of one `struct bpf_insn`.
pub const INSN_SIZE: usize = 8;

/// `BPF_LD | BPF_IMM | BPF_DW`: the first half of a 16-byte `ld_imm64`.
pub const LD_IMM64: u8 = 0x18;
/// `src_reg` of an `ld_imm64` whose imm is a map fd.
pub const PSEUDO_MAP_FD: u8 = 1;
/// `src_reg` of an `ld_imm64` whose imm is a map fd and whose second imm is an offset in its value.
pub const PSEUDO_MAP_VALUE: u8 = 2;

/// One decoded instruction (little-endian, the only byte order the kernel here loads).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    pub fn from_bytes(b: [u8; INSN_SIZE]) -> Self {
        Insn {
            code: b[0],
            dst: b[1] & 0x0f,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// The map-fd reference this instruction carries, if it is the first half of such an `ld_imm64`.
    pub fn map_fd(&self) -> Option<i32> {
        (self.code == LD_IMM64 && matches!(self.src, PSEUDO_MAP_FD | PSEUDO_MAP_VALUE))
            .then_some(self.imm)
    }
}

impl fmt::Debug for Insn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "code=0x{:02x} dst=r{} src={} off={} imm={}",
            self.code, self.dst, self.src, self.off, self.imm
        )
    }
}

/// Splits raw bytes into instructions. Trailing bytes that do not form a whole instruction are an error.
pub fn decode(raw: &[u8]) -> Result<Vec<Insn>, String> {
    if raw.len() % INSN_SIZE != 0 {
        return Err(format!(
            "{} bytes is not a whole number of 8-byte instructions",
            raw.len()
        ));
    }
    Ok(raw
        .chunks_exact(INSN_SIZE)
        .map(|c| Insn::from_bytes(c.try_into().expect("chunks_exact yields 8 bytes")))
        .collect())
}

/// Map fds found in a stream, by instruction index (`insn index -> fd`).
pub fn map_fd_refs(insns: &[Insn]) -> BTreeMap<usize, i32> {
    insns
        .iter()
        .enumerate()
        .filter_map(|(i, insn)| insn.map_fd().map(|fd| (i, fd)))
        .collect()
}

/// An instruction with its fd replaced by the map's identity, ready to compare across processes.
#[derive(Clone, PartialEq, Eq)]
pub enum Norm {
    Plain(Insn),
    /// `ld_imm64` first half referencing a map; `insn.imm` is zeroed, `map` names the map.
    MapRef {
        insn: Insn,
        map: String,
    },
}

impl fmt::Debug for Norm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Norm::Plain(i) => write!(f, "{i:?}"),
            Norm::MapRef { insn, map } => write!(f, "{insn:?} (imm = fd of map {map:?})"),
        }
    }
}

/// Replaces each map fd by the name `name_of(fd)` gives (or `fd N (unknown map)`).
pub fn normalize(insns: &[Insn], name_of: &dyn Fn(i32) -> Option<String>) -> Vec<Norm> {
    insns
        .iter()
        .map(|insn| match insn.map_fd() {
            Some(fd) => Norm::MapRef {
                insn: Insn { imm: 0, ..*insn },
                map: name_of(fd).unwrap_or_else(|| format!("fd {fd} (unknown map)")),
            },
            None => Norm::Plain(*insn),
        })
        .collect()
}

/// One difference between two normalized streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    Length {
        libbpf: usize,
        bpfload: usize,
    },
    Insn {
        index: usize,
        libbpf: String,
        bpfload: String,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Length { libbpf, bpfload } => {
                write!(f, "instruction count: libbpf {libbpf}, bpfload {bpfload}")
            }
            Mismatch::Insn {
                index,
                libbpf,
                bpfload,
            } => {
                write!(f, "insn {index}: libbpf [{libbpf}] bpfload [{bpfload}]")
            }
        }
    }
}

/// All differences (at most `limit` instruction differences, plus a length difference).
pub fn compare(libbpf: &[Norm], bpfload: &[Norm], limit: usize) -> Vec<Mismatch> {
    let mut out = Vec::new();
    if libbpf.len() != bpfload.len() {
        out.push(Mismatch::Length {
            libbpf: libbpf.len(),
            bpfload: bpfload.len(),
        });
    }
    for (index, (a, b)) in libbpf.iter().zip(bpfload).enumerate() {
        if a != b {
            if out.len() >= limit {
                break;
            }
            out.push(Mismatch::Insn {
                index,
                libbpf: format!("{a:?}"),
                bpfload: format!("{b:?}"),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(code: u8, regs: u8, off: i16, imm: i32) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = code;
        b[1] = regs;
        b[2..4].copy_from_slice(&off.to_le_bytes());
        b[4..8].copy_from_slice(&imm.to_le_bytes());
        b
    }

    #[test]
    fn map_fd_is_replaced_by_identity_and_offset_kept() {
        // r1 = map_value(fd 7) + 16 : ld_imm64 src=2, second half imm = offset 16.
        let mut bytes = Vec::new();
        bytes.extend(raw(LD_IMM64, 0x21, 0, 7));
        bytes.extend(raw(0, 0, 0, 16));
        bytes.extend(raw(0x95, 0, 0, 0)); // exit
        let insns = decode(&bytes).unwrap();
        assert_eq!(map_fd_refs(&insns), BTreeMap::from([(0, 7)]));
        let a = normalize(&insns, &|fd| (fd == 7).then(|| "m".to_string()));

        let mut other = Vec::new();
        other.extend(raw(LD_IMM64, 0x21, 0, 42));
        other.extend(raw(0, 0, 0, 16));
        other.extend(raw(0x95, 0, 0, 0));
        let insns_b = decode(&other).unwrap();
        let b = normalize(&insns_b, &|fd| (fd == 42).then(|| "m".to_string()));
        assert!(compare(&a, &b, 10).is_empty());

        // A different offset in the second half is a difference.
        other[12..16].copy_from_slice(&24i32.to_le_bytes());
        let b = normalize(&decode(&other).unwrap(), &|_| Some("m".into()));
        assert_eq!(compare(&a, &b, 10).len(), 1);
        // A different map is a difference.
        let b = normalize(&insns_b, &|_| Some("n".into()));
        assert!(matches!(
            compare(&a, &b, 10)[0],
            Mismatch::Insn { index: 0, .. }
        ));
    }

    #[test]
    fn lengths_and_partial_bytes() {
        assert!(decode(&[0u8; 12]).is_err());
        let a = normalize(&decode(&[0u8; 16]).unwrap(), &|_| None);
        let b = normalize(&decode(&[0u8; 8]).unwrap(), &|_| None);
        assert_eq!(
            compare(&a, &b, 10),
            vec![Mismatch::Length {
                libbpf: 2,
                bpfload: 1
            }]
        );
    }
}
