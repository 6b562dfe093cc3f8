//! BTF bytes → `Btf::parse`, then every type decoded, named, sized and looked up by name; also the owned model
//! (decode + re-encode + re-parse) and sanitization with every feature missing. The same bytes also go through
//! `BtfData::parse_indexed` (the kernel's path: keys scanned by the first lookups, then the index built from
//! them; FUNCs walked, alone and in a batch), whose answers must equal the plain parse's.
#![no_main]
use bpfload_btf::{sanitize, Btf, BtfData, BtfModel, Kind};
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
    // A load's FUNC lookups in one batch (`find_funcs`: one walk on a fresh keyed parse) answer
    // as the plain parse's index.
    if let Ok(fresh) = BtfData::parse_indexed(data.to_vec()) {
        let funcs: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
        let want: Vec<Option<u32>> = funcs
            .iter()
            .map(|n| btf.find_by_name_kind(n, Kind::Func))
            .collect();
        assert_eq!(fresh.btf().find_funcs(&funcs), want, "find_funcs");
    }
    let keyed = BtfData::parse_indexed(data.to_vec()).ok();
    let keyed_btf = keyed.as_ref().map(|d| d.btf());
    for (round, built) in [(0, false), (1, true)] {
        if let (Some(k), true) = (&keyed_btf, built) {
            k.build_type_index();
        }
        for (name, kind) in &names {
            let Ok(kind) = *kind else { continue };
            let found = btf.find_by_name_kind(name, kind);
            let ess = bpfload_btf::essential_name(name.as_bytes());
            let cands: Vec<u32> = btf.candidates(ess, kind).collect();
            if let Some(k) = &keyed_btf {
                // Scanning the keys (round 0) and the index built from them (round 1) answer
                // exactly as the plain parse's own index.
                assert_eq!(
                    k.find_by_name_kind(name, kind),
                    found,
                    "round {round}: {name}"
                );
                assert_eq!(
                    k.candidates(ess, kind).collect::<Vec<_>>(),
                    cands,
                    "round {round}"
                );
            }
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
