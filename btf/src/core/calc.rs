//! Computing a relocation's original (local) and new (target) values:
//! libbpf's `bpf_core_calc_{field,type,enumval}_relo` and `bpf_core_calc_relo`.

use super::spec::Spec;
use super::view::{k, resolve_size, skip_mods_and_typedefs, View, ViewError};
use super::CoreReloKind;

/// The outcome for one relocation (libbpf's `bpf_core_relo_res`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ReloRes {
    pub orig_val: u64,
    pub new_val: u64,
    pub poison: bool,
    /// Check that the instruction holds `orig_val` before patching.
    pub validate: bool,
    /// Load/store size would have to change in an unsafe way.
    pub fail_memsz_adjust: bool,
    pub orig_sz: u32,
    pub new_sz: u32,
    pub orig_type_id: u32,
    pub new_type_id: u32,
}

/// Relocation errors that libbpf treats as fatal (not poisoning).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalcError {
    #[error("relocation {0} can't be applied to array access")]
    ArrayAccess(CoreReloKind),
    #[error("relocation can't be satisfied for bitfield (needs a read wider than 64 bits)")]
    Bitfield,
    #[error("bitfield's base type has size 0")]
    ZeroSizeBitfield,
    #[error(transparent)]
    Btf(#[from] ViewError),
}

struct FieldVal {
    val: u64,
    field_sz: u32,
    type_id: u32,
    validate: bool,
}

enum Field {
    Val(FieldVal),
    /// libbpf's -EUCLEAN: the instruction must be poisoned.
    Poison,
}

fn calc_field(v: &dyn View, kind: CoreReloKind, spec: Option<&Spec>) -> Result<Field, CalcError> {
    if kind == CoreReloKind::FieldExists {
        return Ok(Field::Val(FieldVal {
            val: spec.is_some() as u64,
            field_sz: 0,
            type_id: 0,
            validate: true,
        }));
    }
    let Some(spec) = spec else {
        return Ok(Field::Poison);
    };
    let Some(acc) = spec.acc.last() else {
        return Err(CalcError::Btf(ViewError::NoType(0)));
    };
    // libbpf keeps bit offsets in a __u32
    let bit_off = spec.bit_offset as u32;

    if acc.name.is_none() {
        // an array element a[n]
        let sz = resolve_size(v, acc.type_id)?;
        let fv = match kind {
            CoreReloKind::FieldByteOffset => FieldVal {
                val: (bit_off / 8) as u64,
                field_sz: sz as u32,
                type_id: acc.type_id,
                validate: true,
            },
            CoreReloKind::FieldByteSize => FieldVal {
                val: sz,
                field_sz: 0,
                type_id: 0,
                validate: true,
            },
            _ => return Err(CalcError::ArrayAccess(kind)),
        };
        return Ok(Field::Val(fv));
    }

    let m = v.member(acc.type_id, acc.idx)?;
    let mt = skip_mods_and_typedefs(v, m.type_id)?;
    let field_type_id = mt.id;
    let mut bit_sz = m.bitfield_size;
    let bitfield = bit_sz > 0;
    let (byte_off, byte_sz);
    if bitfield {
        let mut bsz = mt.size_or_type;
        if bsz == 0 {
            return Err(CalcError::ZeroSizeBitfield);
        }
        let mut boff = bit_off / 8 / bsz * bsz;
        // smallest load that covers the whole bitfield
        while (bit_off as u64 + bit_sz as u64 - boff as u64 * 8) > bsz as u64 * 8 {
            if bsz >= 8 {
                return Err(CalcError::Bitfield);
            }
            bsz *= 2;
            boff = bit_off / 8 / bsz * bsz;
        }
        byte_sz = bsz;
        byte_off = boff;
    } else {
        let sz = resolve_size(v, field_type_id)?;
        byte_sz = sz as u32;
        byte_off = bit_off / 8;
        bit_sz = byte_sz.wrapping_mul(8);
    }
    // bitfield offsets and sizes are ambiguous (the compiler may have chosen
    // another load size), so only signedness and rshift are validated for them
    let mut fv = FieldVal {
        val: 0,
        field_sz: 0,
        type_id: 0,
        validate: !bitfield,
    };
    match kind {
        CoreReloKind::FieldByteOffset => {
            fv.val = byte_off as u64;
            if !bitfield {
                fv.field_sz = byte_sz;
                fv.type_id = field_type_id;
            }
        }
        CoreReloKind::FieldByteSize => fv.val = byte_sz as u64,
        CoreReloKind::FieldSigned => {
            let signed = (mt.is_any_enum() && mt.kflag)
                || (mt.kind == k::INT && v.int(mt.id)?.encoding & 1 != 0);
            fv.val = signed as u64;
            fv.validate = true;
        }
        CoreReloKind::FieldLShiftU64 => {
            // little-endian target; libbpf computes this in 32-bit unsigned
            fv.val = 64u32.wrapping_sub(
                bit_off
                    .wrapping_add(bit_sz)
                    .wrapping_sub(byte_off.wrapping_mul(8)),
            ) as u64;
        }
        CoreReloKind::FieldRShiftU64 => {
            fv.val = 64u32.wrapping_sub(bit_sz) as u64;
            fv.validate = true;
        }
        _ => unreachable!("field kinds only"),
    }
    Ok(Field::Val(fv))
}

fn calc_type(
    v: &dyn View,
    kind: CoreReloKind,
    spec: Option<&Spec>,
) -> Result<(u64, bool), CalcError> {
    let Some(spec) = spec else {
        return Ok((0, true));
    };
    Ok(match kind {
        // type ids can change during linking: never validated
        CoreReloKind::TypeIdTarget => (spec.root_type_id as u64, false),
        CoreReloKind::TypeExists | CoreReloKind::TypeMatches => (1, true),
        CoreReloKind::TypeSize => (resolve_size(v, spec.root_type_id)?, true),
        _ => unreachable!("type kinds only (TYPE_ID_LOCAL is handled earlier)"),
    })
}

/// `None` = poison.
fn calc_enumval(
    v: &dyn View,
    kind: CoreReloKind,
    spec: Option<&Spec>,
) -> Result<Option<u64>, CalcError> {
    match kind {
        CoreReloKind::EnumvalExists => Ok(Some(spec.is_some() as u64)),
        _ => {
            let Some(spec) = spec else { return Ok(None) };
            let a = &spec.acc[0];
            Ok(Some(v.enumerator(a.type_id, a.idx)?.1))
        }
    }
}

/// `bpf_core_calc_relo`: `targ` is `None` when no candidate matched.
pub(crate) fn calc_relo(
    local: &dyn View,
    local_spec: &Spec,
    targ: Option<(&dyn View, &Spec)>,
) -> Result<ReloRes, CalcError> {
    let kind = local_spec.kind;
    let mut res = ReloRes {
        validate: true,
        ..Default::default()
    };
    if kind.is_field_based() {
        let orig = match calc_field(local, kind, Some(local_spec))? {
            Field::Val(f) => f,
            Field::Poison => {
                res.poison = true;
                return Ok(res);
            }
        };
        res.orig_val = orig.val;
        res.orig_sz = orig.field_sz;
        res.orig_type_id = orig.type_id;
        res.validate = orig.validate;
        let new = match targ {
            Some((tv, ts)) => calc_field(tv, kind, Some(ts))?,
            None => calc_field(local, kind, None)?,
        };
        let new = match new {
            Field::Val(f) => f,
            Field::Poison => {
                res.poison = true;
                return Ok(res);
            }
        };
        res.new_val = new.val;
        res.new_sz = new.field_sz;
        res.new_type_id = new.type_id;
        if res.orig_sz != res.new_sz {
            if let Some((tv, _)) = targ {
                // only safe when zero-extension preserves the value: pointers
                // (32-bit kernel pointers) and unsigned integers
                let ot = local.ty(res.orig_type_id)?;
                let nt = tv.ty(res.new_type_id)?;
                let safe = (ot.kind == k::PTR && nt.kind == k::PTR)
                    || (ot.kind == k::INT
                        && nt.kind == k::INT
                        && local.int(ot.id)?.encoding != 1
                        && tv.int(nt.id)?.encoding != 1);
                res.fail_memsz_adjust = !safe;
            }
        }
    } else if kind.is_type_based() {
        let (orig, validate) = calc_type(local, kind, Some(local_spec))?;
        res.orig_val = orig;
        res.validate = validate;
        res.new_val = match targ {
            Some((tv, ts)) => calc_type(tv, kind, Some(ts))?.0,
            None => calc_type(local, kind, None)?.0,
        };
    } else {
        let Some(orig) = calc_enumval(local, kind, Some(local_spec))? else {
            res.poison = true;
            return Ok(res);
        };
        res.orig_val = orig;
        let new = match targ {
            Some((tv, ts)) => calc_enumval(tv, kind, Some(ts))?,
            None => calc_enumval(local, kind, None)?,
        };
        match new {
            Some(n) => res.new_val = n,
            None => res.poison = true,
        }
    }
    Ok(res)
}
