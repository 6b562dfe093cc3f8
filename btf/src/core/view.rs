//! The narrow, checked view of a BTF that the CO-RE engine needs.
//!
//! The engine walks local and target types through this trait so that every
//! access is bounds-checked and fallible: a hostile target BTF (bogus ids,
//! huge vlen, reference loops) turns into [`ViewError`], never a panic. The
//! parser's [`crate::Btf`] implements it in `adapter.rs`.

/// BTF kind numbers (UAPI `BTF_KIND_*`).
pub(crate) mod k {
    pub const UNKN: u8 = 0;
    pub const INT: u8 = 1;
    pub const PTR: u8 = 2;
    pub const ARRAY: u8 = 3;
    pub const STRUCT: u8 = 4;
    pub const UNION: u8 = 5;
    pub const ENUM: u8 = 6;
    pub const FWD: u8 = 7;
    pub const TYPEDEF: u8 = 8;
    pub const VOLATILE: u8 = 9;
    pub const CONST: u8 = 10;
    pub const RESTRICT: u8 = 11;
    pub const FUNC: u8 = 12;
    pub const FUNC_PROTO: u8 = 13;
    pub const VAR: u8 = 14;
    pub const DATASEC: u8 = 15;
    pub const FLOAT: u8 = 16;
    pub const DECL_TAG: u8 = 17;
    pub const TYPE_TAG: u8 = 18;
    pub const ENUM64: u8 = 19;

    pub fn name(kind: u8) -> &'static str {
        match kind {
            UNKN => "void",
            INT => "int",
            PTR => "ptr",
            ARRAY => "array",
            STRUCT => "struct",
            UNION => "union",
            ENUM => "enum",
            FWD => "fwd",
            TYPEDEF => "typedef",
            VOLATILE => "volatile",
            CONST => "const",
            RESTRICT => "restrict",
            FUNC => "func",
            FUNC_PROTO => "func_proto",
            VAR => "var",
            DATASEC => "datasec",
            FLOAT => "float",
            DECL_TAG => "decl_tag",
            TYPE_TAG => "type_tag",
            ENUM64 => "enum64",
            _ => "unknown",
        }
    }
}

/// Why a type could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    /// The id is not in the BTF.
    #[error("type id {0} does not exist")]
    NoType(u32),
    /// A member/enumerator/param index beyond the type's vlen.
    #[error("type id {id}: index {index} out of range")]
    Index { id: u32, index: u32 },
    /// The type is not of the kind the caller needs.
    #[error("type id {id} is a {found}, not a {wanted}")]
    Kind {
        id: u32,
        found: &'static str,
        wanted: &'static str,
    },
    /// A name offset outside the string section, or not UTF-8.
    #[error("bad string offset {0}")]
    Str(u32),
    /// Reference chains longer than any real BTF has (a loop).
    #[error("type id {0}: reference chain too deep (loop?)")]
    TooDeep(u32),
    /// Size arithmetic overflowed or the type has no size.
    #[error("type id {0}: {1}")]
    Size(u32, &'static str),
    /// The underlying BTF reported a parse error.
    #[error("{0}")]
    Parse(String),
}

/// The common header of a type record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ty<'a> {
    pub id: u32,
    pub kind: u8,
    pub name: &'a str,
    pub vlen: u16,
    pub kflag: bool,
    /// `size` for INT/STRUCT/UNION/ENUM/ENUM64/FLOAT/DATASEC, else `type`.
    pub size_or_type: u32,
}

impl Ty<'_> {
    pub fn is_composite(&self) -> bool {
        self.kind == k::STRUCT || self.kind == k::UNION
    }
    pub fn is_any_enum(&self) -> bool {
        self.kind == k::ENUM || self.kind == k::ENUM64
    }
    pub fn is_mod_or_typedef(&self) -> bool {
        matches!(
            self.kind,
            k::TYPEDEF | k::VOLATILE | k::CONST | k::RESTRICT | k::TYPE_TAG
        )
    }
    pub fn kind_name(&self) -> &'static str {
        k::name(self.kind)
    }
}

/// A struct/union member.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Member<'a> {
    pub name: &'a str,
    pub type_id: u32,
    /// Bit offset (the kflag encoding already split).
    pub bit_offset: u32,
    /// Bitfield size, 0 if not a bitfield.
    pub bitfield_size: u32,
}

/// An INT's encoding word.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IntInfo {
    /// The raw encoding bits (BTF_INT_SIGNED = 1, CHAR = 2, BOOL = 4).
    pub encoding: u8,
    pub signed: bool,
    pub offset: u8,
}

/// The engine's view of one BTF. Ids are global (split BTF includes its base).
pub(crate) trait View {
    /// The string at `off` in the string section (split BTF: base first).
    fn str_at(&self, off: u32) -> Result<&str, ViewError>;
    /// Type `id`; id 0 is VOID (kind UNKN, empty name).
    fn ty(&self, id: u32) -> Result<Ty<'_>, ViewError>;
    fn member(&self, id: u32, index: u32) -> Result<Member<'_>, ViewError>;
    /// (element type, nelems) of an ARRAY.
    fn array(&self, id: u32) -> Result<(u32, u32), ViewError>;
    fn int(&self, id: u32) -> Result<IntInfo, ViewError>;
    /// Name and value of an ENUM/ENUM64 enumerator. ENUM values are the raw
    /// `__s32` sign-extended to 64 bits (as libbpf reads them); ENUM64 values
    /// are `lo32 | hi32 << 32`.
    fn enumerator(&self, id: u32, index: u32) -> Result<(&str, u64), ViewError>;
    /// Type of a FUNC_PROTO parameter.
    fn param_type(&self, id: u32, index: u32) -> Result<u32, ViewError>;
    /// Size of a pointer in this BTF (libbpf's `btf_ptr_sz`): the size of
    /// its `long`, else the host's pointer size. No default: a fixed 8 would
    /// be wrong for the BTF of a 32-bit kernel.
    fn ptr_size(&self) -> u32;
    /// The ids this BTF itself holds (for split BTF: not its base's).
    fn own_ids(&self) -> std::ops::Range<u32>;
    /// Whether [`find_candidates`](Self::find_candidates) is cheap (a
    /// name index exists). When it is not, the engine looks up all the names
    /// it needs in one [`scan_candidates`](Self::scan_candidates) pass
    /// instead of building the index.
    fn has_name_index(&self) -> bool {
        true
    }
    /// Builds the name index now (no-op where there is none to build).
    fn build_name_index(&self) {}
    /// Called once per CO-RE pass while there is no name index: whether
    /// this pass should build it rather than scan (the view counts passes).
    fn pass_builds_index(&self) -> bool {
        false
    }
    /// Candidates for several `(essential name, kind)` keys at once, in one
    /// pass over this BTF's own types: `result[i]` holds what
    /// `find_candidates(wanted[i])` would return.
    fn scan_candidates(&self, wanted: &[(&str, u8)]) -> Result<Vec<Vec<u32>>, ViewError> {
        wanted
            .iter()
            .map(|&(e, kind)| {
                let mut v = Vec::new();
                self.find_candidates(e, kind, &mut v)?;
                Ok(v)
            })
            .collect()
    }
    /// Appends, in ascending id order, this BTF's own types whose kind is
    /// CO-RE compatible with `kind` (ENUM and ENUM64 are interchangeable) and
    /// whose essential name is `essential` (libbpf's `bpf_core_add_cands`).
    /// The default is libbpf's linear scan; implementations with a name index
    /// override it.
    fn find_candidates(
        &self,
        essential: &str,
        kind: u8,
        out: &mut Vec<u32>,
    ) -> Result<(), ViewError> {
        let enumish = kind == k::ENUM || kind == k::ENUM64;
        for id in self.own_ids() {
            let t = self.ty(id)?;
            let kind_ok = t.kind == kind || (enumish && t.is_any_enum());
            if kind_ok && !t.name.is_empty() && essential_name(t.name) == essential {
                out.push(id);
            }
        }
        Ok(())
    }
}

/// Longest modifier/typedef chain we follow before calling it a loop. libbpf
/// uses 32 for size resolution (MAX_RESOLVE_DEPTH); real chains are short.
pub(crate) const MAX_CHAIN: u32 = 64;

/// libbpf's `skip_mods_and_typedefs`: follow CONST/VOLATILE/RESTRICT/
/// TYPE_TAG/TYPEDEF to the first other type. Bounded, unlike libbpf's.
pub(crate) fn skip_mods_and_typedefs(v: &dyn View, mut id: u32) -> Result<Ty<'_>, ViewError> {
    for _ in 0..MAX_CHAIN {
        let t = v.ty(id)?;
        if !t.is_mod_or_typedef() {
            return Ok(t);
        }
        id = t.size_or_type;
    }
    Err(ViewError::TooDeep(id))
}

/// libbpf's `btf__resolve_size`: byte size of a type, following modifiers,
/// typedefs, VARs and arrays (multiplying), at most 32 levels deep.
pub(crate) fn resolve_size(v: &dyn View, type_id: u32) -> Result<u64, ViewError> {
    const MAX_RESOLVE_DEPTH: u32 = 32;
    let mut nelems: u64 = 1;
    let mut id = type_id;
    let mut size: Option<u64> = None;
    for _ in 0..MAX_RESOLVE_DEPTH {
        let t = v.ty(id)?;
        match t.kind {
            k::UNKN => break, // void: no size
            k::INT | k::STRUCT | k::UNION | k::ENUM | k::ENUM64 | k::DATASEC | k::FLOAT => {
                size = Some(t.size_or_type as u64);
                break;
            }
            k::PTR => {
                size = Some(v.ptr_size() as u64);
                break;
            }
            k::TYPEDEF
            | k::VOLATILE
            | k::CONST
            | k::RESTRICT
            | k::VAR
            | k::DECL_TAG
            | k::TYPE_TAG => id = t.size_or_type,
            k::ARRAY => {
                let (elem, n) = v.array(id)?;
                if nelems != 0 && n as u64 > u32::MAX as u64 / nelems {
                    return Err(ViewError::Size(type_id, "array size overflows u32"));
                }
                nelems *= n as u64;
                id = elem;
            }
            _ => return Err(ViewError::Size(type_id, "type has no size")),
        }
    }
    let size = size.ok_or(ViewError::Size(type_id, "type has no size"))?;
    if nelems != 0 && size > u32::MAX as u64 / nelems {
        return Err(ViewError::Size(type_id, "size overflows u32"));
    }
    Ok(nelems * size)
}

/// libbpf's `bpf_core_essential_name_len`: the name without its last
/// `___flavor` suffix (`X___Y` with X and Y not underscores).
pub fn essential_name(name: &str) -> &str {
    let b = name.as_bytes();
    let n = b.len();
    if n >= 5 {
        for i in (0..=n - 5).rev() {
            if b[i] != b'_'
                && b[i + 1] == b'_'
                && b[i + 2] == b'_'
                && b[i + 3] == b'_'
                && b[i + 4] != b'_'
            {
                return &name[..i + 1];
            }
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::essential_name;

    #[test]
    fn essential_names() {
        assert_eq!(essential_name("task_struct"), "task_struct");
        assert_eq!(essential_name("task_struct___old"), "task_struct");
        assert_eq!(essential_name("a___b___c"), "a___b");
        assert_eq!(essential_name("a____b"), "a____b");
        assert_eq!(essential_name("___x"), "___x");
        assert_eq!(essential_name("x___"), "x___");
        assert_eq!(essential_name("x___y"), "x");
        assert_eq!(essential_name(""), "");
        assert_eq!(essential_name("nf_conn___init"), "nf_conn");
    }
}
