//! DATASEC fix-ups (`fixup_datasecs`, `mark_func_static`) on hostile BTF with hostile ELF answers, then
//! re-encoding and re-parsing the result.
//!
//! Input framing: `len: u32 LE` + .BTF, the rest answers the ELF questions: a name's section size and symbol
//! value are read from the rest at an offset derived from the name.
#![no_main]
use bpfload_btf::fixup::{fixup_datasecs, mark_func_static, VarSymbol};
use bpfload_btf::{Btf, BtfModel};
use libfuzzer_sys::fuzz_target;

fn answer(rest: &[u8], name: &str, salt: u8) -> Option<u64> {
    if rest.is_empty() {
        return None;
    }
    let h = name.bytes().fold(salt as usize, |h, b| {
        h.wrapping_mul(31).wrapping_add(b as usize)
    });
    let at = h % rest.len();
    let b = rest[at];
    if b == 0xff {
        return None; // "no such section/symbol"
    }
    let mut v = [0u8; 8];
    for (i, x) in rest[at..].iter().take(8).enumerate() {
        v[i] = *x;
    }
    Some(u64::from_le_bytes(v))
}

fuzz_target!(|data: &[u8]| {
    let Some(len) = data.get(..4) else { return };
    let len = u32::from_le_bytes(len.try_into().unwrap()) as usize;
    let Some(btf) = data.get(4..4usize.saturating_add(len)) else {
        return;
    };
    let rest = &data[4 + len..];
    let Ok(btf) = Btf::parse(btf) else { return };
    let Ok(mut model) = BtfModel::from_btf(&btf) else {
        return;
    };
    let r = fixup_datasecs(
        &mut model,
        |sec| answer(rest, sec, 1),
        |var| {
            answer(rest, var, 2).map(|v| VarSymbol {
                value: v,
                hidden: v & 1 == 1,
            })
        },
    );
    for id in 1..model.len().min(64) {
        let name = model.name(id).to_owned();
        if !name.is_empty() {
            mark_func_static(&mut model, &name);
        }
    }
    if r.is_ok() {
        if let Ok(bytes) = model.to_bytes() {
            Btf::parse(&bytes).expect("fixed-up BTF re-parses");
        }
    }
});
