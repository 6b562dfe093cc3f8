//! bpfload-probe
