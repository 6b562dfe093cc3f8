//! `bpfload load [OBJECT]`: load an object (or the built-in demo) and report, per map and per
//! program, what the kernel did.
//!
//! Programs are loaded in keep-going mode, so one refused program does not hide the others'
//! results; the exit status is 0 only if every autoload program and every map loaded.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bpfload::{LoadError, Loaded, Loader, Object};

use crate::cli::{Exit, Matches, Opt, Pos, Sub};
use crate::json::Json;

/// Verifier log lines shown per failed program in text output.
const LOG_TAIL_LINES: usize = 12;

pub const SPEC: Sub = Sub {
    name: "load",
    about: "Load an object's maps, BTF and programs into the kernel (the built-in demo without OBJECT)",
    opts: &[
        Opt {
            repeat: true,
            empty_ok: true,
            ..Opt::value(
                "program",
                "NAME",
                "Load only this program (repeatable); every other program gets autoload off",
            )
        },
        Opt::flag("json", "Print one JSON document instead of text"),
        Opt::value(
            "pin",
            "DIR",
            "Pin root for maps declared with `pinning = LIBBPF_PIN_BY_NAME` (default /sys/fs/bpf)",
        ),
        Opt::value(
            "emit-insns",
            "DIR",
            "Write the exact instructions passed to BPF_PROG_LOAD to DIR/<program>.insns",
        ),
        // The empty value is meaningful here: it disables tokens.
        Opt {
            empty_ok: true,
            ..Opt::value(
                "token-path",
                "PATH",
                "Create a BPF token from this bpffs mount (\"\" disables tokens; default: libbpf's \
                 implicit /sys/fs/bpf, or LIBBPF_BPF_TOKEN_PATH)",
            )
        },
        Opt::flag(
            "lenient-externs",
            "Resolve externs per program: only the kernel symbols and kfuncs used by the programs \
             being loaded must exist, so with --program a program that does not use a missing one \
             loads (if a selected program uses it, the load still fails, naming it). Default, as \
             libbpf: a missing strong extern fails the whole load",
        ),
    ],
    pos: Some(Pos {
        name: "OBJECT",
        required: false,
        default: None,
        help: "The BPF object file; without it, the demo object built into this binary",
    }),
};

pub struct LoadArgs {
    /// The BPF object file; without it, the demo object built into this binary.
    pub object: Option<PathBuf>,
    /// Load only these programs; every other program gets autoload off.
    pub programs: Vec<String>,
    pub json: bool,
    /// Pin root for maps declared with `pinning = LIBBPF_PIN_BY_NAME`.
    pub pin: Option<PathBuf>,
    /// Where to write the instructions passed to BPF_PROG_LOAD.
    pub emit_insns: Option<PathBuf>,
    /// bpffs mount to create a token from ("" disables tokens).
    pub token_path: Option<OsString>,
    pub lenient_externs: bool,
}

impl LoadArgs {
    pub fn from_matches(m: &Matches) -> Result<LoadArgs, Exit> {
        Ok(LoadArgs {
            object: m.pos().map(PathBuf::from),
            programs: m.strings("program")?,
            json: m.flag("json"),
            pin: m.value("pin").map(PathBuf::from),
            emit_insns: m.value("emit-insns").map(PathBuf::from),
            token_path: m.value("token-path"),
            lenient_externs: m.flag("lenient-externs"),
        })
    }
}

pub fn run(args: LoadArgs) -> Result<ExitCode, String> {
    let (display, bytes) = crate::read_object(args.object.as_ref())?;
    let object_name = match &args.object {
        Some(p) => p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or(display.clone()),
        None => crate::DEMO_NAME.to_string(),
    };
    let object =
        Object::open_bytes(&object_name, &bytes).map_err(|e| format!("opening {display}: {e}"))?;
    for name in &args.programs {
        if object.program(name).is_none() {
            let known: Vec<&str> = object.programs().map(|p| p.name()).collect();
            return Err(format!(
                "--program {name}: no such program in {display} (it has: {})",
                known.join(", ")
            ));
        }
    }

    let mut loader = Loader::new()
        .keep_going(true)
        .lenient_externs(args.lenient_externs);
    if !args.programs.is_empty() {
        loader = loader.only_programs(&args.programs);
    }
    if let Some(dir) = &args.pin {
        loader = loader.pin_root(dir);
    }
    if let Some(p) = &args.token_path {
        loader = loader.token_path(p);
    }

    match loader.load_reporting(&object) {
        Ok(loaded) => {
            let emitted = match &args.emit_insns {
                Some(dir) => emit_insns(&loaded, dir)?,
                None => Vec::new(),
            };
            let ok = loaded.all_loaded();
            if args.json {
                outln!("{}", loaded_json(&display, &loaded, ok, &emitted));
            } else {
                print_loaded(&display, &loaded, &emitted);
            }
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Err(bpfload::LoadFailure { error: err, token }) => {
            if args.json {
                // Keys in sorted order (see json.rs).
                let mut j = Json::new();
                j.begin_object();
                match error_errno(&err) {
                    Some(e) => j.key("errno").i64(e.into()),
                    None => j.key("errno").null(),
                };
                j.field_str("error", &err.to_string());
                j.field_str("object", &display);
                j.key("ok").bool(false);
                // A failed load still reports its token: the explicit token that failed, or
                // what the token step did before a later step failed.
                if let Some(t) = &token {
                    j.key("token");
                    crate::reports::token_report(&mut j, t);
                }
                j.end();
                outln!("{}", j.finish());
            } else {
                outln!("object {display}");
                print_plan(&object, &args.programs);
                outln!("load failed: {err}");
                if error_errno(&err) == Some(libc::EPERM) && !has_cap_bpf() {
                    outln!(
                        "hint: creating BPF maps and programs needs root (CAP_BPF, CAP_PERFMON, \
                         CAP_NET_ADMIN), or a BPF token from a delegating bpffs (--token-path)"
                    );
                }
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Whether this process has CAP_BPF (bit 39) or CAP_SYS_ADMIN (bit 21) in its effective set.
fn has_cap_bpf() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let hex = s
                .lines()
                .find_map(|l| l.strip_prefix("CapEff:"))?
                .trim()
                .to_string();
            u64::from_str_radix(&hex, 16).ok()
        })
        .is_some_and(|caps| caps & (1 << 39 | 1 << 21) != 0)
}

/// The errno behind a failed load (`LoadError::errno`: the kernel's, or libbpf's errno for the
/// same failure; EINVAL for this loader's own checks).
fn error_errno(err: &LoadError) -> Option<i32> {
    Some(err.errno().raw())
}

/// What would have loaded, for the report of an object-level failure.
fn print_plan(object: &Object, only: &[String]) {
    for p in object.programs() {
        let on = if only.is_empty() {
            p.autoload()
        } else {
            only.iter().any(|n| n == p.name())
        };
        if on {
            outln!(
                "  program {:<24} {:<16} {:>5} insns  not loaded",
                p.name(),
                p.prog_type_name(),
                p.insn_count()
            );
        }
    }
}

/// Writes DIR/<program>.insns (raw `struct bpf_insn`s, host byte order) for every program that was
/// handed to the kernel. Returns the files written.
fn emit_insns(loaded: &Loaded, dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("--emit-insns: creating {}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for p in loaded.programs() {
        // Only programs that reached BPF_PROG_LOAD: loaded, refused by the kernel, or loaded and
        // then undone by a later failure. A program that failed before (relocation, attach
        // target, unknown section) was never passed to the kernel.
        let passed = matches!(
            p.result(),
            Ok(_)
                | Err(bpfload::ProgramError::Kernel { .. } | bpfload::ProgramError::Object { .. })
        );
        if !passed || p.insns().is_empty() {
            continue;
        }
        let mut bytes = Vec::with_capacity(p.insns().len() * bpfload::Insn::SIZE);
        for i in p.insns() {
            bytes.extend_from_slice(&i.to_bytes());
        }
        let path = dir.join(format!("{}.insns", p.name()));
        std::fs::write(&path, bytes)
            .map_err(|e| format!("--emit-insns: writing {}: {e}", path.display()))?;
        out.push(path);
    }
    Ok(out)
}

/// The `load --json` document of a load that ran (keys in sorted order, see json.rs).
fn loaded_json(display: &str, loaded: &Loaded, ok: bool, emitted: &[PathBuf]) -> String {
    let mut j = Json::new();
    j.begin_object();
    j.key("emitted").begin_array();
    for p in emitted {
        j.str(&p.display().to_string());
    }
    j.end();
    j.key("maps").begin_array();
    for m in loaded.maps() {
        let d = m.def();
        let id = bpfload_syscall::info::map_info(m.fd()).ok().map(|i| i.id);
        j.begin_object();
        j.field_u64("flags", d.map_flags.into());
        j.key("id").opt_u64(id.map(u64::from));
        j.field_u64("key_size", d.key_size.into());
        j.field_u64("max_entries", d.max_entries.into());
        j.field_str("name", m.name());
        j.key("pin")
            .opt_str(m.pin_path().map(|p| p.display().to_string()).as_deref());
        j.key("reused").bool(m.reused());
        j.field_str("type", bpfload::names::map_type_name(d.map_type));
        j.field_u64("value_size", d.value_size.into());
        j.end();
    }
    j.end();
    j.field_str("object", display);
    j.key("ok").bool(ok);
    j.key("programs").begin_array();
    for p in loaded.programs() {
        j.begin_object();
        match p.result() {
            Ok(fd) => {
                let id = bpfload_syscall::info::prog_info(fd).ok().map(|i| i.id);
                j.key("id").opt_u64(id.map(u64::from));
                j.field_u64("insns", p.insn_count() as u64);
                j.key("loaded").bool(true);
                j.field_str("name", p.name());
                j.field_str("section", p.section());
                j.field_str("type", p.prog_type_name());
            }
            Err(e) => {
                j.key("errno").i64(e.errno().raw().into());
                j.field_str("errno_name", e.errno().name());
                j.field_str("error", &e.to_string());
                j.field_u64("insns", p.insn_count() as u64);
                j.key("loaded").bool(false);
                j.field_str("name", p.name());
                j.field_str("section", p.section());
                j.field_str("type", p.prog_type_name());
                j.field_str("verifier_log_tail", &e.log_tail(LOG_TAIL_LINES));
            }
        }
        j.end();
    }
    j.end();
    j.key("token");
    crate::reports::token_report(&mut j, loaded.token_report());
    j.end();
    j.finish()
}

fn print_loaded(display: &str, loaded: &Loaded, emitted: &[PathBuf]) {
    outln!("object {display}");
    outln!("token: {}", token_line(loaded.token_report()));
    for m in loaded.maps() {
        let d = m.def();
        let id = bpfload_syscall::info::map_info(m.fd())
            .map(|i| format!("id {}", i.id))
            .unwrap_or_default();
        let how = if m.reused() { "reused pin" } else { "created" };
        let pin = m
            .pin_path()
            .map(|p| format!(", pinned at {}", p.display()))
            .unwrap_or_default();
        outln!(
            "  map     {:<24} {:<16} max {:>8}  {how} ({id}{pin})",
            m.name(),
            bpfload::names::map_type_name(d.map_type),
            d.max_entries
        );
    }
    let (mut ok, mut failed) = (0, 0);
    for p in loaded.programs() {
        match p.result() {
            Ok(fd) => {
                ok += 1;
                let id = bpfload_syscall::info::prog_info(fd)
                    .map(|i| format!(" (id {})", i.id))
                    .unwrap_or_default();
                outln!(
                    "  program {:<24} {:<16} {:>5} insns  loaded{id}",
                    p.name(),
                    p.prog_type_name(),
                    p.insn_count()
                );
            }
            Err(e) => {
                failed += 1;
                outln!(
                    "  program {:<24} {:<16} {:>5} insns  FAILED: {}",
                    p.name(),
                    p.prog_type_name(),
                    p.insn_count(),
                    first_line(&e.to_string())
                );
                let tail = e.log_tail(LOG_TAIL_LINES);
                if !tail.is_empty() {
                    outln!("    verifier log (last lines):");
                    for line in tail.lines() {
                        outln!("    | {line}");
                    }
                }
            }
        }
    }
    for p in emitted {
        outln!("  wrote {}", p.display());
    }
    outln!(
        "{}: {ok} of {} programs loaded, {} maps ready",
        if failed == 0 { "ok" } else { "FAILED" },
        ok + failed,
        loaded.maps().len()
    );
}

/// The token report in one short line (the full text, with the errno and hint, is in `--json`).
fn token_line(r: &bpfload::token::TokenReport) -> String {
    // TokenReport's Display keeps an implicit miss free of errnos (libbpf's "failed (-95) to
    // create BPF token" lines get mistaken for the cause of unrelated failures); the errno stays
    // in --json's "error".
    r.to_string()
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}
