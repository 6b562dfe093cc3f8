//! bpfload-syscall
