//! Kernel BTF readiness and name lookups: bpfload-btf vs aya-obj 0.3, side by side.
//!
//! Run: `cargo bench -p bpfload-benches --bench btf`
//!
//! - `vmlinux_ready/*`: from the file to "ready for name lookup". bpfload maps
//!   `/sys/kernel/btf/vmlinux` and records sparse type offsets (a `u32` per 16 types); `+keys`
//!   also records the keys (name offset and kind) of the named non-FUNC types in the same scan,
//!   which CO-RE candidate lookup scans first and builds its name index from when lookups repeat;
//!   `cached` is every later use in the same process.
//!   libbpf side by side: `compat/examples/vmlinux_ready.rs` (see btf/README.md).
//!   aya-obj reads the file and builds owned types (its only way).
//! - `lookup/*`: `task_struct` (hit) and a missing name, by exact name and kind.
//!
//! Before the criterion groups, the first use in a fresh process is timed (the bench re-runs
//! itself 15 times with `BTF_BENCH_ONCE=<what>`; page faults of fresh memory included, as in a
//! real first load), then a CPU-time table is printed (per-thread user+system time from
//! `/proc/thread-self/stat` over many iterations): on a shared machine wall time mostly measures
//! the other processes, CPU time measures this code.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use bpfload_btf::{kernel, Btf, BtfData, Kind};
use criterion::{criterion_group, Criterion};

fn vmlinux_ready(c: &mut Criterion) {
    let path = Path::new(kernel::VMLINUX_PATH);
    if !path.exists() {
        eprintln!("SKIP btf benches: {} not present", path.display());
        return;
    }
    let bytes = std::fs::read(path).unwrap();
    let mut g = c.benchmark_group("vmlinux_ready");
    g.sample_size(30).measurement_time(Duration::from_secs(5));
    g.bench_function("bpfload mmap+offsets", |b| {
        b.iter(|| {
            let m = kernel::read_btf_bytes(path, true).unwrap();
            black_box(BtfData::parse(m).unwrap())
        })
    });
    g.bench_function("bpfload mmap+offsets+keys (vmlinux first use)", |b| {
        b.iter(|| black_box(kernel::load_vmlinux_uncached().unwrap()))
    });
    g.bench_function(
        "bpfload + both name indexes (FUNC: attach/kfunc lookups; the rest: repeated CO-RE)",
        |b| {
            b.iter(|| {
                let d = kernel::load_vmlinux_uncached().unwrap();
                d.btf().build_index();
                black_box(d)
            })
        },
    );
    g.bench_function("bpfload parse (bytes in memory)", |b| {
        b.iter(|| black_box(Btf::parse(black_box(&bytes)).unwrap().len()))
    });
    g.bench_function("bpfload parse+keys (bytes in memory)", |b| {
        let shared = bytes::Bytes::from(bytes.clone());
        b.iter(|| black_box(BtfData::parse_indexed(shared.clone()).unwrap()))
    });
    kernel::vmlinux().unwrap().btf().build_index();
    g.bench_function("bpfload cached (later uses)", |b| {
        b.iter(|| black_box(kernel::vmlinux().unwrap()))
    });
    g.bench_function("aya-obj read+parse", |b| {
        b.iter(|| {
            let data = std::fs::read(path).unwrap();
            black_box(aya_obj::btf::Btf::parse(&data, object::Endianness::Little).unwrap())
        })
    });
    g.bench_function("aya-obj parse (bytes in memory)", |b| {
        b.iter(|| {
            black_box(
                aya_obj::btf::Btf::parse(black_box(&bytes), object::Endianness::Little).unwrap(),
            )
        })
    });
    g.finish();
}

fn lookup(c: &mut Criterion) {
    let path = Path::new(kernel::VMLINUX_PATH);
    if !path.exists() {
        return;
    }
    let data = kernel::vmlinux().unwrap();
    let btf = data.btf();
    btf.build_index();
    let bytes = std::fs::read(path).unwrap();
    let aya = aya_obj::btf::Btf::parse(&bytes, object::Endianness::Little).unwrap();
    let mut g = c.benchmark_group("lookup");
    g.sample_size(30).measurement_time(Duration::from_secs(3));
    g.bench_function("bpfload task_struct hit", |b| {
        b.iter(|| black_box(btf.find_by_name_kind(black_box("task_struct"), Kind::Struct)))
    });
    g.bench_function("bpfload FUNC schedule hit", |b| {
        b.iter(|| black_box(btf.find_by_name_kind(black_box("schedule"), Kind::Func)))
    });
    g.bench_function("bpfload miss", |b| {
        b.iter(|| black_box(btf.find_by_name_kind(black_box("no_such_struct_xyz"), Kind::Struct)))
    });
    g.bench_function("aya-obj task_struct hit", |b| {
        b.iter(|| {
            black_box(
                aya.id_by_type_name_kind(black_box("task_struct"), aya_obj::btf::BtfKind::Struct),
            )
        })
    });
    g.bench_function("aya-obj miss", |b| {
        b.iter(|| {
            black_box(
                aya.id_by_type_name_kind(
                    black_box("no_such_struct_xyz"),
                    aya_obj::btf::BtfKind::Struct,
                )
                .is_err(),
            )
        })
    });
    g.finish();
}

/// This thread's user+system CPU time in clock ticks (fields 14 and 15 of `stat`).
fn cpu_ticks() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let rest = s.get(s.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split(' ').collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// CPU milliseconds per call of `f`, over enough calls for the 10 ms tick to be precise.
fn cpu_ms(iters: u32, mut f: impl FnMut()) -> Option<f64> {
    f();
    let c0 = cpu_ticks()?;
    for _ in 0..iters {
        f();
    }
    let c1 = cpu_ticks()?;
    Some((c1 - c0) as f64 * 10.0 / iters as f64)
}

fn cpu_time_table() {
    let path = Path::new(kernel::VMLINUX_PATH);
    if !path.exists() {
        return;
    }
    let bytes = std::fs::read(path).unwrap();
    let rows: Vec<(&str, Option<f64>)> = vec![
        (
            "bpfload mmap+offsets",
            cpu_ms(200, || {
                let m = kernel::read_btf_bytes(path, true).unwrap();
                black_box(BtfData::parse(m).unwrap());
            }),
        ),
        (
            "bpfload mmap+offsets+keys (vmlinux first use)",
            cpu_ms(200, || {
                black_box(kernel::load_vmlinux_uncached().unwrap());
            }),
        ),
        (
            "bpfload + both name indexes (FUNC: attach/kfunc lookups; the rest: repeated CO-RE)",
            cpu_ms(100, || {
                let d = kernel::load_vmlinux_uncached().unwrap();
                d.btf().build_index();
                black_box(d);
            }),
        ),
        (
            "bpfload cached (later uses), x1000",
            cpu_ms(200, || {
                for _ in 0..1000 {
                    black_box(kernel::vmlinux().unwrap());
                }
            }),
        ),
        (
            "aya-obj read+parse",
            cpu_ms(30, || {
                let d = std::fs::read(path).unwrap();
                black_box(aya_obj::btf::Btf::parse(&d, object::Endianness::Little).unwrap());
            }),
        ),
        (
            "aya-obj parse (bytes in memory)",
            cpu_ms(30, || {
                black_box(aya_obj::btf::Btf::parse(&bytes, object::Endianness::Little).unwrap());
            }),
        ),
    ];
    println!("CPU time per call (user+system of this thread):");
    for (name, ms) in rows {
        match ms {
            Some(ms) => println!("  {name:48} {ms:8.3} ms"),
            None => println!("  {name:48} (no /proc/thread-self/stat)"),
        }
    }
}

/// One first use in this (fresh) process; prints the wall time in ms.
fn once(what: &str) {
    let path = Path::new(kernel::VMLINUX_PATH);
    let t = std::time::Instant::now();
    match what {
        "mmap+offsets" => {
            let m = kernel::read_btf_bytes(path, true).unwrap();
            black_box(BtfData::parse(m).unwrap());
        }
        "vmlinux()" => {
            black_box(kernel::vmlinux().unwrap());
        }
        "vmlinux()+name indexes" => {
            kernel::vmlinux().unwrap().btf().build_index();
        }
        "aya-obj read+parse" => {
            let d = std::fs::read(path).unwrap();
            black_box(aya_obj::btf::Btf::parse(&d, object::Endianness::Little).unwrap());
        }
        other => panic!("unknown BTF_BENCH_ONCE {other}"),
    }
    println!("{}", t.elapsed().as_secs_f64() * 1e3);
}

fn fresh_process_table() {
    if !Path::new(kernel::VMLINUX_PATH).exists() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    println!("First use in a fresh process (wall ms over 15 runs: min / median):");
    for what in [
        "mmap+offsets",
        "vmlinux()",
        "vmlinux()+name indexes",
        "aya-obj read+parse",
    ] {
        let mut ms: Vec<f64> = (0..15)
            .filter_map(|_| {
                let out = std::process::Command::new(&exe)
                    .env("BTF_BENCH_ONCE", what)
                    .output()
                    .ok()?;
                String::from_utf8(out.stdout).ok()?.trim().parse().ok()
            })
            .collect();
        if ms.is_empty() {
            continue;
        }
        ms.sort_by(f64::total_cmp);
        println!("  {what:48} {:8.3} / {:8.3}", ms[0], ms[ms.len() / 2]);
    }
}

criterion_group!(benches, vmlinux_ready, lookup);

fn main() {
    if let Ok(what) = std::env::var("BTF_BENCH_ONCE") {
        once(&what);
        return;
    }
    // `cargo bench` passes `--bench`; skip the table when criterion is only listing/testing.
    if std::env::args().any(|a| a == "--bench") {
        fresh_process_table();
        cpu_time_table();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
