//! `bpfload`: load a BPF object into the kernel the way libbpf does, or show what it holds.
//!
//! Subcommands live in their own modules: `load`, `inspect`. Output for a person
//! goes to stdout; `--json` prints one JSON document instead.

#![forbid(unsafe_code)]

/// `println!` that never panics: a closed stdout (`bpfload ... | head`) ends the process quietly
/// with the shell's SIGPIPE status instead of a panic.
macro_rules! outln {
    ($($t:tt)*) => { $crate::write_out(format_args!("{}\n", format_args!($($t)*))) };
}

/// `print!` counterpart of [`outln!`].
macro_rules! out {
    ($($t:tt)*) => { $crate::write_out(format_args!($($t)*)) };
}

mod cli;
mod core;
mod inspect;
mod json;
mod load;
mod probe;
mod reports;
mod token;

use std::path::PathBuf;
use std::process::ExitCode;

/// The demo object built into the binary: an xdp packet counter configured by
/// `const volatile` globals (source: tests/bpf/demo.bpf.c).
pub const DEMO_OBJECT: &[u8] = include_bytes!("../../../../tests/bpf/demo.bpf.o");
pub const DEMO_NAME: &str = "demo.bpf.o";

const ABOUT: &str = "Pure-Rust BPF object loader (libbpf's loading behaviour, BPF tokens)";

/// The subcommands, in the order `--help` lists them.
static COMMANDS: &[cli::Sub] = &[load::SPEC, inspect::SPEC, probe::SPEC, token::SPEC];

fn main() -> ExitCode {
    let m = match cli::parse(ABOUT, COMMANDS, std::env::args_os().skip(1)) {
        Ok(m) => m,
        Err(cli::Exit(code)) => return code,
    };
    let result = match m.command() {
        "load" => load::LoadArgs::from_matches(&m).map(load::run),
        "inspect" => Ok(inspect::run(inspect::InspectArgs::from_matches(&m))),
        "probe" => Ok(probe::run(probe::ProbeArgs::from_matches(&m))),
        _ => Ok(token::run(token::TokenArgs::from_matches(&m))),
    };
    match result {
        Ok(Ok(code)) => code,
        Ok(Err(msg)) => {
            eprintln!("bpfload: {msg}");
            ExitCode::from(2)
        }
        Err(cli::Exit(code)) => code,
    }
}

/// Writes to stdout; exits with status 141 (128 + SIGPIPE) if the reader went away.
pub fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        eprintln!("bpfload: writing output: {e}");
        std::process::exit(2);
    }
}

/// Reads OBJECT, or the built-in demo when it is absent. Returns (display name, bytes).
pub fn read_object(path: Option<&PathBuf>) -> Result<(String, Vec<u8>), String> {
    match path {
        None => Ok((format!("{DEMO_NAME} (built-in demo)"), DEMO_OBJECT.to_vec())),
        Some(p) => std::fs::read(p)
            .map(|b| (p.display().to_string(), b))
            .map_err(|e| format!("reading {}: {e}", p.display())),
    }
}
