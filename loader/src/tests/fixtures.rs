//! Loads the clang-built fixtures of `tests/bpf` into the running kernel.

use std::path::PathBuf;

use crate::{Loader, Object};

pub(crate) fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/bpf")
        .join(name)
}

/// Every compiled fixture (`tests/bpf/*.bpf.o`), sorted.
pub(crate) fn fixture_objects() -> Vec<PathBuf> {
    let dir = fixture("");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".bpf.o"))
        .collect();
    v.sort();
    assert!(v.len() >= 10, "fixtures missing in {}", dir.display());
    v
}

/// Root check (effective uid): privileged tests skip when not root, but must run (and so panic)
/// under CI=true.
pub(crate) fn require_root(what: &str) -> bool {
    super::is_root() || super::skip_or_panic(what, "needs root")
}

#[test]
fn fixtures_load_keep_going() {
    if !require_root("fixtures_load_keep_going") {
        return;
    }
    // Every fixture loads at object level; program failures (the ones the fixtures provoke on
    // purpose, and trampolines this kernel refuses) are reported per program.
    let (mut loaded, mut failed) = (0, 0);
    let dir = fixture("");
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "o"))
    {
        let obj = Object::open_file(p).unwrap();
        match Loader::new().keep_going(true).load(&obj) {
            Ok(l) => {
                for prog in l.programs() {
                    let res = match prog.result() {
                        Ok(_) => {
                            loaded += 1;
                            "ok".to_string()
                        }
                        Err(e) => {
                            failed += 1;
                            format!("ERR {e}")
                        }
                    };
                    eprintln!(
                        "{}: {} ({}) {} insns: {res}",
                        obj.name(),
                        prog.name(),
                        prog.prog_type_name(),
                        prog.insn_count()
                    );
                }
            }
            Err(e) => panic!("{}: object-level load error: {e}", obj.name()),
        }
    }
    assert!(
        loaded > 3 * failed,
        "{loaded} programs loaded, {failed} failed"
    );
}
