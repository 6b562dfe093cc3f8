//! `libbpf-dump` writes one `.insns` file per program (whole 8-byte instructions, as many as the
//! summary says) and a summary whose map references all name a map. Needs root to load.

use std::process::Command;

#[test]
fn libbpf_dump_writes_instructions_and_summary() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must run this test as root"
        );
        eprintln!("SKIP libbpf_dump_writes_instructions_and_summary: needs root");
        return;
    }
    let object = bpfload_compat::corpus::repo_root().join("tests/bpf/globals.bpf.o");
    let out = std::env::temp_dir().join(format!("libbpf-dump-test-{}", std::process::id()));
    let status = Command::new(env!("CARGO_BIN_EXE_libbpf-dump"))
        .arg(&object)
        .arg(&out)
        .status()
        .expect("libbpf-dump runs");
    assert!(
        status.success(),
        "libbpf-dump failed on {}",
        object.display()
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).expect("summary written"))
            .expect("summary is JSON");
    assert_eq!(summary["open"], "ok");
    let progs = summary["programs"].as_array().expect("programs");
    assert!(!progs.is_empty());
    let mut refs = 0;
    for p in progs {
        let name = p["name"].as_str().expect("name");
        assert_eq!(p["result"], "ok", "{name} loads with libbpf");
        let insns = std::fs::read(out.join(format!("{name}.insns"))).expect("insns written");
        assert_eq!(
            insns.len(),
            p["insn_cnt"].as_u64().unwrap() as usize * 8,
            "{name}"
        );
        for r in p["map_refs"].as_array().expect("map_refs") {
            assert!(
                r["map"].as_str().is_some_and(|m| !m.is_empty()),
                "{name}: {r}"
            );
            refs += 1;
        }
    }
    assert!(refs > 0, "globals.bpf.o references its global data maps");
    let _ = std::fs::remove_dir_all(&out);
}
