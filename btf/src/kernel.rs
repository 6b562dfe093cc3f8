//! The running kernel's BTF: `/sys/kernel/btf/vmlinux` memory-mapped and parsed once per process,
//! module BTF as split BTF on it (lazily, per module), and user-given BTF files that replace the
//! kernel's for CO-RE (libbpf's `btf_custom_path`).

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;

use crate::data::BtfData;
use crate::error::BtfError;
use crate::mmap::Mmap;

/// Where the kernel publishes its BTF.
pub const SYSFS_BTF_DIR: &str = "/sys/kernel/btf";
/// The vmlinux BTF file.
pub const VMLINUX_PATH: &str = "/sys/kernel/btf/vmlinux";

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BtfError + '_ {
    move |source| BtfError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads a BTF file's bytes: memory-mapped when `try_mmap` and the kernel allows it, else read.
///
/// Only kernel sysfs files should be mapped: MAP_PRIVATE of an ordinary file that someone
/// truncates while we use it would fault (libbpf makes the same choice).
pub fn read_btf_bytes(path: &Path, try_mmap: bool) -> Result<Bytes, BtfError> {
    let mut file = File::open(path).map_err(io_err(path))?;
    let len = file.metadata().map_err(io_err(path))?.len();
    if try_mmap {
        if let Ok(len) = usize::try_from(len) {
            if let Some(map) = Mmap::map(&file, len) {
                return Ok(Bytes::from_owner(map));
            }
        }
    }
    // sysfs may report a size of 0 or 4096 for files it generates, so read to the end.
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0).min(1 << 30));
    file.read_to_end(&mut buf).map_err(io_err(path))?;
    Ok(Bytes::from(buf))
}

/// Maps and parses `/sys/kernel/btf/vmlinux`, recording the keys of its named non-FUNC types in the
/// same pass ([`BtfData::parse_indexed`]), without caching (use [`vmlinux`] normally).
pub fn load_vmlinux_uncached() -> Result<BtfData, BtfError> {
    BtfData::parse_indexed(read_btf_bytes(Path::new(VMLINUX_PATH), true)?)
}

static VMLINUX: OnceLock<Arc<BtfData>> = OnceLock::new();
static VMLINUX_INIT: Mutex<()> = Mutex::new(());

/// The running kernel's BTF, parsed once per process and shared.
///
/// Concurrent first callers wait for a single parse; an error is not cached, so a later call
/// retries. Later calls cost one atomic load and an `Arc` clone.
pub fn vmlinux() -> Result<Arc<BtfData>, BtfError> {
    if let Some(v) = VMLINUX.get() {
        return Ok(Arc::clone(v));
    }
    let _guard = VMLINUX_INIT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(v) = VMLINUX.get() {
        return Ok(Arc::clone(v));
    }
    let v = Arc::new(load_vmlinux_uncached()?);
    Ok(Arc::clone(VMLINUX.get_or_init(|| v)))
}

/// One kernel module's BTF, split on vmlinux.
#[derive(Debug)]
pub struct ModuleBtf {
    /// Module name (the file name under `/sys/kernel/btf`).
    pub name: String,
    pub data: BtfData,
}

/// Module BTFs by path, each with the identity of the sysfs file it was read from.
type ModuleCache = Mutex<HashMap<String, (FileId, Option<Arc<ModuleBtf>>)>>;
static MODULES: OnceLock<ModuleCache> = OnceLock::new();

/// Which `/sys/kernel/btf/<module>` a cached BTF came from: a module that is unloaded and loaded
/// again (a rebuilt one, after a DKMS upgrade) gets a new sysfs file, with a new inode. `None`:
/// the file did not exist.
type FileId = Option<(u64, u64, u64)>;

fn file_id(path: &Path) -> FileId {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino(), m.size()))
}

fn load_module(name: &str, path: &Path) -> Result<Option<ModuleBtf>, BtfError> {
    if !path.exists() {
        return Ok(None);
    }
    let base = vmlinux()?;
    // Read, never mapped: a module's sysfs file goes away when the module is unloaded, and
    // pages of a mapping of it would then fault (SIGBUS) under a load that still holds it.
    // (libbpf never maps module BTF either; it is small.)
    let bytes = read_btf_bytes(path, false)?;
    let data = BtfData::parse_split(bytes, base)?;
    Ok(Some(ModuleBtf {
        name: name.to_owned(),
        data,
    }))
}

/// BTF of kernel module `name` (`/sys/kernel/btf/<name>`), parsed as split BTF on vmlinux on
/// first use and cached. `Ok(None)` if the module has no BTF. The cache is checked against the
/// sysfs file (one `stat`): a module loaded again since is read again, where a process-wide
/// cache would keep serving the old build's types (libbpf reads module BTF for every object).
pub fn module(name: &str) -> Result<Option<Arc<ModuleBtf>>, BtfError> {
    module_in(Path::new(SYSFS_BTF_DIR), name)
}

/// [`module`] for the BTF files of directory `dir` (tests use another directory).
fn module_in(dir: &Path, name: &str) -> Result<Option<Arc<ModuleBtf>>, BtfError> {
    if name.is_empty() || name.contains('/') || name == "vmlinux" || name.starts_with('.') {
        return Ok(None);
    }
    let path = dir.join(name);
    let key = path.to_string_lossy().into_owned();
    let id = file_id(&path);
    let cache = MODULES.get_or_init(Default::default);
    let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((cached_id, m)) = map.get(&key) {
        if *cached_id == id {
            return Ok(m.clone());
        }
    }
    let m = load_module(name, &path)?.map(Arc::new);
    map.insert(key, (id, m.clone()));
    Ok(m)
}

/// Every module BTF the kernel publishes now (in directory order sorted by name), each from the
/// cache of [`module`] (so read again only if its module was loaded again). Modules whose BTF
/// fails to parse are skipped with a debug log, like libbpf's `load_module_btfs`. The directory
/// is listed on every call, so a module loaded since the last call is found.
pub fn modules() -> Result<Arc<Vec<Arc<ModuleBtf>>>, BtfError> {
    let dir = Path::new(SYSFS_BTF_DIR);
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(io_err(dir))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n != "vmlinux")
        .collect();
    // Through the crate's shared index sort (no string sort instance of its own).
    crate::sort::sort_copied(&mut names);
    let mut out = Vec::new();
    for name in names {
        match module(&name) {
            Ok(Some(m)) => out.push(m),
            Ok(None) => {}
            Err(e) => log::debug!("skipping BTF of module '{name}': {e}"),
        }
    }
    Ok(Arc::new(out))
}

/// Reads a user-given BTF file that replaces the kernel's for CO-RE (libbpf's
/// `btf_custom_path`). Like libbpf's `btf__parse`, the file may be raw BTF or an ELF file with a
/// `.BTF` section (a vmlinux image). Read, not mapped (see [`read_btf_bytes`]), and not cached:
/// the file may change between loads.
pub fn custom(path: impl Into<PathBuf>) -> Result<Arc<BtfData>, BtfError> {
    let path = path.into();
    let bytes = read_btf_bytes(&path, false)?;
    let in_file = |source: BtfError| BtfError::InFile {
        path: path.clone(),
        source: Box::new(source),
    };
    let bytes = if bytes.starts_with(b"\x7fELF") {
        let range = elf_section(&bytes, ".BTF").map_err(|reason| BtfError::BadHeader {
            reason: format!("{}: {reason}", path.display()),
        })?;
        bytes.slice(range)
    } else {
        bytes
    };
    BtfData::parse(bytes).map(Arc::new).map_err(in_file)
}

/// Byte range of the named section of a 64-bit ELF file (either byte order), bounds-checked.
fn elf_section(data: &[u8], name: &str) -> Result<std::ops::Range<usize>, String> {
    use crate::raw::Endian;
    if data.len() < 64 {
        return Err("ELF header truncated".into());
    }
    if data[4] != 2 {
        return Err("only 64-bit ELF files are supported for custom BTF".into());
    }
    let e = match data[5] {
        1 => Endian::Little,
        2 => Endian::Big,
        d => return Err(format!("bad ELF data encoding {d}")),
    };
    let u64_at = |off: usize| -> Option<u64> {
        let hi_lo = (e.u32_at(data, off)?, e.u32_at(data, off + 4)?);
        Some(match e {
            Endian::Little => (hi_lo.1 as u64) << 32 | hi_lo.0 as u64,
            Endian::Big => (hi_lo.0 as u64) << 32 | hi_lo.1 as u64,
        })
    };
    let trunc = || "ELF section headers out of bounds".to_string();
    let shoff = usize::try_from(u64_at(0x28).ok_or_else(trunc)?).map_err(|_| trunc())?;
    let shentsize = e.u16_at(data, 0x3a).ok_or_else(trunc)? as usize;
    let shnum = e.u16_at(data, 0x3c).ok_or_else(trunc)? as usize;
    let shstrndx = e.u16_at(data, 0x3e).ok_or_else(trunc)? as usize;
    if shentsize < 64
        || shnum
            .checked_mul(shentsize)
            .and_then(|n| n.checked_add(shoff))
            .is_none_or(|end| end > data.len())
    {
        return Err(trunc());
    }
    // (name offset, file offset, size) of section `i`.
    let sh = |i: usize| -> Option<(u32, u64, u64)> {
        let base = shoff + i * shentsize;
        Some((
            e.u32_at(data, base)?,
            u64_at(base + 0x18)?,
            u64_at(base + 0x20)?,
        ))
    };
    let range = |off: u64, size: u64| -> Option<std::ops::Range<usize>> {
        let start = usize::try_from(off).ok()?;
        let end = start.checked_add(usize::try_from(size).ok()?)?;
        (end <= data.len()).then_some(start..end)
    };
    let (_, str_off, str_size) = sh(shstrndx).ok_or_else(trunc)?;
    let strtab = range(str_off, str_size).ok_or("section name table out of bounds")?;
    let strtab = &data[strtab];
    for i in 0..shnum {
        let (name_off, off, size) = sh(i).ok_or_else(trunc)?;
        let Some(tail) = strtab.get(name_off as usize..) else {
            continue;
        };
        let n = tail
            .iter()
            .position(|&b| b == 0)
            .map_or(tail, |end| &tail[..end]);
        if n == name.as_bytes() {
            return range(off, size).ok_or_else(|| format!("section {name} out of bounds"));
        }
    }
    Err(format!("no {name} section"))
}

/// Which BTF CO-RE relocates against.
#[derive(Debug, Clone, Default)]
pub enum TargetBtf {
    /// The running kernel's vmlinux (then its modules).
    #[default]
    Kernel,
    /// A user-given raw BTF file instead of the kernel's.
    Custom(PathBuf),
}

impl TargetBtf {
    /// Loads (or fetches the cached) target base BTF.
    pub fn load(&self) -> Result<Arc<BtfData>, BtfError> {
        match self {
            TargetBtf::Kernel => vmlinux(),
            TargetBtf::Custom(p) => custom(p.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Split BTF on vmlinux holding `n` anonymous 4-byte INTs (no strings of its own).
    fn split_ints(n: u32) -> Vec<u8> {
        let mut b = Vec::new();
        let type_len = 16 * n;
        for w in [0xeb9f_u16 as u32 | 1 << 16, 24, 0, type_len, type_len, 0] {
            b.extend_from_slice(&w.to_ne_bytes());
        }
        for _ in 0..n {
            for w in [0u32, 1 << 24, 4, 32] {
                b.extend_from_slice(&w.to_ne_bytes());
            }
        }
        b
    }

    /// A module's BTF is cached until its file changes: unloading and loading a module again
    /// makes a new sysfs file, whose BTF is read again (found by review: the first build's BTF
    /// was served for the rest of the process). Here a file replaced by rename plays that part.
    #[test]
    fn a_module_loaded_again_is_read_again() {
        let Ok(base) = vmlinux() else {
            eprintln!("SKIP a_module_loaded_again_is_read_again: no kernel BTF");
            return;
        };
        let dir = std::env::temp_dir().join(format!("bpfload-modbtf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("m"), split_ints(1)).unwrap();
        let first = module_in(&dir, "m").unwrap().expect("module BTF");
        assert_eq!(first.data.btf().len(), base.btf().len() + 1);
        // Unchanged file: the cached parse.
        assert!(Arc::ptr_eq(&first, &module_in(&dir, "m").unwrap().unwrap()));
        // The module is loaded again: a new file (new inode) with other types.
        std::fs::write(dir.join("m.new"), split_ints(2)).unwrap();
        std::fs::rename(dir.join("m.new"), dir.join("m")).unwrap();
        let second = module_in(&dir, "m").unwrap().unwrap();
        assert_eq!(second.data.btf().len(), base.btf().len() + 2);
        // Unloaded: no BTF any more.
        std::fs::remove_file(dir.join("m")).unwrap();
        assert!(module_in(&dir, "m").unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
