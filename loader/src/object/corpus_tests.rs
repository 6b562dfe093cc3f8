//! Opens every object of the shared corpus: each must open or fail with an error, never panic.

use std::path::PathBuf;

use crate::Object;

/// `../shared/corpus` relative to the repository root, or the machine-wide copy.
pub(crate) fn corpus_dir() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    [
        root.join("../shared/corpus"),
        PathBuf::from("/work/shared/corpus"),
    ]
    .into_iter()
    .find(|p| p.is_dir())
}

pub(crate) fn corpus_objects() -> Vec<PathBuf> {
    let Some(dir) = corpus_dir() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "elf") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_corpus_object_opens_or_fails_cleanly() {
    let objs = corpus_objects();
    if objs.is_empty()
        && !crate::tests::skip_or_panic(
            "every_corpus_object_opens_or_fails_cleanly",
            "corpus not found (../shared/corpus or /work/shared/corpus)",
        )
    {
        return;
    }
    let mut opened = 0;
    for p in &objs {
        match Object::open_file(p) {
            Ok(o) => {
                opened += 1;
                let progs: Vec<_> = o
                    .programs()
                    .map(|p| format!("{}({})", p.name(), p.prog_type_name()))
                    .collect();
                let maps: Vec<_> = o.maps().iter().map(|m| m.name().to_string()).collect();
                eprintln!("ok   {}: progs={progs:?} maps={maps:?}", p.display());
            }
            Err(e) => eprintln!("err  {}: {e}", p.display()),
        }
    }
    // Most of the corpus is well-formed; a parser that rejects everything is broken.
    assert!(
        opened * 2 > objs.len(),
        "only {opened} of {} opened",
        objs.len()
    );
}

/// Big-endian objects open for inspection with the same programs, maps and relocations as their
/// little-endian twins.
#[test]
fn big_endian_twins_parse_the_same() {
    let objs = corpus_objects();
    let mut compared = 0;
    for le in objs
        .iter()
        .filter(|p| p.to_string_lossy().ends_with("-el.elf"))
    {
        let be = PathBuf::from(le.to_string_lossy().replace("-el.elf", "-eb.elf"));
        let (Ok(a), Ok(b)) = (Object::open_file(le), Object::open_file(&be)) else {
            continue;
        };
        let progs = |o: &Object| {
            o.programs
                .iter()
                // Opcodes and registers, not immediates: programs may hold endian-dependent constants.
                .map(|p| {
                    let ops: Vec<_> = p.insns.iter().map(|i| (i.code, i.dst(), i.src())).collect();
                    (p.name.clone(), p.section.clone(), p.relocs.clone(), ops)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(progs(&a), progs(&b), "{}", le.display());
        let maps = |o: &Object| {
            o.maps
                .iter()
                .map(|m| (m.real_name.clone(), m.def.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(maps(&a), maps(&b), "{}", le.display());
        compared += 1;
    }
    if !objs.is_empty() {
        assert!(compared > 20, "only {compared} twins compared");
    }
}

/// Hostile input: corrupted copies of real objects must open or fail, never panic or allocate
/// without bound. Deterministic (xorshift), so a failure reproduces.
#[test]
fn corrupted_objects_never_panic() {
    let mut seeds: Vec<PathBuf> = corpus_objects().into_iter().take(12).collect();
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/bpf");
    for name in [
        "globals.bpf.o",
        "calls.bpf.o",
        "mapinmap.bpf.o",
        "tailcall.bpf.o",
        "maps.bpf.o",
    ] {
        seeds.push(fixtures.join(name));
    }
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut opened = 0;
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    let pin_root = format!("/sys/fs/bpf/bpfload-fuzz-{}", std::process::id());
    for path in seeds {
        let Ok(orig) = std::fs::read(&path) else {
            continue;
        };
        for round in 0..150 {
            let mut data = orig.clone();
            let flips = 1 + (next() % 8) as usize;
            for _ in 0..flips {
                let i = (next() as usize) % data.len();
                data[i] = next() as u8;
            }
            if round % 10 == 0 {
                data.truncate((next() as usize) % data.len());
            }
            if let Ok(obj) = Object::open_bytes("fuzz", &data) {
                opened += 1;
                // The load pipeline must not panic on it either (the kernel refuses what is
                // broken). Pins are kept out of the real bpffs.
                if root && opened % 4 == 0 {
                    let _ = crate::Loader::new()
                        .keep_going(true)
                        .pin_root(&pin_root)
                        .load(&obj);
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&pin_root);
    eprintln!("{opened} corrupted objects still opened");
}

/// `open_file` reads only the sections the parser uses (`object::file`); it must give exactly the
/// model, or the error, that parsing the whole file gives, for every fixture and corpus object.
#[test]
fn reading_only_used_sections_gives_the_same_model() {
    let mut objs = crate::tests::fixtures::fixture_objects();
    let corpus = corpus_objects();
    if corpus.is_empty() {
        // Says so (or fails under CI=true); the fixtures are still checked.
        crate::tests::skip_or_panic(
            "reading_only_used_sections_gives_the_same_model (corpus part)",
            "corpus not found (../shared/corpus or /work/shared/corpus)",
        );
    }
    objs.extend(corpus);
    for p in &objs {
        let whole = std::fs::read(p).unwrap();
        let a = canonical(Object::open_file(p));
        let b = canonical(Object::open_bytes(&p.to_string_lossy(), &whole));
        if a != b {
            let at = a
                .bytes()
                .zip(b.bytes())
                .position(|(x, y)| x != y)
                .unwrap_or(0);
            let from = at.saturating_sub(200);
            panic!(
                "{}: open_file and open_bytes differ at {at}:\n  file:  {}\n  bytes: {}",
                p.display(),
                &a[from..(at + 200).min(a.len())],
                &b[from..(at + 200).min(b.len())]
            );
        }
    }
}

/// The whole model (or error) as text, with its hash tables in sorted order.
fn canonical(o: Result<Object, crate::OpenError>) -> String {
    match o {
        Ok(mut o) => {
            let mut sizes: Vec<_> = o.sec_sizes.drain().collect();
            sizes.sort();
            let mut vars: Vec<_> = o.var_syms.drain().collect();
            vars.sort();
            format!("{o:?} {sizes:?} {vars:?}")
        }
        Err(e) => format!("error: {e:?}"),
    }
}
