//! Program loading (`bpf_object_load_prog` + `libbpf_prepare_prog_load`): attributes from the SEC()
//! definition, func/line info when BTF is loaded, the token, and `.rodata` binding afterwards.

use std::collections::VecDeque;
use std::ffi::CString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Condvar, Mutex};

use aya_obj::generated::{bpf_attach_type as at, bpf_prog_type as pt};
use bpfload_syscall::{prog, LogOptions, ProgLoadAttr};

use crate::error::ProgramError;
use crate::features::{Feature, Features};
use crate::insn;
use crate::object::sec_def::{
    SEC_ATTACH_BTF, SEC_EXP_ATTACH_OPT, SEC_SLEEPABLE, SEC_USDT, SEC_XDP_FRAGS,
};
use crate::object::Object;
use crate::reloc::Linked;

/// `BPF_F_SLEEPABLE`.
const BPF_F_SLEEPABLE: u32 = 1 << 4;
/// `BPF_F_XDP_HAS_FRAGS`.
const BPF_F_XDP_HAS_FRAGS: u32 = 1 << 5;

/// The kernel version passed as `kern_version` when the object has no `version` section.
fn host_kern_version() -> u32 {
    static V: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *V.get_or_init(|| bpfload_syscall::util::kernel_version().unwrap_or(0))
}

/// The serial part of a program load: its SEC() definition, attach target and `fd_array`. The
/// extern state it reads is not shared across threads, so plans are made in program order before
/// the loads run in parallel.
pub(crate) struct Plan<'e> {
    /// `None` only together with `deferred` (unknown section).
    def: Option<&'static crate::object::sec_def::SecDef>,
    attach: Option<(u32, Option<BorrowedFd<'e>>, Option<BorrowedFd<'e>>)>,
    fd_array: Vec<std::os::fd::RawFd>,
    struct_ops: Option<crate::struct_ops::ProgAttach>,
    /// A failure of `libbpf_prepare_prog_load` (attach target, struct_ops), reported by the load
    /// step as libbpf reports it: after relocation, so the final instructions are kept.
    deferred: Option<ProgramError>,
}

// Out of line: smaller code where it was inlined (issue 8: binary size).
#[inline(never)]
pub(crate) fn plan_program<'e>(
    obj: &Object,
    l: &Linked,
    ext: &'e crate::externs::wire::ObjExterns<'_>,
) -> Result<Plan<'e>, ProgramError> {
    let p = &obj.programs[l.prog];
    // An unknown section fails at load time, after relocation (CO-RE included), as libbpf's
    // "missing BPF prog type, check ELF section name": the relocated instructions are kept.
    let Some(def) = p.sec_def else {
        return Ok(Plan {
            def: None,
            attach: None,
            fd_array: Vec::new(),
            struct_ops: None,
            deferred: Some(ProgramError::UnknownSection {
                section: p.sec_name().to_string(),
            }),
        });
    };
    let deferred = |e: ProgramError| Plan {
        def: Some(def),
        attach: None,
        fd_array: Vec::new(),
        struct_ops: None,
        deferred: Some(e),
    };
    // SEC_ATTACH_BTF: attach_btf_id (+ module BTF fd, or the target program for freplace).
    let attach = if def.flags & SEC_ATTACH_BTF != 0 {
        match ext.attach_target(
            &p.name,
            p.sec_name(),
            def.prog_type,
            def.expected_attach_type,
        ) {
            Ok(a) => Some(a),
            Err(e) => return Ok(deferred(e.into())),
        }
    } else {
        None
    };
    let fd_array = ext.fd_array();
    // struct_ops: attach_btf_id = the kernel struct, expected attach type = member index.
    let struct_ops = if def.prog_type == pt::BPF_PROG_TYPE_STRUCT_OPS as u32 {
        match ext.struct_ops_attach.get(l.prog).copied().flatten() {
            Some(a) => Some(a),
            None => {
                return Ok(deferred(ProgramError::Reloc(format!(
                    "struct_ops program '{}' is not referenced by any struct_ops map (EINVAL)",
                    p.name
                ))))
            }
        }
    } else {
        None
    };
    Ok(Plan {
        def: Some(def),
        attach,
        fd_array,
        struct_ops,
        deferred: None,
    })
}

/// What every program load of one object shares (read by all loading threads at once).
pub(crate) struct LoadCtx<'a> {
    pub obj: &'a Object,
    pub features: &'a Features,
    pub token: Option<BorrowedFd<'a>>,
    /// The object's BTF in the kernel, if it loaded.
    pub btf: Option<BorrowedFd<'a>>,
    /// `.rodata` maps, bound to each program.
    pub rodata: &'a [BorrowedFd<'a>],
    pub log: &'a LogOptions,
    /// The license as `BPF_PROG_LOAD` wants it (made once, not per program).
    pub license: CString,
}

/// The kernel part of a program load (safe to run on several threads at once).
// Out of line: smaller code where it was inlined (issue 8: binary size).
#[inline(never)]
pub(crate) fn load_program(
    ctx: &LoadCtx<'_>,
    l: &Linked,
    plan: &Plan<'_>,
) -> Result<OwnedFd, ProgramError> {
    let LoadCtx {
        obj,
        features,
        token,
        btf,
        rodata,
        log,
        ref license,
    } = *ctx;
    let p = &obj.programs[l.prog];
    if let Some(e) = &plan.deferred {
        return Err(e.clone());
    }
    let Some(def) = plan.def else {
        return Err(ProgramError::UnknownSection {
            section: p.sec_name().to_string(),
        });
    };
    let attach = plan.attach;
    let fd_array = &plan.fd_array;
    let struct_ops = plan.struct_ops;
    // libbpf_prepare_prog_load.
    let mut expected_attach_type = def.expected_attach_type;
    if def.flags & SEC_EXP_ATTACH_OPT != 0 && !features.has(Feature::ExpAttachType) {
        expected_attach_type = 0;
    }
    let mut prog_flags = 0;
    if def.flags & SEC_SLEEPABLE != 0 {
        prog_flags |= BPF_F_SLEEPABLE;
    }
    if def.prog_type == pt::BPF_PROG_TYPE_XDP as u32 && def.flags & SEC_XDP_FRAGS != 0 {
        prog_flags |= BPF_F_XDP_HAS_FRAGS;
    }
    if def.flags & SEC_USDT != 0 && features.has(Feature::UprobeMultiLink) {
        expected_attach_type = at::BPF_TRACE_UPROBE_MULTI as u32;
    }

    let insns = insn::to_uapi(&l.insns);
    let mut attr = ProgLoadAttr {
        prog_type: def.prog_type,
        expected_attach_type,
        insns: &insns,
        license,
        kern_version: obj.kern_version.unwrap_or_else(host_kern_version),
        prog_flags,
        name: features.has(Feature::ProgName).then_some(p.name.as_str()),
        token,
        ..Default::default()
    };
    if let Some(a) = struct_ops {
        attr.attach_btf_id = a.attach_btf_id;
        attr.expected_attach_type = a.member_idx;
    }
    if let Some((btf_id, obj_fd, prog_fd)) = attach {
        attr.attach_btf_id = btf_id;
        attr.attach_btf_obj_fd = obj_fd;
        attr.attach_prog_fd = prog_fd;
    }
    if !fd_array.is_empty() {
        attr.fd_array = Some(fd_array);
    }
    if let Some(btf) = btf.filter(|_| features.has(Feature::BtfFunc)) {
        attr.btf_fd = Some(btf);
        if let Some(fi) = &l.func_info {
            attr.func_info = &fi.data;
            attr.func_info_rec_size = fi.rec_size;
        }
        if let Some(li) = &l.line_info {
            attr.line_info = &li.data;
            attr.line_info_rec_size = li.rec_size;
        }
    }
    let fd = prog::load(&attr, log).map_err(|source| {
        // EPERM despite a token: name the delegation that was missing.
        let hint =
            (token.is_some() && source.errno() == bpfload_syscall::Errno::EPERM).then(|| {
                let need = crate::diagnose::ProgNeed {
                    name: p.name.clone(),
                    prog_type: def.prog_type,
                    expected_attach_type: attr.expected_attach_type,
                    struct_ops_member: struct_ops.map(|a| format!("#{}", a.member_idx)),
                };
                crate::diagnose::explain_eperm(
                    crate::diagnose::EpermSubject::Program(&need),
                    features.delegation(),
                    crate::diagnose::names(),
                )
            });
        // No token in a user namespace: a token is what is missing.
        let hint = hint.or_else(|| {
            (token.is_none() && source.errno() == bpfload_syscall::Errno::EPERM)
                .then(crate::diagnose::no_token_hint)
                .flatten()
        });
        // Or the verifier needed the object BTF that the token kept out.
        let hint = hint.or_else(|| {
            token.and(crate::diagnose::btf_hint(
                btf.is_some(),
                features.delegation(),
                source.log(),
            ))
        });
        ProgramError::Kernel { source, hint }
    })?;

    // Keep .rodata alive and inspectable with the program (a failure is only a warning in libbpf).
    if !rodata.is_empty() && features.has(Feature::ProgBindMap) {
        for m in rodata {
            if let Err(e) = prog::bind_map(fd.as_fd(), *m) {
                log::warn!("prog '{}': failed to bind a .rodata map: {e}", p.name);
            }
        }
    }
    Ok(fd)
}

/// Runs jobs on up to `threads` threads while the caller produces them (a pipeline: the caller
/// prepares job `i + 1` while job `i` runs). Jobs run in the order they are submitted, so when
/// `stop_on_error` is set and a job fails, every job submitted before it ran: the first failure
/// in submission order is the one a serial run finds. With one thread every job runs on the
/// calling thread, at submission.
///
/// `produce` submits jobs through the [`Submit`] it is given, each with its index below `n`;
/// `run` returns a job's result and whether it failed. The results are indexed like the jobs,
/// `None` for indexes that never ran.
pub(crate) fn pipeline<J, R>(
    threads: usize,
    n: usize,
    stop_on_error: bool,
    produce: impl FnOnce(&mut Submit<'_, J, R>),
    run: impl Fn(J) -> (R, bool) + Sync,
) -> Vec<Option<R>>
where
    J: Send,
    R: Send,
{
    let threads = threads.clamp(1, n.max(1));
    let mut out: Vec<Option<R>> = Vec::new();
    out.resize_with(n, || None);
    if threads == 1 {
        let mut submit = Submit {
            inner: SubmitInner::Inline {
                run: &run,
                out: &mut out,
            },
            stop_on_error,
            stopped: false,
        };
        produce(&mut submit);
        return out;
    }
    let shared = Shared {
        state: Mutex::new(State {
            queue: VecDeque::with_capacity(QUEUE_PER_THREAD * threads),
            closed: false,
            stopped: false,
            producer_waiting: false,
            idle_workers: 0,
        }),
        work: Condvar::new(),
        space: Condvar::new(),
        cap: QUEUE_PER_THREAD * threads,
        out: Mutex::new(out),
    };
    std::thread::scope(|s| {
        // Made before any worker starts: whatever happens below (a panic in `produce`, a
        // thread that cannot start), the workers that did start end and the scope can join.
        let close = CloseOnDrop(&shared);
        // A thread the system refuses (EAGAIN under a pids or RLIMIT_NPROC limit, ENOMEM)
        // leaves the load to the workers that started, or to the calling thread: a limit on
        // threads makes the load slower, never failed or hung.
        let mut started = 0;
        for _ in 0..threads {
            let worker = std::thread::Builder::new()
                .spawn_scoped(s, || shared.work_loop(&run, stop_on_error));
            match worker {
                Ok(_) => started += 1,
                Err(e) => {
                    log::debug!(
                        "loading thread {} of {threads} could not start ({e}); \
                         loading on {started} threads",
                        started + 1
                    );
                    break;
                }
            }
        }
        let mut out = (started == 0).then(|| shared.out.lock().unwrap_or_else(|p| p.into_inner()));
        let mut submit = Submit {
            inner: match &mut out {
                Some(out) => SubmitInner::Inline { run: &run, out },
                None => SubmitInner::Queue(&shared),
            },
            stop_on_error,
            stopped: false,
        };
        produce(&mut submit);
        drop(close);
    });
    shared.out.into_inner().unwrap_or_else(|p| p.into_inner())
}

/// Jobs waiting per loading thread: enough that a worker never waits for the producer and the
/// producer sleeps rarely (every wake-up is a context switch on a CPU that verifies), few enough
/// that prepared programs (instructions, func/line info) do not pile up in memory.
const QUEUE_PER_THREAD: usize = 32;

/// The producer's handle of a [`pipeline`].
pub(crate) struct Submit<'a, J, R> {
    inner: SubmitInner<'a, J, R>,
    stop_on_error: bool,
    stopped: bool,
}

enum SubmitInner<'a, J, R> {
    Inline {
        run: &'a (dyn Fn(J) -> (R, bool) + Sync),
        out: &'a mut Vec<Option<R>>,
    },
    Queue(&'a Shared<J, R>),
}

impl<J, R> Submit<'_, J, R> {
    /// Queues job `idx` (runs it, with one thread). `false` if jobs no longer run (a job
    /// failed with `stop_on_error`, or [`stop`](Self::stop) was called): `job` is dropped.
    pub fn submit(&mut self, idx: usize, job: J) -> bool {
        if self.stopped {
            return false;
        }
        match &mut self.inner {
            SubmitInner::Inline { run, out } => {
                let (r, failed) = run(job);
                if failed && self.stop_on_error {
                    self.stopped = true;
                }
                out[idx] = Some(r);
                true
            }
            SubmitInner::Queue(shared) => {
                let mut st = shared.lock();
                while st.queue.len() >= shared.cap && !st.stopped {
                    st.producer_waiting = true;
                    st = shared.space.wait(st).unwrap_or_else(|p| p.into_inner());
                }
                st.producer_waiting = false;
                if st.stopped {
                    self.stopped = true;
                    return false;
                }
                st.queue.push_back((idx, job));
                // Waking costs a system call: only when a worker sleeps.
                let wake = st.idle_workers > 0;
                drop(st);
                if wake {
                    shared.work.notify_one();
                }
                true
            }
        }
    }

    /// No further job runs; queued jobs are dropped, running ones finish.
    pub fn stop(&mut self) {
        self.stopped = true;
        if let SubmitInner::Queue(shared) = &self.inner {
            shared.stop();
        }
    }
}

struct State<J> {
    queue: VecDeque<(usize, J)>,
    closed: bool,
    stopped: bool,
    producer_waiting: bool,
    /// Workers waiting for a job.
    idle_workers: usize,
}

struct Shared<J, R> {
    state: Mutex<State<J>>,
    /// Workers wait here for a job (or the end).
    work: Condvar,
    /// The producer waits here for room in the queue.
    space: Condvar,
    cap: usize,
    out: Mutex<Vec<Option<R>>>,
}

impl<J, R> Shared<J, R> {
    fn lock(&self) -> std::sync::MutexGuard<'_, State<J>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stop(&self) {
        let dropped = {
            let mut st = self.lock();
            st.stopped = true;
            std::mem::take(&mut st.queue)
        };
        drop(dropped);
        self.work.notify_all();
        self.space.notify_all();
    }

    fn work_loop(&self, run: &(impl Fn(J) -> (R, bool) + Sync), stop_on_error: bool) {
        // A worker that panics stops the pipeline, so the producer never waits for room that
        // no worker will make (the scope then re-raises the panic).
        let _stop_on_panic = StopOnPanic(self);
        loop {
            let (idx, job) = {
                let mut st = self.lock();
                loop {
                    if st.stopped {
                        return;
                    }
                    if let Some(j) = st.queue.pop_front() {
                        // Wake the producer once most of the queue is free, not after every job.
                        if st.producer_waiting && st.queue.len() <= self.cap / 4 {
                            st.producer_waiting = false;
                            self.space.notify_one();
                        }
                        break j;
                    }
                    if st.closed {
                        return;
                    }
                    st.idle_workers += 1;
                    st = self.work.wait(st).unwrap_or_else(|p| p.into_inner());
                    st.idle_workers -= 1;
                }
            };
            let (r, failed) = run(job);
            if failed && stop_on_error {
                self.stop();
            }
            self.out.lock().unwrap_or_else(|p| p.into_inner())[idx] = Some(r);
        }
    }
}

struct StopOnPanic<'a, J, R>(&'a Shared<J, R>);

impl<J, R> Drop for StopOnPanic<'_, J, R> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.stop();
        }
    }
}

struct CloseOnDrop<'a, J, R>(&'a Shared<J, R>);

impl<J, R> Drop for CloseOnDrop<'_, J, R> {
    fn drop(&mut self) {
        // A producer that panics stops the queued jobs too: the load is failing, and each of
        // them would cost a verification whose program nobody gets.
        if std::thread::panicking() {
            self.0.stop();
            return;
        }
        self.0.lock().closed = true;
        self.0.work.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::pipeline;

    /// Submits 0..200 (skipping multiples of 11, as a producer skips programs it could not
    /// prepare); job i fails when `fails(i)`.
    fn run(
        threads: usize,
        stop_on_error: bool,
        fails: impl Fn(u32) -> bool + Sync,
    ) -> (Vec<Option<Result<u32, u32>>>, Vec<bool>) {
        let mut accepted = vec![false; 200];
        let out = pipeline(
            threads,
            200,
            stop_on_error,
            |submit| {
                for i in (0..200u32).filter(|i| !i.is_multiple_of(11)) {
                    accepted[i as usize] = submit.submit(i as usize, i);
                }
            },
            |i| {
                let r = if fails(i) { Err(i) } else { Ok(i * 2) };
                let failed = r.is_err();
                (r, failed)
            },
        );
        (out, accepted)
    }

    #[test]
    fn pipelined_results_keep_job_order_and_first_error() {
        for threads in [1, 2, 4] {
            let (r, accepted) = run(threads, false, |i| i % 7 == 3);
            assert_eq!(r.len(), 200);
            for (i, x) in r.iter().enumerate() {
                let i = i as u32;
                let want = if i.is_multiple_of(11) {
                    None
                } else if i % 7 == 3 {
                    Some(Err(i))
                } else {
                    Some(Ok(i * 2))
                };
                assert_eq!(x.as_ref(), want.as_ref(), "threads {threads}, job {i}");
                assert_eq!(accepted[i as usize], !i.is_multiple_of(11));
            }
            // Stop on error: everything submitted before the first failure ran, and nothing
            // is accepted once the producer has seen the stop.
            let (r, accepted) = run(threads, true, |i| i == 50 || i == 120);
            for i in (0..50usize).filter(|i| !i.is_multiple_of(11)) {
                assert_eq!(r[i], Some(Ok(i as u32 * 2)), "threads {threads}, job {i}");
            }
            assert_eq!(r[50], Some(Err(50)));
            let submitted = || (0..200usize).filter(|i| !i.is_multiple_of(11));
            if let Some(first_refused) = submitted().find(|&i| !accepted[i]) {
                assert!(first_refused > 50);
                assert!(submitted()
                    .filter(|&i| i >= first_refused)
                    .all(|i| !accepted[i] && r[i].is_none()));
            }
            if threads == 1 {
                assert!(r[51..].iter().all(Option::is_none));
            }
        }
    }

    /// Workers that panic end the pipeline (the panic reaches the caller) instead of leaving
    /// the producer waiting forever for queue room that no worker will make.
    #[test]
    fn panicking_workers_do_not_hang_the_producer() {
        let r = std::panic::catch_unwind(|| {
            pipeline(
                2,
                10_000,
                false,
                |submit| {
                    for i in 0..10_000 {
                        submit.submit(i, i);
                    }
                },
                |i| {
                    assert!(i < 3, "jobs from 3 on panic");
                    (i, false)
                },
            )
        });
        assert!(r.is_err());
    }

    #[test]
    fn a_stopping_producer_runs_nothing_more() {
        for threads in [1, 3] {
            let out = pipeline(
                threads,
                10,
                true,
                |submit| {
                    assert!(submit.submit(0, 0u32));
                    submit.stop();
                    assert!(!submit.submit(1, 1));
                },
                |i| (i, false),
            );
            assert!(out[1..].iter().all(Option::is_none));
        }
    }

    /// A producer that panics (the load is failing) stops the jobs still queued: each would
    /// cost a verification whose program nobody gets. Jobs already running finish.
    #[test]
    fn a_panicking_producer_drops_the_queued_jobs() {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let (ran, unwinding) = (AtomicUsize::new(0), AtomicBool::new(false));
        // Set while the producer unwinds (after the panic hook, whatever it prints), just
        // before the pipeline sees the panic.
        struct Unwinding<'a>(&'a AtomicBool);
        impl Drop for Unwinding<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let r = std::panic::catch_unwind(|| {
            pipeline(
                2,
                64,
                false,
                |submit| {
                    let _unwinding = Unwinding(&unwinding);
                    for i in 0..64 {
                        submit.submit(i, i);
                    }
                    panic!("the producer fails after queueing 64 jobs");
                },
                |i| {
                    // The first jobs wait for the panic, so that the queue is full when it
                    // comes; every job then takes a few ms.
                    while !unwinding.load(Ordering::SeqCst) {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    ran.fetch_add(1, Ordering::Relaxed);
                    (i, false)
                },
            )
        });
        assert!(r.is_err());
        // The two jobs the workers held, and at most one more each taken in the moment
        // between the unwinding flag and the stop (all 64 ran before).
        let ran = ran.into_inner();
        assert!(
            ran <= 4,
            "{ran} of 64 queued jobs ran after the producer panicked"
        );
    }

    /// Child side of [`a_thread_limit_loads_on_the_threads_that_start`], run under
    /// `RLIMIT_NPROC` as an unprivileged user: pipelines of 2 to 8 threads give what a serial
    /// run gives, whether no worker, or only some, could start.
    #[test]
    #[ignore = "child of a_thread_limit_loads_on_the_threads_that_start (runs under a thread limit)"]
    fn child_pipeline_under_a_thread_limit() {
        let nproc: u32 = std::env::var("BPFLOAD_THREAD_LIMIT_CHILD")
            .expect("run only by a_thread_limit_loads_on_the_threads_that_start")
            .parse()
            .unwrap();
        if nproc == 1 {
            // The limit is real: not even one more thread.
            assert!(std::thread::Builder::new().spawn(|| ()).is_err());
        }
        let fails = |i: u32| i % 7 == 3;
        let (serial, serial_accepted) = run(1, false, fails);
        let (serial_stop, _) = run(1, true, |i| i == 50 || i == 120);
        for threads in [2, 4, 8] {
            assert_eq!(
                run(threads, false, fails),
                (serial.clone(), serial_accepted.clone())
            );
            let (r, _) = run(threads, true, |i| i == 50 || i == 120);
            assert_eq!(r[..=50], serial_stop[..=50], "{threads} threads");
        }
        println!("thread-limit child ok (RLIMIT_NPROC {nproc})");
    }

    /// A process that may not start threads (a pids cgroup, `RLIMIT_NPROC` of an
    /// unprivileged user, memory) loads on the threads that did start, or on the calling
    /// thread; it neither fails nor hangs. (Before: the first refused thread panicked, and
    /// after a partial start the workers waited forever for a queue nobody closed.) The child
    /// runs as `nobody` under `RLIMIT_NPROC` 1 (no thread starts) and 3 (some do).
    #[test]
    fn a_thread_limit_loads_on_the_threads_that_start() {
        if !crate::tests::fixtures::require_root("thread-limit pipeline (switches to nobody)") {
            return;
        }
        let exe = std::env::current_exe().unwrap();
        for nproc in [1, 3] {
            let mut child = std::process::Command::new("prlimit")
                .arg(format!("--nproc={nproc}:{nproc}"))
                .args([
                    "setpriv",
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    "--",
                ])
                .arg(&exe)
                .args([
                    "--ignored",
                    "--exact",
                    "load::tests::child_pipeline_under_a_thread_limit",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("BPFLOAD_THREAD_LIMIT_CHILD", nproc.to_string())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("prlimit and setpriv (util-linux)");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while child.try_wait().unwrap().is_none() {
                if std::time::Instant::now() > deadline {
                    child.kill().unwrap();
                    panic!("RLIMIT_NPROC {nproc}: the pipeline hung");
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            let out = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && stdout.contains("thread-limit child ok"),
                "RLIMIT_NPROC {nproc}: {}\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
