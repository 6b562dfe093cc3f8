//! fds 0..=2 are never handed out: a kernel answer that lands on a closed stdin is moved above 2.
//!
//! This binary has a single test because it closes fd 0 for a moment, which would disturb parallel tests.

use std::os::fd::{AsFd, AsRawFd};

use bpfload_syscall::uapi::bpf_map_type;
use bpfload_syscall::{fd, map, with_syscall_override, MapCreateAttr};

fn fd_is_open(raw: i32) -> bool {
    // SAFETY: F_GETFD only queries the descriptor table.
    unsafe { libc::fcntl(raw, libc::F_GETFD) >= 0 }
}

fn attr() -> MapCreateAttr<'static> {
    MapCreateAttr {
        map_type: bpf_map_type::BPF_MAP_TYPE_ARRAY as u32,
        key_size: 4,
        value_size: 4,
        max_entries: 1,
        ..Default::default()
    }
}

#[test]
fn low_fds_are_moved_above_two() {
    let dev_null = std::fs::File::open("/dev/null").unwrap();
    let saved_stdin = fd::dup_good(dev_null.as_fd()).unwrap();
    let stdin_was_open = fd_is_open(0);
    let saved = if stdin_was_open {
        // Keep the real stdin to restore it.
        // SAFETY: fd 0 is open (checked); we only borrow it for the dup.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(0) };
        Some(fd::dup_good(borrowed).unwrap())
    } else {
        None
    };
    drop(saved_stdin);
    // SAFETY: closing fd 0 is what this test is about; it is restored below.
    unsafe { libc::close(0) };

    // A fake kernel whose fd lands on the free slot 0.
    let got = with_syscall_override(
        |_, _, _| {
            let f = std::fs::File::open("/dev/null").unwrap();
            Ok(f.into())
        },
        || map::create(&attr()).unwrap(),
    );
    assert!(got.as_raw_fd() > 2, "fd {} handed out", got.as_raw_fd());
    assert!(fd::is_cloexec(got.as_fd()).unwrap());
    assert!(!fd_is_open(0), "the low original must be closed");
    drop(got);

    // The real kernel, if we may create maps.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let m = map::create(&attr()).unwrap();
        assert!(m.as_raw_fd() > 2);
        assert!(fd::is_cloexec(m.as_fd()).unwrap());
        assert!(!fd_is_open(0));
    } else if std::env::var("CI").as_deref() == Ok("true") {
        panic!("low_fds_are_moved_above_two: needs root for the kernel half, and CI=true");
    } else {
        eprintln!("SKIP kernel half of low_fds_are_moved_above_two: needs root");
    }

    if let Some(saved) = saved {
        // SAFETY: restores the original stdin onto fd 0; `saved` stays owned and is closed on drop.
        unsafe { libc::dup2(saved.as_raw_fd(), 0) };
    }
}
