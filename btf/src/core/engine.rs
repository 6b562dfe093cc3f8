//! The relocation driver: candidate search and caching, the candidate loop
//! with libbpf's ambiguity rules (`bpf_core_calc_relo_insn`), and patching.

use hashbrown::HashMap;

use super::calc::{calc_relo, ReloRes};
use super::patch::{patch_insn, CoreInsn, Patched};
use super::spec::{format_spec, parse_spec, spec_match, Spec};
use super::view::{essential_name, View, ViewError};
use super::{
    CoreError, CoreRelo, CoreReloKind, CoreReloResult, Outcome, PoisonReason, TargetMatch,
};

/// The target BTFs, in libbpf's order: the main one (vmlinux, or a custom
/// BTF that replaces it), then module BTFs, consulted only when the main one
/// has no candidate.
pub(crate) trait TargetSet {
    fn main(&self) -> (&str, &dyn View);
    /// Number of module BTFs; may load them on first call.
    fn module_count(&self) -> Result<usize, CoreError>;
    fn module(&self, i: usize) -> (&str, &dyn View);
}

/// One candidate: which target (0 = main, 1.. = module i-1) and type id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cand {
    pub target: usize,
    pub id: u32,
}

/// Candidate lists per local type id, pruned as relocations rule candidates
/// out (libbpf shares and prunes them the same way within one relocate pass).
#[derive(Default, Debug)]
pub struct CandCache {
    /// Local type id -> index in `lists`: a u32 -> u32 table, the type the name index uses,
    /// so no hash table code of its own (issue 8: binary size).
    map: HashMap<u32, u32>,
    lists: Vec<Vec<Cand>>,
    lookup: Lookup,
}

/// How this pass finds candidates in the main target.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
enum Lookup {
    #[default]
    Undecided,
    /// One pass over the types per batch of new local types.
    Scan,
    /// Through the name index.
    Index,
}

impl CandCache {
    /// An empty cache; use one per object relocation pass.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `cands` as the list of `id` (which has none yet).
    fn put(&mut self, id: u32, cands: Vec<Cand>) -> usize {
        let i = self.lists.len();
        self.map.insert(id, i as u32);
        self.lists.push(cands);
        i
    }
}

fn target_view(targets: &dyn TargetSet, i: usize) -> (&str, &dyn View) {
    if i == 0 {
        targets.main()
    } else {
        targets.module(i - 1)
    }
}

/// `bpf_core_find_cands`: main target first, modules only if it has none.
// Out of line: smaller code where it was inlined (issue 8: binary size).
#[inline(never)]
fn find_cands(
    local: &dyn View,
    local_id: u32,
    targets: &dyn TargetSet,
) -> Result<Vec<Cand>, ViewError> {
    let lt = local.ty(local_id)?;
    let ess = essential_name(lt.name);
    let mut ids = Vec::new();
    let mut out = Vec::new();
    targets.main().1.find_candidates(ess, lt.kind, &mut ids)?;
    out.extend(ids.drain(..).map(|id| Cand { target: 0, id }));
    if !out.is_empty() {
        return Ok(out);
    }
    let n = targets
        .module_count()
        .map_err(|e| ViewError::Parse(e.to_string()))?;
    for m in 0..n {
        targets
            .module(m)
            .1
            .find_candidates(ess, lt.kind, &mut ids)?;
        out.extend(ids.drain(..).map(|id| Cand { target: m + 1, id }));
    }
    Ok(out)
}

/// Fills the candidate cache for all local types of `relos` not cached yet,
/// with one pass over the main target's types, when the main target has no
/// name index yet (building one costs far more than one pass). The lists
/// are exactly what [`find_cands`] would return; any problem just leaves the
/// types to the lazy path, which reports errors at the record they concern.
/// (One instantiation for every kind of record iterator: it is called with several.)
pub(crate) fn prefetch(
    local: &dyn View,
    relos: &mut dyn Iterator<Item = &CoreRelo>,
    targets: &dyn TargetSet,
    cache: &mut CandCache,
) {
    let main = targets.main().1;
    match cache.lookup {
        Lookup::Index => return,
        Lookup::Scan => {}
        Lookup::Undecided => {
            // Without an index a pass scans (vmlinux: ~0.1 ms over the keys
            // its parse recorded, against ~0.7 ms to build the index; other
            // BTF: one pass over all types). Once scans have cost about what
            // the index costs, a pass builds it, and every later load's
            // lookups take nanoseconds (`Btf::core_pass_builds_index`).
            // Decided once per pass.
            if main.has_name_index() {
                cache.lookup = Lookup::Index;
                return;
            }
            if main.pass_builds_index() {
                main.build_name_index();
                cache.lookup = Lookup::Index;
                return;
            }
            cache.lookup = Lookup::Scan;
        }
    }
    // distinct (essential name, kind) keys, each with the local ids asking
    let mut keys: Vec<(String, u8, Vec<u32>)> = Vec::new();
    for r in relos {
        if r.kind == CoreReloKind::TypeIdLocal as u32 || cache.map.contains_key(&r.type_id) {
            continue;
        }
        let Ok(lt) = local.ty(r.type_id) else {
            continue;
        };
        if lt.name.is_empty() {
            continue;
        }
        let ess = essential_name(lt.name);
        match keys
            .iter_mut()
            .find(|(e, kd, _)| e == ess && *kd == lt.kind)
        {
            Some((_, _, ids)) => {
                if !ids.contains(&r.type_id) {
                    ids.push(r.type_id)
                }
            }
            None => keys.push((ess.to_owned(), lt.kind, vec![r.type_id])),
        }
    }
    if keys.is_empty() {
        return;
    }
    let wanted: Vec<(&str, u8)> = keys.iter().map(|(e, kd, _)| (e.as_str(), *kd)).collect();
    let Ok(found) = main.scan_candidates(&wanted) else {
        return;
    };
    for ((ess, kind, ids), main_ids) in keys.iter().zip(found) {
        let mut cands: Vec<Cand> = main_ids
            .into_iter()
            .map(|id| Cand { target: 0, id })
            .collect();
        if cands.is_empty() {
            // modules only where the main target has none
            let Ok(n) = targets.module_count() else {
                continue;
            };
            let mut ids_buf = Vec::new();
            let mut failed = false;
            for m in 0..n {
                if targets
                    .module(m)
                    .1
                    .find_candidates(ess, *kind, &mut ids_buf)
                    .is_err()
                {
                    failed = true;
                    break;
                }
                cands.extend(ids_buf.drain(..).map(|id| Cand { target: m + 1, id }));
            }
            if failed {
                continue;
            }
        }
        for id in ids {
            cache.put(*id, cands.clone());
        }
    }
}

struct Resolved {
    res: ReloRes,
    local_spec: Spec,
    targ: Option<(usize, Spec)>,
    candidates: usize,
    /// The pruned candidate list (index in `CandCache::lists`, list) to
    /// store once the relocation has been applied: see [`resolve`].
    pruned: Option<(usize, Vec<Cand>)>,
}

/// `bpf_core_calc_relo_insn` (with the cache handling of
/// `bpf_core_resolve_relo`).
// Out of line: smaller code where it was inlined (issue 8: binary size).
#[inline(never)]
fn resolve(
    local: &dyn View,
    relo: &CoreRelo,
    relo_idx: usize,
    kind: CoreReloKind,
    targets: &dyn TargetSet,
    cache: &mut CandCache,
) -> Result<Resolved, CoreError> {
    let local_id = relo.type_id;
    let lt = local.ty(local_id).map_err(|source| CoreError::LocalType {
        relo: relo_idx,
        type_id: local_id,
        source,
    })?;
    let local_name = lt.name.to_owned();
    let access = local
        .str_at(relo.access_str_off)
        .map_err(|source| CoreError::LocalType {
            relo: relo_idx,
            type_id: local_id,
            source,
        })?
        .to_owned();
    let local_spec =
        parse_spec(local, local_id, &access, kind).map_err(|source| CoreError::Spec {
            relo: relo_idx,
            type_id: local_id,
            kind: lt.kind_name(),
            name: local_name.clone(),
            access: access.clone(),
            source,
        })?;

    if kind == CoreReloKind::TypeIdLocal {
        let res = ReloRes {
            orig_val: local_id as u64,
            new_val: local_id as u64,
            validate: false,
            ..Default::default()
        };
        return Ok(Resolved {
            res,
            local_spec,
            targ: None,
            candidates: 0,
            pruned: None,
        });
    }
    if local_name.is_empty() {
        return Err(CoreError::Anonymous {
            relo: relo_idx,
            kind,
        });
    }

    let list = match cache.map.get(&local_id) {
        Some(&i) => i as usize,
        None => {
            let c =
                find_cands(local, local_id, targets).map_err(|source| CoreError::Candidates {
                    relo: relo_idx,
                    type_id: local_id,
                    name: local_name.clone(),
                    source,
                })?;
            cache.put(local_id, c)
        }
    };
    let cands = &cache.lists[list];
    let candidates = cands.len();

    // The candidates that match, collected apart: the caller replaces the
    // cached list only once the whole relocation (patching included)
    // succeeded. libbpf compacts its list in place and may leave it
    // half-compacted on an error, but it then aborts the load; our loader
    // records the error and keeps relocating other functions with the same
    // cache, and they must see the list as it was.
    let mut kept: Vec<Cand> = Vec::new();
    let mut best: Option<(ReloRes, usize, Spec)> = None;
    for (i, &cand) in cands.iter().enumerate() {
        let (_, tv) = target_view(targets, cand.target);
        let cand_spec = match spec_match(local, &local_spec, tv, cand.id) {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(source) => {
                return Err(CoreError::Match {
                    relo: relo_idx,
                    cand: i,
                    type_id: cand.id,
                    source,
                })
            }
        };
        let cand_res = calc_relo(local, &local_spec, Some((tv, &cand_spec))).map_err(|source| {
            CoreError::Calc {
                relo: relo_idx,
                source,
            }
        })?;
        match &best {
            None => best = Some((cand_res, cand.target, cand_spec)),
            Some((bres, _, bspec)) => {
                // both are libbpf's __u32 bit offsets (`Spec::bit_offset`)
                if cand_spec.bit_offset != bspec.bit_offset {
                    return Err(CoreError::OffsetAmbiguity {
                        relo: relo_idx,
                        a: cand_spec.bit_offset as u64,
                        b: bspec.bit_offset as u64,
                    });
                }
                if cand_res.poison != bres.poison || cand_res.new_val != bres.new_val {
                    return Err(CoreError::Ambiguity {
                        relo: relo_idx,
                        a: describe(&cand_res),
                        b: describe(bres),
                    });
                }
            }
        }
        kept.push(cand);
    }
    // candidates that did not match this relocation are dropped for the
    // next relocations of the same local type, unless none matched
    let pruned = (!kept.is_empty() && kept.len() != candidates).then_some((list, kept));
    match best {
        Some((res, t, spec)) => Ok(Resolved {
            res,
            local_spec,
            targ: Some((t, spec)),
            candidates,
            pruned,
        }),
        None => {
            let res = calc_relo(local, &local_spec, None).map_err(|source| CoreError::Calc {
                relo: relo_idx,
                source,
            })?;
            Ok(Resolved {
                res,
                local_spec,
                targ: None,
                candidates,
                pruned,
            })
        }
    }
}

fn describe(r: &ReloRes) -> String {
    format!(
        "{} {}",
        if r.poison { "failure" } else { "success" },
        r.new_val
    )
}

/// Resolves and applies the relocations of one program.
pub(crate) fn relocate<I: CoreInsn>(
    local: &dyn View,
    relos: impl IntoIterator<Item = (usize, CoreRelo)>,
    insns: &mut [I],
    targets: &dyn TargetSet,
    cache: &mut CandCache,
) -> Result<Vec<CoreReloResult>, CoreError> {
    let relos: Vec<(usize, CoreRelo)> = relos.into_iter().collect();
    prefetch(local, &mut relos.iter().map(|(_, r)| r), targets, cache);
    let mut out = Vec::new();
    for (relo_idx, relo) in relos {
        if relo.insn_off % 8 != 0 {
            return Err(CoreError::Misaligned {
                relo: relo_idx,
                insn_off: relo.insn_off,
            });
        }
        let insn_idx = (relo.insn_off / 8) as usize;
        if insn_idx >= insns.len() {
            return Err(CoreError::OutOfRange {
                relo: relo_idx,
                insn: insn_idx,
                len: insns.len(),
            });
        }
        let kind = CoreReloKind::from_u32(relo.kind).ok_or(CoreError::UnknownKind {
            relo: relo_idx,
            kind: relo.kind,
        })?;
        let mut r = resolve(local, &relo, relo_idx, kind, targets, cache)?;
        let patched = patch_insn(insns, insn_idx, &r.res).map_err(|source| CoreError::Patch {
            relo: relo_idx,
            source,
        })?;
        // only an applied relocation prunes (libbpf's pruning happens within
        // a pass that then succeeds, or the load fails)
        if let Some((i, list)) = r.pruned.take() {
            cache.lists[i] = list;
        }
        let outcome = match patched {
            Patched::Value { mem_size } => Outcome::Patched { mem_size },
            Patched::Poisoned => Outcome::Poisoned(PoisonReason::NoTarget),
            Patched::PoisonedMemSize => Outcome::Poisoned(PoisonReason::MemSizeAdjust),
        };
        let target = r.targ.as_ref().map(|(t, spec)| {
            let (name, tv) = target_view(targets, *t);
            TargetMatch {
                btf: name.to_owned(),
                type_id: spec.root_type_id,
                spec: format_spec(tv, spec),
                bit_offset: spec.bit_offset as u64,
            }
        });
        let lt = local.ty(relo.type_id).ok();
        out.push(CoreReloResult {
            index: relo_idx,
            insn_idx,
            kind,
            local_type_id: relo.type_id,
            local_type_name: lt.map(|t| t.name.to_owned()).unwrap_or_default(),
            access: local.str_at(relo.access_str_off).unwrap_or("").to_owned(),
            local_spec: format_spec(local, &r.local_spec),
            candidates: r.candidates,
            target,
            orig_val: r.res.orig_val,
            new_val: r.res.new_val,
            outcome,
        });
    }
    Ok(out)
}
