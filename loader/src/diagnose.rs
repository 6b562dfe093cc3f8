//! Token delegation check: what an object needs versus what its BPF token delegates.
//!
//! Before loading, [`check`] compares the object's needs (commands, map types, program types,
//! expected attach types including struct_ops member indexes, BTF) with the token's four
//! delegation masks. Each gap names the object part, what it needs and the mount option that
//! grants it: "program 'handle_xdp' needs prog type xdp: add xdp to delegate_progs".
//!
//! The kernel's rules (kernel/bpf/token.c, syscall.c), which this mirrors:
//! - a command is allowed iff its bit is in `delegate_cmds`;
//! - MAP_CREATE with a token also needs the map type's bit in `delegate_maps`;
//! - PROG_LOAD needs the program type's bit in `delegate_progs` **and** the expected attach type's
//!   bit in `delegate_attachs` (`bpf_token_allow_prog_type`); so expected attach type 0 needs
//!   bit 0, `cgroup_inet_ingress`, and a struct_ops program needs the bit of its member index;
//! - when the token does not allow something the kernel does not fail: it ignores the token and
//!   falls back to the caller's own capabilities.
//!
//! Because of that fallback the check never blocks a load the kernel might accept: a gap is an
//! error only when the caller cannot have the fallback privilege (it is outside the initial user
//! namespace, and the map or program type is not one unprivileged BPF allows); otherwise it is
//! a warning and the load goes ahead. After the fact, [`explain_eperm`] says which delegation
//! was missing when the kernel answers EPERM despite a token.

use std::fmt;

use bpfload_probe::delegation::{format_mask, Delegation, MaskKind, NameTables};

// bpf_cmd values (UAPI, stable).
const BPF_MAP_CREATE: u32 = 0;
const BPF_PROG_LOAD: u32 = 5;
const BPF_BTF_LOAD: u32 = 18;

// Types unprivileged BPF may create when kernel.unprivileged_bpf_disabled is 0
// (syscall.c: map_create's switch and bpf_prog_load's unprivileged check).
const UNPRIV_PROG_TYPES: &[u32] = &[1 /* socket_filter */, 8 /* cgroup_skb */];
const UNPRIV_MAP_TYPES: &[u32] = &[
    1,  // hash
    2,  // array
    3,  // prog_array
    4,  // perf_event_array
    5,  // percpu_hash
    6,  // percpu_array
    8,  // cgroup_array
    12, // array_of_maps
    13, // hash_of_maps
    19, // cgroup_storage
    21, // percpu_cgroup_storage
    27, // ringbuf
    31, // user_ringbuf
];

/// One program as it will be loaded (after the loader's feature-dependent adjustments, e.g. an
/// expected attach type zeroed for an old kernel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgNeed {
    pub name: String,
    pub prog_type: u32,
    pub expected_attach_type: u32,
    /// For struct_ops programs the expected attach type is the member index, not a
    /// `bpf_attach_type`; messages say so.
    pub struct_ops_member: Option<String>,
}

/// One map that will be created (not reused from a pin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapNeed {
    pub name: String,
    pub map_type: u32,
    /// Pinned by name: an existing pin may be reused without MAP_CREATE, so a gap only warns.
    pub pinned: bool,
}

/// Whether and how the object needs its BTF in the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BtfNeed {
    /// No BTF, or the loader will not load it.
    #[default]
    None,
    /// BTF is loaded if possible; without it the load goes on (libbpf's "BTF is optional").
    Optional,
    /// The object cannot load without its BTF (struct_ops, special map fields, ...): why.
    Required(String),
}

/// What an object needs from the kernel, as the loader will ask for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectNeeds {
    pub programs: Vec<ProgNeed>,
    pub maps: Vec<MapNeed>,
    pub btf: BtfNeed,
    /// Parts whose kernel behaviour depends on the object BTF without making it strictly
    /// required (e.g. "map 'locked' holds bpf_spin_lock"): named in the btf_load warning.
    pub btf_users: Vec<String>,
}

/// Whether the kernel could accept without the token (its fallback to capabilities).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fallback {
    /// The process may have privileges outside the token (initial user namespace with
    /// CAP_BPF or CAP_SYS_ADMIN, or unknown).
    pub privileged: bool,
    /// `kernel.unprivileged_bpf_disabled` is 0: some map and program types need no privilege.
    pub unprivileged_bpf: bool,
}

impl Fallback {
    /// Reads this process's situation: `/proc/self/uid_map` (the initial user namespace maps
    /// the whole range `0 0 4294967295`), `CapEff` in `/proc/self/status`, and the sysctl.
    /// When anything cannot be read, assume privilege (warn, never block).
    pub fn current() -> Self {
        let init_userns = std::fs::read_to_string("/proc/self/uid_map")
            .map(|m| {
                let f: Vec<&str> = m.split_whitespace().collect();
                f == ["0", "0", "4294967295"]
            })
            .unwrap_or(true);
        let cap_eff = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("CapEff:"))
                    .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            });
        const CAP_SYS_ADMIN: u32 = 21;
        const CAP_BPF: u32 = 39;
        let has_caps =
            cap_eff.is_none_or(|c| c & (1 << CAP_BPF) != 0 || c & (1 << CAP_SYS_ADMIN) != 0);
        let unprivileged_bpf =
            std::fs::read_to_string("/proc/sys/kernel/unprivileged_bpf_disabled")
                .map(|s| s.trim() == "0")
                .unwrap_or(true);
        Fallback {
            privileged: init_userns && has_caps,
            unprivileged_bpf,
        }
    }

    /// No fallback at all: every gap is fatal (a process in a user namespace).
    pub const NONE: Fallback = Fallback {
        privileged: false,
        unprivileged_bpf: false,
    };
}

/// How bad a gap is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The kernel will refuse: the load stops before any syscall.
    Error,
    /// The kernel may still accept (capability fallback), or the part is optional.
    Warning,
}

/// What lacks delegation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Object,
    Btf,
    Map(String),
    Program(String),
}

/// One missing delegation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub subject: Subject,
    /// The mask that lacks the bit.
    pub kind: MaskKind,
    /// The missing bit (enum value, or struct_ops member index for attach types).
    pub value: u32,
    /// The text to add to the mount option (a name, or a `0x..` mask for unnamed bits).
    pub grant: String,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The result of [`check`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diagnosis {
    pub findings: Vec<Finding>,
}

impl Diagnosis {
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
    }

    /// True when the load must not be attempted.
    pub fn is_blocking(&self) -> bool {
        self.errors().next().is_some()
    }

    /// All error messages joined with "; " (for the load error).
    pub fn error_message(&self) -> Option<String> {
        let v: Vec<&str> = self.errors().map(|f| f.message.as_str()).collect();
        (!v.is_empty()).then(|| v.join("; "))
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.findings
                .iter()
                .map(|f| {
                    serde_json::json!({
                        "severity": match f.severity { Severity::Error => "error", Severity::Warning => "warning" },
                        "option": f.kind.mount_option(),
                        "grant": f.grant,
                        "message": f.message,
                    })
                })
                .collect(),
        )
    }
}

fn bit(v: u32) -> u64 {
    if v < 64 {
        1u64 << v
    } else {
        0
    }
}

/// The text to add to a mount option for one bit: its name, or `0x..` (a number *assigns* the
/// mask in the kernel's parser, so an unnamed bit is shown as its mask).
fn grant_for(kind: MaskKind, value: u32, names: &NameTables) -> String {
    match names.table(kind).name(value) {
        Some(n) => n.to_string(),
        None if value < 64 => format!("{:#x}", bit(value)),
        None => format!("{value} (beyond the 64 delegatable bits)"),
    }
}

fn add_hint(kind: MaskKind, grant: &str) -> String {
    format!("add {grant} to {}", kind.mount_option())
}

/// Compares `needs` with `delegation`. Cheap: no syscalls, a few bit tests per part.
pub fn check(
    needs: &ObjectNeeds,
    delegation: &Delegation,
    names: &NameTables,
    fallback: Fallback,
) -> Diagnosis {
    let mut d = Diagnosis::default();
    let sev = |unpriv_ok: bool| {
        if fallback.privileged || (fallback.unprivileged_bpf && unpriv_ok) {
            Severity::Warning
        } else {
            Severity::Error
        }
    };
    let mut push = |severity, subject, kind, value, message: String| {
        let grant = grant_for(kind, value, names);
        let message = format!("{message}: {}", add_hint(kind, &grant));
        d.findings.push(Finding {
            severity,
            subject,
            kind,
            value,
            grant,
            message,
        });
    };

    // BTF first: libbpf loads it before maps, and without it maps lose their BTF.
    if !delegation.allows_cmd(BPF_BTF_LOAD) {
        match &needs.btf {
            BtfNeed::None => {}
            BtfNeed::Optional => push(
                // Only a warning: the load continues without object BTF, as libbpf's does.
                Severity::Warning,
                Subject::Btf,
                MaskKind::Cmds,
                BPF_BTF_LOAD,
                if needs.btf_users.is_empty() {
                    "the token does not delegate btf_load, so the object's BTF will not be \
                     loaded (maps and programs go without it)"
                        .to_string()
                } else {
                    format!(
                        "the token does not delegate btf_load, so the object's BTF will not be \
                         loaded, and {} needs it; programs using it will be refused",
                        needs.btf_users.join(", ")
                    )
                },
            ),
            BtfNeed::Required(why) => push(
                sev(false),
                Subject::Btf,
                MaskKind::Cmds,
                BPF_BTF_LOAD,
                format!("the object needs its BTF in the kernel ({why}) and the token does not delegate btf_load"),
            ),
        }
    }

    if !needs.maps.is_empty() {
        let map_create = delegation.allows_cmd(BPF_MAP_CREATE);
        if !map_create {
            let all_unpriv = needs
                .maps
                .iter()
                .all(|m| UNPRIV_MAP_TYPES.contains(&m.map_type));
            let first = &needs.maps[0].name;
            push(
                sev(all_unpriv),
                Subject::Object,
                MaskKind::Cmds,
                BPF_MAP_CREATE,
                format!(
                    "the object creates {} map(s) (first: '{first}') and needs command map_create",
                    needs.maps.len()
                ),
            );
        }
        for m in &needs.maps {
            if !delegation.allows_map(m.map_type) {
                let tname = grant_for(MaskKind::Maps, m.map_type, names);
                push(
                    if m.pinned {
                        Severity::Warning
                    } else {
                        sev(UNPRIV_MAP_TYPES.contains(&m.map_type))
                    },
                    Subject::Map(m.name.clone()),
                    MaskKind::Maps,
                    m.map_type,
                    format!("map '{}' needs map type {tname}", m.name),
                );
            }
        }
    }

    if !needs.programs.is_empty() {
        if !delegation.allows_cmd(BPF_PROG_LOAD) {
            let all_unpriv = needs
                .programs
                .iter()
                .all(|p| UNPRIV_PROG_TYPES.contains(&p.prog_type));
            let first = &needs.programs[0].name;
            push(
                sev(all_unpriv),
                Subject::Object,
                MaskKind::Cmds,
                BPF_PROG_LOAD,
                format!(
                    "the object loads {} program(s) (first: '{first}') and needs command prog_load",
                    needs.programs.len()
                ),
            );
        }
        for p in &needs.programs {
            let unpriv = UNPRIV_PROG_TYPES.contains(&p.prog_type);
            if delegation.progs & bit(p.prog_type) == 0 {
                let tname = grant_for(MaskKind::Progs, p.prog_type, names);
                push(
                    sev(unpriv),
                    Subject::Program(p.name.clone()),
                    MaskKind::Progs,
                    p.prog_type,
                    format!("program '{}' needs prog type {tname}", p.name),
                );
            }
            if delegation.attachs & bit(p.expected_attach_type) == 0 {
                let aname = grant_for(MaskKind::Attachs, p.expected_attach_type, names);
                let what = match (&p.struct_ops_member, p.expected_attach_type) {
                    (Some(member), idx) => format!(
                        "struct_ops program '{}' (member '{member}', index {idx}) needs \
                         delegate_attachs bit {idx}, the kernel checks the member index \
                         as an attach type",
                        p.name
                    ),
                    (None, 0) => format!(
                        "program '{}' has expected attach type 0, which the kernel checks as \
                         attach type {aname}",
                        p.name
                    ),
                    (None, _) => format!("program '{}' needs attach type {aname}", p.name),
                };
                push(
                    sev(unpriv),
                    Subject::Program(p.name.clone()),
                    MaskKind::Attachs,
                    p.expected_attach_type,
                    what,
                );
            }
        }
    }
    d
}

/// What the kernel's EPERM means for one object part loaded with a token whose delegation is
/// `delegation` (`None`: the delegation could not be read).
#[derive(Debug, Clone, Copy)]
pub enum EpermSubject<'a> {
    Map(&'a MapNeed),
    Program(&'a ProgNeed),
    Btf,
}

/// Explains an EPERM from MAP_CREATE, PROG_LOAD or BTF_LOAD despite a token: which delegation
/// was missing, or, when the token delegates everything, where else the refusal comes from.
pub fn explain_eperm(
    subject: EpermSubject<'_>,
    delegation: Option<&Delegation>,
    names: &NameTables,
) -> String {
    let Some(d) = delegation else {
        return "the token's delegation could not be read (no bpf_token_info or fdinfo); \
                check the bpffs mount options with `bpfload token PATH`"
            .to_string();
    };
    let mut missing = Vec::new();
    let mut need = |kind: MaskKind, value: u32, what: String| {
        if d.mask(kind) & bit(value) == 0 {
            missing.push(format!(
                "{what}: {}",
                add_hint(kind, &grant_for(kind, value, names))
            ));
        }
    };
    match subject {
        EpermSubject::Map(m) => {
            need(MaskKind::Cmds, BPF_MAP_CREATE, "command map_create".into());
            need(
                MaskKind::Maps,
                m.map_type,
                format!("map type {}", grant_for(MaskKind::Maps, m.map_type, names)),
            );
        }
        EpermSubject::Program(p) => {
            need(MaskKind::Cmds, BPF_PROG_LOAD, "command prog_load".into());
            need(
                MaskKind::Progs,
                p.prog_type,
                format!(
                    "prog type {}",
                    grant_for(MaskKind::Progs, p.prog_type, names)
                ),
            );
            need(
                MaskKind::Attachs,
                p.expected_attach_type,
                match &p.struct_ops_member {
                    Some(m) => format!("struct_ops member '{m}' index {}", p.expected_attach_type),
                    None => format!(
                        "attach type {}",
                        grant_for(MaskKind::Attachs, p.expected_attach_type, names)
                    ),
                },
            );
        }
        EpermSubject::Btf => need(MaskKind::Cmds, BPF_BTF_LOAD, "command btf_load".into()),
    }
    if missing.is_empty() {
        format!(
            "the token delegates everything this needs ({}), so the refusal comes from elsewhere: \
             capabilities inside the token's user namespace (CAP_BPF; CAP_PERFMON for tracing \
             helpers and pointer leaks; CAP_NET_ADMIN for networking maps; CAP_SYS_ADMIN for \
             some map and program types), a security module, or the kernel itself refusing \
             this program kind (try the same load as root outside the namespace)",
            summary(d, names)
        )
    } else {
        format!("the token does not delegate {}", missing.join("; "))
    }
}

/// `delegate_cmds=...,delegate_maps=...` text for messages.
pub fn summary(d: &Delegation, names: &NameTables) -> String {
    let parts: Vec<String> = MaskKind::ALL
        .into_iter()
        .map(|k| {
            let m = d.mask(k);
            let v = if m == 0 {
                "none".to_string()
            } else {
                format_mask(m, names.table(k))
            };
            format!("{}={v}", k.mount_option())
        })
        .collect();
    parts.join(" ")
}

/// What `obj` will ask of the kernel, as the loader will ask it: autoload main programs with
/// their SEC() types (expected attach type zeroed where libbpf zeroes it when the kernel lacks
/// EXP_ATTACH_TYPE), maps to be created (inner map templates included), and BTF if it will be
/// loaded.
///
/// `struct_ops` is the loader's struct_ops attach plan per function (after prepare): a
/// struct_ops program's expected attach type is its kernel member index.
// Kept out of the load pipeline's one big function: smaller code there (issue 8).
#[inline(never)]
pub(crate) fn needs_of(
    obj: &crate::Object,
    btf_will_load: bool,
    exp_attach_type_supported: bool,
    struct_ops: &[Option<crate::struct_ops::ProgAttach>],
) -> ObjectNeeds {
    use crate::object::sec_def::SEC_EXP_ATTACH_OPT;
    const STRUCT_OPS: u32 = 27;
    let local_btf = obj
        .btf
        .as_deref()
        .and_then(|b| bpfload_btf::Btf::parse(b).ok());
    let programs = obj
        .programs
        .iter()
        .enumerate()
        .filter(|(_, p)| p.autoload && !p.is_subprog)
        .filter_map(|(i, p)| {
            let def = p.sec_def?;
            let mut eat = def.expected_attach_type;
            if def.flags & SEC_EXP_ATTACH_OPT != 0 && !exp_attach_type_supported {
                eat = 0;
            }
            let mut struct_ops_member = None;
            if def.prog_type == STRUCT_OPS {
                // Not planned: the loader reports that program itself.
                let a = struct_ops.get(i).copied().flatten()?;
                eat = a.member_idx;
                struct_ops_member = Some(
                    local_btf
                        .as_ref()
                        .and_then(|btf| struct_ops_member_name(obj, btf, i))
                        .unwrap_or_else(|| format!("#{}", a.member_idx)),
                );
            }
            Some(ProgNeed {
                name: p.name.clone(),
                prog_type: def.prog_type,
                expected_attach_type: eat,
                struct_ops_member,
            })
        })
        .collect();
    let mut btf_users = Vec::new();
    let mut required = Vec::new();
    let mut maps = Vec::new();
    for m in obj.maps.iter().filter(|m| m.autocreate) {
        if BTF_REQUIRED_MAP_TYPES.contains(&m.def.map_type) {
            required.push(format!("map '{}' of a type that needs BTF", m.name));
        } else if let (Some(btf), true) = (&local_btf, m.btf_value_type_id != 0) {
            if let Some(field) = special_field(btf, m.btf_value_type_id, 0) {
                btf_users.push(format!("map '{}' (its value holds {field})", m.name));
            }
        }
        let pinned = m.def.pinning != crate::object::maps::Pinning::None;
        maps.push(MapNeed {
            name: m.name.clone(),
            map_type: m.def.map_type,
            pinned,
        });
        if let Some(inner) = &m.inner {
            maps.push(MapNeed {
                name: format!("{}.inner", m.name),
                map_type: inner.def.map_type,
                pinned,
            });
        }
    }
    ObjectNeeds {
        programs,
        maps,
        btf: if obj.btf.is_none() || !btf_will_load {
            BtfNeed::None
        } else if !required.is_empty() {
            BtfNeed::Required(required.join(", "))
        } else {
            BtfNeed::Optional
        },
        btf_users,
    }
}

/// The (local) member name of the struct_ops variable member that points at function `func`.
fn struct_ops_member_name(
    obj: &crate::Object,
    btf: &bpfload_btf::Btf<'_>,
    func: usize,
) -> Option<String> {
    obj.struct_ops.iter().find_map(|st| {
        let member = st.progs.iter().position(|p| *p == Some(func))?;
        let t = btf.type_by_id(st.type_id).ok()?;
        let m = t.as_composite()?.members().nth(member)?;
        btf.str_at(m.name_off).ok().map(str::to_string)
    })
}

// Map types MAP_CREATE refuses without BTF: sk/inode/task/cgrp local storage, struct_ops.
const BTF_REQUIRED_MAP_TYPES: &[u32] = &[24, 26, 28, 29, 32];

/// The first special field (kernel `btf_parse_fields`: locks, timers, graph roots and nodes,
/// refcounts, kptrs) found in a map value type, looking through typedefs, modifiers, arrays
/// and nested structs (bounded depth: hostile BTF cannot make this loop).
fn special_field(btf: &bpfload_btf::Btf<'_>, id: u32, depth: u32) -> Option<String> {
    use bpfload_btf::types::Type;
    const SPECIAL: &[&str] = &[
        "bpf_spin_lock",
        "bpf_res_spin_lock",
        "bpf_timer",
        "bpf_wq",
        "bpf_task_work",
        "bpf_list_head",
        "bpf_list_node",
        "bpf_rb_root",
        "bpf_rb_node",
        "bpf_refcount",
    ];
    if depth > 8 {
        return None;
    }
    match btf.type_by_id(id).ok()? {
        Type::Struct(c) | Type::Union(c) => {
            let name = btf.name(id).unwrap_or("");
            if SPECIAL.contains(&name) {
                return Some(name.to_string());
            }
            c.members()
                .find_map(|m| special_field(btf, m.type_id, depth + 1))
        }
        Type::Array(a) => special_field(btf, a.elem, depth + 1),
        Type::Ptr { target } => {
            // kptr: a pointer whose target carries a `kptr`-like type tag.
            match btf.type_by_id(target).ok()? {
                Type::TypeTag { .. } => {
                    let tag = btf.name(target).unwrap_or("");
                    matches!(tag, "kptr" | "kptr_untrusted" | "percpu_kptr" | "uptr")
                        .then(|| format!("a {tag} pointer"))
                }
                _ => None,
            }
        }
        Type::Typedef { target }
        | Type::Volatile { target }
        | Type::Const { target }
        | Type::Restrict { target } => special_field(btf, target, depth + 1),
        _ => None,
    }
}

/// For a program the verifier refused in a load with a token whose BTF was not loaded: when
/// the token lacks btf_load and the verifier log mentions BTF (e.g. "map 'x' has to have BTF in
/// order to use bpf_spin_lock"), says that the token kept the object BTF out and how to grant it.
pub fn btf_hint(
    btf_loaded: bool,
    delegation: Option<&Delegation>,
    verifier_log: &str,
) -> Option<String> {
    let d = delegation?;
    (!btf_loaded && !d.allows_cmd(BPF_BTF_LOAD) && verifier_log.contains("BTF")).then(|| {
        "the object's BTF was not loaded because the token does not delegate btf_load: add \
         btf_load to delegate_cmds"
            .to_string()
    })
}

/// For a command refused with EPERM under a token (e.g. BPF_BTF_GET_FD_BY_ID while resolving
/// a freplace target): the hint when the token does not delegate that command. `cmd` is the
/// `enum bpf_cmd` value.
pub fn cmd_hint(token: Option<std::os::fd::BorrowedFd<'_>>, cmd: u32) -> Option<String> {
    let (d, _) = bpfload_probe::token_delegation(token?).ok()?;
    (!d.allows_cmd(cmd)).then(|| {
        let grant = grant_for(MaskKind::Cmds, cmd, names());
        format!(
            "the token does not delegate command {grant}: {}",
            add_hint(MaskKind::Cmds, &grant)
        )
    })
}

/// For an EPERM in a load *without* a token: in a user namespace BPF needs one, so say how to
/// get it. `None` in the initial user namespace (a plain privilege problem there). Only used
/// once the load has failed: a silent implicit miss stays silent otherwise.
pub fn no_token_hint() -> Option<String> {
    let f = Fallback::current();
    let in_init_userns = std::fs::read_to_string("/proc/self/uid_map")
        .map(|m| m.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
        .unwrap_or(true);
    (!in_init_userns && !f.privileged).then(|| {
        "no BPF token was used, and in a user namespace BPF needs one: a privileged process \
         must mount a bpffs with delegate_* options for this namespace (check one with \
         `bpfload token PATH`); it is used from /sys/fs/bpf, --token-path or \
         LIBBPF_BPF_TOKEN_PATH"
            .to_string()
    })
}

/// The load stops before any syscall: the token cannot grant what the object needs and the
/// process has no privilege the kernel could fall back to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the BPF token{} does not delegate what the object needs: {message}", path.as_ref().map(|p| format!(" from {}", p.display())).unwrap_or_default())]
pub struct MissingDelegation {
    /// The bpffs the token came from (None for a caller-given token fd).
    pub path: Option<std::path::PathBuf>,
    /// Every blocking finding (warnings are logged, not carried).
    pub findings: Vec<Finding>,
    message: String,
}

/// Name tables from the running kernel's BTF, built once per process.
pub fn names() -> &'static NameTables {
    bpfload_probe::kernel_facts::name_tables()
}

/// The loader's pre-load check for a load that holds a token: logs warnings (log::warn) and
/// returns an error only for gaps the kernel is certain to refuse. `delegation` is the token's
/// (from `bpf_token_info` or fdinfo); when it cannot be read the check is skipped (never block
/// on doubt).
// Kept out of the load pipeline's one big function: smaller code there (issue 8).
#[inline(never)]
pub fn preflight(
    token_path: Option<&std::path::Path>,
    delegation: Option<&Delegation>,
    needs: &ObjectNeeds,
) -> Result<Diagnosis, MissingDelegation> {
    let Some(delegation) = delegation else {
        log::debug!("token delegation unknown; skipping the delegation check");
        return Ok(Diagnosis::default());
    };
    let d = check(needs, delegation, names(), Fallback::current());
    for w in d.warnings() {
        log::warn!("BPF token: {w}");
    }
    match d.error_message() {
        None => Ok(d),
        Some(message) => Err(MissingDelegation {
            path: token_path.map(|p| p.to_path_buf()),
            findings: d.errors().cloned().collect(),
            message,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfload_probe::delegation::NameTable;

    fn names() -> NameTables {
        NameTables {
            cmds: NameTable::from_enum_constants(
                MaskKind::Cmds,
                [
                    ("BPF_MAP_CREATE", 0),
                    ("BPF_PROG_LOAD", 5),
                    ("BPF_BTF_LOAD", 18),
                ],
            ),
            maps: NameTable::from_enum_constants(
                MaskKind::Maps,
                [
                    ("BPF_MAP_TYPE_HASH", 1),
                    ("BPF_MAP_TYPE_ARRAY", 2),
                    ("BPF_MAP_TYPE_QUEUE", 22),
                ],
            ),
            progs: NameTable::from_enum_constants(
                MaskKind::Progs,
                [("BPF_PROG_TYPE_SOCKET_FILTER", 1), ("BPF_PROG_TYPE_XDP", 6)],
            ),
            attachs: NameTable::from_enum_constants(
                MaskKind::Attachs,
                [("BPF_CGROUP_INET_INGRESS", 0), ("BPF_XDP", 37)],
            ),
        }
    }

    fn narrow_needs() -> ObjectNeeds {
        ObjectNeeds {
            programs: vec![ProgNeed {
                name: "handle_xdp".into(),
                prog_type: 6,
                expected_attach_type: 37,
                struct_ops_member: None,
            }],
            maps: vec![
                MapNeed {
                    name: "by_len".into(),
                    map_type: 1,
                    pinned: false,
                },
                MapNeed {
                    name: ".rodata".into(),
                    map_type: 2,
                    pinned: false,
                },
            ],
            btf: BtfNeed::Optional,
            btf_users: vec![],
        }
    }

    fn narrow() -> Delegation {
        Delegation {
            cmds: bit(0) | bit(5) | bit(18),
            maps: bit(1) | bit(2),
            progs: bit(6),
            attachs: bit(37),
        }
    }

    #[test]
    fn exact_delegation_has_no_findings() {
        let d = check(&narrow_needs(), &narrow(), &names(), Fallback::NONE);
        assert!(d.findings.is_empty(), "{d:?}");
        let d = check(&narrow_needs(), &Delegation::ANY, &names(), Fallback::NONE);
        assert!(d.findings.is_empty());
    }

    #[test]
    fn missing_prog_type_is_named_with_its_option() {
        let mut del = narrow();
        del.progs = bit(1);
        let d = check(&narrow_needs(), &del, &names(), Fallback::NONE);
        assert!(d.is_blocking());
        assert_eq!(
            d.error_message().unwrap(),
            "program 'handle_xdp' needs prog type xdp: add xdp to delegate_progs"
        );
        // With a possible capability fallback it only warns.
        let d = check(
            &narrow_needs(),
            &del,
            &names(),
            Fallback {
                privileged: true,
                unprivileged_bpf: false,
            },
        );
        assert!(!d.is_blocking());
        assert_eq!(d.warnings().count(), 1);
    }

    #[test]
    fn attach_type_zero_needs_cgroup_inet_ingress() {
        let mut needs = narrow_needs();
        needs.programs[0].expected_attach_type = 0;
        let d = check(&needs, &narrow(), &names(), Fallback::NONE);
        let e = d.error_message().unwrap();
        assert!(
            e.contains("add cgroup_inet_ingress to delegate_attachs"),
            "{e}"
        );
    }

    #[test]
    fn struct_ops_member_index_is_explained() {
        let needs = ObjectNeeds {
            programs: vec![ProgNeed {
                name: "test_2".into(),
                prog_type: 27,
                expected_attach_type: 3,
                struct_ops_member: Some("test_2".into()),
            }],
            maps: vec![],
            btf: BtfNeed::Required("struct_ops".into()),
            btf_users: vec![],
        };
        let del = Delegation {
            cmds: bit(5),
            maps: 0,
            progs: bit(27),
            attachs: bit(0),
        };
        let d = check(&needs, &del, &names(), Fallback::NONE);
        let msgs: Vec<&str> = d.errors().map(|f| f.message.as_str()).collect();
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(msgs[0].contains("add btf_load to delegate_cmds"));
        assert!(msgs[1].contains("index 3"), "{}", msgs[1]);
        // Unnamed bit 3 in our small table: shown as its mask.
        assert!(
            msgs[1].ends_with("add 0x8 to delegate_attachs"),
            "{}",
            msgs[1]
        );
    }

    #[test]
    fn optional_btf_only_warns_and_unprivileged_types_soften() {
        let mut del = narrow();
        del.cmds &= !bit(18);
        let d = check(&narrow_needs(), &del, &names(), Fallback::NONE);
        assert!(!d.is_blocking());
        assert_eq!(d.warnings().count(), 1);
        // hash and array are unprivileged types when unprivileged BPF is enabled.
        let mut del = narrow();
        del.maps = 0;
        let d = check(
            &narrow_needs(),
            &del,
            &names(),
            Fallback {
                privileged: false,
                unprivileged_bpf: true,
            },
        );
        assert!(!d.is_blocking(), "{d:?}");
        let d = check(&narrow_needs(), &del, &names(), Fallback::NONE);
        assert_eq!(d.errors().count(), 2);
    }

    #[test]
    fn missing_commands() {
        let del = Delegation {
            cmds: 0,
            ..Delegation::ANY
        };
        let d = check(&narrow_needs(), &del, &names(), Fallback::NONE);
        let e = d.error_message().unwrap();
        assert!(e.contains("add map_create to delegate_cmds"), "{e}");
        assert!(e.contains("add prog_load to delegate_cmds"), "{e}");
    }

    #[test]
    fn eperm_explanations() {
        let needs = narrow_needs();
        let mut del = narrow();
        del.attachs = bit(0);
        let s = explain_eperm(
            EpermSubject::Program(&needs.programs[0]),
            Some(&del),
            &names(),
        );
        assert_eq!(
            s,
            "the token does not delegate attach type xdp: add xdp to delegate_attachs"
        );
        let s = explain_eperm(
            EpermSubject::Program(&needs.programs[0]),
            Some(&narrow()),
            &names(),
        );
        assert!(s.contains("comes from elsewhere"), "{s}");
        assert!(s.contains("delegate_progs=xdp"), "{s}");
        let s = explain_eperm(EpermSubject::Btf, Some(&Delegation::default()), &names());
        assert!(s.contains("add btf_load to delegate_cmds"));
    }

    #[test]
    fn needs_of_the_narrow_fixture() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/bpf/token_narrow.bpf.o"
        );
        let obj = crate::Object::open_file(path).unwrap();
        let n = needs_of(&obj, true, true, &[]);
        assert_eq!(
            n.programs,
            vec![ProgNeed {
                name: "handle_xdp".into(),
                prog_type: 6,
                expected_attach_type: 37,
                struct_ops_member: None,
            }]
        );
        let mut types: Vec<u32> = n.maps.iter().map(|m| m.map_type).collect();
        types.sort();
        assert_eq!(types, vec![1, 2, 2, 2], "{:?}", n.maps);
        assert_eq!(n.btf, BtfNeed::Optional);
        // Without EXP_ATTACH_TYPE libbpf zeroes xdp's expected attach type: bit 0 is needed then.
        let n = needs_of(&obj, false, false, &[]);
        assert_eq!(n.programs[0].expected_attach_type, 0);
        assert_eq!(n.btf, BtfNeed::None);
        assert!(check(&n, &narrow(), &names(), Fallback::NONE).is_blocking());
    }

    #[test]
    fn btf_hint_only_when_the_token_kept_btf_out() {
        let log = "map 'locked' has to have BTF in order to use bpf_spin_lock";
        let mut del = narrow();
        assert_eq!(btf_hint(false, Some(&del), log), None);
        del.cmds &= !bit(18);
        let h = btf_hint(false, Some(&del), log).unwrap();
        assert!(h.ends_with("add btf_load to delegate_cmds"), "{h}");
        assert_eq!(btf_hint(true, Some(&del), log), None);
        assert_eq!(btf_hint(false, Some(&del), "R1 invalid mem access"), None);
        assert_eq!(btf_hint(false, None, log), None);
    }

    #[test]
    fn fallback_as_root_in_init_ns_is_privileged() {
        // The test runner is either root in the initial namespace (privileged) or not; the
        // reading must agree with /proc/self/status.
        let f = Fallback::current();
        let root = std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
        if root {
            assert!(f.privileged);
        }
    }
}
