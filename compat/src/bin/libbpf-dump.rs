//! `libbpf-dump OBJECT OUTDIR [--program NAME]...`
//!
//! Loads each program of OBJECT alone with C libbpf 1.7 and writes, per program, the final
//! instructions passed to BPF_PROG_LOAD to `OUTDIR/<prog>.insns` (raw 8-byte `struct bpf_insn`),
//! plus `OUTDIR/summary.json` with per-program results (ok / errno + libbpf's message) and the
//! map behind every `ld_imm64` map fd. Exit status: 0 when the object opened, 2 on usage errors,
//! 1 when libbpf refused to open it.

use std::path::PathBuf;
use std::process::ExitCode;

use bpfload_compat::libbpf_side;

fn usage() -> ExitCode {
    eprintln!("usage: libbpf-dump OBJECT OUTDIR [--program NAME]...");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let mut positional = Vec::new();
    let mut only = Vec::new();
    while let Some(a) = args.next() {
        if a == "--program" {
            match args.next() {
                Some(n) => only.push(n.to_string_lossy().into_owned()),
                None => return usage(),
            }
        } else if a == "-h" || a == "--help" {
            return usage();
        } else {
            positional.push(PathBuf::from(a));
        }
    }
    let [object, outdir] = positional.as_slice() else {
        return usage();
    };
    libbpf_side::capture_libbpf_log();
    let dump = libbpf_side::dump_object(object, &only);
    if let Err(e) = std::fs::create_dir_all(outdir) {
        eprintln!("libbpf-dump: cannot create {}: {e}", outdir.display());
        return ExitCode::FAILURE;
    }
    for p in &dump.programs {
        let path = outdir.join(format!("{}.insns", p.name));
        if let Err(e) = std::fs::write(&path, &p.insns) {
            eprintln!("libbpf-dump: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    let json = serde_json::to_string_pretty(&dump.to_json()).expect("JSON values serialize");
    if let Err(e) = std::fs::write(outdir.join("summary.json"), json.as_bytes()) {
        eprintln!("libbpf-dump: cannot write summary.json: {e}");
        return ExitCode::FAILURE;
    }
    for p in &dump.programs {
        let result = match &p.result {
            Ok(()) => "ok".to_string(),
            Err(f) => format!(
                "{} ({})",
                bpfload_compat::kernel::errno_name(f.errno),
                f.errno
            ),
        };
        println!(
            "{:<32} {:<40} {:>6} insns  {result}",
            p.name,
            p.section,
            p.insns.len() / 8
        );
    }
    match &dump.open {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!(
                "libbpf-dump: libbpf refused {}: errno {} {}",
                object.display(),
                f.errno,
                f.message
            );
            ExitCode::FAILURE
        }
    }
}
