//! `/proc/kallsyms` for typeless ksyms (`extern const void sym __ksym;`): address by name.

use super::ExternError;

/// The kernel's symbol table file.
pub const KALLSYMS: &str = "/proc/kallsyms";

/// Calls `f(name, addr)` for every symbol line (`addr type name [module]`). Data symbols (type
/// `d`) that LLVM suffixed with `.llvm.<hash>` are reported under their plain name, as libbpf's
/// `kallsyms_cb` matches them; other types keep the suffix (libbpf strips it only for `d`).
pub fn for_each_symbol(
    text: &str,
    mut f: impl FnMut(&str, u64) -> Result<(), ExternError>,
) -> Result<(), ExternError> {
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        let (Some(addr), Some(ty), Some(name)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let Ok(addr) = u64::from_str_radix(addr, 16) else {
            continue;
        };
        let name = match name.find(".llvm.") {
            Some(i) if ty == "d" => &name[..i],
            _ => name,
        };
        f(name, addr)?;
    }
    Ok(())
}

/// Resolves `wanted` names to addresses (libbpf's `kallsyms_cb`): a name seen twice with
/// different addresses is ambiguous (an error naming both), unresolved names stay `None`.
// Out of line: smaller code where it was inlined (issue 8: binary size).
#[inline(never)]
pub fn resolve(text: &str, wanted: &[&str]) -> Result<Vec<Option<u64>>, ExternError> {
    let mut out = vec![None; wanted.len()];
    let index: std::collections::HashMap<&str, usize> =
        wanted.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    for_each_symbol(text, |name, addr| {
        let Some(&i) = index.get(name) else {
            return Ok(());
        };
        match out[i] {
            Some(prev) if prev != addr => Err(ExternError::Ksym {
                name: name.to_string(),
                msg: format!("resolution is ambiguous: {prev:#x} or {addr:#x}"),
            }),
            Some(_) => Ok(()),
            None => {
                out[i] = Some(addr);
                Ok(())
            }
        }
    })?;
    Ok(out)
}

/// Reads `/proc/kallsyms`.
pub fn read() -> Result<String, ExternError> {
    std::fs::read_to_string(KALLSYMS)
        .map_err(|e| ExternError::Kconfig(format!("failed to open {KALLSYMS}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_detects_ambiguity() {
        // `.llvm.` suffixes match the plain name only for data symbols (`d`), as in libbpf's
        // `kallsyms_cb` (found by review: every type matched, so a `t foo.llvm.1` made `foo`
        // resolve, or be ambiguous next to the real `foo`).
        let text = "ffffffff81000000 T _stext\nffffffff81000010 d foo.llvm.1234\n\
                    ffffffff81000020 t baz.llvm.99\n0000000000001000 D bar [mod]\n";
        let r = resolve(text, &["_stext", "foo", "bar", "nope", "baz"]).unwrap();
        assert_eq!(
            r,
            [
                Some(0xffffffff81000000),
                Some(0xffffffff81000010),
                Some(0x1000),
                None,
                None
            ]
        );
        let r = resolve("20 D qux\n10 t qux.llvm.1\n", &["qux"]).unwrap();
        assert_eq!(r, [Some(0x20)]);
        let e = resolve("1 T a\n2 T a\n", &["a"]).unwrap_err();
        assert!(e.to_string().contains("ambiguous"), "{e}");
        assert_eq!(
            resolve("1 T a\n1 T a\ngarbage\n", &["a"]).unwrap(),
            [Some(1)]
        );
    }
}
