//! [`Loaded`]: the kernel objects of one load. Dropping it closes every fd (pins stay).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::error::ProgramError;
use crate::insn::Insn;
use crate::object::maps::{MapDef, MapKind};
use crate::token::TokenReport;

/// A created (or reused pinned) map.
#[derive(Debug)]
pub struct LoadedMap {
    pub(crate) name: String,
    pub(crate) real_name: String,
    pub(crate) kind: MapKind,
    pub(crate) def: MapDef,
    pub(crate) fd: OwnedFd,
    pub(crate) pin: Option<PathBuf>,
    pub(crate) reused: bool,
    /// ARENA maps: the user-space mapping made at creation (see `crate::arena`).
    pub(crate) arena: Option<bpfload_syscall::arena::ArenaMapping>,
}

impl LoadedMap {
    /// The kernel name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The object name (variable or section name).
    pub fn real_name(&self) -> &str {
        &self.real_name
    }
    /// Where its definition came from.
    pub fn kind(&self) -> MapKind {
        self.kind
    }
    /// The definition as created (after `max_entries` adjustments).
    pub fn def(&self) -> &MapDef {
        &self.def
    }
    /// The map fd.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
    /// Where it is pinned, if it is.
    pub fn pin_path(&self) -> Option<&Path> {
        self.pin.as_deref()
    }
    /// Whether an existing pinned map was reused instead of creating one.
    pub fn reused(&self) -> bool {
        self.reused
    }
    /// An ARENA map's user-space view, mapped at creation (at `map_extra` when set) and holding the
    /// initial `__arena` globals, as libbpf's `bpf_map__initial_value` after load. `None` for other
    /// maps and for a reused pinned arena (libbpf does not map those either).
    pub fn arena(&self) -> Option<&bpfload_syscall::arena::ArenaMapping> {
        self.arena.as_ref()
    }
    /// Mutable access to the arena view, to write arena memory shared with the programs.
    pub fn arena_mut(&mut self) -> Option<&mut bpfload_syscall::arena::ArenaMapping> {
        self.arena.as_mut()
    }
}

/// One autoload program: its final instructions and the load result.
#[derive(Debug)]
pub struct LoadedProgram {
    pub(crate) name: String,
    pub(crate) section: String,
    pub(crate) prog_type: Option<u32>,
    pub(crate) insns: Vec<Insn>,
    pub(crate) result: Result<OwnedFd, ProgramError>,
}

impl LoadedProgram {
    /// The program name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Its section.
    pub fn section(&self) -> &str {
        &self.section
    }
    /// `enum bpf_prog_type` (None for an unknown section).
    pub fn prog_type(&self) -> Option<u32> {
        self.prog_type
    }
    /// Program type name.
    pub fn prog_type_name(&self) -> &'static str {
        self.prog_type
            .map(crate::names::prog_type_name)
            .unwrap_or("unspec")
    }
    /// The final instructions: for a program that reached `BPF_PROG_LOAD` (loaded, or refused
    /// by the kernel: [`ProgramError::Kernel`](crate::ProgramError::Kernel)), exactly what the
    /// kernel received; for one that failed before (e.g. no attach target), what it would have
    /// received; empty if relocation failed.
    pub fn insns(&self) -> &[Insn] {
        &self.insns
    }
    /// Number of instructions passed to the kernel.
    pub fn insn_count(&self) -> usize {
        self.insns.len()
    }
    /// The fd, if the program loaded. Panics if it did not; see [`LoadedProgram::result`].
    pub fn fd(&self) -> BorrowedFd<'_> {
        match &self.result {
            Ok(fd) => fd.as_fd(),
            Err(e) => panic!("program '{}' did not load: {e}", self.name),
        }
    }
    /// The load result: the fd or why it failed.
    pub fn result(&self) -> Result<BorrowedFd<'_>, &ProgramError> {
        self.result.as_ref().map(|fd| fd.as_fd())
    }
    /// Whether it loaded.
    pub fn is_loaded(&self) -> bool {
        self.result.is_ok()
    }
}

/// Everything one load created. `Send + Sync`; dropping it closes all fds.
#[derive(Debug)]
pub struct Loaded {
    pub(crate) object: String,
    /// The load's token, unless `probes` is bound to it (then `probes` holds the token fd).
    pub(crate) token: Option<OwnedFd>,
    /// The feature cache the load used: kept so a token's cache lives as long as the object.
    pub(crate) probes: std::sync::Arc<bpfload_probe::Probes>,
    pub(crate) token_report: TokenReport,
    pub(crate) btf: Option<OwnedFd>,
    pub(crate) maps: Vec<LoadedMap>,
    pub(crate) programs: Vec<LoadedProgram>,
    /// struct_ops maps: (map name, kernel value with the member programs' fds).
    pub(crate) struct_ops: Vec<(String, Vec<u8>)>,
}

impl Loaded {
    /// The value to register a struct_ops map with (`BPF_MAP_UPDATE_ELEM` key 0, what libbpf's
    /// `bpf_map__attach_struct_ops` writes): the kernel's `bpf_struct_ops_<type>` image with the
    /// member programs' fds, valid while `self` holds them.
    pub fn struct_ops_value(&self, map: &str) -> Option<&[u8]> {
        self.struct_ops
            .iter()
            .find(|(n, _)| n == map)
            .map(|(_, v)| v.as_slice())
    }

    /// The object name.
    pub fn object_name(&self) -> &str {
        &self.object
    }
    /// The BPF token used for this load, if any. It lives as long as `self`.
    pub fn token_fd(&self) -> Option<BorrowedFd<'_>> {
        self.token
            .as_ref()
            .map(|t| t.as_fd())
            .or_else(|| self.probes.token())
    }
    /// What happened to the token.
    pub fn token_report(&self) -> &TokenReport {
        &self.token_report
    }
    /// The object's BTF in the kernel, if it was loaded.
    pub fn btf_fd(&self) -> Option<BorrowedFd<'_>> {
        self.btf.as_ref().map(|t| t.as_fd())
    }
    /// Created maps, in object order.
    pub fn maps(&self) -> &[LoadedMap] {
        &self.maps
    }
    /// A map by kernel name or object name (`.rodata` etc. for global data).
    pub fn map(&self, name: &str) -> Option<&LoadedMap> {
        self.maps
            .iter()
            .find(|m| m.name == name || m.real_name == name)
    }
    /// The autoload programs in object order, loaded or not (see [`LoadedProgram::result`]).
    pub fn programs(&self) -> &[LoadedProgram] {
        &self.programs
    }
    /// A program by name.
    pub fn program(&self, name: &str) -> Option<&LoadedProgram> {
        self.programs.iter().find(|p| p.name == name)
    }
    /// A program's final instructions ([`LoadedProgram::insns`]): exactly what `BPF_PROG_LOAD`
    /// received, for a program that reached it.
    pub fn program_insns(&self, name: &str) -> Option<&[Insn]> {
        self.program(name).map(|p| p.insns())
    }
    /// Whether every autoload program loaded.
    pub fn all_loaded(&self) -> bool {
        self.programs.iter().all(|p| p.is_loaded())
    }
}

#[cfg(test)]
mod tests {
    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn loaded_is_send_and_sync() {
        assert_send_sync::<super::Loaded>();
        assert_send_sync::<crate::Object>();
    }
}
