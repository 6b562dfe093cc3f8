//! Errors of the open and load pipelines. Each variant carries the object, program or map it is about.

use std::io;

use bpfload_syscall::{log_tail, Errno, ProgLoadError, SysError};

use crate::token::TokenError;

/// Errors from [`Object::open_file`](crate::Object::open_file) / [`Object::open_bytes`](crate::Object::open_bytes).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The file could not be read.
    #[error("cannot read '{path}': {source}")]
    Io {
        /// The path given.
        path: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The ELF container is malformed or not a BPF relocatable object.
    #[error("invalid ELF: {0}")]
    Format(String),
    /// A section is malformed (program, map, data or relocation section).
    #[error("section '{section}': {msg}")]
    Section {
        /// Section name.
        section: String,
        /// What is wrong.
        msg: String,
    },
    /// A program-level problem (bad symbol, bad relocation).
    #[error("program '{program}': {msg}")]
    Program {
        /// Program name.
        program: String,
        /// What is wrong.
        msg: String,
    },
    /// A map definition could not be parsed.
    #[error("map '{map}': {msg}")]
    Map {
        /// Map name.
        map: String,
        /// What is wrong.
        msg: String,
    },
    /// The object's BTF could not be parsed, though the object needs it.
    #[error("BTF: {0}")]
    Btf(String),
}

/// Why one program did not load.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProgramError {
    /// The section name is not in libbpf's SEC() table, so the program has no type.
    #[error("missing BPF prog type, check ELF section name '{section}'")]
    UnknownSection {
        /// The section name.
        section: String,
    },
    /// The program needs something this loader does not do yet.
    #[error("needs {0}, which this loader does not support yet")]
    Unsupported(String),
    /// Relocation (calls, CO-RE) failed.
    #[error("relocation failed: {0}")]
    Reloc(String),
    /// The BTF attach target (fentry/fexit/fmod_ret/lsm/tp_btf/iter/freplace) was not found.
    #[error(transparent)]
    Attach(#[from] crate::attach::AttachError),
    /// The program loaded, but the object's load then failed (keep-going mode only): libbpf
    /// fails the whole object there and unloads every program, so the program's fd is closed
    /// and this failure is reported on each program, keeping their instructions inspectable.
    #[error("the object's load failed after this program loaded: {msg}")]
    Object {
        /// The object-level failure.
        msg: String,
        /// Its errno.
        errno: Errno,
    },
    /// The kernel refused the program.
    #[error("{source}{}", hint.as_ref().map(|h| format!("; {h}")).unwrap_or_default())]
    Kernel {
        /// The kernel's answer with the verifier log.
        #[source]
        source: ProgLoadError,
        /// With a token and EPERM: which delegation was missing.
        hint: Option<String>,
    },
}

impl ProgramError {
    /// The errno libbpf reports for this failure.
    pub fn errno(&self) -> Errno {
        match self {
            ProgramError::UnknownSection { .. } => Errno::EINVAL,
            ProgramError::Unsupported(_) => Errno::EOPNOTSUPP,
            ProgramError::Reloc(_) => Errno::EINVAL,
            ProgramError::Attach(crate::attach::AttachError::NotFound { .. }) => Errno::ESRCH,
            ProgramError::Attach(_) => Errno::EINVAL,
            ProgramError::Object { errno, .. } => *errno,
            ProgramError::Kernel { source, .. } => source.errno(),
        }
    }

    /// The verifier log (empty when the kernel was not asked).
    pub fn log(&self) -> &str {
        match self {
            ProgramError::Kernel { source, .. } => source.log(),
            _ => "",
        }
    }

    /// The last `n` lines of the verifier log.
    pub fn log_tail(&self, n: usize) -> String {
        log_tail(self.log(), n)
    }
}

/// Errors from [`Loader::load`](crate::Loader::load). Each names the step and the map or program.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Opening the object failed (for [`Loader::load_file`](crate::Loader::load_file)).
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Only objects in the host byte order can be loaded.
    #[error("object '{object}' is {endian}; only {native} objects can be loaded on this machine")]
    Endianness {
        /// The object name.
        object: String,
        /// Its byte order.
        endian: &'static str,
        /// The host byte order.
        native: &'static str,
    },
    /// An option names a program, map or variable the object does not have, or has a bad value.
    #[error("option {option}: {msg}")]
    Option {
        /// The option.
        option: &'static str,
        /// What is wrong.
        msg: String,
    },
    /// An explicit token request failed.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The object needs something this loader does not support yet.
    #[error("object '{object}' needs {what}, which this loader does not support yet")]
    Unsupported {
        /// The object name.
        object: String,
        /// The missing capability.
        what: String,
    },
    /// An extern (kconfig, ksym, kfunc) could not be classified or resolved.
    #[error("object '{object}': {source}")]
    Extern {
        /// Object name.
        object: String,
        /// What went wrong, naming the extern.
        #[source]
        source: crate::externs::ExternError,
    },
    /// A struct_ops map could not be matched with the kernel's type.
    #[error("object '{object}': {source}")]
    StructOps {
        /// Object name.
        object: String,
        /// What went wrong, naming the map.
        #[source]
        source: crate::struct_ops::StructOpsError,
    },
    /// The object's BTF could not be prepared (fix-up, sanitization, encoding).
    #[error("object '{object}': preparing BTF failed: {msg}")]
    Btf {
        /// The object name.
        object: String,
        /// What failed.
        msg: String,
    },
    /// The object has struct_ops, which need its BTF in the kernel (libbpf's
    /// `kernel_needs_btf`), and the kernel lacks BTF support or refused the object's BTF.
    #[error("object '{object}': BTF is mandatory for struct_ops, can't proceed: {reason}")]
    BtfMandatory {
        /// The object name.
        object: String,
        /// EOPNOTSUPP (no BTF support) or BPF_BTF_LOAD's errno.
        errno: Errno,
        /// What failed (with the verifier's BTF log tail when there is one).
        reason: String,
    },
    /// The token does not delegate what the object needs, and the kernel has no privilege to
    /// fall back to: the load stops before any syscall.
    #[error(transparent)]
    Delegation(#[from] crate::diagnose::MissingDelegation),
    /// Creating a map with a token was refused with EPERM; says which delegation was missing.
    #[error("map '{map}': create failed: {source}; {hint}")]
    MapDenied {
        /// The map name.
        map: String,
        /// The kernel's answer.
        #[source]
        source: SysError,
        /// Which delegation was missing.
        hint: String,
    },
    /// A map step failed.
    #[error("map '{map}': {step} failed: {source}")]
    Map {
        /// The map name.
        map: String,
        /// The step ("create", "pin", "set initial value", "freeze", ...).
        step: &'static str,
        /// The kernel's answer.
        #[source]
        source: SysError,
    },
    /// Reusing or creating a pin failed.
    #[error("map '{map}': pin '{path}': {msg}")]
    Pin {
        /// The map name.
        map: String,
        /// The pin path.
        path: String,
        /// What is wrong.
        msg: String,
    },
    /// A program failed to load (fail-fast mode).
    #[error("program '{program}' ({prog_type}): {source}{}", tail_suffix(source))]
    Program {
        /// The program name.
        program: String,
        /// The program type name.
        prog_type: &'static str,
        /// Why (boxed: it carries the verifier log).
        #[source]
        source: Box<ProgramError>,
    },
    /// Filling a `values` slot of a prog array or map-in-map failed.
    #[error("map '{map}': initializing slot [{slot}] to '{target}' failed: {msg}")]
    Slot {
        /// The map.
        map: String,
        /// The slot index.
        slot: usize,
        /// The program or map in the slot.
        target: String,
        /// Why.
        msg: String,
        /// The errno libbpf reports (EBADF for a slot whose program or map was not created).
        errno: Errno,
    },
}

/// A failed load and what happened to its token (from [`Loader::load_reporting`]).
///
/// [`Loader::load_reporting`]: crate::Loader::load_reporting
#[derive(Debug)]
pub struct LoadFailure {
    /// Why the load failed.
    pub error: LoadError,
    /// The token report: `None` only when the load failed before the token step (bad options,
    /// byte order); for a failed explicit token, that token error's report.
    /// (Boxed: keeps the error small.)
    pub token: Option<Box<crate::token::TokenReport>>,
}

/// Displays as its [`LoadError`] (the token report is data, not part of the message).
impl std::fmt::Display for LoadFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for LoadFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.error)
    }
}

impl From<LoadFailure> for LoadError {
    fn from(f: LoadFailure) -> Self {
        f.error
    }
}

impl LoadError {
    /// The errno libbpf reports for this failure (`EINVAL` for this loader's own checks).
    pub fn errno(&self) -> Errno {
        match self {
            LoadError::Open(OpenError::Io { source, .. }) => source
                .raw_os_error()
                .map(Errno::from_raw)
                .unwrap_or(Errno::EINVAL),
            LoadError::Open(_) => Errno::EINVAL,
            LoadError::Endianness { .. } => Errno::from_raw(4003), // LIBBPF_ERRNO__ENDIAN
            LoadError::Option { .. } | LoadError::Btf { .. } | LoadError::Pin { .. } => {
                Errno::EINVAL
            }
            LoadError::Token(t) => t.errno(),
            LoadError::BtfMandatory { errno, .. } => *errno,
            LoadError::Unsupported { .. } => Errno::EOPNOTSUPP,
            LoadError::Extern { source, .. } => source.errno(),
            LoadError::StructOps { source, .. } => source.errno(),
            LoadError::Delegation(_) => Errno::EPERM,
            LoadError::MapDenied { source, .. } | LoadError::Map { source, .. } => source.errno(),
            LoadError::Program { source, .. } => source.errno(),
            LoadError::Slot { errno, .. } => *errno,
        }
    }
}

fn tail_suffix(e: &ProgramError) -> String {
    let t = e.log_tail(20);
    if t.is_empty() {
        String::new()
    } else {
        format!("\nverifier log (last lines):\n{t}")
    }
}
