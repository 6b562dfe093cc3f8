//! Differential check against C libbpf 1.7, run by hand (it needs the output of the `compat`
//! crate's `libbpf-dump`, which links C and is outside the default build):
//!
//! ```text
//! for o in tests/bpf/*.bpf.o; do n=$(basename $o .bpf.o); libbpf-dump $o $DUMP/$n; done
//! LIBBPF_DUMP_DIR=$DUMP LIBBPF_DUMP_OBJS=tests/bpf cargo test -p bpfload --lib libbpf_compare -- --ignored --nocapture
//! ```
//!
//! For every program, loaded alone as libbpf-dump loads it, the instructions passed to
//! BPF_PROG_LOAD must equal libbpf's byte for byte, except the fd values in map references, which
//! must name the same map; and the result (ok / errno) must agree.
//!
//! Recorded run (2026-11-29, Linux 6.18, libbpf 1.7 via libbpf-sys):
//! - `tests/bpf` fixtures (22 objects): results agree for all 52 programs; the instructions of
//!   all 44 programs that relocate are identical to libbpf's byte for byte (map references by
//!   identity), including CO-RE, bpf-to-bpf calls, `bpf_loop` callbacks, global data,
//!   map-in-map, prog arrays, kconfig/ksym/kfunc externs and attach-BTF programs.
//! - corpus (`*-el.elf`): 26 programs identical; results agree for every program except those in
//!   `ksym-el` (libbpf fails the whole object on one unresolved strong ksym; bpfload only fails
//!   the programs that use it), `invalid-kfunc`/`kfunc-kmod` (kfuncs of test modules absent on
//!   this kernel: both fail, libbpf per program, bpfload for the object) and `struct_ops-el`
//!   (struct_ops of a test module absent here: both fail, different errno).

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::insn::{Insn, PSEUDO_MAP_FD, PSEUDO_MAP_VALUE};
use crate::{LoadError, Loader, Object};

fn decode(bytes: &[u8]) -> Vec<Insn> {
    bytes
        .chunks_exact(8)
        .map(|c| Insn::decode(c.try_into().unwrap(), cfg!(target_endian = "big")))
        .collect()
}

/// Replaces map fd immediates by the map's name, so fds can be compared by identity.
fn normalize(
    insns: &[Insn],
    fd_name: &dyn Fn(usize, i32) -> Option<String>,
) -> (Vec<Insn>, Vec<(usize, String)>) {
    let mut out = insns.to_vec();
    let mut names = Vec::new();
    for (i, insn) in insns.iter().enumerate() {
        if insn.is_ld_imm64() && (insn.src() == PSEUDO_MAP_FD || insn.src() == PSEUDO_MAP_VALUE) {
            names.push((
                i,
                fd_name(i, insn.imm).unwrap_or_else(|| format!("fd{}", insn.imm)),
            ));
            out[i].imm = 0;
        }
    }
    (out, names)
}

fn compare_object(obj_path: &Path, dump: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let summary: serde_json::Value = match std::fs::read_to_string(dump.join("summary.json")) {
        Ok(s) => serde_json::from_str(&s).unwrap(),
        Err(_) => return vec![format!("{}: no libbpf summary", obj_path.display())],
    };
    let obj = match Object::open_file(obj_path) {
        Ok(o) => o,
        Err(e) => {
            let lb_open = summary["open"].as_str().unwrap_or("?").to_string();
            eprintln!(
                "{}: open error: {e} (libbpf open: {lb_open})",
                obj_path.display()
            );
            return problems;
        }
    };
    for lp in summary["programs"].as_array().cloned().unwrap_or_default() {
        let name = lp["name"].as_str().unwrap().to_string();
        let lb_ok = lp["result"].as_str() == Some("ok");
        let lb_errno = lp["result"]["errno"].as_i64();
        // The result as libbpf reports it: fail-fast, this program alone.
        let (ours_ok, ours_errno) = match Loader::new().only_programs([name.as_str()]).load(&obj) {
            Ok(_) => (true, None),
            Err(LoadError::Program { source, .. }) => (false, Some(source.errno().raw() as i64)),
            Err(LoadError::Slot { .. }) => (false, Some(libc::EBADF as i64)),
            Err(e) => {
                problems.push(format!("{name}: our load failed: {e}"));
                continue;
            }
        };
        // The instructions, also when the kernel refuses the program.
        let (ours_insns, fd_names): (Vec<Insn>, HashMap<i32, String>) = match Loader::new()
            .only_programs([name.as_str()])
            .keep_going(true)
            .load(&obj)
        {
            Ok(l) => (
                l.program(&name)
                    .map(|p| p.insns().to_vec())
                    .unwrap_or_default(),
                l.maps()
                    .iter()
                    // The kernel's name, as libbpf-dump reports it (at most 15 bytes).
                    .map(|m| (m.fd().as_raw_fd(), m.name().chars().take(15).collect()))
                    .collect(),
            ),
            Err(_) => (Vec::new(), HashMap::new()),
        };
        let verdict = if ours_ok == lb_ok && (lb_ok || ours_errno == lb_errno) {
            "same result"
        } else {
            "DIFFERENT RESULT"
        };
        eprintln!(
            "{} {name}: libbpf {} / ours {} -> {verdict}",
            obj.name(),
            if lb_ok {
                "ok".into()
            } else {
                format!("errno {lb_errno:?}")
            },
            if ours_ok {
                "ok".into()
            } else {
                format!("errno {ours_errno:?}")
            }
        );
        if verdict != "same result" {
            problems.push(format!("{name}: result differs (libbpf ok={lb_ok} {lb_errno:?}, ours ok={ours_ok} {ours_errno:?})"));
        }
        let Ok(lb_bytes) = std::fs::read(dump.join(format!("{name}.insns"))) else {
            continue;
        };
        if ours_insns.is_empty() {
            continue;
        }
        let lb_insns = decode(&lb_bytes);
        let lb_refs: HashMap<usize, String> = lp["map_refs"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|r| {
                        (
                            r["insn"].as_u64().unwrap() as usize,
                            r["map"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let (a, an) = normalize(&lb_insns, &|i, _| lb_refs.get(&i).cloned());
        let (b, bn) = normalize(&ours_insns, &|_, fd| fd_names.get(&fd).cloned());
        if a != b {
            let first = a
                .iter()
                .zip(&b)
                .position(|(x, y)| x != y)
                .unwrap_or(a.len().min(b.len()));
            problems.push(format!(
                "{name}: instructions differ (libbpf {} insns, ours {}), first at #{first}: {:?} vs {:?}",
                a.len(),
                b.len(),
                a.get(first),
                b.get(first)
            ));
        } else if an != bn {
            problems.push(format!(
                "{name}: map references differ: libbpf {an:?} ours {bn:?}"
            ));
        } else {
            eprintln!("    {} insns identical ({} map refs)", a.len(), an.len());
        }
    }
    problems
}

#[test]
#[ignore = "needs libbpf-dump output: set LIBBPF_DUMP_DIR and LIBBPF_DUMP_OBJS"]
fn libbpf_compare() {
    let (Ok(dump), Ok(objs)) = (
        std::env::var("LIBBPF_DUMP_DIR"),
        std::env::var("LIBBPF_DUMP_OBJS"),
    ) else {
        panic!("set LIBBPF_DUMP_DIR and LIBBPF_DUMP_OBJS");
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&objs)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "o" || e == "elf"));
    files.sort();
    let mut problems = Vec::new();
    for f in files {
        let stem = f
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".bpf.o", "")
            .replace(".elf", "");
        let d = Path::new(&dump).join(&stem);
        if d.is_dir() {
            problems.extend(
                compare_object(&f, &d)
                    .into_iter()
                    .map(|p| format!("{stem}: {p}")),
            );
        }
    }
    for p in &problems {
        eprintln!("PROBLEM {p}");
    }
    assert!(problems.is_empty(), "{} differences", problems.len());
}
