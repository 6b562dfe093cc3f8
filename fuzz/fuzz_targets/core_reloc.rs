//! CO-RE relocation with hostile local BTF + BTF.ext and a hostile target BTF (or the running kernel's BTF as the
//! target, so a hostile local meets a real, large target).
//!
//! Input framing: `mode: u8`, `len: u32 LE` + local .BTF, `len: u32 LE` + .BTF.ext, the rest is the target BTF.
//! Mode bit 0 set: the target is /sys/kernel/btf/vmlinux instead (input target ignored). Bits 1..: which
//! instruction template the program is made of (loads, mov imm, ld_imm64), so patches have something to patch.
#![no_main]
use std::sync::{Arc, OnceLock};

use bpfload_btf::core::{insns_from_bytes, relocate_program, CoreRelocator, Targets};
use bpfload_btf::{Btf, BtfData, BtfExt};
use libfuzzer_sys::fuzz_target;

fn take<'a>(data: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = u32::from_le_bytes(data.get(..4)?.try_into().ok()?) as usize;
    let rest = &data[4..];
    let body = rest.get(..len)?;
    *data = &rest[len..];
    Some(body)
}

fn vmlinux() -> Option<&'static BtfData> {
    static V: OnceLock<Option<Arc<BtfData>>> = OnceLock::new();
    V.get_or_init(|| bpfload_btf::kernel::vmlinux().ok())
        .as_deref()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let (Some(local), Some(ext)) = (take(&mut rest), take(&mut rest)) else {
        return;
    };
    let Ok(local) = Btf::parse(local) else { return };
    let Ok(ext) = BtfExt::parse(ext) else { return };
    let kernel;
    let target = if mode & 1 == 1 {
        match vmlinux() {
            Some(v) => {
                kernel = v.btf();
                kernel.clone()
            }
            None => return,
        }
    } else {
        match Btf::parse(rest) {
            Ok(t) => t,
            Err(_) => return,
        }
    };
    let targets = Targets::new("target", target);
    // A program of 512 instructions from one repeating template; records point anywhere.
    let shape = (mode >> 1) as usize;
    let templates: [[u8; 8]; 4] = [
        [0x61, 0x01, 0, 0, 0, 0, 0, 0], // r1 = *(u32 *)(r0 + 0)
        [0xb7, 0x01, 0, 0, 0, 0, 0, 0], // r1 = 0
        [0x18, 0x01, 0, 0, 0, 0, 0, 0], // r1 = imm64 (first half)
        [0x63, 0x10, 0, 0, 0, 0, 0, 0], // *(u32 *)(r0 + 0) = r1
    ];
    let mut bytes = Vec::with_capacity(512 * 8);
    for i in 0..512 {
        bytes.extend_from_slice(&templates[(i + shape) % 4]);
    }
    let mut insns = insns_from_bytes(&bytes);
    let mut relocator = CoreRelocator::new(&local, &targets);
    for s in ext.core_relos.sections().take(16) {
        let relos: Vec<_> = s.records().take(256).collect();
        relocator.prefetch(relos.iter());
        let _ = relocator.relocate(relos.iter().copied(), &mut insns);
        let _ = relocate_program(&local, relos, &mut insns, &targets);
    }
});
