//! The 13 CO-RE relocation kinds (UAPI `enum bpf_core_relo_kind`).

use std::fmt;

/// What a CO-RE relocation asks about the target kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum RelocKind {
    /// Byte offset of a field.
    FieldByteOffset = 0,
    /// Byte size of a field (of the load needed for a bitfield).
    FieldByteSize = 1,
    /// 1 if the field exists in the target, else 0.
    FieldExists = 2,
    /// 1 if the field is signed.
    FieldSigned = 3,
    /// Left shift that moves a bitfield to the top of a u64.
    FieldLshiftU64 = 4,
    /// Right shift that brings it back down.
    FieldRshiftU64 = 5,
    /// The type's id in the object's own BTF.
    TypeIdLocal = 6,
    /// The type's id in the target BTF (0 if missing).
    TypeIdTarget = 7,
    /// 1 if a compatible type exists in the target.
    TypeExists = 8,
    /// The target type's byte size.
    TypeSize = 9,
    /// 1 if the enumerator exists in the target enum.
    EnumvalExists = 10,
    /// The enumerator's value in the target.
    EnumvalValue = 11,
    /// 1 if a type that *matches* (stricter than compatible) exists.
    TypeMatches = 12,
}

impl RelocKind {
    /// Decodes the `kind` field of a `.BTF.ext` core_relo record.
    pub fn from_u32(v: u32) -> Option<Self> {
        use RelocKind::*;
        Some(match v {
            0 => FieldByteOffset,
            1 => FieldByteSize,
            2 => FieldExists,
            3 => FieldSigned,
            4 => FieldLshiftU64,
            5 => FieldRshiftU64,
            6 => TypeIdLocal,
            7 => TypeIdTarget,
            8 => TypeExists,
            9 => TypeSize,
            10 => EnumvalExists,
            11 => EnumvalValue,
            12 => TypeMatches,
            _ => return None,
        })
    }

    /// libbpf's short name for the kind (`core_relo_kind_str`), as in its logs.
    pub fn name(self) -> &'static str {
        use RelocKind::*;
        match self {
            FieldByteOffset => "byte_off",
            FieldByteSize => "byte_sz",
            FieldExists => "field_exists",
            FieldSigned => "signed",
            FieldLshiftU64 => "lshift_u64",
            FieldRshiftU64 => "rshift_u64",
            TypeIdLocal => "local_type_id",
            TypeIdTarget => "target_type_id",
            TypeExists => "type_exists",
            TypeMatches => "type_matches",
            TypeSize => "type_size",
            EnumvalExists => "enumval_exists",
            EnumvalValue => "enumval_value",
        }
    }

    /// Field-based kinds carry a field access string ("0:1:2").
    pub fn is_field_based(self) -> bool {
        (self as u32) <= 5
    }

    /// Type-based kinds have the access string "0".
    pub fn is_type_based(self) -> bool {
        matches!(
            self,
            RelocKind::TypeIdLocal
                | RelocKind::TypeIdTarget
                | RelocKind::TypeExists
                | RelocKind::TypeSize
                | RelocKind::TypeMatches
        )
    }

    /// Enumerator-based kinds name one enumerator by index.
    pub fn is_enumval_based(self) -> bool {
        matches!(self, RelocKind::EnumvalExists | RelocKind::EnumvalValue)
    }
}

impl fmt::Display for RelocKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_classes() {
        for v in 0..13u32 {
            let k = RelocKind::from_u32(v).unwrap();
            assert_eq!(k as u32, v);
            let classes = [k.is_field_based(), k.is_type_based(), k.is_enumval_based()];
            assert_eq!(classes.iter().filter(|c| **c).count(), 1, "{k}");
        }
        assert_eq!(RelocKind::from_u32(13), None);
    }
}
