//! `bpfload inspect OBJECT --core`: each CO-RE relocation of each function and what it resolves to
//! against the running kernel's BTF (`/sys/kernel/btf/vmlinux`), without loading anything.

use bpfload::Object;
use bpfload_btf::core::{CoreReloResult, CoreRelocator, Outcome, Targets};
use bpfload_btf::{Btf, BtfExt, CoreRelo};

use crate::json::Json;

/// CO-RE results of one function: its relocations, or why they could not be computed.
pub struct FuncCore {
    pub function: String,
    pub result: Result<Vec<CoreReloResult>, String>,
}

/// Runs the CO-RE relocator over every function that has `.BTF.ext` CO-RE records. Returns an
/// empty list for an object without CO-RE relocations.
pub fn relocate_all(object: &Object) -> Result<Vec<FuncCore>, String> {
    let (Some(btf_raw), Some(ext_raw)) = (object.btf(), object.btf_ext()) else {
        return Ok(Vec::new());
    };
    let btf = Btf::parse(btf_raw).map_err(|e| format!("parsing the object's BTF: {e}"))?;
    let ext = BtfExt::parse(ext_raw).map_err(|e| format!("parsing the object's .BTF.ext: {e}"))?;
    if ext.core_relos.is_empty() {
        return Ok(Vec::new());
    }
    let vmlinux = bpfload_btf::kernel::vmlinux()
        .map_err(|e| format!("reading the kernel's BTF (/sys/kernel/btf/vmlinux): {e}"))?;
    let targets = Targets::kernel(&vmlinux);
    let mut out = Vec::new();
    for p in object.programs().chain(object.subprograms()) {
        let relos = bpfload_btf::core::program_relos(
            &btf,
            &ext,
            p.section(),
            p.section_insn_offset() * bpfload::Insn::SIZE,
            p.insn_count() * bpfload::Insn::SIZE,
        );
        if relos.is_empty() {
            continue;
        }
        out.push(FuncCore {
            function: p.name().to_string(),
            result: relocate_function(&btf, &targets, relos, p.insns()),
        });
    }
    Ok(out)
}

/// `relocate_program` on a copy of the function's instructions: a fresh relocator (candidate
/// cache), every record prefetched, then applied in order and numbered from 0. Written with the
/// loader's own calls (prepare.rs: `CoreRelocator::relocate_indexed` per record on `Insn`s) so the
/// static binary holds one instance of the generic CO-RE engine instead of two (issue 8).
fn relocate_function(
    btf: &Btf<'_>,
    targets: &Targets<'_>,
    relos: Vec<CoreRelo>,
    insns: &[bpfload::Insn],
) -> Result<Vec<CoreReloResult>, String> {
    let mut insns = insns.to_vec();
    let mut relocator = CoreRelocator::new(btf, targets);
    relocator.prefetch(relos.iter());
    let mut out = Vec::new();
    for (i, rec) in relos.into_iter().enumerate() {
        let mut r = relocator
            .relocate_indexed([(i, rec)], &mut insns)
            .map_err(|e| e.to_string())?;
        out.append(&mut r);
    }
    Ok(out)
}

/// The `"core"` array of `inspect --core --json` (keys in sorted order, see json.rs).
pub fn write_json(j: &mut Json, funcs: &[FuncCore]) {
    j.begin_array();
    for f in funcs {
        j.begin_object();
        match &f.result {
            Ok(rs) => {
                j.field_str("function", &f.function);
                j.key("relocations").begin_array();
                for r in rs {
                    j.begin_object();
                    j.field_u64("candidates", r.candidates as u64);
                    j.field_u64("index", r.index as u64);
                    j.field_u64("insn", r.insn_idx as u64);
                    j.field_str("kind", &r.kind.to_string());
                    j.field_str("local", &r.local_spec);
                    j.field_u64("new_val", r.new_val);
                    j.field_u64("orig_val", r.orig_val);
                    j.key("poisoned")
                        .bool(matches!(r.outcome, Outcome::Poisoned(_)));
                    j.key("target");
                    match &r.target {
                        Some(t) => {
                            j.begin_object();
                            j.field_str("btf", &t.btf);
                            j.field_str("spec", &t.spec);
                            j.field_u64("type_id", t.type_id.into());
                            j.end();
                        }
                        None => {
                            j.null();
                        }
                    }
                    j.field_str("text", &r.to_string());
                    j.end();
                }
                j.end();
            }
            Err(e) => {
                j.field_str("error", e);
                j.field_str("function", &f.function);
            }
        }
        j.end();
    }
    j.end();
}

pub fn print(funcs: &[FuncCore]) {
    outln!("CO-RE relocations (against the running kernel's BTF):");
    if funcs.is_empty() {
        outln!("  (none)");
    }
    for f in funcs {
        match &f.result {
            Ok(rs) => {
                outln!("  {}:", f.function);
                for r in rs {
                    outln!("    {r}");
                }
            }
            Err(e) => outln!("  {}: FAILED: {e}", f.function),
        }
    }
}
