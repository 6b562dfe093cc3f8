//! ELF bytes → the object model: `Object::open_bytes`, then a walk over everything it exposes.
//! The same bytes written to a file and opened with `Object::open_file` (which reads only the
//! sections the parser uses) must give the same model or the same error.
#![no_main]
use libfuzzer_sys::fuzz_target;

/// Everything the model exposes, as text (or the error).
fn view(o: &Result<bpfload::Object, bpfload::OpenError>) -> String {
    match o {
        Err(e) => format!("error: {e}"),
        Ok(o) => format!(
            "{} {} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
            o.name(),
            o.license(),
            o.kern_version(),
            o.endianness(),
            o.programs().chain(o.subprograms()).collect::<Vec<_>>(),
            o.maps(),
            o.globals(),
            o.externs(),
            o.btf(),
            o.btf_ext(),
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("bpfload-fuzz-{}.o", std::process::id()));
    std::fs::write(&path, data).expect("write the fuzz input to a temp file");
    let from_file = bpfload::Object::open_file(&path);
    let from_bytes = bpfload::Object::open_bytes(&path.to_string_lossy(), data);
    assert_eq!(
        view(&from_file),
        view(&from_bytes),
        "open_file and open_bytes disagree"
    );
    let Ok(obj) = from_bytes else {
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
