//! libbpf's three type relations for CO-RE:
//! - fields are compatible (`bpf_core_fields_are_compat`): field relocations;
//! - types are compatible (`bpf_core_types_are_compat`): type relocations;
//! - types match (`bpf_core_types_match`): TYPE_MATCHES, stricter.
//!
//! All three return `Ok(false)` for "no", and an error where libbpf returns
//! a negative errno (which aborts the whole relocation in libbpf too).

use super::view::{essential_name, k, skip_mods_and_typedefs, Ty, View, ViewError};

/// libbpf's `btf_kind_core_compat`: same kind, or both enums (ENUM vs ENUM64).
pub(crate) fn kind_core_compat(a: &Ty<'_>, b: &Ty<'_>) -> bool {
    a.kind == b.kind || (a.is_any_enum() && b.is_any_enum())
}

/// Depth limit on the number of chained type hops (libbpf: 32).
const MAX_DEPTH: i32 = 32;

pub(crate) fn fields_are_compat(
    local: &dyn View,
    mut local_id: u32,
    targ: &dyn View,
    mut targ_id: u32,
) -> Result<bool, ViewError> {
    // libbpf loops without bound here; arrays of arrays are the only recursion.
    for _ in 0..MAX_DEPTH * 2 {
        let lt = skip_mods_and_typedefs(local, local_id)?;
        let tt = skip_mods_and_typedefs(targ, targ_id)?;
        if lt.is_composite() && tt.is_composite() {
            return Ok(true);
        }
        if !kind_core_compat(&lt, &tt) {
            return Ok(false);
        }
        match lt.kind {
            k::PTR | k::FLOAT => return Ok(true),
            k::FWD | k::ENUM | k::ENUM64 => {
                let ln = essential_name(lt.name);
                let tn = essential_name(tt.name);
                return Ok(ln.is_empty() || tn.is_empty() || ln == tn);
            }
            k::INT => {
                return Ok(local.int(lt.id)?.offset == 0 && targ.int(tt.id)?.offset == 0);
            }
            k::ARRAY => {
                local_id = local.array(lt.id)?.0;
                targ_id = targ.array(tt.id)?.0;
            }
            _ => return Ok(false),
        }
    }
    Err(ViewError::TooDeep(targ_id))
}

/// `bpf_core_types_are_compat` (level 32): names were already matched by the
/// caller (candidate search).
pub(crate) fn types_are_compat(
    local: &dyn View,
    local_id: u32,
    targ: &dyn View,
    targ_id: u32,
) -> Result<bool, ViewError> {
    types_are_compat_lvl(local, local_id, targ, targ_id, 32)
}

fn types_are_compat_lvl(
    local: &dyn View,
    mut local_id: u32,
    targ: &dyn View,
    mut targ_id: u32,
    level: i32,
) -> Result<bool, ViewError> {
    let lt = local.ty(local_id)?;
    let tt = targ.ty(targ_id)?;
    if !kind_core_compat(&lt, &tt) {
        return Ok(false);
    }
    let mut depth = MAX_DEPTH;
    loop {
        depth -= 1;
        if depth < 0 {
            return Err(ViewError::TooDeep(targ_id));
        }
        let lt = skip_mods_and_typedefs(local, local_id)?;
        let tt = skip_mods_and_typedefs(targ, targ_id)?;
        if !kind_core_compat(&lt, &tt) {
            return Ok(false);
        }
        match lt.kind {
            k::UNKN | k::STRUCT | k::UNION | k::ENUM | k::FWD | k::ENUM64 => return Ok(true),
            k::INT => {
                return Ok(local.int(lt.id)?.offset == 0 && targ.int(tt.id)?.offset == 0);
            }
            k::PTR => {
                local_id = lt.size_or_type;
                targ_id = tt.size_or_type;
            }
            k::ARRAY => {
                local_id = local.array(lt.id)?.0;
                targ_id = targ.array(tt.id)?.0;
            }
            k::FUNC_PROTO => {
                if lt.vlen != tt.vlen {
                    return Ok(false);
                }
                for i in 0..lt.vlen as u32 {
                    if level <= 0 {
                        return Err(ViewError::TooDeep(targ_id));
                    }
                    let lp = skip_mods_and_typedefs(local, local.param_type(lt.id, i)?)?.id;
                    let tp = skip_mods_and_typedefs(targ, targ.param_type(tt.id, i)?)?.id;
                    if !types_are_compat_lvl(local, lp, targ, tp, level - 1)? {
                        return Ok(false);
                    }
                }
                local_id = skip_mods_and_typedefs(local, lt.size_or_type)?.id;
                targ_id = skip_mods_and_typedefs(targ, tt.size_or_type)?.id;
            }
            _ => return Ok(false),
        }
    }
}

/// libbpf's `bpf_core_names_match` (essential names, empty target name only
/// matches an empty local name).
fn names_match(local_name: &str, targ_name: &str) -> bool {
    if targ_name.is_empty() {
        return local_name.is_empty();
    }
    essential_name(local_name) == essential_name(targ_name)
}

fn enums_match(
    local: &dyn View,
    lt: &Ty<'_>,
    targ: &dyn View,
    tt: &Ty<'_>,
) -> Result<bool, ViewError> {
    if lt.size_or_type != tt.size_or_type || lt.vlen > tt.vlen {
        return Ok(false);
    }
    'local: for i in 0..lt.vlen as u32 {
        let (ln, _) = local.enumerator(lt.id, i)?;
        for j in 0..tt.vlen as u32 {
            let (tn, _) = targ.enumerator(tt.id, j)?;
            if names_match(ln, tn) {
                continue 'local;
            }
        }
        return Ok(false);
    }
    Ok(true)
}

fn composites_match(
    local: &dyn View,
    lt: &Ty<'_>,
    targ: &dyn View,
    tt: &Ty<'_>,
    behind_ptr: bool,
    level: i32,
) -> Result<bool, ViewError> {
    if lt.vlen > tt.vlen {
        return Ok(false);
    }
    'local: for i in 0..lt.vlen as u32 {
        let lm = local.member(lt.id, i)?;
        for j in 0..tt.vlen as u32 {
            let tm = targ.member(tt.id, j)?;
            if !names_match(lm.name, tm.name) {
                continue;
            }
            if types_match_lvl(local, lm.type_id, targ, tm.type_id, behind_ptr, level - 1)? {
                continue 'local;
            }
        }
        return Ok(false);
    }
    Ok(true)
}

/// `bpf_core_types_match` (level 32, not behind a pointer).
pub(crate) fn types_match(
    local: &dyn View,
    local_id: u32,
    targ: &dyn View,
    targ_id: u32,
) -> Result<bool, ViewError> {
    types_match_lvl(local, local_id, targ, targ_id, false, 32)
}

fn types_match_lvl(
    local: &dyn View,
    mut local_id: u32,
    targ: &dyn View,
    mut targ_id: u32,
    mut behind_ptr: bool,
    level: i32,
) -> Result<bool, ViewError> {
    if level <= 0 {
        return Err(ViewError::TooDeep(targ_id));
    }
    let mut depth = MAX_DEPTH;
    loop {
        depth -= 1;
        if depth < 0 {
            return Err(ViewError::TooDeep(targ_id));
        }
        let lt = skip_mods_and_typedefs(local, local_id)?;
        let tt = skip_mods_and_typedefs(targ, targ_id)?;
        if !names_match(lt.name, tt.name) {
            return Ok(false);
        }
        match lt.kind {
            k::UNKN => return Ok(tt.kind == k::UNKN),
            k::FWD => {
                return Ok(if behind_ptr {
                    if tt.kind == k::FWD {
                        lt.kflag == tt.kflag
                    } else {
                        // kflag says whether the forward is for a union
                        (tt.kind == k::STRUCT && !lt.kflag) || (tt.kind == k::UNION && lt.kflag)
                    }
                } else {
                    tt.kind == k::FWD && lt.kflag == tt.kflag
                });
            }
            k::ENUM | k::ENUM64 => {
                if !tt.is_any_enum() {
                    return Ok(false);
                }
                return enums_match(local, &lt, targ, &tt);
            }
            k::STRUCT | k::UNION => {
                if behind_ptr {
                    if lt.kind == tt.kind {
                        return Ok(true);
                    }
                    if tt.kind != k::FWD {
                        return Ok(false);
                    }
                    return Ok((lt.kind == k::UNION) == tt.kflag);
                }
                if lt.kind != tt.kind {
                    return Ok(false);
                }
                return composites_match(local, &lt, targ, &tt, behind_ptr, level);
            }
            k::INT => {
                if tt.kind != k::INT {
                    return Ok(false);
                }
                let (li, ti) = (local.int(lt.id)?, targ.int(tt.id)?);
                return Ok(lt.size_or_type == tt.size_or_type && li.signed == ti.signed);
            }
            k::PTR => {
                if tt.kind != k::PTR {
                    return Ok(false);
                }
                behind_ptr = true;
                local_id = lt.size_or_type;
                targ_id = tt.size_or_type;
            }
            k::ARRAY => {
                if tt.kind != k::ARRAY {
                    return Ok(false);
                }
                let (le, ln) = local.array(lt.id)?;
                let (te, tn) = targ.array(tt.id)?;
                if ln != tn {
                    return Ok(false);
                }
                local_id = le;
                targ_id = te;
            }
            k::FUNC_PROTO => {
                if tt.kind != k::FUNC_PROTO || lt.vlen != tt.vlen {
                    return Ok(false);
                }
                for i in 0..lt.vlen as u32 {
                    let lp = local.param_type(lt.id, i)?;
                    let tp = targ.param_type(tt.id, i)?;
                    if !types_match_lvl(local, lp, targ, tp, behind_ptr, level - 1)? {
                        return Ok(false);
                    }
                }
                local_id = lt.size_or_type;
                targ_id = tt.size_or_type;
            }
            _ => return Ok(false),
        }
    }
}
