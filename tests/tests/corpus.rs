//! Real-world objects nobody on this project wrote (`../shared/corpus`, cilium/ebpf's test objects).
//!
//! - Every object opens, or fails with a clear error; nothing panics.
//! - Big-endian objects open for inspection and parse to the same programs and maps as their
//!   little-endian twins, or are refused with a message naming the endianness.
//! - For little-endian objects, each program is loaded alone (only it autoloaded), as the corpus
//!   README's table was made, and the result (ok, or the errno) must match libbpf's.
//! - Where libbpf refuses to open an object (legacy `maps` section, static programs), we open it: that
//!   is a deliberate difference, asserted here and listed in the README's "Beyond libbpf".

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use bpfload::Object;
use bpfload_tests::{corpus_dir, corpus_expectations, corpus_objects, skip_or_panic};

fn open_no_panic(path: &Path) -> Result<Result<Object, String>, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    catch_unwind(AssertUnwindSafe(|| {
        Object::open_bytes(&name, &data).map_err(|e| e.to_string())
    }))
    .map_err(|_| format!("{}: open panicked", path.display()))
}

#[test]
fn every_object_opens_or_fails_clearly() {
    let Some(dir) = corpus_dir() else {
        skip_or_panic("corpus open", "../shared/corpus is absent");
        return;
    };
    let objects = corpus_objects(&dir);
    assert!(
        objects.len() >= 40,
        "corpus looks incomplete: {} objects",
        objects.len()
    );
    let mut problems = Vec::new();
    let (mut opened, mut refused) = (0, 0);
    for p in &objects {
        match open_no_panic(p) {
            Err(panic) => problems.push(panic),
            Ok(Ok(_)) => opened += 1,
            Ok(Err(msg)) => {
                refused += 1;
                // A clear error says what is wrong: not empty, and more than a bare errno.
                if msg.trim().len() < 10 {
                    problems.push(format!("{}: unclear error {msg:?}", p.display()));
                }
                eprintln!("refused {}: {msg}", p.display());
            }
        }
    }
    eprintln!("corpus: {opened} opened, {refused} refused with an error");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Program names, sections, opcodes and map definitions: what must not depend on the object's byte
/// order. Immediates and offsets may differ: clang folds endian-dependent constants (cilium's
/// `relocs_read` reads bytes of a u64), and internal map names contain the file name (`tags_eb`).
fn shape(o: &Object) -> Vec<String> {
    let mut v: Vec<String> = o
        .programs()
        .chain(o.subprograms())
        .map(|p| {
            let opcodes: Vec<u8> = p.insns().iter().map(|i| i.to_bytes()[0]).collect();
            format!("prog {} {} {:?}", p.name(), p.section(), opcodes)
        })
        .collect();
    v.extend(
        o.maps()
            .iter()
            .map(|m| format!("map {} {:?}", m.real_name(), m.def())),
    );
    v
}

#[test]
fn big_endian_twins_open_to_the_same_shape_or_name_the_endianness() {
    let Some(dir) = corpus_dir() else {
        skip_or_panic("corpus big-endian", "../shared/corpus is absent");
        return;
    };
    let mut compared = 0;
    let mut problems = Vec::new();
    for eb in corpus_objects(&dir) {
        let s = eb.to_string_lossy();
        if !s.ends_with("-eb.elf") {
            continue;
        }
        let el = Path::new(&*s.replace("-eb.elf", "-el.elf")).to_path_buf();
        let (Ok(eb_res), Ok(el_res)) = (open_no_panic(&eb), open_no_panic(&el)) else {
            problems.push(format!("{s}: open panicked"));
            continue;
        };
        match (eb_res, el_res) {
            (Ok(b), Ok(l)) => {
                assert_eq!(b.endianness(), bpfload::Endianness::Big, "{s}");
                if shape(&b) != shape(&l) {
                    problems.push(format!("{s}: parses differently from its -el twin"));
                }
                compared += 1;
            }
            (Err(msg), Ok(_)) if !msg.to_lowercase().contains("endian") => {
                problems.push(format!("{s}: refused without naming the endianness: {msg}"))
            }
            _ => {}
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        compared >= 20,
        "only {compared} big-endian objects compared"
    );
}
