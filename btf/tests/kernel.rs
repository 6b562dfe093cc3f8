//! Tests against the running kernel's BTF (/sys/kernel/btf/vmlinux; readable without privileges).

use std::path::Path;
use std::sync::Arc;

use bpfload_btf::{kernel, Btf, Kind, Type};

fn vmlinux_present() -> bool {
    if Path::new(kernel::VMLINUX_PATH).exists() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but {} is missing",
        kernel::VMLINUX_PATH
    );
    eprintln!("skipping: {} not present", kernel::VMLINUX_PATH);
    false
}

#[test]
fn vmlinux_parses_and_finds_task_struct() {
    if !vmlinux_present() {
        return;
    }
    let data = kernel::vmlinux().unwrap();
    let btf = data.btf();
    assert!(btf.len() > 1000);
    assert!(
        btf.is_indexed(),
        "vmlinux is indexed for CO-RE in its parse pass"
    );
    assert!(btf.find_by_name_kind("schedule", Kind::Func).is_some());
    let id = btf.find_by_name_kind("task_struct", Kind::Struct).unwrap();
    assert_eq!(btf.name(id).unwrap(), "task_struct");
    let Type::Struct(s) = btf.type_by_id(id).unwrap() else {
        panic!("task_struct is not a struct");
    };
    assert!(s
        .members()
        .any(|m| btf.str_at(m.name_off).unwrap() == "pid"));
    assert_eq!(btf.resolve_size(id).unwrap(), s.size);
    assert_eq!(
        btf.find_by_name_kind("no_such_type_xyz", Kind::Struct),
        None
    );
    // The same Arc on later calls: parsed once per process.
    assert!(Arc::ptr_eq(&data, &kernel::vmlinux().unwrap()));
}

#[test]
fn vmlinux_concurrent_first_use_parses_once() {
    if !vmlinux_present() {
        return;
    }
    let handles: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(|| kernel::vmlinux().unwrap()))
        .collect();
    let all: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for d in &all[1..] {
        assert!(Arc::ptr_eq(&all[0], d));
    }
}

#[test]
fn vmlinux_read_and_mmap_agree() {
    if !vmlinux_present() {
        return;
    }
    let read = std::fs::read(kernel::VMLINUX_PATH).unwrap();
    let mapped = kernel::read_btf_bytes(Path::new(kernel::VMLINUX_PATH), true).unwrap();
    assert_eq!(&read[..], &mapped[..]);
    let a = Btf::parse(&read).unwrap();
    assert_eq!(a.len(), kernel::vmlinux().unwrap().btf().len());
}

#[test]
fn module_btf_is_split_on_vmlinux() {
    if !vmlinux_present() {
        return;
    }
    let base = kernel::vmlinux().unwrap();
    let mods = kernel::modules().unwrap();
    // This machine may have no modules with BTF; each one present must be split on vmlinux.
    for m in mods.iter() {
        let btf = m.data.btf();
        assert_eq!(btf.start_id(), base.btf().len(), "{}", m.name);
        assert!(btf.len() >= btf.start_id());
        assert!(Arc::ptr_eq(m.data.base().unwrap(), &base));
        let again = kernel::module(&m.name).unwrap().unwrap();
        assert!(Arc::ptr_eq(&again, m), "module BTF is cached");
    }
    assert!(kernel::module("no_such_module_xyz").unwrap().is_none());
    assert!(kernel::module("../etc/passwd").unwrap().is_none());
    assert!(kernel::module("vmlinux").unwrap().is_none());
}

#[test]
fn custom_btf_file_replaces_the_kernels() {
    if !vmlinux_present() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("btf-custom-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let raw = dir.join("vmlinux.btf");
    std::fs::copy(kernel::VMLINUX_PATH, &raw).unwrap();
    let target = kernel::TargetBtf::Custom(raw.clone());
    let custom = target.load().unwrap();
    assert!(!Arc::ptr_eq(&custom, &kernel::vmlinux().unwrap()));
    assert_eq!(custom.btf().len(), kernel::vmlinux().unwrap().btf().len());
    let elf = dir.join("obj.o");
    std::fs::write(&elf, b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0").unwrap();
    let err = kernel::custom(&elf).unwrap_err().to_string();
    assert!(err.contains("ELF"), "{err}");
    let err = kernel::custom(dir.join("missing")).unwrap_err().to_string();
    assert!(err.contains("missing"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
