//! Reading an object file from disk, without the parts the loader never reads.
//!
//! clang's BPF objects are built with `-g` (BTF comes from it), so DWARF and the relocations of
//! the DWARF and BTF sections are often half of the file (40-55% of this repository's fixtures;
//! ~800 KB of a generated 1000-program object). libbpf maps the file and never touches those
//! pages. bpfload reads the file into a buffer of its full size but reads only the other
//! sections; the skipped ones stay zero. A large zeroed buffer comes from fresh pages, so the
//! skipped parts cost no memory until written (glibc and musl `calloc`; with an allocator that
//! clears memory by writing, they cost what reading them did before).
//!
//! The layout is taken from the ELF header and section headers. Anything this reader does not
//! understand (not ELF64, no section header table, extended section numbering, a header table or
//! name table outside the file, a symbol table whose entry size is not 24, a file that changes
//! size while read) makes it read the whole file instead, so the parser sees exactly the bytes
//! and errors it would see from a plain read. The sections it skips are DWARF data and REL
//! sections with the names [`super::elf::ignored_by_name`] gives, which the parser never reads
//! either. `object::corpus_tests` checks that both reads open every fixture and corpus object to
//! the same model, and the `elf_open` fuzz target checks it for every input.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

use goblin::elf::{header, section_header as sh};

/// The section header size of ELF64.
const SHDR_SIZE: usize = 64;
/// The largest object read: far beyond any BPF object (a generated 5000-program one is 9 MB), so
/// a device or a runaway stream given by mistake is refused instead of filling memory.
const MAX_OBJECT: usize = 256 << 20;
/// The symbol size of ELF64.
const SYM_SIZE: u64 = 24;

/// Reads the object at `path`; see the module documentation.
pub(crate) fn read_object(path: &Path) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        // A pipe or a character device has no size to plan with.
        return read_capped(file, MAX_OBJECT);
    }
    let len = match usize::try_from(meta.len()) {
        Ok(len) if len <= MAX_OBJECT => len,
        _ => return Err(too_large(MAX_OBJECT)),
    };
    let mut buf = vec![0u8; len];
    match read_sections(&file, &mut buf) {
        Ok(true) => Ok(buf),
        // Not understood, or the file changed under us: a plain read, as `std::fs::read` does.
        Ok(false) | Err(_) => {
            drop(buf);
            read_capped(File::open(path)?, MAX_OBJECT)
        }
    }
}

/// Everything `r` yields, or an error once it passes `max` bytes.
fn read_capped(r: impl Read, max: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    r.take(max as u64 + 1).read_to_end(&mut buf)?;
    if buf.len() > max {
        return Err(too_large(max));
    }
    Ok(buf)
}

fn too_large(max: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!("larger than {} MiB: not a BPF object", max >> 20),
    )
}

/// Fills `buf` (the file's size) with everything but the skippable sections. `Ok(false)`: the
/// layout is not one this reader handles, and `buf` must not be used.
fn read_sections(file: &File, buf: &mut [u8]) -> io::Result<bool> {
    let len = buf.len();
    if len < goblin::elf64::header::SIZEOF_EHDR {
        return Ok(false);
    }
    file.read_exact_at(&mut buf[..goblin::elf64::header::SIZEOF_EHDR], 0)?;
    if &buf[..4] != header::ELFMAG || buf[header::EI_CLASS] != header::ELFCLASS64 {
        return Ok(false);
    }
    let big = match buf[header::EI_DATA] {
        header::ELFDATA2LSB => false,
        header::ELFDATA2MSB => true,
        _ => return Ok(false),
    };
    let rd = Fields { big };
    let shoff = rd.u64(buf, 0x28);
    let (shentsize, shnum, shstrndx) = (rd.u16(buf, 0x3a), rd.u16(buf, 0x3c), rd.u16(buf, 0x3e));
    // shnum 0 and shstrndx SHN_XINDEX mean the real values are in section 0 (extended numbering).
    if shentsize != SHDR_SIZE || shnum == 0 || shstrndx >= shnum {
        return Ok(false);
    }
    let Some(table) = range(shoff, (shnum * SHDR_SIZE) as u64, len) else {
        return Ok(false);
    };
    file.read_exact_at(&mut buf[table.clone()], table.start as u64)?;
    // No allocation here: even small ones, made while the buffer is live, changed the heap's
    // layout enough to cost a small object's load 12 KiB of peak RSS.
    let shdr = |buf: &[u8], i: usize| {
        let h = table.start + i * SHDR_SIZE;
        Shdr {
            name: rd.u32(buf, h),
            sh_type: rd.u32(buf, h + 4),
            offset: rd.u64(buf, h + 0x18),
            size: rd.u64(buf, h + 0x20),
            link: rd.u32(buf, h + 0x28),
            entsize: rd.u64(buf, h + 0x38),
        }
    };
    // Section 0 must be the null section: the parser does not check that the section at index 0
    // lies inside the file, and it holds extended numbering's real counts.
    if shdr(buf, 0).sh_type != sh::SHT_NULL {
        return Ok(false);
    }
    // The parser finds the symbol table by type (the last one) and its strings through its
    // `sh_link`, so those strings are read whatever their name. The table is read as
    // `sh_size / sh_entsize` entries of 24 bytes: any other entry size, or a size that is not a
    // whole number of entries, makes the parser read other bytes than the section's range. A
    // link that is not a section index (SHN_XINDEX sends the parser to section 0's `sh_link`),
    // or strings without file bytes (NOBITS, which the parser still reads from the file), are
    // read whole too.
    let mut sym_strings = None;
    for i in 0..shnum {
        let h = shdr(buf, i);
        if h.sh_type == sh::SHT_SYMTAB {
            let link = h.link as usize;
            if h.entsize != SYM_SIZE
                || h.size % SYM_SIZE != 0
                || link == 0
                || link >= shnum
                || shdr(buf, link).sh_type == sh::SHT_NOBITS
            {
                return Ok(false);
            }
            sym_strings = Some(link);
        }
    }
    let names_hdr = shdr(buf, shstrndx);
    let Some(names) = range(names_hdr.offset, names_hdr.size, len) else {
        return Ok(false);
    };
    file.read_exact_at(&mut buf[names.clone()], names.start as u64)?;
    // A section read below may overlap the header or name table (a hostile file); it writes the
    // same file bytes there, so the tables read afterwards are unchanged.
    for i in 0..shnum {
        let h = shdr(buf, i);
        if h.sh_type == sh::SHT_NOBITS || h.size == 0 {
            continue;
        }
        let name = usize::try_from(h.name)
            .ok()
            .and_then(|n| buf.get(names.start.checked_add(n)?..names.end))
            .and_then(|s| s.iter().position(|&b| b == 0).map(|end| &s[..end]));
        // Only DWARF data (PROGBITS) and relocations (REL) of the names the parser ignores.
        let skippable = matches!(h.sh_type, sh::SHT_PROGBITS | sh::SHT_REL)
            && name.is_some_and(super::elf::ignored_by_name)
            && sym_strings != Some(i);
        if skippable {
            continue;
        }
        // A section outside the file is left for the parser to report.
        if let Some(r) = range(h.offset, h.size, len) {
            file.read_exact_at(&mut buf[r.clone()], r.start as u64)?;
        }
    }
    // A file that grew meanwhile would be cut short here; read it whole instead.
    Ok(file.metadata()?.len() == len as u64)
}

/// The fields of an ELF64 section header this reader uses.
struct Shdr {
    name: u32,
    sh_type: u32,
    offset: u64,
    size: u64,
    link: u32,
    entsize: u64,
}

/// `[off, off + size)` if it lies inside a file of `len` bytes.
fn range(off: u64, size: u64, len: usize) -> Option<std::ops::Range<usize>> {
    let start = usize::try_from(off).ok()?;
    let end = start.checked_add(usize::try_from(size).ok()?)?;
    (end <= len).then_some(start..end)
}

/// Reads header fields in the object's byte order (callers stay inside the bytes already read).
#[derive(Clone, Copy)]
struct Fields {
    big: bool,
}

impl Fields {
    fn bytes<const N: usize>(self, buf: &[u8], at: usize) -> [u8; N] {
        let mut b = [0u8; N];
        b.copy_from_slice(&buf[at..at + N]);
        if self.big {
            b.reverse();
        }
        b
    }
    fn u16(self, buf: &[u8], at: usize) -> usize {
        u16::from_le_bytes(self.bytes(buf, at)).into()
    }
    fn u32(self, buf: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(self.bytes(buf, at))
    }
    fn u64(self, buf: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(self.bytes(buf, at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::fixtures::fixture_objects as fixtures;

    /// Section ranges of `data` (from the real parser) and whether each is skippable.
    fn sections(data: &[u8]) -> Vec<(std::ops::Range<usize>, bool)> {
        let elf = goblin::elf::Elf::parse(data).unwrap();
        elf.section_headers
            .iter()
            .filter(|h| h.sh_type != sh::SHT_NOBITS && h.sh_size > 0)
            .map(|h| {
                let name = elf.shdr_strtab.get_at(h.sh_name).unwrap();
                let start = h.sh_offset as usize;
                let by_type = matches!(h.sh_type, sh::SHT_PROGBITS | sh::SHT_REL);
                (
                    start..start + h.sh_size as usize,
                    by_type && super::super::elf::ignored_by_name(name.as_bytes()),
                )
            })
            .collect()
    }

    #[test]
    fn reads_every_section_but_the_skippable_ones() {
        let mut skipped_total = 0;
        for p in fixtures() {
            let full = std::fs::read(&p).unwrap();
            let sparse = read_object(&p).unwrap();
            assert_eq!(sparse.len(), full.len(), "{}", p.display());
            let secs = sections(&full);
            let mut skipped = vec![false; full.len()];
            for (r, skip) in &secs {
                if *skip {
                    skipped[r.clone()].iter_mut().for_each(|s| *s = true);
                }
            }
            // Read sections (and the header tables) are exact; skipped ones stay zero.
            for (r, skip) in &secs {
                if !*skip {
                    assert_eq!(sparse[r.clone()], full[r.clone()], "{}: {r:?}", p.display());
                }
            }
            for (i, (&s, &f)) in sparse.iter().zip(&full).enumerate() {
                if skipped[i] {
                    assert_eq!(
                        s,
                        0,
                        "{}: byte {i} of a skipped section was read",
                        p.display()
                    );
                } else if s != f {
                    // Only padding between sections may differ (it is never read).
                    assert!(
                        !secs.iter().any(|(r, _)| r.contains(&i)),
                        "{}: byte {i} differs",
                        p.display()
                    );
                }
            }
            skipped_total += skipped.iter().filter(|&&s| s).count();
        }
        // The fixtures are built with -g: the skipped part is real, not zero.
        assert!(skipped_total > 10_000, "only {skipped_total} bytes skipped");
    }

    #[test]
    fn streams_and_files_past_the_limit_are_refused() {
        assert_eq!(read_capped(&[7u8; 100][..], 100).unwrap(), vec![7u8; 100]);
        let e = read_capped(std::io::repeat(0), 1 << 20).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        assert!(e.to_string().contains("larger than 1 MiB"), "{e}");
        // A regular file past the limit is refused before anything is read.
        let dir = std::env::temp_dir().join(format!("bpfload-big-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("big.o");
        let f = File::create(&p).unwrap();
        f.set_len(MAX_OBJECT as u64 + 1).unwrap(); // sparse: no disk, no memory
        let e = read_object(&p).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn layouts_it_does_not_handle_are_read_whole() {
        let dir = std::env::temp_dir().join(format!("bpfload-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = std::fs::read(&fixtures()[0]).unwrap();
        let mut cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            ("short", good[..20].to_vec()),
            ("not elf", b"hello world, this is not an ELF file at all, but it is long enough to have a header".to_vec()),
        ];
        let mut table_outside = good.clone();
        table_outside[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
        cases.push(("section table outside", table_outside));
        let mut xindex = good.clone();
        xindex[0x3e..0x40].copy_from_slice(&0xffffu16.to_le_bytes());
        cases.push(("extended numbering", xindex));
        // A symbol table whose entry size is not 24 (found by fuzzing: the parser then reads past
        // the section, into skipped DWARF).
        let mut entsize = good.clone();
        let shoff = u64::from_le_bytes(good[0x28..0x30].try_into().unwrap()) as usize;
        let shnum = u16::from_le_bytes(good[0x3c..0x3e].try_into().unwrap()) as usize;
        let symtab = (0..shnum)
            .map(|i| shoff + i * SHDR_SIZE)
            .find(|&h| u32::from_le_bytes(good[h + 4..h + 8].try_into().unwrap()) == sh::SHT_SYMTAB)
            .unwrap();
        entsize[symtab + 0x38..symtab + 0x40].copy_from_slice(&1u64.to_le_bytes());
        cases.push(("symbol entry size", entsize));
        // Three more ways for the parser to read other bytes than the sections the reader reads
        // (found by review, each reproduced with `open_file` and `open_bytes` disagreeing):
        let put_u32 =
            |b: &mut Vec<u8>, at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        let strings = u32::from_le_bytes(good[symtab + 0x28..symtab + 0x2c].try_into().unwrap());
        // the symbols' string table named through SHN_XINDEX (the parser then takes section 0's
        // `sh_link`);
        let mut xlink = good.clone();
        put_u32(&mut xlink, symtab + 0x28, 0xffff);
        put_u32(&mut xlink, shoff + 0x28, strings);
        cases.push(("symbol strings through SHN_XINDEX", xlink));
        // the symbols' strings in a NOBITS section (the parser still reads its file range);
        let mut nobits = good.clone();
        put_u32(
            &mut nobits,
            shoff + strings as usize * SHDR_SIZE + 4,
            sh::SHT_NOBITS,
        );
        cases.push(("symbol strings NOBITS", nobits));
        // section 0 other than the null section (the parser does not check that it lies in the
        // file), and a symbol table that is not a whole number of entries.
        let mut sec0 = good.clone();
        sec0[shoff..shoff + SHDR_SIZE].copy_from_slice(&good[symtab..symtab + SHDR_SIZE]);
        put_u32(&mut sec0, symtab + 4, sh::SHT_PROGBITS);
        cases.push(("section 0 a symbol table", sec0));
        let mut ragged = good.clone();
        let size = u64::from_le_bytes(good[symtab + 0x20..symtab + 0x28].try_into().unwrap());
        ragged[symtab + 0x20..symtab + 0x28].copy_from_slice(&(size - 1).to_le_bytes());
        cases.push(("symbol table size not whole entries", ragged));
        let mut truncated = good.clone();
        truncated.truncate(good.len() / 2);
        cases.push(("truncated", truncated));
        let mut sparse = Vec::new();
        for (what, bytes) in cases {
            let p = dir.join("obj.o");
            std::fs::write(&p, &bytes).unwrap();
            if read_object(&p).unwrap() != bytes {
                sparse.push(what);
            }
        }
        assert!(sparse.is_empty(), "not read whole: {sparse:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
