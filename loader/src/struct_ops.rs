//! struct_ops maps (`.struct_ops`, `.struct_ops.link` and their `?` forms), as libbpf's
//! `init_struct_ops_maps` + `bpf_object__collect_st_ops_relos` (open),
//! `bpf_map__init_kern_struct_ops` + `bpf_object_adjust_struct_ops_autoload` (prepare) and
//! `bpf_map_prepare_vdata` (after the programs load) handle them:
//! - open: one STRUCT_OPS map per variable of the section; its function-pointer members name
//!   programs through relocations;
//! - prepare: the kernel type `struct <name>` and its value type `struct bpf_struct_ops_<name>`
//!   are found in vmlinux, then module BTF; the kernel value image is built member by member
//!   (by name); each member program gets `attach_btf_id` = the kernel type and expected attach
//!   type = the kernel member index; a program is autoloaded iff an autocreated map uses it;
//! - after load: program fds are written into the value image ([`StructOps::value_with_fds`]),
//!   which registering the map (`BPF_MAP_UPDATE_ELEM`, at attach time, as in libbpf) needs.

use std::os::fd::RawFd;

use bpfload_btf::{Btf, Kind, Type};

use crate::externs::{BtfSource, ExternError, KernelBtfs};
use crate::object::elf::ElfFile;
use crate::object::maps::{Map, MapDef, MapKind, Pinning};
use crate::object::Object;

/// `BPF_F_LINK`: the map is attached through a BPF link.
pub const BPF_F_LINK: u32 = 1 << 13;
/// Prefix of the kernel's value type.
pub const VALUE_PREFIX: &str = "bpf_struct_ops_";

/// Errors of struct_ops handling; each names the map.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StructOpsError {
    /// Malformed object (at open).
    #[error("struct_ops map '{map}': {msg}")]
    Object {
        /// Map (or section) name.
        map: String,
        /// What is wrong.
        msg: String,
    },
    /// The kernel has no such struct_ops type (libbpf: ESRCH).
    #[error("struct_ops init_kern {map}: {msg}")]
    NotFound {
        /// Map name.
        map: String,
        /// What is missing.
        msg: String,
    },
    /// The kernel's type layout does not fit the object's (at prepare).
    #[error("struct_ops init_kern {map}: {msg}")]
    Kernel {
        /// Map name.
        map: String,
        /// What is wrong.
        msg: String,
    },
    /// Kernel BTF could not be read.
    #[error("struct_ops map '{map}': {source}")]
    KernelBtf {
        /// Map name.
        map: String,
        /// The error.
        #[source]
        source: ExternError,
    },
}

impl StructOpsError {
    /// The errno libbpf reports: ESRCH for a type the kernel lacks, EOPNOTSUPP for layouts it
    /// cannot map, EINVAL otherwise.
    pub fn errno(&self) -> bpfload_syscall::Errno {
        use bpfload_syscall::Errno;
        match self {
            StructOpsError::NotFound { .. } => Errno::ESRCH,
            StructOpsError::Kernel { .. } => Errno::EOPNOTSUPP,
            _ => Errno::EINVAL,
        }
    }
}

/// The kernel side of a struct_ops map, known after prepare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernStructOps {
    /// `struct <name>` in kernel BTF (programs' `attach_btf_id`).
    pub type_id: u32,
    /// `struct bpf_struct_ops_<name>` (the map's `btf_vmlinux_value_type_id`).
    pub vtype_id: u32,
    /// Where both were found.
    pub src: BtfSource,
    /// The kernel value image (data members copied, program slots still zero).
    pub vdata: Vec<u8>,
    /// Per local member: byte offset of its program fd in `vdata`.
    pub func_off: Vec<Option<usize>>,
}

/// One struct_ops map's local definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructOps {
    /// Index of the map in the object's maps.
    pub map: usize,
    /// The section (`.struct_ops`, `.struct_ops.link`, ...).
    pub section: String,
    /// Local struct type id in the object's BTF.
    pub type_id: u32,
    /// Local struct name (essential name used for the kernel lookup).
    pub type_name: String,
    /// The variable's bytes.
    pub data: Vec<u8>,
    /// Per local member: the program (index into the object's functions) it points to.
    pub progs: Vec<Option<usize>>,
    /// Kernel side, after prepare.
    pub kern: Option<KernStructOps>,
}

impl StructOps {
    /// The value to register: the kernel image with each member's program fd written in
    /// (`bpf_map_prepare_vdata`). `prog_fd(i)` is the fd of function `i`, if loaded.
    ///
    /// A member whose program has no fd (it failed to load under `keep_going`) gets what libbpf
    /// writes, `bpf_program__fd()` = `-ENOENT` sign-extended into the 8-byte slot, so registering
    /// the value fails with `EBADF`. Not 0: the kernel skips a slot holding fd 0 as "no program",
    /// which would register the map without that member (or refuse it for another reason).
    pub fn value_with_fds(&self, prog_fd: impl Fn(usize) -> Option<RawFd>) -> Option<Vec<u8>> {
        let kern = self.kern.as_ref()?;
        let mut v = kern.vdata.clone();
        for (i, off) in kern.func_off.iter().enumerate() {
            let (Some(off), Some(Some(p))) = (off, self.progs.get(i)) else {
                continue;
            };
            // libbpf: `*(unsigned long *)kern_data = prog_fd;` with an `int` prog_fd.
            let fd = prog_fd(*p).unwrap_or(-libc::ENOENT) as i64 as u64;
            if let Some(dst) = v.get_mut(*off..off + 8) {
                dst.copy_from_slice(&fd.to_ne_bytes());
            }
        }
        Some(v)
    }
}

/// Whether a section holds struct_ops variables.
pub fn is_struct_ops_section(name: &str) -> bool {
    matches!(
        name,
        ".struct_ops" | ".struct_ops.link" | "?.struct_ops" | "?.struct_ops.link"
    )
}

fn obj_err(map: &str, msg: impl Into<String>) -> StructOpsError {
    StructOpsError::Object {
        map: map.into(),
        msg: msg.into(),
    }
}

/// Open: creates the STRUCT_OPS maps of every struct_ops section and records which program each
/// function-pointer member points to.
pub(crate) fn init_maps(
    obj: &mut Object,
    elf: &ElfFile<'_>,
) -> Result<Vec<StructOps>, StructOpsError> {
    let mut out = Vec::new();
    let secs: Vec<usize> = (0..elf.sections.len())
        .filter(|&i| is_struct_ops_section(elf.sections[i].name))
        .collect();
    if secs.is_empty() {
        return Ok(out);
    }
    let raw = obj
        .btf
        .clone()
        .ok_or_else(|| obj_err(elf.sections[secs[0]].name, "struct_ops needs BTF"))?;
    let btf =
        Btf::parse(&raw).map_err(|e| obj_err(elf.sections[secs[0]].name, format!("BTF: {e}")))?;
    for shndx in secs {
        let sec = &elf.sections[shndx];
        let Some(ds_id) = btf.find_by_name_kind(sec.name, Kind::DataSec) else {
            return Err(obj_err(
                sec.name,
                format!("DATASEC '{}' not found", sec.name),
            ));
        };
        let Ok(Type::DataSec(ds)) = btf.type_by_id(ds_id) else {
            continue;
        };
        for vsi in ds.vars() {
            let var_name = btf.name(vsi.type_id).unwrap_or("").to_string();
            let (target, linkage) = match btf.type_by_id(vsi.type_id) {
                Ok(Type::Var { target, linkage }) => (target, linkage),
                _ => {
                    return Err(obj_err(
                        sec.name,
                        format!("entry [{}] is not a VAR", vsi.type_id),
                    ))
                }
            };
            let type_id = btf.skip_mods_and_typedefs(target).unwrap_or(target);
            let Ok(Type::Struct(st)) = btf.type_by_id(type_id) else {
                return Err(obj_err(
                    &var_name,
                    format!("DATASEC {}: var {var_name} is not a struct", sec.name),
                ));
            };
            // The variable's offset after libbpf's DATASEC fix-up, which runs before libbpf
            // reads struct_ops maps: a global variable's symbol value (clang leaves every
            // `vsi.offset` at 0, so with two variables in one section the raw offset would give
            // both the first one's image and relocations). Static variables keep theirs.
            let off = match linkage {
                bpfload_btf::VarLinkage::Static | bpfload_btf::VarLinkage::GlobalExtern => {
                    vsi.offset as usize
                }
                _ => obj
                    .var_syms
                    .get(var_name.as_str())
                    .and_then(|&i| obj.var_sym_vals.get(i as usize))
                    .map_or(vsi.offset as usize, |&(value, _)| value as usize),
            };
            let data = sec
                .data
                .get(off..off.saturating_add(st.size as usize))
                .ok_or_else(|| obj_err(&var_name, "variable lies outside its section"))?
                .to_vec();
            let map_idx = obj.maps.len();
            obj.maps.push(Map {
                name: var_name.clone(),
                real_name: var_name.clone(),
                kind: MapKind::StructOps,
                sec_idx: shndx,
                sec_offset: off as u64,
                def: MapDef {
                    map_type: aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_STRUCT_OPS as u32,
                    key_size: 4,
                    value_size: st.size,
                    max_entries: 1,
                    map_flags: if sec.name.ends_with(".link") {
                        BPF_F_LINK
                    } else {
                        0
                    },
                    numa_node: 0,
                    map_extra: 0,
                    pinning: Pinning::None,
                },
                btf_key_type_id: 0,
                btf_value_type_id: type_id,
                inner: None,
                init_slots: Vec::new(),
                values_off: None,
                image: None,
                autocreate: !sec.name.starts_with('?'),
                btf_vmlinux_value_type_id: 0,
            });
            out.push(StructOps {
                map: map_idx,
                section: sec.name.to_string(),
                type_id,
                type_name: btf.name(type_id).unwrap_or("").to_string(),
                data,
                progs: vec![None; st.len()],
                kern: None,
            });
        }
        collect_relos(obj, elf, &btf, shndx, &mut out)?;
    }
    Ok(out)
}

/// `bpf_object__collect_st_ops_relos`: each relocation in the section points a member at a program.
fn collect_relos(
    obj: &Object,
    elf: &ElfFile<'_>,
    btf: &Btf<'_>,
    shndx: usize,
    out: &mut [StructOps],
) -> Result<(), StructOpsError> {
    let Some(rs) = elf.rel_sections.iter().find(|r| r.target == shndx) else {
        return Ok(());
    };
    for rel in rs.rels() {
        let sym = elf.symbols.get(rel.sym).ok_or_else(|| {
            obj_err(
                elf.sections[shndx].name,
                format!("relo symbol #{} out of range", rel.sym),
            )
        })?;
        let Some(st) = out.iter_mut().find(|s| {
            let m = &obj.maps[s.map];
            m.sec_idx == shndx
                && rel.offset >= m.sec_offset
                && rel.offset < m.sec_offset + u64::from(m.def.value_size)
        }) else {
            return Err(obj_err(
                elf.sections[shndx].name,
                format!(
                    "cannot find struct_ops map for relo at offset {}",
                    rel.offset
                ),
            ));
        };
        let map_name = obj.maps[st.map].name.clone();
        let moff_bits = ((rel.offset - obj.maps[st.map].sec_offset) * 8) as u32;
        let Ok(Type::Struct(c)) = btf.type_by_id(st.type_id) else {
            continue;
        };
        let Some((midx, member)) = c
            .members()
            .enumerate()
            .find(|(_, m)| m.bit_offset == moff_bits)
        else {
            return Err(obj_err(
                &map_name,
                format!("cannot find member at moff {}", moff_bits / 8),
            ));
        };
        let mname = btf.str_at(member.name_off).unwrap_or("");
        let mt = btf
            .skip_mods_and_typedefs(member.type_id)
            .unwrap_or(member.type_id);
        let is_func_ptr = matches!(btf.type_by_id(mt), Ok(Type::Ptr { target }) if matches!(btf.type_by_id(btf.skip_mods_and_typedefs(target).unwrap_or(target)), Ok(Type::FuncProto(_))));
        if !is_func_ptr {
            return Err(obj_err(
                &map_name,
                format!("member {mname} is not a func ptr"),
            ));
        }
        let prog = obj
            .programs
            .iter()
            .position(|p| {
                p.sec_idx == sym.shndx
                    && p.sec_insn_off * 8 == sym.value as usize
                    && p.name == sym.name
            })
            .ok_or_else(|| {
                obj_err(
                    &map_name,
                    format!("cannot find program '{}' for member {mname}", sym.name),
                )
            })?;
        let p = &obj.programs[prog];
        if p.prog_type() != Some(aya_obj::generated::bpf_prog_type::BPF_PROG_TYPE_STRUCT_OPS as u32)
        {
            return Err(obj_err(
                &map_name,
                format!("prog '{}' is not a struct_ops BPF program", p.name),
            ));
        }
        st.progs[midx] = Some(prog);
    }
    Ok(())
}

/// What prepare decided for one program: its attach target in the kernel struct_ops type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgAttach {
    /// Kernel struct type id.
    pub attach_btf_id: u32,
    /// Kernel member index.
    pub member_idx: u32,
    /// Where the type lives.
    pub src: BtfSource,
}

/// `bpf_map__init_kern_struct_ops` for every map to be created, then the autoload adjustment.
/// Returns each struct_ops program's attach target (indexed by function).
// Out of line: smaller code where it was inlined (issue 8: binary size).
#[inline(never)]
pub(crate) fn init_kern(
    obj: &mut Object,
    st_ops: &mut [StructOps],
    kernel: &KernelBtfs,
) -> Result<Vec<Option<ProgAttach>>, StructOpsError> {
    let mut attach: Vec<Option<ProgAttach>> = vec![None; obj.programs.len()];
    let raw = obj.btf.clone().unwrap_or_default();
    let btf = Btf::parse(&raw).map_err(|e| obj_err("struct_ops", format!("BTF: {e}")))?;
    for st in st_ops.iter_mut() {
        // Only autocreated maps get a kernel side, as in libbpf
        // (bpf_object__init_kern_struct_ops_maps).
        if !obj.maps[st.map].autocreate {
            continue;
        }
        let map_name = obj.maps[st.map].name.clone();
        let kerr = |msg: String| StructOpsError::Kernel {
            map: map_name.clone(),
            msg,
        };
        let tname = String::from_utf8_lossy(bpfload_btf::essential_name(st.type_name.as_bytes()))
            .into_owned();
        let found =
            kernel
                .find(&tname, Kind::Struct)
                .map_err(|source| StructOpsError::KernelBtf {
                    map: map_name.clone(),
                    source,
                })?;
        let Some((src, kern_type_id)) = found else {
            return Err(StructOpsError::NotFound {
                map: map_name.clone(),
                msg: format!("struct {tname} is not found in kernel BTF (ESRCH)"),
            });
        };
        if let BtfSource::Module(_) = src {
            // The map would need BPF_F_VTYPE_BTF_OBJ_FD with the module's BTF fd.
            return Err(kerr(format!("struct {tname} is defined by kernel module '{}'; struct_ops types of modules are not supported yet", kernel.source_name(src))));
        }
        let kbtf = kernel.btf(src);
        let vname = format!("{VALUE_PREFIX}{tname}");
        let kern_vtype_id = match src {
            BtfSource::Vmlinux => kbtf.find_by_name_kind(&vname, Kind::Struct),
            BtfSource::Module(_) => {
                crate::externs::kernel_btf::find_own(&kbtf, &vname, Kind::Struct)
            }
        }
        .ok_or_else(|| StructOpsError::NotFound {
            map: map_name.clone(),
            msg: format!("struct {vname} is not found in kernel BTF (ESRCH)"),
        })?;
        let Ok(Type::Struct(kvt)) = kbtf.type_by_id(kern_vtype_id) else {
            return Err(kerr(format!("{vname} is not a struct")));
        };
        let data_member = kvt
            .members()
            .find(|m| m.type_id == kern_type_id)
            .ok_or_else(|| {
                kerr(format!(
                    "struct {tname} data is not found in struct {vname}"
                ))
            })?;
        let data_off = (data_member.bit_offset / 8) as usize;
        let Ok(Type::Struct(kt)) = kbtf.type_by_id(kern_type_id) else {
            return Err(kerr(format!("{tname} is not a struct")));
        };
        let Ok(Type::Struct(lt)) = btf.type_by_id(st.type_id) else {
            return Err(kerr(format!("local {} is not a struct", st.type_name)));
        };
        let mut vdata = vec![0u8; kvt.size as usize];
        let mut func_off = vec![None; lt.len()];
        for (i, member) in lt.members().enumerate() {
            let mname = btf.str_at(member.name_off).unwrap_or("").to_string();
            let moff = (member.bit_offset / 8) as usize;
            let msize =
                btf.resolve_size(member.type_id)
                    .map_err(|e| kerr(format!("member {mname}: {e}")))? as usize;
            let mdata = st
                .data
                .get(moff..moff + msize)
                .ok_or_else(|| kerr(format!("member {mname} outside the data")))?;
            let kmember = kt
                .members()
                .enumerate()
                .find(|(_, m)| kbtf.str_at(m.name_off).ok() == Some(mname.as_str()));
            let Some((kidx, kmember)) = kmember else {
                if mdata.iter().any(|&b| b != 0) {
                    return Err(kerr(format!("Cannot find member {mname} in kernel BTF")));
                }
                if let Some(p) = st.progs[i].take() {
                    obj.programs[p].autoload = false;
                }
                log::info!("struct_ops {map_name}: member {mname} not found in kernel, skipping it as it's set to zero");
                continue;
            };
            if member.bitfield_size != 0 || kmember.bitfield_size != 0 {
                return Err(kerr(format!("bitfield {mname} is not supported")));
            }
            let kmoff = (kmember.bit_offset / 8) as usize;
            let mt = btf
                .skip_mods_and_typedefs(member.type_id)
                .unwrap_or(member.type_id);
            let kmt = kbtf
                .skip_mods_and_typedefs(kmember.type_id)
                .unwrap_or(kmember.type_id);
            let (lk, kk) = (btf.kind(mt).ok(), kbtf.kind(kmt).ok());
            if lk != kk {
                return Err(kerr(format!(
                    "Unmatched member type {mname} {lk:?} != {kk:?}(kernel)"
                )));
            }
            if lk == Some(Kind::Ptr) {
                let Some(p) = st.progs[i] else { continue };
                let kproto = kbtf
                    .type_by_id(kmt)
                    .ok()
                    .and_then(|t| t.target())
                    .unwrap_or(0);
                let kproto = kbtf.skip_mods_and_typedefs(kproto).unwrap_or(kproto);
                if kbtf.kind(kproto).ok() != Some(Kind::FuncProto) {
                    return Err(kerr(format!("kernel member {mname} is not a func ptr")));
                }
                let want = ProgAttach {
                    attach_btf_id: kern_type_id,
                    member_idx: kidx as u32,
                    src,
                };
                match attach[p] {
                    None => attach[p] = Some(want),
                    Some(prev)
                        if prev.attach_btf_id != want.attach_btf_id
                            || prev.member_idx != want.member_idx =>
                    {
                        return Err(kerr(format!(
                            "func ptr {mname}: invalid reuse of prog {} in sec {}: attach_btf_id {} / member {} != {} / {}",
                            obj.programs[p].name, st.section, prev.attach_btf_id, prev.member_idx, want.attach_btf_id, want.member_idx
                        )));
                    }
                    Some(_) => {}
                }
                func_off[i] = Some(data_off + kmoff);
                continue;
            }
            let kmsize =
                kbtf.resolve_size(kmt)
                    .map_err(|e| kerr(format!("member {mname}: {e}")))? as usize;
            if kmsize != msize {
                return Err(kerr(format!(
                    "Error in size of member {mname}: {msize} != {kmsize}(kernel)"
                )));
            }
            let dst = vdata
                .get_mut(data_off + kmoff..data_off + kmoff + msize)
                .ok_or_else(|| kerr(format!("member {mname} outside the kernel value")))?;
            dst.copy_from_slice(mdata);
        }
        let m = &mut obj.maps[st.map];
        m.def.value_size = kvt.size;
        m.btf_vmlinux_value_type_id = kern_vtype_id;
        st.kern = Some(KernStructOps {
            type_id: kern_type_id,
            vtype_id: kern_vtype_id,
            src,
            vdata,
            func_off,
        });
    }
    // bpf_object_adjust_struct_ops_autoload, after the slots above dropped members the kernel
    // lacks. It overrides whatever autoload the user set (`Loader::set_autoload`,
    // `Loader::only_programs`): libbpf 1.7 has no exemption for programs the user touched.
    for p in 0..obj.programs.len() {
        if let Some(load) = adjusted_autoload(obj, st_ops, p) {
            obj.programs[p].autoload = load;
        }
    }
    Ok(attach)
}

/// libbpf 1.7's `bpf_object_adjust_struct_ops_autoload` for function `p`: `Some(load)` for a
/// struct_ops program referenced by a slot of some struct_ops map (created or not), `load` being
/// whether any map referencing it is autocreated; `None` (autoload left as it is) for any other
/// program, including a struct_ops program no map references (whose load then fails, as in
/// libbpf, for lack of an attach target).
pub(crate) fn adjusted_autoload(obj: &Object, st_ops: &[StructOps], p: usize) -> Option<bool> {
    if obj.programs[p].prog_type()
        != Some(aya_obj::generated::bpf_prog_type::BPF_PROG_TYPE_STRUCT_OPS as u32)
    {
        return None;
    }
    let mut used = false;
    let mut load = false;
    for st in st_ops {
        for slot in &st.progs {
            if *slot == Some(p) {
                used = true;
                load |= obj.maps[st.map].autocreate;
            }
        }
    }
    used.then_some(load)
}
