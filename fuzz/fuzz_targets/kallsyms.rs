//! /proc/kallsyms text → `resolve`, asking for the names of the first lines plus a few fixed ones.
#![no_main]
use bpfload::externs::kallsyms::resolve;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut wanted: Vec<&str> = text
        .lines()
        .take(8)
        .filter_map(|l| l.split_ascii_whitespace().nth(2))
        .collect();
    wanted.extend(["bpf_prog_put", "init_task", ""]);
    if let Ok(r) = resolve(text, &wanted) {
        assert_eq!(r.len(), wanted.len());
    }
});
