//! bpfload through its library API, as a user calls it: `Object::open_file`, then
//! `Loader::new()...load(&object)`, then `Loaded::program(name)` for instructions and results.

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::bench::Op;
use crate::insn;
use crate::kernel;

/// Runs one benchmark operation with bpfload (`threads`: program-loading threads, default CPUs).
pub fn run_once(op: Op, path: &Path, threads: Option<usize>) -> Result<(), String> {
    let obj = bpfload::Object::open_file(path).map_err(|e| e.to_string())?;
    match op {
        Op::Open => Ok(()),
        Op::Prepare => Err("bpfload: no separate prepare step in its API (load only)".to_string()),
        Op::Load => {
            let mut loader = bpfload::Loader::new();
            if let Some(t) = threads {
                loader = loader.threads(t);
            }
            let loaded = loader.load(&obj).map_err(|e| e.to_string())?;
            if loaded.all_loaded() {
                Ok(())
            } else {
                Err("bpfload: not every program loaded".to_string())
            }
        }
    }
}

/// One program loaded alone with bpfload.
#[derive(Debug, Clone)]
pub struct OurProg {
    /// `Err(errno)` with a message when the program (or the object, for this program) failed.
    pub result: Result<(), (i32, String)>,
    /// The instructions bpfload passed (or would have passed) to BPF_PROG_LOAD.
    pub insns: Vec<u8>,
    /// fd -> kernel name of the map behind it, for every map fd in `insns`.
    pub map_names: BTreeMap<i32, String>,
}

/// The errno libbpf would report for an object-level load failure.
pub fn load_error_errno(e: &bpfload::LoadError) -> i32 {
    e.errno().raw()
}

/// Loads program `name` of `path` alone (only it autoloaded, as libbpf-dump sets autoload) and
/// records what bpfload did. Keep-going, so that a failed program still has its final
/// instructions; but the result is libbpf's object-level one: when another program of the same
/// load failed (a struct_ops member of the same created map, which libbpf's autoload rule loads
/// too), this program's result is that failure, as libbpf's whole load fails.
pub fn load_one(obj: &bpfload::Object, name: &str) -> OurProg {
    let loaded = bpfload::Loader::new()
        .only_programs([name])
        .keep_going(true)
        .load(obj);
    let loaded = match loaded {
        Ok(l) => l,
        Err(e) => {
            return OurProg {
                result: Err((load_error_errno(&e), e.to_string())),
                insns: Vec::new(),
                map_names: BTreeMap::new(),
            }
        }
    };
    let mut ours = program_of(&loaded, name);
    if ours.result.is_ok() {
        if let Some(e) = loaded.programs().iter().find_map(|p| p.result().err()) {
            ours.result = Err((e.errno().raw(), e.to_string()));
        }
    }
    ours
}

/// Loads the whole object as libbpf does by default (every autoload program, stop at the first
/// failure): each program's outcome, or the load's error.
pub fn load_whole(obj: &bpfload::Object) -> Result<Vec<(String, OurProg)>, (i32, String)> {
    let loaded = bpfload::Loader::new()
        .load(obj)
        .map_err(|e| (load_error_errno(&e), e.to_string()))?;
    Ok(loaded
        .programs()
        .iter()
        .map(|p| (p.name().to_string(), program_of(&loaded, p.name())))
        .collect())
}

fn program_of(loaded: &bpfload::Loaded, name: &str) -> OurProg {
    let Some(p) = loaded.program(name) else {
        return OurProg {
            result: Err((libc::ENOENT, format!("bpfload loaded no program {name:?}"))),
            insns: Vec::new(),
            map_names: BTreeMap::new(),
        };
    };
    let bytes = bpfload::insn::insns_to_bytes(p.insns());
    // While `loaded` lives, every map fd in the instructions is open: ask the kernel its name.
    let mut map_names = BTreeMap::new();
    let ours: BTreeMap<i32, &str> = loaded
        .maps()
        .iter()
        .map(|m| (m.fd().as_raw_fd(), m.name()))
        .collect();
    for fd in insn::decode(&bytes)
        .map(|i| insn::map_fd_refs(&i))
        .unwrap_or_default()
        .into_values()
    {
        let name = kernel::map_name(fd).or_else(|| {
            ours.get(&fd)
                .map(|n| n[..n.len().min(kernel::OBJ_NAME_MAX)].to_string())
        });
        if let Some(n) = name {
            map_names.insert(fd, n);
        }
    }
    let result = match p.result() {
        Ok(_) => Ok(()),
        Err(e) => Err((e.errno().raw(), e.to_string())),
    };
    OurProg {
        result,
        insns: bytes,
        map_names,
    }
}
