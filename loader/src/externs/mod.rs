//! Extern resolution: `.kconfig` values, `.ksyms` variables (typed through kernel BTF, typeless
//! through `/proc/kallsyms`) and kfunc calls, as libbpf's `bpf_object__collect_externs` (the BTF
//! half), `bpf_object__resolve_externs` and the extern cases of `bpf_object__relocate_data` do.
//!
//! Three steps, each a plain function:
//! 1. [`classify`]: from the object's BTF, what each extern is (kconfig with its type and offset
//!    in the `.kconfig` image, or ksym with its local type), in libbpf's sorted order;
//! 2. [`resolve`]: values from kconfig text, the virtual `LINUX_*` externs, kallsyms and kernel
//!    BTF (vmlinux, then modules); module BTF fds go into the `fd_array` for kfuncs;
//! 3. [`relocate`]: patches the `ld_imm64`s and calls that refer to externs.

pub mod btf_fixup;
pub mod gzip;
mod inflate;
pub mod kallsyms;
pub mod kconfig;
pub mod kernel_btf;
pub mod ksym;
pub mod wire;

use std::os::fd::{AsRawFd, RawFd};

use bpfload_btf::{Btf, Type, VarLinkage};

use crate::insn::{Insn, CALL};
use crate::object::externs::Extern;
use crate::object::relocs::{Reloc, RelocKind};
pub use kernel_btf::{BtfSource, KernelBtfs};

/// Name of the kconfig DATASEC.
pub const KCONFIG_SEC: &str = ".kconfig";
/// Name of the ksyms DATASEC.
pub const KSYMS_SEC: &str = ".ksyms";
/// libbpf's `POISON_CALL_KFUNC_BASE`: an unresolved weak kfunc call becomes `call 2002000000 + ext_idx`.
pub const POISON_CALL_KFUNC_BASE: i32 = 2_002_000_000;
/// `src_reg` of an `ld_imm64` of a kernel variable by BTF id.
pub const PSEUDO_BTF_ID: u8 = 3;
/// `src_reg` of a kfunc call.
pub const PSEUDO_KFUNC_CALL: u8 = 2;
/// `src_reg` of an `ld_imm64` of an address inside a map value.
const PSEUDO_MAP_VALUE: u8 = 2;

/// Errors of extern classification and resolution; each names the extern.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExternError {
    /// The object has no BTF entry (VAR/FUNC in `.kconfig`/`.ksyms`) for a used extern.
    #[error("failed to find BTF for extern '{name}': {msg}")]
    NoBtf {
        /// Extern name.
        name: String,
        /// What is missing.
        msg: String,
    },
    /// An extern of a kind or type libbpf does not support.
    #[error("extern '{name}': {msg}")]
    Unsupported {
        /// Extern name.
        name: String,
        /// Why.
        msg: String,
    },
    /// Reading or parsing kconfig text failed.
    #[error("kconfig: {0}")]
    Kconfig(String),
    /// A kconfig value does not fit the extern's type.
    #[error("extern (kcfg) '{name}': {msg}")]
    KconfigValue {
        /// Extern name.
        name: String,
        /// What is wrong.
        msg: String,
    },
    /// A ksym could not be resolved or does not match the kernel's type.
    #[error("extern (ksym) '{name}': {msg}")]
    Ksym {
        /// Extern name.
        name: String,
        /// What is wrong.
        msg: String,
    },
    /// A strong extern has no value (libbpf: ESRCH).
    #[error("extern '{name}' (strong): not resolved")]
    Unresolved {
        /// Extern name.
        name: String,
    },
    /// Kernel BTF could not be read or enumerated.
    #[error("kernel BTF: {0}")]
    KernelBtf(String),
}

impl ExternError {
    /// The errno libbpf reports for this failure: ENOENT for an extern without BTF (libbpf's open
    /// fails), EOPNOTSUPP for unsupported kinds, ESRCH for an unresolved strong extern, EINVAL for
    /// the rest (libbpf's `bpf_object__resolve_externs` turns its steps' errors into EINVAL).
    pub fn errno(&self) -> bpfload_syscall::Errno {
        use bpfload_syscall::Errno;
        match self {
            ExternError::NoBtf { .. } => Errno::ENOENT,
            ExternError::Unsupported { .. } => Errno::EOPNOTSUPP,
            ExternError::Unresolved { .. } => Errno::ESRCH,
            _ => Errno::EINVAL,
        }
    }
}

/// libbpf's `enum kcfg_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KcfgType {
    /// `bool` (1 byte).
    Bool,
    /// `char` (any 1-byte int).
    Char,
    /// 2-, 4- or 8-byte integer.
    Int,
    /// `enum libbpf_tristate`.
    Tristate,
    /// `char[N]`.
    CharArr,
}

/// What an extern is, from the object's BTF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExternKind {
    /// A `.kconfig` variable.
    Kconfig {
        /// Size in bytes.
        size: u32,
        /// Alignment in bytes.
        align: u32,
        /// Value kind.
        ty: KcfgType,
        /// Signed integer.
        signed: bool,
        /// Offset in the `.kconfig` image.
        data_off: u32,
    },
    /// A `.ksyms` variable or function.
    Ksym {
        /// Local BTF type (modifiers and typedefs skipped); 0 for a typeless (`void`) ksym.
        type_id: u32,
        /// A kfunc (BTF FUNC) rather than a variable.
        is_func: bool,
    },
}

/// One classified extern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternDesc {
    /// Name (from BTF).
    pub name: String,
    /// Name without a `___flavor` suffix (kfuncs are looked up by it).
    pub essent_name: String,
    /// `__weak`.
    pub weak: bool,
    /// The VAR or FUNC in the object's BTF.
    pub btf_id: u32,
    /// Kind and type.
    pub kind: ExternKind,
    /// Index in libbpf's sorted extern array (kconfig first by alignment, size, name; then
    /// ksyms by name): the number in a poisoned kfunc call.
    pub libbpf_idx: usize,
    /// Must resolve if strong: every extern by default (libbpf resolves every extern and fails
    /// the whole object on a strong one it cannot resolve); with `Loader::lenient_externs`, only
    /// those referenced by a relocation of a program that is loaded (an unused one only logs).
    pub used: bool,
}

/// All externs of an object, indexed like [`Object::externs`](crate::Object::externs).
#[derive(Debug, Clone, Default)]
pub struct ExternTable {
    /// `None` for an extern that has no BTF and is not used by any relocation (libbpf refuses
    /// such an object at open; nothing needs its value, so it is skipped here).
    pub descs: Vec<Option<ExternDesc>>,
    /// Size of the `.kconfig` image (0: no kconfig externs, no map).
    pub kconfig_size: u32,
}

impl ExternTable {
    /// Whether there is anything to resolve.
    pub fn is_empty(&self) -> bool {
        self.descs.iter().all(Option::is_none)
    }
}

fn extern_err(name: &str, msg: impl Into<String>) -> ExternError {
    ExternError::NoBtf {
        name: name.to_string(),
        msg: msg.into(),
    }
}

/// libbpf's `find_extern_btf_id`: the VAR or FUNC named `name` with extern linkage.
fn find_extern_btf_id(btf: &Btf<'_>, name: &str) -> Result<Option<u32>, ExternError> {
    for id in 1..btf.len() {
        let Ok(t) = btf.type_by_id(id) else { continue };
        let linkage_ok = match t {
            Type::Var { linkage, .. } => linkage == VarLinkage::GlobalExtern,
            Type::Func { linkage, .. } => linkage == bpfload_btf::FuncLinkage::Extern,
            _ => continue,
        };
        if btf.name(id).ok() != Some(name) {
            continue;
        }
        if !linkage_ok {
            return Err(ExternError::Unsupported {
                name: name.into(),
                msg: format!("BTF [{id}] has non-extern linkage"),
            });
        }
        return Ok(Some(id));
    }
    Ok(None)
}

/// libbpf's `find_extern_sec_btf_id`: the DATASEC that lists `var_id`.
fn find_extern_sec(btf: &Btf<'_>, var_id: u32) -> Option<(u32, String)> {
    for id in 1..btf.len() {
        let Ok(Type::DataSec(d)) = btf.type_by_id(id) else {
            continue;
        };
        if d.vars().any(|v| v.type_id == var_id) {
            return Some((id, btf.name(id).unwrap_or("").to_string()));
        }
    }
    None
}

fn skip_mods_and_typedefs(btf: &Btf<'_>, id: u32) -> u32 {
    btf.skip_mods_and_typedefs(id).unwrap_or(id)
}

/// libbpf's `find_kcfg_type`.
fn find_kcfg_type(btf: &Btf<'_>, id: u32, depth: u32) -> Option<(KcfgType, bool)> {
    let id = skip_mods_and_typedefs(btf, id);
    match btf.type_by_id(id).ok()? {
        Type::Int(i) => {
            if i.is_bool() {
                return (i.size == 1).then_some((KcfgType::Bool, false));
            }
            let signed = i.is_signed();
            if i.size == 1 {
                return Some((KcfgType::Char, signed));
            }
            if !matches!(i.size, 2 | 4 | 8) {
                return None;
            }
            Some((KcfgType::Int, signed))
        }
        Type::Enum(e) => (e.size == 4 && btf.name(id).ok()? == "libbpf_tristate")
            .then_some((KcfgType::Tristate, false)),
        Type::Enum64(_) => {
            (btf.name(id).ok()? == "libbpf_tristate").then_some((KcfgType::Tristate, false))
        }
        Type::Array(a) => {
            if a.nelems == 0 || depth > 0 {
                return None;
            }
            matches!(
                find_kcfg_type(btf, a.elem, depth + 1),
                Some((KcfgType::Char, _))
            )
            .then_some((KcfgType::CharArr, false))
        }
        _ => None,
    }
}

/// `btf__align_of` for the kinds a kconfig extern can have.
fn align_of(btf: &Btf<'_>, id: u32) -> Option<u32> {
    let id = skip_mods_and_typedefs(btf, id);
    match btf.type_by_id(id).ok()? {
        Type::Int(i) => Some(i.size.min(8)),
        Type::Enum(e) | Type::Enum64(e) => Some(e.size.min(8)),
        Type::Array(a) => align_of(btf, a.elem),
        _ => None,
    }
}

/// The largest ARRAY map value the kernel creates: `array_map_alloc_check` refuses
/// `value_size > INT_MAX` with E2BIG (measured on 6.18: 2147483647 creates, 2147483648 fails).
/// libbpf would fail at map creation; we refuse before allocating the image.
pub const MAX_MAP_VALUE_SIZE: u32 = i32::MAX as u32;

/// Classifies every extern of an object (the BTF half of `bpf_object__collect_externs`) and lays
/// out the `.kconfig` image. `used(i)` tells whether extern `i` is referenced by a relocation: an
/// unused extern without BTF is skipped (libbpf refuses the whole object; nothing needs it).
pub fn classify(
    externs: &[Extern],
    btf: Option<&Btf<'_>>,
    used: impl Fn(usize) -> bool,
) -> Result<ExternTable, ExternError> {
    classify_dyn(externs, btf, &used)
}

/// [`classify`]'s body, instantiated once.
fn classify_dyn(
    externs: &[Extern],
    btf: Option<&Btf<'_>>,
    used: &dyn Fn(usize) -> bool,
) -> Result<ExternTable, ExternError> {
    let mut descs: Vec<Option<ExternDesc>> = Vec::with_capacity(externs.len());
    for (i, e) in externs.iter().enumerate() {
        let desc = classify_one(e, btf);
        match desc {
            Ok(mut d) => {
                d.used = used(i);
                descs.push(Some(d));
            }
            Err(err @ ExternError::NoBtf { .. }) => {
                if used(i) {
                    return Err(err);
                }
                log::debug!("{err} (extern unused, skipped)");
                descs.push(None);
            }
            Err(err) => return Err(err),
        }
    }
    // cmp_externs: kconfig before ksyms; kconfig by alignment (desc), size (asc); then name.
    let mut order: Vec<usize> = (0..descs.len()).filter(|&i| descs[i].is_some()).collect();
    let key = |d: &ExternDesc| match d.kind {
        ExternKind::Kconfig { align, size, .. } => (0u8, u32::MAX - align, size),
        ExternKind::Ksym { .. } => (1u8, 0, 0),
    };
    // Ties broken by index (the order's initial order), through the shared index sort
    // instead of a standard sort instance of its own (issue 8: binary size).
    bpfload_btf::sort_indices_by(&mut order, &mut |a, b| {
        let (da, db) = (descs[a].as_ref().unwrap(), descs[b].as_ref().unwrap());
        key(da)
            .cmp(&key(db))
            .then_with(|| da.name.as_bytes().cmp(db.name.as_bytes()))
            .then(a.cmp(&b))
    });
    let mut off = 0u32;
    for (pos, &i) in order.iter().enumerate() {
        let d = descs[i].as_mut().expect("filtered above");
        d.libbpf_idx = pos;
        if let ExternKind::Kconfig {
            size,
            align,
            data_off,
            ..
        } = &mut d.kind
        {
            // Hostile sizes and alignments must not wrap the offsets (and the image must stay
            // within what the kernel accepts as an ARRAY value): an error naming the extern.
            let (sz, at) = (*size, off);
            let too_big = || ExternError::Unsupported {
                name: d.name.clone(),
                msg: format!(
                    "{sz} bytes at offset {at} of the .kconfig map value exceed the kernel's \
                     {MAX_MAP_VALUE_SIZE}-byte limit for an ARRAY map value"
                ),
            };
            *data_off = off
                .div_ceil(*align)
                .checked_mul(*align)
                .ok_or_else(too_big)?;
            off = data_off
                .checked_add(*size)
                .filter(|&end| end <= MAX_MAP_VALUE_SIZE)
                .ok_or_else(too_big)?;
        }
    }
    Ok(ExternTable {
        descs,
        kconfig_size: off,
    })
}

fn classify_one(e: &Extern, btf: Option<&Btf<'_>>) -> Result<ExternDesc, ExternError> {
    let btf = btf.ok_or_else(|| extern_err(&e.name, "the object has no BTF"))?;
    let id = find_extern_btf_id(btf, &e.name)?
        .ok_or_else(|| extern_err(&e.name, "no extern VAR or FUNC of that name (ENOENT)"))?;
    let (_, sec_name) = find_extern_sec(btf, id)
        .ok_or_else(|| extern_err(&e.name, format!("[{id}] is in no DATASEC (ENOENT)")))?;
    let t = btf
        .type_by_id(id)
        .map_err(|err| extern_err(&e.name, err.to_string()))?;
    let is_func = matches!(t, Type::Func { .. });
    let target = t.target().unwrap_or(0);
    let essent =
        String::from_utf8_lossy(bpfload_btf::essential_name(e.name.as_bytes())).into_owned();
    let kind = match sec_name.as_str() {
        KCONFIG_SEC => {
            let unsupported = |msg: String| ExternError::Unsupported {
                name: e.name.clone(),
                msg,
            };
            if is_func {
                return Err(unsupported(format!(
                    "extern function is unsupported under {KCONFIG_SEC} section"
                )));
            }
            let size = btf.resolve_size(target).map_err(|err| {
                unsupported(format!("failed to resolve size of extern (kcfg): {err}"))
            })?;
            if size == 0 {
                return Err(unsupported(
                    "failed to resolve size of extern (kcfg)".into(),
                ));
            }
            let (ty, signed) = find_kcfg_type(btf, target, 0)
                .ok_or_else(|| unsupported("extern (kcfg) type is unsupported".into()))?;
            let align = align_of(btf, target).filter(|&a| a > 0).ok_or_else(|| {
                unsupported("failed to determine alignment of extern (kcfg)".into())
            })?;
            ExternKind::Kconfig {
                size,
                align,
                ty,
                signed,
                data_off: 0,
            }
        }
        KSYMS_SEC => ExternKind::Ksym {
            type_id: skip_mods_and_typedefs(btf, target),
            is_func,
        },
        other => {
            return Err(ExternError::Unsupported {
                name: e.name.clone(),
                msg: format!("unrecognized extern section '{other}'"),
            });
        }
    };
    Ok(ExternDesc {
        name: e.name.clone(),
        essent_name: essent,
        weak: e.weak,
        btf_id: id,
        kind,
        libbpf_idx: 0,
        used: true,
    })
}

/// The value of one extern after resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExternValue {
    /// Not resolved (a weak extern: zero, or a poisoned kfunc call).
    Unset,
    /// A kconfig value, written into the `.kconfig` image.
    Kconfig,
    /// A typeless ksym's address (or a typed one's when it is missing and weak: 0).
    Addr(u64),
    /// A typed ksym variable: BTF id in vmlinux or a module.
    BtfVar {
        /// Kernel BTF id of the VAR.
        btf_id: u32,
        /// Where it was found.
        src: BtfSource,
    },
    /// A kfunc: BTF id and `fd_array` index (0 for vmlinux).
    Kfunc {
        /// Kernel BTF id of the FUNC.
        btf_id: u32,
        /// `insn->off`: index of the module's BTF fd in `fd_array`, 0 for vmlinux.
        fd_idx: i16,
        /// Where it was found.
        src: BtfSource,
    },
}

/// Inputs of [`resolve`] that come from outside the object.
#[derive(Debug, Clone, Default)]
pub struct ResolveInputs<'a> {
    /// User-supplied kconfig text (libbpf's `kconfig` open option), consulted first.
    pub kconfig: Option<&'a str>,
    /// `LINUX_KERNEL_VERSION` (KERNEL_VERSION(a, b, c) of the running kernel).
    pub kernel_version: u32,
    /// FEAT_BPF_COOKIE, for `LINUX_HAS_BPF_COOKIE`.
    pub has_bpf_cookie: bool,
    /// FEAT_SYSCALL_WRAPPER, for `LINUX_HAS_SYSCALL_WRAPPER`.
    pub has_syscall_wrapper: bool,
}

/// Resolved extern values of one load.
#[derive(Debug, Clone, Default)]
pub struct Resolution {
    /// Per extern, indexed like the object's externs.
    pub values: Vec<ExternValue>,
    /// The `.kconfig` map's initial value (empty when there are no kconfig externs).
    pub kconfig_image: Vec<u8>,
    /// Module BTF sources in `fd_array` order, from index 1 (index 0 is unused, as in libbpf).
    pub fd_array_modules: Vec<BtfSource>,
}

impl Resolution {
    /// The `fd_array` to pass with `BPF_PROG_LOAD`: `[0, module fds...]`, or empty when no module
    /// kfunc is called.
    pub fn fd_array(&self, kernel: &KernelBtfs) -> Vec<RawFd> {
        if self.fd_array_modules.is_empty() {
            return Vec::new();
        }
        let mut v = vec![0];
        v.extend(
            self.fd_array_modules
                .iter()
                .map(|&s| kernel.fd(s).map_or(0, |fd| fd.as_raw_fd())),
        );
        v
    }
}

/// `bpf_object__resolve_externs`: values for every classified extern. Kconfig values come from
/// `inputs.kconfig`, then the system kconfig (read only if some `CONFIG_*` extern is still
/// unset); typeless ksyms from `/proc/kallsyms`; typed ksyms and kfuncs from kernel BTF
/// (`kernel` is only asked when such an extern exists). A strong extern left unset is an error.
// Out of line: smaller code where it was inlined (issue 8: binary size).
#[inline(never)]
pub fn resolve(
    table: &ExternTable,
    local_btf: Option<&Btf<'_>>,
    inputs: &ResolveInputs<'_>,
    kernel: Option<&KernelBtfs>,
) -> Result<Resolution, ExternError> {
    if table.kconfig_size > MAX_MAP_VALUE_SIZE {
        return Err(ExternError::Kconfig(format!(
            "the .kconfig map value would be {} bytes, above the kernel's {MAX_MAP_VALUE_SIZE}-byte \
             limit for an ARRAY map value",
            table.kconfig_size
        )));
    }
    let mut res = Resolution {
        values: vec![ExternValue::Unset; table.descs.len()],
        kconfig_image: vec![0; table.kconfig_size as usize],
        fd_array_modules: Vec::new(),
    };
    let mut need_config = false;
    let mut typeless = Vec::new();
    let mut typed = Vec::new();
    for (i, d) in table.descs.iter().enumerate() {
        let Some(d) = d else { continue };
        match d.kind {
            ExternKind::Ksym { type_id, .. } => {
                if type_id != 0 {
                    typed.push(i);
                } else {
                    typeless.push(i);
                }
            }
            ExternKind::Kconfig {
                size,
                ty,
                signed,
                data_off,
                ..
            } => {
                if d.name.starts_with("CONFIG_") {
                    need_config = true;
                    continue;
                }
                let value = match d.name.as_str() {
                    "LINUX_KERNEL_VERSION" => {
                        if inputs.kernel_version == 0 {
                            return Err(ExternError::KconfigValue {
                                name: d.name.clone(),
                                msg: "failed to get kernel version".into(),
                            });
                        }
                        u64::from(inputs.kernel_version)
                    }
                    "LINUX_HAS_BPF_COOKIE" => u64::from(inputs.has_bpf_cookie),
                    "LINUX_HAS_SYSCALL_WRAPPER" => u64::from(inputs.has_syscall_wrapper),
                    n if n.starts_with("LINUX_") && d.weak => 0,
                    _ => {
                        return Err(ExternError::KconfigValue {
                            name: d.name.clone(),
                            msg: "unrecognized virtual extern".into(),
                        })
                    }
                };
                let slot = kconfig::KcfgSlot {
                    off: data_off as usize,
                    size: size as usize,
                    ty,
                    signed,
                };
                kconfig::set_num(
                    &d.name,
                    slot,
                    &mut res.kconfig_image[slot.off..slot.off + slot.size],
                    value,
                )?;
                res.values[i] = ExternValue::Kconfig;
            }
        }
    }
    if need_config {
        if let Some(text) = inputs.kconfig {
            apply_kconfig(table, &mut res, text)?;
            need_config = table.descs.iter().enumerate().any(|(i, d)| {
                matches!(
                    d,
                    Some(ExternDesc {
                        kind: ExternKind::Kconfig { .. },
                        ..
                    })
                ) && res.values[i] == ExternValue::Unset
            });
        }
    }
    if need_config {
        let text = kconfig::read_system_kconfig()?;
        apply_kconfig(table, &mut res, &text)?;
    }
    if !typeless.is_empty() {
        let text = kallsyms::read()?;
        let names: Vec<&str> = typeless
            .iter()
            .map(|&i| table.descs[i].as_ref().map_or("", |d| d.name.as_str()))
            .collect();
        // Functions declared without a type are not looked up in kallsyms by libbpf (only VARs).
        for (k, addr) in kallsyms::resolve(&text, &names)?.into_iter().enumerate() {
            let i = typeless[k];
            let is_var = matches!(
                table.descs[i].as_ref().map(|d| &d.kind),
                Some(ExternKind::Ksym { is_func: false, .. })
            );
            if let (Some(a), true) = (addr, is_var) {
                res.values[i] = ExternValue::Addr(a);
            }
        }
    }
    if !typed.is_empty() {
        let local = local_btf
            .ok_or_else(|| ExternError::KernelBtf("typed ksyms need the object's BTF".into()))?;
        let kernel =
            kernel.ok_or_else(|| ExternError::KernelBtf("typed ksyms need kernel BTF".into()))?;
        for &i in &typed {
            let d = table.descs[i].as_ref().expect("typed ksyms are classified");
            res.values[i] = match ksym::resolve_typed(d, local, kernel, &mut res.fd_array_modules) {
                Ok(v) => v,
                Err(e) if !d.used => {
                    log::info!("{e} (no loaded program uses it; ignored)");
                    ExternValue::Unset
                }
                Err(e) => return Err(e),
            };
        }
    }
    for (i, d) in table.descs.iter().enumerate() {
        let Some(d) = d else { continue };
        if res.values[i] == ExternValue::Unset {
            if !d.weak && d.used {
                return Err(ExternError::Unresolved {
                    name: d.name.clone(),
                });
            }
            log::debug!(
                "extern '{}' (weak): not resolved, defaulting to zero",
                d.name
            );
        }
    }
    Ok(res)
}

fn apply_kconfig(table: &ExternTable, res: &mut Resolution, text: &str) -> Result<(), ExternError> {
    let by_name: std::collections::HashMap<&str, usize> = table
        .descs
        .iter()
        .enumerate()
        .filter_map(|(i, d)| {
            d.as_ref()
                .filter(|d| matches!(d.kind, ExternKind::Kconfig { .. }))
                .map(|d| (d.name.as_str(), i))
        })
        .collect();
    let values = &mut res.values;
    let set = std::cell::RefCell::new(Vec::new());
    kconfig::apply_text(
        text,
        &mut res.kconfig_image,
        |name| {
            let &i = by_name.get(name)?;
            if values[i] != ExternValue::Unset || set.borrow().contains(&i) {
                return None;
            }
            match table.descs[i].as_ref()?.kind {
                ExternKind::Kconfig {
                    size,
                    ty,
                    signed,
                    data_off,
                    ..
                } => Some(kconfig::KcfgSlot {
                    off: data_off as usize,
                    size: size as usize,
                    ty,
                    signed,
                }),
                _ => None,
            }
        },
        |name| {
            if let Some(&i) = by_name.get(name) {
                set.borrow_mut().push(i);
            }
        },
    )?;
    for i in set.into_inner() {
        values[i] = ExternValue::Kconfig;
    }
    Ok(())
}

/// The extern cases of `bpf_object__relocate_data`: patches every extern `ld_imm64` and kfunc
/// call listed in `relos` (instruction index, relocation) of `insns`. `kconfig_map_fd` is the fd of
/// the `.kconfig` map (required if a kconfig extern is referenced); `kernel` gives module BTF fds
/// for typed ksyms in modules.
pub fn relocate<'r>(
    insns: &mut [Insn],
    relos: impl IntoIterator<Item = (usize, &'r Reloc)>,
    table: &ExternTable,
    res: &Resolution,
    kconfig_map_fd: Option<RawFd>,
    kernel: Option<&KernelBtfs>,
) -> Result<(), ExternError> {
    for (idx, r) in relos {
        let (ext, call) = match r.kind {
            RelocKind::ExternLd64 { ext } => (ext, false),
            RelocKind::ExternCall { ext } => (ext, true),
            _ => continue,
        };
        let d = table
            .descs
            .get(ext)
            .and_then(Option::as_ref)
            .ok_or_else(|| extern_err(&r.sym_name, "used extern has no BTF"))?;
        let value = res.values.get(ext).copied().unwrap_or(ExternValue::Unset);
        if call {
            let Some(insn) = insns.get_mut(idx) else {
                continue;
            };
            insn.set_src(PSEUDO_KFUNC_CALL);
            match value {
                ExternValue::Kfunc { btf_id, fd_idx, .. } => {
                    insn.imm = btf_id as i32;
                    insn.off = fd_idx;
                }
                _ => {
                    // poison_kfunc_call: an invalid call the verifier rejects only if reachable.
                    *insn = Insn::new(CALL, 0, 0, 0, POISON_CALL_KFUNC_BASE + d.libbpf_idx as i32);
                }
            }
            continue;
        }
        if idx + 1 >= insns.len() {
            continue; // checked at open: an ld_imm64 always has its second half
        }
        match (&d.kind, value) {
            (ExternKind::Kconfig { data_off, .. }, _) => {
                let fd = kconfig_map_fd.ok_or_else(|| ExternError::KconfigValue {
                    name: d.name.clone(),
                    msg: "the .kconfig map was not created".into(),
                })?;
                insns[idx].set_src(PSEUDO_MAP_VALUE);
                insns[idx].imm = fd;
                insns[idx + 1].imm = *data_off as i32;
            }
            (
                ExternKind::Ksym { .. },
                ExternValue::BtfVar { btf_id, src } | ExternValue::Kfunc { btf_id, src, .. },
            ) => {
                insns[idx].set_src(PSEUDO_BTF_ID);
                insns[idx].imm = btf_id as i32;
                insns[idx + 1].imm = kernel
                    .and_then(|k| k.fd(src))
                    .map_or(0, |fd| fd.as_raw_fd());
            }
            (ExternKind::Ksym { .. }, v) => {
                let addr = match v {
                    ExternValue::Addr(a) => a,
                    _ => 0,
                };
                insns[idx].imm = addr as u32 as i32;
                insns[idx + 1].imm = (addr >> 32) as u32 as i32;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kcfg(name: &str, weak: bool, off: u32) -> Option<ExternDesc> {
        Some(ExternDesc {
            name: name.into(),
            essent_name: name.into(),
            weak,
            btf_id: 1,
            kind: ExternKind::Kconfig {
                size: 4,
                align: 4,
                ty: KcfgType::Int,
                signed: false,
                data_off: off,
            },
            libbpf_idx: 0,
            used: true,
        })
    }

    fn inputs(text: &'static str) -> ResolveInputs<'static> {
        ResolveInputs {
            kconfig: Some(text),
            kernel_version: 0x061200,
            has_bpf_cookie: true,
            has_syscall_wrapper: false,
        }
    }

    /// Two 3 GiB weak kconfig arrays: their offsets overflow u32 (this used to panic with
    /// "attempt to add with overflow"); the error names the extern. The externs are classified
    /// at open or, failing that, before any map or program is created at load.
    #[test]
    fn hostile_kconfig_sizes_fail_naming_the_extern() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/bpf/hostile/hostile_kconfig.bpf.o");
        let e = match crate::Object::open_file(&path) {
            Err(e) => e.to_string(),
            Ok(obj) => match crate::Loader::new().load(&obj) {
                Ok(_) => panic!("the hostile object loaded"),
                Err(e) => e.to_string(),
            },
        };
        assert!(
            e.contains("CONFIG_A") && e.contains("exceed the kernel's"),
            "{e}"
        );
    }

    /// A `.kconfig` image above the kernel's ARRAY value limit is refused before allocating it.
    #[test]
    fn oversized_kconfig_image_is_refused_before_allocation() {
        let t = ExternTable {
            descs: vec![],
            kconfig_size: 0xC000_0000,
        };
        // Not `unwrap_err`: on failure it would Debug-print a 3 GiB image.
        let Err(e) = resolve(&t, None, &inputs(""), None) else {
            panic!("a 3 GiB .kconfig image was allocated");
        };
        assert!(e.to_string().contains("3221225472 bytes"), "{e}");
    }

    #[test]
    fn virtual_externs() {
        let t = ExternTable {
            descs: vec![
                kcfg("LINUX_KERNEL_VERSION", false, 0),
                kcfg("LINUX_HAS_BPF_COOKIE", false, 4),
                kcfg("LINUX_HAS_SYSCALL_WRAPPER", false, 8),
                kcfg("LINUX_SOMETHING_NEW", true, 12),
            ],
            kconfig_size: 16,
        };
        let r = resolve(&t, None, &inputs(""), None).unwrap();
        let word = |o: usize| u32::from_ne_bytes(r.kconfig_image[o..o + 4].try_into().unwrap());
        assert_eq!((word(0), word(4), word(8), word(12)), (0x061200, 1, 0, 0));
        // An unknown LINUX_ extern must be weak.
        let t = ExternTable {
            descs: vec![kcfg("LINUX_SOMETHING_NEW", false, 0)],
            kconfig_size: 4,
        };
        let e = resolve(&t, None, &inputs(""), None).unwrap_err();
        assert!(
            e.to_string().contains("LINUX_SOMETHING_NEW") && e.to_string().contains("unrecognized"),
            "{e}"
        );
    }

    #[test]
    fn strong_missing_config_names_the_extern_and_weak_is_zero() {
        // The user text sets A; B is in no kconfig (the system one is consulted too).
        let t = ExternTable {
            descs: vec![
                kcfg("CONFIG_BPFLOAD_TEST_A", false, 0),
                kcfg("CONFIG_BPFLOAD_TEST_B", true, 4),
            ],
            kconfig_size: 8,
        };
        let r = resolve(&t, None, &inputs("CONFIG_BPFLOAD_TEST_A=5\n"), None).unwrap();
        assert_eq!(r.values, [ExternValue::Kconfig, ExternValue::Unset]);
        assert_eq!(&r.kconfig_image[..4], &5u32.to_ne_bytes());
        assert_eq!(&r.kconfig_image[4..], &[0; 4]);
        let t = ExternTable {
            descs: vec![kcfg("CONFIG_BPFLOAD_TEST_B", false, 0)],
            kconfig_size: 4,
        };
        match resolve(&t, None, &inputs(""), None) {
            Err(ExternError::Unresolved { name }) => assert_eq!(name, "CONFIG_BPFLOAD_TEST_B"),
            // Without any system kconfig the error names the files instead.
            Err(ExternError::Kconfig(msg)) => assert!(msg.contains("config"), "{msg}"),
            other => panic!("{other:?}"),
        }
    }
}
