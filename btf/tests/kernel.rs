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
