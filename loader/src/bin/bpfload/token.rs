//! `bpfload token [PATH]`: can a BPF token be created from this bpffs, and if not, why; what the
//! mount and the token delegate.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct TokenArgs {
    /// The bpffs mount to create the token from.
    #[arg(default_value = "/sys/fs/bpf")]
    pub path: PathBuf,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Exit status 0 when a token can be created, 1 when not (the report says why).
pub fn run(args: TokenArgs) -> Result<ExitCode, String> {
    let status = bpfload::token::token_status(&args.path);
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&status.to_json()).unwrap_or_default()
        );
    } else {
        out!("{status}");
    }
    Ok(if status.created {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
