//! `bpfload inspect OBJECT`: what the object holds, without touching the kernel.

use std::path::PathBuf;
use std::process::ExitCode;

use bpfload::{MapKind, Object, RelocKind};

use crate::cli::{Matches, Opt, Pos, Sub};
use crate::json::Json;

pub const SPEC: Sub = Sub {
    name: "inspect",
    about: "Show an object's programs, maps, global data and relocations without loading it",
    opts: &[
        Opt::flag(
            "core",
            "Also resolve each CO-RE relocation against the running kernel's BTF and show the result",
        ),
        Opt::flag("json", "Print one JSON document instead of text"),
    ],
    pos: Some(Pos {
        name: "OBJECT",
        required: true,
        default: None,
        help: "The BPF object file (ELF, as built by `clang -target bpf`)",
    }),
};

pub struct InspectArgs {
    pub object: PathBuf,
    /// Also resolve each CO-RE relocation against the running kernel's BTF.
    pub core: bool,
    pub json: bool,
}

impl InspectArgs {
    pub fn from_matches(m: &Matches) -> InspectArgs {
        InspectArgs {
            // The parser refuses a missing OBJECT.
            object: m.pos().map(PathBuf::from).unwrap_or_default(),
            core: m.flag("core"),
            json: m.flag("json"),
        }
    }
}

pub fn run(args: InspectArgs) -> Result<ExitCode, String> {
    let object = Object::open_file(&args.object)
        .map_err(|e| format!("opening {}: {e}", args.object.display()))?;
    let core = if args.core {
        Some(crate::core::relocate_all(&object)?)
    } else {
        None
    };
    // Exit 1 if a CO-RE relocation cannot be applied (libbpf fails such a load).
    let core_ok = core
        .as_ref()
        .is_none_or(|c| c.iter().all(|f| f.result.is_ok()));
    if args.json {
        outln!("{}", describe(&object, core.as_deref()));
    } else {
        print_text(&object);
        if let Some(c) = &core {
            crate::core::print(c);
        }
    }
    Ok(if core_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A function's relocations as the JSON array `"relocations"`.
fn relocations_json(j: &mut Json, object: &Object, p: &bpfload::Program) {
    j.key("relocations").begin_array();
    for r in p.relocations() {
        j.begin_object();
        j.field_u64("insn", r.insn_idx as u64);
        j.field_str("kind", &reloc_kind(object, &r.kind));
        j.field_u64("offset", r.sym_off);
        j.field_str("symbol", &r.sym_name);
        j.end();
    }
    j.end();
}

fn reloc_kind(object: &Object, kind: &RelocKind) -> String {
    let map_name = |i: usize| object.maps().get(i).map(|m| m.name()).unwrap_or("?");
    let ext_name = |i: usize| {
        object
            .externs()
            .get(i)
            .map(|e| e.name.as_str())
            .unwrap_or("?")
    };
    match *kind {
        RelocKind::MapFd { map } => format!("map_fd {}", map_name(map)),
        RelocKind::MapValue { map } => format!("map_value {}", map_name(map)),
        RelocKind::Call => "call".to_string(),
        RelocKind::SubprogAddr => "subprog_addr".to_string(),
        RelocKind::ExternLd64 { ext } => format!("extern_ld64 {}", ext_name(ext)),
        RelocKind::ExternCall { ext } => format!("extern_call {}", ext_name(ext)),
    }
}

fn map_kind(kind: MapKind) -> &'static str {
    match kind {
        MapKind::Btf => "btf",
        MapKind::Legacy => "legacy",
        MapKind::Data => "data",
        MapKind::Rodata => "rodata",
        MapKind::Bss => "bss",
        MapKind::Kconfig => "kconfig",
        MapKind::StructOps => "struct_ops",
    }
}

/// The JSON document for `inspect --json`, with the CO-RE results of `--core` (keys in sorted
/// order, see json.rs).
fn describe(object: &Object, core: Option<&[crate::core::FuncCore]>) -> String {
    let mut j = Json::new();
    j.begin_object();
    if let Some(c) = core {
        j.key("core");
        crate::core::write_json(&mut j, c);
    }
    j.field_str("endianness", object.endianness().describe());
    j.key("externs")
        .strs(object.externs().iter().map(|e| e.name.as_str()));
    j.key("globals").begin_array();
    for g in object.globals() {
        j.begin_object();
        j.key("map")
            .opt_str(object.maps().get(g.map).map(|m| m.name()));
        j.field_str("name", &g.name);
        j.field_u64("offset", g.offset as u64);
        j.field_u64("size", g.size as u64);
        j.end();
    }
    j.end();
    j.field_str("license", object.license());
    j.key("maps").begin_array();
    for m in object.maps() {
        let d = m.def();
        j.begin_object();
        j.field_u64("flags", d.map_flags.into());
        let slots = m.init_slots().iter().filter(|s| s.is_some()).count();
        j.field_u64("init_slots", slots as u64);
        j.key("inner").opt_str(m.inner().map(|i| i.map_type_name()));
        j.field_u64("key_size", d.key_size.into());
        j.field_str("kind", map_kind(m.kind()));
        j.field_u64("max_entries", d.max_entries.into());
        j.field_str("name", m.name());
        j.key("pinned_by_name")
            .bool(d.pinning == bpfload::Pinning::ByName);
        j.field_str("real_name", m.real_name());
        j.field_str("type", m.map_type_name());
        j.field_u64("value_size", d.value_size.into());
        j.end();
    }
    j.end();
    j.field_str("object", object.name());
    j.key("programs").begin_array();
    for p in object.programs() {
        j.begin_object();
        j.key("autoload").bool(p.autoload());
        j.field_u64("insns", p.insn_count() as u64);
        j.field_str("name", p.name());
        relocations_json(&mut j, object, p);
        j.field_str("section", p.section());
        j.key("static").bool(p.is_static());
        j.field_str("type", p.prog_type_name());
        j.end();
    }
    j.end();
    j.key("subprograms").begin_array();
    for p in object.subprograms() {
        j.begin_object();
        j.field_u64("insns", p.insn_count() as u64);
        j.field_str("name", p.name());
        // The same relocations the text output lists for subprograms.
        relocations_json(&mut j, object, p);
        j.end();
    }
    j.end();
    j.key("unsupported")
        .strs(object.unsupported_features().iter().map(String::as_str));
    j.end();
    j.finish()
}

fn print_text(object: &Object) {
    outln!(
        "object {} ({}, license {:?})",
        object.name(),
        object.endianness().describe(),
        object.license()
    );
    outln!("programs:");
    for p in object.programs() {
        outln!(
            "  {:<24} {:<28} {:<16} {:>5} insns{}",
            p.name(),
            p.section(),
            p.prog_type_name(),
            p.insn_count(),
            if p.autoload() { "" } else { "  (autoload off)" }
        );
    }
    let subs: Vec<_> = object.subprograms().collect();
    if !subs.is_empty() {
        outln!("subprograms (.text):");
        for p in subs {
            outln!("  {:<24} {:>5} insns", p.name(), p.insn_count());
        }
    }
    outln!("maps:");
    for m in object.maps() {
        let d = m.def();
        outln!(
            "  {:<24} {:<16} key {:>4} value {:>6} max {:>8} flags {:#x}{}{}",
            m.name(),
            m.map_type_name(),
            d.key_size,
            d.value_size,
            d.max_entries,
            d.map_flags,
            if d.pinning == bpfload::Pinning::ByName {
                "  pinned by name"
            } else {
                ""
            },
            if m.kind() == MapKind::Legacy {
                "  (legacy maps section)"
            } else {
                ""
            },
        );
    }
    if !object.globals().is_empty() {
        outln!("global data:");
        for g in object.globals() {
            let map = object
                .maps()
                .get(g.map)
                .map(|m| m.real_name())
                .unwrap_or("?");
            outln!(
                "  {:<24} {:<16} offset {:>5} size {:>4}",
                g.name,
                map,
                g.offset,
                g.size
            );
        }
    }
    outln!("relocations:");
    for p in object.programs().chain(object.subprograms()) {
        for r in p.relocations() {
            outln!(
                "  {:<24} insn {:>5}  {:<28} {}",
                p.name(),
                r.insn_idx,
                reloc_kind(object, &r.kind),
                r.sym_name
            );
        }
    }
    for u in object.unsupported_features() {
        outln!("not supported yet: {u}");
    }
}
