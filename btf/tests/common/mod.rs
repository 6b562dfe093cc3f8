//! Shared helpers for the btf integration tests: corpus discovery and `.BTF`/`.BTF.ext`
//! extraction from ELF objects (with goblin, independent of the loader crate).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Prints a skip line and returns false, or panics under CI=true.
pub fn skip(what: &str, why: &str) -> bool {
    assert!(
        !in_ci(),
        "{what}: {why}, and CI=true requires this test to run"
    );
    eprintln!("SKIP {what}: {why}");
    false
}

/// `$BPFLOAD_CORPUS`, else the first `<ancestor>/shared/corpus` above this crate.
pub fn corpus_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BPFLOAD_CORPUS") {
        let p = PathBuf::from(p);
        return p.is_dir().then_some(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("shared").join("corpus"))
        .find(|p| p.is_dir())
}

/// Every `*.elf` under the corpus, sorted.
pub fn corpus_objects() -> Option<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|e| e == "elf") {
                out.push(p);
            }
        }
    }
    let dir = corpus_dir()?;
    let mut out = Vec::new();
    walk(&dir, &mut out);
    out.sort();
    Some(out)
}

/// Contents of the named section of an ELF file, if present.
pub fn elf_section(data: &[u8], name: &str) -> Option<Vec<u8>> {
    let elf = goblin::elf::Elf::parse(data).ok()?;
    let sh = elf
        .section_headers
        .iter()
        .find(|sh| elf.shdr_strtab.get_at(sh.sh_name) == Some(name))?;
    let start = sh.sh_offset as usize;
    data.get(start..start + sh.sh_size as usize)
        .map(<[u8]>::to_vec)
}

/// (path, .BTF, .BTF.ext) of one object.
pub type ObjectBtf = (PathBuf, Vec<u8>, Option<Vec<u8>>);

/// (path, .BTF, .BTF.ext) for every corpus object that has a .BTF section.
pub fn corpus_btf() -> Option<Vec<ObjectBtf>> {
    let objs = corpus_objects()?;
    Some(
        objs.into_iter()
            .filter_map(|p| {
                let data = std::fs::read(&p).ok()?;
                let btf = elf_section(&data, ".BTF")?;
                let ext = elf_section(&data, ".BTF.ext");
                Some((p, btf, ext))
            })
            .collect(),
    )
}

/// Native-endian raw BTF (24-byte header, types, strings) from type words and a string table;
/// for split BTF the name offsets in `types` are already absolute.
pub fn raw_blob(types: &[u32], strings: &[u8]) -> Vec<u8> {
    let tl = (types.len() * 4) as u32;
    let mut out = Vec::new();
    out.extend_from_slice(&0xeb9fu16.to_ne_bytes());
    out.extend_from_slice(&[1, 0]);
    for w in [24u32, 0, tl, tl, strings.len() as u32] {
        out.extend_from_slice(&w.to_ne_bytes());
    }
    for w in types {
        out.extend_from_slice(&w.to_ne_bytes());
    }
    out.extend_from_slice(strings);
    out
}

/// xorshift64*, deterministic, for mutation tests.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}
