//! Tests against the running kernel's BTF (/sys/kernel/btf/vmlinux; readable without privileges).

use std::path::Path;
use std::sync::Arc;

use bpfload_btf::{kernel, Btf, Kind, Type};

fn vmlinux_present() -> bool {
    if Path::new(kernel::VMLINUX_PATH).exists() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but {} is missing",
        kernel::VMLINUX_PATH
    );
    eprintln!("skipping: {} not present", kernel::VMLINUX_PATH);
    false
}

fn corpus_object(rel: &str) -> Option<std::path::PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("shared/corpus").join(rel))
        .find(|p| p.is_file())
}

#[test]
fn vmlinux_tables_are_small() {
    if !vmlinux_present() {
        return;
    }
    // Fresh, so no FUNC index built by another test: what a CO-RE load keeps.
    let data = kernel::load_vmlinux_uncached().unwrap();
    let btf = data.btf();
    let bytes = btf.table_bytes();
    // Sparse offsets (4 bytes per 16 types) plus the keys: a bit per type and 5 bytes per
    // named non-FUNC type, in at most four segments.
    let count = |func: bool| {
        btf.ids()
            .filter(|&id| {
                btf.name_off(id).unwrap() != 0 && (btf.kind(id).unwrap() == Kind::Func) == func
            })
            .count()
    };
    let slots = |n: usize| (n + n / 7 + 2) * 4;
    // (Up to four segments, each with a partial last stride and a 32-byte descriptor.)
    let offsets = btf.len() as usize / 16 * 4 + 4 * (4 + 32);
    let keys = (btf.len() as usize / 64 + 4) * 8 + count(false) * 5;
    let bound = offsets + keys;
    assert!(
        bytes <= bound,
        "{bytes} bytes of tables with keys, bound {bound}"
    );
    // The non-FUNC name index (4 bytes per slot, exactly 8 slots per 7 named types), built from
    // the keys, which are then dropped.
    btf.build_type_index();
    let bytes = btf.table_bytes();
    let bound = offsets + slots(count(false));
    assert!(bytes <= bound, "{bytes} bytes of tables, bound {bound}");
    assert!(
        bytes < btf.len() as usize * 2,
        "{bytes} bytes for {} types",
        btf.len()
    );
    // The FUNC index (attach targets, kfuncs): a first FUNC lookup walks the types and keeps
    // nothing; the second builds the index, exactly sized too.
    assert!(btf.find_by_name_kind("schedule", Kind::Func).is_some());
    assert_eq!(
        btf.table_bytes(),
        bytes,
        "a first FUNC lookup keeps no table"
    );
    assert!(btf.find_by_name_kind("schedule", Kind::Func).is_some());
    let with_funcs = btf.table_bytes();
    assert!(
        with_funcs > bytes,
        "the second FUNC lookup builds the FUNC index"
    );
    let bound = bound + slots(count(true));
    assert!(
        with_funcs <= bound,
        "{with_funcs} bytes of tables with FUNCs, bound {bound}"
    );
    eprintln!(
        "vmlinux tables: {bytes} bytes, {with_funcs} with the FUNC index ({} types)",
        btf.len()
    );
}

#[test]
fn vmlinux_parses_and_finds_task_struct() {
    if !vmlinux_present() {
        return;
    }
    let data = kernel::vmlinux().unwrap();
    let btf = data.btf();
    assert!(btf.len() > 1000);
    // Lookups work before (scanning the keys) and after the index is built, alike.
    let fresh = kernel::load_vmlinux_uncached().unwrap();
    let fresh = fresh.btf();
    assert!(
        !fresh.is_indexed(),
        "vmlinux keeps its keys; the index is built after a few lookups"
    );
    let scanned = fresh.find_by_name_kind("task_struct", Kind::Struct);
    assert!(!fresh.is_indexed());
    fresh.build_type_index();
    assert!(fresh.is_indexed());
    assert_eq!(
        fresh.find_by_name_kind("task_struct", Kind::Struct),
        scanned
    );
    assert!(btf.find_by_name_kind("schedule", Kind::Func).is_some());
    let id = btf.find_by_name_kind("task_struct", Kind::Struct).unwrap();
    assert_eq!(btf.name(id).unwrap(), "task_struct");
    let Type::Struct(s) = btf.type_by_id(id).unwrap() else {
        panic!("task_struct is not a struct");
    };
    assert!(s
        .members()
        .any(|m| btf.str_at(m.name_off).unwrap() == "pid"));
    assert_eq!(btf.resolve_size(id).unwrap(), s.size);
    assert_eq!(
        btf.find_by_name_kind("no_such_type_xyz", Kind::Struct),
        None
    );
    // The same Arc on later calls: parsed once per process.
    assert!(Arc::ptr_eq(&data, &kernel::vmlinux().unwrap()));
}

#[test]
fn vmlinux_concurrent_first_use_parses_once() {
    if !vmlinux_present() {
        return;
    }
    let handles: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(|| kernel::vmlinux().unwrap()))
        .collect();
    let all: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for d in &all[1..] {
        assert!(Arc::ptr_eq(&all[0], d));
    }
}

#[test]
fn vmlinux_read_and_mmap_agree() {
    if !vmlinux_present() {
        return;
    }
    let read = std::fs::read(kernel::VMLINUX_PATH).unwrap();
    let mapped = kernel::read_btf_bytes(Path::new(kernel::VMLINUX_PATH), true).unwrap();
    assert_eq!(&read[..], &mapped[..]);
    let a = Btf::parse(&read).unwrap();
    assert_eq!(a.len(), kernel::vmlinux().unwrap().btf().len());
}

#[test]
fn module_btf_is_split_on_vmlinux() {
    if !vmlinux_present() {
        return;
    }
    let base = kernel::vmlinux().unwrap();
    let mods = kernel::modules().unwrap();
    // This machine may have no modules with BTF; each one present must be split on vmlinux.
    for m in mods.iter() {
        let btf = m.data.btf();
        assert_eq!(btf.start_id(), base.btf().len(), "{}", m.name);
        assert!(btf.len() >= btf.start_id());
        assert!(Arc::ptr_eq(m.data.base().unwrap(), &base));
        let again = kernel::module(&m.name).unwrap().unwrap();
        assert!(Arc::ptr_eq(&again, m), "module BTF is cached");
    }
    assert!(kernel::module("no_such_module_xyz").unwrap().is_none());
    assert!(kernel::module("../etc/passwd").unwrap().is_none());
    assert!(kernel::module("vmlinux").unwrap().is_none());
}

#[test]
fn custom_btf_file_replaces_the_kernels() {
    if !vmlinux_present() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("btf-custom-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let raw = dir.join("vmlinux.btf");
    std::fs::copy(kernel::VMLINUX_PATH, &raw).unwrap();
    let target = kernel::TargetBtf::Custom(raw.clone());
    let custom = target.load().unwrap();
    assert!(!Arc::ptr_eq(&custom, &kernel::vmlinux().unwrap()));
    assert_eq!(custom.btf().len(), kernel::vmlinux().unwrap().btf().len());
    let elf = dir.join("obj.o");
    std::fs::write(&elf, b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0").unwrap();
    let err = kernel::custom(&elf).unwrap_err().to_string();
    assert!(err.contains("ELF"), "{err}");
    // An ELF file with a .BTF section (as libbpf's btf__parse accepts): the section's BTF.
    if let Some(corpus) = corpus_object("cilium-ebpf/testdata/kconfig-el.elf") {
        let from_elf = kernel::custom(&corpus).unwrap();
        assert!(from_elf.btf().len() > 1);
        let be = corpus.to_string_lossy().replace("-el.elf", "-eb.elf");
        assert_eq!(
            kernel::custom(be).unwrap().btf().len(),
            from_elf.btf().len()
        );
    }
    // A file that is not BTF: the error names the file (the user gave its path).
    let junk = dir.join("junk.btf");
    std::fs::write(&junk, [0u8; 64]).unwrap();
    let err = kernel::custom(&junk).unwrap_err().to_string();
    assert!(err.contains("junk.btf") && err.contains("magic"), "{err}");
    let err = kernel::custom(dir.join("missing")).unwrap_err().to_string();
    assert!(err.contains("missing"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn damaged_elf_custom_btf_is_an_error_not_a_panic() {
    let Some(obj) = corpus_object("cilium-ebpf/testdata/kconfig-el.elf") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but the corpus object kconfig-el.elf is missing"
        );
        eprintln!("SKIP damaged ELF custom BTF: corpus not found");
        return;
    };
    let good = std::fs::read(&obj).unwrap();
    let dir = std::env::temp_dir().join(format!("btf-elf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("x.o");
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for i in 0..300 {
        let mut b = good.clone();
        // Damage the ELF and section headers most of the time, anything otherwise.
        for _ in 0..1 + rnd() % 3 {
            let pos = if i % 4 == 0 {
                rnd() as usize % b.len()
            } else if i % 2 == 0 {
                rnd() as usize % 64
            } else {
                let shoff = u64::from_le_bytes(good[0x28..0x30].try_into().unwrap()) as usize;
                (shoff + rnd() as usize % (good.len() - shoff)).min(b.len() - 1)
            };
            b[pos] = rnd() as u8;
        }
        std::fs::write(&file, &b).unwrap();
        let _ = kernel::custom(&file);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shared_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<bpfload_btf::BtfData>();
    check::<Btf<'static>>();
    check::<kernel::ModuleBtf>();
    check::<Arc<bpfload_btf::BtfData>>();
}

/// FUNC lookups of the kernel's BTF (attach targets, kfuncs) walk its types until a second
/// walk is asked for, which builds the FUNC index; `find_funcs` answers many names in one walk.
/// Every path gives exactly what the index gives: the lowest FUNC id with that full name.
#[test]
fn vmlinux_func_walks_and_batches_equal_the_index() {
    if !vmlinux_present() {
        return;
    }
    let reference = kernel::load_vmlinux_uncached().unwrap();
    let reference = reference.btf();
    reference.build_index();
    // Present names from all over the type section, a prefix and an extension of a present
    // name, absent and empty names, a non-FUNC name, and a duplicate.
    let mut names: Vec<String> = reference
        .ids()
        .filter(|&i| reference.kind(i).ok() == Some(Kind::Func))
        .step_by(1009)
        .map(|i| reference.name(i).unwrap().to_string())
        .collect();
    assert!(names.len() > 20, "vmlinux has FUNCs");
    // Names several FUNCs share, if the kernel's BTF has any (pahole usually keeps one): the
    // lowest id must win. And names with a `___` part, whose essential name differs: only the
    // full name matches.
    let mut seen = std::collections::HashMap::new();
    for i in reference.ids() {
        if reference.kind(i).ok() == Some(Kind::Func) {
            *seen.entry(reference.name(i).unwrap()).or_insert(0) += 1;
        }
    }
    let mut shared: Vec<&str> = seen
        .iter()
        .filter(|(_, &c)| c > 1)
        .map(|(n, _)| *n)
        .collect();
    shared.sort();
    names.extend(
        shared
            .iter()
            .step_by(shared.len() / 10 + 1)
            .map(|n| n.to_string()),
    );
    let mut flavored: Vec<&str> = seen.keys().filter(|n| n.contains("___")).copied().collect();
    flavored.sort();
    names.extend(flavored.iter().take(5).map(|n| n.to_string()));
    names.extend(
        flavored
            .iter()
            .take(5)
            .map(|n| bpfload_btf::essential_name(n.as_bytes()))
            .map(|e| String::from_utf8_lossy(e).into_owned()),
    );
    let first = names[0].clone();
    names.extend([
        first[..first.len() - 1].to_string(),
        format!("{first}_x"),
        "bpfload_no_such_function".to_string(),
        String::new(),
        "task_struct".to_string(),
        first.clone(),
    ]);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let want: Vec<Option<u32>> = refs
        .iter()
        .map(|n| reference.find_by_name_kind(n, Kind::Func))
        .collect();
    assert!(want[0].is_some() && want[names.len() - 4].is_none());
    eprintln!(
        "{} names, {} shared by several FUNCs, {} flavored",
        names.len(),
        shared.len(),
        flavored.len()
    );

    // One walk answers the batch, and the FUNC index is not built by it.
    let fresh = kernel::load_vmlinux_uncached().unwrap();
    let fresh = fresh.btf();
    let tables = fresh.table_bytes();
    assert_eq!(fresh.find_funcs(&refs), want, "one walk");
    assert_eq!(
        fresh.table_bytes(),
        tables,
        "a first walk builds no FUNC index"
    );
    // The next lookup builds it.
    assert_eq!(fresh.find_by_name_kind(refs[1], Kind::Func), want[1]);
    assert!(
        fresh.table_bytes() > tables,
        "the second FUNC lookup builds the index"
    );
    assert_eq!(fresh.find_funcs(&refs), want, "through the index");

    // A single walk, for each name on a fresh blob.
    for (n, w) in refs.iter().zip(&want).step_by(7) {
        let fresh = kernel::load_vmlinux_uncached().unwrap();
        assert_eq!(fresh.btf().find_by_name_kind(n, Kind::Func), *w, "{n}");
    }
}

/// The same on BTF built here, which has what the kernel's usually lacks: a FUNC name used twice
/// (the lowest id wins), a flavored FUNC next to its plain name (only the full name matches) and
/// a STRUCT with a FUNC's name. Parsed the kernel's way, so FUNC lookups walk first.
#[test]
fn func_walks_and_batches_take_the_lowest_exact_func() {
    use bpfload_btf::{BtfData, BtfModel, FuncLinkage};
    let mut m = BtfModel::new();
    let int = m.add_int("int", 4, 1);
    let proto = m.add_func_proto(int, &[]);
    m.add_struct("dup", 4, &[("x", int, 0)]);
    let dup1 = m.add_func("dup", proto, FuncLinkage::Static);
    let flavored = m.add_func("foo___bar", proto, FuncLinkage::Global);
    let dup2 = m.add_func("dup", proto, FuncLinkage::Static);
    let foo = m.add_func("foo", proto, FuncLinkage::Global);
    assert!(dup1 < dup2);
    let bytes = m.to_bytes().unwrap();
    // ("void" is type 0 whatever the kind, in every lookup; found by fuzzing.)
    let names = ["dup", "foo", "foo___bar", "fo", "nope", "", "dup", "void"];
    let want = [
        Some(dup1),
        Some(foo),
        Some(flavored),
        None,
        None,
        None,
        Some(dup1),
        Some(0),
    ];
    // One walk for the batch, then the index.
    let data = BtfData::parse_indexed(bytes.clone()).unwrap();
    assert_eq!(data.btf().find_funcs(&names), want, "one walk");
    assert_eq!(data.btf().find_funcs(&names), want, "through the index");
    // Each name alone, as the first FUNC lookup of a fresh blob: a walk.
    for (n, w) in names.iter().zip(want) {
        let data = BtfData::parse_indexed(bytes.clone()).unwrap();
        assert_eq!(data.btf().find_by_name_kind(n, Kind::Func), w, "{n:?}");
    }
    // A name with a NUL in it names nothing, on every path (found by review: a walk or key scan
    // matched "a\0b" where the string table holds "a" followed by "b"). Every pair of the blob's
    // names, so whichever two are adjacent in its string table are tried.
    let strings = ["int", "x", "dup", "foo___bar", "foo"];
    let joined: Vec<String> = strings
        .iter()
        .flat_map(|a| strings.iter().map(move |b| format!("{a}\0{b}")))
        .collect();
    for name in &joined {
        for kind in [Kind::Func, Kind::Struct, Kind::Int] {
            let data = BtfData::parse_indexed(bytes.clone()).unwrap();
            assert_eq!(
                data.btf().find_by_name_kind(name, kind),
                None,
                "{name:?} {kind:?}"
            );
            // (`candidates` takes an essential name: the pairs without a `___`.)
            if !name.contains("___") {
                let found = data.btf().candidates(name.as_bytes(), kind).count();
                assert_eq!(found, 0, "{name:?} {kind:?}");
            }
        }
    }
    let refs: Vec<&str> = joined.iter().map(String::as_str).collect();
    let data = BtfData::parse_indexed(bytes.clone()).unwrap();
    assert!(
        data.btf().find_funcs(&refs).iter().all(Option::is_none),
        "one walk"
    );
    assert!(
        data.btf().find_funcs(&refs).iter().all(Option::is_none),
        "the index"
    );
}

/// Threads that look up names in one fresh kernel BTF while its indexes do not exist yet, while
/// one of them builds them and after: every answer equals the index's, whichever path served it
/// (key scans and FUNC walks, then the indexes the 9th scan and the 2nd FUNC lookup build). The
/// scan and walk budgets are shared per blob and only choose the path; the indexes are built once
/// (`OnceLock`). Also run under ThreadSanitizer (`scripts/tsan.sh`).
#[test]
fn concurrent_lookups_across_the_index_build_agree() {
    if !vmlinux_present() {
        return;
    }
    let reference = kernel::load_vmlinux_uncached().unwrap();
    let reference = reference.btf();
    reference.build_index();
    let pick = |kind: Kind, step: usize| -> Vec<String> {
        reference
            .ids()
            .filter(|&i| reference.kind(i).ok() == Some(kind))
            .step_by(step)
            .map(|i| reference.name(i).unwrap().to_string())
            .filter(|n| !n.is_empty())
            .collect()
    };
    let mut structs = pick(Kind::Struct, 499);
    structs.push("bpfload_no_such_struct".into());
    let mut funcs = pick(Kind::Func, 2003);
    funcs.push("bpfload_no_such_function".into());
    assert!(structs.len() > 10 && funcs.len() > 10);
    let want_structs: Vec<Option<u32>> = structs
        .iter()
        .map(|n| reference.find_by_name_kind(n, Kind::Struct))
        .collect();
    let want_funcs: Vec<Option<u32>> = funcs
        .iter()
        .map(|n| reference.find_by_name_kind(n, Kind::Func))
        .collect();
    let want_cands: Vec<Vec<u32>> = structs
        .iter()
        .map(|n| reference.candidates(n.as_bytes(), Kind::Struct).collect())
        .collect();
    assert!(want_structs[0].is_some() && want_funcs[0].is_some());
    assert_eq!(want_funcs.last(), Some(&None));

    let fresh = kernel::load_vmlinux_uncached().unwrap();
    let fresh = fresh.btf();
    let tables = fresh.table_bytes();
    let func_refs: Vec<&str> = funcs.iter().map(String::as_str).collect();
    let threads = 4;
    std::thread::scope(|s| {
        for t in 0..threads {
            let (fresh, structs, funcs, func_refs) = (&fresh, &structs, &funcs, &func_refs);
            let (want_structs, want_funcs, want_cands) = (&want_structs, &want_funcs, &want_cands);
            s.spawn(move || {
                // Each thread starts elsewhere in the lists, so single lookups, batches and
                // candidate passes interleave across threads.
                for round in 0..6 {
                    let k = (t * 7 + round * 3) % structs.len();
                    assert_eq!(
                        fresh.find_by_name_kind(&structs[k], Kind::Struct),
                        want_structs[k],
                        "thread {t} round {round}: struct {}",
                        structs[k]
                    );
                    let got: Vec<u32> = fresh
                        .candidates(structs[k].as_bytes(), Kind::Struct)
                        .collect();
                    assert_eq!(got, want_cands[k], "candidates of {}", structs[k]);
                    // Every thread's first FUNC lookup is a batch, so the one that walks is a batch.
                    if round == 0 || (t + round) % 2 == 0 {
                        assert_eq!(&fresh.find_funcs(func_refs), want_funcs, "thread {t} batch");
                    } else {
                        let f = (t * 5 + round) % funcs.len();
                        assert_eq!(
                            fresh.find_by_name_kind(&funcs[f], Kind::Func),
                            want_funcs[f],
                            "thread {t}: func {}",
                            funcs[f]
                        );
                    }
                }
            });
        }
    });
    assert!(
        fresh.table_bytes() > tables,
        "48 lookups of each kind built the indexes"
    );
    // And after the build, every name once more.
    for (n, w) in structs.iter().zip(&want_structs) {
        assert_eq!(fresh.find_by_name_kind(n, Kind::Struct), *w, "{n}");
    }
    assert_eq!(fresh.find_funcs(&func_refs), want_funcs);
}
