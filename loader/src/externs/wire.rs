//! The load pipeline's view of externs and attach targets: one value built during prepare
//! (`ObjExterns::prepare`) and consulted while relocating and loading each program.

use std::cell::OnceCell;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};

use bpfload_btf::{Btf, Kind};

use super::{
    classify, relocate, resolve, ExternError, ExternTable, KernelBtfs, Resolution, ResolveInputs,
    KCONFIG_SEC,
};
use crate::attach::{self, AttachBtf, UserTarget};
use crate::features::{Feature, Features};
use crate::object::data::BPF_F_MMAPABLE;
use crate::object::maps::{Map, MapDef, MapKind, Pinning};
use crate::object::relocs::RelocKind;
use crate::object::Object;
use crate::reloc::Linked;

/// `BPF_F_RDONLY_PROG`.
const BPF_F_RDONLY_PROG: u32 = 1 << 7;

/// A user-set attach target (see `Loader::set_attach_target`).
#[derive(Debug)]
pub struct AttachTargetOpt {
    /// Program name.
    pub program: String,
    /// Target program fd (freplace, or tracing a BPF program).
    pub prog_fd: Option<OwnedFd>,
    /// Target function name (`None`: from the section name).
    pub func: Option<String>,
}

/// Extern values, the `.kconfig` map index and the kernel BTFs of one load.
pub struct ObjExterns<'t> {
    /// Classified externs.
    pub table: ExternTable,
    /// Resolved values.
    pub res: Resolution,
    /// Index of the `.kconfig` map in the object's maps, if created.
    pub kconfig_map: Option<usize>,
    /// Per function: the struct_ops attach target decided at prepare.
    pub struct_ops_attach: Vec<Option<crate::struct_ops::ProgAttach>>,
    kernel: OnceCell<Result<KernelBtfs, ExternError>>,
    token: Option<BorrowedFd<'t>>,
    targets: &'t [AttachTargetOpt],
}

impl std::fmt::Debug for ObjExterns<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjExterns")
            .field("table", &self.table)
            .field("res", &self.res)
            .finish()
    }
}

/// Per function: whether its code may be loaded, so whether the externs it uses must resolve
/// (`Loader::lenient_externs`; an unused extern without BTF is also skipped at classify).
///
/// Externs are resolved before struct_ops are prepared (libbpf's order), so a struct_ops program
/// counts with the autoload `bpf_object_adjust_struct_ops_autoload` will give it, not the one
/// set now (it overrides the user's). That adjustment also runs after members the kernel lacks
/// are dropped, which only turns programs off: counting them is at worst stricter.
/// Subprograms always count; a static function outside `.text` (a program here) also counts
/// when a loading program calls it, as its code is then appended there.
fn loaded_functions(obj: &Object) -> Vec<bool> {
    let will_load: Vec<bool> = obj
        .programs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            p.is_subprog
                || crate::struct_ops::adjusted_autoload(obj, &obj.struct_ops, i)
                    .unwrap_or(p.autoload)
        })
        .collect();
    if will_load.iter().all(|&l| l) {
        return will_load;
    }
    let index = crate::reloc::calls::FuncIndex::new(obj);
    let mains = (0..obj.programs.len()).filter(|&i| will_load[i] && !obj.programs[i].is_subprog);
    let appended = crate::reloc::calls::reachable(obj, &index, mains);
    will_load
        .iter()
        .zip(appended)
        .map(|(&l, a)| l || a)
        .collect()
}

fn uses_extern(obj: &Object, loaded: &[bool], ext: usize) -> bool {
    obj.programs.iter().zip(loaded).filter(|(_, &l)| l).any(|(p, _)| {
        p.relocs.iter().any(|r| matches!(r.kind, RelocKind::ExternLd64 { ext: e } | RelocKind::ExternCall { ext: e } if e == ext))
    })
}

impl<'t> ObjExterns<'t> {
    /// Classifies and resolves the object's externs and fills the `.kconfig` map's value.
    /// `lenient`: only externs used by the programs being loaded must resolve.
    // Kept out of the load pipeline's one big function: smaller code there (issue 8).
    #[inline(never)]
    pub(crate) fn prepare(
        obj: &mut Object,
        kconfig: Option<&str>,
        lenient: bool,
        features: &Features,
        token: Option<BorrowedFd<'t>>,
        targets: &'t [AttachTargetOpt],
    ) -> Result<Self, ExternError> {
        let mut this = ObjExterns {
            table: ExternTable::default(),
            res: Resolution::default(),
            kconfig_map: None,
            struct_ops_attach: Vec::new(),
            kernel: OnceCell::new(),
            token,
            targets,
        };
        // The vmlinux FUNCs this load will look up (attach targets of fentry/fexit/fmod_ret/lsm/
        // iter programs; kfuncs are added below), found in one pass.
        let mut funcs: Vec<String> = obj
            .programs
            .iter()
            .filter(|p| p.autoload && !p.is_subprog)
            .filter_map(|p| crate::attach::vmlinux_func_target(p, targets))
            .collect();
        if obj.externs.is_empty() {
            this.prefetch_funcs(funcs);
            return Ok(this);
        }
        let raw = obj.btf.clone();
        let btf = raw.as_deref().and_then(|r| Btf::parse(r).ok());
        let loaded = loaded_functions(obj);
        this.table = classify(&obj.externs, btf.as_ref(), |i| uses_extern(obj, &loaded, i))?;
        if !lenient {
            // libbpf resolves every extern of the object, whatever the loaded programs use, and
            // fails the object on a strong one it cannot resolve (`Loader::lenient_externs`).
            for d in this.table.descs.iter_mut().flatten() {
                d.used = true;
            }
        }
        let needs_kernel = this
            .table
            .descs
            .iter()
            .flatten()
            .any(|d| matches!(d.kind, super::ExternKind::Ksym { type_id, .. } if type_id != 0));
        // Probe only for the virtual externs the object declares.
        let declares = |n: &str| this.table.descs.iter().flatten().any(|d| d.name == n);
        let inputs = ResolveInputs {
            kconfig,
            kernel_version: bpfload_syscall::util::kernel_version().unwrap_or(0),
            has_bpf_cookie: declares("LINUX_HAS_BPF_COOKIE") && features.has(Feature::BpfCookie),
            has_syscall_wrapper: declares("LINUX_HAS_SYSCALL_WRAPPER")
                && features.has(Feature::SyscallWrapper),
        };
        funcs.extend(
            this.table
                .descs
                .iter()
                .flatten()
                .filter_map(|d| match d.kind {
                    super::ExternKind::Ksym { is_func: true, .. } if d.used => {
                        Some(d.essent_name.clone())
                    }
                    _ => None,
                }),
        );
        this.prefetch_funcs(funcs);
        let kernel = if needs_kernel {
            Some(this.kernel()?)
        } else {
            None
        };
        let res = resolve(&this.table, btf.as_ref(), &inputs, kernel)?;
        this.res = res;
        if this.table.kconfig_size > 0 {
            let value_type_id = btf
                .as_ref()
                .and_then(|b| b.find_by_name_kind(KCONFIG_SEC, Kind::DataSec))
                .unwrap_or(0);
            // Defined at open (`kconfig_map_at_open`); its value is known only now.
            let image = this.res.kconfig_image.clone();
            match obj.maps.iter().position(|m| m.kind == MapKind::Kconfig) {
                Some(i) => {
                    let m = &mut obj.maps[i];
                    m.def.value_size = this.table.kconfig_size;
                    m.btf_value_type_id = value_type_id;
                    m.image = Some(image);
                    this.kconfig_map = Some(i);
                }
                None => {
                    this.kconfig_map = Some(obj.maps.len());
                    obj.maps.push(kconfig_map(
                        &obj.name,
                        this.table.kconfig_size,
                        value_type_id,
                        Some(image),
                    ));
                }
            }
        }
        Ok(this)
    }

    /// struct_ops maps: kernel types, value images, member programs' attach targets and autoload
    /// (`bpf_object__init_kern_struct_ops_maps` + `bpf_object_adjust_struct_ops_autoload`).
    // Kept out of the load pipeline's one big function: smaller code there (issue 8).
    #[inline(never)]
    pub(crate) fn prepare_struct_ops(
        &mut self,
        obj: &mut Object,
    ) -> Result<(), crate::struct_ops::StructOpsError> {
        if obj.struct_ops.is_empty() {
            return Ok(());
        }
        let kernel =
            self.kernel()
                .map_err(|source| crate::struct_ops::StructOpsError::KernelBtf {
                    map: obj.struct_ops[0].section.clone(),
                    source,
                })?;
        let mut st = std::mem::take(&mut obj.struct_ops);
        let r = crate::struct_ops::init_kern(obj, &mut st, kernel);
        obj.struct_ops = st;
        self.struct_ops_attach = r?;
        Ok(())
    }

    /// Finds these vmlinux FUNCs in one pass, when there are two or more (one needs no batch, and
    /// none should not read the kernel's BTF). A failure to read the kernel's BTF is reported by
    /// the lookups themselves, where it was before.
    fn prefetch_funcs(&self, funcs: Vec<String>) {
        if funcs.len() < 2 {
            return;
        }
        if let Ok(k) = self.kernel() {
            k.prefetch_funcs(funcs);
        }
    }

    /// The kernel BTFs (vmlinux, modules on demand), read on first use.
    pub fn kernel(&self) -> Result<&KernelBtfs, ExternError> {
        match self.kernel.get_or_init(KernelBtfs::new) {
            Ok(k) => Ok(k),
            Err(e) => Err(e.clone()),
        }
    }

    /// Patches the extern references of one linked program.
    // Out of line: smaller code where it was inlined (issue 8: binary size).
    #[inline(never)]
    pub(crate) fn relocate(
        &self,
        l: &mut Linked,
        map_fd: impl Fn(usize) -> Option<RawFd>,
    ) -> Result<(), ExternError> {
        if self.table.is_empty() {
            return Ok(());
        }
        let kcfg = self.kconfig_map.and_then(&map_fd);
        let kernel = self.kernel.get().and_then(|k| k.as_ref().ok());
        relocate(
            &mut l.insns,
            l.relos.iter().map(|(i, r)| (*i, r)),
            &self.table,
            &self.res,
            kcfg,
            kernel,
        )
    }

    /// The `fd_array` for program loads (empty when no module kfunc is called).
    pub fn fd_array(&self) -> Vec<RawFd> {
        match self.kernel.get().and_then(|k| k.as_ref().ok()) {
            Some(k) => self.res.fd_array(k),
            None => Vec::new(),
        }
    }

    /// The attach target of a `SEC_ATTACH_BTF` program: (BTF id, `attach_btf_obj_fd`,
    /// `attach_prog_fd`).
    pub(crate) fn attach_target(
        &self,
        prog: &str,
        section: &str,
        prog_type: u32,
        attach_type: u32,
    ) -> Result<(u32, Option<BorrowedFd<'_>>, Option<BorrowedFd<'_>>), attach::AttachError> {
        let user = self.targets.iter().rev().find(|t| t.program == prog);
        let user_target = user.map(|u| UserTarget {
            prog_fd: u.prog_fd.as_ref().map(|f| f.as_fd()),
            func: u.func.as_deref(),
        });
        let needs_kernel = !(prog_type
            == aya_obj::generated::bpf_prog_type::BPF_PROG_TYPE_EXT as u32
            || user_target.is_some_and(|u| u.prog_fd.is_some()));
        let kernel = if needs_kernel {
            Some(
                self.kernel()
                    .map_err(|source| attach::AttachError::KernelBtf {
                        prog: prog.into(),
                        source,
                    })?,
            )
        } else {
            None
        };
        let AttachBtf { btf_id, src } = attach::resolve(
            prog,
            section,
            prog_type,
            attach_type,
            user_target,
            kernel,
            self.token,
        )?;
        let obj_fd = src.and_then(|s| kernel.and_then(|k| k.fd(s)));
        Ok((btf_id, obj_fd, user_target.and_then(|u| u.prog_fd)))
    }
}

/// The `.kconfig` map as libbpf defines it at open (`bpf_object__init_kconfig_map`), from the
/// `.kconfig` layout of every extern (which does not depend on what the programs use); its value
/// is filled at prepare. `None` when the object has no kconfig extern, or when its externs cannot
/// be classified (the load then fails at prepare, naming the extern).
pub(crate) fn kconfig_map_at_open(obj: &Object) -> Option<Map> {
    if obj.externs.is_empty() {
        return None;
    }
    let btf = Btf::parse(obj.btf.as_deref()?).ok()?;
    let table = match classify(&obj.externs, Some(&btf), |_| false) {
        Ok(t) => t,
        Err(e) => {
            log::debug!("object '{}': externs not classified at open: {e}", obj.name);
            return None;
        }
    };
    if table.kconfig_size == 0 {
        return None;
    }
    let value_type_id = btf
        .find_by_name_kind(KCONFIG_SEC, Kind::DataSec)
        .unwrap_or(0);
    // No image yet: the values are only known at prepare, and a zeroed buffer of a size that the
    // object's BTF merely claims (up to the kernel's 2 GiB limit) must not be allocated at open.
    Some(kconfig_map(
        &obj.name,
        table.kconfig_size,
        value_type_id,
        None,
    ))
}

/// libbpf's `init_kconfig_map`: ARRAY of one value, read-only for programs, mmapable.
fn kconfig_map(obj_name: &str, size: u32, value_type_id: u32, image: Option<Vec<u8>>) -> Map {
    Map {
        name: crate::object::data::internal_map_name(obj_name, KCONFIG_SEC),
        real_name: KCONFIG_SEC.to_string(),
        kind: MapKind::Kconfig,
        sec_idx: usize::MAX,
        sec_offset: 0,
        def: MapDef {
            map_type: aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_ARRAY as u32,
            key_size: 4,
            value_size: size,
            max_entries: 1,
            map_flags: BPF_F_RDONLY_PROG | BPF_F_MMAPABLE,
            numa_node: 0,
            map_extra: 0,
            pinning: Pinning::None,
        },
        btf_key_type_id: 0,
        btf_value_type_id: value_type_id,
        inner: None,
        init_slots: Vec::new(),
        values_off: None,
        image,
        autocreate: true,
        btf_vmlinux_value_type_id: 0,
    }
}
