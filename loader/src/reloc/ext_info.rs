//! `.BTF.ext` func_info and line_info, sliced and shifted per main program
//! (libbpf's `reloc_prog_func_and_line_info` / `adjust_prog_btf_ext_info`).

use std::collections::HashMap;

use bpfload_btf::ext::{ExtInfo, ExtRecord};
use bpfload_btf::{Btf, BtfExt};

use crate::insn::Insn;
use crate::object::programs::Program;
use crate::object::Object;

/// Which subsection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExtKind {
    Func,
    Line,
}

impl ExtKind {
    fn what(self) -> &'static str {
        match self {
            ExtKind::Func => "function",
            ExtKind::Line => "line",
        }
    }
}

/// One subsection's records, by ELF section index.
struct Records<'a> {
    rec_size: usize,
    /// Section index -> index in `raws` (a usize -> usize table: the type the call linker's
    /// tables use, so no hash table code of its own; issue 8: binary size).
    by_sec: HashMap<usize, usize>,
    raws: Vec<&'a [u8]>,
}

impl<'a> Records<'a> {
    fn new<R: ExtRecord>(obj: &Object, btf: &Btf<'_>, info: &ExtInfo<'a, R>) -> Option<Self> {
        if info.is_empty() {
            return None;
        }
        let sec_by_name = obj.sections_by_name();
        let mut by_sec = HashMap::new();
        let mut raws = Vec::new();
        for s in info.sections() {
            let Ok(name) = btf.str_at(s.sec_name_off) else {
                continue;
            };
            // Several `.BTF.ext` sections for one ELF section: libbpf
            // (`reloc_prog_func_and_line_info`) uses the first.
            if let Some(&idx) = sec_by_name.get(name) {
                if let std::collections::hash_map::Entry::Vacant(v) = by_sec.entry(idx) {
                    v.insert(raws.len());
                    raws.push(s.raw());
                }
            }
        }
        Some(Records {
            rec_size: info.record_size(),
            by_sec,
            raws,
        })
    }

    fn insn_off(&self, rec: &[u8]) -> u32 {
        u32::from_ne_bytes(rec[..4].try_into().expect("records are at least 8 bytes"))
    }

    /// The records of `prog` (those whose instruction lies inside it), as one contiguous slice.
    /// Records are sorted by offset within a section, as clang emits them and libbpf assumes.
    fn slice(&self, prog: &Program) -> Option<&'a [u8]> {
        let raw = self.raws[*self.by_sec.get(&prog.sec_idx)?];
        let n = raw.len() / self.rec_size;
        let rec = |i: usize| &raw[i * self.rec_size..(i + 1) * self.rec_size];
        let (start, end) = (prog.sec_insn_off, prog.sec_insn_off + prog.insns.len());
        let first = partition(n, |i| (self.insn_off(rec(i)) as usize / Insn::SIZE) < start);
        let last = partition(n, |i| (self.insn_off(rec(i)) as usize / Insn::SIZE) < end);
        (first < last).then(|| &raw[first * self.rec_size..last * self.rec_size])
    }
}

/// First index in `0..n` for which `pred` is false (pred must be monotone).
fn partition(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// func_info and line_info records of the whole object, indexed once per load.
pub(crate) struct ExtInfoIndex<'a> {
    func: Option<Records<'a>>,
    line: Option<Records<'a>>,
}

/// The records gathered for one main program; `None` once libbpf would have given up on a kind.
pub(crate) struct ExtState {
    func: Option<Vec<u8>>,
    line: Option<Vec<u8>>,
    func_rec: usize,
    line_rec: usize,
}

/// Records ready for `BPF_PROG_LOAD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtOut {
    /// The records, instruction offsets already in instructions and shifted.
    pub data: Vec<u8>,
    /// Record size.
    pub rec_size: u32,
}

impl ExtState {
    pub fn take(self) -> (Option<ExtOut>, Option<ExtOut>) {
        let f = self.func.map(|data| ExtOut {
            data,
            rec_size: self.func_rec as u32,
        });
        let l = self.line.map(|data| ExtOut {
            data,
            rec_size: self.line_rec as u32,
        });
        (f, l)
    }
}

impl<'a> ExtInfoIndex<'a> {
    // Out of line: smaller code where it was inlined (issue 8: binary size).
    #[inline(never)]
    pub fn new(obj: &Object, btf: &Btf<'_>, ext: &BtfExt<'a>) -> Self {
        ExtInfoIndex {
            func: Records::new(obj, btf, &ext.func_info),
            line: Records::new(obj, btf, &ext.line_info),
        }
    }

    pub fn start(&self) -> ExtState {
        ExtState {
            func: None,
            line: None,
            func_rec: self.func.as_ref().map_or(0, |r| r.rec_size),
            line_rec: self.line.as_ref().map_or(0, |r| r.rec_size),
        }
    }

    /// Appends `prog`'s records, placed at `sub_insn_off` in the main program.
    pub fn append(
        &self,
        st: &mut ExtState,
        prog: &Program,
        sub_insn_off: usize,
        is_main: bool,
    ) -> Result<(), String> {
        for kind in [ExtKind::Func, ExtKind::Line] {
            let (recs, acc) = match kind {
                ExtKind::Func => (&self.func, &mut st.func),
                ExtKind::Line => (&self.line, &mut st.line),
            };
            // Only continue with subprograms if the main program's records were found.
            if !is_main && acc.is_none() {
                continue;
            }
            let found = recs.as_ref().and_then(|r| r.slice(prog).map(|s| (r, s)));
            let Some((r, slice)) = found else {
                if !is_main {
                    return Err(format!("missing .BTF.ext {} info", kind.what()));
                }
                log::debug!(
                    "prog '{}': missing .BTF.ext {} info for the main program, skipping all of it",
                    prog.name,
                    kind.what()
                );
                continue;
            };
            let out = acc.get_or_insert_with(Vec::new);
            let old = out.len();
            out.extend_from_slice(slice);
            let adj = sub_insn_off as i64 - prog.sec_insn_off as i64;
            for rec in out[old..].chunks_exact_mut(r.rec_size) {
                let off = u32::from_ne_bytes(rec[..4].try_into().expect("record has 4 bytes"));
                let new = (i64::from(off) / Insn::SIZE as i64 + adj) as u32;
                rec[..4].copy_from_slice(&new.to_ne_bytes());
            }
        }
        Ok(())
    }
}
