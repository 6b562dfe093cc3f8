//! The parse scan: one pass over the type section that bounds-checks every record and records the
//! sparse [`TypeOffsets`]; for the kernel's BTF it also builds the name index of non-FUNC types
//! (what CO-RE looks up) in the same pass, on two threads when there are two cores.
//!
//! Why it looks like this (vmlinux: 3.2 MB of types, ~127k records, 15k named non-FUNC types):
//! - Walking records is one long dependency chain (load info → kind → length → next offset), a
//!   few ns per record whatever else happens, so the hot loop keeps everything in registers and
//!   computes lengths with shifts instead of table loads.
//! - Each indexed name is read somewhere in the 2 MB string section. Names are touched when their
//!   record is met and hashed [`AHEAD`] named records later, so a cache miss overlaps the walk
//!   instead of stalling it; the hash is computed in the same 8-byte steps that find the NUL.
//! - Two threads: a helper starts at a record boundary guessed in the type section (kernel-valid
//!   BTF has zero unused info bits, so a misaligned guess almost never looks like a run of
//!   records) and walks to the end; the caller walks from the start. Only if the caller lands
//!   *exactly* on the guessed offset is the helper's work used: from a real record boundary the
//!   walk is deterministic, so the helper's records are then exactly the ones a single walk would
//!   see. Otherwise (hostile or odd input), or if the helper has not even started by then (a busy
//!   machine), the caller walks on alone, so the result never depends on the helper and the
//!   caller never waits for a thread that is not running. Each thread indexes its own id range;
//!   the index keeps the two shards in id order.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use bytes::Bytes;

use crate::error::BtfError;
use crate::index::{
    build_shard, essential_name, scan_name_hash, KeyHasher, NameIndex, Part, Shard,
};
use crate::offsets::{record_len, word, TypeOffsets, STRIDE};
use crate::raw::{info_kind, Endian, MAX_TYPE_ID, TYPE_HEADER_LEN};

/// Named records whose name is touched before it is hashed.
const AHEAD: usize = 16;
/// Smallest type section scanned by two threads (vmlinux: ~3 MB; modules and objects: far less).
const PARALLEL_MIN: usize = 1 << 20;
/// Where the helper thread starts, as a fraction of the type section (per 1024). The kernel's
/// BTF (pahole) puts the named structs, unions, enums and typedefs first and the ~56k FUNC and
/// FUNC_PROTO records last; names cost far more than records, so the work is even at ~40%.
const SPLIT_PER_1024: usize = 430;
/// How far past the split point a record boundary is searched for.
const GUESS_WINDOW: usize = 64 << 10;
/// Consecutive plausible records that make a guessed boundary credible.
const GUESS_RUN: usize = 64;

/// What one walk over a range of records produced.
struct Seg {
    /// Offsets of the segment's records `0, STRIDE, 2 * STRIDE, ...`.
    starts: Vec<u32>,
    /// Records walked.
    count: usize,
    /// `(key hash, record number)` of the named non-FUNC records (indexed scans only).
    keys: Vec<(u32, u32)>,
}

impl Seg {
    /// For a walk over about `bytes` bytes of records.
    fn new(bytes: usize, indexed: bool) -> Seg {
        Seg {
            // vmlinux averages ~25 bytes per record; the vector grows if that is short.
            starts: Vec::with_capacity(bytes / (24 * STRIDE) + 1),
            count: 0,
            // vmlinux's first 40% have one named non-FUNC record per ~90 bytes.
            keys: Vec::with_capacity(if indexed { bytes / 80 } else { 0 }),
        }
    }
}

#[derive(Debug, PartialEq)]
enum Stop {
    /// Reached the end of the section.
    End,
    /// Reached exactly the `meet` offset (not walked further).
    Met,
    /// Told to stop.
    Stopped,
}

/// Scans a type section: every record bounds-checked, sparse offsets recorded.
pub(crate) fn scan_types(
    types: &[u8],
    endian: Endian,
    start_id: u32,
) -> Result<TypeOffsets, BtfError> {
    let mut seg = Seg::new(types.len(), false);
    let h = KeyHasher::new();
    match endian {
        Endian::Little => {
            walk::<false, false>(types, &[], &h, 0, usize::MAX, &mut seg, start_id, None)?
        }
        Endian::Big => {
            walk::<true, false>(types, &[], &h, 0, usize::MAX, &mut seg, start_id, None)?
        }
    };
    check_count(seg.count, start_id)?;
    Ok(TypeOffsets::new(seg.count, seg.starts))
}

fn check_count(count: usize, start_id: u32) -> Result<(), BtfError> {
    if count as u64 + start_id as u64 > MAX_TYPE_ID as u64 + 1 {
        return Err(BtfError::TooManyTypes { max: MAX_TYPE_ID });
    }
    Ok(())
}

/// Scans base BTF in `bytes` (type and string sections at the given ranges, already checked to be
/// in bounds) and builds the name index of its non-FUNC types in the same pass, with a helper
/// thread for large sections.
pub(crate) fn scan_indexed(
    bytes: &Bytes,
    types: Range<usize>,
    strs: Range<usize>,
    endian: Endian,
) -> Result<(TypeOffsets, NameIndex), BtfError> {
    let parallel = types.len() >= PARALLEL_MIN && cpus() != Cpus::One;
    let meet = |guess: fn(&[u8], usize, usize) -> Option<usize>| {
        let (t, s) = (&bytes[types.clone()], &bytes[strs.clone()]);
        parallel
            .then(|| guess(t, s.len(), t.len() / 1024 * SPLIT_PER_1024))
            .flatten()
    };
    match endian {
        Endian::Little => {
            let m = meet(guess_boundary::<false>);
            scan_indexed_impl::<false>(bytes, types, strs, m, false)
        }
        Endian::Big => {
            let m = meet(guess_boundary::<true>);
            scan_indexed_impl::<true>(bytes, types, strs, m, false)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cpus {
    Unknown = 0,
    One = 1,
    More = 2,
}

static CPUS: AtomicU8 = AtomicU8::new(Cpus::Unknown as u8);

/// What is known about the CPUs this process may run on. Asking the system costs 50-90 µs here
/// (`available_parallelism` reads cgroup files), more than a thread start, so the helper asks
/// after its work and the answer is kept.
fn cpus() -> Cpus {
    match CPUS.load(Ordering::Relaxed) {
        1 => Cpus::One,
        2 => Cpus::More,
        _ => Cpus::Unknown,
    }
}

fn learn_cpus() {
    if cpus() == Cpus::Unknown {
        let c = match std::thread::available_parallelism() {
            Ok(n) if n.get() > 1 => Cpus::More,
            _ => Cpus::One,
        };
        CPUS.store(c as u8, Ordering::Relaxed);
    }
}

/// The helper's part: its records' grid, count and index shard (ids are assigned when the caller
/// has counted the records before it).
struct HelperPart {
    starts: Vec<u32>,
    count: usize,
    shard: Shard,
}

const WAITING: u8 = 0;
const RUNNING: u8 = 1;
const DONE: u8 = 2;
const ABANDONED: u8 = 3;

/// Shared between the caller and the helper thread.
struct Helper {
    /// WAITING until the helper starts (RUNNING) or the caller gives up on it (ABANDONED); DONE
    /// once `result` is final.
    state: AtomicU8,
    /// Tells a running helper to stop early.
    stop: AtomicBool,
    result: Mutex<Option<HelperPart>>,
    done: Condvar,
}

impl Helper {
    fn finish(&self, part: Option<HelperPart>) {
        let mut r = self.result.lock().unwrap_or_else(|p| p.into_inner());
        *r = part;
        self.state.store(DONE, Ordering::Release);
        self.done.notify_all();
    }

    /// The helper's result, waiting for it only if it is running; `None` if it never started
    /// (it will not start now) or failed.
    fn take(&self, wait: bool) -> Option<HelperPart> {
        if !wait
            && self
                .state
                .compare_exchange(WAITING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            return None;
        }
        let mut r = self.result.lock().unwrap_or_else(|p| p.into_inner());
        while self.state.load(Ordering::Acquire) != DONE {
            r = self.done.wait(r).unwrap_or_else(|p| p.into_inner());
        }
        r.take()
    }

    /// Tells the helper its work is not needed.
    fn abandon(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ =
            self.state
                .compare_exchange(WAITING, ABANDONED, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// Starts the helper on the records from `meet` to the end; `None` if no thread could be made.
fn spawn_helper<const BIG: bool>(
    bytes: &Bytes,
    types: &Range<usize>,
    strs: &Range<usize>,
    meet: usize,
    hasher: KeyHasher,
) -> Option<Arc<Helper>> {
    let helper = Arc::new(Helper {
        state: AtomicU8::new(WAITING),
        stop: AtomicBool::new(false),
        result: Mutex::new(None),
        done: Condvar::new(),
    });
    let h = Arc::clone(&helper);
    let (bytes, types, strs) = (bytes.clone(), types.clone(), strs.clone());
    let spawned = std::thread::Builder::new()
        .name("bpfload-btf-scan".into())
        .stack_size(256 << 10)
        .spawn(move || {
            if h.state
                .compare_exchange(WAITING, RUNNING, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                return;
            }
            let (types, strs) = (&bytes[types], &bytes[strs]);
            let mut seg = Seg::new(types.len() - meet, true);
            let r = walk::<BIG, true>(
                types,
                strs,
                &hasher,
                meet,
                usize::MAX,
                &mut seg,
                1,
                Some(&h.stop),
            );
            // Errors are left to the caller's own walk, which names the right type id.
            let part = matches!(r, Ok(Stop::End)).then(|| HelperPart {
                shard: build_shard(&seg.keys, 0, |idx| {
                    key_at::<BIG>(types, strs, &seg.starts, idx)
                }),
                starts: seg.starts,
                count: seg.count,
            });
            h.finish(part);
            // Learnt after the work, off everyone's path: on a one-CPU machine later parses in
            // this process skip the helper (this one cost a thread start and some switching).
            learn_cpus();
        });
    spawned.ok().map(|_| helper)
}

/// The indexed scan, with a helper from offset `meet` if given. `wait`: wait for the helper even
/// if it has not started yet (tests, so they exercise the two-thread path deterministically).
fn scan_indexed_impl<const BIG: bool>(
    bytes: &Bytes,
    types_range: Range<usize>,
    strs_range: Range<usize>,
    meet: Option<usize>,
    wait: bool,
) -> Result<(TypeOffsets, NameIndex), BtfError> {
    let types = &bytes[types_range.clone()];
    let strs = &bytes[strs_range.clone()];
    let hasher = KeyHasher::new();
    let helper =
        meet.and_then(|m| spawn_helper::<BIG>(bytes, &types_range, &strs_range, m, hasher));
    let meet = if helper.is_some() { meet } else { None };
    let mut first = Seg::new(meet.unwrap_or(types.len()), true);
    let r = walk::<BIG, true>(
        types,
        strs,
        &hasher,
        0,
        meet.unwrap_or(usize::MAX),
        &mut first,
        1,
        None,
    );
    let met = matches!(r, Ok(Stop::Met));
    if !met {
        if let Some(h) = &helper {
            h.abandon();
        }
    }
    r?;
    let mut second = None;
    if let (true, Some(h), Some(meet)) = (met, &helper, meet) {
        second = h.take(wait);
        if second.is_none() {
            // The helper never started, could not run, or failed (an error, reported now by
            // this walk with its right type id): walk on alone.
            walk::<BIG, true>(types, strs, &hasher, meet, usize::MAX, &mut first, 1, None)?;
        }
    }
    let n1 = first.count;
    let total = n1 + second.as_ref().map_or(0, |s| s.count);
    check_count(total, 1)?;
    let mut shards = vec![build_shard(&first.keys, 1, |idx| {
        key_at::<BIG>(types, strs, &first.starts, idx)
    })];
    let offsets = match second {
        None => TypeOffsets::new(n1, first.starts),
        Some(mut part) => {
            // `n1 + 1` fits: the total was checked against MAX_TYPE_ID above.
            part.shard.set_id_base(1 + n1 as u32);
            shards.push(part.shard);
            TypeOffsets::two(n1, first.starts, part.count, part.starts)
        }
    };
    Ok((offsets, NameIndex::from_shards(hasher, shards)))
}

/// Whether the 12-byte header at `p` looks like one the kernel would accept (the checks of
/// `btf_check_meta` and the per-kind vlen/kind_flag/size rules that cost nothing to test), and if
/// so where the record ends. Used only to guess a record boundary: a miss is harmless.
fn plausible<const BIG: bool>(types: &[u8], strs_len: usize, p: usize) -> Option<usize> {
    let name_off = word::<BIG>(types, p)?;
    let info = word::<BIG>(types, p + 4)?;
    let st = word::<BIG>(types, p + 8)?;
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
    let entry = |i: usize, size: usize| p + TYPE_HEADER_LEN + i * size;
    let good = |name: Option<u32>, ty: Option<u32>| {
        name.is_some_and(|n| (n as usize) < strs_len) && ty.is_some_and(|t| t <= MAX_TYPE_ID)
    };
    let all = match kind {
        4 | 5 => (0..vlen as usize).all(|i| {
            let e = entry(i, 12);
            good(word::<BIG>(types, e), word::<BIG>(types, e + 4))
        }),
        13 => (0..vlen as usize).all(|i| {
            let e = entry(i, 8);
            good(word::<BIG>(types, e), word::<BIG>(types, e + 4))
        }),
        6 | 19 => (0..vlen as usize).all(|i| {
            let size = if kind == 6 { 8 } else { 12 };
            good(word::<BIG>(types, entry(i, size)), Some(0))
        }),
        15 => (0..vlen as usize).all(|i| good(Some(0), word::<BIG>(types, entry(i, 12)))),
        _ => true,
    };
    all.then_some(end)
}

/// The first offset at or after `from` (within [`GUESS_WINDOW`]) where [`GUESS_RUN`] plausible
/// records follow each other (or run exactly to the end). Records are multiples of 4 bytes long,
/// so only multiples of 4 are tried.
fn guess_boundary<const BIG: bool>(types: &[u8], strs_len: usize, from: usize) -> Option<usize> {
    let mut p = from & !3;
    let last = from.saturating_add(GUESS_WINDOW).min(types.len());
    while p < last {
        let mut q = p;
        let mut run = 0;
        while run < GUESS_RUN && q < types.len() {
            match plausible::<BIG>(types, strs_len, q) {
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
        p += 4;
    }
    None
}

/// Walks records from offset `from` until the end of the section, or until exactly offset `meet`
/// (if the walk passes `meet` without landing on it, it goes on to the end). Appends to `seg`
/// (so a walk can be continued), collecting name keys when `INDEX`. Errors name type
/// `start_id + record number`.
#[allow(clippy::too_many_arguments)]
fn walk<const BIG: bool, const INDEX: bool>(
    types: &[u8],
    strs: &[u8],
    hasher: &KeyHasher,
    from: usize,
    meet: usize,
    seg: &mut Seg,
    start_id: u32,
    stop: Option<&AtomicBool>,
) -> Result<Stop, BtfError> {
    let len = types.len();
    let mut off = from;
    let mut idx = seg.count;
    // Named records waiting to be hashed: (record number, name offset, info); the oldest is at
    // `taken % AHEAD`.
    let mut ring = [(0u32, 0u32, 0u32); AHEAD];
    let mut queued = 0usize;
    let mut taken = 0usize;
    // Bytes loaded only to bring names into the cache early.
    let mut touched = 0u8;
    // Walk up to `limit` (the nearer of `meet` and the end) in chunks, so the stop flag is
    // looked at now and then without a second test per record.
    let mut limit = meet.min(len);
    let stopped = loop {
        let chunk_end = idx + 4096;
        while off < limit && idx < chunk_end {
            let Some(hdr) = types.get(off..off + TYPE_HEADER_LEN) else {
                return Err(BtfError::TypeTruncated {
                    id: start_id.saturating_add(idx as u32),
                    offset: off,
                    needed: TYPE_HEADER_LEN,
                    available: len - off,
                });
            };
            let Ok(hdr) = <&[u8; TYPE_HEADER_LEN]>::try_from(hdr) else {
                unreachable!("a 12-byte slice converts to a 12-byte array")
            };
            let rd = |w: [u8; 4]| {
                if BIG {
                    u32::from_be_bytes(w)
                } else {
                    u32::from_le_bytes(w)
                }
            };
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
                seg.starts.push(off as u32);
            }
            if INDEX {
                let name_off = rd([hdr[0], hdr[1], hdr[2], hdr[3]]);
                if name_off != 0 && Part::Types.wants(info) {
                    touched ^= strs.get(name_off as usize).copied().unwrap_or(0);
                    if queued - taken == AHEAD {
                        let (i, n, inf) = ring[taken % AHEAD];
                        taken += 1;
                        collect_key(strs, hasher, &mut seg.keys, i, n, inf);
                    }
                    ring[queued % AHEAD] = (idx as u32, name_off, info);
                    queued += 1;
                }
            }
            off += rec_len;
            idx += 1;
        }
        if off >= len {
            break if off == meet { Stop::Met } else { Stop::End };
        }
        if off >= meet {
            if off == meet {
                break Stop::Met;
            }
            // Passed `meet` without landing on it: walk on to the end.
            limit = len;
        }
        if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
            break Stop::Stopped;
        }
    };
    if INDEX {
        while taken < queued {
            let (i, n, inf) = ring[taken % AHEAD];
            taken += 1;
            collect_key(strs, hasher, &mut seg.keys, i, n, inf);
        }
    }
    std::hint::black_box(touched);
    seg.count = idx;
    Ok(stopped)
}

/// Hashes the key of one named record and appends it to `keys`.
#[inline]
fn collect_key(
    strs: &[u8],
    hasher: &KeyHasher,
    keys: &mut Vec<(u32, u32)>,
    idx: u32,
    name_off: u32,
    info: u32,
) {
    let kind = info_kind(info);
    let Some((name, triple, h)) = strs
        .get(name_off as usize..)
        .and_then(|s| scan_name_hash(s, hasher, kind))
    else {
        return;
    };
    if name.is_empty() {
        return;
    }
    let h = if triple {
        hasher.hash(essential_name(name), kind)
    } else {
        h
    };
    keys.push((h as u32, idx));
}

/// (essential name, kind) of record number `idx` of a segment whose grid is `starts` (only
/// needed when a hash tag matches: true duplicates, ~1 in 4096 otherwise).
fn key_at<'d, const BIG: bool>(
    types: &'d [u8],
    strs: &'d [u8],
    starts: &[u32],
    idx: u32,
) -> Option<(&'d [u8], u32)> {
    let idx = idx as usize;
    let mut off = *starts.get(idx / STRIDE)? as usize;
    for _ in 0..idx % STRIDE {
        off += record_len(word::<BIG>(types, off + 4)?)?;
    }
    let name_off = word::<BIG>(types, off)?;
    let info = word::<BIG>(types, off + 4)?;
    let (name, _) = strs
        .get(name_off as usize..)
        .and_then(crate::index::scan_name)?;
    (!name.is_empty()).then(|| (essential_name(name), info_kind(info)))
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
            let Some(g) = guess_boundary::<false>(types, btf.string_section().len(), from) else {
                // Only the last record (a DATASEC of several KB) has no boundary after it.
                assert!(from > types.len() - 8192, "no guess from {from}");
                continue;
            };
            assert!(offs.contains(&(g as u32)), "guess {g} from {from}");
            assert!(g.abs_diff(from) < 4096);
        }
    }

    use crate::btf::{Btf, Layout};
    use crate::raw::{FuncLinkage, Kind};
    use crate::BtfModel;
    use std::sync::{Arc, OnceLock};

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

    /// Scans with a helper from `meet` (waited for), and checks the result equals one walk's.
    fn check_against_single(bytes: &Bytes, meet: usize, expect_split: bool) {
        check_ranges(bytes, ranges(bytes), meet, expect_split)
    }

    fn check_ranges(
        bytes: &Bytes,
        (t, s): (Range<usize>, Range<usize>),
        meet: usize,
        expect_split: bool,
    ) {
        let one = scan_indexed_impl::<false>(bytes, t.clone(), s.clone(), None, false);
        let two = scan_indexed_impl::<false>(bytes, t.clone(), s.clone(), Some(meet), true);
        let ((o1, i1), (o2, i2)) = match (one, two) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(a), Err(b)) => {
                assert_eq!(format!("{a:?}"), format!("{b:?}"), "meet {meet}");
                return;
            }
            (a, b) => panic!("meet {meet}: single {:?} vs two {:?}", a.err(), b.err()),
        };
        assert_eq!(o2.split().is_some(), expect_split, "meet {meet}");
        let types = &bytes[t.clone()];
        assert_eq!(o1.len(), o2.len());
        for idx in 0..o1.len() {
            assert_eq!(
                o1.get(idx, types, Endian::Little),
                o2.get(idx, types, Endian::Little),
                "offset of type {idx}, meet {meet}"
            );
        }
        // Every (essential name, kind) finds the same ids through both indexes.
        let view = |o: TypeOffsets, i: NameIndex| {
            let header = *Btf::parse(bytes).unwrap().header();
            let layout = Layout {
                header,
                types: t.clone(),
                strs: s.clone(),
                offsets: o,
                start_id: 1,
                start_str_off: 0,
                index: [OnceLock::from(i), OnceLock::new()],
            };
            Btf::from_parts(bytes, Arc::new(layout), None)
        };
        let (b1, b2) = (view(o1, i1), view(o2, i2));
        let mut keys = std::collections::BTreeSet::new();
        for id in b1.ids() {
            let (name, kind) = (b1.name(id).unwrap(), b1.kind(id).unwrap());
            if !name.is_empty() && kind != Kind::Func {
                keys.insert((essential_name(name.as_bytes()).to_vec(), kind));
            }
        }
        assert!(!keys.is_empty());
        for (ess, kind) in keys {
            let a: Vec<u32> = b1.candidates(&ess, kind).collect();
            let b: Vec<u32> = b2.candidates(&ess, kind).collect();
            assert!(!a.is_empty());
            assert_eq!(a, b, "{} {kind:?}", String::from_utf8_lossy(&ess));
        }
    }

    #[test]
    fn helper_results_equal_one_walk_wherever_it_starts() {
        let bytes = synthetic();
        let (t, _) = ranges(&bytes);
        let b = Btf::parse(&bytes).unwrap();
        let offs: Vec<u32> = b
            .layout()
            .offsets
            .iter(b.type_section(), Endian::Little)
            .collect();
        let len = t.len();
        // Real boundaries (including the very first and a point near the end): two segments.
        for &i in &[0, 1, 17, offs.len() / 3, offs.len() / 2, offs.len() - 1] {
            check_against_single(&bytes, offs[i] as usize, true);
        }
        // Not boundaries, or past the end: the caller walks alone, same result.
        for m in [
            offs[5] as usize + 4,
            len / 2 + 1,
            len / 2 + 2,
            len,
            len + 100,
        ] {
            check_against_single(&bytes, m, false);
        }
    }

    #[test]
    fn helper_errors_are_reported_as_one_walk_reports_them() {
        let good = synthetic();
        let (t, _) = ranges(&good);
        let b = Btf::parse(&good).unwrap();
        let offs: Vec<u32> = b
            .layout()
            .offsets
            .iter(b.type_section(), Endian::Little)
            .collect();
        let meet = offs[offs.len() / 2] as usize;
        // An unknown kind after the meeting point (seen by the helper first), then before it.
        for bad_rec in [offs.len() * 3 / 4, offs.len() / 4] {
            let mut v = good.to_vec();
            let at = t.start + offs[bad_rec] as usize + 4;
            v[at..at + 4].copy_from_slice(&(31u32 << 24).to_le_bytes());
            check_ranges(&Bytes::from(v), ranges(&good), meet, false);
        }
        // A truncated last record: the header still claims the full type length, so cut the
        // type section short by moving the string section start.
        let mut v = good.to_vec();
        let tl = (t.len() - 4) as u32;
        v[12..16].copy_from_slice(&tl.to_le_bytes());
        let (t2, s2) = (t.start..t.start + tl as usize, t.start + t.len()..v.len());
        let bytes = Bytes::from(v);
        let one = scan_indexed_impl::<false>(&bytes, t2.clone(), s2.clone(), None, false);
        let two = scan_indexed_impl::<false>(&bytes, t2, s2, Some(meet), true);
        assert_eq!(format!("{:?}", one.err()), format!("{:?}", two.err()));
    }

    #[test]
    fn helper_on_vmlinux_equals_one_walk() {
        let Ok(v) = std::fs::read(crate::kernel::VMLINUX_PATH) else {
            eprintln!("SKIP: no vmlinux BTF");
            return;
        };
        let bytes = Bytes::from(v);
        let (t, s) = ranges(&bytes);
        let types = &bytes[t.clone()];
        let meet = guess_boundary::<false>(types, s.len(), types.len() / 1024 * SPLIT_PER_1024);
        check_against_single(&bytes, meet.unwrap(), true);
    }
}
