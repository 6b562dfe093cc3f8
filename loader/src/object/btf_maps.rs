//! BTF-defined maps in `.maps` (`init_user_btf_maps`, `parse_btf_map_def`) and their static `values`
//! initialisers in `.rel.maps` (`bpf_object__collect_map_relos`).

use std::collections::HashMap;

use goblin::elf::sym;

use super::btf_view::{self as bv, BtfView, TypeRec};
use super::elf::ElfFile;
use super::maps::{Map, MapDef, MapKind, Pinning, Slot};
use super::Object;
use crate::error::OpenError;

use aya_obj::generated::bpf_map_type as mt;

pub(crate) type ObjBtf<'a> = BtfView<'a>;

/// A parsed `struct { __uint(type, ...); ... }` definition (`struct btf_map_def`).
#[derive(Debug, Default, Clone)]
struct BtfMapDef {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    numa_node: u32,
    map_extra: u64,
    pinning: u32,
    key_type_id: u32,
    value_type_id: u32,
    has_inner: bool,
}

fn is_map_in_map(t: u32) -> bool {
    t == mt::BPF_MAP_TYPE_ARRAY_OF_MAPS as u32 || t == mt::BPF_MAP_TYPE_HASH_OF_MAPS as u32
}

/// libbpf's `adjust_ringbuf_sz`: round ring buffer sizes up to a power-of-2 multiple of the page size.
pub(crate) fn adjust_ringbuf_sz(sz: u32) -> u32 {
    let page = page_size();
    if sz == 0 {
        return 0;
    }
    if sz.is_multiple_of(page) && (sz / page).is_power_of_two() {
        return sz;
    }
    let mut mul: u32 = 1;
    while mul <= u32::MAX / page {
        if mul * page > sz {
            return mul * page;
        }
        match mul.checked_mul(2) {
            Some(m) => mul = m,
            None => break,
        }
    }
    sz
}

/// The page size from the auxiliary vector (`AT_PAGESZ`), without `unsafe`; 4096 if unreadable.
fn page_size() -> u32 {
    static PAGE: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PAGE.get_or_init(|| {
        const AT_PAGESZ: u64 = 6;
        let auxv = std::fs::read("/proc/self/auxv").unwrap_or_default();
        auxv.chunks_exact(16)
            .map(|c| {
                (
                    u64::from_ne_bytes(c[..8].try_into().unwrap()),
                    u64::from_ne_bytes(c[8..].try_into().unwrap()),
                )
            })
            .find(|&(k, _)| k == AT_PAGESZ)
            .and_then(|(_, v)| u32::try_from(v).ok())
            .filter(|v| v.is_power_of_two())
            .unwrap_or(4096)
    })
}

pub(crate) fn adjust_max_entries(map_type: u32, max_entries: u32) -> u32 {
    if map_type == mt::BPF_MAP_TYPE_RINGBUF as u32
        || map_type == mt::BPF_MAP_TYPE_USER_RINGBUF as u32
    {
        adjust_ringbuf_sz(max_entries)
    } else {
        max_entries
    }
}

struct Ctx<'b> {
    btf: &'b BtfView<'b>,
    map: String,
}

impl Ctx<'_> {
    fn err(&self, msg: impl Into<String>) -> OpenError {
        OpenError::Map {
            map: self.map.clone(),
            msg: msg.into(),
        }
    }

    /// `get_map_field_int`: `__uint(name, N)` is `int (*name)[N]`.
    fn field_int(&self, field: &str, type_id: u32) -> Result<u32, OpenError> {
        let (_, t) = self
            .btf
            .skip_mods(type_id)
            .ok_or_else(|| self.err(format!("attr '{field}': bad type")))?;
        if t.kind != bv::KIND_PTR {
            return Err(self.err(format!("attr '{field}': expected PTR, got kind {}", t.kind)));
        }
        let arr = self
            .btf
            .rec(t.size_or_type)
            .ok_or_else(|| self.err(format!("attr '{field}': type not found")))?;
        let (_, n) = self
            .btf
            .array(arr)
            .ok_or_else(|| self.err(format!("attr '{field}': expected ARRAY")))?;
        Ok(n)
    }

    /// `get_map_field_long`: `__uint` or `__ulong(name, N)` (a one-value enum).
    fn field_long(&self, field: &str, type_id: u32) -> Result<u64, OpenError> {
        let (_, t) = self
            .btf
            .skip_mods(type_id)
            .ok_or_else(|| self.err(format!("attr '{field}': bad type")))?;
        if t.kind == bv::KIND_PTR {
            return self.field_int(field, type_id).map(u64::from);
        }
        if t.kind != bv::KIND_ENUM && t.kind != bv::KIND_ENUM64 {
            return Err(self.err(format!(
                "attr '{field}': expected ENUM or ENUM64, got kind {}",
                t.kind
            )));
        }
        self.btf
            .single_enum_value(t)
            .ok_or_else(|| self.err(format!("attr '{field}': invalid __ulong")))
    }

    fn key_or_value(&self, field: &str, type_id: u32, cur: u32) -> Result<(u32, u32), OpenError> {
        let t = self
            .btf
            .rec(type_id)
            .ok_or_else(|| self.err(format!("{field} type not found")))?;
        if t.kind != bv::KIND_PTR {
            return Err(self.err(format!("{field} spec is not PTR")));
        }
        let sz = self
            .btf
            .resolve_size(t.size_or_type)
            .map_err(|e| self.err(format!("can't determine {field} size: {e}")))?;
        if cur != 0 && cur != sz {
            return Err(self.err(format!("conflicting {field} size {cur} != {sz}")));
        }
        Ok((sz, t.size_or_type))
    }

    /// `parse_btf_map_def` (strict mode: unknown fields are errors).
    fn parse_def(
        &self,
        def_t: TypeRec,
        is_inner: bool,
        inner: &mut BtfMapDef,
    ) -> Result<BtfMapDef, OpenError> {
        let mut d = BtfMapDef::default();
        let members = self.btf.members(def_t);
        let n = members.len();
        for (i, m) in members.iter().enumerate() {
            let name = self
                .btf
                .str_at(m.name_off)
                .ok_or_else(|| self.err(format!("invalid field #{i}")))?;
            match name {
                "type" => d.map_type = self.field_int(name, m.type_id)?,
                "max_entries" => d.max_entries = self.field_int(name, m.type_id)?,
                "map_flags" => d.map_flags = self.field_int(name, m.type_id)?,
                "numa_node" => d.numa_node = self.field_int(name, m.type_id)?,
                "key_size" | "value_size" => {
                    let sz = self.field_int(name, m.type_id)?;
                    let cur = if name == "key_size" {
                        &mut d.key_size
                    } else {
                        &mut d.value_size
                    };
                    if *cur != 0 && *cur != sz {
                        return Err(self.err(format!("conflicting {name} {} != {sz}", *cur)));
                    }
                    *cur = sz;
                }
                "key" => {
                    (d.key_size, d.key_type_id) = self.key_or_value("key", m.type_id, d.key_size)?
                }
                "value" => {
                    (d.value_size, d.value_type_id) =
                        self.key_or_value("value", m.type_id, d.value_size)?
                }
                "values" => {
                    let mim = is_map_in_map(d.map_type);
                    let pa = d.map_type == mt::BPF_MAP_TYPE_PROG_ARRAY as u32;
                    if is_inner {
                        return Err(self.err("multi-level inner maps are not supported"));
                    }
                    if i != n - 1 {
                        return Err(self.err("'values' member should be last"));
                    }
                    if !mim && !pa {
                        return Err(self.err("should be map-in-map or prog-array to have 'values'"));
                    }
                    if d.value_size != 0 && d.value_size != 4 {
                        return Err(
                            self.err(format!("conflicting value size {} != 4", d.value_size))
                        );
                    }
                    d.value_size = 4;
                    let t = self
                        .btf
                        .rec(m.type_id)
                        .ok_or_else(|| self.err("'values' type not found"))?;
                    match self.btf.array(t) {
                        Some((elem, 0)) => {
                            let (_, p) = self
                                .btf
                                .skip_mods(elem)
                                .ok_or_else(|| self.err("'values' bad element"))?;
                            if p.kind != bv::KIND_PTR {
                                return Err(self.err("'values' element is not a pointer"));
                            }
                            let (_, target) = self
                                .btf
                                .skip_mods(p.size_or_type)
                                .ok_or_else(|| self.err("'values' bad pointee"))?;
                            if pa {
                                if target.kind != bv::KIND_FUNC_PROTO {
                                    return Err(
                                        self.err("prog-array value def is of unexpected kind")
                                    );
                                }
                                continue;
                            }
                            if target.kind != bv::KIND_STRUCT {
                                return Err(self.err("map-in-map inner def is of unexpected kind"));
                            }
                            let inner_ctx = Ctx {
                                btf: self.btf,
                                map: format!("{}.inner", self.map),
                            };
                            *inner =
                                inner_ctx.parse_def(target, true, &mut BtfMapDef::default())?;
                            d.has_inner = true;
                        }
                        _ => return Err(self.err("'values' spec is not a zero-sized array")),
                    }
                }
                "pinning" => {
                    if is_inner {
                        return Err(self.err("inner def can't be pinned"));
                    }
                    let v = self.field_int(name, m.type_id)?;
                    if v > 1 {
                        return Err(self.err(format!("invalid pinning value {v}")));
                    }
                    d.pinning = v;
                }
                "map_extra" => d.map_extra = self.field_long(name, m.type_id)?,
                other => return Err(self.err(format!("unknown field '{other}'"))),
            }
        }
        if d.map_type == 0 {
            return Err(self.err("map type isn't specified"));
        }
        Ok(d)
    }
}

fn map_from_def(name: String, sec_idx: usize, sec_offset: u64, d: &BtfMapDef) -> Map {
    Map {
        name: name.clone(),
        real_name: name,
        kind: MapKind::Btf,
        sec_idx,
        sec_offset,
        def: MapDef {
            map_type: d.map_type,
            key_size: d.key_size,
            value_size: d.value_size,
            max_entries: adjust_max_entries(d.map_type, d.max_entries),
            map_flags: d.map_flags,
            numa_node: d.numa_node,
            map_extra: d.map_extra,
            pinning: if d.pinning == 1 {
                Pinning::ByName
            } else {
                Pinning::None
            },
        },
        btf_key_type_id: d.key_type_id,
        btf_value_type_id: d.value_type_id,
        inner: None,
        init_slots: Vec::new(),
        values_off: None,
        image: None,
        autocreate: true,
        btf_vmlinux_value_type_id: 0,
    }
}

/// Symbol offsets in `sec_idx`, by name (clang leaves DATASEC offsets for libbpf to fix up from these).
/// The last symbol of a name wins (as collecting them into a map did).
fn symbol_offsets<'a>(elf: &ElfFile<'a>, sec_idx: usize) -> SymOffsets<'a> {
    let mut out = SymOffsets {
        by_name: HashMap::new(),
        at: Vec::new(),
    };
    for s in &elf.symbols {
        if s.shndx == sec_idx && !s.name.is_empty() && s.typ != sym::STT_SECTION {
            out.by_name.insert(s.name, out.at.len());
            out.at.push((s.value, s.size));
        }
    }
    out
}

/// (value, size) of symbols by name: a `&str -> usize` table (the type the other name lookups
/// use, so no hash table code of its own; issue 8: binary size) into a list.
struct SymOffsets<'a> {
    by_name: HashMap<&'a str, usize>,
    at: Vec<(u64, u64)>,
}

impl SymOffsets<'_> {
    fn get(&self, name: &str) -> Option<(u64, u64)> {
        self.by_name.get(name).map(|&i| self.at[i])
    }
}

/// `init_user_btf_maps`.
pub(crate) fn parse(
    obj: &mut Object,
    elf: &ElfFile<'_>,
    btf: &BtfView,
    sec_idx: usize,
) -> Result<(), OpenError> {
    let sec_size = elf.sections[sec_idx].size;
    let ds = btf
        .find_datasec(".maps")
        .ok_or_else(|| OpenError::Btf("DATASEC '.maps' not found".into()))?;
    let ds_rec = btf
        .rec(ds)
        .ok_or_else(|| OpenError::Btf("DATASEC '.maps' unreadable".into()))?;
    let syms = symbol_offsets(elf, sec_idx);
    let mut found = Vec::new();
    for (i, (var_id, btf_off, vsize)) in btf.datasec_vars(ds_rec).into_iter().enumerate() {
        let var = btf
            .rec(var_id)
            .ok_or_else(|| OpenError::Btf(format!(".maps var #{i}: type not found")))?;
        let name = btf.name(var_id).to_string();
        let err = |msg: String| OpenError::Map {
            map: name.clone(),
            msg,
        };
        if name.is_empty() {
            return Err(OpenError::Btf(format!("map #{i}: empty name")));
        }
        if var.kind != bv::KIND_VAR {
            return Err(err(format!("unexpected var kind {}", var.kind)));
        }
        if btf.var_linkage(var) != Some(bv::VAR_GLOBAL_ALLOCATED) {
            return Err(err(
                "unsupported map linkage (static maps are not supported)".into(),
            ));
        }
        let (offset, size) = syms
            .get(name.as_str())
            .unwrap_or((u64::from(btf_off), u64::from(vsize)));
        if offset.checked_add(size).is_none_or(|end| end > sec_size) {
            return Err(err(
                "BTF data is corrupted (variable outside '.maps')".into()
            ));
        }
        let (_, def_t) = btf
            .skip_mods(var.size_or_type)
            .ok_or_else(|| err("bad definition type".into()))?;
        if def_t.kind != bv::KIND_STRUCT {
            return Err(err(format!("unexpected def kind {}", def_t.kind)));
        }
        if u64::from(def_t.size_or_type) > size {
            return Err(err("invalid def size".into()));
        }
        let ctx = Ctx {
            btf,
            map: name.clone(),
        };
        let mut inner = BtfMapDef::default();
        let def = ctx.parse_def(def_t, false, &mut inner)?;
        let mut map = map_from_def(name.clone(), sec_idx, offset, &def);
        map.values_off = btf
            .members(def_t)
            .last()
            .filter(|m| btf.str_at(m.name_off) == Some("values"))
            .map(|m| u64::from(m.bit_offset / 8));
        if def.has_inner {
            map.inner = Some(Box::new(map_from_def(
                format!("{name}.inner"),
                sec_idx,
                offset,
                &inner,
            )));
        }
        found.push((offset, map));
    }
    // btf_fixup_datasec sorts the variables by offset, so libbpf's map order is offset order.
    crate::sort::sort_by_key_stable(&mut found, |(off, _)| (*off, 0));
    obj.maps.extend(found.into_iter().map(|(_, m)| m));
    Ok(())
}

/// `bpf_object__collect_map_relos`: `.rel.maps` entries fill `values` slots.
pub(crate) fn collect_slot_relocs(
    obj: &mut Object,
    elf: &ElfFile<'_>,
    sec_idx: usize,
) -> Result<(), OpenError> {
    let Some(rs) = elf.rel_sections.iter().find(|r| r.target == sec_idx) else {
        return Ok(());
    };
    // (start, end, map idx) of each BTF map, sorted, for O(log n) lookup by offset.
    let mut spans: Vec<(u64, u64, usize)> = Vec::new();
    let syms = symbol_offsets(elf, sec_idx);
    for (i, m) in obj.maps.iter().enumerate() {
        if m.kind == MapKind::Btf {
            let size = syms.get(m.real_name.as_str()).map(|s| s.1).unwrap_or(0);
            spans.push((m.sec_offset, m.sec_offset + size, i));
        }
    }
    crate::sort::sort_keys(&mut spans);
    // First map / main program with each name (libbpf's find_*_by_name).
    let mut map_by_name: HashMap<&str, usize> = HashMap::new();
    for (i, m) in obj.maps.iter().enumerate() {
        map_by_name.entry(m.name.as_str()).or_insert(i);
    }
    let mut prog_by_name: HashMap<&str, usize> = HashMap::new();
    for (i, p) in obj
        .programs
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.is_subprog)
    {
        prog_by_name.entry(p.name.as_str()).or_insert(i);
    }
    // Owned keys (the loop below changes `obj`); u64 values: the map type the object's
    // section sizes use, so no table code of its own (issue 8: binary size).
    let map_by_name = map_by_name
        .into_iter()
        .map(|(k, v)| (k.to_string(), v as u64))
        .collect::<HashMap<String, u64>>();
    let prog_by_name = prog_by_name
        .into_iter()
        .map(|(k, v)| (k.to_string(), v as u64))
        .collect::<HashMap<String, u64>>();
    for (ri, rel) in rs.rels().enumerate() {
        let s = &elf.symbols[rel.sym];
        let err = |msg: String| OpenError::Section {
            section: ".maps".into(),
            msg: format!("relo #{ri}: {msg}"),
        };
        let pos = spans.partition_point(|&(start, _, _)| start <= rel.offset);
        let Some(&(start, end, midx)) = pos.checked_sub(1).and_then(|p| spans.get(p)) else {
            return Err(err(format!(
                "cannot find map '{}' at offset {}",
                s.name, rel.offset
            )));
        };
        if rel.offset.checked_add(8).is_none_or(|e| e > end) {
            return Err(err(format!(
                "cannot find map '{}' at offset {}",
                s.name, rel.offset
            )));
        }
        let map_type = obj.maps[midx].def.map_type;
        let slot = if is_map_in_map(map_type) {
            if Some(s.shndx) != obj.btf_maps_shndx {
                return Err(err(format!("'{}' isn't a BTF-defined map", s.name)));
            }
            if map_type == mt::BPF_MAP_TYPE_HASH_OF_MAPS as u32 && obj.maps[midx].def.key_size != 4
            {
                return Err(err(format!(
                    "hash-of-maps '{}' should have key size 4",
                    obj.maps[midx].name
                )));
            }
            let t = map_by_name.get(s.name).map(|&v| v as usize);
            Slot::Map(t.ok_or_else(|| err(format!("'{}' isn't a valid map reference", s.name)))?)
        } else if map_type == mt::BPF_MAP_TYPE_PROG_ARRAY as u32 {
            let t = prog_by_name.get(s.name).map(|&v| v as usize);
            let t =
                t.ok_or_else(|| err(format!("'{}' isn't a valid program reference", s.name)))?;
            let p = &obj.programs[t];
            if p.sec_idx != s.shndx || (p.sec_insn_off * 8) as u64 != s.value || p.is_subprog {
                return Err(err(format!("'{}' isn't an entry-point program", s.name)));
            }
            Slot::Program(t)
        } else {
            return Err(err(format!(
                "map '{}' cannot have 'values'",
                obj.maps[midx].name
            )));
        };
        let moff = obj.maps[midx]
            .values_off
            .ok_or_else(|| err("map definition has no trailing 'values' member".into()))?;
        let rel_in_def = rel.offset - start;
        if rel_in_def < moff || (rel_in_def - moff) % 8 != 0 {
            return Err(err("misaligned 'values' relocation".into()));
        }
        let slot_idx = ((rel_in_def - moff) / 8) as usize;
        let slots = &mut obj.maps[midx].init_slots;
        if slot_idx >= slots.len() {
            slots.resize(slot_idx + 1, None);
        }
        slots[slot_idx] = Some(slot);
    }
    Ok(())
}

/// For a global data section: (BTF value type id, libbpf's `map_is_mmapable`). Hidden symbols count
/// as static, as after `btf_fixup_datasec`.
pub(crate) fn datasec_info(
    btf: &BtfView,
    elf: &ElfFile<'_>,
    sec_idx: usize,
    sec_name: &str,
) -> (u32, bool) {
    let Some(id) = btf.find_datasec(sec_name) else {
        return (0, false);
    };
    let Some(r) = btf.rec(id) else {
        return (0, false);
    };
    if r.kind != bv::KIND_DATASEC {
        return (id, false);
    }
    // (A set, as the `&str`-keyed map type used elsewhere: one instantiation; issue 8.)
    let hidden: HashMap<&str, usize> = elf
        .symbols
        .iter()
        .filter(|s| {
            s.shndx == sec_idx && matches!(s.visibility, sym::STV_HIDDEN | sym::STV_INTERNAL)
        })
        .map(|s| (s.name, 0))
        .collect();
    let mmapable = btf.datasec_vars(r).into_iter().any(|(vid, _, _)| {
        btf.rec(vid).is_some_and(|v| {
            v.kind == bv::KIND_VAR
                && btf.var_linkage(v) != Some(bv::VAR_STATIC)
                && !hidden.contains_key(btf.name(vid))
        })
    });
    (id, mmapable)
}

#[cfg(test)]
mod tests {
    /// A `.rel.maps` entry at offset u64::MAX (hostile input) used to overflow `offset + 8`.
    #[test]
    fn slot_relocation_at_the_end_of_the_address_space_is_an_error() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/bpf/mapinmap.bpf.o");
        let mut bytes = std::fs::read(path).unwrap();
        let elf = goblin::elf::Elf::parse(&bytes).unwrap();
        let rel = elf
            .section_headers
            .iter()
            .find(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(".rel.maps"))
            .expect("mapinmap has .rel.maps")
            .sh_offset as usize;
        // r_offset of the first Elf64_Rel.
        bytes[rel..rel + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        let e = crate::Object::open_bytes("hostile", &bytes).unwrap_err();
        assert!(e.to_string().contains("cannot find map"), "{e}");
    }
}
