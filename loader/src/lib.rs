//! bpfload: pure-Rust BPF object loading.
