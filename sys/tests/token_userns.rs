//! A real BPF token, end to end, following the kernel selftest harness (libbpf-behaviour.md §4.1):
//! a child enters a new user + mount namespace and opens a bpffs context (`fsopen`); the privileged parent
//! sets the `delegate_*` options and creates the superblock (only init-ns CAP_SYS_ADMIN may); the child mounts
//! it (`fsmount`), creates a token from its root, and uses it through our wrappers.
//!
//! What it proves: the wrappers put the token fd *and* `BPF_F_TOKEN_FD` where the kernel looks for them
//! (MAP_CREATE, BTF_LOAD, PROG_LOAD, BTF_GET_FD_BY_ID), since without the token the same calls fail with EPERM
//! in the user namespace; and `token_info` reads the delegation masks back.
//!
//! `harness = false`: unshare(CLONE_NEWUSER) needs a single-threaded process, which libtest is not.

mod common;

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use bpfload_syscall::uapi::{bpf_map_type, bpf_prog_type, BPF_F_TOKEN_FD};
use bpfload_syscall::{
    btf, info, map, prog, token, Errno, LogOptions, MapCreateAttr, ProgLoadAttr,
};
use common::{int_btf, require_root, ret_imm};

const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(what.to_string())
    }
}

fn last_err(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

fn write_file(path: &str, data: &str) -> Result<(), String> {
    std::fs::write(path, data).map_err(|e| format!("write {path}: {e}"))
}

fn read_exact(fd: RawFd, buf: &mut [u8]) -> Result<(), String> {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: reads into the unfilled tail of `buf`.
        let n = unsafe { libc::read(fd, buf[done..].as_mut_ptr().cast(), buf.len() - done) };
        if n <= 0 {
            return Err(last_err("read from pipe"));
        }
        done += n as usize;
    }
    Ok(())
}

fn write_all(fd: RawFd, buf: &[u8]) -> Result<(), String> {
    // SAFETY: writes from a live buffer; pipes accept small writes whole.
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    check(n == buf.len() as isize, &last_err("write to pipe"))
}

fn pipe() -> (RawFd, RawFd) {
    let mut p = [0; 2];
    // SAFETY: `p` has room for the two fds.
    assert_eq!(unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    (p[0], p[1])
}

/// Child side. Returns Err with a message on the first failed expectation.
fn child(to_parent: RawFd, from_parent: RawFd) -> Result<(), String> {
    // SAFETY: unshare takes no pointers; the result is checked.
    if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
        return Err(last_err("unshare(CLONE_NEWUSER)"));
    }
    write_file("/proc/self/setgroups", "deny")?;
    write_file("/proc/self/uid_map", "0 0 1")?;
    write_file("/proc/self/gid_map", "0 0 1")?;
    // SAFETY: unshare takes no pointers; the result is checked.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(last_err("unshare(CLONE_NEWNS)"));
    }
    let root = CString::new("/").unwrap();
    // SAFETY: NUL-terminated target path and null source/fstype/data, as mount(2) allows for MS_PRIVATE.
    if unsafe {
        libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    } != 0
    {
        return Err(last_err("mount / private"));
    }

    // Without a token, BPF is off limits in this user namespace.
    let array = MapCreateAttr {
        map_type: bpf_map_type::BPF_MAP_TYPE_ARRAY as u32,
        key_size: 4,
        value_size: 4,
        max_entries: 1,
        name: Some("tok_map"),
        ..Default::default()
    };
    match map::create(&array) {
        Err(e) if e.errno() == Errno::EPERM => {}
        other => {
            return Err(format!(
                "tokenless MAP_CREATE in userns: expected EPERM, got {other:?}"
            ))
        }
    }

    let fstype = CString::new("bpf").unwrap();
    // SAFETY: `fstype` is NUL-terminated and outlives the call; the result is checked.
    let fs_fd = unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), 0) };
    if fs_fd < 0 {
        return Err(last_err("fsopen(bpf)"));
    }
    let fs_fd = fs_fd as RawFd;
    write_all(to_parent, &fs_fd.to_ne_bytes())?;
    let mut ack = [0u8; 1];
    read_exact(from_parent, &mut ack)?;
    check(ack[0] == 1, "parent failed to configure the bpffs")?;

    // SAFETY: fsmount takes only integers; the result is checked.
    let mnt_fd = unsafe { libc::syscall(libc::SYS_fsmount, fs_fd, 0, 0) };
    if mnt_fd < 0 {
        return Err(last_err("fsmount"));
    }
    // SAFETY: a fresh fd returned just above, owned by nothing else.
    let mnt = unsafe { OwnedFd::from_raw_fd(mnt_fd as RawFd) };
    let dot = CString::new(".").unwrap();
    // SAFETY: `mnt` is a live mount fd and `dot` a NUL-terminated path; the result is checked.
    let bpffs = unsafe {
        libc::openat(
            mnt.as_raw_fd(),
            dot.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if bpffs < 0 {
        return Err(last_err("openat(mnt, .)"));
    }
    // SAFETY: a fresh fd returned just above, owned by nothing else.
    let bpffs = unsafe { OwnedFd::from_raw_fd(bpffs) };

    let tok = token::create(bpffs.as_fd(), 0).map_err(|e| format!("token::create: {e}"))?;
    check(tok.as_raw_fd() > 2, "token fd must be > 2")?;
    check(
        bpfload_syscall::fd::kind(tok.as_fd()).map_err(|e| e.to_string())?
            == bpfload_syscall::fd::ObjKind::Token,
        "token fd kind",
    )?;

    // token_info (kernel 6.17+): everything was delegated as "any".
    match info::token_info(tok.as_fd()) {
        Ok(ti) => check(
            ti.allowed_cmds == u64::MAX
                && ti.allowed_maps == u64::MAX
                && ti.allowed_progs == u64::MAX
                && ti.allowed_attachs == u64::MAX,
            &format!("token_info masks: {ti:?}"),
        )?,
        Err(e) if e.errno() == Errno::EINVAL => {
            eprintln!("note: token_info not supported by this kernel")
        }
        Err(e) => return Err(format!("token_info: {e}")),
    }

    // MAP_CREATE with the token works; the kernel strips BPF_F_TOKEN_FD from the stored flags.
    let m = map::create(&MapCreateAttr {
        token: Some(tok.as_fd()),
        ..array
    })
    .map_err(|e| format!("MAP_CREATE with token: {e}"))?;
    let mi = info::map_info(m.as_fd()).map_err(|e| format!("map_info: {e}"))?;
    check(
        mi.map_flags & BPF_F_TOKEN_FD == 0,
        "BPF_F_TOKEN_FD leaked into map_info.map_flags",
    )?;

    // BTF_LOAD: EPERM without, works with.
    let blob = int_btf();
    match btf::load(&blob, None, &LogOptions::default()) {
        Err(e) if e.errno() == Errno::EPERM => {}
        other => return Err(format!("tokenless BTF_LOAD: expected EPERM, got {other:?}")),
    }
    let b = btf::load(&blob, Some(tok.as_fd()), &LogOptions::default())
        .map_err(|e| format!("BTF_LOAD with token: {e}"))?;

    // PROG_LOAD: EPERM without, works with.
    let insns = ret_imm(0);
    let pa = ProgLoadAttr {
        prog_type: bpf_prog_type::BPF_PROG_TYPE_SOCKET_FILTER as u32,
        insns: &insns,
        license: c"GPL",
        name: Some("tok_prog"),
        ..Default::default()
    };
    match prog::load(&pa, &LogOptions::default()) {
        Err(e) if e.errno() == Errno::EPERM => {}
        other => {
            return Err(format!(
                "tokenless PROG_LOAD: expected EPERM, got {other:?}"
            ))
        }
    }
    let p = prog::load(
        &ProgLoadAttr {
            token: Some(tok.as_fd()),
            ..pa
        },
        &LogOptions::default(),
    )
    .map_err(|e| format!("PROG_LOAD with token: {e}"))?;
    check(p.as_raw_fd() > 2, "prog fd > 2")?;

    // BTF_GET_FD_BY_ID needs CAP_SYS_ADMIN: EPERM without a token, works with one (kernel 6.15+).
    let id = info::btf_info(b.as_fd())
        .map_err(|e| format!("btf_info: {e}"))?
        .id;
    match btf::get_fd_by_id(id, None) {
        Err(e) if e.errno() == Errno::EPERM => {}
        other => {
            return Err(format!(
                "tokenless BTF_GET_FD_BY_ID: expected EPERM, got {other:?}"
            ))
        }
    }
    match btf::get_fd_by_id(id, Some(tok.as_fd())) {
        Ok(fd) => {
            let again = info::btf_info(fd.as_fd()).map_err(|e| format!("btf_info: {e}"))?;
            check(
                again.id == id,
                "BTF_GET_FD_BY_ID with token returned another object",
            )?;
        }
        Err(e) if e.errno() == Errno::EINVAL => {
            eprintln!("note: kernel predates BTF_GET_FD_BY_ID tokens")
        }
        Err(e) => return Err(format!("BTF_GET_FD_BY_ID with token: {e}")),
    }
    Ok(())
}

/// Parent side: configure the child's bpffs context with delegation (needs init-ns CAP_SYS_ADMIN).
fn configure(pid: libc::pid_t, child_fs_fd: RawFd) -> Result<(), String> {
    // SAFETY: pidfd_open takes only integers; the result is checked.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pidfd < 0 {
        return Err(last_err("pidfd_open"));
    }
    // SAFETY: a fresh fd returned just above, owned by nothing else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) };
    // SAFETY: pidfd_getfd takes only integers; the result is checked.
    let fs = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), child_fs_fd, 0) };
    if fs < 0 {
        return Err(last_err("pidfd_getfd"));
    }
    // SAFETY: a fresh fd returned just above, owned by nothing else.
    let fs = unsafe { OwnedFd::from_raw_fd(fs as RawFd) };
    for key in [
        "delegate_cmds",
        "delegate_maps",
        "delegate_progs",
        "delegate_attachs",
    ] {
        let k = CString::new(key).unwrap();
        let v = CString::new("any").unwrap();
        // SAFETY: `fs` is a live fs-context fd; key/value strings (or nulls for CMD_CREATE) outlive the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                FSCONFIG_SET_STRING,
                k.as_ptr(),
                v.as_ptr(),
                0,
            )
        };
        if r != 0 {
            return Err(last_err(&format!("fsconfig {key}=any")));
        }
    }
    // SAFETY: `fs` is a live fs-context fd; key/value strings (or nulls for CMD_CREATE) outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<u8>(),
            std::ptr::null::<u8>(),
            0,
        )
    };
    if r != 0 {
        return Err(last_err("fsconfig CMD_CREATE"));
    }
    Ok(())
}

fn main() {
    // Behave like a libtest binary for `cargo test -- <filter>` runs that do not select us.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if !args.is_empty()
        && !args
            .iter()
            .any(|a| "token_in_user_namespace".contains(a.as_str()))
    {
        return;
    }
    if !require_root("token_in_user_namespace") {
        return;
    }
    let (c_read, p_write) = pipe(); // parent -> child
    let (p_read, c_write) = pipe(); // child -> parent

    // SAFETY: this process is single-threaded here (harness = false, no threads spawned yet), so the child may
    // run ordinary code after fork.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = match child(c_write, c_read) {
            Ok(()) => 0,
            Err(msg) => {
                eprintln!("token_in_user_namespace (child): {msg}");
                1
            }
        };
        // SAFETY: leave the child without running the parent's exit handlers.
        unsafe { libc::_exit(code) };
    }

    let mut buf = [0u8; 4];
    let outcome =
        read_exact(p_read, &mut buf).and_then(|()| configure(pid, RawFd::from_ne_bytes(buf)));
    let ack = [outcome.is_ok() as u8];
    let _ = write_all(p_write, &ack);
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if let Err(msg) = outcome {
        panic!("token_in_user_namespace (parent): {msg}");
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "token_in_user_namespace: child failed (status {status:#x}); see its message above"
    );
    println!("test token_in_user_namespace ... ok");
}
