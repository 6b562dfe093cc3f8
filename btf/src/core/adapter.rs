//! The engine's [`View`] over the parser's [`Btf`], and [`Targets`]: the
//! ordered target BTFs (main, then modules loaded only when needed).

use std::sync::{Arc, OnceLock};

use crate::kernel::ModuleBtf;
use crate::raw::Kind;
use crate::types::Type;
use crate::{Btf, BtfData, BtfError};

use super::engine::TargetSet;
use super::view::{k, IntInfo, Member, Ty, View, ViewError};
use super::CoreError;

fn perr(e: BtfError) -> ViewError {
    ViewError::Parse(e.to_string())
}

fn kind_of(t: &Type<'_>) -> u8 {
    t.kind() as u8
}

impl View for Btf<'_> {
    fn str_at(&self, off: u32) -> Result<&str, ViewError> {
        Btf::str_at(self, off).map_err(|_| ViewError::Str(off))
    }

    fn ty(&self, id: u32) -> Result<Ty<'_>, ViewError> {
        if id == 0 {
            return Ok(Ty {
                id: 0,
                kind: k::UNKN,
                name: "",
                vlen: 0,
                kflag: false,
                size_or_type: 0,
            });
        }
        if id >= self.len() {
            return Err(ViewError::NoType(id));
        }
        let t = self.type_by_id(id).map_err(perr)?;
        let size_or_type = match &t {
            Type::FuncProto(p) => p.ret,
            other => other.size().or(other.target()).unwrap_or(0),
        };
        Ok(Ty {
            id,
            kind: kind_of(&t),
            name: self.name(id).map_err(perr)?,
            vlen: self.vlen(id).map_err(perr)?,
            kflag: self.kind_flag(id).map_err(perr)?,
            size_or_type,
        })
    }

    fn member(&self, id: u32, index: u32) -> Result<Member<'_>, ViewError> {
        let t = self.type_by_id(id).map_err(perr)?;
        let c = t.as_composite().ok_or(ViewError::Kind {
            id,
            found: k::name(kind_of(&t)),
            wanted: "struct/union",
        })?;
        let m = c
            .member(index as usize)
            .ok_or(ViewError::Index { id, index })?;
        Ok(Member {
            name: Btf::str_at(self, m.name_off).map_err(|_| ViewError::Str(m.name_off))?,
            type_id: m.type_id,
            bit_offset: m.bit_offset,
            bitfield_size: m.bitfield_size as u32,
        })
    }

    fn array(&self, id: u32) -> Result<(u32, u32), ViewError> {
        match self.type_by_id(id).map_err(perr)? {
            Type::Array(a) => Ok((a.elem, a.nelems)),
            t => Err(ViewError::Kind {
                id,
                found: k::name(kind_of(&t)),
                wanted: "array",
            }),
        }
    }

    fn int(&self, id: u32) -> Result<IntInfo, ViewError> {
        match self.type_by_id(id).map_err(perr)? {
            Type::Int(i) => Ok(IntInfo {
                encoding: i.encoding,
                signed: i.is_signed(),
                offset: i.offset,
            }),
            t => Err(ViewError::Kind {
                id,
                found: k::name(kind_of(&t)),
                wanted: "int",
            }),
        }
    }

    fn enumerator(&self, id: u32, index: u32) -> Result<(&str, u64), ViewError> {
        let t = self.type_by_id(id).map_err(perr)?;
        let e = t.as_enum().ok_or(ViewError::Kind {
            id,
            found: k::name(kind_of(&t)),
            wanted: "enum",
        })?;
        let v = e
            .value(index as usize)
            .ok_or(ViewError::Index { id, index })?;
        // libbpf reads a 32-bit enumerator as `__s32`: always sign-extended
        let val = if e.is64 {
            v.val
        } else {
            v.val as u32 as i32 as i64 as u64
        };
        Ok((
            Btf::str_at(self, v.name_off).map_err(|_| ViewError::Str(v.name_off))?,
            val,
        ))
    }

    fn param_type(&self, id: u32, index: u32) -> Result<u32, ViewError> {
        match self.type_by_id(id).map_err(perr)? {
            Type::FuncProto(p) => Ok(p
                .param(index as usize)
                .ok_or(ViewError::Index { id, index })?
                .type_id),
            t => Err(ViewError::Kind {
                id,
                found: k::name(kind_of(&t)),
                wanted: "func_proto",
            }),
        }
    }

    fn ptr_size(&self) -> u32 {
        // libbpf: `btf->ptr_sz < 0 ? sizeof(void *) : btf->ptr_sz`
        self.long_size()
            .unwrap_or(std::mem::size_of::<*const u8>() as u32)
    }

    fn own_ids(&self) -> std::ops::Range<u32> {
        Btf::own_ids(self)
    }

    fn find_candidates(
        &self,
        essential: &str,
        kind: u8,
        out: &mut Vec<u32>,
    ) -> Result<(), ViewError> {
        let start = out.len();
        let kinds: &[Kind] = match kind {
            k::ENUM | k::ENUM64 => &[Kind::Enum, Kind::Enum64],
            _ => match Kind::ALL.get(kind as usize) {
                Some(k) => std::slice::from_ref(k),
                None => return Ok(()),
            },
        };
        for &kd in kinds {
            out.extend(self.own_candidates(essential.as_bytes(), kd));
        }
        // libbpf scans ids in ascending order
        crate::sort::sort_copied(&mut out[start..]);
        Ok(())
    }

    fn has_name_index(&self) -> bool {
        self.is_indexed()
    }

    fn build_name_index(&self) {
        self.build_type_index();
    }

    fn pass_builds_index(&self) -> bool {
        self.core_pass_builds_index()
    }

    fn scan_candidates(&self, wanted: &[(&str, u8)]) -> Result<Vec<Vec<u32>>, ViewError> {
        let mut out = vec![Vec::new(); wanted.len()];
        let enumish = |kd: u8| kd == k::ENUM || kd == k::ENUM64;
        let mut kinds = [false; 32];
        for &(_, kd) in wanted {
            if let Some(slot) = kinds.get_mut(kd as usize) {
                *slot = true;
            }
            if enumish(kd) {
                kinds[k::ENUM as usize] = true;
                kinds[k::ENUM64 as usize] = true;
            }
        }
        // The wanted names by first byte, so each record is compared only with the few that can
        // match (a first CO-RE load may ask for a hundred types in this one pass).
        let mut by_first: Vec<Vec<usize>> = vec![Vec::new(); 256];
        let mut any_first = Vec::new();
        for (i, &(ess, _)) in wanted.iter().enumerate() {
            match ess.as_bytes().first() {
                Some(&b) => by_first[b as usize].push(i),
                None => any_first.push(i),
            }
        }
        let e = self.endian();
        let strs = self.string_section();
        let str_start = self.start_str_off();
        // The kernel's BTF before its index exists: only its named non-FUNC records (its keys,
        // 15k of 127k) can match, and their names and kinds are in the keys.
        let keys = if kinds[k::FUNC as usize] {
            None
        } else {
            self.pending_keys()
        };
        let mut recs: Box<dyn Iterator<Item = Result<(u32, u32, u32), ViewError>> + '_> =
            match &keys {
                Some(k) => Box::new(
                    k.iter()
                        .map(|(idx, name, kind)| Ok((self.start_id() + idx, name, kind << 24))),
                ),
                None => Box::new(Btf::own_ids(self).map(|id| {
                    let rec = self.raw_type(id).map_err(perr)?;
                    match (e.u32_at(rec, 0), e.u32_at(rec, 4)) {
                        (Some(n), Some(i)) => Ok((id, n, i)),
                        _ => Err(ViewError::NoType(id)),
                    }
                })),
            };
        for rec in &mut recs {
            let (id, name_off, info) = rec?;
            // kind first: most types are of kinds no local type asks for, and
            // skipping them avoids touching their names at all
            let kind = crate::raw::info_kind(info) as u8;
            if name_off == 0 || !kinds.get(kind as usize).copied().unwrap_or(false) {
                continue;
            }
            // the rest of the string section from the name on (the name is
            // its NUL-terminated prefix); split BTF may name base strings
            let tail: &[u8] = if name_off >= str_start {
                strs.get((name_off - str_start) as usize..).unwrap_or(&[])
            } else {
                Btf::str_bytes_at(self, name_off).unwrap_or(&[])
            };
            let first = tail.first().map_or(0, |&b| b as usize);
            for &i in by_first[first].iter().chain(&any_first) {
                let (ess, kd) = wanted[i];
                if !(kind == kd || (enumish(kind) && enumish(kd))) {
                    continue;
                }
                if crate::index::name_matches(tail, ess.as_bytes(), false) {
                    out[i].push(id);
                }
            }
        }
        Ok(out)
    }
}

/// A module BTF as a view (a fresh [`Btf`] view per access: module
/// relocations are rare, and this keeps [`Targets`] free of self-borrows).
impl View for ModuleBtf {
    fn str_at(&self, off: u32) -> Result<&str, ViewError> {
        Btf::str_at(&self.data.btf(), off).map_err(|_| ViewError::Str(off))
    }
    fn ty(&self, id: u32) -> Result<Ty<'_>, ViewError> {
        let b = self.data.btf();
        let t = View::ty(&b, id)?;
        // re-borrow the name from self.data (same bytes, longer lifetime)
        let name = if id == 0 {
            ""
        } else {
            self.data.btf().name(id).map_err(perr)?
        };
        Ok(Ty {
            name,
            ..t_static(t)
        })
    }
    fn member(&self, id: u32, index: u32) -> Result<Member<'_>, ViewError> {
        let b = self.data.btf();
        let m = View::member(&b, id, index)?;
        let name_off = member_name_off(&b, id, index)?;
        Ok(Member {
            name: self.str_at(name_off)?,
            type_id: m.type_id,
            bit_offset: m.bit_offset,
            bitfield_size: m.bitfield_size,
        })
    }
    fn array(&self, id: u32) -> Result<(u32, u32), ViewError> {
        View::array(&self.data.btf(), id)
    }
    fn int(&self, id: u32) -> Result<IntInfo, ViewError> {
        View::int(&self.data.btf(), id)
    }
    fn enumerator(&self, id: u32, index: u32) -> Result<(&str, u64), ViewError> {
        let b = self.data.btf();
        let (_, val) = View::enumerator(&b, id, index)?;
        let t = b.type_by_id(id).map_err(perr)?;
        let name_off = t
            .as_enum()
            .and_then(|e| e.value(index as usize))
            .map(|v| v.name_off)
            .unwrap_or(0);
        Ok((self.str_at(name_off)?, val))
    }
    fn param_type(&self, id: u32, index: u32) -> Result<u32, ViewError> {
        View::param_type(&self.data.btf(), id, index)
    }
    fn ptr_size(&self) -> u32 {
        // cached in the blob's layout, which every view of it shares
        View::ptr_size(&self.data.btf())
    }
    fn own_ids(&self) -> std::ops::Range<u32> {
        self.data.btf().own_ids()
    }
    fn find_candidates(
        &self,
        essential: &str,
        kind: u8,
        out: &mut Vec<u32>,
    ) -> Result<(), ViewError> {
        View::find_candidates(&self.data.btf(), essential, kind, out)
    }
}

fn t_static(t: Ty<'_>) -> Ty<'static> {
    Ty {
        id: t.id,
        kind: t.kind,
        name: "",
        vlen: t.vlen,
        kflag: t.kflag,
        size_or_type: t.size_or_type,
    }
}

fn member_name_off(b: &Btf<'_>, id: u32, index: u32) -> Result<u32, ViewError> {
    let t = b.type_by_id(id).map_err(perr)?;
    t.as_composite()
        .and_then(|c| c.member(index as usize))
        .map(|m| m.name_off)
        .ok_or(ViewError::Index { id, index })
}

enum Modules<'t> {
    None,
    Given(&'t [Arc<ModuleBtf>]),
    /// The running kernel's modules, read from /sys/kernel/btf on first need.
    Kernel(OnceLock<Result<Arc<Vec<Arc<ModuleBtf>>>, String>>),
}

/// The target BTFs of a CO-RE pass, in libbpf's order: the main BTF, then
/// module BTFs, which are only searched when the main BTF has no candidate.
pub struct Targets<'t> {
    main_name: String,
    main: Btf<'t>,
    modules: Modules<'t>,
}

impl<'t> Targets<'t> {
    /// Only `btf` (named `name` in results): e.g. a custom BTF that replaces
    /// the kernel's (libbpf then never looks at modules), or a test BTF.
    pub fn new(name: impl Into<String>, btf: Btf<'t>) -> Self {
        Targets {
            main_name: name.into(),
            main: btf,
            modules: Modules::None,
        }
    }

    /// The running kernel: `vmlinux`, then the module BTFs of
    /// `/sys/kernel/btf`, loaded (once per process) only if some local type
    /// has no candidate in vmlinux.
    pub fn kernel(vmlinux: &'t BtfData) -> Self {
        Targets {
            main_name: "vmlinux".into(),
            main: vmlinux.btf(),
            modules: Modules::Kernel(OnceLock::new()),
        }
    }

    /// `main` (named `name`), then the given module BTFs (split on `main`).
    pub fn with_modules(
        name: impl Into<String>,
        main: Btf<'t>,
        modules: &'t [Arc<ModuleBtf>],
    ) -> Self {
        Targets {
            main_name: name.into(),
            main,
            modules: Modules::Given(modules),
        }
    }

    /// The main target BTF.
    pub fn main(&self) -> &Btf<'t> {
        &self.main
    }
}

impl TargetSet for Targets<'_> {
    fn main(&self) -> (&str, &dyn View) {
        (&self.main_name, &self.main)
    }

    fn module_count(&self) -> Result<usize, CoreError> {
        match &self.modules {
            Modules::None => Ok(0),
            Modules::Given(m) => Ok(m.len()),
            Modules::Kernel(cell) => {
                match cell.get_or_init(|| crate::kernel::modules().map_err(|e| e.to_string())) {
                    Ok(m) => Ok(m.len()),
                    Err(e) => Err(CoreError::Modules(e.clone())),
                }
            }
        }
    }

    fn module(&self, i: usize) -> (&str, &dyn View) {
        let m: &ModuleBtf = match &self.modules {
            Modules::Given(m) => &m[i],
            Modules::Kernel(cell) => match cell.get() {
                Some(Ok(m)) => &m[i],
                _ => unreachable!("module() is only called below module_count()"),
            },
            Modules::None => unreachable!("module() is only called below module_count()"),
        };
        (&m.name, m)
    }
}
