//! Map creation (`bpf_object__create_maps`): reuse of pinned maps, creation with BTF and the retry
//! without it, inner maps, initial values of global data and the `.rodata` freeze, pinning, and the
//! static `values` slots of map-in-map and prog arrays.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use aya_obj::generated::bpf_map_type as mt;
use bpfload_syscall::{map, obj as sysobj, Errno, MapCreateAttr, SysError};

use crate::error::LoadError;
use crate::features::{Feature, Features};
use crate::loaded::{LoadedMap, LoadedProgram};
use crate::loader::Loader;
use crate::object::data::BPF_F_MMAPABLE;
use crate::object::maps::{Map, MapKind, Pinning, Slot};
use crate::object::Object;

/// `BPF_F_RDONLY_PROG`, ignored in the pin compatibility check of DEVMAPs (the kernel reports it).
const BPF_F_RDONLY_PROG: u32 = 1 << 7;

/// Pins made by this load; removed again if the load fails (libbpf's `bpf_object_unpin`).
#[derive(Default)]
pub(crate) struct PinGuard {
    created: Vec<PathBuf>,
    armed: bool,
}

impl PinGuard {
    fn add(&mut self, p: PathBuf) {
        self.armed = true;
        self.created.push(p);
    }
    pub fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        if self.armed {
            for p in &self.created {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

fn is_map_in_map(t: u32) -> bool {
    t == mt::BPF_MAP_TYPE_ARRAY_OF_MAPS as u32 || t == mt::BPF_MAP_TYPE_HASH_OF_MAPS as u32
}

/// Map types whose BTF key/value ids libbpf clears before creation.
fn clears_btf(t: u32) -> bool {
    use mt::*;
    [
        BPF_MAP_TYPE_PERF_EVENT_ARRAY,
        BPF_MAP_TYPE_CGROUP_ARRAY,
        BPF_MAP_TYPE_STACK_TRACE,
        BPF_MAP_TYPE_ARRAY_OF_MAPS,
        BPF_MAP_TYPE_HASH_OF_MAPS,
        BPF_MAP_TYPE_DEVMAP,
        BPF_MAP_TYPE_DEVMAP_HASH,
        BPF_MAP_TYPE_CPUMAP,
        BPF_MAP_TYPE_XSKMAP,
        BPF_MAP_TYPE_SOCKMAP,
        BPF_MAP_TYPE_SOCKHASH,
        BPF_MAP_TYPE_QUEUE,
        BPF_MAP_TYPE_STACK,
        BPF_MAP_TYPE_ARENA,
    ]
    .iter()
    .any(|&x| x as u32 == t)
}

/// `map_set_def_max_entries`: PERF_EVENT_ARRAY with 0 entries gets one per possible CPU.
fn set_def_max_entries(m: &mut Map) -> Result<(), LoadError> {
    if m.def.map_type == mt::BPF_MAP_TYPE_PERF_EVENT_ARRAY as u32 && m.def.max_entries == 0 {
        let n = bpfload_syscall::util::possible_cpus().map_err(|e| LoadError::Map {
            map: m.name.clone(),
            step: "count possible CPUs",
            source: SysError::invalid(
                "possible_cpus",
                Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
                e.to_string(),
            ),
        })?;
        m.def.max_entries = n;
    }
    Ok(())
}

struct Ctx<'a> {
    features: &'a Features,
    token: Option<BorrowedFd<'a>>,
    btf: Option<BorrowedFd<'a>>,
}

/// `bpf_object__create_map`: one `BPF_MAP_CREATE`, with BTF ids, retried without them on failure.
fn create_one(ctx: &Ctx<'_>, m: &mut Map) -> Result<OwnedFd, LoadError> {
    let inner_fd = match (is_map_in_map(m.def.map_type), m.inner.as_deref_mut()) {
        (true, Some(inner)) => {
            set_def_max_entries(inner)?;
            Some(create_one(ctx, inner)?)
        }
        _ => None,
    };
    if clears_btf(m.def.map_type) {
        m.btf_key_type_id = 0;
        m.btf_value_type_id = 0;
    }
    if m.kind == MapKind::StructOps {
        // STRUCT_OPS: the kernel's value type replaces the object's.
        m.btf_value_type_id = 0;
    }
    let name = ctx
        .features
        .has(Feature::ProgName)
        .then_some(m.name.as_str());
    let mut attr = MapCreateAttr {
        map_type: m.def.map_type,
        key_size: m.def.key_size,
        value_size: m.def.value_size,
        max_entries: m.def.max_entries,
        map_flags: m.def.map_flags,
        inner_map_fd: inner_fd.as_ref().map(|f| f.as_fd()),
        numa_node: m.def.numa_node,
        name,
        map_extra: m.def.map_extra,
        btf_vmlinux_value_type_id: m.btf_vmlinux_value_type_id,
        token: ctx.token,
        ..Default::default()
    };
    if let Some(btf) = ctx.btf {
        attr.btf_fd = Some(btf);
        attr.btf_key_type_id = m.btf_key_type_id;
        attr.btf_value_type_id = m.btf_value_type_id;
    }
    let result = match map::create(&attr) {
        Ok(fd) => Ok(fd),
        Err(e) if attr.btf_key_type_id != 0 || attr.btf_value_type_id != 0 => {
            log::warn!(
                "map '{}': creation with BTF failed ({e}); retrying without BTF",
                m.name
            );
            attr.btf_fd = None;
            attr.btf_key_type_id = 0;
            attr.btf_value_type_id = 0;
            m.btf_key_type_id = 0;
            m.btf_value_type_id = 0;
            map::create(&attr)
        }
        Err(e) => Err(e),
    };
    result.map_err(|source| {
        if ctx.token.is_some() && source.errno() == Errno::EPERM {
            // EPERM despite a token: name the delegation that was missing.
            let need = crate::diagnose::MapNeed {
                name: m.name.clone(),
                map_type: m.def.map_type,
                pinned: m.def.pinning != Pinning::None,
            };
            let hint = crate::diagnose::explain_eperm(
                crate::diagnose::EpermSubject::Map(&need),
                ctx.features.delegation(),
                crate::diagnose::names(),
            );
            return LoadError::MapDenied {
                map: m.name.clone(),
                source,
                hint,
            };
        }
        if ctx.token.is_none() && source.errno() == Errno::EPERM {
            // No token in a user namespace: say that a token is what is missing.
            if let Some(hint) = crate::diagnose::no_token_hint() {
                return LoadError::MapDenied {
                    map: m.name.clone(),
                    source,
                    hint,
                };
            }
        }
        LoadError::Map {
            map: m.name.clone(),
            step: "create",
            source,
        }
    })
}

/// Whether `fd` is a BPF map: `/proc/self/fdinfo` of a map has a `map_type:` line.
fn fd_is_map(fd: BorrowedFd<'_>) -> bool {
    use std::os::fd::AsRawFd;
    std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))
        .map(|s| s.lines().any(|l| l.starts_with("map_type:")))
        .unwrap_or(false)
}

/// `bpf_object__reuse_map`: the pinned map at `path`, if there is one and it is compatible.
fn reuse_pinned(m: &Map, path: &Path) -> Result<Option<OwnedFd>, LoadError> {
    let pin_err = |msg: String| LoadError::Pin {
        map: m.name.clone(),
        path: path.display().to_string(),
        msg,
    };
    let fd = match sysobj::get(path, 0) {
        Ok(fd) => fd,
        Err(e) if e.errno() == Errno::ENOENT => return Ok(None),
        Err(e) => return Err(pin_err(format!("couldn't retrieve pinned map: {e}"))),
    };
    // A pin outside bpffs could have been planted by anyone; a pinned program is not a map.
    if !sysobj::is_bpffs(path).unwrap_or(false) {
        return Err(pin_err("is not on a BPF filesystem".into()));
    }
    if !fd_is_map(fd.as_fd()) {
        return Err(pin_err("is not a map".into()));
    }
    let info = bpfload_syscall::info::map_info(fd.as_fd())
        .map_err(|e| pin_err(format!("failed to get map info: {e}")))?;
    let mut flags = info.map_flags;
    if m.def.map_type == mt::BPF_MAP_TYPE_DEVMAP as u32
        || m.def.map_type == mt::BPF_MAP_TYPE_DEVMAP_HASH as u32
    {
        flags &= !BPF_F_RDONLY_PROG;
    }
    let compat = info.type_ == m.def.map_type
        && info.key_size == m.def.key_size
        && info.value_size == m.def.value_size
        && info.max_entries == m.def.max_entries
        && flags == m.def.map_flags
        && info.map_extra == m.def.map_extra;
    if !compat {
        return Err(pin_err(format!(
            "couldn't reuse pinned map: parameter mismatch (pinned: type {} key {} value {} max_entries {} flags {:#x}; \
             wanted: type {} key {} value {} max_entries {} flags {:#x})",
            info.type_, info.key_size, info.value_size, info.max_entries, flags,
            m.def.map_type, m.def.key_size, m.def.value_size, m.def.max_entries, m.def.map_flags
        )));
    }
    Ok(Some(fd))
}

/// libbpf's `pathname_concat(root, name)` ("%s/%s"): the pin stays under the root whatever the
/// name (`Path::join` would replace the root with a name that starts with '/', and a hostile
/// object could then reuse a map pinned anywhere).
fn pin_path_of(root: &Path, name: &str) -> PathBuf {
    let mut p = root.as_os_str().to_owned();
    p.push("/");
    p.push(name);
    PathBuf::from(p)
}

/// `bpf_map__pin`: the parent directory is created if missing (mode 0700, as libbpf's
/// `make_parent_dir`) and must be on a BPF filesystem (libbpf's `check_path`).
fn pin(m: &Map, fd: BorrowedFd<'_>, path: &Path) -> Result<(), LoadError> {
    use std::os::unix::fs::DirBuilderExt;
    let pin_err = |msg: String| LoadError::Pin {
        map: m.name.clone(),
        path: path.display().to_string(),
        msg,
    };
    if let Some(parent) = path.parent() {
        // Another loader may create it at the same moment: EEXIST is fine (as libbpf's
        // `make_parent_dir`).
        match std::fs::DirBuilder::new().mode(0o700).create(parent) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(pin_err(format!("cannot create {}: {e}", parent.display()))),
        }
        if !sysobj::is_bpffs(parent).unwrap_or(false) {
            return Err(pin_err(format!(
                "{} is not on a BPF filesystem",
                parent.display()
            )));
        }
    }
    sysobj::pin(fd, path).map_err(|source| LoadError::Map {
        map: m.name.clone(),
        step: "pin",
        source,
    })
}

/// `bpf_object__populate_internal_map`: initial value, then freeze `.rodata`.
fn populate_internal(m: &Map, fd: BorrowedFd<'_>) -> Result<(), LoadError> {
    let zeroes;
    let image = match &m.image {
        Some(i) => i.as_slice(),
        None => {
            zeroes = vec![0u8; m.def.value_size as usize];
            &zeroes
        }
    };
    map::update_elem(fd, &0u32.to_ne_bytes(), image, 0).map_err(|source| LoadError::Map {
        map: m.name.clone(),
        step: "set initial value",
        source,
    })?;
    if matches!(m.kind, MapKind::Rodata | MapKind::Kconfig) {
        map::freeze(fd).map_err(|source| LoadError::Map {
            map: m.name.clone(),
            step: "freeze",
            source,
        })?;
    }
    Ok(())
}

/// Creates every map that is to be created, in object order. Index `i` of the result is map `i`
/// of the object (`None` when not created).
// Kept out of the load pipeline's one big function: smaller code there (issue 8).
#[inline(never)]
pub(crate) fn create_all(
    obj: &mut Object,
    features: &Features,
    token: Option<BorrowedFd<'_>>,
    btf: Option<BorrowedFd<'_>>,
    opts: &Loader,
    pins: &mut PinGuard,
) -> Result<Vec<Option<LoadedMap>>, LoadError> {
    let ctx = Ctx {
        features,
        token,
        btf,
    };
    let root = crate::prepare::pin_root(opts);
    let global_data =
        obj.maps.iter().any(|m| m.kind.is_internal()) && features.has(Feature::GlobalData);
    let mmap_ok = obj
        .maps
        .iter()
        .any(|m| m.kind.is_internal() && m.def.map_flags & BPF_F_MMAPABLE != 0)
        && features.has(Feature::ArrayMmap);
    let arena_off = crate::arena::data_offset(obj, features.has(Feature::Ldimm64FullRangeOff));
    let mut out: Vec<Option<LoadedMap>> = Vec::with_capacity(obj.maps.len());
    // For the map-in-map slot errors (the maps are borrowed mutably below).
    let names: Vec<String> = obj.maps.iter().map(|m| m.name.clone()).collect();
    for (i, m) in obj.maps.iter_mut().enumerate() {
        if m.kind.is_internal() {
            // bpf_object__sanitize_maps and the GLOBAL_DATA fallback of bpf_object__create_maps.
            if !mmap_ok {
                m.def.map_flags &= !BPF_F_MMAPABLE;
            }
            if !global_data {
                m.autocreate = false;
            }
        }
        if !m.autocreate {
            out.push(None);
            continue;
        }
        set_def_max_entries(m)?;
        let pin_path = (m.def.pinning == Pinning::ByName).then(|| pin_path_of(&root, &m.name));
        let mut reused = None;
        if let Some(p) = &pin_path {
            reused = reuse_pinned(m, p)?;
        }
        let mut arena = None;
        let (fd, was_reused) = match reused {
            Some(fd) => (fd, true),
            None => {
                let fd = create_one(&ctx, m)?;
                if m.kind.is_internal() {
                    populate_internal(m, fd.as_fd())?;
                } else if crate::arena::is_arena(m) {
                    arena = Some(crate::arena::map_and_init(m, fd.as_fd(), arena_off)?);
                }
                (fd, false)
            }
        };
        // Slots are filled before the map is pinned, as in libbpf: once pinned, another loader
        // may reuse it, and a reused map's slots are never filled. Only maps created before
        // this one (declared earlier) can be targets.
        if !was_reused {
            init_map_in_map_slots(m, i, &names, fd.as_fd(), &out)?;
        }
        let mut fd = fd;
        let mut was_reused = was_reused;
        if let (Some(p), false) = (&pin_path, was_reused) {
            match pin(m, fd.as_fd(), p) {
                Ok(()) => pins.add(p.clone()),
                // Another loader pinned it meanwhile: reuse theirs, once (libbpf's retry).
                Err(LoadError::Map { source, .. }) if source.errno() == Errno::EEXIST => {
                    match reuse_pinned(m, p)? {
                        Some(theirs) => {
                            fd = theirs;
                            was_reused = true;
                        }
                        None => {
                            return Err(LoadError::Pin {
                                map: m.name.clone(),
                                path: p.display().to_string(),
                                msg: "cannot find pinned map".into(),
                            })
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        out.push(Some(LoadedMap {
            name: m.name.clone(),
            real_name: m.real_name.clone(),
            kind: m.kind,
            def: m.def.clone(),
            fd,
            pin: pin_path,
            reused: was_reused,
            arena,
        }));
    }
    Ok(out)
}

/// `init_map_in_map_slots`: static `values` of the ARRAY_OF_MAPS / HASH_OF_MAPS `m` (map `i`,
/// just created as `outer`); `maps` holds the maps created before it, `names` every map's name.
fn init_map_in_map_slots(
    m: &Map,
    i: usize,
    names: &[String],
    outer: BorrowedFd<'_>,
    maps: &[Option<LoadedMap>],
) -> Result<(), LoadError> {
    if m.init_slots.is_empty() || m.def.map_type == mt::BPF_MAP_TYPE_PROG_ARRAY as u32 {
        return Ok(());
    }
    {
        for (slot, target) in m.init_slots.iter().enumerate() {
            let Some(Slot::Map(t)) = target else { continue };
            let slot_err = |msg: String, errno| LoadError::Slot {
                map: m.name.clone(),
                slot,
                target: names.get(*t).cloned().unwrap_or_default(),
                msg,
                errno,
            };
            // libbpf passes the fd of a map it did not create, or not yet (declared after the
            // outer map): the kernel refuses it (EBADF).
            let inner = maps.get(*t).and_then(Option::as_ref).ok_or_else(|| {
                let why = if *t > i {
                    "it is declared after the outer map, which is filled when created"
                } else {
                    "the map was not created"
                };
                slot_err(why.into(), Errno::EBADF)
            })?;
            let val = (std::os::fd::AsRawFd::as_raw_fd(&inner.fd) as u32).to_ne_bytes();
            map::update_elem(outer, &(slot as u32).to_ne_bytes(), &val, 0)
                .map_err(|e| slot_err(e.to_string(), e.errno()))?;
        }
    }
    Ok(())
}

/// `bpf_object_init_prog_arrays`: static `values` of PROG_ARRAY maps, after programs loaded.
/// A slot whose program did not load (autoload off) fails with EBADF, as in libbpf, which
/// passes `bpf_program__fd()` (-ENOENT) of the unloaded program to the kernel. In keep-going
/// mode the slots of programs that failed to load are skipped: their failure is reported.
// Kept out of the load pipeline's one big function: smaller code there (issue 8).
#[inline(never)]
pub(crate) fn init_prog_arrays(
    obj: &Object,
    maps: &[Option<LoadedMap>],
    programs: &[LoadedProgram],
    keep_going: bool,
) -> Result<(), LoadError> {
    // (Index values: the `&str`-keyed map type used elsewhere, one instantiation; issue 8.)
    let by_name: std::collections::HashMap<&str, usize> = programs
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.as_str(), i))
        .collect();
    for (i, m) in obj.maps.iter().enumerate() {
        if m.init_slots.is_empty() || m.def.map_type != mt::BPF_MAP_TYPE_PROG_ARRAY as u32 {
            continue;
        }
        let Some(pa) = &maps[i] else { continue };
        for (slot, target) in m.init_slots.iter().enumerate() {
            let Some(Slot::Program(t)) = target else {
                continue;
            };
            let name = &obj.programs[*t].name;
            let slot_err = |msg: String, errno| LoadError::Slot {
                map: m.name.clone(),
                slot,
                target: name.clone(),
                msg,
                errno,
            };
            let fd = match by_name.get(name.as_str()).map(|&p| programs[p].result()) {
                Some(Ok(fd)) => fd,
                // Its own failure is already reported in keep-going mode.
                Some(Err(_)) if keep_going => continue,
                Some(Err(e)) => {
                    return Err(slot_err(format!("program failed to load: {e}"), e.errno()))
                }
                None => {
                    return Err(slot_err(
                        "program is not loaded (autoload is off)".into(),
                        Errno::EBADF,
                    ))
                }
            };
            let val = (std::os::fd::AsRawFd::as_raw_fd(&fd) as u32).to_ne_bytes();
            map::update_elem(pa.fd.as_fd(), &(slot as u32).to_ne_bytes(), &val, 0)
                .map_err(|e| slot_err(e.to_string(), e.errno()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// A map name cannot move its pin out of the pin root (found by review: `Path::join` with a
    /// name starting with '/' gave that name alone, so a hostile object could reuse any
    /// compatible map pinned anywhere). libbpf concatenates "%s/%s".
    #[test]
    fn pins_stay_under_the_root() {
        let root = Path::new("/sys/fs/bpf/app");
        for name in ["counts", "/etc/x", "/sys/fs/bpf/other"] {
            let p = super::pin_path_of(root, name);
            assert!(p.starts_with(root), "{name}: {}", p.display());
            assert_eq!(p.as_os_str(), format!("/sys/fs/bpf/app/{name}").as_str());
        }
    }
}
