//! Map definitions: BTF-defined maps in `.maps`, legacy `maps` definitions, and the internal maps
//! that hold global data (see `data.rs`).

use super::elf::{ElfFile, Endianness};
use crate::error::OpenError;
use crate::names;

/// Where a map definition came from (libbpf's `libbpf_map_type` plus the legacy section).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapKind {
    /// A BTF-defined map in `.maps`.
    Btf,
    /// A legacy `struct bpf_map_def` in the `maps` section (refused by libbpf ≥ 1.0, accepted here as
    /// aya and cilium/ebpf accept it).
    Legacy,
    /// `.data` / `.data.*`.
    Data,
    /// `.rodata` / `.rodata.*`.
    Rodata,
    /// `.bss` / `.bss.*`.
    Bss,
    /// `.kconfig`: values of `__kconfig` externs (read-only for programs, frozen).
    Kconfig,
    /// A struct_ops map (`.struct_ops`, `.struct_ops.link`): see `struct_ops.rs`.
    StructOps,
}

impl MapKind {
    /// Whether this map holds global data (an "internal" map in libbpf's terms).
    pub fn is_internal(self) -> bool {
        matches!(
            self,
            MapKind::Data | MapKind::Rodata | MapKind::Bss | MapKind::Kconfig
        )
    }
}

/// `pinning` attribute of a BTF map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pinning {
    /// Not pinned.
    None,
    /// `LIBBPF_PIN_BY_NAME`: pinned at `<pin root>/<map name>`, reused if already there.
    ByName,
}

/// The kernel-facing definition of a map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapDef {
    /// `enum bpf_map_type`.
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum number of entries.
    pub max_entries: u32,
    /// `BPF_F_*` map flags.
    pub map_flags: u32,
    /// NUMA node (only with `BPF_F_NUMA_NODE`).
    pub numa_node: u32,
    /// `map_extra` (bloom filter hashes, arena address).
    pub map_extra: u64,
    /// Pinning mode.
    pub pinning: Pinning,
}

/// What a `values` initialiser slot refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// A program, by index into the object's programs (prog arrays).
    Program(usize),
    /// A map, by index into the object's maps (map-in-map).
    Map(usize),
}

/// A map as found in the object.
#[derive(Debug, Clone)]
pub struct Map {
    pub(crate) name: String,
    pub(crate) real_name: String,
    pub(crate) kind: MapKind,
    pub(crate) sec_idx: usize,
    pub(crate) sec_offset: u64,
    pub(crate) def: MapDef,
    pub(crate) btf_key_type_id: u32,
    pub(crate) btf_value_type_id: u32,
    /// Inner map template for ARRAY_OF_MAPS / HASH_OF_MAPS.
    pub(crate) inner: Option<Box<Map>>,
    /// `values` initialisers, by slot index.
    pub(crate) init_slots: Vec<Option<Slot>>,
    /// Byte offset of the trailing `values` member in a BTF definition.
    pub(crate) values_off: Option<u64>,
    /// Initial value image of an internal map (`None` for `.bss`: all zeros).
    pub(crate) image: Option<Vec<u8>>,
    pub(crate) autocreate: bool,
    /// STRUCT_OPS maps: the kernel's `bpf_struct_ops_<type>` id (set at prepare).
    pub(crate) btf_vmlinux_value_type_id: u32,
}

impl Map {
    /// The name given to the kernel (for global data: libbpf's `internal_map_name`).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The name in the object: the variable name, or the ELF section name for global data.
    pub fn real_name(&self) -> &str {
        &self.real_name
    }
    /// Where the definition came from.
    pub fn kind(&self) -> MapKind {
        self.kind
    }
    /// The definition.
    pub fn def(&self) -> &MapDef {
        &self.def
    }
    /// `enum bpf_map_type`.
    pub fn map_type(&self) -> u32 {
        self.def.map_type
    }
    /// Map type name ("hash", "array", ...).
    pub fn map_type_name(&self) -> &'static str {
        names::map_type_name(self.def.map_type)
    }
    /// BTF key type id in the object's BTF (0 if none).
    pub fn btf_key_type_id(&self) -> u32 {
        self.btf_key_type_id
    }
    /// BTF value type id in the object's BTF (0 if none).
    pub fn btf_value_type_id(&self) -> u32 {
        self.btf_value_type_id
    }
    /// The inner map template of a map-in-map.
    pub fn inner(&self) -> Option<&Map> {
        self.inner.as_deref()
    }
    /// Static `values` initialisers.
    pub fn init_slots(&self) -> &[Option<Slot>] {
        &self.init_slots
    }
    /// Initial data of a global data map (`None` for `.bss`, and for `.kconfig` until a load
    /// resolves its values).
    pub fn initial_data(&self) -> Option<&[u8]> {
        self.image.as_deref()
    }
    /// Whether the map is created at load (`false` after [`Loader::set_autocreate`](crate::Loader::set_autocreate)).
    pub fn autocreate(&self) -> bool {
        self.autocreate
    }
}

/// Size of libbpf's legacy `struct bpf_map_def` (type, key_size, value_size, max_entries, map_flags).
const LEGACY_DEF_MIN: usize = 20;

/// Parses legacy `maps` section definitions: one per symbol in the section, in offset order. The
/// definition size is the symbol size, or the section size divided by the number of symbols (as
/// cilium/ebpf and old libbpf do). iproute2's extended layout (`id`, `pinning` after `map_flags`)
/// is read when present; a non-zero `pinning` (1 or 2) means pinned by name under the pin root.
pub(crate) fn parse_legacy(
    elf: &ElfFile<'_>,
    sec_idx: usize,
    out: &mut Vec<Map>,
) -> Result<(), OpenError> {
    let sec = &elf.sections[sec_idx];
    let mut syms: Vec<_> = elf
        .symbols
        .iter()
        .filter(|s| {
            s.shndx == sec_idx && !s.name.is_empty() && s.typ != goblin::elf::sym::STT_SECTION
        })
        .collect();
    crate::sort::sort_by_key_stable(&mut syms, |s| (s.value, 0));
    if syms.is_empty() {
        return Ok(());
    }
    let default_sz = sec.data.len() / syms.len();
    for s in syms {
        let sz = if s.size != 0 {
            s.size as usize
        } else {
            default_sz
        };
        let err = |msg: String| OpenError::Map {
            map: s.name.to_string(),
            msg,
        };
        let start = usize::try_from(s.value).map_err(|_| err("offset out of range".into()))?;
        let bytes = start
            .checked_add(sz)
            .and_then(|end| sec.data.get(start..end))
            .ok_or_else(|| {
                err(format!(
                    "legacy definition [{start}, +{sz}) exceeds section 'maps'"
                ))
            })?;
        if bytes.len() < LEGACY_DEF_MIN {
            return Err(err(format!(
                "legacy definition is {} bytes, at least {LEGACY_DEF_MIN} needed",
                bytes.len()
            )));
        }
        let e: Endianness = elf.endian;
        let f = |i: usize| e.read_u32(bytes, i * 4).unwrap_or(0);
        let pinning = match bytes.len() >= 28 {
            true => match f(6) {
                0 => Pinning::None,
                // iproute2's PIN_OBJECT_NS (1) and PIN_GLOBAL_NS (2) both pin by name, as in cilium/ebpf.
                1 | 2 => Pinning::ByName,
                other => return Err(err(format!("unsupported legacy pinning value {other}"))),
            },
            false => Pinning::None,
        };
        out.push(Map {
            name: s.name.to_string(),
            real_name: s.name.to_string(),
            kind: MapKind::Legacy,
            sec_idx,
            sec_offset: s.value,
            def: MapDef {
                map_type: f(0),
                key_size: f(1),
                value_size: f(2),
                max_entries: f(3),
                map_flags: f(4),
                numa_node: 0,
                map_extra: 0,
                pinning,
            },
            btf_key_type_id: 0,
            btf_value_type_id: 0,
            inner: None,
            init_slots: Vec::new(),
            values_off: None,
            image: None,
            autocreate: true,
            btf_vmlinux_value_type_id: 0,
        });
    }
    Ok(())
}
