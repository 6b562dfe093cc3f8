//! Where the objects to compare live: the repository's fixtures and the shared corpus.

use std::path::{Path, PathBuf};

/// The repository root (the parent of `compat/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("compat/ has a parent")
        .to_path_buf()
}

/// `tests/bpf/*.bpf.o`, sorted.
pub fn fixtures() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(repo_root().join("tests/bpf"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".bpf.o"))
        .collect();
    out.sort();
    out
}

/// The shared corpus: `$BPFLOAD_CORPUS`, else `shared/corpus` beside the repository or beside
/// one of its ancestors (worktrees live one level deeper than the main checkout).
pub fn corpus_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("BPFLOAD_CORPUS") {
        return Some(PathBuf::from(dir));
    }
    repo_root()
        .ancestors()
        .skip(1)
        .map(|a| a.join("shared/corpus"))
        .find(|d| d.is_dir())
}

/// Every little-endian (`-el.elf`) object under the corpus, sorted.
pub fn corpus_el_objects() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.to_string_lossy().ends_with("-el.elf") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    if let Some(dir) = corpus_dir() {
        walk(&dir, &mut out);
    }
    out.sort();
    out
}
