//! Shared helpers for the integration tests: privilege checks, fixture and corpus
//! paths, fd counting and the bpffs mount.
//!
//! Privileged tests start with `if !require_root("what") { return; }`. Outside CI
//! they skip with a clear line when not root; with `CI=true` they panic instead,
//! because CI must run them.

use std::path::{Path, PathBuf};

pub mod userns;

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

/// `../shared/corpus` relative to the workspace root, if present (CI has it there). A checkout
/// nested deeper (a git worktree such as `/work/wt/<name>`) finds the nearest ancestor's
/// `shared/corpus` instead, so corpus tests run there too rather than skipping.
/// `BPFLOAD_CORPUS` overrides the location.
pub fn corpus_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BPFLOAD_CORPUS") {
        let p = PathBuf::from(p);
        return p.is_dir().then_some(p);
    }
    let root = workspace_root();
    root.ancestors()
        .skip(1)
        .map(|a| a.join("shared").join("corpus"))
        .find(|p| p.is_dir())
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

/// The open fds of this process and what each refers to, for leak checks: an fd that is open
/// after an operation and was not open (to the same file) before it is a leak. Sets, not counts:
/// an unrelated fd closing during the operation can neither fail the check nor hide a leak, and a
/// failure names the leaked fds.
pub struct FdSnapshot(std::collections::BTreeMap<std::os::fd::RawFd, String>);

impl FdSnapshot {
    /// The fds open now (the listing's own directory handle excluded).
    pub fn take() -> FdSnapshot {
        FdSnapshot(
            userns::open_fds()
                .expect("list /proc/self/fd")
                .into_iter()
                .collect(),
        )
    }

    /// The fds open now that were not open at the snapshot, as `"fd N -> target"`.
    pub fn leaked(&self) -> Vec<String> {
        FdSnapshot::take()
            .0
            .into_iter()
            .filter(|(fd, target)| self.0.get(fd) != Some(target))
            .map(|(fd, target)| format!("fd {fd} -> {target}"))
            .collect()
    }

    /// Panics naming `what` and the leaked fds if any fd opened since the snapshot is still open.
    /// An fd that closed meanwhile is not an error (the operation may close a cached fd, or a
    /// previous test's thread may finish); it is reported on stderr so it can be told apart.
    pub fn assert_none_leaked(&self, what: impl std::fmt::Display) {
        let now = FdSnapshot::take();
        let leaked = self.leaked();
        assert!(leaked.is_empty(), "{what}: fds leaked: {leaked:?}");
        for (fd, target) in &self.0 {
            if now.0.get(fd) != Some(target) {
                eprintln!("note: {what}: fd {fd} -> {target} closed meanwhile (not a leak)");
            }
        }
    }
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
    fn fd_snapshot_names_a_leak_and_ignores_a_close() {
        let _g = serial();
        let old = std::fs::File::open("/proc/self/status").unwrap();
        let snap = FdSnapshot::take();
        let new = std::fs::File::open("/proc/self/stat").unwrap();
        let leaked = snap.leaked();
        assert_eq!(leaked.len(), 1, "{leaked:?}");
        assert!(leaked[0].ends_with("/stat"), "{leaked:?}");
        let panic = std::panic::catch_unwind(|| snap.assert_none_leaked("check")).unwrap_err();
        let msg = panic.downcast_ref::<String>().unwrap();
        assert!(
            msg.contains("check: fds leaked") && msg.contains("/stat"),
            "{msg}"
        );
        drop(new);
        // An fd that was open at the snapshot and closed since is not a leak.
        drop(old);
        assert!(snap.leaked().is_empty());
        snap.assert_none_leaked("after closing");
    }

    #[test]
    fn possible_cpus_parses() {
        let _g = serial();
        let n = possible_cpus().expect("possible cpus");
        assert!(n >= 1);
    }
}

/// libbpf's result for one corpus program, from the table in `corpus/README.md`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedProgram {
    pub name: String,
    pub section: String,
    /// `None` when libbpf loaded it, else the errno it failed with.
    pub errno: Option<i32>,
}

/// One row of the table in `corpus/README.md`: what libbpf 1.7 did with an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedObject {
    /// Path relative to the corpus directory, e.g. `cilium-ebpf/testdata/kconfig-el.elf`.
    pub path: String,
    /// `None` when libbpf opened it, else (errno, message).
    pub open_error: Option<(i32, String)>,
    pub programs: Vec<ExpectedProgram>,
}

/// Parses the libbpf results table of `corpus/README.md`. Rows name objects relative to
/// `cilium-ebpf/`; the returned paths are relative to the corpus directory.
pub fn corpus_expectations(corpus: &Path) -> Result<Vec<ExpectedObject>, String> {
    let text = std::fs::read_to_string(corpus.join("README.md"))
        .map_err(|e| format!("reading corpus README: {e}"))?;
    let mut rows = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix('|') else {
            continue;
        };
        let cells: Vec<&str> = rest.split('|').map(str::trim).collect();
        if cells.len() < 3 || !cells[0].ends_with(".elf") {
            continue;
        }
        let open_error = if cells[1] == "ok" {
            None
        } else {
            let (errno, msg) = parse_errno_prefix(cells[1])
                .ok_or_else(|| format!("corpus README: bad open cell {:?}", cells[1]))?;
            Some((errno, msg.to_string()))
        };
        let mut programs = Vec::new();
        for entry in cells[2].split(';').map(str::trim).filter(|e| !e.is_empty()) {
            programs.push(parse_program_cell(entry).ok_or_else(|| {
                format!(
                    "corpus README: bad program entry {entry:?} for {}",
                    cells[0]
                )
            })?);
        }
        rows.push(ExpectedObject {
            path: format!("cilium-ebpf/{}", cells[0]),
            open_error,
            programs,
        });
    }
    if rows.is_empty() {
        return Err("corpus README: no result rows found".into());
    }
    Ok(rows)
}

/// "`name` (section): ok" or "`name` (section): EINVAL (22)".
fn parse_program_cell(entry: &str) -> Option<ExpectedProgram> {
    let rest = entry.strip_prefix('`')?;
    let (name, rest) = rest.split_once('`')?;
    let rest = rest.trim_start().strip_prefix('(')?;
    let (section, rest) = rest.split_once("):")?;
    let result = rest.trim();
    let errno = if result == "ok" {
        None
    } else {
        Some(parse_errno_prefix(result)?.0)
    };
    Some(ExpectedProgram {
        name: name.to_string(),
        section: section.to_string(),
        errno,
    })
}

/// "EINVAL (22)..." -> (22, rest after the closing parenthesis, without a leading ':').
fn parse_errno_prefix(s: &str) -> Option<(i32, &str)> {
    let open = s.find('(')?;
    let close = open + s[open..].find(')')?;
    let errno = s[open + 1..close].parse().ok()?;
    let msg = s[close + 1..].trim_start_matches(':').trim();
    Some((errno, msg))
}

#[cfg(test)]
mod corpus_table_tests {
    use super::*;

    #[test]
    fn parses_program_cells() {
        let p = parse_program_cell("`tail_1` (socket/tail): EINVAL (22)").unwrap();
        assert_eq!(p.name, "tail_1");
        assert_eq!(p.section, "socket/tail");
        assert_eq!(p.errno, Some(22));
        let p = parse_program_cell("`filter` (xdp): ok").unwrap();
        assert_eq!(p.errno, None);
        assert!(parse_program_cell("filter (xdp): ok").is_none());
    }

    #[test]
    fn parses_the_real_table_when_present() {
        // Opens files: hold the fd-counting lock so `fd_count_sees_a_new_fd` sees a quiet process.
        let _g = serial();
        let Some(dir) = corpus_dir() else {
            skip_or_panic("corpus table parse", "../shared/corpus is absent");
            return;
        };
        let rows = corpus_expectations(&dir).unwrap();
        let kconfig = rows
            .iter()
            .find(|r| r.path.ends_with("testdata/kconfig-el.elf"))
            .unwrap();
        assert_eq!(kconfig.open_error, None);
        assert_eq!(kconfig.programs.len(), 1);
        let legacy = rows
            .iter()
            .find(|r| r.path.ends_with("testdata/invalid_map-el.elf"))
            .unwrap();
        assert_eq!(legacy.open_error.as_ref().unwrap().0, 95);
        for r in &rows {
            assert!(
                dir.join(&r.path).is_file(),
                "table names a missing object {}",
                r.path
            );
        }
    }
}
