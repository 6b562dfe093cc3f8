//! `cargo run` (as root): loads the XDP counter with bpfload, attaches it to `lo` with aya,
//! sends 100 packets to 127.0.0.1 and prints the counter aya reads.
fn main() -> std::process::ExitCode {
    match bpfload_aya_interop::run(100, 1, std::path::Path::new("/sys/fs/bpf")) {
        Ok(r) => {
            println!(
                "sent {} packets to 127.0.0.1; counter read through aya: {} (increment {}); token: {}",
                r.sent, r.counter, r.increment, r.token
            );
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("aya-interop: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
