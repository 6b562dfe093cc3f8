//! CO-RE: BPF "compile once, run everywhere" relocations, resolved the way
//! libbpf resolves them (`relo_core.c` and libbpf's `bpf_core_*` helpers).
//!
//! For each `.BTF.ext` core_relo record, the local type named by the record
//! is matched by essential name (the `___flavor` suffix dropped) and kind
//! against the target BTFs: vmlinux (or a custom BTF replacing it) first,
//! module BTFs only when vmlinux has no candidate. Each candidate that
//! matches the access string yields a value; candidates must agree, else the
//! relocation is ambiguous (an error, as in libbpf). When no candidate
//! matches, existence checks give 0 and everything else poisons the
//! instruction into `call 0xbad2310`, which the verifier only rejects if it
//! is reachable.
//!
//! Entry point: [`relocate_program`], or a [`CoreRelocator`] that keeps the
//! candidate cache across the programs of one object.
//!
//! For libbpf's exact answers, relocate in libbpf's order: `.BTF.ext`
//! core_relo sections in file order and, within a section, programs by
//! offset (records are sorted by instruction offset), skipping programs
//! that are not loaded. The cache prunes candidates that earlier records of
//! the same local type ruled out, as libbpf's does; [`program_relos_indexed`]
//! gives a program's records with libbpf's `relo #N` numbering.

mod adapter;
mod calc;
mod compat;
mod engine;
mod kind;
mod patch;
mod spec;
#[cfg(test)]
mod testbtf;
#[cfg(test)]
mod tests;
mod view;

pub use crate::ext::{CoreRelo, CoreReloKind};
pub use adapter::Targets;
pub use calc::CalcError;
use engine::CandCache;
pub use patch::{insns_from_bytes, insns_to_bytes, CoreInsn, PatchError, POISON_IMM};
pub use spec::{MatchError, SpecError};
pub use view::{essential_name, ViewError};

// Records are `crate::ext::CoreRelo`; their `insn_off` is a byte offset,
// which the relocator takes relative to the first instruction of the slice
// it is given (the loader subtracts the program's offset in its section).

/// Why an instruction was poisoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoisonReason {
    /// No target candidate matched (field/enumerator/type missing).
    NoTarget,
    /// The field was found, but the load/store width would have to change
    /// for a signed or non-integer field (libbpf: "accesses field
    /// incorrectly").
    MemSizeAdjust,
}

/// What happened to the instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Patched with `new_val`; `mem_size` = `Some((old, new))` if a
    /// load/store changed width.
    Patched { mem_size: Option<(u32, u32)> },
    /// Turned into `call 0xbad2310`.
    Poisoned(PoisonReason),
}

/// The target type a relocation resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetMatch {
    /// "vmlinux", a module name, or the custom BTF's name.
    pub btf: String,
    pub type_id: u32,
    /// libbpf-style spec text, e.g. `<byte_off> [114] struct task_struct.pid (0:37 @ offset 2496)`.
    pub spec: String,
    /// libbpf's `__u32` bit offset (wrapped at 32 bits on hostile sizes).
    pub bit_offset: u64,
}

/// The result of one relocation, for `bpfload inspect --core` and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreReloResult {
    /// The record's index: its position in the iterator given to the
    /// relocator, or the caller's index with `relocate_indexed`.
    pub index: usize,
    /// Instruction index within the program slice.
    pub insn_idx: usize,
    pub kind: CoreReloKind,
    pub local_type_id: u32,
    pub local_type_name: String,
    /// The raw access string ("0:1:2").
    pub access: String,
    /// libbpf-style text of the local spec.
    pub local_spec: String,
    /// Number of target candidates (before this relocation pruned them).
    pub candidates: usize,
    /// `None` if no candidate matched (or TYPE_ID_LOCAL, which has none).
    pub target: Option<TargetMatch>,
    /// The value the compiler put in the instruction (from local BTF).
    pub orig_val: u64,
    /// The value for the target (0 when poisoned for lack of a target).
    pub new_val: u64,
    pub outcome: Outcome,
}

/// A relocation that cannot be applied: libbpf fails the load for these
/// (unlike a missing target, which poisons).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    #[error("relo #{relo}: insn offset {insn_off} is not a multiple of 8")]
    Misaligned { relo: usize, insn_off: u32 },
    #[error("relo #{relo}: insn #{insn} is outside the program ({len} insns)")]
    OutOfRange {
        relo: usize,
        insn: usize,
        len: usize,
    },
    #[error("relo #{relo}: unrecognized CO-RE relocation kind {kind}")]
    UnknownKind { relo: usize, kind: u32 },
    #[error("relo #{relo}: bad local type [{type_id}]: {source}")]
    LocalType {
        relo: usize,
        type_id: u32,
        source: ViewError,
    },
    #[error("relo #{relo}: parsing [{type_id}] {kind} {name} + {access} failed: {source}")]
    Spec {
        relo: usize,
        type_id: u32,
        kind: &'static str,
        name: String,
        access: String,
        source: SpecError,
    },
    #[error("relo #{relo}: <{kind}> relocation doesn't support anonymous types")]
    Anonymous { relo: usize, kind: CoreReloKind },
    #[error("relo #{relo}: target candidate search failed for [{type_id}] {name}: {source}")]
    Candidates {
        relo: usize,
        type_id: u32,
        name: String,
        source: ViewError,
    },
    #[error("relo #{relo}: error matching candidate #{cand} [{type_id}]: {source}")]
    Match {
        relo: usize,
        cand: usize,
        type_id: u32,
        source: MatchError,
    },
    #[error("relo #{relo}: field offset ambiguity: {a} != {b}")]
    OffsetAmbiguity { relo: usize, a: u64, b: u64 },
    #[error("relo #{relo}: relocation decision ambiguity: {a} != {b}")]
    Ambiguity { relo: usize, a: String, b: String },
    #[error("relo #{relo}: {source}")]
    Calc { relo: usize, source: CalcError },
    #[error("relo #{relo}: failed to patch: {source}")]
    Patch { relo: usize, source: PatchError },
    #[error("loading module BTF: {0}")]
    Modules(String),
}

impl CoreError {
    /// The record index the error is about, if any.
    pub fn relo_index(&self) -> Option<usize> {
        use CoreError::*;
        match self {
            Misaligned { relo, .. }
            | OutOfRange { relo, .. }
            | UnknownKind { relo, .. }
            | LocalType { relo, .. }
            | Spec { relo, .. }
            | Anonymous { relo, .. }
            | Candidates { relo, .. }
            | Match { relo, .. }
            | OffsetAmbiguity { relo, .. }
            | Ambiguity { relo, .. }
            | Calc { relo, .. }
            | Patch { relo, .. } => Some(*relo),
            Modules(_) => None,
        }
    }

    /// True for libbpf's two ambiguity errors.
    pub fn is_ambiguity(&self) -> bool {
        matches!(
            self,
            CoreError::Ambiguity { .. } | CoreError::OffsetAmbiguity { .. }
        )
    }
}

/// Relocates the programs of one object, keeping libbpf's per-pass
/// candidate cache (candidate lists per local type id, pruned by earlier
/// relocations) across programs. Relocate programs in the order libbpf does
/// (`.BTF.ext` core_relo sections and records in file order) to get its
/// exact answers.
pub struct CoreRelocator<'l, 't> {
    local: &'l crate::Btf<'l>,
    targets: &'t Targets<'t>,
    cache: CandCache,
}

impl<'l, 't> CoreRelocator<'l, 't> {
    /// A relocator for the object whose own BTF is `local`.
    pub fn new(local: &'l crate::Btf<'l>, targets: &'t Targets<'t>) -> Self {
        CoreRelocator {
            local,
            targets,
            cache: CandCache::new(),
        }
    }

    /// Applies `relos` to `insns` (one program; `insn_off` relative to
    /// `insns[0]`). Unresolvable relocations poison their instruction and are
    /// reported in the results; errors are what libbpf fails the load for.
    pub fn relocate<I: CoreInsn>(
        &mut self,
        relos: impl IntoIterator<Item = CoreRelo>,
        insns: &mut [I],
    ) -> Result<Vec<CoreReloResult>, CoreError> {
        engine::relocate(
            self.local,
            relos.into_iter().enumerate(),
            insns,
            self.targets,
            &mut self.cache,
        )
    }

    /// Looks up the target candidates of every local type that `relos`
    /// (typically all core_relo records of the object) will ask about, in
    /// one pass over the target BTF, unless it already has a name index.
    /// Optional: [`relocate`](Self::relocate) does the same for the records
    /// it is given; calling this first with all records makes it one pass
    /// per object instead of one per program. Results are unchanged.
    pub fn prefetch<'r>(&mut self, relos: impl IntoIterator<Item = &'r CoreRelo>) {
        engine::prefetch(
            self.local,
            &mut relos.into_iter(),
            self.targets,
            &mut self.cache,
        )
    }

    /// Like [`relocate`](Self::relocate), with each record's index given by
    /// the caller (libbpf numbers records within their `.BTF.ext` section:
    /// `relo #N` in its messages), as [`program_relos_indexed`] returns them.
    pub fn relocate_indexed<I: CoreInsn>(
        &mut self,
        relos: impl IntoIterator<Item = (usize, CoreRelo)>,
        insns: &mut [I],
    ) -> Result<Vec<CoreReloResult>, CoreError> {
        engine::relocate(self.local, relos, insns, self.targets, &mut self.cache)
    }
}

/// libbpf's `bpf_core_types_are_compat` between a local and a target BTF (used outside CO-RE for
/// typed ksyms and kfunc prototypes). Names of the top-level types are not compared.
pub fn types_are_compat(
    local: &crate::Btf<'_>,
    local_id: u32,
    targ: &crate::Btf<'_>,
    targ_id: u32,
) -> Result<bool, ViewError> {
    compat::types_are_compat(local, local_id, targ, targ_id)
}

/// Relocates one program with a fresh candidate cache. See [`CoreRelocator`].
pub fn relocate_program<I: CoreInsn>(
    local: &crate::Btf<'_>,
    relos: impl IntoIterator<Item = CoreRelo>,
    insns: &mut [I],
    targets: &Targets<'_>,
) -> Result<Vec<CoreReloResult>, CoreError> {
    engine::relocate(
        local,
        relos.into_iter().enumerate(),
        insns,
        targets,
        &mut CandCache::new(),
    )
}

impl std::fmt::Display for CoreReloResult {
    /// One line per relocation, for `bpfload inspect --core`:
    /// `#3 insn 12 byte_off: <byte_off> [5] struct task_struct.pid (0:0 @ offset 0) => vmlinux [114] ... : 0 -> 2496`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "#{} insn {} {}: {}",
            self.index, self.insn_idx, self.kind, self.local_spec
        )?;
        match &self.target {
            Some(t) => write!(f, " => {} {}", t.btf, t.spec)?,
            None if self.kind == CoreReloKind::TypeIdLocal => {}
            None => write!(f, " => no match among {} candidate(s)", self.candidates)?,
        }
        match self.outcome {
            Outcome::Patched { mem_size: None } => {
                write!(f, ": {} -> {}", self.orig_val, self.new_val)
            }
            Outcome::Patched {
                mem_size: Some((a, b)),
            } => {
                write!(
                    f,
                    ": {} -> {} (mem size {a} -> {b})",
                    self.orig_val, self.new_val
                )
            }
            Outcome::Poisoned(PoisonReason::NoTarget) => write!(f, ": poisoned (call 0xbad2310)"),
            Outcome::Poisoned(PoisonReason::MemSizeAdjust) => {
                write!(
                    f,
                    ": poisoned (call 0xbad2310): load/store size cannot be adjusted"
                )
            }
        }
    }
}

/// The core_relo records that apply to one program: the records of ELF
/// section `section` whose byte `insn_off` lies in
/// `prog_off .. prog_off + prog_len`, rebased to the program's first
/// instruction. Record order is kept (it decides libbpf's candidate pruning).
pub fn program_relos(
    btf: &crate::Btf<'_>,
    ext: &crate::BtfExt<'_>,
    section: &str,
    prog_off: usize,
    prog_len: usize,
) -> Vec<CoreRelo> {
    program_relos_indexed(btf, ext, section, prog_off, prog_len)
        .into_iter()
        .map(|(_, r)| r)
        .collect()
}

/// [`program_relos`] with each record's index within its section (libbpf's
/// `relo #N`), for [`CoreRelocator::relocate_indexed`].
pub fn program_relos_indexed(
    btf: &crate::Btf<'_>,
    ext: &crate::BtfExt<'_>,
    section: &str,
    prog_off: usize,
    prog_len: usize,
) -> Vec<(usize, CoreRelo)> {
    let mut out = Vec::new();
    for s in ext.core_relos.sections() {
        if btf.str_at(s.sec_name_off).ok() != Some(section) {
            continue;
        }
        for (i, r) in s.records().enumerate() {
            let off = r.insn_off as usize;
            if off >= prog_off && off - prog_off < prog_len {
                out.push((
                    i,
                    CoreRelo {
                        insn_off: (off - prog_off) as u32,
                        ..r
                    },
                ));
            }
        }
    }
    out
}
