//! Differential tests against aya-obj 0.3's BTF parser: on vmlinux and on every little-endian
//! corpus `.BTF`, the same type count and, per type, the same kind, info word, name and size (or
//! referenced type).
//!
//! aya-obj keeps its parsed types crate-private, but `Btf` derives `Debug`; the test reads aya's
//! view from that output (variant name = kind, and the raw `name_offset`/`info`/`size`/`btf_type`
//! fields), and names from aya's own copied string table.

mod common;

use bpfload_btf::{Btf, Kind};

/// One top-level type as aya-obj printed it.
#[derive(Debug)]
struct AyaType {
    variant: String,
    fields: Vec<(String, String)>,
}

impl AyaType {
    fn field(&self, name: &str) -> Option<u64> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.parse().ok())
    }
}

/// Splits `s` at top-level `", "` separators (ignoring nested brackets), stopping at the first
/// unmatched closing bracket. Returns the pieces and the index where it stopped.
fn split_top(s: &str) -> (Vec<&str>, usize) {
    let b = s.as_bytes();
    let mut depth = 0i32;
    let mut start = 0;
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                if depth == 0 {
                    if i > start {
                        out.push(s[start..i].trim());
                    }
                    return (out, i);
                }
                depth -= 1;
            }
            b',' if depth == 0 => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    (out, i)
}

fn parse_aya_debug(dbg: &str) -> (Vec<u8>, Vec<AyaType>) {
    let sk = "strings: [";
    let s0 = dbg.find(sk).expect("strings in aya Debug") + sk.len();
    let (strs, _) = split_top(&dbg[s0..]);
    let strings: Vec<u8> = strs.iter().map(|v| v.parse().unwrap()).collect();
    let tk = "types: BtfTypes { types: [";
    let t0 = dbg.find(tk).expect("types in aya Debug") + tk.len();
    let (entries, _) = split_top(&dbg[t0..]);
    let types = entries
        .into_iter()
        .map(|e| {
            let variant = e.split('(').next().unwrap().trim().to_owned();
            let fields = match e.find('{') {
                Some(open) => split_top(&e[open + 1..])
                    .0
                    .into_iter()
                    .filter_map(|f| {
                        let (n, v) = f.split_once(": ")?;
                        Some((n.trim().to_owned(), v.trim().to_owned()))
                    })
                    .collect(),
                None => Vec::new(),
            };
            AyaType { variant, fields }
        })
        .collect();
    (strings, types)
}

fn kind_of_variant(v: &str) -> Kind {
    match v {
        "Unknown" => Kind::Void,
        "Fwd" => Kind::Fwd,
        "Const" => Kind::Const,
        "Volatile" => Kind::Volatile,
        "Restrict" => Kind::Restrict,
        "Ptr" => Kind::Ptr,
        "Typedef" => Kind::Typedef,
        "Func" => Kind::Func,
        "Int" => Kind::Int,
        "Float" => Kind::Float,
        "Enum" => Kind::Enum,
        "Array" => Kind::Array,
        "Struct" => Kind::Struct,
        "Union" => Kind::Union,
        "FuncProto" => Kind::FuncProto,
        "Var" => Kind::Var,
        "DataSec" => Kind::DataSec,
        "DeclTag" => Kind::DeclTag,
        "TypeTag" => Kind::TypeTag,
        "Enum64" => Kind::Enum64,
        other => panic!("unknown aya variant {other}"),
    }
}

fn cstr_at(strings: &[u8], off: u64) -> &str {
    let tail = &strings[off as usize..];
    let end = tail.iter().position(|&b| b == 0).unwrap();
    std::str::from_utf8(&tail[..end]).unwrap()
}

/// Compares our parse of `bytes` with aya-obj's, type by type. Returns the number of types.
fn compare_with_aya(what: &str, bytes: &[u8]) -> u32 {
    let ours = Btf::parse(bytes).unwrap_or_else(|e| panic!("{what}: we failed: {e}"));
    let aya = aya_obj::btf::Btf::parse(bytes, object::Endianness::Little)
        .unwrap_or_else(|e| panic!("{what}: aya-obj failed: {e}"));
    let (strings, types) = parse_aya_debug(&format!("{aya:?}"));
    assert_eq!(
        types.len() as u32,
        ours.len(),
        "{what}: type count (incl. void)"
    );
    assert_eq!(types[0].variant, "Unknown");
    for (id, a) in types.iter().enumerate().skip(1) {
        let id = id as u32;
        let ctx = || format!("{what}: type [{id}] {a:?}");
        let kind = ours.kind(id).unwrap();
        assert_eq!(kind, kind_of_variant(&a.variant), "{}", ctx());
        let rec = ours.raw_type(id).unwrap();
        let info = u32::from_le_bytes(rec[4..8].try_into().unwrap());
        let a_info = a.field("info").or_else(|| a.field("_info")).unwrap();
        assert_eq!(info as u64, a_info, "{}", ctx());
        let a_name_off = a.field("name_offset").unwrap();
        assert_eq!(ours.name_off(id).unwrap() as u64, a_name_off, "{}", ctx());
        assert_eq!(
            ours.name(id).unwrap(),
            cstr_at(&strings, a_name_off),
            "{}",
            ctx()
        );
        let t = ours.type_by_id(id).unwrap();
        assert_eq!(t.size().map(u64::from), a.field("size"), "{}", ctx());
        if let Some(target) = a.field("btf_type") {
            assert_eq!(t.target().map(u64::from), Some(target), "{}", ctx());
        }
    }
    ours.len()
}

#[test]
fn same_as_aya_on_vmlinux() {
    let path = bpfload_btf::kernel::VMLINUX_PATH;
    let Ok(bytes) = std::fs::read(path) else {
        common::skip("aya diff on vmlinux", "no /sys/kernel/btf/vmlinux");
        return;
    };
    let n = compare_with_aya("vmlinux", &bytes);
    assert!(n > 10_000, "vmlinux has only {n} types?");
}

#[test]
fn same_as_aya_on_corpus() {
    let Some(objs) = common::corpus_btf() else {
        common::skip("aya diff on corpus", "corpus not found");
        return;
    };
    let mut compared = 0;
    for (path, btf, _) in &objs {
        let name = path.to_string_lossy();
        if !name.ends_with("-el.elf") {
            continue; // aya-obj 0.3 reads the header in native order only
        }
        compare_with_aya(&name, btf);
        compared += 1;
    }
    assert!(
        compared >= 20,
        "only {compared} little-endian objects with .BTF"
    );
}
