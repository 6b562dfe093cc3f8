//! For every fixture and every little-endian corpus object, each program loaded alone with bpfload
//! gives the same result as with libbpf 1.7 (ok, or the same errno), and the instructions passed to
//! BPF_PROG_LOAD are equal byte for byte, except that `ld_imm64` map fds are compared by the
//! identity of the map they refer to (its kernel name). Needs root.

use std::path::Path;

use bpfload_compat::insn::{self, Norm};
use bpfload_compat::{bpfload_side, corpus, genobj, kernel, libbpf_side};

fn norm(bytes: &[u8], names: &std::collections::BTreeMap<i32, String>) -> Vec<Norm> {
    let insns = insn::decode(bytes).expect("whole instructions");
    insn::normalize(&insns, &|fd| names.get(&fd).cloned())
}

fn errno_str(e: i32) -> String {
    format!("{} ({e})", kernel::errno_name(e))
}

fn compare(path: &Path, out: &mut Vec<String>, stats: &mut (usize, usize)) {
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
            out.push(format!("{what}: libbpf opens it, bpfload refuses: {e}"));
            return;
        }
    };
    for l in &lib.programs {
        stats.0 += 1;
        let ours = bpfload_side::load_one(&obj, &l.name);
        let theirs: Result<(), i32> = l.result.as_ref().map(|_| ()).map_err(|f| f.errno);
        let mine: Result<(), i32> = ours.result.as_ref().map(|_| ()).map_err(|(e, _)| *e);
        if theirs != mine {
            out.push(format!(
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
                out.push(format!(
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
            stats.1 += 1;
        }
        for d in diffs {
            out.push(format!("{what}: program {}: {d}", l.name));
        }
    }
}

/// The whole object with its own autoload flags: where libbpf loads every program, bpfload
/// must too, with equal instructions; where libbpf's load fails, bpfload's must fail.
fn compare_whole(path: &Path, out: &mut Vec<String>, stats: &mut (usize, usize)) {
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
            out.push(format!(
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
            out.push(format!(
                "{what}: libbpf fails ({} [{}]), bpfload loads every program",
                errno_str(f.errno),
                f.message.lines().last().unwrap_or("")
            ));
        }
        (true, Ok(progs)) => {
            for l in &lib {
                stats.0 += 1;
                let Some((_, o)) = progs.iter().find(|(n, _)| *n == l.name) else {
                    out.push(format!(
                        "{what}: program {}: libbpf loads it, bpfload did not load it",
                        l.name
                    ));
                    continue;
                };
                if let Err((e, m)) = &o.result {
                    out.push(format!(
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
                    stats.1 += 1;
                }
                for d in diffs {
                    out.push(format!("{what}: program {}: {d}", l.name));
                }
            }
        }
        _ => {}
    }
}

#[test]
fn instructions_and_results_match_libbpf() {
    if !nix_is_root() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must run this test as root"
        );
        eprintln!("SKIP instructions_and_results_match_libbpf: needs root to load programs");
        return;
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
    let mut mismatches = Vec::new();
    let mut stats = (0, 0);
    for p in &objects {
        compare(p, &mut mismatches, &mut stats);
        compare_whole(p, &mut mismatches, &mut stats);
    }
    eprintln!(
        "{} objects, {} program loads compared (alone and whole-object), {} with identical instructions, {} mismatches",
        objects.len(),
        stats.0,
        stats.1,
        mismatches.len()
    );
    assert!(
        mismatches.is_empty(),
        "bpfload differs from libbpf:\n{}",
        mismatches.join("\n")
    );
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
