//! What a BPF token (or the bpffs it came from) delegates: the four `delegate_*` masks.
//!
//! Sources, best first:
//! 1. `BPF_OBJ_GET_INFO_BY_FD` on the token (`struct bpf_token_info`, kernels 6.17+);
//! 2. the token's `/proc/self/fdinfo/<fd>` (`allowed_cmds:` ... lines, every token kernel, 6.9+);
//! 3. the bpffs mount options in `/proc/self/mountinfo` (`delegate_cmds=...`), for a bpffs path.
//!
//! Mount-option syntax follows the kernel's `bpf_parse_param` (`kernel/bpf/inode.c`): the value is
//! split on `:`, each part is `any` (all bits), an enum constant name with its prefix stripped
//! (case-insensitive, looked up in the kernel BTF enums `bpf_cmd`, `bpf_map_type`, `bpf_prog_type`,
//! `bpf_attach_type`), or a number (`0x..`, octal or decimal) which *assigns* the mask.
//! Name tables come from the running kernel's BTF, like the kernel's own parser, so names of
//! types newer than our UAPI bindings still resolve.

use std::fmt;
use std::path::{Path, PathBuf};

/// Which of the four delegation masks a value belongs to.
#[derive(Debug, Copy, Clone, PartialEq, Eq, Hash)]
pub enum MaskKind {
    /// `delegate_cmds` / `allowed_cmds` (enum `bpf_cmd`, prefix `BPF_`).
    Cmds,
    /// `delegate_maps` / `allowed_maps` (enum `bpf_map_type`, prefix `BPF_MAP_TYPE_`).
    Maps,
    /// `delegate_progs` / `allowed_progs` (enum `bpf_prog_type`, prefix `BPF_PROG_TYPE_`).
    Progs,
    /// `delegate_attachs` / `allowed_attachs` (enum `bpf_attach_type`, prefix `BPF_`).
    Attachs,
}

impl MaskKind {
    /// All four, in mount-option order.
    pub const ALL: [MaskKind; 4] = [
        MaskKind::Cmds,
        MaskKind::Maps,
        MaskKind::Progs,
        MaskKind::Attachs,
    ];

    /// The kernel BTF enum the names come from.
    pub const fn enum_name(self) -> &'static str {
        match self {
            MaskKind::Cmds => "bpf_cmd",
            MaskKind::Maps => "bpf_map_type",
            MaskKind::Progs => "bpf_prog_type",
            MaskKind::Attachs => "bpf_attach_type",
        }
    }

    /// The prefix the kernel strips from enum constant names.
    pub const fn prefix(self) -> &'static str {
        match self {
            MaskKind::Cmds => "BPF_",
            MaskKind::Maps => "BPF_MAP_TYPE_",
            MaskKind::Progs => "BPF_PROG_TYPE_",
            MaskKind::Attachs => "BPF_",
        }
    }

    /// The bpffs mount option name.
    pub const fn mount_option(self) -> &'static str {
        match self {
            MaskKind::Cmds => "delegate_cmds",
            MaskKind::Maps => "delegate_maps",
            MaskKind::Progs => "delegate_progs",
            MaskKind::Attachs => "delegate_attachs",
        }
    }

    /// The token fdinfo / `bpf_token_info` field name.
    pub const fn info_field(self) -> &'static str {
        match self {
            MaskKind::Cmds => "allowed_cmds",
            MaskKind::Maps => "allowed_maps",
            MaskKind::Progs => "allowed_progs",
            MaskKind::Attachs => "allowed_attachs",
        }
    }
}

/// Value ↔ name table for one [`MaskKind`], names as bpffs mount options spell them
/// (lower case, prefix stripped).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameTable {
    /// `(value, name)`, in enum order; a value may have several names (aliases).
    entries: Vec<(u32, String)>,
}

impl NameTable {
    /// Builds a table from enum constants `(full C name, value)`, e.g. `("BPF_MAP_TYPE_HASH", 1)`.
    /// Constants without the kind's prefix (like `__MAX_BPF_CMD`) and values >= 64 (which no
    /// mask can hold) are skipped, as the kernel's parser does.
    pub fn from_enum_constants<'a>(
        kind: MaskKind,
        constants: impl IntoIterator<Item = (&'a str, i64)>,
    ) -> Self {
        let prefix = kind.prefix();
        let entries = constants
            .into_iter()
            .filter_map(|(name, value)| {
                let short = strip_prefix_ignore_case(name, prefix)?;
                if short.is_empty() || !(0..64).contains(&value) {
                    return None;
                }
                Some((value as u32, short.to_ascii_lowercase()))
            })
            .collect();
        NameTable { entries }
    }

    /// True when the table holds no names (no kernel BTF).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value for a (case-insensitive, prefix-stripped) name.
    pub fn value(&self, name: &str) -> Option<u32> {
        self.entries
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|&(v, _)| v)
    }

    /// The first name for a value.
    pub fn name(&self, value: u32) -> Option<&str> {
        self.entries
            .iter()
            .find(|&&(v, _)| v == value)
            .map(|(_, n)| n.as_str())
    }

    /// All `(value, name)` entries in enum order.
    pub fn entries(&self) -> impl Iterator<Item = (u32, &str)> {
        self.entries.iter().map(|(v, n)| (*v, n.as_str()))
    }

    /// Mask of every value the table knows.
    pub fn known_mask(&self) -> u64 {
        self.entries.iter().fold(0, |m, &(v, _)| m | (1u64 << v))
    }

    /// The kernel's "any" mask for display: every bit below the largest known value plus one
    /// (`BIT_ULL(__MAX_BPF_*) - 1`). 0 for an empty table.
    pub fn any_mask(&self) -> u64 {
        match self.entries.iter().map(|&(v, _)| v).max() {
            None => 0,
            Some(63) => u64::MAX,
            Some(m) => (1u64 << (m + 1)) - 1,
        }
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
    {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

/// Name tables for all four masks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameTables {
    pub cmds: NameTable,
    pub maps: NameTable,
    pub progs: NameTable,
    pub attachs: NameTable,
}

impl NameTables {
    /// The table for one kind.
    pub fn table(&self, kind: MaskKind) -> &NameTable {
        match kind {
            MaskKind::Cmds => &self.cmds,
            MaskKind::Maps => &self.maps,
            MaskKind::Progs => &self.progs,
            MaskKind::Attachs => &self.attachs,
        }
    }

    fn table_mut(&mut self, kind: MaskKind) -> &mut NameTable {
        match kind {
            MaskKind::Cmds => &mut self.cmds,
            MaskKind::Maps => &mut self.maps,
            MaskKind::Progs => &mut self.progs,
            MaskKind::Attachs => &mut self.attachs,
        }
    }

    /// Builds the tables from a lookup `enum name -> constants`, e.g. over kernel BTF.
    pub fn from_enum_lookup<F, I, S>(mut lookup: F) -> Self
    where
        F: FnMut(&str) -> I,
        I: IntoIterator<Item = (S, i64)>,
        S: AsRef<str>,
    {
        let mut tables = NameTables::default();
        for kind in MaskKind::ALL {
            let constants: Vec<(S, i64)> = lookup(kind.enum_name()).into_iter().collect();
            *tables.table_mut(kind) = NameTable::from_enum_constants(
                kind,
                constants.iter().map(|(n, v)| (n.as_ref(), *v)),
            );
        }
        tables
    }
}

/// Error parsing a delegation.
#[derive(Debug, thiserror::Error)]
pub enum DelegationError {
    #[error("{option}: unknown name or invalid number {part:?}")]
    BadValue { option: &'static str, part: String },
    #[error("token fdinfo has no {0} line (is the fd a BPF token?)")]
    MissingField(&'static str),
    #[error("no bpffs mount at {0}")]
    NoBpffsMount(PathBuf),
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The four delegation masks of a token or bpffs instance.
#[derive(Debug, Copy, Clone, Default, PartialEq, Eq, Hash)]
pub struct Delegation {
    pub cmds: u64,
    pub maps: u64,
    pub progs: u64,
    pub attachs: u64,
}

/// Where a [`Delegation`] was learnt from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DelegationSource {
    /// `BPF_OBJ_GET_INFO_BY_FD` on the token (`struct bpf_token_info`).
    TokenInfo,
    /// `/proc/self/fdinfo/<token fd>`.
    TokenFdinfo,
    /// bpffs super options in `/proc/self/mountinfo` for this mount point.
    MountInfo(PathBuf),
}

impl fmt::Display for DelegationSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DelegationSource::TokenInfo => f.write_str("bpf_token_info"),
            DelegationSource::TokenFdinfo => f.write_str("token fdinfo"),
            DelegationSource::MountInfo(p) => write!(f, "mountinfo {}", p.display()),
        }
    }
}

fn bit(v: u32) -> u64 {
    if v < 64 {
        1u64 << v
    } else {
        0
    }
}

impl Delegation {
    /// Everything delegated (`any` for all four masks).
    pub const ANY: Delegation = Delegation {
        cmds: u64::MAX,
        maps: u64::MAX,
        progs: u64::MAX,
        attachs: u64::MAX,
    };

    /// One mask.
    pub fn mask(&self, kind: MaskKind) -> u64 {
        match kind {
            MaskKind::Cmds => self.cmds,
            MaskKind::Maps => self.maps,
            MaskKind::Progs => self.progs,
            MaskKind::Attachs => self.attachs,
        }
    }

    fn mask_mut(&mut self, kind: MaskKind) -> &mut u64 {
        match kind {
            MaskKind::Cmds => &mut self.cmds,
            MaskKind::Maps => &mut self.maps,
            MaskKind::Progs => &mut self.progs,
            MaskKind::Attachs => &mut self.attachs,
        }
    }

    /// `bpf_token_allow_cmd`.
    pub fn allows_cmd(&self, cmd: u32) -> bool {
        self.cmds & bit(cmd) != 0
    }

    /// `bpf_token_allow_map_type` (also needs `map_create` in cmds to matter).
    pub fn allows_map(&self, map_type: u32) -> bool {
        self.maps & bit(map_type) != 0
    }

    /// `bpf_token_allow_prog_type`: both the program type and the expected attach type bit.
    pub fn allows_prog(&self, prog_type: u32, expected_attach_type: u32) -> bool {
        self.progs & bit(prog_type) != 0 && self.attachs & bit(expected_attach_type) != 0
    }

    /// Parses one option value as the kernel does (`bpf_parse_param`).
    pub fn parse_mask(
        kind: MaskKind,
        value: &str,
        names: &NameTables,
    ) -> Result<u64, DelegationError> {
        let table = names.table(kind);
        let mut msk = 0u64;
        for part in value.split(':') {
            if part == "any" {
                msk = u64::MAX;
            } else if let Some(v) = table.value(part) {
                msk |= bit(v);
            } else {
                // The kernel's kstrtou64 *assigns* here; keep that quirk.
                msk = parse_kernel_u64(part).ok_or_else(|| DelegationError::BadValue {
                    option: kind.mount_option(),
                    part: part.to_string(),
                })?;
            }
        }
        Ok(msk)
    }

    /// Parses bpffs super options (comma separated, as in `/proc/self/mountinfo`). Options other
    /// than `delegate_*` are ignored; repeated options OR together like the kernel's parser.
    pub fn from_mount_options(opts: &str, names: &NameTables) -> Result<Self, DelegationError> {
        let mut d = Delegation::default();
        for opt in opts.split(',') {
            let Some((key, value)) = opt.split_once('=') else {
                continue;
            };
            if let Some(kind) = MaskKind::ALL.into_iter().find(|k| k.mount_option() == key) {
                *d.mask_mut(kind) |= Self::parse_mask(kind, value, names)?;
            }
        }
        Ok(d)
    }

    /// Parses a token's `/proc/self/fdinfo/<fd>` text (`allowed_cmds:\t0x..` or `any`).
    pub fn from_token_fdinfo(text: &str) -> Result<Self, DelegationError> {
        let mut d = Delegation::default();
        for kind in MaskKind::ALL {
            let field = kind.info_field();
            let value = text
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    (k.trim() == field).then(|| v.trim())
                })
                .ok_or(DelegationError::MissingField(field))?;
            *d.mask_mut(kind) = if value == "any" {
                u64::MAX
            } else {
                parse_kernel_u64(value).ok_or_else(|| DelegationError::BadValue {
                    option: field,
                    part: value.to_string(),
                })?
            };
        }
        Ok(d)
    }

    /// Reads `/proc/self/fdinfo/<fd>` of a token.
    pub fn read_token_fdinfo(fd: std::os::fd::BorrowedFd<'_>) -> Result<Self, DelegationError> {
        use std::os::fd::AsRawFd;
        let path = PathBuf::from(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()));
        let text = std::fs::read_to_string(&path).map_err(|source| DelegationError::Io {
            path: path.clone(),
            source,
        })?;
        Self::from_token_fdinfo(&text)
    }

    /// Finds the bpffs mounted at `mount_point` in `/proc/self/mountinfo` and parses its
    /// delegation. The last matching entry wins, because a later mount shadows earlier ones.
    pub fn from_mountinfo(
        mountinfo: &str,
        mount_point: &Path,
        names: &NameTables,
    ) -> Result<Self, DelegationError> {
        let entry = parse_mountinfo(mountinfo)
            .filter(|e| e.fs_type == "bpf" && Path::new(&e.mount_point) == mount_point)
            .last()
            .ok_or_else(|| DelegationError::NoBpffsMount(mount_point.to_path_buf()))?;
        Self::from_mount_options(&entry.super_options, names)
    }

    /// Reads `/proc/self/mountinfo` and resolves `path` (symlinks, `..`) before matching.
    pub fn read_mountinfo(path: &Path, names: &NameTables) -> Result<Self, DelegationError> {
        let mi = Path::new("/proc/self/mountinfo");
        let text = std::fs::read_to_string(mi).map_err(|source| DelegationError::Io {
            path: mi.to_path_buf(),
            source,
        })?;
        let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        Self::from_mountinfo(&text, &canon, names)
    }

    /// Renders the masks as bpffs mount options (`delegate_cmds=map_create:prog_load,...`),
    /// the way the kernel's `show_options` does: names for known bits, `any` when every known
    /// bit is set, and a hex remainder for bits without a name. Zero masks are omitted.
    pub fn to_mount_options(&self, names: &NameTables) -> String {
        let mut out = Vec::new();
        for kind in MaskKind::ALL {
            let msk = self.mask(kind);
            if msk == 0 {
                continue;
            }
            out.push(format!(
                "{}={}",
                kind.mount_option(),
                format_mask(msk, names.table(kind))
            ));
        }
        out.join(",")
    }
}

/// Formats one mask: `any`, `name:name`, or names plus a `0x..` remainder.
pub fn format_mask(msk: u64, table: &NameTable) -> String {
    let any = table.any_mask();
    if msk == u64::MAX || (any != 0 && msk & any == any) {
        return "any".to_string();
    }
    let mut parts = Vec::new();
    let mut rest = msk;
    for (v, n) in table.entries() {
        if rest & bit(v) != 0 {
            parts.push(n.to_string());
            rest &= !bit(v);
        }
    }
    if rest != 0 {
        parts.push(format!("{rest:#x}"));
    }
    parts.join(":")
}

/// `kstrtou64(s, 0, ..)`: `0x`/`0X` hex, leading `0` octal, else decimal.
fn parse_kernel_u64(s: &str) -> Option<u64> {
    let s = s.strip_prefix('+').unwrap_or(s);
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        u64::from_str_radix(&s[1..], 8).ok()
    } else {
        s.parse().ok()
    }
}

/// One parsed `/proc/self/mountinfo` line (only the fields we use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfoEntry {
    pub mount_id: u64,
    pub mount_point: String,
    pub fs_type: String,
    pub source: String,
    pub super_options: String,
}

/// Parses mountinfo text; malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> impl Iterator<Item = MountInfoEntry> + '_ {
    text.lines().filter_map(|line| {
        let mut fields = line.split(' ');
        let mount_id = fields.next()?.parse().ok()?;
        let _parent = fields.next()?;
        let _dev = fields.next()?;
        let _root = fields.next()?;
        let mount_point = unescape_octal(fields.next()?);
        let _opts = fields.next()?;
        // optional fields until the "-" separator
        for f in fields.by_ref() {
            if f == "-" {
                break;
            }
        }
        let fs_type = unescape_octal(fields.next()?);
        let source = unescape_octal(fields.next()?);
        let super_options = unescape_octal(fields.next().unwrap_or(""));
        Some(MountInfoEntry {
            mount_id,
            mount_point,
            fs_type,
            source,
            super_options,
        })
    })
}

/// Undo the kernel's `\ooo` escaping of space, tab, newline and backslash in mountinfo.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            if v <= 0xff {
                out.push(v as u8);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl fmt::Display for Delegation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cmds={:#x} maps={:#x} progs={:#x} attachs={:#x}",
            self.cmds, self.maps, self.progs, self.attachs
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aya_obj::generated::{bpf_attach_type, bpf_cmd, bpf_map_type, bpf_prog_type};

    /// Tables holding a few constants, named by aya-obj's generated enums (their Debug names are
    /// the UAPI constant names).
    fn small_tables() -> NameTables {
        let cmds = [
            bpf_cmd::BPF_MAP_CREATE,
            bpf_cmd::BPF_PROG_LOAD,
            bpf_cmd::BPF_BTF_LOAD,
        ];
        let maps = [
            bpf_map_type::BPF_MAP_TYPE_HASH,
            bpf_map_type::BPF_MAP_TYPE_ARRAY,
            bpf_map_type::BPF_MAP_TYPE_STACK,
        ];
        let progs = [
            bpf_prog_type::BPF_PROG_TYPE_SOCKET_FILTER,
            bpf_prog_type::BPF_PROG_TYPE_XDP,
        ];
        let attachs = [
            bpf_attach_type::BPF_CGROUP_INET_INGRESS,
            bpf_attach_type::BPF_XDP,
        ];
        NameTables::from_enum_lookup(|e| -> Vec<(String, i64)> {
            match e {
                "bpf_cmd" => cmds.iter().map(|c| (format!("{c:?}"), *c as i64)).collect(),
                "bpf_map_type" => maps.iter().map(|c| (format!("{c:?}"), *c as i64)).collect(),
                "bpf_prog_type" => progs
                    .iter()
                    .map(|c| (format!("{c:?}"), *c as i64))
                    .collect(),
                "bpf_attach_type" => attachs
                    .iter()
                    .map(|c| (format!("{c:?}"), *c as i64))
                    .collect(),
                _ => vec![],
            }
        })
    }

    #[test]
    fn parse_names_case_insensitively_and_any() {
        let t = small_tables();
        let m = Delegation::parse_mask(MaskKind::Cmds, "map_create:PROG_LOAD", &t).unwrap();
        assert_eq!(
            m,
            (1 << bpf_cmd::BPF_MAP_CREATE as u32) | (1 << bpf_cmd::BPF_PROG_LOAD as u32)
        );
        assert_eq!(
            Delegation::parse_mask(MaskKind::Progs, "any", &t).unwrap(),
            u64::MAX
        );
        assert_eq!(
            Delegation::parse_mask(MaskKind::Maps, "Hash", &t).unwrap(),
            1 << bpf_map_type::BPF_MAP_TYPE_HASH as u32
        );
        assert!(Delegation::parse_mask(MaskKind::Maps, "nosuchmap", &t).is_err());
    }

    #[test]
    fn numbers_assign_like_kstrtou64() {
        let t = small_tables();
        assert_eq!(
            Delegation::parse_mask(MaskKind::Cmds, "0x21", &t).unwrap(),
            0x21
        );
        assert_eq!(
            Delegation::parse_mask(MaskKind::Cmds, "010", &t).unwrap(),
            8
        );
        assert_eq!(Delegation::parse_mask(MaskKind::Cmds, "7", &t).unwrap(), 7);
        // A number after a name replaces the mask (the kernel assigns, it does not OR).
        assert_eq!(
            Delegation::parse_mask(MaskKind::Cmds, "prog_load:0x1", &t).unwrap(),
            1
        );
        assert!(Delegation::parse_mask(MaskKind::Cmds, "0xzz", &t).is_err());
    }

    #[test]
    fn mount_options_round_trip() {
        let t = small_tables();
        let opts = "rw,relatime,uid=0,delegate_cmds=map_create:prog_load:btf_load,delegate_maps=hash,delegate_progs=xdp,delegate_attachs=xdp";
        let d = Delegation::from_mount_options(opts, &t).unwrap();
        assert!(d.allows_cmd(bpf_cmd::BPF_BTF_LOAD as u32));
        assert!(d.allows_map(bpf_map_type::BPF_MAP_TYPE_HASH as u32));
        assert!(!d.allows_map(bpf_map_type::BPF_MAP_TYPE_ARRAY as u32));
        assert!(d.allows_prog(
            bpf_prog_type::BPF_PROG_TYPE_XDP as u32,
            bpf_attach_type::BPF_XDP as u32
        ));
        assert!(!d.allows_prog(bpf_prog_type::BPF_PROG_TYPE_XDP as u32, 0));
        assert_eq!(
            d.to_mount_options(&t),
            "delegate_cmds=map_create:prog_load:btf_load,delegate_maps=hash,delegate_progs=xdp,delegate_attachs=xdp"
        );
        let d2 = Delegation::from_mount_options(&d.to_mount_options(&t), &t).unwrap();
        assert_eq!(d, d2);
        // Unknown bits render as a hex remainder, as /proc/mounts shows them.
        let odd = Delegation {
            maps: (1 << 1) | (1 << 40),
            ..Default::default()
        };
        assert_eq!(
            odd.to_mount_options(&t),
            format!("delegate_maps=hash:{:#x}", 1u64 << 40)
        );
        assert_eq!(
            Delegation::ANY.to_mount_options(&t).matches("=any").count(),
            4
        );
    }

    #[test]
    fn mountinfo_lines_and_escapes() {
        let t = small_tables();
        let text = "\
22 1 0:21 / /sys/fs/bpf rw,nosuid,nodev,noexec,relatime shared:7 - bpf bpf rw,mode=700
99 22 0:50 / /tmp/my\\040bpf rw,relatime - bpf bpf rw,delegate_cmds=prog_load,delegate_progs=xdp,delegate_attachs=any
100 22 0:51 / /tmp/other rw - tmpfs tmpfs rw
garbage line
";
        let entries: Vec<_> = parse_mountinfo(text).collect();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[1].mount_point, "/tmp/my bpf");
        let d = Delegation::from_mountinfo(text, Path::new("/tmp/my bpf"), &t).unwrap();
        assert_eq!(d.cmds, 1 << bpf_cmd::BPF_PROG_LOAD as u32);
        assert_eq!(d.attachs, u64::MAX);
        let none = Delegation::from_mountinfo(text, Path::new("/sys/fs/bpf"), &t).unwrap();
        assert_eq!(none, Delegation::default());
        assert!(matches!(
            Delegation::from_mountinfo(text, Path::new("/tmp/other"), &t),
            Err(DelegationError::NoBpffsMount(_))
        ));
    }

    #[test]
    fn token_fdinfo() {
        let text = "pos:\t0\nflags:\t02000002\nmnt_id:\t99\nino:\t1234\nallowed_cmds:\t0x40020\nallowed_maps:\t0x2\nallowed_progs:\tany\nallowed_attachs:\t0x2000000000\n";
        let d = Delegation::from_token_fdinfo(text).unwrap();
        assert_eq!(d.cmds, 0x40020);
        assert_eq!(d.maps, 2);
        assert_eq!(d.progs, u64::MAX);
        assert_eq!(d.attachs, 1 << 37);
        assert!(matches!(
            Delegation::from_token_fdinfo("pos:\t0\n"),
            Err(DelegationError::MissingField("allowed_cmds"))
        ));
    }

    #[test]
    fn hostile_input_does_not_panic() {
        let t = small_tables();
        for s in [
            "",
            ":",
            "::any::",
            "0x",
            "\\",
            "a=b=c",
            "delegate_cmds=",
            "delegate_cmds=:::",
        ] {
            let _ = Delegation::from_mount_options(s, &t);
            let _ = Delegation::from_token_fdinfo(s);
            let _ = parse_mountinfo(s).count();
        }
        assert_eq!(unescape_octal("a\\0"), "a\\0");
        assert_eq!(unescape_octal("\\777x"), "\\777x");
        assert_eq!(unescape_octal("x\\134y"), "x\\y");
    }
}
