//! How each feature is decided: which probes to try (libbpf's first), in which order under a
//! token, what their errors mean, and when to fall back to kernel BTF.
//!
//! Rules:
//! - Without a token the cache does exactly libbpf's probe (same program/map type, same test).
//! - With a token, a probe is tried with each candidate program/map type the token delegates
//!   (learnt from the token), then with libbpf's own type (the caller may have real capabilities,
//!   in which case the kernel ignores the token and the probe still works).
//! - EPERM/EACCES mean "not permitted": the next candidate is tried and, if none decides, the
//!   answer is Unknown (never Missing).
//! - A failure is conclusive (Missing) only for libbpf's own probe, or for a candidate whose test
//!   does not depend on the program type (BTF blobs, map flags, `BPF_PROG_BIND_MAP`, the
//!   `ld_imm64` offset check which runs before the verifier walks the program). A substitute
//!   program type that fails is inconclusive: the failure may be about that type.
//! - Token caches then fall back to the running kernel's BTF ([`crate::kernel_facts`]).

use aya_obj::generated::{
    bpf_attach_type as A, bpf_cmd, bpf_func_id as H, bpf_map_type as M, bpf_prog_type as P,
    BPF_F_MMAPABLE,
};

use crate::blobs;
use crate::cache::Probes;
use crate::delegation::Delegation;
use crate::feature::Feature;
use crate::insn::{self, R0, R1, R10, R2, R3};
use crate::kernel_facts;
use crate::ops::{self, ProgSpec};
use crate::result::{FeatureResult, Method, Support};
use crate::Errno;

/// Linux's internal ENOTSUPP, returned by some BPF paths.
const ENOTSUPP: i32 = 524;

/// What one probe attempt said.
#[derive(Debug)]
pub(crate) enum Outcome {
    Yes,
    /// The kernel rejected the feature (conclusive only if the candidate is).
    No(Option<Errno>, Option<String>),
    /// EPERM/EACCES: not permitted with this token/privileges.
    NotPermitted(Errno),
    /// Some other failure that says nothing about the feature.
    Inconclusive(Option<Errno>, String),
}

/// Classifies a failed syscall of a probe.
pub(crate) fn classify(e: Errno) -> Outcome {
    if e == Errno::EPERM || e == Errno::EACCES {
        Outcome::NotPermitted(e)
    } else if e == Errno::EINVAL
        || e == Errno::E2BIG
        || e == Errno::EOPNOTSUPP
        || e.raw() == ENOTSUPP
    {
        Outcome::No(Some(e), None)
    } else {
        Outcome::Inconclusive(Some(e), format!("unexpected {}", e.name()))
    }
}

/// Failure to create a helper object (map, BTF) that the test itself is not about.
fn setup_failure(what: &str, e: Errno) -> Outcome {
    match classify(e) {
        Outcome::NotPermitted(e) => Outcome::NotPermitted(e),
        _ => Outcome::Inconclusive(Some(e), format!("{what} failed: {}", e.name())),
    }
}

/// How a candidate program type treats `expected_attach_type`.
#[derive(Debug, Copy, Clone)]
enum Attach {
    /// The kernel does not validate it for this type; libbpf's value first, else any delegated.
    Ignored(A),
    /// Must be one of these (first = libbpf's choice).
    OneOf(&'static [A]),
}

#[derive(Debug, Copy, Clone)]
struct ProgCand {
    ty: P,
    attach: Attach,
}

/// One way to run a feature's probe.
#[derive(Debug, Copy, Clone)]
struct Cand {
    prog: Option<ProgCand>,
    map: Option<M>,
    btf: bool,
    /// libbpf's own probe (used without a token; its failure is conclusive).
    libbpf: bool,
    /// Failure is conclusive even though it is not libbpf's exact probe.
    type_independent: bool,
}

/// A candidate resolved against the delegation: concrete attach type.
#[derive(Debug, Copy, Clone)]
struct Resolved {
    cand: Cand,
    attach: A,
    delegated: bool,
}

impl Resolved {
    fn conclusive(&self) -> bool {
        self.cand.type_independent
            || (self.cand.libbpf
                && match self.cand.prog.map(|p| p.attach) {
                    None => true,
                    Some(Attach::Ignored(a)) => a as u32 == self.attach as u32,
                    Some(Attach::OneOf(l)) => {
                        l.first().map(|a| *a as u32) == Some(self.attach as u32)
                    }
                })
    }

    fn method(&self, token: bool) -> Method {
        Method::Probe {
            prog_type: self.cand.prog.map(|p| p.ty),
            map_type: self.cand.map,
            btf: self.cand.btf,
            token,
        }
    }

    fn prog(&self) -> P {
        self.cand
            .prog
            .map(|p| p.ty)
            .unwrap_or(P::BPF_PROG_TYPE_UNSPEC)
    }
}

/// The attach type for bit `v`, if it is one we may pick for a type that ignores it.
fn attach_from_u32(v: u32) -> Option<A> {
    ATTACH_TYPES.iter().copied().find(|a| *a as u32 == v)
}

/// The attach types we may pick for types that ignore `expected_attach_type`: ones that do not
/// change what the verifier allows for XDP/kprobe/socket filters etc.
const ATTACH_TYPES: &[A] = &[
    A::BPF_CGROUP_INET_INGRESS,
    A::BPF_CGROUP_INET_EGRESS,
    A::BPF_CGROUP_INET_SOCK_CREATE,
    A::BPF_CGROUP_SOCK_OPS,
    A::BPF_SK_SKB_STREAM_PARSER,
    A::BPF_SK_SKB_STREAM_VERDICT,
    A::BPF_CGROUP_DEVICE,
    A::BPF_SK_MSG_VERDICT,
    A::BPF_XDP,
    A::BPF_PERF_EVENT,
];

fn resolve(c: Cand, d: Option<&Delegation>) -> Resolved {
    let attach = match c.prog {
        None => A::BPF_CGROUP_INET_INGRESS,
        Some(ProgCand {
            ty,
            attach: Attach::Ignored(pref),
        }) => match d {
            // Only worth deviating from libbpf's value when the program type is delegated.
            Some(d)
                if d.progs & (1u64 << (ty as u32)) != 0
                    && !d.allows_prog(ty as u32, pref as u32) =>
            {
                (0..64)
                    .filter(|b| d.attachs & (1u64 << b) != 0)
                    .find_map(attach_from_u32)
                    .unwrap_or(pref)
            }
            _ => pref,
        },
        Some(ProgCand {
            ty,
            attach: Attach::OneOf(list),
        }) => d
            .and_then(|d| {
                list.iter()
                    .copied()
                    .find(|a| d.allows_prog(ty as u32, *a as u32))
            })
            .unwrap_or(list[0]),
    };
    let delegated = match d {
        None => false,
        Some(d) => {
            c.prog.is_none_or(|p| {
                d.allows_cmd(bpf_cmd::BPF_PROG_LOAD as u32)
                    && d.allows_prog(p.ty as u32, attach as u32)
            }) && c.map.is_none_or(|m| {
                d.allows_cmd(bpf_cmd::BPF_MAP_CREATE as u32) && d.allows_map(m as u32)
            }) && (!c.btf || d.allows_cmd(bpf_cmd::BPF_BTF_LOAD as u32))
        }
    };
    Resolved {
        cand: c,
        attach,
        delegated,
    }
}

/// Candidates in the order to try them for this cache.
fn order(cands: &[Cand], token: bool, d: Option<&Delegation>) -> Vec<Resolved> {
    if !token {
        return cands
            .iter()
            .filter(|c| c.libbpf)
            .map(|&c| resolve(c, None))
            .collect();
    }
    let resolved: Vec<Resolved> = cands.iter().map(|&c| resolve(c, d)).collect();
    if d.is_none() {
        // Delegation unknown: try everything, libbpf's first.
        return resolved;
    }
    let mut out: Vec<Resolved> = resolved.iter().copied().filter(|r| r.delegated).collect();
    // libbpf's own probe last: works if the caller has real capabilities.
    out.extend(
        resolved
            .iter()
            .copied()
            .filter(|r| !r.delegated && r.cand.libbpf),
    );
    out
}

struct Ctx<'a> {
    probes: &'a Probes,
}

impl Ctx<'_> {
    fn token(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.probes.token()
    }
}

/// Runs the feature's candidates and falls back to kernel BTF (token caches only).
fn run(
    ctx: &Ctx<'_>,
    feature: Feature,
    cands: &[Cand],
    mut probe: impl FnMut(&Ctx<'_>, &Resolved) -> Outcome,
) -> FeatureResult {
    // One copy of the candidate loop for every feature, not one per probe closure: this is
    // the static `bpfload` binary's largest function otherwise (issue 8's size target).
    run_dyn(ctx, feature, cands, &mut probe)
}

fn run_dyn(
    ctx: &Ctx<'_>,
    feature: Feature,
    cands: &[Cand],
    probe: &mut dyn FnMut(&Ctx<'_>, &Resolved) -> Outcome,
) -> FeatureResult {
    let token = ctx.token().is_some();
    let deleg = if token {
        ctx.probes.delegation().map(|(d, _)| *d)
    } else {
        None
    };
    let mut last_errno = None;
    let mut notes: Vec<String> = Vec::new();
    for r in order(cands, token, deleg.as_ref()) {
        let method = r.method(token);
        match probe(ctx, &r) {
            Outcome::Yes => {
                return FeatureResult {
                    feature,
                    support: Support::Supported,
                    method,
                    errno: None,
                    // Earlier candidates that could not decide, if any.
                    note: (!notes.is_empty()).then(|| notes.join("; ")),
                };
            }
            Outcome::No(errno, note) if r.conclusive() => {
                return FeatureResult {
                    feature,
                    support: Support::Missing,
                    method,
                    errno,
                    note,
                }
            }
            Outcome::No(errno, note) => {
                last_errno = errno.or(last_errno);
                notes.push(format!(
                    "{method}: rejected ({}){}",
                    errno.map_or("no errno", |e| e.name()),
                    note.map(|n| format!(": {n}")).unwrap_or_default()
                ));
            }
            Outcome::NotPermitted(e) => {
                last_errno = Some(e);
                notes.push(format!("{method}: not permitted ({})", e.name()));
            }
            Outcome::Inconclusive(errno, why) => {
                last_errno = errno.or(last_errno);
                notes.push(format!("{method}: {why}"));
            }
        }
    }
    if token {
        if let Some((support, evidence)) = kernel_facts::decide(feature) {
            return FeatureResult {
                feature,
                support,
                method: Method::KernelBtf(evidence),
                errno: last_errno,
                note: (!notes.is_empty()).then(|| notes.join("; ")),
            };
        }
        notes.push("no kernel BTF evidence".to_string());
    }
    FeatureResult {
        feature,
        support: Support::Unknown,
        method: Method::Undecided,
        errno: last_errno,
        note: (!notes.is_empty()).then(|| notes.join("; ")),
    }
}

const fn prog(ty: P, attach: Attach) -> Option<ProgCand> {
    Some(ProgCand { ty, attach })
}

const fn ign(ty: P, a: A) -> Option<ProgCand> {
    prog(ty, Attach::Ignored(a))
}

const NO_ATTACH: A = A::BPF_CGROUP_INET_INGRESS;

const fn cand(prog: Option<ProgCand>, map: Option<M>, btf: bool, libbpf: bool) -> Cand {
    Cand {
        prog,
        map,
        btf,
        libbpf,
        type_independent: false,
    }
}

const fn indep(c: Cand) -> Cand {
    Cand {
        type_independent: true,
        ..c
    }
}

/// Program types any trivial program loads as (libbpf's SOCKET_FILTER first).
const TRIVIAL_PROGS: [Option<ProgCand>; 6] = [
    ign(P::BPF_PROG_TYPE_SOCKET_FILTER, NO_ATTACH),
    ign(P::BPF_PROG_TYPE_XDP, A::BPF_XDP),
    ign(P::BPF_PROG_TYPE_SCHED_CLS, NO_ATTACH),
    ign(P::BPF_PROG_TYPE_TRACEPOINT, NO_ATTACH),
    ign(P::BPF_PROG_TYPE_KPROBE, NO_ATTACH),
    prog(
        P::BPF_PROG_TYPE_CGROUP_SKB,
        Attach::OneOf(&[A::BPF_CGROUP_INET_INGRESS, A::BPF_CGROUP_INET_EGRESS]),
    ),
];

fn trivial_cands(map: Option<M>) -> Vec<Cand> {
    TRIVIAL_PROGS
        .iter()
        .enumerate()
        .map(|(i, p)| cand(*p, map, false, i == 0))
        .collect()
}

fn btf_only() -> [Cand; 1] {
    [indep(cand(None, None, true, true))]
}

fn load(
    ctx: &Ctx<'_>,
    r: &Resolved,
    insns: &[aya_obj::generated::bpf_insn],
) -> Result<ops::Fd, Errno> {
    ops::prog_load(&ProgSpec {
        prog_type: r.prog(),
        expected_attach_type: r.attach,
        insns,
        name: None,
        btf: None,
        token: ctx.token(),
    })
    .map_err(|e| e.errno)
}

fn prog_outcome(res: Result<ops::Fd, Errno>) -> Outcome {
    match res {
        Ok(_) => Outcome::Yes,
        Err(e) => classify(e),
    }
}

fn btf_outcome(ctx: &Ctx<'_>, blob: Result<Vec<u8>, String>) -> Outcome {
    match blob {
        Err(e) => Outcome::Inconclusive(None, format!("building the probe BTF failed: {e}")),
        Ok(b) => match ops::btf_load(&b, ctx.token()) {
            Ok(_) => Outcome::Yes,
            Err(e) => classify(e),
        },
    }
}

/// The BTF features one combined blob can decide together.
pub(crate) const COMBINED_BTF: [Feature; 9] = [
    Feature::Btf,
    Feature::BtfFunc,
    Feature::BtfGlobalFunc,
    Feature::BtfDatasec,
    Feature::BtfQmarkDatasec,
    Feature::BtfFloat,
    Feature::BtfDeclTag,
    Feature::BtfTypeTag,
    Feature::BtfEnum64,
];

/// Fast path for the BTF kinds: one `BPF_BTF_LOAD` of a blob holding every kind libbpf probes
/// separately. The kernel validates each type, so if it accepts the blob every kind is supported
/// (one syscall instead of nine on current kernels). If it refuses, for whatever reason, nothing
/// is concluded and the per-kind probes (libbpf's blobs) decide. Runs at most once per cache.
fn combined_btf(ctx: &Ctx<'_>, feature: Feature) -> Option<FeatureResult> {
    if !COMBINED_BTF.contains(&feature) {
        return None;
    }
    let ok = *ctx.probes.combined_btf.get_or_init(|| {
        blobs::combined()
            .ok()
            .is_some_and(|b| ops::btf_load(&b, ctx.token()).is_ok())
    });
    if !ok {
        return None;
    }
    let result = |f| FeatureResult {
        feature: f,
        support: Support::Supported,
        method: Method::Probe {
            prog_type: None,
            map_type: None,
            btf: true,
            token: ctx.token().is_some(),
        },
        errno: None,
        note: Some("combined BTF probe: the kernel accepted every kind in one blob".into()),
    };
    for f in COMBINED_BTF {
        if f != feature {
            ctx.probes.offer(result(f));
        }
    }
    Some(result(feature))
}

/// Decides one feature for this cache (called with the feature's probe lock held).
pub(crate) fn decide(probes: &Probes, feature: Feature) -> FeatureResult {
    let ctx = Ctx { probes };
    let ctx = &ctx;
    if let Some(r) = combined_btf(ctx, feature) {
        return r;
    }
    match feature {
        Feature::ProgName => run(ctx, feature, &trivial_cands(None), |ctx, r| {
            prog_outcome(
                ops::prog_load(&ProgSpec {
                    prog_type: r.prog(),
                    expected_attach_type: r.attach,
                    insns: &insn::ret0(),
                    name: Some("bpfload_nametst"),
                    btf: None,
                    token: ctx.token(),
                })
                .map_err(|e| e.errno),
            )
        }),
        Feature::GlobalData => run(
            ctx,
            feature,
            &trivial_cands(Some(M::BPF_MAP_TYPE_ARRAY)),
            |ctx, r| {
                let map = match ops::map_create(M::BPF_MAP_TYPE_ARRAY, 4, 32, 1, 0, ctx.token()) {
                    Ok(m) => m,
                    Err(e) => return setup_failure("ARRAY map create", e),
                };
                let [l0, l1] = insn::ld_map_value(R1, ops::raw(&map), 16);
                let insns = [
                    l0,
                    l1,
                    insn::st_dw(R1, 0, 42),
                    insn::mov64_imm(R0, 0),
                    insn::exit(),
                ];
                prog_outcome(load(ctx, r, &insns))
            },
        ),
        Feature::Btf => run(ctx, feature, &btf_only(), |ctx, _| {
            btf_outcome(ctx, blobs::int())
        }),
        Feature::BtfFunc => run(ctx, feature, &btf_only(), |ctx, _| {
            btf_outcome(ctx, blobs::func(false))
        }),
        Feature::BtfGlobalFunc => run(ctx, feature, &btf_only(), |ctx, _| {
            btf_outcome(ctx, blobs::func(true))
        }),
        Feature::BtfDatasec => run(ctx, feature, &btf_only(), |ctx, _| {
            btf_outcome(ctx, blobs::datasec(".data"))
        }),
        Feature::BtfQmarkDatasec => run(ctx, feature, &btf_only(), |ctx, _| {
            btf_outcome(ctx, blobs::datasec("?.data"))
        }),
        Feature::BtfFloat => run(ctx, feature, &btf_only(), |ctx, _| {
            btf_outcome(ctx, blobs::float())
        }),
        Feature::BtfDeclTag => run(ctx, feature, &btf_only(), |ctx, _| {
            btf_outcome(ctx, blobs::decl_tag())
        }),
        Feature::BtfTypeTag => run(ctx, feature, &btf_only(), |ctx, _| {
            btf_outcome(ctx, blobs::type_tag())
        }),
        Feature::BtfEnum64 => run(ctx, feature, &btf_only(), |ctx, _| {
            btf_outcome(ctx, blobs::enum64())
        }),
        Feature::ArrayMmap => run(
            ctx,
            feature,
            &[indep(cand(None, Some(M::BPF_MAP_TYPE_ARRAY), false, true))],
            |ctx, _| match ops::map_create(
                M::BPF_MAP_TYPE_ARRAY,
                4,
                4,
                1,
                BPF_F_MMAPABLE,
                ctx.token(),
            ) {
                Ok(_) => Outcome::Yes,
                Err(e) => classify(e),
            },
        ),
        Feature::ExpAttachType => {
            const SOCK: &[A] = &[
                A::BPF_CGROUP_INET_SOCK_CREATE,
                A::BPF_CGROUP_INET4_POST_BIND,
                A::BPF_CGROUP_INET6_POST_BIND,
                A::BPF_CGROUP_INET_SOCK_RELEASE,
            ];
            const SOCK_ADDR: &[A] = &[
                A::BPF_CGROUP_INET4_BIND,
                A::BPF_CGROUP_INET6_BIND,
                A::BPF_CGROUP_INET4_CONNECT,
                A::BPF_CGROUP_INET6_CONNECT,
                A::BPF_CGROUP_UDP4_SENDMSG,
                A::BPF_CGROUP_UDP6_SENDMSG,
            ];
            let cands = [
                cand(
                    prog(P::BPF_PROG_TYPE_CGROUP_SOCK, Attach::OneOf(SOCK)),
                    None,
                    false,
                    true,
                ),
                cand(
                    prog(P::BPF_PROG_TYPE_CGROUP_SOCK_ADDR, Attach::OneOf(SOCK_ADDR)),
                    None,
                    false,
                    false,
                ),
                cand(
                    prog(
                        P::BPF_PROG_TYPE_CGROUP_SKB,
                        Attach::OneOf(&[A::BPF_CGROUP_INET_EGRESS]),
                    ),
                    None,
                    false,
                    false,
                ),
                cand(
                    prog(
                        P::BPF_PROG_TYPE_SK_LOOKUP,
                        Attach::OneOf(&[A::BPF_SK_LOOKUP]),
                    ),
                    None,
                    false,
                    false,
                ),
            ];
            run(ctx, feature, &cands, |ctx, r| {
                prog_outcome(load(ctx, r, &insn::ret0()))
            })
        }
        Feature::ProbeReadKern => {
            let cands = helper_cands(&[
                (P::BPF_PROG_TYPE_TRACEPOINT, NO_ATTACH),
                (P::BPF_PROG_TYPE_KPROBE, NO_ATTACH),
                (P::BPF_PROG_TYPE_RAW_TRACEPOINT, NO_ATTACH),
                (P::BPF_PROG_TYPE_PERF_EVENT, NO_ATTACH),
                (P::BPF_PROG_TYPE_XDP, A::BPF_XDP),
                (P::BPF_PROG_TYPE_SCHED_CLS, NO_ATTACH),
                (P::BPF_PROG_TYPE_SOCKET_FILTER, NO_ATTACH),
            ]);
            run(ctx, feature, &cands, |ctx, r| {
                let insns = [
                    insn::mov64_reg(R1, R10),
                    insn::add64_imm(R1, -8),
                    insn::mov64_imm(R2, 8),
                    insn::mov64_imm(R3, 0),
                    insn::call_helper(H::BPF_FUNC_probe_read_kernel as u32),
                    insn::mov64_imm(R0, 0),
                    insn::exit(),
                ];
                prog_outcome(load(ctx, r, &insns))
            })
        }
        Feature::MemcgAccount => {
            let cands = helper_cands(&[
                (P::BPF_PROG_TYPE_SOCKET_FILTER, NO_ATTACH),
                (P::BPF_PROG_TYPE_XDP, A::BPF_XDP),
                (P::BPF_PROG_TYPE_SCHED_CLS, NO_ATTACH),
                (P::BPF_PROG_TYPE_TRACEPOINT, NO_ATTACH),
                (P::BPF_PROG_TYPE_KPROBE, NO_ATTACH),
            ]);
            run(ctx, feature, &cands, |ctx, r| {
                let insns = [
                    insn::call_helper(H::BPF_FUNC_ktime_get_coarse_ns as u32),
                    insn::mov64_imm(R0, 0),
                    insn::exit(),
                ];
                prog_outcome(load(ctx, r, &insns))
            })
        }
        Feature::BpfCookie => {
            let cands = helper_cands(&[
                (P::BPF_PROG_TYPE_TRACEPOINT, NO_ATTACH),
                (P::BPF_PROG_TYPE_KPROBE, NO_ATTACH),
                (P::BPF_PROG_TYPE_PERF_EVENT, NO_ATTACH),
            ]);
            run(ctx, feature, &cands, |ctx, r| {
                // r1 still holds the context, which bpf_get_attach_cookie takes.
                let insns = [
                    insn::call_helper(H::BPF_FUNC_get_attach_cookie as u32),
                    insn::mov64_imm(R0, 0),
                    insn::exit(),
                ];
                prog_outcome(load(ctx, r, &insns))
            })
        }
        Feature::ProgBindMap => {
            let mut cands = Vec::new();
            for (mi, m) in [
                M::BPF_MAP_TYPE_ARRAY,
                M::BPF_MAP_TYPE_HASH,
                M::BPF_MAP_TYPE_PERCPU_ARRAY,
                M::BPF_MAP_TYPE_LRU_HASH,
            ]
            .into_iter()
            .enumerate()
            {
                for (pi, p) in TRIVIAL_PROGS.iter().enumerate() {
                    // BPF_PROG_BIND_MAP does not care about either type.
                    cands.push(indep(cand(*p, Some(m), false, mi == 0 && pi == 0)));
                }
            }
            run(ctx, feature, &cands, |ctx, r| {
                // Every candidate above has a map type.
                let Some(map_type) = r.cand.map else {
                    return Outcome::Inconclusive(None, "candidate without a map type".into());
                };
                let map = match ops::map_create(map_type, 4, 32, 1, 0, ctx.token()) {
                    Ok(m) => m,
                    Err(e) => return setup_failure("map create", e),
                };
                let prog = match load(ctx, r, &insn::ret0()) {
                    Ok(p) => p,
                    Err(e) => return setup_failure("program load", e),
                };
                match ops::bind_map(&prog, &map) {
                    Ok(()) => Outcome::Yes,
                    Err(e) => classify(e),
                }
            })
        }
        Feature::ModuleBtf => run(ctx, feature, &btf_only(), |ctx, _| {
            let blob = match blobs::int() {
                Ok(b) => b,
                Err(e) => {
                    return Outcome::Inconclusive(
                        None,
                        format!("building the probe BTF failed: {e}"),
                    )
                }
            };
            let fd = match ops::btf_load(&blob, ctx.token()) {
                Ok(fd) => fd,
                Err(e) => return classify(e),
            };
            match ops::btf_info_with_name(&fd) {
                Ok(()) => Outcome::Yes,
                Err(e) => classify(e),
            }
        }),
        Feature::ArgCtxTag => {
            let cands = [
                cand(ign(P::BPF_PROG_TYPE_KPROBE, NO_ATTACH), None, true, true),
                cand(ign(P::BPF_PROG_TYPE_XDP, A::BPF_XDP), None, true, false),
                cand(
                    ign(P::BPF_PROG_TYPE_SOCKET_FILTER, NO_ATTACH),
                    None,
                    true,
                    false,
                ),
            ];
            run(ctx, feature, &cands, |ctx, r| {
                let helper = match r.prog() {
                    P::BPF_PROG_TYPE_XDP => H::BPF_FUNC_xdp_get_buff_len,
                    P::BPF_PROG_TYPE_SOCKET_FILTER => H::BPF_FUNC_get_socket_cookie,
                    _ => H::BPF_FUNC_get_func_ip,
                };
                let (blob, funcs) = match blobs::arg_ctx() {
                    Ok(b) => b,
                    Err(e) => {
                        return Outcome::Inconclusive(
                            None,
                            format!("building the probe BTF failed: {e}"),
                        )
                    }
                };
                let btf = match ops::btf_load(&blob, ctx.token()) {
                    Ok(fd) => fd,
                    Err(e) => return setup_failure("BTF load", e),
                };
                let insns = [
                    insn::call_rel(1),
                    insn::exit(),
                    insn::call_helper(helper as u32),
                    insn::exit(),
                ];
                let res = ops::prog_load(&ProgSpec {
                    prog_type: r.prog(),
                    expected_attach_type: r.attach,
                    insns: &insns,
                    name: Some("det_arg_ctx"),
                    btf: Some(ops::ProgBtf {
                        fd: &btf,
                        func_info: &[(0, funcs.main), (2, funcs.sub)],
                    }),
                    token: ctx.token(),
                });
                prog_outcome(res.map_err(|e| e.errno))
            })
        }
        Feature::Ldimm64FullRangeOff => {
            let cands: Vec<Cand> = trivial_cands(Some(M::BPF_MAP_TYPE_ARRAY))
                .into_iter()
                .map(indep)
                .collect();
            run(ctx, feature, &cands, |ctx, r| {
                let map = match ops::map_create(M::BPF_MAP_TYPE_ARRAY, 4, 1, 1, 0, ctx.token()) {
                    Ok(m) => m,
                    Err(e) => return setup_failure("ARRAY map create", e),
                };
                let [l0, l1] = insn::ld_map_value(R1, ops::raw(&map), 1 << 30);
                let insns = [l0, l1, insn::exit()];
                let res = ops::prog_load(&ProgSpec {
                    prog_type: r.prog(),
                    expected_attach_type: r.attach,
                    insns: &insns,
                    name: None,
                    btf: None,
                    token: ctx.token(),
                });
                match res {
                    Ok(_) => {
                        Outcome::Inconclusive(None, "program loading unexpectedly succeeded".into())
                    }
                    Err(e) => ldimm64_outcome(e.errno, &e.log),
                }
            })
        }
        Feature::SyscallWrapper => kernel_facts::syscall_wrapper(),
        Feature::UprobeMultiLink => {
            const UPROBE_MULTI: &[A] = &[A::BPF_TRACE_UPROBE_MULTI];
            let cands = [cand(
                prog(P::BPF_PROG_TYPE_KPROBE, Attach::OneOf(UPROBE_MULTI)),
                None,
                false,
                true,
            )];
            run(ctx, feature, &cands, |ctx, r| {
                let prog = match load(ctx, r, &insn::ret0()) {
                    Ok(p) => p,
                    Err(e) => return classify(e),
                };
                uprobe_multi_outcome(ops::uprobe_multi_link(&prog, 0), || {
                    ops::uprobe_multi_link(&prog, u32::MAX)
                })
            })
        }
    }
}

/// libbpf's two-step UPROBE_MULTI_LINK test: a uprobe_multi link on "/" must fail with EBADF
/// (the link type exists, the path is not a regular file), and then the same with pid -1 must
/// fail with EINVAL (the 6.10 PID-filtering fix validates the pid first).
pub(crate) fn uprobe_multi_outcome(
    on_dir: Result<ops::Fd, Errno>,
    with_bad_pid: impl FnOnce() -> Result<ops::Fd, Errno>,
) -> Outcome {
    match on_dir {
        Ok(_) => return Outcome::No(None, Some("link on \"/\" unexpectedly created".into())),
        Err(e) if e == Errno::EBADF => {}
        // A transient failure (ENOMEM, EAGAIN, EINTR, ...) says nothing about the kernel: classify() leaves
        // it inconclusive, so it is not cached as "missing" for the life of the process.
        Err(e) => {
            return match classify(e) {
                Outcome::No(..) => Outcome::No(Some(e), Some("no uprobe_multi links".into())),
                other => other,
            }
        }
    }
    match with_bad_pid() {
        Err(e) if e == Errno::EINVAL => Outcome::Yes,
        // Kernels without the PID-filtering fix get past the PID and fail on the path (EBADF), or with ESRCH.
        Err(e) if e == Errno::EBADF || e == Errno::ESRCH => {
            Outcome::No(Some(e), Some("uprobe_multi PID filtering not fixed".into()))
        }
        Err(e) => match classify(e) {
            Outcome::No(..) => {
                Outcome::No(Some(e), Some("uprobe_multi PID filtering not fixed".into()))
            }
            other => other,
        },
        Ok(_) => Outcome::No(None, Some("uprobe_multi PID filtering not fixed".into())),
    }
}

/// Decides LDIMM64_FULL_RANGE_OFF from the verifier's message, as libbpf does: the old limit
/// says "direct value offset of N is not allowed"; without it the array's own bounds check
/// says "invalid access to map value pointer".
pub(crate) fn ldimm64_outcome(errno: Errno, log: &str) -> Outcome {
    if let Some(line) = log.lines().find(|l| l.contains("direct value offset of")) {
        Outcome::No(Some(errno), Some(line.trim().to_string()))
    } else if log.contains("invalid access to map value pointer") {
        Outcome::Yes
    } else {
        match classify(errno) {
            Outcome::NotPermitted(e) => Outcome::NotPermitted(e),
            _ => Outcome::Inconclusive(
                Some(errno),
                format!(
                    "unexpected verifier message: {}",
                    log.lines().next().unwrap_or("(empty log)")
                ),
            ),
        }
    }
}

fn helper_cands(types: &[(P, A)]) -> Vec<Cand> {
    types
        .iter()
        .enumerate()
        .map(|(i, &(p, a))| cand(ign(p, a), None, false, i == 0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn narrow() -> Delegation {
        Delegation {
            cmds: (1 << bpf_cmd::BPF_PROG_LOAD as u32)
                | (1 << bpf_cmd::BPF_MAP_CREATE as u32)
                | (1 << bpf_cmd::BPF_BTF_LOAD as u32),
            maps: 1 << M::BPF_MAP_TYPE_HASH as u32,
            progs: 1 << P::BPF_PROG_TYPE_XDP as u32,
            attachs: 1 << A::BPF_XDP as u32,
        }
    }

    #[test]
    fn no_token_runs_only_libbpfs_probe() {
        let o = order(&trivial_cands(None), false, None);
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].prog(), P::BPF_PROG_TYPE_SOCKET_FILTER);
        assert!(o[0].conclusive());
    }

    #[test]
    fn narrow_token_prefers_delegated_xdp_then_libbpf() {
        let d = narrow();
        let o = order(&trivial_cands(None), true, Some(&d));
        let types: Vec<P> = o.iter().map(|r| r.prog()).collect();
        assert_eq!(
            types,
            [P::BPF_PROG_TYPE_XDP, P::BPF_PROG_TYPE_SOCKET_FILTER]
        );
        assert_eq!(o[0].attach as u32, A::BPF_XDP as u32);
        assert!(o[0].delegated && !o[0].conclusive());
        assert!(!o[1].delegated && o[1].conclusive());
    }

    #[test]
    fn array_only_probes_are_not_delegated_by_a_hash_only_token() {
        let d = narrow();
        let o = order(&trivial_cands(Some(M::BPF_MAP_TYPE_ARRAY)), true, Some(&d));
        assert!(o.iter().all(|r| !r.delegated));
        let bind: Vec<Cand> = [M::BPF_MAP_TYPE_ARRAY, M::BPF_MAP_TYPE_HASH]
            .into_iter()
            .flat_map(|m| {
                TRIVIAL_PROGS
                    .iter()
                    .map(move |p| indep(cand(*p, Some(m), false, false)))
            })
            .collect();
        let o = order(&bind, true, Some(&d));
        assert_eq!(o.len(), 1);
        assert_eq!(
            (o[0].cand.map, o[0].prog()),
            (Some(M::BPF_MAP_TYPE_HASH), P::BPF_PROG_TYPE_XDP)
        );
    }

    #[test]
    fn attach_is_picked_from_the_delegation() {
        let mut d = narrow();
        d.progs |= 1 << P::BPF_PROG_TYPE_CGROUP_SOCK as u32;
        d.attachs |= 1 << A::BPF_CGROUP_INET4_POST_BIND as u32;
        const SOCK: &[A] = &[
            A::BPF_CGROUP_INET_SOCK_CREATE,
            A::BPF_CGROUP_INET4_POST_BIND,
        ];
        let r = resolve(
            cand(
                prog(P::BPF_PROG_TYPE_CGROUP_SOCK, Attach::OneOf(SOCK)),
                None,
                false,
                true,
            ),
            Some(&d),
        );
        assert_eq!(r.attach as u32, A::BPF_CGROUP_INET4_POST_BIND as u32);
        assert!(r.delegated);
        // Not libbpf's attach type: a failure would not prove the field missing.
        assert!(!r.conclusive());
    }

    #[test]
    fn eperm_is_never_missing() {
        assert!(matches!(classify(Errno::EPERM), Outcome::NotPermitted(_)));
        assert!(matches!(classify(Errno::EACCES), Outcome::NotPermitted(_)));
        assert!(matches!(classify(Errno::EINVAL), Outcome::No(..)));
        assert!(matches!(classify(Errno::ENOMEM), Outcome::Inconclusive(..)));
        assert!(matches!(
            setup_failure("x", Errno::EINVAL),
            Outcome::Inconclusive(..)
        ));
    }

    #[test]
    fn uprobe_multi_rules() {
        let e = |e| -> Result<ops::Fd, Errno> { Err(e) };
        // libbpf: EBADF on "/" (links exist), then EINVAL for pid -1 (PID filtering fixed).
        assert!(matches!(
            uprobe_multi_outcome(e(Errno::EBADF), || e(Errno::EINVAL)),
            Outcome::Yes
        ));
        assert!(matches!(
            uprobe_multi_outcome(e(Errno::EBADF), || e(Errno::EBADF)),
            Outcome::No(..)
        ));
        assert!(matches!(
            uprobe_multi_outcome(e(Errno::EINVAL), || e(Errno::EINVAL)),
            Outcome::No(..)
        ));
        assert!(matches!(
            uprobe_multi_outcome(e(Errno::EPERM), || e(Errno::EINVAL)),
            Outcome::NotPermitted(_)
        ));
        assert!(matches!(
            uprobe_multi_outcome(e(Errno::EBADF), || e(Errno::EACCES)),
            Outcome::NotPermitted(_)
        ));
        // Transient failures are not cached as "missing" (issue 7's fault matrix found this).
        for t in [Errno::ENOMEM, Errno::EAGAIN, Errno::EINTR] {
            assert!(matches!(
                uprobe_multi_outcome(e(t), || e(Errno::EINVAL)),
                Outcome::Inconclusive(..)
            ));
            assert!(matches!(
                uprobe_multi_outcome(e(Errno::EBADF), || e(t)),
                Outcome::Inconclusive(..)
            ));
        }
    }

    #[test]
    fn ldimm64_log_rules() {
        // The two verifier messages libbpf keys on (kernel/bpf/verifier.c).
        assert!(matches!(
            ldimm64_outcome(
                Errno::EINVAL,
                "direct value offset of 1073741824 is not allowed\nprocessed 0 insns"
            ),
            Outcome::No(..)
        ));
        assert!(matches!(
            ldimm64_outcome(
                Errno::EINVAL,
                "invalid access to map value pointer, value_size=1 off=1073741824\n"
            ),
            Outcome::Yes
        ));
        assert!(matches!(
            ldimm64_outcome(Errno::EPERM, ""),
            Outcome::NotPermitted(_)
        ));
        assert!(matches!(
            ldimm64_outcome(Errno::EINVAL, "something else"),
            Outcome::Inconclusive(..)
        ));
    }
}
