//! The load pipeline, step by step, in libbpf's order (`bpf_object_prepare` then `bpf_object_load`):
//!
//! 1. refuse non-native byte order; apply the caller's options to a private copy of the object;
//! 2. token (first step of prepare, as in libbpf), then the feature answers for that token;
//! 3. with a token: check what it delegates against what the object needs; refuse what this
//!    loader cannot do yet, naming it; resolve externs (`externs/`);
//! 4. CO-RE relocation of every autoload function (in file order, as libbpf: the candidate
//!    cache makes the answers order-dependent in rare cases);
//! 5. object BTF: fix-up, sanitize, load (failure only drops BTF, as in libbpf);
//! 6. maps: create (or reuse pinned), set initial values, freeze `.rodata`, pin, fill map-in-map;
//! 7. per autoload main program, in order on this thread: subprogram append and `.BTF.ext` info,
//!    map and global data references, load plan; each program goes to the loading threads as
//!    soon as it is ready (`load.rs`), so the kernel verifies while the next one is prepared;
//! 8. prog-array slots and struct_ops values, once every program has its fd.
//!
//! libbpf links every program before it creates maps; linking after them (step 7) keeps its
//! errors: in fail-fast mode a link failure is still reported before a BTF, map, data-reference
//! or load failure (when BTF or map creation fails, the programs are linked first to find one).
//!
//! Every kernel object is an `OwnedFd` held by a local until the end, so any `?` releases
//! everything created so far; pins made by this load are removed on failure.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::PathBuf;

use bpfload_btf::core::{CoreRelocator, Targets};
use bpfload_btf::fixup::{fixup_datasecs, mark_func_static, VarSymbol};
use bpfload_btf::{sanitize, Btf, BtfExt, BtfModel};
use bpfload_syscall::LogOptions;

use crate::error::{LoadError, LoadFailure, ProgramError};
use crate::externs::wire::ObjExterns;
use crate::features::{Feature, Features};
use crate::insn::Insn;
use crate::loaded::{Loaded, LoadedProgram};
use crate::loader::Loader;
use crate::object::btf_maps::adjust_max_entries;
use crate::object::elf::Endianness;
use crate::object::maps::MapKind;
use crate::object::Object;
use crate::reloc::calls::{self, CorePatched, FuncIndex};
use crate::reloc::ext_info::ExtInfoIndex;
use crate::reloc::{self, data, Linked};
use crate::token::TokenReport;
use crate::{load, maps_create, token};

/// [`load_inner`], with the token report of a failed load: `None` when it failed before a
/// token was tried, the token error's report when the token itself failed.
pub(crate) fn load(opts: &Loader, object: &Object) -> Result<Loaded, LoadFailure> {
    let mut report = None;
    load_inner(opts, object, &mut report).map_err(|error| {
        let token = match &error {
            LoadError::Token(t) => Some(t.report()),
            _ => report,
        }
        .map(Box::new);
        LoadFailure { error, token }
    })
}

/// `report` receives a copy of the token report as soon as the token step is done, so a later
/// failure can still say what happened to the token.
fn load_inner(
    opts: &Loader,
    object: &Object,
    report: &mut Option<TokenReport>,
) -> Result<Loaded, LoadError> {
    check_endianness(object)?;
    let mut obj = object.clone();
    apply_options(opts, &mut obj)?;
    if let Some(v) = opts.kern_version {
        obj.kern_version = Some(v);
    }

    let req = opts.token.as_ref().map_err(|e| e.clone())?;
    let (token_fd, token_report) = token::acquire(req, object.token_path_env.as_deref())?;
    *report = Some(token_report.clone());
    let tok = token_fd.as_ref().map(|t| t.as_fd());
    let features = Features::for_token(tok)?;

    check_unsupported(&obj)?;
    // bpf_object__resolve_externs (adds the .kconfig map) and the kernel BTFs for attach targets.
    let mut ext = ObjExterns::prepare(
        &mut obj,
        opts.kconfig.as_deref(),
        opts.lenient_externs,
        &features,
        tok,
        &opts.attach_targets,
    )
    .map_err(|source| LoadError::Extern {
        object: obj.name.clone(),
        source,
    })?;
    ext.prepare_struct_ops(&mut obj)
        .map_err(|source| LoadError::StructOps {
            object: obj.name.clone(),
            source,
        })?;
    if tok.is_some() {
        // Compare what the object needs with what the token delegates; only gaps the kernel is
        // certain to refuse stop the load here (it falls back to capabilities otherwise). After
        // struct_ops prepare: member programs' attach types and autoload are known then, and
        // nothing has been created yet.
        let needs = crate::diagnose::needs_of(
            &obj,
            features.has(Feature::Btf),
            features.has(Feature::ExpAttachType),
            &ext.struct_ops_attach,
        );
        crate::diagnose::preflight(token_report.path.as_deref(), features.delegation(), &needs)?;
    }
    // The BTF bytes are shared with the object (Arc): borrowing them from these handles, not from
    // `obj`, lets map creation update `obj` while linking still reads the `.BTF.ext` records.
    let (btf_raw, btf_ext_raw) = (obj.btf.clone(), obj.btf_ext.clone());
    let local_btf = parse_local_btf(&obj.name, btf_raw.as_deref());
    let btf_ext = btf_ext_raw
        .as_deref()
        .and_then(|raw| match BtfExt::parse(raw) {
            Ok(e) => Some(e),
            Err(e) => {
                log::warn!("object '{}': ignoring malformed .BTF.ext: {e}", obj.name);
                None
            }
        });
    let funcs_index = FuncIndex::new(&obj);

    // Shared with the object; only functions that CO-RE patches get their own copy.
    let mut funcs: Vec<std::sync::Arc<[Insn]>> =
        obj.programs.iter().map(|p| p.insns.clone()).collect();
    // CO-RE-patched main programs: the instructions CO-RE changed, applied to a copy wherever
    // the program's code is placed: as the linked program itself, and in every program it is
    // appended to (a static program outside `.text` called from its own section, which only
    // bpfload's extension mode links). Subprograms are patched in place in `funcs`.
    let mut main_code: Vec<Option<CorePatched>> = vec![None; obj.programs.len()];
    let core_errors = relocate_core(
        &obj,
        local_btf.as_ref(),
        btf_ext.as_ref(),
        &funcs_index,
        &mut funcs,
        &mut main_code,
    )?;

    let ext_index = match (&local_btf, &btf_ext) {
        (Some(b), Some(e)) if features.has(Feature::BtfFunc) => Some(ExtInfoIndex::new(&obj, b, e)),
        _ => None,
    };
    // bpf_prog_assign_exc_cb (needs DECL_TAG support, as in libbpf).
    let exc_cbs = match &local_btf {
        Some(b) if features.has(Feature::BtfDeclTag) => {
            reloc::exc_cb::assign(&obj, b).map_err(|what| LoadError::Btf {
                object: obj.name.clone(),
                msg: what,
            })?
        }
        _ => HashMap::new(),
    };
    let mains: Vec<usize> = (0..obj.programs.len())
        .filter(|&i| !obj.programs[i].is_subprog && obj.programs[i].autoload)
        .collect();
    let mut linker = Linker {
        funcs,
        main_code,
        core_errors,
        funcs_index,
        ext_index,
        exc_cbs,
    };
    // In fail-fast mode a relocation failure is reported before anything the kernel refuses
    // (libbpf relocates every program before it creates maps): when BTF or map creation fails,
    // the programs are linked to find such a failure first.
    let first_link_error = |linker: &mut Linker<'_>, obj: &Object, e: LoadError| {
        if opts.keep_going {
            return e;
        }
        mains
            .iter()
            .find_map(|&m| {
                linker
                    .link(obj, m)
                    .err()
                    .map(|pe| program_error(obj, m, pe))
            })
            .unwrap_or(e)
    };

    let btf_fd = match load_btf(&obj, local_btf.as_ref(), &features, tok, &ext) {
        Ok(fd) => fd,
        Err(e) => return Err(first_link_error(&mut linker, &obj, e)),
    };
    let btf_borrowed = btf_fd.as_ref().map(|f| f.as_fd());

    let mut pins = maps_create::PinGuard::default();
    let mut maps =
        match maps_create::create_all(&mut obj, &features, tok, btf_borrowed, opts, &mut pins) {
            Ok(maps) => maps,
            Err(e) => return Err(first_link_error(&mut linker, &obj, e)),
        };
    let obj = &obj;

    let rodata: Vec<BorrowedFd<'_>> = maps
        .iter()
        .flatten()
        .filter(|m| m.kind == MapKind::Rodata)
        .map(|m| m.fd.as_fd())
        .collect();
    let arena_reloc = crate::arena::reloc_offset(obj, features.has(Feature::Ldimm64FullRangeOff));
    let map_fd = |i: usize| maps[i].as_ref().map(|lm| lm.fd.as_raw_fd());
    let ctx = load::LoadCtx {
        obj,
        features: &features,
        token: tok,
        btf: btf_borrowed,
        rodata: &rodata,
        log: &opts.log,
        license: std::ffi::CString::new(obj.license.as_bytes()).unwrap_or_default(),
    };
    // Pipelined: this thread prepares each program in order (link, map/data/extern references,
    // load plan; the extern state is not shared across threads) and hands it to the loading
    // threads at once, so the kernel verifies program i while program i + 1 is prepared. Only
    // the final instructions outlive a program's load.
    let n = mains.len();
    let mut failed: Vec<Option<(Stage, ProgramError)>> = (0..n).map(|_| None).collect();
    let insns: usize = mains.iter().map(|&m| obj.programs[m].insns.len()).sum();
    let results = load::pipeline(
        opts.loading_threads(n, insns),
        n,
        !opts.keep_going,
        |submit| {
            for (k, &m) in mains.iter().enumerate() {
                let job = linker
                    .link(obj, m)
                    .map_err(|e| (Stage::Link, e))
                    .and_then(|mut l| {
                        data::relocate(&mut l, arena_reloc, map_fd);
                        ext.relocate(&mut l, map_fd)
                            .map_err(|e| ProgramError::Reloc(e.to_string()))
                            .and_then(|()| {
                                reloc::helpers::sanitize(&mut l, || {
                                    features.has(Feature::ProbeReadKern)
                                });
                                load::plan_program(obj, &l, &ext)
                            })
                            .map(|plan| (l, plan))
                            .map_err(|e| (Stage::Plan, e))
                    });
                match job {
                    Ok(job) => {
                        submit.submit(k, job);
                    }
                    Err((stage, e)) => {
                        failed[k] = Some((stage, e));
                        if !opts.keep_going {
                            // Nothing loads any more; the first link failure (program order)
                            // is the answer, else the first failure of a later step.
                            submit.stop();
                            if stage == Stage::Link {
                                break;
                            }
                        }
                    }
                }
            }
        },
        |(l, plan)| {
            let r = load::load_program(&ctx, &l, &plan);
            let err = r.is_err();
            ((l.insns, r), err)
        },
    );
    if !opts.keep_going {
        let first = |stage: Stage| {
            failed
                .iter()
                .position(|f| matches!(f, Some((s, _)) if *s == stage))
        };
        if let Some(k) = first(Stage::Link).or_else(|| first(Stage::Plan)) {
            let (_, e) = failed[k].take().expect("found above");
            return Err(program_error(obj, mains[k], e));
        }
        if let Some((k, e)) = results.iter().enumerate().find_map(|(k, r)| match r {
            Some((_, Err(e))) => Some((k, e)),
            _ => None,
        }) {
            return Err(program_error(obj, mains[k], e.clone()));
        }
    }
    let mut programs = Vec::with_capacity(n);
    for ((&m, fail), result) in mains.iter().zip(failed).zip(results) {
        let p = &obj.programs[m];
        let (insns, result) = match (fail, result) {
            (Some((_, e)), _) => (Vec::new(), Err(e)),
            (None, Some(r)) => r,
            // Not attempted: only after a failure in fail-fast mode, returned above.
            (None, None) => break,
        };
        programs.push(LoadedProgram {
            name: p.name.clone(),
            section: p.section.clone(),
            prog_type: p.prog_type(),
            insns,
            result,
        });
    }

    drop(ctx);
    drop(rodata);
    if let Err(e) = maps_create::init_prog_arrays(obj, &maps, &programs, opts.keep_going) {
        if !opts.keep_going {
            return Err(e);
        }
        // libbpf fails the object here and unloads every program; keep-going reports that on
        // each loaded program (fd closed), so instructions and per-program results remain.
        let (msg, errno) = (e.to_string(), e.errno());
        for p in programs.iter_mut().filter(|p| p.result.is_ok()) {
            p.result = Err(ProgramError::Object {
                msg: msg.clone(),
                errno,
            });
        }
    }
    // bpf_object_prepare_struct_ops: program fds into the struct_ops value images.
    let struct_ops = obj
        .struct_ops
        .iter()
        .filter(|st| maps[st.map].is_some())
        .filter_map(|st| {
            let fd_of = |f: usize| {
                let name = &obj.programs[f].name;
                programs
                    .iter()
                    .find(|lp| &lp.name == name)
                    .and_then(|lp| lp.result.as_ref().ok())
                    .map(|fd| fd.as_raw_fd())
            };
            Some((obj.maps[st.map].name.clone(), st.value_with_fds(fd_of)?))
        })
        .collect();
    pins.disarm();
    // A token-bound cache holds a dup of the load's token: the object keeps the cache (its
    // features live as long as the object and its token, as libbpf's per-object cache), and
    // the cache's fd is the object's token, so one fd per object, not two.
    let probes = features.into_probes();
    let token = match probes.token() {
        Some(_) => None,
        None => token_fd,
    };
    Ok(Loaded {
        object: obj.name.clone(),
        token,
        probes,
        token_report,
        btf: btf_fd,
        maps: maps.iter_mut().filter_map(Option::take).collect(),
        programs,
        struct_ops,
    })
}

/// The step of a program's preparation that failed, for fail-fast precedence: link failures
/// (libbpf's `bpf_object__relocate`) come before map/data reference failures, which come before
/// any load failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Link,
    Plan,
}

/// What linking a main program needs: the CO-RE-patched functions and the object's indexes.
struct Linker<'a> {
    /// Shared with the object; only functions that CO-RE patched have their own copy.
    funcs: Vec<std::sync::Arc<[Insn]>>,
    /// CO-RE-patched main programs, applied wherever their code is placed (kept until the
    /// linker goes: a later program may append one).
    main_code: Vec<Option<CorePatched>>,
    core_errors: HashMap<usize, String>,
    funcs_index: FuncIndex,
    ext_index: Option<ExtInfoIndex<'a>>,
    exc_cbs: HashMap<usize, Result<usize, String>>,
}

impl Linker<'_> {
    /// Main program `m` with its subprograms appended and its `.BTF.ext` info; a CO-RE failure
    /// in any function it includes fails it.
    fn link(&mut self, obj: &Object, m: usize) -> Result<Linked, ProgramError> {
        let cb = self
            .exc_cbs
            .get(&m)
            .cloned()
            .transpose()
            .map_err(ProgramError::Reloc)?;
        let l = calls::link(
            obj,
            &self.funcs,
            &self.main_code,
            &self.funcs_index,
            self.ext_index.as_ref(),
            m,
            cb,
        )
        .map_err(|e| ProgramError::Reloc(e.to_string()))?;
        match included_core_error(&l, &self.core_errors) {
            Some(e) => Err(ProgramError::Reloc(e)),
            None => Ok(l),
        }
    }
}

fn program_error(obj: &Object, idx: usize, e: ProgramError) -> LoadError {
    let p = &obj.programs[idx];
    LoadError::Program {
        program: p.name.clone(),
        prog_type: p.prog_type_name(),
        source: Box::new(e),
    }
}

fn check_endianness(obj: &Object) -> Result<(), LoadError> {
    if obj.endian != Endianness::native() {
        return Err(LoadError::Endianness {
            object: obj.name.clone(),
            endian: obj.endian.describe(),
            native: Endianness::native().describe(),
        });
    }
    Ok(())
}

/// Applies autoload, autocreate, max_entries and global variable options to the private copy.
// Kept out of the load pipeline's one big function: smaller code there (issue 8).
#[inline(never)]
fn apply_options(opts: &Loader, obj: &mut Object) -> Result<(), LoadError> {
    let opt_err = |option: &'static str, msg: String| LoadError::Option { option, msg };
    if let Some(only) = &opts.only {
        for name in only {
            if !obj
                .programs
                .iter()
                .any(|p| !p.is_subprog && &p.name == name)
            {
                return Err(opt_err(
                    "only_programs",
                    format!("no program named '{name}'"),
                ));
            }
        }
        for p in obj.programs.iter_mut().filter(|p| !p.is_subprog) {
            p.autoload = only.contains(&p.name);
        }
    }
    for (name, on) in &opts.autoload {
        let p = obj
            .programs
            .iter_mut()
            .find(|p| !p.is_subprog && &p.name == name);
        p.ok_or_else(|| opt_err("set_autoload", format!("no program named '{name}'")))?
            .autoload = *on;
    }
    for (name, on) in &opts.autocreate {
        let m = obj
            .maps
            .iter_mut()
            .find(|m| &m.name == name || &m.real_name == name);
        m.ok_or_else(|| opt_err("set_autocreate", format!("no map named '{name}'")))?
            .autocreate = *on;
    }
    for (name, n) in &opts.max_entries {
        let m = obj
            .maps
            .iter_mut()
            .find(|m| &m.name == name || &m.real_name == name);
        let m = m.ok_or_else(|| opt_err("set_max_entries", format!("no map named '{name}'")))?;
        m.def.max_entries = adjust_max_entries(m.def.map_type, *n);
    }
    for (name, value) in &opts.globals {
        let g = obj.globals.iter().find(|g| &g.name == name).cloned();
        let g =
            g.ok_or_else(|| opt_err("set_global", format!("no global variable named '{name}'")))?;
        if value.len() != g.size {
            return Err(opt_err(
                "set_global",
                format!(
                    "'{name}' is {} bytes, but {} bytes were given",
                    g.size,
                    value.len()
                ),
            ));
        }
        let map = &mut obj.maps[g.map];
        let size = map.def.value_size as usize;
        // The kernel refuses values above INT_MAX anyway; never allocate such an image.
        if size > i32::MAX as usize {
            return Err(opt_err(
                "set_global",
                format!("section of '{name}' is {size} bytes, too large for a map value"),
            ));
        }
        let image = map.image.get_or_insert_with(|| vec![0; size]);
        image[g.offset..g.offset + g.size].copy_from_slice(value);
    }
    Ok(())
}

/// Things the object needs that this loader does not implement yet: an error naming them.
fn check_unsupported(obj: &Object) -> Result<(), LoadError> {
    let unsupported = |what: String| LoadError::Unsupported {
        object: obj.name.clone(),
        what,
    };
    if let Some(what) = obj.unsupported.first() {
        return Err(unsupported(what.clone()));
    }
    Ok(())
}

fn parse_local_btf<'a>(object: &str, raw: Option<&'a [u8]>) -> Option<Btf<'a>> {
    match Btf::parse(raw?) {
        Ok(b) => Some(b),
        Err(e) => {
            log::info!("object '{object}': BTF unusable ({e}); loading without it");
            None
        }
    }
}

/// `bpf_object__relocate_core`: patches the functions' own instructions (before linking), for
/// every `.BTF.ext` CO-RE record of a function whose code is loaded, in file order. Returns the
/// error per function index (libbpf fails the whole load; here only the programs that include it
/// fail).
// Kept out of the load pipeline's one big function: smaller code there (issue 8).
#[inline(never)]
fn relocate_core(
    obj: &Object,
    local: Option<&Btf<'_>>,
    ext: Option<&BtfExt<'_>>,
    funcs_index: &FuncIndex,
    funcs: &mut [std::sync::Arc<[Insn]>],
    main_code: &mut [Option<CorePatched>],
) -> Result<HashMap<usize, String>, LoadError> {
    let mut errors = HashMap::new();
    let (Some(local), Some(ext)) = (local, ext) else {
        return Ok(errors);
    };
    if ext.core_relos.is_empty() {
        return Ok(errors);
    }
    let sec_by_name = obj.sections_by_name();
    // libbpf skips the records of a program that will not be loaded (`!prog->autoload`). A static
    // function outside `.text` is a program here and is also appended to the callers in its
    // section, so with its own autoload off its code may still be loaded: found by walking the
    // calls of the programs that load, only when such a function exists (computed once).
    let mut appended: Option<Vec<bool>> = None;
    let mut loaded = |f: usize| {
        let p = &obj.programs[f];
        p.autoload
            || (!p.is_subprog
                && appended.get_or_insert_with(|| {
                    let mains = (0..obj.programs.len())
                        .filter(|&m| !obj.programs[m].is_subprog && obj.programs[m].autoload);
                    crate::reloc::calls::reachable(obj, funcs_index, mains)
                })[f])
    };
    // Group the records per function, in file order.
    let mut groups: Vec<(usize, Vec<bpfload_btf::CoreRelo>)> = Vec::new();
    for sec in ext.core_relos.sections() {
        let name = local.str_at(sec.sec_name_off).unwrap_or("");
        let Some(&sec_idx) = sec_by_name.get(name) else {
            continue;
        };
        for mut rec in sec.records() {
            let insn_idx = (rec.insn_off / 8) as usize;
            let Some(f) = funcs_index.find(sec_idx, insn_idx) else {
                continue;
            };
            if !loaded(f) {
                continue;
            }
            let p = &obj.programs[f];
            rec.insn_off -= (p.sec_insn_off * Insn::SIZE) as u32;
            match groups.last_mut() {
                Some((g, v)) if *g == f => v.push(rec),
                _ => groups.push((f, vec![rec])),
            }
        }
    }
    if groups.is_empty() {
        return Ok(errors);
    }
    let vmlinux = bpfload_btf::kernel::vmlinux().map_err(|e| LoadError::Unsupported {
        object: obj.name.clone(),
        what: format!(
            "kernel BTF for CO-RE relocations (reading /sys/kernel/btf/vmlinux failed: {e})"
        ),
    })?;
    let targets = Targets::kernel(&vmlinux);
    let mut relocator = CoreRelocator::new(local, &targets);
    // One candidate lookup for the whole object (as `relocate` would do per function).
    relocator.prefetch(groups.iter().flat_map(|(_, recs)| recs.iter()));
    let mut memo = CoreMemo::default();
    for (f, recs) in groups {
        if errors.contains_key(&f) {
            continue;
        }
        // A function may have several record groups: patch its latest copy.
        let mut code: Vec<Insn> = match main_code[f].take() {
            Some(own) => own.apply(&funcs[f]),
            None => funcs[f].to_vec(),
        };
        match memo.relocate(&mut relocator, recs, &mut code) {
            Ok(()) if obj.programs[f].is_subprog => funcs[f] = code.into(),
            Ok(()) => main_code[f] = Some(CorePatched::new(&funcs[f], &code)),
            Err(e) => {
                errors.insert(
                    f,
                    format!("CO-RE relocation in '{}' failed: {e}", obj.programs[f].name),
                );
            }
        }
    }
    Ok(errors)
}

/// The outcome of applying one CO-RE record: what the (at most two) instructions it may patch
/// become. Objects with many programs repeat the same reads (`BPF_CORE_READ(task, pid)` in a
/// thousand programs); resolving each against the kernel BTF again is most of their user-space
/// load time, so identical inputs reuse the first answer.
///
/// Exact only where the answer cannot depend on the order of resolution: the relocator prunes a
/// local type's candidates by earlier records, and with several candidates a later record may
/// resolve against a different first candidate. With at most one candidate (the usual case: one
/// `task_struct` in vmlinux) the answer is a function of the record and the instructions alone,
/// so only those answers are remembered. Errors are never remembered (the relocator reports them).
#[derive(Default)]
struct CoreMemo {
    done: HashMap<MemoKey, (Insn, Option<Insn>)>,
}

/// (local type id, access string offset, kind, the instruction, the next one); the answer is
/// what both become.
type MemoKey = (u32, u32, u32, [u8; 8], Option<[u8; 8]>);

impl CoreMemo {
    /// Applies `recs` (one function's records, `insn_off` relative to `code[0]`) in order, as
    /// `CoreRelocator::relocate` does, numbering them from 0 as it does for error messages.
    fn relocate(
        &mut self,
        relocator: &mut CoreRelocator<'_, '_>,
        recs: Vec<bpfload_btf::CoreRelo>,
        code: &mut [Insn],
    ) -> Result<(), bpfload_btf::core::CoreError> {
        for (i, rec) in recs.into_iter().enumerate() {
            let at = (rec.insn_off % 8 == 0)
                .then_some((rec.insn_off / 8) as usize)
                .filter(|&at| at < code.len());
            let key = at.map(|at| {
                (
                    rec.type_id,
                    rec.access_str_off,
                    rec.kind,
                    code[at].to_bytes(),
                    code.get(at + 1).map(Insn::to_bytes),
                )
            });
            if let (Some(at), Some(hit)) = (at, key.as_ref().and_then(|k| self.done.get(k))) {
                code[at] = hit.0;
                if let Some(next) = hit.1 {
                    code[at + 1] = next;
                }
                continue;
            }
            let results = relocator.relocate_indexed([(i, rec)], &mut *code)?;
            if let (Some(at), Some(key)) = (at, key) {
                if results.iter().all(|r| r.candidates <= 1) {
                    self.done.insert(key, (code[at], code.get(at + 1).copied()));
                }
            }
        }
        Ok(())
    }
}

/// Lets the CO-RE engine patch the loader's instructions in place (no `bpf_insn` round trip).
impl bpfload_btf::core::CoreInsn for Insn {
    fn code(&self) -> u8 {
        self.code
    }
    fn set_code(&mut self, code: u8) {
        self.code = code;
    }
    fn dst_reg(&self) -> u8 {
        self.dst()
    }
    fn set_dst_reg(&mut self, reg: u8) {
        self.set_dst(reg);
    }
    fn src_reg(&self) -> u8 {
        self.src()
    }
    fn set_src_reg(&mut self, reg: u8) {
        self.set_src(reg);
    }
    fn off(&self) -> i16 {
        self.off
    }
    fn set_off(&mut self, off: i16) {
        self.off = off;
    }
    fn imm(&self) -> i32 {
        self.imm
    }
    fn set_imm(&mut self, imm: i32) {
        self.imm = imm;
    }
}

fn included_core_error(l: &Linked, errors: &HashMap<usize, String>) -> Option<String> {
    if errors.is_empty() {
        return None;
    }
    l.funcs.iter().find_map(|f| errors.get(f).cloned())
}

/// `bpf_object__sanitize_and_load_btf`: fix-up, mark hidden subprograms static, sanitize for
/// the kernel, load. A failure means loading without BTF, except for an object with struct_ops
/// (libbpf's `kernel_needs_btf`): its maps need the BTF, so the load stops before any map.
// Kept out of the load pipeline's one big function: smaller code there (issue 8).
#[inline(never)]
fn load_btf(
    obj: &Object,
    local: Option<&Btf<'_>>,
    features: &Features,
    token: Option<BorrowedFd<'_>>,
    ext: &ObjExterns<'_>,
) -> Result<Option<std::os::fd::OwnedFd>, LoadError> {
    let Some(local) = local else { return Ok(None) };
    use bpfload_syscall::Errno;
    let mandatory = |errno: Errno, reason: String| LoadError::BtfMandatory {
        object: obj.name.clone(),
        errno,
        reason,
    };
    let needs_btf = !obj.struct_ops.is_empty();
    if !features.has(Feature::Btf) {
        if needs_btf {
            return Err(mandatory(
                Errno::EOPNOTSUPP,
                "the kernel does not support BTF".into(),
            ));
        }
        log::info!(
            "object '{}': kernel doesn't support BTF, skipping uploading it",
            obj.name
        );
        return Ok(None);
    }
    let btf_err = |msg: String| LoadError::Btf {
        object: obj.name.clone(),
        msg,
    };
    let mut model = BtfModel::from_btf(local).map_err(|e| btf_err(e.to_string()))?;
    crate::externs::btf_fixup::rewrite_extern_btf(&mut model, &ext.table);
    fixup_datasecs(
        &mut model,
        |name| obj.sec_sizes.get(name).copied(),
        |name| {
            let &i = obj.var_syms.get(name)?;
            let &(value, hidden) = obj.var_sym_vals.get(i as usize)?;
            Some(VarSymbol { value, hidden })
        },
    )
    .map_err(|e| btf_err(e.to_string()))?;
    // Only subprograms, as libbpf (`!prog->mark_btf_static || !prog_is_subprog(obj, prog)`): a
    // hidden entry program keeps its global FUNC (an freplace may target it).
    for p in obj
        .programs
        .iter()
        .filter(|p| p.mark_btf_static && p.is_subprog)
    {
        mark_func_static(&mut model, &p.name);
    }
    let sanitized =
        sanitize(&model, &mut |f| features.btf(f)).map_err(|e| btf_err(e.to_string()))?;
    let bytes = sanitized.to_bytes().map_err(|e| btf_err(e.to_string()))?;
    match bpfload_syscall::btf::load(&bytes, token, &LogOptions::default()) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if needs_btf => Err(mandatory(e.errno(), format!("loading BTF: {e}"))),
        Err(e) => {
            log::warn!(
                "object '{}': error loading BTF ({e}); continuing without it",
                obj.name
            );
            Ok(None)
        }
    }
}

/// Where `pinning = BY_NAME` maps live.
pub(crate) fn pin_root(opts: &Loader) -> PathBuf {
    opts.pin_root
        .clone()
        .unwrap_or_else(|| PathBuf::from("/sys/fs/bpf"))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::error::LoadError;
    use crate::insn::{LD_IMM64, PSEUDO_MAP_FD, PSEUDO_MAP_VALUE};
    use crate::{Loaded, Loader, Object};

    fn fixture(name: &str) -> Object {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/bpf")
            .join(name);
        Object::open_file(&path).unwrap_or_else(|e| panic!("open {name}: {e}"))
    }

    fn require_root(what: &str) -> bool {
        crate::tests::is_root() || crate::tests::skip_or_panic(what, "needs root")
    }

    /// An instruction without its map fd value (fds differ between loads).
    type InsnShape = (u8, u8, u8, i16, Option<i32>);

    /// What a load reported, comparable across loads: per program its name, its instructions
    /// and its result (errno on failure).
    fn summary(l: &Loaded) -> Vec<(String, Vec<InsnShape>, Option<i32>)> {
        l.programs()
            .iter()
            .map(|p| {
                let insns = p
                    .insns()
                    .iter()
                    .map(|i| {
                        let is_map = i.code == LD_IMM64
                            && (i.src() == PSEUDO_MAP_FD || i.src() == PSEUDO_MAP_VALUE);
                        let imm = (!is_map).then_some(i.imm);
                        (i.code, i.dst(), i.src(), i.off, imm)
                    })
                    .collect();
                let result = p.result().err().map(|e| e.errno().raw());
                (p.name().to_string(), insns, result)
            })
            .collect()
    }

    /// The thread count changes neither instructions nor results nor their order, in keep-going
    /// mode (every program attempted) and in fail-fast mode (the same first failure).
    #[test]
    fn thread_count_does_not_change_results() {
        if !require_root("loads on several threads") {
            return;
        }
        let _g = crate::tests::KERNEL_LOCK
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for name in [
            "bad_prog.bpf.o",
            "calls.bpf.o",
            "core_ambiguous.bpf.o",
            "core_task.bpf.o",
            "globals.bpf.o",
            "tailcall.bpf.o",
        ] {
            let obj = fixture(name);
            let serial = Loader::new().threads(1).keep_going(true).load(&obj);
            let serial = serial.unwrap_or_else(|e| panic!("{name}: {e}"));
            let want = summary(&serial);
            drop(serial);
            // The failure, without the verifier log (it prints kernel addresses).
            let failure = |e: LoadError| match e {
                LoadError::Program {
                    program, source, ..
                } => format!("program '{program}': {}", source.errno()),
                e => e.to_string(),
            };
            let fail_fast = Loader::new().threads(1).load(&obj).err().map(failure);
            for threads in [2, 3, 8] {
                let l = Loader::new().threads(threads).keep_going(true).load(&obj);
                let l = l.unwrap_or_else(|e| panic!("{name}, {threads} threads: {e}"));
                assert_eq!(summary(&l), want, "{name}: {threads} threads");
                drop(l);
                let e = Loader::new().threads(threads).load(&obj).err();
                assert_eq!(
                    e.map(failure),
                    fail_fast,
                    "{name}: fail-fast with {threads} threads"
                );
            }
        }
    }

    /// Programs are linked after the maps are created, but a link failure (here a CO-RE
    /// ambiguity) is still the error of a fail-fast load whose map creation fails, as in libbpf,
    /// which relocates before it creates maps; keep-going reports the map failure.
    #[test]
    fn link_failure_is_reported_before_a_map_failure() {
        if !require_root("map creation failure") {
            return;
        }
        let _g = crate::tests::KERNEL_LOCK
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let obj = fixture("core_ambiguous.bpf.o");
        for threads in [1, 2] {
            let loader = Loader::new().threads(threads).set_max_entries(".bss", 0);
            match loader.load(&obj) {
                Err(LoadError::Program { program, .. }) => assert_eq!(program, "ambiguous_field"),
                other => panic!("{threads} threads: expected the link failure, got {other:?}"),
            }
            let keep_going = Loader::new()
                .threads(threads)
                .set_max_entries(".bss", 0)
                .keep_going(true);
            match keep_going.load(&obj) {
                Err(LoadError::Map { step: "create", .. }) => {}
                other => {
                    panic!("{threads} threads, keep going: expected the map failure, got {other:?}")
                }
            }
        }
    }
}
