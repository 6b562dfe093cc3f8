//! BPF arena support, as libbpf 1.7 does it.
//!
//! - Open (`bpf_object__init_user_btf_maps`): at most one `BPF_MAP_TYPE_ARENA` map; the
//!   `.addr_space.1` section (the `__arena` globals) needs one, and must fit in it (rounded up to
//!   pages). Its bytes become the arena map's initial data ([`Map::initial_data`]).
//! - Relocation (`bpf_program__record_reloc`): an `ld_imm64` of an `.addr_space.1` symbol is a
//!   `RELO_DATA` against the arena map: `BPF_PSEUDO_MAP_VALUE`, the map fd, and the symbol offset
//!   plus the data offset below in the second half's `imm`.
//! - Placement (`bpf_object__relocate`): with `FEAT_LDIMM64_FULL_RANGE_OFF` the globals go in the
//!   last pages of the arena (so page 0 stays free to catch NULL pointers), otherwise at offset 0.
//! - Creation (`bpf_object__create_maps`): the new arena is mapped (at `map_extra` if set) before
//!   any program loads, since the kernel resolves arena addresses from the mapping, and the initial
//!   data is copied in. The mapping is kept in the [`LoadedMap`](crate::LoadedMap) as libbpf keeps
//!   `map->mmaped`: it is how user space reads and writes arena memory shared with programs.
//!
//! [`Map::initial_data`]: crate::object::maps::Map::initial_data

use std::os::fd::BorrowedFd;

use aya_obj::generated::bpf_map_type as mt;
use bpfload_syscall::arena::{page_size, ArenaMapping};

use bpfload_syscall::{Errno, SysError};

use crate::error::{LoadError, OpenError};
use crate::object::elf::ElfFile;
use crate::object::maps::Map;
use crate::object::Object;

/// libbpf's `ARENA_SEC`.
pub const ARENA_SEC: &str = ".addr_space.1";

/// The object's arena: the `.addr_space.1` section and the arena map.
#[derive(Debug, Clone, Default)]
pub(crate) struct ObjArena {
    /// Section index of `.addr_space.1` (non-empty PROGBITS).
    pub shndx: Option<usize>,
    /// Index of the arena map in the object's maps.
    pub map: Option<usize>,
    /// Size of the `.addr_space.1` data.
    pub data_len: usize,
}

pub(crate) fn is_arena(m: &Map) -> bool {
    m.def.map_type == mt::BPF_MAP_TYPE_ARENA as u32
}

/// `bpf_map_mmap_sz` of an arena: `max_entries` pages.
fn mmap_size(m: &Map) -> u64 {
    page_size() as u64 * u64::from(m.def.max_entries)
}

fn round_to_page(n: u64) -> u64 {
    let p = page_size() as u64;
    n.div_ceil(p) * p
}

/// The arena part of `bpf_object__init_user_btf_maps` + `init_arena_map_data`, after the BTF maps
/// are parsed.
pub(crate) fn init(obj: &mut Object, elf: &ElfFile<'_>) -> Result<(), OpenError> {
    let data = obj
        .arena
        .shndx
        .and_then(|i| elf.sections.get(i))
        .map(|s| s.data);
    obj.arena.data_len = data.map_or(0, <[u8]>::len);
    for i in 0..obj.maps.len() {
        if !is_arena(&obj.maps[i]) {
            continue;
        }
        if let Some(first) = obj.arena.map {
            return Err(OpenError::Map {
                map: obj.maps[i].name.clone(),
                msg: format!(
                    "only single ARENA map is supported (map '{}' is also ARENA)",
                    obj.maps[first].name
                ),
            });
        }
        obj.arena.map = Some(i);
        if let Some(data) = data {
            let mmap_sz = mmap_size(&obj.maps[i]);
            if round_to_page(data.len() as u64) > mmap_sz {
                return Err(OpenError::Section {
                    section: ARENA_SEC.into(),
                    msg: format!(
                        "declared ARENA map size ({mmap_sz}) is too small to hold global __arena variables of size {}",
                        data.len()
                    ),
                });
            }
            // bpf_map__initial_value() of an arena returns the `.addr_space.1` image.
            obj.maps[i].image = Some(data.to_vec());
        }
    }
    if data.is_some() && obj.arena.map.is_none() {
        return Err(OpenError::Section {
            section: ARENA_SEC.into(),
            msg: "to use global __arena variables the ARENA map should be explicitly declared in SEC(\".maps\")".into(),
        });
    }
    Ok(())
}

/// The arena map index for a relocation against section `shndx`, if it is `.addr_space.1`
/// (`Some(Err)` when there is no arena map, as libbpf's "bad arena data relocation").
pub(crate) fn reloc_map(obj: &Object, shndx: usize) -> Option<Result<usize, String>> {
    if obj.arena.shndx != Some(shndx) {
        return None;
    }
    Some(
        obj.arena
            .map
            .ok_or_else(|| "bad arena data relocation, no arena maps defined".to_string()),
    )
}

/// Byte offset of the `__arena` globals in the arena (libbpf's `arena_data_off`): the last pages
/// when the kernel accepts full-range `ld_imm64` offsets, else 0.
pub(crate) fn data_offset(obj: &Object, full_range_off: bool) -> u64 {
    match obj.arena.map {
        Some(i) if full_range_off => {
            mmap_size(&obj.maps[i]).saturating_sub(round_to_page(obj.arena.data_len as u64))
        }
        _ => 0,
    }
}

/// The `ld_imm64` relocation of arena globals: (arena map index, extra offset for `imm`).
pub(crate) fn reloc_offset(obj: &Object, full_range_off: bool) -> Option<(usize, i32)> {
    let map = obj.arena.map?;
    // The offset is below 4 GiB (max_entries pages ≤ the kernel's 4 GiB arena limit, or the map
    // fails to create); libbpf adds it to the 32-bit imm the same way.
    Some((map, data_offset(obj, full_range_off) as i32))
}

/// The arena branch of `bpf_object__create_maps`, for a newly created arena map: mmap it at
/// `map_extra` (or anywhere) and copy the initial data at `data_off`.
pub(crate) fn map_and_init(
    m: &Map,
    fd: BorrowedFd<'_>,
    data_off: u64,
) -> Result<ArenaMapping, LoadError> {
    let err = |step: &'static str, e: std::io::Error| LoadError::Map {
        map: m.name.clone(),
        step,
        source: SysError::invalid(
            "mmap",
            Errno::from_raw(e.raw_os_error().unwrap_or(libc::EINVAL)),
            e.to_string(),
        ),
    };
    let mut mapping = bpfload_syscall::arena::mmap_arena(fd, m.def.map_extra)
        .map_err(|e| err("mmap arena", e))?;
    if let Some(data) = m.image.as_deref().filter(|d| !d.is_empty()) {
        let off = usize::try_from(data_off).map_err(|_| {
            err(
                "copy __arena globals",
                std::io::Error::from_raw_os_error(libc::EOVERFLOW),
            )
        })?;
        mapping
            .write(off, data)
            .map_err(|e| err("copy __arena globals", e))?;
    }
    Ok(mapping)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Vec<u8> {
        let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/bpf/arena.bpf.o");
        std::fs::read(p).expect("tests/bpf/arena.bpf.o")
    }

    /// Offsets of the BTF ARRAY types `int [n]` of the fixture's map definition (the `__uint`
    /// members): (offset of `nelems`, nelems), found next to the `type` member's `[33]`.
    fn int_arrays(bytes: &[u8]) -> Vec<(usize, u32)> {
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
        let arrays: Vec<usize> = (0..bytes.len().saturating_sub(24))
            .filter(|&i| i % 4 == 0 && u32_at(i) == 3 << 24 && u32_at(i + 4) == 0)
            .collect();
        // The element type of `int (*type)[33]` is `int`.
        let int = arrays
            .iter()
            .find(|&&i| u32_at(i + 16) == 33)
            .map(|&i| u32_at(i + 8))
            .expect("type [33]");
        arrays
            .into_iter()
            .filter(|&i| u32_at(i + 8) == int)
            .map(|i| (i + 16, u32_at(i + 16)))
            .collect()
    }

    #[test]
    fn globals_go_at_the_start_or_in_the_last_pages() {
        let obj = Object::open_bytes("arena.bpf.o", &fixture()).unwrap();
        let idx = obj.maps.iter().position(is_arena).unwrap();
        assert_eq!(obj.arena.map, Some(idx));
        assert_eq!(obj.arena.data_len, 24);
        assert_eq!(obj.maps[idx].image.as_ref().map(Vec::len), Some(24));
        let page = page_size() as u64;
        // libbpf: arena_data_off = bpf_map_mmap_sz - roundup(arena_data_sz, page) with the feature.
        assert_eq!(data_offset(&obj, false), 0);
        assert_eq!(data_offset(&obj, true), 4 * page - page);
        assert_eq!(reloc_offset(&obj, true), Some((idx, (3 * page) as i32)));
        assert_eq!(reloc_offset(&obj, false), Some((idx, 0)));
    }

    #[test]
    fn an_arena_too_small_for_the_globals_is_refused() {
        let mut bytes = fixture();
        let max_entries = int_arrays(&bytes)
            .into_iter()
            .find(|&(_, n)| n == 4)
            .expect("max_entries [4]");
        bytes[max_entries.0..max_entries.0 + 4].copy_from_slice(&0u32.to_le_bytes());
        let e = Object::open_bytes("arena.bpf.o", &bytes).unwrap_err();
        assert!(
            e.to_string()
                .contains("too small to hold global __arena variables"),
            "{e}"
        );
    }
}
