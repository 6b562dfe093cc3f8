//! BTF sanitization for older kernels: libbpf's `bpf_object__sanitize_btf` table, driven by a
//! lazy feature callback (the `probe` crate answers it; this crate makes no syscalls).

use crate::error::BtfError;
use crate::model::{BtfModel, BtfType, TypeBody};
use crate::raw::{FuncLinkage, Kind};
use crate::types::Member;

/// A kernel BTF feature that decides a sanitization rewrite (libbpf's `FEAT_BTF_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BtfFeature {
    /// FUNC and FUNC_PROTO (`FEAT_BTF_FUNC`).
    Func,
    /// FUNC with global linkage (`FEAT_BTF_GLOBAL_FUNC`).
    GlobalFunc,
    /// VAR and DATASEC (`FEAT_BTF_DATASEC`).
    Datasec,
    /// DATASEC names starting with '?' (`FEAT_BTF_QMARK_DATASEC`).
    QmarkDatasec,
    /// FLOAT (`FEAT_BTF_FLOAT`).
    Float,
    /// DECL_TAG (`FEAT_BTF_DECL_TAG`).
    DeclTag,
    /// TYPE_TAG (`FEAT_BTF_TYPE_TAG`).
    TypeTag,
    /// ENUM64 and signed ENUM (`FEAT_BTF_ENUM64`).
    Enum64,
}

impl BtfFeature {
    pub const ALL: [BtfFeature; 8] = [
        BtfFeature::Func,
        BtfFeature::GlobalFunc,
        BtfFeature::Datasec,
        BtfFeature::QmarkDatasec,
        BtfFeature::Float,
        BtfFeature::DeclTag,
        BtfFeature::TypeTag,
        BtfFeature::Enum64,
    ];
}

/// Asks each feature at most once.
struct Features<'f> {
    ask: &'f mut dyn FnMut(BtfFeature) -> bool,
    known: [Option<bool>; 8],
}

impl Features<'_> {
    fn has(&mut self, f: BtfFeature) -> bool {
        let slot = &mut self.known[f as usize];
        match *slot {
            Some(v) => v,
            None => {
                let v = (self.ask)(f);
                *slot = Some(v);
                v
            }
        }
    }
}

fn int1() -> TypeBody {
    // BTF_INT_ENC(0, 0, 8) with size 1: the safest stand-in (libbpf's comment: 4 bytes could
    // be larger than the original variable and fail validation).
    TypeBody::Int {
        size: 1,
        encoding: 0,
        offset: 0,
        bits: 8,
    }
}

/// Returns a sanitized copy of `model` for a kernel described by `supported`.
///
/// `supported(feature)` is called only for features the BTF actually uses, in a way that could
/// change the result, and at most once per feature. Rewrites (libbpf's table):
///
/// | missing | rewrite |
/// |---|---|
/// | Datasec | VAR → INT (size 1, 8 bits); DATASEC → STRUCT of VAR-named members at `offset * 8`, '.' and '?' in its name → '_' |
/// | DeclTag | DECL_TAG → INT (size 1, 8 bits) |
/// | QmarkDatasec | DATASEC name starting with '?' → '_' |
/// | Func | FUNC_PROTO → ENUM (size 4, params become values); FUNC → TYPEDEF |
/// | GlobalFunc | FUNC linkage → STATIC |
/// | Float | FLOAT → anonymous empty STRUCT of the same size |
/// | TypeTag | TYPE_TAG → anonymous CONST |
/// | Enum64 | ENUM kind_flag cleared; ENUM64 → UNION whose members all point to an added INT `enum64_placeholder` (size 1) at offset 0 |
///
/// Name rewrites change the string in place, as libbpf does.
// Out of line: smaller code where it was inlined (issue 8: binary size).
#[inline(never)]
pub fn sanitize(
    model: &BtfModel,
    supported: &mut dyn FnMut(BtfFeature) -> bool,
) -> Result<BtfModel, BtfError> {
    let mut out = model.clone();
    let mut feat = Features {
        ask: supported,
        known: [None; 8],
    };
    let mut placeholder: Option<u32> = None;
    let n = out.len();
    for id in 1..n {
        let Some(t) = out.get(id) else { continue };
        let name_off = t.name_off;
        let kflag = t.kind_flag;
        let new: Option<BtfType> = match &t.body {
            TypeBody::Var { .. } if !feat.has(BtfFeature::Datasec) => Some(BtfType {
                name_off,
                kind_flag: false,
                body: int1(),
            }),
            TypeBody::DeclTag { .. } if !feat.has(BtfFeature::DeclTag) => Some(BtfType {
                name_off,
                kind_flag: false,
                body: int1(),
            }),
            TypeBody::DataSec { size, vars } => {
                if !feat.has(BtfFeature::Datasec) {
                    let mut members = Vec::with_capacity(vars.len());
                    for v in vars {
                        let var_name = out.get(v.type_id).map(|vt| vt.name_off).ok_or(
                            BtfError::InvalidTypeId {
                                id: v.type_id,
                                count: n,
                            },
                        )?;
                        members.push(Member {
                            name_off: var_name,
                            type_id: v.type_id,
                            bit_offset: v.offset.wrapping_mul(8),
                            bitfield_size: 0,
                        });
                    }
                    let size = *size;
                    out.rewrite_string_in_place(name_off, |_, c| {
                        if c == b'.' || c == b'?' {
                            b'_'
                        } else {
                            c
                        }
                    });
                    Some(BtfType {
                        name_off,
                        kind_flag: false,
                        body: TypeBody::Struct { size, members },
                    })
                } else {
                    if out.str_at(name_off).is_ok_and(|s| s.starts_with('?'))
                        && !feat.has(BtfFeature::QmarkDatasec)
                    {
                        out.rewrite_string_in_place(name_off, |i, c| {
                            if i == 0 && c == b'?' {
                                b'_'
                            } else {
                                c
                            }
                        });
                    }
                    None
                }
            }
            TypeBody::FuncProto { ret, params } if !feat.has(BtfFeature::Func) => {
                let _ = ret;
                Some(BtfType {
                    name_off,
                    kind_flag: false,
                    body: TypeBody::Enum {
                        size: 4,
                        values: params.iter().map(|p| (p.name_off, p.type_id)).collect(),
                    },
                })
            }
            TypeBody::Func { proto, linkage } => {
                if !feat.has(BtfFeature::Func) {
                    Some(BtfType {
                        name_off,
                        kind_flag: false,
                        body: TypeBody::Typedef { target: *proto },
                    })
                } else if *linkage != FuncLinkage::Static && !feat.has(BtfFeature::GlobalFunc) {
                    Some(BtfType {
                        name_off,
                        kind_flag: false,
                        body: TypeBody::Func {
                            proto: *proto,
                            linkage: FuncLinkage::Static,
                        },
                    })
                } else {
                    None
                }
            }
            TypeBody::Float { size } if !feat.has(BtfFeature::Float) => Some(BtfType {
                name_off: 0,
                kind_flag: false,
                body: TypeBody::Struct {
                    size: *size,
                    members: Vec::new(),
                },
            }),
            TypeBody::TypeTag { target } if !feat.has(BtfFeature::TypeTag) => Some(BtfType {
                name_off: 0,
                kind_flag: false,
                body: TypeBody::Const { target: *target },
            }),
            TypeBody::Enum { .. } if kflag && !feat.has(BtfFeature::Enum64) => {
                let mut t = t.clone();
                t.kind_flag = false;
                Some(t)
            }
            TypeBody::Enum64 { size, values } if !feat.has(BtfFeature::Enum64) => {
                let size = *size;
                let names: Vec<u32> = values.iter().map(|v| v.0).collect();
                let ph =
                    *placeholder.get_or_insert_with(|| out.add_int("enum64_placeholder", 1, 0));
                Some(BtfType {
                    name_off,
                    kind_flag: false,
                    body: TypeBody::Union {
                        size,
                        members: names
                            .into_iter()
                            .map(|name_off| Member {
                                name_off,
                                type_id: ph,
                                bit_offset: 0,
                                bitfield_size: 0,
                            })
                            .collect(),
                    },
                })
            }
            _ => None,
        };
        if let Some(new) = new {
            if let Some(slot) = out.get_mut(id) {
                *slot = new;
            }
        }
    }
    debug_assert!(out.kind(0) == Some(Kind::Void));
    Ok(out)
}
