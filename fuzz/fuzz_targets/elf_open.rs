//! ELF bytes → the object model: `Object::open_bytes`, then a walk over everything it exposes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(obj) = bpfload::Object::open_bytes("fuzz", data) else {
        return;
    };
    let _ = (
        obj.name(),
        obj.license(),
        obj.kern_version(),
        obj.endianness(),
    );
    for p in obj.programs().chain(obj.subprograms()) {
        std::hint::black_box(format!("{p:?}"));
    }
    for m in obj.maps() {
        std::hint::black_box(format!("{m:?}"));
    }
    std::hint::black_box(format!("{:?} {:?}", obj.globals(), obj.externs()));
    // The object's BTF went through the same parser the loader uses later; walk it too.
    if let Some(btf) = obj.btf() {
        if let Ok(b) = bpfload_btf::Btf::parse(btf) {
            for id in b.ids() {
                let _ = b.type_by_id(id);
                let _ = b.resolve_size(id);
            }
        }
    }
    if let Some(ext) = obj.btf_ext() {
        let _ = bpfload_btf::BtfExt::parse(ext);
    }
});
