//! Load-path benchmarks of bpfload alone (no C: the libbpf/aya comparison is `compat/`'s
//! `load-bench`): open of the fixtures and of generated objects with N programs, and, where the
//! loader provides them, prepare (relocate) and full loads.
//!
//!     cargo bench -p bpfload-benches --bench load
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

criterion_group!(benches, open_fixtures, open_generated);
criterion_main!(benches);
