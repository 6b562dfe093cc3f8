//! kconfig text (plain or gzip) → `decode` + `apply_text` into a `.kconfig` image with one extern of every
//! kind/size the loader can produce.
#![no_main]
use bpfload::externs::kconfig::{apply_text, decode, KcfgSlot};
use bpfload::externs::KcfgType;
use libfuzzer_sys::fuzz_target;

const SLOTS: &[(&str, KcfgType, usize, bool)] = &[
    ("CONFIG_BOOL", KcfgType::Bool, 1, false),
    ("CONFIG_CHAR", KcfgType::Char, 1, false),
    ("CONFIG_TRI", KcfgType::Tristate, 4, false),
    ("CONFIG_U8", KcfgType::Int, 1, false),
    ("CONFIG_S16", KcfgType::Int, 2, true),
    ("CONFIG_U32", KcfgType::Int, 4, false),
    ("CONFIG_S64", KcfgType::Int, 8, true),
    ("CONFIG_U64", KcfgType::Int, 8, false),
    ("CONFIG_STR1", KcfgType::CharArr, 1, false),
    ("CONFIG_STR", KcfgType::CharArr, 16, false),
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = decode("fuzz", data) else {
        return;
    };
    let mut slots = Vec::new();
    let mut off = 0;
    for &(name, ty, size, signed) in SLOTS {
        slots.push((
            name,
            KcfgSlot {
                off,
                size,
                ty,
                signed,
            },
        ));
        off += size;
    }
    let mut image = vec![0u8; off];
    let set: Vec<std::cell::Cell<bool>> = vec![std::cell::Cell::new(false); slots.len()];
    let _ = apply_text(
        &text,
        &mut image,
        |name| {
            let i = slots.iter().position(|(n, _)| *n == name)?;
            (!set[i].get()).then_some(slots[i].1)
        },
        |name| {
            if let Some(i) = slots.iter().position(|(n, _)| *n == name) {
                set[i].set(true);
            }
        },
    );
});
