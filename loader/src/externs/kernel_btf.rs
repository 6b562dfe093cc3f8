//! The kernel BTFs one load searches: vmlinux, then the module BTFs with their kernel fds
//! (libbpf's `obj->btf_vmlinux` + `load_module_btfs`). Module fds are needed for module
//! kfuncs (`fd_array`), module typed ksyms (`ld_imm64` second half), module attach targets
//! (`attach_btf_obj_fd`) and module struct_ops types.

use std::cell::OnceCell;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use bpfload_btf::{kernel, Btf, BtfData, Kind};
use bpfload_syscall::Errno;

use super::ExternError;

/// One module BTF, as the kernel numbers it.
#[derive(Debug)]
pub struct ModuleBtf {
    /// Module name.
    pub name: String,
    /// Kernel BTF object id.
    pub id: u32,
    /// `BPF_BTF_GET_FD_BY_ID` fd of the module's BTF.
    pub fd: OwnedFd,
    /// The module's BTF, split on vmlinux.
    pub btf: ModuleData,
}

/// A module's BTF: the process-wide sysfs copy, or one read through the fd.
#[derive(Debug)]
pub enum ModuleData {
    /// `/sys/kernel/btf/<module>`, shared process-wide.
    Sysfs(Arc<kernel::ModuleBtf>),
    /// Read with `BPF_OBJ_GET_INFO_BY_FD` (no sysfs copy).
    Fd(BtfData),
}

impl ModuleData {
    /// A view of the module's BTF.
    pub fn btf(&self) -> Btf<'_> {
        match self {
            ModuleData::Sysfs(m) => m.data.btf(),
            ModuleData::Fd(d) => d.btf(),
        }
    }
}

/// Where a kernel type was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BtfSource {
    /// vmlinux (no BTF object fd is passed to the kernel).
    Vmlinux,
    /// The module at this index of [`KernelBtfs::modules`].
    Module(usize),
}

/// vmlinux plus lazily loaded module BTFs, for one load.
pub struct KernelBtfs {
    vmlinux: Arc<BtfData>,
    modules: OnceCell<Result<Vec<ModuleBtf>, ExternError>>,
    /// vmlinux FUNC ids looked up together ([`KernelBtfs::prefetch_funcs`]), by name.
    funcs: OnceCell<hashbrown::HashMap<String, Option<u32>>>,
}

impl std::fmt::Debug for KernelBtfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelBtfs")
            .field(
                "modules",
                &self.modules.get().map(|m| m.as_ref().map(|v| v.len())),
            )
            .finish()
    }
}

impl KernelBtfs {
    /// The running kernel's vmlinux BTF; modules are enumerated on first need. No token takes
    /// part, as in libbpf's `load_module_btfs`: enumerating BTF objects needs `CAP_SYS_ADMIN` in
    /// the initial namespace, which no token grants, and kernels 6.9 to 6.14 refuse
    /// `BPF_F_TOKEN_FD` on `BPF_BTF_GET_FD_BY_ID` (EINVAL), which would fail the load.
    pub fn new() -> Result<Self, ExternError> {
        let vmlinux = kernel::vmlinux().map_err(|e| {
            ExternError::KernelBtf(format!("reading {}: {e}", kernel::VMLINUX_PATH))
        })?;
        Ok(Self::with_vmlinux(vmlinux))
    }

    /// Uses a given vmlinux BTF.
    pub fn with_vmlinux(vmlinux: Arc<BtfData>) -> Self {
        KernelBtfs {
            vmlinux,
            modules: OnceCell::new(),
            funcs: OnceCell::new(),
        }
    }

    /// Looks up these FUNC names in vmlinux in one pass ([`Btf::find_funcs`]) and keeps the
    /// answers for [`find`](Self::find) and the attach-target lookups of this load: before the
    /// kernel's FUNC index exists, each lookup alone would walk all of vmlinux's types.
    pub(crate) fn prefetch_funcs(&self, mut names: Vec<String>) {
        crate::sort::sort_copied(&mut names);
        names.dedup();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let found = self.vmlinux.btf().find_funcs(&refs);
        let _ = self.funcs.set(names.into_iter().zip(found).collect());
    }

    /// `name` of `kind` in vmlinux (a prefetched FUNC answer when there is one).
    pub(crate) fn find_vmlinux(&self, name: &str, kind: Kind) -> Option<u32> {
        if kind == Kind::Func {
            if let Some(&id) = self.funcs.get().and_then(|m| m.get(name)) {
                return id;
            }
        }
        self.vmlinux.btf().find_by_name_kind(name, kind)
    }

    /// vmlinux BTF.
    pub fn vmlinux(&self) -> Btf<'_> {
        self.vmlinux.btf()
    }

    /// Module BTFs in kernel id order (libbpf's `load_module_btfs`). Without the privilege to
    /// enumerate BTF objects (EPERM) there are none, as in libbpf.
    pub fn modules(&self) -> Result<&[ModuleBtf], ExternError> {
        match self.modules.get_or_init(|| load_modules(&self.vmlinux)) {
            Ok(v) => Ok(v),
            Err(e) => Err(e.clone()),
        }
    }

    /// BTF of a source.
    pub fn btf(&self, src: BtfSource) -> Btf<'_> {
        match src {
            BtfSource::Vmlinux => self.vmlinux.btf(),
            BtfSource::Module(i) => self
                .modules
                .get()
                .and_then(|m| m.as_ref().ok())
                .map(|m| m[i].btf.btf())
                .unwrap_or_else(|| self.vmlinux.btf()),
        }
    }

    /// The BTF object fd of a source (`None` for vmlinux).
    pub fn fd(&self, src: BtfSource) -> Option<BorrowedFd<'_>> {
        match src {
            BtfSource::Vmlinux => None,
            BtfSource::Module(i) => self
                .modules
                .get()
                .and_then(|m| m.as_ref().ok())
                .map(|m| m[i].fd.as_fd()),
        }
    }

    /// Name of a source, for messages.
    pub fn source_name(&self, src: BtfSource) -> String {
        match src {
            BtfSource::Vmlinux => "vmlinux".into(),
            BtfSource::Module(i) => self
                .modules
                .get()
                .and_then(|m| m.as_ref().ok())
                .map(|m| m[i].name.clone())
                .unwrap_or_default(),
        }
    }

    /// libbpf's `find_ksym_btf_id`: `name` of `kind` in vmlinux, else in each module's own types.
    pub fn find(&self, name: &str, kind: Kind) -> Result<Option<(BtfSource, u32)>, ExternError> {
        if let Some(id) = self.find_vmlinux(name, kind) {
            return Ok(Some((BtfSource::Vmlinux, id)));
        }
        for (i, m) in self.modules()?.iter().enumerate() {
            let b = m.btf.btf();
            if let Some(id) = find_own(&b, name, kind) {
                return Ok(Some((BtfSource::Module(i), id)));
            }
        }
        Ok(None)
    }
}

/// `btf__find_by_name_kind_own`: only the split BTF's own types.
pub(crate) fn find_own(b: &Btf<'_>, name: &str, kind: Kind) -> Option<u32> {
    let ess = bpfload_btf::essential_name(name.as_bytes());
    b.own_candidates(ess, kind)
        .find(|&id| b.name(id).is_ok_and(|n| n == name))
}

fn load_modules(vmlinux: &Arc<BtfData>) -> Result<Vec<ModuleBtf>, ExternError> {
    use bpfload_syscall::{btf, info};
    let mut out = Vec::new();
    let mut id = 0;
    loop {
        id = match btf::get_next_id(id) {
            Ok(Some(next)) => next,
            Ok(None) => break,
            Err(e) if e.errno() == Errno::EPERM => {
                log::debug!("skipping module BTFs loading, missing privileges");
                break;
            }
            Err(e) => {
                return Err(ExternError::KernelBtf(format!(
                    "failed to iterate BTF objects: {e}"
                )))
            }
        };
        let fd = match btf::get_fd_by_id(id, None) {
            Ok(fd) => fd,
            // The object went away between the two calls.
            Err(e) if e.errno() == Errno::ENOENT => continue,
            Err(e) => {
                return Err(ExternError::KernelBtf(format!(
                    "failed to get BTF object #{id} FD: {e}"
                )))
            }
        };
        let inf = match info::btf_info(fd.as_fd()) {
            Ok(inf) => inf,
            // A kernel that lists BTF objects but has no module BTF refuses the name field of
            // the info (E2BIG): libbpf's FEAT_MODULE_BTF is missing there, and its
            // `load_module_btfs` then loads no module BTF at all (found by review: the load
            // failed instead).
            Err(e) if e.errno() == Errno::E2BIG => {
                log::debug!("kernel has no module BTF (BTF object info: {e})");
                return Ok(Vec::new());
            }
            Err(e) => {
                return Err(ExternError::KernelBtf(format!(
                    "failed to get BTF object #{id} info: {e}"
                )))
            }
        };
        if !inf.kernel_btf || inf.name == "vmlinux" {
            continue;
        }
        // Prefer the sysfs copy (memory-mapped, shared process-wide); the fd's data otherwise.
        let data = match kernel::module(&inf.name) {
            Ok(Some(m)) => ModuleData::Sysfs(m),
            _ => {
                let raw = info::btf_data(fd.as_fd()).map_err(|e| {
                    ExternError::KernelBtf(format!("reading BTF of module '{}': {e}", inf.name))
                })?;
                ModuleData::Fd(BtfData::parse_split(raw, Arc::clone(vmlinux)).map_err(|e| {
                    ExternError::KernelBtf(format!("parsing BTF of module '{}': {e}", inf.name))
                })?)
            }
        };
        out.push(ModuleBtf {
            name: inf.name,
            id,
            fd,
            btf: data,
        });
    }
    Ok(out)
}
