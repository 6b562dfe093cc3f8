//! The user-facing builder: options applied before load, then [`Loader::load`].

use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bpfload_probe::Probes;

use bpfload_syscall::LogOptions;

use crate::error::{LoadError, LoadFailure};
use crate::loaded::Loaded;
use crate::object::Object;
use crate::token::{TokenError, TokenRequest};

/// Below this many instructions in all the programs to load, the default [`Loader::threads`]
/// loads on the calling thread alone. Verifying ~2k instructions takes the kernel on the order
/// of 100 µs, about what starting and joining a loading thread costs.
pub const PARALLEL_MIN_INSNS: usize = 2048;

/// Load options, in the style of aya's `EbpfLoader`.
///
/// ```no_run
/// let object = bpfload::Object::open_file("prog.bpf.o")?;
/// let loaded = bpfload::Loader::new()
///     .set_global("config_value", &42u32.to_ne_bytes())
///     .set_max_entries("events", 4096)
///     .set_autoload("prog_b", false)
///     .set_autocreate("unused_map", false)
///     .pin_root("/sys/fs/bpf/myapp")
///     .load(&object)?;
/// let prog_fd = loaded.program("prog_a").unwrap().fd();
/// let map_fd = loaded.map("events").unwrap().fd();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Loader {
    pub(crate) globals: Vec<(String, Vec<u8>)>,
    pub(crate) max_entries: Vec<(String, u32)>,
    pub(crate) autoload: Vec<(String, bool)>,
    pub(crate) only: Option<Vec<String>>,
    pub(crate) autocreate: Vec<(String, bool)>,
    pub(crate) pin_root: Option<PathBuf>,
    pub(crate) token: Result<TokenRequest, TokenError>,
    /// The feature cache of a caller-given token (`token_fd`), held so that every load through
    /// this loader reuses it: the probe crate's registry only holds weak references.
    pub(crate) token_probes: Option<Arc<Probes>>,
    pub(crate) keep_going: bool,
    pub(crate) log: LogOptions,
    /// `None`: automatic (see [`Loader::threads`]).
    pub(crate) threads: Option<usize>,
    pub(crate) kern_version: Option<u32>,
    pub(crate) kconfig: Option<String>,
    pub(crate) lenient_externs: bool,
    pub(crate) attach_targets: Vec<crate::externs::wire::AttachTargetOpt>,
}

impl Default for Loader {
    fn default() -> Self {
        Loader {
            globals: Vec::new(),
            max_entries: Vec::new(),
            autoload: Vec::new(),
            only: None,
            autocreate: Vec::new(),
            pin_root: None,
            token: Ok(TokenRequest::Default),
            token_probes: None,
            keep_going: false,
            log: LogOptions::default(),
            kern_version: None,
            threads: None,
            kconfig: None,
            lenient_externs: false,
            attach_targets: Vec::new(),
        }
    }
}

impl Loader {
    /// Default options: every autoload program and every map, tokens in libbpf's implicit mode.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the initial value of a global variable (`.data`, `.rodata`, `.bss`, by symbol name).
    /// `value` must have the variable's size. This is how `const volatile` configuration is set.
    pub fn set_global(mut self, name: &str, value: &[u8]) -> Self {
        self.globals.push((name.to_string(), value.to_vec()));
        self
    }

    /// Overrides a map's `max_entries` (ring buffer sizes are rounded as libbpf rounds them).
    pub fn set_max_entries(mut self, map: &str, max_entries: u32) -> Self {
        self.max_entries.push((map.to_string(), max_entries));
        self
    }

    /// Turns loading of one program on or off.
    ///
    /// struct_ops programs: as in libbpf 1.7 (`bpf_object_adjust_struct_ops_autoload`), a
    /// program referenced by some struct_ops map loads iff a map referencing it is created
    /// ([`Loader::set_autocreate`]), whatever is set here; only a struct_ops program no map
    /// references keeps this setting.
    pub fn set_autoload(mut self, program: &str, autoload: bool) -> Self {
        self.autoload.push((program.to_string(), autoload));
        self
    }

    /// Loads only these programs (all others get autoload off).
    ///
    /// This is applied as autoload settings, before [`Loader::set_autoload`] and before the
    /// struct_ops rule described there: a struct_ops program referenced by a map that is created
    /// still loads when it is not listed, and one referenced only by maps that are not created
    /// does not load even when listed. Turn such programs off with [`Loader::set_autocreate`] on
    /// their maps.
    pub fn only_programs<I, S>(mut self, programs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.only = Some(
            programs
                .into_iter()
                .map(|s| s.as_ref().to_string())
                .collect(),
        );
        self
    }

    /// Turns creation of one map on or off (uses of a map that is not created are poisoned, so
    /// only programs that reach them fail).
    pub fn set_autocreate(mut self, map: &str, autocreate: bool) -> Self {
        self.autocreate.push((map.to_string(), autocreate));
        self
    }

    /// Directory for maps with `pinning = LIBBPF_PIN_BY_NAME` (default `/sys/fs/bpf`).
    pub fn pin_root(mut self, dir: impl AsRef<Path>) -> Self {
        self.pin_root = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Creates the BPF token from this bpffs (explicit mode; `""` disables tokens).
    pub fn token_path(mut self, path: impl AsRef<Path>) -> Self {
        self.token = Ok(TokenRequest::Path(path.as_ref().to_path_buf()));
        self.token_probes = None;
        self
    }

    /// Uses a token the caller already has (duplicated; the caller keeps theirs).
    ///
    /// The loader holds the token's feature cache, so its loads probe each feature once (as
    /// libbpf's per-object cache, which lives as long as the object and its token).
    pub fn token_fd(mut self, fd: BorrowedFd<'_>) -> Self {
        self.token = TokenRequest::from_fd(fd);
        // Not a token: no cache here; the load reports the fd (or falls back, as before).
        self.token_probes = self
            .token
            .as_ref()
            .ok()
            .and_then(|_| Probes::for_token(fd).ok());
        self
    }

    /// `false` (default): the first program that fails fails the load, as libbpf does.
    /// `true`: every autoload program is attempted and failures are reported per program in
    /// [`Loaded::programs`]; only object-level failures (maps, BTF) fail the load.
    pub fn keep_going(mut self, keep_going: bool) -> Self {
        self.keep_going = keep_going;
        self
    }

    /// Verifier log options for program loads (default: libbpf's, log only on failure).
    pub fn log_options(mut self, log: LogOptions) -> Self {
        self.log = log;
        self
    }

    /// Kconfig text (`CONFIG_FOO=y` lines) for `__kconfig` externs, consulted before the system's
    /// kconfig (`/boot/config-$(uname -r)`, then `/proc/config.gz`), like libbpf's `kconfig` option.
    pub fn kconfig(mut self, text: &str) -> Self {
        self.kconfig = Some(text.to_string());
        self
    }

    /// `false` (default, as libbpf): every extern of the object is resolved, and a strong one
    /// that cannot be (a kernel symbol or kfunc this kernel lacks) fails the whole load with an
    /// error naming it (ESRCH; EINVAL for typed ksyms and kfuncs, as libbpf).
    /// `true`: only the externs used by the programs being loaded must resolve, so programs that
    /// do not use a missing kernel symbol still load.
    pub fn lenient_externs(mut self, lenient: bool) -> Self {
        self.lenient_externs = lenient;
        self
    }

    /// Sets the attach target of a BTF-attached program before load (libbpf's
    /// `bpf_program__set_attach_target`): `target_prog` is the program to replace or trace
    /// (required for `freplace`; the fd is duplicated), `function` the target function (`None`:
    /// from the section name, as in `SEC("fentry/do_unlinkat")`; `"module:function"` restricts
    /// the kernel search to one module).
    pub fn set_attach_target(
        mut self,
        program: &str,
        target_prog: Option<BorrowedFd<'_>>,
        function: Option<&str>,
    ) -> Self {
        let prog_fd = match target_prog.map(bpfload_syscall::fd::dup_good) {
            Some(Ok(fd)) => Some(fd),
            Some(Err(e)) => {
                log::warn!("set_attach_target('{program}'): cannot duplicate the target fd: {e}");
                None
            }
            None => None,
        };
        self.attach_targets
            .push(crate::externs::wire::AttachTargetOpt {
                program: program.to_string(),
                prog_fd,
                func: function.map(str::to_string),
            });
        self
    }

    /// The `kern_version` passed to `BPF_PROG_LOAD` (libbpf's `bpf_object__set_kversion`); by
    /// default the object's `version` section, else the running kernel's version.
    pub fn kern_version(mut self, version: u32) -> Self {
        self.kern_version = Some(version);
        self
    }

    /// Number of threads that load programs (1 loads serially). The kernel verifies programs
    /// independently, so loads run concurrently, while the calling thread relocates the next
    /// programs; results, errors and instructions do not depend on the thread count. All other
    /// bpf(2) calls (BTF, maps, prog-array slots) stay on the calling thread, and so does the
    /// load of an object with a single program. If the system refuses some of the threads (a
    /// pids cgroup, `RLIMIT_NPROC`, memory), the programs load on those that started, or on the
    /// calling thread.
    ///
    /// Default: one thread per CPU for objects whose programs to load hold at least
    /// [`PARALLEL_MIN_INSNS`] instructions in all, else the calling thread alone: for a few
    /// small programs, starting threads costs more time and memory (stacks, malloc arenas)
    /// than verifying them in parallel saves.
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = Some(threads.max(1));
        self
    }

    /// The loading threads for `programs` programs holding `insns` instructions in all.
    pub(crate) fn loading_threads(&self, programs: usize, insns: usize) -> usize {
        match self.threads {
            Some(n) => n,
            None if programs < 2 || insns < PARALLEL_MIN_INSNS => 1,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }

    /// Relocates and loads `object` into the kernel.
    pub fn load(&self, object: &Object) -> Result<Loaded, LoadError> {
        self.load_reporting(object).map_err(|f| f.error)
    }

    /// [`load`](Self::load), but a failed load also says what happened to its token (the
    /// report a successful load carries in [`Loaded::token_report`]).
    pub fn load_reporting(&self, object: &Object) -> Result<Loaded, LoadFailure> {
        crate::prepare::load(self, object)
    }

    /// Opens and loads an object file.
    pub fn load_file(&self, path: impl AsRef<Path>) -> Result<Loaded, LoadError> {
        let object = Object::open_file(path)?;
        self.load(&object)
    }
}

#[cfg(test)]
mod thread_tests {
    use super::*;

    #[test]
    fn default_threads_follow_the_object_size_and_an_explicit_count_wins() {
        let auto = Loader::new();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(auto.loading_threads(5, PARALLEL_MIN_INSNS - 1), 1);
        assert_eq!(auto.loading_threads(1, 1 << 20), 1, "one program");
        assert_eq!(auto.loading_threads(1000, 20_000), cpus);
        assert_eq!(auto.loading_threads(2, PARALLEL_MIN_INSNS), cpus);
        assert_eq!(Loader::new().threads(3).loading_threads(5, 250), 3);
        assert_eq!(Loader::new().threads(0).loading_threads(1000, 20_000), 1);
    }
}
