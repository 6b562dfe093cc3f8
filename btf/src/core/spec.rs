//! Access specs: the parsed access string of a relocation on the local side
//! (`bpf_core_parse_spec`) and its counterpart found in a target candidate
//! (`bpf_core_spec_match`).
//!
//! The low-level spec (`raw`) has one index per access-string element,
//! including anonymous struct/union hops; the high-level spec (`acc`) keeps
//! only the named fields and array indices, which is what is matched by name
//! against the target.

use std::fmt::Write as _;

use super::compat::{fields_are_compat, types_are_compat, types_match};
use super::view::{essential_name, resolve_size, skip_mods_and_typedefs, View, ViewError};
use super::CoreReloKind;

/// libbpf's BPF_CORE_SPEC_MAX_LEN.
pub(crate) const SPEC_MAX_LEN: usize = 64;

/// Upper bound on members visited while searching one field through nested
/// anonymous members, so a hostile target cannot make the search exponential.
const MATCH_BUDGET: u32 = 1 << 20;

/// One high-level accessor: a named field (`name` set, `idx` = member index in
/// `type_id`) or an array index (`name` unset, `type_id` = element type).
#[derive(Debug, Clone)]
pub(crate) struct Accessor {
    pub type_id: u32,
    pub idx: u32,
    pub name: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub root_type_id: u32,
    pub kind: CoreReloKind,
    pub raw: Vec<u32>,
    pub acc: Vec<Accessor>,
    /// libbpf's `__u32 bit_offset`: all arithmetic on it wraps at 32 bits,
    /// so hostile BTF gives libbpf's answers (offsets that agree modulo
    /// 2^32 are not ambiguous there either).
    pub bit_offset: u32,
}

/// Why a local spec cannot be parsed (libbpf: "parsing ... failed").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("malformed access string {0:?}")]
    Syntax(String),
    #[error("access string longer than {SPEC_MAX_LEN} elements")]
    TooLong,
    #[error("type-based relocation needs access string \"0\", got {0:?}")]
    NotZero(String),
    #[error("enum value relocation on a non-enum or bad enumerator index")]
    BadEnum,
    #[error("member index {idx} out of range for type [{type_id}]")]
    MemberIndex { type_id: u32, idx: u32 },
    #[error("array index {idx} out of range (nelems {nelems})")]
    ArrayIndex { idx: u32, nelems: u32 },
    #[error("anonymous member used as a named accessor")]
    EmptyName,
    #[error("access string step {step} goes through type [{type_id}], a {kind}")]
    UnexpectedKind {
        step: usize,
        type_id: u32,
        kind: &'static str,
    },
    #[error(transparent)]
    Btf(#[from] ViewError),
}

fn is_flex_arr(v: &dyn View, parent: Option<&Accessor>, nelems: u32) -> Result<bool, ViewError> {
    // a flexible array is a zero-length array that is the last member of the
    // struct holding it
    let Some(parent) = parent else {
        return Ok(false);
    };
    if parent.name.is_none() || nelems > 0 {
        return Ok(false);
    }
    let t = v.ty(parent.type_id)?;
    Ok(t.vlen > 0 && parent.idx == t.vlen as u32 - 1)
}

/// Parses the raw access string ("0:1:2") into indices.
fn parse_access(s: &str) -> Result<Vec<u32>, SpecError> {
    if s.is_empty() || s.starts_with(':') {
        return Err(SpecError::Syntax(s.to_owned()));
    }
    let mut raw = Vec::new();
    for part in s.split(':') {
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SpecError::Syntax(s.to_owned()));
        }
        if raw.len() == SPEC_MAX_LEN {
            return Err(SpecError::TooLong);
        }
        // libbpf parses with %d: values beyond i32 are not meaningful
        let v: u32 = part.parse().map_err(|_| SpecError::Syntax(s.to_owned()))?;
        if v > i32::MAX as u32 {
            return Err(SpecError::Syntax(s.to_owned()));
        }
        raw.push(v);
    }
    Ok(raw)
}

/// `bpf_core_parse_spec`.
// Out of line: smaller code where it was inlined (issue 8: binary size).
#[inline(never)]
pub(crate) fn parse_spec(
    v: &dyn View,
    type_id: u32,
    access: &str,
    kind: CoreReloKind,
) -> Result<Spec, SpecError> {
    if access.is_empty() || access.starts_with(':') {
        return Err(SpecError::Syntax(access.to_owned()));
    }
    let mut spec = Spec {
        root_type_id: type_id,
        kind,
        raw: Vec::new(),
        acc: Vec::new(),
        bit_offset: 0,
    };
    if kind.is_type_based() {
        if access != "0" {
            return Err(SpecError::NotZero(access.to_owned()));
        }
        return Ok(spec);
    }
    spec.raw = parse_access(access)?;
    let first = spec.raw[0];
    let t = skip_mods_and_typedefs(v, type_id)?;
    let mut id = t.id;
    spec.acc.push(Accessor {
        type_id: id,
        idx: first,
        name: None,
    });

    if kind.is_enumval_based() {
        if !t.is_any_enum() || spec.raw.len() > 1 || first >= t.vlen as u32 {
            return Err(SpecError::BadEnum);
        }
        let (name, _) = v.enumerator(id, first)?;
        spec.acc[0].name = Some(name.to_owned());
        return Ok(spec);
    }

    let sz = resolve_size(v, id)?;
    // libbpf computes this in (overflowing) 64-bit arithmetic and stores it
    // in a __u32: the truncation keeps the low 32 bits; never panic
    spec.bit_offset = (first as u64).wrapping_mul(sz).wrapping_mul(8) as u32;

    for step in 1..spec.raw.len() {
        let idx = spec.raw[step];
        let t = skip_mods_and_typedefs(v, id)?;
        id = t.id;
        if t.is_composite() {
            if idx >= t.vlen as u32 {
                return Err(SpecError::MemberIndex { type_id: id, idx });
            }
            let m = v.member(id, idx)?;
            spec.bit_offset = spec.bit_offset.wrapping_add(m.bit_offset);
            if !m.name.is_empty() {
                spec.acc.push(Accessor {
                    type_id: id,
                    idx,
                    name: Some(m.name.to_owned()),
                });
            }
            id = m.type_id;
        } else if t.kind == super::view::k::ARRAY {
            let (elem, nelems) = v.array(id)?;
            let et = skip_mods_and_typedefs(v, elem)?;
            id = et.id;
            let flex = is_flex_arr(v, spec.acc.last(), nelems)?;
            if !flex && idx >= nelems {
                return Err(SpecError::ArrayIndex { idx, nelems });
            }
            spec.acc.push(Accessor {
                type_id: id,
                idx,
                name: None,
            });
            let sz = resolve_size(v, id)?;
            spec.bit_offset = spec
                .bit_offset
                .wrapping_add((idx as u64).wrapping_mul(sz).wrapping_mul(8) as u32);
        } else {
            return Err(SpecError::UnexpectedKind {
                step,
                type_id: id,
                kind: t.kind_name(),
            });
        }
    }
    Ok(spec)
}

/// `bpf_core_match_member`: find the local named field in target composite
/// `targ_id`, descending into anonymous members. `Ok(Some(next_type))` when
/// found and compatible.
fn match_member(
    local: &dyn View,
    local_acc: &Accessor,
    targ: &dyn View,
    targ_id: u32,
    spec: &mut Spec,
    budget: &mut u32,
) -> Result<Option<u32>, MatchError> {
    let tt = skip_mods_and_typedefs(targ, targ_id)?;
    if !tt.is_composite() {
        return Ok(None);
    }
    let targ_id = tt.id;
    let local_member = local.member(local_acc.type_id, local_acc.idx)?;
    for i in 0..tt.vlen as u32 {
        if *budget == 0 {
            return Err(MatchError::TooComplex);
        }
        *budget -= 1;
        let m = targ.member(targ_id, i)?;
        if spec.raw.len() == SPEC_MAX_LEN {
            return Err(MatchError::TooDeep);
        }
        spec.bit_offset = spec.bit_offset.wrapping_add(m.bit_offset);
        spec.raw.push(i);
        if m.name.is_empty() {
            // embedded anonymous struct/union: go deeper
            if let Some(next) = match_member(local, local_acc, targ, m.type_id, spec, budget)? {
                return Ok(Some(next));
            }
        } else if m.name == local_member.name {
            spec.acc.push(Accessor {
                type_id: targ_id,
                idx: i,
                name: Some(m.name.to_owned()),
            });
            if fields_are_compat(local, local_member.type_id, targ, m.type_id)? {
                return Ok(Some(m.type_id));
            }
            // libbpf stops at the first member with the right name, popping
            // only the accessor: the member's bit offset and raw index stay.
            // At the top level the candidate is dropped anyway; inside an
            // anonymous member the enclosing loop goes on searching with
            // them still added (reachable only with duplicate member names,
            // which C cannot produce), and libbpf's answer is what we give.
            spec.acc.pop();
            return Ok(None);
        }
        spec.bit_offset = spec.bit_offset.wrapping_sub(m.bit_offset);
        spec.raw.pop();
    }
    Ok(None)
}

/// Errors while matching a candidate; libbpf aborts the relocation on these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    #[error("target spec deeper than {SPEC_MAX_LEN} elements")]
    TooDeep,
    #[error("target type nesting too complex to search")]
    TooComplex,
    #[error(transparent)]
    Btf(#[from] ViewError),
}

/// `bpf_core_spec_match`: `Ok(None)` if the candidate does not match.
// Out of line: smaller code where it was inlined (issue 8: binary size).
#[inline(never)]
pub(crate) fn spec_match(
    local: &dyn View,
    local_spec: &Spec,
    targ: &dyn View,
    targ_id: u32,
) -> Result<Option<Spec>, MatchError> {
    let mut ts = Spec {
        root_type_id: targ_id,
        kind: local_spec.kind,
        raw: Vec::new(),
        acc: Vec::new(),
        bit_offset: 0,
    };
    let kind = local_spec.kind;
    if kind.is_type_based() {
        let ok = if kind == CoreReloKind::TypeMatches {
            types_match(local, local_spec.root_type_id, targ, targ_id)?
        } else {
            types_are_compat(local, local_spec.root_type_id, targ, targ_id)?
        };
        return Ok(ok.then_some(ts));
    }
    if kind.is_enumval_based() {
        let tt = skip_mods_and_typedefs(targ, targ_id)?;
        if !tt.is_any_enum() {
            return Ok(None);
        }
        let local_name = local_spec.acc[0].name.as_deref().unwrap_or("");
        let local_ess = essential_name(local_name);
        for i in 0..tt.vlen as u32 {
            let (name, _) = targ.enumerator(tt.id, i)?;
            if essential_name(name) == local_ess {
                ts.acc.push(Accessor {
                    type_id: tt.id,
                    idx: i,
                    name: Some(name.to_owned()),
                });
                ts.raw.push(i);
                return Ok(Some(ts));
            }
        }
        return Ok(None);
    }

    let mut targ_id = targ_id;
    let mut budget = MATCH_BUDGET;
    for (i, la) in local_spec.acc.iter().enumerate() {
        let tt = skip_mods_and_typedefs(targ, targ_id)?;
        targ_id = tt.id;
        if la.name.is_some() {
            match match_member(local, la, targ, targ_id, &mut ts, &mut budget)? {
                Some(next) => targ_id = next,
                None => return Ok(None),
            }
        } else {
            // for i == 0 the root type itself is the "array element"
            if i > 0 {
                if tt.kind != super::view::k::ARRAY {
                    return Ok(None);
                }
                let (elem, nelems) = targ.array(targ_id)?;
                let flex = is_flex_arr(targ, ts.acc.last(), nelems)?;
                if !flex && la.idx >= nelems {
                    return Ok(None);
                }
                targ_id = skip_mods_and_typedefs(targ, elem)?.id;
            }
            if ts.raw.len() == SPEC_MAX_LEN {
                return Err(MatchError::TooDeep);
            }
            ts.acc.push(Accessor {
                type_id: targ_id,
                idx: la.idx,
                name: None,
            });
            ts.raw.push(la.idx);
            let sz = resolve_size(targ, targ_id)?;
            ts.bit_offset = ts
                .bit_offset
                .wrapping_add((la.idx as u64).wrapping_mul(sz).wrapping_mul(8) as u32);
        }
    }
    Ok(Some(ts))
}

/// libbpf's `bpf_core_format_spec` text, e.g.
/// `<byte_off> [5] struct task_struct.comm[1] (0:3:1 @ offset 13)`.
pub(crate) fn format_spec(v: &dyn View, spec: &Spec) -> String {
    let mut s = String::new();
    let (kind, name) = match v.ty(spec.root_type_id) {
        Ok(t) => (
            t.kind_name(),
            if t.name.is_empty() { "<anon>" } else { t.name },
        ),
        Err(_) => ("?", "<?>"),
    };
    let _ = write!(
        s,
        "<{}> [{}] {} {}",
        spec.kind.name(),
        spec.root_type_id,
        kind,
        name
    );
    if spec.kind.is_type_based() {
        return s;
    }
    if spec.kind.is_enumval_based() {
        if let (Some(a), Ok(t)) = (
            spec.acc.first(),
            skip_mods_and_typedefs(v, spec.root_type_id),
        ) {
            if let Ok((n, val)) = v.enumerator(t.id, a.idx) {
                if t.kflag {
                    let _ = write!(
                        s,
                        "::{} = {}",
                        n,
                        if t.kind == super::view::k::ENUM {
                            val as i32 as i64
                        } else {
                            val as i64
                        }
                    );
                } else if t.kind == super::view::k::ENUM {
                    let _ = write!(s, "::{} = {}", n, val as u32);
                } else {
                    let _ = write!(s, "::{} = {}", n, val);
                }
            }
        }
        return s;
    }
    for (i, a) in spec.acc.iter().enumerate() {
        match &a.name {
            Some(n) => {
                let _ = write!(s, ".{n}");
            }
            None if i > 0 || a.idx > 0 => {
                let _ = write!(s, "[{}]", a.idx);
            }
            None => {}
        }
    }
    s.push_str(" (");
    for (i, r) in spec.raw.iter().enumerate() {
        let _ = write!(s, "{}{}", if i == 0 { "" } else { ":" }, r);
    }
    if !spec.bit_offset.is_multiple_of(8) {
        let _ = write!(
            s,
            " @ offset {}.{})",
            spec.bit_offset / 8,
            spec.bit_offset % 8
        );
    } else {
        let _ = write!(s, " @ offset {})", spec.bit_offset / 8);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::parse_access;

    #[test]
    fn access_strings() {
        assert_eq!(parse_access("0").unwrap(), vec![0]);
        assert_eq!(parse_access("0:1:22").unwrap(), vec![0, 1, 22]);
        for bad in ["", ":0", "0:", "0::1", "a", "0:-1", "0: 1", "99999999999"] {
            assert!(parse_access(bad).is_err(), "{bad:?}");
        }
        let long = vec!["1"; 65].join(":");
        assert!(parse_access(&long).is_err());
        let ok = vec!["1"; 64].join(":");
        assert_eq!(parse_access(&ok).unwrap().len(), 64);
    }
}
