//! Loader tests against the real kernel: the project's fixtures and the shared corpus.

pub(crate) mod elf_edit;
pub(crate) mod fixtures;
mod kernel;
mod libbpf_compare;
mod libbpf_parity;

/// Whether env `CI` is `true`: then tests must run, never skip.
pub(crate) fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Prints `SKIP <what>: <why>` and returns false, or panics under `CI=true` (the loader's copy
/// of `bpfload_tests::skip_or_panic`: unit tests cannot depend on the tests crate).
pub(crate) fn skip_or_panic(what: &str, why: &str) -> bool {
    skip_or_panic_in(in_ci(), what, why)
}

fn skip_or_panic_in(ci: bool, what: &str, why: &str) -> bool {
    if ci {
        panic!("{what}: {why}, and CI=true requires this test to run");
    }
    eprintln!("SKIP {what}: {why}");
    false
}

/// Whether the effective uid is 0 (field 2 of `Uid:` in /proc/self/status; field 1 is the real
/// uid, which differs under setuid). /proc avoids an unsafe geteuid() outside the sys crate.
pub(crate) fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| euid_is_root(&s))
}

fn euid_is_root(status: &str) -> bool {
    status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0")
}

#[test]
fn skip_or_panic_skips_outside_ci() {
    assert!(!skip_or_panic_in(false, "a test", "a reason"));
}

#[test]
#[should_panic(expected = "CI=true requires this test to run")]
fn skip_or_panic_panics_under_ci() {
    skip_or_panic_in(true, "a test", "a reason");
}

#[test]
fn root_means_effective_uid() {
    // A setuid-root process run by uid 1000: real 1000, effective 0.
    assert!(euid_is_root("Name:\tx\nUid:\t1000\t0\t0\t0\n"));
    // Root that dropped its effective uid: real 0, effective 1000.
    assert!(!euid_is_root("Uid:\t0\t1000\t1000\t1000\n"));
    assert!(!euid_is_root("Name:\tx\n"));
}

/// Serializes the tests that count fds or use the kernel heavily.
pub(crate) static KERNEL_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
mod scale;
