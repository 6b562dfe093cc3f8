//! The crate's error type.

use std::path::PathBuf;

use crate::raw::Kind;

/// Everything that can go wrong while reading, resolving, fixing up or encoding BTF.
///
/// Offsets are byte offsets into the blob that was parsed (or into its type/string section where
/// the variant says so), so a message points at the bad byte.
#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    #[error("BTF data is {len} bytes, shorter than the {need}-byte header")]
    ShortHeader { len: usize, need: usize },
    #[error("bad BTF magic {magic:#06x} (expected 0xeb9f in either byte order)")]
    BadMagic { magic: u16 },
    #[error("unsupported BTF version {version}")]
    BadVersion { version: u8 },
    #[error("invalid BTF header: {reason}")]
    BadHeader { reason: String },
    #[error("BTF {section} section [{start}, {start}+{len}) is outside the {data_len}-byte blob")]
    SectionOutOfBounds {
        section: &'static str,
        start: u64,
        len: u64,
        data_len: usize,
    },
    #[error("invalid BTF string section: {reason}")]
    BadStrings { reason: &'static str },
    #[error(
        "BTF type [{id}] at type-section offset {offset}: {needed} bytes needed, {available} left"
    )]
    TypeTruncated {
        id: u32,
        offset: usize,
        needed: usize,
        available: usize,
    },
    #[error("BTF type [{id}] at type-section offset {offset}: unknown kind {kind}")]
    UnknownKind { id: u32, offset: usize, kind: u32 },
    #[error("too many BTF types (more than {max})")]
    TooManyTypes { max: u32 },
    #[error("BTF type id {id} out of range (this BTF has ids below {count})")]
    InvalidTypeId { id: u32, count: u32 },
    #[error("BTF string offset {offset} out of range (string section ends at {end})")]
    InvalidStringOffset { offset: u32, end: u32 },
    #[error("BTF string at offset {offset} is not NUL-terminated")]
    UnterminatedString { offset: u32 },
    #[error("BTF string at offset {offset} is not valid UTF-8")]
    InvalidUtf8 { offset: u32 },
    #[error("BTF type [{id}]: following its type chain exceeded depth {depth} (a loop?)")]
    TooDeep { id: u32, depth: usize },
    #[error("BTF type [{id}] of kind {kind} has no size")]
    NoSize { id: u32, kind: Kind },
    #[error("BTF type [{id}]: size overflows 32 bits")]
    SizeOverflow { id: u32 },
    #[error("BTF type [{id}] is {found}, expected {expected}")]
    UnexpectedKind {
        id: u32,
        found: Kind,
        expected: &'static str,
    },
    #[error("split BTF must be native-endian like its base")]
    SplitEndianMismatch,
    #[error("invalid .BTF.ext: {reason}")]
    BadExt { reason: String },
    #[error("DATASEC '{section}': {reason}")]
    Fixup { section: String, reason: String },
    #[error("encoded BTF would exceed format limits: {reason}")]
    EncodeLimit { reason: &'static str },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A BTF file (a user-given custom BTF) that did not parse: names the file.
    #[error("{}: {source}", path.display())]
    InFile {
        path: PathBuf,
        #[source]
        source: Box<BtfError>,
    },
}
