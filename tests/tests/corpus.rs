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

/// Our result for one program loaded alone: `None` if it loaded, else the errno.
fn load_alone(object: &Object, program: &str) -> (Option<i32>, String) {
    let res = catch_unwind(AssertUnwindSafe(|| {
        bpfload::Loader::new().only_programs([program]).load(object)
    }));
    match res {
        Err(_) => (Some(-1), format!("load of {program} panicked")),
        Ok(Ok(loaded)) => match loaded.program(program).map(|p| p.result()) {
            Some(Ok(_)) => (None, "ok".into()),
            Some(Err(e)) => (Some(e.errno().raw()), e.to_string()),
            None => (Some(-1), format!("{program} missing from the load result")),
        },
        Ok(Err(e)) => {
            let errno = e.errno().raw();
            (Some(errno), e.to_string())
        }
    }
}

fn is_not_yet(msg: &str) -> bool {
    msg.contains("does not support yet")
}

fn show(errno: Option<i32>) -> String {
    match errno {
        None => "ok".into(),
        Some(e) => format!("{} ({e})", bpfload_syscall::Errno::from_raw(e).name()),
    }
}

#[test]
fn each_program_loads_where_libbpf_loads_it_and_fails_where_it_fails() {
    if !bpfload_tests::require_root("corpus program loads") {
        return;
    }
    let Some(dir) = corpus_dir() else {
        skip_or_panic("corpus program loads", "../shared/corpus is absent");
        return;
    };
    let rows = corpus_expectations(&dir).expect("corpus table");
    let (mut same, mut not_yet, mut mismatches) = (0, Vec::new(), Vec::new());
    for row in rows.iter().filter(|r| r.open_error.is_none()) {
        let object = Object::open_file(dir.join(&row.path))
            .unwrap_or_else(|e| panic!("{}: libbpf opens it, we fail: {e}", row.path));
        for p in &row.programs {
            let (ours, msg) = load_alone(&object, &p.name);
            let line = format!(
                "{} {} ({}): libbpf {}, we {} — {}",
                row.path,
                p.name,
                p.section,
                show(p.errno),
                show(ours),
                msg.lines().next().unwrap_or("")
            );
            if ours == p.errno {
                same += 1;
            } else if ours.is_some() && is_not_yet(&msg) {
                // An honest "not yet": the missing capability is named; never a wrong load.
                not_yet.push(line);
            } else {
                mismatches.push(line);
            }
        }
    }
    eprintln!("corpus: {same} programs match libbpf's result");
    for l in &not_yet {
        eprintln!("not yet supported: {l}");
    }
    assert!(
        mismatches.is_empty(),
        "differs from libbpf:\n{}",
        mismatches.join("\n")
    );
    assert!(same >= 20, "only {same} programs matched");
}

/// libbpf refuses to open objects with a legacy `maps` section or static programs. We open them
/// (as aya and cilium/ebpf do) and load what the kernel accepts: a deliberate improvement, listed in
/// the README's "Beyond libbpf". Objects libbpf refuses for other reasons (an extern whose BTF is
/// missing) must still fail, at open or at load.
#[test]
fn objects_libbpf_refuses() {
    let Some(dir) = corpus_dir() else {
        skip_or_panic(
            "corpus libbpf-refused objects",
            "../shared/corpus is absent",
        );
        return;
    };
    let root = bpfload_tests::is_root();
    let rows = corpus_expectations(&dir).expect("corpus table");
    let mut problems = Vec::new();
    for row in rows.iter().filter(|r| r.open_error.is_some()) {
        let (errno, why) = row.open_error.clone().unwrap();
        let beyond =
            why.contains("legacy map definitions") || why.contains("is static and not supported");
        let opened = Object::open_file(dir.join(&row.path));
        if beyond {
            let object = match opened {
                Ok(o) => o,
                Err(e) => {
                    problems.push(format!(
                        "{}: we should open it (beyond libbpf): {e}",
                        row.path
                    ));
                    continue;
                }
            };
            if root {
                let results: Vec<(String, Option<i32>, String)> = object
                    .programs()
                    .map(|p| {
                        let (errno, msg) = load_alone(&object, p.name());
                        (p.name().to_string(), errno, msg)
                    })
                    .collect();
                let ok = results.iter().filter(|r| r.1.is_none()).count();
                eprintln!(
                    "beyond libbpf: {} (libbpf: {why}): {ok} of {} programs load alone",
                    row.path,
                    results.len()
                );
                if let Some((name, errno, msg)) = results.iter().find(|r| r.1.is_some()) {
                    eprintln!(
                        "  first failure: {name}: {} {}",
                        show(*errno),
                        msg.lines().next().unwrap_or("")
                    );
                }
                if results.iter().any(|r| r.1 == Some(-1)) {
                    problems.push(format!("{}: a load panicked or lost a program", row.path));
                }
            }
        } else if let Ok(object) = opened {
            if !root {
                continue;
            }
            let progs: Vec<String> = object.programs().map(|p| p.name().to_string()).collect();
            let res = catch_unwind(AssertUnwindSafe(|| bpfload::Loader::new().load(&object)));
            match res {
                Err(_) => problems.push(format!("{}: load panicked", row.path)),
                Ok(Ok(l)) if l.all_loaded() && !progs.is_empty() => problems.push(format!(
                    "{}: libbpf refuses it ({} ({errno}): {why}) but it loaded",
                    row.path,
                    bpfload_syscall::Errno::from_raw(errno).name()
                )),
                Ok(_) => {}
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
