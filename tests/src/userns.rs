//! A real user-namespace + delegated-bpffs harness for the BPF token tests (no mocks).
//!
//! The test process (root, in the initial user namespace, usually a multithreaded test runner)
//! never forks itself: it spawns the `userns-helper` binary through [`UsernsCommand`]. The helper
//! is a fresh single-threaded process, so it can fork safely and run Rust in the child:
//!
//! 1. the child `unshare(CLONE_NEWUSER)`s (uid/gid map `0 <uid> 1`, setgroups deny), then
//!    `unshare(CLONE_NEWNS)` and makes `/` private, and `fsopen("bpf")`s a bpffs context, which
//!    is therefore owned by the new user namespace;
//! 2. it checks that it cannot set `delegate_*` itself (that needs init-ns CAP_SYS_ADMIN; if it
//!    could, the test would prove nothing) and passes the context fd to the parent over
//!    `SCM_RIGHTS`;
//! 3. the parent (still in the init namespace, with CAP_SYS_ADMIN) sets `delegate_cmds`,
//!    `delegate_maps`, `delegate_progs` and `delegate_attachs` with `fsconfig` and runs
//!    `FSCONFIG_CMD_CREATE`, exactly as a container manager would;
//! 4. the child `fsmount`s the superblock, checks that re-configuring the delegation from inside
//!    is refused, places the mount where the scenario wants it (on `/sys/fs/bpf` or a private
//!    directory of its own mount namespace, or only as `/proc/self/fd/N`), and execs the scenario
//!    command as uid 0 of the namespace. `{bpffs}` in the command's arguments is replaced by the
//!    mount's path.
//!
//! The helper exits with the scenario's exit status (125 when the harness itself failed, with a
//! message on stderr naming the step and the errno).
//!
//! This module holds the only `unsafe` of the tests crate: raw mount-API syscalls, fork, waitpid
//! and SCM_RIGHTS, which no safe std API offers. Each block has a `// SAFETY:` comment.

use std::ffi::{CString, OsStr, OsString};
use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Exit status of the helper when the harness (not the scenario) failed.
pub const HARNESS_FAILURE: i32 = 125;

/// The four bpffs delegation mount options. An empty string leaves the option unset (mask 0).
/// Values use the kernel syntax: `any`, names without prefix joined by `:`, or a number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delegation {
    pub cmds: String,
    pub maps: String,
    pub progs: String,
    pub attachs: String,
}

impl Delegation {
    pub fn new(cmds: &str, maps: &str, progs: &str, attachs: &str) -> Self {
        Delegation {
            cmds: cmds.into(),
            maps: maps.into(),
            progs: progs.into(),
            attachs: attachs.into(),
        }
    }

    /// Everything delegated.
    pub fn any() -> Self {
        Self::new("any", "any", "any", "any")
    }

    /// A bpffs without any delegation: token creation fails with ENOENT.
    pub fn none() -> Self {
        Self::default()
    }

    fn options(&self) -> [(&'static str, &str); 4] {
        [
            ("delegate_cmds", &self.cmds),
            ("delegate_maps", &self.maps),
            ("delegate_progs", &self.progs),
            ("delegate_attachs", &self.attachs),
        ]
    }
}

/// Where the child places the delegated bpffs inside its own mount namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountAt {
    /// Over `/sys/fs/bpf` (the implicit token path).
    SysFsBpf,
    /// Over an existing directory (the host does not see the mount: private mount namespace).
    Dir(PathBuf),
    /// Not attached anywhere: only reachable as `/proc/self/fd/N` (libbpf's selftests' way).
    Fd,
    /// No bpffs at all: the command runs as uid 0 of a fresh user namespace without delegation.
    NoBpffs,
}

impl MountAt {
    fn to_arg(&self) -> OsString {
        match self {
            MountAt::SysFsBpf => "sysfs".into(),
            MountAt::Fd => "fd".into(),
            MountAt::NoBpffs => "none".into(),
            MountAt::Dir(p) => {
                let mut s = OsString::from("dir:");
                s.push(p.as_os_str());
                s
            }
        }
    }

    fn from_arg(s: &OsStr) -> Option<Self> {
        Some(match s.to_str()? {
            "sysfs" => MountAt::SysFsBpf,
            "fd" => MountAt::Fd,
            "none" => MountAt::NoBpffs,
            other => MountAt::Dir(PathBuf::from(other.strip_prefix("dir:")?)),
        })
    }
}

/// Test-side builder: runs `program args...` in a fresh user + mount namespace with a bpffs
/// delegated as configured, through the helper binary at `helper`.
#[derive(Debug, Clone)]
pub struct UsernsCommand {
    helper: PathBuf,
    delegation: Delegation,
    mount: MountAt,
    program: OsString,
    args: Vec<OsString>,
    envs: Vec<(OsString, Option<OsString>)>,
}

impl UsernsCommand {
    /// `helper` is the `userns-helper` binary (`env!("CARGO_BIN_EXE_userns-helper")`).
    pub fn new(helper: impl AsRef<Path>, program: impl AsRef<OsStr>) -> Self {
        UsernsCommand {
            helper: helper.as_ref().to_path_buf(),
            delegation: Delegation::none(),
            mount: MountAt::Fd,
            program: program.as_ref().to_os_string(),
            args: Vec::new(),
            envs: Vec::new(),
        }
    }

    pub fn delegate(mut self, d: Delegation) -> Self {
        self.delegation = d;
        self
    }

    pub fn mount_at(mut self, m: MountAt) -> Self {
        self.mount = m;
        self
    }

    /// `{bpffs}` in an argument is replaced by the path of the delegated mount.
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_os_string());
        self
    }

    pub fn args<I, S>(mut self, it: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(it.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// `{bpffs}` in the value is replaced as in arguments.
    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((k.as_ref().to_os_string(), Some(v.as_ref().to_os_string())));
        self
    }

    pub fn env_remove(mut self, k: impl AsRef<OsStr>) -> Self {
        self.envs.push((k.as_ref().to_os_string(), None));
        self
    }

    /// The helper invocation. `LIBBPF_BPF_TOKEN_PATH` from the test's own environment never
    /// leaks into a scenario: it is removed unless the scenario sets it.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.helper);
        c.env_remove("LIBBPF_BPF_TOKEN_PATH");
        for (k, v) in &self.envs {
            match v {
                Some(v) => {
                    // Passed to the helper as --env so that {bpffs} can be substituted.
                    let mut kv = k.clone();
                    kv.push("=");
                    kv.push(v);
                    c.arg("--env").arg(kv);
                }
                None => {
                    c.env_remove(k);
                }
            }
        }
        for (opt, val) in self.delegation.options() {
            if !val.is_empty() {
                c.arg(format!("--{opt}")).arg(val);
            }
        }
        c.arg("--mount").arg(self.mount.to_arg());
        c.arg("--").arg(&self.program).args(&self.args);
        c
    }

    pub fn output(&self) -> io::Result<Output> {
        self.command().output()
    }
}

// ------------------------------------------------------------------------------------------
// Helper side.

#[derive(Debug)]
struct HelperConfig {
    delegation: Delegation,
    mount: MountAt,
    envs: Vec<(OsString, OsString)>,
    program: OsString,
    args: Vec<OsString>,
}

fn parse_helper_args(mut it: impl Iterator<Item = OsString>) -> Result<HelperConfig, String> {
    let mut d = Delegation::none();
    let mut mount = MountAt::Fd;
    let mut envs = Vec::new();
    loop {
        let Some(a) = it.next() else {
            return Err("missing `-- PROGRAM [ARGS...]`".into());
        };
        let a = a.to_string_lossy().into_owned();
        if a == "--" {
            break;
        }
        let val = it.next().ok_or_else(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--delegate_cmds" => d.cmds = val.to_string_lossy().into_owned(),
            "--delegate_maps" => d.maps = val.to_string_lossy().into_owned(),
            "--delegate_progs" => d.progs = val.to_string_lossy().into_owned(),
            "--delegate_attachs" => d.attachs = val.to_string_lossy().into_owned(),
            "--mount" => {
                mount = MountAt::from_arg(&val).ok_or_else(|| format!("bad --mount {val:?}"))?
            }
            "--env" => {
                let s = val.to_string_lossy();
                let (k, v) = s.split_once('=').ok_or("--env needs KEY=VALUE")?;
                envs.push((k.into(), v.into()));
            }
            _ => return Err(format!("unknown option {a}")),
        }
    }
    let program = it.next().ok_or("missing PROGRAM after --")?;
    Ok(HelperConfig {
        delegation: d,
        mount,
        envs,
        program,
        args: it.collect(),
    })
}

/// Entry point of the `userns-helper` binary; returns the process exit status.
pub fn helper_main() -> i32 {
    let cfg = match parse_helper_args(std::env::args_os().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("userns-helper: {e}");
            eprintln!(
                "usage: userns-helper [--delegate_{{cmds,maps,progs,attachs}} V]... \
                 [--mount sysfs|fd|none|dir:PATH] [--env K=V]... -- PROGRAM [ARGS...]"
            );
            return 2;
        }
    };
    match run_helper(&cfg) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("userns-helper: {e}");
            HARNESS_FAILURE
        }
    }
}

/// An io::Error with the step that failed.
fn step(what: &str) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn run_helper(cfg: &HelperConfig) -> io::Result<i32> {
    // Captured before unshare: the ids the namespace's uid/gid 0 map to.
    let (uid, gid) = (current_uid(), current_gid());
    let (parent_sock, child_sock) = UnixStream::pair().map_err(step("socketpair"))?;

    // SAFETY: the helper is single-threaded (a fresh exec from the test runner with no thread
    // spawned yet), so the child may run arbitrary Rust, including allocation, before exec.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(step("fork")(io::Error::last_os_error()));
    }
    if pid == 0 {
        drop(parent_sock);
        let err = child(cfg, child_sock, uid, gid);
        eprintln!("userns-helper (namespace child): {err}");
        // SAFETY: _exit ends the forked child without running the parent's atexit handlers or
        // flushing buffers it shares with the parent.
        unsafe { libc::_exit(HARNESS_FAILURE) };
    }
    drop(child_sock);
    let parent_result = if cfg.mount == MountAt::NoBpffs {
        Ok(())
    } else {
        parent(cfg, parent_sock)
    };
    // Always reap the child; when the parent side failed the child sees EOF and exits.
    let status = wait_child(pid)?;
    parent_result?;
    Ok(status)
}

/// The privileged half: applies the delegation the child cannot set itself.
fn parent(cfg: &HelperConfig, mut sock: UnixStream) -> io::Result<()> {
    let fs_fd = match recv_fd(&sock) {
        Ok(Some(fd)) => fd,
        // The child failed before sending (it says why on stderr); its exit status reports it.
        Ok(None) => return Ok(()),
        Err(e) => return Err(step("receiving the bpffs context fd")(e)),
    };
    for (key, val) in cfg.delegation.options() {
        if !val.is_empty() {
            fsconfig_set_string(fs_fd.as_fd_ref(), key, val)
                .map_err(|e| io::Error::new(e.kind(), format!("fsconfig {key}={val}: {e}")))?;
        }
    }
    fsconfig_cmd(fs_fd.as_fd_ref(), libc::FSCONFIG_CMD_CREATE)
        .map_err(step("fsconfig FSCONFIG_CMD_CREATE"))?;
    drop(fs_fd);
    sock.write_all(&[1]).map_err(step("telling the child"))?;
    Ok(())
}

/// The namespace half. Only returns on failure (success execs the scenario).
fn child(cfg: &HelperConfig, mut sock: UnixStream, uid: u32, gid: u32) -> io::Error {
    let r: io::Result<std::convert::Infallible> = (|| {
        unshare(libc::CLONE_NEWUSER).map_err(step("unshare(CLONE_NEWUSER)"))?;
        fs::write("/proc/self/setgroups", "deny").map_err(step("/proc/self/setgroups"))?;
        fs::write("/proc/self/uid_map", format!("0 {uid} 1")).map_err(step("uid_map"))?;
        fs::write("/proc/self/gid_map", format!("0 {gid} 1")).map_err(step("gid_map"))?;
        set_root_ids().map_err(step("setresgid/setresuid(0)"))?;
        unshare(libc::CLONE_NEWNS).map_err(step("unshare(CLONE_NEWNS)"))?;
        make_root_private().map_err(step("mount(/, MS_REC|MS_PRIVATE)"))?;

        let mut bpffs_path: Option<OsString> = None;
        if cfg.mount != MountAt::NoBpffs {
            let fs_fd = fsopen_bpf().map_err(step("fsopen(\"bpf\")"))?;
            // The delegation must come from the privileged parent; if this namespace could
            // grant it to itself, the scenario would not test delegation at all.
            match fsconfig_set_string(fs_fd.as_fd_ref(), "delegate_cmds", "any") {
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
                Err(e) => return Err(step("self-delegation check (expected EPERM)")(e)),
                Ok(()) => {
                    return Err(io::Error::other(
                        "the namespace could set delegate_cmds itself (expected EPERM)",
                    ))
                }
            }
            send_fd(&sock, fs_fd.as_fd_ref()).map_err(step("sending the bpffs context fd"))?;
            let mut ok = [0u8; 1];
            sock.read_exact(&mut ok)
                .map_err(step("waiting for the parent's FSCONFIG_CMD_CREATE"))?;
            let mnt_fd = fsmount(fs_fd.as_fd_ref()).map_err(step("fsmount"))?;
            drop(fs_fd);
            check_reconfigure_denied(mnt_fd.as_fd_ref())?;
            bpffs_path = Some(match &cfg.mount {
                MountAt::SysFsBpf => {
                    move_mount(mnt_fd.as_fd_ref(), Path::new("/sys/fs/bpf"))
                        .map_err(step("move_mount to /sys/fs/bpf"))?;
                    "/sys/fs/bpf".into()
                }
                MountAt::Dir(d) => {
                    move_mount(mnt_fd.as_fd_ref(), d)
                        .map_err(|e| step(&format!("move_mount to {}", d.display()))(e))?;
                    d.clone().into_os_string()
                }
                MountAt::Fd => {
                    // Stays open across exec on purpose: the scenario reaches the mount through it.
                    let raw = mnt_fd.into_raw_fd();
                    clear_cloexec(raw).map_err(step("fcntl(F_SETFD) on the mount fd"))?;
                    format!("/proc/self/fd/{raw}").into()
                }
                MountAt::NoBpffs => unreachable!("checked above"),
            });
        }
        drop(sock.shutdown(std::net::Shutdown::Both));
        drop(sock);

        let subst = |s: &OsStr| -> OsString {
            match &bpffs_path {
                Some(p) => {
                    let p = p.to_string_lossy();
                    match s.to_str() {
                        Some(t) if t.contains("{bpffs}") => t.replace("{bpffs}", &p).into(),
                        _ => s.to_os_string(),
                    }
                }
                None => s.to_os_string(),
            }
        };
        let mut cmd = Command::new(&cfg.program);
        cmd.args(cfg.args.iter().map(|a| subst(a)));
        for (k, v) in &cfg.envs {
            cmd.env(k, subst(v));
        }
        if let Some(p) = &bpffs_path {
            cmd.env("USERNS_BPFFS", p);
        }
        let e = cmd.exec();
        Err(io::Error::new(
            e.kind(),
            format!("exec {}: {e}", Path::new(&cfg.program).display()),
        ))
    })();
    match r {
        Err(e) => e,
        Ok(never) => match never {},
    }
}

/// The superblock must refuse re-delegation from the unprivileged side too (fspick +
/// fsconfig), as libbpf's selftest asserts.
fn check_reconfigure_denied(mnt: BorrowedFd<'_>) -> io::Result<()> {
    let pick = fspick_empty(mnt).map_err(step("fspick(mnt_fd)"))?;
    match fsconfig_set_string(pick.as_fd_ref(), "delegate_maps", "any") {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => Ok(()),
        Err(e) => Err(step("reconfigure check (expected EPERM)")(e)),
        Ok(()) => Err(io::Error::other(
            "the namespace could reconfigure delegate_maps (expected EPERM)",
        )),
    }
}

// ------------------------------------------------------------------------------------------
// Thin syscall wrappers.

trait AsFdRef {
    fn as_fd_ref(&self) -> BorrowedFd<'_>;
}
impl AsFdRef for OwnedFd {
    fn as_fd_ref(&self) -> BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(self)
    }
}
impl AsFdRef for BorrowedFd<'_> {
    fn as_fd_ref(&self) -> BorrowedFd<'_> {
        *self
    }
}

fn cvt(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn cvt_fd(ret: libc::c_long) -> io::Result<OwnedFd> {
    let fd = cvt(ret)? as RawFd;
    // SAFETY: the kernel just returned this fd to us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

fn current_gid() -> u32 {
    // SAFETY: getgid has no preconditions and cannot fail.
    unsafe { libc::getgid() }
}

fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: unshare takes only flags; the helper child is single-threaded, which
    // CLONE_NEWUSER requires.
    cvt(unsafe { libc::unshare(flags) } as libc::c_long).map(drop)
}

fn set_root_ids() -> io::Result<()> {
    // SAFETY: plain id-setting syscalls with integer arguments.
    cvt(unsafe { libc::setresgid(0, 0, 0) } as libc::c_long)?;
    // SAFETY: as above.
    cvt(unsafe { libc::setresuid(0, 0, 0) } as libc::c_long).map(drop)
}

fn make_root_private() -> io::Result<()> {
    // SAFETY: all pointers are valid NUL-terminated strings or null where mount(2) allows null.
    cvt(unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    } as libc::c_long)
    .map(drop)
}

fn fsopen_bpf() -> io::Result<OwnedFd> {
    // SAFETY: fsopen(const char *fsname, unsigned flags) with a valid C string.
    cvt_fd(unsafe {
        libc::syscall(
            libc::SYS_fsopen,
            c"bpf".as_ptr(),
            libc::FSOPEN_CLOEXEC as libc::c_uint,
        )
    })
}

fn fsconfig_set_string(fd: BorrowedFd<'_>, key: &str, val: &str) -> io::Result<()> {
    let (k, v) = (cstr(key)?, cstr(val)?);
    // SAFETY: fsconfig(fd, FSCONFIG_SET_STRING, key, value, 0) with valid C strings that
    // outlive the call.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fd.as_raw_fd(),
            libc::FSCONFIG_SET_STRING as libc::c_uint,
            k.as_ptr(),
            v.as_ptr(),
            0 as libc::c_int,
        )
    })
    .map(drop)
}

fn fsconfig_cmd(fd: BorrowedFd<'_>, cmd: libc::c_uint) -> io::Result<()> {
    // SAFETY: fsconfig commands take null key/value and aux 0.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fd.as_raw_fd(),
            cmd,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0 as libc::c_int,
        )
    })
    .map(drop)
}

fn fsmount(fs_fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: fsmount(fs_fd, flags, attr_flags) takes only integers.
    cvt_fd(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs_fd.as_raw_fd(),
            libc::FSMOUNT_CLOEXEC as libc::c_uint,
            0 as libc::c_uint,
        )
    })
}

fn fspick_empty(mnt: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: fspick(dfd, "", FSPICK_EMPTY_PATH|FSPICK_CLOEXEC) with a valid C string.
    cvt_fd(unsafe {
        libc::syscall(
            libc::SYS_fspick,
            mnt.as_raw_fd(),
            c"".as_ptr(),
            (libc::FSPICK_EMPTY_PATH | libc::FSPICK_CLOEXEC) as libc::c_uint,
        )
    })
}

fn move_mount(mnt: BorrowedFd<'_>, to: &Path) -> io::Result<()> {
    let to = CString::new(to.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: move_mount(from_dfd, "", to_dfd, to_path, MOVE_MOUNT_F_EMPTY_PATH) with valid
    // C strings that outlive the call.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::MOVE_MOUNT_F_EMPTY_PATH as libc::c_uint,
        )
    })
    .map(drop)
}

fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_SETFD on an fd this process owns (leaked on purpose for the exec'd scenario).
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } as libc::c_long).map(drop)
}

fn wait_child(pid: libc::pid_t) -> io::Result<i32> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: waitpid on our own child with a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(step("waitpid")(e));
        }
    }
    Ok(if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        HARNESS_FAILURE
    })
}

/// Space for one fd in a control message, as CMSG_SPACE(sizeof(int)) (8-byte aligned).
const CMSG_BUF: usize = 24;

#[repr(C, align(8))]
struct CmsgBuf([u8; CMSG_BUF]);

fn send_fd(sock: &UnixStream, fd: BorrowedFd<'_>) -> io::Result<()> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut buf = CmsgBuf([0; CMSG_BUF]);
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = buf.0.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE only computes a size.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(4) } as _;
    assert!(msg.msg_controllen as usize <= CMSG_BUF);
    // SAFETY: msg_control points at a buffer of msg_controllen aligned bytes, so CMSG_FIRSTHDR
    // is non-null and its data area holds one int; sendmsg reads only the described buffers.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(4) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>(), fd.as_raw_fd());
        cvt(libc::sendmsg(sock.as_raw_fd(), &msg, 0) as libc::c_long).map(drop)
    }
}

/// Receives one fd; `None` when the peer closed the socket without sending.
fn recv_fd(sock: &UnixStream) -> io::Result<Option<OwnedFd>> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut buf = CmsgBuf([0; CMSG_BUF]);
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = buf.0.as_mut_ptr().cast();
    msg.msg_controllen = CMSG_BUF as _;
    // SAFETY: recvmsg writes at most the described iovec and control buffer; MSG_CMSG_CLOEXEC
    // makes the received fd close-on-exec.
    let n = cvt(
        unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) }
            as libc::c_long,
    )?;
    if n == 0 {
        return Ok(None);
    }
    // SAFETY: the kernel filled msg_control/msg_controllen; CMSG_FIRSTHDR/CMSG_DATA walk
    // within it, and an SCM_RIGHTS message of CMSG_LEN(4) carries exactly one fd we now own.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null()
            || (*c).cmsg_level != libc::SOL_SOCKET
            || (*c).cmsg_type != libc::SCM_RIGHTS
            || (*c).cmsg_len as usize != libc::CMSG_LEN(4) as usize
        {
            return Err(io::Error::other("no SCM_RIGHTS fd in the message"));
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
        Ok(Some(OwnedFd::from_raw_fd(fd)))
    }
}

// ------------------------------------------------------------------------------------------
// Helpers for scenario binaries and tests.

/// `umount2(path, MNT_DETACH)`: a lazy unmount, as a container manager tearing down a delegated
/// bpffs would do. Used inside a namespace (its uid 0 owns the mount namespace) to revoke the
/// path a token is created from.
pub fn umount_detach(path: &Path) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: umount2 with a valid NUL-terminated path that outlives the call.
    let r = unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Number of open fds of this process (the directory handle used to list them excluded).
pub fn open_fd_count() -> io::Result<usize> {
    Ok(open_fds()?.len())
}

/// The open fds of this process with their `/proc/self/fd` link targets, sorted by fd.
pub fn open_fds() -> io::Result<Vec<(RawFd, String)>> {
    let mut v = Vec::new();
    let dir = fs::read_dir("/proc/self/fd")?;
    for e in dir {
        let e = e?;
        let Some(fd) = e.file_name().to_str().and_then(|s| s.parse::<RawFd>().ok()) else {
            continue;
        };
        // The read_dir handle itself shows up and then disappears: skip what is gone.
        match fs::read_link(e.path()) {
            Ok(t) => v.push((fd, t.to_string_lossy().into_owned())),
            Err(_) => continue,
        }
    }
    // Drop the directory handle of this very listing (it is closed by now).
    v.retain(|(fd, _)| fcntl_alive(*fd));
    v.sort();
    Ok(v)
}

fn fcntl_alive(fd: RawFd) -> bool {
    // SAFETY: F_GETFD on any integer is harmless; it only reports whether the fd is open.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// `/proc/self/fd/N` link target, e.g. `anon_inode:bpf-token`.
pub fn fd_target(fd: RawFd) -> Option<String> {
    fs::read_link(format!("/proc/self/fd/{fd}"))
        .ok()
        .map(|t| t.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_args_round_trip() {
        let c = UsernsCommand::new("/h", "/bin/true")
            .delegate(Delegation::new("map_create", "", "xdp", "any"))
            .mount_at(MountAt::Dir("/tmp/x y".into()))
            .env("A", "{bpffs}/z")
            .arg("{bpffs}");
        let cmd = c.command();
        let args: Vec<OsString> = cmd.get_args().map(|a| a.to_os_string()).collect();
        let cfg = parse_helper_args(args.into_iter()).unwrap();
        assert_eq!(
            cfg.delegation,
            Delegation::new("map_create", "", "xdp", "any")
        );
        assert_eq!(cfg.mount, MountAt::Dir("/tmp/x y".into()));
        assert_eq!(cfg.envs, vec![("A".into(), "{bpffs}/z".into())]);
        assert_eq!(cfg.program, OsString::from("/bin/true"));
        assert_eq!(cfg.args, vec![OsString::from("{bpffs}")]);
    }

    #[test]
    fn helper_args_errors() {
        let a = |v: &[&str]| parse_helper_args(v.iter().map(OsString::from));
        assert!(a(&[]).is_err());
        assert!(a(&["--mount", "bogus", "--", "x"]).is_err());
        assert!(a(&["--delegate_cmds"]).is_err());
        assert!(a(&["--"]).is_err());
        assert!(a(&["--frob", "1", "--", "x"]).is_err());
    }
}
