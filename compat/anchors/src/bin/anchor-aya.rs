//! The minimal loader with aya 0.14: open the object named on the command line, load every
//! program whose type aya loads without attach-specific arguments.
use std::process::ExitCode;

use aya::programs::Program;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: anchor-aya OBJECT");
        return ExitCode::from(2);
    };
    let mut ebpf = match aya::Ebpf::load_file(&path) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("anchor-aya: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut loaded = 0;
    for (name, prog) in ebpf.programs_mut() {
        let r = match prog {
            Program::KProbe(p) => p.load(),
            Program::UProbe(p) => p.load(),
            Program::TracePoint(p) => p.load(),
            Program::SocketFilter(p) => p.load(),
            Program::Xdp(p) => p.load(),
            Program::SchedClassifier(p) => p.load(),
            Program::CgroupSkb(p) => p.load(),
            Program::CgroupSysctl(p) => p.load(),
            Program::CgroupSockopt(p) => p.load(),
            Program::SockOps(p) => p.load(),
            Program::SkMsg(p) => p.load(),
            Program::SkSkb(p) => p.load(),
            Program::PerfEvent(p) => p.load(),
            Program::RawTracePoint(p) => p.load(),
            _ => {
                eprintln!("anchor-aya: {name}: needs attach arguments, not loaded");
                continue;
            }
        };
        if let Err(e) = r {
            eprintln!("anchor-aya: {name}: {e}");
            return ExitCode::FAILURE;
        }
        loaded += 1;
    }
    println!("{loaded} programs loaded");
    ExitCode::SUCCESS
}
