//! Where the RSS of one operation goes, per mapping: `rssmap LIB OP OBJECT`
//! (LIB: bpfload, bpfload-1t, libbpf, aya-obj, aya; OP: open, prepare, load).
//! Prints VmHWM/VmRSS/RssAnon/RssFile after the operation and each mapping whose RSS changed
//! (binary code, libc, heap, anonymous maps), which load-bench's single peak number hides.
//! With `RESIDENT=1`, every file mapping is made resident first (load-bench's "code resident").
use std::collections::BTreeMap;
use std::path::Path;
fn smaps() -> BTreeMap<String, (u64, u64)> {
    let s = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let mut m: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut cur = String::new();
    for l in s.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() >= 5 && f[0].contains('-') && !f[0].ends_with(':') {
            let name = if f.len() >= 6 {
                f[5..].join(" ")
            } else {
                "[anon]".into()
            };
            cur = format!("{} {}", name, f[1]);
        } else if f.first() == Some(&"Rss:") {
            let e = m.entry(cur.clone()).or_default();
            e.0 += f[1].parse::<u64>().unwrap();
        } else if f.first() == Some(&"Anonymous:") {
            let e = m.entry(cur.clone()).or_default();
            e.1 += f[1].parse::<u64>().unwrap();
        }
    }
    m
}
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let lib = bpfload_compat::bench::Lib::parse(&a[1]).unwrap();
    let op = bpfload_compat::bench::Op::parse(&a[2]).unwrap();
    bpfload_compat::libbpf_side::capture_libbpf_log();
    // RESIDENT=1: make every file mapping resident first, as load-bench's "code resident" mode.
    if std::env::var_os("RESIDENT").is_some() {
        bpfload_compat::bench::populate_file_mappings().unwrap();
    }
    let b = smaps();
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    bpfload_compat::bench::run_once(lib, op, Path::new(&a[3])).unwrap();
    let after = smaps();
    let st = std::fs::read_to_string("/proc/self/status").unwrap();
    for l in st.lines() {
        if l.starts_with("VmHWM")
            || l.starts_with("VmRSS")
            || l.starts_with("RssAnon")
            || l.starts_with("RssFile")
        {
            println!("{l}");
        }
    }
    for (k, v) in &after {
        let o = b.get(k).copied().unwrap_or_default();
        if v.0 != o.0 {
            println!(
                "{:>6} KiB rss ({:>6} anon)  {}",
                v.0 as i64 - o.0 as i64,
                v.1 as i64 - o.1 as i64,
                k
            );
        }
    }
}
