//! `mmap_arena` against the real kernel: mapping, reads and writes, `map_extra` placement, and the
//! refusals that keep the safe wrapper safe.

mod common;

use std::os::fd::{AsFd, OwnedFd};

use bpfload_syscall::arena::{page_size, BPF_F_SEGV_ON_FAULT};
use bpfload_syscall::map::{create, mmap_arena, MapCreateAttr};
use bpfload_syscall::uapi::bpf_map_type;
use common::require_root;

const BPF_F_MMAPABLE: u32 = 1 << 10;

fn arena(pages: u32, map_extra: u64, flags: u32) -> OwnedFd {
    let attr = MapCreateAttr {
        map_type: bpf_map_type::BPF_MAP_TYPE_ARENA as u32,
        max_entries: pages,
        map_flags: BPF_F_MMAPABLE | flags,
        map_extra,
        ..Default::default()
    };
    create(&attr).expect("create arena map")
}

#[test]
fn maps_reads_and_writes_an_arena() {
    if !require_root("arena mmap") {
        return;
    }
    let fd = arena(2, 0, 0);
    let mut m = mmap_arena(fd.as_fd(), 0).expect("mmap arena");
    assert_eq!(m.len(), 2 * page_size());
    m.write(page_size() + 3, b"arena").unwrap();
    let mut buf = [0u8; 5];
    m.read(page_size() + 3, &mut buf).unwrap();
    assert_eq!(&buf, b"arena");
    assert!(m.read(m.len() - 2, &mut buf).is_err(), "range past the end");
    assert!(m.write(usize::MAX, b"x").is_err(), "overflowing offset");
    // The pages belong to the map: a new view (the kernel requires the same address) sees them.
    let addr = m.addr();
    drop(m);
    let m2 = mmap_arena(fd.as_fd(), addr).expect("remap at the same address");
    m2.read(page_size() + 3, &mut buf).unwrap();
    assert_eq!(&buf, b"arena");
}

#[test]
fn maps_at_map_extra_and_never_replaces_a_mapping() {
    if !require_root("arena mmap") {
        return;
    }
    let hint = 3u64 << 44;
    let fd = arena(1, hint, 0);
    let m = mmap_arena(fd.as_fd(), hint).expect("mmap at map_extra");
    assert_eq!(m.addr(), hint);
    // The range is taken now: another arena asking for the same address must fail, not clobber it.
    let fd2 = arena(1, hint, 0);
    let e = mmap_arena(fd2.as_fd(), hint).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EEXIST), "{e}");
}

#[test]
fn segv_on_fault_arenas_are_not_touched() {
    if !require_root("arena mmap") {
        return;
    }
    let fd = arena(1, 0, BPF_F_SEGV_ON_FAULT);
    let m = mmap_arena(fd.as_fd(), 0).expect("mmap arena");
    let mut b = [0u8; 1];
    let e = m.read(0, &mut b).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::Unsupported);
}

#[test]
fn refuses_non_arena_maps() {
    if !require_root("arena mmap") {
        return;
    }
    let attr = MapCreateAttr {
        map_type: bpf_map_type::BPF_MAP_TYPE_ARRAY as u32,
        key_size: 4,
        value_size: 8,
        max_entries: 1,
        map_flags: BPF_F_MMAPABLE,
        ..Default::default()
    };
    let fd = create(&attr).unwrap();
    assert!(mmap_arena(fd.as_fd(), 0).is_err());
}
