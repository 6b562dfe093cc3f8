//! Shared helpers for the integration tests: privilege checks, fixture and corpus
//! paths, fd counting and the bpffs mount.
//!
//! Privileged tests start with `if !require_root("what") { return; }`. Outside CI
//! they skip with a clear line when not root; with `CI=true` they panic instead,
//! because CI must run them.

use std::path::{Path, PathBuf};

/// Whether this process is running in CI (`CI=true`), where skipping is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Returns true when the process is root (euid 0). Otherwise prints
/// `SKIP <what>: needs root` and returns false, or panics under `CI=true`.
pub fn require_root(what: &str) -> bool {
    if is_root() {
        return true;
    }
    skip_or_panic(what, "needs root")
}

/// Prints `SKIP <what>: <why>` and returns false, or panics under `CI=true`.
/// For tests that need something else the machine may lack (corpus, bpffs, ...).
pub fn skip_or_panic(what: &str, why: &str) -> bool {
    if in_ci() {
        panic!("{what}: {why}, and CI=true requires this test to run");
    }
    eprintln!("SKIP {what}: {why}");
    false
}

/// Whether the effective uid is 0.
pub fn is_root() -> bool {
    // /proc/self/status avoids an unsafe geteuid() call outside the sys crate.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Root of the workspace (the directory holding the workspace Cargo.toml).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests crate lives one level below the workspace root")
        .to_path_buf()
}

/// Path of a fixture object in `tests/bpf/`, e.g. `fixture("globals.bpf.o")`.
/// A name without an extension gets `.bpf.o` appended.
pub fn fixture(name: &str) -> PathBuf {
    let file = if name.contains('.') {
        name.to_string()
    } else {
        format!("{name}.bpf.o")
    };
    fixtures_dir().join(file)
}

/// `tests/bpf/`.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bpf")
}

/// Every committed fixture object (`tests/bpf/*.bpf.o`), sorted by name.
pub fn fixture_objects() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().ends_with(".bpf.o"))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// `../shared/corpus` relative to the workspace root, if present. CI has it there;
/// `BPFLOAD_CORPUS` overrides the location.
pub fn corpus_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BPFLOAD_CORPUS") {
        let p = PathBuf::from(p);
        return p.is_dir().then_some(p);
    }
    let p = workspace_root().parent()?.join("shared").join("corpus");
    p.is_dir().then_some(p)
}

/// Every `*.elf` object under the corpus, sorted by path.
pub fn corpus_objects(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "elf") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

/// Number of open file descriptors of this process (entries of `/proc/self/fd`,
/// minus the one `read_dir` itself holds while listing).
///
/// Tests that compare counts before and after a load must not run other
/// fd-creating work concurrently: use [`serial`] to hold a process-wide lock.
pub fn open_fd_count() -> usize {
    let n = std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count();
    n.saturating_sub(1)
}

/// A process-wide lock for tests that count fds or otherwise need the process
/// quiet. Poisoning is ignored: a failed test must not fail the others.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether a bpf filesystem is mounted at `path`.
pub fn is_bpffs_mounted(path: &str) -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .map(|m| {
            m.lines().any(|l| {
                let mut f = l.split_whitespace();
                let _src = f.next();
                f.next() == Some(path) && f.next() == Some("bpf")
            })
        })
        .unwrap_or(false)
}

/// Mounts bpffs at `/sys/fs/bpf` if it is not mounted (needs root), using the
/// `mount` command so that this crate stays free of `unsafe`.
pub fn ensure_bpffs() -> Result<PathBuf, String> {
    let path = "/sys/fs/bpf";
    if is_bpffs_mounted(path) {
        return Ok(PathBuf::from(path));
    }
    let _ = std::fs::create_dir_all(path);
    let out = std::process::Command::new("mount")
        .args(["-t", "bpf", "bpf", path])
        .output()
        .map_err(|e| format!("running mount -t bpf bpf {path}: {e}"))?;
    if !out.status.success() && !is_bpffs_mounted(path) {
        return Err(format!(
            "mount -t bpf bpf {path} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(PathBuf::from(path))
}

/// A fresh, empty directory under bpffs for one test's pins; removed on drop.
pub struct PinDir {
    path: PathBuf,
}

impl PinDir {
    /// Creates `/sys/fs/bpf/bpfload-test-<tag>-<pid>` (mounting bpffs if needed).
    pub fn new(tag: &str) -> Result<Self, String> {
        let root = ensure_bpffs()?;
        let path = root.join(format!("bpfload-test-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).map_err(|e| format!("mkdir {}: {e}", path.display()))?;
        Ok(PinDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Number of possible CPUs, from `/sys/devices/system/cpu/possible` (e.g. "0-3").
pub fn possible_cpus() -> Option<u32> {
    let s = std::fs::read_to_string("/sys/devices/system/cpu/possible").ok()?;
    let mut n = 0u32;
    for part in s.trim().split(',') {
        match part.split_once('-') {
            Some((a, b)) => n += b.parse::<u32>().ok()? - a.parse::<u32>().ok()? + 1,
            None => {
                part.parse::<u32>().ok()?;
                n += 1
            }
        }
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_are_present() {
        let _g = serial();
        let objs = fixture_objects();
        assert!(
            objs.iter().any(|p| p.ends_with("globals.bpf.o")),
            "fixtures missing: {objs:?}"
        );
        assert!(fixture("demo").is_file());
    }

    #[test]
    fn fd_count_sees_a_new_fd() {
        let _g = serial();
        let before = open_fd_count();
        let f = std::fs::File::open("/proc/self/status").unwrap();
        assert_eq!(open_fd_count(), before + 1);
        drop(f);
        assert_eq!(open_fd_count(), before);
    }

    #[test]
    fn possible_cpus_parses() {
        let _g = serial();
        let n = possible_cpus().expect("possible cpus");
        assert!(n >= 1);
    }
}
