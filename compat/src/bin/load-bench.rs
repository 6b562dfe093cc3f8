//! `load-bench [--sizes 10,100,1000] [--quick] [--json FILE]`
//!
//! bpfload vs C libbpf (libbpf-rs 0.27 / libbpf 1.7) vs aya-obj 0.3 / aya 0.14, side by side in one
//! run, with ratios against libbpf:
//!   (a) open of generated objects with N programs (N/10 maps, subprogram calls, CO-RE reads),
//!       plus bpfload's and libbpf's prepare (relocate + create maps) at the same sizes;
//!   (b) full load of a CO-RE tracing object (5 programs, 6 maps), repeated in one process:
//!       wall, user-space CPU and system CPU (~ time inside bpf(2));
//!   (c) peak RSS of one load (each library in a fresh child process), cold and with code resident;
//!   (d) wall time of a full load of the 1000-program object;
//!   (e) the kernel's BTF on first use (fresh processes) and repeated, libbpf vs bpfload.
//! Needs root (loads into the kernel) and clang (objects are generated once into a cache dir).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use bpfload_compat::bench::{self, Lib, Op, RssMode, Sample};
use bpfload_compat::genobj::{self, Shape};

/// Counts time inside bpf(2). libbpf, aya and bpfload all issue bpf(2) through libc's variadic
/// `syscall()`; a definition in the executable takes precedence over libc's (static libbpf links
/// to it directly, and the dynamic linker resolves the executable's symbol first). On x86_64 a
/// variadic call passes its integer arguments in the same registers as a 7-argument one, so this
/// reads them all and issues the system call itself.
#[cfg(target_arch = "x86_64")]
mod bpf_timer {
    use std::sync::atomic::Ordering;
    use std::sync::Mutex;
    use std::time::Instant;

    use bpfload_compat::bench::{BPF_BUSY_NS, BPF_CALLS, BPF_NS};

    /// (threads inside bpf(2), when the first of them entered). Only bpf(2) calls take this
    /// lock; the futex calls a contended lock makes go through syscall() with another number.
    static BUSY: Mutex<(u32, Option<Instant>)> = Mutex::new((0, None));

    fn enter() {
        let mut b = BUSY.lock().unwrap_or_else(|e| e.into_inner());
        if b.0 == 0 {
            b.1 = Some(Instant::now());
        }
        b.0 += 1;
    }

    fn leave() {
        let mut b = BUSY.lock().unwrap_or_else(|e| e.into_inner());
        b.0 = b.0.saturating_sub(1);
        if b.0 == 0 {
            if let Some(t) = b.1.take() {
                BPF_BUSY_NS.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
            }
        }
    }

    #[no_mangle]
    pub unsafe extern "C" fn syscall(
        nr: libc::c_long,
        a1: libc::c_long,
        a2: libc::c_long,
        a3: libc::c_long,
        a4: libc::c_long,
        a5: libc::c_long,
        a6: libc::c_long,
    ) -> libc::c_long {
        let is_bpf = nr == libc::SYS_bpf;
        if is_bpf {
            enter();
        }
        let start = is_bpf.then(Instant::now);
        let ret: libc::c_long;
        // SAFETY: this is the raw x86_64 system call ABI; the caller of syscall() vouches for the
        // arguments exactly as it would for libc's syscall().
        unsafe {
            std::arch::asm!(
                "syscall",
                inlateout("rax") nr => ret,
                in("rdi") a1, in("rsi") a2, in("rdx") a3, in("r10") a4, in("r8") a5, in("r9") a6,
                lateout("rcx") _, lateout("r11") _,
                options(nostack)
            );
        }
        if let Some(start) = start {
            BPF_NS.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
            BPF_CALLS.fetch_add(1, Ordering::Relaxed);
            leave();
        }
        if (-4095..0).contains(&ret) {
            // SAFETY: __errno_location returns this thread's errno slot.
            unsafe { *libc::__errno_location() = -ret as i32 };
            return -1;
        }
        ret
    }

    pub fn enable() {
        bpfload_compat::bench::BPF_TIMED.store(true, Ordering::Relaxed);
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn fmt_sample(s: &Result<Sample, String>) -> String {
    match s {
        Ok(s) => format!(
            "{:>9.3} ms wall {:>9.3} ms in bpf(2) {:>9.3} ms user-space  [{:>8.3} utime {:>8.3} stime, {} bpf calls] (n={})",
            ms(s.wall),
            s.bpf.map(ms).unwrap_or(f64::NAN),
            ms(s.user_space()),
            ms(s.user),
            ms(s.sys),
            s.bpf_calls.unwrap_or(0),
            s.iters
        ),
        Err(e) => format!("failed: {}", e.lines().next().unwrap_or("")),
    }
}

fn ratio(
    a: &Result<Sample, String>,
    b: &Result<Sample, String>,
    f: fn(&Sample) -> Duration,
) -> String {
    match (a, b) {
        (Ok(a), Ok(b)) if !f(b).is_zero() => {
            format!("{:.3}x", f(a).as_secs_f64() / f(b).as_secs_f64())
        }
        _ => "n/a".into(),
    }
}

struct Budget {
    min: u32,
    max: u32,
    time: Duration,
}

fn child_rss(lib: Lib, op: Op, path: &Path, mode: RssMode) -> Result<(u64, u64), String> {
    let out = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .args(["--child", lib.name(), op.name(), mode.name()])
        .arg(path)
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace().map(|v| v.parse::<u64>());
    match (out.status.success(), it.next(), it.next()) {
        (true, Some(Ok(before)), Some(Ok(peak))) => Ok((before, peak)),
        _ => Err(format!(
            "child failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

fn child(args: &[String]) -> ExitCode {
    let (Some(lib), Some(op), Some(mode), Some(path)) = (
        args.first().and_then(|s| Lib::parse(s)),
        args.get(1).and_then(|s| Op::parse(s)),
        args.get(2).and_then(|s| RssMode::parse(s)),
        args.get(3),
    ) else {
        eprintln!("usage: load-bench --child LIB OP cold|code-resident PATH");
        return ExitCode::from(2);
    };
    bpfload_compat::libbpf_side::capture_libbpf_log();
    match bench::peak_rss_kb(lib, op, Path::new(path), mode) {
        Ok((before, peak)) => {
            println!("{before} {peak}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Child process for (e): one first use of the kernel's BTF; prints "load_ms load+search_ms".
fn child_btf(args: &[String]) -> ExitCode {
    let Some(lib) = args.first().and_then(|s| Lib::parse(s)) else {
        eprintln!("usage: load-bench --child-btf LIB");
        return ExitCode::from(2);
    };
    match bench::kernel_btf_first_use(lib) {
        Ok((load, both)) => {
            println!("{load} {both}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Wall ms of `op` per round for each library, the libraries alternating within each round
/// (after one warm-up run each).
fn interleaved_walls(
    libs: &[Lib],
    op: Op,
    path: &Path,
    rounds: usize,
) -> Result<Vec<Vec<f64>>, String> {
    for &l in libs {
        bench::run_once(l, op, path)?;
    }
    let mut walls = vec![Vec::with_capacity(rounds); libs.len()];
    for _ in 0..rounds {
        for (i, &l) in libs.iter().enumerate() {
            let t = std::time::Instant::now();
            bench::run_once(l, op, path)?;
            walls[i].push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    Ok(walls)
}

/// One fresh child process timing the first use of the kernel's BTF: (load, load + search) ms.
fn kernel_btf_child(exe: &Path, lib: Lib) -> Result<(f64, f64), String> {
    let out = Command::new(exe)
        .args(["--child-btf", lib.name()])
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace().map(|v| v.parse::<f64>());
    match (out.status.success(), it.next(), it.next()) {
        (true, Some(Ok(l)), Some(Ok(b))) => Ok((l, b)),
        _ => Err(format!(
            "child failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

/// (e): `runs` fresh processes per library, the libraries alternating run by run so that a
/// machine whose speed drifts (a shared VM) affects both alike; per library (min, median) of
/// (load, load+search).
type BtfStat = ((f64, f64), (f64, f64));
fn kernel_btf_fresh(libs: &[Lib], runs: usize) -> Vec<Result<BtfStat, String>> {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return libs.iter().map(|_| Err(e.to_string())).collect(),
    };
    let mut samples: Vec<Result<(Vec<f64>, Vec<f64>), String>> =
        libs.iter().map(|_| Ok((Vec::new(), Vec::new()))).collect();
    for _ in 0..runs {
        for (lib, acc) in libs.iter().zip(samples.iter_mut()) {
            if let Ok((loads, boths)) = acc {
                match kernel_btf_child(&exe, *lib) {
                    Ok((l, b)) => {
                        loads.push(l);
                        boths.push(b);
                    }
                    Err(e) => *acc = Err(e),
                }
            }
        }
    }
    let stat = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[0], v[v.len() / 2])
    };
    samples
        .into_iter()
        .map(|r| r.map(|(mut l, mut b)| (stat(&mut l), stat(&mut b))))
        .collect()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        return child(&args[1..]);
    }
    if args.first().map(String::as_str) == Some("--child-btf") {
        return child_btf(&args[1..]);
    }
    let mut sizes = vec![10usize, 100, 1000];
    let mut quick = false;
    let mut json_out: Option<PathBuf> = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--sizes" => {
                i += 1;
                sizes = args
                    .get(i)
                    .map(|s| s.split(',').filter_map(|v| v.parse().ok()).collect())
                    .unwrap_or_default();
            }
            "--quick" => quick = true,
            "--json" => {
                i += 1;
                json_out = args.get(i).map(PathBuf::from);
            }
            other => {
                eprintln!("load-bench: unknown argument {other}\nusage: load-bench [--sizes 10,100,1000] [--quick] [--json FILE]");
                return ExitCode::from(2);
            }
        }
        i += 1;
    }
    bpfload_compat::libbpf_side::capture_libbpf_log();
    #[cfg(target_arch = "x86_64")]
    bpf_timer::enable();
    let scale = if quick { 4 } else { 1 };
    let open_budget = Budget {
        min: 5,
        max: 500 / scale,
        time: Duration::from_millis(1500 / scale as u64),
    };
    let load_budget = Budget {
        min: 5,
        max: 60 / scale,
        time: Duration::from_millis(3000 / scale as u64),
    };
    let big_budget = Budget {
        min: 3,
        max: 8 / scale.min(2),
        time: Duration::from_millis(4000),
    };
    let mut report = serde_json::Map::new();
    let run = |lib, op, p: &Path, b: &Budget| bench::measure(lib, op, p, b.min, b.max, b.time);

    println!(
        "== (a) open / prepare / load of generated objects (N programs, N/10 maps, subprograms, CO-RE) =="
    );
    let mut open_rows = Vec::new();
    for &n in &sizes {
        let path = match genobj::object(Shape::programs(n)) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("load-bench: cannot build the N={n} object: {e}");
                return ExitCode::FAILURE;
            }
        };
        for op in [Op::Open, Op::Prepare, Op::Load] {
            let libs: &[Lib] = match op {
                // aya-obj's open is superlinear (10 s at N=5000): measured up to N=1000.
                Op::Open if n <= 1000 => &[Lib::Bpfload, Lib::Libbpf, Lib::AyaObj],
                Op::Open => &[Lib::Bpfload, Lib::Libbpf],
                // bpfload's API has no separate prepare step.
                Op::Prepare => &[Lib::Libbpf],
                Op::Load => &[Lib::Bpfload, Lib::BpfloadSerial, Lib::Libbpf],
            };
            let budget = if op == Op::Load {
                &big_budget
            } else {
                &open_budget
            };
            let results: Vec<_> = libs
                .iter()
                .map(|&l| (l, run(l, op, &path, budget)))
                .collect();
            let libbpf = &results
                .iter()
                .find(|(l, _)| *l == Lib::Libbpf)
                .expect("libbpf measured")
                .1;
            for (lib, r) in &results {
                let per_prog = r.as_ref().map(|s| {
                    format!(
                        "{:>7.2} us/prog user-space",
                        s.user_space().as_secs_f64() * 1e6 / n as f64
                    )
                });
                println!(
                    "N={n:<5} {:<8} {:<8} {}  {}  wall/libbpf {}  userspace/libbpf {}",
                    op.name(),
                    lib.name(),
                    fmt_sample(r),
                    per_prog.unwrap_or_default(),
                    ratio(r, libbpf, |s| s.wall),
                    ratio(r, libbpf, |s| s.user_space()),
                );
                open_rows.push(serde_json::json!({
                    "n": n, "op": op.name(), "lib": lib.name(),
                    "wall_ms": r.as_ref().ok().map(|s| ms(s.wall)),
                    "user_space_ms": r.as_ref().ok().map(|s| ms(s.user_space())),
                    "bpf_ms": r.as_ref().ok().and_then(|s| s.bpf.map(ms)),
                    "utime_ms": r.as_ref().ok().map(|s| ms(s.user)),
                    "stime_ms": r.as_ref().ok().map(|s| ms(s.sys)),
                    "error": r.as_ref().err(),
                }));
            }
        }
    }
    report.insert("open_prepare".into(), open_rows.into());

    println!("\n== (b) full load of a CO-RE tracing object (5 programs, 6 maps), repeated ==");
    let tracing = match genobj::object(Shape::tracing()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("load-bench: cannot build the tracing object: {e}");
            return ExitCode::FAILURE;
        }
    };
    let results: Vec<_> = [Lib::Bpfload, Lib::Libbpf, Lib::Aya]
        .iter()
        .map(|&l| (l, run(l, Op::Load, &tracing, &load_budget)))
        .collect();
    let libbpf = &results[1].1;
    let mut rows = Vec::new();
    for (lib, r) in &results {
        println!(
            "{:<8} {}  wall/libbpf {}  userspace/libbpf {}",
            lib.name(),
            fmt_sample(r),
            ratio(r, libbpf, |s| s.wall),
            ratio(r, libbpf, |s| s.user_space())
        );
        rows.push(serde_json::json!({
            "lib": lib.name(),
            "wall_ms": r.as_ref().ok().map(|s| ms(s.wall)),
            "user_space_ms": r.as_ref().ok().map(|s| ms(s.user_space())),
                    "bpf_ms": r.as_ref().ok().and_then(|s| s.bpf.map(ms)),
                    "utime_ms": r.as_ref().ok().map(|s| ms(s.user)),
            "stime_ms": r.as_ref().ok().map(|s| ms(s.sys)),
            "error": r.as_ref().err(),
        }));
    }
    report.insert("tracing_load".into(), rows.into());

    println!("\n== (c) peak RSS of one operation, fresh process per library (VmHWM - VmRSS before, KiB) ==");
    let big = sizes
        .iter()
        .copied()
        .max()
        .and_then(|n| genobj::object(Shape::programs(n)).ok().map(|p| (n, p)));
    let mut rss_rows = Vec::new();
    let mut cases = vec![(
        "load tracing".to_string(),
        Op::Load,
        tracing.clone(),
        vec![Lib::Bpfload, Lib::Libbpf, Lib::Aya],
    )];
    if let Some((n, p)) = &big {
        cases.push((
            format!("open N={n}"),
            Op::Open,
            p.clone(),
            vec![Lib::Bpfload, Lib::Libbpf, Lib::AyaObj],
        ));
        cases.push((
            format!("load N={n}"),
            Op::Load,
            p.clone(),
            vec![Lib::Bpfload, Lib::Libbpf, Lib::Aya],
        ));
    }
    for mode in [RssMode::Cold, RssMode::CodeResident] {
        println!("-- {} --", match mode {
        RssMode::Cold => "cold process: code pages run for the first time count too",
        RssMode::CodeResident => "code resident first (MADV_POPULATE_READ of every file mapping): private memory the operation adds",
    });
        for (what, op, path, libs) in &cases {
            let res: Vec<_> = libs
                .iter()
                .map(|&l| (l, child_rss(l, *op, path, mode)))
                .collect();
            let base = res
                .iter()
                .find(|(l, _)| *l == Lib::Libbpf)
                .and_then(|(_, r)| r.as_ref().ok())
                .map(|(b, p)| p - b);
            for (lib, r) in &res {
                match r {
                    Ok((before, peak)) => {
                        let delta = peak.saturating_sub(*before);
                        let rel = base
                            .filter(|&b| b > 0)
                            .map(|b| format!("{:.2}x", delta as f64 / b as f64))
                            .unwrap_or("n/a".into());
                        println!(
                            "{what:<14} {:<8} +{delta:>7} KiB (peak {peak} KiB)  vs libbpf {rel}",
                            lib.name()
                        );
                        rss_rows.push(serde_json::json!({"case": what, "mode": mode.name(), "lib": lib.name(), "delta_kib": delta, "peak_kib": peak}));
                    }
                    Err(e) => {
                        println!("{what:<14} {:<8} failed: {e}", lib.name());
                        rss_rows.push(serde_json::json!({"case": what, "mode": mode.name(), "lib": lib.name(), "error": e}));
                    }
                }
            }
        }
    }
    report.insert("peak_rss".into(), rss_rows.into());

    if let Some((n, path)) = &big {
        println!("\n== (d) full load of the N={n} object (wall; target bpfload <= 0.6x libbpf) ==");
        let results: Vec<_> = [Lib::Bpfload, Lib::BpfloadSerial, Lib::Libbpf, Lib::Aya]
            .iter()
            .map(|&l| (l, run(l, Op::Load, path, &big_budget)))
            .collect();
        let libbpf = &results[2].1;
        let mut rows = Vec::new();
        for (lib, r) in &results {
            println!(
                "{:<8} {}  wall/libbpf {}",
                lib.name(),
                fmt_sample(r),
                ratio(r, libbpf, |s| s.wall)
            );
            rows.push(serde_json::json!({
                "n": n, "lib": lib.name(),
                "wall_ms": r.as_ref().ok().map(|s| ms(s.wall)),
                "user_space_ms": r.as_ref().ok().map(|s| ms(s.user_space())),
                    "bpf_ms": r.as_ref().ok().and_then(|s| s.bpf.map(ms)),
                    "utime_ms": r.as_ref().ok().map(|s| ms(s.user)),
                "stime_ms": r.as_ref().ok().map(|s| ms(s.sys)),
                "error": r.as_ref().err(),
            }));
        }
        // The machine's speed drifts (a shared VM: libbpf's own time moved 118 -> 168 ms between
        // runs minutes apart), so the ratio is also measured with the libraries alternating run
        // by run; the per-round ratio cancels the drift.
        let rounds = if quick { 5 } else { 15 };
        match interleaved_walls(&[Lib::Bpfload, Lib::Libbpf], Op::Load, path, rounds) {
            Ok(w) => {
                let mut ratios: Vec<f64> = w[0].iter().zip(&w[1]).map(|(a, b)| a / b).collect();
                ratios.sort_by(f64::total_cmp);
                let med = |v: &[f64]| {
                    let mut v = v.to_vec();
                    v.sort_by(f64::total_cmp);
                    v[v.len() / 2]
                };
                println!(
                    "interleaved ({rounds} rounds, libraries alternating): bpfload median {:.3} ms, libbpf median {:.3} ms; per-round bpfload/libbpf median {:.3}x (min {:.3}x, max {:.3}x)",
                    med(&w[0]),
                    med(&w[1]),
                    ratios[ratios.len() / 2],
                    ratios[0],
                    ratios[ratios.len() - 1]
                );
                rows.push(serde_json::json!({
                    "n": n, "interleaved_rounds": rounds,
                    "bpfload_wall_ms": w[0], "libbpf_wall_ms": w[1],
                    "ratio_median": ratios[ratios.len() / 2],
                }));
            }
            Err(e) => println!("interleaved: failed: {e}"),
        }
        report.insert("big_load".into(), rows.into());
    }

    println!("\n== (e) the kernel's BTF on first use: load, then + one CO-RE candidate search over all types ==");
    let runs = if quick { 7 } else { 31 };
    let repeat = if quick { 20 } else { 100 };
    let mut btf_rows = Vec::new();
    let libs = [Lib::Bpfload, Lib::Libbpf];
    let fresh: Vec<_> = libs
        .iter()
        .zip(kernel_btf_fresh(&libs, runs))
        .map(|(&l, f)| (l, f, bench::kernel_btf_repeated(l, repeat)))
        .collect();
    let base = fresh
        .iter()
        .find(|(l, _, _)| *l == Lib::Libbpf)
        .and_then(|(_, f, r)| f.as_ref().ok().map(|f| (*f, r.as_ref().ok().copied())));
    for (lib, f, r) in &fresh {
        match f {
            Ok(((lmin, lmed), (bmin, bmed))) => {
                let rel = |x: f64, pick: fn(&((f64, f64), (f64, f64))) -> f64| {
                    base.map(|(b, _)| format!("{:.2}x", x / pick(&b)))
                        .unwrap_or_default()
                };
                let rep = r
                    .as_ref()
                    .map(|v| format!("{v:.3}"))
                    .unwrap_or_else(|e| e.clone());
                let rep_rel = match (r, base.and_then(|(_, r)| r)) {
                    (Ok(v), Some(b)) => format!("{:.2}x", v / b),
                    _ => String::new(),
                };
                println!(
                    "{:<8} fresh process ({runs} runs, alternating) load min {lmin:.3} ms ({}), median {lmed:.3} ms ({}); + search min {bmin:.3} ms ({}), median {bmed:.3} ms ({}); repeated in one process, median {rep} ms ({rep_rel})",
                    lib.name(),
                    rel(*lmin, |b| b.0 .0),
                    rel(*lmed, |b| b.0 .1),
                    rel(*bmin, |b| b.1 .0),
                    rel(*bmed, |b| b.1 .1),
                );
                btf_rows.push(serde_json::json!({"lib": lib.name(), "load_min_ms": lmin, "load_median_ms": lmed,
                    "lookup_min_ms": bmin, "lookup_median_ms": bmed, "repeated_median_ms": r.as_ref().ok()}));
            }
            Err(e) => println!("{:<8} failed: {e}", lib.name()),
        }
    }
    report.insert("kernel_btf".into(), btf_rows.into());

    if let Some(p) = json_out {
        let text = serde_json::to_string_pretty(&serde_json::Value::Object(report))
            .expect("JSON serializes");
        if let Err(e) = std::fs::write(&p, text) {
            eprintln!("load-bench: cannot write {}: {e}", p.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
