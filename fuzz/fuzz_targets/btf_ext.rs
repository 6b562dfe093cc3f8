//! BTF.ext bytes → `BtfExt::parse` and every record of every section.
#![no_main]
use bpfload_btf::BtfExt;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(ext) = BtfExt::parse(data) else { return };
    let mut n = 0usize;
    for s in ext.func_info.sections() {
        n += s.records().map(|r| r.insn_off as usize).sum::<usize>();
        let _ = s.get(s.len());
    }
    for s in ext.line_info.sections() {
        for r in s.records() {
            n += (r.line() + r.column()) as usize;
        }
    }
    for s in ext.core_relos.sections() {
        n += s.records().map(|r| r.type_id as usize).sum::<usize>();
    }
    std::hint::black_box(n);
});
