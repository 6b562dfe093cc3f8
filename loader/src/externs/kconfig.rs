//! `.kconfig` extern values: kconfig text parsing (`CONFIG_FOO=y|n|m|"str"|123`) and the encoding
//! of values into the `.kconfig` map image, with libbpf's type and range checks
//! (`bpf_object__process_kconfig_line`, `set_kcfg_value_*`).

use super::{ExternError, KcfgType};

/// Where the system kconfig comes from: `/boot/config-$(uname -r)`, else `/proc/config.gz`.
pub const PROC_CONFIG_GZ: &str = "/proc/config.gz";

/// One kconfig extern to fill: its place in the image and its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KcfgSlot {
    /// Byte offset in the `.kconfig` image.
    pub off: usize,
    /// Size in bytes.
    pub size: usize,
    /// Kind of value it accepts.
    pub ty: KcfgType,
    /// Signed integer.
    pub signed: bool,
}

/// Reads the running kernel's kconfig text: `/boot/config-<release>` (plain or gzip), else
/// `/proc/config.gz`. The error names both places.
// Out of line: smaller code where it was inlined (issue 8: binary size).
#[inline(never)]
pub fn read_system_kconfig() -> Result<String, ExternError> {
    let release = uname_release();
    let boot = format!("/boot/config-{release}");
    let mut tried = Vec::new();
    for path in [boot.as_str(), PROC_CONFIG_GZ] {
        match std::fs::read(path) {
            Ok(bytes) => return decode(path, &bytes),
            Err(e) => tried.push(format!("{path}: {e}")),
        }
    }
    Err(ExternError::Kconfig(format!(
        "failed to open system Kconfig ({})",
        tried.join("; ")
    )))
}

/// Text of a kconfig file, gunzipped when it starts with the gzip magic (like zlib's `gzopen`,
/// which reads plain files transparently).
pub fn decode(path: &str, bytes: &[u8]) -> Result<String, ExternError> {
    let text = if bytes.starts_with(&[0x1f, 0x8b]) {
        // The kernel's config is a few hundred KiB; cap what a hostile file can make us allocate.
        super::gzip::gunzip_all(bytes, 64 << 20)
            .map_err(|e| ExternError::Kconfig(format!("{path}: bad gzip data: {e}")))?
    } else {
        bytes.to_vec()
    };
    // libbpf reads the file as bytes: a non-UTF-8 byte (a Latin-1 CONFIG_CMDLINE, a comment)
    // must not fail the load. Such bytes become U+FFFD here; only a string value holding one
    // differs from libbpf's copy.
    Ok(match String::from_utf8(text) {
        Ok(t) => t,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

fn uname_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Applies every `CONFIG_*` line of `text` to the externs it names. `lookup(name)` gives the
/// extern's slot if the object has such a kconfig extern that is not yet set; `mark_set` records
/// that it is. Lines for unknown names are ignored, as in libbpf; a malformed line for any name
/// is an error (libbpf checks the separator and value before the name).
pub fn apply_text(
    text: &str,
    image: &mut [u8],
    mut lookup: impl FnMut(&str) -> Option<KcfgSlot>,
    mut mark_set: impl FnMut(&str),
) -> Result<(), ExternError> {
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if !line.starts_with("CONFIG_") {
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            return Err(ExternError::Kconfig(format!(
                "failed to parse '{line}': no separator"
            )));
        };
        if value.is_empty() {
            return Err(ExternError::Kconfig(format!(
                "failed to parse '{line}': no value"
            )));
        }
        let Some(slot) = lookup(name) else { continue };
        let dst = image
            .get_mut(slot.off..slot.off + slot.size)
            .ok_or_else(|| {
                ExternError::Kconfig(format!("extern '{name}' lies outside .kconfig"))
            })?;
        set_value(name, slot, dst, value)?;
        mark_set(name);
    }
    Ok(())
}

/// Encodes one kconfig value (`y`, `n`, `m`, `"string"` or an integer) into `dst`.
pub fn set_value(
    name: &str,
    slot: KcfgSlot,
    dst: &mut [u8],
    value: &str,
) -> Result<(), ExternError> {
    let err = |msg: String| ExternError::KconfigValue {
        name: name.to_string(),
        msg,
    };
    let Some(&first) = value.as_bytes().first() else {
        return Err(err("no value".into()));
    };
    if dst.len() < slot.size || slot.size == 0 {
        return Err(err(format!(
            "value slot of {} bytes for a {}-byte extern",
            dst.len(),
            slot.size
        )));
    }
    match first {
        c @ (b'y' | b'n' | b'm') => match slot.ty {
            KcfgType::Bool => {
                if c == b'm' {
                    return Err(err(format!(
                        "value '{}' implies tristate or char type",
                        c as char
                    )));
                }
                dst[0] = u8::from(c == b'y');
            }
            KcfgType::Tristate => {
                // enum libbpf_tristate { TRI_NO = 0, TRI_YES = 1, TRI_MODULE = 2 }
                let v: u64 = match c {
                    b'y' => 1,
                    b'm' => 2,
                    _ => 0,
                };
                write_uint(dst, v);
            }
            KcfgType::Char => dst[0] = c,
            _ => {
                return Err(err(format!(
                    "value '{}' implies bool, tristate, or char type",
                    c as char
                )))
            }
        },
        b'"' => {
            if slot.ty != KcfgType::CharArr {
                return Err(err(format!("value '{value}' implies char array type")));
            }
            if value.len() < 2 || !value.ends_with('"') {
                return Err(err(format!("invalid string config '{value}'")));
            }
            let s = &value.as_bytes()[1..value.len() - 1];
            let mut len = s.len();
            if len >= slot.size {
                log::warn!(
                    "extern (kcfg) '{name}': long string '{value}' of ({len} bytes) truncated to {} bytes",
                    slot.size - 1
                );
                len = slot.size - 1;
            }
            dst[..len].copy_from_slice(&s[..len]);
            dst[len] = 0;
        }
        _ => {
            let num = parse_u64(value)
                .ok_or_else(|| err(format!("value '{value}' isn't a valid integer")))?;
            if !matches!(slot.ty, KcfgType::Int | KcfgType::Char) {
                return Err(err(format!("value '{value}' implies integer type")));
            }
            set_num(name, slot, dst, num)?;
        }
    }
    Ok(())
}

/// libbpf's `set_kcfg_value_num`: integers, chars and bools, with a range check.
pub fn set_num(name: &str, slot: KcfgSlot, dst: &mut [u8], v: u64) -> Result<(), ExternError> {
    let err = |msg: String| ExternError::KconfigValue {
        name: name.to_string(),
        msg,
    };
    if !matches!(slot.ty, KcfgType::Int | KcfgType::Char | KcfgType::Bool) {
        return Err(err(format!(
            "value '{v}' implies integer, char, or boolean type"
        )));
    }
    if slot.ty == KcfgType::Bool && v > 1 {
        return Err(err(format!("value '{v}' isn't boolean compatible")));
    }
    if !in_range(slot.size, slot.signed, v) {
        return Err(err(format!(
            "value '{v}' doesn't fit in {} bytes",
            slot.size
        )));
    }
    if !matches!(slot.size, 1 | 2 | 4 | 8) {
        return Err(err(format!("unsupported integer size {}", slot.size)));
    }
    write_uint(dst, v);
    Ok(())
}

/// Whether `v` (as stored in a u64) fits an integer of `size` bytes without loss.
fn in_range(size: usize, signed: bool, v: u64) -> bool {
    if size >= 8 {
        return true;
    }
    let bits = size as u32 * 8;
    if signed {
        v.wrapping_add(1u64 << (bits - 1)) < (1u64 << bits)
    } else {
        v >> bits == 0
    }
}

/// Writes the low `dst.len()` bytes of `v` in host byte order.
fn write_uint(dst: &mut [u8], v: u64) {
    let b = v.to_ne_bytes();
    let n = dst.len().min(8);
    if cfg!(target_endian = "little") {
        dst[..n].copy_from_slice(&b[..n]);
    } else {
        dst[..n].copy_from_slice(&b[8 - n..]);
    }
}

/// `strtoull(value, &end, 0)` that must consume the whole string: optional spaces and sign,
/// `0x` hex, leading-`0` octal, else decimal. A minus sign negates modulo 2^64, as strtoull does.
pub fn parse_u64(value: &str) -> Option<u64> {
    let s = value.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (neg, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (16, h)
    } else if s.len() > 1 && s.starts_with('0') {
        (8, &s[1..])
    } else {
        (10, s)
    };
    if digits.is_empty() || !digits.bytes().all(|b| (b as char).is_digit(radix)) {
        return None;
    }
    let v = u64::from_str_radix(digits, radix).ok()?;
    Some(if neg { v.wrapping_neg() } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(size: usize, ty: KcfgType, signed: bool) -> KcfgSlot {
        KcfgSlot {
            off: 0,
            size,
            ty,
            signed,
        }
    }

    /// A byte that is not UTF-8 (a Latin-1 comment or CONFIG_CMDLINE) does not fail the load;
    /// libbpf reads the file as bytes (found by review: "not UTF-8 text" was an error).
    #[test]
    fn non_utf8_config_text_is_read() {
        let text = decode("config", b"# Comment \xe9\nCONFIG_A=y\n").unwrap();
        assert!(text.ends_with("\nCONFIG_A=y\n"), "{text:?}");
    }

    #[test]
    fn integers_parse_like_strtoull() {
        assert_eq!(parse_u64("42"), Some(42));
        assert_eq!(parse_u64("0x10"), Some(16));
        assert_eq!(parse_u64("010"), Some(8));
        assert_eq!(parse_u64("0"), Some(0));
        assert_eq!(parse_u64("-1"), Some(u64::MAX));
        assert_eq!(parse_u64("12abc"), None);
        assert_eq!(parse_u64("0x"), None);
        assert_eq!(parse_u64("99999999999999999999999"), None);
    }

    #[test]
    fn tristate_bool_char_values() {
        let mut b = [0u8; 4];
        set_value("CONFIG_T", slot(4, KcfgType::Tristate, false), &mut b, "m").unwrap();
        assert_eq!(u32::from_ne_bytes(b), 2);
        set_value("CONFIG_T", slot(4, KcfgType::Tristate, false), &mut b, "y").unwrap();
        assert_eq!(u32::from_ne_bytes(b), 1);
        let mut c = [0u8; 1];
        set_value("CONFIG_B", slot(1, KcfgType::Bool, false), &mut c, "y").unwrap();
        assert_eq!(c[0], 1);
        let e = set_value("CONFIG_B", slot(1, KcfgType::Bool, false), &mut c, "m").unwrap_err();
        assert!(e.to_string().contains("implies tristate or char"), "{e}");
        set_value("CONFIG_C", slot(1, KcfgType::Char, false), &mut c, "m").unwrap();
        assert_eq!(c[0], b'm');
        let e = set_value("CONFIG_I", slot(4, KcfgType::Int, false), &mut b, "y").unwrap_err();
        assert!(e.to_string().contains("CONFIG_I"), "{e}");
    }

    #[test]
    fn strings_are_truncated_and_checked() {
        let mut s = [0xffu8; 4];
        set_value(
            "CONFIG_S",
            slot(4, KcfgType::CharArr, false),
            &mut s,
            "\"abcdef\"",
        )
        .unwrap();
        assert_eq!(&s, b"abc\0");
        set_value(
            "CONFIG_S",
            slot(4, KcfgType::CharArr, false),
            &mut s,
            "\"x\"",
        )
        .unwrap();
        assert_eq!(&s[..2], b"x\0");
        assert!(set_value("CONFIG_S", slot(4, KcfgType::CharArr, false), &mut s, "\"x").is_err());
        assert!(set_value("CONFIG_S", slot(4, KcfgType::CharArr, false), &mut s, "\"").is_err());
        assert!(set_value("CONFIG_I", slot(4, KcfgType::Int, false), &mut s, "\"x\"").is_err());
        // Inconsistent input is an error, never a panic.
        assert!(set_value("CONFIG_S", slot(4, KcfgType::CharArr, false), &mut s, "").is_err());
        assert!(set_value(
            "CONFIG_S",
            slot(8, KcfgType::CharArr, false),
            &mut s,
            "\"x\""
        )
        .is_err());
        assert!(set_value(
            "CONFIG_S",
            slot(0, KcfgType::CharArr, false),
            &mut s[..0],
            "\"x\""
        )
        .is_err());
    }

    #[test]
    fn integer_range_checks() {
        let mut b = [0u8; 8];
        set_value("X", slot(1, KcfgType::Int, false), &mut b[..1], "255").unwrap();
        assert!(set_value("X", slot(1, KcfgType::Int, false), &mut b[..1], "256").is_err());
        set_value("X", slot(1, KcfgType::Int, true), &mut b[..1], "-128").unwrap();
        assert_eq!(b[0] as i8, -128);
        assert!(set_value("X", slot(1, KcfgType::Int, true), &mut b[..1], "128").is_err());
        assert!(set_value("X", slot(1, KcfgType::Int, true), &mut b[..1], "-129").is_err());
        set_value(
            "X",
            slot(8, KcfgType::Int, false),
            &mut b,
            "0xffffffffffffffff",
        )
        .unwrap();
        assert_eq!(u64::from_ne_bytes(b), u64::MAX);
        let e = set_value("X", slot(1, KcfgType::Bool, false), &mut b[..1], "1").unwrap_err();
        assert!(e.to_string().contains("implies integer type"), "{e}");
        assert!(set_num("X", slot(1, KcfgType::Bool, false), &mut b[..1], 2).is_err());
        set_num("X", slot(1, KcfgType::Bool, false), &mut b[..1], 1).unwrap();
    }

    #[test]
    fn text_application() {
        let text =
            "# comment\n# CONFIG_OFF is not set\nCONFIG_A=y\nCONFIG_UNKNOWN=5\nCONFIG_N=0x20\n";
        let mut image = [0u8; 8];
        let mut set = Vec::new();
        apply_text(
            text,
            &mut image,
            |n| match n {
                "CONFIG_A" => Some(KcfgSlot {
                    off: 0,
                    size: 4,
                    ty: KcfgType::Tristate,
                    signed: false,
                }),
                "CONFIG_N" => Some(KcfgSlot {
                    off: 4,
                    size: 4,
                    ty: KcfgType::Int,
                    signed: false,
                }),
                _ => None,
            },
            |n| set.push(n.to_string()),
        )
        .unwrap();
        assert_eq!(u32::from_ne_bytes(image[..4].try_into().unwrap()), 1);
        assert_eq!(u32::from_ne_bytes(image[4..].try_into().unwrap()), 0x20);
        assert_eq!(set, ["CONFIG_A", "CONFIG_N"]);
        let e = apply_text("CONFIG_X\n", &mut image, |_| None, |_| {}).unwrap_err();
        assert!(e.to_string().contains("no separator"), "{e}");
        let e = apply_text("CONFIG_X=\n", &mut image, |_| None, |_| {}).unwrap_err();
        assert!(e.to_string().contains("no value"), "{e}");
    }

    #[test]
    fn system_kconfig_is_readable() {
        // /proc/config.gz exists on this kernel (CONFIG_IKCONFIG_PROC); the test reads it through
        // the gzip reader and checks a line every BPF-capable kernel has.
        match read_system_kconfig() {
            Ok(text) => assert!(text.contains("CONFIG_BPF=y"), "no CONFIG_BPF=y in kconfig"),
            Err(e) => {
                crate::tests::skip_or_panic(
                    "system_kconfig_is_readable",
                    &format!("no system kconfig ({e})"),
                );
            }
        }
    }
}
