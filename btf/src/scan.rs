//! The parse scan: one pass over the type section that bounds-checks every record and records the
//! sparse [`TypeOffsets`]; for the kernel's BTF it also records the names and kinds of the named
//! non-FUNC types ([`Keys`]: what CO-RE and the other non-FUNC lookups read).
//!
//! Why it looks like this (vmlinux: 3.2 MB of types, ~127k records, 15k named non-FUNC types):
//! - Walking records is one long dependency chain (load info → kind → length → next offset), about
//!   15 cycles per record however little else is done, so the hot loop keeps everything in
//!   registers and computes lengths with shifts instead of table loads — and walks *two* chains
//!   at once, from two record boundaries, so the CPU overlaps their latencies.
//! - No name index is built here. The walk stores each named non-FUNC record's name offset and
//!   kind (branch-free, 5 bytes per key) and nothing reads a name yet: a first CO-RE load asks for
//!   all its types in one pass over the keys (as libbpf scans all types, but over 15k names and
//!   without touching the type section), and the index, needed only when lookups repeat, is built
//!   from the keys later. Building it here cost ~0.7 ms of the ~1.3 ms scan, a
//!   cost every process paid on its first load.
//! - One thread. A helper thread used to take half of the walk and the index; for the walk alone
//!   its start, stack, malloc arena and hand-off cost more than it saved on the 2-vCPU machine
//!   this was measured on (`btf/README.md`, "Speed").
//! - Where a chain starts other than at offset 0 is a guess: a record boundary found by looking
//!   for a run of plausible headers (kernel-valid BTF has zero unused info bits, type ids below
//!   2^20, ...; a misaligned guess almost never looks like a run of records). A guessed part is
//!   used only if the walk of the part before it lands *exactly* on its start: from a real record
//!   boundary the walk is deterministic, so the part's records are then exactly the ones a single
//!   walk sees. Anything irregular (a guess that is not met, any error) falls back to one plain
//!   walk from the start, which also reports errors with the right type id, so hostile input can
//!   only cost time, never change a result.

use std::ops::Range;

use bytes::Bytes;

use crate::error::BtfError;
use crate::index::{KeySeg, Keys, Part};
use crate::offsets::{record_len, word, TypeOffsets, STRIDE};
use crate::raw::{info_kind, Endian, MAX_TYPE_ID, TYPE_HEADER_LEN};

/// Smallest type section scanned as several chains (vmlinux: ~3 MB; modules and objects: less).
const PARALLEL_MIN: usize = 1 << 20;
/// Where the chains start, as fractions of the type section (per 1024): two chains from 0 and
/// `SPLITS[0]`, then two from `SPLITS[1]` and `SPLITS[2]`. The kernel's BTF (pahole) puts the
/// named structs, unions, enums and typedefs first (long records) and the ~56k FUNC and
/// FUNC_PROTO records last (short ones), and a record costs about the same whatever its length,
/// so the chains are about equal in records (~32k each), not in bytes.
const SPLITS: [usize; 3] = [370, 580, 790];
/// How far past a split point a record boundary is searched for.
const GUESS_WINDOW: usize = 64 << 10;
/// Consecutive plausible records that make a guessed boundary credible.
const GUESS_RUN: usize = 64;
/// Headers and entries looked at, at most, to guess one boundary (normally a few hundred).
const GUESS_BUDGET: usize = 1 << 20;

/// One chain's walk: where it is and what it has recorded.
struct Cursor {
    off: usize,
    /// Records walked.
    count: usize,
    /// Offsets of the chain's records `0, STRIDE, 2 * STRIDE, ...`.
    starts: Vec<u32>,
    /// Bit `i` set: record `i` is named and not a FUNC (keyed walks only): a CO-RE candidate,
    /// struct_ops type, typedef, ... whose name lookups read it. The bits give the records'
    /// numbers (type ids) and the count that sizes the name index exactly, if one is built.
    marks: Vec<u64>,
    /// The name offsets of the marked records, in order, and their kinds: what lookups and the
    /// name index read, without walking to the records again or touching the type section at
    /// all. 5 bytes per key, not per record.
    names: Vec<u32>,
    kinds: Vec<u8>,
    /// The current 64 records' keys (`stage[..staged]`), moved to `names`/`kinds` with each new
    /// mark word: so each record's key is stored without a branch (always written, kept only
    /// if wanted), and the lists grow by whole keys, with no zeroed room for every record.
    stage: [(u32, u8); 64],
    staged: usize,
}

impl Cursor {
    /// A chain starting at record boundary `from`, expected to cover about `bytes` bytes.
    fn new(from: usize, bytes: usize, indexed: bool) -> Cursor {
        Cursor {
            off: from,
            count: 0,
            // Records are at least 12 bytes long: room for every record of `bytes` (the walk
            // only passes its end on irregular input), so the grid is never copied to grow.
            // Pages are touched only as they are written, and the unused tail is given back
            // in place (`TypeOffsets::from_segments`).
            starts: Vec::with_capacity(bytes / (TYPE_HEADER_LEN * STRIDE) + 1),
            marks: Vec::with_capacity(if indexed {
                (bytes / TYPE_HEADER_LEN).div_ceil(64)
            } else {
                0
            }),
            // About one key per 100 bytes where vmlinux has most (its structs and typedefs);
            // a list that needs more grows, and the unused tail is given back (`into_keys`).
            names: Vec::with_capacity(if indexed { bytes / 96 + 64 } else { 0 }),
            kinds: Vec::with_capacity(if indexed { bytes / 96 + 64 } else { 0 }),
            stage: [(0, 0); 64],
            staged: 0,
        }
    }

    /// Moves the staged keys to the lists.
    fn flush_keys(&mut self) {
        let staged = &self.stage[..self.staged.min(64)];
        self.names.extend(staged.iter().map(|k| k.0));
        self.kinds.extend(staged.iter().map(|k| k.1));
        self.staged = 0;
    }

    /// The chain's keys: its marks and the marked records' name offsets and kinds.
    fn into_keys(mut self, first: usize) -> KeySeg {
        self.flush_keys();
        self.names.shrink_to_fit();
        self.kinds.shrink_to_fit();
        self.marks.shrink_to_fit();
        KeySeg::new(first, self.marks, self.names, self.kinds)
    }

    /// Walks one record (the caller checked `off < types.len()`).
    #[inline(always)]
    fn step<const INDEX: bool>(&mut self, types: &[u8], start_id: u32) -> Result<(), BtfError> {
        let (off, idx) = (self.off, self.count);
        let len = types.len();
        let Some(hdr) = types.get(off..off + TYPE_HEADER_LEN) else {
            return Err(BtfError::TypeTruncated {
                id: start_id.saturating_add(idx as u32),
                offset: off,
                needed: TYPE_HEADER_LEN,
                available: len.saturating_sub(off),
            });
        };
        let rd = u32::from_le_bytes;
        let info = rd([hdr[4], hdr[5], hdr[6], hdr[7]]);
        let Some(rec_len) = record_len(info) else {
            return Err(BtfError::UnknownKind {
                id: start_id.saturating_add(idx as u32),
                offset: off,
                kind: info_kind(info),
            });
        };
        if len - off < rec_len {
            return Err(BtfError::TypeTruncated {
                id: start_id.saturating_add(idx as u32),
                offset: off,
                needed: rec_len,
                available: len - off,
            });
        }
        if idx.is_multiple_of(STRIDE) {
            self.starts.push(off as u32);
        }
        if INDEX {
            // Branch-free (a branch on "named non-FUNC" would be mispredicted often).
            let name_off = rd([hdr[0], hdr[1], hdr[2], hdr[3]]);
            let wanted = (name_off != 0) & Part::Types.wants(info);
            if idx.is_multiple_of(64) {
                self.flush_keys();
                self.marks.push(0);
            }
            if let Some(w) = self.marks.last_mut() {
                *w |= u64::from(wanted) << (idx % 64);
            }
            // Always written, kept only if wanted (the next record overwrites it otherwise); at
            // most 64 records are staged between flushes, so the slot always exists.
            if let Some(slot) = self.stage.get_mut(self.staged) {
                *slot = (name_off, info_kind(info) as u8);
            }
            self.staged += usize::from(wanted);
        }
        self.off = off + rec_len;
        self.count = idx + 1;
        Ok(())
    }
}

#[derive(Debug, PartialEq)]
enum Stop {
    /// Reached the end of the section.
    End,
    /// Reached exactly the `meet` offset (not walked further).
    Met,
}

/// Walks one chain until the end of the section, or until exactly offset `meet` (if it passes
/// `meet` without landing on it, it goes on to the end). Errors name type `start_id + record
/// number`.
fn walk<const INDEX: bool>(
    c: &mut Cursor,
    types: &[u8],
    meet: usize,
    start_id: u32,
) -> Result<Stop, BtfError> {
    let len = types.len();
    let mut limit = meet.min(len);
    loop {
        while c.off < limit {
            c.step::<INDEX>(types, start_id)?;
        }
        if c.off == meet {
            return Ok(Stop::Met);
        }
        if c.off >= len {
            return Ok(Stop::End);
        }
        // Passed `meet` without landing on it: walk on to the end.
        limit = len;
    }
}

/// What a job (the records from one boundary to the next, walked as one or two chains) produced:
/// `None` from [`run_job`] if anything was irregular.
struct JobPart {
    /// (records, grid) of each chain, in order.
    segs: Vec<(usize, Vec<u32>)>,
    count: usize,
    /// The keys of each chain, numbered from the job's first record (renumbered when the
    /// records before the job are counted).
    keys: Vec<KeySeg>,
}

/// Walks the records from boundary `from` exactly to `to` (a guessed boundary or the end), as
/// two interleaved chains split at `mid` when given, recording offsets and keys. `None` if a
/// walk fails or a guessed boundary is not met exactly.
fn run_job(types: &[u8], from: usize, mid: Option<usize>, to: usize) -> Option<JobPart> {
    // `to` is a boundary or the end; either way the walk must land on it exactly (`Met`).
    let cursors = match mid {
        Some(mid) if from < mid && mid < to => {
            let mut a = Cursor::new(from, mid - from, true);
            let mut b = Cursor::new(mid, to - mid, true);
            // Both chains step in one loop, so the CPU overlaps their latency chains.
            let b_limit = to.min(types.len());
            while a.off < mid && b.off < b_limit {
                a.step::<true>(types, 0).ok()?;
                b.step::<true>(types, 0).ok()?;
            }
            // Each chain finishes alone.
            (walk::<true>(&mut a, types, mid, 0).ok()? == Stop::Met).then_some(())?;
            (walk::<true>(&mut b, types, to, 0).ok()? == Stop::Met).then_some(())?;
            vec![a, b]
        }
        _ => {
            let mut a = Cursor::new(from, to - from, true);
            (walk::<true>(&mut a, types, to, 0).ok()? == Stop::Met).then_some(())?;
            vec![a]
        }
    };
    // The second chain's record numbers continue the first's.
    let mut segs = Vec::with_capacity(cursors.len());
    let mut keys = Vec::with_capacity(cursors.len());
    let mut count = 0;
    for mut c in cursors {
        segs.push((c.count, std::mem::take(&mut c.starts)));
        let n = c.count;
        keys.push(c.into_keys(count));
        count += n;
    }
    Some(JobPart { segs, count, keys })
}

/// Scans a type section: every record bounds-checked, sparse offsets recorded.
pub(crate) fn scan_types(
    types: &[u8],
    endian: Endian,
    start_id: u32,
) -> Result<TypeOffsets, BtfError> {
    let mut c = Cursor::new(0, types.len(), false);
    match endian {
        Endian::Little => walk::<false>(&mut c, types, usize::MAX, start_id)?,
        // Big-endian BTF is rare here: walked as a little-endian copy (same records, offsets
        // and errors) so the walk exists once in the binary.
        Endian::Big => walk::<false>(&mut c, &swapped_words(types), usize::MAX, start_id)?,
    };
    check_count(c.count, start_id)?;
    Ok(TypeOffsets::new(c.count, c.starts))
}

fn check_count(count: usize, start_id: u32) -> Result<(), BtfError> {
    if count as u64 + start_id as u64 > MAX_TYPE_ID as u64 + 1 {
        return Err(BtfError::TooManyTypes { max: MAX_TYPE_ID });
    }
    Ok(())
}

/// Guessed part boundaries, ascending, for a large type section (none for a small one).
type Splits = [Option<usize>; 3];

/// Scans base BTF in `bytes` (type and string sections at the given ranges, already checked to be
/// in bounds) and records its named non-FUNC types ([`Keys`]) in the same pass. The keys hold
/// name offsets and kinds as values (read from the little-endian copy of big-endian BTF), so they
/// are right in either byte order.
pub(crate) fn scan_keyed(
    bytes: &Bytes,
    types: Range<usize>,
    strs: Range<usize>,
    endian: Endian,
) -> Result<(TypeOffsets, Keys), BtfError> {
    let (bytes, types, strs) = native(bytes, types, strs, endian);
    let sp = splits(&bytes[types.clone()], strs.len());
    scan_keyed_impl(&bytes[types], sp)
}

/// The words of a type section in the other byte order (every field of every BTF type record is
/// a u32; a tail shorter than a word is kept as it is, and no walk reads it as a word).
fn swapped_words(types: &[u8]) -> Vec<u8> {
    let mut v = types.to_vec();
    for w in v.chunks_exact_mut(4) {
        w.reverse();
    }
    v
}

/// `bytes` with the type section at `types` and strings at `strs` as little-endian BTF: itself,
/// or for big-endian BTF (rare for a base BTF) a copy whose type words are swapped. Record
/// offsets, lengths and ids are the same in both, so the scan and its index exist once in the
/// binary; the index keeps no reference to the bytes it was built from.
fn native(
    bytes: &Bytes,
    types: Range<usize>,
    strs: Range<usize>,
    endian: Endian,
) -> (Bytes, Range<usize>, Range<usize>) {
    match endian {
        Endian::Little => (bytes.clone(), types, strs),
        Endian::Big => {
            let mut v = swapped_words(&bytes[types.clone()]);
            let t = 0..v.len();
            v.extend_from_slice(&bytes[strs]);
            let s = t.end..v.len();
            (Bytes::from(v), t, s)
        }
    }
}

fn splits(types: &[u8], strs_len: usize) -> Splits {
    let mut out = [None; 3];
    if types.len() < PARALLEL_MIN {
        return out;
    }
    let mut prev = 0;
    for (o, per) in out.iter_mut().zip(SPLITS) {
        *o = guess_boundary(types, strs_len, types.len() / 1024 * per).filter(|&g| g > prev);
        prev = o.unwrap_or(prev);
    }
    out
}

/// The keyed scan over parts split at `sp`: the parts from 0 and from `sp[1]` in turn, each as
/// two interleaved chains (split at `sp[0]` and `sp[2]`).
fn scan_keyed_impl(types: &[u8], sp: Splits) -> Result<(TypeOffsets, Keys), BtfError> {
    let end = types.len();
    let (first_to, second) = match sp[1] {
        Some(m) => (m, Some((m, sp[2]))),
        None => (end, None),
    };
    let parts = run_job(types, 0, sp[0], first_to).and_then(|first| match second {
        None => Some(vec![first]),
        Some((from, mid)) => run_job(types, from, mid, end).map(|s| vec![first, s]),
    });
    let Some(parts) = parts else {
        // Something was irregular (an error, or a guess that was not a boundary): one plain
        // walk, which reports any error with the right type id.
        let mut c = Cursor::new(0, end, true);
        walk::<true>(&mut c, types, usize::MAX, 1)?;
        check_count(c.count, 1)?;
        let offsets = TypeOffsets::new(c.count, std::mem::take(&mut c.starts));
        return Ok((offsets, Keys::from_segs(vec![c.into_keys(0)])));
    };
    let total = parts.iter().map(|p| p.count).sum::<usize>();
    check_count(total, 1)?;
    let mut segs = Vec::new();
    let mut keys = Vec::new();
    let mut base = 0;
    for p in parts {
        keys.extend(p.keys.into_iter().map(|k| k.renumbered(base)));
        base += p.count;
        segs.extend(p.segs);
    }
    Ok((TypeOffsets::from_segments(segs), Keys::from_segs(keys)))
}

/// Whether the 12-byte header at `p` looks like one the kernel would accept (the checks of
/// `btf_check_meta` and the per-kind vlen/kind_flag/size rules that cost nothing to test), and if
/// so where the record ends. Used only to guess a record boundary: a miss is harmless.
fn plausible(types: &[u8], strs_len: usize, p: usize, budget: &mut usize) -> Option<usize> {
    // Hostile input could make every position start a long run of huge records: the work of
    // guessing is bounded (a miss only means no split).
    *budget = budget.checked_sub(1)?;
    let name_off = word::<false>(types, p)?;
    let info = word::<false>(types, p + 4)?;
    let st = word::<false>(types, p + 8)?;
    // Bits the format leaves unused are zero in anything the kernel accepted.
    if info & 0x60ff_0000 != 0 || name_off as usize >= strs_len.max(1) {
        return None;
    }
    let kind = info_kind(info);
    let vlen = info & 0xffff;
    let kflag = info >> 31 != 0;
    let ok = match kind {
        // INT: vlen 0, no kind_flag, size 1..=16.
        1 => vlen == 0 && !kflag && (1..=16).contains(&st),
        // Referring kinds without vlen: the target is a type id.
        2 | 8..=11 | 18 => vlen == 0 && st <= MAX_TYPE_ID && (kind == 8 || !kflag || kind == 18),
        // ARRAY: size 0.
        3 => vlen == 0 && !kflag && st == 0,
        // STRUCT/UNION/ENUM/ENUM64/DATASEC: any vlen; sizes are small.
        4 | 5 | 6 | 15 | 19 => st < 1 << 28,
        // FWD: no vlen, no size.
        7 => vlen == 0 && st == 0,
        // FUNC: vlen is the linkage (0..=2), the target a type id.
        12 => vlen <= 2 && !kflag && st <= MAX_TYPE_ID,
        // FUNC_PROTO: the return type is a type id.
        13 => !kflag && st <= MAX_TYPE_ID,
        // VAR and DECL_TAG: no vlen, the target a type id.
        14 | 17 => vlen == 0 && st <= MAX_TYPE_ID,
        // FLOAT: sizes 2..=16.
        16 => vlen == 0 && !kflag && (2..=16).contains(&st),
        _ => false,
    };
    if !ok {
        return None;
    }
    let end = p.checked_add(record_len(info)?)?;
    if end > types.len() {
        return None;
    }
    // Entries: their name offsets and type ids must be in range too (a misaligned guess inside
    // a struct with bitfields can look like a header, but not like a run of valid entries).
    *budget = budget.checked_sub(vlen as usize)?;
    let entry = |i: usize, size: usize| p + TYPE_HEADER_LEN + i * size;
    let good = |name: Option<u32>, ty: Option<u32>| {
        name.is_some_and(|n| (n as usize) < strs_len) && ty.is_some_and(|t| t <= MAX_TYPE_ID)
    };
    let all = match kind {
        4 | 5 => (0..vlen as usize).all(|i| {
            let e = entry(i, 12);
            good(word::<false>(types, e), word::<false>(types, e + 4))
        }),
        13 => (0..vlen as usize).all(|i| {
            let e = entry(i, 8);
            good(word::<false>(types, e), word::<false>(types, e + 4))
        }),
        6 | 19 => (0..vlen as usize).all(|i| {
            let size = if kind == 6 { 8 } else { 12 };
            good(word::<false>(types, entry(i, size)), Some(0))
        }),
        15 => (0..vlen as usize).all(|i| good(Some(0), word::<false>(types, entry(i, 12)))),
        _ => true,
    };
    all.then_some(end)
}

/// The first offset at or after `from` (within [`GUESS_WINDOW`]) where [`GUESS_RUN`] plausible
/// records follow each other (or run exactly to the end). Records are multiples of 4 bytes long,
/// so only multiples of 4 are tried.
fn guess_boundary(types: &[u8], strs_len: usize, from: usize) -> Option<usize> {
    let mut budget = GUESS_BUDGET;
    let mut p = from & !3;
    let last = from.saturating_add(GUESS_WINDOW).min(types.len());
    while p < last {
        let mut q = p;
        let mut run = 0;
        while run < GUESS_RUN && q < types.len() {
            match plausible(types, strs_len, q, &mut budget) {
                Some(next) => {
                    q = next;
                    run += 1;
                }
                None => break,
            }
        }
        if run == GUESS_RUN || (run > 0 && q == types.len()) {
            return Some(p);
        }
        if budget == 0 {
            return None;
        }
        p += 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guessed_boundaries_land_on_records_of_real_btf() {
        let Ok(bytes) = std::fs::read(crate::kernel::VMLINUX_PATH) else {
            eprintln!("SKIP: no vmlinux BTF");
            return;
        };
        let btf = crate::Btf::parse(&bytes).unwrap();
        let types = btf.type_section();
        let offs: std::collections::HashSet<u32> =
            btf.layout().offsets.iter(types, btf.endian()).collect();
        for frac in 1..1000 {
            let from = types.len() * frac / 1000;
            let Some(g) = guess_boundary(types, btf.string_section().len(), from) else {
                // Only the last record (a DATASEC of several KB) has no boundary after it.
                assert!(from > types.len() - 8192, "no guess from {from}");
                continue;
            };
            assert!(offs.contains(&(g as u32)), "guess {g} from {from}");
            assert!(g.abs_diff(from) < 4096);
        }
    }

    use crate::btf::{Btf, Layout};
    use crate::index::essential_name;
    use crate::raw::{FuncLinkage, Kind};
    use crate::BtfModel;
    use std::sync::atomic::AtomicU32;
    use std::sync::{Arc, Mutex, OnceLock};

    /// A few thousand types of every common kind, with repeated names (chains in the index).
    fn synthetic() -> Bytes {
        let mut m = BtfModel::new();
        let int = m.add_int("int", 4, 1);
        for i in 0..3000u32 {
            let p = m.add_ptr(int);
            let name = format!("s{}", i % 700);
            let st = m.add_struct(&name, 8, &[("a", int, 0), ("b", p, 32)]);
            m.add_typedef(&format!("t{}___v{}", i % 300, i % 3), st);
            let proto = m.add_func_proto(int, &[("x", int), ("y", p)]);
            m.add_func(&format!("f{i}"), proto, FuncLinkage::Global);
            m.add_enum(&name, false, &[("A", 1), ("B", 2)]);
        }
        Bytes::from(m.to_bytes().unwrap())
    }

    fn ranges(bytes: &[u8]) -> (Range<usize>, Range<usize>) {
        let b = Btf::parse(bytes).unwrap();
        let l = b.layout();
        (l.types.clone(), l.strs.clone())
    }

    /// Scans in parts split at `sp` and checks the result equals one walk's.
    fn check_against_single(bytes: &Bytes, sp: Splits, segments: usize) {
        check_ranges(bytes, ranges(bytes), sp, segments)
    }

    fn check_ranges(
        bytes: &Bytes,
        (t, s): (Range<usize>, Range<usize>),
        sp: Splits,
        segments: usize,
    ) {
        let big = bytes[0] != 0x9f;
        let endian = if big { Endian::Big } else { Endian::Little };
        let scan = |sp: Splits| {
            let (b, t, _) = native(bytes, t.clone(), s.clone(), endian);
            scan_keyed_impl(&b[t], sp)
        };
        let one = scan([None; 3]);
        let two = scan(sp);
        let ((o1, i1), (o2, i2)) = match (one, two) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(a), Err(b)) => {
                assert_eq!(format!("{a:?}"), format!("{b:?}"), "splits {sp:?}");
                return;
            }
            (a, b) => panic!("splits {sp:?}: single {:?} vs parts {:?}", a.err(), b.err()),
        };
        assert_eq!(o1.segments(), 1);
        assert_eq!(o2.segments(), segments, "splits {sp:?}");
        let types = &bytes[t.clone()];
        assert_eq!(o1.len(), o2.len());
        for idx in 0..o1.len() {
            assert_eq!(
                o1.get(idx, types, endian),
                o2.get(idx, types, endian),
                "offset of type {idx}, splits {sp:?}"
            );
        }
        // The same keys, in the same order.
        let list = |k: &Keys| k.iter().collect::<Vec<_>>();
        assert_eq!(list(&i1), list(&i2), "keys, splits {sp:?}");
        assert_eq!(i1.len(), i1.iter().count());
        let view = |o: TypeOffsets, k: Keys| {
            let header = *Btf::parse(bytes).unwrap().header();
            let layout = Layout {
                header,
                types: t.clone(),
                strs: s.clone(),
                offsets: o,
                start_id: 1,
                start_str_off: 0,
                index: [OnceLock::new(), OnceLock::new()],
                keys: Mutex::new(Some(Arc::new(k))),
                scans: AtomicU32::new(0),
                func_scans: Some(AtomicU32::new(0)),
                long_size: OnceLock::new(),
            };
            Btf::from_parts(bytes, Arc::new(layout), None)
        };
        let (b1, b2) = (view(o1, i1), view(o2, i2));
        // b1 answers by scanning its keys, b2 by the index built from its keys.
        let k1 = b1
            .pending_keys()
            .expect("keys kept until the index is built");
        b2.build_type_index();
        assert!(
            b2.pending_keys().is_none(),
            "keys dropped once the index is built"
        );
        // The expected ids of every key, from one plain pass over the types (no index code), so
        // a fault shared by the single and the split scan is caught too.
        let mut keys = std::collections::BTreeMap::<_, Vec<u32>>::new();
        for id in b1.ids() {
            let (name, kind) = (b1.name(id).unwrap(), b1.kind(id).unwrap());
            if !name.is_empty() && kind != Kind::Func {
                keys.entry((essential_name(name.as_bytes()).to_vec(), kind))
                    .or_default()
                    .push(id);
            }
        }
        assert!(!keys.is_empty());
        // A scan reads every key, so scanning for all of them is quadratic (minutes in a debug
        // build): ~150 keys spread over the whole range are scanned for.
        let step = (keys.len() / 150).max(1);
        for (n, ((ess, kind), ids)) in keys.into_iter().enumerate() {
            let b: Vec<u32> = b2.candidates(&ess, kind).collect();
            assert_eq!(b, ids, "{} {kind:?}", String::from_utf8_lossy(&ess));
            if n % step == 0 {
                let a = k1.find(&b1, &ess, kind, false);
                assert_eq!(a, ids, "{} {kind:?}", String::from_utf8_lossy(&ess));
            }
        }
    }

    fn offsets_of(bytes: &[u8]) -> Vec<usize> {
        let b = Btf::parse(bytes).unwrap();
        let o = &b.layout().offsets;
        o.iter(b.type_section(), b.endian())
            .map(|x| x as usize)
            .collect()
    }

    #[test]
    fn parts_give_one_walks_results_wherever_they_start() {
        let bytes = synthetic();
        let (t, _) = ranges(&bytes);
        let o = offsets_of(&bytes);
        let (n, len) = (o.len(), t.len());
        // Real boundaries: a segment per part.
        for (sp, segs) in [
            ([Some(o[1]), Some(o[n / 2]), Some(o[n - 1])], 4),
            ([Some(o[17]), Some(o[n / 3]), Some(o[n / 2])], 4),
            ([None, Some(o[n / 2]), None], 2),
            ([Some(o[n / 4]), None, None], 2),
            ([None, Some(o[16]), Some(o[33])], 3),
        ] {
            check_against_single(&bytes, sp, segs);
        }
        // Any guess that is not a boundary: one plain walk, same result.
        let bad = |i: usize| Some(o[i] + 4);
        for sp in [
            [bad(5), Some(o[n / 2]), Some(o[n - 1])],
            [Some(o[1]), bad(n / 2), Some(o[n - 1])],
            [Some(o[1]), Some(o[n / 2]), bad(n - 2)],
            [None, bad(n / 3), None],
        ] {
            check_against_single(&bytes, sp, 1);
        }
        // Guesses out of order or past the end are ignored (that part is one chain).
        check_against_single(&bytes, [Some(o[n / 2]), Some(o[n / 3]), Some(len + 100)], 2);
    }

    #[test]
    fn errors_are_reported_as_one_walk_reports_them() {
        let good = synthetic();
        let (t, _) = ranges(&good);
        let o = offsets_of(&good);
        let n = o.len();
        let sp = [Some(o[n / 4]), Some(o[n / 2]), Some(o[n * 3 / 4])];
        // An unknown kind in each part.
        for bad_rec in [n / 8, n * 3 / 8, n * 5 / 8, n * 7 / 8] {
            let mut v = good.to_vec();
            let at = t.start + o[bad_rec] + 4;
            v[at..at + 4].copy_from_slice(&(31u32 << 24).to_le_bytes());
            check_ranges(&Bytes::from(v), ranges(&good), sp, 1);
        }
        // A truncated last record: cut the type section short by 4 bytes.
        let mut v = good.to_vec();
        let tl = (t.len() - 4) as u32;
        v[12..16].copy_from_slice(&tl.to_le_bytes());
        let (t2, s2) = (t.start..t.start + tl as usize, t.start + t.len()..v.len());
        check_ranges(&Bytes::from(v), (t2, s2), sp, 1);
    }

    #[test]
    fn parts_on_vmlinux_equal_one_walk() {
        let Ok(v) = std::fs::read(crate::kernel::VMLINUX_PATH) else {
            eprintln!("SKIP: no vmlinux BTF");
            return;
        };
        let bytes = Bytes::from(v);
        let (t, s) = ranges(&bytes);
        let sp = splits(&bytes[t], s.len());
        assert!(sp.iter().all(Option::is_some), "{sp:?}");
        check_against_single(&bytes, sp, 4);
    }

    #[test]
    fn guessing_on_hostile_bytes_is_bounded() {
        // Every 4-byte position starts a "struct" with 4095 members whose words are all valid
        // entries: without a budget, each of 16k positions would check 64 records of 4095
        // members.
        let mut types = Vec::new();
        while types.len() < 4 << 20 {
            types.extend_from_slice(&1u32.to_le_bytes());
            types.extend_from_slice(&(0x0400_0fffu32).to_le_bytes());
        }
        let t = std::time::Instant::now();
        let g = guess_boundary(&types, 1 << 20, 1 << 20);
        // Either answer is fine (a guess is only used when met exactly); the time is the point.
        let _ = g;
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            t.elapsed()
        );
    }

    /// The same BTF in the other byte order (all header fields after the magic and every type
    /// word are u32s; strings are bytes).
    fn swapped(le: &[u8]) -> Bytes {
        let mut v = le.to_vec();
        v.swap(0, 1);
        for w in v[4..24].chunks_exact_mut(4) {
            w.reverse();
        }
        let (t, _) = ranges(le);
        for w in v[t].chunks_exact_mut(4) {
            w.reverse();
        }
        Bytes::from(v)
    }

    #[test]
    fn big_endian_parts_give_one_walks_results() {
        let le = synthetic();
        let be = swapped(&le);
        assert_eq!(Btf::parse(&be).unwrap().endian(), Endian::Big);
        let o = offsets_of(&be);
        assert_eq!(o, offsets_of(&le));
        let n = o.len();
        check_against_single(&be, [Some(o[n / 4]), Some(o[n / 2]), Some(o[n * 3 / 4])], 4);
        check_against_single(&be, [Some(o[3] + 4), Some(o[n / 2]), None], 1);
    }
}
