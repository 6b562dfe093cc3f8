//! For every fixture and every little-endian corpus object, each program loaded alone with bpfload
//! gives the same result as with libbpf 1.7 (ok, or the same errno), and the instructions passed to
//! BPF_PROG_LOAD are equal byte for byte, except that `ld_imm64` map fds are compared by the
//! identity of the map they refer to (its kernel name). Needs root.

use std::path::Path;
use std::sync::OnceLock;

use bpfload_compat::insn::{self, Norm};
use bpfload_compat::{bpfload_side, corpus, genobj, kernel, libbpf_side};

fn norm(bytes: &[u8], names: &std::collections::BTreeMap<i32, String>) -> Vec<Norm> {
    let insns = insn::decode(bytes).expect("whole instructions");
    insn::normalize(&insns, &|fd| names.get(&fd).cloned())
}

fn errno_str(e: i32) -> String {
    format!("{} ({e})", kernel::errno_name(e))
}

fn compare(path: &Path, r: &mut Report) {
    let what = path.display().to_string();
    let lib = libbpf_side::dump_object(path, &[]);
    if let Err(f) = &lib.open {
        eprintln!(
            "note: {what}: libbpf refuses to open it ({}); not compared",
            errno_str(f.errno)
        );
        return;
    }
    let obj = match bpfload::Object::open_file(path) {
        Ok(o) => o,
        Err(e) => {
            r.results
                .push(format!("{what}: libbpf opens it, bpfload refuses: {e}"));
            return;
        }
    };
    for l in &lib.programs {
        r.compared += 1;
        let ours = bpfload_side::load_one(&obj, &l.name);
        let theirs: Result<(), i32> = l.result.as_ref().map(|_| ()).map_err(|f| f.errno);
        let mine: Result<(), i32> = ours.result.as_ref().map(|_| ()).map_err(|(e, _)| *e);
        if theirs != mine {
            r.results.push(format!(
                "{what}: program {}: result: libbpf {} / bpfload {}",
                l.name,
                match &l.result {
                    Ok(()) => "ok".to_string(),
                    Err(f) => format!(
                        "{} [{}]",
                        errno_str(f.errno),
                        f.message.lines().last().unwrap_or("")
                    ),
                },
                match &ours.result {
                    Ok(()) => "ok".to_string(),
                    Err((e, m)) =>
                        format!("{} [{}]", errno_str(*e), m.lines().next().unwrap_or("")),
                }
            ));
        }
        if !l.insns_final || ours.insns.is_empty() {
            // One side stopped before its instructions were final: nothing to compare.
            if l.insns_final != !ours.insns.is_empty() {
                r.results.push(format!(
                    "{what}: program {}: final instructions: libbpf {}, bpfload {}",
                    l.name,
                    if l.insns_final {
                        "yes"
                    } else {
                        "none (prepare failed)"
                    },
                    if ours.insns.is_empty() { "none" } else { "yes" }
                ));
            }
            continue;
        }
        let diffs = insn::compare(
            &norm(&l.insns, &l.map_names),
            &norm(&ours.insns, &ours.map_names),
            5,
        );
        if diffs.is_empty() {
            r.identical += 1;
        }
        for d in diffs {
            r.insns.push(format!("{what}: program {}: {d}", l.name));
        }
    }
}

/// The whole object with its own autoload flags: where libbpf loads every program, bpfload
/// must too, with equal instructions; where libbpf's load fails, bpfload's must fail.
fn compare_whole(path: &Path, r: &mut Report) {
    let what = format!("{} (whole object)", path.display());
    let Ok(lib) = libbpf_side::dump_with(path, libbpf_side::Autoload::Default) else {
        return;
    };
    let Ok(obj) = bpfload::Object::open_file(path) else {
        return;
    };
    let ours = bpfload_side::load_whole(&obj);
    let lib_ok = lib.iter().all(|p| p.result.is_ok());
    match (lib_ok, &ours) {
        (true, Err((e, m))) => {
            r.results.push(format!(
                "{what}: libbpf loads it, bpfload fails: {} [{}]",
                errno_str(*e),
                m.lines().next().unwrap_or("")
            ));
        }
        (false, Ok(progs)) if progs.iter().all(|(_, p)| p.result.is_ok()) => {
            let f = lib
                .iter()
                .find_map(|p| p.result.as_ref().err())
                .expect("a failure");
            r.results.push(format!(
                "{what}: libbpf fails ({} [{}]), bpfload loads every program",
                errno_str(f.errno),
                f.message.lines().last().unwrap_or("")
            ));
        }
        (true, Ok(progs)) => {
            for l in &lib {
                r.compared += 1;
                let Some((_, o)) = progs.iter().find(|(n, _)| *n == l.name) else {
                    r.results.push(format!(
                        "{what}: program {}: libbpf loads it, bpfload did not load it",
                        l.name
                    ));
                    continue;
                };
                if let Err((e, m)) = &o.result {
                    r.results.push(format!(
                        "{what}: program {}: libbpf ok / bpfload {} [{}]",
                        l.name,
                        errno_str(*e),
                        m.lines().next().unwrap_or("")
                    ));
                    continue;
                }
                let diffs = insn::compare(
                    &norm(&l.insns, &l.map_names),
                    &norm(&o.insns, &o.map_names),
                    5,
                );
                if diffs.is_empty() {
                    r.identical += 1;
                }
                for d in diffs {
                    r.insns.push(format!("{what}: program {}: {d}", l.name));
                }
            }
        }
        _ => {}
    }
}

/// What the comparison found, computed once and shared by the tests below.
#[derive(Default)]
struct Report {
    /// Result differences (ok vs errno, or different errno, or missing final instructions).
    results: Vec<String>,
    /// Instruction differences where both loaders produced final instructions.
    insns: Vec<String>,
    compared: usize,
    identical: usize,
}

fn report() -> Option<&'static Report> {
    static REPORT: OnceLock<Option<Report>> = OnceLock::new();
    REPORT
        .get_or_init(|| {
            if !nix_is_root() {
                assert!(std::env::var("CI").as_deref() != Ok("true"), "CI must run this test as root");
                eprintln!("SKIP: comparing loads with libbpf needs root");
                return None;
            }
            libbpf_side::capture_libbpf_log();
            let mut objects = corpus::fixtures();
            let corpus = corpus::corpus_el_objects();
            if corpus.is_empty() {
                eprintln!("SKIP corpus part: no shared corpus found (set BPFLOAD_CORPUS)");
            }
            objects.extend(corpus);
            // Generated CO-RE objects (the benchmark shapes): skipped with a message without clang.
            for shape in [genobj::Shape::tracing(), genobj::Shape::programs(10)] {
                match genobj::object(shape) {
                    Ok(p) => objects.push(p),
                    Err(e) => eprintln!("SKIP generated {}: {e}", shape.name()),
                }
            }
            let mut r = Report::default();
            for p in &objects {
                compare(p, &mut r);
                compare_whole(p, &mut r);
            }
            eprintln!(
                "{} objects, {} program loads compared (alone and whole-object), {} with identical instructions",
                objects.len(),
                r.compared,
                r.identical
            );
            Some(r)
        })
        .as_ref()
}

/// Where both produce final instructions, they are equal (map fds by map identity).
#[test]
fn instructions_match_libbpf() {
    let Some(r) = report() else { return };
    assert!(r.identical > 0, "no program was compared");
    assert!(
        r.insns.is_empty(),
        "instructions differ from libbpf's:\n{}",
        r.insns.join("\n")
    );
}

/// Each program (alone, and in whole-object loads) has libbpf's result: ok, or the same errno.
#[test]
fn results_match_libbpf() {
    let Some(r) = report() else { return };
    assert!(
        r.results.is_empty(),
        "results differ from libbpf's:\n{}",
        r.results.join("\n")
    );
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
