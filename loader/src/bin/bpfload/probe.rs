//! `bpfload probe [--token-path PATH] [--json]`: each kernel feature object loading consumes,
//! supported / missing / unknown, how that was decided, and the errno where a probe failed.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::{Matches, Opt, Sub};

pub const SPEC: Sub = Sub {
    name: "probe",
    about:
        "Probe the kernel features object loading depends on (with a token's own cache if given)",
    opts: &[
        Opt::value(
            "token-path",
            "PATH",
            "Probe through a BPF token created from this bpffs mount (its own cache); without it, \
             the process-wide cache with no token",
        ),
        Opt::flag("json", "Print one JSON document instead of text"),
    ],
    pos: None,
};

pub struct ProbeArgs {
    /// Probe through a token from this bpffs mount (its own cache).
    pub token_path: Option<PathBuf>,
    pub json: bool,
}

impl ProbeArgs {
    pub fn from_matches(m: &Matches) -> ProbeArgs {
        ProbeArgs {
            token_path: m.value("token-path").map(PathBuf::from),
            json: m.flag("json"),
        }
    }
}

pub fn run(args: ProbeArgs) -> Result<ExitCode, String> {
    let report = bpfload_probe::report(args.token_path.as_deref()).map_err(|e| e.to_string())?;
    if args.json {
        let mut j = crate::json::Json::new();
        crate::reports::probe(&mut j, &report);
        outln!("{}", j.finish());
    } else {
        out!("{report}");
    }
    Ok(ExitCode::SUCCESS)
}
