//! After open, bpfload sees the programs and maps libbpf sees: same names in the same order,
//! same section, program type, expected attach type, autoload and instruction count; same map
//! type, key/value size, max_entries and flags. Objects libbpf refuses to open are listed (bpfload
//! may accept more than libbpf, e.g. legacy `maps` and static programs) and must not panic.

use std::path::Path;

use bpfload_compat::{corpus, libbpf_side};

fn compare(path: &Path, out: &mut Vec<String>, refused: &mut Vec<String>) {
    let what = path.display().to_string();
    let lib = libbpf_side::open_summary(path);
    let ours = std::panic::catch_unwind(|| bpfload::Object::open_file(path));
    let ours = match ours {
        Ok(r) => r,
        Err(_) => {
            out.push(format!("{what}: bpfload open PANICKED"));
            return;
        }
    };
    let (lprogs, lmaps) = match lib {
        Err(f) => {
            refused.push(format!(
                "{what}: libbpf refuses ({}): bpfload {}",
                f.message.lines().last().unwrap_or(""),
                match &ours {
                    Ok(_) => "opens it".to_string(),
                    Err(e) => format!("refuses too: {e}"),
                }
            ));
            return;
        }
        Ok(v) => v,
    };
    let obj = match ours {
        Ok(o) => o,
        Err(e) => {
            out.push(format!("{what}: libbpf opens, bpfload refuses: {e}"));
            return;
        }
    };
    let oprogs: Vec<_> = obj.programs().collect();
    let lnames: Vec<_> = lprogs.iter().map(|p| p.name.as_str()).collect();
    let onames: Vec<_> = oprogs.iter().map(|p| p.name()).collect();
    if lnames != onames {
        out.push(format!(
            "{what}: programs: libbpf {lnames:?}, bpfload {onames:?}"
        ));
    }
    for l in &lprogs {
        let Some(o) = obj.program(&l.name) else {
            continue;
        };
        let ours = (
            o.sec_name().to_string(),
            o.prog_type().unwrap_or(0),
            o.expected_attach_type(),
            o.autoload(),
            o.insn_count(),
        );
        let theirs = (
            l.section.clone(),
            l.prog_type,
            l.expected_attach_type,
            l.autoload,
            l.insn_cnt,
        );
        if ours != theirs {
            out.push(format!(
                "{what}: program {}: (section, type, attach type, autoload, insns) libbpf {theirs:?}, bpfload {ours:?}",
                l.name
            ));
        }
    }
    let lmnames: Vec<_> = lmaps.iter().map(|m| m.name.as_str()).collect();
    let omnames: Vec<_> = obj.maps().iter().map(|m| m.name()).collect();
    if lmnames != omnames {
        out.push(format!(
            "{what}: maps: libbpf {lmnames:?}, bpfload {omnames:?}"
        ));
    }
    for l in &lmaps {
        let Some(o) = obj.map(&l.name) else { continue };
        let d = o.def();
        let ours = (
            d.map_type,
            d.key_size,
            d.value_size,
            d.max_entries,
            d.map_flags,
            o.autocreate(),
        );
        let theirs = (
            l.map_type,
            l.key_size,
            l.value_size,
            l.max_entries,
            l.map_flags,
            l.autocreate,
        );
        if ours != theirs {
            out.push(format!(
                "{what}: map {}: (type, key, value, max_entries, flags, autocreate) libbpf {theirs:?}, bpfload {ours:?}",
                l.name
            ));
        }
    }
}

#[test]
fn open_matches_libbpf_on_fixtures_and_corpus() {
    libbpf_side::capture_libbpf_log();
    let mut objects = corpus::fixtures();
    assert!(!objects.is_empty(), "no fixtures in tests/bpf");
    let corpus = corpus::corpus_el_objects();
    if corpus.is_empty() {
        eprintln!("SKIP corpus part: no shared corpus found (set BPFLOAD_CORPUS)");
    }
    objects.extend(corpus);
    let (mut mismatches, mut refused) = (Vec::new(), Vec::new());
    for p in &objects {
        compare(p, &mut mismatches, &mut refused);
    }
    for r in &refused {
        eprintln!("note: {r}");
    }
    eprintln!(
        "{} objects compared, {} mismatches",
        objects.len(),
        mismatches.len()
    );
    assert!(
        mismatches.is_empty(),
        "bpfload's open differs from libbpf's:\n{}",
        mismatches.join("\n")
    );
}
