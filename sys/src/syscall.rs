//! The one place that issues bpf(2), plus the test hooks around it.
//!
//! Every wrapper in this crate ends in the crate-private `bpf`. Before the kernel sees a call, `bpf` does, in order:
//! 1. count it: per command, both in a **thread-local** counter ([`thread_calls`]) and in a **process-wide**
//!    atomic counter ([`process_calls`]). Both count every call that reaches `bpf`, including calls answered by a
//!    fake or failed by a fault plan. Thread-local counts are what parallel unit tests should use; process-wide
//!    counts see calls made on other threads (e.g. by a loader that spawns workers).
//! 2. apply a fault plan ([`with_fault_plan`] for this thread, [`install_fault_plan`] for the whole process):
//!    the Nth matching call fails with the planned errno without reaching the kernel. When no process-wide plan
//!    is installed this costs one relaxed atomic load, plus a thread-local check.
//! 3. hand the call to this thread's override ([`with_syscall_override`]) if one is set (unit tests use it to
//!    fake the kernel: retries, log growth, attr contents). A fake answers with a [`Reply`]: the new fd of an
//!    fd-creating command is an `OwnedFd` the fake hands over, never a bare number, so a fake cannot make a
//!    wrapper take ownership of (and later close) an fd that belongs to someone else;
//! 4. otherwise issue `syscall(SYS_bpf, cmd, attr, size)`.

use std::cell::{Cell, RefCell};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::attr::{Attr, ATTR_BUF_SIZE};
use crate::errno::Errno;
use crate::error::SysError;
use crate::uapi::bpf_cmd;

/// Number of per-command counter slots. `enum bpf_cmd` values are below this (36 is TOKEN_CREATE); a larger
/// value is counted in the last slot.
pub const CMD_SLOTS: usize = 64;

/// A successful bpf(2) answer, as a fake kernel gives it (and as [`passthrough`] returns it).
///
/// The commands that create an fd ([`creates_fd`]) answer [`Reply::Fd`], every other command
/// [`Reply::Value`]. The fd is owned: the wrapper that receives it returns it to its caller or closes it. A
/// bare number is never taken as an fd, because taking ownership of a number that another `File`/`OwnedFd`
/// holds would close that object's fd behind its back (a double close, and I/O on whatever reuses the number).
#[derive(Debug)]
pub enum Reply {
    /// The return value of a command that does not create an fd (0 for most; ignored by the wrappers).
    Value(i64),
    /// The new fd of an fd-creating command, handed over to the wrapper.
    Fd(OwnedFd),
}

impl From<OwnedFd> for Reply {
    fn from(fd: OwnedFd) -> Reply {
        Reply::Fd(fd)
    }
}

impl From<std::fs::File> for Reply {
    fn from(f: std::fs::File) -> Reply {
        Reply::Fd(f.into())
    }
}

/// Signature of a syscall override: `(cmd, attr, size) -> Ok(reply) | Err(errno)`.
pub type SyscallFn = dyn FnMut(bpf_cmd, &mut Attr, u32) -> Result<Reply, Errno>;

thread_local! {
    static OVERRIDE: RefCell<Option<Box<SyscallFn>>> = const { RefCell::new(None) };
    static THREAD_COUNTS: [Cell<u64>; CMD_SLOTS] = const { [const { Cell::new(0) }; CMD_SLOTS] };
    static THREAD_FAULT: RefCell<Option<FaultState>> = const { RefCell::new(None) };
}

static PROCESS_COUNTS: [AtomicU64; CMD_SLOTS] = [const { AtomicU64::new(0) }; CMD_SLOTS];
static PROCESS_FAULT_ARMED: AtomicBool = AtomicBool::new(false);
static PROCESS_FAULT: Mutex<Option<FaultState>> = Mutex::new(None);
/// Serialises users of the process-wide plan: a second `install_fault_plan` waits for the first guard to drop.
static PROCESS_FAULT_OWNER: Mutex<()> = Mutex::new(());

fn slot(cmd: bpf_cmd) -> usize {
    (cmd as usize).min(CMD_SLOTS - 1)
}

/// The symbolic name of a command (`"BPF_PROG_LOAD"`), for errors and logs.
pub fn cmd_name(cmd: bpf_cmd) -> &'static str {
    use bpf_cmd::*;
    match cmd {
        BPF_MAP_CREATE => "BPF_MAP_CREATE",
        BPF_MAP_LOOKUP_ELEM => "BPF_MAP_LOOKUP_ELEM",
        BPF_MAP_UPDATE_ELEM => "BPF_MAP_UPDATE_ELEM",
        BPF_MAP_DELETE_ELEM => "BPF_MAP_DELETE_ELEM",
        BPF_MAP_GET_NEXT_KEY => "BPF_MAP_GET_NEXT_KEY",
        BPF_PROG_LOAD => "BPF_PROG_LOAD",
        BPF_OBJ_PIN => "BPF_OBJ_PIN",
        BPF_OBJ_GET => "BPF_OBJ_GET",
        BPF_PROG_ATTACH => "BPF_PROG_ATTACH",
        BPF_PROG_DETACH => "BPF_PROG_DETACH",
        BPF_PROG_TEST_RUN => "BPF_PROG_TEST_RUN",
        BPF_PROG_GET_NEXT_ID => "BPF_PROG_GET_NEXT_ID",
        BPF_MAP_GET_NEXT_ID => "BPF_MAP_GET_NEXT_ID",
        BPF_PROG_GET_FD_BY_ID => "BPF_PROG_GET_FD_BY_ID",
        BPF_MAP_GET_FD_BY_ID => "BPF_MAP_GET_FD_BY_ID",
        BPF_OBJ_GET_INFO_BY_FD => "BPF_OBJ_GET_INFO_BY_FD",
        BPF_PROG_QUERY => "BPF_PROG_QUERY",
        BPF_RAW_TRACEPOINT_OPEN => "BPF_RAW_TRACEPOINT_OPEN",
        BPF_BTF_LOAD => "BPF_BTF_LOAD",
        BPF_BTF_GET_FD_BY_ID => "BPF_BTF_GET_FD_BY_ID",
        BPF_TASK_FD_QUERY => "BPF_TASK_FD_QUERY",
        BPF_MAP_LOOKUP_AND_DELETE_ELEM => "BPF_MAP_LOOKUP_AND_DELETE_ELEM",
        BPF_MAP_FREEZE => "BPF_MAP_FREEZE",
        BPF_BTF_GET_NEXT_ID => "BPF_BTF_GET_NEXT_ID",
        BPF_MAP_LOOKUP_BATCH => "BPF_MAP_LOOKUP_BATCH",
        BPF_MAP_LOOKUP_AND_DELETE_BATCH => "BPF_MAP_LOOKUP_AND_DELETE_BATCH",
        BPF_MAP_UPDATE_BATCH => "BPF_MAP_UPDATE_BATCH",
        BPF_MAP_DELETE_BATCH => "BPF_MAP_DELETE_BATCH",
        BPF_LINK_CREATE => "BPF_LINK_CREATE",
        BPF_LINK_UPDATE => "BPF_LINK_UPDATE",
        BPF_LINK_GET_FD_BY_ID => "BPF_LINK_GET_FD_BY_ID",
        BPF_LINK_GET_NEXT_ID => "BPF_LINK_GET_NEXT_ID",
        BPF_ENABLE_STATS => "BPF_ENABLE_STATS",
        BPF_ITER_CREATE => "BPF_ITER_CREATE",
        BPF_LINK_DETACH => "BPF_LINK_DETACH",
        BPF_PROG_BIND_MAP => "BPF_PROG_BIND_MAP",
        BPF_TOKEN_CREATE => "BPF_TOKEN_CREATE",
        _ => "BPF_?",
    }
}

/// Whether a successful `cmd` returns a new fd (kernel/bpf/syscall.c: every command whose handler ends in
/// `anon_inode_getfd`, `bpf_*_new_fd`, `bpf_link_settle` or `bpf_obj_get_user`). For these a fake must answer
/// [`Reply::Fd`], and only for these may a wrapper turn the result into an `OwnedFd`.
pub fn creates_fd(cmd: bpf_cmd) -> bool {
    use bpf_cmd::*;
    matches!(
        cmd,
        BPF_MAP_CREATE
            | BPF_PROG_LOAD
            | BPF_OBJ_GET
            | BPF_PROG_GET_FD_BY_ID
            | BPF_MAP_GET_FD_BY_ID
            | BPF_RAW_TRACEPOINT_OPEN
            | BPF_BTF_LOAD
            | BPF_BTF_GET_FD_BY_ID
            | BPF_LINK_CREATE
            | BPF_LINK_GET_FD_BY_ID
            | BPF_ENABLE_STATS
            | BPF_ITER_CREATE
            | BPF_TOKEN_CREATE
    )
}

/// Issues bpf(2): `cmd` with the first `size` bytes of `attr`. Returns the non-negative result or the errno.
///
/// For a command that [`creates_fd`], the result is a new fd that the caller now owns (the kernel's, or the
/// `OwnedFd` a fake handed over in [`Reply::Fd`]); `fd::from_ret` takes it over. For other commands it is a
/// plain number. Wrappers of fd-creating commands call [`bpf_fd`] instead.
///
/// This is the only function in the project that calls `libc::syscall(SYS_bpf, ..)`; see the module docs for the
/// counting, fault and override steps that come first.
///
/// Crate-private on purpose: an [`Attr`] can hold any pointer value (its views are safe to write), so issuing an
/// arbitrary one would let safe code make the kernel read or write arbitrary memory. Only this crate's wrappers,
/// which set pointers from live, borrowed slices, may call it; outside code forwards through the `unsafe`
/// [`passthrough`].
///
/// # Panics
/// If `size` exceeds the attr buffer (a bug in a wrapper; sizes are compile-time constants).
pub(crate) fn bpf(cmd: bpf_cmd, attr: &mut Attr, size: u32) -> Result<i64, Errno> {
    assert!(size as usize <= ATTR_BUF_SIZE, "attr size {size} too large");
    let s = slot(cmd);
    THREAD_COUNTS.with(|c| c[s].set(c[s].get() + 1));
    PROCESS_COUNTS[s].fetch_add(1, Ordering::Relaxed);

    if let Some(errno) = THREAD_FAULT.with(|f| f.borrow_mut().as_mut().and_then(|st| st.step(cmd)))
    {
        return Err(errno);
    }
    if PROCESS_FAULT_ARMED.load(Ordering::Relaxed) {
        let mut guard = lock(&PROCESS_FAULT);
        if let Some(errno) = guard.as_mut().and_then(|st| st.step(cmd)) {
            return Err(errno);
        }
    }

    // Take the override out while it runs, so it may itself call `passthrough` (or even a wrapper, which then
    // reaches the kernel) without a RefCell double borrow.
    let taken = OVERRIDE.with(|o| o.borrow_mut().take());
    if let Some(mut f) = taken {
        let result = f(cmd, attr, size);
        OVERRIDE.with(|o| {
            let mut slot = o.borrow_mut();
            if slot.is_none() {
                *slot = Some(f);
            }
        });
        return result.map(|reply| reply_to_ret(cmd, reply));
    }
    // SAFETY: only this crate's wrappers call `bpf`, and they uphold `passthrough`'s contract (see above).
    unsafe { raw_bpf(cmd, attr, size) }
}

/// [`bpf`] for a command that [`creates_fd`]: the new fd, owned, >= 3 and close-on-exec. Errors carry the
/// command's name.
///
/// The only way this crate turns a bpf(2) result into an `OwnedFd`: the command is checked here, so a number
/// `bpf` returned for any other command (which a fake may set to anything) is never owned.
///
/// # Panics
/// If `cmd` does not create an fd (a bug in a wrapper).
pub(crate) fn bpf_fd(cmd: bpf_cmd, attr: &mut Attr, size: u32) -> Result<OwnedFd, SysError> {
    assert!(
        creates_fd(cmd),
        "bpf_fd with {}, which does not create an fd",
        cmd_name(cmd)
    );
    let ret = bpf(cmd, attr, size).map_err(|e| SysError::kernel(cmd_name(cmd), e))?;
    // SAFETY: `ret` is `bpf`'s successful result for an fd-creating command (checked above), which is a new fd
    // the caller owns: the kernel's, or the `OwnedFd` a fake handed over (`reply_to_ret` refuses bare numbers).
    unsafe { crate::fd::from_ret(cmd_name(cmd), ret) }
}

/// Turns a fake's reply into what the kernel would have returned. An fd-creating command's fd leaves its
/// `OwnedFd` here and is owned by `bpf`'s caller from now on (see [`bpf`]).
///
/// # Panics
/// If the kind of reply does not match the command (a bug in the fake): a bare number for an fd-creating
/// command cannot be handed on as an fd without taking an fd nobody gave us.
fn reply_to_ret(cmd: bpf_cmd, reply: Reply) -> i64 {
    match (creates_fd(cmd), reply) {
        (true, Reply::Fd(fd)) => i64::from(fd.into_raw_fd()),
        (false, Reply::Value(v)) => v,
        (true, Reply::Value(v)) => panic!(
            "syscall override answered {} with the number {v}; fd-creating commands need Reply::Fd(OwnedFd)",
            cmd_name(cmd)
        ),
        (false, Reply::Fd(fd)) => panic!(
            "syscall override answered {} with {fd:?}, but it does not create an fd; use Reply::Value",
            cmd_name(cmd)
        ),
    }
}

/// Issues the real bpf(2) without counting, faults or override. For overrides that forward some calls to the
/// kernel (the attr an override receives came from one of this crate's wrappers); everything else goes through
/// the wrappers. The answer is already in the form an override returns: the new fd of an fd-creating command
/// as an `OwnedFd` ([`Reply::Fd`]).
///
/// # Safety
/// Every pointer field of `attr` that `cmd` uses (key, value, log buffer, insns, info, ...) must be 0 or point to
/// live memory of at least the size the attr gives next to it, writable where the kernel writes, for the duration
/// of the call. An attr filled by this crate's wrappers and handed to an override satisfies this.
///
/// # Panics
/// If `size` exceeds the attr buffer.
pub unsafe fn passthrough(cmd: bpf_cmd, attr: &mut Attr, size: u32) -> Result<Reply, Errno> {
    // SAFETY: the caller upholds this function's contract, which is `raw_bpf`'s.
    let ret = unsafe { raw_bpf(cmd, attr, size) }?;
    if !creates_fd(cmd) {
        return Ok(Reply::Value(ret));
    }
    // The kernel's fds are ints; anything else cannot be an fd (and there is nothing to close).
    let fd = RawFd::try_from(ret).map_err(|_| Errno::EINVAL)?;
    // SAFETY: the kernel just created this fd for the successful fd-creating `cmd` (non-negative: `raw_bpf`
    // returns errors as Err); no other object holds the number, so the OwnedFd is its only owner.
    Ok(Reply::Fd(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// The syscall itself, shared by [`bpf`] and [`passthrough`].
///
/// # Safety
/// As [`passthrough`].
unsafe fn raw_bpf(cmd: bpf_cmd, attr: &mut Attr, size: u32) -> Result<i64, Errno> {
    assert!(size as usize <= ATTR_BUF_SIZE, "attr size {size} too large");
    // SAFETY: `attr` points to ATTR_BUF_SIZE initialised, writable bytes that outlive the call, and `size` does
    // not exceed that, so the kernel reads and writes only inside the buffer. Pointers stored *inside* the attr
    // are valid for the call by this function's contract (for `bpf`'s callers: the wrappers set them from live
    // slices whose lengths match the sizes given next to them and keep those slices borrowed during the call).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            attr.as_mut_ptr(),
            size as libc::c_long,
        )
    };
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

fn lock<T>(m: &'static Mutex<T>) -> MutexGuard<'static, T> {
    // A panic while holding the lock (a failing test) must not wedge every later test.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------------------------------------------
// Override

struct OverrideReset(Option<Box<SyscallFn>>);

impl Drop for OverrideReset {
    fn drop(&mut self) {
        let previous = self.0.take();
        OVERRIDE.with(|o| *o.borrow_mut() = previous);
    }
}

/// Runs `body` with bpf(2) on **this thread** answered by `fake` instead of the kernel. Other threads are not
/// affected, so parallel tests do not interfere. Overrides nest; the previous one is restored afterwards (also on
/// panic). `fake` returns a [`Reply`] or an errno: for a command that [`creates_fd`], an `OwnedFd` it hands over
/// (`Reply::Fd`, e.g. a dup of `/dev/null`, or what [`passthrough`] returned); for any other command a number
/// (`Reply::Value`). A mismatch panics in the wrapper's call.
///
/// Safe because a fake can only hand over fds it owns: a bare number is never taken as an fd.
///
/// ```compile_fail
/// // A fake cannot answer an fd-creating command with some other object's fd number.
/// use std::os::fd::AsRawFd;
/// let f = std::fs::File::open("/dev/null").unwrap();
/// let n = f.as_raw_fd() as i64;
/// let _ = bpfload_syscall::with_syscall_override(move |_, _, _| Ok(n), || {
///     bpfload_syscall::map::create(&Default::default())
/// });
/// ```
pub fn with_syscall_override<F, R>(fake: F, body: impl FnOnce() -> R) -> R
where
    F: FnMut(bpf_cmd, &mut Attr, u32) -> Result<Reply, Errno> + 'static,
{
    let previous = OVERRIDE.with(|o| o.borrow_mut().replace(Box::new(fake)));
    let _reset = OverrideReset(previous);
    body()
}

// ---------------------------------------------------------------------------------------------------------------
// Counters

/// Calls of `cmd` made on this thread since it started (monotonic; diff two readings).
pub fn thread_calls(cmd: bpf_cmd) -> u64 {
    let s = slot(cmd);
    THREAD_COUNTS.with(|c| c[s].get())
}

/// All bpf(2) calls made on this thread.
pub fn thread_calls_total() -> u64 {
    THREAD_COUNTS.with(|c| c.iter().map(Cell::get).sum())
}

/// Calls of `cmd` made by any thread of this process (monotonic, relaxed atomics).
pub fn process_calls(cmd: bpf_cmd) -> u64 {
    PROCESS_COUNTS[slot(cmd)].load(Ordering::Relaxed)
}

/// All bpf(2) calls made by this process.
pub fn process_calls_total() -> u64 {
    PROCESS_COUNTS
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .sum()
}

/// A snapshot of this thread's per-command counters; `since` gives the calls made after it was taken.
#[derive(Clone, Debug)]
pub struct CallSnapshot([u64; CMD_SLOTS]);

impl CallSnapshot {
    /// Snapshot of this thread's counters.
    pub fn thread() -> CallSnapshot {
        CallSnapshot(THREAD_COUNTS.with(|c| std::array::from_fn(|i| c[i].get())))
    }

    /// Calls of `cmd` on this thread since the snapshot.
    pub fn since(&self, cmd: bpf_cmd) -> u64 {
        thread_calls(cmd) - self.0[slot(cmd)]
    }

    /// All calls on this thread since the snapshot.
    pub fn total_since(&self) -> u64 {
        thread_calls_total() - self.0.iter().sum::<u64>()
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Fault injection

/// Which calls a [`FaultPlan`] fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultPlan {
    /// Only calls of this command count towards `nth` (None: every bpf(2) call counts).
    pub cmd: Option<bpf_cmd>,
    /// The first matching call to fail, 1-based (1 = the first matching call after the plan is installed).
    pub nth: u64,
    /// How many consecutive matching calls fail, starting at `nth` (`u64::MAX`: all from `nth` on). Use more
    /// than 1 to get past retries (PROG_LOAD retries EAGAIN 5 times, then retries once more with a log).
    pub times: u64,
    /// The errno the failing calls return.
    pub errno: Errno,
}

impl FaultPlan {
    /// Fail the `nth` (1-based) bpf(2) call of any command with `errno`, once.
    pub fn nth_call(nth: u64, errno: Errno) -> FaultPlan {
        FaultPlan {
            cmd: None,
            nth,
            times: 1,
            errno,
        }
    }

    /// Fail the `nth` (1-based) call of `cmd` with `errno`, once.
    pub fn nth_of(cmd: bpf_cmd, nth: u64, errno: Errno) -> FaultPlan {
        FaultPlan {
            cmd: Some(cmd),
            nth,
            times: 1,
            errno,
        }
    }

    /// Fail `times` consecutive matching calls instead of one.
    pub fn times(self, times: u64) -> FaultPlan {
        FaultPlan { times, ..self }
    }
}

/// What a fault plan saw while it was active.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Calls that matched the plan's command filter.
    pub matched: u64,
    /// Calls that were failed.
    pub injected: u64,
}

#[derive(Debug)]
struct FaultState {
    plan: FaultPlan,
    stats: FaultStats,
}

impl FaultState {
    fn step(&mut self, cmd: bpf_cmd) -> Option<Errno> {
        if self.plan.cmd.is_some_and(|c| c != cmd) {
            return None;
        }
        self.stats.matched += 1;
        let n = self.stats.matched;
        let last = self
            .plan
            .nth
            .saturating_add(self.plan.times.saturating_sub(1));
        if n >= self.plan.nth && n <= last && self.plan.times > 0 {
            self.stats.injected += 1;
            Some(self.plan.errno)
        } else {
            None
        }
    }
}

struct ThreadFaultReset(Option<FaultState>);

impl Drop for ThreadFaultReset {
    fn drop(&mut self) {
        let previous = self.0.take();
        THREAD_FAULT.with(|f| *f.borrow_mut() = previous);
    }
}

/// Runs `body` with `plan` applied to the bpf(2) calls made on **this thread**, and reports what it matched.
/// Typical use (issue 7): for n in 1.. { run a full load with `FaultPlan::nth_call(n, e)`; stop when
/// `injected == 0`, i.e. the load made fewer than n calls }.
pub fn with_fault_plan<R>(plan: FaultPlan, body: impl FnOnce() -> R) -> (R, FaultStats) {
    let previous = THREAD_FAULT.with(|f| {
        f.borrow_mut().replace(FaultState {
            plan,
            stats: FaultStats::default(),
        })
    });
    let reset = ThreadFaultReset(previous);
    let result = body();
    let stats = THREAD_FAULT.with(|f| f.borrow().as_ref().map(|s| s.stats).unwrap_or_default());
    drop(reset);
    (result, stats)
}

/// A process-wide fault plan; uninstalled when dropped. Only one exists at a time: installing another waits.
pub struct FaultGuard {
    _owner: MutexGuard<'static, ()>,
}

impl FaultGuard {
    /// What the plan has seen so far.
    pub fn stats(&self) -> FaultStats {
        lock(&PROCESS_FAULT)
            .as_ref()
            .map(|s| s.stats)
            .unwrap_or_default()
    }
}

impl Drop for FaultGuard {
    fn drop(&mut self) {
        PROCESS_FAULT_ARMED.store(false, Ordering::Relaxed);
        *lock(&PROCESS_FAULT) = None;
    }
}

/// Installs `plan` for bpf(2) calls made by **any thread** of the process, until the guard is dropped.
/// Prefer [`with_fault_plan`] in tests that share a binary with other tests: this one also fails their calls.
pub fn install_fault_plan(plan: FaultPlan) -> FaultGuard {
    let owner = lock(&PROCESS_FAULT_OWNER);
    *lock(&PROCESS_FAULT) = Some(FaultState {
        plan,
        stats: FaultStats::default(),
    });
    PROCESS_FAULT_ARMED.store(true, Ordering::Relaxed);
    FaultGuard { _owner: owner }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpf_cmd::*;

    #[test]
    fn override_counts_and_restores() {
        let snap = CallSnapshot::thread();
        let r = with_syscall_override(
            |cmd, _attr, size| {
                assert_eq!(cmd, BPF_MAP_FREEZE);
                Ok(Reply::Value(size.into()))
            },
            || bpf(BPF_MAP_FREEZE, &mut Attr::zeroed(), 4),
        );
        assert_eq!(r, Ok(4));
        assert_eq!(snap.since(BPF_MAP_FREEZE), 1);
        assert_eq!(snap.total_since(), 1);
        // Restored: no override left on this thread.
        assert!(OVERRIDE.with(|o| o.borrow().is_none()));
    }

    #[test]
    fn nested_override_restores_outer() {
        with_syscall_override(
            |_, _, _| Ok(Reply::Value(1)),
            || {
                with_syscall_override(
                    |_, _, _| Ok(Reply::Value(2)),
                    || assert_eq!(bpf(BPF_MAP_FREEZE, &mut Attr::zeroed(), 4), Ok(2)),
                );
                assert_eq!(bpf(BPF_MAP_FREEZE, &mut Attr::zeroed(), 4), Ok(1));
            },
        );
    }

    #[test]
    fn thread_fault_plan_hits_nth_matching_call() {
        let ((), stats) = with_fault_plan(
            FaultPlan::nth_of(BPF_PROG_TEST_RUN, 2, Errno::EPERM).times(2),
            || {
                with_syscall_override(
                    |_, _, _| Ok(Reply::Value(0)),
                    || {
                        let mut a = Attr::zeroed();
                        assert_eq!(bpf(BPF_MAP_FREEZE, &mut a, 4), Ok(0));
                        assert_eq!(bpf(BPF_PROG_TEST_RUN, &mut a, 4), Ok(0));
                        assert_eq!(bpf(BPF_PROG_TEST_RUN, &mut a, 4), Err(Errno::EPERM));
                        assert_eq!(bpf(BPF_PROG_TEST_RUN, &mut a, 4), Err(Errno::EPERM));
                        assert_eq!(bpf(BPF_PROG_TEST_RUN, &mut a, 4), Ok(0));
                    },
                )
            },
        );
        assert_eq!(
            stats,
            FaultStats {
                matched: 4,
                injected: 2
            }
        );
    }

    /// A fake cannot make a wrapper own an fd it was not given: a bare number for an fd-creating command is
    /// refused (the wrapper's call panics) and the object that owns that number keeps it open. Before `Reply`,
    /// a fake answering `Ok(file.as_raw_fd())` made `map::create` return an OwnedFd of that number, whose drop
    /// closed the File's fd.
    #[test]
    fn a_bare_number_is_never_taken_as_an_fd() {
        use std::os::fd::{AsFd, AsRawFd};
        let file = std::fs::File::open("/dev/null").unwrap();
        let ino = std::os::unix::fs::MetadataExt::ino(&file.metadata().unwrap());
        let n = i64::from(file.as_raw_fd());
        let r = std::panic::catch_unwind(|| {
            with_syscall_override(
                move |_, _, _| Ok(Reply::Value(n)),
                || crate::map::create(&Default::default()).map(drop),
            )
        });
        let msg = r.expect_err("a number answered for MAP_CREATE must not become an fd");
        let msg = msg
            .downcast_ref::<String>()
            .map(String::as_str)
            .unwrap_or("");
        assert!(msg.contains("BPF_MAP_CREATE"), "panic message: {msg}");
        // Still open, still the same file.
        assert!(crate::fd::is_cloexec(file.as_fd()).is_ok());
        let meta = file.metadata().expect("the File's fd was closed");
        assert_eq!(std::os::unix::fs::MetadataExt::ino(&meta), ino);

        // The other mismatch: an fd for a command that creates none would be dropped unnoticed.
        let r = std::panic::catch_unwind(|| {
            with_syscall_override(
                |_, _, _| Ok(std::fs::File::open("/dev/null").unwrap().into()),
                || crate::map::freeze(file.as_fd()),
            )
        });
        assert!(r.is_err());
    }

    /// An fd a fake hands over is what the wrapper returns (moved above 2 if needed), and nothing else.
    #[test]
    fn a_handed_over_fd_is_returned() {
        use std::os::fd::{AsFd, AsRawFd};
        let fd = with_syscall_override(
            |_, _, _| Ok(crate::fd::placeholder().unwrap().into()),
            || crate::map::create(&Default::default()).unwrap(),
        );
        assert!(fd.as_raw_fd() > 2);
        assert!(
            matches!(crate::fd::kind(fd.as_fd()).unwrap(), crate::fd::ObjKind::Other(s) if s.contains("bpfload-placeholder-fd"))
        );
    }

    #[test]
    fn fd_commands() {
        for cmd in [
            BPF_MAP_CREATE,
            BPF_PROG_LOAD,
            BPF_BTF_LOAD,
            BPF_OBJ_GET,
            BPF_LINK_CREATE,
            BPF_TOKEN_CREATE,
        ] {
            assert!(creates_fd(cmd), "{}", cmd_name(cmd));
        }
        for cmd in [
            BPF_MAP_FREEZE,
            BPF_OBJ_PIN,
            BPF_PROG_BIND_MAP,
            BPF_BTF_GET_NEXT_ID,
            BPF_OBJ_GET_INFO_BY_FD,
        ] {
            assert!(!creates_fd(cmd), "{}", cmd_name(cmd));
        }
    }

    #[test]
    fn cmd_names() {
        assert_eq!(cmd_name(BPF_TOKEN_CREATE), "BPF_TOKEN_CREATE");
        assert_eq!(BPF_TOKEN_CREATE as u32, 36);
    }
}
