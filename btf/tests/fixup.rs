//! DATASEC fix-ups on real objects. Sizes and offsets are compared with what libbpf's static
//! linker writes for the same object (`bpftool gen object`), hidden-visibility handling with the
//! ELF symbol table itself, and `mark_func_static` with libbpf's rule.

mod common;

use std::process::Command;

use bpfload_btf::fixup::{fixup_datasecs, mark_func_static, VarSymbol};
use bpfload_btf::{Btf, BtfModel, FuncLinkage, Kind, TypeBody, VarLinkage};
use goblin::elf::{sym, Elf};

fn section_size(elf: &Elf<'_>, name: &str) -> Option<u64> {
    elf.section_headers
        .iter()
        .find(|sh| elf.shdr_strtab.get_at(sh.sh_name) == Some(name))
        .map(|sh| sh.sh_size)
}

fn var_symbol(elf: &Elf<'_>, name: &str) -> Option<VarSymbol> {
    elf.syms
        .iter()
        .find(|s| {
            s.st_type() == sym::STT_OBJECT
                && matches!(s.st_bind(), sym::STB_GLOBAL | sym::STB_WEAK)
                && elf.strtab.get_at(s.st_name) == Some(name)
        })
        .map(|s| VarSymbol {
            value: s.st_value,
            hidden: matches!(s.st_other & 3, sym::STV_HIDDEN | sym::STV_INTERNAL),
        })
}

/// DATASEC name → (size, [(var name, offset, size)]) in entry order.
type Secs = Vec<(String, u32, Vec<(String, u32, u32)>)>;

fn datasecs(m: &BtfModel) -> Secs {
    m.types()
        .filter_map(|(_, t)| match &t.body {
            TypeBody::DataSec { size, vars } => Some((
                m.str_at(t.name_off).unwrap().to_owned(),
                *size,
                vars.iter()
                    .map(|v| (m.name(v.type_id).to_owned(), v.offset, v.size))
                    .collect(),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn datasec_fixups_match_libbpf_linker_and_elf_visibility() {
    let Some(objs) = common::corpus_objects() else {
        common::skip("datasec fixups", "corpus not found");
        return;
    };
    if Command::new("bpftool").arg("version").output().is_err() {
        common::skip("datasec fixups", "bpftool not installed");
        return;
    }
    let tmp = std::env::temp_dir().join(format!("btf-fixup-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let (mut compared_secs, mut hidden_seen) = (0, 0);
    for path in objs
        .iter()
        .filter(|p| p.to_string_lossy().ends_with("-el.elf"))
    {
        let what = path.display().to_string();
        let data = std::fs::read(path).unwrap();
        let Some(btf_bytes) = common::elf_section(&data, ".BTF") else {
            continue;
        };
        let elf = Elf::parse(&data).unwrap();
        let btf = Btf::parse(&btf_bytes).unwrap();
        let orig = BtfModel::from_btf(&btf).unwrap();
        let mut m = orig.clone();
        fixup_datasecs(&mut m, |n| section_size(&elf, n), |n| var_symbol(&elf, n))
            .unwrap_or_else(|e| panic!("{what}: {e}"));

        // Visibility and sorting, straight from the ELF.
        for (_, t) in m.types() {
            let TypeBody::DataSec { vars, .. } = &t.body else {
                continue;
            };
            let sec = m.str_at(t.name_off).unwrap();
            assert!(
                vars.windows(2).all(|w| w[0].offset <= w[1].offset),
                "{what} {sec}"
            );
            if sec == ".kconfig" || sec == ".ksyms" {
                continue;
            }
            for v in vars {
                let (
                    TypeBody::Var {
                        linkage: before, ..
                    },
                    TypeBody::Var { linkage: after, .. },
                ) = (
                    &orig.get(v.type_id).unwrap().body,
                    &m.get(v.type_id).unwrap().body,
                )
                else {
                    panic!("{what}: non-VAR in {sec}");
                };
                let hidden = var_symbol(&elf, m.name(v.type_id)).is_some_and(|s| s.hidden);
                let expect = match before {
                    VarLinkage::GlobalAllocated if hidden => VarLinkage::Static,
                    other => *other,
                };
                hidden_seen += hidden as u32;
                assert_eq!(*after, expect, "{what}: {sec} VAR {}", m.name(v.type_id));
            }
        }

        // Sizes and offsets: libbpf's linker computes the same from the same ELF.
        let linked = tmp.join("linked.o");
        let ok = Command::new("bpftool")
            .args(["gen", "object"])
            .arg(&linked)
            .arg(path)
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            continue; // the linker refuses some objects (static programs, no BTF)
        }
        let ldata = std::fs::read(&linked).unwrap();
        let lbtf_bytes = common::elf_section(&ldata, ".BTF").unwrap();
        let lm = BtfModel::from_btf(&Btf::parse(&lbtf_bytes).unwrap()).unwrap();
        let ours = datasecs(&m);
        let before = datasecs(&orig);
        for (name, size, vars) in datasecs(&lm) {
            if name == ".kconfig" || name == ".ksyms" {
                continue;
            }
            // libbpf fixes only DATASECs that clang left at size 0; already-sized ones (objects
            // that went through the linker before) keep their offsets, only sorted.
            if before.iter().any(|(n, s, _)| *n == name && *s != 0) {
                let (_, _, mut bvars) = before.iter().find(|(n, _, _)| *n == name).unwrap().clone();
                bvars.sort_by_key(|v| v.1);
                let (_, _, ovars) = ours.iter().find(|(n, _, _)| *n == name).unwrap();
                assert_eq!(*ovars, bvars, "{what}: pre-sized DATASEC {name} changed");
                continue;
            }
            let Some((_, osize, ovars)) = ours.iter().find(|(n, _, _)| *n == name) else {
                panic!("{what}: linker has DATASEC {name} that we lack");
            };
            assert_eq!(*osize, size, "{what}: DATASEC {name} size");
            assert_eq!(*ovars, vars, "{what}: DATASEC {name} vars");
            compared_secs += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(
        compared_secs >= 20,
        "only {compared_secs} DATASECs compared"
    );
    assert!(
        hidden_seen >= 1,
        "no hidden variable in the corpus exercised"
    );
}

#[test]
fn missing_section_or_symbol_is_an_error_naming_it() {
    let mut m = BtfModel::new();
    let int = m.add_int("int", 4, 0);
    let v = m.add_var("counter", int, VarLinkage::GlobalAllocated);
    m.add_datasec(".data", 0, &[(v, 0, 4)]);
    let e = fixup_datasecs(&mut m.clone(), |_| None, |_| None).unwrap_err();
    assert!(e.to_string().contains(".data"), "{e}");
    let e = fixup_datasecs(&mut m.clone(), |_| Some(4), |_| None).unwrap_err();
    assert!(e.to_string().contains("counter"), "{e}");
    // Extern sections are only sorted, never looked up.
    let mut k = BtfModel::new();
    let int = k.add_int("int", 4, 0);
    let a = k.add_var("A", int, VarLinkage::GlobalExtern);
    let b = k.add_var("B", int, VarLinkage::GlobalExtern);
    let sec = k.add_datasec(".kconfig", 8, &[(a, 4, 4), (b, 0, 4)]);
    fixup_datasecs(&mut k, |_| None, |_| None).unwrap();
    let TypeBody::DataSec { vars, .. } = &k.get(sec).unwrap().body else {
        panic!()
    };
    assert_eq!(
        vars.iter().map(|v| v.type_id).collect::<Vec<_>>(),
        vec![b, a]
    );
}

/// ELF sizes and symbol values are 64-bit; a DATASEC holds 32-bit ones. Hostile values are errors,
/// not silently truncated sizes/offsets.
#[test]
fn sizes_and_offsets_beyond_32_bits_are_errors() {
    let mut m = BtfModel::new();
    let int = m.add_int("int", 4, 0);
    let v = m.add_var("counter", int, VarLinkage::GlobalAllocated);
    m.add_datasec(".data", 0, &[(v, 0, 4)]);
    let sym = |value| {
        move |_: &str| {
            Some(VarSymbol {
                value,
                hidden: false,
            })
        }
    };
    let e = fixup_datasecs(&mut m.clone(), |_| Some(1 << 32), sym(0)).unwrap_err();
    assert!(e.to_string().contains("4294967296"), "{e}");
    let e = fixup_datasecs(&mut m.clone(), |_| Some(8), sym(1 << 32)).unwrap_err();
    assert!(e.to_string().contains("counter"), "{e}");
    fixup_datasecs(&mut m, |_| Some(8), sym(4)).unwrap();
}

#[test]
fn mark_func_static_flips_only_the_first_global_func_of_that_name() {
    let mut m = BtfModel::new();
    let p = m.add_func_proto(0, &[]);
    let s = m.add_func("sub", p, FuncLinkage::Static);
    let g = m.add_func("sub", p, FuncLinkage::Global);
    let g2 = m.add_func("sub", p, FuncLinkage::Global);
    assert!(mark_func_static(&mut m, "sub"));
    let link = |m: &BtfModel, id| match m.get(id).unwrap().body {
        TypeBody::Func { linkage, .. } => linkage,
        _ => panic!(),
    };
    assert_eq!(link(&m, s), FuncLinkage::Static);
    assert_eq!(link(&m, g), FuncLinkage::Static);
    assert_eq!(link(&m, g2), FuncLinkage::Global);
    assert!(!mark_func_static(&mut m, "nope"));
    assert_eq!(m.kind(g), Some(Kind::Func));
}
