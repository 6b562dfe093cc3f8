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
    let bit_off = spec.bit_offset;

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
        // smallest load that covers the whole bitfield, in libbpf's __u32
        // arithmetic: for a base type of 2^29 bytes or more `bsz * 8` wraps,
        // and where it wraps below the field's end libbpf reports a bitfield
        // no load can read (-E2BIG)
        while bit_off
            .wrapping_add(bit_sz)
            .wrapping_sub(boff.wrapping_mul(8))
            > bsz.wrapping_mul(8)
        {
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
            // libbpf picks the formula by the byte order it was built for
            // (`__BYTE_ORDER`), not by the target's
            fv.val = lshift_u64(
                cfg!(target_endian = "big"),
                bit_off,
                bit_sz,
                byte_off,
                byte_sz,
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

/// FIELD_LSHIFT_U64: the left shift that puts the bitfield's top bit at bit
/// 63 of the `byte_sz`-byte load at `byte_off` (then RSHIFT_U64 moves it
/// down). In libbpf's __u32 arithmetic, which wraps on hostile input.
fn lshift_u64(big_endian: bool, bit_off: u32, bit_sz: u32, byte_off: u32, byte_sz: u32) -> u32 {
    if big_endian {
        // the loaded bytes end up in the low bytes of the register, first
        // byte most significant: skip the unused high bytes, then the bits
        // before the field
        8u32.wrapping_sub(byte_sz)
            .wrapping_mul(8)
            .wrapping_add(bit_off.wrapping_sub(byte_off.wrapping_mul(8)))
    } else {
        // the field's last bit is bit (bit_off + bit_sz - byte_off * 8) - 1
        // of the load
        64u32.wrapping_sub(
            bit_off
                .wrapping_add(bit_sz)
                .wrapping_sub(byte_off.wrapping_mul(8)),
        )
    }
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

#[cfg(test)]
mod tests {
    use super::lshift_u64;

    #[test]
    fn lshift_formula_follows_byte_order() {
        // a 4-bit field at bit 32, read with a 1-byte load at byte 4: on
        // little-endian it is the byte's low nibble (shift 60 puts its top
        // bit at 63), on big-endian its high nibble (shift 56)
        assert_eq!(lshift_u64(false, 32, 4, 4, 1), 60);
        assert_eq!(lshift_u64(true, 32, 4, 4, 1), 56);
        // a 10-bit field at bit 6, 2-byte load at 0: 64 - 16 = 48 on LE,
        // (8 - 2) * 8 + 6 = 54 on BE
        assert_eq!(lshift_u64(false, 6, 10, 0, 2), 48);
        assert_eq!(lshift_u64(true, 6, 10, 0, 2), 54);
        // a whole u64 (not a bitfield: bit_sz = 64): no shift either way
        assert_eq!(lshift_u64(false, 64, 64, 8, 8), 0);
        assert_eq!(lshift_u64(true, 64, 64, 8, 8), 0);
        // libbpf's __u32 arithmetic wraps on hostile sizes
        assert_eq!(lshift_u64(false, 0, 65, 0, 8), u32::MAX);
        assert_eq!(lshift_u64(true, 0, 4, 0, 9), u32::MAX - 7);
    }
}
