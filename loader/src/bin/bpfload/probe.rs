//! `bpfload probe [--token-path PATH] [--json]`: each kernel feature object loading consumes,
//! supported / missing / unknown, how that was decided, and the errno where a probe failed.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct ProbeArgs {
    /// Probe through a BPF token created from this bpffs mount (its own cache); without it, the
    /// process-wide cache with no token.
    #[arg(long, value_name = "PATH")]
    pub token_path: Option<PathBuf>,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: ProbeArgs) -> Result<ExitCode, String> {
    let report = bpfload_probe::report(args.token_path.as_deref()).map_err(|e| e.to_string())?;
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&report.to_json()).unwrap_or_default()
        );
    } else {
        out!("{report}");
    }
    Ok(ExitCode::SUCCESS)
}
