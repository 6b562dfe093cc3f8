//! Differential test: what we parse from each fixture and corpus object matches what aya-obj 0.3
//! parses, wherever aya-obj can open the object.
//!
//! Compared: programs (name, program type, instruction count of the function itself) and maps
//! (name, type, key size, value size, max_entries, flags). Known, explained differences:
//! - global data maps: aya-obj names them by section (`.rodata`), libbpf by `internal_map_name`
//!   (`<obj>.rodata`); we match them through our `real_name` (the section). libbpf also sets
//!   `BPF_F_MMAPABLE` on data maps that hold a non-static variable, which aya-obj does not, so that
//!   flag is ignored for global data maps.
//! - program types: aya-obj maps some section names by prefix that libbpf's SEC() table does not know
//!   (cilium's `socket/...` and `sk_lookup/`); we follow libbpf and leave the type unknown (the load
//!   then fails with EINVAL, as libbpf's does; corpus.rs checks that). Such programs are compared on
//!   everything but the type.
//! - maps we have that aya-obj lacks must be ones libbpf creates and aya-obj does not model
//!   (`.kconfig`); anything else fails the test.

use std::collections::BTreeMap;
use std::path::Path;

use aya_obj::ProgramSection;
use bpfload::Object;
use bpfload_tests::{corpus_dir, corpus_objects, fixture_objects, skip_or_panic};

const BPF_F_MMAPABLE: u32 = 1 << 10;

#[derive(Debug, PartialEq, Eq)]
struct ProgView {
    prog_type: Option<u32>,
    insns: usize,
}

#[derive(Debug, PartialEq, Eq)]
struct MapView {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    flags: u32,
}

/// The program type aya-obj's section kind implies, for the kinds where that is one fixed type.
fn aya_prog_type(s: &ProgramSection) -> Option<u32> {
    use ProgramSection::*;
    Some(match s {
        SocketFilter => 1,
        KProbe | KRetProbe | UProbe { .. } | URetProbe { .. } => 2,
        SchedClassifier => 3,
        TracePoint => 5,
        Xdp { .. } => 6,
        PerfEvent => 7,
        CgroupSkb { .. } => 8,
        CgroupSock { .. } => 9,
        SockOps => 13,
        SkSkbStream { .. } => 14,
        CgroupDevice => 15,
        SkMsg => 16,
        RawTracePoint => 17,
        CgroupSockAddr { .. } => 18,
        LircMode2 => 20,
        SkReuseport { .. } => 21,
        FlowDissector => 22,
        CgroupSysctl => 23,
        CgroupSockopt { .. } => 25,
        BtfTracePoint | FEntry { .. } | FExit { .. } | Iter { .. } => 26,
        Extension => 28,
        Lsm { .. } | LsmCgroup => 29,
        SkLookup => 30,
    })
}

fn aya_view(obj: &aya_obj::Object) -> (BTreeMap<String, ProgView>, BTreeMap<String, MapView>) {
    let progs = obj
        .programs
        .iter()
        .map(|(name, p)| {
            let insns = obj
                .functions
                .get(&p.function_key())
                .map(|f| f.instructions.len())
                .unwrap_or(0);
            (
                name.clone(),
                ProgView {
                    prog_type: aya_prog_type(&p.section),
                    insns,
                },
            )
        })
        .collect();
    let maps = obj
        .maps
        .iter()
        .map(|(name, m)| {
            (
                name.clone(),
                MapView {
                    map_type: m.map_type(),
                    key_size: m.key_size(),
                    value_size: m.value_size(),
                    max_entries: m.max_entries(),
                    flags: m.map_flags(),
                },
            )
        })
        .collect();
    (progs, maps)
}

fn our_view(obj: &Object) -> (BTreeMap<String, ProgView>, BTreeMap<String, MapView>) {
    let progs = obj
        .programs()
        .map(|p| {
            (
                p.name().to_string(),
                ProgView {
                    prog_type: p.prog_type(),
                    insns: p.insn_count(),
                },
            )
        })
        .collect();
    let maps = obj
        .maps()
        .iter()
        .map(|m| {
            let d = m.def();
            let internal = m.kind().is_internal();
            (
                // aya-obj keys global data maps by section name: our real_name.
                if internal { m.real_name() } else { m.name() }.to_string(),
                MapView {
                    map_type: d.map_type,
                    key_size: d.key_size,
                    value_size: d.value_size,
                    max_entries: d.max_entries,
                    flags: if internal {
                        d.map_flags & !BPF_F_MMAPABLE
                    } else {
                        d.map_flags
                    },
                },
            )
        })
        .collect();
    (progs, maps)
}

/// Compares one object. Returns Ok(true) if compared, Ok(false) if aya-obj cannot parse it.
fn compare(path: &Path) -> Result<bool, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let Ok(aya) = aya_obj::Object::parse(&data) else {
        return Ok(false);
    };
    let ours = Object::open_file(path)
        .map_err(|e| format!("{}: aya-obj parses it but we fail: {e}", path.display()))?;
    let (aya_progs, aya_maps) = aya_view(&aya);
    let (our_progs, mut our_maps) = our_view(&ours);

    let mut errs = Vec::new();
    for (name, a) in &aya_progs {
        match our_progs.get(name) {
            None => errs.push(format!("program {name}: aya-obj has it, we do not")),
            Some(o) => {
                if o.insns != a.insns {
                    errs.push(format!(
                        "program {name}: {} insns, aya-obj {}",
                        o.insns, a.insns
                    ));
                }
                // `o.prog_type == None`: libbpf's SEC() table does not know the section (see above).
                if a.prog_type.is_some() && o.prog_type.is_some() && o.prog_type != a.prog_type {
                    errs.push(format!(
                        "program {name}: type {:?}, aya-obj {:?}",
                        o.prog_type, a.prog_type
                    ));
                }
            }
        }
    }
    for name in our_progs.keys() {
        if !aya_progs.contains_key(name) {
            errs.push(format!("program {name}: we have it, aya-obj does not"));
        }
    }
    // libbpf creates a `.kconfig` map for kconfig externs; aya-obj has no such map.
    our_maps.retain(|name, _| name != ".kconfig" || aya_maps.contains_key(name));
    for (name, a) in &aya_maps {
        match our_maps.get(name) {
            None => errs.push(format!("map {name}: aya-obj has it, we do not")),
            Some(o) if o != a => errs.push(format!("map {name}: ours {o:?}, aya-obj {a:?}")),
            Some(_) => {}
        }
    }
    for name in our_maps.keys() {
        if !aya_maps.contains_key(name) {
            errs.push(format!("map {name}: we have it, aya-obj does not"));
        }
    }
    if errs.is_empty() {
        Ok(true)
    } else {
        Err(format!("{}:\n  {}", path.display(), errs.join("\n  ")))
    }
}

fn run_all(objects: &[std::path::PathBuf]) -> (usize, Vec<String>) {
    let mut compared = 0;
    let mut failures = Vec::new();
    for p in objects {
        match compare(p) {
            Ok(true) => compared += 1,
            Ok(false) => eprintln!("aya-obj cannot parse {}; not compared", p.display()),
            Err(e) => failures.push(e),
        }
    }
    (compared, failures)
}

#[test]
fn fixtures_match_aya_obj() {
    let objects = fixture_objects();
    assert!(!objects.is_empty(), "no fixtures found");
    let (compared, failures) = run_all(&objects);
    assert!(failures.is_empty(), "differences:\n{}", failures.join("\n"));
    // Most fixtures are plain enough for aya-obj; if it parses none, the test proves nothing.
    assert!(compared >= 4, "only {compared} fixtures compared");
}

#[test]
fn corpus_matches_aya_obj() {
    let Some(dir) = corpus_dir() else {
        skip_or_panic("corpus_matches_aya_obj", "../shared/corpus is absent");
        return;
    };
    // Big-endian objects are compared too: both parsers must byte-swap them.
    let objects = corpus_objects(&dir);
    let (compared, failures) = run_all(&objects);
    assert!(failures.is_empty(), "differences:\n{}", failures.join("\n"));
    eprintln!(
        "compared {compared} of {} corpus objects with aya-obj",
        objects.len()
    );
    assert!(compared >= 10, "only {compared} corpus objects compared");
}
