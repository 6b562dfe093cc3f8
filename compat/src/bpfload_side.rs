//! bpfload through its library API, as a user calls it.

use std::path::Path;

use crate::bench::Op;

/// Runs one benchmark operation with bpfload.
pub fn run_once(op: Op, path: &Path) -> Result<(), String> {
    match op {
        Op::Open => bpfload::Object::open_file(path)
            .map(drop)
            .map_err(|e| e.to_string()),
        Op::Prepare | Op::Load => {
            Err("bpfload: this build has no Loader yet (open only)".to_string())
        }
    }
}
