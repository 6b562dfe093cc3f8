//! The minimal loader with libbpf-rs (C libbpf 1.7, libelf and zlib linked statically): open the
//! object named on the command line, load every program.
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: anchor-libbpf-rs OBJECT");
        return ExitCode::from(2);
    };
    let result = libbpf_rs::ObjectBuilder::default()
        .open_file(&path)
        .and_then(|o| o.load());
    match result {
        Ok(obj) => {
            println!("{} programs loaded", obj.progs().count());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("anchor-libbpf-rs: {e}");
            ExitCode::FAILURE
        }
    }
}
