//! BTF bytes → `Btf::parse`, then every type decoded, named, sized and looked up by name; also the owned model
//! (decode + re-encode + re-parse) and sanitization with every feature missing.
#![no_main]
use bpfload_btf::{sanitize, Btf, BtfModel};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(btf) = Btf::parse(data) else { return };
    let mut names = Vec::new();
    for id in btf.ids() {
        let _ = btf.kind(id);
        let _ = btf.vlen(id);
        if let Ok(name) = btf.name(id) {
            if names.len() < 64 {
                names.push((name, btf.kind(id)));
            }
        }
        if let Ok(t) = btf.type_by_id(id) {
            std::hint::black_box(format!("{t:?}"));
        }
        let _ = btf.resolve_size(id);
        let _ = btf.skip_mods_and_typedefs(id);
    }
    for (name, kind) in names {
        if let Ok(kind) = kind {
            let _ = btf.find_by_name_kind(name, kind);
            let _ = btf
                .candidates(bpfload_btf::essential_name(name.as_bytes()), kind)
                .count();
        }
    }
    if let Ok(model) = BtfModel::from_btf(&btf) {
        if let Ok(bytes) = model.to_bytes() {
            // What we encode must parse again.
            Btf::parse(&bytes).expect("re-encoded BTF parses");
        }
        if let Ok(s) = sanitize(&model, &mut |_| false) {
            let _ = s.to_bytes();
        }
    }
});
