//! Side-by-side load-path measurements: bpfload, C libbpf (libbpf-rs), aya-obj 0.3 and aya 0.14.
//!
//! Time is measured three ways per operation: wall clock, and the process's user and system CPU
//! time (`getrusage(RUSAGE_SELF)`, so a parallel loader's worker threads count). BPF_PROG_LOAD,
//! BTF_LOAD and MAP_CREATE run the verifier and friends in the kernel on the calling thread, so
//! system time is (almost all) time in bpf(2), and
//! user time is the loader's own work: the "user-space time" the issues set targets for.
//! Peak memory is measured in a fresh child process per library (VmHWM after resetting it through
//! `/proc/self/clear_refs`), so one library's freed heap cannot hide another's peak.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::libbpf_side;

/// A library under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lib {
    /// bpfload with its default thread count (one program-loading thread per CPU for objects of
    /// at least `bpfload::PARALLEL_MIN_INSNS` instructions, else the calling thread).
    Bpfload,
    /// bpfload with one loading thread (serial, like libbpf and aya).
    BpfloadSerial,
    Libbpf,
    /// aya-obj 0.3: parsing only (it has no load path of its own).
    AyaObj,
    /// aya 0.14: full loads (aya-obj inside, plus map/BTF/program creation).
    Aya,
}

impl Lib {
    pub fn name(self) -> &'static str {
        match self {
            Lib::Bpfload => "bpfload",
            Lib::BpfloadSerial => "bpfload-1t",
            Lib::Libbpf => "libbpf",
            Lib::AyaObj => "aya-obj",
            Lib::Aya => "aya",
        }
    }

    pub fn parse(s: &str) -> Option<Lib> {
        [
            Lib::Bpfload,
            Lib::BpfloadSerial,
            Lib::Libbpf,
            Lib::AyaObj,
            Lib::Aya,
        ]
        .into_iter()
        .find(|l| l.name() == s)
    }
}

/// What is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Parse the object (ELF, BTF, programs, maps, relocation records); no syscalls for bpf.
    Open,
    /// Open + everything up to the programs' final instructions (CO-RE, calls, maps created).
    Prepare,
    /// Open + prepare + load every program, then release everything.
    Load,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Open => "open",
            Op::Prepare => "prepare",
            Op::Load => "load",
        }
    }

    pub fn parse(s: &str) -> Option<Op> {
        [Op::Open, Op::Prepare, Op::Load]
            .into_iter()
            .find(|o| o.name() == s)
    }
}

/// Runs `op` once with `lib` on the object at `path`. `Err` names what failed, or says that
/// the library has no such operation.
pub fn run_once(lib: Lib, op: Op, path: &Path) -> Result<(), String> {
    match (lib, op) {
        (Lib::Libbpf, Op::Open) => libbpf_side::open(path).map(drop).map_err(|f| f.message),
        (Lib::Libbpf, Op::Prepare) => {
            let obj = libbpf_side::open(path).map_err(|f| f.message)?;
            libbpf_step(&obj, libbpf_sys::bpf_object__prepare)
        }
        (Lib::Libbpf, Op::Load) => {
            let obj = libbpf_side::open(path).map_err(|f| f.message)?;
            libbpf_step(&obj, libbpf_sys::bpf_object__load)
        }
        (Lib::AyaObj, Op::Open) => {
            let data = std::fs::read(path).map_err(|e| e.to_string())?;
            aya_obj::Object::parse(&data)
                .map(drop)
                .map_err(|e| e.to_string())
        }
        (Lib::Aya, Op::Load) => aya_load(path),
        (Lib::Bpfload, op) => crate::bpfload_side::run_once(op, path, None),
        (Lib::BpfloadSerial, op) => crate::bpfload_side::run_once(op, path, Some(1)),
        (lib, op) => Err(format!("{} has no separate {} step", lib.name(), op.name())),
    }
}

fn libbpf_step(
    obj: &libbpf_rs::OpenObject,
    step: unsafe extern "C" fn(*mut libbpf_sys::bpf_object) -> i32,
) -> Result<(), String> {
    use libbpf_rs::AsRawLibbpf;
    // SAFETY: the object is live and owned by `obj`, which closes it (and every fd) on drop.
    let err = unsafe { step(obj.as_libbpf_object().as_ptr()) };
    if err == 0 {
        Ok(())
    } else {
        Err(format!("libbpf: {}", crate::kernel::errno_name(-err)))
    }
}

fn aya_load(path: &Path) -> Result<(), String> {
    let data = std::fs::read(path).map_err(|e| e.to_string())?;
    let mut ebpf = aya::Ebpf::load(&data).map_err(|e| format!("aya: {e}"))?;
    for (name, prog) in ebpf.programs_mut() {
        let r = match prog {
            aya::programs::Program::KProbe(p) => p.load(),
            aya::programs::Program::Xdp(p) => p.load(),
            aya::programs::Program::SocketFilter(p) => p.load(),
            aya::programs::Program::TracePoint(p) => p.load(),
            other => {
                return Err(format!(
                    "aya bench: program {name} of type {:?} not handled",
                    other.prog_type()
                ))
            }
        };
        r.map_err(|e| format!("aya: program {name}: {e}"))?;
    }
    Ok(())
}

/// CPU time of this process, all threads (a parallel loader's workers count): (user, system).
pub fn process_cpu() -> (Duration, Duration) {
    let mut ru: libc::rusage = unsafe_zeroed_rusage();
    // SAFETY: ru is a valid, writable rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (tv(ru.ru_utime), tv(ru.ru_stime))
}

fn unsafe_zeroed_rusage() -> libc::rusage {
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

/// Nanoseconds spent inside bpf(2), summed over all threads, when the running binary counts them
/// (load-bench interposes libc's `syscall()`, which libbpf, aya and bpfload all call for bpf(2)).
pub static BPF_NS: AtomicU64 = AtomicU64::new(0);
/// Wall-clock nanoseconds during which at least one thread was inside bpf(2).
pub static BPF_BUSY_NS: AtomicU64 = AtomicU64::new(0);
/// Number of bpf(2) calls counted into [`BPF_NS`].
pub static BPF_CALLS: AtomicU64 = AtomicU64::new(0);
/// Set by a binary that counts bpf(2) time into [`BPF_NS`].
pub static BPF_TIMED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Result of repeating one operation.
#[derive(Clone, Debug)]
pub struct Sample {
    pub iters: u32,
    /// Median wall time of one run.
    pub wall: Duration,
    /// Median of (wall - wall time with some thread inside bpf(2)) per run: the user-space time.
    pub outside_bpf: Option<Duration>,
    /// Median wall time per run during which some thread was inside bpf(2), when counted.
    pub bpf: Option<Duration>,
    /// Mean time inside bpf(2) per run summed over threads (exceeds `bpf` when loads overlap).
    pub bpf_sum: Option<Duration>,
    /// Mean bpf(2) calls per run, when counted.
    pub bpf_calls: Option<u64>,
    /// Mean user CPU time per run (tick-sampled by the kernel, so means over many runs).
    pub user: Duration,
    /// Mean system CPU time per run.
    pub sys: Duration,
}

impl Sample {
    /// User-space time as the issues define it: total time minus time inside bpf(2) (the wall
    /// time during which no thread was in bpf(2)). Without a bpf(2) count, user CPU time.
    pub fn user_space(&self) -> Duration {
        self.outside_bpf.unwrap_or(self.user)
    }
}

/// Repeats `op` until `budget` is spent (at least `min_iters`, at most `max_iters` runs).
pub fn measure(
    lib: Lib,
    op: Op,
    path: &Path,
    min_iters: u32,
    max_iters: u32,
    budget: Duration,
) -> Result<Sample, String> {
    // Warm-up: first-use costs (feature probes, vmlinux BTF caches) are measured separately.
    run_once(lib, op, path)?;
    let mut walls = Vec::new();
    let mut busy = Vec::new();
    let mut outside = Vec::new();
    let start = Instant::now();
    let (b0, c0) = (
        BPF_NS.load(Ordering::Relaxed),
        BPF_CALLS.load(Ordering::Relaxed),
    );
    let (u0, s0) = process_cpu();
    while (walls.len() as u32) < max_iters
        && ((walls.len() as u32) < min_iters || start.elapsed() < budget)
    {
        let busy0 = BPF_BUSY_NS.load(Ordering::Relaxed);
        let t = Instant::now();
        run_once(lib, op, path)?;
        let wall = t.elapsed();
        let b = Duration::from_nanos(BPF_BUSY_NS.load(Ordering::Relaxed) - busy0);
        walls.push(wall);
        busy.push(b);
        outside.push(wall.saturating_sub(b));
    }
    let (u1, s1) = process_cpu();
    let (b1, c1) = (
        BPF_NS.load(Ordering::Relaxed),
        BPF_CALLS.load(Ordering::Relaxed),
    );
    let n = walls.len() as u32;
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let timed = BPF_TIMED.load(Ordering::Relaxed);
    Ok(Sample {
        iters: n,
        wall: median(&mut walls),
        outside_bpf: timed.then(|| median(&mut outside)),
        bpf: timed.then(|| median(&mut busy)),
        bpf_sum: timed.then(|| Duration::from_nanos((b1 - b0) / n as u64)),
        bpf_calls: timed.then(|| (c1 - c0) / n as u64),
        user: (u1 - u0) / n,
        sys: (s1 - s0) / n,
    })
}

fn proc_status_kb(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// How a peak-RSS measurement treats the code of the libraries under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RssMode {
    /// A cold process: the pages of code the operation runs for the first time count too.
    /// They are page cache shared with every process that maps the binary, and the kernel maps
    /// them in large-folio/fault-around chunks, so this column mostly measures how spread the
    /// executed code is in the binary.
    Cold,
    /// Every file-backed mapping (the binary's code and data, libc, ...) is made resident
    /// first (`MADV_POPULATE_READ`), so the peak only counts what the operation itself adds:
    /// its private memory (heap, anonymous maps, stacks) and any file it maps.
    CodeResident,
}

impl RssMode {
    pub fn name(self) -> &'static str {
        match self {
            RssMode::Cold => "cold",
            RssMode::CodeResident => "code-resident",
        }
    }

    pub fn parse(s: &str) -> Option<RssMode> {
        [RssMode::Cold, RssMode::CodeResident]
            .into_iter()
            .find(|m| m.name() == s)
    }
}

/// Makes every file-backed mapping of this process resident (for [`RssMode::CodeResident`]).
pub fn populate_file_mappings() -> Result<(), String> {
    let maps = std::fs::read_to_string("/proc/self/maps").map_err(|e| format!("maps: {e}"))?;
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else {
            continue;
        };
        // Only mappings of a file path; [vdso], [vvar] and friends cannot be populated.
        if !f.nth(3).is_some_and(|p| p.starts_with('/')) || !perms.starts_with('r') {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) else {
            continue;
        };
        // SAFETY: advice on a range that /proc/self/maps lists as mapped readable; POPULATE_READ
        // only faults pages in, it never changes their contents. Failure (old kernel) is reported.
        let r = unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_POPULATE_READ) };
        if r != 0 {
            return Err(format!(
                "madvise(MADV_POPULATE_READ): {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// In this process: resets the peak-RSS mark, runs `op` once, and returns
/// (RSS before, peak RSS during) in KiB.
pub fn peak_rss_kb(lib: Lib, op: Op, path: &Path, mode: RssMode) -> Result<(u64, u64), String> {
    if mode == RssMode::CodeResident {
        populate_file_mappings()?;
    }
    // "5" resets VmHWM to the current RSS (proc(5), /proc/pid/clear_refs).
    std::fs::write("/proc/self/clear_refs", "5").map_err(|e| format!("clear_refs: {e}"))?;
    let before = proc_status_kb("VmRSS:").ok_or("no VmRSS")?;
    run_once(lib, op, path)?;
    let peak = proc_status_kb("VmHWM:").ok_or("no VmHWM")?;
    Ok((before, peak))
}

/// A STRUCT name no kernel has: looking it up visits every candidate, as a CO-RE candidate search
/// does (libbpf's `bpf_core_add_cands` compares the name of every type of the local type's kind,
/// once per local type; `btf__find_by_name_kind` of a present name would stop at the first hit).
const ABSENT_STRUCT: &str = "bpfload_bench_absent_struct";

/// Milliseconds for the kernel's BTF to become usable in this process, on first use:
/// (load, load + one candidate search over all types).
///
/// libbpf: `btf__load_vmlinux_btf` (libbpf 1.7 mmaps `/sys/kernel/btf/vmlinux` and records type
/// offsets; it builds no name index, so each candidate search scans every type:
/// `btf__find_by_name_kind` of [`ABSENT_STRUCT`] here). bpfload: `kernel::vmlinux()` (mmap, type
/// offsets and the name index of non-FUNC types), then an indexed lookup of the same name.
pub fn kernel_btf_first_use(lib: Lib) -> Result<(f64, f64), String> {
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
    match lib {
        Lib::Libbpf => {
            let t = Instant::now();
            // SAFETY: plain libbpf calls; the returned BTF is freed below and not used after.
            unsafe {
                let btf = libbpf_sys::btf__load_vmlinux_btf();
                if btf.is_null() {
                    return Err("btf__load_vmlinux_btf failed".into());
                }
                let load = ms(t);
                let name = std::ffi::CString::new(ABSENT_STRUCT).expect("no NUL");
                let id = libbpf_sys::btf__find_by_name_kind(
                    btf,
                    name.as_ptr(),
                    libbpf_sys::BTF_KIND_STRUCT,
                );
                let both = ms(t);
                libbpf_sys::btf__free(btf);
                if id > 0 {
                    return Err(format!("libbpf found a {ABSENT_STRUCT}"));
                }
                Ok((load, both))
            }
        }
        Lib::Bpfload | Lib::BpfloadSerial => {
            let t = Instant::now();
            let k = bpfload_btf::kernel::vmlinux().map_err(|e| e.to_string())?;
            let load = ms(t);
            let id = k
                .btf()
                .find_by_name_kind(ABSENT_STRUCT, bpfload_btf::Kind::Struct);
            let both = ms(t);
            std::hint::black_box(&k);
            match id {
                None => Ok((load, both)),
                Some(_) => Err(format!("bpfload found a {ABSENT_STRUCT}")),
            }
        }
        other => Err(format!("{} is not measured here", other.name())),
    }
}

/// Median milliseconds of one kernel-BTF load repeated `n` times in this process, nothing
/// cached between calls (bpfload: `load_vmlinux_uncached`, bypassing the process-wide cache).
pub fn kernel_btf_repeated(lib: Lib, n: usize) -> Result<f64, String> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        let t = Instant::now();
        match lib {
            Lib::Libbpf => {
                // SAFETY: as in kernel_btf_first_use.
                unsafe {
                    let btf = libbpf_sys::btf__load_vmlinux_btf();
                    if btf.is_null() {
                        return Err("btf__load_vmlinux_btf failed".into());
                    }
                    libbpf_sys::btf__free(btf);
                }
            }
            Lib::Bpfload | Lib::BpfloadSerial => {
                drop(bpfload_btf::kernel::load_vmlinux_uncached().map_err(|e| e.to_string())?);
            }
            other => return Err(format!("{} is not measured here", other.name())),
        }
        v.push(t.elapsed().as_secs_f64() * 1e3);
    }
    v.sort_by(f64::total_cmp);
    Ok(v[v.len() / 2])
}
