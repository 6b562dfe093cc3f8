//! Feature probes: the cost of a cold cache (what a first load pays) versus a warm one.
//!
//! - `cold/all`: every feature on a fresh cache (what `bpfload probe` does).
//! - `cold/typical`: what loading a typical object asks for (names, global data, BTF and the
//!   sanitizer's BTF kinds, mmapable arrays, `.rodata` binding, memcg accounting).
//! - `cold/<FEATURE>`: each probe alone.
//! - `warm/all`: every feature on a cache that has the answers.
//!
//! Needs root (the probes load programs); without it the benchmarks are skipped. The kernel BTF
//! (used only by SYSCALL_WRAPPER and token fallbacks) is parsed once before measuring, because
//! the loader shares that parse with CO-RE.

use criterion::{criterion_group, criterion_main, Criterion};
use std::time::Duration;

use bpfload_probe::{Feature, Probes};

const TYPICAL: [Feature; 14] = [
    Feature::ProgName,
    Feature::GlobalData,
    Feature::Btf,
    Feature::BtfFunc,
    Feature::BtfGlobalFunc,
    Feature::BtfDatasec,
    Feature::BtfQmarkDatasec,
    Feature::BtfFloat,
    Feature::BtfDeclTag,
    Feature::BtfTypeTag,
    Feature::BtfEnum64,
    Feature::ArrayMmap,
    Feature::ProgBindMap,
    Feature::MemcgAccount,
];

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

fn bench(c: &mut Criterion) {
    if !is_root() {
        eprintln!("SKIP probe benchmarks: need root");
        return;
    }
    // Shared process-wide state the loader also has: the parsed kernel BTF.
    let _ = bpfload_probe::kernel_facts::vmlinux();

    let mut g = c.benchmark_group("probe");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    g.bench_function("cold/all", |b| {
        b.iter(|| {
            let p = Probes::private(None).unwrap();
            p.check_all()
        })
    });
    g.bench_function("cold/typical", |b| {
        b.iter(|| {
            let p = Probes::private(None).unwrap();
            TYPICAL
                .iter()
                .map(|&f| p.supported(f))
                .filter(|&s| s)
                .count()
        })
    });
    let warm = Probes::private(None).unwrap();
    warm.check_all();
    g.bench_function("warm/all", |b| b.iter(|| warm.check_all()));
    g.bench_function("warm/typical", |b| {
        b.iter(|| {
            TYPICAL
                .iter()
                .map(|&f| warm.supported(f))
                .filter(|&s| s)
                .count()
        })
    });
    for f in Feature::ALL {
        g.bench_function(format!("cold/{}", f.name()), |b| {
            b.iter(|| {
                let p = Probes::private(None).unwrap();
                p.check(f)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
