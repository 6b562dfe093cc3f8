//! Classification helpers for the 13 CO-RE relocation kinds
//! ([`CoreReloKind`], UAPI `enum bpf_core_relo_kind`, decoded by `ext.rs`).

use std::fmt;

pub use crate::ext::CoreReloKind;

impl CoreReloKind {
    /// libbpf's short name for the kind (`core_relo_kind_str`), as in its logs.
    pub fn name(self) -> &'static str {
        self.as_str()
    }

    /// Field-based kinds carry a field access string ("0:1:2").
    pub fn is_field_based(self) -> bool {
        (self as u32) <= 5
    }

    /// Type-based kinds have the access string "0".
    pub fn is_type_based(self) -> bool {
        matches!(
            self,
            CoreReloKind::TypeIdLocal
                | CoreReloKind::TypeIdTarget
                | CoreReloKind::TypeExists
                | CoreReloKind::TypeSize
                | CoreReloKind::TypeMatches
        )
    }

    /// Enumerator-based kinds name one enumerator by index.
    pub fn is_enumval_based(self) -> bool {
        matches!(
            self,
            CoreReloKind::EnumvalExists | CoreReloKind::EnumvalValue
        )
    }
}

impl fmt::Display for CoreReloKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_classes() {
        for v in 0..13u32 {
            let k = CoreReloKind::from_u32(v).unwrap();
            assert_eq!(k as u32, v);
            let classes = [k.is_field_based(), k.is_type_based(), k.is_enumval_based()];
            assert_eq!(classes.iter().filter(|c| **c).count(), 1, "{k}");
        }
        assert_eq!(CoreReloKind::from_u32(13), None);
    }
}
