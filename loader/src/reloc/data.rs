//! Map and global data references (`bpf_object__relocate_data`): `ld_imm64` instructions get
//! `BPF_PSEUDO_MAP_FD` / `BPF_PSEUDO_MAP_VALUE` and the map's fd; references to maps that are not
//! created are poisoned exactly as libbpf poisons them, so the verifier only complains if the code
//! is reachable.

use std::os::fd::RawFd;

use super::Linked;
use crate::insn::{Insn, CALL, PSEUDO_MAP_FD, PSEUDO_MAP_VALUE};
use crate::object::relocs::RelocKind;

/// libbpf's `POISON_LDIMM64_MAP_BASE`: `call 2001000000 + map_idx`.
pub const POISON_LDIMM64_MAP_BASE: i32 = 2_001_000_000;

/// Patches every map reference of `linked`. `map_fd(i)` is the fd of map `i`, or `None` if it was
/// not created. `arena` is the arena map and the offset of the `__arena` globals in it
/// (`arena_data_off`), added to references to that map.
// Out of line: smaller code where it was inlined (issue 8: binary size).
#[inline(never)]
pub(crate) fn relocate(
    linked: &mut Linked,
    arena: Option<(usize, i32)>,
    map_fd: impl Fn(usize) -> Option<RawFd>,
) {
    for (idx, r) in &linked.relos {
        let idx = *idx;
        let (map, value) = match r.kind {
            RelocKind::MapFd { map } => (map, false),
            RelocKind::MapValue { map } => (map, true),
            _ => continue,
        };
        let insns = &mut linked.insns;
        if idx + 1 >= insns.len() {
            continue; // checked at open: an ld_imm64 always has its second half
        }
        if value {
            insns[idx + 1].imm = insns[idx].imm.wrapping_add(r.sym_off as i32);
            if let Some((_, off)) = arena.filter(|&(a, _)| a == map) {
                insns[idx + 1].imm = insns[idx + 1].imm.wrapping_add(off);
            }
        }
        match map_fd(map) {
            Some(fd) => {
                insns[idx].set_src(if value {
                    PSEUDO_MAP_VALUE
                } else {
                    PSEUDO_MAP_FD
                });
                insns[idx].imm = fd;
            }
            None => {
                // poison_map_ldimm64: the ld_imm64 becomes two identical invalid calls.
                for insn in &mut insns[idx..idx + 2] {
                    *insn = Insn::new(CALL, 0, 0, 0, POISON_LDIMM64_MAP_BASE + map as i32);
                }
            }
        }
    }
}
