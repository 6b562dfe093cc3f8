//! Errors of the open and load pipelines. Each variant carries the object, program or map it is about.

use std::io;

/// Errors from [`Object::open_file`](crate::Object::open_file) / [`Object::open_bytes`](crate::Object::open_bytes).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The file could not be read.
    #[error("cannot read '{path}': {source}")]
    Io {
        /// The path given.
        path: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The ELF container is malformed or not a BPF relocatable object.
    #[error("invalid ELF: {0}")]
    Format(String),
    /// A section is malformed (program, map, data or relocation section).
    #[error("section '{section}': {msg}")]
    Section {
        /// Section name.
        section: String,
        /// What is wrong.
        msg: String,
    },
    /// A program-level problem (bad symbol, bad relocation).
    #[error("program '{program}': {msg}")]
    Program {
        /// Program name.
        program: String,
        /// What is wrong.
        msg: String,
    },
    /// A map definition could not be parsed.
    #[error("map '{map}': {msg}")]
    Map {
        /// Map name.
        map: String,
        /// What is wrong.
        msg: String,
    },
    /// The object's BTF could not be parsed, though the object needs it.
    #[error("BTF: {0}")]
    Btf(String),
}

/// The name of an errno value, for messages ("EPERM").
pub fn errno_name(errno: i32) -> &'static str {
    match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::E2BIG => "E2BIG",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENOTDIR => "ENOTDIR",
        libc::EINVAL => "EINVAL",
        libc::ENOSPC => "ENOSPC",
        libc::ERANGE => "ERANGE",
        libc::ENOSYS => "ENOSYS",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ELOOP => "ELOOP",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        _ => "E?",
    }
}
