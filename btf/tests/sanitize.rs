//! Sanitization: one test per row of libbpf's `bpf_object__sanitize_btf` table
//! (libbpf-behaviour.md §2.5), checked kind by kind on the re-parsed encoding, plus the lazy
//! feature callback contract (asked only when used, at most once).

use std::collections::HashMap;

use bpfload_btf::raw::INT_SIGNED;
use bpfload_btf::{
    sanitize, Btf, BtfFeature, BtfModel, FuncLinkage, Kind, Type, TypeBody, VarLinkage,
};

/// Sanitizes with exactly `missing` unsupported and returns the result, checking that every
/// feature was asked at most once.
fn sanitize_without(model: &BtfModel, missing: &[BtfFeature]) -> (BtfModel, Vec<BtfFeature>) {
    let mut asked = Vec::new();
    let out = sanitize(model, &mut |f| {
        asked.push(f);
        !missing.contains(&f)
    })
    .unwrap();
    let mut counts = HashMap::new();
    for f in &asked {
        *counts.entry(*f).or_insert(0) += 1;
    }
    assert!(counts.values().all(|&c| c == 1), "asked twice: {asked:?}");
    (out, asked)
}

/// Encodes and re-parses, so checks run on what the kernel would receive.
fn reparse(model: &BtfModel) -> Vec<u8> {
    let bytes = model.to_bytes().unwrap();
    Btf::parse(&bytes).unwrap();
    bytes
}

fn int_of_size1_8bits(btf: &Btf<'_>, id: u32) {
    let Type::Int(i) = btf.type_by_id(id).unwrap() else {
        panic!("[{id}] is {:?}", btf.kind(id))
    };
    assert_eq!((i.size, i.encoding, i.offset, i.bits), (1, 0, 0, 8));
    assert!(!btf.kind_flag(id).unwrap());
}

#[test]
fn no_datasec_turns_vars_into_ints_and_datasecs_into_structs() {
    let mut m = BtfModel::new();
    let int = m.add_int("int", 4, INT_SIGNED);
    let a = m.add_var("a", int, VarLinkage::GlobalAllocated);
    let b = m.add_var("b", int, VarLinkage::Static);
    let sec = m.add_datasec(".data", 8, &[(a, 0, 4), (b, 4, 4)]);
    let q = m.add_datasec("?.struct_ops", 4, &[(a, 0, 4)]);
    let (out, asked) = sanitize_without(&m, &[BtfFeature::Datasec]);
    // With DATASEC missing, the '?' question is moot and must not be asked.
    assert_eq!(asked, vec![BtfFeature::Datasec]);
    let bytes = reparse(&out);
    let btf = Btf::parse(&bytes).unwrap();
    assert_eq!(btf.len(), m.len(), "no types added or removed");
    for v in [a, b] {
        int_of_size1_8bits(&btf, v);
    }
    assert_eq!(btf.name(a).unwrap(), "a");
    let Type::Struct(s) = btf.type_by_id(sec).unwrap() else {
        panic!("DATASEC not turned into STRUCT")
    };
    assert_eq!(btf.name(sec).unwrap(), "_data");
    assert_eq!(s.size, 8);
    let members: Vec<_> = s
        .members()
        .map(|mm| (btf.str_at(mm.name_off).unwrap(), mm.type_id, mm.bit_offset))
        .collect();
    assert_eq!(members, vec![("a", a, 0), ("b", b, 32)]);
    assert_eq!(btf.name(q).unwrap(), "__struct_ops");
    assert_eq!(btf.kind(q).unwrap(), Kind::Struct);
    assert_eq!(btf.kind(int).unwrap(), Kind::Int);
}

#[test]
fn no_decl_tag_turns_tags_into_ints() {
    let mut m = BtfModel::new();
    let int = m.add_int("int", 4, INT_SIGNED);
    let proto = m.add_func_proto(int, &[("ctx", int)]);
    let f = m.add_func("f", proto, FuncLinkage::Global);
    let tag = m.add_decl_tag("arg:ctx", f, 0);
    let (out, asked) = sanitize_without(&m, &[BtfFeature::DeclTag]);
    assert!(asked.contains(&BtfFeature::DeclTag));
    let bytes = reparse(&out);
    let btf = Btf::parse(&bytes).unwrap();
    int_of_size1_8bits(&btf, tag);
    assert_eq!(btf.name(tag).unwrap(), "arg:ctx");
    assert_eq!(btf.kind(f).unwrap(), Kind::Func);
}

#[test]
fn no_qmark_datasec_renames_leading_question_mark() {
    let mut m = BtfModel::new();
    let int = m.add_int("int", 4, 0);
    let v = m.add_var("ops", int, VarLinkage::GlobalAllocated);
    let q = m.add_datasec("?.struct_ops.link", 4, &[(v, 0, 4)]);
    let plain = m.add_datasec(".data", 4, &[(v, 0, 4)]);
    let (out, asked) = sanitize_without(&m, &[BtfFeature::QmarkDatasec]);
    assert_eq!(
        asked,
        vec![BtfFeature::Datasec, BtfFeature::QmarkDatasec],
        "VAR asks DATASEC once; only the '?' section asks QMARK"
    );
    let bytes = reparse(&out);
    let btf = Btf::parse(&bytes).unwrap();
    assert_eq!(btf.name(q).unwrap(), "_.struct_ops.link");
    assert_eq!(btf.kind(q).unwrap(), Kind::DataSec);
    assert_eq!(btf.name(plain).unwrap(), ".data");
    assert_eq!(btf.kind(v).unwrap(), Kind::Var);
}

#[test]
fn no_func_turns_protos_into_enums_and_funcs_into_typedefs() {
    let mut m = BtfModel::new();
    let int = m.add_int("int", 4, INT_SIGNED);
    let proto = m.add_func_proto(int, &[("x", int), ("y", int)]);
    let f = m.add_func("prog", proto, FuncLinkage::Global);
    let (out, asked) = sanitize_without(&m, &[BtfFeature::Func]);
    assert!(
        !asked.contains(&BtfFeature::GlobalFunc),
        "moot without FUNC"
    );
    let bytes = reparse(&out);
    let btf = Btf::parse(&bytes).unwrap();
    let Type::Enum(e) = btf.type_by_id(proto).unwrap() else {
        panic!("FUNC_PROTO not turned into ENUM")
    };
    assert_eq!(e.size, 4);
    assert!(!e.signed);
    let vals: Vec<_> = e
        .values()
        .map(|v| (btf.str_at(v.name_off).unwrap(), v.val))
        .collect();
    assert_eq!(vals, vec![("x", int as u64), ("y", int as u64)]);
    assert!(matches!(btf.type_by_id(f).unwrap(), Type::Typedef { target } if target == proto));
    assert_eq!(btf.name(f).unwrap(), "prog");
}

#[test]
fn no_global_func_makes_every_non_static_func_static() {
    let mut m = BtfModel::new();
    let proto = m.add_func_proto(0, &[]);
    let g = m.add_func("g", proto, FuncLinkage::Global);
    let e = m.add_func("e", proto, FuncLinkage::Extern);
    let s = m.add_func("s", proto, FuncLinkage::Static);
    let (out, asked) = sanitize_without(&m, &[BtfFeature::GlobalFunc]);
    assert_eq!(asked, vec![BtfFeature::Func, BtfFeature::GlobalFunc]);
    let bytes = reparse(&out);
    let btf = Btf::parse(&bytes).unwrap();
    for id in [g, e, s] {
        assert!(matches!(
            btf.type_by_id(id).unwrap(),
            Type::Func { linkage: FuncLinkage::Static, proto: p } if p == proto
        ));
    }
    // Only static FUNCs: the GLOBAL_FUNC answer cannot matter, so it is not asked.
    let mut only_static = BtfModel::new();
    let p = only_static.add_func_proto(0, &[]);
    only_static.add_func("s", p, FuncLinkage::Static);
    let (_, asked) = sanitize_without(&only_static, &[]);
    assert_eq!(asked, vec![BtfFeature::Func]);
}

#[test]
fn no_float_turns_floats_into_anonymous_empty_structs() {
    let mut m = BtfModel::new();
    let f = m.add_float("double", 8);
    let (out, asked) = sanitize_without(&m, &[BtfFeature::Float]);
    assert_eq!(asked, vec![BtfFeature::Float]);
    let bytes = reparse(&out);
    let btf = Btf::parse(&bytes).unwrap();
    let Type::Struct(s) = btf.type_by_id(f).unwrap() else {
        panic!("FLOAT not turned into STRUCT")
    };
    assert_eq!((s.size, s.len()), (8, 0));
    assert_eq!(btf.name(f).unwrap(), "");
}

#[test]
fn no_type_tag_turns_tags_into_anonymous_consts() {
    let mut m = BtfModel::new();
    let int = m.add_int("int", 4, 0);
    let tag = m.add_type_tag("user", int);
    let ptr = m.add_ptr(tag);
    let (out, _) = sanitize_without(&m, &[BtfFeature::TypeTag]);
    let bytes = reparse(&out);
    let btf = Btf::parse(&bytes).unwrap();
    assert!(matches!(btf.type_by_id(tag).unwrap(), Type::Const { target } if target == int));
    assert_eq!(btf.name(tag).unwrap(), "");
    assert!(matches!(btf.type_by_id(ptr).unwrap(), Type::Ptr { target } if target == tag));
}

#[test]
fn no_enum64_clears_signed_enums_and_turns_enum64_into_unions() {
    let mut m = BtfModel::new();
    let signed = m.add_enum("s", true, &[("NEG", -1), ("POS", 1)]);
    let unsigned = m.add_enum("u", false, &[("A", 1)]);
    let e1 = m.add_enum64("big", false, &[("X", 1 << 40), ("Y", 2)]);
    let e2 = m.add_enum64("big2", true, &[("Z", 3)]);
    let n_before = m.len();
    let (out, asked) = sanitize_without(&m, &[BtfFeature::Enum64]);
    assert_eq!(asked, vec![BtfFeature::Enum64]);
    let bytes = reparse(&out);
    let btf = Btf::parse(&bytes).unwrap();
    assert_eq!(btf.len(), n_before + 1, "exactly one placeholder added");
    let ph = n_before;
    assert_eq!(btf.name(ph).unwrap(), "enum64_placeholder");
    int_of_size1_8bits(&btf, ph);
    assert!(!btf.kind_flag(signed).unwrap());
    assert_eq!(btf.kind(signed).unwrap(), Kind::Enum);
    // Values are untouched: only the flag changes.
    let Type::Enum(e) = btf.type_by_id(signed).unwrap() else {
        panic!()
    };
    assert_eq!(e.value(0).unwrap().val, 0xffff_ffff);
    assert_eq!(btf.kind(unsigned).unwrap(), Kind::Enum);
    for (id, names) in [(e1, vec!["X", "Y"]), (e2, vec!["Z"])] {
        let Type::Union(u) = btf.type_by_id(id).unwrap() else {
            panic!("ENUM64 not turned into UNION")
        };
        assert_eq!(u.size, 8);
        assert!(!btf.kind_flag(id).unwrap());
        let got: Vec<_> = u
            .members()
            .map(|mm| (btf.str_at(mm.name_off).unwrap(), mm.type_id, mm.bit_offset))
            .collect();
        let want: Vec<_> = names.into_iter().map(|n| (n, ph, 0)).collect();
        assert_eq!(got, want);
    }
}

#[test]
fn features_are_asked_only_when_used_and_at_most_once() {
    let mut m = BtfModel::new();
    let int = m.add_int("int", 4, INT_SIGNED);
    let (out, asked) = sanitize_without(&m, &BtfFeature::ALL);
    assert!(asked.is_empty(), "plain INT asks nothing, got {asked:?}");
    assert!(out == m);

    // Everything used, several times each.
    for i in 0..3 {
        let name = format!("v{i}");
        let v = m.add_var(&name, int, VarLinkage::GlobalAllocated);
        m.add_datasec(&format!("?.sec{i}"), 4, &[(v, 0, 4)]);
        let p = m.add_func_proto(int, &[("a", int)]);
        let f = m.add_func(&format!("f{i}"), p, FuncLinkage::Global);
        m.add_decl_tag("tag", f, -1);
        m.add_float("float", 4);
        m.add_type_tag("user", int);
        m.add_enum("e", true, &[("A", -1)]);
        m.add_enum64("e64", false, &[("B", 1)]);
    }
    let (same, asked) = sanitize_without(&m, &[]);
    assert_eq!(asked.len(), 8, "all features used: {asked:?}");
    assert!(same == m, "everything supported: unchanged");
    let (_, asked) = sanitize_without(&m, &BtfFeature::ALL);
    // With FUNC and DATASEC missing, GLOBAL_FUNC and QMARK_DATASEC are moot.
    assert_eq!(asked.len(), 6, "{asked:?}");
    assert!(!asked.contains(&BtfFeature::GlobalFunc));
    assert!(!asked.contains(&BtfFeature::QmarkDatasec));
}

#[test]
fn sanitized_model_keeps_untouched_types_identical() {
    let mut m = BtfModel::new();
    let int = m.add_int("int", 4, INT_SIGNED);
    let st = m.add_struct("s", 8, &[("a", int, 0), ("b", int, 32)]);
    m.add_float("float", 4);
    let (out, _) = sanitize_without(&m, &[BtfFeature::Float]);
    assert_eq!(out.get(st), m.get(st));
    assert_eq!(out.get(int), m.get(int));
    assert!(matches!(
        out.get(3).map(|t| &t.body),
        Some(TypeBody::Struct { size: 4, members }) if members.is_empty()
    ));
}
