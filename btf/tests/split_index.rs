//! Split BTF (module BTF on a base) and the name index, checked against linear scans.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use bpfload_btf::raw::{info_enc, INT_SIGNED};
use bpfload_btf::{essential_name, Btf, BtfData, BtfModel, Kind, Type};

use common::raw_blob as split_blob;

fn base_model() -> BtfModel {
    let mut m = BtfModel::new();
    let int = m.add_int("int", 4, INT_SIGNED); // 1
    m.add_struct("foo", 4, &[("a", int, 0)]); // 2
    m.add_struct("foo___v2", 8, &[("a", int, 0), ("b", int, 32)]); // 3
    m.add_enum("foo", false, &[("X", 1)]); // 4
    m.add_struct("foo___a___b", 4, &[("a", int, 0)]); // 5: essential "foo___a"
    m
}

#[test]
fn index_lookups_follow_libbpf_naming_rules() {
    let bytes = base_model().to_bytes().unwrap();
    let btf = Btf::parse(&bytes).unwrap();
    assert_eq!(btf.find_by_name_kind("foo", Kind::Struct), Some(2));
    assert_eq!(btf.find_by_name_kind("foo___v2", Kind::Struct), Some(3));
    assert_eq!(btf.find_by_name_kind("foo", Kind::Enum), Some(4));
    assert_eq!(btf.find_by_name_kind("foo", Kind::Union), None);
    assert_eq!(btf.find_by_name_kind("void", Kind::Struct), Some(0));
    let c: Vec<u32> = btf.candidates(b"foo", Kind::Struct).collect();
    assert_eq!(c, vec![2, 3]);
    let c: Vec<u32> = btf.candidates(b"foo___a", Kind::Struct).collect();
    assert_eq!(c, vec![5]);
    assert_eq!(btf.candidates(b"bar", Kind::Struct).count(), 0);
}

#[test]
fn split_btf_continues_ids_and_strings_of_its_base() {
    let base_bytes = base_model().to_bytes().unwrap();
    let base = Arc::new(BtfData::parse(base_bytes).unwrap());
    let bview = base.btf();
    let s0 = bview.strings_end();
    assert_eq!(s0 as usize, base_model().strings().len());
    // Module strings: "modfoo\0foo\0m\0" at s0.
    let strings = b"modfoo\0foo\0m\0";
    let (modfoo, foo, m) = (s0, s0 + 7, s0 + 11);
    let n = bview.len(); // first module id
    let types = [
        // [n] struct modfoo { int m; struct foo (base 2) f; } (uses base ids)
        modfoo,
        info_enc(Kind::Struct, false, 2),
        8,
        m,
        1,
        0,
        0,
        2,
        32,
        // [n+1] struct foo (the module's own) { int m; }
        foo,
        info_enc(Kind::Struct, false, 1),
        4,
        m,
        1,
        0,
        // [n+2] ptr -> [n]
        0,
        info_enc(Kind::Ptr, false, 0),
        n,
    ];
    let data = BtfData::parse_split(split_blob(&types, strings), Arc::clone(&base)).unwrap();
    let btf = data.btf();
    assert_eq!(btf.start_id(), n);
    assert_eq!(btf.len(), n + 3);
    assert_eq!(btf.own_ids(), n..n + 3);
    assert_eq!(btf.name(n).unwrap(), "modfoo");
    assert_eq!(
        btf.name(1).unwrap(),
        "int",
        "base type through the split view"
    );
    assert_eq!(btf.str_at(0).unwrap(), "");
    let Type::Struct(s) = btf.type_by_id(n).unwrap() else {
        panic!()
    };
    let names: Vec<_> = s
        .members()
        .map(|mm| btf.str_at(mm.name_off).unwrap())
        .collect();
    assert_eq!(names, ["m", ""]);
    assert_eq!(btf.resolve_size(n + 2).unwrap(), 8);
    assert_eq!(btf.skip_mods_and_typedefs(n + 2).unwrap(), n + 2);
    // Lookups: base first, then the module.
    assert_eq!(btf.find_by_name_kind("foo", Kind::Struct), Some(2));
    assert_eq!(btf.find_by_name_kind("modfoo", Kind::Struct), Some(n));
    assert_eq!(
        btf.candidates(b"foo", Kind::Struct).collect::<Vec<_>>(),
        vec![2, 3, n + 1]
    );
    assert_eq!(
        btf.own_candidates(b"foo", Kind::Struct).collect::<Vec<_>>(),
        vec![n + 1]
    );
    // Offsets into the base strings from a split blob are fine; past the end are not.
    assert!(btf.str_at(s0 + strings.len() as u32).is_err());
    // A split blob without its base is refused (its strings don't start with "").
    assert!(Btf::parse(&split_blob(&types, strings)).is_err());
}

#[test]
fn vmlinux_index_matches_linear_scan() {
    let Ok(bytes) = std::fs::read(bpfload_btf::kernel::VMLINUX_PATH) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no vmlinux in CI"
        );
        eprintln!("SKIP index vs scan: no vmlinux BTF");
        return;
    };
    let lazy = Btf::parse(&bytes).unwrap();
    // Built in the parse pass (what the kernel's BTF uses) and built lazily must agree.
    let fused = BtfData::parse_indexed(bytes.clone()).unwrap();
    let fused = fused.btf();
    for btf in [&lazy, &fused] {
        check_index_against_scan(btf);
    }
}

fn check_index_against_scan(btf: &Btf<'_>) {
    let mut first: HashMap<(&str, Kind), u32> = HashMap::new();
    let mut by_essential: HashMap<(&[u8], Kind), Vec<u32>> = HashMap::new();
    for id in btf.ids() {
        let name = btf.name(id).unwrap();
        if name.is_empty() {
            continue;
        }
        let kind = btf.kind(id).unwrap();
        first.entry((name, kind)).or_insert(id);
        by_essential
            .entry((essential_name(name.as_bytes()), kind))
            .or_default()
            .push(id);
    }
    assert!(first.len() > 10_000);
    for (&(name, kind), &id) in &first {
        assert_eq!(btf.find_by_name_kind(name, kind), Some(id), "{name} {kind}");
    }
    for ((ess, kind), ids) in &by_essential {
        let got: Vec<u32> = btf.candidates(ess, *kind).collect();
        assert_eq!(&got, ids, "{} {kind}", String::from_utf8_lossy(ess));
    }
    assert_eq!(
        btf.find_by_name_kind("task_struct___nope", Kind::Struct),
        None
    );
}
