//! Helpers shared by the kernel-facing test binaries.
#![allow(dead_code)]

use bpfload_syscall::uapi::bpf_insn;

/// Whether the test may run: true as root. Not root: prints a skip line and returns false, or panics when
/// CI=true (CI must run privileged tests).
pub fn require_root(what: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{what}: needs root, and CI=true requires privileged tests to run");
        }
        eprintln!("SKIP {what}: needs root");
    }
    root
}

/// Builds one instruction.
pub fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> bpf_insn {
    let mut i = bpf_insn {
        code,
        _bitfield_align_1: [],
        _bitfield_1: Default::default(),
        off,
        imm,
    };
    i.set_dst_reg(dst);
    i.set_src_reg(src);
    i
}

// Opcodes (uapi bpf_common.h / bpf.h).
pub const MOV64_IMM: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
pub const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT
pub const LD_IMM64: u8 = 0x18; // BPF_LD | BPF_DW | BPF_IMM
pub const STX_W: u8 = 0x63; // BPF_STX | BPF_MEM | BPF_W
pub const MOV64_REG: u8 = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
pub const ADD64_IMM: u8 = 0x07; // BPF_ALU64 | BPF_ADD | BPF_K
pub const CALL: u8 = 0x85; // BPF_JMP | BPF_CALL
pub const JEQ_IMM: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
pub const ST_W: u8 = 0x62; // BPF_ST | BPF_MEM | BPF_W
pub const PSEUDO_MAP_FD: u8 = 1;

pub fn ret_imm(v: i32) -> Vec<bpf_insn> {
    vec![insn(MOV64_IMM, 0, 0, 0, v), insn(EXIT, 0, 0, 0, 0)]
}

/// Assembles a BTF blob from raw type records and a string section.
pub fn btf_blob(types: &[u32], strings: &[u8]) -> Vec<u8> {
    let types: Vec<u8> = types.iter().flat_map(|w| w.to_ne_bytes()).collect();
    let mut blob = Vec::new();
    blob.extend_from_slice(&0xeb9fu16.to_ne_bytes());
    blob.push(1); // version
    blob.push(0); // flags
    blob.extend_from_slice(&24u32.to_ne_bytes()); // hdr_len
    blob.extend_from_slice(&0u32.to_ne_bytes()); // type_off
    blob.extend_from_slice(&(types.len() as u32).to_ne_bytes());
    blob.extend_from_slice(&(types.len() as u32).to_ne_bytes()); // str_off
    blob.extend_from_slice(&(strings.len() as u32).to_ne_bytes());
    blob.extend_from_slice(&types);
    blob.extend_from_slice(strings);
    blob
}

const BTF_KIND_INT: u32 = 1;
const BTF_KIND_FUNC: u32 = 12;
const BTF_KIND_FUNC_PROTO: u32 = 13;

/// A BTF blob with one type: `int` (4 bytes, signed, 32 bits).
pub fn int_btf() -> Vec<u8> {
    // [1] INT "int" size 4, encoding SIGNED, 32 bits
    btf_blob(&[1, BTF_KIND_INT << 24, 4, (1 << 24) | 32], b"\0int\0")
}

/// `int`, `int (void)` and a static FUNC "prog" of that prototype (type 3): enough BTF for func_info.
pub fn func_btf() -> Vec<u8> {
    btf_blob(
        &[
            1,
            BTF_KIND_INT << 24,
            4,
            (1 << 24) | 32, // [1] int
            0,
            BTF_KIND_FUNC_PROTO << 24,
            1, // [2] int (void)
            5,
            BTF_KIND_FUNC << 24,
            2, // [3] static int prog(void)
        ],
        b"\0int\0prog\0",
    )
}

/// Fills the next 64 KiB of this thread's stack below the caller's frame with `byte`. Called right before a
/// wrapper, it makes bytes the wrapper leaves uninitialised (padding of a struct assigned as a whole) hold
/// `byte` instead of whatever zeros happened to be there.
#[inline(never)]
pub fn junk_stack(byte: u8) {
    let junk = [byte; 64 * 1024];
    // Keeps the array (and its writes) from being optimised away.
    std::hint::black_box(&junk);
}
