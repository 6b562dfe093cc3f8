//! Temporary probe: libbpf btf__load_vmlinux_btf vs bpfload load_vmlinux_uncached, per call.
use std::time::Instant;
fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let n: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let mut v = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        if mode == "libbpf" {
            // SAFETY: temporary probe; the pointer is freed right after.
            unsafe {
                let b = libbpf_sys::btf__load_vmlinux_btf();
                assert!(!b.is_null());
                libbpf_sys::btf__free(b);
            }
        } else {
            let d = bpfload_btf::kernel::load_vmlinux_uncached().unwrap();
            drop(d);
        }
        v.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let first = v[0];
    v.sort_by(f64::total_cmp);
    println!(
        "{mode}: first {first:.3} ms, min {:.3}, median {:.3}",
        v[0],
        v[v.len() / 2]
    );
}
