//! bpfload-syscall: the bpf(2) layer of bpfload.
//!
//! Thin, safe, per-command wrappers over bpf(2), with the UAPI types from aya-obj ([`uapi`]) and the few it
//! lacks in [`uapi_ext`]. Rules this crate enforces for the whole project:
//! - [`syscall::bpf`] is the only function that issues bpf(2) (with test hooks: fake, counters, faults).
//! - Every returned fd is an [`OwnedFd`](std::os::fd::OwnedFd), close-on-exec, never 0..=2 ([`fd`]).
//! - A token is passed only here: wrappers for MAP_CREATE, PROG_LOAD, BTF_LOAD and BTF_GET_FD_BY_ID take
//!   `token: Option<BorrowedFd>` and set both the token fd field and `BPF_F_TOKEN_FD` in that command's flags.
//! - Each wrapper passes the attr size up to the end of the last field it can set (see each module).

pub use aya_obj::generated as uapi;

pub mod attr;
pub mod btf;
mod errno;
mod error;
pub mod fd;
pub mod info;
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
pub use syscall::{with_fault_plan, with_syscall_override, FaultPlan, FaultStats};
