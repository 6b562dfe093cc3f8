//! The object-BTF rewrite libbpf does while collecting externs, so that the kernel accepts the
//! object's BTF (it refuses extern-linkage VARs and FUNCs inside a DATASEC):
//! - `.ksyms`: every entry becomes a 4-byte allocated `int` VAR at offset `4*i`; FUNC entries are
//!   replaced by one `dummy_ksym` VAR (added at the end) and their linkage becomes GLOBAL, and
//!   unnamed parameters of their prototypes take the dummy's name;
//! - `.kconfig`: VARs become allocated, with the offsets [`classify`](super::classify) computed,
//!   and the DATASEC size is the image size.
//!
//! Call it on the model before `fixup_datasecs` (which only sorts these two sections).

use bpfload_btf::{BtfModel, FuncLinkage, Kind, TypeBody, VarLinkage};

use super::{ExternKind, ExternTable, KCONFIG_SEC, KSYMS_SEC};

/// libbpf's `find_int_btf_id`: the first 32-bit INT, or 0 (void).
fn find_int_btf_id(model: &BtfModel) -> u32 {
    model
        .types()
        .find(|(_, t)| matches!(t.body, TypeBody::Int { bits: 32, .. }))
        .map_or(0, |(id, _)| id)
}

/// Rewrites `.ksyms` and `.kconfig` as libbpf does. Returns the id of the added `dummy_ksym`
/// VAR, if one was added.
pub fn rewrite_extern_btf(model: &mut BtfModel, table: &ExternTable) -> Option<u32> {
    let mut dummy = None;
    if let Some(sec_id) = model.find_by_name_kind(KSYMS_SEC, Kind::DataSec) {
        let vars = match &model.get(sec_id)?.body {
            TypeBody::DataSec { vars, .. } => vars.clone(),
            _ => return None,
        };
        let has_func = vars
            .iter()
            .any(|v| model.kind(v.type_id) == Some(Kind::Func));
        let int_id = find_int_btf_id(model);
        if has_func {
            dummy = Some(model.add_var("dummy_ksym", int_id, VarLinkage::GlobalAllocated));
        }
        let dummy_name = dummy.and_then(|d| model.get(d)).map_or(0, |t| t.name_off);
        let mut new_vars = vars.clone();
        for (i, vs) in new_vars.iter_mut().enumerate() {
            let vt_id = vs.type_id;
            let proto = match model.get(vt_id).map(|t| &t.body) {
                Some(TypeBody::Func { proto, .. }) => Some(*proto),
                _ => None,
            };
            if let Some(proto) = proto {
                if let Some(TypeBody::FuncProto { params, .. }) =
                    model.get_mut(proto).map(|t| &mut t.body)
                {
                    for p in params.iter_mut() {
                        if p.type_id != 0 && p.name_off == 0 {
                            p.name_off = dummy_name;
                        }
                    }
                }
                if let Some(d) = dummy {
                    vs.type_id = d;
                }
                if let Some(TypeBody::Func { linkage, .. }) =
                    model.get_mut(vt_id).map(|t| &mut t.body)
                {
                    *linkage = FuncLinkage::Global;
                }
            } else if let Some(TypeBody::Var { target, linkage }) =
                model.get_mut(vt_id).map(|t| &mut t.body)
            {
                *linkage = VarLinkage::GlobalAllocated;
                *target = int_id;
            }
            vs.offset = (i * 4) as u32;
            vs.size = 4;
        }
        let total = (new_vars.len() * 4) as u32;
        if let Some(TypeBody::DataSec { size, vars }) = model.get_mut(sec_id).map(|t| &mut t.body) {
            *size = total;
            *vars = new_vars;
        }
    }
    if let Some(sec_id) = model.find_by_name_kind(KCONFIG_SEC, Kind::DataSec) {
        let vars = match &model.get(sec_id).map(|t| &t.body) {
            Some(TypeBody::DataSec { vars, .. }) => vars.clone(),
            _ => return dummy,
        };
        let mut new_vars = vars.clone();
        for vs in new_vars.iter_mut() {
            let name = model
                .get(vs.type_id)
                .map(|t| t.name_off)
                .and_then(|o| model.str_at(o).ok())
                .unwrap_or("")
                .to_string();
            let off = table.descs.iter().flatten().find_map(|d| match d.kind {
                ExternKind::Kconfig { data_off, .. } if d.name == name => Some(data_off),
                _ => None,
            });
            if let Some(TypeBody::Var { linkage, .. }) =
                model.get_mut(vs.type_id).map(|t| &mut t.body)
            {
                *linkage = VarLinkage::GlobalAllocated;
            }
            if let Some(off) = off {
                vs.offset = off;
            }
        }
        if let Some(TypeBody::DataSec { size, vars }) = model.get_mut(sec_id).map(|t| &mut t.body) {
            *size = table.kconfig_size;
            *vars = new_vars;
        }
    }
    dummy
}
