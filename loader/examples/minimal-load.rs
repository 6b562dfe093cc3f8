//! The like-for-like counterpart of issue 8's size anchors ("a minimal tool that loads every
//! program"): open the object named on the command line, load it, report failure. Built fully
//! static by scripts/static-build.sh next to the `bpfload` CLI, to separate the loader's size from
//! the CLI's (argument parsing, inspect/probe/token, text and JSON output). compat/anchors builds this
//! same file as `anchor-bpfload`, next to the same tool written against libbpf-rs and aya
//! (scripts/anchor-sizes.sh).

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: minimal-load OBJECT");
        return ExitCode::from(2);
    };
    let result = bpfload::Object::open_file(&path)
        .map_err(|e| e.to_string())
        .and_then(|o| bpfload::Loader::new().load(&o).map_err(|e| e.to_string()));
    match result {
        Ok(loaded) => {
            println!("{} programs loaded", loaded.programs().len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("minimal-load: {e}");
            ExitCode::FAILURE
        }
    }
}
