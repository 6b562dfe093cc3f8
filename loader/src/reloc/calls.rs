//! bpf-to-bpf calls and callbacks: libbpf's `bpf_object__relocate_calls` / `bpf_object__reloc_code`.
//!
//! Every `.text` subprogram a main program uses (directly or transitively) is appended once, at the
//! end, in first-use order, and the call's (or `ld_imm64`'s) `imm` is pointed at its new position.
//! libbpf does this recursively; an explicit stack gives the same order without unbounded recursion.

use std::collections::HashMap;

use super::ext_info::ExtInfoIndex;
use super::{LinkError, Linked};
use crate::insn::{Insn, PSEUDO_FUNC};
use crate::object::relocs::{Reloc, RelocKind};
use crate::object::Object;

/// Functions per section, sorted by first instruction: `find_prog_by_sec_insn` in O(log n).
pub(crate) struct FuncIndex {
    by_sec: HashMap<usize, Vec<(usize, usize, usize)>>,
}

impl FuncIndex {
    // Out of line: smaller code where it was inlined (issue 8: binary size).
    #[inline(never)]
    pub fn new(obj: &Object) -> Self {
        let mut by_sec: HashMap<usize, Vec<(usize, usize, usize)>> = HashMap::new();
        for (i, p) in obj.programs.iter().enumerate() {
            by_sec.entry(p.sec_idx).or_default().push((
                p.sec_insn_off,
                p.sec_insn_off + p.insns.len(),
                i,
            ));
        }
        for v in by_sec.values_mut() {
            crate::sort::sort_copied(v);
        }
        FuncIndex { by_sec }
    }

    pub fn find(&self, sec: usize, insn: usize) -> Option<usize> {
        let v = self.by_sec.get(&sec)?;
        let pos = v.partition_point(|&(start, _, _)| start <= insn);
        let &(start, end, idx) = v.get(pos.checked_sub(1)?)?;
        (insn >= start && insn < end).then_some(idx)
    }
}

/// A main program after CO-RE: the instructions that changed, (index, new instruction), not a
/// copy of them all. A CO-RE record patches one or two instructions in place (through a slice: the
/// length never changes), so for an object of a thousand programs this keeps kilobytes where
/// whole copies kept ~440 KB until every program was linked.
#[derive(Clone)]
pub(crate) struct CorePatched(Vec<(u32, Insn)>);

impl CorePatched {
    pub(crate) fn new(orig: &[Insn], code: &[Insn]) -> CorePatched {
        CorePatched(
            (0u32..)
                .zip(orig.iter().zip(code))
                .filter(|(_, (a, b))| a != b)
                .map(|(i, (_, b))| (i, *b))
                .collect(),
        )
    }

    /// The patched code of the function whose original code is `orig`.
    pub(crate) fn apply(&self, orig: &[Insn]) -> Vec<Insn> {
        let mut code = orig.to_vec();
        for &(i, insn) in &self.0 {
            code[i as usize] = insn;
        }
        code
    }
}

/// `find_prog_insn_relo`: relocations are sorted by instruction index.
fn find_relo(relocs: &[Reloc], insn_idx: usize) -> Option<&Reloc> {
    relocs
        .binary_search_by_key(&insn_idx, |r| r.insn_idx)
        .ok()
        .map(|i| &relocs[i])
}

/// A function's instructions as libbpf sees them after `bpf_object__relocate` marked callback loads
/// (`RELO_SUBPROG_ADDR`) with `BPF_PSEUDO_FUNC`, with its CO-RE patches. A main program's patches
/// are kept apart (`core`); they apply to every copy of its code, the one it is linked as and the
/// ones appended to its callers in its section, as libbpf relocates a function's one copy before
/// appending it.
fn marked_insns(
    obj: &Object,
    funcs: &[std::sync::Arc<[Insn]>],
    core: &[Option<CorePatched>],
    f: usize,
) -> Vec<Insn> {
    let code = match core.get(f).and_then(Option::as_ref) {
        Some(p) => p.apply(&funcs[f]),
        None => funcs[f].to_vec(),
    };
    mark(obj, f, code)
}

fn mark(obj: &Object, f: usize, mut insns: Vec<Insn>) -> Vec<Insn> {
    let p = &obj.programs[f];
    for r in p.relocs.iter() {
        if r.kind == RelocKind::SubprogAddr {
            insns[r.insn_idx].set_src(PSEUDO_FUNC);
        }
    }
    insns
}

/// The function that the call or callback address at `insn_idx` of function `f` targets (as
/// `bpf_object__reloc_code` finds it); `Ok(None)` for a call to a kfunc. `insn` is the
/// instruction as marked (`mark`): a callback's `ld_imm64` has `BPF_PSEUDO_FUNC`.
fn call_target(
    obj: &Object,
    funcs: &FuncIndex,
    f: usize,
    insn_idx: usize,
    insn: Insn,
) -> Result<Option<usize>, LinkError> {
    let prog = &obj.programs[f];
    let relo = find_relo(&prog.relocs, insn_idx);
    let (sec, sub_insn_idx) = match relo {
        Some(r) if matches!(r.kind, RelocKind::ExternCall { .. }) => return Ok(None),
        // The symbol's value is not bounds-checked at open (a section symbol's st_value is
        // whatever the file says): checked arithmetic, so a value near the top of the range
        // is a call to nowhere (the link error below), not an overflow.
        Some(r) if r.kind == RelocKind::Call => {
            let target = i64::try_from(r.sym_off / 8)
                .ok()
                .and_then(|s| s.checked_add(i64::from(insn.imm)))
                .and_then(|t| t.checked_add(1));
            (r.sym_shndx, target)
        }
        Some(r) if r.kind == RelocKind::SubprogAddr => {
            let target = i64::try_from(r.sym_off)
                .ok()
                .and_then(|s| s.checked_add(i64::from(insn.imm)))
                .map(|t| t / 8);
            (r.sym_shndx, target)
        }
        Some(r) => {
            return Err(LinkError {
                program: prog.name.clone(),
                msg: format!("unexpected relocation {:?} for insn #{insn_idx}", r.kind),
            })
        }
        None if insn.is_pseudo_func() => {
            return Err(LinkError {
                program: prog.name.clone(),
                msg: format!("missing subprog address relocation for insn #{insn_idx}"),
            })
        }
        // A call to a static function in the same section carries no relocation; imm is
        // relative to the call's own position in the section.
        None => (
            prog.sec_idx,
            i64::try_from(prog.sec_insn_off + insn_idx)
                .ok()
                .and_then(|p| p.checked_add(i64::from(insn.imm)))
                .and_then(|t| t.checked_add(1)),
        ),
    };
    sub_insn_idx
        .and_then(|i| usize::try_from(i).ok())
        .and_then(|i| funcs.find(sec, i))
        .map(Some)
        .ok_or_else(|| {
            let target = sub_insn_idx.map_or("an offset out of range".to_string(), |t| {
                format!("section instruction {t}")
            });
            LinkError {
                program: prog.name.clone(),
                msg: format!("call at insn #{insn_idx} targets {target}, where no function exists"),
            }
        })
}

/// Per function: whether its code is placed in a program linked from `roots` (a root itself, or
/// a function one of them calls or takes the address of, transitively), which is what `link`
/// appends. Calls `link` refuses are skipped here: linking reports them.
///
/// libbpf needs no such walk (only `.text` functions are appended there, and it relocates all of
/// them); bpfload also appends a static function outside `.text` (a program of its own) to the
/// callers in its section, so whether its code is loaded does not follow from its own autoload.
pub(crate) fn reachable(
    obj: &Object,
    funcs: &FuncIndex,
    roots: impl IntoIterator<Item = usize>,
) -> Vec<bool> {
    let mut seen = vec![false; obj.programs.len()];
    let mut stack: Vec<usize> = Vec::new();
    for r in roots {
        if !std::mem::replace(&mut seen[r], true) {
            stack.push(r);
        }
    }
    while let Some(f) = stack.pop() {
        let p = &obj.programs[f];
        // The instructions `link` walks as calls, as `mark` leaves them: subprogram calls, and
        // `ld_imm64`s marked `BPF_PSEUDO_FUNC` (by a callback address relocation, or already).
        for (i, raw) in p.insns.iter().enumerate() {
            if !raw.is_subprog_call() && !raw.is_ld_imm64() {
                continue;
            }
            let mut insn = *raw;
            if find_relo(&p.relocs, i).is_some_and(|r| r.kind == RelocKind::SubprogAddr) {
                insn.set_src(PSEUDO_FUNC);
            }
            if !insn.is_subprog_call() && !insn.is_pseudo_func() {
                continue;
            }
            if let Ok(Some(sub)) = call_target(obj, funcs, f, i, insn) {
                if !std::mem::replace(&mut seen[sub], true) {
                    stack.push(sub);
                }
            }
        }
    }
    seen
}

/// `bpf_object__append_subprog_code`: places function `sub` at `off` with its relocations and
/// `.BTF.ext` records.
#[allow(clippy::too_many_arguments)]
fn append(
    obj: &Object,
    code: &[std::sync::Arc<[Insn]>],
    core: &[Option<CorePatched>],
    ext: Option<&ExtInfoIndex<'_>>,
    infos: &mut Option<super::ext_info::ExtState>,
    placed: &mut HashMap<usize, usize>,
    insns: &mut Vec<Insn>,
    relos: &mut Vec<(usize, Reloc)>,
    sub: usize,
    off: usize,
) -> Result<(), LinkError> {
    placed.insert(sub, off);
    insns.extend(marked_insns(obj, code, core, sub));
    let sp = &obj.programs[sub];
    if let (Some(e), Some(st)) = (ext, infos.as_mut()) {
        e.append(st, sp, off, false).map_err(|m| LinkError {
            program: sp.name.clone(),
            msg: m,
        })?;
    }
    for r in sp.relocs.iter() {
        relos.push((off + r.insn_idx, r.clone()));
    }
    Ok(())
}

/// Links one main program: appends subprograms, fixes call offsets, and gathers the data
/// relocations and func/line info of every included function.
// Out of line: smaller code where it was inlined (issue 8: binary size).
#[inline(never)]
pub(crate) fn link(
    obj: &Object,
    code: &[std::sync::Arc<[Insn]>],
    core: &[Option<CorePatched>],
    funcs: &FuncIndex,
    ext: Option<&ExtInfoIndex<'_>>,
    main: usize,
    exception_cb: Option<usize>,
) -> Result<Linked, LinkError> {
    let main_prog = &obj.programs[main];
    let err = |msg: String| LinkError {
        program: main_prog.name.clone(),
        msg,
    };
    let mut insns = marked_insns(obj, code, core, main);
    // Function index → position of its first instruction in `insns` (libbpf's `sub_insn_off`).
    let mut placed: HashMap<usize, usize> = HashMap::from([(main, 0)]);
    let mut relos: Vec<(usize, Reloc)> = Vec::new();
    let mut infos = ext.map(|e| e.start());
    let mut stack: Vec<(usize, usize)> = vec![(main, 0)];

    // `reloc_prog_func_and_line_info` for the main program, before its instructions are walked.
    if let (Some(e), Some(st)) = (ext, infos.as_mut()) {
        e.append(st, main_prog, 0, true).map_err(err)?;
    }
    for r in main_prog.relocs.iter() {
        relos.push((r.insn_idx, r.clone()));
    }

    let mut pending_cb = exception_cb;
    loop {
        let Some(frame) = stack.last_mut() else {
            // bpf_object__relocate: the exception callback is appended last, unless a call
            // already placed it.
            match pending_cb.take() {
                Some(cb) if !placed.contains_key(&cb) => {
                    let off = insns.len();
                    append(
                        obj,
                        code,
                        core,
                        ext,
                        &mut infos,
                        &mut placed,
                        &mut insns,
                        &mut relos,
                        cb,
                        off,
                    )?;
                    stack.push((cb, 0));
                    continue;
                }
                _ => break,
            }
        };
        let (f, insn_idx) = *frame;
        let prog = &obj.programs[f];
        if insn_idx >= prog.insns.len() {
            stack.pop();
            continue;
        }
        frame.1 += 1;
        let base = placed[&f];
        let insn = insns[base + insn_idx];
        if !insn.is_subprog_call() && !insn.is_pseudo_func() {
            continue;
        }
        let Some(sub) = call_target(obj, funcs, f, insn_idx, insn)? else {
            continue;
        };
        let sub_off = match placed.get(&sub) {
            Some(&off) => off,
            None => {
                // `bpf_object__append_subprog_code` + recursion into the subprogram.
                let off = insns.len();
                append(
                    obj,
                    code,
                    core,
                    ext,
                    &mut infos,
                    &mut placed,
                    &mut insns,
                    &mut relos,
                    sub,
                    off,
                )?;
                stack.push((sub, 0));
                off
            }
        };
        let pos = base + insn_idx;
        let imm = sub_off as i64 - pos as i64 - 1;
        insns[pos].imm = i32::try_from(imm)
            .map_err(|_| err(format!("call offset {imm} does not fit in imm")))?;
    }

    let (mut func_info, mut line_info) = infos.map(|st| st.take()).unwrap_or((None, None));
    // The instructions outlive the load (`LoadedProgram::insns`): no growth slack kept.
    insns.shrink_to_fit();
    relos.shrink_to_fit();
    for info in [&mut func_info, &mut line_info].into_iter().flatten() {
        info.data.shrink_to_fit();
    }
    // By offset (each function is placed once), through the crate's one key sort.
    let mut funcs_in: Vec<(u64, u64, usize)> = placed
        .into_iter()
        .map(|(f, off)| (off as u64, 0, f))
        .collect();
    crate::sort::sort_keys(&mut funcs_in);
    Ok(Linked {
        prog: main,
        insns,
        relos,
        func_info,
        line_info,
        funcs: funcs_in.into_iter().map(|(_, _, f)| f).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `data` with the `st_value` of every STT_SECTION symbol of `.text` set to `value`.
    fn with_text_section_symbol(data: &[u8], value: u64) -> Vec<u8> {
        use goblin::elf::{section_header::SHT_SYMTAB, sym::STT_SECTION, Elf};
        let elf = Elf::parse(data).unwrap();
        let text = elf
            .section_headers
            .iter()
            .position(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(".text"))
            .unwrap();
        let symtab = elf
            .section_headers
            .iter()
            .find(|s| s.sh_type == SHT_SYMTAB)
            .unwrap();
        let mut out = data.to_vec();
        let mut patched = 0;
        for (k, sym) in elf.syms.iter().enumerate() {
            if sym.st_type() == STT_SECTION && sym.st_shndx == text {
                // Elf64_Sym: st_name (4), st_info, st_other, st_shndx (2), then st_value.
                let off = symtab.sh_offset as usize + k * symtab.sh_entsize as usize + 8;
                out[off..off + 8].copy_from_slice(&value.to_le_bytes());
                patched += 1;
            }
        }
        assert_eq!(patched, 1);
        out
    }

    fn link_program(obj: &Object, name: &str) -> Result<Linked, LinkError> {
        let code: Vec<std::sync::Arc<[Insn]>> =
            obj.programs.iter().map(|p| p.insns.clone()).collect();
        let core = vec![None; obj.programs.len()];
        let m = obj.programs.iter().position(|p| p.name == name).unwrap();
        link(obj, &code, &core, &FuncIndex::new(obj), None, m, None)
    }

    /// A static callback's ld_imm64 is relocated against the `.text` section symbol with the
    /// callback's offset in imm (`tests/bpf/weak_cb.bpf.c`, `uses_static_cb`: imm 40). The
    /// symbol's value is the file's word: near the top of the range, value + imm overflows,
    /// which must be the ordinary link error (it panicked in debug builds); a value that wraps
    /// negative must not land on a function either.
    #[test]
    fn hostile_section_symbol_value_is_a_link_error() {
        let path =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/bpf/weak_cb.bpf.o");
        let raw = std::fs::read(path).unwrap();
        let obj = Object::open_bytes("weak_cb", &raw).unwrap();
        let l = link_program(&obj, "uses_static_cb").unwrap();
        assert_eq!(l.insns.len(), 17, "unpatched: links as libbpf does");
        for value in [i64::MAX as u64 - 7, u64::MAX - 7, 1 << 63] {
            let obj =
                Object::open_bytes("weak_cb", &with_text_section_symbol(&raw, value)).unwrap();
            let e = link_program(&obj, "uses_static_cb").unwrap_err();
            assert!(
                e.msg.contains("where no function exists"),
                "{value:#x}: {e}"
            );
        }
    }
}
