//! Human names of program and map types, as bpftool and libbpf's `libbpf_bpf_*_type_str` print them.

const PROG_TYPES: &[&str] = &[
    "unspec",
    "socket_filter",
    "kprobe",
    "sched_cls",
    "sched_act",
    "tracepoint",
    "xdp",
    "perf_event",
    "cgroup_skb",
    "cgroup_sock",
    "lwt_in",
    "lwt_out",
    "lwt_xmit",
    "sock_ops",
    "sk_skb",
    "cgroup_device",
    "sk_msg",
    "raw_tracepoint",
    "cgroup_sock_addr",
    "lwt_seg6local",
    "lirc_mode2",
    "sk_reuseport",
    "flow_dissector",
    "cgroup_sysctl",
    "raw_tracepoint_writable",
    "cgroup_sockopt",
    "tracing",
    "struct_ops",
    "ext",
    "lsm",
    "sk_lookup",
    "syscall",
    "netfilter",
];

const MAP_TYPES: &[&str] = &[
    "unspec",
    "hash",
    "array",
    "prog_array",
    "perf_event_array",
    "percpu_hash",
    "percpu_array",
    "stack_trace",
    "cgroup_array",
    "lru_hash",
    "lru_percpu_hash",
    "lpm_trie",
    "array_of_maps",
    "hash_of_maps",
    "devmap",
    "sockmap",
    "cpumap",
    "xskmap",
    "sockhash",
    "cgroup_storage",
    "reuseport_sockarray",
    "percpu_cgroup_storage",
    "queue",
    "stack",
    "sk_storage",
    "devmap_hash",
    "struct_ops",
    "ringbuf",
    "inode_storage",
    "task_storage",
    "bloom_filter",
    "user_ringbuf",
    "cgrp_storage",
    "arena",
];

/// Name of an `enum bpf_prog_type` value ("unknown" if out of range).
pub fn prog_type_name(t: u32) -> &'static str {
    PROG_TYPES.get(t as usize).copied().unwrap_or("unknown")
}

/// Name of an `enum bpf_map_type` value ("unknown" if out of range).
pub fn map_type_name(t: u32) -> &'static str {
    MAP_TYPES.get(t as usize).copied().unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;
    use aya_obj::generated::{bpf_map_type as mt, bpf_prog_type as pt};

    #[test]
    fn names_line_up_with_uapi() {
        assert_eq!(prog_type_name(pt::BPF_PROG_TYPE_XDP as u32), "xdp");
        assert_eq!(
            prog_type_name(pt::BPF_PROG_TYPE_NETFILTER as u32),
            "netfilter"
        );
        assert_eq!(PROG_TYPES.len(), pt::__MAX_BPF_PROG_TYPE as usize);
        assert_eq!(map_type_name(mt::BPF_MAP_TYPE_RINGBUF as u32), "ringbuf");
        assert_eq!(map_type_name(mt::BPF_MAP_TYPE_ARENA as u32), "arena");
    }
}
