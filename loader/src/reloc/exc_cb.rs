//! Exception callbacks (`bpf_prog_assign_exc_cb`): a main program tagged
//! `btf_decl_tag("exception_callback:<fn>")` gets the global `.text` function `<fn>` appended,
//! even when nothing calls it.

use std::collections::HashMap;

use bpfload_btf::{Btf, FuncLinkage, Type};

use crate::object::Object;

const PREFIX: &str = "exception_callback:";

/// One `exception_callback:<fn>` decl tag, in BTF order.
struct Tag<'a> {
    /// The tagged function's name; `None` when the tag is on something other than a global
    /// function (libbpf's "not applied to the main program").
    target: Option<&'a str>,
    /// `<fn>`, the callback's name.
    cb: &'a str,
}

/// Per autoload main program with a callback: the callback's function index, or libbpf's error.
/// `Err` for the whole object when a program's walk of the tags (as libbpf's loop walks them)
/// reaches a tag on something other than a global function.
// Kept out of the load pipeline's one big function: smaller code there (issue 8).
#[inline(never)]
pub(crate) fn assign(
    obj: &Object,
    btf: &Btf<'_>,
) -> Result<HashMap<usize, Result<usize, String>>, String> {
    let mut tags: Vec<Tag<'_>> = Vec::new();
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
        let target = match btf.type_by_id(target) {
            Ok(Type::Func {
                linkage: FuncLinkage::Global,
                ..
            }) => Some(btf.name(target).unwrap_or("")),
            _ => None,
        };
        tags.push(Tag { target, cb });
    }
    let mut out = HashMap::new();
    if tags.is_empty() {
        return Ok(out);
    }
    // libbpf walks every tag for every program; the walk only ever stops at the program's own
    // first two tags or at the first misplaced tag, so those positions decide it: one scan here,
    // O(1) per program (objects with a thousand programs stay linear).
    let first_bad = tags.iter().position(|t| t.target.is_none());
    let mut own: HashMap<&str, (usize, Option<usize>)> = HashMap::new();
    for (i, t) in tags.iter().enumerate() {
        if let Some(name) = t.target {
            own.entry(name)
                .and_modify(|e| {
                    e.1.get_or_insert(i);
                })
                .or_insert((i, None));
        }
    }
    // Subprogram by name: the first in (section, offset) order, the order of `obj.programs`.
    // libbpf's loop stops at the first match, so its "multiple subprogs with same name" check
    // can never fire: neither does one here.
    let mut subprogs: HashMap<&str, usize> = HashMap::new();
    for (i, p) in obj
        .programs
        .iter()
        .enumerate()
        .filter(|(_, p)| p.is_subprog)
    {
        subprogs.entry(p.name.as_str()).or_insert(i);
    }
    let misplaced = || "exception_callback:<value> decl tag not applied to the main program".into();
    // Whether the walk reaches the first misplaced tag before position `end` (the end of the
    // tags when `None`).
    let bad_before = |end: Option<usize>| first_bad.is_some_and(|b| end.is_none_or(|e| b < e));
    for (m, p) in obj
        .programs
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.is_subprog && p.autoload)
    {
        let Some(&(first, second)) = own.get(p.name.as_str()) else {
            // No tag of its own: the walk goes through every tag.
            if bad_before(None) {
                return Err(misplaced());
            }
            continue;
        };
        if bad_before(Some(first)) {
            return Err(misplaced());
        }
        // The first tag is always checked: an empty or unknown callback fails the program even
        // when a second tag follows.
        let name = tags[first].cb;
        let r = if name.is_empty() {
            Err("exception_callback:<value> decl tag contains empty value".to_string())
        } else {
            match subprogs.get(name).map(|&f| (f, &obj.programs[f])) {
                None => Err(format!("cannot find exception callback '{name}'")),
                Some((_, sp)) if !sp.global || sp.mark_btf_static => Err(format!(
                    "exception callback {name} must be a global non-hidden function"
                )),
                Some((f, _)) => Ok(f),
            }
        };
        if r.is_ok() {
            // The walk goes on to the program's second tag, if any, past any misplaced one.
            if bad_before(second) {
                return Err(misplaced());
            }
            // Several callbacks for one program: libbpf appends none (whatever the second tag
            // says) and lets the verifier refuse.
            if second.is_some() {
                continue;
            }
        }
        out.insert(m, r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfload_btf::BtfModel;

    /// `src/tests/bpf/exc_cb.bpf.o`: main programs `with_cb` and `without_cb`, `.text` functions
    /// `exception_cb1` (global) and `helper` (static).
    fn object() -> Object {
        let path =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/tests/bpf/exc_cb.bpf.o");
        Object::open_file(path).unwrap()
    }

    /// BTF with one `exception_callback:<cb>` decl tag per `(tagged function, global?, cb)`, in
    /// that order.
    fn btf_bytes(tags: &[(&str, bool, &str)]) -> Vec<u8> {
        let mut m = BtfModel::new();
        let int = m.add_int("int", 4, 1);
        let proto = m.add_func_proto(int, &[]);
        for &(target, global, cb) in tags {
            let linkage = if global {
                FuncLinkage::Global
            } else {
                FuncLinkage::Static
            };
            let f = m.add_func(target, proto, linkage);
            m.add_decl_tag(&format!("{PREFIX}{cb}"), f, -1);
        }
        m.to_bytes().unwrap()
    }

    fn run(
        obj: &Object,
        tags: &[(&str, bool, &str)],
    ) -> Result<HashMap<usize, Result<usize, String>>, String> {
        let raw = btf_bytes(tags);
        assign(obj, &Btf::parse(&raw).unwrap())
    }

    fn idx(obj: &Object, name: &str) -> usize {
        obj.programs.iter().position(|p| p.name == name).unwrap()
    }

    /// A second `.text` function named like the callback (two objects linked together, one with
    /// a global `cb`, one with a static `cb`): libbpf takes the first in (section, offset)
    /// order and never reports several.
    #[test]
    fn same_name_takes_the_first() {
        let mut obj = object();
        let cb = idx(&obj, "exception_cb1");
        let mut dup = obj.programs[cb].clone();
        dup.sec_insn_off += 1000;
        dup.global = false;
        obj.programs.insert(cb + 1, dup);
        let with = idx(&obj, "with_cb");
        let r = run(&obj, &[("with_cb", true, "exception_cb1")]).unwrap();
        assert_eq!(r[&with], Ok(cb));

        // The static one first: it is the one libbpf checks, and refuses.
        obj.programs[cb].global = false;
        obj.programs[cb + 1].global = true;
        let r = run(&obj, &[("with_cb", true, "exception_cb1")]).unwrap();
        let e = r[&with].clone().unwrap_err();
        assert!(e.contains("must be a global non-hidden"), "{e}");
    }

    /// Two tags on one program: libbpf still checks the first (an empty or unknown callback
    /// fails the program); only when it names a callback does the second make it append none.
    #[test]
    fn two_tags_check_the_first() {
        let obj = object();
        let with = idx(&obj, "with_cb");
        let r = run(
            &obj,
            &[
                ("with_cb", true, "missing"),
                ("with_cb", true, "exception_cb1"),
            ],
        )
        .unwrap();
        let e = r[&with].clone().unwrap_err();
        assert!(
            e.contains("cannot find exception callback 'missing'"),
            "{e}"
        );

        let r = run(
            &obj,
            &[("with_cb", true, ""), ("with_cb", true, "exception_cb1")],
        )
        .unwrap();
        let e = r[&with].clone().unwrap_err();
        assert!(e.contains("empty value"), "{e}");

        // Both valid, or the second empty: no callback, no error.
        for second in ["exception_cb1", ""] {
            let r = run(
                &obj,
                &[
                    ("with_cb", true, "exception_cb1"),
                    ("with_cb", true, second),
                ],
            )
            .unwrap();
            assert!(r.is_empty(), "{r:?}");
        }
    }

    /// A tag on a static function fails the object when a program's walk reaches it: every
    /// program without two tags of its own does; one that stops at its second tag first does
    /// not.
    #[test]
    fn misplaced_tag_where_the_walk_reaches_it() {
        let mut obj = object();
        let with = idx(&obj, "with_cb");
        let tags = [
            ("with_cb", true, "exception_cb1"),
            ("with_cb", true, "exception_cb1"),
            ("helper", false, "exception_cb1"),
        ];
        // `without_cb` has no tag: its walk reaches the misplaced one.
        let e = run(&obj, &tags).unwrap_err();
        assert!(e.contains("not applied to the main program"), "{e}");

        // Only `with_cb` is loaded: its walk stops at its second tag.
        let without = idx(&obj, "without_cb");
        obj.programs[without].autoload = false;
        assert!(run(&obj, &tags).unwrap().is_empty());

        // Before its first tag, or between its only tag and the end, it is reached.
        let e = run(&obj, &[tags[2], tags[0]]).unwrap_err();
        assert!(e.contains("not applied"), "{e}");
        let e = run(&obj, &[tags[0], tags[2]]).unwrap_err();
        assert!(e.contains("not applied"), "{e}");
        // Between the two: reached before the second tag stops the walk.
        let e = run(&obj, &[tags[0], tags[2], tags[1]]).unwrap_err();
        assert!(e.contains("not applied"), "{e}");
        // Unless the first tag already failed the program.
        let r = run(&obj, &[("with_cb", true, "missing"), tags[2]]).unwrap();
        assert!(r[&with].is_err());
    }
}
