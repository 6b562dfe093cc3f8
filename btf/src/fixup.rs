//! Object BTF fix-ups before loading (libbpf's `btf_fixup_datasec` and `mark_btf_static`).
//!
//! Clang leaves DATASEC sizes and VAR offsets as 0; they come from the ELF section sizes and
//! symbol values. The ELF lives in the loader, so the caller answers through closures.

use crate::error::BtfError;
use crate::model::{BtfModel, TypeBody};
use crate::raw::{FuncLinkage, VarLinkage};

/// What the ELF symbol table says about a global variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VarSymbol {
    /// `st_value`: the variable's offset in its section.
    pub value: u64,
    /// Visibility is STV_HIDDEN or STV_INTERNAL.
    pub hidden: bool,
}

/// DATASEC names whose sizes and offsets were set when externs were collected; they are only
/// sorted.
const EXTERN_SECS: [&str; 2] = [".kconfig", ".ksyms"];

/// Runs libbpf's `btf_fixup_datasec` on every DATASEC of `model`:
///
/// - `.kconfig` and `.ksyms`: only sort the entries by offset;
/// - otherwise, when the DATASEC size is 0, take it from `section_size(name)` (an error if the
///   section is missing or empty) and take every non-static, non-extern VAR's offset from
///   `var_symbol(var_name)` (`STT_OBJECT` with `STB_GLOBAL`/`STB_WEAK` binding; an error if
///   missing);
/// - such VARs whose symbol is hidden/internal become `static` (also when sizes were already
///   set, as after static linking);
/// - sort the entries by offset (stable, like libbpf's `qsort` on distinct offsets).
// Out of line: smaller code where it was inlined (issue 8: binary size).
#[inline(never)]
pub fn fixup_datasecs(
    model: &mut BtfModel,
    section_size: impl Fn(&str) -> Option<u64>,
    var_symbol: impl Fn(&str) -> Option<VarSymbol>,
) -> Result<(), BtfError> {
    for id in 1..model.len() {
        let Some(t) = model.get(id) else { continue };
        let TypeBody::DataSec { size, vars } = &t.body else {
            continue;
        };
        let sec_name = model.str_at(t.name_off)?.to_owned();
        let err = |reason: String| BtfError::Fixup {
            section: sec_name.clone(),
            reason,
        };
        let mut size = *size;
        let mut vars = vars.clone();
        let mut make_static = Vec::new();
        if !EXTERN_SECS.contains(&sec_name.as_str()) {
            let fixup_offsets = size == 0;
            if fixup_offsets {
                size = match section_size(&sec_name) {
                    Some(s) if s > u64::from(u32::MAX) => {
                        return Err(err(format!(
                            "ELF section size {s} does not fit a DATASEC's 32-bit size"
                        )))
                    }
                    Some(s) if s != 0 => s as u32,
                    s => {
                        return Err(err(format!(
                            "failed to determine size from ELF (size {})",
                            s.unwrap_or(0)
                        )))
                    }
                };
            }
            for (i, v) in vars.iter_mut().enumerate() {
                let Some(var) = model.get(v.type_id) else {
                    return Err(err(format!(
                        "entry #{i} refers to missing type {}",
                        v.type_id
                    )));
                };
                let TypeBody::Var { linkage, .. } = var.body else {
                    return Err(err(format!(
                        "entry #{i}: unexpected non-VAR type [{}] ({})",
                        v.type_id,
                        var.kind()
                    )));
                };
                if matches!(linkage, VarLinkage::Static | VarLinkage::GlobalExtern) {
                    continue;
                }
                let var_name = model.str_at(var.name_off)?;
                let sym = var_symbol(var_name).ok_or_else(|| {
                    err(format!("failed to find ELF symbol for VAR '{var_name}'"))
                })?;
                if fixup_offsets {
                    v.offset = u32::try_from(sym.value).map_err(|_| {
                        err(format!(
                            "VAR '{var_name}': symbol value {} does not fit a DATASEC offset",
                            sym.value
                        ))
                    })?;
                }
                if sym.hidden {
                    make_static.push(v.type_id);
                }
            }
        }
        // Stable by offset (`sort_by_key`), through the crate's shared index sort.
        let mut order: Vec<usize> = (0..vars.len()).collect();
        crate::sort::sort_indices_by(&mut order, &mut |a, b| vars[a].offset.cmp(&vars[b].offset));
        let vars: Vec<_> = order.iter().map(|&i| vars[i]).collect();
        for var_id in make_static {
            if let Some(TypeBody::Var { linkage, .. }) = model.get_mut(var_id).map(|t| &mut t.body)
            {
                *linkage = VarLinkage::Static;
            }
        }
        if let Some(TypeBody::DataSec {
            size: s, vars: v, ..
        }) = model.get_mut(id).map(|t| &mut t.body)
        {
            *s = size;
            *v = vars;
        }
    }
    Ok(())
}

/// Flips the first GLOBAL FUNC named `name` to STATIC, as libbpf does for hidden-visibility
/// global subprograms (`mark_btf_static`). Returns whether one was found.
pub fn mark_func_static(model: &mut BtfModel, name: &str) -> bool {
    let found = model.types().find_map(|(id, t)| match t.body {
        TypeBody::Func {
            linkage: FuncLinkage::Global,
            ..
        } if model.str_at(t.name_off).ok() == Some(name) => Some(id),
        _ => None,
    });
    let Some(id) = found else { return false };
    if let Some(TypeBody::Func { linkage, .. }) = model.get_mut(id).map(|t| &mut t.body) {
        *linkage = FuncLinkage::Static;
    }
    true
}
