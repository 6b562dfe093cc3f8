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

mod core;
mod inspect;
mod load;
mod probe;
mod token;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The demo object built into the binary: an xdp packet counter configured by
/// `const volatile` globals (source: tests/bpf/demo.bpf.c).
pub const DEMO_OBJECT: &[u8] = include_bytes!("../../../../tests/bpf/demo.bpf.o");
pub const DEMO_NAME: &str = "demo.bpf.o";

#[derive(Parser, Debug)]
#[command(
    name = "bpfload",
    version,
    about = "Pure-Rust BPF object loader (libbpf's loading behaviour, BPF tokens)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Load an object's maps, BTF and programs into the kernel (the built-in demo without OBJECT).
    Load(load::LoadArgs),
    /// Show an object's programs, maps, global data and relocations without loading it.
    Inspect(inspect::InspectArgs),
    /// Probe the kernel features object loading depends on (with a token's own cache if given).
    Probe(probe::ProbeArgs),
    /// Check whether a BPF token can be created from a bpffs mount (default /sys/fs/bpf), and why not.
    Token(token::TokenArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Load(args) => load::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Probe(args) => probe::run(args),
        Command::Token(args) => token::run(args),
    };
    match result {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("bpfload: {msg}");
            ExitCode::from(2)
        }
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
