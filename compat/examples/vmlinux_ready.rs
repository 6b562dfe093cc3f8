//! Kernel BTF readiness, libbpf vs bpfload, one process: `vmlinux_ready MODE [N]`.
//!
//! - `libbpf N`: libbpf 1.7 `btf__load_vmlinux_btf` (+ `btf__free`) N times.
//! - `bpfload N`: bpfload `kernel::load_vmlinux_uncached()` (mmap, type offsets, the keys of
//!   the named non-FUNC types) N times, nothing cached between calls. (Without a lookup: the
//!   side-by-side "ready for CO-RE" with one search each is load-bench's section (e).)
//! - `index`: in a fresh process, the first use, one lookup of `task_struct` (a scan of the keys),
//!   then the non-FUNC name index built from the keys (what the second CO-RE load in a process
//!   pays), its tables' bytes, and N lookups of other names through it, ns each.
//! - `typeid N`: bpfload `type_by_id` + `name` over N pseudo-random ids of the kernel's BTF
//!   (what CO-RE does most), ns per call.
//! - `rss`: the peak RSS that first use of the kernel's BTF adds, code made resident first
//!   (VmHWM after minus VmRSS before, KiB; run it in a fresh process), and the tables kept.
//! - `funcs`: FUNC lookups (attach targets, kfuncs), each timed: the first ones walk the type
//!   section, then one builds the FUNC name index; the peak RSS the first adds (VmHWM after minus
//!   VmRSS before, KiB), the tables' bytes before and after, and ns per lookup after the first 8
//!   (of max(N, 8)).
//!
//! - `coreloads N OBJECT` (root): N full bpfload loads of a CO-RE object in one fresh process, wall
//!   ms each: the first pays the kernel BTF's first use; a later one builds the name index.
//!
//! Prints the first call (in a fresh process: first use, page faults included), min and median.
//! Run it as `for i in $(seq 21); do vmlinux_ready bpfload 1; done` for fresh-process numbers.
use std::time::Instant;

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let n: usize = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    if mode == "coreloads" {
        let path = std::env::args().nth(3).expect("coreloads N OBJECT");
        let obj = bpfload::Object::open_file(&path).unwrap();
        let loader = bpfload::Loader::new();
        let mut times = Vec::new();
        for _ in 0..n {
            let t = Instant::now();
            let loaded = loader.load(&obj).unwrap();
            times.push(t.elapsed().as_secs_f64() * 1e3);
            drop(loaded);
        }
        let list: Vec<String> = times.iter().map(|t| format!("{t:.2}")).collect();
        println!("coreloads: {} ms", list.join(" "));
        return;
    }
    if mode == "typeid" {
        let k = bpfload_btf::kernel::vmlinux().unwrap();
        let btf = k.btf();
        let count = btf.len();
        let mut x = 0x9e37_79b9u32;
        let mut sink = 0usize;
        let mut best = f64::MAX;
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..n {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let id = 1 + x % (count - 1);
                let ty = btf.type_by_id(id).unwrap();
                sink += btf.name(id).unwrap().len() + ty.kind() as usize;
            }
            best = best.min(t.elapsed().as_secs_f64() * 1e9 / n as f64);
        }
        std::hint::black_box(sink);
        println!(
            "typeid: {best:.1} ns per type_by_id + name (best of 5 x {n}); tables {} bytes",
            btf.table_bytes()
        );
        return;
    }
    if mode == "rss" {
        let status = |field: &str| -> u64 {
            let s = std::fs::read_to_string("/proc/self/status").unwrap();
            let l = s.lines().find(|l| l.starts_with(field)).unwrap();
            l.split_whitespace().nth(1).unwrap().parse().unwrap()
        };
        // Code and every file mapping resident first, as load-bench's code-resident mode, so
        // the peak counts only what first use adds (heap, anonymous maps, thread stacks).
        bpfload_compat::bench::populate_file_mappings().unwrap();
        std::fs::write("/proc/self/clear_refs", "5").unwrap();
        let (before, anon) = (status("VmRSS:"), status("RssAnon:"));
        let k = bpfload_btf::kernel::vmlinux().unwrap();
        let peak = status("VmHWM:");
        println!(
            "rss: first use of the kernel's BTF: +{} KiB peak RSS, +{} KiB anonymous after; tables {} bytes",
            peak.saturating_sub(before),
            status("RssAnon:").saturating_sub(anon),
            k.btf().table_bytes()
        );
        return;
    }
    if mode == "index" {
        let t = Instant::now();
        let k = bpfload_btf::kernel::vmlinux().unwrap();
        let btf = k.btf();
        let ready = t.elapsed().as_secs_f64() * 1e3;
        let keys = btf.table_bytes();
        let t = Instant::now();
        let id = btf.find_by_name_kind("task_struct", bpfload_btf::Kind::Struct);
        let scan = t.elapsed().as_secs_f64() * 1e3;
        assert!(id.is_some() && !btf.is_indexed());
        let t = Instant::now();
        btf.build_type_index();
        let build = t.elapsed().as_secs_f64() * 1e3;
        let names: Vec<String> = btf
            .ids()
            .filter(|&i| btf.kind(i).ok() == Some(bpfload_btf::Kind::Struct))
            .map(|i| btf.name(i).unwrap().to_string())
            .filter(|name| !name.is_empty())
            .step_by(37)
            .collect();
        let t = Instant::now();
        let mut found = 0;
        for i in 0..n {
            found += btf
                .find_by_name_kind(&names[i % names.len()], bpfload_btf::Kind::Struct)
                .is_some() as usize;
        }
        let per = t.elapsed().as_secs_f64() * 1e9 / n.max(1) as f64;
        assert_eq!(found, n);
        println!(
            "index: first use {ready:.3} ms (tables {keys} bytes), scan lookup {scan:.3} ms, index build {build:.3} ms (tables {} bytes), then {per:.0} ns per lookup",
            btf.table_bytes()
        );
        return;
    }
    if mode == "funcs" {
        let k = bpfload_btf::kernel::vmlinux().unwrap();
        let btf = k.btf();
        let status = |field: &str| -> u64 {
            let s = std::fs::read_to_string("/proc/self/status").unwrap();
            let l = s.lines().find(|l| l.starts_with(field)).unwrap();
            l.split_whitespace().nth(1).unwrap().parse().unwrap()
        };
        let tables = btf.table_bytes();
        // "5" resets VmHWM to the current RSS (proc(5), clear_refs).
        std::fs::write("/proc/self/clear_refs", "5").unwrap();
        let before = status("VmRSS:");
        let names: Vec<String> = btf
            .ids()
            .filter(|&i| btf.kind(i).ok() == Some(bpfload_btf::Kind::Func))
            .step_by(97)
            .map(|i| btf.name(i).unwrap().to_string())
            .collect();
        // Each lookup timed alone: the first ones walk the type section, one builds the FUNC
        // index, later ones use it.
        let mut each = Vec::new();
        let mut peak_first = 0;
        for i in 0..n.max(8) {
            let name = if i == 0 {
                "schedule"
            } else {
                &names[i % names.len()]
            };
            let t = Instant::now();
            let id = btf.find_by_name_kind(name, bpfload_btf::Kind::Func);
            each.push(t.elapsed().as_secs_f64() * 1e3);
            assert!(id.is_some(), "{name}");
            if i == 0 {
                peak_first = status("VmHWM:").saturating_sub(before);
            }
        }
        let shown: Vec<String> = each[..8].iter().map(|t| format!("{t:.3}")).collect();
        let rest = &each[8..];
        let per = rest.iter().sum::<f64>() * 1e6 / rest.len().max(1) as f64;
        println!(
            "funcs: lookups 1-8 {} ms (first: +{peak_first} KiB peak RSS); tables {} -> {} bytes; then {per:.0} ns per lookup",
            shown.join(" "),
            tables,
            btf.table_bytes()
        );
        return;
    }
    let mut v = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        if mode == "libbpf" {
            // SAFETY: plain libbpf calls; the pointer is checked and freed right after.
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
