//! Loader tests against the real kernel: the project's fixtures and the shared corpus.

mod fixtures;
mod kernel;
mod libbpf_compare;
mod libbpf_parity;

/// Serializes the tests that count fds or use the kernel heavily.
pub(crate) static KERNEL_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
mod scale;
