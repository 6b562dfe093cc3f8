//! Hostile sizes (issue 7): counts and offsets that point far beyond the input give an error, and the parser's
//! peak allocation stays bounded by a small multiple of the input size. A counting global allocator measures
//! the peak of the allocations made on the test's own thread while the parser runs.
//!
//! Also: regression inputs found by fuzzing (fuzz/), and the rule that verifier logs and errors never carry
//! more than the caller asked for.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bpfload::{Loader, Object};
use bpfload_btf::{Btf, BtfExt, BtfModel};
use bpfload_syscall::LogOptions;
use bpfload_tests::{fixture, require_root, serial};

// ---------------------------------------------------------------------------------------------------------------
// Counting allocator (per thread, so parallel tests do not disturb each other)

struct Counting;

thread_local! {
    static TRACK: Cell<bool> = const { Cell::new(false) };
    static CUR: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn on_alloc(size: usize) {
    let _ = TRACK.try_with(|t| {
        if t.get() {
            let c = CUR.with(|c| {
                let v = c.get() + size;
                c.set(v);
                v
            });
            PEAK.with(|p| p.set(p.get().max(c)));
        }
    });
}

fn on_free(size: usize) {
    let _ = TRACK.try_with(|t| {
        if t.get() {
            CUR.with(|c| c.set(c.get().saturating_sub(size)));
        }
    });
}

// SAFETY: forwards to the system allocator unchanged; the bookkeeping touches only const-initialised
// thread-locals without destructors (no allocation, no re-entrancy).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        on_alloc(layout.size());
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        on_free(layout.size());
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        on_free(layout.size());
        on_alloc(new_size);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` and returns its result with the peak bytes it had allocated at once on this thread.
fn peak_of<R>(f: impl FnOnce() -> R) -> (R, usize) {
    CUR.with(|c| c.set(0));
    PEAK.with(|p| p.set(0));
    TRACK.with(|t| t.set(true));
    let r = f();
    TRACK.with(|t| t.set(false));
    (r, PEAK.with(|p| p.get()))
}

/// The bound every parser must keep: a fixed allowance (error strings, small tables) plus a multiple of the
/// input. The hostile inputs below claim gigabytes; a parser that trusts them blows through this.
fn bound(input: usize) -> usize {
    64 * 1024 + 16 * input
}

// ---------------------------------------------------------------------------------------------------------------
// BTF builders

const BTF_KIND_INT: u32 = 1;
const BTF_KIND_STRUCT: u32 = 4;
const BTF_KIND_TYPEDEF: u32 = 8;
const BTF_KIND_CONST: u32 = 10;

fn info(kind: u32, vlen: u32) -> u32 {
    (kind << 24) | vlen
}

/// A BTF blob: the header, `types` (u32 words) and `strings`.
fn btf(types: &[u32], strings: &[u8]) -> Vec<u8> {
    let tbytes: Vec<u8> = types.iter().flat_map(|w| w.to_le_bytes()).collect();
    let mut out = Vec::new();
    out.extend_from_slice(&0xeb9fu16.to_le_bytes());
    out.push(1); // version
    out.push(0); // flags
    out.extend_from_slice(&24u32.to_le_bytes()); // hdr_len
    out.extend_from_slice(&0u32.to_le_bytes()); // type_off
    out.extend_from_slice(&(tbytes.len() as u32).to_le_bytes());
    out.extend_from_slice(&(tbytes.len() as u32).to_le_bytes()); // str_off
    out.extend_from_slice(&(strings.len() as u32).to_le_bytes());
    out.extend_from_slice(&tbytes);
    out.extend_from_slice(strings);
    out
}

/// Every operation the loader does on a BTF blob, with errors (not panics) as the expected outcome somewhere.
fn walk(data: &[u8]) -> Result<(), String> {
    let b = Btf::parse(data).map_err(|e| e.to_string())?;
    let mut first_err = None;
    for id in b.ids() {
        for r in [
            b.type_by_id(id).map(|_| ()),
            b.name(id).map(|_| ()),
            b.resolve_size(id).map(|_| ()),
            b.skip_mods_and_typedefs(id).map(|_| ()),
        ] {
            if let Err(e) = r {
                first_err.get_or_insert(e.to_string());
            }
        }
    }
    if let Err(e) = BtfModel::from_btf(&b).and_then(|m| m.to_bytes()) {
        first_err.get_or_insert(e.to_string());
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[test]
fn the_counting_allocator_counts() {
    let (v, peak) = peak_of(|| vec![1u8; 1 << 20]);
    assert!(peak >= 1 << 20, "peak {peak}");
    drop(v);
    let ((), peak) = peak_of(|| ());
    assert_eq!(peak, 0);
}

#[test]
fn btf_vlen_65535_with_no_members_is_an_error_with_bounded_allocation() {
    // STRUCT claiming 65535 members (12 bytes each, 786 KB) in a 40-byte type section.
    let data = btf(&[1, info(BTF_KIND_STRUCT, 0xffff), 8, 0, 0], b"\0s\0");
    let (r, peak) = peak_of(|| walk(&data));
    let e = r.expect_err("a struct with 65535 missing members must not parse");
    assert!(
        peak < bound(data.len()),
        "peak {peak} bytes for {} input bytes ({e})",
        data.len()
    );
}

#[test]
fn btf_string_offset_past_the_end_is_an_error() {
    // INT named at offset 1_000_000 in a 3-byte string section.
    let data = btf(&[1_000_000, info(BTF_KIND_INT, 0), 4, 32], b"\0a\0");
    let (r, peak) = peak_of(|| walk(&data));
    let e = r.expect_err("a name past the string section must be an error");
    assert!(
        e.contains("1000000") || e.to_lowercase().contains("string"),
        "{e}"
    );
    assert!(peak < bound(data.len()), "peak {peak}");
    let b = Btf::parse(&data).unwrap_or_else(|e| panic!("the header itself is fine: {e}"));
    assert!(b.name(1).is_err());
    assert!(b.str_at(u32::MAX).is_err());
}

#[test]
fn btf_type_loops_terminate_with_an_error() {
    // [1] typedef a -> [2]; [2] const -> [3]; [3] typedef b -> [1]: resolving any of them loops.
    let data = btf(
        &[
            1,
            info(BTF_KIND_TYPEDEF, 0),
            2,
            0,
            info(BTF_KIND_CONST, 0),
            3,
            3,
            info(BTF_KIND_TYPEDEF, 0),
            1,
        ],
        b"\0a\0b\0",
    );
    let b = Btf::parse(&data).expect("loops are legal to parse, not to resolve");
    for id in 1..=3 {
        assert!(b.resolve_size(id).is_err(), "resolve_size({id}) of a loop");
        assert!(
            b.skip_mods_and_typedefs(id).is_err(),
            "skip_mods_and_typedefs({id}) of a loop"
        );
    }
    // A self-referencing type (typedef of itself) too.
    let data = btf(&[1, info(BTF_KIND_TYPEDEF, 0), 1], b"\0a\0");
    let b = Btf::parse(&data).unwrap();
    assert!(b.resolve_size(1).is_err());
}

#[test]
fn btf_header_lengths_beyond_the_input_are_refused() {
    for (type_len, str_len) in [(u32::MAX, 4), (4, u32::MAX), (0x8000_0000, 0x8000_0000)] {
        let mut data = btf(&[], b"\0");
        data[12..16].copy_from_slice(&type_len.to_le_bytes());
        data[16..20].copy_from_slice(&0u32.to_le_bytes());
        data[20..24].copy_from_slice(&str_len.to_le_bytes());
        let (r, peak) = peak_of(|| Btf::parse(&data).map(|_| ()));
        assert!(
            r.is_err(),
            "type_len {type_len:#x} str_len {str_len:#x} accepted"
        );
        assert!(peak < bound(data.len()), "peak {peak}");
    }
}

#[test]
fn btf_ext_record_counts_beyond_the_input_are_refused() {
    // .BTF.ext header (32 bytes) + func_info: record size 8, one section claiming 0xffffffff records.
    let mut d = Vec::new();
    d.extend_from_slice(&0xeb9fu16.to_le_bytes());
    d.extend_from_slice(&[1, 0]);
    d.extend_from_slice(&32u32.to_le_bytes()); // hdr_len
    let sub: Vec<u8> = [8u32, 1, 0xffff_ffff, 0, 0]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    for w in [
        0u32,
        sub.len() as u32,
        sub.len() as u32,
        0,
        sub.len() as u32,
        0,
    ] {
        d.extend_from_slice(&w.to_le_bytes()); // func_info off/len, line_info off/len, core_relo off/len
    }
    d.extend_from_slice(&sub);
    let (r, peak) = peak_of(|| BtfExt::parse(&d).map(|_| ()));
    assert!(
        r.is_err(),
        "a section with 2^32-1 records in 20 bytes parsed"
    );
    assert!(peak < bound(d.len()), "peak {peak}");
}

// ---------------------------------------------------------------------------------------------------------------
// ELF: mutate a real fixture's headers

struct Elf64 {
    data: Vec<u8>,
}

impl Elf64 {
    fn fixture(name: &str) -> Elf64 {
        let data = std::fs::read(fixture(name)).expect("fixture");
        assert_eq!(
            &data[..6],
            b"\x7fELF\x02\x01",
            "a little-endian ELF64 fixture"
        );
        Elf64 { data }
    }
    fn u16_at(&self, o: usize) -> u16 {
        u16::from_le_bytes(self.data[o..o + 2].try_into().unwrap())
    }
    fn u32_at(&self, o: usize) -> u32 {
        u32::from_le_bytes(self.data[o..o + 4].try_into().unwrap())
    }
    fn u64_at(&self, o: usize) -> u64 {
        u64::from_le_bytes(self.data[o..o + 8].try_into().unwrap())
    }
    fn shdr(&self, i: usize) -> usize {
        self.u64_at(0x28) as usize + i * self.u16_at(0x3a) as usize
    }
    fn shnum(&self) -> usize {
        self.u16_at(0x3c) as usize
    }
    /// Index of the section named `name`.
    fn section(&self, name: &str) -> usize {
        let strndx = self.u16_at(0x3e) as usize;
        let stroff = self.u64_at(self.shdr(strndx) + 0x18) as usize;
        (0..self.shnum())
            .find(|&i| {
                let n = stroff + self.u32_at(self.shdr(i)) as usize;
                self.data[n..].starts_with(name.as_bytes()) && self.data[n + name.len()] == 0
            })
            .unwrap_or_else(|| panic!("no section {name}"))
    }
    /// Index of the first section of type `ty`.
    fn section_of_type(&self, ty: u32) -> usize {
        (0..self.shnum())
            .find(|&i| self.u32_at(self.shdr(i) + 4) == ty)
            .expect("section type")
    }
    fn set_u64(&mut self, o: usize, v: u64) {
        self.data[o..o + 8].copy_from_slice(&v.to_le_bytes());
    }
    fn set_u16(&mut self, o: usize, v: u16) {
        self.data[o..o + 2].copy_from_slice(&v.to_le_bytes());
    }
}

const SH_OFFSET: usize = 0x18;
const SH_SIZE: usize = 0x20;
const SHT_SYMTAB: u32 = 2;

fn open_bounded(what: &str, data: &[u8]) {
    let (r, peak) = peak_of(|| Object::open_bytes("hostile", data).map(|_| ()));
    let e = r.expect_err(what);
    assert!(
        peak < bound(data.len()),
        "{what}: peak {peak} bytes for a {}-byte file ({e})",
        data.len()
    );
}

#[test]
fn elf_section_of_4_gib_is_an_error_with_bounded_allocation() {
    for sec in [".BTF", ".BTF.ext", "socket", ".data", ".maps"] {
        let mut elf = Elf64::fixture("globals.bpf.o");
        let i = elf.section(sec);
        let h = elf.shdr(i);
        elf.set_u64(h + SH_SIZE, 0xffff_ffff);
        open_bounded(&format!("{sec} of 4 GiB"), &elf.data);
        let mut elf = Elf64::fixture("globals.bpf.o");
        elf.set_u64(h + SH_SIZE, u64::MAX);
        open_bounded(&format!("{sec} of 2^64-1 bytes"), &elf.data);
        let mut elf = Elf64::fixture("globals.bpf.o");
        elf.set_u64(h + SH_OFFSET, 0xffff_ffff_0000);
        open_bounded(&format!("{sec} starting past the end"), &elf.data);
    }
}

#[test]
fn elf_huge_symbol_count_is_an_error_with_bounded_allocation() {
    let mut elf = Elf64::fixture("globals.bpf.o");
    let i = elf.section_of_type(SHT_SYMTAB);
    let h = elf.shdr(i);
    // 2^28 symbols of 24 bytes claimed by a file of a few KiB.
    elf.set_u64(h + SH_SIZE, 24 << 28);
    open_bounded("a symbol table of 2^28 entries", &elf.data);
}

#[test]
fn elf_huge_section_header_table_is_an_error_with_bounded_allocation() {
    let mut elf = Elf64::fixture("globals.bpf.o");
    elf.set_u16(0x3c, 0xffff); // e_shnum
    open_bounded("65535 section headers", &elf.data);
    let mut elf = Elf64::fixture("globals.bpf.o");
    elf.set_u64(0x28, 0xffff_ffff_ffff_0000); // e_shoff
    open_bounded("section headers past the end", &elf.data);
    // Relocation sections claiming 2^32 entries.
    let mut elf = Elf64::fixture("globals.bpf.o");
    let rel = (0..elf.shnum())
        .find(|&i| elf.u32_at(elf.shdr(i) + 4) == 9) // SHT_REL
        .expect("a relocation section");
    let h = elf.shdr(rel);
    elf.set_u64(h + SH_SIZE, 16 << 32);
    open_bounded("a relocation section of 2^32 entries", &elf.data);
}

#[test]
fn truncated_objects_are_errors_at_every_length() {
    // Every prefix of a real object (step 61 bytes to keep it quick): an error or an object, never a panic,
    // and never more than the bound.
    let elf = Elf64::fixture("mapinmap.bpf.o");
    for len in (0..elf.data.len()).step_by(61) {
        let data = &elf.data[..len];
        let (_, peak) = peak_of(|| Object::open_bytes("truncated", data).map(|_| ()));
        assert!(peak < bound(elf.data.len()), "prefix {len}: peak {peak}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Logs and errors carry no more than asked for

#[test]
fn verifier_log_and_error_stay_within_what_the_caller_asked_for() {
    if !require_root("loading a program the verifier rejects") {
        return;
    }
    let _serial = serial();
    let obj = Object::open_file(fixture("bad_prog.bpf.o")).expect("open bad_prog");
    // No log at all: the error carries none.
    let e = Loader::new()
        .log_options(LogOptions::NONE)
        .load(&obj)
        .expect_err("bad_prog must fail");
    let msg = e.to_string();
    assert!(
        !msg.contains("verifier log"),
        "asked for no log, got: {msg}"
    );
    // A 256-byte log: the log held is at most 256 bytes, and the error prints at most 20 of its lines.
    for limit in [256usize, 4096] {
        let e = Loader::new()
            .log_options(LogOptions {
                level: 1,
                size_limit: limit,
            })
            .load(&obj)
            .expect_err("bad_prog must fail");
        let bpfload::LoadError::Program { source, .. } = &e else {
            panic!("expected a program error, got {e}");
        };
        assert!(
            source.log().len() <= limit,
            "log of {} bytes with a {limit}-byte limit",
            source.log().len()
        );
        let msg = e.to_string();
        let tail = msg
            .split("verifier log (last lines):\n")
            .nth(1)
            .unwrap_or("");
        assert!(
            tail.lines().count() <= 20,
            "error printed {} log lines",
            tail.lines().count()
        );
        assert!(
            msg.len() <= limit + 1024,
            "error of {} bytes for a {limit}-byte log",
            msg.len()
        );
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Pinned maps: reused only when compatible, never through something that is not a bpffs map

/// Loads maps.bpf.o (whose `pinned_stats` is pinned by name) with `root` as the pin root.
fn load_pinned(root: &std::path::Path) -> Result<bpfload::Loaded, bpfload::LoadError> {
    let obj = Object::open_file(fixture("maps.bpf.o")).expect("open maps.bpf.o");
    Loader::new().pin_root(root).load(&obj)
}

#[test]
fn a_pinned_program_in_the_maps_place_is_refused() {
    if !require_root("pinning") {
        return;
    }
    let _serial = serial();
    let pins = bpfload_tests::PinDir::new("hostile-prog").expect("pin dir");
    // Pin a program where the map's pin should be.
    let l = Loader::new()
        .load(&Object::open_file(fixture("globals.bpf.o")).unwrap())
        .unwrap();
    let prog = l.programs().first().expect("a program").fd();
    bpfload_syscall::obj::pin(prog, &pins.path().join("pinned_stats")).expect("pin a program");
    let e = load_pinned(pins.path()).expect_err("a program pinned as the map must be refused");
    let msg = e.to_string();
    assert!(
        msg.contains("pinned_stats") && msg.contains("not a map"),
        "{msg}"
    );
}

#[test]
fn an_incompatible_pinned_map_is_refused() {
    if !require_root("pinning") {
        return;
    }
    let _serial = serial();
    let pins = bpfload_tests::PinDir::new("hostile-incompat").expect("pin dir");
    // An ARRAY like pinned_stats but with 8 entries instead of 4.
    let fd = bpfload_syscall::map::create(&bpfload_syscall::MapCreateAttr {
        map_type: bpfload_syscall::uapi::bpf_map_type::BPF_MAP_TYPE_ARRAY as u32,
        key_size: 4,
        value_size: 8,
        max_entries: 8,
        name: Some("impostor"),
        ..Default::default()
    })
    .expect("create a map");
    use std::os::fd::AsFd;
    bpfload_syscall::obj::pin(fd.as_fd(), &pins.path().join("pinned_stats")).expect("pin");
    let e = load_pinned(pins.path()).expect_err("an incompatible pinned map must be refused");
    let msg = e.to_string();
    assert!(
        msg.contains("pinned_stats") && msg.contains("parameter mismatch"),
        "{msg}"
    );
    // The impostor is still the one pinned (not replaced, not removed).
    let pinned = bpfload_syscall::obj::get(&pins.path().join("pinned_stats"), 0).unwrap();
    let a = bpfload_syscall::info::map_info(pinned.as_fd()).unwrap();
    let b = bpfload_syscall::info::map_info(fd.as_fd()).unwrap();
    assert_eq!(a.id, b.id);
}

#[test]
fn a_pin_root_outside_bpffs_is_never_followed() {
    if !require_root("pinning") {
        return;
    }
    let _serial = serial();
    // A plain directory with a plain file where the pin would be: anyone with write access there could have
    // planted it. The load fails; it neither reuses nor replaces the file.
    let dir = std::env::temp_dir().join(format!("bpfload-hostile-pin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("pinned_stats"), b"planted").unwrap();
    let r = load_pinned(&dir);
    let content = std::fs::read(dir.join("pinned_stats")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let e = r.expect_err("a pin on a non-bpf filesystem must fail the load");
    assert!(e.to_string().contains("pinned_stats"), "{e}");
    assert_eq!(content, b"planted");
}

/// Found by the `elf_open` fuzz target (CI fuzz smoke, 2026-11-30): a `.kconfig` extern whose BTF
/// type claims ~755 MB. Open used to allocate the zeroed `.kconfig` image of that size; the image
/// now waits for prepare, where the kernel's limit applies.
#[test]
fn kconfig_extern_of_755_mb_opens_with_bounded_allocation() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("bpf/hostile/fuzz-elf_open-kconfig-oom.bin");
    let data = std::fs::read(&path).expect("fuzz regression input");
    let (r, peak) = peak_of(|| Object::open_bytes("hostile", &data).map(|_| ()));
    assert!(
        peak < bound(data.len()),
        "peak {peak} bytes for a {}-byte file ({r:?})",
        data.len()
    );
}
