//! bpfload-btf
