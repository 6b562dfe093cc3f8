//! Checks the attr layout we use (aya-obj's structs plus `uapi_ext`) against the running kernel's own BTF
//! (`/sys/kernel/btf/vmlinux`): `union bpf_attr` and `struct bpf_token_info` member offsets.
//!
//! A field the running kernel does not have yet is reported and skipped (it cannot be checked here); every
//! field it has must be at the offset we use. Skips if the file is unreadable (no CONFIG_DEBUG_INFO_BTF).

use std::collections::HashMap;
use std::mem::offset_of;

use bpfload_syscall::uapi::{
    bpf_attr__bindgen_ty_1, bpf_attr__bindgen_ty_12, bpf_attr__bindgen_ty_19,
    bpf_attr__bindgen_ty_20, bpf_attr__bindgen_ty_4, bpf_attr__bindgen_ty_7,
    bpf_attr__bindgen_ty_8, bpf_attr__bindgen_ty_9,
};
use bpfload_syscall::uapi_ext::{bpf_token_info, FD_ARRAY_CNT_OFFSET, FD_BY_ID_TOKEN_FD_OFFSET};

/// Just enough of a BTF reader for this test: names, kinds and struct/union members.
struct Btf {
    strings: Vec<u8>,
    /// Indexed by type id (0 = void).
    types: Vec<Type>,
}

#[derive(Clone, Default)]
struct Type {
    name: String,
    kind: u32,
    /// For modifiers/typedefs: the referenced type.
    type_ref: u32,
    /// (name, type, bit offset) for STRUCT/UNION.
    members: Vec<(String, u32, u32)>,
}

const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_TYPE_TAG: u32 = 18;

fn u32_at(d: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(d.get(off..off + 4)?.try_into().ok()?))
}

impl Btf {
    fn parse(d: &[u8]) -> Option<Btf> {
        if d.get(0..2)? != [0x9f, 0xeb] {
            return None; // not little-endian BTF; this test runs on x86_64
        }
        let hdr_len = u32_at(d, 4)? as usize;
        let type_off = u32_at(d, 8)? as usize;
        let type_len = u32_at(d, 12)? as usize;
        let str_off = u32_at(d, 16)? as usize;
        let str_len = u32_at(d, 20)? as usize;
        let strings = d
            .get(hdr_len + str_off..hdr_len + str_off + str_len)?
            .to_vec();
        let tdata = d.get(hdr_len + type_off..hdr_len + type_off + type_len)?;
        let mut btf = Btf {
            strings,
            types: vec![Type::default()],
        };
        let mut p = 0;
        while p < tdata.len() {
            let name_off = u32_at(tdata, p)?;
            let info = u32_at(tdata, p + 4)?;
            let size_or_type = u32_at(tdata, p + 8)?;
            p += 12;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            let kflag = info >> 31 == 1;
            let mut t = Type {
                name: btf.str(name_off),
                kind,
                type_ref: size_or_type,
                members: vec![],
            };
            let extra = match kind {
                1 | 14 | 17 => 4,
                3 => 12,
                4 | 5 => {
                    for i in 0..vlen {
                        let m = p + i * 12;
                        let off = u32_at(tdata, m + 8)?;
                        let bit = if kflag { off & 0xff_ffff } else { off };
                        t.members
                            .push((btf.str(u32_at(tdata, m)?), u32_at(tdata, m + 4)?, bit));
                    }
                    vlen * 12
                }
                6 | 13 => vlen * 8,
                15 | 19 => vlen * 12,
                _ => 0,
            };
            p += extra;
            btf.types.push(t);
        }
        Some(btf)
    }

    fn str(&self, off: u32) -> String {
        let s = self.strings.get(off as usize..).unwrap_or_default();
        let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        String::from_utf8_lossy(&s[..end]).into_owned()
    }

    fn find(&self, name: &str, kind: u32) -> Option<u32> {
        self.types
            .iter()
            .position(|t| t.kind == kind && t.name == name)
            .map(|i| i as u32)
    }

    fn skip_mods(&self, mut id: u32) -> u32 {
        while let Some(t) = self.types.get(id as usize) {
            if matches!(
                t.kind,
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG
            ) {
                id = t.type_ref;
            } else {
                break;
            }
        }
        id
    }

    /// All members, as name → byte offsets. Members of anonymous struct/union members keep their own name;
    /// members of named ones are `outer.inner` (e.g. `token_create.bpffs_fd`).
    fn flatten(
        &self,
        id: u32,
        prefix: &str,
        base_bits: u32,
        out: &mut HashMap<String, Vec<usize>>,
    ) {
        let Some(t) = self.types.get(id as usize) else {
            return;
        };
        for (name, ty, bit) in &t.members {
            let inner = self.skip_mods(*ty);
            let nested = matches!(
                self.types.get(inner as usize).map(|t| t.kind),
                Some(KIND_STRUCT | KIND_UNION)
            );
            let full = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            if name.is_empty() {
                if nested {
                    self.flatten(inner, prefix, base_bits + bit, out);
                }
                continue;
            }
            out.entry(full.clone())
                .or_default()
                .push(((base_bits + bit) / 8) as usize);
            if nested {
                self.flatten(inner, &full, base_bits + bit, out);
            }
        }
    }
}

fn vmlinux() -> Option<Btf> {
    match std::fs::read("/sys/kernel/btf/vmlinux") {
        Ok(d) => Some(Btf::parse(&d).expect("vmlinux BTF parses")),
        Err(e) => {
            // The layout of `uapi_ext` is only checked here: CI must not skip it.
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but /sys/kernel/btf/vmlinux cannot be read: {e}"
            );
            eprintln!("SKIP: cannot read /sys/kernel/btf/vmlinux: {e}");
            None
        }
    }
}

/// Asserts that `field` (unique in `union bpf_attr` or listed among its offsets) is at `ours`.
fn check(fields: &HashMap<String, Vec<usize>>, field: &str, ours: usize) {
    match fields.get(field) {
        Some(offs) => assert!(
            offs.contains(&ours),
            "{field}: kernel has {offs:?}, we use {ours}"
        ),
        None => eprintln!("note: running kernel's union bpf_attr has no `{field}`; not checked"),
    }
}

#[test]
fn bpf_attr_offsets_match_running_kernel() {
    let Some(btf) = vmlinux() else { return };
    let id = btf
        .find("bpf_attr", KIND_UNION)
        .expect("union bpf_attr in vmlinux BTF");
    let mut fields = HashMap::new();
    btf.flatten(id, "", 0, &mut fields);

    check(
        &fields,
        "map_token_fd",
        offset_of!(bpf_attr__bindgen_ty_1, map_token_fd),
    );
    check(
        &fields,
        "map_flags",
        offset_of!(bpf_attr__bindgen_ty_1, map_flags),
    );
    check(
        &fields,
        "value_type_btf_obj_fd",
        offset_of!(bpf_attr__bindgen_ty_1, value_type_btf_obj_fd),
    );
    check(
        &fields,
        "prog_flags",
        offset_of!(bpf_attr__bindgen_ty_4, prog_flags),
    );
    check(
        &fields,
        "prog_token_fd",
        offset_of!(bpf_attr__bindgen_ty_4, prog_token_fd),
    );
    check(
        &fields,
        "log_true_size",
        offset_of!(bpf_attr__bindgen_ty_4, log_true_size),
    );
    check(
        &fields,
        "fd_array",
        offset_of!(bpf_attr__bindgen_ty_4, fd_array),
    );
    check(&fields, "fd_array_cnt", FD_ARRAY_CNT_OFFSET);
    check(
        &fields,
        "btf_flags",
        offset_of!(bpf_attr__bindgen_ty_12, btf_flags),
    );
    check(
        &fields,
        "btf_token_fd",
        offset_of!(bpf_attr__bindgen_ty_12, btf_token_fd),
    );
    check(
        &fields,
        "btf_log_true_size",
        offset_of!(bpf_attr__bindgen_ty_12, btf_log_true_size),
    );
    check(
        &fields,
        "open_flags",
        offset_of!(bpf_attr__bindgen_ty_8, open_flags),
    );
    check(&fields, "fd_by_id_token_fd", FD_BY_ID_TOKEN_FD_OFFSET);
    check(
        &fields,
        "token_create.bpffs_fd",
        offset_of!(bpf_attr__bindgen_ty_20, bpffs_fd),
    );
    check(
        &fields,
        "token_create.flags",
        offset_of!(bpf_attr__bindgen_ty_20, flags),
    );
    check(
        &fields,
        "test.duration",
        offset_of!(bpf_attr__bindgen_ty_7, duration),
    );
    check(
        &fields,
        "info.info",
        offset_of!(bpf_attr__bindgen_ty_9, info),
    );
    check(
        &fields,
        "prog_bind_map.flags",
        offset_of!(bpf_attr__bindgen_ty_19, flags),
    );
    // This kernel (6.18) has all of them; make sure the walk actually found the new ones.
    assert!(
        fields.contains_key("prog_token_fd"),
        "BTF walk found no prog_token_fd: {:?}",
        fields.keys()
    );
}

#[test]
fn bpf_token_info_matches_running_kernel() {
    let Some(btf) = vmlinux() else { return };
    let Some(id) = btf.find("bpf_token_info", KIND_STRUCT) else {
        eprintln!("note: running kernel has no struct bpf_token_info (added in 6.17); not checked");
        return;
    };
    let mut fields = HashMap::new();
    btf.flatten(id, "", 0, &mut fields);
    assert_eq!(
        fields["allowed_cmds"],
        [offset_of!(bpf_token_info, allowed_cmds)]
    );
    assert_eq!(
        fields["allowed_maps"],
        [offset_of!(bpf_token_info, allowed_maps)]
    );
    assert_eq!(
        fields["allowed_progs"],
        [offset_of!(bpf_token_info, allowed_progs)]
    );
    assert_eq!(
        fields["allowed_attachs"],
        [offset_of!(bpf_token_info, allowed_attachs)]
    );
    assert_eq!(
        btf.types[id as usize].type_ref as usize,
        size_of::<bpf_token_info>()
    );
    assert_eq!(fields.len(), 4);
}
