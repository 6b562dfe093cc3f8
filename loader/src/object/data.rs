//! Global data: `.data*`, `.rodata*` and `.bss*` sections become internal ARRAY maps
//! (`bpf_object__init_internal_map`), and their variables can be set by name before load.

use super::maps::{Map, MapDef, MapKind, Pinning};

/// `BPF_OBJ_NAME_LEN`.
const OBJ_NAME_LEN: usize = 16;
/// `BPF_F_RDONLY_PROG`.
pub const BPF_F_RDONLY_PROG: u32 = 1 << 7;
/// `BPF_F_MMAPABLE`.
pub const BPF_F_MMAPABLE: u32 = 1 << 10;

/// libbpf's `internal_map_name()`: up to 8 chars of the object name plus the section name, except for
/// custom sections (`.rodata.foo`), whose name is used as is; truncated to 15 chars and sanitized to
/// `[A-Za-z0-9_.]`.
pub fn internal_map_name(obj_name: &str, real_name: &str) -> String {
    let sfx_len = real_name.len().max(7);
    let custom = real_name.get(1..).is_some_and(|r| r.contains('.'));
    let pfx_len = if custom {
        0
    } else {
        (OBJ_NAME_LEN - sfx_len)
            .saturating_sub(1)
            .min(obj_name.len())
    };
    let mut name: Vec<u8> = Vec::with_capacity(OBJ_NAME_LEN);
    name.extend_from_slice(&obj_name.as_bytes()[..pfx_len]);
    name.extend_from_slice(&real_name.as_bytes()[..sfx_len.min(real_name.len())]);
    name.truncate(OBJ_NAME_LEN - 1);
    name.iter()
        .map(|&c| {
            if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' {
                c as char
            } else {
                '_'
            }
        })
        .collect()
}

/// The kind of global data a section holds, from its name (`bpf_object__elf_collect`).
pub(crate) fn data_kind(name: &str, nobits: bool) -> Option<MapKind> {
    let is =
        |base: &str| name == base || name.strip_prefix(base).is_some_and(|r| r.starts_with('.'));
    if nobits {
        return is(".bss").then_some(MapKind::Bss);
    }
    if is(".data") {
        Some(MapKind::Data)
    } else if is(".rodata") {
        Some(MapKind::Rodata)
    } else {
        None
    }
}

#[allow(clippy::too_many_arguments)]
/// Builds the internal map of one data section. `mmapable` is libbpf's `map_is_mmapable()`: the
/// section's BTF DATASEC has a non-static variable.
pub(crate) fn internal_map(
    obj_name: &str,
    kind: MapKind,
    sec_name: &str,
    sec_idx: usize,
    size: u32,
    data: Option<&[u8]>,
    value_type_id: u32,
    mmapable: bool,
) -> Map {
    let mut flags = if kind == MapKind::Rodata {
        BPF_F_RDONLY_PROG
    } else {
        0
    };
    if mmapable {
        flags |= BPF_F_MMAPABLE;
    }
    Map {
        name: internal_map_name(obj_name, sec_name),
        real_name: sec_name.to_string(),
        kind,
        sec_idx,
        sec_offset: 0,
        def: MapDef {
            map_type: aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_ARRAY as u32,
            key_size: 4,
            value_size: size,
            max_entries: 1,
            map_flags: flags,
            numa_node: 0,
            map_extra: 0,
            pinning: Pinning::None,
        },
        btf_key_type_id: 0,
        btf_value_type_id: value_type_id,
        inner: None,
        init_slots: Vec::new(),
        values_off: None,
        image: data.map(|d| d.to_vec()),
        autocreate: true,
        btf_vmlinux_value_type_id: 0,
    }
}

/// A global variable: a sized `STT_OBJECT` symbol inside a global data section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalVar {
    /// Symbol name.
    pub name: String,
    /// Index of the internal map that holds it.
    pub map: usize,
    /// Byte offset inside the map value.
    pub offset: usize,
    /// Size in bytes.
    pub size: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libbpf_internal_names() {
        // Values follow libbpf's internal_map_name() arithmetic: 8 chars of object name + 7 of suffix.
        assert_eq!(
            internal_map_name("my_object_name", ".rodata"),
            "my_objec.rodata"
        );
        assert_eq!(internal_map_name("my_object_name", ".bss"), "my_objec.bss");
        assert_eq!(internal_map_name("xy", ".data"), "xy.data");
        assert_eq!(
            internal_map_name("my_object_name", ".rodata.str1.1"),
            ".rodata.str1.1"
        );
        assert_eq!(
            internal_map_name("obj", ".data.a_very_long_name"),
            ".data.a_very_lo"
        );
        assert_eq!(internal_map_name("a-b", ".data"), "a_b.data");
    }

    #[test]
    fn section_kinds() {
        assert_eq!(data_kind(".data", false), Some(MapKind::Data));
        assert_eq!(data_kind(".data.foo", false), Some(MapKind::Data));
        assert_eq!(data_kind(".database", false), None);
        assert_eq!(data_kind(".rodata.str1.1", false), Some(MapKind::Rodata));
        assert_eq!(data_kind(".bss", true), Some(MapKind::Bss));
        assert_eq!(data_kind(".bss", false), None);
    }
}
