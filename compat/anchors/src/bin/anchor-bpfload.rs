//! The minimal loader with bpfload: open the object named on the command line, load every program.
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: anchor-bpfload OBJECT");
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
            eprintln!("anchor-bpfload: {e}");
            ExitCode::FAILURE
        }
    }
}
