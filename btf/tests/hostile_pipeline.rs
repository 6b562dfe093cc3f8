//! Hostile inputs through the whole BTF pipeline the loader runs on an object's BTF: parse, owned
//! model, datasec fix-up, sanitization for an old kernel, encoding, and CO-RE relocation of every
//! program section against the object's own BTF. Real corpus `.BTF`/`.BTF.ext` sections are
//! mutated at random; every step may fail, none may panic.

mod common;

use common::Rng;

use bpfload_btf::core::{insns_from_bytes, relocate_program, Targets};
use bpfload_btf::fixup::{fixup_datasecs, VarSymbol};
use bpfload_btf::sanitize::sanitize;
use bpfload_btf::{Btf, BtfExt, BtfModel};

/// Random byte damage.
trait Mutate {
    fn mutate(&mut self, b: &mut [u8]);
}

impl Mutate for Rng {
    fn mutate(&mut self, b: &mut [u8]) {
        if b.is_empty() {
            return;
        }
        for _ in 0..1 + self.next() % 4 {
            let i = (self.next() as usize) % b.len();
            b[i] = match self.next() % 4 {
                0 => self.next() as u8,
                1 => 0xff,
                2 => 0,
                _ => b[i] ^ (1 << (self.next() % 8)),
            };
        }
    }
}

/// Runs every pipeline step the inputs get through; results are ignored, panics are not.
fn pipeline(
    btf_bytes: &[u8],
    ext_bytes: Option<&[u8]>,
    sections: &dyn Fn(&str) -> Option<Vec<u8>>,
) {
    let Ok(btf) = Btf::parse(btf_bytes) else {
        return;
    };
    if let Ok(mut model) = BtfModel::from_btf(&btf) {
        let _ = fixup_datasecs(
            &mut model,
            |_| Some(u64::from(u32::MAX) + 8),
            |_| {
                Some(VarSymbol {
                    value: u64::MAX - 3,
                    hidden: true,
                })
            },
        );
        let _ = model.to_bytes();
        if let Ok(old) = sanitize(&model, &mut |_| false) {
            let _ = old.to_bytes();
        }
    }
    let Some(ext) = ext_bytes.and_then(|e| BtfExt::parse(e).ok()) else {
        return;
    };
    let targets = Targets::new("self", btf.clone());
    for s in ext.core_relos.sections() {
        let Ok(name) = btf.str_at(s.sec_name_off) else {
            continue;
        };
        let relos = bpfload_btf::core::program_relos(&btf, &ext, name, 0, usize::MAX);
        // The section's real instructions, so relocations get as far as patching.
        let mut insns = sections(name)
            .map(|b| insns_from_bytes(&b))
            .unwrap_or_default();
        let _ = relocate_program(&btf, relos, &mut insns, &targets);
    }
}

#[test]
fn mutated_corpus_btf_never_panics_in_the_pipeline() {
    let Some(objs) = common::corpus_btf() else {
        common::skip("pipeline mutations", "corpus not found");
        return;
    };
    // The objects with CO-RE records exercise the most code; keep the run short.
    let mut picked: Vec<_> = objs
        .into_iter()
        .filter(|(_, btf, ext)| {
            btf.len() < 256 * 1024
                && ext
                    .as_deref()
                    .and_then(|e| BtfExt::parse(e).ok())
                    .is_some_and(|e| !e.core_relos.is_empty())
        })
        .collect();
    picked.sort_by_key(|(_, btf, _)| btf.len());
    picked.truncate(12);
    assert!(!picked.is_empty(), "no corpus object with CO-RE records");
    let mut rng = Rng(0x243f_6a88_85a3_08d3);
    for (path, btf, ext) in &picked {
        let elf = std::fs::read(path).unwrap();
        let sections = |name: &str| common::elf_section(&elf, name);
        pipeline(btf, ext.as_deref(), &sections);
        for _ in 0..300 {
            let mut b = btf.clone();
            let mut e = ext.clone();
            match rng.next() % 3 {
                0 => rng.mutate(&mut b),
                1 => {
                    if let Some(e) = e.as_mut() {
                        rng.mutate(e)
                    }
                }
                _ => {
                    rng.mutate(&mut b);
                    if let Some(e) = e.as_mut() {
                        rng.mutate(e)
                    }
                }
            }
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                pipeline(&b, e.as_deref(), &sections)
            }));
            assert!(r.is_ok(), "{}: panic on a mutated input", path.display());
        }
    }
}
