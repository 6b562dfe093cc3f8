//! `bpfload`: load a BPF object into the kernel the way libbpf does, or show what it holds.
//!
//! Subcommands live in their own modules: `load`, `inspect`. Output for a person
//! goes to stdout; `--json` prints one JSON document instead.

mod inspect;

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
    /// Show an object's programs, maps, global data and relocations without loading it.
    Inspect(inspect::InspectArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(args) => inspect::run(args),
    };
    match result {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("bpfload: {msg}");
            ExitCode::from(2)
        }
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
