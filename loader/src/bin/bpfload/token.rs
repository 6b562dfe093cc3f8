//! `bpfload token [PATH]`: can a BPF token be created from this bpffs, and if not, why; what the
//! mount and the token delegate.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::{Matches, Opt, Pos, Sub};

pub const SPEC: Sub = Sub {
    name: "token",
    about: "Check whether a BPF token can be created from a bpffs mount (default /sys/fs/bpf), and why not",
    opts: &[Opt::flag("json", "Print one JSON document instead of text")],
    pos: Some(Pos {
        name: "PATH",
        required: false,
        default: Some("/sys/fs/bpf"),
        help: "The bpffs mount to create the token from",
    }),
};

pub struct TokenArgs {
    /// The bpffs mount to create the token from.
    pub path: PathBuf,
    pub json: bool,
}

impl TokenArgs {
    pub fn from_matches(m: &Matches) -> TokenArgs {
        TokenArgs {
            path: m.pos().map(PathBuf::from).unwrap_or_default(),
            json: m.flag("json"),
        }
    }
}

/// Exit status 0 when a token can be created, 1 when not (the report says why).
pub fn run(args: TokenArgs) -> Result<ExitCode, String> {
    let status = bpfload::token::token_status(&args.path);
    if args.json {
        let mut j = crate::json::Json::new();
        crate::reports::token_status(&mut j, &status);
        outln!("{}", j.finish());
    } else {
        out!("{status}");
    }
    Ok(if status.created {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
