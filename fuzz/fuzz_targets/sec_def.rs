//! The SEC() matcher: section name → libbpf's section definition table.
#![no_main]
use bpfload::object::sec_def::find;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    let name = name.strip_prefix('?').unwrap_or(name);
    if let Some(def) = find(name) {
        std::hint::black_box(format!("{def:?}"));
    }
});
