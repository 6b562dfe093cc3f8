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
    // Tags by tagged function name, in BTF order: one linear scan.
    let mut tags: HashMap<&str, Vec<&str>> = HashMap::new();
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
                tags.entry(btf.name(target).unwrap_or(""))
                    .or_default()
                    .push(cb);
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
    let mut subprogs: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, p) in obj
        .programs
        .iter()
        .enumerate()
        .filter(|(_, p)| p.is_subprog)
    {
        subprogs.entry(p.name.as_str()).or_default().push(i);
    }
    for (m, p) in obj
        .programs
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.is_subprog && p.autoload)
    {
        let Some(cbs) = tags.get(p.name.as_str()) else {
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
            match subprogs.get(name).map(Vec::as_slice) {
                None | Some([]) => Err(format!("cannot find exception callback '{name}'")),
                Some([f]) => {
                    let sp = &obj.programs[*f];
                    if !sp.global || sp.mark_btf_static {
                        Err(format!(
                            "exception callback {name} must be a global non-hidden function"
                        ))
                    } else {
                        Ok(*f)
                    }
                }
                Some(_) => Err(format!(
                    "multiple subprogs with same name as exception callback '{name}'"
                )),
            }
        };
        out.insert(m, r);
    }
    Ok(out)
}
