//! bpfload-syscall: the bpf(2) layer of bpfload.
//!
//! Thin, safe, per-command wrappers over bpf(2), with the UAPI types from aya-obj ([`uapi`]) and the few it
//! lacks in [`uapi_ext`]. Rules this crate enforces for the whole project:
//! - The crate-private `syscall::bpf` is the only function that issues bpf(2) (with test hooks: fake, counters,
//!   faults).
//! - Every returned fd is an [`OwnedFd`](std::os::fd::OwnedFd), close-on-exec, never 0..=2 ([`fd`]).
//! - A token is passed only here: wrappers for MAP_CREATE, PROG_LOAD, BTF_LOAD and BTF_GET_FD_BY_ID take
//!   `token: Option<BorrowedFd>` and set both the token fd field and `BPF_F_TOKEN_FD` in that command's flags.
//! - Each wrapper passes the attr size up to the end of the last field it can set (see each module).
//!
//! Code outside this crate cannot issue a raw [`Attr`]: its pointer fields are safe to write, so only the
//! wrappers, which fill them from borrowed slices, may reach the kernel (or the `unsafe` [`syscall::passthrough`]):
//!
//! ```compile_fail
//! let mut attr = bpfload_syscall::Attr::zeroed();
//! attr.set_u32_at(32, 0x1000); // prog_load.log_buf: any address
//! let _ = bpfload_syscall::syscall::bpf(bpfload_syscall::uapi::bpf_cmd::BPF_PROG_LOAD, &mut attr, 128);
//! ```
//!
//! ```compile_fail
//! let mut attr = bpfload_syscall::Attr::zeroed();
//! let _ = bpfload_syscall::syscall::passthrough(bpfload_syscall::uapi::bpf_cmd::BPF_PROG_LOAD, &mut attr, 128);
//! ```
//!
//! Test hooks (see [`syscall`]): a per-thread fake kernel, per-command call counters, and fault plans.
//!
//! ```
//! use bpfload_syscall::syscall::CallSnapshot;
//! use bpfload_syscall::uapi::bpf_cmd;
//! use bpfload_syscall::{map, with_fault_plan, with_syscall_override, Errno, FaultPlan, MapCreateAttr};
//!
//! // A fake kernel for this thread: every call fails with EPERM.
//! let snap = CallSnapshot::thread();
//! let err = with_syscall_override(|_cmd, _attr, _size| Err(Errno::EPERM), || {
//!     map::create(&MapCreateAttr::default())
//! });
//! assert_eq!(err.unwrap_err().errno(), Errno::EPERM);
//! assert_eq!(snap.since(bpf_cmd::BPF_MAP_CREATE), 1);
//!
//! // Fail the first MAP_CREATE on this thread with ENOMEM, whatever answers it.
//! let (res, stats) = with_fault_plan(FaultPlan::nth_of(bpf_cmd::BPF_MAP_CREATE, 1, Errno::ENOMEM), || {
//!     map::create(&MapCreateAttr::default())
//! });
//! assert_eq!(res.unwrap_err().errno(), Errno::ENOMEM);
//! assert_eq!(stats.injected, 1);
//! ```

pub use aya_obj::generated as uapi;

pub mod arena;
pub mod attr;
pub mod btf;
mod errno;
mod error;
pub mod fd;
pub mod info;
pub mod link;
pub mod log;
pub mod map;
pub mod obj;
pub mod prog;
pub mod syscall;
pub mod token;
pub mod uapi_ext;
pub mod util;

pub use attr::Attr;
pub use errno::Errno;
pub use error::{log_tail, BtfLoadError, ProgLoadError, SysError};
pub use log::LogOptions;
pub use map::MapCreateAttr;
pub use prog::ProgLoadAttr;
pub use syscall::{with_fault_plan, with_syscall_override, FaultPlan, FaultStats, Reply};

#[cfg(test)]
pub(crate) mod test_util {
    /// Fills the next 64 KiB of this thread's stack below the caller's frame with `byte`, so that the frames of
    /// calls made right after it start out full of junk instead of (often) zeros. Uninitialised bytes a callee
    /// leaves in its result, such as the padding of a struct copied as a whole, then show up as `byte`.
    #[inline(never)]
    pub(crate) fn junk_stack(byte: u8) {
        let junk = [byte; 64 * 1024];
        // Keeps the array (and its writes) from being optimised away.
        std::hint::black_box(&junk);
    }
}

#[cfg(test)]
mod attr_size_tests {
    //! Every wrapper passes the attr size of its command: `offsetofend` of the last field it can set. And every
    //! byte it passes is written by the wrapper, never left over from the stack.
    use std::cell::{Cell, RefCell};
    use std::os::fd::AsFd;
    use std::path::Path;
    use std::rc::Rc;

    use crate::syscall::Reply;
    use crate::test_util::junk_stack;
    use crate::uapi::{bpf_cmd, bpf_cmd::*, bpf_map_info};
    use crate::*;

    type Calls = Vec<(bpf_cmd, u32)>;

    thread_local! {
        /// The byte `sizes` fills the stack with before each wrapper runs.
        static JUNK: Cell<u8> = const { Cell::new(0) };
        /// Every (cmd, attr bytes up to size) `sizes` saw on this thread.
        static ATTRS: RefCell<Vec<(bpf_cmd, Vec<u8>)>> = const { RefCell::new(Vec::new()) };
    }

    /// Runs `f` against a fake kernel that answers map info (key 4, value 8) and records (cmd, size), and the
    /// attr bytes in `ATTRS`. The stack is filled with `JUNK` right before `f` runs.
    fn sizes(f: impl FnOnce()) -> Calls {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let s2 = seen.clone();
        let junk = JUNK.with(Cell::get);
        with_syscall_override(
            move |cmd, attr, size| {
                s2.borrow_mut().push((cmd, size));
                let used = attr.bytes()[..size as usize].to_vec();
                ATTRS.with(|a| a.borrow_mut().push((cmd, used)));
                if cmd == BPF_OBJ_GET_INFO_BY_FD {
                    let i = attr.info();
                    assert!(i.info_len as usize >= size_of::<bpf_map_info>());
                    // SAFETY (test): `info` points to a live bpf_map_info buffer (map_info's), checked by len.
                    let info = unsafe { &mut *(i.info as *mut bpf_map_info) };
                    info.type_ = 2;
                    info.key_size = 4;
                    info.value_size = 8;
                    return Ok(Reply::Value(0));
                }
                if cmd == BPF_MAP_GET_NEXT_KEY || cmd == BPF_BTF_GET_NEXT_ID {
                    return Err(Errno::ENOENT);
                }
                Err(Errno::EPERM)
            },
            || {
                junk_stack(junk);
                f()
            },
        );
        let v = seen.borrow().clone();
        v
    }

    #[test]
    fn every_wrapper_passes_its_size() {
        for (got, want) in cases() {
            assert_eq!(got, want);
        }
    }

    /// A wrapper that assigned a whole struct into the attr would pass its padding bytes uninitialised: with
    /// junk on the stack they hold junk (uprobe_multi's 4 trailing bytes did, and the kernel said EINVAL).
    #[test]
    fn no_passed_attr_byte_comes_from_the_stack() {
        JUNK.with(|j| j.set(0xAA));
        ATTRS.with(|a| a.borrow_mut().clear());
        drop(cases());
        let attrs = ATTRS.with(|a| a.take());
        assert!(attrs.len() > 20, "saw only {} calls", attrs.len());
        for (cmd, bytes) in attrs {
            // Padding comes in whole 4-byte gaps (a u32 before a u64); pointers and the fields the cases set
            // never hold 0xAAAAAAAA.
            for (i, word) in bytes.chunks(4).enumerate() {
                assert_ne!(
                    word,
                    [0xAA; 4],
                    "{}: attr bytes {}..{} are junk from the stack",
                    syscall::cmd_name(cmd),
                    i * 4,
                    i * 4 + 4
                );
            }
        }
    }

    /// Each wrapper, run through `sizes`, with the calls it should make.
    fn cases() -> Vec<(Calls, Calls)> {
        let dev_null = std::fs::File::open("/dev/null").unwrap();
        let fd = dev_null.as_fd();
        let k = [0u8; 4];
        let mut v = [0u8; 8];
        let info = (BPF_OBJ_GET_INFO_BY_FD, 16);
        let cases: Vec<(Calls, Calls)> = vec![
            (
                sizes(|| drop(map::create(&MapCreateAttr::default()))),
                vec![(BPF_MAP_CREATE, 80)],
            ),
            (
                sizes(|| drop(map::update_elem(fd, &k, &v, 0))),
                vec![info, (BPF_MAP_UPDATE_ELEM, 32)],
            ),
            (
                sizes(|| drop(map::lookup_elem(fd, &k, &mut v, 0))),
                vec![info, (BPF_MAP_LOOKUP_ELEM, 32)],
            ),
            (
                sizes(|| drop(map::lookup_and_delete_elem(fd, &k, &mut v))),
                vec![info, (BPF_MAP_LOOKUP_AND_DELETE_ELEM, 32)],
            ),
            (
                sizes(|| drop(map::delete_elem(fd, &k))),
                vec![info, (BPF_MAP_DELETE_ELEM, 32)],
            ),
            (
                sizes(|| drop(map::get_next_key(fd, None))),
                vec![info, (BPF_MAP_GET_NEXT_KEY, 32)],
            ),
            (sizes(|| drop(map::freeze(fd))), vec![(BPF_MAP_FREEZE, 4)]),
            (
                sizes(|| drop(map::get_fd_by_id(1))),
                vec![(BPF_MAP_GET_FD_BY_ID, 12)],
            ),
            (
                sizes(|| drop(map::get_next_id(0))),
                vec![(BPF_MAP_GET_NEXT_ID, 8)],
            ),
            (
                sizes(|| drop(prog::load(&ProgLoadAttr::default(), &LogOptions::NONE))),
                vec![(BPF_PROG_LOAD, 152)],
            ),
            (
                sizes(|| drop(prog::bind_map(fd, fd))),
                vec![(BPF_PROG_BIND_MAP, 12)],
            ),
            (
                sizes(|| drop(prog::get_fd_by_id(1))),
                vec![(BPF_PROG_GET_FD_BY_ID, 12)],
            ),
            (
                sizes(|| drop(prog::get_next_id(0))),
                vec![(BPF_PROG_GET_NEXT_ID, 8)],
            ),
            (
                sizes(|| drop(prog::test_run(fd, &[0; 14], 1))),
                vec![(BPF_PROG_TEST_RUN, 40)],
            ),
            (
                sizes(|| drop(btf::load(&[0; 24], None, &LogOptions::NONE))),
                vec![(BPF_BTF_LOAD, 40)],
            ),
            (
                sizes(|| drop(btf::get_fd_by_id(1, None))),
                vec![(BPF_BTF_GET_FD_BY_ID, 16)],
            ),
            (
                sizes(|| drop(btf::get_next_id(0))),
                vec![(BPF_BTF_GET_NEXT_ID, 8)],
            ),
            (
                sizes(|| drop(obj::pin(fd, Path::new("/sys/fs/bpf/x")))),
                vec![(BPF_OBJ_PIN, 16)],
            ),
            (
                sizes(|| drop(obj::get(Path::new("/sys/fs/bpf/x"), 0))),
                vec![(BPF_OBJ_GET, 16)],
            ),
            (sizes(|| drop(info::prog_info(fd))), vec![info]),
            (
                sizes(|| drop(token::create(fd, 0))),
                vec![(BPF_TOKEN_CREATE, 8)],
            ),
            (
                sizes(|| drop(link::create_uprobe_multi(fd, c"/", &[0], 7))),
                vec![(BPF_LINK_CREATE, 64)],
            ),
        ];
        cases
    }
}
