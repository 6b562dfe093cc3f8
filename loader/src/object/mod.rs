//! `Object`: everything an ELF BPF object holds, parsed once, with no kernel resources.
//!
//! Opening follows libbpf's `bpf_object_open`: ELF checks, section classification, programs,
//! maps (BTF `.maps`, then legacy `maps`, then global data), externs and relocations.

pub mod btf_maps;
pub(crate) mod btf_view;
pub mod data;
pub mod elf;
pub mod externs;
mod file;
pub mod maps;
pub mod programs;
pub mod relocs;
pub mod sec_def;

use std::collections::HashMap;
use std::path::Path;

use goblin::elf::section_header as sh;

use crate::error::OpenError;
use data::GlobalVar;
use elf::{ElfFile, Endianness};
use externs::Extern;
use maps::Map;
use programs::Program;

/// A parsed BPF object file. Holds no kernel resources; load it with [`Loader`](crate::Loader).
///
/// ```no_run
/// let object = bpfload::Object::open_file("prog.bpf.o")?;
/// for p in object.programs() {
///     println!("{} {} {} {} insns", p.name(), p.section(), p.prog_type_name(), p.insn_count());
/// }
/// for m in object.maps() {
///     println!("{} {} max_entries={}", m.name(), m.map_type_name(), m.def().max_entries);
/// }
/// # Ok::<(), bpfload::OpenError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Object {
    pub(crate) name: String,
    pub(crate) endian: Endianness,
    pub(crate) license: String,
    pub(crate) kern_version: Option<u32>,
    /// All functions, main programs and `.text` subprograms, sorted by (section, offset).
    pub(crate) programs: Vec<Program>,
    pub(crate) maps: Vec<Map>,
    pub(crate) globals: Vec<GlobalVar>,
    pub(crate) externs: Vec<Extern>,
    pub(crate) btf: Option<std::sync::Arc<[u8]>>,
    pub(crate) btf_ext: Option<std::sync::Arc<[u8]>>,
    pub(crate) text_shndx: Option<usize>,
    /// Section names by index (empty for ignored sections), for `.BTF.ext` lookups and messages.
    pub(crate) section_names: Vec<String>,
    pub(crate) legacy_maps_shndx: Option<usize>,
    pub(crate) btf_maps_shndx: Option<usize>,
    pub(crate) data_shndx: Vec<usize>,
    pub(crate) exec_shndx: Vec<usize>,
    pub(crate) has_static_programs: bool,
    /// Features found in the object that the loader cannot load yet (e.g. `.struct_ops`, arena data).
    pub(crate) unsupported: Vec<String>,
    /// Section sizes by name (DATASEC fix-up).
    pub(crate) sec_sizes: HashMap<String, u64>,
    /// GLOBAL/WEAK `STT_OBJECT` symbols by name: index in `var_sym_vals` (DATASEC fix-up). The
    /// table type of `sec_sizes`, so no hash table code of its own (issue 8: binary size).
    pub(crate) var_syms: HashMap<String, u64>,
    /// (value, hidden) of the symbols in `var_syms`.
    pub(crate) var_sym_vals: Vec<(u64, bool)>,
    /// struct_ops maps' local definitions (see `crate::struct_ops`).
    pub(crate) struct_ops: Vec<crate::struct_ops::StructOps>,
    /// `.addr_space.1` and the arena map (see `crate::arena`).
    pub(crate) arena: crate::arena::ObjArena,
    /// `LIBBPF_BPF_TOKEN_PATH` as it was when the object was opened: libbpf reads the variable
    /// in `bpf_object_open`, and its load uses that value even if the environment changed.
    pub(crate) token_path_env: Option<std::ffi::OsString>,
}

/// libbpf's object name: the file's base name up to the first '.', at most 15 bytes.
fn object_name(raw: &str) -> String {
    let base = raw.rsplit('/').next().unwrap_or(raw);
    let mut end = base.len().min(15);
    while !base.is_char_boundary(end) {
        end -= 1;
    }
    let base = &base[..end];
    base.split('.').next().unwrap_or("").to_string()
}

impl Object {
    /// Opens and parses an object file. DWARF and the relocations of DWARF and BTF sections, which
    /// the loader never uses (libbpf skips them too), are not read from disk; the result is the
    /// one [`Object::open_bytes`] gives for the whole file.
    pub fn open_file(path: impl AsRef<Path>) -> Result<Object, OpenError> {
        let path = path.as_ref();
        let data = file::read_object(path).map_err(|source| OpenError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::open_bytes(&path.to_string_lossy(), &data)
    }

    /// Parses an object from memory. `name` plays the role of the file name (the object name is its
    /// base name up to the first '.').
    pub fn open_bytes(name: &str, data: &[u8]) -> Result<Object, OpenError> {
        let elf = ElfFile::parse(data)?;
        let mut obj = Object {
            name: object_name(name),
            endian: elf.endian,
            license: String::new(),
            kern_version: None,
            programs: Vec::new(),
            maps: Vec::new(),
            globals: Vec::new(),
            externs: Vec::new(),
            btf: None,
            btf_ext: None,
            text_shndx: None,
            section_names: elf.sections.iter().map(|s| s.name.to_string()).collect(),
            legacy_maps_shndx: None,
            btf_maps_shndx: None,
            data_shndx: Vec::new(),
            exec_shndx: Vec::new(),
            has_static_programs: false,
            unsupported: Vec::new(),
            sec_sizes: HashMap::new(),
            var_syms: HashMap::new(),
            var_sym_vals: Vec::new(),
            struct_ops: Vec::new(),
            arena: Default::default(),
            token_path_env: std::env::var_os(crate::token::TOKEN_PATH_ENV),
        };
        for s in &elf.sections {
            obj.sec_sizes.entry(s.name.to_string()).or_insert(s.size);
        }
        for s in &elf.symbols {
            use goblin::elf::sym;
            if s.typ == sym::STT_OBJECT && matches!(s.bind, sym::STB_GLOBAL | sym::STB_WEAK) {
                let hidden = matches!(s.visibility, sym::STV_HIDDEN | sym::STV_INTERNAL);
                // The first symbol of a name wins.
                let next = obj.var_sym_vals.len() as u64;
                if *obj.var_syms.entry(s.name.to_string()).or_insert(next) == next {
                    obj.var_sym_vals.push((s.value, hidden));
                }
            }
        }
        obj.collect_sections(&elf)?;
        obj.externs = externs::collect(&elf);
        // libbpf also requires BTF for externs; without it they are kept and refused at load.
        let needs_btf = obj.btf_maps_shndx.is_some();
        // Parsed from the input bytes (not from `obj`), so `obj` stays free to fill in.
        let raw_btf = obj
            .btf
            .as_ref()
            .and_then(|_| elf.sections.iter().find(|s| s.name == ".BTF"))
            .map(|s| s.data);
        let btf = match raw_btf {
            Some(raw) => match btf_view::BtfView::parse(raw) {
                Ok(b) => Some(b),
                Err(e) if needs_btf => {
                    return Err(OpenError::Btf(format!(
                        "BTF is required, but is corrupted: {e}"
                    )))
                }
                Err(e) => {
                    log::info!("object '{}': ignoring corrupted BTF: {e}", obj.name);
                    None
                }
            },
            None if needs_btf => {
                return Err(OpenError::Btf(
                    "BTF is required for '.maps', but is missing".into(),
                ))
            }
            None => None,
        };
        // bpf_object__init_btf: a `.BTF.ext` that does not parse is dropped, unless the object
        // needs its BTF (`libbpf_needs_btf`: `.maps`, struct_ops or externs), which libbpf then
        // refuses as "BTF is required, but is missing or corrupted" (found by review: it was
        // ignored at load whatever the object held).
        if let (Some(ext), Some(_)) = (obj.btf_ext.clone(), &btf) {
            if let Err(e) = bpfload_btf::BtfExt::parse(&ext) {
                let needs = needs_btf
                    || !obj.externs.is_empty()
                    || elf
                        .sections
                        .iter()
                        .any(|s| crate::struct_ops::is_struct_ops_section(s.name));
                if needs {
                    return Err(OpenError::Btf(format!(
                        "BTF is required, but is corrupted: .BTF.ext: {e}"
                    )));
                }
                log::warn!("object '{}': ignoring malformed .BTF.ext: {e}", obj.name);
                obj.btf_ext = None;
            }
        }
        // Function symbols grouped by section once, so discovery is linear in symbols + sections.
        let mut funcs_by_sec: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, s) in elf.symbols.iter().enumerate() {
            if s.is_func() {
                funcs_by_sec.entry(s.shndx).or_default().push(i);
            }
        }
        for &i in &obj.exec_shndx {
            let syms = funcs_by_sec.get(&i).map(Vec::as_slice).unwrap_or(&[]);
            programs::add_programs(&elf, i, syms, Some(i) == obj.text_shndx, &mut obj.programs)?;
        }
        crate::sort::sort_by_key_stable(&mut obj.programs, |p| {
            (p.sec_idx as u64, p.sec_insn_off as u64)
        });
        obj.has_static_programs = obj.programs.iter().any(|p| p.is_static);
        if let Some(idx) = obj.btf_maps_shndx {
            let btf = btf
                .as_ref()
                .ok_or_else(|| OpenError::Btf("'.maps' needs BTF".into()))?;
            btf_maps::parse(&mut obj, &elf, btf, idx)?;
        }
        if let Some(idx) = obj.legacy_maps_shndx {
            maps::parse_legacy(&elf, idx, &mut obj.maps)?;
        }
        crate::arena::init(&mut obj, &elf)?;
        obj.init_global_data(&elf, btf.as_ref());
        // bpf_object__init_kconfig_map: after global data, before struct_ops maps, as in libbpf.
        if let Some(m) = crate::externs::wire::kconfig_map_at_open(&obj) {
            obj.maps.push(m);
        }
        obj.struct_ops = crate::struct_ops::init_maps(&mut obj, &elf).map_err(|e| match e {
            crate::struct_ops::StructOpsError::Object { map, msg } => OpenError::Map { map, msg },
            other => OpenError::Btf(other.to_string()),
        })?;
        relocs::collect(&mut obj, &elf)?;
        if let Some(idx) = obj.btf_maps_shndx {
            btf_maps::collect_slot_relocs(&mut obj, &elf, idx)?;
        }
        Ok(obj)
    }

    /// Pass 2 of `bpf_object__elf_collect`: classify every section.
    fn collect_sections(&mut self, elf: &ElfFile<'_>) -> Result<(), OpenError> {
        for (idx, s) in elf.sections.iter().enumerate().skip(1) {
            if elf::ignore_section(s) {
                continue;
            }
            let sec_err = |msg: &str| OpenError::Section {
                section: s.name.to_string(),
                msg: msg.to_string(),
            };
            match s.name {
                "license" => {
                    let end = s
                        .data
                        .iter()
                        .position(|&b| b == 0)
                        .unwrap_or(s.data.len())
                        .min(63);
                    self.license = String::from_utf8_lossy(&s.data[..end]).into_owned();
                }
                "version" => {
                    let b: [u8; 4] = s
                        .data
                        .try_into()
                        .map_err(|_| sec_err("invalid kver section (must be 4 bytes)"))?;
                    self.kern_version = Some(self.endian.u32(b));
                }
                "maps" => self.legacy_maps_shndx = Some(idx),
                ".maps" => self.btf_maps_shndx = Some(idx),
                ".BTF" | ".BTF.ext" => {
                    if s.sh_type != sh::SHT_PROGBITS {
                        return Err(sec_err("must be PROGBITS"));
                    }
                    if s.name == ".BTF" {
                        self.btf = Some(s.data.into());
                    } else {
                        self.btf_ext = Some(s.data.into());
                    }
                }
                _ if s.sh_type == sh::SHT_SYMTAB || s.sh_type == sh::SHT_REL => {}
                _ if s.sh_type == sh::SHT_PROGBITS && !s.data.is_empty() => {
                    if s.is_exec() {
                        if s.name == ".text" {
                            self.text_shndx = Some(idx);
                        }
                        self.exec_shndx.push(idx);
                    } else if data::data_kind(s.name, false).is_some() {
                        self.data_shndx.push(idx);
                    } else if is_struct_ops(s.name) {
                        // Handled by crate::struct_ops after programs and global data.
                    } else if s.name == crate::arena::ARENA_SEC {
                        self.arena.shndx = Some(idx);
                    } else {
                        log::debug!("skipping unrecognized data section '{}'", s.name);
                    }
                }
                _ if s.sh_type == sh::SHT_NOBITS && data::data_kind(s.name, true).is_some() => {
                    self.data_shndx.push(idx);
                }
                _ => log::debug!("skipping section '{}' ({} bytes)", s.name, s.size),
            }
        }
        Ok(())
    }

    /// `bpf_object__init_global_data_maps`, plus the variable table for [`Loader::set_global`](crate::Loader::set_global).
    fn init_global_data(&mut self, elf: &ElfFile<'_>, btf: Option<&btf_maps::ObjBtf>) {
        let mut by_sec = HashMap::new();
        for &idx in &self.data_shndx {
            let s = &elf.sections[idx];
            let nobits = s.sh_type == sh::SHT_NOBITS;
            let Some(kind) = data::data_kind(s.name, nobits) else {
                continue;
            };
            if s.size == 0 || s.size > u64::from(u32::MAX) {
                continue;
            }
            let (value_type_id, mmapable) = btf
                .map(|b| btf_maps::datasec_info(b, elf, idx, s.name))
                .unwrap_or((0, false));
            by_sec.insert(idx, self.maps.len());
            self.maps.push(data::internal_map(
                &self.name,
                kind,
                s.name,
                idx,
                s.size as u32,
                (!nobits).then_some(s.data),
                value_type_id,
                mmapable,
            ));
        }
        for sym in &elf.symbols {
            let Some(&map) = by_sec.get(&sym.shndx) else {
                continue;
            };
            if sym.typ != goblin::elf::sym::STT_OBJECT || sym.size == 0 || sym.name.is_empty() {
                continue;
            }
            let size = self.maps[map].def.value_size as u64;
            if sym.value.checked_add(sym.size).is_none_or(|end| end > size) {
                continue;
            }
            self.globals.push(GlobalVar {
                name: sym.name.to_string(),
                map,
                offset: sym.value as usize,
                size: sym.size as usize,
            });
        }
    }

    /// Section index by name, for `.BTF.ext` records (which name their section). With several
    /// sections of one name, the first: libbpf's `elf_sec_by_name` returns the first match.
    pub(crate) fn sections_by_name(&self) -> HashMap<&str, usize> {
        let mut by_name = HashMap::new();
        for (i, n) in self.section_names.iter().enumerate() {
            by_name.entry(n.as_str()).or_insert(i);
        }
        by_name
    }

    pub(crate) fn is_maps_section(&self, shndx: usize) -> bool {
        Some(shndx) == self.btf_maps_shndx || Some(shndx) == self.legacy_maps_shndx
    }

    pub(crate) fn is_data_section(&self, shndx: usize) -> bool {
        self.data_shndx.binary_search(&shndx).is_ok()
    }

    pub(crate) fn allows_same_section_call(
        &self,
        target_shndx: usize,
        _caller_shndx: usize,
    ) -> bool {
        self.has_static_programs && self.exec_shndx.binary_search(&target_shndx).is_ok()
    }

    /// The object name (file base name up to the first '.').
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The ELF byte order. Only native-endian objects can be loaded.
    pub fn endianness(&self) -> Endianness {
        self.endian
    }
    /// The `license` section ("" if absent).
    pub fn license(&self) -> &str {
        &self.license
    }
    /// The `version` section, if present.
    pub fn kern_version(&self) -> Option<u32> {
        self.kern_version
    }
    /// Main programs (not `.text` subprograms), sorted by section and offset, as libbpf iterates them.
    pub fn programs(&self) -> impl Iterator<Item = &Program> {
        self.programs.iter().filter(|p| !p.is_subprog)
    }
    /// `.text` subprograms.
    pub fn subprograms(&self) -> impl Iterator<Item = &Program> {
        self.programs.iter().filter(|p| p.is_subprog)
    }
    /// A main program by name.
    pub fn program(&self, name: &str) -> Option<&Program> {
        self.programs().find(|p| p.name == name)
    }
    /// Maps in libbpf's order: BTF `.maps`, legacy `maps`, then global data sections.
    pub fn maps(&self) -> &[Map] {
        &self.maps
    }
    /// A map by name (kernel name or, for global data, the section name).
    pub fn map(&self, name: &str) -> Option<&Map> {
        self.maps
            .iter()
            .find(|m| m.name == name || m.real_name == name)
    }
    /// Global variables that can be set with [`Loader::set_global`](crate::Loader::set_global).
    pub fn globals(&self) -> &[GlobalVar] {
        &self.globals
    }
    /// Extern symbols (kconfig, ksyms, kfuncs).
    pub fn externs(&self) -> &[Extern] {
        &self.externs
    }
    /// Raw `.BTF` section.
    pub fn btf(&self) -> Option<&[u8]> {
        self.btf.as_deref()
    }
    /// Raw `.BTF.ext` section.
    pub fn btf_ext(&self) -> Option<&[u8]> {
        self.btf_ext.as_deref()
    }
    /// Parts of the object this loader cannot load yet (each fails the load with its name).
    pub fn unsupported_features(&self) -> &[String] {
        &self.unsupported
    }
}

fn is_struct_ops(name: &str) -> bool {
    matches!(
        name,
        ".struct_ops" | ".struct_ops.link" | "?.struct_ops" | "?.struct_ops.link"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names() {
        assert_eq!(object_name("/tmp/prog.bpf.o"), "prog");
        assert_eq!(
            object_name("a_really_long_object_name.bpf.o"),
            "a_really_long_o"
        );
        assert_eq!(object_name("noext"), "noext");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Object::open_bytes("x", b"").is_err());
        assert!(Object::open_bytes("x", b"\x7fELF").is_err());
        let mut v = vec![0u8; 64];
        v[..4].copy_from_slice(b"\x7fELF");
        v[4] = 2;
        v[5] = 1;
        assert!(Object::open_bytes("x", &v).is_err());
    }

    /// A `.BTF.ext` that does not parse (here: bad magic) refuses the open of an object that
    /// needs its BTF (`.maps`), as libbpf's "BTF is required, but is missing or corrupted", and
    /// is dropped from any other object (found by review: it was only ignored at load).
    #[test]
    fn a_corrupt_btf_ext_refuses_objects_that_need_btf() {
        use crate::tests::elf_edit::{section_header, u64_at};
        let corrupt = |name: &str| {
            let mut b = std::fs::read(crate::tests::fixtures::fixture(name)).unwrap();
            let at = u64_at(&b, section_header(&b, ".BTF.ext") + 0x18) as usize;
            b[at] ^= 0xff; // the magic
            b
        };
        let e = Object::open_bytes("maps.bpf.o", &corrupt("maps.bpf.o")).unwrap_err();
        assert!(e.to_string().contains("BTF is required"), "{e}");
        let o = Object::open_bytes("core_task.bpf.o", &corrupt("core_task.bpf.o")).unwrap();
        assert!(o.btf_ext.is_none());
        assert!(
            Object::open_file(crate::tests::fixtures::fixture("core_task.bpf.o"))
                .unwrap()
                .btf_ext
                .is_some()
        );
    }
}
#[cfg(test)]
pub(crate) mod corpus_tests;
