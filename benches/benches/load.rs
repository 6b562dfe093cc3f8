//! Load-path benchmarks of bpfload alone (no C: the libbpf/aya comparison is `compat/`'s
//! `load-bench`): open of the fixtures and of generated objects with N programs, and full loads
//! of both (bpfload's API has no separate prepare step: relocation happens inside the load).
//!
//!     cargo bench -p bpfload-benches --bench load
//!
//! `load/generated/threads=1/N` loads serially, next to the default thread count, to show the
//! speedup of parallel verification.
//!
//! Generated objects need clang (compiled once into `$CARGO_TARGET_DIR/bench-objects`); without
//! clang that group is skipped with a message. Full loads need root.

mod genobj;

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/bpf");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".bpf.o"))
        .collect();
    out.sort();
    out
}

fn stem(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".bpf.o").to_string())
        .unwrap_or_default()
}

fn open_fixtures(c: &mut Criterion) {
    let mut g = c.benchmark_group("open/fixture");
    for path in fixtures() {
        let data = std::fs::read(&path).expect("fixture readable");
        let name = stem(&path);
        g.throughput(Throughput::Bytes(data.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(&name), &data, |b, data| {
            b.iter(|| bpfload::Object::open_bytes(&name, data).expect("fixture opens"))
        });
    }
    g.finish();
}

fn generated(sizes: &[usize]) -> Vec<(usize, Vec<u8>)> {
    let mut out = Vec::new();
    for &n in sizes {
        match genobj::object(genobj::Shape::programs(n)) {
            Ok(p) => out.push((n, std::fs::read(&p).expect("generated object readable"))),
            Err(e) => {
                eprintln!("skipping generated objects: {e}");
                return Vec::new();
            }
        }
    }
    out
}

fn open_generated(c: &mut Criterion) {
    let mut g = c.benchmark_group("open/generated");
    for (n, data) in generated(&[10, 100, 1000]) {
        // Per-program throughput makes linear cost visible: elements/s stays flat as N grows.
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &data, |b, data| {
            b.iter(|| bpfload::Object::open_bytes("gen", data).expect("generated object opens"))
        });
    }
    g.finish();
}

fn is_root() -> bool {
    // Only root (or a token holder) can load; reading /proc avoids an unsafe geteuid call.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Full loads (open + relocate + CO-RE + BTF + maps + programs, then close everything), repeated
/// in one process: after the first load the kernel's BTF is already parsed and shared.
fn load(c: &mut Criterion) {
    if !is_root() {
        eprintln!("skipping load benchmarks: loading programs needs root");
        return;
    }
    let mut g = c.benchmark_group("load/fixture");
    g.sample_size(20);
    for path in fixtures() {
        let name = stem(&path);
        let obj = bpfload::Object::open_file(&path).expect("fixture opens");
        // Only fixtures that load completely here are timed (some need kernel features or test
        // modules this machine lacks); the others are covered by the integration tests.
        match bpfload::Loader::new().load(&obj) {
            Ok(l) if l.all_loaded() => {}
            _ => continue,
        }
        g.bench_function(BenchmarkId::from_parameter(&name), |b| {
            b.iter(|| bpfload::Loader::new().load(&obj).expect("fixture loads"))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("load/generated");
    g.sample_size(10);
    for (n, data) in generated(&[10, 100, 1000]) {
        let obj = bpfload::Object::open_bytes("gen", &data).expect("generated object opens");
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                bpfload::Loader::new()
                    .load(&obj)
                    .expect("generated object loads")
            })
        });
        // Serial loads next to the default (one loading thread per CPU): the speedup of
        // parallel verification, with preparation pipelined into it.
        if n >= 100 {
            g.bench_function(BenchmarkId::new("threads=1", n), |b| {
                b.iter(|| {
                    bpfload::Loader::new()
                        .threads(1)
                        .load(&obj)
                        .expect("generated object loads")
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, open_fixtures, open_generated, load);
criterion_main!(benches);
