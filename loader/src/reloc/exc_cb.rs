//! Exception callbacks (`bpf_prog_assign_exc_cb`): a main program tagged
//! `btf_decl_tag("exception_callback:<fn>")` gets the global `.text` function `<fn>` appended,
//! even when nothing calls it.

use std::collections::HashMap;

use bpfload_btf::{Btf, FuncLinkage, Type};

use crate::object::Object;

const PREFIX: &str = "exception_callback:";

/// Per autoload main program with a tag: the callback's function index, or libbpf's error.
/// `Err` for the whole object when a tag is on something other than a global function.
// Kept out of the load pipeline's one big function: smaller code there (issue 8).
#[inline(never)]
pub(crate) fn assign(
    obj: &Object,
    btf: &Btf<'_>,
) -> Result<HashMap<usize, Result<usize, String>>, String> {
    // Tags by tagged function name, in BTF order: one linear scan. (Maps keyed by `&str` with
    // `usize` values, the type the object model uses elsewhere: one instantiation; issue 8.)
    let mut tag_slot: HashMap<&str, usize> = HashMap::new();
    let mut tags: Vec<Vec<&str>> = Vec::new();
    for id in btf.ids() {
        let Ok(Type::DeclTag {
            target,
            component_idx: -1,
        }) = btf.type_by_id(id)
        else {
            continue;
        };
        let Some(cb) = btf.name(id).ok().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        match btf.type_by_id(target) {
            Ok(Type::Func {
                linkage: FuncLinkage::Global,
                ..
            }) => {
                let slot = *tag_slot
                    .entry(btf.name(target).unwrap_or(""))
                    .or_insert(tags.len());
                if slot == tags.len() {
                    tags.push(Vec::new());
                }
                tags[slot].push(cb);
            }
            _ => {
                return Err(
                    "exception_callback:<value> decl tag not applied to the main program".into(),
                )
            }
        }
    }
    let mut out = HashMap::new();
    if tags.is_empty() {
        return Ok(out);
    }
    // Subprogram by name; `MULTIPLE` when several have it.
    const MULTIPLE: usize = usize::MAX;
    let mut subprogs: HashMap<&str, usize> = HashMap::new();
    for (i, p) in obj
        .programs
        .iter()
        .enumerate()
        .filter(|(_, p)| p.is_subprog)
    {
        subprogs
            .entry(p.name.as_str())
            .and_modify(|f| *f = MULTIPLE)
            .or_insert(i);
    }
    for (m, p) in obj
        .programs
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.is_subprog && p.autoload)
    {
        let Some(cbs) = tag_slot.get(p.name.as_str()).map(|&t| &tags[t]) else {
            continue;
        };
        // Several callbacks for one program: libbpf appends none and lets the verifier refuse.
        if cbs.len() > 1 {
            continue;
        }
        let name = cbs[0];
        let r = if name.is_empty() {
            Err("exception_callback:<value> decl tag contains empty value".to_string())
        } else {
            match subprogs.get(name).copied() {
                None => Err(format!("cannot find exception callback '{name}'")),
                Some(MULTIPLE) => Err(format!(
                    "multiple subprogs with same name as exception callback '{name}'"
                )),
                Some(f) => {
                    let sp = &obj.programs[f];
                    if !sp.global || sp.mark_btf_static {
                        Err(format!(
                            "exception callback {name} must be a global non-hidden function"
                        ))
                    } else {
                        Ok(f)
                    }
                }
            }
        };
        out.insert(m, r);
    }
    Ok(out)
}
