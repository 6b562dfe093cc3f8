//! What C libbpf (1.7, through libbpf-rs / libbpf-sys) does with an object, program by program.
//!
//! Each program is loaded alone, with only that program set to autoload, as the corpus README
//! recorded libbpf's results. The object is prepared first (`bpf_object__prepare`: relocations,
//! CO-RE, BTF, maps; the instructions are final after it), the instructions are captured while the
//! maps still exist, so every map fd can be resolved to the kernel's name of the map, and then the
//! program is loaded (`bpf_object__load`) and its result recorded.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::Mutex;

use libbpf_rs::{AsRawLibbpf, OpenObject, PrintLevel};

use crate::insn::{self, INSN_SIZE};
use crate::kernel;

/// A failed step: errno (positive; libbpf's own codes are >= 4000) and libbpf's last warnings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub errno: i32,
    pub message: String,
}

/// One program of an object, loaded alone.
#[derive(Debug, Clone)]
pub struct ProgDump {
    pub name: String,
    pub section: String,
    pub prog_type: u32,
    pub expected_attach_type: u32,
    /// autoload as the object declares it (`SEC("?...")` is off).
    pub autoload: bool,
    /// Where the load stopped: `Ok` when the kernel accepted the program.
    pub result: Result<(), Failure>,
    /// False when libbpf failed before its instructions were final (prepare failed).
    pub insns_final: bool,
    /// Raw `struct bpf_insn` bytes as passed to BPF_PROG_LOAD.
    pub insns: Vec<u8>,
    /// fd -> identity of the map it referred to (kernel name, else libbpf's name cut to 15 bytes).
    pub map_names: BTreeMap<i32, String>,
}

/// An object as libbpf sees it.
#[derive(Debug, Clone)]
pub struct ObjectDump {
    pub path: String,
    /// `Err` when `bpf_object__open_file` refused the object; then `programs` is empty.
    pub open: Result<(), Failure>,
    pub programs: Vec<ProgDump>,
}

static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn collect_log(level: PrintLevel, msg: String) {
    if matches!(level, PrintLevel::Warn) {
        if let Ok(mut log) = LOG.lock() {
            log.push(msg.trim_end().to_string());
        }
    }
}

/// Routes libbpf's warnings into a buffer (instead of stderr) so failures carry libbpf's message.
pub fn capture_libbpf_log() {
    libbpf_rs::set_print(Some((PrintLevel::Warn, collect_log)));
}

fn take_log() -> Vec<String> {
    LOG.lock()
        .map(|mut l| std::mem::take(&mut *l))
        .unwrap_or_default()
}

fn failure(err: i32) -> Failure {
    let log = take_log();
    // The useful lines are the last ones before libbpf's summary; keep a bounded tail.
    let tail: Vec<_> = log.iter().rev().take(12).rev().cloned().collect();
    Failure {
        errno: err.unsigned_abs() as i32,
        message: tail.join("\n"),
    }
}

/// Opens `path` with libbpf; errno comes straight from libbpf (libbpf-rs hides it inside its error).
pub fn open(path: &Path) -> Result<OpenObject, Failure> {
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| Failure {
        errno: libc::EINVAL,
        message: "path contains NUL".into(),
    })?;
    take_log();
    // SAFETY: c_path is a valid NUL-terminated string; NULL opts means defaults.
    let ptr = unsafe { libbpf_sys::bpf_object__open_file(c_path.as_ptr(), std::ptr::null()) };
    // SAFETY: libbpf_get_error accepts any pointer returned by a libbpf constructor.
    let err = unsafe { libbpf_sys::libbpf_get_error(ptr as *const _) };
    match NonNull::new(ptr) {
        // SAFETY: a non-NULL, error-free pointer from bpf_object__open_file is an open object
        // that OpenObject now owns (and closes on drop).
        Some(ptr) if err == 0 => Ok(unsafe { OpenObject::from_ptr(ptr) }),
        _ => Err(failure(if err == 0 { -libc::EINVAL } else { err as i32 })),
    }
}

fn os(s: &std::ffi::OsStr) -> String {
    s.to_string_lossy().into_owned()
}

/// fd -> libbpf map name (cut to the kernel's 15 bytes) for every map of the object. libbpf
/// creates a placeholder fd per map at open and later dup3()s the real map onto it, so these fd
/// numbers are the ones relocated into the instructions.
fn placeholder_names(obj: &OpenObject) -> BTreeMap<i32, String> {
    let raw = obj.as_libbpf_object();
    let mut out = BTreeMap::new();
    let mut map: *mut libbpf_sys::bpf_map = std::ptr::null_mut();
    loop {
        // SAFETY: raw is the live object owned by obj; map is NULL or a map of that object.
        map = unsafe { libbpf_sys::bpf_object__next_map(raw.as_ptr(), map) };
        if map.is_null() {
            break;
        }
        // SAFETY: map is a live map of the object; the name is a NUL-terminated string it owns.
        let (fd, name) = unsafe {
            (
                libbpf_sys::bpf_map__fd(map),
                CStr::from_ptr(libbpf_sys::bpf_map__name(map)),
            )
        };
        let name = name.to_bytes();
        let name =
            String::from_utf8_lossy(&name[..name.len().min(kernel::OBJ_NAME_MAX)]).into_owned();
        if fd >= 0 {
            out.insert(fd, name);
        }
    }
    out
}

fn insns_of(obj: &OpenObject, name: &str) -> Vec<u8> {
    obj.progs()
        .find(|p| p.name().as_bytes() == name.as_bytes())
        .map(|p| {
            let insns = p.insns();
            let mut out = Vec::with_capacity(insns.len() * INSN_SIZE);
            for i in insns {
                out.push(i.code);
                out.push(i.dst_reg() | (i.src_reg() << 4));
                out.extend_from_slice(&i.off.to_le_bytes());
                out.extend_from_slice(&i.imm.to_le_bytes());
            }
            out
        })
        .unwrap_or_default()
}

/// Which programs autoload.
#[derive(Clone, Copy, Debug)]
pub enum Autoload<'a> {
    /// Only this program (each program alone, as the corpus README recorded libbpf's results).
    Only(&'a str),
    /// The object's own autoload flags (a whole-object load).
    Default,
}

/// Loads `path` with libbpf and records, for every program that autoloads, its final
/// instructions and result. In a whole-object load libbpf stops at the first failing program, so
/// there a program's result is `Ok` when it got an fd, and otherwise the object's error.
pub fn dump_with(path: &Path, mode: Autoload<'_>) -> Result<Vec<ProgDump>, Failure> {
    let mut obj = open(path)?;
    let mut selected = Vec::new();
    for mut p in obj.progs_mut() {
        let on = match mode {
            Autoload::Only(t) => p.name().as_bytes() == t.as_bytes(),
            Autoload::Default => p.autoload(),
        };
        if on {
            selected.push(ProgDump {
                name: os(p.name()),
                section: os(p.section()),
                prog_type: p.prog_type() as u32,
                // SAFETY: the program pointer is live while obj is.
                expected_attach_type: unsafe {
                    libbpf_sys::bpf_program__expected_attach_type(p.as_libbpf_object().as_ptr())
                },
                autoload: p.autoload(),
                result: Ok(()),
                insns_final: false,
                insns: Vec::new(),
                map_names: BTreeMap::new(),
            });
        }
        p.set_autoload(on);
    }
    if let (Autoload::Only(t), true) = (mode, selected.is_empty()) {
        return Err(Failure {
            errno: libc::ENOENT,
            message: format!("no program {t:?}"),
        });
    }
    let placeholders = placeholder_names(&obj);
    let raw = obj.as_libbpf_object();
    take_log();
    // SAFETY: raw is the live, not yet prepared object owned by obj.
    let err = unsafe { libbpf_sys::bpf_object__prepare(raw.as_ptr()) };
    for d in &mut selected {
        d.insns_final = err == 0;
        d.insns = insns_of(&obj, &d.name);
        let fds = insn::decode(&d.insns)
            .map(|i| insn::map_fd_refs(&i))
            .unwrap_or_default();
        for fd in fds.into_values() {
            // While prepared, the maps exist: prefer the kernel's own name for the map.
            let name = if err == 0 { kernel::map_name(fd) } else { None };
            if let Some(name) = name.or_else(|| placeholders.get(&fd).cloned()) {
                d.map_names.insert(fd, name);
            }
        }
    }
    if err != 0 {
        let f = failure(err);
        for d in &mut selected {
            d.result = Err(f.clone());
        }
        return Ok(selected);
    }
    // SAFETY: raw is the live, prepared object owned by obj.
    let err = unsafe { libbpf_sys::bpf_object__load(raw.as_ptr()) };
    let f = (err != 0).then(|| failure(err));
    for d in &mut selected {
        match &f {
            // libbpf keeps the loaded instructions; they are the ones captured after prepare.
            None => d.insns = insns_of(&obj, &d.name),
            // After a failed load libbpf has closed every fd; whether a program had loaded before
            // the failing one cannot be told any more, so each carries the object's error.
            Some(f) => d.result = Err(f.clone()),
        }
    }
    Ok(selected)
}

fn dump_one(path: &Path, target: &str) -> Result<ProgDump, Failure> {
    let mut v = dump_with(path, Autoload::Only(target))?;
    v.pop().ok_or_else(|| Failure {
        errno: libc::ENOENT,
        message: format!("no program {target:?}"),
    })
}

/// Program names of an object in libbpf's order, or libbpf's open failure.
pub fn program_names(path: &Path) -> Result<Vec<String>, Failure> {
    let obj = open(path)?;
    Ok(obj.progs().map(|p| os(p.name())).collect())
}

/// Loads each program of `path` (or only `only`, when given) alone with libbpf.
pub fn dump_object(path: &Path, only: &[String]) -> ObjectDump {
    let mut out = ObjectDump {
        path: path.display().to_string(),
        open: Ok(()),
        programs: Vec::new(),
    };
    let names = match program_names(path) {
        Ok(n) => n,
        Err(f) => {
            out.open = Err(f);
            return out;
        }
    };
    for name in names.iter().filter(|n| only.is_empty() || only.contains(n)) {
        match dump_one(path, name) {
            Ok(d) => out.programs.push(d),
            // Opening succeeded a moment ago; a failure now is recorded on the object.
            Err(f) => out.open = Err(f),
        }
    }
    out
}

fn failure_json(f: &Failure) -> serde_json::Value {
    serde_json::json!({ "errno": f.errno, "error": kernel::errno_name(f.errno), "message": f.message })
}

impl ObjectDump {
    /// Summary as written by `libbpf-dump`: per program ok / errno, and the map behind each fd.
    pub fn to_json(&self) -> serde_json::Value {
        let progs: Vec<_> = self
            .programs
            .iter()
            .map(|p| {
                let refs: Vec<_> = insn::decode(&p.insns)
                    .map(|i| insn::map_fd_refs(&i))
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(idx, fd)| {
                        serde_json::json!({ "insn": idx, "fd": fd, "map": p.map_names.get(&fd) })
                    })
                    .collect();
                serde_json::json!({
                    "name": p.name,
                    "section": p.section,
                    "prog_type": p.prog_type,
                    "expected_attach_type": p.expected_attach_type,
                    "autoload": p.autoload,
                    "result": match &p.result { Ok(()) => serde_json::json!("ok"), Err(f) => failure_json(f) },
                    "insns_final": p.insns_final,
                    "insn_cnt": p.insns.len() / INSN_SIZE,
                    "map_refs": refs,
                })
            })
            .collect();
        serde_json::json!({
            "object": self.path,
            "libbpf": "1.7 (libbpf-sys vendored)",
            "open": match &self.open { Ok(()) => serde_json::json!("ok"), Err(f) => failure_json(f) },
            "programs": progs,
        })
    }
}

/// A program as libbpf's open reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenProg {
    pub name: String,
    pub section: String,
    pub prog_type: u32,
    pub expected_attach_type: u32,
    pub autoload: bool,
    pub insn_cnt: usize,
}

/// A map as libbpf's open reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenMapInfo {
    pub name: String,
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    pub autocreate: bool,
}

/// Programs and maps of `path` after `bpf_object__open_file`, in libbpf's order.
pub fn open_summary(path: &Path) -> Result<(Vec<OpenProg>, Vec<OpenMapInfo>), Failure> {
    let obj = open(path)?;
    let progs = obj
        .progs()
        .map(|p| OpenProg {
            name: os(p.name()),
            section: os(p.section()),
            prog_type: p.prog_type() as u32,
            // SAFETY: the program pointer is live while obj is.
            expected_attach_type: unsafe {
                libbpf_sys::bpf_program__expected_attach_type(p.as_libbpf_object().as_ptr())
            },
            autoload: p.autoload(),
            insn_cnt: p.insn_cnt(),
        })
        .collect();
    let maps = obj
        .maps()
        .map(|m| OpenMapInfo {
            name: os(m.name()),
            map_type: u32::from(m.map_type()),
            key_size: m.key_size(),
            value_size: m.value_size(),
            max_entries: m.max_entries(),
            map_flags: m.map_flags(),
            autocreate: m.autocreate(),
        })
        .collect();
    Ok((progs, maps))
}
