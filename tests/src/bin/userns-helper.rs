//! Runs a command as uid 0 of a fresh user + mount namespace with a bpffs whose delegation the
//! privileged parent set; see `bpfload_tests::userns` for the protocol and the options.

fn main() {
    std::process::exit(bpfload_tests::userns::helper_main());
}
